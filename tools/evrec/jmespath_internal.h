/*
 * JMESPath's parts, for each other only (the rest of the CLI uses jmespath.h):
 *
 *   jmespath.c        jp_search: lex, parse, evaluate, free; error reporting and allocation
 *   jmespath_lex.c    the expression's text -> tokens
 *   jmespath_parse.c  tokens -> tree, a Pratt parser with the specification's binding powers
 *   jmespath_eval.c   the tree walked over a cJSON value
 *   jmespath_fn.c     the built-in functions: a table of name, arity, argument types and
 *                     implementation, and the call of one (arity and types checked first)
 *
 * Every evaluation step returns a new cJSON value owned by the caller, which keeps ownership
 * rules trivial at the cost of copies (fine for CLI-sized documents). The parts allocate with
 * port_malloc and cJSON's allocator, so evrec_set_allocator() reaches them; a failed
 * allocation fails the search with "out of memory", never a crash or a partial result.
 */
#ifndef EVREC_CLI_JMESPATH_INTERNAL_H
#define EVREC_CLI_JMESPATH_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#if defined(__GNUC__)
#define JP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define JP_PRINTF(a, b)
#endif

/* Where a step reports its error: the first failure's message stays. */
typedef struct jp_status {
    char *err;
    size_t errlen;
    int failed;
} jp_status_t;

void jp_fail(jp_status_t *st, const char *fmt, ...) JP_PRINTF(2, 3);
/** v, or NULL with "out of memory" in st when v is NULL (an allocation failed). */
cJSON *jp_checked(jp_status_t *st, cJSON *v);
/** A copy of s[0..n) in cJSON's allocator (for a string a cJSON item owns); NULL if out of
 *  memory. */
char *jp_cjson_strndup(const char *s, size_t n);

/* -- tokens (jmespath_lex.c) ----------------------------------------------------------------- */

typedef enum tok_type {
    T_EOF, T_UNQUOTED, T_QUOTED, T_LITERAL, T_NUMBER, T_DOT, T_STAR, T_FLATTEN, T_FILTER,
    T_LBRACKET, T_RBRACKET, T_LBRACE, T_RBRACE, T_LPAREN, T_RPAREN, T_COMMA, T_COLON, T_PIPE,
    T_OR, T_AND, T_NOT, T_EXPREF, T_CURRENT, T_EQ, T_NE, T_LT, T_LTE, T_GT, T_GTE, T_COUNT
} tok_type_t;

typedef struct token {
    tok_type_t type;
    size_t pos;
    char *str;     /* identifier name (decoded; port_malloc) */
    cJSON *json;   /* literal value */
    long num;
} token_t;

/* The lexer's output and the parser's position in it. */
typedef struct parser {
    const char *expr;
    token_t *toks;
    size_t ntoks, cap, at;
    int depth;     /* nesting of expressions: bounded so hostile input cannot exhaust the stack */
    jp_status_t st;
} parser_t;

/** Tokenise p->expr into p->toks (ending with T_EOF). 0, or -1 with the error in p->st. */
int jp_lex(parser_t *p);
void jp_tokens_free(parser_t *p);

/* -- the tree (jmespath_parse.c) --------------------------------------------------------- */

typedef enum node_type {
    N_FIELD, N_SUBEXPR, N_INDEX_EXPR, N_INDEX, N_SLICE, N_PROJECTION, N_VALUE_PROJECTION,
    N_FLATTEN, N_FILTER_PROJECTION, N_COMPARATOR, N_OR, N_AND, N_NOT, N_PIPE, N_MULTI_LIST,
    N_MULTI_HASH, N_LITERAL, N_CURRENT, N_IDENTITY, N_FUNCTION, N_EXPREF
} node_type_t;

typedef struct node {
    node_type_t type;
    char *name;              /* field name, function name */
    cJSON *literal;
    tok_type_t op;           /* comparator */
    long idx;                /* index */
    int has[3];              /* slice parts present */
    long part[3];
    struct node **kids;
    char **keys;             /* multi-select hash keys, parallel to kids */
    size_t nkids;
} node_t;

/** The whole expression's tree (every token used), or NULL with the error in p->st. */
node_t *jp_parse(parser_t *p);
void jp_node_free(node_t *n);

/* -- evaluation (jmespath_eval.c) -------------------------------------------------------- */

/** The value of n over v (new; NULL once st has failed). */
cJSON *jp_eval(jp_status_t *st, const node_t *n, const cJSON *v);
/** A copy of v (a JSON null for NULL), or NULL with "out of memory" in st. */
cJSON *jp_dup(jp_status_t *st, const cJSON *v);
cJSON *jp_null(jp_status_t *st);
int jp_is_null(const cJSON *v);
/** JMESPath's type name of v ("null", "boolean", "number", "string", "array", "object"). */
const char *jp_type_name(const cJSON *v);
/** Order of two numbers or two strings (strings by code point: UTF-8 byte order). */
int jp_compare(const cJSON *a, const cJSON *b);
/** Append item to array; -1 (item freed, "out of memory" in st) when item is NULL. */
int jp_append(jp_status_t *st, cJSON *array, cJSON *item);

/* -- functions (jmespath_fn.c) ----------------------------------------------------------- */

/** Evaluate a N_FUNCTION node over v: the function looked up by name, its arity and argument
 *  types checked as the reference implementation does, then called. */
cJSON *jp_call_function(jp_status_t *st, const node_t *n, const cJSON *v);

#endif /* EVREC_CLI_JMESPATH_INTERNAL_H */
