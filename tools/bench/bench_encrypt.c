/*
 * Events encrypted at rest (AES-256-GCM per record), as ratios against the same run without:
 *   - evrec_record() throughput (process durability, 3 attributes + 2 metrics);
 *   - client CPU time (getrusage, every thread) of one flush of the queued events to the local
 *     endpoint (tools/fake_endpoint.py on 127.0.0.1): each record is opened twice, by the
 *     batcher and when the body is built;
 *   - bytes stored per event.
 * Printed, not asserted: the ratios move with the machine and its load.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evrec.h"

#define N_RECORD 20000
#define N_FLUSH 5000

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int give_key(void *user, unsigned char keys[][EVREC_KEY_BYTES], size_t max, size_t *n)
{
    (void)user;
    (void)max;
    memset(keys[0], 0x42, EVREC_KEY_BYTES);
    *n = 1;
    return 0;
}

static evrec_t *open_or_die(const char *dir, evrec_options_t *o, int encrypted)
{
    if (encrypted)
        o->encryption_keys = give_key;
    evrec_t *a = NULL;
    char msg[256];
    if (evrec_open(&a, dir, o, msg, sizeof msg) != EVREC_OK) {
        fprintf(stderr, "bench_encrypt: %s\n", msg);
        exit(1);
    }
    return a;
}

/* Record n events; returns events per second of evrec_record() alone. */
static double record(const char *dir, int encrypted, int n, uint64_t *bytes)
{
    evrec_options_t o;
    evrec_options_init(&o);
    o.no_flusher = 1;
    evrec_t *a = open_or_die(dir, &o, encrypted);
    double inside = 0;
    for (int i = 0; i < n; i++) {
        evrec_event_t *ev = NULL;
        char v[32];
        snprintf(v, sizeof v, "value-%d", i);
        evrec_event_new(&ev, "bench.event");
        evrec_event_set_attribute(ev, "screen", "home");
        evrec_event_set_attribute(ev, "email", "someone@example.com");
        evrec_event_set_attribute(ev, "variant", v);
        evrec_event_set_metric(ev, "load_ms", 12.5 + i);
        evrec_event_set_metric(ev, "count", i);
        double t = now_s();
        if (evrec_record(a, ev) != EVREC_OK) {
            fprintf(stderr, "bench_encrypt: %s\n", evrec_last_error(a));
            exit(1);
        }
        inside += now_s() - t;
        evrec_event_free(ev);
    }
    evrec_stats_t st = { .struct_size = sizeof st };
    evrec_stats(a, &st);
    *bytes = st.queued_bytes;
    evrec_close(a, 0);
    return n / inside;
}

/* Flush what the store holds to url; returns CPU seconds, or -1 if not everything went. */
static double flush(const char *dir, int encrypted, const char *url)
{
    evrec_options_t o;
    evrec_options_init(&o);
    o.manual_flush = 1;
    o.application_id = "bench-app";
    o.region = "us-east-1";
    o.endpoint_url = url;
    o.access_key_id = "AKIDEXAMPLE";
    o.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    o.no_environment_credentials = 1;
    evrec_t *a = open_or_die(dir, &o, encrypted);
    double c0 = cpu_s();
    int rc = evrec_flush(a, 120000);
    double c = cpu_s() - c0;
    evrec_close(a, 0);
    return rc == EVREC_OK ? c : -1;
}

static pid_t start_endpoint(const char *dir, char *url, size_t len)
{
    char portfile[700];
    snprintf(portfile, sizeof portfile, "%s/port", dir);
    const char *py = getenv("EVREC_PYTHON");
    if (!py || !*py)
        py = "python3";
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execlp(py, py, "tools/fake_endpoint.py", "--port-file", portfile, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(portfile, "r");
        int port = 0;
        if (f) {
            int got = fscanf(f, "%d", &port);
            fclose(f);
            if (got == 1 && port > 0) {
                snprintf(url, len, "http://127.0.0.1:%d", port);
                return pid;
            }
        }
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int main(void)
{
    char base[] = "/tmp/evrec-bench-encrypt-XXXXXX";
    if (!mkdtemp(base))
        return 1;
    char d[4][600];
    for (int i = 0; i < 4; i++)
        snprintf(d[i], sizeof d[i], "%s/store%d", base, i);
    uint64_t bp = 0, be = 0, fp = 0, fe = 0;
    double rp = record(d[0], 0, N_RECORD, &bp);
    double re = record(d[1], 1, N_RECORD, &be);
    printf("evrec_record() (process durability), %d events:\n", N_RECORD);
    printf("  plain     %9.0f events/s, %6.1f stored bytes/event\n", rp, (double)bp / N_RECORD);
    printf("  encrypted %9.0f events/s, %6.1f stored bytes/event  = %.2fx the speed, +%.0f "
           "bytes/event\n",
           re, (double)be / N_RECORD, re / rp, ((double)be - (double)bp) / N_RECORD);
    char url[128];
    pid_t ep = start_endpoint(base, url, sizeof url);
    int status = 0;
    if (ep < 0) {
        printf("flush: the local endpoint did not start (python3 with botocore?): skipped\n");
    } else {
        record(d[2], 0, N_FLUSH, &fp);
        record(d[3], 1, N_FLUSH, &fe);
        double cp = flush(d[2], 0, url), ce = flush(d[3], 1, url);
        kill(ep, SIGTERM);
        waitpid(ep, NULL, 0);
        if (cp < 0 || ce < 0) {
            printf("flush: not every event was delivered\n");
            status = 1;
        } else {
            printf("flush of %d events to the local endpoint, client CPU:\n", N_FLUSH);
            printf("  plain     %7.1f us/event\n", cp * 1e6 / N_FLUSH);
            printf("  encrypted %7.1f us/event  = %.2fx the CPU\n", ce * 1e6 / N_FLUSH,
                   cp > 0 ? ce / cp : 0);
        }
    }
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return status;
}
