#define _GNU_SOURCE
#include "testutil.h"

#include "evrec.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int tu_store_setup(void **state, const char *tag)
{
    tu_store_fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_tempdir(tag);
    if (!f->dir) {
        free(f);
        return -1;
    }
    snprintf(f->store, sizeof f->store, "%s/store", f->dir);
    f->cli = getenv("EVREC_CLI");
    if (!f->cli || !*f->cli)
        f->cli = "build/evrec";
    tu_isolate_aws_env();
    *state = f;
    return 0;
}

int tu_store_teardown(void **state)
{
    tu_store_fixture_t *f = *state;
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

void tu_recent_day(int days_ago, char iso[32], char printed[32])
{
    time_t t = time(NULL) - (time_t)days_ago * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    if (iso)
        strftime(iso, 32, "%Y-%m-%dT10:00:00Z", &tm);
    if (printed)
        strftime(printed, 32, "%Y-%m-%dT10:00:00.000Z", &tm);
}

char *tu_tempdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/evrec-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

void tu_rmtree(const char *path)
{
    if (path)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_root_path(const char *rel)
{
    const char *root = getenv("EVREC_ROOT");
    char *p = NULL;
    if (asprintf(&p, "%s/%s", root && *root ? root : ".", rel) < 0)
        return NULL;
    return p;
}

static const char *python(void)
{
    const char *p = getenv("EVREC_PYTHON");
    return p && *p ? p : "python3";
}

int tu_endpoint_start(tu_endpoint_t *ep, const char *const *extra)
{
    return tu_server_start(ep, "tools/fake_endpoint.py", extra);
}

int tu_server_start(tu_endpoint_t *ep, const char *script_rel, const char *const *extra)
{
    memset(ep, 0, sizeof *ep);
    ep->dir = tu_tempdir("endpoint");
    if (!ep->dir)
        return -1;
    char portfile[600], logfile[600];
    snprintf(portfile, sizeof portfile, "%s/port", ep->dir);
    snprintf(logfile, sizeof logfile, "%s/events.jsonl", ep->dir);
    char *script = tu_root_path(script_rel);
    const char *argv[64];
    int n = 0;
    argv[n++] = python();
    argv[n++] = script;
    argv[n++] = "--port-file";
    argv[n++] = portfile;
    argv[n++] = "--log";
    argv[n++] = logfile;
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        free(script);
        return -1;
    }
    if (pid == 0) {
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    free(script);
    ep->pid = pid;
    for (int i = 0; i < 200; i++) { /* up to 20 s: python start-up on a loaded machine */
        FILE *f = fopen(portfile, "r");
        if (f) {
            int port = 0;
            char scheme[16] = "http";
            int got = fscanf(f, "%d %15s", &port, scheme);
            fclose(f);
            if (got >= 1 && port > 0) {
                ep->port = port;
                snprintf(ep->url, sizeof ep->url, "%s://127.0.0.1:%d", scheme, port);
                return 0;
            }
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            ep->pid = 0;
            return -1;
        }
        struct timespec ts = { 0, 100000000L };
        nanosleep(&ts, NULL);
    }
    tu_endpoint_stop(ep);
    return -1;
}

void tu_endpoint_stop(tu_endpoint_t *ep)
{
    if (ep->pid > 0) {
        kill(ep->pid, SIGTERM);
        for (int i = 0; i < 50; i++) {
            if (waitpid(ep->pid, NULL, WNOHANG) == ep->pid) {
                ep->pid = 0;
                break;
            }
            struct timespec ts = { 0, 100000000L };
            nanosleep(&ts, NULL);
        }
        if (ep->pid > 0) {
            kill(ep->pid, SIGKILL);
            waitpid(ep->pid, NULL, 0);
        }
    }
    ep->pid = 0;
    if (ep->dir) {
        tu_rmtree(ep->dir);
        free(ep->dir);
        ep->dir = NULL;
    }
}

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    buf_t *b = ud;
    size_t add = sz * n;
    char *nd = realloc(b->data, b->len + add + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, add);
    b->data = nd;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

char *tu_http(const char *method, const char *url, const char *body, long *status)
{
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    buf_t b = { calloc(1, 1), 0 };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    CURLcode rc = curl_easy_perform(c);
    if (status)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        free(b.data);
        return NULL;
    }
    return b.data;
}


int tu_run(const char *const *argv, const char *stdin_data, char **out, char **err)
{
    int in[2], o[2], e[2];
    if (pipe(in) || pipe(o) || pipe(e))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(in[1]);
        close(o[0]);
        close(e[0]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(o[1]);
    close(e[1]);
    if (stdin_data) {
        size_t left = strlen(stdin_data);
        const char *p = stdin_data;
        signal(SIGPIPE, SIG_IGN);
        while (left > 0) {
            ssize_t n = write(in[1], p, left);
            if (n <= 0)
                break;
            p += n;
            left -= (size_t)n;
        }
    }
    close(in[1]);
    /* Read both pipes without deadlock: stderr is small in practice, but poll anyway. */
    buf_t ob = { calloc(1, 1), 0 }, eb = { calloc(1, 1), 0 };
    struct pollfd fds[2] = { { o[0], POLLIN, 0 }, { e[0], POLLIN, 0 } };
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                char tmp[4096];
                ssize_t n = read(fds[i].fd, tmp, sizeof tmp);
                if (n > 0) {
                    collect(tmp, 1, (size_t)n, i == 0 ? &ob : &eb);
                } else {
                    close(fds[i].fd);
                    fds[i].fd = -1;
                    open_fds--;
                }
            }
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (out)
        *out = ob.data;
    else
        free(ob.data);
    if (err)
        *err = eb.data;
    else
        free(eb.data);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int tu_validate_shape(const char *service, const char *shape, const char *json, char **report)
{
    char *script = tu_root_path("tests/support/validate_shape.py");
    const char *argv[] = { python(), script, service, shape, NULL };
    char *out = NULL, *err = NULL;
    int rc = tu_run(argv, json, &out, &err);
    free(out);
    free(script);
    if (report)
        *report = err;
    else
        free(err);
    return rc;
}

int tu_validate_request(const char *service, const char *application_id, const char *body,
                        char **report)
{
    char *script = tu_root_path("tests/support/validate_request.py");
    const char *argv[] = { python(), script, service, application_id ? application_id : "app",
                           NULL };
    char *out = NULL;
    int rc = tu_run(argv, body, &out, NULL);
    free(script);
    if (report)
        *report = out;
    else
        free(out);
    return rc;
}

char *tu_repeat(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[u * n] = '\0';
    return s;
}

void tu_isolate_aws_env(void)
{
    static const char *const unset[] = {
        "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_PINPOINT",
        "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "EVREC_STORE", "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    };
    /* the chain's last provider would otherwise ask 169.254.169.254 */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        unsetenv(unset[i]);
    setenv("AWS_REGION", "us-east-1", 1);
}

unsigned long long tu_seed(const char *what)
{
    const char *env = getenv("EVREC_TEST_SEED");
    unsigned long long seed = 0;
    if (env && *env) {
        seed = strtoull(env, NULL, 0);
    } else {
        int fd = open("/dev/urandom", O_RDONLY);
        if (fd < 0 || read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed)
            seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
        if (fd >= 0)
            close(fd);
        seed %= 1000000000000ULL; /* short enough to copy */
    }
    printf("%s: seed %llu (EVREC_TEST_SEED=%llu repeats this run)\n", what, seed, seed);
    fflush(stdout);
    return seed;
}

long tu_alloc_count, tu_alloc_live, tu_alloc_fail_at = -1;

static void *failing_malloc(size_t n)
{
    if (tu_alloc_count++ == tu_alloc_fail_at)
        return NULL;
    void *p = malloc(n);
    if (p)
        tu_alloc_live++;
    return p;
}

static void *failing_realloc(void *p, size_t n)
{
    if (tu_alloc_count++ == tu_alloc_fail_at)
        return NULL;
    void *q = realloc(p, n);
    if (q && !p)
        tu_alloc_live++;
    return q;
}

static void failing_free(void *p)
{
    if (p)
        tu_alloc_live--;
    free(p);
}

void tu_failing_allocator(int on)
{
    tu_alloc_count = tu_alloc_live = 0;
    tu_alloc_fail_at = -1;
    if (on)
        evrec_set_allocator(failing_malloc, failing_realloc, failing_free);
    else
        evrec_set_allocator(NULL, NULL, NULL);
}
