/* Events encrypted at rest (agent/seal.c): records sealed with AES-256-GCM, their keys, and
 * the store check at open. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "port.h"
#include "queue.h"
#include "record.h"
#include "seal.h"
#include "testutil.h"

static const char *const KEY_A = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char *const KEY_B = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

static char *write_keys(const char *dir, const char *name, const char *text, mode_t mode)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(p, mode), 0);
    return p;
}

static seal_keys_t *keys_of(const char *dir, const char *text)
{
    char *p = write_keys(dir, "keys", text, 0600);
    seal_keys_t *k = NULL;
    char err[256];
    int rc = seal_keys_from_file(&k, p, err, sizeof err);
    if (rc)
        fail_msg("keys: %s", err);
    free(p);
    return k;
}

/* A plain record with a secret in it. */
static size_t plain_record(uint8_t *buf, const char *secret)
{
    evrec_record_view_t v = { 0 };
    v.shape = 1;
    v.flags = EVREC_RECORD_F_TRUNCATED;
    v.created_ms = 1700000000123;
    v.event_id = "event-1";
    v.event_id_len = 7;
    v.endpoint_id = "device-7";
    v.endpoint_id_len = 8;
    v.fragment = secret;
    v.fragment_len = strlen(secret);
    return evrec_record_encode(&v, buf);
}

static void sealed_round_trip_hides_the_event(void **state)
{
    (void)state;
    char *dir = tu_tempdir("seal");
    seal_keys_t *k = keys_of(dir, KEY_A);
    uint8_t plain[256];
    const char *secret = "{\"who\":\"alice@example.com\"}";
    size_t n = plain_record(plain, secret);
    uint8_t *sealed = NULL;
    size_t slen = 0;
    assert_int_equal(seal_record(k, plain, n, &sealed, &slen), EVREC_OK);
    assert_int_equal(slen, n + SEAL_OVERHEAD);
    assert_null(memmem(sealed, slen, "alice", 5));
    assert_null(memmem(sealed, slen, "device-7", 8));
    /* the plain header stays readable: shape, flags (sealed), created */
    evrec_record_view_t h;
    assert_int_equal(evrec_record_header(sealed, slen, &h), EVREC_OK);
    assert_int_equal(h.format, EVREC_RECORD_FORMAT_SEALED);
    assert_int_equal(h.shape, 1);
    assert_int_equal(h.created_ms, 1700000000123);
    assert_true(h.flags & EVREC_RECORD_F_SEALED);
    assert_true(h.flags & EVREC_RECORD_F_TRUNCATED);
    /* without keys it is not readable, and never read as plain */
    evrec_record_view_t v;
    assert_int_equal(evrec_record_decode(sealed, slen, &v), EVREC_E_KEY);
    seal_buf_t buf = { NULL, 0 };
    assert_int_equal(seal_decode(NULL, sealed, slen, &buf, &v), EVREC_E_KEY);
    assert_int_equal(seal_decode(k, sealed, slen, &buf, &v), EVREC_OK);
    assert_int_equal(v.fragment_len, strlen(secret));
    assert_memory_equal(v.fragment, secret, v.fragment_len);
    assert_int_equal(v.fragment[v.fragment_len], '\0');
    assert_memory_equal(v.endpoint_id, "device-7", 8);
    /* two seals of one record differ (a fresh nonce each) */
    uint8_t *again = NULL;
    size_t alen = 0;
    assert_int_equal(seal_record(k, plain, n, &again, &alen), EVREC_OK);
    assert_int_not_equal(memcmp(again, sealed, slen), 0);
    /* any flipped bit (header, nonce, body, tag) fails authentication */
    for (size_t i = 0; i < slen; i += 7) {
        sealed[i] ^= 0x10;
        int rc = seal_decode(k, sealed, slen, &buf, &v);
        assert_true(rc == EVREC_E_CORRUPT || rc == EVREC_E_KEY || rc == EVREC_E_FORMAT_VERSION);
        sealed[i] ^= 0x10;
    }
    /* plain records still decode through seal_decode */
    assert_int_equal(seal_decode(k, plain, n, &buf, &v), EVREC_OK);
    assert_ptr_equal(v.fragment, (const char *)plain + (v.fragment - (const char *)plain));
    seal_buf_free(&buf);
    port_free(again);
    port_free(sealed);
    seal_keys_free(k);
    tu_rmtree(dir);
    free(dir);
}

/* Rotation: a record sealed with the old key opens with [new, old]; the new key seals. */
static void keys_rotate(void **state)
{
    (void)state;
    char *dir = tu_tempdir("seal");
    seal_keys_t *old = keys_of(dir, KEY_A);
    char both[300];
    snprintf(both, sizeof both, "# rotated\n%s\n\n%s\n", KEY_B, KEY_A);
    seal_keys_t *rot = keys_of(dir, both);
    seal_keys_t *only_new = keys_of(dir, KEY_B);
    char ida[17], idb[17];
    seal_current_id(old, ida);
    seal_current_id(rot, idb);
    assert_string_not_equal(ida, idb);
    uint8_t plain[256];
    size_t n = plain_record(plain, "{\"x\":1}");
    uint8_t *s_old = NULL, *s_new = NULL;
    size_t l_old = 0, l_new = 0;
    assert_int_equal(seal_record(old, plain, n, &s_old, &l_old), EVREC_OK);
    assert_int_equal(seal_record(rot, plain, n, &s_new, &l_new), EVREC_OK);
    seal_buf_t buf = { NULL, 0 };
    evrec_record_view_t v;
    assert_int_equal(seal_decode(rot, s_old, l_old, &buf, &v), EVREC_OK);
    assert_int_equal(seal_decode(rot, s_new, l_new, &buf, &v), EVREC_OK);
    assert_int_equal(seal_decode(only_new, s_old, l_old, &buf, &v), EVREC_E_KEY);
    assert_int_equal(seal_decode(old, s_new, l_new, &buf, &v), EVREC_E_KEY);
    seal_buf_free(&buf);
    port_free(s_old);
    port_free(s_new);
    seal_keys_free(old);
    seal_keys_free(rot);
    seal_keys_free(only_new);
    tu_rmtree(dir);
    free(dir);
}

static void expect_key_file_error(const char *dir, const char *text, mode_t mode, int code,
                                  const char *needle)
{
    char *p = write_keys(dir, "bad", text, mode);
    seal_keys_t *k = (seal_keys_t *)1;
    char err[256] = "";
    assert_int_equal(seal_keys_from_file(&k, p, err, sizeof err), code);
    assert_null(k);
    if (!strstr(err, needle))
        fail_msg("'%s' does not say '%s'", err, needle);
    free(p);
}

static void key_files_checked(void **state)
{
    (void)state;
    char *dir = tu_tempdir("seal");
    expect_key_file_error(dir, KEY_A, 0644, EVREC_E_UNSAFE, "chmod 0600");
    expect_key_file_error(dir, KEY_A, 0620, EVREC_E_UNSAFE, "chmod 0600");
    expect_key_file_error(dir, "", 0600, EVREC_E_KEY, "holds no key");
    expect_key_file_error(dir, "# only a comment\n", 0600, EVREC_E_KEY, "holds no key");
    expect_key_file_error(dir, "0011", 0600, EVREC_E_KEY, "line 1");
    char text[300];
    snprintf(text, sizeof text, "%s\n%.63sz\n", KEY_A, KEY_B);
    expect_key_file_error(dir, text, 0600, EVREC_E_KEY, "line 2");
    char *missing = NULL;
    assert_true(asprintf(&missing, "%s/none", dir) > 0);
    seal_keys_t *k = NULL;
    char err[256];
    assert_int_equal(seal_keys_from_file(&k, missing, err, sizeof err), EVREC_E_KEY);
    assert_int_equal(seal_keys_from_file(&k, dir, err, sizeof err), EVREC_E_KEY);
    free(missing);
    /* 0640 (a group store's key) and CRLF lines are fine */
    snprintf(text, sizeof text, "%s\r\n", KEY_A);
    char *ok = write_keys(dir, "ok", text, 0640);
    assert_int_equal(seal_keys_from_file(&k, ok, err, sizeof err), EVREC_OK);
    seal_keys_free(k);
    free(ok);
    tu_rmtree(dir);
    free(dir);
}

static void append_raw(evrec_queue_t *q, const uint8_t *rec, size_t len)
{
    assert_int_equal(queue_append(q, rec, len, 0, NULL), EVREC_OK);
}

/* At open: a store with sealed records, or marked encrypted, needs its keys. */
static void store_check_at_open(void **state)
{
    (void)state;
    char *dir = tu_tempdir("seal");
    char store[600];
    snprintf(store, sizeof store, "%s/store", dir);
    seal_keys_t *a = keys_of(dir, KEY_A), *b = keys_of(dir, KEY_B);
    evrec_queue_t *q = NULL;
    char err[512];
    assert_int_equal(queue_open(&q, store, NULL, err, sizeof err), EVREC_OK);
    /* a plain store opens without keys, and with them (it is then marked encrypted) */
    assert_int_equal(seal_check_store(NULL, q, err, sizeof err), EVREC_OK);
    uint8_t plain[256];
    size_t n = plain_record(plain, "{\"x\":1}");
    append_raw(q, plain, n);
    assert_int_equal(seal_check_store(a, q, err, sizeof err), EVREC_OK);
    /* marked: without keys it is refused even with no sealed record in it */
    assert_int_equal(seal_check_store(NULL, q, err, sizeof err), EVREC_E_KEY);
    assert_non_null(strstr(err, "encrypted"));
    uint8_t *s = NULL;
    size_t sl = 0;
    assert_int_equal(seal_record(a, plain, n, &s, &sl), EVREC_OK);
    append_raw(q, s, sl);
    port_free(s);
    assert_int_equal(seal_check_store(a, q, err, sizeof err), EVREC_OK);
    /* a wrong key: refused, naming the missing key's id and how many events need it */
    assert_int_equal(seal_check_store(b, q, err, sizeof err), EVREC_E_KEY);
    char ida[17];
    seal_current_id(a, ida);
    assert_non_null(strstr(err, ida));
    assert_non_null(strstr(err, "1 of the store's 1"));
    queue_close(q);
    seal_keys_free(a);
    seal_keys_free(b);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sealed_round_trip_hides_the_event),
        cmocka_unit_test(keys_rotate),
        cmocka_unit_test(key_files_checked),
        cmocka_unit_test(store_check_at_open),
    };
    return cmocka_run_group_tests_name("seal", tests, NULL, NULL);
}
