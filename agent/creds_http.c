/*
 * The credential providers that are one or two HTTP calls: container credentials (ECS, EKS
 * Pod Identity, the AWS IoT Greengrass v2 token exchange service), EC2 instance metadata
 * (IMDSv2 only: a session token first, so a request forged through an open proxy on the
 * instance gets nothing), and IAM Identity Center (SSO) from the token the AWS CLI cached.
 * Plus the helpers every remote provider shares: the transport, the JSON credential shape,
 * the refusal's reason.
 */
#include "creds_internal.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha1.h>
#include <mbedtls/version.h>

#include "event.h"
#include "port.h"
#include "util_str.h"

#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_HOST "http://169.254.169.254"
#define CONTAINER_TIMEOUT_MS 5000
#define IMDS_TIMEOUT_MS 1000 /* botocore's; an instance answers in milliseconds */
#define IMDS_TOKEN_TTL_S "21600"
#define MAX_TOKEN_FILE (16 * 1024)

static int set(const char *s)
{
    return s && *s;
}

static int no_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* -- shared helpers ------------------------------------------------------------------------ */

int64_t creds_local_expiry(int64_t now_ms, int64_t exp_ms, int64_t provider_now_ms)
{
    return provider_now_ms > 0 ? now_ms + (exp_ms - provider_now_ms) : exp_ms;
}

int creds_transport(transport_t **tx, const creds_config_t *cfg, uint32_t timeout_ms)
{
    if (*tx)
        return EVREC_OK;
    transport_config_t tc = {
        .ca_bundle = cfg->ca_bundle,
        .no_verify_tls = cfg->no_verify_tls,
        .connect_timeout_ms = timeout_ms ? timeout_ms : cfg->connect_timeout_ms,
        .request_timeout_ms = timeout_ms ? timeout_ms : cfg->request_timeout_ms,
        .max_response_bytes = 64 * 1024,
    };
    return transport_new(tx, &tc);
}

int creds_status_code(long status)
{
    return status == 429 ? EVREC_E_THROTTLED : status >= 500 ? EVREC_E_SERVICE
                                                             : EVREC_E_CREDENTIALS;
}

/* Copy a short, printable excerpt of s[0..n) (a service's words, never a whole body). */
static void excerpt(char *out, size_t outlen, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen && o < 160; i++)
        out[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
    out[o] = '\0';
}

void creds_http_reason(const transport_response_t *r, char *out, size_t len)
{
    char type[128] = "", msg[200] = "";
    cJSON *j = r->body_len ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
    if (j) {
        static const char *const types[] = { "__type", "code", "Code" };
        static const char *const msgs[] = { "message", "Message" };
        for (size_t i = 0; i < 3 && !type[0]; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, types[i]);
            if (cJSON_IsString(v))
                excerpt(type, sizeof type, v->valuestring, strlen(v->valuestring));
        }
        for (size_t i = 0; i < 2 && !msg[0]; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, msgs[i]);
            if (cJSON_IsString(v))
                excerpt(msg, sizeof msg, v->valuestring, strlen(v->valuestring));
        }
        cJSON_Delete(j);
    } else if (r->body_len && r->body[0] == '<') {
        creds_xml_text(r->body, r->body_len, "Code", type, sizeof type);
        creds_xml_text(r->body, r->body_len, "Message", msg, sizeof msg);
    }
    if (!type[0])
        snprintf(type, sizeof type, "%s", r->error_type);
    const char *hash = strchr(type, '#'); /* "com.amazonaws...#NotAuthorizedException" */
    const char *t = hash ? hash + 1 : type;
    snprintf(out, len, "HTTP %ld%s%s%s%s", r->status, *t ? " " : "", t, *msg ? ": " : "", msg);
}

static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

int creds_from_json(const char *body, size_t len, int64_t now_ms, int64_t date_ms, int flags,
                    const char *what, evrec_credentials_t *out, char *why, size_t whylen)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (!j) {
        snprintf(why, whylen, "%s: the answer is not JSON", what);
        return EVREC_E_RESPONSE;
    }
    int rc = EVREC_E_RESPONSE;
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(j, "Version");
    const char *id = json_str(j, "AccessKeyId"), *secret = json_str(j, "SecretAccessKey");
    const char *token = json_str(j, "Token");
    if (!token)
        token = json_str(j, "SessionToken");
    const char *exp = json_str(j, "Expiration");
    const char *code = json_str(j, "Code"); /* IMDS: "Success" */
    int64_t exp_ms = 0;
    if ((flags & CREDS_JSON_VERSION_1) && (!cJSON_IsNumber(version) || version->valuedouble != 1))
        snprintf(why, whylen, "%s: the answer's Version is not 1", what);
    else if (code && strcmp(code, "Success") != 0)
        snprintf(why, whylen, "%s: the answer's Code is '%.64s'", what, code);
    else if (!id || !secret)
        snprintf(why, whylen, "%s: the answer lacks AccessKeyId or SecretAccessKey", what);
    else if ((flags & CREDS_JSON_NEED_EXPIRY) && !exp)
        snprintf(why, whylen, "%s: the answer lacks Expiration", what);
    else if (exp && event_parse_iso8601(exp, &exp_ms) != EVREC_OK)
        snprintf(why, whylen, "%s: the answer's Expiration is not an ISO 8601 time", what);
    else if (exp && exp_ms <= (date_ms > 0 ? date_ms : now_ms))
        snprintf(why, whylen, "%s: the answer's credentials have already expired", what);
    else if (creds_fill(out, id, secret, token,
                        exp ? creds_local_expiry(now_ms, exp_ms, date_ms) : 0) != 0)
        snprintf(why, whylen, "%s: the answer holds an over-long key or token", what);
    else
        rc = EVREC_OK;
    /* the parsed tree holds copies of the secrets */
    cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "SecretAccessKey");
    if (cJSON_IsString(s))
        mbedtls_platform_zeroize(s->valuestring, strlen(s->valuestring));
    s = cJSON_GetObjectItemCaseSensitive(j, token == json_str(j, "Token") ? "Token"
                                                                          : "SessionToken");
    if (cJSON_IsString(s))
        mbedtls_platform_zeroize(s->valuestring, strlen(s->valuestring));
    cJSON_Delete(j);
    return rc;
}

/* One request; on a transport failure the reason is written and the code returned. On an
 * answer that is not 200, the service's reason and a code. r is left for the caller on 0. */
static int call(transport_t *tx, const char *method, const char *url,
                const char *const *headers, const char *body, const char *what,
                transport_response_t *r, char *why, size_t whylen)
{
    char err[384] = "";
    int rc = transport_send(tx, method, url, headers, body, body ? strlen(body) : 0, r, err,
                            sizeof err);
    if (rc != EVREC_OK) {
        snprintf(why, whylen, "%s failed: %s", what, err[0] ? err : evrec_strerror(rc));
        return rc;
    }
    if (r->status != 200) {
        char reason[320];
        creds_http_reason(r, reason, sizeof reason);
        snprintf(why, whylen, "%s: %s", what, reason);
        rc = creds_status_code(r->status);
        mbedtls_platform_zeroize(r->body, r->body_len);
        transport_response_clear(r);
        return rc;
    }
    return EVREC_OK;
}

static void clear_secret_response(transport_response_t *r)
{
    mbedtls_platform_zeroize(r->body, r->body_len);
    transport_response_clear(r);
}

/* A token from a file (Kubernetes projected tokens are rotated: read it every time),
 * whitespace trimmed. */
static int read_token_file(const char *path, char **out)
{
    size_t len = 0;
    int rc = port_read_file(path, out, &len, MAX_TOKEN_FILE);
    if (rc != 0)
        return rc;
    while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r' ||
                       (*out)[len - 1] == ' ' || (*out)[len - 1] == '\t'))
        (*out)[--len] = '\0';
    return 0;
}

/* -- container credentials ------------------------------------------------------------------ */

/* The hosts a plain-http FULL_URI may name, as the SDKs allow: the loopback (Greengrass'
 * token exchange service, a sidecar), the ECS and EKS link-local addresses. */
static int allowed_http_host(const char *url)
{
    const char *h = url + 7; /* after "http://" */
    static const char *const hosts[] = { "127.", "localhost", "[::1]", "169.254.170.2",
                                         "169.254.170.23", "[fd00:ec2::23]" };
    size_t hl = strcspn(h, ":/?#");
    if (h[0] == '[')
        hl = strcspn(h, "]") + 1;
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        size_t n = strlen(hosts[i]);
        if (hosts[i][n - 1] == '.') {
            /* 127.0.0.0/8 as an address: "127.evil.example" is a name, not the loopback */
            if (hl > n && strncmp(h, hosts[i], n) == 0 && strspn(h, "0123456789.") == hl)
                return 1;
        } else if (hl == n && strncmp(h, hosts[i], n) == 0) {
            return 1;
        }
    }
    return 0;
}

int creds_container(transport_t **tx, const creds_config_t *cfg, int64_t now_ms,
                    evrec_credentials_t *out, char *why, size_t whylen)
{
    const char *rel = port_getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = port_getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!set(rel) && !set(full))
        return EVREC_E_NOT_FOUND;
    char url[1024];
    if (set(rel)) {
        const char *host = set(cfg->container_endpoint) ? cfg->container_endpoint
                                                         : CONTAINER_HOST;
        int n = snprintf(url, sizeof url, "%s%s%s", host, rel[0] == '/' ? "" : "/", rel);
        if (n < 0 || (size_t)n >= sizeof url || !no_control_chars(rel)) {
            snprintf(why, whylen, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is too long or "
                                  "holds control characters");
            return EVREC_E_CONFIG;
        }
    } else {
        int https = strncmp(full, "https://", 8) == 0, http = strncmp(full, "http://", 7) == 0;
        if (strlen(full) >= sizeof url || !no_control_chars(full) || (!https && !http)) {
            snprintf(why, whylen, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not an http(s) URL");
            return EVREC_E_CONFIG;
        }
        if (http && !allowed_http_host(full)) {
            snprintf(why, whylen, "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is allowed "
                                  "only to the loopback or the ECS/EKS addresses");
            return EVREC_E_CONFIG;
        }
        snprintf(url, sizeof url, "%s", full);
    }
    /* The authorization token: the file (rotated by EKS) wins over the variable. */
    const char *token_file = port_getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *token_env = port_getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    char *token = NULL;
    if (set(token_file)) {
        int rc = read_token_file(token_file, &token);
        if (rc != 0) {
            snprintf(why, whylen, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s (%s)",
                     token_file, rc == -ENOENT ? "no such file" : "permission or I/O error");
            return EVREC_E_CREDENTIALS;
        }
    } else if (set(token_env)) {
        token = port_strdup(token_env);
        if (!token)
            return EVREC_E_NOMEM;
    }
    char auth[MAX_TOKEN_FILE + 32];
    const char *headers[3] = { "Accept: application/json", NULL, NULL };
    if (token) {
        if (!no_control_chars(token)) {
            snprintf(why, whylen, "the container authorization token holds control characters");
            mbedtls_platform_zeroize(token, strlen(token));
            port_free(token);
            return EVREC_E_CONFIG;
        }
        snprintf(auth, sizeof auth, "Authorization: %s", token);
        headers[1] = auth;
        mbedtls_platform_zeroize(token, strlen(token));
        port_free(token);
    }
    int rc = creds_transport(tx, cfg, CONTAINER_TIMEOUT_MS);
    if (rc != EVREC_OK) {
        snprintf(why, whylen, "cannot set up the HTTP client (%s)", evrec_strerror(rc));
        mbedtls_platform_zeroize(auth, sizeof auth);
        return rc;
    }
    transport_response_t r;
    rc = call(*tx, "GET", url, headers, NULL, "GET credentials", &r, why, whylen);
    mbedtls_platform_zeroize(auth, sizeof auth);
    if (rc != EVREC_OK)
        return rc;
    rc = creds_from_json(r.body, r.body_len, now_ms, transport_date_ms(&r),
                         CREDS_JSON_NEED_EXPIRY, "GET credentials", out, why, whylen);
    clear_secret_response(&r);
    return rc;
}

/* -- EC2 instance metadata (IMDSv2) ---------------------------------------------------------- */

static int imds_disabled(void)
{
    const char *d = port_getenv("AWS_EC2_METADATA_DISABLED");
    if (!set(d) || strlen(d) != 4)
        return 0;
    const char *t = "true";
    for (int i = 0; i < 4; i++)
        if ((d[i] | 0x20) != t[i])
            return 0;
    return 1;
}

static int imds_base(char *out, size_t len)
{
    const char *e = port_getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *b = set(e) ? e : IMDS_HOST;
    size_t n = strlen(b);
    while (n > 0 && b[n - 1] == '/')
        n--;
    if (n >= len || !no_control_chars(b) ||
        (strncmp(b, "http://", 7) != 0 && strncmp(b, "https://", 8) != 0))
        return -1;
    snprintf(out, len, "%.*s", (int)n, b);
    return 0;
}

/* PUT /latest/api/token: the session token every IMDSv2 read carries. */
static int imds_token(transport_t *tx, const char *base, char *hdr, size_t hdrlen, char *why,
                      size_t whylen)
{
    char url[600];
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    const char *const headers[] = { "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL_S,
                                     NULL };
    transport_response_t r;
    int rc = call(tx, "PUT", url, headers, "", "PUT /latest/api/token (IMDSv2)", &r, why,
                  whylen);
    if (rc != EVREC_OK)
        return rc;
    size_t n = r.body_len;
    while (n > 0 && (r.body[n - 1] == '\n' || r.body[n - 1] == '\r'))
        n--;
    r.body[n] = '\0';
    if (n == 0 || n + 40 >= hdrlen || !no_control_chars(r.body)) {
        snprintf(why, whylen, "PUT /latest/api/token: no usable token in the answer");
        rc = EVREC_E_RESPONSE;
    } else {
        snprintf(hdr, hdrlen, "X-aws-ec2-metadata-token: %s", r.body);
    }
    clear_secret_response(&r);
    return rc;
}

static int imds_get(transport_t *tx, const char *base, const char *token_hdr, const char *path,
                    transport_response_t *r, char *why, size_t whylen)
{
    char url[800], what[320];
    snprintf(url, sizeof url, "%s%s", base, path);
    snprintf(what, sizeof what, "GET %s", path);
    const char *const headers[] = { token_hdr, NULL };
    return call(tx, "GET", url, headers, NULL, what, r, why, whylen);
}

#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"

int creds_imds(transport_t **tx, const creds_config_t *cfg, int64_t now_ms,
               evrec_credentials_t *out, char *why, size_t whylen)
{
    if (imds_disabled())
        return EVREC_E_NOT_FOUND;
    char base[512];
    if (imds_base(base, sizeof base) != 0) {
        snprintf(why, whylen, "AWS_EC2_METADATA_SERVICE_ENDPOINT is not an http(s) URL");
        return EVREC_E_CONFIG;
    }
    int rc = creds_transport(tx, cfg, IMDS_TIMEOUT_MS);
    if (rc != EVREC_OK) {
        snprintf(why, whylen, "cannot set up the HTTP client (%s)", evrec_strerror(rc));
        return rc;
    }
    char token[512];
    rc = imds_token(*tx, base, token, sizeof token, why, whylen);
    if (rc != EVREC_OK)
        return rc;
    transport_response_t r;
    rc = imds_get(*tx, base, token, IMDS_CREDS_PATH, &r, why, whylen);
    if (rc != EVREC_OK) {
        if (strstr(why, "HTTP 404"))
            snprintf(why, whylen, "the instance has no IAM role (instance profile)");
        mbedtls_platform_zeroize(token, sizeof token);
        return rc;
    }
    char role[256], path[400];
    size_t rl = strcspn(r.body, "\r\n");
    if (rl == 0 || rl >= sizeof role) {
        snprintf(why, whylen, "GET " IMDS_CREDS_PATH ": no role name in the answer");
        transport_response_clear(&r);
        mbedtls_platform_zeroize(token, sizeof token);
        return EVREC_E_RESPONSE;
    }
    snprintf(role, sizeof role, "%.*s", (int)rl, r.body);
    transport_response_clear(&r);
    if (!no_control_chars(role) || strchr(role, '/') || strchr(role, '?')) {
        snprintf(why, whylen, "GET " IMDS_CREDS_PATH ": the role name is not a name");
        mbedtls_platform_zeroize(token, sizeof token);
        return EVREC_E_RESPONSE;
    }
    snprintf(path, sizeof path, IMDS_CREDS_PATH "%s", role);
    rc = imds_get(*tx, base, token, path, &r, why, whylen);
    mbedtls_platform_zeroize(token, sizeof token);
    if (rc != EVREC_OK)
        return rc;
    char what[320];
    snprintf(what, sizeof what, "role '%s'", role);
    rc = creds_from_json(r.body, r.body_len, now_ms, transport_date_ms(&r),
                         CREDS_JSON_NEED_EXPIRY, what, out, why, whylen);
    clear_secret_response(&r);
    return rc;
}

int creds_imds_region(const creds_config_t *cfg, char *out, size_t outlen)
{
    if (imds_disabled())
        return EVREC_E_NOT_FOUND;
    char base[512], why[256], token[512];
    if (imds_base(base, sizeof base) != 0)
        return EVREC_E_CONFIG;
    transport_t *tx = NULL;
    int rc = creds_transport(&tx, cfg, IMDS_TIMEOUT_MS);
    if (rc == EVREC_OK)
        rc = imds_token(tx, base, token, sizeof token, why, sizeof why);
    transport_response_t r;
    if (rc == EVREC_OK) {
        rc = imds_get(tx, base, token, "/latest/meta-data/placement/region", &r, why,
                      sizeof why);
        mbedtls_platform_zeroize(token, sizeof token);
    }
    if (rc == EVREC_OK) {
        size_t n = strcspn(r.body, "\r\n \t");
        if (n == 0 || n >= outlen)
            rc = EVREC_E_RESPONSE;
        else
            snprintf(out, outlen, "%.*s", (int)n, r.body);
        transport_response_clear(&r);
    }
    transport_free(tx);
    return rc;
}

/* -- IAM Identity Center (SSO) ---------------------------------------------------------------- */

/* ~/.aws/sso/cache/<sha1 hex of the session name or start URL>.json, as the AWS CLI names it. */
static int sso_cache_path(const char *key, char *out, size_t len)
{
    const char *home = port_home_dir();
    if (!set(home))
        return -1;
    unsigned char d[20];
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    if (mbedtls_sha1((const unsigned char *)key, strlen(key), d) != 0)
        return -1;
#else
    if (mbedtls_sha1_ret((const unsigned char *)key, strlen(key), d) != 0)
        return -1;
#endif
    char hex[41];
    for (int i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    int n = snprintf(out, len, "%s/.aws/sso/cache/%s.json", home, hex);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* The cached access token, if there and not expired. */
static int sso_token(const creds_sso_t *sso, int64_t now_ms, char **token, char *why,
                     size_t whylen)
{
    char path[600];
    if (sso_cache_path(sso->cache_key, path, sizeof path) != 0) {
        snprintf(why, whylen, "no home directory for the SSO token cache");
        return EVREC_E_CREDENTIALS;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = port_read_file(path, &text, &len, 1024 * 1024);
    if (rc != 0) {
        snprintf(why, whylen, "no cached SSO token (%s): run 'aws sso login'%s",
                 rc == -ENOENT ? "no such file" : "cannot read it",
                 rc == -ENOENT ? "" : " or check the file's permissions");
        return EVREC_E_CREDENTIALS;
    }
    cJSON *j = cJSON_ParseWithLength(text, len);
    mbedtls_platform_zeroize(text, len);
    port_free(text);
    const char *tok = json_str(j, "accessToken"), *exp = json_str(j, "expiresAt");
    int64_t exp_ms = 0;
    rc = EVREC_E_CREDENTIALS;
    if (!tok || !exp)
        snprintf(why, whylen, "the cached SSO token %s lacks accessToken or expiresAt", path);
    else if (event_parse_iso8601(exp, &exp_ms) != EVREC_OK)
        snprintf(why, whylen, "the cached SSO token's expiresAt is not an ISO 8601 time");
    else if (exp_ms <= now_ms)
        snprintf(why, whylen, "the SSO session has expired: run 'aws sso login'");
    else if (!no_control_chars(tok) || !(*token = port_strdup(tok)))
        snprintf(why, whylen, "the cached SSO token is not usable");
    else
        rc = EVREC_OK;
    cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "accessToken");
    if (cJSON_IsString(t))
        mbedtls_platform_zeroize(t->valuestring, strlen(t->valuestring));
    t = cJSON_GetObjectItemCaseSensitive(j, "refreshToken");
    if (cJSON_IsString(t))
        mbedtls_platform_zeroize(t->valuestring, strlen(t->valuestring));
    cJSON_Delete(j);
    return rc;
}

int creds_sso(transport_t **tx, const creds_config_t *cfg, const creds_sso_t *sso,
              int64_t now_ms, evrec_credentials_t *out, char *why, size_t whylen)
{
    char *token = NULL;
    int rc = sso_token(sso, now_ms, &token, why, whylen);
    if (rc != EVREC_OK)
        return rc;
    char account[128], role[256], url[1200], hdr[8192];
    int n = -1;
    if (util_percent_encode(sso->account_id, account, sizeof account) == 0 &&
        util_percent_encode(sso->role_name, role, sizeof role) == 0) {
        if (set(sso->endpoint_url))
            n = snprintf(url, sizeof url, "%s/federation/credentials?account_id=%s&role_name=%s",
                         sso->endpoint_url, account, role);
        else
            n = snprintf(url, sizeof url, "https://portal.sso.%s.amazonaws.com/federation/"
                         "credentials?account_id=%s&role_name=%s", sso->region, account, role);
    }
    int hn = snprintf(hdr, sizeof hdr, "x-amz-sso_bearer_token: %s", token);
    mbedtls_platform_zeroize(token, strlen(token));
    port_free(token);
    if (n < 0 || (size_t)n >= sizeof url || hn < 0 || (size_t)hn >= sizeof hdr) {
        snprintf(why, whylen, "sso_account_id, sso_role_name or the token is too long");
        mbedtls_platform_zeroize(hdr, sizeof hdr);
        return EVREC_E_CONFIG;
    }
    rc = creds_transport(tx, cfg, 0);
    if (rc != EVREC_OK) {
        snprintf(why, whylen, "cannot set up the HTTPS client (%s)", evrec_strerror(rc));
        mbedtls_platform_zeroize(hdr, sizeof hdr);
        return rc;
    }
    const char *const headers[] = { hdr, "Accept: application/json", NULL };
    transport_response_t r;
    rc = call(*tx, "GET", url, headers, NULL, "GetRoleCredentials", &r, why, whylen);
    mbedtls_platform_zeroize(hdr, sizeof hdr);
    if (rc != EVREC_OK)
        return rc;
    cJSON *j = cJSON_ParseWithLength(r.body, r.body_len);
    int64_t date_ms = transport_date_ms(&r);
    clear_secret_response(&r);
    const cJSON *rcj = cJSON_GetObjectItemCaseSensitive(j, "roleCredentials");
    const char *id = json_str(rcj, "accessKeyId"), *secret = json_str(rcj, "secretAccessKey");
    const char *tok = json_str(rcj, "sessionToken");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(rcj, "expiration");
    rc = EVREC_E_RESPONSE;
    int64_t exp_ms = cJSON_IsNumber(exp) ? (int64_t)exp->valuedouble : 0;
    if (!id || !secret || !tok || !cJSON_IsNumber(exp))
        snprintf(why, whylen, "GetRoleCredentials: the answer lacks roleCredentials."
                              "accessKeyId, secretAccessKey, sessionToken or expiration");
    else if (creds_local_expiry(now_ms, exp_ms, date_ms) <= now_ms)
        snprintf(why, whylen, "GetRoleCredentials: the credentials have already expired");
    else if (creds_fill(out, id, secret, tok, creds_local_expiry(now_ms, exp_ms, date_ms)))
        snprintf(why, whylen, "GetRoleCredentials: an over-long key or token");
    else
        rc = EVREC_OK;
    static const char *const secrets[] = { "secretAccessKey", "sessionToken" };
    for (size_t i = 0; i < 2; i++) {
        cJSON *s = cJSON_GetObjectItemCaseSensitive((cJSON *)rcj, secrets[i]);
        if (cJSON_IsString(s))
            mbedtls_platform_zeroize(s->valuestring, strlen(s->valuestring));
    }
    cJSON_Delete(j);
    return rc;
}
