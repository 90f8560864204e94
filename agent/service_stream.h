/*
 * What the Kinesis Data Streams and Data Firehose backends share (service_stream.c): both
 * take up to 500 records of base64 data in an AWS JSON 1.1 body and answer per record in
 * request order. Each record's data is one JSON object: a Pinpoint-shaped event in the shape
 * Pinpoint's own event streams wrote to Kinesis and Firehose (event_type, event_timestamp,
 * arrival_timestamp, event_version, application, client, device, session, attributes,
 * metrics) plus event_id and the endpoint profile; a Personalize-shaped event as its own JSON
 * with userId and sessionId.
 */
#ifndef EVREC_SERVICE_STREAM_H
#define EVREC_SERVICE_STREAM_H

#include <stddef.h>

#include "service.h"

#define STREAM_MAX_RECORDS 500u

typedef struct stream_format {
    const char *name_key;    /* "StreamName" / "DeliveryStreamName" */
    const char *answers_key; /* "Records" / "RequestResponses" */
    const char *id_key;      /* "SequenceNumber" / "RecordId" */
    const char *failed_key;  /* "FailedRecordCount" / "FailedPutCount" */
    int partition_key;       /* records carry a PartitionKey, counted in the record's size */
    int newline;             /* each record's data ends with '\n' (Firehose: one per line in S3) */
    size_t max_record_bytes; /* the service's limit for one record */
    size_t max_request_bytes;/* the service's limit for a request's records */
} stream_format_t;

/** The operation's path: "/" (AWS JSON protocols route by X-Amz-Target). */
int stream_path(const service_ctx_t *c, char **out);

/** The body for b: {name_key|"StreamARN": ..., "Records": [{"Data", "PartitionKey"?}]}.
 *  EVREC_E_EVENT_SIZE if a record or the whole is over the limits as encoded. */
int stream_encode(const stream_format_t *fmt, const service_ctx_t *c, const char *name_key,
                  const char *name, const batch_t *b, char **body, size_t *len);

/** The per-record answer: a record with id_key is delivered, one with ErrorCode is kept for a
 *  retry (it is throttling or an internal failure: nothing about the record is wrong). */
int stream_decode_2xx(const stream_format_t *fmt, const batch_t *b, long http_status,
                      const cJSON *json, wire_result_t *r);

/** All accepted, confirmed by a count over the raw answer (failed_key 0, no ErrorCode, an
 *  id_key for every record): the status each record gets (http_status), else 0. */
int stream_all_accepted(const stream_format_t *fmt, const batch_t *b, long http_status,
                        const char *body, size_t len);

/** An upper bound of what b->events[n] adds to the request as the limits count it (its data,
 *  and its partition key for Kinesis). */
size_t stream_added_bytes(const stream_format_t *fmt, const batch_t *b, size_t n);

/** An endpoint's profile: its stored text, and parsed (NULL if none or not JSON). `app_tail`
 *  and `record_tail`, when set (stream_profile_prepare), are what the profile adds to every
 *  record of that endpoint, as text: the members it appends to `application`, and those it
 *  appends to the record (device, endpoint), each with its leading comma ("" for none). */
typedef struct stream_profile {
    char *text;
    cJSON *parsed;
    char *app_tail;
    char *record_tail;
} stream_profile_t;

/** Build p's tails from p->parsed, once per endpoint and request. */
int stream_profile_prepare(stream_profile_t *p);

/** The record data as the cJSON tree conversion writes it, whatever the fragment's layout:
 *  stream_record_data's fallback, and the reference its fast path is tested against. */
int stream_record_data_tree(const stream_format_t *fmt, const service_ctx_t *c,
                            const batch_event_t *ev, const stream_profile_t *profile, char **out,
                            size_t *len);

/** One event's record data (port_malloc'ed, NUL-terminated; '\n' at the end if fmt->newline).
 *  `profile` is the endpoint's profile (NULL for none). */
int stream_record_data(const stream_format_t *fmt, const service_ctx_t *c,
                       const batch_event_t *ev, const stream_profile_t *profile, char **out,
                       size_t *len);

#endif /* EVREC_SERVICE_STREAM_H */
