/*
 * The AWS CLI v2's output formats, reproduced from awscli/formatter.py, text.py and table.py:
 * json (json.dumps indent=4, ensure_ascii=False), text (tab-separated rows, sorted keys,
 * upper-cased identifiers), table (titled sections, sorted columns, scaled widths, borders,
 * vertical fallback on narrow terminals), yaml and yaml-stream (ruamel's safe dumper style).
 */
#ifndef EVREC_CLI_AWS_OUTPUT_H
#define EVREC_CLI_AWS_OUTPUT_H

#include <cjson/cJSON.h>

#include "pyjson.h"

typedef enum { OUT_JSON, OUT_TEXT, OUT_TABLE, OUT_YAML, OUT_YAML_STREAM } out_format_t;

typedef struct out_options {
    out_format_t format;
    const char *title;   /**< table title: the operation name ("PutEvents") */
    int color;           /**< table: 1 colorise as the AWS CLI's --color on */
    int terminal_width;  /**< table: columns available (80 when not a terminal) */
} out_options_t;

/** Append the formatted response (already filtered by --query) to b. Returns 0, or -1 with the
 *  AWS CLI's message when it cannot lay the value out (a table row of the wrong width). */
int aws_format(sbuf_t *b, const cJSON *response, const out_options_t *o, char *err,
               size_t errlen);

/** ruamel-style block YAML of v at indent 0 (used by yaml output and skeletons). */
void aws_yaml_dump(sbuf_t *b, const cJSON *v);

#endif
