/*
 * The flusher: takes batches from the queue, encodes, signs and uploads them, and applies the
 * service's verdicts (DESIGN §4). Runs on its own thread, or step by step from flusher_poll()
 * for firmware without threads. Never holds a write transaction while it waits on the network.
 */
#ifndef EVREC_FLUSHER_H
#define EVREC_FLUSHER_H

#include <stddef.h>
#include <stdint.h>

#include "backoff.h"
#include "credentials.h"
#include "evrec.h"
#include "log.h"
#include "queue.h"
#include "transport.h"

typedef struct flusher flusher_t;

typedef struct flusher_config {
    evrec_service_t service;      /* its backend (service.h) does everything service-specific */
    const char *application_id;   /* Pinpoint */
    const char *tracking_id;      /* Personalize */
    const char *stream_name;      /* Kinesis (or stream_arn) */
    const char *stream_arn;
    const char *delivery_stream_name; /* Firehose */
    evrec_partition_key_t partition_key;
    size_t max_record_bytes;      /* 0: the service's limit */
    const char *region;           /* resolved */
    const char *endpoint_url;     /* resolved: override or https://<service host>.<region>... */
    creds_config_t creds;
    transport_config_t transport;
    uint32_t max_batch_events;
    size_t max_request_bytes;
    backoff_config_t backoff;
    uint32_t flush_interval_ms;
    uint32_t flush_threshold_events;
    uint64_t max_event_age_ms;
    evrec_delivery_fn on_delivery;
    void *delivery_user;
    log_sink_t log;
    int manual;                   /* 1: no thread; the caller drives flusher_poll() */
    const struct seal_keys *keys; /* encryption at rest: opens sealed records (the agent's) */
    uint64_t daily_upload_bytes;  /* metered links: body bytes per UTC day (0: no limit) */
    int (*upload_allowed)(void *user); /* metered links: asked before each request */
    void *upload_allowed_user;
    /* Tests: randomness for backoff (NULL: port_random) and a clock for every decision the
     * flusher times (NULL: the system's; it must outlive the flusher). */
    uint32_t (*rand_fn)(void *user);
    void *rand_user;
    const struct port_clock *clock;
} flusher_config_t;

/** Tell `fn` of each event evicted by q's own writes since the last call (DROPPED, reason
 *  "evicted"); a warning names those that were only counted. The flusher does it on its
 *  thread (at least once a tick) or in flusher_poll; an agent without the flusher role calls
 *  it from its ticker thread or evrec_poll. */
void flusher_deliver_evicted(evrec_queue_t *q, evrec_delivery_fn fn, void *user,
                             const log_sink_t *log);

/** Start a flusher over q (which must outlive it). Takes the store's flusher role first:
 *  EVREC_E_BUSY if another process holds it (the caller then records only). The strings of
 *  *cfg are borrowed, not copied: they must outlive the flusher (the agent's are its deep copy
 *  of the options, freed after flusher_stop; the credential chain borrows them too). */
int flusher_new(flusher_t **out, evrec_queue_t *q, const flusher_config_t *cfg, char *err,
                size_t errlen);

/** Tell the flusher that events were recorded (wakes it at the threshold). Cheap, never blocks
 *  on the network. */
void flusher_notify(flusher_t *f);

/** Upload now and wait until the queue is empty or timeout_ms passed (EVREC_E_TIMEOUT).
 *  In manual mode the work runs on the calling thread. */
int flusher_flush(flusher_t *f, uint32_t timeout_ms);

/** Manual mode: one bounded step (at most one request); *next_ms: when to call again. */
int flusher_poll(flusher_t *f, uint32_t *next_ms);

/** Manual mode, never waiting on the network past budget_ms: a due request is started, the
 *  one in flight advanced (libcurl's multi interface) and its verdicts carried out when it
 *  ended. flusher_poll, flusher_flush and flusher_stop finish a request left in flight. */
int flusher_poll_budget(flusher_t *f, uint32_t budget_ms, uint32_t *next_ms);

/** What an event loop waits on for the request in flight (*n = 0 when none): see
 *  evrec_poll_fds. */
int flusher_poll_fds(flusher_t *f, evrec_pollfd_t *fds, size_t max, size_t *n,
                     uint32_t *timeout_ms);

/** Drain for up to timeout_ms, stop the thread, release the flusher role and free f.
 *  EVREC_E_TIMEOUT if events were left queued. */
int flusher_stop(flusher_t *f, uint32_t timeout_ms);

/** Fill the delivery fields of *st (requests, retries, delivered via queue counters is the
 *  caller's, last_upload_ms, backoff_until_ms, last_error, last_error_message). */
void flusher_stats(flusher_t *f, evrec_stats_t *st);

/** The same delivery fields as last persisted in the store's QUEUE_META_STATUS by whichever
 *  process runs (or last ran) the flusher: for an agent without the flusher role and for
 *  `evrec stats`, with its pid, since when it ran and when it wrote them (whether it still
 *  runs is queue_flusher_alive's to say). backoff_until_ms is 0 once it has passed.
 *  EVREC_E_NOT_FOUND if no flusher ever wrote a status; *st is left untouched on any error. */
int flusher_stats_from_store(evrec_queue_t *q, evrec_stats_t *st);

#endif /* EVREC_FLUSHER_H */
