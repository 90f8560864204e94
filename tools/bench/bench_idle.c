/*
 * Idle means asleep: an agent (flusher thread, default options) on an empty store, and the
 * same agent waiting out a backoff against an endpoint that is down, each watched for a while:
 * the wakeups of its threads (context switches, /proc/self/task/<tid>/status) and the bytes it
 * wrote (/proc/self/io: wchar, the bytes handed to write calls, and write_bytes, what reached
 * the disk), as figures per idle hour, beside the targets: on an empty store no wakeup at all
 * (no timer is due: nothing is queued, static credentials need no refresh; records and
 * signals wake it), in a backoff one per backoff that ends (counted from the agent's retries),
 * and never a byte written. The empty store is watched twice: with the store's data file
 * watched (inotify) and as on a platform that cannot watch it (the fallback: a count of the
 * store once a second). Printed, not asserted.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evrec.h"
#include "../../tests/support/proc_probe.h"

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void watch(const char *what, const char *store, const char *url, int seconds,
                  uint32_t backoff_ms, const char *target)
{
    evrec_options_t o;
    evrec_options_init(&o);
    o.application_id = "idle-app";
    o.region = "us-east-1";
    o.endpoint_url = url;
    o.access_key_id = "AKIDEXAMPLE";
    o.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    o.no_environment_credentials = 1;
    o.connect_timeout_ms = 200;
    o.backoff_base_ms = backoff_ms; /* 60 s: a long backoff, the flusher waits it out */
    o.backoff_cap_ms = backoff_ms * 2;
    evrec_t *a = NULL;
    char msg[256];
    if (evrec_open(&a, store, &o, msg, sizeof msg) != EVREC_OK) {
        fprintf(stderr, "bench_idle: %s\n", msg);
        exit(1);
    }
    if (strstr(what, "backoff")) {
        evrec_event_t *ev = NULL;
        evrec_event_new(&ev, "idle.bench");
        evrec_record(a, ev);
        evrec_event_free(ev);
        evrec_flush(a, 1500); /* fails to connect: backs off */
    }
    sleep(2); /* let start-up settle: the first sync of the new store comes after a second */
    evrec_stats_t st0 = { .struct_size = sizeof st0 }, st1 = { .struct_size = sizeof st1 };
    evrec_stats(a, &st0);
    long long s0 = tu_switches_of_other_threads(), w0 = tu_io_field("wchar"),
              b0 = tu_io_field("write_bytes");
    sleep((unsigned)seconds);
    long long s1 = tu_switches_of_other_threads(), w1 = tu_io_field("wchar"),
              b1 = tu_io_field("write_bytes");
    evrec_stats(a, &st1);
    double per_hour = 3600.0 / seconds;
    printf("  %-40s %8.0f wakeups/h  %8.0f bytes written/h (write calls)  %8.0f bytes/h to "
           "disk\n",
           what, (double)(s1 - s0) * per_hour, (double)(w1 - w0) * per_hour,
           b0 >= 0 ? (double)(b1 - b0) * per_hour : -1.0);
    uint64_t ended = st1.retries - st0.retries;
    if (strstr(what, "backoff") && ended)
        printf("  %-40s %llu backoffs ended and were retried: %.1f wakeups and %.0f bytes "
               "written (the status) each\n",
               "", (unsigned long long)ended, (double)(s1 - s0) / (double)ended,
               (double)(w1 - w0) / (double)ended);
    if (strstr(what, "backoff"))
        printf("  %-40s target: wakeups only at the ends of backoffs (%.0f/h ended in this "
               "watch); bytes only for their retries\n",
               "", (double)ended * per_hour);
    else
        printf("  %-40s target: %s\n", "", target);
    evrec_close(a, 0);
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 10;
    if (seconds <= 0)
        seconds = 10;
    char base[] = "/tmp/evrec-bench-idle-XXXXXX";
    if (!mkdtemp(base))
        return 1;
    char s1[600], s2[600], s3[600];
    snprintf(s1, sizeof s1, "%s/empty", base);
    snprintf(s2, sizeof s2, "%s/backoff", base);
    snprintf(s3, sizeof s3, "%s/unwatched", base);
    printf("an idle agent (flusher thread, flush interval 30 s), watched %d s, per idle hour:\n",
           seconds);
    watch("empty store", s1, "http://127.0.0.1:9", seconds, 60000,
          "0 wakeups (no timer is due), 0 bytes");
    watch("waiting out a backoff (endpoint down)", s2, "http://127.0.0.1:9", seconds, 60000,
          NULL);
    snprintf(s2, sizeof s2, "%s/backoffs", base);
    watch("short backoffs (1-2 s, endpoint down)", s2, "http://127.0.0.1:9", seconds, 1000,
          NULL);
    setenv("EVREC_TEST_NO_FILE_WATCH", "1", 1); /* as where inotify is not available */
    watch("empty store, data file not watched", s3, "http://127.0.0.1:9", seconds, 60000,
          "the fallback: 3,600 (one count of the store a second), 0 bytes");
    unsetenv("EVREC_TEST_NO_FILE_WATCH");
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
