/* Shared by the event fuzz targets: encode an accepted event for both services, as
 * evrec_record() would (the second time with truncation of over-long fields allowed). */
#ifndef EVREC_FUZZ_ENCODE_H
#define EVREC_FUZZ_ENCODE_H

#include <stdint.h>

#include "evrec.h"
#include "event.h"
#include "record.h"
#include "port.h"

static inline void fuzz_encode_both(evrec_event_t *ev)
{
    for (int svc = 0; svc < 2; svc++) {
        event_context_t ctx = { .preferred_shape = (uint8_t)svc, .now_ms = 1764000000000LL,
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
}

#endif
