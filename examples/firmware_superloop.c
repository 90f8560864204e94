/*
 * Firmware without threads: a super-loop that samples a sensor, records readings, and lets
 * evrec upload from the same loop with evrec_poll(). Nothing here blocks on the network for
 * longer than one request; evrec_poll() says how long it can wait before it wants the CPU
 * again, and the loop sleeps in poll() for no longer than that.
 *
 *   firmware_superloop STORE_DIR ENDPOINT_URL [SAMPLES]
 *
 * Credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <evrec.h>

#define SAMPLE_PERIOD_MS 20

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

    uint64_t next_sample = now_ms();
    uint32_t poll_wait = 0;
    int taken = 0;
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
        /* One bounded step of upload work; it tells us when it next wants to run. */
        evrec_poll(agent, &poll_wait);
        uint64_t until_sample = next_sample > now_ms() ? next_sample - now_ms() : 0;
        int timeout = (int)(poll_wait < until_sample ? poll_wait : until_sample);
        poll(NULL, 0, timeout); /* a real loop would wait on its peripherals' fds here */
    }

    /* Before power-down: upload what is left (bounded), keep the rest on disk. */
    rc = evrec_flush(agent, 5000);
    evrec_stats_t st = { .struct_size = sizeof st };
    evrec_stats(agent, &st);
    printf("recorded %d, delivered %llu, queued %llu\n", taken,
           (unsigned long long)st.delivered, (unsigned long long)st.queued_events);
    evrec_close(agent, 0);
    return rc == EVREC_OK ? 0 : 1;
}
