/* The stored record format: encode/decode round trip and rejection of damaged values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "record.h"

static evrec_record_view_t sample(void)
{
    evrec_record_view_t v = { 0 };
    v.shape = 0;
    v.flags = EVREC_RECORD_F_TRUNCATED;
    v.created_ms = 1763800000123LL;
    v.event_id = "ev-1";
    v.event_id_len = 4;
    v.endpoint_id = "endpoint-A";
    v.endpoint_id_len = 10;
    v.session_id = "s1";
    v.session_id_len = 2;
    v.fragment = "{\"EventType\":\"x\"}";
    v.fragment_len = strlen(v.fragment);
    return v;
}

static void round_trip(void **state)
{
    (void)state;
    evrec_record_view_t v = sample();
    uint8_t buf[256];
    size_t n = evrec_record_encode(&v, buf);
    assert_int_equal(n, evrec_record_size(&v));
    evrec_record_view_t d;
    assert_int_equal(evrec_record_decode(buf, n, &d), 0);
    assert_int_equal(d.format, EVREC_RECORD_FORMAT);
    assert_int_equal(d.flags, EVREC_RECORD_F_TRUNCATED);
    assert_true(d.created_ms == v.created_ms);
    assert_memory_equal(d.event_id, "ev-1", 4);
    assert_memory_equal(d.endpoint_id, "endpoint-A", 10);
    assert_memory_equal(d.session_id, "s1", 2);
    assert_int_equal(d.user_id_len, 0);
    assert_int_equal(d.fragment_len, v.fragment_len);
    assert_memory_equal(d.fragment, v.fragment, v.fragment_len);
}

static void rejects_damage(void **state)
{
    (void)state;
    evrec_record_view_t v = sample();
    uint8_t buf[256];
    size_t n = evrec_record_encode(&v, buf);
    evrec_record_view_t d;
    assert_int_equal(evrec_record_decode(buf, n - 1, &d), EVREC_E_CORRUPT);
    assert_int_equal(evrec_record_decode(buf, 10, &d), EVREC_E_CORRUPT);
    buf[0] = EVREC_RECORD_FORMAT_SEALED + 1;
    assert_int_equal(evrec_record_decode(buf, n, &d), EVREC_E_FORMAT_VERSION);
    buf[0] = EVREC_RECORD_FORMAT_SEALED; /* encrypted: opened with its key (seal.h) only */
    assert_int_equal(evrec_record_decode(buf, n, &d), EVREC_E_KEY);
    buf[0] = EVREC_RECORD_FORMAT;
    buf[16] = 0xff; /* fragment length beyond the value */
    assert_int_equal(evrec_record_decode(buf, n, &d), EVREC_E_CORRUPT);
}

/* The current format ends the fragment with a NUL; the first format (none) is still read. */
static void fragment_nul_and_format_one(void **state)
{
    (void)state;
    evrec_record_view_t v = sample();
    uint8_t buf[256];
    size_t n = evrec_record_encode(&v, buf);
    assert_int_equal(n, EVREC_RECORD_HEADER_SIZE + 4 + 10 + 2 + v.fragment_len + 1);
    evrec_record_view_t d;
    assert_int_equal(evrec_record_decode(buf, n, &d), 0);
    assert_true(d.fragment_nul);
    assert_string_equal(d.fragment, v.fragment); /* usable as a C string in place */
    buf[n - 1] = '}'; /* the NUL overwritten */
    assert_int_equal(evrec_record_decode(buf, n, &d), EVREC_E_CORRUPT);
    buf[n - 1] = 0;
    buf[0] = 1; /* format 1: the same bytes without the NUL */
    assert_int_equal(evrec_record_decode(buf, n - 1, &d), 0);
    assert_false(d.fragment_nul);
    assert_int_equal(d.fragment_len, v.fragment_len);
    assert_memory_equal(d.fragment, v.fragment, v.fragment_len);
    assert_int_equal(evrec_record_decode(buf, n, &d), EVREC_E_CORRUPT); /* one byte too many */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(rejects_damage),
        cmocka_unit_test(fragment_nul_and_format_one),
    };
    return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
