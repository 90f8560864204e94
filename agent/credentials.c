/*
 * The credentials provider chain (credentials.h).
 *
 * Each provider answers HIT (credentials), SKIP (not configured) or FAIL (configured, but it
 * could not give credentials; the reason is kept for the error message) and the chain moves
 * on. A half-configured provider (a key id without its secret, an IoT endpoint without a
 * role alias) stops the chain instead: falling through to another identity would hide the
 * mistake.
 *
 * Caching: every hit except static keys is cached. Credentials that expire are refreshed
 * ahead of time (5 minutes before, or half their lifetime for short-lived ones); if the
 * refresh fails the cached ones are used until, and never after, their expiration.
 *
 * Here: the chain, its cache, the gates of the remote calls, and providers 1-3 (static keys,
 * callback, environment). The shared files are read in creds_files.c (scanned by creds_ini.c),
 * a profile is resolved in creds_profile.c, IoT and Cognito are creds_device.c; what these
 * share is creds_chain.h.
 */
#include "credentials.h"
#include "creds_chain.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "port.h"
#include "transport.h"

#define REFRESH_AHEAD_MS (5 * 60 * 1000)
#define GATE_BASE_MS 1000
#define GATE_CAP_MS (5 * 60 * 1000)

static const char *const provider_names[P_COUNT] = {
    "static keys", "callback", "environment", "shared files", "iot", "cognito", "container",
    "instance metadata",
};

void creds_note(creds_attempt_t *a, creds_provider_t p, const char *fmt, ...)
{
    if (a->len + 4 >= sizeof a->msg)
        return;
    int n = snprintf(a->msg + a->len, sizeof a->msg - a->len, "%s%s: ", a->len ? "; " : "",
                     provider_names[p]);
    if (n < 0)
        return;
    a->len = a->len + (size_t)n < sizeof a->msg ? a->len + (size_t)n : sizeof a->msg - 1;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(a->msg + a->len, sizeof a->msg - a->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        a->len = a->len + (size_t)n < sizeof a->msg ? a->len + (size_t)n : sizeof a->msg - 1;
}

static int set(const char *s)
{
    return s && *s;
}

int creds_no_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* -- lifecycle ------------------------------------------------------------------------- */

int creds_new(creds_t **out, const creds_config_t *cfg)
{
    if (!out || !cfg)
        return EVREC_E_INVALID;
    *out = NULL;
    creds_t *c = port_calloc(1, sizeof *c);
    if (!c)
        return EVREC_E_NOMEM;
    c->cfg = *cfg;
    *out = c;
    return EVREC_OK;
}

void creds_free(creds_t *c)
{
    if (!c)
        return;
    transport_free(c->iot_tx);
    transport_free(c->cognito_tx);
    transport_free(c->sts_tx);
    transport_free(c->sso_tx);
    transport_free(c->container_tx);
    transport_free(c->imds_tx);
    mbedtls_platform_zeroize(c, sizeof *c); /* the cached credentials */
    port_free(c);
}

void creds_invalidate(creds_t *c)
{
    if (!c)
        return;
    mbedtls_platform_zeroize(&c->cache, sizeof c->cache);
    c->cache_valid = 0;
}

int64_t creds_now_ms(const creds_t *c)
{
    return c->cfg.now_ms ? c->cfg.now_ms(c->cfg.now_user) : port_wall_ms();
}

/* Copy one credential field; over-long values are refused rather than cut. */
static int put_field(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return -1;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    return 0;
}

int creds_fill(evrec_credentials_t *out, const char *id, const char *secret, const char *token,
               int64_t expiration_ms)
{
    memset(out, 0, sizeof *out);
    if (put_field(out->access_key_id, sizeof out->access_key_id, id) ||
        put_field(out->secret_access_key, sizeof out->secret_access_key, secret) ||
        put_field(out->session_token, sizeof out->session_token, token))
        return -1;
    out->expiration_ms = expiration_ms;
    return 0;
}

/* -- 1, 2, 3: static keys, callback, environment ----------------------------------------- */

/* A key id, secret or token with a control character could not be sent as one header line
 * (a CR/LF in a token would inject a header): refused wherever it comes from. */
static int sendable_credentials(const evrec_credentials_t *k)
{
    return creds_no_control_chars(k->access_key_id) &&
           creds_no_control_chars(k->secret_access_key) &&
           creds_no_control_chars(k->session_token);
}

/* What is wrong with the static keys as configured (NULL: nothing, or none given). */
static const char *static_problem(const creds_config_t *g)
{
    if (!set(g->access_key_id) && !set(g->secret_access_key))
        return set(g->session_token) ? "session_token is set without access_key_id and "
                                       "secret_access_key"
                                     : NULL;
    if (!set(g->access_key_id))
        return "secret_access_key is set but access_key_id is not";
    if (!set(g->secret_access_key))
        return "access_key_id is set but secret_access_key is not";
    evrec_credentials_t probe;
    int too_long = creds_fill(&probe, g->access_key_id, g->secret_access_key, g->session_token, 0);
    int sendable = too_long || sendable_credentials(&probe);
    mbedtls_platform_zeroize(&probe, sizeof probe);
    return too_long    ? "a key or token is too long"
           : !sendable ? "a key or token holds a control character (CR, LF, ...)"
                       : NULL;
}

static creds_result_t from_static(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a)
{
    const creds_config_t *g = &c->cfg;
    const char *problem = static_problem(g);
    if (problem) {
        creds_note(a, P_STATIC, "%s", problem);
        return R_STOP;
    }
    if (!set(g->access_key_id))
        return R_SKIP;
    if (creds_fill(out, g->access_key_id, g->secret_access_key, g->session_token, 0))
        return R_STOP; /* not reached: static_problem measured them */
    return R_HIT;
}

static creds_result_t from_callback(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a)
{
    if (!c->cfg.callback)
        return R_SKIP;
    memset(out, 0, sizeof *out);
    int rc = c->cfg.callback(c->cfg.callback_user, out);
    if (rc != EVREC_OK) {
        creds_note(a, P_CALLBACK, "returned %d (%s)", rc, evrec_strerror(rc));
        return R_FAIL;
    }
    /* The caller's struct may not be terminated: make it so before looking. */
    out->access_key_id[sizeof out->access_key_id - 1] = '\0';
    out->secret_access_key[sizeof out->secret_access_key - 1] = '\0';
    out->session_token[sizeof out->session_token - 1] = '\0';
    if (!out->access_key_id[0] || !out->secret_access_key[0]) {
        creds_note(a, P_CALLBACK, "returned an empty access key id or secret");
        return R_FAIL;
    }
    if (out->expiration_ms != 0 && out->expiration_ms <= creds_now_ms(c)) {
        creds_note(a, P_CALLBACK, "returned credentials that have already expired");
        return R_FAIL;
    }
    return R_HIT;
}

static creds_result_t from_env(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a)
{
    /* An explicitly chosen profile (the option, --profile) names the identity: keys left in
     * the environment must not silently sign in its place (botocore drops its environment
     * provider for the same reason). AWS_PROFILE is not a choice made here and does not. */
    if (c->cfg.no_environment || set(c->cfg.profile))
        return R_SKIP;
    const char *id = port_getenv("AWS_ACCESS_KEY_ID");
    const char *secret = port_getenv("AWS_SECRET_ACCESS_KEY");
    if (!set(id) && !set(secret))
        return R_SKIP;
    if (!set(id) || !set(secret)) {
        creds_note(a, P_ENV, "%s is set but %s is not",
                   set(id) ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                   set(id) ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return R_FAIL;
    }
    if (creds_fill(out, id, secret, port_getenv("AWS_SESSION_TOKEN"), 0)) {
        creds_note(a, P_ENV, "a key or token is too long");
        return R_FAIL;
    }
    return R_HIT;
}
/* -- remote calls behind their gates ---------------------------------------------------- */

int creds_gate_closed(const creds_t *c, creds_gate_id_t g, char *why, size_t whylen)
{
    const creds_gate_t *gt = &c->gates[g];
    int64_t now = creds_now_ms(c);
    if (gt->failures == 0 || now >= gt->next_ms)
        return 0;
    snprintf(why, whylen, "%s (not asked again for %lld s)", gt->why,
             (long long)((gt->next_ms - now + 999) / 1000));
    return 1;
}

void creds_gate_settle(creds_t *c, creds_gate_id_t g, int rc, const char *why)
{
    creds_gate_t *gt = &c->gates[g];
    if (rc == EVREC_OK) {
        gt->failures = 0;
        return;
    }
    if (rc == EVREC_E_NOT_FOUND || rc == EVREC_E_CONFIG)
        return;
    int64_t delay = GATE_BASE_MS;
    for (unsigned i = 0; i < gt->failures && delay < GATE_CAP_MS; i++)
        delay *= 2;
    gt->failures++;
    gt->next_ms = creds_now_ms(c) + (delay < GATE_CAP_MS ? delay : GATE_CAP_MS);
    gt->code = rc;
    snprintf(gt->why, sizeof gt->why, "%s", why);
}

/* A provider's code as the chain's result; the reason is noted under provider p. */
creds_result_t creds_settle(creds_attempt_t *a, creds_provider_t p, int rc, const char *why)
{
    if (rc == EVREC_OK)
        return R_HIT;
    if (rc == EVREC_E_NOT_FOUND)
        return R_SKIP;
    creds_note(a, p, "%s", why);
    if (rc == EVREC_E_CONFIG)
        return R_STOP;
    if (evrec_error_is_retryable(rc) || rc == EVREC_E_TLS)
        a->net_code = a->net_code ? a->net_code : rc;
    return R_FAIL;
}

/* A credential service's endpoint: AWS_ENDPOINT_URL_<ID> or its `services` entry in the
 * profile, else the SDKs' default (NULL). Not the global AWS_ENDPOINT_URL / endpoint_url:
 * those name the events endpoint here (as for Cognito above) and would send these calls
 * there. `buf` holds the answer. */
const char *creds_service_endpoint(creds_t *c, const char *env_name, char *buf, size_t len)
{
    char from[128];
    return creds_endpoint_url(env_name, c->cfg.profile, 0, buf, len, from, sizeof from) ==
                   EVREC_OK
               ? buf
               : NULL;
}

int creds_run_container(creds_t *c, evrec_credentials_t *out, char *why, size_t whylen)
{
    if (creds_gate_closed(c, G_CONTAINER, why, whylen))
        return c->gates[G_CONTAINER].code;
    int rc = creds_container(&c->container_tx, &c->cfg, creds_now_ms(c), out, why, whylen);
    creds_gate_settle(c, G_CONTAINER, rc, why);
    return rc;
}

int creds_run_imds(creds_t *c, evrec_credentials_t *out, char *why, size_t whylen)
{
    if (creds_gate_closed(c, G_IMDS, why, whylen))
        return c->gates[G_IMDS].code;
    int rc = creds_imds(&c->imds_tx, &c->cfg, creds_now_ms(c), out, why, whylen);
    creds_gate_settle(c, G_IMDS, rc, why);
    return rc;
}

static creds_result_t from_container(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a)
{
    char why[512] = "";
    return creds_settle(a, P_CONTAINER, creds_run_container(c, out, why, sizeof why), why);
}

static creds_result_t from_imds(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a)
{
    char why[512] = "";
    return creds_settle(a, P_IMDS, creds_run_imds(c, out, why, sizeof why), why);
}

/* -- the chain ------------------------------------------------------------------------- */

typedef creds_result_t (*provider_fn)(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a);
static const provider_fn providers[P_COUNT] = {
    from_static, from_callback, from_env, creds_from_files, creds_from_iot, creds_from_cognito,
    from_container, from_imds,
};

/* IoT and Cognito behind their gates, as the other remote providers: the reason they noted
 * is kept for the wait. */
static creds_result_t run_provider(creds_t *c, creds_provider_t p, evrec_credentials_t *out,
                                   creds_attempt_t *a)
{
    creds_gate_id_t g = p == P_IOT ? G_IOT : p == P_COGNITO ? G_COGNITO : G_COUNT;
    if (g == G_COUNT)
        return providers[p](c, out, a);
    char why[512];
    if (creds_gate_closed(c, g, why, sizeof why)) {
        creds_note(a, p, "%s", why);
        int rc = c->gates[g].code;
        if (evrec_error_is_retryable(rc) || rc == EVREC_E_TLS)
            a->net_code = a->net_code ? a->net_code : rc;
        return R_FAIL;
    }
    size_t before = a->len;
    int net_before = a->net_code;
    creds_result_t r = providers[p](c, out, a);
    if (r == R_HIT) {
        creds_gate_settle(c, g, EVREC_OK, "");
    } else if (r == R_FAIL) {
        /* what this provider added: "; <name>: <reason>" */
        const char *reason = a->msg + before;
        const char *colon = strstr(reason, ": ");
        creds_gate_settle(c, g, a->net_code != net_before ? a->net_code : EVREC_E_CREDENTIALS,
                          colon ? colon + 2 : reason);
    }
    return r;
}

/* Is a cached set still good without a refresh? */
static int fresh_enough(const creds_t *c, int64_t now)
{
    int64_t exp = c->cache.expiration_ms;
    if (exp == 0)
        return 1;
    int64_t ahead = (exp - c->cache_fetched_ms) / 2;
    if (ahead > REFRESH_AHEAD_MS)
        ahead = REFRESH_AHEAD_MS;
    return now < exp - ahead;
}

int creds_get(creds_t *c, evrec_credentials_t *out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!c || !out)
        return EVREC_E_INVALID;
    int64_t now = creds_now_ms(c);
    if (c->cache_valid && fresh_enough(c, now)) {
        *out = c->cache;
        return EVREC_OK;
    }
    creds_attempt_t a;
    memset(&a, 0, sizeof a);
    evrec_credentials_t got;
    char skipped[128] = "";
    for (int p = 0; p < P_COUNT; p++) {
        creds_result_t r = run_provider(c, (creds_provider_t)p, &got, &a);
        if (r == R_HIT && !sendable_credentials(&got)) {
            creds_note(&a, (creds_provider_t)p, "gave a key or session token holding a control "
                       "character (CR, LF, ...); refused");
            r = p == P_STATIC ? R_STOP : R_FAIL;
        }
        if (r == R_HIT) {
            *out = got;
            if (p != P_STATIC && (p != P_CALLBACK || got.expiration_ms != 0)) {
                c->cache = got;
                c->cache_valid = 1;
                c->cache_from = (creds_provider_t)p;
                c->cache_fetched_ms = now;
            }
            mbedtls_platform_zeroize(&got, sizeof got);
            return EVREC_OK;
        }
        if (r == R_STOP) {
            if (err && errlen)
                snprintf(err, errlen, "credentials: %s", a.msg);
            mbedtls_platform_zeroize(&got, sizeof got);
            return EVREC_E_CONFIG;
        }
        if (r == R_SKIP) {
            size_t l = strlen(skipped);
            snprintf(skipped + l, sizeof skipped - l, "%s%s", l ? ", " : "", provider_names[p]);
        }
    }
    mbedtls_platform_zeroize(&got, sizeof got);
    /* Nothing new: the cached set is still usable until (never after) it expires. */
    if (c->cache_valid && (c->cache.expiration_ms == 0 || now < c->cache.expiration_ms)) {
        *out = c->cache;
        return EVREC_OK;
    }
    creds_invalidate(c);
    if (err && errlen)
        snprintf(err, errlen, "no credentials: %s%s%s%s", a.msg, a.len && skipped[0] ? "; " : "",
                 skipped[0] ? "not configured: " : "", skipped);
    return a.net_code ? a.net_code : EVREC_E_CREDENTIALS;
}
/* -- configuration checked at open ------------------------------------------------------- */

int creds_check_config(const creds_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg)
        return EVREC_E_INVALID;
    const char *problem = static_problem(cfg);
    if (problem) {
        snprintf(err, errlen, "credentials (static keys): %s", problem);
        return EVREC_E_CONFIG;
    }
    char url[1024], thing[512], why[256];
    if (creds_iot_request(cfg, url, thing, why, sizeof why) == IOT_BAD) {
        snprintf(err, errlen, "credentials (iot): %s", why);
        return EVREC_E_CONFIG;
    }
    char region[64];
    if (set(cfg->cognito_pool_id) && creds_cognito_region(cfg->cognito_pool_id, region) != 0) {
        snprintf(err, errlen, "credentials (cognito): cognito_identity_pool_id '%.100s' is not "
                 "<region>:<id>", cfg->cognito_pool_id);
        return EVREC_E_CONFIG;
    }
    if (!set(cfg->cognito_pool_id) && set(cfg->cognito_endpoint_url)) {
        snprintf(err, errlen, "credentials (cognito): cognito_endpoint_url is set but "
                 "cognito_identity_pool_id is not");
        return EVREC_E_CONFIG;
    }
    return EVREC_OK;
}
