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

#include "util_buf.h"
#include "util_str.h"
#include "util_time.h"
#include "util_utf8.h"

/* Every day from 1601 to 2400 maps to the date gmtime gives and back. */
static void calendar_matches_gmtime(void **state)
{
    (void)state;
    for (int64_t days = -135140; days <= 157000; days += 1) {
        int64_t y;
        unsigned m, d;
        util_civil_from_days(days, &y, &m, &d);
        assert_int_equal(util_days_from_civil(y, m, d), days);
        int64_t secs = days * 86400;
        if (sizeof(time_t) < 8 && (secs > INT32_MAX || secs < INT32_MIN))
            continue; /* a 32-bit time_t (armhf): gmtime has no reference out of 1901..2038 */
        time_t t = (time_t)secs;
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        assert_int_equal(y, tm.tm_year + 1900);
        assert_int_equal(m, (unsigned)tm.tm_mon + 1);
        assert_int_equal(d, (unsigned)tm.tm_mday);
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

/* The atoms both ISO 8601 grammars are made of. */
static void date_atoms(void **state)
{
    (void)state;
    const char *p = "2024x";
    int v = -1;
    assert_int_equal(util_digits(&p, 4, &v), 0);
    assert_int_equal(v, 2024);
    assert_string_equal(p, "x");
    const char *q = "1a";
    assert_int_equal(util_digits(&q, 2, &v), -1);
    assert_string_equal(q, "1a"); /* not moved */
    assert_true(util_valid_civil(2024, 2, 29, 23, 59, 59));
    assert_false(util_valid_civil(2023, 2, 29, 0, 0, 0));
    assert_false(util_valid_civil(2023, 13, 1, 0, 0, 0));
    assert_false(util_valid_civil(2023, 4, 31, 0, 0, 0));
    assert_false(util_valid_civil(2023, 1, 0, 0, 0, 0));
    assert_false(util_valid_civil(2023, 1, 1, 24, 0, 0));
    assert_false(util_valid_civil(2023, 1, 1, 0, 60, 0));
    assert_false(util_valid_civil(2023, 1, 1, 0, 0, 60));
}

/* The strict count refuses what the services refuse; the lenient one (for strings cJSON
 * already decoded) agrees with it on valid text. */
static void utf8_counts(void **state)
{
    (void)state;
    const char *valid[] = { "", "abc", "h\xc3\xa9llo", "\xe2\x82\xac", "\xf0\x9f\x98\x80x" };
    const long chars[] = { 0, 3, 5, 1, 2 };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        assert_int_equal(util_utf8_chars(valid[i], strlen(valid[i])), chars[i]);
        assert_int_equal(util_utf8_count(valid[i]), (size_t)chars[i]);
    }
    const char *invalid[] = { "\x80", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                              "\xf8\x88\x80\x80\x80" };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        assert_int_equal(util_utf8_chars(invalid[i], strlen(invalid[i])), -1);
}

/* The detail goes into the carrier's buffer, truncated to fit; the code comes back. */
static void failf_writes_and_returns_the_code(void **state)
{
    (void)state;
    char buf[16];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(util_failf(buf, sizeof buf, -13, "options.%s: %d", "durability", 7), -13);
    assert_string_equal(buf, "options.durabil");
    assert_int_equal(util_failf(NULL, 0, -2, "no buffer %d", 1), -2);
    char one[1] = { 'x' };
    assert_int_equal(util_failf(one, sizeof one, -5, "%s", "anything"), -5);
    assert_int_equal(one[0], '\0');
}

/* RFC 3986: unreserved characters stay, every other byte is %XX in capitals. */
static void percent_encoding(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(util_percent_encode("a b/\xc3\xa9~-._Z9", out, sizeof out), 0);
    assert_string_equal(out, "a%20b%2F%C3%A9~-._Z9");
    assert_int_equal(util_percent_encode("", out, sizeof out), 0);
    assert_string_equal(out, "");
    char small[6] = "keep";
    assert_int_equal(util_percent_encode("a/b/c", small, sizeof small), -1);
    assert_string_equal(small, "keep"); /* unchanged when it does not fit */
    assert_int_equal(util_percent_encode("ab/c", small, sizeof small), -1);
    assert_int_equal(util_percent_encode("abcde", small, sizeof small), 0);
}

/* Appends grow the string in both modes; an empty buffer reads as "". */
static void growing_strings(void **state)
{
    (void)state;
    for (int wipe = 0; wipe < 2; wipe++) {
        util_buf_t b = { .wipe = wipe };
        assert_string_equal(util_buf_str(&b), "");
        for (int i = 0; i < 1000; i++)
            util_buf_putc(&b, (char)('a' + i % 26));
        util_buf_printf(&b, "%0300d|%s", 7, "end");
        util_buf_puts(&b, "!");
        assert_int_equal(b.len, 1000 + 300 + 4 + 1);
        assert_false(b.oom);
        const char *t = util_buf_str(&b);
        assert_int_equal(t[0], 'a');
        assert_int_equal(t[26], 'a');
        assert_string_equal(t + 1000 + 299, "7|end!");
        util_buf_free(&b);
        assert_null(b.data);
        assert_int_equal(b.wipe, wipe); /* kept for reuse */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(calendar_matches_gmtime),
        cmocka_unit_test(days_in_month_knows_leap_years),
        cmocka_unit_test(utf8_counts),
        cmocka_unit_test(failf_writes_and_returns_the_code),
        cmocka_unit_test(percent_encoding),
        cmocka_unit_test(growing_strings),
        cmocka_unit_test(date_atoms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
