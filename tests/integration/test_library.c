/* The public API end to end on a real store: open/record/close/reopen, options validation,
 * many threads recording, stats, errors with messages (and nothing lost), endpoint wrappers,
 * sessions (including a crashed process's orphaned session), and delivery to the local
 * endpoint. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "agent.h"
#include "evrec.h"
#include "record.h"
#include "testutil.h"

/* Sessions and record times run on this clock where a test moves time instead of sleeping. */
static int64_t g_wall_ms;
static int64_t test_wall(void *user)
{
    (void)user;
    return g_wall_ms;
}

static void use_test_clock(evrec_t *a)
{
    static const port_clock_t clock = { test_wall, NULL, NULL };
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    g_wall_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    agent_set_clock(a, &clock);
}

#define FAKE_KEY "AKIDEXAMPLE"
#define FAKE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

typedef struct fixture {
    char *dir;   /* parent temp dir */
    char store[600];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = tu_tempdir("lib");
    if (!f->dir)
        return -1;
    snprintf(f->store, sizeof f->store, "%s/store", f->dir);
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

static evrec_options_t record_only(void)
{
    evrec_options_t o;
    evrec_options_init(&o);
    o.no_flusher = 1;
    return o;
}

static evrec_t *open_ok(const char *store, const evrec_options_t *o)
{
    evrec_t *a = NULL;
    char msg[512] = "";
    int rc = evrec_open(&a, store, o, msg, sizeof msg);
    if (rc != EVREC_OK)
        fprintf(stderr, "evrec_open: %s (%s)\n", evrec_strerror(rc), msg);
    assert_int_equal(rc, EVREC_OK);
    assert_non_null(a);
    return a;
}

static int record_simple(evrec_t *a, const char *type, const char *attr, char *id_out)
{
    evrec_event_t *ev = NULL;
    int rc = evrec_event_new(&ev, type);
    if (rc == EVREC_OK && attr)
        rc = evrec_event_set_attribute(ev, "k", attr);
    if (rc == EVREC_OK)
        rc = evrec_record(a, ev);
    if (rc == EVREC_OK && id_out)
        snprintf(id_out, 64, "%s", evrec_event_id(ev));
    evrec_event_free(ev);
    return rc;
}

/* The queued records as a JSON array of {"id","endpoint","session","user","event"}. */
static int collect_one(void *user, uint64_t seq, const void *value, size_t len)
{
    (void)seq;
    cJSON *arr = user;
    evrec_record_view_t v;
    assert_int_equal(evrec_record_decode(value, len, &v), 0);
    cJSON *o = cJSON_CreateObject();
    char buf[300];
    snprintf(buf, sizeof buf, "%.*s", (int)v.event_id_len, v.event_id);
    cJSON_AddStringToObject(o, "id", buf);
    snprintf(buf, sizeof buf, "%.*s", (int)v.endpoint_id_len, v.endpoint_id);
    cJSON_AddStringToObject(o, "endpoint", buf);
    snprintf(buf, sizeof buf, "%.*s", (int)v.session_id_len, v.session_id);
    cJSON_AddStringToObject(o, "session", buf);
    snprintf(buf, sizeof buf, "%.*s", (int)v.user_id_len, v.user_id);
    cJSON_AddStringToObject(o, "user", buf);
    cJSON_AddNumberToObject(o, "flags", v.flags);
    cJSON *ev = cJSON_ParseWithLength(v.fragment, v.fragment_len);
    assert_non_null(ev);
    cJSON_AddItemToObject(o, "event", ev);
    cJSON_AddItemToArray(arr, o);
    return 0;
}

static cJSON *queued(evrec_t *a)
{
    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(queue_scan(a->queue, 0, collect_one, arr), 0);
    return arr;
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static const char *event_type(const cJSON *item)
{
    return str_at(cJSON_GetObjectItemCaseSensitive(item, "event"), "EventType", NULL);
}

static const cJSON *session_of(const cJSON *item)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, "event"),
                                            "Session");
}

/* ---------------------------------------------------------------------------------------- */

static void record_close_reopen_keeps_events(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o = record_only();
    evrec_t *a = open_ok(f->store, &o);
    char ids[3][64];
    for (int i = 0; i < 3; i++)
        assert_int_equal(record_simple(a, "app.click", "v", ids[i]), EVREC_OK);
    char endpoint[EVREC_ID_MAX];
    snprintf(endpoint, sizeof endpoint, "%s", evrec_endpoint_id(a));
    assert_int_equal(strlen(endpoint), 36);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);

    struct stat st;
    assert_int_equal(stat(f->store, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    a = open_ok(f->store, &o);
    assert_string_equal(evrec_endpoint_id(a), endpoint); /* persisted */
    evrec_stats_t s = { .struct_size = sizeof s };
    assert_int_equal(evrec_stats(a, &s), EVREC_OK);
    assert_int_equal(s.queued_events, 3);
    assert_int_equal(s.recorded, 3);
    assert_true(s.queued_bytes > 0);
    assert_true(s.oldest_ms > 0);
    cJSON *q = queued(a);
    assert_int_equal(cJSON_GetArraySize(q), 3);
    for (int i = 0; i < 3; i++) {
        const cJSON *it = cJSON_GetArrayItem(q, i);
        assert_string_equal(str_at(it, "id", NULL), ids[i]);
        assert_string_equal(str_at(it, "endpoint", NULL), endpoint);
        assert_string_equal(event_type(it), "app.click");
        assert_string_equal(str_at(cJSON_GetObjectItemCaseSensitive(it, "event"), "Attributes",
                                   "k"), "v");
    }
    cJSON_Delete(q);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

static void expect_config_error(const char *store, const evrec_options_t *o, const char *needle)
{
    evrec_t *a = (evrec_t *)0x1;
    char msg[512] = "";
    int rc = evrec_open(&a, store, o, msg, sizeof msg);
    assert_int_equal(rc, EVREC_E_CONFIG);
    assert_null(a);
    if (!strstr(msg, needle))
        fail_msg("message '%s' does not name '%s'", msg, needle);
    struct stat st;
    assert_int_not_equal(stat(store, &st), 0); /* configuration is checked before the disk */
}

static void options_are_validated(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o;

    evrec_options_init(&o);
    expect_config_error(f->store, &o, "application_id"); /* Pinpoint uploads need it */
    evrec_options_init(&o);
    o.service = EVREC_SERVICE_PERSONALIZE;
    expect_config_error(f->store, &o, "tracking_id");
    o.tracking_id = "tracker";
    o.max_batch_events = 11;
    expect_config_error(f->store, &o, "max_batch_events");
    evrec_options_init(&o);
    o.application_id = "app";
    o.backoff_base_ms = 5000;
    o.backoff_cap_ms = 100;
    expect_config_error(f->store, &o, "backoff_base_ms");
    evrec_options_init(&o);
    o.application_id = "app";
    o.endpoint_url = "ftp://example.com";
    expect_config_error(f->store, &o, "endpoint_url");
    evrec_options_init(&o);
    o.application_id = "app";
    o.access_key_id = "AKID";
    expect_config_error(f->store, &o, "secret_access_key");
    evrec_options_init(&o);
    o.manual_flush = 1;
    o.no_flusher = 1;
    expect_config_error(f->store, &o, "manual_flush");
    /* A half-configured credential provider fails here, not at each upload. */
    evrec_options_init(&o);
    o.application_id = "app";
    o.iot_credentials_endpoint = "127.0.0.1:9";
    o.iot_role_alias = "alias";
    expect_config_error(f->store, &o, "iot_thing_name is not");
    o.iot_thing_name = "thing";
    o.iot_cert_file = "/nonexistent/cert.pem";
    expect_config_error(f->store, &o, "iot_key_file is not");
    o.iot_key_file = "/nonexistent/key.pem";
    o.iot_role_alias = "a/b";
    expect_config_error(f->store, &o, "iot_role_alias");
    evrec_options_init(&o);
    o.application_id = "app";
    o.session_token = "token";
    expect_config_error(f->store, &o, "session_token");
    evrec_options_init(&o);
    o.application_id = "app";
    o.cognito_identity_pool_id = "us-east-1";
    expect_config_error(f->store, &o, "cognito_identity_pool_id");
    evrec_options_init(&o);
    o.no_flusher = 1;
    o.max_store_bytes = 0;
    expect_config_error(f->store, &o, "max_store_bytes");
    evrec_options_init(&o);
    o.no_flusher = 1;
    o.durability = (evrec_durability_t)7;
    expect_config_error(f->store, &o, "durability");
    evrec_options_init(&o);
    o.struct_size = 0;
    expect_config_error(f->store, &o, "evrec_options_init");
    /* no region anywhere */
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    evrec_options_init(&o);
    o.application_id = "app";
    expect_config_error(f->store, &o, "region");
    setenv("AWS_REGION", "us-east-1", 1);

    /* bad arguments */
    char msg[128] = "";
    assert_int_equal(evrec_open(NULL, f->store, NULL, msg, sizeof msg), EVREC_E_INVALID);
    evrec_t *a = NULL;
    assert_int_equal(evrec_open(&a, "", NULL, msg, sizeof msg), EVREC_E_INVALID);
    assert_non_null(strstr(msg, "store_dir"));
    assert_int_equal(evrec_close(NULL, 0), EVREC_OK);
    assert_string_equal(evrec_last_error(NULL), "");

    /* defaults documented in evrec.h */
    evrec_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.durability, EVREC_DURABLE_PROCESS);
    assert_int_equal(o.sync_interval_ms, 1000);
    assert_int_equal(o.commit_interval_ms, 1000);
    assert_int_equal(o.commit_max_events, 100);
    assert_true(o.max_store_bytes == 64ull * 1024 * 1024);
    assert_true(o.max_event_age_ms == 30ull * 86400 * 1000);
    assert_int_equal(o.session_timeout_ms, 5000);
    assert_int_equal(o.flush_interval_ms, 30000);
    assert_int_equal(o.flush_threshold_events, 100);
    assert_int_equal(o.backoff_base_ms, 1000);
    assert_int_equal(o.backoff_cap_ms, 300000);
    assert_int_equal(o.connect_timeout_ms, 10000);
    assert_int_equal(o.request_timeout_ms, 60000);
    assert_int_equal(o.max_response_bytes, 1024 * 1024);
    assert_int_equal(o.log_level, EVREC_LOG_WARN);
    assert_int_equal(o.full_policy, EVREC_FULL_DROP_OLDEST);
}

typedef struct worker {
    evrec_t *agent;
    int index;
    int n;
    int failures;
} worker_t;

static void *record_many(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < w->n; i++) {
        evrec_event_t *ev = NULL;
        char v[32];
        snprintf(v, sizeof v, "%d-%d", w->index, i);
        if (evrec_event_new(&ev, "thread.event") != EVREC_OK ||
            evrec_event_set_attribute(ev, "who", v) != EVREC_OK ||
            evrec_event_set_metric(ev, "i", i) != EVREC_OK || evrec_record(w->agent, ev) != EVREC_OK)
            w->failures++;
        evrec_event_free(ev);
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void many_threads_record(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o = record_only();
    evrec_t *a = open_ok(f->store, &o);
    enum { THREADS = 8, EACH = 150 };
    pthread_t t[THREADS];
    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){ a, i, EACH, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, record_many, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    evrec_stats_t s = { .struct_size = sizeof s };
    assert_int_equal(evrec_stats(a, &s), EVREC_OK);
    assert_int_equal(s.queued_events, THREADS * EACH);
    assert_int_equal(s.recorded, THREADS * EACH);
    /* every event is there once: distinct ids and every (thread, i) value */
    cJSON *q = queued(a);
    int n = cJSON_GetArraySize(q);
    assert_int_equal(n, THREADS * EACH);
    const char **ids = calloc((size_t)n, sizeof *ids);
    const char **vals = calloc((size_t)n, sizeof *vals);
    for (int i = 0; i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(q, i);
        ids[i] = str_at(it, "id", NULL);
        vals[i] = str_at(cJSON_GetObjectItemCaseSensitive(it, "event"), "Attributes", "who");
        assert_non_null(vals[i]);
    }
    qsort(ids, (size_t)n, sizeof *ids, cmp_str);
    qsort(vals, (size_t)n, sizeof *vals, cmp_str);
    for (int i = 1; i < n; i++) {
        assert_true(strcmp(ids[i - 1], ids[i]) != 0);
        assert_true(strcmp(vals[i - 1], vals[i]) != 0);
    }
    free(ids);
    free(vals);
    cJSON_Delete(q);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

typedef struct peek {
    evrec_t *agent;
    char seen[512];
} peek_t;

static void *other_thread_error(void *arg)
{
    peek_t *p = arg;
    snprintf(p->seen, sizeof p->seen, "%s", evrec_last_error(p->agent));
    return NULL;
}

static void errors_have_messages_and_lose_nothing(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o = record_only();
    o.max_store_bytes = 16 * 1024;
    o.full_policy = EVREC_FULL_REFUSE_NEW;
    evrec_t *a = open_ok(f->store, &o);

    /* an over-long attribute value: the setter says so, the record refuses it */
    evrec_event_t *ev = NULL;
    assert_int_equal(evrec_event_new(&ev, "too.long"), EVREC_OK);
    char big[260];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(evrec_event_set_attribute(ev, "note", big), EVREC_E_VALUE_LENGTH);
    assert_int_equal(evrec_record(a, ev), EVREC_E_VALUE_LENGTH);
    assert_non_null(strstr(evrec_last_error(a), "note"));
    evrec_event_free(ev);
    assert_int_equal(evrec_record(a, NULL), EVREC_E_INVALID);
    assert_non_null(strstr(evrec_last_error(a), "NULL"));

    /* messages are per thread */
    peek_t p = { a, "unset" };
    pthread_t t;
    pthread_create(&t, NULL, other_thread_error, &p);
    pthread_join(t, NULL);
    assert_string_equal(p.seen, "");

    /* fill the store: refusals are counted and name the cause; what was stored stays */
    int stored = 0, refused = 0;
    char pad[180];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < 400 && refused < 3; i++) {
        int rc = record_simple(a, "fill", pad, NULL);
        if (rc == EVREC_OK) {
            stored++;
        } else {
            assert_int_equal(rc, EVREC_E_FULL);
            assert_non_null(strstr(evrec_last_error(a), "full"));
            refused++;
        }
    }
    assert_true(stored > 10);
    assert_int_equal(refused, 3);
    evrec_stats_t s = { .struct_size = sizeof s };
    assert_int_equal(evrec_stats(a, &s), EVREC_OK);
    assert_int_equal(s.queued_events, stored);
    assert_int_equal(s.dropped_refused, 3);
    assert_int_equal(s.dropped_evicted, 0);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);

    /* the same events after a reopen */
    a = open_ok(f->store, &o);
    assert_int_equal(evrec_stats(a, &s), EVREC_OK);
    assert_int_equal(s.queued_events, stored);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

static void truncation_is_counted(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o = record_only();
    o.truncate_oversize = 1;
    evrec_t *a = open_ok(f->store, &o);
    evrec_event_t *ev = NULL;
    assert_int_equal(evrec_event_new(&ev, "cut"), EVREC_OK);
    char big[300];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    (void)evrec_event_set_attribute(ev, "note", big);
    assert_int_equal(evrec_record(a, ev), EVREC_OK);
    evrec_event_free(ev);
    assert_int_equal(record_simple(a, "whole", "v", NULL), EVREC_OK);
    evrec_stats_t s = { .struct_size = sizeof s };
    assert_int_equal(evrec_stats(a, &s), EVREC_OK);
    assert_int_equal(s.truncated, 1);
    assert_int_equal(s.queued_events, 2);
    cJSON *q = queued(a);
    const char *kept = str_at(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(q, 0), "event"),
                              "Attributes", "note");
    assert_non_null(kept);
    assert_int_equal(strlen(kept), 200);
    cJSON_Delete(q);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int record_at(evrec_t *a, const char *type, int64_t unix_ms)
{
    evrec_event_t *ev = NULL;
    int rc = evrec_event_new(&ev, type);
    if (rc == EVREC_OK)
        rc = evrec_event_set_timestamp(ev, unix_ms);
    if (rc == EVREC_OK)
        rc = evrec_record(a, ev);
    evrec_event_free(ev);
    return rc;
}

/* An event older than max_event_age would only be dropped later as expired: it is refused
 * when recorded, with its own code, and nothing is stored or counted as recorded. */
static void too_old_refused_at_record(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o = record_only();
    o.max_event_age_ms = 60000;
    evrec_t *a = open_ok(f->store, &o);
    int64_t now = wall_ms();
    assert_int_equal(record_at(a, "old", now - 120000), EVREC_E_TOO_OLD);
    assert_non_null(strstr(evrec_last_error(a), "max_event_age"));
    assert_string_equal(evrec_strerror(EVREC_E_TOO_OLD), "event is older than max_event_age");
    assert_int_equal(record_at(a, "recent", now - 1000), EVREC_OK);
    assert_int_equal(record_at(a, "future", now + 1000), EVREC_OK);
    evrec_stats_t s = { .struct_size = sizeof s };
    assert_int_equal(evrec_stats(a, &s), EVREC_OK);
    assert_int_equal(s.queued_events, 2);
    assert_int_equal(s.recorded, 2);
    assert_int_equal(s.dropped_expired, 0);
    cJSON *q = queued(a);
    assert_string_equal(event_type(cJSON_GetArrayItem(q, 0)), "recent");
    assert_string_equal(event_type(cJSON_GetArrayItem(q, 1)), "future");
    cJSON_Delete(q);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);

    /* A session paused longer than max_event_age still ends and a new one starts: its stop
     * (stamped at the pause) is the one event not recorded. */
    o.max_event_age_ms = 5;
    o.session_timeout_ms = 0;
    a = open_ok(f->store, &o);
    use_test_clock(a);
    assert_int_equal(evrec_session_start(a), EVREC_OK);
    assert_int_equal(evrec_session_pause(a), EVREC_OK);
    g_wall_ms += 30; /* the pause outlives max_event_age */
    assert_int_equal(evrec_session_resume(a), EVREC_OK);
    q = queued(a);
    const char *want[] = { "recent", "future", "_session.start", "_session.pause",
                           "_session.start" };
    assert_int_equal(cJSON_GetArraySize(q), 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(event_type(cJSON_GetArrayItem(q, i)), want[i]);
    cJSON_Delete(q);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

typedef struct evictions {
    pthread_mutex_t mu;
    pthread_cond_t more; /* signalled by each report */
    pthread_t caller;
    int wrong_thread; /* called on the recording thread */
    int n;
    char ids[400][64];
    char endpoint[64];
} evictions_t;

static void on_drop(void *user, const evrec_delivery_t *d)
{
    evictions_t *e = user;
    pthread_mutex_lock(&e->mu);
    if (pthread_equal(pthread_self(), e->caller))
        e->wrong_thread++;
    if (d->outcome == EVREC_OUTCOME_DROPPED && strcmp(d->reason, "evicted") == 0 && e->n < 400) {
        snprintf(e->ids[e->n++], 64, "%s", d->event_id);
        snprintf(e->endpoint, sizeof e->endpoint, "%s", d->endpoint_id);
        pthread_cond_broadcast(&e->more);
    }
    pthread_mutex_unlock(&e->mu);
}

/* evrec.h says DROPPED covers evicted events: every event evicted to stay within
 * max_store_bytes reaches on_delivery (oldest first, reason "evicted"), from the agent's
 * background thread or its flusher's, not from evrec_record(). */
static void evictions_reported(const char *store, int with_flusher)
{
    static evictions_t e;
    memset(&e, 0, sizeof e);
    pthread_mutex_init(&e.mu, NULL);
    pthread_cond_init(&e.more, NULL);
    e.caller = pthread_self();
    evrec_options_t o = record_only();
    if (with_flusher) { /* nothing reachable: the flusher only reports */
        o.no_flusher = 0;
        o.application_id = "app";
        o.region = "us-east-1";
        o.endpoint_url = "http://127.0.0.1:1";
        o.access_key_id = "AKIDEXAMPLE";
        o.secret_access_key = "secret";
        o.flush_interval_ms = 600000;
        o.flush_threshold_events = 100000;
    }
    o.max_store_bytes = 16 * 1024;
    o.on_delivery = on_drop;
    o.delivery_user = &e;
    evrec_t *a = open_ok(store, &o);
    char pad[201];
    memset(pad, 'p', 200);
    pad[200] = '\0';
    static char ids[300][64];
    for (int i = 0; i < 300; i++)
        assert_int_equal(record_simple(a, "fill", pad, ids[i]), EVREC_OK);
    evrec_stats_t s = { .struct_size = sizeof s };
    assert_int_equal(evrec_stats(a, &s), EVREC_OK);
    assert_true(s.dropped_evicted > 0);
    char endpoint[EVREC_ID_MAX];
    snprintf(endpoint, sizeof endpoint, "%s", evrec_endpoint_id(a));
    /* The background thread reports within a tick (at most a second): wait for its reports,
     * woken by each, with a generous deadline. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&e.mu);
    while ((uint64_t)e.n < s.dropped_evicted &&
           pthread_cond_timedwait(&e.more, &e.mu, &deadline) == 0)
        ;
    pthread_mutex_unlock(&e.mu);
    assert_int_equal(evrec_close(a, 0), with_flusher ? EVREC_E_TIMEOUT : EVREC_OK);
    assert_int_equal((uint64_t)e.n, s.dropped_evicted);
    assert_int_equal(e.wrong_thread, 0);
    assert_string_equal(e.endpoint, endpoint);
    for (int i = 0; i < e.n; i++) /* the oldest, in order */
        assert_string_equal(e.ids[i], ids[i]);
    pthread_mutex_destroy(&e.mu);
    pthread_cond_destroy(&e.more);
}

static void evictions_reach_on_delivery(void **state)
{
    fixture_t *f = *state;
    evictions_reported(f->store, 0);
    char other[700];
    snprintf(other, sizeof other, "%s/with-flusher", f->dir);
    evictions_reported(other, 1);
}

static void endpoint_wrappers(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o = record_only();
    evrec_t *a = open_ok(f->store, &o);
    assert_int_equal(evrec_endpoint_set(a, NULL, "Demographic.Make", "Acme"), EVREC_OK);
    assert_int_equal(evrec_endpoint_set(a, NULL, "ChannelType", "GCM"), EVREC_OK);
    assert_int_equal(evrec_endpoint_set_location(a, NULL, 47.6, -122.3), EVREC_OK);
    const char *plans[] = { "gold", "silver" };
    assert_int_equal(evrec_endpoint_set_attribute(a, NULL, "plan", plans, 2), EVREC_OK);
    const char *team[] = { "blue" };
    assert_int_equal(evrec_endpoint_set_user_attribute(a, NULL, "team", team, 1), EVREC_OK);
    assert_int_equal(evrec_endpoint_set_metric(a, NULL, "battery", 0.5), EVREC_OK);
    /* bad input names the field and changes nothing */
    assert_int_equal(evrec_endpoint_set(a, NULL, "ChannelType", "CARRIER_PIGEON"), EVREC_E_ENUM);
    assert_non_null(strstr(evrec_last_error(a), "ChannelType"));
    assert_int_equal(evrec_endpoint_set(a, "gateway-child-1", "Address", "child"), EVREC_OK);

    char *json = NULL;
    assert_int_equal(evrec_endpoint_get_json(a, NULL, &json), EVREC_OK);
    cJSON *p = cJSON_Parse(json);
    evrec_free(json);
    assert_non_null(p);
    assert_string_equal(str_at(p, "Demographic", "Make"), "Acme");
    assert_string_equal(str_at(p, "ChannelType", NULL), "GCM");
    const cJSON *loc = cJSON_GetObjectItemCaseSensitive(p, "Location");
    assert_true(cJSON_GetObjectItemCaseSensitive(loc, "Latitude")->valuedouble == 47.6);
    const cJSON *plan = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(p, "Attributes"), "plan");
    assert_int_equal(cJSON_GetArraySize(plan), 2);
    assert_string_equal(cJSON_GetArrayItem(plan, 1)->valuestring, "silver");
    const cJSON *ua = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(p, "User"), "UserAttributes");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ua, "team"), 0)
                            ->valuestring, "blue");
    assert_true(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "Metrics"),
                                                 "battery")->valuedouble == 0.5);
    assert_null(cJSON_GetObjectItemCaseSensitive(p, "Address")); /* that was the child's */
    cJSON_Delete(p);
    assert_int_equal(evrec_endpoint_get_json(a, "gateway-child-1", &json), EVREC_OK);
    assert_non_null(strstr(json, "child"));
    evrec_free(json);
    /* n = 0 removes an attribute */
    assert_int_equal(evrec_endpoint_set_attribute(a, NULL, "plan", NULL, 0), EVREC_OK);
    assert_int_equal(evrec_endpoint_get_json(a, NULL, &json), EVREC_OK);
    assert_null(strstr(json, "gold"));
    evrec_free(json);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

static void personalize_user_from_endpoint(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o = record_only();
    o.service = EVREC_SERVICE_PERSONALIZE;
    evrec_t *a = open_ok(f->store, &o);
    /* Personalize needs a session id: without a session (or one on the event) it is refused */
    assert_int_equal(record_simple(a, "watch", NULL, NULL), EVREC_E_ID);
    assert_int_equal(evrec_session_start(a), EVREC_OK);
    char sid[64];
    assert_int_equal(evrec_session_id(a, sid, sizeof sid), EVREC_OK);
    assert_int_equal(record_simple(a, "watch", NULL, NULL), EVREC_OK);
    assert_int_equal(evrec_endpoint_set(a, NULL, "User.UserId", "user-42"), EVREC_OK);
    assert_int_equal(record_simple(a, "watch", NULL, NULL), EVREC_OK);
    /* an event of another endpoint takes that endpoint's user; one naming its own user, that */
    assert_int_equal(evrec_endpoint_set(a, "other-device", "User.UserId", "user-7"), EVREC_OK);
    const char *eps[3] = { "other-device", "no-profile-device", "other-device" };
    for (int i = 0; i < 3; i++) {
        evrec_event_t *ev = NULL;
        assert_int_equal(evrec_event_new(&ev, "watch"), EVREC_OK);
        assert_int_equal(evrec_event_set_endpoint_id(ev, eps[i]), EVREC_OK);
        if (i == 2)
            assert_int_equal(evrec_event_set_user_id(ev, "explicit-user"), EVREC_OK);
        assert_int_equal(evrec_record(a, ev), EVREC_OK);
        evrec_event_free(ev);
    }
    cJSON *q = queued(a);
    assert_int_equal(cJSON_GetArraySize(q), 6); /* _session.start, watch x 5 */
    assert_string_equal(str_at(cJSON_GetArrayItem(q, 1), "user", NULL), "");
    assert_string_equal(str_at(cJSON_GetArrayItem(q, 1), "session", NULL), sid);
    assert_string_equal(str_at(cJSON_GetArrayItem(q, 2), "user", NULL), "user-42");
    assert_string_equal(str_at(cJSON_GetArrayItem(q, 2), "session", NULL), sid);
    assert_string_equal(str_at(cJSON_GetArrayItem(q, 3), "endpoint", NULL), "other-device");
    assert_string_equal(str_at(cJSON_GetArrayItem(q, 3), "user", NULL), "user-7");
    assert_string_equal(str_at(cJSON_GetArrayItem(q, 4), "user", NULL), "");
    assert_string_equal(str_at(cJSON_GetArrayItem(q, 5), "user", NULL), "explicit-user");
    cJSON_Delete(q);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

static void sessions_emit_events(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o = record_only();
    o.session_timeout_ms = 60000;
    evrec_t *a = open_ok(f->store, &o);
    char id[64];
    assert_int_equal(evrec_session_id(a, id, sizeof id), EVREC_E_STATE);
    assert_int_equal(evrec_session_stop(a), EVREC_E_STATE);
    assert_non_null(strstr(evrec_last_error(a), "no session"));
    assert_int_equal(evrec_session_resume(a), EVREC_E_STATE);
    assert_int_equal(evrec_session_start(a), EVREC_OK);
    assert_int_equal(evrec_session_id(a, id, sizeof id), EVREC_OK);
    assert_int_equal(record_simple(a, "inside", "v", NULL), EVREC_OK);
    assert_int_equal(evrec_session_pause(a), EVREC_OK);
    assert_int_equal(evrec_session_pause(a), EVREC_E_STATE);
    assert_int_equal(evrec_session_resume(a), EVREC_OK);
    assert_int_equal(evrec_session_stop(a), EVREC_OK);
    assert_int_equal(record_simple(a, "outside", "v", NULL), EVREC_OK);

    cJSON *q = queued(a);
    const char *want[] = { "_session.start", "inside", "_session.pause", "_session.resume",
                           "_session.stop", "outside" };
    assert_int_equal(cJSON_GetArraySize(q), 6);
    for (int i = 0; i < 6; i++) {
        const cJSON *it = cJSON_GetArrayItem(q, i);
        assert_string_equal(event_type(it), want[i]);
        const cJSON *s = session_of(it);
        if (i == 5) {
            assert_null(s);
            continue;
        }
        assert_string_equal(str_at(s, "Id", NULL), id);
        assert_non_null(str_at(s, "StartTimestamp", NULL));
        int stop = i == 4;
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(s, "StopTimestamp") != NULL, stop);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(s, "Duration") != NULL, stop);
    }
    cJSON_Delete(q);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

static void long_pause_starts_a_new_session(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o = record_only();
    o.session_timeout_ms = 0; /* any pause is too long */
    evrec_t *a = open_ok(f->store, &o);
    use_test_clock(a);
    char first[64], second[64];
    assert_int_equal(evrec_session_start(a), EVREC_OK);
    assert_int_equal(evrec_session_id(a, first, sizeof first), EVREC_OK);
    assert_int_equal(evrec_session_pause(a), EVREC_OK);
    g_wall_ms += 20;
    assert_int_equal(evrec_session_resume(a), EVREC_OK);
    assert_int_equal(evrec_session_id(a, second, sizeof second), EVREC_OK);
    assert_string_not_equal(first, second);
    cJSON *q = queued(a);
    const char *want[] = { "_session.start", "_session.pause", "_session.stop",
                           "_session.start" };
    assert_int_equal(cJSON_GetArraySize(q), 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(event_type(cJSON_GetArrayItem(q, i)), want[i]);
    const cJSON *pause = session_of(cJSON_GetArrayItem(q, 1));
    const cJSON *stop = session_of(cJSON_GetArrayItem(q, 2));
    assert_string_equal(str_at(stop, "Id", NULL), first);
    /* stopped at its pause, not at the resume */
    assert_string_equal(str_at(stop, "StopTimestamp", NULL),
                        str_at(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(q, 1), "event"),
                               "Timestamp", NULL));
    (void)pause;
    assert_string_equal(str_at(session_of(cJSON_GetArrayItem(q, 3)), "Id", NULL), second);
    cJSON_Delete(q);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

static void crashed_session_is_stopped_at_next_start(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o = record_only();
    int64_t before = 0;
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        evrec_t *c = NULL;
        if (evrec_open(&c, f->store, &o, NULL, 0) != EVREC_OK || evrec_session_start(c) != 0)
            _exit(3);
        for (int i = 0; i < 3; i++)
            if (record_simple(c, "before.crash", "v", NULL) != EVREC_OK)
                _exit(4);
        _exit(0); /* no evrec_close: the process dies with the session open */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    evrec_t *a = open_ok(f->store, &o);
    char orphan[64];
    assert_int_equal(evrec_session_id(a, orphan, sizeof orphan), EVREC_OK); /* still open */
    assert_int_equal(evrec_session_start(a), EVREC_OK);
    char now_id[64];
    assert_int_equal(evrec_session_id(a, now_id, sizeof now_id), EVREC_OK);
    assert_string_not_equal(orphan, now_id);
    cJSON *q = queued(a);
    int n = cJSON_GetArraySize(q);
    assert_int_equal(n, 6); /* start, 3 events, stop of the orphan, new start */
    const cJSON *last_event = cJSON_GetArrayItem(q, 3);
    const cJSON *stop = cJSON_GetArrayItem(q, 4);
    assert_string_equal(event_type(stop), "_session.stop");
    assert_string_equal(str_at(session_of(stop), "Id", NULL), orphan);
    int64_t stop_ms = 0, last_ms = 0, start_ms = 0;
    assert_int_equal(event_parse_iso8601(str_at(session_of(stop), "StopTimestamp", NULL), &stop_ms), 0);
    assert_int_equal(event_parse_iso8601(str_at(session_of(stop), "StartTimestamp", NULL), &start_ms), 0);
    assert_int_equal(event_parse_iso8601(str_at(cJSON_GetObjectItemCaseSensitive(last_event, "event"),
                                                "Timestamp", NULL), &last_ms), 0);
    /* at its last known time: not after the last event, at most the documented bound before */
    assert_true(start_ms >= before);
    assert_true(stop_ms <= last_ms);
    assert_true(stop_ms >= last_ms - SESSION_SEEN_INTERVAL_MS);
    assert_true(stop_ms >= start_ms);
    assert_string_equal(event_type(cJSON_GetArrayItem(q, 5)), "_session.start");
    cJSON_Delete(q);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

static void no_flusher_means_no_flush(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o = record_only();
    evrec_t *a = open_ok(f->store, &o);
    assert_int_equal(evrec_flush(a, 10), EVREC_E_STATE);
    assert_non_null(strstr(evrec_last_error(a), "no_flusher"));
    uint32_t next = 0;
    assert_int_equal(evrec_poll(a, &next), EVREC_E_STATE);
    assert_int_equal(evrec_sync(a), EVREC_OK);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

/* -- delivery to the local endpoint -------------------------------------------------------- */

static long fake_log_count(const tu_endpoint_t *ep, const char *needle)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/log", ep->url);
    long status = 0;
    char *body = tu_http("GET", url, NULL, &status);
    if (!body)
        return -1;
    cJSON *arr = cJSON_Parse(body);
    free(body);
    long n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "endpoint_id");
        if (!needle || (cJSON_IsString(id) && strcmp(id->valuestring, needle) == 0))
            n++;
    }
    cJSON_Delete(arr);
    return n;
}

static evrec_options_t to_fake(const tu_endpoint_t *ep)
{
    evrec_options_t o;
    evrec_options_init(&o);
    o.application_id = "demo-app";
    o.endpoint_url = ep->url;
    o.region = "us-east-1";
    o.access_key_id = FAKE_KEY;
    o.secret_access_key = FAKE_SECRET;
    o.flush_interval_ms = 60000;
    o.backoff_base_ms = 10;
    o.backoff_cap_ms = 100;
    o.request_timeout_ms = 5000;
    return o;
}

static void flush_delivers_to_the_endpoint(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    evrec_options_t o = to_fake(&ep);
    evrec_t *a = open_ok(f->store, &o);
    assert_int_equal(evrec_session_start(a), EVREC_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(record_simple(a, "deliver.me", "v", NULL), EVREC_OK);
    assert_int_equal(evrec_session_stop(a), EVREC_OK);
    assert_int_equal(evrec_flush(a, 20000), EVREC_OK);
    evrec_stats_t s = { .struct_size = sizeof s };
    assert_int_equal(evrec_stats(a, &s), EVREC_OK);
    assert_int_equal(s.queued_events, 0);
    assert_int_equal(s.delivered, 7);
    assert_true(s.requests >= 1);
    assert_true(s.last_upload_ms > 0);
    assert_int_equal(fake_log_count(&ep, evrec_endpoint_id(a)), 7);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
    tu_endpoint_stop(&ep);
}

/* An event with Personalize fields recorded by a Pinpoint agent keeps them (it is
 * Personalize-shaped); that agent's flush delivers the rest and says at once, without waiting
 * out the timeout, what waits and for which service; a Personalize agent then delivers it. */
static void personalize_shaped_events_wait_for_their_service(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    evrec_options_t o = to_fake(&ep);
    evrec_t *a = open_ok(f->store, &o);
    for (int i = 0; i < 2; i++)
        assert_int_equal(record_simple(a, "plain", "v", NULL), EVREC_OK);
    evrec_event_t *ev = NULL;
    assert_int_equal(evrec_event_new(&ev, "watch"), EVREC_OK);
    assert_int_equal(evrec_event_set_user_id(ev, "user-U"), EVREC_OK);
    assert_int_equal(evrec_event_set_session_id(ev, "sess-X"), EVREC_OK);
    assert_int_equal(evrec_record(a, ev), EVREC_OK);
    evrec_event_free(ev);
    /* a timeout far longer than the test may take: the answer must not wait for it */
    assert_int_equal(evrec_flush(a, 600000), EVREC_E_OTHER_SERVICE);
    const char *msg = evrec_last_error(a);
    if (!strstr(msg, "1 event is queued that Pinpoint cannot carry (1 wait for Personalize"))
        fail_msg("last error '%s' does not say what waits for whom", msg);
    assert_int_equal(fake_log_count(&ep, NULL), 2);
    evrec_stats_t s = { .struct_size = sizeof s };
    assert_int_equal(evrec_stats(a, &s), EVREC_OK);
    assert_int_equal(s.queued_events, 1);
    assert_int_equal(evrec_close(a, 0), EVREC_E_TIMEOUT); /* left queued, kept on disk */

    o.service = EVREC_SERVICE_PERSONALIZE;
    o.tracking_id = "tracker-1";
    a = open_ok(f->store, &o);
    int rc = evrec_flush(a, 20000);
    if (rc != EVREC_OK)
        fail_msg("flush: %d %s", rc, evrec_last_error(a));
    assert_int_equal(evrec_stats(a, &s), EVREC_OK);
    assert_int_equal(s.queued_events, 0);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/log", ep.url);
    long status = 0;
    char *body = tu_http("GET", url, NULL, &status);
    assert_non_null(body);
    cJSON *log = cJSON_Parse(body);
    free(body);
    assert_int_equal(cJSON_GetArraySize(log), 3);
    const cJSON *last = cJSON_GetArrayItem(log, 2);
    assert_string_equal(cJSON_GetObjectItem(last, "service")->valuestring, "personalize-events");
    assert_string_equal(cJSON_GetObjectItem(last, "user_id")->valuestring, "user-U");
    assert_string_equal(cJSON_GetObjectItem(last, "session_id")->valuestring, "sess-X");
    cJSON_Delete(log);
    tu_endpoint_stop(&ep);
}

static void manual_flush_by_polling(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    evrec_options_t o = to_fake(&ep);
    o.manual_flush = 1;
    o.flush_interval_ms = 20;
    evrec_t *a = open_ok(f->store, &o);
    for (int i = 0; i < 3; i++)
        assert_int_equal(record_simple(a, "polled", "v", NULL), EVREC_OK);
    /* a firmware main loop: poll, then sleep as long as asked (bounded here) */
    for (int i = 0; i < 200 && fake_log_count(&ep, NULL) < 3; i++) {
        uint32_t next = 0;
        int rc = evrec_poll(a, &next);
        assert_true(rc == EVREC_OK || evrec_error_is_retryable(rc));
        struct timespec ts = { 0, (long)(next < 50 ? next : 50) * 1000000L };
        nanosleep(&ts, NULL);
    }
    assert_int_equal(fake_log_count(&ep, NULL), 3);
    evrec_stats_t s = { .struct_size = sizeof s };
    assert_int_equal(evrec_stats(a, &s), EVREC_OK);
    assert_int_equal(s.queued_events, 0);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
    tu_endpoint_stop(&ep);
}

static int threads_of_this_process(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (fp && fgets(line, sizeof line, fp))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (fp)
        fclose(fp);
    return n;
}

/* evrec_poll_budget() against a server that takes 300 ms: the request is started and
 * advanced across calls (an event loop waits on the fds evrec_poll_fds() gives), everything
 * arrives, and with manual_flush and a numeric URL no thread is ever started. A request left
 * in flight is finished by evrec_close(): nothing is lost. */
static void manual_flush_by_budgeted_polling(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    const char *slow[] = { "--slow-ms", "300", NULL };
    if (tu_endpoint_start(&ep, slow) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    evrec_options_t o = to_fake(&ep);
    o.manual_flush = 1;
    o.flush_interval_ms = 20;
    int threads = threads_of_this_process();
    evrec_t *a = open_ok(f->store, &o);
    evrec_pollfd_t fds[8];
    size_t n = 9;
    uint32_t wait = 0;
    assert_int_equal(evrec_poll_fds(a, fds, 8, &n, &wait), EVREC_OK);
    /* nothing in flight: at most the store's data file (where the platform can watch it) */
    assert_true(n <= 1);
    size_t idle_n = n;
    assert_int_equal(wait, UINT32_MAX);
    assert_int_equal(evrec_poll_fds(a, NULL, 8, &n, &wait), EVREC_E_INVALID);
    assert_int_equal(evrec_poll_budget(NULL, 5, &wait), EVREC_E_INVALID);
    for (int i = 0; i < 3; i++)
        assert_int_equal(record_simple(a, "polled", "v", NULL), EVREC_OK);
    int in_flight_seen = 0;
    for (int i = 0; i < 2000 && fake_log_count(&ep, NULL) < 3; i++) {
        uint32_t next = 0;
        int rc = evrec_poll_budget(a, 5, &next);
        assert_true(rc == EVREC_OK || evrec_error_is_retryable(rc));
        assert_int_equal(threads_of_this_process(), threads);
        assert_int_equal(evrec_poll_fds(a, fds, 8, &n, &wait), EVREC_OK);
        if (n > idle_n)
            in_flight_seen++;
        struct pollfd pfds[8];
        for (size_t k = 0; k < n; k++) {
            pfds[k].fd = fds[k].fd;
            pfds[k].events = (short)(((fds[k].events & EVREC_POLL_IN) ? POLLIN : 0) |
                                     ((fds[k].events & EVREC_POLL_OUT) ? POLLOUT : 0));
        }
        uint32_t t = next < wait ? next : wait;
        poll(pfds, (nfds_t)n, (int)(t < 50 ? t : 50));
    }
    assert_int_equal(fake_log_count(&ep, NULL), 3);
    assert_true(in_flight_seen > 1); /* the 300 ms answer spanned several calls */
    /* One more, left in flight, then closed: close finishes it. */
    assert_int_equal(record_simple(a, "closing", "v", NULL), EVREC_OK);
    uint32_t next = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(evrec_poll_budget(a, 0, &next), EVREC_OK);
        assert_int_equal(evrec_poll_fds(a, fds, 8, &n, &wait), EVREC_OK);
        if (n > idle_n)
            break;
        struct timespec ts = { 0, 5 * 1000000L };
        nanosleep(&ts, NULL);
    }
    assert_true(n > idle_n);
    assert_int_equal(evrec_close(a, 5000), EVREC_OK);
    assert_int_equal(fake_log_count(&ep, NULL), 4);
    tu_endpoint_stop(&ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(record_close_reopen_keeps_events, setup, teardown),
        cmocka_unit_test_setup_teardown(options_are_validated, setup, teardown),
        cmocka_unit_test_setup_teardown(many_threads_record, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_have_messages_and_lose_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(truncation_is_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(endpoint_wrappers, setup, teardown),
        cmocka_unit_test_setup_teardown(personalize_user_from_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(sessions_emit_events, setup, teardown),
        cmocka_unit_test_setup_teardown(long_pause_starts_a_new_session, setup, teardown),
        cmocka_unit_test_setup_teardown(crashed_session_is_stopped_at_next_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(no_flusher_means_no_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(too_old_refused_at_record, setup, teardown),
        cmocka_unit_test_setup_teardown(evictions_reach_on_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(flush_delivers_to_the_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(manual_flush_by_polling, setup, teardown),
        cmocka_unit_test_setup_teardown(manual_flush_by_budgeted_polling, setup, teardown),
        cmocka_unit_test_setup_teardown(personalize_shaped_events_wait_for_their_service, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("library", tests, NULL, NULL);
}
