/* `evrec queue stats|dump|export|purge`: look inside a store, export it, or purge from it. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_opts.h"
#include "evrec.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: evrec queue stats --store DIR   the same JSON object as `evrec stats`\n"
            "       evrec queue export --store DIR [FILTER]\n"
            "                       the queued events, oldest first, one JSON object a line:\n"
            "                       Seq, CreatedMs, EventId, EndpointId, SessionId and UserId\n"
            "                       (when set), Service (the event's shape), Event\n"
            "       evrec queue dump --store DIR    the same as export with no filter\n"
            "       evrec queue purge --store DIR (--all | FILTER) --yes\n"
            "                       delete the events that match from the store (counted in\n"
            "                       stats as dropped.purged); prints {\"purged\": N}\n"
            "FILTER (every one given must hold):\n"
            "  --older-than AGE     recorded more than AGE ago: seconds, or a number with\n"
            "                       s, m, h or d (e.g. 7d)\n"
            "  --endpoint-id ID     of this endpoint\n"
            "  --service S          recorded for this service's shape: pinpoint (also kinesis,\n"
            "                       firehose) or personalize (personalize-events)\n"
            "Exit status 0, 1 if the store failed, 2 for a bad command line (purge without\n"
            "--yes, or without --all or a filter).\n");
}

typedef struct queue_args {
    evrec_filter_t filter;
    int yes;
} queue_args_t;

/* Unix ms now, the clock the store stamps its events with. */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "90", "90s", "15m", "12h", "7d" → ms; -1 if bad. */
static int64_t parse_age_ms(const char *s)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v >= 0))
        return -1;
    double unit = 1000.0;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        unit = 60e3, end++;
    else if (*end == 'h')
        unit = 3600e3, end++;
    else if (*end == 'd')
        unit = 86400e3, end++;
    if (*end != '\0' || v * unit > 100.0 * 365 * 86400e3)
        return -1;
    return (int64_t)(v * unit);
}

static int parse_shape(const char *s)
{
    if (strcmp(s, "pinpoint") == 0 || strcmp(s, "kinesis") == 0 || strcmp(s, "firehose") == 0)
        return EVREC_SERVICE_PINPOINT;
    if (strcmp(s, "personalize") == 0 || strcmp(s, "personalize-events") == 0)
        return EVREC_SERVICE_PERSONALIZE;
    return -2;
}

/* The subcommand's own flags, then the store's options. 0, or an exit code. */
static int parse_args(cli_config_t *c, queue_args_t *a, int argc, char **argv, const char *cmd)
{
    evrec_filter_init(&a->filter);
    a->yes = 0;
    if (cli_config_preload(c, argc, argv) != 0) {
        fprintf(stderr, "evrec %s: %s\n", cmd, c->err);
        return CLI_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return -1;
        } else if (strcmp(argv[i], "--yes") == 0) {
            a->yes = 1;
        } else if (strcmp(argv[i], "--all") == 0) {
            a->filter.all = 1;
        } else if ((v = cli_flag_value(argc, argv, &i, "--older-than", &missing)) || missing) {
            int64_t age = v ? parse_age_ms(v) : -1;
            if (age < 0) {
                fprintf(stderr, "evrec %s: --older-than needs an age: seconds, or a number "
                                "with s, m, h or d\n", cmd);
                return CLI_EXIT_USAGE;
            }
            a->filter.created_before_ms = wall_ms() - age;
            if (a->filter.created_before_ms == 0)
                a->filter.created_before_ms = 1;
        } else if ((v = cli_flag_value(argc, argv, &i, "--endpoint-id", &missing)) || missing) {
            if (!v || !*v) {
                fprintf(stderr, "evrec %s: --endpoint-id needs an id\n", cmd);
                return CLI_EXIT_USAGE;
            }
            a->filter.endpoint_id = v;
        } else if ((v = cli_flag_value(argc, argv, &i, "--service", &missing)) || missing) {
            a->filter.shape = v ? parse_shape(v) : -2;
            if (a->filter.shape < -1) {
                fprintf(stderr, "evrec %s: --service takes pinpoint, personalize, kinesis or "
                                "firehose\n", cmd);
                return CLI_EXIT_USAGE;
            }
        } else {
            int got = cli_option_flag(c, argc, argv, &i);
            if (got <= 0) {
                fprintf(stderr, "evrec %s: %s\n", cmd,
                        got < 0 ? c->err : "unknown option (see evrec queue --help)");
                return CLI_EXIT_USAGE;
            }
        }
    }
    return 0;
}

static int print_line(void *user, const char *json, size_t len)
{
    (void)user;
    if (fwrite(json, 1, len, stdout) != len || putchar('\n') == EOF)
        return EVREC_E_IO;
    return 0;
}

static int export_cmd(int argc, char **argv, const char *cmd)
{
    cli_config_t c;
    cli_config_init(&c);
    cli_config_for(&c, CLI_FOR_READ, cmd);
    queue_args_t a;
    int code = parse_args(&c, &a, argc, argv, cmd);
    if (code)
        goto done;
    if (a.filter.all || a.yes) {
        fprintf(stderr, "evrec %s: --all and --yes are for purge\n", cmd);
        code = CLI_EXIT_USAGE;
        goto done;
    }
    c.opts.no_flusher = 1;
    c.opts.manual_flush = 0;
    evrec_t *agent = NULL;
    code = cli_open_agent(&c, cmd, 1, &agent);
    if (code != CLI_EXIT_OK)
        goto done;
    int rc = evrec_export(agent, &a.filter, print_line, NULL);
    if (fflush(stdout) != 0 && rc == EVREC_OK)
        rc = EVREC_E_IO;
    if (rc != EVREC_OK) {
        fprintf(stderr, "evrec %s: %s\n", cmd,
                rc == EVREC_E_IO ? "cannot write the output" : evrec_last_error(agent));
        code = CLI_EXIT_FAIL;
    }
    evrec_close(agent, 0);
done:
    cli_config_free(&c);
    return code < 0 ? CLI_EXIT_OK : code;
}

static int purge_cmd(int argc, char **argv)
{
    cli_config_t c;
    cli_config_init(&c);
    cli_config_for(&c, CLI_FOR_READ, "queue purge");
    queue_args_t a;
    int code = parse_args(&c, &a, argc, argv, "queue purge");
    if (code)
        goto done;
    code = CLI_EXIT_USAGE;
    int criteria = a.filter.created_before_ms != 0 || a.filter.endpoint_id != NULL ||
                   a.filter.shape >= 0;
    if (!criteria && !a.filter.all) {
        fprintf(stderr, "evrec queue purge: say what to purge: --all, or --older-than, "
                        "--endpoint-id, --service\n");
        goto done;
    }
    if (criteria && a.filter.all) {
        fprintf(stderr, "evrec queue purge: --all purges everything: give it alone\n");
        goto done;
    }
    if (!a.yes) {
        fprintf(stderr, "evrec queue purge: deleting queued events cannot be undone: add --yes "
                        "(see what would go with `evrec queue export` and the same filter)\n");
        goto done;
    }
    c.opts.no_flusher = 1;
    c.opts.manual_flush = 0;
    evrec_t *agent = NULL;
    code = cli_open_agent(&c, "queue purge", 1, &agent);
    if (code != CLI_EXIT_OK)
        goto done;
    uint64_t n = 0;
    int rc = evrec_purge(agent, &a.filter, &n);
    if (rc != EVREC_OK) {
        fprintf(stderr, "evrec queue purge: %s (%llu purged before)\n", evrec_last_error(agent),
                (unsigned long long)n);
        code = CLI_EXIT_FAIL;
    }
    printf("{\"purged\":%llu}\n", (unsigned long long)n);
    evrec_close(agent, 0);
done:
    cli_config_free(&c);
    return code < 0 ? CLI_EXIT_OK : code;
}

static int run(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "stats") == 0)
        return cli_cmd_stats.run(argc - 1, argv + 1);
    if (strcmp(argv[1], "dump") == 0)
        return export_cmd(argc - 1, argv + 1, "queue dump");
    if (strcmp(argv[1], "export") == 0)
        return export_cmd(argc - 1, argv + 1, "queue export");
    if (strcmp(argv[1], "purge") == 0)
        return purge_cmd(argc - 1, argv + 1);
    fprintf(stderr, "evrec queue: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}

const cli_command_t cli_cmd_queue = { "queue",
                                      "queue stats | export | dump | purge: inspect, export or "
                                      "purge a store",
                                      run };
