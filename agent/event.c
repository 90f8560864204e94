/*
 * The event builder: evrec_event_* setters and getters, each checking its argument at once.
 * JSON input is event_json.c, the encoding into a stored record event_encode.c, dates and ids
 * event_util.c (event_internal.h is what they share).
 *
 * Limits come from the services: Pinpoint's documented event quotas (type <= 50 characters,
 * <= 40 attributes + metrics, names <= 50, attribute values <= 200, <= 1,000 KB an event) and
 * the lengths in botocore's personalize-events model (ids <= 256, recommendationId <= 40,
 * properties <= 1,024, <= 25 impressions, eventType <= 256).
 *
 * Over-long values that the AWS SDKs would silently truncate (the event type, attribute and
 * metric names, attribute values) are kept on the event while the setter reports the violation,
 * because only evrec_record() knows whether the agent truncates (truncate_oversize) or refuses.
 * Everything else that is wrong is refused at once and not stored.
 */
#include "event.h"

#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "event_internal.h"
#include "port.h"
#include "record.h"
#include "util_str.h"
#include "util_utf8.h"

const char *const event_app_field_names[APP_COUNT] = {
    "AppPackageName", "AppTitle", "AppVersionCode", "ClientSdkVersion", "SdkName",
};

/* ---------------------------------------------------------------------------------------- */
/* Checks the setters share                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Replace *slot with a copy of s (NULL clears). */
int event_set_str(char **slot, const char *s)
{
    char *copy = NULL;
    if (s) {
        copy = port_strdup(s);
        if (!copy)
            return EVREC_E_NOMEM;
    }
    port_free(*slot);
    *slot = copy;
    return EVREC_OK;
}

/* Valid UTF-8 and at most max characters (min 1 if required). Returns the character count or
 * a negative code, with a message naming `what`. */
static long check_text(char *err, size_t errlen, const char *what, const char *s, long min,
                       long max, int too_long_code)
{
    size_t len = strlen(s);
    long n = util_utf8_chars(s, len);
    if (n < 0)
        return util_failf(err, errlen, EVREC_E_UTF8, "%s is not valid UTF-8", what);
    if (n < min)
        return util_failf(err, errlen, too_long_code, "%s is empty", what);
    if (max > 0 && n > max)
        return util_failf(err, errlen, too_long_code, "%s is %ld characters, more than %ld", what, n,
                    max);
    return n;
}

/* An id: 1..max_chars characters of valid UTF-8 without control characters. `in_header`: it
 * also goes in the record header, whose lengths are one byte (<= 255 bytes). `visible_ascii`
 * narrows it to 0x21..0x7E. */
int event_check_id_in(char *err, size_t errlen, const char *what, const char *s, long max_chars,
                      int in_header, int visible_ascii)
{
    size_t len = strlen(s);
    if (len == 0)
        return util_failf(err, errlen, EVREC_E_ID, "%s is empty", what);
    long n = util_utf8_chars(s, len);
    if (n < 0)
        return util_failf(err, errlen, EVREC_E_UTF8, "%s is not valid UTF-8", what);
    if (n > max_chars)
        return util_failf(err, errlen, EVREC_E_ID, "%s is %ld characters, more than %ld", what, n,
                    max_chars);
    if (in_header && len > RECORD_ID_BYTES_MAX)
        return util_failf(err, errlen, EVREC_E_ID, "%s is %zu bytes, more than the %d evrec stores",
                    what, len, RECORD_ID_BYTES_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F || (visible_ascii && (c <= 0x20 || c >= 0x7F)))
            return util_failf(err, errlen, EVREC_E_ID, "%s has a character that is not %s at byte %zu",
                        what, visible_ascii ? "printable ASCII" : "printable", i);
    }
    return EVREC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* The builder                                                                               */
/* ---------------------------------------------------------------------------------------- */

const char *event_last_error(const evrec_event_t *ev)
{
    return ev ? ev->err : "";
}

EVREC_API const char *evrec_event_last_error(const evrec_event_t *event)
{
    return event_last_error(event);
}

/* The event type: required, valid UTF-8, <= 256 characters (Personalize's limit, the wider of
 * the two services). Pinpoint's 50 is checked when the event is recorded for Pinpoint. */
int event_check_type(char *err, size_t errlen, const char *type)
{
    if (!type || !*type)
        return util_failf(err, errlen, EVREC_E_EVENT_TYPE, "event type is required");
    long n = check_text(err, errlen, "event type", type, 1, PZ_STRING_MAX, EVREC_E_EVENT_TYPE);
    return n < 0 ? (int)n : EVREC_OK;
}

EVREC_API int evrec_event_new(evrec_event_t **out, const char *event_type)
{
    if (!out)
        return EVREC_E_INVALID;
    *out = NULL;
    int rc = event_check_type(NULL, 0, event_type);
    if (rc)
        return rc;
    evrec_event_t *ev = port_calloc(1, sizeof *ev);
    if (!ev)
        return EVREC_E_NOMEM;
    ev->type = port_strdup(event_type);
    if (!ev->type) {
        port_free(ev);
        return EVREC_E_NOMEM;
    }
    *out = ev;
    return EVREC_OK;
}

EVREC_API void evrec_event_free(evrec_event_t *ev)
{
    if (!ev)
        return;
    port_free(ev->type);
    for (size_t i = 0; i < ev->nfields; i++) {
        port_free(ev->fields[i].name);
        port_free(ev->fields[i].value);
    }
    port_free(ev->endpoint_id);
    for (int i = 0; i < APP_COUNT; i++)
        port_free(ev->app[i]);
    port_free(ev->user_id);
    port_free(ev->session_id);
    port_free(ev->item_id);
    port_free(ev->properties);
    port_free(ev->recommendation_id);
    for (size_t i = 0; i < ev->nimpressions; i++)
        port_free(ev->impressions[i]);
    port_free(ev->attribution);
    port_free(ev);
}

static ev_field_t *find_field(evrec_event_t *ev, const char *name, int is_metric)
{
    for (size_t i = 0; i < ev->nfields; i++)
        if (ev->fields[i].is_metric == is_metric && strcmp(ev->fields[i].name, name) == 0)
            return &ev->fields[i];
    return NULL;
}

/* Checks shared by attribute and metric names: a negative code refuses the name; 1 means it is
 * only too long, which is kept and reported (see the file comment); 0 is fine. */
static int check_name(evrec_event_t *ev, const char *kind, const char *name)
{
    if (!name || !*name)
        return EV_FAIL(ev, EVREC_E_NAME_LENGTH, "%s name is empty", kind);
    long n = util_utf8_chars(name, strlen(name));
    if (n < 0)
        return EV_FAIL(ev, EVREC_E_UTF8, "%s name is not valid UTF-8", kind);
    return n > EVENT_NAME_MAX ? 1 : 0;
}

static int name_too_long(evrec_event_t *ev, const char *kind, const char *name)
{
    return EV_FAIL(ev, EVREC_E_NAME_LENGTH,
                   "%s name \"%.50s...\" is %ld characters, more than %d (kept: refused or "
                   "truncated when recorded)", kind, name, util_utf8_chars(name, strlen(name)),
                   EVENT_NAME_MAX);
}

/* Find or make the slot for (name, kind); refuses the 41st field. */
static int field_slot(evrec_event_t *ev, const char *kind, const char *name, int is_metric,
                      ev_field_t **out)
{
    ev_field_t *f = find_field(ev, name, is_metric);
    if (!f) {
        if (ev->nfields >= EVENT_FIELDS_MAX)
            return EV_FAIL(ev, EVREC_E_TOO_MANY_FIELDS,
                           "%s \"%.50s\": the event already has %d attributes and metrics", kind,
                           name, EVENT_FIELDS_MAX);
        char *copy = port_strdup(name);
        if (!copy)
            return EVREC_E_NOMEM;
        f = &ev->fields[ev->nfields++];
        memset(f, 0, sizeof *f);
        f->name = copy;
        f->is_metric = is_metric;
    }
    *out = f;
    return EVREC_OK;
}

EVREC_API int evrec_event_set_attribute(evrec_event_t *ev, const char *name, const char *value)
{
    if (!ev)
        return EVREC_E_INVALID;
    int long_name = check_name(ev, "attribute", name);
    if (long_name < 0)
        return long_name;
    if (!value)
        return EV_FAIL(ev, EVREC_E_INVALID, "attribute \"%.50s\" value is NULL", name);
    long n = util_utf8_chars(value, strlen(value));
    if (n < 0)
        return EV_FAIL(ev, EVREC_E_UTF8, "attribute \"%.50s\" value is not valid UTF-8", name);
    char *copy = port_strdup(value);
    if (!copy)
        return EVREC_E_NOMEM;
    ev_field_t *f;
    int rc = field_slot(ev, "attribute", name, 0, &f);
    if (rc) {
        port_free(copy);
        return rc;
    }
    port_free(f->value);
    f->value = copy;
    if (long_name)
        return name_too_long(ev, "attribute", name);
    if (n > EVENT_ATTR_VALUE_MAX)
        return EV_FAIL(ev, EVREC_E_VALUE_LENGTH,
                       "attribute \"%s\" value is %ld characters, more than %d (kept: refused or "
                       "truncated when recorded)", name, n, EVENT_ATTR_VALUE_MAX);
    return EVREC_OK;
}

EVREC_API int evrec_event_set_metric(evrec_event_t *ev, const char *name, double value)
{
    if (!ev)
        return EVREC_E_INVALID;
    int long_name = check_name(ev, "metric", name);
    if (long_name < 0)
        return long_name;
    if (!isfinite(value))
        return EV_FAIL(ev, EVREC_E_METRIC_VALUE, "metric \"%.50s\" is not a finite number", name);
    ev_field_t *f;
    int rc = field_slot(ev, "metric", name, 1, &f);
    if (rc)
        return rc;
    f->number = value;
    return long_name ? name_too_long(ev, "metric", name) : EVREC_OK;
}

EVREC_API int evrec_event_set_timestamp(evrec_event_t *ev, int64_t unix_ms)
{
    if (!ev)
        return EVREC_E_INVALID;
    if (unix_ms < TS_MIN_MS || unix_ms > TS_MAX_MS)
        return EV_FAIL(ev, EVREC_E_TIMESTAMP,
                       "timestamp %lld ms is outside 1970-01-01 .. 9999-12-31", (long long)unix_ms);
    ev->timestamp_ms = unix_ms;
    ev->has_timestamp = 1;
    return EVREC_OK;
}

EVREC_API int evrec_event_set_timestamp_iso(evrec_event_t *ev, const char *iso8601)
{
    if (!ev || !iso8601)
        return EVREC_E_INVALID;
    int64_t t;
    if (event_parse_iso8601(iso8601, &t))
        return EV_FAIL(ev, EVREC_E_TIMESTAMP,
                       "timestamp \"%.40s\" is not ISO 8601 (YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm)) "
                       "in 1970..9999", iso8601);
    return evrec_event_set_timestamp(ev, t);
}

int event_check_id(const char *what, const char *id, char *err, size_t errlen)
{
    if (!id)
        return util_failf(err, errlen, EVREC_E_ID, "%s is missing", what);
    return event_check_id_in(err, errlen, what, id, EVREC_ID_MAX - 1, 1, 1);
}

EVREC_API int evrec_event_set_id(evrec_event_t *ev, const char *event_id)
{
    if (!ev || !event_id)
        return EVREC_E_INVALID;
    int rc = event_check_id("event id", event_id, ev->err, sizeof ev->err);
    if (rc)
        return rc;
    memcpy(ev->id, event_id, strlen(event_id) + 1);
    return EVREC_OK;
}

const char *event_endpoint_id(const evrec_event_t *ev)
{
    return ev ? ev->endpoint_id : NULL;
}

unsigned event_shape(const evrec_event_t *ev, unsigned preferred)
{
    if (ev && (ev->user_id || (ev->session_id && !ev->has_session) || ev->item_id ||
               ev->has_value || ev->properties || ev->recommendation_id || ev->nimpressions ||
               ev->attribution))
        return RECORD_SHAPE_PERSONALIZE;
    return preferred;
}

int event_has_user_id(const evrec_event_t *ev)
{
    return ev && ev->user_id;
}

EVREC_API int evrec_event_set_endpoint_id(evrec_event_t *ev, const char *endpoint_id)
{
    if (!ev || !endpoint_id)
        return EVREC_E_INVALID;
    int rc = event_check_id("endpoint id", endpoint_id, ev->err, sizeof ev->err);
    return rc ? rc : event_set_str(&ev->endpoint_id, endpoint_id);
}

EVREC_API int evrec_event_set_field(evrec_event_t *ev, const char *field, const char *value)
{
    if (!ev || !field)
        return EVREC_E_INVALID;
    for (int i = 0; i < APP_COUNT; i++) {
        if (strcmp(field, event_app_field_names[i]) != 0)
            continue;
        if (value) {
            long n = check_text(ev->err, sizeof ev->err, event_app_field_names[i], value, 0, 0,
                                0);
            if (n < 0)
                return (int)n;
            if (strlen(value) > EVENT_MAX_BYTES)
                return EV_FAIL(ev, EVREC_E_EVENT_SIZE, "%s is larger than an event may be",
                               field);
        }
        return event_set_str(&ev->app[i], value);
    }
    return EV_FAIL(ev, EVREC_E_INVALID,
                   "\"%.60s\" is not an application field (AppPackageName, AppTitle, "
                   "AppVersionCode, ClientSdkVersion, SdkName)", field);
}

/* A Personalize id member: 1..max characters (the model); userId and sessionId also go in the
 * record header (<= 255 bytes). */
static int set_pz_id(evrec_event_t *ev, char **slot, const char *what, const char *value,
                     long max, int in_header)
{
    if (!ev || !value)
        return EVREC_E_INVALID;
    int rc = event_check_id_in(ev->err, sizeof ev->err, what, value, max, in_header, 0);
    return rc ? rc : event_set_str(slot, value);
}

EVREC_API int evrec_event_set_user_id(evrec_event_t *ev, const char *user_id)
{
    return set_pz_id(ev, ev ? &ev->user_id : NULL, "userId", user_id, PZ_STRING_MAX, 1);
}

EVREC_API int evrec_event_set_session_id(evrec_event_t *ev, const char *session_id)
{
    return set_pz_id(ev, ev ? &ev->session_id : NULL, "sessionId", session_id, PZ_STRING_MAX, 1);
}

EVREC_API int evrec_event_set_item_id(evrec_event_t *ev, const char *item_id)
{
    return set_pz_id(ev, ev ? &ev->item_id : NULL, "itemId", item_id, PZ_STRING_MAX, 0);
}

EVREC_API int evrec_event_set_recommendation_id(evrec_event_t *ev, const char *id)
{
    return set_pz_id(ev, ev ? &ev->recommendation_id : NULL, "recommendationId", id,
                     PZ_RECOMMENDATION_MAX, 0);
}

EVREC_API int evrec_event_set_value(evrec_event_t *ev, double event_value)
{
    if (!ev)
        return EVREC_E_INVALID;
    if (!isfinite(event_value))
        return EV_FAIL(ev, EVREC_E_METRIC_VALUE, "eventValue is not a finite number");
    ev->value = event_value;
    ev->has_value = 1;
    return EVREC_OK;
}

EVREC_API int evrec_event_set_properties(evrec_event_t *ev, const char *properties_json)
{
    if (!ev || !properties_json)
        return EVREC_E_INVALID;
    long n = check_text(ev->err, sizeof ev->err, "properties", properties_json, 1,
                        EVENT_PROPERTIES_MAX, EVREC_E_VALUE_LENGTH);
    if (n < 0)
        return (int)n;
    cJSON *j = event_json_parse(properties_json, strlen(properties_json), "properties", ev->err,
                                sizeof ev->err);
    if (!j)
        return EVREC_E_JSON;
    int is_obj = cJSON_IsObject(j);
    cJSON_Delete(j);
    if (!is_obj)
        return EV_FAIL(ev, EVREC_E_JSON, "properties is not a JSON object");
    return event_set_str(&ev->properties, properties_json);
}

EVREC_API int evrec_event_add_impression(evrec_event_t *ev, const char *item_id)
{
    if (!ev || !item_id)
        return EVREC_E_INVALID;
    if (ev->nimpressions >= PZ_IMPRESSIONS_MAX)
        return EV_FAIL(ev, EVREC_E_TOO_MANY_VALUES, "impression already has %d items",
                       PZ_IMPRESSIONS_MAX);
    char *slot = NULL;
    int rc = set_pz_id(ev, &slot, "impression item", item_id, PZ_STRING_MAX, 0);
    if (rc)
        return rc;
    ev->impressions[ev->nimpressions++] = slot;
    return EVREC_OK;
}

EVREC_API int evrec_event_set_metric_attribution(evrec_event_t *ev, const char *source)
{
    if (!ev || !source)
        return EVREC_E_INVALID;
    size_t len = strlen(source);
    if (len > PZ_ATTRIBUTION_MAX)
        return EV_FAIL(ev, EVREC_E_VALUE_LENGTH,
                       "metricAttribution.eventAttributionSource is %zu characters, more than %d",
                       len, PZ_ATTRIBUTION_MAX);
    /* The model's pattern: printable ASCII with at least one non-space character. */
    int visible = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)source[i];
        if (c < 0x20 || c > 0x7E)
            return EV_FAIL(ev, EVREC_E_INVALID,
                           "metricAttribution.eventAttributionSource has a character outside "
                           "printable ASCII at byte %zu", i);
        visible |= c != ' ';
    }
    if (!visible)
        return EV_FAIL(ev, EVREC_E_INVALID,
                       "metricAttribution.eventAttributionSource needs a non-space character");
    return event_set_str(&ev->attribution, source);
}

EVREC_API const char *evrec_event_id(const evrec_event_t *ev)
{
    return ev ? ev->id : "";
}

