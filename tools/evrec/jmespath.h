/*
 * JMESPath (https://jmespath.org/specification.html) over cJSON values, for the CLI's --query.
 *
 * The whole language: identifiers (bare and quoted), sub-expressions, index and slice,
 * list and object wildcard projections, flatten, filters with comparisons and && || !,
 * multi-select list and hash, pipes, current node @, raw string and JSON literals,
 * expression references (&expr) and the built-in functions of the specification.
 */
#ifndef EVREC_JMESPATH_H
#define EVREC_JMESPATH_H

#include <stddef.h>

#include <cjson/cJSON.h>

/**
 * Evaluate `expression` against `data` (not modified). On success returns 0 and *result is a
 * new cJSON value owned by the caller (free with cJSON_Delete; a JSON null when nothing
 * matched). On failure returns -1, *result is NULL and err holds the message in the AWS CLI's
 * words ("Bad jmespath expression: ..." for a syntax error, "In function length(), invalid
 * type for value: ..." for a type error).
 */
int jp_search(const char *expression, const cJSON *data, cJSON **result, char *err,
              size_t errlen);

#endif /* EVREC_JMESPATH_H */
