/*
 * Syncs in process and batched modes, and the synced snapshot each one pins: the side file
 * synced.meta that keeps its meta record (queue_open.c restores it after a power cut), the
 * interval and PIN_MAX_TXNS triggers, and the sync after a direct write.
 */
#include "queue_internal.h"
#include "store_verify.h"

#include <stdio.h>
#include <string.h>

#include "port.h"

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

/* The newest valid slot of synced.meta. */
int queue_read_side(evrec_queue_t *q, side_t *out)
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
    uint64_t seq = queue_read_side(q, &cur) == EVREC_OK ? cur.seq + 1 : 1;
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
    q->pin_synced = 1;
    port_mutex_unlock(q->mu);
    if (old)
        mdb_txn_abort(old);
}

void queue_drop_pin(evrec_queue_t *q)
{
    port_mutex_lock(q->mu);
    MDB_txn *old = q->pin;
    q->pin = NULL;
    q->pin_synced = 0;
    port_mutex_unlock(q->mu);
    if (old)
        mdb_txn_abort(old);
}

/* A clean queue (nothing staged, nothing unsynced) lets its pin go: a process that synced and
 * then sleeps must not keep every later commit of the store's other processes from reusing
 * pages (the file would grow with each of their commits until this one writes again). The
 * snapshot it synced stays safe: a process that commits after it holds a pin of its own no
 * newer than its last sync (every open syncs and pins), or syncs a newer snapshot, which then
 * is the one a power cut returns to; and this queue pins again before its next write
 * (queue_ensure_pin), when the latest snapshot is at least as new as the last synced one. */
void queue_release_idle_pin(evrec_queue_t *q)
{
    if (is_power(q))
        return;
    port_mutex_lock(q->sync_mu);
    port_mutex_lock(q->mu);
    MDB_txn *old = NULL;
    if (!q->dirty && q->nstaged == 0 && q->inflight == 0) {
        old = q->pin;
        q->pin = NULL;
        q->pin_txnid = 0;
        q->pin_synced = 0;
    }
    port_mutex_unlock(q->mu);
    if (old)
        mdb_txn_abort(old);
    port_mutex_unlock(q->sync_mu);
}

/* Before a write transaction: pin the latest snapshot again if the queue let its pin go. */
void queue_ensure_pin(evrec_queue_t *q)
{
    if (is_power(q))
        return;
    port_mutex_lock(q->mu);
    int need = q->pin == NULL;
    port_mutex_unlock(q->mu);
    if (!need)
        return;
    port_mutex_lock(q->sync_mu);
    port_mutex_lock(q->mu);
    need = q->pin == NULL;
    port_mutex_unlock(q->mu);
    MDB_txn *snap = NULL;
    if (need && mdb_txn_begin(q->env, NULL, MDB_RDONLY, &snap) == 0) {
        port_mutex_lock(q->mu);
        q->pin = snap;
        q->pin_txnid = (uint64_t)mdb_txn_id(snap);
        q->pin_synced = 0; /* the latest, not necessarily on disk */
        port_mutex_unlock(q->mu);
    }
    port_mutex_unlock(q->sync_mu);
}

static int env_sync_locked(evrec_queue_t *q);

int queue_env_sync(evrec_queue_t *q)
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
    uint64_t synced_txn = q->pin_synced ? q->pin_txnid : 0;
    port_mutex_unlock(q->mu);
    /* Nothing committed by anyone since this queue's last sync: that sync covers the store as
     * it is, and another would only rewrite the side file (an fsync) and fsync the store. */
    MDB_envinfo info;
    if (!was_dirty && synced_txn != 0 && mdb_env_info(q->env, &info) == 0 &&
        (uint64_t)info.me_last_txnid == synced_txn)
        return EVREC_OK;
    port_mutex_lock(q->mu);
    was_dirty = q->dirty;
    int was_kept = q->dirty_kept;
    q->dirty = 0; /* cleared first: a commit racing with this fsync marks it again */
    q->dirty_kept = 0;
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
        q->dirty_kept |= was_kept;
        port_mutex_unlock(q->mu);
        return queue_mdb_fail(q, rc, "syncing the store to disk");
    }
    if (snap)
        keep_synced(q, snap, copy);
    return EVREC_OK;
}

/* How long after the last sync this queue's unsynced commits are due (under q->mu). */
uint64_t queue_sync_every_ms(const evrec_queue_t *q)
{
    return q->dirty_kept ? q->cfg.sync_interval_ms
                         : (uint64_t)q->cfg.sync_interval_ms * DELETE_SYNC_FACTOR;
}

void queue_maybe_sync(evrec_queue_t *q)
{
    if (is_power(q))
        return;
    uint64_t now = port_clock_monotonic_ms(q->cfg.clock);
    port_mutex_lock(q->mu);
    int due = q->dirty && now - q->last_sync_ms >= queue_sync_every_ms(q);
    uint64_t pinned_txn = q->pin_txnid;
    port_mutex_unlock(q->mu);
    if (!due && pinned_txn) {
        MDB_envinfo info;
        due = mdb_env_info(q->env, &info) == 0 &&
              (uint64_t)info.me_last_txnid > pinned_txn + PIN_MAX_TXNS;
    }
    if (due)
        queue_env_sync(q); /* a failure is remembered as dirty and retried at the next interval */
}

/* After a direct write (an append, a profile, a meta value). Without an owner syncing in the
 * background the writer syncs when due (queue_maybe_sync); with one, the owner was woken
 * (note_commit) and the writer syncs only when the owner fell PIN_HARD_TXNS behind, so
 * recording never waits on an fsync otherwise. */
void queue_sync_after_write(evrec_queue_t *q)
{
    if (!q->wake_fn) {
        queue_maybe_sync(q);
        return;
    }
    port_mutex_lock(q->mu);
    int far = q->dirty && q->pin_txnid && q->last_txnid > q->pin_txnid + PIN_HARD_TXNS;
    port_mutex_unlock(q->mu);
    if (far)
        queue_env_sync(q);
}
