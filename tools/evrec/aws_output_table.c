/* The AWS CLI v2's table output (awscli/table.py; see aws_output.h): sections built from the
 * response, widths scaled to the terminal, borders, the vertical fallback. */
#define _GNU_SOURCE
#include "aws_output_internal.h"
#include "port.h"
#include "widths.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    const char **headers = aws_out_sorted_keys(cur, 1, 0, &nh, &t->oom);
    const char **more = aws_out_sorted_keys(cur, 0, 1, &nm, &t->oom);
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
    if (!headers || !more) {
        t->oom = 1; /* the table is not printed */
        port_free(headers);
        port_free(more);
        return;
    }
    for (const cJSON *e = cur->child; e; e = e->next) {
        if (!cJSON_IsObject(e))
            continue;
        for (const cJSON *m = e->child; m; m = m->next)
            add_unique(aws_out_is_scalar(m) ? headers : more, aws_out_is_scalar(m) ? &nh : &nm,
                       m->string);
    }
    qsort(headers, nh, sizeof *headers, aws_out_cmp_str);
    qsort(more, nm, sizeof *more, aws_out_cmp_str);
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
                if (aws_out_is_scalar(item)) {
                    char **row = new_row(t, 1);
                    if (row)
                        row[0] = str_of(t, item);
                    add_row(t, row, 1);
                    continue;
                }
                int all_scalar = 1;
                size_t n = 0;
                for (const cJSON *el = item->child; el; el = el->next, n++)
                    if (cJSON_IsArray(item) && !aws_out_is_scalar(el))
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

int aws_out_table(sbuf_t *b, const cJSON *response, const out_options_t *o, char *err,
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

