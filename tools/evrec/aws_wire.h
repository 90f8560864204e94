/*
 * The rest-json protocol of the two PutEvents operations, as botocore serialises requests and
 * parses responses: URI labels, the JSON body (payload member or body members, input order,
 * None skipped, timestamps as Unix seconds), modelled response members in model order with
 * map keys in received order, and error code/message from x-amzn-ErrorType, __type, code,
 * message or Message.
 */
#ifndef EVREC_CLI_AWS_WIRE_H
#define EVREC_CLI_AWS_WIRE_H

#include <cjson/cJSON.h>

#include "model.h"
#include "pyjson.h"

/** Build the request path (percent-encoded labels) and JSON body for validated params. */
int wire_serialize(const model_operation_t *op, const cJSON *params, sbuf_t *path, sbuf_t *body,
                   char *err, size_t errlen);

/** The parsed result of a 2xx response (new object; {} when the operation has no output). */
cJSON *wire_parse_output(const model_operation_t *op, const char *body, size_t len);

/** Error code and message of an error response, as botocore reports them. */
void wire_parse_error(long status, const char *error_type_header, const char *body, size_t len,
                      char *code, size_t codelen, sbuf_t *message);

/** A skeleton value of a shape as --generate-cli-skeleton prints it: placeholders by type
 *  ("" and the first enum value for strings), or with member_names (the output skeleton)
 *  each string holds its member's name. */
cJSON *wire_skeleton(int shape, int member_names);

/** The yaml-input skeleton of a shape, as the AWS CLI prints it (model order, comments). */
void wire_yaml_skeleton(sbuf_t *b, int shape);

#endif
