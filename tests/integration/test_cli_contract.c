/*
 * The command lines the issues name, run exactly as written (users' scripts depend on them):
 * `evrec record` with every queue-side flag, `evrec record` for Personalize with --user-id and
 * --session-id, `evrec queue stats`, `evrec queue dump`, `evrec status`, and `evrec flush
 * --service pinpoint|personalize-events ... --timeout SECONDS` against the local endpoint.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "testutil.h"

#define KEY "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static const char *cli_path(void)
{
    const char *p = getenv("EVREC_CLI");
    return p && *p ? p : "build/evrec";
}

/* Run build/evrec with the given arguments (NULL-terminated). */
static int run(char **out, char **err, ...)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = cli_path();
    va_list ap;
    va_start(ap, err);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 63)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return tu_run(argv, NULL, out, err);
}

static void isolate_environment(void)
{
    setenv("AWS_ACCESS_KEY_ID", KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    setenv("AWS_REGION", "us-east-1", 1);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
}

static void queue_side_command_lines(void **state)
{
    (void)state;
    char *dir = tu_tempdir("contract");
    char store[600];
    snprintf(store, sizeof store, "%s/store", dir);
    char *out = NULL, *err = NULL;
    char when[32], printed[32];
    tu_recent_day(1, when, printed);
    int rc = run(&out, &err, "record", "--store", store, "--event-type", "door.open",
                 "--attribute", "door=front", "--metric", "battery=0.82", "--endpoint-id",
                 "device-7", "--timestamp", when, "--durability", "power",
                 "--max-store-bytes", "1048576", NULL);
    if (rc != 0)
        print_error("record: %s\n", err);
    assert_int_equal(rc, 0);
    char id[128];
    assert_int_equal(sscanf(out, "%127s", id), 1); /* prints the event id */
    free(out);
    free(err);

    rc = run(&out, &err, "queue", "stats", "--store", store, NULL);
    assert_int_equal(rc, 0);
    cJSON *st = cJSON_Parse(out);
    assert_non_null(st);
    assert_int_equal(cJSON_GetObjectItem(st, "events")->valueint, 1);
    assert_true(cJSON_GetObjectItem(st, "bytes")->valueint > 0);
    assert_non_null(cJSON_GetObjectItem(st, "endpoints"));
    assert_string_equal(cJSON_GetObjectItem(st, "oldest")->valuestring, printed);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "dropped"), "evicted"));
    cJSON_Delete(st);
    free(out);
    free(err);

    rc = run(&out, &err, "queue", "dump", "--store", store, NULL);
    assert_int_equal(rc, 0);
    cJSON *line = cJSON_Parse(out); /* one event: one line */
    assert_non_null(line);
    assert_string_equal(cJSON_GetObjectItem(line, "EventId")->valuestring, id);
    assert_string_equal(cJSON_GetObjectItem(line, "EndpointId")->valuestring, "device-7");
    cJSON *body = cJSON_GetObjectItem(line, "Event");
    assert_string_equal(cJSON_GetObjectItem(body, "EventType")->valuestring, "door.open");
    cJSON_Delete(line);
    free(out);
    free(err);

    rc = run(&out, &err, "status", "--store", store, NULL);
    assert_int_equal(rc, 1); /* no flusher runs and an event waits: stopped with backlog */
    assert_non_null(strstr(out, "\"events\":1"));
    free(out);
    free(err);

    /* --help for the tool and for each subcommand */
    const char *subs[] = { "record", "queue", "status", "flush", "agent", "endpoint" };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        rc = run(&out, &err, subs[i], "--help", NULL);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(out, "usage"));
        free(out);
        free(err);
    }
    assert_int_equal(run(&out, &err, "--version", NULL), 0);
    assert_non_null(strstr(out, "evrec"));
    free(out);
    free(err);
    tu_rmtree(dir);
    free(dir);
}

static long count_in_log(const tu_endpoint_t *ep, const char *needle)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/log", ep->url);
    long status = 0;
    char *log = tu_http("GET", url, NULL, &status);
    assert_int_equal(status, 200);
    long n = 0;
    for (const char *p = log; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(log);
    return n;
}

/* `evrec queue stats --store STORE` says N events wait. */
static void assert_queued(const char *store, int n)
{
    char *out = NULL, *err = NULL;
    assert_int_equal(run(&out, &err, "queue", "stats", "--store", store, NULL), 0);
    cJSON *st = cJSON_Parse(out);
    assert_non_null(st);
    assert_int_equal(cJSON_GetObjectItem(st, "events")->valueint, n);
    cJSON_Delete(st);
    free(out);
    free(err);
}

static void flush_both_services(void **state)
{
    (void)state;
    isolate_environment();
    tu_endpoint_t ep;
    assert_int_equal(tu_endpoint_start(&ep, NULL), 0);
    char *dir = tu_tempdir("contract-flush");
    char pin[600], per[600];
    snprintf(pin, sizeof pin, "%s/pinpoint", dir);
    snprintf(per, sizeof per, "%s/personalize", dir);
    char *out = NULL, *err = NULL;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(run(&out, &err, "record", "--store", pin, "--event-type",
                             "contract.pinpoint", NULL), 0);
        free(out);
        free(err);
    }
    int rc = run(&out, &err, "flush", "--store", pin, "--service", "pinpoint",
                 "--application-id", "contract-app", "--region", "us-east-1", "--endpoint-url",
                 ep.url, "--timeout", "20", NULL);
    if (rc != 0)
        print_error("flush pinpoint: %s\n", err);
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    assert_int_equal(count_in_log(&ep, "\"contract.pinpoint\""), 3);

    for (int i = 0; i < 2; i++) {
        rc = run(&out, &err, "record", "--store", per, "--service", "personalize",
                 "--event-type", "contract.click", "--user-id", "user-1", "--session-id",
                 "session-1", NULL);
        if (rc != 0)
            print_error("record personalize: %s\n", err);
        assert_int_equal(rc, 0);
        free(out);
        free(err);
    }
    rc = run(&out, &err, "flush", "--store", per, "--service", "personalize-events",
             "--tracking-id", "contract-tracker", "--region", "us-east-1", "--endpoint-url",
             ep.url, "--timeout", "20", NULL);
    if (rc != 0)
        print_error("flush personalize: %s\n", err);
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    assert_int_equal(count_in_log(&ep, "\"contract.click\""), 2);
    assert_true(count_in_log(&ep, "\"session-1\"") >= 2);
    assert_true(count_in_log(&ep, "\"user-1\"") >= 2);

    /* Nothing to reach: exit 1 once the timeout (seconds) passed, the events stay queued. */
    assert_int_equal(run(&out, &err, "record", "--store", pin, "--event-type", "kept", NULL),
                     0);
    free(out);
    free(err);
    rc = run(&out, &err, "flush", "--store", pin, "--service", "pinpoint", "--application-id",
             "contract-app", "--endpoint-url", "http://127.0.0.1:9", "--timeout", "0.5", NULL);
    assert_int_equal(rc, 1);
    free(out);
    free(err);
    assert_queued(pin, 1);

    tu_endpoint_stop(&ep);
    tu_rmtree(dir);
    free(dir);
}

/* The contract line of issue 5: an event recorded with --user-id and --session-id, without
 * --service, keeps both ids whatever the store's default service, and
 * `evrec flush --service personalize-events` delivers it. Personalize-shaped JSON given to
 * `record --json` in that (Pinpoint) store is kept whole too, never cut to its event type. */
static void personalize_ids_kept_without_service(void **state)
{
    (void)state;
    isolate_environment();
    tu_endpoint_t ep;
    assert_int_equal(tu_endpoint_start(&ep, NULL), 0);
    char *dir = tu_tempdir("contract-ids");
    char store[600];
    snprintf(store, sizeof store, "%s/store", dir);
    char *out = NULL, *err = NULL;
    int rc = run(&out, &err, "record", "--store", store, "--type", "watch", "--user-id",
                 "contract-user", "--session-id", "contract-session", "--event-id", "ids-1",
                 NULL);
    if (rc != 0)
        print_error("record: %s\n", err);
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    rc = run(&out, &err, "record", "--store", store, "--json",
             "{\"eventType\":\"rate\",\"eventId\":\"ids-2\",\"itemId\":\"contract-item\","
             "\"eventValue\":4.5,\"properties\":{\"stars\":\"4\"},\"userId\":\"contract-user\","
             "\"sessionId\":\"contract-session\"}", NULL);
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    /* a Pinpoint flush cannot carry them: exit 1, and they stay */
    rc = run(&out, &err, "flush", "--store", store, "--service", "pinpoint", "--application-id",
             "contract-app", "--endpoint-url", ep.url, "--timeout", "10", NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "evrec flush --service personalize-events"));
    free(out);
    free(err);
    rc = run(&out, &err, "flush", "--store", store, "--service", "personalize-events",
             "--tracking-id", "contract-tracker", "--endpoint-url", ep.url, "--timeout", "10",
             NULL);
    if (rc != 0)
        print_error("flush personalize-events: %s\n", err);
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    assert_true(count_in_log(&ep, "\"ids-1\"") >= 1);
    assert_true(count_in_log(&ep, "\"ids-2\"") >= 1);
    assert_true(count_in_log(&ep, "\"contract-session\"") >= 1);
    assert_true(count_in_log(&ep, "\"contract-user\"") >= 1);
    assert_true(count_in_log(&ep, "\"contract-item\"") >= 1);
    assert_true(count_in_log(&ep, "stars") >= 1);
    tu_endpoint_stop(&ep);
    tu_rmtree(dir);
    free(dir);
}

/* The part of a --help text before its option list: the usage lines and the description. */
static char *usage_part(char *help)
{
    char *cut = strstr(help, "\noptions");
    if (cut)
        *cut = '\0';
    return help;
}

/* Issue 13's command lines for the stream services, as written there:
 *   evrec flush --store DIR --service kinesis (--stream-name NAME | --stream-arn ARN)
 *               [--region R] [--endpoint-url URL] [--timeout S]
 *   evrec flush --store DIR --service firehose --delivery-stream-name NAME ...
 * each draining the store once, exit 0 only when it is empty (1 and the events kept when the
 * stream is missing); and the tool's and those commands' --help name all four services. */
static void flush_stream_services(void **state)
{
    (void)state;
    isolate_environment();
    char *out = NULL, *err = NULL;

    assert_int_equal(run(&out, &err, "--help", NULL), 0);
    assert_non_null(strstr(out, "Kinesis"));
    assert_non_null(strstr(out, "Firehose"));
    free(out);
    free(err);
    const char *cmds[] = { "flush", "agent" };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(run(&out, &err, cmds[i], "--help", NULL), 0);
        usage_part(out);
        assert_non_null(strstr(out, "--service kinesis"));
        assert_non_null(strstr(out, "--stream-arn ARN"));
        assert_non_null(strstr(out, "--service firehose --delivery-stream-name NAME"));
        free(out);
        free(err);
    }

    tu_endpoint_t ep;
    assert_int_equal(tu_endpoint_start(&ep, NULL), 0);
    char *dir = tu_tempdir("contract-streams");
    char store[600];
    snprintf(store, sizeof store, "%s/store", dir);

    const char *arn = "arn:aws:kinesis:us-east-1:123456789012:stream/contract-stream";
    const char *lines[][6] = {
        { "kinesis", "--stream-name", "contract-stream", "contract.ks1" },
        { "kinesis", "--stream-arn", arn, "contract.ks2" },
        { "firehose", "--delivery-stream-name", "contract-delivery", "contract.fh" },
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        const char *type = lines[i][3];
        assert_int_equal(run(&out, &err, "record", "--store", store, "--type", type, NULL), 0);
        free(out);
        free(err);
        int rc = run(&out, &err, "flush", "--store", store, "--service", lines[i][0],
                     lines[i][1], lines[i][2], "--region", "us-east-1", "--endpoint-url", ep.url,
                     "--timeout", "20", NULL);
        if (rc != 0)
            print_error("flush --service %s %s: %s\n", lines[i][0], lines[i][1], err);
        assert_int_equal(rc, 0);
        free(out);
        free(err);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", type);
        assert_int_equal(count_in_log(&ep, quoted), 1);
    }

    /* without a stream: a usage error, nothing sent */
    assert_int_equal(run(&out, &err, "flush", "--store", store, "--service", "kinesis",
                         "--endpoint-url", ep.url, "--timeout", "1", NULL), 2);
    free(out);
    free(err);
    assert_int_equal(run(&out, &err, "flush", "--store", store, "--service", "firehose",
                         "--endpoint-url", ep.url, "--timeout", "1", NULL), 2);
    free(out);
    free(err);

    /* a missing stream: exit 1 after the timeout, the event kept */
    char url[160];
    snprintf(url, sizeof url, "%s/_fake/config?missing_stream=contract-gone", ep.url);
    long status = 0;
    free(tu_http("POST", url, "", &status));
    assert_int_equal(status, 200);
    assert_int_equal(run(&out, &err, "record", "--store", store, "--type", "contract.kept",
                         NULL), 0);
    free(out);
    free(err);
    assert_int_equal(run(&out, &err, "flush", "--store", store, "--service", "kinesis",
                         "--stream-name", "contract-gone", "--endpoint-url", ep.url,
                         "--timeout", "1", NULL), 1);
    free(out);
    free(err);
    assert_queued(store, 1);

    tu_endpoint_stop(&ep);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(queue_side_command_lines),
        cmocka_unit_test(flush_both_services),
        cmocka_unit_test(personalize_ids_kept_without_service),
        cmocka_unit_test(flush_stream_services),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
