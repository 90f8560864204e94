/*
 * The batcher (see batch.h). One queue_scan, oldest first; each event kept is copied out of
 * the read transaction, so the batch outlives it and nothing is held across the network call.
 * The scan stops at the first event that does not fit, so order is kept: a later, smaller
 * event never jumps ahead of an older one.
 */
#include "batch.h"

#include <string.h>

#include "port.h"
#include "record.h"
#include "wire.h"

#define PINPOINT_MAX_EVENTS 100u   /* EventsRequest: at most 100 events per request */
#define PERSONALIZE_MAX_EVENTS 10u /* EventList max */
#define DEFAULT_MAX_BYTES 4000000u /* Pinpoint's 4 MB request limit, read conservatively */
/* Personalize batches one (user, session): how many records of other streams the scan looks
 * past before it settles for what it has (sessions rarely interleave; this bounds the scan). */
#define PERSONALIZE_LOOKAHEAD 1000u

static int has_endpoint(const batch_t *b, size_t n, const char *endpoint_id,
                        const batch_event_t **found)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(b->events[i].endpoint_id, endpoint_id) == 0) {
            if (found != NULL)
                *found = &b->events[i];
            return 1;
        }
    }
    return 0;
}

/* What appending ev to the first n events of b adds to the body estimate. */
static size_t added_bytes(const batch_t *b, size_t n, const batch_event_t *ev)
{
    if (b->service == EVREC_SERVICE_PERSONALIZE) {
        size_t base = n == 0 ? wire_personalize_base_bytes(ev->user_id, ev->session_id,
                                                            WIRE_TRACKING_ID_BYTES)
                             : 0;
        return base + ev->fragment_len + 1;
    }
    size_t bytes = wire_pinpoint_event_bytes(ev->event_id, ev->fragment_len);
    if (!has_endpoint(b, n, ev->endpoint_id, NULL))
        bytes += wire_pinpoint_endpoint_bytes(ev->endpoint_id, ev->profile_len);
    return bytes + (n == 0 ? WIRE_PINPOINT_BODY_BYTES : 0);
}

static size_t estimate(const batch_t *b)
{
    size_t bytes = 0;
    for (size_t i = 0; i < b->n; i++)
        bytes += added_bytes(b, i, &b->events[i]);
    return bytes;
}

/* -- events -------------------------------------------------------------------------------- */

static void event_free(batch_event_t *ev)
{
    port_free(ev->event_id);
    port_free(ev->endpoint_id);
    port_free(ev->session_id);
    port_free(ev->user_id);
    port_free(ev->fragment);
    memset(ev, 0, sizeof *ev);
}

static int event_copy(batch_event_t *ev, uint64_t seq, const evrec_record_view_t *v)
{
    memset(ev, 0, sizeof *ev);
    ev->seq = seq;
    ev->created_ms = v->created_ms;
    ev->flags = v->flags;
    ev->fragment_len = v->fragment_len;
    ev->event_id = port_strndup(v->event_id, v->event_id_len);
    ev->endpoint_id = port_strndup(v->endpoint_id, v->endpoint_id_len);
    ev->session_id = port_strndup(v->session_id, v->session_id_len);
    ev->user_id = port_strndup(v->user_id, v->user_id_len);
    ev->fragment = port_strndup(v->fragment, v->fragment_len);
    if (!ev->event_id || !ev->endpoint_id || !ev->session_id || !ev->user_id || !ev->fragment) {
        event_free(ev);
        return EVREC_E_NOMEM;
    }
    return EVREC_OK;
}

static int view_is_stream(const evrec_record_view_t *v, const batch_event_t *first)
{
    return v->user_id_len == strlen(first->user_id) &&
           memcmp(v->user_id, first->user_id, v->user_id_len) == 0 &&
           v->session_id_len == strlen(first->session_id) &&
           memcmp(v->session_id, first->session_id, v->session_id_len) == 0;
}

/* Pinpoint keys events by id under their endpoint: a second event with the same pair has to
 * wait for the next request. */
static int duplicate_id(const batch_t *b, const batch_event_t *ev)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->events[i].event_id, ev->event_id) == 0 &&
            strcmp(b->events[i].endpoint_id, ev->endpoint_id) == 0)
            return 1;
    return 0;
}

/* -- the scan ------------------------------------------------------------------------------ */

typedef struct scan {
    evrec_queue_t *q;
    const batch_limits_t *lim;
    batch_t *out;
    uint32_t max_events;
    size_t max_bytes;
    uint32_t looked_past; /* Personalize: records of other streams since the first taken */
} scan_t;

/* The endpoint's profile length as the encoder will splice it ("{}" when there is none). */
static int profile_len(scan_t *s, batch_event_t *ev)
{
    const batch_event_t *same = NULL;
    if (has_endpoint(s->out, s->out->n, ev->endpoint_id, &same)) {
        ev->profile_len = same->profile_len;
        return EVREC_OK;
    }
    char *json = NULL;
    uint32_t version = 0;
    int rc = queue_endpoint_get(s->q, ev->endpoint_id, &json, &version);
    if (rc == EVREC_E_NOT_FOUND) {
        ev->profile_len = 2;
        return EVREC_OK;
    }
    if (rc != EVREC_OK)
        return rc;
    ev->profile_len = json[0] != '\0' ? strlen(json) : 2;
    port_free(json);
    return EVREC_OK;
}

static int visit(void *user, uint64_t seq, const void *value, size_t len)
{
    scan_t *s = user;
    batch_t *b = s->out;
    b->next_seq = seq + 1;
    evrec_record_view_t v;
    /* Records this batch cannot carry (damaged, for the other service, expired) are passed
     * over; the queue's own expiry and eviction remove them. */
    if (evrec_record_decode(value, len, &v) != EVREC_OK || v.service != (uint8_t)b->service)
        return 0;
    if (s->lim->expire_before_ms != 0 && v.created_ms < s->lim->expire_before_ms)
        return 0;
    if (b->service == EVREC_SERVICE_PERSONALIZE && b->n > 0 && !view_is_stream(&v, &b->events[0]))
        return ++s->looked_past >= PERSONALIZE_LOOKAHEAD ? 1 : 0;

    batch_event_t ev;
    int rc = event_copy(&ev, seq, &v);
    if (rc == EVREC_OK && b->service == EVREC_SERVICE_PINPOINT)
        rc = profile_len(s, &ev);
    if (rc != EVREC_OK) {
        event_free(&ev);
        return rc;
    }
    size_t cost = added_bytes(b, b->n, &ev);
    if (b->n > 0 && (b->body_bytes + cost > s->max_bytes ||
                     (b->service == EVREC_SERVICE_PINPOINT && duplicate_id(b, &ev)))) {
        event_free(&ev);
        b->next_seq = seq; /* this one starts the next batch */
        return 1;
    }
    b->events[b->n++] = ev;
    b->body_bytes += cost;
    return b->n >= s->max_events ? 1 : 0;
}

int batch_next(evrec_queue_t *q, const batch_limits_t *lim, batch_t *out)
{
    if (out == NULL)
        return EVREC_E_INVALID;
    memset(out, 0, sizeof *out);
    if (q == NULL || lim == NULL ||
        (lim->service != EVREC_SERVICE_PINPOINT && lim->service != EVREC_SERVICE_PERSONALIZE))
        return EVREC_E_INVALID;
    uint32_t limit = lim->service == EVREC_SERVICE_PINPOINT ? PINPOINT_MAX_EVENTS
                                                            : PERSONALIZE_MAX_EVENTS;
    scan_t s = { .q = q, .lim = lim, .out = out };
    s.max_events = lim->max_events == 0 || lim->max_events > limit ? limit : lim->max_events;
    s.max_bytes = lim->max_bytes == 0 ? DEFAULT_MAX_BYTES : lim->max_bytes;
    out->service = lim->service;
    out->next_seq = lim->from_seq;
    out->events = port_calloc(s.max_events, sizeof *out->events);
    if (out->events == NULL)
        return EVREC_E_NOMEM;
    out->cap = s.max_events;
    int rc = queue_scan(q, lim->from_seq, visit, &s);
    if (rc < 0) {
        batch_free(out);
        return rc;
    }
    return EVREC_OK;
}

int batch_split(batch_t *b, size_t at, batch_t *tail)
{
    if (tail == NULL)
        return EVREC_E_INVALID;
    memset(tail, 0, sizeof *tail);
    if (b == NULL || at > b->n)
        return EVREC_E_INVALID;
    size_t moved = b->n - at;
    tail->service = b->service;
    tail->events = port_calloc(moved, sizeof *tail->events);
    if (tail->events == NULL)
        return EVREC_E_NOMEM;
    tail->cap = moved;
    if (moved > 0)
        memcpy(tail->events, b->events + at, moved * sizeof *b->events);
    tail->n = moved;
    tail->next_seq = b->next_seq;
    b->n = at;
    if (moved > 0)
        b->next_seq = tail->events[0].seq;
    b->body_bytes = estimate(b);
    tail->body_bytes = estimate(tail);
    return EVREC_OK;
}

void batch_free(batch_t *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        event_free(&b->events[i]);
    port_free(b->events);
    memset(b, 0, sizeof *b);
}
