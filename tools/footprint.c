/*
 * Footprint workload for `make size` (run under valgrind massif): record N events (default
 * 10,000) and flush them to the endpoint given by EVREC_FOOTPRINT_URL, with a small-device
 * configuration. Without the URL it only records. Prints the request body bound it used, so
 * the report can compare peak heap with "256 KiB + one request body".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evrec.h"

/* Counts what evrec itself (and cJSON on its behalf) has allocated, through
 * evrec_set_allocator(): the part of the heap that is evrec's to keep small. LMDB, libcurl and
 * the TLS library allocate with the C library and show only in massif's total. */
typedef struct { size_t size; size_t pad; } hdr_t;
static size_t live, peak;

static void *count_malloc(size_t n)
{
    hdr_t *h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    h->size = n;
    live += n;
    if (live > peak)
        peak = live;
    return h + 1;
}

static void count_free(void *p)
{
    if (!p)
        return;
    hdr_t *h = (hdr_t *)p - 1;
    live -= h->size;
    free(h);
}

static void *count_realloc(void *p, size_t n)
{
    if (!p)
        return count_malloc(n);
    hdr_t *h = (hdr_t *)p - 1;
    size_t old = h->size;
    hdr_t *nh = realloc(h, sizeof *nh + n);
    if (!nh)
        return NULL;
    live = live - old + n;
    nh->size = n;
    if (live > peak)
        peak = live;
    return nh + 1;
}

int main(int argc, char **argv)
{
    int events = 10000;
    const char *store = "build-os/footprint-store"; /* make size passes a temporary one */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--events"))
            events = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--store"))
            store = argv[i + 1];
    }
    const char *url = getenv("EVREC_FOOTPRINT_URL");
    evrec_set_allocator(count_malloc, count_realloc, count_free);
    evrec_options_t o;
    evrec_options_init(&o);
    o.application_id = "footprint";
    o.region = "us-east-1";
    o.access_key_id = "AKIDEXAMPLE";
    o.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    o.no_environment_credentials = 1;
    o.max_request_bytes = 64 * 1024;
    o.max_store_bytes = 8u << 20;
    if (url) { /* flushed by hand: evrec_poll, no flusher thread */
        o.manual_flush = 1;
        o.endpoint_url = url;
    } else {
        o.no_flusher = 1; /* record only (the two exclude each other) */
    }
    char msg[256];
    evrec_t *a = NULL;
    int rc = evrec_open(&a, store, &o, msg, sizeof msg);
    if (rc != EVREC_OK) {
        fprintf(stderr, "open: %s: %s\n", evrec_strerror(rc), msg);
        return 1;
    }
    for (int i = 0; i < events; i++) {
        evrec_event_t *ev = NULL;
        if (evrec_event_new(&ev, "footprint.sample") != EVREC_OK)
            return 1;
        evrec_event_set_attribute(ev, "sensor", "temperature");
        evrec_event_set_metric(ev, "value", i * 0.5);
        rc = evrec_record(a, ev);
        evrec_event_free(ev);
        if (rc != EVREC_OK) {
            fprintf(stderr, "record: %s\n", evrec_last_error(a));
            return 1;
        }
        if (url && i % 500 == 499)
            evrec_flush(a, 10000);
    }
    if (url)
        rc = evrec_flush(a, 60000);
    evrec_stats_t st = { .struct_size = sizeof st };
    evrec_stats(a, &st);
    printf("recorded=%d delivered=%llu queued=%llu\n", events, (unsigned long long)st.delivered,
           (unsigned long long)st.queued_events);
    printf("max_request_body_bytes=%zu\n", o.max_request_bytes);
    printf("evrec_heap_peak_bytes=%zu\n", peak);
    evrec_close(a, 0);
    return rc == EVREC_OK ? 0 : 1;
}
