/* A growing string (util_buf.h), on evrec's allocator. */
#include "util_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "port.h"

static int reserve(util_buf_t *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->data && b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *nd;
    if (b->wipe) {
        /* Not realloc: the old block is wiped before it goes back to the allocator. */
        nd = port_malloc(cap);
        if (nd && b->data) {
            memcpy(nd, b->data, b->len + 1);
            mbedtls_platform_zeroize(b->data, b->cap);
            port_free(b->data);
        }
    } else {
        nd = port_realloc(b->data, cap);
    }
    if (!nd) {
        b->oom = 1;
        return -1;
    }
    if (!b->data)
        nd[0] = '\0';
    b->data = nd;
    b->cap = cap;
    return 0;
}

void util_buf_putn(util_buf_t *b, const char *s, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void util_buf_puts(util_buf_t *b, const char *s)
{
    util_buf_putn(b, s, strlen(s));
}

void util_buf_putc(util_buf_t *b, char c)
{
    util_buf_putn(b, &c, 1);
}

void util_buf_printf(util_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        util_buf_putn(b, tmp, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *util_buf_str(util_buf_t *b)
{
    if (!b->data)
        reserve(b, 0);
    return b->data ? b->data : "";
}

void util_buf_free(util_buf_t *b)
{
    if (b->data && b->wipe)
        mbedtls_platform_zeroize(b->data, b->cap);
    port_free(b->data);
    int wipe = b->wipe;
    memset(b, 0, sizeof *b);
    b->wipe = wipe;
}
