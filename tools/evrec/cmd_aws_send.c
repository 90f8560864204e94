/*
 * The AWS CLI-compatible commands' request and answer (cmd_aws.h): the signed request and its
 * retries (botocore's standard mode), then what the AWS CLI v2 prints for the answer — its
 * error messages for a failed connection or an error answer, or the output in the chosen
 * format (--query, json/text/table/yaml, colour, the pager).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

#include "aws_output.h"
#include "aws_wire.h"
#include "cmd_aws.h"
#include "jmespath.h"
#include "port.h"
#include "sigv4.h"
#include "transport.h"

/* -- retries (botocore's standard and legacy modes) ------------------------------------------ */

static const char *const throttle_codes[] = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException", NULL,
};
static const char *const transient_codes[] = { "RequestTimeout", "RequestTimeoutException",
                                               "PriorRequestNotComplete", NULL };

static int in_list(const char *s, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* StandardRetryConditions: transient (connection errors, 500/502/503/504, timeout codes) or
 * throttled (the union of throttling codes botocore knows). */
static int is_retryable(long status, const char *code, int network_error)
{
    if (network_error)
        return 1;
    if (in_list(code, throttle_codes) || in_list(code, transient_codes))
        return 1;
    if (status == 500 || status == 502 || status == 503 || status == 504)
        return 1;
    return 0;
}

static double rand_unit(void)
{
    unsigned int r = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&r, sizeof r, 1, f) != 1)
            r = (unsigned int)time(NULL);
        fclose(f);
    }
    return (double)r / 4294967296.0;
}

static void sleep_seconds(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = { (time_t)s, (long)((s - floor(s)) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void awscli_on_sigint(int sig)
{
    (void)sig;
    /* InterruptExceptionHandler: a newline on stdout, exit 128 + SIGINT */
    ssize_t w = write(STDOUT_FILENO, "\n", 1);
    (void)w;
    _exit(130);
}

/* -- send ------------------------------------------------------------------------------------ */

typedef struct send_result {
    int network_error; /* no HTTP response */
    char net_msg[512];
    transport_response_t resp;
    int attempts;
    int max_attempts_reached;
} send_result_t;

/* The request's headers, and room for them. */
typedef struct headers {
    const char *list[8]; /* NULL-terminated */
    char ctype[64], target[128];
    char date_h[64], auth_h[1100], tok_h[4200], type_h[128], target_h[160];
} headers_t;

static void debug_transport(void *user, const char *line)
{
    const ctx_t *c = user;
    awscli_debug(c, "http: %s", line);
}

/* SigV4: X-Amz-Date, Authorization and the session token, after *nh headers. -1 if the
 * request could not be signed. */
static int sign_headers(const ctx_t *c, call_t *call, sigv4_key_cache_t *cache,
                        headers_t *h, size_t *nh)
{
    const evrec_credentials_t *cr = &call->cr;
    sigv4_header_t sh[3] = { { "Host", call->host }, { "Content-Type", h->ctype },
                             { "X-Amz-Target", h->target } };
    sigv4_request_t req = { c->op->method, sb_str(&call->sign_path), "", sh,
                            wire_is_json(c->op) ? 3 : 2, sb_str(&call->body), call->body.len,
                            NULL };
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    sigv4_params_t sp = { call->region, c->op->signing_name,
                          (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, 0, 0 };
    sigv4_credentials_t sc = { cr->access_key_id, cr->secret_access_key,
                               cr->session_token[0] ? cr->session_token : NULL };
    sigv4_signature_t sig;
    if (sigv4_sign(cache, &req, &sp, &sc, &sig) != EVREC_OK)
        return -1;
    snprintf(h->date_h, sizeof h->date_h, "X-Amz-Date: %s", sig.amz_date);
    snprintf(h->auth_h, sizeof h->auth_h, "Authorization: %s", sig.authorization);
    h->list[(*nh)++] = h->date_h;
    h->list[(*nh)++] = h->auth_h;
    if (cr->session_token[0]) {
        snprintf(h->tok_h, sizeof h->tok_h, "X-Amz-Security-Token: %s", cr->session_token);
        h->list[(*nh)++] = h->tok_h;
    }
    return 0;
}

/* rest-json: application/json; json: application/x-amz-json-1.1 and X-Amz-Target; then the
 * signature's headers when signing. -1 if the request could not be signed. */
static int build_headers(const ctx_t *c, call_t *call, sigv4_key_cache_t *cache,
                         headers_t *h)
{
    size_t nh = 0;
    int json = wire_is_json(c->op);
    snprintf(h->ctype, sizeof h->ctype, json ? "application/x-amz-json-%s" : "application/json",
             c->op->json_version);
    h->target[0] = '\0';
    if (json)
        snprintf(h->target, sizeof h->target, "%s.%s", c->op->target_prefix, c->op->op_name);
    snprintf(h->type_h, sizeof h->type_h, "Content-Type: %s", h->ctype);
    snprintf(h->target_h, sizeof h->target_h, "X-Amz-Target: %s", h->target);
    h->list[nh++] = h->type_h;
    if (json)
        h->list[nh++] = h->target_h;
    if (!c->g.no_sign_request && sign_headers(c, call, cache, h, &nh) != 0)
        return -1;
    h->list[nh] = NULL;
    return 0;
}

/* One attempt: r->resp holds the answer, or r->network_error the failure. -1 (and a network
 * error) if the request could not be signed: nothing was sent. */
static int send_once(ctx_t *c, transport_t *t, call_t *call, sigv4_key_cache_t *cache,
                     send_result_t *r)
{
    transport_response_clear(&r->resp);
    r->network_error = 0;
    headers_t h;
    if (build_headers(c, call, cache, &h) != 0) {
        r->network_error = 1;
        snprintf(r->net_msg, sizeof r->net_msg, "could not sign the request");
        return -1;
    }
    int signing = !c->g.no_sign_request;
    awscli_debug(c, "Making request for %s with params: method=%s url=%s", c->op->op_name,
                 c->op->method, call->url);
    awscli_debug(c, "Request headers: Content-Type: %s%s%s%s%s", h.ctype,
                 wire_is_json(c->op) ? ", X-Amz-Target: " : "", h.target,
                 signing ? ", X-Amz-Date, " : "", signing ? "Authorization: <redacted>" : "");
    awscli_debug(c, "Request body: %s", sb_str(&call->body));
    char err[512] = "";
    int rc = transport_send(t, c->op->method, call->url, h.list, sb_str(&call->body),
                            call->body.len, &r->resp, err, sizeof err);
    if (rc != EVREC_OK) {
        r->network_error = 1;
        snprintf(r->net_msg, sizeof r->net_msg, "%s", err);
        awscli_debug(c, "Request failed: %s (%s)", evrec_strerror(rc), err);
        r->resp.status = rc; /* keep the code for the message */
    } else {
        awscli_debug(c, "Response: status=%ld request-id=%s body=%s", r->resp.status,
                     r->resp.request_id, r->resp.body ? r->resp.body : "");
    }
    return 0;
}

/* After a failed attempt: 1 to try again (after the backoff), 0 to stop. */
static int retry_after(const ctx_t *c, send_result_t *r, int attempt, int max_attempts)
{
    char code[256] = "";
    if (!r->network_error) {
        sbuf_t msg = { 0 };
        wire_parse_error(c->op, r->resp.status, r->resp.error_type, r->resp.body,
                         r->resp.body_len, code, sizeof code, &msg);
        sb_free(&msg);
    }
    int retryable = is_retryable(r->network_error ? 0 : r->resp.status, code, r->network_error);
    /* MaxAttemptsChecker runs first: reaching the limit is recorded even for an error that
     * would not have been retried */
    if (attempt >= max_attempts) {
        r->max_attempts_reached = 1;
        return 0;
    }
    if (!retryable)
        return 0;
    /* ExponentialBackoff: rand(0, 1) * 2^(attempt - 1), at most 20 s. The adaptive mode's
     * client-side rate limiter only paces further requests; a CLI call makes one. */
    double delay = fmin(rand_unit() * pow(2, attempt - 1), 20.0);
    awscli_debug(c, "Retry needed, retrying request after delay of: %.3f", delay);
    sleep_seconds(delay);
    return 1;
}

static void send_request(ctx_t *c, transport_t *t, call_t *call, send_result_t *r)
{
    sigv4_key_cache_t cache;
    memset(&cache, 0, sizeof cache);
    for (int attempt = 1;; attempt++) {
        r->attempts = attempt;
        if (send_once(c, t, call, &cache, r) != 0)
            return;
        if (!r->network_error && r->resp.status < 300)
            return;
        if (!retry_after(c, r, attempt, call->max_attempts))
            return;
    }
}

/* -- output -------------------------------------------------------------------------------- */

/* shlex.split(s) (POSIX mode, no comments): words split at blanks, '...' literal, "..." with
 * \\ \" \$ \` escapes, a backslash elsewhere taking the next character. NULL-terminated;
 * NULL when out of memory. */
static char **shlex_split(const char *s)
{
    size_t cap = 8, n = 0;
    char **argv = calloc(cap, sizeof *argv);
    sbuf_t w = { 0 };
    int in_word = 0;
    if (!argv)
        return NULL;
    for (const char *p = s;; p++) {
        if (!*p || *p == ' ' || (*p >= '\t' && *p <= '\r')) {
            if (in_word) {
                char **g = n + 2 > cap ? realloc(argv, (cap *= 2) * sizeof *argv) : argv;
                char *word = g && !w.oom ? strdup(sb_str(&w)) : NULL;
                if (g)
                    argv = g;
                if (!word) { /* out of memory: no pager rather than a command cut short */
                    while (n > 0)
                        free(argv[--n]);
                    free(argv);
                    sb_free(&w);
                    return NULL;
                }
                argv[n++] = word;
                argv[n] = NULL;
                w.len = 0;
                in_word = 0;
            }
            if (!*p)
                break;
            continue;
        }
        in_word = 1;
        if (*p == '\'') {
            for (p++; *p && *p != '\''; p++)
                sb_putc(&w, *p);
            if (!*p)
                p--;
        } else if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1] && strchr("\\\"$`\n", p[1]))
                    p++;
                sb_putc(&w, *p);
            }
            if (!*p)
                p--;
        } else if (*p == '\\' && p[1]) {
            sb_putc(&w, *++p);
        } else {
            sb_putc(&w, *p);
        }
    }
    sb_free(&w);
    return argv;
}

/* Output goes through the pager when stdout is a terminal and there is one (LESS=FRX unless
 * LESS is set), as the AWS CLI does; a pager that cannot start is its error (253). */
static int page_or_print(const ctx_t *c, const char *text, size_t len, int tty)
{
    char pager[1024];
    if (tty)
        awscli_pager(c, pager, sizeof pager);
    if (!tty || !pager[0]) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        return RC_OK;
    }
    char **argv = shlex_split(pager);
    if (!argv || !argv[0]) {
        free(argv);
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        return RC_OK;
    }
    fflush(stdout);
    if (!getenv("LESS"))
        setenv("LESS", "FRX", 1);
    int rc = RC_OK, status = 0;
    int e = port_run_feed((const char *const *)argv, text, len, &status);
    if (e < 0) {
        /* Python's FileNotFoundError text */
        cJSON *name = cJSON_CreateString(argv[0]);
        sbuf_t r = { 0 };
        pyjson_repr(&r, name);
        cJSON_Delete(name);
        rc = awscli_fail(RC_CONFIG, "Unable to redirect output to pager. Received the following error "
                             "when opening pager:\n[Errno %d] %s: %s\n\nLearn more about "
                             "configuring the output pager by running \"aws help config-vars\".",
                  -e, strerror(-e), sb_str(&r));
        sb_free(&r);
    }
    for (size_t i = 0; argv[i]; i++)
        free(argv[i]);
    free(argv);
    return rc;
}

int awscli_print_output(ctx_t *c, const cJSON *response)
{
    const cJSON *data = response;
    cJSON *queried = NULL;
    if (c->g.query) {
        char err[512];
        if (jp_search(c->g.query, response, &queried, err, sizeof err) != 0)
            return awscli_fail(RC_GENERAL, "%s", err);
        data = queried;
    }
    out_options_t o = { OUT_JSON, c->op->op_name, 0, 80 };
    const char *fmt = c->g.output;
    char cfg_out[64];
    if (!fmt) {
        const char *env = getenv("AWS_DEFAULT_OUTPUT");
        if (env && *env) {
            fmt = env;
        } else {
            awscli_config_get(c->g.profile ? c->g.profile : (getenv("AWS_PROFILE") ? getenv("AWS_PROFILE") : "default"),
                       "output", cfg_out, sizeof cfg_out);
            fmt = cfg_out[0] ? cfg_out : "json";
        }
    }
    if (strcmp(fmt, "text") == 0)
        o.format = OUT_TEXT;
    else if (strcmp(fmt, "table") == 0)
        o.format = OUT_TABLE;
    else if (strcmp(fmt, "yaml") == 0)
        o.format = OUT_YAML;
    else if (strcmp(fmt, "yaml-stream") == 0)
        o.format = OUT_YAML_STREAM;
    else if (strcmp(fmt, "json") != 0) {
        cJSON_Delete(queried);
        return awscli_fail(RC_GENERAL, "Unknown output type: %s", fmt);
    }
    const char *color = c->g.color ? c->g.color : "auto";
    int tty = isatty(STDOUT_FILENO);
    o.color = strcmp(color, "on") == 0 || (strcmp(color, "auto") == 0 && tty);
    struct winsize ws;
    if (tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        o.terminal_width = ws.ws_col;
    sbuf_t b = { 0 };
    char ferr[256];
    if (aws_format(&b, data, &o, ferr, sizeof ferr) != 0) {
        sb_free(&b);
        cJSON_Delete(queried);
        return awscli_fail(RC_GENERAL, "%s", ferr);
    }
    int rc = page_or_print(c, sb_str(&b), b.len, tty);
    sb_free(&b);
    cJSON_Delete(queried);
    return rc;
}

/* -- the answer ------------------------------------------------------------------------------ */

static void result_metadata(const ctx_t *c, const send_result_t *r)
{
    awscli_debug(c, "Attempts: %d%s", r->attempts, r->max_attempts_reached ? " (max reached)" : "");
}

/* No answer: the AWS CLI's message for what urllib3 ran into. */
static int report_network_error(call_t *call, const send_result_t *r)
{
    long code = r->resp.status;
    const char *url = call->url;
    const char *ssl = strstr(r->net_msg, "SSL certificate problem: ");
    if (code == EVREC_E_NET_TIMEOUT)
        return awscli_fail(RC_GENERAL, "%s timeout on endpoint URL: \"%s\"",
                           strstr(r->net_msg, "onnect") ? "Connect" : "Read", url);
    if (code == EVREC_E_TLS && ssl)
        /* OpenSSL's words as Python's ssl module puts them */
        return awscli_fail(RC_GENERAL, "SSL validation failed for %s [SSL: "
                                       "CERTIFICATE_VERIFY_FAILED] certificate verify failed: %s",
                           url, ssl + 25);
    if (code == EVREC_E_TLS)
        return awscli_fail(RC_GENERAL, "SSL validation failed for %s %s", url, r->net_msg);
    if (code == EVREC_E_NET || code == EVREC_E_RESPONSE)
        return awscli_fail(RC_GENERAL, "Connection was closed before we received a valid "
                                       "response from endpoint URL: \"%s\".", url);
    return awscli_fail(RC_GENERAL, "Could not connect to the endpoint URL: \"%s\"", url);
}

/* An error answer (after the retries): ClientError's message, 254. */
static int report_error_answer(const ctx_t *c, const send_result_t *r)
{
    char code[256];
    sbuf_t msg = { 0 };
    wire_parse_error(c->op, r->resp.status, r->resp.error_type, r->resp.body, r->resp.body_len,
                     code, sizeof code, &msg);
    char retry_info[64] = "";
    if (r->max_attempts_reached)
        snprintf(retry_info, sizeof retry_info, " (reached max retries: %d)", r->attempts - 1);
    int rc = awscli_fail(RC_CLIENT, "An error occurred (%s) when calling the %s operation%s: %s",
                         code[0] ? code : "Unknown", c->op->op_name, retry_info, sb_str(&msg));
    sb_free(&msg);
    return rc;
}

/* A successful answer, parsed as botocore does, then printed. */
static int report_output(ctx_t *c, const send_result_t *r)
{
    cJSON *out = NULL;
    sbuf_t perr = { 0 };
    int rc;
    if (wire_parse_output(c->op, r->resp.body, r->resp.body_len, r->resp.request_id[0] != '\0',
                          &out, &perr) != 0)
        rc = awscli_fail(RC_GENERAL, "%s", sb_str(&perr));
    else
        rc = awscli_print_output(c, out);
    sb_free(&perr);
    cJSON_Delete(out);
    return rc;
}

int awscli_send_and_report(ctx_t *c, call_t *call)
{
    transport_config_t tc;
    memset(&tc, 0, sizeof tc);
    tc.ca_bundle = call->ca_bundle;
    tc.no_verify_tls = c->g.no_verify_ssl;
    tc.connect_timeout_ms = (uint32_t)(call->connect_ms ? call->connect_ms : 24L * 3600 * 1000);
    tc.request_timeout_ms = (uint32_t)(call->read_ms ? call->read_ms : 24L * 3600 * 1000);
    tc.max_response_bytes = 16u << 20;
    tc.verbose = c->debug;
    tc.log_fn = debug_transport;
    tc.log_user = c;
    transport_t *t = NULL;
    if (transport_new(&t, &tc) != EVREC_OK)
        return awscli_fail(RC_GENERAL, "could not initialise the HTTP client");
    send_result_t r;
    memset(&r, 0, sizeof r);
    send_request(c, t, call, &r);
    transport_free(t);
    result_metadata(c, &r);
    mbedtls_platform_zeroize(&call->cr, sizeof call->cr);
    int rc = r.network_error          ? report_network_error(call, &r)
             : r.resp.status >= 300   ? report_error_answer(c, &r)
                                      : report_output(c, &r);
    transport_response_clear(&r.resp);
    return rc;
}
