/* Fuzz the service-answer decoders (service_decode) of every backend. Input: one byte picks
 * the HTTP status and, with the second's top bit, the service (Pinpoint, Personalize, Kinesis,
 * Firehose); the second the x-amzn-ErrorType header variant; the rest is the response body. The batch names endpoints and events the body may or may not mention. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"
#include "wire.h"

static const long statuses[] = { 200, 202, 400, 403, 404, 413, 429, 500, 503, 504, 302, 0 };
static const char *const error_types[] = {
    NULL, "TooManyRequestsException", "BadRequestException:http://internal.amazon.com/",
    "InvalidSignatureException", "ExpiredTokenException", "PayloadTooLargeException", "",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    char ev_ids[3][8] = { "e1", "e2", "e3" };
    char ep_ids[2][8] = { "ep-1", "ep-2" };
    batch_event_t events[3];
    memset(events, 0, sizeof events);
    for (int i = 0; i < 3; i++) {
        events[i].seq = (uint64_t)i + 1;
        events[i].event_id = ev_ids[i];
        events[i].endpoint_id = ep_ids[i % 2];
        events[i].session_id = (char *)"s";
        events[i].user_id = (char *)"";
        events[i].fragment = (char *)"{}";
        events[i].fragment_len = 2;
    }
    batch_t b;
    memset(&b, 0, sizeof b);
    static const evrec_service_t services[] = { EVREC_SERVICE_PINPOINT, EVREC_SERVICE_PERSONALIZE,
                                                EVREC_SERVICE_KINESIS, EVREC_SERVICE_FIREHOSE };
    b.rules = service_rules(services[((data[0] & 0x80) ? 1 : 0) | ((data[1] & 0x80) ? 2 : 0)]);
    b.events = events;
    b.n = 3;
    b.cap = 3;
    long status = statuses[(data[0] & 0x7f) % (sizeof statuses / sizeof statuses[0])];
    const char *et = error_types[data[1] % (sizeof error_types / sizeof error_types[0])];
    /* The transport always hands over a NUL-terminated body; keep that contract here. */
    char *body = malloc(size - 2 + 1);
    if (!body)
        return 0;
    memcpy(body, data + 2, size - 2);
    body[size - 2] = '\0';
    wire_result_t r;
    memset(&r, 0, sizeof r);
    if (service_decode(&b, status, et, body, size - 2, &r) == 0)
        wire_result_free(&r);
    free(body);
    return 0;
}
