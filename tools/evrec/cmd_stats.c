/* `evrec stats` (and `evrec status`): the store's counters and delivery state as JSON. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_opts.h"
#include "evrec.h"

/* Unix ms as ISO 8601 UTC with milliseconds ("2026-11-22T10:00:00.123Z"); null if unset. */
static int add_time(cJSON *o, const char *name, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&secs, &tm))
        return cJSON_AddNullToObject(o, name) != NULL;
    char buf[64];
    snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
             (long long)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, (int)(ms % 1000));
    return cJSON_AddStringToObject(o, name, buf) != NULL;
}

static int add_u64(cJSON *o, const char *name, uint64_t v)
{
    return cJSON_AddNumberToObject(o, name, (double)v) != NULL;
}

static cJSON *stats_object(const evrec_stats_t *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int ok = 1; /* every member or none: a failed allocation is never a partial object */
    ok &= add_u64(o, "events", s->queued_events);
    ok &= add_u64(o, "bytes", s->queued_bytes);
    ok &= add_u64(o, "endpoints", s->endpoints);
    ok &= add_time(o, "oldest", s->oldest_ms);
    ok &= add_u64(o, "recorded", s->recorded);
    ok &= add_u64(o, "delivered", s->delivered);
    ok &= add_u64(o, "truncated", s->truncated);
    cJSON *d = cJSON_AddObjectToObject(o, "dropped");
    ok &= add_u64(d, "evicted", s->dropped_evicted);
    ok &= add_u64(d, "expired", s->dropped_expired);
    ok &= add_u64(d, "rejected", s->dropped_rejected);
    ok &= add_u64(d, "poison", s->dropped_poison);
    ok &= add_u64(d, "refused", s->dropped_refused);
    ok &= add_u64(d, "uncommitted", s->dropped_uncommitted);
    ok &= add_u64(d, "purged", s->dropped_purged);
    ok &= add_u64(o, "requests", s->requests);
    ok &= add_u64(o, "retries", s->retries);
    ok &= add_time(o, "last_upload", s->last_upload_ms);
    ok &= add_time(o, "backoff_until", s->backoff_until_ms);
    if (s->last_error) {
        ok &= cJSON_AddStringToObject(o, "last_error", evrec_strerror(s->last_error)) != NULL;
        ok &= cJSON_AddStringToObject(o, "last_error_message", s->last_error_message) != NULL;
    } else {
        ok &= cJSON_AddNullToObject(o, "last_error") != NULL;
    }
    /* Metered links: requests held back, events waiting on the limits, bytes sent today. */
    cJSON *m = cJSON_AddObjectToObject(o, "metered");
    ok &= add_u64(m, "deferrals", s->deferrals);
    ok &= add_u64(m, "deferred_events", s->deferred_events);
    ok &= add_u64(m, "upload_bytes_today", s->upload_bytes_today);
    /* Whether a flusher runs now (its pid, since when), and how fresh the delivery state is. */
    cJSON *fl = cJSON_AddObjectToObject(o, "flusher");
    ok &= cJSON_AddBoolToObject(fl, "alive", s->flusher_alive) != NULL;
    if (s->flusher_pid > 0)
        ok &= cJSON_AddNumberToObject(fl, "pid", (double)s->flusher_pid) != NULL;
    else
        ok &= cJSON_AddNullToObject(fl, "pid") != NULL;
    ok &= add_time(fl, "since", s->flusher_since_ms);
    ok &= add_time(fl, "status_updated", s->status_updated_ms);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

char *cli_stats_json(const evrec_stats_t *s)
{
    cJSON *o = stats_object(s);
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* `evrec status` exit codes, for monitoring (the LSB init-script convention). */
#define STATUS_RUNNING 0     /* a process runs the store's flusher */
#define STATUS_STOPPED 1     /* none does, and events wait in the store */
#define STATUS_NOT_RUNNING 3 /* none does, and nothing waits (or there is no store) */
#define STATUS_UNKNOWN 4     /* the store cannot be read */

static const char *status_state(const evrec_stats_t *s, int *code)
{
    if (s->flusher_alive) {
        *code = STATUS_RUNNING;
        return "running";
    }
    *code = s->queued_events > 0 ? STATUS_STOPPED : STATUS_NOT_RUNNING;
    return s->queued_events > 0 ? "stopped with backlog" : "not running";
}

static void usage(FILE *out, const char *name)
{
    fprintf(out,
            "usage: evrec %s --store DIR\n\n"
            "Prints one JSON object: queued events and bytes, endpoints, the oldest event,\n"
            "counters (recorded, delivered, truncated, dropped by reason), the delivery\n"
            "state (requests, retries, last upload, backoff, last error) and the flusher\n"
            "(alive, pid, since, status_updated: its last heartbeat).\n%s\n",
            name,
            strcmp(name, "status") == 0
                ? "`status` adds \"state\" and exits, for monitoring: 0 a process runs the\n"
                  "store's flusher, 1 none does and events wait (stopped with backlog), 3 none\n"
                  "does and nothing waits or there is no store (not running), 4 the store\n"
                  "cannot be read, 2 bad command line.\n"
                : "");
    cli_options_help(out, CLI_FOR_READ);
}

static int run_named(int argc, char **argv, const char *name)
{
    cli_config_t c;
    cli_config_init(&c);
    cli_config_for(&c, CLI_FOR_READ, name);
    int code = CLI_EXIT_USAGE;
    if (cli_wants_help(argc, argv)) {
        usage(stdout, name);
        code = CLI_EXIT_OK;
        goto done;
    }
    if (cli_parse_options(&c, argc, argv, 1, name) != 0)
        goto done;
    c.opts.no_flusher = 1;
    c.opts.manual_flush = 0;
    int status = strcmp(name, "status") == 0;
    struct stat sb;
    if (status && c.store && *c.store && stat(c.store, &sb) != 0) {
        printf("{\"state\":\"not running\",\"events\":0}\n");
        fprintf(stderr, "evrec status: no store at %s\n", c.store);
        code = STATUS_NOT_RUNNING;
        goto done;
    }
    evrec_t *agent = NULL;
    code = cli_open_agent(&c, name, 1, &agent);
    if (code != CLI_EXIT_OK) {
        if (status && code == CLI_EXIT_FAIL)
            code = STATUS_UNKNOWN;
        goto done;
    }
    evrec_stats_t st = { .struct_size = sizeof st };
    int rc = evrec_stats(agent, &st);
    cJSON *o = rc == EVREC_OK ? stats_object(&st) : NULL;
    if (o && status && !cJSON_AddStringToObject(o, "state", status_state(&st, &code))) {
        cJSON_Delete(o);
        o = NULL;
    }
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (text) {
        printf("%s\n", text);
        cJSON_free(text);
    } else {
        fprintf(stderr, "evrec %s: %s\n", name,
                rc != EVREC_OK ? evrec_last_error(agent) : "out of memory");
        code = status ? STATUS_UNKNOWN : CLI_EXIT_FAIL;
    }
    evrec_close(agent, 0);
done:
    cli_config_free(&c);
    return code;
}

static int run_stats(int argc, char **argv)
{
    return run_named(argc, argv, "stats");
}

static int run_status(int argc, char **argv)
{
    return run_named(argc, argv, "status");
}

const cli_command_t cli_cmd_stats = { "stats", "print a store's counters as JSON", run_stats };
const cli_command_t cli_cmd_status = { "status", "queue size, last upload, last error, backoff",
                                       run_status };
