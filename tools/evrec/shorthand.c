/* Shorthand syntax, following awscli/shorthand.py rule for rule. */
#define _GNU_SOURCE
#include "shorthand.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "port.h"
#include "pyjson.h"

typedef struct sp {
    const char *s;
    size_t len, i;
    char *err;
    size_t errlen;
    int failed;
    int syntax; /* the failure is a ShorthandParseSyntaxError (may be backtracked over) */
} sp_t;

static int at_eof(sp_t *p) { return p->i >= p->len; }
static int cur(sp_t *p) { return at_eof(p) ? -1 : (unsigned char)p->s[p->i]; }

static int is_space(int c) { return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f); }

static void consume_ws(sp_t *p)
{
    while (!at_eof(p) && is_space(cur(p)))
        p->i++;
}

/* Python's _error_location: the input with a caret under the index, split at newlines. */
static void error_location(sp_t *p, size_t index, sbuf_t *b)
{
    size_t num_spaces = index;
    const char *v = p->s;
    size_t consumed_len = p->len;
    const char *remaining = "";
    for (size_t k = index; k > 0; k--) {
        if (v[k - 1] == '\n') {
            num_spaces = index - k;
            break;
        }
    }
    const char *nl = index < p->len ? memchr(v + index, '\n', p->len - index) : NULL;
    if (nl) {
        consumed_len = (size_t)(nl - v);
        remaining = nl;
    }
    sb_putn(b, v, consumed_len);
    sb_putc(b, '\n');
    for (size_t k = 0; k < num_spaces; k++)
        sb_putc(b, ' ');
    sb_putc(b, '^');
    sb_puts(b, remaining);
}

static void syntax_error(sp_t *p, const char *expected, const char *actual, size_t index)
{
    sbuf_t b = { 0 };
    sb_printf(&b, "Expected: '%s', received: '%s' for input:\n", expected, actual);
    error_location(p, index, &b);
    snprintf(p->err, p->errlen, "%s", sb_str(&b));
    sb_free(&b);
    p->failed = 1;
    p->syntax = 1;
}

/* v, or NULL with "out of memory" (not a syntax error: never backtracked over). */
static cJSON *made(sp_t *p, cJSON *v)
{
    if (!v && !p->failed) {
        snprintf(p->err, p->errlen, "out of memory");
        p->failed = 1;
        p->syntax = 0;
    }
    return v;
}

/* A copy of s in cJSON's allocator, for an item's key (cJSON frees it with cJSON_free). */
static char *key_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = cJSON_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int expect(sp_t *p, char ch, int ws)
{
    if (ws)
        consume_ws(p);
    if (at_eof(p)) {
        char e[2] = { ch, 0 };
        syntax_error(p, e, "EOF", p->i);
        return -1;
    }
    if (p->s[p->i] != ch) {
        char e[2] = { ch, 0 }, a[8];
        /* a whole UTF-8 character as Python would show it */
        size_t n = 1;
        while (p->i + n < p->len && ((unsigned char)p->s[p->i + n] & 0xC0) == 0x80 && n < 4)
            n++;
        memcpy(a, p->s + p->i, n);
        a[n] = 0;
        syntax_error(p, e, a, p->i);
        return -1;
    }
    p->i++;
    if (ws)
        consume_ws(p);
    return 0;
}

/* Character classes of _START_WORD, _FIRST_FOLLOW_CHARS and _SECOND_FOLLOW_CHARS. */
static int start_word(int c)
{
    if (c >= 0x80)
        return 1;
    return c == '!' || (c >= '#' && c <= '&') || (c >= '(' && c <= '+') || (c >= '-' && c <= '<') ||
           (c >= '>' && c <= 'Z') || (c >= '\\' && c <= 'z') || c >= '|';
}

static int first_follow(int c)
{
    if (c >= 0x80 || is_space(c))
        return 1;
    return c == '!' || (c >= '#' && c <= '&') || (c >= '(' && c <= '+') ||
           (c >= '-' && c <= '\\') || (c >= '^' && c <= '|') || c >= '~';
}

static int second_follow(int c)
{
    if (c >= 0x80 || is_space(c))
        return 1;
    return c == '!' || (c >= '#' && c <= '&') || (c >= '(' && c <= '+') || (c >= '-' && c <= '<') ||
           c >= '>';
}

/* Match (\\,|[start])(\\,|[follow])* at p->i; returns the length matched (0: none). */
static size_t match_word(sp_t *p, int (*follow)(int))
{
    size_t i = p->i;
    if (i + 1 < p->len && p->s[i] == '\\' && p->s[i + 1] == ',')
        i += 2;
    else if (i < p->len && start_word((unsigned char)p->s[i]))
        i++;
    else
        return 0;
    for (;;) {
        if (i + 1 < p->len && p->s[i] == '\\' && p->s[i + 1] == ',')
            i += 2;
        else if (i < p->len && follow((unsigned char)p->s[i]))
            i++;
        else
            break;
    }
    return i - p->i;
}

/* consumed.replace('\\,', ',').rstrip() */
static cJSON *word_value(sp_t *p, const char *s, size_t n)
{
    sbuf_t b = { 0 };
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '\\' && k + 1 < n && s[k + 1] == ',') {
            sb_putc(&b, ',');
            k++;
        } else {
            sb_putc(&b, s[k]);
        }
    }
    const char *str = sb_str(&b);
    size_t l = strlen(str);
    while (l > 0 && (is_space((unsigned char)str[l - 1])))
        l--;
    cJSON *v = NULL;
    if (!b.oom) {
        b.data[l] = '\0';
        v = cJSON_CreateString(b.data);
    }
    sb_free(&b);
    return made(p, v);
}

static cJSON *quoted(sp_t *p, char q)
{
    /* '(?:\\\\|\\'|[^'])*' */
    size_t i = p->i + 1;
    for (;;) {
        if (i >= p->len) {
            syntax_error(p, q == '\'' ? "<singled quoted>" : "<double quoted>", "<none>", p->i);
            return NULL;
        }
        if (p->s[i] == '\\' && i + 1 < p->len && (p->s[i + 1] == '\\' || p->s[i + 1] == q)) {
            i += 2;
            continue;
        }
        if (p->s[i] == q)
            break;
        i++;
    }
    /* value[1:-1], then replace \q by q, then \\\\ by \\ */
    sbuf_t a = { 0 }, b = { 0 };
    for (size_t k = p->i + 1; k < i; k++) {
        if (p->s[k] == '\\' && k + 1 < i && p->s[k + 1] == q) {
            sb_putc(&a, q);
            k++;
        } else {
            sb_putc(&a, p->s[k]);
        }
    }
    const char *as = sb_str(&a);
    for (size_t k = 0; as[k]; k++) {
        if (as[k] == '\\' && as[k + 1] == '\\') {
            sb_putc(&b, '\\');
            k++;
        } else {
            sb_putc(&b, as[k]);
        }
    }
    p->i = i + 1;
    cJSON *v = a.oom || b.oom ? NULL : cJSON_CreateString(sb_str(&b));
    sb_free(&a);
    sb_free(&b);
    return made(p, v);
}

static cJSON *first_value(sp_t *p)
{
    if (cur(p) == '\'')
        return quoted(p, '\'');
    if (cur(p) == '"')
        return quoted(p, '"');
    size_t n = match_word(p, first_follow);
    cJSON *v = word_value(p, p->s + p->i, n);
    p->i += n;
    return v;
}

static cJSON *second_value(sp_t *p)
{
    if (cur(p) == '\'')
        return quoted(p, '\'');
    if (cur(p) == '"')
        return quoted(p, '"');
    size_t n = match_word(p, second_follow);
    if (n == 0) {
        syntax_error(p, "<second>", "<none>", p->i);
        return NULL;
    }
    cJSON *v = word_value(p, p->s + p->i, n);
    p->i += n;
    return v;
}

static cJSON *explicit_values(sp_t *p);

static cJSON *explicit_list(sp_t *p)
{
    if (expect(p, '[', 1) != 0)
        return NULL;
    cJSON *list = made(p, cJSON_CreateArray());
    if (!list)
        return NULL;
    while (cur(p) != ']') {
        cJSON *v = explicit_values(p);
        if (!v)
            goto fail;
        cJSON_AddItemToArray(list, v);
        consume_ws(p);
        if (cur(p) != ']') {
            if (expect(p, ',', 0) != 0)
                goto fail;
            consume_ws(p);
        }
    }
    if (expect(p, ']', 0) != 0)
        goto fail;
    return list;
fail:
    cJSON_Delete(list);
    return NULL;
}

static cJSON *parse_key(sp_t *p)
{
    size_t start = p->i;
    while (!at_eof(p) && (isalnum(cur(p)) || strchr("-_.#/:", cur(p))))
        p->i++;
    char *k = port_strndup(p->s + start, p->i - start);
    cJSON *v = k ? cJSON_CreateString(k) : NULL;
    port_free(k);
    return made(p, v);
}

/* Replace item (deleted) by repl at the same position, keeping its key; -1 (repl deleted)
 * when out of memory. */
static int replace_item(cJSON *parent, cJSON *item, cJSON *repl)
{
    if (repl && item->string && !(item->type & cJSON_StringIsConst)) {
        if (!(repl->string = key_dup(item->string))) {
            cJSON_Delete(repl);
            return -1;
        }
        repl->type &= ~cJSON_StringIsConst;
    }
    if (!repl)
        return -1;
    cJSON_ReplaceItemViaPointer(parent, item, repl);
    return 0;
}

/* obj[key] = v, a key already there keeping its place (v deleted when out of memory). */
static int set_key(sp_t *p, cJSON *obj, const char *key, cJSON *v)
{
    cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (old ? replace_item(obj, old, v) != 0 : !cJSON_AddItemToObject(obj, key, v)) {
        if (!old)
            cJSON_Delete(v);
        made(p, NULL);
        return -1;
    }
    return 0;
}

static cJSON *hash_literal(sp_t *p)
{
    if (expect(p, '{', 1) != 0)
        return NULL;
    cJSON *obj = made(p, cJSON_CreateObject());
    while (obj && cur(p) != '}') {
        cJSON *k = parse_key(p);
        if (!k || expect(p, '=', 1) != 0) {
            cJSON_Delete(k);
            goto fail;
        }
        cJSON *v = explicit_values(p);
        if (!v) {
            cJSON_Delete(k);
            goto fail;
        }
        consume_ws(p);
        if (cur(p) != '}') {
            if (expect(p, ',', 0) != 0) {
                cJSON_Delete(k);
                cJSON_Delete(v);
                goto fail;
            }
            consume_ws(p);
        }
        int rc = set_key(p, obj, k->valuestring, v);
        cJSON_Delete(k);
        if (rc != 0)
            goto fail;
    }
    if (!obj || expect(p, '}', 0) != 0)
        goto fail;
    return obj;
fail:
    cJSON_Delete(obj);
    return NULL;
}

static cJSON *explicit_values(sp_t *p)
{
    if (cur(p) == '[')
        return explicit_list(p);
    if (cur(p) == '{')
        return hash_literal(p);
    if (at_eof(p)) {
        /* Python's _first_value on EOF: the regex does not match, '' is returned */
        return made(p, cJSON_CreateString(""));
    }
    return first_value(p);
}

static cJSON *csv_value(sp_t *p)
{
    cJSON *first = first_value(p);
    if (!first)
        return NULL;
    consume_ws(p);
    if (at_eof(p) || p->s[p->i] != ',')
        return first;
    if (expect(p, ',', 1) != 0) {
        cJSON_Delete(first);
        return NULL;
    }
    cJSON *list = made(p, cJSON_CreateArray());
    if (!list) {
        cJSON_Delete(first);
        return NULL;
    }
    cJSON_AddItemToArray(list, first);
    for (;;) {
        cJSON *v = second_value(p);
        if (v) {
            consume_ws(p);
            if (at_eof(p)) {
                cJSON_AddItemToArray(list, v);
                break;
            }
            if (expect(p, ',', 1) == 0) {
                cJSON_AddItemToArray(list, v);
                continue;
            }
            cJSON_Delete(v);
        }
        /* ShorthandParseSyntaxError: re-raise at EOF, else backtrack to the previous comma (out
         * of memory is no syntax error) */
        if (at_eof(p) || !p->syntax) {
            cJSON_Delete(list);
            return NULL;
        }
        p->failed = 0;
        p->syntax = 0;
        p->err[0] = '\0';
        while (p->i > 0 && p->s[p->i] != ',')
            p->i--;
        break;
    }
    if (cJSON_GetArraySize(list) == 1) {
        cJSON *only = cJSON_DetachItemFromArray(list, 0);
        cJSON_Delete(list);
        return only;
    }
    return list;
}

static cJSON *values(sp_t *p)
{
    if (at_eof(p))
        return made(p, cJSON_CreateString(""));
    if (cur(p) == '[')
        return explicit_list(p);
    if (cur(p) == '{')
        return hash_literal(p);
    return csv_value(p);
}

static int keyval(sp_t *p, cJSON **key, cJSON **val)
{
    *key = parse_key(p);
    *val = NULL;
    if (!*key || expect(p, '=', 1) != 0)
        return -1;
    *val = values(p);
    return *val ? 0 : -1;
}

int shorthand_parse(const char *text, cJSON **out, char *err, size_t errlen)
{
    sp_t p = { text, strlen(text), 0, err, errlen, 0, 0 };
    err[0] = '\0';
    *out = NULL;
    cJSON *params = made(&p, cJSON_CreateObject());
    cJSON *k = NULL, *v = NULL;
    if (!params || keyval(&p, &k, &v) != 0)
        goto fail_kv;
    int rc = set_key(&p, params, k->valuestring, v);
    cJSON_Delete(k);
    if (rc != 0)
        goto fail;
    size_t last_index = p.i;
    while (p.i < p.len) {
        if (expect(&p, ',', 1) != 0)
            goto fail;
        if (keyval(&p, &k, &v) != 0)
            goto fail_kv;
        if (cJSON_GetObjectItemCaseSensitive(params, k->valuestring)) {
            sbuf_t b = { 0 };
            sb_printf(&b, "Second instance of key \"%s\" encountered for input:\n", k->valuestring);
            error_location(&p, last_index + 1, &b);
            sb_puts(&b, "\nThis is often because there is a preceding \",\" instead of a space.");
            snprintf(err, errlen, "%s", sb_str(&b));
            sb_free(&b);
            cJSON_Delete(k);
            cJSON_Delete(v);
            goto fail;
        }
        rc = set_key(&p, params, k->valuestring, v);
        cJSON_Delete(k);
        if (rc != 0)
            goto fail;
        last_index = p.i;
    }
    *out = params;
    return 0;
fail_kv:
    cJSON_Delete(k);
    cJSON_Delete(v);
fail:
    cJSON_Delete(params);
    return -1;
}

/* -- BackCompatVisitor ----------------------------------------------------------------------- */

static int py_int(const char *s, long long *out)
{
    /* int(): optional whitespace and sign, digits with single underscores between them */
    while (is_space((unsigned char)*s))
        s++;
    char buf[64];
    size_t n = 0;
    const char *q = s;
    if (*q == '+' || *q == '-')
        buf[n++] = *q++;
    if (!isdigit((unsigned char)*q))
        return -1;
    while (*q && n < sizeof buf - 1) {
        if (isdigit((unsigned char)*q))
            buf[n++] = *q++;
        else if (*q == '_' && isdigit((unsigned char)q[1]) && isdigit((unsigned char)q[-1]))
            q++;
        else
            break;
    }
    while (is_space((unsigned char)*q))
        q++;
    if (*q)
        return -1;
    buf[n] = '\0';
    errno = 0;
    *out = strtoll(buf, NULL, 10);
    return errno ? -1 : 0;
}

static int py_float(const char *s, double *out)
{
    while (is_space((unsigned char)*s))
        s++;
    if (!*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s)
        return -1;
    /* strtod takes hex and "nan(...)"; Python's float() does not */
    if (strpbrk(s, "xX()"))
        return -1;
    while (is_space((unsigned char)*end))
        end++;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

/* "<prefix>: <repr of the str>" as Python's ValueError reads */
static void py_value_error(char *err, size_t errlen, const char *prefix, const cJSON *v)
{
    sbuf_t b = { 0 };
    sb_puts(&b, prefix);
    sb_puts(&b, ": ");
    pyjson_repr(&b, v);
    snprintf(err, errlen, "%s", sb_str(&b));
    sb_free(&b);
}

static int visit(cJSON *parent, cJSON *item, int shape, char *err, size_t errlen);

static int out_of_memory(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int visit_scalar(cJSON *parent, cJSON *item, const model_shape_t *s, char *err,
                        size_t errlen)
{
    cJSON *repl = NULL;
    int converted = 0;
    if (s->type == MT_INTEGER || s->type == MT_LONG) {
        long long v;
        if (!cJSON_IsString(item) || py_int(item->valuestring, &v) != 0) {
            if (cJSON_IsString(item))
                py_value_error(err, errlen, "invalid literal for int() with base 10", item);
            else
                snprintf(err, errlen, "int() argument must be a string, a bytes-like object or a "
                         "real number, not '%s'", cJSON_IsArray(item) ? "list" : "dict");
            return -1;
        }
        repl = pyjson_int(v);
        converted = 1;
    } else if (s->type == MT_DOUBLE || s->type == MT_FLOAT) {
        double v;
        if (!cJSON_IsString(item) || py_float(item->valuestring, &v) != 0) {
            if (cJSON_IsString(item))
                py_value_error(err, errlen, "could not convert string to float", item);
            else
                snprintf(err, errlen, "float() argument must be a string or a real number, not "
                         "'%s'", cJSON_IsArray(item) ? "list" : "dict");
            return -1;
        }
        repl = pyjson_float(v);
        converted = 1;
    } else if (s->type == MT_BOOLEAN) {
        if (!cJSON_IsString(item)) {
            snprintf(err, errlen, "'%s' object has no attribute 'lower'",
                     cJSON_IsArray(item) ? "list" : "dict");
            return -1;
        }
        converted = !strcasecmp(item->valuestring, "true") || !strcasecmp(item->valuestring, "false");
        if (converted)
            repl = cJSON_CreateBool(!strcasecmp(item->valuestring, "true"));
    }
    if (converted && replace_item(parent, item, repl) != 0)
        return out_of_memory(err, errlen);
    return 0;
}

static int visit(cJSON *parent, cJSON *item, int shape, char *err, size_t errlen)
{
    const model_shape_t *s = &model_shapes[shape];
    if (!item)
        return 0;
    switch (s->type) {
    case MT_STRUCTURE:
        if (!cJSON_IsObject(item))
            return 0;
        for (size_t i = 0; i < s->nmembers; i++) {
            cJSON *m = cJSON_GetObjectItemCaseSensitive(item, s->members[i].name);
            if (visit(item, m, s->members[i].shape, err, errlen) != 0)
                return -1;
        }
        return 0;
    case MT_LIST:
        if (!cJSON_IsArray(item)) {
            cJSON *wrap = cJSON_CreateArray(), *copy = wrap ? pyjson_dup(item) : NULL;
            if (!copy || !cJSON_AddItemToArray(wrap, copy)) {
                cJSON_Delete(wrap);
                return out_of_memory(err, errlen);
            }
            return replace_item(parent, item, wrap) != 0 ? out_of_memory(err, errlen) : 0;
        }
        for (cJSON *c = item->child, *next; c; c = next) {
            next = c->next;
            if (visit(item, c, s->member, err, errlen) != 0)
                return -1;
        }
        return 0;
    case MT_MAP:
        if (!cJSON_IsObject(item))
            return 0;
        for (cJSON *c = item->child, *next; c; c = next) {
            next = c->next;
            if (visit(item, c, s->value, err, errlen) != 0)
                return -1;
        }
        return 0;
    default:
        return visit_scalar(parent, item, s, err, errlen);
    }
}

int shorthand_apply_model(cJSON **value, int shape, char *err, size_t errlen)
{
    /* the top level has a throw-away parent in Python: a scalar replaced there is lost */
    cJSON *holder = cJSON_CreateArray();
    if (!holder)
        return out_of_memory(err, errlen);
    cJSON_AddItemToArray(holder, *value);
    int rc;
    const model_shape_t *s = &model_shapes[shape];
    if (s->type == MT_LIST && !cJSON_IsArray(*value))
        rc = 0;
    else
        rc = visit(holder, *value, shape, err, errlen);
    *value = cJSON_DetachItemFromArray(holder, 0);
    cJSON_Delete(holder);
    return rc;
}
