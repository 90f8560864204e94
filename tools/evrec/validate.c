/* botocore's ParamValidator, member for member (see validate.h). */
#define _GNU_SOURCE
#include "validate.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "util_time.h"
#include "util_utf8.h"

/* 1: botocore's checks only (no maximum lengths or values, no enumerations) */
static int botocore_only;

static void line(sbuf_t *r, int *count)
{
    if (*count)
        sb_putc(r, '\n');
    (*count)++;
}

static const char *display_name(const char *name) { return *name ? (*name == '.' ? name + 1 : name) : "input"; }

static void invalid_type(sbuf_t *r, int *count, const char *name, const cJSON *v, const char *valid)
{
    line(r, count);
    sb_printf(r, "Invalid type for parameter %s, value: ", display_name(name));
    pyjson_str(r, v);
    sb_printf(r, ", type: %s, valid types: %s", pyjson_type_name(v), valid);
}

static void num_str(char *buf, size_t len, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%.15g", v);
}

static void length_check(sbuf_t *r, int *count, const char *name, size_t n, const model_shape_t *s)
{
    char m[64];
    if (s->has_min && (double)n < s->min) {
        num_str(m, sizeof m, s->min);
        line(r, count);
        sb_printf(r, "Invalid length for parameter %s, value: %zu, valid min length: %s",
                  display_name(name), n, m);
    } else if (!botocore_only && s->has_max && (double)n > s->max) {
        num_str(m, sizeof m, s->max);
        line(r, count);
        sb_printf(r, "Invalid length for parameter %s, value: %zu, valid max length: %s",
                  display_name(name), n, m);
    }
}

static void range_check(sbuf_t *r, int *count, const char *name, const cJSON *v,
                        const model_shape_t *s)
{
    char m[64];
    if (s->has_min && v->valuedouble < s->min) {
        num_str(m, sizeof m, s->min);
        line(r, count);
        sb_printf(r, "Invalid value for parameter %s, value: ", display_name(name));
        pyjson_str(r, v);
        sb_printf(r, ", valid min value: %s", m);
    } else if (!botocore_only && s->has_max && v->valuedouble > s->max) {
        num_str(m, sizeof m, s->max);
        line(r, count);
        sb_printf(r, "Invalid value for parameter %s, value: ", display_name(name));
        pyjson_str(r, v);
        sb_printf(r, ", valid max value: %s", m);
    }
}

static void validate(const cJSON *v, int shape, const char *name, sbuf_t *r, int *count);

static void validate_structure(const cJSON *v, const model_shape_t *s, const char *name, sbuf_t *r,
                               int *count)
{
    if (!cJSON_IsObject(v)) {
        invalid_type(r, count, name, v, "<class 'dict'>");
        return;
    }
    for (size_t i = 0; i < s->nmembers; i++) {
        if (s->members[i].required && !cJSON_GetObjectItemCaseSensitive(v, s->members[i].name)) {
            line(r, count);
            sb_printf(r, "Missing required parameter in %s: \"%s\"", display_name(name),
                      s->members[i].name);
        }
    }
    for (const cJSON *c = v->child; c; c = c->next) {
        int known = 0;
        for (size_t i = 0; i < s->nmembers; i++)
            if (strcmp(c->string, s->members[i].name) == 0)
                known = 1;
        if (!known) {
            line(r, count);
            sb_printf(r, "Unknown parameter in %s: \"%s\", must be one of: ", display_name(name),
                      c->string);
            for (size_t i = 0; i < s->nmembers; i++)
                sb_printf(r, "%s%s", i ? ", " : "", s->members[i].name);
        }
    }
    for (const cJSON *c = v->child; c; c = c->next) {
        for (size_t i = 0; i < s->nmembers; i++) {
            if (strcmp(c->string, s->members[i].name) == 0) {
                sbuf_t sub = { 0 };
                sb_printf(&sub, "%s.%s", name, c->string);
                validate(c, s->members[i].shape, sb_str(&sub), r, count);
                sb_free(&sub);
            }
        }
    }
}

static void validate(const cJSON *v, int shape, const char *name, sbuf_t *r, int *count)
{
    const model_shape_t *s = &model_shapes[shape];
    switch (s->type) {
    case MT_STRUCTURE:
        validate_structure(v, s, name, r, count);
        break;
    case MT_STRING:
        if (!cJSON_IsString(v)) {
            invalid_type(r, count, name, v, "<class 'str'>");
            break;
        }
        length_check(r, count, name, util_utf8_count(v->valuestring), s);
        if (s->nenums && !botocore_only) {
            size_t i;
            for (i = 0; i < s->nenums; i++)
                if (strcmp(v->valuestring, s->enums[i]) == 0)
                    break;
            if (i == s->nenums) {
                line(r, count);
                sb_printf(r, "Invalid value for parameter %s, value: %s, valid values: ",
                          display_name(name), v->valuestring);
                for (i = 0; i < s->nenums; i++)
                    sb_printf(r, "%s%s", i ? ", " : "", s->enums[i]);
            }
        }
        break;
    case MT_LIST:
        if (!cJSON_IsArray(v)) {
            invalid_type(r, count, name, v, "<class 'list'>, <class 'tuple'>");
            break;
        }
        length_check(r, count, name, (size_t)cJSON_GetArraySize(v), s);
        {
            int i = 0;
            for (const cJSON *c = v->child; c; c = c->next, i++) {
                sbuf_t sub = { 0 };
                sb_printf(&sub, "%s[%d]", name, i);
                validate(c, s->member, sb_str(&sub), r, count);
                sb_free(&sub);
            }
        }
        break;
    case MT_MAP:
        if (!cJSON_IsObject(v)) {
            invalid_type(r, count, name, v, "<class 'dict'>");
            break;
        }
        length_check(r, count, name, (size_t)cJSON_GetArraySize(v), s);
        for (const cJSON *c = v->child; c; c = c->next) {
            sbuf_t sub = { 0 };
            cJSON *key = cJSON_CreateString(c->string);
            sb_printf(&sub, "%s (key: %s)", name, c->string);
            if (!key) { /* reported as a problem: the parameters are not sent unchecked */
                line(r, count);
                sb_puts(r, "out of memory");
                sb_free(&sub);
                break;
            }
            validate(key, s->key, sb_str(&sub), r, count);
            cJSON_Delete(key);
            sub.len = 0;
            sb_printf(&sub, "%s.%s", name, c->string);
            validate(c, s->value, sb_str(&sub), r, count);
            sb_free(&sub);
        }
        break;
    case MT_INTEGER:
    case MT_LONG:
        /* Python's bool is an int */
        if (!(cJSON_IsBool(v) || pyjson_is_int(v))) {
            invalid_type(r, count, name, v, "<class 'int'>");
            break;
        }
        if (cJSON_IsNumber(v))
            range_check(r, count, name, v, s);
        break;
    case MT_DOUBLE:
    case MT_FLOAT:
        if (!(cJSON_IsBool(v) || cJSON_IsNumber(v))) {
            invalid_type(r, count, name, v,
                         "<class 'float'>, <class 'decimal.Decimal'>, <class 'int'>");
            break;
        }
        if (cJSON_IsNumber(v))
            range_check(r, count, name, v, s);
        break;
    case MT_BOOLEAN:
        if (!cJSON_IsBool(v))
            invalid_type(r, count, name, v, "<class 'bool'>");
        break;
    case MT_BLOB:
        if (!cJSON_IsString(v))
            invalid_type(r, count, name, v,
                         "<class 'bytes'>, <class 'bytearray'>, file-like object");
        break;
    case MT_TIMESTAMP: {
        double t;
        if (timestamp_parse(v, &t) != 0)
            invalid_type(r, count, name, v, "<class 'datetime.datetime'>, timestamp-string");
        break;
    }
    }
}

int validate_params(const cJSON *params, int shape, sbuf_t *report)
{
    int count = 0;
    validate(params, shape, "", report, &count);
    return count;
}

int validate_botocore(const cJSON *params, int shape, sbuf_t *report)
{
    int count = 0;
    botocore_only = 1;
    validate(params, shape, "", report, &count);
    botocore_only = 0;
    return count;
}

/* -- timestamps -------------------------------------------------------------------------------- */

static int iso_parse(const char *s, double *epoch)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    double frac = 0;
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (util_digits(&p, 4, &y) != 0)
        return -1;
    if (*p == '-')
        p++;
    if (util_digits(&p, 2, &mo) != 0)
        return -1;
    if (*p == '-')
        p++;
    if (util_digits(&p, 2, &d) != 0)
        return -1;
    int tz = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (util_digits(&p, 2, &h) != 0)
            return -1;
        if (*p == ':')
            p++;
        if (util_digits(&p, 2, &mi) == 0) {
            if (*p == ':')
                p++;
            if (isdigit((unsigned char)*p)) {
                if (util_digits(&p, 2, &sec) != 0)
                    return -1;
                if (*p == '.' || *p == ',') {
                    p++;
                    double scale = 0.1;
                    if (!isdigit((unsigned char)*p))
                        return -1;
                    while (isdigit((unsigned char)*p)) {
                        frac += (*p - '0') * scale;
                        scale /= 10;
                        p++;
                    }
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, th, tm = 0;
            p++;
            if (util_digits(&p, 2, &th) != 0)
                return -1;
            if (*p == ':')
                p++;
            if (isdigit((unsigned char)*p) && util_digits(&p, 2, &tm) != 0)
                return -1;
            tz = sign * (th * 3600 + tm * 60);
        }
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return -1;
    if (!util_valid_civil(y, mo, d, h, mi, sec))
        return -1;
    *epoch = (double)util_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400.0 + h * 3600 + mi * 60 + sec - tz + frac;
    return 0;
}

int timestamp_parse(const cJSON *value, double *epoch)
{
    if (cJSON_IsNumber(value) || cJSON_IsBool(value)) {
        double v = cJSON_IsBool(value) ? (cJSON_IsTrue(value) ? 1 : 0) : value->valuedouble;
        if (!isfinite(v) || fabs(v) > 253402300799.0)
            return -1;
        *epoch = v;
        return 0;
    }
    if (!cJSON_IsString(value))
        return -1;
    const char *s = value->valuestring;
    char *end;
    double v = strtod(s, &end);
    if (end != s && *end == '\0' && !strpbrk(s, "xXnNiI") && isfinite(v)) {
        *epoch = v;
        return 0;
    }
    return iso_parse(s, epoch);
}
