/*
 * The agent (struct evrec) as the modules behind the public API see it. Only evrec.c,
 * ticker.c, session.c and maintenance.c use its insides; everything else gets the queue or a
 * config struct.
 */
#ifndef EVREC_AGENT_H
#define EVREC_AGENT_H

#include <stdatomic.h>
#include <stdint.h>

#include "event.h"
#include "evrec.h"
#include "flusher.h"
#include "log.h"
#include "port.h"
#include "queue.h"
#include "session.h"

#define AGENT_ERROR_LEN 512
/* Records up to this size are encoded on the caller's stack by evrec_record(). */
#define AGENT_RECORD_STACK 2048
/* How long a cached Personalize user id (the endpoint's User.UserId) is trusted before it is
 * read again: other processes may change the profile. */
#define AGENT_USER_ID_TTL_MS 1000

typedef struct agent_error_buf agent_error_buf_t;

struct evrec {
    evrec_options_t opts;     /* a deep copy: every string is owned by the agent */
    char *store_dir;
    evrec_queue_t *queue;
    struct seal_keys *keys;   /* encryption at rest: NULL if the store is not encrypted */
    log_sink_t log;

    /* delivery: at most one of these is set */
    flusher_t *flusher;
    int flusher_elsewhere;    /* another process holds the store's flusher role */
    flusher_config_t fcfg;    /* kept to take the role later if that process goes away */
    char region[64];
    char *endpoint_url;

    char endpoint_id[EVREC_ID_MAX];
    session_t *session;

    port_mutex_t *mu;         /* guards errors, the user id cache and the ticker */
    port_tls_t *err_key;      /* this thread's agent_error_buf_t */
    agent_error_buf_t *errors;/* every thread's buffer, freed at close */

    /* Periodic queue work (batched commits, fsync) when no caller is recording. */
    port_thread_t *ticker;
    port_cond_t *tick_cond;
    int stopping;
    _Atomic uint64_t tick_due_ms; /* monotonic ms when queue_tick wants to run again */
    _Atomic uint64_t wake_gen;    /* bumped by the queue's wake hook (queue_set_wake_hook) */

    /* The clock of the agent's records and sessions (the callers' threads' work): zero is the
     * system's; tests move it with agent_set_clock() instead of sleeping. The store's
     * intervals and the flusher take theirs in their own configuration. */
    port_clock_t clock;

    char user_id[EVREC_ID_MAX];   /* Personalize: cached User.UserId of the default endpoint */
    uint64_t user_id_read_ms;     /* monotonic ms of the read; 0: not cached */
};

/** Remember a message for evrec_last_error() in this thread and return `code`. */
int agent_error(const evrec_t *a, int code, const char *fmt, ...) LOG_PRINTF(3, 4);

/**
 * Encode `ev` with `ctx` (whose session fields the caller set; the service, time, endpoint,
 * user id and truncation are filled here) and append it to the queue; wakes the flusher.
 */
int agent_record_with(evrec_t *a, evrec_event_t *ev, event_context_t *ctx);

/** The agent's store (for tools that read it directly, e.g. `evrec queue dump`). */
evrec_queue_t *agent_queue(const evrec_t *a);
/** Tests: stamp records and run sessions on `c` (copied) instead of the system's clock; NULL
 *  restores the system's. Call it from the thread that records, before recording. */
void agent_set_clock(evrec_t *a, const port_clock_t *c);

/** The agent's encryption keys (seal.h), NULL if its store is not encrypted. */
const struct seal_keys *agent_keys(const evrec_t *a);

/* ticker.c: the periodic queue work. */
/** Run the queue's timed work now; returns how long until it is due again (QUEUE_TICK_IDLE:
 *  not until this process writes). */
uint32_t agent_run_tick(evrec_t *a);
/** The queue's wake hook (queue_set_wake_hook; user: the agent). */
void agent_queue_woke(void *user);
/** Without a ticker thread: the periodic work, if it is due (the recording thread's check). */
void agent_tick_if_due(evrec_t *a);
/** Without the flusher role: tell on_delivery of the events this agent's records evicted. */
void agent_deliver_evicted_here(evrec_t *a);
/** The ticker thread (port_thread_start; arg: the agent). */
void agent_ticker_main(void *arg);

#endif /* EVREC_AGENT_H */
