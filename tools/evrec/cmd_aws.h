/*
 * The AWS CLI-compatible commands (`evrec pinpoint put-events`, ...), in four files that share
 * this header (internal to them):
 *   cmd_aws.c         the command: dispatch, then one operation as a list of named steps
 *   cmd_aws_args.c    arguments: argv as the AWS CLI's argparse reads it, parameter values
 *                     (file://, shorthand, JSON), --cli-input-json/yaml
 *   cmd_aws_config.c  configuration: profile, region, retry settings, timeouts, credentials
 *                     and the endpoint, from flags, the environment and the AWS config files
 *   cmd_aws_send.c    the request and its retries, then the answer: errors and output
 *   cmd_aws_errors.c  the AWS CLI's error messages and the --debug log
 * All but cmd_aws.c are in the CLI's internal library (tools/evrec/README.md).
 */
#ifndef EVREC_CMD_AWS_H
#define EVREC_CMD_AWS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "evrec.h"
#include "model.h"
#include "pyjson.h"

/* The AWS CLI's exit codes. */
enum { RC_OK = 0, RC_PARAM = 252, RC_CONFIG = 253, RC_CLIENT = 254, RC_GENERAL = 255 };

/* The global options (before or after the command). */
typedef struct gopts {
    const char *endpoint_url, *region, *profile, *output, *query, *ca_bundle, *color;
    const char *binary_format, *read_timeout, *connect_timeout;
    int debug, no_verify_ssl, no_sign_request, no_paginate, no_cli_pager;
} gopts_t;

/* One parameter of the operation as given: its values are argv's strings. */
typedef struct arg_value {
    const model_operation_t *op;
    const model_member_t *member;
    char **values; /* borrowed argv strings */
    size_t nvalues;
} arg_value_t;

/* The command line, parsed. */
typedef struct parsed {
    gopts_t g;
    const char *service, *operation;
    arg_value_t args[16];
    size_t nargs;
    const char *cli_input_json, *cli_input_yaml;
    const char *skeleton; /* NULL: not asked; "input" default */
    sbuf_t unknown;       /* "--bogus, 1" */
    int help;
} parsed_t;

/* The running operation. */
typedef struct ctx {
    gopts_t g;
    const model_operation_t *op;
    int debug;
} ctx_t;

typedef enum { RETRY_STANDARD, RETRY_ADAPTIVE } retry_mode_t;

/* One call being made: what configuration and the arguments resolve to (awscli_call_free). */
typedef struct call {
    const char *profile;     /* the profile settings are read from ("default" if none) */
    char region[64];
    retry_mode_t mode;
    int max_attempts;
    long connect_ms, read_ms; /* 0: no timeout */
    const char *ca_bundle;    /* --ca-bundle, else the profile's (ca_cfg), else NULL */
    char ca_cfg[1024];
    evrec_credentials_t cr;   /* when signing */
    sbuf_t path, body;        /* the operation's path and the serialised request */
    sbuf_t sign_path;         /* the endpoint's own path, then the operation's */
    char base[1024];          /* the endpoint URL, no trailing '/' */
    char url[2048], host[512];
} call_t;

/* -- errors and the debug log, as the AWS CLI prints them (cmd_aws_errors.c) ------------- */

extern const char awscli_usage[];
/** argparse's error(): the usage, then "evrec: error: ...". */
void awscli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** argparse's invalid choice error, the choices in two columns. */
void awscli_invalid_choice(const char *opt, const char *const *choices);
/** The FilteredExceptionHandler's "\n<message>\n" on stderr; returns rc. */
int awscli_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** A --debug line on stderr (never a secret). */
void awscli_debug(const ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* -- arguments (cmd_aws_args.c) ---------------------------------------------------------- */

/** Parse argv (after the program name) into *p and the operation it names (*opp, NULL if
 *  none). 0, or RC_PARAM after printing argparse's error. Free with awscli_parsed_free. */
int awscli_parse_argv(int argc, char **argv, parsed_t *p, const model_operation_t **opp);
void awscli_parsed_free(parsed_t *p);
/** The operation `operation` of `service` (NULL: its first), or NULL. */
const model_operation_t *awscli_find_operation(const char *service, const char *operation);
/** argparse's required arguments (relaxed by --cli-input-json/yaml) and unknown options.
 *  0, or RC_PARAM after the error. */
int awscli_check_arguments(parsed_t *p, const model_operation_t *op);
/** The request's parameters from the arguments and --cli-input-json/yaml (the command line
 *  wins). 0, or the exit code after the error. */
int awscli_build_params(parsed_t *p, const model_operation_t *op, cJSON **params);
/** Python's int(v) of a string. 0, or -1 if it is not one. */
int awscli_py_int(const char *v, long long *out);
/** int()'s ValueError as the AWS CLI prints it; returns RC_GENERAL. */
int awscli_int_literal_error(const char *v);
/** s after leading white space. */
const char *awscli_lstrip(const char *s);
/** os.path.expandvars(os.path.expanduser(path)); malloc'ed. */
char *awscli_expand_path(const char *path);

/* -- configuration (cmd_aws_config.c) ---------------------------------------------------- */

/** A whole file, NUL-terminated (malloc'ed; *len, if not NULL, its length), or NULL with
 *  errno if it cannot be opened. */
char *awscli_read_text_file(const char *path, size_t *len);
/** A profile's setting from the config file ("" when absent). */
void awscli_config_get(const char *profile, const char *key, char *out, size_t len);
/** --cli-read-timeout and --cli-connect-timeout are integers (the AWS CLI reads them as soon
 *  as the global options are parsed). 0, or RC_GENERAL after Python's error. */
int awscli_check_timeouts(const ctx_t *c);
/** --profile or AWS_PROFILE, checked to exist: call->profile. 0, or the exit code. */
int awscli_resolve_profile(const ctx_t *c, call_t *call);
/** --endpoint-url's form. 0, or RC_PARAM after the error. */
int awscli_endpoint_url_check(const char *u);
/** The client's settings as botocore takes them before it validates the parameters: region
 *  (and its format), retry mode and attempts, timeouts. 0, or the exit code after the error. */
int awscli_client_settings(const ctx_t *c, call_t *call);
/** Kinesis's endpoint rules for a StreamARN without --endpoint-url: call->base, or the rules'
 *  error (255). 0 and base left empty when they do not apply. */
int awscli_kinesis_arn_endpoint(const model_operation_t *op, const cJSON *params, call_t *call);
/** The credentials (unless --no-sign-request) into call->cr. 0, or the exit code. */
int awscli_credentials(const ctx_t *c, call_t *call);
/** The endpoint URL, the request's URL, host and signed path. 0, or the exit code. */
int awscli_endpoint(const ctx_t *c, call_t *call);
/** The pager the AWS CLI would use ("" when none). */
void awscli_pager(const ctx_t *c, char *out, size_t len);
/** Frees and wipes what the call holds. */
void awscli_call_free(call_t *call);

/* -- the request and the answer (cmd_aws_send.c) ----------------------------------------- */

/** Send the request with the retry mode's retries; the answer (or the failure) is handed to
 *  the output. Returns the exit code. */
int awscli_send_and_report(ctx_t *c, call_t *call);
/** The answer (or the output skeleton) in the chosen format, through the pager on a
 *  terminal. Returns the exit code. */
int awscli_print_output(ctx_t *c, const cJSON *response);
/** SIGINT as the AWS CLI's InterruptExceptionHandler: a newline, exit 130. */
void awscli_on_sigint(int sig);

#endif /* EVREC_CMD_AWS_H */
