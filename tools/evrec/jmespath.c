/*
 * JMESPath over cJSON (jmespath.h): the search, lexing, parsing and evaluating in turn, and
 * what the parts share (jmespath_internal.h describes them).
 */
#include "jmespath.h"
#include "jmespath_internal.h"

#include <stdio.h>
#include <string.h>

void jp_fail(jp_status_t *st, const char *fmt, ...)
{
    if (st->failed)
        return;
    st->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, st->errlen, fmt, ap);
    va_end(ap);
}

cJSON *jp_checked(jp_status_t *st, cJSON *v)
{
    if (!v)
        jp_fail(st, "out of memory");
    return v;
}

/* Strings a cJSON item owns come from cJSON's allocator (cJSON_Delete frees them with it). */
char *jp_cjson_strndup(const char *s, size_t n)
{
    char *d = cJSON_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

int jp_search(const char *expression_text, const cJSON *data, cJSON **result, char *err,
              size_t errlen)
{
    char scratch[1];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    *result = NULL;
    parser_t p = { .expr = expression_text ? expression_text : "",
                   .st = { .err = err, .errlen = errlen } };
    node_t *ast = NULL;
    int rc = -1;
    if (jp_lex(&p) == 0)
        ast = jp_parse(&p);
    else
        jp_fail(&p.st, "Bad jmespath expression");
    if (ast) {
        jp_status_t st = { .err = err, .errlen = errlen };
        cJSON *r = jp_eval(&st, ast, data);
        if (!st.failed && r) {
            *result = r;
            rc = 0;
        } else {
            jp_fail(&st, "out of memory"); /* a NULL value without an error */
            cJSON_Delete(r);
        }
    }
    jp_node_free(ast);
    jp_tokens_free(&p);
    return rc;
}
