/*
 * credential_process: a profile names a program that prints credentials as JSON (the AWS
 * CLI's contract, Version 1). The command line is split into words as a POSIX shell splits
 * them (quotes and backslashes; no expansion) and the program is run directly through
 * port_run_capture — never through a shell, so nothing in the file is ever interpreted.
 * Its output holds secrets: it is wiped before it is freed and never quoted in a message.
 */
#include "creds_internal.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "port.h"

#define PROCESS_TIMEOUT_MS 60000
#define PROCESS_MAX_OUTPUT (64 * 1024)
#define MAX_ARGS 64

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

int creds_split_command(const char *command, char *buf, size_t buflen, char **argv, size_t max)
{
    size_t n = 0, o = 0;
    const char *p = command;
    if (!command || !buf || !argv || max < 2 || buflen == 0)
        return -1;
    for (;;) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        if (n + 1 >= max)
            return -1;
        argv[n++] = buf + o;
        char quote = 0;
        for (; *p && (quote || !is_space(*p)); p++) {
            char ch = *p;
            if (quote == '\'') {
                if (ch == '\'') {
                    quote = 0;
                    continue;
                }
            } else if (quote == '"') {
                if (ch == '"') {
                    quote = 0;
                    continue;
                }
                /* inside double quotes a backslash escapes only \ " $ ` and newline */
                if (ch == '\\' && p[1] && strchr("\\\"$`\n", p[1]))
                    ch = *++p;
            } else if (ch == '\'' || ch == '"') {
                quote = ch;
                continue;
            } else if (ch == '\\') {
                if (!p[1])
                    return -1;
                ch = *++p;
            }
            if (o + 1 >= buflen)
                return -1;
            buf[o++] = ch;
        }
        if (quote)
            return -1;
        if (o + 1 >= buflen)
            return -1;
        buf[o++] = '\0';
    }
    argv[n] = NULL;
    return n > 0 ? (int)n : -1;
}

int creds_process(const char *command, int64_t now_ms, evrec_credentials_t *out, char *why,
                  size_t whylen)
{
    char words[2048];
    char *argv[MAX_ARGS];
    if (creds_split_command(command, words, sizeof words, argv, MAX_ARGS) < 0) {
        snprintf(why, whylen, "credential_process is empty, too long, or leaves a quote open");
        return EVREC_E_CONFIG;
    }
    char *text = NULL;
    size_t len = 0;
    int status = 0;
    int rc = port_run_capture((const char *const *)argv, &text, &len, PROCESS_MAX_OUTPUT,
                              PROCESS_TIMEOUT_MS, &status);
    if (rc != 0) {
        snprintf(why, whylen, "credential_process '%s' %s", argv[0],
                 rc == -ENOENT    ? "was not found"
                 : rc == -EACCES  ? "is not executable"
                 : rc == -ETIMEDOUT ? "did not finish within 60 s"
                 : rc == -EFBIG   ? "printed more than 64 KiB"
                 : rc == -ENOSYS  ? "cannot run on this platform"
                                  : "could not be run");
        mbedtls_platform_zeroize(words, sizeof words);
        return EVREC_E_CREDENTIALS;
    }
    if (status == 127) { /* the shell convention, and how a failed exec may be reported */
        snprintf(why, whylen, "credential_process '%s' was not found (or could not be "
                              "executed: status 127)", argv[0]);
        rc = EVREC_E_CREDENTIALS;
    } else if (status != 0) {
        snprintf(why, whylen, "credential_process '%s' exited with status %d", argv[0], status);
        rc = EVREC_E_CREDENTIALS;
    } else {
        char what[160];
        snprintf(what, sizeof what, "credential_process '%s'", argv[0]);
        rc = creds_from_json(text, len, now_ms, 0, CREDS_JSON_VERSION_1, what, out, why, whylen);
        if (rc == EVREC_OK && out->expiration_ms != 0 && out->expiration_ms <= now_ms) {
            snprintf(why, whylen, "%s printed credentials that have already expired", what);
            mbedtls_platform_zeroize(out, sizeof *out);
            rc = EVREC_E_CREDENTIALS;
        }
    }
    mbedtls_platform_zeroize(text, len);
    port_free(text);
    mbedtls_platform_zeroize(words, sizeof words);
    return rc;
}
