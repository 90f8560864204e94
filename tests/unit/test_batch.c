/* The batcher over a real store in a temp directory: limits, grouping, order, expiry, split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "batch.h"
#include "event.h"
#include "evrec.h"
#include "port.h"
#include "queue.h"
#include "record.h"
#include "service.h"
#include "testutil.h"
#include "wire.h"

static void assert_request_valid(const char *service, const char *body);

typedef struct fixture {
    char *dir;
    evrec_queue_t *q;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = tu_tempdir("batch");
    char err[256] = "";
    if (f->dir == NULL || queue_open(&f->q, f->dir, NULL, err, sizeof err) != EVREC_OK) {
        fprintf(stderr, "queue_open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    queue_close(f->q);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

typedef struct rec {
    evrec_service_t svc;
    int64_t created_ms;
    const char *event_id;
    const char *endpoint_id;
    const char *session_id;
    const char *user_id;
    const char *fragment;
} rec_t;

static uint64_t append(evrec_queue_t *q, const rec_t *r)
{
    evrec_record_view_t v = { 0 };
    v.shape = (uint8_t)r->svc; /* EVREC_SERVICE_X of Pinpoint/Personalize == its shape */
    v.created_ms = r->created_ms;
    v.event_id = r->event_id;
    v.event_id_len = strlen(r->event_id);
    v.endpoint_id = r->endpoint_id;
    v.endpoint_id_len = strlen(r->endpoint_id);
    v.session_id = r->session_id ? r->session_id : "";
    v.session_id_len = strlen(v.session_id);
    v.user_id = r->user_id ? r->user_id : "";
    v.user_id_len = strlen(v.user_id);
    v.fragment = r->fragment;
    v.fragment_len = strlen(r->fragment);
    uint8_t *buf = malloc(evrec_record_size(&v));
    size_t n = evrec_record_encode(&v, buf);
    uint64_t seq = 0;
    assert_int_equal(queue_append(q, buf, n, 0, &seq), EVREC_OK);
    free(buf);
    return seq;
}

/* A Pinpoint fragment of about `size` bytes. */
static char *pp_fragment(int i, size_t size)
{
    char head[128];
    int h = snprintf(head, sizeof head,
                     "{\"EventType\":\"e%d\",\"Timestamp\":\"2026-11-22T10:00:00.000Z\","
                     "\"Attributes\":{\"pad\":\"",
                     i);
    size_t pad = size > (size_t)h + 3 ? size - (size_t)h - 3 : 0;
    char *f = malloc((size_t)h + pad + 5);
    memcpy(f, head, (size_t)h);
    memset(f + h, 'x', pad);
    memcpy(f + h + pad, "\"}}", 4);
    return f;
}

static uint64_t append_pp(evrec_queue_t *q, int i, const char *endpoint, size_t size)
{
    char id[32];
    snprintf(id, sizeof id, "ev-%04d", i);
    char *frag = pp_fragment(i, size);
    rec_t r = { EVREC_SERVICE_PINPOINT, 1763800000000LL + i, id, endpoint, NULL, NULL, frag };
    uint64_t seq = append(q, &r);
    free(frag);
    return seq;
}

static batch_limits_t pp_limits(uint32_t max_events, size_t max_bytes)
{
    batch_limits_t l = { 0 };
    l.rules = service_rules(EVREC_SERVICE_PINPOINT);
    l.max_events = max_events;
    l.max_bytes = max_bytes;
    return l;
}

static void assert_consecutive(const batch_t *b, uint64_t first_seq)
{
    for (size_t i = 0; i < b->n; i++)
        assert_int_equal(b->events[i].seq, first_seq + i);
}

static int store_profile(void *user, const char *endpoint_id, char **json)
{
    uint32_t version;
    return queue_endpoint_get(user, endpoint_id, json, &version);
}

/* Encode b the way the flusher does: inside batch_with_fragments. */
typedef struct encoding {
    evrec_queue_t *q;
    const char *tracking_id; /* Personalize */
    char *body;
    size_t len;
} encoding_t;

static int encode_cb(void *user, batch_t *b)
{
    encoding_t *e = user;
    if (b->rules == service_rules(EVREC_SERVICE_PERSONALIZE))
        return wire_personalize_encode(b, e->tracking_id, &e->body, &e->len);
    return wire_pinpoint_encode(b, store_profile, e->q, &e->body, &e->len);
}

static char *encode_from_store(evrec_queue_t *q, batch_t *b, size_t *len)
{
    encoding_t e = { q, "tracking-0001", NULL, 0 };
    assert_int_equal(batch_with_fragments(q, b, encode_cb, &e), EVREC_OK);
    for (size_t i = 0; i < b->n; i++)
        assert_null(b->events[i].fragment); /* store pointers do not outlive the call */
    *len = e.len;
    return e.body;
}

/* The batch's estimate is an upper bound of the body the encoder makes from it. */
static size_t encoded_len(evrec_queue_t *q, batch_t *b)
{
    size_t len = 0;
    port_free(encode_from_store(q, b, &len));
    return len;
}

static void empty_queue(void **state)
{
    fixture_t *f = *state;
    batch_limits_t l = pp_limits(100, 0);
    l.from_seq = 7;
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 0);
    assert_int_equal(b.next_seq, 7);
    assert_int_equal(b.body_bytes, 0);
    batch_free(&b);
    assert_int_equal(batch_next(NULL, &l, &b), EVREC_E_INVALID);
    assert_int_equal(batch_next(f->q, NULL, &b), EVREC_E_INVALID);
    assert_int_equal(batch_next(f->q, &l, NULL), EVREC_E_INVALID);
    l.rules = service_rules((evrec_service_t)9); /* none */
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_E_INVALID);
}

static void count_limit_and_clamp(void **state)
{
    fixture_t *f = *state;
    uint64_t first = 0;
    for (int i = 0; i < 150; i++) {
        uint64_t s = append_pp(f->q, i, "ep-a", 120);
        if (i == 0)
            first = s;
    }
    batch_limits_t l = pp_limits(500, 0); /* above the service's 100: clamped */
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 100);
    assert_ptr_equal(b.rules, service_rules(EVREC_SERVICE_PINPOINT));
    assert_consecutive(&b, first);
    assert_string_equal(b.events[0].event_id, "ev-0000");
    assert_string_equal(b.events[99].event_id, "ev-0099");
    assert_int_equal(b.next_seq, first + 100);
    assert_true(b.body_bytes >= encoded_len(f->q, &b));

    /* from next_seq: the rest */
    l.from_seq = b.next_seq;
    batch_t rest;
    assert_int_equal(batch_next(f->q, &l, &rest), EVREC_OK);
    assert_int_equal(rest.n, 50);
    assert_consecutive(&rest, first + 100);
    batch_free(&rest);
    batch_free(&b);

    /* a smaller count, and 0 meaning the service's limit */
    l = pp_limits(7, 0);
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 7);
    batch_free(&b);
    l = pp_limits(0, 0);
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 100);
    batch_free(&b);
    assert_int_equal(b.n, 0);
    assert_null(b.events);
}

static void size_limit_counts_profiles_once(void **state)
{
    fixture_t *f = *state;
    char profile[1200];
    snprintf(profile, sizeof profile, "{\"Attributes\":{\"blob\":[\"%01100d\"]}}", 0);
    size_t plen = strlen(profile);
    assert_int_equal(queue_endpoint_put(f->q, "ep-a", profile, plen), EVREC_OK);
    assert_int_equal(queue_endpoint_put(f->q, "ep-b", profile, plen), EVREC_OK);
    uint64_t first = append_pp(f->q, 0, "ep-a", 200);
    for (int i = 1; i < 40; i++)
        append_pp(f->q, i, i % 2 ? "ep-b" : "ep-a", 200);

    /* room for both profiles and 20.5 events: counting the profile with every event would
     * stop after 4 */
    size_t ev_bytes = wire_pinpoint_event_bytes("ev-0000", 200);
    size_t max = WIRE_PINPOINT_BODY_BYTES + 2 * wire_pinpoint_endpoint_bytes("ep-a", plen) +
                 20 * ev_bytes + ev_bytes / 2;
    batch_limits_t l = pp_limits(100, max);
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 20);
    assert_consecutive(&b, first);
    assert_true(b.body_bytes <= max);
    assert_true(b.body_bytes + ev_bytes > max); /* the next one would not fit */
    assert_int_equal(b.next_seq, first + 20);
    for (size_t i = 0; i < b.n; i++)
        assert_int_equal(b.events[i].profile_len, plen);
    size_t len = encoded_len(f->q, &b);
    assert_true(len <= b.body_bytes);
    assert_true(b.body_bytes - len <= 3); /* one separator too many per map */
    batch_free(&b);

    /* an endpoint without a stored profile is sent with {} */
    append_pp(f->q, 99, "ep-none", 200);
    l = pp_limits(100, 0);
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 41);
    assert_string_equal(b.events[40].endpoint_id, "ep-none");
    assert_int_equal(b.events[40].profile_len, 2);
    len = encoded_len(f->q, &b);
    assert_true(len <= b.body_bytes && b.body_bytes - len <= 4);
    batch_free(&b);
}

static void several_endpoints_in_order(void **state)
{
    fixture_t *f = *state;
    const char *eps[] = { "ep-a", "ep-b", "ep-a", "ep-c", "ep-b", "ep-d", "ep-a" };
    uint64_t seqs[7];
    for (int i = 0; i < 7; i++)
        seqs[i] = append_pp(f->q, i, eps[i], 100);
    batch_limits_t l = pp_limits(100, 0);
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 7);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(b.events[i].seq, seqs[i]);
        assert_string_equal(b.events[i].endpoint_id, eps[i]);
        assert_int_equal(b.events[i].created_ms, 1763800000000LL + i);
        assert_null(b.events[i].fragment); /* not copied out of the store */
        assert_string_equal(b.events[i].session_id, "");
    }
    /* the fragments, when the body is built, are byte-for-byte what was stored */
    size_t len = 0;
    char *body = encode_from_store(f->q, &b, &len);
    assert_true(b.body_bytes >= len);
    for (int i = 0; i < 7; i++) {
        char *want = pp_fragment(i, 100);
        assert_int_equal(b.events[i].fragment_len, strlen(want));
        assert_non_null(strstr(body, want));
        free(want);
    }
    cJSON *root = cJSON_Parse(body);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "BatchItem");
    assert_int_equal(cJSON_GetArraySize(items), 4); /* ep-a, ep-b, ep-c, ep-d */
    assert_string_equal(items->child->string, "ep-a");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(items, "ep-a"), "Events");
    assert_int_equal(cJSON_GetArraySize(a), 3);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(a, "ev-0006"));
    cJSON_Delete(root);
    port_free(body);
    batch_free(&b);
}

static void duplicate_id_waits(void **state)
{
    fixture_t *f = *state;
    rec_t r = { EVREC_SERVICE_PINPOINT, 1, "same", "ep-a", NULL, NULL,
                "{\"EventType\":\"a\",\"Timestamp\":\"2026-11-22T10:00:00Z\"}" };
    uint64_t s1 = append(f->q, &r);
    r.endpoint_id = "ep-b"; /* same id, other endpoint: fine */
    append(f->q, &r);
    r.endpoint_id = "ep-a"; /* same pair: next request */
    uint64_t s3 = append(f->q, &r);
    batch_limits_t l = pp_limits(100, 0);
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.events[0].seq, s1);
    assert_int_equal(b.next_seq, s3);
    batch_free(&b);
}

static void oversize_event_alone(void **state)
{
    fixture_t *f = *state;
    uint64_t s1 = append_pp(f->q, 1, "ep-a", 5000);
    uint64_t s2 = append_pp(f->q, 2, "ep-a", 5000);
    batch_limits_t l = pp_limits(100, 1000);
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.events[0].seq, s1);
    assert_true(b.body_bytes > 1000);
    assert_int_equal(b.next_seq, s2);
    l.from_seq = b.next_seq;
    batch_free(&b);
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.events[0].seq, s2);
    batch_free(&b);
}

static uint64_t append_pz(evrec_queue_t *q, int i, const char *user, const char *session);

/* Each backend takes the shapes it carries, in queue order: the streams take both (and up to
 * 500 events, without the (endpoint, event id) rule), Pinpoint and Personalize their own. */
static void backends_take_their_shapes(void **state)
{
    fixture_t *f = *state;
    uint64_t seqs[8];
    for (int i = 0; i < 8; i++)
        seqs[i] = i % 3 == 1 ? append_pz(f->q, i, "u", "s") : append_pp(f->q, i, "ep-a", 100);
    struct {
        evrec_service_t svc;
        size_t n;
    } want[] = { { EVREC_SERVICE_KINESIS, 8 }, { EVREC_SERVICE_FIREHOSE, 8 },
                 { EVREC_SERVICE_PINPOINT, 5 }, { EVREC_SERVICE_PERSONALIZE, 3 } };
    for (size_t w = 0; w < 4; w++) {
        batch_limits_t l = { 0 };
        l.rules = service_rules(want[w].svc);
        batch_t b;
        assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
        assert_int_equal(b.n, want[w].n);
        for (size_t i = 1; i < b.n; i++)
            assert_true(b.events[i].seq > b.events[i - 1].seq);
        for (size_t i = 0; i < b.n; i++)
            assert_true(service_carries(service_get(want[w].svc), b.events[i].shape));
        if (want[w].n == 8)
            for (size_t i = 0; i < 8; i++)
                assert_int_equal(b.events[i].seq, seqs[i]);
        batch_free(&b);
    }
    /* 600 queued: a stream batch stops at 500 */
    for (int i = 0; i < 592; i++)
        append_pp(f->q, 100 + i, "ep-b", 50);
    batch_limits_t l = { 0 };
    l.rules = service_rules(EVREC_SERVICE_KINESIS);
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 500);
    batch_free(&b);
    l.max_events = 37; /* configured lower */
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 37);
    batch_free(&b);
}

static void expired_and_foreign_skipped(void **state)
{
    fixture_t *f = *state;
    const char *frag = "{\"EventType\":\"a\",\"Timestamp\":\"2026-11-22T10:00:00Z\"}";
    rec_t r = { EVREC_SERVICE_PINPOINT, 1000, "old-1", "ep-a", NULL, NULL, frag };
    append(f->q, &r);
    r.created_ms = 2000;
    r.event_id = "old-2";
    append(f->q, &r);
    rec_t pz = { EVREC_SERVICE_PERSONALIZE, 5000, "pz", "ep-a", "s", "u",
                 "{\"eventType\":\"click\",\"sentAt\":1}" };
    uint64_t pz_seq = append(f->q, &pz);
    r.created_ms = 3000;
    r.event_id = "new-1";
    uint64_t s3 = append(f->q, &r);
    r.created_ms = 2500; /* exactly at the cutoff: kept */
    r.event_id = "new-2";
    append(f->q, &r);
    batch_limits_t l = pp_limits(100, 0);
    l.expire_before_ms = 2500;
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.events[0].seq, s3);
    assert_string_equal(b.events[0].event_id, "new-1");
    assert_string_equal(b.events[1].event_id, "new-2");
    batch_free(&b);
    /* without a cutoff everything Pinpoint is taken, still not the Personalize record */
    l.expire_before_ms = 0;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 4);
    for (size_t i = 0; i < b.n; i++)
        assert_true(b.events[i].seq != pz_seq);
    batch_free(&b);
}

static uint64_t append_pz(evrec_queue_t *q, int i, const char *user, const char *session)
{
    char id[32], frag[128];
    snprintf(id, sizeof id, "pz-%03d", i);
    snprintf(frag, sizeof frag, "{\"eventId\":\"%s\",\"eventType\":\"click\",\"sentAt\":%d}", id,
             1763800000 + i);
    rec_t r = { EVREC_SERVICE_PERSONALIZE, 1763800000000LL + i, id, "ep-a", session, user, frag };
    return append(q, &r);
}

typedef struct stream {
    const char *user, *session;
    uint64_t seqs[30];
    size_t n;
} stream_t;

/* The next Personalize batch is exactly `want` (its first n, from its index `from`), in
 * order; then it is deleted as delivered. */
static void take(evrec_queue_t *q, const stream_t *want, size_t from, size_t n)
{
    batch_limits_t l = { 0 };
    l.rules = service_rules(EVREC_SERVICE_PERSONALIZE);
    l.max_events = 50; /* clamped to 10 */
    batch_t b;
    assert_int_equal(batch_next(q, &l, &b), EVREC_OK);
    assert_ptr_equal(b.rules, service_rules(EVREC_SERVICE_PERSONALIZE));
    assert_int_equal(b.n, n);
    uint64_t seqs[10];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(b.events[i].seq, want->seqs[from + i]);
        assert_string_equal(b.events[i].user_id, want->user);
        assert_string_equal(b.events[i].session_id, want->session);
        seqs[i] = b.events[i].seq;
    }
    /* the body it makes is within the estimate */
    size_t len = 0;
    char *body = encode_from_store(q, &b, &len);
    assert_true(len <= b.body_bytes);
    port_free(body);
    batch_free(&b);
    assert_int_equal(queue_delete(q, seqs, n, NULL, 0), EVREC_OK);
}

static void personalize_one_stream(void **state)
{
    fixture_t *f = *state;
    stream_t st[4] = { { "u1", "s1", { 0 }, 0 },
                       { "u1", "s2", { 0 }, 0 },  /* same user, other session */
                       { "", "s1", { 0 }, 0 },    /* same session, no user */
                       { "u2", "s9", { 0 }, 0 } };
    for (int i = 0; i < 30; i++) {
        int w = i % 2 == 0 && st[0].n < 14 ? 0 : i % 3 == 0 ? 1 : i % 5 == 0 ? 2 : 3;
        st[w].seqs[st[w].n++] = append_pz(f->q, i, st[w].user, st[w].session);
    }
    assert_int_equal(st[0].n, 14);
    /* the oldest event's stream first, at most 10, skipping the others in between */
    take(f->q, &st[0], 0, 10);
    /* then whichever stream holds the oldest remaining event: i = 1, 3, 5 */
    take(f->q, &st[3], 0, st[3].n);
    take(f->q, &st[1], 0, st[1].n);
    take(f->q, &st[2], 0, st[2].n);
    take(f->q, &st[0], 10, 4);
    assert_int_equal(queue_count(f->q), 0);
}

static void split_moves_the_tail(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(queue_endpoint_put(f->q, "ep-b", "{\"OptOut\":\"NONE\"}", 17), EVREC_OK);
    uint64_t first = append_pp(f->q, 0, "ep-a", 150);
    for (int i = 1; i < 10; i++)
        append_pp(f->q, i, i < 6 ? "ep-a" : "ep-b", 150);
    batch_limits_t l = pp_limits(100, 0);
    batch_t b, tail;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 10);
    uint64_t after = b.next_seq;
    assert_int_equal(batch_split(&b, 4, &tail), EVREC_OK);
    assert_int_equal(b.n, 4);
    assert_int_equal(tail.n, 6);
    assert_ptr_equal(tail.rules, service_rules(EVREC_SERVICE_PINPOINT));
    assert_consecutive(&b, first);
    assert_consecutive(&tail, first + 4);
    assert_string_equal(tail.events[0].event_id, "ev-0004");
    assert_int_equal(tail.next_seq, after);
    assert_int_equal(b.next_seq, first + 4);

    /* each half's estimate is what batching exactly those events gives */
    batch_t fresh;
    l = pp_limits(4, 0);
    assert_int_equal(batch_next(f->q, &l, &fresh), EVREC_OK);
    assert_int_equal(b.body_bytes, fresh.body_bytes);
    batch_free(&fresh);
    l = pp_limits(6, 0);
    l.from_seq = first + 4;
    assert_int_equal(batch_next(f->q, &l, &fresh), EVREC_OK);
    assert_int_equal(tail.body_bytes, fresh.body_bytes);
    batch_free(&fresh);

    /* split again (bisection), down to one event */
    batch_t t2;
    assert_int_equal(batch_split(&tail, 5, &t2), EVREC_OK);
    assert_int_equal(t2.n, 1);
    assert_int_equal(t2.events[0].seq, first + 9);
    assert_true(t2.body_bytes >= encoded_len(f->q, &t2));
    batch_free(&t2);
    /* at == n leaves an empty tail; beyond n is refused */
    assert_int_equal(batch_split(&tail, tail.n, &t2), EVREC_OK);
    assert_int_equal(t2.n, 0);
    assert_int_equal(t2.body_bytes, 0);
    batch_free(&t2);
    assert_int_equal(batch_split(&tail, tail.n + 1, &t2), EVREC_E_INVALID);
    assert_int_equal(batch_split(NULL, 0, &t2), EVREC_E_INVALID);
    assert_int_equal(batch_split(&tail, 0, NULL), EVREC_E_INVALID);
    /* the batches share the ids' storage: the first one freed leaves the others' ids whole */
    assert_int_equal(batch_split(&tail, 2, &t2), EVREC_OK);
    batch_free(&b);
    batch_free(&tail);
    assert_int_equal(t2.n, 3);
    assert_string_equal(t2.events[0].event_id, "ev-0006");
    assert_string_equal(t2.events[2].endpoint_id, "ep-b");
    batch_free(&t2);
    batch_free(NULL);
}

/* Events that left the store after the batch was taken are dropped from it when the body is
 * built; with none left the callback is not called. */
static int count_calls(void *user, batch_t *b)
{
    (void)b;
    (*(int *)user)++;
    return 7; /* handed back as is */
}

static void fragments_of_events_gone_meanwhile(void **state)
{
    fixture_t *f = *state;
    uint64_t seqs[6];
    for (int i = 0; i < 6; i++)
        seqs[i] = append_pp(f->q, i, i < 3 ? "ep-a" : "ep-b", 120);
    batch_limits_t l = pp_limits(100, 0);
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 6);
    size_t before = b.body_bytes;
    uint64_t gone[3] = { seqs[0], seqs[2], seqs[3] };
    assert_int_equal(queue_delete(f->q, gone, 3, NULL, 0), EVREC_OK);
    size_t len = 0;
    char *body = encode_from_store(f->q, &b, &len);
    assert_int_equal(b.n, 3);
    assert_int_equal(b.events[0].seq, seqs[1]);
    assert_int_equal(b.events[1].seq, seqs[4]);
    assert_int_equal(b.events[2].seq, seqs[5]);
    assert_string_equal(b.events[1].event_id, "ev-0004");
    assert_true(b.body_bytes < before && b.body_bytes >= len);
    assert_null(strstr(body, "ev-0000"));
    assert_non_null(strstr(body, "\"ev-0001\":{"));
    assert_request_valid("pinpoint", body);
    port_free(body);

    int calls = 0;
    assert_int_equal(batch_with_fragments(f->q, &b, count_calls, &calls), 7);
    assert_int_equal(calls, 1);
    uint64_t rest[3] = { seqs[1], seqs[4], seqs[5] };
    assert_int_equal(queue_delete(f->q, rest, 3, NULL, 0), EVREC_OK);
    assert_int_equal(batch_with_fragments(f->q, &b, count_calls, &calls), EVREC_E_NOT_FOUND);
    assert_int_equal(calls, 1);
    assert_int_equal(b.n, 0);
    assert_int_equal(batch_with_fragments(NULL, &b, count_calls, &calls), EVREC_E_INVALID);
    assert_int_equal(batch_with_fragments(f->q, &b, NULL, NULL), EVREC_E_INVALID);
    batch_free(&b);
}

/* Records of the first format (no NUL after the fragment) are still batched and encoded. */
static int check_fragments(void *user, batch_t *b)
{
    const char *const *want = user;
    for (size_t i = 0; i < b->n; i++) {
        assert_non_null(b->events[i].fragment);
        assert_string_equal(b->events[i].fragment, want[i]);
    }
    return EVREC_OK;
}

static void format_one_records(void **state)
{
    fixture_t *f = *state;
    char *frags[3];
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "old-%d", i);
        frags[i] = pp_fragment(i, 90);
        evrec_record_view_t v = { 0 };
        v.shape = RECORD_SHAPE_PINPOINT;
        v.created_ms = 1763800000000LL;
        v.event_id = id;
        v.event_id_len = strlen(id);
        v.endpoint_id = "ep-a";
        v.endpoint_id_len = 4;
        v.session_id = v.user_id = "";
        v.fragment = frags[i];
        v.fragment_len = strlen(frags[i]);
        uint8_t buf[512];
        size_t n = evrec_record_encode(&v, buf);
        if (i != 1) { /* the middle one stays in the current format */
            buf[0] = 1;
            n--; /* format 1 has no NUL after the fragment */
        }
        assert_int_equal(queue_append(f->q, buf, n, 0, NULL), EVREC_OK);
    }
    batch_limits_t l = pp_limits(100, 0);
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 3);
    assert_int_equal(batch_with_fragments(f->q, &b, check_fragments, frags), EVREC_OK);
    size_t len = 0;
    char *body = encode_from_store(f->q, &b, &len);
    assert_request_valid("pinpoint", body);
    port_free(body);
    batch_free(&b);
    for (int i = 0; i < 3; i++)
        free(frags[i]);
}

/* batch_next_then: the body can be built in the scan's own read transaction, with every
 * fragment in place; the batch is the one batch_next takes, the callback's code comes back,
 * and the fragments are cleared afterwards. A record of the first format (its fragment not
 * NUL-ended in the store) leaves it to batch_with_fragments. */
typedef struct then_seen {
    const char *const *want;
    int calls;
    int rc;
} then_seen_t;

static int then_check(void *user, batch_t *b)
{
    then_seen_t *t = user;
    t->calls++;
    check_fragments((void *)t->want, b);
    return t->rc;
}

static void next_then_builds_in_the_scan(void **state)
{
    fixture_t *f = *state;
    char *frags[4];
    for (int i = 0; i < 4; i++) {
        frags[i] = pp_fragment(i, 90 + (size_t)i);
        char id[32];
        snprintf(id, sizeof id, "ev-%04d", i);
        rec_t r = { EVREC_SERVICE_PINPOINT, 1763800000000LL + i, id, "ep-a", NULL, NULL,
                    frags[i] };
        append(f->q, &r);
    }
    batch_limits_t l = pp_limits(3, 0);
    batch_t plain, b;
    assert_int_equal(batch_next(f->q, &l, &plain), EVREC_OK);
    then_seen_t t = { (const char *const *)frags, 0, EVREC_E_EVENT_SIZE };
    int ran = -1, rc = -1;
    assert_int_equal(batch_next_then(f->q, &l, &b, then_check, &t, &ran, &rc), EVREC_OK);
    assert_int_equal(ran, 1);
    assert_int_equal(t.calls, 1);
    assert_int_equal(rc, EVREC_E_EVENT_SIZE);
    assert_int_equal(b.n, 3);
    assert_int_equal(b.n, plain.n);
    assert_true(b.next_seq == plain.next_seq);
    for (size_t i = 0; i < b.n; i++) {
        assert_true(b.events[i].seq == plain.events[i].seq);
        assert_null(b.events[i].fragment);
    }
    batch_free(&b);
    batch_free(&plain);
    assert_int_equal(batch_next_then(f->q, &l, &b, then_check, &t, NULL, &rc), EVREC_E_INVALID);

    /* a first-format record among them: not built in the scan */
    evrec_record_view_t v = { 0 };
    v.shape = RECORD_SHAPE_PINPOINT;
    v.created_ms = 1763800000000LL;
    v.event_id = "old-0";
    v.event_id_len = 5;
    v.endpoint_id = "ep-b";
    v.endpoint_id_len = 4;
    v.session_id = v.user_id = "";
    v.fragment = frags[0];
    v.fragment_len = strlen(frags[0]);
    uint8_t buf[512];
    size_t n = evrec_record_encode(&v, buf);
    buf[0] = 1;
    assert_int_equal(queue_append(f->q, buf, n - 1, 0, NULL), EVREC_OK);
    l = pp_limits(100, 0);
    t.calls = 0;
    assert_int_equal(batch_next_then(f->q, &l, &b, then_check, &t, &ran, &rc), EVREC_OK);
    assert_int_equal(b.n, 5);
    assert_int_equal(ran, 0);
    assert_int_equal(t.calls, 0);
    assert_int_equal(rc, EVREC_OK);
    for (size_t i = 0; i < b.n; i++)
        assert_null(b.events[i].fragment);
    batch_free(&b);
    for (int i = 0; i < 4; i++)
        free(frags[i]);
}

/* The index finds events by (endpoint, event id) or by endpoint, whatever the ids. */
static void index_lookups(void **state)
{
    (void)state;
    static char ids[BATCH_INDEX_MAX][40], eps[BATCH_INDEX_MAX][16];
    batch_event_t ev[BATCH_INDEX_MAX];
    memset(ev, 0, sizeof ev);
    for (size_t i = 0; i < BATCH_INDEX_MAX; i++) {
        /* long shared prefixes and suffixes, so the hash sees little difference */
        snprintf(ids[i], sizeof ids[i], "event-%03zu-0000000000000000000000000", i);
        snprintf(eps[i], sizeof eps[i], "ep-%zu", i % 5);
        ev[i].event_id = ids[i];
        ev[i].endpoint_id = eps[i];
    }
    batch_t b = { 0 };
    b.rules = service_rules(EVREC_SERVICE_PINPOINT);
    b.events = ev;
    b.n = b.cap = BATCH_INDEX_MAX;
    batch_index_t pairs, endpoints;
    assert_int_equal(batch_index_init(&pairs, &b, 1), EVREC_OK);
    assert_int_equal(batch_index_init(&endpoints, &b, 0), EVREC_OK);
    for (size_t i = 0; i < b.n; i++) {
        assert_int_equal(batch_index_add(&pairs, i), -1);
        long first = batch_index_add(&endpoints, i);
        assert_int_equal(first, i < 5 ? -1 : (long)(i % 5));
    }
    for (size_t i = 0; i < b.n; i++) {
        assert_int_equal(batch_index_find(&pairs, eps[i], ids[i]), (long)i);
        assert_int_equal(batch_index_add(&pairs, i), (long)i);
        assert_int_equal(batch_index_find(&endpoints, eps[i], NULL), (long)(i % 5));
    }
    assert_int_equal(batch_index_find(&pairs, "ep-1", ids[0]), -1); /* id under another endpoint */
    assert_int_equal(batch_index_find(&pairs, eps[0], "event-x"), -1);
    assert_int_equal(batch_index_find(&endpoints, "ep-9", NULL), -1);
    assert_int_equal(batch_index_find(&pairs, NULL, ids[0]), -1);
    b.n = b.cap = BATCH_INDEX_MAX + 1;
    assert_int_equal(batch_index_init(&pairs, &b, 1), EVREC_E_INVALID);
}

static void from_seq_starts_there(void **state)
{
    fixture_t *f = *state;
    uint64_t seqs[6];
    for (int i = 0; i < 6; i++)
        seqs[i] = append_pp(f->q, i, "ep-a", 80);
    batch_limits_t l = pp_limits(2, 0);
    l.from_seq = seqs[3];
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.events[0].seq, seqs[3]);
    assert_int_equal(b.events[1].seq, seqs[4]);
    assert_int_equal(b.next_seq, seqs[5]);
    batch_free(&b);
    l.from_seq = seqs[5] + 1;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 0);
    batch_free(&b);
}

/* Events made by the real builder, through the store and the batcher, make request bodies
 * that botocore's model accepts (the path the flusher takes, minus the network). */
static uint64_t record_event(evrec_queue_t *q, evrec_event_t *ev, const event_context_t *ctx)
{
    uint8_t *rec = NULL;
    size_t len = 0;
    int truncated = 0;
    char err[256] = "";
    int rc = event_encode_record(ev, ctx, &rec, &len, &truncated, err, sizeof err);
    if (rc != EVREC_OK)
        print_error("event_encode_record: %s\n", err);
    assert_int_equal(rc, EVREC_OK);
    uint64_t seq = 0;
    assert_int_equal(queue_append(q, rec, len, truncated, &seq), EVREC_OK);
    port_free(rec);
    evrec_event_free(ev);
    return seq;
}

static void assert_request_valid(const char *service, const char *body)
{
    char *why = NULL;
    int rc = tu_validate_request(service, "0123456789abcdef0123456789abcdef", body, &why);
    if (rc != 0)
        print_error("botocore says: %s\nbody: %s\n", why ? why : "", body);
    free(why);
    assert_int_equal(rc, 0);
}

static void built_events_make_valid_requests(void **state)
{
    fixture_t *f = *state;
    const char *profile = "{\"ChannelType\":\"GCM\",\"Demographic\":{\"Platform\":\"linux\"},"
                          "\"User\":{\"UserId\":\"u-1\"}}";
    assert_int_equal(queue_endpoint_put(f->q, "device-1", profile, strlen(profile)), EVREC_OK);
    event_context_t pp = { .preferred_shape = RECORD_SHAPE_PINPOINT, .now_ms = 1763805600000LL,
                           .endpoint_id = "device-1", .session_id = "sess-1",
                           .session_start_ms = 1763805500000LL, .session_duration_ms = -1 };
    for (int i = 0; i < 5; i++) {
        evrec_event_t *ev = NULL;
        assert_int_equal(evrec_event_new(&ev, i == 0 ? "_session.start" : "level.done"), EVREC_OK);
        assert_int_equal(evrec_event_set_attribute(ev, "level", "dungeon \"7\""), EVREC_OK);
        assert_int_equal(evrec_event_set_metric(ev, "score", 1234.5 + i), EVREC_OK);
        if (i == 3)
            assert_int_equal(evrec_event_set_endpoint_id(ev, "gateway-child-2"), EVREC_OK);
        record_event(f->q, ev, &pp);
    }
    batch_limits_t l = pp_limits(100, 0);
    batch_t b;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 5);
    size_t len = 0;
    char *body = encode_from_store(f->q, &b, &len);
    assert_true(len <= b.body_bytes);
    assert_non_null(strstr(body, "\"gateway-child-2\":{\"Endpoint\":{}"));
    assert_request_valid("pinpoint", body);
    port_free(body);
    uint64_t seqs[5];
    for (size_t i = 0; i < 5; i++)
        seqs[i] = b.events[i].seq;
    batch_free(&b);
    assert_int_equal(queue_delete(f->q, seqs, 5, NULL, 0), EVREC_OK);

    event_context_t pz = { .preferred_shape = RECORD_SHAPE_PERSONALIZE, .now_ms = 1763805600000LL,
                           .endpoint_id = "device-1", .session_id = "sess-1",
                           .session_start_ms = 1763805500000LL, .session_duration_ms = -1,
                           .user_id = "user-42" };
    for (int i = 0; i < 3; i++) {
        evrec_event_t *ev = NULL;
        assert_int_equal(evrec_event_new(&ev, "watch"), EVREC_OK);
        assert_int_equal(evrec_event_set_item_id(ev, "movie-9"), EVREC_OK);
        assert_int_equal(evrec_event_set_value(ev, 4.5), EVREC_OK);
        assert_int_equal(evrec_event_set_properties(ev, "{\"numberOfRatings\":\"12\"}"), EVREC_OK);
        assert_int_equal(evrec_event_add_impression(ev, "movie-9"), EVREC_OK);
        assert_int_equal(evrec_event_add_impression(ev, "movie-3"), EVREC_OK);
        record_event(f->q, ev, &pz);
    }
    l.rules = service_rules(EVREC_SERVICE_PERSONALIZE);
    l.max_events = 10;
    assert_int_equal(batch_next(f->q, &l, &b), EVREC_OK);
    assert_int_equal(b.n, 3);
    assert_string_equal(b.events[0].user_id, "user-42");
    assert_string_equal(b.events[0].session_id, "sess-1");
    body = encode_from_store(f->q, &b, &len);
    assert_true(len <= b.body_bytes);
    assert_request_valid("personalize", body);
    port_free(body);
    batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(empty_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(count_limit_and_clamp, setup, teardown),
        cmocka_unit_test_setup_teardown(size_limit_counts_profiles_once, setup, teardown),
        cmocka_unit_test_setup_teardown(several_endpoints_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicate_id_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(oversize_event_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_and_foreign_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(backends_take_their_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(personalize_one_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(split_moves_the_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(from_seq_starts_there, setup, teardown),
        cmocka_unit_test_setup_teardown(fragments_of_events_gone_meanwhile, setup, teardown),
        cmocka_unit_test_setup_teardown(format_one_records, setup, teardown),
        cmocka_unit_test_setup_teardown(next_then_builds_in_the_scan, setup, teardown),
        cmocka_unit_test(index_lookups),
        cmocka_unit_test_setup_teardown(built_events_make_valid_requests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
