/*
 * The AWS commands' parameters (tools/evrec/cmd_aws_args.c, in the CLI's internal library):
 * from the command line to the request's parameters when allocations fail.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmd_aws.h"
#include "pyjson.h"
#include "testutil.h"

/* Builds the parameters of argv failing each allocation in turn: the same parameters, or the
 * AWS CLI's MemoryError (255); never parameters with a value missing, nothing left allocated.
 * Returns the runs that failed. */
static long each_allocation_fails(char **argv, long *runs)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    parsed_t p;
    memset(&p, 0, sizeof p);
    const model_operation_t *op = NULL;
    assert_int_equal(awscli_parse_argv(argc, argv, &p, &op), 0);
    assert_non_null(op);
    tu_failing_allocator(1);
    cJSON *want = NULL;
    assert_int_equal(awscli_build_params(&p, op, &want), 0);
    sbuf_t want_text = { 0 };
    pyjson_dump(&want_text, want, -1);
    cJSON_Delete(want);
    long total = tu_alloc_count, base_live = tu_alloc_live, errors = 0;
    /* the MemoryError lines go to /dev/null */
    fflush(stderr);
    int saved = dup(2), null = open("/dev/null", O_WRONLY);
    assert_true(saved >= 0 && null >= 0);
    dup2(null, 2);
    for (long n = 0; n < total; n++) {
        tu_alloc_count = 0;
        tu_alloc_fail_at = n;
        cJSON *got = NULL;
        int rc = awscli_build_params(&p, op, &got);
        tu_alloc_fail_at = -1;
        sbuf_t text = { 0 };
        if (rc == 0)
            pyjson_dump(&text, got, -1);
        int same = rc == 0 && strcmp(sb_str(&text), sb_str(&want_text)) == 0;
        sb_free(&text);
        cJSON_Delete(got);
        if ((rc != 0 && rc != RC_GENERAL) || (rc == 0 && !same) || tu_alloc_live != base_live) {
            fflush(stderr);
            dup2(saved, 2);
            fprintf(stderr, "%s, allocation %ld failed: rc %d, %s, %ld blocks left\n", argv[1],
                    n, rc, rc ? "error" : same ? "same" : "other parameters",
                    tu_alloc_live - base_live);
            fail();
        }
        errors += rc != 0;
        (*runs)++;
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(null);
    sb_free(&want_text);
    tu_failing_allocator(0);
    awscli_parsed_free(&p);
    return errors;
}

static void params_out_of_memory(void **state)
{
    (void)state;
    char *json[] = { "pinpoint", "put-events", "--application-id", "app",
                     "--events-request",
                     "{\"BatchItem\": {\"ep\": {\"Endpoint\": {\"Address\": \"a\"}, \"Events\": "
                     "{\"e1\": {\"EventType\": \"t\", \"Timestamp\": \"2024-01-01T00:00:00Z\", "
                     "\"Metrics\": {\"m\": 1.5}}}}}}", NULL };
    char *shorthand[] = { "pinpoint", "put-events", "--application-id", "app",
                          "--events-request",
                          "BatchItem={ep={Endpoint={Address=a},Events={e1={EventType=t,"
                          "Timestamp=2024-01-01T00:00:00Z,Metrics={m=1.5}}}}}", NULL };
    char *list[] = { "kinesis", "put-records", "--stream-name", "s", "--records",
                     "Data=aGk=,PartitionKey=p", "Data=eA==,PartitionKey=q", NULL };
    char *old_list[] = { "firehose", "put-record-batch", "--delivery-stream-name", "d",
                         "--records", "aGk=", "eA==", NULL };
    char *input[] = { "kinesis", "put-records", "--cli-input-json",
                      "{\"StreamName\": \"s\", \"Records\": [{\"Data\": \"aGk=\", "
                      "\"PartitionKey\": \"p\"}]}", NULL };
    char **cases[] = { json, shorthand, list, old_list, input };
    long runs = 0, errors = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        errors += each_allocation_fails(cases[c], &runs);
    printf("allocation failure injected at each of %ld allocations of building parameters: "
           "%ld MemoryError, no leak, no other parameters\n", runs, errors);
    assert_true(errors > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(params_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
