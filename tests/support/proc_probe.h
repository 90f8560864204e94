/* What Linux's /proc tells of this process, for the idle test (test_device) and bench_idle:
 * the wakeups of its threads and the bytes it wrote. Header-only: the benchmarks do not link
 * the test support library. Needs _GNU_SOURCE (gettid). */
#ifndef EVREC_PROC_PROBE_H
#define EVREC_PROC_PROBE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/** The ids of this process's threads (at most `max` into ids); their count. */
static inline size_t tu_thread_ids(long *ids, size_t max)
{
    size_t n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max)
        if (e->d_name[0] != '.')
            ids[n++] = strtol(e->d_name, NULL, 10);
    closedir(d);
    return n;
}

/** Context switches (voluntary and not) of every thread of this process but the calling one
 *  and the `nskip` in `skip` (threads that were there before, e.g. a sanitizer's own): each
 *  wakeup of a sleeping thread is one. -1 if /proc cannot tell. */
static inline long long tu_switches_of_threads_except(const long *skip, size_t nskip)
{
    long long total = 0;
    long self = (long)gettid();
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        long id = strtol(e->d_name, NULL, 10);
        int skipped = id == self;
        for (size_t i = 0; i < nskip && !skipped; i++)
            skipped = skip[i] == id;
        if (skipped)
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

/** Context switches of every thread of this process but the calling one. */
static inline long long tu_switches_of_other_threads(void)
{
    return tu_switches_of_threads_except(NULL, 0);
}

/** A field of /proc/self/io ("wchar": bytes handed to write calls; "write_bytes": bytes that
 *  reached the disk), -1 if there is none. */
static inline long long tu_io_field(const char *name)
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

#endif
