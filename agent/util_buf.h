/*
 * A growing string, once, for the library and the CLI. Appends never fail loudly: an
 * allocation failure sets `oom` and later appends do nothing, so a builder checks once at the
 * end. With `wipe` set (strings that may hold a secret: a canonical request with its session
 * token) every block is zeroed before it goes back to the allocator.
 */
#ifndef EVREC_UTIL_BUF_H
#define EVREC_UTIL_BUF_H

#include <stddef.h>

typedef struct util_buf {
    char *data;  /**< NUL-terminated once anything was appended; NULL before */
    size_t len, cap;
    int oom;     /**< an allocation failed: the contents are incomplete */
    int wipe;    /**< zero every block before freeing it (set before the first append) */
} util_buf_t;

void util_buf_putn(util_buf_t *b, const char *s, size_t n);
void util_buf_puts(util_buf_t *b, const char *s);
void util_buf_putc(util_buf_t *b, char c);
void util_buf_printf(util_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** The NUL-terminated contents ("" when empty or out of memory); ownership stays with b. */
const char *util_buf_str(util_buf_t *b);
/** Free the contents (wiped first if b->wipe) and empty b. */
void util_buf_free(util_buf_t *b);

#endif /* EVREC_UTIL_BUF_H */
