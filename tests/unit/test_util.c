/* The support layer (agent/util_*.c): one copy of each piece of plumbing, checked here once
 * against the C library's own answers. */
#define _DEFAULT_SOURCE /* timegm */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "util_time.h"

/* Every day from 1601 to 2400 maps to the date gmtime gives and back. */
static void calendar_matches_gmtime(void **state)
{
    (void)state;
    for (int64_t days = -135140; days <= 157000; days += 1) {
        int64_t y;
        unsigned m, d;
        util_civil_from_days(days, &y, &m, &d);
        time_t t = (time_t)(days * 86400);
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        assert_int_equal(y, tm.tm_year + 1900);
        assert_int_equal(m, (unsigned)tm.tm_mon + 1);
        assert_int_equal(d, (unsigned)tm.tm_mday);
        assert_int_equal(util_days_from_civil(y, m, d), days);
    }
}

static void days_in_month_knows_leap_years(void **state)
{
    (void)state;
    assert_int_equal(util_days_in_month(2024, 2), 29);
    assert_int_equal(util_days_in_month(2023, 2), 28);
    assert_int_equal(util_days_in_month(1900, 2), 28);
    assert_int_equal(util_days_in_month(2000, 2), 29);
    assert_int_equal(util_days_in_month(2023, 4), 30);
    assert_int_equal(util_days_in_month(2023, 12), 31);
    assert_int_equal(util_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(util_days_from_civil(0, 1, 1), -719528);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(calendar_matches_gmtime),
        cmocka_unit_test(days_in_month_knows_leap_years),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
