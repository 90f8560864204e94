#include "jsonw.h"
#include "util_time.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

static void put(jsonw_t *w, const char *s, size_t n)
{
    if (w->len < w->cap) {
        size_t room = w->cap - w->len;
        memcpy(w->buf + w->len, s, n < room ? n : room);
    }
    w->len += n;
}

void jsonw_raw_slow(jsonw_t *w, const char *s, size_t n)
{
    put(w, s, n);
}

/* cJSON's escapes: the two-character ones it knows, \u00xx (lower-case hex) for other control
 * characters; every other byte, UTF-8 included, as it is. */
/* 1 for the bytes cJSON escapes: control characters, '"' and '\\'. */
static const unsigned char escaped[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1,
};

/* The bytes an escape adds beyond the byte itself: 1 for the two-character ones, 5 for
 * \u00xx (the other control characters), 0 for every byte written as it is. */
static const unsigned char escape_extra[256] = {
    5, 5, 5, 5, 5, 5, 5, 5, [8] = 1, [9] = 1, [10] = 1, 5, [12] = 1, [13] = 1, 5, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    ['"'] = 1, ['\\'] = 1,
};

/* Whether any of the 8 bytes of w is one cJSON escapes (a control character, '"' or '\\'):
 * the exact any-byte tests (x - 0x01..) & ~x & 0x80.. for "below 0x20" and "equal to". */
static int word_escapes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs ? 1 : 0;
}

/* Where the first 8-byte word holding a byte to escape starts (or the tail, under 8 bytes):
 * ids and names rarely hold one, so they are read eight bytes at a time. */
static size_t plain_words(const char *s, size_t n)
{
    size_t i = 0;
    for (uint64_t w; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        if (word_escapes(w))
            break;
    }
    return i;
}

size_t jsonw_str_bytes(const char *s, size_t n)
{
    size_t bytes = n + 2;
    for (size_t i = plain_words(s, n); i < n; i++)
        bytes += escape_extra[(unsigned char)s[i]];
    return bytes;
}

void jsonw_str(jsonw_t *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = plain_words(s, n);
    while (i < n && !escaped[(unsigned char)s[i]])
        i++;
    if (i == n && w->len <= w->cap && w->cap - w->len >= n + 2) { /* nothing to escape: one copy */
        char *d = w->buf + w->len;
        d[0] = '"';
        memcpy(d + 1, s, n);
        d[n + 1] = '"';
        w->len += n + 2;
        return;
    }
    put(w, "\"", 1);
    size_t run = 0; /* start of the bytes not yet written */
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!escaped[c])
            continue;
        put(w, s + run, i - run);
        run = i + 1;
        char esc[6] = { '\\', 0 };
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        put(w, esc, elen);
    }
    put(w, s + run, n - run);
    put(w, "\"", 1);
}

/* Decimal digits of v, most significant first; returns how many. */
static size_t u64_digits(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/*
 * cJSON prints a number with "%d" when it is an int, else "%1.15g" (or "%1.17g" when that does
 * not read back). For a value that is exactly an integer below 1e15, or that is the double
 * nearest to a decimal M / 10^k with |M| < 1e15 and at least 1e-4 (no exponent), "%1.15g"
 * prints exactly those digits: those are formatted here by hand (the common metrics: counts,
 * durations, prices). Everything else goes to cJSON's own printer.
 */
size_t jsonw_format_number(double d, char out[32])
{
    static const double p10[] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                  1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
    double a = fabs(d);
    if (isfinite(d) && a < 1e15 && !(d == 0 && signbit(d))) {
        size_t n = 0;
        if (d < 0)
            out[n++] = '-';
        if (a == floor(a)) {
            n += u64_digits((uint64_t)a, out + n);
            out[n] = '\0';
            return n;
        }
        if (a >= 1e-4) {
            for (int k = 1; k < 23; k++) {
                double m = a * p10[k];
                if (m >= 1e15)
                    break;
                if (m != floor(m) || m / p10[k] != a)
                    continue;
                char dg[20];
                size_t nd = u64_digits((uint64_t)m, dg);
                size_t frac = (size_t)k;
                while (frac > 0 && dg[nd - 1] == '0') /* 12.50 -> 12.5 */
                    nd--, frac--;
                if (nd <= frac) { /* 0.05: a zero before the point, zeros after it */
                    out[n++] = '0';
                    out[n++] = '.';
                    for (size_t z = nd; z < frac; z++)
                        out[n++] = '0';
                    memcpy(out + n, dg, nd);
                    n += nd;
                } else {
                    memcpy(out + n, dg, nd - frac);
                    n += nd - frac;
                    out[n++] = '.';
                    memcpy(out + n, dg + nd - frac, frac);
                    n += frac;
                }
                out[n] = '\0';
                return n;
            }
        }
    }
    /* cJSON itself, on an item on the stack: no allocation */
    cJSON item;
    memset(&item, 0, sizeof item);
    item.type = cJSON_Number;
    item.valuedouble = d;
    item.valueint = d >= 2147483647.0 ? 2147483647 : d <= -2147483648.0 ? (-2147483647 - 1)
                                                   : isnan(d) ? 0 : (int)d;
    if (!cJSON_PrintPreallocated(&item, out, 32, 0)) {
        memcpy(out, "null", 5);
        return 4;
    }
    return strlen(out);
}

void jsonw_num(jsonw_t *w, double d)
{
    char b[32];
    put(w, b, jsonw_format_number(d, b));
}

static void two(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

#define ISO_MIN_MS (-62167219200000LL) /* 0000-01-01T00:00:00.000Z */
#define ISO_MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z */

size_t jsonw_format_iso8601(int64_t unix_ms, char out[25])
{
    if (unix_ms < ISO_MIN_MS || unix_ms > ISO_MAX_MS)
        return 0;
    int64_t days = unix_ms >= 0 ? unix_ms / 86400000 : -((-unix_ms + 86399999) / 86400000);
    unsigned rem = (unsigned)(unix_ms - days * 86400000);
    int64_t y;
    unsigned m, d;
    util_civil_from_days(days, &y, &m, &d);
    unsigned yy = (unsigned)y;
    two(out, yy / 100);
    two(out + 2, yy % 100);
    out[4] = '-';
    two(out + 5, m);
    out[7] = '-';
    two(out + 8, d);
    out[10] = 'T';
    two(out + 11, rem / 3600000);
    out[13] = ':';
    two(out + 14, rem / 60000 % 60);
    out[16] = ':';
    two(out + 17, rem / 1000 % 60);
    out[19] = '.';
    unsigned ms = rem % 1000;
    out[20] = (char)('0' + ms / 100);
    two(out + 21, ms % 100);
    out[23] = 'Z';
    out[24] = '\0';
    return 24;
}
