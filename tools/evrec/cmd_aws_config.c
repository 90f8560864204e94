/*
 * The AWS CLI-compatible commands' configuration (cmd_aws.h): the profile, region, retry
 * settings, timeouts, credentials and endpoint of a call, from the global options, the
 * environment and the AWS config and credentials files, in the order and with the errors of
 * the AWS CLI v2 (botocore's session and client).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "cmd_aws.h"
#include "credentials.h"
#include "transport.h"

/* -- the AWS config files -------------------------------------------------------------------- */

char *awscli_read_text_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    sbuf_t b = { 0 };
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_putn(&b, buf, n);
    fclose(f);
    sb_str(&b);
    if (b.oom) { /* never a file cut short */
        sb_free(&b);
        errno = ENOMEM;
        return NULL;
    }
    /* Callers own and free() it (malloc'ed, as cmd_aws.h says), while the buffer grew through
     * the port's allocator (evrec_set_allocator()): hand over a malloc'ed copy. */
    char *text = malloc(b.len + 1);
    if (text) {
        memcpy(text, b.data, b.len + 1);
        if (len)
            *len = b.len;
    } else {
        errno = ENOMEM;
    }
    sb_free(&b);
    return text;
}

static char *config_path(const char *env, const char *rel)
{
    const char *p = getenv(env);
    if (p && *p)
        return awscli_expand_path(p);
    const char *home = getenv("HOME");
    char *r = NULL;
    if (asprintf(&r, "%s/%s", home ? home : "", rel) < 0)
        return NULL;
    return r;
}

/* A profile's setting from the config file ("" when absent). */
void awscli_config_get(const char *profile, const char *key, char *out, size_t len)
{
    out[0] = '\0';
    char *path = config_path("AWS_CONFIG_FILE", ".aws/config");
    char *text = path ? awscli_read_text_file(path, NULL) : NULL;
    if (text && creds_ini_get(text, 1, profile, key, out, len) != EVREC_OK)
        out[0] = '\0';
    free(text);
    free(path);
}

static int profile_exists(const char *profile)
{
    int found = 0;
    char *paths[2] = { config_path("AWS_CONFIG_FILE", ".aws/config"),
                       config_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials") };
    for (int i = 0; i < 2; i++) {
        char *text = paths[i] ? awscli_read_text_file(paths[i], NULL) : NULL;
        if (text && creds_ini_has_profile(text, i == 0, profile))
            found = 1;
        free(text);
        free(paths[i]);
    }
    return found;
}

/* botocore's SharedCredentialProvider, then ConfigProvider: a profile with aws_access_key_id
 * but no aws_secret_access_key stops the chain. The file that has it ("shared-credentials-file"
 * or "config-file"), or NULL. */
static const char *partial_profile_keys(const char *profile)
{
    static const char *const names[2] = { "shared-credentials-file", "config-file" };
    const char *found = NULL;
    for (int i = 0; i < 2 && !found; i++) {
        char *path = i ? config_path("AWS_CONFIG_FILE", ".aws/config")
                       : config_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
        char *text = path ? awscli_read_text_file(path, NULL) : NULL;
        char v[256];
        if (text && creds_ini_get(text, i, profile, "aws_access_key_id", v, sizeof v) == EVREC_OK &&
            v[0] &&
            !(creds_ini_get(text, i, profile, "aws_secret_access_key", v, sizeof v) == EVREC_OK &&
              v[0]))
            found = names[i];
        free(text);
        free(path);
    }
    return found;
}

/* The AWS CLI's pager: AWS_PAGER, else the profile's cli_pager, else PAGER, else less (each
 * counts when set, even empty); --no-cli-pager: none. "" when none. */
void awscli_pager(const ctx_t *c, char *out, size_t len)
{
    out[0] = '\0';
    if (c->g.no_cli_pager)
        return;
    const char *v = getenv("AWS_PAGER");
    if (v) {
        snprintf(out, len, "%s", v);
        return;
    }
    const char *profile = c->g.profile ? c->g.profile : getenv("AWS_PROFILE");
    char *path = config_path("AWS_CONFIG_FILE", ".aws/config");
    char *text = path ? awscli_read_text_file(path, NULL) : NULL;
    int set = text && creds_ini_get(text, 1, profile && *profile ? profile : "default",
                                    "cli_pager", out, len) == EVREC_OK;
    free(text);
    free(path);
    if (set)
        return;
    v = getenv("PAGER");
    snprintf(out, len, "%s", v ? v : "less");
}

/* -- the client's settings ----------------------------------------------------------------- */

/* --cli-read-timeout / --cli-connect-timeout: the AWS CLI reads them with int() as soon as the
 * global options are parsed (255 and Python's message for anything else). */
static int timeout_syntax(const char *v)
{
    long long n;
    if (!v || awscli_py_int(v, &n) == 0)
        return 0;
    return awscli_int_literal_error(v);
}

/* Milliseconds (0: none); urllib3 refuses a negative value when the request is made. */
static long parse_timeout(const char *v, long dflt, const char *which)
{
    long long n;
    if (!v || awscli_py_int(v, &n) != 0)
        return dflt;
    if (n < 0) {
        awscli_fail(RC_GENERAL, "Attempted to set %s timeout to %lld, but the timeout cannot be set to "
                         "a value less than or equal to 0.", which, n);
        return -1;
    }
    return n > LONG_MAX / 1000 ? LONG_MAX : (long)(n * 1000);
}

/* The AWS CLI v2's retry configuration: "standard" (default) or "adaptive", and max_attempts,
 * from the environment or the profile. v2 refuses botocore's "legacy" mode, and so do we. */
static retry_mode_t retry_mode_of(const char *profile, int *max_attempts, int *bad, sbuf_t *msg)
{
    char cfg[64];
    const char *m = getenv("AWS_RETRY_MODE");
    if (!m || !*m) {
        awscli_config_get(profile, "retry_mode", cfg, sizeof cfg);
        m = cfg[0] ? cfg : "standard";
    }
    retry_mode_t mode = RETRY_STANDARD;
    if (strcmp(m, "adaptive") == 0) {
        mode = RETRY_ADAPTIVE;
    } else if (strcmp(m, "standard") != 0) {
        *bad = 1;
        sb_printf(msg, "Invalid value provided to \"mode\": \"%s\" must be one of: \"standard\" "
                       "or \"adaptive\"", m);
        return mode;
    }
    const char *a = getenv("AWS_MAX_ATTEMPTS");
    char acfg[64];
    if (!a || !*a) {
        awscli_config_get(profile, "max_attempts", acfg, sizeof acfg);
        a = acfg[0] ? acfg : NULL;
    }
    *max_attempts = 3;
    if (a) {
        long long n;
        cJSON *sv = cJSON_CreateString(a);
        char *end;
        errno = 0;
        n = strtoll(a, &end, 10);
        if (end == a || *awscli_lstrip(end) || errno) {
            *bad = 1;
            sbuf_t r = { 0 };
            pyjson_repr(&r, sv);
            sb_printf(msg, "invalid literal for int() with base 10: %s", sb_str(&r));
            sb_free(&r);
        } else if (n < 1) {
            *bad = 1;
            sb_printf(msg, "Value provided to \"max_attempts\": %lld must be an integer greater "
                           "than or equal to one.", n);
        } else {
            *max_attempts = n > 1000 ? 1000 : (int)n;
        }
        cJSON_Delete(sv);
    }
    return mode;
}

/* -- regions and endpoints ----------------------------------------------------------------- */

/* botocore's validate_region_name: [a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])? */
static int region_name_ok(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = r[i];
        int alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && !(ch == '-' && i > 0 && i < n - 1))
            return 0;
    }
    return 1;
}

/* A host label as the endpoint rules' isValidHostLabel (no dots): [a-zA-Z0-9][a-zA-Z0-9-]{0,62} */
static int host_label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || *s == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* aws.partition of a region: its name and DNS suffix. */
static void region_partition(const char *region, const char **name, const char **suffix)
{
    static const struct { const char *prefix, *name, *suffix; } parts[] = {
        { "cn-", "aws-cn", "amazonaws.com.cn" }, { "us-gov-", "aws-us-gov", "amazonaws.com" },
        { "us-isob-", "aws-iso-b", "sc2s.sgov.gov" }, { "us-iso-", "aws-iso", "c2s.ic.gov" },
    };
    *name = "aws";
    *suffix = "amazonaws.com";
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strncmp(region, parts[i].prefix, strlen(parts[i].prefix)) == 0) {
            *name = parts[i].name;
            *suffix = parts[i].suffix;
        }
}

/* Kinesis's endpoint rules for a StreamARN without --endpoint-url: the data-plane host
 * <account>.data-kinesis.<region>.<suffix> in call->base, or the rules' error (printed, 255).
 * Returns 0 and leaves base empty when the rules do not apply. */
int awscli_kinesis_arn_endpoint(const model_operation_t *op, const cJSON *params, call_t *call)
{
    const char *region = call->region;
    call->base[0] = '\0';
    const cJSON *arn = cJSON_GetObjectItemCaseSensitive(params, "StreamARN");
    if (strcmp(op->service_cli, "kinesis") != 0 || !cJSON_IsString(arn))
        return 0;
    const char *pname, *suffix;
    region_partition(region, &pname, &suffix);
    if (strcmp(pname, "aws-iso") == 0 || strcmp(pname, "aws-iso-b") == 0)
        return 0;
    /* aws.parseArn: arn:partition:service:region:account:resource, the first three and the
     * resource not empty */
    const char *f[6];
    size_t fl[6];
    const char *p = arn->valuestring;
    int n = 0;
    for (; n < 5; n++) {
        const char *colon = strchr(p, ':');
        if (!colon)
            break;
        f[n] = p;
        fl[n] = (size_t)(colon - p);
        p = colon + 1;
    }
    if (n < 5 || strncmp(f[0], "arn", fl[0]) != 0 || fl[0] != 3 || !fl[1] || !fl[2] || !*p)
        return awscli_fail(RC_GENERAL, "Invalid ARN: Failed to parse ARN.");
    f[5] = p;
    fl[5] = strlen(p);
    if (!host_label_ok(f[4], fl[4]))
        return awscli_fail(RC_GENERAL, "Invalid ARN: Invalid account id.");
    if (!host_label_ok(f[3], fl[3]))
        return awscli_fail(RC_GENERAL, "Invalid ARN: Invalid region.");
    if (fl[2] != 7 || strncmp(f[2], "kinesis", 7) != 0)
        return awscli_fail(RC_GENERAL, "Invalid ARN: The ARN was not for the Kinesis service, found: %.*s.",
                    (int)fl[2], f[2]);
    size_t tl = strcspn(f[5], ":/");
    if (tl == 0)
        return awscli_fail(RC_GENERAL, "Invalid ARN: No ARN type specified");
    if (tl != 6 || strncmp(f[5], "stream", 6) != 0)
        return awscli_fail(RC_GENERAL, "Invalid ARN: Kinesis ARNs don't support `%.*s` arn types.",
                    (int)tl, f[5]);
    if (fl[1] != strlen(pname) || strncmp(f[1], pname, fl[1]) != 0)
        return awscli_fail(RC_GENERAL, "Partition: %.*s from ARN doesn't match with partition name: %s.",
                    (int)fl[1], f[1], pname);
    snprintf(call->base, sizeof call->base, "https://%.*s.data-kinesis.%s.%s", (int)fl[4], f[4],
             region, suffix);
    return 0;
}

int awscli_endpoint_url_check(const char *u)
{
    if (!strstr(u, "://"))
        return awscli_fail(RC_PARAM,
                    "Bad value for --endpoint-url \"%s\": scheme is missing.  Must be of the form "
                    "http://<hostname>/ or https://<hostname>/", u);
    return 0;
}

/* -- the call's settings ---------------------------------------------------------------------- */

int awscli_check_timeouts(const ctx_t *c)
{
    return timeout_syntax(c->g.read_timeout) || timeout_syntax(c->g.connect_timeout)
               ? RC_GENERAL
               : 0;
}

int awscli_resolve_profile(const ctx_t *c, call_t *call)
{
    const char *profile = c->g.profile;
    if (!profile)
        profile = getenv("AWS_PROFILE") && *getenv("AWS_PROFILE") ? getenv("AWS_PROFILE") : NULL;
    if (profile && !profile_exists(profile))
        return awscli_fail(RC_GENERAL, "The config profile (%s) could not be found", profile);
    call->profile = profile ? profile : "default";
    return 0;
}

int awscli_client_settings(const ctx_t *c, call_t *call)
{
    if (creds_resolve_region(c->g.region, call->profile, call->region, sizeof call->region) !=
        EVREC_OK)
        return awscli_fail(RC_CONFIG, "You must specify a region. You can also configure your "
                                      "region by running \"aws configure\".");
    if (!region_name_ok(call->region))
        return awscli_fail(RC_GENERAL, "Provided region_name '%s' doesn't match a supported "
                                       "format.", call->region);
    int bad = 0;
    sbuf_t rmsg = { 0 };
    call->max_attempts = 3;
    call->mode = retry_mode_of(call->profile, &call->max_attempts, &bad, &rmsg);
    int rc = bad ? awscli_fail(RC_GENERAL, "%s", sb_str(&rmsg)) : 0;
    sb_free(&rmsg);
    if (rc)
        return rc;
    call->connect_ms = parse_timeout(c->g.connect_timeout, 60000, "connect");
    call->read_ms = call->connect_ms < 0 ? 0 : parse_timeout(c->g.read_timeout, 60000, "read");
    return call->read_ms < 0 || call->connect_ms < 0 ? RC_GENERAL : 0;
}

/* The credential chain (the same one the library's flusher uses) with the call's settings. */
static int find_credentials(const ctx_t *c, call_t *call)
{
    creds_config_t cc;
    memset(&cc, 0, sizeof cc);
    /* only --profile is an explicit choice; the chain reads AWS_DEFAULT_PROFILE and
     * AWS_PROFILE itself, after the environment's keys, as botocore does */
    cc.profile = c->g.profile;
    cc.region = call->region;
    cc.ca_bundle = call->ca_bundle;
    cc.no_verify_tls = c->g.no_verify_ssl;
    cc.connect_timeout_ms = (uint32_t)(call->connect_ms ? call->connect_ms : 600000);
    cc.request_timeout_ms = (uint32_t)(call->read_ms ? call->read_ms : 600000);
    char cerr[512] = "";
    creds_t *creds = NULL;
    int rc = creds_new(&creds, &cc);
    if (rc == EVREC_OK)
        rc = creds_get(creds, &call->cr, cerr, sizeof cerr);
    creds_free(creds);
    if (rc == EVREC_OK)
        return 0;
    awscli_debug(c, "credentials: %s", cerr);
    const char *partial = partial_profile_keys(call->profile);
    if (partial)
        return awscli_fail(RC_GENERAL, "Partial credentials found in %s, missing: "
                                       "aws_secret_access_key", partial);
    return awscli_fail(RC_CONFIG, "Unable to locate credentials. You can configure credentials "
                                  "by running \"aws configure\".");
}

int awscli_credentials(const ctx_t *c, call_t *call)
{
    awscli_config_get(call->profile, "ca_bundle", call->ca_cfg, sizeof call->ca_cfg);
    call->ca_bundle = c->g.ca_bundle ? c->g.ca_bundle : (call->ca_cfg[0] ? call->ca_cfg : NULL);
    /* botocore's EnvProvider: an access key id without its secret stops the chain (an
     * explicit --profile skips the environment) */
    const char *env_ak = getenv("AWS_ACCESS_KEY_ID"), *env_sk = getenv("AWS_SECRET_ACCESS_KEY");
    if (!c->g.no_sign_request && !c->g.profile && env_ak && *env_ak && !(env_sk && *env_sk))
        return awscli_fail(RC_GENERAL,
                           "Partial credentials found in env, missing: AWS_SECRET_ACCESS_KEY");
    return c->g.no_sign_request ? 0 : find_credentials(c, call);
}

/* The endpoint URL: --endpoint-url, else Kinesis's ARN rules (already in call->base), else
 * AWS_ENDPOINT_URL_<SERVICE> or the profile's services section, else the service's regional
 * endpoint. */
static void endpoint_base(const ctx_t *c, call_t *call)
{
    const model_operation_t *op = c->op;
    char svc_env[96], cfg_url[1024], cfg_from[160];
    size_t sl = (size_t)snprintf(svc_env, sizeof svc_env, "AWS_ENDPOINT_URL_%s",
                                 op->endpoint_prefix);
    for (size_t i = 17; i < sl && i < sizeof svc_env; i++) /* "personalize-events" -> _EVENTS */
        svc_env[i] = svc_env[i] == '-' ? '_' : (char)toupper((unsigned char)svc_env[i]);
    if (c->g.endpoint_url)
        snprintf(call->base, sizeof call->base, "%s", c->g.endpoint_url);
    else if (!call->base[0] && creds_endpoint_url(svc_env, c->g.profile, 1, cfg_url,
                                                  sizeof cfg_url, cfg_from,
                                                  sizeof cfg_from) == EVREC_OK)
        snprintf(call->base, sizeof call->base, "%s", cfg_url); /* environment or config file */
    else if (!call->base[0])
        snprintf(call->base, sizeof call->base, "https://%s.%s.amazonaws.com%s",
                 op->endpoint_prefix, call->region,
                 strncmp(call->region, "cn-", 3) == 0 ? ".cn" : "");
    size_t bl = strlen(call->base);
    while (bl > 0 && call->base[bl - 1] == '/')
        call->base[--bl] = '\0';
}

int awscli_endpoint(const ctx_t *c, call_t *call)
{
    endpoint_base(c, call);
    /* the endpoint's own path is kept in front of the operation's */
    const char *scheme_end = strstr(call->base, "://");
    const char *base_path = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
    snprintf(call->url, sizeof call->url, "%s%s", call->base, sb_str(&call->path));
    if (transport_url_host(call->url, call->host, sizeof call->host) != EVREC_OK)
        return awscli_fail(RC_PARAM, "Bad value for --endpoint-url \"%s\"", call->base);
    if (base_path)
        sb_puts(&call->sign_path, base_path);
    sb_puts(&call->sign_path, sb_str(&call->path));
    return 0;
}

void awscli_call_free(call_t *call)
{
    sb_free(&call->path);
    sb_free(&call->body);
    sb_free(&call->sign_path);
    mbedtls_platform_zeroize(&call->cr, sizeof call->cr);
}
