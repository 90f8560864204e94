/* Levelled logging with redaction of secrets (log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "port.h"

/* Most messages fit here; longer ones go to the heap so nothing is cut before redaction
 * (a cut could leave half a secret behind the marker). */
#define LOG_STACK_BYTES 1024

void log_msg(const log_sink_t *s, evrec_log_level_t level, const char *fmt, ...)
{
    if (s == NULL || s->fn == NULL || level > s->level)
        return;
    char stack[LOG_STACK_BYTES];
    char *msg = stack;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof stack) {
        char *heap = port_malloc((size_t)n + 1);
        if (heap != NULL) {
            va_start(ap, fmt);
            vsnprintf(heap, (size_t)n + 1, fmt, ap);
            va_end(ap);
            msg = heap;
        }
    }
    log_redact(msg);
    /* Text from servers and files (error messages, x-amzn-ErrorType, profile names) reaches
     * terminals and line-based log files: control characters go out escaped, so no answer
     * can forge log lines or drive a terminal. */
    char *esc = log_escape(msg);
    s->fn(s->user, level, esc ? esc : msg);
    if (esc != msg)
        port_free(esc);
    if (msg != stack)
        port_free(msg);
}

static int needs_escape(unsigned char ch)
{
    return ch < 0x20 || ch == 0x7f;
}

char *log_escape(char *s)
{
    size_t extra = 0, len = 0;
    for (; s[len]; len++)
        extra += needs_escape((unsigned char)s[len]) ? 3 : 0;
    if (extra == 0)
        return s;
    char *out = port_malloc(len + extra + 1);
    if (out == NULL) {
        for (size_t i = 0; i < len; i++) /* no room to escape: blank them instead */
            if (needs_escape((unsigned char)s[i]))
                s[i] = '?';
        return s;
    }
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!needs_escape(ch)) {
            out[o++] = (char)ch;
            continue;
        }
        out[o++] = '\\';
        out[o++] = 'x';
        out[o++] = hex[ch >> 4];
        out[o++] = hex[ch & 15];
    }
    out[o] = '\0';
    return out;
}

/* Key names whose value is a secret, compared lower-case with '_' and '-' removed, as a
 * suffix of the key: "X-Amz-Security-Token", "aws_secret_access_key", "SecretKey" (Cognito),
 * "secretAccessKey" (IoT), "X-Amz-Signature", "Authorization", ... */
static const char *const secret_suffixes[] = {
    "authorization", "token", "secret", "secretkey", "secretaccesskey", "password", "signature",
};

static int is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Which suffix the key s[0..len) ends with: its index, or -1. */
static int secret_key_kind(const char *s, size_t len)
{
    char norm[64];
    size_t n = 0;
    /* Only the tail matters for a suffix match; keep the last bytes that fit. */
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '_' || s[i] == '-')
            continue;
        if (n == sizeof norm) {
            memmove(norm, norm + 1, sizeof norm - 1);
            n--;
        }
        norm[n++] = lower(s[i]);
    }
    for (size_t k = 0; k < sizeof secret_suffixes / sizeof secret_suffixes[0]; k++) {
        size_t sl = strlen(secret_suffixes[k]);
        if (n >= sl && memcmp(norm + n - sl, secret_suffixes[k], sl) == 0)
            return (int)k;
    }
    return -1;
}

static int ends_unquoted_value(char c, int to_line_end)
{
    if (c == '\0' || c == '\r' || c == '\n')
        return 1;
    if (to_line_end)
        return 0;
    return c == ' ' || c == '\t' || c == '&' || c == ',' || c == ';' || c == '"' ||
           c == '\'' || c == '}' || c == ']' || c == ')' || c == '<' || c == '>';
}

/* Replace s[start..end) by a marker no longer than the span; returns the index just past
 * the marker. */
static size_t redact_span(char *s, size_t start, size_t end)
{
    static const char marker[] = "[redacted]";
    size_t span = end - start;
    size_t mlen = sizeof marker - 1;
    size_t put;
    if (span >= mlen) {
        memcpy(s + start, marker, mlen);
        put = mlen;
    } else {
        memset(s + start, '*', span);
        put = span;
    }
    memmove(s + start + put, s + end, strlen(s + end) + 1);
    return start + put;
}

void log_redact(char *s)
{
    if (s == NULL)
        return;
    size_t i = 0;
    while (s[i] != '\0') {
        if (!is_key_char(s[i]) || (i > 0 && is_key_char(s[i - 1]))) {
            i++;
            continue;
        }
        size_t key = i;
        while (is_key_char(s[i]))
            i++;
        int kind = secret_key_kind(s + key, i - key);
        if (kind < 0)
            continue;
        /* key["']? \s* [:=] \s* ["']? value */
        size_t p = i;
        if (s[p] == '"' || s[p] == '\'')
            p++;
        while (s[p] == ' ' || s[p] == '\t')
            p++;
        if (s[p] != ':' && s[p] != '=')
            continue;
        p++;
        while (s[p] == ' ' || s[p] == '\t')
            p++;
        char quote = 0;
        if (s[p] == '"' || s[p] == '\'')
            quote = s[p++];
        size_t start = p;
        if (quote) {
            while (s[p] != '\0' && s[p] != quote) {
                if (s[p] == '\\' && s[p + 1] != '\0')
                    p++;
                p++;
            }
        } else {
            /* An Authorization header's value has spaces and commas: take the whole line. */
            int to_line_end = (kind == 0);
            while (!ends_unquoted_value(s[p], to_line_end))
                p++;
        }
        if (p > start)
            i = redact_span(s, start, p);
        else
            i = p;
    }
}
