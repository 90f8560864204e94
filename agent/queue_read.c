/*
 * Reading and removing queued records: scans, the batch's records in one read transaction,
 * deletes with their counts, removal by a matcher (expiry), statistics and the count.
 */
#include "queue_internal.h"

#include <string.h>

#include "port.h"

#define EXPIRE_CHUNK 512u

/* -- scan / delete / expire / stats ------------------------------------------------------ */

int queue_begin_read(evrec_queue_t *q, MDB_txn **txn)
{
    int rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, txn);
    return rc ? queue_mdb_fail(q, rc, "reading the store") : EVREC_OK;
}

/* A read transaction with a cursor on the events. */
static int begin_read_events(evrec_queue_t *q, MDB_txn **txn, MDB_cursor **cur)
{
    int code = queue_begin_read(q, txn);
    if (code)
        return code;
    int rc = mdb_cursor_open(*txn, q->events, cur);
    if (rc) {
        mdb_txn_abort(*txn);
        return queue_mdb_fail(q, rc, "reading the store");
    }
    return EVREC_OK;
}

int queue_scan(evrec_queue_t *q, uint64_t from_seq, queue_visit_fn fn, void *user)
{
    return queue_scan_then(q, from_seq, fn, user, NULL);
}

int queue_scan_then(evrec_queue_t *q, uint64_t from_seq, queue_visit_fn fn, void *user,
                    int (*done)(void *user))
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
    if (done && code == EVREC_OK && (rc == 0 || rc == MDB_NOTFOUND))
        code = done(user);
    mdb_txn_abort(txn);
    if (rc && rc != MDB_NOTFOUND)
        return queue_mdb_fail(q, rc, "scanning the queue");
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
        return queue_mdb_fail(q, rc, "reading queued events");
    }
    code = fn(user, refs, n);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return code;
}

int queue_delete(evrec_queue_t *q, const uint64_t *seqs, size_t n, const queue_count_t *counts,
                 size_t ncounts)
{
    return queue_delete_noting(q, seqs, n, counts, ncounts, NULL);
}

int queue_delete_noting(evrec_queue_t *q, const uint64_t *seqs, size_t n,
                        const queue_count_t *counts, size_t ncounts, const queue_note_t *note)
{
    if (!q || (n && !seqs) || (ncounts && !counts) || (note && (!note->key || (!note->value &&
                                                                              note->len))))
        return EVREC_E_INVALID;
    if (note) {
        int bad = queue_meta_key_check(q, note->key);
        if (bad)
            return bad;
    }
    for (size_t i = 0; i < ncounts; i++)
        if ((unsigned)counts[i].counter >= QC_COUNT)
            return queue_fail(q, EVREC_E_INVALID, "queue_delete: counter %d is not a counter",
                              (int)counts[i].counter);
    wstate_t ws;
    int rc = queue_ws_begin(q, &ws);
    if (rc)
        return queue_mdb_fail(q, rc, "deleting from the queue");
    MDB_cursor *cur = NULL;
    rc = mdb_cursor_open(ws.txn, q->events, &cur);
    /* After a deletion the cursor rests on the following record (MDB_NEXT returns it
     * without stepping): when that is the next sequence asked for, as it is for a request's
     * events, it is deleted without another search from the root. */
    int placed = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        uint8_t kb[8];
        put_be64(kb, seqs[i]);
        MDB_val k, d;
        int found = 0;
        if (placed) {
            rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
            found = rc == 0 && k.mv_size == 8 && memcmp(k.mv_data, kb, 8) == 0;
        }
        if (!found) {
            k.mv_size = 8;
            k.mv_data = kb;
            rc = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
        }
        placed = 0;
        if (rc == MDB_NOTFOUND) {
            rc = 0; /* already gone: another process deleted or evicted it */
            continue;
        }
        if (!rc) {
            rc = queue_ws_del_current(&ws, cur, d.mv_size);
            placed = 1;
        }
    }
    if (cur)
        mdb_cursor_close(cur);
    if (!rc && note) {
        MDB_val k = { strlen(note->key), (void *)note->key };
        MDB_val d = { note->len, note->value ? (void *)note->value : (void *)"" };
        rc = mdb_put(ws.txn, q->meta, &k, &d, 0);
    }
    for (size_t i = 0; !rc && i < ncounts; i++)
        ws.add[counts[i].counter] += counts[i].delta;
    rc = rc ? (queue_ws_abort(&ws), rc) : queue_ws_commit(q, &ws);
    if (rc)
        return queue_mdb_fail(q, rc, "deleting from the queue");
    queue_maybe_sync(q);
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
        int rc = queue_ws_begin(q, &ws);
        if (rc)
            return queue_mdb_fail(q, rc, "removing events");
        MDB_cursor *cur;
        rc = mdb_cursor_open(ws.txn, q->events, &cur);
        if (rc) {
            queue_ws_abort(&ws);
            return queue_mdb_fail(q, rc, "removing events");
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
            rc = queue_ws_del_current(&ws, cur, d.mv_size);
            if (rc)
                break;
            ws.add[counter]++;
        }
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        uint64_t got = ws.add[counter];
        if (merr) {
            queue_ws_abort(&ws);
            return merr;
        }
        if (!rc && got == 0) { /* nothing removed: no commit, nothing to sync */
            queue_ws_abort(&ws);
            break;
        }
        rc = rc ? (queue_ws_abort(&ws), rc) : queue_ws_commit(q, &ws);
        if (rc)
            return queue_mdb_fail(q, rc, "removing events");
        total += got;
        if (removed)
            *removed = total;
    }
    queue_maybe_sync(q);
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
    int rc = queue_meta_get_u64(q, txn, K_BYTES, &out->bytes);
    for (int i = 0; !rc && i < QC_COUNT; i++)
        rc = queue_meta_get_u64(q, txn, queue_counter_keys[i], &out->counters[i]);
    return rc;
}

int queue_stats(evrec_queue_t *q, queue_stats_t *out)
{
    if (!q || !out)
        return EVREC_E_INVALID;
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int code = queue_begin_read(q, &txn);
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
    return rc ? queue_mdb_fail(q, rc, "reading store statistics") : EVREC_OK;
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
