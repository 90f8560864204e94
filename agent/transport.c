/*
 * HTTP(S) over one libcurl easy handle. Reusing the handle keeps libcurl's connection cache,
 * so consecutive requests to the same host share one TCP/TLS connection (keep-alive).
 *
 * What libcurl already does is left to it: proxies (http_proxy, https_proxy, no_proxy from
 * the environment), TLS (verification on unless the caller turns it off), HTTP-date parsing
 * (curl_getdate). This file adds the response cap, the headers the flusher needs, and the
 * mapping of libcurl's errors onto evrec's codes (which say whether retrying can help).
 */
#include "transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <mbedtls/platform_util.h>

#include "evrec.h"
#include "log.h"
#include "port.h"

#define DEFAULT_CONNECT_MS 10000u
#define DEFAULT_REQUEST_MS 60000u
#define DEFAULT_MAX_RESPONSE (1024u * 1024u)
#define RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

/* State of one exchange, filled by the callbacks. */
typedef struct exchange {
    struct transport *t;
    struct transport_response *resp;
    size_t cap;
    size_t expected; /* Content-Length of the answer, 0 if not said */
    int too_large;
    int oom;
    char retry_after[64];
    char date[64];
    unsigned sent; /* requests that went out (libcurl resends on a dead reused connection) */
} exchange_t;

struct transport {
    CURL *curl;
    CURLM *multi;            /* created by the first transport_start() */
    int running;             /* 1: an exchange is on `multi` */
    int finished;            /* 1: it ended; `result` says how */
    CURLcode result;
    exchange_t x;            /* the exchange in progress */
    struct curl_slist *list; /* its header lines */
    char host[256];
    char *ca_bundle, *cert, *key;
    int no_verify_tls;
    size_t max_response;
    int verbose;
    void (*log_fn)(void *user, const char *line);
    void *log_user;
    char errbuf[CURL_ERROR_SIZE];
};


static void free_headers(struct curl_slist *list);

#if LIBCURL_VERSION_NUM >= 0x075000
/* Called by libcurl right before each request goes out on a connection, resends included. */
static int on_prereq(void *user, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    ((exchange_t *)user)->sent++;
    return CURL_PREREQFUNC_OK;
}
#endif

static int set_common_options(transport_t *t, const transport_config_t *cfg)
{
    CURL *c = t->curl;
    uint32_t connect_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_CONNECT_MS;
    uint32_t request_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : DEFAULT_REQUEST_MS;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                            \
    do {                                                                                         \
        if (rc == CURLE_OK)                                                                      \
            rc = curl_easy_setopt(c, opt, val);                                                  \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM for DNS timeouts: we run on a worker thread */
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    SET(CURLOPT_TIMEOUT_MS, (long)request_ms);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L); /* a redirect would carry the signature elsewhere */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, t->no_verify_tls ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, t->no_verify_tls ? 0L : 2L);
    if (t->ca_bundle)
        SET(CURLOPT_CAINFO, t->ca_bundle);
    if (t->cert)
        SET(CURLOPT_SSLCERT, t->cert);
    if (t->key)
        SET(CURLOPT_SSLKEY, t->key);
    SET(CURLOPT_USERAGENT, "evrec/" EVREC_VERSION_STRING);
    SET(CURLOPT_ERRORBUFFER, t->errbuf);
#undef SET
    return rc == CURLE_OK ? EVREC_OK : EVREC_E_CONFIG;
}

int transport_new(transport_t **out, const transport_config_t *cfg)
{
    if (!out)
        return EVREC_E_INVALID;
    *out = NULL;
    transport_config_t defaults;
    memset(&defaults, 0, sizeof defaults);
    if (!cfg)
        cfg = &defaults;
    if ((cfg->client_cert_file == NULL) != (cfg->client_key_file == NULL))
        return EVREC_E_CONFIG; /* a certificate without its key (or the reverse) */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return EVREC_E_NOMEM;
    transport_t *t = port_calloc(1, sizeof *t);
    if (!t) {
        curl_global_cleanup();
        return EVREC_E_NOMEM;
    }
    const char *ca = cfg->ca_bundle;
    if (!ca || !*ca)
        ca = port_getenv("AWS_CA_BUNDLE");
    t->ca_bundle = ca && *ca ? port_strdup(ca) : NULL;
    t->cert = port_strdup(cfg->client_cert_file);
    t->key = port_strdup(cfg->client_key_file);
    t->no_verify_tls = cfg->no_verify_tls;
    t->max_response = cfg->max_response_bytes ? cfg->max_response_bytes : DEFAULT_MAX_RESPONSE;
    t->verbose = cfg->verbose && cfg->log_fn;
    t->log_fn = cfg->log_fn;
    t->log_user = cfg->log_user;
    t->curl = curl_easy_init();
    int rc = EVREC_OK;
    if (!t->curl || (ca && *ca && !t->ca_bundle) || (cfg->client_cert_file && !t->cert) ||
        (cfg->client_key_file && !t->key))
        rc = EVREC_E_NOMEM;
    if (rc == EVREC_OK)
        rc = set_common_options(t, cfg);
    if (rc != EVREC_OK) {
        transport_free(t);
        return rc;
    }
    *out = t;
    return EVREC_OK;
}

void transport_free(transport_t *t)
{
    if (!t)
        return;
    if (t->multi && t->running)
        curl_multi_remove_handle(t->multi, t->curl);
    if (t->curl)
        curl_easy_cleanup(t->curl);
    free_headers(t->list);
    if (t->multi)
        curl_multi_cleanup(t->multi);
    port_free(t->ca_bundle);
    port_free(t->cert);
    port_free(t->key);
    port_free(t);
    curl_global_cleanup();
}

void transport_response_clear(transport_response_t *resp)
{
    if (!resp)
        return;
    port_free(resp->body);
    memset(resp, 0, sizeof *resp);
    resp->retry_after_ms = -1;
}

/* -- callbacks --------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    exchange_t *x = user;
    transport_response_t *r = x->resp;
    size_t add = size * n;
    if (add > x->t->max_response - r->body_len) {
        x->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (r->body_len + add + 1 > x->cap) {
        /* Sized by Content-Length when the answer says it, so a body takes one allocation
         * of its own size; otherwise doubling from 4 KiB. */
        size_t cap = x->cap                         ? x->cap
                     : x->expected >= r->body_len + add ? x->expected + 1
                                                        : 4096;
        while (cap < r->body_len + add + 1)
            cap *= 2;
        if (cap > x->t->max_response + 1)
            cap = x->t->max_response + 1;
        char *nb = port_realloc(r->body, cap);
        if (!nb) {
            x->oom = 1;
            return 0;
        }
        r->body = nb;
        x->cap = cap;
    }
    memcpy(r->body + r->body_len, data, add);
    r->body_len += add;
    r->body[r->body_len] = '\0';
    return add;
}

/* Copy a header's value (trimmed) if `line` is that header, case-insensitively. */
static int header_value(const char *line, size_t len, const char *name, char *out,
                        size_t outlen)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':')
        return 0;
    for (size_t i = 0; i < nl; i++) {
        char a = line[i], b = name[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != b)
            return 0;
    }
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    if (vl >= outlen)
        vl = outlen - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return 1;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
    exchange_t *x = user;
    transport_response_t *r = x->resp;
    size_t len = size * n;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the previous one's headers. */
        r->error_type[0] = r->request_id[0] = r->content_type[0] = '\0';
        x->retry_after[0] = x->date[0] = '\0';
        x->expected = 0;
        return len;
    }
    char clen[32];
    if (header_value(data, len, "content-length", clen, sizeof clen)) {
        char *end = NULL;
        unsigned long long v = strtoull(clen, &end, 10);
        if (end != clen && v > x->t->max_response) {
            x->too_large = 1;
            return 0; /* refuse before reading a byte of an oversized body */
        }
        if (end != clen)
            x->expected = (size_t)v;
    }
    header_value(data, len, "date", x->date, sizeof x->date);
    header_value(data, len, "retry-after", x->retry_after, sizeof x->retry_after);
    header_value(data, len, "content-type", r->content_type, sizeof r->content_type);
    if (header_value(data, len, "x-amzn-errortype", r->error_type, sizeof r->error_type)) {
        char *colon = strchr(r->error_type, ':'); /* "Type:http://internal.amazon.com/..." */
        if (colon)
            *colon = '\0';
    }
    if (!header_value(data, len, "x-amzn-requestid", r->request_id, sizeof r->request_id))
        header_value(data, len, "x-amz-request-id", r->request_id, sizeof r->request_id);
    return len;
}

/* libcurl's trace, as lines, redacted (Authorization, tokens), headers and info only:
 * bodies are not logged because credential answers carry secrets. */
static int on_debug(CURL *c, curl_infotype type, char *data, size_t size, void *user)
{
    (void)c;
    transport_t *t = user;
    const char *prefix = type == CURLINFO_TEXT ? "* " : type == CURLINFO_HEADER_IN ? "< "
                         : type == CURLINFO_HEADER_OUT                             ? "> "
                                                                                   : NULL;
    if (!prefix)
        return 0;
    size_t i = 0;
    while (i < size) {
        size_t j = i;
        while (j < size && data[j] != '\n' && data[j] != '\r')
            j++;
        if (j > i) {
            char line[1024];
            size_t n = j - i < sizeof line - 3 ? j - i : sizeof line - 3;
            memcpy(line, prefix, 2);
            memcpy(line + 2, data + i, n);
            line[n + 2] = '\0';
            log_redact(line);
            t->log_fn(t->log_user, line);
        }
        i = j + 1;
    }
    return 0;
}

/* -- one request ------------------------------------------------------------------------- */

static int is_tls_failure(CURLcode rc, const char *detail)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return 1;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        /* With TLS 1.3 a server refusing the client certificate says so after the
         * handshake, as an alert the client reads with its first response byte. */
        return strstr(detail, "alert") != NULL;
    default:
        return 0;
    }
}

static int map_error(CURLcode rc, const exchange_t *x, const char *detail)
{
    if (x->too_large)
        return EVREC_E_RESPONSE;
    if (x->oom || rc == CURLE_OUT_OF_MEMORY)
        return EVREC_E_NOMEM;
    if (is_tls_failure(rc, detail))
        return EVREC_E_TLS;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return EVREC_E_DNS;
    case CURLE_COULDNT_CONNECT:
        return EVREC_E_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return EVREC_E_NET_TIMEOUT;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return EVREC_E_INVALID;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
        return EVREC_E_RESPONSE;
    default:
        return EVREC_E_NET; /* reset, nothing received, partial body, ... */
    }
}

/* Retry-After: delta-seconds or an HTTP-date. A date is taken relative to the response's own
 * Date header when there is one, so a skewed device clock does not distort it. */
int64_t transport_date_ms(const transport_response_t *resp)
{
    if (resp == NULL || resp->date[0] == '\0')
        return 0;
    time_t d = curl_getdate(resp->date, NULL);
    return d == (time_t)-1 ? 0 : (int64_t)d * 1000;
}

static int64_t retry_after_ms(const char *v, const transport_response_t *resp)
{
    if (!*v)
        return -1;
    int64_t ms;
    if (*v >= '0' && *v <= '9') {
        int64_t secs = 0;
        for (const char *p = v; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            if (secs < RETRY_AFTER_MAX_MS / 1000)
                secs = secs * 10 + (*p - '0');
        }
        ms = secs * 1000;
    } else {
        time_t when = curl_getdate(v, NULL);
        if (when == (time_t)-1)
            return -1;
        int64_t date_ms = transport_date_ms(resp);
        int64_t now = date_ms > 0 ? date_ms : port_wall_ms();
        ms = (int64_t)when * 1000 - now;
        if (ms < 0)
            ms = 0;
    }
    return ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : ms;
}

static int has_header(const char *const *headers, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; headers && headers[i]; i++) {
        const char *h = headers[i];
        size_t k = 0;
        while (k < nl && h[k] && (h[k] | 0x20) == (name[k] | 0x20))
            k++;
        if (k == nl && h[k] == ':')
            return 1;
    }
    return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) LOG_PRINTF(3, 4);
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "Name: value" as HTTP allows it: a name of visible characters but ':', and a value without
 * control characters but tab. libcurl sends a line as given, so a CR or LF in a value (a
 * session token from a file, an id) would end the header and start another one. */
static const char *header_line_problem(const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return "has no name before ':'";
    for (const char *p = line; p < colon; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return "has a space or control character in its name";
    for (const char *p = colon + 1; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return "has a control character (CR, LF, ...) in its value";
    return NULL;
}

/* The header lines hold the Authorization and the session token: wiped before libcurl frees
 * its copies (what libcurl copies into its own send buffer is beyond our reach). */
static void free_headers(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l; l = l->next)
        if (l->data)
            mbedtls_platform_zeroize(l->data, strlen(l->data));
    curl_slist_free_all(list);
}

static int build_headers(const char *const *headers, struct curl_slist **out, char *err,
                         size_t errlen)
{
    struct curl_slist *list = NULL, *next;
    for (size_t i = 0; headers && headers[i]; i++) {
        const char *why = header_line_problem(headers[i]);
        if (why) {
            /* Name the header only when its name is sound; never echo a value. */
            int name_len = strstr(why, "value") ? (int)(strchr(headers[i], ':') - headers[i]) : 0;
            set_err(err, errlen, "transport: header %s%.*s%s %s; the request is not sent",
                    name_len ? "'" : "", name_len > 64 ? 64 : name_len, headers[i],
                    name_len ? "'" : "", why);
            free_headers(list);
            return EVREC_E_INVALID;
        }
        next = curl_slist_append(list, headers[i]);
        if (!next)
            goto oom;
        list = next;
    }
    /* No "Expect: 100-continue" round trip before a body; no invented Content-Type. */
    static const char *const suppress[] = { "Expect", "Content-Type", "Accept" };
    for (size_t i = 0; i < sizeof suppress / sizeof suppress[0]; i++) {
        if (has_header(headers, suppress[i]))
            continue;
        char line[32];
        snprintf(line, sizeof line, "%s:", suppress[i]);
        next = curl_slist_append(list, line);
        if (!next)
            goto oom;
        list = next;
    }
    *out = list;
    return EVREC_OK;
oom:
    free_headers(list);
    return EVREC_E_NOMEM;
}

static void set_method(CURL *c, const char *method, const void *body, size_t body_len)
{
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    if (strcmp(method, "GET") == 0 && body_len == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        return;
    }
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body_len ? (const char *)body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
}

/* Set the handle up for one exchange (state in t->x, t->list, t->host). */
static int prepare(transport_t *t, const char *method, const char *url,
                   const char *const *headers, const void *body, size_t body_len,
                   transport_response_t *resp, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (resp) {
        memset(resp, 0, sizeof *resp);
        resp->retry_after_ms = -1;
    }
    if (!t || !method || !*method || !url || !resp || (body_len > 0 && !body)) {
        set_err(err, errlen, "transport: missing argument");
        return EVREC_E_INVALID;
    }
    if (t->running) {
        set_err(err, errlen, "transport: an exchange is still in progress");
        return EVREC_E_STATE;
    }
    if (transport_url_host(url, t->host, sizeof t->host) != EVREC_OK) {
        set_err(err, errlen, "transport: invalid URL (need http:// or https://host)");
        return EVREC_E_INVALID;
    }
    free_headers(t->list);
    t->list = NULL;
    int rc = build_headers(headers, &t->list, err, errlen);
    if (rc != EVREC_OK)
        return rc;
    exchange_t *x = &t->x;
    memset(x, 0, sizeof *x);
    x->t = t;
    x->resp = resp;
    CURL *c = t->curl;
    t->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->list);
    set_method(c, method, body, body_len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
#if LIBCURL_VERSION_NUM >= 0x075000
    curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(c, CURLOPT_PREREQDATA, x);
#else
    x->sent = 1; /* no way to see libcurl's resends: count the request once */
#endif
    curl_easy_setopt(c, CURLOPT_VERBOSE, t->verbose ? 1L : 0L);
    if (t->verbose) {
        curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, on_debug);
        curl_easy_setopt(c, CURLOPT_DEBUGDATA, t);
    }
    return EVREC_OK;
}

/* The handle lets go of the exchange's header lines, which are freed. */
static void drop_headers(transport_t *t)
{
    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    free_headers(t->list);
    t->list = NULL;
}

/* The exchange ended with `cr`: fill its response (or the error). */
static int conclude(transport_t *t, CURLcode cr, char *err, size_t errlen)
{
    CURL *c = t->curl;
    exchange_t *x = &t->x;
    transport_response_t *resp = x->resp;
    drop_headers(t);
    if (cr != CURLE_OK) {
        const char *detail = t->errbuf[0] ? t->errbuf : curl_easy_strerror(cr);
        int rc = map_error(cr, x, detail);
        if (rc == EVREC_E_RESPONSE && x->too_large)
            set_err(err, errlen, "%s: response larger than %zu bytes", t->host, t->max_response);
        else
            set_err(err, errlen, "%s (%s): %s", t->host, evrec_strerror(rc), detail);
        transport_response_clear(resp);
        resp->sent = x->sent;
        return rc;
    }
    resp->sent = x->sent;
    if (!resp->body) {
        resp->body = port_malloc(1);
        if (!resp->body) {
            transport_response_clear(resp);
            return EVREC_E_NOMEM;
        }
        resp->body[0] = '\0';
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    memcpy(resp->date, x->date, sizeof resp->date);
    resp->retry_after_ms = retry_after_ms(x->retry_after, resp);
    return EVREC_OK;
}

int transport_send(transport_t *t, const char *method, const char *url,
                   const char *const *headers, const void *body, size_t body_len,
                   transport_response_t *resp, char *err, size_t errlen)
{
    int rc = prepare(t, method, url, headers, body, body_len, resp, err, errlen);
    if (rc != EVREC_OK)
        return rc;
    return conclude(t, curl_easy_perform(t->curl), err, errlen);
}

int transport_start(transport_t *t, const char *method, const char *url,
                    const char *const *headers, const void *body, size_t body_len,
                    transport_response_t *resp, char *err, size_t errlen)
{
    int rc = prepare(t, method, url, headers, body, body_len, resp, err, errlen);
    if (rc != EVREC_OK)
        return rc;
    if ((!t->multi && !(t->multi = curl_multi_init())) ||
        curl_multi_add_handle(t->multi, t->curl) != CURLM_OK) {
        drop_headers(t);
        set_err(err, errlen, "transport: cannot start the request (out of memory)");
        return EVREC_E_NOMEM;
    }
    t->running = 1;
    t->finished = 0;
    t->result = CURLE_OK;
    return EVREC_OK;
}

/* Let libcurl do what it can now; note the end of the exchange. */
static void perform(transport_t *t)
{
    int still = 0;
    curl_multi_perform(t->multi, &still);
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(t->multi, &left)) != NULL) {
        if (m->msg == CURLMSG_DONE && m->easy_handle == t->curl) {
            t->result = m->data.result;
            t->finished = 1;
        }
    }
}

int transport_advance(transport_t *t, uint32_t wait_ms, int *done)
{
    if (!t || !done)
        return EVREC_E_INVALID;
    *done = 0;
    if (!t->running)
        return EVREC_E_STATE;
    perform(t);
    if (!t->finished && wait_ms > 0) {
        long want = -1;
        curl_multi_timeout(t->multi, &want);
        int ms = want >= 0 && (uint64_t)want < wait_ms ? (int)want : (int)wait_ms;
        if (ms > 0)
            curl_multi_poll(t->multi, NULL, 0, ms, NULL);
        perform(t);
    }
    *done = t->finished;
    return EVREC_OK;
}

int transport_finish(transport_t *t, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!t || !t->running) {
        set_err(err, errlen, "transport: no exchange to finish");
        return EVREC_E_STATE;
    }
    curl_multi_remove_handle(t->multi, t->curl);
    t->running = 0;
    if (!t->finished) { /* abandoned: what arrived of the answer is dropped */
        drop_headers(t);
        transport_response_clear(t->x.resp);
        t->x.resp->sent = t->x.sent;
        set_err(err, errlen, "%s: request abandoned", t->host);
        return EVREC_E_NET;
    }
    t->finished = 0;
    return conclude(t, t->result, err, errlen);
}

uint32_t transport_wait_hint(transport_t *t, evrec_pollfd_t *fds, size_t max, size_t *n)
{
    *n = 0;
    if (!t || !t->running)
        return UINT32_MAX;
    fd_set r, w, e;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&e);
    int maxfd = -1;
    curl_multi_fdset(t->multi, &r, &w, &e, &maxfd);
    for (int fd = 0; fd <= maxfd && *n < max; fd++) {
        int ev = (FD_ISSET(fd, &r) ? EVREC_POLL_IN : 0) | (FD_ISSET(fd, &w) ? EVREC_POLL_OUT : 0);
        if (!ev)
            continue;
        fds[*n].fd = fd;
        fds[*n].events = ev;
        (*n)++;
    }
    long want = -1;
    curl_multi_timeout(t->multi, &want);
    if (want < 0)
        return maxfd < 0 ? 10 : UINT32_MAX; /* nothing to wait on yet: look again soon */
    return (uint64_t)want > UINT32_MAX ? UINT32_MAX : (uint32_t)want;
}

int transport_url_host(const char *url, char *host_header, size_t len)
{
    if (!url || !host_header || len == 0)
        return EVREC_E_INVALID;
    host_header[0] = '\0';
    size_t default_port;
    const char *p;
    if (strncmp(url, "https://", 8) == 0) {
        p = url + 8;
        default_port = 443;
    } else if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
        default_port = 80;
    } else {
        return EVREC_E_INVALID;
    }
    size_t n = strcspn(p, "/?#");
    if (n == 0 || memchr(p, '@', n)) /* no credentials in URLs */
        return EVREC_E_INVALID;
    /* The port is after the last ':' outside an IPv6 literal's brackets. */
    const char *close = memchr(p, ']', n);
    if (p[0] == '[' && !close)
        return EVREC_E_INVALID;
    const char *colon = NULL;
    for (const char *q = close ? close : p; q < p + n; q++)
        if (*q == ':')
            colon = q;
    size_t hostlen = colon ? (size_t)(colon - p) : n;
    if (hostlen == 0)
        return EVREC_E_INVALID;
    if (colon) {
        size_t port = 0;
        if (colon + 1 == p + n)
            return EVREC_E_INVALID;
        for (const char *q = colon + 1; q < p + n; q++) {
            if (*q < '0' || *q > '9' || port > 65535)
                return EVREC_E_INVALID;
            port = port * 10 + (size_t)(*q - '0');
        }
        if (port == 0 || port > 65535)
            return EVREC_E_INVALID;
        if (port == default_port)
            n = hostlen;
    }
    if (n >= len)
        return EVREC_E_INVALID;
    memcpy(host_header, p, n);
    host_header[n] = '\0';
    return EVREC_OK;
}
