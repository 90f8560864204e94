/*
 * A native app's analytics: a session per foreground period, pause when the app goes to the
 * background, resume when it comes back (a long background stay starts a new session), and
 * events that carry the session they happened in.
 *
 *   app_sessions STORE_DIR ENDPOINT_URL
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#include <evrec.h>

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void track(evrec_t *agent, const char *type, const char *screen)
{
    evrec_event_t *ev = NULL;
    if (evrec_event_new(&ev, type) != EVREC_OK)
        return;
    evrec_event_set_attribute(ev, "screen", screen);
    if (evrec_record(agent, ev) != EVREC_OK)
        fprintf(stderr, "record: %s\n", evrec_last_error(agent));
    evrec_event_free(ev);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s STORE_DIR ENDPOINT_URL\n", argv[0]);
        return 2;
    }
    evrec_options_t opts;
    evrec_options_init(&opts);
    opts.application_id = "app-example";
    opts.region = "us-east-1";
    opts.endpoint_url = argv[2];
    opts.session_timeout_ms = 300; /* short, so the example shows both kinds of resume */

    char msg[256];
    evrec_t *agent = NULL;
    int rc = evrec_open(&agent, argv[1], &opts, msg, sizeof msg);
    if (rc != EVREC_OK) {
        fprintf(stderr, "evrec_open: %s: %s\n", evrec_strerror(rc), msg);
        return 1;
    }
    evrec_endpoint_set(agent, NULL, "Demographic.AppVersion", "1.4.2");
    evrec_endpoint_set(agent, NULL, "User.UserId", "user-123");

    evrec_session_start(agent);          /* app launched: _session.start */
    track(agent, "screen.view", "home");
    evrec_session_pause(agent);          /* app to background: _session.pause */
    sleep_ms(50);
    evrec_session_resume(agent);         /* back quickly: same session, _session.resume */
    track(agent, "screen.view", "settings");
    evrec_session_pause(agent);
    sleep_ms(400);                       /* longer than session_timeout_ms ... */
    evrec_session_resume(agent);         /* ... so: _session.stop, then a new _session.start */
    track(agent, "purchase", "store");
    evrec_session_stop(agent);           /* app closed: _session.stop with the duration */

    rc = evrec_flush(agent, 5000);
    evrec_stats_t st = { .struct_size = sizeof st };
    evrec_stats(agent, &st);
    printf("delivered %llu, queued %llu\n", (unsigned long long)st.delivered,
           (unsigned long long)st.queued_events);
    evrec_close(agent, 0);
    return rc == EVREC_OK ? 0 : 1;
}
