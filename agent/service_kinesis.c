/*
 * The Amazon Kinesis Data Streams backend: PutRecords (AWS JSON 1.1, POST /,
 * X-Amz-Target: Kinesis_20131202.PutRecords). Carries both record shapes, converted to JSON
 * records (service_stream.c). At most 500 records and 5 MiB a request, 1 MiB a record counting
 * its partition key.
 */
#include <stdio.h>

#include "record.h"
#include "service_stream.h"

static const stream_format_t kinesis = {
    .name_key = "StreamName",
    .answers_key = "Records",
    .id_key = "SequenceNumber",
    .failed_key = "FailedRecordCount",
    .partition_key = 1,
    .newline = 0,
    .max_record_bytes = 1024u * 1024,
    .max_request_bytes = 5u * 1024 * 1024,
};

static size_t added_bytes(const batch_t *b, size_t n, int new_endpoint)
{
    (void)new_endpoint;
    return stream_added_bytes(&kinesis, b, n);
}

static int has(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int check(const service_ctx_t *c, char *err, size_t errlen)
{
    if (has(c->stream_name) == has(c->stream_arn)) {
        snprintf(err, errlen, "%s", has(c->stream_name)
                                        ? "stream_name and stream_arn: set one of them, not both"
                                        : "stream_name (or stream_arn): required for Kinesis");
        return EVREC_E_CONFIG;
    }
    return EVREC_OK;
}

static int encode(const service_ctx_t *c, const batch_t *b, char **body, size_t *len)
{
    if (has(c->stream_name))
        return stream_encode(&kinesis, c, "StreamName", c->stream_name, b, body, len);
    return stream_encode(&kinesis, c, "StreamARN", c->stream_arn, b, body, len);
}

static int decode_2xx(const batch_t *b, long http_status, const cJSON *json, wire_result_t *r)
{
    return stream_decode_2xx(&kinesis, b, http_status, json, r);
}

static int all_accepted(const batch_t *b, long http_status, const char *body, size_t len)
{
    return stream_all_accepted(&kinesis, b, http_status, body, len);
}

const service_ops_t service_kinesis = {
    .rules = { .max_events = STREAM_MAX_RECORDS, .max_bytes = 5u * 1024 * 1024,
               .shapes = (1u << RECORD_SHAPE_PINPOINT) | (1u << RECORD_SHAPE_PERSONALIZE),
               .grouping = BATCH_GROUP_ANY, .profiles = 1, .added_bytes = added_bytes },
    .id = EVREC_SERVICE_KINESIS,
    .name = "kinesis",
    .title = "Kinesis",
    .signing_name = "kinesis",
    .host_prefix = "kinesis",
    .endpoint_env = "AWS_ENDPOINT_URL_KINESIS",
    .target = "Kinesis_20131202.PutRecords",
    .content_type = "application/x-amz-json-1.1",
    .max_record_bytes = 1024u * 1024,
    .preferred_shape = RECORD_SHAPE_PINPOINT,
    .check = check,
    .path = stream_path,
    .encode = encode,
    .decode_2xx = decode_2xx,
    .all_accepted = all_accepted,
};
