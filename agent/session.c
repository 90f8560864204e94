/* Sessions: the state machine, its persistence, and evrec_session_* (session.h). */
#include "session.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "agent.h"
#include "event.h"
#include "port.h"

/* -- the pure state machine ---------------------------------------------------------------- */

static void emit_for(const session_state_t *s, const char *type, int64_t at, session_emit_t *e)
{
    memset(e, 0, sizeof *e);
    e->event_type = type;
    e->at_ms = at;
    memcpy(e->id, s->id, sizeof e->id);
    e->start_ms = s->start_ms;
    e->duration_ms = -1;
}

int session_begin(const session_state_t *s, const char *id, int64_t now, session_state_t *next,
                  session_emit_t *e)
{
    if (s->open)
        return EVREC_E_STATE;
    if (id == NULL || strlen(id) >= SESSION_ID_LEN)
        return EVREC_E_ID;
    memset(next, 0, sizeof *next);
    next->open = 1;
    snprintf(next->id, sizeof next->id, "%s", id);
    next->start_ms = now;
    next->last_ms = now;
    emit_for(next, SESSION_START, now, e);
    return EVREC_OK;
}

int64_t session_stop_time(const session_state_t *s, int64_t now)
{
    int64_t t = now;
    if (s->paused)
        t = s->pause_ms;
    else if (s->restored)
        t = s->last_ms;
    return t < s->start_ms ? s->start_ms : t;
}

int session_end(const session_state_t *s, int64_t now, session_state_t *next, session_emit_t *e)
{
    if (!s->open)
        return EVREC_E_STATE;
    int64_t stop = session_stop_time(s, now);
    int64_t duration = stop - s->start_ms - s->paused_total_ms;
    emit_for(s, SESSION_STOP, stop, e);
    e->stop_ms = stop;
    e->duration_ms = duration < 0 ? 0 : duration;
    memset(next, 0, sizeof *next);
    return EVREC_OK;
}

int session_suspend(const session_state_t *s, int64_t now, session_state_t *next,
                    session_emit_t *e)
{
    if (!s->open || s->paused)
        return EVREC_E_STATE;
    *next = *s;
    next->paused = 1;
    next->restored = 0;
    next->pause_ms = now < s->start_ms ? s->start_ms : now;
    next->last_ms = next->pause_ms;
    emit_for(next, SESSION_PAUSE, next->pause_ms, e);
    return EVREC_OK;
}

int session_continue(const session_state_t *s, int64_t now, session_state_t *next,
                     session_emit_t *e)
{
    if (!s->open || !s->paused)
        return EVREC_E_STATE;
    *next = *s;
    next->paused = 0;
    next->restored = 0;
    if (now > s->pause_ms)
        next->paused_total_ms += now - s->pause_ms;
    next->pause_ms = 0;
    next->last_ms = now;
    emit_for(next, SESSION_RESUME, now, e);
    return EVREC_OK;
}

int session_expired(const session_state_t *s, int64_t now, uint32_t timeout_ms)
{
    return s->open && s->paused && now - s->pause_ms > (int64_t)timeout_ms;
}

void session_touch(session_state_t *s, int64_t now)
{
    if (!s->open)
        return;
    if (now > s->last_ms)
        s->last_ms = now;
    s->restored = 0;
}

int session_encode(const session_state_t *s, char *out, size_t outlen)
{
    int n = snprintf(out, outlen,
                     "{\"v\":1,\"open\":%d,\"id\":\"%s\",\"start\":%lld,\"paused\":%d,"
                     "\"pause\":%lld,\"paused_total\":%lld,\"last\":%lld}",
                     s->open ? 1 : 0, s->open ? s->id : "", (long long)s->start_ms,
                     s->paused ? 1 : 0, (long long)s->pause_ms, (long long)s->paused_total_ms,
                     (long long)s->last_ms);
    return (n < 0 || (size_t)n >= outlen) ? EVREC_E_INVALID : EVREC_OK;
}

static int json_ms(const cJSON *o, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9.0e15)
        return EVREC_E_JSON;
    *out = (int64_t)v->valuedouble;
    return EVREC_OK;
}

int session_decode(const char *json, size_t len, session_state_t *out)
{
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_ParseWithLength(json, len);
    int rc = EVREC_E_JSON;
    if (!cJSON_IsObject(o))
        goto done;
    const cJSON *open = cJSON_GetObjectItemCaseSensitive(o, "open");
    const cJSON *paused = cJSON_GetObjectItemCaseSensitive(o, "paused");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (!cJSON_IsNumber(open) || !cJSON_IsNumber(paused) || !cJSON_IsString(id) ||
        strlen(id->valuestring) >= SESSION_ID_LEN)
        goto done;
    if (json_ms(o, "start", &out->start_ms) || json_ms(o, "pause", &out->pause_ms) ||
        json_ms(o, "paused_total", &out->paused_total_ms) || json_ms(o, "last", &out->last_ms))
        goto done;
    out->open = open->valueint != 0;
    out->paused = out->open && paused->valueint != 0;
    if (out->open && id->valuestring[0] == '\0')
        goto done;
    snprintf(out->id, sizeof out->id, "%s", id->valuestring);
    rc = EVREC_OK;
done:
    cJSON_Delete(o);
    if (rc != EVREC_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

/* -- the store-backed session -------------------------------------------------------------- */

struct session {
    evrec_queue_t *q;
    uint32_t timeout_ms;
    log_sink_t log;
    port_mutex_t *mu;        /* serialises transitions and guards st */
    session_state_t st;
    uint64_t seen_written_ms;/* monotonic ms of the last SESSION_META_SEEN write */
    const port_clock_t *clock; /* NULL: the system's */
};

void session_set_clock(session_t *s, const port_clock_t *clock)
{
    if (s)
        s->clock = clock;
}

static void persist_state(session_t *s)
{
    char buf[256];
    if (session_encode(&s->st, buf, sizeof buf) == EVREC_OK &&
        queue_meta_put(s->q, QUEUE_META_SESSION, buf, strlen(buf)) != EVREC_OK)
        log_msg(&s->log, EVREC_LOG_WARN, "session: could not persist the session state");
}

static void persist_seen(evrec_queue_t *q, const char *id, int64_t ms)
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, "{\"id\":\"%s\",\"ms\":%lld}", id, (long long)ms);
    if (n > 0 && (size_t)n < sizeof buf)
        (void)queue_meta_put(q, SESSION_META_SEEN, buf, (size_t)n);
}

/* The seen key's time, if it is about session `id`. */
static int64_t load_seen(evrec_queue_t *q, const char *id)
{
    char *v = NULL;
    size_t len = 0;
    int64_t ms = 0;
    if (queue_meta_get(q, SESSION_META_SEEN, &v, &len) != EVREC_OK)
        return 0;
    cJSON *o = cJSON_ParseWithLength(v, len);
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (cJSON_IsString(sid) && strcmp(sid->valuestring, id) == 0)
        (void)json_ms(o, "ms", &ms);
    cJSON_Delete(o);
    port_free(v);
    return ms;
}

int session_new(session_t **out, evrec_queue_t *q, uint32_t timeout_ms, const log_sink_t *log)
{
    session_t *s = port_calloc(1, sizeof *s);
    if (s == NULL)
        return EVREC_E_NOMEM;
    if (port_mutex_new(&s->mu) != 0) {
        port_free(s);
        return EVREC_E_NOMEM;
    }
    s->q = q;
    s->timeout_ms = timeout_ms;
    if (log)
        s->log = *log;
    char *v = NULL;
    size_t len = 0;
    if (queue_meta_get(q, QUEUE_META_SESSION, &v, &len) == EVREC_OK) {
        if (session_decode(v, len, &s->st) != EVREC_OK)
            log_msg(&s->log, EVREC_LOG_WARN, "session: stored session state is damaged; "
                                              "starting without a session");
        port_free(v);
    }
    if (s->st.open) {
        int64_t seen = load_seen(q, s->st.id);
        if (seen > s->st.last_ms)
            s->st.last_ms = seen;
        s->st.restored = 1;
    }
    *out = s;
    return EVREC_OK;
}

void session_free(session_t *s, int64_t now)
{
    if (s == NULL)
        return;
    /* Only a session this process used has a newer time to tell. */
    if (s->st.open && !s->st.paused && !s->st.restored)
        persist_seen(s->q, s->st.id, now > s->st.last_ms ? now : s->st.last_ms);
    port_mutex_free(s->mu);
    port_free(s);
}

int session_current(session_t *s, int64_t now, char *id_out, int64_t *start_ms)
{
    port_mutex_lock(s->mu);
    if (!s->st.open) {
        port_mutex_unlock(s->mu);
        return 0;
    }
    session_touch(&s->st, now);
    memcpy(id_out, s->st.id, SESSION_ID_LEN);
    *start_ms = s->st.start_ms;
    uint64_t mono = port_clock_monotonic_ms(s->clock);
    int write_seen = !s->st.paused && mono - s->seen_written_ms >= SESSION_SEEN_INTERVAL_MS;
    if (write_seen)
        s->seen_written_ms = mono;
    port_mutex_unlock(s->mu);
    if (write_seen)
        persist_seen(s->q, id_out, now);
    return 1;
}

void session_snapshot(session_t *s, session_state_t *out)
{
    port_mutex_lock(s->mu);
    *out = s->st;
    port_mutex_unlock(s->mu);
}

/* -- evrec_session_* ----------------------------------------------------------------------- */

/* Record one `_session.*` event. */
static int record_emit(evrec_t *a, const session_emit_t *e)
{
    evrec_event_t *ev = NULL;
    int rc = evrec_event_new(&ev, e->event_type);
    if (rc == EVREC_OK)
        rc = evrec_event_set_timestamp(ev, e->at_ms);
    if (rc != EVREC_OK) {
        evrec_event_free(ev);
        return agent_error(a, rc, "session: could not build %s", e->event_type);
    }
    event_context_t ctx = { 0 };
    ctx.session_id = e->id;
    ctx.session_start_ms = e->start_ms;
    ctx.session_stop_ms = e->stop_ms;
    ctx.session_duration_ms = e->duration_ms;
    rc = agent_record_with(a, ev, &ctx);
    evrec_event_free(ev);
    /* A stop stamped at a pause older than max_event_age would only expire in the queue; the
     * session still ends (the caller asked for a start or a resume, not for that event). */
    if (rc == EVREC_E_TOO_OLD) {
        log_msg(&a->log, EVREC_LOG_INFO, "session: %s of %s not recorded: %s", e->event_type,
                e->id, evrec_last_error(a));
        rc = EVREC_OK;
    }
    return rc;
}

typedef int (*transition_fn)(const session_state_t *s, int64_t now, session_state_t *next,
                             session_emit_t *e);

/* Apply one transition with s->mu held: record its event, then adopt and persist the state. */
static int step(evrec_t *a, session_t *s, transition_fn fn, int64_t now)
{
    session_state_t next;
    session_emit_t e;
    int rc = fn(&s->st, now, &next, &e);
    if (rc != EVREC_OK)
        return rc;
    rc = record_emit(a, &e);
    if (rc != EVREC_OK)
        return rc;
    s->st = next;
    persist_state(s);
    return EVREC_OK;
}

static int begin_new(evrec_t *a, session_t *s, int64_t now)
{
    char id[SESSION_ID_LEN];
    int rc = event_uuid_v4(id);
    if (rc != EVREC_OK)
        return agent_error(a, rc, "session: no random session id");
    session_state_t next;
    session_emit_t e;
    rc = session_begin(&s->st, id, now, &next, &e);
    if (rc == EVREC_OK)
        rc = record_emit(a, &e);
    if (rc != EVREC_OK)
        return rc;
    s->st = next;
    s->seen_written_ms = port_clock_monotonic_ms(s->clock);
    persist_state(s);
    return EVREC_OK;
}

static session_t *session_of(evrec_t *a)
{
    return a != NULL ? a->session : NULL;
}

EVREC_API int evrec_session_start(evrec_t *agent)
{
    session_t *s = session_of(agent);
    if (s == NULL)
        return EVREC_E_INVALID;
    int64_t now = port_clock_wall_ms(s->clock);
    port_mutex_lock(s->mu);
    int rc = EVREC_OK;
    if (s->st.open)
        rc = step(agent, s, session_end, now);
    if (rc == EVREC_OK)
        rc = begin_new(agent, s, now);
    port_mutex_unlock(s->mu);
    return rc;
}

static int no_session(evrec_t *a, const char *what)
{
    return agent_error(a, EVREC_E_STATE, "session: cannot %s: %s", what,
                       "no session is open (or it is not in a state that allows it)");
}

EVREC_API int evrec_session_stop(evrec_t *agent)
{
    session_t *s = session_of(agent);
    if (s == NULL)
        return EVREC_E_INVALID;
    port_mutex_lock(s->mu);
    int rc = step(agent, s, session_end, port_clock_wall_ms(s->clock));
    port_mutex_unlock(s->mu);
    return rc == EVREC_E_STATE ? no_session(agent, "stop") : rc;
}

EVREC_API int evrec_session_pause(evrec_t *agent)
{
    session_t *s = session_of(agent);
    if (s == NULL)
        return EVREC_E_INVALID;
    port_mutex_lock(s->mu);
    int rc = step(agent, s, session_suspend, port_clock_wall_ms(s->clock));
    port_mutex_unlock(s->mu);
    return rc == EVREC_E_STATE ? no_session(agent, "pause (needs an open, running session)")
                               : rc;
}

EVREC_API int evrec_session_resume(evrec_t *agent)
{
    session_t *s = session_of(agent);
    if (s == NULL)
        return EVREC_E_INVALID;
    int64_t now = port_clock_wall_ms(s->clock);
    port_mutex_lock(s->mu);
    int rc;
    if (session_expired(&s->st, now, s->timeout_ms)) {
        /* Paused too long: the old session ended at its pause; a new one starts now. */
        rc = step(agent, s, session_end, now);
        if (rc == EVREC_OK)
            rc = begin_new(agent, s, now);
    } else {
        rc = step(agent, s, session_continue, now);
        if (rc == EVREC_E_STATE)
            rc = no_session(agent, "resume (needs a paused session)");
    }
    port_mutex_unlock(s->mu);
    return rc;
}

EVREC_API int evrec_session_id(evrec_t *agent, char *buf, size_t len)
{
    session_t *s = session_of(agent);
    if (s == NULL || buf == NULL || len == 0)
        return EVREC_E_INVALID;
    session_state_t st;
    session_snapshot(s, &st);
    buf[0] = '\0';
    if (!st.open)
        return agent_error(agent, EVREC_E_STATE, "session: no session is open");
    if (strlen(st.id) >= len)
        return agent_error(agent, EVREC_E_INVALID, "session: buffer of %zu bytes is too small",
                           len);
    memcpy(buf, st.id, strlen(st.id) + 1);
    return EVREC_OK;
}
