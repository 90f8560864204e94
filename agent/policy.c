/*
 * Delivery policy (DESIGN §4): pure decisions over the flusher's retry state. See policy.h.
 */
#include "policy.h"

#include <string.h>

#include "evrec.h"

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

/* Wait with the batch kept: full jitter with Retry-After as a floor, or the cap at once for
 * answers that will not change soon (403/404). The immediate-retry budgets start again. */
static policy_action_t wait(policy_state_t *st, const backoff_config_t *c, int code,
                            int64_t retry_after_ms, int long_wait, uint32_t rnd)
{
    policy_action_t a;
    memset(&a, 0, sizeof a);
    a.verb = PA_BACK_OFF;
    a.code = code;
    if (long_wait) {
        a.delay_ms = c ? c->cap_ms : 300000u;
        if (retry_after_ms > 0 && (uint64_t)retry_after_ms > a.delay_ms)
            a.delay_ms = (uint64_t)retry_after_ms;
    } else {
        a.delay_ms = backoff_delay_ms(c, st->attempt, retry_after_ms, rnd);
    }
    if (st->attempt < POLICY_ATTEMPT_MAX)
        st->attempt++;
    st->skew_fixes = 0;
    st->token_refreshes = 0;
    return a;
}

policy_action_t policy_back_off(policy_state_t *st, const backoff_config_t *backoff, int code,
                                int64_t retry_after_ms, uint32_t rnd)
{
    return wait(st, backoff, code, retry_after_ms, 0, rnd);
}

static policy_action_t verb(policy_verb_t v)
{
    policy_action_t a;
    memset(&a, 0, sizeof a);
    a.verb = v;
    return a;
}

/* 413, a whole-request 400, or a request over the limits: halves until one event is left,
 * which alone is refused and dropped as poison. */
static policy_action_t split(const policy_facts_t *f, int learn)
{
    policy_action_t a = verb(f->events > 1 ? PA_SPLIT : PA_DROP_POISON);
    a.learn_too_large = learn;
    return a;
}

static policy_action_t answered(policy_state_t *st, const backoff_config_t *c,
                                const policy_facts_t *f, uint32_t rnd)
{
    st->attempt = 0;
    st->skew_fixes = 0;
    st->skew_candidate_set = 0;
    st->token_refreshes = 0;
    if (f->kept == 0)
        return verb(PA_DELETE);
    /* The kept events are still queued and are picked up again after the wait. */
    policy_action_t a = wait(st, c, f->kept_throttled ? EVREC_E_THROTTLED : EVREC_E_SERVICE,
                             f->retry_after_ms, 0, rnd);
    a.verb = PA_DELETE;
    a.back_off_after = 1;
    return a;
}

/* A skew answer with a Date: adopt the service's clock and resend at once — but a move larger
 * than the step only once a second answer proposes about the same. */
static policy_action_t correct_clock(policy_state_t *st, const policy_facts_t *f,
                                     int64_t now_ms)
{
    policy_action_t a = verb(PA_RETRY_NOW);
    st->skew_fixes++;
    int64_t proposed = f->server_date_ms - now_ms;
    a.proposed_offset_ms = proposed;
    if (abs64(proposed - st->clock_offset_ms) <= POLICY_SKEW_STEP_MS ||
        (st->skew_candidate_set && abs64(proposed - st->skew_candidate_ms) <= POLICY_SKEW_AGREE_MS)) {
        st->skew_candidate_set = 0;
        st->clock_offset_ms = proposed;
        a.clock_changed = 1;
    } else {
        st->skew_candidate_ms = proposed;
        st->skew_candidate_set = 1;
        a.clock_held = 1;
    }
    return a;
}

policy_action_t policy_decide(policy_state_t *st, const backoff_config_t *c,
                              policy_outcome_t outcome, const policy_facts_t *f, int64_t now_ms,
                              uint32_t rnd)
{
    switch (outcome) {
    case PO_ANSWERED:
        return answered(st, c, f, rnd);
    case PO_THROTTLED:
        return wait(st, c, EVREC_E_THROTTLED, f->retry_after_ms, 0, rnd);
    case PO_RETRY:
        return wait(st, c, EVREC_E_SERVICE, f->retry_after_ms, 0, rnd);
    case PO_TOO_LARGE:
        return split(f, 1);
    case PO_BAD_REQUEST:
    case PO_OVERSIZE:
        return split(f, 0);
    case PO_CLOCK_SKEW:
        if (f->server_date_ms > 0 && st->skew_fixes < POLICY_MAX_SKEW_FIXES)
            return correct_clock(st, f, now_ms);
        return wait(st, c, EVREC_E_CLOCK_SKEW, f->retry_after_ms, 0, rnd);
    case PO_EXPIRED_TOKEN:
        if (st->token_refreshes < POLICY_MAX_TOKEN_REFRESHES) {
            st->token_refreshes++;
            policy_action_t a = verb(PA_RETRY_NOW);
            a.refresh_credentials = 1;
            return a;
        }
        return wait(st, c, EVREC_E_AUTH, f->retry_after_ms, 0, rnd);
    case PO_AUTH:
        return wait(st, c, f->status == 404 ? EVREC_E_REJECTED : EVREC_E_AUTH, f->retry_after_ms,
                    1, rnd);
    case PO_FAILED:
        break;
    }
    return wait(st, c, f->code ? f->code : EVREC_E_SERVICE, f->retry_after_ms, 0, rnd);
}
