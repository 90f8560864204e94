/*
 * A JSON writer into a caller's buffer, for the text evrec produces on its hot paths (a
 * record's event fragment): no allocation and no printf. It writes what cJSON would print for
 * the same values (strings escaped as cJSON escapes them, numbers as cJSON_PrintUnformatted
 * formats them), so a fragment reads back the same through cJSON, which stays the parser.
 *
 * The writer never overflows: past `cap` it only counts, so `len` is the size the text needs
 * and a caller whose buffer was too small can allocate that much and write again.
 */
#ifndef EVREC_JSONW_H
#define EVREC_JSONW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct jsonw {
    char *buf;
    size_t cap;
    size_t len; /* bytes the text takes so far; may exceed cap (then buf holds a prefix) */
} jsonw_t;

static inline void jsonw_init(jsonw_t *w, char *buf, size_t cap)
{
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
}

/** Bytes as they are (JSON punctuation, keys known to need no escaping). */
void jsonw_raw_slow(jsonw_t *w, const char *s, size_t n);
static inline void jsonw_raw(jsonw_t *w, const char *s, size_t n)
{
    if (w->cap - w->len >= n && w->len <= w->cap) {
        for (size_t i = 0; i < n; i++) /* short: a call to memcpy costs more */
            w->buf[w->len + i] = s[i];
        w->len += n;
    } else {
        jsonw_raw_slow(w, s, n);
    }
}
/** A JSON string of n bytes: quoted, with `"`, `\` and control characters escaped. */
void jsonw_str(jsonw_t *w, const char *s, size_t n);
/* The bytes jsonw_str() writes for these n bytes: quotes and escapes included. */
size_t jsonw_str_bytes(const char *s, size_t n);
/** A number as cJSON prints it (null for NaN and infinities). */
void jsonw_num(jsonw_t *w, double d);

/** Format d as cJSON_PrintUnformatted would, into out (at least 32 bytes); returns the length. */
size_t jsonw_format_number(double d, char out[32]);
/** Format Unix ms between 0000-01-01 and 9999-12-31 as "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes,
 *  NUL-terminated); returns 24, or 0 for a time outside that range (nothing written). */
size_t jsonw_format_iso8601(int64_t unix_ms, char out[25]);

#endif /* EVREC_JSONW_H */
