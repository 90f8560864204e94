/*
 * The remote credential providers against tools/fake_credentials.py over HTTPS on
 * 127.0.0.1 with a test PKI: the AWS IoT credentials provider (mutual TLS, thing-name
 * header, role alias), and Cognito unauthenticated identities (GetId, then
 * GetCredentialsForIdentity; the identity id persisted in the store and reused), with
 * caching and refresh, wrong CA, refused connections and timeouts.
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

#include "credentials.h"
#include "evrec.h"
#include "fakecreds.h"
#include "port.h"
#include "queue.h"

typedef struct fixture {
    char *pki, *ca, *other_ca, *cert, *key, *other_cert, *other_key;
    tu_endpoint_t ep;
} fixture_t;

static const char *const POOL = "us-east-1:00000000-0000-4000-8000-000000000001";

static int setup(void **state)
{
    setenv("NO_PROXY", "127.0.0.1", 1);
    unsetenv("AWS_CA_BUNDLE");
    fixture_t *f = calloc(1, sizeof *f);
    f->pki = tu_tempdir("pki");
    if (!f->pki || fc_make_pki(f->pki) != 0 || fc_start(&f->ep, f->pki, NULL) != 0)
        return -1;
    f->ca = fc_file(f->pki, "ca.pem");
    f->other_ca = fc_file(f->pki, "other-ca.pem");
    f->cert = fc_file(f->pki, "client.pem");
    f->key = fc_file(f->pki, "client.key");
    f->other_cert = fc_file(f->pki, "other-client.pem");
    f->other_key = fc_file(f->pki, "other-client.key");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tu_endpoint_stop(&f->ep);
    tu_rmtree(f->pki);
    free(f->pki);
    free(f->ca);
    free(f->other_ca);
    free(f->cert);
    free(f->key);
    free(f->other_cert);
    free(f->other_key);
    free(f);
    return 0;
}

static int64_t fake_clock(void *user)
{
    return *(int64_t *)user;
}

static creds_config_t iot_config(const fixture_t *f)
{
    creds_config_t cfg = {
        .no_environment = 1,
        .profile = "evrec-no-such-profile-in-tests",
        .iot_endpoint = f->ep.url,
        .iot_role_alias = "evrec-role",
        .iot_thing_name = "evrec-test-thing",
        .iot_cert_file = f->cert,
        .iot_key_file = f->key,
        .ca_bundle = f->ca,
        .connect_timeout_ms = 2000,
        .request_timeout_ms = 5000,
    };
    return cfg;
}

static void no_shared_files(void)
{
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
}

static void iot_mutual_tls(void **state)
{
    fixture_t *f = *state;
    no_shared_files();
    creds_config_t cfg = iot_config(f);
    cfg.profile = NULL;
    int64_t now = port_wall_ms();
    cfg.now_ms = fake_clock;
    cfg.now_user = &now;
    creds_t *c;
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    evrec_credentials_t out;
    char err[1024];
    long before = fc_stat(&f->ep, f->pki, "iot");

    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_memory_equal(out.access_key_id, "ASIAIOTTEST", 11);
    assert_true(out.secret_access_key[0] != '\0');
    assert_memory_equal(out.session_token, "iotToken", 8);
    /* the fake issues them for an hour; the ISO 8601 expiration was parsed */
    assert_true(out.expiration_ms > now + 3500000 && out.expiration_ms < now + 3700000);
    char first[128];
    snprintf(first, sizeof first, "%s", out.access_key_id);
    assert_int_equal(fc_stat(&f->ep, f->pki, "iot"), before + 1);

    now += 30 * 60000; /* cached: no second call */
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, first);
    assert_int_equal(fc_stat(&f->ep, f->pki, "iot"), before + 1);

    now = out.expiration_ms - 4 * 60000; /* within five minutes of expiry: refreshed */
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_string_not_equal(out.access_key_id, first);
    assert_int_equal(fc_stat(&f->ep, f->pki, "iot"), before + 2);
    creds_free(c);
}

static void iot_refusals(void **state)
{
    fixture_t *f = *state;
    no_shared_files();
    evrec_credentials_t out;
    char err[1024];
    creds_t *c;

    /* An unknown role alias: the service's answer is named. */
    creds_config_t cfg = iot_config(f);
    cfg.iot_role_alias = "no-such-alias";
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "iot: role alias 'no-such-alias' for thing 'evrec-test-thing'"));
    assert_non_null(strstr(err, "HTTP 404"));
    assert_non_null(strstr(err, "Role alias does not exist"));
    /* Asked again at once, the provider is not called: the last reason is given, with the
     * wait (1 s after the first failure, doubling). */
    int64_t now = port_wall_ms();
    creds_free(c);
    cfg.now_ms = fake_clock;
    cfg.now_user = &now;
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    now += 900;
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "iot: role alias 'no-such-alias' for thing 'evrec-test-thing': "
                                "HTTP 404"));
    assert_non_null(strstr(err, "(not asked again for 1 s)"));
    now += 200;
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_null(strstr(err, "not asked again"));
    creds_free(c);
    cfg.now_ms = NULL;

    /* The server's certificate is not trusted: fails closed, as a TLS error. */
    cfg = iot_config(f);
    cfg.ca_bundle = f->other_ca;
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_E_TLS);
    assert_non_null(strstr(err, "iot: "));
    creds_free(c);

    /* A device certificate from a CA the endpoint does not trust is refused. */
    cfg = iot_config(f);
    cfg.iot_cert_file = f->other_cert;
    cfg.iot_key_file = f->other_key;
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_E_TLS);
    creds_free(c);

    /* No error message carries a key: the certificate's private key path is fine to name,
     * its contents never appear. */
    assert_null(strstr(err, "PRIVATE KEY"));
}

static evrec_queue_t *open_queue(const char *dir)
{
    queue_config_t qc = { .max_store_bytes = 1 << 20 };
    evrec_queue_t *q = NULL;
    char err[256];
    int rc = queue_open(&q, dir, &qc, err, sizeof err);
    if (rc != EVREC_OK)
        fail_msg("queue_open: %s", err);
    return q;
}

static creds_config_t cognito_config(const fixture_t *f, char *url, size_t urllen,
                                     evrec_queue_t *q)
{
    snprintf(url, urllen, "%s/", f->ep.url);
    creds_config_t cfg = {
        .no_environment = 1,
        .cognito_pool_id = POOL,
        .cognito_endpoint_url = url,
        .queue = q,
        .ca_bundle = f->ca,
        .connect_timeout_ms = 2000,
        .request_timeout_ms = 5000,
    };
    return cfg;
}

static void cognito_identity_persisted(void **state)
{
    fixture_t *f = *state;
    no_shared_files();
    char *dir = tu_tempdir("cognito-store");
    evrec_queue_t *q = open_queue(dir);
    char url[128];
    creds_config_t cfg = cognito_config(f, url, sizeof url, q);
    long getid0 = fc_stat(&f->ep, f->pki, "getid");
    long creds0 = fc_stat(&f->ep, f->pki, "getcreds");
    evrec_credentials_t out;
    char err[1024];
    creds_t *c;

    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    int64_t before = port_wall_ms();
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_memory_equal(out.access_key_id, "ASIACOGNITO", 11);
    assert_memory_equal(out.session_token, "cognitoToken", 12);
    /* Expiration came as epoch seconds */
    assert_true(out.expiration_ms >= before + 3590000 && out.expiration_ms <= before + 3610000);
    assert_int_equal(fc_stat(&f->ep, f->pki, "getid"), getid0 + 1);
    assert_int_equal(fc_stat(&f->ep, f->pki, "getcreds"), creds0 + 1);
    creds_free(c);

    char *id = NULL;
    size_t len = 0;
    assert_int_equal(queue_meta_get(q, QUEUE_META_COGNITO_ID, &id, &len), EVREC_OK);
    assert_memory_equal(id, "us-east-1:", 10);
    char first_id[128];
    snprintf(first_id, sizeof first_id, "%.*s", (int)len, id);
    port_free(id);

    /* After a restart (store closed and reopened) the same identity is used: no GetId. */
    queue_close(q);
    q = open_queue(dir);
    cfg.queue = q;
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&f->ep, f->pki, "getid"), getid0 + 1);
    assert_int_equal(fc_stat(&f->ep, f->pki, "getcreds"), creds0 + 2);
    creds_free(c);

    /* An identity the service no longer knows is replaced by a new one, and persisted. */
    const char *stale = "us-east-1:11111111-2222-4333-8444-555555555555";
    assert_int_equal(queue_meta_put(q, QUEUE_META_COGNITO_ID, stale, strlen(stale)), EVREC_OK);
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&f->ep, f->pki, "getid"), getid0 + 2);
    creds_free(c);
    assert_int_equal(queue_meta_get(q, QUEUE_META_COGNITO_ID, &id, &len), EVREC_OK);
    assert_true(len != strlen(stale) || memcmp(id, stale, len) != 0);
    assert_true(len != strlen(first_id) || memcmp(id, first_id, len) != 0);
    port_free(id);

    queue_close(q);
    tu_rmtree(dir);
    free(dir);
}

static void cognito_refresh_and_errors(void **state)
{
    fixture_t *f = *state;
    no_shared_files();
    char url[128];
    creds_config_t cfg = cognito_config(f, url, sizeof url, NULL);
    int64_t now = port_wall_ms();
    cfg.now_ms = fake_clock;
    cfg.now_user = &now;
    evrec_credentials_t out;
    char err[1024];
    creds_t *c;

    /* Without a store the identity is kept in memory; refresh reuses it. */
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    long getid0 = fc_stat(&f->ep, f->pki, "getid");
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    char first[128];
    snprintf(first, sizeof first, "%s", out.access_key_id);
    now = out.expiration_ms - 60000;
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_string_not_equal(out.access_key_id, first);
    assert_int_equal(fc_stat(&f->ep, f->pki, "getid"), getid0 + 1);
    creds_free(c);

    /* The endpoint may also come from AWS_ENDPOINT_URL_COGNITO_IDENTITY. */
    cfg.cognito_endpoint_url = NULL;
    setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY", url, 1);
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_memory_equal(out.access_key_id, "ASIACOGNITO", 11);
    creds_free(c);
    unsetenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY");
    cfg.cognito_endpoint_url = url;

    /* An unknown pool: the service's error is named, with the pool, not a secret. */
    cfg.cognito_pool_id = "us-east-1:99999999-0000-4000-8000-000000000000";
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "cognito: pool 'us-east-1:99999999-0000-4000-8000-000000000000'"));
    assert_non_null(strstr(err, "GetId: HTTP 400 ResourceNotFoundException"));
    creds_free(c);

    /* Nothing listening: a retryable connect error, naming the provider and call. */
    char dead[64];
    snprintf(dead, sizeof dead, "https://127.0.0.1:%d/", fc_free_port());
    cfg.cognito_pool_id = POOL;
    cfg.cognito_endpoint_url = dead;
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_E_CONNECT);
    assert_non_null(strstr(err, "cognito: "));
    assert_non_null(strstr(err, "GetId failed"));
    creds_free(c);

    /* Without an override the pool's own region names the endpoint, whatever region the
     * events go to. (Reached through a proxy on 127.0.0.1 that refuses: nothing leaves the
     * machine, and the error names the host that was asked for.) */
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", fc_free_port());
    setenv("https_proxy", proxy, 1);
    cfg.cognito_endpoint_url = NULL;
    cfg.region = "eu-west-1";
    cfg.cognito_pool_id = "ap-southeast-2:00000000-0000-4000-8000-000000000009";
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_E_CONNECT);
    assert_non_null(strstr(err, "cognito-identity.ap-southeast-2.amazonaws.com"));
    creds_free(c);
    unsetenv("https_proxy");
    cfg.region = NULL;
    cfg.cognito_pool_id = POOL;

    /* A service that does not answer in time. */
    char slow[160];
    snprintf(slow, sizeof slow, "%s/_t/slow?ms=3000", f->ep.url);
    cfg.cognito_endpoint_url = slow;
    cfg.request_timeout_ms = 300;
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_E_NET_TIMEOUT);
    creds_free(c);
}

/* A device clock two hours ahead of the providers: fresh credentials are not refused as
 * expired; their lifetime is taken by the provider's clock (its Date header) and counted on
 * ours, so they are cached for it and refreshed before it ends. */
static void device_clock_ahead_of_providers(void **state)
{
    fixture_t *f = *state;
    no_shared_files();
    const int64_t ahead = 2 * 3600 * 1000;
    int64_t now = port_wall_ms() + ahead;
    evrec_credentials_t out;
    char err[1024];
    creds_t *c;

    creds_config_t cfg = iot_config(f);
    cfg.profile = NULL;
    cfg.now_ms = fake_clock;
    cfg.now_user = &now;
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    long iot0 = fc_stat(&f->ep, f->pki, "iot");
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_true(out.expiration_ms > now + 3500000 && out.expiration_ms < now + 3700000);
    now += 30 * 60000; /* cached */
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&f->ep, f->pki, "iot"), iot0 + 1);
    now = out.expiration_ms - 4 * 60000; /* refreshed ahead of the end */
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&f->ep, f->pki, "iot"), iot0 + 2);
    creds_free(c);

    char url[128];
    cfg = cognito_config(f, url, sizeof url, NULL);
    now = port_wall_ms() + ahead;
    cfg.now_ms = fake_clock;
    cfg.now_user = &now;
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    long creds0 = fc_stat(&f->ep, f->pki, "getcreds");
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_true(out.expiration_ms >= now + 3590000 && out.expiration_ms <= now + 3610000);
    now += 30 * 60000;
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&f->ep, f->pki, "getcreds"), creds0 + 1);
    creds_free(c);
}

static void chain_falls_through_to_remote(void **state)
{
    fixture_t *f = *state;
    no_shared_files();
    /* IoT first (its place in the chain), Cognito only when IoT is not configured. */
    char url[128];
    creds_config_t cfg = cognito_config(f, url, sizeof url, NULL);
    creds_config_t iot = iot_config(f);
    cfg.iot_endpoint = iot.iot_endpoint;
    cfg.iot_role_alias = iot.iot_role_alias;
    cfg.iot_thing_name = iot.iot_thing_name;
    cfg.iot_cert_file = iot.iot_cert_file;
    cfg.iot_key_file = iot.iot_key_file;
    evrec_credentials_t out;
    char err[1024];
    creds_t *c;
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_memory_equal(out.access_key_id, "ASIAIOT", 7);
    creds_free(c);

    /* IoT configured but failing: Cognito answers, and the chain succeeds. */
    cfg.iot_role_alias = "no-such-alias";
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_memory_equal(out.access_key_id, "ASIACOGNITO", 11);
    creds_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iot_mutual_tls),
        cmocka_unit_test(iot_refusals),
        cmocka_unit_test(cognito_identity_persisted),
        cmocka_unit_test(cognito_refresh_and_errors),
        cmocka_unit_test(device_clock_ahead_of_providers),
        cmocka_unit_test(chain_falls_through_to_remote),
    };
    return cmocka_run_group_tests_name("credentials_remote", tests, setup, teardown);
}
