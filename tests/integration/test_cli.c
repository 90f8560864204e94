/* The store-side command line: record, stats, endpoint, flush and the agent daemon, run as
 * real processes ($EVREC_CLI) against a temp store and the local endpoint. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_opts.h"
#include "testutil.h"

#define FAKE_KEY "AKIDEXAMPLE"
#define FAKE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

typedef tu_store_fixture_t fixture_t;

static int setup(void **state)
{
    return tu_store_setup(state, "cli");
}

static int teardown(void **state)
{
    return tu_store_teardown(state);
}

/* Run the CLI with up to 30 arguments (NULL-terminated). */
static int cli(fixture_t *f, const char *stdin_data, char **out, char **err, ...)
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
    return tu_run(argv, stdin_data, out, err);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static long stats_number(fixture_t *f, const char *name)
{
    char *out = NULL, *err = NULL;
    int rc = cli(f, NULL, &out, &err, "stats", "--store", f->store, NULL);
    assert_int_equal(rc, 0);
    cJSON *o = cJSON_Parse(out);
    assert_non_null(o);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    assert_true(cJSON_IsNumber(v));
    long n = (long)v->valuedouble;
    cJSON_Delete(o);
    free(out);
    free(err);
    return n;
}

static int is_uuid_line(const char *s)
{
    if (strlen(s) < 37 || s[36] != '\n')
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (s[i] == '-'))
            return 0;
    }
    return 1;
}

static void record_and_stats(void **state)
{
    fixture_t *f = *state;
    char *out = NULL, *err = NULL;
    char when[32], printed[32];
    tu_recent_day(1, when, printed);
    int rc = cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "app.open",
                 "--attr", "screen=home", "--metric", "load_ms=12.5", "--timestamp", when,
                 NULL);
    if (rc != 0)
        fail_msg("record: %d: %s", rc, err);
    assert_true(is_uuid_line(out));
    free(out);
    free(err);
    /* the aliases of the spelling, and a given event id */
    rc = cli(f, NULL, &out, &err, "record", "--store", f->store, "--event-type", "app.close",
             "--attribute", "why=user", "--event-id", "my-event-1", NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "my-event-1\n");
    free(out);
    free(err);
    rc = cli(f, NULL, &out, &err, "stats", "--store", f->store, NULL);
    assert_int_equal(rc, 0);
    cJSON *o = cJSON_Parse(out);
    assert_non_null(o);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "events")->valuedouble, 2);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "recorded")->valuedouble, 2);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "oldest")->valuestring, printed);
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "dropped")));
    cJSON_Delete(o);
    free(out);
    free(err);
    /* the queue as the store holds it */
    rc = cli(f, NULL, &out, &err, "queue", "dump", "--store", f->store, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(count_lines(out), 2);
    char *second = strchr(out, '\n') + 1;
    cJSON *d = cJSON_Parse(second);
    assert_non_null(d);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(d, "EventId")->valuestring, "my-event-1");
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(d, "Event");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(dev, "EventType")->valuestring, "app.close");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(dev, "Attributes"), "why")->valuestring,
                        "user");
    assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(d, "EndpointId")->valuestring), 36);
    cJSON_Delete(d);
    free(out);
    free(err);
    rc = cli(f, NULL, &out, &err, "queue", "stats", "--store", f->store, NULL);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"events\":2"));
    free(out);
    free(err);
    /* stats of a store that does not exist is an error, and does not create one */
    char missing[700];
    snprintf(missing, sizeof missing, "%s/nothing-here", f->dir);
    rc = cli(f, NULL, &out, &err, "stats", "--store", missing, NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "no store"));
    struct stat st;
    assert_int_not_equal(stat(missing, &st), 0);
    free(out);
    free(err);
}

/* A bad command line or event exits 2 and stores nothing. */
static void expect_bad(fixture_t *f, const char *needle, ...)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = f->cli;
    va_list ap;
    va_start(ap, needle);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int rc = tu_run(argv, NULL, &out, &err);
    if (rc != 2 || !strstr(err, needle))
        fail_msg("%s %s: exit %d, stderr '%s' (wanted 2 and '%s')", argv[1], argv[n - 1], rc,
                 err, needle);
    assert_string_equal(out, "");
    free(out);
    free(err);
}

static void bad_input_exits_2_and_stores_nothing(void **state)
{
    fixture_t *f = *state;
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "ok", NULL), 0);
    free(out);
    free(err);
    char long_type[80], long_value[300], value_arg[320];
    memset(long_type, 't', 60);
    long_type[60] = '\0';
    memset(long_value, 'v', 250);
    long_value[250] = '\0';
    snprintf(value_arg, sizeof value_arg, "note=%s", long_value);
    expect_bad(f, "--metric", "record", "--store", f->store, "--type", "x", "--metric", "n=abc", NULL);
    expect_bad(f, "NAME=VALUE", "record", "--store", f->store, "--type", "x", "--attr", "novalue", NULL);
    expect_bad(f, "50", "record", "--store", f->store, "--type", long_type, NULL);
    expect_bad(f, "note", "record", "--store", f->store, "--type", "x", "--attr", value_arg, NULL);
    expect_bad(f, "--timestamp", "record", "--store", f->store, "--type", "x", "--timestamp",
               "yesterday", NULL);
    expect_bad(f, "--json", "record", "--store", f->store, "--json", "{\"EventType\":", NULL);
    expect_bad(f, "unknown option", "record", "--store", f->store, "--type", "x", "--bogus", NULL);
    expect_bad(f, "--store", "record", "--type", "x", NULL);
    expect_bad(f, "one of", "record", "--store", f->store, NULL);
    expect_bad(f, "durability", "record", "--store", f->store, "--type", "x", "--durability",
               "sometimes", NULL);
    /* a field without a name is refused, not dropped */
    expect_bad(f, "--attr '=v'", "record", "--store", f->store, "--type", "x", "--attr", "=v",
               NULL);
    expect_bad(f, "--metric '=1'", "record", "--store", f->store, "--type", "x", "--metric",
               "=1", NULL);
    /* JSON that cJSON takes but that would be stored changed */
    expect_bad(f, "followed by more text", "record", "--store", f->store, "--json",
               "{\"EventType\":\"a\"} {\"x\":1}", NULL);
    expect_bad(f, "NUL", "record", "--store", f->store, "--json",
               "{\"EventType\":\"a\",\"Attributes\":{\"k\":\"a\\u0000b\"}}", NULL);
    expect_bad(f, "more than once", "record", "--store", f->store, "--json",
               "{\"EventType\":\"a\",\"Attributes\":{\"k\":\"1\",\"k\":\"2\"}}", NULL);
    /* flags a command does not use are refused, not ignored */
    expect_bad(f, "--durability is not an option of `evrec stats`", "stats", "--store", f->store,
               "--durability", "power", NULL);
    expect_bad(f, "--drain-timeout is not an option of `evrec record`", "record", "--store",
               f->store, "--type", "x", "--drain-timeout", "3", NULL);
    expect_bad(f, "--application-id is not an option", "record", "--store", f->store, "--type",
               "x", "--application-id", "a", NULL);
    expect_bad(f, "--flush-interval-ms is not an option", "flush", "--store", f->store,
               "--flush-interval-ms", "5", NULL);
    expect_bad(f, "--region is not an option", "endpoint", "--store", f->store, "--region",
               "us-east-1", NULL);
    expect_bad(f, "--truncate-oversize is not an option", "queue", "dump", "--store", f->store,
               "--truncate-oversize", NULL);
    expect_bad(f, "--syslog is not an option", "status", "--store", f->store, "--syslog", NULL);
    assert_int_equal(stats_number(f, "events"), 1);
    /* with --truncate-oversize the long value is cut and counted instead */
    assert_int_equal(cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "x",
                         "--attr", value_arg, "--truncate-oversize", NULL), 0);
    free(out);
    free(err);
    assert_int_equal(stats_number(f, "events"), 2);
    assert_int_equal(stats_number(f, "truncated"), 1);
}

/* max_store_bytes (and durability) are the store's: an agent or recorder that bounded the
 * store to 16 KiB bounds every later `evrec record` too, whatever its defaults (issue 14: an
 * agent bounded to 1 MB did not bound `evrec record`). A different explicit value is refused
 * (exit 2) unless --set-store-settings makes the change explicit. */
static void store_bound_is_the_stores(void **state)
{
    fixture_t *f = *state;
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "first",
                         "--max-store-bytes", "16384", NULL),
                     0);
    free(out);
    free(err);
    size_t cap = 400 * 128, len = 0;
    char *lines = malloc(cap);
    for (int i = 0; i < 400; i++)
        len += (size_t)snprintf(lines + len, cap - len,
                                "{\"EventType\":\"bulk\",\"Attributes\":{\"n\":\"%06d-"
                                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}\n",
                                i);
    assert_int_equal(cli(f, lines, &out, &err, "record", "--store", f->store, "--events-file",
                         "-", NULL),
                     0);
    free(out);
    free(err);
    assert_true(stats_number(f, "bytes") <= 16384);
    assert_true(stats_number(f, "recorded") == 401);
    expect_bad(f, "keeps max_store_bytes 16384", "record", "--store", f->store, "--type", "x",
               "--max-store-bytes", "1048576", NULL);
    assert_int_equal(cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "x",
                         "--max-store-bytes", "1048576", "--set-store-settings", NULL),
                     0);
    free(out);
    free(err);
    assert_int_equal(cli(f, lines, &out, &err, "record", "--store", f->store, "--events-file",
                         "-", NULL),
                     0);
    free(out);
    free(err);
    assert_true(stats_number(f, "bytes") > 16384); /* the new bound is everyone's */
    free(lines);
}

static void events_file_skips_bad_lines(void **state)
{
    fixture_t *f = *state;
    char when[32], lines[512];
    tu_recent_day(1, when, NULL);
    snprintf(lines, sizeof lines,
             "{\"EventType\":\"a\",\"Attributes\":{\"k\":\"v\"},\"EventId\":\"line-1\"}\n"
             "{\"EventType\":\"b\",\"Metrics\":{\"m\":\"not a number\"}}\n"
             "\n"
             "{\"EventType\":\"c\",\"Timestamp\":\"%s\",\"EventId\":\"line-4\"}\n"
             "not json at all\n",
             when);
    char *out = NULL, *err = NULL;
    int rc = cli(f, lines, &out, &err, "record", "--store", f->store, "--events-file", "-", NULL);
    assert_int_equal(rc, 1);
    assert_string_equal(out, "line-1\nline-4\n");
    assert_non_null(strstr(err, "stdin:2:"));
    assert_non_null(strstr(err, "stdin:5:"));
    assert_null(strstr(err, "stdin:4:"));
    free(out);
    free(err);
    assert_int_equal(stats_number(f, "events"), 2);
    /* from a file, all good: exit 0 */
    char path[700];
    snprintf(path, sizeof path, "%s/events.jsonl", f->dir);
    FILE *fp = fopen(path, "w");
    for (int i = 0; i < 20; i++)
        fprintf(fp, "{\"EventType\":\"bulk\",\"Attributes\":{\"i\":\"%d\"}}\n", i);
    fclose(fp);
    rc = cli(f, NULL, &out, &err, "record", "--store", f->store, "--events-file", path, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(count_lines(out), 20);
    free(out);
    free(err);
    assert_int_equal(stats_number(f, "events"), 22);
    /* batched durability (the store's, switched explicitly): ids are printed once their batch
     * is committed, every one of them */
    fp = fopen(path, "w");
    for (int i = 0; i < 150; i++)
        fprintf(fp, "{\"EventType\":\"batched\",\"EventId\":\"b-%03d\"}\n", i);
    fclose(fp);
    rc = cli(f, NULL, &out, &err, "record", "--store", f->store, "--events-file", path,
             "--durability", "batched", "--commit-max-events", "40", "--set-store-settings",
             NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(count_lines(out), 150);
    assert_non_null(strstr(out, "b-000\nb-001\n"));
    assert_non_null(strstr(out, "b-149\n"));
    free(out);
    free(err);
    assert_int_equal(stats_number(f, "events"), 172);
}

/* Under refuse_new a full store refuses lines; every line not stored is reported (the rest of
 * the file is still tried), and the exit status says some were not. */
static void events_file_reports_every_line_not_stored(void **state)
{
    fixture_t *f = *state;
    char path[700], pad[160];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    snprintf(path, sizeof path, "%s/full.jsonl", f->dir);
    FILE *fp = fopen(path, "w");
    for (int i = 0; i < 400; i++)
        fprintf(fp, "{\"EventType\":\"fill\",\"EventId\":\"f-%03d\",\"Attributes\":{\"p\":\"%s\"}}\n",
                i, pad);
    fclose(fp);
    char *out = NULL, *err = NULL;
    int rc = cli(f, NULL, &out, &err, "record", "--store", f->store, "--events-file", path,
                 "--max-store-bytes", "65536", "--full-policy", "refuse_new", NULL);
    assert_int_equal(rc, 1);
    int stored = count_lines(out);
    assert_true(stored > 10 && stored < 400);
    /* each line not stored is named, up to the last one, and the total is given */
    for (int line = stored + 1; line <= 400; line++) {
        char needle[800];
        snprintf(needle, sizeof needle, "%s:%d: ", path, line);
        if (!strstr(err, needle))
            fail_msg("line %d not reported: %.400s", line, err);
    }
    char total[800];
    snprintf(total, sizeof total, "%d of 400 events not stored", 400 - stored);
    assert_non_null(strstr(err, total));
    free(out);
    free(err);
    assert_int_equal(stats_number(f, "events"), stored);
}

static void endpoint_set_and_get(void **state)
{
    fixture_t *f = *state;
    char *out = NULL, *err = NULL;
    int rc = cli(f, NULL, &out, &err, "endpoint", "--store", f->store, "--set",
                 "Demographic.Make=Acme", "--set", "User.UserId=u-7", "--attr", "plan=gold,silver",
                 "--metric", "battery=0.25", "--location", "47.6,-122.3", "--get", NULL);
    if (rc != 0)
        fail_msg("endpoint: %d %s", rc, err);
    cJSON *p = cJSON_Parse(out);
    assert_non_null(p);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(p, "Demographic"), "Make")->valuestring,
                        "Acme");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(p, "User"), "UserId")->valuestring,
                        "u-7");
    const cJSON *plan = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(p, "Attributes"), "plan");
    assert_int_equal(cJSON_GetArraySize(plan), 2);
    cJSON_Delete(p);
    free(out);
    free(err);
    /* a bad value: exit 2, profile unchanged */
    rc = cli(f, NULL, &out, &err, "endpoint", "--store", f->store, "--set", "ChannelType=PIGEON", NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "ChannelType"));
    free(out);
    free(err);
    rc = cli(f, NULL, &out, &err, "endpoint", "--store", f->store, "--get", NULL);
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "PIGEON"));
    assert_non_null(strstr(out, "Acme"));
    free(out);
    free(err);
    /* the id is stable and shared with `record` */
    rc = cli(f, NULL, &out, &err, "endpoint", "--store", f->store, "--id", NULL);
    assert_int_equal(rc, 0);
    assert_true(is_uuid_line(out));
    free(out);
    free(err);
}

/* -- the agent daemon ---------------------------------------------------------------------- */

static char *write_file(fixture_t *f, const char *name, const char *text)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/%s", f->dir, name) > 0);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, 0600), 0); /* they hold secrets */
    return path;
}

static void agent_config_errors(void **state)
{
    fixture_t *f = *state;
    struct {
        const char *json;
        const char *needle;
    } cases[] = {
        { "{\"application_id\":\"a\",\"colour\":\"blue\"}", "unknown key \"colour\"" },
        { "{\"application_id\":\"a\",\"flush_interval_ms\":\"soon\"}", "flush_interval_ms" },
        { "{\"application_id\":\"a\",\"durability\":\"sometimes\"}", "durability" },
        { "{\"application_id\":\"a\",\"no_verify_tls\":1}", "no_verify_tls" },
        { "{\"application_id\":\"a\",\"max_store_bytes\":-5}", "max_store_bytes" },
        { "{\"application_id\": ", "not valid JSON" },
        { "[1,2]", "JSON object" },
        { "{\"service\":\"personalize\"}", "tracking_id" },
        { "{}", "application_id" },
        /* every credential provider given an option is complete, or the agent does not start */
        { "{\"application_id\":\"a\",\"iot_credentials_endpoint\":\"127.0.0.1:9\","
          "\"iot_role_alias\":\"r\"}", "iot_thing_name is not" },
        { "{\"application_id\":\"a\",\"iot_thing_name\":\"t\"}",
          "iot_credentials_endpoint is not" },
        { "{\"application_id\":\"a\",\"access_key_id\":\"AKID\"}", "secret_access_key" },
        { "{\"application_id\":\"a\",\"session_token\":\"tok\"}", "session_token" },
        { "{\"application_id\":\"a\",\"cognito_identity_pool_id\":\"no-region\"}",
          "<region>:<id>" },
        { "{\"application_id\":\"a\",\"cognito_endpoint_url\":\"http://127.0.0.1:9\"}",
          "cognito_identity_pool_id is not" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *cfg = write_file(f, "bad.json", cases[i].json);
        char *out = NULL, *err = NULL;
        int rc = cli(f, NULL, &out, &err, "agent", "--store", f->store, "--config", cfg,
                     "--drain-timeout", "1", NULL);
        if (rc != 2 || !strstr(err, cases[i].needle))
            fail_msg("config %s: exit %d, stderr '%s'", cases[i].json, rc, err);
        free(out);
        free(err);
        free(cfg);
    }
    /* a missing file, and an unknown flag */
    char *out = NULL, *err = NULL;
    int rc = cli(f, NULL, &out, &err, "agent", "--store", f->store, "--config", "/nonexistent.json", NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "/nonexistent.json"));
    free(out);
    free(err);
    rc = cli(f, NULL, &out, &err, "agent", "--store", f->store, "--application-id", "a",
             "--frobnicate", NULL);
    assert_int_equal(rc, 2);
    free(out);
    free(err);
}

/* options.def's options with a CLI column, as this test reads it: the member's name is the
 * config key, the flag is the name with dashes, `uses` the commands that take the flag. */
typedef struct cli_row {
    const char *name;
    char kind; /* 'S'tring, 'B'ool, 'N'umber, 'E'num */
    const char *first_value; /* an enum's first name */
    unsigned uses;           /* 0: not a flag */
    int secret_file;         /* CLI_SECRET: also <name>_file */
} cli_row_t;

#define ANY NULL
#define ALWAYS(lo, hi) NULL
#define DELIVERING(lo, hi) NULL
#define DELIVERING_OR_0(lo, hi) NULL
#define ONE_OF(last, noun, first, ...) first
#define CLI(uses, help) (uses), 0
#define CLI_SECRET(uses, help, file_help) (uses), 1
#define NOT_CLI(why) 0, 0
#define KIND_STR 'S'
#define KIND_BOOL 'B'
#define KIND_U32 'N'
#define KIND_U64 'N'
#define KIND_SIZE 'N'
#define KIND_ENUM 'E'
#define KIND_FN 'F'
#define KIND_PTR 'P'
static const cli_row_t cli_rows[] = {
#define EVREC_OPTION(kind, name, def, range, cli, shown, meaning)                                 \
    { #name, KIND_##kind, range, cli },
#include "options.def"
#undef EVREC_OPTION
};

static const char *const commands[] = { "record", "stats", "endpoint", "flush", "agent" };

/* The option flags as users' scripts spell them, the commands that take each (U_*, in
 * `commands` order), and a value to give it (NULL: a bare flag). A contract: a flag renamed,
 * dropped or offered to other commands fails here. */
#define SECRET_FILE "(the secret file)"
static const struct {
    const char *flag;
    unsigned uses;
    const char *value;
} contract[] = {
    { "--access-key-id", U_DELIVER, "x" },
    { "--application-id", U_DELIVER, "x" },
    { "--backoff-base-ms", U_DELIVER, "7" },
    { "--backoff-cap-ms", U_DELIVER, "7" },
    { "--ca-bundle", U_DELIVER, "x" },
    { "--cognito-endpoint-url", U_DELIVER, "x" },
    { "--cognito-identity-pool-id", U_DELIVER, "x" },
    { "--commit-interval-ms", U_WRITE, "7" },
    { "--commit-max-events", U_WRITE, "7" },
    { "--connect-timeout-ms", U_DELIVER, "7" },
    { "--daily-upload-bytes", U_DELIVER, "7" },
    { "--delivery-stream-name", U_DELIVER, "x" },
    { "--drain-timeout", U_AGENT, "7" },
    { "--durability", U_WRITE, "process" },
    { "--encryption-key-file", U_ALL, "x" },
    { "--endpoint-id", U_RECORD | U_ENDPOINT, "x" },
    { "--endpoint-url", U_DELIVER, "x" },
    { "--flush-interval-ms", U_AGENT, "7" },
    { "--flush-threshold-events", U_AGENT, "7" },
    { "--full-policy", U_RECORD, "drop_oldest" },
    { "--iot-cert-file", U_DELIVER, "x" },
    { "--iot-credentials-endpoint", U_DELIVER, "x" },
    { "--iot-key-file", U_DELIVER, "x" },
    { "--iot-role-alias", U_DELIVER, "x" },
    { "--iot-thing-name", U_DELIVER, "x" },
    { "--log-file", U_AGENT, "x" },
    { "--log-level", U_ALL, "error" },
    { "--map-size-bytes", U_ALL, "7" },
    { "--max-batch-events", U_DELIVER, "7" },
    { "--max-event-age-ms", U_RECORD | U_DELIVER, "7" },
    { "--max-record-bytes", U_DELIVER, "7" },
    { "--max-request-bytes", U_DELIVER, "7" },
    { "--max-response-bytes", U_DELIVER, "7" },
    { "--max-store-bytes", U_WRITE, "7" },
    { "--no-environment-credentials", U_DELIVER, NULL },
    { "--no-verify-tls", U_DELIVER, NULL },
    { "--partition-key", U_DELIVER, "endpoint" },
    { "--profile", U_DELIVER, "x" },
    { "--quarantine-corrupt", U_ALL, NULL },
    { "--region", U_DELIVER, "x" },
    { "--request-timeout-ms", U_DELIVER, "7" },
    { "--secret-access-key", U_DELIVER, "x" },
    { "--secret-access-key-file", U_DELIVER, SECRET_FILE },
    { "--service", U_RECORD | U_DELIVER, "pinpoint" },
    { "--session-timeout-ms", U_RECORD | U_AGENT, "7" },
    { "--session-token", U_DELIVER, "x" },
    { "--session-token-file", U_DELIVER, SECRET_FILE },
    { "--set-store-settings", U_WRITE, NULL },
    { "--store", U_ALL, "x" },
    { "--stream-arn", U_DELIVER, "x" },
    { "--stream-name", U_DELIVER, "x" },
    { "--sync-interval-ms", U_WRITE, "7" },
    { "--syslog", U_AGENT, NULL },
    { "--tracking-id", U_DELIVER, "x" },
    { "--truncate-oversize", U_RECORD, NULL },
    { "--upload-allowed-cmd", U_DELIVER, "x" },
};

/* `evrec <command> <flag> [value] --map-size-bytes nope`: a command that takes the flag parses
 * it and stops at the next flag's bad value (nothing runs); the others refuse the flag by
 * name. Exit 2 either way. */
static void flag_taken_by_its_commands(fixture_t *f, const char *flag, unsigned uses,
                                       const char *value)
{
    const char *next = strcmp(flag, "--map-size-bytes") ? "--map-size-bytes" : "--log-level";
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
        const char *argv[8] = { f->cli, commands[c], flag };
        int n = 3;
        if (value)
            argv[n++] = value;
        argv[n++] = next;
        argv[n++] = "nope";
        argv[n] = NULL;
        char *out = NULL, *err = NULL;
        int rc = tu_run(argv, NULL, &out, &err);
        int takes = (uses >> c) & 1;
        if (rc != 2 || !strstr(err, takes ? next : flag) ||
            (takes && strstr(err, "not an option")))
            fail_msg("evrec %s %s: exit %d, stderr '%s' (%s)", commands[c], flag, rc, err,
                     takes ? "should take it" : "should refuse it");
        free(out);
        free(err);
    }
}

static void option_flags_keep_their_spelling_and_commands(void **state)
{
    fixture_t *f = *state;
    char *secret = write_file(f, "secret.txt", "a-secret\n");
    for (size_t i = 0; i < sizeof contract / sizeof contract[0]; i++) {
        const char *v = contract[i].value;
        flag_taken_by_its_commands(f, contract[i].flag, contract[i].uses,
                                   v && strcmp(v, SECRET_FILE) == 0 ? secret : v);
    }
    free(secret);
}

/* Every option that options.def gives a CLI column is a flag of the contract above, by the
 * documented rule (max_store_bytes <-> --max-store-bytes), for the commands its row names, and
 * a key of a --config file (a secret's <name>_file too); the contract's other flags are the
 * CLI's own. A row the CLI does not take, or takes otherwise, fails here. */
static void every_option_is_a_flag_and_a_config_key(void **state)
{
    fixture_t *f = *state;
    char *secret = write_file(f, "secret.txt", "a-secret\n");
    char *missing_store = NULL;
    assert_true(asprintf(&missing_store, "%s/no-such-store", f->dir) > 0);
    int matched[sizeof contract / sizeof contract[0]] = { 0 };
    for (size_t i = 0; i < sizeof cli_rows / sizeof cli_rows[0]; i++) {
        const cli_row_t *r = &cli_rows[i];
        if (!r->uses)
            continue;
        for (int file = 0; file <= r->secret_file; file++) {
            char key[96], flag[100], json[512];
            snprintf(key, sizeof key, "%s%s", r->name, file ? "_file" : "");
            snprintf(flag, sizeof flag, "--%s", key);
            for (char *c = flag; *c; c++)
                *c = *c == '_' ? '-' : *c;
            size_t k = 0;
            while (k < sizeof contract / sizeof contract[0] && strcmp(contract[k].flag, flag))
                k++;
            if (k == sizeof contract / sizeof contract[0] || contract[k].uses != r->uses)
                fail_msg("options.def's %s: %s is not in the contract with those commands",
                         r->name, flag);
            matched[k] = 1;
            const char *value = file ? secret : r->kind == 'E' ? r->first_value
                                : r->kind == 'N'               ? "7"
                                                               : "x";
            if (r->kind == 'B' && !file)
                snprintf(json, sizeof json, "{\"%s\": true}", key);
            else if (r->kind == 'N' && !file)
                snprintf(json, sizeof json, "{\"%s\": %s}", key, value);
            else
                snprintf(json, sizeof json, "{\"%s\": \"%s\"}", key, value);
            /* read (stats ignores other commands' keys), then the store is missing */
            char *cfg = write_file(f, "one.json", json);
            char *out = NULL, *err = NULL;
            int rc = cli(f, NULL, &out, &err, "stats", "--store", missing_store, "--config", cfg,
                         NULL);
            if (rc != 1 || !strstr(err, "no store"))
                fail_msg("config %s: exit %d, stderr '%s'", json, rc, err);
            free(out);
            free(err);
            free(cfg);
        }
    }
    static const char *const own[] = { "--store", "--upload-allowed-cmd", "--drain-timeout",
                                       "--log-file", "--syslog" };
    for (size_t k = 0; k < sizeof contract / sizeof contract[0]; k++) {
        int is_own = 0;
        for (size_t j = 0; j < sizeof own / sizeof own[0]; j++)
            is_own |= strcmp(own[j], contract[k].flag) == 0;
        if (matched[k] == is_own)
            fail_msg("%s: %s", contract[k].flag,
                     is_own ? "the CLI's own flag is also an options.def row"
                            : "no options.def row gives it");
    }
    free(missing_store);
    free(secret);
}

/* `evrec agent` on store with cfg, stderr in logpath, plus one optional flag and value. */
static pid_t spawn_agent_with(fixture_t *f, const char *store, const char *cfg,
                              const char *logpath, const char *flag, const char *value)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        execl(f->cli, f->cli, "agent", "--store", store, "--config", cfg, "--drain-timeout",
              "20", flag, value, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static pid_t spawn_agent_on(fixture_t *f, const char *store, const char *cfg,
                            const char *logpath)
{
    return spawn_agent_with(f, store, cfg, logpath, NULL, NULL);
}

static int64_t now_ms(void)
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

/* Start `evrec agent` with its stderr in logpath. */
static pid_t spawn_agent(fixture_t *f, const char *cfg, const char *logpath)
{
    return spawn_agent_on(f, f->store, cfg, logpath);
}

static char *read_all(const char *path)
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

static int wait_for_text(const char *path, const char *needle, long timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        char *s = read_all(path);
        int found = strstr(s, needle) != NULL;
        free(s);
        if (found)
            return 1;
        pause_ms(50);
    }
    return 0;
}

static int wait_exit(pid_t pid, long timeout_ms, int *status)
{
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        if (waitpid(pid, status, WNOHANG) == pid)
            return 1;
        pause_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return 0;
}

static long fake_events(const tu_endpoint_t *ep, const char *id_prefix)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/log", ep->url);
    char *body = tu_http("GET", url, NULL, NULL);
    if (!body)
        return -1;
    cJSON *arr = cJSON_Parse(body);
    free(body);
    long n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "event_id");
        if (cJSON_IsString(id) && strncmp(id->valuestring, id_prefix, strlen(id_prefix)) == 0)
            n++;
    }
    cJSON_Delete(arr);
    return n;
}

/* `evrec stats`'s "flusher" member: alive (1/0), its pid (-1 if null); -2 if absent. */
static int stats_flusher(fixture_t *f, long *pid)
{
    char *out = NULL, *err = NULL;
    int rc = cli(f, NULL, &out, &err, "stats", "--store", f->store, NULL);
    assert_int_equal(rc, 0);
    cJSON *o = cJSON_Parse(out);
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(o, "flusher");
    int alive = -2;
    *pid = -1;
    if (cJSON_IsObject(fl)) {
        alive = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fl, "alive"));
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(fl, "pid");
        if (cJSON_IsNumber(p))
            *pid = (long)p->valuedouble;
        assert_true(!alive || cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fl, "since")));
    }
    cJSON_Delete(o);
    free(out);
    free(err);
    return alive;
}

/* An agent configuration for the local endpoint with a 10-minute interval, plus `extra`
 * members ("" or ",\"name\":value..."), written to f->dir/name. */
static char *fake_agent_config(fixture_t *f, const tu_endpoint_t *ep, const char *name,
                               const char *extra)
{
    char cfgtext[1024];
    snprintf(cfgtext, sizeof cfgtext,
             "{\"service\":\"pinpoint\",\"application_id\":\"cli-app\",\"region\":\"us-east-1\","
             "\"endpoint_url\":\"%s\",\"access_key_id\":\"%s\",\"secret_access_key\":\"%s\","
             "\"flush_interval_ms\":600000,\"log_level\":\"info\"%s}",
             ep->url, FAKE_KEY, FAKE_SECRET, extra);
    return write_file(f, name, cfgtext);
}

static void agent_uploads_what_others_record_and_drains_on_sigterm(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    /* a long interval and a high threshold: nothing goes out until the drain */
    char *cfg = fake_agent_config(f, &ep, "agent.json",
                                  ",\"flush_threshold_events\":1000,"
                                  "\"backoff_base_ms\":10,\"backoff_cap_ms\":200");
    char logpath[700];
    snprintf(logpath, sizeof logpath, "%s/agent.log", f->dir);
    pid_t pid = spawn_agent(f, cfg, logpath);
    if (!wait_for_text(logpath, "flushing", 10000)) {
        char *log = read_all(logpath);
        kill(pid, SIGKILL);
        fail_msg("the agent did not start: %s", log);
    }

    /* `evrec stats` says a flusher runs, and which */
    long fpid = 0;
    assert_int_equal(stats_flusher(f, &fpid), 1);
    assert_int_equal(fpid, (long)pid);

    /* other processes record into the store while the agent runs */
    char *out = NULL, *err = NULL;
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof id, "drain-%d", i);
        int rc = cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "from.script",
                     "--event-id", id, NULL);
        if (rc != 0)
            fail_msg("record while the agent runs: %d %s", rc, err);
        free(out);
        free(err);
    }
    /* a second flusher is refused while the agent holds the role */
    int rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--config", cfg,
                 "--timeout", "0.1", NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "another process"));
    free(out);
    free(err);
    assert_int_equal(fake_events(&ep, "drain-"), 0); /* still queued */

    kill(pid, SIGTERM);
    int status = 0;
    assert_true(wait_exit(pid, 25000, &status));
    char *log = read_all(logpath);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("agent exit status %d: %s", status, log);
    assert_non_null(strstr(log, "draining"));
    assert_non_null(strstr(log, "drained"));
    assert_null(strstr(log, FAKE_SECRET)); /* never logged */
    free(log);
    assert_int_equal(fake_events(&ep, "drain-"), 4);
    assert_int_equal(stats_flusher(f, &fpid), 0); /* gone; the last one named */
    assert_int_equal(fpid, (long)pid);
    assert_int_equal(stats_number(f, "events"), 0);
    assert_int_equal(stats_number(f, "delivered"), 4);
    /* the delivery state the agent left in the store, seen from another process */
    assert_true(stats_number(f, "requests") >= 1);
    rc = cli(f, NULL, &out, &err, "status", "--store", f->store, NULL);
    assert_int_equal(rc, 3); /* no flusher runs, nothing waits: not running */
    cJSON *st = cJSON_Parse(out);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(st, "last_upload")));
    cJSON_Delete(st);
    free(out);
    free(err);
    /* with the agent gone, `evrec flush` uploads what is recorded next, and exits 0 */
    rc = cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "late",
             "--event-id", "drain-late", NULL);
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--config", cfg, "--timeout",
             "15000", NULL);
    if (rc != 0)
        fail_msg("flush: %d %s", rc, err);
    st = cJSON_Parse(out);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(st, "events")->valuedouble, 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(st, "delivered")->valuedouble, 5);
    cJSON_Delete(st);
    free(out);
    free(err);
    assert_int_equal(fake_events(&ep, "drain-"), 5);
    free(cfg);
    tu_endpoint_stop(&ep);
}

/* `evrec agent --flush-threshold-events 3` counts the store's queue: three events recorded
 * by `evrec record` (other processes) go out at once, not at the 10-minute interval. */
static void agent_threshold_counts_other_processes(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    char *cfg = fake_agent_config(f, &ep, "threshold.json", "");
    char logpath[700];
    snprintf(logpath, sizeof logpath, "%s/threshold.log", f->dir);
    pid_t pid = spawn_agent_with(f, f->store, cfg, logpath, "--flush-threshold-events", "3");
    assert_true(wait_for_text(logpath, "flushing", 10000));
    char *out = NULL, *err = NULL;
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "thr-%d", i);
        assert_int_equal(cli(f, NULL, &out, &err, "record", "--store", f->store, "--type",
                             "from.script", "--event-id", id, NULL), 0);
        free(out);
        free(err);
    }
    int64_t end = now_ms() + 10000;
    while (fake_events(&ep, "thr-") < 3 && now_ms() < end)
        pause_ms(100);
    long sent = fake_events(&ep, "thr-");
    kill(pid, SIGTERM);
    int status = 0;
    assert_true(wait_exit(pid, 25000, &status));
    assert_int_equal(sent, 3);
    free(cfg);
    tu_endpoint_stop(&ep);
}

/* `evrec flush --profile good` signs with that profile's keys even when other keys are in
 * the environment (before, the environment's keys signed: a wrong identity, silently). */
static void flush_profile_beats_environment_keys(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    char text[256];
    snprintf(text, sizeof text, "[good]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
             FAKE_KEY, FAKE_SECRET);
    char *credfile = write_file(f, "credentials", text);
    setenv("AWS_SHARED_CREDENTIALS_FILE", credfile, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDWRONGIDENTITY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-from-the-environment", 1);
    char *out = NULL, *err = NULL;
    int rc = cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "t",
                 "--event-id", "profile-1", NULL);
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--application-id", "app",
             "--endpoint-url", ep.url, "--profile", "good", "--timeout", "10", NULL);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    if (rc != 0)
        fail_msg("flush --profile good: %d %s", rc, err);
    assert_int_equal(fake_events(&ep, "profile-"), 1);
    free(out);
    free(err);
    free(credfile);
    tu_endpoint_stop(&ep);
}

/* The service endpoint from the config file, as the SDKs read it: a profile's `services`
 * section (no --endpoint-url, no AWS_ENDPOINT_URL). */
static void flush_endpoint_from_config_services_section(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    char text[512];
    snprintf(text, sizeof text,
             "[default]\nservices = local\nendpoint_url = http://127.0.0.1:1/not-this-one\n"
             "[services local]\npinpoint =\n  endpoint_url = %s\n", ep.url);
    char *conf = write_file(f, "config", text);
    setenv("AWS_CONFIG_FILE", conf, 1);
    setenv("AWS_ACCESS_KEY_ID", FAKE_KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET, 1);
    char *out = NULL, *err = NULL;
    int rc = cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "t",
                 "--event-id", "services-1", NULL);
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--application-id", "app",
             "--timeout", "10", NULL);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    if (rc != 0)
        fail_msg("flush with the endpoint in the config file: %d %s", rc, err);
    assert_int_equal(fake_events(&ep, "services-"), 1);
    free(out);
    free(err);
    free(conf);
    tu_endpoint_stop(&ep);
}

/* `evrec flush` exits 0 only when the store is empty: events of another service stay queued
 * and are named, with the command line that delivers them. */
static void flush_exits_1_while_events_wait_for_another_service(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(f, NULL, &out, &err, "record", "--store", f->store, "--service",
                         "personalize", "--type", "watch", "--user-id", "u-1", "--session-id",
                         "s-1", "--event-id", "wait-pz", NULL), 0);
    free(out);
    free(err);
    assert_int_equal(cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "open",
                         "--event-id", "wait-pp", NULL), 0);
    free(out);
    free(err);
    int rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--service", "pinpoint",
                 "--application-id", "app", "--region", "us-east-1", "--endpoint-url", ep.url,
                 "--access-key-id", FAKE_KEY, "--secret-access-key", FAKE_SECRET, "--timeout",
                 "10", NULL);
    if (rc != 1 || !strstr(err, "1 events wait for another service") ||
        !strstr(err, "evrec flush --service personalize-events"))
        fail_msg("flush --service pinpoint: exit %d, stderr %s", rc, err);
    free(out);
    free(err);
    assert_int_equal(fake_events(&ep, "wait-pp"), 1);
    assert_int_equal(stats_number(f, "events"), 1);
    rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--service",
             "personalize-events", "--tracking-id", "tracker", "--region", "us-east-1",
             "--endpoint-url", ep.url, "--access-key-id", FAKE_KEY, "--secret-access-key",
             FAKE_SECRET, "--timeout", "10", NULL);
    if (rc != 0)
        fail_msg("flush --service personalize-events: exit %d, stderr %s", rc, err);
    free(out);
    free(err);
    assert_int_equal(stats_number(f, "events"), 0);
    tu_endpoint_stop(&ep);
}

/* Secrets: a warning when given in argv (other users see /proc/PID/cmdline), *-file variants,
 * and files holding them must be private and regular. */
static void secrets_from_private_files(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "t",
                         "--event-id", "secret-1", NULL), 0);
    free(out);
    free(err);
    /* in argv: works, with a warning naming the better way */
    int rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--application-id", "app",
                 "--region", "us-east-1", "--endpoint-url", ep.url, "--access-key-id", FAKE_KEY,
                 "--secret-access-key", FAKE_SECRET, "--timeout", "10", NULL);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(err, "warning: --secret-access-key on the command line"));
    assert_non_null(strstr(err, "--secret-access-key-file"));
    assert_null(strstr(err, FAKE_SECRET));
    free(out);
    free(err);
    assert_int_equal(fake_events(&ep, "secret-"), 1);

    /* from a file: refused while others may read it, then taken without a warning */
    char *keyfile = write_file(f, "secret.key", FAKE_SECRET "\n");
    assert_int_equal(chmod(keyfile, 0644), 0);
    rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--application-id", "app",
             "--region", "us-east-1", "--endpoint-url", ep.url, "--access-key-id", FAKE_KEY,
             "--secret-access-key-file", keyfile, "--timeout", "10", NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "mode 0644"));
    assert_non_null(strstr(err, "chmod 600"));
    free(out);
    free(err);
    assert_int_equal(chmod(keyfile, 0600), 0);
    assert_int_equal(cli(f, NULL, &out, &err, "record", "--store", f->store, "--type", "t",
                         "--event-id", "secret-2", NULL), 0);
    free(out);
    free(err);
    rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--application-id", "app",
             "--region", "us-east-1", "--endpoint-url", ep.url, "--access-key-id", FAKE_KEY,
             "--secret-access-key-file", keyfile, "--timeout", "10", NULL);
    if (rc != 0)
        fail_msg("flush --secret-access-key-file: %d %s", rc, err);
    assert_null(strstr(err, "warning"));
    free(out);
    free(err);
    assert_int_equal(fake_events(&ep, "secret-"), 2);

    /* a session token file with a second line is refused (it would inject a header) */
    char *tokfile = write_file(f, "token", "tok\nX-Injected: yes\n");
    rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--application-id", "app",
             "--session-token-file", tokfile, "--timeout", "1", NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "one line"));
    free(out);
    free(err);

    /* a config file holding a secret must be private; one without secrets need not be */
    char cfgtext[512];
    snprintf(cfgtext, sizeof cfgtext,
             "{\"application_id\":\"app\",\"region\":\"us-east-1\",\"endpoint_url\":\"%s\","
             "\"access_key_id\":\"%s\",\"secret_access_key\":\"%s\"}", ep.url, FAKE_KEY,
             FAKE_SECRET);
    char *cfg = write_file(f, "secret.json", cfgtext);
    assert_int_equal(chmod(cfg, 0640), 0);
    rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--config", cfg, "--timeout",
             "10", NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "group or others may access it (mode 0640)"));
    free(out);
    free(err);
    char *open_cfg = write_file(f, "open.json", "{\"log_level\":\"error\"}");
    assert_int_equal(chmod(open_cfg, 0644), 0);
    rc = cli(f, NULL, &out, &err, "stats", "--store", f->store, "--config", open_cfg, NULL);
    assert_int_equal(rc, 0);
    free(out);
    free(err);

    /* a FIFO as the config or the secret file: refused at once, not waited on */
    char fifo[700];
    snprintf(fifo, sizeof fifo, "%s/fifo", f->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    rc = cli(f, NULL, &out, &err, "stats", "--store", f->store, "--config", fifo, NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "not a regular file"));
    free(out);
    free(err);
    rc = cli(f, NULL, &out, &err, "flush", "--store", f->store, "--application-id", "app",
             "--access-key-id", FAKE_KEY, "--secret-access-key-file", fifo, NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "not a regular file"));
    free(out);
    free(err);
    free(keyfile);
    free(tokfile);
    free(cfg);
    free(open_cfg);
    tu_endpoint_stop(&ep);
}

/* `evrec pinpoint put-events` as the AWS CLI: the endpoint from AWS_ENDPOINT_URL_PINPOINT, and
 * AWS_PROFILE (not an explicit --profile) does not outrank the environment's keys. */
static void aws_put_events_env_endpoint_and_keys(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_t ep;
    if (tu_endpoint_start(&ep, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    char *credfile = write_file(f, "credentials-aws",
                                "[other]\naws_access_key_id = AKIDOTHERPROFILE\n"
                                "aws_secret_access_key = other-profile-secret\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", credfile, 1);
    setenv("AWS_PROFILE", "other", 1);
    setenv("AWS_ACCESS_KEY_ID", FAKE_KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET, 1);
    setenv("AWS_ENDPOINT_URL_PINPOINT", ep.url, 1);
    char *out = NULL, *err = NULL;
    int rc = cli(f, NULL, &out, &err, "pinpoint", "put-events", "--application-id", "app",
                 "--events-request",
                 "{\"BatchItem\":{\"d1\":{\"Endpoint\":{},\"Events\":{\"awsenv-1\":"
                 "{\"EventType\":\"click\",\"Timestamp\":\"2024-01-01T00:00:00Z\"}}}}}",
                 NULL);
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_ENDPOINT_URL_PINPOINT");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    if (rc != 0)
        fail_msg("put-events: %d %s %s", rc, out, err);
    assert_non_null(strstr(out, "\"StatusCode\": 202"));
    free(out);
    free(err);
    free(credfile);
    tu_endpoint_stop(&ep);
}

static void agent_reopens_its_log_on_sighup(void **state)
{
    fixture_t *f = *state;
    char logfile[700], rotated[720], cfgtext[1200], stderr_path[700];
    snprintf(logfile, sizeof logfile, "%s/evrec.log", f->dir);
    snprintf(rotated, sizeof rotated, "%s.1", logfile);
    snprintf(stderr_path, sizeof stderr_path, "%s/stderr.txt", f->dir);
    snprintf(cfgtext, sizeof cfgtext,
             "{\"application_id\":\"a\",\"endpoint_url\":\"http://127.0.0.1:9\","
             "\"access_key_id\":\"%s\",\"secret_access_key\":\"%s\",\"log_file\":\"%s\","
             "\"flush_interval_ms\":600000}",
             FAKE_KEY, FAKE_SECRET, logfile);
    char *cfg = write_file(f, "hup.json", cfgtext);
    pid_t pid = spawn_agent(f, cfg, stderr_path);
    assert_true(wait_for_text(logfile, "flushing", 10000));
    struct stat st;
    assert_int_equal(stat(logfile, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600); /* created private whatever the umask */
    assert_int_equal(rename(logfile, rotated), 0); /* what logrotate does */
    kill(pid, SIGHUP);
    assert_true(wait_for_text(logfile, "log reopened", 10000));
    assert_int_equal(stat(logfile, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    kill(pid, SIGINT);
    int status = 0;
    assert_true(wait_exit(pid, 25000, &status));
    assert_true(WIFEXITED(status));
    assert_true(wait_for_text(logfile, "draining", 1000));
    free(cfg);
}

static void second_agent_waits_for_the_role(void **state)
{
    fixture_t *f = *state;
    char cfgtext[1024], log1[700], log2[700];
    snprintf(cfgtext, sizeof cfgtext,
             "{\"application_id\":\"a\",\"endpoint_url\":\"http://127.0.0.1:9\","
             "\"access_key_id\":\"%s\",\"secret_access_key\":\"%s\","
             "\"flush_interval_ms\":600000}", FAKE_KEY, FAKE_SECRET);
    char *cfg = write_file(f, "role.json", cfgtext);
    snprintf(log1, sizeof log1, "%s/first.log", f->dir);
    snprintf(log2, sizeof log2, "%s/second.log", f->dir);
    pid_t first = spawn_agent(f, cfg, log1);
    assert_true(wait_for_text(log1, "flushing", 10000));
    pid_t second = spawn_agent(f, cfg, log2);
    assert_true(wait_for_text(log2, "waiting for the role", 10000));
    char *l2 = read_all(log2);
    assert_null(strstr(l2, "flushing"));
    free(l2);
    kill(first, SIGTERM);
    int status = 0;
    assert_true(wait_exit(first, 25000, &status));
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* the role is free: the second agent takes it at its next try */
    assert_true(wait_for_text(log2, "flushing", 15000));
    kill(second, SIGTERM);
    assert_true(wait_exit(second, 25000, &status));
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(record_and_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_input_exits_2_and_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(events_file_skips_bad_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(store_bound_is_the_stores, setup, teardown),
        cmocka_unit_test_setup_teardown(events_file_reports_every_line_not_stored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(endpoint_set_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(agent_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(option_flags_keep_their_spelling_and_commands, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(every_option_is_a_flag_and_a_config_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(agent_uploads_what_others_record_and_drains_on_sigterm,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(agent_reopens_its_log_on_sighup, setup, teardown),
        cmocka_unit_test_setup_teardown(agent_threshold_counts_other_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(flush_profile_beats_environment_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(flush_endpoint_from_config_services_section, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(aws_put_events_env_endpoint_and_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(flush_exits_1_while_events_wait_for_another_service,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(secrets_from_private_files, setup, teardown),
        cmocka_unit_test_setup_teardown(second_agent_waits_for_the_role, setup, teardown),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
