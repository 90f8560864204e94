/*
 * The C half of the power-cut test (tests/reliability/powercut.py).
 *
 *   powercut_tool workload DIR MODE N   record N events into a new store in DIR (MODE: process,
 *                                       power, batched), deleting the 5 oldest after every 10th
 *                                       as the flusher would, calling queue_sync() after every
 *                                       25th; run under the iotrace shim, it leaves markers in
 *                                       the trace: 1 = event acknowledged, 2 = event about
 *                                       to be deleted,
 *                                       3 = everything acknowledged so far synced
 *   powercut_tool check                 for each store directory read from stdin, open it (in
 *                                       a child process) and print one line:
 *                                       "OK n1 n2 ..." (the event numbers it holds),
 *                                       "REFUSED code message", or "CRASH signal"
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue.h"
#include "record.h"

enum { MARK_ACK = 1, MARK_DEL = 2, MARK_SYNCED = 3 };

static void (*mark_fn)(int, uint64_t);

static void mark(int kind, uint64_t v)
{
    if (mark_fn)
        mark_fn(kind, v);
}

static size_t make_record(uint8_t *buf, long n)
{
    char id[32], frag[256];
    snprintf(id, sizeof id, "e%ld", n);
    int flen = snprintf(frag, sizeof frag,
                        "{\"EventType\":\"powercut\",\"Attributes\":{\"n\":\"%ld\",\"pad\":\""
                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}",
                        n);
    evrec_record_view_t v;
    memset(&v, 0, sizeof v);
    v.created_ms = 1700000000000ll + n;
    v.event_id = id;
    v.event_id_len = strlen(id);
    v.endpoint_id = "powercut-endpoint";
    v.endpoint_id_len = strlen(v.endpoint_id);
    v.fragment = frag;
    v.fragment_len = (size_t)flen;
    return evrec_record_encode(&v, buf);
}

/* The event number of a record ("e<n>"), or -1. */
static long event_number(const void *value, size_t len)
{
    evrec_record_view_t v;
    if (evrec_record_decode(value, len, &v) != EVREC_OK || v.event_id_len < 2 ||
        v.event_id[0] != 'e')
        return -1;
    char id[32];
    snprintf(id, sizeof id, "%.*s", (int)v.event_id_len, v.event_id);
    return strtol(id + 1, NULL, 10);
}

typedef struct oldest {
    uint64_t seqs[5];
    long nums[5];
    size_t n;
} oldest_t;

static int take_oldest(void *user, uint64_t seq, const void *value, size_t len)
{
    oldest_t *o = user;
    o->seqs[o->n] = seq;
    o->nums[o->n] = event_number(value, len);
    return ++o->n == 5 ? 1 : 0;
}

static int workload(const char *dir, const char *mode_name, long n)
{
    mark_fn = (void (*)(int, uint64_t))dlsym(RTLD_DEFAULT, "iotrace_mark");
    queue_config_t c;
    memset(&c, 0, sizeof c);
    c.durability = strcmp(mode_name, "power") == 0     ? EVREC_DURABLE_POWER
                   : strcmp(mode_name, "batched") == 0 ? EVREC_DURABLE_BATCHED
                                                       : EVREC_DURABLE_PROCESS;
    c.sync_interval_ms = 1u << 30; /* syncs only where the workload asks: a deterministic trace */
    c.commit_interval_ms = 1u << 30;
    c.commit_max_events = 10;
    c.max_store_bytes = 8u << 20;
    evrec_queue_t *q = NULL;
    char err[256];
    int rc = queue_open(&q, dir, &c, err, sizeof err);
    if (rc != EVREC_OK) {
        fprintf(stderr, "workload: open: %s\n", err);
        return 1;
    }
    uint8_t buf[512];
    for (long i = 1; i <= n; i++) {
        size_t len = make_record(buf, i);
        rc = queue_append(q, buf, len, 0, NULL);
        if (rc != EVREC_OK) {
            fprintf(stderr, "workload: append %ld: %s\n", i, queue_last_error(q));
            return 1;
        }
        mark(MARK_ACK, (uint64_t)i);
        if (i % 10 == 0) {
            oldest_t o = { { 0 }, { 0 }, 0 };
            if (queue_scan(q, 0, take_oldest, &o) == EVREC_OK && o.n > 0) {
                /* Marked before: from here on, their absence is no loss. */
                for (size_t k = 0; k < o.n; k++)
                    mark(MARK_DEL, (uint64_t)o.nums[k]);
                if (queue_delete(q, o.seqs, o.n, NULL, 0) != EVREC_OK) {
                    fprintf(stderr, "workload: delete: %s\n", queue_last_error(q));
                    return 1;
                }
            }
        }
        if (i % 25 == 0 && c.durability != EVREC_DURABLE_POWER) {
            if (queue_sync(q) != EVREC_OK) {
                fprintf(stderr, "workload: sync: %s\n", queue_last_error(q));
                return 1;
            }
            mark(MARK_SYNCED, (uint64_t)i);
        }
    }
    queue_close(q);
    return 0;
}

static int list_one(void *user, uint64_t seq, const void *value, size_t len)
{
    (void)seq;
    (void)user;
    printf(" %ld", event_number(value, len));
    return 0;
}

static void check_one(const char *dir)
{
    evrec_queue_t *q = NULL;
    char err[512];
    int rc = queue_open(&q, dir, NULL, err, sizeof err);
    if (rc != EVREC_OK) {
        for (char *p = err; *p; p++)
            if (*p == '\n')
                *p = ' ';
        printf("REFUSED %d %s\n", rc, err);
        return;
    }
    printf("OK");
    rc = queue_scan(q, 0, list_one, NULL);
    printf(rc == EVREC_OK ? "\n" : " SCANFAIL\n");
    queue_close(q);
}

static int check(void)
{
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (!*line)
            continue;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            check_one(line);
            fflush(stdout);
            _exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st))
            printf("CRASH %d\n", WTERMSIG(st));
        else if (WEXITSTATUS(st) != 0)
            printf("CRASH exit %d\n", WEXITSTATUS(st));
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "workload") == 0)
        return workload(argv[2], argv[3], strtol(argv[4], NULL, 10));
    if (argc == 2 && strcmp(argv[1], "check") == 0)
        return check();
    fprintf(stderr, "usage: powercut_tool workload DIR MODE N | check\n");
    return 2;
}
