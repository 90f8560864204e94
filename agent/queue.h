/*
 * The durable queue: an LMDB environment per store directory.
 *
 * Named databases:
 *   events    key: big-endian u64 sequence; value: a record (record.h)
 *   endpoints key: endpoint id; value: u32 LE version + PublicEndpoint JSON
 *   meta      key: short ASCII name; value: bytes (see QUEUE_META_* and counters)
 *
 * Every function is safe to call from several threads and several processes at once
 * (LMDB serialises writers). No function here touches the network. Queues of one process
 * opened on the same store share one LMDB environment (LMDB must not open it twice per
 * process); while one of them uses EVREC_DURABLE_POWER, every commit of that environment is
 * synced. A queue must not be used across fork() (the child opens its own). On failure,
 * queue_last_error() tells the detail.
 */
#ifndef EVREC_QUEUE_H
#define EVREC_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "evrec.h"

typedef struct evrec_queue evrec_queue_t;

/* Fields left 0 take the evrec_options defaults (1,000 ms, 1,000 ms, 100, 64 MiB). */
typedef struct queue_config {
    evrec_durability_t durability;
    uint32_t sync_interval_ms;
    uint32_t commit_interval_ms;
    uint32_t commit_max_events;
    uint64_t max_store_bytes;
    evrec_full_policy_t full_policy;
    uint64_t map_size_bytes; /* 0: derived from max_store_bytes */
    int quarantine_corrupt;
    int set_store_settings; /* 1: write durability and max_store_bytes into the store */
    const struct port_clock *clock; /* the sync and commit intervals' clock; NULL: the system's */
} queue_config_t;

/* Persisted counters (u64 each, in `meta`, updated in the same transaction as the change
 * they count, so they are exact across processes and crashes). */
typedef enum queue_counter {
    QC_RECORDED = 0,
    QC_EVICTED,
    QC_EXPIRED,
    QC_REJECTED,
    QC_POISON,
    QC_REFUSED,
    QC_TRUNCATED,
    QC_DELIVERED,
    QC_UNCOMMITTED, /* batched mode: staged records lost because they could not be committed */
    QC_PURGED,      /* removed on request (evrec_purge, `evrec queue purge`) */
    QC_COUNT
} queue_counter_t;

typedef struct queue_stats {
    uint64_t events;
    uint64_t bytes;     /* sum of stored record sizes */
    uint64_t endpoints;
    int64_t oldest_ms;  /* min created_ms over queued events; 0 if empty */
    uint64_t counters[QC_COUNT];
} queue_stats_t;

/** Store-kept settings. durability and max_store_bytes are the store's, kept in its meta:
 *  the first opener (of a new store, or of a store that kept none) writes its values; a later
 *  opener follows the store's, and one asking for other values (a durability other than
 *  EVREC_DURABLE_PROCESS, a max_store_bytes other than the 64 MiB default) is refused with
 *  EVREC_E_CONFIG unless cfg->set_store_settings, which writes them into the store. Every
 *  write transaction of every process (appends, deletions, expiry, profiles, meta) reads them
 *  and follows: a change takes effect in every process at its next write. */
void queue_settings(evrec_queue_t *q, evrec_durability_t *durability, uint64_t *max_store_bytes);

/** Open or create the store in `dir` (created 0700; files 0600). On failure returns a code
 *  (EVREC_E_CORRUPT / EVREC_E_FOREIGN / EVREC_E_FORMAT_VERSION / EVREC_E_IO ...) and writes
 *  a message naming the problem to err. With cfg->quarantine_corrupt, a corrupt store is
 *  renamed to `<dir>.corrupt-<unix ms>` and an empty one created: the call then succeeds and
 *  err (if given) holds a non-empty message saying so, worth logging as a warning; on a plain
 *  success err is "". Likewise when a power cut damaged what was committed after the last sync
 *  (process and batched modes): the store is reopened as of that sync (synced.meta, see
 *  store_verify.h) and err says so. cfg may be NULL for the defaults. */
int queue_open(evrec_queue_t **out, const char *dir, const queue_config_t *cfg, char *err,
               size_t errlen);

/** Commit anything staged, fsync, and close. */
void queue_close(evrec_queue_t *q);
/** The same, telling what failed: EVREC_OK, or the commit's or fsync's code with a message in
 *  err. Staged records that cannot be committed (a full disk) are lost: they are counted in
 *  QC_UNCOMMITTED (when even that commit fits) and the message says how many. */
int queue_close_report(evrec_queue_t *q, char *err, size_t errlen);

/**
 * Append one encoded record (record.h). Enforces max_store_bytes by the full policy
 * (evicting oldest and counting QC_EVICTED, or failing EVREC_E_FULL and counting
 * QC_REFUSED); handles MDB_MAP_FULL; honours the durability mode. `counted_truncated`
 * adds one to QC_TRUNCATED in the same transaction. On EVREC_OK the record is stored as
 * promised by the durability mode and *seq_out (if not NULL) holds its sequence number.
 * In EVREC_DURABLE_BATCHED mode the record is only staged: sequence numbers are assigned
 * when the batch commits (so they stay unique and increasing across processes), *seq_out is
 * 0, and the full policy is applied at commit too (a refuse-new store that another process
 * filled meanwhile refuses the record then, counted in QC_REFUSED). While commit_max_events
 * records are staged and their commit fails (a full disk), new records are refused with the
 * commit's code (counted in QC_REFUSED): at most that window of acknowledged records can be
 * lost, and queue_close_report says so. A record larger than
 * max_store_bytes fails EVREC_E_EVENT_SIZE and evicts nothing. A full disk gives
 * EVREC_E_FULL ("disk full"); other OS errors EVREC_E_IO.
 */
int queue_append(evrec_queue_t *q, const void *record, size_t len, int counted_truncated,
                 uint64_t *seq_out);

/** Commit staged records (batched mode) and fsync. */
int queue_sync(evrec_queue_t *q);

/** Records staged in memory and not committed yet (batched mode; 0 in the other modes). */
size_t queue_staged_count(evrec_queue_t *q);

/** Periodic work: commit staged records whose interval passed, fsync if the sync interval
 *  passed. Cheap when there is nothing to do. Returns ms until it wants to run again, or
 *  QUEUE_TICK_IDLE when nothing is staged or unsynced: no timer until this process writes
 *  again, which the wake hook tells. */
#define QUEUE_TICK_IDLE UINT32_MAX

/* Process and batched modes: transactions (of any process) that may pass beyond the last
 * synced snapshot before the wake hook asks its owner to sync early (LMDB reuses no page a
 * commit after that snapshot freed until the next sync, so this bounds the file's growth).
 * With a wake hook set, a writer never fsyncs itself unless the owner falls
 * QUEUE_PIN_HARD_TXNS behind (a slow disk); without one, it syncs at QUEUE_PIN_MAX_TXNS. */
#define QUEUE_PIN_MAX_TXNS 256u
#define QUEUE_PIN_HARD_TXNS (8u * QUEUE_PIN_MAX_TXNS)
uint32_t queue_tick(evrec_queue_t *q);

/** fn(user) is called (outside the queue's locks, on the writing thread) when the queue gets
 *  timed work after having none: a commit left it unsynced, or a first record was staged. */
void queue_set_wake_hook(evrec_queue_t *q, void (*fn)(void *user), void *user);

/**
 * Visit queued records in sequence order starting at `from_seq`, inside one read transaction.
 * The value pointer is valid only during the call. The environment is opened with MDB_NOTLS,
 * so fn may call other read functions of the queue (queue_endpoint_get, queue_meta_get). Return 0 from fn to go on, 1 to stop,
 * negative to abort with that code (returned by queue_scan).
 */
typedef int (*queue_visit_fn)(void *user, uint64_t seq, const void *value, size_t len);
int queue_scan(evrec_queue_t *q, uint64_t from_seq, queue_visit_fn fn, void *user);
/** queue_scan, then (unless the scan failed) done(user) while the read transaction is still
 *  open, so the values visited are still valid; its result is returned. done NULL: queue_scan. */
int queue_scan_then(evrec_queue_t *q, uint64_t from_seq, queue_visit_fn fn, void *user,
                    int (*done)(void *user));

/** One record looked up by queue_with_records: value NULL (len 0) if it is no longer queued. */
typedef struct queue_ref {
    uint64_t seq;
    const void *value;
    size_t len;
} queue_ref_t;

/**
 * Look up refs[0..n).seq (ascending order is cheapest) inside one read transaction, then call
 * fn(user, refs, n) with the values filled in. The values point into the store's memory map
 * and are valid only during the call; fn may call the queue's read functions. Returns fn's
 * result, or an error code if the lookup itself failed (fn is then not called).
 */
typedef int (*queue_with_fn)(void *user, queue_ref_t *refs, size_t n);
int queue_with_records(evrec_queue_t *q, queue_ref_t *refs, size_t n, queue_with_fn fn,
                       void *user);

/** A counter change applied together with a deletion. */
typedef struct queue_count {
    queue_counter_t counter;
    uint64_t delta;
} queue_count_t;

/** Delete these sequences (missing ones are ignored: another process may have deleted them)
 *  and add the counts, in one write transaction. */
int queue_delete(evrec_queue_t *q, const uint64_t *seqs, size_t n, const queue_count_t *counts,
                 size_t ncounts);

/** A meta value written together with a deletion (queue_delete_noting). */
typedef struct queue_note {
    const char *key; /* as queue_meta_put's: not one the store reserves */
    const void *value;
    size_t len;
} queue_note_t;

/** queue_delete, also writing `note` (if not NULL) in the same write transaction: a caller
 *  that keeps a value per request (the upload count) pays one commit, not two. */
int queue_delete_noting(evrec_queue_t *q, const uint64_t *seqs, size_t n,
                        const queue_count_t *counts, size_t ncounts, const queue_note_t *note);

/** Delete every queued record for which match(user, seq, value, len) returns 1 (0 keeps it; a
 *  negative code stops and is returned, what was deleted in earlier chunks stays deleted),
 *  adding one to `counter` per deletion in the same write transaction (a few hundred
 *  deletions per transaction). *removed (if not NULL) gets how many. */
typedef int (*queue_match_fn)(void *user, uint64_t seq, const void *value, size_t len);
int queue_remove_matching(evrec_queue_t *q, queue_match_fn match, void *user,
                          queue_counter_t counter, uint64_t *removed);

/** Delete every queued record whose created_ms < cutoff_ms, counting QC_EXPIRED.
 *  *removed (if not NULL) gets how many. */
int queue_expire(evrec_queue_t *q, int64_t cutoff_ms, uint64_t *removed);

/** Queue size and counters, exact as of one read transaction. Records staged by batched
 *  mode and not yet committed are not included. Cost: O(queued events), because oldest_ms
 *  needs every record's header (timestamps are the caller's, not queue order). */
int queue_stats(evrec_queue_t *q, queue_stats_t *out);

/** Number of queued events (cheap: from LMDB's own statistics). */
uint64_t queue_count(evrec_queue_t *q);

/* -- endpoint profiles ------------------------------------------------------------------- */

/** The stored profile JSON of an endpoint (port_malloc'ed, NUL-terminated) and its version.
 *  EVREC_E_NOT_FOUND if none. */
int queue_endpoint_get(evrec_queue_t *q, const char *id, char **json, uint32_t *version);
/** Store a profile (version incremented). */
int queue_endpoint_put(evrec_queue_t *q, const char *id, const char *json, size_t len);

/**
 * Read-modify-write a profile inside one write transaction. fn gets the current JSON (NULL,0
 * if none) and sets *new_json (port_malloc'ed; the queue frees it) and *new_len; returning
 * non-zero aborts the transaction with that code and nothing changes.
 */
typedef int (*queue_endpoint_edit_fn)(void *user, const char *old_json, size_t old_len,
                                      char **new_json, size_t *new_len);
int queue_endpoint_update(evrec_queue_t *q, const char *id, queue_endpoint_edit_fn fn,
                          void *user);

/* -- meta -------------------------------------------------------------------------------- */

#define QUEUE_META_ENDPOINT_ID "endpoint_id"   /* the default endpoint id (UUID text) */
#define QUEUE_META_SESSION "session"           /* persisted session state (session.c) */
#define QUEUE_META_CLOCK_OFFSET "clock_offset" /* i64 ms: service time minus device time */
#define QUEUE_META_STATUS "status"             /* JSON: last upload, last error, backoff */
#define QUEUE_META_COGNITO_ID "cognito_identity_id"

/** Read a meta value into a port_malloc'ed buffer (NUL-terminated for convenience). */
int queue_meta_get(evrec_queue_t *q, const char *key, char **value, size_t *len);
/** Store a meta value. The store's own keys ("format", "next_seq", "bytes", "count.*") are
 *  refused with EVREC_E_INVALID. */
int queue_meta_put(evrec_queue_t *q, const char *key, const void *value, size_t len);
/** queue_meta_put for a value that needs no sync of its own (the flusher's status, read by
 *  `evrec stats`): visible to other processes at once, synced with whatever comes next, and
 *  after a power cut possibly an older value. */
int queue_meta_put_unsynced(evrec_queue_t *q, const char *key, const void *value, size_t len);
/** Put `value` only if the key is absent; either way *stored gets the value now stored
 *  (port_malloc'ed). Used so that processes sharing a store agree on one endpoint id. */
int queue_meta_put_if_absent(evrec_queue_t *q, const char *key, const char *value,
                             char **stored);

/** Take the store's flusher role (an advisory lock file in the store directory). EVREC_OK if
 *  this process now holds it, EVREC_E_BUSY if another process does. Released by queue_close
 *  or queue_flusher_release. */
int queue_flusher_acquire(evrec_queue_t *q);
void queue_flusher_release(evrec_queue_t *q);
/** Keep the ids of the events this queue's own writes evict (off by default), for
 *  queue_take_evicted. Bounded: past 256 KiB of ids waiting, evictions are only counted. */
void queue_report_evictions(evrec_queue_t *q, int on);
/** Hand over the evictions kept since the last call: *pairs (port_malloc'ed, the caller frees)
 *  holds *len bytes of "event id\0endpoint id\0" pairs; *unreported counts evictions whose
 *  ids were not kept. Returns 1 if there was anything, else 0. */
int queue_take_evicted(evrec_queue_t *q, char **pairs, size_t *len, uint64_t *unreported);

/** 1 if a process (this one included) holds the store's flusher role now, else 0. */
int queue_flusher_alive(evrec_queue_t *q);

/** The directory of the store (owned by the queue). */
const char *queue_dir(const evrec_queue_t *q);
/** The store's data file (the one its writers write to: the flusher watches it), or NULL for
 *  a store without a directory. */
const char *queue_data_path(const evrec_queue_t *q);

/** The message of the last failure of a queue function in the calling thread ("" if none).
 *  Owned by the queue; valid until the thread's next failing call or queue_close. */
const char *queue_last_error(evrec_queue_t *q);

/** Count the queued events by record shape (record.h): counts[shape] for shapes below
 *  nshapes, *other for damaged records and shapes beyond (agent/queue_shapes.c). One read
 *  transaction over the whole queue. */
int queue_count_shapes(evrec_queue_t *q, uint64_t *counts, size_t nshapes, uint64_t *other);

#endif /* EVREC_QUEUE_H */
