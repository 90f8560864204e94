/*
 * The rest of the SDKs' credential chain against tools/fake_credentials.py over HTTP on
 * 127.0.0.1: credential_process (run without a shell, JSON Version 1, refreshed before its
 * Expiration), assume role (STS AssumeRole signed by the source profile's keys, checked by
 * botocore's signer in the fake; source_profile chains, credential_source, external_id,
 * role_session_name, duration_seconds), web identity (AssumeRoleWithWebIdentity from the
 * environment or the profile), container credentials (relative and full URIs, the
 * authorization token and its file), EC2 instance metadata (IMDSv2: the token first; region),
 * SSO (the AWS CLI's token cache, GetRoleCredentials); each remote provider's refresh ahead of
 * expiry, its backoff after a failure, and errors that name the provider and carry no secret.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <mbedtls/sha1.h>
#include <mbedtls/version.h>

#include "credentials.h"
#include "creds_internal.h"
#include "evrec.h"
#include "fakecreds.h"
#include "port.h"

#define SOURCE_KEY "AKIDSTSSOURCE"
#define SOURCE_SECRET "stsSourceSecret/0123456789"

static tu_endpoint_t g_ep;
static char *g_dir;
static int64_t g_now;

static int64_t fake_clock(void *user)
{
    (void)user;
    return g_now;
}

static int group_setup(void **state)
{
    (void)state;
    setenv("NO_PROXY", "127.0.0.1", 1);
    g_dir = tu_tempdir("chain");
    return g_dir && fc_start(&g_ep, NULL, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_endpoint_stop(&g_ep);
    tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static int each_setup(void **state)
{
    (void)state;
    tu_isolate_aws_env();
    static const char *const more[] = {
        "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO",
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        unsetenv(more[i]);
    setenv("HOME", g_dir, 1);
    g_now = port_wall_ms();
    return 0;
}

static char *path_of(const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", g_dir, name) > 0);
    return p;
}

static char *write_file(const char *name, const char *text, int mode)
{
    char *p = path_of(name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(p, (mode_t)mode);
    return p;
}

static creds_config_t base_config(void)
{
    creds_config_t cfg = { .no_environment = 0, .region = "us-east-1",
                           .connect_timeout_ms = 2000, .request_timeout_ms = 5000,
                           .now_ms = fake_clock };
    return cfg;
}

static int get(creds_t *c, evrec_credentials_t *out, char *err, size_t len)
{
    memset(out, 0, sizeof *out);
    return creds_get(c, out, err, len);
}

static void assert_no_secret(const char *err, const evrec_credentials_t *issued)
{
    if (issued->secret_access_key[0])
        assert_null(strstr(err, issued->secret_access_key));
    if (issued->session_token[0])
        assert_null(strstr(err, issued->session_token));
    assert_null(strstr(err, SOURCE_SECRET));
    assert_null(strstr(err, "Secret0"));
    assert_null(strstr(err, "Token0"));
}

/* -- credential_process ----------------------------------------------------------------- */

static void credential_process(void **state)
{
    (void)state;
    char iso[32], script[1400], conf[1800];
    int64_t exp = g_now / 1000 + 3600;
    time_t t = (time_t)exp;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char *calls = path_of("process-calls");
    /* the script records its arguments (one per line) and prints Version 1 credentials */
    snprintf(script, sizeof script,
             "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\" >> '%s'; done\n"
             "n=$(wc -l < '%s')\n"
             "printf '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC%%s\", "
             "\"SecretAccessKey\": \"procSecret\", \"SessionToken\": \"procToken\", "
             "\"Expiration\": \"%s\"}' $n\n", calls, calls, iso);
    char *prog = write_file("cred proc.sh", script, 0700);
    snprintf(conf, sizeof conf,
             "[profile proc]\ncredential_process = \"%s\" 'one arg' two\\ words\n"
             "[profile fails]\ncredential_process = /bin/sh -c 'echo leaked-secret; exit 3'\n"
             "[profile v2]\ncredential_process = /bin/echo '{\"Version\": 2, "
             "\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"B\"}'\n"
             "[profile missing]\ncredential_process = /nonexistent/program\n"
             "[profile open]\ncredential_process = \"/bin/echo\n", prog);
    char *cf = write_file("config-process", conf, 0600);
    setenv("AWS_CONFIG_FILE", cf, 1);
    creds_config_t cfg = base_config();
    cfg.profile = "proc";
    creds_t *c;
    evrec_credentials_t out;
    char err[1024];
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDPROC2"); /* two words: "one arg", "two words" */
    assert_string_equal(out.session_token, "procToken");
    assert_int_equal(out.expiration_ms, exp * 1000);
    char *args = NULL;
    size_t alen = 0;
    assert_int_equal(port_read_file(calls, &args, &alen, 4096), 0);
    assert_string_equal(args, "one arg\ntwo words\n");
    port_free(args);

    g_now += 30 * 60000; /* cached */
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDPROC2");
    g_now = exp * 1000 - 4 * 60000; /* within 5 minutes of Expiration: run again */
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDPROC4");
    creds_free(c);

    /* failures name the program and why, never its output */
    static const struct { const char *profile, *needle; int code; } bad[] = {
        { "fails", "credential_process '/bin/sh' exited with status 3", EVREC_E_CREDENTIALS },
        { "v2", "the answer's Version is not 1", EVREC_E_CREDENTIALS },
        { "missing", "'/nonexistent/program' was not found", EVREC_E_CREDENTIALS },
        { "open", "leaves a quote open", EVREC_E_CONFIG },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.profile = bad[i].profile;
        assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
        assert_int_equal(get(c, &out, err, sizeof err), bad[i].code);
        if (!strstr(err, bad[i].needle))
            fail_msg("profile %s: %s", bad[i].profile, err);
        assert_non_null(strstr(err, "shared files: profile '"));
        assert_null(strstr(err, "leaked-secret"));
        creds_free(c);
    }
    free(prog);
    free(cf);
    free(calls);
}

/* -- assume role, web identity --------------------------------------------------------------- */

static cJSON *last_sts(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/last_sts", g_ep.url);
    char *body = tu_http("GET", url, NULL, NULL);
    assert_non_null(body);
    cJSON *j = cJSON_Parse(body);
    free(body);
    assert_non_null(j);
    return j;
}

static const char *jstr(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void assume_role(void **state)
{
    (void)state;
    char text[2400];
    snprintf(text, sizeof text,
             "[base]\naws_access_key_id = " SOURCE_KEY "\n"
             "aws_secret_access_key = " SOURCE_SECRET "\n");
    char *credfile = write_file("credentials-roles", text, 0600);
    snprintf(text, sizeof text,
             "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/needs-external-id\n"
             "source_profile = base\nexternal_id = ext-123\nrole_session_name = evrec-test\n"
             "duration_seconds = 1800\n"
             "[profile chained]\nrole_arn = arn:aws:iam::123456789012:role/second\n"
             "source_profile = role\n"
             "[profile fromenv]\nrole_arn = arn:aws:iam::123456789012:role/env\n"
             "credential_source = Environment\n"
             "[profile denied]\nrole_arn = arn:aws:iam::123456789012:role/denied\n"
             "source_profile = base\n"
             "[profile loop1]\nrole_arn = arn:aws:iam::123456789012:role/l1\n"
             "source_profile = loop2\n"
             "[profile loop2]\nrole_arn = arn:aws:iam::123456789012:role/l2\n"
             "source_profile = loop1\n"
             "[profile both]\nrole_arn = arn:aws:iam::123456789012:role/b\n"
             "source_profile = base\ncredential_source = Environment\n"
             "[profile badsource]\nrole_arn = arn:aws:iam::123456789012:role/b\n"
             "credential_source = Somewhere\n"
             "[profile fromtask]\nrole_arn = arn:aws:iam::123456789012:role/task-role\n"
             "credential_source = EcsContainer\n"
             "[profile frominstance]\nrole_arn = arn:aws:iam::123456789012:role/inst-role\n"
             "credential_source = Ec2InstanceMetadata\n");
    char *conf = write_file("config-roles", text, 0600);
    setenv("AWS_SHARED_CREDENTIALS_FILE", credfile, 1);
    setenv("AWS_CONFIG_FILE", conf, 1);
    char sts[160];
    snprintf(sts, sizeof sts, "%s/", g_ep.url);
    setenv("AWS_ENDPOINT_URL_STS", sts, 1);
    creds_config_t cfg = base_config();
    cfg.region = "eu-west-1";
    cfg.profile = "role";
    creds_t *c;
    evrec_credentials_t out;
    char err[1024];
    long sts0 = fc_stat(&g_ep, NULL, "sts");

    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    if (get(c, &out, err, sizeof err) != EVREC_OK)
        fail_msg("assume role: %s", err);
    assert_memory_equal(out.access_key_id, "ASIASTS", 7);
    assert_true(out.session_token[0] != '\0');
    /* duration_seconds asked for 30 minutes */
    assert_true(out.expiration_ms > g_now + 1700000 && out.expiration_ms < g_now + 1900000);
    cJSON *j = last_sts(); /* the fake checked the signature with botocore's signer */
    assert_string_equal(jstr(j, "Action"), "AssumeRole");
    assert_string_equal(jstr(j, "ExternalId"), "ext-123");
    assert_string_equal(jstr(j, "RoleSessionName"), "evrec-test");
    assert_string_equal(jstr(j, "DurationSeconds"), "1800");
    assert_string_equal(jstr(j, "_access_key_id"), SOURCE_KEY);
    assert_string_equal(jstr(j, "_region"), "eu-west-1");
    cJSON_Delete(j);
    assert_int_equal(fc_stat(&g_ep, NULL, "sts"), sts0 + 1);
    g_now += 10 * 60000; /* cached */
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&g_ep, NULL, "sts"), sts0 + 1);
    g_now = out.expiration_ms - 4 * 60000; /* refreshed ahead of expiry */
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&g_ep, NULL, "sts"), sts0 + 2);
    creds_free(c);

    /* A role whose source is another role: two AssumeRole calls, the second signed by the
     * first's temporary credentials (and their session token). */
    cfg.profile = "chained";
    g_now = port_wall_ms();
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    if (get(c, &out, err, sizeof err) != EVREC_OK)
        fail_msg("chained: %s", err);
    assert_int_equal(fc_stat(&g_ep, NULL, "sts"), sts0 + 4);
    j = last_sts();
    assert_memory_equal(jstr(j, "_access_key_id"), "ASIASTS", 7);
    assert_string_equal(jstr(j, "RoleArn"), "arn:aws:iam::123456789012:role/second");
    assert_memory_equal(jstr(j, "RoleSessionName"), "evrec-session-", 14);
    cJSON_Delete(j);
    creds_free(c);

    /* credential_source = Environment signs with the environment's keys */
    setenv("AWS_ACCESS_KEY_ID", SOURCE_KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SOURCE_SECRET, 1);
    cfg.profile = "fromenv";
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    if (get(c, &out, err, sizeof err) != EVREC_OK)
        fail_msg("credential_source: %s", err);
    assert_memory_equal(out.access_key_id, "ASIASTS", 7);
    creds_free(c);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");

    /* credential_source = EcsContainer / Ec2InstanceMetadata: the role is assumed with the
     * task's or the instance's credentials */
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/task-2", 1);
    cfg.container_endpoint = g_ep.url;
    cfg.profile = "fromtask";
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    if (get(c, &out, err, sizeof err) != EVREC_OK)
        fail_msg("credential_source EcsContainer: %s", err);
    assert_memory_equal(out.access_key_id, "ASIASTS", 7);
    j = last_sts();
    assert_memory_equal(jstr(j, "_access_key_id"), "ASIACONT", 8);
    cJSON_Delete(j);
    creds_free(c);
    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", g_ep.url, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    cfg.profile = "frominstance";
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    if (get(c, &out, err, sizeof err) != EVREC_OK)
        fail_msg("credential_source Ec2InstanceMetadata: %s", err);
    j = last_sts();
    assert_memory_equal(jstr(j, "_access_key_id"), "ASIAIMDS", 8);
    assert_string_equal(jstr(j, "RoleArn"), "arn:aws:iam::123456789012:role/inst-role");
    cJSON_Delete(j);
    creds_free(c);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    /* disabled, the source is named as missing */
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "profile 'frominstance': credential_source Ec2InstanceMetadata: "
                                "AWS_EC2_METADATA_DISABLED is set"));
    creds_free(c);

    /* refusals and mistakes name the profile, the role and the reason, and no secret */
    cfg.profile = "denied";
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "shared files: profile 'denied': role "
                                "arn:aws:iam::123456789012:role/denied: AssumeRole: HTTP 403 "
                                "AccessDenied: User is not authorized"));
    assert_no_secret(err, &out);
    creds_free(c);
    static const struct { const char *profile, *needle; } cfgerr[] = {
        { "loop1", "source_profile chain deeper than" },
        { "both", "both source_profile and credential_source" },
        { "badsource", "credential_source 'Somewhere' is not Environment" },
    };
    for (size_t i = 0; i < sizeof cfgerr / sizeof cfgerr[0]; i++) {
        cfg.profile = cfgerr[i].profile;
        assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
        assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_CONFIG);
        if (!strstr(err, cfgerr[i].needle))
            fail_msg("profile %s: %s", cfgerr[i].profile, err);
        creds_free(c);
    }
    free(credfile);
    free(conf);
}

static void web_identity(void **state)
{
    (void)state;
    char sts[160];
    snprintf(sts, sizeof sts, "%s", g_ep.url);
    setenv("AWS_ENDPOINT_URL_STS", sts, 1);
    char *token = write_file("web-token", "web-identity-token-abc\n", 0600);
    char *bad = write_file("web-token-bad", "not-the-token", 0600);
    char conf[600];
    snprintf(conf, sizeof conf, "[profile web]\nweb_identity_token_file = %s\n"
                                "role_arn = arn:aws:iam::123456789012:role/web\n", token);
    char *cf = write_file("config-web", conf, 0600);
    creds_config_t cfg = base_config();
    creds_t *c;
    evrec_credentials_t out;
    char err[1024];

    /* from the environment alone: no profile needed */
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod", 1);
    setenv("AWS_ROLE_SESSION_NAME", "pod-session", 1);
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    if (get(c, &out, err, sizeof err) != EVREC_OK)
        fail_msg("web identity: %s", err);
    assert_memory_equal(out.access_key_id, "ASIAWEB", 7);
    cJSON *j = last_sts();
    assert_string_equal(jstr(j, "Action"), "AssumeRoleWithWebIdentity");
    assert_string_equal(jstr(j, "RoleArn"), "arn:aws:iam::123456789012:role/pod");
    assert_string_equal(jstr(j, "RoleSessionName"), "pod-session");
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "_access_key_id")); /* unsigned */
    cJSON_Delete(j);
    creds_free(c);

    /* a token the service refuses: named, without the token */
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", bad, 1);
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "web identity, role arn:aws:iam::123456789012:role/pod: "
                                "AssumeRoleWithWebIdentity: HTTP 400 InvalidIdentityToken"));
    assert_null(strstr(err, "not-the-token"));
    creds_free(c);

    /* an explicit profile reads its own settings, not the environment's */
    setenv("AWS_CONFIG_FILE", cf, 1);
    cfg.profile = "web";
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    if (get(c, &out, err, sizeof err) != EVREC_OK)
        fail_msg("web identity profile: %s", err);
    j = last_sts();
    assert_string_equal(jstr(j, "RoleArn"), "arn:aws:iam::123456789012:role/web");
    cJSON_Delete(j);
    creds_free(c);

    /* a token file without a role: half configured */
    unsetenv("AWS_ROLE_ARN");
    cfg.profile = NULL;
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "no role ARN"));
    creds_free(c);
    free(token);
    free(bad);
    free(cf);
}

/* -- container, IMDS ------------------------------------------------------------------------ */

static void container(void **state)
{
    (void)state;
    creds_config_t cfg = base_config();
    cfg.container_endpoint = g_ep.url;
    creds_t *c;
    evrec_credentials_t out;
    char err[1024];
    long n0 = fc_stat(&g_ep, NULL, "container");

    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/task-1", 1);
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    if (get(c, &out, err, sizeof err) != EVREC_OK)
        fail_msg("container: %s", err);
    assert_memory_equal(out.access_key_id, "ASIACONT", 8);
    assert_true(out.expiration_ms > g_now + 3500000);
    g_now = out.expiration_ms - 4 * 60000; /* refreshed ahead of expiry */
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&g_ep, NULL, "container"), n0 + 2);
    creds_free(c);
    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");

    /* the full URI (Greengrass' token exchange service, EKS Pod Identity) with its token */
    char full[200];
    snprintf(full, sizeof full, "%s/container/credentials", g_ep.url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", full, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token-value", 1);
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "container: GET credentials: HTTP 401"));
    assert_null(strstr(err, "wrong-token-value"));
    creds_free(c);
    /* the token file wins over the variable (EKS rotates it) */
    char *tf = write_file("container-token", "container-auth-token\n", 0600);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tf, 1);
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    if (get(c, &out, err, sizeof err) != EVREC_OK)
        fail_msg("container full uri: %s", err);
    assert_memory_equal(out.access_key_id, "ASIACONT", 8);
    creds_free(c);

    /* plain http only to the loopback or the container addresses */
    static const char *const refused[] = { "http://198.51.100.7/creds",
                                           "http://127.evil.example/creds",
                                           "http://169.254.170.2.example/creds" };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i], 1);
        assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
        assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_CONFIG);
        assert_non_null(strstr(err, "container: AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http"));
        creds_free(c);
    }
    free(tf);
}

static void instance_metadata_and_backoff(void **state)
{
    (void)state;
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", g_ep.url, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    creds_config_t cfg = base_config();
    creds_t *c;
    evrec_credentials_t out;
    char err[1024];
    long tok0 = fc_stat(&g_ep, NULL, "imds_token"), n0 = fc_stat(&g_ep, NULL, "imds");

    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    if (get(c, &out, err, sizeof err) != EVREC_OK)
        fail_msg("imds: %s", err);
    assert_memory_equal(out.access_key_id, "ASIAIMDS", 8);
    assert_int_equal(fc_stat(&g_ep, NULL, "imds_token"), tok0 + 1); /* IMDSv2: token first */
    assert_int_equal(fc_stat(&g_ep, NULL, "imds"), n0 + 1);

    /* The refresh fails: the cached set serves until expiry, and the provider is not asked
     * again until its backoff has passed. */
    assert_int_equal(fc_config(&g_ep, NULL, "fail=imds&times=2&status=500"), 0);
    int64_t exp = out.expiration_ms;
    g_now = exp - 4 * 60000;
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(out.expiration_ms, exp); /* the old set */
    assert_int_equal(fc_stat(&g_ep, NULL, "imds"), n0 + 1 + 1); /* asked, refused */
    g_now += 500; /* inside the 1 s backoff: not asked */
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&g_ep, NULL, "imds"), n0 + 2);
    g_now += 1000; /* asked again, refused again: the next wait is 2 s */
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&g_ep, NULL, "imds"), n0 + 3);
    g_now += 1500;
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&g_ep, NULL, "imds"), n0 + 3);
    g_now += 1000; /* the service is back */
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(fc_stat(&g_ep, NULL, "imds"), n0 + 4);
    assert_true(out.expiration_ms > exp);
    creds_free(c);

    /* with nothing cached, the error during the backoff still says why */
    assert_int_equal(fc_config(&g_ep, NULL, "fail=imds&times=1&status=503"), 0);
    g_now = port_wall_ms();
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_SERVICE);
    assert_non_null(strstr(err, "instance metadata: GET "
                                "/latest/meta-data/iam/security-credentials/evrec-instance-role"
                                ": HTTP 503"));
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_SERVICE);
    assert_non_null(strstr(err, "HTTP 503"));
    assert_non_null(strstr(err, "not asked again for 1 s"));
    creds_free(c);

    /* the region, from placement/region, when nothing else names one */
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    unsetenv("AWS_REGION");
    char region[32];
    assert_int_equal(creds_resolve_region(NULL, NULL, region, sizeof region), EVREC_OK);
    assert_string_equal(region, "eu-north-1");

    /* AWS_EC2_METADATA_DISABLED: not asked at all */
    setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
    long t1 = fc_stat(&g_ep, NULL, "imds_token");
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "instance metadata"));
    assert_int_equal(fc_stat(&g_ep, NULL, "imds_token"), t1);
    creds_free(c);
    assert_int_equal(creds_resolve_region(NULL, NULL, region, sizeof region), EVREC_E_CONFIG);
}

/* -- SSO ------------------------------------------------------------------------------------- */

static void write_sso_cache(const char *key, const char *token, int64_t expires_s)
{
    unsigned char d[20];
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_sha1((const unsigned char *)key, strlen(key), d);
#else
    mbedtls_sha1_ret((const unsigned char *)key, strlen(key), d);
#endif
    char name[128] = ".aws/sso/cache/";
    for (int i = 0; i < 20; i++)
        snprintf(name + strlen(name), 3, "%02x", d[i]);
    strcat(name, ".json");
    char *dir = path_of(".aws/sso/cache");
    assert_int_equal(port_mkdir_private(dir), 0);
    free(dir);
    char iso[32], text[600];
    time_t t = (time_t)expires_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(text, sizeof text, "{\"startUrl\": \"https://example.awsapps.com/start\", "
                                "\"region\": \"us-east-1\", \"accessToken\": \"%s\", "
                                "\"expiresAt\": \"%s\"}", token, iso);
    free(write_file(name, text, 0600));
}

static void sso(void **state)
{
    (void)state;
    char *conf = write_file("config-sso",
                            "[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\n"
                            "sso_role_name = Analytics\n"
                            "[sso-session corp]\nsso_start_url = https://example.awsapps.com/start\n"
                            "sso_region = us-east-1\n"
                            "[profile legacy]\nsso_start_url = https://legacy.awsapps.com/start\n"
                            "sso_region = eu-west-1\nsso_account_id = 123456789012\n"
                            "sso_role_name = Analytics\n"
                            "[profile nosession]\nsso_session = absent\n"
                            "sso_account_id = 1\nsso_role_name = r\n",
                            0600);
    setenv("AWS_CONFIG_FILE", conf, 1);
    setenv("AWS_ENDPOINT_URL_SSO", g_ep.url, 1);
    write_sso_cache("corp", "sso-access-token", g_now / 1000 + 3600);
    creds_config_t cfg = base_config();
    cfg.profile = "dev";
    creds_t *c;
    evrec_credentials_t out;
    char err[1024];
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    if (get(c, &out, err, sizeof err) != EVREC_OK)
        fail_msg("sso: %s", err);
    assert_memory_equal(out.access_key_id, "ASIASSO", 7);
    assert_true(out.expiration_ms > g_now + 3500000);
    creds_free(c);

    /* the legacy form: the cache is named by the start URL; a stale token is refused */
    write_sso_cache("https://legacy.awsapps.com/start", "sso-access-token", g_now / 1000 - 60);
    cfg.profile = "legacy";
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "the SSO session has expired: run 'aws sso login'"));
    creds_free(c);
    write_sso_cache("https://legacy.awsapps.com/start", "revoked-token", g_now / 1000 + 600);
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "sso account 123456789012 role Analytics: GetRoleCredentials: "
                                "HTTP 401 UnauthorizedException: Session token not found"));
    assert_null(strstr(err, "revoked-token"));
    creds_free(c);

    cfg.profile = "nosession";
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    assert_int_equal(get(c, &out, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "no [sso-session absent] section"));
    creds_free(c);
    free(conf);
}

/* -- the agent's log ------------------------------------------------------------------------ */

typedef struct logbook {
    char *text;
    size_t len;
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
}

/* An agent whose profile assumes a role: with the log at DEBUG (the HTTP exchanges logged),
 * neither the source keys' secret nor the role's secret or token appears, whether the role is
 * refused (the reason is logged) or given (and then refused by the events endpoint). */
static void agent_log_has_no_credential_secrets(void **state)
{
    (void)state;
    tu_endpoint_t events;
    if (tu_endpoint_start(&events, NULL) != 0)
        fail_msg("could not start tools/fake_endpoint.py");
    char *credfile = write_file("credentials-log", "[base]\naws_access_key_id = " SOURCE_KEY
                                "\naws_secret_access_key = " SOURCE_SECRET "\n", 0600);
    char *conf = write_file("config-log",
                            "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/ok\n"
                            "source_profile = base\n"
                            "[profile denied]\nrole_arn = arn:aws:iam::123456789012:role/denied\n"
                            "source_profile = base\n", 0600);
    setenv("AWS_SHARED_CREDENTIALS_FILE", credfile, 1);
    setenv("AWS_CONFIG_FILE", conf, 1);
    setenv("AWS_ENDPOINT_URL_STS", g_ep.url, 1);
    static const char *const profiles[] = { "denied", "role" };
    for (size_t i = 0; i < 2; i++) {
        char *dir = tu_tempdir("chain-store");
        logbook_t book = { 0 };
        evrec_options_t o;
        evrec_options_init(&o);
        o.application_id = "0123456789abcdef0123456789abcdef";
        o.region = "us-east-1";
        o.endpoint_url = events.url;
        o.profile = profiles[i];
        o.manual_flush = 1;
        o.backoff_base_ms = 10;
        o.backoff_cap_ms = 20;
        o.log_fn = on_log;
        o.log_user = &book;
        o.log_level = EVREC_LOG_DEBUG;
        evrec_t *a = NULL;
        char err[512];
        assert_int_equal(evrec_open(&a, dir, &o, err, sizeof err), EVREC_OK);
        evrec_event_t *ev = NULL;
        assert_int_equal(evrec_event_new(&ev, "chain.test"), EVREC_OK);
        assert_int_equal(evrec_record(a, ev), EVREC_OK);
        evrec_event_free(ev);
        assert_int_not_equal(evrec_flush(a, 300), EVREC_OK); /* refused either way */
        evrec_close(a, 0);
        assert_non_null(book.text);
        if (i == 0)
            assert_non_null(strstr(book.text, "AssumeRole: HTTP 403 AccessDenied"));
        else
            assert_non_null(strstr(book.text, "403"));
        assert_null(strstr(book.text, SOURCE_SECRET));
        assert_null(strstr(book.text, "stsSecret"));
        assert_null(strstr(book.text, "stsToken"));
        free(book.text);
        tu_rmtree(dir);
        free(dir);
    }
    tu_endpoint_stop(&events);
    free(credfile);
    free(conf);
}

/* -- pieces ---------------------------------------------------------------------------------- */

static void command_splitting_and_xml(void **state)
{
    (void)state;
    char buf[256], *argv[8];
    assert_int_equal(creds_split_command("a 'b c' \"d \\\"e\\\"\" f\\ g ''", buf, sizeof buf,
                                         argv, 8), 5);
    assert_string_equal(argv[0], "a");
    assert_string_equal(argv[1], "b c");
    assert_string_equal(argv[2], "d \"e\"");
    assert_string_equal(argv[3], "f g");
    assert_string_equal(argv[4], "");
    assert_null(argv[5]);
    assert_int_equal(creds_split_command("a 'open", buf, sizeof buf, argv, 8), -1);
    assert_int_equal(creds_split_command("   ", buf, sizeof buf, argv, 8), -1);
    assert_int_equal(creds_split_command("1 2 3 4 5 6 7 8 9", buf, sizeof buf, argv, 8), -1);

    static const char xml[] =
        "<R><Credentials>\n  <AccessKeyId>AK</AccessKeyId>\n"
        "<SessionToken attr=\"x\">a&amp;b&lt;c&#43;&#x2F;</SessionToken><Empty/>"
        "</Credentials></R>";
    char out[64];
    assert_int_equal(creds_xml_text(xml, sizeof xml - 1, "AccessKeyId", out, sizeof out), 0);
    assert_string_equal(out, "AK");
    assert_int_equal(creds_xml_text(xml, sizeof xml - 1, "SessionToken", out, sizeof out), 0);
    assert_string_equal(out, "a&b<c+/");
    assert_int_equal(creds_xml_text(xml, sizeof xml - 1, "Empty", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(creds_xml_text(xml, sizeof xml - 1, "Missing", out, sizeof out), -1);
    assert_int_equal(creds_xml_text(xml, 40, "SessionToken", out, sizeof out), -1); /* cut */
    assert_int_equal(creds_xml_text(xml, sizeof xml - 1, "SessionToken", out, 4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(command_splitting_and_xml, each_setup),
        cmocka_unit_test_setup(credential_process, each_setup),
        cmocka_unit_test_setup(assume_role, each_setup),
        cmocka_unit_test_setup(web_identity, each_setup),
        cmocka_unit_test_setup(container, each_setup),
        cmocka_unit_test_setup(instance_metadata_and_backoff, each_setup),
        cmocka_unit_test_setup(sso, each_setup),
        cmocka_unit_test_setup(agent_log_has_no_credential_secrets, each_setup),
    };
    return cmocka_run_group_tests_name("credentials_chain", tests, group_setup, group_teardown);
}
