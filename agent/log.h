/*
 * Levelled logging through the caller's callback. Every message is redacted before it leaves:
 * Authorization header values, X-Amz-Security-Token / session tokens, secret access keys and
 * anything that looks like an AWS secret (40-character base64 after a secret-ish key name).
 */
#ifndef EVREC_LOG_H
#define EVREC_LOG_H

#include <stddef.h>

#include "evrec.h"

typedef struct log_sink {
    evrec_log_fn fn;          /* NULL: nothing is logged */
    void *user;
    evrec_log_level_t level;  /* messages above this level are skipped */
} log_sink_t;

#if defined(__GNUC__)
#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LOG_PRINTF(a, b)
#endif

void log_msg(const log_sink_t *s, evrec_log_level_t level, const char *fmt, ...) LOG_PRINTF(3, 4);

/** s with every control character (below 0x20, and 0x7f) written as \xNN: s itself when it
 *  has none, else a port_malloc'ed copy (or s with them replaced by '?' when out of memory). */
char *log_escape(char *s);

/** Redact secrets in place (the string may get shorter, never longer). */
void log_redact(char *s);

#endif /* EVREC_LOG_H */
