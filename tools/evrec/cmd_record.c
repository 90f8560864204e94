/* `evrec record`: record events into a store (never uploads; the store's flusher does). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_opts.h"
#include "evrec.h"

#define MAX_FIELDS 256

typedef struct record_args {
    const char *type;
    const char *json;
    const char *events_file;
    const char *timestamp;
    const char *event_id;
    const char *user_id;    /* Personalize userId */
    const char *session_id; /* Personalize sessionId */
    const char *attrs[MAX_FIELDS];
    int n_attrs;
    const char *metrics[MAX_FIELDS];
    int n_metrics;
} record_args_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: evrec record --store DIR --type TYPE [--attr NAME=VALUE]... "
            "[--metric NAME=NUMBER]...\n"
            "                    [--timestamp ISO8601] [--event-id ID] [--endpoint-id ID]\n"
            "                    [--user-id ID] [--session-id ID]   (Personalize)\n"
            "       evrec record --store DIR --json EVENT_JSON [--attr ...] [--metric ...]\n"
            "       evrec record --store DIR --events-file FILE   (one JSON event a line; - is "
            "stdin)\n"
            "\n"
            "Records events into the store and prints each event id once it is stored. Never\n"
            "uploads: the process running the store's flusher (evrec agent) does.\n"
            "--event-type and --attribute are accepted for --type and --attr. JSON events are\n"
            "in the Pinpoint Event shape (EventType, Attributes, Metrics, Timestamp, ...) or the\n"
            "Personalize one (eventType, sentAt, ...), plus optional EventId and EndpointId.\n"
            "Exit status: 0 every event stored; 2 bad command line or a bad event (nothing of\n"
            "it is stored); 1 the store failed or refused (full under refuse_new), or\n"
            "(--events-file) some lines were not stored: each is reported with its line number\n"
            "and why, every other line is stored.\n\n");
    cli_options_help(out, CLI_FOR_RECORD);
}

/* The detail of a failed setter, else the code's name. */
static const char *why(const evrec_event_t *ev, int rc)
{
    const char *m = evrec_event_last_error(ev);
    return m && *m ? m : evrec_strerror(rc);
}

/* Over-long names and values stay on the event: evrec_record() refuses them, or truncates
 * them with --truncate-oversize. */
static int kept(int rc)
{
    return rc == EVREC_E_NAME_LENGTH || rc == EVREC_E_VALUE_LENGTH ? EVREC_OK : rc;
}

/* The event from the command line; on failure a message in msg and the code. */
static int build_event(const record_args_t *r, evrec_event_t **out, char *msg, size_t len)
{
    evrec_event_t *ev = NULL;
    char detail[512] = "";
    int rc = r->json ? evrec_event_from_json_detail(&ev, r->json, 0, detail,
                                                        sizeof detail)
                     : evrec_event_new(&ev, r->type);
    if (rc != EVREC_OK) {
        snprintf(msg, len, "%s: %s", r->json ? "--json" : "--type",
                 detail[0] ? detail : why(ev, rc));
        evrec_event_free(ev);
        return rc;
    }
    for (int i = 0; i < r->n_attrs && rc == EVREC_OK; i++) {
        char name[512];
        const char *value;
        if (cli_split_pair(r->attrs[i], name, sizeof name, &value) != 0 || name[0] == '\0') {
            snprintf(msg, len, "--attr '%s': expected NAME=VALUE with a NAME", r->attrs[i]);
            rc = EVREC_E_INVALID;
        } else if ((rc = kept(evrec_event_set_attribute(ev, name, value))) != EVREC_OK) {
            snprintf(msg, len, "--attr '%s': %s", name, why(ev, rc));
        }
    }
    for (int i = 0; i < r->n_metrics && rc == EVREC_OK; i++) {
        char name[512];
        const char *value;
        char *end = NULL;
        if (cli_split_pair(r->metrics[i], name, sizeof name, &value) != 0 || name[0] == '\0') {
            snprintf(msg, len, "--metric '%s': expected NAME=NUMBER with a NAME", r->metrics[i]);
            rc = EVREC_E_INVALID;
            break;
        }
        errno = 0;
        double v = strtod(value, &end);
        if (*value == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v)) {
            snprintf(msg, len, "--metric '%s': '%s' is not a finite number", name, value);
            rc = EVREC_E_METRIC_VALUE;
        } else if ((rc = kept(evrec_event_set_metric(ev, name, v))) != EVREC_OK) {
            snprintf(msg, len, "--metric '%s': %s", name, why(ev, rc));
        }
    }
    if (rc == EVREC_OK && r->timestamp &&
        (rc = evrec_event_set_timestamp_iso(ev, r->timestamp)) != EVREC_OK)
        snprintf(msg, len, "--timestamp '%s': %s", r->timestamp, why(ev, rc));
    if (rc == EVREC_OK && r->event_id && (rc = evrec_event_set_id(ev, r->event_id)) != EVREC_OK)
        snprintf(msg, len, "--event-id '%s': %s", r->event_id, why(ev, rc));
    if (rc == EVREC_OK && r->user_id &&
        (rc = evrec_event_set_user_id(ev, r->user_id)) != EVREC_OK)
        snprintf(msg, len, "--user-id '%s': %s", r->user_id, why(ev, rc));
    if (rc == EVREC_OK && r->session_id &&
        (rc = evrec_event_set_session_id(ev, r->session_id)) != EVREC_OK)
        snprintf(msg, len, "--session-id '%s': %s", r->session_id, why(ev, rc));
    if (rc != EVREC_OK) {
        evrec_event_free(ev);
        return rc;
    }
    *out = ev;
    return EVREC_OK;
}

/*
 * A printed id is a promise that the event is stored. In batched durability a record is only
 * staged until its batch commits, so ids wait here and are printed once the store has
 * committed them: when its own commit (every commit_max_events records, or commit_interval_ms)
 * leaves nothing staged; else by evrec_sync() when this list is full, and at the end. A commit
 * batch costs one commit, not an fsync.
 */
typedef struct pending {
    int batched;
    uint32_t max;
    char (*ids)[EVREC_ID_MAX];
    long *lines;      /* the input line of each id (--events-file) */
    const char *name; /* the input's name */
    uint32_t n;
    long lost;        /* events staged but not committed */
} pending_t;

static int pending_flush(pending_t *p, evrec_t *agent, int committed)
{
    if (p->n == 0)
        return EVREC_OK;
    int rc = committed ? EVREC_OK : evrec_sync(agent);
    if (rc != EVREC_OK) {
        fprintf(stderr, "evrec record: %s\n", evrec_last_error(agent));
        for (uint32_t i = 0; p->lines && i < p->n; i++)
            fprintf(stderr, "evrec record: %s:%ld: not stored: its batch did not commit\n",
                    p->name, p->lines[i]);
        p->lost += p->n;
        p->n = 0;
        return rc;
    }
    for (uint32_t i = 0; i < p->n; i++)
        printf("%s\n", p->ids[i]);
    fflush(stdout);
    p->n = 0;
    return EVREC_OK;
}

/* The event is recorded: print its id now, or once its batch is committed. */
static int acknowledge(pending_t *p, evrec_t *agent, const evrec_event_t *ev, const char *name,
                       long lineno)
{
    if (!p->batched || p->ids == NULL) {
        if (p->batched && evrec_sync(agent) != EVREC_OK) {
            fprintf(stderr, "evrec record: %s\n", evrec_last_error(agent));
            if (name)
                fprintf(stderr, "evrec record: %s:%ld: not stored: its batch did not commit\n",
                        name, lineno);
            p->lost++;
            return EVREC_E_IO;
        }
        printf("%s\n", evrec_event_id(ev));
        fflush(stdout);
        return EVREC_OK;
    }
    p->name = name;
    p->lines[p->n] = lineno;
    snprintf(p->ids[p->n++], EVREC_ID_MAX, "%s", evrec_event_id(ev));
    uint64_t staged = 1;
    if (evrec_staged(agent, &staged) == EVREC_OK && staged == 0)
        return pending_flush(p, agent, 1);
    return p->n >= p->max ? pending_flush(p, agent, 0) : EVREC_OK;
}

static void pending_init(pending_t *p, const cli_config_t *c, evrec_t *agent, int many)
{
    memset(p, 0, sizeof *p);
    evrec_durability_t mode = c->opts.durability; /* the store's, which the agent follows */
    (void)evrec_store_settings(agent, &mode, NULL);
    p->batched = mode == EVREC_DURABLE_BATCHED;
    p->max = c->opts.commit_max_events ? c->opts.commit_max_events : 100;
    if (p->max > 10000)
        p->max = 10000;
    if (p->batched && many) {
        /* NULL: sync after each record instead */
        p->ids = calloc(p->max, sizeof *p->ids);
        p->lines = calloc(p->max, sizeof *p->lines);
        if (!p->ids || !p->lines) {
            free(p->ids);
            free(p->lines);
            p->ids = NULL;
            p->lines = NULL;
        }
    }
}

static int exit_for(int rc)
{
    return cli_is_input_error(rc) ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
}

static int record_one(cli_config_t *c, const record_args_t *r)
{
    char msg[1024] = "";
    evrec_event_t *ev = NULL;
    int rc = build_event(r, &ev, msg, sizeof msg);
    if (rc != EVREC_OK) {
        fprintf(stderr, "evrec record: %s\n", msg);
        return CLI_EXIT_USAGE;
    }
    evrec_t *agent = NULL;
    int code = cli_open_agent(c, "record", 0, &agent);
    if (code != CLI_EXIT_OK) {
        evrec_event_free(ev);
        return code;
    }
    pending_t p;
    pending_init(&p, c, agent, 0);
    rc = evrec_record(agent, ev);
    if (rc == EVREC_OK) {
        if (acknowledge(&p, agent, ev, NULL, 0) != EVREC_OK)
            code = CLI_EXIT_FAIL;
    } else {
        fprintf(stderr, "evrec record: %s\n", evrec_last_error(agent));
        code = exit_for(rc);
    }
    evrec_event_free(ev);
    int crc = evrec_close(agent, 0);
    if (crc != EVREC_OK && code == CLI_EXIT_OK) {
        fprintf(stderr, "evrec record: closing the store: %s\n", evrec_strerror(crc));
        code = CLI_EXIT_FAIL;
    }
    return code;
}

static int blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    return 1;
}

/* One line of --events-file: 0 stored (or staged: acknowledged once committed), 1 not stored
 * (reported with its line number); *code becomes CLI_EXIT_FAIL when the store failed. */
static int record_line(evrec_t *agent, pending_t *p, const char *name, long lineno,
                       const char *line, size_t len, int *code)
{
    evrec_event_t *ev = NULL;
    char detail[512] = "";
    int rc = evrec_event_from_json_detail(&ev, line, len, detail, sizeof detail);
    if (rc != EVREC_OK) {
        fprintf(stderr, "evrec record: %s:%ld: %s\n", name, lineno,
                detail[0] ? detail : why(ev, rc));
        evrec_event_free(ev);
        return 1;
    }
    int not_stored = 0;
    rc = evrec_record(agent, ev);
    if (rc == EVREC_OK) {
        if (acknowledge(p, agent, ev, name, lineno) != EVREC_OK)
            *code = CLI_EXIT_FAIL; /* the lines of the lost batch are reported */
    } else {
        /* Every line not stored is reported, whatever the reason: a full store under
         * refuse_new may take the next line once the agent has delivered. */
        fprintf(stderr, "evrec record: %s:%ld: %s\n", name, lineno, evrec_last_error(agent));
        if (!cli_is_input_error(rc))
            *code = CLI_EXIT_FAIL;
        not_stored = 1;
    }
    evrec_event_free(ev);
    return not_stored;
}

static int record_file(cli_config_t *c, const char *path)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!in) {
        fprintf(stderr, "evrec record: %s: %s\n", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    evrec_t *agent = NULL;
    int code = cli_open_agent(c, "record", 0, &agent);
    if (code != CLI_EXIT_OK) {
        if (in != stdin)
            fclose(in);
        return code;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0, not_stored = 0, events = 0;
    pending_t p;
    pending_init(&p, c, agent, 1);
    const char *name = in == stdin ? "stdin" : path;
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (blank(line))
            continue;
        events++;
        not_stored += record_line(agent, &p, name, lineno, line, (size_t)n, &code);
    }
    free(line);
    if (in != stdin)
        fclose(in);
    int bad = not_stored > 0; /* a line was refused (a lost batch sets code itself) */
    if (pending_flush(&p, agent, 0) != EVREC_OK)
        code = CLI_EXIT_FAIL;
    not_stored += p.lost;
    free(p.ids);
    free(p.lines);
    if (evrec_close(agent, 0) != EVREC_OK)
        code = CLI_EXIT_FAIL;
    if (not_stored)
        fprintf(stderr, "evrec record: %s: %ld of %ld events not stored (see the lines above)\n",
                name, not_stored, events);
    return code != CLI_EXIT_OK ? code : bad ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int parse(cli_config_t *c, record_args_t *r, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        const char *a = argv[i];
#define FLAG(name) ((v = cli_flag_value(argc, argv, &i, name, &missing)) != NULL || missing)
        if (FLAG("--type") || FLAG("--event-type")) {
            r->type = v;
        } else if (FLAG("--attr") || FLAG("--attribute")) {
            if (v && r->n_attrs < MAX_FIELDS)
                r->attrs[r->n_attrs++] = v;
        } else if (FLAG("--metric")) {
            if (v && r->n_metrics < MAX_FIELDS)
                r->metrics[r->n_metrics++] = v;
        } else if (FLAG("--timestamp")) {
            r->timestamp = v;
        } else if (FLAG("--event-id")) {
            r->event_id = v;
        } else if (FLAG("--user-id")) {
            r->user_id = v;
        } else if (FLAG("--session-id")) {
            r->session_id = v;
        } else if (FLAG("--json")) {
            r->json = v;
        } else if (FLAG("--events-file")) {
            r->events_file = v;
        } else {
            int got = cli_option_flag(c, argc, argv, &i);
            if (got < 0) {
                fprintf(stderr, "evrec record: %s\n", c->err);
                return -1;
            }
            if (got == 0) {
                fprintf(stderr, "evrec record: unknown option '%s' (see --help)\n", a);
                return -1;
            }
            continue;
        }
#undef FLAG
        if (missing) {
            fprintf(stderr, "evrec record: %s needs a value\n", a);
            return -1;
        }
    }
    if (r->n_attrs >= MAX_FIELDS || r->n_metrics >= MAX_FIELDS) {
        fprintf(stderr, "evrec record: too many --attr or --metric\n");
        return -1;
    }
    int modes = (r->type || r->json ? 1 : 0) + (r->events_file ? 1 : 0);
    if (modes != 1 || (r->type && r->json)) {
        fprintf(stderr, "evrec record: give one of --type, --json or --events-file "
                        "(see --help)\n");
        return -1;
    }
    if (r->events_file && (r->n_attrs || r->n_metrics || r->timestamp || r->event_id ||
                           r->user_id || r->session_id)) {
        fprintf(stderr, "evrec record: --attr, --metric, --timestamp, --event-id, --user-id and "
                        "--session-id do not go with --events-file (put them in each line)\n");
        return -1;
    }
    return 0;
}

static int run(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    cli_config_t c;
    cli_config_init(&c);
    cli_config_for(&c, CLI_FOR_RECORD, "record");
    record_args_t r;
    memset(&r, 0, sizeof r);
    int code = CLI_EXIT_USAGE;
    if (cli_config_preload(&c, argc, argv) != 0)
        fprintf(stderr, "evrec record: %s\n", c.err);
    else if (parse(&c, &r, argc, argv) == 0) {
        c.opts.no_flusher = 1; /* record only, whatever the configuration says */
        c.opts.manual_flush = 0;
        code = r.events_file ? record_file(&c, r.events_file) : record_one(&c, &r);
    }
    cli_config_free(&c);
    return code;
}

const cli_command_t cli_cmd_record = { "record", "record events into a store (no upload)", run };
