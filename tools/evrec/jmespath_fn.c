/*
 * JMESPath's built-in functions: one table of name, arity, argument types and implementation.
 * A call checks the arity and each argument's type as the reference implementation does (its
 * messages: "In function length(), invalid type for value: ..."), then runs the function.
 * Numbers keep Python's types: abs keeps int or float, ceil and floor give ints, avg a float,
 * sum an int only when every element is one.
 */
#include "jmespath_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "port.h"
#include "util_utf8.h"

enum { A_NUM = 1, A_STR = 2, A_BOOL = 4, A_ARR = 8, A_OBJ = 16, A_NULL = 32, A_EXPREF = 64,
       A_ARR_NUM = 128, A_ARR_STR = 256, A_ANY = 63 };

/* a: the evaluated arguments (NULL for an expression reference, whose node is argn[i]). */
typedef cJSON *jp_impl_t(jp_status_t *st, cJSON **a, const node_t *const *argn, size_t nargs);

typedef struct jp_function {
    const char *name;
    int nargs;       /* fixed count, or -1 for variadic (at least one) */
    int types[3];    /* A_* masks, one per argument (variadic: types[0] for each) */
    jp_impl_t *impl;
} jp_function_t;

/* -- types and errors ----------------------------------------------------------------------- */

static int array_all(const cJSON *a, cJSON_bool (*pred)(const cJSON *))
{
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!pred(it))
            return 0;
    }
    return 1;
}

static int type_matches(const cJSON *v, int mask)
{
    if ((mask & A_NUM) && cJSON_IsNumber(v)) return 1;
    if ((mask & A_STR) && cJSON_IsString(v)) return 1;
    if ((mask & A_BOOL) && cJSON_IsBool(v)) return 1;
    if ((mask & A_ARR) && cJSON_IsArray(v)) return 1;
    if ((mask & A_OBJ) && cJSON_IsObject(v)) return 1;
    if ((mask & A_NULL) && jp_is_null(v)) return 1;
    if ((mask & A_ARR_NUM) && cJSON_IsArray(v) && array_all(v, cJSON_IsNumber)) return 1;
    if ((mask & A_ARR_STR) && cJSON_IsArray(v) && array_all(v, cJSON_IsString)) return 1;
    return 0;
}

static void mask_names(int mask, char *buf, size_t len)
{
    static const struct { int bit; const char *name; } names[] = {
        { A_NUM, "number" }, { A_STR, "string" }, { A_BOOL, "boolean" }, { A_ARR, "array" },
        { A_OBJ, "object" }, { A_NULL, "null" }, { A_EXPREF, "expref" },
        { A_ARR_NUM, "array-number" }, { A_ARR_STR, "array-string" },
    };
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0] && o < len; i++) {
        if (mask & names[i].bit)
            o += (size_t)snprintf(buf + o, len - o, "%s'%s'", o ? ", " : "", names[i].name);
    }
}

static void type_error(jp_status_t *st, const char *fn, const cJSON *got, int mask)
{
    char expected[160];
    mask_names(mask, expected, sizeof expected);
    char *shown = got ? cJSON_PrintUnformatted(got) : NULL;
    if (got && !shown) {
        jp_fail(st, "out of memory");
        return;
    }
    jp_fail(st, "In function %s(), invalid type for value: %s, expected one of: [%s], "
            "received: \"%s\"", fn, shown ? shown : "None", expected, jp_type_name(got));
    cJSON_free(shown);
}

/* -- numbers -------------------------------------------------------------------------------- */

static cJSON *num_literal(double v, const char *lit)
{
    cJSON *n = cJSON_CreateNumber(v);
    if (n && !(n->valuestring = jp_cjson_strndup(lit, strlen(lit)))) {
        cJSON_Delete(n);
        return NULL;
    }
    return n;
}

static cJSON *num_float(double v)
{
    return num_literal(v, isnan(v) ? "NaN" : isinf(v) ? (v > 0 ? "Infinity" : "-Infinity") : "0.0");
}

/* An integral double as a Python int (exact digits of the double). */
static cJSON *num_int(double v)
{
    if (!isfinite(v))
        return num_float(v);
    char lit[400];
    snprintf(lit, sizeof lit, "%.0f", v);
    return num_literal(v, lit);
}

static int num_is_int(const cJSON *v)
{
    if (!v->valuestring)
        return isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble);
    return !strpbrk(v->valuestring, ".eEIN");
}

static int is_blank(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* int(s) as Python reads a string: blanks around, a sign, digits with single underscores
 * between them. Writes the normalised literal to out; -1 if it is not one. */
static int py_int_literal(const char *s, char *out, size_t outlen)
{
    while (is_blank(*s))
        s++;
    size_t o = 0;
    if (*s == '+' || *s == '-') {
        if (*s == '-')
            out[o++] = '-';
        s++;
    }
    size_t digits = 0;
    int lead = 0; /* a digit other than a leading zero has been written */
    for (; *s; s++) {
        if (*s == '_' && digits && is_digit(s[1]))
            continue;
        if (!is_digit(*s))
            break;
        if (o + 2 >= outlen)
            return -1;
        int more = is_digit(s[1]) || (s[1] == '_' && is_digit(s[2]));
        if (*s != '0' || !more || lead) /* leading zeros go */
            out[o++] = *s, lead = 1;
        digits++;
    }
    while (is_blank(*s))
        s++;
    if (!digits || *s)
        return -1;
    out[o] = '\0';
    return 0;
}

/* float(s): strtod's syntax without hexadecimal or nan(...), underscores between digits. */
static cJSON *py_float(jp_status_t *st, const char *s)
{
    size_t n = strlen(s), o = 0;
    char *clean = port_malloc(n + 1);
    if (!clean) {
        jp_fail(st, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_' && i && is_digit(s[i - 1]) && is_digit(s[i + 1]))
            continue;
        clean[o++] = s[i];
    }
    clean[o] = '\0';
    char *end;
    double d = strtod(clean, &end);
    while (is_blank(*end))
        end++;
    int ok = end != clean && *end == '\0' && !strpbrk(clean, "xX(_");
    port_free(clean);
    return ok ? num_float(d) : cJSON_CreateNull();
}

/* -- the functions (each returns NULL for "out of memory" unless st says otherwise) --------- */

#define JP_FN(name) static cJSON *fn_##name(jp_status_t *st, cJSON **a, \
                                            const node_t *const *argn, size_t nargs)
#define JP_UNUSED (void)st, (void)a, (void)argn, (void)nargs

JP_FN(abs)
{
    JP_UNUSED;
    if (!num_is_int(a[0]))
        return num_float(fabs(a[0]->valuedouble));
    if (a[0]->valuestring)
        return num_literal(fabs(a[0]->valuedouble),
                           a[0]->valuestring + (a[0]->valuestring[0] == '-'));
    return num_int(fabs(a[0]->valuedouble));
}

static cJSON *ceil_floor(jp_status_t *st, const cJSON *v, double (*round_fn)(double))
{
    if (num_is_int(v))
        return jp_dup(st, v);
    double d = round_fn(v->valuedouble);
    if (!isfinite(d)) {
        jp_fail(st, "cannot convert float %s to integer", isnan(d) ? "NaN" : "infinity");
        return NULL;
    }
    return num_int(d);
}

JP_FN(ceil) { JP_UNUSED; return ceil_floor(st, a[0], ceil); }
JP_FN(floor) { JP_UNUSED; return ceil_floor(st, a[0], floor); }

/* The sum of an array of numbers, *count of them, *ints 1 when every one is an int. */
static double sum_of(const cJSON *arr, int *count, int *ints)
{
    double s = 0;
    const cJSON *it;
    *count = 0;
    *ints = 1;
    cJSON_ArrayForEach(it, arr) {
        s += it->valuedouble;
        *ints &= num_is_int(it);
        (*count)++;
    }
    return s;
}

JP_FN(avg)
{
    JP_UNUSED;
    int n, ints;
    double s = sum_of(a[0], &n, &ints);
    return n ? num_float(s / n) : cJSON_CreateNull();
}

JP_FN(sum)
{
    JP_UNUSED;
    int n, ints;
    double s = sum_of(a[0], &n, &ints);
    return ints ? num_int(s) : num_float(s);
}

JP_FN(contains)
{
    JP_UNUSED;
    if (cJSON_IsString(a[0]))
        return cJSON_CreateBool(cJSON_IsString(a[1]) &&
                                strstr(a[0]->valuestring, a[1]->valuestring) != NULL);
    const cJSON *it;
    cJSON_ArrayForEach(it, a[0]) {
        if (cJSON_Compare(it, a[1], 1))
            return cJSON_CreateBool(1);
    }
    return cJSON_CreateBool(0);
}

JP_FN(starts_with)
{
    JP_UNUSED;
    size_t lx = strlen(a[1]->valuestring);
    return cJSON_CreateBool(strlen(a[0]->valuestring) >= lx &&
                            !strncmp(a[0]->valuestring, a[1]->valuestring, lx));
}

JP_FN(ends_with)
{
    JP_UNUSED;
    const char *s = a[0]->valuestring, *x = a[1]->valuestring;
    size_t ls = strlen(s), lx = strlen(x);
    return cJSON_CreateBool(lx <= ls && !strcmp(s + ls - lx, x));
}

JP_FN(join)
{
    JP_UNUSED;
    size_t total = 1, gl = strlen(a[0]->valuestring), o = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a[1]) total += strlen(it->valuestring) + gl;
    char *buf = port_malloc(total);
    if (!buf)
        return NULL;
    cJSON_ArrayForEach(it, a[1]) {
        if (it != a[1]->child) {
            memcpy(buf + o, a[0]->valuestring, gl);
            o += gl;
        }
        size_t l = strlen(it->valuestring);
        memcpy(buf + o, it->valuestring, l);
        o += l;
    }
    buf[o] = '\0';
    cJSON *r = cJSON_CreateString(buf);
    port_free(buf);
    return r;
}

/* An object's keys (keys 1) or values (keys 0), as a new array. */
static cJSON *members(jp_status_t *st, const cJSON *obj, int keys)
{
    cJSON *out = jp_checked(st, cJSON_CreateArray());
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        cJSON *m = keys ? jp_checked(st, cJSON_CreateString(it->string)) : jp_dup(st, it);
        if (jp_append(st, out, m) != 0)
            break;
    }
    return out;
}

JP_FN(keys) { JP_UNUSED; return members(st, a[0], 1); }
JP_FN(values) { JP_UNUSED; return members(st, a[0], 0); }

JP_FN(length)
{
    JP_UNUSED;
    if (cJSON_IsString(a[0]))
        return cJSON_CreateNumber((double)util_utf8_count(a[0]->valuestring));
    return cJSON_CreateNumber(cJSON_GetArraySize(a[0]));
}

JP_FN(map)
{
    JP_UNUSED;
    cJSON *out = jp_checked(st, cJSON_CreateArray());
    const cJSON *it;
    cJSON_ArrayForEach(it, a[1]) {
        cJSON *r = st->failed ? NULL : jp_eval(st, argn[0]->kids[0], it);
        if (jp_append(st, out, r) != 0 || st->failed)
            break;
    }
    return out;
}

static cJSON *max_min(jp_status_t *st, const cJSON *arr, int want_max)
{
    const cJSON *best = NULL, *it;
    cJSON_ArrayForEach(it, arr) {
        if (!best || (want_max ? jp_compare(it, best) > 0 : jp_compare(it, best) < 0))
            best = it;
    }
    return best ? jp_dup(st, best) : cJSON_CreateNull();
}

JP_FN(max) { JP_UNUSED; return max_min(st, a[0], 1); }
JP_FN(min) { JP_UNUSED; return max_min(st, a[0], 0); }

/* Stable merge sort of items by keys (both arrays of the same length); -1 when out of
 * memory (then the order is not sorted). */
static int sort_pairs(cJSON **items, cJSON **keys, size_t n)
{
    if (n < 2)
        return 0;
    size_t h = n / 2;
    if (sort_pairs(items, keys, h) != 0 || sort_pairs(items + h, keys + h, n - h) != 0)
        return -1;
    cJSON **ti = port_malloc(n * sizeof *ti), **tk = port_malloc(n * sizeof *tk);
    if (!ti || !tk) {
        port_free(ti);
        port_free(tk);
        return -1;
    }
    size_t i = 0, j = h, o = 0;
    while (i < h || j < n) {
        int right = j < n && (i == h || jp_compare(keys[j], keys[i]) < 0);
        size_t from = right ? j++ : i++;
        ti[o] = items[from];
        tk[o++] = keys[from];
    }
    memcpy(items, ti, n * sizeof *ti);
    memcpy(keys, tk, n * sizeof *tk);
    port_free(ti);
    port_free(tk);
    return 0;
}

/* The elements of arr ordered by keys (parallel to arr), as a new array. */
static cJSON *sorted_copy(jp_status_t *st, const cJSON *arr, cJSON **keys, size_t n)
{
    cJSON **items = port_malloc((n ? n : 1) * sizeof *items);
    cJSON *out = NULL, *it;
    size_t i = 0;
    if (items) {
        cJSON_ArrayForEach(it, arr) items[i++] = it;
    }
    if (!items || sort_pairs(items, keys, n) != 0) {
        jp_fail(st, "out of memory");
    } else {
        out = jp_checked(st, cJSON_CreateArray());
        for (i = 0; i < n && !st->failed; i++)
            jp_append(st, out, jp_dup(st, items[i]));
    }
    port_free(items);
    return out;
}

JP_FN(sort)
{
    JP_UNUSED;
    size_t n = (size_t)cJSON_GetArraySize(a[0]), i = 0;
    cJSON **keys = port_malloc((n ? n : 1) * sizeof *keys);
    if (!keys)
        return NULL;
    cJSON *it;
    cJSON_ArrayForEach(it, a[0]) keys[i++] = it;
    cJSON *out = sorted_copy(st, a[0], keys, n);
    port_free(keys);
    return out;
}

static void free_keys(cJSON **keys, size_t n)
{
    for (size_t k = 0; k < n; k++)
        cJSON_Delete(keys[k]);
    port_free(keys);
}

/* Evaluate the expref for every element; all keys must be numbers, or all strings. */
static cJSON **by_keys(jp_status_t *st, const char *fn, const node_t *expref, const cJSON *arr,
                       size_t *n_out)
{
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    cJSON **keys = port_calloc(n ? n : 1, sizeof *keys);
    if (!keys) {
        jp_fail(st, "out of memory");
        return NULL;
    }
    const cJSON *it;
    int want = 0;
    cJSON_ArrayForEach(it, arr) {
        keys[i] = jp_eval(st, expref->kids[0], it);
        if (st->failed)
            break;
        int t = cJSON_IsNumber(keys[i]) ? A_NUM : cJSON_IsString(keys[i]) ? A_STR : 0;
        if (!t || (want && t != want)) {
            type_error(st, fn, keys[i], want ? want : A_NUM | A_STR);
            break;
        }
        want = t;
        i++;
    }
    if (st->failed) {
        /* every key so far, the one whose evaluation failed included (calloc'ed: NULL after) */
        free_keys(keys, n);
        return NULL;
    }
    *n_out = n;
    return keys;
}

JP_FN(sort_by)
{
    JP_UNUSED;
    size_t n;
    cJSON **keys = by_keys(st, "sort_by", argn[1], a[0], &n);
    if (!keys)
        return NULL;
    cJSON *out = sorted_copy(st, a[0], keys, n);
    free_keys(keys, n);
    return out;
}

/* max_by (sign 1) and min_by (sign -1): the first element with the greatest (least) key. */
static cJSON *by_extreme(jp_status_t *st, const char *fn, const cJSON *arr, const node_t *expref,
                         int sign)
{
    size_t n, best = 0;
    cJSON **keys = by_keys(st, fn, expref, arr, &n);
    if (!keys)
        return NULL;
    for (size_t i = 1; i < n; i++)
        if (sign > 0 ? jp_compare(keys[i], keys[best]) > 0 : jp_compare(keys[i], keys[best]) < 0)
            best = i;
    cJSON *out = n ? jp_dup(st, cJSON_GetArrayItem(arr, (int)best)) : cJSON_CreateNull();
    free_keys(keys, n);
    return out;
}

JP_FN(max_by) { JP_UNUSED; return by_extreme(st, "max_by", a[0], argn[1], 1); }
JP_FN(min_by) { JP_UNUSED; return by_extreme(st, "min_by", a[0], argn[1], -1); }

/* dict.update over each argument in turn: a key already there keeps its place. */
JP_FN(merge)
{
    JP_UNUSED;
    cJSON *out = jp_checked(st, cJSON_CreateObject());
    for (size_t i = 0; i < nargs && !st->failed; i++) {
        const cJSON *it;
        cJSON_ArrayForEach(it, a[i]) {
            /* the copy carries its key (cJSON_ReplaceItemInObject would copy it again without
             * checking the allocation) */
            cJSON *d = jp_dup(st, it), *old = cJSON_GetObjectItemCaseSensitive(out, it->string);
            int ok = d && (old ? cJSON_ReplaceItemViaPointer(out, old, d)
                               : cJSON_AddItemToObject(out, it->string, d));
            if (!ok) {
                cJSON_Delete(d);
                jp_fail(st, "out of memory");
                break;
            }
        }
    }
    return out;
}

JP_FN(not_null)
{
    JP_UNUSED;
    for (size_t i = 0; i < nargs; i++)
        if (!jp_is_null(a[i]))
            return jp_dup(st, a[i]);
    return cJSON_CreateNull();
}

/* A string reversed by code point, keeping multi-byte sequences intact. */
static cJSON *reverse_string(const char *s)
{
    size_t l = strlen(s), o = l;
    char *buf = port_malloc(l + 1);
    if (!buf)
        return NULL;
    buf[l] = '\0';
    for (size_t i = 0; i < l;) {
        size_t cl = 1;
        while (i + cl < l && ((unsigned char)s[i + cl] & 0xC0) == 0x80)
            cl++;
        o -= cl;
        memcpy(buf + o, s + i, cl);
        i += cl;
    }
    cJSON *r = cJSON_CreateString(buf);
    port_free(buf);
    return r;
}

JP_FN(reverse)
{
    JP_UNUSED;
    if (cJSON_IsString(a[0]))
        return reverse_string(a[0]->valuestring);
    cJSON *out = jp_checked(st, cJSON_CreateArray());
    const cJSON *it;
    cJSON_ArrayForEach(it, a[0]) {
        cJSON *d = out ? jp_dup(st, it) : NULL;
        if (!d)
            break;
        cJSON_InsertItemInArray(out, 0, d);
    }
    return out;
}

JP_FN(to_array)
{
    JP_UNUSED;
    if (cJSON_IsArray(a[0]))
        return jp_dup(st, a[0]);
    cJSON *out = jp_checked(st, cJSON_CreateArray());
    jp_append(st, out, jp_dup(st, a[0]));
    return out;
}

/* to_number: numbers as they are; a string as int(s), else float(s), else null. */
JP_FN(to_number)
{
    JP_UNUSED;
    if (cJSON_IsNumber(a[0]))
        return jp_dup(st, a[0]);
    if (!cJSON_IsString(a[0]))
        return cJSON_CreateNull();
    char lit[512];
    if (py_int_literal(a[0]->valuestring, lit, sizeof lit) == 0)
        return num_literal(strtod(lit, NULL), lit);
    return py_float(st, a[0]->valuestring);
}

JP_FN(to_string)
{
    JP_UNUSED;
    if (cJSON_IsString(a[0]))
        return jp_dup(st, a[0]);
    char *s = cJSON_PrintUnformatted(a[0]);
    cJSON *r = s ? cJSON_CreateString(s) : NULL;
    cJSON_free(s);
    return r;
}

JP_FN(type) { JP_UNUSED; return cJSON_CreateString(jp_type_name(a[0])); }

static const jp_function_t functions[] = {
    { "abs", 1, { A_NUM }, fn_abs },
    { "avg", 1, { A_ARR_NUM }, fn_avg },
    { "ceil", 1, { A_NUM }, fn_ceil },
    { "contains", 2, { A_ARR | A_STR, A_ANY }, fn_contains },
    { "ends_with", 2, { A_STR, A_STR }, fn_ends_with },
    { "floor", 1, { A_NUM }, fn_floor },
    { "join", 2, { A_STR, A_ARR_STR }, fn_join },
    { "keys", 1, { A_OBJ }, fn_keys },
    { "length", 1, { A_STR | A_ARR | A_OBJ }, fn_length },
    { "map", 2, { A_EXPREF, A_ARR }, fn_map },
    { "max", 1, { A_ARR_NUM | A_ARR_STR }, fn_max },
    { "max_by", 2, { A_ARR, A_EXPREF }, fn_max_by },
    { "merge", -1, { A_OBJ }, fn_merge },
    { "min", 1, { A_ARR_NUM | A_ARR_STR }, fn_min },
    { "min_by", 2, { A_ARR, A_EXPREF }, fn_min_by },
    { "not_null", -1, { A_ANY }, fn_not_null },
    { "reverse", 1, { A_STR | A_ARR }, fn_reverse },
    { "sort", 1, { A_ARR_NUM | A_ARR_STR }, fn_sort },
    { "sort_by", 2, { A_ARR, A_EXPREF }, fn_sort_by },
    { "starts_with", 2, { A_STR, A_STR }, fn_starts_with },
    { "sum", 1, { A_ARR_NUM }, fn_sum },
    { "to_array", 1, { A_ANY }, fn_to_array },
    { "to_number", 1, { A_ANY }, fn_to_number },
    { "to_string", 1, { A_ANY }, fn_to_string },
    { "type", 1, { A_ANY }, fn_type },
    { "values", 1, { A_OBJ }, fn_values },
};

/* -- the call -------------------------------------------------------------------------------- */

static const jp_function_t *find(jp_status_t *st, const node_t *n)
{
    const jp_function_t *f = NULL;
    for (size_t i = 0; i < sizeof functions / sizeof functions[0] && !f; i++)
        if (!strcmp(functions[i].name, n->name))
            f = &functions[i];
    if (!f)
        jp_fail(st, "Unknown function: %s()", n->name);
    else if (f->nargs < 0 && n->nkids < 1)
        jp_fail(st, "Expected at least 1 argument for function %s(), received %zu", f->name,
                n->nkids);
    else if (f->nargs >= 0 && n->nkids != (size_t)f->nargs)
        jp_fail(st, "Expected %d argument%s for function %s(), received %zu", f->nargs,
                f->nargs == 1 ? "" : "s", f->name, n->nkids);
    return st->failed ? NULL : f;
}

/* Each argument evaluated over v and its type checked (an expression reference is left for
 * the function, args[i] NULL). */
static int eval_args(jp_status_t *st, const jp_function_t *f, const node_t *n, const cJSON *v,
                     cJSON **args)
{
    for (size_t i = 0; i < n->nkids; i++) {
        int mask = f->types[f->nargs < 0 ? 0 : i];
        if (n->kids[i]->type == N_EXPREF) {
            if (!(mask & A_EXPREF)) {
                jp_fail(st, "In function %s(), invalid type for value: <expref>, expected one "
                        "of: [...], received: \"expref\"", f->name);
                return -1;
            }
            continue;
        }
        args[i] = jp_eval(st, n->kids[i], v);
        if (st->failed)
            return -1;
        if (!type_matches(args[i], mask)) {
            type_error(st, f->name, args[i], mask);
            return -1;
        }
    }
    return 0;
}

cJSON *jp_call_function(jp_status_t *st, const node_t *n, const cJSON *v)
{
    const jp_function_t *f = find(st, n);
    if (!f)
        return NULL;
    cJSON **args = port_calloc(n->nkids, sizeof *args);
    if (!args) {
        jp_fail(st, "out of memory");
        return NULL;
    }
    cJSON *result = NULL;
    if (eval_args(st, f, n, v, args) == 0)
        result = jp_checked(st, f->impl(st, args, (const node_t *const *)n->kids, n->nkids));
    for (size_t k = 0; k < n->nkids; k++)
        cJSON_Delete(args[k]);
    port_free(args);
    if (st->failed) {
        cJSON_Delete(result);
        return NULL;
    }
    return result;
}
