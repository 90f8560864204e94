/*
 * End to end: PutEvents requests signed by sigv4.c and sent by transport.c to the local
 * endpoint (tools/fake_endpoint.py), which recomputes every signature with botocore's
 * SigV4Auth and validates the body against botocore's model. Plain keys and session tokens
 * are accepted; a wrong secret, a missing or wrong token are refused.
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

#include "evrec.h"
#include "port.h"
#include "sigv4.h"
#include "testutil.h"
#include "transport.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN "FQoGZXIvYXdzEXAMPLE//token+with/chars=="

typedef struct fixture {
    tu_endpoint_t plain, tokened;
} fixture_t;

static int setup(void **state)
{
    setenv("NO_PROXY", "127.0.0.1", 1);
    fixture_t *f = calloc(1, sizeof *f);
    const char *const with_token[] = { "--session-token", TOKEN, NULL };
    if (tu_endpoint_start(&f->plain, NULL) != 0 ||
        tu_endpoint_start(&f->tokened, with_token) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_stop(&f->plain);
    tu_endpoint_stop(&f->tokened);
    free(f);
    return 0;
}

typedef struct sent {
    long status;
    char error_type[128];
    char body[1024]; /* the start of the answer: the fake's reason for a refusal */
} sent_t;

/* Compare the status, showing the endpoint's answer when it is not the one expected. */
static void expect_status(const sent_t *s, long want)
{
    if (s->status != want)
        fail_msg("expected HTTP %ld, got %ld: %s", want, s->status, s->body);
}

/* Sign `body` for `service` with the given keys and POST it to ep + path. */
static sent_t sign_and_send(transport_t *t, sigv4_key_cache_t *cache, const tu_endpoint_t *ep,
                            const char *path, const char *service, const char *body,
                            const char *secret, const char *token, int content_sha256)
{
    char url[256], host[128];
    snprintf(url, sizeof url, "%s%s", ep->url, path);
    assert_int_equal(transport_url_host(url, host, sizeof host), EVREC_OK);
    sigv4_header_t hs[] = { { "Host", host }, { "Content-Type", "application/json" } };
    sigv4_request_t req = { .method = "POST", .path = path, .headers = hs, .nheaders = 2,
                            .body = body, .body_len = strlen(body) };
    sigv4_params_t p = { .region = "us-east-1", .service = service, .unix_ms = port_wall_ms(),
                         .sign_content_sha256 = content_sha256 };
    sigv4_credentials_t creds = { AKID, secret, token };
    sigv4_signature_t sig;
    assert_int_equal(sigv4_sign(cache, &req, &p, &creds, &sig), EVREC_OK);

    char authz[1100], date[64], tok[4200], sha[100];
    snprintf(authz, sizeof authz, "Authorization: %s", sig.authorization);
    snprintf(date, sizeof date, "X-Amz-Date: %s", sig.amz_date);
    snprintf(sha, sizeof sha, "X-Amz-Content-Sha256: %s", sig.content_sha256);
    snprintf(tok, sizeof tok, "X-Amz-Security-Token: %s", token ? token : "");
    const char *headers[8];
    int n = 0;
    headers[n++] = "Content-Type: application/json";
    headers[n++] = authz;
    headers[n++] = date;
    if (token)
        headers[n++] = tok;
    if (content_sha256)
        headers[n++] = sha;
    headers[n] = NULL;

    transport_response_t r;
    char err[256];
    int rc = transport_send(t, "POST", url, headers, body, strlen(body), &r, err, sizeof err);
    if (rc != EVREC_OK)
        fail_msg("send: %s", err);
    sent_t s = { .status = r.status };
    snprintf(s.error_type, sizeof s.error_type, "%s", r.error_type);
    snprintf(s.body, sizeof s.body, "%s", r.body);
    transport_response_clear(&r);
    return s;
}

static char *pinpoint_body(const char *event_id)
{
    char ts[32], *b = NULL;
    int64_t now = port_wall_ms();
    /* the service's ISO 8601 timestamp, built independently of event_util.c */
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    assert_true(asprintf(&b,
                         "{\"BatchItem\":{\"endpoint-1\":{\"Endpoint\":{},\"Events\":{\"%s\":"
                         "{\"EventType\":\"e2e.test\",\"Timestamp\":\"%s\","
                         "\"Attributes\":{\"k\":\"v w/x+y=z\"}}}}}}",
                         event_id, ts) > 0);
    return b;
}

static void pinpoint_plain_keys(void **state)
{
    fixture_t *f = *state;
    transport_t *t;
    assert_int_equal(transport_new(&t, NULL), EVREC_OK);
    sigv4_key_cache_t cache;
    memset(&cache, 0, sizeof cache);
    const char *path = "/v1/apps/0123456789abcdef0123456789abcdef/events";
    char *body = pinpoint_body("ev-plain-1");
    sent_t s = sign_and_send(t, &cache, &f->plain, path, "mobiletargeting", body, SECRET, NULL, 0);
    expect_status(&s, 202);
    free(body);
    /* Again on the same connection with the cached key, and with X-Amz-Content-Sha256. */
    body = pinpoint_body("ev-plain-2");
    s = sign_and_send(t, &cache, &f->plain, path, "mobiletargeting", body, SECRET, NULL, 1);
    expect_status(&s, 202);
    free(body);

    long st = 0;
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/log", f->plain.url);
    char *log = tu_http("GET", url, NULL, &st);
    assert_non_null(log);
    assert_non_null(strstr(log, "ev-plain-1"));
    assert_non_null(strstr(log, "ev-plain-2"));
    free(log);

    /* The wrong secret, or the right one for the wrong service, is refused. */
    body = pinpoint_body("ev-wrong");
    s = sign_and_send(t, NULL, &f->plain, path, "mobiletargeting", body, "not-the-secret", NULL,
                      0);
    expect_status(&s, 403);
    assert_string_equal(s.error_type, "InvalidSignatureException");
    s = sign_and_send(t, NULL, &f->plain, path, "personalize", body, SECRET, NULL, 0);
    expect_status(&s, 403);
    free(body);
    transport_free(t);
}

static void session_token(void **state)
{
    fixture_t *f = *state;
    transport_t *t;
    assert_int_equal(transport_new(&t, NULL), EVREC_OK);
    const char *path = "/v1/apps/0123456789abcdef0123456789abcdef/events";
    char *body = pinpoint_body("ev-token-1");
    sent_t s = sign_and_send(t, NULL, &f->tokened, path, "mobiletargeting", body, SECRET, TOKEN,
                             0);
    expect_status(&s, 202);
    s = sign_and_send(t, NULL, &f->tokened, path, "mobiletargeting", body, SECRET, NULL, 0);
    expect_status(&s, 403);
    s = sign_and_send(t, NULL, &f->tokened, path, "mobiletargeting", body, SECRET, "other-token",
                      0);
    expect_status(&s, 403);
    free(body);
    transport_free(t);
}

static void personalize(void **state)
{
    fixture_t *f = *state;
    transport_t *t;
    assert_int_equal(transport_new(&t, NULL), EVREC_OK);
    char *body = NULL;
    assert_true(asprintf(&body,
                         "{\"trackingId\":\"tracker-1\",\"userId\":\"u1\",\"sessionId\":\"s1\","
                         "\"eventList\":[{\"eventId\":\"pe-1\",\"eventType\":\"click\","
                         "\"sentAt\":%lld,\"itemId\":\"item 7\"}]}",
                         (long long)(port_wall_ms() / 1000)) > 0);
    sent_t s = sign_and_send(t, NULL, &f->plain, "/events", "personalize", body, SECRET, NULL, 0);
    expect_status(&s, 200);
    free(body);
    transport_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pinpoint_plain_keys),
        cmocka_unit_test(session_token),
        cmocka_unit_test(personalize),
    };
    return cmocka_run_group_tests_name("sigv4_endpoint", tests, setup, teardown);
}
