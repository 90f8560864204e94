/*
 * The libcurl transport against tools/fake_credentials.py on 127.0.0.1: headers captured,
 * keep-alive, Retry-After and Date, the response cap, timeouts, refused and reset
 * connections, TLS verified by default (and failing closed with the wrong CA), mutual TLS,
 * and verbose output that never shows a secret.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "evrec.h"
#include "fakecreds.h"
#include "port.h"
#include "sigv4.h"
#include "transport.h"

typedef struct fixture {
    char *pki;
    tu_endpoint_t http, https;
} fixture_t;

static int setup(void **state)
{
    setenv("NO_PROXY", "127.0.0.1", 1);
    unsetenv("AWS_CA_BUNDLE");
    fixture_t *f = calloc(1, sizeof *f);
    f->pki = tu_tempdir("pki");
    if (!f->pki || fc_make_pki(f->pki) != 0 || fc_start(&f->http, NULL, NULL) != 0 ||
        fc_start(&f->https, f->pki, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_stop(&f->http);
    tu_endpoint_stop(&f->https);
    tu_rmtree(f->pki);
    free(f->pki);
    free(f);
    return 0;
}

static char *url(const tu_endpoint_t *ep, const char *path)
{
    char *u = NULL;
    assert_true(asprintf(&u, "%s%s", ep->url, path) > 0);
    return u;
}

/* Send and expect a response; returns the status. */
static long send_ok(transport_t *t, const char *method, const char *u, const char *const *h,
                    const char *body, transport_response_t *r)
{
    char err[256];
    int rc = transport_send(t, method, u, h, body, body ? strlen(body) : 0, r, err, sizeof err);
    if (rc != EVREC_OK)
        fail_msg("transport_send %s: %d %s", u, rc, err);
    return r->status;
}

static const char *echoed_header(cJSON *echo, const char *name)
{
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(echo, "headers");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(hs, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void headers_and_body(void **state)
{
    fixture_t *f = *state;
    transport_t *t;
    assert_int_equal(transport_new(&t, NULL), EVREC_OK);
    transport_response_t r;

    char *u = url(&f->http, "/_t/echo?status=201&h=x-amzn-RequestId:req-123"
                            "&h=x-amzn-ErrorType:BadRequestException:http://internal.example/");
    const char *body = "{\"hello\":\"world\"}";
    const char *const h[] = { "Content-Type: application/json", "X-Custom: one", NULL };
    assert_int_equal(send_ok(t, "POST", u, h, body, &r), 201);
    assert_string_equal(r.request_id, "req-123");
    assert_string_equal(r.error_type, "BadRequestException");
    assert_string_equal(r.content_type, "application/json");
    assert_true(transport_date_ms(&r) > 0);
    assert_int_equal(r.retry_after_ms, -1);
    cJSON *echo = cJSON_Parse(r.body);
    assert_non_null(echo);
    assert_string_equal(cJSON_GetObjectItem(echo, "method")->valuestring, "POST");
    assert_int_equal(cJSON_GetObjectItem(echo, "body_len")->valueint, strlen(body));
    char hex[65];
    sigv4_sha256_hex(body, strlen(body), hex);
    assert_string_equal(cJSON_GetObjectItem(echo, "body_sha256")->valuestring, hex);
    assert_string_equal(echoed_header(echo, "user-agent"), "evrec/" EVREC_VERSION_STRING);
    assert_string_equal(echoed_header(echo, "x-custom"), "one");
    assert_string_equal(echoed_header(echo, "content-type"), "application/json");
    assert_null(echoed_header(echo, "expect"));
    cJSON_Delete(echo);
    transport_response_clear(&r);
    free(u);

    /* GET after POST on the same handle; a caller's User-Agent wins; no Content-Type is
     * invented. */
    u = url(&f->http, "/_t/echo");
    const char *const h2[] = { "User-Agent: app/2", NULL };
    assert_int_equal(send_ok(t, "GET", u, h2, NULL, &r), 200);
    echo = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(echo, "method")->valuestring, "GET");
    assert_string_equal(echoed_header(echo, "user-agent"), "app/2");
    assert_null(echoed_header(echo, "content-type"));
    assert_int_equal(cJSON_GetObjectItem(echo, "body_len")->valueint, 0);
    cJSON_Delete(echo);
    transport_response_clear(&r);

    /* A header line without ':' is refused before anything is sent. */
    const char *const bad[] = { "NoColonHere", NULL };
    char err[128];
    assert_int_equal(transport_send(t, "GET", u, bad, NULL, 0, &r, err, sizeof err),
                     EVREC_E_INVALID);
    assert_non_null(strstr(err, "header"));
    /* A CR or LF in a value (a session token read from a file) would end the line and inject
     * a header of the sender's choosing: refused, naming the header and never the value. */
    const char *const inject[] = { "Content-Type: application/json",
                                   "X-Amz-Security-Token: tok\r\nX-Injected: yes", NULL };
    assert_int_equal(transport_send(t, "GET", u, inject, NULL, 0, &r, err, sizeof err),
                     EVREC_E_INVALID);
    assert_non_null(strstr(err, "'X-Amz-Security-Token'"));
    assert_non_null(strstr(err, "control character"));
    assert_null(strstr(err, "tok"));
    const char *const lf_only[] = { "X-Custom: a\nb", NULL };
    assert_int_equal(transport_send(t, "GET", u, lf_only, NULL, 0, &r, err, sizeof err),
                     EVREC_E_INVALID);
    const char *const bad_name[] = { "X Custom: a", NULL };
    assert_int_equal(transport_send(t, "GET", u, bad_name, NULL, 0, &r, err, sizeof err),
                     EVREC_E_INVALID);
    /* a tab in a value is fine, and the handle still works after the refusals */
    const char *const tab[] = { "X-Custom: a\tb", NULL };
    assert_int_equal(send_ok(t, "GET", u, tab, NULL, &r), 200);
    echo = cJSON_Parse(r.body);
    assert_string_equal(echoed_header(echo, "x-custom"), "a\tb");
    assert_null(echoed_header(echo, "x-injected"));
    cJSON_Delete(echo);
    transport_response_clear(&r);
    free(u);
    transport_free(t);
}

static void keep_alive(void **state)
{
    fixture_t *f = *state;
    long before = fc_stat(&f->http, NULL, "connections");
    assert_true(before > 0);
    transport_t *t;
    assert_int_equal(transport_new(&t, NULL), EVREC_OK);
    char *u = url(&f->http, "/_t/echo");
    for (int i = 0; i < 3; i++) {
        transport_response_t r;
        assert_int_equal(send_ok(t, i == 1 ? "POST" : "GET", u, NULL, i == 1 ? "x" : NULL, &r),
                         200);
        transport_response_clear(&r);
    }
    long after = fc_stat(&f->http, NULL, "connections");
    /* one connection for the three requests, one for the second stats call */
    assert_int_equal(after - before, 2);
    free(u);
    transport_free(t);
}

static void retry_after_and_date(void **state)
{
    fixture_t *f = *state;
    transport_t *t;
    assert_int_equal(transport_new(&t, NULL), EVREC_OK);
    transport_response_t r;

    char *u = url(&f->http, "/_t/echo?status=429&h=Retry-After:120");
    assert_int_equal(send_ok(t, "GET", u, NULL, NULL, &r), 429);
    assert_int_equal(r.retry_after_ms, 120000);
    transport_response_clear(&r);
    free(u);

    u = url(&f->http, "/_t/echo?status=503&h=Retry-After:99999999999");
    send_ok(t, "GET", u, NULL, NULL, &r);
    assert_int_equal(r.retry_after_ms, 24LL * 3600 * 1000);
    transport_response_clear(&r);
    free(u);

    /* An HTTP-date Retry-After counts from the response's own Date, not the device clock. */
    u = url(&f->http, "/_t/echo?status=503&date=Sun,%2006%20Nov%202033%2008:49:37%20GMT"
                      "&h=Retry-After:Sun,%2006%20Nov%202033%2008:51:07%20GMT");
    send_ok(t, "GET", u, NULL, NULL, &r);
    assert_int_equal(transport_date_ms(&r), 2014879777000LL);
    assert_int_equal(r.retry_after_ms, 90000);
    transport_response_clear(&r);
    free(u);

    u = url(&f->http, "/_t/echo?status=503&h=Retry-After:soon");
    send_ok(t, "GET", u, NULL, NULL, &r);
    assert_int_equal(r.retry_after_ms, -1);
    transport_response_clear(&r);
    free(u);
    transport_free(t);
}

static void response_cap(void **state)
{
    fixture_t *f = *state;
    transport_config_t cfg = { .max_response_bytes = 100000 };
    transport_t *t;
    assert_int_equal(transport_new(&t, &cfg), EVREC_OK);
    transport_response_t r;
    char err[256];
    const char *paths[] = { "/_t/huge?bytes=300000", "/_t/huge?bytes=300000&chunked=1" };
    for (int i = 0; i < 2; i++) {
        char *u = url(&f->http, paths[i]);
        assert_int_equal(transport_send(t, "GET", u, NULL, NULL, 0, &r, err, sizeof err),
                         EVREC_E_RESPONSE);
        assert_non_null(strstr(err, "100000"));
        assert_null(r.body);
        free(u);
    }
    /* Up to the cap is fine, and the handle still works after the aborted transfers. */
    char *u = url(&f->http, "/_t/huge?bytes=100000&chunked=1");
    assert_int_equal(send_ok(t, "GET", u, NULL, NULL, &r), 200);
    assert_int_equal(r.body_len, 100000);
    assert_int_equal(strlen(r.body), 100000);
    transport_response_clear(&r);
    free(u);
    transport_free(t);
}

static void timeouts(void **state)
{
    fixture_t *f = *state;
    transport_config_t cfg = { .request_timeout_ms = 300 };
    transport_t *t;
    assert_int_equal(transport_new(&t, &cfg), EVREC_OK);
    transport_response_t r;
    char err[256];
    const char *paths[] = { "/_t/slow?ms=3000", "/_t/slow?ms=3000&stall=1" };
    for (int i = 0; i < 2; i++) {
        char *u = url(&f->http, paths[i]);
        assert_int_equal(transport_send(t, "GET", u, NULL, NULL, 0, &r, err, sizeof err),
                         EVREC_E_NET_TIMEOUT);
        assert_non_null(strstr(err, "127.0.0.1"));
        assert_true(evrec_error_is_retryable(EVREC_E_NET_TIMEOUT));
        free(u);
    }
    transport_free(t);
}

/* The same exchange without blocking: each transport_advance(…, 0) returns at once while the
 * server takes its 400 ms, the sockets to wait on are given, and the answer arrives whole;
 * finishing before the end abandons the request with a network error, and the handle still
 * serves the next one. */
static void started_advanced_finished(void **state)
{
    fixture_t *f = *state;
    transport_t *t;
    assert_int_equal(transport_new(&t, NULL), EVREC_OK);
    transport_response_t r;
    char err[256];
    size_t n = 0;
    assert_int_equal(transport_wait_hint(t, NULL, 0, &n), UINT32_MAX); /* nothing in flight */
    assert_int_equal(n, 0);
    char *u = url(&f->http, "/_t/slow?ms=400");
    assert_int_equal(transport_start(t, "GET", u, NULL, NULL, 0, &r, err, sizeof err), EVREC_OK);
    assert_int_equal(transport_start(t, "GET", u, NULL, NULL, 0, &r, err, sizeof err),
                     EVREC_E_STATE); /* one at a time */
    int done = 0, calls = 0, saw_fd = 0;
    while (!done) {
        assert_int_equal(transport_advance(t, 0, &done), EVREC_OK);
        calls++;
        evrec_pollfd_t fds[4];
        uint32_t wait = transport_wait_hint(t, fds, 4, &n);
        if (n > 0)
            saw_fd = 1;
        if (!done) {
            struct timespec ts = { 0, (long)(wait < 10 ? wait : 10) * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    assert_true(calls > 5); /* it did not wait for the server inside one call */
    assert_true(saw_fd);
    assert_int_equal(transport_finish(t, err, sizeof err), EVREC_OK);
    assert_int_equal(r.status, 200);
    assert_true(r.sent >= 1);
    transport_response_clear(&r);
    assert_int_equal(transport_finish(t, err, sizeof err), EVREC_E_STATE);

    assert_int_equal(transport_start(t, "GET", u, NULL, NULL, 0, &r, err, sizeof err), EVREC_OK);
    assert_int_equal(transport_advance(t, 0, &done), EVREC_OK);
    assert_false(done);
    assert_int_equal(transport_finish(t, err, sizeof err), EVREC_E_NET);
    assert_non_null(strstr(err, "abandoned"));
    free(u);
    u = url(&f->http, "/_t/slow?ms=1");
    assert_int_equal(send_ok(t, "GET", u, NULL, NULL, &r), 200);
    transport_response_clear(&r);
    /* freed with a request in flight: nothing leaks (valgrind, ASan) */
    assert_int_equal(transport_start(t, "GET", u, NULL, NULL, 0, &r, err, sizeof err), EVREC_OK);
    transport_free(t);
    transport_response_clear(&r);
    free(u);
}

static void refused_and_reset(void **state)
{
    fixture_t *f = *state;
    transport_t *t;
    assert_int_equal(transport_new(&t, NULL), EVREC_OK);
    transport_response_t r;
    char err[256], u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", fc_free_port());
    assert_int_equal(transport_send(t, "POST", u, NULL, "x", 1, &r, err, sizeof err),
                     EVREC_E_CONNECT);
    assert_non_null(strstr(err, "127.0.0.1"));
    char *ru = url(&f->http, "/_t/reset");
    assert_int_equal(transport_send(t, "GET", ru, NULL, NULL, 0, &r, err, sizeof err),
                     EVREC_E_NET);
    free(ru);
    transport_free(t);
}

static void proxy_from_environment(void **state)
{
    fixture_t *f = *state;
    /* A host that does not resolve, reached through the fake acting as the proxy: the
     * request can only arrive if libcurl took http_proxy from the environment. */
    setenv("http_proxy", f->http.url, 1);
    transport_t *t;
    assert_int_equal(transport_new(&t, NULL), EVREC_OK);
    transport_response_t r;
    assert_int_equal(send_ok(t, "GET", "http://evrec-proxy-test.invalid/_t/echo", NULL, NULL, &r),
                     200);
    cJSON *echo = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(echo, "path")->valuestring,
                        "http://evrec-proxy-test.invalid/_t/echo");
    assert_string_equal(echoed_header(echo, "host"), "evrec-proxy-test.invalid");
    cJSON_Delete(echo);
    transport_response_clear(&r);
    transport_free(t);
    unsetenv("http_proxy");
}

static int try_tls(const tu_endpoint_t *ep, const transport_config_t *cfg, const char *path,
                   const char *const *h, long *status, char *err, size_t errlen)
{
    transport_t *t;
    assert_int_equal(transport_new(&t, cfg), EVREC_OK);
    char *u = url(ep, path);
    transport_response_t r;
    int rc = transport_send(t, "GET", u, h, NULL, 0, &r, err, errlen);
    *status = r.status;
    transport_response_clear(&r);
    free(u);
    transport_free(t);
    return rc;
}

static void tls_verification(void **state)
{
    fixture_t *f = *state;
    char *ca = fc_file(f->pki, "ca.pem"), *other = fc_file(f->pki, "other-ca.pem");
    char err[512];
    long status;
    transport_config_t cfg = { .ca_bundle = ca };
    assert_int_equal(try_tls(&f->https, &cfg, "/_t/echo", NULL, &status, err, sizeof err),
                     EVREC_OK);
    assert_int_equal(status, 200);

    /* Verification is on by default: the system's CAs do not know the test CA. */
    transport_config_t none = { 0 };
    assert_int_equal(try_tls(&f->https, &none, "/_t/echo", NULL, &status, err, sizeof err),
                     EVREC_E_TLS);
    assert_non_null(strstr(err, "127.0.0.1"));
    /* An unrelated CA fails closed too. */
    transport_config_t wrong = { .ca_bundle = other };
    assert_int_equal(try_tls(&f->https, &wrong, "/_t/echo", NULL, &status, err, sizeof err),
                     EVREC_E_TLS);
    assert_false(evrec_error_is_retryable(EVREC_E_TLS));

    /* AWS_CA_BUNDLE is used when no bundle is given. */
    setenv("AWS_CA_BUNDLE", ca, 1);
    assert_int_equal(try_tls(&f->https, &none, "/_t/echo", NULL, &status, err, sizeof err),
                     EVREC_OK);
    unsetenv("AWS_CA_BUNDLE");

    /* Only when asked, verification is off. */
    transport_config_t off = { .no_verify_tls = 1 };
    assert_int_equal(try_tls(&f->https, &off, "/_t/echo", NULL, &status, err, sizeof err),
                     EVREC_OK);
    free(ca);
    free(other);
}

static void mutual_tls(void **state)
{
    fixture_t *f = *state;
    char *ca = fc_file(f->pki, "ca.pem");
    char *cert = fc_file(f->pki, "client.pem"), *key = fc_file(f->pki, "client.key");
    char *ocert = fc_file(f->pki, "other-client.pem"), *okey = fc_file(f->pki, "other-client.key");
    const char *const h[] = { "x-amzn-iot-thingname: evrec-test-thing", NULL };
    const char *path = "/role-aliases/evrec-role/credentials";
    char err[512];
    long status;

    transport_config_t with = { .ca_bundle = ca, .client_cert_file = cert,
                                .client_key_file = key };
    assert_int_equal(try_tls(&f->https, &with, path, h, &status, err, sizeof err), EVREC_OK);
    assert_int_equal(status, 200);

    transport_config_t without = { .ca_bundle = ca };
    assert_int_equal(try_tls(&f->https, &without, path, h, &status, err, sizeof err),
                     EVREC_OK);
    assert_int_equal(status, 403);

    /* A certificate from a CA the server does not trust is refused in the handshake. */
    transport_config_t foreign = { .ca_bundle = ca, .client_cert_file = ocert,
                                   .client_key_file = okey };
    int rc = try_tls(&f->https, &foreign, path, h, &status, err, sizeof err);
    assert_int_equal(rc, EVREC_E_TLS);

    /* A certificate without its key is a configuration error. */
    transport_t *t;
    transport_config_t half = { .client_cert_file = cert };
    assert_int_equal(transport_new(&t, &half), EVREC_E_CONFIG);
    free(ca);
    free(cert);
    free(key);
    free(ocert);
    free(okey);
}

typedef struct lines {
    char *all;
    size_t len;
    int n;
} lines_t;

static void collect_line(void *user, const char *line)
{
    lines_t *l = user;
    size_t add = strlen(line);
    l->all = realloc(l->all, l->len + add + 2);
    memcpy(l->all + l->len, line, add);
    l->len += add;
    l->all[l->len++] = '\n';
    l->all[l->len] = '\0';
    l->n++;
}

static void verbose_is_redacted(void **state)
{
    fixture_t *f = *state;
    lines_t l = { 0 };
    transport_config_t cfg = { .verbose = 1, .log_fn = collect_line, .log_user = &l };
    transport_t *t;
    assert_int_equal(transport_new(&t, &cfg), EVREC_OK);
    const char *const h[] = {
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/us-east-1/svc/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123",
        "X-Amz-Security-Token: SESSIONTOKENSECRET+/=",
        "X-Amz-Date: 20261201T000000Z",
        NULL,
    };
    char *u = url(&f->http, "/_t/echo");
    transport_response_t r;
    assert_int_equal(send_ok(t, "GET", u, h, NULL, &r), 200);
    /* the server did get the real values */
    assert_non_null(strstr(r.body, "SESSIONTOKENSECRET"));
    transport_response_clear(&r);
    assert_true(l.n > 3);
    assert_non_null(strstr(l.all, "> GET /_t/echo"));
    assert_non_null(strstr(l.all, "X-Amz-Date: 20261201T000000Z"));
    assert_non_null(strstr(l.all, "Authorization"));
    assert_null(strstr(l.all, "SESSIONTOKENSECRET"));
    assert_null(strstr(l.all, "0123456789abcdef0123"));
    assert_null(strstr(l.all, "hello")); /* bodies are never logged */
    free(l.all);
    free(u);
    transport_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(headers_and_body),  cmocka_unit_test(keep_alive),
        cmocka_unit_test(retry_after_and_date), cmocka_unit_test(response_cap),
        cmocka_unit_test(timeouts),          cmocka_unit_test(refused_and_reset),
        cmocka_unit_test(started_advanced_finished),
        cmocka_unit_test(proxy_from_environment),
        cmocka_unit_test(tls_verification),  cmocka_unit_test(mutual_tls),
        cmocka_unit_test(verbose_is_redacted),
    };
    return cmocka_run_group_tests_name("transport", tests, setup, teardown);
}
