/* AWS CLI v2 output formatters (see aws_output.h): json and text here, the dispatch; table in
 * aws_output_table.c, yaml in aws_output_yaml.c. */
#define _GNU_SOURCE
#include "aws_output.h"
#include "aws_output_internal.h"
#include "port.h"
#include "widths.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int aws_out_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted keys of an object (a malloc'ed array of borrowed strings); NULL with *oom set when
 * out of memory. */
const char **aws_out_sorted_keys(const cJSON *obj, int scalars, int nonscalars, size_t *n,
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
        int sc = aws_out_is_scalar(c);
        if ((sc && scalars) || (!sc && nonscalars))
            keys[k++] = c->string;
    }
    qsort(keys, k, sizeof *keys, aws_out_cmp_str);
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
        if (only_scalars && !aws_out_is_scalar(c))
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
                if (!aws_out_is_scalar(m))
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
            qsort(keys, n, sizeof *keys, aws_out_cmp_str);
        for (const cJSON *c = item->child; c; c = c->next)
            text_item(b, c, identifier, keys, n, 1);
        port_free(keys);
    } else if (any_list) {
        int any_scalar = 0;
        for (const cJSON *c = item->child; c; c = c->next)
            any_scalar |= aws_out_is_scalar(c);
        if (any_scalar)
            text_scalar_list(b, item, 1, identifier);
        for (const cJSON *c = item->child; c; c = c->next)
            if (!aws_out_is_scalar(c))
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
        const char **all = aws_out_sorted_keys(item, 1, 1, &nsc, &b->oom);
        ns = port_calloc(nsc + 1, sizeof *ns);
        if (!ns)
            b->oom = 1;
        for (size_t i = 0; i < nsc && ns; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, all[i]);
            if (aws_out_is_scalar(v)) {
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
        sc = aws_out_sorted_keys(item, 1, 1, &nsc, &b->oom);
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
        if (aws_out_table(b, response, o, err, errlen) != 0)
            return -1;
        break;
    case OUT_YAML:
        if (!is_empty_dict(response))
            aws_out_yaml_value(b, response);
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

