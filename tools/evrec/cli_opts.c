/* The library's options from a JSON config file and from command-line flags (cli_opts.h). */
#define _GNU_SOURCE
#include "cli_opts.h"
#include "port.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

typedef enum opt_type {
    T_STR,
    T_BOOL,
    T_U32,
    T_U64,
    T_SIZE,
    T_ENUM,
} opt_type_t;

typedef struct opt_def {
    const char *key;          /* config key; the flag is --key with '_' as '-' */
    opt_type_t type;
    size_t offset;            /* in cli_config_t */
    const char *const *names; /* T_ENUM: value i is names[i] */
    const char *help;
} opt_def_t;

/* In evrec_service_t order. */
static const char *const service_names[] = { "pinpoint", "personalize", "kinesis", "firehose",
                                             NULL };
static const char *const partition_names[] = { "endpoint", "session", "random", NULL };
static const char *const durability_names[] = { "process", "power", "batched", NULL };
static const char *const policy_names[] = { "drop_oldest", "refuse_new", NULL };
static const char *const level_names[] = { "error", "warn", "info", "debug", NULL };

#define O(field) offsetof(cli_config_t, opts.field)
#define C(field) offsetof(cli_config_t, field)

static const opt_def_t defs[] = {
    { "store", T_STR, C(store), NULL, "store directory (else $EVREC_STORE)" },
    { "service", T_ENUM, O(service), service_names,
      "pinpoint (default), personalize (personalize-events), kinesis or firehose" },
    { "application_id", T_STR, O(application_id), NULL, "Pinpoint project id" },
    { "tracking_id", T_STR, O(tracking_id), NULL, "Personalize event tracker id" },
    { "stream_name", T_STR, O(stream_name), NULL, "Kinesis stream name" },
    { "stream_arn", T_STR, O(stream_arn), NULL, "Kinesis stream ARN (instead of its name)" },
    { "delivery_stream_name", T_STR, O(delivery_stream_name), NULL,
      "Firehose delivery stream name" },
    { "partition_key", T_ENUM, O(partition_key), partition_names,
      "Kinesis partition key: endpoint (default), session or random" },
    { "max_record_bytes", T_SIZE, O(max_record_bytes), NULL,
      "Kinesis/Firehose record limit; default: the service's" },
    { "region", T_STR, O(region), NULL, "AWS region (else AWS_REGION, the profile)" },
    { "endpoint_url", T_STR, O(endpoint_url), NULL, "service URL override" },
    { "access_key_id", T_STR, O(access_key_id), NULL, "static credentials" },
    { "secret_access_key", T_STR, O(secret_access_key), NULL, "static credentials" },
    { "session_token", T_STR, O(session_token), NULL, "static credentials" },
    { "no_environment_credentials", T_BOOL, O(no_environment_credentials), NULL,
      "ignore AWS_ACCESS_KEY_ID & co" },
    { "profile", T_STR, O(profile), NULL, "shared config/credentials profile" },
    { "iot_credentials_endpoint", T_STR, O(iot_credentials_endpoint), NULL,
      "AWS IoT credentials provider" },
    { "iot_role_alias", T_STR, O(iot_role_alias), NULL, "AWS IoT role alias" },
    { "iot_thing_name", T_STR, O(iot_thing_name), NULL, "AWS IoT thing name" },
    { "iot_cert_file", T_STR, O(iot_cert_file), NULL, "device certificate (PEM)" },
    { "iot_key_file", T_STR, O(iot_key_file), NULL, "device private key (PEM)" },
    { "cognito_identity_pool_id", T_STR, O(cognito_identity_pool_id), NULL,
      "Cognito identity pool (unauthenticated)" },
    { "cognito_endpoint_url", T_STR, O(cognito_endpoint_url), NULL, "Cognito URL override" },
    { "ca_bundle", T_STR, O(ca_bundle), NULL, "PEM CA bundle" },
    { "no_verify_tls", T_BOOL, O(no_verify_tls), NULL, "skip certificate checks (tests)" },
    { "connect_timeout_ms", T_U32, O(connect_timeout_ms), NULL, "default 10000" },
    { "request_timeout_ms", T_U32, O(request_timeout_ms), NULL, "default 60000" },
    { "max_response_bytes", T_SIZE, O(max_response_bytes), NULL, "default 1 MiB" },
    { "durability", T_ENUM, O(durability), durability_names, "process (default), power, batched" },
    { "sync_interval_ms", T_U32, O(sync_interval_ms), NULL, "default 1000" },
    { "commit_interval_ms", T_U32, O(commit_interval_ms), NULL, "default 1000" },
    { "commit_max_events", T_U32, O(commit_max_events), NULL, "default 100" },
    { "max_store_bytes", T_U64, O(max_store_bytes), NULL, "default 64 MiB" },
    { "full_policy", T_ENUM, O(full_policy), policy_names, "drop_oldest (default), refuse_new" },
    { "max_event_age_ms", T_U64, O(max_event_age_ms), NULL, "default 30 days" },
    { "map_size_bytes", T_U64, O(map_size_bytes), NULL, "LMDB map size (0: derived)" },
    { "quarantine_corrupt", T_BOOL, O(quarantine_corrupt), NULL, "move a damaged store aside" },
    { "set_store_settings", T_BOOL, O(set_store_settings), NULL,
      "write durability and max_store_bytes into an existing store" },
    { "truncate_oversize", T_BOOL, O(truncate_oversize), NULL, "truncate instead of refusing" },
    { "session_timeout_ms", T_U32, O(session_timeout_ms), NULL, "default 5000" },
    { "endpoint_id", T_STR, O(endpoint_id), NULL, "endpoint id (else the store's)" },
    { "flush_interval_ms", T_U32, O(flush_interval_ms), NULL, "default 30000" },
    { "flush_threshold_events", T_U32, O(flush_threshold_events), NULL, "default 100" },
    { "max_batch_events", T_U32, O(max_batch_events), NULL, "default: the service's limit" },
    { "max_request_bytes", T_SIZE, O(max_request_bytes), NULL, "default: the service's limit" },
    { "backoff_base_ms", T_U32, O(backoff_base_ms), NULL, "default 1000" },
    { "backoff_cap_ms", T_U32, O(backoff_cap_ms), NULL, "default 300000" },
    { "log_level", T_ENUM, O(log_level), level_names, "error, warn (default), info, debug" },
    { "daily_upload_bytes", T_U64, O(daily_upload_bytes), NULL,
      "metered link: request body bytes per UTC day (0: no limit)" },
    { "upload_allowed_cmd", T_STR, C(upload_allowed_cmd), NULL,
      "metered link: program run before each request; exit 0 = upload now" },
    { "drain_timeout", T_U32, C(drain_timeout_s), NULL, "agent: seconds to drain on SIGTERM" },
    { "log_file", T_STR, C(log_file), NULL, "agent: log here (reopened on SIGHUP)" },
    { "syslog", T_BOOL, C(use_syslog), NULL, "agent: log to syslog" },
};
#define N_DEFS (sizeof defs / sizeof defs[0])

void cli_config_init(cli_config_t *c)
{
    memset(c, 0, sizeof *c);
    evrec_options_init(&c->opts);
    c->drain_timeout_s = 30;
    const char *env = getenv("EVREC_STORE");
    if (env && *env)
        c->store = env;
}

void cli_config_free(cli_config_t *c)
{
    for (int i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    c->n_owned = 0;
}

static void *field(cli_config_t *c, const opt_def_t *d)
{
    return (char *)c + d->offset;
}

static int set_error(cli_config_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int set_error(cli_config_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return -1;
}

static int set_enum(cli_config_t *c, const opt_def_t *d, const char *v, const char *where)
{
    /* The service is also known by its AWS CLI name (evrec flush --service personalize-events). */
    if (d->names == service_names && strcmp(v, "personalize-events") == 0)
        v = "personalize";
    for (int i = 0; d->names[i]; i++) {
        if (strcmp(v, d->names[i]) == 0) {
            *(int *)field(c, d) = i; /* the enums are int-sized */
            return 0;
        }
    }
    char list[128] = "";
    for (int i = 0; d->names[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, d->names[i], sizeof list - strlen(list) - 1);
    }
    return set_error(c, "%s: '%s' is not one of: %s", where, v, list);
}

static int set_number(cli_config_t *c, const opt_def_t *d, double v, const char *where)
{
    double max = d->type == T_U32 ? 4294967295.0 : 18446744073709549568.0;
    if (!isfinite(v) || v < 0 || v > max || floor(v) != v)
        return set_error(c, "%s: expected a whole number from 0 to %.0f", where, max);
    void *p = field(c, d);
    switch (d->type) {
    case T_U32: *(uint32_t *)p = (uint32_t)v; break;
    case T_U64: *(uint64_t *)p = (uint64_t)v; break;
    case T_SIZE: *(size_t *)p = (size_t)v; break;
    default: break;
    }
    return 0;
}

/* Text value (from a flag) for any type. */
static int set_text(cli_config_t *c, const opt_def_t *d, const char *v, const char *where)
{
    switch (d->type) {
    case T_STR:
        *(const char **)field(c, d) = v;
        return 0;
    case T_ENUM:
        return set_enum(c, d, v, where);
    case T_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(int *)field(c, d) = 1;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(int *)field(c, d) = 0;
        else
            return set_error(c, "%s: expected true or false, not '%s'", where, v);
        return 0;
    default: {
        char *end = NULL;
        errno = 0;
        if (v[0] == '-' || v[0] == '\0')
            return set_error(c, "%s: '%s' is not a whole number >= 0", where, v);
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || *end != '\0')
            return set_error(c, "%s: '%s' is not a whole number >= 0", where, v);
        if (d->type == T_U32 && n > 4294967295ull)
            return set_error(c, "%s: %s is too large", where, v);
        void *p = field(c, d);
        if (d->type == T_U32)
            *(uint32_t *)p = (uint32_t)n;
        else if (d->type == T_U64)
            *(uint64_t *)p = n;
        else
            *(size_t *)p = (size_t)n;
        return 0;
    }
    }
}

static char *own(cli_config_t *c, const char *s)
{
    if (c->n_owned >= (int)(sizeof c->owned / sizeof c->owned[0]))
        return NULL;
    char *d = strdup(s);
    if (d)
        c->owned[c->n_owned++] = d;
    return d;
}

static int set_json(cli_config_t *c, const opt_def_t *d, const cJSON *v, const char *path)
{
    char where[600];
    snprintf(where, sizeof where, "%s: \"%s\"", path, d->key);
    switch (d->type) {
    case T_STR:
    case T_ENUM:
        if (!cJSON_IsString(v))
            return set_error(c, "%s: expected a string", where);
        if (d->type == T_ENUM)
            return set_enum(c, d, v->valuestring, where);
        {
            char *s = own(c, v->valuestring);
            if (!s)
                return set_error(c, "%s: too many strings", where);
            *(const char **)field(c, d) = s;
        }
        return 0;
    case T_BOOL:
        if (!cJSON_IsBool(v))
            return set_error(c, "%s: expected true or false", where);
        *(int *)field(c, d) = cJSON_IsTrue(v);
        return 0;
    default:
        if (!cJSON_IsNumber(v))
            return set_error(c, "%s: expected a number", where);
        return set_number(c, d, v->valuedouble, where);
    }
}

int cli_config_load_file(cli_config_t *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return set_error(c, "config %s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *n = realloc(text, cap);
            if (!n) {
                free(text);
                fclose(f);
                return set_error(c, "config %s: out of memory", path);
            }
            text = n;
        }
        size_t got = fread(text + len, 1, 4096, f);
        len += got;
        if (got == 0)
            break;
        if (len > 1024 * 1024) {
            free(text);
            fclose(f);
            return set_error(c, "config %s: larger than 1 MiB", path);
        }
    }
    fclose(f);
    text[len] = '\0';
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(text, &end, 1);
    int rc = 0;
    if (!doc) {
        size_t off = end ? (size_t)(end - text) : 0;
        int line = 1;
        for (size_t k = 0; k < off && k < len; k++)
            line += text[k] == '\n';
        rc = set_error(c, "config %s: not valid JSON (near line %d)", path, line);
    } else if (!cJSON_IsObject(doc)) {
        rc = set_error(c, "config %s: expected a JSON object of options", path);
    } else {
        for (const cJSON *it = doc->child; it && rc == 0; it = it->next) {
            const opt_def_t *d = NULL;
            for (size_t k = 0; k < N_DEFS; k++)
                if (strcmp(defs[k].key, it->string) == 0)
                    d = &defs[k];
            if (!d)
                rc = set_error(c, "config %s: unknown key \"%s\"", path, it->string);
            else
                rc = set_json(c, d, it, path);
        }
    }
    cJSON_Delete(doc);
    free(text);
    return rc;
}

const char *cli_flag_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    *missing = 0;
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=') {
        return a + n + 1;
    }
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

/* "--flush-interval-ms" for key "flush_interval_ms". */
static void flag_name(const opt_def_t *d, char *out, size_t len)
{
    snprintf(out, len, "--%s", d->key);
    for (char *p = out + 2; *p; p++)
        if (*p == '_')
            *p = '-';
}

int cli_config_preload(cli_config_t *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v = cli_flag_value(argc, argv, &i, "--config", &missing);
        if (missing)
            return set_error(c, "--config needs a file name");
        if (v && cli_config_load_file(c, v) != 0)
            return -1;
    }
    return 0;
}

int cli_option_flag(cli_config_t *c, int argc, char **argv, int *i)
{
    int missing = 0;
    const char *arg = argv[*i];
    if (cli_flag_value(argc, argv, i, "--config", &missing) || missing)
        return missing ? set_error(c, "--config needs a file name") : 1; /* preloaded */
    for (size_t k = 0; k < N_DEFS; k++) {
        char flag[64];
        flag_name(&defs[k], flag, sizeof flag);
        if (defs[k].type == T_BOOL && strcmp(arg, flag) == 0) {
            *(int *)field(c, &defs[k]) = 1;
            return 1;
        }
        const char *v = cli_flag_value(argc, argv, i, flag, &missing);
        if (missing)
            return set_error(c, "%s needs a value", flag);
        if (v)
            return set_text(c, &defs[k], v, flag) == 0 ? 1 : -1;
    }
    return 0;
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

int cli_parse_options(cli_config_t *c, int argc, char **argv, int first, const char *cmd)
{
    if (cli_config_preload(c, argc, argv) != 0) {
        fprintf(stderr, "evrec %s: %s\n", cmd, c->err);
        return -1;
    }
    for (int i = first; i < argc; i++) {
        int got = cli_option_flag(c, argc, argv, &i);
        if (got < 0) {
            fprintf(stderr, "evrec %s: %s\n", cmd, c->err);
            return -1;
        }
        if (got == 0) {
            fprintf(stderr, "evrec %s: unknown option '%s' (see --help)\n", cmd, argv[i]);
            return -1;
        }
    }
    return 0;
}

int cli_split_pair(const char *arg, char *name, size_t len, const char **value)
{
    const char *eq = strchr(arg, '=');
    if (!eq || (size_t)(eq - arg) >= len)
        return -1;
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    *value = eq + 1;
    return 0;
}

void cli_options_help(FILE *out)
{
    fprintf(out, "options (also as keys of a --config FILE JSON object, flags win):\n"
                 "  --config FILE                     JSON object of the options below\n");
    for (size_t k = 0; k < N_DEFS; k++) {
        char flag[64], left[96];
        flag_name(&defs[k], flag, sizeof flag);
        snprintf(left, sizeof left, "%s%s", flag,
                 defs[k].type == T_BOOL ? "" : defs[k].type == T_STR ? " S" : defs[k].type == T_ENUM ? " NAME" : " N");
        fprintf(out, "  %-33s %s\n", left, defs[k].help);
    }
}

const char *cli_level_name(evrec_log_level_t level)
{
    return (unsigned)level <= EVREC_LOG_DEBUG ? level_names[level] : "log";
}

void cli_log_stderr(void *user, evrec_log_level_t level, const char *message)
{
    (void)user;
    fprintf(stderr, "evrec: %s: %s\n", cli_level_name(level), message);
}

int cli_is_input_error(int code)
{
    return code == EVREC_E_INVALID || code == EVREC_E_TOO_OLD ||
           (code <= EVREC_E_EVENT_TYPE && code >= EVREC_E_TOO_MANY_VALUES);
}

/* upload_allowed: run the configured program (no shell, 10 s at most); exit 0 = allowed. */
static int upload_allowed_by_cmd(void *user)
{
    const char *argv[] = { user, NULL };
    char *out = NULL;
    size_t len = 0;
    int status = -1;
    int rc = port_run_capture(argv, &out, &len, 4096, 10000, &status);
    port_free(out);
    return rc == 0 && status == 0;
}

void cli_apply_hooks(cli_config_t *c)
{
    if (c->upload_allowed_cmd && *c->upload_allowed_cmd) {
        c->opts.upload_allowed = upload_allowed_by_cmd;
        c->opts.upload_allowed_user = (void *)c->upload_allowed_cmd;
    }
}

int cli_open_agent(cli_config_t *c, const char *cmd, int must_exist, evrec_t **out)
{
    *out = NULL;
    if (c->store == NULL || c->store[0] == '\0') {
        fprintf(stderr, "evrec %s: --store DIR is required (or set EVREC_STORE)\n", cmd);
        return CLI_EXIT_USAGE;
    }
    struct stat st;
    if (must_exist && stat(c->store, &st) != 0) {
        fprintf(stderr, "evrec %s: no store at %s\n", cmd, c->store);
        return CLI_EXIT_FAIL;
    }
    if (c->opts.log_fn == NULL)
        c->opts.log_fn = cli_log_stderr;
    cli_apply_hooks(c);
    char msg[512] = "";
    int rc = evrec_open(out, c->store, &c->opts, msg, sizeof msg);
    if (rc != EVREC_OK) {
        fprintf(stderr, "evrec %s: cannot open %s: %s\n", cmd, c->store,
                msg[0] ? msg : evrec_strerror(rc));
        return rc == EVREC_E_CONFIG || rc == EVREC_E_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
