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

#include <poll.h>

#include <cjson/cJSON.h>

#include "evrec.h"
#include "proc_probe.h"
#include "testutil.h"

typedef tu_store_fixture_t fixture_t;

static int setup(void **state)
{
    return tu_store_setup(state, "device");
}

static int teardown(void **state)
{
    return tu_store_teardown(state);
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
    evrec_stats_t st = { .struct_size = sizeof st };
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

static int64_t count_of(evrec_t *a, int shape, const char *endpoint_id)
{
    evrec_filter_t flt;
    evrec_filter_init(&flt);
    flt.shape = shape;
    flt.endpoint_id = endpoint_id;
    uint64_t n = 99;
    int rc = evrec_count(a, &flt, &n);
    return rc == EVREC_OK ? (int64_t)n : rc;
}

/* evrec_count counts what evrec_export would hand out; evrec_service_carries says which
 * backend delivers which shape (what `evrec flush` tells its user to run). */
static void count_and_service_carries(void **state)
{
    fixture_t *f = *state;
    record_four(f->store);
    evrec_t *a = open_store(f->store);
    uint64_t n = 99;
    assert_int_equal(evrec_count(a, NULL, &n), EVREC_OK);
    assert_int_equal(n, 4);
    assert_int_equal(count_of(a, EVREC_SERVICE_PERSONALIZE, NULL), 1);
    assert_int_equal(count_of(a, EVREC_SERVICE_PINPOINT, NULL), 3);
    assert_int_equal(count_of(a, -1, "endpoint-2"), 1);
    assert_int_equal(count_of(a, EVREC_SERVICE_PERSONALIZE, "endpoint-2"), 0);
    assert_int_equal(count_of(a, 5, NULL), EVREC_E_INVALID);
    assert_int_equal(evrec_count(a, NULL, NULL), EVREC_E_INVALID);
    assert_int_equal(evrec_count(NULL, NULL, &n), EVREC_E_INVALID);
    assert_int_equal(n, 0);
    evrec_close(a, 0);
    static const struct { evrec_service_t s; int pinpoint, personalize; } carries[] = {
        { EVREC_SERVICE_PINPOINT, 1, 0 }, { EVREC_SERVICE_PERSONALIZE, 0, 1 },
        { EVREC_SERVICE_KINESIS, 1, 1 }, { EVREC_SERVICE_FIREHOSE, 1, 1 },
    };
    for (size_t i = 0; i < sizeof carries / sizeof carries[0]; i++) {
        assert_int_equal(evrec_service_carries(carries[i].s, EVREC_SERVICE_PINPOINT),
                         carries[i].pinpoint);
        assert_int_equal(evrec_service_carries(carries[i].s, EVREC_SERVICE_PERSONALIZE),
                         carries[i].personalize);
        assert_int_equal(evrec_service_carries(carries[i].s, 2), 0);
        assert_int_equal(evrec_service_carries(carries[i].s, -1), 0);
    }
    assert_int_equal(evrec_service_carries((evrec_service_t)9, EVREC_SERVICE_PINPOINT), 0);
}

/* Batched durability: evrec_staged says how many acknowledged records wait for their commit. */
static void staged_counts_the_uncommitted_window(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o;
    evrec_options_init(&o);
    o.no_flusher = 1;
    o.application_id = "app";
    o.region = "us-east-1";
    o.durability = EVREC_DURABLE_BATCHED;
    o.commit_max_events = 3;
    o.commit_interval_ms = 3600 * 1000; /* only the count commits */
    evrec_t *a = NULL;
    char msg[256];
    if (evrec_open(&a, f->store, &o, msg, sizeof msg) != EVREC_OK)
        fail_msg("open: %s", msg);
    uint64_t staged = 99;
    assert_int_equal(evrec_staged(a, &staged), EVREC_OK);
    assert_int_equal(staged, 0);
    record_one(a, "one", NULL, 0, NULL);
    record_one(a, "two", NULL, 0, NULL);
    assert_int_equal(evrec_staged(a, &staged), EVREC_OK);
    assert_int_equal(staged, 2);
    record_one(a, "three", NULL, 0, NULL); /* the third commits the window */
    assert_int_equal(evrec_staged(a, &staged), EVREC_OK);
    assert_int_equal(staged, 0);
    record_one(a, "four", NULL, 0, NULL);
    assert_int_equal(evrec_staged(a, &staged), EVREC_OK);
    assert_int_equal(staged, 1);
    assert_int_equal(evrec_sync(a), EVREC_OK);
    assert_int_equal(evrec_staged(a, &staged), EVREC_OK);
    assert_int_equal(staged, 0);
    assert_int_equal(evrec_staged(a, NULL), EVREC_E_INVALID);
    staged = 99;
    assert_int_equal(evrec_staged(NULL, &staged), EVREC_E_INVALID);
    assert_int_equal(staged, 0);
    evrec_close(a, 0);
}

/* evrec_event_from_json_detail: the refusal names the member; success leaves "" behind. */
static void event_from_json_says_why(void **state)
{
    (void)state;
    evrec_event_t *ev = NULL;
    char why[256] = "x";
    assert_int_equal(evrec_event_from_json_detail(&ev, "{\"EventType\":\"a\",\"Attributes\":"
                                                  "{\"k\":5}}", 0, why, sizeof why),
                     EVREC_E_JSON);
    assert_null(ev);
    assert_non_null(strstr(why, "Attributes"));
    assert_int_equal(evrec_event_from_json_detail(&ev, "{\"EventType\":\"a\"}", 0, why,
                                                  sizeof why), EVREC_OK);
    assert_non_null(ev);
    assert_string_equal(why, "");
    evrec_event_free(ev);
    ev = NULL;
    assert_int_equal(evrec_event_from_json_detail(&ev, "{", 0, NULL, 0), EVREC_E_JSON);
    assert_null(ev);
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


/* -- the agent daemon ----------------------------------------------------------------------- */

#define FAKE_KEY "AKIDEXAMPLE"
#define FAKE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return strdup("");
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* How many times needle occurs in the file at path. */
static int occurrences(const char *path, const char *needle)
{
    char *s = slurp(path);
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(s);
    return n;
}

static int wait_count(const char *path, const char *needle, int count, long timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    while (mono_ms() < end) {
        if (occurrences(path, needle) >= count)
            return 1;
        pause_ms(50);
    }
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, 0600), 0); /* an agent config holding a secret must be */
}

static pid_t spawn_agent(fixture_t *f, const char *cfg, const char *logpath)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *lf = freopen(logpath, "w", stderr);
        (void)lf;
        FILE *nf = freopen("/dev/null", "w", stdout);
        (void)nf;
        execl(f->cli, f->cli, "agent", "--store", f->store, "--config", cfg, "--drain-timeout",
              "5", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid, long timeout_ms, int *status)
{
    int64_t end = mono_ms() + timeout_ms;
    while (mono_ms() < end) {
        if (waitpid(pid, status, WNOHANG) == pid)
            return 1;
        pause_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return 0;
}

/* Whether the local endpoint accepted event `event_id` for application `app`. */
static int delivered_to(const tu_endpoint_t *ep, const char *event_id, const char *app)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/log", ep->url);
    char *body = tu_http("GET", url, NULL, NULL);
    if (!body)
        return 0;
    cJSON *arr = cJSON_Parse(body);
    free(body);
    int found = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "event_id");
        const cJSON *ap = cJSON_GetObjectItemCaseSensitive(it, "application_id");
        if (cJSON_IsString(id) && strcmp(id->valuestring, event_id) == 0 && cJSON_IsString(ap) &&
            strcmp(ap->valuestring, app) == 0)
            found = 1;
    }
    cJSON_Delete(arr);
    return found;
}

static int wait_delivered(const tu_endpoint_t *ep, const char *event_id, const char *app)
{
    int64_t end = mono_ms() + 15000;
    while (mono_ms() < end) {
        if (delivered_to(ep, event_id, app))
            return 1;
        pause_ms(100);
    }
    return 0;
}

static void agent_config(fixture_t *f, const char *cfg, const tu_endpoint_t *ep, const char *app,
                         long interval_ms)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"application_id\":\"%s\",\"region\":\"us-east-1\",\"endpoint_url\":\"%s\","
             "\"access_key_id\":\"%s\",\"secret_access_key\":\"%s\","
             "\"flush_interval_ms\":%ld,\"flush_threshold_events\":1000}",
             app, ep->url, FAKE_KEY, FAKE_SECRET, interval_ms);
    (void)f;
    write_text(cfg, text);
}

static void record_id(fixture_t *f, const char *event_id)
{
    char *out = NULL, *err = NULL;
    int rc = run_cli(f, &out, &err, "record", "--store", f->store, "--type", "reload.check",
                     "--event-id", event_id, NULL);
    if (rc)
        fail_msg("record: %s", err);
    free(out);
    free(err);
}

/* `evrec status`: its exit code, and the "state" it prints (copied into state). */
static int status_of(fixture_t *f, const char *store, char *state, size_t len)
{
    char *out = NULL, *err = NULL;
    int rc = run_cli(f, &out, &err, "status", "--store", store, NULL);
    cJSON *o = cJSON_Parse(out);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "state");
    snprintf(state, len, "%s", cJSON_IsString(s) ? s->valuestring : "");
    cJSON_Delete(o);
    free(out);
    free(err);
    return rc;
}

/* SIGHUP reads the configuration again: a good one takes over (another application, a short
 * interval), a bad one (does not parse; the library refuses it) is logged and the running one
 * keeps delivering. */
static void sighup_reloads_the_config(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    char cfg[700], logp[700];
    snprintf(cfg, sizeof cfg, "%s/agent.json", f->dir);
    snprintf(logp, sizeof logp, "%s/agent.log", f->dir);
    agent_config(f, cfg, &ep, "app-one", 600000);
    pid_t pid = spawn_agent(f, cfg, logp);
    assert_true(wait_count(logp, "flushing", 1, 10000));
    char st_name[64];
    assert_int_equal(status_of(f, f->store, st_name, sizeof st_name), 0);
    assert_string_equal(st_name, "running");
    agent_config(f, cfg, &ep, "app-two", 100);
    kill(pid, SIGHUP);
    assert_true(wait_count(logp, "configuration reloaded", 1, 10000));
    record_id(f, "reload-1");
    assert_true(wait_delivered(&ep, "reload-1", "app-two"));
    /* A file that does not parse. */
    write_text(cfg, "{\"application_id\":\"app-three\",\"flush_interval_ms\":\"soon\"}");
    kill(pid, SIGHUP);
    assert_true(wait_count(logp, "reload refused", 1, 10000));
    /* One that parses but the library refuses (Personalize without a tracking id). */
    write_text(cfg, "{\"service\":\"personalize\",\"region\":\"us-east-1\"}");
    kill(pid, SIGHUP);
    assert_true(wait_count(logp, "reload refused", 2, 10000));
    char *log = slurp(logp);
    assert_non_null(strstr(log, "flush_interval_ms"));
    assert_int_equal(occurrences(logp, "configuration reloaded"), 1);
    free(log);
    record_id(f, "reload-2");
    assert_true(wait_delivered(&ep, "reload-2", "app-two"));
    kill(pid, SIGTERM);
    int status = 0;
    assert_true(wait_exit(pid, 20000, &status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(status_of(f, f->store, st_name, sizeof st_name), 3);
    assert_string_equal(st_name, "not running");
    tu_endpoint_stop(&ep);
}

/* -- metered links -------------------------------------------------------------------------- */

static evrec_options_t to_fake(const tu_endpoint_t *ep)
{
    evrec_options_t o;
    evrec_options_init(&o);
    o.application_id = "metered-app";
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

static long delivered_count(const tu_endpoint_t *ep)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/log", ep->url);
    char *body = tu_http("GET", url, NULL, NULL);
    assert_non_null(body);
    cJSON *arr = cJSON_Parse(body);
    free(body);
    long n = cJSON_GetArraySize(arr);
    cJSON_Delete(arr);
    return n;
}

typedef struct gate {
    int open;
    int asked;
} gate_t;

static int gate_allows(void *user)
{
    gate_t *g = user;
    g->asked++;
    return g->open;
}

static evrec_t *open_opts(const char *store, const evrec_options_t *o)
{
    evrec_t *a = NULL;
    char msg[256];
    int rc = evrec_open(&a, store, o, msg, sizeof msg);
    if (rc)
        fail_msg("open: %s", msg);
    return a;
}

/* upload_allowed is asked before each request: while it says no, nothing is sent, the events
 * stay queued and are counted as held back; once it says yes, evrec_flush() delivers them. */
static void upload_allowed_holds_back(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    gate_t g = { 0, 0 };
    evrec_options_t o = to_fake(&ep);
    o.upload_allowed = gate_allows;
    o.upload_allowed_user = &g;
    evrec_t *a = open_opts(f->store, &o);
    for (int i = 0; i < 3; i++)
        record_one(a, "held.back", NULL, 0, NULL);
    assert_int_equal(evrec_flush(a, 1500), EVREC_E_TIMEOUT);
    assert_true(g.asked >= 1);
    assert_int_equal(delivered_count(&ep), 0);
    evrec_stats_t st = { .struct_size = sizeof st };
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.queued_events, 3);
    assert_true(st.deferrals >= 1);
    assert_int_equal(st.deferred_events, 3);
    assert_int_equal(st.requests, 0);
    assert_int_equal(st.last_error, 0); /* held back is no error */
    g.open = 1;
    assert_int_equal(evrec_flush(a, 10000), EVREC_OK);
    assert_int_equal(delivered_count(&ep), 3);
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.queued_events, 0);
    assert_int_equal(st.deferred_events, 0);
    assert_true(st.upload_bytes_today > 0);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
    /* The CLI's hook: a program asked before each request, exit 0 = now. */
    record_id(f, "hook-1");
    char *out = NULL, *err = NULL;
    const char *common[] = { "--application-id", "metered-app", "--region", "us-east-1",
                             "--endpoint-url", ep.url, "--access-key-id", FAKE_KEY,
                             "--secret-access-key", FAKE_SECRET, "--timeout", "1" };
    assert_int_equal(run_cli(f, &out, &err, "flush", "--store", f->store, common[0], common[1],
                             common[2], common[3], common[4], common[5], common[6], common[7],
                             common[8], common[9], common[10], common[11],
                             "--upload-allowed-cmd", "/bin/false", NULL), 1);
    assert_non_null(strstr(out, "\"deferred_events\":1"));
    free(out);
    free(err);
    assert_int_equal(delivered_count(&ep), 3);
    assert_int_equal(run_cli(f, &out, &err, "flush", "--store", f->store, common[0], common[1],
                             common[2], common[3], common[4], common[5], common[6], common[7],
                             common[8], common[9], "--timeout", "10",
                             "--upload-allowed-cmd", "/bin/true", NULL), 0);
    free(out);
    free(err);
    assert_true(delivered_to(&ep, "hook-1", "metered-app"));
    tu_endpoint_stop(&ep);
}

/* A daily budget: the first request of the day goes, the next waits for tomorrow; the day's
 * spending survives a restart of the agent. */
static void daily_budget_defers_and_survives_restart(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    evrec_options_t o = to_fake(&ep);
    o.daily_upload_bytes = 1; /* less than any request */
    o.max_batch_events = 1;
    evrec_t *a = open_opts(f->store, &o);
    for (int i = 0; i < 3; i++)
        record_one(a, "budgeted", NULL, 0, NULL);
    assert_int_equal(evrec_flush(a, 1500), EVREC_E_TIMEOUT);
    assert_int_equal(delivered_count(&ep), 1);
    evrec_stats_t st = { .struct_size = sizeof st };
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.queued_events, 2);
    assert_int_equal(st.requests, 1);
    assert_true(st.deferrals >= 1);
    assert_int_equal(st.deferred_events, 2);
    uint64_t spent = st.upload_bytes_today;
    assert_true(spent > 100);
    assert_true(st.backoff_until_ms > 0);
    assert_int_equal(evrec_close(a, 0), EVREC_E_TIMEOUT);
    char st_name[64];
    assert_int_equal(status_of(f, f->store, st_name, sizeof st_name), 1);
    assert_string_equal(st_name, "stopped with backlog");
    /* no store at all: not running; a store that cannot be read: unknown (4) */
    char path[700];
    snprintf(path, sizeof path, "%s/none", f->dir);
    assert_int_equal(status_of(f, path, st_name, sizeof st_name), 3);
    snprintf(path, sizeof path, "%s/agent.json", f->dir);
    write_text(path, "not a store");
    assert_int_equal(status_of(f, path, st_name, sizeof st_name), 4);
    /* Another process sees the spending and the held-back events. */
    char *out = NULL, *err = NULL;
    assert_int_equal(run_cli(f, &out, &err, "stats", "--store", f->store, NULL), 0);
    char want[64];
    snprintf(want, sizeof want, "\"upload_bytes_today\":%llu", (unsigned long long)spent);
    assert_non_null(strstr(out, want));
    free(out);
    free(err);
    /* Restarted, the agent still has nothing left today. */
    a = open_opts(f->store, &o);
    assert_int_equal(evrec_flush(a, 1000), EVREC_E_TIMEOUT);
    assert_int_equal(delivered_count(&ep), 1);
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.upload_bytes_today, spent);
    assert_int_equal(st.queued_events, 2);
    evrec_close(a, 0);
    /* Without the budget everything goes. */
    o.daily_upload_bytes = 0;
    a = open_opts(f->store, &o);
    assert_int_equal(evrec_flush(a, 10000), EVREC_OK);
    assert_int_equal(delivered_count(&ep), 3);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
    tu_endpoint_stop(&ep);
}

/* -- encryption at rest --------------------------------------------------------------------- */

typedef struct keyset {
    unsigned char keys[2][EVREC_KEY_BYTES];
    size_t n;
} keyset_t;

static int give_keys(void *user, unsigned char keys[][EVREC_KEY_BYTES], size_t max, size_t *n)
{
    keyset_t *k = user;
    assert_true(max >= k->n);
    memcpy(keys, k->keys, k->n * EVREC_KEY_BYTES);
    *n = k->n;
    return 0;
}

/* Whether the store's data file holds `needle` anywhere (plaintext on disk). */
static int store_holds(const fixture_t *f, const char *needle)
{
    char path[700];
    snprintf(path, sizeof path, "%s/data.mdb", f->store);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t cap = 64u << 20, n;
    char *buf = malloc(cap);
    n = fread(buf, 1, cap, fp);
    fclose(fp);
    int found = memmem(buf, n, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

static void record_secret(evrec_t *a, const char *value)
{
    evrec_event_t *ev = NULL;
    assert_int_equal(evrec_event_new(&ev, "secret.event"), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, "email", value), EVREC_OK);
    assert_int_equal(evrec_record(a, ev), EVREC_OK);
    evrec_event_free(ev);
}

static int open_code(const char *store, const evrec_options_t *o, char *msg, size_t len)
{
    evrec_t *a = NULL;
    int rc = evrec_open(&a, store, o, msg, len);
    if (rc == EVREC_OK)
        evrec_close(a, 0);
    return rc;
}

/* Events are sealed in the store (the attribute is nowhere on disk), delivered intact, and
 * keys rotate: after a new key is put first, the backlog of the old one is still sent. A
 * store opened without its key, or with only another key, is refused at open. */
static void encrypted_store_delivers_and_rotates(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    keyset_t ks = { { { 0 } }, 1 };
    memset(ks.keys[0], 0x5a, EVREC_KEY_BYTES);
    evrec_options_t o = to_fake(&ep);
    o.encryption_keys = give_keys;
    o.encryption_keys_user = &ks;
    o.no_flusher = 1;
    evrec_t *a = open_opts(f->store, &o);
    record_secret(a, "alice-secret@example.com");
    evrec_close(a, 0);
    assert_false(store_holds(f, "alice-secret"));
    char msg[512];
    /* without a key, with another key only: refused at open, nothing read as plain */
    evrec_options_t plain = to_fake(&ep);
    plain.no_flusher = 1;
    assert_int_equal(open_code(f->store, &plain, msg, sizeof msg), EVREC_E_KEY);
    assert_non_null(strstr(msg, "encrypted"));
    keyset_t other = { { { 0 } }, 1 };
    memset(other.keys[0], 0x77, EVREC_KEY_BYTES);
    evrec_options_t wrong = o;
    wrong.encryption_keys_user = &other;
    assert_int_equal(open_code(f->store, &wrong, msg, sizeof msg), EVREC_E_KEY);
    assert_non_null(strstr(msg, "key id"));
    /* rotate: the new key first, the old one still read */
    keyset_t rot = { { { 0 } }, 2 };
    memset(rot.keys[0], 0x77, EVREC_KEY_BYTES);
    memset(rot.keys[1], 0x5a, EVREC_KEY_BYTES);
    evrec_options_t r = o;
    r.encryption_keys_user = &rot;
    a = open_opts(f->store, &r);
    record_secret(a, "bob-secret@example.com");
    evrec_close(a, 0);
    assert_false(store_holds(f, "bob-secret"));
    /* the store now needs both keys */
    assert_int_equal(open_code(f->store, &o, msg, sizeof msg), EVREC_E_KEY);
    assert_int_equal(open_code(f->store, &wrong, msg, sizeof msg), EVREC_E_KEY);
    /* the CLI reads it with a key file of both (0600) */
    char kf[700];
    snprintf(kf, sizeof kf, "%s/keys", f->dir);
    char text[200];
    snprintf(text, sizeof text, "%0128d\n", 0);
    for (int i = 0; i < 64; i++)
        text[i] = "77"[i % 2];
    for (int i = 0; i < 64; i++)
        text[65 + i] = "5a"[i % 2];
    text[64] = '\n';
    text[129] = '\n';
    text[130] = '\0';
    write_text(kf, text);
    assert_int_equal(chmod(kf, 0600), 0);
    char *out = NULL, *err = NULL;
    assert_int_equal(run_cli(f, &out, &err, "queue", "export", "--store", f->store,
                             "--encryption-key-file", kf, NULL), 0);
    assert_int_equal(lines_in(out), 2);
    assert_non_null(strstr(out, "alice-secret@example.com"));
    assert_non_null(strstr(out, "bob-secret@example.com"));
    free(out);
    free(err);
    assert_int_equal(run_cli(f, &out, &err, "queue", "export", "--store", f->store, NULL), 1);
    assert_non_null(strstr(err, "encrypted"));
    free(out);
    free(err);
    /* delivered intact, both keys' events */
    r.no_flusher = 0;
    a = open_opts(f->store, &r);
    assert_int_equal(evrec_flush(a, 10000), EVREC_OK);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/log", ep.url);
    char *body = tu_http("GET", url, NULL, NULL);
    assert_non_null(body);
    assert_non_null(strstr(body, "alice-secret@example.com"));
    assert_non_null(strstr(body, "bob-secret@example.com"));
    free(body);
    tu_endpoint_stop(&ep);
}

/* -- idle means asleep ------------------------------------------------------------------------ */

/* The modification times and sizes of the store's files, as one text. */
static void store_stamp(const char *store, char *out, size_t len)
{
    static const char *const names[] = { "data.mdb", "lock.mdb", "synced.meta", "flusher.lock" };
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", store, names[i]);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s %lld.%09ld %lld;", names[i],
                 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)st.st_size);
    }
}

/* An agent (flusher thread, default intervals) on an empty store sleeps: over 4 s its threads
 * wake at most twice and write nothing (it woke once a second, counting the store, before the
 * store's data file was watched). Counted, not timed. */
static void idle_agent_sleeps(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    evrec_options_t o = to_fake(&ep);
    o.flush_interval_ms = 1000; /* no timer on an empty store, however short the interval */
    long before[64]; /* threads that are not the agent's (a sanitizer's own) */
    size_t nbefore = tu_thread_ids(before, 64);
    evrec_t *a = open_opts(f->store, &o);
    pause_ms(2000); /* start-up: the new store's first sync */
    char stamp0[1024], stamp1[1024];
    store_stamp(f->store, stamp0, sizeof stamp0);
    long long s0 = tu_switches_of_threads_except(before, nbefore), w0 = tu_io_field("wchar");
    pause_ms(4000);
    long long s1 = tu_switches_of_threads_except(before, nbefore), w1 = tu_io_field("wchar");
    store_stamp(f->store, stamp1, sizeof stamp1);
    if (s1 - s0 > 2)
        fail_msg("an idle agent's threads woke %lld times in 4 s", s1 - s0);
    assert_string_equal(stamp0, stamp1); /* not a byte written to the store */
    /* nor anywhere (valgrind's own scheduler writes to a pipe of its own meanwhile) */
    const char *preload = getenv("LD_PRELOAD");
    if (!(preload && strstr(preload, "vgpreload")))
        assert_int_equal(w1 - w0, 0);
    /* and it still delivers what it is given */
    record_one(a, "after.idle", NULL, 0, NULL);
    assert_int_equal(evrec_flush(a, 10000), EVREC_OK);
    assert_int_equal(delivered_count(&ep), 1);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
    tu_endpoint_stop(&ep);
}

/* Records another process appends wake an idle agent: with the threshold at 3 and an hour's
 * flush interval, only the store's count after the wake can deliver them within the wait. The
 * data file watched (inotify), and as on a platform that cannot watch it (the once-a-second
 * count). Then below the threshold: the wake arms the flush interval (2 s), which the agent,
 * idle without a timer through several of its ticks, delivers the one record by. */
static void other_process_records_wake_an_idle_agent(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    static const struct {
        int fallback, records;
        uint32_t interval_ms, threshold;
        long idle_ms;
    } rounds[] = {
        { 0, 3, 3600000, 3, 1500 },
        { 1, 3, 3600000, 3, 1500 },
        { 0, 1, 2000, 1000, 5000 },
    };
    for (size_t r = 0; r < sizeof rounds / sizeof rounds[0]; r++) {
        if (rounds[r].fallback)
            setenv("EVREC_TEST_NO_FILE_WATCH", "1", 1);
        evrec_options_t o = to_fake(&ep);
        o.flush_interval_ms = rounds[r].interval_ms;
        o.flush_threshold_events = rounds[r].threshold;
        evrec_t *a = open_opts(f->store, &o);
        pause_ms(rounds[r].idle_ms);
        char id[3][64];
        for (int i = 0; i < rounds[r].records; i++) {
            snprintf(id[i], sizeof id[i], "cross-%zu-%d", r, i);
            record_id(f, id[i]);
        }
        for (int i = 0; i < rounds[r].records; i++)
            if (!wait_delivered(&ep, id[i], "metered-app"))
                fail_msg("%s (recorded by another process%s) was not delivered", id[i],
                         rounds[r].fallback ? ", data file not watched" : "");
        assert_int_equal(evrec_close(a, 1000), EVREC_OK);
        unsetenv("EVREC_TEST_NO_FILE_WATCH");
    }
    tu_endpoint_stop(&ep);
}

/* manual_flush: an event loop that waits on evrec_poll_fds() sleeps without a timer on an
 * empty store (next_ms UINT32_MAX), and the store's descriptor wakes it when another process
 * records; evrec_poll_budget() then delivers at the threshold. */
static void event_loop_woken_by_another_process(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    evrec_options_t o = to_fake(&ep);
    o.manual_flush = 1;
    o.flush_interval_ms = 3600000;
    o.flush_threshold_events = 1;
    evrec_t *a = open_opts(f->store, &o);
    uint32_t next = 0, wait = 0;
    assert_int_equal(evrec_poll_budget(a, 0, &next), EVREC_OK);
    assert_true(next <= 1000); /* not waiting on the store: its count once a second, as before */
    evrec_pollfd_t fds[4];
    size_t n = 0;
    assert_int_equal(evrec_poll_fds(a, fds, 4, &n, &wait), EVREC_OK);
    assert_int_equal(n, 1); /* the store's data file (Linux: inotify) */
    assert_int_equal(fds[0].events, EVREC_POLL_IN);
    /* the new store's first sync is due after a second: then nothing is timed */
    for (int i = 0; i < 20 && next != UINT32_MAX; i++) {
        pause_ms(next < 500 ? next : 500);
        assert_int_equal(evrec_poll_budget(a, 0, &next), EVREC_OK);
    }
    assert_int_equal(next, UINT32_MAX);
    struct pollfd p = { fds[0].fd, POLLIN, 0 };
    assert_int_equal(poll(&p, 1, 0), 0); /* asleep */
    record_id(f, "loop-1");
    assert_int_equal(poll(&p, 1, 10000), 1); /* woken by the other process's commit */
    for (int i = 0; i < 200 && !delivered_to(&ep, "loop-1", "metered-app"); i++) {
        assert_int_equal(evrec_poll_budget(a, 50, &next), EVREC_OK);
        assert_int_equal(evrec_poll_fds(a, fds, 4, &n, &wait), EVREC_OK);
        pause_ms(20);
    }
    assert_true(delivered_to(&ep, "loop-1", "metered-app"));
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
    tu_endpoint_stop(&ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(purge_and_export_api, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_and_export_cli, setup, teardown),
        cmocka_unit_test_setup_teardown(count_and_service_carries, setup, teardown),
        cmocka_unit_test_setup_teardown(staged_counts_the_uncommitted_window, setup, teardown),
        cmocka_unit_test(event_from_json_says_why),
        cmocka_unit_test_setup_teardown(sighup_reloads_the_config, setup, teardown),
        cmocka_unit_test_setup_teardown(upload_allowed_holds_back, setup, teardown),
        cmocka_unit_test_setup_teardown(daily_budget_defers_and_survives_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(encrypted_store_delivers_and_rotates, setup, teardown),
        cmocka_unit_test_setup_teardown(idle_agent_sleeps, setup, teardown),
        cmocka_unit_test_setup_teardown(other_process_records_wake_an_idle_agent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(event_loop_woken_by_another_process, setup, teardown),
    };
    return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
