/*
 * Service endpoints from the environment and the shared config file, as the AWS SDKs read
 * them ("service-specific endpoints"): AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, a
 * profile's `services` section, a profile's endpoint_url; and the switch that ignores them all.
 *
 *   [profile dev]
 *   services = local
 *   endpoint_url = http://127.0.0.1:4566        # every service of this profile
 *   [services local]
 *   pinpoint =
 *     endpoint_url = http://127.0.0.1:8080      # Pinpoint alone
 */
#include "credentials.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "port.h"

#define ENV_PREFIX "AWS_ENDPOINT_URL_"

static int set(const char *s)
{
    return s && *s;
}

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

static int is_true(const char *s)
{
    if (!s || strlen(s) != 4)
        return 0;
    for (int i = 0; i < 4; i++)
        if ((s[i] | 0x20) != "true"[i])
            return 0;
    return 1;
}

static int equal_nocase(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

/* Trimmed [s, e) of one line; returns the next line's start. */
static const char *line_of(const char *p, const char **s, const char **e, int *indented)
{
    const char *eol = strchr(p, '\n');
    const char *end = eol ? eol : p + strlen(p);
    *indented = p < end && is_ws(*p);
    *s = p;
    while (*s < end && is_ws(**s))
        (*s)++;
    *e = end;
    while (*e > *s && is_ws((*e)[-1]))
        (*e)--;
    return eol ? eol + 1 : end;
}

/* Is [s, e) the header "[services NAME]"? */
static int services_header(const char *s, const char *e, const char *name)
{
    if (e - s < 2 || *s != '[' || e[-1] != ']')
        return 0;
    s++, e--;
    while (s < e && is_ws(*s))
        s++;
    while (e > s && is_ws(e[-1]))
        e--;
    if (e - s < 9 || memcmp(s, "services", 8) != 0 || !is_ws(s[8]))
        return 0;
    s += 8;
    while (s < e && is_ws(*s))
        s++;
    return (size_t)(e - s) == strlen(name) && memcmp(s, name, (size_t)(e - s)) == 0;
}

/* "key = value" split; 0 if the line is not one. */
static int key_value(const char *s, const char *e, const char **ke, const char **v)
{
    const char *d = s;
    while (d < e && *d != '=' && *d != ':')
        d++;
    if (d == e || d == s)
        return 0;
    *ke = d;
    while (*ke > s && is_ws((*ke)[-1]))
        (*ke)--;
    *v = d + 1;
    while (*v < e && is_ws(**v))
        (*v)++;
    return 1;
}

/* In [services NAME]: the indented endpoint_url under "<service> =". */
static int services_lookup(const char *text, const char *name, const char *service, char *out,
                           size_t outlen)
{
    int in_section = 0, in_service = 0;
    for (const char *p = text; *p;) {
        const char *s, *e, *ke, *v;
        int indented;
        p = line_of(p, &s, &e, &indented);
        if (s == e || *s == '#' || *s == ';')
            continue;
        if (!indented && *s == '[') {
            in_section = services_header(s, e, name);
            in_service = 0;
            continue;
        }
        if (!in_section || !key_value(s, e, &ke, &v))
            continue;
        if (!indented) {
            in_service = equal_nocase(s, (size_t)(ke - s), service);
            continue;
        }
        if (in_service && equal_nocase(s, (size_t)(ke - s), "endpoint_url") && v < e) {
            size_t n = (size_t)(e - v);
            if (n >= outlen)
                return EVREC_E_CONFIG;
            memcpy(out, v, n);
            out[n] = '\0';
            return EVREC_OK;
        }
    }
    return EVREC_E_NOT_FOUND;
}

static int copy_from(char *out, size_t outlen, const char *url, char *from, size_t fromlen,
                     const char *what)
{
    if (strlen(url) >= outlen)
        return EVREC_E_CONFIG;
    snprintf(out, outlen, "%s", url);
    snprintf(from, fromlen, "%s", what);
    return EVREC_OK;
}

int creds_endpoint_url(const char *env_name, const char *profile, int global, char *out,
                       size_t outlen, char *from, size_t fromlen)
{
    if (!env_name || strncmp(env_name, ENV_PREFIX, strlen(ENV_PREFIX)) != 0 || !out ||
        outlen == 0 || !from || fromlen == 0)
        return EVREC_E_INVALID;
    out[0] = '\0';
    from[0] = '\0';
    if (is_true(port_getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")))
        return EVREC_E_NOT_FOUND;
    const char *v = port_getenv(env_name);
    if (set(v))
        return copy_from(out, outlen, v, from, fromlen, env_name);
    v = global ? port_getenv("AWS_ENDPOINT_URL") : NULL;
    if (set(v))
        return copy_from(out, outlen, v, from, fromlen, "AWS_ENDPOINT_URL");

    char *text = creds_config_text();
    if (!text)
        return EVREC_E_NOT_FOUND;
    const char *name = creds_profile_name(profile);
    /* the service id as the config file writes it: "personalize_events" */
    char service[64];
    size_t n = 0;
    for (const char *q = env_name + strlen(ENV_PREFIX); *q && n + 1 < sizeof service; q++)
        service[n++] = (char)(*q >= 'A' && *q <= 'Z' ? *q - 'A' + 'a' : *q);
    service[n] = '\0';
    char flag[16], section[128];
    int rc = EVREC_E_NOT_FOUND;
    if (creds_ini_get(text, 1, name, "ignore_configured_endpoint_urls", flag, sizeof flag) ==
            EVREC_OK &&
        is_true(flag)) {
        rc = EVREC_E_NOT_FOUND;
    } else if (creds_ini_get(text, 1, name, "services", section, sizeof section) == EVREC_OK &&
               section[0] && services_lookup(text, section, service, out, outlen) == EVREC_OK) {
        snprintf(from, fromlen, "[services %s] %s endpoint_url", section, service);
        rc = EVREC_OK;
    } else if (global &&
               creds_ini_get(text, 1, name, "endpoint_url", out, outlen) == EVREC_OK && out[0]) {
        snprintf(from, fromlen, "endpoint_url of profile '%s'", name);
        rc = EVREC_OK;
    }
    if (rc != EVREC_OK)
        out[0] = '\0';
    mbedtls_platform_zeroize(text, strlen(text)); /* a config file may hold keys */
    port_free(text);
    return rc;
}
