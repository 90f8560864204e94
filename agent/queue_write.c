/*
 * Writing to the store: write transactions with its running state, appends under the byte
 * bound (eviction, refusal, MAP_FULL recovery), batched staging, and the owner's ticks. The
 * syncs and the synced snapshot they pin are in queue_sync.c.
 */
#include "queue_internal.h"

#include <stdio.h>
#include <string.h>

#include "port.h"
#include "record.h"

static uint64_t bound_of(evrec_queue_t *q)
{
    port_mutex_lock(q->mu);
    uint64_t b = q->bound;
    port_mutex_unlock(q->mu);
    return b;
}

/* Commit a write transaction, honouring the test hook that simulates a full disk. */
int queue_txn_commit(MDB_txn *txn)
{
    int inj = port_fault_take("queue.commit");
    if (inj) {
        mdb_txn_abort(txn);
        return -inj;
    }
    return mdb_txn_commit(txn);
}

/* -- write transactions with the store's running state ----------------------------------- */

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

int queue_ws_begin(evrec_queue_t *q, wstate_t *ws)
{
    memset(ws, 0, sizeof *ws);
    queue_ensure_pin(q);
    int rc = mdb_txn_begin(q->env, NULL, 0, &ws->txn);
    if (rc)
        return rc;
    rc = queue_follow_settings(q, ws->txn);
    if (!rc)
        rc = queue_meta_get_u64(q, ws->txn, K_NEXT_SEQ, &ws->next_seq);
    if (!rc)
        rc = queue_meta_get_u64(q, ws->txn, K_BYTES, &ws->bytes);
    if (!rc && ws->next_seq == 0)
        ws->next_seq = 1;
    if (rc) {
        mdb_txn_abort(ws->txn);
        ws->txn = NULL;
    }
    return rc;
}

void queue_ws_abort(wstate_t *ws)
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
 * new, and when the synced snapshot lies PIN_MAX_TXNS behind, to sync early in its thread.
 * `bytes`: the store's byte total after it, or BYTES_UNCHANGED (read only under q->mu). */
#define BYTES_UNCHANGED UINT64_MAX
static void note_commit(evrec_queue_t *q, uint64_t bytes, uint64_t txnid, int kept)
{
    port_mutex_lock(q->mu);
    if (bytes != BYTES_UNCHANGED)
        q->known_bytes = bytes;
    q->last_txnid = txnid;
    int woke = !is_power(q) && (!q->dirty || (kept && !q->dirty_kept));
    if (!is_power(q)) {
        q->dirty = 1;
        q->dirty_kept |= kept;
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
static int commit_noted(evrec_queue_t *q, MDB_txn *txn, int kept)
{
    uint64_t id = (uint64_t)mdb_txn_id(txn);
    int rc = queue_txn_commit(txn);
    if (!rc)
        note_commit(q, BYTES_UNCHANGED, id, kept);
    return rc;
}

int queue_commit_noted(evrec_queue_t *q, MDB_txn *txn)
{
    return commit_noted(q, txn, 1);
}

int queue_commit_noted_unsynced(evrec_queue_t *q, MDB_txn *txn)
{
    return commit_noted(q, txn, 0);
}

void queue_set_wake_hook(evrec_queue_t *q, void (*fn)(void *user), void *user)
{
    if (q) {
        q->wake_fn = fn;
        q->wake_user = user;
    }
}

/* Whether a write holds what a caller was told is kept (note_commit): anything but removals
 * of events the service answered for, or that expiry or eviction took. */
static int ws_keeps(const wstate_t *ws)
{
    if (ws->seq_dirty)
        return 1;
    for (int i = 0; i < QC_COUNT; i++)
        if (ws->add[i] != 0 && i != QC_DELIVERED && i != QC_REJECTED && i != QC_POISON &&
            i != QC_EXPIRED && i != QC_EVICTED)
            return 1;
    return 0;
}

int queue_ws_commit(evrec_queue_t *q, wstate_t *ws)
{
    port_mutex_lock(q->mu);
    uint64_t pending = q->pending_refused;
    q->pending_refused = 0;
    port_mutex_unlock(q->mu);
    ws->add[QC_REFUSED] += pending;
    int rc = 0;
    if (ws->seq_dirty)
        rc = queue_meta_put_u64(q, ws->txn, K_NEXT_SEQ, ws->next_seq);
    if (!rc && ws->bytes_dirty)
        rc = queue_meta_put_u64(q, ws->txn, K_BYTES, ws->bytes);
    for (int i = 0; !rc && i < QC_COUNT; i++)
        rc = queue_meta_add_u64(q, ws->txn, queue_counter_keys[i], ws->add[i]);
    if (!rc) {
        ws->txnid = (uint64_t)mdb_txn_id(ws->txn);
        rc = queue_txn_commit(ws->txn);
        ws->txn = NULL;
    } else {
        queue_ws_abort(ws);
    }
    if (!rc) {
        note_commit(q, ws->bytes, ws->txnid, ws_keeps(ws));
        ws_publish_evicted(q, ws);
        return rc;
    }
    ws_drop_evicted(ws); /* the commit failed (a full map): nothing was evicted */
    if (pending) {
        port_mutex_lock(q->mu);
        q->pending_refused += pending;
        port_mutex_unlock(q->mu);
    }
    return rc;
}

/* Delete the record under the cursor, keeping `bytes` in step. */
int queue_ws_del_current(wstate_t *ws, MDB_cursor *cur, size_t size)
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
        rc = queue_ws_del_current(ws, cur, d.mv_size);
        if (rc)
            break;
        ws->add[QC_EVICTED]++;
    }
    mdb_cursor_close(cur);
    return rc;
}

/* The last key of `events` (0 if empty). */
int queue_last_seq(evrec_queue_t *q, MDB_txn *txn, uint64_t *out)
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
            rc = queue_last_seq(q, ws->txn, &last);
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

/* Count refusals in a transaction of their own. When even that cannot commit (the map is
 * full while a reader pins its pages) the count is kept and lands with the next commit, so
 * the counter ends up exact unless the process dies first. */
static void count_refused(evrec_queue_t *q, uint64_t n)
{
    wstate_t ws;
    int rc = queue_ws_begin(q, &ws);
    if (!rc) {
        ws.add[QC_REFUSED] = n;
        rc = queue_ws_commit(q, &ws);
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
    int rc = queue_ws_begin(q, &ws);
    if (rc)
        return rc;
    if (ws.bytes == 0) {
        uint64_t last;
        rc = queue_last_seq(q, ws.txn, &last);
        queue_ws_abort(&ws);
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
            rc = queue_ws_begin(q, &ws);
            if (rc)
                return rc;
        }
        uint64_t target = half ? keep : ws.bytes - (ws.bytes - keep) / 2;
        rc = ws_evict_to(q, &ws, target);
        if (!rc && ws.add[QC_EVICTED] == 0) {
            queue_ws_abort(&ws);
            continue;
        }
        rc = rc ? (queue_ws_abort(&ws), rc) : queue_ws_commit(q, &ws);
        if (rc)
            return rc;
    }
    return 0;
}

/* Put recs[0..n) into the transaction `ws` began, under the byte bound in force, and commit
 * it (or abort it on failure). seqs as for store_records; *nref how many the refuse-new policy
 * turned away. Returns LMDB's code: MDB_MAP_FULL is for the caller to make room. */
static int put_records(evrec_queue_t *q, wstate_t *ws, const staged_t *recs, size_t n,
                       uint64_t *seqs, size_t *nref)
{
    int rc = 0;
    uint64_t max = bound_of(q); /* the store's, as of this transaction */
    for (size_t i = 0; !rc && i < n; i++) {
        uint64_t seq = 0;
        if (ws->bytes + recs[i].len > max) {
            if (q->cfg.full_policy == EVREC_FULL_REFUSE_NEW) {
                (*nref)++;
                if (seqs)
                    seqs[i] = 0;
                continue;
            }
            rc = ws_evict_to(q, ws, max - recs[i].len);
            if (rc)
                break;
        }
        rc = ws_put_record(q, ws, &recs[i], &seq);
        if (seqs)
            seqs[i] = seq;
    }
    if (!rc) {
        ws->add[QC_REFUSED] += *nref;
        rc = queue_ws_commit(q, ws);
    } else {
        queue_ws_abort(ws);
    }
    return rc;
}

/* The map is full before the byte bound is: LMDB's own pages (free list, a reader pinning old
 * pages) took the room. Make room by policy, never by crashing: EVREC_OK when an eviction made
 * room for another attempt, otherwise the append's final code (store_records' *refused and
 * *consumed set as it says). */
static int make_room(evrec_queue_t *q, size_t n, uint64_t total, int attempt, size_t *refused,
                     int *consumed)
{
    if (q->cfg.full_policy == EVREC_FULL_REFUSE_NEW || attempt >= 4) {
        count_refused(q, n);
        *refused = n;
        *consumed = 1;
        return queue_fail(q, EVREC_E_FULL,
                          "store %s is full: its map of %llu bytes has no room left for %zu "
                          "record(s) (%s)",
                          q->dir, (unsigned long long)q->map_size, n,
                          q->cfg.full_policy == EVREC_FULL_REFUSE_NEW ? "full_policy refuse-new"
                                                                      : "eviction did not help");
    }
    int rc = evict_for_space(q, attempt, total);
    if (rc == MDB_MAP_FULL) {
        /* Not even an eviction fits: a reader pins the free pages. The room comes back
         * once the reader ends: staged records wait for it, a direct append is refused. */
        if (!is_batched(q)) {
            count_refused(q, n);
            *refused = n;
            *consumed = 1;
        }
        return queue_fail(q, EVREC_E_FULL,
                          "store %s is full: its map of %llu bytes has no room left for %zu "
                          "record(s) while a reader holds old pages",
                          q->dir, (unsigned long long)q->map_size, n);
    }
    if (rc == MDB_NOTFOUND)
        return queue_fail(q, EVREC_E_FULL,
                          "store %s: the map of %llu bytes is too small to hold %llu bytes of "
                          "records even when empty; raise map_size_bytes",
                          q->dir, (unsigned long long)q->map_size, (unsigned long long)total);
    if (rc)
        return queue_mdb_fail(q, rc, "making room in a full store map");
    return EVREC_OK;
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
        int rc = queue_ws_begin(q, &ws);
        if (rc)
            return queue_mdb_fail(q, rc, "appending to the store");
        size_t nref = 0;
        rc = put_records(q, &ws, recs, n, seqs, &nref);
        if (!rc) {
            *refused = nref;
            *consumed = 1;
            return EVREC_OK;
        }
        if (rc != MDB_MAP_FULL)
            return queue_mdb_fail(q, rc, "appending to the store");
        if (!is_power(q) && !pin_moved) {
            /* The pinned synced snapshot keeps old pages: sync now, which pins the newest. */
            pin_moved = 1;
            if (queue_env_sync(q) == EVREC_OK)
                continue;
        }
        int dead = 0;
        mdb_reader_check(q->env, &dead); /* a killed process's reader pins pages: clear it */
        if (dead > 0 && attempt == 0)
            continue;
        int code = make_room(q, n, total, attempt, refused, consumed);
        if (code)
            return code;
    }
}

/* -- batched staging --------------------------------------------------------------------- */

void queue_free_staged(staged_t *s, stage_chunk_t *chunks)
{
    while (chunks) {
        stage_chunk_t *next = chunks->next;
        port_free(chunks);
        chunks = next;
    }
    port_free(s);
}

#define STAGE_CHUNK_MIN 4096u
#define STAGE_CHUNK_MAX 65536u

/* Room for `len` staged bytes in the window's chunks (under q->mu). */
static uint8_t *stage_room(evrec_queue_t *q, size_t len)
{
    stage_chunk_t *c = q->chunks;
    if (!c || c->cap - c->used < len) {
        size_t cap = c ? c->cap * 2 : STAGE_CHUNK_MIN;
        if (cap > STAGE_CHUNK_MAX)
            cap = STAGE_CHUNK_MAX;
        if (cap < len)
            cap = len;
        stage_chunk_t *fresh = port_malloc(sizeof *fresh + cap);
        if (!fresh)
            return NULL;
        fresh->next = c;
        fresh->used = 0;
        fresh->cap = cap;
        q->chunks = c = fresh;
    }
    uint8_t *p = c->data + c->used;
    c->used += len;
    return p;
}

/* Put records whose commit failed back in front of what was staged since; their chunks join
 * the window's (behind the one being filled). */
static void restage(evrec_queue_t *q, staged_t *arr, size_t n, stage_chunk_t *chunks)
{
    port_mutex_lock(q->mu);
    size_t total = n + q->nstaged;
    staged_t *merged = port_malloc(total * sizeof *merged);
    if (!merged) {
        port_mutex_unlock(q->mu);
        /* cannot even keep them: they are lost like a crash would */
        queue_free_staged(arr, chunks);
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
    if (!q->chunks) {
        q->chunks = chunks;
    } else {
        stage_chunk_t *tail = q->chunks;
        while (tail->next)
            tail = tail->next;
        tail->next = chunks;
    }
    q->staged_since_ms = port_clock_monotonic_ms(q->cfg.clock);
    port_mutex_unlock(q->mu);
}

int queue_flush_staged(evrec_queue_t *q)
{
    port_mutex_lock(q->commit_mu);
    port_mutex_lock(q->mu);
    staged_t *arr = q->staged;
    size_t n = q->nstaged;
    stage_chunk_t *chunks = q->chunks;
    q->staged = NULL;
    q->chunks = NULL;
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
            queue_free_staged(arr, chunks);
        else
            restage(q, arr, n, chunks);
        port_mutex_lock(q->mu);
        q->last_commit_rc = rc;
        q->inflight = 0;
        port_mutex_unlock(q->mu);
    } else {
        queue_free_staged(arr, chunks);
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
    int rc = queue_flush_staged(q);
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
    return queue_fail(q, rc,
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
        return queue_fail(q, EVREC_E_FULL,
                          "store %s is full: %llu of max_store_bytes %llu used; record of %zu "
                          "bytes refused (full_policy refuse-new)",
                          q->dir, (unsigned long long)used, (unsigned long long)max, len);
    }
    if (q->nstaged == q->capstaged) {
        size_t first = q->cfg.commit_max_events < 256 ? q->cfg.commit_max_events : 256;
        size_t cap = q->capstaged ? q->capstaged * 2 : first ? first : 16;
        staged_t *ns = port_realloc(q->staged, cap * sizeof *ns);
        if (!ns) {
            port_mutex_unlock(q->mu);
            return queue_fail(q, EVREC_E_NOMEM, "no memory to stage a record");
        }
        q->staged = ns;
        q->capstaged = cap;
    }
    uint8_t *copy = stage_room(q, len);
    if (!copy) {
        port_mutex_unlock(q->mu);
        return queue_fail(q, EVREC_E_NOMEM, "no memory to stage a record");
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
        queue_flush_staged(q); /* a failure keeps the records staged for the next try */
    return EVREC_OK;
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
        return queue_fail(q, EVREC_E_INVALID, "queue_append: record is empty");
    uint64_t bound = bound_of(q);
    if (len > bound || len > 0xffffffffu)
        return queue_fail(q, EVREC_E_EVENT_SIZE,
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
        return queue_fail(q, EVREC_E_FULL,
                          "store %s is full: %llu of max_store_bytes %llu used; record of %zu "
                          "bytes refused (full_policy refuse-new)",
                          q->dir, (unsigned long long)used, (unsigned long long)bound_of(q), len);
    }
    if (seq_out)
        *seq_out = seq;
    queue_sync_after_write(q);
    return EVREC_OK;
}

int queue_sync(evrec_queue_t *q)
{
    if (!q)
        return EVREC_E_INVALID;
    int rc = is_batched(q) ? queue_flush_staged(q) : EVREC_OK;
    int src = queue_env_sync(q);
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
        queue_flush_staged(q);
    queue_maybe_sync(q);

    now = port_clock_monotonic_ms(q->cfg.clock);
    uint64_t wait = QUEUE_TICK_IDLE - 1; /* the nearest timer below, staged or unsynced */
    port_mutex_lock(q->mu);
    if (q->nstaged == 0 && !q->dirty) { /* nothing to commit or sync: no timer at all */
        port_mutex_unlock(q->mu);
        queue_release_idle_pin(q);
        return QUEUE_TICK_IDLE;
    }
    if (q->nstaged > 0) {
        uint64_t age = now - q->staged_since_ms;
        uint64_t left = age >= q->cfg.commit_interval_ms ? 0 : q->cfg.commit_interval_ms - age;
        if (left < wait)
            wait = left;
    }
    if (q->dirty) {
        uint64_t every = queue_sync_every_ms(q), age = now - q->last_sync_ms;
        uint64_t left = age >= every ? 0 : every - age;
        if (left < wait)
            wait = left;
    }
    port_mutex_unlock(q->mu);
    return (uint32_t)wait;
}
