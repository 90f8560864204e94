/*
 * Opening and closing a store: the directory's checks, the environment (one per store and
 * process, through the port's registry), creating the store or checking its marker, running
 * state and pages, the store-kept settings, restoring the last synced snapshot after a power
 * cut, quarantine, and close.
 */
#include "queue_internal.h"
#include "store_verify.h"

#include <stdio.h>
#include <string.h>

#include "port.h"
#include "util_str.h"

#define QUEUE_FORMAT_VERSION 1u
#define FORMAT_MAGIC "evrec-store"
#define FORMAT_MAGIC_LEN (sizeof FORMAT_MAGIC - 1)

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
 * MAP_FULL (a reader pinning pages for too long) is handled in queue_write.c as the last resort. */
#define MAP_SLACK_BYTES (8ull << 20)
#define MAP_FACTOR 4u
#define MAP_SHARE 3u
#define MAP_MIN_BYTES (1ull << 20)
/* 32-bit address spaces: the whole map is mmap'ed, so keep it well inside 3 GiB of user space
 * shared with the heap, libraries and stacks. */
#define MAP_MAX_32BIT (1ull << 30)

/* -- store-kept settings ------------------------------------------------------------------ */

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
int queue_follow_settings(evrec_queue_t *q, MDB_txn *txn)
{
    uint64_t d, m;
    int fd, fm;
    int rc = queue_meta_find_u64(q, txn, K_DURABILITY, &d, &fd);
    if (!rc)
        rc = queue_meta_find_u64(q, txn, K_MAX_BYTES, &m, &fm);
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
    int rc = queue_meta_find_u64(q, txn, K_DURABILITY, &d, &fd);
    if (!rc)
        rc = queue_meta_find_u64(q, txn, K_MAX_BYTES, &m, &fm);
    if (!rc && fd && d > EVREC_DURABLE_BATCHED)
        rc = MDB_CORRUPTED;
    if (!rc && fm && m == 0)
        rc = MDB_CORRUPTED;
    if (rc)
        return queue_open_fail_mdb(q, err, errlen, rc, "reading the store's settings");
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
        rc = queue_meta_put_u64(q, txn, K_DURABILITY, (uint64_t)c->durability);
    if (!rc && (!fm || c->set_store_settings))
        rc = queue_meta_put_u64(q, txn, K_MAX_BYTES, c->max_store_bytes);
    if (!rc)
        rc = queue_follow_settings(q, txn);
    if (rc)
        return queue_open_fail_mdb(q, err, errlen, rc, "writing the store's settings");
    return EVREC_OK;
}

/* -- open -------------------------------------------------------------------------------- */

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
        return queue_open_fail_mdb(q, err, errlen, rc, "reading the store's format marker");
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
        rc = queue_meta_put_u64(q, txn, K_NEXT_SEQ, 1);
    if (!rc)
        rc = queue_meta_put_u64(q, txn, K_BYTES, 0);
    return rc;
}

/* The named databases: created in an empty environment, else found with evrec's marker.
 * On failure the caller aborts the transaction. */
static int find_dbs(evrec_queue_t *q, MDB_txn *txn, char *err, size_t errlen)
{
    int rc = mdb_dbi_open(txn, "meta", 0, &q->meta);
    if (rc == MDB_NOTFOUND) {
        MDB_dbi main_dbi;
        MDB_stat st;
        rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
        if (!rc)
            rc = mdb_stat(txn, main_dbi, &st);
        if (!rc && st.ms_entries != 0)
            return util_failf(err, errlen, EVREC_E_FOREIGN,
                             "%s holds an LMDB environment that is not an evrec store (no "
                             "format marker)",
                             q->dir);
        if (!rc)
            rc = create_store(q, txn);
        if (rc)
            return queue_open_fail_mdb(q, err, errlen, rc, "creating the store");
    } else if (rc == MDB_INCOMPATIBLE) {
        return util_failf(err, errlen, EVREC_E_FOREIGN,
                         "%s holds an LMDB environment that is not an evrec store", q->dir);
    } else if (rc) {
        return queue_open_fail_mdb(q, err, errlen, rc, "opening the store");
    } else {
        int code = check_marker(q, txn, err, errlen);
        if (code)
            return code;
        rc = mdb_dbi_open(txn, "events", 0, &q->events);
        if (!rc)
            rc = mdb_dbi_open(txn, "endpoints", MDB_CREATE, &q->endpoints);
        if (rc) {
            if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
                return util_failf(err, errlen, EVREC_E_CORRUPT,
                                 "store %s is corrupt: its events database is missing", q->dir);
            return queue_open_fail_mdb(q, err, errlen, rc, "opening the store's databases");
        }
    }
    return EVREC_OK;
}

/* The sum of the records' sizes, their keys checked to be in order. Returns LMDB's code. */
static int sum_records(evrec_queue_t *q, MDB_txn *txn, uint64_t *sum)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, q->events, &cur);
    if (rc)
        return rc;
    MDB_val k, d;
    uint64_t prev = 0;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        uint64_t seq = k.mv_size == 8 ? get_be64(k.mv_data) : 0;
        if (seq <= prev) { /* keys out of order: a page holds older content */
            rc = MDB_CORRUPTED;
            break;
        }
        prev = seq;
        *sum += d.mv_size;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Probe the running state and both ends of the queue: damage there shows up now, as an
 * open error, rather than in the middle of recording. On failure the caller aborts the
 * transaction. */
static int check_running_state(evrec_queue_t *q, MDB_txn *txn, char *err, size_t errlen)
{
    uint64_t next = 0, bytes = 0, last = 0;
    int rc = queue_meta_get_u64(q, txn, K_NEXT_SEQ, &next);
    if (!rc)
        rc = queue_meta_get_u64(q, txn, K_BYTES, &bytes);
    if (!rc)
        rc = queue_last_seq(q, txn, &last);
    /* Every record's size, against the byte total committed with them: a power cut that tore
     * or lost pages of the newest, unsynced transactions can leave a tree that is sound in
     * structure but not the one its meta page described. */
    uint64_t sum = 0;
    if (!rc)
        rc = sum_records(q, txn, &sum);
    if (!rc && sum != bytes) {
        if (!q->restored && port_path_exists(q->synced_path))
            return util_failf(err, errlen, EVREC_E_CORRUPT,
                             "store %s is corrupt: its records hold %llu bytes, its running "
                             "total says %llu",
                             q->dir, (unsigned long long)sum, (unsigned long long)bytes);
        bytes = sum;
        rc = queue_meta_put_u64(q, txn, K_BYTES, sum);
    }
    if (!rc && next <= last)
        rc = queue_meta_put_u64(q, txn, K_NEXT_SEQ, last + 1);
    if (rc)
        return queue_open_fail_mdb(q, err, errlen, rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc,
                                   "checking the store");
    q->known_bytes = bytes;
    return EVREC_OK;
}

/* Open the named databases (creating them in an empty environment), check the marker and
 * the running state, all in one write transaction so that concurrent first opens agree. */
static int open_dbs(evrec_queue_t *q, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
    if (rc)
        return queue_open_fail_mdb(q, err, errlen, rc, "opening the store");
    int code = find_dbs(q, txn, err, errlen);
    if (!code)
        code = check_running_state(q, txn, err, errlen);
    if (!code)
        code = settle_settings(q, txn, err, errlen);
    if (code) {
        mdb_txn_abort(txn);
        return code;
    }
    rc = queue_txn_commit(txn);
    q->opening = 0;
    q->env_mode_set = 0;
    follow_mode(q, atomic_load(&q->mode));
    if (rc)
        return queue_open_fail_mdb(q, err, errlen, rc, "opening the store");
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
            return queue_open_fail_mdb(q, err, errlen, rc, "reading the store");
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
    if (queue_read_side(q, &side) != EVREC_OK)
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
    if (queue_read_side(q, &side) != EVREC_OK)
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

/* LMDB opens its files following links: create or check them first without (O_NOFOLLOW);
 * the directory is ours alone (check_dir), so nobody can plant a link meanwhile. */
static int prepare_files(evrec_queue_t *q, char *err, size_t errlen)
{
    static const char *const names[] = { "data.mdb", "lock.mdb", "flusher.lock" };
    /* In a group store the flusher's lock file is made 0660 here too, whoever opens first. */
    size_t nfiles = q->shared ? 3 : 2;
    for (size_t i = 0; i < nfiles; i++) {
        char *path = store_file(q, names[i]);
        int prc = path ? port_prepare_store_file(path, q->shared) : -ENOMEM;
        port_free(path);
        if (prc) {
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
    return EVREC_OK;
}

/* mdb_env_open with the queue's map size. Returns LMDB's code. */
static int create_env(evrec_queue_t *q, unsigned flags)
{
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
    return rc;
}

/* The environment is open: check the data file's length, commits a restarted machine never
 * synced, and the pages, then open the databases. Frees data_path. */
static int check_env(evrec_queue_t *q, char *data_path, char *err, size_t errlen)
{
    /* A data file shorter than its own last page would make LMDB touch unmapped file space
     * (SIGBUS): check before the first read. */
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_info(q->env, &info);
    if (!rc)
        rc = mdb_env_stat(q->env, &st);
    int64_t fsize = port_file_size(data_path);
    if (rc) {
        port_free(data_path);
        return queue_open_fail_mdb(q, err, errlen, rc, "reading the store's header");
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

static int open_env(evrec_queue_t *q, char *err, size_t errlen)
{
    char *data_path = store_file(q, "data.mdb");
    if (!data_path)
        return util_failf(err, errlen, EVREC_E_NOMEM, "out of memory");
    /* Opened synced: the commit of open_dbs (creating a store, settling its settings) reaches
     * the disk before anything is acknowledged; then the store's mode applies. */
    unsigned flags = MDB_NOTLS;
    q->opening = 1;
    int code = prepare_files(q, err, errlen);
    if (code) {
        port_free(data_path);
        return code;
    }
    int rc = create_env(q, flags);
    if (rc) {
        port_free(data_path);
        return queue_open_fail_mdb(q, err, errlen, rc, "opening the store's data or lock file");
    }
    int dead = 0;
    mdb_reader_check(q->env, &dead);
    return check_env(q, data_path, err, errlen);
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
        return queue_open_fail_mdb(q, err, errlen, rc, "reading the store");
    rc = queue_meta_get_u64(q, txn, K_BYTES, &q->known_bytes);
    if (rc) {
        mdb_txn_abort(txn);
        return queue_open_fail_mdb(q, err, errlen, rc, "reading the store");
    }
    int code = settle_settings(q, txn, err, errlen);
    if (code) {
        mdb_txn_abort(txn);
        return code;
    }
    rc = queue_txn_commit(txn);
    return rc ? queue_open_fail_mdb(q, err, errlen, rc, "reading the store") : EVREC_OK;
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
        queue_drop_pin(q);
    close_env(q);
    port_filelock_release(q->flusher);
    queue_free_staged(q->staged, q->chunks);
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
        (void)queue_env_sync(q);
    *out = q;
    return EVREC_OK;
}

/* Staged records that cannot be committed at close are lost: count them (in a transaction
 * of their own, which needs far fewer pages than the records) and say so. */
static int close_staged(evrec_queue_t *q, char *err, size_t errlen)
{
    int rc = queue_flush_staged(q);
    if (rc == EVREC_OK)
        return EVREC_OK;
    char why[ERR_LEN];
    snprintf(why, sizeof why, "%s", queue_last_error(q));
    port_mutex_lock(q->mu);
    size_t n = q->nstaged;
    port_mutex_unlock(q->mu);
    if (n == 0)
        return util_failf(err, errlen, rc, "closing store %s: %s", q->dir, why);
    (void)queue_env_sync(q); /* frees the pages the synced snapshot kept, for the count below */
    wstate_t ws;
    int crc = queue_ws_begin(q, &ws);
    if (!crc) {
        ws.add[QC_UNCOMMITTED] = n;
        crc = queue_ws_commit(q, &ws);
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
        int src = queue_env_sync(q);
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
