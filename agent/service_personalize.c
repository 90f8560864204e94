/*
 * The Amazon Personalize Events backend: PutEvents, the request body for one (user, session)
 * and the verdicts of its answer, which is an empty 200 when the events were taken. Carries
 * Personalize-shaped records only.
 *
 * Request: {"trackingId":..,"userId":..(optional),"sessionId":..,"eventList":[event,...]}
 */
#include "wire_internal.h"

#include <stdio.h>
#include <string.h>

#include "evrec.h"
#include "port.h"
#include "record.h"
#include "service.h"

#define PERSONALIZE_MAX_EVENTS 10 /* EventList max in the service model */
#define PERSONALIZE_MAX_BYTES 4000000u

size_t wire_personalize_base_bytes(const char *user_id, const char *session_id,
                                   size_t tracking_id_bytes)
{
    static const char frame[] = "{\"trackingId\":,\"userId\":,\"sessionId\":,\"eventList\":[]}";
    return sizeof frame - 1 + tracking_id_bytes + wire_json_string_bytes(user_id) +
           wire_json_string_bytes(session_id);
}

static int same_stream(const batch_event_t *a, const batch_event_t *b)
{
    return strcmp(a->user_id ? a->user_id : "", b->user_id ? b->user_id : "") == 0 &&
           strcmp(a->session_id ? a->session_id : "", b->session_id ? b->session_id : "") == 0;
}

int wire_personalize_encode(const batch_t *b, const char *tracking_id, char **body,
                            size_t *len)
{
    if (body == NULL || len == NULL)
        return EVREC_E_INVALID;
    *body = NULL;
    *len = 0;
    if (b == NULL || b->n == 0 ||
        b->n > PERSONALIZE_MAX_EVENTS || tracking_id == NULL || tracking_id[0] == '\0')
        return EVREC_E_INVALID;
    const batch_event_t *first = &b->events[0];
    for (size_t i = 0; i < b->n; i++)
        if (b->events[i].fragment == NULL || !same_stream(first, &b->events[i]) ||
            b->events[i].shape != RECORD_SHAPE_PERSONALIZE)
            return EVREC_E_INVALID;
    const char *user = first->user_id ? first->user_id : "";
    const char *session = first->session_id ? first->session_id : "";

    cJSON *root = cJSON_CreateObject();
    int ok = cJSON_AddStringToObject(root, "trackingId", tracking_id) != NULL &&
             (user[0] == '\0' || cJSON_AddStringToObject(root, "userId", user) != NULL) &&
             cJSON_AddStringToObject(root, "sessionId", session) != NULL;
    cJSON *list = ok ? cJSON_AddArrayToObject(root, "eventList") : NULL;
    size_t bound = wire_personalize_base_bytes(user, session,
                                                wire_json_string_bytes(tracking_id));
    for (size_t i = 0; list != NULL && i < b->n; i++) {
        cJSON *raw = wire_raw_reference(b->events[i].fragment);
        if (raw == NULL || !cJSON_AddItemToArray(list, raw)) {
            cJSON_Delete(raw);
            list = NULL;
        }
        bound += b->events[i].fragment_len + 1;
    }
    if (list == NULL) {
        cJSON_Delete(root);
        return EVREC_E_NOMEM;
    }
    return wire_print(root, bound, body, len);
}

static int decode_2xx(const batch_t *b, long http_status, const cJSON *json,
                      wire_result_t *r)
{
    static const char *const error_names[] = { "message", "Message", "__type", NULL };
    /* The operation has no output: an empty body (or an empty object) is the answer. An
     * error-shaped or non-object body is not what the service sends, so nothing is
     * assumed delivered. */
    if (json != NULL) {
        char said[256] = ""; /* leaves room for the prefix in r->message */
        wire_copy_member(json, error_names, said, sizeof said);
        if (!cJSON_IsObject(json) || said[0] != '\0') {
            snprintf(r->message, sizeof r->message, "unexpected HTTP %ld answer%s%s",
                     http_status, said[0] ? ": " : "", said);
            return WIRE_RETRY;
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        int rc = wire_set_event(r, i, (int)http_status, (int)http_status, NULL);
        if (rc != EVREC_OK)
            return rc;
    }
    return WIRE_OK;
}

/* -- the backend ----------------------------------------------------------------------------- */

static size_t added_bytes(const batch_t *b, size_t n, int new_endpoint)
{
    (void)new_endpoint;
    const batch_event_t *ev = &b->events[n];
    size_t base = n == 0 ? wire_personalize_base_bytes(ev->user_id, ev->session_id,
                                                        WIRE_TRACKING_ID_BYTES)
                         : 0;
    return base + ev->fragment_len + 1;
}

static int check(const service_ctx_t *c, char *err, size_t errlen)
{
    if (c->tracking_id == NULL || c->tracking_id[0] == '\0') {
        snprintf(err, errlen, "tracking_id: required for Personalize Events");
        return EVREC_E_CONFIG;
    }
    return EVREC_OK;
}

static int path(const service_ctx_t *c, char **out)
{
    (void)c;
    *out = port_strdup("/events");
    return *out ? EVREC_OK : EVREC_E_NOMEM;
}

static int encode(const service_ctx_t *c, const batch_t *b, char **body, size_t *len)
{
    return wire_personalize_encode(b, c->tracking_id, body, len);
}

const service_ops_t service_personalize = {
    .rules = { .max_events = PERSONALIZE_MAX_EVENTS, .max_bytes = PERSONALIZE_MAX_BYTES,
               .shapes = 1u << RECORD_SHAPE_PERSONALIZE, .grouping = BATCH_GROUP_STREAM,
               .profiles = 0, .added_bytes = added_bytes },
    .id = EVREC_SERVICE_PERSONALIZE,
    .name = "personalize-events",
    .title = "Personalize",
    .signing_name = "personalize",
    .host_prefix = "personalize-events",
    .endpoint_env = "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS",
    .target = NULL,
    .content_type = "application/json",
    .max_record_bytes = 0,
    .preferred_shape = RECORD_SHAPE_PERSONALIZE,
    .check = check,
    .path = path,
    .encode = encode,
    .decode_2xx = decode_2xx,
};
