/* Records for Kinesis Data Streams and Data Firehose (service_stream.h). */
#include "service_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "jsonw.h"
#include "port.h"
#include "record.h"
#include "wire_internal.h"

/* The version Pinpoint's event streams wrote; consumers built on them read this shape. */
#define STREAM_EVENT_VERSION "3.1"
/* What the record's own keys, timestamps and fixed members add to an event's fragment, at
 * most (the fragment's values and the profile's are counted separately). */
#define STREAM_RECORD_OVERHEAD 768u
#define STREAM_KEY_BOUND 256u /* PartitionKey: at most 256 characters (ids are shorter) */

/* -- building one record ------------------------------------------------------------------- */

/* Add item under `key`, a string literal (kept by reference, never copied or freed). */
static int add(cJSON *obj, const char *key, cJSON *item)
{
    if (item == NULL)
        return EVREC_E_NOMEM;
    if (!cJSON_AddItemToObjectCS(obj, key, item)) {
        cJSON_Delete(item);
        return EVREC_E_NOMEM;
    }
    return EVREC_OK;
}

/* Move member `from` of src (if any) into dst as `to`. */
static int move(cJSON *src, const char *from, cJSON *dst, const char *to)
{
    cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(src, from);
    return it ? add(dst, to, it) : EVREC_OK;
}

/* Copy string member `from` of src (if any) into dst as `to`. */
static int copy_string(const cJSON *src, const char *from, cJSON *dst, const char *to)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(src, from);
    if (!cJSON_IsString(it) || it->valuestring == NULL)
        return EVREC_OK;
    return add(dst, to, cJSON_CreateString(it->valuestring));
}

/* Epoch milliseconds as an integer (printed as such: no floating-point round trip). */
static int add_ms(cJSON *dst, const char *key, int64_t ms)
{
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)ms);
    return add(dst, key, cJSON_CreateRaw(text));
}

/* An ISO 8601 member of src as epoch milliseconds in dst (left out if it does not parse). */
static int epoch_ms(const cJSON *src, const char *from, cJSON *dst, const char *to)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(src, from);
    int64_t ms = 0;
    if (!cJSON_IsString(it) || event_parse_iso8601(it->valuestring, &ms) != EVREC_OK)
        return EVREC_OK;
    return add_ms(dst, to, ms);
}

/* An object member of dst, created if missing. */
static cJSON *object(cJSON *dst, const char *key, int *rc)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(dst, key);
    if (o != NULL)
        return o;
    o = cJSON_CreateObject();
    if ((*rc = add(dst, key, o)) != EVREC_OK)
        return NULL;
    return o;
}

/* device.locale from "en_US": {"code":"en_US","language":"en","country":"US"}. */
static int add_locale(cJSON *device, const char *locale)
{
    cJSON *l = cJSON_CreateObject();
    int rc = add(device, "locale", l);
    if (rc != EVREC_OK)
        return rc;
    char lang[64] = "", country[64] = "";
    const char *sep = strpbrk(locale, "_-");
    size_t n = sep ? (size_t)(sep - locale) : strlen(locale);
    snprintf(lang, sizeof lang, "%.*s", (int)(n < sizeof lang ? n : sizeof lang - 1), locale);
    if (sep)
        snprintf(country, sizeof country, "%s", sep + 1);
    if ((rc = add(l, "code", cJSON_CreateString(locale))) != EVREC_OK)
        return rc;
    if (lang[0] && (rc = add(l, "language", cJSON_CreateString(lang))) != EVREC_OK)
        return rc;
    if (country[0] && (rc = add(l, "country", cJSON_CreateString(country))) != EVREC_OK)
        return rc;
    return EVREC_OK;
}

/* application, device and endpoint members from the endpoint's profile (parsed once for a
 * run of one endpoint's events; its text is spliced in as it is stored). */
static int from_profile(cJSON *out, cJSON *application, const stream_profile_t *profile)
{
    const cJSON *p = profile ? profile->parsed : NULL;
    if (!cJSON_IsObject(p))
        return EVREC_OK; /* none, or not an object: profiles are validated when stored */
    int rc = EVREC_OK;
    const cJSON *demo = cJSON_GetObjectItemCaseSensitive(p, "Demographic");
    if (cJSON_IsObject(demo)) {
        rc = copy_string(demo, "AppVersion", application, "version_name");
        cJSON *device = rc ? NULL : object(out, "device", &rc);
        const cJSON *locale = cJSON_GetObjectItemCaseSensitive(demo, "Locale");
        if (device && cJSON_IsString(locale) && locale->valuestring[0])
            rc = add_locale(device, locale->valuestring);
        if (device && !rc)
            rc = copy_string(demo, "Make", device, "make");
        if (device && !rc)
            rc = copy_string(demo, "Model", device, "model");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(demo, "Platform");
        const cJSON *version = cJSON_GetObjectItemCaseSensitive(demo, "PlatformVersion");
        if (device && !rc && (cJSON_IsString(name) || cJSON_IsString(version))) {
            cJSON *platform = object(device, "platform", &rc);
            if (platform && !rc)
                rc = copy_string(demo, "Platform", platform, "name");
            if (platform && !rc)
                rc = copy_string(demo, "PlatformVersion", platform, "version");
        }
    }
    if (!rc) /* the whole profile, as the endpoint's event streams had it */
        rc = add(out, "endpoint", wire_raw_reference(profile->text));
    return rc;
}

/* A Pinpoint Event fragment in the shape of Pinpoint's event stream records. */
static int pinpoint_record(const service_ctx_t *c, const batch_event_t *ev,
                           const stream_profile_t *profile, cJSON *frag, cJSON *out)
{
    int rc = move(frag, "EventType", out, "event_type");
    if (!rc)
        rc = epoch_ms(frag, "Timestamp", out, "event_timestamp");
    if (!rc)
        rc = add_ms(out, "arrival_timestamp", c->now_ms ? c->now_ms : port_wall_ms());
    if (!rc)
        rc = add(out, "event_version", cJSON_CreateString(STREAM_EVENT_VERSION));
    if (!rc)
        rc = add(out, "event_id", cJSON_CreateString(ev->event_id));
    cJSON *application = rc ? NULL : object(out, "application", &rc);
    if (application && !rc && c->application_id && c->application_id[0])
        rc = add(application, "app_id", cJSON_CreateString(c->application_id));
    if (application && !rc)
        rc = move(frag, "AppPackageName", application, "package_name");
    if (application && !rc)
        rc = move(frag, "AppTitle", application, "title");
    if (application && !rc)
        rc = move(frag, "AppVersionCode", application, "version_code");
    cJSON *sdk = application && !rc ? object(application, "sdk", &rc) : NULL;
    if (sdk && !rc)
        rc = move(frag, "SdkName", sdk, "name");
    if (sdk && !rc)
        rc = move(frag, "ClientSdkVersion", sdk, "version");
    cJSON *client = rc ? NULL : object(out, "client", &rc);
    if (client && !rc)
        rc = add(client, "client_id", cJSON_CreateString(ev->endpoint_id));
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(frag, "Session");
    if (!rc && cJSON_IsObject(s)) {
        cJSON *session = object(out, "session", &rc);
        if (session && !rc)
            rc = copy_string(s, "Id", session, "session_id");
        if (session && !rc)
            rc = epoch_ms(s, "StartTimestamp", session, "start_timestamp");
        if (session && !rc)
            rc = epoch_ms(s, "StopTimestamp", session, "stop_timestamp");
    }
    if (!rc) {
        cJSON *a = cJSON_DetachItemFromObjectCaseSensitive(frag, "Attributes");
        rc = add(out, "attributes", a ? a : cJSON_CreateObject());
    }
    if (!rc) {
        cJSON *m = cJSON_DetachItemFromObjectCaseSensitive(frag, "Metrics");
        rc = add(out, "metrics", m ? m : cJSON_CreateObject());
    }
    if (!rc)
        rc = from_profile(out, application, profile);
    return rc;
}

/* A Personalize Event fragment as its own JSON, with the userId and sessionId the record's
 * header keeps. */
static int personalize_record(const batch_event_t *ev, cJSON *frag, cJSON *out)
{
    int rc = EVREC_OK;
    if (ev->user_id && ev->user_id[0])
        rc = add(out, "userId", cJSON_CreateString(ev->user_id));
    if (!rc && ev->session_id && ev->session_id[0])
        rc = add(out, "sessionId", cJSON_CreateString(ev->session_id));
    cJSON *it;
    while (!rc && (it = frag->child) != NULL) {
        cJSON_DetachItemViaPointer(frag, it);
        if (!cJSON_AddItemToObject(out, it->string, it)) {
            cJSON_Delete(it);
            rc = EVREC_E_NOMEM;
        }
    }
    return rc;
}

int stream_record_data_tree(const stream_format_t *fmt, const service_ctx_t *c,
                            const batch_event_t *ev, const stream_profile_t *profile, char **out,
                            size_t *len)
{
    *out = NULL;
    *len = 0;
    if (ev->fragment == NULL)
        return EVREC_E_INVALID;
    cJSON *frag = cJSON_ParseWithLength(ev->fragment, ev->fragment_len);
    if (!cJSON_IsObject(frag)) {
        cJSON_Delete(frag);
        return EVREC_E_CORRUPT;
    }
    cJSON *rec = cJSON_CreateObject();
    int rc = rec == NULL ? EVREC_E_NOMEM
             : ev->shape == RECORD_SHAPE_PERSONALIZE ? personalize_record(ev, frag, rec)
                                                     : pinpoint_record(c, ev, profile, frag, rec);
    cJSON_Delete(frag);
    char *text = rc ? NULL : cJSON_PrintUnformatted(rec);
    cJSON_Delete(rec);
    if (rc)
        return rc;
    if (text == NULL)
        return EVREC_E_NOMEM;
    size_t n = strlen(text);
    if (fmt->newline) {
        char *grown = port_realloc(text, n + 2);
        if (grown == NULL) {
            port_free(text);
            return EVREC_E_NOMEM;
        }
        text = grown;
        text[n++] = '\n';
        text[n] = '\0';
    }
    *out = text;
    *len = n;
    return EVREC_OK;
}


/* -- the fast path: a fragment in the layout event_encode.c writes ------------------------ */

/* event_encode.c writes a Pinpoint fragment with jsonw (strings and numbers exactly as cJSON
 * prints them), its members in one order, no white space. Such a fragment converts by copying its
 * tokens: the output is the tree conversion's, byte for byte. Anything else (older layouts,
 * other escapes or number spellings, nesting, white space) takes the tree conversion. */

typedef struct span {
    const char *p; /* the token, quotes included; NULL if the member is absent */
    size_t n;
} span_t;

/* The end of the string token at s if it is spelled as cJSON prints strings, else NULL. */
static const char *scan_string(const char *s, const char *end)
{
    if (s >= end || *s != '"')
        return NULL;
    for (s++; s < end; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"')
            return s + 1;
        if (ch < 0x20)
            return NULL;
        if (ch != '\\')
            continue;
        if (++s >= end)
            return NULL;
        switch (*s) {
        case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't':
            break;
        case 'u': {
            if (end - s < 5 || s[1] != '0' || s[2] != '0' || (s[3] != '0' && s[3] != '1'))
                return NULL;
            char h = s[4];
            int lo = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : -1;
            int v = lo < 0 ? -1 : (s[3] - '0') * 16 + lo;
            if (v <= 0 || v == '\b' || v == '\t' || v == '\n' || v == '\f' || v == '\r')
                return NULL; /* cJSON writes these short, and cuts a string at a NUL */
            s += 4;
            break;
        }
        default:
            return NULL;
        }
    }
    return NULL;
}

/* The end of a JSON number token at s (at most 63 characters, as cJSON reads them), or NULL. */
static const char *scan_number(const char *s, const char *end)
{
    const char *p = s;
#define DIGITS(q) while ((q) < end && *(q) >= '0' && *(q) <= '9') (q)++
    if (p < end && *p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    if (*p == '0')
        p++;
    else
        DIGITS(p);
    if (p < end && *p == '.') {
        const char *d = ++p;
        DIGITS(p);
        if (p == d)
            return NULL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *d = p;
        DIGITS(p);
        if (p == d)
            return NULL;
    }
#undef DIGITS
    return p - s <= 63 ? p : NULL;
}

static int is_lit(const char *s, const char *end, const char *lit, size_t n)
{
    return (size_t)(end - s) >= n && memcmp(s, lit, n) == 0;
}

/* A flat object ({"key":value,...}, values strings, numbers, true, false, null): its end. */
static const char *scan_flat_object(const char *s, const char *end)
{
    if (s >= end || *s != '{')
        return NULL;
    s++;
    if (s < end && *s == '}')
        return s + 1;
    for (;;) {
        s = scan_string(s, end);
        if (s == NULL || s >= end || *s != ':')
            return NULL;
        s++;
        if (s < end && *s == '"')
            s = scan_string(s, end);
        else if (is_lit(s, end, "true", 4))
            s += 4;
        else if (is_lit(s, end, "false", 5))
            s += 5;
        else if (is_lit(s, end, "null", 4))
            s += 4;
        else
            s = scan_number(s, end);
        if (s == NULL || s >= end)
            return NULL;
        if (*s == '}')
            return s + 1;
        if (*s != ',')
            return NULL;
        s++;
    }
}

/* Members of an object whose keys come in the order of `keys` (each at most once); their value
 * tokens in spans. Values: strings, or for `obj_mask` keys flat objects, for `num_mask` keys
 * numbers, for `nested` a {...} read by scan_session. Returns the object's end or NULL. */
typedef struct key {
    const char *name;
    size_t len; /* with its quotes */
    char kind;  /* 's' string, 'o' flat object, 'n' number, 'S' the session */
} member_key_t;

static const char *scan_members(const char *s, const char *end, const member_key_t *keys, size_t nkeys,
                                span_t *spans);

static const member_key_t session_keys[] = {
    { "\"Id\"", 4, 's' },
    { "\"StartTimestamp\"", 16, 's' },
    { "\"StopTimestamp\"", 15, 's' },
    { "\"Duration\"", 10, 'n' },
};
enum { S_ID, S_START, S_STOP, S_DURATION, S_KEYS };

static const member_key_t fragment_keys[] = {
    { "\"EventType\"", 11, 's' },
    { "\"Timestamp\"", 11, 's' },
    { "\"Attributes\"", 12, 'o' },
    { "\"Metrics\"", 9, 'o' },
    { "\"Session\"", 9, 'S' },
    { "\"AppPackageName\"", 16, 's' },
    { "\"AppTitle\"", 10, 's' },
    { "\"AppVersionCode\"", 16, 's' },
    { "\"ClientSdkVersion\"", 18, 's' },
    { "\"SdkName\"", 9, 's' },
};
enum { F_TYPE, F_TIMESTAMP, F_ATTRIBUTES, F_METRICS, F_SESSION, F_PACKAGE, F_TITLE,
       F_VERSION_CODE, F_SDK_VERSION, F_SDK_NAME, F_KEYS };

typedef struct scanned {
    span_t f[F_KEYS];
    span_t s[S_KEYS];
} scanned_t;

static const char *scan_members(const char *s, const char *end, const member_key_t *keys, size_t nkeys,
                                span_t *spans)
{
    if (s >= end || *s != '{')
        return NULL;
    s++;
    if (s < end && *s == '}')
        return s + 1;
    size_t next = 0;
    for (;;) {
        size_t k = next;
        while (k < nkeys && !(is_lit(s, end, keys[k].name, keys[k].len) &&
                              s + keys[k].len < end && s[keys[k].len] == ':'))
            k++;
        if (k == nkeys)
            return NULL; /* unknown, repeated or out of order */
        next = k + 1;
        s += keys[k].len + 1;
        const char *v = s;
        switch (keys[k].kind) {
        case 's': s = scan_string(s, end); break;
        case 'o': s = scan_flat_object(s, end); break;
        case 'n': s = scan_number(s, end); break;
        default:
            s = scan_members(s, end, session_keys, S_KEYS, spans + F_KEYS);
            break;
        }
        if (s == NULL || s >= end)
            return NULL;
        spans[k].p = v;
        spans[k].n = (size_t)(s - v);
        if (*s == '}')
            return s + 1;
        if (*s != ',')
            return NULL;
        s++;
    }
}

/* An ISO 8601 string token as epoch ms; 0 if it does not parse (the member is left out),
 * -1 if the token has escapes (the tree conversion decides). */
static int token_ms(span_t t, int64_t *ms)
{
    char text[64];
    if (t.n < 2 || t.n - 2 >= sizeof text || memchr(t.p, '\\', t.n) != NULL)
        return -1;
    memcpy(text, t.p + 1, t.n - 2);
    text[t.n - 2] = '\0';
    return event_parse_iso8601(text, ms) == EVREC_OK ? 1 : 0;
}

static void put_ms(jsonw_t *w, int64_t ms)
{
    char text[24];
    size_t n = sizeof text;
    uint64_t u = ms < 0 ? 0 - (uint64_t)ms : (uint64_t)ms;
    do {
        text[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (ms < 0)
        text[--n] = '-';
    jsonw_raw(w, text + n, sizeof text - n);
}

#define W_LIT(w, lit) jsonw_raw((w), (lit), sizeof(lit) - 1)

static void put_span(jsonw_t *w, span_t t)
{
    jsonw_raw_slow(w, t.p, t.n);
}

/* A flat object with its numbers as cJSON prints them once read back. */
static void put_flat_object(jsonw_t *w, span_t t)
{
    const char *s = t.p, *end = t.p + t.n;
    for (;;) {
        const char *num = s;
        while (num < end && !((*num >= '0' && *num <= '9') || *num == '-') ) {
            if (*num == '"') /* a key or a string value: copy it whole */
                num = scan_string(num, end);
            else
                num++;
        }
        jsonw_raw_slow(w, s, (size_t)(num - s));
        if (num >= end)
            return;
        const char *stop = scan_number(num, end);
        char text[64];
        memcpy(text, num, (size_t)(stop - num));
        text[stop - num] = '\0';
        jsonw_num(w, strtod(text, NULL));
        s = stop;
    }
}

/* The fragment's members (already scanned into `sc`) as the record. Returns 0 if the tree
 * conversion must decide (a timestamp with escapes). */
static int emit_pinpoint(jsonw_t *w, const service_ctx_t *c, const batch_event_t *ev,
                         const stream_profile_t *profile, const scanned_t *sc)
{
    int64_t ts = 0, start = 0, stop = 0;
    int has_ts = 0, has_start = 0, has_stop = 0;
    if (sc->f[F_TIMESTAMP].p && (has_ts = token_ms(sc->f[F_TIMESTAMP], &ts)) < 0)
        return 0;
    if (sc->f[F_SESSION].p && sc->s[S_START].p &&
        (has_start = token_ms(sc->s[S_START], &start)) < 0)
        return 0;
    if (sc->f[F_SESSION].p && sc->s[S_STOP].p && (has_stop = token_ms(sc->s[S_STOP], &stop)) < 0)
        return 0;
    int first = 1;
    jsonw_raw(w, "{", 1);
    if (sc->f[F_TYPE].p) {
        W_LIT(w, "\"event_type\":");
        put_span(w, sc->f[F_TYPE]);
        first = 0;
    }
    if (has_ts) {
        if (!first)
            W_LIT(w, ",");
        W_LIT(w, "\"event_timestamp\":");
        put_ms(w, ts);
        first = 0;
    }
    if (!first)
        W_LIT(w, ",");
    W_LIT(w, "\"arrival_timestamp\":");
    put_ms(w, c->now_ms ? c->now_ms : port_wall_ms());
    W_LIT(w, ",\"event_version\":\"" STREAM_EVENT_VERSION "\",\"event_id\":");
    jsonw_str(w, ev->event_id, strlen(ev->event_id));
    W_LIT(w, ",\"application\":{");
    int app_first = 1;
    if (c->application_id && c->application_id[0]) {
        W_LIT(w, "\"app_id\":");
        jsonw_str(w, c->application_id, strlen(c->application_id));
        app_first = 0;
    }
    static const struct { int key; const char *name; size_t len; } app[] = {
        { F_PACKAGE, "\"package_name\":", 15 },
        { F_TITLE, "\"title\":", 8 },
        { F_VERSION_CODE, "\"version_code\":", 15 },
    };
    for (size_t i = 0; i < sizeof app / sizeof app[0]; i++) {
        if (sc->f[app[i].key].p == NULL)
            continue;
        if (!app_first)
            W_LIT(w, ",");
        jsonw_raw(w, app[i].name, app[i].len);
        put_span(w, sc->f[app[i].key]);
        app_first = 0;
    }
    if (!app_first)
        W_LIT(w, ",");
    W_LIT(w, "\"sdk\":{");
    if (sc->f[F_SDK_NAME].p) {
        W_LIT(w, "\"name\":");
        put_span(w, sc->f[F_SDK_NAME]);
    }
    if (sc->f[F_SDK_VERSION].p) {
        if (sc->f[F_SDK_NAME].p)
            W_LIT(w, ",");
        W_LIT(w, "\"version\":");
        put_span(w, sc->f[F_SDK_VERSION]);
    }
    W_LIT(w, "}");
    if (profile && profile->app_tail)
        jsonw_raw_slow(w, profile->app_tail, strlen(profile->app_tail));
    W_LIT(w, "},\"client\":{\"client_id\":");
    jsonw_str(w, ev->endpoint_id, strlen(ev->endpoint_id));
    W_LIT(w, "}");
    if (sc->f[F_SESSION].p) {
        W_LIT(w, ",\"session\":{");
        int s_first = 1;
        if (sc->s[S_ID].p) {
            W_LIT(w, "\"session_id\":");
            put_span(w, sc->s[S_ID]);
            s_first = 0;
        }
        if (has_start) {
            if (!s_first)
                W_LIT(w, ",");
            W_LIT(w, "\"start_timestamp\":");
            put_ms(w, start);
            s_first = 0;
        }
        if (has_stop) {
            if (!s_first)
                W_LIT(w, ",");
            W_LIT(w, "\"stop_timestamp\":");
            put_ms(w, stop);
        }
        W_LIT(w, "}");
    }
    W_LIT(w, ",\"attributes\":");
    if (sc->f[F_ATTRIBUTES].p)
        put_flat_object(w, sc->f[F_ATTRIBUTES]);
    else
        W_LIT(w, "{}");
    W_LIT(w, ",\"metrics\":");
    if (sc->f[F_METRICS].p)
        put_flat_object(w, sc->f[F_METRICS]);
    else
        W_LIT(w, "{}");
    if (profile && profile->record_tail)
        jsonw_raw_slow(w, profile->record_tail, strlen(profile->record_tail));
    W_LIT(w, "}");
    return 1;
}

int stream_record_data(const stream_format_t *fmt, const service_ctx_t *c,
                       const batch_event_t *ev, const stream_profile_t *profile, char **out,
                       size_t *len)
{
    scanned_t sc;
    const char *end = ev->fragment ? ev->fragment + ev->fragment_len : NULL;
    int fast = ev->fragment != NULL && ev->shape == RECORD_SHAPE_PINPOINT &&
               (profile == NULL || !cJSON_IsObject(profile->parsed) ||
                (profile->app_tail != NULL && profile->record_tail != NULL));
    if (fast) {
        memset(&sc, 0, sizeof sc);
        fast = scan_members(ev->fragment, end, fragment_keys, F_KEYS, sc.f) == end;
    }
    if (fast) { /* numbers are read back with strtod, as cJSON does */
        fast = port_decimal_point_is_dot();
    }
    if (fast) {
        size_t cap = 2 * ev->fragment_len + STREAM_RECORD_OVERHEAD + 2 +
                     2 * strlen(ev->event_id) + 2 * strlen(ev->endpoint_id) +
                     (c->application_id ? 2 * strlen(c->application_id) : 0) +
                     (profile && profile->app_tail ? strlen(profile->app_tail) : 0) +
                     (profile && profile->record_tail ? strlen(profile->record_tail) : 0);
        for (int pass = 0; pass < 2; pass++) {
            char *buf = port_malloc(cap);
            if (buf == NULL)
                return EVREC_E_NOMEM;
            jsonw_t w;
            jsonw_init(&w, buf, cap - 2);
            if (!emit_pinpoint(&w, c, ev, profile, &sc)) {
                port_free(buf);
                break;
            }
            if (w.len <= cap - 2) {
                if (fmt->newline)
                    buf[w.len++] = '\n';
                buf[w.len] = '\0';
                *out = buf;
                *len = w.len;
                return EVREC_OK;
            }
            port_free(buf);
            cap = w.len + 2; /* the bound was short: once more, at the size it takes */
        }
    }
    return stream_record_data_tree(fmt, c, ev, profile, out, len);
}

int stream_profile_prepare(stream_profile_t *p)
{
    if (!cJSON_IsObject(p->parsed))
        return EVREC_OK;
    cJSON *rec = cJSON_CreateObject(), *app = cJSON_CreateObject();
    int rc = rec && app ? from_profile(rec, app, p) : EVREC_E_NOMEM;
    char *parts[2] = { NULL, NULL };
    cJSON *objs[2] = { app, rec };
    for (int i = 0; !rc && i < 2; i++) {
        char *text = cJSON_PrintUnformatted(objs[i]); /* {...}: its members, with a comma */
        size_t n = text ? strlen(text) : 0;
        parts[i] = n >= 2 ? port_malloc(n) : NULL;
        if (parts[i] == NULL) {
            rc = EVREC_E_NOMEM;
        } else if (n == 2) {
            parts[i][0] = '\0';
        } else {
            parts[i][0] = ',';
            memcpy(parts[i] + 1, text + 1, n - 2);
            parts[i][n - 1] = '\0';
        }
        cJSON_free(text);
    }
    cJSON_Delete(rec);
    cJSON_Delete(app);
    if (rc) {
        port_free(parts[0]);
        port_free(parts[1]);
        return rc;
    }
    p->app_tail = parts[0];
    p->record_tail = parts[1];
    return EVREC_OK;
}

/* -- the request --------------------------------------------------------------------------- */

int stream_path(const service_ctx_t *c, char **out)
{
    (void)c;
    *out = port_strdup("/");
    return *out ? EVREC_OK : EVREC_E_NOMEM;
}

/* The session id of a record (Pinpoint-shaped: its Session.Id), "" if none. */
static void session_of(const batch_event_t *ev, char *buf, size_t len)
{
    buf[0] = '\0';
    if (ev->shape == RECORD_SHAPE_PERSONALIZE) {
        snprintf(buf, len, "%s", ev->session_id ? ev->session_id : "");
        return;
    }
    cJSON *frag = cJSON_ParseWithLength(ev->fragment, ev->fragment_len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(frag, "Session"), "Id");
    if (cJSON_IsString(id))
        snprintf(buf, len, "%s", id->valuestring);
    cJSON_Delete(frag);
}

static int partition_key(const service_ctx_t *c, const batch_event_t *ev, char *buf, size_t len)
{
    if (c->partition_key == EVREC_PARTITION_RANDOM) {
        char uuid[37];
        int rc = event_uuid_v4(uuid);
        if (rc != EVREC_OK)
            return rc;
        snprintf(buf, len, "%s", uuid);
        return EVREC_OK;
    }
    if (c->partition_key == EVREC_PARTITION_SESSION)
        session_of(ev, buf, len);
    if (buf[0] == '\0' || c->partition_key == EVREC_PARTITION_ENDPOINT)
        snprintf(buf, len, "%s", ev->endpoint_id);
    return EVREC_OK;
}

static void profile_clear(stream_profile_t *p)
{
    cJSON_Delete(p->parsed);
    port_free(p->text);
    port_free(p->app_tail);
    port_free(p->record_tail);
    memset(p, 0, sizeof *p);
}

/* The body is written straight into one growing buffer, each record's base64 in place, so a
 * request costs about one copy of its body (plus one record's JSON at a time). */
typedef struct out {
    char *p;
    size_t len, cap;
} out_t;

static int out_reserve(out_t *o, size_t more)
{
    if (o->len + more + 1 <= o->cap)
        return EVREC_OK;
    size_t cap = o->cap ? o->cap : 16384;
    while (cap < o->len + more + 1)
        cap += cap / 4; /* small steps: the buffer is at most a quarter larger than the body */
    char *p = port_realloc(o->p, cap);
    if (p == NULL)
        return EVREC_E_NOMEM;
    o->p = p;
    o->cap = cap;
    return EVREC_OK;
}

static int out_put(out_t *o, const char *s, size_t n)
{
    int rc = out_reserve(o, n);
    if (rc == EVREC_OK) {
        memcpy(o->p + o->len, s, n);
        o->len += n;
        o->p[o->len] = '\0';
    }
    return rc;
}

/* `s` as a JSON string, escaped by cJSON. */
static int out_string(out_t *o, const char *s)
{
    cJSON *item = cJSON_CreateStringReference(s);
    char *text = item ? cJSON_PrintUnformatted(item) : NULL;
    cJSON_Delete(item);
    int rc = text ? out_put(o, text, strlen(text)) : EVREC_E_NOMEM;
    cJSON_free(text);
    return rc;
}

/* One record: {"Data":"<base64>","PartitionKey":"..."}. */
static int add_record(const stream_format_t *fmt, const service_ctx_t *c, const batch_event_t *ev,
                      const stream_profile_t *profile, out_t *o, size_t *total)
{
    char *data = NULL;
    size_t dlen = 0;
    int rc = stream_record_data(fmt, c, ev, profile, &data, &dlen);
    if (rc)
        return rc;
    char key[STREAM_KEY_BOUND + 1] = "";
    if (fmt->partition_key)
        rc = partition_key(c, ev, key, sizeof key);
    size_t cost = dlen + strlen(key);
    size_t record_limit = fmt->max_record_bytes;
    if (c->max_record_bytes != 0 && c->max_record_bytes < record_limit)
        record_limit = c->max_record_bytes;
    *total += cost;
    if (!rc && (cost > record_limit || *total > fmt->max_request_bytes))
        rc = EVREC_E_EVENT_SIZE;
    size_t b64 = wire_base64_bytes(dlen);
    if (!rc)
        rc = out_put(o, "{\"Data\":\"", 9);
    if (!rc)
        rc = out_reserve(o, b64 + 1);
    size_t written = 0;
    if (!rc)
        rc = wire_base64((const unsigned char *)data, dlen, o->p + o->len, b64 + 1, &written);
    port_free(data);
    if (rc)
        return rc;
    o->len += written;
    rc = out_put(o, "\"", 1);
    if (!rc && fmt->partition_key) {
        rc = out_put(o, ",\"PartitionKey\":", 16);
        if (!rc)
            rc = out_string(o, key);
    }
    return rc ? rc : out_put(o, "}", 1);
}

int stream_encode(const stream_format_t *fmt, const service_ctx_t *c, const char *name_key,
                  const char *name, const batch_t *b, char **body, size_t *len)
{
    if (body == NULL || len == NULL)
        return EVREC_E_INVALID;
    *body = NULL;
    *len = 0;
    if (b == NULL || b->n == 0 || b->n > STREAM_MAX_RECORDS || name == NULL || name[0] == '\0')
        return EVREC_E_INVALID;
    out_t o = { NULL, 0, 0 };
    int rc = out_put(&o, "{", 1);
    if (!rc)
        rc = out_string(&o, name_key);
    if (!rc)
        rc = out_put(&o, ":", 1);
    if (!rc)
        rc = out_string(&o, name);
    if (!rc)
        rc = out_put(&o, ",\"Records\":[", 12);
    size_t total = 0;
    stream_profile_t profile;
    memset(&profile, 0, sizeof profile);
    const char *profile_of = NULL; /* the endpoint `profile` was read for */
    for (size_t i = 0; !rc && i < b->n; i++) {
        const batch_event_t *ev = &b->events[i];
        if (ev->fragment == NULL || ev->shape >= RECORD_SHAPES) {
            rc = EVREC_E_INVALID;
            break;
        }
        if (ev->shape == RECORD_SHAPE_PINPOINT && c->profile != NULL &&
            (profile_of == NULL || strcmp(profile_of, ev->endpoint_id) != 0)) {
            profile_clear(&profile);
            int prc = c->profile(c->profile_user, ev->endpoint_id, &profile.text);
            if (prc != EVREC_OK && prc != EVREC_E_NOT_FOUND) {
                rc = prc;
                break;
            }
            if (profile.text != NULL && profile.text[0] != '\0')
                profile.parsed = cJSON_Parse(profile.text);
            if ((rc = stream_profile_prepare(&profile)) != EVREC_OK)
                break;
            profile_of = ev->endpoint_id;
        }
        if (i > 0)
            rc = out_put(&o, ",", 1);
        if (!rc)
            rc = add_record(fmt, c, ev, ev->shape == RECORD_SHAPE_PINPOINT ? &profile : NULL,
                            &o, &total);
    }
    profile_clear(&profile);
    if (!rc)
        rc = out_put(&o, "]}", 2);
    if (rc) {
        port_free(o.p);
        return rc;
    }
    *body = o.p;
    *len = o.len;
    return EVREC_OK;
}

/* -- the answer ---------------------------------------------------------------------------- */

int stream_decode_2xx(const stream_format_t *fmt, const batch_t *b, long http_status,
                      const cJSON *json, wire_result_t *r)
{
    const cJSON *answers = cJSON_GetObjectItemCaseSensitive(json, fmt->answers_key);
    if (!cJSON_IsArray(answers) || (size_t)cJSON_GetArraySize(answers) != b->n) {
        snprintf(r->message, sizeof r->message, "HTTP %ld answer has no %s for the %zu records",
                 http_status, fmt->answers_key, b->n);
        return WIRE_RETRY;
    }
    size_t i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, answers) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, fmt->id_key);
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(item, "ErrorCode");
        int rc;
        if (cJSON_IsString(id) && id->valuestring[0] != '\0' && !cJSON_IsString(code)) {
            rc = wire_set_event(r, i, (int)http_status, (int)http_status, NULL);
        } else {
            /* ProvisionedThroughputExceededException, ServiceUnavailableException,
             * InternalFailure...: the record waits for the next attempt. */
            const cJSON *msg = cJSON_GetObjectItemCaseSensitive(item, "ErrorMessage");
            char text[300];
            snprintf(text, sizeof text, "%s%s%s",
                     cJSON_IsString(code) ? code->valuestring : "no record id in the answer",
                     cJSON_IsString(msg) ? ": " : "", cJSON_IsString(msg) ? msg->valuestring : "");
            if (r->error_type[0] == '\0' && cJSON_IsString(code)) {
                snprintf(r->error_type, sizeof r->error_type, "%s", code->valuestring);
                /* Kinesis's and Firehose's per-record throttling codes */
                r->kept_throttled =
                    strcmp(code->valuestring, "ProvisionedThroughputExceededException") == 0 ||
                    strcmp(code->valuestring, "ServiceUnavailableException") == 0;
            }
            rc = wire_set_event(r, i, 0, (int)http_status, text);
        }
        if (rc != EVREC_OK)
            return rc;
        i++;
    }
    return WIRE_OK;
}

int stream_all_accepted(const stream_format_t *fmt, const batch_t *b, long http_status,
                        const char *body, size_t len)
{
    size_t zero = 0;
    if (b->n == 0 || wire_count_member(body, len, fmt->failed_key, "0", &zero) != 1 ||
        zero != 1 || wire_count_member(body, len, "ErrorCode", NULL, NULL) != 0 ||
        wire_count_member(body, len, fmt->id_key, NULL, NULL) != b->n)
        return 0;
    return (int)http_status;
}

size_t stream_added_bytes(const stream_format_t *fmt, const batch_t *b, size_t n)
{
    const batch_event_t *ev = &b->events[n];
    size_t bytes = ev->fragment_len + STREAM_RECORD_OVERHEAD + (fmt->newline ? 1 : 0) +
                   2 * wire_json_string_bytes(ev->endpoint_id) +
                   wire_json_string_bytes(ev->event_id);
    if (ev->shape == RECORD_SHAPE_PINPOINT)
        bytes += 2 * ev->profile_len; /* the profile, and the members taken from it */
    else
        bytes += wire_json_string_bytes(ev->user_id) + wire_json_string_bytes(ev->session_id);
    return bytes + (fmt->partition_key ? STREAM_KEY_BOUND : 0);
}
