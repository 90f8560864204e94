/* Delivery to Kinesis Data Streams and Data Firehose through the library, against the local
 * endpoint (tools/fake_endpoint.py: signatures and bodies checked with botocore, the services'
 * size limits enforced): each fault alone and all of them mixed. Every case ends with every
 * recorded event accepted at least once, no request over the limits, and nothing queued. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evrec.h"
#include "testutil.h"

#define FAKE_KEY "AKIDEXAMPLE"
#define FAKE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define STREAM_ARN "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"

typedef struct fixture {
    char *dir;
    char store[600];
    tu_endpoint_t ep;
} fixture_t;

static int setup(void **state)
{
    tu_isolate_aws_env();
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = tu_tempdir("streams");
    snprintf(f->store, sizeof f->store, "%s/store", f->dir);
    const char *args[] = { "--seed", "5", NULL };
    if (tu_endpoint_start(&f->ep, args) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_stop(&f->ep);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static cJSON *control(fixture_t *f, const char *method, const char *path, const char *body)
{
    char url[160];
    snprintf(url, sizeof url, "%s%s", f->ep.url, path);
    long status = 0;
    char *text = tu_http(method, url, body, &status);
    assert_non_null(text);
    assert_int_equal(status, 200);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

static void configure(fixture_t *f, const char *json)
{
    cJSON_Delete(control(f, "POST", "/_fake/config", json));
}

static evrec_options_t stream_options(fixture_t *f, evrec_service_t svc)
{
    evrec_options_t o;
    evrec_options_init(&o);
    o.service = svc;
    if (svc == EVREC_SERVICE_KINESIS)
        o.stream_name = "clicks";
    else
        o.delivery_stream_name = "to-s3";
    o.endpoint_url = f->ep.url;
    o.region = "us-east-1";
    o.access_key_id = FAKE_KEY;
    o.secret_access_key = FAKE_SECRET;
    o.flush_interval_ms = 60000;
    o.backoff_base_ms = 5;
    o.backoff_cap_ms = 40;
    o.request_timeout_ms = 5000;
    o.max_batch_events = 40;       /* several requests per run */
    o.max_request_bytes = 16 * 1024;
    return o;
}

static evrec_t *open_agent(fixture_t *f, const evrec_options_t *o)
{
    evrec_t *a = NULL;
    char err[512] = "";
    int rc = evrec_open(&a, f->store, o, err, sizeof err);
    if (rc != EVREC_OK)
        fail_msg("evrec_open: %s (%s)", evrec_strerror(rc), err);
    return a;
}

/* Record n events "<tag>-i": Pinpoint-shaped, every fifth one Personalize-shaped. */
static void record_events(evrec_t *a, const char *tag, int n, const char *attr)
{
    for (int i = 0; i < n; i++) {
        evrec_event_t *ev = NULL;
        char type[64];
        snprintf(type, sizeof type, "%s.%d", tag, i);
        assert_int_equal(evrec_event_new(&ev, type), EVREC_OK);
        assert_int_equal(evrec_event_set_attribute(ev, attr ? attr : "screen", "home"),
                         EVREC_OK);
        assert_int_equal(evrec_event_set_metric(ev, "n", i), EVREC_OK);
        if (i % 5 == 4) {
            assert_int_equal(evrec_event_set_user_id(ev, "user-1"), EVREC_OK);
            assert_int_equal(evrec_event_set_session_id(ev, "sess-1"), EVREC_OK);
        }
        assert_int_equal(evrec_record(a, ev), EVREC_OK);
        evrec_event_free(ev);
    }
}

/* The event types the endpoint accepted for this service, counted per type. */
static int accepted_types(fixture_t *f, const char *service, const char *tag, int n,
                          int *counts)
{
    cJSON *log = control(f, "GET", "/_fake/log", NULL);
    int total = 0;
    memset(counts, 0, sizeof(int) * (size_t)n);
    const cJSON *e;
    cJSON_ArrayForEach(e, log) {
        if (strcmp(cJSON_GetObjectItem(e, "service")->valuestring, service) != 0)
            continue;
        const cJSON *ev = cJSON_GetObjectItem(e, "event");
        const cJSON *type = cJSON_GetObjectItem(ev, "event_type");
        if (!cJSON_IsString(type))
            type = cJSON_GetObjectItem(ev, "eventType");
        if (!cJSON_IsString(type))
            continue;
        size_t tl = strlen(tag);
        if (strncmp(type->valuestring, tag, tl) != 0 || type->valuestring[tl] != '.')
            continue;
        int i = atoi(type->valuestring + tl + 1);
        if (i >= 0 && i < n) {
            counts[i]++;
            total++;
        }
    }
    cJSON_Delete(log);
    return total;
}

/* Flush until the store is empty (faults may take several rounds), then check the promise. */
static void deliver_and_check(fixture_t *f, evrec_t *a, evrec_service_t svc, const char *tag,
                              int n, size_t max_request_bytes)
{
    int rc = EVREC_E_TIMEOUT;
    for (int round = 0; round < 20 && rc != EVREC_OK; round++)
        rc = evrec_flush(a, 15000);
    if (rc != EVREC_OK)
        fail_msg("flush: %s: %s", evrec_strerror(rc), evrec_last_error(a));
    evrec_stats_t st = { .struct_size = sizeof st };
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.queued_events, 0);
    int *counts = calloc((size_t)n, sizeof *counts);
    const char *service = svc == EVREC_SERVICE_KINESIS ? "kinesis" : "firehose";
    accepted_types(f, service, tag, n, counts);
    for (int i = 0; i < n; i++)
        if (counts[i] < 1)
            fail_msg("%s: event %s.%d never arrived", service, tag, i);
    free(counts);
    cJSON *stats = control(f, "GET", "/_fake/stats", NULL);
    double biggest = cJSON_GetObjectItem(stats, "max_request_data_bytes")->valuedouble;
    double events = cJSON_GetObjectItem(stats, "max_event_count")->valuedouble;
    assert_int_equal(cJSON_GetObjectItem(stats, "validation_failures")->valueint, 0);
    if (biggest > (double)max_request_bytes || events > 40)
        fail_msg("a request of %.0f bytes / %.0f records is over the limits", biggest, events);
    cJSON_Delete(stats);
}

static void run_case(fixture_t *f, evrec_service_t svc, const char *config, const char *tag)
{
    configure(f, config);
    evrec_options_t o = stream_options(f, svc);
    evrec_t *a = open_agent(f, &o);
    record_events(a, tag, 120, NULL);
    deliver_and_check(f, a, svc, tag, 120, o.max_request_bytes);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
    cJSON_Delete(control(f, "POST", "/_fake/reset", "{}"));
}

static void each_fault_alone_and_mixed(void **state)
{
    fixture_t *f = *state;
    static const char *const faults[] = {
        "{}",
        "{\"throttle_rate\": 0.5}",
        "{\"record_fail_rate\": 0.3}",
        "{\"record_fail_rate\": 0.3, \"record_fail_codes\": \"InternalFailure\"}",
        "{\"fail_rate\": 0.4, \"fail_codes\": \"500,503\"}",
        "{\"drop_rate\": 0.3}",
        "{\"script\": \"lost,lost\"}", /* accepted, answer lost: sent again */
        "{\"script\": \"LimitExceededException,ServiceUnavailableException,InternalFailure\"}",
        "{\"throttle_rate\": 0.2, \"record_fail_rate\": 0.2, \"fail_rate\": 0.15, "
        "\"drop_rate\": 0.1, \"script\": \"lost\"}",
    };
    for (int svc = EVREC_SERVICE_KINESIS; svc <= EVREC_SERVICE_FIREHOSE; svc++) {
        for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
            char tag[32];
            snprintf(tag, sizeof tag, "f%zu", i);
            run_case(f, (evrec_service_t)svc, faults[i], tag);
        }
    }
}

/* A throttled stream backs off: the retries are spread, none is lost. A record failing one by
 * one is retried alone: the accepted ones are not sent again. */
static void per_record_failures_retry_only_the_failed(void **state)
{
    fixture_t *f = *state;
    configure(f, "{\"record_fail_rate\": 0.5}");
    evrec_options_t o = stream_options(f, EVREC_SERVICE_KINESIS);
    evrec_t *a = open_agent(f, &o);
    record_events(a, "pr", 30, NULL);
    deliver_and_check(f, a, EVREC_SERVICE_KINESIS, "pr", 30, o.max_request_bytes);
    cJSON *stats = control(f, "GET", "/_fake/stats", NULL);
    assert_true(cJSON_GetObjectItem(stats, "records_failed")->valueint > 0);
    assert_int_equal(cJSON_GetObjectItem(stats, "duplicates")->valueint, 0);
    cJSON_Delete(stats);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
}

/* A missing stream keeps everything and says so; once it exists, all of it goes. */
static void missing_stream_keeps_everything(void **state)
{
    fixture_t *f = *state;
    configure(f, "{\"missing_stream\": [\"clicks\"]}");
    evrec_options_t o = stream_options(f, EVREC_SERVICE_KINESIS);
    o.backoff_cap_ms = 200;
    evrec_t *a = open_agent(f, &o);
    record_events(a, "ms", 10, NULL);
    assert_int_equal(evrec_flush(a, 300), EVREC_E_TIMEOUT);
    evrec_stats_t st = { .struct_size = sizeof st };
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.queued_events, 10);
    assert_int_equal(st.last_error, EVREC_E_AUTH);
    assert_non_null(strstr(st.last_error_message, "ResourceNotFoundException"));
    configure(f, "{\"missing_stream\": []}");
    deliver_and_check(f, a, EVREC_SERVICE_KINESIS, "ms", 10, o.max_request_bytes);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
}

/* A whole-request 400 is bisected to the one record the stream refuses; the rest arrive. */
static void poison_record_is_bisected(void **state)
{
    fixture_t *f = *state;
    configure(f, "{\"poison_attribute\": [\"bad\"]}");
    evrec_options_t o = stream_options(f, EVREC_SERVICE_FIREHOSE);
    evrec_t *a = open_agent(f, &o);
    record_events(a, "ok", 12, NULL);
    record_events(a, "bad", 1, "bad");
    record_events(a, "ok2", 12, NULL);
    assert_int_equal(evrec_flush(a, 20000), EVREC_OK);
    evrec_stats_t st = { .struct_size = sizeof st };
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.queued_events, 0);
    assert_int_equal(st.dropped_poison, 1);
    int counts[12];
    assert_int_equal(accepted_types(f, "firehose", "ok", 12, counts), 12);
    assert_int_equal(accepted_types(f, "firehose", "ok2", 12, counts), 12);
    assert_int_equal(accepted_types(f, "firehose", "bad", 1, counts), 0);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
}

/* Clock skew and an expired session token are corrected without losing anything. */
static void skew_and_expired_token(void **state)
{
    fixture_t *f = *state;
    configure(f, "{\"clock_skew_ms\": 900000}");
    evrec_options_t o = stream_options(f, EVREC_SERVICE_KINESIS);
    evrec_t *a = open_agent(f, &o);
    record_events(a, "sk", 15, NULL);
    deliver_and_check(f, a, EVREC_SERVICE_KINESIS, "sk", 15, o.max_request_bytes);
    configure(f, "{\"clock_skew_ms\": 0, \"script\": \"ExpiredTokenException\"}");
    record_events(a, "tok", 5, NULL);
    deliver_and_check(f, a, EVREC_SERVICE_KINESIS, "tok", 5, o.max_request_bytes);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
}

/* Events queued for Pinpoint by older firmware go to the stream once the agent is switched;
 * the stream ARN names the stream as well as its name. */
static void switching_from_pinpoint_strands_nothing(void **state)
{
    fixture_t *f = *state;
    evrec_options_t o;
    evrec_options_init(&o);
    o.no_flusher = 1;
    evrec_t *a = open_agent(f, &o);
    record_events(a, "old", 8, NULL); /* Pinpoint-shaped and Personalize-shaped */
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
    o = stream_options(f, EVREC_SERVICE_KINESIS);
    o.stream_name = NULL;
    o.stream_arn = STREAM_ARN;
    a = open_agent(f, &o);
    deliver_and_check(f, a, EVREC_SERVICE_KINESIS, "old", 8, o.max_request_bytes);
    cJSON *log = control(f, "GET", "/_fake/log", NULL);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(log, 0), "stream_arn")->valuestring,
                        STREAM_ARN);
    cJSON_Delete(log);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
}

/* The CLI the build made ($EVREC_CLI: the sanitizer builds have their own), malloc'ed. */
static char *cli_path(void)
{
    const char *cli = getenv("EVREC_CLI");
    return cli && *cli ? strdup(cli) : tu_root_path("build/evrec");
}

/* `evrec flush` with the lines: exit 0 only when the store is empty. */
static void cli_flush_lines(void **state)
{
    fixture_t *f = *state;
    char *evrec = cli_path();
    const char *rec[] = { evrec, "record", "--store", f->store, "--type", "cli.click", NULL };
    for (int i = 0; i < 3; i++)
        assert_int_equal(tu_run(rec, NULL, NULL, NULL), 0);
    const char *k[] = { evrec, "flush", "--store", f->store, "--service", "kinesis",
                        "--stream-name", "clicks", "--region", "us-east-1", "--endpoint-url",
                        f->ep.url, "--timeout", "10", "--access-key-id", FAKE_KEY,
                        "--secret-access-key", FAKE_SECRET, NULL };
    assert_int_equal(tu_run(k, NULL, NULL, NULL), 0);
    assert_int_equal(tu_run(rec, NULL, NULL, NULL), 0);
    const char *fh[] = { evrec, "flush", "--store", f->store, "--service", "firehose",
                         "--delivery-stream-name", "to-s3", "--endpoint-url", f->ep.url,
                         "--region", "us-east-1", "--access-key-id", FAKE_KEY,
                         "--secret-access-key", FAKE_SECRET, NULL };
    assert_int_equal(tu_run(fh, NULL, NULL, NULL), 0);
    int counts[1];
    cJSON *log = control(f, "GET", "/_fake/log", NULL);
    assert_int_equal(cJSON_GetArraySize(log), 4);
    cJSON_Delete(log);
    (void)counts;
    /* a missing stream: events stay, exit 1 */
    configure(f, "{\"missing_stream\": [\"gone\"]}");
    assert_int_equal(tu_run(rec, NULL, NULL, NULL), 0);
    const char *gone[] = { evrec, "flush", "--store", f->store, "--service", "kinesis",
                           "--stream-arn", "arn:aws:kinesis:us-east-1:123456789012:stream/gone",
                           "--endpoint-url", f->ep.url, "--region", "us-east-1", "--timeout",
                           "0.5", "--access-key-id", FAKE_KEY, "--secret-access-key",
                           FAKE_SECRET, NULL };
    assert_int_equal(tu_run(gone, NULL, NULL, NULL), 1);
    /* usage errors: no stream, both names */
    const char *none[] = { evrec, "flush", "--store", f->store, "--service", "kinesis",
                           "--endpoint-url", f->ep.url, NULL };
    assert_int_equal(tu_run(none, NULL, NULL, NULL), 2);
    const char *both[] = { evrec, "flush", "--store", f->store, "--service", "kinesis",
                           "--stream-name", "a", "--stream-arn", STREAM_ARN, "--endpoint-url",
                           f->ep.url, NULL };
    assert_int_equal(tu_run(both, NULL, NULL, NULL), 2);
    free(evrec);
}

/* The options each stream needs, checked at open before anything is written. */
static void stream_options_are_validated(void **state)
{
    fixture_t *f = *state;
    struct {
        evrec_service_t svc;
        const char *stream, *arn, *delivery;
        int partition;
        size_t record_bytes;
        const char *needle;
    } bad[] = {
        { EVREC_SERVICE_KINESIS, NULL, NULL, NULL, 0, 0, "stream_name" },
        { EVREC_SERVICE_KINESIS, "a", STREAM_ARN, NULL, 0, 0, "not both" },
        { EVREC_SERVICE_KINESIS, "a", NULL, NULL, 7, 0, "partition_key" },
        { EVREC_SERVICE_KINESIS, "a", NULL, NULL, 0, 100, "max_record_bytes" },
        { EVREC_SERVICE_FIREHOSE, "a", NULL, NULL, 0, 0, "delivery_stream_name" },
        { (evrec_service_t)9, "a", NULL, "b", 0, 0, "service" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        evrec_options_t o = stream_options(f, EVREC_SERVICE_KINESIS);
        o.service = bad[i].svc;
        o.stream_name = bad[i].stream;
        o.stream_arn = bad[i].arn;
        o.delivery_stream_name = bad[i].delivery;
        o.partition_key = (evrec_partition_key_t)bad[i].partition;
        o.max_record_bytes = bad[i].record_bytes;
        evrec_t *a = NULL;
        char err[512] = "";
        assert_int_equal(evrec_open(&a, f->store, &o, err, sizeof err), EVREC_E_CONFIG);
        assert_null(a);
        if (!strstr(err, bad[i].needle))
            fail_msg("case %zu: '%s' does not name '%s'", i, err, bad[i].needle);
    }
    /* at the service's limits and under them: accepted */
    evrec_options_t o = stream_options(f, EVREC_SERVICE_KINESIS);
    o.max_batch_events = 500;
    o.max_request_bytes = 64u * 1024 * 1024; /* lowered to 5 MiB */
    evrec_t *a = open_agent(f, &o);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
    o.max_batch_events = 501;
    char err[512] = "";
    assert_int_equal(evrec_open(&a, f->store, &o, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "Kinesis's limit of 500"));
}

/* Issue 14's line: an event recorded with user and session ids in a Pinpoint store keeps
 * them; flushing for Pinpoint leaves it (exit 1, it waits), Personalize delivers it. */
static void cli_personalize_ids_survive_a_pinpoint_store(void **state)
{
    fixture_t *f = *state;
    char *evrec = cli_path();
    const char *rec[] = { evrec, "record", "--store", f->store, "--type", "watch", "--user-id",
                          "U", "--session-id", "X", NULL };
    assert_int_equal(tu_run(rec, NULL, NULL, NULL), 0);
    const char *pp[] = { evrec, "flush", "--store", f->store, "--service", "pinpoint",
                         "--application-id", "app-1", "--endpoint-url", f->ep.url, "--region",
                         "us-east-1", "--timeout", "600", "--access-key-id", FAKE_KEY,
                         "--secret-access-key", FAKE_SECRET, NULL };
    assert_int_equal(tu_run(pp, NULL, NULL, NULL), 1);
    const char *pz[] = { evrec, "flush", "--store", f->store, "--service", "personalize-events",
                         "--tracking-id", "tracker-1", "--endpoint-url", f->ep.url, "--region",
                         "us-east-1", "--access-key-id", FAKE_KEY, "--secret-access-key",
                         FAKE_SECRET, NULL };
    assert_int_equal(tu_run(pz, NULL, NULL, NULL), 0);
    cJSON *log = control(f, "GET", "/_fake/log", NULL);
    assert_int_equal(cJSON_GetArraySize(log), 1);
    const cJSON *e = cJSON_GetArrayItem(log, 0);
    assert_string_equal(cJSON_GetObjectItem(e, "user_id")->valuestring, "U");
    assert_string_equal(cJSON_GetObjectItem(e, "session_id")->valuestring, "X");
    cJSON_Delete(log);
    free(evrec);
}

/* `evrec agent` takes the same: a config file for Firehose, then flags for Kinesis. Each
 * delivers what scripts record meanwhile, and drains on SIGTERM. */
static void agent_config_file_and_flags(void **state)
{
    fixture_t *f = *state;
    char *evrec = cli_path();
    char cfg[700], log[700];
    snprintf(cfg, sizeof cfg, "%s/agent.json", f->dir);
    snprintf(log, sizeof log, "%s/agent.log", f->dir);
    FILE *fp = fopen(cfg, "w");
    assert_non_null(fp);
    fprintf(fp, "{\"service\": \"firehose\", \"delivery_stream_name\": \"to-s3\", "
                "\"endpoint_url\": \"%s\", \"region\": \"us-east-1\", "
                "\"access_key_id\": \"%s\", \"secret_access_key\": \"%s\", "
                "\"flush_interval_ms\": 100}\n",
            f->ep.url, FAKE_KEY, FAKE_SECRET);
    fclose(fp);
    assert_int_equal(chmod(cfg, 0600), 0); /* it holds keys */
    for (int round = 0; round < 2; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            dup2(fd, 2);
            if (round == 0)
                execl(evrec, evrec, "agent", "--store", f->store, "--config", cfg, (char *)NULL);
            else
                execl(evrec, evrec, "agent", "--store", f->store, "--config", cfg, "--service",
                      "kinesis", "--stream-name", "clicks", "--partition-key", "random",
                      (char *)NULL);
            _exit(127);
        }
        const char *rec[] = { evrec, "record", "--store", f->store, "--type",
                              round == 0 ? "via.agent.fh" : "via.agent.k", NULL };
        for (int i = 0; i < 3; i++)
            assert_int_equal(tu_run(rec, NULL, NULL, NULL), 0);
        const char *service = round == 0 ? "firehose" : "kinesis";
        long seen = 0;
        for (int wait = 0; wait < 200 && seen < 3; wait++) {
            struct timespec ts = { 0, 50 * 1000000L };
            nanosleep(&ts, NULL);
            cJSON *l = control(f, "GET", "/_fake/log", NULL);
            seen = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, l)
                seen += strcmp(cJSON_GetObjectItem(e, "service")->valuestring, service) == 0;
            cJSON_Delete(l);
        }
        kill(pid, SIGTERM);
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char text[2048] = "";
            FILE *lf = fopen(log, "r");
            if (lf) {
                size_t n = fread(text, 1, sizeof text - 1, lf);
                text[n] = '\0';
                fclose(lf);
            }
            fail_msg("%s: the agent exited with %d: %s", round ? "kinesis" : "firehose",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1, text);
        }
        if (seen != 3)
            fail_msg("%s: the agent delivered %ld of 3 events", service, seen);
    }
    cJSON *l = control(f, "GET", "/_fake/log", NULL);
    const cJSON *last = cJSON_GetArrayItem(l, cJSON_GetArraySize(l) - 1);
    assert_int_equal(strlen(cJSON_GetObjectItem(last, "partition_key")->valuestring), 36);
    cJSON_Delete(l);
    free(evrec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(each_fault_alone_and_mixed, setup, teardown),
        cmocka_unit_test_setup_teardown(per_record_failures_retry_only_the_failed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(missing_stream_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(poison_record_is_bisected, setup, teardown),
        cmocka_unit_test_setup_teardown(skew_and_expired_token, setup, teardown),
        cmocka_unit_test_setup_teardown(switching_from_pinpoint_strands_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cli_flush_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(stream_options_are_validated, setup, teardown),
        cmocka_unit_test_setup_teardown(agent_config_file_and_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(cli_personalize_ids_survive_a_pinpoint_store, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
