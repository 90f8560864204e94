/*
 * The record encoder's JSON writer (agent/jsonw.c) against cJSON, which it stands in for on
 * the record path: every number and string it writes must be the very text cJSON prints for
 * the same value; dates must match the printf-formatted reference. Also: the encoder writing a
 * record in place gives the same bytes whatever buffer it gets, names that collide after
 * truncation keep one value as cJSON's replace did, and ids from the buffered randomness never
 * repeat, across a fork either.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "event.h"
#include "jsonw.h"
#include "port.h"
#include "record.h"
#include "testutil.h"

static void assert_number_as_cjson(double d)
{
    cJSON *n = cJSON_CreateNumber(d);
    char *want = cJSON_PrintUnformatted(n);
    char got[32];
    size_t len = jsonw_format_number(d, got);
    if (strcmp(want, got) != 0)
        fail_msg("%.17g: cJSON prints %s, the writer %s", d, want, got);
    assert_int_equal(len, strlen(want));
    cJSON_free(want);
    cJSON_Delete(n);
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static void numbers_print_as_cjson_prints_them(void **state)
{
    (void)state;
    static const double fixed[] = {
        0, -0.0, 1, -1, 12.5, 0.1, 0.2, 0.1 + 0.2, 0.05, -0.05, 0.0001, 0.00015, 0.00001,
        9.99, 16.99, 1e14, 999999999999999.0, 1e15, 1e15 + 1, 1e16, 1e20, 1e300, -1e300, 5e-324,
        2147483647.0, 2147483648.0, -2147483648.0, -2147483649.0, 123456789012.345,
        1.0 / 3, 2.0 / 3, 3.14159265358979, 4503599627370495.5, 0.30000000000000004,
        1e-4, 9.9999999999999e-5, 100.25, 1e-3, 12345.678901
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        assert_number_as_cjson(fixed[i]);
    uint64_t s = 42;
    for (int i = 0; i < 200000; i++) {
        uint64_t r = lcg(&s);
        double d;
        switch (i % 5) {
        case 0: /* integers of every size */
            d = (double)(int64_t)(r >> (r % 53)) * (r & 1 ? -1 : 1);
            break;
        case 1: /* prices, durations: a few decimals */
            d = (double)(r % 10000000) / (double)(1 + (int)(r % 4) * 9 + ((r >> 3) % 2) * 990);
            break;
        case 2: { /* k decimals exactly */
            static const double p[] = { 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9 };
            d = (double)(int64_t)(r % 100000000000ull) / p[r % 9];
            break;
        }
        case 3: { /* any bit pattern that is a finite number */
            uint64_t bits = r << 11 ^ lcg(&s);
            memcpy(&d, &bits, sizeof d);
            if (d != d || d - d != 0)
                d = 1.5;
            break;
        }
        default: /* small fractions */
            d = (double)(r % 1000) / 1e5 + (double)(r % 7) * 1e-9;
        }
        assert_number_as_cjson(d);
    }
    char got[32];
    jsonw_format_number(1.0 / 0.0, got); /* the setters refuse these; cJSON's text anyway */
    assert_string_equal(got, "null");
}

static void strings_escape_as_cjson_escapes_them(void **state)
{
    (void)state;
    char s[300];
    for (int c = 1; c < 256; c++) { /* every byte, alone and inside text */
        for (int form = 0; form < 2; form++) {
            if (form == 0)
                snprintf(s, sizeof s, "%c", c);
            else
                snprintf(s, sizeof s, "ab%ccd%c\xc3\xa9", c, c);
            cJSON *j = cJSON_CreateString(s);
            char *want = cJSON_PrintUnformatted(j);
            char buf[64];
            jsonw_t w;
            jsonw_init(&w, buf, sizeof buf);
            jsonw_str(&w, s, strlen(s));
            assert_int_equal(w.len, strlen(want));
            assert_memory_equal(buf, want, w.len);
            assert_int_equal(jsonw_str_bytes(s, strlen(s)), strlen(want)); /* sizes agree */
            cJSON_free(want);
            cJSON_Delete(j);
        }
    }
}

/* Strings read eight bytes at a time (their escaped size, and the string written): every
 * byte at every place of longer strings (whole words, a tail, two escapes), against cJSON's
 * own output. */
static void escaped_sizes_at_every_place(void **state)
{
    (void)state;
    char s[40];
    for (int c = 1; c < 256; c++) {
        for (size_t len = 23; len <= 29; len += 6) {
            for (size_t at = 0; at < len; at++) {
                memset(s, 'x', len);
                s[len] = '\0';
                s[at] = (char)c;
                if (at + 9 < len)
                    s[at + 9] = (char)c; /* a second one in a later word */
                cJSON *j = cJSON_CreateString(s);
                char *want = cJSON_PrintUnformatted(j);
                assert_int_equal(jsonw_str_bytes(s, len), strlen(want));
                char buf[256];
                jsonw_t w;
                jsonw_init(&w, buf, sizeof buf);
                jsonw_str(&w, s, len);
                assert_int_equal(w.len, strlen(want));
                assert_memory_equal(buf, want, w.len);
                cJSON_free(want);
                cJSON_Delete(j);
            }
        }
    }
}

static void a_short_buffer_counts_what_is_needed(void **state)
{
    (void)state;
    char full[128], part[10];
    jsonw_t a, b;
    jsonw_init(&a, full, sizeof full);
    jsonw_init(&b, part, sizeof part);
    for (jsonw_t *w = &a; w; w = w == &a ? &b : NULL) {
        jsonw_raw(w, "{\"k\":", 5);
        jsonw_str(w, "va\"lue\n", 7);
        jsonw_raw(w, ",\"n\":", 5);
        jsonw_num(w, 12.25);
        jsonw_raw(w, "}", 1);
    }
    assert_int_equal(a.len, strlen("{\"k\":\"va\\\"lue\\n\",\"n\":12.25}"));
    assert_memory_equal(full, "{\"k\":\"va\\\"lue\\n\",\"n\":12.25}", a.len);
    assert_int_equal(b.len, a.len); /* counted past the end, nothing written there */
    assert_memory_equal(part, full, sizeof part);
    jsonw_t none;
    jsonw_init(&none, NULL, 100);
    jsonw_str(&none, "x", 1);
    assert_int_equal(none.len, 3);
}

static void dates_match_the_printf_reference(void **state)
{
    (void)state;
    uint64_t s = 7;
    char got[32], want[64];
    for (int i = 0; i < 100000; i++) {
        int64_t ms = (int64_t)(lcg(&s) % 253402300800000ull); /* 1970 .. 9999 */
        if (i < 4)
            ms = (int64_t[]){ 0, 253402300799999LL, 951782400000LL, 4107542399999LL }[i];
        assert_int_equal(jsonw_format_iso8601(ms, got), 24);
        int64_t back;
        assert_int_equal(event_parse_iso8601(got, &back), EVREC_OK);
        assert_true(back == ms);
        if (sizeof(time_t) < 8 && ms / 1000 > INT32_MAX)
            continue; /* a 32-bit time_t (armhf): gmtime has no reference past 2038 */
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        assert_string_equal(got, want);
    }
    assert_int_equal(jsonw_format_iso8601(253402300800000LL, got), 0); /* year 10000 */
    event_format_iso8601(253402300800000LL, got); /* still formatted, the slow way */
    assert_string_equal(got, "10000-01-01T00:00:00.000Z");
}

static event_context_t ctx(void)
{
    event_context_t c = { 0 };
    c.preferred_shape = RECORD_SHAPE_PINPOINT;
    c.now_ms = 1763805600123LL;
    c.endpoint_id = "endpoint-1";
    c.session_id = "session-1";
    c.session_start_ms = 1763805000000LL;
    c.session_duration_ms = -1;
    return c;
}

static void records_in_place_are_the_same_in_any_buffer(void **state)
{
    (void)state;
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "app.view"), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, "screen", "home \"main\"\t"), EVREC_OK);
    assert_int_equal(evrec_event_set_metric(ev, "load_ms", 12.5), EVREC_OK);
    assert_int_equal(evrec_event_set_metric(ev, "count", 3), EVREC_OK);
    event_context_t c = ctx();
    uint8_t big[4096], small[40];
    uint8_t *a = NULL, *b = NULL;
    size_t alen, blen;
    int t;
    assert_int_equal(event_encode_record_in(ev, &c, big, sizeof big, &a, &alen, &t, NULL, 0),
                     EVREC_OK);
    assert_ptr_equal(a, big);
    assert_int_equal(event_encode_record_in(ev, &c, small, sizeof small, &b, &blen, &t, NULL, 0),
                     EVREC_OK);
    assert_ptr_not_equal(b, small); /* did not fit: a buffer of its own */
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    port_free(b);
    evrec_record_view_t v;
    assert_int_equal(evrec_record_decode(big, alen, &v), EVREC_OK);
    char *frag = strndup(v.fragment, v.fragment_len);
    assert_string_equal(frag,
                        "{\"EventType\":\"app.view\",\"Timestamp\":\"2025-11-22T10:00:00.123Z\","
                        "\"Attributes\":{\"screen\":\"home \\\"main\\\"\\t\"},"
                        "\"Metrics\":{\"load_ms\":12.5,\"count\":3},"
                        "\"Session\":{\"Id\":\"session-1\",\"StartTimestamp\":"
                        "\"2025-11-22T09:50:00.000Z\"},"
                        "\"ClientSdkVersion\":\"" EVREC_VERSION_STRING "\",\"SdkName\":\"evrec\"}");
    free(frag);
    evrec_event_free(ev);
}

static void names_colliding_after_truncation_keep_the_last_value(void **state)
{
    (void)state;
    char *stem = tu_repeat("n", 50);
    char n1[64], n2[64];
    snprintf(n1, sizeof n1, "%sA", stem);
    snprintf(n2, sizeof n2, "%sB", stem);
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, n1, "first"), EVREC_E_NAME_LENGTH);
    assert_int_equal(evrec_event_set_attribute(ev, "other", "x"), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, n2, "second"), EVREC_E_NAME_LENGTH);
    assert_int_equal(evrec_event_set_metric(ev, n1, 1), EVREC_E_NAME_LENGTH); /* a metric: apart */
    event_context_t c = ctx();
    c.truncate_oversize = 1;
    uint8_t *rec;
    size_t len;
    int t;
    assert_int_equal(event_encode_record(ev, &c, &rec, &len, &t, NULL, 0), EVREC_OK);
    assert_int_equal(t, 1);
    evrec_record_view_t v;
    assert_int_equal(evrec_record_decode(rec, len, &v), EVREC_OK);
    char *frag = strndup(v.fragment, v.fragment_len);
    char want[512];
    snprintf(want, sizeof want,
             "\"Attributes\":{\"%s\":\"second\",\"other\":\"x\"},\"Metrics\":{\"%s\":1}", stem,
             stem);
    assert_non_null(strstr(frag, want));
    free(frag);
    port_free(rec);
    evrec_event_free(ev);
    free(stem);
}

static void ids_never_repeat_across_a_fork(void **state)
{
    (void)state;
    char ids[200][37];
    for (int i = 0; i < 200; i++) { /* several refills of the pool */
        assert_int_equal(event_uuid_v4(ids[i]), EVREC_OK);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[37];
        int ok = event_uuid_v4(id) == EVREC_OK;
        ssize_t n = write(fd[1], id, sizeof id);
        _exit(ok && n == (ssize_t)sizeof id ? 0 : 1);
    }
    char mine[37], child[37];
    assert_int_equal(event_uuid_v4(mine), EVREC_OK);
    assert_int_equal(read(fd[0], child, sizeof child), (ssize_t)sizeof child);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_string_not_equal(mine, child); /* the child did not reuse the parent's pool */
    close(fd[0]);
    close(fd[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_print_as_cjson_prints_them),
        cmocka_unit_test(strings_escape_as_cjson_escapes_them),
        cmocka_unit_test(escaped_sizes_at_every_place),
        cmocka_unit_test(a_short_buffer_counts_what_is_needed),
        cmocka_unit_test(dates_match_the_printf_reference),
        cmocka_unit_test(records_in_place_are_the_same_in_any_buffer),
        cmocka_unit_test(names_colliding_after_truncation_keep_the_last_value),
        cmocka_unit_test(ids_never_repeat_across_a_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
