/*
 * JSON the way the AWS CLI's Python reads and writes it.
 *
 * Parsing keeps each number's literal (in the cJSON item's valuestring) so integers stay
 * integers and floats stay floats, accepts NaN/Infinity, keeps the first position of a
 * duplicated key with the last value, and reports errors with Python's json messages
 * ("Expecting value: line 1 column 2 (char 1)"). Printing reproduces json.dumps(indent=4,
 * ensure_ascii=False) and Python's str()/repr() of the same values.
 */
#ifndef EVREC_CLI_PYJSON_H
#define EVREC_CLI_PYJSON_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* The CLI's growable string is the library's (agent/util_buf.h), under its short names. */
#include "util_buf.h"
typedef util_buf_t sbuf_t;
#define sb_putn util_buf_putn
#define sb_puts util_buf_puts
#define sb_putc util_buf_putc
#define sb_printf util_buf_printf
#define sb_str util_buf_str
#define sb_free util_buf_free

/** Parse text (len bytes) into *out. On failure returns -1 with Python's message in err. */
int pyjson_parse(const char *text, size_t len, cJSON **out, char *err, size_t errlen);

/** A number item that Python would hold as int (literal without '.', 'e', NaN, Infinity). */
int pyjson_is_int(const cJSON *item);
/** New number items carrying their Python type. */
cJSON *pyjson_int(long long v);
cJSON *pyjson_float(double v);
cJSON *pyjson_number_literal(const char *literal);

/** json.dumps(v, indent=indent, ensure_ascii=False); indent < 0: one line with ", " ": ". */
void pyjson_dump(sbuf_t *b, const cJSON *v, int indent);
/** json.dumps(v) (ensure_ascii=True, one line): how botocore writes request bodies. */
void pyjson_dump_ascii(sbuf_t *b, const cJSON *v);
/** Python's repr() of a number item ("1", "1.5", "1e+16", "nan", "inf"). */
void pyjson_number_repr(sbuf_t *b, const cJSON *num);
/** Python's str(v): strings raw, True/False/None, numbers as repr, containers as repr. */
void pyjson_str(sbuf_t *b, const cJSON *v);
/** Python's repr(v). */
void pyjson_repr(sbuf_t *b, const cJSON *v);
/** Python's type name of v as printed by str(type(v)): "<class 'dict'>". */
const char *pyjson_type_name(const cJSON *v);

/** Deep copy keeping number literals. */
cJSON *pyjson_dup(const cJSON *v);
/** Python ==: numbers by value, objects regardless of key order. */
int pyjson_equal(const cJSON *a, const cJSON *b);

#endif
