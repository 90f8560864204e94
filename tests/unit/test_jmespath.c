/*
 * JMESPath: every case is evaluated by our implementation and by the Python reference
 * implementation (the one the AWS CLI uses, via tests/support/jmespath_oracle.py); results
 * must be equal as JSON values with keys in the same order and every number of the same
 * Python type (ints exact), and an expression must fail in both or in neither.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "jmespath.h"
#include "testutil.h"

static const char *const doc_people =
    "{\"people\":[{\"name\":\"a\",\"age\":30,\"tags\":[\"x\",\"y\"]},"
    "{\"name\":\"b\",\"age\":25,\"tags\":[]},{\"name\":\"c\",\"age\":40,\"tags\":[\"z\"]},"
    "{\"name\":\"d\",\"age\":null}],"
    "\"foo\":{\"bar\":{\"baz\":[1,2,3]},\"qux\":\"v\",\"n\":-3.5},"
    "\"matrix\":[[1,2],[3,[4,5]],6],\"empty\":[],\"s\":\"h\\u00e9llo\",\"t\":true,"
    "\"odd key\":{\"with\\\"quote\":1}}";

static const char *const doc_results =
    "{\"Results\":{\"ep-1\":{\"EndpointItemResponse\":{\"Message\":\"Accepted\","
    "\"StatusCode\":202},\"EventsItemResponse\":{\"e1\":{\"Message\":\"Accepted\","
    "\"StatusCode\":202},\"e2\":{\"Message\":\"bad\",\"StatusCode\":400}}},"
    "\"ep-2\":{\"EndpointItemResponse\":{\"Message\":\"Accepted\",\"StatusCode\":202},"
    "\"EventsItemResponse\":{\"e3\":{\"Message\":\"Accepted\",\"StatusCode\":202}}}}}";

static const char *const exprs[] = {
    /* identifiers, sub-expressions, quoting */
    "foo", "foo.bar", "foo.bar.baz", "foo.nope.deeper", "\"odd key\".\"with\\\"quote\"",
    "\"foo\".\"qux\"", "@", "@.foo.qux", "s", "t",
    /* index and slice */
    "foo.bar.baz[0]", "foo.bar.baz[-1]", "foo.bar.baz[5]", "foo.bar.baz[-4]",
    "foo.bar.baz[::-1]", "foo.bar.baz[1:]", "foo.bar.baz[:2]", "foo.bar.baz[::2]",
    "foo.bar.baz[-2:]", "foo.bar.baz[5:1:-1]", "foo.bar.baz[10:]", "foo.bar.baz[0:0]",
    "people[1:3].name", "people[::2].age", "foo.qux[0]",
    /* projections */
    "people[*].name", "people[*].tags[0]", "people[].name", "matrix[]", "matrix[][]",
    "matrix[*][0]", "foo.*", "foo.*.baz", "*.bar", "Results.*.EventsItemResponse.*.StatusCode",
    "Results.*.EventsItemResponse.*.StatusCode[]", "Results.\"ep-1\".EventsItemResponse.e2",
    "people[*].tags[]", "people[*]", "empty[*].x", "foo.bar.*", "foo[*]",
    /* filters and comparisons */
    "people[?age > `26`].name", "people[?age >= `30`].name", "people[?age < `30`]",
    "people[?age <= `30`].name", "people[?age == `25`].name", "people[?age != `25`].name",
    "people[?name == 'a'].age", "people[?tags].name", "people[?!tags].name",
    "people[?age > `26` && name != 'c'].name", "people[?age < `26` || name == 'c'].name",
    "people[?age == null].name", "people[?tags[0] == 'x'] | [0].name",
    "people[?contains(tags, 'z')].name", "Results.*.EventsItemResponse.*[?StatusCode==`400`][]",
    "people[?name > 'a']", "foo.bar.baz[?@ > `1`]",
    /* and / or / not / pipes / paren */
    "foo.nope || foo.qux", "foo.qux && foo.n", "empty && foo.qux", "!empty", "!t",
    "people | [0]", "people[*].name | [1]", "people[*].name | length(@)", "(foo).qux",
    "foo.bar.baz | [1:]", "people[0] | name",
    /* multi-select */
    "[foo.qux, foo.n]", "{q: foo.qux, n: foo.n}", "people[*].[name, age]",
    "people[*].{N: name, A: age}", "nope.[a, b]", "nope.{a: a}", "foo.[qux, bar.baz[0]]",
    "{\"quoted key\": foo.qux}",
    /* literals */
    "`\"lit\"`", "'raw'", "`[1, 2, {\"a\": 3}]`", "`true`", "`null`", "'it\\'s'",
    "`foo`", "'\\\\'", "'a\\b'", "'\\\\\\''", "`\"a\\`b\"`",
    /* numbers keep Python's int or float */
    "`1e3`", "`12345678901234567890`", "`-0`", "`-0.0`", "`[1.0, 2, 3e2, {\"k\": 2.50}]`",
    "avg(`[312, 312]`)", "sum(`[1.5, 2.5]`)", "sum(`[1, 2]`)", "abs(`-3`)", "abs(`-3.0`)",
    "ceil(`1.5`)", "floor(`-2.5`)", "floor(`7`)", "max(`[1.0, 2.0]`)", "to_number('1.0')",
    "to_number('1e3')", "to_number(' 1_000 ')", "to_number('-007')", "to_number('0x10')",
    "to_number('12345678901234567890')", "merge(`{\"a\": 1, \"b\": 2}`, `{\"a\": 3}`)",
    /* functions */
    "length(people)", "length(s)", "length(foo)", "keys(foo)", "values(foo.bar)",
    "sort(foo.bar.baz)", "sort(people[*].name)", "sort_by(people[?age], &age)[*].name",
    "max_by(people[?age], &age).name", "min_by(people[?age], &age).name",
    "max(people[?age].age)", "min(people[*].name)", "sum(foo.bar.baz)", "avg(foo.bar.baz)",
    "avg(empty)", "abs(foo.n)", "ceil(foo.n)", "floor(foo.n)", "contains(s, 'll')",
    "starts_with(s, 'h')", "ends_with(s, 'lo')", "join(', ', people[*].name)",
    "reverse(foo.bar.baz)", "reverse(s)", "to_array(foo.qux)", "to_array(foo.bar.baz)",
    "to_string(foo.bar)", "to_string(foo.qux)", "to_number('12.5')", "to_number('x')",
    "to_number(foo.n)", "type(foo)", "type(people)", "type(t)", "type(nope)",
    "not_null(nope, foo.qux)", "merge(foo, `{\"qux\": 1, \"new\": 2}`)",
    "map(&name, people)", "map(&tags[0], people)", "length(Results)",
    "keys(Results) | sort(@)", "sort_by(people[?age], &name) | [-1].name",
    /* errors (must fail in both) */
    "foo.", "foo[", "[?", "foo.bar[", "foo ==", "length()", "length(foo, foo)", "nosuch(foo)",
    "length(`1`)", "sort(people)", "foo.bar.baz[::0]", "abs('x')", "sum(people)", "`{bad`",
    "\"foo\"(foo)", "foo]", "&foo", "a.{b}", "foo[1:2:3:4]", "= 1", "foo | ", "{a: b,}",
    "max_by(people, &tags)", "sort_by(people, &age)",
};

/* The oracle's "numbers" for our result: "i:<digits>" or "f" for each number, in order, as
 * the CLI's printer reads them (the literal kept in valuestring; without one, integral is int). */
static void kinds_of(const cJSON *v, cJSON *out)
{
    if (cJSON_IsNumber(v)) {
        char buf[400];
        const char *lit = v->valuestring;
        if (lit ? !strpbrk(lit, ".eEIN") : v->valuedouble == floor(v->valuedouble)) {
            if (lit && lit[0] == '-' && strspn(lit + 1, "0") == strlen(lit + 1))
                lit = "0";
            if (lit)
                snprintf(buf, sizeof buf, "i:%.390s", lit);
            else
                snprintf(buf, sizeof buf, "i:%.0f", v->valuedouble);
            cJSON_AddItemToArray(out, cJSON_CreateString(buf));
        } else {
            cJSON_AddItemToArray(out, cJSON_CreateString("f"));
        }
    }
    for (const cJSON *c = v->child; c; c = c->next)
        kinds_of(c, out);
}

static char *number_kinds(const cJSON *v)
{
    cJSON *out = cJSON_CreateArray();
    kinds_of(v, out);
    char *s = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return s;
}

static char *case_line(const char *expr, const char *doc)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "expr", expr);
    cJSON_AddItemToObject(o, "data", cJSON_Parse(doc));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void matches_reference(void **state)
{
    (void)state;
    const char *docs[] = { doc_people, doc_results };
    size_t nexpr = sizeof exprs / sizeof exprs[0];
    size_t total = nexpr * 2, used = 0, cap = 1 << 16;
    char *input = malloc(cap);
    input[0] = '\0';
    for (size_t d = 0; d < 2; d++)
        for (size_t i = 0; i < nexpr; i++) {
            char *line = case_line(exprs[i], docs[d]);
            size_t l = strlen(line);
            while (used + l + 2 > cap)
                input = realloc(input, cap *= 2);
            memcpy(input + used, line, l);
            used += l;
            input[used++] = '\n';
            input[used] = '\0';
            free(line);
        }
    const char *py = getenv("EVREC_PYTHON");
    char *oracle = tu_root_path("tests/support/jmespath_oracle.py");
    const char *argv[] = { py && *py ? py : "python3", oracle, NULL };
    char *out = NULL, *err = NULL;
    int rc = tu_run(argv, input, &out, &err);
    if (rc != 0)
        print_error("oracle failed (%d): %s\n", rc, err ? err : "");
    assert_int_equal(rc, 0);
    size_t checked = 0, failures = 0, errors_both = 0;
    char *save = NULL;
    char *line = strtok_r(out, "\n", &save);
    for (size_t c = 0; c < total; c++) {
        assert_non_null(line);
        const char *expr = exprs[c % nexpr];
        const char *doc = docs[c / nexpr];
        cJSON *want = cJSON_Parse(line);
        assert_non_null(want);
        cJSON *data = cJSON_Parse(doc);
        cJSON *got = NULL;
        char msg[512];
        int ours = jp_search(expr, data, &got, msg, sizeof msg);
        int ref_ok = cJSON_IsTrue(cJSON_GetObjectItem(want, "ok"));
        if (ref_ok != (ours == 0)) {
            print_error("expr %s: reference %s, ours %s (%s)\n", expr, ref_ok ? "ok" : "error",
                        ours == 0 ? "ok" : "error", ours == 0 ? "" : msg);
            failures++;
        } else if (ref_ok) {
            cJSON *ref = cJSON_GetObjectItem(want, "result");
            char *a = cJSON_PrintUnformatted(ref), *b = cJSON_PrintUnformatted(got);
            char *kinds = number_kinds(got);
            char *ref_kinds = cJSON_PrintUnformatted(cJSON_GetObjectItem(want, "numbers"));
            /* the printed forms compare key order too */
            if (!cJSON_Compare(ref, got, 1) || strcmp(a, b) != 0) {
                print_error("expr %s: reference %s, ours %s\n", expr, a, b);
                failures++;
            } else if (strcmp(kinds, ref_kinds) != 0) {
                print_error("expr %s: numbers: reference %s, ours %s\n", expr, ref_kinds, kinds);
                failures++;
            }
            free(a);
            free(b);
            free(kinds);
            free(ref_kinds);
        } else {
            assert_true(strlen(msg) > 0);
            errors_both++;
        }
        checked++;
        cJSON_Delete(got);
        cJSON_Delete(data);
        cJSON_Delete(want);
        line = strtok_r(NULL, "\n", &save);
    }
    assert_int_equal(checked, total);
    assert_true(errors_both > 20); /* the error cases really were errors in both */
    assert_int_equal(failures, 0);
    free(input);
    free(out);
    free(err);
    free(oracle);
}

/* cJSON values counted through cJSON's allocation hooks: what a search leaves behind. */
static long live_values;
static void *count_malloc(size_t n)
{
    live_values++;
    return malloc(n);
}
static void count_free(void *p)
{
    if (p)
        live_values--;
    free(p);
}

/* A sort key whose evaluation fails after it has built part of its value (a multi-select
 * list) is freed with the others (`make fuzz` found it leaked). */
static void failed_key_not_leaked(void **state)
{
    (void)state;
    static const char *const exprs_failing[] = {
        "sort_by(@, &[length(a)])", "max_by(@, &[a, length(a)])", "min_by(@, &{k: length(a)})",
        "sort_by(@, &a)", "sort_by(@, &[length(@)])", "to_string(length(a))",
    };
    cJSON_Hooks hooks = { count_malloc, count_free };
    cJSON_InitHooks(&hooks);
    for (size_t i = 0; i < sizeof exprs_failing / sizeof exprs_failing[0]; i++) {
        cJSON *data = cJSON_Parse("[{\"a\": 1}, {\"a\": 2}, 3]"), *r = NULL;
        char msg[256];
        assert_int_equal(jp_search(exprs_failing[i], data, &r, msg, sizeof msg), -1);
        assert_null(r);
        cJSON_Delete(data);
        if (live_values != 0)
            print_error("%s: %ld cJSON allocations left\n", exprs_failing[i], live_values);
        assert_int_equal(live_values, 0);
    }
    cJSON_InitHooks(NULL);
}

static void syntax_error_message(void **state)
{
    (void)state;
    cJSON *data = cJSON_Parse("{}"), *r = (cJSON *)1;
    char msg[512];
    assert_int_equal(jp_search("foo[", data, &r, msg, sizeof msg), -1);
    assert_null(r);
    assert_non_null(strstr(msg, "Bad jmespath expression"));
    assert_int_equal(jp_search("length(`1`)", data, &r, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "In function length(), invalid type for value: 1"));
    assert_int_equal(jp_search("foo", data, &r, NULL, 0), 0);
    assert_true(cJSON_IsNull(r));
    cJSON_Delete(r);
    cJSON_Delete(data);
}

/* Hostile nesting is refused with a message instead of exhausting the stack; evaluation depth
 * follows parse depth, so it is bounded too. */
static void deep_nesting_refused(void **state)
{
    (void)state;
    size_t n = 100000;
    char *expr = malloc(2 * n + 2);
    memset(expr, '(', n);
    expr[n] = 'a';
    memset(expr + n + 1, ')', n);
    expr[2 * n + 1] = '\0';
    cJSON *data = cJSON_Parse("{\"a\":1}"), *r = NULL;
    char msg[256];
    assert_int_equal(jp_search(expr, data, &r, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "nested"));
    /* 200 levels are fine. */
    memset(expr, '(', 200);
    expr[200] = 'a';
    memset(expr + 201, ')', 200);
    expr[401] = '\0';
    assert_int_equal(jp_search(expr, data, &r, msg, sizeof msg), 0);
    assert_true(cJSON_IsNumber(r));
    cJSON_Delete(r);
    cJSON_Delete(data);
    free(expr);
}

/* Every allocation a search makes goes through evrec_set_allocator()'s functions (its own and
 * cJSON's); failing each one in turn gives the same result or an "out of memory" error, and
 * leaves nothing allocated. */
static void every_allocation_may_fail(void **state)
{
    (void)state;
    static const char *const exprs_all[] = {
        "people[?age > `26`].name", "foo.bar.baz[::-1]", "people[*].{N: name, T: tags[0]}",
        "matrix[][]", "foo.*.baz | [0]", "\"odd key\".\"with\\\"quote\"", "`[1, 2.5, {\"a\": -0}]`",
        "'raw' || foo", "!empty && t", "people[1:3].[name, age]", "sort_by(people[?age], &age)[*].name",
        "max_by(people[?age], &age)", "min_by(people[?age], &name).name", "sort(people[*].name)",
        "join(', ', people[*].name)", "keys(foo)", "values(foo.bar)", "merge(foo, `{\"qux\": 1}`)",
        "reverse(s)", "reverse(foo.bar.baz)", "to_array(foo.qux)", "to_number(' 1_0 ')",
        "to_number('1.5')", "to_string(foo.bar)", "type(foo)", "length(s)", "map(&name, people)",
        "not_null(nope, foo.qux)", "abs(foo.n)", "ceil(foo.n)", "floor(`2.5`)", "avg(foo.bar.baz)",
        "sum(foo.bar.baz)", "max(foo.bar.baz)", "min(people[*].name)", "contains(s, 'll')",
        "starts_with(s, 'h')", "ends_with(s, 'o')", "`foo`", "length(`1`)", "foo[",
        "sort_by(@, &[length(a)])",
    };
    cJSON *data = cJSON_Parse(doc_people);
    assert_non_null(data);
    long runs = 0, oom_errors = 0;
    for (size_t i = 0; i < sizeof exprs_all / sizeof exprs_all[0]; i++) {
        cJSON *want = NULL;
        char want_msg[512], msg[512];
        tu_failing_allocator(1);
        int want_rc = jp_search(exprs_all[i], data, &want, want_msg, sizeof want_msg);
        long total = tu_alloc_count;
        char *want_text = want_rc == 0 ? cJSON_PrintUnformatted(want) : NULL;
        cJSON_Delete(want);
        for (long n = 0; n < total; n++) {
            cJSON *got = NULL;
            tu_alloc_count = 0;
            tu_alloc_fail_at = n;
            tu_alloc_live = 0;
            int rc = jp_search(exprs_all[i], data, &got, msg, sizeof msg);
            tu_alloc_fail_at = -1;
            char *got_text = rc == 0 ? cJSON_PrintUnformatted(got) : NULL;
            if (rc == 0 ? want_rc != 0 || strcmp(got_text, want_text) != 0
                        : strcmp(msg, "out of memory") != 0 && strcmp(msg, want_msg) != 0)
                print_error("%s, allocation %ld failed: rc %d, %s (expected %s)\n", exprs_all[i],
                            n, rc, rc == 0 ? got_text : msg, want_rc == 0 ? want_text : want_msg);
            if (rc == 0)
                assert_string_equal(got_text, want_text);
            else if (strcmp(msg, want_msg) != 0)
                assert_string_equal(msg, "out of memory");
            oom_errors += rc != 0 && strcmp(msg, "out of memory") == 0;
            cJSON_free(got_text);
            cJSON_Delete(got);
            if (tu_alloc_live != 0)
                print_error("%s, allocation %ld failed: %ld blocks left\n", exprs_all[i], n,
                            tu_alloc_live);
            assert_int_equal(tu_alloc_live, 0);
            runs++;
        }
        tu_failing_allocator(0);
        cJSON_free(want_text);
    }
    cJSON_Delete(data);
    printf("allocation failure injected at each of %ld allocations: %ld \"out of memory\", "
           "no leak, no other result\n", runs, oom_errors);
    assert_true(oom_errors > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_reference),
        cmocka_unit_test(deep_nesting_refused),
        cmocka_unit_test(syntax_error_message),
        cmocka_unit_test(failed_key_not_leaked),
        cmocka_unit_test(every_allocation_may_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
