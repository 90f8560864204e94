/*
 * The shared config and credentials files' scanner (credentials.h: creds_ini_get,
 * creds_ini_has_profile): configparser's rules as botocore uses them, over the file's text.
 * Pure: the files are read by creds_files.c.
 */
#include "credentials.h"
#include "creds_internal.h"

#include <string.h>

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

static int lower_eq(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char x = a[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (x != b[i])
            return 0;
    }
    return 1;
}

/* Does the section header text s[0..n) name `profile`? In the config file non-default
 * profiles are "[profile NAME]" ("default" may be written either way); in the credentials
 * file the section is the profile name itself. */
static int section_is(const char *s, size_t n, int is_config, const char *profile)
{
    while (n > 0 && is_ws(*s))
        s++, n--;
    while (n > 0 && is_ws(s[n - 1]))
        n--;
    size_t pl = strlen(profile);
    if (is_config == 2) {
        /* another kind of config section, "[sso-session NAME]": `profile` is "KIND NAME" */
        size_t kl = strcspn(profile, " ");
        if (profile[kl] != ' ' || n <= kl || memcmp(s, profile, kl) != 0 || !is_ws(s[kl]))
            return 0;
        s += kl, n -= kl;
        while (n > 0 && is_ws(*s))
            s++, n--;
        return n == pl - kl - 1 && memcmp(s, profile + kl + 1, n) == 0;
    }
    if (!is_config || strcmp(profile, "default") == 0)
        if (n == pl && memcmp(s, profile, pl) == 0)
            return 1;
    if (!is_config || n < 8 || memcmp(s, "profile", 7) != 0 || !is_ws(s[7]))
        return 0;
    s += 7, n -= 7;
    while (n > 0 && is_ws(*s))
        s++, n--;
    return n == pl && memcmp(s, profile, pl) == 0;
}

/* The ']' closing a section header that starts at s: the last one on the line, as
 * configparser's greedy pattern takes it (so "[default] ; note" is the default section). */
static const char *section_close(const char *s, const char *e)
{
    for (const char *q = e - 1; q > s; q--)
        if (*q == ']')
            return q;
    return NULL;
}

/*
 * The parser: configparser's rules as botocore uses them. Full-line comments start with '#'
 * or ';' (after optional whitespace); there are no inline comments in values. "key = value"
 * or "key: value", keys case-insensitive, values trimmed. An indented line continues the
 * previous value (that is how nested sections such as "s3 =" are written), so a key inside
 * one is never found at the top level. Malformed files (a line that is neither section,
 * key, comment, nor continuation; a key before any section; a repeated section or key) are
 * an error, as they are for the AWS CLI. *bad_line gets the 1-based line of the problem.
 */
int creds_ini_lookup(const char *text, int is_config, const char *profile, const char *key,
                     char *out, size_t outlen, int *bad_line)
{
    int in_section = 0, seen_section = 0, any_section = 0, found = 0, line_no = 0;
    int can_continue = 0;
    const char *p = text;
    *bad_line = 0;
    while (*p) {
        line_no++;
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *s = p, *e = end;
        int indented = s < e && is_ws(*s);
        while (s < e && is_ws(*s))
            s++;
        while (e > s && is_ws(e[-1]))
            e--;
        p = eol ? eol + 1 : end;
        if (s == e) {
            can_continue = 0;
            continue;
        }
        if (*s == '#' || *s == ';')
            continue;
        if (indented && can_continue)
            continue; /* continuation of the previous value, or a nested sub-section */
        if (*s == '[') {
            const char *close = section_close(s, e);
            if (!close) {
                *bad_line = line_no;
                return EVREC_E_CONFIG;
            }
            int match = section_is(s + 1, (size_t)(close - s - 1), is_config, profile);
            if (match && seen_section) {
                *bad_line = line_no; /* a duplicate section */
                return EVREC_E_CONFIG;
            }
            in_section = match;
            seen_section |= match;
            any_section = 1;
            can_continue = 0;
            continue;
        }
        const char *d = s;
        while (d < e && *d != '=' && *d != ':')
            d++;
        if (d == e || d == s || !any_section) {
            *bad_line = line_no;
            return EVREC_E_CONFIG;
        }
        can_continue = 1;
        if (!in_section)
            continue;
        const char *ke = d;
        while (ke > s && is_ws(ke[-1]))
            ke--;
        if (!lower_eq(s, (size_t)(ke - s), key))
            continue;
        if (found) {
            *bad_line = line_no; /* a duplicate key */
            return EVREC_E_CONFIG;
        }
        const char *v = d + 1;
        while (v < e && is_ws(*v))
            v++;
        size_t vl = (size_t)(e - v);
        if (vl >= outlen)
            vl = outlen - 1;
        memcpy(out, v, vl);
        out[vl] = '\0';
        found = 1;
    }
    return found ? EVREC_OK : EVREC_E_NOT_FOUND;
}

int creds_ini_get(const char *text, int is_config, const char *profile, const char *key,
                  char *out, size_t outlen)
{
    if (!text || !profile || !*profile || !key || !*key || !out || outlen == 0)
        return EVREC_E_INVALID;
    out[0] = '\0';
    int bad;
    return creds_ini_lookup(text, is_config, profile, key, out, outlen, &bad);
}

/* 1 if the file text has the profile's section at all. */
int creds_ini_has_profile(const char *text, int is_config, const char *profile)
{
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *s = p;
        while (s < end && is_ws(*s))
            s++;
        const char *close = s < end && *s == '[' ? section_close(s, end) : NULL;
        if (close && section_is(s + 1, (size_t)(close - s - 1), is_config, profile))
            return 1;
        p = eol ? eol + 1 : end;
    }
    return 0;
}
