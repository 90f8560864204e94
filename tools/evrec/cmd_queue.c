/* `evrec queue stats|dump`: look inside a store without changing it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "agent.h"
#include "cli.h"
#include "cli_opts.h"
#include "evrec.h"
#include "queue.h"
#include "record.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: evrec queue stats --store DIR   the same JSON object as `evrec stats`\n"
            "       evrec queue dump --store DIR    the queued events, oldest first, one JSON\n"
            "                                       object a line: Seq, EventId, EndpointId,\n"
            "                                       SessionId, UserId (when set), Event\n");
}

static void add_part(cJSON *o, const char *name, const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, s, len);
    copy[len] = '\0';
    cJSON_AddStringToObject(o, name, copy);
    free(copy);
}

static int dump_one(void *user, uint64_t seq, const void *value, size_t len)
{
    (void)user;
    evrec_record_view_t v;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return EVREC_E_NOMEM;
    cJSON_AddNumberToObject(o, "Seq", (double)seq);
    if (evrec_record_decode(value, len, &v) != 0) {
        cJSON_AddStringToObject(o, "Error", "the record cannot be decoded");
    } else {
        add_part(o, "EventId", v.event_id, v.event_id_len);
        add_part(o, "EndpointId", v.endpoint_id, v.endpoint_id_len);
        if (v.session_id_len)
            add_part(o, "SessionId", v.session_id, v.session_id_len);
        if (v.user_id_len)
            add_part(o, "UserId", v.user_id, v.user_id_len);
        cJSON_AddStringToObject(o, "Service",
                                v.service == EVREC_SERVICE_PERSONALIZE ? "personalize" : "pinpoint");
        cJSON *ev = cJSON_ParseWithLength(v.fragment, v.fragment_len);
        if (ev)
            cJSON_AddItemToObject(o, "Event", ev);
        else
            add_part(o, "EventText", v.fragment, v.fragment_len);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return EVREC_E_NOMEM;
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}

static int run(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "stats") == 0)
        return cli_cmd_stats.run(argc - 1, argv + 1);
    if (strcmp(argv[1], "dump") != 0) {
        fprintf(stderr, "evrec queue: unknown subcommand '%s'\n", argv[1]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    cli_config_t c;
    cli_config_init(&c);
    int code = CLI_EXIT_USAGE;
    if (cli_parse_options(&c, argc - 1, argv + 1, 1, "queue dump") != 0)
        goto done;
    c.opts.no_flusher = 1;
    c.opts.manual_flush = 0;
    evrec_t *agent = NULL;
    code = cli_open_agent(&c, "queue dump", 1, &agent);
    if (code != CLI_EXIT_OK)
        goto done;
    int rc = queue_scan(agent_queue(agent), 0, dump_one, NULL);
    if (rc != EVREC_OK) {
        fprintf(stderr, "evrec queue dump: %s\n", evrec_strerror(rc));
        code = CLI_EXIT_FAIL;
    }
    evrec_close(agent, 0);
done:
    cli_config_free(&c);
    return code;
}

const cli_command_t cli_cmd_queue = { "queue", "queue stats | queue dump: inspect a store", run };
