/*
 * JMESPath's evaluator: the tree walked over a cJSON value, one function per kind of node.
 * Each returns a new value (the caller's), or NULL once the status has failed.
 */
#include "jmespath_internal.h"

#include <string.h>

cJSON *jp_dup(jp_status_t *st, const cJSON *v)
{
    return jp_checked(st, v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
}

cJSON *jp_null(jp_status_t *st) { return jp_checked(st, cJSON_CreateNull()); }

int jp_is_null(const cJSON *v) { return !v || cJSON_IsNull(v); }

int jp_append(jp_status_t *st, cJSON *array, cJSON *item)
{
    if (!item || !array) {
        cJSON_Delete(item);
        jp_fail(st, "out of memory");
        return -1;
    }
    cJSON_AddItemToArray(array, item);
    return 0;
}

static int truthy(const cJSON *v)
{
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
        return 0;
    if (cJSON_IsString(v))
        return v->valuestring[0] != '\0';
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        return v->child != NULL;
    return 1;
}

const char *jp_type_name(const cJSON *v)
{
    if (!v || cJSON_IsNull(v))
        return "null";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsArray(v))
        return "array";
    return "object";
}

int jp_compare(const cJSON *a, const cJSON *b)
{
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        return a->valuedouble < b->valuedouble ? -1 : a->valuedouble > b->valuedouble;
    return strcmp(a->valuestring, b->valuestring);
}

/* rhs over each element (or member value) of base; nulls are left out. */
static cJSON *project(jp_status_t *st, const cJSON *base, const node_t *rhs)
{
    cJSON *out = jp_checked(st, cJSON_CreateArray());
    const cJSON *it;
    cJSON_ArrayForEach(it, base) {
        if (st->failed)
            break;
        cJSON *r = jp_eval(st, rhs, it);
        if (jp_is_null(r) && !st->failed)
            cJSON_Delete(r);
        else
            jp_append(st, out, r);
    }
    return out;
}

/* A projection over an array (N_PROJECTION) or an object's values (N_VALUE_PROJECTION). */
static cJSON *eval_projection(jp_status_t *st, const node_t *n, const cJSON *v)
{
    cJSON *base = jp_eval(st, n->kids[0], v), *r = NULL;
    if (!st->failed) {
        int ok = n->type == N_PROJECTION ? cJSON_IsArray(base) : cJSON_IsObject(base);
        r = ok ? project(st, base, n->kids[1]) : jp_null(st);
    }
    cJSON_Delete(base);
    return r;
}

/* Python's slice bounds: a part's value clamped to the list. */
static long slice_bound(long part, long len, long step)
{
    if (part < 0) {
        part += len;
        if (part < 0)
            part = step < 0 ? -1 : 0;
    } else if (part >= len) {
        part = step < 0 ? len - 1 : len;
    }
    return part;
}

static cJSON *eval_slice(jp_status_t *st, const node_t *n, const cJSON *v)
{
    if (!cJSON_IsArray(v))
        return jp_null(st);
    long len = cJSON_GetArraySize(v);
    long step = n->has[2] ? n->part[2] : 1;
    if (step == 0) {
        jp_fail(st, "Invalid value: slice step cannot be 0");
        return NULL;
    }
    long start = n->has[0] ? slice_bound(n->part[0], len, step) : step < 0 ? len - 1 : 0;
    long stop = n->has[1] ? slice_bound(n->part[1], len, step) : step < 0 ? -1 : len;
    cJSON *out = jp_checked(st, cJSON_CreateArray());
    for (long i = start; !st->failed && (step > 0 ? i < stop : i > stop); i += step)
        jp_append(st, out, jp_dup(st, cJSON_GetArrayItem(v, (int)i)));
    return out;
}

static cJSON *eval_compare(jp_status_t *st, const node_t *n, const cJSON *v)
{
    cJSON *a = jp_eval(st, n->kids[0], v);
    cJSON *b = st->failed ? NULL : jp_eval(st, n->kids[1], v);
    cJSON *r = NULL;
    if (!st->failed) {
        if (n->op == T_EQ || n->op == T_NE) {
            int eq = cJSON_Compare(a, b, 1);
            r = cJSON_CreateBool(n->op == T_EQ ? eq : !eq);
        } else if ((cJSON_IsNumber(a) && cJSON_IsNumber(b)) ||
                   (cJSON_IsString(a) && cJSON_IsString(b))) {
            /* Strings order by code point (as the reference implementation, which the AWS CLI
             * uses, allows); UTF-8 byte order is code point order. */
            int c = jp_compare(a, b);
            int res = n->op == T_LT ? c < 0 : n->op == T_LTE ? c <= 0 : n->op == T_GT ? c > 0
                                                                                    : c >= 0;
            r = cJSON_CreateBool(res);
        } else {
            r = cJSON_CreateNull();
        }
        jp_checked(st, r);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    return r;
}

static cJSON *eval_field(jp_status_t *st, const node_t *n, const cJSON *v)
{
    if (cJSON_IsObject(v))
        return jp_dup(st, cJSON_GetObjectItemCaseSensitive(v, n->name));
    return jp_null(st);
}

/* a.b.c and a[0][1]: each kid over the previous one's value. */
static cJSON *eval_chain(jp_status_t *st, const node_t *n, const cJSON *v)
{
    cJSON *r = jp_eval(st, n->kids[0], v);
    for (size_t i = 1; i < n->nkids && r && !st->failed; i++) {
        cJSON *next = jp_eval(st, n->kids[i], r);
        cJSON_Delete(r);
        r = next;
    }
    return r;
}

static cJSON *eval_index(jp_status_t *st, const node_t *n, const cJSON *v)
{
    if (!cJSON_IsArray(v))
        return jp_null(st);
    long len = cJSON_GetArraySize(v), i = n->idx < 0 ? n->idx + len : n->idx;
    if (i < 0 || i >= len)
        return jp_null(st);
    return jp_dup(st, cJSON_GetArrayItem(v, (int)i));
}

static cJSON *eval_flatten(jp_status_t *st, const node_t *n, const cJSON *v)
{
    cJSON *base = jp_eval(st, n->kids[0], v), *out = NULL;
    if (!st->failed && !cJSON_IsArray(base))
        out = jp_null(st);
    else if (!st->failed) {
        out = jp_checked(st, cJSON_CreateArray());
        const cJSON *it, *sub;
        cJSON_ArrayForEach(it, base) {
            if (!cJSON_IsArray(it))
                jp_append(st, out, jp_dup(st, it));
            else
                cJSON_ArrayForEach(sub, it) jp_append(st, out, jp_dup(st, sub));
            if (st->failed)
                break;
        }
    }
    cJSON_Delete(base);
    return out;
}

/* The kids are: what is filtered, what is projected over the kept elements, the condition. */
static cJSON *eval_filter(jp_status_t *st, const node_t *n, const cJSON *v)
{
    cJSON *base = jp_eval(st, n->kids[0], v);
    if (st->failed || !cJSON_IsArray(base)) {
        cJSON_Delete(base);
        return st->failed ? NULL : jp_null(st);
    }
    cJSON *out = jp_checked(st, cJSON_CreateArray());
    const cJSON *it;
    cJSON_ArrayForEach(it, base) {
        cJSON *c = st->failed ? NULL : jp_eval(st, n->kids[2], it);
        int keep = truthy(c);
        cJSON_Delete(c);
        if (st->failed)
            break;
        if (!keep)
            continue;
        cJSON *r = jp_eval(st, n->kids[1], it);
        if (jp_is_null(r) && !st->failed)
            cJSON_Delete(r);
        else
            jp_append(st, out, r);
    }
    cJSON_Delete(base);
    return out;
}

/* a || b and a && b: the left value when it decides, else the right one. */
static cJSON *eval_logic(jp_status_t *st, const node_t *n, const cJSON *v)
{
    cJSON *l = jp_eval(st, n->kids[0], v);
    if (st->failed)
        return l;
    int t = truthy(l);
    if ((n->type == N_OR && t) || (n->type == N_AND && !t))
        return l;
    cJSON_Delete(l);
    return jp_eval(st, n->kids[1], v);
}

static cJSON *eval_not(jp_status_t *st, const node_t *n, const cJSON *v)
{
    cJSON *r = jp_eval(st, n->kids[0], v);
    int t = truthy(r);
    cJSON_Delete(r);
    return st->failed ? NULL : jp_checked(st, cJSON_CreateBool(!t));
}

static cJSON *eval_pipe(jp_status_t *st, const node_t *n, const cJSON *v)
{
    cJSON *l = jp_eval(st, n->kids[0], v);
    cJSON *r = st->failed ? NULL : jp_eval(st, n->kids[1], l);
    cJSON_Delete(l);
    return r;
}

/* [a, b] and {k: a, l: b} (null over null). */
static cJSON *eval_multi(jp_status_t *st, const node_t *n, const cJSON *v)
{
    if (jp_is_null(v))
        return jp_null(st);
    int list = n->type == N_MULTI_LIST;
    cJSON *out = jp_checked(st, list ? cJSON_CreateArray() : cJSON_CreateObject());
    for (size_t i = 0; i < n->nkids && !st->failed; i++) {
        cJSON *r = jp_eval(st, n->kids[i], v);
        if (st->failed)
            cJSON_Delete(r);
        else if (list)
            jp_append(st, out, r);
        else if (!r || !cJSON_AddItemToObject(out, n->keys[i], r)) {
            cJSON_Delete(r);
            jp_fail(st, "out of memory");
        }
    }
    return out;
}

cJSON *jp_eval(jp_status_t *st, const node_t *n, const cJSON *v)
{
    if (st->failed)
        return NULL;
    switch (n->type) {
    case N_FIELD: return eval_field(st, n, v);
    case N_SUBEXPR:
    case N_INDEX_EXPR: return eval_chain(st, n, v);
    case N_INDEX: return eval_index(st, n, v);
    case N_SLICE: return eval_slice(st, n, v);
    case N_PROJECTION:
    case N_VALUE_PROJECTION: return eval_projection(st, n, v);
    case N_FLATTEN: return eval_flatten(st, n, v);
    case N_FILTER_PROJECTION: return eval_filter(st, n, v);
    case N_COMPARATOR: return eval_compare(st, n, v);
    case N_OR:
    case N_AND: return eval_logic(st, n, v);
    case N_NOT: return eval_not(st, n, v);
    case N_PIPE: return eval_pipe(st, n, v);
    case N_MULTI_LIST:
    case N_MULTI_HASH: return eval_multi(st, n, v);
    case N_LITERAL: return jp_dup(st, n->literal);
    case N_CURRENT:
    case N_IDENTITY: return jp_dup(st, v);
    case N_FUNCTION: return jp_call_function(st, n, v);
    case N_EXPREF:
        jp_fail(st, "Expression references can only be passed to functions");
        return NULL;
    }
    return jp_null(st);
}
