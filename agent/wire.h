/*
 * What the backends' wire formats share (wire.c): printing a body, JSON string sizes, and an
 * answer turned into one verdict per event plus a request-level outcome — the error answers
 * of AWS services look alike, so the request-level classification lives here once and each
 * backend (service_*.c) reads only its own 2xx body. The backends' encoders are declared here
 * too, for the tests and the estimates; the flusher reaches them through service.h.
 */
#ifndef EVREC_WIRE_H
#define EVREC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "batch.h"

/** Look up an endpoint's profile JSON (port_malloc'ed, or NULL for none => "{}"). */
typedef int (*wire_profile_fn)(void *user, const char *endpoint_id, char **json);

/** Pinpoint EventsRequest: {"BatchItem":{epid:{"Endpoint":profile,"Events":{id:fragment}}}}. */
int wire_pinpoint_encode(const batch_t *b, wire_profile_fn profile, void *user, char **body,
                         size_t *len);
/** Personalize PutEvents: {"trackingId","userId"?,"sessionId","eventList":[...]}; the batch
 *  holds one (user, session). */
int wire_personalize_encode(const batch_t *b, const char *tracking_id, char **body,
                            size_t *len);

/** Pinpoint's path, "/v1/apps/{ApplicationId}/events" (id URI-encoded). *out port_malloc'ed. */
int wire_pinpoint_path(const char *application_id, char **out);

typedef enum wire_outcome {
    WIRE_OK = 0,          /* answered per event: look at verdicts */
    WIRE_THROTTLED,       /* 429 / TooManyRequestsException / ThrottlingException */
    WIRE_RETRY,           /* 5xx, or an answer that says nothing per event: keep, back off */
    WIRE_TOO_LARGE,       /* 413 / PayloadTooLargeException: split */
    WIRE_BAD_REQUEST,     /* 400 for the whole request: bisect to the poison event */
    WIRE_CLOCK_SKEW,      /* 403 with a skew message: fix the clock offset, retry at once */
    WIRE_EXPIRED_TOKEN,   /* 403 ExpiredToken*: refresh credentials, retry */
    WIRE_AUTH,            /* other 403 / 404: keep data, long backoff */
} wire_outcome_t;

typedef enum wire_verdict {
    WIRE_ACCEPTED = 0,    /* 202 (Pinpoint) / 200 (Personalize) / a record's sequence number */
    WIRE_REJECTED,        /* per-event 400: drop, count, report the message */
    WIRE_KEEP,            /* anything else: retry later */
} wire_verdict_t;

typedef struct wire_result {
    wire_outcome_t outcome;
    size_t n;                 /* == batch n */
    wire_verdict_t *verdicts; /* per batch event, in batch order */
    int *status;              /* per-event status code (0 unknown) */
    char **messages;          /* per-event message of events not accepted (NULL or
                                 port_malloc'ed) */
    char error_type[128];     /* request-level error type (header or body __type/code); for
                                 per-record answers, the first record's ErrorCode */
    int kept_throttled;       /* WIRE_OK: the events kept were refused as throttling */
    char message[512];        /* request-level message */
} wire_result_t;

/** A backend's reading of a 2xx answer (json NULL for an empty body): per-event verdicts in
 *  r (wire_set_event); returns a wire_outcome_t, or a negative EVREC_E_* code. */
typedef int (*wire_decode_2xx_fn)(const batch_t *b, long http_status, const cJSON *json,
                                  wire_result_t *r);

/**
 * Judge the answer to a request for batch b, 2xx bodies with `decode_2xx`.
 * `error_type_header` is x-amzn-ErrorType (may be NULL). A malformed 2xx body gives
 * WIRE_RETRY with every verdict WIRE_KEEP (never a drop).
 */
int wire_decode_with(const batch_t *b, wire_decode_2xx_fn decode_2xx, long http_status,
                     const char *error_type_header, const char *body, size_t len,
                     wire_result_t *out);
void wire_result_free(wire_result_t *r);

/** The verdict for a 2xx answer that accepted every event of b: each WIRE_ACCEPTED with
 *  `status`, outcome WIRE_OK. */
int wire_accept_all(const batch_t *b, int status, wire_result_t *out);

/** Count, in a raw JSON text, the members named `key` (a quoted key followed by ':'), and in
 *  *with_value how many of them have exactly the scalar `value` ("202", "0"; may be NULL).
 *  A scan, no tree: strings cannot fake a key since their quotes are escaped. */
size_t wire_count_member(const char *body, size_t len, const char *key, const char *value,
                         size_t *with_value);

/** Several members: counts[k] and with_value[k] for m[k] as above (a pass a key, each found by
 *  its first byte with memchr: the answers are mostly ids and statuses). */
typedef struct wire_member_count {
    const char *key;
    size_t key_len;
    const char *value; /* or NULL */
} wire_member_count_t;
void wire_count_members(const char *body, size_t len, const wire_member_count_t *m, size_t nm,
                        size_t *counts, size_t *with_value);

/* -- body size estimates: the batcher keeps requests under max_bytes with these, and the
 *    encoders size their output buffers with them (both are upper bounds of cJSON's output). */

/** Bytes `s` takes as a JSON string literal as cJSON prints it (quotes and escapes included). */
size_t wire_json_string_bytes(const char *s);

/** Pinpoint: the fixed part of a body, {"BatchItem":{}}. */
#define WIRE_PINPOINT_BODY_BYTES 16
/** Pinpoint: what one endpoint adds (its key, Endpoint profile, Events wrapper, separator). */
size_t wire_pinpoint_endpoint_bytes(const char *endpoint_id, size_t profile_len);
/** Pinpoint: what one event adds (its key, fragment, separator). */
size_t wire_pinpoint_event_bytes(const char *event_id, size_t fragment_len);

/** Personalize: what the batcher assumes a trackingId takes in the body (quotes included);
 *  tracking ids are short ASCII (a UUID), the service allows at most 256 characters. */
#define WIRE_TRACKING_ID_BYTES 258
/** Personalize: the body without its events, for this user ("" = none), session and a
 *  trackingId taking tracking_id_bytes as a JSON string. Each event adds fragment_len + 1. */
size_t wire_personalize_base_bytes(const char *user_id, const char *session_id,
                                   size_t tracking_id_bytes);

#endif /* EVREC_WIRE_H */
