/* Fuzz the event builder API: the input is a little program of builder calls with arguments
 * cut from the input itself (any bytes, including invalid UTF-8 and huge lengths). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_encode.h"

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader_t;

static int next_byte(reader_t *r)
{
    if (!r->left)
        return -1;
    r->left--;
    return *r->p++;
}

/* A string argument: one length byte (scaled so that over-long values are reachable), then
 * that many bytes (repeated if the input runs short). */
static char *next_string(reader_t *r)
{
    int l = next_byte(r);
    if (l < 0)
        return NULL;
    size_t len = (size_t)l < 200 ? (size_t)l : (size_t)l * 8;
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int c = r->left ? next_byte(r) : 'a' + (int)(i % 26);
        s[i] = (char)(c ? c : 'x');
    }
    s[len] = '\0';
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader_t r = { data, size };
    char *type = next_string(&r);
    evrec_event_t *ev = NULL;
    if (!type || evrec_event_new(&ev, type) != EVREC_OK) {
        free(type);
        return 0;
    }
    free(type);
    int op;
    while ((op = next_byte(&r)) >= 0) {
        char *a = next_string(&r), *b = NULL;
        switch (op % 12) {
        case 0: b = next_string(&r); if (a && b) evrec_event_set_attribute(ev, a, b); break;
        case 1: if (a) evrec_event_set_metric(ev, a, (double)(op - 128) / 3.0); break;
        case 2: if (a) evrec_event_set_timestamp_iso(ev, a); break;
        case 3: if (a) evrec_event_set_id(ev, a); break;
        case 4: b = next_string(&r); if (a && b) evrec_event_set_field(ev, a, b); break;
        case 5: if (a) evrec_event_set_properties(ev, a); break;
        case 6: if (a) evrec_event_add_impression(ev, a); break;
        case 7: if (a) evrec_event_set_item_id(ev, a); break;
        case 8: if (a) evrec_event_set_user_id(ev, a); break;
        case 9: if (a) evrec_event_set_session_id(ev, a); break;
        case 10: evrec_event_set_timestamp(ev, (int64_t)op * 86400000LL * 365); break;
        default: if (a) evrec_event_set_metric_attribution(ev, a); break;
        }
        free(a);
        free(b);
    }
    fuzz_encode_both(ev);
    evrec_event_free(ev);
    return 0;
}
