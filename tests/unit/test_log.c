/* log.c: level filtering and the redaction of secrets before a message leaves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"

typedef struct captured {
    int calls;
    evrec_log_level_t level;
    char text[8192];
} captured_t;

static void capture(void *user, evrec_log_level_t level, const char *message)
{
    captured_t *c = user;
    c->calls++;
    c->level = level;
    snprintf(c->text, sizeof c->text, "%s", message);
}

static void levels_filter(void **state)
{
    (void)state;
    captured_t c = { 0 };
    log_sink_t s = { capture, &c, EVREC_LOG_WARN };
    log_msg(&s, EVREC_LOG_DEBUG, "debug %d", 1);
    log_msg(&s, EVREC_LOG_INFO, "info %d", 2);
    assert_int_equal(c.calls, 0);
    log_msg(&s, EVREC_LOG_WARN, "warn %d", 3);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.level, EVREC_LOG_WARN);
    assert_string_equal(c.text, "warn 3");
    log_msg(&s, EVREC_LOG_ERROR, "error %s", "x");
    assert_int_equal(c.calls, 2);
    assert_string_equal(c.text, "error x");
    s.level = EVREC_LOG_DEBUG;
    log_msg(&s, EVREC_LOG_DEBUG, "now %s", "shown");
    assert_int_equal(c.calls, 3);
    /* No sink, or no callback: nothing happens. */
    log_msg(NULL, EVREC_LOG_ERROR, "nobody");
    log_sink_t none = { NULL, NULL, EVREC_LOG_DEBUG };
    log_msg(&none, EVREC_LOG_ERROR, "nobody");
    assert_int_equal(c.calls, 3);
}

/* Server text (an error message, x-amzn-ErrorType) goes out with its control characters
 * escaped: it cannot add a forged line to a log file nor send terminal escapes. */
static void control_characters_escaped(void **state)
{
    (void)state;
    captured_t c = { 0 };
    log_sink_t s = { capture, &c, EVREC_LOG_DEBUG };
    log_msg(&s, EVREC_LOG_WARN, "flusher: HTTP 400 %s: %s", "Bad\r\nType",
            "oops\nevrec: error: forged\x1b[2J\x7f\tend");
    assert_string_equal(c.text, "flusher: HTTP 400 Bad\\x0d\\x0aType: oops\\x0aevrec: error: "
                                "forged\\x1b[2J\\x7f\\x09end");
    assert_null(strchr(c.text, '\n'));
    /* nothing to escape: the text as formatted; UTF-8 is left alone */
    log_msg(&s, EVREC_LOG_WARN, "plain %s", "caf\xc3\xa9");
    assert_string_equal(c.text, "plain caf\xc3\xa9");
    /* escaped after redaction, so a secret split by a control character is still hidden */
    log_msg(&s, EVREC_LOG_WARN, "X-Amz-Security-Token: abc\r\nnext");
    assert_null(strstr(c.text, "abc"));
    assert_non_null(strstr(c.text, "\\x0d\\x0anext"));
    /* long messages too (the heap path) */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[1500] = '\n';
    log_msg(&s, EVREC_LOG_WARN, "%s", big);
    assert_null(strchr(c.text, '\n'));
    assert_int_equal(strlen(c.text), sizeof big - 1 + 3);
}

/* Redact a copy of `in` and compare it with `want`. */
static void expect_redacted(const char *in, const char *want)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", in);
    log_redact(buf);
    assert_string_equal(buf, want);
    assert_true(strlen(buf) <= strlen(in));
}

static void authorization_header(void **state)
{
    (void)state;
    expect_redacted("> Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/us-east-1/"
                    "mobiletargeting/aws4_request, SignedHeaders=host;x-amz-date, "
                    "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7\r\n"
                    "> Host: example",
                    "> Authorization: [redacted]\r\n> Host: example");
    expect_redacted("authorization=Bearer-abcdef0123", "authorization=[redacted]");
    expect_redacted("{\"Authorization\":\"AWS4-HMAC-SHA256 Credential=x, Signature=y\"}",
                    "{\"Authorization\":\"[redacted]\"}");
}

static void tokens(void **state)
{
    (void)state;
    expect_redacted("X-Amz-Security-Token: IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJGMEQC\n"
                    "X-Amz-Date: 20261201T000000Z",
                    "X-Amz-Security-Token: [redacted]\nX-Amz-Date: 20261201T000000Z");
    expect_redacted("GET /?X-Amz-Security-Token=FwoGZXIvYXdzEJr%2F%2F&X-Amz-Date=2026 HTTP/1.1",
                    "GET /?X-Amz-Security-Token=[redacted]&X-Amz-Date=2026 HTTP/1.1");
    expect_redacted("{\"credentials\":{\"accessKeyId\":\"ASIAEXAMPLE\",\"sessionToken\":"
                    "\"abc\\\"defghijkl\",\"expiration\":\"2026\"}}",
                    "{\"credentials\":{\"accessKeyId\":\"ASIAEXAMPLE\",\"sessionToken\":"
                    "\"[redacted]\",\"expiration\":\"2026\"}}");
    expect_redacted("aws_session_token = FQoGZXIvYXdzEBAaDH", "aws_session_token = [redacted]");
    /* Short values are masked without growing the message. */
    expect_redacted("token=ab rest", "token=** rest");
}

static void secret_keys(void **state)
{
    (void)state;
    const char *secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    char in[512], want[512];
    snprintf(in, sizeof in, "aws_secret_access_key=%s", secret);
    expect_redacted(in, "aws_secret_access_key=[redacted]");
    snprintf(in, sizeof in, "AWS_SECRET_ACCESS_KEY = %s\nnext", secret);
    expect_redacted(in, "AWS_SECRET_ACCESS_KEY = [redacted]\nnext");
    snprintf(in, sizeof in, "{\"Credentials\":{\"AccessKeyId\":\"ASIA1\",\"SecretKey\":\"%s\","
                            "\"SessionToken\":\"%s\"}}", secret, secret);
    snprintf(want, sizeof want, "{\"Credentials\":{\"AccessKeyId\":\"ASIA1\",\"SecretKey\":"
                                "\"[redacted]\",\"SessionToken\":\"[redacted]\"}}");
    expect_redacted(in, want);
    snprintf(in, sizeof in, "'secretAccessKey': '%s'", secret);
    expect_redacted(in, "'secretAccessKey': '[redacted]'");
}

static void leaves_the_rest_alone(void **state)
{
    (void)state;
    const char *plain[] = {
        "{\"EventType\":\"_session.start\",\"Attributes\":{\"k\":\"v\"}}",
        "POST /v1/apps/abc/events HTTP/1.1",
        "access_key_id=AKIDEXAMPLE region=us-east-1",
        "the token bucket is empty",     /* a key name without a value */
        "Secret",
        "",
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        expect_redacted(plain[i], plain[i]);
    log_redact(NULL); /* no crash */
}

static void long_messages_are_whole_and_redacted(void **state)
{
    (void)state;
    captured_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    log_sink_t s = { capture, c, EVREC_LOG_DEBUG };
    char pad[3001];
    memset(pad, 'a', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    log_msg(&s, EVREC_LOG_INFO, "%s SecretAccessKey=%s end", pad, "wJalrXUtnFEMIK7MDENGbPxRfiCY");
    assert_int_equal(c->calls, 1);
    assert_int_equal(strlen(c->text), 3000 + strlen(" SecretAccessKey=[redacted] end"));
    assert_string_equal(c->text + 3000, " SecretAccessKey=[redacted] end");
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(levels_filter),
        cmocka_unit_test(control_characters_escaped),
        cmocka_unit_test(authorization_header),
        cmocka_unit_test(tokens),
        cmocka_unit_test(secret_keys),
        cmocka_unit_test(leaves_the_rest_alone),
        cmocka_unit_test(long_messages_are_whole_and_redacted),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
