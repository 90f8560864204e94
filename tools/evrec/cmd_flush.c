/* `evrec flush`: upload what a store holds now, then exit. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_opts.h"
#include "evrec.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: evrec flush --store DIR [--service pinpoint|personalize-events]\n"
            "                   (--application-id ID | --tracking-id ID) [--region R]\n"
            "                   [--endpoint-url URL] [--timeout SECONDS]\n"
            "       evrec flush --store DIR --service kinesis\n"
            "                   (--stream-name NAME | --stream-arn ARN) [--region R]\n"
            "                   [--endpoint-url URL] [--timeout SECONDS]\n"
            "       evrec flush --store DIR --service firehose --delivery-stream-name NAME\n"
            "                   [--region R] [--endpoint-url URL] [--timeout SECONDS]\n\n"
            "Uploads the queued events and waits until the store is empty or SECONDS\n"
            "(default 30; a fraction is fine) passed, then prints the store's stats as JSON.\n"
            "Exit status 0 only when the store is empty (everything delivered); 1 when events\n"
            "are left (they stay queued; stderr says how many and for which service, e.g.\n"
            "Personalize events in a store flushed with --service pinpoint) or another process\n"
            "(evrec agent) is the store's flusher; 2 for bad configuration or flags.\n\n");
    cli_options_help(out, CLI_FOR_FLUSH);
}

/* A line on stderr with the server's text in it: control characters escaped (\xHH). */
static void print_escaped(const char *before, const char *text, const char *after)
{
    fputs(before, stderr);
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(stderr, "\\x%02x", *p);
        else
            fputc(*p, stderr);
    }
    fprintf(stderr, "%s\n", after);
}

/* The services as `evrec flush --service` names them, in evrec_service_t order. */
static const char *const service_names[] = { "pinpoint", "personalize-events", "kinesis",
                                             "firehose" };
#define N_SERVICES (sizeof service_names / sizeof service_names[0])

/* The library's message says how many events wait and for which service; add the command
 * line that delivers them. */
static void hint_other_services(evrec_t *agent, const cli_config_t *c)
{
    static const int shapes[] = { EVREC_SERVICE_PINPOINT, EVREC_SERVICE_PERSONALIZE };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        if (evrec_service_carries(c->opts.service, shapes[k]))
            continue;
        evrec_filter_t f;
        evrec_filter_init(&f);
        f.shape = shapes[k];
        uint64_t n = 0;
        if (evrec_count(agent, &f, &n) != EVREC_OK || n == 0)
            continue;
        char names[160] = "";
        for (size_t id = 0; id < N_SERVICES; id++) {
            if (evrec_service_carries((evrec_service_t)id, shapes[k])) {
                strcat(names, names[0] ? "|" : "");
                strcat(names, service_names[id]);
            }
        }
        fprintf(stderr, "evrec flush: %llu events wait for another service: deliver them with "
                "evrec flush --service %s\n", (unsigned long long)n, names);
    }
}

/* --timeout and the store's options: 0 to go on, -1 after --help, or CLI_EXIT_USAGE. */
static int parse_args(cli_config_t *c, uint32_t *timeout_ms, int argc, char **argv)
{
    if (cli_config_preload(c, argc, argv) != 0) {
        fprintf(stderr, "evrec flush: %s\n", c->err);
        return CLI_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return -1;
        }
        const char *t = cli_flag_value(argc, argv, &i, "--timeout", &missing);
        if (t || missing) {
            char *end = NULL;
            errno = 0;
            double v = t ? strtod(t, &end) : -1;
            if (!t || *t == '\0' || *end != '\0' || errno || !(v >= 0 && v <= 86400)) {
                fprintf(stderr, "evrec flush: --timeout needs seconds (0..86400)\n");
                return CLI_EXIT_USAGE;
            }
            *timeout_ms = (uint32_t)(v * 1000.0 + 0.5);
            continue;
        }
        int got = cli_option_flag(c, argc, argv, &i);
        if (got <= 0) {
            fprintf(stderr, "evrec flush: %s\n", got < 0 ? c->err : "unknown option (see --help)");
            return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

/* After the flush: what is left (and for whom), the last delivery error after a timeout, and
 * the stats as JSON. Returns `code`, or CLI_EXIT_FAIL when events are left. */
static int report(evrec_t *agent, const cli_config_t *c, int rc, int code)
{
    evrec_stats_t st = { .struct_size = sizeof st };
    if (evrec_stats(agent, &st) != EVREC_OK)
        return code;
    if (st.queued_events > 0) {
        code = CLI_EXIT_FAIL; /* 0 means the store is empty */
        hint_other_services(agent, c);
    }
    if (rc == EVREC_E_TIMEOUT && st.last_error) {
        fprintf(stderr, "evrec flush: last delivery error: %s: ", evrec_strerror(st.last_error));
        print_escaped("", st.last_error_message, "");
    }
    char *text = cli_stats_json(&st);
    if (text) {
        printf("%s\n", text);
        cJSON_free(text);
    } else {
        fprintf(stderr, "evrec flush: out of memory printing the counters\n");
        code = CLI_EXIT_FAIL;
    }
    return code;
}

static int run(int argc, char **argv)
{
    cli_config_t c;
    cli_config_init(&c);
    cli_config_for(&c, CLI_FOR_FLUSH, "flush");
    uint32_t timeout_ms = 30000;
    int code = parse_args(&c, &timeout_ms, argc, argv);
    if (code == 0) {
        c.opts.no_flusher = 0;
        c.opts.manual_flush = 0;
        evrec_t *agent = NULL;
        code = cli_open_agent(&c, "flush", 1, &agent);
        if (code == CLI_EXIT_OK) {
            int rc = evrec_flush(agent, timeout_ms);
            if (rc != EVREC_OK) {
                print_escaped("evrec flush: ", evrec_last_error(agent), "");
                code = CLI_EXIT_FAIL;
            }
            code = report(agent, &c, rc, code);
            evrec_close(agent, 0);
        }
    }
    cli_config_free(&c);
    return code < 0 ? CLI_EXIT_OK : code;
}

const cli_command_t cli_cmd_flush = { "flush", "upload a store's events now and exit", run };
