/*
 * Events from JSON input: evrec_event_from_json() (a Pinpoint Event or a Personalize Event as
 * the services' APIs spell them), the strict parse every JSON input of the library goes through
 * (event_json_parse: no NUL, no key twice, nothing after the value), and Personalize's
 * properties. Each member goes through the builder's setter, so JSON input and the API refuse
 * the same things with the same messages.
 */
#include "event.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "event_internal.h"
#include "port.h"
#include "util_str.h"

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
                (rc = jset(in, event_check_id_in(ev->err, sizeof ev->err, "Session.Id", s,
                                        RECORD_ID_BYTES_MAX, 1, 0))) ||
                (rc = event_set_str(&ev->session_id, s)))
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
                if (strcmp(k, event_app_field_names[i]) == 0)
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

/* sentAt: epoch seconds (a number) or an ISO 8601 string. */
static int json_sent_at(json_in_t *in, const cJSON *it)
{
    if (cJSON_IsNumber(it)) {
        double ms = it->valuedouble * 1000.0;
        if (!(ms >= (double)TS_MIN_MS && ms <= (double)TS_MAX_MS))
            return util_failf(in->err, sizeof in->err, EVREC_E_TIMESTAMP,
                        "member \"sentAt\" is outside 1970..9999");
        return jset(in, evrec_event_set_timestamp(in->ev, (int64_t)llround(ms)));
    }
    int64_t ms;
    if (!cJSON_IsString(it))
        return jfail(in, it->string, "epoch seconds (a number) or an ISO 8601 string");
    int rc = json_iso(in, it, &ms);
    return rc ? rc : jset(in, evrec_event_set_timestamp(in->ev, ms));
}

/* properties: a JSON object, or a string holding one (the API's spelling). */
static int json_properties(json_in_t *in, const cJSON *it)
{
    if (cJSON_IsObject(it)) {
        char *txt = cJSON_PrintUnformatted(it);
        if (!txt)
            return EVREC_E_NOMEM;
        int rc = jset(in, evrec_event_set_properties(in->ev, txt));
        cJSON_free(txt);
        return rc;
    }
    if (!cJSON_IsString(it))
        return jfail(in, it->string, "a JSON object, or a string holding one");
    return jset(in, evrec_event_set_properties(in->ev, it->valuestring));
}

static int json_impressions(json_in_t *in, const cJSON *it)
{
    if (!cJSON_IsArray(it))
        return jfail(in, it->string, "an array of item ids");
    const cJSON *x;
    cJSON_ArrayForEach(x, it)
    {
        if (!cJSON_IsString(x))
            return jfail(in, "impression[]", "a string");
        int rc = jset(in, evrec_event_add_impression(in->ev, x->valuestring));
        if (rc)
            return rc;
    }
    return EVREC_OK;
}

static int json_attribution(json_in_t *in, const cJSON *it)
{
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(it, "eventAttributionSource");
    if (!cJSON_IsObject(it) || cJSON_GetArraySize(it) != 1 || !cJSON_IsString(src))
        return jfail(in, it->string, "an object with only \"eventAttributionSource\" (a string)");
    return jset(in, evrec_event_set_metric_attribution(in->ev, src->valuestring));
}

static int json_personalize_member(json_in_t *in, const cJSON *it)
{
    static const struct {
        const char *name;
        int (*member)(json_in_t *, const cJSON *);
    } parsed[] = {
        { "sentAt", json_sent_at },
        { "properties", json_properties },
        { "impression", json_impressions },
        { "metricAttribution", json_attribution },
    };
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
    const char *k = it->string, *s;
    int rc = 0;
    if (strcmp(k, "eventType") == 0)
        return EVREC_OK; /* taken by evrec_event_new */
    if (strcmp(k, "eventValue") == 0) {
        if (!cJSON_IsNumber(it))
            return jfail(in, k, "a number");
        return jset(in, evrec_event_set_value(in->ev, it->valuedouble));
    }
    for (size_t i = 0; i < sizeof parsed / sizeof parsed[0]; i++)
        if (strcmp(k, parsed[i].name) == 0)
            return parsed[i].member(in, it);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strcmp(k, strs[i].name) == 0) {
            rc = jstring(in, it, &s);
            return rc ? rc : jset(in, strs[i].set(in->ev, s));
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
    rc = event_check_type(in.err, sizeof in.err, type->valuestring);
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
