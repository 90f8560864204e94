/*
 * The batcher: picks the next request's worth of queued events, oldest first, under the
 * rules a backend gives it (batch_rules_t: count and size limits, the record shapes it carries,
 * how events group into one request, what each adds to the body). It names no service.
 * Reads the queue in one read transaction and keeps each
 * event's sequence number, ids and lengths (the ids in a few chunks per batch), not its JSON:
 * the fragments are read again, without copying, by batch_with_fragments() while the request
 * body is built, so a body is the only copy of its events and nothing is held across the
 * network call.
 *
 * Groupings: BATCH_GROUP_ANY (any events in queue order), BATCH_GROUP_ENDPOINT_EVENTS (a
 * second event with the same (endpoint id, event id) ends the batch: a map keyed so would hold
 * only one), BATCH_GROUP_STREAM (only events with the same (userId, sessionId) as the oldest
 * queued one; others are looked past).
 */
#ifndef EVREC_BATCH_H
#define EVREC_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "evrec.h"
#include "queue.h"

struct batch;

/** How one request's worth of events is chosen: given by each backend (service.h). */
typedef enum batch_grouping {
    BATCH_GROUP_ANY = 0,
    BATCH_GROUP_ENDPOINT_EVENTS,
    BATCH_GROUP_STREAM,
} batch_grouping_t;

typedef struct batch_rules {
    uint32_t max_events;      /* per request: the service's limit */
    size_t max_bytes;         /* per request, as added_bytes counts: the service's limit */
    unsigned shapes;          /* bit (1u << shape) for each record shape carried */
    batch_grouping_t grouping;
    int profiles;             /* the request carries endpoint profiles: their lengths are read */
    /* What appending b->events[n] to the first n events adds to the request estimate;
     * `new_endpoint` says whether its endpoint is not among them yet. An upper bound. */
    size_t (*added_bytes)(const struct batch *b, size_t n, int new_endpoint);
} batch_rules_t;

typedef struct batch_event {
    uint64_t seq;
    uint8_t shape;     /* the record's shape (record.h) */
    int64_t created_ms;
    uint16_t flags;
    char *event_id;    /* batch_next: the four ids, kept in the batch's `ids` */
    char *endpoint_id;
    char *session_id;  /* "" if none */
    char *user_id;     /* "" if none */
    const char *fragment; /* the stored JSON fragment, NUL-terminated: set only inside
                             batch_with_fragments (or by whoever builds a batch by hand) */
    size_t fragment_len;
    size_t profile_len; /* rules->profiles: length of the endpoint's profile when batched */
    uint32_t event_hash;    /* batch_next: the index's hashes of event_id and endpoint_id, */
    uint32_t endpoint_hash; /* computed once; `hashed` 0 (a batch built by hand): none */
    uint8_t hashed;
} batch_event_t;

struct batch_ids; /* batch.c: where the events' ids are kept */

typedef struct batch {
    const batch_rules_t *rules;
    batch_event_t *events;
    struct batch_ids *ids; /* batch_next's copies of the ids, shared with batches split off */
    size_t n;
    size_t cap;
    size_t body_bytes;    /* estimated request body size */
    uint64_t next_seq;    /* where the scan stopped: start the next batch here to skip this one */
    const struct seal_keys *keys; /* encryption at rest: opens sealed records (batch_next's) */
} batch_t;

typedef struct batch_limits {
    const batch_rules_t *rules;
    uint32_t max_events;     /* clamped to rules->max_events */
    size_t max_bytes;        /* request bound, clamped to rules->max_bytes */
    int64_t expire_before_ms;/* events created before this are not taken (the caller expires
                                them with queue_expire); 0: none */
    uint64_t from_seq;       /* start of the scan (0: oldest) */
    const struct seal_keys *keys; /* encryption at rest: opens sealed records; NULL: none */
} batch_limits_t;

/** Fill *out with the next batch (out->n == 0 when nothing is queued). An event too large to
 *  fit a request even alone is still returned alone (the service will judge it).
 *  max_events / max_bytes 0 or above the rules' limits mean those limits.
 *  The scan stops at the first event that does not fit, so order is kept. Records this batch
 *  cannot carry (damaged, of a shape the rules do not carry, created before expire_before_ms)
 *  are passed over and left where they are. BATCH_GROUP_ENDPOINT_EVENTS: a second event with
 *  the same (endpoint id, event id) ends the batch. BATCH_GROUP_STREAM: records of other
 *  streams are looked past, at most 1,000 of them. On error *out is empty. */
int batch_next(evrec_queue_t *q, const batch_limits_t *lim, batch_t *out);

/**
 * Point every event's `fragment` at its stored JSON (straight into the store's memory map; a
 * copy only for records written before the format had a terminating NUL, and for sealed
 * records, opened into a buffer that is wiped after fn), call fn(user, b),
 * then clear the pointers again. Events no longer queued (evicted, or deleted by another
 * process, since the batch was taken) and damaged records are removed from b first; if none
 * is left, fn is not called and the result is EVREC_E_NOT_FOUND. Otherwise fn's result.
 */
typedef int (*batch_fn)(void *user, batch_t *b);
int batch_with_fragments(evrec_queue_t *q, batch_t *b, batch_fn fn, void *user);

/**
 * batch_next, and then, inside the same read transaction, fn(user, out) with every event's
 * `fragment` set (as batch_with_fragments would, without looking the records up again), when
 * every record taken is plain and NUL-terminated (not sealed, not of the oldest format).
 * *ran says whether fn was called, *fn_rc what it returned; when it was not, the caller uses
 * batch_with_fragments. The fragments are cleared again before this returns.
 */
int batch_next_then(evrec_queue_t *q, const batch_limits_t *lim, batch_t *out, batch_fn fn,
                    void *user, int *ran, int *fn_rc);

/** Move events [at, n) of b into a new batch *tail (for 413 splitting and 400 bisection). */
int batch_split(batch_t *b, size_t at, batch_t *tail);

/** Free what the batch holds (b itself is the caller's) and leave it empty. NULL is fine. */
void batch_free(batch_t *b);

/* -- an index of a batch's events, for the encoders and the decoder -------------------- */

/** Most events a batch_index_t can index (Pinpoint allows 100 a request; the batcher indexes
 *  only BATCH_GROUP_ENDPOINT_EVENTS batches). */
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
