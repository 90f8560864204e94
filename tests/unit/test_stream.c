/* The Kinesis Data Streams and Data Firehose backends: request bodies (checked with botocore's
 * PutRecords / PutRecordBatch models, the services' size limits, and the record schema), the
 * records' JSON, partition keys, size limits, and the verdicts of per-record answers and of
 * the services' errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>

#include "evrec.h"
#include "port.h"
#include "event.h"
#include "record.h"
#include "service.h"
#include "service_stream.h"
#include "testutil.h"
#include "wire.h"

static const char *const FRAG_PP =
    "{\"EventType\":\"level.done\",\"Timestamp\":\"2026-11-22T10:00:00.123Z\","
    "\"Attributes\":{\"level\":\"dungeon \\\"7\\\"\"},\"Metrics\":{\"score\":1234.5},"
    "\"Session\":{\"Id\":\"sess-1\",\"StartTimestamp\":\"2026-11-22T09:59:00.000Z\"},"
    "\"AppPackageName\":\"com.example\",\"AppVersionCode\":\"42\",\"SdkName\":\"evrec\","
    "\"ClientSdkVersion\":\"0.1.0\"}";
static const char *const FRAG_PZ =
    "{\"eventId\":\"pz-1\",\"eventType\":\"watch\",\"sentAt\":1763805600.5,\"itemId\":\"m-9\"}";
static const char *const PROFILE =
    "{\"Demographic\":{\"Make\":\"Acme\",\"Model\":\"Box\",\"Platform\":\"linux\","
    "\"PlatformVersion\":\"6.1\",\"Locale\":\"en_US\",\"AppVersion\":\"1.2\"},"
    "\"User\":{\"UserId\":\"u-1\"}}";

static batch_event_t make_event(uint64_t seq, unsigned shape, const char *id, const char *frag)
{
    batch_event_t e = { 0 };
    e.seq = seq;
    e.shape = (uint8_t)shape;
    e.event_id = (char *)id;
    e.endpoint_id = (char *)"device-1";
    e.session_id = (char *)(shape == RECORD_SHAPE_PERSONALIZE ? "sess-pz" : "");
    e.user_id = (char *)(shape == RECORD_SHAPE_PERSONALIZE ? "user-pz" : "");
    e.fragment = frag;
    e.fragment_len = strlen(frag);
    return e;
}

static batch_t make_batch(evrec_service_t svc, batch_event_t *ev, size_t n)
{
    batch_t b = { 0 };
    b.rules = service_rules(svc);
    b.events = ev;
    b.n = b.cap = n;
    return b;
}

static int profile_lookup(void *user, const char *endpoint_id, char **json)
{
    int *calls = user;
    (*calls)++;
    *json = strcmp(endpoint_id, "device-1") == 0 ? port_strdup(PROFILE) : NULL;
    return *json ? EVREC_OK : EVREC_E_NOT_FOUND;
}

static void assert_valid(const char *service, const char *body)
{
    char *why = NULL;
    int rc = tu_validate_request(service, NULL, body, &why);
    if (rc != 0)
        print_error("botocore says: %s\nbody: %.2000s\n", why ? why : "", body);
    free(why);
    assert_int_equal(rc, 0);
}

/* Record i's data, decoded (malloc'ed, NUL-terminated). */
static char *record_data(const cJSON *root, int i, size_t *len)
{
    const cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "Records"), i);
    const char *b64 = cJSON_GetObjectItem(rec, "Data")->valuestring;
    size_t cap = strlen(b64), n = 0;
    unsigned char *out = malloc(cap + 1);
    assert_int_equal(mbedtls_base64_decode(out, cap, &n, (const unsigned char *)b64, strlen(b64)),
                     0);
    out[n] = '\0';
    *len = n;
    return (char *)out;
}

static const char *jstr(const cJSON *o, const char *a, const char *b)
{
    const cJSON *it = cJSON_GetObjectItem(o, a);
    if (b)
        it = cJSON_GetObjectItem(it, b);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *a, const char *b)
{
    const cJSON *it = cJSON_GetObjectItem(o, a);
    if (b)
        it = cJSON_GetObjectItem(it, b);
    return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

static cJSON *encode(evrec_service_t svc, service_ctx_t *c, batch_event_t *ev, size_t n,
                     char **body)
{
    batch_t b = make_batch(svc, ev, n);
    size_t len = 0;
    assert_int_equal(service_get(svc)->encode(c, &b, body, &len), EVREC_OK);
    assert_int_equal(len, strlen(*body));
    cJSON *root = cJSON_Parse(*body);
    assert_non_null(root);
    return root;
}

/* -- Kinesis ------------------------------------------------------------------------------- */

static void kinesis_records_in_pinpoints_stream_shape(void **state)
{
    (void)state;
    int calls = 0;
    service_ctx_t c = { .application_id = "app-1", .stream_name = "clicks",
                        .profile = profile_lookup, .profile_user = &calls,
                        .now_ms = 1763805700000LL };
    batch_event_t ev[] = { make_event(1, RECORD_SHAPE_PINPOINT, "ev-1", FRAG_PP),
                           make_event(2, RECORD_SHAPE_PINPOINT, "ev-2", FRAG_PP),
                           make_event(3, RECORD_SHAPE_PERSONALIZE, "pz-1", FRAG_PZ) };
    char *body = NULL;
    cJSON *root = encode(EVREC_SERVICE_KINESIS, &c, ev, 3, &body);
    assert_valid("kinesis", body);
    assert_int_equal(calls, 1); /* one lookup for a run of one endpoint's events */
    assert_string_equal(jstr(root, "StreamName", NULL), "clicks");
    assert_null(cJSON_GetObjectItem(root, "StreamARN"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "Records")), 3);
    const cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "Records"), 0);
    assert_string_equal(jstr(r0, "PartitionKey", NULL), "device-1");

    size_t len = 0;
    char *data = record_data(root, 0, &len);
    cJSON *d = cJSON_Parse(data);
    assert_non_null(d);
    assert_string_equal(jstr(d, "event_type", NULL), "level.done");
    assert_true(jnum(d, "event_timestamp", NULL) == 1795341600123.0);
    assert_true(jnum(d, "arrival_timestamp", NULL) == 1763805700000.0);
    assert_string_equal(jstr(d, "event_version", NULL), "3.1");
    assert_string_equal(jstr(d, "event_id", NULL), "ev-1");
    assert_string_equal(jstr(d, "application", "app_id"), "app-1");
    assert_string_equal(jstr(d, "application", "package_name"), "com.example");
    assert_string_equal(jstr(d, "application", "version_code"), "42");
    assert_string_equal(jstr(d, "application", "version_name"), "1.2");
    assert_string_equal(jstr(cJSON_GetObjectItem(d, "application"), "sdk", "name"), "evrec");
    assert_string_equal(jstr(d, "client", "client_id"), "device-1");
    assert_string_equal(jstr(d, "device", "make"), "Acme");
    assert_string_equal(jstr(d, "device", "model"), "Box");
    assert_string_equal(jstr(cJSON_GetObjectItem(d, "device"), "platform", "name"), "linux");
    assert_string_equal(jstr(cJSON_GetObjectItem(d, "device"), "locale", "country"), "US");
    assert_string_equal(jstr(d, "session", "session_id"), "sess-1");
    assert_true(jnum(d, "session", "start_timestamp") == 1795341540000.0);
    assert_string_equal(jstr(d, "attributes", "level"), "dungeon \"7\"");
    assert_true(jnum(d, "metrics", "score") == 1234.5);
    assert_string_equal(jstr(cJSON_GetObjectItem(d, "endpoint"), "User", "UserId"), "u-1");
    assert_null(strchr(data, '\n'));
    cJSON_Delete(d);
    free(data);

    /* Personalize-shaped: its own JSON with userId and sessionId */
    data = record_data(root, 2, &len);
    d = cJSON_Parse(data);
    assert_string_equal(jstr(d, "eventType", NULL), "watch");
    assert_string_equal(jstr(d, "eventId", NULL), "pz-1");
    assert_string_equal(jstr(d, "itemId", NULL), "m-9");
    assert_string_equal(jstr(d, "userId", NULL), "user-pz");
    assert_string_equal(jstr(d, "sessionId", NULL), "sess-pz");
    assert_null(cJSON_GetObjectItem(d, "event_type"));
    cJSON_Delete(d);
    free(data);
    cJSON_Delete(root);
    port_free(body);
}

static void kinesis_partition_keys_and_arn(void **state)
{
    (void)state;
    service_ctx_t c = { .stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks",
                        .partition_key = EVREC_PARTITION_SESSION };
    batch_event_t ev[] = { make_event(1, RECORD_SHAPE_PINPOINT, "ev-1", FRAG_PP),
                           make_event(2, RECORD_SHAPE_PERSONALIZE, "pz-1", FRAG_PZ),
                           make_event(3, RECORD_SHAPE_PINPOINT, "ev-3",
                                      "{\"EventType\":\"x\",\"Timestamp\":"
                                      "\"2026-11-22T10:00:00.000Z\"}") };
    char *body = NULL;
    cJSON *root = encode(EVREC_SERVICE_KINESIS, &c, ev, 3, &body);
    assert_valid("kinesis", body);
    assert_string_equal(jstr(root, "StreamARN", NULL), c.stream_arn);
    assert_null(cJSON_GetObjectItem(root, "StreamName"));
    const cJSON *recs = cJSON_GetObjectItem(root, "Records");
    assert_string_equal(jstr(cJSON_GetArrayItem(recs, 0), "PartitionKey", NULL), "sess-1");
    assert_string_equal(jstr(cJSON_GetArrayItem(recs, 1), "PartitionKey", NULL), "sess-pz");
    /* no session: the endpoint id */
    assert_string_equal(jstr(cJSON_GetArrayItem(recs, 2), "PartitionKey", NULL), "device-1");
    cJSON_Delete(root);
    port_free(body);

    c.partition_key = EVREC_PARTITION_RANDOM;
    root = encode(EVREC_SERVICE_KINESIS, &c, ev, 2, &body);
    recs = cJSON_GetObjectItem(root, "Records");
    const char *k0 = jstr(cJSON_GetArrayItem(recs, 0), "PartitionKey", NULL);
    const char *k1 = jstr(cJSON_GetArrayItem(recs, 1), "PartitionKey", NULL);
    assert_int_equal(strlen(k0), 36);
    assert_string_not_equal(k0, k1);
    cJSON_Delete(root);
    port_free(body);
}

/* -- Firehose ------------------------------------------------------------------------------ */

static void firehose_records_end_with_a_newline(void **state)
{
    (void)state;
    service_ctx_t c = { .delivery_stream_name = "to-s3" };
    batch_event_t ev[] = { make_event(1, RECORD_SHAPE_PINPOINT, "ev-1", FRAG_PP),
                           make_event(2, RECORD_SHAPE_PERSONALIZE, "pz-1", FRAG_PZ) };
    char *body = NULL;
    cJSON *root = encode(EVREC_SERVICE_FIREHOSE, &c, ev, 2, &body);
    assert_valid("firehose", body);
    assert_string_equal(jstr(root, "DeliveryStreamName", NULL), "to-s3");
    for (int i = 0; i < 2; i++) {
        size_t len = 0;
        char *data = record_data(root, i, &len);
        assert_true(len > 2);
        assert_int_equal(data[len - 1], '\n');
        assert_null(memchr(data, '\n', len - 1)); /* one line per event */
        assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "Records"),
                                                           i),
                                        "PartitionKey"));
        free(data);
    }
    cJSON_Delete(root);
    port_free(body);
}

/* A record over the limit (configured lower here) is refused as encoded, for the flusher to
 * split the batch down to it and drop it alone; the others fit. */
static void record_limits(void **state)
{
    (void)state;
    char *big = tu_repeat("x", 3000);
    char *frag = malloc(4000);
    snprintf(frag, 4000, "{\"EventType\":\"big\",\"Timestamp\":\"2026-11-22T10:00:00.000Z\","
                         "\"Attributes\":{\"a\":\"%s\"}}", big);
    service_ctx_t c = { .stream_name = "s", .max_record_bytes = 2048 };
    batch_event_t ev[] = { make_event(1, RECORD_SHAPE_PINPOINT, "ev-1", FRAG_PP),
                           make_event(2, RECORD_SHAPE_PINPOINT, "ev-2", frag) };
    batch_t b = make_batch(EVREC_SERVICE_KINESIS, ev, 2);
    char *body = (char *)"untouched";
    size_t len = 1;
    assert_int_equal(service_kinesis.encode(&c, &b, &body, &len), EVREC_E_EVENT_SIZE);
    assert_null(body);
    b.n = 1;
    assert_int_equal(service_kinesis.encode(&c, &b, &body, &len), EVREC_OK);
    port_free(body);
    c.max_record_bytes = 0; /* the service's 1 MiB: fits */
    b.n = 2;
    assert_int_equal(service_kinesis.encode(&c, &b, &body, &len), EVREC_OK);
    assert_valid("kinesis", body);
    port_free(body);
    /* the batcher's estimate is an upper bound of what the limits count */
    size_t est = service_kinesis.rules.added_bytes(&b, 1, 1);
    assert_true(est >= strlen(frag) + strlen("device-1"));
    free(frag);
    free(big);
    /* configuration each backend needs */
    char err[256];
    service_ctx_t none = { 0 };
    assert_int_equal(service_kinesis.check(&none, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "stream_name"));
    service_ctx_t both = { .stream_name = "a", .stream_arn = "arn:aws:kinesis:x" };
    assert_int_equal(service_kinesis.check(&both, err, sizeof err), EVREC_E_CONFIG);
    assert_int_equal(service_firehose.check(&none, err, sizeof err), EVREC_E_CONFIG);
    assert_non_null(strstr(err, "delivery_stream_name"));
    assert_int_equal(service_firehose.check(&c, err, sizeof err), EVREC_E_CONFIG);
    service_ctx_t fh = { .delivery_stream_name = "d" };
    assert_int_equal(service_firehose.check(&fh, err, sizeof err), EVREC_OK);
}

/* -- answers ------------------------------------------------------------------------------- */

static batch_event_t g_ev[4];

static wire_result_t decode(evrec_service_t svc, size_t n, long status, const char *type,
                            const char *body)
{
    for (size_t i = 0; i < 4; i++)
        g_ev[i] = make_event(i + 1, RECORD_SHAPE_PINPOINT, "e", FRAG_PP);
    batch_t b = make_batch(svc, g_ev, n);
    wire_result_t r;
    assert_int_equal(service_decode(&b, status, type, body, body ? strlen(body) : 0, &r),
                     EVREC_OK);
    assert_int_equal(r.n, n);
    return r;
}

static void per_record_answers(void **state)
{
    (void)state;
    wire_result_t r = decode(EVREC_SERVICE_KINESIS, 3, 200, NULL,
                             "{\"FailedRecordCount\":1,\"Records\":["
                             "{\"SequenceNumber\":\"4960\",\"ShardId\":\"shardId-0\"},"
                             "{\"ErrorCode\":\"ProvisionedThroughputExceededException\","
                             "\"ErrorMessage\":\"Rate exceeded for shard\"},"
                             "{\"SequenceNumber\":\"4961\",\"ShardId\":\"shardId-0\"}]}");
    assert_int_equal(r.outcome, WIRE_OK);
    assert_int_equal(r.verdicts[0], WIRE_ACCEPTED);
    assert_int_equal(r.verdicts[1], WIRE_KEEP); /* retried, never dropped */
    assert_int_equal(r.verdicts[2], WIRE_ACCEPTED);
    assert_non_null(strstr(r.messages[1], "ProvisionedThroughputExceededException"));
    assert_string_equal(r.error_type, "ProvisionedThroughputExceededException");
    assert_true(r.kept_throttled);
    wire_result_free(&r);

    r = decode(EVREC_SERVICE_FIREHOSE, 2, 200, NULL,
               "{\"FailedPutCount\":1,\"Encrypted\":false,\"RequestResponses\":["
               "{\"ErrorCode\":\"ServiceUnavailableException\",\"ErrorMessage\":\"Slow down.\"},"
               "{\"RecordId\":\"abc\"}]}");
    assert_int_equal(r.outcome, WIRE_OK);
    assert_int_equal(r.verdicts[0], WIRE_KEEP);
    assert_int_equal(r.verdicts[1], WIRE_ACCEPTED);
    assert_true(r.kept_throttled);
    wire_result_free(&r);
    r = decode(EVREC_SERVICE_FIREHOSE, 1, 200, NULL,
               "{\"FailedPutCount\":1,\"RequestResponses\":[{\"ErrorCode\":\"InternalFailure\"}]}");
    assert_int_equal(r.verdicts[0], WIRE_KEEP);
    assert_false(r.kept_throttled);
    wire_result_free(&r);

    /* An answer that does not account for every record says nothing: all are kept. */
    const char *odd[] = { "{\"Records\":[{\"SequenceNumber\":\"1\"}]}", "{}", "[]",
                          "{\"Records\":[{},{},{}]}", NULL };
    for (int i = 0; odd[i]; i++) {
        r = decode(EVREC_SERVICE_KINESIS, 3, 200, NULL, odd[i]);
        for (size_t k = 0; k < 3; k++)
            assert_int_equal(r.verdicts[k], WIRE_KEEP);
        wire_result_free(&r);
    }
    /* Firehose's answer read with Kinesis's keys is not taken as delivery either */
    r = decode(EVREC_SERVICE_KINESIS, 1, 200, NULL, "{\"RequestResponses\":[{\"RecordId\":\"x\"}]}");
    assert_int_equal(r.verdicts[0], WIRE_KEEP);
    wire_result_free(&r);
}

static void error_classes(void **state)
{
    (void)state;
    struct {
        long status;
        const char *type;
        const char *message;
        wire_outcome_t want;
    } cases[] = {
        { 400, "ProvisionedThroughputExceededException", "Rate exceeded", WIRE_THROTTLED },
        { 400, "LimitExceededException", "limit", WIRE_THROTTLED },
        { 400, "KMSThrottlingException", "kms", WIRE_THROTTLED },
        { 503, "ServiceUnavailableException", "Slow down.", WIRE_RETRY },
        { 500, "InternalFailure", "oops", WIRE_RETRY },
        { 400, "ValidationException", "bad", WIRE_BAD_REQUEST },
        { 400, "InvalidArgumentException", "bad", WIRE_BAD_REQUEST },
        { 400, "ResourceNotFoundException", "Stream clicks not found", WIRE_AUTH },
        { 400, "AccessDeniedException", "no", WIRE_AUTH },
        { 400, "KMSAccessDeniedException", "kms", WIRE_AUTH },
        { 400, "KMSDisabledException", "kms", WIRE_AUTH },
        { 400, "KMSNotFoundException", "kms", WIRE_AUTH },
        { 400, "KMSInvalidStateException", "kms", WIRE_AUTH },
        { 400, "KMSOptInRequired", "kms", WIRE_AUTH },
        { 400, "InvalidKMSResourceException", "kms", WIRE_AUTH },
        { 400, "ExpiredTokenException", "The security token included in the request is expired",
          WIRE_EXPIRED_TOKEN },
        { 403, "InvalidSignatureException", "Signature expired: 20261206T000000Z is now earlier",
          WIRE_CLOCK_SKEW },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int svc = EVREC_SERVICE_KINESIS; svc <= EVREC_SERVICE_FIREHOSE; svc++) {
            char body[300];
            snprintf(body, sizeof body, "{\"__type\":\"%s\",\"message\":\"%s\"}", cases[i].type,
                     cases[i].message);
            wire_result_t r = decode((evrec_service_t)svc, 2, cases[i].status, NULL, body);
            if (r.outcome != cases[i].want)
                fail_msg("%s: outcome %d, want %d", cases[i].type, r.outcome, cases[i].want);
            assert_int_equal(r.verdicts[0], WIRE_KEEP);
            assert_string_equal(r.error_type, cases[i].type);
            wire_result_free(&r);
        }
    }
}

/* The record data is the same bytes whichever way it is made: the fast conversion (fragments
 * in the layout event_encode.c writes) against the cJSON tree conversion it falls back to. */
static const stream_format_t FMT_K = { .partition_key = 1, .max_record_bytes = 1u << 20,
                                       .max_request_bytes = 5u << 20 };
static const stream_format_t FMT_F = { .newline = 1, .max_record_bytes = 1000u << 10,
                                       .max_request_bytes = 4u << 20 };

static void assert_same_data(const batch_event_t *ev, const char *profile_text,
                             const char *app_id)
{
    stream_profile_t prof;
    memset(&prof, 0, sizeof prof);
    if (profile_text) {
        prof.text = port_strdup(profile_text);
        prof.parsed = cJSON_Parse(prof.text);
        assert_int_equal(stream_profile_prepare(&prof), EVREC_OK);
    }
    service_ctx_t c;
    memset(&c, 0, sizeof c);
    c.now_ms = 1764000000123;
    c.application_id = app_id;
    for (int f = 0; f < 2; f++) {
        const stream_format_t *fmt = f ? &FMT_F : &FMT_K;
        char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        int ra = stream_record_data(fmt, &c, ev, profile_text ? &prof : NULL, &a, &alen);
        int rb = stream_record_data_tree(fmt, &c, ev, profile_text ? &prof : NULL, &b, &blen);
        assert_int_equal(ra, rb);
        if (ra == EVREC_OK) {
            if (alen != blen || memcmp(a, b, alen) != 0)
                fail_msg("fragment %.*s\n fast %s\n tree %s", (int)ev->fragment_len,
                         ev->fragment, a, b);
            assert_int_equal(a[alen], '\0');
        }
        port_free(a);
        port_free(b);
    }
    cJSON_Delete(prof.parsed);
    port_free(prof.text);
    port_free(prof.app_tail);
    port_free(prof.record_tail);
}

static void conversion_matches_the_tree(void **state)
{
    (void)state;
    static const char *const values[] = {
        "plain", "", "quote \" back \\ slash", "tab\there\nnew\rret\bbs\fff", "\x01\x1f\x7f",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\xff\xfe invalid utf-8", "/slash/",
        "{\"not\":\"json\"}", "1234",
    };
    static const double numbers[] = {
        0.0, -0.0, 1.0, -1.0, 9.99, 1e300, -1e-300, 2147483647.0, 2147483648.0, -2147483649.0,
        0.1, 1.0 / 3.0, 123456789012345678.0, 5e-324, 1e21, 12.5,
    };
    static const char *const profiles[] = {
        NULL, "{\"Demographic\":{\"Make\":\"A\\\"cme\",\"Model\":\"Box\",\"Platform\":\"linux\","
              "\"PlatformVersion\":\"6.1\",\"Locale\":\"en_US\",\"AppVersion\":\"1.2\"},"
              "\"User\":{\"UserId\":\"u-1\"}}",
        "{\"Address\":\"x\"}", "{\"Demographic\":{\"Locale\":\"fr\"}}", "[1,2]", "not json",
    };
    const size_t nv = sizeof values / sizeof values[0], nn = sizeof numbers / sizeof numbers[0];
    uint64_t rnd = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 600; i++) {
        rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
        evrec_event_t *e = NULL;
        if (!values[rnd % nv][0] || rnd % 5 == 0 ||
            evrec_event_new(&e, values[rnd % nv]) != EVREC_OK) /* not UTF-8: refused */
            assert_int_equal(evrec_event_new(&e, "app.view"), EVREC_OK);
        int nattr = (int)(rnd >> 8) % 5, nmetric = (int)(rnd >> 12) % 5;
        for (int a = 0; a < nattr; a++) {
            char name[32];
            snprintf(name, sizeof name, "%s%d", a % 2 ? "k\"" : "attr", a);
            evrec_event_set_attribute(e, name, values[(rnd >> (3 + 5 * a)) % nv]);
        }
        for (int m = 0; m < nmetric; m++) {
            char name[32];
            snprintf(name, sizeof name, "m\\%d", m);
            evrec_event_set_metric(e, name, numbers[(rnd >> (7 + 6 * m)) % nn]);
        }
        if (rnd & (1u << 25))
            evrec_event_set_field(e, "AppTitle", values[(rnd >> 26) % nv]);
        if (rnd & (1u << 27))
            evrec_event_set_field(e, "AppPackageName", "com.example");
        if (rnd & (1u << 28))
            evrec_event_set_field(e, "AppVersionCode", "42");
        if (rnd & (1u << 29))
            evrec_event_set_field(e, "SdkName", "my \"sdk\"");
        event_context_t ctx = { 0 };
        ctx.preferred_shape = RECORD_SHAPE_PINPOINT;
        ctx.endpoint_id = "dev\"ice-1";
        ctx.now_ms = 1764000000000 + (int64_t)(rnd % 100000);
        if (rnd & (1u << 30)) {
            ctx.session_id = values[(rnd >> 31) % nv][0] ? values[(rnd >> 31) % nv] : "s";
            ctx.session_start_ms = ctx.now_ms - 5000;
            if (rnd & (1ull << 35)) {
                ctx.session_stop_ms = ctx.now_ms;
                ctx.session_duration_ms = 5000;
            } else {
                ctx.session_duration_ms = -1;
            }
        }
        uint8_t *rec = NULL;
        size_t len = 0;
        int truncated = 0;
        char err[256];
        assert_int_equal(event_encode_record(e, &ctx, &rec, &len, &truncated, err, sizeof err),
                         EVREC_OK);
        evrec_record_view_t v;
        assert_int_equal(evrec_record_decode(rec, len, &v), EVREC_OK);
        char *frag = malloc(v.fragment_len + 1), *id = malloc(v.event_id_len + 1);
        memcpy(frag, v.fragment, v.fragment_len);
        frag[v.fragment_len] = '\0';
        memcpy(id, v.event_id, v.event_id_len);
        id[v.event_id_len] = '\0';
        batch_event_t ev = make_event(1, RECORD_SHAPE_PINPOINT, id, frag);
        ev.endpoint_id = (char *)ctx.endpoint_id;
        assert_same_data(&ev, profiles[(rnd >> 40) % 6], rnd & (1ull << 45) ? "app-1" : NULL);
        free(frag);
        free(id);
        port_free(rec);
        evrec_event_free(e);
    }
    /* Fragments in other layouts (older firmware, other writers) come out as before too. */
    static const char *const others[] = {
        FRAG_PP,
        "{\"EventType\":\"a\",\"Timestamp\":\"2026-11-22T10:00:00Z\"}",
        "{ \"EventType\":\"a\" }",
        "{\"Timestamp\":\"2026-11-22T10:00:00.123Z\",\"EventType\":\"a\"}",
        "{\"EventType\":\"a\\/b\\u00e9\\ud83d\\ude00\"}",
        "{\"EventType\":\"a\",\"Metrics\":{\"x\":1.0,\"y\":1E2,\"z\":-0,\"w\":0.10000000000000001}}",
        "{\"EventType\":\"a\",\"Attributes\":{\"x\":{\"nested\":1}}}",
        "{\"EventType\":\"a\",\"Attributes\":{\"x\":\"1\",\"x\":\"2\"},\"Metrics\":{}}",
        "{\"EventType\":\"a\",\"Attributes\":[]}",
        "{\"EventType\":7,\"Timestamp\":\"yesterday\"}",
        "{\"EventType\":\"a\",\"Timestamp\":\"not a date\",\"Session\":{\"Id\":5}}",
        "{\"EventType\":\"a\",\"Session\":{}}",
        "{\"EventType\":\"a\",\"Session\":{\"StartTimestamp\":\"2026-11-22T10:00:00.000Z\"}}",
        "{\"EventType\":\"a\",\"Unknown\":1}",
        "{\"EventType\":\"a\"} trailing",
        "{\"EventType\":\"a\",\"EventType\":\"b\"}",
        "{\"EventType\":\"a\\u0000b\"}",
        "{\"EventType\":\"a\\u001f\",\"Timestamp\":\"2026-11-22T10:00:00.000\\u005a\"}",
        "{\"EventType\":\"a\",\"Metrics\":{\"big\":1e999,\"t\":true,\"n\":null}}",
        "{}",
        "{\"EventType\":\"\xff\xfe\",\"Attributes\":{\"\xc3\":\"\x80\"}}",
        "{\"EventType\":\"a\"",
        "[]",
        "",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        batch_event_t ev = make_event(1, RECORD_SHAPE_PINPOINT, "ev-1", others[i]);
        for (size_t p = 0; p < 3; p++)
            assert_same_data(&ev, profiles[p], p ? "app-1" : NULL);
    }
}

static void backends_table(void **state)
{
    (void)state;
    const service_ops_t *k = service_by_name("kinesis"), *f = service_by_name("firehose");
    assert_ptr_equal(k, service_get(EVREC_SERVICE_KINESIS));
    assert_ptr_equal(f, service_get(EVREC_SERVICE_FIREHOSE));
    assert_string_equal(k->signing_name, "kinesis");
    assert_string_equal(f->signing_name, "firehose");
    assert_string_equal(k->target, "Kinesis_20131202.PutRecords");
    assert_string_equal(f->target, "Firehose_20150804.PutRecordBatch");
    assert_string_equal(k->content_type, "application/x-amz-json-1.1");
    assert_string_equal(f->content_type, "application/x-amz-json-1.1");
    assert_int_equal(k->rules.max_events, 500);
    assert_int_equal(f->rules.max_events, 500);
    assert_int_equal(k->rules.max_bytes, 5u * 1024 * 1024);
    assert_int_equal(f->rules.max_bytes, 4u * 1024 * 1024);
    assert_int_equal(k->max_record_bytes, 1024u * 1024);
    assert_int_equal(f->max_record_bytes, 1000u * 1024);
    for (unsigned shape = 0; shape < RECORD_SHAPES; shape++) {
        assert_true(service_carries(k, shape));
        assert_true(service_carries(f, shape));
    }
    assert_true(service_carries(service_get(EVREC_SERVICE_PINPOINT), RECORD_SHAPE_PINPOINT));
    assert_false(service_carries(service_get(EVREC_SERVICE_PINPOINT),
                                 RECORD_SHAPE_PERSONALIZE));
    assert_false(service_carries(service_get(EVREC_SERVICE_PERSONALIZE),
                                 RECORD_SHAPE_PINPOINT));
    char titles[160];
    service_titles_for_shape(RECORD_SHAPE_PERSONALIZE, titles, sizeof titles);
    assert_string_equal(titles, "Personalize or Kinesis or Firehose");
    char *p = NULL;
    assert_int_equal(k->path(NULL, &p), EVREC_OK);
    assert_string_equal(p, "/");
    port_free(p);
    assert_null(service_by_name("sqs"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kinesis_records_in_pinpoints_stream_shape),
        cmocka_unit_test(conversion_matches_the_tree),
        cmocka_unit_test(kinesis_partition_keys_and_arn),
        cmocka_unit_test(firehose_records_end_with_a_newline),
        cmocka_unit_test(record_limits),
        cmocka_unit_test(per_record_answers),
        cmocka_unit_test(error_classes),
        cmocka_unit_test(backends_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
