/*
 * `evrec pinpoint put-events`, `evrec personalize-events put-events`, `evrec kinesis put-records`
 * and `evrec firehose put-record-batch`: the AWS CLI's commands of the same name. Same parameters and global options, same parameter processing (file://,
 * shorthand, JSON), botocore's validation, the same request, the standard retry mode, and the
 * AWS CLI v2's output formats, error messages and exit codes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <signal.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "aws_output.h"
#include "aws_wire.h"
#include "aws_yaml.h"
#include "cli.h"
#include "credentials.h"
#include "evrec.h"
#include "jmespath.h"
#include "model.h"
#include "port.h"
#include "pyjson.h"
#include "shorthand.h"
#include "sigv4.h"
#include "transport.h"
#include "validate.h"

enum { RC_OK = 0, RC_PARAM = 252, RC_CONFIG = 253, RC_CLIENT = 254, RC_GENERAL = 255 };

/* -- global options ------------------------------------------------------------------------- */

typedef struct gopts {
    const char *endpoint_url, *region, *profile, *output, *query, *ca_bundle, *color;
    const char *binary_format, *read_timeout, *connect_timeout;
    int debug, no_verify_ssl, no_sign_request, no_paginate, no_cli_pager;
} gopts_t;

typedef struct gopt_def {
    const char *name;
    int takes_value;
    size_t offset; /* of the const char * or int field */
    const char *const *choices;
} gopt_def_t;

static const char *const output_choices[] = { "json", "text", "table", "yaml", "yaml-stream", NULL };
static const char *const color_choices[] = { "on", "off", "auto", NULL };
static const char *const binfmt_choices[] = { "base64", "raw-in-base64-out", NULL };

#define GOPT_S(n, f, ch) { n, 1, offsetof(gopts_t, f), ch }
#define GOPT_F(n, f) { n, 0, offsetof(gopts_t, f), NULL }
static const gopt_def_t gopt_defs[] = {
    GOPT_F("debug", debug),
    GOPT_S("endpoint-url", endpoint_url, NULL),
    GOPT_F("no-verify-ssl", no_verify_ssl),
    GOPT_F("no-paginate", no_paginate),
    GOPT_S("output", output, output_choices),
    GOPT_S("query", query, NULL),
    GOPT_S("profile", profile, NULL),
    GOPT_S("region", region, NULL),
    GOPT_S("color", color, color_choices),
    GOPT_F("no-sign-request", no_sign_request),
    GOPT_S("ca-bundle", ca_bundle, NULL),
    GOPT_S("cli-read-timeout", read_timeout, NULL),
    GOPT_S("cli-connect-timeout", connect_timeout, NULL),
    GOPT_S("cli-binary-format", binary_format, binfmt_choices),
    GOPT_F("no-cli-pager", no_cli_pager),
    GOPT_F("cli-auto-prompt", no_cli_pager),
    GOPT_F("no-cli-auto-prompt", no_cli_pager),
};

static const gopt_def_t *find_gopt(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof gopt_defs / sizeof gopt_defs[0]; i++)
        if (strlen(gopt_defs[i].name) == len && strncmp(gopt_defs[i].name, name, len) == 0)
            return &gopt_defs[i];
    return NULL;
}

/* -- errors as the AWS CLI prints them ------------------------------------------------------- */

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char USAGE[] =
    "usage: evrec [options] <command> <subcommand> [<subcommand> ...] [parameters]\n"
    "To see help text, you can run:\n"
    "\n"
    "  evrec help\n"
    "  evrec <command> help\n"
    "  evrec <command> <subcommand> help\n";

/* argparse's error(): usage, then "evrec: error: ..." */
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("\n", stderr);
    fputs(USAGE, stderr);
    fputs("\nevrec: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
}

static void invalid_choice(const char *opt, const char *const *choices)
{
    /* awscli's argparser lists the choices in two columns of 40 */
    sbuf_t b = { 0 };
    sb_printf(&b, "argument %s%s: Invalid choice, valid choices are:\n\n",
              strcmp(opt, "command") && strcmp(opt, "operation") ? "--" : "", opt);
    int i;
    for (i = 0; choices[i]; i++) {
        if (i % 2 == 0)
            sb_printf(&b, "%-40s", choices[i]);
        else
            sb_printf(&b, " | %-40s%s", choices[i], choices[i + 1] ? "\n" : "");
    }
    usage_error("%s", sb_str(&b));
    sb_free(&b);
}

/* FilteredExceptionHandler: "\n<message>\n" */
static int fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int rc, const char *fmt, ...)
{
    va_list ap;
    fputs("\n", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    return rc;
}

/* -- debug log (secrets never printed) ------------------------------------------------------- */

typedef struct ctx {
    gopts_t g;
    const model_operation_t *op;
    int debug;
} ctx_t;

static void debug(const ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void debug(const ctx_t *c, const char *fmt, ...)
{
    if (!c->debug)
        return;
    va_list ap;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s - evrec - DEBUG - ", when);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void debug_transport(void *user, const char *line)
{
    const ctx_t *c = user;
    debug(c, "http: %s", line);
}

/* -- parameter values: file://, shorthand, JSON --------------------------------------------- */

typedef struct arg_value {
    const model_operation_t *op;
    const model_member_t *member;
    char **values; /* borrowed argv strings */
    size_t nvalues;
} arg_value_t;

static char *expand_path(const char *path)
{
    /* os.path.expandvars(os.path.expanduser(p)), for $VAR, ${VAR} and a leading ~ */
    sbuf_t b = { 0 };
    const char *p = path;
    if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
        const char *home = getenv("HOME");
        sb_puts(&b, home ? home : "");
        p++;
    }
    while (*p) {
        if (*p == '$') {
            const char *s = p + 1;
            int brace = *s == '{';
            if (brace)
                s++;
            size_t n = 0;
            while (s[n] && (s[n] == '_' || (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
                            (s[n] >= '0' && s[n] <= '9')))
                n++;
            if (n && (!brace || s[n] == '}')) {
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)n, s);
                const char *v = getenv(name);
                if (v) {
                    sb_puts(&b, v);
                    p = s + n + (brace ? 1 : 0);
                    continue;
                }
            }
        }
        sb_putc(&b, *p++);
    }
    char *r = strdup(sb_str(&b));
    sb_free(&b);
    return r;
}

/* get_paramfile: 1 and *data (malloc'ed) if value names a file; 0 if not a file:// value;
 * -1 with the message on a read error. */
static int load_paramfile(const char *value, char **data, size_t *len, sbuf_t *msg)
{
    const char *prefix = NULL;
    if (strncmp(value, "file://", 7) == 0)
        prefix = "file://";
    else if (strncmp(value, "fileb://", 8) == 0)
        prefix = "fileb://";
    if (!prefix)
        return 0;
    char *path = expand_path(value + strlen(prefix));
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        sbuf_t r = { 0 };
        cJSON *ps = cJSON_CreateString(path);
        pyjson_repr(&r, ps);
        cJSON_Delete(ps);
        sb_printf(msg, "Unable to load paramfile %s: [Errno %d] %s: %s", value, e, strerror(e),
                  sb_str(&r));
        sb_free(&r);
        free(path);
        return -1;
    }
    sbuf_t b = { 0 };
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_putn(&b, buf, n);
    fclose(f);
    free(path);
    sb_str(&b);
    *data = b.data;
    *len = b.len;
    return 1;
}

static const char *lstrip(const char *s)
{
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    return s;
}

/* int(v) as Python reads a string: blanks around, a sign, digits with single underscores
 * between them. -1 if it is not one. */
static int py_int(const char *v, long long *out)
{
    const char *p = lstrip(v);
    int neg = *p == '-';
    if (*p == '+' || *p == '-')
        p++;
    long long n = 0;
    int digits = 0;
    for (; *p; p++) {
        if (*p == '_' && digits && p[1] >= '0' && p[1] <= '9')
            continue;
        if (*p < '0' || *p > '9')
            break;
        if (n > (LLONG_MAX - 9) / 10)
            return -1;
        n = n * 10 + (*p - '0');
        digits++;
    }
    if (!digits || *lstrip(p))
        return -1;
    *out = neg ? -n : n;
    return 0;
}

/* int()'s ValueError, as the AWS CLI prints it (255). */
static int int_literal_error(const char *v)
{
    cJSON *sv = cJSON_CreateString(v);
    sbuf_t r = { 0 };
    pyjson_repr(&r, sv);
    cJSON_Delete(sv);
    int rc = fail(RC_GENERAL, "invalid literal for int() with base 10: %s", sb_str(&r));
    sb_free(&r);
    return rc;
}

static int param_error(const char *cli_name, const char *msg)
{
    return fail(RC_PARAM, "Error parsing parameter '--%s': %s", cli_name, msg);
}

static int json_arg(const char *cli_name, const char *text, size_t len, cJSON **out)
{
    char err[512];
    if (pyjson_parse(text, len, out, err, sizeof err) == 0)
        return 0;
    sbuf_t m = { 0 };
    sb_printf(&m, "Invalid JSON: %s\nJSON received: ", err);
    sb_putn(&m, text, len);
    int rc = param_error(cli_name, sb_str(&m));
    sb_free(&m);
    return rc;
}

static int is_complex(int shape)
{
    const model_shape_t *s = &model_shapes[shape];
    if (s->type == MT_STRUCTURE || s->type == MT_MAP)
        return 1;
    if (s->type == MT_LIST) {
        model_type_t t = model_shapes[s->member].type;
        return t == MT_STRUCTURE || t == MT_LIST || t == MT_MAP;
    }
    return 0;
}

static int shorthand_arg(const char *cli_name, const char *text, cJSON **out)
{
    char err[2048];
    if (shorthand_parse(text, out, err, sizeof err) != 0)
        return param_error(cli_name, err);
    return 0;
}

/* _unpack_cli_arg for a single string value of a shape. */
static int unpack_one(const char *cli_name, int shape, const char *v, size_t len, cJSON **out)
{
    const model_shape_t *s = &model_shapes[shape];
    switch (s->type) {
    case MT_STRUCTURE:
    case MT_MAP:
        if (lstrip(v)[0] == '{')
            return json_arg(cli_name, v, len, out);
        if (!lstrip(v)[0])
            return fail(RC_GENERAL, "string index out of range");
        {
            sbuf_t m = { 0 };
            sb_puts(&m, "Invalid JSON:\n");
            sb_putn(&m, v, len);
            int rc = param_error(cli_name, sb_str(&m));
            sb_free(&m);
            return rc;
        }
    case MT_LIST:
        if (lstrip(v)[0] == '[')
            return json_arg(cli_name, v, len, out);
        /* Python iterates the characters of the string */
        *out = cJSON_CreateArray();
        for (size_t i = 0; i < len; i++) {
            char ch[2] = { v[i], 0 };
            cJSON *e = NULL;
            int rc = unpack_one(cli_name, s->member, ch, 1, &e);
            if (rc) {
                cJSON_Delete(*out);
                *out = NULL;
                return rc;
            }
            cJSON_AddItemToArray(*out, e);
        }
        return 0;
    case MT_INTEGER:
    case MT_LONG: {
        long long n;
        if (py_int(v, &n) != 0)
            return int_literal_error(v);
        *out = pyjson_int(n);
        return 0;
    }
    case MT_DOUBLE:
    case MT_FLOAT: {
        char *end;
        double d = strtod(v, &end);
        if (end == v || *lstrip(end))
            return fail(RC_GENERAL, "could not convert string to float: '%s'", v);
        *out = pyjson_float(d);
        return 0;
    }
    case MT_BOOLEAN:
        *out = strcasecmp(v, "false") == 0 ? cJSON_CreateFalse()
                                            : (v[0] ? cJSON_CreateTrue() : cJSON_CreateFalse());
        return 0;
    default:
        *out = cJSON_CreateString(v);
        return 0;
    }
}

/* ParamShorthand._uses_old_list_case, for the operations evrec has: a list of structures of
 * one member takes plain values (`--records A B` is [{"Data": "A"}, {"Data": "B"}]). */
static int old_list_case(const model_operation_t *op, const model_member_t *m)
{
    const model_shape_t *s = &model_shapes[m->shape];
    return strcmp(op->service_cli, "firehose") == 0 && strcmp(op->op_cli, "put-record-batch") == 0 &&
           strcmp(m->cli_name, "records") == 0 && s->type == MT_LIST &&
           model_shapes[s->member].type == MT_STRUCTURE && model_shapes[s->member].nmembers == 1;
}

/* unpack_argument (file://), ParamShorthandParser, then unpack_cli_arg. */
static int unpack_arg(const arg_value_t *a, cJSON **out)
{
    const model_member_t *m = a->member;
    const char *cli = m->cli_name;
    int shape = m->shape;
    const model_shape_t *s = &model_shapes[shape];
    int is_list = s->type == MT_LIST;
    char *file = NULL;
    size_t flen = 0;
    /* a list with one value is looked at as that value */
    int single = !is_list || a->nvalues == 1;
    if (single) {
        sbuf_t msg = { 0 };
        int r = load_paramfile(a->values[0], &file, &flen, &msg);
        if (r < 0) {
            int rc = param_error(cli, sb_str(&msg));
            sb_free(&msg);
            return rc;
        }
        sb_free(&msg);
    }
    int rc;
    if (file || !is_list) {
        const char *v = file ? file : a->values[0];
        size_t len = file ? flen : strlen(v);
        const char *st = lstrip(v);
        if (is_complex(shape) && !(st[0] == '[' || st[0] == '{')) {
            rc = shorthand_arg(cli, v, out);
            if (rc == 0) {
                char err[512];
                if (shorthand_apply_model(out, shape, err, sizeof err) != 0)
                    rc = fail(RC_GENERAL, "%s", err);
            }
        } else {
            rc = unpack_one(cli, shape, v, len, out);
        }
        free(file);
        return rc;
    }
    /* a list given as one or more command-line values */
    const char *first = lstrip(a->values[0]);
    if (old_list_case(a->op, m) && !(first[0] == '[' || first[0] == '{')) {
        /* ParamShorthand's deprecated case: each value is the structure's one member */
        const model_shape_t *st = &model_shapes[s->member];
        cJSON *list = cJSON_CreateArray();
        for (size_t i = 0; i < a->nvalues; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, st->members[0].name, a->values[i]);
            cJSON_AddItemToArray(list, e);
        }
        *out = list;
        return 0;
    }
    if (is_complex(shape) && !(first[0] == '[' || first[0] == '{')) {
        cJSON *list = cJSON_CreateArray();
        for (size_t i = 0; i < a->nvalues; i++) {
            cJSON *e = NULL;
            rc = shorthand_arg(cli, a->values[i], &e);
            if (rc) {
                cJSON_Delete(list);
                return rc;
            }
            cJSON_AddItemToArray(list, e);
        }
        char err[512];
        if (shorthand_apply_model(&list, shape, err, sizeof err) != 0) {
            cJSON_Delete(list);
            return fail(RC_GENERAL, "%s", err);
        }
        *out = list;
        return 0;
    }
    if (a->nvalues == 1 && first[0] == '[')
        return json_arg(cli, a->values[0], strlen(a->values[0]), out);
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < a->nvalues; i++) {
        cJSON *e = NULL;
        rc = unpack_one(cli, s->member, a->values[i], strlen(a->values[i]), &e);
        if (rc) {
            cJSON_Delete(list);
            return rc;
        }
        cJSON_AddItemToArray(list, e);
    }
    *out = list;
    return 0;
}

/* -- configuration --------------------------------------------------------------------------- */

static char *read_text_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    sbuf_t b = { 0 };
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_putn(&b, buf, n);
    fclose(f);
    sb_str(&b);
    return b.data;
}

static char *config_path(const char *env, const char *rel)
{
    const char *p = getenv(env);
    if (p && *p)
        return expand_path(p);
    const char *home = getenv("HOME");
    char *r = NULL;
    if (asprintf(&r, "%s/%s", home ? home : "", rel) < 0)
        return NULL;
    return r;
}

/* A profile's setting from the config file ("" when absent). */
static void config_get(const char *profile, const char *key, char *out, size_t len)
{
    out[0] = '\0';
    char *path = config_path("AWS_CONFIG_FILE", ".aws/config");
    char *text = path ? read_text_file(path) : NULL;
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
        char *text = paths[i] ? read_text_file(paths[i]) : NULL;
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
        char *text = path ? read_text_file(path) : NULL;
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

/* -- retries (botocore's standard and legacy modes) ------------------------------------------ */

typedef enum { RETRY_STANDARD, RETRY_ADAPTIVE } retry_mode_t;

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

/* -- send ------------------------------------------------------------------------------------ */

static void on_sigint(int sig)
{
    (void)sig;
    /* InterruptExceptionHandler: a newline on stdout, exit 128 + SIGINT */
    ssize_t w = write(STDOUT_FILENO, "\n", 1);
    (void)w;
    _exit(130);
}

/* --cli-read-timeout / --cli-connect-timeout: the AWS CLI reads them with int() as soon as the
 * global options are parsed (255 and Python's message for anything else). */
static int timeout_syntax(const char *v)
{
    long long n;
    if (!v || py_int(v, &n) == 0)
        return 0;
    return int_literal_error(v);
}

/* Milliseconds (0: none); urllib3 refuses a negative value when the request is made. */
static long parse_timeout(const char *v, long dflt, const char *which)
{
    long long n;
    if (!v || py_int(v, &n) != 0)
        return dflt;
    if (n < 0) {
        fail(RC_GENERAL, "Attempted to set %s timeout to %lld, but the timeout cannot be set to "
                         "a value less than or equal to 0.", which, n);
        return -1;
    }
    return n > LONG_MAX / 1000 ? LONG_MAX : (long)(n * 1000);
}

typedef struct send_result {
    int network_error;        /* no HTTP response */
    char net_msg[512];
    transport_response_t resp;
    int attempts;
    int max_attempts_reached;
} send_result_t;

static void send_request(ctx_t *c, transport_t *t, const char *url, const char *host,
                         const char *path, const char *body, size_t body_len, const char *region,
                         const evrec_credentials_t *cr, retry_mode_t mode, int max_attempts,
                         send_result_t *r)
{
    sigv4_key_cache_t cache;
    memset(&cache, 0, sizeof cache);
    for (int attempt = 1;; attempt++) {
        transport_response_clear(&r->resp);
        r->attempts = attempt;
        r->network_error = 0;
        const char *hdrs[8];
        size_t nh = 0;
        char date_h[64], auth_h[1100], tok_h[4200], type_h[128], target_h[160];
        /* rest-json: application/json; json: application/x-amz-json-1.1 and X-Amz-Target */
        char ctype[64], target[128] = "";
        int json = wire_is_json(c->op);
        snprintf(ctype, sizeof ctype, json ? "application/x-amz-json-%s" : "application/json",
                 c->op->json_version);
        if (json)
            snprintf(target, sizeof target, "%s.%s", c->op->target_prefix, c->op->op_name);
        snprintf(type_h, sizeof type_h, "Content-Type: %s", ctype);
        snprintf(target_h, sizeof target_h, "X-Amz-Target: %s", target);
        hdrs[nh++] = type_h;
        if (json)
            hdrs[nh++] = target_h;
        if (cr) {
            sigv4_header_t sh[3] = { { "Host", host }, { "Content-Type", ctype },
                                     { "X-Amz-Target", target } };
            sigv4_request_t req = { c->op->method, path, "", sh, json ? 3 : 2, body, body_len, NULL };
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            sigv4_params_t sp = { region, c->op->signing_name,
                                  (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, 0, 0 };
            sigv4_credentials_t sc = { cr->access_key_id, cr->secret_access_key,
                                       cr->session_token[0] ? cr->session_token : NULL };
            sigv4_signature_t sig;
            if (sigv4_sign(&cache, &req, &sp, &sc, &sig) != EVREC_OK) {
                r->network_error = 1;
                snprintf(r->net_msg, sizeof r->net_msg, "could not sign the request");
                return;
            }
            snprintf(date_h, sizeof date_h, "X-Amz-Date: %s", sig.amz_date);
            snprintf(auth_h, sizeof auth_h, "Authorization: %s", sig.authorization);
            hdrs[nh++] = date_h;
            hdrs[nh++] = auth_h;
            if (cr->session_token[0]) {
                snprintf(tok_h, sizeof tok_h, "X-Amz-Security-Token: %s", cr->session_token);
                hdrs[nh++] = tok_h;
            }
        }
        hdrs[nh] = NULL;
        debug(c, "Making request for %s with params: method=%s url=%s", c->op->op_name,
              c->op->method, url);
        debug(c, "Request headers: Content-Type: %s%s%s%s%s", ctype, json ? ", X-Amz-Target: " : "",
              target, cr ? ", X-Amz-Date, " : "", cr ? "Authorization: <redacted>" : "");
        debug(c, "Request body: %s", body);
        char err[512] = "";
        int rc = transport_send(t, c->op->method, url, hdrs, body, body_len, &r->resp, err,
                                sizeof err);
        const char *code = "";
        if (rc != EVREC_OK) {
            r->network_error = 1;
            snprintf(r->net_msg, sizeof r->net_msg, "%s", err);
            r->net_msg[sizeof r->net_msg - 1] = '\0';
            debug(c, "Request failed: %s (%s)", evrec_strerror(rc), err);
            /* keep the code for the message */
            r->resp.status = rc;
        } else {
            debug(c, "Response: status=%ld request-id=%s body=%s", r->resp.status,
                  r->resp.request_id, r->resp.body ? r->resp.body : "");
            if (r->resp.status < 300)
                return;
        }
        char ecode[256] = "";
        if (!r->network_error) {
            sbuf_t msg = { 0 };
            wire_parse_error(c->op, r->resp.status, r->resp.error_type, r->resp.body, r->resp.body_len,
                             ecode, sizeof ecode, &msg);
            sb_free(&msg);
            code = ecode;
        }
        int under = attempt < max_attempts;
        int retryable = is_retryable(r->network_error ? 0 : r->resp.status, code,
                                     r->network_error);
        /* MaxAttemptsChecker runs first: reaching the limit is recorded even for an error that
         * would not have been retried */
        if (!under) {
            r->max_attempts_reached = 1;
            return;
        }
        if (!retryable)
            return;
        /* ExponentialBackoff: rand(0, 1) * 2^(attempt - 1), at most 20 s. The adaptive mode's
         * client-side rate limiter only paces further requests; a CLI call makes one. */
        (void)mode;
        double delay = fmin(rand_unit() * pow(2, attempt - 1), 20.0);
        debug(c, "Retry needed, retrying request after delay of: %.3f", delay);
        sleep_seconds(delay);
    }
}

/* -- argument parsing ------------------------------------------------------------------------ */

typedef struct parsed {
    gopts_t g;
    const char *service, *operation;
    arg_value_t args[16];
    size_t nargs;
    const char *cli_input_json, *cli_input_yaml;
    const char *skeleton; /* NULL: not asked; "input" default */
    sbuf_t unknown;       /* "--bogus, 1" */
    int help;
} parsed_t;

static int is_option(const char *a) { return a[0] == '-' && a[1] == '-' && a[2]; }

static void add_unknown(parsed_t *p, const char *a)
{
    if (p->unknown.len)
        sb_puts(&p->unknown, ", ");
    sb_puts(&p->unknown, a);
}

/* Returns -1 after printing an argparse error. */
static int take_global(parsed_t *p, const gopt_def_t *d, const char *inline_val, int argc,
                       char **argv, int *i)
{
    char *base = (char *)&p->g;
    if (!d->takes_value) {
        if (inline_val) {
            usage_error("argument --%s: ignored explicit argument '%s'", d->name, inline_val);
            return -1;
        }
        *(int *)(base + d->offset) = 1;
        return 0;
    }
    const char *v = inline_val;
    if (!v) {
        if (*i + 1 >= argc || (argv[*i + 1][0] == '-' && argv[*i + 1][1] == '-')) {
            usage_error("argument --%s: expected one argument", d->name);
            return -1;
        }
        v = argv[++*i];
    }
    if (d->choices) {
        int ok = 0;
        for (int k = 0; d->choices[k]; k++)
            ok |= strcmp(d->choices[k], v) == 0;
        if (!ok) {
            invalid_choice(d->name, d->choices);
            return -1;
        }
    }
    *(const char **)(base + d->offset) = v;
    return 0;
}

static const model_member_t *find_cli_member(const model_operation_t *op, const char *name,
                                             size_t len)
{
    const model_shape_t *in = &model_shapes[op->input];
    for (size_t i = 0; i < in->nmembers; i++)
        if (strlen(in->members[i].cli_name) == len &&
            strncmp(in->members[i].cli_name, name, len) == 0)
            return &in->members[i];
    return NULL;
}

static const model_operation_t *find_operation(const char *service, const char *operation)
{
    for (size_t i = 0; i < model_noperations; i++)
        if (strcmp(model_operations[i].service_cli, service) == 0 &&
            (!operation || strcmp(model_operations[i].op_cli, operation) == 0))
            return &model_operations[i];
    return NULL;
}

/* The operation parser's own options, in the order the AWS CLI adds them. */
static size_t op_options(const model_operation_t *op, const char **names, size_t cap)
{
    size_t n = 0;
    const model_shape_t *in = &model_shapes[op->input];
    for (size_t i = 0; i < in->nmembers && n < cap; i++)
        names[n++] = in->members[i].cli_name;
    static const char *const extra[] = { "cli-input-json", "cli-input-yaml",
                                         "generate-cli-skeleton" };
    for (size_t i = 0; i < 3 && n < cap; i++)
        names[n++] = extra[i];
    return n;
}

/* A long option that is not exactly one of ours: a unique prefix of a global option (*d), else
 * (with an operation) of one of its options (*full), else nothing (unknown). -1 after the
 * usage error for an ambiguous prefix. */
static int resolve_prefix(const char *arg, const char *name, size_t nlen,
                          const model_operation_t *op, const gopt_def_t **d, const char **full)
{
    const char *names[64];
    size_t n = 0, hits = 0, first = 0;
    for (size_t i = 0; i < sizeof gopt_defs / sizeof gopt_defs[0]; i++)
        names[n++] = gopt_defs[i].name;
    size_t nglobal = n;
    for (int pass = 0; pass < 2; pass++) {
        size_t from = pass ? nglobal : 0;
        if (pass == 1) {
            if (!op)
                return 0;
            n = nglobal + op_options(op, names + nglobal, 64 - nglobal);
            for (size_t i = nglobal; i < n; i++)
                if (strlen(names[i]) == nlen && strncmp(names[i], name, nlen) == 0) {
                    *full = names[i];
                    return 0;
                }
        }
        hits = 0;
        for (size_t i = from; i < (pass ? n : nglobal); i++)
            if (strlen(names[i]) > nlen && strncmp(names[i], name, nlen) == 0) {
                if (!hits)
                    first = i;
                hits++;
            }
        if (hits == 1) {
            if (pass == 0)
                *d = &gopt_defs[first];
            else
                *full = names[first];
            return 0;
        }
        if (hits > 1) {
            sbuf_t m = { 0 };
            for (size_t i = from; i < (pass ? n : nglobal); i++)
                if (strlen(names[i]) > nlen && strncmp(names[i], name, nlen) == 0)
                    sb_printf(&m, "%s--%s", m.len ? ", " : "", names[i]);
            usage_error("ambiguous option: %s could match %s", arg, sb_str(&m));
            sb_free(&m);
            return -1;
        }
    }
    return 0;
}

static int parse_argv(int argc, char **argv, parsed_t *p, const model_operation_t **opp)
{
    const model_operation_t *op = NULL;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (!is_option(a)) {
            if (!p->service) {
                p->service = a;
            } else if (!p->operation) {
                p->operation = a;
                op = find_operation(p->service, a);
            } else if (strcmp(a, "help") == 0 && op) {
                p->help = 1;
            } else {
                add_unknown(p, a);
            }
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const char *inline_val = eq ? eq + 1 : NULL;
        const gopt_def_t *d = find_gopt(name, nlen);
        /* argparse's abbreviations: the global parser first takes a unique prefix of one of its
         * options, then the operation's parser one of its own; more than one is an error */
        if (!d && !(nlen == 4 && strncmp(name, "help", 4) == 0)) {
            const char *full = NULL;
            int r = resolve_prefix(a, name, nlen, op, &d, &full);
            if (r < 0)
                return RC_PARAM;
            if (full) {
                name = full;
                nlen = strlen(full);
            }
        }
        if (d) {
            if (take_global(p, d, inline_val, argc, argv, &i) != 0)
                return RC_PARAM;
            continue;
        }
        if (nlen == 4 && strncmp(name, "help", 4) == 0) {
            p->help = 1;
            continue;
        }
        if (!op) {
            add_unknown(p, a);
            continue;
        }
        /* operation arguments */
        const char **special = NULL;
        if (nlen == 14 && strncmp(name, "cli-input-json", nlen) == 0)
            special = &p->cli_input_json;
        else if (nlen == 14 && strncmp(name, "cli-input-yaml", nlen) == 0)
            special = &p->cli_input_yaml;
        if (special) {
            if (!inline_val && (i + 1 >= argc || is_option(argv[i + 1]))) {
                usage_error("argument --%.*s: expected one argument", (int)nlen, name);
                return RC_PARAM;
            }
            *special = inline_val ? inline_val : argv[++i];
            continue;
        }
        if (nlen == 21 && strncmp(name, "generate-cli-skeleton", nlen) == 0) {
            const char *v = inline_val;
            if (!v && i + 1 < argc && !is_option(argv[i + 1]))
                v = argv[++i];
            if (!v)
                v = "input";
            if (strcmp(v, "input") && strcmp(v, "yaml-input") && strcmp(v, "output")) {
                usage_error("argument --generate-cli-skeleton: invalid choice: '%s' (choose from "
                            "'input', 'output', 'yaml-input')", v);
                return RC_PARAM;
            }
            p->skeleton = v;
            continue;
        }
        const model_member_t *m = find_cli_member(op, name, nlen);
        if (!m) {
            add_unknown(p, a);
            continue;
        }
        int is_list = model_shapes[m->shape].type == MT_LIST;
        arg_value_t *slot = NULL;
        for (size_t k = 0; k < p->nargs; k++)
            if (p->args[k].member == m)
                slot = &p->args[k];
        if (!slot) {
            if (p->nargs >= sizeof p->args / sizeof p->args[0])
                return RC_PARAM;
            slot = &p->args[p->nargs++];
        }
        free(slot->values);
        slot->op = op;
        slot->member = m;
        slot->values = calloc((size_t)argc + 1, sizeof *slot->values);
        slot->nvalues = 0;
        if (inline_val) {
            slot->values[slot->nvalues++] = (char *)inline_val;
        }
        if (!inline_val || is_list) {
            while (i + 1 < argc && !(argv[i + 1][0] == '-' && argv[i + 1][1] == '-' &&
                                     argv[i + 1][2])) {
                /* argparse takes "-5" as a value only when it reads as a negative number */
                slot->values[slot->nvalues++] = argv[++i];
                if (!is_list)
                    break;
            }
        }
        if (slot->nvalues == 0) {
            usage_error("argument --%s: expected %s", m->cli_name,
                        is_list ? "at least one argument" : "one argument");
            return RC_PARAM;
        }
    }
    *opp = op;
    return 0;
}

/* -- the command ----------------------------------------------------------------------------- */

/* shlex.split(s) (POSIX mode, no comments): words split at blanks, '...' literal, "..." with
 * \\ \" \$ \` escapes, a backslash elsewhere taking the next character. NULL-terminated. */
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
                if (n + 2 > cap) {
                    char **g = realloc(argv, (cap *= 2) * sizeof *argv);
                    if (!g)
                        break;
                    argv = g;
                }
                argv[n++] = strdup(sb_str(&w));
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

/* The AWS CLI's pager: AWS_PAGER, else the profile's cli_pager, else PAGER, else less (each
 * counts when set, even empty); --no-cli-pager: none. "" when none. */
static void pager_of(const ctx_t *c, char *out, size_t len)
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
    char *text = path ? read_text_file(path) : NULL;
    int set = text && creds_ini_get(text, 1, profile && *profile ? profile : "default",
                                    "cli_pager", out, len) == EVREC_OK;
    free(text);
    free(path);
    if (set)
        return;
    v = getenv("PAGER");
    snprintf(out, len, "%s", v ? v : "less");
}

/* Output goes through the pager when stdout is a terminal and there is one (LESS=FRX unless
 * LESS is set), as the AWS CLI does; a pager that cannot start is its error (253). */
static int page_or_print(const ctx_t *c, const char *text, size_t len, int tty)
{
    char pager[1024];
    if (tty)
        pager_of(c, pager, sizeof pager);
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
        rc = fail(RC_CONFIG, "Unable to redirect output to pager. Received the following error "
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

static int print_output(ctx_t *c, const cJSON *response)
{
    const cJSON *data = response;
    cJSON *queried = NULL;
    if (c->g.query) {
        char err[512];
        if (jp_search(c->g.query, response, &queried, err, sizeof err) != 0)
            return fail(RC_GENERAL, "%s", err);
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
            config_get(c->g.profile ? c->g.profile : (getenv("AWS_PROFILE") ? getenv("AWS_PROFILE") : "default"),
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
        return fail(RC_GENERAL, "Unknown output type: %s", fmt);
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
        return fail(RC_GENERAL, "%s", ferr);
    }
    int rc = page_or_print(c, sb_str(&b), b.len, tty);
    sb_free(&b);
    cJSON_Delete(queried);
    return rc;
}

static void print_help(const model_operation_t *op)
{
    const model_shape_t *in = &model_shapes[op->input];
    printf("usage: evrec %s %s", op->service_cli, op->op_cli);
    for (size_t i = 0; i < in->nmembers; i++)
        printf(in->members[i].required ? " --%s <value>" : " [--%s <value>]", in->members[i].cli_name);
    printf(" [--cli-input-json | --cli-input-yaml] [--generate-cli-skeleton <value>]\n"
           "\nGlobal options (before or after the command):\n"
           "  --endpoint-url URL  --region R  --profile P  --output json|text|table|yaml|yaml-stream\n"
           "  --query JMESPATH  --debug  --no-verify-ssl  --no-sign-request  --ca-bundle FILE\n"
           "  --cli-read-timeout S  --cli-connect-timeout S  --color on|off|auto\n"
           "  --no-paginate  --no-cli-pager  --cli-binary-format FORMAT\n"
           "\nValues: inline JSON, file://path, or shorthand (Key=Value,Key2={K=V},Key3=[a,b]).\n");
}

static int load_cli_input(const char *cli_name, const char *value, int yaml, cJSON **out)
{
    char *file = NULL;
    size_t len = 0;
    sbuf_t msg = { 0 };
    int r = load_paramfile(value, &file, &len, &msg);
    if (r < 0) {
        int rc = param_error(cli_name, sb_str(&msg));
        sb_free(&msg);
        return rc;
    }
    sb_free(&msg);
    const char *text = file ? file : value;
    if (!file)
        len = strlen(value);
    char err[512];
    int rc = 0;
    if (yaml) {
        if (aws_yaml_load(text, len, out, err, sizeof err) != 0)
            rc = fail(RC_PARAM, "Error parsing parameter '--%s': Invalid YAML: %s", cli_name, err);
    } else if (pyjson_parse(text, len, out, err, sizeof err) != 0) {
        sbuf_t m = { 0 };
        sb_printf(&m, "Invalid JSON: %s\nJSON received: ", err);
        sb_putn(&m, text, len);
        rc = param_error(cli_name, sb_str(&m));
        sb_free(&m);
    }
    if (rc == 0 && !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        rc = fail(RC_PARAM, "Invalid type for --%s: the input must be an object", cli_name);
    }
    free(file);
    return rc;
}

static int build_params(parsed_t *p, const model_operation_t *op, cJSON **params)
{
    if (p->cli_input_json && p->cli_input_yaml)
        return fail(RC_PARAM, "Only one --cli-input- parameter may be specified.");
    const model_shape_t *in = &model_shapes[op->input];
    cJSON *out = cJSON_CreateObject();
    /* arguments in the operation's member order */
    for (size_t i = 0; i < in->nmembers; i++) {
        for (size_t k = 0; k < p->nargs; k++) {
            if (p->args[k].member != &in->members[i])
                continue;
            cJSON *v = NULL;
            int rc = unpack_arg(&p->args[k], &v);
            if (rc) {
                cJSON_Delete(out);
                return rc;
            }
            cJSON_AddItemToObject(out, in->members[i].name, v);
        }
    }
    const char *inputs[2] = { p->cli_input_json, p->cli_input_yaml };
    for (int y = 0; y < 2; y++) {
        if (!inputs[y])
            continue;
        cJSON *doc = NULL;
        int rc = load_cli_input(y ? "cli-input-yaml" : "cli-input-json", inputs[y], y, &doc);
        if (rc) {
            cJSON_Delete(out);
            return rc;
        }
        /* the command line wins over the input document */
        for (cJSON *c = doc->child; c; c = c->next)
            if (!cJSON_GetObjectItemCaseSensitive(out, c->string))
                cJSON_AddItemToObject(out, c->string, pyjson_dup(c));
        cJSON_Delete(doc);
    }
    *params = out;
    return 0;
}

static int skeleton(ctx_t *c, const char *kind)
{
    if (strcmp(kind, "output") == 0) {
        cJSON *sk = c->op->output >= 0 ? wire_skeleton(c->op->output, 1) : cJSON_CreateObject();
        /* botocore's Stubber validates the stubbed answer: Kinesis's FailedRecordCount of 0 is
         * below its model's minimum of 1 */
        sbuf_t report = { 0 };
        if (c->op->output >= 0 && validate_botocore(sk, c->op->output, &report) > 0) {
            int rc = fail(RC_PARAM, "Parameter validation failed:\n%s", sb_str(&report));
            sb_free(&report);
            cJSON_Delete(sk);
            return rc;
        }
        sb_free(&report);
        int rc = print_output(c, sk);
        cJSON_Delete(sk);
        return rc;
    }
    sbuf_t b = { 0 };
    if (strcmp(kind, "yaml-input") == 0) {
        wire_yaml_skeleton(&b, c->op->input);
    } else {
        cJSON *sk = wire_skeleton(c->op->input, 0);
        pyjson_dump(&b, sk, 4);
        sb_putc(&b, '\n');
        cJSON_Delete(sk);
    }
    fwrite(sb_str(&b), 1, b.len, stdout);
    sb_free(&b);
    return RC_OK;
}

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
 * <account>.data-kinesis.<region>.<suffix>, or the rules' error (printed, 255). Returns 0 and
 * leaves base empty when the rules do not apply. */
static int kinesis_arn_endpoint(const model_operation_t *op, const cJSON *params,
                                const char *region, char *base, size_t len)
{
    base[0] = '\0';
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
        return fail(RC_GENERAL, "Invalid ARN: Failed to parse ARN.");
    f[5] = p;
    fl[5] = strlen(p);
    if (!host_label_ok(f[4], fl[4]))
        return fail(RC_GENERAL, "Invalid ARN: Invalid account id.");
    if (!host_label_ok(f[3], fl[3]))
        return fail(RC_GENERAL, "Invalid ARN: Invalid region.");
    if (fl[2] != 7 || strncmp(f[2], "kinesis", 7) != 0)
        return fail(RC_GENERAL, "Invalid ARN: The ARN was not for the Kinesis service, found: %.*s.",
                    (int)fl[2], f[2]);
    size_t tl = strcspn(f[5], ":/");
    if (tl == 0)
        return fail(RC_GENERAL, "Invalid ARN: No ARN type specified");
    if (tl != 6 || strncmp(f[5], "stream", 6) != 0)
        return fail(RC_GENERAL, "Invalid ARN: Kinesis ARNs don't support `%.*s` arn types.",
                    (int)tl, f[5]);
    if (fl[1] != strlen(pname) || strncmp(f[1], pname, fl[1]) != 0)
        return fail(RC_GENERAL, "Partition: %.*s from ARN doesn't match with partition name: %s.",
                    (int)fl[1], f[1], pname);
    snprintf(base, len, "https://%.*s.data-kinesis.%s.%s", (int)fl[4], f[4], region, suffix);
    return 0;
}

static int endpoint_url_check(const char *u)
{
    if (!strstr(u, "://"))
        return fail(RC_PARAM,
                    "Bad value for --endpoint-url \"%s\": scheme is missing.  Must be of the form "
                    "http://<hostname>/ or https://<hostname>/", u);
    return 0;
}

/* The AWS CLI v2's retry configuration: "standard" (default) or "adaptive", and max_attempts,
 * from the environment or the profile. v2 refuses botocore's "legacy" mode, and so do we. */
static retry_mode_t retry_mode_of(const char *profile, int *max_attempts, int *bad, sbuf_t *msg)
{
    char cfg[64];
    const char *m = getenv("AWS_RETRY_MODE");
    if (!m || !*m) {
        config_get(profile, "retry_mode", cfg, sizeof cfg);
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
        config_get(profile, "max_attempts", acfg, sizeof acfg);
        a = acfg[0] ? acfg : NULL;
    }
    *max_attempts = 3;
    if (a) {
        long long n;
        cJSON *sv = cJSON_CreateString(a);
        char *end;
        errno = 0;
        n = strtoll(a, &end, 10);
        if (end == a || *lstrip(end) || errno) {
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

static void result_metadata(const ctx_t *c, const send_result_t *r)
{
    debug(c, "Attempts: %d%s", r->attempts, r->max_attempts_reached ? " (max reached)" : "");
}

static int run_operation(ctx_t *c, parsed_t *p)
{
    const model_operation_t *op = c->op;
    if (timeout_syntax(c->g.read_timeout) || timeout_syntax(c->g.connect_timeout))
        return RC_GENERAL;
    if (p->skeleton && strcmp(p->skeleton, "output") != 0)
        return skeleton(c, p->skeleton);

    /* argparse's required arguments (relaxed by --cli-input-json/yaml) */
    if (!p->cli_input_json && !p->cli_input_yaml) {
        const model_shape_t *in = &model_shapes[op->input];
        sbuf_t missing = { 0 };
        for (size_t i = 0; i < in->nmembers; i++) {
            if (!in->members[i].required)
                continue;
            int given = 0;
            for (size_t k = 0; k < p->nargs; k++)
                given |= p->args[k].member == &in->members[i];
            if (!given)
                sb_printf(&missing, "%s--%s", missing.len ? ", " : "", in->members[i].cli_name);
        }
        if (missing.len) {
            usage_error("the following arguments are required: %s", sb_str(&missing));
            sb_free(&missing);
            return RC_PARAM;
        }
        sb_free(&missing);
    }
    if (p->unknown.len) {
        fputs("\n", stderr);
        fputs(USAGE, stderr);
        fprintf(stderr, "\nUnknown options: %s\n\n", sb_str(&p->unknown));
        return RC_PARAM;
    }
    const char *profile = c->g.profile;
    if (!profile)
        profile = getenv("AWS_PROFILE") && *getenv("AWS_PROFILE") ? getenv("AWS_PROFILE") : NULL;
    if (profile && !profile_exists(profile))
        return fail(RC_GENERAL, "The config profile (%s) could not be found", profile);
    const char *prof = profile ? profile : "default";

    if (c->g.endpoint_url && endpoint_url_check(c->g.endpoint_url) != 0)
        return RC_PARAM;
    if (c->g.query) {
        /* the AWS CLI compiles --query while it parses the arguments: nothing is sent */
        char qerr[1024];
        cJSON *empty = cJSON_CreateObject(), *res = NULL;
        int bad = jp_search(c->g.query, empty, &res, qerr, sizeof qerr) != 0 &&
                  strncmp(qerr, "Bad jmespath", 12) == 0;
        cJSON_Delete(empty);
        cJSON_Delete(res);
        if (bad)
            return fail(RC_PARAM, "Bad value for --query %s: %s", c->g.query, qerr);
    }

    cJSON *params = NULL;
    int rc = build_params(p, op, &params);
    if (rc)
        return rc;
    /* --cli-binary-format, else the profile's cli_binary_format, else base64: blob strings are
     * base64 (decoded, then encoded again for the request) or raw text to encode */
    char binfmt[64];
    if (c->g.binary_format)
        snprintf(binfmt, sizeof binfmt, "%s", c->g.binary_format);
    else
        config_get(prof, "cli_binary_format", binfmt, sizeof binfmt);
    sbuf_t berr = { 0 };
    if (wire_blobs_to_base64(params, op->input, strcmp(binfmt, "raw-in-base64-out") != 0,
                             &berr) != 0) {
        rc = fail(RC_GENERAL, "%s", sb_str(&berr));
        sb_free(&berr);
        cJSON_Delete(params);
        return rc;
    }
    sb_free(&berr);
    char region[64];
    if (creds_resolve_region(c->g.region, prof, region, sizeof region) != EVREC_OK) {
        cJSON_Delete(params);
        return fail(RC_CONFIG, "You must specify a region. You can also configure your region by "
                               "running \"aws configure\".");
    }
    if (!region_name_ok(region)) {
        cJSON_Delete(params);
        return fail(RC_GENERAL, "Provided region_name '%s' doesn't match a supported format.",
                    region);
    }
    int bad = 0, max_attempts = 3;
    sbuf_t rmsg = { 0 };
    retry_mode_t mode = retry_mode_of(prof, &max_attempts, &bad, &rmsg);
    if (bad) {
        rc = fail(RC_GENERAL, "%s", sb_str(&rmsg));
        sb_free(&rmsg);
        cJSON_Delete(params);
        return rc;
    }
    sb_free(&rmsg);

    long connect_ms = parse_timeout(c->g.connect_timeout, 60000, "connect");
    long read_ms = connect_ms < 0 ? 0 : parse_timeout(c->g.read_timeout, 60000, "read");
    if (read_ms < 0 || connect_ms < 0) {
        cJSON_Delete(params);
        return RC_GENERAL;
    }

    /* botocore validates the parameters when the call is made, on the client the AWS CLI has
     * made by then (region, its format, retries, timeouts): those errors come first */
    sbuf_t report = { 0 };
    if (validate_params(params, op->input, &report) > 0) {
        rc = fail(RC_PARAM, "Parameter validation failed:\n%s", sb_str(&report));
        sb_free(&report);
        cJSON_Delete(params);
        return rc;
    }
    sb_free(&report);
    if (p->skeleton) {
        /* the output skeleton is the answer of a stubbed call: the input is checked first */
        cJSON_Delete(params);
        return skeleton(c, p->skeleton);
    }

    sbuf_t path = { 0 }, body = { 0 };
    char err[512];
    if (wire_serialize(op, params, &path, &body, err, sizeof err) != 0) {
        cJSON_Delete(params);
        sb_free(&path);
        sb_free(&body);
        return fail(RC_GENERAL, "%s", err);
    }
    char base[1024] = "";
    if (!c->g.endpoint_url && kinesis_arn_endpoint(op, params, region, base, sizeof base) != 0) {
        cJSON_Delete(params);
        sb_free(&path);
        sb_free(&body);
        return RC_GENERAL;
    }
    cJSON_Delete(params);

    evrec_credentials_t cr;
    memset(&cr, 0, sizeof cr);
    creds_t *creds = NULL;
    char ca_cfg[1024];
    config_get(prof, "ca_bundle", ca_cfg, sizeof ca_cfg);
    const char *ca = c->g.ca_bundle ? c->g.ca_bundle : (ca_cfg[0] ? ca_cfg : NULL);
    /* botocore's EnvProvider: an access key id without its secret stops the chain (an
     * explicit --profile skips the environment) */
    const char *env_ak = getenv("AWS_ACCESS_KEY_ID"), *env_sk = getenv("AWS_SECRET_ACCESS_KEY");
    if (!c->g.no_sign_request && !c->g.profile && env_ak && *env_ak && !(env_sk && *env_sk)) {
        sb_free(&path);
        sb_free(&body);
        return fail(RC_GENERAL, "Partial credentials found in env, missing: AWS_SECRET_ACCESS_KEY");
    }
    if (!c->g.no_sign_request) {
        creds_config_t cc;
        memset(&cc, 0, sizeof cc);
        /* only --profile is an explicit choice; the chain reads AWS_DEFAULT_PROFILE and
         * AWS_PROFILE itself, after the environment's keys, as botocore does */
        cc.profile = c->g.profile;
        cc.region = region;
        cc.ca_bundle = ca;
        cc.no_verify_tls = c->g.no_verify_ssl;
        cc.connect_timeout_ms = (uint32_t)(connect_ms ? connect_ms : 600000);
        cc.request_timeout_ms = (uint32_t)(read_ms ? read_ms : 600000);
        char cerr[512] = "";
        if (creds_new(&creds, &cc) != EVREC_OK || creds_get(creds, &cr, cerr, sizeof cerr) != EVREC_OK) {
            debug(c, "credentials: %s", cerr);
            creds_free(creds);
            sb_free(&path);
            sb_free(&body);
            const char *partial = partial_profile_keys(prof);
            if (partial)
                return fail(RC_GENERAL, "Partial credentials found in %s, missing: "
                                        "aws_secret_access_key", partial);
            return fail(RC_CONFIG, "Unable to locate credentials. You can configure credentials by "
                                   "running \"aws configure\".");
        }
        creds_free(creds);
    }

    char svc_env[96], cfg_url[1024], cfg_from[160];
    size_t sl = (size_t)snprintf(svc_env, sizeof svc_env, "AWS_ENDPOINT_URL_%s", op->endpoint_prefix);
    for (size_t i = 17; i < sl && i < sizeof svc_env; i++) /* "personalize-events" -> ..._EVENTS */
        svc_env[i] = svc_env[i] == '-' ? '_' : (char)toupper((unsigned char)svc_env[i]);
    if (c->g.endpoint_url)
        snprintf(base, sizeof base, "%s", c->g.endpoint_url);
    else if (!base[0] && creds_endpoint_url(svc_env, c->g.profile, 1, cfg_url, sizeof cfg_url,
                                            cfg_from, sizeof cfg_from) == EVREC_OK)
        snprintf(base, sizeof base, "%s", cfg_url); /* the environment's or the config file's */
    else if (!base[0])
        snprintf(base, sizeof base, "https://%s.%s.amazonaws.com%s", op->endpoint_prefix, region,
                 strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        base[--bl] = '\0';
    /* the endpoint's own path is kept in front of the operation's */
    const char *scheme_end = strstr(base, "://");
    const char *base_path = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
    char url[2048], host[512];
    snprintf(url, sizeof url, "%s%s", base, sb_str(&path));
    if (transport_url_host(url, host, sizeof host) != EVREC_OK) {
        sb_free(&path);
        sb_free(&body);
        return fail(RC_PARAM, "Bad value for --endpoint-url \"%s\"", base);
    }
    sbuf_t sign_path = { 0 };
    if (base_path)
        sb_puts(&sign_path, base_path);
    sb_puts(&sign_path, sb_str(&path));

    transport_config_t tc;
    memset(&tc, 0, sizeof tc);
    tc.ca_bundle = ca;
    tc.no_verify_tls = c->g.no_verify_ssl;
    tc.connect_timeout_ms = (uint32_t)(connect_ms ? connect_ms : 24L * 3600 * 1000);
    tc.request_timeout_ms = (uint32_t)(read_ms ? read_ms : 24L * 3600 * 1000);
    tc.max_response_bytes = 16u << 20;
    tc.verbose = c->debug;
    tc.log_fn = debug_transport;
    tc.log_user = c;
    transport_t *t = NULL;
    if (transport_new(&t, &tc) != EVREC_OK) {
        sb_free(&path);
        sb_free(&body);
        sb_free(&sign_path);
        return fail(RC_GENERAL, "could not initialise the HTTP client");
    }
    send_result_t r;
    memset(&r, 0, sizeof r);
    send_request(c, t, url, host, sb_str(&sign_path), sb_str(&body), body.len, region,
                 c->g.no_sign_request ? NULL : &cr, mode, max_attempts, &r);
    transport_free(t);
    result_metadata(c, &r);
    memset(&cr, 0, sizeof cr);

    if (r.network_error) {
        long code = r.resp.status;
        if (code == EVREC_E_NET_TIMEOUT)
            rc = fail(RC_GENERAL, "%s timeout on endpoint URL: \"%s\"",
                      strstr(r.net_msg, "onnect") ? "Connect" : "Read", url);
        else if (code == EVREC_E_TLS && strstr(r.net_msg, "SSL certificate problem: "))
            /* OpenSSL's words as Python's ssl module puts them */
            rc = fail(RC_GENERAL, "SSL validation failed for %s [SSL: CERTIFICATE_VERIFY_FAILED] "
                                  "certificate verify failed: %s", url,
                      strstr(r.net_msg, "SSL certificate problem: ") + 25);
        else if (code == EVREC_E_TLS)
            rc = fail(RC_GENERAL, "SSL validation failed for %s %s", url, r.net_msg);
        else if (code == EVREC_E_NET || code == EVREC_E_RESPONSE)
            rc = fail(RC_GENERAL, "Connection was closed before we received a valid response "
                                  "from endpoint URL: \"%s\".", url);
        else
            rc = fail(RC_GENERAL, "Could not connect to the endpoint URL: \"%s\"", url);
    } else if (r.resp.status >= 300) {
        char code[256];
        sbuf_t msg = { 0 };
        wire_parse_error(op, r.resp.status, r.resp.error_type, r.resp.body, r.resp.body_len, code,
                         sizeof code, &msg);
        char retry_info[64] = "";
        if (r.max_attempts_reached)
            snprintf(retry_info, sizeof retry_info, " (reached max retries: %d)", r.attempts - 1);
        rc = fail(RC_CLIENT, "An error occurred (%s) when calling the %s operation%s: %s",
                  code[0] ? code : "Unknown", op->op_name, retry_info, sb_str(&msg));
        sb_free(&msg);
    } else {
        cJSON *out = NULL;
        sbuf_t perr = { 0 };
        if (wire_parse_output(op, r.resp.body, r.resp.body_len, r.resp.request_id[0] != '\0',
                              &out, &perr) != 0)
            rc = fail(RC_GENERAL, "%s", sb_str(&perr));
        else
            rc = print_output(c, out);
        sb_free(&perr);
        cJSON_Delete(out);
    }
    transport_response_clear(&r.resp);
    sb_free(&path);
    sb_free(&body);
    sb_free(&sign_path);
    return rc;
}

int cli_aws_main(int argc, char **argv)
{
    parsed_t p;
    memset(&p, 0, sizeof p);
    const model_operation_t *op = NULL;
    signal(SIGINT, on_sigint);
    int rc = parse_argv(argc, argv, &p, &op);
    if (rc == 0) {
        if (!p.service) {
            usage_error("the following arguments are required: command");
            rc = RC_PARAM;
        } else if (!find_operation(p.service, NULL)) {
            /* evrec's commands, as the AWS CLI lists its own (two columns, then help) */
            static const cli_command_t *const cmds[] = {
#define CLI_CMD(name) &cli_cmd_##name,
                CLI_COMMANDS
#undef CLI_CMD
            };
            const char *names[sizeof cmds / sizeof cmds[0] + 2];
            size_t n = 0;
            for (; n < sizeof cmds / sizeof cmds[0]; n++)
                names[n] = cmds[n]->name;
            names[n++] = "help";
            names[n] = NULL;
            invalid_choice("command", names);
            rc = RC_PARAM;
        } else if (p.operation && !op && strcmp(p.operation, "help") == 0) {
            /* `evrec kinesis help`: the service's operations */
            const model_operation_t *sop = find_operation(p.service, NULL);
            printf("usage: evrec %s %s ...\n\nOperations: %s\n", p.service, sop->op_cli, sop->op_cli);
            rc = RC_OK;
        } else if (!p.operation) {
            if (p.help) {
                printf("usage: evrec %s %s ...\n", p.service, find_operation(p.service, NULL)->op_cli);
                rc = RC_OK;
            } else {
                usage_error("the following arguments are required: operation");
                rc = RC_PARAM;
            }
        } else if (!op) {
            const char *names[] = { find_operation(p.service, NULL)->op_cli, "help", NULL };
            invalid_choice("operation", names);
            rc = RC_PARAM;
        } else if (p.help) {
            print_help(op);
            rc = RC_OK;
        } else {
            ctx_t c;
            memset(&c, 0, sizeof c);
            c.g = p.g;
            c.op = op;
            c.debug = p.g.debug;
            rc = run_operation(&c, &p);
        }
    }
    for (size_t i = 0; i < p.nargs; i++)
        free(p.args[i].values);
    sb_free(&p.unknown);
    return rc;
}

static int run(int argc, char **argv) { return cli_aws_main(argc, argv); }

const cli_command_t cli_cmd_pinpoint = { "pinpoint", "Amazon Pinpoint put-events (AWS CLI compatible)", run };
const cli_command_t cli_cmd_personalize_events = {
    "personalize-events", "Amazon Personalize Events put-events (AWS CLI compatible)", run
};
const cli_command_t cli_cmd_kinesis = { "kinesis", "Amazon Kinesis put-records (AWS CLI compatible)", run };
const cli_command_t cli_cmd_firehose = {
    "firehose", "Amazon Data Firehose put-record-batch (AWS CLI compatible)", run
};
