/*
 * Delivery policy (DESIGN §4) as a pure function: given the flusher's retry state, what
 * happened to one request, the facts of the answer, the time and a random number, it says what
 * to do — delete what was answered, retry these now, back off, split, drop the poison event,
 * correct the clock, refresh credentials. No I/O, no clock, no allocation: the flusher carries
 * the action out (flusher_step.c), and tests/unit/test_policy.c checks §4 as a table.
 */
#ifndef EVREC_POLICY_H
#define EVREC_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "backoff.h"

/* Immediate retries allowed in a row before the flusher falls back to a backoff: a service
 * that keeps saying "skewed" after two corrections, or "expired" after a refresh, is not
 * going to change its mind within milliseconds. */
#define POLICY_MAX_SKEW_FIXES 2u
#define POLICY_MAX_TOKEN_REFRESHES 1u
/* One skew answer may move the clock offset by at most this much on its word alone; a larger
 * move needs a second answer agreeing (within POLICY_SKEW_AGREE_MS) first. The offset only
 * ever serves signing and credential expiry: event age is judged on the device clock the
 * events were stamped with, so no server answer can expire data. */
#define POLICY_SKEW_STEP_MS (3600ll * 1000)
#define POLICY_SKEW_AGREE_MS (5ll * 60 * 1000)
#define POLICY_ATTEMPT_MAX 64u

/** What happened to one request (or to the attempt to make it). */
typedef enum policy_outcome {
    PO_ANSWERED,      /**< the service answered per event; facts.kept are not answered yet */
    PO_THROTTLED,     /**< the whole request: 429 / throttling */
    PO_RETRY,         /**< the whole request: 5xx or another answer worth retrying */
    PO_TOO_LARGE,     /**< 413 / PayloadTooLarge */
    PO_BAD_REQUEST,   /**< a whole-request 400 */
    PO_CLOCK_SKEW,    /**< 403 saying the signature's time is too far from the service's */
    PO_EXPIRED_TOKEN, /**< 403 / 400 saying the credentials expired */
    PO_AUTH,          /**< another 403, or 404: will not change soon */
    PO_OVERSIZE,      /**< encoding found the request, or its one record, over the limits */
    PO_FAILED,        /**< no usable answer: network, credentials, store, unreadable answer
                           (facts.code says which) */
} policy_outcome_t;

/** The flusher's retry state, changed only by policy_decide(). */
typedef struct policy_state {
    uint32_t attempt;           /**< backoffs in a row since the last success */
    uint32_t skew_fixes;        /**< clock corrections in a row */
    uint32_t token_refreshes;   /**< credential refreshes in a row */
    int64_t clock_offset_ms;    /**< service time minus device time */
    int64_t skew_candidate_ms;  /**< an offset one answer proposed beyond the step */
    int skew_candidate_set;
} policy_state_t;

/** What is known of the request and its answer. */
typedef struct policy_facts {
    size_t events;          /**< in the batch */
    size_t kept;            /**< PO_ANSWERED: events neither accepted nor rejected */
    int kept_throttled;     /**< PO_ANSWERED: they were kept for throttling */
    long status;            /**< HTTP status, 0 if none */
    int64_t retry_after_ms; /**< Retry-After, < 0 if absent */
    int64_t server_date_ms; /**< the answer's Date, 0 if absent */
    int code;               /**< PO_FAILED: the error (EVREC_E_*) */
} policy_facts_t;

typedef enum policy_verb {
    PA_DELETE,      /**< delete the accepted and rejected events; if back_off_after, the kept
                         ones stay queued and the flusher waits delay_ms */
    PA_BACK_OFF,    /**< keep the batch; wait delay_ms; report code */
    PA_SPLIT,       /**< send the halves separately, the head first */
    PA_DROP_POISON, /**< drop the batch's single event (counted as poison) */
    PA_RETRY_NOW,   /**< resend the batch at once */
} policy_verb_t;

typedef struct policy_action {
    policy_verb_t verb;
    int code;                /**< PA_BACK_OFF, PA_DELETE with back_off_after: the error */
    uint64_t delay_ms;       /**< PA_BACK_OFF, PA_DELETE with back_off_after */
    int back_off_after;      /**< PA_DELETE: some events were kept: wait before the next */
    int learn_too_large;     /**< PA_SPLIT / PA_DROP_POISON after a 413: shrink batches */
    int refresh_credentials; /**< PA_RETRY_NOW: drop the cached credentials first */
    int clock_changed;       /**< PA_RETRY_NOW: state->clock_offset_ms is new: keep it */
    int clock_held;          /**< PA_RETRY_NOW: a large move waits for a second answer */
    int64_t proposed_offset_ms; /**< PA_RETRY_NOW after a skew: the offset the answer gave */
} policy_action_t;

/**
 * Decide what to do about `outcome` and update *st. `backoff` NULL: the defaults. `now_ms` is
 * the device's wall clock (the clock offset is measured against it); `rnd` a uniform random
 * number (full jitter). Pure: the same inputs give the same action and state.
 */
policy_action_t policy_decide(policy_state_t *st, const backoff_config_t *backoff,
                              policy_outcome_t outcome, const policy_facts_t *facts,
                              int64_t now_ms, uint32_t rnd);

/** A failure that keeps the batch: the backoff of policy_decide(PO_FAILED) with `code` —
 *  full jitter, Retry-After (< 0: none) as a floor. Updates *st as policy_decide does. */
policy_action_t policy_back_off(policy_state_t *st, const backoff_config_t *backoff, int code,
                                int64_t retry_after_ms, uint32_t rnd);

#endif /* EVREC_POLICY_H */
