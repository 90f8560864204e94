/* JSON with Python's semantics (see pyjson.h). */
#include "pyjson.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "port.h"

/* -- numbers ------------------------------------------------------------------------------- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = cJSON_malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

cJSON *pyjson_number_literal(const char *literal)
{
    double v;
    if (strcmp(literal, "NaN") == 0)
        v = NAN;
    else if (strcmp(literal, "Infinity") == 0)
        v = INFINITY;
    else if (strcmp(literal, "-Infinity") == 0)
        v = -INFINITY;
    else
        v = strtod(literal, NULL);
    cJSON *n = cJSON_CreateNumber(v);
    if (n && !(n->valuestring = dup_str(literal))) {
        cJSON_Delete(n); /* without its literal an int and a float look alike */
        return NULL;
    }
    return n;
}

cJSON *pyjson_int(long long v)
{
    char lit[32];
    snprintf(lit, sizeof lit, "%lld", v);
    return pyjson_number_literal(lit);
}

cJSON *pyjson_float(double v)
{
    /* the literal only marks the type; the value is valuedouble */
    cJSON *n = pyjson_number_literal(isnan(v) ? "NaN" : isinf(v) ? (v > 0 ? "Infinity" : "-Infinity")
                                                                 : "0.0");
    if (n && isfinite(v))
        cJSON_SetNumberValue(n, v);
    return n;
}

int pyjson_is_int(const cJSON *item)
{
    if (!cJSON_IsNumber(item))
        return 0;
    const char *lit = item->valuestring;
    if (!lit) /* a number built by plain cJSON: integral values count as int */
        return isfinite(item->valuedouble) && item->valuedouble == floor(item->valuedouble) &&
               fabs(item->valuedouble) < 9007199254740992.0;
    if (strpbrk(lit, ".eEIN"))
        return 0;
    return 1;
}

/* Python's float repr: shortest round-trip digits, exponent form when decpt <= -4 or > 16. */
static void float_repr(sbuf_t *b, double v, int json)
{
    if (isnan(v)) {
        sb_puts(b, json ? "NaN" : "nan");
        return;
    }
    if (isinf(v)) {
        sb_puts(b, v > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf"));
        return;
    }
    char tmp[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp: [-]d[.ddd]e[+-]xx */
    char digits[40];
    size_t nd = 0;
    const char *p = tmp;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    int decpt = exp10 + 1;
    if (neg)
        sb_putc(b, '-');
    if (v == 0) {
        sb_puts(b, "0.0");
        return;
    }
    if (decpt <= -4 || decpt > 16) {
        sb_putc(b, digits[0]);
        if (nd > 1) {
            sb_putc(b, '.');
            sb_puts(b, digits + 1);
        }
        sb_printf(b, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (decpt <= 0) {
        sb_puts(b, "0.");
        for (int i = 0; i < -decpt; i++)
            sb_putc(b, '0');
        sb_puts(b, digits);
    } else if ((size_t)decpt >= nd) {
        sb_puts(b, digits);
        for (size_t i = nd; i < (size_t)decpt; i++)
            sb_putc(b, '0');
        sb_puts(b, ".0");
    } else {
        sb_putn(b, digits, (size_t)decpt);
        sb_putc(b, '.');
        sb_puts(b, digits + decpt);
    }
}

static void int_repr(sbuf_t *b, const cJSON *num)
{
    const char *lit = num->valuestring;
    if (!lit) {
        sb_printf(b, "%.0f", num->valuedouble);
        return;
    }
    if (lit[0] == '-' && strspn(lit + 1, "0") == strlen(lit + 1))
        lit++; /* -0 is 0 */
    sb_puts(b, lit);
}

static void number_out(sbuf_t *b, const cJSON *num, int json)
{
    if (pyjson_is_int(num))
        int_repr(b, num);
    else
        float_repr(b, num->valuedouble, json);
}

void pyjson_number_repr(sbuf_t *b, const cJSON *num) { number_out(b, num, 0); }

/* -- parser -------------------------------------------------------------------------------- */

typedef struct parser {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errlen;
    int failed;
} parser_t;

static void parse_fail(parser_t *p, const char *what, size_t at)
{
    if (p->failed)
        return;
    p->failed = 1;
    /* Python counts characters, not bytes */
    size_t line = 1, col = 1, ch = 0;
    for (size_t i = 0; i < at && i < p->len; i++) {
        unsigned char c = (unsigned char)p->s[i];
        if ((c & 0xC0) == 0x80)
            continue;
        ch++;
        if (c == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(p->err, p->errlen, "%s: line %zu column %zu (char %zu)", what, line, col, ch);
}

static void skip_ws(parser_t *p)
{
    while (p->pos < p->len && strchr(" \t\n\r", p->s[p->pos]) && p->s[p->pos])
        p->pos++;
}

static int peek_word(parser_t *p, const char *w)
{
    size_t n = strlen(w);
    return p->len - p->pos >= n && memcmp(p->s + p->pos, w, n) == 0;
}

static void put_utf8(sbuf_t *b, unsigned long cp)
{
    char u[4];
    if (cp < 0x80) {
        sb_putc(b, (char)cp);
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        sb_putn(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        sb_putn(b, u, 3);
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        sb_putn(b, u, 4);
    }
}

static int hex4(const char *s, unsigned long *out)
{
    unsigned long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned long)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned long)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned long)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* At the opening quote. Returns the string (port_free) or NULL (p->failed set). */
static char *parse_string(parser_t *p)
{
    size_t begin = p->pos;
    p->pos++;
    sbuf_t b = { 0 };
    (void)util_buf_str(&b); /* "" even when nothing is appended */
    for (;;) {
        if (p->pos >= p->len) {
            parse_fail(p, "Unterminated string starting at", begin);
            break;
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            sb_str(&b); /* terminated even when empty */
            if (!b.oom)
                return b.data;
            parse_fail(p, "Out of memory", p->pos);
            break;
        }
        if (c < 0x20) {
            parse_fail(p, "Invalid control character at", p->pos);
            break;
        }
        if (c != '\\') {
            sb_putc(&b, (char)c);
            p->pos++;
            continue;
        }
        if (p->pos + 1 >= p->len) {
            parse_fail(p, "Unterminated string starting at", begin);
            break;
        }
        char e = p->s[p->pos + 1];
        const char *map = strchr("\"\"\\\\//b\bf\fn\nr\rt\t", e);
        if (e && map && ((map - "\"\"\\\\//b\bf\fn\nr\rt\t") % 2 == 0)) {
            sb_putc(&b, map[1]);
            p->pos += 2;
            continue;
        }
        if (e != 'u') {
            parse_fail(p, "Invalid \\escape", p->pos);
            break;
        }
        unsigned long cp;
        if (p->len - p->pos < 6 || hex4(p->s + p->pos + 2, &cp) != 0) {
            parse_fail(p, "Invalid \\uXXXX escape", p->pos + 1);
            break;
        }
        if (cp == 0) {
            /* Strings are carried as C strings: a NUL would silently cut the value short, so
             * it is refused (Python would keep it; nothing evrec sends may differ from what
             * was given). */
            parse_fail(p, "NUL character (\\u0000) in a string is not supported", p->pos);
            break;
        }
        p->pos += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF && p->len - p->pos >= 6 && p->s[p->pos] == '\\' &&
            p->s[p->pos + 1] == 'u') {
            unsigned long lo;
            if (hex4(p->s + p->pos + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p->pos += 6;
            }
        }
        put_utf8(&b, cp);
    }
    sb_free(&b);
    return NULL;
}

static cJSON *parse_value(parser_t *p, int depth);

/* v, or NULL with "Out of memory" (an allocation failed). */
static cJSON *made(parser_t *p, cJSON *v)
{
    if (!v)
        parse_fail(p, "Out of memory", p->pos);
    return v;
}

static cJSON *parse_number(parser_t *p)
{
    size_t start = p->pos, i = p->pos;
    if (i < p->len && p->s[i] == '-')
        i++;
    if (i < p->len && p->s[i] == '0') {
        i++;
    } else if (i < p->len && p->s[i] >= '1' && p->s[i] <= '9') {
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    } else {
        return NULL;
    }
    if (i + 1 < p->len && p->s[i] == '.' && p->s[i + 1] >= '0' && p->s[i + 1] <= '9') {
        i += 2;
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < p->len && (p->s[j] == '+' || p->s[j] == '-'))
            j++;
        if (j < p->len && p->s[j] >= '0' && p->s[j] <= '9') {
            while (j < p->len && p->s[j] >= '0' && p->s[j] <= '9')
                j++;
            i = j;
        }
    }
    char lit[400];
    size_t n = i - start;
    if (n >= sizeof lit)
        n = sizeof lit - 1;
    memcpy(lit, p->s + start, n);
    lit[n] = '\0';
    p->pos = i;
    return made(p, pyjson_number_literal(lit));
}

/* The keys of the object being parsed, so a duplicate is found in constant time (a linear
 * lookup per key made a 100,000-event PutEvents document take over a minute): open
 * addressing over FNV-1a hashes, built once an object has more than a few keys. */
typedef struct key_index {
    cJSON **slot;
    size_t cap, n;
} key_index_t;

static size_t key_hash(const char *k)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a, 64 bits on every target */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211u;
    return (size_t)h;
}

static cJSON **key_slot(key_index_t *ix, const char *key)
{
    size_t i = key_hash(key) & (ix->cap - 1);
    while (ix->slot[i] && strcmp(ix->slot[i]->string, key) != 0)
        i = (i + 1) & (ix->cap - 1);
    return &ix->slot[i];
}

/* Index item (a new key); -1 when out of memory. */
static int key_add(key_index_t *ix, cJSON *item)
{
    if ((ix->n + 1) * 2 > ix->cap) {
        key_index_t bigger = { port_calloc(ix->cap ? ix->cap * 2 : 64, sizeof(cJSON *)),
                               ix->cap ? ix->cap * 2 : 64, 0 };
        if (!bigger.slot)
            return -1;
        for (size_t i = 0; i < ix->cap; i++)
            if (ix->slot[i])
                *key_slot(&bigger, ix->slot[i]->string) = ix->slot[i];
        bigger.n = ix->n;
        port_free(ix->slot);
        *ix = bigger;
    }
    *key_slot(ix, item->string) = item;
    ix->n++;
    return 0;
}

/* The item already holding key, or NULL. */
static cJSON *key_find(key_index_t *ix, cJSON *obj, size_t count, const char *key)
{
    if (count < 8) { /* small objects: a look along the list */
        for (cJSON *c = obj->child; c; c = c->next)
            if (strcmp(c->string, key) == 0)
                return c;
        return NULL;
    }
    if (!ix->slot) {
        for (cJSON *c = obj->child; c; c = c->next)
            if (key_add(ix, c) != 0)
                return (cJSON *)-1;
    }
    return *key_slot(ix, key);
}

static cJSON *parse_object(parser_t *p, int depth)
{
    cJSON *obj = made(p, cJSON_CreateObject());
    if (!obj)
        return NULL;
    key_index_t ix = { NULL, 0, 0 };
    size_t count = 0;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return obj;
    }
    for (;;) {
        if (p->pos >= p->len || p->s[p->pos] != '"') {
            parse_fail(p, "Expecting property name enclosed in double quotes", p->pos);
            break;
        }
        char *key = parse_string(p);
        if (!key)
            break;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') {
            parse_fail(p, "Expecting ':' delimiter", p->pos);
            port_free(key);
            break;
        }
        p->pos++;
        skip_ws(p);
        cJSON *val = parse_value(p, depth + 1);
        if (!val) {
            port_free(key);
            break;
        }
        cJSON *old = key_find(&ix, obj, count, key);
        if (old == (cJSON *)-1 || !(val->string = dup_str(key))) {
            parse_fail(p, "Out of memory", p->pos);
            cJSON_Delete(val);
            port_free(key);
            break;
        }
        port_free(key);
        if (old) {
            /* a repeated key keeps its first place with the last value, as a dict does */
            cJSON **sl = ix.slot ? key_slot(&ix, val->string) : NULL; /* before old goes */
            cJSON_ReplaceItemViaPointer(obj, old, val);
            if (sl)
                *sl = val;
        } else {
            cJSON_AddItemToArray(obj, val);
            count++;
            if (ix.slot && key_add(&ix, val) != 0) {
                parse_fail(p, "Out of memory", p->pos);
                break;
            }
        }
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == '}') {
            p->pos++;
            port_free(ix.slot);
            return obj;
        }
        if (p->pos >= p->len || p->s[p->pos] != ',') {
            parse_fail(p, "Expecting ',' delimiter", p->pos);
            break;
        }
        p->pos++;
        skip_ws(p);
    }
    port_free(ix.slot);
    cJSON_Delete(obj);
    return NULL;
}

static cJSON *parse_array(parser_t *p, int depth)
{
    cJSON *arr = made(p, cJSON_CreateArray());
    if (!arr)
        return NULL;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return arr;
    }
    for (;;) {
        cJSON *val = parse_value(p, depth + 1);
        if (!val)
            break;
        cJSON_AddItemToArray(arr, val);
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ']') {
            p->pos++;
            return arr;
        }
        if (p->pos >= p->len || p->s[p->pos] != ',') {
            parse_fail(p, "Expecting ',' delimiter", p->pos);
            break;
        }
        p->pos++;
        skip_ws(p);
    }
    cJSON_Delete(arr);
    return NULL;
}

static cJSON *parse_value(parser_t *p, int depth)
{
    if (depth > 500) {
        parse_fail(p, "maximum recursion depth exceeded", p->pos);
        return NULL;
    }
    if (p->pos >= p->len) {
        parse_fail(p, "Expecting value", p->pos);
        return NULL;
    }
    char c = p->s[p->pos];
    if (c == '{')
        return parse_object(p, depth);
    if (c == '[')
        return parse_array(p, depth);
    if (c == '"') {
        char *s = parse_string(p);
        if (!s)
            return NULL;
        cJSON *v = made(p, cJSON_CreateString(s));
        port_free(s);
        return v;
    }
    static const struct { const char *w; int kind; } words[] = {
        { "null", 0 }, { "true", 1 }, { "false", 2 }, { "NaN", 3 }, { "Infinity", 3 },
        { "-Infinity", 3 },
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (peek_word(p, words[i].w)) {
            p->pos += strlen(words[i].w);
            switch (words[i].kind) {
            case 0: return made(p, cJSON_CreateNull());
            case 1: return made(p, cJSON_CreateTrue());
            case 2: return made(p, cJSON_CreateFalse());
            default: return made(p, pyjson_number_literal(words[i].w));
            }
        }
    }
    cJSON *n = parse_number(p);
    if (!n)
        parse_fail(p, "Expecting value", p->pos);
    return n;
}

int pyjson_parse(const char *text, size_t len, cJSON **out, char *err, size_t errlen)
{
    parser_t p = { text, len, 0, err, errlen, 0 };
    *out = NULL;
    skip_ws(&p);
    cJSON *v = parse_value(&p, 0);
    if (!v || p.failed) {
        cJSON_Delete(v);
        return -1;
    }
    skip_ws(&p);
    if (p.pos < p.len) {
        parse_fail(&p, "Extra data", p.pos);
        cJSON_Delete(v);
        return -1;
    }
    *out = v;
    return 0;
}

/* -- printing ------------------------------------------------------------------------------ */

/* ensure_ascii: a UTF-8 sequence at p as \uXXXX (a surrogate pair above U+FFFF); returns the
 * octets used, 0 if p does not start a well-formed sequence (then the octet goes out as is). */
static size_t ascii_escape(sbuf_t *b, const unsigned char *p)
{
    unsigned long cp;
    size_t n;
    if (p[0] >= 0xF0 && p[0] < 0xF5)
        cp = p[0] & 0x07, n = 4;
    else if (p[0] >= 0xE0)
        cp = p[0] & 0x0F, n = 3;
    else if (p[0] >= 0xC2)
        cp = p[0] & 0x1F, n = 2;
    else
        return 0;
    if (p[0] >= 0xF5)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp > 0xFFFF) {
        cp -= 0x10000;
        sb_printf(b, "\\u%04lx\\u%04lx", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
    } else {
        sb_printf(b, "\\u%04lx", cp);
    }
    return n;
}

static void json_string(sbuf_t *b, const char *s, int ascii)
{
    sb_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (ascii && *p >= 0x80) {
            size_t n = ascii_escape(b, p);
            if (n) {
                p += n - 1;
                continue;
            }
        }
        switch (*p) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case '\t': sb_puts(b, "\\t"); break;
        case '\b': sb_puts(b, "\\b"); break;
        case '\f': sb_puts(b, "\\f"); break;
        default:
            if (*p < 0x20)
                sb_printf(b, "\\u%04x", *p);
            else
                sb_putc(b, (char)*p);
        }
    }
    sb_putc(b, '"');
}

static void newline_indent(sbuf_t *b, int indent, int level)
{
    if (indent < 0)
        return;
    sb_putc(b, '\n');
    for (int i = 0; i < indent * level; i++)
        sb_putc(b, ' ');
}

static void dump(sbuf_t *b, const cJSON *v, int indent, int level, int ascii)
{
    if (!v || cJSON_IsNull(v)) {
        sb_puts(b, "null");
    } else if (cJSON_IsTrue(v)) {
        sb_puts(b, "true");
    } else if (cJSON_IsFalse(v)) {
        sb_puts(b, "false");
    } else if (cJSON_IsNumber(v)) {
        number_out(b, v, 1);
    } else if (cJSON_IsString(v)) {
        json_string(b, v->valuestring, ascii);
    } else if (cJSON_IsRaw(v)) {
        sb_puts(b, v->valuestring);
    } else {
        int obj = cJSON_IsObject(v);
        if (!v->child) {
            sb_puts(b, obj ? "{}" : "[]");
            return;
        }
        sb_putc(b, obj ? '{' : '[');
        for (const cJSON *c = v->child; c; c = c->next) {
            newline_indent(b, indent, level + 1);
            if (obj) {
                json_string(b, c->string ? c->string : "", ascii);
                sb_puts(b, ": ");
            }
            dump(b, c, indent, level + 1, ascii);
            if (c->next)
                sb_puts(b, indent < 0 ? ", " : ",");
        }
        newline_indent(b, indent, level);
        sb_putc(b, obj ? '}' : ']');
    }
}

void pyjson_dump(sbuf_t *b, const cJSON *v, int indent) { dump(b, v, indent, 0, 0); }
void pyjson_dump_ascii(sbuf_t *b, const cJSON *v) { dump(b, v, -1, 0, 1); }

static void repr_string(sbuf_t *b, const char *s)
{
    char q = (strchr(s, '\'') && !strchr(s, '"')) ? '"' : '\'';
    sb_putc(b, q);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == (unsigned char)q || *p == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)*p);
        } else if (*p == '\n') {
            sb_puts(b, "\\n");
        } else if (*p == '\r') {
            sb_puts(b, "\\r");
        } else if (*p == '\t') {
            sb_puts(b, "\\t");
        } else if (*p < 0x20 || *p == 0x7f) {
            sb_printf(b, "\\x%02x", *p);
        } else {
            sb_putc(b, (char)*p);
        }
    }
    sb_putc(b, q);
}

void pyjson_repr(sbuf_t *b, const cJSON *v)
{
    if (!v || cJSON_IsNull(v)) {
        sb_puts(b, "None");
    } else if (cJSON_IsTrue(v)) {
        sb_puts(b, "True");
    } else if (cJSON_IsFalse(v)) {
        sb_puts(b, "False");
    } else if (cJSON_IsNumber(v)) {
        number_out(b, v, 0);
    } else if (cJSON_IsString(v)) {
        repr_string(b, v->valuestring);
    } else {
        int obj = cJSON_IsObject(v);
        sb_putc(b, obj ? '{' : '[');
        for (const cJSON *c = v->child; c; c = c->next) {
            if (obj) {
                repr_string(b, c->string ? c->string : "");
                sb_puts(b, ": ");
            }
            pyjson_repr(b, c);
            if (c->next)
                sb_puts(b, ", ");
        }
        sb_putc(b, obj ? '}' : ']');
    }
}

void pyjson_str(sbuf_t *b, const cJSON *v)
{
    if (cJSON_IsString(v))
        sb_puts(b, v->valuestring);
    else
        pyjson_repr(b, v);
}

const char *pyjson_type_name(const cJSON *v)
{
    if (!v || cJSON_IsNull(v))
        return "<class 'NoneType'>";
    if (cJSON_IsBool(v))
        return "<class 'bool'>";
    if (cJSON_IsNumber(v))
        return pyjson_is_int(v) ? "<class 'int'>" : "<class 'float'>";
    if (cJSON_IsString(v))
        return "<class 'str'>";
    if (cJSON_IsArray(v))
        return "<class 'list'>";
    return "<class 'dict'>";
}

cJSON *pyjson_dup(const cJSON *v) { return cJSON_Duplicate(v, 1); }

int pyjson_equal(const cJSON *a, const cJSON *b)
{
    if (!a || !b)
        return a == b;
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        return a->valuedouble == b->valuedouble;
    if ((a->type & 0xFF) != (b->type & 0xFF))
        return 0;
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if (cJSON_IsArray(a)) {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!pyjson_equal(x, y))
                return 0;
        return !x && !y;
    }
    if (cJSON_IsObject(a)) {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
            return 0;
        for (const cJSON *x = a->child; x; x = x->next)
            if (!pyjson_equal(x, cJSON_GetObjectItemCaseSensitive(b, x->string)))
                return 0;
        return 1;
    }
    return 1;
}
