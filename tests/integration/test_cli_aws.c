/*
 * evrec's AWS CLI-compatible put-events against the AWS CLI v2 itself (/usr/bin/aws, Debian's
 * awscli), side by side on the local endpoint: the same command lines must give the same
 * events at the endpoint (bodies as the endpoint decoded them), the same stdout byte for byte,
 * the same error messages and the same exit codes. The endpoint recomputes every signature with
 * botocore and validates every body against botocore's model, independently of evrec.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "testutil.h"

#define AWS "/usr/bin/aws"

typedef struct env {
    tu_endpoint_t ep;
    char *home;
    char *cli;
    int have_aws;
    int no_endpoint;
} env_t;

typedef struct result {
    int rc;
    char *out, *err;
    cJSON *events;   /* what the endpoint accepted, "time" removed */
    cJSON *requests; /* per request: service, status, signature_ok, validation_error, count */
} result_t;

static void result_free(result_t *r)
{
    free(r->out);
    free(r->err);
    cJSON_Delete(r->events);
    cJSON_Delete(r->requests);
    memset(r, 0, sizeof *r);
}

static char *url_of(env_t *e, const char *path)
{
    char *u = NULL;
    if (asprintf(&u, "%s%s", e->ep.url, path) < 0)
        return NULL;
    return u;
}

static cJSON *control_get(env_t *e, const char *path)
{
    char *u = url_of(e, path);
    long st = 0;
    char *body = tu_http("GET", u, NULL, &st);
    free(u);
    cJSON *v = body ? cJSON_Parse(body) : NULL;
    free(body);
    return v;
}

static void control_post(env_t *e, const char *path)
{
    char *u = url_of(e, path);
    long st = 0;
    free(tu_http("POST", u, "{}", &st));
    free(u);
    assert_int_equal(st, 200);
}

/* Keep what a client controls: the request's outcome, not its timing or ids. */
static cJSON *summarise_requests(cJSON *reqs)
{
    cJSON *out = cJSON_CreateArray();
    cJSON *r;
    cJSON_ArrayForEach(r, reqs) {
        cJSON *s = cJSON_CreateObject();
        static const char *const keep[] = { "service", "status", "signature_ok",
                                            "validation_error", "event_count", "path" };
        for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(r, keep[i]);
            if (v)
                cJSON_AddItemToObject(s, keep[i], cJSON_Duplicate(v, 1));
        }
        cJSON_AddItemToArray(out, s);
    }
    return out;
}

/* Faults for the next runs, as a /_fake/config query ("throttle_rate=1"); applied after each
 * reset. */
static const char *g_faults = NULL;

/* Run one command line (argv after the program name) with the given program. */
static void run_one(env_t *e, const char *prog, const char *const *args, result_t *r)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = prog;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    control_post(e, "/_fake/reset");
    if (g_faults) {
        char path[256];
        snprintf(path, sizeof path, "/_fake/config?%s", g_faults);
        control_post(e, path);
    }
    memset(r, 0, sizeof *r);
    r->rc = tu_run(argv, NULL, &r->out, &r->err);
    r->events = control_get(e, "/_fake/log");
    cJSON *ev;
    cJSON_ArrayForEach(ev, r->events) cJSON_DeleteItemFromObject(ev, "time");
    cJSON *reqs = control_get(e, "/_fake/requests");
    r->requests = summarise_requests(reqs);
    cJSON_Delete(reqs);
}

/* The AWS CLI names itself "aws" in usage errors; evrec names itself "evrec". */
static char *as_aws(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(n + 1), *w = o;
    for (const char *p = s; *p;) {
        if (strncmp(p, "evrec", 5) == 0) {
            memcpy(w, "aws", 3);
            w += 3;
            p += 5;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return o;
}

static void print_diff(const char *what, const char *a, const char *b)
{
    fprintf(stderr, "--- %s (aws) ---\n%s\n--- %s (evrec) ---\n%s\n", what, a, what, b);
}

enum { CMP_ALL = 0, CMP_ERR_FIRST_LINE = 1 };

/* Run the same command line with both, compare everything; returns evrec's result in *er. */
static void same(env_t *e, int flags, const char *const *args, result_t *er)
{
    result_t ar;
    run_one(e, AWS, args, &ar);
    run_one(e, e->cli, args, er);
    if (ar.rc != er->rc)
        print_diff("exit code", ar.err, er->err);
    assert_int_equal(er->rc, ar.rc);
    if (strcmp(ar.out, er->out) != 0)
        print_diff("stdout", ar.out, er->out);
    assert_string_equal(er->out, ar.out);
    char *eerr = as_aws(er->err);
    if (flags & CMP_ERR_FIRST_LINE) {
        /* the message's first line ("\nBad value for --query X: ...") */
        char *a1 = strndup(ar.err, strcspn(ar.err + 1, ":") + 1);
        char *e1 = strndup(eerr, strcspn(eerr + 1, ":") + 1);
        assert_string_equal(e1, a1);
        free(a1);
        free(e1);
    } else {
        if (strcmp(ar.err, eerr) != 0)
            print_diff("stderr", ar.err, eerr);
        assert_string_equal(eerr, ar.err);
    }
    free(eerr);
    char *ae = cJSON_PrintUnformatted(ar.events), *ee = cJSON_PrintUnformatted(er->events);
    char *aq = cJSON_PrintUnformatted(ar.requests), *eq = cJSON_PrintUnformatted(er->requests);
    if (strcmp(ae, ee) != 0)
        print_diff("events", ae, ee);
    assert_true(cJSON_Compare(ar.events, er->events, 1));
    if (strcmp(aq, eq) != 0)
        print_diff("requests", aq, eq);
    assert_true(cJSON_Compare(ar.requests, er->requests, 1));
    /* every request evrec made was signed as botocore signs */
    cJSON *q;
    cJSON_ArrayForEach(q, er->requests) {
        cJSON *ok = cJSON_GetObjectItemCaseSensitive(q, "signature_ok");
        assert_true(cJSON_IsTrue(ok));
    }
    free(ae);
    free(ee);
    free(aq);
    free(eq);
    result_free(&ar);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof *e);
    e->have_aws = access(AWS, X_OK) == 0;
    const char *cli = getenv("EVREC_CLI");
    e->cli = realpath(cli && *cli ? cli : "build/evrec", NULL);
    if (!e->cli)
        return -1;
    e->home = tu_tempdir("cli-aws");
    char path[600];
    snprintf(path, sizeof path, "%s/config", e->home);
    write_file(e->home, "config", "");
    setenv("AWS_CONFIG_FILE", path, 1);
    snprintf(path, sizeof path, "%s/credentials", e->home);
    write_file(e->home, "credentials", "");
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    setenv("HOME", e->home, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    setenv("AWS_DEFAULT_REGION", "us-east-1", 1);
    setenv("AWS_PAGER", "", 1);
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_REGION");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_DEFAULT_OUTPUT");
    unsetenv("AWS_MAX_ATTEMPTS");
    unsetenv("AWS_RETRY_MODE");
    unsetenv("AWS_CA_BUNDLE");
    const char *args[] = { "--reject-event-type", "rejected.type", NULL };
    char *fake = tu_root_path("tools/fake_endpoint.py");
    int have_fake = access(fake, R_OK) == 0;
    free(fake);
    if (!have_fake) {
        fprintf(stderr, "test_cli_aws: tools/fake_endpoint.py is not in this tree\n");
        e->have_aws = 0;
        e->no_endpoint = 1;
        *state = e;
        return 0;
    }
    if (tu_endpoint_start(&e->ep, args) != 0)
        return -1;
    /* relative file:// paths are read from here */
    if (chdir(e->home) != 0)
        return -1;
    write_file(e->home, "events.json",
               "{\"BatchItem\": {\"dev-ü\": {\"Endpoint\": {\"ChannelType\": \"GCM\", "
               "\"Attributes\": {\"k\": [\"v1\", \"v2\"]}, \"Metrics\": {\"m\": 5}}, "
               "\"Events\": {\"ev\": {\"EventType\": \"_session.start\", \"Timestamp\": "
               "\"2024-05-01T10:00:00.123Z\", \"Metrics\": {\"x\": 1e3, \"y\": -0.5}, "
               "\"Attributes\": {\"q\": \"naïve ✓\"}}, \"ev2\": {\"EventType\": \"buy\", "
               "\"Timestamp\": \"2024-05-01T10:00:01Z\"}}}}}\n");
    write_file(e->home, "list.json",
               "[{\"eventType\": \"click\", \"sentAt\": 1700000000.9, \"itemId\": \"i1\", "
               "\"properties\": \"{\\\"a\\\": 1}\"}, {\"eventType\": \"view\", \"sentAt\": "
               "\"2024-01-02T03:04:05Z\", \"eventValue\": 2}]\n");
    write_file(e->home, "input.yaml",
               "ApplicationId: app-yaml\nEventsRequest:\n  BatchItem:\n    e1:\n      Endpoint: {}\n"
               "      Events:\n        a:\n          EventType: t\n"
               "          Timestamp: '2024-01-01T00:00:00Z'\n");
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    if (!e)
        return 0;
    tu_endpoint_stop(&e->ep);
    if (chdir("/") != 0)
        return -1;
    tu_rmtree(e->home);
    free(e->home);
    free(e->cli);
    free(e);
    return 0;
}

#define SKIP_WITHOUT_AWS(e)                                                                    \
    do {                                                                                       \
        if (!(e)->have_aws) {                                                                  \
            fprintf(stderr, "skipped: %s is not installed (Debian package awscli)\n", AWS);  \
            skip();                                                                            \
        }                                                                                      \
    } while (0)

static const char *EV1 =
    "{\"BatchItem\":{\"ep1\":{\"Endpoint\":{\"Address\":\"x\",\"User\":{\"UserId\":\"u\"}},"
    "\"Events\":{\"e1\":{\"EventType\":\"click\",\"Timestamp\":\"2024-01-01T00:00:00Z\","
    "\"Attributes\":{\"k\":\"v\"}},\"e2\":{\"EventType\":\"rejected.type\",\"Timestamp\":"
    "\"2024-01-01T00:00:00Z\"}}},\"ep0\":{\"Endpoint\":{},\"Events\":{}}}}";

/* Each output format, each with another way of giving the input. */
static void test_pinpoint(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    result_t r;
    /* inline JSON; e2 is rejected per event (a 400 inside the 202 answer) */
    const char *a1[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--application-id", "app-1", "--events-request", EV1, NULL };
    same(e, CMP_ALL, a1, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(cJSON_GetArraySize(r.events), 1);
    assert_non_null(strstr(r.out, "\"StatusCode\": 400"));
    result_free(&r);
    /* shorthand: nested hashes, lists, quoting, escaped commas, numbers from the model */
    const char *a2[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--application-id", "app-2", "--events-request",
                         "BatchItem={d1={Endpoint={Address='a,b',Attributes={k=[v1,v2],k2=v\\,3},"
                         "Metrics={m=1.5,n=2},Location={Latitude=47.1,Longitude=-8}},"
                         "Events={e={EventType=click,Timestamp=2024-01-01T00:00:00Z,"
                         "Metrics={x=3},Attributes={a=\"q \\\"x\\\"\"}}}}}",
                         "--output", "text", NULL };
    same(e, CMP_ALL, a2, &r);
    assert_int_equal(cJSON_GetArraySize(r.events), 1);
    result_free(&r);
    /* file:// with non-ASCII keys, floats and fractions; global options before the command */
    const char *a3[] = { "--output", "table", "--region", "us-east-1", "pinpoint", "put-events",
                         "--endpoint-url", e->ep.url, "--application-id", "app/with space",
                         "--events-request", "file://events.json", NULL };
    same(e, CMP_ALL, a3, &r);
    assert_int_equal(cJSON_GetArraySize(r.events), 2);
    result_free(&r);
    /* --query */
    const char *a4[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--application-id", "app-3", "--events-request", "file://events.json",
                         "--query", "EventsResponse.Results.*.EventsItemResponse", "--output",
                         "yaml", NULL };
    same(e, CMP_ALL, a4, &r);
    result_free(&r);
    /* --cli-input-yaml */
    const char *a5[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--cli-input-yaml", "file://input.yaml", "--output", "yaml-stream", NULL };
    same(e, CMP_ALL, a5, &r);
    assert_int_equal(cJSON_GetArraySize(r.events), 1);
    result_free(&r);
    /* --cli-input-json: the command line wins */
    const char *a6[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--cli-input-json",
                         "{\"ApplicationId\": \"from-json\", \"EventsRequest\": {\"BatchItem\": {}}}",
                         "--application-id", "from-cli", "--query",
                         "EventsResponse.Results", NULL };
    same(e, CMP_ALL, a6, &r);
    char *q = cJSON_PrintUnformatted(r.requests);
    assert_non_null(strstr(q, "/v1/apps/from-cli/events"));
    free(q);
    result_free(&r);
}

static void test_personalize(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    result_t r;
    /* a list of shorthand structures, one per value */
    const char *a1[] = { "personalize-events", "put-events", "--endpoint-url", e->ep.url,
                         "--tracking-id", "t-1", "--session-id", "s-1", "--event-list",
                         "eventType=click,sentAt=1700000000,itemId=i1,impression=a,b",
                         "eventType=view,sentAt=2024-01-01T00:00:00Z,eventValue=3", NULL };
    same(e, CMP_ALL, a1, &r);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "");
    assert_int_equal(cJSON_GetArraySize(r.events), 2);
    result_free(&r);
    /* JSON list from a file, user id, text output */
    const char *a2[] = { "personalize-events", "put-events", "--endpoint-url", e->ep.url,
                         "--tracking-id", "t-2", "--user-id", "u-2", "--session-id", "s-2",
                         "--event-list", "file://list.json", "--output", "text", NULL };
    same(e, CMP_ALL, a2, &r);
    assert_int_equal(cJSON_GetArraySize(r.events), 2);
    result_free(&r);
    /* skeletons need no service */
    const char *a3[] = { "personalize-events", "put-events", "--generate-cli-skeleton", NULL };
    same(e, CMP_ALL, a3, &r);
    assert_non_null(strstr(r.out, "\"trackingId\": \"\""));
    result_free(&r);
}

static void test_bad_input(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    result_t r;
    /* botocore's validation report: nothing is sent */
    const char *a1[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--application-id", "a", "--events-request",
                         "{\"BatchItem\":{\"a\":{\"Endpoint\":{\"Metrics\":{\"x\":\"y\"},"
                         "\"Location\":{\"Latitude\":true}},\"Events\":{\"e\":{\"EventType\":1,"
                         "\"Bogus\":[1]}}}},\"X\":{\"a\":1.5}}", NULL };
    same(e, CMP_ALL, a1, &r);
    assert_int_equal(r.rc, 252);
    assert_non_null(strstr(r.err, "Parameter validation failed:\n"));
    assert_int_equal(cJSON_GetArraySize(r.requests), 0);
    result_free(&r);
    /* shorthand syntax error, invalid JSON, missing arguments, unknown options, bad choice */
    const char *a2[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--application-id", "a", "--events-request", "BatchItem={a=b,c", NULL };
    same(e, CMP_ALL, a2, &r);
    assert_int_equal(r.rc, 252);
    result_free(&r);
    const char *a3[] = { "personalize-events", "put-events", "--endpoint-url", e->ep.url,
                         "--tracking-id", "t", "--session-id", "s", "--event-list",
                         "[{\"eventType\": \"x\",, }]", NULL };
    same(e, CMP_ALL, a3, &r);
    assert_int_equal(r.rc, 252);
    result_free(&r);
    const char *a4[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url, "--bogus", "1",
                         "--application-id", "a", "--events-request", "BatchItem={}", NULL };
    same(e, CMP_ALL, a4, &r);
    assert_int_equal(r.rc, 252);
    result_free(&r);
    const char *a5[] = { "personalize-events", "put-events", "--endpoint-url", e->ep.url,
                         "--session-id", "s", "--output", "text", NULL };
    same(e, CMP_ALL, a5, &r);
    assert_int_equal(r.rc, 252);
    result_free(&r);
    /* a --query that does not compile: nothing sent (messages differ after the first words) */
    const char *a8[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--application-id", "a", "--events-request", "BatchItem={}",
                         "--query", "EventsResponse[", NULL };
    same(e, CMP_ERR_FIRST_LINE, a8, &r);
    assert_int_equal(r.rc, 252);
    result_free(&r);
}

static void test_service_errors(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    result_t r;
    g_faults = "throttle_rate=1";
    setenv("AWS_MAX_ATTEMPTS", "2", 1);
    const char *a1[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--application-id", "a", "--events-request", EV1, NULL };
    same(e, CMP_ALL, a1, &r);
    assert_int_equal(r.rc, 254);
    assert_non_null(strstr(r.err, "An error occurred (TooManyRequestsException) when calling the "
                                  "PutEvents operation (reached max retries: 1)"));
    assert_int_equal(cJSON_GetArraySize(r.requests), 2);
    result_free(&r);
    g_faults = "fail_rate=1&fail_codes=503";
    setenv("AWS_MAX_ATTEMPTS", "1", 1);
    const char *a2[] = { "personalize-events", "put-events", "--endpoint-url", e->ep.url,
                         "--tracking-id", "t", "--session-id", "s", "--event-list",
                         "eventType=a,sentAt=1", NULL };
    same(e, CMP_ALL, a2, &r);
    assert_int_equal(r.rc, 254);
    result_free(&r);
    unsetenv("AWS_MAX_ATTEMPTS");
    g_faults = NULL;
    /* no region, no credentials */
    unsetenv("AWS_DEFAULT_REGION");
    const char *a3[] = { "pinpoint", "put-events", "--application-id", "a", "--events-request",
                         "BatchItem={}", NULL };
    same(e, CMP_ALL, a3, &r);
    assert_int_equal(r.rc, 253);
    result_free(&r);
    setenv("AWS_DEFAULT_REGION", "us-east-1", 1);
    unsetenv("AWS_ACCESS_KEY_ID");
    const char *a4[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--application-id", "a", "--events-request", "BatchItem={}", NULL };
    same(e, CMP_ALL, a4, &r);
    assert_int_equal(r.rc, 253);
    result_free(&r);
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
}

/* evrec alone: checks the AWS CLI leaves to the service, and what --debug must not show. */
static void test_evrec_only(void **state)
{
    env_t *e = *state;
    result_t r;
    if (e->no_endpoint)
        skip();
    /* an enum value and a maximum length from the model: refused before sending */
    const char *a1[] = { "personalize-events", "put-events", "--endpoint-url", e->ep.url,
                         "--tracking-id", "t", "--session-id", "s", "--event-list",
                         "eventType=a,sentAt=1", "eventType=b,sentAt=2", "eventType=c,sentAt=3",
                         "eventType=d,sentAt=4", "eventType=e,sentAt=5", "eventType=f,sentAt=6",
                         "eventType=g,sentAt=7", "eventType=h,sentAt=8", "eventType=i,sentAt=9",
                         "eventType=j,sentAt=10", "eventType=k,sentAt=11", NULL };
    run_one(e, e->cli, a1, &r);
    assert_int_equal(r.rc, 252);
    assert_string_equal(r.err, "\nParameter validation failed:\nInvalid length for parameter "
                               "eventList, value: 11, valid max length: 10\n");
    assert_int_equal(cJSON_GetArraySize(r.requests), 0);
    result_free(&r);
    const char *a2[] = { "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--application-id", "a", "--events-request",
                         "BatchItem={a={Endpoint={ChannelType=FAX},Events={}}}", NULL };
    run_one(e, e->cli, a2, &r);
    assert_int_equal(r.rc, 252);
    assert_non_null(strstr(r.err, "Invalid value for parameter "
                                  "EventsRequest.BatchItem.a.Endpoint.ChannelType, value: FAX, "
                                  "valid values: PUSH, GCM"));
    assert_int_equal(cJSON_GetArraySize(r.requests), 0);
    result_free(&r);
    /* --debug shows the exchange but never the secret key or the signature */
    const char *a3[] = { "--debug", "pinpoint", "put-events", "--endpoint-url", e->ep.url,
                         "--application-id", "a", "--events-request", "BatchItem={}", NULL };
    run_one(e, e->cli, a3, &r);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.err, "/v1/apps/a/events"));
    assert_null(strstr(r.err, "wJalrXUtnFEMI"));
    assert_null(strstr(r.err, "Signature="));
    result_free(&r);
    /* --no-sign-request: no Authorization at all (the endpoint refuses it) */
    const char *a4[] = { "pinpoint", "put-events", "--no-sign-request", "--endpoint-url",
                         e->ep.url, "--application-id", "a", "--events-request", "BatchItem={}",
                         NULL };
    run_one(e, e->cli, a4, &r);
    assert_int_equal(cJSON_GetArraySize(r.requests), 1);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(r.requests, 0), "signature_ok")));
    assert_int_equal(r.rc, 254);
    result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinpoint),       cmocka_unit_test(test_personalize),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_service_errors),   cmocka_unit_test(test_evrec_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
