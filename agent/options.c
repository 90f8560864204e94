/* evrec_options_t from agent/options.def: defaults, the agent's owned copy, ranges
 * (options.h). */
#include "options.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "port.h"
#include "util_str.h"

EVREC_API void evrec_options_init(evrec_options_t *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
#define EVREC_OPTION(kind, name, def, range, cli, shown, meaning) opts->name = def;
#include "options.def"
#undef EVREC_OPTION
}

/* -- the strings: one owned copy ------------------------------------------------------------ */

/* Every string member of the options (options.def's STR): copied on open, wiped and freed on
 * close. */
#define OPTION_OFFSET_STR(name) offsetof(evrec_options_t, name),
#define OPTION_OFFSET_BOOL(name)
#define OPTION_OFFSET_U32(name)
#define OPTION_OFFSET_U64(name)
#define OPTION_OFFSET_SIZE(name)
#define OPTION_OFFSET_ENUM(name)
#define OPTION_OFFSET_FN(name)
#define OPTION_OFFSET_PTR(name)
static const size_t option_strings[] = {
#define EVREC_OPTION(kind, name, def, range, cli, shown, meaning) OPTION_OFFSET_##kind(name)
#include "options.def"
#undef EVREC_OPTION
};
#define N_OPTION_STRINGS (sizeof option_strings / sizeof option_strings[0])

static const char **option_string(evrec_options_t *o, size_t i)
{
    return (const char **)(void *)((char *)o + option_strings[i]);
}

void options_free(evrec_options_t *o)
{
    for (size_t i = 0; i < N_OPTION_STRINGS; i++) {
        char *s = (char *)*option_string(o, i);
        if (s != NULL) {
            /* secrets should not linger in freed memory */
            mbedtls_platform_zeroize(s, strlen(s));
            port_free(s);
        }
        *option_string(o, i) = NULL;
    }
}

int options_copy(evrec_options_t *dst, const evrec_options_t *src, char *err, size_t errlen)
{
    evrec_options_init(dst);
    if (src == NULL)
        return EVREC_OK;
    if (src->struct_size < offsetof(evrec_options_t, application_id))
        return util_failf(err, errlen, EVREC_E_CONFIG,
                          "options: struct_size is %zu; start from evrec_options_init()",
                          src->struct_size);
    size_t n = src->struct_size < sizeof *dst ? src->struct_size : sizeof *dst;
    memcpy(dst, src, n);
    dst->struct_size = sizeof *dst;
    for (size_t i = 0; i < N_OPTION_STRINGS; i++) {
        const char **f = option_string(dst, i);
        if (option_strings[i] + sizeof(char *) > n)
            *f = NULL;
        else if (*f != NULL && (*f = port_strdup(*f)) == NULL) {
            for (size_t j = i + 1; j < N_OPTION_STRINGS; j++)
                *option_string(dst, j) = NULL;
            options_free(dst);
            return util_failf(err, errlen, EVREC_E_NOMEM, "out of memory copying the options");
        }
    }
    return EVREC_OK;
}

/* -- ranges ----------------------------------------------------------------------------------- */

typedef enum { R_ANY, R_ALWAYS, R_DELIVERING, R_DELIVERING_OR_0 } range_when_t;

typedef struct option_range {
    const char *name;
    size_t offset, size;
    range_when_t when;
    uint64_t min, max;
    const char *noun; /* ONE_OF: "a service" */
} option_range_t;

#define ANY R_ANY, 0, 0, NULL
#define ALWAYS(lo, hi) R_ALWAYS, (lo), (hi), NULL
#define DELIVERING(lo, hi) R_DELIVERING, (lo), (hi), NULL
#define DELIVERING_OR_0(lo, hi) R_DELIVERING_OR_0, (lo), (hi), NULL
#define ONE_OF(last, noun, ...) R_ALWAYS, 0, (last), (noun)
static const option_range_t option_ranges[] = {
#define EVREC_OPTION(kind, name, def, range, cli, shown, meaning)                                 \
    { #name, offsetof(evrec_options_t, name), sizeof(((evrec_options_t *)0)->name), range },
#include "options.def"
#undef EVREC_OPTION
};
#undef ANY
#undef ALWAYS
#undef DELIVERING
#undef DELIVERING_OR_0
#undef ONE_OF

/* The value of a numeric or enumerated member (4 or 8 bytes, unsigned; an enumeration below
 * 0 reads as a large number, out of range). */
static uint64_t range_value(const evrec_options_t *o, const option_range_t *r)
{
    const char *p = (const char *)o + r->offset;
    if (r->size == sizeof(uint32_t)) {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    uint64_t v = 0;
    memcpy(&v, p, r->size < sizeof v ? r->size : sizeof v);
    return v;
}

static int out_of_range(const option_range_t *r, uint64_t v, char *err, size_t errlen)
{
    if (r->noun)
        return util_failf(err, errlen, EVREC_E_CONFIG, "options.%s: %d is not %s", r->name,
                          (int)(uint32_t)v, r->noun);
    if (v < r->min && r->min == 1)
        return util_failf(err, errlen, EVREC_E_CONFIG, "options.%s must be > 0", r->name);
    if (v < r->min)
        return util_failf(err, errlen, EVREC_E_CONFIG, "options.%s (%llu) is too small", r->name,
                          (unsigned long long)v);
    return util_failf(err, errlen, EVREC_E_CONFIG, "options.%s (%llu) is more than %llu",
                      r->name, (unsigned long long)v, (unsigned long long)r->max);
}

int options_check_ranges(const evrec_options_t *o, int delivering, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof option_ranges / sizeof option_ranges[0]; i++) {
        const option_range_t *r = &option_ranges[i];
        if (r->when == R_ANY || (r->when != R_ALWAYS && !delivering))
            continue;
        uint64_t v = range_value(o, r);
        if (r->when == R_DELIVERING_OR_0 && v == 0)
            continue;
        if (v < r->min || v > r->max)
            return out_of_range(r, v, err, errlen);
    }
    return EVREC_OK;
}
