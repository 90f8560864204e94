/*
 * The batcher (see batch.h). One queue_scan, oldest first; each event kept has its ids copied
 * into the batch's chunks (one allocation for many events), so the batch outlives the read
 * transaction and nothing is held across the network call. The JSON fragments stay in the store until the body is built
 * (batch_with_fragments). The scan stops at the first event that does not fit, so order is
 * kept: a later, smaller event never jumps ahead of an older one.
 */
#include "batch.h"

#include <string.h>

#include "port.h"
#include "record.h"
#include "seal.h"

/* BATCH_GROUP_STREAM batches one (user, session): how many records of other streams the scan
 * looks past before it settles for what it has (sessions rarely interleave; this bounds the
 * scan). */
#define STREAM_LOOKAHEAD 1000u

/* -- the index ----------------------------------------------------------------------------- */

/* FNV-1a over the length and the last 16 bytes: ids (UUIDs, counters, device names) differ
 * near their end, and a collision only costs a string comparison. */
static uint32_t hash_id(const char *s)
{
    size_t n = strlen(s);
    uint32_t h = (2166136261u ^ (uint32_t)n) * 16777619u;
    for (const unsigned char *p = (const unsigned char *)s + (n > 16 ? n - 16 : 0); *p != '\0';
         p++)
        h = (h ^ *p) * 16777619u;
    return h ^ (h >> 15);
}

/* By (endpoint, event id) the event id alone is hashed: endpoints repeat within a batch. */
static uint32_t key_hash(int by_event, const char *endpoint_id, const char *event_id)
{
    return hash_id(by_event ? event_id : endpoint_id);
}

static int key_equal(const batch_index_t *x, size_t i, const char *endpoint_id,
                     const char *event_id)
{
    const batch_event_t *e = &x->b->events[i];
    return strcmp(e->endpoint_id, endpoint_id) == 0 &&
           (!x->by_event || strcmp(e->event_id, event_id) == 0);
}

int batch_index_init(batch_index_t *x, const batch_t *b, int by_event)
{
    memset(x, 0, sizeof *x);
    x->b = b;
    x->by_event = by_event;
    return b != NULL && b->n <= BATCH_INDEX_MAX && b->cap <= BATCH_INDEX_MAX ? EVREC_OK
                                                                            : EVREC_E_INVALID;
}

/* The slot holding this key (hashed to h), or the empty slot where it would go. */
static size_t probe(const batch_index_t *x, uint32_t h, const char *endpoint_id,
                    const char *event_id)
{
    size_t s = h & (BATCH_INDEX_SLOTS - 1);
    while (x->slot[s] != 0 && !key_equal(x, x->slot[s] - 1u, endpoint_id, event_id))
        s = (s + 1) & (BATCH_INDEX_SLOTS - 1);
    return s;
}

/* An event's key hash for this index: the one batch_next kept, or computed. */
static uint32_t event_key_hash(const batch_index_t *x, const batch_event_t *e)
{
    if (e->hashed)
        return x->by_event ? e->event_hash : e->endpoint_hash;
    return key_hash(x->by_event, e->endpoint_id, e->event_id);
}

static size_t probe_event(const batch_index_t *x, const batch_event_t *e)
{
    return probe(x, event_key_hash(x, e), e->endpoint_id, e->event_id);
}

long batch_index_find(const batch_index_t *x, const char *endpoint_id, const char *event_id)
{
    if (endpoint_id == NULL || (x->by_event && event_id == NULL))
        return -1;
    size_t s = probe(x, key_hash(x->by_event, endpoint_id, event_id), endpoint_id, event_id);
    return x->slot[s] != 0 ? (long)x->slot[s] - 1 : -1;
}

long batch_index_add(batch_index_t *x, size_t i)
{
    size_t s = probe_event(x, &x->b->events[i]);
    if (x->slot[s] != 0)
        return (long)x->slot[s] - 1;
    x->slot[s] = (uint8_t)(i + 1); /* i < BATCH_INDEX_MAX: fewer keys than half the slots */
    return -1;
}

/* -- events -------------------------------------------------------------------------------- */

/* The ids batch_next copies, in chunks freed together when the last batch holding them (the
 * batch, and the batches batch_split made from it) is freed: one allocation for many events,
 * not one each. */
#define IDS_CHUNK 4096u

typedef struct ids_chunk {
    struct ids_chunk *next;
    size_t used, cap;
    char data[];
} ids_chunk_t;

struct batch_ids {
    unsigned refs;
    ids_chunk_t *head;
};

static char *ids_alloc(batch_t *b, size_t n)
{
    if (b->ids == NULL) {
        if ((b->ids = port_calloc(1, sizeof *b->ids)) == NULL)
            return NULL;
        b->ids->refs = 1;
    }
    ids_chunk_t *c = b->ids->head;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > IDS_CHUNK ? n : IDS_CHUNK;
        if ((c = port_malloc(sizeof *c + cap)) == NULL)
            return NULL;
        c->next = b->ids->head;
        c->used = 0;
        c->cap = cap;
        b->ids->head = c;
    }
    char *p = c->data + c->used;
    c->used += n;
    return p;
}

static void ids_release(struct batch_ids *ids)
{
    if (ids == NULL || --ids->refs > 0)
        return;
    for (ids_chunk_t *c = ids->head, *next; c != NULL; c = next) {
        next = c->next;
        port_free(c);
    }
    port_free(ids);
}

/* An event leaves the batch (its ids stay in the chunks until the batch is freed). */
static void event_free(batch_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
}

static char *put_id(char *dst, const char *src, size_t len)
{
    if (len > 0)
        memcpy(dst, src, len);
    dst[len] = '\0';
    return dst + len + 1;
}

static int event_copy(batch_t *b, batch_event_t *ev, uint64_t seq,
                      const evrec_record_view_t *v)
{
    memset(ev, 0, sizeof *ev);
    ev->seq = seq;
    ev->shape = v->shape;
    ev->created_ms = v->created_ms;
    ev->flags = v->flags;
    ev->fragment_len = v->fragment_len;
    char *block = ids_alloc(b, v->event_id_len + v->endpoint_id_len + v->session_id_len +
                                   v->user_id_len + 4);
    if (block == NULL)
        return EVREC_E_NOMEM;
    ev->event_id = block;
    ev->endpoint_id = put_id(block, v->event_id, v->event_id_len);
    ev->session_id = put_id(ev->endpoint_id, v->endpoint_id, v->endpoint_id_len);
    ev->user_id = put_id(ev->session_id, v->session_id, v->session_id_len);
    put_id(ev->user_id, v->user_id, v->user_id_len);
    return EVREC_OK;
}

static int view_is_stream(const evrec_record_view_t *v, const batch_event_t *first)
{
    return v->user_id_len == strlen(first->user_id) &&
           memcmp(v->user_id, first->user_id, v->user_id_len) == 0 &&
           v->session_id_len == strlen(first->session_id) &&
           memcmp(v->session_id, first->session_id, v->session_id_len) == 0;
}

/* -- size estimates ------------------------------------------------------------------------ */

static size_t added_bytes(const batch_t *b, size_t n, int new_endpoint)
{
    return b->rules->added_bytes(b, n, new_endpoint);
}

static size_t estimate(const batch_t *b)
{
    if (b->rules == NULL)
        return 0;
    batch_index_t endpoints;
    int indexed = batch_index_init(&endpoints, b, 0) == EVREC_OK;
    size_t bytes = 0;
    for (size_t i = 0; i < b->n; i++) {
        int new_endpoint = 1;
        if (indexed) {
            new_endpoint = batch_index_add(&endpoints, i) < 0;
        } else {
            for (size_t j = 0; j < i && new_endpoint; j++)
                new_endpoint = strcmp(b->events[j].endpoint_id, b->events[i].endpoint_id) != 0;
        }
        bytes += added_bytes(b, i, new_endpoint);
    }
    return bytes;
}

/* -- the scan ------------------------------------------------------------------------------ */

typedef struct scan {
    evrec_queue_t *q;
    const batch_limits_t *lim;
    batch_t *out;
    uint32_t max_events;
    size_t max_bytes;
    uint32_t looked_past; /* BATCH_GROUP_STREAM: records of other streams since the first */
    int indexed;             /* BATCH_GROUP_ENDPOINT_EVENTS: the two indexes below are used */
    batch_index_t events;    /* (endpoint, event id) pairs taken */
    batch_index_t endpoints; /* the first event of each endpoint taken */
    seal_buf_t opened;       /* a sealed record, opened (the ids are copied out of it) */
    batch_fn then;           /* batch_next_then: called in the read transaction, if */
    void *then_user;
    int fusable;             /* every event taken has its fragment in the map, NUL-ended */
    int ran, then_rc;
} scan_t;

/* The endpoint's profile length as the encoder will splice it ("{}" when there is none). */
static int profile_len(scan_t *s, batch_event_t *ev)
{
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
    const batch_rules_t *rules = b->rules;
    evrec_record_view_t v;
    /* Records this batch cannot carry (damaged, of another shape, expired) are passed over;
     * the queue's own expiry and eviction remove them. */
    if (seal_decode(b->keys, value, len, &s->opened, &v) != EVREC_OK ||
        v.shape >= 8 * sizeof rules->shapes ||
        !(rules->shapes & (1u << v.shape)))
        return 0;
    if (s->lim->expire_before_ms != 0 && v.created_ms < s->lim->expire_before_ms)
        return 0;
    if (rules->grouping == BATCH_GROUP_STREAM && b->n > 0 && !view_is_stream(&v, &b->events[0]))
        return ++s->looked_past >= STREAM_LOOKAHEAD ? 1 : 0;

    batch_event_t *ev = &b->events[b->n];
    int rc = event_copy(b, ev, seq, &v);
    if (rc != EVREC_OK)
        return rc;
    int new_endpoint = 0;
    size_t ep_slot = 0, ev_slot = 0; /* where the event goes in each index (no add between) */
    if (s->indexed) {
        /* Events keyed by id under their endpoint: a second event with the same pair has to
         * wait for the next request. */
        ev->event_hash = hash_id(ev->event_id); /* kept for the encoder's index too */
        ev->endpoint_hash = hash_id(ev->endpoint_id);
        ev->hashed = 1;
        ep_slot = probe_event(&s->endpoints, ev);
        new_endpoint = s->endpoints.slot[ep_slot] == 0;
        ev_slot = probe_event(&s->events, ev);
        if (new_endpoint) {
            rc = rules->profiles ? profile_len(s, ev) : EVREC_OK;
        } else {
            ev->profile_len = b->events[s->endpoints.slot[ep_slot] - 1u].profile_len;
            if (s->events.slot[ev_slot] != 0) {
                event_free(ev);
                b->next_seq = seq; /* this one starts the next batch */
                return 1;
            }
        }
    } else if (rules->profiles) {
        /* Without an index only a run of one endpoint's events shares a lookup. */
        const batch_event_t *prev = b->n > 0 ? &b->events[b->n - 1] : NULL;
        new_endpoint = prev == NULL || strcmp(prev->endpoint_id, ev->endpoint_id) != 0;
        if (new_endpoint)
            rc = profile_len(s, ev);
        else
            ev->profile_len = prev->profile_len;
    }
    if (rc != EVREC_OK) {
        event_free(ev);
        return rc;
    }
    size_t cost = added_bytes(b, b->n, new_endpoint);
    if (b->n > 0 && b->body_bytes + cost > s->max_bytes) {
        event_free(ev);
        b->next_seq = seq;
        return 1;
    }
    if (s->indexed) { /* b->n < BATCH_INDEX_MAX (batch_index_init checked the capacity) */
        s->events.slot[ev_slot] = (uint8_t)(b->n + 1);
        if (new_endpoint)
            s->endpoints.slot[ep_slot] = (uint8_t)(b->n + 1);
    }
    if (s->then && s->fusable) {
        /* plain records decode in place: the fragment lies in the map until the scan ends */
        int plain = len > 0 && ((const uint8_t *)value)[0] != EVREC_RECORD_FORMAT_SEALED;
        if (plain && v.fragment_nul && memchr(v.fragment, '\0', v.fragment_len) == NULL)
            ev->fragment = v.fragment;
        else
            s->fusable = 0;
    }
    b->n++;
    b->body_bytes += cost;
    return b->n >= s->max_events ? 1 : 0;
}

/* The end of batch_next_then's scan, still in its read transaction. */
static int scan_done(void *user)
{
    scan_t *s = user;
    if (s->then && s->fusable && s->out->n > 0) {
        s->ran = 1;
        s->then_rc = s->then(s->then_user, s->out);
    }
    return EVREC_OK;
}

int batch_next(evrec_queue_t *q, const batch_limits_t *lim, batch_t *out)
{
    return batch_next_then(q, lim, out, NULL, NULL, NULL, NULL);
}

int batch_next_then(evrec_queue_t *q, const batch_limits_t *lim, batch_t *out, batch_fn fn,
                    void *user, int *ran, int *fn_rc)
{
    if (ran)
        *ran = 0;
    if (fn_rc)
        *fn_rc = EVREC_OK;
    if (out == NULL || (fn && (!ran || !fn_rc)))
        return EVREC_E_INVALID;
    memset(out, 0, sizeof *out);
    const batch_rules_t *rules = lim != NULL ? lim->rules : NULL;
    if (q == NULL || rules == NULL || rules->added_bytes == NULL || rules->max_events == 0 ||
        rules->max_bytes == 0)
        return EVREC_E_INVALID;
    uint32_t limit = rules->max_events;
    scan_t s = { .q = q, .lim = lim, .out = out };
    s.max_events = lim->max_events == 0 || lim->max_events > limit ? limit : lim->max_events;
    s.max_bytes = lim->max_bytes == 0 || lim->max_bytes > rules->max_bytes ? rules->max_bytes
                                                                           : lim->max_bytes;
    out->rules = rules;
    out->keys = lim->keys;
    out->next_seq = lim->from_seq;
    out->events = port_calloc(s.max_events, sizeof *out->events);
    if (out->events == NULL)
        return EVREC_E_NOMEM;
    out->cap = s.max_events;
    s.indexed = rules->grouping == BATCH_GROUP_ENDPOINT_EVENTS;
    if (s.indexed && (batch_index_init(&s.events, out, 1) != EVREC_OK ||
                      batch_index_init(&s.endpoints, out, 0) != EVREC_OK)) {
        batch_free(out);
        return EVREC_E_INVALID;
    }
    s.then = fn;
    s.then_user = user;
    s.fusable = fn != NULL;
    int rc = queue_scan_then(q, lim->from_seq, visit, &s, fn ? scan_done : NULL);
    seal_buf_free(&s.opened);
    for (size_t i = 0; i < out->n; i++)
        out->events[i].fragment = NULL; /* they pointed into the ended transaction */
    if (rc < 0) {
        batch_free(out);
        return rc;
    }
    if (fn) {
        *ran = s.ran;
        *fn_rc = s.then_rc;
    }
    return EVREC_OK;
}

/* -- fragments ----------------------------------------------------------------------------- */

typedef struct with {
    batch_t *b;
    batch_fn fn;
    void *user;
    char **copies; /* format-1 records: fragments copied to get their NUL; else NULL */
    seal_buf_t *opened; /* sealed records: each opened into its own buffer; else NULL */
} with_t;

static int with_records(void *user, queue_ref_t *refs, size_t n)
{
    with_t *w = user;
    batch_t *b = w->b;
    size_t kept = 0, copies = 0;
    int rc = EVREC_OK;
    for (size_t i = 0; i < n; i++) {
        batch_event_t *ev = &b->events[i];
        evrec_record_view_t v;
        const uint8_t *raw = refs[i].value;
        int sealed = raw != NULL && refs[i].len > 0 && raw[0] == EVREC_RECORD_FORMAT_SEALED;
        if (sealed && rc == EVREC_OK && w->opened == NULL &&
            (w->opened = port_calloc(n, sizeof *w->opened)) == NULL)
            rc = EVREC_E_NOMEM;
        int usable = rc == EVREC_OK && refs[i].value != NULL &&
                     (sealed ? seal_decode(b->keys, refs[i].value, refs[i].len, &w->opened[i],
                                           &v)
                             : evrec_record_decode(refs[i].value, refs[i].len, &v)) == 0 &&
                     v.shape == ev->shape && v.fragment_len == ev->fragment_len &&
                     memchr(v.fragment, '\0', v.fragment_len) == NULL;
        if (usable && v.fragment_nul) {
            ev->fragment = v.fragment;
        } else if (usable) {
            if (w->copies == NULL && (w->copies = port_calloc(n, sizeof *w->copies)) == NULL)
                rc = EVREC_E_NOMEM;
            else if ((w->copies[copies] = port_strndup(v.fragment, v.fragment_len)) == NULL)
                rc = EVREC_E_NOMEM;
            else
                ev->fragment = w->copies[copies++];
        } else if (rc == EVREC_OK) {
            event_free(ev); /* gone since the batch was taken, or damaged */
            continue;
        }
        /* after a failure the rest is kept as it is, for a later attempt */
        if (kept != i) {
            b->events[kept] = *ev;
            memset(ev, 0, sizeof *ev);
        }
        kept++;
    }
    if (kept != b->n) {
        b->n = kept;
        b->body_bytes = estimate(b);
    }
    if (rc == EVREC_OK)
        rc = kept == 0 ? EVREC_E_NOT_FOUND : w->fn(w->user, b);
    for (size_t i = 0; i < b->n; i++)
        b->events[i].fragment = NULL;
    return rc;
}

int batch_with_fragments(evrec_queue_t *q, batch_t *b, batch_fn fn, void *user)
{
    if (q == NULL || b == NULL || fn == NULL)
        return EVREC_E_INVALID;
    if (b->n == 0)
        return EVREC_E_NOT_FOUND;
    queue_ref_t *refs = port_malloc(b->n * sizeof *refs);
    if (refs == NULL)
        return EVREC_E_NOMEM;
    for (size_t i = 0; i < b->n; i++)
        refs[i].seq = b->events[i].seq;
    with_t w = { b, fn, user, NULL, NULL };
    size_t n = b->n;
    int rc = queue_with_records(q, refs, n, with_records, &w);
    if (w.copies != NULL) {
        for (size_t i = 0; i < n; i++)
            port_free(w.copies[i]);
        port_free(w.copies);
    }
    if (w.opened != NULL) { /* plain events of an encrypted store: wiped */
        for (size_t i = 0; i < n; i++)
            seal_buf_free(&w.opened[i]);
        port_free(w.opened);
    }
    for (size_t i = 0; i < b->n; i++)
        b->events[i].fragment = NULL;
    port_free(refs);
    return rc;
}

/* -- splitting ----------------------------------------------------------------------------- */

int batch_split(batch_t *b, size_t at, batch_t *tail)
{
    if (tail == NULL)
        return EVREC_E_INVALID;
    memset(tail, 0, sizeof *tail);
    if (b == NULL || at > b->n)
        return EVREC_E_INVALID;
    size_t moved = b->n - at;
    tail->rules = b->rules;
    tail->keys = b->keys;
    tail->events = port_calloc(moved ? moved : 1, sizeof *tail->events);
    if (tail->events == NULL)
        return EVREC_E_NOMEM;
    tail->ids = b->ids; /* the tail's ids stay where they are: shared */
    if (tail->ids != NULL)
        tail->ids->refs++;
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
    port_free(b->events);
    ids_release(b->ids);
    memset(b, 0, sizeof *b);
}
