/*
 * What the flusher's files share (flusher.c, flusher_step.c, flusher_poll.c,
 * flusher_status.c): the flusher's state and the steps one file calls in another. Included by
 * those files only; the rest of the library goes through flusher.h.
 */
#ifndef EVREC_FLUSHER_INTERNAL_H
#define EVREC_FLUSHER_INTERNAL_H

#include "flusher.h"
#include "meter.h"
#include "policy.h"

#include "batch.h"
#include "port.h"
#include "service.h"
#include "sigv4.h"

/* How often the flusher counts the store for events recorded by other processes where it
 * cannot watch the store's data file (port_watch_file() 0); where it can, how long after one
 * write it lets further writes come without waking (a busy store wakes it at most this often,
 * as the count did). */
#define FL_STORE_POLL_MS 1000u

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
    char meter_text[64]; /* the upload count as stored, after the last request */
    int meter_unsaved;   /* meter_text is not in the store yet */
    int deferred;           /* the wait in backoff_until_* is a deferral, not a backoff */
    uint64_t deferred_gen;  /* flush_gen when deferred: a later evrec_flush() asks again */
    uint64_t deferrals, deferred_events;
};

/* flusher.c */
uint32_t flusher_next_random(flusher_t *f);
int64_t flusher_service_now_ms(const flusher_t *f);
int flusher_store_clock_offset(flusher_t *f);
int flusher_due_locked(flusher_t *f, uint64_t now, uint32_t tick_ms, uint64_t *wait_ms);
void flusher_count_store(flusher_t *f);
uint32_t flusher_store_tick(flusher_t *f);
step_result_t flusher_run_step(flusher_t *f);

/* flusher_step.c */
void flusher_pending_clear(flusher_t *f);
int flusher_profile_lookup(void *user, const char *endpoint_id, char **json);
void flusher_load_meter(flusher_t *f);
step_result_t flusher_advance_flight(flusher_t *f, uint32_t wait_ms, int *done);
step_result_t flusher_step_as(flusher_t *f, int async);
step_result_t flusher_step(flusher_t *f);

/* flusher_status.c */
void flusher_copy_text(char *dst, size_t dstlen, const char *src);
void flusher_set_error_locked(flusher_t *f, int code, const char *msg);
uint64_t flusher_status_wait_locked(const flusher_t *f, uint64_t now);
void flusher_persist_status(flusher_t *f, int force);
void flusher_report(flusher_t *f, const char *event_id, const char *endpoint_id,
                    evrec_outcome_t outcome, int status, const char *reason);
void flusher_report_evicted(flusher_t *f);
void flusher_expire_old(flusher_t *f, int64_t cutoff_ms);
int64_t flusher_expiry_cutoff(const flusher_t *f);

#endif /* EVREC_FLUSHER_INTERNAL_H */
