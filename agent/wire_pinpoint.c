/*
 * Amazon Pinpoint PutEvents: the EventsRequest body and the EventsResponse verdicts.
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
    if (b == NULL || b->service != EVREC_SERVICE_PINPOINT || b->n == 0)
        return EVREC_E_INVALID;
    batch_index_t pairs, endpoints;
    if (batch_index_init(&pairs, b, 1) != EVREC_OK ||
        batch_index_init(&endpoints, b, 0) != EVREC_OK)
        return EVREC_E_INVALID;
    for (size_t i = 0; i < b->n; i++) {
        const batch_event_t *ev = &b->events[i];
        if (ev->endpoint_id == NULL || ev->event_id == NULL || ev->fragment == NULL)
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

int wire_pinpoint_decode_2xx(const batch_t *b, long http_status, const cJSON *json,
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
