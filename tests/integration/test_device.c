/* On the device: queue purge and export (API and CLI), and the other support commands of a
 * device's store. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "evrec.h"
#include "testutil.h"

typedef struct fixture {
    char *dir;
    char store[600];
    const char *cli;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = tu_tempdir("device");
    if (!f->dir)
        return -1;
    snprintf(f->store, sizeof f->store, "%s/store", f->dir);
    f->cli = getenv("EVREC_CLI");
    if (!f->cli || !*f->cli)
        f->cli = "build/evrec";
    tu_isolate_aws_env();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Run the CLI with up to 30 arguments (NULL-terminated); out and err are the caller's. */
static int run_cli(fixture_t *f, char **out, char **err, ...)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = f->cli;
    va_list ap;
    va_start(ap, err);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return tu_run(argv, NULL, out, err);
}

static int lines_in(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static evrec_t *open_as(const char *store, evrec_service_t service)
{
    evrec_options_t o;
    evrec_options_init(&o);
    o.no_flusher = 1;
    o.service = service;
    if (service == EVREC_SERVICE_PERSONALIZE)
        o.tracking_id = "tracker";
    else
        o.application_id = "app";
    o.region = "us-east-1";
    evrec_t *a = NULL;
    char msg[256];
    int rc = evrec_open(&a, store, &o, msg, sizeof msg);
    if (rc)
        fail_msg("open: %s", msg);
    return a;
}

static evrec_t *open_store(const char *store)
{
    return open_as(store, EVREC_SERVICE_PINPOINT);
}

static void record_one(evrec_t *a, const char *type, const char *endpoint, int64_t ts_ms,
                       const char *user_id)
{
    evrec_event_t *ev = NULL;
    assert_int_equal(evrec_event_new(&ev, type), EVREC_OK);
    if (endpoint)
        assert_int_equal(evrec_event_set_endpoint_id(ev, endpoint), EVREC_OK);
    if (ts_ms)
        assert_int_equal(evrec_event_set_timestamp(ev, ts_ms), EVREC_OK);
    if (user_id)
        assert_int_equal(evrec_event_set_user_id(ev, user_id), EVREC_OK);
    if (user_id)
        assert_int_equal(evrec_event_set_session_id(ev, "session-1"), EVREC_OK);
    assert_int_equal(evrec_record(a, ev), EVREC_OK);
    evrec_event_free(ev);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct lines {
    char text[8192];
    int n;
} lines_t;

static int collect_line(void *user, const char *json, size_t len)
{
    lines_t *l = user;
    assert_int_equal(strlen(json), len);
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof l->text - used, "%s\n", json);
    l->n++;
    return 0;
}

static int stop_after_one(void *user, const char *json, size_t len)
{
    (void)json;
    (void)len;
    ++*(int *)user;
    return 7;
}

/* Four events: an old one, one of another endpoint, a Personalize-shaped one (recorded by a
 * Personalize agent on the same store) and a plain one. */
static void record_four(const char *store)
{
    int64_t now = wall_ms();
    evrec_t *a = open_store(store);
    record_one(a, "old", NULL, now - 10LL * 86400 * 1000, NULL);
    record_one(a, "other", "endpoint-2", 0, NULL);
    evrec_close(a, 0);
    a = open_as(store, EVREC_SERVICE_PERSONALIZE);
    record_one(a, "personal", NULL, 0, "user-1");
    evrec_close(a, 0);
    a = open_store(store);
    record_one(a, "plain", NULL, 0, NULL);
    evrec_close(a, 0);
}

static void purge_and_export_api(void **state)
{
    fixture_t *f = *state;
    record_four(f->store);
    evrec_t *a = open_store(f->store);
    evrec_filter_t flt;
    evrec_filter_init(&flt);
    uint64_t n = 99;
    /* A filter with no criterion purges nothing unless it says all. */
    assert_int_equal(evrec_purge(a, &flt, &n), EVREC_E_INVALID);
    assert_int_equal(n, 0);
    assert_non_null(strstr(evrec_last_error(a), "all"));
    flt.shape = 5;
    assert_int_equal(evrec_purge(a, &flt, &n), EVREC_E_INVALID);
    /* Export with and without a filter. */
    lines_t all = { "", 0 };
    assert_int_equal(evrec_export(a, NULL, collect_line, &all), EVREC_OK);
    assert_int_equal(all.n, 4);
    assert_non_null(strstr(all.text, "\"EndpointId\":\"endpoint-2\""));
    assert_non_null(strstr(all.text, "\"UserId\":\"user-1\""));
    lines_t pz = { "", 0 };
    evrec_filter_init(&flt);
    flt.shape = EVREC_SERVICE_PERSONALIZE;
    assert_int_equal(evrec_export(a, &flt, collect_line, &pz), EVREC_OK);
    assert_int_equal(pz.n, 1);
    cJSON *o = cJSON_Parse(pz.text);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "Service")->valuestring, "personalize");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "Event"), "eventType")
                            ->valuestring, "personal");
    cJSON_Delete(o);
    int calls = 0;
    assert_int_equal(evrec_export(a, NULL, stop_after_one, &calls), 7);
    assert_int_equal(calls, 1);
    /* Purge by age, then by endpoint and shape together, then all. */
    evrec_filter_init(&flt);
    flt.created_before_ms = wall_ms() - 5LL * 86400 * 1000;
    assert_int_equal(evrec_purge(a, &flt, &n), EVREC_OK);
    assert_int_equal(n, 1);
    evrec_filter_init(&flt);
    flt.endpoint_id = "endpoint-2";
    flt.shape = EVREC_SERVICE_PERSONALIZE; /* endpoint-2's event is Pinpoint-shaped */
    assert_int_equal(evrec_purge(a, &flt, &n), EVREC_OK);
    assert_int_equal(n, 0);
    flt.shape = EVREC_SERVICE_PINPOINT;
    assert_int_equal(evrec_purge(a, &flt, &n), EVREC_OK);
    assert_int_equal(n, 1);
    evrec_stats_t st;
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.queued_events, 2);
    assert_int_equal(st.dropped_purged, 2);
    evrec_filter_init(&flt);
    flt.all = 1;
    assert_int_equal(evrec_purge(a, &flt, &n), EVREC_OK);
    assert_int_equal(n, 2);
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.queued_events, 0);
    assert_int_equal(st.dropped_purged, 4);
    assert_int_equal(st.recorded, 4);
    evrec_close(a, 0);
}

static void purge_and_export_cli(void **state)
{
    fixture_t *f = *state;
    record_four(f->store);
    char *out = NULL, *err = NULL;
    assert_int_equal(run_cli(f, &out, &err, "queue", "export", "--store", f->store, NULL), 0);
    assert_int_equal(lines_in(out), 4);
    free(out);
    free(err);
    assert_int_equal(run_cli(f, &out, &err, "queue", "export", "--store", f->store,
                             "--older-than", "5d", NULL), 0);
    assert_int_equal(lines_in(out), 1);
    assert_non_null(strstr(out, "\"EventType\":\"old\""));
    free(out);
    free(err);
    /* Purge needs --yes, and a criterion or --all; both are usage errors, nothing goes. */
    assert_int_equal(run_cli(f, &out, &err, "queue", "purge", "--store", f->store,
                             "--older-than", "5d", NULL), 2);
    assert_non_null(strstr(err, "--yes"));
    free(out);
    free(err);
    assert_int_equal(run_cli(f, &out, &err, "queue", "purge", "--store", f->store, "--yes",
                             NULL), 2);
    free(out);
    free(err);
    assert_int_equal(run_cli(f, &out, &err, "queue", "purge", "--store", f->store,
                             "--service", "nosuch", "--yes", NULL), 2);
    free(out);
    free(err);
    assert_int_equal(run_cli(f, &out, &err, "queue", "export", "--store", f->store, NULL), 0);
    assert_int_equal(lines_in(out), 4);
    free(out);
    free(err);
    assert_int_equal(run_cli(f, &out, &err, "queue", "purge", "--store", f->store,
                             "--older-than", "5d", "--yes", NULL), 0);
    assert_string_equal(out, "{\"purged\":1}\n");
    free(out);
    free(err);
    assert_int_equal(run_cli(f, &out, &err, "queue", "purge", "--store", f->store,
                             "--endpoint-id", "endpoint-2", "--yes", NULL), 0);
    assert_string_equal(out, "{\"purged\":1}\n");
    free(out);
    free(err);
    assert_int_equal(run_cli(f, &out, &err, "queue", "purge", "--store", f->store,
                             "--service", "personalize", "--yes", NULL), 0);
    assert_string_equal(out, "{\"purged\":1}\n");
    free(out);
    free(err);
    assert_int_equal(run_cli(f, &out, &err, "stats", "--store", f->store, NULL), 0);
    assert_non_null(strstr(out, "\"purged\":3"));
    assert_non_null(strstr(out, "\"events\":1"));
    free(out);
    free(err);
    assert_int_equal(run_cli(f, &out, &err, "queue", "purge", "--store", f->store, "--all",
                             "--yes", NULL), 0);
    assert_string_equal(out, "{\"purged\":1}\n");
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(purge_and_export_api, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_and_export_cli, setup, teardown),
    };
    return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
