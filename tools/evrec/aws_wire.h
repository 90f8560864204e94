/*
 * The rest-json protocol of the two PutEvents operations and the json protocol of Kinesis
 * PutRecords and Firehose PutRecordBatch, as botocore serialises requests and parses responses:
 * URI labels, the JSON body (payload member or body members, input order, None skipped,
 * timestamps as Unix seconds, blobs in base64), modelled response members in model order with
 * map keys in received order, and error code/message from x-amzn-ErrorType (rest-json), __type,
 * code (rest-json), message or Message.
 */
#ifndef EVREC_CLI_AWS_WIRE_H
#define EVREC_CLI_AWS_WIRE_H

#include <cjson/cJSON.h>

#include "model.h"
#include "pyjson.h"

/** Build the request path (percent-encoded labels) and JSON body for validated params. */
int wire_serialize(const model_operation_t *op, const cJSON *params, sbuf_t *path, sbuf_t *body,
                   char *err, size_t errlen);

/** The parsed result of a 2xx response (new object; {} when the operation has no output).
 *  -1 with the AWS CLI's message (exit 255) for an answer botocore's parser fails on (a JSON
 *  value that is not an object where a structure is modelled; has_request_id: the answer
 *  had an x-amzn-RequestId header, which changes the message for a null answer). */
int wire_parse_output(const model_operation_t *op, const char *body, size_t len,
                      int has_request_id, cJSON **result, sbuf_t *err);

/** Error code and message of an error response, as botocore reports them for op's protocol. */
void wire_parse_error(const model_operation_t *op, long status, const char *error_type_header,
                      const char *body, size_t len, char *code, size_t codelen, sbuf_t *message);

/** 1 for the json protocol (X-Amz-Target), 0 for rest-json. */
int wire_is_json(const model_operation_t *op);

/** Each blob string in params becomes the base64 text the request carries: with base64_in
 *  (--cli-binary-format base64, the AWS CLI v2's default) the string is base64, decoded as
 *  Python's base64.b64decode does and encoded again; otherwise (raw-in-base64-out) its UTF-8
 *  octets are encoded. -1 with the AWS CLI's message for an invalid base64 string. */
int wire_blobs_to_base64(cJSON *params, int shape, int base64_in, sbuf_t *err);

/** A skeleton value of a shape as --generate-cli-skeleton prints it: placeholders by type
 *  ("" and the first enum value for strings), or with member_names (the output skeleton)
 *  each string holds its member's name. NULL when out of memory. */
cJSON *wire_skeleton(int shape, int member_names);

/** The yaml-input skeleton of a shape, as the AWS CLI prints it (model order, comments). */
void wire_yaml_skeleton(sbuf_t *b, int shape);

#endif
