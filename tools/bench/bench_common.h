/*
 * What the upload benchmarks share (bench_upload.c, bench_streams.c): a counting allocator
 * (for evrec_set_allocator: current and peak bytes), CPU and wall clocks, the local endpoint
 * started and stopped, and its control API read with libcurl.
 */
#ifndef EVREC_BENCH_COMMON_H
#define EVREC_BENCH_COMMON_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* -- counting allocator ------------------------------------------------------------------ */

#define HDR 16 /* keeps max_align_t alignment */
static atomic_size_t g_cur, g_peak;

static void note_alloc(size_t n)
{
    size_t cur = atomic_fetch_add(&g_cur, n) + n;
    size_t peak = atomic_load(&g_peak);
    while (cur > peak && !atomic_compare_exchange_weak(&g_peak, &peak, cur))
        ;
}

static void *cm(size_t n)
{
    unsigned char *p = malloc(n + HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    note_alloc(n);
    return p + HDR;
}

static void cf(void *ptr)
{
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - HDR;
    size_t n;
    memcpy(&n, p, sizeof n);
    atomic_fetch_sub(&g_cur, n);
    free(p);
}

static void *cr(void *ptr, size_t n)
{
    if (!ptr)
        return cm(n);
    unsigned char *p = (unsigned char *)ptr - HDR;
    size_t old;
    memcpy(&old, p, sizeof old);
    unsigned char *q = realloc(p, n + HDR);
    if (!q)
        return NULL;
    memcpy(q, &n, sizeof n);
    atomic_fetch_sub(&g_cur, old);
    note_alloc(n);
    return q + HDR;
}

/* -- helpers ------------------------------------------------------------------------------- */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Profiling only the timed part: with EVREC_BENCH_PERF_CTL naming the control FIFO of
 * `perf record -D -1 --control fifo:CTL` (the path CTL), each timed section is bracketed with
 * "enable" and "disable", so the profile holds the flush and nothing of the set-up. Unset, a
 * no-op. `which` says whose section it is: it is profiled only if EVREC_BENCH_PERF_WHO is unset
 * or names it ("evrec", "reference", "floor"). */
static void perf_ctl(const char *which, const char *cmd)
{
    const char *path = getenv("EVREC_BENCH_PERF_CTL"), *who = getenv("EVREC_BENCH_PERF_WHO");
    if (!path || !*path || (who && *who && strcmp(who, which) != 0))
        return;
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s\n", cmd);
        fclose(f);
    }
}

static const char *python(void)
{
    const char *p = getenv("EVREC_PYTHON");
    return p && *p ? p : "python3";
}

typedef struct buf {
    char *data;
    size_t len;
} buf_t;

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    buf_t *b = ud;
    char *nd = realloc(b->data, b->len + sz * n + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, sz * n);
    b->data = nd;
    b->len += sz * n;
    b->data[b->len] = '\0';
    return sz * n;
}

/* The reference exchanges' one reused handle: POSTs to `url`, answers collected in *answer. */
static inline CURL *reference_handle(const char *url, buf_t *answer)
{
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
    return c;
}

/* One signed POST on the reference handle: its answer parsed with cJSON (NULL if none).
 * `extra` is one more header line, or NULL. */
static inline cJSON *reference_post(CURL *c, buf_t *answer, const char *content_type,
                                    const char *extra, const char *amz_date,
                                    const char *authorization, const char *body, size_t len)
{
    char h0[96], h1[64], h2[1100];
    snprintf(h0, sizeof h0, "Content-Type: %s", content_type);
    snprintf(h1, sizeof h1, "X-Amz-Date: %s", amz_date);
    snprintf(h2, sizeof h2, "Authorization: %s", authorization);
    struct curl_slist *hl = curl_slist_append(NULL, h0);
    hl = curl_slist_append(hl, h1);
    hl = curl_slist_append(hl, h2);
    if (extra)
        hl = curl_slist_append(hl, extra);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    answer->len = 0;
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hl);
    return rc == CURLE_OK && answer->data ? cJSON_ParseWithLength(answer->data, answer->len)
                                          : NULL;
}

static cJSON *http_json(const char *method, const char *url)
{
    CURL *c = curl_easy_init();
    buf_t b = { NULL, 0 };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    cJSON *j = rc == CURLE_OK && b.data ? cJSON_Parse(b.data) : NULL;
    free(b.data);
    return j;
}

/* Start the local endpoint; returns its pid and writes its URL. */
static pid_t start_endpoint(const char *dir, char *url, size_t urllen)
{
    char portfile[700];
    snprintf(portfile, sizeof portfile, "%s/port", dir);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execlp(python(), python(), "tools/fake_endpoint.py", "--port-file", portfile,
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(portfile, "r");
        int port = 0;
        if (f) {
            int got = fscanf(f, "%d", &port);
            fclose(f);
            if (got == 1 && port > 0) {
                snprintf(url, urllen, "http://127.0.0.1:%d", port);
                return pid;
            }
        }
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void stop_endpoint(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

#endif /* EVREC_BENCH_COMMON_H */
