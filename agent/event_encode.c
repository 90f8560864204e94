/*
 * An event's one-time encoding into a stored record (record.h): the whole-event checks for its
 * shape, then the fragment the request bodies splice, a Pinpoint Event written in place with
 * jsonw or a Personalize Event built with cJSON. Over-long names and values are refused or,
 * in truncate_oversize mode, cut and counted.
 */
#include "event.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "event_internal.h"
#include "jsonw.h"
#include "port.h"
#include "record.h"
#include "util_str.h"
#include "util_utf8.h"

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
        char *cut = port_strndup(s, event_utf8_prefix(s, len, max));
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
        len = event_utf8_prefix(name, len, EVENT_NAME_MAX);
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
        len = event_utf8_prefix(f->name, len, EVENT_NAME_MAX);
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
        vlen = event_utf8_prefix(f->value, vlen, EVENT_ATTR_VALUE_MAX);
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
        tlen = event_utf8_prefix(ev->type, tlen, EVENT_TYPE_MAX);
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
            jsonw_raw(w, event_app_field_names[i], strlen(event_app_field_names[i]));
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

/* The ids the record is stored under (record.h's header), after the context's checks: age,
 * endpoint, and a Personalize event's sessionId / userId. */
typedef struct rec_ids {
    const char *endpoint, *session, *user;
} rec_ids_t;

static int check_context(const evrec_event_t *ev, const event_context_t *ctx, int pz, int64_t ts,
                         rec_ids_t *ids, char *err, size_t errlen)
{
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
    ids->endpoint = endpoint;
    ids->session = ids->user = NULL;
    if (!endpoint || !*endpoint) /* events are batched (and stored) under their endpoint */
        return util_failf(err, errlen, EVREC_E_ID,
                            "the event has no endpoint id: set one on the event or give the "
                            "agent's");
    if (endpoint && strlen(endpoint) > RECORD_ID_BYTES_MAX)
        return util_failf(err, errlen, EVREC_E_ID, "endpoint id is longer than %d bytes",
                    RECORD_ID_BYTES_MAX);
    if (!pz)
        return EVREC_OK;
    const char *session = ev->session_id ? ev->session_id : ctx->session_id;
    const char *user = ev->user_id ? ev->user_id : ctx->user_id;
    ids->session = session;
    ids->user = user;
    if (!session || !*session)
        return util_failf(err, errlen, EVREC_E_ID,
                    "a Personalize event needs a sessionId: set one on the event or start "
                    "a session");
    int rc = event_check_id_in(err, errlen, "sessionId", session, PZ_STRING_MAX, 1, 0);
    if (!rc && user && *user)
        rc = event_check_id_in(err, errlen, "userId", user, PZ_STRING_MAX, 1, 0);
    return rc;
}

/* The fragment: a Personalize Event as cJSON's text (*frag, cJSON_free'd by the caller), or a
 * Pinpoint Event written in place into buf after the record's `fixed` bytes (*frag NULL; when
 * it does not fit, only its length is counted). *flen: its length. */
static int encode_fragment(enc_t *e, const evrec_event_t *ev, int pz, int64_t ts, uint8_t *buf,
                           size_t cap, size_t fixed, char **frag, size_t *flen)
{
    *frag = NULL;
    if (pz) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            return EVREC_E_NOMEM;
        int rc = encode_personalize(e, ev, ts, o);
        *frag = rc ? NULL : cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (rc)
            return rc;
        if (!*frag)
            return EVREC_E_NOMEM;
        *flen = strlen(*frag);
        return EVREC_OK;
    }
    jsonw_t w; /* Pinpoint: written in place, after the header and the ids */
    jsonw_init(&w, cap > fixed ? (char *)buf + fixed - 1 : NULL, cap > fixed ? cap - fixed : 0);
    int rc = encode_pinpoint(e, ev, ts, &w);
    *flen = w.len;
    return rc;
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
    rec_ids_t ids = { 0 };
    int rc = check_context(ev, ctx, pz, ts, &ids, err, errlen);
    if (rc)
        return rc;
    if (!ev->id[0] && (rc = event_uuid_v4(ev->id)))
        return util_failf(err, errlen, rc, "no secure random bytes for the event id");

    evrec_record_view_t v = { 0 };
    v.format = EVREC_RECORD_FORMAT;
    v.shape = (uint8_t)shape;
    v.created_ms = ts;
    v.event_id = ev->id;
    v.event_id_len = strlen(ev->id);
    v.endpoint_id = ids.endpoint;
    v.endpoint_id_len = strlen(ids.endpoint);
    v.session_id = ids.session ? ids.session : "";
    v.session_id_len = ids.session ? strlen(ids.session) : 0;
    v.user_id = ids.user ? ids.user : "";
    v.user_id_len = ids.user ? strlen(ids.user) : 0;
    size_t fixed = evrec_record_size(&v); /* all but the fragment */
    char *frag = NULL;                    /* Personalize: cJSON's text */
    size_t flen = 0;
    if ((rc = encode_fragment(&e, ev, pz, ts, buf, cap, fixed, &frag, &flen)))
        return rc;
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
