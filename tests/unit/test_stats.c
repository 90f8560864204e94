/* evrec_stats_t.struct_size: evrec_stats() fills the caller's struct only as far as it says
 * (a program built against an older header passes a shorter one) and reports how far. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "evrec.h"
#include "testutil.h"

static evrec_t *open_agent(char **dir)
{
    *dir = tu_tempdir("stats");
    evrec_options_t o;
    evrec_options_init(&o);
    o.application_id = "app";
    o.region = "us-east-1";
    o.no_flusher = 1;
    evrec_t *a = NULL;
    assert_int_equal(evrec_open(&a, *dir, &o, NULL, 0), EVREC_OK);
    evrec_event_t *ev = NULL;
    assert_int_equal(evrec_event_new(&ev, "e"), EVREC_OK);
    assert_int_equal(evrec_record(a, ev), EVREC_OK);
    evrec_event_free(ev);
    return a;
}

static void full_struct_is_filled(void **state)
{
    (void)state;
    char *dir;
    evrec_t *a = open_agent(&dir);
    evrec_stats_t st = { .struct_size = sizeof st };
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.struct_size, sizeof st);
    assert_int_equal(st.queued_events, 1);
    assert_int_equal(st.recorded, 1);
    /* a larger struct (a program built against a newer header) is filled as far as ours */
    unsigned char big[sizeof(evrec_stats_t) + 64];
    memset(big, 0xAB, sizeof big);
    evrec_stats_t *bp = (evrec_stats_t *)(void *)big;
    bp->struct_size = sizeof big;
    assert_int_equal(evrec_stats(a, bp), EVREC_OK);
    assert_int_equal(bp->struct_size, sizeof(evrec_stats_t));
    assert_int_equal(bp->queued_events, 1);
    assert_int_equal(big[sizeof(evrec_stats_t)], 0xAB);
    assert_int_equal(big[sizeof big - 1], 0xAB);
    evrec_close(a, 0);
    tu_rmtree(dir);
    free(dir);
}

static void short_struct_is_filled_as_far_as_it_reaches(void **state)
{
    (void)state;
    char *dir;
    evrec_t *a = open_agent(&dir);
    evrec_stats_t st;
    memset(&st, 0xCD, sizeof st);
    st.struct_size = offsetof(evrec_stats_t, endpoints);
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.struct_size, offsetof(evrec_stats_t, endpoints));
    assert_int_equal(st.queued_events, 1);
    assert_true(st.queued_bytes > 0);
    uint64_t untouched;
    memset(&untouched, 0xCD, sizeof untouched);
    assert_memory_equal(&st.endpoints, &untouched, sizeof untouched);
    assert_memory_equal(&st.recorded, &untouched, sizeof untouched);
    evrec_close(a, 0);
    tu_rmtree(dir);
    free(dir);
}

static void missing_struct_size_is_refused(void **state)
{
    (void)state;
    char *dir;
    evrec_t *a = open_agent(&dir);
    evrec_stats_t st;
    memset(&st, 0xCD, sizeof st);
    st.struct_size = 0;
    assert_int_equal(evrec_stats(a, &st), EVREC_E_INVALID);
    assert_non_null(strstr(evrec_last_error(a), "struct_size"));
    assert_int_equal(st.struct_size, 0); /* nothing written */
    st.struct_size = sizeof(size_t);
    assert_int_equal(evrec_stats(a, &st), EVREC_E_INVALID);
    evrec_close(a, 0);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    tu_isolate_aws_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_struct_is_filled),
        cmocka_unit_test(short_struct_is_filled_as_far_as_it_reaches),
        cmocka_unit_test(missing_struct_size_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
