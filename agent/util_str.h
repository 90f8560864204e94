/*
 * The one way evrec writes an error's detail (as curl's failf): format into the carrier's
 * buffer — an event's, a store handle's per-thread one, the agent's per-thread one, a
 * caller's error_message — and return the code, so a failure is one statement:
 * `return util_failf(err, errlen, EVREC_E_CONFIG, "options.x: %d", x);`. Also the one
 * percent-encoding (libcurl's). No state.
 */
#ifndef EVREC_UTIL_STR_H
#define EVREC_UTIL_STR_H

#include <stdarg.h>
#include <stddef.h>

/** Format into buf (when buf is not NULL and len > 0; always NUL-terminated, truncated to
 *  fit) and return `code`. */
int util_failf(char *buf, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Percent-encode s (everything but RFC 3986's unreserved characters, as %XX with capitals:
 *  libcurl's curl_easy_escape) into out. 0, or -1 if it does not fit in len bytes (with the
 *  NUL) or memory ran out; out is then unchanged. */
int util_percent_encode(const char *s, char *out, size_t len);

/** util_failf with a va_list. */
int util_vfailf(char *buf, size_t len, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif /* EVREC_UTIL_STR_H */
