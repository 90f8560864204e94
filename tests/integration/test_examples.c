/*
 * The examples in examples/ are programs people copy: each one runs here against the local
 * endpoint, and what it was meant to deliver must arrive (counted in the endpoint's log).
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

#include "testutil.h"

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Run examples/<name> with a fresh store against a fresh endpoint; returns the endpoint's log
 * (malloc'ed) and the program's exit status in *status. */
static char *run_example_on(const char *name, const char *extra, const char *const *ep_argv,
                            int *status, char **stdout_out)
{
    tu_endpoint_t ep;
    assert_int_equal(tu_endpoint_start(&ep, ep_argv), 0);
    char *dir = tu_tempdir("example");
    char store[600], prog[600];
    snprintf(store, sizeof store, "%s/store", dir);
    const char *build = getenv("EVREC_BUILD");
    snprintf(prog, sizeof prog, "%s/examples/%s", build && *build ? build : "build", name);
    char *path = tu_root_path(prog);
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    const char *argv[] = { path, store, ep.url, extra, NULL };
    char *out = NULL, *err = NULL;
    *status = tu_run(argv, NULL, &out, &err);
    if (*status != 0)
        print_error("%s exited %d:\n%s%s\n", name, *status, out ? out : "", err ? err : "");
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/log", ep.url);
    long http = 0;
    char *log = tu_http("GET", url, NULL, &http);
    assert_int_equal(http, 200);
    if (stdout_out) {
        *stdout_out = out;
        out = NULL;
    }
    free(out);
    free(err);
    free(path);
    tu_endpoint_stop(&ep);
    tu_rmtree(dir);
    free(dir);
    return log;
}

static char *run_example(const char *name, const char *extra, int *status)
{
    return run_example_on(name, extra, NULL, status, NULL);
}

static void firmware_superloop(void **state)
{
    (void)state;
    int status;
    char *log = run_example("firmware_superloop", "40", &status);
    assert_int_equal(status, 0);
    assert_int_equal(count(log, "\"sensor.reading\""), 40);
    free(log);
}

/* Run firmware_superloop against an endpoint started with ep_argv: the 10 ms loop keeps its
 * ticks, no evrec_poll_budget() call holds it for much more than its 2 ms budget (evrec_poll()
 * would hold it for a whole request), and every reading is still delivered. */
static void superloop_on_time(const char *const *ep_argv)
{
    int status;
    char *out = NULL;
    char *log = run_example_on("firmware_superloop", "60", ep_argv, &status, &out);
    assert_int_equal(status, 0);
    assert_int_equal(count(log, "\"sensor.reading\""), 60);
    assert_non_null(out);
    const char *p = strstr(out, "longest poll ");
    assert_non_null(p);
    unsigned long longest = strtoul(p + strlen("longest poll "), NULL, 10);
    print_message("firmware_superloop against %s %s: %s", ep_argv[0], ep_argv[1], p);
    assert_true(longest <= 2 + 50); /* budget + 50 ms: a bound, not a benchmark */
    assert_non_null(strstr(out, "delivered 60,"));
    free(out);
    free(log);
}

/* Every answer 500 ms late. */
static void firmware_superloop_slow_server(void **state)
{
    (void)state;
    const char *ep_argv[] = { "--slow-ms", "500", NULL };
    superloop_on_time(ep_argv);
}

/* Slow, and failing first: a 503 and a dropped connection, then answers (the two full-jitter
 * backoffs, at most 1 s and 2 s, fit in the example's final 5 s flush). */
static void firmware_superloop_faulting_server(void **state)
{
    (void)state;
    const char *ep_argv[] = { "--script", "503,drop,ok", "--slow-ms", "300", NULL };
    superloop_on_time(ep_argv);
}

static void sensor_daemon(void **state)
{
    (void)state;
    int status;
    char *log = run_example("sensor_daemon", "30", &status);
    assert_int_equal(status, 0);
    assert_int_equal(count(log, "\"sensor.temperature\""), 30);
    assert_true(count(log, "sensor-board") >= 1); /* the endpoint profile travelled along */
    free(log);
}

static void app_sessions(void **state)
{
    (void)state;
    int status;
    char *log = run_example("app_sessions", NULL, &status);
    assert_int_equal(status, 0);
    /* start, pause, resume, pause, (timeout) stop + start, stop */
    assert_int_equal(count(log, "\"_session.start\""), 2);
    assert_int_equal(count(log, "\"_session.stop\""), 2);
    assert_int_equal(count(log, "\"_session.pause\""), 2);
    assert_int_equal(count(log, "\"_session.resume\""), 1);
    assert_int_equal(count(log, "\"screen.view\""), 2);
    assert_int_equal(count(log, "\"purchase\""), 1);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(firmware_superloop),
        cmocka_unit_test(firmware_superloop_slow_server),
        cmocka_unit_test(firmware_superloop_faulting_server),
        cmocka_unit_test(sensor_daemon),
        cmocka_unit_test(app_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
