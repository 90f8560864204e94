/*
 * The credentials chain without a network: shared-file parsing (good and malformed files),
 * provider order (environment and temp files), caching, refresh ahead of expiry and never
 * after it (with an injected clock), region resolution, and error messages that name the
 * providers and never carry a secret.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "credentials.h"
#include "port.h"
#include "evrec.h"
#include "testutil.h"

/* -- INI parsing -------------------------------------------------------------------------- */

static const char credentials_text[] =
    "# a comment\n"
    "; another comment\n"
    "[default]\n"
    "aws_access_key_id = AKIDDEFAULT\n"
    "AWS_Secret_Access_Key=secret/with+signs==\n"
    "\n"
    "  [dev]  \n"
    "aws_access_key_id: AKIDDEV   \n"
    "aws_secret_access_key =   dev secret with spaces  \n"
    "   # an indented comment\n"
    "empty =\n"
    "s3 =\n"
    "    region = nested-not-top-level\n"
    "\tmax_concurrent_requests = 10\n"
    "[profile dev]\n"
    "aws_access_key_id = NOT-THE-DEV-PROFILE\n"
    "[default-ish]\r\n"
    "aws_access_key_id = AKIDCRLF\r\n";

static const char config_text[] =
    "[default]\n"
    "region = us-west-2\n"
    "[profile dev]\n"
    "region=eu-central-1\n"
    "[dev]\n"
    "region = not-a-config-profile\n"
    "[profile   spaced  ] ; trailing words after the header\n"
    "region = ap-south-1\n";

static void ini_good(void **state)
{
    (void)state;
    char v[128];
    assert_int_equal(creds_ini_get(credentials_text, 0, "default", "aws_access_key_id", v,
                                   sizeof v),
                     EVREC_OK);
    assert_string_equal(v, "AKIDDEFAULT");
    /* keys are case-insensitive; '=' inside a value is kept */
    assert_int_equal(creds_ini_get(credentials_text, 0, "default", "aws_secret_access_key", v,
                                   sizeof v),
                     EVREC_OK);
    assert_string_equal(v, "secret/with+signs==");
    assert_int_equal(creds_ini_get(credentials_text, 0, "dev", "aws_access_key_id", v, sizeof v),
                     EVREC_OK);
    assert_string_equal(v, "AKIDDEV");
    assert_int_equal(creds_ini_get(credentials_text, 0, "dev", "aws_secret_access_key", v,
                                   sizeof v),
                     EVREC_OK);
    assert_string_equal(v, "dev secret with spaces");
    assert_int_equal(creds_ini_get(credentials_text, 0, "dev", "empty", v, sizeof v), EVREC_OK);
    assert_string_equal(v, "");
    /* a key inside a nested sub-section is not a top-level key */
    assert_int_equal(creds_ini_get(credentials_text, 0, "dev", "region", v, sizeof v),
                     EVREC_E_NOT_FOUND);
    /* in the credentials file "[profile dev]" is a profile named "profile dev" */
    assert_int_equal(creds_ini_get(credentials_text, 0, "profile dev", "aws_access_key_id", v,
                                   sizeof v),
                     EVREC_OK);
    assert_string_equal(v, "NOT-THE-DEV-PROFILE");
    assert_int_equal(creds_ini_get(credentials_text, 0, "default-ish", "aws_access_key_id", v,
                                   sizeof v),
                     EVREC_OK);
    assert_string_equal(v, "AKIDCRLF");
    assert_int_equal(creds_ini_get(credentials_text, 0, "nope", "aws_access_key_id", v, sizeof v),
                     EVREC_E_NOT_FOUND);

    /* config file: "[profile NAME]", and "[default]" */
    assert_int_equal(creds_ini_get(config_text, 1, "default", "region", v, sizeof v), EVREC_OK);
    assert_string_equal(v, "us-west-2");
    assert_int_equal(creds_ini_get(config_text, 1, "dev", "region", v, sizeof v), EVREC_OK);
    assert_string_equal(v, "eu-central-1");
    assert_int_equal(creds_ini_get(config_text, 1, "spaced", "region", v, sizeof v), EVREC_OK);
    assert_string_equal(v, "ap-south-1");
    assert_int_equal(creds_ini_get("[profile default]\nregion = r1\n", 1, "default", "region", v,
                                   sizeof v),
                     EVREC_OK);
    assert_string_equal(v, "r1");
    /* a value longer than the buffer is cut to fit, not overflowed */
    char small[4];
    assert_int_equal(creds_ini_get(config_text, 1, "default", "region", small, sizeof small),
                     EVREC_OK);
    assert_string_equal(small, "us-");
}

static void ini_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "aws_access_key_id = before any section\n[default]\n",
        "[default]\nthis line has no delimiter\n",
        "[default\naws_access_key_id = x\n",
        "[default]\naws_access_key_id = a\n[default]\naws_access_key_id = b\n",
        "[default]\naws_access_key_id = a\nAWS_ACCESS_KEY_ID = b\n",
        "[default]\n= value without a key\n",
    };
    char v[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(creds_ini_get(bad[i], 0, "default", "aws_access_key_id", v, sizeof v),
                         EVREC_E_CONFIG);
    assert_int_equal(creds_ini_get("", 0, "default", "k", v, sizeof v), EVREC_E_NOT_FOUND);
    assert_int_equal(creds_ini_get("[default]\n", 0, "", "k", v, sizeof v), EVREC_E_INVALID);
    assert_int_equal(creds_ini_get(NULL, 0, "default", "k", v, sizeof v), EVREC_E_INVALID);
}

/* -- the chain ---------------------------------------------------------------------------- */

static char *g_dir; /* HOME and the shared files of these tests */

static void clean_env(void)
{
    static const char *const vars[] = {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_REGION", "AWS_DEFAULT_REGION",
        "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO",
        "AWS_ENDPOINT_URL_PINPOINT", "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS",
        "AWS_ENDPOINT_URL_KINESIS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("HOME", g_dir, 1); /* never the real ~/.aws */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1); /* never 169.254.169.254 */
}

static char *write_file(const char *name, const char *text)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", g_dir, name) > 0);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(p, 0600), 0); /* as ~/.aws/credentials must be */
    return p;
}

static int group_setup(void **state)
{
    (void)state;
    g_dir = tu_tempdir("creds");
    return g_dir ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static int each_setup(void **state)
{
    (void)state;
    clean_env();
    return 0;
}

typedef struct cb_state {
    int calls;
    int fail;
    int64_t lifetime_ms; /* 0: long-term */
    int64_t *clock;
} cb_state_t;

static int callback(void *user, evrec_credentials_t *out)
{
    cb_state_t *s = user;
    s->calls++;
    if (s->fail)
        return EVREC_E_CONNECT;
    snprintf(out->access_key_id, sizeof out->access_key_id, "AKIDCALLBACK%d", s->calls);
    snprintf(out->secret_access_key, sizeof out->secret_access_key, "cbsecret%d", s->calls);
    snprintf(out->session_token, sizeof out->session_token, "cbtoken%d", s->calls);
    out->expiration_ms = s->lifetime_ms ? *s->clock + s->lifetime_ms : 0;
    return EVREC_OK;
}

static int64_t fake_clock(void *user)
{
    return *(int64_t *)user;
}

/* creds_get with a fresh chain; returns the code, fills *out and err. */
static int get_once(const creds_config_t *cfg, evrec_credentials_t *out, char *err, size_t len)
{
    creds_t *c;
    assert_int_equal(creds_new(&c, cfg), EVREC_OK);
    int rc = creds_get(c, out, err, len);
    creds_free(c);
    return rc;
}

static void provider_order(void **state)
{
    (void)state;
    char *cred_path = write_file("credentials", "[default]\naws_access_key_id = AKIDFILE\n"
                                                "aws_secret_access_key = filesecret\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    int64_t now = 1764000000000LL;
    cb_state_t cb = { .clock = &now };
    creds_config_t cfg = { .access_key_id = "AKIDSTATIC", .secret_access_key = "staticsecret",
                           .callback = callback, .callback_user = &cb };
    evrec_credentials_t out;
    char err[1024];

    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDSTATIC");
    assert_string_equal(out.session_token, "");
    assert_int_equal(cb.calls, 0);

    cfg.access_key_id = cfg.secret_access_key = NULL;
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDCALLBACK1");

    cfg.callback = NULL;
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDENV");
    assert_string_equal(out.secret_access_key, "envsecret");
    assert_string_equal(out.session_token, "envtoken");

    cfg.no_environment = 1;
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDFILE");
    assert_string_equal(out.secret_access_key, "filesecret");

    /* A failing callback does not stop the chain; its failure is named. */
    cb.fail = 1;
    cfg.callback = callback;
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDFILE");
    free(cred_path);
}

static void shared_profiles(void **state)
{
    (void)state;
    char *cred_path = write_file("credentials2",
                                 "[default]\naws_access_key_id = AKIDDEF\n"
                                 "aws_secret_access_key = defsecret\n"
                                 "[team]\naws_access_key_id = AKIDTEAM\n"
                                 "aws_secret_access_key = teamsecret\n"
                                 "aws_session_token = teamtoken\n");
    char *conf_path = write_file("config2", "[profile cfgonly]\naws_access_key_id = AKIDCFG\n"
                                            "aws_secret_access_key = cfgsecret\n"
                                            "region = eu-west-3\n"
                                            "[profile assume]\nrole_arn = arn:aws:iam::1:role/x\n"
                                            "[profile half]\naws_access_key_id = AKIDHALF\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
    setenv("AWS_CONFIG_FILE", conf_path, 1);
    creds_config_t cfg = { 0 };
    evrec_credentials_t out;
    char err[1024];

    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDDEF");

    setenv("AWS_PROFILE", "team", 1);
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDTEAM");
    assert_string_equal(out.session_token, "teamtoken");

    cfg.profile = "cfgonly"; /* the option beats AWS_PROFILE; keys may live in config */
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDCFG");
    char region[32];
    assert_int_equal(creds_resolve_region(NULL, "cfgonly", region, sizeof region), EVREC_OK);
    assert_string_equal(region, "eu-west-3");

    cfg.profile = "assume"; /* half configured: stops the chain, naming what is missing */
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "shared files: profile 'assume' has role_arn and neither "
                                "source_profile nor credential_source"));

    cfg.profile = "half";
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "has aws_access_key_id but no aws_secret_access_key"));

    cfg.profile = "missing";
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "profile 'missing' not found in"));
    assert_non_null(strstr(err, cred_path));

    /* A malformed file is an error naming the file and line, as for the AWS CLI. */
    char *broken = write_file("credentials3", "[default]\naws_access_key_id = AKIDX\n"
                                              "garbage line\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", broken, 1);
    cfg.profile = NULL;
    unsetenv("AWS_PROFILE");
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "credentials3 line 3 is malformed"));

    /* With no files at all and the default profile, the provider is simply not configured. */
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "not configured: static keys, callback, environment, "
                                "shared files, iot, cognito, container, instance metadata"));
    free(cred_path);
    free(conf_path);
    free(broken);
}

/* A key or token that could not go out as one header line (a CR/LF would inject a header) is
 * refused by every provider: static keys at open, the others when they answer. */
static void control_characters_refused(void **state)
{
    (void)state;
    creds_config_t st = { .access_key_id = "AKIDX", .secret_access_key = "s",
                          .session_token = "tok\r\nX-Injected: yes" };
    char err[1024];
    assert_int_equal(creds_check_config(&st, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "control character"));
    assert_null(strstr(err, "X-Injected"));
    evrec_credentials_t out;
    assert_int_equal(get_once(&st, &out, err, sizeof err), EVREC_E_CONFIG);

    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtoken\nX-Injected: yes", 1);
    creds_config_t none = { 0 };
    assert_int_equal(get_once(&none, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "environment: gave a key or session token holding a control "
                                "character"));
    assert_null(strstr(err, "envtoken"));
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    assert_int_equal(get_once(&none, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.session_token, "envtoken");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
}

/* A secret is taken only from a file private to its owner (as ssh asks of its keys); a FIFO
 * is refused at once instead of blocking until a writer comes. */
static void secret_files_must_be_private(void **state)
{
    (void)state;
    char *cred = write_file("credentials-loose", "[default]\naws_access_key_id = AKIDLOOSE\n"
                                                 "aws_secret_access_key = loosesecret\n"
                                                 "[tok]\naws_access_key_id = AKIDTOK\n");
    char *conf = write_file("config-loose", "[default]\nregion = eu-north-1\n"
                                            "[profile tok]\naws_secret_access_key = s\n"
                                            "aws_session_token = conftoken\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    setenv("AWS_CONFIG_FILE", conf, 1);
    creds_config_t cfg = { 0 };
    evrec_credentials_t out;
    char err[1024];
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDLOOSE");

    assert_int_equal(chmod(cred, 0644), 0);
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "group or others may access it (mode 0644)"));
    assert_non_null(strstr(err, "chmod 600"));
    assert_null(strstr(err, "loosesecret"));
    assert_int_equal(chmod(cred, 0640), 0);
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CREDENTIALS);

    /* the secret and token of profile tok come from the config file: its mode is what counts */
    assert_int_equal(chmod(cred, 0600), 0);
    assert_int_equal(chmod(conf, 0604), 0);
    cfg.profile = "tok";
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, conf));
    /* a config file readable by others is fine for what is not secret: the region */
    char region[32];
    assert_int_equal(creds_resolve_region(NULL, NULL, region, sizeof region), EVREC_OK);
    assert_string_equal(region, "eu-north-1");
    assert_int_equal(chmod(conf, 0600), 0);
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.session_token, "conftoken");

    /* the rule itself, as ssh judges keys: the caller's file private to it; root's file may
     * be given to a group (root:evrec 0640 for a service user), never to others */
    long me = (long)geteuid();
    long other = me == 4242 ? 4243 : 4242;
    assert_int_equal(port_secret_owner_ok(me, 0100600), 0);
    assert_int_equal(port_secret_owner_ok(me, 0100400), 0);
    assert_int_equal(port_secret_owner_ok(me, 0100640), -EACCES);
    assert_int_equal(port_secret_owner_ok(me, 0100602), -EACCES);
    assert_int_equal(port_secret_owner_ok(other, 0100600), -EPERM);
    assert_int_equal(port_secret_owner_ok(0, 0100604), -EACCES);
    assert_int_equal(port_secret_owner_ok(0, 0100640), me == 0 ? -EACCES : 0);

    /* a FIFO in place of the credentials file: refused at once, not read forever */
    char *fifo = NULL;
    assert_true(asprintf(&fifo, "%s/credentials-fifo", g_dir) > 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    setenv("AWS_SHARED_CREDENTIALS_FILE", fifo, 1);
    cfg.profile = NULL;
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(fifo);
    free(fifo);
    free(cred);
    free(conf);
}

/* /dev/null in place of the credentials or the config file (the usual way to say "not that
 * file", in CI and containers) reads as an empty file, as botocore reads it: the other file
 * still gives the profile. */
static void dev_null_is_an_empty_file(void **state)
{
    (void)state;
    char *conf = write_file("config-devnull", "[profile np]\naws_access_key_id = AKIDCONF\n"
                                              "aws_secret_access_key = confsecret\n");
    char *cred = write_file("credentials-devnull", "[default]\naws_access_key_id = AKIDCRED\n"
                                                   "aws_secret_access_key = credsecret\n");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    creds_config_t cfg = { .profile = "np" };
    evrec_credentials_t out;
    char err[1024];
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
    setenv("AWS_CONFIG_FILE", conf, 1);
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDCONF");

    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    setenv("AWS_CONFIG_FILE", "/dev/null", 1);
    cfg.profile = NULL;
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDCRED");
    unlink(conf);
    unlink(cred);
    free(conf);
    free(cred);
}

/* An explicit profile (the option, the CLI's --profile) is the identity asked for: keys in
 * the environment do not sign in its place. AWS_PROFILE / AWS_DEFAULT_PROFILE are not an
 * explicit choice, so environment keys still win over them, as in botocore. */
static void explicit_profile_beats_environment(void **state)
{
    (void)state;
    char *cred_path = write_file("credentials-explicit",
                                 "[default]\naws_access_key_id = AKIDDEF\n"
                                 "aws_secret_access_key = defsecret\n"
                                 "[good]\naws_access_key_id = AKIDGOOD\n"
                                 "aws_secret_access_key = goodsecret\n"
                                 "[legacy]\naws_access_key_id = AKIDLEGACY\n"
                                 "aws_secret_access_key = legacysecret\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    creds_config_t cfg = { .profile = "good" };
    evrec_credentials_t out;
    char err[1024];
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDGOOD");
    assert_string_equal(out.secret_access_key, "goodsecret");

    /* A missing explicit profile fails; it does not fall back to the environment's keys. */
    cfg.profile = "absent";
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "profile 'absent' not found"));

    /* The environment's profile names do not outrank the environment's keys. */
    cfg.profile = NULL;
    setenv("AWS_PROFILE", "good", 1);
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDENV");

    /* Without keys, AWS_DEFAULT_PROFILE is read before AWS_PROFILE (botocore's order). */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDGOOD");
    setenv("AWS_DEFAULT_PROFILE", "legacy", 1);
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDLEGACY");
    free(cred_path);
}

static void errors_name_providers_without_secrets(void **state)
{
    (void)state;
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    evrec_credentials_t out;
    char err[1024];

    /* Half of the static keys: the chain stops (falling through would hide the mistake). */
    creds_config_t cfg = { .secret_access_key = "TopSecretValue123" };
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "EnvSecretValue456", 1);
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "static keys: secret_access_key is set but access_key_id is not"));
    assert_null(strstr(err, "TopSecretValue123"));

    /* Half of the environment: named, and the chain goes on. */
    cfg.secret_access_key = NULL;
    unsetenv("AWS_ACCESS_KEY_ID");
    int64_t now = 1000;
    cb_state_t cb = { .fail = 1, .clock = &now };
    cfg.callback = callback;
    cfg.callback_user = &cb;
    assert_int_equal(get_once(&cfg, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_non_null(strstr(err, "callback: returned"));
    assert_non_null(strstr(err, "environment: AWS_SECRET_ACCESS_KEY is set but "
                                "AWS_ACCESS_KEY_ID is not"));
    assert_null(strstr(err, "EnvSecretValue456"));

    /* Half-configured remote providers stop the chain and name the missing option. */
    unsetenv("AWS_SECRET_ACCESS_KEY");
    creds_config_t iot = { .iot_endpoint = "https://example.invalid", .iot_role_alias = "r",
                           .iot_thing_name = "t", .iot_cert_file = "c.pem" };
    assert_int_equal(get_once(&iot, &out, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "iot: iot_credentials_endpoint is set but iot_key_file is not"));
    assert_int_equal(creds_check_config(&iot, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "credentials (iot): iot_credentials_endpoint is set but "
                                "iot_key_file is not"));
    /* IoT options without the endpoint are half a provider too (they were skipped). */
    creds_config_t iot_no_endpoint = { .iot_role_alias = "r", .iot_thing_name = "t" };
    assert_int_equal(creds_check_config(&iot_no_endpoint, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "iot_role_alias is set but iot_credentials_endpoint is not"));
    assert_int_equal(get_once(&iot_no_endpoint, &out, err, sizeof err), EVREC_E_CONFIG);
    /* A token without keys, a Cognito override without a pool. */
    creds_config_t token_only = { .session_token = "tok" };
    assert_int_equal(creds_check_config(&token_only, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "session_token is set without access_key_id"));
    creds_config_t cog_url = { .cognito_endpoint_url = "http://127.0.0.1:9" };
    assert_int_equal(creds_check_config(&cog_url, err, sizeof err), EVREC_E_CONFIG);
    creds_config_t whole = { .iot_endpoint = "https://example.invalid", .iot_role_alias = "r",
                             .iot_thing_name = "t", .iot_cert_file = "c.pem",
                             .iot_key_file = "k.pem", .cognito_pool_id = "us-east-1:abc" };
    assert_int_equal(creds_check_config(&whole, err, sizeof err), EVREC_OK);
    /* the device key is a secret: refused at open while group or others may read it; neither
     * file may be a FIFO (the TLS set-up would wait on it past any timeout) */
    char *key = write_file("device.key", "-----BEGIN PRIVATE KEY-----\n");
    char *cert = write_file("device.pem", "-----BEGIN CERTIFICATE-----\n");
    whole.iot_key_file = key;
    whole.iot_cert_file = cert;
    assert_int_equal(creds_check_config(&whole, err, sizeof err), EVREC_OK);
    assert_int_equal(chmod(key, 0644), 0);
    assert_int_equal(chmod(cert, 0644), 0); /* a certificate is public */
    assert_int_equal(creds_check_config(&whole, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "iot_key_file"));
    assert_non_null(strstr(err, "mode 0644"));
    assert_int_equal(chmod(key, 0600), 0);
    char *fifo = NULL;
    assert_true(asprintf(&fifo, "%s/device-fifo.pem", g_dir) > 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    whole.iot_cert_file = fifo;
    assert_int_equal(creds_check_config(&whole, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "iot_cert_file is not a regular file"));
    unlink(fifo);
    free(fifo);
    free(key);
    free(cert);
    creds_config_t none = { 0 };
    assert_int_equal(creds_check_config(&none, err, sizeof err), EVREC_OK);
    creds_config_t cog = { .cognito_pool_id = "no-region-here" };
    assert_int_equal(get_once(&cog, &out, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "cognito: cognito_identity_pool_id 'no-region-here'"));
    iot.iot_key_file = "k.pem";
    iot.iot_thing_name = "bad\r\nX-Injected: 1";
    assert_int_equal(get_once(&iot, &out, err, sizeof err), EVREC_E_CONFIG);
}

static void expiry_and_refresh(void **state)
{
    (void)state;
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    const int64_t hour = 3600000, minute = 60000;
    int64_t now = 1764000000000LL;
    cb_state_t cb = { .lifetime_ms = hour, .clock = &now };
    creds_config_t cfg = { .callback = callback, .callback_user = &cb, .now_ms = fake_clock,
                           .now_user = &now };
    creds_t *c;
    assert_int_equal(creds_new(&c, &cfg), EVREC_OK);
    evrec_credentials_t out;
    char err[512];
    const int64_t t0 = now;

    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDCALLBACK1");
    assert_true(out.expiration_ms == t0 + hour);

    now = t0 + 30 * minute; /* cached */
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDCALLBACK1");
    assert_int_equal(cb.calls, 1);

    now = t0 + hour - 4 * minute; /* inside the 5-minute window: refreshed */
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDCALLBACK2");
    assert_int_equal(cb.calls, 2);
    const int64_t t1 = now;

    /* The refresh fails, but the cached set has not expired: it is still used... */
    cb.fail = 1;
    now = t1 + hour - minute;
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_string_equal(out.access_key_id, "AKIDCALLBACK2");
    assert_int_equal(cb.calls, 3);
    /* ...and never after its expiration. */
    now = t1 + hour;
    memset(&out, 0, sizeof out);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_E_CREDENTIALS);
    assert_string_equal(out.access_key_id, "");
    assert_non_null(strstr(err, "callback"));
    assert_null(strstr(err, "cbsecret"));

    /* Short-lived credentials refresh at half their lifetime. */
    cb.fail = 0;
    cb.lifetime_ms = 60000;
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    int calls = cb.calls;
    now += 29000;
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(cb.calls, calls);
    now += 2000;
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(cb.calls, calls + 1);

    /* creds_invalidate forgets the cache at once. */
    creds_invalidate(c);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(cb.calls, calls + 2);

    /* Long-term callback credentials are asked for every time (the caller holds them). */
    cb.lifetime_ms = 0;
    creds_invalidate(c);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(creds_get(c, &out, err, sizeof err), EVREC_OK);
    assert_int_equal(cb.calls, calls + 4);
    creds_free(c);
}

/* Service endpoints as the SDKs configure them: the service's variable, the global one, the
 * profile's services section, the profile's endpoint_url; and the switches that ignore them. */
static void service_endpoints(void **state)
{
    (void)state;
    char *conf = write_file("config-endpoints",
                            "[default]\nendpoint_url = http://global.example:1\n"
                            "services = local\n"
                            "[profile quiet]\nendpoint_url = http://quiet.example\n"
                            "ignore_configured_endpoint_urls = true\n"
                            "[services local]\n"
                            "pinpoint =\n"
                            "  endpoint_url = http://pinpoint.local:8080\n"
                            "personalize_events =\n"
                            "  region = ignored\n"
                            "\tendpoint_url = http://personalize.local\n"
                            "kinesis =\n");
    setenv("AWS_CONFIG_FILE", conf, 1);
    char url[256], from[160];
    assert_int_equal(creds_endpoint_url("AWS_ENDPOINT_URL_PINPOINT", NULL, 1, url, sizeof url,
                                        from, sizeof from), EVREC_OK);
    assert_string_equal(url, "http://pinpoint.local:8080");
    assert_string_equal(from, "[services local] pinpoint endpoint_url");
    assert_int_equal(creds_endpoint_url("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", NULL, 1, url,
                                        sizeof url, from, sizeof from), EVREC_OK);
    assert_string_equal(url, "http://personalize.local");
    /* a service the section names without an endpoint_url: the profile's own */
    assert_int_equal(creds_endpoint_url("AWS_ENDPOINT_URL_KINESIS", NULL, 1, url, sizeof url,
                                        from, sizeof from), EVREC_OK);
    assert_string_equal(url, "http://global.example:1");
    assert_string_equal(from, "endpoint_url of profile 'default'");
    /* the global ones are left out when asked (credential services) */
    assert_int_equal(creds_endpoint_url("AWS_ENDPOINT_URL_STS", NULL, 0, url, sizeof url, from,
                                        sizeof from), EVREC_E_NOT_FOUND);
    /* the environment before the file; the service's variable before the global one */
    setenv("AWS_ENDPOINT_URL", "http://env-global", 1);
    assert_int_equal(creds_endpoint_url("AWS_ENDPOINT_URL_PINPOINT", NULL, 1, url, sizeof url,
                                        from, sizeof from), EVREC_OK);
    assert_string_equal(url, "http://env-global");
    assert_string_equal(from, "AWS_ENDPOINT_URL");
    setenv("AWS_ENDPOINT_URL_PINPOINT", "http://env-pinpoint", 1);
    assert_int_equal(creds_endpoint_url("AWS_ENDPOINT_URL_PINPOINT", NULL, 1, url, sizeof url,
                                        from, sizeof from), EVREC_OK);
    assert_string_equal(url, "http://env-pinpoint");
    /* ignored: by the variable, or by the profile */
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    assert_int_equal(creds_endpoint_url("AWS_ENDPOINT_URL_PINPOINT", NULL, 1, url, sizeof url,
                                        from, sizeof from), EVREC_E_NOT_FOUND);
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_PINPOINT");
    assert_int_equal(creds_endpoint_url("AWS_ENDPOINT_URL_PINPOINT", "quiet", 1, url, sizeof url,
                                        from, sizeof from), EVREC_E_NOT_FOUND);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    assert_int_equal(creds_endpoint_url("AWS_ENDPOINT_URL_PINPOINT", NULL, 1, url, sizeof url,
                                        from, sizeof from), EVREC_E_NOT_FOUND);
    free(conf);
}

static void region_resolution(void **state)
{
    (void)state;
    char *conf = write_file("config-region", "[default]\nregion = from-default-profile\n"
                                             "[profile p]\nregion = from-p\n");
    setenv("AWS_CONFIG_FILE", conf, 1);
    char r[64];
    assert_int_equal(creds_resolve_region(NULL, NULL, r, sizeof r), EVREC_OK);
    assert_string_equal(r, "from-default-profile");
    setenv("AWS_PROFILE", "p", 1);
    assert_int_equal(creds_resolve_region(NULL, NULL, r, sizeof r), EVREC_OK);
    assert_string_equal(r, "from-p");
    setenv("AWS_DEFAULT_REGION", "from-default-env", 1);
    assert_int_equal(creds_resolve_region(NULL, NULL, r, sizeof r), EVREC_OK);
    assert_string_equal(r, "from-default-env");
    setenv("AWS_REGION", "from-env", 1);
    assert_int_equal(creds_resolve_region(NULL, NULL, r, sizeof r), EVREC_OK);
    assert_string_equal(r, "from-env");
    assert_int_equal(creds_resolve_region("explicit-1", NULL, r, sizeof r), EVREC_OK);
    assert_string_equal(r, "explicit-1");
    clean_env();
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    assert_int_equal(creds_resolve_region(NULL, NULL, r, sizeof r), EVREC_E_CONFIG);
    free(conf);
}

/* The one scanner of the shared files decides whether a profile exists, for the chain and
 * for the CLI: in the config file only [profile NAME] (and [default]) name a profile. */
static void profile_sections(void **state)
{
    (void)state;
    const char *config = "[default]\nregion = x\n[profile dev]\nregion = y\n[foo]\nregion = z\n"
                         "  [nested]\n";
    assert_true(creds_ini_has_profile(config, 1, "default"));
    assert_true(creds_ini_has_profile(config, 1, "dev"));
    assert_false(creds_ini_has_profile(config, 1, "foo")); /* as the AWS CLI: not a profile */
    assert_false(creds_ini_has_profile(config, 1, "profile dev"));
    const char *credentials = "[foo] ; a comment\naws_access_key_id = A\n";
    assert_true(creds_ini_has_profile(credentials, 0, "foo"));
    assert_false(creds_ini_has_profile(credentials, 0, "dev"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ini_good),
        cmocka_unit_test(ini_malformed),
        cmocka_unit_test_setup(provider_order, each_setup),
        cmocka_unit_test_setup(shared_profiles, each_setup),
        cmocka_unit_test_setup(secret_files_must_be_private, each_setup),
        cmocka_unit_test_setup(dev_null_is_an_empty_file, each_setup),
        cmocka_unit_test_setup(control_characters_refused, each_setup),
        cmocka_unit_test_setup(explicit_profile_beats_environment, each_setup),
        cmocka_unit_test_setup(errors_name_providers_without_secrets, each_setup),
        cmocka_unit_test_setup(expiry_and_refresh, each_setup),
        cmocka_unit_test_setup(service_endpoints, each_setup),
        cmocka_unit_test_setup(region_resolution, each_setup),
        cmocka_unit_test(profile_sections),
    };
    return cmocka_run_group_tests_name("credentials", tests, group_setup, group_teardown);
}
