/* Fuzz the JSON event input (evrec_event_from_json: `evrec record --json`, --events-file, the
 * CLI's event lists) and the one-time encoding of whatever it accepts, for both services. */
#include <stdint.h>
#include <stdlib.h>

#include "evrec.h"
#include "event.h"
#include "port.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    evrec_event_t *ev = NULL;
    if (evrec_event_from_json(&ev, (const char *)data, size ? size : 1) != EVREC_OK || !ev)
        return 0;
    for (int svc = 0; svc < 2; svc++) {
        event_context_t ctx = { .service = (evrec_service_t)svc, .now_ms = 1764000000000LL,
                                .endpoint_id = "fuzz-endpoint", .session_id = "fuzz-session",
                                .session_start_ms = 1763999990000LL, .session_stop_ms = 0,
                                .session_duration_ms = -1, .truncate_oversize = svc };
        uint8_t *rec = NULL;
        size_t len = 0;
        int truncated = 0;
        char err[256];
        if (event_encode_record(ev, &ctx, &rec, &len, &truncated, err, sizeof err) == EVREC_OK)
            port_free(rec);
    }
    evrec_event_free(ev);
    return 0;
}
