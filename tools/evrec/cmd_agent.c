/* `evrec agent`: the long-lived daemon that runs a store's flusher in the foreground. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_opts.h"
#include "evrec.h"

/* How often a daemon that found another flusher tries again to take the role. */
#define RETRY_ROLE_MS 5000

typedef struct daemon_log {
    pthread_mutex_t mu;
    FILE *file;          /* NULL: stderr */
    const char *path;
    int use_syslog;
    evrec_log_level_t level;
} daemon_log_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: evrec agent --store DIR --service pinpoint|personalize\n"
            "                   (--application-id ID | --tracking-id ID) [--config FILE]\n"
            "                   [--drain-timeout SECONDS] [--syslog | --log-file FILE]\n"
            "                   [--log-level error|warn|info|debug]\n\n"
            "Runs the store's flusher in the foreground until SIGTERM or SIGINT, then drains\n"
            "the queue for up to --drain-timeout seconds (default 30; what is left stays\n"
            "queued for the next start). Other processes record into the same store with\n"
            "`evrec record` or the library meanwhile. Logs go to stderr, to syslog, or to a\n"
            "file that SIGHUP reopens (for logrotate). If another process is the store's\n"
            "flusher, the agent waits for the role. Exit status 2 for bad configuration,\n"
            "1 if the store cannot be opened, 0 after a clean stop.\n\n");
    cli_options_help(out);
}

static int syslog_priority(evrec_log_level_t level)
{
    switch (level) {
    case EVREC_LOG_ERROR: return LOG_ERR;
    case EVREC_LOG_WARN: return LOG_WARNING;
    case EVREC_LOG_INFO: return LOG_INFO;
    default: return LOG_DEBUG;
    }
}

/* The library's log sink (called from the flusher thread too). */
static void daemon_log_fn(void *user, evrec_log_level_t level, const char *message)
{
    daemon_log_t *l = user;
    if (l->use_syslog) {
        syslog(syslog_priority(level), "%s", message);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&l->mu);
    FILE *f = l->file ? l->file : stderr;
    fprintf(f, "%s.%03ldZ evrec[%ld] %s: %s\n", when, ts.tv_nsec / 1000000L, (long)getpid(),
            cli_level_name(level), message);
    fflush(f);
    pthread_mutex_unlock(&l->mu);
}

static void dlog(daemon_log_t *l, evrec_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dlog(daemon_log_t *l, evrec_log_level_t level, const char *fmt, ...)
{
    if (level > l->level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    daemon_log_fn(l, level, msg);
}

/* Open (or reopen, after logrotate moved it) the log file. */
static int reopen_log(daemon_log_t *l)
{
    if (l->path == NULL)
        return 0;
    FILE *f = fopen(l->path, "a");
    if (!f)
        return -1;
    pthread_mutex_lock(&l->mu);
    FILE *old = l->file;
    l->file = f;
    pthread_mutex_unlock(&l->mu);
    if (old)
        fclose(old);
    return 0;
}

static int parse(cli_config_t *c, int argc, char **argv)
{
    if (cli_parse_options(c, argc, argv, 1, "agent") != 0)
        return -1;
    if (c->use_syslog && c->log_file) {
        fprintf(stderr, "evrec agent: --syslog and --log-file exclude each other\n");
        return -1;
    }
    if (c->opts.manual_flush || c->opts.no_flusher) {
        fprintf(stderr, "evrec agent: the agent runs the flusher: manual_flush and no_flusher "
                        "do not apply\n");
        return -1;
    }
    return 0;
}

/* Wait up to ms for one of the signals in *set; returns it, or 0 when the time passed. */
static int wait_signal(const sigset_t *set, uint32_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    for (;;) {
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig > 0)
            return sig;
        if (errno == EAGAIN)
            return 0;
        if (errno != EINTR)
            return 0;
    }
}

/* Open the agent, waiting while another process holds the flusher role. Returns the exit
 * code to leave with (or -1 to go on, with *out set); *stop set if a signal asked to stop. */
static int open_flusher(cli_config_t *c, daemon_log_t *l, const sigset_t *set, evrec_t **out)
{
    int warned = 0;
    for (;;) {
        evrec_t *agent = NULL;
        char msg[512] = "";
        int rc = evrec_open(&agent, c->store, &c->opts, msg, sizeof msg);
        if (rc != EVREC_OK) {
            dlog(l, EVREC_LOG_ERROR, "cannot open %s: %s", c->store, msg[0] ? msg : evrec_strerror(rc));
            if (l->file || l->use_syslog) /* say it where the person starting us looks */
                fprintf(stderr, "evrec agent: cannot open %s: %s\n", c->store,
                        msg[0] ? msg : evrec_strerror(rc));
            return rc == EVREC_E_CONFIG || rc == EVREC_E_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
        }
        rc = evrec_flush(agent, 0); /* starts an upload at once; tells whether we flush */
        if (rc != EVREC_E_BUSY) {
            *out = agent;
            return -1;
        }
        evrec_close(agent, 0);
        if (!warned)
            dlog(l, EVREC_LOG_WARN, "another process is the flusher of %s; waiting for the role",
                 c->store);
        warned = 1;
        int sig = wait_signal(set, RETRY_ROLE_MS);
        if (sig == SIGHUP)
            reopen_log(l);
        else if (sig != 0)
            return CLI_EXIT_OK;
    }
}

static int serve(cli_config_t *c, daemon_log_t *l)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Blocked before any thread starts, so the library's threads never take them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    evrec_t *agent = NULL;
    int code = open_flusher(c, l, &set, &agent);
    if (code >= 0)
        return code;
    dlog(l, EVREC_LOG_INFO, "flushing %s to %s (endpoint %s); pid %ld", c->store,
         c->opts.service == EVREC_SERVICE_PERSONALIZE ? "Personalize" : "Pinpoint",
         evrec_endpoint_id(agent), (long)getpid());
    int sig;
    for (;;) {
        sig = wait_signal(&set, 60000);
        if (sig == SIGHUP) {
            if (reopen_log(l) != 0)
                dlog(l, EVREC_LOG_ERROR, "cannot reopen %s: %s", l->path, strerror(errno));
            else
                dlog(l, EVREC_LOG_INFO, "log reopened");
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    dlog(l, EVREC_LOG_INFO, "%s: draining for up to %u s", strsignal(sig), c->drain_timeout_s);
    uint64_t ms = (uint64_t)c->drain_timeout_s * 1000u;
    int rc = evrec_close(agent, ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms);
    if (rc == EVREC_E_TIMEOUT)
        dlog(l, EVREC_LOG_WARN, "drain timed out: the events left stay queued for the next start");
    else if (rc != EVREC_OK)
        dlog(l, EVREC_LOG_ERROR, "closing the store: %s", evrec_strerror(rc));
    else
        dlog(l, EVREC_LOG_INFO, "drained; stopped");
    return CLI_EXIT_OK;
}

static int run(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    cli_config_t c;
    cli_config_init(&c);
    c.opts.log_level = EVREC_LOG_INFO; /* a daemon says what it does unless told otherwise */
    daemon_log_t l;
    memset(&l, 0, sizeof l);
    pthread_mutex_init(&l.mu, NULL);
    int code = CLI_EXIT_USAGE;
    if (parse(&c, argc, argv) != 0)
        goto done;
    if (c.store == NULL || c.store[0] == '\0') {
        fprintf(stderr, "evrec agent: --store DIR is required (or set EVREC_STORE)\n");
        goto done;
    }
    l.path = c.log_file;
    l.use_syslog = c.use_syslog;
    l.level = c.opts.log_level;
    if (reopen_log(&l) != 0) {
        fprintf(stderr, "evrec agent: cannot open log file %s: %s\n", l.path, strerror(errno));
        goto done;
    }
    if (l.use_syslog)
        openlog("evrec", LOG_PID, LOG_DAEMON);
    c.opts.log_fn = daemon_log_fn;
    c.opts.log_user = &l;
    code = serve(&c, &l);
    if (l.use_syslog)
        closelog();
done:
    if (l.file)
        fclose(l.file);
    pthread_mutex_destroy(&l.mu);
    cli_config_free(&c);
    return code;
}

const cli_command_t cli_cmd_agent = { "agent", "run a store's flusher as a daemon", run };
