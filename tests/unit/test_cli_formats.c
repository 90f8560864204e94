/*
 * The CLI's shorthand parser and output formatters against the AWS CLI's own Python code
 * (tests/support/cli_oracle.py runs awscli.shorthand, awscli.text, awscli.table and the YAML
 * and JSON formatters on the same inputs), plus Python's float repr and json error messages.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws_output.h"
#include "aws_wire.h"
#include "aws_yaml.h"
#include "model.h"
#include "pyjson.h"
#include "shorthand.h"
#include "testutil.h"

#define ORACLE_PYTHON "/usr/bin/python3"

static const char *const shorthands[] = {
    "a=b", "a=b,c=d", "a=b,c", "a=b,c,d=e", "a=[b,c]", "a={b=c,d=[e,f]}", "a=", "a=b c ,d=e",
    "a='x,y'", "a=\"x \\\"q\\\" y\"", "a='it\\'s'", "a=x\\,y", "a=x\\,y,z", "a=[]", "a={}",
    "a=[{b=c},{d=e}]", "a={b={c={d=e}}}", "a.b-c_d:e/f#g=1", "a=b,a=c", "a={b=1,b=2}", "a",
    "=b", "a=[b", "a={b=c", "a=b,", "a=b,,c=d", "a = b , c = d", "a=ü,b=✓", "a=1.5,b=-2,c=true",
    "a=[1,[2,3]]", "a=b=c", "a=b,c=[d,e],f={g=h}", "a=\"\"", "a='", "a=x y z", "a=[a b, c]",
    "a=@b,c=$d", "a=b\n,c=d", "a={b=[c,{d=e}]}", "a=b,c=d\ne=f",
};

static const char *const cases_json[] = {
    "{\"EventsResponse\":{\"Results\":{\"ep1\":{\"EndpointItemResponse\":{\"Message\":"
    "\"Accepted\",\"StatusCode\":202},\"EventsItemResponse\":{\"e1\":{\"Message\":\"Accepted\","
    "\"StatusCode\":202},\"e2\":{\"Message\":\"Event attribute key name exceeds the maximum "
    "length of fifty characters allowed for this field, please shorten it\",\"StatusCode\":400}}},"
    "\"ep0\":{\"EndpointItemResponse\":{\"Message\":\"Accepted\",\"StatusCode\":202},"
    "\"EventsItemResponse\":{}}}}}",
    "{\"a\":null,\"b\":true,\"c\":false,\"d\":1.5,\"e\":-0.0,\"f\":1e20,\"g\":0.0001,"
    "\"h\":1e-05,\"i\":123456789012345678,\"j\":1.0,\"k\":[],\"l\":{},\"m\":\"\"}",
    "{\"s\":[\"202\",\"1.5\",\"true\",\"yes\",\"null\",\"~\",\"a: b\",\"a #b\",\"#x\",\"-x\","
    "\"- x\",\"x:\",\"2024-01-01\",\"0x1f\",\"1e5\",\"a'b\",\"a\\\"b\",\"a\\nb\",\" lead\","
    "\"trail \",\"ünï ✓\",\"@x\",\"x,y\",\"=\",\"<<\",\"a\\tb\",\"\\u0007\",\"1_000\","
    "\"Null\",\"FALSE\",\"?x\",\":x\",\"a:b\"]}",
    "[{\"a\":1,\"b\":\"x\"},{\"a\":2,\"c\":[1,2]},{\"b\":\"y\",\"d\":{\"e\":1}}]",
    "[[1,2],[3,[4,5]],6,\"x\"]",
    "{\"List\":[{\"Name\":\"n1\",\"Value\":\"v1\"},{\"Name\":\"n2\",\"Value\":\"a much longer "
    "value than the others here\"}],\"Scalar\":\"s\",\"Nested\":{\"Deep\":{\"K\":\"V\","
    "\"K2\":\"V2\"}}}",
    "{\"wide\":{\"name\":\"日本語のテキスト\",\"é\":\"ü\",\"long\":\"" /* past 80 columns */
    "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567"
    "89\"}}",
    "\"just a string\"", "42", "null", "[]", "{}", "[\"a\",\"b\"]", "true", "1.25",
    /* rows of no columns (the table's widths start again: the first list was leaked) */
    "[{}, {}]", "[[], []]", "[{\"a\":1},{}]", "{\"x\":[{}, {\"b\":2}]}",
    /* text output upper-cases keys as Python's str.upper() does */
    "{\"straße\":[{\"üml\":1}],\"ﬁle\":[{\"ıd\":2}],\"ǆz\":[{\"ᾀ\":\"é\"}],"
    "\"ŉ\":[{\"ǰ\":3}]}",
    /* yaml: characters past U+FFFF (emoji), C1 controls and the BOM are double-quoted escapes */
    "{\"k\":\"a\\ud83d\\ude00b\",\"\\ud801\\udc28\":[\"x\\u0080y\",\"\\ufeffz\"],"
    "\"t\\\"\\ud83d\\ude00\":\"\u00e9\\ud83d\\ude00\"}",
    /* repeated keys keep their first place with the last value, past the reader's key index */
    "{\"d\":1,\"d\":2,\"e\":3,\"d\":4}",
    "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":10,\"k11\":11,\"k3\":\"x\",\"k11\":\"y\",\"k12\":12,\"k0\":[1],\"k12\":13}",
};

static const char *const formats[] = { "json", "text", "table", "yaml", "yaml-stream" };

typedef struct oracle {
    FILE *to, *from;
    pid_t pid;
} oracle_t;

static int oracle_start(oracle_t *o)
{
    int in[2], out[2];
    if (access(ORACLE_PYTHON, X_OK) != 0 || pipe(in) || pipe(out))
        return -1;
    char *script = tu_root_path("tests/support/cli_oracle.py");
    o->pid = fork();
    if (o->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(ORACLE_PYTHON, ORACLE_PYTHON, script, (char *)NULL);
        _exit(127);
    }
    free(script);
    close(in[0]);
    close(out[1]);
    o->to = fdopen(in[1], "w");
    o->from = fdopen(out[0], "r");
    return 0;
}

/* One case; returns the oracle's answer (parsed), or NULL if it is not there. */
static cJSON *ask(oracle_t *o, const char *kind, const char *input)
{
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "kind", kind);
    cJSON_AddStringToObject(q, "input", input);
    char *line = cJSON_PrintUnformatted(q);
    fprintf(o->to, "%s\n", line);
    fflush(o->to);
    free(line);
    cJSON_Delete(q);
    char *ans = NULL;
    size_t cap = 0;
    if (getline(&ans, &cap, o->from) <= 0) {
        free(ans);
        return NULL;
    }
    cJSON *a = cJSON_Parse(ans);
    free(ans);
    return a;
}

static int setup(void **state)
{
    oracle_t *o = calloc(1, sizeof *o);
    cJSON *probe = oracle_start(o) == 0 ? ask(o, "json", "{}") : NULL;
    if (!probe) {
        fprintf(stderr, "skipped: %s with the awscli package is needed\n", ORACLE_PYTHON);
        free(o);
        *state = NULL;
        return 0;
    }
    cJSON_Delete(probe);
    *state = o;
    return 0;
}

static int teardown(void **state)
{
    oracle_t *o = *state;
    if (!o)
        return 0;
    fclose(o->to);
    fclose(o->from);
    waitpid(o->pid, NULL, 0);
    free(o);
    return 0;
}

static void test_shorthand(void **state)
{
    oracle_t *o = *state;
    if (!o)
        skip();
    for (size_t i = 0; i < sizeof shorthands / sizeof shorthands[0]; i++) {
        cJSON *want = ask(o, "shorthand", shorthands[i]);
        assert_non_null(want);
        cJSON *got = NULL;
        char err[2048];
        int rc = shorthand_parse(shorthands[i], &got, err, sizeof err);
        if (cJSON_IsTrue(cJSON_GetObjectItem(want, "ok"))) {
            if (rc != 0)
                fprintf(stderr, "shorthand %s: %s\n", shorthands[i], err);
            assert_int_equal(rc, 0);
            sbuf_t b = { 0 };
            pyjson_dump(&b, got, -1);
            const char *w = cJSON_GetObjectItem(want, "text")->valuestring;
            if (strcmp(sb_str(&b), w) != 0)
                fprintf(stderr, "shorthand %s:\n  awscli %s\n  evrec  %s\n", shorthands[i], w,
                        sb_str(&b));
            assert_string_equal(sb_str(&b), w);
            sb_free(&b);
        } else {
            const char *w = cJSON_GetObjectItem(want, "error")->valuestring;
            if (rc == 0 || strcmp(err, w) != 0)
                fprintf(stderr, "shorthand %s:\n  awscli error %s\n  evrec  %s\n", shorthands[i],
                        w, rc ? err : "(parsed)");
            assert_int_not_equal(rc, 0);
            assert_string_equal(err, w);
        }
        cJSON_Delete(got);
        cJSON_Delete(want);
    }
}

static void test_formats(void **state)
{
    oracle_t *o = *state;
    if (!o)
        skip();
    for (size_t i = 0; i < sizeof cases_json / sizeof cases_json[0]; i++) {
        cJSON *v = NULL;
        char err[256];
        assert_int_equal(pyjson_parse(cases_json[i], strlen(cases_json[i]), &v, err, sizeof err), 0);
        for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
            cJSON *want = ask(o, formats[f], cases_json[i]);
            assert_non_null(want);
            out_options_t opt = { (out_format_t)f, "PutEvents", 0, 80 };
            sbuf_t b = { 0 };
            char ferr[256] = "";
            int rc = aws_format(&b, v, &opt, ferr, sizeof ferr);
            if (cJSON_IsTrue(cJSON_GetObjectItem(want, "ok"))) {
                const char *w = cJSON_GetObjectItem(want, "text")->valuestring;
                if (rc != 0 || strcmp(sb_str(&b), w) != 0)
                    fprintf(stderr, "%s of %s:\n--- awscli\n%s--- evrec\n%s---\n", formats[f],
                            cases_json[i], w, sb_str(&b));
                assert_int_equal(rc, 0);
                assert_string_equal(sb_str(&b), w);
            } else {
                /* the AWS CLI fails on it, and so must evrec, with the same words */
                assert_int_equal(rc, -1);
                assert_string_equal(ferr, cJSON_GetObjectItem(want, "error")->valuestring);
            }
            sb_free(&b);
            cJSON_Delete(want);
        }
        cJSON_Delete(v);
    }
}

/* Blob parameters with --cli-binary-format base64: what the request carries, or the error, as
 * the AWS CLI's Base64DecodeVisitor (Python's lenient b64decode) gives them. */
static void test_blobs(void **state)
{
    oracle_t *o = *state;
    if (!o)
        skip();
    static const char *const blobs[] = {
        "", "aGk=", "aGk", "aGVsbG8=", "aGVsbG8", "a", "ab", "abc", "abcd", "ab==", "ab=", "abc=",
        "ab==cd", "a=b=c=d", "ab=c=", " a G k = ", "aG\nk=", "!!aGk=!!", "YWJj====", "====",
        "=aGk=", "aGk=aGk=", "a-_b", "Y+/=", "Zg==Zg==", "Zm9v\tYmFy", "ü", "aGk=ü", "Zm=9v",
    };
    /* a model of one blob member: Kinesis's PutRecordsRequestEntry */
    int shape = -1;
    for (size_t i = 0; i < model_nshapes; i++)
        if (strcmp(model_shapes[i].name, "PutRecordsRequestEntry") == 0)
            shape = (int)i;
    assert_true(shape >= 0);
    for (size_t i = 0; i < sizeof blobs / sizeof blobs[0]; i++) {
        cJSON *want = ask(o, "blob", blobs[i]);
        assert_non_null(want);
        cJSON *params = cJSON_CreateObject();
        cJSON_AddStringToObject(params, "Data", blobs[i]);
        sbuf_t err = { 0 };
        int rc = wire_blobs_to_base64(params, shape, 1, &err);
        const char *got = rc == 0 ? cJSON_GetObjectItem(params, "Data")->valuestring : sb_str(&err);
        int ok = cJSON_IsTrue(cJSON_GetObjectItem(want, "ok"));
        const char *w = cJSON_GetObjectItem(want, ok ? "text" : "error")->valuestring;
        if ((rc == 0) != ok || strcmp(got, w) != 0)
            fprintf(stderr, "blob \"%s\": awscli %s %s, evrec %s %s\n", blobs[i],
                    ok ? "ok" : "error", w, rc == 0 ? "ok" : "error", got);
        assert_int_equal(rc == 0, ok);
        assert_string_equal(got, w);
        sb_free(&err);
        cJSON_Delete(params);
        cJSON_Delete(want);
    }
}

/* Python's json error messages, which the AWS CLI prints for a bad JSON parameter. */
static void test_json_errors(void **state)
{
    (void)state;
    static const struct { const char *in, *msg; } cases[] = {
        { "", "Expecting value: line 1 column 1 (char 0)" },
        { "{\"a\":1,}", "Expecting property name enclosed in double quotes: line 1 column 8 (char 7)" },
        { "[1,]", "Expecting value: line 1 column 4 (char 3)" },
        { "{\"a\" 1}", "Expecting ':' delimiter: line 1 column 6 (char 5)" },
        { "[1 2]", "Expecting ',' delimiter: line 1 column 4 (char 3)" },
        { "{} x", "Extra data: line 1 column 4 (char 3)" },
        { "\"abc", "Unterminated string starting at: line 1 column 1 (char 0)" },
        { "{\n  \"a\": tru\n}", "Expecting value: line 2 column 8 (char 9)" },
        { "\"\\x\"", "Invalid \\escape: line 1 column 2 (char 1)" },
        { "\"a\tb\"", "Invalid control character at: line 1 column 3 (char 2)" },
        { "\"é\" x", "Extra data: line 1 column 5 (char 4)" },
        /* not Python's: a NUL would cut the string, so it is refused rather than dropped */
        { "[\"t\\u0000x\"]",
          "NUL character (\\u0000) in a string is not supported: line 1 column 4 (char 3)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *v = NULL;
        char err[256] = "";
        assert_int_equal(pyjson_parse(cases[i].in, strlen(cases[i].in), &v, err, sizeof err), -1);
        assert_null(v);
        assert_string_equal(err, cases[i].msg);
    }
}

/* Numbers keep Python's int/float distinction and print as Python's repr. */
static void test_numbers(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        { "1", "1" }, { "-0", "0" }, { "1.0", "1.0" }, { "1e20", "1e+20" }, { "1E5", "100000.0" },
        { "0.0001", "0.0001" }, { "0.00001", "1e-05" }, { "123456789012345678", "123456789012345678" },
        { "1.5e300", "1.5e+300" }, { "-2.5", "-2.5" }, { "0.1", "0.1" }, { "1e16", "1e+16" },
        { "1e15", "1000000000000000.0" }, { "NaN", "NaN" }, { "-Infinity", "-Infinity" },
        { "3.141592653589793", "3.141592653589793" }, { "-0.0", "-0.0" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *v = NULL;
        char err[64];
        assert_int_equal(pyjson_parse(cases[i].in, strlen(cases[i].in), &v, err, sizeof err), 0);
        sbuf_t b = { 0 };
        pyjson_dump(&b, v, 4);
        assert_string_equal(sb_str(&b), cases[i].out);
        sb_free(&b);
        cJSON_Delete(v);
    }
}

/* Every format, failing each allocation in turn: the same text or "out of memory", nothing left
 * allocated (aws_output allocates through evrec_set_allocator()'s functions). */
static void test_formats_out_of_memory(void **state)
{
    (void)state;
    static const size_t docs[] = { 0, 3, 4, 5, 6, 12 }; /* indices into cases_json */
    long runs = 0, errors = 0;
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        const char *json = cases_json[docs[d]];
        cJSON *v = NULL;
        char err[256];
        assert_int_equal(pyjson_parse(json, strlen(json), &v, err, sizeof err), 0);
        for (int f = OUT_JSON; f <= OUT_YAML_STREAM; f++) {
            for (int narrow = 0; narrow < 2; narrow++) {
                out_options_t opt = { (out_format_t)f, "PutEvents", narrow, narrow ? 30 : 80 };
                sbuf_t want = { 0 };
                char ferr[256] = "";
                tu_failing_allocator(1);
                int want_rc = aws_format(&want, v, &opt, ferr, sizeof ferr);
                long total = tu_alloc_count;
                for (long n = 0; n < total; n++) {
                    sbuf_t got = { 0 };
                    tu_alloc_count = tu_alloc_live = 0;
                    tu_alloc_fail_at = n;
                    int rc = aws_format(&got, v, &opt, ferr, sizeof ferr);
                    if (rc == 0 ? want_rc != 0 || strcmp(sb_str(&got), sb_str(&want)) != 0
                                : strcmp(ferr, "out of memory") != 0 && want_rc == 0)
                        fprintf(stderr, "format %d of %s, allocation %ld failed: rc %d %s\n", f,
                                json, n, rc, rc ? ferr : sb_str(&got));
                    if (rc == 0)
                        assert_string_equal(sb_str(&got), sb_str(&want));
                    else if (want_rc == 0)
                        assert_string_equal(ferr, "out of memory");
                    errors += rc != 0;
                    sb_free(&got);
                    assert_int_equal(tu_alloc_live, 0);
                    runs++;
                }
                sb_free(&want);
                tu_failing_allocator(0);
            }
        }
        cJSON_Delete(v);
    }
    printf("allocation failure injected at each of %ld allocations of the formats: %ld errors, "
           "no leak, no other output\n", runs, errors);
    assert_true(errors > 100);
}

static const model_operation_t *operation(const char *service, const char *op)
{
    for (size_t i = 0; i < model_noperations; i++)
        if (!strcmp(model_operations[i].service_cli, service) &&
            !strcmp(model_operations[i].op_cli, op))
            return &model_operations[i];
    return NULL;
}

static int yaml_in(const char *in, cJSON **out, char *err, size_t errlen)
{
    return aws_yaml_load(in, strlen(in), out, err, errlen);
}

static int shorthand_event(const char *in, cJSON **out, char *err, size_t errlen)
{
    int event = -1;
    for (size_t i = 0; i < model_nshapes && event < 0; i++)
        if (strcmp(model_shapes[i].name, "Event") == 0)
            event = (int)i;
    assert_true(event >= 0);
    int rc = shorthand_parse(in, out, err, errlen);
    return rc == 0 ? shorthand_apply_model(out, event, err, errlen) : rc;
}

/* Reads in with read, failing each of its allocations in turn: the value the run without a
 * failure reads, or "out of memory"; nothing left allocated. Returns the runs that failed. */
static long each_allocation_fails(int (*read)(const char *, cJSON **, char *, size_t),
                                  const char *in, long *runs)
{
    char err[2048];
    long errors = 0;
    tu_failing_allocator(1);
    cJSON *want = NULL;
    assert_int_equal(read(in, &want, err, sizeof err), 0);
    sbuf_t want_text = { 0 };
    pyjson_dump(&want_text, want, -1);
    cJSON_Delete(want);
    long total = tu_alloc_count, base_live = tu_alloc_live;
    for (long n = 0; n < total; n++) {
        tu_alloc_count = 0;
        tu_alloc_fail_at = n;
        cJSON *got = NULL;
        int rc = read(in, &got, err, sizeof err);
        tu_alloc_fail_at = -1;
        if (rc != 0) {
            assert_string_equal(err, "out of memory");
        } else {
            sbuf_t text = { 0 };
            pyjson_dump(&text, got, -1);
            assert_string_equal(sb_str(&text), sb_str(&want_text));
            sb_free(&text);
        }
        errors += rc != 0;
        cJSON_Delete(got);
        if (tu_alloc_live != base_live)
            fprintf(stderr, "%s, allocation %ld failed: %ld blocks left (rc %d)\n", in, n,
                    tu_alloc_live - base_live, rc);
        assert_int_equal(tu_alloc_live, base_live);
        (*runs)++;
    }
    sb_free(&want_text);
    tu_failing_allocator(0);
    return errors;
}

/* Reading JSON and writing a request, failing each allocation in turn: the same value and the
 * same request, or an out-of-memory error; never a value or a request with a part missing. */
static void test_request_out_of_memory(void **state)
{
    (void)state;
    static const struct { const char *service, *op, *params; } cases[] = {
        { "pinpoint", "put-events",
          "{\"ApplicationId\": \"app 1\", \"EventsRequest\": {\"BatchItem\": {\"ep\": {"
          "\"Endpoint\": {\"Address\": \"a\"}, \"Events\": {\"e1\": {\"EventType\": \"t\", "
          "\"Timestamp\": \"2024-01-01T00:00:00Z\", \"Attributes\": {\"k\": \"v\"}, "
          "\"Metrics\": {\"m\": 1.5, \"n\": 2}}}}}}}" },
        { "kinesis", "put-records",
          "{\"StreamName\": \"s\", \"Records\": [{\"Data\": \"aGk=\", \"PartitionKey\": \"p\"}, "
          "{\"Data\": \"eA==\", \"PartitionKey\": \"q\", \"ExplicitHashKey\": \"1\"}]}" },
    };
    long runs = 0, errors = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const model_operation_t *op = operation(cases[c].service, cases[c].op);
        assert_non_null(op);
        char err[256];
        tu_failing_allocator(1);
        cJSON *params = NULL;
        assert_int_equal(pyjson_parse(cases[c].params, strlen(cases[c].params), &params, err,
                                      sizeof err), 0);
        sbuf_t want_path = { 0 }, want_body = { 0 };
        assert_int_equal(wire_serialize(op, params, &want_path, &want_body, err, sizeof err), 0);
        cJSON_Delete(params);
        long total = tu_alloc_count, base_live = tu_alloc_live;
        for (long n = 0; n < total; n++) {
            tu_alloc_count = 0;
            tu_alloc_fail_at = n;
            sbuf_t path = { 0 }, body = { 0 };
            int rc = pyjson_parse(cases[c].params, strlen(cases[c].params), &params, err,
                                  sizeof err);
            if (rc != 0)
                assert_non_null(strstr(err, "Out of memory"));
            else if ((rc = wire_serialize(op, params, &path, &body, err, sizeof err)) != 0)
                assert_string_equal(err, "out of memory");
            else {
                assert_string_equal(sb_str(&path), sb_str(&want_path));
                assert_string_equal(sb_str(&body), sb_str(&want_body));
            }
            errors += rc != 0;
            cJSON_Delete(params);
            params = NULL;
            sb_free(&path);
            sb_free(&body);
            assert_int_equal(tu_alloc_live, base_live);
            runs++;
        }
        sb_free(&want_path);
        sb_free(&want_body);
        tu_failing_allocator(0);
    }
    /* --cli-input-yaml; shorthand with the model's conversions (pinpoint's Event: Metrics
     * are doubles) */
    errors += each_allocation_fails(yaml_in, "a: 1\nb: [x, 2.5, true, 0x1f]\nc: {d: null, 'e': \"f\"}\na: 3\n",
                                    &runs);
    static const char *const shorthand_in[] = {
        "EventType=t,Timestamp=2024-01-01T00:00:00Z,Metrics={m=1.5,n=2},Attributes={k=v,l='x,y'}",
        "a=b,c=[d,e],f={g=h,i=[j,{k=l}]},m=\"q r\"", "a=b,c,d=e",
    };
    for (size_t c = 0; c < sizeof shorthand_in / sizeof shorthand_in[0]; c++)
        errors += each_allocation_fails(shorthand_event, shorthand_in[c], &runs);
    printf("allocation failure injected at each of %ld allocations of reading and serialising: "
           "%ld errors, no leak, no other request\n", runs, errors);
    assert_true(errors > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shorthand),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_blobs),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_formats_out_of_memory),
        cmocka_unit_test(test_request_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
