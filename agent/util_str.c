/* Error details (util_str.h). */
#include "util_str.h"

#include <stdio.h>

int util_vfailf(char *buf, size_t len, int code, const char *fmt, va_list ap)
{
    if (buf && len)
        vsnprintf(buf, len, fmt, ap);
    return code;
}

int util_failf(char *buf, size_t len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    util_vfailf(buf, len, code, fmt, ap);
    va_end(ap);
    return code;
}
