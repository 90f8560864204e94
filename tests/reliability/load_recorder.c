/*
 * A recording process for the load test: THREADS threads record into STORE (without the
 * flusher role: the agent uploads) for SECONDS, each event with its own id, and print each id
 * once evrec_record() has acknowledged it.
 *   load_recorder STORE THREADS SECONDS PREFIX
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "evrec.h"

typedef struct worker {
    evrec_t *agent;
    int index;
    double seconds;
    const char *prefix;
    pthread_mutex_t *out;
} worker_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    worker_t *w = arg;
    double end = now_s() + w->seconds;
    for (long i = 0; now_s() < end; i++) {
        evrec_event_t *ev = NULL;
        char id[96];
        snprintf(id, sizeof id, "%s-t%d-%ld", w->prefix, w->index, i);
        if (evrec_event_new(&ev, "load.sample") != EVREC_OK)
            break;
        evrec_event_set_id(ev, id);
        evrec_event_set_attribute(ev, "thread", id);
        evrec_event_set_metric(ev, "i", (double)i);
        int rc = evrec_record(w->agent, ev);
        evrec_event_free(ev);
        if (rc == EVREC_OK) {
            pthread_mutex_lock(w->out);
            printf("%s\n", id);
            fflush(stdout);
            pthread_mutex_unlock(w->out);
        }
        if (i % 8 == 7) { /* a device records in bursts (~150 a second a thread) */
            struct timespec pause = { 0, 50 * 1000000L };
            nanosleep(&pause, NULL);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: load_recorder STORE THREADS SECONDS PREFIX\n");
        return 2;
    }
    int n = atoi(argv[2]);
    if (n < 1 || n > 64)
        return 2;
    evrec_options_t o;
    evrec_options_init(&o);
    o.no_flusher = 1;
    o.max_store_bytes = 32u << 20;
    char msg[256];
    evrec_t *agent = NULL;
    int rc = evrec_open(&agent, argv[1], &o, msg, sizeof msg);
    if (rc != EVREC_OK) {
        fprintf(stderr, "open: %s\n", msg);
        return 1;
    }
    pthread_mutex_t out = PTHREAD_MUTEX_INITIALIZER;
    pthread_t t[64];
    worker_t w[64];
    for (int i = 0; i < n; i++) {
        w[i] = (worker_t){ agent, i, atof(argv[3]), argv[4], &out };
        pthread_create(&t[i], NULL, run, &w[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    evrec_close(agent, 0);
    return 0;
}
