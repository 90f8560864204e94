/*
 * The queue's error messages (per thread), the u64 meta values of its running state, endpoint
 * profiles, the caller's meta values, the flusher's lock and the accessors (queue_internal.h
 * has the layout of `meta`).
 */
#include "queue_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "port.h"
#include "util_str.h"

const char *const queue_counter_keys[QC_COUNT] = {
    [QC_RECORDED] = COUNTER_PREFIX "recorded",   [QC_EVICTED] = COUNTER_PREFIX "evicted",
    [QC_EXPIRED] = COUNTER_PREFIX "expired",     [QC_REJECTED] = COUNTER_PREFIX "rejected",
    [QC_POISON] = COUNTER_PREFIX "poison",       [QC_REFUSED] = COUNTER_PREFIX "refused",
    [QC_TRUNCATED] = COUNTER_PREFIX "truncated", [QC_DELIVERED] = COUNTER_PREFIX "delivered",
    [QC_UNCOMMITTED] = COUNTER_PREFIX "uncommitted", [QC_PURGED] = COUNTER_PREFIX "purged",
};

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

int queue_fail(evrec_queue_t *q, int code, const char *fmt, ...)
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

int queue_mdb_fail(evrec_queue_t *q, int rc, const char *what)
{
    char *b = errbuf(q);
    if (b)
        describe_mdb(b, ERR_LEN, rc, what, q->dir, q->map_size);
    return mdb_code(rc);
}

int queue_open_fail_mdb(const evrec_queue_t *q, char *err, size_t errlen, int rc,
                        const char *what)
{
    if (err && errlen)
        describe_mdb(err, errlen, rc, what, q->dir, q->map_size);
    return mdb_code(rc);
}

/* -- meta values ------------------------------------------------------------------------- */

/* A u64 meta value and whether it is there at all. */
int queue_meta_find_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t *out,
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

int queue_meta_get_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t *out)
{
    int found;
    return queue_meta_find_u64(q, txn, key, out, &found);
}

int queue_meta_put_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t v)
{
    uint8_t b[8];
    put_le64(b, v);
    MDB_val k = str_val(key), d = { 8, b };
    return mdb_put(txn, q->meta, &k, &d, 0);
}

int queue_meta_add_u64(evrec_queue_t *q, MDB_txn *txn, const char *key, uint64_t delta)
{
    if (delta == 0)
        return 0;
    uint64_t v;
    int rc = queue_meta_get_u64(q, txn, key, &v);
    return rc ? rc : queue_meta_put_u64(q, txn, key, v + delta);
}

static int is_reserved_meta(const char *key)
{
    return strcmp(key, K_FORMAT) == 0 || strcmp(key, K_NEXT_SEQ) == 0 ||
           strcmp(key, K_BYTES) == 0 || strcmp(key, K_DURABILITY) == 0 ||
           strcmp(key, K_MAX_BYTES) == 0 ||
           strncmp(key, COUNTER_PREFIX, sizeof COUNTER_PREFIX - 1) == 0;
}

/* -- endpoints --------------------------------------------------------------------------- */

static int check_key(evrec_queue_t *q, const char *key, const char *what)
{
    if (!key || !*key)
        return queue_fail(q, EVREC_E_INVALID, "%s is empty", what);
    size_t n = strlen(key);
    if (n > (size_t)mdb_env_get_maxkeysize(q->env))
        return queue_fail(q, EVREC_E_INVALID, "%s is %zu bytes; the store takes at most %d", what,
                          n, mdb_env_get_maxkeysize(q->env));
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
    int code = queue_begin_read(q, &txn);
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
            code = queue_fail(q, EVREC_E_NOMEM, "out of memory reading %s '%s'", what, key);
        if (len)
            *len = d.mv_size - skip;
        if (version && versioned)
            *version = get_le32(d.mv_data);
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return queue_fail(q, EVREC_E_NOT_FOUND, "no %s '%s'", what, key);
    if (rc)
        return queue_mdb_fail(q, rc, "reading the store");
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
    queue_ensure_pin(q);
    int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
    if (rc)
        return queue_mdb_fail(q, rc, "updating an endpoint profile");
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
        return queue_mdb_fail(q, rc, "updating an endpoint profile");
    }
    /* The old value lives in the map; copy it so the callback sees a NUL-terminated string
     * that stays valid while we write. */
    char *copy = old ? port_strndup(old, olen) : NULL;
    if (old && !copy) {
        mdb_txn_abort(txn);
        return queue_fail(q, EVREC_E_NOMEM, "no memory to update an endpoint profile");
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
        return queue_fail(q, EVREC_E_INVALID, "endpoint update for '%s' produced no profile", id);
    }
    rc = put_profile(q, txn, &k, ver, nj, nlen);
    port_free(nj);
    rc = rc ? (mdb_txn_abort(txn), rc) : queue_commit_noted(q, txn);
    if (rc)
        return queue_mdb_fail(q, rc, "updating an endpoint profile");
    queue_sync_after_write(q);
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

int queue_meta_key_check(evrec_queue_t *q, const char *key)
{
    int code = check_key(q, key, "meta key");
    if (code)
        return code;
    if (is_reserved_meta(key))
        return queue_fail(q, EVREC_E_INVALID, "meta key '%s' is reserved for the store itself",
                          key);
    return EVREC_OK;
}

static int meta_write(evrec_queue_t *q, const char *key, const void *value, size_t len,
                      char **stored, int kept)
{
    int code = queue_meta_key_check(q, key);
    if (code)
        return code;
    MDB_txn *txn;
    queue_ensure_pin(q);
    int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
    if (rc)
        return queue_mdb_fail(q, rc, "writing a meta value");
    MDB_val k = str_val(key), d = { len, (void *)value };
    rc = mdb_put(txn, q->meta, &k, &d, stored ? MDB_NOOVERWRITE : 0);
    int existed = rc == MDB_KEYEXIST;
    if (existed) {
        /* d now points at the value another writer stored first: that one wins. */
        *stored = port_strndup(d.mv_data, d.mv_size);
        mdb_txn_abort(txn);
        return *stored ? EVREC_OK : queue_fail(q, EVREC_E_NOMEM, "out of memory");
    }
    if (rc)
        mdb_txn_abort(txn);
    else
        rc = kept ? queue_commit_noted(q, txn) : queue_commit_noted_unsynced(q, txn);
    if (rc)
        return queue_mdb_fail(q, rc, "writing a meta value");
    queue_sync_after_write(q);
    if (stored) {
        *stored = port_strndup(value, len);
        if (!*stored)
            return queue_fail(q, EVREC_E_NOMEM, "out of memory");
    }
    return EVREC_OK;
}

int queue_meta_put(evrec_queue_t *q, const char *key, const void *value, size_t len)
{
    if (!q || (!value && len))
        return EVREC_E_INVALID;
    return meta_write(q, key, value ? value : "", len, NULL, 1);
}

int queue_meta_put_unsynced(evrec_queue_t *q, const char *key, const void *value, size_t len)
{
    if (!q || (!value && len))
        return EVREC_E_INVALID;
    return meta_write(q, key, value ? value : "", len, NULL, 0);
}

int queue_meta_put_if_absent(evrec_queue_t *q, const char *key, const char *value,
                             char **stored)
{
    if (stored)
        *stored = NULL;
    if (!q || !value || !stored)
        return EVREC_E_INVALID;
    return meta_write(q, key, value, strlen(value), stored, 1);
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
        return queue_fail(q, EVREC_E_BUSY, "another process runs the flusher of %s", q->dir);
    if (rc)
        return queue_fail(q, EVREC_E_IO, "cannot lock %s: %s", q->lock_path, mdb_strerror(-rc));
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
