/* DESIGN §4 as a table: the delivery policy (agent/policy.c) is a pure function of (state,
 * outcome, facts, now, random), so every rule is one row here — no endpoint, no clock, no
 * sleep. A row gives the state before, what happened, and the action and state expected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "evrec.h"
#include "policy.h"

#define NOW 1700000000000LL
#define HOUR (3600LL * 1000)
#define MAXR UINT32_MAX /* the largest random number: the whole jitter window */

typedef struct row {
    const char *rule;
    policy_state_t before;
    policy_outcome_t outcome;
    policy_facts_t facts;
    uint32_t rnd;
    /* expected */
    policy_verb_t verb;
    int code;
    uint64_t delay_ms;
    int back_off_after, learn, refresh, clock_changed, clock_held;
    policy_state_t after;
} row_t;

/* facts: events, kept, kept_throttled, status, retry_after_ms, server_date_ms, code */
#define F(n, kept, thr, status, ra, date, code) { n, kept, thr, status, ra, date, code }
/* state: attempt, skew_fixes, token_refreshes, clock_offset_ms, candidate, candidate_set */
#define S(att, sk, tok, off, cand, cset) { att, sk, tok, off, cand, cset }

static const row_t rows[] = {
    /* -- at-least-once: delete only what the service answered for ----------------------- */
    { "202/400 per event: delete them, reset every counter", S(5, 1, 1, 7, 99, 1), PO_ANSWERED,
      F(10, 0, 0, 200, -1, 0, 0), 0,
      PA_DELETE, 0, 0, 0, 0, 0, 0, 0, S(0, 0, 0, 7, 99, 0) },
    { "some events not answered (5xx per record): delete the rest, back off from attempt 0",
      S(5, 0, 0, 0, 0, 0), PO_ANSWERED, F(10, 3, 0, 200, -1, 0, 0), MAXR,
      PA_DELETE, EVREC_E_SERVICE, 999, 1, 0, 0, 0, 0, S(1, 0, 0, 0, 0, 0) },
    { "partial failure by throttling: reported as throttling, Retry-After a floor",
      S(0, 0, 0, 0, 0, 0), PO_ANSWERED, F(10, 3, 1, 200, 4000, 0, 0), 0,
      PA_DELETE, EVREC_E_THROTTLED, 4000, 1, 0, 0, 0, 0, S(1, 0, 0, 0, 0, 0) },
    /* -- backoff: full jitter, rand(0, min(cap, base * 2^attempt)), Retry-After a floor ---- */
    { "429: back off, full jitter over base * 2^attempt", S(2, 1, 1, 0, 0, 0), PO_THROTTLED,
      F(10, 0, 0, 429, -1, 0, 0), MAXR,
      PA_BACK_OFF, EVREC_E_THROTTLED, 3999, 0, 0, 0, 0, 0, S(3, 0, 0, 0, 0, 0) },
    { "429 with Retry-After: the wait is at least Retry-After", S(0, 0, 0, 0, 0, 0),
      PO_THROTTLED, F(10, 0, 0, 429, 30000, 0, 0), 0,
      PA_BACK_OFF, EVREC_E_THROTTLED, 30000, 0, 0, 0, 0, 0, S(1, 0, 0, 0, 0, 0) },
    { "5xx: back off", S(0, 0, 0, 0, 0, 0), PO_RETRY, F(10, 0, 0, 503, -1, 0, 0), 0,
      PA_BACK_OFF, EVREC_E_SERVICE, 0, 0, 0, 0, 0, 0, S(1, 0, 0, 0, 0, 0) },
    { "the window never passes the cap", S(40, 0, 0, 0, 0, 0), PO_RETRY,
      F(10, 0, 0, 500, -1, 0, 0), MAXR,
      PA_BACK_OFF, EVREC_E_SERVICE, 299999, 0, 0, 0, 0, 0, S(41, 0, 0, 0, 0, 0) },
    { "the attempt count stops at its maximum", S(POLICY_ATTEMPT_MAX, 0, 0, 0, 0, 0), PO_RETRY,
      F(10, 0, 0, 500, -1, 0, 0), 0,
      PA_BACK_OFF, EVREC_E_SERVICE, 0, 0, 0, 0, 0, 0, S(POLICY_ATTEMPT_MAX, 0, 0, 0, 0, 0) },
    { "connection error: back off with its code", S(0, 0, 0, 0, 0, 0), PO_FAILED,
      F(10, 0, 0, 0, -1, 0, EVREC_E_CONNECT), MAXR,
      PA_BACK_OFF, EVREC_E_CONNECT, 999, 0, 0, 0, 0, 0, S(1, 0, 0, 0, 0, 0) },
    /* -- 413: split; 400 on the whole request: bisect, drop only the poison event ---------- */
    { "413: split the batch and learn the size", S(3, 0, 0, 0, 0, 0), PO_TOO_LARGE,
      F(10, 0, 0, 413, -1, 0, 0), 0,
      PA_SPLIT, 0, 0, 0, 1, 0, 0, 0, S(3, 0, 0, 0, 0, 0) },
    { "413 for one event: it is dropped as poison", S(0, 0, 0, 0, 0, 0), PO_TOO_LARGE,
      F(1, 0, 0, 413, -1, 0, 0), 0,
      PA_DROP_POISON, 0, 0, 0, 1, 0, 0, 0, S(0, 0, 0, 0, 0, 0) },
    { "whole-request 400: bisect", S(0, 0, 0, 0, 0, 0), PO_BAD_REQUEST,
      F(7, 0, 0, 400, -1, 0, 0), 0,
      PA_SPLIT, 0, 0, 0, 0, 0, 0, 0, S(0, 0, 0, 0, 0, 0) },
    { "whole-request 400 for one event: drop only it", S(2, 0, 0, 0, 0, 0), PO_BAD_REQUEST,
      F(1, 0, 0, 400, -1, 0, 0), 0,
      PA_DROP_POISON, 0, 0, 0, 0, 0, 0, 0, S(2, 0, 0, 0, 0, 0) },
    { "a request over the limits as encoded: halves", S(0, 0, 0, 0, 0, 0), PO_OVERSIZE,
      F(4, 0, 0, 0, -1, 0, 0), 0,
      PA_SPLIT, 0, 0, 0, 0, 0, 0, 0, S(0, 0, 0, 0, 0, 0) },
    { "one record over the record limit: dropped alone", S(0, 0, 0, 0, 0, 0), PO_OVERSIZE,
      F(1, 0, 0, 0, -1, 0, 0), 0,
      PA_DROP_POISON, 0, 0, 0, 0, 0, 0, 0, S(0, 0, 0, 0, 0, 0) },
    /* -- 403 skew: correct the offset from Date and retry at once ------------------------ */
    { "skew: adopt the Date's offset, retry now", S(1, 0, 0, 0, 0, 0), PO_CLOCK_SKEW,
      F(10, 0, 0, 403, -1, NOW + 20 * 60 * 1000, 0), 0,
      PA_RETRY_NOW, 0, 0, 0, 0, 0, 1, 0, S(1, 1, 0, 20 * 60 * 1000, 0, 0) },
    { "skew beyond an hour: held until a second answer agrees", S(0, 0, 0, 0, 0, 0),
      PO_CLOCK_SKEW, F(10, 0, 0, 403, -1, NOW + 5 * HOUR, 0), 0,
      PA_RETRY_NOW, 0, 0, 0, 0, 0, 0, 1, S(0, 1, 0, 0, 5 * HOUR, 1) },
    { "a second answer within 5 minutes of the first: adopted",
      S(0, 1, 0, 0, 5 * HOUR, 1), PO_CLOCK_SKEW,
      F(10, 0, 0, 403, -1, NOW + 5 * HOUR + 60 * 1000, 0), 0,
      PA_RETRY_NOW, 0, 0, 0, 0, 0, 1, 0, S(0, 2, 0, 5 * HOUR + 60 * 1000, 5 * HOUR, 0) },
    { "a second answer far from the first: held again, as the new candidate",
      S(0, 1, 0, 0, 5 * HOUR, 1), PO_CLOCK_SKEW, F(10, 0, 0, 403, -1, NOW - 9 * HOUR, 0), 0,
      PA_RETRY_NOW, 0, 0, 0, 0, 0, 0, 1, S(0, 2, 0, 0, -9 * HOUR, 1) },
    { "skew after two corrections in a row: back off", S(0, POLICY_MAX_SKEW_FIXES, 0, 0, 0, 0),
      PO_CLOCK_SKEW, F(10, 0, 0, 403, -1, NOW + 1000, 0), 0,
      PA_BACK_OFF, EVREC_E_CLOCK_SKEW, 0, 0, 0, 0, 0, 0, S(1, 0, 0, 0, 0, 0) },
    { "skew without a Date: back off", S(0, 0, 0, 0, 0, 0), PO_CLOCK_SKEW,
      F(10, 0, 0, 403, -1, 0, 0), 0,
      PA_BACK_OFF, EVREC_E_CLOCK_SKEW, 0, 0, 0, 0, 0, 0, S(1, 0, 0, 0, 0, 0) },
    /* -- expired credentials: refresh once and retry at once ----------------------------- */
    { "expired token: refresh the credentials, retry now", S(2, 0, 0, 0, 0, 0),
      PO_EXPIRED_TOKEN, F(10, 0, 0, 403, -1, 0, 0), 0,
      PA_RETRY_NOW, 0, 0, 0, 0, 1, 0, 0, S(2, 0, 1, 0, 0, 0) },
    { "expired again right after a refresh: back off as an auth failure",
      S(0, 0, POLICY_MAX_TOKEN_REFRESHES, 0, 0, 0), PO_EXPIRED_TOKEN,
      F(10, 0, 0, 403, -1, 0, 0), 0,
      PA_BACK_OFF, EVREC_E_AUTH, 0, 0, 0, 0, 0, 0, S(1, 0, 0, 0, 0, 0) },
    /* -- other 403/404: long backoff, keep the data --------------------------------------- */
    { "403: the cap at once, data kept", S(0, 0, 0, 0, 0, 0), PO_AUTH,
      F(10, 0, 0, 403, -1, 0, 0), 0,
      PA_BACK_OFF, EVREC_E_AUTH, 300000, 0, 0, 0, 0, 0, S(1, 0, 0, 0, 0, 0) },
    { "404: the cap at once, reported as rejected", S(0, 0, 0, 0, 0, 0), PO_AUTH,
      F(10, 0, 0, 404, -1, 0, 0), 0,
      PA_BACK_OFF, EVREC_E_REJECTED, 300000, 0, 0, 0, 0, 0, S(1, 0, 0, 0, 0, 0) },
    { "403 with a Retry-After beyond the cap: Retry-After", S(0, 0, 0, 0, 0, 0), PO_AUTH,
      F(10, 0, 0, 403, 600000, 0, 0), 0,
      PA_BACK_OFF, EVREC_E_AUTH, 600000, 0, 0, 0, 0, 0, S(1, 0, 0, 0, 0, 0) },
};

static void design_section_4_table(void **state)
{
    (void)state;
    const backoff_config_t cfg = { 1000, 300000 };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row_t *r = &rows[i];
        policy_state_t st = r->before;
        policy_action_t a = policy_decide(&st, &cfg, r->outcome, &r->facts, NOW, r->rnd);
        int same = a.verb == r->verb && a.code == r->code && a.delay_ms == r->delay_ms &&
                   st.attempt == r->after.attempt && st.clock_offset_ms == r->after.clock_offset_ms;
        if (!same)
            print_message("rule: %s\n", r->rule);
        assert_int_equal(a.verb, r->verb);
        assert_int_equal(a.code, r->code);
        assert_int_equal(a.delay_ms, r->delay_ms);
        assert_int_equal(a.back_off_after, r->back_off_after);
        assert_int_equal(a.learn_too_large, r->learn);
        assert_int_equal(a.refresh_credentials, r->refresh);
        assert_int_equal(a.clock_changed, r->clock_changed);
        assert_int_equal(a.clock_held, r->clock_held);
        assert_int_equal(st.attempt, r->after.attempt);
        assert_int_equal(st.skew_fixes, r->after.skew_fixes);
        assert_int_equal(st.token_refreshes, r->after.token_refreshes);
        assert_int_equal(st.clock_offset_ms, r->after.clock_offset_ms);
        assert_int_equal(st.skew_candidate_set, r->after.skew_candidate_set);
        if (r->after.skew_candidate_set)
            assert_int_equal(st.skew_candidate_ms, r->after.skew_candidate_ms);
    }
}

/* Pure: the same inputs give the same action and state, whatever was decided before. */
static void same_inputs_same_action(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        policy_state_t s1 = rows[i].before, s2 = rows[i].before;
        policy_action_t a1 = policy_decide(&s1, NULL, rows[i].outcome, &rows[i].facts, NOW, 12345);
        policy_action_t a2 = policy_decide(&s2, NULL, rows[i].outcome, &rows[i].facts, NOW, 12345);
        assert_memory_equal(&a1, &a2, sizeof a1);
        assert_memory_equal(&s1, &s2, sizeof s1);
    }
}

/* A throttled run backs off more each time, and a success starts again from the base. */
static void backoff_grows_and_resets(void **state)
{
    (void)state;
    const backoff_config_t cfg = { 1000, 300000 };
    policy_state_t st;
    memset(&st, 0, sizeof st);
    policy_facts_t f = { .events = 5, .status = 429, .retry_after_ms = -1 };
    uint64_t last = 0;
    for (int i = 0; i < 8; i++) {
        policy_action_t a = policy_decide(&st, &cfg, PO_THROTTLED, &f, NOW, MAXR);
        assert_true(a.delay_ms > last);
        last = a.delay_ms;
    }
    assert_int_equal(last, 1000ull * 128 - 1);
    f.status = 200;
    policy_action_t ok = policy_decide(&st, &cfg, PO_ANSWERED, &f, NOW, MAXR);
    assert_int_equal(ok.verb, PA_DELETE);
    assert_int_equal(st.attempt, 0);
    f.status = 429;
    policy_action_t again = policy_decide(&st, &cfg, PO_THROTTLED, &f, NOW, MAXR);
    assert_int_equal(again.delay_ms, 999);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(design_section_4_table),
        cmocka_unit_test(same_inputs_same_action),
        cmocka_unit_test(backoff_grows_and_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
