/* AWS CLI v2 output formatters (see aws_output.h). */
#define _GNU_SOURCE
#include "aws_output.h"
#include "port.h"
#include "widths.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_scalar(const cJSON *v) { return !cJSON_IsObject(v) && !cJSON_IsArray(v); }

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted keys of an object (a malloc'ed array of borrowed strings); NULL with *oom set when
 * out of memory. */
static const char **sorted_keys(const cJSON *obj, int scalars, int nonscalars, size_t *n,
                                int *oom)
{
    size_t cap = (size_t)cJSON_GetArraySize(obj) + 1, k = 0;
    const char **keys = port_calloc(cap, sizeof *keys);
    if (!keys) {
        *oom = 1;
        *n = 0;
        return NULL;
    }
    for (const cJSON *c = obj->child; c; c = c->next) {
        int sc = is_scalar(c);
        if ((sc && scalars) || (!sc && nonscalars))
            keys[k++] = c->string;
    }
    qsort(keys, k, sizeof *keys, cmp_str);
    *n = k;
    return keys;
}

/* -- text ------------------------------------------------------------------------------------ */

/* str.upper() with Python's full Unicode mapping ('ß' is 'SS', 'ﬁ' is 'FI'; widths.h). */
static void upper(sbuf_t *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned long cp = *p;
        size_t n = 1;
        if (*p >= 0xF0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80)
            cp = ((*p & 0x07UL) << 18) | ((p[1] & 0x3FUL) << 12) | ((p[2] & 0x3FUL) << 6) |
                 (p[3] & 0x3F), n = 4;
        else if (*p >= 0xE0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80)
            cp = ((*p & 0x0FUL) << 12) | ((p[1] & 0x3FUL) << 6) | (p[2] & 0x3F), n = 3;
        else if (*p >= 0xC0 && (p[1] & 0xC0) == 0x80)
            cp = ((*p & 0x1FUL) << 6) | (p[1] & 0x3F), n = 2;
        size_t lo = 0, hi = text_nupper;
        const char *up = NULL;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cp < text_upper_map[mid].cp)
                hi = mid;
            else if (cp > text_upper_map[mid].cp)
                lo = mid + 1;
            else {
                up = text_upper_map[mid].upper;
                break;
            }
        }
        if (up)
            sb_puts(b, up);
        else
            sb_putn(b, (const char *)p, n);
        p += n;
    }
}

static void text_item(sbuf_t *b, const cJSON *item, const char *identifier, const char **scalar_keys,
                      size_t nscalar_keys, int have_scalar_keys);

static void text_scalar_list(sbuf_t *b, const cJSON *list, int only_scalars, const char *identifier)
{
    int first = 1;
    for (const cJSON *c = list->child; c; c = c->next) {
        if (only_scalars && !is_scalar(c))
            continue;
        if (identifier) {
            upper(b, identifier);
            sb_putc(b, '\t');
            pyjson_str(b, c);
            sb_putc(b, '\n');
        } else {
            if (!first)
                sb_putc(b, '\t');
            pyjson_str(b, c);
        }
        first = 0;
    }
    if (!identifier)
        sb_putc(b, '\n');
}

static void text_list(sbuf_t *b, const cJSON *item, const char *identifier)
{
    if (!item->child)
        return;
    int any_dict = 0, any_list = 0;
    for (const cJSON *c = item->child; c; c = c->next) {
        any_dict |= cJSON_IsObject(c);
        any_list |= cJSON_IsArray(c);
    }
    if (any_dict) {
        /* the sorted union of every dict's scalar keys */
        size_t cap = 0, n = 0;
        for (const cJSON *c = item->child; c; c = c->next)
            if (cJSON_IsObject(c))
                cap += (size_t)cJSON_GetArraySize(c);
        const char **keys = port_calloc(cap + 1, sizeof *keys);
        if (!keys)
            b->oom = 1; /* aws_format reports it */
        for (const cJSON *c = item->child; c && keys; c = c->next) {
            if (!cJSON_IsObject(c))
                continue;
            for (const cJSON *m = c->child; m; m = m->next) {
                if (!is_scalar(m))
                    continue;
                size_t i;
                for (i = 0; i < n; i++)
                    if (strcmp(keys[i], m->string) == 0)
                        break;
                if (i == n)
                    keys[n++] = m->string;
            }
        }
        if (keys)
            qsort(keys, n, sizeof *keys, cmp_str);
        for (const cJSON *c = item->child; c; c = c->next)
            text_item(b, c, identifier, keys, n, 1);
        port_free(keys);
    } else if (any_list) {
        int any_scalar = 0;
        for (const cJSON *c = item->child; c; c = c->next)
            any_scalar |= is_scalar(c);
        if (any_scalar)
            text_scalar_list(b, item, 1, identifier);
        for (const cJSON *c = item->child; c; c = c->next)
            if (!is_scalar(c))
                text_item(b, c, identifier, NULL, 0, 0);
    } else {
        text_scalar_list(b, item, 0, identifier);
    }
}

static void text_dict(sbuf_t *b, const cJSON *item, const char *identifier, const char **scalar_keys,
                      size_t nscalar_keys, int have_scalar_keys)
{
    size_t nsc = 0, nns = 0;
    const char **sc = NULL, **ns = NULL;
    sbuf_t row = { 0 };
    int any = 0;
    if (!have_scalar_keys) {
        /* sorted(item.items()): scalars and non-scalars in key order */
        const char **all = sorted_keys(item, 1, 1, &nsc, &b->oom);
        ns = port_calloc(nsc + 1, sizeof *ns);
        if (!ns)
            b->oom = 1;
        for (size_t i = 0; i < nsc && ns; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, all[i]);
            if (is_scalar(v)) {
                if (any)
                    sb_putc(&row, '\t');
                pyjson_str(&row, v);
                any = 1;
            } else {
                ns[nns++] = all[i];
            }
        }
        port_free(all);
    } else {
        for (size_t i = 0; i < nscalar_keys; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, scalar_keys[i]);
            if (any)
                sb_putc(&row, '\t');
            if (v)
                pyjson_str(&row, v);
            any = 1;
        }
        sc = sorted_keys(item, 1, 1, &nsc, &b->oom);
        ns = port_calloc(nsc + 1, sizeof *ns);
        if (!ns)
            b->oom = 1;
        for (size_t i = 0; i < nsc && ns; i++) {
            size_t j;
            for (j = 0; j < nscalar_keys; j++)
                if (strcmp(sc[i], scalar_keys[j]) == 0)
                    break;
            if (j == nscalar_keys)
                ns[nns++] = sc[i];
        }
        port_free(sc);
    }
    if (any) {
        if (identifier) {
            upper(b, identifier);
            sb_putc(b, '\t');
        }
        sb_puts(b, sb_str(&row));
        sb_putc(b, '\n');
    }
    b->oom |= row.oom;
    sb_free(&row);
    for (size_t i = 0; i < nns; i++)
        text_item(b, cJSON_GetObjectItemCaseSensitive(item, ns[i]), ns[i], NULL, 0, 0);
    port_free(ns);
}

static void text_item(sbuf_t *b, const cJSON *item, const char *identifier, const char **scalar_keys,
                      size_t nscalar_keys, int have_scalar_keys)
{
    if (cJSON_IsObject(item)) {
        text_dict(b, item, identifier, scalar_keys, nscalar_keys, have_scalar_keys);
    } else if (cJSON_IsArray(item)) {
        text_list(b, item, identifier);
    } else {
        pyjson_str(b, item);
        sb_putc(b, '\n');
    }
}

/* -- table ----------------------------------------------------------------------------------- */

typedef struct section {
    char *title;
    char **headers;
    size_t nheaders;
    char ***rows; /* rows[i][j] */
    size_t nrows, ncols; /* ncols 0: unset */
    size_t *max_widths;
    size_t nwidths;
    int indent;
} section_t;

typedef struct table {
    section_t *s;
    size_t n, cap;
    section_t *cur;
    char err[128]; /* the ValueError Python's Section.add_row raises */
    int oom;       /* an allocation failed: the table is incomplete, and is not printed */
} table_t;

/* Display width as Python's get_text_length (see widths.h). */
size_t text_width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned long cp;
        int n;
        if (*p < 0x80) {
            cp = *p;
            n = 1;
        } else if ((*p & 0xE0) == 0xC0) {
            cp = *p & 0x1F;
            n = 2;
        } else if ((*p & 0xF0) == 0xE0) {
            cp = *p & 0x0F;
            n = 3;
        } else {
            cp = *p & 0x07;
            n = 4;
        }
        for (int i = 1; i < n && p[i]; i++)
            cp = (cp << 6) | (p[i] & 0x3F);
        for (int i = 0; i < n && *p; i++)
            p++;
        size_t lo = 0, hi = text_nwide_ranges;
        int wide = 0;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cp < text_wide_ranges[mid].first) {
                hi = mid;
            } else if (cp > text_wide_ranges[mid].last) {
                lo = mid + 1;
            } else {
                wide = 1;
                break;
            }
        }
        w += wide ? 2 : 1;
    }
    return w;
}

static void update_widths(table_t *t, section_t *s, char **row, size_t n)
{
    if (!s->nwidths) {
        /* awscli's table: widths start again while they are empty (a row of no columns, as a
         * --query of [{}, {}] gives), so the previous empty list goes */
        port_free(s->max_widths);
        s->max_widths = port_calloc(n + 1, sizeof *s->max_widths);
        if (!s->max_widths) {
            t->oom = 1;
            return;
        }
        s->nwidths = n;
        for (size_t i = 0; i < n; i++)
            s->max_widths[i] = text_width(row[i]);
        return;
    }
    for (size_t i = 0; i < n && i < s->nwidths; i++) {
        size_t w = text_width(row[i]);
        if (w > s->max_widths[i])
            s->max_widths[i] = w;
    }
}

static char *t_strdup(table_t *t, const char *s)
{
    char *d = port_strdup(s);
    if (!d)
        t->oom = 1;
    return d;
}

static void new_section(table_t *t, const char *title, int indent)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        section_t *ns = port_realloc(t->s, cap * sizeof *ns);
        if (!ns) {
            t->oom = 1;
            t->cur = NULL; /* nothing goes into the previous section */
            return;
        }
        t->s = ns;
        t->cap = cap;
    }
    section_t *s = &t->s[t->n++];
    memset(s, 0, sizeof *s);
    s->title = t_strdup(t, title ? title : "");
    s->indent = indent;
    t->cur = s;
}

static char *str_of(table_t *t, const cJSON *v)
{
    sbuf_t b = { 0 };
    pyjson_str(&b, v);
    char *s = b.oom ? NULL : port_strdup(sb_str(&b));
    sb_free(&b);
    if (!s)
        t->oom = 1;
    return s;
}

/* A row of n cells (owned strings, NULL-terminated); NULL with t->oom set. */
static char **new_row(table_t *t, size_t n)
{
    char **row = port_calloc(n + 1, sizeof *row);
    if (!row)
        t->oom = 1;
    return row;
}

static void add_header(table_t *t, const char **headers, size_t n)
{
    section_t *s = t->cur;
    if (!s)
        return;
    char **h = new_row(t, n);
    if (!h)
        return;
    for (size_t i = 0; i < n; i++)
        h[i] = t_strdup(t, headers[i]);
    if (t->oom) {
        for (size_t i = 0; i < n; i++)
            port_free(h[i]);
        port_free(h);
        return;
    }
    update_widths(t, s, h, n);
    if (!s->ncols)
        s->ncols = n;
    for (size_t i = 0; i < s->nheaders; i++)
        port_free(s->headers[i]);
    port_free(s->headers);
    s->headers = h;
    s->nheaders = n;
}

/* row: owned strings */
static void add_row(table_t *t, char **row, size_t n)
{
    section_t *s = t->cur;
    if (!row)
        return; /* new_row failed: t->oom is set */
    if (!s || t->oom) {
        for (size_t i = 0; i < n; i++)
            port_free(row[i]);
        port_free(row);
        return;
    }
    if (!s->ncols)
        s->ncols = n;
    if (n != s->ncols) {
        if (!t->err[0])
            snprintf(t->err, sizeof t->err, "Row should have %zu elements, instead it has %zu",
                     s->ncols, n);
        for (size_t i = 0; i < n; i++)
            port_free(row[i]);
        port_free(row);
        return;
    }
    char ***nr = port_realloc(s->rows, (s->nrows + 1) * sizeof *nr);
    if (!nr) {
        t->oom = 1;
        for (size_t i = 0; i < n; i++)
            port_free(row[i]);
        port_free(row);
        return;
    }
    s->rows = nr;
    s->rows[s->nrows++] = row;
    update_widths(t, s, row, n);
}

static void build_table(table_t *t, const char *title, const cJSON *cur, int indent);

static void sub_table_from_dict(table_t *t, const cJSON *cur, int indent)
{
    size_t nh, nm;
    const char **headers = sorted_keys(cur, 1, 0, &nh, &t->oom);
    const char **more = sorted_keys(cur, 0, 1, &nm, &t->oom);
    if (nh == 1) {
        char **row = new_row(t, 2);
        if (row) {
            row[0] = t_strdup(t, headers[0]);
            row[1] = str_of(t, cJSON_GetObjectItemCaseSensitive(cur, headers[0]));
        }
        add_row(t, row, 2);
    } else if (nh) {
        add_header(t, headers, nh);
        char **row = new_row(t, nh);
        for (size_t i = 0; i < nh && row; i++)
            row[i] = str_of(t, cJSON_GetObjectItemCaseSensitive(cur, headers[i]));
        add_row(t, row, nh);
    }
    for (size_t i = 0; i < nm; i++)
        build_table(t, more[i], cJSON_GetObjectItemCaseSensitive(cur, more[i]), indent + 1);
    port_free(headers);
    port_free(more);
}

static void add_unique(const char **set, size_t *n, const char *k)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(set[i], k) == 0)
            return;
    set[(*n)++] = k;
}

static void sub_table_from_list(table_t *t, const cJSON *cur, int indent, const char *title)
{
    size_t cap = 1;
    for (const cJSON *e = cur->child; e; e = e->next)
        cap += (size_t)cJSON_GetArraySize(e);
    const char **headers = port_calloc(cap, sizeof *headers), **more = port_calloc(cap, sizeof *more);
    size_t nh = 0, nm = 0;
    if (!headers || !more)
        t->oom = 1;
    for (const cJSON *e = cur->child; e && headers && more; e = e->next) {
        if (!cJSON_IsObject(e))
            continue;
        for (const cJSON *m = e->child; m; m = m->next)
            add_unique(is_scalar(m) ? headers : more, is_scalar(m) ? &nh : &nm, m->string);
    }
    qsort(headers, nh, sizeof *headers, cmp_str);
    qsort(more, nm, sizeof *more, cmp_str);
    add_header(t, headers, nh);
    int first = 1;
    for (const cJSON *e = cur->child; e; e = e->next) {
        if (!first && nm) {
            new_section(t, title, indent);
            add_header(t, headers, nh);
        }
        first = 0;
        char **row = new_row(t, nh);
        for (size_t i = 0; i < nh && row; i++) {
            const cJSON *v = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, headers[i]) : NULL;
            row[i] = v ? str_of(t, v) : t_strdup(t, "");
        }
        add_row(t, row, nh);
        for (size_t i = 0; i < nm; i++) {
            const cJSON *v = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, more[i]) : NULL;
            if (v)
                build_table(t, more[i], v, indent + 1);
        }
    }
    port_free(headers);
    port_free(more);
}

/* Python truthiness */
static int truthy(const cJSON *v)
{
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
        return 0;
    if (cJSON_IsNumber(v))
        return v->valuedouble != 0;
    if (cJSON_IsString(v))
        return v->valuestring[0] != '\0';
    if (cJSON_IsObject(v) || cJSON_IsArray(v))
        return v->child != NULL;
    return 1;
}

static void build_table(table_t *t, const char *title, const cJSON *cur, int indent)
{
    if (!truthy(cur))
        return;
    if (title)
        new_section(t, title, indent);
    if (cJSON_IsArray(cur)) {
        if (cJSON_IsObject(cur->child)) {
            sub_table_from_list(t, cur, indent, title);
        } else {
            for (const cJSON *item = cur->child; item; item = item->next) {
                if (is_scalar(item)) {
                    char **row = new_row(t, 1);
                    if (row)
                        row[0] = str_of(t, item);
                    add_row(t, row, 1);
                    continue;
                }
                int all_scalar = 1;
                size_t n = 0;
                for (const cJSON *el = item->child; el; el = el->next, n++)
                    if (cJSON_IsArray(item) && !is_scalar(el))
                        all_scalar = 0;
                if (all_scalar) {
                    /* iterating a dict yields its keys */
                    char **row = new_row(t, n);
                    size_t i = 0;
                    for (const cJSON *el = item->child; el && row; el = el->next)
                        row[i++] = cJSON_IsObject(item) ? t_strdup(t, el->string) : str_of(t, el);
                    add_row(t, row, n);
                } else {
                    build_table(t, NULL, item, 0);
                }
            }
        }
    }
    if (cJSON_IsObject(cur))
        sub_table_from_dict(t, cur, indent);
}

static void calc_widths(const section_t *s, int padding, long max_width, long *out)
{
    long sum = 0;
    for (size_t i = 0; i < s->nwidths; i++) {
        out[i] = (long)s->max_widths[i] + padding;
        sum += out[i];
    }
    if (max_width < 0 || !s->nwidths)
        return;
    double scale = (double)max_width / (double)sum;
    long total = 0;
    for (size_t i = 0; i < s->nwidths; i++) {
        out[i] = (long)rint(scale * (double)out[i]); /* Python's round(): half to even */
        total += out[i];
    }
    long off = total - max_width;
    while (off != 0) {
        if (off > 0) {
            for (size_t i = 0; i < s->nwidths && off; i++) {
                out[i]--;
                off--;
            }
        } else {
            for (size_t i = s->nwidths; i > 0 && off; i--) {
                out[i - 1]++;
                off++;
            }
        }
    }
}

static long total_width(const section_t *s, int padding, int outer)
{
    long total = 0;
    for (size_t i = 0; i < s->nwidths; i++)
        total += (long)s->max_widths[i] + padding;
    total += 2 + 2 * outer;
    long t = (long)text_width(s->title) + 2 + 2 * outer;
    return t > total ? t : total;
}

static void spaces(sbuf_t *b, long n)
{
    for (long i = 0; i < n; i++)
        sb_putc(b, ' ');
}

static void center_text(sbuf_t *b, const char *text, long length, const char *left, const char *right,
                        long tlen, const char *style_on, const char *style_off)
{
    long char_start = length / 2 - tlen / 2 - 1;
    /* Python floor division */
    if (length < 0 && length % 2)
        char_start = (length - 1) / 2 - tlen / 2 - 1;
    sb_puts(b, left);
    spaces(b, char_start);
    sb_puts(b, style_on);
    sb_puts(b, text);
    sb_puts(b, style_off);
    long so_far = (long)strlen(left) + char_start + tlen;
    spaces(b, length - (long)strlen(right) - so_far);
    sb_puts(b, right);
}

static void align_left(sbuf_t *b, const char *text, long length, const char *left, const char *right,
                       long tlen, const char *style_on, const char *style_off)
{
    long computed = tlen + 2 + (long)strlen(left) + (long)strlen(right);
    long padding = length - computed >= 0 ? 2 : 0;
    sb_puts(b, left);
    spaces(b, padding);
    sb_puts(b, style_on);
    sb_puts(b, text);
    sb_puts(b, style_off);
    spaces(b, length - (long)strlen(left) - padding - tlen - (long)strlen(right));
    sb_puts(b, right);
}

#define DIM_YELLOW "\x1b[2m\x1b[33m"
#define BRIGHT_BLUE "\x1b[1m\x1b[34m"
#define RESET "\x1b[0m"

/* IndentedStream: every line framed by indent bars on both sides. In colour the stream is
 * colorama's with autoreset, which follows every write with a reset: the left bars, the line,
 * the right bars and the newline are four writes. */
static void indented_line(sbuf_t *b, const section_t *s, const char *line, int color)
{
    for (int i = 0; i < s->indent; i++)
        sb_puts(b, color ? DIM_YELLOW "|" RESET : "|");
    if (color)
        sb_puts(b, RESET);
    sb_puts(b, line);
    if (color)
        sb_puts(b, RESET);
    for (int i = 0; i < s->indent; i++)
        sb_puts(b, color ? DIM_YELLOW "|" RESET : "|");
    if (color)
        sb_puts(b, RESET);
    sb_putc(b, '\n');
    if (color)
        sb_puts(b, RESET);
}

static void line_break(sbuf_t *b, const long *widths, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i == 0)
            sb_putc(b, '+');
        for (long k = 0; k < widths[i] - (i == 0 ? 2 : 1); k++)
            sb_putc(b, '-');
        sb_putc(b, '+');
    }
}

static void render_section(sbuf_t *b, const section_t *s, long max_width, int color)
{
    max_width -= s->indent * 2;
    sbuf_t l = { 0 };
    if (s->title[0]) {
        center_text(&l, s->title, max_width, "|", "|", (long)text_width(s->title), "", "");
        indented_line(b, s, sb_str(&l), color);
        if (!s->nheaders && !s->nrows) {
            l.len = 0;
            sb_putc(&l, '+');
            for (long k = 0; k < max_width - 2; k++)
                sb_putc(&l, '-');
            sb_putc(&l, '+');
            indented_line(b, s, sb_str(&l), color);
        }
    }
    long *widths = port_calloc(s->nwidths + 1, sizeof *widths);
    if (!widths) {
        b->oom = 1; /* aws_format reports it */
        sb_free(&l);
        return;
    }
    if (s->nheaders) {
        calc_widths(s, 4, max_width, widths);
        l.len = 0;
        line_break(&l, widths, s->nwidths);
        indented_line(b, s, sb_str(&l), color);
        l.len = 0;
        for (size_t i = 0; i < s->nheaders && i < s->nwidths; i++)
            center_text(&l, s->headers[i], widths[i], i == 0 ? "|" : "", "|",
                        (long)text_width(s->headers[i]), "", "");
        indented_line(b, s, sb_str(&l), color);
    }
    if (s->nrows && s->nwidths) {
        calc_widths(s, 4, max_width, widths);
        l.len = 0;
        line_break(&l, widths, s->nwidths);
        indented_line(b, s, sb_str(&l), color);
        for (size_t r = 0; r < s->nrows; r++) {
            l.len = 0;
            for (size_t i = 0; i < s->ncols && i < s->nwidths; i++)
                align_left(&l, s->rows[r][i], widths[i], i == 0 ? "|" : "", "|",
                           (long)text_width(s->rows[r][i]), color ? BRIGHT_BLUE : "",
                           color ? RESET : "");
            indented_line(b, s, sb_str(&l), color);
        }
        l.len = 0;
        line_break(&l, widths, s->nwidths);
        indented_line(b, s, sb_str(&l), color);
    }
    port_free(widths);
    b->oom |= l.oom;
    sb_free(&l);
}

static void free_section(section_t *s)
{
    port_free(s->title);
    for (size_t i = 0; i < s->nheaders; i++)
        port_free(s->headers[i]);
    port_free(s->headers);
    for (size_t r = 0; r < s->nrows; r++) {
        for (size_t i = 0; i < s->ncols; i++)
            port_free(s->rows[r][i]);
        port_free(s->rows[r]);
    }
    port_free(s->rows);
    port_free(s->max_widths);
}

/* convert_to_vertical_table: one-row sections with headers become key/value rows. */
static void to_vertical(table_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        section_t *s = &t->s[i];
        if (s->nrows != 1 || !s->nheaders)
            continue;
        section_t ns;
        memset(&ns, 0, sizeof ns);
        table_t tmp;
        memset(&tmp, 0, sizeof tmp);
        ns.title = t_strdup(&tmp, s->title);
        ns.indent = s->indent;
        tmp.s = tmp.cur = &ns;
        tmp.n = tmp.cap = 1;
        for (size_t k = 0; k < s->nheaders && k < s->ncols; k++) {
            char **row = new_row(&tmp, 2);
            if (row) {
                row[0] = t_strdup(&tmp, s->headers[k]);
                row[1] = t_strdup(&tmp, s->rows[0][k]);
            }
            add_row(&tmp, row, 2);
        }
        free_section(s);
        *s = ns;
        t->oom |= tmp.oom;
    }
}

static long table_max_width(const table_t *t)
{
    long m = 0;
    for (size_t i = 0; i < t->n; i++) {
        long w = total_width(&t->s[i], 4, t->s[i].indent);
        if (w > m)
            m = w;
    }
    return m;
}

static int table_format(sbuf_t *b, const cJSON *response, const out_options_t *o, char *err,
                        size_t errlen)
{
    table_t t;
    memset(&t, 0, sizeof t);
    if (!truthy(response))
        return 0;
    build_table(&t, o->title, response, 0);
    long max_width = 0;
    if (!t.oom && !t.err[0] && (max_width = table_max_width(&t)) > o->terminal_width) {
        to_vertical(&t);
        if (!t.oom)
            max_width = table_max_width(&t);
    }
    if (t.oom || t.err[0]) {
        snprintf(err, errlen, "%s", t.oom ? "out of memory" : t.err);
        for (size_t i = 0; i < t.n; i++)
            free_section(&t.s[i]);
        port_free(t.s);
        return -1;
    }
    for (long k = 0; k < max_width; k++)
        sb_putc(b, '-');
    sb_putc(b, '\n');
    if (o->color)
        sb_puts(b, RESET);
    for (size_t i = 0; i < t.n; i++)
        render_section(b, &t.s[i], max_width, o->color);
    for (size_t i = 0; i < t.n; i++)
        free_section(&t.s[i]);
    port_free(t.s);
    return 0;
}

/* -- yaml ------------------------------------------------------------------------------------ */

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
    const char **keys = sorted_keys(v, 1, 1, &n, &e->b->oom);
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

static void yaml_value(sbuf_t *b, const cJSON *v)
{
    if (is_scalar(v)) { /* json.dump for scalars */
        pyjson_dump(b, v, -1);
        sb_putc(b, '\n');
    } else {
        aws_yaml_dump(b, v);
    }
}

/* -- dispatch -------------------------------------------------------------------------------- */

static int is_empty_dict(const cJSON *v) { return cJSON_IsObject(v) && !v->child; }

int aws_format(sbuf_t *b, const cJSON *response, const out_options_t *o, char *err,
               size_t errlen)
{
    switch (o->format) {
    case OUT_JSON:
        if (!is_empty_dict(response)) {
            pyjson_dump(b, response, 4);
            sb_putc(b, '\n');
        }
        break;
    case OUT_TEXT:
        text_item(b, response, NULL, NULL, 0, 0);
        break;
    case OUT_TABLE:
        if (table_format(b, response, o, err, errlen) != 0)
            return -1;
        break;
    case OUT_YAML:
        if (!is_empty_dict(response))
            yaml_value(b, response);
        break;
    case OUT_YAML_STREAM:
        if (!is_empty_dict(response)) {
            cJSON *wrap = cJSON_CreateArray();
            if (wrap && cJSON_AddItemReferenceToArray(wrap, (cJSON *)response))
                aws_yaml_dump(b, wrap);
            else
                b->oom = 1;
            cJSON_Delete(wrap);
        }
        break;
    }
    if (b->oom) { /* an allocation failed: what is there is incomplete */
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
