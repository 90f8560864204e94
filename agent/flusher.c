/*
 * The flusher: one request at a time from the queue to the service (DESIGN §1, §4).
 * This file: its configuration and clock, the thread and its loop, when a step is due,
 * and the entry points (start, notify, flush, stop). One request is flusher_step.c's,
 * evrec_poll's steps flusher_poll.c's, what it keeps and reports flusher_status.c's.
 *
 * Locking: `work` is held for one step (batch, encode, sign, send, apply), so at most one
 * request is in flight per flusher and the transport (not thread-safe) has one user. `mu`
 * guards the wake-up state and the statistics and is only ever held for a few instructions,
 * so flusher_notify() and flusher_stats() never wait on the network. No queue write
 * transaction is open while a request is in flight: batch_next copies what it takes, and the
 * verdicts are applied afterwards in one queue_delete().
 */
#include "flusher_internal.h"

#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FL_DEFAULT_INTERVAL_MS 30000u
#define FL_DEFAULT_THRESHOLD 100u
#define FL_DEFAULT_AGE_MS (30ull * 24 * 3600 * 1000)
#define FL_DEFAULT_BACKOFF_BASE_MS 1000u
#define FL_DEFAULT_BACKOFF_CAP_MS 300000u

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


uint32_t flusher_next_random(flusher_t *f)
{
    if (f->cfg.rand_fn)
        return f->cfg.rand_fn(f->cfg.rand_user);
    uint32_t r = 0;
    if (port_random(&r, sizeof r) != 0)
        r = (uint32_t)port_monotonic_us();
    return r;
}

int64_t flusher_service_now_ms(const flusher_t *f)
{
    return port_clock_wall_ms(f->cfg.clock) + f->pol.clock_offset_ms;
}

/* Credentials' expiry is judged on the same corrected clock as signing: their expiration
 * times are the provider's (server) time. Called on the flusher thread. */
static int64_t creds_clock(void *user)
{
    return flusher_service_now_ms(user);
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

int flusher_store_clock_offset(flusher_t *f)
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
int flusher_due_locked(flusher_t *f, uint64_t now, uint32_t tick_ms, uint64_t *wait_ms)
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
void flusher_count_store(flusher_t *f)
{
    uint64_t n = queue_count(f->q);
    port_mutex_lock(f->mu);
    f->store_queued = n;
    if (n < f->left_after_drain) /* deleted or expired since: count from here */
        f->left_after_drain = n;
    port_mutex_unlock(f->mu);
}

/* The queue's own timers; where the store's data file cannot be watched, at least once a
 * second too: events other processes record are seen by counting the store
 * (flusher_count_store), and nothing else tells this process of them. Not while waiting out a
 * backoff: the threshold does not end one (only its expiry, an explicit flush or stopping,
 * which wake the loop), so counting the store then would wake it for nothing. */
uint32_t flusher_store_tick(flusher_t *f)
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

step_result_t flusher_run_step(flusher_t *f)
{
    port_mutex_lock(f->work);
    step_result_t s = flusher_step(f);
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
        uint32_t tick = flusher_store_tick(f);
        flusher_count_store(f);
        flusher_persist_status(f, 0);
        flusher_report_evicted(f);
        port_mutex_lock(f->mu);
        if (f->stopping) {
            port_mutex_unlock(f->mu);
            break;
        }
        uint64_t wait = 0, now = port_clock_monotonic_ms(f->cfg.clock);
        int due = flusher_due_locked(f, now, tick, &wait);
        if (!due) {
            uint64_t status_wait = flusher_status_wait_locked(f, now);
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
        flusher_run_step(f);
    }
}

/* Manual mode: drain on the calling thread until empty (EVREC_OK) or the deadline. */
static int drain_here(flusher_t *f, uint64_t gen, uint32_t timeout_ms)
{
    uint64_t deadline = port_clock_monotonic_ms(f->cfg.clock) + timeout_ms;
    for (;;) {
        uint32_t tick = flusher_store_tick(f);
        flusher_count_store(f);
        port_mutex_lock(f->mu);
        int done = f->empty_gen >= gen;
        uint64_t now = port_clock_monotonic_ms(f->cfg.clock), wait = 0;
        int due = done ? 0 : flusher_due_locked(f, now, tick, &wait);
        port_mutex_unlock(f->mu);
        if (done)
            return EVREC_OK;
        if (now >= deadline)
            return EVREC_E_TIMEOUT;
        if (due) {
            flusher_run_step(f);
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
    flusher_pending_clear(f);
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

/* Take the store's flusher role (one flusher per store, across processes). */
static int take_role(evrec_queue_t *q, char *err, size_t errlen)
{
    int rc = queue_flusher_acquire(q);
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
    return EVREC_OK;
}

/* The configuration, the request's URL and headers, the locks, the credential chain and the
 * transport of a new flusher (f->q set); on failure err says which. */
static int set_up(flusher_t *f, const flusher_config_t *cfg, char *err, size_t errlen)
{
    evrec_queue_t *q = f->q;
    f->svc = service_get(cfg->service);
    if (cfg->on_delivery)
        queue_report_evictions(q, 1);
    int rc = copy_config(f, cfg);
    if (rc == EVREC_OK) {
        f->sctx = service_ctx_of(&f->cfg);
        f->sctx.profile = flusher_profile_lookup;
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
        return rc;
    }
    if (port_mutex_new(&f->work) || port_mutex_new(&f->mu) ||
        port_watch_new(queue_data_path(q), &f->watch) || port_cond_new(&f->idle)) {
        snprintf(err, errlen, "flusher: cannot create its locks");
        return EVREC_E_NOMEM;
    }
    if (f->cfg.creds.now_ms == NULL) {
        f->cfg.creds.now_ms = creds_clock;
        f->cfg.creds.now_user = f;
    }
    rc = creds_new(&f->creds, &f->cfg.creds);
    if (rc) {
        snprintf(err, errlen, "credentials: %s", evrec_strerror(rc));
        return rc;
    }
    rc = transport_new(&f->tp, &f->cfg.transport);
    if (rc) {
        snprintf(err, errlen, "transport: %s", evrec_strerror(rc));
        return rc;
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
    rc = take_role(q, err, errlen);
    if (rc)
        return rc;
    flusher_t *f = port_calloc(1, sizeof *f);
    if (!f) {
        queue_flusher_release(q);
        return EVREC_E_NOMEM;
    }
    f->q = q;
    rc = set_up(f, cfg, err, errlen);
    if (rc)
        goto fail;
    load_clock_offset(f);
    flusher_load_meter(f);
    f->started_wall = port_clock_wall_ms(f->cfg.clock);
    /* The periodic flush's phase is random: the first one comes between half an interval and
     * one and a half after the start, then every interval on that grid (flusher_due_locked keeps it
     * whatever else starts a drain), so devices that boot together do not flush together for
     * ever after (bench_herd). Events already queued wait for it, as they always did. */
    f->next_interval_mono =
        port_clock_monotonic_ms(f->cfg.clock) + backoff_phase_ms(f->cfg.flush_interval_ms, flusher_next_random(f));
    f->left_after_drain = f->store_queued = queue_count(q);
    f->expire_due = 1;
    flusher_persist_status(f, 1); /* `evrec stats` shows this flusher (pid, since) at once */
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
    flusher_persist_status(f, 1);
    flusher_report_evicted(f); /* the last ones, on the closing thread */
    uint64_t left = queue_count(q);
    flusher_free(f);
    queue_flusher_release(q);
    return left > 0 ? EVREC_E_TIMEOUT : EVREC_OK;
}
