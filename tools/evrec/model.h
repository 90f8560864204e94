/*
 * The service model of the operations of the CLI's AWS commands, as C tables generated from
 * botocore's service-2.json files by tools/gen_model.py (model_gen.c). Only the shapes reachable from each
 * operation's input, output and errors are included. Shapes refer to each other by index.
 */
#ifndef EVREC_CLI_MODEL_H
#define EVREC_CLI_MODEL_H

#include <stddef.h>

typedef enum model_type {
    MT_STRUCTURE, MT_LIST, MT_MAP, MT_STRING, MT_INTEGER, MT_LONG, MT_DOUBLE, MT_FLOAT,
    MT_BOOLEAN, MT_TIMESTAMP, MT_BLOB
} model_type_t;

typedef struct model_member {
    const char *name;          /**< member name as in the model ("ApplicationId") */
    const char *cli_name;      /**< the AWS CLI's option name without "--" ("application-id") */
    int shape;                 /**< index into model_shapes */
    int required;
    const char *location;      /**< "uri", "header", "querystring" or NULL (body) */
    const char *location_name; /**< wire name for uri/header/querystring members */
    int jsonvalue;
    int payload;               /**< 1: this member is the whole body */
    const char *yaml_comment;  /**< its comment in a yaml-input skeleton, or NULL */
} model_member_t;

typedef struct model_shape {
    const char *name;
    model_type_t type;
    const model_member_t *members; /**< structure members in model order */
    size_t nmembers;
    int member;                /**< list element shape, else -1 */
    int key, value;            /**< map key and value shapes, else -1 */
    int has_min;
    double min;                /**< length for strings/lists/maps, value for numbers */
    int has_max;
    double max;
    const char *const *enums;
    size_t nenums;
    const char *timestamp_format; /**< NULL: the protocol's default */
    int is_error;
} model_shape_t;

typedef struct model_operation {
    const char *service_cli;   /**< "pinpoint", "personalize-events", "kinesis", "firehose" */
    const char *op_cli;        /**< "put-events", "put-records", "put-record-batch" */
    const char *op_name;       /**< "PutEvents", "PutRecords", "PutRecordBatch" */
    const char *method;
    const char *request_uri;   /**< "/v1/apps/{application-id}/events" */
    const char *endpoint_prefix;
    const char *signing_name;
    const char *api_version;
    const char *protocol;      /**< "rest-json" (Pinpoint, Personalize), "json" (Kinesis, Firehose) */
    const char *target_prefix; /**< json: X-Amz-Target is "<prefix>.<op_name>"; else NULL */
    const char *json_version;  /**< json: Content-Type application/x-amz-json-<version> */
    int response_code;
    int input, output;         /**< shape indices (output -1: none) */
    const int *errors;
    size_t nerrors;
    const char *source;        /**< the model file the tables came from */
} model_operation_t;

extern const model_shape_t model_shapes[];
extern const size_t model_nshapes;
extern const model_operation_t model_operations[];
extern const size_t model_noperations;

#endif
