/*
 * JMESPath's parser: tokens to a tree, top-down operator precedence (Pratt) with the
 * specification's binding powers, as in the reference implementation, whose error messages
 * it keeps ("Bad jmespath expression: Unexpected token: ...").
 */
#include "jmespath_internal.h"

#include <string.h>

#include "port.h"

#define JP_MAX_DEPTH 256

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

/* -- nodes ---------------------------------------------------------------------------------- */

void jp_node_free(node_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++) {
        jp_node_free(n->kids[i]);
        if (n->keys)
            port_free(n->keys[i]);
    }
    port_free(n->kids);
    port_free(n->keys);
    port_free(n->name);
    cJSON_Delete(n->literal);
    port_free(n);
}

static node_t *node_new(parser_t *p, node_type_t type)
{
    node_t *n = port_calloc(1, sizeof *n);
    if (!n)
        jp_fail(&p->st, "out of memory");
    else
        n->type = type;
    return n;
}

/* Adds kid to n; on any failure (either NULL, out of memory) kid is freed and -1 returned
 * (n stays the caller's). */
static int node_add(parser_t *p, node_t *n, node_t *kid)
{
    if (!n || !kid) {
        jp_node_free(kid);
        return -1;
    }
    node_t **k = port_realloc(n->kids, (n->nkids + 1) * sizeof *k);
    if (!k) {
        jp_fail(&p->st, "out of memory");
        jp_node_free(kid);
        return -1;
    }
    n->kids = k;
    n->kids[n->nkids++] = kid;
    return 0;
}

/* A node of the given kids (each freed if the node cannot be made). */
static node_t *node2(parser_t *p, node_type_t type, node_t *a, node_t *b)
{
    node_t *n = node_new(p, type);
    if (!n || !a || !b || p->st.failed) {
        jp_node_free(n);
        jp_node_free(a);
        jp_node_free(b);
        return NULL;
    }
    if (node_add(p, n, a) != 0) {
        jp_node_free(b);
        jp_node_free(n);
        return NULL;
    }
    if (node_add(p, n, b) != 0) {
        jp_node_free(n);
        return NULL;
    }
    return n;
}

static node_t *node3(parser_t *p, node_type_t type, node_t *a, node_t *b, node_t *c)
{
    node_t *n = node2(p, type, a, b);
    if (!n) {
        jp_node_free(c);
        return NULL;
    }
    if (node_add(p, n, c) != 0) {
        jp_node_free(n);
        return NULL;
    }
    return n;
}

/* A field node named after the token. */
static node_t *field_node(parser_t *p, const token_t *t)
{
    node_t *n = node_new(p, N_FIELD);
    if (n && !(n->name = port_strdup(t->str))) {
        jp_fail(&p->st, "out of memory");
        jp_node_free(n);
        return NULL;
    }
    return n;
}

/* -- tokens --------------------------------------------------------------------------------- */

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
        jp_fail(&p->st, "Bad jmespath expression: Unexpected end of expression%s%s, for "
                "expression:\n\"%s\"", expecting ? ", expecting: " : "",
                expecting ? expecting : "", p->expr);
    else
        jp_fail(&p->st, "Bad jmespath expression: Unexpected token: %s at column %zu%s%s, for "
                "expression:\n\"%s\"", tok_names[t->type], t->pos,
                expecting ? ", expecting: " : "", expecting ? expecting : "", p->expr);
}

/* The error of a token that cannot start (nud) or continue (led) an expression: the one just
 * consumed. */
static void previous_token_error(parser_t *p)
{
    p->at--;
    parse_error(p, NULL);
    p->at++;
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

/* -- pieces --------------------------------------------------------------------------------- */

static node_t *multi_select_list(parser_t *p)
{
    node_t *n = node_new(p, N_MULTI_LIST);
    for (;;) {
        if (node_add(p, n, expression(p, 0)) || p->st.failed)
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
    jp_node_free(n);
    return NULL;
}

/* One "key: expression" of a multi-select hash, added to n. */
static int hash_entry(parser_t *p, node_t *n)
{
    token_t *k = cur(p);
    if (k->type != T_QUOTED && k->type != T_UNQUOTED) {
        parse_error(p, "quoted_identifier or unquoted_identifier");
        return -1;
    }
    char *key = port_strdup(k->str);
    advance(p);
    if (!key)
        jp_fail(&p->st, "out of memory");
    if (!key || match(p, T_COLON)) {
        port_free(key);
        return -1;
    }
    char **keys = port_realloc(n->keys, (n->nkids + 1) * sizeof *keys);
    if (!keys) {
        jp_fail(&p->st, "out of memory");
        port_free(key);
        return -1;
    }
    n->keys = keys;
    n->keys[n->nkids] = key;
    if (node_add(p, n, expression(p, 0)) != 0) {
        port_free(key);
        return -1;
    }
    return 0;
}

static node_t *multi_select_hash(parser_t *p)
{
    node_t *n = node_new(p, N_MULTI_HASH);
    if (!n)
        return NULL;
    for (;;) {
        if (hash_entry(p, n) != 0)
            goto bad;
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
    jp_node_free(n);
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
    jp_node_free(n);
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
        jp_node_free(n);
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

/* left[?cond] followed by what is projected over the kept elements. */
static node_t *filter_projection(parser_t *p, node_t *left)
{
    node_t *cond = expression(p, 0);
    if (!cond || match(p, T_RBRACKET)) {
        jp_node_free(cond);
        jp_node_free(left);
        return NULL;
    }
    node_t *right = cur_type(p) == T_FLATTEN ? node_new(p, N_IDENTITY)
                                             : projection_rhs(p, binding_power[T_FILTER]);
    return node3(p, N_FILTER_PROJECTION, left, right, cond);
}

/* left[] followed by what is projected over the flattened elements. */
static node_t *flatten_projection(parser_t *p, node_t *left)
{
    node_t *flat = node_new(p, N_FLATTEN);
    if (node_add(p, flat, left)) {
        jp_node_free(flat);
        return NULL;
    }
    return node2(p, N_PROJECTION, flat, projection_rhs(p, binding_power[T_FLATTEN]));
}

/* A node with one kid: the expression that follows at binding power bp. */
static node_t *prefix_node(parser_t *p, node_type_t type, int bp)
{
    node_t *n = node_new(p, type);
    if (node_add(p, n, expression(p, bp))) {
        jp_node_free(n);
        return NULL;
    }
    return n;
}

/* -- nud: a token that starts an expression ------------------------------------------------- */

static node_t *nud_literal(parser_t *p, const token_t *t)
{
    node_t *n = node_new(p, N_LITERAL);
    if (n && !(n->literal = cJSON_Duplicate(t->json, 1))) {
        jp_fail(&p->st, "out of memory");
        jp_node_free(n);
        return NULL;
    }
    return n;
}

static node_t *nud_paren(parser_t *p)
{
    node_t *n = expression(p, 0);
    if (n && match(p, T_RPAREN)) {
        jp_node_free(n);
        return NULL;
    }
    return n;
}

/* '[': an index or slice, [*] or a multi-select list. */
static node_t *nud_lbracket(parser_t *p)
{
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

static node_t *nud(parser_t *p, token_t *t)
{
    switch (t->type) {
    case T_LITERAL:
        return nud_literal(p, t);
    case T_UNQUOTED:
        return field_node(p, t);
    case T_QUOTED:
        if (cur_type(p) == T_LPAREN) {
            jp_fail(&p->st, "Bad jmespath expression: Quoted identifier not allowed for "
                    "function names, for expression:\n\"%s\"", p->expr);
            return NULL;
        }
        return field_node(p, t);
    case T_STAR:
        return node2(p, N_VALUE_PROJECTION, node_new(p, N_IDENTITY),
                     cur_type(p) == T_RBRACKET ? node_new(p, N_IDENTITY)
                                               : projection_rhs(p, binding_power[T_STAR]));
    case T_FILTER:
        return filter_projection(p, node_new(p, N_IDENTITY));
    case T_LBRACKET:
        return nud_lbracket(p);
    case T_FLATTEN:
        return flatten_projection(p, node_new(p, N_IDENTITY));
    case T_LBRACE:
        return multi_select_hash(p);
    case T_LPAREN:
        return nud_paren(p);
    case T_NOT:
        return prefix_node(p, N_NOT, binding_power[T_NOT]);
    case T_CURRENT:
        return node_new(p, N_CURRENT);
    case T_EXPREF:
        return prefix_node(p, N_EXPREF, 0);
    default:
        previous_token_error(p);
        return NULL;
    }
}

/* -- led: a token that continues the expression on its left --------------------------------- */

static node_t *led_dot(parser_t *p, node_t *left)
{
    if (cur_type(p) == T_STAR) {
        advance(p);
        return node2(p, N_VALUE_PROJECTION, left, projection_rhs(p, binding_power[T_DOT]));
    }
    node_t *right = dot_rhs(p, binding_power[T_DOT]);
    if (left->type == N_SUBEXPR && right) {
        if (node_add(p, left, right) != 0 || p->st.failed) {
            jp_node_free(left);
            return NULL;
        }
        return left;
    }
    return node2(p, N_SUBEXPR, left, right);
}

/* name(args...): the arguments up to ')'. */
static node_t *led_function(parser_t *p, node_t *left)
{
    if (left->type != N_FIELD) {
        jp_fail(&p->st, "Bad jmespath expression: Invalid function name, for expression:\n"
                "\"%s\"", p->expr);
        jp_node_free(left);
        return NULL;
    }
    node_t *fn = node_new(p, N_FUNCTION);
    if (fn) {
        fn->name = left->name;
        left->name = NULL;
    }
    jp_node_free(left);
    while (fn && cur_type(p) != T_RPAREN) {
        if (node_add(p, fn, expression(p, 0)) || p->st.failed)
            break;
        if (cur_type(p) == T_COMMA) {
            advance(p);
            if (cur_type(p) == T_RPAREN)
                parse_error(p, "an expression");
        } else if (cur_type(p) != T_RPAREN) {
            parse_error(p, "comma or rparen");
        }
        if (p->st.failed)
            break;
    }
    if (!fn || p->st.failed) {
        jp_node_free(fn);
        return NULL;
    }
    advance(p);
    return fn;
}

/* left[...]: an index or slice (chained onto an index expression), or [*]. */
static node_t *led_lbracket(parser_t *p, node_t *left)
{
    if (cur_type(p) == T_NUMBER || cur_type(p) == T_COLON) {
        node_t *right = index_expression(p);
        if (!right) {
            jp_node_free(left);
            return NULL;
        }
        if (left->type == N_INDEX_EXPR) {
            if (node_add(p, left, right) != 0) {
                jp_node_free(left);
                return NULL;
            }
            return left;
        }
        return project_if_slice(p, left, right);
    }
    if (match(p, T_STAR) || match(p, T_RBRACKET)) {
        jp_node_free(left);
        return NULL;
    }
    return node2(p, N_PROJECTION, left, projection_rhs(p, binding_power[T_STAR]));
}

static node_t *led(parser_t *p, token_t *t, node_t *left)
{
    switch (t->type) {
    case T_DOT:
        return led_dot(p, left);
    case T_PIPE:
        return node2(p, N_PIPE, left, expression(p, binding_power[T_PIPE]));
    case T_OR:
        return node2(p, N_OR, left, expression(p, binding_power[T_OR]));
    case T_AND:
        return node2(p, N_AND, left, expression(p, binding_power[T_AND]));
    case T_LPAREN:
        return led_function(p, left);
    case T_FILTER:
        return filter_projection(p, left);
    case T_EQ: case T_NE: case T_LT: case T_LTE: case T_GT: case T_GTE: {
        node_t *c = node2(p, N_COMPARATOR, left, expression(p, binding_power[t->type]));
        if (c)
            c->op = t->type;
        return c;
    }
    case T_FLATTEN:
        return flatten_projection(p, left);
    case T_LBRACKET:
        return led_lbracket(p, left);
    default:
        previous_token_error(p);
        jp_node_free(left);
        return NULL;
    }
}

/* -- expressions ---------------------------------------------------------------------------- */

static node_t *expression_at_depth(parser_t *p, int bp)
{
    token_t *t = cur(p);
    if (t->type == T_EOF) {
        parse_error(p, "an expression");
        return NULL;
    }
    advance(p);
    node_t *left = nud(p, t);
    while (left && !p->st.failed && bp < binding_power[cur_type(p)]) {
        token_t *op = cur(p);
        advance(p);
        left = led(p, op, left);
    }
    if (p->st.failed) {
        jp_node_free(left);
        return NULL;
    }
    return left;
}

static node_t *expression(parser_t *p, int bp)
{
    if (p->st.failed)
        return NULL;
    if (p->depth >= JP_MAX_DEPTH) {
        jp_fail(&p->st, "Bad jmespath expression: nested more than %d levels deep",
                JP_MAX_DEPTH);
        return NULL;
    }
    p->depth++;
    node_t *n = expression_at_depth(p, bp);
    p->depth--;
    return n;
}

node_t *jp_parse(parser_t *p)
{
    node_t *ast = expression(p, 0);
    if (ast && !p->st.failed && cur_type(p) != T_EOF)
        parse_error(p, NULL);
    if (p->st.failed) {
        jp_node_free(ast);
        return NULL;
    }
    return ast;
}
