/* Wire formats: request bodies (parsed back, checked against botocore's model) and the
 * verdicts drawn from realistic service answers, including malformed ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <mbedtls/base64.h>

#include <cjson/cJSON.h>

#include "evrec.h"
#include "port.h"
#include "testutil.h"
#include "record.h"
#include "service.h"
#include "wire.h"
#include "wire_internal.h"

#define PP_FRAG(type, ts)                                                                    \
    "{\"EventType\":\"" type "\",\"Timestamp\":\"" ts "\",\"Session\":{\"Id\":\"s-1\","     \
    "\"StartTimestamp\":\"2026-11-22T10:00:00.000Z\"},\"Attributes\":{\"screen\":\"home\"},"  \
    "\"Metrics\":{\"ms\":1.50}}"

static const char *const FRAG_A = PP_FRAG("_session.start", "2026-11-22T10:00:00.000Z");
static const char *const FRAG_B = PP_FRAG("purchase", "2026-11-22T10:00:01.000Z");
static const char *const FRAG_C = PP_FRAG("_session.stop", "2026-11-22T10:00:02.000Z");
static const char *const PROFILE_A =
    "{\"ChannelType\":\"GCM\",\"Demographic\":{\"Platform\":\"linux\",\"Make\":\"acme\"},"
    "\"Location\":{\"Country\":\"DE\"},\"User\":{\"UserId\":\"u-1\"}}";
static const char *const PROFILE_B = "{\"Attributes\":{\"tier\":[\"gold\",\"beta\"]}}";

static batch_event_t pp_event(uint64_t seq, const char *endpoint, const char *id,
                              const char *frag)
{
    batch_event_t e = { 0 };
    e.seq = seq;
    e.endpoint_id = (char *)endpoint;
    e.event_id = (char *)id;
    e.session_id = (char *)"";
    e.user_id = (char *)"";
    e.fragment = (char *)frag;
    e.fragment_len = strlen(frag);
    return e;
}

static batch_t make_batch(evrec_service_t svc, batch_event_t *events, size_t n)
{
    batch_t b = { 0 };
    b.rules = service_rules(svc);
    for (size_t i = 0; i < n; i++) /* the shape each service carries */
        events[i].shape = svc == EVREC_SERVICE_PERSONALIZE ? RECORD_SHAPE_PERSONALIZE
                                                           : RECORD_SHAPE_PINPOINT;
    b.events = events;
    b.n = n;
    b.cap = n;
    return b;
}

/* Profiles by endpoint id; counts lookups so the test can see one per endpoint. */
typedef struct profiles {
    int calls;
    int fail;
} profiles_t;

static int profile_lookup(void *user, const char *endpoint_id, char **json)
{
    profiles_t *p = user;
    p->calls++;
    *json = NULL;
    if (p->fail)
        return EVREC_E_IO;
    if (strcmp(endpoint_id, "ep-a") == 0)
        *json = port_strdup(PROFILE_A);
    else if (strcmp(endpoint_id, "ep-b") == 0)
        *json = port_strdup(PROFILE_B);
    else
        return EVREC_E_NOT_FOUND;
    return EVREC_OK;
}

static void assert_valid(const char *service, const char *app, const char *body)
{
    char *why = NULL;
    int rc = tu_validate_request(service, app, body, &why);
    if (rc != 0)
        print_error("botocore says: %s\nbody: %s\n", why ? why : "", body);
    free(why);
    assert_int_equal(rc, 0);
}

static void assert_json_equal_text(const cJSON *got, const char *want_text)
{
    cJSON *want = cJSON_Parse(want_text);
    assert_non_null(want);
    assert_true(cJSON_Compare(got, want, 1));
    cJSON_Delete(want);
}

static int count_members(const cJSON *obj)
{
    return cJSON_IsObject(obj) ? cJSON_GetArraySize(obj) : -1;
}

/* Encode ev with the test profiles, check the lookups and the number of endpoints, and give
 * back the parsed body (and the text in *body). */
static cJSON *encode_pinpoint(batch_event_t *ev, size_t n, int want_lookups, int want_endpoints,
                              char **body, size_t *len)
{
    batch_t b = make_batch(EVREC_SERVICE_PINPOINT, ev, n);
    profiles_t p = { 0 };
    assert_int_equal(wire_pinpoint_encode(&b, profile_lookup, &p, body, len), EVREC_OK);
    assert_int_equal(*len, strlen(*body));
    assert_int_equal(p.calls, want_lookups);
    cJSON *root = cJSON_Parse(*body);
    assert_non_null(root);
    assert_int_equal(count_members(root), 1);
    assert_int_equal(count_members(cJSON_GetObjectItemCaseSensitive(root, "BatchItem")),
                     want_endpoints);
    return root;
}

/* -- Pinpoint bodies ----------------------------------------------------------------------- */

static void pinpoint_one_endpoint(void **state)
{
    (void)state;
    batch_event_t ev[] = { pp_event(1, "ep-a", "ev-1", FRAG_A), pp_event(2, "ep-a", "ev-2", FRAG_B) };
    char *body = NULL;
    size_t len = 0;
    cJSON *root = encode_pinpoint(ev, 2, 1, 1, &body, &len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "BatchItem");
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(items, "ep-a");
    assert_int_equal(count_members(ep), 2);
    assert_json_equal_text(cJSON_GetObjectItemCaseSensitive(ep, "Endpoint"), PROFILE_A);
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(ep, "Events");
    assert_int_equal(count_members(events), 2);
    assert_json_equal_text(cJSON_GetObjectItemCaseSensitive(events, "ev-1"), FRAG_A);
    assert_json_equal_text(cJSON_GetObjectItemCaseSensitive(events, "ev-2"), FRAG_B);
    /* spliced, not re-printed: "1.50" would come back as 1.5 through a parse */
    assert_non_null(strstr(body, FRAG_A));
    assert_non_null(strstr(body, PROFILE_A));
    assert_valid("pinpoint", "0123456789abcdef0123456789abcdef", body);
    cJSON_Delete(root);
    port_free(body);
}

static void pinpoint_several_endpoints(void **state)
{
    (void)state;
    batch_event_t ev[] = {
        pp_event(1, "ep-a", "ev-1", FRAG_A), pp_event(2, "ep-b", "ev-2", FRAG_B),
        pp_event(3, "ep-a", "ev-3", FRAG_C), pp_event(4, "ep-c", "ev-4", FRAG_A),
        pp_event(5, "ep-b", "ev-5", FRAG_C),
        /* the same event id under another endpoint is a different map entry */
        pp_event(6, "ep-c", "ev-1", FRAG_B),
    };
    char *body = NULL;
    size_t len = 0;
    cJSON *root = encode_pinpoint(ev, 6, 3, 3, &body, &len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "BatchItem");
    const char *ids[3] = { "ep-a", "ep-b", "ep-c" };
    const char *profile[3] = { PROFILE_A, PROFILE_B, "{}" };
    const char *want[3][2][2] = { { { "ev-1", FRAG_A }, { "ev-3", FRAG_C } },
                                  { { "ev-2", FRAG_B }, { "ev-5", FRAG_C } },
                                  { { "ev-4", FRAG_A }, { "ev-1", FRAG_B } } };
    for (int k = 0; k < 3; k++) {
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(items, ids[k]);
        assert_json_equal_text(cJSON_GetObjectItemCaseSensitive(ep, "Endpoint"), profile[k]);
        const cJSON *events = cJSON_GetObjectItemCaseSensitive(ep, "Events");
        assert_int_equal(count_members(events), 2);
        for (int j = 0; j < 2; j++)
            assert_json_equal_text(cJSON_GetObjectItemCaseSensitive(events, want[k][j][0]),
                                   want[k][j][1]);
    }
    /* the estimate the batcher uses is an upper bound, over by one separator per map */
    size_t est = WIRE_PINPOINT_BODY_BYTES + wire_pinpoint_endpoint_bytes("ep-a", strlen(PROFILE_A)) +
                 wire_pinpoint_endpoint_bytes("ep-b", strlen(PROFILE_B)) +
                 wire_pinpoint_endpoint_bytes("ep-c", 2);
    for (int i = 0; i < 6; i++)
        est += wire_pinpoint_event_bytes(ev[i].event_id, ev[i].fragment_len);
    assert_int_equal(est, len + 3 + 1);
    assert_valid("pinpoint", "app-1", body);
    cJSON_Delete(root);
    port_free(body);
}

static void pinpoint_escaped_ids(void **state)
{
    (void)state;
    const char *epid = "ep \"quoted\" \\ back\tslash \x01 \xc3\xa9/";
    const char *evid = "ev\"1\n";
    batch_event_t ev[] = { pp_event(1, epid, evid, FRAG_A), pp_event(2, epid, "plain", FRAG_B) };
    batch_t b = make_batch(EVREC_SERVICE_PINPOINT, ev, 2);
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(wire_pinpoint_encode(&b, NULL, NULL, &body, &len), EVREC_OK);
    cJSON *root = cJSON_Parse(body);
    assert_non_null(root);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "BatchItem");
    assert_int_equal(count_members(items), 1);
    assert_string_equal(items->child->string, epid);
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(items->child, "Events");
    assert_json_equal_text(cJSON_GetObjectItemCaseSensitive(events, evid), FRAG_A);
    assert_json_equal_text(cJSON_GetObjectItemCaseSensitive(items->child, "Endpoint"), "{}");
    size_t est = WIRE_PINPOINT_BODY_BYTES + wire_pinpoint_endpoint_bytes(epid, 2) +
                 wire_pinpoint_event_bytes(evid, strlen(FRAG_A)) +
                 wire_pinpoint_event_bytes("plain", strlen(FRAG_B));
    assert_int_equal(est, len + 1 + 1);
    assert_int_equal(wire_json_string_bytes("a\"\\\b\f\n\r\t\x1f"), 2 + 1 + 7 * 2 + 6);
    assert_valid("pinpoint", "app", body);
    cJSON_Delete(root);
    port_free(body);
}

static void pinpoint_hundred_events(void **state)
{
    (void)state;
    batch_event_t ev[100];
    char ids[100][16], eps[100][16];
    for (int i = 0; i < 100; i++) {
        snprintf(ids[i], sizeof ids[i], "ev-%03d", i);
        snprintf(eps[i], sizeof eps[i], "ep-%d", i % 10);
        ev[i] = pp_event((uint64_t)i + 1, eps[i], ids[i], i % 2 ? FRAG_A : FRAG_B);
    }
    char *body = NULL;
    size_t len = 0;
    cJSON *root = encode_pinpoint(ev, 100, 10, 10, &body, &len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "BatchItem");
    int total = 0;
    for (const cJSON *ep = items->child; ep; ep = ep->next)
        total += count_members(cJSON_GetObjectItemCaseSensitive(ep, "Events"));
    assert_int_equal(total, 100);
    assert_valid("pinpoint", "app", body);
    cJSON_Delete(root);
    port_free(body);
}

static void pinpoint_refusals(void **state)
{
    (void)state;
    char *body = (char *)"untouched";
    size_t len = 7;
    batch_event_t ev[] = { pp_event(1, "ep-a", "ev-1", FRAG_A), pp_event(2, "ep-a", "ev-1", FRAG_B) };
    batch_t b = make_batch(EVREC_SERVICE_PINPOINT, ev, 2);
    /* two events with one id under one endpoint cannot both be in the map */
    assert_int_equal(wire_pinpoint_encode(&b, NULL, NULL, &body, &len), EVREC_E_INVALID);
    assert_null(body);
    assert_int_equal(len, 0);
    /* a failing profile lookup is passed on */
    b.n = 1;
    profiles_t p = { .fail = 1 };
    assert_int_equal(wire_pinpoint_encode(&b, profile_lookup, &p, &body, &len), EVREC_E_IO);
    assert_null(body);
    b.n = 0;
    assert_int_equal(wire_pinpoint_encode(&b, NULL, NULL, &body, &len), EVREC_E_INVALID);
    b.n = 1;
    ev[0].shape = RECORD_SHAPE_PERSONALIZE; /* Pinpoint carries Pinpoint-shaped events only */
    assert_int_equal(wire_pinpoint_encode(&b, NULL, NULL, &body, &len), EVREC_E_INVALID);
    assert_int_equal(wire_pinpoint_encode(NULL, NULL, NULL, &body, &len), EVREC_E_INVALID);
    assert_int_equal(wire_pinpoint_encode(&b, NULL, NULL, NULL, &len), EVREC_E_INVALID);
}

/* The independent check can fail: a body the model refuses is refused. */
static void botocore_check_refuses_bad_bodies(void **state)
{
    (void)state;
    char *why = NULL;
    assert_int_equal(tu_validate_request("pinpoint", "app",
                                    "{\"BatchItem\":{\"e\":{\"Endpoint\":{},\"Events\":{\"1\":"
                                    "{\"EventType\":\"a\"}}}}}",
                                    &why),
                     1);
    assert_non_null(strstr(why, "Timestamp"));
    free(why);
    assert_int_equal(tu_validate_request("personalize", "",
                                    "{\"trackingId\":\"t\",\"sessionId\":\"s\",\"eventList\":[]}",
                                    NULL),
                     1);
    assert_int_equal(tu_validate_request("pinpoint", "app", "{\"BatchItem\":{", NULL), 1);
    /* a limit ParamValidator itself leaves to the service: at most 10 events */
    char body[1024] = "{\"trackingId\":\"t\",\"sessionId\":\"s\",\"eventList\":[";
    for (int i = 0; i < 11; i++)
        strcat(body, i ? ",{\"eventType\":\"a\",\"sentAt\":1}" : "{\"eventType\":\"a\",\"sentAt\":1}");
    strcat(body, "]}");
    assert_int_equal(tu_validate_request("personalize", "", body, &why), 1);
    assert_non_null(strstr(why, "max 10"));
    free(why);
}

/* -- Personalize bodies -------------------------------------------------------------------- */

#define PZ_FRAG(id, type)                                                                    \
    "{\"eventId\":\"" id "\",\"eventType\":\"" type "\",\"sentAt\":1763805600.123,"          \
    "\"itemId\":\"item-9\",\"properties\":\"{\\\"rating\\\":\\\"5\\\"}\"}"

static batch_event_t pz_event(uint64_t seq, const char *user, const char *session, const char *frag)
{
    batch_event_t e = pp_event(seq, "ep-a", "x", frag);
    e.user_id = (char *)user;
    e.session_id = (char *)session;
    return e;
}

static void personalize_shape(void **state)
{
    (void)state;
    static const char *frags[] = { PZ_FRAG("e1", "click"), PZ_FRAG("e2", "watch"),
                                   PZ_FRAG("e3", "rate") };
    batch_event_t ev[3];
    for (int i = 0; i < 3; i++)
        ev[i] = pz_event((uint64_t)i + 1, "user \"7\"", "sess-1", frags[i]);
    batch_t b = make_batch(EVREC_SERVICE_PERSONALIZE, ev, 3);
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(wire_personalize_encode(&b, "tracking-0001", &body, &len), EVREC_OK);
    assert_int_equal(len, strlen(body));
    cJSON *root = cJSON_Parse(body);
    assert_non_null(root);
    assert_int_equal(count_members(root), 4);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "trackingId")->valuestring,
                        "tracking-0001");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "userId")->valuestring,
                        "user \"7\"");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "sessionId")->valuestring,
                        "sess-1");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "eventList");
    assert_true(cJSON_IsArray(list));
    assert_int_equal(cJSON_GetArraySize(list), 3);
    for (int i = 0; i < 3; i++) {
        assert_json_equal_text(cJSON_GetArrayItem(list, i), frags[i]);
        assert_non_null(strstr(body, frags[i]));
    }
    size_t est = wire_personalize_base_bytes("user \"7\"", "sess-1",
                                              wire_json_string_bytes("tracking-0001"));
    for (int i = 0; i < 3; i++)
        est += strlen(frags[i]) + 1;
    assert_int_equal(est, len + 1);
    assert_valid("personalize", "", body);
    cJSON_Delete(root);
    port_free(body);

    /* no user: no userId member at all (it is optional, and "" would be invalid) */
    for (int i = 0; i < 3; i++)
        ev[i].user_id = (char *)"";
    assert_int_equal(wire_personalize_encode(&b, "tracking-0001", &body, &len), EVREC_OK);
    root = cJSON_Parse(body);
    assert_int_equal(count_members(root), 3);
    assert_null(cJSON_GetObjectItemCaseSensitive(root, "userId"));
    assert_valid("personalize", "", body);
    cJSON_Delete(root);
    port_free(body);
}

static void personalize_refusals(void **state)
{
    (void)state;
    static const char *frag = PZ_FRAG("e1", "click");
    batch_event_t ev[11];
    for (int i = 0; i < 11; i++)
        ev[i] = pz_event((uint64_t)i + 1, "u", "s", frag);
    batch_t b = make_batch(EVREC_SERVICE_PERSONALIZE, ev, 11);
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(wire_personalize_encode(&b, "t", &body, &len), EVREC_E_INVALID); /* > 10 */
    b.n = 10;
    assert_int_equal(wire_personalize_encode(&b, "t", &body, &len), EVREC_OK);
    assert_valid("personalize", "", body);
    port_free(body);
    ev[4].session_id = (char *)"other";
    assert_int_equal(wire_personalize_encode(&b, "t", &body, &len), EVREC_E_INVALID);
    ev[4].session_id = (char *)"s";
    ev[2].user_id = (char *)"someone-else";
    assert_int_equal(wire_personalize_encode(&b, "t", &body, &len), EVREC_E_INVALID);
    ev[2].user_id = (char *)"u";
    assert_int_equal(wire_personalize_encode(&b, "", &body, &len), EVREC_E_INVALID);
    assert_int_equal(wire_personalize_encode(&b, NULL, &body, &len), EVREC_E_INVALID);
    ev[0].shape = RECORD_SHAPE_PINPOINT; /* Personalize carries Personalize-shaped only */
    assert_int_equal(wire_personalize_encode(&b, "t", &body, &len), EVREC_E_INVALID);
    ev[0].shape = RECORD_SHAPE_PERSONALIZE;
    b.n = 0;
    assert_int_equal(wire_personalize_encode(&b, "t", &body, &len), EVREC_E_INVALID);
    assert_null(body);
}

/* -- paths --------------------------------------------------------------------------------- */

static void paths(void **state)
{
    (void)state;
    char *p = NULL;
    const service_ops_t *pp = service_get(EVREC_SERVICE_PINPOINT);
    service_ctx_t c = { .application_id = "0123abcdef" };
    assert_int_equal(pp->path(&c, &p), EVREC_OK);
    assert_string_equal(p, "/v1/apps/0123abcdef/events");
    port_free(p);
    c.application_id = "a b/c%d?e#f~g_h-i.j\xc3\xa9";
    assert_int_equal(pp->path(&c, &p), EVREC_OK);
    assert_string_equal(p, "/v1/apps/a%20b%2Fc%25d%3Fe%23f~g_h-i.j%C3%A9/events");
    port_free(p);
    assert_int_equal(service_get(EVREC_SERVICE_PERSONALIZE)->path(&c, &p), EVREC_OK);
    assert_string_equal(p, "/events");
    port_free(p);
    assert_int_equal(wire_pinpoint_path(NULL, &p), EVREC_E_INVALID);
    assert_null(p);
    assert_int_equal(wire_pinpoint_path("", &p), EVREC_E_INVALID);
    assert_null(service_get((evrec_service_t)7));
    assert_int_equal(wire_pinpoint_path("x", NULL), EVREC_E_INVALID);
}

/* -- decoding ------------------------------------------------------------------------------ */

static batch_event_t g_pp[] = {
    { .seq = 1, .event_id = (char *)"ev-1", .endpoint_id = (char *)"ep-a" },
    { .seq = 2, .event_id = (char *)"ev-2", .endpoint_id = (char *)"ep-a" },
    { .seq = 3, .event_id = (char *)"ev-3", .endpoint_id = (char *)"ep-b" },
    { .seq = 4, .event_id = (char *)"ev-4", .endpoint_id = (char *)"ep-c" },
    { .seq = 5, .event_id = (char *)"ev-5", .endpoint_id = (char *)"ep-d" },
    { .seq = 6, .event_id = (char *)"ev-6", .endpoint_id = (char *)"ep-e" },
};

static wire_result_t decode(evrec_service_t svc, size_t n, long status, const char *type,
                            const char *body)
{
    batch_t b = make_batch(svc, g_pp, n);
    wire_result_t r;
    assert_int_equal(service_decode(&b, status, type, body, body ? strlen(body) : 0, &r), EVREC_OK);
    assert_int_equal(r.n, n);
    return r;
}

static void assert_all_kept(const wire_result_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        assert_int_equal(r->verdicts[i], WIRE_KEEP);
}

static void pinpoint_per_event_verdicts(void **state)
{
    (void)state;
    const char *body =
        "{\"Results\":{"
        "\"ep-a\":{\"EndpointItemResponse\":{\"Message\":\"Accepted\",\"StatusCode\":202},"
        "\"EventsItemResponse\":{\"ev-1\":{\"Message\":\"Accepted\",\"StatusCode\":202},"
        "\"ev-2\":{\"Message\":\"Event attribute value exceeds the maximum length\","
        "\"StatusCode\":400}}},"
        "\"ep-b\":{\"EndpointItemResponse\":{\"Message\":\"Accepted\",\"StatusCode\":202},"
        "\"EventsItemResponse\":{\"ev-3\":{\"Message\":\"Internal error\",\"StatusCode\":500}}},"
        "\"ep-c\":{\"EndpointItemResponse\":{\"Message\":\"Accepted\",\"StatusCode\":202},"
        "\"EventsItemResponse\":{}},"
        "\"ep-d\":{\"EndpointItemResponse\":{\"Message\":\"Invalid ChannelType\","
        "\"StatusCode\":400}}"
        "}}";
    wire_result_t r = decode(EVREC_SERVICE_PINPOINT, 6, 202, NULL, body);
    assert_int_equal(r.outcome, WIRE_OK);
    assert_int_equal(r.verdicts[0], WIRE_ACCEPTED);
    assert_int_equal(r.status[0], 202);
    assert_int_equal(r.verdicts[1], WIRE_REJECTED);
    assert_int_equal(r.status[1], 400);
    assert_string_equal(r.messages[1], "Event attribute value exceeds the maximum length");
    assert_int_equal(r.verdicts[2], WIRE_KEEP); /* per-event 500: try again */
    assert_int_equal(r.status[2], 500);
    assert_int_equal(r.verdicts[3], WIRE_KEEP); /* endpoint accepted, event not answered */
    assert_int_equal(r.status[3], 0);
    assert_int_equal(r.verdicts[4], WIRE_REJECTED); /* endpoint refused, events unanswered */
    assert_string_equal(r.messages[4], "Invalid ChannelType");
    assert_int_equal(r.verdicts[5], WIRE_KEEP); /* endpoint missing from Results */
    assert_null(r.messages[5]);
    wire_result_free(&r);
    assert_null(r.verdicts);

    /* the SDK-style wrapper, and a StatusCode that is not a number */
    r = decode(EVREC_SERVICE_PINPOINT, 2, 200, NULL,
               "{\"EventsResponse\":{\"Results\":{\"ep-a\":{\"EventsItemResponse\":{"
               "\"ev-1\":{\"StatusCode\":202},\"ev-2\":{\"StatusCode\":\"202\"}}}}}}");
    assert_int_equal(r.outcome, WIRE_OK);
    assert_int_equal(r.verdicts[0], WIRE_ACCEPTED);
    assert_int_equal(r.verdicts[1], WIRE_KEEP);
    wire_result_free(&r);
}

/* Answers are matched by (endpoint id, event id), whatever their order: one event id under two
 * endpoints gets each endpoint's verdict, a repeated answer counts once (the first), and
 * answers for events not in the batch are ignored. Accepted events carry no message. */
static void pinpoint_answers_matched_by_key(void **state)
{
    (void)state;
    batch_event_t ev[] = { pp_event(1, "ep-a", "same", FRAG_A), pp_event(2, "ep-b", "same", FRAG_A),
                           pp_event(3, "ep-a", "ev-3", FRAG_B), pp_event(4, "ep-b", "ev-4", FRAG_C) };
    batch_t b = make_batch(EVREC_SERVICE_PINPOINT, ev, 4);
    const char *body =
        "{\"Results\":{"
        "\"ep-b\":{\"EventsItemResponse\":{"
        "\"ev-4\":{\"Message\":\"bad\",\"StatusCode\":400},"
        "\"ev-4\":{\"Message\":\"Accepted\",\"StatusCode\":202},"
        "\"same\":{\"Message\":\"Accepted\",\"StatusCode\":202},"
        "\"not-sent\":{\"Message\":\"Accepted\",\"StatusCode\":202}}},"
        "\"ep-z\":{\"EventsItemResponse\":{\"ev-3\":{\"StatusCode\":202}}},"
        "\"ep-a\":{\"EventsItemResponse\":{"
        "\"ev-3\":{\"Message\":\"Accepted\",\"StatusCode\":202},"
        "\"same\":{\"Message\":\"Throttled\",\"StatusCode\":429}}}"
        "}}";
    wire_result_t r;
    assert_int_equal(service_decode(&b, 202, NULL, body, strlen(body), &r), EVREC_OK);
    assert_int_equal(r.outcome, WIRE_OK);
    assert_int_equal(r.verdicts[0], WIRE_KEEP); /* ep-a/same: 429 */
    assert_int_equal(r.status[0], 429);
    assert_string_equal(r.messages[0], "Throttled");
    assert_int_equal(r.verdicts[1], WIRE_ACCEPTED); /* ep-b/same */
    assert_null(r.messages[1]);
    assert_int_equal(r.verdicts[2], WIRE_ACCEPTED); /* ep-a/ev-3, not ep-z's */
    assert_int_equal(r.verdicts[3], WIRE_REJECTED); /* the first answer for ep-b/ev-4 */
    assert_string_equal(r.messages[3], "bad");
    wire_result_free(&r);

    /* a batch beyond what one request may carry is refused, not misread */
    static batch_event_t many[BATCH_INDEX_MAX + 1];
    for (size_t i = 0; i < BATCH_INDEX_MAX + 1; i++)
        many[i] = pp_event(i + 1, "ep-a", "x", FRAG_A);
    b = make_batch(EVREC_SERVICE_PINPOINT, many, BATCH_INDEX_MAX + 1);
    assert_int_equal(service_decode(&b, 202, NULL, body, strlen(body), &r), EVREC_E_INVALID);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(wire_pinpoint_encode(&b, NULL, NULL, &out, &len), EVREC_E_INVALID);
    assert_null(out);
}

static void malformed_2xx_never_drops(void **state)
{
    (void)state;
    const char *bodies[] = {
        "", "{", "<html><body>Welcome to the hotel wifi</body></html>", "[]", "{}",
        "{\"Results\":[]}", "{\"Results\":\"yes\"}", "null", "202",
        "{\"Results\":{\"ep-a\":\"202\"}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        wire_result_t r = decode(EVREC_SERVICE_PINPOINT, 3, 202, NULL, bodies[i]);
        if (i < sizeof bodies / sizeof bodies[0] - 1)
            assert_int_equal(r.outcome, WIRE_RETRY);
        assert_all_kept(&r);
        wire_result_free(&r);
    }
    /* Personalize: anything but an empty answer or an empty object is not an acceptance */
    const char *pz_bad[] = { "{", "<html>captive portal</html>", "[]", "\"ok\"",
                             "{\"message\":\"Internal failure\"}",
                             "{\"__type\":\"InvalidInputException\"}" };
    for (size_t i = 0; i < sizeof pz_bad / sizeof pz_bad[0]; i++) {
        wire_result_t r = decode(EVREC_SERVICE_PERSONALIZE, 3, 200, NULL, pz_bad[i]);
        assert_int_equal(r.outcome, WIRE_RETRY);
        assert_all_kept(&r);
        wire_result_free(&r);
    }
    /* a body length beyond the NUL is read as given, not past it */
    batch_t b = make_batch(EVREC_SERVICE_PINPOINT, g_pp, 1);
    wire_result_t r;
    assert_int_equal(service_decode(&b, 202, NULL, "{\"Res", 5, &r), EVREC_OK);
    assert_int_equal(r.outcome, WIRE_RETRY);
    wire_result_free(&r);
}

static void personalize_accepts_empty_200(void **state)
{
    (void)state;
    const char *ok[] = { NULL, "", "\r\n", "{}", "{\"ResponseMetadata\":{}}" };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        wire_result_t r = decode(EVREC_SERVICE_PERSONALIZE, 4, 200, NULL, ok[i]);
        assert_int_equal(r.outcome, WIRE_OK);
        for (size_t k = 0; k < 4; k++) {
            assert_int_equal(r.verdicts[k], WIRE_ACCEPTED);
            assert_int_equal(r.status[k], 200);
        }
        wire_result_free(&r);
    }
}

typedef struct answer {
    evrec_service_t svc;
    long status;
    const char *header;
    const char *body;
    wire_outcome_t want;
    const char *want_type;
    const char *want_message; /* a substring */
} answer_t;

static void request_level_outcomes(void **state)
{
    (void)state;
    const answer_t cases[] = {
        /* throttling */
        { EVREC_SERVICE_PINPOINT, 429, "TooManyRequestsException:http://internal.amazon.com/coral/com.amazon.pinpoint/",
          "{\"Message\":\"Too many requests\",\"RequestID\":\"5f0c\"}", WIRE_THROTTLED,
          "TooManyRequestsException", "Too many requests" },
        { EVREC_SERVICE_PERSONALIZE, 400, "ThrottlingException", "{\"message\":\"Rate exceeded\"}",
          WIRE_THROTTLED, "ThrottlingException", "Rate exceeded" },
        { EVREC_SERVICE_PERSONALIZE, 400, NULL,
          "{\"__type\":\"com.amazonaws.personalize.events#ThrottlingException\",\"message\":\"Rate exceeded\"}",
          WIRE_THROTTLED, "ThrottlingException", "Rate exceeded" },
        { EVREC_SERVICE_PINPOINT, 429, NULL, "", WIRE_THROTTLED, "", "" },
        /* server side */
        { EVREC_SERVICE_PINPOINT, 500, "InternalServerErrorException",
          "{\"Message\":\"Internal server error\",\"RequestID\":\"9a1\"}", WIRE_RETRY,
          "InternalServerErrorException", "Internal server error" },
        { EVREC_SERVICE_PINPOINT, 502, NULL, "<html><head><title>502 Bad Gateway</title></head></html>",
          WIRE_RETRY, "", "502 Bad Gateway" },
        { EVREC_SERVICE_PERSONALIZE, 503, NULL, "", WIRE_RETRY, "", "" },
        { EVREC_SERVICE_PERSONALIZE, 504, "ServiceUnavailable", "{\"message\":null}", WIRE_RETRY,
          "ServiceUnavailable", "" },
        /* size */
        { EVREC_SERVICE_PINPOINT, 413, "PayloadTooLargeException",
          "{\"Message\":\"Request entity too large\"}", WIRE_TOO_LARGE, "PayloadTooLargeException",
          "too large" },
        { EVREC_SERVICE_PINPOINT, 413, NULL, "<html>413 Request Entity Too Large</html>",
          WIRE_TOO_LARGE, "", "413" },
        { EVREC_SERVICE_PERSONALIZE, 400, NULL, "{\"__type\":\"PayloadTooLargeException\"}",
          WIRE_TOO_LARGE, "PayloadTooLargeException", "" },
        /* the whole request refused */
        { EVREC_SERVICE_PINPOINT, 400, "BadRequestException:http://internal.amazon.com/coral/com.amazon.pinpoint/",
          "{\"Message\":\"Unexpected character ('}' (code 125))\",\"RequestID\":\"aa\"}",
          WIRE_BAD_REQUEST, "BadRequestException", "Unexpected character" },
        { EVREC_SERVICE_PERSONALIZE, 400, "InvalidInputException:http://internal.amazon.com/coral/com.amazonaws.personalize/",
          "{\"message\":\"1 validation error detected: Value at 'eventList.1.member.eventType' failed to satisfy constraint\"}",
          WIRE_BAD_REQUEST, "InvalidInputException", "validation error" },
        { EVREC_SERVICE_PINPOINT, 400, NULL, "not json", WIRE_BAD_REQUEST, "", "not json" },
        /* clock skew */
        { EVREC_SERVICE_PINPOINT, 403, "InvalidSignatureException",
          "{\"message\":\"Signature expired: 20261122T100000Z is now earlier than 20261122T100500Z (20261122T101000Z - 5 min.)\"}",
          WIRE_CLOCK_SKEW, "InvalidSignatureException", "Signature expired" },
        { EVREC_SERVICE_PERSONALIZE, 403, "InvalidSignatureException",
          "{\"message\":\"Signature not yet current: 20261122T102000Z is still later than 20261122T101500Z (20261122T101000Z + 5 min.)\"}",
          WIRE_CLOCK_SKEW, "InvalidSignatureException", "not yet current" },
        { EVREC_SERVICE_PINPOINT, 403, NULL,
          "{\"__type\":\"RequestTimeTooSkewed\",\"Message\":\"The difference between the request time and the current time is too large.\"}",
          WIRE_CLOCK_SKEW, "RequestTimeTooSkewed", "difference" },
        { EVREC_SERVICE_PINPOINT, 400, "InvalidSignatureException",
          "{\"message\":\"Signature expired: 20261122T100000Z is now earlier than 20261122T100500Z\"}",
          WIRE_CLOCK_SKEW, "InvalidSignatureException", "expired" },
        /* expired session credentials */
        { EVREC_SERVICE_PINPOINT, 403, "ExpiredTokenException",
          "{\"message\":\"The security token included in the request is expired\"}",
          WIRE_EXPIRED_TOKEN, "ExpiredTokenException", "is expired" },
        { EVREC_SERVICE_PERSONALIZE, 403, NULL,
          "{\"message\":\"The security token included in the request is expired\"}",
          WIRE_EXPIRED_TOKEN, "", "is expired" },
        { EVREC_SERVICE_PERSONALIZE, 400, "ExpiredToken", "", WIRE_EXPIRED_TOKEN, "ExpiredToken", "" },
        /* other refusals: keep the data */
        { EVREC_SERVICE_PINPOINT, 403, "UnrecognizedClientException",
          "{\"message\":\"The security token included in the request is invalid.\"}", WIRE_AUTH,
          "UnrecognizedClientException", "is invalid" },
        { EVREC_SERVICE_PINPOINT, 403, "ForbiddenException",
          "{\"Message\":\"User: arn:aws:sts::1:assumed-role/x is not authorized to perform: mobiletargeting:PutEvents\"}",
          WIRE_AUTH, "ForbiddenException", "not authorized" },
        { EVREC_SERVICE_PINPOINT, 404, "NotFoundException", "{\"Message\":\"Resource not found\",\"RequestID\":\"b\"}",
          WIRE_AUTH, "NotFoundException", "Resource not found" },
        { EVREC_SERVICE_PERSONALIZE, 400, "UnrecognizedClientException",
          "{\"message\":\"The security token included in the request is invalid.\"}", WIRE_AUTH,
          "UnrecognizedClientException", "invalid" },
        { EVREC_SERVICE_PERSONALIZE, 400, NULL,
          "{\"__type\":\"com.amazon.coral.service#AccessDeniedException\",\"Message\":\"denied\"}",
          WIRE_AUTH, "AccessDeniedException", "denied" },
        { EVREC_SERVICE_PINPOINT, 401, NULL, "", WIRE_AUTH, "", "" },
        { EVREC_SERVICE_PINPOINT, 405, "MethodNotAllowedException", "{\"Message\":\"x\"}", WIRE_AUTH,
          "MethodNotAllowedException", "x" },
        /* no real answer */
        { EVREC_SERVICE_PINPOINT, 408, NULL, "", WIRE_RETRY, "", "" },
        { EVREC_SERVICE_PINPOINT, 0, NULL, NULL, WIRE_RETRY, "", "" },
        { EVREC_SERVICE_PERSONALIZE, 302, NULL, "<a href=\"/login\">moved</a>", WIRE_RETRY, "", "moved" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const answer_t *c = &cases[i];
        wire_result_t r = decode(c->svc, 3, c->status, c->header, c->body);
        if (r.outcome != c->want || strcmp(r.error_type, c->want_type) != 0 ||
            strstr(r.message, c->want_message) == NULL)
            print_error("case %zu: outcome %d type '%s' message '%s'\n", i, (int)r.outcome,
                        r.error_type, r.message);
        assert_int_equal(r.outcome, c->want);
        assert_string_equal(r.error_type, c->want_type);
        assert_non_null(strstr(r.message, c->want_message));
        assert_all_kept(&r);
        wire_result_free(&r);
    }
}

/* Record data's base64 is mbedTLS's text for every length and byte. */
static void base64_as_mbedtls_writes_it(void **state)
{
    (void)state;
    unsigned char data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 197 + 11);
    for (size_t n = 0; n <= sizeof data; n++) {
        char got[420], want[420] = ""; /* mbedTLS writes nothing for 0 bytes */
        size_t glen = 0, wlen = 0;
        assert_int_equal(wire_base64(data + (sizeof data - n), n, got, sizeof got, &glen),
                         EVREC_OK);
        assert_int_equal(mbedtls_base64_encode((unsigned char *)want, sizeof want, &wlen,
                                               data + (sizeof data - n), n), 0);
        assert_int_equal(glen, wlen);
        assert_int_equal(glen, wire_base64_bytes(n));
        assert_string_equal(got, want);
    }
    char small[8];
    size_t w;
    assert_int_equal(wire_base64(data, 6, small, sizeof small, &w), EVREC_E_INVALID);
}

/* The count over a raw answer: keys only (not the same text as a value or inside a string),
 * values exact. */
static void answers_counted_without_a_tree(void **state)
{
    (void)state;
    const char *t = "{\"StatusCode\" : 202,\"x\":\"StatusCode\",\"m\":\"a \\\"StatusCode\\\":202\","
                    "\"k\":{\"StatusCode\":2020},\"StatusCode\":\n202}";
    size_t ok = 9;
    assert_int_equal(wire_count_member(t, strlen(t), "StatusCode", "202", &ok), 3);
    assert_int_equal(ok, 2);
    assert_int_equal(wire_count_member(t, strlen(t), "Status", NULL, NULL), 0);
    assert_int_equal(wire_count_member(t, 19, "StatusCode", "202", &ok), 1); /* cut short */
    assert_int_equal(ok, 0);

    /* Pinpoint, every status 202: accepted without decoding */
    wire_result_t r = decode(EVREC_SERVICE_PINPOINT, 3, 200, NULL,
                             "{\"Results\":{\"ep-a\":{\"EndpointItemResponse\":{\"Message\":\"Accepted\","
                             "\"StatusCode\":202},\"EventsItemResponse\":{\"ev-1\":{\"Message\":"
                             "\"Accepted\",\"StatusCode\":202},\"ev-2\":{\"StatusCode\":202}}},"
                             "\"ep-b\":{\"EndpointItemResponse\":{\"StatusCode\":202},"
                             "\"EventsItemResponse\":{\"ev-3\":{\"StatusCode\":202}}}}}");
    assert_int_equal(r.outcome, WIRE_OK);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(r.verdicts[i], WIRE_ACCEPTED);
        assert_int_equal(r.status[i], 202);
    }
    wire_result_free(&r);
    /* one refusal among 202s: the count does not add up, the full decode finds it */
    r = decode(EVREC_SERVICE_PINPOINT, 3, 200, NULL,
               "{\"Results\":{\"ep-a\":{\"EndpointItemResponse\":{\"StatusCode\":202},"
               "\"EventsItemResponse\":{\"ev-1\":{\"StatusCode\":202},\"ev-2\":{\"Message\":"
               "\"bad\",\"StatusCode\":400}}},\"ep-b\":{\"EndpointItemResponse\":{\"StatusCode\":"
               "202},\"EventsItemResponse\":{\"ev-3\":{\"StatusCode\":202}}}}}");
    assert_int_equal(r.verdicts[0], WIRE_ACCEPTED);
    assert_int_equal(r.verdicts[1], WIRE_REJECTED);
    assert_int_equal(r.verdicts[2], WIRE_ACCEPTED);
    wire_result_free(&r);
    /* an event not answered for: fewer statuses than events and endpoints, kept */
    r = decode(EVREC_SERVICE_PINPOINT, 3, 200, NULL,
               "{\"Results\":{\"ep-a\":{\"EndpointItemResponse\":{\"StatusCode\":202},"
               "\"EventsItemResponse\":{\"ev-1\":{\"StatusCode\":202}}},\"ep-b\":{"
               "\"EndpointItemResponse\":{\"StatusCode\":202},\"EventsItemResponse\":{\"ev-3\":"
               "{\"StatusCode\":202}}}}}");
    assert_int_equal(r.verdicts[0], WIRE_ACCEPTED);
    assert_int_equal(r.verdicts[1], WIRE_KEEP);
    assert_int_equal(r.verdicts[2], WIRE_ACCEPTED);
    wire_result_free(&r);

    /* Kinesis: FailedRecordCount 0 and a SequenceNumber each */
    r = decode(EVREC_SERVICE_KINESIS, 2, 200, NULL,
               "{\"FailedRecordCount\": 0,\"Records\":[{\"SequenceNumber\":\"1\",\"ShardId\":"
               "\"s\"},{\"SequenceNumber\":\"2\",\"ShardId\":\"s\"}]}");
    assert_int_equal(r.outcome, WIRE_OK);
    assert_int_equal(r.verdicts[0], WIRE_ACCEPTED);
    assert_int_equal(r.verdicts[1], WIRE_ACCEPTED);
    assert_int_equal(r.status[1], 200);
    wire_result_free(&r);
    /* a count of 0 but a record short: decoded in full, which keeps them all for a retry */
    r = decode(EVREC_SERVICE_KINESIS, 2, 200, NULL,
               "{\"FailedRecordCount\":0,\"Records\":[{\"SequenceNumber\":\"1\"}]}");
    assert_int_equal(r.outcome, WIRE_RETRY);
    assert_all_kept(&r);
    wire_result_free(&r);
    /* a failed record: not confirmed, decoded */
    r = decode(EVREC_SERVICE_KINESIS, 2, 200, NULL,
               "{\"FailedRecordCount\":1,\"Records\":[{\"SequenceNumber\":\"1\"},{\"ErrorCode\":"
               "\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"slow\"}]}");
    assert_int_equal(r.verdicts[0], WIRE_ACCEPTED);
    assert_int_equal(r.verdicts[1], WIRE_KEEP);
    wire_result_free(&r);
}

static void long_and_bad_inputs(void **state)
{
    (void)state;
    char big[4096];
    memset(big, 'x', sizeof big);
    char body[5000];
    snprintf(body, sizeof body, "{\"message\":\"%.*s\"}", (int)sizeof big - 1, big);
    char header[600];
    memset(header, 'T', sizeof header - 1);
    header[sizeof header - 1] = '\0';
    wire_result_t r = decode(EVREC_SERVICE_PINPOINT, 3, 500, header, body);
    assert_int_equal(r.outcome, WIRE_RETRY);
    assert_int_equal(strlen(r.message), sizeof r.message - 1);
    assert_int_equal(strlen(r.error_type), sizeof r.error_type - 1);
    wire_result_free(&r);

    batch_t b = make_batch(EVREC_SERVICE_PINPOINT, g_pp, 1);
    assert_int_equal(service_decode(&b, 202, NULL, NULL, 4, &r), EVREC_E_INVALID);
    assert_int_equal(service_decode(NULL, 202, NULL, "{}", 2, &r), EVREC_E_INVALID);
    assert_int_equal(service_decode(&b, 202, NULL, "{}", 2, NULL), EVREC_E_INVALID);
    wire_result_free(NULL);

    /* an empty batch is fine and says nothing */
    b.n = 0;
    assert_int_equal(service_decode(&b, 202, NULL, "{\"Results\":{}}", 14, &r), EVREC_OK);
    assert_int_equal(r.outcome, WIRE_OK);
    assert_int_equal(r.n, 0);
    wire_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pinpoint_one_endpoint),
        cmocka_unit_test(pinpoint_several_endpoints),
        cmocka_unit_test(pinpoint_escaped_ids),
        cmocka_unit_test(pinpoint_hundred_events),
        cmocka_unit_test(pinpoint_refusals),
        cmocka_unit_test(botocore_check_refuses_bad_bodies),
        cmocka_unit_test(personalize_shape),
        cmocka_unit_test(personalize_refusals),
        cmocka_unit_test(paths),
        cmocka_unit_test(pinpoint_per_event_verdicts),
        cmocka_unit_test(pinpoint_answers_matched_by_key),
        cmocka_unit_test(malformed_2xx_never_drops),
        cmocka_unit_test(personalize_accepts_empty_200),
        cmocka_unit_test(request_level_outcomes),
        cmocka_unit_test(long_and_bad_inputs),
        cmocka_unit_test(answers_counted_without_a_tree),
        cmocka_unit_test(base64_as_mbedtls_writes_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
