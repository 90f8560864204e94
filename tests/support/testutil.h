/* Helpers shared by the test programs (not part of the library). */
#ifndef EVREC_TESTUTIL_H
#define EVREC_TESTUTIL_H

#include <stddef.h>
#include <sys/types.h>

/** Make a fresh private temporary directory; returns a malloc'ed path. */
char *tu_tempdir(const char *tag);

/** A test's scratch store: a temporary directory, the store path inside it and the CLI to run
 *  ($EVREC_CLI, else build/evrec). tu_store_setup is a cmocka setup (it also isolates the AWS
 *  environment, tu_isolate_aws_env); tu_store_teardown removes the directory. */
typedef struct tu_store_fixture {
    char *dir;
    char store[600];
    const char *cli;
} tu_store_fixture_t;
int tu_store_setup(void **state, const char *tag);
int tu_store_teardown(void **state);

/** A recent event time for tests that record through max_event_age: "YYYY-MM-DDT10:00:00Z" of
 *  the UTC day `days_ago` days before today, written as an ISO 8601 timestamp (`iso`, ending
 *  in "Z") and as the form evrec prints back (`printed`, "...T10:00:00.000Z"); either may be
 *  NULL. Fixed dates would age past the 30-day limit and be refused. */
void tu_recent_day(int days_ago, char iso[32], char printed[32]);
/** Remove a directory tree (best effort). */
void tu_rmtree(const char *path);
/** Path of a file under the source tree ($EVREC_ROOT, or "."); malloc'ed. */
char *tu_root_path(const char *rel);

/** A running local endpoint (tools/fake_endpoint.py). */
typedef struct tu_endpoint {
    pid_t pid;
    int port;
    char url[64];      /* "http://127.0.0.1:PORT" (or https) */
    char *dir;         /* its working directory (port file, logs) */
} tu_endpoint_t;

/** Start tools/fake_endpoint.py with extra argv (NULL-terminated); waits until it listens.
 *  Returns 0 on success. */
int tu_endpoint_start(tu_endpoint_t *ep, const char *const *extra_args);
/** The same for another server script of the tree (e.g. "tools/fake_credentials.py") that
 *  takes --port-file and --log and writes "PORT SCHEME" to the port file. */
int tu_server_start(tu_endpoint_t *ep, const char *script_rel, const char *const *extra_args);
/** Stop it (SIGTERM, then SIGKILL) and remove its directory. */
void tu_endpoint_stop(tu_endpoint_t *ep);

/** HTTP GET/POST to the endpoint's control API (path like "/_fake/log"); returns the body
 *  (malloc'ed) or NULL. Uses libcurl. */
char *tu_http(const char *method, const char *url, const char *body, long *status);

/** Run a command (argv, no shell) and capture stdout (malloc'ed) and exit status. */
int tu_run(const char *const *argv, const char *stdin_data, char **out, char **err);

/** Validate a JSON document against a shape of botocore's model of `service` ("pinpoint",
 *  "personalize-events") with tests/support/validate_shape.py run by $EVREC_PYTHON. Returns its
 *  exit status (0 valid, 1 invalid, 2 usage); *report (if not NULL) gets its stderr
 *  (malloc'ed). */
int tu_validate_shape(const char *service, const char *shape, const char *json, char **report);

/** Validate a PutEvents request body as sent on the wire with tests/support/validate_request.py
 *  (`service` "pinpoint" or "personalize"; `application_id` for Pinpoint's path, may be NULL).
 *  Returns its exit status (0 valid, 1 invalid, 2 usage); *report (if not NULL) gets its
 *  output (malloc'ed). */
int tu_validate_request(const char *service, const char *application_id, const char *body,
                        char **report);

/** `n` copies of the string `unit` (e.g. a multi-byte UTF-8 character); malloc'ed. */
char *tu_repeat(const char *unit, size_t n);

/** Keep the machine's AWS set-up out of a test: no config/credentials files, profile, keys or
 *  endpoint overrides from the environment; AWS_REGION=us-east-1. */
void tu_isolate_aws_env(void);

/* The seed of a randomized test: EVREC_TEST_SEED if set (to repeat a run), else a fresh one.
 * Prints "<what>: seed N (EVREC_TEST_SEED=N repeats this run)" either way. */
unsigned long long tu_seed(const char *what);

/* An allocator for evrec_set_allocator() that fails exactly one allocation: the one numbered
 * tu_alloc_fail_at (-1: none), counting malloc and realloc calls in tu_alloc_count, with the
 * blocks still allocated in tu_alloc_live. tu_failing_allocator(1) installs it (counters to
 * zero, nothing failing), tu_failing_allocator(0) puts the C library's back. */
extern long tu_alloc_count, tu_alloc_live, tu_alloc_fail_at;
void tu_failing_allocator(int on);

#endif
