/*
 * The AWS CLI's error messages and --debug log for the AWS CLI-compatible commands (cmd_aws.h):
 * argparse's usage errors, the FilteredExceptionHandler's message, the debug lines.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd_aws.h"

/* -- errors as the AWS CLI prints them ------------------------------------------------------- */

const char awscli_usage[] =
    "usage: evrec [options] <command> <subcommand> [<subcommand> ...] [parameters]\n"
    "To see help text, you can run:\n"
    "\n"
    "  evrec help\n"
    "  evrec <command> help\n"
    "  evrec <command> <subcommand> help\n";

/* argparse's error(): usage, then "evrec: error: ..." */
void awscli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("\n", stderr);
    fputs(awscli_usage, stderr);
    fputs("\nevrec: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
}

void awscli_invalid_choice(const char *opt, const char *const *choices)
{
    /* awscli's argparser lists the choices in two columns of 40 */
    sbuf_t b = { 0 };
    sb_printf(&b, "argument %s%s: Invalid choice, valid choices are:\n\n",
              strcmp(opt, "command") && strcmp(opt, "operation") ? "--" : "", opt);
    int i;
    for (i = 0; choices[i]; i++) {
        if (i % 2 == 0)
            sb_printf(&b, "%-40s", choices[i]);
        else
            sb_printf(&b, " | %-40s%s", choices[i], choices[i + 1] ? "\n" : "");
    }
    awscli_usage_error("%s", sb_str(&b));
    sb_free(&b);
}

/* FilteredExceptionHandler: "\n<message>\n" */
int awscli_fail(int rc, const char *fmt, ...)
{
    va_list ap;
    fputs("\n", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    return rc;
}

/* -- debug log (secrets never printed) ------------------------------------------------------- */

void awscli_debug(const ctx_t *c, const char *fmt, ...)
{
    if (!c->debug)
        return;
    va_list ap;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s - evrec - DEBUG - ", when);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
