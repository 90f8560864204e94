/*
 * `evrec pinpoint put-events`, `evrec personalize-events put-events`, `evrec kinesis put-records`
 * and `evrec firehose put-record-batch`: the AWS CLI's commands of the same name. Same
 * parameters and global options, same parameter processing (file://, shorthand, JSON),
 * botocore's validation, the same request, the standard retry mode, and the AWS CLI v2's output
 * formats, error messages and exit codes.
 *
 * This file is the command: the dispatch and an operation's steps, in the order the AWS CLI
 * takes them (each of its errors comes where the AWS CLI's does). The arguments, the
 * configuration, the request and the error messages live beside it, in the CLI's internal
 * library (cmd_aws.h).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_wire.h"
#include "cli.h"
#include "cmd_aws.h"
#include "jmespath.h"
#include "validate.h"

/* -- help and skeletons ---------------------------------------------------------------------- */

static void print_help(const model_operation_t *op)
{
    const model_shape_t *in = &model_shapes[op->input];
    printf("usage: evrec %s %s", op->service_cli, op->op_cli);
    for (size_t i = 0; i < in->nmembers; i++)
        printf(in->members[i].required ? " --%s <value>" : " [--%s <value>]", in->members[i].cli_name);
    printf(" [--cli-input-json | --cli-input-yaml] [--generate-cli-skeleton <value>]\n"
           "\nGlobal options (before or after the command):\n"
           "  --endpoint-url URL  --region R  --profile P  --output json|text|table|yaml|yaml-stream\n"
           "  --query JMESPATH  --debug  --no-verify-ssl  --no-sign-request  --ca-bundle FILE\n"
           "  --cli-read-timeout S  --cli-connect-timeout S  --color on|off|auto\n"
           "  --no-paginate  --no-cli-pager  --cli-binary-format FORMAT\n"
           "\nValues: inline JSON, file://path, or shorthand (Key=Value,Key2={K=V},Key3=[a,b]).\n");
}

static int skeleton(ctx_t *c, const char *kind)
{
    if (strcmp(kind, "output") == 0) {
        cJSON *sk = c->op->output >= 0 ? wire_skeleton(c->op->output, 1) : cJSON_CreateObject();
        if (!sk)
            return awscli_fail(RC_GENERAL, "MemoryError");
        /* botocore's Stubber validates the stubbed answer: Kinesis's FailedRecordCount of 0 is
         * below its model's minimum of 1 */
        sbuf_t report = { 0 };
        if (c->op->output >= 0 && validate_botocore(sk, c->op->output, &report) > 0) {
            int rc = awscli_fail(RC_PARAM, "Parameter validation failed:\n%s", sb_str(&report));
            sb_free(&report);
            cJSON_Delete(sk);
            return rc;
        }
        sb_free(&report);
        int rc = awscli_print_output(c, sk);
        cJSON_Delete(sk);
        return rc;
    }
    sbuf_t b = { 0 };
    if (strcmp(kind, "yaml-input") == 0) {
        wire_yaml_skeleton(&b, c->op->input);
    } else {
        cJSON *sk = wire_skeleton(c->op->input, 0);
        if (sk)
            pyjson_dump(&b, sk, 4);
        sb_putc(&b, '\n');
        b.oom |= !sk;
        cJSON_Delete(sk);
    }
    if (b.oom) { /* never a skeleton cut short */
        sb_free(&b);
        return awscli_fail(RC_GENERAL, "MemoryError");
    }
    fwrite(sb_str(&b), 1, b.len, stdout);
    sb_free(&b);
    return RC_OK;
}

/* -- an operation, step by step -------------------------------------------------------------- */

/* The AWS CLI compiles --query while it parses the arguments: nothing is sent. */
static int check_query(const ctx_t *c)
{
    if (!c->g.query)
        return 0;
    char qerr[1024];
    cJSON *empty = cJSON_CreateObject(), *res = NULL;
    int bad = jp_search(c->g.query, empty, &res, qerr, sizeof qerr) != 0 &&
              strncmp(qerr, "Bad jmespath", 12) == 0;
    cJSON_Delete(empty);
    cJSON_Delete(res);
    return bad ? awscli_fail(RC_PARAM, "Bad value for --query %s: %s", c->g.query, qerr) : 0;
}

/* The parameters, their blobs as --cli-binary-format (else the profile's cli_binary_format,
 * else base64) says: base64 (decoded, then encoded again for the request) or raw text. */
static int request_params(const ctx_t *c, parsed_t *p, const char *profile, cJSON **params)
{
    int rc = awscli_build_params(p, c->op, params);
    if (rc)
        return rc;
    char binfmt[64];
    if (c->g.binary_format)
        snprintf(binfmt, sizeof binfmt, "%s", c->g.binary_format);
    else
        awscli_config_get(profile, "cli_binary_format", binfmt, sizeof binfmt);
    sbuf_t berr = { 0 };
    if (wire_blobs_to_base64(*params, c->op->input, strcmp(binfmt, "raw-in-base64-out") != 0,
                             &berr) != 0)
        rc = awscli_fail(RC_GENERAL, "%s", sb_str(&berr));
    sb_free(&berr);
    return rc;
}

/* botocore validates the parameters when the call is made, on the client the AWS CLI has made
 * by then (region, its format, retries, timeouts): those errors come first. */
static int validate_request(const ctx_t *c, const cJSON *params)
{
    sbuf_t report = { 0 };
    int rc = 0;
    if (validate_params(params, c->op->input, &report) > 0)
        rc = awscli_fail(RC_PARAM, "Parameter validation failed:\n%s", sb_str(&report));
    sb_free(&report);
    return rc;
}

/* Everything up to the parameters' validation: a call that got here is well formed. */
static int prepare(ctx_t *c, parsed_t *p, call_t *call, cJSON **params)
{
    int rc = awscli_check_arguments(p, c->op);
    if (!rc)
        rc = awscli_resolve_profile(c, call);
    if (!rc && c->g.endpoint_url)
        rc = awscli_endpoint_url_check(c->g.endpoint_url);
    if (!rc)
        rc = check_query(c);
    if (!rc)
        rc = request_params(c, p, call->profile, params);
    if (!rc)
        rc = awscli_client_settings(c, call);
    if (!rc)
        rc = validate_request(c, *params);
    return rc;
}

/* The request's path and body, and Kinesis's endpoint for a StreamARN. */
static int serialize(const ctx_t *c, call_t *call, const cJSON *params)
{
    char err[512];
    if (wire_serialize(c->op, params, &call->path, &call->body, err, sizeof err) != 0)
        return awscli_fail(RC_GENERAL, "%s", err);
    if (!c->g.endpoint_url && awscli_kinesis_arn_endpoint(c->op, params, call) != 0)
        return RC_GENERAL;
    return 0;
}

static int run_operation(ctx_t *c, parsed_t *p)
{
    if (awscli_check_timeouts(c))
        return RC_GENERAL;
    if (p->skeleton && strcmp(p->skeleton, "output") != 0)
        return skeleton(c, p->skeleton);
    call_t call;
    memset(&call, 0, sizeof call);
    cJSON *params = NULL;
    int rc = prepare(c, p, &call, &params);
    if (!rc && p->skeleton) {
        /* the output skeleton is the answer of a stubbed call: the input is checked first */
        rc = skeleton(c, p->skeleton);
    } else if (!rc) {
        rc = serialize(c, &call, params);
        if (!rc)
            rc = awscli_credentials(c, &call);
        if (!rc)
            rc = awscli_endpoint(c, &call);
        if (!rc)
            rc = awscli_send_and_report(c, &call);
    }
    cJSON_Delete(params);
    awscli_call_free(&call);
    return rc;
}

/* -- the command ----------------------------------------------------------------------------- */

/* A service evrec does not have: its commands, as the AWS CLI lists its own (two columns, then
 * help). */
static int unknown_command(void)
{
    static const cli_command_t *const cmds[] = {
#define CLI_CMD(name) &cli_cmd_##name,
        CLI_COMMANDS
#undef CLI_CMD
    };
    const char *names[sizeof cmds / sizeof cmds[0] + 2];
    size_t n = 0;
    for (; n < sizeof cmds / sizeof cmds[0]; n++)
        names[n] = cmds[n]->name;
    names[n++] = "help";
    names[n] = NULL;
    awscli_invalid_choice("command", names);
    return RC_PARAM;
}

/* The service is known; what the rest of the command line asks of it. */
static int run_service(parsed_t *p, const model_operation_t *op)
{
    const model_operation_t *first = awscli_find_operation(p->service, NULL);
    if (p->operation && !op && strcmp(p->operation, "help") == 0) {
        /* `evrec kinesis help`: the service's operations */
        printf("usage: evrec %s %s ...\n\nOperations: %s\n", p->service, first->op_cli,
               first->op_cli);
        return RC_OK;
    }
    if (!p->operation) {
        if (p->help) {
            printf("usage: evrec %s %s ...\n", p->service, first->op_cli);
            return RC_OK;
        }
        awscli_usage_error("the following arguments are required: operation");
        return RC_PARAM;
    }
    if (!op) {
        const char *names[] = { first->op_cli, "help", NULL };
        awscli_invalid_choice("operation", names);
        return RC_PARAM;
    }
    if (p->help) {
        print_help(op);
        return RC_OK;
    }
    ctx_t c;
    memset(&c, 0, sizeof c);
    c.g = p->g;
    c.op = op;
    c.debug = p->g.debug;
    return run_operation(&c, p);
}

int cli_aws_main(int argc, char **argv)
{
    parsed_t p;
    memset(&p, 0, sizeof p);
    const model_operation_t *op = NULL;
    signal(SIGINT, awscli_on_sigint);
    int rc = awscli_parse_argv(argc, argv, &p, &op);
    if (rc == 0 && !p.service) {
        awscli_usage_error("the following arguments are required: command");
        rc = RC_PARAM;
    } else if (rc == 0) {
        rc = awscli_find_operation(p.service, NULL) ? run_service(&p, op) : unknown_command();
    }
    awscli_parsed_free(&p);
    return rc;
}

static int run(int argc, char **argv) { return cli_aws_main(argc, argv); }

const cli_command_t cli_cmd_pinpoint = { "pinpoint", "Amazon Pinpoint put-events (AWS CLI compatible)", run };
const cli_command_t cli_cmd_personalize_events = {
    "personalize-events", "Amazon Personalize Events put-events (AWS CLI compatible)", run
};
const cli_command_t cli_cmd_kinesis = { "kinesis", "Amazon Kinesis put-records (AWS CLI compatible)", run };
const cli_command_t cli_cmd_firehose = {
    "firehose", "Amazon Data Firehose put-record-batch (AWS CLI compatible)", run
};
