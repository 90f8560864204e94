/*
 * What the flusher keeps and reports: its status persisted in the store's meta (what
 * `evrec stats` shows from another process), its statistics, and the delivery callback for
 * the events it did not send (evicted by writes, expired by age).
 */
#include "flusher_internal.h"
#include "seal.h"

#include <cjson/cJSON.h>
#include <string.h>

#define FL_EXPIRE_SCAN_MAX 1024u
#define FL_EXPIRE_PASSES 64
/* The status in meta is rewritten on any change of error or backoff, else at most this often. */
#define FL_STATUS_PERIOD_MS 1000u


/* Copy with truncation (messages are informative; a cut one is better than none). */
void flusher_copy_text(char *dst, size_t dstlen, const char *src)
{
    if (dstlen == 0)
        return;
    size_t n = src ? strlen(src) : 0;
    if (n >= dstlen)
        n = dstlen - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* -- status and statistics -------------------------------------------------------------- */

/* Record an error for flusher_stats() (call with mu held). */
void flusher_set_error_locked(flusher_t *f, int code, const char *msg)
{
    f->last_error = code;
    flusher_copy_text(f->last_error_message, sizeof f->last_error_message, msg);
}

/* Whether the delivery state differs from what was last written (mu held): 2 for an error or
 * backoff change (written at once), 1 for counters (written at most every period), else 0. */
static int status_change_locked(const flusher_t *f)
{
    if (f->last_error != f->persisted_error || f->backoff_until_wall != f->persisted_backoff)
        return 2;
    return f->requests != f->persisted_requests || f->retries != f->persisted_retries ||
           f->last_upload_ms != f->persisted_upload;
}

/* How long until a pending change of the status may be written (mu held); UINT64_MAX if
 * nothing is pending. The loop wakes for it, so `evrec stats` lags by at most the period. */
uint64_t flusher_status_wait_locked(const flusher_t *f, uint64_t now)
{
    int change = status_change_locked(f);
    if (!change)
        return UINT64_MAX;
    if (change == 2 || now - f->persisted_mono >= FL_STATUS_PERIOD_MS)
        return 0;
    return FL_STATUS_PERIOD_MS - (now - f->persisted_mono);
}

/* Write the status JSON to meta so that `evrec stats` in another process can show it:
 * {"requests","retries","last_upload_ms","backoff_until_ms","last_error",
 *  "last_error_message","pid","since_ms","updated_ms"}. Written when it changed: an error or
 * backoff at once, counters at most every FL_STATUS_PERIOD_MS (and within it: the loop wakes
 * for a pending change); nothing is written while nothing changes. */
void flusher_persist_status(flusher_t *f, int force)
{
    port_mutex_lock(f->mu);
    uint64_t now = port_clock_monotonic_ms(f->cfg.clock);
    if (!force && flusher_status_wait_locked(f, now) != 0) {
        port_mutex_unlock(f->mu);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "requests", (double)f->requests);
        cJSON_AddNumberToObject(o, "retries", (double)f->retries);
        cJSON_AddNumberToObject(o, "last_upload_ms", (double)f->last_upload_ms);
        cJSON_AddNumberToObject(o, "backoff_until_ms", (double)f->backoff_until_wall);
        cJSON_AddNumberToObject(o, "last_error", f->last_error);
        cJSON_AddStringToObject(o, "last_error_message", f->last_error_message);
        cJSON_AddNumberToObject(o, "pid", (double)port_pid());
        cJSON_AddNumberToObject(o, "since_ms", (double)f->started_wall);
        cJSON_AddNumberToObject(o, "updated_ms", (double)port_clock_wall_ms(f->cfg.clock));
        cJSON_AddNumberToObject(o, "deferrals", (double)f->deferrals);
        cJSON_AddNumberToObject(o, "deferred_events",
                                (double)(f->deferred ? f->deferred_events : 0));
    }
    f->persisted_error = f->last_error;
    f->persisted_backoff = f->backoff_until_wall;
    f->persisted_requests = f->requests;
    f->persisted_retries = f->retries;
    f->persisted_upload = f->last_upload_ms;
    f->persisted_mono = now;
    port_mutex_unlock(f->mu);
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (s) {
        int rc = queue_meta_put_unsynced(f->q, QUEUE_META_STATUS, s, strlen(s));
        if (rc)
            log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: cannot persist status: %s",
                    evrec_strerror(rc));
        cJSON_free(s);
    }
}

/* -- delivery callback ------------------------------------------------------------------ */

void flusher_report(flusher_t *f, const char *event_id, const char *endpoint_id,
                    evrec_outcome_t outcome, int status, const char *reason)
{
    if (!f->cfg.on_delivery)
        return;
    evrec_delivery_t d = { event_id, endpoint_id, outcome, status, reason ? reason : "" };
    f->cfg.on_delivery(f->cfg.delivery_user, &d);
}

/* -- evictions --------------------------------------------------------------------------- */

void flusher_deliver_evicted(evrec_queue_t *q, evrec_delivery_fn fn, void *user,
                             const log_sink_t *log)
{
    char *pairs = NULL;
    size_t len = 0;
    uint64_t unreported = 0;
    if (!fn || !queue_take_evicted(q, &pairs, &len, &unreported))
        return;
    for (size_t i = 0; i < len;) {
        const char *event_id = pairs + i;
        const char *endpoint_id = event_id + strlen(event_id) + 1;
        evrec_delivery_t d = { event_id, endpoint_id, EVREC_OUTCOME_DROPPED, 0, "evicted" };
        fn(user, &d);
        i = (size_t)(endpoint_id - pairs) + strlen(endpoint_id) + 1;
    }
    port_free(pairs);
    if (unreported)
        log_msg(log, EVREC_LOG_WARN,
                "%llu evicted events not reported to on_delivery (too many at once); "
                "dropped_evicted counts them", (unsigned long long)unreported);
}

void flusher_report_evicted(flusher_t *f)
{
    flusher_deliver_evicted(f->q, f->cfg.on_delivery, f->cfg.delivery_user, &f->cfg.log);
}

/* -- expiry ----------------------------------------------------------------------------- */

typedef struct expired {
    uint64_t *seqs;
    char **ids;  /* event id, endpoint id pairs */
    size_t n, cap;
    int64_t cutoff_ms;
    const struct seal_keys *keys; /* encryption at rest: sealed records are opened for ids */
    seal_buf_t opened;
} expired_t;

static int collect_expired(void *user, uint64_t seq, const void *value, size_t len)
{
    expired_t *e = user;
    evrec_record_view_t v;
    if (evrec_record_header(value, len, &v) != EVREC_OK || v.created_ms >= e->cutoff_ms ||
        seal_decode(e->keys, value, len, &e->opened, &v) != EVREC_OK)
        return 0;
    e->seqs[e->n] = seq;
    e->ids[2 * e->n] = port_strndup(v.event_id, v.event_id_len);
    e->ids[2 * e->n + 1] = port_strndup(v.endpoint_id, v.endpoint_id_len);
    e->n++;
    return e->n == e->cap ? 1 : 0;
}

static void expired_clear(expired_t *e)
{
    for (size_t i = 0; i < 2 * e->n; i++)
        port_free(e->ids[i]);
    e->n = 0;
}

/* One pass of expiry with the ids kept for the delivery callback: at most e->cap events.
 * Returns a code; e->n says how many were found (and removed, on EVREC_OK). */
static int expire_pass(flusher_t *f, expired_t *e)
{
    int rc = queue_scan(f->q, 0, collect_expired, e);
    if (rc == EVREC_OK && e->n > 0) {
        queue_count_t c = { QC_EXPIRED, e->n };
        rc = queue_delete(f->q, e->seqs, e->n, &c, 1);
        for (size_t i = 0; rc == EVREC_OK && i < e->n; i++)
            flusher_report(f, e->ids[2 * i], e->ids[2 * i + 1], EVREC_OUTCOME_DROPPED, 0,
                           "expired");
    }
    return rc;
}

/* Drop events older than max_event_age_ms. With a delivery callback the ids are needed, so
 * the queue is scanned in passes of FL_EXPIRE_SCAN_MAX events (a pass that comes back full
 * is followed by another, up to FL_EXPIRE_PASSES); without one, queue_expire does it. */
void flusher_expire_old(flusher_t *f, int64_t cutoff_ms)
{
    if (cutoff_ms <= 0)
        return;
    uint64_t removed = 0;
    int rc = EVREC_OK;
    if (!f->cfg.on_delivery) {
        rc = queue_expire(f->q, cutoff_ms, &removed);
    } else {
        expired_t e = { 0 };
        e.cap = FL_EXPIRE_SCAN_MAX;
        e.cutoff_ms = cutoff_ms;
        e.keys = f->cfg.keys;
        e.seqs = port_calloc(e.cap, sizeof *e.seqs);
        e.ids = port_calloc(2 * e.cap, sizeof *e.ids);
        if (!e.seqs || !e.ids)
            rc = EVREC_E_NOMEM;
        for (int pass = 0; rc == EVREC_OK && pass < FL_EXPIRE_PASSES; pass++) {
            rc = expire_pass(f, &e);
            size_t found = e.n;
            if (rc == EVREC_OK)
                removed += found;
            expired_clear(&e);
            if (found < e.cap)
                break;
        }
        port_free(e.ids);
        port_free(e.seqs);
        seal_buf_free(&e.opened);
    }
    if (rc)
        log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: expiry failed: %s", evrec_strerror(rc));
    if (removed)
        log_msg(&f->cfg.log, EVREC_LOG_WARN,
                "flusher: dropped %llu events older than %llu ms", (unsigned long long)removed,
                (unsigned long long)f->cfg.max_event_age_ms);
}

/* Age is judged on the clock events are stamped with (the device's), never the corrected
 * one: a device far behind keeps its events, and a forged Date cannot expire anything. */
int64_t flusher_expiry_cutoff(const flusher_t *f)
{
    int64_t now = port_clock_wall_ms(f->cfg.clock);
    if ((uint64_t)now <= f->cfg.max_event_age_ms)
        return 0;
    return now - (int64_t)f->cfg.max_event_age_ms;
}

void flusher_stats(flusher_t *f, evrec_stats_t *st)
{
    if (!f || !st)
        return;
    port_mutex_lock(f->mu);
    st->requests = f->requests;
    st->retries = f->retries;
    st->last_upload_ms = f->last_upload_ms;
    st->backoff_until_ms = f->backoff_until_mono > port_clock_monotonic_ms(f->cfg.clock) ? f->backoff_until_wall
                                                                        : 0;
    st->last_error = f->last_error;
    flusher_copy_text(st->last_error_message, sizeof st->last_error_message, f->last_error_message);
    st->deferrals = f->deferrals;
    st->deferred_events = f->deferred ? f->deferred_events : 0;
    st->upload_bytes_today = meter_used_today(&f->meter, port_clock_wall_ms(f->cfg.clock));
    st->flusher_alive = 1;
    st->flusher_pid = port_pid();
    st->flusher_since_ms = f->started_wall;
    st->status_updated_ms = port_clock_wall_ms(f->cfg.clock);
    port_mutex_unlock(f->mu);
}

static double number_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int flusher_stats_from_store(evrec_queue_t *q, evrec_stats_t *st)
{
    if (!q || !st)
        return EVREC_E_INVALID;
    char *v = NULL;
    size_t len = 0;
    int rc = queue_meta_get(q, QUEUE_META_STATUS, &v, &len);
    if (rc)
        return rc;
    cJSON *o = cJSON_ParseWithLength(v, len);
    port_free(v);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return EVREC_E_CORRUPT;
    }
    st->requests = (uint64_t)number_member(o, "requests");
    st->retries = (uint64_t)number_member(o, "retries");
    st->last_upload_ms = (int64_t)number_member(o, "last_upload_ms");
    st->backoff_until_ms = (int64_t)number_member(o, "backoff_until_ms");
    if (st->backoff_until_ms <= port_wall_ms())
        st->backoff_until_ms = 0;
    st->last_error = (int)number_member(o, "last_error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "last_error_message");
    flusher_copy_text(st->last_error_message, sizeof st->last_error_message,
                      cJSON_IsString(m) ? m->valuestring : "");
    st->flusher_pid = (int64_t)number_member(o, "pid");
    st->flusher_since_ms = (int64_t)number_member(o, "since_ms");
    st->status_updated_ms = (int64_t)number_member(o, "updated_ms");
    st->deferrals = (uint64_t)number_member(o, "deferrals");
    st->deferred_events = st->backoff_until_ms ? (uint64_t)number_member(o, "deferred_events") : 0;
    cJSON_Delete(o);
    meter_t spent = { 0, 0, 0 };
    if (queue_meta_get(q, QUEUE_META_UPLOAD_BUDGET, &v, &len) == EVREC_OK) {
        if (meter_parse(&spent, v, len) == 0)
            st->upload_bytes_today = meter_used_today(&spent, port_wall_ms());
        port_free(v);
    }
    return EVREC_OK;
}
