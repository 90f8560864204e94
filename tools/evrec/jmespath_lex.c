/*
 * JMESPath's lexer: the expression's text as tokens, as the reference implementation's lexer
 * reads it (identifiers, numbers, operators, quoted identifiers, raw strings, JSON literals).
 */
#include "jmespath_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "port.h"

static void lex_error(parser_t *p, size_t pos, const char *what)
{
    jp_fail(&p->st, "Bad jmespath expression: %s at column %zu, for expression:\n\"%s\"", what,
            pos, p->expr);
}

/* A new token at the end of the list, or NULL (out of memory). */
static token_t *push(parser_t *p, tok_type_t type, size_t pos)
{
    if (p->ntoks == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        token_t *n = port_realloc(p->toks, ncap * sizeof *n);
        if (!n) {
            jp_fail(&p->st, "out of memory");
            return NULL;
        }
        p->toks = n;
        p->cap = ncap;
    }
    token_t *t = &p->toks[p->ntoks++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->pos = pos;
    return t;
}

void jp_tokens_free(parser_t *p)
{
    for (size_t i = 0; i < p->ntoks; i++) {
        port_free(p->toks[i].str);
        cJSON_Delete(p->toks[i].json);
    }
    port_free(p->toks);
    p->toks = NULL;
    p->ntoks = p->cap = 0;
}

/* The text up to the closing quote, as the reference lexer's _consume_until: a backslash
 * takes the next character with it (so it never closes the text), then `\<quote>` becomes
 * the quote and everything else is kept verbatim ('\\' is two backslashes). Returns the
 * index after the closing quote (*out NULL if out of memory), or 0 if unterminated. */
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
    char *buf = port_malloc(i - start + 1);
    *out = buf;
    if (!buf)
        return i + 1;
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
    return i + 1;
}

/* Numbers keep Python's int/float distinction as the CLI's JSON reader marks it (pyjson.h): a
 * number item's valuestring holds its literal, a float's has '.', 'e', 'E', "Infinity" or
 * "NaN" in it, an int's is its exact digits. cJSON keeps no number text, so each number of a
 * parsed literal gets its text from the source, in document order. */
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
        v->valuestring = jp_cjson_strndup(c, n);
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

static int is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int lex_identifier(parser_t *p, size_t *i)
{
    const char *s = p->expr;
    size_t st = *i;
    while (is_ident_start(s[*i]) || is_digit(s[*i]))
        (*i)++;
    token_t *t = push(p, T_UNQUOTED, st);
    if (!t)
        return -1;
    if (!(t->str = port_strndup(s + st, *i - st))) {
        jp_fail(&p->st, "out of memory");
        return -1;
    }
    return 0;
}

static int lex_number(parser_t *p, size_t *i)
{
    char *end;
    size_t pos = *i;
    long v = strtol(p->expr + pos, &end, 10);
    *i = (size_t)(end - p->expr);
    token_t *t = push(p, T_NUMBER, pos);
    if (!t)
        return -1;
    t->num = v;
    return 0;
}

/* The one-character tokens; T_COUNT for any other character. */
static tok_type_t single_token(char c)
{
    switch (c) {
    case '.': return T_DOT;
    case '*': return T_STAR;
    case ']': return T_RBRACKET;
    case ',': return T_COMMA;
    case ':': return T_COLON;
    case '@': return T_CURRENT;
    case '(': return T_LPAREN;
    case ')': return T_RPAREN;
    case '{': return T_LBRACE;
    case '}': return T_RBRACE;
    default: return T_COUNT;
    }
}

/* '[', "[]" and "[?"; '|', "||", '&' and "&&"; comparisons and '!'. Returns the token's type
 * and its length in *len, or T_COUNT (a lone '=' or not an operator). */
static tok_type_t operator_token(const char *s, size_t *len)
{
    char c = s[0];
    int dbl = s[1] == c, eq = s[1] == '=';
    *len = 1;
    if (c == '[') {
        *len = s[1] == ']' || s[1] == '?' ? 2 : 1;
        return s[1] == ']' ? T_FLATTEN : s[1] == '?' ? T_FILTER : T_LBRACKET;
    }
    if (c == '|' || c == '&') {
        *len = dbl ? 2 : 1;
        return c == '|' ? (dbl ? T_OR : T_PIPE) : (dbl ? T_AND : T_EXPREF);
    }
    *len = eq ? 2 : 1;
    switch (c) {
    case '<': return eq ? T_LTE : T_LT;
    case '>': return eq ? T_GTE : T_GT;
    case '!': return eq ? T_NE : T_NOT;
    case '=': return eq ? T_EQ : T_COUNT;
    default: return T_COUNT;
    }
}

/* 'raw string': a string literal, taken as it is. */
static int lex_raw_string(parser_t *p, size_t pos, const char *text)
{
    token_t *t = push(p, T_LITERAL, pos);
    return t && jp_checked(&p->st, t->json = cJSON_CreateString(text)) ? 0 : -1;
}

/* cJSON_Parse answers NULL both for bad JSON and for an allocation failure; a second parse
 * that succeeds tells the second apart (then "out of memory" is in p->st). */
static cJSON *parse_json(parser_t *p, const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j && (j = cJSON_Parse(text)) != NULL) {
        cJSON_Delete(j);
        j = NULL;
        jp_fail(&p->st, "out of memory");
    }
    return j;
}

/* "quoted identifier": a JSON string, decoded with cJSON. */
static int lex_quoted_identifier(parser_t *p, size_t pos, size_t next)
{
    char *raw = port_strndup(p->expr + pos, next - pos);
    if (!raw) {
        jp_fail(&p->st, "out of memory");
        return -1;
    }
    cJSON *j = parse_json(p, raw);
    port_free(raw);
    if (!cJSON_IsString(j)) {
        cJSON_Delete(j);
        lex_error(p, pos, "Invalid quoted identifier");
        return -1;
    }
    token_t *t = push(p, T_QUOTED, pos);
    if (t && !(t->str = port_strdup(j->valuestring)))
        jp_fail(&p->st, "out of memory");
    cJSON_Delete(j);
    return p->st.failed ? -1 : 0;
}

/* `JSON literal`, numbers keeping their text; the legacy form `foo` is the string "foo". */
static int lex_json_literal(parser_t *p, size_t pos, const char *text)
{
    cJSON *j = parse_json(p, text);
    const char *cursor = text;
    if (p->st.failed)
        return -1;
    if (j && attach_literals(j, &cursor) != 0) {
        cJSON_Delete(j);
        jp_fail(&p->st, "out of memory");
        return -1;
    }
    if (!j) {
        size_t tl = strlen(text);
        char *quoted = port_malloc(tl + 3);
        if (!quoted) {
            jp_fail(&p->st, "out of memory");
            return -1;
        }
        snprintf(quoted, tl + 3, "\"%s\"", text);
        j = parse_json(p, quoted);
        port_free(quoted);
    }
    if (!j && !p->st.failed)
        lex_error(p, pos, "Bad token literal");
    if (!j)
        return -1;
    token_t *t = push(p, T_LITERAL, pos);
    if (!t) {
        cJSON_Delete(j);
        return -1;
    }
    t->json = j;
    return 0;
}

/* A token between quotes: ' " or `. */
static int lex_delimited(parser_t *p, size_t *i)
{
    size_t pos = *i;
    char c = p->expr[pos];
    char *text = NULL;
    size_t next = scan_quoted(p->expr, pos, c, &text);
    if (!next) {
        lex_error(p, pos, "Unclosed delimiter");
        return -1;
    }
    if (!text) {
        jp_fail(&p->st, "out of memory");
        return -1;
    }
    *i = next;
    int rc = c == '\'' ? lex_raw_string(p, pos, text)
             : c == '"' ? lex_quoted_identifier(p, pos, next)
                        : lex_json_literal(p, pos, text);
    port_free(text);
    return rc;
}

/* One token from p->expr at *i (blanks skipped before it). */
static int lex_one(parser_t *p, size_t *i)
{
    const char *s = p->expr;
    char c = s[*i];
    size_t pos = *i, len;
    if (is_ident_start(c))
        return lex_identifier(p, i);
    if (is_digit(c) || (c == '-' && is_digit(s[*i + 1])))
        return lex_number(p, i);
    if (c == '\'' || c == '"' || c == '`')
        return lex_delimited(p, i);
    tok_type_t t = single_token(c);
    len = 1;
    if (t == T_COUNT)
        t = operator_token(s + pos, &len);
    if (t == T_COUNT) {
        char what[48];
        snprintf(what, sizeof what, "Unknown token '%c'", c);
        lex_error(p, pos, what);
        return -1;
    }
    *i += len;
    return push(p, t, pos) ? 0 : -1;
}

int jp_lex(parser_t *p)
{
    const char *s = p->expr;
    size_t i = 0;
    while (s[i]) {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
            i++;
        else if (lex_one(p, &i) != 0)
            return -1;
    }
    return push(p, T_EOF, i) ? 0 : -1;
}
