/* The daily upload budget of metered links (agent/meter.c): pure, the clock is given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "meter.h"

#define DAY METER_DAY_MS
#define NOON(d) ((int64_t)(d) * DAY + DAY / 2)

static void no_budget_never_holds(void **state)
{
    (void)state;
    meter_t m = { 0, 0, 0 };
    meter_spend(&m, 1u << 30, NOON(20000));
    assert_int_equal(meter_wait_ms(&m, 1u << 30, NOON(20000)), 0);
    assert_true(meter_left(&m, NOON(20000)) == UINT64_MAX);
    assert_int_equal(meter_used_today(&m, NOON(20000)), 1u << 30);
}

static void budget_holds_until_the_next_utc_day(void **state)
{
    (void)state;
    meter_t m = { 1000, 0, 0 };
    int64_t t = NOON(20000);
    assert_int_equal(meter_wait_ms(&m, 600, t), 0);
    meter_spend(&m, 600, t);
    assert_int_equal(meter_left(&m, t), 400);
    assert_int_equal(meter_wait_ms(&m, 400, t), 0);
    /* 401 bytes do not fit: wait for midnight UTC, half a day from noon */
    assert_int_equal(meter_wait_ms(&m, 401, t), DAY / 2);
    assert_int_equal(meter_wait_ms(&m, 401, t + 1000), DAY / 2 - 1000);
    /* the next day starts from zero */
    assert_int_equal(meter_wait_ms(&m, 1000, NOON(20001)), 0);
    assert_int_equal(meter_left(&m, NOON(20001)), 1000);
    assert_int_equal(meter_used_today(&m, NOON(20001)), 0);
    meter_spend(&m, 10, NOON(20001));
    assert_int_equal(m.day, 20001);
    assert_int_equal(m.used, 10);
}

/* A request larger than the whole budget goes as the first of a day, and only then. */
static void first_request_of_a_day_always_goes(void **state)
{
    (void)state;
    meter_t m = { 100, 0, 0 };
    int64_t t = NOON(20000);
    assert_int_equal(meter_wait_ms(&m, 5000, t), 0);
    meter_spend(&m, 5000, t);
    assert_int_equal(meter_left(&m, t), 0);
    assert_true(meter_wait_ms(&m, 1, t) > 0);
}

static void state_round_trips_as_text(void **state)
{
    (void)state;
    meter_t m = { 7, 20000, 123456789012ULL }, back = { 7, 0, 0 };
    char text[64];
    meter_format(&m, text, sizeof text);
    assert_string_equal(text, "20000 123456789012");
    assert_int_equal(meter_parse(&back, text, strlen(text)), 0);
    assert_int_equal(back.day, 20000);
    assert_true(back.used == 123456789012ULL);
    static const char *const bad[] = { "", "1", "x 2", "1 2 3", "1 2x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        meter_t keep = { 7, 5, 6 };
        assert_int_equal(meter_parse(&keep, bad[i], strlen(bad[i])), -1);
        assert_int_equal(keep.day, 5);
        assert_int_equal(keep.used, 6);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_budget_never_holds),
        cmocka_unit_test(budget_holds_until_the_next_utc_day),
        cmocka_unit_test(first_request_of_a_day_always_goes),
        cmocka_unit_test(state_round_trips_as_text),
    };
    return cmocka_run_group_tests_name("meter", tests, NULL, NULL);
}
