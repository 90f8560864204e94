/* --cli-input-yaml: libyaml events into cJSON values (see aws_yaml.h). */
#define _GNU_SOURCE
#include "aws_yaml.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "pyjson.h"

static int yre_match(const char *re, const char *s)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    int m = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return m;
}

static cJSON *plain_scalar(const char *s)
{
    if (!*s || yre_match("^(~|null|Null|NULL)$", s))
        return cJSON_CreateNull();
    if (yre_match("^(true|True|TRUE)$", s))
        return cJSON_CreateTrue();
    if (yre_match("^(false|False|FALSE)$", s))
        return cJSON_CreateFalse();
    if (yre_match("^[-+]?[0-9]+$", s))
        return pyjson_number_literal(s[0] == '+' ? s + 1 : s);
    if (yre_match("^0x[0-9a-fA-F]+$", s))
        return pyjson_int(strtoll(s + 2, NULL, 16));
    if (yre_match("^0o[0-7]+$", s))
        return pyjson_int(strtoll(s + 2, NULL, 8));
    if (yre_match("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$", s))
        return pyjson_float(strtod(s, NULL));
    if (yre_match("^[-+]?\\.(inf|Inf|INF)$", s))
        return pyjson_number_literal(s[0] == '-' ? "-Infinity" : "Infinity");
    if (yre_match("^\\.(nan|NaN|NAN)$", s))
        return pyjson_number_literal("NaN");
    return cJSON_CreateString(s);
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

static cJSON *node(yaml_parser_t *p, yaml_event_t *ev, char *err, size_t errlen, int depth)
{
    if (depth > 200) {
        snprintf(err, errlen, "YAML nested too deeply");
        return NULL;
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        const char *s = (const char *)ev->data.scalar.value;
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag)
            return plain_scalar(s);
        return cJSON_CreateString(s);
    }
    if (ev->type == YAML_SEQUENCE_START_EVENT) {
        cJSON *a = cJSON_CreateArray();
        for (;;) {
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
    }
    if (ev->type == YAML_MAPPING_START_EVENT) {
        cJSON *o = cJSON_CreateObject();
        for (;;) {
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
            if (cJSON_GetObjectItemCaseSensitive(o, sb_str(&ks)))
                cJSON_ReplaceItemInObjectCaseSensitive(o, sb_str(&ks), v);
            else
                cJSON_AddItemToObject(o, sb_str(&ks), v);
            sb_free(&ks);
            cJSON_Delete(k);
        }
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
                doc = cJSON_CreateNull();
            rc = 0;
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
