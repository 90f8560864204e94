/* The AWS CLI v2's yaml and yaml-stream output (ruamel's safe dumper style; see
 * aws_output.h): block style, the scalar styles ruamel picks, folding of long strings. */
#define _GNU_SOURCE
#include "aws_output_internal.h"
#include "port.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int matches(const char *re, const char *s)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
        return 1; /* out of memory: quoted, the scalar is still read as the same string */
    int m = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return m;
}

/* Would ruamel's YAML 1.2 resolver read this plain scalar as something other than a string? */
static int resolves_to_non_string(const char *s)
{
    static const char *const res[] = {
        "^(true|True|TRUE|false|False|FALSE)$",
        "^(~|null|Null|NULL)$",
        "^[-+]?(0b[0-1_]+|0o?[0-7_]+|[0-9_]+|0x[0-9a-fA-F_]+)$",
        "^[-+]?([0-9][0-9_]*)(:[0-5]?[0-9])+$",
        "^[-+]?(([0-9][0-9_]*)(\\.[0-9_]*)?([eE][-+]?[0-9]+)?|\\.[0-9_]+([eE][-+]?[0-9]+)?)$",
        "^[-+]?([0-9][0-9_]*)(:[0-5]?[0-9])+\\.[0-9_]*$",
        "^[-+]?\\.(inf|Inf|INF)$",
        "^\\.(nan|NaN|NAN)$",
        "^[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
        "(([Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](\\.[0-9]*)?"
        "([ \t]*(Z|[-+][0-9][0-9]?(:[0-9][0-9])?))?)?$",
        "^<<$",
        "^=$",
    };
    for (size_t i = 0; i < sizeof res / sizeof res[0]; i++)
        if (matches(res[i], s))
            return 1;
    return 0;
}

typedef enum { ST_PLAIN, ST_SINGLE, ST_DOUBLE } yaml_style_t;

/* The code point of the UTF-8 sequence at p and its length (*n); a stray octet is itself. */
static unsigned long utf8_cp(const unsigned char *p, size_t *n)
{
    if (*p >= 0xF0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80) {
        *n = 4;
        return ((p[0] & 0x07UL) << 18) | ((p[1] & 0x3FUL) << 12) | ((p[2] & 0x3FUL) << 6) |
               (p[3] & 0x3FUL);
    }
    if (*p >= 0xE0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
        *n = 3;
        return ((p[0] & 0x0FUL) << 12) | ((p[1] & 0x3FUL) << 6) | (p[2] & 0x3FUL);
    }
    if (*p >= 0xC0 && (p[1] & 0xC0) == 0x80) {
        *n = 2;
        return ((p[0] & 0x1FUL) << 6) | (p[1] & 0x3FUL);
    }
    *n = 1;
    return *p;
}

/* What the AWS CLI's ruamel writes as is with allow_unicode: not C1 controls, the BOM,
 * U+FFFE/U+FFFF or anything past U+FFFF (those force double quotes and escapes). */
static int y_printable(unsigned long cp)
{
    return cp == 0x85 || (cp >= 0xA0 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD && cp != 0xFEFF);
}

static yaml_style_t scalar_style(const char *s)
{
    if (!*s)
        return ST_SINGLE;
    int special = 0, line_break = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            line_break = 1;
        else if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
            special = 1;
        else if (*p >= 0x80) {
            size_t n;
            if (!y_printable(utf8_cp(p, &n)))
                special = 1;
            p += n - 1;
        }
    }
    if (special)
        return ST_DOUBLE;
    if (line_break)
        return ST_SINGLE;
    if (resolves_to_non_string(s))
        return ST_SINGLE;
    size_t n = strlen(s);
    if (s[0] == ' ' || s[n - 1] == ' ')
        return ST_SINGLE;
    if (strchr("#,[]{}&*!|>'\"%@`", s[0]))
        return ST_SINGLE;
    if (strchr("-?:", s[0]) && (s[1] == '\0' || s[1] == ' '))
        return ST_SINGLE;
    if (strstr(s, ": ") || strstr(s, " #") || s[n - 1] == ':')
        return ST_SINGLE;
    return ST_PLAIN;
}

typedef struct yemit {
    sbuf_t *b;
    long column;
} yemit_t;

static void y_write(yemit_t *e, const char *s, size_t n)
{
    sb_putn(e->b, s, n);
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            e->column++;
}

static void y_indent(yemit_t *e, int indent)
{
    sb_putc(e->b, '\n');
    e->column = 0;
    for (int i = 0; i < indent; i++)
        y_write(e, " ", 1);
}

/* write_plain / write_single_quoted: a single space past column 80 becomes a line break. */
static void y_folded(yemit_t *e, const char *s, int indent, int quoted)
{
    size_t len = strlen(s), start = 0, end = 0;
    int sp = 0;
    if (quoted)
        y_write(e, "'", 1);
    while (end <= len) {
        char ch = end < len ? s[end] : '\0';
        if (sp) {
            if (ch != ' ') {
                if (start + 1 == end && e->column > 80 && (!quoted || (start != 0 && end != len))) {
                    y_indent(e, indent);
                } else {
                    y_write(e, s + start, end - start);
                }
                start = end;
            }
        } else if (ch == '\0' || ch == ' ' || (quoted && ch == '\'')) {
            if (start < end)
                y_write(e, s + start, end - start);
            if (quoted && ch == '\'') {
                y_write(e, "''", 2);
                end++;
                start = end;
                continue;
            }
            start = end;
        }
        sp = ch == ' ';
        end++;
    }
    if (quoted)
        y_write(e, "'", 1);
}

static void y_double(yemit_t *e, const char *s)
{
    sbuf_t q = { 0 };
    sb_putc(&q, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sb_puts(&q, "\\\""); break;
        case '\\': sb_puts(&q, "\\\\"); break;
        case '\t': sb_puts(&q, "\\t"); break;
        case '\n': sb_puts(&q, "\\n"); break;
        case '\r': sb_puts(&q, "\\r"); break;
        case 0x07: sb_puts(&q, "\\a"); break;
        case 0x08: sb_puts(&q, "\\b"); break;
        case 0x0b: sb_puts(&q, "\\v"); break;
        case 0x0c: sb_puts(&q, "\\f"); break;
        case 0x1b: sb_puts(&q, "\\e"); break;
        case 0x00: sb_puts(&q, "\\0"); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                sb_printf(&q, "\\x%02X", *p);
            } else if (*p >= 0x80) {
                size_t n;
                unsigned long cp = utf8_cp(p, &n);
                if (cp == 0x85 || cp == 0x2028 || cp == 0x2029)
                    sb_puts(&q, cp == 0x85 ? "\\N" : cp == 0x2028 ? "\\L" : "\\P");
                else if (y_printable(cp))
                    sb_putn(&q, (const char *)p, n);
                else if (cp <= 0xFF)
                    sb_printf(&q, "\\x%02lX", cp);
                else if (cp <= 0xFFFF)
                    sb_printf(&q, "\\u%04lX", cp);
                else
                    sb_printf(&q, "\\U%08lX", cp);
                p += n - 1;
            } else {
                sb_putc(&q, (char)*p);
            }
        }
    }
    sb_putc(&q, '"');
    y_write(e, sb_str(&q), q.len);
    e->b->oom |= q.oom;
    sb_free(&q);
}

static void y_string(yemit_t *e, const char *s, int indent)
{
    switch (scalar_style(s)) {
    case ST_PLAIN: y_folded(e, s, indent, 0); break;
    case ST_SINGLE:
        if (strchr(s, '\n')) {
            /* a line break inside single quotes is written as an empty line */
            y_write(e, "'", 1);
            for (const char *p = s; *p; p++) {
                if (*p == '\n') {
                    sb_putc(e->b, '\n');
                    y_indent(e, indent);
                } else if (*p == '\'') {
                    y_write(e, "''", 2);
                } else {
                    y_write(e, p, 1);
                }
            }
            y_write(e, "'", 1);
        } else {
            y_folded(e, s, indent, 1);
        }
        break;
    case ST_DOUBLE: y_double(e, s); break;
    }
}

static void y_scalar(yemit_t *e, const cJSON *v, int indent)
{
    sbuf_t t = { 0 };
    if (cJSON_IsString(v)) {
        y_string(e, v->valuestring, indent);
        return;
    }
    if (!v || cJSON_IsNull(v))
        sb_puts(&t, "null");
    else if (cJSON_IsTrue(v))
        sb_puts(&t, "true");
    else if (cJSON_IsFalse(v))
        sb_puts(&t, "false");
    else if (cJSON_IsNumber(v) && !pyjson_is_int(v) && isnan(v->valuedouble))
        sb_puts(&t, ".nan");
    else if (cJSON_IsNumber(v) && !pyjson_is_int(v) && isinf(v->valuedouble))
        sb_puts(&t, v->valuedouble > 0 ? ".inf" : "-.inf");
    else
        pyjson_number_repr(&t, v);
    y_write(e, sb_str(&t), t.len);
    e->b->oom |= t.oom;
    sb_free(&t);
}

static void y_node(yemit_t *e, const cJSON *v, int indent, int in_seq);

static void y_mapping(yemit_t *e, const cJSON *v, int indent, int first_inline)
{
    size_t n;
    const char **keys = aws_out_sorted_keys(v, 1, 1, &n, &e->b->oom);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 || !first_inline)
            y_indent(e, indent);
        y_string(e, keys[i], indent);
        y_write(e, ":", 1);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, keys[i]);
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && c->child) {
            y_node(e, c, cJSON_IsObject(c) ? indent + 2 : indent, 0);
        } else {
            y_write(e, " ", 1);
            y_node(e, c, indent + 2, 0);
        }
    }
    port_free(keys);
}

static void y_sequence(yemit_t *e, const cJSON *v, int indent, int first_inline)
{
    int first = 1;
    for (const cJSON *c = v->child; c; c = c->next) {
        if (!first || !first_inline)
            y_indent(e, indent);
        first = 0;
        y_write(e, "- ", 2);
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && c->child) {
            if (cJSON_IsObject(c))
                y_mapping(e, c, indent + 2, 1);
            else
                y_sequence(e, c, indent + 2, 1);
        } else {
            y_node(e, c, indent + 2, 1);
        }
    }
}

static void y_node(yemit_t *e, const cJSON *v, int indent, int in_seq)
{
    (void)in_seq;
    if (cJSON_IsObject(v)) {
        if (!v->child)
            y_write(e, "{}", 2);
        else
            y_mapping(e, v, indent, 0);
    } else if (cJSON_IsArray(v)) {
        if (!v->child)
            y_write(e, "[]", 2);
        else
            y_sequence(e, v, indent, 0);
    } else {
        y_scalar(e, v, indent);
    }
}

void aws_yaml_dump(sbuf_t *b, const cJSON *v)
{
    yemit_t e = { b, 0 };
    if (cJSON_IsObject(v) && v->child)
        y_mapping(&e, v, 0, 1);
    else if (cJSON_IsArray(v) && v->child)
        y_sequence(&e, v, 0, 1);
    else
        y_node(&e, v, 0, 0);
    sb_putc(b, '\n');
}

void aws_out_yaml_value(sbuf_t *b, const cJSON *v)
{
    if (aws_out_is_scalar(v)) { /* json.dump for scalars */
        pyjson_dump(b, v, -1);
        sb_putc(b, '\n');
    } else {
        aws_yaml_dump(b, v);
    }
}

