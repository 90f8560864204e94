/*
 * The Amazon Pinpoint backend: PutEvents, the EventsRequest body and the EventsResponse
 * verdicts. Carries Pinpoint-shaped records only.
 *
 * Request:  {"BatchItem":{endpointId:{"Endpoint":profile,"Events":{eventId:event}}}}
 * Response: {"Results":{endpointId:{"EndpointItemResponse":{"StatusCode","Message"},
 *                                   "EventsItemResponse":{eventId:{"StatusCode","Message"}}}}}
 */
#include "wire_internal.h"

#include <stdio.h>
#include <string.h>

#include "evrec.h"
#include "port.h"
#include "record.h"
#include "jsonw.h"
#include "service.h"
#include "util_str.h"

#define PINPOINT_MAX_EVENTS 100u     /* EventsRequest: at most 100 events per request */
#define PINPOINT_MAX_BYTES 4000000u  /* the 4 MB request limit, read conservatively */

/* -- request path -------------------------------------------------------------------------- */

int wire_pinpoint_path(const char *application_id, char **out)
{
    if (out == NULL)
        return EVREC_E_INVALID;
    *out = NULL;
    if (application_id == NULL || application_id[0] == '\0')
        return EVREC_E_INVALID;
    static const char prefix[] = "/v1/apps/", suffix[] = "/events";
    size_t cap = sizeof prefix + 3 * strlen(application_id) + sizeof suffix;
    char *p = port_malloc(cap);
    if (p == NULL)
        return EVREC_E_NOMEM;
    memcpy(p, prefix, sizeof prefix - 1);
    char *w = p + sizeof prefix - 1;
    if (util_percent_encode(application_id, w, cap - (sizeof prefix - 1)) != 0) {
        port_free(p);
        return EVREC_E_NOMEM;
    }
    memcpy(w + strlen(w), suffix, sizeof suffix); /* with its NUL */
    *out = p;
    return EVREC_OK;
}


size_t wire_pinpoint_endpoint_bytes(const char *endpoint_id, size_t profile_len)
{
    /* "id":{"Endpoint":P,"Events":{...}}, */
    return wire_json_string_bytes(endpoint_id) + sizeof ":{\"Endpoint\":,\"Events\":{}}," - 1 +
           profile_len;
}

size_t wire_pinpoint_event_bytes(const char *event_id, size_t fragment_len)
{
    /* "id":F, */
    return wire_json_string_bytes(event_id) + 2 + fragment_len;
}

/*
 * {"BatchItem":{"<endpoint id>":{"Endpoint":<profile>,"Events":{"<event id>":<fragment>,...}},
 * ...}}: endpoints in the order of their first event, each one's events in batch order. The
 * stored fragments and profiles are JSON already and are copied in as they are; the ids are
 * escaped as cJSON escapes them (agent/jsonw.c). No tree: one buffer of the exact size.
 */
int wire_pinpoint_encode(const batch_t *b, wire_profile_fn profile, void *user, char **body,
                         size_t *len)
{
    if (body == NULL || len == NULL)
        return EVREC_E_INVALID;
    *body = NULL;
    *len = 0;
    if (b == NULL || b->n == 0 || b->n > BATCH_INDEX_MAX)
        return EVREC_E_INVALID;
    batch_index_t pairs, endpoints;
    if (batch_index_init(&pairs, b, 1) != EVREC_OK ||
        batch_index_init(&endpoints, b, 0) != EVREC_OK)
        return EVREC_E_INVALID;
    uint8_t first[BATCH_INDEX_MAX]; /* the index of the first event of each event's endpoint */
    char *profiles[BATCH_INDEX_MAX]; /* by that first index; NULL: none ("{}") */
    memset(profiles, 0, sizeof profiles);
    size_t bound = WIRE_PINPOINT_BODY_BYTES;
    int rc = EVREC_OK;
    for (size_t i = 0; i < b->n; i++) {
        const batch_event_t *ev = &b->events[i];
        if (ev->endpoint_id == NULL || ev->event_id == NULL || ev->fragment == NULL ||
            ev->shape != RECORD_SHAPE_PINPOINT)
            rc = EVREC_E_INVALID;
        /* Two events with one id under one endpoint would collapse into one map entry. */
        else if (batch_index_add(&pairs, i) >= 0)
            rc = EVREC_E_INVALID;
        if (rc != EVREC_OK)
            break;
        long f = batch_index_add(&endpoints, i);
        first[i] = (uint8_t)(f >= 0 ? (size_t)f : i);
        if (f < 0 && profile != NULL) {
            int prc = profile(user, ev->endpoint_id, &profiles[i]);
            if (prc != EVREC_OK && prc != EVREC_E_NOT_FOUND) {
                rc = prc;
                break;
            }
            if (profiles[i] != NULL && profiles[i][0] == '\0') {
                port_free(profiles[i]);
                profiles[i] = NULL;
            }
        }
        if (f < 0)
            bound += wire_pinpoint_endpoint_bytes(ev->endpoint_id,
                                                  profiles[i] ? strlen(profiles[i]) : 2);
        bound += wire_pinpoint_event_bytes(ev->event_id, ev->fragment_len);
    }
    char *buf = rc == EVREC_OK ? port_malloc(bound + 1) : NULL;
    if (rc == EVREC_OK && buf == NULL)
        rc = EVREC_E_NOMEM;
    if (rc == EVREC_OK) {
        jsonw_t w;
        jsonw_init(&w, buf, bound);
        jsonw_raw(&w, "{\"BatchItem\":{", 14);
        for (size_t i = 0; i < b->n; i++) {
            if (first[i] != i)
                continue;
            const char *id = b->events[i].endpoint_id;
            if (i > 0)
                jsonw_raw(&w, ",", 1);
            jsonw_str(&w, id, strlen(id));
            jsonw_raw(&w, ":{\"Endpoint\":", 13);
            const char *raw = profiles[i] ? profiles[i] : "{}";
            jsonw_raw_slow(&w, raw, strlen(raw));
            jsonw_raw(&w, ",\"Events\":{", 11);
            for (size_t j = i; j < b->n; j++) {
                if (first[j] != i)
                    continue;
                const batch_event_t *ev = &b->events[j];
                if (j > i)
                    jsonw_raw(&w, ",", 1);
                jsonw_str(&w, ev->event_id, strlen(ev->event_id));
                jsonw_raw(&w, ":", 1);
                jsonw_raw_slow(&w, ev->fragment, ev->fragment_len);
            }
            jsonw_raw(&w, "}}", 2);
        }
        jsonw_raw(&w, "}}", 2);
        if (w.len > bound) { /* the bound is exact or above: never here */
            port_free(buf);
            buf = NULL;
            rc = EVREC_E_INVALID;
        } else {
            buf[w.len] = '\0';
            *body = buf;
            *len = w.len;
        }
    }
    for (size_t i = 0; i < b->n; i++)
        port_free(profiles[i]); /* set only at each endpoint's first event */
    return rc;
}

/* The {"StatusCode","Message"} pair of an item response; status 0 if there is none. */
static int item_status(const cJSON *item, const char **message)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(item, "StatusCode");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(item, "Message");
    *message = cJSON_IsString(msg) ? msg->valuestring : NULL;
    if (!cJSON_IsNumber(code) || code->valuedouble < 0 || code->valuedouble > 999)
        return 0;
    return (int)code->valuedouble;
}

static int decode_2xx(const batch_t *b, long http_status, const cJSON *json,
                      wire_result_t *r)
{
    /* The EventsResponse is the payload itself; a wrapped {"EventsResponse":{...}} is
     * accepted too (that is how the SDKs show it). */
    const cJSON *resp = json;
    const cJSON *wrapped = cJSON_GetObjectItemCaseSensitive(json, "EventsResponse");
    if (cJSON_IsObject(wrapped))
        resp = wrapped;
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(resp, "Results");
    if (!cJSON_IsObject(results)) {
        snprintf(r->message, sizeof r->message, "HTTP %ld answer has no Results", http_status);
        return WIRE_RETRY;
    }
    /* Walk the answer once and find each item's event by its (endpoint id, event id) key:
     * the first answer for an event counts. */
    batch_index_t pairs;
    uint8_t answered[BATCH_INDEX_MAX];
    if (batch_index_init(&pairs, b, 1) != EVREC_OK)
        return EVREC_E_INVALID;
    memset(answered, 0, sizeof answered);
    for (size_t i = 0; i < b->n; i++)
        (void)batch_index_add(&pairs, i);
    const cJSON *entry;
    cJSON_ArrayForEach(entry, results) {
        if (!cJSON_IsObject(entry) || entry->string == NULL)
            continue;
        const cJSON *events = cJSON_GetObjectItemCaseSensitive(entry, "EventsItemResponse");
        if (!cJSON_IsObject(events))
            continue;
        const cJSON *item;
        cJSON_ArrayForEach(item, events) {
            if (!cJSON_IsObject(item) || item->string == NULL)
                continue;
            long i = batch_index_find(&pairs, entry->string, item->string);
            if (i < 0 || answered[i])
                continue;
            answered[i] = 1;
            const char *message = NULL;
            int status = item_status(item, &message);
            int rc = wire_set_event(r, (size_t)i, status, 202, message);
            if (rc != EVREC_OK)
                return rc;
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        if (answered[i])
            continue;
        /* No answer for the event itself. An endpoint-level 400 covers its events (the same
         * request would be refused again, forever); anything else says nothing about the
         * event, so it is kept. */
        const batch_event_t *ev = &b->events[i];
        const cJSON *entry_i = cJSON_GetObjectItemCaseSensitive(results, ev->endpoint_id);
        if (!cJSON_IsObject(entry_i))
            continue; /* not answered for: keep */
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(entry_i, "EndpointItemResponse");
        const char *message = NULL;
        if (item_status(ep, &message) != 400)
            continue;
        int rc = wire_set_event(r, i, 400, 202, message);
        if (rc != EVREC_OK)
            return rc;
    }
    return WIRE_OK;
}

/* Every status in the answer is 202, and there is one for each event plus one for each
 * endpoint (its EndpointItemResponse): all accepted. Anything else is decoded in full. */
static int all_accepted(const batch_t *b, long http_status, const char *body, size_t len)
{
    (void)http_status;
    static const wire_member_count_t m[] = { { "StatusCode", 10, "202" },
                                             { "EndpointItemResponse", 20, NULL } };
    size_t n[2], v[2];
    wire_count_members(body, len, m, 2, n, v);
    return b->n > 0 && v[0] == n[0] && n[0] == b->n + n[1] ? 202 : 0;
}

/* -- the backend ----------------------------------------------------------------------------- */

static size_t added_bytes(const batch_t *b, size_t n, int new_endpoint)
{
    const batch_event_t *ev = &b->events[n];
    size_t bytes = wire_pinpoint_event_bytes(ev->event_id, ev->fragment_len);
    if (new_endpoint)
        bytes += wire_pinpoint_endpoint_bytes(ev->endpoint_id, ev->profile_len);
    return bytes + (n == 0 ? WIRE_PINPOINT_BODY_BYTES : 0);
}

static int check(const service_ctx_t *c, char *err, size_t errlen)
{
    if (c->application_id == NULL || c->application_id[0] == '\0') {
        snprintf(err, errlen, "application_id: required for Pinpoint");
        return EVREC_E_CONFIG;
    }
    return EVREC_OK;
}

static int path(const service_ctx_t *c, char **out)
{
    return wire_pinpoint_path(c->application_id, out);
}

static int encode(const service_ctx_t *c, const batch_t *b, char **body, size_t *len)
{
    return wire_pinpoint_encode(b, c->profile, c->profile_user, body, len);
}

const service_ops_t service_pinpoint = {
    .rules = { .max_events = PINPOINT_MAX_EVENTS, .max_bytes = PINPOINT_MAX_BYTES,
               .shapes = 1u << RECORD_SHAPE_PINPOINT, .grouping = BATCH_GROUP_ENDPOINT_EVENTS,
               .profiles = 1, .added_bytes = added_bytes },
    .id = EVREC_SERVICE_PINPOINT,
    .name = "pinpoint",
    .title = "Pinpoint",
    .signing_name = "mobiletargeting",
    .host_prefix = "pinpoint",
    .endpoint_env = "AWS_ENDPOINT_URL_PINPOINT",
    .target = NULL,
    .content_type = "application/json",
    .max_record_bytes = 0,
    .preferred_shape = RECORD_SHAPE_PINPOINT,
    .check = check,
    .path = path,
    .encode = encode,
    .decode_2xx = decode_2xx,
    .all_accepted = all_accepted,
};
