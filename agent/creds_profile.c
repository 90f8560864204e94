/*
 * Provider 4: a profile of the shared files and what it names, in botocore's order (assume
 * role, web identity, SSO, keys in the credentials file, credential_process, keys in the
 * config file); source profiles and credential_source for assume role. The remote calls go
 * through the chain's gates (creds_chain.h); the calls themselves are creds_sts.c's,
 * creds_http.c's and creds_process.c's.
 */
#include "creds_chain.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "port.h"

#define MAX_SOURCE_DEPTH 5

static int set(const char *s)
{
    return s && *s;
}

typedef struct profile_walk {
    creds_t *c;
    creds_shared_file_t *files;
    creds_attempt_t *a;
    int env_ok; /* the AWS_WEB_IDENTITY_TOKEN_FILE & co variables may be read */
} profile_walk_t;

/* A key of the profile (credentials file, then config); 1 if there. */
static int pget(profile_walk_t *w, const char *prof, const char *key, char *buf, size_t len,
                int *mal)
{
    return creds_shared_get(w->files, 2, prof, key, buf, len, w->a, mal) == EVREC_OK;
}

static creds_result_t resolve_profile(profile_walk_t *w, const char *name, int depth,
                                      evrec_credentials_t *out);

/* Static keys of a profile: from the credentials file alone (which = 0), or key by key from
 * both files (which = 2). R_SKIP when it has none. */
static creds_result_t profile_keys(profile_walk_t *w, const char *name, int which,
                                   evrec_credentials_t *out)
{
    char id[128], secret[128], token[4096];
    int malformed = 0;
    size_t n = which == 2 ? 2 : 1;
    creds_shared_file_t *f = &w->files[which == 2 ? 0 : which];
    int have_id = creds_shared_get(f, n, name, "aws_access_key_id", id, sizeof id, w->a,
                                   &malformed) == EVREC_OK;
    const creds_shared_file_t *secret_from = NULL, *token_from = NULL;
    int have_secret = !malformed &&
                      creds_shared_get_from(f, n, name, "aws_secret_access_key", secret,
                                            sizeof secret, w->a, &malformed,
                                            &secret_from) == EVREC_OK;
    if (!malformed && creds_shared_get_from(f, n, name, "aws_session_token", token, sizeof token,
                                            w->a, &malformed, &token_from) != EVREC_OK)
        token[0] = '\0';
    if (!malformed &&
        ((secret_from && creds_secret_file_ok(secret_from, "aws_secret_access_key", w->a) != 0) ||
         (token_from && creds_secret_file_ok(token_from, "aws_session_token", w->a) != 0)))
        malformed = 1; /* named in the note */
    creds_result_t res = R_SKIP;
    if (malformed) {
        res = R_FAIL;
    } else if (have_id && have_secret) {
        if (creds_fill(out, id, secret, token, 0) == 0) {
            res = R_HIT;
        } else {
            creds_note(w->a, P_FILES, "profile '%s' has an over-long key or token", name);
            res = R_FAIL;
        }
    } else if (which == 2 && (have_id || have_secret)) {
        creds_note(w->a, P_FILES, "profile '%s' has %s but no %s", name,
                   have_id ? "aws_access_key_id" : "aws_secret_access_key",
                   have_id ? "aws_secret_access_key" : "aws_access_key_id");
        res = R_FAIL;
    }
    mbedtls_platform_zeroize(secret, sizeof secret);
    mbedtls_platform_zeroize(token, sizeof token);
    return res;
}

/* credential_source: one of the chain's own providers, by the SDKs' canonical name. */
static creds_result_t named_source(profile_walk_t *w, const char *name, const char *source,
                                   evrec_credentials_t *out)
{
    char why[512] = "";
    int rc;
    if (strcmp(source, "Environment") == 0) {
        const char *id = port_getenv("AWS_ACCESS_KEY_ID");
        const char *secret = port_getenv("AWS_SECRET_ACCESS_KEY");
        if (!set(id) || !set(secret)) {
            snprintf(why, sizeof why, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
            rc = EVREC_E_CREDENTIALS;
        } else {
            rc = creds_fill(out, id, secret, port_getenv("AWS_SESSION_TOKEN"), 0) == 0
                     ? EVREC_OK
                     : EVREC_E_CREDENTIALS;
            if (rc != EVREC_OK)
                snprintf(why, sizeof why, "a key or token in the environment is too long");
        }
    } else if (strcmp(source, "Ec2InstanceMetadata") == 0) {
        rc = creds_run_imds(w->c, out, why, sizeof why);
        if (rc == EVREC_E_NOT_FOUND) {
            snprintf(why, sizeof why, "AWS_EC2_METADATA_DISABLED is set");
            rc = EVREC_E_CREDENTIALS;
        }
    } else if (strcmp(source, "EcsContainer") == 0) {
        rc = creds_run_container(w->c, out, why, sizeof why);
        if (rc == EVREC_E_NOT_FOUND) {
            snprintf(why, sizeof why, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI "
                                      "are not set");
            rc = EVREC_E_CREDENTIALS;
        }
    } else {
        creds_note(w->a, P_FILES, "profile '%s': credential_source '%s' is not Environment, "
                                  "Ec2InstanceMetadata or EcsContainer", name, source);
        return R_STOP;
    }
    if (rc == EVREC_OK)
        return R_HIT;
    creds_note(w->a, P_FILES, "profile '%s': credential_source %s: %s", name, source, why);
    if (evrec_error_is_retryable(rc) || rc == EVREC_E_TLS)
        w->a->net_code = w->a->net_code ? w->a->net_code : rc;
    return rc == EVREC_E_CONFIG ? R_STOP : R_FAIL;
}

static int has_profile(const profile_walk_t *w, const char *name)
{
    return (w->files[0].text && creds_ini_has_profile(w->files[0].text, 0, name)) ||
           (w->files[1].text && creds_ini_has_profile(w->files[1].text, 1, name));
}

/* role_arn with source_profile or credential_source: STS AssumeRole signed by the source. */
static creds_result_t assume_role(profile_walk_t *w, const char *name, int depth,
                                  const char *role_arn, evrec_credentials_t *out)
{
    char src[128] = "", csrc[64] = "", ext[1300] = "", session[80] = "", dur[16] = "";
    int mal = 0;
    int has_src = pget(w, name, "source_profile", src, sizeof src, &mal);
    int has_csrc = pget(w, name, "credential_source", csrc, sizeof csrc, &mal);
    pget(w, name, "external_id", ext, sizeof ext, &mal);
    pget(w, name, "role_session_name", session, sizeof session, &mal);
    pget(w, name, "duration_seconds", dur, sizeof dur, &mal);
    if (mal)
        return R_FAIL;
    if (has_src == has_csrc) {
        creds_note(w->a, P_FILES, "profile '%s' has role_arn and %s", name,
                   has_src ? "both source_profile and credential_source (one only)"
                           : "neither source_profile nor credential_source");
        return R_STOP;
    }
    evrec_credentials_t source;
    creds_result_t r;
    if (has_csrc) {
        r = named_source(w, name, csrc, &source);
    } else if (strcmp(src, name) == 0) {
        /* A profile may source itself for its own static keys (as botocore allows). */
        r = profile_keys(w, name, 2, &source);
        if (r == R_SKIP) {
            creds_note(w->a, P_FILES, "profile '%s' is its own source_profile but has no keys",
                       name);
            r = R_STOP;
        }
    } else if (depth >= MAX_SOURCE_DEPTH) {
        creds_note(w->a, P_FILES, "profile '%s': source_profile chain deeper than %d (a loop?)",
                   name, MAX_SOURCE_DEPTH);
        r = R_STOP;
    } else if (!has_profile(w, src)) {
        creds_note(w->a, P_FILES, "profile '%s': source_profile '%s' does not exist", name, src);
        r = R_STOP;
    } else {
        r = resolve_profile(w, src, depth + 1, &source);
        if (r == R_SKIP) {
            creds_note(w->a, P_FILES, "profile '%s': source_profile '%s' has no credentials", name,
                       src);
            r = R_FAIL;
        }
    }
    if (r != R_HIT) {
        mbedtls_platform_zeroize(&source, sizeof source);
        return r;
    }
    creds_t *c = w->c;
    char url[1024];
    creds_role_t role = { .role_arn = role_arn, .session_name = session, .external_id = ext,
                          .duration_s = dur, .region = c->cfg.region,
                          .endpoint_url = creds_service_endpoint(c, "AWS_ENDPOINT_URL_STS", url,
                                                                 sizeof url) };
    char why[512] = "";
    int rc;
    if (creds_gate_closed(c, G_STS, why, sizeof why)) {
        rc = c->gates[G_STS].code;
    } else {
        rc = creds_sts_assume_role(&c->sts_tx, &c->cfg, &role, &source, creds_now_ms(c), out, why,
                                   sizeof why);
        creds_gate_settle(c, G_STS, rc, why);
    }
    mbedtls_platform_zeroize(&source, sizeof source);
    if (rc == EVREC_OK)
        return R_HIT;
    char msg[700];
    snprintf(msg, sizeof msg, "profile '%s': role %s: %s", name, role_arn, why);
    return creds_settle(w->a, P_FILES, rc, msg);
}

/* web_identity_token_file (and role_arn, role_session_name): the environment's variables
 * first, then the profile's, as botocore reads them. */
static creds_result_t web_identity(profile_walk_t *w, const char *name, evrec_credentials_t *out)
{
    char file[512] = "", arn[256] = "", session[80] = "";
    int mal = 0;
    const char *ef = w->env_ok ? port_getenv("AWS_WEB_IDENTITY_TOKEN_FILE") : NULL;
    const char *ea = w->env_ok ? port_getenv("AWS_ROLE_ARN") : NULL;
    const char *es = w->env_ok ? port_getenv("AWS_ROLE_SESSION_NAME") : NULL;
    int profile = name && has_profile(w, name);
    if (set(ef))
        snprintf(file, sizeof file, "%s", ef);
    else if (profile)
        pget(w, name, "web_identity_token_file", file, sizeof file, &mal);
    if (mal)
        return R_FAIL;
    if (!file[0])
        return R_SKIP;
    if (set(ea))
        snprintf(arn, sizeof arn, "%s", ea);
    else if (profile)
        pget(w, name, "role_arn", arn, sizeof arn, &mal);
    if (set(es))
        snprintf(session, sizeof session, "%s", es);
    else if (profile)
        pget(w, name, "role_session_name", session, sizeof session, &mal);
    if (mal)
        return R_FAIL;
    if (!arn[0]) {
        creds_note(w->a, P_FILES, "a web identity token file is set but no role ARN (role_arn or "
                                  "AWS_ROLE_ARN)");
        return R_STOP;
    }
    creds_t *c = w->c;
    char url[1024];
    creds_role_t role = { .role_arn = arn, .session_name = session, .region = c->cfg.region,
                          .endpoint_url = creds_service_endpoint(c, "AWS_ENDPOINT_URL_STS", url,
                                                                 sizeof url) };
    char why[512] = "";
    int rc;
    if (creds_gate_closed(c, G_WEB_IDENTITY, why, sizeof why)) {
        rc = c->gates[G_WEB_IDENTITY].code;
    } else {
        rc = creds_sts_web_identity(&c->sts_tx, &c->cfg, &role, file, creds_now_ms(c), out, why,
                                    sizeof why);
        creds_gate_settle(c, G_WEB_IDENTITY, rc, why);
    }
    char msg[800];
    snprintf(msg, sizeof msg, "web identity, role %s: %s", arn, why);
    return creds_settle(w->a, P_FILES, rc, msg);
}

/* sso_session (an [sso-session NAME] section) or the legacy sso_start_url in the profile. */
static creds_result_t sso(profile_walk_t *w, const char *name, evrec_credentials_t *out)
{
    char session[128] = "", start[512] = "", region[64] = "", account[64] = "", role[128] = "";
    int mal = 0;
    int has_session = pget(w, name, "sso_session", session, sizeof session, &mal);
    int has_start = !has_session && pget(w, name, "sso_start_url", start, sizeof start, &mal);
    if (mal)
        return R_FAIL;
    if (!has_session && !has_start)
        return R_SKIP;
    if (has_session) {
        /* the session's own section in the config file */
        creds_shared_file_t cf = w->files[1];
        cf.is_config = 2;
        char section[160];
        snprintf(section, sizeof section, "sso-session %s", session);
        if (!cf.text || creds_shared_get(&cf, 1, section, "sso_start_url", start, sizeof start,
                                         w->a, &mal) != EVREC_OK) {
            if (!mal)
                creds_note(w->a, P_FILES, "profile '%s': sso_session '%s' has no [sso-session %s] "
                                          "section with sso_start_url", name, session, session);
            return mal ? R_FAIL : R_STOP;
        }
        creds_shared_get(&cf, 1, section, "sso_region", region, sizeof region, w->a, &mal);
    } else {
        pget(w, name, "sso_region", region, sizeof region, &mal);
    }
    pget(w, name, "sso_account_id", account, sizeof account, &mal);
    pget(w, name, "sso_role_name", role, sizeof role, &mal);
    if (mal)
        return R_FAIL;
    const char *missing = !region[0] ? "sso_region" : !account[0] ? "sso_account_id"
                          : !role[0] ? "sso_role_name" : NULL;
    if (missing) {
        creds_note(w->a, P_FILES, "profile '%s' uses SSO but has no %s", name, missing);
        return R_STOP;
    }
    creds_t *c = w->c;
    char url[1024];
    creds_sso_t q = { .cache_key = has_session ? session : start, .region = region,
                      .account_id = account, .role_name = role,
                      .endpoint_url = creds_service_endpoint(c, "AWS_ENDPOINT_URL_SSO", url,
                                                             sizeof url) };
    char why[512] = "";
    int rc;
    if (creds_gate_closed(c, G_SSO, why, sizeof why)) {
        rc = c->gates[G_SSO].code;
    } else {
        rc = creds_sso(&c->sso_tx, &c->cfg, &q, creds_now_ms(c), out, why, sizeof why);
        creds_gate_settle(c, G_SSO, rc, why);
    }
    char msg[800];
    snprintf(msg, sizeof msg, "profile '%s': sso account %s role %s: %s", name, account, role,
             why);
    return creds_settle(w->a, P_FILES, rc, msg);
}

static creds_result_t process(profile_walk_t *w, const char *name, evrec_credentials_t *out)
{
    char command[2048] = "";
    int mal = 0;
    if (!pget(w, name, "credential_process", command, sizeof command, &mal))
        return mal ? R_FAIL : R_SKIP;
    creds_t *c = w->c;
    char why[512] = "";
    int rc;
    if (creds_gate_closed(c, G_PROCESS, why, sizeof why)) {
        rc = c->gates[G_PROCESS].code;
    } else {
        rc = creds_process(command, creds_now_ms(c), out, why, sizeof why);
        creds_gate_settle(c, G_PROCESS, rc, why);
    }
    mbedtls_platform_zeroize(command, sizeof command);
    char msg[700];
    snprintf(msg, sizeof msg, "profile '%s': %s", name, why);
    return creds_settle(w->a, P_FILES, rc, msg);
}

/*
 * A profile's credentials, in botocore's order: assume role (role_arn without a web identity
 * token file), web identity, SSO, keys in the credentials file, credential_process, keys in
 * the config file. A source profile (depth > 0) with keys of its own uses them, not its
 * role_arn, as botocore does.
 */
static creds_result_t resolve_profile(profile_walk_t *w, const char *name, int depth,
                                      evrec_credentials_t *out)
{
    char role_arn[256] = "", wif[16] = "", id[128] = "";
    int mal = 0;
    int has_role = pget(w, name, "role_arn", role_arn, sizeof role_arn, &mal);
    int has_wif = pget(w, name, "web_identity_token_file", wif, sizeof wif, &mal);
    int has_keys = pget(w, name, "aws_access_key_id", id, sizeof id, &mal);
    if (mal)
        return R_FAIL;
    int env_ok = w->env_ok;
    if (depth > 0)
        w->env_ok = 0; /* botocore's source profiles never read the environment */
    creds_result_t r = R_SKIP;
    if (has_role && !has_wif && !(depth > 0 && has_keys))
        r = assume_role(w, name, depth, role_arn, out);
    if (r == R_SKIP)
        r = web_identity(w, name, out);
    if (r == R_SKIP)
        r = sso(w, name, out);
    if (r == R_SKIP)
        r = profile_keys(w, name, 0, out);
    if (r == R_SKIP)
        r = process(w, name, out);
    if (r == R_SKIP)
        r = profile_keys(w, name, 2, out);
    w->env_ok = env_ok;
    return r;
}

creds_result_t creds_from_files(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a)
{
    const char *profile = creds_profile_name(c->cfg.profile);
    int explicit_profile = strcmp(profile, "default") != 0 || set(c->cfg.profile);
    creds_shared_file_t files[2];
    int r1 = creds_shared_load(&files[0], "AWS_SHARED_CREDENTIALS_FILE", "credentials", 0);
    int r2 = creds_shared_load(&files[1], "AWS_CONFIG_FILE", "config", 1);
    profile_walk_t w = { .c = c, .files = files, .a = a,
                         .env_ok = !c->cfg.no_environment && !set(c->cfg.profile) };
    creds_result_t res = R_FAIL;
    if (r1 != 0 || r2 != 0) {
        int r = r1 != 0 ? r1 : r2;
        creds_note(a, P_FILES, "cannot read %s (%s)", r1 != 0 ? files[0].path : files[1].path,
                   r == -EFBIG    ? "larger than 1 MiB"
                   : r == -EINVAL ? "not a regular file"
                                  : "permission or I/O error");
        goto done;
    }
    if (!has_profile(&w, profile)) {
        /* AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN need no profile at all. */
        res = web_identity(&w, NULL, out);
        if (res != R_SKIP)
            goto done;
        if (explicit_profile && !files[0].text && !files[1].text)
            creds_note(a, P_FILES, "profile '%s' asked for, but neither %s nor %s exists", profile,
                       files[0].path, files[1].path);
        else if (explicit_profile)
            creds_note(a, P_FILES, "profile '%s' not found in %s or %s", profile, files[0].path,
                       files[1].path);
        res = explicit_profile ? R_FAIL : R_SKIP;
        goto done;
    }
    res = resolve_profile(&w, profile, 0, out);
    if (res == R_SKIP) {
        creds_note(a, P_FILES, "profile '%s' has no aws_access_key_id, role_arn, "
                               "web_identity_token_file, sso_session or credential_process",
                   profile);
        res = R_FAIL;
    }
done:
    creds_shared_free(&files[0]);
    creds_shared_free(&files[1]);
    return res;
}
