/*
 * Secrets never reach the log, at any level: an agent with temporary credentials uploads to
 * the local endpoint (which checks the signature with botocore) with the log at DEBUG, so the
 * HTTP exchange itself is logged; then the same with a wrong secret, where the endpoint's
 * refusal quotes the canonical request (with the session token in it) back. Every log line
 * is searched for the secret, the token and the signature.
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

#include "evrec.h"
#include "testutil.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN "IQoJb3JpZ2luX2VjEXAMPLETOKENzZWNyZXQ+/=="

typedef struct logbook {
    char *text;
    size_t len;
    int lines;
} logbook_t;

static void on_log(void *user, evrec_log_level_t level, const char *message)
{
    (void)level;
    logbook_t *b = user;
    size_t n = strlen(message);
    char *t = realloc(b->text, b->len + n + 2);
    assert_non_null(t);
    memcpy(t + b->len, message, n);
    b->len += n;
    t[b->len++] = '\n';
    t[b->len] = '\0';
    b->text = t;
    b->lines++;
}

/* Record a few events and flush them through an agent configured with these keys. */
static int upload(const tu_endpoint_t *ep, const char *secret, logbook_t *book,
                  uint32_t timeout_ms)
{
    char *dir = tu_tempdir("secrets-store");
    evrec_options_t o;
    evrec_options_init(&o);
    o.service = EVREC_SERVICE_PINPOINT;
    o.application_id = "0123456789abcdef0123456789abcdef";
    o.region = "us-east-1";
    o.endpoint_url = ep->url;
    o.access_key_id = AKID;
    o.secret_access_key = secret;
    o.session_token = TOKEN;
    o.no_environment_credentials = 1;
    o.manual_flush = 1;
    o.backoff_base_ms = 10;
    o.backoff_cap_ms = 50;
    o.log_fn = on_log;
    o.log_user = book;
    o.log_level = EVREC_LOG_DEBUG;
    evrec_t *a = NULL;
    char err[256];
    assert_int_equal(evrec_open(&a, dir, &o, err, sizeof err), EVREC_OK);
    for (int i = 0; i < 3; i++) {
        evrec_event_t *ev;
        assert_int_equal(evrec_event_new(&ev, "secrets.test"), EVREC_OK);
        assert_int_equal(evrec_event_set_attribute(ev, "n", i == 0 ? "zero" : "more"), EVREC_OK);
        assert_int_equal(evrec_record(a, ev), EVREC_OK);
        evrec_event_free(ev);
    }
    int rc = evrec_flush(a, timeout_ms);
    evrec_close(a, 0);
    tu_rmtree(dir);
    free(dir);
    return rc;
}

static void assert_no_secrets(const logbook_t *b)
{
    assert_non_null(b->text);
    assert_null(strstr(b->text, SECRET));
    assert_null(strstr(b->text, TOKEN));
    /* any fragment of them long enough to matter */
    assert_null(strstr(b->text, "EXAMPLEKEY"));
    assert_null(strstr(b->text, "EXAMPLETOKEN"));
    assert_null(strstr(b->text, "Signature="));
}

static int setup(void **state)
{
    static tu_endpoint_t ep;
    const char *const args[] = { "--session-token", TOKEN, NULL };
    if (tu_endpoint_start(&ep, args) != 0)
        return -1;
    *state = &ep;
    return 0;
}

static int teardown(void **state)
{
    tu_endpoint_stop(*state);
    return 0;
}

static void accepted_upload(void **state)
{
    const tu_endpoint_t *ep = *state;
    logbook_t book = { 0 };
    assert_int_equal(upload(ep, SECRET, &book, 5000), EVREC_OK);
    long status = 0;
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/log", ep->url);
    char *log = tu_http("GET", url, NULL, &status);
    assert_non_null(log);
    assert_non_null(strstr(log, "secrets.test"));
    free(log);
    /* the exchange was logged (so the test looks at something), without a secret */
    assert_true(book.lines > 5);
    assert_non_null(strstr(book.text, "Authorization"));
    assert_non_null(strstr(book.text, "X-Amz-Security-Token"));
    assert_no_secrets(&book);
    free(book.text);
}

static void refused_upload(void **state)
{
    const tu_endpoint_t *ep = *state;
    logbook_t book = { 0 };
    /* A wrong secret: refused, and the refusal (which quotes the canonical request, token
     * included) is logged. */
    const char *wrong = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz";
    assert_int_not_equal(upload(ep, wrong, &book, 800), EVREC_OK);
    assert_non_null(strstr(book.text, "InvalidSignatureException"));
    assert_null(strstr(book.text, wrong));
    assert_no_secrets(&book);
    free(book.text);
}

int main(void)
{
    setenv("NO_PROXY", "127.0.0.1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted_upload),
        cmocka_unit_test(refused_upload),
    };
    return cmocka_run_group_tests_name("secrets_in_logs", tests, setup, teardown);
}
