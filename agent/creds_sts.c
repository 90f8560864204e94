/*
 * AWS STS, Query protocol (form-encoded POST, XML answer): AssumeRole signed with SigV4 by
 * the source identity's credentials, and AssumeRoleWithWebIdentity, unsigned, with a token
 * read from a file each time (Kubernetes and others rotate it in place).
 *
 * The XML is read minimally: the text of a named element inside <Credentials> (or <Error>),
 * entities decoded. STS's answers are small and flat; nothing else in them is needed.
 */
#include "creds_internal.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "event.h"
#include "port.h"
#include "util_str.h"
#include "sigv4.h"

#define STS_VERSION "2011-06-15"
#define FORM_TYPE "application/x-www-form-urlencoded; charset=utf-8"
#define MAX_WEB_TOKEN (20 * 1024) /* STS takes up to 20,000 characters */

static int set(const char *s)
{
    return s && *s;
}

/* -- XML ---------------------------------------------------------------------------------- */

/* The start of "<name>" or "<name ...>" in s[0..n), or NULL; *content after its '>'. */
static const char *find_open(const char *s, size_t n, const char *name, const char **content)
{
    size_t nl = strlen(name);
    for (const char *p = s; p + nl + 2 <= s + n; p++) {
        if (*p != '<' || memcmp(p + 1, name, nl) != 0)
            continue;
        char after = p[1 + nl];
        if (after != '>' && after != ' ' && after != '\t' && after != '\n' && after != '\r' &&
            after != '/')
            continue;
        const char *gt = memchr(p, '>', (size_t)(s + n - p));
        if (!gt)
            return NULL;
        if (gt[-1] == '/') { /* <name/>: empty */
            *content = gt + 1;
            return p;
        }
        *content = gt + 1;
        return p;
    }
    return NULL;
}

static const char *find_close(const char *s, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = s; p + nl + 3 <= s + n; p++)
        if (p[0] == '<' && p[1] == '/' && memcmp(p + 2, name, nl) == 0 && p[2 + nl] == '>')
            return p;
    return NULL;
}

/* Decode the five XML entities and numeric ASCII references; -1 on overflow. */
static int xml_decode(const char *s, size_t n, char *out, size_t outlen)
{
    static const struct { const char *ent; char ch; } ents[] = {
        { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
    };
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        char ch = s[i];
        size_t used = 1;
        if (ch == '&') {
            int done = 0;
            for (size_t e = 0; e < sizeof ents / sizeof ents[0] && !done; e++) {
                size_t el = strlen(ents[e].ent);
                if (i + el <= n && memcmp(s + i, ents[e].ent, el) == 0) {
                    ch = ents[e].ch;
                    used = el;
                    done = 1;
                }
            }
            if (!done && i + 3 < n && s[i + 1] == '#') {
                unsigned v = 0;
                size_t j = i + 2;
                int hex = s[j] == 'x';
                j += (size_t)hex;
                for (; j < n && s[j] != ';' && j - i < 10; j++) {
                    char d = s[j];
                    int dv = d >= '0' && d <= '9' ? d - '0'
                             : hex && (d | 0x20) >= 'a' && (d | 0x20) <= 'f' ? (d | 0x20) - 'a' + 10
                                                                              : -1;
                    if (dv < 0)
                        break;
                    v = v * (hex ? 16u : 10u) + (unsigned)dv;
                }
                if (j < n && s[j] == ';' && v > 0 && v < 0x80) {
                    ch = (char)v;
                    used = j - i + 1;
                }
            }
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = ch;
        i += used;
    }
    out[o] = '\0';
    return 0;
}

int creds_xml_text(const char *xml, size_t len, const char *name, char *out, size_t outlen)
{
    if (!xml || !name || !out || outlen == 0)
        return -1;
    out[0] = '\0';
    const char *content;
    const char *open = find_open(xml, len, name, &content);
    if (!open)
        return -1;
    if (content[-2] == '/')
        return 0; /* <name/> */
    const char *close = find_close(content, (size_t)(xml + len - content), name);
    if (!close)
        return -1;
    const char *s = content, *e = close;
    while (s < e && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
        e--;
    return xml_decode(s, (size_t)(e - s), out, outlen);
}

/* The credentials of an AssumeRole* answer (inside <Credentials>). */
static int parse_credentials(const char *body, size_t len, int64_t now_ms, int64_t date_ms,
                             const char *op, evrec_credentials_t *out, char *why, size_t whylen)
{
    const char *content;
    const char *open = find_open(body, len, "Credentials", &content);
    const char *close = open ? find_close(content, (size_t)(body + len - content), "Credentials")
                             : NULL;
    if (!close) {
        snprintf(why, whylen, "%s: the answer has no <Credentials>", op);
        return EVREC_E_RESPONSE;
    }
    size_t n = (size_t)(close - content);
    char id[128], secret[128], exp[64];
    char *token = port_malloc(sizeof out->session_token);
    if (!token)
        return EVREC_E_NOMEM;
    int64_t exp_ms = 0;
    int rc = EVREC_E_RESPONSE;
    if (creds_xml_text(content, n, "AccessKeyId", id, sizeof id) != 0 ||
        creds_xml_text(content, n, "SecretAccessKey", secret, sizeof secret) != 0 ||
        creds_xml_text(content, n, "SessionToken", token, sizeof out->session_token) != 0 ||
        creds_xml_text(content, n, "Expiration", exp, sizeof exp) != 0 || !id[0] || !secret[0])
        snprintf(why, whylen, "%s: the answer lacks AccessKeyId, SecretAccessKey, SessionToken "
                              "or Expiration (or one is over-long)", op);
    else if (event_parse_iso8601(exp, &exp_ms) != EVREC_OK)
        snprintf(why, whylen, "%s: the answer's Expiration is not an ISO 8601 time", op);
    else if (exp_ms <= (date_ms > 0 ? date_ms : now_ms))
        snprintf(why, whylen, "%s: the answer's credentials have already expired", op);
    else if (creds_fill(out, id, secret, token, creds_local_expiry(now_ms, exp_ms, date_ms)))
        snprintf(why, whylen, "%s: an over-long key or token", op);
    else
        rc = EVREC_OK;
    mbedtls_platform_zeroize(secret, sizeof secret);
    mbedtls_platform_zeroize(token, sizeof out->session_token);
    port_free(token);
    return rc;
}

/* -- requests ----------------------------------------------------------------------------- */

/* Append "&Name=value" (value percent-encoded) to the body; -1 when it does not fit. */
static int form_add(char *body, size_t cap, const char *name, const char *value)
{
    size_t l = strlen(body);
    int n = snprintf(body + l, cap - l, "%s%s=", l ? "&" : "", name);
    if (n < 0 || (size_t)n >= cap - l)
        return -1;
    return util_percent_encode(value, body + l + (size_t)n, cap - l - (size_t)n);
}

static int sts_url(const creds_role_t *role, char *url, size_t len)
{
    const char *region = set(role->region) ? role->region : "us-east-1";
    int n;
    if (set(role->endpoint_url)) {
        size_t el = strlen(role->endpoint_url);
        while (el > 0 && role->endpoint_url[el - 1] == '/')
            el--;
        n = snprintf(url, len, "%.*s/", (int)el, role->endpoint_url);
    } else {
        n = snprintf(url, len, "https://sts.%s.amazonaws.com%s/", region,
                     strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
    }
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int role_body(const creds_role_t *role, const char *action, int64_t now_ms, char *body,
                     size_t cap, char *why, size_t whylen)
{
    char session[80];
    if (!set(role->session_name))
        snprintf(session, sizeof session, "evrec-session-%lld", (long long)(now_ms / 1000));
    body[0] = '\0';
    if (set(role->duration_s) && strspn(role->duration_s, "0123456789") != strlen(role->duration_s)) {
        snprintf(why, whylen, "duration_seconds '%.32s' is not a number of seconds",
                 role->duration_s);
        return EVREC_E_CONFIG;
    }
    if (form_add(body, cap, "Action", action) || form_add(body, cap, "Version", STS_VERSION) ||
        form_add(body, cap, "RoleArn", role->role_arn) ||
        form_add(body, cap, "RoleSessionName",
                 set(role->session_name) ? role->session_name : session) ||
        (set(role->duration_s) && form_add(body, cap, "DurationSeconds", role->duration_s))) {
        snprintf(why, whylen, "role_arn or role_session_name is too long");
        return EVREC_E_CONFIG;
    }
    return EVREC_OK;
}

/* POST the form; parse the credentials of a 200. */
static int sts_post(transport_t **tx, const creds_config_t *cfg, const char *url,
                    const char *const *headers, const char *body, const char *op, int64_t now_ms,
                    evrec_credentials_t *out, char *why, size_t whylen)
{
    int rc = creds_transport(tx, cfg, 0);
    if (rc != EVREC_OK) {
        snprintf(why, whylen, "cannot set up the HTTPS client (%s)", evrec_strerror(rc));
        return rc;
    }
    transport_response_t r;
    char err[384] = "";
    rc = transport_send(*tx, "POST", url, headers, body, strlen(body), &r, err, sizeof err);
    if (rc != EVREC_OK) {
        snprintf(why, whylen, "%s failed: %s", op, err[0] ? err : evrec_strerror(rc));
        return rc;
    }
    if (r.status != 200) {
        char reason[320];
        creds_http_reason(&r, reason, sizeof reason);
        snprintf(why, whylen, "%s: %s", op, reason);
        rc = creds_status_code(r.status);
        transport_response_clear(&r);
        return rc;
    }
    rc = parse_credentials(r.body, r.body_len, now_ms, transport_date_ms(&r), op, out, why, whylen);
    mbedtls_platform_zeroize(r.body, r.body_len);
    transport_response_clear(&r);
    return rc;
}

int creds_sts_assume_role(transport_t **tx, const creds_config_t *cfg, const creds_role_t *role,
                          const evrec_credentials_t *source, int64_t now_ms,
                          evrec_credentials_t *out, char *why, size_t whylen)
{
    char body[4096], url[1024], host[512];
    int rc = role_body(role, "AssumeRole", now_ms, body, sizeof body, why, whylen);
    if (rc != EVREC_OK)
        return rc;
    if (set(role->external_id) && form_add(body, sizeof body, "ExternalId", role->external_id)) {
        snprintf(why, whylen, "external_id is too long");
        return EVREC_E_CONFIG;
    }
    if (sts_url(role, url, sizeof url) != 0 || transport_url_host(url, host, sizeof host) != 0) {
        snprintf(why, whylen, "the STS endpoint URL is too long or not a URL");
        return EVREC_E_CONFIG;
    }
    const char *scheme_end = strstr(url, "://");
    const char *path = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
    const sigv4_header_t hs[] = { { "Host", host }, { "Content-Type", FORM_TYPE } };
    sigv4_request_t req = { .method = "POST", .path = path ? path : "/", .headers = hs,
                            .nheaders = 2, .body = body, .body_len = strlen(body) };
    sigv4_params_t p = { .region = set(role->region) ? role->region : "us-east-1",
                         .service = "sts", .unix_ms = now_ms };
    const char *token = source->session_token[0] ? source->session_token : NULL;
    sigv4_credentials_t sc = { source->access_key_id, source->secret_access_key, token };
    sigv4_signature_t sig;
    rc = sigv4_sign(NULL, &req, &p, &sc, &sig);
    if (rc != EVREC_OK) {
        snprintf(why, whylen, "AssumeRole: signing failed (%s)", evrec_strerror(rc));
        return rc;
    }
    char date_hdr[40], auth_hdr[1100];
    char *token_hdr = NULL;
    snprintf(date_hdr, sizeof date_hdr, "X-Amz-Date: %s", sig.amz_date);
    snprintf(auth_hdr, sizeof auth_hdr, "Authorization: %s", sig.authorization);
    if (token) {
        size_t tl = strlen(token) + 32;
        token_hdr = port_malloc(tl);
        if (!token_hdr)
            return EVREC_E_NOMEM;
        snprintf(token_hdr, tl, "X-Amz-Security-Token: %s", token);
    }
    const char *const headers[] = { "Content-Type: " FORM_TYPE, "Accept: text/xml", date_hdr,
                                    auth_hdr, token_hdr, NULL };
    rc = sts_post(tx, cfg, url, headers, body, "AssumeRole", now_ms, out, why, whylen);
    if (token_hdr) {
        mbedtls_platform_zeroize(token_hdr, strlen(token_hdr));
        port_free(token_hdr);
    }
    mbedtls_platform_zeroize(&sig, sizeof sig);
    mbedtls_platform_zeroize(auth_hdr, sizeof auth_hdr);
    return rc;
}

int creds_sts_web_identity(transport_t **tx, const creds_config_t *cfg, const creds_role_t *role,
                           const char *token_file, int64_t now_ms, evrec_credentials_t *out,
                           char *why, size_t whylen)
{
    char *token = NULL;
    size_t tl = 0;
    int rc = port_read_file(token_file, &token, &tl, MAX_WEB_TOKEN);
    if (rc != 0) {
        snprintf(why, whylen, "cannot read the web identity token file %s (%s)", token_file,
                 rc == -ENOENT ? "no such file" : rc == -EFBIG ? "larger than 20 KiB"
                                                              : "permission or I/O error");
        return EVREC_E_CREDENTIALS;
    }
    while (tl > 0 && (token[tl - 1] == '\n' || token[tl - 1] == '\r' || token[tl - 1] == ' '))
        token[--tl] = '\0';
    size_t cap = 4096 + 3 * tl;
    char *body = port_malloc(cap);
    char url[1024];
    rc = EVREC_E_NOMEM;
    if (body) {
        rc = role_body(role, "AssumeRoleWithWebIdentity", now_ms, body, cap, why, whylen);
        if (rc == EVREC_OK && (tl == 0 || form_add(body, cap, "WebIdentityToken", token))) {
            snprintf(why, whylen, "the web identity token file %s is empty", token_file);
            rc = EVREC_E_CREDENTIALS;
        }
        if (rc == EVREC_OK && sts_url(role, url, sizeof url) != 0) {
            snprintf(why, whylen, "the STS endpoint URL is too long");
            rc = EVREC_E_CONFIG;
        }
        if (rc == EVREC_OK) {
            const char *const headers[] = { "Content-Type: " FORM_TYPE, "Accept: text/xml",
                                            NULL };
            rc = sts_post(tx, cfg, url, headers, body, "AssumeRoleWithWebIdentity", now_ms, out,
                          why, whylen);
        }
        mbedtls_platform_zeroize(body, cap);
        port_free(body);
    }
    mbedtls_platform_zeroize(token, tl);
    port_free(token);
    return rc;
}
