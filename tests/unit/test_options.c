/* evrec_options_init() gives the defaults agent/options.def (and README.md's table, generated
 * from it) documents, and evrec_open() copies every string option. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "evrec.h"
#include "testutil.h"

static void defaults_as_documented(void **state)
{
    (void)state;
    evrec_options_t o;
    memset(&o, 0xA5, sizeof o);
    evrec_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.service, EVREC_SERVICE_PINPOINT);
    assert_null(o.application_id);
    assert_null(o.credentials_cb);
    assert_int_equal(o.connect_timeout_ms, 10000);
    assert_int_equal(o.request_timeout_ms, 60000);
    assert_int_equal(o.max_response_bytes, 1024 * 1024);
    assert_int_equal(o.durability, EVREC_DURABLE_PROCESS);
    assert_int_equal(o.sync_interval_ms, 1000);
    assert_int_equal(o.commit_interval_ms, 1000);
    assert_int_equal(o.commit_max_events, 100);
    assert_int_equal(o.max_store_bytes, 64ull * 1024 * 1024);
    assert_int_equal(o.full_policy, EVREC_FULL_DROP_OLDEST);
    assert_int_equal(o.max_event_age_ms, 30ull * 24 * 3600 * 1000);
    assert_int_equal(o.session_timeout_ms, 5000);
    assert_int_equal(o.flush_interval_ms, 30000);
    assert_int_equal(o.flush_threshold_events, 100);
    assert_int_equal(o.max_batch_events, 0);
    assert_int_equal(o.backoff_base_ms, 1000);
    assert_int_equal(o.backoff_cap_ms, 300000);
    assert_int_equal(o.log_level, EVREC_LOG_WARN);
    assert_int_equal(o.partition_key, EVREC_PARTITION_ENDPOINT);
    assert_int_equal(o.daily_upload_bytes, 0);
    assert_null(o.encryption_key_file);
    assert_null(o.encryption_keys_user);
}

/* The caller may free or change its strings as soon as evrec_open() returns. */
static void strings_are_copied(void **state)
{
    (void)state;
    char *dir = tu_tempdir("options");
    char app[] = "app-one", endpoint[] = "endpoint-one";
    evrec_options_t o;
    evrec_options_init(&o);
    o.application_id = app;
    o.endpoint_id = endpoint;
    o.region = "us-east-1";
    o.no_flusher = 1;
    evrec_t *a = NULL;
    assert_int_equal(evrec_open(&a, dir, &o, NULL, 0), EVREC_OK);
    memset(endpoint, 'x', sizeof endpoint - 1);
    memset(app, 'x', sizeof app - 1);
    assert_string_equal(evrec_endpoint_id(a), "endpoint-one");
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    tu_isolate_aws_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_as_documented),
        cmocka_unit_test(strings_are_copied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
