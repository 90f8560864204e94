/* transport_url_host and the transport's argument checks (no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "evrec.h"
#include "transport.h"

static void host_header(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host;
    } good[] = {
        { "https://pinpoint.us-east-1.amazonaws.com/v1/apps/x/events",
          "pinpoint.us-east-1.amazonaws.com" },
        { "https://h.example:443/", "h.example" },
        { "https://h.example:8443/a", "h.example:8443" },
        { "http://127.0.0.1:8080/v1?x=1", "127.0.0.1:8080" },
        { "http://127.0.0.1:80", "127.0.0.1" },
        { "http://[::1]:80/", "[::1]" },
        { "http://[::1]:9000/", "[::1]:9000" },
        { "http://host?q", "host" },
    };
    char h[128];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(transport_url_host(good[i].url, h, sizeof h), EVREC_OK);
        assert_string_equal(h, good[i].host);
    }
    static const char *const bad[] = {
        "ftp://h/", "h.example/path", "https://", "https:///path", "http://user:pw@h/",
        "http://h:/", "http://h:99999/", "http://h:0/", "http://h:8x/", "http://[::1/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(transport_url_host(bad[i], h, sizeof h), EVREC_E_INVALID);
    char tiny[4];
    assert_int_equal(transport_url_host("http://longhost/", tiny, sizeof tiny), EVREC_E_INVALID);
}

static void arguments(void **state)
{
    (void)state;
    transport_t *t = NULL;
    transport_config_t half = { .client_key_file = "k.pem" };
    assert_int_equal(transport_new(&t, &half), EVREC_E_CONFIG);
    assert_null(t);
    assert_int_equal(transport_new(&t, NULL), EVREC_OK);
    transport_response_t r;
    char err[128];
    assert_int_equal(transport_send(t, "GET", "gopher://x/", NULL, NULL, 0, &r, err, sizeof err),
                     EVREC_E_INVALID);
    assert_non_null(strstr(err, "URL"));
    assert_int_equal(transport_send(t, "POST", "http://127.0.0.1/", NULL, NULL, 3, &r, err,
                                    sizeof err),
                     EVREC_E_INVALID);
    assert_int_equal(transport_send(t, NULL, "http://127.0.0.1/", NULL, NULL, 0, &r, err,
                                    sizeof err),
                     EVREC_E_INVALID);
    transport_free(t);
    transport_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(host_header),
                                        cmocka_unit_test(arguments) };
    return cmocka_run_group_tests_name("transport_url", tests, NULL, NULL);
}
