/*
 * The event builder and its one-time encoding into a stored record.
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jsonw.h"
#include "port.h"
#include "record.h"
#include "util_time.h"
#include "util_str.h"
#include "util_utf8.h"

/* Personalize's limits (botocore personalize-events 2018-03-22). */
#define PZ_STRING_MAX 256        /* StringType, ItemId, UserId */
#define PZ_RECOMMENDATION_MAX 40 /* RecommendationId */
#define PZ_IMPRESSIONS_MAX 25    /* Impression list */
#define PZ_ATTRIBUTION_MAX 1024  /* EventAttributionSource */
/* The record header stores id lengths in one byte. */
#define RECORD_ID_BYTES_MAX 255
/* 0000-01-01 is not representable by the services; 1970..9999 is what ISO 8601's four-digit
 * year and Unix time both cover. */
#define TS_MIN_MS 0LL
#define TS_MAX_MS 253402300799999LL

typedef struct ev_field {
    char *name;
    int is_metric;
    char *value; /* attribute */
    double number; /* metric */
} ev_field_t;

enum { APP_PACKAGE, APP_TITLE, APP_VERSION_CODE, APP_CLIENT_SDK_VERSION, APP_SDK_NAME, APP_COUNT };
static const char *const app_field_names[APP_COUNT] = {
    "AppPackageName", "AppTitle", "AppVersionCode", "ClientSdkVersion", "SdkName",
};

struct evrec_event {
    char *type;
    ev_field_t fields[EVENT_FIELDS_MAX];
    size_t nfields;
    int has_timestamp;
    int64_t timestamp_ms;
    char id[EVREC_ID_MAX];
    char *endpoint_id;
    char *app[APP_COUNT];
    /* Pinpoint Session given explicitly (from JSON); else the agent's open session is used. */
    int has_session;
    int64_t session_start_ms;
    int64_t session_stop_ms; /* 0: none */
    int has_duration;
    int64_t session_duration_ms;
    /* Personalize */
    char *user_id;
    char *session_id; /* also the Pinpoint Session.Id when has_session */
    char *item_id;
    int has_value;
    double value;
    char *properties;
    char *recommendation_id;
    char *impressions[PZ_IMPRESSIONS_MAX];
    size_t nimpressions;
    char *attribution;
    char err[256];
};

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                             */
/* ---------------------------------------------------------------------------------------- */

#define EV_FAIL(ev, code, ...) util_failf((ev)->err, sizeof (ev)->err, (code), __VA_ARGS__)

/* Bytes taken by the first `chars` code points of a valid UTF-8 string. */
static size_t utf8_prefix(const char *s, size_t len, long chars)
{
    size_t i = 0;
    while (i < len && chars > 0) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        chars--;
    }
    return i;
}

/* Replace *slot with a copy of s (NULL clears). */
static int set_str(char **slot, const char *s)
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
static int check_id(char *err, size_t errlen, const char *what, const char *s, long max_chars,
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
/* Time                                                                                      */
/* ---------------------------------------------------------------------------------------- */

void event_format_iso8601(int64_t unix_ms, char out[32])
{
    if (jsonw_format_iso8601(unix_ms, out)) /* years 0000..9999: by hand, no printf */
        return;
    int64_t days = unix_ms >= 0 ? unix_ms / 86400000 : -((-unix_ms + 86399999) / 86400000);
    int64_t rem = unix_ms - days * 86400000;
    int64_t y;
    unsigned m, d;
    util_civil_from_days(days, &y, &m, &d);
    char buf[96]; /* room for any int64 year, so the format cannot truncate */
    snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, m, d,
             (unsigned)(rem / 3600000), (unsigned)(rem / 60000 % 60), (unsigned)(rem / 1000 % 60),
             (unsigned)(rem % 1000));
    size_t n = strlen(buf);
    if (n > 31)
        n = 31;
    memcpy(out, buf, n);
    out[n] = '\0';
}

int event_parse_iso8601(const char *s, int64_t *unix_ms)
{
    if (!s || !unix_ms)
        return EVREC_E_INVALID;
    const char *p = s;
    int y, mo, d, h, mi, se, ms = 0;
    if (util_digits(&p, 4, &y) || *p++ != '-' || util_digits(&p, 2, &mo) || *p++ != '-' ||
        util_digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
        return EVREC_E_TIMESTAMP;
    p++;
    if (util_digits(&p, 2, &h) || *p++ != ':' || util_digits(&p, 2, &mi) || *p++ != ':' ||
        util_digits(&p, 2, &se))
        return EVREC_E_TIMESTAMP;
    if (*p == '.' || *p == ',') {
        p++;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                ms = ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9)
            return EVREC_E_TIMESTAMP;
        for (; nd < 3; nd++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (util_digits(&p, 2, &oh))
            return EVREC_E_TIMESTAMP;
        if (*p == ':')
            p++;
        if (util_digits(&p, 2, &om) || oh > 23 || om > 59)
            return EVREC_E_TIMESTAMP;
        offset_min = sign * (oh * 60 + om);
    } else {
        return EVREC_E_TIMESTAMP; /* a zone is required: local time is ambiguous */
    }
    if (*p != '\0')
        return EVREC_E_TIMESTAMP;
    if (!util_valid_civil(y, mo, d, h, mi, se))
        return EVREC_E_TIMESTAMP;
    int64_t t = util_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000 +
                ((int64_t)h * 3600 + mi * 60 + se) * 1000 + ms - (int64_t)offset_min * 60000;
    if (t < TS_MIN_MS || t > TS_MAX_MS)
        return EVREC_E_TIMESTAMP;
    *unix_ms = t;
    return EVREC_OK;
}

int event_uuid_v4(char out[37])
{
    uint8_t b[16];
    int rc = port_random_id(b, sizeof b);
    if (rc != 0)
        return EVREC_E_IO;
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
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
static int check_type(char *err, size_t errlen, const char *type)
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
    int rc = check_type(NULL, 0, event_type);
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
    return check_id(err, errlen, what, id, EVREC_ID_MAX - 1, 1, 1);
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
    return rc ? rc : set_str(&ev->endpoint_id, endpoint_id);
}

EVREC_API int evrec_event_set_field(evrec_event_t *ev, const char *field, const char *value)
{
    if (!ev || !field)
        return EVREC_E_INVALID;
    for (int i = 0; i < APP_COUNT; i++) {
        if (strcmp(field, app_field_names[i]) != 0)
            continue;
        if (value) {
            long n = check_text(ev->err, sizeof ev->err, app_field_names[i], value, 0, 0, 0);
            if (n < 0)
                return (int)n;
            if (strlen(value) > EVENT_MAX_BYTES)
                return EV_FAIL(ev, EVREC_E_EVENT_SIZE, "%s is larger than an event may be",
                               field);
        }
        return set_str(&ev->app[i], value);
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
    int rc = check_id(ev->err, sizeof ev->err, what, value, max, in_header, 0);
    return rc ? rc : set_str(slot, value);
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
    return set_str(&ev->properties, properties_json);
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
    return set_str(&ev->attribution, source);
}

EVREC_API const char *evrec_event_id(const evrec_event_t *ev)
{
    return ev ? ev->id : "";
}

/* ---------------------------------------------------------------------------------------- */
/* From JSON                                                                                 */
/* ---------------------------------------------------------------------------------------- */

typedef struct json_in {
    evrec_event_t *ev;
    char err[256];
} json_in_t;

/*
 * What cJSON accepts but an event must not hold, because it would be changed silently:
 * a NUL inside a string (raw, or escaped as \u0000: C strings end there), a key given twice
 * in one object (cJSON keeps both and which one wins depends on the lookup), and anything
 * after the value but white space. Each is refused with its own message.
 */

/* A NUL byte, or a \u0000 escape inside a string, in text[0..len). */
static int json_nul_at(const char *text, size_t len, size_t *at)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '\0') {
            *at = i;
            return 1;
        }
        if (!in_string) {
            in_string = ch == '"';
        } else if (ch == '"') {
            in_string = 0;
        } else if (ch == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0) {
                *at = i;
                return 1;
            }
            i++; /* the escaped character, which may be a quote or a backslash */
        }
    }
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first key given twice in an object anywhere in the tree, else NULL. Sorting keeps it
 * O(n log n) however many keys a hostile document holds. */
static const char *json_duplicate_key(const cJSON *node)
{
    size_t n = 0;
    const cJSON *it;
    for (it = node ? node->child : NULL; it; it = it->next) {
        n++;
        const char *dup = json_duplicate_key(it);
        if (dup)
            return dup;
    }
    if (!cJSON_IsObject(node) || n < 2)
        return NULL;
    const char **keys = port_malloc(n * sizeof *keys);
    if (!keys)
        return NULL; /* cannot tell; the lookups still see one value */
    size_t k = 0;
    for (it = node->child; it; it = it->next)
        keys[k++] = it->string;
    qsort(keys, n, sizeof *keys, key_cmp);
    const char *dup = NULL;
    for (k = 1; k < n && !dup; k++)
        if (strcmp(keys[k - 1], keys[k]) == 0)
            dup = keys[k];
    port_free(keys);
    return dup;
}

cJSON *event_json_parse(const char *text, size_t len, const char *what, char *err,
                        size_t errlen)
{
    size_t at = 0;
    if (json_nul_at(text, len, &at)) {
        util_failf(err, errlen, EVREC_E_JSON,
                     "%s holds a NUL character (at byte %zu), which no string may hold", what,
                     at + 1);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        util_failf(err, errlen, EVREC_E_JSON, "%s is not valid JSON", what);
        return NULL;
    }
    size_t off = end ? (size_t)(end - text) : len;
    while (off < len && (text[off] == ' ' || text[off] == '\t' || text[off] == '\r' ||
                         text[off] == '\n'))
        off++;
    const char *dup = NULL;
    if (off < len)
        util_failf(err, errlen, EVREC_E_JSON,
                     "%s is followed by more text (at byte %zu): give one JSON value", what,
                     off + 1);
    else if ((dup = json_duplicate_key(root)) != NULL)
        util_failf(err, errlen, EVREC_E_JSON, "%s has the key \"%.64s\" more than once",
                     what, dup);
    else
        return root;
    cJSON_Delete(root);
    return NULL;
}

static int jfail(json_in_t *in, const char *member, const char *expected)
{
    return util_failf(in->err, sizeof in->err, EVREC_E_JSON, "member \"%s\" must be %s", member,
                expected);
}

static int jstring(json_in_t *in, const cJSON *item, const char **out)
{
    *out = NULL;
    if (!cJSON_IsString(item))
        return jfail(in, item->string, "a string");
    *out = item->valuestring;
    return EVREC_OK;
}

/* Apply a setter's result: on failure carry the event's message into the input's. */
static int jset(json_in_t *in, int rc)
{
    if (rc)
        snprintf(in->err, sizeof in->err, "%s", in->ev->err);
    return rc;
}

static int json_map(json_in_t *in, const cJSON *obj, int metrics)
{
    if (!cJSON_IsObject(obj))
        return jfail(in, obj->string, "an object");
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        int rc;
        if (metrics) {
            if (!cJSON_IsNumber(it))
                return util_failf(in->err, sizeof in->err, EVREC_E_JSON,
                            "member \"Metrics.%s\" must be a number", it->string);
            rc = evrec_event_set_metric(in->ev, it->string, it->valuedouble);
        } else {
            if (!cJSON_IsString(it))
                return util_failf(in->err, sizeof in->err, EVREC_E_JSON,
                            "member \"Attributes.%s\" must be a string", it->string);
            rc = evrec_event_set_attribute(in->ev, it->string, it->valuestring);
        }
        if (jset(in, rc))
            return rc;
    }
    return EVREC_OK;
}

static int json_iso(json_in_t *in, const cJSON *item, int64_t *ms)
{
    const char *s;
    int rc = jstring(in, item, &s);
    if (rc)
        return rc;
    if (event_parse_iso8601(s, ms))
        return util_failf(in->err, sizeof in->err, EVREC_E_TIMESTAMP,
                    "member \"%s\" is not an ISO 8601 date-time in 1970..9999", item->string);
    return EVREC_OK;
}

static int json_session(json_in_t *in, const cJSON *obj)
{
    evrec_event_t *ev = in->ev;
    if (!cJSON_IsObject(obj))
        return jfail(in, "Session", "an object");
    const cJSON *it;
    int have_id = 0, have_start = 0;
    cJSON_ArrayForEach(it, obj)
    {
        int rc;
        const char *s;
        if (strcmp(it->string, "Id") == 0) {
            if ((rc = jstring(in, it, &s)) ||
                (rc = jset(in, check_id(ev->err, sizeof ev->err, "Session.Id", s,
                                        RECORD_ID_BYTES_MAX, 1, 0))) ||
                (rc = set_str(&ev->session_id, s)))
                return rc;
            have_id = 1;
        } else if (strcmp(it->string, "StartTimestamp") == 0) {
            if ((rc = json_iso(in, it, &ev->session_start_ms)))
                return rc;
            have_start = 1;
        } else if (strcmp(it->string, "StopTimestamp") == 0) {
            if ((rc = json_iso(in, it, &ev->session_stop_ms)))
                return rc;
        } else if (strcmp(it->string, "Duration") == 0) {
            double d = it->valuedouble;
            if (!cJSON_IsNumber(it) || d < 0 || d > 2147483647.0 || d != floor(d))
                return jfail(in, "Session.Duration", "a non-negative integer (ms)");
            ev->session_duration_ms = (int64_t)d;
            ev->has_duration = 1;
        } else {
            return util_failf(in->err, sizeof in->err, EVREC_E_JSON,
                        "unknown member \"Session.%s\"", it->string);
        }
    }
    if (!have_id || !have_start)
        return util_failf(in->err, sizeof in->err, EVREC_E_JSON,
                    "member \"Session\" needs \"Id\" and \"StartTimestamp\"");
    ev->has_session = 1;
    return EVREC_OK;
}

/* Members both shapes accept. Returns 1 if `it` was not one of them. */
static int json_common(json_in_t *in, const cJSON *it, int *rc)
{
    const char *s;
    if (strcmp(it->string, "EventId") == 0) {
        *rc = jstring(in, it, &s);
        if (!*rc)
            *rc = jset(in, evrec_event_set_id(in->ev, s));
    } else if (strcmp(it->string, "EndpointId") == 0) {
        *rc = jstring(in, it, &s);
        if (!*rc)
            *rc = jset(in, evrec_event_set_endpoint_id(in->ev, s));
    } else {
        return 1;
    }
    return 0;
}

static int json_pinpoint(json_in_t *in, const cJSON *root)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, root)
    {
        int rc = 0;
        const char *s;
        const char *k = it->string;
        if (strcmp(k, "EventType") == 0) {
            continue; /* taken by evrec_event_new */
        } else if (strcmp(k, "Attributes") == 0) {
            rc = json_map(in, it, 0);
        } else if (strcmp(k, "Metrics") == 0) {
            rc = json_map(in, it, 1);
        } else if (strcmp(k, "Timestamp") == 0) {
            int64_t ms;
            rc = json_iso(in, it, &ms);
            if (!rc)
                rc = jset(in, evrec_event_set_timestamp(in->ev, ms));
        } else if (strcmp(k, "Session") == 0) {
            rc = json_session(in, it);
        } else if (json_common(in, it, &rc)) {
            int app = -1;
            for (int i = 0; i < APP_COUNT; i++)
                if (strcmp(k, app_field_names[i]) == 0)
                    app = i;
            if (app < 0)
                return util_failf(in->err, sizeof in->err, EVREC_E_JSON,
                            "unknown member \"%s\" in a Pinpoint Event", k);
            rc = jstring(in, it, &s);
            if (!rc)
                rc = jset(in, evrec_event_set_field(in->ev, k, s));
        }
        if (rc)
            return rc;
    }
    return EVREC_OK;
}

static int json_personalize_member(json_in_t *in, const cJSON *it)
{
    evrec_event_t *ev = in->ev;
    const char *k = it->string, *s;
    int rc = 0;
    if (strcmp(k, "eventType") == 0)
        return EVREC_OK;
    if (strcmp(k, "sentAt") == 0) {
        if (cJSON_IsNumber(it)) {
            double ms = it->valuedouble * 1000.0;
            if (!(ms >= (double)TS_MIN_MS && ms <= (double)TS_MAX_MS))
                return util_failf(in->err, sizeof in->err, EVREC_E_TIMESTAMP,
                            "member \"sentAt\" is outside 1970..9999");
            return jset(in, evrec_event_set_timestamp(ev, (int64_t)llround(ms)));
        }
        int64_t ms;
        if (!cJSON_IsString(it))
            return jfail(in, k, "epoch seconds (a number) or an ISO 8601 string");
        rc = json_iso(in, it, &ms);
        return rc ? rc : jset(in, evrec_event_set_timestamp(ev, ms));
    }
    if (strcmp(k, "eventValue") == 0) {
        if (!cJSON_IsNumber(it))
            return jfail(in, k, "a number");
        return jset(in, evrec_event_set_value(ev, it->valuedouble));
    }
    if (strcmp(k, "properties") == 0) {
        if (cJSON_IsObject(it)) {
            char *txt = cJSON_PrintUnformatted(it);
            if (!txt)
                return EVREC_E_NOMEM;
            rc = jset(in, evrec_event_set_properties(ev, txt));
            cJSON_free(txt);
            return rc;
        }
        if (!cJSON_IsString(it))
            return jfail(in, k, "a JSON object, or a string holding one");
        return jset(in, evrec_event_set_properties(ev, it->valuestring));
    }
    if (strcmp(k, "impression") == 0) {
        if (!cJSON_IsArray(it))
            return jfail(in, k, "an array of item ids");
        const cJSON *x;
        cJSON_ArrayForEach(x, it)
        {
            if (!cJSON_IsString(x))
                return jfail(in, "impression[]", "a string");
            if ((rc = jset(in, evrec_event_add_impression(ev, x->valuestring))))
                return rc;
        }
        return EVREC_OK;
    }
    if (strcmp(k, "metricAttribution") == 0) {
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(it, "eventAttributionSource");
        if (!cJSON_IsObject(it) || cJSON_GetArraySize(it) != 1 || !cJSON_IsString(src))
            return jfail(in, k, "an object with only \"eventAttributionSource\" (a string)");
        return jset(in, evrec_event_set_metric_attribution(ev, src->valuestring));
    }
    static const struct {
        const char *name;
        int (*set)(evrec_event_t *, const char *);
    } strs[] = {
        { "eventId", evrec_event_set_id },
        { "itemId", evrec_event_set_item_id },
        { "recommendationId", evrec_event_set_recommendation_id },
        { "userId", evrec_event_set_user_id },
        { "sessionId", evrec_event_set_session_id },
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strcmp(k, strs[i].name) == 0) {
            rc = jstring(in, it, &s);
            return rc ? rc : jset(in, strs[i].set(ev, s));
        }
    }
    if (!json_common(in, it, &rc))
        return rc;
    return util_failf(in->err, sizeof in->err, EVREC_E_JSON,
                "unknown member \"%s\" in a Personalize Event", k);
}

int event_from_json(evrec_event_t **out, const char *json, size_t len, char *err,
                    size_t errlen)
{
    if (!out || !json)
        return util_failf(err, errlen, EVREC_E_INVALID, "no JSON given");
    *out = NULL;
    if (len == 0)
        len = strlen(json);
    json_in_t in = { 0 };
    int rc = EVREC_E_JSON;
    cJSON *root = event_json_parse(json, len, "the event", in.err, sizeof in.err);
    if (!root)
        goto done;
    if (!cJSON_IsObject(root)) {
        snprintf(in.err, sizeof in.err, "the event is not a JSON object");
        goto done;
    }
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "EventType");
    const cJSON *pz = cJSON_GetObjectItemCaseSensitive(root, "eventType");
    const cJSON *type = pp ? pp : pz;
    if (pp && pz) {
        snprintf(in.err, sizeof in.err,
                 "the event has both \"EventType\" (Pinpoint) and \"eventType\" (Personalize)");
        goto done;
    }
    if (!type) {
        rc = EVREC_E_EVENT_TYPE;
        snprintf(in.err, sizeof in.err,
                 "the event has no \"EventType\" (Pinpoint) or \"eventType\" (Personalize)");
        goto done;
    }
    if (!cJSON_IsString(type)) {
        rc = jfail(&in, type->string, "a string");
        goto done;
    }
    rc = check_type(in.err, sizeof in.err, type->valuestring);
    if (rc == EVREC_OK)
        rc = evrec_event_new(&in.ev, type->valuestring);
    if (rc)
        goto done;
    rc = pp ? json_pinpoint(&in, root) : EVREC_OK;
    if (pz) {
        const cJSON *it;
        cJSON_ArrayForEach(it, root)
        {
            if ((rc = json_personalize_member(&in, it)))
                break;
        }
    }
    if (rc == EVREC_OK) {
        *out = in.ev;
        in.ev = NULL;
    }
done:
    cJSON_Delete(root);
    evrec_event_free(in.ev);
    if (rc)
        util_failf(err, errlen, rc, "%s", in.err);
    return rc;
}

EVREC_API int evrec_event_from_json(evrec_event_t **out, const char *json, size_t len)
{
    return event_from_json(out, json, len, NULL, 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Encoding                                                                                  */
/* ---------------------------------------------------------------------------------------- */

typedef struct enc {
    const event_context_t *ctx;
    int truncated;
    char *err;
    size_t errlen;
} enc_t;

/* A string limited to `max` characters: copied whole, truncated (truncate mode, counted), or
 * refused with `code`. Returns a cJSON string or NULL with *rc set. */
static cJSON *limited_string(enc_t *e, const char *what, const char *name, const char *s, long max,
                             int code, int *rc)
{
    size_t len = strlen(s);
    long n = util_utf8_chars(s, len);
    if (n < 0) {
        *rc = util_failf(e->err, e->errlen, EVREC_E_UTF8, "%s is not valid UTF-8", what);
        return NULL;
    }
    cJSON *item;
    if (n > max) {
        if (!e->ctx->truncate_oversize) {
            *rc = util_failf(e->err, e->errlen, code, "%s%s%s%s is %ld characters, more than %ld", what,
                       name ? " \"" : "", name ? name : "", name ? "\"" : "", n, max);
            return NULL;
        }
        char *cut = port_strndup(s, utf8_prefix(s, len, max));
        item = cut ? cJSON_CreateString(cut) : NULL;
        port_free(cut);
        e->truncated = 1;
    } else {
        item = cJSON_CreateString(s);
    }
    if (!item)
        *rc = EVREC_E_NOMEM;
    return item;
}

/* A name within EVENT_NAME_MAX (truncated in truncate mode) into buf. */
static int limited_name(enc_t *e, const char *kind, const char *name, char *buf, size_t buflen)
{
    size_t len = strlen(name);
    long n = util_utf8_chars(name, len);
    if (n < 0)
        return util_failf(e->err, e->errlen, EVREC_E_UTF8, "%s name is not valid UTF-8", kind);
    if (n > EVENT_NAME_MAX) {
        if (!e->ctx->truncate_oversize)
            return util_failf(e->err, e->errlen, EVREC_E_NAME_LENGTH,
                        "%s name \"%.50s...\" is %ld characters, more than %d", kind, name, n,
                        EVENT_NAME_MAX);
        len = utf8_prefix(name, len, EVENT_NAME_MAX);
        e->truncated = 1;
    }
    if (len >= buflen)
        return EVREC_E_INVALID;
    memcpy(buf, name, len);
    buf[len] = '\0';
    return EVREC_OK;
}

/* Put item under key, replacing an earlier one (names can collide after truncation). */
static int put(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return EVREC_E_NOMEM;
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item) ? EVREC_OK : EVREC_E_NOMEM;
    return cJSON_AddItemToObject(obj, key, item) ? EVREC_OK : (cJSON_Delete(item), EVREC_E_NOMEM);
}

/* Attributes and metrics into two objects (Pinpoint) or one (Personalize properties). */
static int encode_fields(enc_t *e, const evrec_event_t *ev, cJSON *attrs, cJSON *metrics)
{
    char name[EVENT_NAME_MAX * 4 + 1];
    for (size_t i = 0; i < ev->nfields; i++) {
        const ev_field_t *f = &ev->fields[i];
        const char *kind = f->is_metric ? "metric" : "attribute";
        int rc = limited_name(e, kind, f->name, name, sizeof name);
        if (rc)
            return rc;
        cJSON *target = f->is_metric ? metrics : attrs;
        if (attrs == metrics && cJSON_GetObjectItemCaseSensitive(target, name))
            return util_failf(e->err, e->errlen, EVREC_E_INVALID,
                        "attribute and metric both named \"%s\": Personalize properties has one "
                        "value per name", name);
        cJSON *item = f->is_metric ? cJSON_CreateNumber(f->number)
                                   : limited_string(e, "attribute", name, f->value,
                                                    EVENT_ATTR_VALUE_MAX, EVREC_E_VALUE_LENGTH,
                                                    &rc);
        if (rc)
            return rc;
        if ((rc = put(target, name, item)))
            return rc;
    }
    return EVREC_OK;
}

/* What the validation pass learnt of one attribute or metric, for the writing pass. */
typedef struct field_out {
    size_t name_len;  /* after truncation */
    size_t value_len; /* attribute, after truncation */
} field_out_t;

/* Validate (and, in truncate mode, cut) what limited_name() and limited_string() check, without
 * copying: the lengths to write go to *fo. */
static int check_field(enc_t *e, const ev_field_t *f, field_out_t *fo)
{
    const char *kind = f->is_metric ? "metric" : "attribute";
    /* The setters checked the UTF-8: counting characters only matters when there are more
     * bytes than the limit allows characters. */
    size_t len = strlen(f->name);
    long n = len <= EVENT_NAME_MAX ? (long)len : util_utf8_chars(f->name, len);
    if (n < 0)
        return util_failf(e->err, e->errlen, EVREC_E_UTF8, "%s name is not valid UTF-8", kind);
    if (n > EVENT_NAME_MAX) {
        if (!e->ctx->truncate_oversize)
            return util_failf(e->err, e->errlen, EVREC_E_NAME_LENGTH,
                                "%s name \"%.50s...\" is %ld characters, more than %d", kind,
                                f->name, n, EVENT_NAME_MAX);
        len = utf8_prefix(f->name, len, EVENT_NAME_MAX);
        e->truncated = 1;
    }
    fo->name_len = len;
    fo->value_len = 0;
    if (f->is_metric)
        return EVREC_OK;
    size_t vlen = strlen(f->value);
    long vn = vlen <= EVENT_ATTR_VALUE_MAX ? (long)vlen : util_utf8_chars(f->value, vlen);
    if (vn < 0)
        return util_failf(e->err, e->errlen, EVREC_E_UTF8, "attribute is not valid UTF-8");
    if (vn > EVENT_ATTR_VALUE_MAX) {
        if (!e->ctx->truncate_oversize)
            return util_failf(e->err, e->errlen, EVREC_E_VALUE_LENGTH,
                                "attribute \"%.*s\" is %ld characters, more than %ld", (int)len,
                                f->name, vn, (long)EVENT_ATTR_VALUE_MAX);
        vlen = utf8_prefix(f->value, vlen, EVENT_ATTR_VALUE_MAX);
        e->truncated = 1;
    }
    fo->value_len = vlen;
    return EVREC_OK;
}

static int same_name(const evrec_event_t *ev, const field_out_t *fo, size_t i, size_t j)
{
    return ev->fields[i].is_metric == ev->fields[j].is_metric &&
           fo[i].name_len == fo[j].name_len &&
           memcmp(ev->fields[i].name, ev->fields[j].name, fo[i].name_len) == 0;
}

/* The attributes (is_metric 0) or metrics (1) as a JSON object under `key`, if there are any.
 * Names only collide after truncation (setters replace a field of the same name): then, as
 * a JSON object keeps one value a name, the name stays where it first came with the value
 * that came last. */
static void write_fields(jsonw_t *w, const evrec_event_t *ev, const field_out_t *fo,
                         int collide, int is_metric, const char *key)
{
    int first = 1;
    for (size_t i = 0; i < ev->nfields; i++) {
        if (ev->fields[i].is_metric != is_metric)
            continue;
        size_t src = i;
        if (collide) {
            size_t j = 0;
            while (j < i && !same_name(ev, fo, i, j))
                j++;
            if (j < i)
                continue; /* written already */
            for (j = i + 1; j < ev->nfields; j++)
                if (same_name(ev, fo, i, j))
                    src = j;
        }
        jsonw_raw(w, first ? key : ",", first ? strlen(key) : 1);
        first = 0;
        const ev_field_t *f = &ev->fields[src];
        jsonw_str(w, ev->fields[i].name, fo[i].name_len);
        jsonw_raw(w, ":", 1);
        if (is_metric)
            jsonw_num(w, f->number);
        else
            jsonw_str(w, f->value, fo[src].value_len);
    }
    if (!first)
        jsonw_raw(w, "}", 1);
}

/* The dates an event carries repeat (its session's start; events of the same millisecond):
 * each thread keeps the last two it formatted. */
typedef struct iso_cache {
    int64_t ms;
    size_t len;
    char text[34]; /* quoted */
} iso_cache_t;
static _Thread_local iso_cache_t iso_cache[2] = { { -1, 0, "" }, { -1, 0, "" } };
static _Thread_local unsigned iso_next;

static void write_iso(jsonw_t *w, int64_t ms)
{
    iso_cache_t *c = &iso_cache[0];
    if (c->ms != ms) {
        c = &iso_cache[1];
        if (c->ms != ms) {
            c = &iso_cache[iso_next];
            iso_next ^= 1;
            c->text[0] = '"';
            event_format_iso8601(ms, c->text + 1);
            c->len = strlen(c->text);
            c->text[c->len++] = '"';
            c->ms = ms;
        }
    }
    jsonw_raw(w, c->text, c->len);
}

#define W_LIT(w, lit) jsonw_raw((w), (lit), sizeof(lit) - 1)

/* The Pinpoint Event, written straight into w: the members in the order the services' SDKs
 * send them. Validation first, over every field in order, so that the first problem is the
 * one reported whatever is written later. */
static int encode_pinpoint(enc_t *e, const evrec_event_t *ev, int64_t ts, jsonw_t *w)
{
    const event_context_t *ctx = e->ctx;
    size_t tlen = strlen(ev->type);
    long tn = tlen <= EVENT_TYPE_MAX ? (long)tlen : util_utf8_chars(ev->type, tlen);
    if (tn < 0)
        return util_failf(e->err, e->errlen, EVREC_E_UTF8, "event type is not valid UTF-8");
    if (tn > EVENT_TYPE_MAX) {
        if (!ctx->truncate_oversize)
            return util_failf(e->err, e->errlen, EVREC_E_EVENT_TYPE,
                                "event type is %ld characters, more than %ld", tn,
                                (long)EVENT_TYPE_MAX);
        tlen = utf8_prefix(ev->type, tlen, EVENT_TYPE_MAX);
        e->truncated = 1;
    }
    field_out_t fo[EVENT_FIELDS_MAX];
    int collide = 0;
    for (size_t i = 0; i < ev->nfields; i++) {
        int rc = check_field(e, &ev->fields[i], &fo[i]);
        if (rc)
            return rc;
        collide |= fo[i].name_len != strlen(ev->fields[i].name);
    }
    W_LIT(w, "{\"EventType\":");
    jsonw_str(w, ev->type, tlen);
    W_LIT(w, ",\"Timestamp\":");
    write_iso(w, ts);
    write_fields(w, ev, fo, collide, 0, ",\"Attributes\":{");
    write_fields(w, ev, fo, collide, 1, ",\"Metrics\":{");
    const char *sid = ev->has_session ? ev->session_id : ctx->session_id;
    if (sid) {
        int64_t start = ev->has_session ? ev->session_start_ms : ctx->session_start_ms;
        int64_t stop = ev->has_session ? ev->session_stop_ms : ctx->session_stop_ms;
        int has_dur = ev->has_session ? ev->has_duration : stop > 0;
        int64_t dur = ev->has_session ? ev->session_duration_ms : ctx->session_duration_ms;
        W_LIT(w, ",\"Session\":{\"Id\":");
        jsonw_str(w, sid, strlen(sid));
        W_LIT(w, ",\"StartTimestamp\":");
        write_iso(w, start);
        if (stop > 0) {
            W_LIT(w, ",\"StopTimestamp\":");
            write_iso(w, stop);
        }
        if (has_dur && dur >= 0) {
            W_LIT(w, ",\"Duration\":");
            jsonw_num(w, (double)dur);
        }
        W_LIT(w, "}");
    }
    for (int i = 0; i < APP_COUNT; i++) {
        const char *v = ev->app[i];
        if (!v && i == APP_SDK_NAME)
            v = "evrec";
        if (!v && i == APP_CLIENT_SDK_VERSION)
            v = EVREC_VERSION_STRING;
        if (v) {
            W_LIT(w, ",\"");
            jsonw_raw(w, app_field_names[i], strlen(app_field_names[i]));
            W_LIT(w, "\":");
            jsonw_str(w, v, strlen(v));
        }
    }
    W_LIT(w, "}");
    return EVREC_OK;
}

static int encode_personalize(enc_t *e, const evrec_event_t *ev, int64_t ts, cJSON *o)
{
    int rc = EVREC_OK;
    cJSON *type = limited_string(e, "eventType", NULL, ev->type, PZ_STRING_MAX,
                                 EVREC_E_EVENT_TYPE, &rc);
    if (rc || (rc = put(o, "eventType", type)) ||
        (rc = put(o, "sentAt", cJSON_CreateNumber((double)ts / 1000.0))) ||
        (rc = put(o, "eventId", cJSON_CreateString(ev->id))))
        return rc;
    if (ev->has_value && (rc = put(o, "eventValue", cJSON_CreateNumber(ev->value))))
        return rc;
    if (ev->item_id && (rc = put(o, "itemId", cJSON_CreateString(ev->item_id))))
        return rc;
    if (ev->properties && ev->nfields)
        return util_failf(e->err, e->errlen, EVREC_E_INVALID,
                    "the event sets both properties and attributes/metrics: for Personalize "
                    "use one of them");
    if (ev->properties) {
        rc = put(o, "properties", cJSON_CreateString(ev->properties));
    } else if (ev->nfields) {
        cJSON *props = cJSON_CreateObject();
        if (!props)
            return EVREC_E_NOMEM;
        char *txt = NULL;
        rc = encode_fields(e, ev, props, props);
        if (!rc && !(txt = cJSON_PrintUnformatted(props)))
            rc = EVREC_E_NOMEM;
        cJSON_Delete(props);
        long n = txt ? util_utf8_chars(txt, strlen(txt)) : 0;
        if (!rc && n > EVENT_PROPERTIES_MAX)
            rc = util_failf(e->err, e->errlen, EVREC_E_VALUE_LENGTH,
                      "attributes and metrics make properties of %ld characters, more than %d",
                      n, EVENT_PROPERTIES_MAX);
        if (!rc)
            rc = put(o, "properties", cJSON_CreateString(txt));
        cJSON_free(txt);
    }
    if (rc)
        return rc;
    if (ev->recommendation_id &&
        (rc = put(o, "recommendationId", cJSON_CreateString(ev->recommendation_id))))
        return rc;
    if (ev->nimpressions) {
        cJSON *arr = cJSON_CreateStringArray((const char *const *)ev->impressions,
                                             (int)ev->nimpressions);
        if ((rc = put(o, "impression", arr)))
            return rc;
    }
    if (ev->attribution) {
        cJSON *ma = cJSON_CreateObject();
        if ((rc = put(o, "metricAttribution", ma)) ||
            (rc = put(ma, "eventAttributionSource", cJSON_CreateString(ev->attribution))))
            return rc;
    }
    return EVREC_OK;
}

int event_encode_record_in(evrec_event_t *ev, const event_context_t *ctx, uint8_t *buf,
                           size_t cap, uint8_t **out, size_t *len, int *truncated, char *err,
                           size_t errlen)
{
    if (!ev || !ctx || !out || !len)
        return util_failf(err, errlen, EVREC_E_INVALID, "event_encode_record: NULL argument");
    *out = NULL;
    *len = 0;
    if (truncated)
        *truncated = 0;
    if (err && errlen)
        err[0] = '\0';
    enc_t e = { ctx, 0, err, errlen };
    unsigned shape = event_shape(ev, ctx->preferred_shape);
    int pz = shape == RECORD_SHAPE_PERSONALIZE;
    int64_t ts = ev->has_timestamp ? ev->timestamp_ms : ctx->now_ms;
    if (ts < TS_MIN_MS || ts > TS_MAX_MS)
        return util_failf(err, errlen, EVREC_E_TIMESTAMP, "timestamp %lld ms is out of range",
                    (long long)ts);
    /* It would only be stored to be dropped as expired: refuse it now, where the caller hears. */
    if (ctx->max_age_ms != 0 && ctx->now_ms > ts && (uint64_t)(ctx->now_ms - ts) > ctx->max_age_ms)
        return util_failf(err, errlen, EVREC_E_TOO_OLD,
                            "timestamp %lld ms is %llu ms old; max_event_age is %llu ms",
                            (long long)ts, (unsigned long long)(ctx->now_ms - ts),
                            (unsigned long long)ctx->max_age_ms);
    const char *endpoint = ev->endpoint_id ? ev->endpoint_id : ctx->endpoint_id;
    const char *session = NULL, *user = NULL;
    if (!endpoint || !*endpoint) /* events are batched (and stored) under their endpoint */
        return util_failf(err, errlen, EVREC_E_ID,
                            "the event has no endpoint id: set one on the event or give the "
                            "agent's");
    if (endpoint && strlen(endpoint) > RECORD_ID_BYTES_MAX)
        return util_failf(err, errlen, EVREC_E_ID, "endpoint id is longer than %d bytes",
                    RECORD_ID_BYTES_MAX);
    if (pz) {
        session = ev->session_id ? ev->session_id : ctx->session_id;
        user = ev->user_id ? ev->user_id : ctx->user_id;
        if (!session || !*session)
            return util_failf(err, errlen, EVREC_E_ID,
                        "a Personalize event needs a sessionId: set one on the event or start "
                        "a session");
        int rc = check_id(err, errlen, "sessionId", session, PZ_STRING_MAX, 1, 0);
        if (!rc && user && *user)
            rc = check_id(err, errlen, "userId", user, PZ_STRING_MAX, 1, 0);
        if (rc)
            return rc;
    }
    int rc;
    if (!ev->id[0] && (rc = event_uuid_v4(ev->id)))
        return util_failf(err, errlen, rc, "no secure random bytes for the event id");

    evrec_record_view_t v = { 0 };
    v.format = EVREC_RECORD_FORMAT;
    v.shape = (uint8_t)shape;
    v.created_ms = ts;
    v.event_id = ev->id;
    v.event_id_len = strlen(ev->id);
    v.endpoint_id = endpoint;
    v.endpoint_id_len = strlen(endpoint);
    v.session_id = session ? session : "";
    v.session_id_len = session ? strlen(session) : 0;
    v.user_id = user ? user : "";
    v.user_id_len = user ? strlen(user) : 0;
    size_t fixed = evrec_record_size(&v); /* all but the fragment */
    char *frag = NULL;                    /* Personalize: cJSON's text */
    size_t flen;
    if (pz) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            return EVREC_E_NOMEM;
        rc = encode_personalize(&e, ev, ts, o);
        frag = rc ? NULL : cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (rc)
            return rc;
        if (!frag)
            return EVREC_E_NOMEM;
        flen = strlen(frag);
    } else { /* Pinpoint: written in place, after the header and the ids */
        jsonw_t w;
        jsonw_init(&w, cap > fixed ? (char *)buf + fixed - 1 : NULL, cap > fixed ? cap - fixed : 0);
        if ((rc = encode_pinpoint(&e, ev, ts, &w)))
            return rc;
        flen = w.len;
    }
    if (flen > EVENT_MAX_BYTES) {
        cJSON_free(frag);
        return util_failf(err, errlen, EVREC_E_EVENT_SIZE, "the encoded event is %zu bytes, more than %d",
                    flen, EVENT_MAX_BYTES);
    }
    uint8_t *dst = fixed + flen <= cap ? buf : port_malloc(fixed + flen);
    if (!dst) {
        cJSON_free(frag);
        return EVREC_E_NOMEM;
    }
    if (!pz && dst != buf) { /* it did not fit: write it again where it does */
        jsonw_t w;
        jsonw_init(&w, (char *)dst + fixed - 1, flen);
        e.truncated = 0;
        encode_pinpoint(&e, ev, ts, &w);
    }
    v.flags = e.truncated ? EVREC_RECORD_F_TRUNCATED : 0;
    v.fragment = frag ? frag : (const char *)dst + fixed - 1;
    v.fragment_len = flen;
    *len = evrec_record_encode(&v, dst);
    cJSON_free(frag);
    *out = dst;
    if (truncated)
        *truncated = e.truncated;
    return EVREC_OK;
}

int event_encode_record(evrec_event_t *ev, const event_context_t *ctx, uint8_t **out,
                        size_t *len, int *truncated, char *err, size_t errlen)
{
    uint8_t stack[2048];
    uint8_t *rec = NULL;
    int rc = event_encode_record_in(ev, ctx, stack, sizeof stack, &rec, len, truncated, err,
                                    errlen);
    if (rc || rec != stack) {
        if (out)
            *out = rec;
        return rc;
    }
    *out = port_malloc(*len);
    if (!*out)
        return EVREC_E_NOMEM;
    memcpy(*out, stack, *len);
    return EVREC_OK;
}
