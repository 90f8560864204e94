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
 */
#include "credentials.h"
#include "creds_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <mbedtls/platform_util.h>

#include "event.h"
#include "log.h"
#include "port.h"
#include "transport.h"

#define REFRESH_AHEAD_MS (5 * 60 * 1000)
#define MAX_SHARED_FILE (1024 * 1024)
#define JSON11 "application/x-amz-json-1.1"

typedef enum {
    P_STATIC, P_CALLBACK, P_ENV, P_FILES, P_IOT, P_COGNITO, P_CONTAINER, P_IMDS, P_COUNT
} provider_t;

static const char *const provider_names[P_COUNT] = {
    "static keys", "callback", "environment", "shared files", "iot", "cognito", "container",
    "instance metadata",
};

/* The remote calls, each with its own backoff. */
typedef enum {
    G_PROCESS, G_STS, G_WEB_IDENTITY, G_SSO, G_CONTAINER, G_IMDS, G_IOT, G_COGNITO, G_COUNT
} gate_id_t;
#define GATE_BASE_MS 1000
#define GATE_CAP_MS (5 * 60 * 1000)
#define MAX_SOURCE_DEPTH 5

/* After a failure a remote provider is not asked again before next_ms (1 s, doubling to
 * 5 minutes): a device far from its provider, or not on EC2 at all, does not pay a timeout on
 * every upload, and a struggling service is not hammered. The last reason is kept, so the
 * error during the wait still says why. */
typedef struct gate {
    unsigned failures;
    int64_t next_ms;
    int code;
    char why[320];
} gate_t;

typedef enum { R_HIT, R_SKIP, R_FAIL, R_STOP } result_t;

struct creds {
    creds_config_t cfg; /* its strings are the caller's, borrowed (creds_new) */
    evrec_credentials_t cache;
    int cache_valid;
    provider_t cache_from;
    int64_t cache_fetched_ms;
    transport_t *iot_tx, *cognito_tx;
    char cognito_id[256];
    transport_t *sts_tx, *sso_tx, *container_tx, *imds_tx;
    gate_t gates[G_COUNT];
};

/* What one pass over the chain learnt, for the error message. */
typedef struct attempt {
    char msg[1024];
    size_t len;
    int net_code; /* a retryable network code from providers 5/6, else 0 */
} attempt_t;

static void note(attempt_t *a, provider_t p, const char *fmt, ...) LOG_PRINTF(3, 4);
static void note(attempt_t *a, provider_t p, const char *fmt, ...)
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

static int64_t now_ms(const creds_t *c)
{
    return c->cfg.now_ms ? c->cfg.now_ms(c->cfg.now_user) : port_wall_ms();
}

/* A remote provider's expiration time in our clock. The provider's answer says what time it
 * is there (its Date header): a device clock far off would otherwise make fresh credentials
 * look expired (and the request that would correct the clock never leaves) or expired ones
 * fresh. Without a Date the provider's clock is taken to be ours. */
static int64_t remote_expiry(const creds_t *c, int64_t exp_ms, int64_t provider_now_ms)
{
    if (provider_now_ms <= 0)
        return exp_ms;
    return now_ms(c) + (exp_ms - provider_now_ms);
}

/* Whether a remote provider's credentials have already expired by its own clock. */
static int remote_expired(const creds_t *c, int64_t exp_ms, int64_t provider_now_ms)
{
    return exp_ms <= (provider_now_ms > 0 ? provider_now_ms : now_ms(c));
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

static int fill(evrec_credentials_t *out, const char *id, const char *secret, const char *token,
                int64_t expiration_ms);
int creds_fill(evrec_credentials_t *out, const char *id, const char *secret, const char *token,
               int64_t expiration_ms)
{
    return fill(out, id, secret, token, expiration_ms);
}

static int fill(evrec_credentials_t *out, const char *id, const char *secret, const char *token,
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

/* What is wrong with the static keys as configured (NULL: nothing, or none given). */
static int no_control_chars(const char *s);

/* A key id, secret or token with a control character could not be sent as one header line
 * (a CR/LF in a token would inject a header): refused wherever it comes from. */
static int sendable_credentials(const evrec_credentials_t *k)
{
    return no_control_chars(k->access_key_id) && no_control_chars(k->secret_access_key) &&
           no_control_chars(k->session_token);
}

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
    int too_long = fill(&probe, g->access_key_id, g->secret_access_key, g->session_token, 0);
    int sendable = too_long || sendable_credentials(&probe);
    mbedtls_platform_zeroize(&probe, sizeof probe);
    return too_long    ? "a key or token is too long"
           : !sendable ? "a key or token holds a control character (CR, LF, ...)"
                       : NULL;
}

static result_t from_static(creds_t *c, evrec_credentials_t *out, attempt_t *a)
{
    const creds_config_t *g = &c->cfg;
    const char *problem = static_problem(g);
    if (problem) {
        note(a, P_STATIC, "%s", problem);
        return R_STOP;
    }
    if (!set(g->access_key_id))
        return R_SKIP;
    if (fill(out, g->access_key_id, g->secret_access_key, g->session_token, 0))
        return R_STOP; /* not reached: static_problem measured them */
    return R_HIT;
}

static result_t from_callback(creds_t *c, evrec_credentials_t *out, attempt_t *a)
{
    if (!c->cfg.callback)
        return R_SKIP;
    memset(out, 0, sizeof *out);
    int rc = c->cfg.callback(c->cfg.callback_user, out);
    if (rc != EVREC_OK) {
        note(a, P_CALLBACK, "returned %d (%s)", rc, evrec_strerror(rc));
        return R_FAIL;
    }
    /* The caller's struct may not be terminated: make it so before looking. */
    out->access_key_id[sizeof out->access_key_id - 1] = '\0';
    out->secret_access_key[sizeof out->secret_access_key - 1] = '\0';
    out->session_token[sizeof out->session_token - 1] = '\0';
    if (!out->access_key_id[0] || !out->secret_access_key[0]) {
        note(a, P_CALLBACK, "returned an empty access key id or secret");
        return R_FAIL;
    }
    if (out->expiration_ms != 0 && out->expiration_ms <= now_ms(c)) {
        note(a, P_CALLBACK, "returned credentials that have already expired");
        return R_FAIL;
    }
    return R_HIT;
}

static result_t from_env(creds_t *c, evrec_credentials_t *out, attempt_t *a)
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
        note(a, P_ENV, "%s is set but %s is not",
             set(id) ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
             set(id) ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return R_FAIL;
    }
    if (fill(out, id, secret, port_getenv("AWS_SESSION_TOKEN"), 0)) {
        note(a, P_ENV, "a key or token is too long");
        return R_FAIL;
    }
    return R_HIT;
}

/* -- 4: shared files --------------------------------------------------------------------- */

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

static int lower_eq(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char x = a[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (x != b[i])
            return 0;
    }
    return 1;
}

/* Does the section header text s[0..n) name `profile`? In the config file non-default
 * profiles are "[profile NAME]" ("default" may be written either way); in the credentials
 * file the section is the profile name itself. */
static int section_is(const char *s, size_t n, int is_config, const char *profile)
{
    while (n > 0 && is_ws(*s))
        s++, n--;
    while (n > 0 && is_ws(s[n - 1]))
        n--;
    size_t pl = strlen(profile);
    if (is_config == 2) {
        /* another kind of config section, "[sso-session NAME]": `profile` is "KIND NAME" */
        size_t kl = strcspn(profile, " ");
        if (profile[kl] != ' ' || n <= kl || memcmp(s, profile, kl) != 0 || !is_ws(s[kl]))
            return 0;
        s += kl, n -= kl;
        while (n > 0 && is_ws(*s))
            s++, n--;
        return n == pl - kl - 1 && memcmp(s, profile + kl + 1, n) == 0;
    }
    if (!is_config || strcmp(profile, "default") == 0)
        if (n == pl && memcmp(s, profile, pl) == 0)
            return 1;
    if (!is_config || n < 8 || memcmp(s, "profile", 7) != 0 || !is_ws(s[7]))
        return 0;
    s += 7, n -= 7;
    while (n > 0 && is_ws(*s))
        s++, n--;
    return n == pl && memcmp(s, profile, pl) == 0;
}

/* The ']' closing a section header that starts at s: the last one on the line, as
 * configparser's greedy pattern takes it (so "[default] ; note" is the default section). */
static const char *section_close(const char *s, const char *e)
{
    for (const char *q = e - 1; q > s; q--)
        if (*q == ']')
            return q;
    return NULL;
}

/*
 * The parser: configparser's rules as botocore uses them. Full-line comments start with '#'
 * or ';' (after optional whitespace); there are no inline comments in values. "key = value"
 * or "key: value", keys case-insensitive, values trimmed. An indented line continues the
 * previous value (that is how nested sections such as "s3 =" are written), so a key inside
 * one is never found at the top level. Malformed files (a line that is neither section,
 * key, comment, nor continuation; a key before any section; a repeated section or key) are
 * an error, as they are for the AWS CLI. *bad_line gets the 1-based line of the problem.
 */
static int ini_lookup(const char *text, int is_config, const char *profile, const char *key,
                      char *out, size_t outlen, int *bad_line)
{
    int in_section = 0, seen_section = 0, any_section = 0, found = 0, line_no = 0;
    int can_continue = 0;
    const char *p = text;
    *bad_line = 0;
    while (*p) {
        line_no++;
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *s = p, *e = end;
        int indented = s < e && is_ws(*s);
        while (s < e && is_ws(*s))
            s++;
        while (e > s && is_ws(e[-1]))
            e--;
        p = eol ? eol + 1 : end;
        if (s == e) {
            can_continue = 0;
            continue;
        }
        if (*s == '#' || *s == ';')
            continue;
        if (indented && can_continue)
            continue; /* continuation of the previous value, or a nested sub-section */
        if (*s == '[') {
            const char *close = section_close(s, e);
            if (!close) {
                *bad_line = line_no;
                return EVREC_E_CONFIG;
            }
            int match = section_is(s + 1, (size_t)(close - s - 1), is_config, profile);
            if (match && seen_section) {
                *bad_line = line_no; /* a duplicate section */
                return EVREC_E_CONFIG;
            }
            in_section = match;
            seen_section |= match;
            any_section = 1;
            can_continue = 0;
            continue;
        }
        const char *d = s;
        while (d < e && *d != '=' && *d != ':')
            d++;
        if (d == e || d == s || !any_section) {
            *bad_line = line_no;
            return EVREC_E_CONFIG;
        }
        can_continue = 1;
        if (!in_section)
            continue;
        const char *ke = d;
        while (ke > s && is_ws(ke[-1]))
            ke--;
        if (!lower_eq(s, (size_t)(ke - s), key))
            continue;
        if (found) {
            *bad_line = line_no; /* a duplicate key */
            return EVREC_E_CONFIG;
        }
        const char *v = d + 1;
        while (v < e && is_ws(*v))
            v++;
        size_t vl = (size_t)(e - v);
        if (vl >= outlen)
            vl = outlen - 1;
        memcpy(out, v, vl);
        out[vl] = '\0';
        found = 1;
    }
    return found ? EVREC_OK : EVREC_E_NOT_FOUND;
}

int creds_ini_get(const char *text, int is_config, const char *profile, const char *key,
                  char *out, size_t outlen)
{
    if (!text || !profile || !*profile || !key || !*key || !out || outlen == 0)
        return EVREC_E_INVALID;
    out[0] = '\0';
    int bad;
    return ini_lookup(text, is_config, profile, key, out, outlen, &bad);
}

/* 1 if the file text has the profile's section at all. */
int creds_ini_has_profile(const char *text, int is_config, const char *profile)
{
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *s = p;
        while (s < end && is_ws(*s))
            s++;
        const char *close = s < end && *s == '[' ? section_close(s, end) : NULL;
        if (close && section_is(s + 1, (size_t)(close - s - 1), is_config, profile))
            return 1;
        p = eol ? eol + 1 : end;
    }
    return 0;
}

/* The option, else AWS_DEFAULT_PROFILE, else AWS_PROFILE (botocore reads them in that
 * order), else "default". */
static const char *profile_name(const char *configured)
{
    if (set(configured))
        return configured;
    const char *env = port_getenv("AWS_DEFAULT_PROFILE");
    if (!set(env))
        env = port_getenv("AWS_PROFILE");
    return set(env) ? env : "default";
}

/* The path of a shared file: the environment override, else ~/.aws/<name>. */
static int shared_path(const char *env_name, const char *file, char *out, size_t len)
{
    const char *env = port_getenv(env_name);
    if (set(env)) {
        snprintf(out, len, "%s", env);
        return 0;
    }
    const char *home = port_home_dir();
    if (!set(home))
        return -1;
    int n = snprintf(out, len, "%s/.aws/%s", home, file);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

typedef struct shared_file {
    char path[512];
    char *text; /* NULL if absent */
    int is_config;
    long owner;     /* its uid */
    unsigned mode;  /* its permission bits */
} shared_file_t;

static int load_shared(shared_file_t *f, const char *env, const char *name, int is_config)
{
    memset(f, 0, sizeof *f);
    f->is_config = is_config;
    if (shared_path(env, name, f->path, sizeof f->path) != 0)
        return 0;
    /* AWS_CONFIG_FILE=/dev/null says "no such file" (botocore reads it as empty); any other
     * file that is not regular (a FIFO would block) is refused below */
    if (strcmp(f->path, "/dev/null") == 0)
        return 0;
    size_t len;
    int rc = port_read_file_owned(f->path, &f->text, &len, MAX_SHARED_FILE, &f->owner, &f->mode);
    if (rc == -ENOENT || rc == -ENOTDIR) {
        f->text = NULL;
        return 0;
    }
    return rc;
}

static void free_shared(shared_file_t *f)
{
    if (f->text) {
        mbedtls_platform_zeroize(f->text, strlen(f->text));
        port_free(f->text);
    }
    f->text = NULL;
}

/* A secret is taken only from a private file, as ssh asks of its keys (port_secret_owner_ok):
 * anyone else who may read it has the secret, anyone who may write it chooses the identity.
 * 0 if `f` may hold one; else a note and -1. */
static int secret_file_ok(const shared_file_t *f, const char *key, attempt_t *a)
{
    int rc = port_secret_owner_ok(f->owner, f->mode);
    if (rc == -EPERM)
        note(a, P_FILES, "%s holds %s but belongs to another user (uid %ld); refused", f->path,
             key, f->owner);
    else if (rc != 0)
        note(a, P_FILES, "%s holds %s but group or others may access it (mode %04o); refused: "
             "chmod 600 %s", f->path, key, f->mode, f->path);
    return rc ? -1 : 0;
}

/* Look a key up in the profile: credentials file first, then config (as the CLI does); *from
 * (when not NULL) gets the file it was found in. */
static int shared_get_from(shared_file_t *files, size_t nfiles, const char *profile,
                           const char *key, char *out, size_t outlen, attempt_t *a,
                           int *malformed, const shared_file_t **from)
{
    for (size_t i = 0; i < nfiles; i++) {
        if (!files[i].text)
            continue;
        int bad;
        int rc = ini_lookup(files[i].text, files[i].is_config, profile, key, out, outlen, &bad);
        if (rc == EVREC_E_CONFIG) {
            note(a, P_FILES, "%s line %d is malformed", files[i].path, bad);
            *malformed = 1;
            return rc;
        }
        if (rc == EVREC_OK && out[0]) {
            if (from)
                *from = &files[i];
            return EVREC_OK;
        }
    }
    out[0] = '\0';
    return EVREC_E_NOT_FOUND;
}

static int shared_get(shared_file_t *files, size_t nfiles, const char *profile, const char *key,
                      char *out, size_t outlen, attempt_t *a, int *malformed)
{
    return shared_get_from(files, nfiles, profile, key, out, outlen, a, malformed, NULL);
}

/* -- remote calls behind their gates ---------------------------------------------------- */

static int gate_closed(const creds_t *c, gate_id_t g, char *why, size_t whylen)
{
    const gate_t *gt = &c->gates[g];
    int64_t now = now_ms(c);
    if (gt->failures == 0 || now >= gt->next_ms)
        return 0;
    snprintf(why, whylen, "%s (not asked again for %lld s)", gt->why,
             (long long)((gt->next_ms - now + 999) / 1000));
    return 1;
}

static void gate_settle(creds_t *c, gate_id_t g, int rc, const char *why)
{
    gate_t *gt = &c->gates[g];
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
    gt->next_ms = now_ms(c) + (delay < GATE_CAP_MS ? delay : GATE_CAP_MS);
    gt->code = rc;
    snprintf(gt->why, sizeof gt->why, "%s", why);
}

/* A provider's code as the chain's result; the reason is noted under provider p. */
static result_t settle(attempt_t *a, provider_t p, int rc, const char *why)
{
    if (rc == EVREC_OK)
        return R_HIT;
    if (rc == EVREC_E_NOT_FOUND)
        return R_SKIP;
    note(a, p, "%s", why);
    if (rc == EVREC_E_CONFIG)
        return R_STOP;
    if (evrec_error_is_retryable(rc) || rc == EVREC_E_TLS)
        a->net_code = a->net_code ? a->net_code : rc;
    return R_FAIL;
}

static int run_container(creds_t *c, evrec_credentials_t *out, char *why, size_t whylen)
{
    if (gate_closed(c, G_CONTAINER, why, whylen))
        return c->gates[G_CONTAINER].code;
    int rc = creds_container(&c->container_tx, &c->cfg, now_ms(c), out, why, whylen);
    gate_settle(c, G_CONTAINER, rc, why);
    return rc;
}

static int run_imds(creds_t *c, evrec_credentials_t *out, char *why, size_t whylen)
{
    if (gate_closed(c, G_IMDS, why, whylen))
        return c->gates[G_IMDS].code;
    int rc = creds_imds(&c->imds_tx, &c->cfg, now_ms(c), out, why, whylen);
    gate_settle(c, G_IMDS, rc, why);
    return rc;
}

static result_t from_container(creds_t *c, evrec_credentials_t *out, attempt_t *a)
{
    char why[512] = "";
    return settle(a, P_CONTAINER, run_container(c, out, why, sizeof why), why);
}

static result_t from_imds(creds_t *c, evrec_credentials_t *out, attempt_t *a)
{
    char why[512] = "";
    return settle(a, P_IMDS, run_imds(c, out, why, sizeof why), why);
}

/* -- 4: shared files: a profile and what it names ------------------------------------------- */

/* A credential service's endpoint: AWS_ENDPOINT_URL_<ID> or its `services` entry in the
 * profile, else the SDKs' default (NULL). Not the global AWS_ENDPOINT_URL / endpoint_url:
 * those name the events endpoint here (as for Cognito above) and would send these calls
 * there. `buf` holds the answer. */
static const char *service_endpoint(creds_t *c, const char *env_name, char *buf, size_t len)
{
    char from[128];
    return creds_endpoint_url(env_name, c->cfg.profile, 0, buf, len, from, sizeof from) ==
                   EVREC_OK
               ? buf
               : NULL;
}

typedef struct profile_walk {
    creds_t *c;
    shared_file_t *files;
    attempt_t *a;
    int env_ok; /* the AWS_WEB_IDENTITY_TOKEN_FILE & co variables may be read */
} profile_walk_t;

/* A key of the profile (credentials file, then config); 1 if there. */
static int pget(profile_walk_t *w, const char *prof, const char *key, char *buf, size_t len,
                int *mal)
{
    return shared_get(w->files, 2, prof, key, buf, len, w->a, mal) == EVREC_OK;
}

static result_t resolve_profile(profile_walk_t *w, const char *name, int depth,
                                evrec_credentials_t *out);

/* Static keys of a profile: from the credentials file alone (which = 0), or key by key from
 * both files (which = 2). R_SKIP when it has none. */
static result_t profile_keys(profile_walk_t *w, const char *name, int which,
                             evrec_credentials_t *out)
{
    char id[128], secret[128], token[4096];
    int malformed = 0;
    size_t n = which == 2 ? 2 : 1;
    shared_file_t *f = &w->files[which == 2 ? 0 : which];
    int have_id = shared_get(f, n, name, "aws_access_key_id", id, sizeof id, w->a,
                             &malformed) == EVREC_OK;
    const shared_file_t *secret_from = NULL, *token_from = NULL;
    int have_secret = !malformed &&
                      shared_get_from(f, n, name, "aws_secret_access_key", secret, sizeof secret,
                                      w->a, &malformed, &secret_from) == EVREC_OK;
    if (!malformed && shared_get_from(f, n, name, "aws_session_token", token, sizeof token,
                                      w->a, &malformed, &token_from) != EVREC_OK)
        token[0] = '\0';
    if (!malformed &&
        ((secret_from && secret_file_ok(secret_from, "aws_secret_access_key", w->a) != 0) ||
         (token_from && secret_file_ok(token_from, "aws_session_token", w->a) != 0)))
        malformed = 1; /* named in the note */
    result_t res = R_SKIP;
    if (malformed) {
        res = R_FAIL;
    } else if (have_id && have_secret) {
        if (fill(out, id, secret, token, 0) == 0) {
            res = R_HIT;
        } else {
            note(w->a, P_FILES, "profile '%s' has an over-long key or token", name);
            res = R_FAIL;
        }
    } else if (which == 2 && (have_id || have_secret)) {
        note(w->a, P_FILES, "profile '%s' has %s but no %s", name,
             have_id ? "aws_access_key_id" : "aws_secret_access_key",
             have_id ? "aws_secret_access_key" : "aws_access_key_id");
        res = R_FAIL;
    }
    mbedtls_platform_zeroize(secret, sizeof secret);
    mbedtls_platform_zeroize(token, sizeof token);
    return res;
}

/* credential_source: one of the chain's own providers, by the SDKs' canonical name. */
static result_t named_source(profile_walk_t *w, const char *name, const char *source,
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
            rc = fill(out, id, secret, port_getenv("AWS_SESSION_TOKEN"), 0) == 0
                     ? EVREC_OK
                     : EVREC_E_CREDENTIALS;
            if (rc != EVREC_OK)
                snprintf(why, sizeof why, "a key or token in the environment is too long");
        }
    } else if (strcmp(source, "Ec2InstanceMetadata") == 0) {
        rc = run_imds(w->c, out, why, sizeof why);
        if (rc == EVREC_E_NOT_FOUND) {
            snprintf(why, sizeof why, "AWS_EC2_METADATA_DISABLED is set");
            rc = EVREC_E_CREDENTIALS;
        }
    } else if (strcmp(source, "EcsContainer") == 0) {
        rc = run_container(w->c, out, why, sizeof why);
        if (rc == EVREC_E_NOT_FOUND) {
            snprintf(why, sizeof why, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI "
                                      "are not set");
            rc = EVREC_E_CREDENTIALS;
        }
    } else {
        note(w->a, P_FILES, "profile '%s': credential_source '%s' is not Environment, "
                            "Ec2InstanceMetadata or EcsContainer", name, source);
        return R_STOP;
    }
    if (rc == EVREC_OK)
        return R_HIT;
    note(w->a, P_FILES, "profile '%s': credential_source %s: %s", name, source, why);
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
static result_t assume_role(profile_walk_t *w, const char *name, int depth, const char *role_arn,
                            evrec_credentials_t *out)
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
        note(w->a, P_FILES, "profile '%s' has role_arn and %s", name,
             has_src ? "both source_profile and credential_source (one only)"
                     : "neither source_profile nor credential_source");
        return R_STOP;
    }
    evrec_credentials_t source;
    result_t r;
    if (has_csrc) {
        r = named_source(w, name, csrc, &source);
    } else if (strcmp(src, name) == 0) {
        /* A profile may source itself for its own static keys (as botocore allows). */
        r = profile_keys(w, name, 2, &source);
        if (r == R_SKIP) {
            note(w->a, P_FILES, "profile '%s' is its own source_profile but has no keys", name);
            r = R_STOP;
        }
    } else if (depth >= MAX_SOURCE_DEPTH) {
        note(w->a, P_FILES, "profile '%s': source_profile chain deeper than %d (a loop?)", name,
             MAX_SOURCE_DEPTH);
        r = R_STOP;
    } else if (!has_profile(w, src)) {
        note(w->a, P_FILES, "profile '%s': source_profile '%s' does not exist", name, src);
        r = R_STOP;
    } else {
        r = resolve_profile(w, src, depth + 1, &source);
        if (r == R_SKIP) {
            note(w->a, P_FILES, "profile '%s': source_profile '%s' has no credentials", name,
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
                          .endpoint_url = service_endpoint(c, "AWS_ENDPOINT_URL_STS", url,
                                                           sizeof url) };
    char why[512] = "";
    int rc;
    if (gate_closed(c, G_STS, why, sizeof why)) {
        rc = c->gates[G_STS].code;
    } else {
        rc = creds_sts_assume_role(&c->sts_tx, &c->cfg, &role, &source, now_ms(c), out, why,
                                   sizeof why);
        gate_settle(c, G_STS, rc, why);
    }
    mbedtls_platform_zeroize(&source, sizeof source);
    if (rc == EVREC_OK)
        return R_HIT;
    char msg[700];
    snprintf(msg, sizeof msg, "profile '%s': role %s: %s", name, role_arn, why);
    return settle(w->a, P_FILES, rc, msg);
}

/* web_identity_token_file (and role_arn, role_session_name): the environment's variables
 * first, then the profile's, as botocore reads them. */
static result_t web_identity(profile_walk_t *w, const char *name, evrec_credentials_t *out)
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
        note(w->a, P_FILES, "a web identity token file is set but no role ARN (role_arn or "
                            "AWS_ROLE_ARN)");
        return R_STOP;
    }
    creds_t *c = w->c;
    char url[1024];
    creds_role_t role = { .role_arn = arn, .session_name = session, .region = c->cfg.region,
                          .endpoint_url = service_endpoint(c, "AWS_ENDPOINT_URL_STS", url,
                                                           sizeof url) };
    char why[512] = "";
    int rc;
    if (gate_closed(c, G_WEB_IDENTITY, why, sizeof why)) {
        rc = c->gates[G_WEB_IDENTITY].code;
    } else {
        rc = creds_sts_web_identity(&c->sts_tx, &c->cfg, &role, file, now_ms(c), out, why,
                                    sizeof why);
        gate_settle(c, G_WEB_IDENTITY, rc, why);
    }
    char msg[800];
    snprintf(msg, sizeof msg, "web identity, role %s: %s", arn, why);
    return settle(w->a, P_FILES, rc, msg);
}

/* sso_session (an [sso-session NAME] section) or the legacy sso_start_url in the profile. */
static result_t sso(profile_walk_t *w, const char *name, evrec_credentials_t *out)
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
        shared_file_t cf = w->files[1];
        cf.is_config = 2;
        char section[160];
        snprintf(section, sizeof section, "sso-session %s", session);
        if (!cf.text || shared_get(&cf, 1, section, "sso_start_url", start, sizeof start,
                                   w->a, &mal) != EVREC_OK) {
            if (!mal)
                note(w->a, P_FILES, "profile '%s': sso_session '%s' has no [sso-session %s] "
                                    "section with sso_start_url", name, session, session);
            return mal ? R_FAIL : R_STOP;
        }
        shared_get(&cf, 1, section, "sso_region", region, sizeof region, w->a, &mal);
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
        note(w->a, P_FILES, "profile '%s' uses SSO but has no %s", name, missing);
        return R_STOP;
    }
    creds_t *c = w->c;
    char url[1024];
    creds_sso_t q = { .cache_key = has_session ? session : start, .region = region,
                      .account_id = account, .role_name = role,
                      .endpoint_url = service_endpoint(c, "AWS_ENDPOINT_URL_SSO", url,
                                                       sizeof url) };
    char why[512] = "";
    int rc;
    if (gate_closed(c, G_SSO, why, sizeof why)) {
        rc = c->gates[G_SSO].code;
    } else {
        rc = creds_sso(&c->sso_tx, &c->cfg, &q, now_ms(c), out, why, sizeof why);
        gate_settle(c, G_SSO, rc, why);
    }
    char msg[800];
    snprintf(msg, sizeof msg, "profile '%s': sso account %s role %s: %s", name, account, role,
             why);
    return settle(w->a, P_FILES, rc, msg);
}

static result_t process(profile_walk_t *w, const char *name, evrec_credentials_t *out)
{
    char command[2048] = "";
    int mal = 0;
    if (!pget(w, name, "credential_process", command, sizeof command, &mal))
        return mal ? R_FAIL : R_SKIP;
    creds_t *c = w->c;
    char why[512] = "";
    int rc;
    if (gate_closed(c, G_PROCESS, why, sizeof why)) {
        rc = c->gates[G_PROCESS].code;
    } else {
        rc = creds_process(command, now_ms(c), out, why, sizeof why);
        gate_settle(c, G_PROCESS, rc, why);
    }
    mbedtls_platform_zeroize(command, sizeof command);
    char msg[700];
    snprintf(msg, sizeof msg, "profile '%s': %s", name, why);
    return settle(w->a, P_FILES, rc, msg);
}

/*
 * A profile's credentials, in botocore's order: assume role (role_arn without a web identity
 * token file), web identity, SSO, keys in the credentials file, credential_process, keys in
 * the config file. A source profile (depth > 0) with keys of its own uses them, not its
 * role_arn, as botocore does.
 */
static result_t resolve_profile(profile_walk_t *w, const char *name, int depth,
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
    result_t r = R_SKIP;
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

static result_t from_files(creds_t *c, evrec_credentials_t *out, attempt_t *a)
{
    const char *profile = profile_name(c->cfg.profile);
    int explicit_profile = strcmp(profile, "default") != 0 || set(c->cfg.profile);
    shared_file_t files[2];
    int r1 = load_shared(&files[0], "AWS_SHARED_CREDENTIALS_FILE", "credentials", 0);
    int r2 = load_shared(&files[1], "AWS_CONFIG_FILE", "config", 1);
    profile_walk_t w = { .c = c, .files = files, .a = a,
                         .env_ok = !c->cfg.no_environment && !set(c->cfg.profile) };
    result_t res = R_FAIL;
    if (r1 != 0 || r2 != 0) {
        int r = r1 != 0 ? r1 : r2;
        note(a, P_FILES, "cannot read %s (%s)", r1 != 0 ? files[0].path : files[1].path,
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
            note(a, P_FILES, "profile '%s' asked for, but neither %s nor %s exists", profile,
                 files[0].path, files[1].path);
        else if (explicit_profile)
            note(a, P_FILES, "profile '%s' not found in %s or %s", profile, files[0].path,
                 files[1].path);
        res = explicit_profile ? R_FAIL : R_SKIP;
        goto done;
    }
    res = resolve_profile(&w, profile, 0, out);
    if (res == R_SKIP) {
        note(a, P_FILES, "profile '%s' has no aws_access_key_id, role_arn, "
                         "web_identity_token_file, sso_session or credential_process", profile);
        res = R_FAIL;
    }
done:
    free_shared(&files[0]);
    free_shared(&files[1]);
    return res;
}

/* The config file's text for creds_endpoint.c (NULL when there is none); free with
 * creds_config_text_free. Read as the credential providers read it. */
char *creds_config_text(void)
{
    shared_file_t f;
    if (load_shared(&f, "AWS_CONFIG_FILE", "config", 1) != 0) {
        free_shared(&f);
        return NULL;
    }
    return f.text;
}

const char *creds_profile_name(const char *configured)
{
    return profile_name(configured);
}

/* -- region ---------------------------------------------------------------------------- */

int creds_resolve_region(const char *explicit_region, const char *profile, char *out,
                         size_t outlen)
{
    if (!out || outlen == 0)
        return EVREC_E_INVALID;
    out[0] = '\0';
    const char *r = set(explicit_region) ? explicit_region : port_getenv("AWS_REGION");
    if (!set(r))
        r = port_getenv("AWS_DEFAULT_REGION");
    if (set(r)) {
        if (strlen(r) >= outlen)
            return EVREC_E_CONFIG;
        snprintf(out, outlen, "%s", r);
        return EVREC_OK;
    }
    shared_file_t f;
    int rc = EVREC_E_CONFIG;
    if (load_shared(&f, "AWS_CONFIG_FILE", "config", 1) == 0 && f.text)
        rc = creds_ini_get(f.text, 1, profile_name(profile), "region", out, outlen);
    free_shared(&f);
    if (rc == EVREC_OK && out[0])
        return EVREC_OK;
    /* Last, the instance's own region (IMDSv2), as the SDKs do on EC2. */
    creds_config_t imds = { .connect_timeout_ms = 1000, .request_timeout_ms = 1000 };
    out[0] = '\0';
    return creds_imds_region(&imds, out, outlen) == EVREC_OK && out[0] ? EVREC_OK
                                                                         : EVREC_E_CONFIG;
}

/* -- 5, 6: the remote providers ---------------------------------------------------------- */

static int no_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int remote_transport(creds_t *c, transport_t **tx, int mutual)
{
    if (*tx)
        return EVREC_OK;
    transport_config_t tc = {
        .ca_bundle = c->cfg.ca_bundle,
        .no_verify_tls = c->cfg.no_verify_tls,
        .connect_timeout_ms = c->cfg.connect_timeout_ms,
        .request_timeout_ms = c->cfg.request_timeout_ms,
        .max_response_bytes = 64 * 1024,
        .client_cert_file = mutual ? c->cfg.iot_cert_file : NULL,
        .client_key_file = mutual ? c->cfg.iot_key_file : NULL,
    };
    return transport_new(tx, &tc);
}

/* The service's own words for a refusal: "message" / "Message" and "__type". */
static void service_reason(const transport_response_t *r, char *out, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "__type");
    const cJSON *msg = cJSON_GetObjectItem(j, "message");
    const char *t = cJSON_IsString(type) ? type->valuestring : r->error_type;
    const char *m = cJSON_IsString(msg) ? msg->valuestring : "";
    const char *hash = strchr(t, '#'); /* "com.amazonaws...#NotAuthorizedException" */
    if (hash)
        t = hash + 1;
    snprintf(out, len, "HTTP %ld%s%s%s%s", r->status, *t ? " " : "", t, *m ? ": " : "", m);
    cJSON_Delete(j);
}

static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static result_t fail_net(attempt_t *a, provider_t p, int rc, const char *what, const char *err)
{
    note(a, p, "%s failed: %s", what, err[0] ? err : evrec_strerror(rc));
    if (evrec_error_is_retryable(rc) || rc == EVREC_E_TLS)
        a->net_code = a->net_code ? a->net_code : rc;
    return R_FAIL;
}

/* The request URL and thing-name header of the IoT credentials provider: IOT_OK, IOT_NONE
 * (none of its options given) or IOT_BAD (half configured or malformed; `why` says what). */
enum { IOT_OK, IOT_NONE, IOT_BAD };
static int iot_request(const creds_config_t *g, char url[1024], char thing[512], char *why,
                       size_t whylen)
{
    static const char *const names[] = { "iot_credentials_endpoint", "iot_role_alias",
                                         "iot_thing_name", "iot_cert_file", "iot_key_file" };
    const char *values[] = { g->iot_endpoint, g->iot_role_alias, g->iot_thing_name,
                             g->iot_cert_file, g->iot_key_file };
    const char *given = NULL, *missing = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (set(values[i]) && !given)
            given = names[i];
        if (!set(values[i]) && !missing)
            missing = names[i];
    }
    if (!given)
        return IOT_NONE;
    if (missing) {
        snprintf(why, whylen, "%s is set but %s is not (the IoT credentials provider needs "
                 "the endpoint, role alias, thing name, certificate and key)", given, missing);
        return IOT_BAD;
    }
    if (!no_control_chars(g->iot_thing_name) || !no_control_chars(g->iot_role_alias) ||
        strchr(g->iot_role_alias, '/') || strchr(g->iot_role_alias, '?')) {
        snprintf(why, whylen, "iot_role_alias or iot_thing_name holds characters it cannot have");
        return IOT_BAD;
    }
    /* The key is a secret (private to its owner, as ssh asks); neither file may be a FIFO or
     * a device, which would block the TLS set-up past any timeout. A missing file is reported
     * by the TLS set-up itself. */
    long owner = -1;
    unsigned mode = 0;
    int kr = port_file_check_private(g->iot_key_file, &owner, &mode);
    int cr = port_file_check_private(g->iot_cert_file, NULL, NULL);
    if (cr == -EINVAL || kr == -EINVAL) {
        snprintf(why, whylen, "%s is not a regular file", cr == -EINVAL ? "iot_cert_file"
                                                                        : "iot_key_file");
        return IOT_BAD;
    }
    if (kr == -EPERM || kr == -EACCES) {
        if (kr == -EPERM)
            snprintf(why, whylen, "iot_key_file %.120s belongs to another user (uid %ld)",
                     g->iot_key_file, owner);
        else
            snprintf(why, whylen, "iot_key_file %.120s may be accessed by group or others "
                     "(mode %04o): chmod 600 it", g->iot_key_file, mode);
        return IOT_BAD;
    }
    int has_scheme = strncmp(g->iot_endpoint, "https://", 8) == 0 ||
                     strncmp(g->iot_endpoint, "http://", 7) == 0;
    size_t elen = strlen(g->iot_endpoint);
    while (elen > 0 && g->iot_endpoint[elen - 1] == '/')
        elen--;
    int n = snprintf(url, 1024, "%s%.*s/role-aliases/%s/credentials",
                     has_scheme ? "" : "https://", (int)elen, g->iot_endpoint, g->iot_role_alias);
    if (n < 0 || n >= 1024 ||
        snprintf(thing, 512, "x-amzn-iot-thingname: %s", g->iot_thing_name) >= 512) {
        snprintf(why, whylen, "the endpoint, role alias or thing name is too long");
        return IOT_BAD;
    }
    return IOT_OK;
}

static result_t from_iot(creds_t *c, evrec_credentials_t *out, attempt_t *a)
{
    const creds_config_t *g = &c->cfg;
    char url[1024], thing[512], why[256];
    int state = iot_request(g, url, thing, why, sizeof why);
    if (state == IOT_NONE)
        return R_SKIP;
    if (state == IOT_BAD) {
        note(a, P_IOT, "%s", why);
        return R_STOP;
    }
    int rc = remote_transport(c, &c->iot_tx, 1);
    if (rc != EVREC_OK) {
        note(a, P_IOT, "cannot set up the TLS client (%s)", evrec_strerror(rc));
        return rc == EVREC_E_CONFIG ? R_STOP : R_FAIL;
    }
    const char *const headers[] = { thing, "Accept: application/json", NULL };
    transport_response_t r;
    char err[384];
    rc = transport_send(c->iot_tx, "GET", url, headers, NULL, 0, &r, err, sizeof err);
    if (rc != EVREC_OK)
        return fail_net(a, P_IOT, rc, "GET /role-aliases/.../credentials", err);
    result_t res = R_FAIL;
    if (r.status != 200) {
        service_reason(&r, why, sizeof why);
        note(a, P_IOT, "role alias '%s' for thing '%s': %s", g->iot_role_alias,
             g->iot_thing_name, why);
        if (r.status >= 500 || r.status == 429)
            a->net_code = a->net_code ? a->net_code
                                      : r.status == 429 ? EVREC_E_THROTTLED : EVREC_E_SERVICE;
        transport_response_clear(&r);
        return R_FAIL;
    }
    cJSON *j = cJSON_ParseWithLength(r.body, r.body_len);
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(j, "credentials");
    const char *id = json_str(cr, "accessKeyId"), *secret = json_str(cr, "secretAccessKey");
    const char *token = json_str(cr, "sessionToken"), *exp = json_str(cr, "expiration");
    int64_t exp_ms = 0;
    if (!id || !secret || !token || !exp)
        note(a, P_IOT, "the answer lacks credentials.accessKeyId, secretAccessKey, "
                       "sessionToken or expiration");
    else if (event_parse_iso8601(exp, &exp_ms) != EVREC_OK)
        note(a, P_IOT, "the answer's expiration is not an ISO 8601 time");
    else if (remote_expired(c, exp_ms, r.date_ms))
        note(a, P_IOT, "the answer's credentials have already expired");
    else if (fill(out, id, secret, token, remote_expiry(c, exp_ms, r.date_ms)) != 0)
        note(a, P_IOT, "the answer holds an over-long key or token");
    else
        res = R_HIT;
    cJSON_Delete(j);
    mbedtls_platform_zeroize(r.body, r.body_len);
    transport_response_clear(&r);
    return res;
}

/* One JSON 1.1 call to Cognito Identity with a one-member request {member: value};
 * *answer is the parsed body on HTTP 200. */
static int cognito_call(creds_t *c, const char *url, const char *op, const char *member,
                        const char *value, cJSON **answer, int64_t *date_ms, char *why,
                        size_t whylen, attempt_t *a)
{
    *answer = NULL;
    if (date_ms)
        *date_ms = 0;
    cJSON *req = cJSON_CreateObject();
    char *body = req && cJSON_AddStringToObject(req, member, value)
                     ? cJSON_PrintUnformatted(req)
                     : NULL;
    cJSON_Delete(req);
    if (!body) {
        snprintf(why, whylen, "out of memory");
        return EVREC_E_NOMEM;
    }
    char target[96];
    snprintf(target, sizeof target, "X-Amz-Target: AWSCognitoIdentityService.%s", op);
    const char *const headers[] = { "Content-Type: " JSON11, target, NULL };
    transport_response_t r;
    char err[384];
    int rc = transport_send(c->cognito_tx, "POST", url, headers, body, strlen(body), &r, err,
                            sizeof err);
    cJSON_free(body);
    if (rc != EVREC_OK) {
        snprintf(why, whylen, "%s failed: %s", op, err[0] ? err : evrec_strerror(rc));
        if (evrec_error_is_retryable(rc) || rc == EVREC_E_TLS)
            a->net_code = a->net_code ? a->net_code : rc;
        return rc;
    }
    if (r.status != 200) {
        char reason[256];
        service_reason(&r, reason, sizeof reason);
        snprintf(why, whylen, "%s: %s", op, reason);
        if (r.status >= 500 || r.status == 429)
            a->net_code = a->net_code ? a->net_code
                                      : r.status == 429 ? EVREC_E_THROTTLED : EVREC_E_SERVICE;
        rc = strstr(reason, "ResourceNotFound") || strstr(reason, "NotAuthorized")
                 ? EVREC_E_NOT_FOUND
                 : EVREC_E_CREDENTIALS;
        transport_response_clear(&r);
        return rc;
    }
    *answer = cJSON_ParseWithLength(r.body, r.body_len);
    if (date_ms)
        *date_ms = r.date_ms;
    mbedtls_platform_zeroize(r.body, r.body_len);
    transport_response_clear(&r);
    if (!*answer) {
        snprintf(why, whylen, "%s: the answer is not JSON", op);
        return EVREC_E_RESPONSE;
    }
    return EVREC_OK;
}

static int cognito_get_id(creds_t *c, const char *url, char *why, size_t whylen, attempt_t *a)
{
    cJSON *ans;
    int rc = cognito_call(c, url, "GetId", "IdentityPoolId", c->cfg.cognito_pool_id, &ans, NULL,
                          why, whylen, a);
    if (rc != EVREC_OK)
        return rc == EVREC_E_NOT_FOUND ? EVREC_E_CREDENTIALS : rc;
    const char *id = json_str(ans, "IdentityId");
    if (!id || strlen(id) >= sizeof c->cognito_id || !no_control_chars(id)) {
        snprintf(why, whylen, "GetId: the answer has no usable IdentityId");
        rc = EVREC_E_RESPONSE;
    } else {
        snprintf(c->cognito_id, sizeof c->cognito_id, "%s", id);
        /* Persist it so the device keeps its identity across restarts. A store that cannot
         * write it costs a new identity next time, not this upload. */
        if (c->cfg.queue)
            queue_meta_put(c->cfg.queue, QUEUE_META_COGNITO_ID, id, strlen(id));
    }
    cJSON_Delete(ans);
    return rc;
}

static int cognito_credentials(creds_t *c, const char *url, evrec_credentials_t *out,
                               char *why, size_t whylen, attempt_t *a)
{
    cJSON *ans;
    int64_t date_ms = 0;
    int rc = cognito_call(c, url, "GetCredentialsForIdentity", "IdentityId", c->cognito_id, &ans,
                          &date_ms, why, whylen, a);
    if (rc != EVREC_OK)
        return rc;
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(ans, "Credentials");
    const char *id = json_str(cr, "AccessKeyId"), *secret = json_str(cr, "SecretKey");
    const char *token = json_str(cr, "SessionToken");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(cr, "Expiration");
    rc = EVREC_E_RESPONSE;
    if (!id || !secret || !token || !cJSON_IsNumber(exp))
        snprintf(why, whylen, "GetCredentialsForIdentity: the answer lacks Credentials."
                              "AccessKeyId, SecretKey, SessionToken or Expiration");
    else if (remote_expired(c, (int64_t)(exp->valuedouble * 1000.0), date_ms))
        snprintf(why, whylen, "GetCredentialsForIdentity: the credentials have already expired");
    else if (fill(out, id, secret, token,
                  remote_expiry(c, (int64_t)(exp->valuedouble * 1000.0), date_ms)) != 0)
        snprintf(why, whylen, "GetCredentialsForIdentity: an over-long key or token");
    else
        rc = EVREC_OK;
    cJSON_Delete(ans);
    return rc;
}

/* The pool id is "<region>:<uuid>"; the pool lives in that region, whatever region the
 * events go to. 0 and the region, or -1 when the pool id is malformed. */
static int cognito_region(const char *pool_id, char region[64])
{
    const char *colon = strchr(pool_id, ':');
    region[0] = '\0';
    if (colon && colon - pool_id < 64)
        snprintf(region, 64, "%.*s", (int)(colon - pool_id), pool_id);
    return colon && region[0] && colon[1] && no_control_chars(pool_id) ? 0 : -1;
}

static result_t from_cognito(creds_t *c, evrec_credentials_t *out, attempt_t *a)
{
    const creds_config_t *g = &c->cfg;
    if (!set(g->cognito_pool_id))
        return R_SKIP;
    char region[64];
    if (cognito_region(g->cognito_pool_id, region) != 0) {
        note(a, P_COGNITO, "cognito_identity_pool_id '%s' is not <region>:<id>",
             g->cognito_pool_id);
        return R_STOP;
    }
    /* The service-specific override of the SDKs; not the global AWS_ENDPOINT_URL, which
     * names the PutEvents endpoint and would send these calls there. */
    char env_buf[512];
    const char *env_url = service_endpoint(c, "AWS_ENDPOINT_URL_COGNITO_IDENTITY", env_buf,
                                           sizeof env_buf);
    char url[512];
    if (set(g->cognito_endpoint_url))
        snprintf(url, sizeof url, "%s", g->cognito_endpoint_url);
    else if (set(env_url))
        snprintf(url, sizeof url, "%s", env_url);
    else
        snprintf(url, sizeof url, "https://cognito-identity.%s.amazonaws.com/", region);
    int rc = remote_transport(c, &c->cognito_tx, 0);
    if (rc != EVREC_OK) {
        note(a, P_COGNITO, "cannot set up the HTTPS client (%s)", evrec_strerror(rc));
        return R_FAIL;
    }
    if (!c->cognito_id[0] && g->queue) {
        char *stored = NULL;
        size_t len = 0;
        if (queue_meta_get(g->queue, QUEUE_META_COGNITO_ID, &stored, &len) == EVREC_OK &&
            stored && len > 0 && len < sizeof c->cognito_id) {
            memcpy(c->cognito_id, stored, len);
            c->cognito_id[len] = '\0';
        }
        port_free(stored);
    }
    char why[512] = "";
    int fresh = 0;
    if (!c->cognito_id[0]) {
        rc = cognito_get_id(c, url, why, sizeof why, a);
        fresh = 1;
    }
    if (rc == EVREC_OK) {
        rc = cognito_credentials(c, url, out, why, sizeof why, a);
        if (rc == EVREC_E_NOT_FOUND && !fresh) {
            /* The remembered identity is gone (deleted, or of another pool): start again. */
            c->cognito_id[0] = '\0';
            rc = cognito_get_id(c, url, why, sizeof why, a);
            if (rc == EVREC_OK)
                rc = cognito_credentials(c, url, out, why, sizeof why, a);
        }
    }
    if (rc == EVREC_OK)
        return R_HIT;
    note(a, P_COGNITO, "pool '%s': %s", g->cognito_pool_id, why);
    return R_FAIL;
}

/* -- the chain ------------------------------------------------------------------------- */

typedef result_t (*provider_fn)(creds_t *c, evrec_credentials_t *out, attempt_t *a);
static const provider_fn providers[P_COUNT] = {
    from_static, from_callback, from_env, from_files, from_iot, from_cognito, from_container,
    from_imds,
};

/* IoT and Cognito behind their gates, as the other remote providers: the reason they noted
 * is kept for the wait. */
static result_t run_provider(creds_t *c, provider_t p, evrec_credentials_t *out, attempt_t *a)
{
    gate_id_t g = p == P_IOT ? G_IOT : p == P_COGNITO ? G_COGNITO : G_COUNT;
    if (g == G_COUNT)
        return providers[p](c, out, a);
    char why[512];
    if (gate_closed(c, g, why, sizeof why)) {
        note(a, p, "%s", why);
        int rc = c->gates[g].code;
        if (evrec_error_is_retryable(rc) || rc == EVREC_E_TLS)
            a->net_code = a->net_code ? a->net_code : rc;
        return R_FAIL;
    }
    size_t before = a->len;
    int net_before = a->net_code;
    result_t r = providers[p](c, out, a);
    if (r == R_HIT) {
        gate_settle(c, g, EVREC_OK, "");
    } else if (r == R_FAIL) {
        /* what this provider added: "; <name>: <reason>" */
        const char *reason = a->msg + before;
        const char *colon = strstr(reason, ": ");
        gate_settle(c, g, a->net_code != net_before ? a->net_code : EVREC_E_CREDENTIALS,
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
    int64_t now = now_ms(c);
    if (c->cache_valid && fresh_enough(c, now)) {
        *out = c->cache;
        return EVREC_OK;
    }
    attempt_t a;
    memset(&a, 0, sizeof a);
    evrec_credentials_t got;
    char skipped[128] = "";
    for (int p = 0; p < P_COUNT; p++) {
        result_t r = run_provider(c, (provider_t)p, &got, &a);
        if (r == R_HIT && !sendable_credentials(&got)) {
            note(&a, (provider_t)p, "gave a key or session token holding a control character "
                 "(CR, LF, ...); refused");
            r = p == P_STATIC ? R_STOP : R_FAIL;
        }
        if (r == R_HIT) {
            *out = got;
            if (p != P_STATIC && (p != P_CALLBACK || got.expiration_ms != 0)) {
                c->cache = got;
                c->cache_valid = 1;
                c->cache_from = (provider_t)p;
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
    if (iot_request(cfg, url, thing, why, sizeof why) == IOT_BAD) {
        snprintf(err, errlen, "credentials (iot): %s", why);
        return EVREC_E_CONFIG;
    }
    char region[64];
    if (set(cfg->cognito_pool_id) && cognito_region(cfg->cognito_pool_id, region) != 0) {
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
