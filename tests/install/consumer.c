/* An out-of-tree program built only from the installed copy of evrec (pkg-config evrec). */
#include <evrec.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: consumer STORE_DIR\n");
        return 2;
    }
    evrec_options_t opts;
    evrec_options_init(&opts);
    opts.no_flusher = 1;
    char msg[256];
    evrec_t *agent = NULL;
    int rc = evrec_open(&agent, argv[1], &opts, msg, sizeof msg);
    if (rc != EVREC_OK) {
        fprintf(stderr, "open: %s: %s\n", evrec_strerror(rc), msg);
        return 1;
    }
    evrec_event_t *ev = NULL;
    rc = evrec_event_new(&ev, "installed.check");
    if (rc == EVREC_OK)
        rc = evrec_event_set_metric(ev, "answer", 42);
    if (rc == EVREC_OK)
        rc = evrec_record(agent, ev);
    evrec_event_free(ev);
    evrec_stats_t st = { .struct_size = sizeof st };
    if (rc == EVREC_OK)
        rc = evrec_stats(agent, &st);
    if (rc != EVREC_OK) {
        fprintf(stderr, "record: %s: %s\n", evrec_strerror(rc), evrec_last_error(agent));
        evrec_close(agent, 0);
        return 1;
    }
    printf("evrec %s: %llu queued\n", evrec_version(), (unsigned long long)st.queued_events);
    evrec_close(agent, 0);
    return st.queued_events == 1 ? 0 : 1;
}
