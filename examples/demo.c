/*
 * A device program in miniature: open a store, describe the device (endpoint profile), run a
 * session with a few events, upload, and show the agent's counters.
 *
 *   demo STORE_DIR [ENDPOINT_URL] [APPLICATION_ID] [kinesis:STREAM | firehose:STREAM]
 *
 * With the last argument the events go to that Kinesis data stream or Firehose delivery
 * stream instead of Pinpoint: the only option that changes is the destination.
 * Credentials and region come from the usual places (AWS_ACCESS_KEY_ID, AWS_REGION, ...).
 * Prints "endpoint: <id>" and "recorded: <n>" so that a script can check what arrived.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evrec.h"

static int check(int rc, evrec_t *agent, const char *what)
{
    if (rc != EVREC_OK)
        fprintf(stderr, "demo: %s: %s: %s\n", what, evrec_strerror(rc),
                agent ? evrec_last_error(agent) : "");
    return rc;
}

static void log_line(void *user, evrec_log_level_t level, const char *message)
{
    (void)user;
    fprintf(stderr, "demo: log %d: %s\n", (int)level, message);
}

/* Time passing on the device (so the session has a duration to show). */
static void wait_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* One screen view with an attribute and a metric. */
static int screen_view(evrec_t *agent, const char *screen, double load_ms)
{
    evrec_event_t *ev = NULL;
    int rc = evrec_event_new(&ev, "screen.view");
    if (rc == EVREC_OK)
        rc = evrec_event_set_attribute(ev, "screen", screen);
    if (rc == EVREC_OK)
        rc = evrec_event_set_metric(ev, "load_ms", load_ms);
    if (rc == EVREC_OK)
        rc = evrec_record(agent, ev);
    if (rc == EVREC_OK)
        printf("  recorded screen.view %-8s id %s\n", screen, evrec_event_id(ev));
    evrec_event_free(ev);
    return check(rc, agent, "record");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: demo STORE_DIR [ENDPOINT_URL] [APPLICATION_ID] "
                        "[kinesis:STREAM | firehose:STREAM]\n");
        return 2;
    }
    evrec_options_t opts;
    evrec_options_init(&opts);
    opts.application_id = argc > 3 ? argv[3] : "demo-app";
    opts.endpoint_url = argc > 2 ? argv[2] : NULL;
    if (argc > 4 && strncmp(argv[4], "kinesis:", 8) == 0) {
        opts.service = EVREC_SERVICE_KINESIS;
        opts.stream_name = argv[4] + 8;
    } else if (argc > 4 && strncmp(argv[4], "firehose:", 9) == 0) {
        opts.service = EVREC_SERVICE_FIREHOSE;
        opts.delivery_stream_name = argv[4] + 9;
    } else if (argc > 4) {
        fprintf(stderr, "demo: '%s' is not kinesis:STREAM or firehose:STREAM\n", argv[4]);
        return 2;
    }
    opts.log_fn = log_line;
    opts.log_level = EVREC_LOG_WARN;

    evrec_t *agent = NULL;
    char msg[256];
    int rc = evrec_open(&agent, argv[1], &opts, msg, sizeof msg);
    if (rc != EVREC_OK) {
        fprintf(stderr, "demo: cannot open %s: %s\n", argv[1], msg);
        return 1;
    }
    printf("endpoint: %s\n", evrec_endpoint_id(agent));

    /* The device's profile goes with its events. */
    const char *interests[] = { "hiking", "photography" };
    if (check(evrec_endpoint_set(agent, NULL, "Demographic.Make", "Acme"), agent, "profile") ||
        check(evrec_endpoint_set(agent, NULL, "Demographic.Model", "Sensor-3"), agent, "profile") ||
        check(evrec_endpoint_set(agent, NULL, "Demographic.Platform", "Linux"), agent, "profile") ||
        check(evrec_endpoint_set(agent, NULL, "User.UserId", "demo-user"), agent, "profile") ||
        check(evrec_endpoint_set_attribute(agent, NULL, "interests", interests, 2), agent,
              "profile")) {
        evrec_close(agent, 0);
        return 1;
    }

    evrec_stats_t before = { .struct_size = sizeof before };
    evrec_stats(agent, &before);
    rc = check(evrec_session_start(agent), agent, "session start");
    if (rc == EVREC_OK)
        rc = screen_view(agent, "home", 12.5);
    wait_ms(120);
    if (rc == EVREC_OK)
        rc = screen_view(agent, "settings", 8.0);
    if (rc == EVREC_OK)
        rc = check(evrec_session_pause(agent), agent, "session pause");
    wait_ms(200); /* in the background: not part of the session's duration */
    if (rc == EVREC_OK)
        rc = check(evrec_session_resume(agent), agent, "session resume");
    wait_ms(80);
    if (rc == EVREC_OK)
        rc = screen_view(agent, "about", 4.25);
    if (rc == EVREC_OK)
        rc = check(evrec_session_stop(agent), agent, "session stop");
    evrec_stats_t after = { .struct_size = sizeof after };
    evrec_stats(agent, &after);
    printf("recorded: %llu\n", (unsigned long long)(after.recorded - before.recorded));

    if (rc == EVREC_OK)
        rc = check(evrec_flush(agent, 15000), agent, "flush");

    evrec_stats_t s = { .struct_size = sizeof s };
    if (evrec_stats(agent, &s) == EVREC_OK)
        printf("stats: queued %llu, delivered %llu, requests %llu, retries %llu, "
               "dropped %llu, last error %s\n",
               (unsigned long long)s.queued_events, (unsigned long long)s.delivered,
               (unsigned long long)s.requests, (unsigned long long)s.retries,
               (unsigned long long)(s.dropped_evicted + s.dropped_expired +
                                    s.dropped_rejected + s.dropped_poison + s.dropped_refused),
               s.last_error ? s.last_error_message : "none");
    int crc = evrec_close(agent, 5000);
    return rc == EVREC_OK && crc == EVREC_OK ? 0 : 1;
}
