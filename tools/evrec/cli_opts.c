/* The library's options from a JSON config file and from command-line flags (cli_opts.h). */
#define _GNU_SOURCE
#include "cli_opts.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "port.h"

typedef enum opt_type {
    T_STR,
    T_BOOL,
    T_U32,
    T_U64,
    T_SIZE,
    T_ENUM,
    T_SECRET_FILE, /* a file holding the string option at `offset` */
} opt_type_t;

typedef struct opt_def {
    const char *key;          /* config key; the flag is --key with '_' as '-' */
    opt_type_t type;
    size_t offset;            /* in cli_config_t */
    const char *const *names; /* T_ENUM: value i is names[i] */
    const char *help;
    unsigned uses;            /* CLI_FOR_* of the commands that take it as a flag */
} opt_def_t;

/* The names of each enumerated option's values, in value order (options.def's ONE_OF):
 * names_service[] = { "pinpoint", "personalize", "kinesis", "firehose", NULL } ... */
#define ANY
#define ALWAYS(lo, hi)
#define DELIVERING(lo, hi)
#define DELIVERING_OR_0(lo, hi)
#define ONE_OF(last, noun, ...) __VA_ARGS__
#define NAMES_ENUM(name, ...) static const char *const names_##name[] = { __VA_ARGS__, NULL };
#define NAMES_STR(name, ...)
#define NAMES_BOOL(name, ...)
#define NAMES_U32(name, ...)
#define NAMES_U64(name, ...)
#define NAMES_SIZE(name, ...)
#define NAMES_FN(name, ...)
#define NAMES_PTR(name, ...)
#define NAMES(kind, name, ...) NAMES_##kind(name, __VA_ARGS__)
#define EVREC_OPTION(kind, name, def, range, cli, shown, meaning) NAMES(kind, name, range)
#include "options.def"
#undef EVREC_OPTION
#undef ONE_OF

/* ... one name a value: a value added to an enumeration without its name fails the build. */
#define ONE_OF(last, noun, ...) last
#define COUNT_ENUM(name, last)                                                                   \
    _Static_assert(sizeof names_##name / sizeof names_##name[0] == (size_t)(last) + 2,           \
                   "options.def: ONE_OF of " #name " names every value");
#define COUNT_STR(name, last)
#define COUNT_BOOL(name, last)
#define COUNT_U32(name, last)
#define COUNT_U64(name, last)
#define COUNT_SIZE(name, last)
#define COUNT_FN(name, last)
#define COUNT_PTR(name, last)
#define COUNT(kind, name, last) COUNT_##kind(name, last)
#define EVREC_OPTION(kind, name, def, range, cli, shown, meaning) COUNT(kind, name, range)
#include "options.def"
#undef EVREC_OPTION
#undef ONE_OF
#undef ANY
#undef ALWAYS
#undef DELIVERING
#undef DELIVERING_OR_0

#define O(field) offsetof(cli_config_t, opts.field)
#define C(field) offsetof(cli_config_t, field)

/* options.def's rows with a CLI(...) or CLI_SECRET(...) column, by the documented rule: the
 * config key is the member's name, the flag the same with dashes (flag_name), the value's type
 * the row's kind. */
#define CLI(uses, help) ROW, uses, help, NULL
#define CLI_SECRET(uses, help, file_help) SECRET, uses, help, file_help
#define NOT_CLI(why) NONE, 0, NULL, NULL
#define VALUES_ENUM(name) names_##name
#define VALUES_STR(name) NULL
#define VALUES_BOOL(name) NULL
#define VALUES_U32(name) NULL
#define VALUES_U64(name) NULL
#define VALUES_SIZE(name) NULL
#define ROW_ROW(kind, name, uses, help, file_help)                                                \
    { #name, T_##kind, O(name), VALUES_##kind(name), help, uses },
#define ROW_SECRET(kind, name, uses, help, file_help)                                             \
    ROW_ROW(kind, name, uses, help, file_help)                                                    \
    { #name "_file", T_SECRET_FILE, O(name), NULL, file_help, uses },
#define ROW_NONE(kind, name, uses, help, file_help)
#define ROW_(kind, name, how, uses, help, file_help) ROW_##how(kind, name, uses, help, file_help)
#define ROWS(...) ROW_(__VA_ARGS__)

static const opt_def_t defs[] = {
    { "store", T_STR, C(store), NULL, "store directory (else $EVREC_STORE)", U_ALL },
#define EVREC_OPTION(kind, name, def, range, cli, shown, meaning) ROWS(kind, name, cli)
#include "options.def"
#undef EVREC_OPTION
    /* The CLI's own: not library options. */
    { "upload_allowed_cmd", T_STR, C(upload_allowed_cmd), NULL,
      "metered link: program run before each request; exit 0 = upload now", U_DELIVER },
    { "drain_timeout", T_U32, C(drain_timeout_s), NULL, "agent: seconds to drain on SIGTERM",
      U_AGENT },
    { "log_file", T_STR, C(log_file), NULL, "agent: log here (reopened on SIGHUP)", U_AGENT },
    { "syslog", T_BOOL, C(use_syslog), NULL, "agent: log to syslog", U_AGENT },
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

void cli_config_for(cli_config_t *c, unsigned cmd, const char *name)
{
    c->cmd = cmd;
    c->cmd_name = name;
}

void cli_config_free(cli_config_t *c)
{
    /* Some of them are secrets (from the config file or a *_file option): wipe them all. */
    for (int i = 0; i < c->n_owned; i++) {
        explicit_bzero(c->owned[i], strlen(c->owned[i]));
        free(c->owned[i]);
    }
    c->n_owned = 0;
}

static unsigned def_uses(const opt_def_t *d)
{
    return d->uses;
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
    if (d->names == names_service && strcmp(v, "personalize-events") == 0)
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

static int set_secret_file(cli_config_t *c, const opt_def_t *d, const char *path,
                           const char *where);

/* Text value (from a flag) for any type. */
static int set_text(cli_config_t *c, const opt_def_t *d, const char *v, const char *where)
{
    switch (d->type) {
    case T_STR:
        *(const char **)field(c, d) = v;
        return 0;
    case T_SECRET_FILE:
        return set_secret_file(c, d, v, where);
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

/*
 * Read a small file whole. Refused: what is not a regular file (a FIFO would block past any
 * timeout, a device would never end). *st is the file's status, for the callers that hold
 * secrets in it. -1 with c->err.
 */
static int read_file(cli_config_t *c, const char *what, const char *path, size_t max,
                     char **text, size_t *len, struct stat *st)
{
    *text = NULL;
    /* O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return set_error(c, "%s %s: %s", what, path, strerror(errno));
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return set_error(c, "%s %s: %s", what, path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return set_error(c, "%s %s: not a regular file", what, path);
    }
    if ((uint64_t)st->st_size > max) {
        close(fd);
        return set_error(c, "%s %s: larger than %zu bytes", what, path, max);
    }
    char *buf = malloc(max + 1);
    size_t got = 0;
    while (buf && got <= max) {
        ssize_t n = read(fd, buf + got, max + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0) {
                int e = errno;
                free(buf);
                close(fd);
                return set_error(c, "%s %s: %s", what, path, strerror(e));
            }
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (!buf)
        return set_error(c, "%s %s: out of memory", what, path);
    if (got > max) {
        explicit_bzero(buf, got);
        free(buf);
        return set_error(c, "%s %s: larger than %zu bytes", what, path, max);
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 0;
}

/* A file holding a secret must be private, as ssh asks of its keys (port_secret_owner_ok):
 * anyone else who can read it has the secret, anyone who can write it chooses the identity.
 * -1 with c->err. */
static int check_private(cli_config_t *c, const char *what, const char *path,
                         const struct stat *st)
{
    int rc = port_secret_owner_ok((long)st->st_uid, (unsigned)st->st_mode);
    if (rc == -EPERM)
        return set_error(c, "%s %s holds secrets but belongs to another user (uid %u)", what,
                         path, (unsigned)st->st_uid);
    if (rc != 0)
        return set_error(c, "%s %s holds secrets but group or others may access it (mode "
                         "%04o): chmod 600 %s", what, path, (unsigned)(st->st_mode & 07777),
                         path);
    return 0;
}

/* The one-line secret in a *_file option: trailing white space (the newline) is not part of
 * it; anything else on more lines, or nothing, is an error. */
static int set_secret_file(cli_config_t *c, const opt_def_t *d, const char *path,
                           const char *where)
{
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    if (read_file(c, where, path, 16384, &text, &len, &st) != 0 ||
        check_private(c, where, path, &st) != 0) {
        free(text);
        return -1;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
                       text[len - 1] == ' ' || text[len - 1] == '\t'))
        text[--len] = '\0';
    int bad = len == 0;
    for (size_t i = 0; i < len && !bad; i++)
        bad = (unsigned char)text[i] < 0x20 || text[i] == 0x7f;
    int rc = 0;
    if (bad) {
        rc = set_error(c, "%s %s: expected one line holding the secret%s", where, path,
                       len ? " (it has a control character or more lines)" : " (it is empty)");
    } else if (c->n_owned >= (int)(sizeof c->owned / sizeof c->owned[0])) {
        rc = set_error(c, "%s: too many strings", where);
    } else {
        c->owned[c->n_owned++] = text; /* wiped and freed by cli_config_free */
        *(const char **)field(c, d) = text;
        return 0;
    }
    explicit_bzero(text, len);
    free(text);
    return rc;
}

static int set_json(cli_config_t *c, const opt_def_t *d, const cJSON *v, const char *path)
{
    char where[600];
    snprintf(where, sizeof where, "%s: \"%s\"", path, d->key);
    switch (d->type) {
    case T_STR:
    case T_ENUM:
    case T_SECRET_FILE:
        if (!cJSON_IsString(v))
            return set_error(c, "%s: expected a string", where);
        if (d->type == T_ENUM)
            return set_enum(c, d, v->valuestring, where);
        if (d->type == T_SECRET_FILE)
            return set_secret_file(c, d, v->valuestring, where);
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
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    const char *what = "config";
    if (read_file(c, what, path, 1024 * 1024, &text, &len, &st) != 0)
        return -1;
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
    } else if ((cJSON_GetObjectItemCaseSensitive(doc, "secret_access_key") ||
                cJSON_GetObjectItemCaseSensitive(doc, "session_token")) &&
               check_private(c, what, path, &st) != 0) {
        rc = -1;
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
    explicit_bzero(text, len);
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
        const opt_def_t *d = &defs[k];
        char flag[64];
        flag_name(d, flag, sizeof flag);
        size_t fl = strlen(flag);
        if (strncmp(arg, flag, fl) != 0 || (arg[fl] != '\0' && arg[fl] != '='))
            continue;
        if (c->cmd && !(def_uses(d) & c->cmd))
            return set_error(c, "%s is not an option of `evrec %s` (see evrec %s --help)", flag,
                             c->cmd_name, c->cmd_name);
        if (d->type == T_BOOL && arg[fl] == '\0') {
            *(int *)field(c, d) = 1;
            return 1;
        }
        const char *v = cli_flag_value(argc, argv, i, flag, &missing);
        if (missing)
            return set_error(c, "%s needs a value", flag);
        if (d->offset == O(secret_access_key) || d->offset == O(session_token)) {
            if (d->type == T_STR)
                fprintf(stderr, "evrec%s%s: warning: %s on the command line can be read by "
                        "other local users (ps, /proc/PID/cmdline); use %s-file FILE, the "
                        "environment or a private --config file\n", c->cmd_name ? " " : "",
                        c->cmd_name ? c->cmd_name : "", flag, flag);
        }
        return set_text(c, d, v, flag) == 0 ? 1 : -1;
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

int cli_apply_options(cli_config_t *c, int argc, char **argv, int first)
{
    if (cli_config_preload(c, argc, argv) != 0)
        return -1;
    for (int i = first; i < argc; i++) {
        int got = cli_option_flag(c, argc, argv, &i);
        if (got == 0)
            set_error(c, "unknown option '%s' (see --help)", argv[i]);
        if (got <= 0)
            return -1;
    }
    return 0;
}

int cli_parse_options(cli_config_t *c, int argc, char **argv, int first, const char *cmd)
{
    if (cli_apply_options(c, argc, argv, first) != 0) {
        fprintf(stderr, "evrec %s: %s\n", cmd, c->err);
        return -1;
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

void cli_options_help(FILE *out, unsigned cmd)
{
    fprintf(out, "options (also as keys of a --config FILE JSON object, flags win; a file may\n"
                 "hold keys of other commands, which this one ignores):\n"
                 "  --config FILE                     JSON object of the options below\n");
    for (size_t k = 0; k < N_DEFS; k++) {
        if (cmd && !(def_uses(&defs[k]) & cmd))
            continue;
        char flag[64], left[96];
        flag_name(&defs[k], flag, sizeof flag);
        snprintf(left, sizeof left, "%s%s", flag,
                 defs[k].type == T_BOOL       ? ""
                 : defs[k].type == T_STR      ? " S"
                 : defs[k].type == T_ENUM     ? " NAME"
                 : defs[k].type == T_SECRET_FILE ? " FILE"
                                              : " N");
        fprintf(out, "  %-33s %s\n", left, defs[k].help);
    }
}

const char *cli_level_name(evrec_log_level_t level)
{
    return (unsigned)level <= EVREC_LOG_DEBUG ? names_log_level[level] : "log";
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
