/*
 * Idle means asleep: an agent (flusher thread, default options) on an empty store, and the
 * same agent waiting out a backoff against an endpoint that is down, each watched for a while:
 * the wakeups of its threads (context switches, /proc/self/task/<tid>/status) and the bytes it
 * wrote (/proc/self/io: wchar, the bytes handed to write calls, and write_bytes, what reached
 * the disk), as figures per idle hour. Printed, not asserted.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evrec.h"

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Context switches of every thread of this process but the calling one. */
static long long switches_of_others(void)
{
    long long total = 0;
    char self[32];
    snprintf(self, sizeof self, "%ld", (long)gettid());
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, self) == 0)
            continue;
        char path[300], line[128];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        long long v;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1)
                total += v;
        }
        fclose(f);
    }
    closedir(d);
    return total;
}

static long long io_field(const char *name)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return -1;
    char line[128], key[64];
    long long v, out = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%63[^:]: %lld", key, &v) == 2 && strcmp(key, name) == 0)
            out = v;
    fclose(f);
    return out;
}

static void watch(const char *what, const char *store, const char *url, int seconds)
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
    o.backoff_base_ms = 60000; /* a long backoff: the flusher waits it out */
    o.backoff_cap_ms = 600000;
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
    sleep(1); /* let start-up settle */
    long long s0 = switches_of_others(), w0 = io_field("wchar"), b0 = io_field("write_bytes");
    sleep((unsigned)seconds);
    long long s1 = switches_of_others(), w1 = io_field("wchar"), b1 = io_field("write_bytes");
    double per_hour = 3600.0 / seconds;
    printf("  %-34s %8.0f wakeups/h  %10.0f bytes written/h (write calls)  %10.0f bytes/h to "
           "disk\n",
           what, (double)(s1 - s0) * per_hour, (double)(w1 - w0) * per_hour,
           b0 >= 0 ? (double)(b1 - b0) * per_hour : -1.0);
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
    char s1[600], s2[600];
    snprintf(s1, sizeof s1, "%s/empty", base);
    snprintf(s2, sizeof s2, "%s/backoff", base);
    printf("an idle agent (flusher thread, flush interval 30 s), watched %d s, per idle hour:\n",
           seconds);
    watch("empty store", s1, "http://127.0.0.1:9", seconds);
    watch("waiting out a backoff (endpoint down)", s2, "http://127.0.0.1:9", seconds);
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
