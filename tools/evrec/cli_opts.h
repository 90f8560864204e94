/*
 * The library's options as the command line and a JSON config file spell them, shared by the
 * store-side commands (record, stats, endpoint, flush, agent).
 *
 * The flags and keys come from agent/options.def: every option whose CLI column is CLI(...) has a
 * config key (its field name, e.g. "flush_interval_ms") and a flag (the same with dashes:
 * --flush-interval-ms), taken by the commands the column names; CLI_SECRET(...) adds
 * <name>_file / --<name>-file. Enumerations are the names of the row's ONE_OF ("personalize",
 * "batched", "refuse_new", "debug"), booleans true/false in the file and bare flags on the
 * command line. The file is read first; flags override it; unknown keys are errors.
 */
#ifndef EVREC_CLI_OPTS_H
#define EVREC_CLI_OPTS_H

#include <stdint.h>
#include <stdio.h>

#include "evrec.h"

/* Exit codes of the store-side commands. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1  /* the store, the network or the service failed */
#define CLI_EXIT_USAGE 2 /* bad command line, configuration or input */

/* The commands an option applies to (its flag is refused by the others). */
#define CLI_FOR_RECORD 1u
#define CLI_FOR_READ 2u     /* stats, status, queue */
#define CLI_FOR_ENDPOINT 4u
#define CLI_FOR_FLUSH 8u
#define CLI_FOR_AGENT 16u
/* The same as agent/options.def's CLI(commands, help) column names them. */
#define U_RECORD CLI_FOR_RECORD
#define U_READ CLI_FOR_READ
#define U_ENDPOINT CLI_FOR_ENDPOINT
#define U_FLUSH CLI_FOR_FLUSH
#define U_AGENT CLI_FOR_AGENT
#define U_ALL (U_RECORD | U_READ | U_ENDPOINT | U_FLUSH | U_AGENT)
#define U_DELIVER (U_FLUSH | U_AGENT) /* the delivery options */
#define U_WRITE (U_RECORD | U_ENDPOINT | U_FLUSH | U_AGENT) /* the store's writers */

typedef struct cli_config {
    evrec_options_t opts;
    const char *store;
    /* `evrec agent` */
    uint32_t drain_timeout_s; /* default 30 */
    const char *log_file;
    int use_syslog;
    const char *upload_allowed_cmd; /* metered links: a program asked before each request */
    char *owned[64];          /* strings copied out of the config file */
    int n_owned;
    char err[512];            /* why the last call failed */
    unsigned cmd;             /* CLI_FOR_* of the running command; 0 takes every flag */
    const char *cmd_name;     /* "record", for messages */
} cli_config_t;

/** Defaults: evrec_options_init(), store from $EVREC_STORE, log level warn. */
void cli_config_init(cli_config_t *c);
/** The running command: option flags it does not use are refused (exit 2), its --help lists
 *  only its own. Keys of a --config file that it does not use are ignored (one file serves
 *  the agent and the recorders). */
void cli_config_for(cli_config_t *c, unsigned cmd, const char *name);
/** Frees (and wipes: some are secrets) the strings the configuration owns. */
void cli_config_free(cli_config_t *c);

/** Apply a JSON config file (an object of option keys). -1 with c->err on any problem. */
int cli_config_load_file(cli_config_t *c, const char *path);

/** Find `--config FILE` (or --config=FILE) in argv and load it, so flags can override it.
 *  -1 with c->err on a problem. */
int cli_config_preload(cli_config_t *c, int argc, char **argv);

/**
 * If argv[*i] is an option flag (--store, --config, --region, --flush-interval-ms ...),
 * apply it (advancing *i past its value) and return 1; return 0 if it is not one; -1 with
 * c->err if its value is missing or bad.
 */
int cli_option_flag(cli_config_t *c, int argc, char **argv, int *i);

/** 1 if argv[1..] holds --help or -h. */
int cli_wants_help(int argc, char **argv);

/** Load --config, then apply every argv[first..] as an option flag; anything else is an
 *  error. -1 with c->err on a problem, nothing printed. */
int cli_apply_options(cli_config_t *c, int argc, char **argv, int first);

/** cli_apply_options(), and on failure print "evrec <cmd>: <c->err>". */
int cli_parse_options(cli_config_t *c, int argc, char **argv, int first, const char *cmd);

/** Split "NAME=VALUE": NAME (shorter than len) into name, *value points after the '='.
 *  -1 if there is no '=' or NAME is too long. */
int cli_split_pair(const char *arg, char *name, size_t len, const char **value);

/** Print the option flags of command `cmd` (CLI_FOR_*; 0: all) for its --help. */
void cli_options_help(FILE *out, unsigned cmd);

/** The value of flag `name` at argv[*i] ("--name V" or "--name=V"), advancing *i; NULL if
 *  argv[*i] is not that flag. Sets *missing when the flag has no value. */
const char *cli_flag_value(int argc, char **argv, int *i, const char *name, int *missing);

/** A log sink for short commands: "evrec: <level>: <message>" on stderr. */
void cli_log_stderr(void *user, evrec_log_level_t level, const char *message);
/** The lower-case name of a level. */
const char *cli_level_name(evrec_log_level_t level);

/** Check c->store and open the agent; on failure print "evrec <cmd>: ..." and return the exit
 *  code (CLI_EXIT_USAGE for configuration, else CLI_EXIT_FAIL). `must_exist`: refuse to
 *  create a store that is not there. */
int cli_open_agent(cli_config_t *c, const char *cmd, int must_exist, evrec_t **out);

/** Options the CLI implements itself (upload_allowed_cmd → opts.upload_allowed); called by
 *  cli_open_agent, and by evrec agent before it opens. */
void cli_apply_hooks(cli_config_t *c);

/** 1 if code is a validation error of an event or profile (bad input). */
int cli_is_input_error(int code);

/** evrec_stats as one JSON object (cmd_stats.c); cJSON-allocated, free with cJSON_free. */
char *cli_stats_json(const evrec_stats_t *s);

#endif /* EVREC_CLI_OPTS_H */
