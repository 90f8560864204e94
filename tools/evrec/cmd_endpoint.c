/* `evrec endpoint`: read and change an endpoint profile (Pinpoint PublicEndpoint) in a store. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_opts.h"
#include "evrec.h"

#define MAX_VALUES 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: evrec endpoint --store DIR [--endpoint-id ID] [change]... [--get] [--id]\n"
            "changes, applied in order:\n"
            "  --set FIELD=VALUE        a string member: Address, ChannelType, EffectiveDate,\n"
            "                           EndpointStatus, OptOut, RequestId, Demographic.*,\n"
            "                           Location.City|Country|PostalCode|Region, User.UserId\n"
            "  --unset FIELD            remove a string member\n"
            "  --location LAT,LON       Location.Latitude and Location.Longitude\n"
            "  --attr NAME=V1,V2,...    an endpoint attribute (NAME= removes it)\n"
            "  --user-attr NAME=V1,...  a User.UserAttributes entry\n"
            "  --metric NAME=NUMBER     an endpoint metric\n"
            "  --json PUBLIC_ENDPOINT   replace the whole profile\n"
            "--get prints the profile as JSON (the default when nothing is changed); --id\n"
            "prints the endpoint id. Exit status 2 for a bad change (nothing of it is stored).\n\n");
    cli_options_help(out, CLI_FOR_ENDPOINT);
}

static int number(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    *out = strtod(s, &end);
    return *s != '\0' && *end == '\0' && errno != ERANGE && isfinite(*out) ? 0 : -1;
}

/* NAME=V1,V2 into name and a list of values (in `buf`, split in place). */
static int split_list(const char *arg, char *buf, size_t len, const char **name,
                      const char **values, size_t *n)
{
    if (strlen(arg) >= len || !strchr(arg, '='))
        return -1;
    strcpy(buf, arg);
    char *eq = strchr(buf, '=');
    *eq = '\0';
    *name = buf;
    *n = 0;
    char *p = eq + 1;
    if (*p == '\0')
        return 0;
    for (;;) {
        if (*n >= MAX_VALUES)
            return -1;
        values[(*n)++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return 0;
}

/* One change; returns an evrec code, with a line on stderr for a failure. */
static int apply(evrec_t *a, const char *what, const char *v)
{
    int rc = EVREC_OK;
    char buf[8192];
    char name[128];
    const char *value;
    if (strcmp(what, "--set") == 0) {
        if (cli_split_pair(v, name, sizeof name, &value) != 0) {
            fprintf(stderr, "evrec endpoint: --set '%s': expected FIELD=VALUE\n", v);
            return EVREC_E_INVALID;
        }
        rc = evrec_endpoint_set(a, NULL, name, value);
    } else if (strcmp(what, "--unset") == 0) {
        rc = evrec_endpoint_set(a, NULL, v, NULL);
    } else if (strcmp(what, "--location") == 0) {
        const char *comma = strchr(v, ',');
        double lat, lon;
        if (!comma || (size_t)(comma - v) >= 64) {
            fprintf(stderr, "evrec endpoint: --location '%s': expected LAT,LON\n", v);
            return EVREC_E_INVALID;
        }
        char first[64];
        memcpy(first, v, (size_t)(comma - v));
        first[comma - v] = '\0';
        if (number(first, &lat) || number(comma + 1, &lon)) {
            fprintf(stderr, "evrec endpoint: --location '%s': expected two numbers\n", v);
            return EVREC_E_INVALID;
        }
        rc = evrec_endpoint_set_location(a, NULL, lat, lon);
    } else if (strcmp(what, "--attr") == 0 || strcmp(what, "--user-attr") == 0) {
        const char *list_name, *values[MAX_VALUES];
        size_t n;
        if (split_list(v, buf, sizeof buf, &list_name, values, &n) != 0) {
            fprintf(stderr, "evrec endpoint: %s '%s': expected NAME=V1,V2,... (at most %d)\n",
                    what, v, MAX_VALUES);
            return EVREC_E_INVALID;
        }
        rc = what[2] == 'a' ? evrec_endpoint_set_attribute(a, NULL, list_name, values, n)
                            : evrec_endpoint_set_user_attribute(a, NULL, list_name, values, n);
    } else if (strcmp(what, "--metric") == 0) {
        double x;
        if (cli_split_pair(v, name, sizeof name, &value) != 0 || number(value, &x)) {
            fprintf(stderr, "evrec endpoint: --metric '%s': expected NAME=NUMBER\n", v);
            return EVREC_E_INVALID;
        }
        rc = evrec_endpoint_set_metric(a, NULL, name, x);
    } else {
        rc = evrec_endpoint_set_json(a, NULL, v);
    }
    if (rc != EVREC_OK)
        fprintf(stderr, "evrec endpoint: %s '%s': %s\n", what, v, evrec_last_error(a));
    return rc;
}

static const char *const change_flags[] = { "--set",    "--unset",  "--location", "--attr",
                                            "--user-attr", "--metric", "--json" };
#define N_CHANGE (sizeof change_flags / sizeof change_flags[0])

/* The command line: the changes in order, --get, --id and the store's options. */
typedef struct endpoint_args {
    const char *what[256], *val[256]; /* applied after the store is open, in command-line order */
    int n, get, show_id;
} endpoint_args_t;

/* A change flag at argv[*i]: 1 taken, 0 not one, -1 after the error. */
static int take_change(endpoint_args_t *a, int argc, char **argv, int *i)
{
    for (size_t k = 0; k < N_CHANGE; k++) {
        int missing = 0;
        const char *v = cli_flag_value(argc, argv, i, change_flags[k], &missing);
        if (missing) {
            fprintf(stderr, "evrec endpoint: %s needs a value\n", change_flags[k]);
            return -1;
        }
        if (!v)
            continue;
        if (a->n == 256) {
            fprintf(stderr, "evrec endpoint: too many changes\n");
            return -1;
        }
        a->what[a->n] = change_flags[k];
        a->val[a->n++] = v;
        return 1;
    }
    return 0;
}

/* 0 to go on, -1 after --help, or the exit code of a bad command line. */
static int parse_args(cli_config_t *c, endpoint_args_t *a, int argc, char **argv)
{
    if (cli_config_preload(c, argc, argv) != 0) {
        fprintf(stderr, "evrec endpoint: %s\n", c->err);
        return CLI_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return -1;
        }
        if (strcmp(argv[i], "--get") == 0) {
            a->get = 1;
            continue;
        }
        if (strcmp(argv[i], "--id") == 0) {
            a->show_id = 1;
            continue;
        }
        int r = take_change(a, argc, argv, &i);
        if (r < 0)
            return CLI_EXIT_USAGE;
        if (r > 0)
            continue;
        int got = cli_option_flag(c, argc, argv, &i);
        if (got <= 0) {
            fprintf(stderr, "evrec endpoint: %s\n",
                    got < 0 ? c->err : "unknown option (see --help)");
            return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

/* The changes, then --id and the profile (also when nothing else was asked). */
static int apply_all(evrec_t *agent, const endpoint_args_t *a)
{
    int code = CLI_EXIT_OK;
    for (int k = 0; k < a->n && code == CLI_EXIT_OK; k++) {
        int rc = apply(agent, a->what[k], a->val[k]);
        if (rc != EVREC_OK)
            code = cli_is_input_error(rc) ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    if (code == CLI_EXIT_OK && a->show_id)
        printf("%s\n", evrec_endpoint_id(agent));
    if (code == CLI_EXIT_OK && (a->get || (a->n == 0 && !a->show_id))) {
        char *json = NULL;
        if (evrec_endpoint_get_json(agent, NULL, &json) == EVREC_OK) {
            printf("%s\n", json);
            evrec_free(json);
        } else {
            fprintf(stderr, "evrec endpoint: %s\n", evrec_last_error(agent));
            code = CLI_EXIT_FAIL;
        }
    }
    return code;
}

static int run(int argc, char **argv)
{
    cli_config_t c;
    cli_config_init(&c);
    cli_config_for(&c, CLI_FOR_ENDPOINT, "endpoint");
    endpoint_args_t a;
    memset(&a, 0, sizeof a);
    int code = parse_args(&c, &a, argc, argv);
    if (code == 0) {
        c.opts.no_flusher = 1;
        c.opts.manual_flush = 0;
        evrec_t *agent = NULL;
        code = cli_open_agent(&c, "endpoint", 0, &agent);
        if (code == CLI_EXIT_OK) {
            code = apply_all(agent, &a);
            evrec_close(agent, 0);
        }
    }
    cli_config_free(&c);
    return code < 0 ? CLI_EXIT_OK : code;
}

const cli_command_t cli_cmd_endpoint = { "endpoint", "show or change an endpoint profile", run };
