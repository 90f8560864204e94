/*
 * What the output formats share: aws_output.c (json, text and the dispatch),
 * aws_output_table.c (table) and aws_output_yaml.c (yaml, yaml-stream).
 */
#ifndef EVREC_CLI_AWS_OUTPUT_INTERNAL_H
#define EVREC_CLI_AWS_OUTPUT_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "aws_output.h"

/** 1 unless v is an object or an array. */
static inline int aws_out_is_scalar(const cJSON *v)
{
    return !cJSON_IsObject(v) && !cJSON_IsArray(v);
}

/** qsort's comparison of two `const char *`, by strcmp. */
int aws_out_cmp_str(const void *a, const void *b);

/** Sorted keys of an object, its scalar members', non-scalar members' or both (a port_calloc'ed
 *  array of borrowed strings, *n of them); NULL with *oom set when out of memory. */
const char **aws_out_sorted_keys(const cJSON *obj, int scalars, int nonscalars, size_t *n,
                                 int *oom);

/** The table format (awscli/table.py): titled sections, scaled widths, the vertical fallback
 *  on a narrow terminal. 0, or -1 with the AWS CLI's message (a row of the wrong width). */
int aws_out_table(sbuf_t *b, const cJSON *response, const out_options_t *o, char *err,
                  size_t errlen);

/** The yaml format of one value: json.dump for a scalar, else aws_yaml_dump. */
void aws_out_yaml_value(sbuf_t *b, const cJSON *v);

#endif
