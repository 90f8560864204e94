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

/* A new endpoint's entry in BatchItem, with its profile; returns its "Events" object. */
static cJSON *endpoint_entry(cJSON *items, const char *endpoint_id, wire_profile_fn profile,
                             void *user, size_t *bound, int *rc)
{
    char *json = NULL;
    if (profile != NULL) {
        int prc = profile(user, endpoint_id, &json);
        if (prc != EVREC_OK && prc != EVREC_E_NOT_FOUND) {
            *rc = prc;
            return NULL;
        }
    }
    const char *raw = json != NULL && json[0] != '\0' ? json : "{}";
    /* Keys are the batch's own strings (cJSON_AddItemToObjectCS: not copied, not freed). */
    cJSON *entry = cJSON_CreateObject(), *events = NULL;
    if (entry == NULL || !cJSON_AddItemToObjectCS(items, endpoint_id, entry)) {
        cJSON_Delete(entry);
        entry = NULL;
    }
    if (entry == NULL || cJSON_AddRawToObject(entry, "Endpoint", raw) == NULL ||
        (events = cJSON_AddObjectToObject(entry, "Events")) == NULL) {
        events = NULL;
        *rc = EVREC_E_NOMEM;
    } else {
        *bound += wire_pinpoint_endpoint_bytes(endpoint_id, strlen(raw));
    }
    port_free(json);
    return events;
}

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
    for (size_t i = 0; i < b->n; i++) {
        const batch_event_t *ev = &b->events[i];
        if (ev->endpoint_id == NULL || ev->event_id == NULL || ev->fragment == NULL ||
            ev->shape != RECORD_SHAPE_PINPOINT)
            return EVREC_E_INVALID;
        /* Two events with one id under one endpoint would collapse into one map entry. */
        if (batch_index_add(&pairs, i) >= 0)
            return EVREC_E_INVALID;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *items = cJSON_AddObjectToObject(root, "BatchItem");
    if (items == NULL) {
        cJSON_Delete(root);
        return EVREC_E_NOMEM;
    }
    cJSON *group[BATCH_INDEX_MAX]; /* by the index of each endpoint's first event */
    size_t bound = WIRE_PINPOINT_BODY_BYTES;
    int rc = EVREC_OK;
    for (size_t i = 0; i < b->n && rc == EVREC_OK; i++) {
        const batch_event_t *ev = &b->events[i];
        long first = batch_index_add(&endpoints, i);
        cJSON *events = first >= 0 ? group[first]
                                   : endpoint_entry(items, ev->endpoint_id, profile, user,
                                                    &bound, &rc);
        if (events == NULL)
            break;
        if (first < 0)
            group[i] = events;
        cJSON *raw = wire_raw_reference(ev->fragment);
        if (raw == NULL || !cJSON_AddItemToObjectCS(events, ev->event_id, raw)) {
            cJSON_Delete(raw);
            rc = EVREC_E_NOMEM;
        }
        bound += wire_pinpoint_event_bytes(ev->event_id, ev->fragment_len);
    }
    if (rc != EVREC_OK) {
        cJSON_Delete(root);
        return rc;
    }
    return wire_print(root, bound, body, len);
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
    size_t ok = 0;
    size_t statuses = wire_count_member(body, len, "StatusCode", "202", &ok);
    size_t endpoints = wire_count_member(body, len, "EndpointItemResponse", NULL, NULL);
    return b->n > 0 && ok == statuses && statuses == b->n + endpoints ? 202 : 0;
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
