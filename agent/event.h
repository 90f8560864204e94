/*
 * The event being built (evrec_event_t) and its one-time encoding into a stored record.
 *
 * Setters (evrec_event_set_*) validate their argument at once against the services' quotas and
 * return a distinct EVREC_E_* code; the message naming the field is kept on the event
 * (event_last_error()). Whole-event checks (field count, encoded size, service-specific required
 * members) run again in event_encode_record(), which is what evrec_record() calls.
 */
#ifndef EVREC_EVENT_H
#define EVREC_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "evrec.h"

/* The services' documented quotas (Pinpoint Event, Personalize Event). */
#define EVENT_TYPE_MAX 50
#define EVENT_FIELDS_MAX 40          /* attributes + metrics */
#define EVENT_NAME_MAX 50
#define EVENT_ATTR_VALUE_MAX 200
#define EVENT_MAX_BYTES (1000 * 1000) /* one encoded event */
#define EVENT_PROPERTIES_MAX 1024    /* Personalize properties JSON string */

/** What evrec_record() knows that the event does not: the agent's state at record time. */
typedef struct event_context {
    /* RECORD_SHAPE_* the agent's service prefers; an event with Personalize fields is
     * Personalize-shaped whatever this says (event_shape()). */
    uint8_t preferred_shape;
    int64_t now_ms;              /**< timestamp used when the event has none */
    const char *endpoint_id;     /**< the agent's default endpoint id */
    /* The open session, carried into Pinpoint's Event.Session and Personalize's sessionId.
     * session_id NULL: no session. */
    const char *session_id;
    int64_t session_start_ms;
    int64_t session_stop_ms;     /**< > 0 only for `_session.stop` */
    int64_t session_duration_ms; /**< >= 0 only for `_session.stop` */
    const char *user_id;         /**< Personalize userId when the event sets none (may be NULL) */
    int truncate_oversize;       /**< truncate over-long names/values instead of refusing */
    uint64_t max_age_ms;         /**< refuse (EVREC_E_TOO_OLD) a timestamp older than now_ms
                                      minus this; 0: no bound. now_ms is the device clock, the
                                      one events are stamped with and expired on */
} event_context_t;

/**
 * Validate `ev` for its shape (event_shape()) and encode it into a record (record.h) ready for
 * queue_append(). Assigns a random UUID v4 id if the event has none (then visible through
 * evrec_event_id()). *out is port_malloc'ed (caller frees with port_free). *truncated is set to
 * 1 if any field was truncated (only with ctx->truncate_oversize), else 0.
 * Errors: the EVREC_E_* validation codes, with a message naming the field written to err.
 */
int event_encode_record(evrec_event_t *ev, const event_context_t *ctx, uint8_t **out,
                        size_t *len, int *truncated, char *err, size_t errlen);
/**
 * event_encode_record() into the caller's buffer `buf` of `cap` bytes (a Pinpoint-shaped event
 * is written there in place, without allocating): *out is `buf` when the record fits, else a
 * port_malloc'ed buffer the caller frees (only if *out != buf).
 */
int event_encode_record_in(evrec_event_t *ev, const event_context_t *ctx, uint8_t *buf,
                           size_t cap, uint8_t **out, size_t *len, int *truncated, char *err,
                           size_t errlen);

/** The endpoint id set on the event itself (evrec_event_set_endpoint_id), or NULL. */
const char *event_endpoint_id(const evrec_event_t *ev);
/** Whether the event sets its own Personalize userId. */
int event_has_user_id(const evrec_event_t *ev);
/** The RECORD_SHAPE_* the event is recorded in: Personalize-shaped if it carries any
 *  Personalize field (user, session set by evrec_event_set_session_id, item id, value,
 *  properties, recommendation id, impressions, metric attribution), else `preferred`. */
unsigned event_shape(const evrec_event_t *ev, unsigned preferred);

/** evrec_event_from_json() with the detail: on failure a message naming the member (or the
 *  setter's message) is written to err. Used by the CLI to report bad input lines. */
int event_from_json(evrec_event_t **out, const char *json, size_t len, char *err,
                    size_t errlen);

/** Parse JSON input that must reach the caller unchanged: refuses (NULL, message in err naming
 *  `what`) a NUL in a string, raw or as \u0000, a key given twice in one object, and text after
 *  the value. Free the result with cJSON_Delete. */
struct cJSON;
struct cJSON *event_json_parse(const char *text, size_t len, const char *what, char *err,
                               size_t errlen);

/** Check an event or endpoint id: 1..EVREC_ID_MAX-1 printable ASCII characters (0x21..0x7E).
 *  `what` names it in the message. EVREC_OK, EVREC_E_ID or EVREC_E_UTF8. */
int event_check_id(const char *what, const char *id, char *err, size_t errlen);

/** The message of the last failed setter on this event ("" if none). */
const char *event_last_error(const evrec_event_t *ev);

/** Write a random UUID v4 (lower-case, 36 characters + NUL) from the port's secure random. */
int event_uuid_v4(char out[37]);


/** Format Unix ms as ISO 8601 UTC with milliseconds: "2026-11-22T10:00:00.123Z" (25 bytes). */
void event_format_iso8601(int64_t unix_ms, char out[32]);

/** Parse an ISO 8601 date-time (Z or ±hh:mm offset, optional fraction) to Unix ms. */
int event_parse_iso8601(const char *s, int64_t *unix_ms);

#endif /* EVREC_EVENT_H */
