/*
 * The batcher: picks the next request's worth of queued events, oldest first, under the
 * service's count and size limits. Reads the queue in one read transaction and keeps each
 * event's sequence number, ids and lengths (one small allocation per event), not its JSON:
 * the fragments are read again, without copying, by batch_with_fragments() while the request
 * body is built, so a body is the only copy of its events and nothing is held across the
 * network call.
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
    char *event_id;    /* batch_next: one allocation holding all four ids, freed with it */
    char *endpoint_id;
    char *session_id;  /* "" if none */
    char *user_id;     /* "" if none */
    const char *fragment; /* the stored JSON fragment, NUL-terminated: set only inside
                             batch_with_fragments (or by whoever builds a batch by hand) */
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

/**
 * Point every event's `fragment` at its stored JSON (straight into the store's memory map; a
 * copy only for records written before the format had a terminating NUL), call fn(user, b),
 * then clear the pointers again. Events no longer queued (evicted, or deleted by another
 * process, since the batch was taken) and damaged records are removed from b first; if none
 * is left, fn is not called and the result is EVREC_E_NOT_FOUND. Otherwise fn's result.
 */
typedef int (*batch_fn)(void *user, batch_t *b);
int batch_with_fragments(evrec_queue_t *q, batch_t *b, batch_fn fn, void *user);

/** Move events [at, n) of b into a new batch *tail (for 413 splitting and 400 bisection). */
int batch_split(batch_t *b, size_t at, batch_t *tail);

/** Free what the batch holds (b itself is the caller's) and leave it empty. NULL is fine. */
void batch_free(batch_t *b);

/* -- an index of a batch's events, for the encoders and the decoder -------------------- */

/** Most events a batch_index_t can index (the services allow 100 and 10 per request). */
#define BATCH_INDEX_MAX 127u
#define BATCH_INDEX_SLOTS 256u

/** A hash index over a batch's events, keyed by (endpoint id, event id) or by endpoint id
 *  alone: lookups cost O(1) instead of a walk of the batch. Lives on the stack (256 bytes). */
typedef struct batch_index {
    const batch_t *b;
    int by_event;
    uint8_t slot[BATCH_INDEX_SLOTS]; /* event index + 1; 0 empty */
} batch_index_t;

/** An empty index over b's events. EVREC_E_INVALID if b has more than BATCH_INDEX_MAX. */
int batch_index_init(batch_index_t *x, const batch_t *b, int by_event);
/** Index event i: -1 if its key was new, else the index of the event already holding it. */
long batch_index_add(batch_index_t *x, size_t i);
/** The indexed event with this key (event_id ignored when keyed by endpoint), or -1. */
long batch_index_find(const batch_index_t *x, const char *endpoint_id, const char *event_id);

#endif /* EVREC_BATCH_H */
