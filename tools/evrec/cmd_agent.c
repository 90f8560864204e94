/* `evrec agent`: the long-lived daemon that runs a store's flusher in the foreground. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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


/* The destination, for the log. */
static const char *service_title(evrec_service_t s)
{
    static const char *const titles[] = { "Pinpoint", "Personalize", "Kinesis", "Firehose" };
    return (unsigned)s < sizeof titles / sizeof titles[0] ? titles[s] : "?";
}
static void usage(FILE *out)
{
    fprintf(out,
            "usage: evrec agent --store DIR --service pinpoint|personalize\n"
            "                   (--application-id ID | --tracking-id ID) [--config FILE]\n"
            "                   [--drain-timeout SECONDS] [--syslog | --log-file FILE]\n"
            "                   [--log-level error|warn|info|debug]\n"
            "       evrec agent --store DIR --service kinesis\n"
            "                   (--stream-name NAME | --stream-arn ARN) ...\n"
            "       evrec agent --store DIR --service firehose --delivery-stream-name NAME ...\n\n"
            "Runs the store's flusher in the foreground until SIGTERM or SIGINT, then drains\n"
            "the queue for up to --drain-timeout seconds (default 30; what is left stays\n"
            "queued for the next start). Other processes record into the same store with\n"
            "`evrec record` or the library meanwhile. Logs go to stderr, to syslog, or to a\n"
            "file that SIGHUP reopens (for logrotate). SIGHUP also reads the configuration\n"
            "again (the --config file, then the same flags): credentials, endpoint,\n"
            "intervals, limits take effect at once; a configuration that does not parse or\n"
            "that the library refuses is logged and the running one stays (the store, the\n"
            "log destination and --drain-timeout stay as started). If another process is the\n"
            "store's flusher, the agent waits for the role. Exit status 2 for bad\n"
            "configuration, 1 if the store cannot be opened, 0 after a clean stop.\n\n");
    cli_options_help(out, CLI_FOR_AGENT);
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
    /* Created private (0600) whatever the umask: the log names the store, the endpoint and
     * the service's answers. O_NOFOLLOW: a planted symbolic link is not written through. */
    int fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    pthread_mutex_lock(&l->mu);
    FILE *old = l->file;
    l->file = f;
    pthread_mutex_unlock(&l->mu);
    if (old)
        fclose(old);
    return 0;
}

/* The agent's own checks of a parsed configuration; -1 with c->err. */
static int check_config(cli_config_t *c)
{
    cli_apply_hooks(c);
    if (c->use_syslog && c->log_file) {
        snprintf(c->err, sizeof c->err, "--syslog and --log-file exclude each other");
        return -1;
    }
    if (c->opts.manual_flush || c->opts.no_flusher) {
        snprintf(c->err, sizeof c->err,
                 "the agent runs the flusher: manual_flush and no_flusher do not apply");
        return -1;
    }
    return 0;
}

static int parse(cli_config_t *c, int argc, char **argv)
{
    if (cli_parse_options(c, argc, argv, 1, "agent") != 0)
        return -1;
    if (check_config(c) != 0) {
        fprintf(stderr, "evrec agent: %s\n", c->err);
        return -1;
    }
    return 0;
}

/* parse() for a reload: nothing printed, the reason in c->err. */
static int parse_quietly(cli_config_t *c, int argc, char **argv)
{
    c->opts.log_level = EVREC_LOG_INFO;
    if (cli_apply_options(c, argc, argv, 1) != 0)
        return -1;
    return check_config(c);
}

/* Wait up to ms for one of the signals in *set; returns it, or 0 when the time passed. */
static int wait_signal(const sigset_t *set, uint32_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    for (;;) {
        /* UINT32_MAX: no timeout (an idle agent's main thread sleeps until a signal) */
        int sig = sigtimedwait(set, NULL, ms == UINT32_MAX ? NULL : &ts);
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

/* SIGHUP: read the configuration again and, when it parses and the library accepts it (an
 * agent opened with it without a flusher), restart the flusher with it. Otherwise log why and
 * keep the running agent. On success *cur becomes the new (malloc'ed) configuration and the
 * caller frees the old one; *agent is replaced. Returns -1 to go on, or an exit code (a stop
 * signal came while waiting for the flusher role). */
static int reload(cli_config_t **cur, int argc, char **argv, daemon_log_t *l,
                  const sigset_t *set, evrec_t **agent)
{
    cli_config_t *n = malloc(sizeof *n);
    if (!n) {
        dlog(l, EVREC_LOG_ERROR, "reload refused: out of memory; the running configuration stays");
        return -1;
    }
    cli_config_init(n);
    cli_config_for(n, CLI_FOR_AGENT, "agent");
    cli_config_t *old = *cur;
    const char *why = NULL;
    if (parse_quietly(n, argc, argv) != 0)
        why = n->err;
    else if (!n->store || strcmp(n->store, old->store) != 0)
        why = "the store cannot change without a restart";
    else if (n->use_syslog != old->use_syslog ||
             (n->log_file == NULL) != (old->log_file == NULL) ||
             (n->log_file && strcmp(n->log_file, old->log_file) != 0))
        why = "the log destination cannot change without a restart";
    char msg[512] = "";
    if (!why) {
        n->opts.log_fn = daemon_log_fn;
        n->opts.log_user = l;
        /* The probe validates every option, delivery's included: it finds the flusher role
         * taken (by the running agent) and records only. Its own log would say so: quiet. */
        evrec_options_t probe_opts = n->opts;
        probe_opts.log_fn = NULL;
        evrec_t *probe = NULL;
        int rc = evrec_open(&probe, n->store, &probe_opts, msg, sizeof msg);
        if (rc != EVREC_OK) {
            if (!msg[0])
                snprintf(msg, sizeof msg, "%s", evrec_strerror(rc));
            why = msg;
        } else {
            evrec_close(probe, 0);
        }
    }
    if (why) {
        dlog(l, EVREC_LOG_ERROR, "reload refused: %s; the running configuration stays", why);
        cli_config_free(n);
        free(n);
        return -1;
    }
    /* The new configuration is good: stop the old flusher (what it has not sent stays queued)
     * and take the role again with the new one. */
    evrec_close(*agent, 0);
    *agent = NULL;
    l->level = n->opts.log_level;
    n->drain_timeout_s = old->drain_timeout_s;
    int code = open_flusher(n, l, set, agent);
    if (code >= 0 && *agent == NULL && code != CLI_EXIT_OK) {
        dlog(l, EVREC_LOG_ERROR, "reload failed at open; going back to the running configuration");
        code = open_flusher(old, l, set, agent);
        cli_config_free(n);
        free(n);
        return code;
    }
    dlog(l, EVREC_LOG_INFO, "configuration reloaded: flushing %s to %s (endpoint %s)",
         n->store, service_title(n->opts.service),
         *agent ? evrec_endpoint_id(*agent) : "-");
    *cur = n;
    return code;
}

static int serve(cli_config_t *c, daemon_log_t *l, int argc, char **argv)
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
         service_title(c->opts.service),
         evrec_endpoint_id(agent), (long)getpid());
    int sig;
    cli_config_t *cur = c; /* after a reload, a malloc'ed one */
    for (;;) {
        sig = wait_signal(&set, UINT32_MAX);
        if (sig == SIGHUP) {
            if (reopen_log(l) != 0)
                dlog(l, EVREC_LOG_ERROR, "cannot reopen %s: %s", l->path, strerror(errno));
            else if (l->path)
                dlog(l, EVREC_LOG_INFO, "log reopened");
            cli_config_t *before = cur;
            code = reload(&cur, argc, argv, l, &set, &agent);
            if (cur != before && before != c) {
                cli_config_free(before);
                free(before);
            }
            if (code >= 0) {
                if (cur != c) {
                    cli_config_free(cur);
                    free(cur);
                }
                return code;
            }
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    if (cur != c) {
        cli_config_free(cur);
        free(cur);
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
    cli_config_for(&c, CLI_FOR_AGENT, "agent");
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
    code = serve(&c, &l, argc, argv);
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
