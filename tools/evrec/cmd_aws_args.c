/*
 * The AWS CLI-compatible commands' arguments (cmd_aws.h): argv as the AWS CLI's argparse
 * reads it (global options anywhere, unique prefixes, the operation's parameters), each
 * parameter's value (file://, shorthand, JSON, as unpack_cli_arg reads it) and
 * --cli-input-json / --cli-input-yaml.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws_yaml.h"
#include "cmd_aws.h"
#include "shorthand.h"

/* -- global options ------------------------------------------------------------------------- */

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

/* -- parameter values: file://, shorthand, JSON --------------------------------------------- */

char *awscli_expand_path(const char *path)
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
    char *r = b.oom ? NULL : strdup(sb_str(&b)); /* NULL: out of memory */
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
    char *path = awscli_expand_path(value + strlen(prefix));
    if (!path) {
        sb_puts(msg, "MemoryError");
        return -1;
    }
    char *text = awscli_read_text_file(path, len);
    if (!text) {
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
    free(path);
    *data = text;
    return 1;
}

const char *awscli_lstrip(const char *s)
{
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    return s;
}

/* int(v) as Python reads a string: blanks around, a sign, digits with single underscores
 * between them. -1 if it is not one. */
int awscli_py_int(const char *v, long long *out)
{
    const char *p = awscli_lstrip(v);
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
    if (!digits || *awscli_lstrip(p))
        return -1;
    *out = neg ? -n : n;
    return 0;
}

/* int()'s ValueError, as the AWS CLI prints it (255). */
int awscli_int_literal_error(const char *v)
{
    cJSON *sv = cJSON_CreateString(v);
    sbuf_t r = { 0 };
    pyjson_repr(&r, sv);
    cJSON_Delete(sv);
    int rc = awscli_fail(RC_GENERAL, "invalid literal for int() with base 10: %s", sb_str(&r));
    sb_free(&r);
    return rc;
}

static int param_error(const char *cli_name, const char *msg)
{
    return awscli_fail(RC_PARAM, "Error parsing parameter '--%s': %s", cli_name, msg);
}

/* An allocation failed (Python's MemoryError, the AWS CLI's 255). */
static int memory_error(void) { return awscli_fail(RC_GENERAL, "MemoryError"); }

/* A reader's message says it ran out of memory (not that the input is bad). */
static int out_of_memory(const char *err) { return strncasecmp(err, "out of memory", 13) == 0; }

static int json_arg(const char *cli_name, const char *text, size_t len, cJSON **out)
{
    char err[512];
    if (pyjson_parse(text, len, out, err, sizeof err) == 0)
        return 0;
    if (out_of_memory(err))
        return memory_error();
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
        return out_of_memory(err) ? memory_error() : param_error(cli_name, err);
    return 0;
}

/* A structure or map given as text: JSON, else the AWS CLI's errors. */
static int unpack_object_text(const char *cli_name, const char *v, size_t len, cJSON **out)
{
    if (awscli_lstrip(v)[0] == '{')
        return json_arg(cli_name, v, len, out);
    if (!awscli_lstrip(v)[0])
        return awscli_fail(RC_GENERAL, "string index out of range");
    sbuf_t m = { 0 };
    sb_puts(&m, "Invalid JSON:\n");
    sb_putn(&m, v, len);
    int rc = param_error(cli_name, sb_str(&m));
    sb_free(&m);
    return rc;
}

static int unpack_one(const char *cli_name, int shape, const char *v, size_t len, cJSON **out);

/* A list given as one string that is not JSON: Python iterates its characters. */
static int unpack_chars(const char *cli_name, int member, const char *v, size_t len,
                        cJSON **out)
{
    *out = cJSON_CreateArray();
    if (!*out)
        return memory_error();
    for (size_t i = 0; i < len; i++) {
        char ch[2] = { v[i], 0 };
        cJSON *e = NULL;
        int rc = unpack_one(cli_name, member, ch, 1, &e);
        if (rc) {
            cJSON_Delete(*out);
            *out = NULL;
            return rc;
        }
        cJSON_AddItemToArray(*out, e);
    }
    return 0;
}

/* _unpack_cli_arg for a single string value of a shape. */
static int unpack_scalar(const char *cli_name, int shape, const char *v, size_t len,
                         cJSON **out);

static int unpack_one(const char *cli_name, int shape, const char *v, size_t len, cJSON **out)
{
    *out = NULL;
    int rc = unpack_scalar(cli_name, shape, v, len, out);
    return rc == 0 && !*out ? memory_error() : rc;
}

static int unpack_scalar(const char *cli_name, int shape, const char *v, size_t len,
                         cJSON **out)
{
    const model_shape_t *s = &model_shapes[shape];
    switch (s->type) {
    case MT_STRUCTURE:
    case MT_MAP:
        return unpack_object_text(cli_name, v, len, out);
    case MT_LIST:
        if (awscli_lstrip(v)[0] == '[')
            return json_arg(cli_name, v, len, out);
        return unpack_chars(cli_name, s->member, v, len, out);
    case MT_INTEGER:
    case MT_LONG: {
        long long n;
        if (awscli_py_int(v, &n) != 0)
            return awscli_int_literal_error(v);
        *out = pyjson_int(n);
        return 0;
    }
    case MT_DOUBLE:
    case MT_FLOAT: {
        char *end;
        double d = strtod(v, &end);
        if (end == v || *awscli_lstrip(end))
            return awscli_fail(RC_GENERAL, "could not convert string to float: '%s'", v);
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

static int opens_json(const char *v)
{
    const char *s = awscli_lstrip(v);
    return s[0] == '[' || s[0] == '{';
}

/* One value (a file's contents, or a value of a shape that is not a list): shorthand for a
 * complex shape not written as JSON, else unpack_cli_arg. */
static int unpack_value(const arg_value_t *a, const char *v, size_t len, cJSON **out)
{
    const model_member_t *m = a->member;
    if (!is_complex(m->shape) || opens_json(v))
        return unpack_one(m->cli_name, m->shape, v, len, out);
    int rc = shorthand_arg(m->cli_name, v, out);
    char err[512];
    if (rc == 0 && shorthand_apply_model(out, m->shape, err, sizeof err) != 0) {
        rc = out_of_memory(err) ? memory_error() : awscli_fail(RC_GENERAL, "%s", err);
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/* ParamShorthand's deprecated case: each value is the structure's one member. */
static int old_list_values(const arg_value_t *a, cJSON **out)
{
    const model_shape_t *st = &model_shapes[model_shapes[a->member->shape].member];
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < a->nvalues && list; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!cJSON_AddStringToObject(e, st->members[0].name, a->values[i]) ||
            !cJSON_AddItemToArray(list, e)) {
            cJSON_Delete(e);
            cJSON_Delete(list);
            list = NULL;
        }
    }
    *out = list;
    return list ? 0 : memory_error();
}

/* A list of complex values, each in shorthand. */
static int shorthand_list(const arg_value_t *a, cJSON **out)
{
    const model_member_t *m = a->member;
    cJSON *list = cJSON_CreateArray();
    if (!list)
        return memory_error();
    for (size_t i = 0; i < a->nvalues; i++) {
        cJSON *e = NULL;
        int rc = shorthand_arg(m->cli_name, a->values[i], &e);
        if (rc) {
            cJSON_Delete(list);
            return rc;
        }
        cJSON_AddItemToArray(list, e);
    }
    char err[512];
    if (shorthand_apply_model(&list, m->shape, err, sizeof err) != 0) {
        cJSON_Delete(list);
        return out_of_memory(err) ? memory_error() : awscli_fail(RC_GENERAL, "%s", err);
    }
    *out = list;
    return 0;
}

/* A list of plain values, each unpacked as the list's member. */
static int value_list(const arg_value_t *a, cJSON **out)
{
    const model_member_t *m = a->member;
    cJSON *list = cJSON_CreateArray();
    if (!list)
        return memory_error();
    for (size_t i = 0; i < a->nvalues; i++) {
        cJSON *e = NULL;
        int rc = unpack_one(m->cli_name, model_shapes[m->shape].member, a->values[i],
                            strlen(a->values[i]), &e);
        if (rc) {
            cJSON_Delete(list);
            return rc;
        }
        cJSON_AddItemToArray(list, e);
    }
    *out = list;
    return 0;
}

/* unpack_argument (file://), ParamShorthandParser, then unpack_cli_arg. */
static int unpack_arg(const arg_value_t *a, cJSON **out)
{
    const model_member_t *m = a->member;
    int is_list = model_shapes[m->shape].type == MT_LIST;
    char *file = NULL;
    size_t flen = 0;
    /* a list with one value is looked at as that value */
    if (!is_list || a->nvalues == 1) {
        sbuf_t msg = { 0 };
        int r = load_paramfile(a->values[0], &file, &flen, &msg);
        int rc = r < 0 ? param_error(m->cli_name, sb_str(&msg)) : 0;
        sb_free(&msg);
        if (rc)
            return rc;
    }
    if (file || !is_list) {
        int rc = file ? unpack_value(a, file, flen, out)
                      : unpack_value(a, a->values[0], strlen(a->values[0]), out);
        free(file);
        return rc;
    }
    /* a list given as one or more command-line values */
    if (old_list_case(a->op, m) && !opens_json(a->values[0]))
        return old_list_values(a, out);
    if (is_complex(m->shape) && !opens_json(a->values[0]))
        return shorthand_list(a, out);
    if (a->nvalues == 1 && awscli_lstrip(a->values[0])[0] == '[')
        return json_arg(m->cli_name, a->values[0], strlen(a->values[0]), out);
    return value_list(a, out);
}

/* -- argument parsing ------------------------------------------------------------------------ */

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
            awscli_usage_error("argument --%s: ignored explicit argument '%s'", d->name, inline_val);
            return -1;
        }
        *(int *)(base + d->offset) = 1;
        return 0;
    }
    const char *v = inline_val;
    if (!v) {
        if (*i + 1 >= argc || (argv[*i + 1][0] == '-' && argv[*i + 1][1] == '-')) {
            awscli_usage_error("argument --%s: expected one argument", d->name);
            return -1;
        }
        v = argv[++*i];
    }
    if (d->choices) {
        int ok = 0;
        for (int k = 0; d->choices[k]; k++)
            ok |= strcmp(d->choices[k], v) == 0;
        if (!ok) {
            awscli_invalid_choice(d->name, d->choices);
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

const model_operation_t *awscli_find_operation(const char *service, const char *operation)
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
            awscli_usage_error("ambiguous option: %s could match %s", arg, sb_str(&m));
            sb_free(&m);
            return -1;
        }
    }
    return 0;
}

/* A word that is not an option: the service, the operation, `help`, or unknown. */
static void take_word(parsed_t *p, char *a, const model_operation_t **op)
{
    if (!p->service) {
        p->service = a;
    } else if (!p->operation) {
        p->operation = a;
        *op = awscli_find_operation(p->service, a);
    } else if (strcmp(a, "help") == 0 && *op) {
        p->help = 1;
    } else {
        add_unknown(p, a);
    }
}

/* --cli-input-json/yaml and --generate-cli-skeleton: 1 taken, 0 not one of them, -1 after
 * the usage error. */
static int take_input_option(parsed_t *p, const char *name, size_t nlen, const char *inline_val,
                             int argc, char **argv, int *i)
{
    const char **input = NULL;
    if (nlen == 14 && strncmp(name, "cli-input-json", nlen) == 0)
        input = &p->cli_input_json;
    else if (nlen == 14 && strncmp(name, "cli-input-yaml", nlen) == 0)
        input = &p->cli_input_yaml;
    if (input) {
        if (!inline_val && (*i + 1 >= argc || is_option(argv[*i + 1]))) {
            awscli_usage_error("argument --%.*s: expected one argument", (int)nlen, name);
            return -1;
        }
        *input = inline_val ? inline_val : argv[++*i];
        return 1;
    }
    if (nlen != 21 || strncmp(name, "generate-cli-skeleton", nlen) != 0)
        return 0;
    const char *v = inline_val;
    if (!v && *i + 1 < argc && !is_option(argv[*i + 1]))
        v = argv[++*i];
    if (!v)
        v = "input";
    if (strcmp(v, "input") && strcmp(v, "yaml-input") && strcmp(v, "output")) {
        awscli_usage_error("argument --generate-cli-skeleton: invalid choice: '%s' (choose from "
                           "'input', 'output', 'yaml-input')", v);
        return -1;
    }
    p->skeleton = v;
    return 1;
}

/* A parameter of the operation: its value, or a list's values up to the next option (given
 * again, the last one counts). 0, or RC_PARAM after the usage error. */
static int take_param(parsed_t *p, const model_operation_t *op, const model_member_t *m,
                      const char *inline_val, int argc, char **argv, int *i)
{
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
    if (!slot->values)
        return awscli_fail(RC_GENERAL, "MemoryError");
    if (inline_val)
        slot->values[slot->nvalues++] = (char *)inline_val;
    /* argparse takes "-5" as a value only when it reads as a negative number */
    while ((!inline_val || is_list) && *i + 1 < argc && !is_option(argv[*i + 1])) {
        slot->values[slot->nvalues++] = argv[++*i];
        if (!is_list)
            break;
    }
    if (slot->nvalues == 0) {
        awscli_usage_error("argument --%s: expected %s", m->cli_name,
                           is_list ? "at least one argument" : "one argument");
        return RC_PARAM;
    }
    return 0;
}

/* One long option at argv[*i] (its value may follow). 0, or RC_PARAM after the error. */
static int take_option(parsed_t *p, const model_operation_t *op, int argc, char **argv, int *i)
{
    char *a = argv[*i];
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    const char *inline_val = eq ? eq + 1 : NULL;
    const gopt_def_t *d = find_gopt(name, nlen);
    /* argparse's abbreviations: the global parser first takes a unique prefix of one of its
     * options, then the operation's parser one of its own; more than one is an error */
    if (!d && !(nlen == 4 && strncmp(name, "help", 4) == 0)) {
        const char *full = NULL;
        if (resolve_prefix(a, name, nlen, op, &d, &full) < 0)
            return RC_PARAM;
        if (full) {
            name = full;
            nlen = strlen(full);
        }
    }
    if (d)
        return take_global(p, d, inline_val, argc, argv, i) != 0 ? RC_PARAM : 0;
    if (nlen == 4 && strncmp(name, "help", 4) == 0) {
        p->help = 1;
        return 0;
    }
    if (!op) {
        add_unknown(p, a);
        return 0;
    }
    int r = take_input_option(p, name, nlen, inline_val, argc, argv, i);
    if (r != 0)
        return r < 0 ? RC_PARAM : 0;
    const model_member_t *m = find_cli_member(op, name, nlen);
    if (!m) {
        add_unknown(p, a);
        return 0;
    }
    return take_param(p, op, m, inline_val, argc, argv, i);
}

int awscli_parse_argv(int argc, char **argv, parsed_t *p, const model_operation_t **opp)
{
    const model_operation_t *op = NULL;
    for (int i = 0; i < argc; i++) {
        if (!is_option(argv[i])) {
            take_word(p, argv[i], &op);
            continue;
        }
        int rc = take_option(p, op, argc, argv, &i);
        if (rc)
            return rc;
    }
    *opp = op;
    return 0;
}

void awscli_parsed_free(parsed_t *p)
{
    for (size_t i = 0; i < p->nargs; i++)
        free(p->args[i].values);
    sb_free(&p->unknown);
}

/* argparse's required arguments (relaxed by --cli-input-json/yaml), then unknown options. */
int awscli_check_arguments(parsed_t *p, const model_operation_t *op)
{
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
        int absent = missing.len != 0;
        if (absent)
            awscli_usage_error("the following arguments are required: %s", sb_str(&missing));
        sb_free(&missing);
        if (absent)
            return RC_PARAM;
    }
    if (p->unknown.len) {
        fputs("\n", stderr);
        fputs(awscli_usage, stderr);
        fprintf(stderr, "\nUnknown options: %s\n\n", sb_str(&p->unknown));
        return RC_PARAM;
    }
    return 0;
}

/* -- --cli-input-json / --cli-input-yaml ----------------------------------------------------- */

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
            rc = out_of_memory(err) ? memory_error()
                 : awscli_fail(RC_PARAM, "Error parsing parameter '--%s': Invalid YAML: %s",
                               cli_name, err);
    } else if (pyjson_parse(text, len, out, err, sizeof err) != 0 && out_of_memory(err)) {
        rc = memory_error();
    } else if (!*out) { /* bad JSON */
        sbuf_t m = { 0 };
        sb_printf(&m, "Invalid JSON: %s\nJSON received: ", err);
        sb_putn(&m, text, len);
        rc = param_error(cli_name, sb_str(&m));
        sb_free(&m);
    }
    if (rc == 0 && !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        rc = awscli_fail(RC_PARAM, "Invalid type for --%s: the input must be an object", cli_name);
    }
    free(file);
    return rc;
}

int awscli_build_params(parsed_t *p, const model_operation_t *op, cJSON **params)
{
    if (p->cli_input_json && p->cli_input_yaml)
        return awscli_fail(RC_PARAM, "Only one --cli-input- parameter may be specified.");
    const model_shape_t *in = &model_shapes[op->input];
    cJSON *out = cJSON_CreateObject();
    if (!out)
        return memory_error();
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
            if (!cJSON_AddItemToObject(out, in->members[i].name, v)) {
                cJSON_Delete(v);
                cJSON_Delete(out);
                return memory_error();
            }
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
        for (cJSON *c = doc->child; c && !rc; c = c->next) {
            if (cJSON_GetObjectItemCaseSensitive(out, c->string))
                continue;
            cJSON *v = pyjson_dup(c);
            if (!v || !cJSON_AddItemToObject(out, c->string, v)) {
                cJSON_Delete(v);
                rc = memory_error();
            }
        }
        cJSON_Delete(doc);
        if (rc) {
            cJSON_Delete(out);
            return rc;
        }
    }
    *params = out;
    return 0;
}
