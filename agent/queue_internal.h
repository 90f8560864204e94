/*
 * The durable queue over LMDB, in five files that share this header: queue_open.c (open,
 * create, verify, the store-kept settings, restore of the synced snapshot, close, the
 * process-wide environment registry), queue_write.c (write transactions, append, eviction,
 * batched staging, ticks), queue_sync.c (sync and the pinned synced snapshot), queue_read.c
 * (scan, delete, expire, stats) and queue_meta.c (error messages, meta values, endpoint
 * profiles, the flusher's lock, accessors). Nothing outside them includes this; the rest of
 * the library goes through queue.h, whose contract they implement. The costs are in README.md
 * ("Storage, durability and limits").
 *
 * Layout of `meta` (keys are ASCII, integers little-endian):
 *   format          "evrec-store" + u32 format version: the marker that this is our store
 *   next_seq        u64: the next sequence number to hand out (never reused, never reset)
 *   bytes           u64: sum of the sizes of the values in `events`
 *   count.<name>    u64 per queue_counter_t
 *   durability      u64: the store's evrec_durability_t (store-kept, see queue.h)
 *   max_store_bytes u64: the store's byte bound (store-kept)
 * Every one of them changes in the same write transaction as the records it describes.
 */
#ifndef EVREC_QUEUE_INTERNAL_H
#define EVREC_QUEUE_INTERNAL_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "evrec.h"
#include "port.h"
#include "queue.h"

#define K_FORMAT "format"
#define K_NEXT_SEQ "next_seq"
#define K_BYTES "bytes"
#define K_DURABILITY "durability"
#define K_MAX_BYTES "max_store_bytes"
#define COUNTER_PREFIX "count."

/* The meta key of each queue_counter_t (queue_meta.c). */
extern const char *const queue_counter_keys[QC_COUNT];

#define SIDE_BOOT_LEN 64u
#define PIN_MAX_TXNS QUEUE_PIN_MAX_TXNS
/* Removals alone are synced after this many sync intervals (records after one). */
#define DELETE_SYNC_FACTOR 10u
#define PIN_HARD_TXNS QUEUE_PIN_HARD_TXNS
#define ERR_LEN 256

typedef struct qerr {
    struct qerr *next;
    char msg[ERR_LEN];
} qerr_t;

typedef struct staged {
    uint8_t *data; /* in one of the window's chunks */
    size_t len;
    int truncated;
} staged_t;

/* Staged records' bytes live in chunks (one allocation for many records, not one a record):
 * a window's first chunk holds 4 KiB, each next one twice the last up to 64 KiB, and a record
 * larger than that gets a chunk of its own. Chunks are freed with the window that staged into
 * them: after its commit, or with the queue. */
typedef struct stage_chunk {
    struct stage_chunk *next;
    size_t used, cap;
    uint8_t data[];
} stage_chunk_t;

/* One LMDB environment per store and process, shared by every queue of this process that
 * opens the store (LMDB forbids opening an environment twice in one process: its locks are
 * per process, so the second open would reset the lock table under the first). Found through
 * the port's process-wide registry, keyed by the directory's file identity. */
typedef struct shared_env {
    MDB_env *env;
    MDB_dbi events, endpoints, meta;
    uint64_t map_size;
    unsigned refs;        /* queues using it (under the registry lock) */
    long pid;             /* the process that opened it: a forked child must open its own */
    char id[64];
} shared_env_t;

struct evrec_queue {
    shared_env_t *se; /* env, dbis and map_size below are copies of its fields */
    MDB_env *env;
    MDB_dbi events, endpoints, meta;
    char *dir;
    char *lock_path;
    queue_config_t cfg;   /* durability and max_store_bytes: the store's, followed at each write */
    atomic_int mode;      /* the store's durability, as of this queue's last transaction */
    uint64_t map_size;
    uint64_t bound; /* (under mu) the byte bound in force: the store's max_store_bytes, at most
                     * map_size / MAP_SHARE */

    port_mutex_t *mu;        /* guards everything below */
    port_mutex_t *commit_mu; /* serialises batched commits so batches land in staging order */
    port_mutex_t *sync_mu;   /* serialises fsyncs and the synced snapshot they keep */
    staged_t *staged;
    size_t nstaged, capstaged;
    stage_chunk_t *chunks;  /* the staged records' bytes; the head is the one being filled */
    size_t inflight;      /* records taken from staging by a commit that has not ended yet */
    uint64_t staged_bytes;
    uint64_t staged_since_ms;
    int last_commit_rc;
    uint64_t last_sync_ms;
    int dirty;            /* committed since the last fsync */
    int dirty_kept;       /* (under mu) and a commit since then holds what a caller was told is
                             kept: a record, a profile, a meta value, a count, a purge. Commits
                             that only remove what the service answered for (or expiry and
                             eviction removed) leave it 0: lost to a power cut, those events
                             come back and go again, so they wait longer (DELETE_SYNC_FACTOR) */
    int sync_asked;       /* the owner was woken to sync early (PIN_MAX_TXNS); cleared by a sync */
    uint64_t last_txnid;  /* this queue's newest commit */
    void (*wake_fn)(void *user); /* queue_set_wake_hook */
    void *wake_user;
    int env_mode_set;     /* follow_mode has set the environment's sync flag once */
    int opening;          /* open_env .. open_dbs: the environment stays synced */
    int shared;           /* a group store (setgid, group-writable directory): files 0660 */
    uint64_t known_bytes; /* `bytes` as of this process's last transaction */
    uint64_t pending_refused; /* refusals whose own counter commit failed (map full) */
    port_filelock_t *flusher;
    /* Evictions this queue's writes made, for the delivery callback (queue_take_evicted):
     * "event id\0endpoint id\0" pairs, at most EVICTED_MAX bytes; the rest only counted. */
    int report_evictions;
    char *evicted;
    size_t evicted_len, evicted_cap;
    uint64_t evicted_unreported;
    MDB_txn *pin;         /* (under mu) read transaction on the last synced snapshot */
    uint64_t pin_txnid;   /* (under mu) its transaction id */
    int pin_synced;       /* (under mu) this queue synced the pinned snapshot itself */
    char *data_path, *synced_path;
    int restored;         /* open: the last synced snapshot was restored (at most once) */

    port_tls_t *tls; /* per-thread qerr_t */
    qerr_t *errs;    /* every qerr_t handed out, freed at close */
};

/* -- small helpers ----------------------------------------------------------------------- */

static inline void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static inline uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static inline int is_power(evrec_queue_t *q)
{
    return atomic_load(&q->mode) == EVREC_DURABLE_POWER;
}

static inline int is_batched(evrec_queue_t *q)
{
    return atomic_load(&q->mode) == EVREC_DURABLE_BATCHED;
}

static inline MDB_val str_val(const char *s)
{
    MDB_val v = { strlen(s), (void *)s };
    return v;
}

/* A write transaction with the store's running state (queue_write.c). */
typedef struct wstate {
    MDB_txn *txn;
    uint64_t next_seq;
    uint64_t bytes;
    uint64_t add[QC_COUNT];
    uint64_t txnid;
    int seq_dirty, bytes_dirty;
    /* ids of the records this transaction evicts (report_evictions), published on commit */
    char *evicted;
    size_t evicted_len, evicted_cap;
    uint64_t evicted_unreported;
} wstate_t;

/* The newest valid slot of synced.meta, the synced snapshot's side file (queue_sync.c). */
typedef struct side {
    uint64_t seq, txnid;
    uint8_t copy[256];
    char boot[SIDE_BOOT_LEN + 1];
} side_t;

/* -- queue_meta.c: error messages and meta values ---------------------------------------- */

/* Write this thread's message for q (queue_last_error) and return `code`. */
__attribute__((format(printf, 3, 4))) int queue_fail(evrec_queue_t *q, int code,
                                                     const char *fmt, ...);
/* LMDB and OS codes -> evrec codes, the message naming the operation (`what`). */
int queue_mdb_fail(evrec_queue_t *q, int rc, const char *what);
/* The same while opening, into the opener's buffer. */
int queue_open_fail_mdb(const evrec_queue_t *q, char *err, size_t errlen, int rc,
                        const char *what);
/* A u64 meta value and whether it is there at all. */
int queue_meta_find_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t *out,
                        int *found);
int queue_meta_get_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t *out);
int queue_meta_put_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t v);
int queue_meta_add_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t delta);
/* A key callers may write (not empty, within LMDB's key size, not reserved): EVREC_OK or the
 * error, noted in the queue's message. */
int queue_meta_key_check(evrec_queue_t *q, const char *key);

/* -- queue_open.c ------------------------------------------------------------------------ */

/* Read the store's settings inside a write transaction and follow them. */
int queue_follow_settings(evrec_queue_t *q, MDB_txn *txn);

/* -- queue_write.c ----------------------------------------------------------------------- */

/* Commit a write transaction, honouring the test hook that simulates a full disk. */
int queue_txn_commit(MDB_txn *txn);
int queue_ws_begin(evrec_queue_t *q, wstate_t *ws);
void queue_ws_abort(wstate_t *ws);
int queue_ws_commit(evrec_queue_t *q, wstate_t *ws);
/* Delete the record under the cursor, keeping `bytes` in step. */
int queue_ws_del_current(wstate_t *ws, MDB_cursor *cur, size_t size);
/* Commit a write transaction outside wstate (profiles, meta values), noting it. */
int queue_commit_noted(evrec_queue_t *q, MDB_txn *txn);
/* The same for a write a caller is not told is kept (dirty_kept stays as it is). */
int queue_commit_noted_unsynced(evrec_queue_t *q, MDB_txn *txn);
/* The last key of `events` (0 if empty). */
int queue_last_seq(evrec_queue_t *q, MDB_txn *txn, uint64_t *out);
void queue_free_staged(staged_t *s, stage_chunk_t *chunks);
int queue_flush_staged(evrec_queue_t *q);

/* -- queue_sync.c ------------------------------------------------------------------------ */

/* fsync the environment and pin the snapshot it made durable (process, batched modes). */
int queue_env_sync(evrec_queue_t *q);
/* When unsynced commits are due, after the last sync: the sync interval, or DELETE_SYNC_FACTOR
 * of them when they only removed events (dirty_kept 0). Under q->mu. */
uint64_t queue_sync_every_ms(const evrec_queue_t *q);
/* Sync when that is due or the synced snapshot lies PIN_MAX_TXNS behind. */
void queue_maybe_sync(evrec_queue_t *q);
/* After a direct write (an append, a profile, a meta value). */
void queue_sync_after_write(evrec_queue_t *q);
void queue_drop_pin(evrec_queue_t *q);
void queue_release_idle_pin(evrec_queue_t *q);
void queue_ensure_pin(evrec_queue_t *q);
int queue_read_side(evrec_queue_t *q, side_t *out);

/* -- queue_read.c ------------------------------------------------------------------------ */

int queue_begin_read(evrec_queue_t *q, MDB_txn **txn);

#endif
