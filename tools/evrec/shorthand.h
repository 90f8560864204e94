/*
 * The AWS CLI's shorthand syntax (`Key=Value,Key2=[a,b],Key3={K=V}`), parsed exactly as
 * awscli/shorthand.py does: the syntactic parse (strings, lists, hashes, quoting, escaped
 * commas, backtracking of comma-separated lists), then the model-driven back-compat pass that
 * wraps scalars given for lists and converts integers, doubles and booleans.
 */
#ifndef EVREC_CLI_SHORTHAND_H
#define EVREC_CLI_SHORTHAND_H

#include <stddef.h>
#include <cjson/cJSON.h>

/** Parse one shorthand value into an object of strings, lists and objects. On a syntax error
 *  returns -1 with the AWS CLI's message ("Expected: '=', received: 'EOF' for input:\n..."). */
int shorthand_parse(const char *text, cJSON **out, char *err, size_t errlen);

/** Apply the model (shape index) to a parsed value in place. Returns 0, or -1 when a number
 *  does not convert, with Python's message in err ("invalid literal for int() ..."). */
int shorthand_apply_model(cJSON **value, int shape, char *err, size_t errlen);

#endif
