/* Fuzz the JSON event input (evrec_event_from_json: `evrec record --json`, --events-file, the
 * CLI's event lists) and the one-time encoding of whatever it accepts, for both services. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    evrec_event_t *ev = NULL;
    if (evrec_event_from_json(&ev, (const char *)data, size ? size : 1) != EVREC_OK || !ev)
        return 0;
    fuzz_encode_both(ev);
    evrec_event_free(ev);
    return 0;
}
