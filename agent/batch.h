/*
 * The batcher: picks the next request's worth of queued events, oldest first, under the
 * service's count and size limits. Reads the queue in one read transaction and copies what it
 * keeps (bounded by max_request_bytes), so nothing is held across the network call.
 *
 * Pinpoint: events of any endpoints, grouped per endpoint id by the wire encoder; at most
 *   max_events (<= 100) and an estimated body of at most max_bytes, counting each distinct
 *   endpoint's profile once.
 * Personalize: only events with the same (userId, sessionId) as the oldest queued event,
 *   at most max_events (<= 10).
 */
#ifndef EVREC_BATCH_H
#define EVREC_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "evrec.h"
#include "queue.h"

typedef struct batch_event {
    uint64_t seq;
    int64_t created_ms;
    uint16_t flags;
    char *event_id;
    char *endpoint_id;
    char *session_id;  /* "" if none */
    char *user_id;     /* "" if none */
    char *fragment;    /* the stored JSON fragment, NUL-terminated */
    size_t fragment_len;
    size_t profile_len; /* Pinpoint: length of the endpoint's profile when batched (estimates) */
} batch_event_t;

typedef struct batch {
    evrec_service_t service;
    batch_event_t *events;
    size_t n;
    size_t cap;
    size_t body_bytes;    /* estimated request body size */
    uint64_t next_seq;    /* where the scan stopped: start the next batch here to skip this one */
} batch_t;

typedef struct batch_limits {
    evrec_service_t service;
    uint32_t max_events;     /* clamped to the service's limit */
    size_t max_bytes;        /* request body bound */
    int64_t expire_before_ms;/* events created before this are not taken (the caller expires
                                them with queue_expire); 0: none */
    uint64_t from_seq;       /* start of the scan (0: oldest) */
} batch_limits_t;

/** Fill *out with the next batch (out->n == 0 when nothing is queued). An event too large to
 *  fit a request even alone is still returned alone (the service will judge it).
 *  max_events 0 or above the service's limit means that limit; max_bytes 0 means 4,000,000.
 *  The scan stops at the first event that does not fit, so order is kept. Records this batch
 *  cannot carry (damaged, encoded for the other service, created before expire_before_ms) are
 *  passed over and left to queue_expire / eviction. Pinpoint: a second event with the same
 *  (endpoint id, event id) ends the batch (the map would hold only one). Personalize: records
 *  of other streams are looked past, at most 1,000 of them. On error *out is empty. */
int batch_next(evrec_queue_t *q, const batch_limits_t *lim, batch_t *out);

/** Move events [at, n) of b into a new batch *tail (for 413 splitting and 400 bisection). */
int batch_split(batch_t *b, size_t at, batch_t *tail);

/** Free what the batch holds (b itself is the caller's) and leave it empty. NULL is fine. */
void batch_free(batch_t *b);

#endif /* EVREC_BATCH_H */
