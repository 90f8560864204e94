/* `evrec flush`: upload what a store holds now, then exit. */
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
            "                   [--endpoint-url URL] [--timeout SECONDS]\n\n"
            "Uploads the queued events and waits until the store is empty or SECONDS\n"
            "(default 30; a fraction is fine) passed, then prints the store's stats as JSON.\n"
            "Exit status 0 when\n"
            "everything was delivered, 1 when events are left (they stay queued) or another\n"
            "process (evrec agent) is the store's flusher, 2 for bad configuration.\n\n");
    cli_options_help(out);
}

static int run(int argc, char **argv)
{
    cli_config_t c;
    cli_config_init(&c);
    int code = CLI_EXIT_USAGE;
    uint32_t timeout_ms = 30000;
    if (cli_config_preload(&c, argc, argv) != 0) {
        fprintf(stderr, "evrec flush: %s\n", c.err);
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            code = CLI_EXIT_OK;
            goto done;
        }
        const char *t = cli_flag_value(argc, argv, &i, "--timeout", &missing);
        if (t || missing) {
            char *end = NULL;
            errno = 0;
            double v = t ? strtod(t, &end) : -1;
            if (!t || *t == '\0' || *end != '\0' || errno || !(v >= 0 && v <= 86400)) {
                fprintf(stderr, "evrec flush: --timeout needs seconds (0..86400)\n");
                goto done;
            }
            timeout_ms = (uint32_t)(v * 1000.0 + 0.5);
            continue;
        }
        int got = cli_option_flag(&c, argc, argv, &i);
        if (got <= 0) {
            fprintf(stderr, "evrec flush: %s\n", got < 0 ? c.err : "unknown option (see --help)");
            goto done;
        }
    }
    c.opts.no_flusher = 0;
    c.opts.manual_flush = 0;
    evrec_t *agent = NULL;
    code = cli_open_agent(&c, "flush", 1, &agent);
    if (code != CLI_EXIT_OK)
        goto done;
    int rc = evrec_flush(agent, timeout_ms);
    if (rc != EVREC_OK) {
        fprintf(stderr, "evrec flush: %s\n", evrec_last_error(agent));
        code = CLI_EXIT_FAIL;
    }
    evrec_stats_t st;
    if (evrec_stats(agent, &st) == EVREC_OK) {
        if (rc == EVREC_E_TIMEOUT && st.last_error)
            fprintf(stderr, "evrec flush: last delivery error: %s: %s\n",
                    evrec_strerror(st.last_error), st.last_error_message);
        char *text = cli_stats_json(&st);
        if (text) {
            printf("%s\n", text);
            cJSON_free(text);
        }
    }
    evrec_close(agent, 0);
done:
    cli_config_free(&c);
    return code;
}

const cli_command_t cli_cmd_flush = { "flush", "upload a store's events now and exit", run };
