/* session.c's state machine: transitions, durations without paused time, timeouts, restored
 * (orphaned) sessions, and the persisted form. Pure: times are given, no clock is read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "session.h"

#define T0 1764547200000LL /* 2025-12-01T00:00:00Z */

static session_state_t started(const char *id, int64_t at)
{
    session_state_t s = { 0 }, next;
    session_emit_t e;
    assert_int_equal(session_begin(&s, id, at, &next, &e), EVREC_OK);
    assert_string_equal(e.event_type, SESSION_START);
    assert_string_equal(e.id, id);
    assert_true(e.start_ms == at && e.at_ms == at);
    assert_true(e.stop_ms == 0 && e.duration_ms == -1);
    return next;
}

static void start_then_stop(void **state)
{
    (void)state;
    session_state_t s = started("s-1", T0), next;
    assert_true(s.open && !s.paused);
    session_emit_t e;
    assert_int_equal(session_end(&s, T0 + 12345, &next, &e), EVREC_OK);
    assert_string_equal(e.event_type, SESSION_STOP);
    assert_string_equal(e.id, "s-1");
    assert_true(e.start_ms == T0);
    assert_true(e.stop_ms == T0 + 12345);
    assert_true(e.at_ms == T0 + 12345);
    assert_true(e.duration_ms == 12345);
    assert_false(next.open);
}

static void pauses_are_not_counted(void **state)
{
    (void)state;
    session_state_t s = started("s-2", T0), p, r, p2, r2, end;
    session_emit_t e;
    assert_int_equal(session_suspend(&s, T0 + 2000, &p, &e), EVREC_OK);
    assert_string_equal(e.event_type, SESSION_PAUSE);
    assert_true(e.at_ms == T0 + 2000 && e.duration_ms == -1 && e.start_ms == T0);
    assert_int_equal(session_continue(&p, T0 + 7000, &r, &e), EVREC_OK);
    assert_string_equal(e.event_type, SESSION_RESUME);
    assert_true(e.at_ms == T0 + 7000);
    assert_int_equal(session_suspend(&r, T0 + 8000, &p2, &e), EVREC_OK);
    assert_int_equal(session_continue(&p2, T0 + 9500, &r2, &e), EVREC_OK);
    assert_int_equal(session_end(&r2, T0 + 10000, &end, &e), EVREC_OK);
    /* 10 s elapsed, 5 s + 1.5 s of it paused */
    assert_true(e.duration_ms == 3500);
    assert_true(e.stop_ms == T0 + 10000);
}

static void stop_while_paused_ends_at_the_pause(void **state)
{
    (void)state;
    session_state_t s = started("s-3", T0), p, end;
    session_emit_t e;
    assert_int_equal(session_suspend(&s, T0 + 4000, &p, &e), EVREC_OK);
    assert_int_equal(session_end(&p, T0 + 60000, &end, &e), EVREC_OK);
    assert_true(e.stop_ms == T0 + 4000);
    assert_true(e.at_ms == T0 + 4000);
    assert_true(e.duration_ms == 4000);
}

static void illegal_transitions(void **state)
{
    (void)state;
    session_state_t none = { 0 }, next, s = started("s-4", T0), p;
    memset(&next, 0x5a, sizeof next);
    session_state_t untouched = next;
    session_emit_t e;
    assert_int_equal(session_end(&none, T0, &next, &e), EVREC_E_STATE);
    assert_int_equal(session_suspend(&none, T0, &next, &e), EVREC_E_STATE);
    assert_int_equal(session_continue(&none, T0, &next, &e), EVREC_E_STATE);
    assert_int_equal(session_begin(&s, "again", T0, &next, &e), EVREC_E_STATE);
    assert_int_equal(session_continue(&s, T0, &next, &e), EVREC_E_STATE); /* not paused */
    assert_memory_equal(&next, &untouched, sizeof next);
    assert_int_equal(session_suspend(&s, T0 + 1, &p, &e), EVREC_OK);
    assert_int_equal(session_suspend(&p, T0 + 2, &next, &e), EVREC_E_STATE);
    /* ids must fit */
    char long_id[SESSION_ID_LEN + 4];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(session_begin(&none, long_id, T0, &next, &e), EVREC_E_ID);
    assert_int_equal(session_begin(&none, NULL, T0, &next, &e), EVREC_E_ID);
}

static void timeout_is_strictly_longer(void **state)
{
    (void)state;
    session_state_t s = started("s-5", T0), p;
    session_emit_t e;
    assert_false(session_expired(&s, T0 + 100000, 5000)); /* running, never expires */
    assert_int_equal(session_suspend(&s, T0 + 1000, &p, &e), EVREC_OK);
    assert_false(session_expired(&p, T0 + 6000, 5000));
    assert_true(session_expired(&p, T0 + 6001, 5000));
    assert_true(session_expired(&p, T0 + 1001, 0));
    /* the stop of an expired session is at its pause, whatever the time of the resume */
    assert_true(session_stop_time(&p, T0 + 99999) == T0 + 1000);
}

static void restored_session_stops_at_last_known_time(void **state)
{
    (void)state;
    session_state_t s = started("s-6", T0), next;
    session_touch(&s, T0 + 30000);
    assert_true(s.last_ms == T0 + 30000);
    session_touch(&s, T0 + 10000); /* an older time never moves it back */
    assert_true(s.last_ms == T0 + 30000);
    s.restored = 1; /* as session_new loads it after a crash */
    session_emit_t e;
    assert_true(session_stop_time(&s, T0 + 3600000) == T0 + 30000);
    assert_int_equal(session_end(&s, T0 + 3600000, &next, &e), EVREC_OK);
    assert_true(e.stop_ms == T0 + 30000);
    assert_true(e.duration_ms == 30000);
    /* once the session is used again it is alive: a stop is at the time of the stop */
    session_touch(&s, T0 + 40000);
    assert_false(s.restored);
    assert_true(session_stop_time(&s, T0 + 50000) == T0 + 50000);
}

static void clock_going_backwards(void **state)
{
    (void)state;
    session_state_t s = started("s-7", T0), next;
    session_emit_t e;
    assert_int_equal(session_end(&s, T0 - 5000, &next, &e), EVREC_OK);
    assert_true(e.stop_ms == T0);
    assert_true(e.duration_ms == 0);
    session_state_t p;
    s = started("s-8", T0);
    assert_int_equal(session_suspend(&s, T0 + 1000, &p, &e), EVREC_OK);
    assert_int_equal(session_continue(&p, T0 + 500, &next, &e), EVREC_OK);
    assert_true(next.paused_total_ms == 0);
}

static void persisted_form_round_trips(void **state)
{
    (void)state;
    session_state_t s = started("0b6cf0f4-5d6e-4b1f-9d43-8c5a3c1f2e77", T0), p, d;
    session_emit_t e;
    assert_int_equal(session_suspend(&s, T0 + 2500, &p, &e), EVREC_OK);
    p.paused_total_ms = 777;
    char buf[256];
    assert_int_equal(session_encode(&p, buf, sizeof buf), EVREC_OK);
    assert_int_equal(session_decode(buf, strlen(buf), &d), EVREC_OK);
    assert_true(d.open && d.paused);
    assert_string_equal(d.id, p.id);
    assert_true(d.start_ms == T0 && d.pause_ms == T0 + 2500 && d.paused_total_ms == 777);
    assert_true(d.last_ms == p.last_ms);
    assert_false(d.restored);
    session_state_t closed = { 0 };
    assert_int_equal(session_encode(&closed, buf, sizeof buf), EVREC_OK);
    assert_int_equal(session_decode(buf, strlen(buf), &d), EVREC_OK);
    assert_false(d.open);
    /* too small a buffer is an error, not a cut */
    assert_int_equal(session_encode(&p, buf, 20), EVREC_E_INVALID);
}

static void damaged_state_is_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "not json",
        "[1,2]",
        "{\"open\":1}",
        "{\"v\":1,\"open\":1,\"id\":\"\",\"start\":1,\"paused\":0,\"pause\":0,"
        "\"paused_total\":0,\"last\":1}",
        "{\"v\":1,\"open\":1,\"id\":\"x\",\"start\":\"1\",\"paused\":0,\"pause\":0,"
        "\"paused_total\":0,\"last\":1}",
        "{\"v\":1,\"open\":1,\"id\":\"x\",\"start\":-5,\"paused\":0,\"pause\":0,"
        "\"paused_total\":0,\"last\":1}",
        "{\"v\":1,\"open\":1,\"id\":\"0123456789012345678901234567890123456789\",\"start\":1,"
        "\"paused\":0,\"pause\":0,\"paused_total\":0,\"last\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        session_state_t d;
        memset(&d, 0x33, sizeof d);
        assert_int_equal(session_decode(bad[i], strlen(bad[i]), &d), EVREC_E_JSON);
        assert_false(d.open);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(start_then_stop),
        cmocka_unit_test(pauses_are_not_counted),
        cmocka_unit_test(stop_while_paused_ends_at_the_pause),
        cmocka_unit_test(illegal_transitions),
        cmocka_unit_test(timeout_is_strictly_longer),
        cmocka_unit_test(restored_session_stops_at_last_known_time),
        cmocka_unit_test(clock_going_backwards),
        cmocka_unit_test(persisted_form_round_trips),
        cmocka_unit_test(damaged_state_is_refused),
    };
    return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
