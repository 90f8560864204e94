/*
 * The event's dates and ids: ISO 8601 both ways, random UUID v4 event ids, and the UTF-8
 * prefix a truncation keeps.
 */
#include "event.h"

#include <stdio.h>
#include <string.h>

#include "event_internal.h"
#include "jsonw.h"
#include "port.h"
#include "util_time.h"

size_t event_utf8_prefix(const char *s, size_t len, long chars)
{
    size_t i = 0;
    while (i < len && chars > 0) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        chars--;
    }
    return i;
}


void event_format_iso8601(int64_t unix_ms, char out[32])
{
    if (jsonw_format_iso8601(unix_ms, out)) /* years 0000..9999: by hand, no printf */
        return;
    int64_t days = unix_ms >= 0 ? unix_ms / 86400000 : -((-unix_ms + 86399999) / 86400000);
    int64_t rem = unix_ms - days * 86400000;
    int64_t y;
    unsigned m, d;
    util_civil_from_days(days, &y, &m, &d);
    char buf[96]; /* room for any int64 year, so the format cannot truncate */
    snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, m, d,
             (unsigned)(rem / 3600000), (unsigned)(rem / 60000 % 60), (unsigned)(rem / 1000 % 60),
             (unsigned)(rem % 1000));
    size_t n = strlen(buf);
    if (n > 31)
        n = 31;
    memcpy(out, buf, n);
    out[n] = '\0';
}

int event_parse_iso8601(const char *s, int64_t *unix_ms)
{
    if (!s || !unix_ms)
        return EVREC_E_INVALID;
    const char *p = s;
    int y, mo, d, h, mi, se, ms = 0;
    if (util_digits(&p, 4, &y) || *p++ != '-' || util_digits(&p, 2, &mo) || *p++ != '-' ||
        util_digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
        return EVREC_E_TIMESTAMP;
    p++;
    if (util_digits(&p, 2, &h) || *p++ != ':' || util_digits(&p, 2, &mi) || *p++ != ':' ||
        util_digits(&p, 2, &se))
        return EVREC_E_TIMESTAMP;
    if (*p == '.' || *p == ',') {
        p++;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                ms = ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9)
            return EVREC_E_TIMESTAMP;
        for (; nd < 3; nd++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (util_digits(&p, 2, &oh))
            return EVREC_E_TIMESTAMP;
        if (*p == ':')
            p++;
        if (util_digits(&p, 2, &om) || oh > 23 || om > 59)
            return EVREC_E_TIMESTAMP;
        offset_min = sign * (oh * 60 + om);
    } else {
        return EVREC_E_TIMESTAMP; /* a zone is required: local time is ambiguous */
    }
    if (*p != '\0')
        return EVREC_E_TIMESTAMP;
    if (!util_valid_civil(y, mo, d, h, mi, se))
        return EVREC_E_TIMESTAMP;
    int64_t t = util_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000 +
                ((int64_t)h * 3600 + mi * 60 + se) * 1000 + ms - (int64_t)offset_min * 60000;
    if (t < TS_MIN_MS || t > TS_MAX_MS)
        return EVREC_E_TIMESTAMP;
    *unix_ms = t;
    return EVREC_OK;
}

int event_uuid_v4(char out[37])
{
    uint8_t b[16];
    int rc = port_random_id(b, sizeof b);
    if (rc != 0)
        return EVREC_E_IO;
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
    return EVREC_OK;
}
