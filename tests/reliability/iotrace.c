/*
 * LD_PRELOAD shim for the power-cut test: records every write and sync the process makes to a
 * file named data.mdb into the trace file named by $EVREC_IOTRACE, in order, with the bytes
 * written. The test rebuilds the file as a power cut at any point of the trace could have left
 * it (tests/reliability/powercut.py).
 *
 * Trace records: struct rec (little-endian host order, same machine) followed by `len` bytes
 * for writes:
 *   W  a write through the page cache (pwrite, write, writev, pwritev)
 *   D  a write through a file opened O_DSYNC/O_SYNC (durable when the call returns)
 *   S  fsync / fdatasync / msync of the file (every earlier write is durable)
 *   M  a marker from the workload (iotrace_mark): kind in `off`, value in `len`
 *   F  synced.meta's whole content, when renamed into place (evrec fsyncs it and its
 *      directory) or fdatasync'ed after a write in place
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

struct rec {
    char type;
    char pad[7];
    uint64_t off;
    uint64_t len;
};

#define MAX_FD 1024
static unsigned char tracked[MAX_FD]; /* 1: data.mdb, 2: data.mdb opened O_DSYNC */
static int trace_fd = -1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static off_t (*real_lseek)(int, off_t, int);
static int (*real_rename)(const char *, const char *);
static ssize_t (*real_read)(int, void *, size_t);

static void init(void)
{
    if (real_write)
        return;
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_close = dlsym(RTLD_NEXT, "close");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_pwritev = dlsym(RTLD_NEXT, "pwritev");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_lseek = dlsym(RTLD_NEXT, "lseek");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_read = dlsym(RTLD_NEXT, "read");
    const char *path = getenv("EVREC_IOTRACE");
    if (path && *path)
        trace_fd = real_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static void put_all(const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = real_write(trace_fd, c, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            abort();
        }
        c += w;
        n -= (size_t)w;
    }
}

static void log_rec(char type, uint64_t off, const struct iovec *iov, int n, size_t total)
{
    if (trace_fd < 0)
        return;
    struct rec r;
    memset(&r, 0, sizeof r);
    r.type = type;
    r.off = off;
    r.len = total;
    pthread_mutex_lock(&mu);
    put_all(&r, sizeof r);
    size_t left = total;
    for (int i = 0; i < n && left > 0; i++) {
        size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;
        put_all(iov[i].iov_base, k);
        left -= k;
    }
    pthread_mutex_unlock(&mu);
}

/* Exported for the workload (found with dlsym): a marker in the trace. */
void iotrace_mark(int kind, uint64_t value)
{
    init();
    if (trace_fd < 0)
        return;
    struct rec r;
    memset(&r, 0, sizeof r);
    r.type = 'M';
    r.off = (uint64_t)kind;
    r.len = value;
    pthread_mutex_lock(&mu);
    put_all(&r, sizeof r);
    pthread_mutex_unlock(&mu);
}

static int is_data_file(const char *path)
{
    size_t n = strlen(path);
    return n >= 8 && strcmp(path + n - 8, "data.mdb") == 0 &&
           (n == 8 || path[n - 9] == '/');
}

static int is_side_file(const char *path)
{
    size_t n = strlen(path);
    return n >= 11 && strcmp(path + n - 11, "synced.meta") == 0;
}

static void note_open(int fd, const char *path, int flags)
{
    if (fd >= 0 && fd < MAX_FD)
        tracked[fd] = is_data_file(path) ? ((flags & (O_DSYNC | O_SYNC)) ? 2 : 1)
                      : is_side_file(path) ? 3
                                           : 0;
}

/* synced.meta's whole content, as an F record (it is durable once synced). */
static void log_side(int fd)
{
    char buf[4096];
    ssize_t got = pread(fd, buf, sizeof buf, 0);
    if (got < 0)
        got = 0;
    struct iovec v = { buf, (size_t)got };
    log_rec('F', 0, &v, 1, (size_t)got);
}

int open(const char *path, int flags, ...)
{
    init();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = real_open(path, flags, mode);
    note_open(fd, path, flags);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    init();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = (real_open64 ? real_open64 : real_open)(path, flags, mode);
    note_open(fd, path, flags);
    return fd;
}

int close(int fd)
{
    init();
    if (fd >= 0 && fd < MAX_FD)
        tracked[fd] = 0;
    return real_close(fd);
}

static int kind(int fd)
{
    return fd >= 0 && fd < MAX_FD ? tracked[fd] : 0;
}

static void traced(int fd, uint64_t off, const struct iovec *iov, int n, ssize_t done)
{
    if (done > 0 && (kind(fd) == 1 || kind(fd) == 2))
        log_rec(kind(fd) == 2 ? 'D' : 'W', off, iov, n, (size_t)done);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    init();
    ssize_t w = real_pwrite(fd, buf, n, off);
    struct iovec v = { (void *)buf, n };
    traced(fd, (uint64_t)off, &v, 1, w);
    return w;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    init();
    ssize_t w = real_pwrite64(fd, buf, n, off);
    struct iovec v = { (void *)buf, n };
    traced(fd, (uint64_t)off, &v, 1, w);
    return w;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    init();
    off_t at = kind(fd) ? real_lseek(fd, 0, SEEK_CUR) : 0;
    ssize_t w = real_write(fd, buf, n);
    struct iovec v = { (void *)buf, n };
    traced(fd, (uint64_t)at, &v, 1, w);
    return w;
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    init();
    off_t at = kind(fd) ? real_lseek(fd, 0, SEEK_CUR) : 0;
    ssize_t w = real_writev(fd, iov, n);
    traced(fd, (uint64_t)at, iov, n, w);
    return w;
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    init();
    ssize_t w = real_pwritev(fd, iov, n, off);
    traced(fd, (uint64_t)off, iov, n, w);
    return w;
}

int fsync(int fd)
{
    init();
    int rc = real_fsync(fd);
    if (rc == 0 && kind(fd) == 3)
        log_side(fd);
    else if (rc == 0 && kind(fd))
        log_rec('S', 0, NULL, 0, 0);
    return rc;
}

int fdatasync(int fd)
{
    init();
    int rc = real_fdatasync(fd);
    if (rc == 0 && kind(fd) == 3)
        log_side(fd);
    else if (rc == 0 && kind(fd))
        log_rec('S', 0, NULL, 0, 0);
    return rc;
}

int rename(const char *from, const char *to)
{
    init();
    int rc = real_rename(from, to);
    size_t n = strlen(to);
    if (rc == 0 && trace_fd >= 0 && n >= 11 && strcmp(to + n - 11, "synced.meta") == 0) {
        char buf[4096];
        size_t got = 0;
        int fd = real_open(to, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t r;
            while (got < sizeof buf && (r = real_read(fd, buf + got, sizeof buf - got)) > 0)
                got += (size_t)r;
            real_close(fd);
        }
        struct iovec v = { buf, got };
        log_rec('F', 0, &v, 1, got);
    }
    return rc;
}
