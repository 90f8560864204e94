/*
 * evrec_set_allocator(): every allocation evrec makes (and cJSON's on its behalf) goes through
 * the caller's functions — nothing is left allocated after close, nothing evrec allocated is
 * freed behind the allocator's back — and an allocator that runs out at any point makes
 * calls fail with an error code, never crash or leak.
 *
 * (That agent code never calls malloc & co directly is checked statically by make check-port.)
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "evrec.h"
#include "testutil.h"

/* The allocator keeps a header in front of each block, so it knows every live block's size
 * and can tell a block it handed out from one it did not (a foreign free would be a bug). */
#define MAGIC 0x65767265u

/* Aligned like max_align_t, as malloc's blocks are, so that the block after it is too (on
 * 32-bit ARM a 12-byte header left 8-byte members misaligned). */
typedef struct hdr {
    _Alignas(max_align_t) uint32_t magic;
    uint32_t pad;
    size_t size;
} hdr_t;

static long live_blocks, total_allocs, fail_at = -1, foreign_frees;

static void *count_malloc(size_t n)
{
    if (fail_at >= 0 && total_allocs >= fail_at) {
        total_allocs++;
        return NULL;
    }
    hdr_t *h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    h->magic = MAGIC;
    h->size = n;
    total_allocs++;
    live_blocks++;
    return h + 1;
}

/* Secrets that must never reach free() readable: counted when a freed block holds one. */
static const char *watched[2];
static long secrets_freed;

static int holds(const void *block, size_t size, const char *s)
{
    size_t n = strlen(s);
    return n <= size && memmem(block, size, s, n) != NULL;
}

static void count_free(void *p)
{
    if (!p)
        return;
    hdr_t *h = (hdr_t *)p - 1;
    if (h->magic != MAGIC) {
        foreign_frees++;
        return;
    }
    for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++)
        if (watched[i] && holds(p, h->size, watched[i]))
            secrets_freed++;
    h->magic = 0;
    live_blocks--;
    free(h);
}

static void *count_realloc(void *p, size_t n)
{
    if (!p)
        return count_malloc(n);
    void *q = count_malloc(n);
    if (!q)
        return NULL;
    hdr_t *h = (hdr_t *)p - 1;
    memcpy(q, p, h->size < n ? h->size : n);
    count_free(p);
    return q;
}

static void reset_counts(void)
{
    live_blocks = total_allocs = foreign_frees = 0;
    fail_at = -1;
}

/* One life of an agent: open, profile, session, events, stats, close. Returns the first
 * failing code (or EVREC_OK). */
static int agent_life(const char *store)
{
    evrec_options_t o;
    evrec_options_init(&o);
    o.no_flusher = 1;
    evrec_t *a = NULL;
    char msg[256];
    int rc = evrec_open(&a, store, &o, msg, sizeof msg);
    if (rc != EVREC_OK)
        return rc;
    rc = evrec_endpoint_set(a, NULL, "Demographic.Platform", "linux");
    if (rc == EVREC_OK)
        rc = evrec_endpoint_set_metric(a, NULL, "battery", 0.5);
    if (rc == EVREC_OK)
        rc = evrec_endpoint_set_location(a, NULL, 47.6, -122.3);
    if (rc == EVREC_OK)
        rc = evrec_session_start(a);
    for (int i = 0; rc == EVREC_OK && i < 5; i++) {
        evrec_event_t *ev = NULL;
        rc = evrec_event_new(&ev, "alloc.check");
        if (rc == EVREC_OK)
            rc = evrec_event_set_attribute(ev, "k", "v");
        if (rc == EVREC_OK)
            rc = evrec_event_set_metric(ev, "m", i);
        if (rc == EVREC_OK)
            rc = evrec_record(a, ev);
        evrec_event_free(ev);
    }
    char *json = NULL;
    if (rc == EVREC_OK)
        rc = evrec_endpoint_get_json(a, NULL, &json);
    evrec_free(json);
    evrec_stats_t st = { .struct_size = sizeof st };
    if (rc == EVREC_OK)
        rc = evrec_stats(a, &st);
    if (rc == EVREC_OK)
        rc = evrec_session_stop(a);
    int crc = evrec_close(a, 0);
    return rc != EVREC_OK ? rc : crc;
}

static void everything_goes_through_the_allocator(void **state)
{
    (void)state;
    char *dir = tu_tempdir("alloc");
    char store[600];
    snprintf(store, sizeof store, "%s/store", dir);
    reset_counts();
    assert_int_equal(evrec_set_allocator(count_malloc, count_realloc, count_free), EVREC_OK);
    assert_int_equal(agent_life(store), EVREC_OK);
    long used = total_allocs;
    assert_int_equal(evrec_set_allocator(NULL, NULL, NULL), EVREC_OK);
    printf("one agent life: %ld allocations through the caller's allocator\n", used);
    assert_true(used > 10);
    assert_int_equal(live_blocks, 0);   /* everything evrec allocated was freed */
    assert_int_equal(foreign_frees, 0); /* and only what it allocated through us */
    tu_rmtree(dir);
    free(dir);
}

/* An agent that signs with static keys and a session token: every copy of the secret key and
 * of the token (options, flusher configuration, credentials cache, canonical request, header
 * lines) is wiped before it is freed. */
static void secrets_wiped_before_free(void **state)
{
    (void)state;
    char *dir = tu_tempdir("allocwipe");
    char store[600];
    snprintf(store, sizeof store, "%s/store", dir);
    static const char secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETWIPE";
    static const char token[] = "FQoGZXIvYXdzEPTOKENWIPECHECK0123456789abcdef";
    reset_counts();
    secrets_freed = 0;
    watched[0] = secret;
    watched[1] = token;
    assert_int_equal(evrec_set_allocator(count_malloc, count_realloc, count_free), EVREC_OK);
    evrec_options_t o;
    evrec_options_init(&o);
    o.application_id = "app";
    o.region = "us-east-1";
    o.endpoint_url = "http://127.0.0.1:1"; /* refused at once: signed, then kept */
    o.access_key_id = "AKIDWIPECHECK";
    o.secret_access_key = secret;
    o.session_token = token;
    o.no_environment_credentials = 1;
    o.manual_flush = 1;
    evrec_t *a = NULL;
    char msg[256] = "";
    int rc = evrec_open(&a, store, &o, msg, sizeof msg);
    if (rc != EVREC_OK)
        fail_msg("evrec_open: %s", msg);
    evrec_event_t *ev = NULL;
    assert_int_equal(evrec_event_new(&ev, "wipe.check"), EVREC_OK);
    assert_int_equal(evrec_record(a, ev), EVREC_OK);
    evrec_event_free(ev);
    assert_int_equal(evrec_flush(a, 300), EVREC_E_TIMEOUT);
    evrec_stats_t st = { .struct_size = sizeof st };
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_true(st.retries >= 1); /* it did sign a request (refused: none went out) */
    assert_int_equal(evrec_close(a, 0), EVREC_E_TIMEOUT);
    assert_int_equal(evrec_set_allocator(NULL, NULL, NULL), EVREC_OK);
    watched[0] = watched[1] = NULL;
    assert_int_equal(live_blocks, 0);
    if (secrets_freed != 0)
        fail_msg("%ld freed blocks still held the secret key or the session token",
                 secrets_freed);
    tu_rmtree(dir);
    free(dir);
}

static void half_set_allocator_refused(void **state)
{
    (void)state;
    assert_int_equal(evrec_set_allocator(count_malloc, NULL, count_free), EVREC_E_INVALID);
}

/* Fail the 1st, 2nd, ... Nth allocation of a whole agent life: each run ends with an error
 * code (or success once N is past the last allocation), never a crash, and leaks nothing. */
static void every_allocation_may_fail(void **state)
{
    (void)state;
    char *dir = tu_tempdir("allocfail");
    char store[600];
    snprintf(store, sizeof store, "%s/store", dir);
    int succeeded = 0;
    long n;
    const char *from = getenv("EVREC_FAIL_FROM");
    for (n = from ? atol(from) : 0; n < 5000 && !succeeded; n++) {
        reset_counts();
        fail_at = n;
        assert_int_equal(evrec_set_allocator(count_malloc, count_realloc, count_free), EVREC_OK);
        int rc = agent_life(store);
        assert_int_equal(evrec_set_allocator(NULL, NULL, NULL), EVREC_OK);
        if (rc == EVREC_OK)
            succeeded = 1;
        else
            assert_true(rc < 0);
        if (live_blocks != 0)
            print_error("failing allocation %ld: %ld blocks left allocated (rc %d)\n", n,
                        live_blocks, rc);
        assert_int_equal(live_blocks, 0);
        assert_int_equal(foreign_frees, 0);
    }
    printf("allocation failure injected at each of the first %ld allocations: no crash, no "
           "leak\n", n);
    assert_true(succeeded);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(everything_goes_through_the_allocator),
        cmocka_unit_test(secrets_wiped_before_free),
        cmocka_unit_test(half_set_allocator_refused),
        cmocka_unit_test(every_allocation_may_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
