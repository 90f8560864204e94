/*
 * The Amazon Data Firehose backend: PutRecordBatch (AWS JSON 1.1, POST /,
 * X-Amz-Target: Firehose_20150804.PutRecordBatch). Carries both record shapes, converted to
 * JSON records ending with '\n' (service_stream.c), so the objects Firehose writes to S3 hold
 * one event a line. At most 500 records and 4 MiB a request, 1,000 KiB a record.
 */
#include <stdio.h>

#include "record.h"
#include "service_stream.h"

static const stream_format_t firehose = {
    .name_key = "DeliveryStreamName",
    .answers_key = "RequestResponses",
    .id_key = "RecordId",
    .failed_key = "FailedPutCount",
    .partition_key = 0,
    .newline = 1,
    .max_record_bytes = 1000u * 1024,
    .max_request_bytes = 4u * 1024 * 1024,
};

static size_t added_bytes(const batch_t *b, size_t n, int new_endpoint)
{
    (void)new_endpoint;
    return stream_added_bytes(&firehose, b, n);
}

static int check(const service_ctx_t *c, char *err, size_t errlen)
{
    if (c->delivery_stream_name == NULL || c->delivery_stream_name[0] == '\0') {
        snprintf(err, errlen, "delivery_stream_name: required for Firehose");
        return EVREC_E_CONFIG;
    }
    return EVREC_OK;
}

static int encode(const service_ctx_t *c, const batch_t *b, char **body, size_t *len)
{
    return stream_encode(&firehose, c, "DeliveryStreamName", c->delivery_stream_name, b, body,
                         len);
}

static int decode_2xx(const batch_t *b, long http_status, const cJSON *json, wire_result_t *r)
{
    return stream_decode_2xx(&firehose, b, http_status, json, r);
}

static int all_accepted(const batch_t *b, long http_status, const char *body, size_t len)
{
    return stream_all_accepted(&firehose, b, http_status, body, len);
}

const service_ops_t service_firehose = {
    .rules = { .max_events = STREAM_MAX_RECORDS, .max_bytes = 4u * 1024 * 1024,
               .shapes = (1u << RECORD_SHAPE_PINPOINT) | (1u << RECORD_SHAPE_PERSONALIZE),
               .grouping = BATCH_GROUP_ANY, .profiles = 1, .added_bytes = added_bytes },
    .id = EVREC_SERVICE_FIREHOSE,
    .name = "firehose",
    .title = "Firehose",
    .signing_name = "firehose",
    .host_prefix = "firehose",
    .endpoint_env = "AWS_ENDPOINT_URL_FIREHOSE",
    .target = "Firehose_20150804.PutRecordBatch",
    .content_type = "application/x-amz-json-1.1",
    .max_record_bytes = 1000u * 1024,
    .preferred_shape = RECORD_SHAPE_PINPOINT,
    .check = check,
    .path = stream_path,
    .encode = encode,
    .decode_2xx = decode_2xx,
    .all_accepted = all_accepted,
};
