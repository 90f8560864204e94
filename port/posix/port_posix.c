/* The POSIX (Linux first) implementation of port/port.h. */
#define _GNU_SOURCE
/* 64-bit file offsets and inode numbers on 32-bit systems too: without them stat() fails
 * with EOVERFLOW on large files and readdir() on file systems with 64-bit inodes. */
#define _FILE_OFFSET_BITS 64
#include "../port.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#ifdef __linux__
#include <sys/eventfd.h>
#include <sys/inotify.h>
#endif
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* -- clocks -------------------------------------------------------------------------------- */

uint64_t port_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t port_monotonic_ms(void)
{
    return port_monotonic_us() / 1000u;
}

int64_t port_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void port_sleep_ms(uint32_t ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* -- randomness ---------------------------------------------------------------------------- */

int port_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Ids come from a pool refilled 512 bytes at a time (32 UUIDs a getrandom call). A forked
 * child must not hand out its parent's bytes again: pthread_atfork empties the pool in the
 * child, and bytes handed out are wiped from it. */
#define ID_POOL_BYTES 512
static pthread_mutex_t g_id_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char g_id_pool[ID_POOL_BYTES];
static size_t g_id_pos = ID_POOL_BYTES;
static pthread_once_t g_id_once = PTHREAD_ONCE_INIT;

static void id_pool_child(void)
{
    pthread_mutex_init(&g_id_mu, NULL);
    memset(g_id_pool, 0, sizeof g_id_pool);
    g_id_pos = ID_POOL_BYTES;
}

static void id_pool_init(void)
{
    pthread_atfork(NULL, NULL, id_pool_child);
}

int port_random_id(void *buf, size_t len)
{
    if (len > ID_POOL_BYTES / 4)
        return port_random(buf, len);
    pthread_once(&g_id_once, id_pool_init);
    pthread_mutex_lock(&g_id_mu);
    if (ID_POOL_BYTES - g_id_pos < len) {
        int rc = port_random(g_id_pool, ID_POOL_BYTES);
        if (rc != 0) {
            pthread_mutex_unlock(&g_id_mu);
            return rc;
        }
        g_id_pos = 0;
    }
    memcpy(buf, g_id_pool + g_id_pos, len);
    memset(g_id_pool + g_id_pos, 0, len);
    g_id_pos += len;
    pthread_mutex_unlock(&g_id_mu);
    return 0;
}

/* -- threads ------------------------------------------------------------------------------- */

struct port_mutex {
    pthread_mutex_t m;
};
struct port_cond {
    pthread_cond_t c;
};
struct port_thread {
    pthread_t t;
    void (*fn)(void *);
    void *arg;
};
struct port_tls {
    pthread_key_t key;
};

int port_mutex_new(port_mutex_t **out)
{
    port_mutex_t *m = port_malloc(sizeof *m);
    if (!m)
        return -ENOMEM;
    int rc = pthread_mutex_init(&m->m, NULL);
    if (rc) {
        port_free(m);
        return -rc;
    }
    *out = m;
    return 0;
}

void port_mutex_free(port_mutex_t *m)
{
    if (m) {
        pthread_mutex_destroy(&m->m);
        port_free(m);
    }
}

void port_mutex_lock(port_mutex_t *m)
{
    pthread_mutex_lock(&m->m);
}

void port_mutex_unlock(port_mutex_t *m)
{
    pthread_mutex_unlock(&m->m);
}

int port_cond_new(port_cond_t **out)
{
    port_cond_t *c = port_malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    /* Waits are measured on the monotonic clock so that setting the wall clock cannot stretch
     * or cut short a backoff. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&c->c, &attr);
    pthread_condattr_destroy(&attr);
    if (rc) {
        port_free(c);
        return -rc;
    }
    *out = c;
    return 0;
}

void port_cond_free(port_cond_t *c)
{
    if (c) {
        pthread_cond_destroy(&c->c);
        port_free(c);
    }
}

int port_cond_timedwait(port_cond_t *c, port_mutex_t *m, uint32_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int rc = pthread_cond_timedwait(&c->c, &m->m, &ts);
    return rc == ETIMEDOUT ? -ETIMEDOUT : 0;
}

void port_cond_broadcast(port_cond_t *c)
{
    pthread_cond_broadcast(&c->c);
}

static void *thread_trampoline(void *p)
{
    port_thread_t *t = p;
    t->fn(t->arg);
    return NULL;
}

int port_thread_start(port_thread_t **out, void (*fn)(void *arg), void *arg)
{
    port_thread_t *t = port_malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    t->fn = fn;
    t->arg = arg;
    int rc = pthread_create(&t->t, NULL, thread_trampoline, t);
    if (rc) {
        port_free(t);
        return -rc;
    }
    *out = t;
    return 0;
}

void port_thread_join(port_thread_t *t)
{
    if (t) {
        pthread_join(t->t, NULL);
        port_free(t);
    }
}

/* -- waiting for a file's writes --------------------------------------------------------- */

struct port_watch {
    int poke_rd, poke_wr; /* Linux: one eventfd (the same descriptor twice); else a pipe */
    int file_fd;          /* inotify, watching the file; -1 if none */
    atomic_int watching;  /* 0 once the file cannot be watched (removed, renamed) */
};

#ifndef __linux__
static int nonblocking_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return -errno;
    return 0;
}
#endif

int port_watch_new(const char *path, port_watch_t **out)
{
    port_watch_t *w = port_calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->file_fd = -1;
#ifdef __linux__
    w->poke_rd = w->poke_wr = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->poke_rd < 0) {
        int e = errno;
        port_free(w);
        return -e;
    }
    /* $EVREC_TEST_NO_FILE_WATCH: behave as a platform without inotify (the fallback's tests). */
    const char *off = getenv("EVREC_TEST_NO_FILE_WATCH");
    if (path && !(off && *off)) {
        /* The inotify limits reached (EMFILE, ENOSPC) or no such file: no watch, the caller
         * polls the file instead. */
        int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (fd >= 0 && inotify_add_watch(fd, path, IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF) >= 0) {
            w->file_fd = fd;
            atomic_store(&w->watching, 1);
        } else if (fd >= 0) {
            close(fd);
        }
    }
#else
    (void)path;
    int p[2];
    if (pipe(p) != 0) {
        int e = errno;
        port_free(w);
        return -e;
    }
    if (nonblocking_cloexec(p[0]) != 0 || nonblocking_cloexec(p[1]) != 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        port_free(w);
        return -e;
    }
    w->poke_rd = p[0];
    w->poke_wr = p[1];
#endif
    *out = w;
    return 0;
}

void port_watch_free(port_watch_t *w)
{
    if (!w)
        return;
    if (w->file_fd >= 0)
        close(w->file_fd);
    if (w->poke_wr != w->poke_rd)
        close(w->poke_wr);
    close(w->poke_rd);
    port_free(w);
}

int port_watch_file(const port_watch_t *w)
{
    return w && atomic_load(&w->watching);
}

int port_watch_fd(const port_watch_t *w)
{
    return port_watch_file(w) ? w->file_fd : -1;
}

void port_watch_poke(port_watch_t *w)
{
    if (!w)
        return;
    uint64_t one = 1; /* an eventfd adds it up; a pipe takes a byte (full: already poked) */
    ssize_t r = write(w->poke_wr, &one, w->poke_wr == w->poke_rd ? sizeof one : 1);
    (void)r;
}

/* Take what is readable on a non-blocking descriptor; 1 if there was anything. */
static int drain_fd(int fd, port_watch_t *w)
{
    _Alignas(8) char buf[4096];
    int any = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            return any;
        any = 1;
#ifdef __linux__
        if (w && fd == w->file_fd) {
            /* The watched file is gone (removed, renamed: IN_IGNORED follows): from now on the
             * caller polls. */
            for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= r;) {
                struct inotify_event ev;
                memcpy(&ev, buf + off, sizeof ev);
                if (ev.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
                    atomic_store(&w->watching, 0);
                off += (ssize_t)(sizeof ev + ev.len);
            }
        }
#else
        (void)w;
#endif
    }
}

int port_watch_wait(port_watch_t *w, int file, uint32_t timeout_ms)
{
    if (!w) {
        port_sleep_ms(timeout_ms == UINT32_MAX ? 1000 : timeout_ms);
        return 0;
    }
    struct pollfd p[2] = { { w->poke_rd, POLLIN, 0 }, { w->file_fd, POLLIN, 0 } };
    nfds_t n = file && port_watch_file(w) ? 2 : 1;
    uint64_t end = timeout_ms == UINT32_MAX ? 0 : port_monotonic_ms() + timeout_ms;
    for (;;) {
        int t = -1;
        if (timeout_ms != UINT32_MAX) {
            uint64_t now = port_monotonic_ms();
            uint64_t left = end > now ? end - now : 0;
            t = left > INT32_MAX ? INT32_MAX : (int)left;
        }
        int rc = poll(p, n, t);
        if (rc >= 0)
            break;
        if (errno != EINTR) { /* never spin: sleep out the wait (a bounded part of it) */
            port_sleep_ms(t < 0 || t > 1000 ? 1000 : (uint32_t)t);
            return 0;
        }
    }
    int got = 0;
    if (p[0].revents && drain_fd(w->poke_rd, NULL))
        got |= PORT_WATCH_POKED;
    if (n == 2 && p[1].revents && drain_fd(w->file_fd, w))
        got |= PORT_WATCH_CHANGED;
    return got;
}

int port_tls_new(port_tls_t **out, void (*destructor)(void *))
{
    port_tls_t *k = port_malloc(sizeof *k);
    if (!k)
        return -ENOMEM;
    int rc = pthread_key_create(&k->key, destructor);
    if (rc) {
        port_free(k);
        return -rc;
    }
    *out = k;
    return 0;
}

void port_tls_free(port_tls_t *k)
{
    if (k) {
        pthread_key_delete(k->key);
        port_free(k);
    }
}

void *port_tls_get(port_tls_t *k)
{
    return pthread_getspecific(k->key);
}

int port_tls_set(port_tls_t *k, void *value)
{
    return -pthread_setspecific(k->key, value);
}

/* -- files --------------------------------------------------------------------------------- */

int port_mkdir_private(const char *path)
{
    if (path == NULL || *path == '\0')
        return -EINVAL;
    char *tmp = port_strdup(path);
    if (!tmp)
        return -ENOMEM;
    int rc = 0;
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    port_free(tmp);
    if (rc == 0 && !port_is_dir(path))
        rc = -ENOTDIR;
    return rc;
}

int port_path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int port_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int64_t port_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    return (int64_t)st.st_size;
}

struct port_file {
    int fd;
};

int port_file_open_read(const char *path, port_file_t **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    port_file_t *f = port_malloc(sizeof *f);
    if (!f) {
        close(fd);
        return -ENOMEM;
    }
    f->fd = fd;
    *out = f;
    return 0;
}

int port_file_read_at(port_file_t *f, uint64_t offset, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pread(f->fd, p, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -ENODATA;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

void port_file_close(port_file_t *f)
{
    if (f) {
        close(f->fd);
        port_free(f);
    }
}

int port_read_file(const char *path, char **out, size_t *len, size_t max_len)
{
    return port_read_file_owned(path, out, len, max_len, NULL, NULL);
}

int port_read_file_owned(const char *path, char **out, size_t *len, size_t max_len,
                         long *owner, unsigned *mode)
{
    /* O_NONBLOCK: opening a FIFO without a writer would wait forever; it is refused below. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    if (owner)
        *owner = (long)st.st_uid;
    if (mode)
        *mode = (unsigned)(st.st_mode & 07777);
    if ((uint64_t)st.st_size > max_len) {
        close(fd);
        return -EFBIG;
    }
    size_t cap = (size_t)st.st_size;
    char *buf = port_malloc(cap + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            port_free(buf);
            close(fd);
            return e;
        }
        if (n == 0)
            break; /* shrank while reading: take what is there */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    if (len)
        *len = got;
    return 0;
}

/* fsync the directory holding `path`, so that a rename into it is durable. */
static int sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? port_strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : port_strdup(".");
    if (!dir)
        return -ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    port_free(dir);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : -errno;
    close(fd);
    return rc;
}

int port_write_file_private(const char *path, const void *data, size_t len)
{
    size_t plen = strlen(path);
    char *tmp = port_malloc(plen + 16);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, plen + 16, "%s.tmp%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = -errno;
        port_free(tmp);
        return e;
    }
    const char *p = data;
    size_t left = len;
    int rc = 0;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    port_free(tmp);
    if (rc == 0)
        rc = sync_parent_dir(path); /* the rename itself survives a power cut */
    return rc;
}

void port_boot_id(char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    const char *fake = getenv("EVREC_TEST_BOOT_ID");
    if (fake && *fake) {
        snprintf(buf, len, "%s", fake);
        return;
    }
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

int port_file_write_at_sync(const char *path, uint64_t offset, const void *buf, size_t len)
{
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    const char *p = buf;
    int rc = 0;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        p += n;
        offset += (uint64_t)n;
        len -= (size_t)n;
    }
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}


int port_rename(const char *from, const char *to)
{
    return rename(from, to) == 0 ? 0 : -errno;
}

int port_remove(const char *path)
{
    return unlink(path) == 0 ? 0 : -errno;
}

int port_chmod_private(const char *path)
{
    return chmod(path, 0600) == 0 ? 0 : -errno;
}

int port_file_check_private(const char *path, long *owner, unsigned *mode)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if (owner)
        *owner = (long)st.st_uid;
    if (mode)
        *mode = (unsigned)(st.st_mode & 07777);
    return port_secret_owner_ok((long)st.st_uid, (unsigned)st.st_mode);
}

int port_secret_owner_ok(long owner, unsigned mode)
{
    if (owner == (long)geteuid())
        return mode & 077 ? -EACCES : 0;
    if (owner == 0) /* root may hand a key to a service's group (root:evrec 0640) */
        return mode & 007 ? -EACCES : 0;
    return -EPERM;
}

/* Whether the effective group or a supplementary group of this process is `gid`. */
static int in_group(gid_t gid)
{
    if (getegid() == gid)
        return 1;
    int n = getgroups(0, NULL);
    if (n <= 0)
        return 0;
    gid_t *groups = malloc((size_t)n * sizeof *groups);
    if (!groups)
        return 0;
    n = getgroups(n, groups);
    int found = 0;
    for (int i = 0; i < n && !found; i++)
        found = groups[i] == gid;
    free(groups);
    return found;
}

int port_dir_check_private(const char *path, long *owner, unsigned *mode)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (owner)
        *owner = (long)st.st_uid;
    if (mode)
        *mode = (unsigned)(st.st_mode & 07777);
    if (st.st_mode & S_IWOTH)
        return -EACCES;
    /* Group-writable only as a shared store: setgid, so that every file in it has the
     * directory's group whoever creates it. */
    int shared = (st.st_mode & S_IWGRP) != 0;
    if (shared && !(st.st_mode & S_ISGID))
        return -EACCES;
    if (st.st_uid == geteuid() || st.st_uid == 0)
        return shared;
    if (shared && in_group(st.st_gid))
        return 1;
    return -EPERM;
}

int port_file_mode(const char *path, unsigned *mode, int *mine)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    *mode = (unsigned)(st.st_mode & 07777);
    *mine = st.st_uid == geteuid() || st.st_uid == 0;
    return 0;
}

int port_prepare_private_file(const char *path)
{
    return port_prepare_store_file(path, 0);
}

int port_prepare_store_file(const char *path, int shared)
{
    mode_t want = shared ? 0660 : 0600;
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, want);
    if (fd < 0)
        return errno == ELOOP || errno == EMLINK ? -ELOOP : -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = -EINVAL;
    else if (st.st_uid == geteuid()) {
        if ((st.st_mode & 07777) != want && fchmod(fd, want) != 0)
            rc = -errno;
    } else if (!shared)
        rc = -EPERM;
    else if ((st.st_mode & 07777) != 0660 || !in_group(st.st_gid))
        rc = -EACCES; /* another member's file, not shared with the group alone */
    close(fd);
    return rc;
}

struct port_filelock {
    int fd;
};

/* A lock handle owning fd (closed on failure). */
static int lock_handle(int fd, port_filelock_t **out)
{
    port_filelock_t *l = port_malloc(sizeof *l);
    if (!l) {
        close(fd);
        return -ENOMEM;
    }
    l->fd = fd;
    *out = l;
    return 0;
}

int port_filelock_try(const char *path, port_filelock_t **out)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    /* flock locks belong to the open file description, so two agents in one process exclude
     * each other as two processes do. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
        close(fd);
        return e;
    }
    return lock_handle(fd, out);
}

int port_filelock_probe(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    int held = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0)
        held = errno == EWOULDBLOCK ? 1 : -errno;
    else
        flock(fd, LOCK_UN);
    close(fd);
    return held;
}

void port_filelock_release(port_filelock_t *l)
{
    if (l) {
        flock(l->fd, LOCK_UN);
        close(l->fd);
        port_free(l);
    }
}

int port_filelock_first_byte_try(const char *path, port_filelock_t **out)
{
    *out = NULL;
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 1;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno == EACCES ? -EAGAIN : -errno;
        close(fd);
        return e;
    }
    return lock_handle(fd, out);
}

int port_dir_list(const char *path, int (*fn)(void *user, const char *name), void *user)
{
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    int rc = 0;
    struct dirent *e;
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (!e) {
            if (errno)
                rc = -errno; /* an unreadable listing must not look like an empty one */
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = fn(user, e->d_name);
        if (rc != 0)
            break;
    }
    closedir(d);
    return rc;
}

int64_t port_io_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return -1;
    char line[128];
    long long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "write_bytes: %lld", &v) == 1)
            break;
    }
    fclose(f);
    return v;
}

/* -- process-wide registry ---------------------------------------------------------------- */

int port_file_id(const char *path, char *buf, size_t len)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    int n = snprintf(buf, len, "%llu:%llu", (unsigned long long)st.st_dev,
                     (unsigned long long)st.st_ino);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

typedef struct reg_entry {
    struct reg_entry *next;
    char *key;
    void *obj;
} reg_entry_t;

static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static reg_entry_t *g_reg;

void port_registry_lock(void)
{
    pthread_mutex_lock(&g_reg_mu);
}

void port_registry_unlock(void)
{
    pthread_mutex_unlock(&g_reg_mu);
}

void *port_registry_find(const char *key)
{
    for (reg_entry_t *e = g_reg; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->obj;
    return NULL;
}

int port_registry_add(const char *key, void *obj)
{
    if (port_registry_find(key))
        return -EEXIST;
    reg_entry_t *e = port_malloc(sizeof *e);
    char *k = port_strdup(key);
    if (!e || !k) {
        port_free(e);
        port_free(k);
        return -ENOMEM;
    }
    e->key = k;
    e->obj = obj;
    e->next = g_reg;
    g_reg = e;
    return 0;
}

void port_registry_remove(const char *key)
{
    for (reg_entry_t **pp = &g_reg; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            reg_entry_t *e = *pp;
            *pp = e->next;
            port_free(e->key);
            port_free(e);
            return;
        }
    }
}

/* -- environment --------------------------------------------------------------------------- */

const char *port_getenv(const char *name)
{
    return getenv(name);
}

int port_decimal_point_is_dot(void)
{
    const struct lconv *lc = localeconv();
    return lc && lc->decimal_point && strcmp(lc->decimal_point, ".") == 0;
}

const char *port_home_dir(void)
{
    const char *h = getenv("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw ? pw->pw_dir : NULL;
}

long port_pid(void)
{
    return (long)getpid();
}

/* -- running a program ------------------------------------------------------------------- */

extern char **environ;

static int wait_child(pid_t pid, int *status)
{
    for (;;) {
        if (waitpid(pid, status, 0) >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* Start argv with a pipe on its stdout (child_fd STDOUT_FILENO, stdin /dev/null) or its stdin
 * (STDIN_FILENO); *fd is the parent's end. 0 or -errno. */
static int spawn_piped(const char *const *argv, int child_fd, int *fd, pid_t *pid)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -errno;
    int child_end = child_fd == STDOUT_FILENO ? fds[1] : fds[0];
    int parent_end = child_fd == STDOUT_FILENO ? fds[0] : fds[1];
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        return -rc;
    }
    rc = posix_spawn_file_actions_adddup2(&fa, child_end, child_fd);
    if (rc == 0 && child_fd == STDOUT_FILENO)
        rc = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawnp(pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(child_end);
    if (rc != 0) {
        close(parent_end);
        return -rc;
    }
    *fd = parent_end;
    return 0;
}

int port_run_capture(const char *const *argv, char **out, size_t *len, size_t max_len,
                     uint32_t timeout_ms, int *exit_status)
{
    if (!argv || !argv[0] || !out || !len || !exit_status)
        return -EINVAL;
    *out = NULL;
    *len = 0;
    /* The child's stdout is the pipe's write end; stdin is /dev/null (a credential program
     * that prompts must not read the host's input). */
    int fds[2] = { -1, -1 };
    pid_t pid = -1;
    int rc = spawn_piped(argv, STDOUT_FILENO, &fds[0], &pid);
    if (rc != 0)
        return rc;
    size_t cap = 4096, got = 0;
    char *buf = port_malloc(cap);
    int err = buf ? 0 : -ENOMEM;
    uint64_t deadline = port_monotonic_ms() + timeout_ms;
    while (err == 0) {
        uint64_t now = port_monotonic_ms();
        if (now >= deadline) {
            err = -ETIMEDOUT;
            break;
        }
        struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
        int pr = poll(&pfd, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            err = -errno;
            break;
        }
        if (pr == 0)
            continue; /* the deadline is checked above */
        if (got + 1 >= cap) {
            if (cap > max_len) {
                err = -EFBIG;
                break;
            }
            char *bigger = port_realloc(buf, cap * 2);
            if (!bigger) {
                err = -ENOMEM;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(fds[0], buf + got, cap - got - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = -errno;
            break;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got > max_len)
            err = -EFBIG;
    }
    close(fds[0]);
    if (err != 0)
        kill(pid, SIGKILL);
    int status = 0;
    int wrc = wait_child(pid, &status);
    if (err == 0 && wrc != 0)
        err = wrc;
    if (err != 0) {
        if (buf) {
            memset(buf, 0, cap); /* it may hold part of a secret */
            port_free(buf);
        }
        return err;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return 0;
}

int port_run_feed(const char *const *argv, const char *data, size_t len, int *exit_status)
{
    if (!argv || !argv[0] || !exit_status)
        return -EINVAL;
    int fds[2] = { -1, -1 };
    pid_t pid = -1;
    int rc = spawn_piped(argv, STDIN_FILENO, &fds[1], &pid);
    if (rc != 0)
        return rc;
    /* a program that stops reading early (a pager quit) is not an error */
    struct sigaction ign = { .sa_handler = SIG_IGN }, old;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old);
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fds[1], data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fds[1]);
    sigaction(SIGPIPE, &old, NULL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return 0;
}
