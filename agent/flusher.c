/*
 * The flusher: one request at a time from the queue to the service (DESIGN §1, §4).
 *
 * Locking: `work` is held for one step (batch, encode, sign, send, apply), so at most one
 * request is in flight per flusher and the transport (not thread-safe) has one user. `mu`
 * guards the wake-up state and the statistics and is only ever held for a few instructions,
 * so flusher_notify() and flusher_stats() never wait on the network. No queue write
 * transaction is open while a request is in flight: batch_next copies what it takes, and the
 * verdicts are applied afterwards in one queue_delete().
 *
 * Batches split for a 413 or bisected for a whole-request 400 wait on a small stack
 * (`pending`) and are sent before anything new is taken from the queue; a batch that has to be
 * retried later goes back on the stack, so a bisection survives a throttle in its middle.
 */
#include "flusher.h"
#include "meter.h"
#include "policy.h"
#include "seal.h"

#include <cjson/cJSON.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "port.h"
#include "record.h"
#include "service.h"
#include "sigv4.h"
#include "wire.h"

#define FL_DEFAULT_INTERVAL_MS 30000u
#define FL_DEFAULT_THRESHOLD 100u
#define FL_DEFAULT_AGE_MS (30ull * 24 * 3600 * 1000)
#define FL_DEFAULT_BACKOFF_BASE_MS 1000u
#define FL_DEFAULT_BACKOFF_CAP_MS 300000u
/* Expired events are looked for at the start of each cycle and at least this often. */
#define FL_EXPIRE_PERIOD_MS 60000u
#define FL_EXPIRE_SCAN_MAX 1024u
#define FL_EXPIRE_PASSES 64
/* The status in meta is rewritten on any change of error or backoff, else at most this often. */
#define FL_STATUS_PERIOD_MS 1000u
/* How often the flusher counts the store for events recorded by other processes where it
 * cannot watch the store's data file (port_watch_file() 0); where it can, how long after one
 * write it lets further writes come without waking (a busy store wakes it at most this often,
 * as the count did). */
#define FL_STORE_POLL_MS 1000u
/* After a 413 the batches stay at the size that was accepted; after this many full-size
 * batches accepted in a row, the flusher tries twice the size (up to the configured limits). */
#define FL_GROW_AFTER 16u

typedef enum step_result {
    STEP_EMPTY,   /* nothing left to send */
    STEP_MORE,    /* sent (or split); go on at once */
    STEP_BACKOFF, /* wait until backoff_until_mono */
} step_result_t;

struct flusher {
    evrec_queue_t *q;
    flusher_config_t cfg; /* its strings are the caller's (the agent's options): borrowed */
    creds_t *creds;
    transport_t *tp;
    sigv4_key_cache_t keys;
    const service_ops_t *svc; /* the backend: limits, path, headers, body, answers */
    service_ctx_t sctx;       /* what the backend reads of the configuration */
    char target_hdr[128];
    char ctype_hdr[96];
    char *url;       /* endpoint URL + operation path */
    char *sign_path; /* the path as it goes on the wire */
    char host[256];
    /* Retry state and the clock offset (service time minus device time): policy.c's. */
    policy_state_t pol;

    /* Scratch kept off the stack (small-stack devices): wiped after each signing. */
    evrec_credentials_t cred;
    sigv4_signature_t sig;
    char date_hdr[64];
    char auth_hdr[1100];
    char token_hdr[4200];
    char err[512];

    /* Work state (under `work`). */
    batch_t *pending;
    size_t npending, cap_pending;
    uint64_t next_expire_mono;
    int expire_due;
    /* Learnt from a 413 (0: none): the largest batch to send, in events and body bytes. */
    uint32_t learnt_events;
    size_t learnt_bytes;
    uint32_t learnt_ok; /* full-size batches accepted in a row since */
    size_t last_body_len;
    /* The request in flight (flusher_poll_budget: it advances across calls). */
    int inflight;
    batch_t fly;
    char *fly_body;
    size_t fly_len;
    uint64_t fly_t0;
    transport_response_t fly_resp;

    port_mutex_t *work;
    port_mutex_t *mu;
    /* The thread sleeps on it: poked by this process (a record, a flush, stopping), woken by
     * writes to the store's data file (other processes' records). */
    port_watch_t *watch;
    uint64_t quiet_until; /* the thread: store writes do not wake it before (FL_STORE_POLL_MS) */
    int fds_asked;        /* manual: an event loop waits on the watch (flusher_poll_fds) */
    port_cond_t *idle; /* signals flush waiters */
    port_thread_t *thread;

    /* Wake-up state (under `mu`). */
    int stopping;
    int draining;
    uint32_t notified;
    uint64_t flush_gen; /* flushes asked for */
    uint64_t empty_gen; /* the flush_gen seen at the start of a step that found nothing to do */
    uint64_t next_interval_mono;
    uint64_t backoff_until_mono; /* 0: not backing off */
    int was_empty;               /* due_locked last saw nothing queued, at empty_seen_mono */
    uint64_t empty_seen_mono;

    /* Statistics (under `mu`). */
    uint64_t requests, retries;
    int64_t last_upload_ms;
    int64_t backoff_until_wall;
    int last_error;
    char last_error_message[256];
    int persisted_error;
    int64_t persisted_backoff;
    uint64_t persisted_mono;
    uint64_t persisted_requests, persisted_retries;
    int64_t persisted_upload;
    int64_t started_wall; /* when this flusher took the role */
    /* The store's queue as last counted: the threshold counts events recorded by any process
     * (evrec record, other agents), not only this agent's notifications. */
    uint64_t store_queued, left_after_drain;
    /* Metered links: the day's spending (kept in the store's meta), and requests held back. */
    meter_t meter;
    int deferred;           /* the wait in backoff_until_* is a deferral, not a backoff */
    uint64_t deferred_gen;  /* flush_gen when deferred: a later evrec_flush() asks again */
    uint64_t deferrals, deferred_events;
};

/* -- small helpers ---------------------------------------------------------------------- */

static int copy_config(flusher_t *f, const flusher_config_t *in)
{
    f->cfg = *in;
    flusher_config_t *c = &f->cfg;
    if (c->flush_interval_ms == 0)
        c->flush_interval_ms = FL_DEFAULT_INTERVAL_MS;
    if (c->flush_threshold_events == 0)
        c->flush_threshold_events = FL_DEFAULT_THRESHOLD;
    uint32_t service_max = f->svc->rules.max_events;
    if (c->max_batch_events == 0 || c->max_batch_events > service_max)
        c->max_batch_events = service_max;
    if (c->max_request_bytes == 0 || c->max_request_bytes > f->svc->rules.max_bytes)
        c->max_request_bytes = f->svc->rules.max_bytes;
    if (c->max_event_age_ms == 0)
        c->max_event_age_ms = FL_DEFAULT_AGE_MS;
    if (c->backoff.base_ms == 0)
        c->backoff.base_ms = FL_DEFAULT_BACKOFF_BASE_MS;
    if (c->backoff.cap_ms == 0)
        c->backoff.cap_ms = FL_DEFAULT_BACKOFF_CAP_MS;
    if (!c->creds.region)
        c->creds.region = c->region;
    if (!c->creds.queue)
        c->creds.queue = f->q;
    return EVREC_OK;
}

/* Copy with truncation (messages are informative; a cut one is better than none). */
static void copy_text(char *dst, size_t dstlen, const char *src)
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

static uint32_t next_random(flusher_t *f)
{
    if (f->cfg.rand_fn)
        return f->cfg.rand_fn(f->cfg.rand_user);
    uint32_t r = 0;
    if (port_random(&r, sizeof r) != 0)
        r = (uint32_t)port_monotonic_us();
    return r;
}

static int64_t service_now_ms(const flusher_t *f)
{
    return port_clock_wall_ms(f->cfg.clock) + f->pol.clock_offset_ms;
}

/* Credentials' expiry is judged on the same corrected clock as signing: their expiration
 * times are the provider's (server) time. Called on the flusher thread. */
static int64_t creds_clock(void *user)
{
    return service_now_ms(user);
}

/* The clock offset is stored as 8 little-endian bytes; decimal text is accepted too so a
 * hand-edited or older store still reads. */
static void load_clock_offset(flusher_t *f)
{
    char *v = NULL;
    size_t len = 0;
    if (queue_meta_get(f->q, QUEUE_META_CLOCK_OFFSET, &v, &len) != EVREC_OK || !v)
        return;
    if (len == 8) {
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--)
            u = (u << 8) | (unsigned char)v[i];
        f->pol.clock_offset_ms = (int64_t)u;
    } else {
        f->pol.clock_offset_ms = strtoll(v, NULL, 10);
    }
    port_free(v);
}

static int store_clock_offset(flusher_t *f)
{
    unsigned char b[8];
    uint64_t u = (uint64_t)f->pol.clock_offset_ms;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(u >> (8 * i));
    return queue_meta_put(f->q, QUEUE_META_CLOCK_OFFSET, b, sizeof b);
}

/* Split endpoint_url into the request URL and the path to sign (a base path in the URL, as
 * some proxies need, is kept in front of the operation's path). */
static int build_url(flusher_t *f)
{
    char *op = NULL;
    int rc = f->svc->path(&f->sctx, &op);
    if (rc)
        return rc;
    const char *u = f->cfg.endpoint_url;
    size_t ulen = strlen(u);
    while (ulen > 0 && u[ulen - 1] == '/')
        ulen--;
    const char *scheme_end = strstr(u, "://");
    const char *base = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
    if (base && (size_t)(base - u) > ulen)
        base = NULL;
    size_t base_len = base ? ulen - (size_t)(base - u) : 0;
    size_t oplen = strlen(op);
    f->url = port_malloc(ulen + oplen + 1);
    f->sign_path = port_malloc(base_len + oplen + 1);
    if (!f->url || !f->sign_path) {
        port_free(op);
        return EVREC_E_NOMEM;
    }
    memcpy(f->url, u, ulen);
    memcpy(f->url + ulen, op, oplen + 1);
    if (base_len)
        memcpy(f->sign_path, base, base_len);
    memcpy(f->sign_path + base_len, op, oplen + 1);
    port_free(op);
    return transport_url_host(f->url, f->host, sizeof f->host);
}

/* -- status and statistics -------------------------------------------------------------- */

/* Record an error for flusher_stats() (call with mu held). */
static void set_error_locked(flusher_t *f, int code, const char *msg)
{
    f->last_error = code;
    copy_text(f->last_error_message, sizeof f->last_error_message, msg);
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
static uint64_t status_wait_locked(const flusher_t *f, uint64_t now)
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
static void persist_status(flusher_t *f, int force)
{
    port_mutex_lock(f->mu);
    uint64_t now = port_clock_monotonic_ms(f->cfg.clock);
    if (!force && status_wait_locked(f, now) != 0) {
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
        int rc = queue_meta_put(f->q, QUEUE_META_STATUS, s, strlen(s));
        if (rc)
            log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: cannot persist status: %s",
                    evrec_strerror(rc));
        cJSON_free(s);
    }
}

/* -- delivery callback ------------------------------------------------------------------ */

static void report(flusher_t *f, const char *event_id, const char *endpoint_id,
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

static void report_evicted(flusher_t *f)
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
            report(f, e->ids[2 * i], e->ids[2 * i + 1], EVREC_OUTCOME_DROPPED, 0, "expired");
    }
    return rc;
}

/* Drop events older than max_event_age_ms. With a delivery callback the ids are needed, so
 * the queue is scanned in passes of FL_EXPIRE_SCAN_MAX events (a pass that comes back full
 * is followed by another, up to FL_EXPIRE_PASSES); without one, queue_expire does it. */
static void expire_old(flusher_t *f, int64_t cutoff_ms)
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
static int64_t expiry_cutoff(const flusher_t *f)
{
    int64_t now = port_clock_wall_ms(f->cfg.clock);
    if ((uint64_t)now <= f->cfg.max_event_age_ms)
        return 0;
    return now - (int64_t)f->cfg.max_event_age_ms;
}

/* -- pending batches -------------------------------------------------------------------- */

static int pending_push(flusher_t *f, batch_t *b)
{
    if (f->npending == f->cap_pending) {
        size_t cap = f->cap_pending ? 2 * f->cap_pending : 8;
        batch_t *p = port_realloc(f->pending, cap * sizeof *p);
        if (!p) {
            batch_free(b);
            return EVREC_E_NOMEM;
        }
        f->pending = p;
        f->cap_pending = cap;
    }
    f->pending[f->npending++] = *b;
    memset(b, 0, sizeof *b);
    return EVREC_OK;
}

/* Free a batch and leave it empty, so that a later back_off() does not keep it. */
static void discard(batch_t *b)
{
    batch_free(b);
    memset(b, 0, sizeof *b);
}

static void pending_clear(flusher_t *f)
{
    for (size_t i = 0; i < f->npending; i++)
        batch_free(&f->pending[i]);
    f->npending = 0;
}

/* -- one request ------------------------------------------------------------------------ */

static int profile_lookup(void *user, const char *endpoint_id, char **json)
{
    flusher_t *f = user;
    uint32_t version = 0;
    *json = NULL;
    int rc = queue_endpoint_get(f->q, endpoint_id, json, &version);
    if (rc == EVREC_E_NOT_FOUND) {
        *json = NULL;
        return EVREC_OK;
    }
    return rc;
}

typedef struct encoding {
    flusher_t *f;
    char *body;
    size_t len;
} encoding_t;

/* Called with the batch's fragments pointing into the store (batch_with_fragments). */
static int encode_with(void *user, batch_t *b)
{
    encoding_t *e = user;
    flusher_t *f = e->f;
    f->sctx.now_ms = service_now_ms(f);
    return f->svc->encode(&f->sctx, b, &e->body, &e->len);
}

/* The request body for b, built straight from the stored fragments. Events that left the
 * queue since the batch was taken are dropped from b; EVREC_E_NOT_FOUND if none is left. */
static int encode(flusher_t *f, batch_t *b, char **body, size_t *len)
{
    encoding_t e = { f, NULL, 0 };
    int rc = batch_with_fragments(f->q, b, encode_with, &e);
    if (rc != EVREC_OK) {
        port_free(e.body);
        return rc;
    }
    *body = e.body;
    *len = e.len;
    return EVREC_OK;
}

static void wipe_secrets(flusher_t *f)
{
    mbedtls_platform_zeroize(&f->cred, sizeof f->cred);
    mbedtls_platform_zeroize(&f->sig, sizeof f->sig);
    mbedtls_platform_zeroize(f->auth_hdr, sizeof f->auth_hdr);
    mbedtls_platform_zeroize(f->token_hdr, sizeof f->token_hdr);
}

/* Sign one body; headers[6] gets the request's header lines (NULL-terminated). */
static int sign_request(flusher_t *f, const char *body, size_t len, const char **headers)
{
    f->err[0] = '\0';
    int rc = creds_get(f->creds, &f->cred, f->err, sizeof f->err);
    if (rc) {
        wipe_secrets(f);
        return rc;
    }
    const sigv4_header_t hs[] = { { "Host", f->host },
                                  { "Content-Type", f->svc->content_type },
                                  { "X-Amz-Target", f->svc->target } };
    sigv4_request_t req = { 0 };
    req.method = "POST";
    req.path = f->sign_path;
    req.headers = hs;
    req.nheaders = f->svc->target ? 3 : 2;
    req.body = body;
    req.body_len = len;
    sigv4_params_t p = { 0 };
    p.region = f->cfg.region;
    p.service = f->svc->signing_name;
    p.unix_ms = service_now_ms(f);
    const char *token = f->cred.session_token[0] ? f->cred.session_token : NULL;
    sigv4_credentials_t sc = { f->cred.access_key_id, f->cred.secret_access_key, token };
    rc = sigv4_sign(&f->keys, &req, &p, &sc, &f->sig);
    if (rc) {
        wipe_secrets(f);
        snprintf(f->err, sizeof f->err, "signing the request failed: %s", evrec_strerror(rc));
        return rc;
    }
    snprintf(f->date_hdr, sizeof f->date_hdr, "X-Amz-Date: %s", f->sig.amz_date);
    snprintf(f->auth_hdr, sizeof f->auth_hdr, "Authorization: %s", f->sig.authorization);
    size_t nh = 0;
    headers[nh++] = f->ctype_hdr;
    if (f->svc->target)
        headers[nh++] = f->target_hdr;
    headers[nh++] = f->date_hdr;
    headers[nh++] = f->auth_hdr;
    if (token) {
        snprintf(f->token_hdr, sizeof f->token_hdr, "X-Amz-Security-Token: %s", token);
        headers[nh++] = f->token_hdr;
    }
    headers[nh] = NULL;
    return EVREC_OK;
}

/* What went out, as libcurl sent it: none when no connection was made, two when it resent
 * the request on a fresh connection after a kept-alive one died. */
static void count_sent(flusher_t *f, const transport_response_t *resp)
{
    port_mutex_lock(f->mu);
    f->requests += resp->sent;
    port_mutex_unlock(f->mu);
}

/* Sign and send one body. EVREC_OK when an HTTP answer arrived (any status). */
static int sign_and_send(flusher_t *f, const char *body, size_t len,
                         transport_response_t *resp)
{
    const char *headers[6];
    int rc = sign_request(f, body, len, headers);
    if (rc)
        return rc;
    rc = transport_send(f->tp, "POST", f->url, headers, body, len, resp, f->err,
                        sizeof f->err);
    count_sent(f, resp);
    wipe_secrets(f);
    return rc;
}

/* Carry out a wait the policy decided: the batch is kept (pushed back to go first), the
 * error and the wait are published. */
static step_result_t wait_as_decided(flusher_t *f, batch_t *b, const policy_action_t *a,
                                     const char *msg)
{
    int code = a->code;
    uint64_t delay = a->delay_ms;
    if (b->n > 0 && pending_push(f, b) != EVREC_OK)
        log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: out of memory keeping a batch");
    port_mutex_lock(f->mu);
    f->retries++;
    f->backoff_until_mono = port_clock_monotonic_ms(f->cfg.clock) + delay;
    if (f->backoff_until_mono == 0)
        f->backoff_until_mono = 1;
    f->backoff_until_wall = port_clock_wall_ms(f->cfg.clock) + (int64_t)delay;
    set_error_locked(f, code, msg);
    port_mutex_unlock(f->mu);
    log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: %s (%s); retrying in %llu ms",
            msg && *msg ? msg : evrec_strerror(code), evrec_strerror(code),
            (unsigned long long)delay);
    return STEP_BACKOFF;
}

/* A failure with no answer to judge (network, store, encoding): back off, keeping the batch. */
static step_result_t back_off(flusher_t *f, batch_t *b, int code, const char *msg,
                              int64_t retry_after_ms)
{
    policy_action_t a = policy_back_off(&f->pol, &f->cfg.backoff, code, retry_after_ms,
                                        next_random(f));
    return wait_as_decided(f, b, &a, msg);
}

static void clear_backoff(flusher_t *f)
{
    port_mutex_lock(f->mu);
    f->backoff_until_mono = 0;
    f->backoff_until_wall = 0;
    f->deferred = 0;
    f->deferred_events = 0;
    port_mutex_unlock(f->mu);
}

/* -- metered links ---------------------------------------------------------------------- */

static void load_meter(flusher_t *f)
{
    f->meter.budget = f->cfg.daily_upload_bytes;
    char *v = NULL;
    size_t len = 0;
    if (queue_meta_get(f->q, QUEUE_META_UPLOAD_BUDGET, &v, &len) == EVREC_OK &&
        meter_parse(&f->meter, v, len) != 0)
        log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: the stored upload budget is unreadable; "
                                             "counting today from zero");
    port_free(v);
}

/* Count a request body that went (or may have gone) over the link, and keep the count. */
static void meter_sent(flusher_t *f, size_t len)
{
    char text[64];
    port_mutex_lock(f->mu);
    meter_spend(&f->meter, len, port_clock_wall_ms(f->cfg.clock));
    meter_format(&f->meter, text, sizeof text);
    port_mutex_unlock(f->mu);
    int rc = queue_meta_put(f->q, QUEUE_META_UPLOAD_BUDGET, text, strlen(text));
    if (rc)
        log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: cannot keep the upload count: %s",
                evrec_strerror(rc));
}

/* How long to hold this request back for the limits of a metered link (0: send it now). */
static uint64_t metered_hold(flusher_t *f, size_t len, const char **why)
{
    if (f->cfg.upload_allowed && !f->cfg.upload_allowed(f->cfg.upload_allowed_user)) {
        *why = "upload_allowed says not now";
        return f->cfg.flush_interval_ms;
    }
    *why = "the daily upload budget is spent";
    port_mutex_lock(f->mu);
    uint64_t wait = meter_wait_ms(&f->meter, len, port_clock_wall_ms(f->cfg.clock));
    port_mutex_unlock(f->mu);
    return wait;
}

/* Hold the queue back for wait_ms: not an error and no backoff attempt; the events stay
 * queued (the batch is let go and made again) and are counted. An evrec_flush() asks again. */
static step_result_t defer(flusher_t *f, batch_t *b, uint64_t wait_ms, const char *why)
{
    discard(b);
    uint64_t queued = queue_count(f->q);
    port_mutex_lock(f->mu);
    int first = !f->deferred;
    f->deferred = 1;
    f->deferred_gen = f->flush_gen;
    f->deferrals++;
    f->deferred_events = queued;
    f->backoff_until_mono = port_clock_monotonic_ms(f->cfg.clock) + wait_ms;
    f->backoff_until_wall = port_clock_wall_ms(f->cfg.clock) + (int64_t)wait_ms;
    port_mutex_unlock(f->mu);
    log_msg(&f->cfg.log, first ? EVREC_LOG_INFO : EVREC_LOG_DEBUG,
            "flusher: %s: %llu events stay queued; asking again in %llu ms", why,
            (unsigned long long)queued, (unsigned long long)wait_ms);
    return STEP_BACKOFF;
}

/* Delete exactly the events the service answered for, with their counts, then tell the
 * caller. Returns how many were kept for a later retry (or a negative code). */
static long apply_verdicts(flusher_t *f, const batch_t *b, const wire_result_t *r,
                           size_t *rejected)
{
    uint64_t *seqs = port_malloc((b->n ? b->n : 1) * sizeof *seqs);
    if (!seqs)
        return EVREC_E_NOMEM;
    size_t m = 0, accepted = 0, kept = 0;
    *rejected = 0;
    for (size_t i = 0; i < b->n; i++) {
        wire_verdict_t v = i < r->n ? r->verdicts[i] : WIRE_KEEP;
        if (v == WIRE_ACCEPTED)
            accepted++;
        else if (v == WIRE_REJECTED)
            (*rejected)++;
        else {
            kept++;
            continue;
        }
        seqs[m++] = b->events[i].seq;
    }
    int rc = EVREC_OK;
    if (m > 0) {
        queue_count_t counts[2] = { { QC_DELIVERED, accepted }, { QC_REJECTED, *rejected } };
        rc = queue_delete(f->q, seqs, m, counts, 2);
    }
    port_free(seqs);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->n && i < r->n; i++) {
        const batch_event_t *e = &b->events[i];
        int status = r->status ? r->status[i] : 0;
        const char *msg = r->messages && r->messages[i] ? r->messages[i] : "";
        if (r->verdicts[i] == WIRE_ACCEPTED) {
            report(f, e->event_id, e->endpoint_id, EVREC_OUTCOME_ACCEPTED, status, "");
        } else if (r->verdicts[i] == WIRE_REJECTED) {
            log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: event %s rejected (%d): %s",
                    e->event_id, status, msg);
            report(f, e->event_id, e->endpoint_id, EVREC_OUTCOME_REJECTED, status, msg);
        }
    }
    return (long)kept;
}

/* A single event that the service refuses as a whole request: drop only it. */
static step_result_t drop_poison(flusher_t *f, batch_t *b, int status, const char *message)
{
    const batch_event_t *e = &b->events[0];
    queue_count_t c = { QC_POISON, 1 };
    int rc = queue_delete(f->q, &e->seq, 1, &c, 1);
    if (rc) {
        snprintf(f->err, sizeof f->err, "cannot drop a poison event: %s", evrec_strerror(rc));
        return back_off(f, b, rc, f->err, -1);
    }
    char reason[600] = "poison: ";
    copy_text(reason + 8, sizeof reason - 8, message && *message ? message : "rejected");
    log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: event %s dropped (%d) %s", e->event_id,
            status, reason);
    report(f, e->event_id, e->endpoint_id, EVREC_OUTCOME_DROPPED, status, reason);
    port_mutex_lock(f->mu);
    set_error_locked(f, EVREC_E_REJECTED, reason);
    port_mutex_unlock(f->mu);
    discard(b);
    return STEP_MORE;
}

/* 413 or a whole-request 400: send the halves separately (the head first). */
static step_result_t split(flusher_t *f, batch_t *b, long status, const char *message)
{
    if (b->n <= 1)
        return drop_poison(f, b, (int)status, message);
    batch_t tail;
    memset(&tail, 0, sizeof tail);
    int rc = batch_split(b, b->n / 2, &tail);
    if (rc == EVREC_OK) {
        log_msg(&f->cfg.log, EVREC_LOG_INFO, "flusher: %ld for %zu events; splitting", status,
                b->n + tail.n);
        rc = pending_push(f, &tail);
        if (rc == EVREC_OK)
            rc = pending_push(f, b);
    }
    if (rc) {
        batch_free(&tail);
        snprintf(f->err, sizeof f->err, "cannot split a batch: %s", evrec_strerror(rc));
        return back_off(f, b, rc, f->err, -1);
    }
    return STEP_MORE;
}

static void request_error_message(flusher_t *f, const transport_response_t *resp,
                                  const wire_result_t *r)
{
    int n = snprintf(f->err, sizeof f->err, "HTTP %ld%s%.127s", resp->status,
                     r->error_type[0] ? " " : "", r->error_type);
    if (n > 0 && r->message[0] && (size_t)n + 2 < sizeof f->err) {
        memcpy(f->err + n, ": ", 3);
        copy_text(f->err + n + 2, sizeof f->err - (size_t)n - 2, r->message);
    }
}

/* A 413 for n events in a body of last_body_len bytes: from now on batches hold at most half
 * of them, in fewer bytes than that body (the halves are sent next). */
static void learn_too_large(flusher_t *f, size_t n)
{
    uint32_t events = n > 1 ? (uint32_t)(n / 2) : 1;
    if (!f->learnt_events || events < f->learnt_events)
        f->learnt_events = events;
    if (f->last_body_len > 1 && (!f->learnt_bytes || f->last_body_len - 1 < f->learnt_bytes))
        f->learnt_bytes = f->last_body_len - 1;
    f->learnt_ok = 0;
    log_msg(&f->cfg.log, EVREC_LOG_INFO,
            "flusher: 413 for %zu events (%zu bytes); batches now hold at most %u events, "
            "%zu bytes", n, f->last_body_len, f->learnt_events, f->learnt_bytes);
}

/* An accepted batch: after FL_GROW_AFTER full-size ones in a row, try twice the size. */
static void learn_accepted(flusher_t *f, size_t n)
{
    if (!f->learnt_events || n < f->learnt_events)
        return;
    if (++f->learnt_ok < FL_GROW_AFTER)
        return;
    f->learnt_ok = 0;
    f->learnt_events *= 2;
    f->learnt_bytes = f->learnt_bytes > f->cfg.max_request_bytes / 2 ? f->cfg.max_request_bytes
                                                                      : 2 * f->learnt_bytes;
    if (f->learnt_events >= f->cfg.max_batch_events &&
        f->learnt_bytes >= f->cfg.max_request_bytes) {
        f->learnt_events = 0; /* back to the configured limits */
        f->learnt_bytes = 0;
    }
}

static policy_outcome_t outcome_of(wire_outcome_t o)
{
    switch (o) {
    case WIRE_OK:
        return PO_ANSWERED;
    case WIRE_THROTTLED:
        return PO_THROTTLED;
    case WIRE_RETRY:
        return PO_RETRY;
    case WIRE_TOO_LARGE:
        return PO_TOO_LARGE;
    case WIRE_BAD_REQUEST:
        return PO_BAD_REQUEST;
    case WIRE_CLOCK_SKEW:
        return PO_CLOCK_SKEW;
    case WIRE_EXPIRED_TOKEN:
        return PO_EXPIRED_TOKEN;
    case WIRE_AUTH:
        return PO_AUTH;
    }
    return PO_RETRY;
}

/* Events the service has not answered for yet (they stay queued). */
static size_t count_kept(const batch_t *b, const wire_result_t *r)
{
    size_t kept = 0;
    for (size_t i = 0; i < b->n; i++) {
        wire_verdict_t v = i < r->n ? r->verdicts[i] : WIRE_KEEP;
        if (v != WIRE_ACCEPTED && v != WIRE_REJECTED)
            kept++;
    }
    return kept;
}

/* PA_DELETE: delete what the service answered for, publish the success, and wait before the
 * kept events if the policy says so. A store failure is judged on the state from before. */
static step_result_t delivered(flusher_t *f, batch_t *b, const wire_result_t *r,
                               const policy_action_t *a, const policy_state_t *before)
{
    learn_accepted(f, b->n);
    size_t rejected = 0;
    long kept = apply_verdicts(f, b, r, &rejected);
    if (kept < 0) {
        f->pol = *before;
        snprintf(f->err, sizeof f->err, "cannot delete delivered events: %s",
                 evrec_strerror((int)kept));
        return back_off(f, b, (int)kept, f->err, -1);
    }
    port_mutex_lock(f->mu);
    f->last_upload_ms = port_clock_wall_ms(f->cfg.clock);
    if (rejected)
        snprintf(f->last_error_message, sizeof f->last_error_message,
                 "%zu events rejected by the service", rejected);
    else
        f->last_error_message[0] = '\0';
    f->last_error = rejected ? EVREC_E_REJECTED : EVREC_OK;
    port_mutex_unlock(f->mu);
    if (a->back_off_after) {
        /* The kept events are still queued and are picked up again after the wait. */
        snprintf(f->err, sizeof f->err, "%ld events not accepted yet%s%s; will retry", kept,
                 r->error_type[0] ? ": " : "", r->error_type);
        discard(b);
        return wait_as_decided(f, b, a, f->err);
    }
    clear_backoff(f);
    discard(b);
    return STEP_MORE;
}

/* PA_RETRY_NOW: refresh the credentials or keep the corrected clock, and resend at once. */
static step_result_t retry_now(flusher_t *f, batch_t *b, const policy_action_t *a,
                               const policy_state_t *before)
{
    if (a->refresh_credentials) {
        creds_invalidate(f->creds);
        log_msg(&f->cfg.log, EVREC_LOG_INFO, "flusher: credentials expired; refreshing");
    } else if (a->clock_held) {
        log_msg(&f->cfg.log, EVREC_LOG_WARN,
                "flusher: clock skew reported; offset %lld ms -> %lld ms held until "
                "a second answer agrees",
                (long long)before->clock_offset_ms, (long long)a->proposed_offset_ms);
    } else if (a->clock_changed) {
        int rc = store_clock_offset(f);
        log_msg(&f->cfg.log, EVREC_LOG_WARN,
                "flusher: clock skew reported; offset %lld ms -> %lld ms%s",
                (long long)before->clock_offset_ms, (long long)f->pol.clock_offset_ms,
                rc ? " (not persisted)" : "");
    }
    (void)pending_push(f, b); /* on failure the events are still queued */
    return STEP_MORE;
}

/* The service answered: the policy (DESIGN §4, policy.c) decides, this carries it out. */
static step_result_t judge(flusher_t *f, batch_t *b, const transport_response_t *resp,
                           const wire_result_t *r)
{
    policy_outcome_t o = outcome_of(r->outcome);
    policy_facts_t facts = {
        .events = b->n,
        .kept = o == PO_ANSWERED ? count_kept(b, r) : 0,
        .kept_throttled = r->kept_throttled,
        .status = resp->status,
        .retry_after_ms = resp->retry_after_ms,
        .server_date_ms = resp->date_ms,
    };
    if (o != PO_ANSWERED)
        request_error_message(f, resp, r);
    policy_state_t before = f->pol;
    policy_action_t a = policy_decide(&f->pol, &f->cfg.backoff, o, &facts, port_clock_wall_ms(f->cfg.clock),
                                      next_random(f));
    const char *why = r->message[0] ? r->message : f->err;
    switch (a.verb) {
    case PA_DELETE:
        return delivered(f, b, r, &a, &before);
    case PA_SPLIT:
    case PA_DROP_POISON:
        if (a.learn_too_large)
            learn_too_large(f, b->n);
        return a.verb == PA_SPLIT ? split(f, b, resp->status, why)
                                  : drop_poison(f, b, (int)resp->status, why);
    case PA_RETRY_NOW:
        return retry_now(f, b, &a, &before);
    case PA_BACK_OFF:
        break;
    }
    return wait_as_decided(f, b, &a, f->err);
}

/* Encode b for sending: 1 with *body and *len, or 0 when the step ends here (*s says how). */
static int prepare_body(flusher_t *f, batch_t *b, char **body, size_t *len, step_result_t *s)
{
    *body = NULL;
    *len = 0;
    int rc = encode(f, b, body, len);
    if (rc == EVREC_E_NOT_FOUND) {
        discard(b); /* every event of it was evicted or deleted meanwhile */
        *s = STEP_MORE;
        return 0;
    }
    if (rc == EVREC_E_EVENT_SIZE) {
        /* As encoded, a record (or the request) is over the service's limits: halves are
         * tried until the one record that can never go is dropped alone. */
        policy_facts_t facts = { .events = b->n, .retry_after_ms = -1 };
        policy_action_t a = policy_decide(&f->pol, &f->cfg.backoff, PO_OVERSIZE, &facts,
                                          port_clock_wall_ms(f->cfg.clock), 0);
        if (a.verb == PA_DROP_POISON)
            *s = drop_poison(f, b, 0, "the record is over the service's record size limit");
        else
            *s = split(f, b, 0, "request over the service's limits");
        return 0;
    }
    if (rc) {
        snprintf(f->err, sizeof f->err, "cannot encode a request: %s", evrec_strerror(rc));
        *s = back_off(f, b, rc, f->err, -1);
        return 0;
    }
    const char *why = NULL;
    uint64_t hold = metered_hold(f, *len, &why);
    if (hold) {
        port_free(*body);
        *body = NULL;
        *s = defer(f, b, hold, why);
        return 0;
    }
    return 1;
}

/* The exchange of b ended with rc (and resp when EVREC_OK): read it and carry out the
 * verdicts. Clears resp. */
static step_result_t after_send(flusher_t *f, batch_t *b, int rc, transport_response_t *resp,
                                size_t len, uint64_t t0)
{
    meter_sent(f, len);
    if (rc) {
        char msg[sizeof f->err];
        copy_text(msg, sizeof msg, f->err[0] ? f->err : evrec_strerror(rc));
        transport_response_clear(resp);
        return back_off(f, b, rc, msg, -1);
    }
    log_msg(&f->cfg.log, EVREC_LOG_DEBUG,
            "flusher: POST %s: %zu events, %zu bytes -> %ld in %llu ms (request id %s)", f->url,
            b->n, len, resp->status,
            (unsigned long long)(port_clock_monotonic_ms(f->cfg.clock) - t0),
            resp->request_id[0] ? resp->request_id : "-");
    wire_result_t r;
    memset(&r, 0, sizeof r);
    rc = service_decode(b, resp->status, resp->error_type[0] ? resp->error_type : NULL,
                        resp->body, resp->body_len, &r);
    step_result_t s;
    if (rc) {
        snprintf(f->err, sizeof f->err, "cannot read the answer (HTTP %ld): %s", resp->status,
                 evrec_strerror(rc));
        s = back_off(f, b, EVREC_E_RESPONSE, f->err, resp->retry_after_ms);
    } else {
        s = judge(f, b, resp, &r);
    }
    wire_result_free(&r);
    transport_response_clear(resp);
    return s;
}

/* Send b and carry out the verdicts; async (flusher_poll_budget): only start it, and return
 * STEP_MORE with f->inflight set when it went out (advance_flight goes on from there). */
static step_result_t send_batch(flusher_t *f, batch_t *b, int async)
{
    char *body;
    size_t len;
    step_result_t s;
    if (!prepare_body(f, b, &body, &len, &s))
        return s;
    f->last_body_len = len;
    uint64_t t0 = port_clock_monotonic_ms(f->cfg.clock);
    if (!async) {
        transport_response_t resp;
        memset(&resp, 0, sizeof resp);
        int rc = sign_and_send(f, body, len, &resp);
        port_free(body);
        return after_send(f, b, rc, &resp, len, t0);
    }
    memset(&f->fly_resp, 0, sizeof f->fly_resp);
    const char *headers[6];
    int rc = sign_request(f, body, len, headers);
    if (rc == EVREC_OK)
        rc = transport_start(f->tp, "POST", f->url, headers, body, len, &f->fly_resp, f->err,
                             sizeof f->err);
    wipe_secrets(f);
    if (rc) {
        port_free(body);
        return after_send(f, b, rc, &f->fly_resp, len, t0);
    }
    f->fly = *b;
    f->fly_body = body;
    f->fly_len = len;
    f->fly_t0 = t0;
    f->inflight = 1;
    return STEP_MORE;
}

/* Advance the request in flight, waiting at most wait_ms; when it ended (*done), its
 * verdicts are carried out. */
static step_result_t advance_flight(flusher_t *f, uint32_t wait_ms, int *done)
{
    int d = 0;
    if (transport_advance(f->tp, wait_ms, &d) != EVREC_OK)
        d = 1;
    *done = d;
    if (!d)
        return STEP_MORE;
    int rc = transport_finish(f->tp, f->err, sizeof f->err);
    count_sent(f, &f->fly_resp);
    port_free(f->fly_body);
    f->fly_body = NULL;
    f->inflight = 0;
    batch_t b = f->fly;
    memset(&f->fly, 0, sizeof f->fly);
    step_result_t s = after_send(f, &b, rc, &f->fly_resp, f->fly_len, f->fly_t0);
    persist_status(f, 0);
    return s;
}

/* The request in flight, to its end (blocking: evrec_flush, evrec_poll, close). */
static step_result_t land_flight(flusher_t *f)
{
    int done = 0;
    step_result_t s = STEP_MORE;
    while (!done)
        s = advance_flight(f, 1000, &done);
    return s;
}

/* One bounded step: at most one request (async: started, not waited for). Called with
 * `work` held. */
static step_result_t step_as(flusher_t *f, int async)
{
    if (f->inflight)
        return land_flight(f);
    port_mutex_lock(f->mu);
    uint64_t gen = f->flush_gen;
    port_mutex_unlock(f->mu);

    int64_t cutoff = expiry_cutoff(f);
    uint64_t now = port_clock_monotonic_ms(f->cfg.clock);
    if (f->expire_due || now >= f->next_expire_mono) {
        f->expire_due = 0;
        f->next_expire_mono = now + FL_EXPIRE_PERIOD_MS;
        expire_old(f, cutoff);
    }

    batch_t b;
    memset(&b, 0, sizeof b);
    if (f->npending > 0) {
        b = f->pending[--f->npending];
    } else {
        batch_limits_t lim = { 0 };
        lim.rules = &f->svc->rules;
        lim.max_events = f->learnt_events && f->learnt_events < f->cfg.max_batch_events
                             ? f->learnt_events
                             : f->cfg.max_batch_events;
        lim.max_bytes = f->learnt_bytes && f->learnt_bytes < f->cfg.max_request_bytes
                            ? f->learnt_bytes
                            : f->cfg.max_request_bytes;
        lim.expire_before_ms = cutoff;
        lim.keys = f->cfg.keys;
        port_mutex_lock(f->mu);
        uint64_t budget_left = meter_left(&f->meter, port_clock_wall_ms(f->cfg.clock));
        port_mutex_unlock(f->mu);
        if (budget_left > 0 && budget_left < lim.max_bytes)
            lim.max_bytes = (size_t)budget_left; /* a batch that fits today's budget */
        int rc = batch_next(f->q, &lim, &b);
        if (rc) {
            discard(&b);
            snprintf(f->err, sizeof f->err, "cannot read the queue: %s", evrec_strerror(rc));
            return back_off(f, &b, rc, f->err, -1);
        }
        if (b.n == 0) {
            batch_free(&b);
            uint64_t left = queue_count(f->q); /* what this agent cannot send stays */
            port_mutex_lock(f->mu);
            if (gen > f->empty_gen)
                f->empty_gen = gen;
            f->draining = 0;
            f->left_after_drain = left;
            port_mutex_unlock(f->mu);
            port_cond_broadcast(f->idle);
            return STEP_EMPTY;
        }
    }
    step_result_t s = send_batch(f, &b, async);
    persist_status(f, 0);
    return s;
}

static step_result_t step(flusher_t *f)
{
    return step_as(f, 0);
}

/* -- scheduling ------------------------------------------------------------------------- */

/* Whether other processes' records wake the loop (the store's data file is watched), so
 * that it need not count the store on a timer: the thread always, an event loop once it waits
 * on the watch's descriptor (flusher_poll_fds). A store without a file has no other writer. */
static int watching(const flusher_t *f)
{
    return (!f->cfg.manual || f->fds_asked) &&
           (port_watch_file(f->watch) || queue_data_path(f->q) == NULL);
}

/* Whether a step is due now (mu held); if not, *wait_ms says how long until one may be.
 * Starting a cycle resets the threshold count and the interval and asks for an expiry pass. */
static int due_locked(flusher_t *f, uint64_t now, uint32_t tick_ms, uint64_t *wait_ms)
{
    uint64_t wait;
    int due = 0;
    if (f->backoff_until_mono > now && !(f->deferred && f->flush_gen > f->deferred_gen)) {
        wait = f->backoff_until_mono - now;
    } else {
        if (f->backoff_until_mono) {
            f->backoff_until_mono = 0;
            f->backoff_until_wall = 0;
        }
        f->deferred = 0;
        uint64_t waiting = f->store_queued > f->left_after_drain
                               ? f->store_queued - f->left_after_drain
                               : 0;
        /* Nothing queued and the loop is woken by what comes (watching): no interval timer.
         * The interval stays on its grid: its ticks while the queue was last seen empty
         * would have drained nothing, so what comes waits for the first tick after that look,
         * as it would have (not sent at once: devices must not fall into step). */
        int empty = watching(f) && f->store_queued == 0 && f->notified == 0 && !f->draining &&
                    f->flush_gen <= f->empty_gen;
        if (empty) {
            f->empty_seen_mono = now;
            f->was_empty = 1;
        } else if (f->was_empty) {
            f->was_empty = 0;
            f->next_interval_mono = backoff_next_tick(f->next_interval_mono, f->empty_seen_mono,
                                                      f->cfg.flush_interval_ms);
        }
        if (f->draining || f->flush_gen > f->empty_gen ||
            f->notified >= f->cfg.flush_threshold_events ||
            waiting >= f->cfg.flush_threshold_events || (!empty && now >= f->next_interval_mono)) {
            if (!f->draining) {
                f->draining = 1;
                f->notified = 0;
                /* on the phase's grid: an explicit flush (evrec agent starts with one) or the
                 * threshold must not pull the devices of a fleet back into step */
                f->next_interval_mono =
                    backoff_next_tick(f->next_interval_mono, now, f->cfg.flush_interval_ms);
                f->expire_due = 1;
            }
            due = 1;
        }
        wait = empty ? UINT64_MAX
                     : f->next_interval_mono > now ? f->next_interval_mono - now : 0;
    }
    if (wait > tick_ms)
        wait = tick_ms;
    if (wait == 0)
        wait = 1;
    *wait_ms = wait;
    return due;
}

/* Count the store's queue: events recorded by other processes wake the flusher at the
 * threshold too (noticed within a tick), not only this agent's own records. */
static void count_store(flusher_t *f)
{
    uint64_t n = queue_count(f->q);
    port_mutex_lock(f->mu);
    f->store_queued = n;
    if (n < f->left_after_drain) /* deleted or expired since: count from here */
        f->left_after_drain = n;
    port_mutex_unlock(f->mu);
}

/* The queue's own timers; where the store's data file cannot be watched, at least once a
 * second too: events other processes record are seen by counting the store (count_store), and
 * nothing else tells this process of them. Not while waiting out a backoff: the threshold does
 * not end one (only its expiry, an explicit flush or stopping, which wake the loop), so
 * counting the store then would wake it for nothing. */
static uint32_t store_tick(flusher_t *f)
{
    /* The thread leaves the queue's timed work (batched commits, fsyncs) to the agent's
     * ticker, which has it anyway: woken for it too, the flusher woke a second time after
     * each of its own writes (a retry's status, a delivery). Without threads (evrec_poll)
     * the caller's loop does it here. */
    uint32_t tick = f->cfg.manual ? queue_tick(f->q) : QUEUE_TICK_IDLE;
    if (watching(f))
        return tick;
    port_mutex_lock(f->mu);
    int backing_off = f->backoff_until_mono > port_clock_monotonic_ms(f->cfg.clock);
    port_mutex_unlock(f->mu);
    if (backing_off)
        return tick;
    return tick < FL_STORE_POLL_MS ? tick : FL_STORE_POLL_MS;
}

static step_result_t run_step(flusher_t *f)
{
    port_mutex_lock(f->work);
    step_result_t s = step(f);
    port_mutex_unlock(f->work);
    return s;
}

static void thread_main(void *arg)
{
    flusher_t *f = arg;
    int woke = 0;
    for (;;) {
        /* Take what woke the loop first, then look at everything afresh: a poke always comes
         * after the change it announces. A write is seen a moment before the writer's commit
         * can be read (LMDB publishes it in its lock file after writing the meta page), so
         * the count below may miss the last one: after a write the loop looks again when
         * the quiet time ends, whether or not more writes came. */
        woke |= port_watch_wait(f->watch, 1, 0);
        if (woke & PORT_WATCH_CHANGED)
            f->quiet_until = port_monotonic_ms() + FL_STORE_POLL_MS;
        woke = 0;
        uint32_t tick = store_tick(f);
        count_store(f);
        persist_status(f, 0);
        report_evicted(f);
        port_mutex_lock(f->mu);
        if (f->stopping) {
            port_mutex_unlock(f->mu);
            break;
        }
        uint64_t wait = 0, now = port_clock_monotonic_ms(f->cfg.clock);
        int due = due_locked(f, now, tick, &wait);
        if (!due) {
            uint64_t status_wait = status_wait_locked(f, now);
            if (status_wait < wait)
                wait = status_wait ? status_wait : 1;
            /* Store writes wake the loop, at most once per FL_STORE_POLL_MS (then it looks
             * again when that ends), and not in a backoff, which the threshold cannot end. */
            int listen = 0;
            if (port_watch_file(f->watch) && f->backoff_until_mono <= now) {
                uint64_t mono = port_monotonic_ms();
                listen = mono >= f->quiet_until;
                if (!listen && f->quiet_until - mono < wait)
                    wait = f->quiet_until - mono;
            }
            port_mutex_unlock(f->mu);
            woke = port_watch_wait(f->watch, listen,
                                   wait >= UINT32_MAX ? UINT32_MAX : (uint32_t)wait);
            continue;
        }
        port_mutex_unlock(f->mu);
        run_step(f);
    }
}

/* Manual mode: drain on the calling thread until empty (EVREC_OK) or the deadline. */
static int drain_here(flusher_t *f, uint64_t gen, uint32_t timeout_ms)
{
    uint64_t deadline = port_clock_monotonic_ms(f->cfg.clock) + timeout_ms;
    for (;;) {
        uint32_t tick = store_tick(f);
        count_store(f);
        port_mutex_lock(f->mu);
        int done = f->empty_gen >= gen;
        uint64_t now = port_clock_monotonic_ms(f->cfg.clock), wait = 0;
        int due = done ? 0 : due_locked(f, now, tick, &wait);
        port_mutex_unlock(f->mu);
        if (done)
            return EVREC_OK;
        if (now >= deadline)
            return EVREC_E_TIMEOUT;
        if (due) {
            run_step(f);
            continue;
        }
        uint64_t left = deadline - now;
        port_sleep_ms((uint32_t)(wait < left ? wait : left));
    }
}

/* -- public (internal) API -------------------------------------------------------------- */

static void flusher_free(flusher_t *f)
{
    if (!f)
        return;
    pending_clear(f);
    port_free(f->pending);
    if (f->inflight) { /* abandoned: its events stay queued */
        transport_finish(f->tp, NULL, 0);
        batch_free(&f->fly);
        port_free(f->fly_body);
        transport_response_clear(&f->fly_resp);
    }
    transport_free(f->tp);
    creds_free(f->creds);
    port_watch_free(f->watch);
    port_cond_free(f->idle);
    port_mutex_free(f->mu);
    port_mutex_free(f->work);
    port_free(f->url);
    port_free(f->sign_path);
    /* The struct holds the signing-key cache and the last credentials. */
    mbedtls_platform_zeroize(f, sizeof *f);
    port_free(f);
}

/* What the backend reads of the configuration (strings owned by f->cfg, or the caller's). */
static service_ctx_t service_ctx_of(const flusher_config_t *c)
{
    service_ctx_t s = { 0 };
    s.application_id = c->application_id;
    s.tracking_id = c->tracking_id;
    s.stream_name = c->stream_name;
    s.stream_arn = c->stream_arn;
    s.delivery_stream_name = c->delivery_stream_name;
    s.partition_key = c->partition_key;
    s.max_record_bytes = c->max_record_bytes;
    return s;
}

static int check_config(const flusher_config_t *c, char *err, size_t errlen)
{
    const service_ops_t *svc = service_get(c->service);
    if (svc == NULL) {
        snprintf(err, errlen, "service: unknown service %d", (int)c->service);
        return EVREC_E_CONFIG;
    }
    service_ctx_t sc = service_ctx_of(c);
    int rc = svc->check(&sc, err, errlen);
    if (rc)
        return rc;
    if (!c->region || !*c->region) {
        snprintf(err, errlen, "region: required");
        return EVREC_E_CONFIG;
    }
    if (!c->endpoint_url || !strstr(c->endpoint_url, "://")) {
        snprintf(err, errlen, "endpoint_url: missing or not a URL");
        return EVREC_E_CONFIG;
    }
    return EVREC_OK;
}

int flusher_new(flusher_t **out, evrec_queue_t *q, const flusher_config_t *cfg, char *err,
                size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (errlen)
        err[0] = '\0';
    if (!out || !q || !cfg) {
        snprintf(err, errlen, "flusher: out, queue and config are required");
        return EVREC_E_INVALID;
    }
    *out = NULL;
    int rc = check_config(cfg, err, errlen);
    if (rc)
        return rc;
    rc = queue_flusher_acquire(q);
    if (rc == EVREC_E_BUSY) {
        /* `evrec stats` asks whether the role is held by taking a shared lock for an instant:
         * look again once before concluding that another process runs the flusher. */
        port_sleep_ms(5);
        rc = queue_flusher_acquire(q);
    }
    if (rc) {
        if (rc == EVREC_E_BUSY)
            snprintf(err, errlen, "another process runs the flusher of %s", queue_dir(q));
        else
            snprintf(err, errlen, "cannot take the flusher role: %s", evrec_strerror(rc));
        return rc;
    }
    flusher_t *f = port_calloc(1, sizeof *f);
    if (!f) {
        queue_flusher_release(q);
        return EVREC_E_NOMEM;
    }
    f->q = q;
    f->svc = service_get(cfg->service);
    if (cfg->on_delivery)
        queue_report_evictions(q, 1);
    rc = copy_config(f, cfg);
    if (rc == EVREC_OK) {
        f->sctx = service_ctx_of(&f->cfg);
        f->sctx.profile = profile_lookup;
        f->sctx.profile_user = f;
        snprintf(f->ctype_hdr, sizeof f->ctype_hdr, "Content-Type: %s", f->svc->content_type);
        if (f->svc->target)
            snprintf(f->target_hdr, sizeof f->target_hdr, "X-Amz-Target: %s", f->svc->target);
    }
    if (rc == EVREC_OK)
        rc = build_url(f);
    if (rc) {
        snprintf(err, errlen, "endpoint_url: cannot build the request URL: %s",
                 evrec_strerror(rc));
        goto fail;
    }
    if (port_mutex_new(&f->work) || port_mutex_new(&f->mu) ||
        port_watch_new(queue_data_path(q), &f->watch) || port_cond_new(&f->idle)) {
        rc = EVREC_E_NOMEM;
        snprintf(err, errlen, "flusher: cannot create its locks");
        goto fail;
    }
    if (f->cfg.creds.now_ms == NULL) {
        f->cfg.creds.now_ms = creds_clock;
        f->cfg.creds.now_user = f;
    }
    rc = creds_new(&f->creds, &f->cfg.creds);
    if (rc) {
        snprintf(err, errlen, "credentials: %s", evrec_strerror(rc));
        goto fail;
    }
    rc = transport_new(&f->tp, &f->cfg.transport);
    if (rc) {
        snprintf(err, errlen, "transport: %s", evrec_strerror(rc));
        goto fail;
    }
    load_clock_offset(f);
    load_meter(f);
    f->started_wall = port_clock_wall_ms(f->cfg.clock);
    /* The periodic flush's phase is random: the first one comes between half an interval and
     * one and a half after the start, then every interval on that grid (due_locked keeps it
     * whatever else starts a drain), so devices that boot together do not flush together for
     * ever after (bench_herd). Events already queued wait for it, as they always did. */
    f->next_interval_mono =
        port_clock_monotonic_ms(f->cfg.clock) + backoff_phase_ms(f->cfg.flush_interval_ms, next_random(f));
    f->left_after_drain = f->store_queued = queue_count(q);
    f->expire_due = 1;
    persist_status(f, 1); /* `evrec stats` shows this flusher (pid, since) at once */
    if (!f->cfg.manual) {
        if (port_thread_start(&f->thread, thread_main, f) != 0) {
            rc = EVREC_E_NOMEM;
            snprintf(err, errlen, "flusher: cannot start its thread");
            goto fail;
        }
    }
    log_msg(&f->cfg.log, EVREC_LOG_INFO, "flusher: delivering to %s (%s)", f->url,
            f->cfg.manual ? "manual" : "thread");
    *out = f;
    return EVREC_OK;
fail:
    flusher_free(f);
    queue_flusher_release(q);
    return rc;
}

void flusher_notify(flusher_t *f)
{
    if (!f)
        return;
    port_mutex_lock(f->mu);
    f->notified++;
    /* the first one: the loop, asleep without a timer on an empty queue, arms the interval */
    int wake = f->notified == f->cfg.flush_threshold_events || f->notified == 1;
    port_mutex_unlock(f->mu);
    if (wake)
        port_watch_poke(f->watch);
}

/* Ask for a drain and wait for the thread to report the queue empty. */
static int wait_drained(flusher_t *f, uint32_t timeout_ms)
{
    uint64_t deadline = port_clock_monotonic_ms(f->cfg.clock) + timeout_ms;
    port_mutex_lock(f->mu);
    uint64_t gen = ++f->flush_gen;
    port_watch_poke(f->watch);
    while (f->empty_gen < gen) {
        uint64_t now = port_clock_monotonic_ms(f->cfg.clock);
        if (now >= deadline)
            break;
        port_cond_timedwait(f->idle, f->mu, (uint32_t)(deadline - now));
    }
    int ok = f->empty_gen >= gen;
    port_mutex_unlock(f->mu);
    return ok ? EVREC_OK : EVREC_E_TIMEOUT;
}

static int flush_manual(flusher_t *f, uint32_t timeout_ms)
{
    port_mutex_lock(f->mu);
    uint64_t gen = ++f->flush_gen;
    port_mutex_unlock(f->mu);
    return drain_here(f, gen, timeout_ms);
}

int flusher_flush(flusher_t *f, uint32_t timeout_ms)
{
    if (!f)
        return EVREC_E_INVALID;
    /* Records staged in memory (batched durability) must reach the store to be sent. */
    int rc = queue_sync(f->q);
    if (rc)
        log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: commit before flush failed: %s",
                evrec_strerror(rc));
    return f->cfg.manual ? flush_manual(f, timeout_ms) : wait_drained(f, timeout_ms);
}

int flusher_poll(flusher_t *f, uint32_t *next_ms)
{
    if (!f || !next_ms)
        return EVREC_E_INVALID;
    if (!f->cfg.manual)
        return EVREC_E_STATE;
    /* The event loop was woken by the watch's descriptor: take that (and look again in a
     * while: the write may come a moment before its commit can be read, as in thread_main). */
    int changed = f->fds_asked && (port_watch_wait(f->watch, 1, 0) & PORT_WATCH_CHANGED);
    uint32_t tick = store_tick(f);
    if (changed && tick > FL_STORE_POLL_MS)
        tick = FL_STORE_POLL_MS;
    count_store(f);
    persist_status(f, 0);
    report_evicted(f);
    uint64_t wait = 0;
    port_mutex_lock(f->mu);
    int due = due_locked(f, port_clock_monotonic_ms(f->cfg.clock), tick, &wait);
    port_mutex_unlock(f->mu);
    if (due) {
        step_result_t s = run_step(f);
        port_mutex_lock(f->mu);
        if (s == STEP_MORE)
            wait = 0;
        else
            due_locked(f, port_clock_monotonic_ms(f->cfg.clock), tick, &wait);
        port_mutex_unlock(f->mu);
    }
    *next_ms = wait > UINT32_MAX ? UINT32_MAX : (uint32_t)wait;
    return EVREC_OK;
}

int flusher_poll_budget(flusher_t *f, uint32_t budget_ms, uint32_t *next_ms)
{
    if (!f || !next_ms)
        return EVREC_E_INVALID;
    if (!f->cfg.manual)
        return EVREC_E_STATE;
    uint64_t deadline = port_clock_monotonic_ms(f->cfg.clock) + budget_ms;
    int changed = f->fds_asked && (port_watch_wait(f->watch, 1, 0) & PORT_WATCH_CHANGED);
    uint32_t tick = store_tick(f);
    if (changed && tick > FL_STORE_POLL_MS) /* look again: see flusher_poll */
        tick = FL_STORE_POLL_MS;
    count_store(f);
    persist_status(f, 0);
    report_evicted(f);
    uint64_t wait = 0;
    port_mutex_lock(f->work);
    step_result_t s = STEP_EMPTY;
    int stepped = 0;
    if (!f->inflight) {
        port_mutex_lock(f->mu);
        int due = due_locked(f, port_clock_monotonic_ms(f->cfg.clock), tick, &wait);
        port_mutex_unlock(f->mu);
        if (due) {
            s = step_as(f, 1);
            stepped = 1;
        }
    }
    if (f->inflight) {
        uint64_t now = port_clock_monotonic_ms(f->cfg.clock);
        int done = 0;
        s = advance_flight(f, now < deadline ? (uint32_t)(deadline - now) : 0, &done);
        stepped = done;
    }
    if (f->inflight) {
        size_t n = 0;
        wait = transport_wait_hint(f->tp, NULL, 0, &n);
        if (wait > tick)
            wait = tick;
    } else if (stepped) {
        port_mutex_lock(f->mu);
        if (s == STEP_MORE)
            wait = 0;
        else
            due_locked(f, port_clock_monotonic_ms(f->cfg.clock), tick, &wait);
        port_mutex_unlock(f->mu);
    }
    port_mutex_unlock(f->work);
    *next_ms = wait > UINT32_MAX ? UINT32_MAX : (uint32_t)wait;
    return EVREC_OK;
}

int flusher_poll_fds(flusher_t *f, evrec_pollfd_t *fds, size_t max, size_t *n,
                     uint32_t *timeout_ms)
{
    if (!f || !n || !timeout_ms || (max > 0 && !fds))
        return EVREC_E_INVALID;
    port_mutex_lock(f->work);
    *timeout_ms = transport_wait_hint(f->tp, fds, max, n);
    /* The store's data file, last: readable when a process (this one too) wrote to the store,
     * e.g. another process recorded. An event loop that waits on it need not be called back
     * on a timer to notice those records, so from now on next_ms leaves the periodic count of
     * the store out (and is UINT32_MAX on an empty queue with nothing else timed). */
    int wfd = port_watch_fd(f->watch);
    if (wfd >= 0 && *n < max) {
        fds[*n].fd = wfd;
        fds[*n].events = EVREC_POLL_IN;
        (*n)++;
        port_mutex_lock(f->mu);
        f->fds_asked = 1;
        port_mutex_unlock(f->mu);
    }
    port_mutex_unlock(f->work);
    return EVREC_OK;
}

int flusher_stop(flusher_t *f, uint32_t timeout_ms)
{
    if (!f)
        return EVREC_OK;
    evrec_queue_t *q = f->q;
    queue_sync(q);
    if (timeout_ms > 0)
        (void)(f->cfg.manual ? flush_manual(f, timeout_ms) : wait_drained(f, timeout_ms));
    if (f->thread) {
        port_mutex_lock(f->mu);
        f->stopping = 1;
        port_mutex_unlock(f->mu);
        port_watch_poke(f->watch);
        port_thread_join(f->thread);
        f->thread = NULL;
    }
    persist_status(f, 1);
    report_evicted(f); /* the last ones, on the closing thread */
    uint64_t left = queue_count(q);
    flusher_free(f);
    queue_flusher_release(q);
    return left > 0 ? EVREC_E_TIMEOUT : EVREC_OK;
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
    copy_text(st->last_error_message, sizeof st->last_error_message, f->last_error_message);
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
    copy_text(st->last_error_message, sizeof st->last_error_message,
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
