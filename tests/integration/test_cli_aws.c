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
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "testutil.h"

#define AWS "/usr/bin/aws"

/* Runs are one at a time: the AWS CLI's start-up (2-3 s here, mostly reading Python modules)
 * gets slower, not faster, when several start at once, so the case list is kept short. */
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

static char *url_of(const tu_endpoint_t *ep, const char *path)
{
    char *u = NULL;
    if (asprintf(&u, "%s%s", ep->url, path) < 0)
        return NULL;
    return u;
}

static cJSON *control_get(const tu_endpoint_t *ep, const char *path)
{
    char *u = url_of(ep, path);
    long st = 0;
    char *body = tu_http("GET", u, NULL, &st);
    free(u);
    cJSON *v = body ? cJSON_Parse(body) : NULL;
    free(body);
    return v;
}

static void control_post(const tu_endpoint_t *ep, const char *path)
{
    char *u = url_of(ep, path);
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

enum { CMP_ALL = 0, CMP_ERR_FIRST_LINE = 1 };

/* One command line run by both. "@URL@" in args stands for the endpoint's URL. */
typedef struct cli_case {
    const char *args[40];
    const char *env[4];    /* "NAME=value" to set, "NAME" to unset, for this run only */
    const char *faults;    /* a /_fake/config query applied after the reset */
    int flags;
    /* what evrec's run must also show (besides being the same as the AWS CLI's) */
    int rc;
    int events;            /* accepted events, -1: any */
    int requests;          /* requests made, -1: any */
    const char *out_has, *err_has;
} cli_case_t;

static void prepare(const tu_endpoint_t *ep, const cli_case_t *c)
{
    control_post(ep, "/_fake/reset");
    if (c->faults) {
        char path[256];
        snprintf(path, sizeof path, "/_fake/config?%s", c->faults);
        control_post(ep, path);
    }
}

/* Start prog with the case's arguments and environment; output to files under dir. */
static pid_t spawn(const env_t *e, const tu_endpoint_t *ep, const char *prog, const cli_case_t *c,
                   int slot)
{
    char out[600], err[600];
    snprintf(out, sizeof out, "%s/out.%d", e->home, slot);
    snprintf(err, sizeof err, "%s/err.%d", e->home, slot);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    const char *argv[48];
    int n = 0;
    argv[n++] = prog;
    for (int i = 0; c->args[i] && n < 47; i++)
        argv[n++] = strcmp(c->args[i], "@URL@") == 0 ? ep->url : c->args[i];
    argv[n] = NULL;
    for (int i = 0; i < 4 && c->env[i]; i++) {
        const char *eq = strchr(c->env[i], '=');
        if (eq) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(eq - c->env[i]), c->env[i]);
            setenv(name, eq + 1, 1);
        } else {
            unsetenv(c->env[i]);
        }
    }
    if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr) ||
        !freopen("/dev/null", "r", stdin))
        _exit(126);
    execv(prog, (char *const *)argv);
    _exit(127);
}

static char *slurp(const env_t *e, const char *what, int slot)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.%d", e->home, what, slot);
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char tmp[4096];
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            buf = realloc(buf, cap);
        }
        memcpy(buf + len, tmp, n);
        len += n;
    }
    fclose(f);
    if (!buf)
        return strdup("");
    buf[len] = '\0';
    return buf;
}

static void collect(const env_t *e, const tu_endpoint_t *ep, int slot, pid_t pid, result_t *r)
{
    int status = 0;
    waitpid(pid, &status, 0);
    memset(r, 0, sizeof *r);
    r->rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    r->out = slurp(e, "out", slot);
    r->err = slurp(e, "err", slot);
    r->events = control_get(ep, "/_fake/log");
    cJSON *ev;
    cJSON_ArrayForEach(ev, r->events) cJSON_DeleteItemFromObject(ev, "time");
    cJSON *reqs = control_get(ep, "/_fake/requests");
    r->requests = summarise_requests(reqs);
    cJSON_Delete(reqs);
}

/* Run one case with one program on a freshly reset endpoint. */
static void run_one(env_t *e, const char *prog, const cli_case_t *c, result_t *r)
{
    prepare(&e->ep, c);
    collect(e, &e->ep, 0, spawn(e, &e->ep, prog, c, 0), r);
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

static void compare(const cli_case_t *c, const result_t *ar, const result_t *er)
{
    if (ar->rc != er->rc)
        print_diff("exit code", ar->err, er->err);
    assert_int_equal(er->rc, ar->rc);
    if (strcmp(ar->out, er->out) != 0)
        print_diff("stdout", ar->out, er->out);
    assert_string_equal(er->out, ar->out);
    char *eerr = as_aws(er->err);
    if (c->flags & CMP_ERR_FIRST_LINE) {
        /* the message's first words ("\nBad value for --query X: ...") */
        char *a1 = strndup(ar->err, strcspn(ar->err + 1, ":") + 1);
        char *e1 = strndup(eerr, strcspn(eerr + 1, ":") + 1);
        assert_string_equal(e1, a1);
        free(a1);
        free(e1);
    } else {
        if (strcmp(ar->err, eerr) != 0)
            print_diff("stderr", ar->err, eerr);
        assert_string_equal(eerr, ar->err);
    }
    free(eerr);
    char *ae = cJSON_PrintUnformatted(ar->events), *ee = cJSON_PrintUnformatted(er->events);
    char *aq = cJSON_PrintUnformatted(ar->requests), *eq = cJSON_PrintUnformatted(er->requests);
    if (strcmp(ae, ee) != 0)
        print_diff("events", ae, ee);
    assert_true(cJSON_Compare(ar->events, er->events, 1));
    if (strcmp(aq, eq) != 0)
        print_diff("requests", aq, eq);
    assert_true(cJSON_Compare(ar->requests, er->requests, 1));
    free(ae);
    free(ee);
    free(aq);
    free(eq);
}

/* What the case says evrec's run shows, on its own. */
static void expect(const cli_case_t *c, const result_t *er)
{
    assert_int_equal(er->rc, c->rc);
    if (c->events >= 0)
        assert_int_equal(cJSON_GetArraySize(er->events), c->events);
    if (c->requests >= 0)
        assert_int_equal(cJSON_GetArraySize(er->requests), c->requests);
    if (c->out_has && !strstr(er->out, c->out_has))
        print_diff("stdout lacks", c->out_has, er->out);
    if (c->out_has)
        assert_non_null(strstr(er->out, c->out_has));
    if (c->err_has && !strstr(er->err, c->err_has))
        print_diff("stderr lacks", c->err_has, er->err);
    if (c->err_has)
        assert_non_null(strstr(er->err, c->err_has));
    /* every request evrec made was signed as botocore signs */
    cJSON *q;
    cJSON_ArrayForEach(q, er->requests) {
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(q, "signature_ok")));
    }
}

/* Each case with the AWS CLI, then with evrec: the same, and as the case expects. */
static void same_all(env_t *e, const cli_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        result_t ar, er;
        run_one(e, AWS, &cases[i], &ar);
        run_one(e, e->cli, &cases[i], &er);
        compare(&cases[i], &ar, &er);
        expect(&cases[i], &er);
        result_free(&er);
        result_free(&ar);
    }
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
    write_file(e->home, "records.json",
               "[{\"Data\": \"eyJldmVudF90eXBlIjogImNsaWNrIn0K\", \"PartitionKey\": \"dev-ü\"},"
               " {\"Data\": \" aGVs bG8= \", \"PartitionKey\": \"k2\", \"ExplicitHashKey\": \"7\"}]\n");
    write_file(e->home, "partial-credentials", "[p1]\naws_access_key_id = AKIDPARTIAL\n");
    write_file(e->home, "stream.yaml",
               "StreamName: s-yaml\nRecords:\n- Data: aGk=\n  PartitionKey: k\n"
               "- Data: eyJhIjogMX0=\n  PartitionKey: k\n");
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

#define EV1                                                                                    \
    "{\"BatchItem\":{\"ep1\":{\"Endpoint\":{\"Address\":\"x\",\"User\":{\"UserId\":\"u\"}},"   \
    "\"Events\":{\"e1\":{\"EventType\":\"click\",\"Timestamp\":\"2024-01-01T00:00:00Z\","      \
    "\"Attributes\":{\"k\":\"v\"}},\"e2\":{\"EventType\":\"rejected.type\",\"Timestamp\":"     \
    "\"2024-01-01T00:00:00Z\"}}},\"ep0\":{\"Endpoint\":{},\"Events\":{}}}}"

/* Each output format, each with another way of giving the input. */
static void test_pinpoint(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    static const cli_case_t cases[] = {
        /* inline JSON; e2 is rejected per event (a 400 inside the 202 answer) */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--application-id",
                    "app-1", "--events-request", EV1 },
          .rc = 0, .events = 1, .requests = 1, .out_has = "\"StatusCode\": 400" },
        /* shorthand: nested hashes, lists, quoting, escaped commas, numbers from the model */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--application-id",
                    "app-2", "--events-request",
                    "BatchItem={d1={Endpoint={Address='a,b',Attributes={k=[v1,v2],k2=v\\,3},"
                    "Metrics={m=1.5,n=2},Location={Latitude=47.1,Longitude=-8}},"
                    "Events={e={EventType=click,Timestamp=2024-01-01T00:00:00Z,"
                    "Metrics={x=3},Attributes={a=\"q \\\"x\\\"\"}}}}}",
                    "--output", "text" },
          .rc = 0, .events = 1, .requests = 1, .out_has = "ENDPOINTITEMRESPONSE\tAccepted\t202" },
        /* file:// with non-ASCII keys, floats and fractions; global options first */
        { .args = { "--output", "table", "--region", "us-east-1", "pinpoint", "put-events",
                    "--endpoint-url", "@URL@", "--application-id", "app/with space",
                    "--events-request", "file://events.json" },
          .rc = 0, .events = 2, .requests = 1, .out_has = "|              PutEvents" },
        /* --query */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--application-id",
                    "app-3", "--events-request", "file://events.json", "--query",
                    "EventsResponse.Results.*.EventsItemResponse", "--output", "yaml" },
          .rc = 0, .events = 2, .requests = 1, .out_has = "- ev:\n    Message: Accepted\n" },
        /* --cli-input-yaml */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--cli-input-yaml",
                    "file://input.yaml", "--output", "yaml-stream" },
          .rc = 0, .events = 1, .requests = 1, .out_has = "- EventsResponse:\n" },
    };
    same_all(e, cases, sizeof cases / sizeof cases[0]);
}

static void test_personalize(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    static const cli_case_t cases[] = {
        /* a list of shorthand structures, one per value; no output */
        { .args = { "personalize-events", "put-events", "--endpoint-url", "@URL@",
                    "--tracking-id", "t-1", "--session-id", "s-1", "--event-list",
                    "eventType=click,sentAt=1700000000,itemId=i1,impression=a,b",
                    "eventType=view,sentAt=2024-01-01T00:00:00Z,eventValue=3" },
          .rc = 0, .events = 2, .requests = 1 },
        /* JSON list from a file, user id, text output */
        { .args = { "personalize-events", "put-events", "--endpoint-url", "@URL@",
                    "--tracking-id", "t-2", "--user-id", "u-2", "--session-id", "s-2",
                    "--event-list", "file://list.json", "--output", "text" },
          .rc = 0, .events = 2, .requests = 1 },
        /* the YAML skeleton with the model's comments; nothing is sent */
        { .args = { "personalize-events", "put-events", "--generate-cli-skeleton",
                    "yaml-input" },
          .rc = 0, .events = 0, .requests = 0,
          .out_has = "trackingId: ''  # [REQUIRED] The tracking ID for the event.\n" },
    };
    same_all(e, cases, sizeof cases / sizeof cases[0]);
}

static void test_bad_input(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    static const cli_case_t cases[] = {
        /* botocore's validation report: nothing is sent */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--application-id",
                    "a", "--events-request",
                    "{\"BatchItem\":{\"a\":{\"Endpoint\":{\"Metrics\":{\"x\":\"y\"},"
                    "\"Location\":{\"Latitude\":true}},\"Events\":{\"e\":{\"EventType\":1,"
                    "\"Bogus\":[1]}}}},\"X\":{\"a\":1.5}}" },
          .rc = 252, .events = 0, .requests = 0, .err_has = "Parameter validation failed:\n" },
        /* shorthand syntax error */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--application-id",
                    "a", "--events-request", "BatchItem={a=b,c" },
          .rc = 252, .events = 0, .requests = 0, .err_has = "Expected: '=', received: 'EOF'" },
        /* invalid JSON, with Python's message */
        { .args = { "personalize-events", "put-events", "--endpoint-url", "@URL@",
                    "--tracking-id", "t", "--session-id", "s", "--event-list",
                    "[{\"eventType\": \"x\",, }]" },
          .rc = 252, .events = 0, .requests = 0, .err_has = "Invalid JSON: Expecting" },
        /* unknown options */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--bogus", "1",
                    "--application-id", "a", "--events-request", "BatchItem={}" },
          .rc = 252, .events = 0, .requests = 0, .err_has = "Unknown options: --bogus, 1" },
        /* missing arguments */
        { .args = { "personalize-events", "put-events", "--endpoint-url", "@URL@",
                    "--session-id", "s", "--output", "text" },
          .rc = 252, .events = 0, .requests = 0,
          .err_has = "the following arguments are required: --tracking-id, --event-list" },
    };
    same_all(e, cases, sizeof cases / sizeof cases[0]);
}

/* Kinesis PutRecords: records that fail one by one are printed, not retried (exit 0). */
static void test_kinesis(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    static const cli_case_t cases[] = {
        /* shorthand, one structure per value; half the records fail on their own */
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream-name", "s1",
                    "--records", "Data=eyJhIjoxfQ==,PartitionKey=p1",
                    "Data=eyJhIjoyfQ==,PartitionKey=p2", "Data=eyJhIjozfQ==,PartitionKey=p3" },
          .faults = "seed=7&record_fail_rate=0.5", .rc = 0, .events = -1, .requests = 1,
          .out_has = "\"FailedRecordCount\": " },
        /* file:// (non-ASCII partition key, base64 with blanks), by ARN, text */
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream-arn",
                    "arn:aws:kinesis:us-east-1:123456789012:stream/s2", "--records",
                    "file://records.json", "--output", "text" },
          .faults = "seed=1", .rc = 0, .events = 2, .requests = 1, .out_has = "NONE\t0\n" },
        /* --cli-input-yaml, table */
        { .args = { "--output", "table", "kinesis", "put-records", "--endpoint-url", "@URL@",
                    "--cli-input-yaml", "file://stream.yaml" },
          .faults = "seed=2", .rc = 0, .events = 2, .requests = 1, .out_has = "PutRecords" },
        /* --query over the failed records, yaml */
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream-name", "s1",
                    "--records", "Data=aGk=,PartitionKey=a", "Data=aGk=,PartitionKey=b",
                    "--query", "Records[?ErrorCode].[ErrorCode, ErrorMessage]", "--output",
                    "yaml" },
          .faults = "seed=3&record_fail_rate=1", .rc = 0, .events = 0, .requests = 1,
          .out_has = "- - ProvisionedThroughputExceededException\n" },
        /* --query numbers as Python holds them, merge() order, a raw string's backslashes */
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream-name", "s1",
                    "--records", "Data=aGk=,PartitionKey=a", "--query",
                    "{avg: avg(`[312, 312]`), lit: `1e3`, big: `12345678901234567890`, "
                    "neg: `-0`, m: merge(`{\"a\": 1, \"b\": 2}`, `{\"a\": 3}`), "
                    "n: to_number('1.0'), raw: '\\\\', count: FailedRecordCount}" },
          .faults = "seed=8", .rc = 0, .events = 1, .requests = 1,
          .out_has = "\"avg\": 312.0,\n    \"lit\": 1000.0,\n    \"big\": 12345678901234567890,\n"
                     "    \"neg\": 0,\n    \"m\": {\n        \"a\": 3,\n        \"b\": 2\n    },\n"
                     "    \"n\": 1.0,\n    \"raw\": \"\\\\\\\\\",\n" },
        /* not base64 (the default --cli-binary-format): nothing is sent */
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream-name", "s1",
                    "--records", "Data=aGVsbG8,PartitionKey=a" },
          .rc = 255, .events = 0, .requests = 0, .err_has = "Invalid base64: \"aGVsbG8\"" },
        /* the output skeleton is a stubbed answer botocore validates: its own 0 is refused */
        { .args = { "kinesis", "put-records", "--stream-name", "s", "--records",
                    "Data=aGk=,PartitionKey=k", "--generate-cli-skeleton", "output" },
          .rc = 252, .events = 0, .requests = 0,
          .err_has = "FailedRecordCount, value: 0, valid min value: 1" },
        /* the whole request throttled: retried, then the error */
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream-name", "s1",
                    "--records", "Data=aGk=,PartitionKey=a" },
          .env = { "AWS_MAX_ATTEMPTS=2" }, .faults = "throttle_rate=1", .rc = 254, .events = 0,
          .requests = 2,
          .err_has = "(ProvisionedThroughputExceededException) when calling the PutRecords "
                     "operation (reached max retries: 1)" },
        /* without --endpoint-url a stream ARN picks the data-plane endpoint, by Kinesis's
         * endpoint rules, which refuse an ARN of another service before anything is sent */
        { .args = { "kinesis", "put-records", "--stream-arn",
                    "arn:aws:s3:us-east-1:123456789012:stream/s", "--records",
                    "Data=aGk=,PartitionKey=a" },
          .rc = 255, .events = 0, .requests = 0,
          .err_has = "Invalid ARN: The ARN was not for the Kinesis service, found: s3." },
        /* a missing stream is not retried */
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream-name", "gone",
                    "--records", "Data=aGk=,PartitionKey=a" },
          .faults = "missing_stream=gone", .rc = 254, .events = 0, .requests = 1,
          .err_has = "An error occurred (ResourceNotFoundException) when calling the PutRecords" },
    };
    same_all(e, cases, sizeof cases / sizeof cases[0]);
}

/* Firehose PutRecordBatch. */
static void test_firehose(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    static const cli_case_t cases[] = {
        /* plain values: each is a record's Data (the AWS CLI's list-of-one-member case) */
        { .args = { "firehose", "put-record-batch", "--endpoint-url", "@URL@",
                    "--delivery-stream-name", "d1", "--records", "eyJhIjogMX0K", "eA==",
                    "--output", "yaml-stream" },
          .faults = "seed=4&record_fail_rate=0.5", .rc = 0, .events = -1, .requests = 1,
          .out_has = "FailedPutCount: " },
        /* raw text in, JSON records, text out */
        { .args = { "firehose", "put-record-batch", "--endpoint-url", "@URL@",
                    "--cli-binary-format", "raw-in-base64-out", "--delivery-stream-name", "d1",
                    "--records", "[{\"Data\": \"{\\\"a\\\": \\\"ü\\\"}\\n\"}]",
                    "--output", "text" },
          .faults = "seed=5", .rc = 0, .events = 1, .requests = 1, .out_has = "False\t0\n" },
        /* --cli-input-json */
        { .args = { "firehose", "put-record-batch", "--endpoint-url", "@URL@",
                    "--cli-input-json",
                    "{\"DeliveryStreamName\": \"d2\", \"Records\": [{\"Data\": \"aGk=\"}]}",
                    "--query", "FailedPutCount" },
          .faults = "seed=6", .rc = 0, .events = 1, .requests = 1, .out_has = "0\n" },
        /* the YAML skeleton (blob placeholder and comments); nothing is sent */
        { .args = { "firehose", "put-record-batch", "--generate-cli-skeleton", "yaml-input" },
          .rc = 0, .events = 0, .requests = 0, .out_has = "- Data: !!binary ''  # [REQUIRED]" },
        /* throttled (503) on every attempt */
        { .args = { "firehose", "put-record-batch", "--endpoint-url", "@URL@",
                    "--delivery-stream-name", "d1", "--records", "aGk=" },
          .env = { "AWS_MAX_ATTEMPTS=2" }, .faults = "throttle_rate=1", .rc = 254, .events = 0,
          .requests = 2, .err_has = "(ServiceUnavailableException) when calling the "
                                    "PutRecordBatch operation (reached max retries: 1): " },
    };
    same_all(e, cases, sizeof cases / sizeof cases[0]);
}

/* Command lines the AWS CLI reads its own way (argparse, its global option handlers). */
static void test_parity(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    static const cli_case_t cases[] = {
        /* unique prefixes of long options, global and the operation's, with = too */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--application",
                    "app1", "--events-req", "BatchItem={}", "--out", "text", "--qu=EventsResponse",
                    "--reg", "us-east-1" },
          .rc = 0, .events = 0, .requests = 1 },
        /* an ambiguous prefix */
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream", "s",
                    "--records", "Data=aGk=,PartitionKey=a" },
          .rc = 252, .events = 0, .requests = 0,
          .err_has = "evrec: error: ambiguous option: --stream could match --stream-name, "
                     "--stream-arn\n" },
        { .args = { "kinesis", "put-records", "--c", "x", "--stream-name", "s", "--records",
                    "Data=aGk=,PartitionKey=a" },
          .rc = 252, .events = 0, .requests = 0, .err_has = "could match --color, --ca-bundle" },
        /* timeouts are read with int() before anything else */
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--cli-connect-timeout",
                    "1.5", "--records", "Data=aGk=,PartitionKey=a" },
          .rc = 255, .events = 0, .requests = 0,
          .err_has = "\ninvalid literal for int() with base 10: '1.5'\n" },
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream-name", "s",
                    "--cli-read-timeout", "-1", "--records", "Data=aGk=,PartitionKey=a" },
          .rc = 255, .events = 0, .requests = 0, .err_has = "Attempted to set read timeout to -1" },
        /* an access key id without its secret */
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream-name", "s",
                    "--records", "Data=aGk=,PartitionKey=a" },
          .env = { "AWS_SECRET_ACCESS_KEY" }, .rc = 255, .events = 0, .requests = 0,
          .err_has = "\nPartial credentials found in env, missing: AWS_SECRET_ACCESS_KEY\n" },
        /* and a profile's */
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream-name", "s",
                    "--records", "Data=aGk=,PartitionKey=a", "--profile", "p1" },
          .env = { "AWS_SHARED_CREDENTIALS_FILE=partial-credentials" }, .rc = 255, .events = 0,
          .requests = 0,
          .err_has = "\nPartial credentials found in shared-credentials-file, missing: "
                     "aws_secret_access_key\n" },
        { .args = { "firehose", "put-record-batch", "--endpoint-url", "@URL@",
                    "--cli-input-json", "{}", "--cli-input-yaml", "a: 1" },
          .rc = 252, .events = 0, .requests = 0,
          .err_has = "\nOnly one --cli-input- parameter may be specified.\n" },
        /* an answer of null: PutEvents' payload is null; on the json protocol the AWS CLI
         * fails on it */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--application-id",
                    "a", "--events-request", "BatchItem={}" },
          .faults = "script=null_body", .rc = 0, .events = 0, .requests = 1,
          .out_has = "{\n    \"EventsResponse\": null\n}\n" },
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--stream-name", "s",
                    "--records", "Data=aGk=,PartitionKey=a" },
          .faults = "script=null_body&seed=3", .rc = 255, .events = 1, .requests = 1,
          .err_has = "\n'NoneType' object has no attribute 'setdefault'\n" },
        /* the AWS CLI makes its client (region, its format, the timeouts) before it validates
         * the parameters: a request that would also fail validation fails on those first */
        { .args = { "pinpoint", "put-events", "--application-id", "a", "--events-request",
                    "{}" },
          .env = { "AWS_DEFAULT_REGION" }, .rc = 253, .events = 0, .requests = 0,
          .err_has = "\nYou must specify a region. You can also configure your region by running "
                     "\"aws configure\".\n" },
        { .args = { "pinpoint", "put-events", "--region", "bad_region!", "--application-id", "a",
                    "--events-request", "{}" },
          .rc = 255, .events = 0, .requests = 0,
          .err_has = "\nProvided region_name 'bad_region!' doesn't match a supported format.\n" },
        { .args = { "kinesis", "put-records", "--endpoint-url", "@URL@", "--cli-connect-timeout",
                    "-1", "--stream-name", "s", "--records", "Data=aGk=" },
          .rc = 255, .events = 0, .requests = 0,
          .err_has = "\nAttempted to set connect timeout to -1, but the timeout cannot be set to a "
                     "value less than or equal to 0.\n" },
        /* no command at all */
        { .args = { NULL }, .rc = 252, .events = 0, .requests = 0,
          .err_has = "evrec: error: the following arguments are required: command\n" },
        /* a command neither has (the lists of valid ones differ) */
        { .args = { "no-such-service", "x" }, .flags = CMP_ERR_FIRST_LINE, .rc = 252,
          .events = 0, .requests = 0,
          .err_has = "evrec: error: argument command: Invalid choice, valid choices are:\n" },
    };
    same_all(e, cases, sizeof cases / sizeof cases[0]);
}

static void test_service_errors(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    static const cli_case_t cases[] = {
        /* throttled on every attempt: retried, then the AWS CLI's message */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--application-id",
                    "a", "--events-request", EV1 },
          .env = { "AWS_MAX_ATTEMPTS=2" }, .faults = "throttle_rate=1",
          .rc = 254, .events = 0, .requests = 2,
          .err_has = "An error occurred (TooManyRequestsException) when calling the PutEvents "
                     "operation (reached max retries: 1): " },
        /* no credentials */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--application-id",
                    "a", "--events-request", "BatchItem={}" },
          .env = { "AWS_ACCESS_KEY_ID" }, .rc = 253, .events = 0, .requests = 0,
          .err_has = "Unable to locate credentials." },
    };
    same_all(e, cases, sizeof cases / sizeof cases[0]);
}

/* Run prog on a terminal (a pty) with the pager set to pager (NULL: unset) and PAGER to
 * env_pager; *tty gets what the terminal showed, *paged what the pager was given (NULL if the
 * pager never ran). */
static int run_on_tty(env_t *e, const char *prog, const char *pager, const char *env_pager,
                      const char *extra, char **tty, char **paged)
{
    char file[600];
    snprintf(file, sizeof file, "%s/paged.7", e->home);
    unlink(file);
    prepare(&e->ep, &(cli_case_t){ .faults = "seed=9" });
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    if (pid == 0) {
        if (pager)
            setenv("AWS_PAGER", pager, 1);
        else
            unsetenv("AWS_PAGER");
        if (env_pager)
            setenv("PAGER", env_pager, 1);
        unsetenv("LESS");
        execl(prog, prog, "kinesis", "put-records", "--endpoint-url", e->ep.url, "--stream-name",
              "s", "--records", "Data=aGk=,PartitionKey=a", "--output", "text", extra,
              (char *)NULL);
        _exit(127);
    }
    size_t len = 0;
    char *buf = calloc(1, 65536);
    for (;;) {
        ssize_t n = read(master, buf + len, 65535 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(master);
    int status = 0;
    waitpid(pid, &status, 0);
    *tty = buf;
    *paged = slurp(e, "paged", 7);
    if (access(file, F_OK) != 0) {
        free(*paged);
        *paged = NULL;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* AWS_PAGER, PAGER and --no-cli-pager on a terminal, the same as the AWS CLI; LESS=FRX is set
 * for the pager. */
static void test_pager(void **state)
{
    env_t *e = *state;
    SKIP_WITHOUT_AWS(e);
    static const struct {
        const char *pager, *env_pager, *extra;
        int rc, pages;
    } cases[] = {
        { "sh -c 'echo \"LESS=$LESS\" > paged.7; cat >> paged.7'", NULL, NULL, 0, 1 },
        { NULL, "sh -c 'cat > paged.7'", NULL, 0, 1 },
        { "sh -c 'cat > paged.7'", NULL, "--no-cli-pager", 0, 0 },
        { "", "sh -c 'cat > paged.7'", NULL, 0, 0 },
        { "no-such-pager --x", NULL, NULL, 253, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *at, *ap, *et, *ep;
        int arc = run_on_tty(e, AWS, cases[i].pager, cases[i].env_pager, cases[i].extra, &at, &ap);
        int erc = run_on_tty(e, e->cli, cases[i].pager, cases[i].env_pager, cases[i].extra, &et,
                             &ep);
        if (arc != erc || strcmp(at, et) != 0 || (ap == NULL) != (ep == NULL) ||
            (ap && strcmp(ap, ep) != 0))
            fprintf(stderr, "pager case %zu: aws %d [%s] paged [%s]\nevrec %d [%s] paged [%s]\n",
                    i, arc, at, ap ? ap : "-", erc, et, ep ? ep : "-");
        assert_int_equal(erc, arc);
        assert_int_equal(erc, cases[i].rc);
        assert_string_equal(et, at);
        assert_int_equal(ep != NULL, cases[i].pages);
        assert_int_equal(ap != NULL, cases[i].pages);
        if (ep)
            assert_string_equal(ep, ap);
        if (i == 0)
            assert_non_null(strstr(ep, "LESS=FRX\nNONE\t0\n"));
        free(at);
        free(ap);
        free(et);
        free(ep);
    }
}

/* evrec alone: checks the AWS CLI leaves to the service, and what --debug must not show. */
static void test_evrec_only(void **state)
{
    env_t *e = *state;
    if (e->no_endpoint)
        skip();
    static const cli_case_t cases[] = {
        /* a maximum length from the model: refused before sending */
        { .args = { "personalize-events", "put-events", "--endpoint-url", "@URL@",
                    "--tracking-id", "t", "--session-id", "s", "--event-list",
                    "eventType=a,sentAt=1", "eventType=b,sentAt=2", "eventType=c,sentAt=3",
                    "eventType=d,sentAt=4", "eventType=e,sentAt=5", "eventType=f,sentAt=6",
                    "eventType=g,sentAt=7", "eventType=h,sentAt=8", "eventType=i,sentAt=9",
                    "eventType=j,sentAt=10", "eventType=k,sentAt=11" },
          .rc = 252, .events = 0, .requests = 0,
          .err_has = "\nParameter validation failed:\nInvalid length for parameter eventList, "
                     "value: 11, valid max length: 10\n" },
        /* an enum value from the model */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--application-id",
                    "a", "--events-request",
                    "BatchItem={a={Endpoint={ChannelType=FAX},Events={}}}" },
          .rc = 252, .events = 0, .requests = 0,
          .err_has = "Invalid value for parameter EventsRequest.BatchItem.a.Endpoint.ChannelType,"
                     " value: FAX, valid values: PUSH, GCM" },
        /* what the AWS CLI runs above do not cover, with its messages written out */
        /* --cli-input-json: the command line wins */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--cli-input-json",
                    "{\"ApplicationId\": \"from-json\", \"EventsRequest\": {\"BatchItem\": {}}}",
                    "--application-id", "from-cli", "--query", "EventsResponse" },
          .rc = 0, .events = 0, .requests = 1, .out_has = "\"Results\": {}" },
        /* skeletons need no service */
        { .args = { "personalize-events", "put-events", "--generate-cli-skeleton", "input" },
          .rc = 0, .events = 0, .requests = 0, .out_has = "\"trackingId\": \"\"" },
        /* a --query that does not compile: nothing sent (evrec's JMESPath words its reasons) */
        { .args = { "pinpoint", "put-events", "--endpoint-url", "@URL@", "--application-id",
                    "a", "--events-request", "BatchItem={}", "--query", "EventsResponse[" },
          .rc = 252, .events = 0, .requests = 0,
          .err_has = "\nBad value for --query EventsResponse[: " },
        /* a bad --output choice */
        { .args = { "pinpoint", "put-events", "--output", "xml", "--application-id", "a",
                    "--events-request", "BatchItem={}" },
          .rc = 252, .events = 0, .requests = 0, .err_has = "Invalid choice" },
        /* 503, one attempt allowed */
        { .args = { "personalize-events", "put-events", "--endpoint-url", "@URL@",
                    "--tracking-id", "t", "--session-id", "s", "--event-list",
                    "eventType=a,sentAt=1" },
          .env = { "AWS_MAX_ATTEMPTS=1" }, .faults = "fail_rate=1&fail_codes=503",
          .rc = 254, .events = 0, .requests = 1,
          .err_has = "\nAn error occurred (ServiceUnavailableException) when calling the PutEvents "
                     "operation (reached max retries: 0): Service is unavailable\n" },
        /* no region */
        { .args = { "pinpoint", "put-events", "--application-id", "a", "--events-request",
                    "BatchItem={}" },
          .env = { "AWS_DEFAULT_REGION" }, .rc = 253, .events = 0, .requests = 0,
          .err_has = "\nYou must specify a region. You can also configure your region by running "
                     "\"aws configure\".\n" },
        /* `<service> help` is help, exit 0 */
        { .args = { "pinpoint", "help" }, .rc = 0, .events = 0, .requests = 0,
          .out_has = "put-events" },
        { .args = { "firehose", "help" }, .rc = 0, .events = 0, .requests = 0,
          .out_has = "put-record-batch" },
        /* --debug shows the exchange */
        { .args = { "--debug", "pinpoint", "put-events", "--endpoint-url", "@URL@",
                    "--application-id", "a", "--events-request", "BatchItem={}" },
          .rc = 0, .events = 0, .requests = 1, .err_has = "/v1/apps/a/events" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result_t r;
        run_one(e, e->cli, &cases[i], &r);
        expect(&cases[i], &r);
        /* never the secret key or the signature */
        assert_null(strstr(r.err, "wJalrXUtnFEMI"));
        assert_null(strstr(r.err, "Signature="));
        result_free(&r);
    }
    /* --no-sign-request: no Authorization at all (the endpoint refuses the request) */
    const cli_case_t unsigned_case = {
        .args = { "pinpoint", "put-events", "--no-sign-request", "--endpoint-url", "@URL@",
                  "--application-id", "a", "--events-request", "BatchItem={}" } };
    result_t r;
    run_one(e, e->cli, &unsigned_case, &r);
    assert_int_equal(r.rc, 254);
    assert_int_equal(cJSON_GetArraySize(r.requests), 1);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(r.requests, 0), "signature_ok")));
    result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinpoint),       cmocka_unit_test(test_personalize),
        cmocka_unit_test(test_bad_input),      cmocka_unit_test(test_kinesis),
        cmocka_unit_test(test_firehose),       cmocka_unit_test(test_parity),
        cmocka_unit_test(test_pager),
        cmocka_unit_test(test_service_errors),   cmocka_unit_test(test_evrec_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
