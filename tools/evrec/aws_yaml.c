/* --cli-input-yaml: libyaml events into cJSON values (see aws_yaml.h). */
#define _GNU_SOURCE
#include "aws_yaml.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "pyjson.h"

/* 1 when s matches re, 0 when not, -1 when the regex cannot be compiled (out of memory). */
static int yre_match(const char *re, const char *s)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
        return -1;
    int m = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return m;
}

enum { Y_NULL, Y_TRUE, Y_FALSE, Y_INT, Y_HEX, Y_OCT, Y_FLOAT, Y_INF, Y_NAN };

/* The YAML 1.2 core schema's resolution of a plain scalar; NULL when out of memory (a regex
 * that cannot be compiled is not taken for "no match": the value would change type). */
static cJSON *plain_scalar(const char *s)
{
    static const struct { const char *re; int kind; } kinds[] = {
        { "^(~|null|Null|NULL)$", Y_NULL },
        { "^(true|True|TRUE)$", Y_TRUE },
        { "^(false|False|FALSE)$", Y_FALSE },
        { "^[-+]?[0-9]+$", Y_INT },
        { "^0x[0-9a-fA-F]+$", Y_HEX },
        { "^0o[0-7]+$", Y_OCT },
        { "^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$", Y_FLOAT },
        { "^[-+]?\\.(inf|Inf|INF)$", Y_INF },
        { "^\\.(nan|NaN|NAN)$", Y_NAN },
    };
    int kind = *s ? -1 : Y_NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0] && kind < 0; i++) {
        int m = yre_match(kinds[i].re, s);
        if (m < 0)
            return NULL;
        if (m)
            kind = kinds[i].kind;
    }
    switch (kind) {
    case Y_NULL: return cJSON_CreateNull();
    case Y_TRUE: return cJSON_CreateTrue();
    case Y_FALSE: return cJSON_CreateFalse();
    case Y_INT: return pyjson_number_literal(s[0] == '+' ? s + 1 : s);
    case Y_HEX: return pyjson_int(strtoll(s + 2, NULL, 16));
    case Y_OCT: return pyjson_int(strtoll(s + 2, NULL, 8));
    case Y_FLOAT: return pyjson_float(strtod(s, NULL));
    case Y_INF: return pyjson_number_literal(s[0] == '-' ? "-Infinity" : "Infinity");
    case Y_NAN: return pyjson_number_literal("NaN");
    default: return cJSON_CreateString(s);
    }
}

static cJSON *node(yaml_parser_t *p, yaml_event_t *ev, char *err, size_t errlen, int depth);

static cJSON *next_node(yaml_parser_t *p, char *err, size_t errlen, int depth, int *end)
{
    yaml_event_t ev;
    if (!yaml_parser_parse(p, &ev)) {
        snprintf(err, errlen, "%s at line %zu column %zu", p->problem ? p->problem : "invalid YAML",
                 p->problem_mark.line + 1, p->problem_mark.column + 1);
        return NULL;
    }
    if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
        *end = 1;
        yaml_event_delete(&ev);
        return NULL;
    }
    cJSON *v = node(p, &ev, err, errlen, depth);
    yaml_event_delete(&ev);
    return v;
}

/* v, or NULL with "out of memory" in err. */
static cJSON *made(cJSON *v, char *err, size_t errlen)
{
    if (!v)
        snprintf(err, errlen, "out of memory");
    return v;
}

/* o[key] = v: a repeated key keeps its first place with the last value (v deleted when out
 * of memory, 0 returned). */
static int put(cJSON *o, const char *key, cJSON *v)
{
    cJSON *old = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!old) {
        if (cJSON_AddItemToObject(o, key, v))
            return 1;
        cJSON_Delete(v);
        return 0;
    }
    size_t n = strlen(key) + 1;
    if (!(v->string = cJSON_malloc(n))) { /* the key, in cJSON's allocator: the item owns it */
        cJSON_Delete(v);
        return 0;
    }
    memcpy(v->string, key, n);
    return cJSON_ReplaceItemViaPointer(o, old, v);
}

static cJSON *node(yaml_parser_t *p, yaml_event_t *ev, char *err, size_t errlen, int depth)
{
    if (depth > 200) {
        snprintf(err, errlen, "YAML nested too deeply");
        return NULL;
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        const char *s = (const char *)ev->data.scalar.value;
        int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag;
        return made(plain ? plain_scalar(s) : cJSON_CreateString(s), err, errlen);
    }
    if (ev->type == YAML_SEQUENCE_START_EVENT) {
        cJSON *a = made(cJSON_CreateArray(), err, errlen);
        for (; a;) {
            int end = 0;
            cJSON *v = next_node(p, err, errlen, depth + 1, &end);
            if (end)
                return a;
            if (!v) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, v);
        }
        return NULL;
    }
    if (ev->type == YAML_MAPPING_START_EVENT) {
        cJSON *o = made(cJSON_CreateObject(), err, errlen);
        for (; o;) {
            int end = 0;
            cJSON *k = next_node(p, err, errlen, depth + 1, &end);
            if (end)
                return o;
            if (!k) {
                cJSON_Delete(o);
                return NULL;
            }
            cJSON *v = next_node(p, err, errlen, depth + 1, &end);
            if (!v || end) {
                cJSON_Delete(k);
                cJSON_Delete(o);
                return NULL;
            }
            sbuf_t ks = { 0 };
            pyjson_str(&ks, k);
            int ok = 0;
            if (ks.oom)
                cJSON_Delete(v);
            else
                ok = put(o, sb_str(&ks), v);
            sb_free(&ks);
            cJSON_Delete(k);
            if (!ok) {
                cJSON_Delete(o);
                return made(NULL, err, errlen);
            }
        }
        return NULL;
    }
    if (ev->type == YAML_ALIAS_EVENT) {
        snprintf(err, errlen, "YAML aliases are not supported");
        return NULL;
    }
    snprintf(err, errlen, "unexpected YAML event");
    return NULL;
}

int aws_yaml_load(const char *text, size_t len, cJSON **out, char *err, size_t errlen)
{
    yaml_parser_t p;
    *out = NULL;
    if (!yaml_parser_initialize(&p)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    cJSON *doc = NULL;
    int rc = -1;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            snprintf(err, errlen, "%s at line %zu column %zu",
                     p.problem ? p.problem : "invalid YAML", p.problem_mark.line + 1,
                     p.problem_mark.column + 1);
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            if (!doc)
                doc = made(cJSON_CreateNull(), err, errlen);
            rc = doc ? 0 : -1;
            break;
        }
        if (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
            t == YAML_MAPPING_START_EVENT || t == YAML_ALIAS_EVENT) {
            cJSON *v = node(&p, &ev, err, errlen, 0);
            yaml_event_delete(&ev);
            if (!v)
                break;
            if (!doc)
                doc = v;
            else
                cJSON_Delete(v);
            continue;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (rc != 0) {
        cJSON_Delete(doc);
        return -1;
    }
    *out = doc;
    return 0;
}
