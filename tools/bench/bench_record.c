/*
 * evrec_record() through the public API: latency percentiles per durability mode, and its
 * throughput as a ratio of queue_append() of the same encoded bytes in the same mode (the
 * cost of validation, encoding, session lookup and the agent around the store).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "record.h"
#include "evrec.h"
#include "queue.h"

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static evrec_event_t *make_event(int i)
{
    evrec_event_t *ev = NULL;
    char v[32];
    snprintf(v, sizeof v, "value-%d", i);
    evrec_event_new(&ev, "bench.event");
    evrec_event_set_attribute(ev, "screen", "home");
    evrec_event_set_attribute(ev, "variant", v);
    evrec_event_set_attribute(ev, "locale", "en_GB");
    evrec_event_set_metric(ev, "load_ms", 12.5 + i);
    evrec_event_set_metric(ev, "count", i);
    return ev;
}

typedef struct result {
    double per_s, p50, p99, max;
    int over_1ms; /* calls that waited on the disk (fsync, commit, writeback) */
} result_t;

static result_t run_record(const char *dir, evrec_durability_t mode, int n)
{
    evrec_options_t o;
    evrec_options_init(&o);
    o.no_flusher = 1;
    o.durability = mode;
    evrec_t *a = NULL;
    char msg[256];
    if (evrec_open(&a, dir, &o, msg, sizeof msg) != EVREC_OK) {
        fprintf(stderr, "bench_record: %s\n", msg);
        exit(1);
    }
    evrec_session_start(a);
    double *lat = malloc(sizeof *lat * (size_t)n);
    double total = 0; /* only inside evrec_record(): building events is the caller's */
    for (int i = 0; i < n; i++) {
        evrec_event_t *ev = make_event(i);
        double s = now_us();
        if (evrec_record(a, ev) != EVREC_OK) {
            fprintf(stderr, "bench_record: %s\n", evrec_last_error(a));
            exit(1);
        }
        lat[i] = now_us() - s;
        total += lat[i];
        evrec_event_free(ev);
    }
    evrec_close(a, 0);
    int slow = 0;
    for (int i = 0; i < n; i++)
        slow += lat[i] > 1000.0;
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    result_t r = { n / (total / 1e6), lat[n / 2], lat[(size_t)(n * 0.99)], lat[n - 1], slow };
    free(lat);
    return r;
}

/* The same events, encoded beforehand, appended straight to the queue. */
static double run_append(const char *dir, evrec_durability_t mode, int n)
{
    queue_config_t qc = { mode, 1000, 1000, 100, 64ull << 20, EVREC_FULL_DROP_OLDEST, 0, 0 };
    evrec_queue_t *q = NULL;
    char err[256];
    if (queue_open(&q, dir, &qc, err, sizeof err) != EVREC_OK) {
        fprintf(stderr, "bench_record: %s\n", err);
        exit(1);
    }
    uint8_t **recs = malloc(sizeof *recs * (size_t)n);
    size_t *lens = malloc(sizeof *lens * (size_t)n);
    event_context_t ctx = { 0 };
    ctx.preferred_shape = RECORD_SHAPE_PINPOINT;
    ctx.now_ms = 1764547200000LL;
    ctx.endpoint_id = "0b6cf0f4-5d6e-4b1f-9d43-8c5a3c1f2e77";
    ctx.session_id = "5d6e0b6c-f0f4-4b1f-9d43-8c5a3c1f2e77";
    ctx.session_start_ms = ctx.now_ms;
    ctx.session_duration_ms = -1;
    for (int i = 0; i < n; i++) {
        evrec_event_t *ev = make_event(i);
        int t;
        event_encode_record(ev, &ctx, &recs[i], &lens[i], &t, err, sizeof err);
        evrec_event_free(ev);
    }
    double t0 = now_us();
    for (int i = 0; i < n; i++)
        queue_append(q, recs[i], lens[i], 0, NULL);
    double t1 = now_us();
    queue_close(q);
    for (int i = 0; i < n; i++)
        free(recs[i]);
    free(recs);
    free(lens);
    return n / ((t1 - t0) / 1e6);
}

int main(void)
{
    static const struct {
        const char *name;
        evrec_durability_t mode;
        int n;
    } modes[] = {
        { "process", EVREC_DURABLE_PROCESS, 20000 },
        { "batched", EVREC_DURABLE_BATCHED, 20000 },
        { "power", EVREC_DURABLE_POWER, 300 },
    };
    char base[] = "/tmp/evrec-bench-record-XXXXXX";
    if (!mkdtemp(base))
        return 1;
    printf("evrec_record() with 3 attributes + 2 metrics inside a session:\n");
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        char d1[128], d2[128];
        snprintf(d1, sizeof d1, "%s/rec-%s", base, modes[m].name);
        snprintf(d2, sizeof d2, "%s/raw-%s", base, modes[m].name);
        double raw = run_append(d2, modes[m].mode, modes[m].n);
        result_t r = run_record(d1, modes[m].mode, modes[m].n);
        printf("  %-8s %9.0f events/s  p50 %7.1f us  p99 %7.1f us  max %8.1f us  "
               "%4d of %d calls > 1 ms  = %.2fx of queue_append alone\n",
               modes[m].name, r.per_s, r.p50, r.p99, r.max, r.over_1ms, modes[m].n,
               r.per_s / raw);
    }
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
