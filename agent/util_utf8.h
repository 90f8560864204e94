/*
 * UTF-8 counting, once: the services count "characters" as Unicode code points. Pure.
 */
#ifndef EVREC_UTIL_UTF8_H
#define EVREC_UTIL_UTF8_H

#include <stddef.h>

/** Check UTF-8 validity and count code points (the services' "characters").
 *  Returns the number of characters, or -1 if `s` (len bytes) is not valid UTF-8 (overlong
 *  forms, surrogates and code points above U+10FFFF are invalid). */
long util_utf8_chars(const char *s, size_t len);

/** Code points of a NUL-terminated string known to be UTF-8 (cJSON's strings): every byte
 *  that is not a continuation byte counts, as Python's len() does for decoded text. */
size_t util_utf8_count(const char *s);

#endif /* EVREC_UTIL_UTF8_H */
