/*
 * The durable queue over LMDB. The contract is in queue.h; the costs are in README.md
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
#include "queue.h"
#include "store_verify.h"

#include <lmdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "port.h"
#include "record.h"
#include "util_str.h"

#define QUEUE_FORMAT_VERSION 1u
#define FORMAT_MAGIC "evrec-store"
#define FORMAT_MAGIC_LEN (sizeof FORMAT_MAGIC - 1)

#define K_FORMAT "format"
#define K_NEXT_SEQ "next_seq"
#define K_BYTES "bytes"
#define K_DURABILITY "durability"
#define K_MAX_BYTES "max_store_bytes"
#define COUNTER_PREFIX "count."

static const char *const counter_keys[QC_COUNT] = {
    [QC_RECORDED] = COUNTER_PREFIX "recorded",   [QC_EVICTED] = COUNTER_PREFIX "evicted",
    [QC_EXPIRED] = COUNTER_PREFIX "expired",     [QC_REJECTED] = COUNTER_PREFIX "rejected",
    [QC_POISON] = COUNTER_PREFIX "poison",       [QC_REFUSED] = COUNTER_PREFIX "refused",
    [QC_TRUNCATED] = COUNTER_PREFIX "truncated", [QC_DELIVERED] = COUNTER_PREFIX "delivered",
    [QC_UNCOMMITTED] = COUNTER_PREFIX "uncommitted", [QC_PURGED] = COUNTER_PREFIX "purged",
};

/* Defaults when a config field is 0 (the documented evrec_options defaults). */
#define DEF_SYNC_INTERVAL_MS 1000u
#define DEF_COMMIT_INTERVAL_MS 1000u
#define DEF_COMMIT_MAX_EVENTS 100u
#define DEF_MAX_STORE_BYTES (64ull << 20)

/* Map size: the bound plus LMDB's overhead. With 200-byte records a leaf page holds 18 of
 * them (node header and key add 18 bytes each), so the B-tree is ~1.15x the bytes it holds;
 * deletions at the head are recycled through LMDB's free list, but only two transactions
 * later, and never while a reader (a flusher in queue_scan) still sees the old pages, so every
 * write transaction during a scan allocates ~5 fresh pages. The default map is therefore
 * generous: 4x the bound plus 8 MiB. On 64-bit it only costs address space: the file grows
 * with what is used. The byte bound in force is at most a third of the map (QUEUE_MAP_SHARE),
 * so that a store whose map was set small still keeps room for the pages an eviction needs;
 * MAP_FULL (a reader pinning pages for too long) is handled below as the last resort. */
#define MAP_SLACK_BYTES (8ull << 20)
#define MAP_FACTOR 4u
#define MAP_SHARE 3u
#define MAP_MIN_BYTES (1ull << 20)
/* 32-bit address spaces: the whole map is mmap'ed, so keep it well inside 3 GiB of user space
 * shared with the heap, libraries and stacks. */
#define MAP_MAX_32BIT (1ull << 30)

#define EXPIRE_CHUNK 512u
#define SIDE_BOOT_LEN 64u
#define PIN_MAX_TXNS QUEUE_PIN_MAX_TXNS
#define PIN_HARD_TXNS QUEUE_PIN_HARD_TXNS
#define ERR_LEN 256

typedef struct qerr {
    struct qerr *next;
    char msg[ERR_LEN];
} qerr_t;

typedef struct staged {
    uint8_t *data;
    size_t len;
    int truncated;
} staged_t;

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
    size_t inflight;      /* records taken from staging by a commit that has not ended yet */
    uint64_t staged_bytes;
    uint64_t staged_since_ms;
    int last_commit_rc;
    uint64_t last_sync_ms;
    int dirty;            /* committed since the last fsync */
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
    char *data_path, *synced_path;
    int restored;         /* open: the last synced snapshot was restored (at most once) */

    port_tls_t *tls; /* per-thread qerr_t */
    qerr_t *errs;    /* every qerr_t handed out, freed at close */
};

/* -- small helpers ----------------------------------------------------------------------- */

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int is_power(evrec_queue_t *q)
{
    return atomic_load(&q->mode) == EVREC_DURABLE_POWER;
}

static int is_batched(evrec_queue_t *q)
{
    return atomic_load(&q->mode) == EVREC_DURABLE_BATCHED;
}

static uint64_t bound_of(evrec_queue_t *q)
{
    port_mutex_lock(q->mu);
    uint64_t b = q->bound;
    port_mutex_unlock(q->mu);
    return b;
}

/* -- per-thread error messages ----------------------------------------------------------- */

static char *errbuf(evrec_queue_t *q)
{
    qerr_t *e = port_tls_get(q->tls);
    if (!e) {
        e = port_calloc(1, sizeof *e);
        if (!e)
            return NULL;
        port_mutex_lock(q->mu);
        e->next = q->errs;
        q->errs = e;
        port_mutex_unlock(q->mu);
        port_tls_set(q->tls, e);
    }
    return e->msg;
}

__attribute__((format(printf, 3, 4))) static int qfail(evrec_queue_t *q, int code,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    util_vfailf(errbuf(q), ERR_LEN, code, fmt, ap);
    va_end(ap);
    return code;
}

const char *queue_last_error(evrec_queue_t *q)
{
    if (!q)
        return "";
    qerr_t *e = port_tls_get(q->tls);
    return e ? e->msg : "";
}

/* LMDB and OS codes → evrec codes. `what` names the operation for the message. */
static int mdb_code(int rc)
{
    switch (rc) {
    case 0: return EVREC_OK;
    case MDB_MAP_FULL:
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
    case EFBIG: return EVREC_E_FULL;
    case ENOMEM: return EVREC_E_NOMEM;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
    case MDB_PANIC:
    case MDB_BAD_TXN: return EVREC_E_CORRUPT;
    case MDB_INCOMPATIBLE: return EVREC_E_FOREIGN;
    default: return EVREC_E_IO;
    }
}

static void describe_mdb(char *buf, size_t len, int rc, const char *what, const char *dir,
                         uint64_t map_size)
{
    if (rc == ENOSPC
#ifdef EDQUOT
        || rc == EDQUOT
#endif
    )
        snprintf(buf, len, "%s: disk full in %s (%s)", what, dir, mdb_strerror(rc));
    else if (rc == MDB_MAP_FULL)
        snprintf(buf, len, "%s: the store's map (%llu bytes) is full in %s; raise map_size_bytes",
                 what, (unsigned long long)map_size, dir);
    else if (mdb_code(rc) == EVREC_E_CORRUPT)
        snprintf(buf, len, "%s: store %s is corrupt: %s", what, dir, mdb_strerror(rc));
    else
        snprintf(buf, len, "%s in %s: %s", what, dir, mdb_strerror(rc));
}

static int mdb_fail(evrec_queue_t *q, int rc, const char *what)
{
    char *b = errbuf(q);
    if (b)
        describe_mdb(b, ERR_LEN, rc, what, q->dir, q->map_size);
    return mdb_code(rc);
}

/* Commit a write transaction, honouring the test hook that simulates a full disk. */
static int txn_commit(MDB_txn *txn)
{
    int inj = port_fault_take("queue.commit");
    if (inj) {
        mdb_txn_abort(txn);
        return -inj;
    }
    return mdb_txn_commit(txn);
}

/* -- meta values ------------------------------------------------------------------------- */

static MDB_val str_val(const char *s)
{
    MDB_val v = { strlen(s), (void *)s };
    return v;
}

/* A u64 meta value and whether it is there at all. */
static int meta_find_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t *out,
                         int *found)
{
    MDB_val k = str_val(key), d;
    int rc = mdb_get(txn, q->meta, &k, &d);
    *found = rc == 0;
    *out = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (d.mv_size != 8)
        return MDB_CORRUPTED;
    *out = get_le64(d.mv_data);
    return 0;
}

static int meta_get_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t *out)
{
    int found;
    return meta_find_u64(q, txn, key, out, &found);
}

static int meta_put_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t v)
{
    uint8_t b[8];
    put_le64(b, v);
    MDB_val k = str_val(key), d = { 8, b };
    return mdb_put(txn, q->meta, &k, &d, 0);
}

static int meta_add_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t delta)
{
    if (delta == 0)
        return 0;
    uint64_t v;
    int rc = meta_get_u64(q, txn, key, &v);
    return rc ? rc : meta_put_u64(q, txn, key, v + delta);
}

static int is_reserved_meta(const char *key)
{
    return strcmp(key, K_FORMAT) == 0 || strcmp(key, K_NEXT_SEQ) == 0 ||
           strcmp(key, K_BYTES) == 0 || strcmp(key, K_DURABILITY) == 0 ||
           strcmp(key, K_MAX_BYTES) == 0 ||
           strncmp(key, COUNTER_PREFIX, sizeof COUNTER_PREFIX - 1) == 0;
}

/* -- store-kept settings ------------------------------------------------------------------ */

static int open_fail_mdb(const evrec_queue_t *q, char *err, size_t errlen, int rc,
                         const char *what);

static void set_bound_locked(evrec_queue_t *q, uint64_t max_store_bytes)
{
    q->cfg.max_store_bytes = max_store_bytes;
    q->bound = max_store_bytes;
    if (q->bound > q->map_size / MAP_SHARE)
        q->bound = q->map_size / MAP_SHARE;
}

/* Follow the store's durability: every commit of this process's environment syncs while the
 * store is in power mode. Called inside a write transaction (no other writer runs). */
static void follow_mode(evrec_queue_t *q, int mode)
{
    if (atomic_exchange(&q->mode, mode) == mode && q->env_mode_set)
        return;
    if (q->opening)
        return; /* open_dbs applies it after its commit */
    mdb_env_set_flags(q->env, MDB_NOSYNC, mode == EVREC_DURABLE_POWER ? 0 : 1);
    q->env_mode_set = 1;
    if (mode == EVREC_DURABLE_POWER) /* every commit is durable: no synced snapshot to keep */
        (void)port_remove(q->synced_path);
}

/* Read the store's settings inside a write transaction and follow them. */
static int follow_settings(evrec_queue_t *q, MDB_txn *txn)
{
    uint64_t d, m;
    int fd, fm;
    int rc = meta_find_u64(q, txn, K_DURABILITY, &d, &fd);
    if (!rc)
        rc = meta_find_u64(q, txn, K_MAX_BYTES, &m, &fm);
    if (rc)
        return rc;
    if (fd && d <= EVREC_DURABLE_BATCHED)
        follow_mode(q, (int)d);
    if (fm && m > 0) {
        port_mutex_lock(q->mu);
        set_bound_locked(q, m);
        port_mutex_unlock(q->mu);
    }
    return 0;
}

static const char *const mode_names[] = { "process", "power", "batched" };

/* At open, inside a write transaction: a store without settings (new, or written by an evrec
 * that kept none) takes this opener's; with cfg->set_store_settings the opener's replace the
 * store's; otherwise the store's stand, and an opener asking for other values (anything but
 * the defaults) is refused, so that nothing given is silently not applied. */
static int settle_settings(evrec_queue_t *q, MDB_txn *txn, char *err, size_t errlen)
{
    uint64_t d, m;
    int fd, fm;
    int rc = meta_find_u64(q, txn, K_DURABILITY, &d, &fd);
    if (!rc)
        rc = meta_find_u64(q, txn, K_MAX_BYTES, &m, &fm);
    if (!rc && fd && d > EVREC_DURABLE_BATCHED)
        rc = MDB_CORRUPTED;
    if (!rc && fm && m == 0)
        rc = MDB_CORRUPTED;
    if (rc)
        return open_fail_mdb(q, err, errlen, rc, "reading the store's settings");
    const queue_config_t *c = &q->cfg;
    if (!c->set_store_settings) {
        if (fd && d != (uint64_t)c->durability && c->durability != EVREC_DURABLE_PROCESS)
            return util_failf(err, errlen, EVREC_E_CONFIG,
                             "store %s keeps durability %s; this opener asks for %s: set "
                             "set_store_settings (CLI: --set-store-settings) to change it for "
                             "every process",
                             q->dir, mode_names[d], mode_names[c->durability]);
        if (fm && m != c->max_store_bytes && c->max_store_bytes != DEF_MAX_STORE_BYTES)
            return util_failf(err, errlen, EVREC_E_CONFIG,
                             "store %s keeps max_store_bytes %llu; this opener asks for %llu: "
                             "set set_store_settings (CLI: --set-store-settings) to change it "
                             "for every process",
                             q->dir, (unsigned long long)m,
                             (unsigned long long)c->max_store_bytes);
    }
    if (!rc && (!fd || c->set_store_settings))
        rc = meta_put_u64(q, txn, K_DURABILITY, (uint64_t)c->durability);
    if (!rc && (!fm || c->set_store_settings))
        rc = meta_put_u64(q, txn, K_MAX_BYTES, c->max_store_bytes);
    if (!rc)
        rc = follow_settings(q, txn);
    if (rc)
        return open_fail_mdb(q, err, errlen, rc, "writing the store's settings");
    return EVREC_OK;
}

/* -- write transactions with the store's running state ----------------------------------- */

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

#define EVICTED_MAX (256u * 1024u)

static void ws_drop_evicted(wstate_t *ws)
{
    port_free(ws->evicted);
    ws->evicted = NULL;
    ws->evicted_len = ws->evicted_cap = 0;
    ws->evicted_unreported = 0;
}

/* Keep the ids of a record about to be evicted (its bytes are the map's until the delete). */
static void ws_note_evicted(evrec_queue_t *q, wstate_t *ws, const MDB_val *d)
{
    evrec_record_view_t v;
    if (!q->report_evictions)
        return;
    size_t need = 0;
    if (evrec_record_decode(d->mv_data, d->mv_size, &v) == EVREC_OK)
        need = v.event_id_len + v.endpoint_id_len + 2;
    if (need == 0 || ws->evicted_len + need > EVICTED_MAX) {
        ws->evicted_unreported++;
        return;
    }
    if (ws->evicted_len + need > ws->evicted_cap) {
        size_t cap = ws->evicted_cap ? 2 * ws->evicted_cap : 4096;
        while (cap < ws->evicted_len + need)
            cap *= 2;
        char *p = port_realloc(ws->evicted, cap);
        if (!p) {
            ws->evicted_unreported++;
            return;
        }
        ws->evicted = p;
        ws->evicted_cap = cap;
    }
    char *w = ws->evicted + ws->evicted_len;
    memcpy(w, v.event_id, v.event_id_len);
    w[v.event_id_len] = '\0';
    memcpy(w + v.event_id_len + 1, v.endpoint_id, v.endpoint_id_len);
    w[need - 1] = '\0';
    ws->evicted_len += need;
}

/* After a commit: the evictions join the queue's list (bounded) for queue_take_evicted. */
static void ws_publish_evicted(evrec_queue_t *q, wstate_t *ws)
{
    if (!ws->evicted_len && !ws->evicted_unreported)
        return;
    port_mutex_lock(q->mu);
    uint64_t unreported = ws->evicted_unreported;
    size_t want = q->evicted_len + ws->evicted_len;
    if (ws->evicted_len && want <= EVICTED_MAX && want > q->evicted_cap) {
        char *p = port_realloc(q->evicted, want);
        if (p) {
            q->evicted = p;
            q->evicted_cap = want;
        }
    }
    if (ws->evicted_len && want <= q->evicted_cap) {
        memcpy(q->evicted + q->evicted_len, ws->evicted, ws->evicted_len);
        q->evicted_len = want;
    } else {
        size_t nuls = 0; /* two a pair */
        for (size_t i = 0; i < ws->evicted_len; i++)
            nuls += ws->evicted[i] == '\0';
        unreported += nuls / 2;
    }
    q->evicted_unreported += unreported;
    port_mutex_unlock(q->mu);
    ws_drop_evicted(ws);
}

static int ws_begin(evrec_queue_t *q, wstate_t *ws)
{
    memset(ws, 0, sizeof *ws);
    int rc = mdb_txn_begin(q->env, NULL, 0, &ws->txn);
    if (rc)
        return rc;
    rc = follow_settings(q, ws->txn);
    if (!rc)
        rc = meta_get_u64(q, ws->txn, K_NEXT_SEQ, &ws->next_seq);
    if (!rc)
        rc = meta_get_u64(q, ws->txn, K_BYTES, &ws->bytes);
    if (!rc && ws->next_seq == 0)
        ws->next_seq = 1;
    if (rc) {
        mdb_txn_abort(ws->txn);
        ws->txn = NULL;
    }
    return rc;
}

static void ws_abort(wstate_t *ws)
{
    if (ws->txn)
        mdb_txn_abort(ws->txn);
    ws->txn = NULL;
    ws_drop_evicted(ws);
}

/* The queue has timed work again after none (an fsync, a batched commit): tell the owner,
 * whose ticker sleeps without a timer while there is none. Called outside q->mu. */
static void wake_owner(evrec_queue_t *q)
{
    if (q->wake_fn)
        q->wake_fn(q->wake_user);
}

/* A commit happened: the queue is dirty (not in power mode). The owner is woken when that is
 * new, and when the synced snapshot lies PIN_MAX_TXNS behind, to sync early in its thread. */
static void note_commit(evrec_queue_t *q, uint64_t bytes, uint64_t txnid)
{
    port_mutex_lock(q->mu);
    q->known_bytes = bytes;
    q->last_txnid = txnid;
    int woke = !is_power(q) && !q->dirty;
    if (!is_power(q)) {
        q->dirty = 1;
        if (q->pin_txnid && txnid > q->pin_txnid + PIN_MAX_TXNS && !q->sync_asked) {
            q->sync_asked = 1;
            woke = 1;
        }
    }
    port_mutex_unlock(q->mu);
    if (woke)
        wake_owner(q);
}

/* Commit a write transaction outside wstate (profiles, meta values), noting it. */
static int commit_noted(evrec_queue_t *q, MDB_txn *txn)
{
    uint64_t id = (uint64_t)mdb_txn_id(txn);
    int rc = txn_commit(txn);
    if (!rc)
        note_commit(q, q->known_bytes, id);
    return rc;
}

void queue_set_wake_hook(evrec_queue_t *q, void (*fn)(void *user), void *user)
{
    if (q) {
        q->wake_fn = fn;
        q->wake_user = user;
    }
}

static int ws_commit(evrec_queue_t *q, wstate_t *ws)
{
    port_mutex_lock(q->mu);
    uint64_t pending = q->pending_refused;
    q->pending_refused = 0;
    port_mutex_unlock(q->mu);
    ws->add[QC_REFUSED] += pending;
    int rc = 0;
    if (ws->seq_dirty)
        rc = meta_put_u64(q, ws->txn, K_NEXT_SEQ, ws->next_seq);
    if (!rc && ws->bytes_dirty)
        rc = meta_put_u64(q, ws->txn, K_BYTES, ws->bytes);
    for (int i = 0; !rc && i < QC_COUNT; i++)
        rc = meta_add_u64(q, ws->txn, counter_keys[i], ws->add[i]);
    if (!rc) {
        ws->txnid = (uint64_t)mdb_txn_id(ws->txn);
        rc = txn_commit(ws->txn);
        ws->txn = NULL;
    } else {
        ws_abort(ws);
    }
    if (!rc) {
        note_commit(q, ws->bytes, ws->txnid);
        ws_publish_evicted(q, ws);
    } else if (pending) {
        port_mutex_lock(q->mu);
        q->pending_refused += pending;
        port_mutex_unlock(q->mu);
    }
    return rc;
}

/* Delete the record under the cursor, keeping `bytes` in step. */
static int ws_del_current(wstate_t *ws, MDB_cursor *cur, size_t size)
{
    int rc = mdb_cursor_del(cur, 0);
    if (rc)
        return rc;
    ws->bytes = ws->bytes >= size ? ws->bytes - size : 0;
    ws->bytes_dirty = 1;
    return 0;
}

/* Evict oldest records until at most `keep` bytes remain (or the queue is empty). */
static int ws_evict_to(evrec_queue_t *q, wstate_t *ws, uint64_t keep)
{
    if (ws->bytes <= keep)
        return 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(ws->txn, q->events, &cur);
    if (rc)
        return rc;
    while (ws->bytes > keep) {
        MDB_val k, d;
        rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
        if (rc == MDB_NOTFOUND) { /* empty: whatever `bytes` said, nothing is stored */
            ws->bytes = 0;
            ws->bytes_dirty = 1;
            rc = 0;
            break;
        }
        if (rc)
            break;
        ws_note_evicted(q, ws, &d);
        rc = ws_del_current(ws, cur, d.mv_size);
        if (rc)
            break;
        ws->add[QC_EVICTED]++;
    }
    mdb_cursor_close(cur);
    return rc;
}

/* The last key of `events` (0 if empty). */
static int last_seq(evrec_queue_t *q, MDB_txn *txn, uint64_t *out)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, q->events, &cur);
    if (rc)
        return rc;
    MDB_val k, d;
    rc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
    *out = 0;
    if (rc == MDB_NOTFOUND)
        rc = 0;
    else if (!rc && k.mv_size != 8)
        rc = MDB_CORRUPTED;
    else if (!rc)
        *out = get_be64(k.mv_data);
    mdb_cursor_close(cur);
    return rc;
}

static int ws_put_record(evrec_queue_t *q, wstate_t *ws, const staged_t *r, uint64_t *seq)
{
    uint8_t kb[8];
    for (int tries = 0;; tries++) {
        put_be64(kb, ws->next_seq);
        MDB_val k = { 8, kb }, d = { r->len, r->data };
        int rc = mdb_put(ws->txn, q->events, &k, &d, MDB_APPEND);
        if (rc == MDB_KEYEXIST && tries == 0) {
            /* next_seq fell behind the keys (a damaged meta value): move past them. */
            uint64_t last;
            rc = last_seq(q, ws->txn, &last);
            if (rc)
                return rc;
            ws->next_seq = last + 1;
            continue;
        }
        if (rc)
            return rc;
        break;
    }
    *seq = ws->next_seq++;
    ws->seq_dirty = 1;
    ws->bytes += r->len;
    ws->bytes_dirty = 1;
    ws->add[QC_RECORDED]++;
    if (r->truncated)
        ws->add[QC_TRUNCATED]++;
    return 0;
}

static int env_sync(evrec_queue_t *q);

/* Count refusals in a transaction of their own. When even that cannot commit (the map is
 * full while a reader pins its pages) the count is kept and lands with the next commit, so
 * the counter ends up exact unless the process dies first. */
static void count_refused(evrec_queue_t *q, uint64_t n)
{
    wstate_t ws;
    int rc = ws_begin(q, &ws);
    if (!rc) {
        ws.add[QC_REFUSED] = n;
        rc = ws_commit(q, &ws);
    }
    if (rc) {
        port_mutex_lock(q->mu);
        q->pending_refused += n;
        port_mutex_unlock(q->mu);
    }
}

/* MAP_FULL recovery: commit an eviction of a growing share of the queue, so that the freed
 * pages are reusable by the next transaction. Returns MDB_NOTFOUND if there was nothing left
 * to evict. */
static int evict_for_space(evrec_queue_t *q, int attempt, uint64_t want)
{
    wstate_t ws;
    int rc = ws_begin(q, &ws);
    if (rc)
        return rc;
    if (ws.bytes == 0) {
        uint64_t last;
        rc = last_seq(q, ws.txn, &last);
        ws_abort(&ws);
        return rc ? rc : MDB_NOTFOUND;
    }
    uint64_t share = ws.bytes >> (4 - (attempt > 3 ? 3 : attempt)); /* 1/16 .. 1/2 */
    if (share < want)
        share = want;
    /* Pages freed by transaction N are reusable from N+2 on (the previous snapshot still
     * refers to them), so evict in two commits: the first one's pages serve the append. */
    uint64_t keep = ws.bytes > share ? ws.bytes - share : 0;
    for (int half = 0; half < 2; half++) {
        if (half) {
            rc = ws_begin(q, &ws);
            if (rc)
                return rc;
        }
        uint64_t target = half ? keep : ws.bytes - (ws.bytes - keep) / 2;
        rc = ws_evict_to(q, &ws, target);
        if (!rc && ws.add[QC_EVICTED] == 0) {
            ws_abort(&ws);
            continue;
        }
        rc = rc ? (ws_abort(&ws), rc) : ws_commit(q, &ws);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * Store recs[0..n) in one transaction, enforcing the bound by the full policy. seqs (may be
 * NULL) gets each record's sequence (0 when refused); *refused how many were refused.
 * *consumed is set when every record was either stored or counted as refused (so the caller
 * must not keep it staged); on other failures (disk full, I/O) nothing changed.
 */
static int store_records(evrec_queue_t *q, const staged_t *recs, size_t n, uint64_t *seqs,
                         size_t *refused, int *consumed)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += recs[i].len;
    *refused = 0;
    *consumed = 0;
    int pin_moved = 0;
    for (int attempt = 0;; attempt++) {
        wstate_t ws;
        int rc = ws_begin(q, &ws);
        if (rc)
            return mdb_fail(q, rc, "appending to the store");
        uint64_t max = bound_of(q); /* the store's, as of this transaction */
        size_t nref = 0;
        for (size_t i = 0; !rc && i < n; i++) {
            uint64_t seq = 0;
            if (ws.bytes + recs[i].len > max) {
                if (q->cfg.full_policy == EVREC_FULL_REFUSE_NEW) {
                    nref++;
                    if (seqs)
                        seqs[i] = 0;
                    continue;
                }
                rc = ws_evict_to(q, &ws, max - recs[i].len);
                if (rc)
                    break;
            }
            rc = ws_put_record(q, &ws, &recs[i], &seq);
            if (seqs)
                seqs[i] = seq;
        }
        if (!rc) {
            ws.add[QC_REFUSED] += nref;
            rc = ws_commit(q, &ws);
        } else {
            ws_abort(&ws);
        }
        if (!rc) {
            *refused = nref;
            *consumed = 1;
            return EVREC_OK;
        }
        if (rc != MDB_MAP_FULL)
            return mdb_fail(q, rc, "appending to the store");
        if (!is_power(q) && !pin_moved) {
            /* The pinned synced snapshot keeps old pages: sync now, which pins the newest. */
            pin_moved = 1;
            if (env_sync(q) == EVREC_OK)
                continue;
        }
        int dead = 0;
        mdb_reader_check(q->env, &dead); /* a killed process's reader pins pages: clear it */
        if (dead > 0 && attempt == 0)
            continue;
        /* The map is full before the byte bound is: LMDB's own pages (free list, a reader
         * pinning old pages) took the room. Make room by policy, never by crashing. */
        if (q->cfg.full_policy == EVREC_FULL_REFUSE_NEW || attempt >= 4) {
            count_refused(q, n);
            *refused = n;
            *consumed = 1;
            return qfail(q, EVREC_E_FULL,
                         "store %s is full: its map of %llu bytes has no room left for %zu "
                         "record(s) (%s)",
                         q->dir, (unsigned long long)q->map_size, n,
                         q->cfg.full_policy == EVREC_FULL_REFUSE_NEW ? "full_policy refuse-new"
                                                                     : "eviction did not help");
        }
        rc = evict_for_space(q, attempt, total);
        if (rc == MDB_MAP_FULL) {
            /* Not even an eviction fits: a reader pins the free pages. The room comes back
             * once the reader ends: staged records wait for it, a direct append is refused. */
            if (!is_batched(q)) {
                count_refused(q, n);
                *refused = n;
                *consumed = 1;
            }
            return qfail(q, EVREC_E_FULL,
                         "store %s is full: its map of %llu bytes has no room left for %zu "
                         "record(s) while a reader holds old pages",
                         q->dir, (unsigned long long)q->map_size, n);
        }
        if (rc == MDB_NOTFOUND)
            return qfail(q, EVREC_E_FULL,
                         "store %s: the map of %llu bytes is too small to hold %llu bytes of "
                         "records even when empty; raise map_size_bytes",
                         q->dir, (unsigned long long)q->map_size, (unsigned long long)total);
        if (rc)
            return mdb_fail(q, rc, "making room in a full store map");
    }
}

/* -- sync -------------------------------------------------------------------------------- */

/* Process and batched modes commit without fsync, so between two syncs the OS may write the
 * new pages and meta pages back in any order: a power cut can leave meta pages naming pages
 * that never reached the disk. What bounds the loss to the unsynced window: the snapshot a
 * sync made durable is pinned by a read transaction until the next sync (LMDB never reuses a
 * page a reader can see, so no later commit overwrites it), and its meta record is kept in
 * `synced.meta` (written atomically, fsynced) before the previous pin is let go. If a power
 * cut damaged the newest state, open writes that meta record back (restore_synced). */
/* synced.meta holds two slots of SIDE_SLOT bytes, written in turn in place (no new disk
 * blocks, so it works on a full disk too) and fdatasync'ed: "evrsync1", u64 sequence, u64
 * FNV-1a hash of the rest, the meta copy at SIDE_COPY_AT, the boot id at SIDE_BOOT_AT. A slot
 * torn by a power cut fails its hash; the other one still holds the previous sync. */
#define SIDE_SLOT 512u
#define SIDE_COPY_AT 24u
#define SIDE_BOOT_AT (SIDE_COPY_AT + 256u)
#define SIDE_MAGIC "evrsync1"

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

typedef struct side {
    uint64_t seq, txnid;
    uint8_t copy[256];
    char boot[SIDE_BOOT_LEN + 1];
} side_t;

/* The newest valid slot of synced.meta. */
static int read_side(evrec_queue_t *q, side_t *out)
{
    char *buf = NULL;
    size_t len = 0;
    int prc = port_read_file(q->synced_path, &buf, &len, 4 * SIDE_SLOT);
    int found = 0;
    for (size_t i = 0; !prc && len == 2 * SIDE_SLOT && i < 2; i++) {
        const uint8_t *slot = (const uint8_t *)buf + i * SIDE_SLOT;
        if (memcmp(slot, SIDE_MAGIC, 8) != 0 ||
            get_le64(slot + 16) != fnv1a(slot + 24, SIDE_SLOT - 24))
            continue;
        uint64_t seq = get_le64(slot + 8);
        if (found && seq <= out->seq)
            continue;
        found = 1;
        out->seq = seq;
        memcpy(out->copy, slot + SIDE_COPY_AT, sizeof out->copy);
        out->txnid = store_meta_copy_txnid(out->copy);
        snprintf(out->boot, sizeof out->boot, "%.*s", (int)SIDE_BOOT_LEN,
                 (const char *)slot + SIDE_BOOT_AT);
    }
    port_free(buf);
    return found ? EVREC_OK : EVREC_E_NOT_FOUND;
}

static int write_side(evrec_queue_t *q, const uint8_t *meta_copy)
{
    side_t cur;
    uint64_t seq = read_side(q, &cur) == EVREC_OK ? cur.seq + 1 : 1;
    uint8_t slot[SIDE_SLOT];
    memset(slot, 0, sizeof slot);
    memcpy(slot, SIDE_MAGIC, 8);
    put_le64(slot + 8, seq);
    memcpy(slot + SIDE_COPY_AT, meta_copy, store_meta_copy_size());
    port_boot_id((char *)slot + SIDE_BOOT_AT, SIDE_BOOT_LEN);
    put_le64(slot + 16, fnv1a(slot + 24, SIDE_SLOT - 24));
    if (port_file_size(q->synced_path) == 2 * SIDE_SLOT)
        return port_file_write_at_sync(q->synced_path, (seq & 1) * SIDE_SLOT, slot, SIDE_SLOT)
                   ? EVREC_E_IO
                   : EVREC_OK;
    uint8_t both[2 * SIDE_SLOT];
    memset(both, 0, sizeof both);
    memcpy(both + (seq & 1) * SIDE_SLOT, slot, SIDE_SLOT);
    return port_write_file_private(q->synced_path, both, sizeof both) ? EVREC_E_IO : EVREC_OK;
}

static void keep_synced(evrec_queue_t *q, MDB_txn *snap, const uint8_t *meta_copy)
{
    if (write_side(q, meta_copy) != EVREC_OK) { /* the previous pin and copy stay: a pair */
        mdb_txn_abort(snap);
        return;
    }
    port_mutex_lock(q->mu);
    MDB_txn *old = q->pin;
    q->pin = snap;
    q->pin_txnid = (uint64_t)mdb_txn_id(snap);
    port_mutex_unlock(q->mu);
    if (old)
        mdb_txn_abort(old);
}

static void drop_pin(evrec_queue_t *q)
{
    port_mutex_lock(q->mu);
    MDB_txn *old = q->pin;
    q->pin = NULL;
    port_mutex_unlock(q->mu);
    if (old)
        mdb_txn_abort(old);
}

static int env_sync_locked(evrec_queue_t *q);

static int env_sync(evrec_queue_t *q)
{
    port_mutex_lock(q->sync_mu);
    int rc = env_sync_locked(q);
    port_mutex_unlock(q->sync_mu);
    return rc;
}

static int env_sync_locked(evrec_queue_t *q)
{
    port_mutex_lock(q->mu);
    int was_dirty = q->dirty;
    q->dirty = 0; /* cleared first: a commit racing with this fsync marks it again */
    q->sync_asked = 0;
    q->last_sync_ms = port_clock_monotonic_ms(q->cfg.clock);
    port_mutex_unlock(q->mu);
    /* The snapshot to keep is taken before the fsync, so the fsync covers it, and its meta
     * record copied while a write transaction keeps other writers (threads and processes)
     * from replacing that meta page meanwhile. */
    MDB_txn *snap = NULL;
    uint8_t copy[256];
    if (!is_power(q)) {
        MDB_txn *hold = NULL;
        if (mdb_txn_begin(q->env, NULL, 0, &hold) == 0) {
            if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &snap) != 0)
                snap = NULL;
            if (snap && store_meta_copy(q->data_path, (uint64_t)mdb_txn_id(snap), copy,
                                        sizeof copy) != EVREC_OK) {
                mdb_txn_abort(snap);
                snap = NULL;
            }
            mdb_txn_abort(hold);
        }
    }
    int rc = port_fault_take("queue.sync");
    rc = rc ? -rc : mdb_env_sync(q->env, 1);
    if (rc) {
        if (snap)
            mdb_txn_abort(snap);
        port_mutex_lock(q->mu);
        q->dirty |= was_dirty;
        port_mutex_unlock(q->mu);
        return mdb_fail(q, rc, "syncing the store to disk");
    }
    if (snap)
        keep_synced(q, snap, copy);
    return EVREC_OK;
}

static void maybe_sync(evrec_queue_t *q)
{
    if (is_power(q))
        return;
    uint64_t now = port_clock_monotonic_ms(q->cfg.clock);
    port_mutex_lock(q->mu);
    int due = q->dirty && now - q->last_sync_ms >= q->cfg.sync_interval_ms;
    uint64_t pinned_txn = q->pin_txnid;
    port_mutex_unlock(q->mu);
    if (!due && pinned_txn) {
        MDB_envinfo info;
        due = mdb_env_info(q->env, &info) == 0 &&
              (uint64_t)info.me_last_txnid > pinned_txn + PIN_MAX_TXNS;
    }
    if (due)
        env_sync(q); /* a failure is remembered as dirty and retried at the next interval */
}

/* After a direct write (an append, a profile, a meta value). Without an owner syncing in the background the writer syncs when
 * due (maybe_sync); with one, the owner was woken (note_commit) and the writer syncs only when
 * the owner fell PIN_HARD_TXNS behind, so recording never waits on an fsync otherwise. */
static void sync_after_write(evrec_queue_t *q)
{
    if (!q->wake_fn) {
        maybe_sync(q);
        return;
    }
    port_mutex_lock(q->mu);
    int far = q->dirty && q->pin_txnid && q->last_txnid > q->pin_txnid + PIN_HARD_TXNS;
    port_mutex_unlock(q->mu);
    if (far)
        env_sync(q);
}

/* -- batched staging --------------------------------------------------------------------- */

static void free_staged(staged_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        port_free(s[i].data);
    port_free(s);
}

/* Put records whose commit failed back in front of what was staged since. */
static void restage(evrec_queue_t *q, staged_t *arr, size_t n)
{
    port_mutex_lock(q->mu);
    size_t total = n + q->nstaged;
    staged_t *merged = port_malloc(total * sizeof *merged);
    if (!merged) {
        port_mutex_unlock(q->mu);
        free_staged(arr, n); /* cannot even keep them: they are lost like a crash would */
        return;
    }
    memcpy(merged, arr, n * sizeof *arr);
    if (q->nstaged)
        memcpy(merged + n, q->staged, q->nstaged * sizeof *merged);
    for (size_t i = 0; i < n; i++)
        q->staged_bytes += arr[i].len;
    port_free(q->staged);
    port_free(arr);
    q->staged = merged;
    q->nstaged = q->capstaged = total;
    q->staged_since_ms = port_clock_monotonic_ms(q->cfg.clock);
    port_mutex_unlock(q->mu);
}

static int flush_staged(evrec_queue_t *q)
{
    port_mutex_lock(q->commit_mu);
    port_mutex_lock(q->mu);
    staged_t *arr = q->staged;
    size_t n = q->nstaged;
    q->staged = NULL;
    q->nstaged = q->capstaged = 0;
    q->staged_bytes = 0;
    q->inflight = n;
    port_mutex_unlock(q->mu);
    int rc = EVREC_OK;
    if (n > 0) {
        size_t refused;
        int consumed;
        rc = store_records(q, arr, n, NULL, &refused, &consumed);
        if (consumed)
            free_staged(arr, n);
        else
            restage(q, arr, n);
        port_mutex_lock(q->mu);
        q->last_commit_rc = rc;
        q->inflight = 0;
        port_mutex_unlock(q->mu);
    }
    port_mutex_unlock(q->commit_mu);
    return rc;
}

/* The staged window is full and its last commit failed: try once more; if it still fails,
 * the new record is refused (counted) rather than staged beyond the window, so that what a
 * failing disk can take is at most commit_max_events acknowledged records, never more. */
static int window_blocked(evrec_queue_t *q)
{
    /* Records another thread is committing (the interval commit) count against the window:
     * staging a full window beside a commit that then fails would put both back in staging,
     * more than one window acknowledged and at risk. Wait for that commit instead. */
    port_mutex_lock(q->mu);
    int full = q->nstaged + q->inflight >= q->cfg.commit_max_events;
    int blocked = full && (q->last_commit_rc != 0 || q->inflight > 0);
    port_mutex_unlock(q->mu);
    if (!blocked)
        return EVREC_OK;
    int rc = flush_staged(q);
    if (rc == EVREC_OK)
        return EVREC_OK;
    port_mutex_lock(q->mu);
    size_t n = q->nstaged + q->inflight;
    blocked = n >= q->cfg.commit_max_events;
    port_mutex_unlock(q->mu);
    if (!blocked)
        return EVREC_OK;
    char why[ERR_LEN];
    snprintf(why, sizeof why, "%s", queue_last_error(q));
    count_refused(q, 1);
    return qfail(q, rc,
                 "record refused: %zu staged records cannot be committed to %s (%s); new "
                 "records are refused until they are",
                 n, q->dir, why);
}

static int stage_record(evrec_queue_t *q, const void *record, size_t len, int truncated)
{
    int brc = window_blocked(q);
    if (brc)
        return brc;
    port_mutex_lock(q->mu);
    uint64_t max = q->bound;
    if (q->cfg.full_policy == EVREC_FULL_REFUSE_NEW &&
        q->known_bytes + q->staged_bytes + len > max) {
        uint64_t used = q->known_bytes + q->staged_bytes;
        port_mutex_unlock(q->mu);
        count_refused(q, 1);
        return qfail(q, EVREC_E_FULL,
                     "store %s is full: %llu of max_store_bytes %llu used; record of %zu bytes "
                     "refused (full_policy refuse-new)",
                     q->dir, (unsigned long long)used, (unsigned long long)max, len);
    }
    if (q->nstaged == q->capstaged) {
        size_t cap = q->capstaged ? q->capstaged * 2 : 16;
        staged_t *ns = port_realloc(q->staged, cap * sizeof *ns);
        if (!ns) {
            port_mutex_unlock(q->mu);
            return qfail(q, EVREC_E_NOMEM, "no memory to stage a record");
        }
        q->staged = ns;
        q->capstaged = cap;
    }
    uint8_t *copy = port_malloc(len);
    if (!copy) {
        port_mutex_unlock(q->mu);
        return qfail(q, EVREC_E_NOMEM, "no memory to stage a record");
    }
    memcpy(copy, record, len);
    uint64_t now = port_clock_monotonic_ms(q->cfg.clock);
    int first = q->nstaged == 0;
    if (first)
        q->staged_since_ms = now;
    q->staged[q->nstaged++] = (staged_t){ copy, len, truncated };
    q->staged_bytes += len;
    int due = q->nstaged >= q->cfg.commit_max_events ||
              now - q->staged_since_ms >= q->cfg.commit_interval_ms;
    port_mutex_unlock(q->mu);
    if (first)
        wake_owner(q); /* a commit is due within commit_interval_ms */
    if (due)
        flush_staged(q); /* a failure keeps the records staged for the next try */
    return EVREC_OK;
}

/* -- open -------------------------------------------------------------------------------- */

static int open_fail_mdb(const evrec_queue_t *q, char *err, size_t errlen, int rc,
                         const char *what)
{
    if (err && errlen)
        describe_mdb(err, errlen, rc, what, q->dir, q->map_size);
    return mdb_code(rc);
}

typedef struct foreign_scan {
    char name[128];
} foreign_scan_t;

static int find_foreign(void *user, const char *name)
{
    if (name[0] == '.' || strcmp(name, "data.mdb") == 0 || strcmp(name, "lock.mdb") == 0 ||
        strcmp(name, "flusher.lock") == 0 || strcmp(name, "synced.meta") == 0)
        return 0;
    foreign_scan_t *fs = user;
    snprintf(fs->name, sizeof fs->name, "%s", name);
    return 1;
}

static uint64_t derive_map_size(const queue_config_t *cfg)
{
    uint64_t m = cfg->map_size_bytes;
    if (m == 0) {
        uint64_t b = cfg->max_store_bytes;
        m = b > (UINT64_MAX - MAP_SLACK_BYTES) / MAP_FACTOR ? UINT64_MAX
                                                             : b * MAP_FACTOR + MAP_SLACK_BYTES;
        if (sizeof(size_t) < 8 && m > MAP_MAX_32BIT)
            m = MAP_MAX_32BIT;
    }
    if (sizeof(size_t) < 8 && m > MAP_MAX_32BIT)
        m = MAP_MAX_32BIT;
    if (m < MAP_MIN_BYTES && cfg->map_size_bytes == 0)
        m = MAP_MIN_BYTES;
    m = (m + 65535) & ~(uint64_t)65535;
    if (m > (uint64_t)SIZE_MAX)
        m = (uint64_t)SIZE_MAX & ~(uint64_t)65535;
    return m;
}

static int check_marker(evrec_queue_t *q, MDB_txn *txn, char *err, size_t errlen)
{
    MDB_val k = str_val(K_FORMAT), d;
    int rc = mdb_get(txn, q->meta, &k, &d);
    if (rc == MDB_NOTFOUND)
        return util_failf(err, errlen, EVREC_E_FOREIGN,
                         "%s holds an LMDB environment without evrec's format marker: not an "
                         "evrec store",
                         q->dir);
    if (rc)
        return open_fail_mdb(q, err, errlen, rc, "reading the store's format marker");
    if (d.mv_size != FORMAT_MAGIC_LEN + 4 || memcmp(d.mv_data, FORMAT_MAGIC, FORMAT_MAGIC_LEN))
        return util_failf(err, errlen, EVREC_E_FOREIGN,
                         "%s holds an LMDB environment whose format marker is not evrec's",
                         q->dir);
    const uint8_t *p = (const uint8_t *)d.mv_data + FORMAT_MAGIC_LEN;
    uint32_t ver = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                   (uint32_t)p[3] << 24;
    if (ver == 0)
        return util_failf(err, errlen, EVREC_E_CORRUPT,
                         "store %s is corrupt: format version 0", q->dir);
    if (ver > QUEUE_FORMAT_VERSION)
        return util_failf(err, errlen, EVREC_E_FORMAT_VERSION,
                         "store %s has format version %u; this evrec reads up to version %u",
                         q->dir, ver, QUEUE_FORMAT_VERSION);
    return EVREC_OK;
}

static int create_store(evrec_queue_t *q, MDB_txn *txn)
{
    int rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &q->meta);
    if (!rc)
        rc = mdb_dbi_open(txn, "events", MDB_CREATE, &q->events);
    if (!rc)
        rc = mdb_dbi_open(txn, "endpoints", MDB_CREATE, &q->endpoints);
    if (rc)
        return rc;
    uint8_t mark[FORMAT_MAGIC_LEN + 4];
    memcpy(mark, FORMAT_MAGIC, FORMAT_MAGIC_LEN);
    for (int i = 0; i < 4; i++)
        mark[FORMAT_MAGIC_LEN + i] = (uint8_t)(QUEUE_FORMAT_VERSION >> (8 * i));
    MDB_val k = str_val(K_FORMAT), d = { sizeof mark, mark };
    rc = mdb_put(txn, q->meta, &k, &d, 0);
    if (!rc)
        rc = meta_put_u64(q, txn, K_NEXT_SEQ, 1);
    if (!rc)
        rc = meta_put_u64(q, txn, K_BYTES, 0);
    return rc;
}

/* Open the named databases (creating them in an empty environment), check the marker and
 * the running state, all in one write transaction so that concurrent first opens agree. */
static int open_dbs(evrec_queue_t *q, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
    if (rc)
        return open_fail_mdb(q, err, errlen, rc, "opening the store");
    rc = mdb_dbi_open(txn, "meta", 0, &q->meta);
    if (rc == MDB_NOTFOUND) {
        MDB_dbi main_dbi;
        MDB_stat st;
        rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
        if (!rc)
            rc = mdb_stat(txn, main_dbi, &st);
        if (!rc && st.ms_entries != 0) {
            mdb_txn_abort(txn);
            return util_failf(err, errlen, EVREC_E_FOREIGN,
                             "%s holds an LMDB environment that is not an evrec store (no "
                             "format marker)",
                             q->dir);
        }
        if (!rc)
            rc = create_store(q, txn);
        if (rc) {
            mdb_txn_abort(txn);
            return open_fail_mdb(q, err, errlen, rc, "creating the store");
        }
    } else if (rc == MDB_INCOMPATIBLE) {
        mdb_txn_abort(txn);
        return util_failf(err, errlen, EVREC_E_FOREIGN,
                         "%s holds an LMDB environment that is not an evrec store", q->dir);
    } else if (rc) {
        mdb_txn_abort(txn);
        return open_fail_mdb(q, err, errlen, rc, "opening the store");
    } else {
        int code = check_marker(q, txn, err, errlen);
        if (code) {
            mdb_txn_abort(txn);
            return code;
        }
        rc = mdb_dbi_open(txn, "events", 0, &q->events);
        if (!rc)
            rc = mdb_dbi_open(txn, "endpoints", MDB_CREATE, &q->endpoints);
        if (rc) {
            mdb_txn_abort(txn);
            if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
                return util_failf(err, errlen, EVREC_E_CORRUPT,
                                 "store %s is corrupt: its events database is missing", q->dir);
            return open_fail_mdb(q, err, errlen, rc, "opening the store's databases");
        }
    }
    /* Probe the running state and both ends of the queue: damage there shows up now, as an
     * open error, rather than in the middle of recording. */
    uint64_t next = 0, bytes = 0, last = 0;
    rc = meta_get_u64(q, txn, K_NEXT_SEQ, &next);
    if (!rc)
        rc = meta_get_u64(q, txn, K_BYTES, &bytes);
    if (!rc)
        rc = last_seq(q, txn, &last);
    /* Every record's size, against the byte total committed with them: a power cut that tore
     * or lost pages of the newest, unsynced transactions can leave a tree that is sound in
     * structure but not the one its meta page described. */
    uint64_t sum = 0;
    if (!rc) {
        MDB_cursor *cur;
        rc = mdb_cursor_open(txn, q->events, &cur);
        if (!rc) {
            MDB_val k, d;
            int r2;
            uint64_t prev = 0;
            for (r2 = mdb_cursor_get(cur, &k, &d, MDB_FIRST); r2 == 0;
                 r2 = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
                uint64_t seq = k.mv_size == 8 ? get_be64(k.mv_data) : 0;
                if (seq <= prev) { /* keys out of order: a page holds older content */
                    r2 = MDB_CORRUPTED;
                    break;
                }
                prev = seq;
                sum += d.mv_size;
            }
            if (r2 != MDB_NOTFOUND)
                rc = r2;
            mdb_cursor_close(cur);
        }
    }
    if (!rc && sum != bytes) {
        if (!q->restored && port_path_exists(q->synced_path)) {
            mdb_txn_abort(txn);
            return util_failf(err, errlen, EVREC_E_CORRUPT,
                             "store %s is corrupt: its records hold %llu bytes, its running "
                             "total says %llu",
                             q->dir, (unsigned long long)sum, (unsigned long long)bytes);
        }
        bytes = sum;
        rc = meta_put_u64(q, txn, K_BYTES, sum);
    }
    if (!rc && next <= last)
        rc = meta_put_u64(q, txn, K_NEXT_SEQ, last + 1);
    if (rc) {
        mdb_txn_abort(txn);
        return open_fail_mdb(q, err, errlen, rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc,
                             "checking the store");
    }
    q->known_bytes = bytes;
    int code = settle_settings(q, txn, err, errlen);
    if (code) {
        mdb_txn_abort(txn);
        return code;
    }
    rc = txn_commit(txn);
    q->opening = 0;
    q->env_mode_set = 0;
    follow_mode(q, atomic_load(&q->mode));
    if (rc)
        return open_fail_mdb(q, err, errlen, rc, "opening the store");
    return EVREC_OK;
}

/* Check the data file's structure (store_verify.h) as of a snapshot pinned by a read
 * transaction, so that writers in other processes cannot reuse its pages meanwhile. Those
 * writers may still commit during the check: two commits overwrite the snapshot's meta page,
 * and a meta page can be read half-written. A failed check counts only if no transaction was
 * committed while it ran; otherwise it is repeated on a new snapshot (a few times, with a
 * short pause, so that a store that keeps changing is not mistaken for a damaged one). */
#define VERIFY_ATTEMPTS 8
#define VERIFY_NEW_SNAPSHOTS 1000
static int verify_pages(evrec_queue_t *q, const char *data_path, char *err, size_t errlen)
{
    char why[256] = "";
    int vrc = EVREC_OK;
    for (int attempt = 0, fresh = 0; attempt < VERIFY_ATTEMPTS;) {
        MDB_txn *txn = NULL;
        int rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn);
        if (rc)
            return open_fail_mdb(q, err, errlen, rc, "reading the store");
        uint64_t snapshot = (uint64_t)mdb_txn_id(txn);
        why[0] = '\0';
        vrc = store_verify(data_path, snapshot, why, sizeof why);
        mdb_txn_abort(txn);
        if (vrc == EVREC_E_BUSY && ++fresh < VERIFY_NEW_SNAPSHOTS)
            continue; /* the snapshot's meta page was replaced before it was read */
        MDB_envinfo info;
        if (vrc != EVREC_E_CORRUPT || mdb_env_info(q->env, &info) != 0 ||
            (uint64_t)info.me_last_txnid == snapshot)
            break;
        port_sleep_ms(2u << attempt); /* 2 ms .. 256 ms */
        attempt++;
    }
    if (vrc == EVREC_E_CORRUPT)
        return util_failf(err, errlen, EVREC_E_CORRUPT, "store %s is corrupt: %s", q->dir, why);
    if (vrc)
        return util_failf(err, errlen, vrc, "checking store %s: %s", q->dir, why);
    return EVREC_OK;
}

/* `<dir>/<name>`, port_malloc'ed. */
static char *store_file(const evrec_queue_t *q, const char *name)
{
    size_t n = strlen(q->dir) + strlen(name) + 2;
    char *p = port_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", q->dir, name);
    return p;
}

/* The directory exists (created if missing) and holds a store or nothing else. */
static int check_dir(evrec_queue_t *q, char *err, size_t errlen)
{
    int prc = port_mkdir_private(q->dir);
    if (prc == -ENOTDIR || prc == -EEXIST)
        return util_failf(err, errlen, EVREC_E_FOREIGN,
                         "%s exists and is not a directory: not an evrec store", q->dir);
    if (prc)
        return util_failf(err, errlen, EVREC_E_IO, "cannot create store directory %s: %s",
                         q->dir, mdb_strerror(-prc));
    /* Another user who owns the directory, or may write to it, could plant links to files of
     * ours (LMDB would write and we would chmod through them) or swap the store under us. */
    long owner = -1;
    unsigned mode = 0;
    prc = port_dir_check_private(q->dir, &owner, &mode);
    q->shared = prc == 1;
    if (prc == 1)
        prc = 0;
    if (prc == -EPERM)
        return util_failf(err, errlen, EVREC_E_UNSAFE,
                         "store directory %s belongs to another user (uid %ld): refused", q->dir,
                         owner);
    if (prc == -EACCES)
        return util_failf(err, errlen, EVREC_E_UNSAFE,
                         "store directory %s is writable by others, or by its group "
                         "without setgid (mode %04o): refused; chmod o-w it (a store shared "
                         "by a group: chmod 2770)",
                         q->dir, mode);
    if (prc)
        return util_failf(err, errlen, EVREC_E_IO, "cannot examine store directory %s: %s",
                         q->dir, mdb_strerror(-prc));
    char *data_path = store_file(q, "data.mdb");
    if (!data_path)
        return util_failf(err, errlen, EVREC_E_NOMEM, "out of memory");
    int code = EVREC_OK;
    if (port_is_dir(data_path)) {
        code = util_failf(err, errlen, EVREC_E_FOREIGN,
                         "%s/data.mdb is a directory: not an evrec store", q->dir);
    } else if (!port_path_exists(data_path)) {
        foreign_scan_t fs = { { 0 } };
        int lrc = port_dir_list(q->dir, find_foreign, &fs);
        if (lrc == 1)
            code = util_failf(err, errlen, EVREC_E_FOREIGN,
                             "%s holds files that are not an evrec store (e.g. '%s')", q->dir,
                             fs.name);
        else if (lrc < 0)
            code = util_failf(err, errlen, EVREC_E_IO, "cannot list store directory %s: %s",
                             q->dir, mdb_strerror(-lrc));
    }
    port_free(data_path);
    return code;
}

static int open_env(evrec_queue_t *q, char *err, size_t errlen);

/* The data file failed its check: if a power cut damaged only what came after the last sync,
 * write that sync's meta record back (synced.meta) and open again. Only when no other process
 * has the store open (they hold LMDB's lock file), and undone if the result does not verify
 * either. On success err holds a warning saying what happened. */
static int restore_synced(evrec_queue_t *q, char *err, size_t errlen)
{
    char why[512];
    snprintf(why, sizeof why, "%s", err && errlen ? err : "corrupt");
    q->restored = 1;
    size_t len = store_meta_copy_size();
    side_t side;
    if (read_side(q, &side) != EVREC_OK)
        return util_failf(err, errlen, EVREC_E_CORRUPT, "%s", why);
    uint8_t *copy = side.copy;
    int prc;
    char *lock_path = store_file(q, "lock.mdb");
    port_filelock_t *alone = NULL;
    prc = lock_path ? port_filelock_first_byte_try(lock_path, &alone) : -ENOMEM;
    port_free(lock_path);
    if (prc)
        return util_failf(err, errlen, EVREC_E_CORRUPT, "%s (another process has it open)", why);
    uint8_t before[512];
    int code = 2 * len <= sizeof before
                   ? store_meta_restore(q->data_path, copy, len, before, sizeof before)
                   : EVREC_E_INVALID;
    uint64_t txnid = side.txnid;
    port_filelock_release(alone);
    if (code)
        return util_failf(err, errlen, EVREC_E_CORRUPT, "%s", why);
    code = open_env(q, err, errlen);
    if (code == EVREC_OK)
        return util_failf(err, errlen, EVREC_OK,
                         "%s; opened as of its last sync (transaction %llu): what was committed "
                         "after it, unsynced, is lost",
                         why, (unsigned long long)txnid);
    if (q->env) {
        mdb_env_close(q->env);
        q->env = NULL;
    }
    (void)store_meta_put_back(q->data_path, before, 2 * len);
    return util_failf(err, errlen, EVREC_E_CORRUPT, "%s", why);
}

/* Whether the newest transaction was committed after the last sync recorded in synced.meta,
 * on a machine that has restarted since. */
static int unsynced_before_reboot(evrec_queue_t *q, uint64_t last_txnid)
{
    side_t side;
    char now[SIDE_BOOT_LEN + 1];
    if (read_side(q, &side) != EVREC_OK)
        return 0;
    port_boot_id(now, sizeof now);
    return side.txnid < last_txnid && side.boot[0] && now[0] && strcmp(side.boot, now) != 0;
}

/* A failed open: damage (or a main database without our marker, in a directory where evrec
 * kept a synced snapshot) is worth one attempt to restore the last synced snapshot. */
static int damaged(evrec_queue_t *q, int code, char *err, size_t errlen)
{
    if (code == EVREC_OK || q->restored)
        return code;
    if (code != EVREC_E_CORRUPT &&
        !(code == EVREC_E_FOREIGN && port_path_exists(q->synced_path)))
        return code;
    mdb_env_close(q->env);
    q->env = NULL;
    return restore_synced(q, err, errlen);
}

static int open_env(evrec_queue_t *q, char *err, size_t errlen)
{
    char *data_path = store_file(q, "data.mdb");
    if (!data_path)
        return util_failf(err, errlen, EVREC_E_NOMEM, "out of memory");
    /* Opened synced: the commit of open_dbs (creating a store, settling its settings) reaches
     * the disk before anything is acknowledged; then the store's mode applies. */
    unsigned flags = MDB_NOTLS;
    q->opening = 1;
    /* LMDB opens its files following links: create or check them first without (O_NOFOLLOW);
     * the directory is ours alone (check_dir), so nobody can plant a link meanwhile. */
    static const char *const names[] = { "data.mdb", "lock.mdb", "flusher.lock" };
    /* In a group store the flusher's lock file is made 0660 here too, whoever opens first. */
    size_t nfiles = q->shared ? 3 : 2;
    for (size_t i = 0; i < nfiles; i++) {
        char *path = store_file(q, names[i]);
        int prc = path ? port_prepare_store_file(path, q->shared) : -ENOMEM;
        port_free(path);
        if (prc) {
            port_free(data_path);
            if (prc == -ENOMEM)
                return util_failf(err, errlen, EVREC_E_NOMEM, "out of memory");
            if (prc == -ELOOP || prc == -EINVAL || prc == -EPERM ||
                (prc == -EACCES && q->shared))
                return util_failf(err, errlen, EVREC_E_UNSAFE,
                                 "%s/%s is %s: refused", q->dir, names[i],
                                 prc == -ELOOP    ? "a symbolic link"
                                 : prc == -EPERM  ? "owned by another user"
                                 : prc == -EACCES ? "another member's, not mode 0660 of a "
                                                    "group of ours"
                                                  : "not a regular file");
            return util_failf(err, errlen, EVREC_E_IO, "cannot open %s/%s: %s", q->dir,
                             names[i], mdb_strerror(-prc));
        }
    }
    int rc;
    for (;;) {
        rc = mdb_env_create(&q->env);
        if (!rc)
            rc = mdb_env_set_maxdbs(q->env, 4);
        if (!rc)
            rc = mdb_env_set_mapsize(q->env, (size_t)q->map_size);
        if (!rc)
            rc = mdb_env_open(q->env, q->dir, flags, 0600);
        /* The address space may not take a map that large (a 32-bit process, ulimit -v, a
         * memory checker): halve it and retry rather than fail; the bound follows the map. */
        if ((rc == ENOMEM || rc == EINVAL) && q->map_size > 2 * MAP_MIN_BYTES &&
            q->cfg.map_size_bytes == 0) {
            mdb_env_close(q->env);
            q->env = NULL;
            q->map_size = (q->map_size / 2 + 65535) & ~(uint64_t)65535;
            continue;
        }
        break;
    }
    if (rc) {
        port_free(data_path);
        return open_fail_mdb(q, err, errlen, rc, "opening the store's data or lock file");
    }
    int dead = 0;
    mdb_reader_check(q->env, &dead);

    /* A data file shorter than its own last page would make LMDB touch unmapped file space
     * (SIGBUS): check before the first read. */
    MDB_envinfo info;
    MDB_stat st;
    rc = mdb_env_info(q->env, &info);
    if (!rc)
        rc = mdb_env_stat(q->env, &st);
    int64_t fsize = port_file_size(data_path);
    if (rc) {
        port_free(data_path);
        return open_fail_mdb(q, err, errlen, rc, "reading the store's header");
    }
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if (fsize >= 0 && (uint64_t)fsize < need) {
        port_free(data_path);
        rc = util_failf(err, errlen, EVREC_E_CORRUPT,
                       "store %s is corrupt: data.mdb is truncated (%lld bytes, its pages "
                       "need %llu)",
                       q->dir, (long long)fsize, (unsigned long long)need);
        return damaged(q, rc, err, errlen);
    }
    /* Commits made after the last sync, by a machine that has restarted since: a power cut
     * (or a reset) may have written any part of them, sound-looking or not. The store opens
     * as of that sync: what process and batched modes promise to keep through a power cut. */
    if (!q->restored && unsynced_before_reboot(q, (uint64_t)info.me_last_txnid)) {
        port_free(data_path);
        mdb_env_close(q->env);
        q->env = NULL;
        util_failf(err, errlen, EVREC_E_CORRUPT,
                  "store %s held commits not synced before the machine restarted", q->dir);
        if (restore_synced(q, err, errlen) == EVREC_OK)
            return EVREC_OK;
        if (err && errlen) /* no way back to the synced state: the newest, checked as usual */
            err[0] = '\0';
        return open_env(q, err, errlen);
    }
    /* LMDB trusts its pages blindly: check their structure before anything walks them. */
    rc = verify_pages(q, data_path, err, errlen);
    port_free(data_path);
    if (rc)
        return damaged(q, rc, err, errlen);
    if (info.me_mapsize > q->map_size)
        q->map_size = info.me_mapsize;
    return damaged(q, open_dbs(q, err, errlen), err, errlen);
}

/* Use the environment another queue of this process has open. */
static int attach_env(evrec_queue_t *q, shared_env_t *se, char *err, size_t errlen)
{
    q->se = se;
    q->env = se->env;
    q->events = se->events;
    q->endpoints = se->endpoints;
    q->meta = se->meta;
    q->map_size = se->map_size;
    se->refs++;
    MDB_txn *txn;
    int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
    if (rc)
        return open_fail_mdb(q, err, errlen, rc, "reading the store");
    rc = meta_get_u64(q, txn, K_BYTES, &q->known_bytes);
    if (rc) {
        mdb_txn_abort(txn);
        return open_fail_mdb(q, err, errlen, rc, "reading the store");
    }
    int code = settle_settings(q, txn, err, errlen);
    if (code) {
        mdb_txn_abort(txn);
        return code;
    }
    rc = txn_commit(txn);
    return rc ? open_fail_mdb(q, err, errlen, rc, "reading the store") : EVREC_OK;
}

static void release_env(evrec_queue_t *q)
{
    shared_env_t *se = q->se;
    if (se) {
        port_registry_lock();
        if (--se->refs == 0) {
            port_registry_remove(se->id);
            mdb_env_close(se->env);
            port_free(se);
        }
        port_registry_unlock();
    } else if (q->env) {
        mdb_env_close(q->env);
    }
    q->se = NULL;
    q->env = NULL;
}

/* Open the store's environment, or join the one this process already has open. Runs under
 * the registry lock, so that two threads opening the same store agree on one environment. */
static int open_shared(evrec_queue_t *q, char *err, size_t errlen)
{
    char id[64];
    int prc = port_file_id(q->dir, id, sizeof id);
    if (prc)
        return util_failf(err, errlen, EVREC_E_IO, "cannot identify store directory %s: %s",
                         q->dir, mdb_strerror(-prc));
    shared_env_t *se = port_registry_find(id);
    if (se && se->pid != port_pid()) {
        /* Inherited through fork(): the parent's environment is not ours to use. Forget the
         * entry (its memory is the parent's, copied) and open afresh. */
        port_registry_remove(id);
        se = NULL;
    }
    if (se)
        return attach_env(q, se, err, errlen);
    int code = open_env(q, err, errlen);
    if (code)
        return code;
    se = port_calloc(1, sizeof *se);
    if (!se || port_registry_add(id, se) != 0) {
        port_free(se);
        return util_failf(err, errlen, EVREC_E_NOMEM, "out of memory");
    }
    se->env = q->env;
    se->events = q->events;
    se->endpoints = q->endpoints;
    se->meta = q->meta;
    se->map_size = q->map_size;
    se->refs = 1;
    se->pid = port_pid();
    snprintf(se->id, sizeof se->id, "%s", id);
    q->se = se;
    return EVREC_OK;
}

static int open_store(evrec_queue_t *q, char *err, size_t errlen)
{
    int code = check_dir(q, err, errlen);
    if (code)
        return code;
    port_registry_lock();
    code = open_shared(q, err, errlen);
    port_registry_unlock();
    return code;
}

static void close_env(evrec_queue_t *q)
{
    release_env(q);
}

/* Rename the damaged store aside; returns the new name in `moved`. */
static int quarantine(evrec_queue_t *q, char *moved, size_t movedlen)
{
    snprintf(moved, movedlen, "%s.corrupt-%lld", q->dir, (long long)port_wall_ms());
    int rc = port_rename(q->dir, moved);
    return rc ? rc : 0;
}

static void normalise_config(queue_config_t *c)
{
    if (c->sync_interval_ms == 0)
        c->sync_interval_ms = DEF_SYNC_INTERVAL_MS;
    if (c->commit_interval_ms == 0)
        c->commit_interval_ms = DEF_COMMIT_INTERVAL_MS;
    if (c->commit_max_events == 0)
        c->commit_max_events = DEF_COMMIT_MAX_EVENTS;
    if (c->max_store_bytes == 0)
        c->max_store_bytes = DEF_MAX_STORE_BYTES;
}

static void free_queue(evrec_queue_t *q)
{
    if (!q)
        return;
    if (q->env)
        drop_pin(q);
    close_env(q);
    port_filelock_release(q->flusher);
    free_staged(q->staged, q->nstaged);
    for (qerr_t *e = q->errs; e;) {
        qerr_t *n = e->next;
        port_free(e);
        e = n;
    }
    port_tls_free(q->tls);
    port_mutex_free(q->mu);
    port_mutex_free(q->commit_mu);
    port_free(q->evicted);
    port_mutex_free(q->sync_mu);
    port_free(q->dir);
    port_free(q->lock_path);
    port_free(q->data_path);
    port_free(q->synced_path);
    port_free(q);
}

int queue_open(evrec_queue_t **out, const char *dir, const queue_config_t *cfg, char *err,
               size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return util_failf(err, errlen, EVREC_E_INVALID, "queue_open: out is NULL");
    *out = NULL;
    if (!dir || !*dir)
        return util_failf(err, errlen, EVREC_E_INVALID, "store directory is empty");
    if (cfg && (unsigned)cfg->durability > EVREC_DURABLE_BATCHED)
        return util_failf(err, errlen, EVREC_E_CONFIG, "durability %d is not a known mode",
                         (int)cfg->durability);
    if (cfg && (unsigned)cfg->full_policy > EVREC_FULL_REFUSE_NEW)
        return util_failf(err, errlen, EVREC_E_CONFIG, "full_policy %d is not a known policy",
                         (int)cfg->full_policy);
    evrec_queue_t *q = port_calloc(1, sizeof *q);
    if (!q)
        return util_failf(err, errlen, EVREC_E_NOMEM, "out of memory");
    if (cfg)
        q->cfg = *cfg;
    normalise_config(&q->cfg);
    atomic_init(&q->mode, (int)q->cfg.durability);
    q->map_size = derive_map_size(&q->cfg);
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    q->dir = port_strndup(dir, dlen);
    q->lock_path = q->dir ? store_file(q, "flusher.lock") : NULL;
    q->data_path = q->dir ? store_file(q, "data.mdb") : NULL;
    q->synced_path = q->dir ? store_file(q, "synced.meta") : NULL;
    if (!q->dir || !q->lock_path || !q->data_path || !q->synced_path || port_mutex_new(&q->mu) || port_mutex_new(&q->commit_mu) ||
        port_mutex_new(&q->sync_mu) ||
        port_tls_new(&q->tls, NULL)) {
        free_queue(q);
        return util_failf(err, errlen, EVREC_E_NOMEM, "out of memory");
    }
    int rc = open_store(q, err, errlen);
    if (rc == EVREC_E_CORRUPT && q->cfg.quarantine_corrupt) {
        char why[256], moved[1024];
        snprintf(why, sizeof why, "%s", err && errlen ? err : "corrupt");
        close_env(q);
        int mrc = quarantine(q, moved, sizeof moved);
        if (mrc) {
            free_queue(q);
            return util_failf(err, errlen, EVREC_E_IO,
                             "%s; moving it aside to %s failed: %s", why, moved,
                             mdb_strerror(-mrc));
        }
        rc = open_store(q, err, errlen);
        if (rc == EVREC_OK)
            util_failf(err, errlen, EVREC_OK,
                      "%s; the damaged store was moved to %s and an empty store created", why,
                      moved);
    }
    if (rc) {
        free_queue(q);
        return rc;
    }
    q->last_sync_ms = port_clock_monotonic_ms(q->cfg.clock);
    /* A synced snapshot to fall back on from the start (process and batched modes). */
    if (!is_power(q))
        (void)env_sync(q);
    *out = q;
    return EVREC_OK;
}

/* Staged records that cannot be committed at close are lost: count them (in a transaction
 * of their own, which needs far fewer pages than the records) and say so. */
static int close_staged(evrec_queue_t *q, char *err, size_t errlen)
{
    int rc = flush_staged(q);
    if (rc == EVREC_OK)
        return EVREC_OK;
    char why[ERR_LEN];
    snprintf(why, sizeof why, "%s", queue_last_error(q));
    port_mutex_lock(q->mu);
    size_t n = q->nstaged;
    port_mutex_unlock(q->mu);
    if (n == 0)
        return util_failf(err, errlen, rc, "closing store %s: %s", q->dir, why);
    (void)env_sync(q); /* frees the pages the synced snapshot kept, for the count below */
    wstate_t ws;
    int crc = ws_begin(q, &ws);
    if (!crc) {
        ws.add[QC_UNCOMMITTED] = n;
        crc = ws_commit(q, &ws);
    }
    return util_failf(err, errlen, rc,
                     "closing store %s: %zu staged records could not be committed and are "
                     "lost (%s)%s",
                     q->dir, n, why,
                     crc ? "; not even their count could be stored" : "; counted as uncommitted");
}

int queue_close_report(evrec_queue_t *q, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!q)
        return EVREC_OK;
    int rc = EVREC_OK;
    if (is_batched(q) || q->nstaged)
        rc = close_staged(q, err, errlen);
    port_mutex_lock(q->mu);
    int dirty = q->dirty;
    port_mutex_unlock(q->mu);
    if (dirty) {
        int src = env_sync(q);
        if (src && rc == EVREC_OK)
            rc = util_failf(err, errlen, src, "%s", queue_last_error(q));
    }
    free_queue(q);
    return rc;
}

void queue_close(evrec_queue_t *q)
{
    (void)queue_close_report(q, NULL, 0);
}

/* -- append / sync / tick ---------------------------------------------------------------- */

int queue_append(evrec_queue_t *q, const void *record, size_t len, int counted_truncated,
                 uint64_t *seq_out)
{
    if (seq_out)
        *seq_out = 0;
    if (!q)
        return EVREC_E_INVALID;
    if (!record || len == 0)
        return qfail(q, EVREC_E_INVALID, "queue_append: record is empty");
    uint64_t bound = bound_of(q);
    if (len > bound || len > 0xffffffffu)
        return qfail(q, EVREC_E_EVENT_SIZE,
                     "record of %zu bytes is larger than the whole store (max_store_bytes "
                     "%llu, of which the map of %llu bytes allows %llu)",
                     len, (unsigned long long)q->cfg.max_store_bytes,
                     (unsigned long long)q->map_size, (unsigned long long)bound);
    if (is_batched(q))
        return stage_record(q, record, len, counted_truncated != 0);

    staged_t one = { (uint8_t *)record, len, counted_truncated != 0 };
    uint64_t seq = 0;
    size_t refused;
    int consumed;
    int rc = store_records(q, &one, 1, &seq, &refused, &consumed);
    if (rc)
        return rc;
    if (refused) {
        uint64_t used;
        port_mutex_lock(q->mu);
        used = q->known_bytes;
        port_mutex_unlock(q->mu);
        return qfail(q, EVREC_E_FULL,
                     "store %s is full: %llu of max_store_bytes %llu used; record of %zu bytes "
                     "refused (full_policy refuse-new)",
                     q->dir, (unsigned long long)used, (unsigned long long)bound_of(q), len);
    }
    if (seq_out)
        *seq_out = seq;
    sync_after_write(q);
    return EVREC_OK;
}

int queue_sync(evrec_queue_t *q)
{
    if (!q)
        return EVREC_E_INVALID;
    int rc = is_batched(q) ? flush_staged(q) : EVREC_OK;
    int src = env_sync(q);
    return rc ? rc : src;
}

size_t queue_staged_count(evrec_queue_t *q)
{
    if (!q)
        return 0;
    port_mutex_lock(q->mu);
    size_t n = q->nstaged;
    port_mutex_unlock(q->mu);
    return n;
}

uint32_t queue_tick(evrec_queue_t *q)
{
    if (!q)
        return 1000;
    uint64_t now = port_clock_monotonic_ms(q->cfg.clock);
    port_mutex_lock(q->mu);
    int commit_due = q->nstaged > 0 && now - q->staged_since_ms >= q->cfg.commit_interval_ms;
    port_mutex_unlock(q->mu);
    if (commit_due)
        flush_staged(q);
    maybe_sync(q);

    now = port_clock_monotonic_ms(q->cfg.clock);
    uint64_t wait = q->cfg.sync_interval_ms;
    port_mutex_lock(q->mu);
    if (q->nstaged == 0 && !q->dirty) { /* nothing to commit or sync: no timer at all */
        port_mutex_unlock(q->mu);
        return QUEUE_TICK_IDLE;
    }
    if (q->nstaged > 0) {
        uint64_t age = now - q->staged_since_ms;
        uint64_t left = age >= q->cfg.commit_interval_ms ? 0 : q->cfg.commit_interval_ms - age;
        if (left < wait)
            wait = left;
    }
    if (q->dirty) {
        uint64_t age = now - q->last_sync_ms;
        uint64_t left = age >= q->cfg.sync_interval_ms ? 0 : q->cfg.sync_interval_ms - age;
        if (left < wait)
            wait = left;
    }
    port_mutex_unlock(q->mu);
    return (uint32_t)wait;
}

/* -- scan / delete / expire / stats ------------------------------------------------------ */

static int begin_read(evrec_queue_t *q, MDB_txn **txn)
{
    int rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, txn);
    return rc ? mdb_fail(q, rc, "reading the store") : EVREC_OK;
}

/* A read transaction with a cursor on the events. */
static int begin_read_events(evrec_queue_t *q, MDB_txn **txn, MDB_cursor **cur)
{
    int code = begin_read(q, txn);
    if (code)
        return code;
    int rc = mdb_cursor_open(*txn, q->events, cur);
    if (rc) {
        mdb_txn_abort(*txn);
        return mdb_fail(q, rc, "reading the store");
    }
    return EVREC_OK;
}

int queue_scan(evrec_queue_t *q, uint64_t from_seq, queue_visit_fn fn, void *user)
{
    if (!q || !fn)
        return EVREC_E_INVALID;
    MDB_txn *txn;
    MDB_cursor *cur;
    int code = begin_read_events(q, &txn, &cur);
    if (code)
        return code;
    int rc;
    uint8_t kb[8];
    put_be64(kb, from_seq);
    MDB_val k = { 8, kb }, d;
    code = EVREC_OK;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size != 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        int v = fn(user, get_be64(k.mv_data), d.mv_data, d.mv_size);
        if (v < 0)
            code = v;
        if (v != 0)
            break;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc && rc != MDB_NOTFOUND)
        return mdb_fail(q, rc, "scanning the queue");
    return code;
}

int queue_with_records(evrec_queue_t *q, queue_ref_t *refs, size_t n, queue_with_fn fn,
                       void *user)
{
    if (!q || !fn || (n && !refs))
        return EVREC_E_INVALID;
    MDB_txn *txn;
    MDB_cursor *cur;
    int code = begin_read_events(q, &txn, &cur);
    if (code)
        return code;
    int rc = 0;
    /* A batch is usually a run of consecutive records: step with MDB_NEXT while the keys
     * follow each other, and seek only where they do not. */
    int positioned = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t kb[8];
        put_be64(kb, refs[i].seq);
        MDB_val k = { 8, kb }, d = { 0, NULL };
        refs[i].value = NULL;
        refs[i].len = 0;
        rc = MDB_NOTFOUND;
        if (positioned) {
            MDB_val nk;
            rc = mdb_cursor_get(cur, &nk, &d, MDB_NEXT);
            if (rc == 0 && !(nk.mv_size == 8 && memcmp(nk.mv_data, kb, 8) == 0))
                rc = MDB_NOTFOUND;
            else if (rc && rc != MDB_NOTFOUND)
                break;
        }
        if (rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
        positioned = rc == 0;
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        refs[i].value = d.mv_data;
        refs[i].len = d.mv_size;
    }
    if (rc) {
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        return mdb_fail(q, rc, "reading queued events");
    }
    code = fn(user, refs, n);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return code;
}

int queue_delete(evrec_queue_t *q, const uint64_t *seqs, size_t n, const queue_count_t *counts,
                 size_t ncounts)
{
    if (!q || (n && !seqs) || (ncounts && !counts))
        return EVREC_E_INVALID;
    for (size_t i = 0; i < ncounts; i++)
        if ((unsigned)counts[i].counter >= QC_COUNT)
            return qfail(q, EVREC_E_INVALID, "queue_delete: counter %d is not a counter",
                         (int)counts[i].counter);
    wstate_t ws;
    int rc = ws_begin(q, &ws);
    if (rc)
        return mdb_fail(q, rc, "deleting from the queue");
    MDB_cursor *cur = NULL;
    rc = mdb_cursor_open(ws.txn, q->events, &cur);
    for (size_t i = 0; !rc && i < n; i++) {
        uint8_t kb[8];
        put_be64(kb, seqs[i]);
        MDB_val k = { 8, kb }, d;
        rc = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
        if (rc == MDB_NOTFOUND) {
            rc = 0; /* already gone: another process deleted or evicted it */
            continue;
        }
        if (!rc)
            rc = ws_del_current(&ws, cur, d.mv_size);
    }
    if (cur)
        mdb_cursor_close(cur);
    for (size_t i = 0; !rc && i < ncounts; i++)
        ws.add[counts[i].counter] += counts[i].delta;
    rc = rc ? (ws_abort(&ws), rc) : ws_commit(q, &ws);
    if (rc)
        return mdb_fail(q, rc, "deleting from the queue");
    maybe_sync(q);
    return EVREC_OK;
}

int queue_remove_matching(evrec_queue_t *q, queue_match_fn match, void *user,
                          queue_counter_t counter, uint64_t *removed)
{
    if (removed)
        *removed = 0;
    if (!q || !match || (unsigned)counter >= QC_COUNT)
        return EVREC_E_INVALID;
    uint64_t from = 0, total = 0;
    for (int more = 1; more;) {
        /* At most EXPIRE_CHUNK deletions per transaction keep each write short. */
        more = 0;
        int merr = 0; /* the matcher's own error code */
        wstate_t ws;
        int rc = ws_begin(q, &ws);
        if (rc)
            return mdb_fail(q, rc, "removing events");
        MDB_cursor *cur;
        rc = mdb_cursor_open(ws.txn, q->events, &cur);
        if (rc) {
            ws_abort(&ws);
            return mdb_fail(q, rc, "removing events");
        }
        uint8_t kb[8];
        put_be64(kb, from);
        MDB_val k = { 8, kb }, d;
        /* After mdb_cursor_del the cursor rests on the following record, which MDB_NEXT
         * then returns without stepping over it. */
        for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
            uint64_t seq = k.mv_size == 8 ? get_be64(k.mv_data) : 0;
            int m = match(user, seq, d.mv_data, d.mv_size);
            if (m < 0) {
                merr = m;
                break;
            }
            if (!m)
                continue;
            if (ws.add[counter] >= EXPIRE_CHUNK) {
                from = seq;
                more = 1;
                break;
            }
            rc = ws_del_current(&ws, cur, d.mv_size);
            if (rc)
                break;
            ws.add[counter]++;
        }
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        uint64_t got = ws.add[counter];
        if (merr) {
            ws_abort(&ws);
            return merr;
        }
        if (!rc && got == 0) { /* nothing removed: no commit, nothing to sync */
            ws_abort(&ws);
            break;
        }
        rc = rc ? (ws_abort(&ws), rc) : ws_commit(q, &ws);
        if (rc)
            return mdb_fail(q, rc, "removing events");
        total += got;
        if (removed)
            *removed = total;
    }
    maybe_sync(q);
    return EVREC_OK;
}

static int64_t record_created_ms(const void *value, size_t len, int *ok)
{
    *ok = len >= 12;
    if (!*ok)
        return 0;
    return (int64_t)get_le64((const uint8_t *)value + 4);
}

static int created_before(void *user, uint64_t seq, const void *value, size_t len)
{
    (void)seq;
    int ok;
    int64_t created = record_created_ms(value, len, &ok);
    return ok && created < *(const int64_t *)user;
}

int queue_expire(evrec_queue_t *q, int64_t cutoff_ms, uint64_t *removed)
{
    return queue_remove_matching(q, created_before, &cutoff_ms, QC_EXPIRED, removed);
}

static int read_counters(evrec_queue_t *q, MDB_txn *txn, queue_stats_t *out)
{
    int rc = meta_get_u64(q, txn, K_BYTES, &out->bytes);
    for (int i = 0; !rc && i < QC_COUNT; i++)
        rc = meta_get_u64(q, txn, counter_keys[i], &out->counters[i]);
    return rc;
}

int queue_stats(evrec_queue_t *q, queue_stats_t *out)
{
    if (!q || !out)
        return EVREC_E_INVALID;
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int code = begin_read(q, &txn);
    if (code)
        return code;
    MDB_stat st;
    int rc = mdb_stat(txn, q->events, &st);
    if (!rc) {
        out->events = st.ms_entries;
        rc = mdb_stat(txn, q->endpoints, &st);
    }
    if (!rc) {
        out->endpoints = st.ms_entries;
        rc = read_counters(q, txn, out);
    }
    MDB_cursor *cur = NULL;
    if (!rc)
        rc = mdb_cursor_open(txn, q->events, &cur);
    if (!rc) {
        /* created_ms is the caller's timestamp, not queue order: the minimum needs a pass
         * over every record's header. */
        MDB_val k, d;
        int first = 1;
        for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
            int ok;
            int64_t c = record_created_ms(d.mv_data, d.mv_size, &ok);
            if (ok && (first || c < out->oldest_ms)) {
                out->oldest_ms = c;
                first = 0;
            }
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc ? mdb_fail(q, rc, "reading store statistics") : EVREC_OK;
}

uint64_t queue_count(evrec_queue_t *q)
{
    if (!q)
        return 0;
    MDB_txn *txn;
    if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn))
        return 0;
    MDB_stat st;
    uint64_t n = mdb_stat(txn, q->events, &st) ? 0 : st.ms_entries;
    mdb_txn_abort(txn);
    return n;
}

/* -- endpoints --------------------------------------------------------------------------- */

static int check_key(evrec_queue_t *q, const char *key, const char *what)
{
    if (!key || !*key)
        return qfail(q, EVREC_E_INVALID, "%s is empty", what);
    size_t n = strlen(key);
    if (n > (size_t)mdb_env_get_maxkeysize(q->env))
        return qfail(q, EVREC_E_INVALID, "%s is %zu bytes; the store takes at most %d", what, n,
                     mdb_env_get_maxkeysize(q->env));
    return EVREC_OK;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Write profile `json` under `k` with the version after the one stored now. */
static int put_profile(evrec_queue_t *q, MDB_txn *txn, MDB_val *k, uint32_t old_version,
                       const char *json, size_t len)
{
    MDB_val d = { len + 4, NULL };
    int rc = mdb_put(txn, q->endpoints, k, &d, MDB_RESERVE);
    if (rc)
        return rc;
    uint8_t *p = d.mv_data;
    uint32_t v = old_version + 1;
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    memcpy(p + 4, json, len);
    return 0;
}

static int get_profile(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, const char **json, size_t *len,
                       uint32_t *version)
{
    MDB_val d;
    int rc = mdb_get(txn, dbi, k, &d);
    if (rc)
        return rc;
    if (d.mv_size < 4)
        return MDB_CORRUPTED;
    *version = get_le32(d.mv_data);
    *json = (const char *)d.mv_data + 4;
    *len = d.mv_size - 4;
    return 0;
}

/* Copy the value of `key` out of one read transaction (NUL-terminated). Values of versioned
 * databases (endpoints) start with a u32 LE version, returned in *version. `what` names the
 * item for the not-found message. */
static int read_value(evrec_queue_t *q, MDB_dbi dbi, const char *key, int versioned, char **out,
                      size_t *len, uint32_t *version, const char *what)
{
    MDB_txn *txn;
    int code = begin_read(q, &txn);
    if (code)
        return code;
    MDB_val k = str_val(key), d;
    int rc = mdb_get(txn, dbi, &k, &d);
    if (!rc && versioned && d.mv_size < 4)
        rc = MDB_CORRUPTED;
    if (!rc) {
        size_t skip = versioned ? 4 : 0;
        *out = port_strndup((const char *)d.mv_data + skip, d.mv_size - skip);
        if (!*out)
            code = qfail(q, EVREC_E_NOMEM, "out of memory reading %s '%s'", what, key);
        if (len)
            *len = d.mv_size - skip;
        if (version && versioned)
            *version = get_le32(d.mv_data);
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return qfail(q, EVREC_E_NOT_FOUND, "no %s '%s'", what, key);
    if (rc)
        return mdb_fail(q, rc, "reading the store");
    return code;
}

int queue_endpoint_get(evrec_queue_t *q, const char *id, char **json, uint32_t *version)
{
    if (json)
        *json = NULL;
    if (!q || !json)
        return EVREC_E_INVALID;
    int code = check_key(q, id, "endpoint id");
    if (code)
        return code;
    return read_value(q, q->endpoints, id, 1, json, NULL, version,
                      "stored profile for endpoint");
}

int queue_endpoint_update(evrec_queue_t *q, const char *id, queue_endpoint_edit_fn fn,
                          void *user)
{
    if (!q || !fn)
        return EVREC_E_INVALID;
    int code = check_key(q, id, "endpoint id");
    if (code)
        return code;
    MDB_txn *txn;
    int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
    if (rc)
        return mdb_fail(q, rc, "updating an endpoint profile");
    MDB_val k = str_val(id);
    const char *old = NULL;
    size_t olen = 0;
    uint32_t ver = 0;
    rc = get_profile(txn, q->endpoints, &k, &old, &olen, &ver);
    if (rc == MDB_NOTFOUND) {
        old = NULL;
        olen = 0;
        ver = 0;
        rc = 0;
    }
    if (rc) {
        mdb_txn_abort(txn);
        return mdb_fail(q, rc, "updating an endpoint profile");
    }
    /* The old value lives in the map; copy it so the callback sees a NUL-terminated string
     * that stays valid while we write. */
    char *copy = old ? port_strndup(old, olen) : NULL;
    if (old && !copy) {
        mdb_txn_abort(txn);
        return qfail(q, EVREC_E_NOMEM, "no memory to update an endpoint profile");
    }
    char *nj = NULL;
    size_t nlen = 0;
    int urc = fn(user, copy, copy ? olen : 0, &nj, &nlen);
    port_free(copy);
    if (urc) {
        mdb_txn_abort(txn);
        port_free(nj);
        return urc;
    }
    if (!nj) {
        mdb_txn_abort(txn);
        return qfail(q, EVREC_E_INVALID, "endpoint update for '%s' produced no profile", id);
    }
    rc = put_profile(q, txn, &k, ver, nj, nlen);
    port_free(nj);
    rc = rc ? (mdb_txn_abort(txn), rc) : commit_noted(q, txn);
    if (rc)
        return mdb_fail(q, rc, "updating an endpoint profile");
    sync_after_write(q);
    return EVREC_OK;
}

typedef struct replace_arg {
    const char *json;
    size_t len;
} replace_arg_t;

static int replace_profile(void *user, const char *old_json, size_t old_len, char **new_json,
                           size_t *new_len)
{
    (void)old_json;
    (void)old_len;
    const replace_arg_t *a = user;
    *new_json = port_strndup(a->json, a->len);
    *new_len = a->len;
    return *new_json ? 0 : EVREC_E_NOMEM;
}

int queue_endpoint_put(evrec_queue_t *q, const char *id, const char *json, size_t len)
{
    if (!q || (!json && len))
        return EVREC_E_INVALID;
    replace_arg_t a = { json ? json : "", len };
    return queue_endpoint_update(q, id, replace_profile, &a);
}

/* -- meta -------------------------------------------------------------------------------- */

int queue_meta_get(evrec_queue_t *q, const char *key, char **value, size_t *len)
{
    if (value)
        *value = NULL;
    if (len)
        *len = 0;
    if (!q || !value)
        return EVREC_E_INVALID;
    int code = check_key(q, key, "meta key");
    if (code)
        return code;
    return read_value(q, q->meta, key, 0, value, len, NULL, "meta value");
}

static int meta_write(evrec_queue_t *q, const char *key, const void *value, size_t len,
                      char **stored)
{
    int code = check_key(q, key, "meta key");
    if (code)
        return code;
    if (is_reserved_meta(key))
        return qfail(q, EVREC_E_INVALID, "meta key '%s' is reserved for the store itself", key);
    MDB_txn *txn;
    int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
    if (rc)
        return mdb_fail(q, rc, "writing a meta value");
    MDB_val k = str_val(key), d = { len, (void *)value };
    rc = mdb_put(txn, q->meta, &k, &d, stored ? MDB_NOOVERWRITE : 0);
    int existed = rc == MDB_KEYEXIST;
    if (existed) {
        /* d now points at the value another writer stored first: that one wins. */
        *stored = port_strndup(d.mv_data, d.mv_size);
        mdb_txn_abort(txn);
        return *stored ? EVREC_OK : qfail(q, EVREC_E_NOMEM, "out of memory");
    }
    rc = rc ? (mdb_txn_abort(txn), rc) : commit_noted(q, txn);
    if (rc)
        return mdb_fail(q, rc, "writing a meta value");
    sync_after_write(q);
    if (stored) {
        *stored = port_strndup(value, len);
        if (!*stored)
            return qfail(q, EVREC_E_NOMEM, "out of memory");
    }
    return EVREC_OK;
}

int queue_meta_put(evrec_queue_t *q, const char *key, const void *value, size_t len)
{
    if (!q || (!value && len))
        return EVREC_E_INVALID;
    return meta_write(q, key, value ? value : "", len, NULL);
}

int queue_meta_put_if_absent(evrec_queue_t *q, const char *key, const char *value,
                             char **stored)
{
    if (stored)
        *stored = NULL;
    if (!q || !value || !stored)
        return EVREC_E_INVALID;
    return meta_write(q, key, value, strlen(value), stored);
}

/* -- flusher role ------------------------------------------------------------------------ */

int queue_flusher_acquire(evrec_queue_t *q)
{
    if (!q)
        return EVREC_E_INVALID;
    port_mutex_lock(q->mu);
    if (q->flusher) {
        port_mutex_unlock(q->mu);
        return EVREC_OK;
    }
    port_filelock_t *l = NULL;
    int rc = port_filelock_try(q->lock_path, &l);
    if (rc == 0)
        q->flusher = l;
    port_mutex_unlock(q->mu);
    if (rc == -EWOULDBLOCK || rc == -EAGAIN)
        return qfail(q, EVREC_E_BUSY, "another process runs the flusher of %s", q->dir);
    if (rc)
        return qfail(q, EVREC_E_IO, "cannot lock %s: %s", q->lock_path, mdb_strerror(-rc));
    return EVREC_OK;
}

void queue_flusher_release(evrec_queue_t *q)
{
    if (!q)
        return;
    port_mutex_lock(q->mu);
    port_filelock_t *l = q->flusher;
    q->flusher = NULL;
    port_mutex_unlock(q->mu);
    port_filelock_release(l);
}

void queue_report_evictions(evrec_queue_t *q, int on)
{
    if (!q)
        return;
    port_mutex_lock(q->mu);
    q->report_evictions = on != 0;
    port_mutex_unlock(q->mu);
}

int queue_take_evicted(evrec_queue_t *q, char **pairs, size_t *len, uint64_t *unreported)
{
    *pairs = NULL;
    *len = 0;
    *unreported = 0;
    if (!q)
        return 0;
    port_mutex_lock(q->mu);
    *pairs = q->evicted;
    *len = q->evicted_len;
    *unreported = q->evicted_unreported;
    q->evicted = NULL;
    q->evicted_len = q->evicted_cap = 0;
    q->evicted_unreported = 0;
    port_mutex_unlock(q->mu);
    return *len > 0 || *unreported > 0;
}

int queue_flusher_alive(evrec_queue_t *q)
{
    if (!q)
        return 0;
    port_mutex_lock(q->mu);
    int mine = q->flusher != NULL;
    port_mutex_unlock(q->mu);
    return mine || (q->lock_path && port_filelock_probe(q->lock_path) == 1);
}

const char *queue_dir(const evrec_queue_t *q)
{
    return q ? q->dir : NULL;
}

const char *queue_data_path(const evrec_queue_t *q)
{
    return q ? q->data_path : NULL;
}

void queue_settings(evrec_queue_t *q, evrec_durability_t *durability, uint64_t *max_store_bytes)
{
    if (durability)
        *durability = (evrec_durability_t)atomic_load(&q->mode);
    if (max_store_bytes) {
        port_mutex_lock(q->mu);
        *max_store_bytes = q->cfg.max_store_bytes;
        port_mutex_unlock(q->mu);
    }
}
