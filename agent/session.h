/*
 * Sessions (evrec_session_* in evrec.h): a pure state machine, its persistence in the store's
 * meta database, and the `_session.*` events it emits.
 *
 * State lives in meta QUEUE_META_SESSION (JSON, rewritten on every start/stop/pause/resume) so
 * that the next start after a crash stops the orphaned session at its last known time. The last
 * known time of an open session is kept fresh cheaply in a second key, SESSION_META_SEEN: an
 * event recorded in the session rewrites it at most every SESSION_SEEN_INTERVAL_MS, and a clean
 * evrec_close() writes it too. So an orphaned session is stopped no earlier than
 * SESSION_SEEN_INTERVAL_MS before the last event recorded in it (and exactly at its pause time
 * if it was paused). The seen key holds the session id with the time, so a process that still
 * has an old session in memory can never move a newer session's time.
 *
 * Sessions are meant to be driven by one process per store; other processes sharing the store
 * tag their events with the session that was open when they opened it.
 */
#ifndef EVREC_SESSION_H
#define EVREC_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "evrec.h"
#include "log.h"
#include "queue.h"

#define SESSION_META_SEEN "session_seen"   /* JSON {"id": ..., "ms": ...} */
#define SESSION_SEEN_INTERVAL_MS 5000      /* bound on how stale the last known time may be */
#define SESSION_ID_LEN 37                  /* a UUID v4 and its NUL */

#define SESSION_START "_session.start"
#define SESSION_STOP "_session.stop"
#define SESSION_PAUSE "_session.pause"
#define SESSION_RESUME "_session.resume"

typedef struct session_state {
    int open;
    int paused;
    char id[SESSION_ID_LEN];
    int64_t start_ms;        /* Unix ms */
    int64_t pause_ms;        /* when paused: when */
    int64_t paused_total_ms; /* paused time of earlier pauses (excluded from Duration) */
    int64_t last_ms;         /* last known time the session was alive */
    int restored;            /* loaded from the store and not touched since: the process that
                                ran it is gone, so a stop uses the last known time, not now */
} session_state_t;

/** One `_session.*` event to record: its type, timestamp and Session object. */
typedef struct session_emit {
    const char *event_type;
    int64_t at_ms;          /* the event's timestamp */
    char id[SESSION_ID_LEN];
    int64_t start_ms;
    int64_t stop_ms;        /* > 0 only for SESSION_STOP */
    int64_t duration_ms;    /* >= 0 only for SESSION_STOP: active time, pauses excluded */
} session_emit_t;

/* -- the pure state machine (no clock, no store: tested on its own) ------------------------ */
/* Each transition reads *s and writes the state after it to *next and the event to emit to
 * *e; the caller records *e and only then adopts *next, so a failed record changes nothing.
 * EVREC_E_STATE when the transition does not apply (with *next and *e untouched). */

/** Start a session with `id` at `now`. EVREC_E_STATE if one is open. */
int session_begin(const session_state_t *s, const char *id, int64_t now, session_state_t *next,
                  session_emit_t *e);
/** Stop the open session at session_stop_time(). EVREC_E_STATE if none is open. */
int session_end(const session_state_t *s, int64_t now, session_state_t *next, session_emit_t *e);
/** Pause the open session. EVREC_E_STATE if none is open or it is paused already. */
int session_suspend(const session_state_t *s, int64_t now, session_state_t *next,
                    session_emit_t *e);
/** Resume a paused session (its pause counts as excluded time). EVREC_E_STATE if not paused. */
int session_continue(const session_state_t *s, int64_t now, session_state_t *next,
                     session_emit_t *e);
/** 1 if the session is paused and has been for longer than timeout_ms at `now`. */
int session_expired(const session_state_t *s, int64_t now, uint32_t timeout_ms);
/** When stopping at `now` ends the session: its pause time if paused, its last known time if
 *  restored from the store, else now (never before its start). */
int64_t session_stop_time(const session_state_t *s, int64_t now);
/** The session was alive at `now` (events recorded in it): refresh last_ms, clear restored. */
void session_touch(session_state_t *s, int64_t now);

/** The persisted form: a small JSON object. */
int session_encode(const session_state_t *s, char *out, size_t outlen);
/** Parse the persisted form. EVREC_E_JSON if it is not one (the caller then starts clean). */
int session_decode(const char *json, size_t len, session_state_t *out);

/* -- the store-backed session of an agent -------------------------------------------------- */

typedef struct session session_t;

/** Load the store's session state (restored = 1 if one is open). A damaged state is logged
 *  and ignored. */
int session_new(session_t **out, evrec_queue_t *q, uint32_t timeout_ms, const log_sink_t *log);
/** The clock of the session's transitions (the agent's; must outlive s). NULL: the system's. */
void session_set_clock(session_t *s, const struct port_clock *clock);
/** Write the last known time of an open session (a clean close) and free. NULL is fine. */
void session_free(session_t *s, int64_t now);

/**
 * For evrec_record(): if a session is open, copy its id (SESSION_ID_LEN bytes) and start time
 * out, refresh its last known time (persisted at most every SESSION_SEEN_INTERVAL_MS) and
 * return 1; else return 0.
 */
int session_current(session_t *s, int64_t now, char *id_out, int64_t *start_ms);

/** A copy of the current state (for tests and the CLI). */
void session_snapshot(session_t *s, session_state_t *out);

#endif /* EVREC_SESSION_H */
