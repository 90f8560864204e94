/*
 * Input validation against the service model, as botocore's ParamValidator reports it
 * (required members, unknown members, Python types, minimum lengths and values), plus the
 * model's maximum lengths and enumerations, which the service would otherwise refuse.
 */
#ifndef EVREC_CLI_VALIDATE_H
#define EVREC_CLI_VALIDATE_H

#include <cjson/cJSON.h>

#include "pyjson.h"

/** Validate params against shape; appends one line per problem to report (no trailing
 *  newline) and returns the number of problems. */
int validate_params(const cJSON *params, int shape, sbuf_t *report);

/** The same with botocore's checks only, as its Stubber validates a stubbed response. */
int validate_botocore(const cJSON *params, int shape, sbuf_t *report);

/** Parse a timestamp as botocore's parse_to_aware_datetime accepts it (epoch number or numeric
 *  string, ISO 8601 date or date-time with optional fraction and offset). Returns 0 and the
 *  Unix time in seconds (with fraction), or -1. */
int timestamp_parse(const cJSON *value, double *epoch);


#endif
