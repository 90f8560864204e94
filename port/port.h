/*
 * The port layer: every call evrec makes to the operating system goes through here.
 *
 * port/posix/ is the reference implementation. An RTOS port (FreeRTOS, Zephyr, ...) is a new
 * folder beside it implementing these functions; nothing under agent/ changes.
 *
 * Conventions: functions that can fail return 0 on success or a negative errno-style value
 * (-ENOENT, -EEXIST, -ENOSPC, -EACCES, ...; a port without errno maps to these constants).
 * Nothing here allocates with malloc directly: allocation goes through port_alloc.c, which
 * honours evrec_set_allocator().
 */
#ifndef EVREC_PORT_H
#define EVREC_PORT_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>

/* -- memory (port/alloc.c, shared by all ports) -------------------------------------------- */

void *port_malloc(size_t size);
void *port_calloc(size_t n, size_t size);
void *port_realloc(void *ptr, size_t size);
void port_free(void *ptr);
/** Duplicate a NUL-terminated string (NULL in, NULL out). */
char *port_strdup(const char *s);
/** Duplicate `len` bytes and NUL-terminate. */
char *port_strndup(const char *s, size_t len);

/* -- clocks -------------------------------------------------------------------------------- */

/** Monotonic time in microseconds from an arbitrary origin; never goes backwards. */
uint64_t port_monotonic_us(void);
/** Monotonic time in milliseconds. */
uint64_t port_monotonic_ms(void);
/** Wall-clock time, Unix epoch milliseconds (may jump when the clock is set). */
int64_t port_wall_ms(void);
/** Sleep the calling thread for at least `ms` milliseconds. */
void port_sleep_ms(uint32_t ms);

/** A clock given to a module (queue, session, flusher) instead of the system's, so tests move
 *  time instead of sleeping. Either function may be NULL (the system's); a NULL clock is the
 *  system's. The clock must outlive whatever it was given to. */
typedef struct port_clock {
    int64_t (*wall_ms)(void *user);       /**< as port_wall_ms() */
    uint64_t (*monotonic_ms)(void *user); /**< as port_monotonic_ms(): never goes backwards */
    void *user;
} port_clock_t;

static inline int64_t port_clock_wall_ms(const port_clock_t *c)
{
    return c && c->wall_ms ? c->wall_ms(c->user) : port_wall_ms();
}

static inline uint64_t port_clock_monotonic_ms(const port_clock_t *c)
{
    return c && c->monotonic_ms ? c->monotonic_ms(c->user) : port_monotonic_ms();
}

/* -- randomness ---------------------------------------------------------------------------- */

/** Fill buf with cryptographically secure random bytes. */
int port_random(void *buf, size_t len);
/** Random bytes for identifiers (event ids), from the same source as port_random but through
 *  a pool the port refills many ids at a time: one system call for many ids. Never the same
 *  bytes twice, in a forked child either. Not for secrets. */
int port_random_id(void *buf, size_t len);

/* -- SHA-256 (port/sha256.c, shared by all ports) ------------------------------------------ */

/** SHA-256 of len bytes (the SigV4 body and canonical-request hashes). */
void port_sha256(const void *data, size_t len, uint8_t out[32]);
/** HMAC-SHA256 of msg under key (SigV4's signing key and signature), by the same backend as
 *  port_sha256. 0, or -1 if it could not be computed. */
int port_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                     uint8_t out[32]);
/** The backend port_sha256 and port_hmac_sha256 use: "mbedtls" (the reference, always built) or a faster one the
 *  build added ("libcrypto"). */
const char *port_sha256_backend(void);
/** Switch backend by name (tests, benchmarks): 0, or -ENOENT if it is not built in. */
int port_sha256_use(const char *name);

/* -- threads ------------------------------------------------------------------------------- */

typedef struct port_mutex port_mutex_t;
typedef struct port_cond port_cond_t;
typedef struct port_thread port_thread_t;

int port_mutex_new(port_mutex_t **out);
void port_mutex_free(port_mutex_t *m);
void port_mutex_lock(port_mutex_t *m);
void port_mutex_unlock(port_mutex_t *m);

int port_cond_new(port_cond_t **out);
void port_cond_free(port_cond_t *c);
/** Wait on c (m held) for at most timeout_ms; returns 0 when signalled (or spuriously woken),
 *  -ETIMEDOUT when the time passed. */
int port_cond_timedwait(port_cond_t *c, port_mutex_t *m, uint32_t timeout_ms);
void port_cond_broadcast(port_cond_t *c);

/** Start a thread running fn(arg). */
int port_thread_start(port_thread_t **out, void (*fn)(void *arg), void *arg);
/** Wait for the thread to end and free it. */
void port_thread_join(port_thread_t *t);

/** A waiter for one thread (the flusher's): it sleeps until another thread of this process
 *  pokes it, or until another process (or this one) writes to a file (the store's data file),
 *  or a timeout. The POSIX port watches the file with Linux inotify (IN_MODIFY: LMDB writes
 *  its pages and meta with pwrite/writev) and pokes through an eventfd, and one poll() waits
 *  on both. Where the file cannot be watched (another OS, the inotify limits reached, an RTOS
 *  port, the file removed or renamed later) port_watch_file() is 0: the caller then looks at
 *  the file on a timer of its own. Pokes work everywhere (a port without files implements
 *  only them, e.g. with a semaphore). */
typedef struct port_watch port_watch_t;
#define PORT_WATCH_POKED 1   /**< port_watch_wait(): port_watch_poke() was called */
#define PORT_WATCH_CHANGED 2 /**< port_watch_wait(): the file was written to */
/** A waiter on the file at `path` (NULL: pokes only). Fails (-errno) only when a poke cannot be
 *  delivered; a file that cannot be watched is not an error (port_watch_file() says 0). */
int port_watch_new(const char *path, port_watch_t **out);
void port_watch_free(port_watch_t *w);
/** 1 while writes to the file end port_watch_wait(), 0 if they do not (poll the file). */
int port_watch_file(const port_watch_t *w);
/** End the current or, if none, the next port_watch_wait() (any thread; cheap, no lock). */
void port_watch_poke(port_watch_t *w);
/** Wait up to timeout_ms (0: only look; UINT32_MAX: no limit) for a poke or, with `file`,
 *  a write to the file. Returns what ended it (PORT_WATCH_* bits, taken: the next wait does
 *  not see them again; a write while `file` is 0 is kept for a later wait), 0 on timeout.
 *  A write is reported as it happens, which may be a moment before the writer's commit can
 *  be read (LMDB publishes a commit in its lock file after writing the meta page): a caller
 *  that reads the file after a write looks again a little later. */
int port_watch_wait(port_watch_t *w, int file, uint32_t timeout_ms);
/** A descriptor that becomes readable when the file is written to, for an event loop to wait
 *  on (port_watch_wait(w, 1, 0) takes the notification); -1 if there is none. */
int port_watch_fd(const port_watch_t *w);

/** A small per-thread slot for one pointer (used for per-thread error messages). */
typedef struct port_tls port_tls_t;
int port_tls_new(port_tls_t **out, void (*destructor)(void *));
void port_tls_free(port_tls_t *k);
void *port_tls_get(port_tls_t *k);
int port_tls_set(port_tls_t *k, void *value);

/* -- files --------------------------------------------------------------------------------- */

/** Create directory `path` with owner-only permissions (0700) if it does not exist; parents
 *  are created as needed. An existing directory is accepted as it is. */
int port_mkdir_private(const char *path);
/** 1 if path exists (any type), 0 if not. */
int port_path_exists(const char *path);
/** 1 if path is a directory. */
int port_is_dir(const char *path);
/** Size of a regular file in bytes, or a negative errno. */
int64_t port_file_size(const char *path);
/** Read a whole file (at most max_len bytes; -EFBIG if larger); *out is NUL-terminated and
 *  must be freed with port_free. */
int port_read_file(const char *path, char **out, size_t *len, size_t max_len);
/** port_read_file (which refuses what is not a regular file with -EINVAL, a FIFO included,
 *  without waiting for a writer) that also tells, of the file it read, *owner: its uid;
 *  *mode: its permission bits. Either may be NULL. */
int port_read_file_owned(const char *path, char **out, size_t *len, size_t max_len,
                         long *owner, unsigned *mode);
/** Whether a file of `owner` (uid) with permission bits `mode` may hold a secret, as ssh
 *  judges its keys: 0 if the caller owns it and neither group nor others have any permission,
 *  or root owns it and others have none (root may grant its group, e.g. root:evrec 0640 for a
 *  service user); -EPERM if another user owns it; -EACCES if it is too open. */
int port_secret_owner_ok(long owner, unsigned mode);
/** Whether the file at `path` may hold a secret (a private key): -EINVAL if it is not a
 *  regular file, else port_secret_owner_ok of its owner and mode (*owner and *mode get them);
 *  another negative errno if it cannot be examined. */
int port_file_check_private(const char *path, long *owner, unsigned *mode);
/** A file opened for positional reads (the store verifier reads data.mdb page by page,
 *  without mapping it). */
typedef struct port_file port_file_t;
int port_file_open_read(const char *path, port_file_t **out);
/** Read exactly `len` bytes at `offset`: 0, -ENODATA if the file ends first, or -errno. */
int port_file_read_at(port_file_t *f, uint64_t offset, void *buf, size_t len);
void port_file_close(port_file_t *f);
/** Write a whole file atomically (temp file, fsync, rename) with permissions 0600. */
int port_write_file_private(const char *path, const void *data, size_t len);
/** Write `len` bytes at `offset` of the existing file `path` (not through a symbolic link)
 *  and fdatasync it. */
int port_file_write_at_sync(const char *path, uint64_t offset, const void *buf, size_t len);
/** A text that changes at every boot of the machine (Linux: the kernel's boot_id), "" if the
 *  platform has none. $EVREC_TEST_BOOT_ID stands in for it (the power-cut test's reboot). */
void port_boot_id(char *buf, size_t len);
/** Rename (move) a file or directory. */
int port_rename(const char *from, const char *to);
/** Remove a file (not a directory). */
int port_remove(const char *path);
/** Set a file's permissions to owner read/write only (0600). */
int port_chmod_private(const char *path);

/** Whether the directory at `path` (a link to it is followed) may hold a store this process
 *  trusts. Never one that others may write to (-EACCES). 0: a private store, owned by the
 *  caller (effective user) or by root, writable by its owner only. 1: a store shared by a
 *  group: group-writable and setgid (every file in it gets the directory's group), owned by
 *  the caller or root, or by another user when the caller is in the directory's group.
 *  -EPERM if another user owns it otherwise (*owner gets the uid), -EACCES if others may
 *  write to it or the group may without setgid (*mode gets its permission bits); another
 *  negative errno if it cannot be examined. */
int port_dir_check_private(const char *path, long *owner, unsigned *mode);
/** A regular file's permission bits (*mode) and whether it belongs to the effective user or
 *  root (*mine): 0, -EINVAL if it is not a regular file (a link is followed), or -errno. */
int port_file_mode(const char *path, unsigned *mode, int *mine);
/** Create the regular file `path` (0600) if missing, without following a symbolic link in its
 *  last component (O_NOFOLLOW), and make it 0600 through the opened file. -ELOOP if it is a
 *  symbolic link, -EINVAL if it is not a regular file, -EPERM if another user owns it. */
int port_prepare_private_file(const char *path);
/** port_prepare_private_file, or with `shared` (a group store, port_dir_check_private 1) 0660:
 *  a file of another member is accepted when it is exactly 0660 and of a group of the caller
 *  (-EACCES otherwise). */
int port_prepare_store_file(const char *path, int shared);

/** An advisory, process-wide exclusive lock on a file (created 0600 if missing). Released
 *  when the holder closes it or dies. Returns -EWOULDBLOCK (== -EAGAIN) if another process
 *  holds it. */
typedef struct port_filelock port_filelock_t;
int port_filelock_try(const char *path, port_filelock_t **out);
void port_filelock_release(port_filelock_t *l);
/** Whether someone (this process included) holds the lock on `path`: 1 held, 0 free (or no
 *  such file), a negative errno on failure. It may hold a shared lock for an instant to ask,
 *  during which port_filelock_try by another caller fails: takers retry once. */
int port_filelock_probe(const char *path);
/** An exclusive POSIX record lock on the first byte of `path`, which every process that has
 *  an LMDB environment open holds shared on its lock file: taken only if no other process has
 *  the store open. 0 with *out set (NULL if the file does not exist), -EAGAIN if another
 *  process holds it. Released by port_filelock_release. */
int port_filelock_first_byte_try(const char *path, port_filelock_t **out);

/** Call fn(user, name) for each entry of directory `path` except "." and "..", in no
 *  particular order. Stops at the first non-zero return of fn and returns that value;
 *  otherwise 0, or a negative errno if the directory cannot be read. */
int port_dir_list(const char *path, int (*fn)(void *user, const char *name), void *user);

/** Bytes this process has caused to be written to storage so far (for benchmarks); -1 if
 *  the platform cannot tell. */
int64_t port_io_write_bytes(void);

/* -- running a program ------------------------------------------------------------------- */

/** Run the program argv[0] (looked up on PATH when it has no '/') with arguments argv (NULL-
 *  terminated), directly — never through a shell — with stdin from /dev/null, stderr
 *  inherited, and its standard output captured into *out (NUL-terminated, port_free; at most
 *  max_len bytes: more is -EFBIG). Waits at most timeout_ms for it to finish (then kills it:
 *  -ETIMEDOUT). On 0, *exit_status is its exit code (128 + signal if a signal ended it).
 *  Only credential_process uses this (the AWS CLI's contract); a port without processes
 *  returns -ENOSYS. */
int port_run_capture(const char *const *argv, char **out, size_t *len, size_t max_len,
                     uint32_t timeout_ms, int *exit_status);

/** Run the program argv[0] (on PATH when it has no '/') with arguments argv, directly — never
 *  through a shell — with data (len bytes) on its stdin and stdout/stderr inherited; waits for
 *  it. A program that stops reading early is not an error. On 0, *exit_status as above; a
 *  program that cannot start is the spawn's -errno (-ENOENT). Only the CLI's output pager
 *  (the AWS CLI's AWS_PAGER) uses this; a port without processes returns -ENOSYS. */
int port_run_feed(const char *const *argv, const char *data, size_t len, int *exit_status);

/* -- process-wide registry ---------------------------------------------------------------- */
/* For handles a library allows only once per process (LMDB: an environment must not be open
 * twice in one process, its locks are per process), so that two users in one process can
 * share one handle. */

/** A text identity of the file or directory at `path` (device and inode on POSIX): two paths
 *  naming the same file give the same text. */
int port_file_id(const char *path, char *buf, size_t len);
/** The one lock around the registry; hold it across find-then-add. */
void port_registry_lock(void);
void port_registry_unlock(void);
/** With the lock held: the object registered under `key`, or NULL. */
void *port_registry_find(const char *key);
/** With the lock held: register `obj` under `key` (copied). -EEXIST if taken, -ENOMEM. */
int port_registry_add(const char *key, void *obj);
/** With the lock held: forget `key`. */
void port_registry_remove(const char *key);

/* -- fault injection (port/fault.c, shared by all ports; test builds only) ----------------- */

/* Only test builds (-DEVREC_FAULT_INJECTION: the Makefile's test library, which the test
 * programs link) carry the hooks; in the release library port_fault_take() is a constant 0
 * and port/fault.c is not compiled (make check-tree checks the release library with nm). */
#ifdef EVREC_FAULT_INJECTION
/** Make the next `count` calls of port_fault_take(site) return `err` (a negative errno such
 *  as -ENOSPC), so tests can drive error paths that the OS rarely produces on demand (a full
 *  disk). `site` must be a string with static lifetime; at most 8 sites are armed at once.
 *  count 0 disarms the site. Costs one atomic load when unarmed. */
void port_fault_set(const char *site, int err, unsigned count);
/** The injected error for `site` (consuming one count), or 0. Sites used by evrec:
 *  "queue.commit" (a store write transaction's commit), "queue.sync" (the store's fsync). */
int port_fault_take(const char *site);
#else
static inline int port_fault_take(const char *site)
{
    (void)site;
    return 0;
}
#endif

/* -- environment --------------------------------------------------------------------------- */

/** An environment variable, or NULL (never ""-as-unset: "" is returned as ""). */
const char *port_getenv(const char *name);
/** 1 when the C locale's decimal point is "." (strtod reads JSON numbers as written). */
int port_decimal_point_is_dot(void);
/** The user's home directory, or NULL. */
const char *port_home_dir(void);
/** The current process id (for lock diagnostics and log lines). */
long port_pid(void);

#endif /* EVREC_PORT_H */
