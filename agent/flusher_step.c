/*
 * The flusher's one request (DESIGN §4): take a batch (a pending one first), encode, sign and
 * send it, judge the answer with policy.c and carry the action out: delete what was
 * delivered, split, bisect, retry, back off, defer on a metered link.
 *
 * Batches split for a 413 or bisected for a whole-request 400 wait on a small stack
 * (`pending`) and are sent before anything new is taken from the queue; a batch that has to be
 * retried later goes back on the stack, so a bisection survives a throttle in its middle.
 */
#include "flusher_internal.h"
#include "wire.h"

#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <string.h>

/* Expired events are looked for at the start of each cycle and at least this often. */
#define FL_EXPIRE_PERIOD_MS 60000u
/* After a 413 the batches stay at the size that was accepted; after this many full-size
 * batches accepted in a row, the flusher tries twice the size (up to the configured limits). */
#define FL_GROW_AFTER 16u

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

void flusher_pending_clear(flusher_t *f)
{
    for (size_t i = 0; i < f->npending; i++)
        batch_free(&f->pending[i]);
    f->npending = 0;
}

/* -- one request ------------------------------------------------------------------------ */

int flusher_profile_lookup(void *user, const char *endpoint_id, char **json)
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
    int ran, rc; /* batch_next_then: the body was built in the batch's own scan, with rc */
} encoding_t;

/* Called with the batch's fragments pointing into the store (batch_with_fragments). */
static int encode_with(void *user, batch_t *b)
{
    encoding_t *e = user;
    flusher_t *f = e->f;
    f->sctx.now_ms = flusher_service_now_ms(f);
    return f->svc->encode(&f->sctx, b, &e->body, &e->len);
}

/* The request body for b, built straight from the stored fragments: the one `pre` built in
 * the scan that took b, or now. Events that left the queue since the batch was taken are
 * dropped from b; EVREC_E_NOT_FOUND if none is left. */
static int encode(flusher_t *f, batch_t *b, encoding_t *pre, char **body, size_t *len)
{
    encoding_t e = { f, NULL, 0, 0, EVREC_OK };
    int rc;
    if (pre && pre->ran) { /* taken over: pre no longer owns the body */
        rc = pre->rc;
        e.body = pre->body;
        e.len = pre->len;
        pre->body = NULL;
    } else {
        rc = batch_with_fragments(f->q, b, encode_with, &e);
    }
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
    p.unix_ms = flusher_service_now_ms(f);
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
    flusher_set_error_locked(f, code, msg);
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
                                        flusher_next_random(f));
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

void flusher_load_meter(flusher_t *f)
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

/* Count a request body that went (or may have gone) over the link. The count is stored with
 * the request's deletions, in their transaction, when there are any (apply_verdicts), else on
 * its own once the answer is handled (meter_save): either way before the next request. */
static void meter_sent(flusher_t *f, size_t len)
{
    port_mutex_lock(f->mu);
    meter_spend(&f->meter, len, port_clock_wall_ms(f->cfg.clock));
    meter_format(&f->meter, f->meter_text, sizeof f->meter_text);
    f->meter_unsaved = 1;
    port_mutex_unlock(f->mu);
}

static void meter_save(flusher_t *f)
{
    if (!f->meter_unsaved)
        return;
    f->meter_unsaved = 0;
    int rc = queue_meta_put(f->q, QUEUE_META_UPLOAD_BUDGET, f->meter_text,
                            strlen(f->meter_text));
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
        queue_note_t meter = { QUEUE_META_UPLOAD_BUDGET, f->meter_text, strlen(f->meter_text) };
        rc = queue_delete_noting(f->q, seqs, m, counts, 2, f->meter_unsaved ? &meter : NULL);
        if (rc == EVREC_OK)
            f->meter_unsaved = 0;
    }
    port_free(seqs);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->n && i < r->n; i++) {
        const batch_event_t *e = &b->events[i];
        int status = r->status ? r->status[i] : 0;
        const char *msg = r->messages && r->messages[i] ? r->messages[i] : "";
        if (r->verdicts[i] == WIRE_ACCEPTED) {
            flusher_report(f, e->event_id, e->endpoint_id, EVREC_OUTCOME_ACCEPTED, status, "");
        } else if (r->verdicts[i] == WIRE_REJECTED) {
            log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: event %s rejected (%d): %s",
                    e->event_id, status, msg);
            flusher_report(f, e->event_id, e->endpoint_id, EVREC_OUTCOME_REJECTED, status, msg);
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
    flusher_copy_text(reason + 8, sizeof reason - 8, message && *message ? message : "rejected");
    log_msg(&f->cfg.log, EVREC_LOG_WARN, "flusher: event %s dropped (%d) %s", e->event_id,
            status, reason);
    flusher_report(f, e->event_id, e->endpoint_id, EVREC_OUTCOME_DROPPED, status, reason);
    port_mutex_lock(f->mu);
    flusher_set_error_locked(f, EVREC_E_REJECTED, reason);
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
        flusher_copy_text(f->err + n + 2, sizeof f->err - (size_t)n - 2, r->message);
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
        int rc = flusher_store_clock_offset(f);
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
        .server_date_ms = o == PO_CLOCK_SKEW ? transport_date_ms(resp) : 0, /* only used there */
    };
    if (o != PO_ANSWERED)
        request_error_message(f, resp, r);
    policy_state_t before = f->pol;
    policy_action_t a = policy_decide(&f->pol, &f->cfg.backoff, o, &facts, port_clock_wall_ms(f->cfg.clock),
                                      flusher_next_random(f));
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
static int prepare_body(flusher_t *f, batch_t *b, encoding_t *pre, char **body, size_t *len,
                        step_result_t *s)
{
    *body = NULL;
    *len = 0;
    int rc = encode(f, b, pre, body, len);
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
        flusher_copy_text(msg, sizeof msg, f->err[0] ? f->err : evrec_strerror(rc));
        transport_response_clear(resp);
        meter_save(f);
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
    meter_save(f);
    return s;
}

/* Send b and carry out the verdicts; async (flusher_poll_budget): only start it, and return
 * STEP_MORE with f->inflight set when it went out (flusher_advance_flight goes on from there). */
static step_result_t send_batch(flusher_t *f, batch_t *b, encoding_t *pre, int async)
{
    char *body;
    size_t len;
    step_result_t s;
    if (!prepare_body(f, b, pre, &body, &len, &s))
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
step_result_t flusher_advance_flight(flusher_t *f, uint32_t wait_ms, int *done)
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
    flusher_persist_status(f, 0);
    return s;
}

/* The request in flight, to its end (blocking: evrec_flush, evrec_poll, close). */
static step_result_t land_flight(flusher_t *f)
{
    int done = 0;
    step_result_t s = STEP_MORE;
    while (!done)
        s = flusher_advance_flight(f, 1000, &done);
    return s;
}

/* One bounded step: at most one request (async: started, not waited for). Called with
 * `work` held. */
step_result_t flusher_step_as(flusher_t *f, int async)
{
    if (f->inflight)
        return land_flight(f);
    port_mutex_lock(f->mu);
    uint64_t gen = f->flush_gen;
    port_mutex_unlock(f->mu);

    int64_t cutoff = flusher_expiry_cutoff(f);
    uint64_t now = port_clock_monotonic_ms(f->cfg.clock);
    if (f->expire_due || now >= f->next_expire_mono) {
        f->expire_due = 0;
        f->next_expire_mono = now + FL_EXPIRE_PERIOD_MS;
        flusher_expire_old(f, cutoff);
    }

    batch_t b;
    memset(&b, 0, sizeof b);
    encoding_t pre = { f, NULL, 0, 0, EVREC_OK }; /* the body, built in the scan if it can be */
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
        int rc = batch_next_then(f->q, &lim, &b, encode_with, &pre, &pre.ran, &pre.rc);
        if (rc) {
            port_free(pre.body);
            discard(&b);
            snprintf(f->err, sizeof f->err, "cannot read the queue: %s", evrec_strerror(rc));
            return back_off(f, &b, rc, f->err, -1);
        }
        if (b.n == 0) {
            port_free(pre.body);
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
    step_result_t s = send_batch(f, &b, &pre, async);
    port_free(pre.body); /* NULL once taken */
    flusher_persist_status(f, 0);
    return s;
}

step_result_t flusher_step(flusher_t *f)
{
    return flusher_step_as(f, 0);
}
