/*
 * Firmware without threads: a 10 ms super-loop that samples a sensor, records readings, and
 * lets evrec upload from the same loop with evrec_poll_budget(). evrec never holds the loop
 * for longer than its budget, however slow or broken the server: the request advances across
 * iterations (libcurl's multi interface), and between iterations the loop sleeps in poll() on
 * evrec's sockets (evrec_poll_fds()) and no longer than the next tick.
 *
 *   firmware_superloop STORE_DIR ENDPOINT_URL [SAMPLES]
 *
 * Credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Use a
 * numeric URL (https://192.0.2.10/...) or a libcurl built with c-ares: resolving a host name
 * with libcurl's default resolver starts a thread. It prints the longest evrec_poll_budget()
 * call and how many loop ticks ran late.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <evrec.h>

#define SAMPLE_PERIOD_MS 20
#define LOOP_MS 10       /* the super-loop's tick */
#define POLL_BUDGET_MS 2 /* what evrec may take of a tick */
#define MAX_FDS 4

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Stand-in for an ADC read. */
static double read_sensor(int i)
{
    return 20.0 + (i % 10) * 0.25;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s STORE_DIR ENDPOINT_URL [SAMPLES]\n", argv[0]);
        return 2;
    }
    int samples = argc > 3 ? atoi(argv[3]) : 50;

    evrec_options_t opts;
    evrec_options_init(&opts);
    opts.application_id = "firmware-example";
    opts.region = "us-east-1";
    opts.endpoint_url = argv[2];
    opts.manual_flush = 1;        /* no thread: this loop drives uploads */
    opts.flush_interval_ms = 200; /* small device, small batches, often */
    opts.max_request_bytes = 64 * 1024;
    opts.max_store_bytes = 1024 * 1024;

    char msg[256];
    evrec_t *agent = NULL;
    int rc = evrec_open(&agent, argv[1], &opts, msg, sizeof msg);
    if (rc != EVREC_OK) {
        fprintf(stderr, "evrec_open: %s: %s\n", evrec_strerror(rc), msg);
        return 1;
    }

    uint64_t next_sample = now_ms(), next_tick = now_ms();
    uint64_t longest_poll = 0;
    int taken = 0, late = 0;
    while (taken < samples) {
        if (now_ms() >= next_sample) {
            evrec_event_t *ev = NULL;
            if (evrec_event_new(&ev, "sensor.reading") == EVREC_OK) {
                evrec_event_set_metric(ev, "celsius", read_sensor(taken));
                if (evrec_record(agent, ev) != EVREC_OK)
                    fprintf(stderr, "record: %s\n", evrec_last_error(agent));
                evrec_event_free(ev);
            }
            taken++;
            next_sample += SAMPLE_PERIOD_MS;
        }
        /* Upload work, never more than POLL_BUDGET_MS of this tick. */
        uint32_t poll_wait = 0;
        uint64_t t0 = now_ms();
        evrec_poll_budget(agent, POLL_BUDGET_MS, &poll_wait);
        uint64_t took = now_ms() - t0;
        if (took > longest_poll)
            longest_poll = took;

        /* Sleep until the next tick, or earlier if evrec's sockets or timer need it. */
        next_tick += LOOP_MS;
        uint64_t now = now_ms();
        if (now > next_tick + LOOP_MS) { /* a whole tick missed */
            late++;
            next_tick = now;
        }
        uint64_t until_tick = next_tick > now ? next_tick - now : 0;
        evrec_pollfd_t efds[MAX_FDS];
        size_t n = 0;
        uint32_t fd_wait = UINT32_MAX;
        evrec_poll_fds(agent, efds, MAX_FDS, &n, &fd_wait);
        struct pollfd pfds[MAX_FDS]; /* a real loop adds its peripherals' fds here */
        for (size_t i = 0; i < n; i++) {
            pfds[i].fd = efds[i].fd;
            pfds[i].events = (short)(((efds[i].events & EVREC_POLL_IN) ? POLLIN : 0) |
                                     ((efds[i].events & EVREC_POLL_OUT) ? POLLOUT : 0));
            pfds[i].revents = 0;
        }
        uint64_t timeout = until_tick;
        if (poll_wait < timeout)
            timeout = poll_wait;
        if (fd_wait < timeout)
            timeout = fd_wait;
        poll(pfds, (nfds_t)n, (int)timeout);
    }
    printf("longest poll %llu ms (budget %d ms), late ticks %d\n",
           (unsigned long long)longest_poll, POLL_BUDGET_MS, late);

    /* Before power-down: upload what is left (bounded), keep the rest on disk. */
    rc = evrec_flush(agent, 5000);
    evrec_stats_t st = { .struct_size = sizeof st };
    evrec_stats(agent, &st);
    printf("recorded %d, delivered %llu, queued %llu\n", taken,
           (unsigned long long)st.delivered, (unsigned long long)st.queued_events);
    evrec_close(agent, 0);
    return rc == EVREC_OK ? 0 : 1;
}
