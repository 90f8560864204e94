/*
 * JMESPath over cJSON: a lexer, a Pratt parser with the specification's binding powers, and a
 * tree-walking evaluator. Every evaluation step returns a new cJSON value owned by the caller,
 * which keeps ownership rules trivial at the cost of copies (fine for CLI-sized documents).
 */
#define _POSIX_C_SOURCE 200809L
#include "jmespath.h"
#include "util_utf8.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Lexer                                                                                     */
/* ---------------------------------------------------------------------------------------- */

typedef enum tok_type {
    T_EOF, T_UNQUOTED, T_QUOTED, T_LITERAL, T_NUMBER, T_DOT, T_STAR, T_FLATTEN, T_FILTER,
    T_LBRACKET, T_RBRACKET, T_LBRACE, T_RBRACE, T_LPAREN, T_RPAREN, T_COMMA, T_COLON, T_PIPE,
    T_OR, T_AND, T_NOT, T_EXPREF, T_CURRENT, T_EQ, T_NE, T_LT, T_LTE, T_GT, T_GTE, T_COUNT
} tok_type_t;

static const char *const tok_names[T_COUNT] = {
    "eof", "unquoted_identifier", "quoted_identifier", "literal", "number", "dot", "star",
    "flatten", "filter", "lbracket", "rbracket", "lbrace", "rbrace", "lparen", "rparen",
    "comma", "colon", "pipe", "or", "and", "not", "expref", "current", "eq", "ne", "lt", "lte",
    "gt", "gte",
};

/* The specification's binding powers (as in the reference implementation). */
static const int binding_power[T_COUNT] = {
    [T_PIPE] = 1, [T_OR] = 2, [T_AND] = 3, [T_EQ] = 5, [T_NE] = 5, [T_LT] = 5, [T_LTE] = 5,
    [T_GT] = 5, [T_GTE] = 5, [T_FLATTEN] = 9, [T_STAR] = 20, [T_FILTER] = 21, [T_DOT] = 40,
    [T_NOT] = 45, [T_LBRACE] = 50, [T_LBRACKET] = 55, [T_LPAREN] = 60,
};

typedef struct token {
    tok_type_t type;
    size_t pos;
    char *str;     /* identifier name (decoded) */
    cJSON *json;   /* literal value */
    long num;
} token_t;

typedef struct parser {
    const char *expr;
    token_t *toks;
    size_t ntoks, cap, at;
    int depth;     /* nesting of expression(): bounded so hostile input cannot exhaust the stack */
    char *err;
    size_t errlen;
    int failed;
} parser_t;

#if defined(__GNUC__)
#define JP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define JP_PRINTF(a, b)
#endif

static void p_fail(parser_t *p, const char *fmt, ...) JP_PRINTF(2, 3);
static void p_fail(parser_t *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
}

static void lex_error(parser_t *p, size_t pos, const char *what)
{
    p_fail(p, "Bad jmespath expression: %s at column %zu, for expression:\n\"%s\"", what, pos,
         p->expr);
}

static int push(parser_t *p, tok_type_t type, size_t pos)
{
    if (p->ntoks == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        token_t *n = realloc(p->toks, ncap * sizeof *n);
        if (!n) {
            p_fail(p, "out of memory");
            return -1;
        }
        p->toks = n;
        p->cap = ncap;
    }
    token_t *t = &p->toks[p->ntoks++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->pos = pos;
    return 0;
}

/* The text up to the closing quote, as the reference lexer's _consume_until: a backslash
 * takes the next character with it (so it never closes the text), then `\<quote>` becomes
 * the quote and everything else is kept verbatim ('\\' is two backslashes). Returns the
 * index after the closing quote, or 0 if unterminated. */
static size_t scan_quoted(const char *s, size_t i, char quote, char **out)
{
    size_t start = ++i;
    while (s[i] && s[i] != quote) {
        if (s[i] == '\\' && s[i + 1])
            i++;
        i++;
    }
    if (!s[i])
        return 0;
    size_t n = i - start;
    char *buf = malloc(n + 1);
    if (!buf)
        return 0;
    size_t o = 0;
    for (size_t k = start; k < i; k++) {
        if (s[k] == '\\' && k + 1 < i) {
            if (s[k + 1] != quote)
                buf[o++] = s[k];
            k++;
        }
        buf[o++] = s[k];
    }
    buf[o] = '\0';
    *out = buf;
    return i + 1;
}

/* Numbers keep Python's int/float distinction as the CLI's JSON reader marks it (pyjson.h): a
 * number item's valuestring holds its literal, a float's has '.', 'e', 'E', "Infinity" or
 * "NaN" in it, an int's is its exact digits. cJSON keeps no number text, so each number of a
 * parsed literal gets its text from the source, in document order. */
/* Strings a cJSON item owns come from cJSON's allocator (cJSON_Delete frees them with it). */
static char *cj_strndup(const char *s, size_t n)
{
    char *d = cJSON_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int attach_literals(cJSON *v, const char **cursor)
{
    if (cJSON_IsNumber(v)) {
        const char *c = *cursor;
        while (*c && *c != '-' && !(*c >= '0' && *c <= '9')) {
            if (*c == '"') { /* skip a string (keys included) */
                for (c++; *c && *c != '"'; c++)
                    if (*c == '\\' && c[1])
                        c++;
            }
            if (*c)
                c++;
        }
        size_t n = strspn(c, "-+0123456789.eE");
        cJSON_free(v->valuestring);
        v->valuestring = cj_strndup(c, n);
        *cursor = c + n;
        if (v->valuestring && !strpbrk(v->valuestring, ".eE") && v->valuedouble == 0)
            cJSON_SetNumberValue(v, 0.0); /* the int -0 is 0 */
        return v->valuestring ? 0 : -1;
    }
    for (cJSON *k = v->child; k; k = k->next)
        if (attach_literals(k, cursor) != 0)
            return -1;
    return 0;
}

static int lex(parser_t *p)
{
    const char *s = p->expr;
    size_t i = 0;
    while (s[i]) {
        char c = s[i];
        size_t pos = i;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
            continue;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t st = i;
            while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                   (s[i] >= '0' && s[i] <= '9') || s[i] == '_')
                i++;
            if (push(p, T_UNQUOTED, pos))
                return -1;
            p->toks[p->ntoks - 1].str = strndup(s + st, i - st);
            continue;
        }
        if ((c >= '0' && c <= '9') || (c == '-' && s[i + 1] >= '0' && s[i + 1] <= '9')) {
            char *end;
            long v = strtol(s + i, &end, 10);
            i = (size_t)(end - s);
            if (push(p, T_NUMBER, pos))
                return -1;
            p->toks[p->ntoks - 1].num = v;
            continue;
        }
        tok_type_t simple = T_COUNT;
        switch (c) {
        case '.': simple = T_DOT; break;
        case '*': simple = T_STAR; break;
        case ']': simple = T_RBRACKET; break;
        case ',': simple = T_COMMA; break;
        case ':': simple = T_COLON; break;
        case '@': simple = T_CURRENT; break;
        case '(': simple = T_LPAREN; break;
        case ')': simple = T_RPAREN; break;
        case '{': simple = T_LBRACE; break;
        case '}': simple = T_RBRACE; break;
        default: break;
        }
        if (simple != T_COUNT) {
            if (push(p, simple, pos))
                return -1;
            i++;
            continue;
        }
        if (c == '[') {
            tok_type_t t = T_LBRACKET;
            if (s[i + 1] == ']')
                t = T_FLATTEN;
            else if (s[i + 1] == '?')
                t = T_FILTER;
            if (push(p, t, pos))
                return -1;
            i += t == T_LBRACKET ? 1 : 2;
            continue;
        }
        if (c == '|' || c == '&') {
            int dbl = s[i + 1] == c;
            if (push(p, c == '|' ? (dbl ? T_OR : T_PIPE) : (dbl ? T_AND : T_EXPREF), pos))
                return -1;
            i += dbl ? 2 : 1;
            continue;
        }
        if (c == '<' || c == '>' || c == '=' || c == '!') {
            int eq = s[i + 1] == '=';
            tok_type_t t;
            if (c == '<')
                t = eq ? T_LTE : T_LT;
            else if (c == '>')
                t = eq ? T_GTE : T_GT;
            else if (c == '!')
                t = eq ? T_NE : T_NOT;
            else if (eq)
                t = T_EQ;
            else {
                lex_error(p, pos, "Unknown token '='");
                return -1;
            }
            if (push(p, t, pos))
                return -1;
            i += eq ? 2 : 1;
            continue;
        }
        if (c == '\'' || c == '"' || c == '`') {
            char *text = NULL;
            size_t next = scan_quoted(s, i, c, &text);
            if (!next) {
                lex_error(p, pos, "Unclosed delimiter");
                return -1;
            }
            i = next;
            if (c == '\'') {
                if (push(p, T_LITERAL, pos)) {
                    free(text);
                    return -1;
                }
                p->toks[p->ntoks - 1].json = cJSON_CreateString(text);
                free(text);
            } else if (c == '"') {
                /* A quoted identifier is a JSON string: decode it with cJSON. */
                size_t raw_len = next - pos;
                char *raw = strndup(s + pos, raw_len);
                cJSON *j = raw ? cJSON_Parse(raw) : NULL;
                free(raw);
                free(text);
                if (!cJSON_IsString(j)) {
                    cJSON_Delete(j);
                    lex_error(p, pos, "Invalid quoted identifier");
                    return -1;
                }
                if (push(p, T_QUOTED, pos)) {
                    cJSON_Delete(j);
                    return -1;
                }
                p->toks[p->ntoks - 1].str = strdup(j->valuestring);
                cJSON_Delete(j);
            } else {
                cJSON *j = cJSON_Parse(text);
                const char *cursor = text;
                if (j && attach_literals(j, &cursor) != 0) {
                    cJSON_Delete(j);
                    free(text);
                    lex_error(p, pos, "Out of memory");
                    return -1;
                }
                if (!j) {
                    /* Legacy form: `foo` means the string "foo". */
                    size_t tl = strlen(text);
                    char *quoted = malloc(tl + 3);
                    if (quoted) {
                        snprintf(quoted, tl + 3, "\"%s\"", text);
                        j = cJSON_Parse(quoted);
                        free(quoted);
                    }
                }
                free(text);
                if (!j) {
                    lex_error(p, pos, "Bad token literal");
                    return -1;
                }
                if (push(p, T_LITERAL, pos)) {
                    cJSON_Delete(j);
                    return -1;
                }
                p->toks[p->ntoks - 1].json = j;
            }
            continue;
        }
        char what[48];
        snprintf(what, sizeof what, "Unknown token '%c'", c);
        lex_error(p, pos, what);
        return -1;
    }
    return push(p, T_EOF, i);
}

/* ---------------------------------------------------------------------------------------- */
/* AST                                                                                       */
/* ---------------------------------------------------------------------------------------- */

typedef enum node_type {
    N_FIELD, N_SUBEXPR, N_INDEX_EXPR, N_INDEX, N_SLICE, N_PROJECTION, N_VALUE_PROJECTION,
    N_FLATTEN, N_FILTER_PROJECTION, N_COMPARATOR, N_OR, N_AND, N_NOT, N_PIPE, N_MULTI_LIST,
    N_MULTI_HASH, N_LITERAL, N_CURRENT, N_IDENTITY, N_FUNCTION, N_EXPREF
} node_type_t;

typedef struct node {
    node_type_t type;
    char *name;              /* field name, function name, hash key */
    cJSON *literal;
    tok_type_t op;           /* comparator */
    long idx;                /* index */
    int has[3];              /* slice parts present */
    long part[3];
    struct node **kids;
    char **keys;             /* multi-select hash keys, parallel to kids */
    size_t nkids;
} node_t;

static void node_free(node_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++) {
        node_free(n->kids[i]);
        if (n->keys)
            free(n->keys[i]);
    }
    free(n->kids);
    free(n->keys);
    free(n->name);
    cJSON_Delete(n->literal);
    free(n);
}

static node_t *node_new(parser_t *p, node_type_t type)
{
    node_t *n = calloc(1, sizeof *n);
    if (!n)
        p_fail(p, "out of memory");
    else
        n->type = type;
    return n;
}

static int node_add(parser_t *p, node_t *n, node_t *kid)
{
    if (!n || !kid) {
        node_free(kid);
        return -1;
    }
    node_t **k = realloc(n->kids, (n->nkids + 1) * sizeof *k);
    if (!k) {
        p_fail(p, "out of memory");
        node_free(kid);
        return -1;
    }
    n->kids = k;
    n->kids[n->nkids++] = kid;
    return 0;
}

static node_t *node2(parser_t *p, node_type_t type, node_t *a, node_t *b)
{
    node_t *n = node_new(p, type);
    if (!n || !a || !b || p->failed) {
        node_free(n);
        node_free(a);
        node_free(b);
        return NULL;
    }
    node_add(p, n, a);
    node_add(p, n, b);
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Parser                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static token_t *cur(parser_t *p) { return &p->toks[p->at]; }
static tok_type_t cur_type(parser_t *p) { return p->toks[p->at].type; }
static tok_type_t peek_type(parser_t *p, size_t k)
{
    size_t i = p->at + k;
    return i < p->ntoks ? p->toks[i].type : T_EOF;
}
static void advance(parser_t *p)
{
    if (p->at + 1 < p->ntoks)
        p->at++;
}

static void parse_error(parser_t *p, const char *expecting)
{
    token_t *t = cur(p);
    if (t->type == T_EOF)
        p_fail(p, "Bad jmespath expression: Unexpected end of expression%s%s, for expression:\n\"%s\"",
             expecting ? ", expecting: " : "", expecting ? expecting : "", p->expr);
    else
        p_fail(p, "Bad jmespath expression: Unexpected token: %s at column %zu%s%s, for "
             "expression:\n\"%s\"", tok_names[t->type], t->pos,
             expecting ? ", expecting: " : "", expecting ? expecting : "", p->expr);
}

static int match(parser_t *p, tok_type_t t)
{
    if (cur_type(p) != t) {
        parse_error(p, tok_names[t]);
        return -1;
    }
    advance(p);
    return 0;
}

static node_t *expression(parser_t *p, int bp);
static node_t *expression_at_depth(parser_t *p, int bp);

static node_t *projection_rhs(parser_t *p, int bp);

static node_t *multi_select_list(parser_t *p)
{
    node_t *n = node_new(p, N_MULTI_LIST);
    for (;;) {
        if (node_add(p, n, expression(p, 0)) || p->failed)
            goto bad;
        if (cur_type(p) == T_RBRACKET)
            break;
        if (match(p, T_COMMA))
            goto bad;
    }
    if (match(p, T_RBRACKET))
        goto bad;
    return n;
bad:
    node_free(n);
    return NULL;
}

static node_t *multi_select_hash(parser_t *p)
{
    node_t *n = node_new(p, N_MULTI_HASH);
    if (!n)
        return NULL;
    for (;;) {
        token_t *k = cur(p);
        if (k->type != T_QUOTED && k->type != T_UNQUOTED) {
            parse_error(p, "quoted_identifier or unquoted_identifier");
            goto bad;
        }
        char *key = strdup(k->str);
        advance(p);
        if (!key || match(p, T_COLON)) {
            free(key);
            goto bad;
        }
        char **keys = realloc(n->keys, (n->nkids + 1) * sizeof *keys);
        if (!keys) {
            free(key);
            goto bad;
        }
        n->keys = keys;
        n->keys[n->nkids] = key;
        node_t *v = expression(p, 0);
        if (!v || node_add(p, n, v)) {
            free(key);
            goto bad;
        }
        if (cur_type(p) == T_COMMA) {
            advance(p);
        } else if (cur_type(p) == T_RBRACE) {
            advance(p);
            break;
        } else {
            parse_error(p, "comma or rbrace");
            goto bad;
        }
    }
    return n;
bad:
    node_free(n);
    return NULL;
}

static node_t *dot_rhs(parser_t *p, int bp)
{
    tok_type_t t = cur_type(p);
    if (t == T_QUOTED || t == T_UNQUOTED || t == T_STAR)
        return expression(p, bp);
    if (t == T_LBRACKET) {
        advance(p);
        return multi_select_list(p);
    }
    if (t == T_LBRACE) {
        advance(p);
        return multi_select_hash(p);
    }
    parse_error(p, "quoted_identifier, unquoted_identifier, lbracket or lbrace");
    return NULL;
}

static node_t *projection_rhs(parser_t *p, int bp)
{
    tok_type_t t = cur_type(p);
    if (binding_power[t] < 10)
        return node_new(p, N_IDENTITY);
    if (t == T_LBRACKET || t == T_FILTER)
        return expression(p, bp);
    if (t == T_DOT) {
        advance(p);
        return dot_rhs(p, bp);
    }
    parse_error(p, "dot, lbracket or filter");
    return NULL;
}

static node_t *slice_expression(parser_t *p)
{
    node_t *n = node_new(p, N_SLICE);
    if (!n)
        return NULL;
    int index = 0;
    while (cur_type(p) != T_RBRACKET && index < 3) {
        if (cur_type(p) == T_COLON) {
            index++;
            if (index == 3) {
                parse_error(p, "number or rbracket");
                goto bad;
            }
            advance(p);
        } else if (cur_type(p) == T_NUMBER) {
            n->has[index] = 1;
            n->part[index] = cur(p)->num;
            advance(p);
        } else {
            parse_error(p, "number, colon or rbracket");
            goto bad;
        }
    }
    if (match(p, T_RBRACKET))
        goto bad;
    return n;
bad:
    node_free(n);
    return NULL;
}

static node_t *index_expression(parser_t *p)
{
    if (peek_type(p, 0) == T_COLON || peek_type(p, 1) == T_COLON)
        return slice_expression(p);
    node_t *n = node_new(p, N_INDEX);
    if (!n)
        return NULL;
    n->idx = cur(p)->num;
    advance(p);
    if (match(p, T_RBRACKET)) {
        node_free(n);
        return NULL;
    }
    return n;
}

static node_t *project_if_slice(parser_t *p, node_t *left, node_t *right)
{
    int is_slice = right && right->type == N_SLICE;
    node_t *ie = node2(p, N_INDEX_EXPR, left, right);
    if (!ie || !is_slice)
        return ie;
    return node2(p, N_PROJECTION, ie, projection_rhs(p, binding_power[T_STAR]));
}

static node_t *nud(parser_t *p, token_t *t)
{
    node_t *n;
    switch (t->type) {
    case T_LITERAL:
        n = node_new(p, N_LITERAL);
        if (n)
            n->literal = cJSON_Duplicate(t->json, 1);
        return n;
    case T_UNQUOTED:
        n = node_new(p, N_FIELD);
        if (n)
            n->name = strdup(t->str);
        return n;
    case T_QUOTED:
        if (cur_type(p) == T_LPAREN) {
            p_fail(p, "Bad jmespath expression: Quoted identifier not allowed for function "
                 "names, for expression:\n\"%s\"", p->expr);
            return NULL;
        }
        n = node_new(p, N_FIELD);
        if (n)
            n->name = strdup(t->str);
        return n;
    case T_STAR: {
        node_t *left = node_new(p, N_IDENTITY);
        node_t *right = cur_type(p) == T_RBRACKET ? node_new(p, N_IDENTITY)
                                                  : projection_rhs(p, binding_power[T_STAR]);
        return node2(p, N_VALUE_PROJECTION, left, right);
    }
    case T_FILTER:
    case T_LBRACKET:
    case T_FLATTEN:
        break;
    case T_LBRACE:
        return multi_select_hash(p);
    case T_LPAREN:
        n = expression(p, 0);
        if (n && match(p, T_RPAREN)) {
            node_free(n);
            return NULL;
        }
        return n;
    case T_NOT:
        n = node_new(p, N_NOT);
        if (node_add(p, n, expression(p, binding_power[T_NOT]))) {
            node_free(n);
            return NULL;
        }
        return n;
    case T_CURRENT:
        return node_new(p, N_CURRENT);
    case T_EXPREF:
        n = node_new(p, N_EXPREF);
        if (node_add(p, n, expression(p, 0))) {
            node_free(n);
            return NULL;
        }
        return n;
    default:
        p->at--; /* report the token that could not start an expression */
        parse_error(p, NULL);
        p->at++;
        return NULL;
    }
    if (t->type == T_FLATTEN) {
        node_t *flat = node_new(p, N_FLATTEN);
        if (node_add(p, flat, node_new(p, N_IDENTITY))) {
            node_free(flat);
            return NULL;
        }
        return node2(p, N_PROJECTION, flat, projection_rhs(p, binding_power[T_FLATTEN]));
    }
    if (t->type == T_FILTER) {
        node_t *cond = expression(p, 0);
        if (!cond || match(p, T_RBRACKET)) {
            node_free(cond);
            return NULL;
        }
        node_t *right = cur_type(p) == T_FLATTEN ? node_new(p, N_IDENTITY)
                                                 : projection_rhs(p, binding_power[T_FILTER]);
        node_t *fp = node_new(p, N_FILTER_PROJECTION);
        node_add(p, fp, node_new(p, N_IDENTITY));
        node_add(p, fp, right);
        node_add(p, fp, cond);
        if (!fp || fp->nkids != 3 || p->failed) {
            node_free(fp);
            return NULL;
        }
        return fp;
    }
    /* '[' */
    if (cur_type(p) == T_NUMBER || cur_type(p) == T_COLON)
        return project_if_slice(p, node_new(p, N_IDENTITY), index_expression(p));
    if (cur_type(p) == T_STAR && peek_type(p, 1) == T_RBRACKET) {
        advance(p);
        advance(p);
        return node2(p, N_PROJECTION, node_new(p, N_IDENTITY),
                     projection_rhs(p, binding_power[T_STAR]));
    }
    return multi_select_list(p);
}

static node_t *led(parser_t *p, token_t *t, node_t *left)
{
    switch (t->type) {
    case T_DOT:
        if (cur_type(p) != T_STAR) {
            node_t *right = dot_rhs(p, binding_power[T_DOT]);
            if (left->type == N_SUBEXPR && right) {
                node_add(p, left, right);
                return p->failed ? (node_free(left), NULL) : left;
            }
            return node2(p, N_SUBEXPR, left, right);
        }
        advance(p);
        return node2(p, N_VALUE_PROJECTION, left, projection_rhs(p, binding_power[T_DOT]));
    case T_PIPE:
        return node2(p, N_PIPE, left, expression(p, binding_power[T_PIPE]));
    case T_OR:
        return node2(p, N_OR, left, expression(p, binding_power[T_OR]));
    case T_AND:
        return node2(p, N_AND, left, expression(p, binding_power[T_AND]));
    case T_LPAREN: {
        if (left->type != N_FIELD) {
            p_fail(p, "Bad jmespath expression: Invalid function name, for expression:\n\"%s\"",
                 p->expr);
            node_free(left);
            return NULL;
        }
        node_t *fn = node_new(p, N_FUNCTION);
        if (!fn) {
            node_free(left);
            return NULL;
        }
        fn->name = left->name;
        left->name = NULL;
        node_free(left);
        while (cur_type(p) != T_RPAREN) {
            if (node_add(p, fn, expression(p, 0)) || p->failed) {
                node_free(fn);
                return NULL;
            }
            if (cur_type(p) == T_COMMA) {
                advance(p);
                if (cur_type(p) == T_RPAREN) {
                    parse_error(p, "an expression");
                    node_free(fn);
                    return NULL;
                }
            } else if (cur_type(p) != T_RPAREN) {
                parse_error(p, "comma or rparen");
                node_free(fn);
                return NULL;
            }
        }
        advance(p);
        return fn;
    }
    case T_FILTER: {
        node_t *cond = expression(p, 0);
        if (!cond || match(p, T_RBRACKET)) {
            node_free(cond);
            node_free(left);
            return NULL;
        }
        node_t *right = cur_type(p) == T_FLATTEN ? node_new(p, N_IDENTITY)
                                                 : projection_rhs(p, binding_power[T_FILTER]);
        node_t *fp = node_new(p, N_FILTER_PROJECTION);
        if (!fp || !right || p->failed) {
            node_free(fp);
            node_free(right);
            node_free(cond);
            node_free(left);
            return NULL;
        }
        node_add(p, fp, left);
        node_add(p, fp, right);
        node_add(p, fp, cond);
        return fp;
    }
    case T_EQ: case T_NE: case T_LT: case T_LTE: case T_GT: case T_GTE: {
        node_t *c = node2(p, N_COMPARATOR, left, expression(p, binding_power[t->type]));
        if (c)
            c->op = t->type;
        return c;
    }
    case T_FLATTEN: {
        node_t *flat = node_new(p, N_FLATTEN);
        if (node_add(p, flat, left)) {
            node_free(flat);
            return NULL;
        }
        return node2(p, N_PROJECTION, flat, projection_rhs(p, binding_power[T_FLATTEN]));
    }
    case T_LBRACKET:
        if (cur_type(p) == T_NUMBER || cur_type(p) == T_COLON) {
            node_t *right = index_expression(p);
            if (!right) {
                node_free(left);
                return NULL;
            }
            if (left->type == N_INDEX_EXPR) {
                node_add(p, left, right);
                return left;
            }
            return project_if_slice(p, left, right);
        }
        if (match(p, T_STAR) || match(p, T_RBRACKET)) {
            node_free(left);
            return NULL;
        }
        return node2(p, N_PROJECTION, left, projection_rhs(p, binding_power[T_STAR]));
    default:
        p->at--;
        parse_error(p, NULL);
        p->at++;
        node_free(left);
        return NULL;
    }
}

#define JP_MAX_DEPTH 256

static node_t *expression(parser_t *p, int bp)
{
    if (p->failed)
        return NULL;
    if (p->depth >= JP_MAX_DEPTH) {
        p_fail(p, "Bad jmespath expression: nested more than %d levels deep", JP_MAX_DEPTH);
        return NULL;
    }
    p->depth++;
    node_t *n = expression_at_depth(p, bp);
    p->depth--;
    return n;
}

static node_t *expression_at_depth(parser_t *p, int bp)
{
    token_t *t = cur(p);
    if (t->type == T_EOF) {
        parse_error(p, "an expression");
        return NULL;
    }
    advance(p);
    node_t *left = nud(p, t);
    while (left && !p->failed && bp < binding_power[cur_type(p)]) {
        token_t *op = cur(p);
        advance(p);
        left = led(p, op, left);
    }
    if (p->failed) {
        node_free(left);
        return NULL;
    }
    return left;
}

/* ---------------------------------------------------------------------------------------- */
/* Evaluation                                                                                */
/* ---------------------------------------------------------------------------------------- */

typedef struct eval {
    char *err;
    size_t errlen;
    int failed;
} eval_t;

static void eval_fail(eval_t *e, const char *fmt, ...) JP_PRINTF(2, 3);
static void eval_fail(eval_t *e, const char *fmt, ...)
{
    if (e->failed)
        return;
    e->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err, e->errlen, fmt, ap);
    va_end(ap);
}

static cJSON *eval(eval_t *e, const node_t *n, const cJSON *v);

static cJSON *null_value(void) { return cJSON_CreateNull(); }
static cJSON *dup(const cJSON *v) { return v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull(); }
static int is_null(const cJSON *v) { return !v || cJSON_IsNull(v); }

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

static const char *type_name(const cJSON *v)
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

static cJSON *eval_projection(eval_t *e, const cJSON *base, const node_t *rhs)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *it;
    cJSON_ArrayForEach(it, base) {
        cJSON *r = eval(e, rhs, it);
        if (e->failed) {
            cJSON_Delete(r);
            break;
        }
        if (is_null(r))
            cJSON_Delete(r);
        else
            cJSON_AddItemToArray(out, r);
    }
    return out;
}

static cJSON *eval_slice(eval_t *e, const node_t *n, const cJSON *v)
{
    if (!cJSON_IsArray(v))
        return null_value();
    long len = cJSON_GetArraySize(v);
    long step = n->has[2] ? n->part[2] : 1;
    if (step == 0) {
        eval_fail(e, "Invalid value: slice step cannot be 0");
        return NULL;
    }
    long start, stop;
    if (!n->has[0])
        start = step < 0 ? len - 1 : 0;
    else {
        start = n->part[0];
        if (start < 0) {
            start += len;
            if (start < 0)
                start = step < 0 ? -1 : 0;
        } else if (start >= len)
            start = step < 0 ? len - 1 : len;
    }
    if (!n->has[1])
        stop = step < 0 ? -1 : len;
    else {
        stop = n->part[1];
        if (stop < 0) {
            stop += len;
            if (stop < 0)
                stop = step < 0 ? -1 : 0;
        } else if (stop >= len)
            stop = step < 0 ? len - 1 : len;
    }
    cJSON *out = cJSON_CreateArray();
    for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        cJSON_AddItemToArray(out, dup(cJSON_GetArrayItem(v, (int)i)));
    return out;
}

static int cmp_json(const cJSON *a, const cJSON *b);

static cJSON *eval_compare(eval_t *e, const node_t *n, const cJSON *v)
{
    cJSON *a = eval(e, n->kids[0], v);
    cJSON *b = e->failed ? NULL : eval(e, n->kids[1], v);
    cJSON *r = NULL;
    if (!e->failed) {
        if (n->op == T_EQ || n->op == T_NE) {
            int eq = cJSON_Compare(a, b, 1);
            r = cJSON_CreateBool(n->op == T_EQ ? eq : !eq);
        } else if ((cJSON_IsNumber(a) && cJSON_IsNumber(b)) ||
                   (cJSON_IsString(a) && cJSON_IsString(b))) {
            /* Strings order by code point (as the reference implementation, which the AWS CLI
             * uses, allows); UTF-8 byte order is code point order. */
            int c = cmp_json(a, b);
            int res = n->op == T_LT ? c < 0 : n->op == T_LTE ? c <= 0 : n->op == T_GT ? c > 0
                                                                                    : c >= 0;
            r = cJSON_CreateBool(res);
        } else {
            r = null_value();
        }
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    return r;
}

/* -- functions ----------------------------------------------------------------------------- */

enum { A_NUM = 1, A_STR = 2, A_BOOL = 4, A_ARR = 8, A_OBJ = 16, A_NULL = 32, A_EXPREF = 64,
       A_ARR_NUM = 128, A_ARR_STR = 256, A_ANY = 63 };

typedef struct fn_spec {
    const char *name;
    int nargs;       /* fixed count, or -1 for variadic (at least one) */
    int types[3];
} fn_spec_t;

static const fn_spec_t functions[] = {
    { "abs", 1, { A_NUM } },
    { "avg", 1, { A_ARR_NUM } },
    { "ceil", 1, { A_NUM } },
    { "contains", 2, { A_ARR | A_STR, A_ANY } },
    { "ends_with", 2, { A_STR, A_STR } },
    { "floor", 1, { A_NUM } },
    { "join", 2, { A_STR, A_ARR_STR } },
    { "keys", 1, { A_OBJ } },
    { "length", 1, { A_STR | A_ARR | A_OBJ } },
    { "map", 2, { A_EXPREF, A_ARR } },
    { "max", 1, { A_ARR_NUM | A_ARR_STR } },
    { "max_by", 2, { A_ARR, A_EXPREF } },
    { "merge", -1, { A_OBJ } },
    { "min", 1, { A_ARR_NUM | A_ARR_STR } },
    { "min_by", 2, { A_ARR, A_EXPREF } },
    { "not_null", -1, { A_ANY } },
    { "reverse", 1, { A_STR | A_ARR } },
    { "sort", 1, { A_ARR_NUM | A_ARR_STR } },
    { "sort_by", 2, { A_ARR, A_EXPREF } },
    { "starts_with", 2, { A_STR, A_STR } },
    { "sum", 1, { A_ARR_NUM } },
    { "to_array", 1, { A_ANY } },
    { "to_number", 1, { A_ANY } },
    { "to_string", 1, { A_ANY } },
    { "type", 1, { A_ANY } },
    { "values", 1, { A_OBJ } },
};

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
    if ((mask & A_NULL) && is_null(v)) return 1;
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

static void type_error(eval_t *e, const char *fn, const cJSON *got, int mask)
{
    char expected[160];
    mask_names(mask, expected, sizeof expected);
    char *shown = got ? cJSON_PrintUnformatted(got) : NULL;
    eval_fail(e, "In function %s(), invalid type for value: %s, expected one of: [%s], "
              "received: \"%s\"", fn, shown ? shown : "None", expected, type_name(got));
    cJSON_free(shown);
}

static int cmp_json(const cJSON *a, const cJSON *b)
{
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        return a->valuedouble < b->valuedouble ? -1 : a->valuedouble > b->valuedouble;
    return strcmp(a->valuestring, b->valuestring);
}

/* Stable merge sort of items by keys (both arrays of the same length); -1 when out of
 * memory (then the order is not sorted). */
static int sort_pairs(cJSON **items, cJSON **keys, size_t n)
{
    if (n < 2)
        return 0;
    size_t h = n / 2;
    if (sort_pairs(items, keys, h) != 0 || sort_pairs(items + h, keys + h, n - h) != 0)
        return -1;
    cJSON **ti = malloc(n * sizeof *ti), **tk = malloc(n * sizeof *tk);
    if (!ti || !tk) {
        free(ti);
        free(tk);
        return -1;
    }
    size_t i = 0, j = h, o = 0;
    while (i < h && j < n) {
        if (cmp_json(keys[j], keys[i]) < 0) {
            ti[o] = items[j];
            tk[o++] = keys[j++];
        } else {
            ti[o] = items[i];
            tk[o++] = keys[i++];
        }
    }
    while (i < h) {
        ti[o] = items[i];
        tk[o++] = keys[i++];
    }
    while (j < n) {
        ti[o] = items[j];
        tk[o++] = keys[j++];
    }
    memcpy(items, ti, n * sizeof *ti);
    memcpy(keys, tk, n * sizeof *tk);
    free(ti);
    free(tk);
    return 0;
}

/* Evaluate the expref for every element; all keys must be numbers, or all strings. */
static cJSON **by_keys(eval_t *e, const char *fn, const node_t *expref, const cJSON *arr,
                       size_t *n_out)
{
    size_t n = (size_t)cJSON_GetArraySize(arr);
    cJSON **keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys) {
        eval_fail(e, "out of memory");
        return NULL;
    }
    size_t i = 0;
    const cJSON *it;
    int want = 0;
    cJSON_ArrayForEach(it, arr) {
        keys[i] = eval(e, expref->kids[0], it);
        if (e->failed)
            break;
        int t = cJSON_IsNumber(keys[i]) ? A_NUM : cJSON_IsString(keys[i]) ? A_STR : 0;
        if (!t || (want && t != want)) {
            type_error(e, fn, keys[i], want ? want : A_NUM | A_STR);
            i++;
            break;
        }
        want = t;
        i++;
    }
    if (e->failed) {
        /* every key so far, the one whose evaluation failed included (calloc'ed: NULL after) */
        for (size_t k = 0; k < n; k++)
            cJSON_Delete(keys[k]);
        free(keys);
        return NULL;
    }
    *n_out = n;
    return keys;
}

static cJSON *fn_by(eval_t *e, const char *fn, const cJSON *arr, const node_t *expref, int mode)
{
    size_t n;
    cJSON **keys = by_keys(e, fn, expref, arr, &n);
    if (!keys)
        return NULL;
    cJSON *out;
    if (mode == 0) { /* sort_by */
        cJSON **items = malloc((n ? n : 1) * sizeof *items);
        size_t i = 0;
        const cJSON *it;
        if (items) {
            cJSON_ArrayForEach(it, arr) items[i++] = (cJSON *)it;
        }
        if (!items || sort_pairs(items, keys, n) != 0) {
            eval_fail(e, "out of memory");
            out = NULL;
        } else {
            out = cJSON_CreateArray();
            for (i = 0; i < n; i++)
                cJSON_AddItemToArray(out, dup(items[i]));
        }
        free(items);
    } else { /* max_by (1) / min_by (-1) */
        size_t best = 0;
        for (size_t i = 1; i < n; i++) {
            int c = cmp_json(keys[i], keys[best]);
            if ((mode > 0 && c > 0) || (mode < 0 && c < 0))
                best = i;
        }
        out = n ? dup(cJSON_GetArrayItem(arr, (int)best)) : null_value();
    }
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(keys[i]);
    free(keys);
    return out;
}

static cJSON *num_literal(double v, const char *lit)
{
    cJSON *n = cJSON_CreateNumber(v);
    if (n && !(n->valuestring = cj_strndup(lit, strlen(lit)))) {
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

/* int(s) as Python reads a string: blanks around, a sign, digits with single underscores
 * between them. Writes the normalised literal to out; -1 if it is not one. */
static int py_int_literal(const char *s, char *out, size_t outlen)
{
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
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
        if (*s == '_' && digits && s[1] >= '0' && s[1] <= '9')
            continue;
        if (*s < '0' || *s > '9')
            break;
        if (o + 2 >= outlen)
            return -1;
        int more = (s[1] >= '0' && s[1] <= '9') || (s[1] == '_' && s[2] >= '0' && s[2] <= '9');
        if (*s != '0' || !more || lead) /* leading zeros go */
            out[o++] = *s, lead = 1;
        digits++;
    }
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    if (!digits || *s)
        return -1;
    out[o] = '\0';
    return 0;
}

/* to_number: numbers as they are; a string as int(s), else float(s), else null. */
static cJSON *to_number(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return dup(v);
    if (!cJSON_IsString(v))
        return null_value();
    const char *s = v->valuestring;
    char lit[512];
    if (py_int_literal(s, lit, sizeof lit) == 0)
        return num_literal(strtod(lit, NULL), lit);
    /* float(s): strtod's syntax without hexadecimal or nan(...), underscores between digits */
    size_t n = strlen(s), o = 0;
    char *clean = malloc(n + 1);
    if (!clean)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_' && i && s[i - 1] >= '0' && s[i - 1] <= '9' && s[i + 1] >= '0' &&
            s[i + 1] <= '9')
            continue;
        clean[o++] = s[i];
    }
    clean[o] = '\0';
    char *end;
    double d = strtod(clean, &end);
    while (*end == ' ' || (*end >= '\t' && *end <= '\r'))
        end++;
    int ok = end != clean && *end == '\0' && !strpbrk(clean, "xX(_");
    free(clean);
    return ok ? num_float(d) : null_value();
}

static cJSON *call(eval_t *e, const fn_spec_t *f, cJSON **a, const node_t *const *argn,
                   size_t nargs)
{
    const char *name = f->name;
    /* Python's types: abs keeps int or float, ceil and floor give ints, avg a float, sum an
     * int only when every element is one */
    if (!strcmp(name, "abs")) {
        if (!num_is_int(a[0]))
            return num_float(fabs(a[0]->valuedouble));
        if (a[0]->valuestring)
            return num_literal(fabs(a[0]->valuedouble),
                               a[0]->valuestring + (a[0]->valuestring[0] == '-'));
        return num_int(fabs(a[0]->valuedouble));
    }
    if (!strcmp(name, "ceil") || !strcmp(name, "floor")) {
        if (num_is_int(a[0]))
            return dup(a[0]);
        double d = name[0] == 'c' ? ceil(a[0]->valuedouble) : floor(a[0]->valuedouble);
        if (!isfinite(d)) {
            eval_fail(e, "cannot convert float %s to integer", isnan(d) ? "NaN" : "infinity");
            return NULL;
        }
        return num_int(d);
    }
    if (!strcmp(name, "avg") || !strcmp(name, "sum")) {
        double s = 0;
        int n = 0, ints = 1;
        const cJSON *it;
        cJSON_ArrayForEach(it, a[0]) {
            s += it->valuedouble;
            ints &= num_is_int(it);
            n++;
        }
        if (name[0] == 'a')
            return n ? num_float(s / n) : null_value();
        return ints ? num_int(s) : num_float(s);
    }
    if (!strcmp(name, "contains")) {
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
    if (!strcmp(name, "starts_with") || !strcmp(name, "ends_with")) {
        const char *s = a[0]->valuestring, *x = a[1]->valuestring;
        size_t ls = strlen(s), lx = strlen(x);
        if (lx > ls)
            return cJSON_CreateBool(0);
        return cJSON_CreateBool(name[0] == 's' ? !strncmp(s, x, lx) : !strcmp(s + ls - lx, x));
    }
    if (!strcmp(name, "join")) {
        size_t total = 1, gl = strlen(a[0]->valuestring);
        const cJSON *it;
        cJSON_ArrayForEach(it, a[1]) total += strlen(it->valuestring) + gl;
        char *buf = malloc(total);
        if (!buf) {
            eval_fail(e, "out of memory");
            return NULL;
        }
        size_t o = 0;
        int first = 1;
        cJSON_ArrayForEach(it, a[1]) {
            if (!first) {
                memcpy(buf + o, a[0]->valuestring, gl);
                o += gl;
            }
            first = 0;
            size_t l = strlen(it->valuestring);
            memcpy(buf + o, it->valuestring, l);
            o += l;
        }
        buf[o] = '\0';
        cJSON *r = cJSON_CreateString(buf);
        free(buf);
        return r;
    }
    if (!strcmp(name, "keys") || !strcmp(name, "values")) {
        cJSON *out = cJSON_CreateArray();
        const cJSON *it;
        cJSON_ArrayForEach(it, a[0]) cJSON_AddItemToArray(out, name[0] == 'k'
                                                                    ? cJSON_CreateString(it->string)
                                                                    : dup(it));
        return out;
    }
    if (!strcmp(name, "length")) {
        if (cJSON_IsString(a[0]))
            return cJSON_CreateNumber((double)util_utf8_count(a[0]->valuestring));
        return cJSON_CreateNumber(cJSON_GetArraySize(a[0]));
    }
    if (!strcmp(name, "map")) {
        cJSON *out = cJSON_CreateArray();
        const cJSON *it;
        cJSON_ArrayForEach(it, a[1]) {
            cJSON *r = eval(e, argn[0]->kids[0], it);
            if (e->failed) {
                cJSON_Delete(r);
                break;
            }
            cJSON_AddItemToArray(out, r);
        }
        return out;
    }
    if (!strcmp(name, "max") || !strcmp(name, "min")) {
        const cJSON *best = NULL, *it;
        int want_max = name[1] == 'a';
        cJSON_ArrayForEach(it, a[0]) {
            if (!best || (want_max ? cmp_json(it, best) > 0 : cmp_json(it, best) < 0))
                best = it;
        }
        return best ? dup(best) : null_value();
    }
    if (!strcmp(name, "sort")) {
        size_t n = (size_t)cJSON_GetArraySize(a[0]), i = 0;
        cJSON **items = malloc((n ? n : 1) * sizeof *items);
        cJSON **keys = malloc((n ? n : 1) * sizeof *keys);
        cJSON *it, *out = NULL;
        if (items && keys) {
            cJSON_ArrayForEach(it, a[0]) items[i++] = it;
            memcpy(keys, items, n * sizeof *keys);
        }
        if (!items || !keys || sort_pairs(items, keys, n) != 0) {
            eval_fail(e, "out of memory");
        } else {
            out = cJSON_CreateArray();
            for (i = 0; i < n; i++)
                cJSON_AddItemToArray(out, dup(items[i]));
        }
        free(items);
        free(keys);
        return out;
    }
    if (!strcmp(name, "sort_by"))
        return fn_by(e, name, a[0], argn[1], 0);
    if (!strcmp(name, "max_by"))
        return fn_by(e, name, a[0], argn[1], 1);
    if (!strcmp(name, "min_by"))
        return fn_by(e, name, a[0], argn[1], -1);
    if (!strcmp(name, "merge")) {
        cJSON *out = cJSON_CreateObject();
        for (size_t i = 0; i < nargs; i++) {
            const cJSON *it;
            cJSON_ArrayForEach(it, a[i]) {
                /* dict.update: a key already there keeps its place */
                if (cJSON_GetObjectItemCaseSensitive(out, it->string))
                    cJSON_ReplaceItemInObjectCaseSensitive(out, it->string, dup(it));
                else
                    cJSON_AddItemToObject(out, it->string, dup(it));
            }
        }
        return out;
    }
    if (!strcmp(name, "not_null")) {
        for (size_t i = 0; i < nargs; i++)
            if (!is_null(a[i]))
                return dup(a[i]);
        return null_value();
    }
    if (!strcmp(name, "reverse")) {
        if (cJSON_IsString(a[0])) {
            /* Reverse by code point, keeping multi-byte sequences intact. */
            const char *s = a[0]->valuestring;
            size_t l = strlen(s), o = l;
            char *buf = malloc(l + 1);
            if (!buf) {
                eval_fail(e, "out of memory");
                return NULL;
            }
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
            free(buf);
            return r;
        }
        cJSON *out = cJSON_CreateArray();
        const cJSON *it;
        cJSON_ArrayForEach(it, a[0]) cJSON_InsertItemInArray(out, 0, dup(it));
        return out;
    }
    if (!strcmp(name, "to_array")) {
        if (cJSON_IsArray(a[0]))
            return dup(a[0]);
        cJSON *out = cJSON_CreateArray();
        cJSON_AddItemToArray(out, dup(a[0]));
        return out;
    }
    if (!strcmp(name, "to_number"))
        return to_number(a[0]);
    if (!strcmp(name, "to_string")) {
        if (cJSON_IsString(a[0]))
            return dup(a[0]);
        char *s = cJSON_PrintUnformatted(a[0]);
        cJSON *r = cJSON_CreateString(s ? s : "null");
        cJSON_free(s);
        return r;
    }
    if (!strcmp(name, "type"))
        return cJSON_CreateString(type_name(a[0]));
    eval_fail(e, "Unknown function: %s()", name);
    return NULL;
}

static cJSON *eval_function(eval_t *e, const node_t *n, const cJSON *v)
{
    const fn_spec_t *f = NULL;
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
        if (!strcmp(functions[i].name, n->name))
            f = &functions[i];
    if (!f) {
        eval_fail(e, "Unknown function: %s()", n->name);
        return NULL;
    }
    if ((f->nargs >= 0 && n->nkids != (size_t)f->nargs) || (f->nargs < 0 && n->nkids < 1)) {
        if (f->nargs < 0)
            eval_fail(e, "Expected at least 1 argument for function %s(), received %zu",
                      f->name, n->nkids);
        else
            eval_fail(e, "Expected %d argument%s for function %s(), received %zu", f->nargs,
                      f->nargs == 1 ? "" : "s", f->name, n->nkids);
        return NULL;
    }
    cJSON **args = calloc(n->nkids, sizeof *args);
    if (!args) {
        eval_fail(e, "out of memory");
        return NULL;
    }
    cJSON *result = NULL;
    size_t i;
    for (i = 0; i < n->nkids; i++) {
        int mask = f->types[f->nargs < 0 ? 0 : i];
        if (n->kids[i]->type == N_EXPREF) {
            if (!(mask & A_EXPREF)) {
                eval_fail(e, "In function %s(), invalid type for value: <expref>, expected one "
                          "of: [...], received: \"expref\"", f->name);
                goto out;
            }
            continue;
        }
        args[i] = eval(e, n->kids[i], v);
        if (e->failed)
            goto out;
        if (!type_matches(args[i], mask)) {
            type_error(e, f->name, args[i], mask);
            goto out;
        }
    }
    result = call(e, f, args, (const node_t *const *)n->kids, n->nkids);
out:
    for (size_t k = 0; k < n->nkids; k++)
        cJSON_Delete(args[k]);
    free(args);
    if (e->failed) {
        cJSON_Delete(result);
        return NULL;
    }
    return result;
}

static cJSON *eval(eval_t *e, const node_t *n, const cJSON *v)
{
    if (e->failed)
        return NULL;
    switch (n->type) {
    case N_FIELD:
        if (cJSON_IsObject(v))
            return dup(cJSON_GetObjectItemCaseSensitive(v, n->name));
        return null_value();
    case N_SUBEXPR:
    case N_INDEX_EXPR: {
        cJSON *r = eval(e, n->kids[0], v);
        for (size_t i = 1; i < n->nkids && r && !e->failed; i++) {
            cJSON *next = eval(e, n->kids[i], r);
            cJSON_Delete(r);
            r = next;
        }
        return r;
    }
    case N_INDEX: {
        if (!cJSON_IsArray(v))
            return null_value();
        long len = cJSON_GetArraySize(v), i = n->idx < 0 ? n->idx + len : n->idx;
        if (i < 0 || i >= len)
            return null_value();
        return dup(cJSON_GetArrayItem(v, (int)i));
    }
    case N_SLICE:
        return eval_slice(e, n, v);
    case N_PROJECTION: {
        cJSON *base = eval(e, n->kids[0], v);
        cJSON *r = cJSON_IsArray(base) ? eval_projection(e, base, n->kids[1]) : null_value();
        cJSON_Delete(base);
        return r;
    }
    case N_VALUE_PROJECTION: {
        cJSON *base = eval(e, n->kids[0], v);
        cJSON *r = cJSON_IsObject(base) ? eval_projection(e, base, n->kids[1]) : null_value();
        cJSON_Delete(base);
        return r;
    }
    case N_FLATTEN: {
        cJSON *base = eval(e, n->kids[0], v);
        if (!cJSON_IsArray(base)) {
            cJSON_Delete(base);
            return null_value();
        }
        cJSON *out = cJSON_CreateArray();
        const cJSON *it;
        cJSON_ArrayForEach(it, base) {
            if (cJSON_IsArray(it)) {
                const cJSON *sub;
                cJSON_ArrayForEach(sub, it) cJSON_AddItemToArray(out, dup(sub));
            } else {
                cJSON_AddItemToArray(out, dup(it));
            }
        }
        cJSON_Delete(base);
        return out;
    }
    case N_FILTER_PROJECTION: {
        cJSON *base = eval(e, n->kids[0], v);
        if (!cJSON_IsArray(base)) {
            cJSON_Delete(base);
            return null_value();
        }
        cJSON *out = cJSON_CreateArray();
        const cJSON *it;
        cJSON_ArrayForEach(it, base) {
            cJSON *c = eval(e, n->kids[2], it);
            int keep = truthy(c);
            cJSON_Delete(c);
            if (e->failed)
                break;
            if (!keep)
                continue;
            cJSON *r = eval(e, n->kids[1], it);
            if (is_null(r))
                cJSON_Delete(r);
            else
                cJSON_AddItemToArray(out, r);
        }
        cJSON_Delete(base);
        return out;
    }
    case N_COMPARATOR:
        return eval_compare(e, n, v);
    case N_OR:
    case N_AND: {
        cJSON *l = eval(e, n->kids[0], v);
        if (e->failed)
            return l;
        int t = truthy(l);
        if ((n->type == N_OR && t) || (n->type == N_AND && !t))
            return l;
        cJSON_Delete(l);
        return eval(e, n->kids[1], v);
    }
    case N_NOT: {
        cJSON *r = eval(e, n->kids[0], v);
        int t = truthy(r);
        cJSON_Delete(r);
        return cJSON_CreateBool(!t);
    }
    case N_PIPE: {
        cJSON *l = eval(e, n->kids[0], v);
        cJSON *r = eval(e, n->kids[1], l);
        cJSON_Delete(l);
        return r;
    }
    case N_MULTI_LIST:
    case N_MULTI_HASH: {
        if (is_null(v))
            return null_value();
        cJSON *out = n->type == N_MULTI_LIST ? cJSON_CreateArray() : cJSON_CreateObject();
        for (size_t i = 0; i < n->nkids && !e->failed; i++) {
            cJSON *r = eval(e, n->kids[i], v);
            if (!r)
                break;
            if (n->type == N_MULTI_LIST)
                cJSON_AddItemToArray(out, r);
            else
                cJSON_AddItemToObject(out, n->keys[i], r);
        }
        return out;
    }
    case N_LITERAL:
        return dup(n->literal);
    case N_CURRENT:
    case N_IDENTITY:
        return dup(v);
    case N_FUNCTION:
        return eval_function(e, n, v);
    case N_EXPREF:
        eval_fail(e, "Expression references can only be passed to functions");
        return NULL;
    }
    return null_value();
}

/* ---------------------------------------------------------------------------------------- */

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
    parser_t p = { .expr = expression_text ? expression_text : "", .err = err, .errlen = errlen };
    node_t *ast = NULL;
    int rc = -1;
    if (lex(&p) == 0) {
        ast = expression(&p, 0);
        if (ast && !p.failed && cur_type(&p) != T_EOF) {
            parse_error(&p, NULL);
        }
    } else if (!p.failed) {
        p_fail(&p, "Bad jmespath expression");
    }
    if (ast && !p.failed) {
        eval_t e = { .err = err, .errlen = errlen };
        cJSON *r = eval(&e, ast, data);
        if (!e.failed && r) {
            *result = r;
            rc = 0;
        } else {
            cJSON_Delete(r);
        }
    }
    node_free(ast);
    for (size_t i = 0; i < p.ntoks; i++) {
        free(p.toks[i].str);
        cJSON_Delete(p.toks[i].json);
    }
    free(p.toks);
    return rc;
}
