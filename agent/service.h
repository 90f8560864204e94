/*
 * Backends: one per service, each a small table of limits and functions (service_ops_t) in
 * its own file (service_pinpoint.c, service_personalize.c, service_kinesis.c,
 * service_firehose.c). The batcher, the flusher and the store name no service: they take a
 * backend's batch rules, path, headers, encoder and answer decoder from here. A fifth service
 * is one new file and one line in service.c's table.
 */
#ifndef EVREC_SERVICE_H
#define EVREC_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "evrec.h"
#include "wire.h"

/** What a backend needs from the agent's configuration to build its requests. */
typedef struct service_ctx {
    const char *application_id;       /* Pinpoint; stream records' application.app_id */
    const char *tracking_id;          /* Personalize */
    const char *stream_name;          /* Kinesis (or stream_arn) */
    const char *stream_arn;
    const char *delivery_stream_name; /* Firehose */
    evrec_partition_key_t partition_key;
    size_t max_record_bytes;          /* 0 or above the service's: the service's */
    wire_profile_fn profile;          /* endpoint profiles; NULL: none */
    void *profile_user;
    int64_t now_ms;                   /* stream records' arrival_timestamp; 0: the wall clock */
} service_ctx_t;

typedef struct service_ops {
    batch_rules_t rules;        /* first member: a batch's rules lead back to its backend */
    evrec_service_t id;
    const char *name;           /* as the CLI and config files spell it: "pinpoint", ... */
    const char *title;          /* for messages: "Pinpoint", "Kinesis Data Streams", ... */
    const char *signing_name;   /* SigV4 service name */
    const char *host_prefix;    /* https://<host_prefix>.<region>.amazonaws.com */
    const char *endpoint_env;   /* AWS_ENDPOINT_URL_<SERVICE> */
    const char *target;         /* X-Amz-Target (AWS JSON protocols), or NULL */
    const char *content_type;
    size_t max_record_bytes;    /* one record's limit; 0: only the event's own */
    uint8_t preferred_shape;    /* RECORD_SHAPE_* events are recorded in, absent other fields */
    /* The configuration the backend needs: EVREC_E_CONFIG with a message naming the option. */
    int (*check)(const service_ctx_t *c, char *err, size_t errlen);
    /* The operation's HTTP path (port_malloc'ed). */
    int (*path)(const service_ctx_t *c, char **out);
    /* The request body for b (its fragments set). EVREC_E_EVENT_SIZE if one record, or the
     * request, is over the service's limits as actually encoded: the caller splits it. */
    int (*encode)(const service_ctx_t *c, const batch_t *b, char **body, size_t *len);
    /* A 2xx answer into per-event verdicts; returns the wire_outcome_t or a negative code. */
    wire_decode_2xx_fn decode_2xx;
    /* Optional: when counting members of the raw 2xx answer shows every event accepted, the
     * status each accepted event gets (then no JSON tree is built); 0 to decode it fully. */
    int (*all_accepted)(const batch_t *b, long http_status, const char *body, size_t len);
} service_ops_t;

extern const service_ops_t service_pinpoint;
extern const service_ops_t service_personalize;
extern const service_ops_t service_kinesis;
extern const service_ops_t service_firehose;

/** The backend of a service, or NULL if there is none. */
const service_ops_t *service_get(evrec_service_t id);
/** The backend named so ("pinpoint", "personalize-events", "kinesis", "firehose"), or NULL. */
const service_ops_t *service_by_name(const char *name);
/** The batch rules of a service's backend (NULL if none): for batch_limits_t.rules. */
const batch_rules_t *service_rules(evrec_service_t id);
/** The backend whose rules a batch was taken with. */
const service_ops_t *service_of(const batch_t *b);
/** Whether the backend carries records of this shape. */
int service_carries(const service_ops_t *s, unsigned shape);
/** The titles of the backends that carry this shape, "A or B", into buf. */
void service_titles_for_shape(unsigned shape, char *buf, size_t len);

/** Judge the answer to a request for batch b with its backend's decoder (wire_decode_with). */
int service_decode(const batch_t *b, long http_status, const char *error_type_header,
                   const char *body, size_t len, wire_result_t *out);

#endif /* EVREC_SERVICE_H */
