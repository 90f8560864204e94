/* Error details (util_str.h). */
#include "util_str.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

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

int util_percent_encode(const char *s, char *out, size_t len)
{
    size_t n = strlen(s);
    if (n > INT_MAX / 3)
        return -1;
    char *e = curl_easy_escape(NULL, s, (int)n);
    if (!e)
        return -1;
    size_t elen = strlen(e);
    int rc = elen < len ? 0 : -1;
    if (rc == 0)
        memcpy(out, e, elen + 1);
    curl_free(e);
    return rc;
}
