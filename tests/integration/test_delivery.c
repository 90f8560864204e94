/*
 * Delivery end to end: the flusher over a real queue, against tools/fake_endpoint.py on
 * 127.0.0.1. The fake recomputes every signature with botocore and validates every body
 * against botocore's service model, so "accepted" below means a correct request.
 *
 * Most tests drive the internal flusher API over a queue; the last ones go through the public
 * API only (evrec_open ... evrec_close). One fake serves the whole program; each test resets it
 * (POST /_fake/reset) and sets its faults with POST /_fake/config. Backoff is 10 ms base /
 * 50 ms cap so retries are fast.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flusher.h"
#include "port.h"
#include "queue.h"
#include "record.h"
#include "testutil.h"

#define ACCESS_KEY "AKIDEXAMPLE"
#define SECRET_KEY "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define APP_ID "app-0123456789"
#define TRACKER "tracker-0123"
#define MAX_DELIVERIES 2048

static tu_endpoint_t g_ep;

/* -- delivery callback collector ---------------------------------------------------------- */

typedef struct delivery_rec {
    char event_id[64];
    char endpoint_id[64];
    evrec_outcome_t outcome;
    int status;
    char reason[600];
} delivery_rec_t;

typedef struct deliveries {
    pthread_mutex_t mu;
    delivery_rec_t recs[MAX_DELIVERIES];
    size_t n;
} deliveries_t;

static void on_delivery(void *user, const evrec_delivery_t *d)
{
    deliveries_t *ds = user;
    pthread_mutex_lock(&ds->mu);
    if (ds->n < MAX_DELIVERIES) {
        delivery_rec_t *r = &ds->recs[ds->n++];
        snprintf(r->event_id, sizeof r->event_id, "%s", d->event_id ? d->event_id : "");
        snprintf(r->endpoint_id, sizeof r->endpoint_id, "%s",
                 d->endpoint_id ? d->endpoint_id : "");
        r->outcome = d->outcome;
        r->status = d->status_code;
        snprintf(r->reason, sizeof r->reason, "%s", d->reason ? d->reason : "");
    }
    pthread_mutex_unlock(&ds->mu);
}

static size_t count_outcome(deliveries_t *ds, evrec_outcome_t o)
{
    size_t n = 0;
    pthread_mutex_lock(&ds->mu);
    for (size_t i = 0; i < ds->n; i++)
        n += ds->recs[i].outcome == o;
    pthread_mutex_unlock(&ds->mu);
    return n;
}

static const delivery_rec_t *find_delivery(deliveries_t *ds, const char *event_id)
{
    for (size_t i = 0; i < ds->n; i++)
        if (strcmp(ds->recs[i].event_id, event_id) == 0)
            return &ds->recs[i];
    return NULL;
}

/* -- fixture -------------------------------------------------------------------------------- */

typedef struct fx {
    char *dir;
    evrec_queue_t *q;
    flusher_config_t cfg;
    deliveries_t ds;
    char url[64];
} fx_t;

static uint32_t half_rand(void *user)
{
    (void)user;
    return 0x80000000u;
}

static void fake_post(const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", g_ep.url, path);
    long status = 0;
    char *r = tu_http("POST", url, body, &status);
    assert_non_null(r);
    assert_int_equal(status, 200);
    free(r);
}

static void fake_config(const char *json)
{
    fake_post("/_fake/config", json);
}

static cJSON *fake_get(const tu_endpoint_t *ep, const char *path)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", ep->url, path);
    long status = 0;
    char *r = tu_http("GET", url, NULL, &status);
    assert_non_null(r);
    assert_int_equal(status, 200);
    cJSON *j = cJSON_Parse(r);
    free(r);
    assert_non_null(j);
    return j;
}

static void open_queue(fx_t *x)
{
    char err[256] = "";
    int rc = queue_open(&x->q, x->dir, NULL, err, sizeof err); /* the defaults */
    if (rc)
        fprintf(stderr, "queue_open: %s\n", err);
    assert_int_equal(rc, EVREC_OK);
}

static void base_config(fx_t *x, evrec_service_t svc, const char *url)
{
    flusher_config_t *c = &x->cfg;
    memset(c, 0, sizeof *c);
    snprintf(x->url, sizeof x->url, "%s", url);
    c->service = svc;
    c->application_id = APP_ID;
    c->tracking_id = TRACKER;
    c->region = "us-east-1";
    c->endpoint_url = x->url;
    c->creds.access_key_id = ACCESS_KEY;
    c->creds.secret_access_key = SECRET_KEY;
    c->creds.no_environment = 1;
    c->transport.connect_timeout_ms = 2000;
    c->transport.request_timeout_ms = 10000;
    c->backoff.base_ms = 10;
    c->backoff.cap_ms = 50;
    c->flush_interval_ms = 600000; /* only explicit flushes, unless a test says otherwise */
    c->flush_threshold_events = 100000;
    c->on_delivery = on_delivery;
    c->delivery_user = &x->ds;
    c->rand_fn = half_rand;
}

static int setup(void **state)
{
    fx_t *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    pthread_mutex_init(&x->ds.mu, NULL);
    x->dir = tu_tempdir("delivery");
    open_queue(x);
    base_config(x, EVREC_SERVICE_PINPOINT, g_ep.url);
    fake_post("/_fake/reset", "{}");
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx_t *x = *state;
    if (x->q)
        queue_close(x->q);
    tu_rmtree(x->dir);
    free(x->dir);
    pthread_mutex_destroy(&x->ds.mu);
    free(x);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    return tu_endpoint_start(&g_ep, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    tu_endpoint_stop(&g_ep);
    return 0;
}

static flusher_t *start(fx_t *x)
{
    flusher_t *f = NULL;
    char err[256] = "";
    int rc = flusher_new(&f, x->q, &x->cfg, err, sizeof err);
    if (rc)
        fprintf(stderr, "flusher_new: %s\n", err);
    assert_int_equal(rc, EVREC_OK);
    return f;
}

/* -- events --------------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso8601(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", base, (int)(ms % 1000));
}

typedef struct ev_spec {
    const char *id;
    const char *endpoint;
    const char *type;
    const char *attr, *value; /* optional */
    const char *session, *user;
    int64_t created_ms;       /* 0: now */
    size_t pad;               /* extra attribute bytes, to make big events */
} ev_spec_t;

static void put(fx_t *x, evrec_service_t svc, const ev_spec_t *s)
{
    int64_t created = s->created_ms ? s->created_ms : now_ms();
    cJSON *o = cJSON_CreateObject();
    char iso[32];
    iso8601(created, iso);
    char *pad = NULL;
    if (s->pad) {
        pad = malloc(s->pad + 1);
        memset(pad, 'p', s->pad);
        pad[s->pad] = '\0';
    }
    if (svc == EVREC_SERVICE_PINPOINT) {
        cJSON_AddStringToObject(o, "EventType", s->type);
        cJSON_AddStringToObject(o, "Timestamp", iso);
        cJSON *a = cJSON_AddObjectToObject(o, "Attributes");
        cJSON_AddStringToObject(a, "seq", s->id);
        if (s->attr)
            cJSON_AddStringToObject(a, s->attr, s->value ? s->value : "x");
        for (size_t off = 0; pad && off < s->pad; off += 190) {
            char name[32];
            snprintf(name, sizeof name, "pad%zu", off / 190);
            char chunk[200];
            snprintf(chunk, sizeof chunk, "%.190s", pad + off);
            cJSON_AddStringToObject(a, name, chunk);
        }
        cJSON *m = cJSON_AddObjectToObject(o, "Metrics");
        cJSON_AddNumberToObject(m, "n", 1.5);
    } else {
        cJSON_AddStringToObject(o, "eventId", s->id);
        cJSON_AddStringToObject(o, "eventType", s->type);
        cJSON_AddNumberToObject(o, "sentAt", (double)created / 1000.0);
        if (s->attr) {
            char props[256];
            snprintf(props, sizeof props, "{\"%s\":\"%s\"}", s->attr, s->value ? s->value : "x");
            cJSON_AddStringToObject(o, "properties", props);
        }
    }
    free(pad);
    char *frag = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    evrec_record_view_t v;
    memset(&v, 0, sizeof v);
    v.format = EVREC_RECORD_FORMAT;
    v.shape = (uint8_t)svc; /* Pinpoint and Personalize: the service value is its shape */
    v.created_ms = created;
    v.event_id = s->id;
    v.event_id_len = strlen(s->id);
    v.endpoint_id = s->endpoint;
    v.endpoint_id_len = strlen(s->endpoint);
    v.session_id = s->session ? s->session : "";
    v.session_id_len = strlen(v.session_id);
    v.user_id = s->user ? s->user : "";
    v.user_id_len = strlen(v.user_id);
    v.fragment = frag;
    v.fragment_len = strlen(frag);
    size_t len = evrec_record_size(&v);
    uint8_t *buf = malloc(len);
    assert_int_equal(evrec_record_encode(&v, buf), len);
    assert_int_equal(queue_append(x->q, buf, len, 0, NULL), EVREC_OK);
    free(buf);
    free(frag);
}

/* n Pinpoint events "<prefix>-<i>" of `type` spread over `endpoints` endpoints, each with
 * `pad` extra attribute bytes; event number `special` (-1: none) also gets attribute `attr`. */
static void put_series(fx_t *x, const char *prefix, int n, int endpoints, const char *type,
                       size_t pad, int special, const char *attr)
{
    for (int i = 0; i < n; i++) {
        char id[64], ep[64];
        snprintf(id, sizeof id, "%s-%04d", prefix, i);
        snprintf(ep, sizeof ep, "endpoint-%d", endpoints > 0 ? i % endpoints : 0);
        ev_spec_t s = { .id = id, .endpoint = ep, .type = type, .pad = pad };
        if (i == special)
            s.attr = attr;
        put(x, EVREC_SERVICE_PINPOINT, &s);
    }
}

static void put_many(fx_t *x, const char *prefix, int n, int endpoints)
{
    put_series(x, prefix, n, endpoints, "app.click", 0, -1, NULL);
}

static uint64_t counter(fx_t *x, queue_counter_t c)
{
    queue_stats_t st;
    assert_int_equal(queue_stats(x->q, &st), EVREC_OK);
    return st.counters[c];
}

/* How often each of `prefix`-0000 .. n-1 is in the fake's log; asserts exactly once each and
 * nothing else with that prefix. */
static void assert_log_exactly(const tu_endpoint_t *ep, const char *prefix, int n,
                               const char *skip_id)
{
    cJSON *log = fake_get(ep, "/_fake/log");
    int *seen = calloc((size_t)n, sizeof *seen);
    size_t plen = strlen(prefix);
    cJSON *e;
    cJSON_ArrayForEach(e, log)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(e, "event_id"));
        assert_non_null(id);
        if (strncmp(id, prefix, plen) != 0 || id[plen] != '-')
            continue;
        if (skip_id)
            assert_string_not_equal(id, skip_id);
        int i = atoi(id + plen + 1);
        assert_true(i >= 0 && i < n);
        seen[i]++;
    }
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%04d", prefix, i);
        if (skip_id && strcmp(id, skip_id) == 0) {
            assert_int_equal(seen[i], 0);
            continue;
        }
        if (seen[i] != 1)
            fprintf(stderr, "event %s seen %d times\n", id, seen[i]);
        assert_int_equal(seen[i], 1);
    }
    free(seen);
    cJSON_Delete(log);
}

/* Every request that reached the fake was signed correctly and had a valid body (faults are
 * injected after both checks). */
static void assert_requests_valid(const tu_endpoint_t *ep, int max_events)
{
    cJSON *reqs = fake_get(ep, "/_fake/requests");
    cJSON *r;
    cJSON_ArrayForEach(r, reqs)
    {
        cJSON *ok = cJSON_GetObjectItem(r, "signature_ok");
        if (!cJSON_IsTrue(ok))
            fprintf(stderr, "signature error: %s\n",
                    cJSON_GetStringValue(cJSON_GetObjectItem(r, "signature_error")));
        assert_true(cJSON_IsTrue(ok));
        cJSON *verr = cJSON_GetObjectItem(r, "validation_error");
        if (!cJSON_IsNull(verr))
            fprintf(stderr, "validation error: %s\n", cJSON_GetStringValue(verr));
        assert_true(cJSON_IsNull(verr));
        cJSON *n = cJSON_GetObjectItem(r, "event_count");
        assert_true(cJSON_IsNumber(n));
        assert_true(n->valueint >= 1 && n->valueint <= max_events);
    }
    cJSON_Delete(reqs);
}

static int count_status(const tu_endpoint_t *ep, int status)
{
    cJSON *reqs = fake_get(ep, "/_fake/requests");
    int n = 0;
    cJSON *r;
    cJSON_ArrayForEach(r, reqs)
    {
        cJSON *s = cJSON_GetObjectItem(r, "status");
        n += (status < 0 || (cJSON_IsNumber(s) && s->valueint == status));
    }
    cJSON_Delete(reqs);
    return n;
}

/* -- tests ---------------------------------------------------------------------------------- */

static void test_pinpoint_end_to_end(void **state)
{
    fx_t *x = *state;
    const char *profile = "{\"ChannelType\":\"CUSTOM\",\"Address\":\"device-0\","
                          "\"Demographic\":{\"Platform\":\"linux\",\"Make\":\"acme\"},"
                          "\"User\":{\"UserId\":\"user-0\"}}";
    assert_int_equal(queue_endpoint_put(x->q, "endpoint-0", profile, strlen(profile)),
                     EVREC_OK);
    put_many(x, "pp", 130, 3);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);

    assert_int_equal(queue_count(x->q), 0);
    assert_int_equal(counter(x, QC_DELIVERED), 130);
    assert_int_equal(count_outcome(&x->ds, EVREC_OUTCOME_ACCEPTED), 130);
    assert_log_exactly(&g_ep, "pp", 130, NULL);
    assert_requests_valid(&g_ep, 100);

    /* The profile travelled with endpoint-0's events. */
    cJSON *log = fake_get(&g_ep, "/_fake/log");
    int with_profile = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, log)
    {
        const char *ep = cJSON_GetStringValue(cJSON_GetObjectItem(e, "endpoint_id"));
        if (ep && strcmp(ep, "endpoint-0") == 0) {
            const char *uid = cJSON_GetStringValue(cJSON_GetObjectItem(e, "user_id"));
            assert_non_null(uid);
            assert_string_equal(uid, "user-0");
            with_profile++;
        }
    }
    assert_true(with_profile > 0);
    cJSON_Delete(log);

    evrec_stats_t st;
    memset(&st, 0, sizeof st);
    flusher_stats(f, &st);
    assert_int_equal(st.requests, (uint64_t)count_status(&g_ep, -1));
    assert_true(st.requests >= 2); /* 130 events never fit one request */
    assert_int_equal(st.retries, 0);
    assert_true(st.last_upload_ms > 0);
    assert_int_equal(st.last_error, 0);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

static void test_personalize_end_to_end(void **state)
{
    fx_t *x = *state;
    x->cfg.service = EVREC_SERVICE_PERSONALIZE;
    for (int i = 0; i < 24; i++) {
        char id[64];
        snprintf(id, sizeof id, "pz-%04d", i);
        ev_spec_t s = { .id = id, .endpoint = "endpoint-0", .type = "click",
                        .attr = "color", .value = "blue",
                        .session = (i % 2) ? "session-b" : "session-a",
                        .user = (i % 2) ? "user-b" : "user-a" };
        put(x, EVREC_SERVICE_PERSONALIZE, &s);
    }
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_int_equal(counter(x, QC_DELIVERED), 24);
    assert_log_exactly(&g_ep, "pz", 24, NULL);
    assert_requests_valid(&g_ep, 10);

    cJSON *log = fake_get(&g_ep, "/_fake/log");
    cJSON *e;
    cJSON_ArrayForEach(e, log)
    {
        int i = atoi(cJSON_GetStringValue(cJSON_GetObjectItem(e, "event_id")) + 3);
        const char *sess = cJSON_GetStringValue(cJSON_GetObjectItem(e, "session_id"));
        const char *user = cJSON_GetStringValue(cJSON_GetObjectItem(e, "user_id"));
        assert_non_null(sess);
        assert_non_null(user);
        assert_string_equal(sess, (i % 2) ? "session-b" : "session-a");
        assert_string_equal(user, (i % 2) ? "user-b" : "user-a");
    }
    cJSON_Delete(log);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

static void test_throttle_honours_retry_after(void **state)
{
    fx_t *x = *state;
    fake_config("{\"script\":\"429\",\"retry_after\":1}");
    x->cfg.manual = 1;
    x->cfg.flush_threshold_events = 1;
    put_many(x, "th", 5, 1);
    flusher_t *f = start(x);
    flusher_notify(f);

    uint32_t next = 0;
    assert_int_equal(flusher_poll(f, &next), EVREC_OK);
    assert_int_equal(count_status(&g_ep, 429), 1);
    /* Throttled: nothing deleted, and the wait is at least the Retry-After. */
    assert_int_equal(queue_count(x->q), 5);
    assert_int_equal(counter(x, QC_DELIVERED), 0);
    assert_true(next > 0);
    evrec_stats_t st;
    memset(&st, 0, sizeof st);
    flusher_stats(f, &st);
    assert_int_equal(st.last_error, EVREC_E_THROTTLED);
    assert_int_equal(st.retries, 1);
    assert_true(st.backoff_until_ms >= now_ms() + 800);
    /* Polling during the backoff sends nothing. */
    assert_int_equal(flusher_poll(f, &next), EVREC_OK);
    assert_true(next > 0);
    assert_int_equal(count_status(&g_ep, -1), 1);

    /* Another process sees the status through the store. */
    evrec_stats_t other;
    memset(&other, 0, sizeof other);
    assert_int_equal(flusher_stats_from_store(x->q, &other), EVREC_OK);
    assert_int_equal(other.last_error, EVREC_E_THROTTLED);
    assert_non_null(strstr(other.last_error_message, "429"));
    assert_int_equal(other.requests, 1);
    assert_int_equal(other.retries, 1);
    assert_true(other.backoff_until_ms > 0);

    assert_int_equal(flusher_flush(f, 10000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "th", 5, NULL);

    /* The fake's own clock shows the gap (a lower bound only). */
    cJSON *reqs = fake_get(&g_ep, "/_fake/requests");
    assert_int_equal(cJSON_GetArraySize(reqs), 2);
    double t0 = cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 0), "time")->valuedouble;
    double t1 = cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 1), "time")->valuedouble;
    assert_true(t1 - t0 >= 0.95);
    cJSON_Delete(reqs);

    flusher_stats(f, &st);
    assert_int_equal(st.last_error, 0);
    assert_int_equal(st.backoff_until_ms, 0);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
    memset(&other, 0, sizeof other);
    assert_int_equal(flusher_stats_from_store(x->q, &other), EVREC_OK);
    assert_int_equal(other.last_error, 0);
    assert_int_equal(other.requests, 2);
    assert_true(other.last_upload_ms > 0);
}

static void test_server_errors_and_drops_retried(void **state)
{
    fx_t *x = *state;
    fake_config("{\"script\":\"503,500,drop,502,ok\"}");
    put_many(x, "se", 20, 2);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "se", 20, NULL);
    assert_int_equal(count_status(&g_ep, 503), 1);
    assert_int_equal(count_status(&g_ep, 500), 1);
    assert_int_equal(count_status(&g_ep, 0), 1); /* the dropped connection */
    evrec_stats_t st;
    memset(&st, 0, sizeof st);
    flusher_stats(f, &st);
    /* libcurl itself resends once when a kept-alive connection dies before any answer, so
     * the drop may not reach the flusher: three or four retries, never fewer. `requests`
     * counts what went out, resends included: exactly what the endpoint received. */
    assert_true(st.retries >= 3);
    assert_true(st.requests >= 4);
    assert_int_equal(st.requests, (uint64_t)count_status(&g_ep, -1));
    assert_int_equal(st.last_error, 0);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

static void test_per_event_rejection(void **state)
{
    fx_t *x = *state;
    fake_config("{\"reject_event_type\":[\"app.bad\"]}");
    put_many(x, "ok", 6, 2);
    ev_spec_t bad1 = { .id = "bad-1", .endpoint = "endpoint-0", .type = "app.bad" };
    ev_spec_t bad2 = { .id = "bad-2", .endpoint = "endpoint-1", .type = "app.bad" };
    put(x, EVREC_SERVICE_PINPOINT, &bad1);
    put(x, EVREC_SERVICE_PINPOINT, &bad2);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_int_equal(counter(x, QC_DELIVERED), 6);
    assert_int_equal(counter(x, QC_REJECTED), 2);
    assert_log_exactly(&g_ep, "ok", 6, NULL);
    const delivery_rec_t *d = find_delivery(&x->ds, "bad-1");
    assert_non_null(d);
    assert_int_equal(d->outcome, EVREC_OUTCOME_REJECTED);
    assert_int_equal(d->status, 400);
    assert_non_null(strstr(d->reason, "rejected by this endpoint"));
    assert_non_null(find_delivery(&x->ds, "bad-2"));
    evrec_stats_t st;
    memset(&st, 0, sizeof st);
    flusher_stats(f, &st);
    assert_int_equal(st.last_error, EVREC_E_REJECTED);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

static void test_too_large_splits(void **state)
{
    fx_t *x = *state;
    fake_config("{\"max_body_bytes\":6000}");
    put_series(x, "big", 16, 1, "app.big", 900, -1, NULL);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_int_equal(counter(x, QC_DELIVERED), 16);
    assert_int_equal(counter(x, QC_POISON), 0);
    assert_log_exactly(&g_ep, "big", 16, NULL);
    assert_true(count_status(&g_ep, 413) >= 1);
    /* Every accepted request fitted the limit. */
    cJSON *reqs = fake_get(&g_ep, "/_fake/requests");
    cJSON *r;
    cJSON_ArrayForEach(r, reqs)
    {
        if (cJSON_GetObjectItem(r, "status")->valueint == 202)
            assert_true(cJSON_GetObjectItem(r, "body_bytes")->valueint <= 6000);
    }
    cJSON_Delete(reqs);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

/* After a 413 the flusher keeps to the size that was accepted: the next flush sends no body
 * that large again (before, every later batch started at full size and split again). */
static void test_too_large_remembered(void **state)
{
    fx_t *x = *state;
    fake_config("{\"max_body_bytes\":6000}");
    put_series(x, "big", 16, 1, "app.big", 900, -1, NULL);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    int first = count_status(&g_ep, 413);
    assert_true(first >= 1);
    for (int round = 0; round < 3; round++) {
        char prefix[24];
        snprintf(prefix, sizeof prefix, "again%d", round);
        put_series(x, prefix, 16, 1, "app.big", 900, -1, NULL);
        assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
        assert_log_exactly(&g_ep, prefix, 16, NULL);
    }
    assert_int_equal(count_status(&g_ep, 413), first); /* no 413 after the first flush */
    assert_int_equal(queue_count(x->q), 0);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

/* The learnt size grows back: after 16 batches in a row accepted at it, twice as many events
 * are tried (here the endpoint's limit was raised meanwhile, so they are accepted). */
static void test_too_large_grows_back(void **state)
{
    fx_t *x = *state;
    fake_config("{\"max_body_bytes\":6000}");
    put_series(x, "big", 16, 1, "app.big", 900, -1, NULL);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK); /* learns: 4 events a request */
    fake_config("{\"max_body_bytes\":4194304}");
    fake_post("/_fake/reset", "{}");
    put_series(x, "grow", 16 * 4 + 16, 1, "app.big", 900, -1, NULL);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_log_exactly(&g_ep, "grow", 80, NULL);
    /* 4 events a request (the size that was accepted) until 16 in a row were accepted since
     * the last 413 (some of them in the first flush), then 8 */
    cJSON *reqs = fake_get(&g_ep, "/_fake/requests");
    int fours = 0, eights = 0, prev = 4;
    cJSON *r;
    cJSON_ArrayForEach(r, reqs)
    {
        int n = cJSON_GetObjectItem(r, "event_count")->valueint;
        assert_true(n == 4 || n == 8);
        assert_true(n >= prev);
        prev = n;
        fours += n == 4;
        eights += n == 8;
    }
    cJSON_Delete(reqs);
    assert_true(fours >= 1 && fours <= 16);
    assert_int_equal(4 * fours + 8 * eights, 80);
    assert_true(eights >= 2);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

/* The threshold counts the store's queue: events another process records (here appended
 * straight to the store, so this flusher is never notified) are sent once there are
 * flush_threshold_events of them, not at the (10-minute) interval. */
static void test_threshold_counts_the_store(void **state)
{
    fx_t *x = *state;
    x->cfg.flush_threshold_events = 5;
    flusher_t *f = start(x);
    put_many(x, "th", 4, 1);
    struct timespec pause = { 0, 200 * 1000 * 1000 };
    for (int i = 0; i < 10; i++)
        nanosleep(&pause, NULL);
    assert_int_equal(queue_count(x->q), 4); /* below the threshold: they wait */
    put_many(x, "tz", 1, 1);
    for (int i = 0; i < 100 && queue_count(x->q) > 0; i++)
        nanosleep(&pause, NULL);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "th", 4, NULL);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

/* Another process's view of the delivery state follows within a second, whatever the pace
 * of batches, and names the flusher (pid, since when). */
static void test_status_current_for_others(void **state)
{
    fx_t *x = *state;
    int64_t before = now_ms();
    flusher_t *f = start(x);
    evrec_stats_t other;
    memset(&other, 0, sizeof other);
    assert_int_equal(flusher_stats_from_store(x->q, &other), EVREC_OK); /* written at start */
    assert_int_equal(other.flusher_pid, (int64_t)getpid());
    assert_true(other.flusher_since_ms >= before && other.flusher_since_ms <= now_ms());
    assert_int_equal(other.requests, 0);
    assert_true(queue_flusher_alive(x->q));
    for (int i = 0; i < 3; i++) { /* three requests well within one second */
        char prefix[24];
        snprintf(prefix, sizeof prefix, "st%d", i);
        put_many(x, prefix, 2, 1);
        assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    }
    struct timespec pause = { 0, 100 * 1000 * 1000 };
    for (int i = 0; i < 30; i++) {
        memset(&other, 0, sizeof other);
        assert_int_equal(flusher_stats_from_store(x->q, &other), EVREC_OK);
        if (other.requests == 3)
            break;
        nanosleep(&pause, NULL);
    }
    assert_int_equal(other.requests, 3);
    assert_true(other.last_upload_ms > 0);
    assert_true(other.status_updated_ms >= other.last_upload_ms);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
    assert_false(queue_flusher_alive(x->q));
}

static void test_poison_bisection(void **state)
{
    fx_t *x = *state;
    fake_config("{\"poison_attribute\":[\"poison\"]}");
    put_series(x, "ps", 16, 1, "app.click", 0, 11, "poison");
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_int_equal(counter(x, QC_POISON), 1);
    assert_int_equal(counter(x, QC_DELIVERED), 15);
    assert_log_exactly(&g_ep, "ps", 16, "ps-0011");
    const delivery_rec_t *d = find_delivery(&x->ds, "ps-0011");
    assert_non_null(d);
    assert_int_equal(d->outcome, EVREC_OUTCOME_DROPPED);
    assert_int_equal(strncmp(d->reason, "poison: ", 8), 0);
    assert_non_null(strstr(d->reason, "poison"));
    assert_int_equal(count_outcome(&x->ds, EVREC_OUTCOME_DROPPED), 1);
    /* Bisection, not one request per event: 16 events take at most 2·log2(16)+1 requests. */
    assert_true(count_status(&g_ep, -1) <= 9);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

static int64_t stored_offset(fx_t *x)
{
    char *v = NULL;
    size_t len = 0;
    assert_int_equal(queue_meta_get(x->q, QUEUE_META_CLOCK_OFFSET, &v, &len), EVREC_OK);
    assert_int_equal(len, 8);
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = (u << 8) | (unsigned char)v[i];
    port_free(v);
    return (int64_t)u;
}

static void test_clock_skew_corrected(void **state)
{
    fx_t *x = *state;
    fake_config("{\"clock_skew_ms\":900000}"); /* the service is 15 minutes ahead */
    put_many(x, "sk", 4, 1);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "sk", 4, NULL);
    assert_int_equal(count_status(&g_ep, 403), 1);
    int64_t off = stored_offset(x);
    assert_true(off > 900000 - 3000 && off < 900000 + 3000);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);

    /* A new flusher starts from the persisted offset: no 403 this time. */
    put_many(x, "sk2", 3, 1);
    f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(count_status(&g_ep, 403), 1);
    assert_log_exactly(&g_ep, "sk2", 3, NULL);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);

    /* The other way round: the service is now 15 minutes behind, so the stored offset puts
     * the device half an hour ahead ("not yet current"); corrected again. */
    fake_config("{\"clock_skew_ms\":-900000}");
    put_many(x, "sk3", 2, 1);
    f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(count_status(&g_ep, 403), 2);
    assert_log_exactly(&g_ep, "sk3", 2, NULL);
    off = stored_offset(x);
    assert_true(off > -900000 - 3000 && off < -900000 + 3000);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

/* A device 40 days behind the service (the case the clock offset exists for): the offset is
 * learnt for signing, but age is judged on the device clock the events were stamped with, so
 * nothing recorded a moment ago is "older than 30 days". A move of the offset beyond an hour
 * takes two agreeing answers. */
static void test_device_far_behind_loses_nothing(void **state)
{
    fx_t *x = *state;
    fake_config("{\"clock_skew_ms\":3456000000}"); /* the service is 40 days ahead */
    put_many(x, "fb40", 6, 1);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
    assert_int_equal(counter(x, QC_EXPIRED), 0);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "fb40", 6, NULL);
    assert_int_equal(count_status(&g_ep, 403), 2); /* one answer proposes, a second confirms */
    int64_t off = stored_offset(x);
    assert_true(off > 3456000000 - 3000 && off < 3456000000 + 3000);
}

/* An answer whose Date says 2100 ("Signature expired") expires nothing: expiry never follows a
 * server's word, and the offset moves only once a second answer agrees. */
static void test_forged_date_expires_nothing(void **state)
{
    fx_t *x = *state;
    int64_t to_2100 = 4102444800000ll - now_ms();
    char cfg[96];
    snprintf(cfg, sizeof cfg, "{\"clock_skew_ms\":%lld}", (long long)to_2100);
    fake_config(cfg);
    put_many(x, "fd", 5, 1);
    flusher_t *f = start(x);
    (void)flusher_flush(f, 20000);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
    assert_int_equal(counter(x, QC_EXPIRED), 0);
    /* Every event is either still queued or was delivered (the fake, believing it is 2100,
     * accepts requests signed for 2100), none dropped. */
    assert_int_equal(queue_count(x->q) + counter(x, QC_DELIVERED), 5);
    assert_true(count_status(&g_ep, 403) >= 2);

    /* An offset already stored from such an answer does not expire anything either. */
    fake_config("{\"clock_skew_ms\":0}");
    uint8_t le[8];
    uint64_t u = (uint64_t)to_2100;
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(u >> (8 * i));
    assert_int_equal(queue_meta_put(x->q, QUEUE_META_CLOCK_OFFSET, le, 8), EVREC_OK);
    put_many(x, "fe", 4, 1);
    f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
    assert_int_equal(counter(x, QC_EXPIRED), 0);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "fe", 4, NULL);
}

/* Credentials from a callback: the first session token until the flusher forgets them, then
 * the second (NULL: none), expiring expires_in_ms from the device's now. */
typedef struct token_source {
    int calls;
    const char *first_token, *then_token;
    int64_t expires_in_ms;
} token_source_t;

static int token_cb(void *user, evrec_credentials_t *out)
{
    token_source_t *t = user;
    memset(out, 0, sizeof *out);
    snprintf(out->access_key_id, sizeof out->access_key_id, "%s", ACCESS_KEY);
    snprintf(out->secret_access_key, sizeof out->secret_access_key, "%s", SECRET_KEY);
    const char *token = t->calls == 0 ? t->first_token : t->then_token;
    if (token != NULL)
        snprintf(out->session_token, sizeof out->session_token, "%s", token);
    out->expiration_ms = now_ms() + t->expires_in_ms;
    t->calls++;
    return EVREC_OK;
}

/* Temporary credentials expire on the provider's clock: with the device two hours ahead of
 * the service (offset learnt and stored earlier), credentials valid for another 30 minutes of
 * service time are used, not refused as expired by the device clock. */
static void test_credentials_expire_on_service_clock(void **state)
{
    fx_t *x = *state;
    fake_config("{\"clock_skew_ms\":-7200000}"); /* the service is two hours behind */
    uint8_t le[8];
    uint64_t off = (uint64_t)(int64_t)-7200000;
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(off >> (8 * i));
    assert_int_equal(queue_meta_put(x->q, QUEUE_META_CLOCK_OFFSET, le, 8), EVREC_OK);
    token_source_t cs = { 0, NULL, NULL, -2 * 3600 * 1000 + 30 * 60 * 1000 };
    x->cfg.creds.access_key_id = NULL;
    x->cfg.creds.secret_access_key = NULL;
    x->cfg.creds.callback = token_cb;
    x->cfg.creds.callback_user = &cs;
    put_many(x, "sc", 5, 1);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "sc", 5, NULL);
    assert_int_equal(count_status(&g_ep, 403), 0); /* the stored offset signs right at once */
    assert_int_equal(cs.calls, 1);                  /* fetched once, then cached */
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

static void test_forbidden_keeps_data(void **state)
{
    fx_t *x = *state;
    x->cfg.manual = 1;
    x->cfg.creds.secret_access_key = "not-the-secret-key-at-all-000000000000000";
    put_many(x, "fb", 3, 1);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 300), EVREC_E_TIMEOUT);
    assert_int_equal(queue_count(x->q), 3);
    assert_int_equal(counter(x, QC_POISON) + counter(x, QC_REJECTED), 0);
    evrec_stats_t st;
    memset(&st, 0, sizeof st);
    flusher_stats(f, &st);
    assert_int_equal(st.last_error, EVREC_E_AUTH);
    assert_true(st.last_error_message[0] != '\0');
    assert_true(count_status(&g_ep, 403) >= 1);
    /* The long wait: the cap (50 ms) each time, not the short jittered delay. */
    assert_true(count_status(&g_ep, 403) <= 300 / 50 + 2);
    assert_int_equal(flusher_stop(f, 0), EVREC_E_TIMEOUT);

    /* A scripted 403 ForbiddenException and a 404 also keep the data. */
    fake_config("{\"script\":\"403,404\"}");
    x->cfg.creds.secret_access_key = SECRET_KEY;
    f = start(x);
    assert_int_equal(flusher_flush(f, 10000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "fb", 3, NULL);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

static void test_expired_token_refreshed(void **state)
{
    fx_t *x = *state;
    const char *args[] = { "--session-token", "token-new", "--script", "403", NULL };
    tu_endpoint_t ep2;
    assert_int_equal(tu_server_start(&ep2, "tests/integration/delivery_expired_token.py", args),
                     0);
    base_config(x, EVREC_SERVICE_PINPOINT, ep2.url);
    token_source_t ts = { 0, "token-old", "token-new", 3600 * 1000 };
    x->cfg.creds.access_key_id = NULL;
    x->cfg.creds.secret_access_key = NULL;
    x->cfg.creds.callback = token_cb;
    x->cfg.creds.callback_user = &ts;
    put_many(x, "tok", 3, 1);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&ep2, "tok", 3, NULL);
    /* One refused request, one refresh, then accepted at once (no backoff in between). */
    assert_int_equal(count_status(&ep2, 403), 1);
    assert_int_equal(count_status(&ep2, 202), 1);
    assert_int_equal(ts.calls, 2);
    evrec_stats_t st;
    memset(&st, 0, sizeof st);
    flusher_stats(f, &st);
    assert_int_equal(st.retries, 0);

    /* Still "expired" after a refresh: no refresh loop, a backoff instead. */
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/config", ep2.url);
    long status = 0;
    free(tu_http("POST", url, "{\"script\":\"403,403\"}", &status));
    assert_int_equal(status, 200);
    put_many(x, "tok2", 2, 1);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_log_exactly(&ep2, "tok2", 2, NULL);
    assert_int_equal(count_status(&ep2, 403), 3);
    assert_int_equal(ts.calls, 3);
    flusher_stats(f, &st);
    assert_int_equal(st.retries, 1);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
    tu_endpoint_stop(&ep2);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static void test_offline_then_back(void **state)
{
    fx_t *x = *state;
    int port = free_port();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    base_config(x, EVREC_SERVICE_PINPOINT, url);
    put_many(x, "off", 7, 2);
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 300), EVREC_E_TIMEOUT);
    assert_int_equal(queue_count(x->q), 7);
    evrec_stats_t st;
    memset(&st, 0, sizeof st);
    flusher_stats(f, &st);
    assert_int_equal(st.last_error, EVREC_E_CONNECT);
    assert_true(st.retries >= 1);

    char portarg[16];
    snprintf(portarg, sizeof portarg, "%d", port);
    const char *args[] = { "--port", portarg, NULL };
    tu_endpoint_t ep2;
    assert_int_equal(tu_endpoint_start(&ep2, args), 0);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&ep2, "off", 7, NULL);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
    tu_endpoint_stop(&ep2);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_flush_timeout(void **state)
{
    fx_t *x = *state;
    fake_config("{\"slow_ms\":1500}");
    put_many(x, "sl", 3, 1);
    flusher_t *f = start(x);
    uint64_t t0 = mono_ms();
    assert_int_equal(flusher_flush(f, 200), EVREC_E_TIMEOUT);
    assert_true(mono_ms() - t0 < 1200); /* returned on its timeout, not the answer */
    fake_config("{\"slow_ms\":0}");
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "sl", 3, NULL);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

static void test_stop_drains(void **state)
{
    fx_t *x = *state;
    put_many(x, "st", 40, 4);
    flusher_t *f = start(x);
    assert_int_equal(flusher_stop(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "st", 40, NULL);

    /* Unreachable: stop gives up on time and keeps everything. */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", free_port());
    base_config(x, EVREC_SERVICE_PINPOINT, url);
    put_many(x, "st2", 5, 1);
    f = start(x);
    assert_int_equal(flusher_stop(f, 200), EVREC_E_TIMEOUT);
    assert_int_equal(queue_count(x->q), 5);
}

static void test_manual_poll(void **state)
{
    fx_t *x = *state;
    x->cfg.manual = 1;
    x->cfg.max_batch_events = 10;
    x->cfg.flush_threshold_events = 25;
    put_many(x, "mp", 25, 1);
    flusher_t *f = start(x);
    uint32_t next = 0;
    /* Below the threshold and before the interval: nothing to do yet. */
    assert_int_equal(flusher_poll(f, &next), EVREC_OK);
    assert_int_equal(count_status(&g_ep, -1), 0);
    assert_true(next > 0);
    for (int i = 0; i < 25; i++)
        flusher_notify(f);
    /* One request per poll, "call again now" while more is queued. */
    assert_int_equal(flusher_poll(f, &next), EVREC_OK);
    assert_int_equal(count_status(&g_ep, -1), 1);
    assert_int_equal(queue_count(x->q), 15);
    assert_int_equal(next, 0);
    assert_int_equal(flusher_poll(f, &next), EVREC_OK);
    assert_int_equal(flusher_poll(f, &next), EVREC_OK);
    assert_int_equal(count_status(&g_ep, -1), 3);
    assert_int_equal(queue_count(x->q), 0);
    assert_int_equal(flusher_poll(f, &next), EVREC_OK); /* finds the queue empty */
    assert_true(next >= 100);                           /* not a busy loop */
    assert_int_equal(count_status(&g_ep, -1), 3);
    assert_log_exactly(&g_ep, "mp", 25, NULL);
    assert_int_equal(flusher_stop(f, 0), EVREC_OK);

    /* A threaded flusher refuses to be polled. */
    x->cfg.manual = 0;
    f = start(x);
    assert_int_equal(flusher_poll(f, &next), EVREC_E_STATE);
    assert_int_equal(flusher_stop(f, 0), EVREC_OK);
}

static void test_threshold_and_interval_wake(void **state)
{
    fx_t *x = *state;
    x->cfg.flush_threshold_events = 4;
    flusher_t *f = start(x);
    put_many(x, "tw", 4, 1);
    for (int i = 0; i < 4; i++)
        flusher_notify(f);
    for (int i = 0; i < 200 && queue_count(x->q) > 0; i++)
        usleep(25000);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "tw", 4, NULL);
    assert_int_equal(flusher_stop(f, 0), EVREC_OK);

    /* The interval alone, without any notify. */
    x->cfg.flush_interval_ms = 100;
    f = start(x);
    put_many(x, "iw", 2, 1);
    for (int i = 0; i < 200 && queue_count(x->q) > 0; i++)
        usleep(25000);
    assert_int_equal(queue_count(x->q), 0);
    assert_log_exactly(&g_ep, "iw", 2, NULL);
    assert_int_equal(flusher_stop(f, 0), EVREC_OK);
}

static void test_expired_events_dropped(void **state)
{
    fx_t *x = *state;
    /* More than one expiry pass's worth (1,024), interleaved with fresh events. */
    int64_t old = now_ms() - 40LL * 24 * 3600 * 1000;
    for (int i = 0; i < 1030; i++) {
        char id[32];
        snprintf(id, sizeof id, "old-%d", i);
        ev_spec_t o = { .id = id, .endpoint = "endpoint-0", .type = "app.old",
                        .created_ms = old + i };
        put(x, EVREC_SERVICE_PINPOINT, &o);
        if (i % 400 == 0) {
            char fid[32];
            snprintf(fid, sizeof fid, "fresh-%04d", i / 400);
            ev_spec_t fr = { .id = fid, .endpoint = "endpoint-0", .type = "app.click" };
            put(x, EVREC_SERVICE_PINPOINT, &fr);
        }
    }
    flusher_t *f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_int_equal(counter(x, QC_EXPIRED), 1030);
    assert_int_equal(counter(x, QC_DELIVERED), 3);
    assert_int_equal(count_outcome(&x->ds, EVREC_OUTCOME_DROPPED), 1030);
    const delivery_rec_t *d = find_delivery(&x->ds, "old-1029");
    assert_non_null(d);
    assert_int_equal(d->outcome, EVREC_OUTCOME_DROPPED);
    assert_string_equal(d->reason, "expired");
    assert_log_exactly(&g_ep, "fresh", 3, NULL);
    cJSON *log = fake_get(&g_ep, "/_fake/log");
    assert_int_equal(cJSON_GetArraySize(log), 3);
    cJSON_Delete(log);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);

    /* Without a delivery callback the store expires them in one go. */
    x->cfg.on_delivery = NULL;
    ev_spec_t o = { .id = "old-x", .endpoint = "endpoint-0", .type = "app.old",
                    .created_ms = old };
    put(x, EVREC_SERVICE_PINPOINT, &o);
    f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_int_equal(queue_count(x->q), 0);
    assert_int_equal(counter(x, QC_EXPIRED), 1031);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

static void test_one_flusher_per_store(void **state)
{
    fx_t *x = *state;
    queue_close(x->q); /* nothing of LMDB crosses the fork */
    x->q = NULL;
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        fx_t c;
        memset(&c, 0, sizeof c);
        c.dir = x->dir;
        char err[256];
        flusher_t *f = NULL;
        char ok = '0';
        if (queue_open(&c.q, c.dir, NULL, err, sizeof err) == EVREC_OK &&
            flusher_new(&f, c.q, &x->cfg, err, sizeof err) == EVREC_OK)
            ok = '1';
        if (write(up[1], &ok, 1) != 1)
            _exit(2);
        char b;
        if (read(down[0], &b, 1) != 1)
            _exit(3);
        flusher_stop(f, 0);
        queue_close(c.q);
        _exit(ok == '1' ? 0 : 1);
    }
    close(up[1]);
    close(down[0]);
    char ok = 0;
    assert_int_equal(read(up[0], &ok, 1), 1);
    assert_int_equal(ok, '1');
    open_queue(x);
    flusher_t *f = NULL;
    char err[256] = "";
    assert_int_equal(flusher_new(&f, x->q, &x->cfg, err, sizeof err), EVREC_E_BUSY);
    assert_null(f);
    assert_true(err[0] != '\0');
    /* Recording still works while the other process flushes. */
    put_many(x, "tp", 2, 1);
    assert_int_equal(write(down[1], "x", 1), 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(up[0]);
    close(down[1]);
    /* The role is free again once the holder is gone. */
    f = start(x);
    assert_int_equal(flusher_flush(f, 20000), EVREC_OK);
    assert_log_exactly(&g_ep, "tp", 2, NULL);
    assert_int_equal(flusher_stop(f, 1000), EVREC_OK);
}

static void test_bad_config(void **state)
{
    fx_t *x = *state;
    flusher_t *f = NULL;
    char err[256] = "";
    x->cfg.application_id = NULL;
    assert_int_equal(flusher_new(&f, x->q, &x->cfg, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "application_id"));
    x->cfg.application_id = APP_ID;
    x->cfg.endpoint_url = "not a url";
    assert_int_equal(flusher_new(&f, x->q, &x->cfg, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "endpoint_url"));
    assert_int_equal(flusher_new(&f, NULL, &x->cfg, err, sizeof err), EVREC_E_INVALID);
    /* A failed start leaves the role free. */
    x->cfg.endpoint_url = x->url;
    f = start(x);
    assert_int_equal(flusher_stop(f, 0), EVREC_OK);
}

/* -- the same through the public API (evrec.h) only --------------------------------------- */

typedef struct api_fx {
    char *dir;
    evrec_options_t o;
    pthread_mutex_t mu;
    int accepted, rejected, dropped;
    char ids[64][64]; /* ids of the events recorded by the test */
    int n;
} api_fx_t;

static void api_on_delivery(void *user, const evrec_delivery_t *d)
{
    api_fx_t *x = user;
    pthread_mutex_lock(&x->mu);
    if (d->outcome == EVREC_OUTCOME_ACCEPTED)
        x->accepted++;
    else if (d->outcome == EVREC_OUTCOME_REJECTED)
        x->rejected++;
    else
        x->dropped++;
    pthread_mutex_unlock(&x->mu);
}

static int api_setup(void **state)
{
    api_fx_t *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    pthread_mutex_init(&x->mu, NULL);
    x->dir = tu_tempdir("delivery-api");
    evrec_options_init(&x->o);
    x->o.service = EVREC_SERVICE_PINPOINT;
    x->o.application_id = "app-api-test";
    x->o.tracking_id = "tracker-api-test";
    x->o.region = "us-east-1";
    x->o.endpoint_url = g_ep.url;
    x->o.access_key_id = ACCESS_KEY;
    x->o.secret_access_key = SECRET_KEY;
    x->o.no_environment_credentials = 1;
    x->o.backoff_base_ms = 10;
    x->o.backoff_cap_ms = 50;
    x->o.on_delivery = api_on_delivery;
    x->o.delivery_user = x;
    fake_post("/_fake/reset", "{}");
    *state = x;
    return 0;
}

static int api_teardown(void **state)
{
    api_fx_t *x = *state;
    tu_rmtree(x->dir);
    free(x->dir);
    pthread_mutex_destroy(&x->mu);
    free(x);
    return 0;
}

static evrec_t *open_agent(api_fx_t *x)
{
    evrec_t *a = NULL;
    char err[256] = "";
    int rc = evrec_open(&a, x->dir, &x->o, err, sizeof err);
    if (rc)
        fprintf(stderr, "evrec_open: %s\n", err);
    assert_int_equal(rc, EVREC_OK);
    return a;
}

static void api_record(api_fx_t *x, evrec_t *a, const char *type, int i)
{
    evrec_event_t *ev = NULL;
    assert_int_equal(evrec_event_new(&ev, type), EVREC_OK);
    char v[32];
    snprintf(v, sizeof v, "v%d", i);
    assert_int_equal(evrec_event_set_attribute(ev, "item", v), EVREC_OK);
    assert_int_equal(evrec_event_set_metric(ev, "price", 1.25 * i), EVREC_OK);
    if (x->o.service == EVREC_SERVICE_PERSONALIZE)
        assert_int_equal(evrec_event_set_item_id(ev, v), EVREC_OK);
    int rc = evrec_record(a, ev);
    if (rc)
        fprintf(stderr, "evrec_record: %s\n", evrec_last_error(a));
    assert_int_equal(rc, EVREC_OK);
    assert_true(x->n < 64);
    snprintf(x->ids[x->n++], sizeof x->ids[0], "%s", evrec_event_id(ev));
    evrec_event_free(ev);
}

/* Each recorded id is in the fake's log exactly once; returns how many log entries there are
 * in all (session events included). */
static int api_assert_log_has_ids(api_fx_t *x)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_fake/log", g_ep.url);
    char *body = tu_http("GET", url, NULL, NULL);
    assert_non_null(body);
    cJSON *log = cJSON_Parse(body);
    free(body);
    assert_non_null(log);
    for (int i = 0; i < x->n; i++) {
        int seen = 0;
        cJSON *e;
        cJSON_ArrayForEach(e, log)
        {
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(e, "event_id"));
            seen += id && strcmp(id, x->ids[i]) == 0;
        }
        if (seen != 1)
            fprintf(stderr, "event %s seen %d times\n", x->ids[i], seen);
        assert_int_equal(seen, 1);
    }
    int total = cJSON_GetArraySize(log);
    cJSON_Delete(log);
    return total;
}

static void test_pinpoint_session_flush(void **state)
{
    api_fx_t *x = *state;
    evrec_t *a = open_agent(x);
    assert_int_equal(evrec_endpoint_set(a, NULL, "Demographic.Platform", "linux"), EVREC_OK);
    assert_int_equal(evrec_endpoint_set(a, NULL, "User.UserId", "api-user"), EVREC_OK);
    assert_int_equal(evrec_session_start(a), EVREC_OK);
    for (int i = 0; i < 12; i++)
        api_record(x, a, "app.view", i);
    assert_int_equal(evrec_session_stop(a), EVREC_OK);
    assert_int_equal(evrec_flush(a, 20000), EVREC_OK);

    int total = api_assert_log_has_ids(x);
    assert_true(total >= 14); /* the 12 events, _session.start and _session.stop */
    evrec_stats_t st = { .struct_size = sizeof st };
    assert_int_equal(evrec_stats(a, &st), EVREC_OK);
    assert_int_equal(st.queued_events, 0);
    assert_int_equal(st.delivered, (uint64_t)total);
    assert_true(st.requests >= 1);
    assert_true(st.last_upload_ms > 0);
    assert_int_equal(st.last_error, 0);
    pthread_mutex_lock(&x->mu);
    assert_int_equal(x->accepted, total);
    pthread_mutex_unlock(&x->mu);
    assert_int_equal(evrec_close(a, 1000), EVREC_OK);
}

static void test_personalize_close_drains(void **state)
{
    api_fx_t *x = *state;
    x->o.service = EVREC_SERVICE_PERSONALIZE;
    evrec_t *a = open_agent(x);
    assert_int_equal(evrec_endpoint_set(a, NULL, "User.UserId", "pz-user"), EVREC_OK);
    assert_int_equal(evrec_session_start(a), EVREC_OK);
    for (int i = 0; i < 15; i++)
        api_record(x, a, "click", i);
    /* No flush: closing drains. */
    assert_int_equal(evrec_close(a, 20000), EVREC_OK);
    api_assert_log_has_ids(x);
}

static void test_manual_poll_and_throttle(void **state)
{
    api_fx_t *x = *state;
    fake_config("{\"script\":\"429,503\"}");
    x->o.manual_flush = 1;
    x->o.flush_threshold_events = 5;
    evrec_t *a = open_agent(x);
    for (int i = 0; i < 5; i++)
        api_record(x, a, "app.tap", i);
    uint32_t next = 0;
    int polls = 0;
    evrec_stats_t st = { .struct_size = sizeof st };
    do {
        assert_int_equal(evrec_poll(a, &next), EVREC_OK);
        assert_int_equal(evrec_stats(a, &st), EVREC_OK);
        if (st.queued_events > 0 && next > 0)
            usleep((next < 200 ? next : 200) * 1000u);
    } while (st.queued_events > 0 && ++polls < 200);
    assert_int_equal(st.queued_events, 0);
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.requests, 3);
    api_assert_log_has_ids(x);
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pinpoint_end_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_personalize_end_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_honours_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_errors_and_drops_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_event_rejection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_splits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_remembered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_grows_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_counts_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_current_for_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_bisection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_skew_corrected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credentials_expire_on_service_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_far_behind_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_date_expires_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forbidden_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_token_refreshed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_then_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_and_interval_wake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_events_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_flusher_per_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pinpoint_session_flush, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_personalize_close_drains, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_manual_poll_and_throttle, api_setup, api_teardown),
    };
    /* EVREC_TEST_FILTER=test_name (wildcards allowed) runs a subset. */
    const char *filter = getenv("EVREC_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests_name("delivery", tests, group_setup, group_teardown);
}
