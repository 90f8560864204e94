/*
 * Fleet herd: what the service sees when it comes back after an outage.
 *
 * 10,000 simulated devices each record an event every 3 s and flush every 30 s (phases
 * random). From t = 0 the service fails every request for 10 minutes; each device retries on
 * its own backoff schedule, then on success drains its backlog (<= 100 events a request,
 * back to back) and returns to its 30-s flush. The clock is simulated (an event queue), the
 * randomness a seeded PRNG, so the run is deterministic and takes well under a second.
 *
 * Two retry policies on the same fleet: evrec's backoff_delay_ms (full jitter) and the same
 * exponential schedule without jitter, delay = min(cap, base * 2^attempt). Reported: the
 * steady request rate long after recovery, the highest one-second rate from the recovery on,
 * and their ratio ("peak at" and "all back by" count seconds from the recovery). Exit status 1 if full jitter lets the peak exceed 2x the steady rate.
 *
 * Simultaneous boots: the same fleet powered up within one second (a power cut ends, a
 * rollout reboots every device). Each device's `evrec agent` flushes once at start, then
 * periodically. Two phase policies: the first periodic flush one interval after the start and
 * each drain re-arming the interval from now (what evrec did: the fleet flushes in lockstep
 * for ever), and evrec's random phase (backoff_phase_ms: the first between half and one and a
 * half intervals after the start, then on that grid, backoff_next_tick). Reported: the steady
 * rate (devices / interval), the highest one-second rate after the first minute, and their
 * ratio. Exit status 1 also if evrec's phase lets that peak exceed 2x the steady rate.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"

#define DEVICES 10000
#define FLUSH_INTERVAL_MS 30000
#define EVENT_PERIOD_MS 3000
#define BATCH_EVENTS 100
#define ROUND_TRIP_MS 200
#define OUTAGE_MS (10 * 60 * 1000)
#define START_MS (-10 * 60 * 1000)    /* ten minutes of normal traffic before the outage */
#define END_MS (40 * 60 * 1000)       /* thirty minutes after the recovery */
#define STEADY_FROM_MS (30 * 60 * 1000)
#define BUCKETS ((END_MS - START_MS) / 1000)

typedef enum policy { FULL_JITTER, NO_JITTER } policy_t;

typedef struct device {
    int64_t next_ms;       /* next attempt */
    int64_t delivered_ms;  /* every event recorded up to here has been delivered */
    int64_t event_phase;   /* events are recorded at event_phase + k * EVENT_PERIOD_MS */
    uint32_t attempt;      /* failed attempts in a row */
    int recovered;         /* has succeeded since the outage began */
} device_t;

typedef struct sim {
    device_t dev[DEVICES];
    int heap[DEVICES]; /* device indices, min-heap on next_ms */
    uint32_t requests[BUCKETS];
    uint64_t rng;
    int64_t last_recovery_ms;
} sim_t;

static uint32_t next_rand(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static int64_t at(const sim_t *s, int i)
{
    return s->dev[s->heap[i]].next_ms;
}

static void sift_down(sim_t *s, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < DEVICES && at(s, l) < at(s, m))
            m = l;
        if (r < DEVICES && at(s, r) < at(s, m))
            m = r;
        if (m == i)
            return;
        int t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
}

static void count_request(sim_t *s, int64_t t)
{
    int64_t b = (t - START_MS) / 1000;
    if (b >= 0 && b < BUCKETS)
        s->requests[b]++;
}

static int64_t events_in(const device_t *d, int64_t from_ms, int64_t to_ms)
{
    /* events at phase + k*P with from < time <= to */
    int64_t a = (from_ms - d->event_phase) / EVENT_PERIOD_MS;
    int64_t b = (to_ms - d->event_phase) / EVENT_PERIOD_MS;
    return b > a ? b - a : 0;
}

static uint64_t no_jitter_delay(const backoff_config_t *c, uint32_t attempt)
{
    uint64_t d = attempt >= 32 ? c->cap_ms : (uint64_t)c->base_ms << attempt;
    return d < c->cap_ms ? d : c->cap_ms;
}

static void attempt(sim_t *s, device_t *d, policy_t p, const backoff_config_t *cfg)
{
    int64_t t = d->next_ms;
    if (t >= 0 && t < OUTAGE_MS) {
        count_request(s, t); /* it reaches the service and fails */
        uint64_t delay = p == FULL_JITTER ? backoff_delay_ms(cfg, d->attempt, -1, next_rand(&s->rng))
                                          : no_jitter_delay(cfg, d->attempt);
        d->attempt++;
        d->next_ms = t + (int64_t)delay;
        return;
    }
    int64_t pending = events_in(d, d->delivered_ms, t);
    int64_t n = (pending + BATCH_EVENTS - 1) / BATCH_EVENTS;
    for (int64_t k = 0; k < n; k++)
        count_request(s, t + k * ROUND_TRIP_MS);
    d->delivered_ms = t;
    d->attempt = 0;
    d->next_ms = t + (n > 0 ? (n - 1) * ROUND_TRIP_MS : 0) + FLUSH_INTERVAL_MS;
    if (t >= OUTAGE_MS && !d->recovered) {
        d->recovered = 1;
        if (t > s->last_recovery_ms)
            s->last_recovery_ms = t;
    }
}

typedef struct result {
    double steady;  /* requests per second, mean over [STEADY_FROM, END) */
    double before;  /* mean over the ten minutes before the outage (after a 30-s warm-up) */
    double outage;  /* mean of the failing retries, from the outage's second minute on */
    uint32_t peak;  /* highest one-second count from the recovery on */
    int64_t peak_at_s;
    int64_t last_back_s; /* seconds after recovery until the last device delivered */
} result_t;

static double mean_rate(const sim_t *s, int64_t from_ms, int64_t to_ms)
{
    uint64_t sum = 0;
    for (int64_t b = (from_ms - START_MS) / 1000; b < (to_ms - START_MS) / 1000; b++)
        sum += s->requests[b];
    return (double)sum / (double)((to_ms - from_ms) / 1000);
}

static result_t run(sim_t *s, policy_t p, uint64_t seed)
{
    const backoff_config_t cfg = { 1000, 300000 };
    memset(s, 0, sizeof *s);
    s->rng = seed;
    for (int i = 0; i < DEVICES; i++) {
        device_t *d = &s->dev[i];
        d->next_ms = START_MS + (int64_t)(next_rand(&s->rng) % FLUSH_INTERVAL_MS);
        d->event_phase = START_MS - FLUSH_INTERVAL_MS - (int64_t)(next_rand(&s->rng) % EVENT_PERIOD_MS);
        d->delivered_ms = d->next_ms - FLUSH_INTERVAL_MS;
        s->heap[i] = i;
    }
    for (int i = DEVICES / 2 - 1; i >= 0; i--)
        sift_down(s, i);
    while (at(s, 0) < END_MS) {
        attempt(s, &s->dev[s->heap[0]], p, &cfg);
        sift_down(s, 0);
    }
    result_t r = { 0 };
    r.steady = mean_rate(s, STEADY_FROM_MS, END_MS);
    r.before = mean_rate(s, START_MS + FLUSH_INTERVAL_MS, 0);
    r.outage = mean_rate(s, 60000, OUTAGE_MS);
    for (int64_t b = (OUTAGE_MS - START_MS) / 1000; b < BUCKETS; b++) {
        if (s->requests[b] > r.peak) {
            r.peak = s->requests[b];
            r.peak_at_s = b + START_MS / 1000 - OUTAGE_MS / 1000;
        }
    }
    r.last_back_s = (s->last_recovery_ms - OUTAGE_MS) / 1000;
    return r;
}

typedef enum phase_policy { PHASE_FIXED, PHASE_RANDOM } phase_policy_t;

typedef struct boot_result {
    double steady;
    uint32_t boot_peak; /* the one-second rate of the flushes at start */
    uint32_t peak;      /* highest one-second rate from BOOT_SETTLE_MS on */
} boot_result_t;

#define BOOT_SPREAD_MS 1000
#define BOOT_END_MS (30 * 60 * 1000)
#define BOOT_SETTLE_MS (60 * 1000)

/* Every device boots within BOOT_SPREAD_MS, flushes at once (evrec agent's start), then every
 * FLUSH_INTERVAL_MS with a phase by the policy. Requests per second over BOOT_END_MS. */
static boot_result_t run_boots(uint32_t *buckets, phase_policy_t p, uint64_t seed)
{
    const size_t nb = BOOT_END_MS / 1000;
    memset(buckets, 0, nb * sizeof *buckets);
    uint64_t rng = seed;
    for (int i = 0; i < DEVICES; i++) {
        int64_t boot = (int64_t)(next_rand(&rng) % BOOT_SPREAD_MS);
        buckets[boot / 1000]++; /* the flush at start */
        uint64_t next = p == PHASE_FIXED
                            ? (uint64_t)boot + FLUSH_INTERVAL_MS
                            : (uint64_t)boot + backoff_phase_ms(FLUSH_INTERVAL_MS, next_rand(&rng));
        while (next < BOOT_END_MS) {
            buckets[next / 1000]++;
            /* the drain takes one round trip; then the next periodic flush */
            uint64_t done = next + ROUND_TRIP_MS;
            next = p == PHASE_FIXED ? done + FLUSH_INTERVAL_MS
                                    : backoff_next_tick(next, done, FLUSH_INTERVAL_MS);
        }
    }
    boot_result_t r = { 0 };
    r.steady = (double)DEVICES / (FLUSH_INTERVAL_MS / 1000.0);
    r.boot_peak = buckets[0];
    for (size_t b = BOOT_SETTLE_MS / 1000; b < nb; b++)
        if (buckets[b] > r.peak)
            r.peak = buckets[b];
    return r;
}

int main(void)
{
    sim_t *s = malloc(sizeof *s);
    if (s == NULL)
        return 2;
    result_t jit = run(s, FULL_JITTER, 20261201);
    result_t flat = run(s, NO_JITTER, 20261201);
    free(s);

    printf("fleet herd: %d devices, outage %d s, flush every %d s, an event every %d s, "
           "backoff base 1 s cap 300 s\n",
           DEVICES, OUTAGE_MS / 1000, FLUSH_INTERVAL_MS / 1000, EVENT_PERIOD_MS / 1000);
    printf("%-12s %9s %9s %9s %7s %12s %12s %16s\n", "policy", "before/s", "outage/s",
           "steady/s", "peak/s", "peak/steady", "peak at (s)", "all back by (s)");
    const result_t *rs[2] = { &jit, &flat };
    const char *names[2] = { "full jitter", "no jitter" };
    for (int i = 0; i < 2; i++)
        printf("%-12s %9.1f %9.1f %9.1f %7u %12.2f %12lld %16lld\n", names[i], rs[i]->before,
               rs[i]->outage, rs[i]->steady, rs[i]->peak, rs[i]->peak / rs[i]->steady,
               (long long)rs[i]->peak_at_s, (long long)rs[i]->last_back_s);
    double jr = jit.peak / jit.steady, nr = flat.peak / flat.steady;
    printf("no-jitter peak / full-jitter peak: %.2f\n", (double)flat.peak / jit.peak);
    printf("full jitter keeps the peak within 2x the steady rate: %s (%.2fx; no jitter %.2fx)\n",
           jr <= 2.0 ? "yes" : "NO", jr, nr);

    uint32_t *buckets = malloc((BOOT_END_MS / 1000) * sizeof *buckets);
    if (buckets == NULL)
        return 2;
    boot_result_t fixed = run_boots(buckets, PHASE_FIXED, 20261206);
    boot_result_t spread = run_boots(buckets, PHASE_RANDOM, 20261206);
    free(buckets);
    printf("\nsimultaneous boots: %d devices up within %d s, a flush at start, then every %d s\n",
           DEVICES, BOOT_SPREAD_MS / 1000, FLUSH_INTERVAL_MS / 1000);
    printf("%-22s %9s %12s %12s %12s\n", "phase", "steady/s", "at boot/s", "peak/s",
           "peak/steady");
    const boot_result_t *bs[2] = { &fixed, &spread };
    const char *bnames[2] = { "interval from start", "random phase (evrec)" };
    for (int i = 0; i < 2; i++)
        printf("%-22s %9.1f %12u %12u %12.2f\n", bnames[i], bs[i]->steady, bs[i]->boot_peak,
               bs[i]->peak, bs[i]->peak / bs[i]->steady);
    double br = spread.peak / spread.steady;
    printf("the random phase keeps the peak after the first minute within 2x the steady rate: "
           "%s (%.2fx; interval from start %.2fx)\n",
           br <= 2.0 ? "yes" : "NO", br, fixed.peak / fixed.steady);
    return jr <= 2.0 && br <= 2.0 ? 0 : 1;
}
