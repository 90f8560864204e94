/*
 * AWS Signature Version 4 (header signing).
 *
 * The canonical request follows the AWS specification and botocore's signer, which is what
 * the services are tested against:
 *   - the path is normalised (dot segments removed, repeated slashes collapsed, a trailing
 *     slash kept) and then URI-encoded byte by byte, which encodes an already-encoded path a
 *     second time ("double encoding"); S3-style signing (no_path_normalize) does neither;
 *   - query parameters are decoded, re-encoded with the unreserved set and sorted by name,
 *     then value;
 *   - header names are lower-cased, values trimmed with every run of whitespace (including
 *     folded continuation lines) turned into one space, repeated headers joined with ','.
 * The port's SHA-256 (mbedTLS, or a faster backend the build adds) hashes the body where it
 * lies, never copied; mbedTLS does HMAC.
 */
#include "sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "evrec.h"
#include "port.h"
#include "util_buf.h"
#include "util_time.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* -- a growing string ----------------------------------------------------------------------- */

typedef util_buf_t sb_t; /* always with .wipe set: the canonical request holds the token */
#define SB_INIT { .wipe = 1 }

/* Free a string that may hold a secret (the canonical request holds the session token). */
static void wipe_free(char *s)
{
    if (s) {
        mbedtls_platform_zeroize(s, strlen(s));
        port_free(s);
    }
}

/* Hand the built string to *out, or free it and report the allocation failure. */
static int sb_finish(sb_t *b, char **out)
{
    if (b->oom || !b->data) {
        util_buf_free(b);
        *out = NULL;
        return EVREC_E_NOMEM;
    }
    *out = b->data;
    return EVREC_OK;
}

/* -- encoding ------------------------------------------------------------------------------ */

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* URI-encode n bytes per SigV4: unreserved characters stay, '/' stays if keep_slash, and
 * with keep_escapes an existing %XX escape is copied as it is (S3-style paths). */
static void uri_encode(sb_t *b, const char *s, size_t n, int keep_slash, int keep_escapes)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            util_buf_putc(b, (char)c);
        } else if (keep_escapes && c == '%' && i + 2 < n && hex_value(s[i + 1]) >= 0 &&
                   hex_value(s[i + 2]) >= 0) {
            util_buf_putn(b, s + i, 3);
            i += 2;
        } else {
            char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
            util_buf_putn(b, esc, 3);
        }
    }
}

/* Decode %XX escapes (an invalid escape is kept literally). Returns a new string. */
static char *percent_decode(const char *s, size_t n)
{
    char *d = port_malloc(n + 1);
    if (!d)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 &&
            (lo = hex_value(s[i + 2])) >= 0) {
            d[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    return d;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t digest[32];
    port_sha256(len > 0 ? data : "", len, digest); /* the port's backend (port/sha256.c) */
    to_hex(digest, sizeof digest, out);
}

static int hmac(const unsigned char *key, size_t keylen, const void *msg, size_t len,
                unsigned char out[32])
{
    return port_hmac_sha256(key, keylen, msg, len, out) == 0 ? EVREC_OK : EVREC_E_INVALID;
}

/* -- time --------------------------------------------------------------------------------- */

/* "yyyymmddThhmmssZ" for a time in years 0..9999, else EVREC_E_INVALID. */
static int amz_date(int64_t unix_ms, char out[17])
{
    if (unix_ms < 0 || unix_ms > 253402300799999LL)
        return EVREC_E_INVALID;
    int64_t secs = unix_ms / 1000;
    int64_t days = secs / 86400;
    int64_t rem = secs % 86400;
    int64_t y;
    unsigned m, d;
    util_civil_from_days(days, &y, &m, &d);
    unsigned f[6] = { (unsigned)y, m, d, (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60),
                      (unsigned)(rem % 60) };
    static const unsigned width[6] = { 4, 2, 2, 2, 2, 2 };
    char *o = out;
    for (int i = 0; i < 6; i++) {
        for (unsigned w = width[i]; w > 0; w--)
            o[w - 1] = (char)('0' + f[i] % 10), f[i] /= 10;
        o += width[i];
        if (i == 2)
            *o++ = 'T';
    }
    *o++ = 'Z';
    *o = '\0';
    return EVREC_OK;
}

/* -- canonical request ---------------------------------------------------------------------- */

static int valid_scope_part(const char *s)
{
    if (!s || !*s || strlen(s) > 48)
        return 0;
    for (; *s; s++)
        if (*s == '/' || (unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int valid_params(const sigv4_params_t *p)
{
    char date[17];
    return p && valid_scope_part(p->region) && valid_scope_part(p->service) &&
           amz_date(p->unix_ms, date) == EVREC_OK;
}

/* Remove dot segments and empty segments as botocore does; keep a trailing slash. */
static void normalized_path(sb_t *b, const char *path, size_t n, int encode)
{
    /* Segments are kept as (offset, length) pairs into `path`. */
    size_t cap = n / 2 + 2, count = 0;
    size_t *seg = port_malloc(cap * 2 * sizeof *seg);
    if (!seg) {
        b->oom = 1;
        return;
    }
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        size_t len = j - i;
        if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (count > 0)
                count--;
        } else if (len > 0 && !(len == 1 && path[i] == '.')) {
            seg[2 * count] = i;
            seg[2 * count + 1] = len;
            count++;
        }
        i = j + 1;
    }
    util_buf_putc(b, '/');
    for (size_t k = 0; k < count; k++) {
        if (k > 0)
            util_buf_putc(b, '/');
        if (encode)
            uri_encode(b, path + seg[2 * k], seg[2 * k + 1], 0, 0);
        else
            util_buf_putn(b, path + seg[2 * k], seg[2 * k + 1]);
    }
    if (count > 0 && n > 0 && path[n - 1] == '/')
        util_buf_putc(b, '/');
    port_free(seg);
}

static void canonical_uri(sb_t *b, const char *path, int no_normalize)
{
    size_t n = path ? strlen(path) : 0;
    if (n == 0) {
        util_buf_putc(b, '/');
        return;
    }
    if (no_normalize)
        uri_encode(b, path, n, 1, 1);
    else
        normalized_path(b, path, n, 1);
}

typedef struct qparam {
    char *key, *value; /* encoded */
} qparam_t;

static int qparam_cmp(const void *a, const void *b)
{
    const qparam_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

static char *encode_component(const char *s, size_t n)
{
    char *raw = percent_decode(s, n);
    if (!raw)
        return NULL;
    sb_t e = SB_INIT;
    util_buf_puts(&e, "");
    uri_encode(&e, raw, strlen(raw), 0, 0);
    port_free(raw);
    char *out;
    return sb_finish(&e, &out) == EVREC_OK ? out : NULL;
}

static void canonical_query(sb_t *b, const char *query)
{
    if (!query || !*query)
        return;
    size_t n = 1;
    for (const char *q = query; *q; q++)
        n += *q == '&';
    qparam_t *ps = port_calloc(n, sizeof *ps);
    if (!ps) {
        b->oom = 1;
        return;
    }
    size_t count = 0;
    const char *s = query;
    while (*s) {
        const char *end = strchr(s, '&');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len > 0) {
            const char *eq = memchr(s, '=', len);
            size_t klen = eq ? (size_t)(eq - s) : len;
            ps[count].key = encode_component(s, klen);
            ps[count].value = eq ? encode_component(eq + 1, len - klen - 1)
                                 : encode_component("", 0);
            count++;
            if (!ps[count - 1].key || !ps[count - 1].value)
                b->oom = 1;
        }
        s += len;
        if (*s == '&')
            s++;
    }
    if (!b->oom) {
        qsort(ps, count, sizeof *ps, qparam_cmp);
        for (size_t i = 0; i < count; i++) {
            if (i > 0)
                util_buf_putc(b, '&');
            util_buf_puts(b, ps[i].key);
            util_buf_putc(b, '=');
            util_buf_puts(b, ps[i].value);
        }
    }
    for (size_t i = 0; i < count; i++) {
        port_free(ps[i].key);
        port_free(ps[i].value);
    }
    port_free(ps);
}

typedef struct hdr {
    char *name;        /* lower-cased */
    const char *value; /* as given */
    size_t order;      /* position in the request, so repeated headers keep their order */
} hdr_t;

static int hdr_cmp(const void *a, const void *b)
{
    const hdr_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int valid_header_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || *s == ':')
            return 0;
    return 1;
}

/* The value trimmed, every run of whitespace (folded lines included) as one space. */
static void header_value(sb_t *b, const char *v)
{
    if (!v)
        return;
    while (is_space(*v))
        v++;
    while (*v) {
        if (is_space(*v)) {
            while (is_space(*v))
                v++;
            if (*v)
                util_buf_putc(b, ' ');
        } else {
            util_buf_putc(b, *v++);
        }
    }
}

/* Canonical headers block and the signed-header list, from the complete set to sign. */
static int canonical_headers(sb_t *b, sb_t *signed_list, const sigv4_header_t *h, size_t n)
{
    if (n == 0 || !h)
        return EVREC_E_INVALID;
    hdr_t *hs = port_calloc(n, sizeof *hs);
    if (!hs)
        return EVREC_E_NOMEM;
    int rc = EVREC_OK, have_host = 0;
    for (size_t i = 0; i < n && rc == EVREC_OK; i++) {
        if (!valid_header_name(h[i].name)) {
            rc = EVREC_E_INVALID;
            break;
        }
        hs[i].name = port_strdup(h[i].name);
        if (!hs[i].name) {
            rc = EVREC_E_NOMEM;
            break;
        }
        for (char *c = hs[i].name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        hs[i].value = h[i].value;
        hs[i].order = i;
        have_host |= strcmp(hs[i].name, "host") == 0;
    }
    if (rc == EVREC_OK && !have_host)
        rc = EVREC_E_INVALID;
    if (rc == EVREC_OK) {
        qsort(hs, n, sizeof *hs, hdr_cmp);
        for (size_t i = 0; i < n; i++) {
            int repeat = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
            if (repeat) {
                util_buf_putc(b, ',');
            } else {
                if (i > 0) {
                    util_buf_putc(b, '\n');
                    util_buf_putc(signed_list, ';');
                }
                util_buf_puts(b, hs[i].name);
                util_buf_putc(b, ':');
                util_buf_puts(signed_list, hs[i].name);
            }
            header_value(b, hs[i].value);
        }
        util_buf_putc(b, '\n');
    }
    for (size_t i = 0; i < n; i++)
        port_free(hs[i].name);
    port_free(hs);
    return rc;
}

static int valid_hash(const char *h)
{
    if (!h || strlen(h) != 64)
        return 0;
    for (; *h; h++)
        if (hex_value(*h) < 0)
            return 0;
    return 1;
}

int sigv4_canonical_request(const sigv4_request_t *req, const sigv4_params_t *p, char **out)
{
    if (!out)
        return EVREC_E_INVALID;
    *out = NULL;
    if (!req || !p || !req->method || !*req->method || (req->body_len > 0 && !req->body) ||
        (req->payload_hash && !valid_hash(req->payload_hash)))
        return EVREC_E_INVALID;
    char body_hash[65];
    if (req->payload_hash)
        snprintf(body_hash, sizeof body_hash, "%s", req->payload_hash);
    else
        sigv4_sha256_hex(req->body, req->body_len, body_hash);

    sb_t b = SB_INIT, sl = SB_INIT;
    util_buf_puts(&sl, "");
    util_buf_puts(&b, req->method);
    util_buf_putc(&b, '\n');
    canonical_uri(&b, req->path, p->no_path_normalize);
    util_buf_putc(&b, '\n');
    canonical_query(&b, req->query);
    util_buf_putc(&b, '\n');
    int rc = canonical_headers(&b, &sl, req->headers, req->nheaders);
    if (rc == EVREC_OK && sl.oom)
        rc = EVREC_E_NOMEM;
    if (rc == EVREC_OK) {
        util_buf_putc(&b, '\n');
        util_buf_puts(&b, sl.data);
        util_buf_putc(&b, '\n');
        util_buf_puts(&b, body_hash);
    }
    port_free(sl.data);
    if (rc != EVREC_OK) {
        wipe_free(b.data);
        return rc;
    }
    return sb_finish(&b, out);
}

/* -- string to sign, key, authorization ------------------------------------------------------ */

static void scope_of(const sigv4_params_t *p, const char *date, char *out, size_t len)
{
    snprintf(out, len, "%.8s/%s/%s", date, p->region, p->service);
}

int sigv4_string_to_sign(const char *canonical_request, const sigv4_params_t *p, char **out)
{
    if (!out)
        return EVREC_E_INVALID;
    *out = NULL;
    if (!canonical_request || !valid_params(p))
        return EVREC_E_INVALID;
    char date[17], scope[128], hash[65];
    amz_date(p->unix_ms, date);
    scope_of(p, date, scope, sizeof scope);
    sigv4_sha256_hex(canonical_request, strlen(canonical_request), hash);
    sb_t b = SB_INIT;
    util_buf_puts(&b, ALGORITHM "\n");
    util_buf_puts(&b, date);
    util_buf_putc(&b, '\n');
    util_buf_puts(&b, scope);
    util_buf_puts(&b, "/aws4_request\n");
    util_buf_puts(&b, hash);
    return sb_finish(&b, out);
}

/* The signing key for (scope, secret), from the cache when it matches. */
static int signing_key(const sigv4_params_t *p, const char *date, const char *secret,
                       sigv4_key_cache_t *cache, unsigned char key[32])
{
    char scope[128];
    scope_of(p, date, scope, sizeof scope);
    unsigned char digest[32];
    mbedtls_sha256_ret((const unsigned char *)secret, strlen(secret), digest, 0);
    if (cache && strcmp(cache->scope, scope) == 0 &&
        memcmp(cache->secret_digest, digest, sizeof digest) == 0) {
        memcpy(key, cache->key, 32);
        return EVREC_OK;
    }
    unsigned char k[4 + 256];
    size_t slen = strlen(secret);
    if (slen > sizeof k - 4)
        return EVREC_E_INVALID;
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret, slen);
    unsigned char a[32], b[32];
    int rc = hmac(k, 4 + slen, date, 8, a);
    if (rc == EVREC_OK)
        rc = hmac(a, 32, p->region, strlen(p->region), b);
    if (rc == EVREC_OK)
        rc = hmac(b, 32, p->service, strlen(p->service), a);
    if (rc == EVREC_OK)
        rc = hmac(a, 32, "aws4_request", 12, key);
    mbedtls_platform_zeroize(k, sizeof k);
    mbedtls_platform_zeroize(a, sizeof a);
    mbedtls_platform_zeroize(b, sizeof b);
    if (rc == EVREC_OK && cache) {
        snprintf(cache->scope, sizeof cache->scope, "%s", scope);
        memcpy(cache->secret_digest, digest, sizeof digest);
        memcpy(cache->key, key, 32);
    }
    return rc;
}

static int valid_creds(const sigv4_credentials_t *c)
{
    return c && valid_header_name(c->access_key_id) && c->secret_access_key &&
           *c->secret_access_key;
}

int sigv4_authorization(const char *string_to_sign, const char *canonical_request,
                        const sigv4_params_t *p, const sigv4_credentials_t *creds,
                        sigv4_key_cache_t *cache, char **out)
{
    if (!out)
        return EVREC_E_INVALID;
    *out = NULL;
    if (!string_to_sign || !canonical_request || !valid_params(p) || !valid_creds(creds))
        return EVREC_E_INVALID;
    /* The signed-header list is the canonical request's line before the payload hash. */
    const char *last = strrchr(canonical_request, '\n');
    if (!last || last == canonical_request)
        return EVREC_E_INVALID;
    const char *sh = last;
    while (sh > canonical_request && sh[-1] != '\n')
        sh--;
    if (sh == last)
        return EVREC_E_INVALID;

    char date[17], scope[128];
    amz_date(p->unix_ms, date);
    scope_of(p, date, scope, sizeof scope);
    unsigned char key[32], sig[32];
    int rc = signing_key(p, date, creds->secret_access_key, cache, key);
    if (rc == EVREC_OK)
        rc = hmac(key, sizeof key, string_to_sign, strlen(string_to_sign), sig);
    mbedtls_platform_zeroize(key, sizeof key);
    if (rc != EVREC_OK)
        return rc;
    char sighex[65];
    to_hex(sig, sizeof sig, sighex);
    sb_t b = SB_INIT;
    util_buf_puts(&b, ALGORITHM " Credential=");
    util_buf_puts(&b, creds->access_key_id);
    util_buf_putc(&b, '/');
    util_buf_puts(&b, scope);
    util_buf_puts(&b, "/aws4_request, SignedHeaders=");
    util_buf_putn(&b, sh, (size_t)(last - sh));
    util_buf_puts(&b, ", Signature=");
    util_buf_puts(&b, sighex);
    return sb_finish(&b, out);
}

/* -- one call --------------------------------------------------------------------------- */

/* A value that can go on the wire as one header line: no control character but tab. The
 * stages above fold multi-line values as the SigV4 suite asks; sigv4_sign is for requests
 * that are sent, where a CR or LF (a session token from a file) would inject a header. */
static int sendable_value(const char *v)
{
    if (!v)
        return 1; /* signed and sent as empty */
    for (; *v; v++)
        if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
            return 0;
    return 1;
}

static int is_added_header(const char *name)
{
    static const char *const ours[] = { "x-amz-date", "x-amz-security-token",
                                        "x-amz-content-sha256" };
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
        const char *a = name, *b = ours[i];
        while (*a && *b && (*a | 0x20) == *b)
            a++, b++;
        if (!*a && !*b)
            return 1;
    }
    return 0;
}

int sigv4_sign(sigv4_key_cache_t *cache, const sigv4_request_t *req, const sigv4_params_t *p,
               const sigv4_credentials_t *creds, sigv4_signature_t *out)
{
    if (!out)
        return EVREC_E_INVALID;
    memset(out, 0, sizeof *out);
    if (!req || !valid_params(p) || !valid_creds(creds) || (req->nheaders > 0 && !req->headers) ||
        (req->body_len > 0 && !req->body) || (req->payload_hash && !valid_hash(req->payload_hash)))
        return EVREC_E_INVALID;
    if (creds->session_token && !sendable_value(creds->session_token))
        return EVREC_E_INVALID;
    for (size_t i = 0; i < req->nheaders; i++)
        if (!sendable_value(req->headers[i].value))
            return EVREC_E_INVALID;
    amz_date(p->unix_ms, out->amz_date);
    if (req->payload_hash)
        snprintf(out->content_sha256, sizeof out->content_sha256, "%s", req->payload_hash);
    else
        sigv4_sha256_hex(req->body, req->body_len, out->content_sha256);

    /* The caller's headers, minus any of the ones this function owns, plus those. */
    sigv4_header_t *hs = port_calloc(req->nheaders + 3, sizeof *hs);
    if (!hs)
        return EVREC_E_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!req->headers[i].name) {
            port_free(hs);
            return EVREC_E_INVALID;
        }
        if (!is_added_header(req->headers[i].name))
            hs[n++] = req->headers[i];
    }
    hs[n++] = (sigv4_header_t){ "X-Amz-Date", out->amz_date };
    if (creds->session_token && *creds->session_token)
        hs[n++] = (sigv4_header_t){ "X-Amz-Security-Token", creds->session_token };
    if (p->sign_content_sha256)
        hs[n++] = (sigv4_header_t){ "X-Amz-Content-Sha256", out->content_sha256 };

    sigv4_request_t r = *req;
    r.headers = hs;
    r.nheaders = n;
    r.payload_hash = out->content_sha256;
    char *creq = NULL, *sts = NULL, *authz = NULL;
    int rc = sigv4_canonical_request(&r, p, &creq);
    if (rc == EVREC_OK)
        rc = sigv4_string_to_sign(creq, p, &sts);
    if (rc == EVREC_OK)
        rc = sigv4_authorization(sts, creq, p, creds, cache, &authz);
    if (rc == EVREC_OK) {
        size_t len = strlen(authz);
        if (len >= sizeof out->authorization || len < 64) {
            rc = EVREC_E_INVALID;
        } else {
            memcpy(out->authorization, authz, len + 1);
            memcpy(out->signature, authz + len - 64, 65);
        }
    }
    port_free(hs);
    wipe_free(creq);
    port_free(sts);
    port_free(authz);
    return rc;
}
