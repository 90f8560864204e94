/* The event builder: every quota at its boundary and one past it, UTF-8, truncation, ISO 8601,
 * JSON input in both shapes, and the encoded fragments (parsed back, and validated against
 * botocore's models by tests/support/validate_shape.py). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "event.h"
#include "util_utf8.h"
#include "port.h"
#include "record.h"
#include "testutil.h"

/* -- helpers ----------------------------------------------------------------------------- */

static event_context_t pinpoint_ctx(void)
{
    event_context_t c = { 0 };
    c.preferred_shape = RECORD_SHAPE_PINPOINT;
    c.now_ms = 1763805600123LL; /* 2025-11-22T10:00:00.123Z */
    c.endpoint_id = "endpoint-1";
    c.session_duration_ms = -1;
    return c;
}

static event_context_t personalize_ctx(void)
{
    event_context_t c = pinpoint_ctx();
    c.preferred_shape = RECORD_SHAPE_PERSONALIZE;
    c.session_id = "sess-ctx";
    return c;
}

typedef struct encoded {
    uint8_t *buf;
    size_t len;
    evrec_record_view_t v;
    cJSON *json;
    char *fragment; /* NUL-terminated copy */
    int truncated;
} encoded_t;

/* Encode and decode the record; returns the encoder's code. */
static int encode(evrec_event_t *ev, const event_context_t *ctx, encoded_t *e, char *err,
                  size_t errlen)
{
    memset(e, 0, sizeof *e);
    int rc = event_encode_record(ev, ctx, &e->buf, &e->len, &e->truncated, err, errlen);
    if (rc)
        return rc;
    assert_int_equal(evrec_record_decode(e->buf, e->len, &e->v), 0);
    e->fragment = strndup(e->v.fragment, e->v.fragment_len);
    e->json = cJSON_Parse(e->fragment);
    assert_non_null(e->json);
    return rc;
}

static void encoded_free(encoded_t *e)
{
    port_free(e->buf);
    cJSON_Delete(e->json);
    free(e->fragment);
}

static const char *jstr(const cJSON *o, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cJSON_IsString(cur) ? cur->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *a, const char *b)
{
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        cur = cJSON_GetObjectItemCaseSensitive(cur, b);
    assert_true(cJSON_IsNumber(cur));
    return cur->valuedouble;
}

static void assert_valid_shape(const char *service, const char *shape, const char *json)
{
    char *report = NULL;
    int rc = tu_validate_shape(service, shape, json, &report);
    if (rc != 0)
        fprintf(stderr, "shape %s/%s refused %s:\n%s\n", service, shape, json, report);
    free(report);
    assert_int_equal(rc, 0);
}

/* -- UTF-8 ------------------------------------------------------------------------------- */

static void utf8_counts_code_points(void **state)
{
    (void)state;
    assert_int_equal(util_utf8_chars("", 0), 0);
    assert_int_equal(util_utf8_chars("abc", 3), 3);
    assert_int_equal(util_utf8_chars("\xc3\xa9", 2), 1);             /* é */
    assert_int_equal(util_utf8_chars("\xe2\x82\xac", 3), 1);         /* € */
    assert_int_equal(util_utf8_chars("\xf0\x9f\x98\x80", 4), 1);     /* 😀 */
    assert_int_equal(util_utf8_chars("\xf4\x8f\xbf\xbf", 4), 1);     /* U+10FFFF */
    assert_int_equal(util_utf8_chars("\xed\x9f\xbf", 3), 1);         /* U+D7FF */
    assert_int_equal(util_utf8_chars("a\xc3\xa9\xe2\x82\xac", 6), 3);
}

static void utf8_rejects_bad_sequences(void **state)
{
    (void)state;
    static const char *bad[] = {
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong 2-byte */
        "\xe0\x80\x80",     /* overlong 3-byte */
        "\xf0\x80\x80\x80", /* overlong 4-byte */
        "\xed\xa0\x80",     /* high surrogate */
        "\xed\xbf\xbf",     /* low surrogate */
        "\xf4\x90\x80\x80", /* > U+10FFFF */
        "\xf8\x88\x80\x80\x80",
        "\x80",             /* lone continuation */
        "\xe2\x82",         /* truncated */
        "\xc3",             /* truncated */
        "\xe2\x28\xa1",     /* bad continuation */
        "\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(util_utf8_chars(bad[i], strlen(bad[i])), -1);

    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "\xed\xa0\x80"), EVREC_E_UTF8);
    assert_null(ev);
    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, "n\xc0\x80", "v"), EVREC_E_UTF8);
    assert_int_equal(evrec_event_set_attribute(ev, "n", "v\xe2\x82"), EVREC_E_UTF8);
    assert_non_null(strstr(event_last_error(ev), "\"n\""));
    assert_int_equal(evrec_event_set_metric(ev, "\x80", 1), EVREC_E_UTF8);
    assert_int_equal(evrec_event_set_field(ev, "AppTitle", "\xf4\x90\x80\x80"), EVREC_E_UTF8);
    assert_int_equal(evrec_event_set_user_id(ev, "\xff"), EVREC_E_UTF8);
    evrec_event_free(ev);
}

/* -- event type -------------------------------------------------------------------------- */

static void event_type_limits(void **state)
{
    (void)state;
    evrec_event_t *ev = (evrec_event_t *)1;
    assert_int_equal(evrec_event_new(&ev, NULL), EVREC_E_EVENT_TYPE);
    assert_null(ev);
    assert_int_equal(evrec_event_new(&ev, ""), EVREC_E_EVENT_TYPE);
    char *t256 = tu_repeat("\xc3\xa9", 256), *t257 = tu_repeat("a", 257);
    assert_int_equal(evrec_event_new(&ev, t257), EVREC_E_EVENT_TYPE);
    assert_int_equal(evrec_event_new(&ev, t256), EVREC_OK); /* 256 characters, 512 bytes */
    /* Pinpoint takes at most 50 characters: refused at record time... */
    event_context_t pp = pinpoint_ctx();
    encoded_t e;
    char err[256];
    assert_int_equal(encode(ev, &pp, &e, err, sizeof err), EVREC_E_EVENT_TYPE);
    assert_non_null(strstr(err, "event type"));
    /* ...Personalize takes 256. */
    event_context_t pz = personalize_ctx();
    assert_int_equal(encode(ev, &pz, &e, err, sizeof err), EVREC_OK);
    assert_string_equal(jstr(e.json, "eventType"), t256);
    encoded_free(&e);
    evrec_event_free(ev);

    char *t50 = tu_repeat("\xe2\x82\xac", 50), *t51 = tu_repeat("a", 51);
    assert_int_equal(evrec_event_new(&ev, t50), EVREC_OK);
    assert_int_equal(encode(ev, &pp, &e, err, sizeof err), EVREC_OK);
    assert_string_equal(jstr(e.json, "EventType"), t50);
    encoded_free(&e);
    evrec_event_free(ev);
    assert_int_equal(evrec_event_new(&ev, t51), EVREC_OK);
    assert_int_equal(encode(ev, &pp, &e, err, sizeof err), EVREC_E_EVENT_TYPE);
    evrec_event_free(ev);
    free(t256);
    free(t257);
    free(t50);
    free(t51);
}

/* -- attributes and metrics -------------------------------------------------------------- */

static void name_and_value_limits(void **state)
{
    (void)state;
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    char *n50 = tu_repeat("\xf0\x9f\x98\x80", 50), *n51 = tu_repeat("n", 51);
    char *v200 = tu_repeat("\xc3\xa9", 200), *v201 = tu_repeat("v", 201);
    assert_int_equal(evrec_event_set_attribute(ev, n50, v200), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, "", "v"), EVREC_E_NAME_LENGTH);
    assert_int_equal(evrec_event_set_attribute(ev, NULL, "v"), EVREC_E_NAME_LENGTH);
    assert_int_equal(evrec_event_set_metric(ev, "", 1), EVREC_E_NAME_LENGTH);
    assert_int_equal(evrec_event_set_metric(ev, n50, 1.5), EVREC_OK);
    event_context_t pp = pinpoint_ctx();
    encoded_t e;
    char err[256];
    assert_int_equal(encode(ev, &pp, &e, err, sizeof err), EVREC_OK);
    assert_int_equal(e.truncated, 0);
    char path[256];
    snprintf(path, sizeof path, "Attributes.%s", n50);
    assert_string_equal(jstr(e.json, path), v200);
    assert_true(jnum(e.json, "Metrics", n50) == 1.5);
    encoded_free(&e);

    /* One past: the setter reports it, and recording refuses it with the same code. */
    assert_int_equal(evrec_event_set_attribute(ev, "a", v201), EVREC_E_VALUE_LENGTH);
    assert_non_null(strstr(event_last_error(ev), "\"a\""));
    assert_non_null(strstr(event_last_error(ev), "201"));
    assert_int_equal(encode(ev, &pp, &e, err, sizeof err), EVREC_E_VALUE_LENGTH);
    assert_non_null(strstr(err, "\"a\""));
    assert_int_equal(evrec_event_set_attribute(ev, "a", "short"), EVREC_OK); /* replaced */
    assert_int_equal(encode(ev, &pp, &e, err, sizeof err), EVREC_OK);
    encoded_free(&e);

    assert_int_equal(evrec_event_set_metric(ev, n51, 2), EVREC_E_NAME_LENGTH);
    assert_non_null(strstr(event_last_error(ev), "metric name"));
    assert_int_equal(encode(ev, &pp, &e, err, sizeof err), EVREC_E_NAME_LENGTH);
    evrec_event_free(ev);

    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, n51, "v"), EVREC_E_NAME_LENGTH);
    assert_int_equal(encode(ev, &pp, &e, err, sizeof err), EVREC_E_NAME_LENGTH);
    evrec_event_free(ev);
    free(n50);
    free(n51);
    free(v200);
    free(v201);
}

static void metrics_must_be_finite(void **state)
{
    (void)state;
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    assert_int_equal(evrec_event_set_metric(ev, "m", NAN), EVREC_E_METRIC_VALUE);
    assert_int_equal(evrec_event_set_metric(ev, "m", INFINITY), EVREC_E_METRIC_VALUE);
    assert_int_equal(evrec_event_set_metric(ev, "m", -INFINITY), EVREC_E_METRIC_VALUE);
    assert_non_null(strstr(event_last_error(ev), "\"m\""));
    assert_int_equal(evrec_event_set_metric(ev, "m", -1e308), EVREC_OK);
    assert_int_equal(evrec_event_set_value(ev, NAN), EVREC_E_METRIC_VALUE);
    evrec_event_free(ev);
}

static void forty_fields_and_replacement(void **state)
{
    (void)state;
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    char name[16];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "a%d", i);
        assert_int_equal(evrec_event_set_attribute(ev, name, "v"), EVREC_OK);
        snprintf(name, sizeof name, "m%d", i);
        assert_int_equal(evrec_event_set_metric(ev, name, i), EVREC_OK);
    }
    /* Replacing an existing name does not count twice. */
    assert_int_equal(evrec_event_set_attribute(ev, "a3", "new"), EVREC_OK);
    assert_int_equal(evrec_event_set_metric(ev, "m3", 33), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, "a40", "v"), EVREC_E_TOO_MANY_FIELDS);
    assert_non_null(strstr(event_last_error(ev), "a40"));
    assert_int_equal(evrec_event_set_metric(ev, "m40", 1), EVREC_E_TOO_MANY_FIELDS);
    event_context_t pp = pinpoint_ctx();
    encoded_t e;
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(e.json, "Attributes")), 20);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(e.json, "Metrics")), 20);
    assert_string_equal(jstr(e.json, "Attributes.a3"), "new");
    assert_true(jnum(e.json, "Metrics", "m3") == 33);
    assert_null(jstr(e.json, "Attributes.a40"));
    encoded_free(&e);
    evrec_event_free(ev);
}

/* -- truncation mode --------------------------------------------------------------------- */

static void truncation_mode_cuts_at_code_points(void **state)
{
    (void)state;
    char *type = tu_repeat("\xc3\xa9", 60);                /* 60 é */
    char *name = tu_repeat("\xf0\x9f\x98\x80", 55);        /* 55 😀 */
    char *value = tu_repeat("\xe2\x82\xac", 250);          /* 250 € */
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, type), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, name, value), EVREC_E_NAME_LENGTH);
    assert_int_equal(evrec_event_set_attribute(ev, "v", value), EVREC_E_VALUE_LENGTH);
    event_context_t pp = pinpoint_ctx();
    encoded_t e;
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_E_EVENT_TYPE); /* refused by default */
    pp.truncate_oversize = 1;
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_int_equal(e.truncated, 1);
    assert_true(e.v.flags & EVREC_RECORD_F_TRUNCATED);
    const char *t = jstr(e.json, "EventType");
    assert_int_equal(util_utf8_chars(t, strlen(t)), 50);
    assert_int_equal(strlen(t), 100);
    const cJSON *attrs = cJSON_GetObjectItem(e.json, "Attributes");
    assert_int_equal(cJSON_GetArraySize(attrs), 2);
    const cJSON *first = attrs->child;
    assert_int_equal(util_utf8_chars(first->string, strlen(first->string)), 50);
    assert_int_equal(strlen(first->string), 200);
    assert_int_equal(util_utf8_chars(first->valuestring, strlen(first->valuestring)), 200);
    assert_int_equal(strlen(first->valuestring), 600);
    encoded_free(&e);
    evrec_event_free(ev);

    /* Nothing over-long: not flagged even in truncate mode. */
    assert_int_equal(evrec_event_new(&ev, "ok"), EVREC_OK);
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_int_equal(e.truncated, 0);
    assert_int_equal(e.v.flags, 0);
    encoded_free(&e);
    evrec_event_free(ev);
    free(type);
    free(name);
    free(value);
}

/* -- size -------------------------------------------------------------------------------- */

static void encoded_size_limit(void **state)
{
    (void)state;
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "big"), EVREC_OK);
    assert_int_equal(evrec_event_set_id(ev, "id-1"), EVREC_OK);
    assert_int_equal(evrec_event_set_field(ev, "AppTitle", ""), EVREC_OK);
    event_context_t pp = pinpoint_ctx();
    encoded_t e;
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    size_t base = e.v.fragment_len;
    encoded_free(&e);
    char *fill = tu_repeat("x", EVENT_MAX_BYTES - base);
    assert_int_equal(evrec_event_set_field(ev, "AppTitle", fill), EVREC_OK);
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_int_equal(e.v.fragment_len, EVENT_MAX_BYTES);
    encoded_free(&e);
    free(fill);
    fill = tu_repeat("x", EVENT_MAX_BYTES - base + 1);
    assert_int_equal(evrec_event_set_field(ev, "AppTitle", fill), EVREC_OK);
    char err[256];
    assert_int_equal(encode(ev, &pp, &e, err, sizeof err), EVREC_E_EVENT_SIZE);
    assert_non_null(strstr(err, "1000001"));
    free(fill);
    fill = tu_repeat("x", EVENT_MAX_BYTES + 1);
    assert_int_equal(evrec_event_set_field(ev, "AppTitle", fill), EVREC_E_EVENT_SIZE);
    free(fill);
    assert_int_equal(evrec_event_set_field(ev, "Bogus", "x"), EVREC_E_INVALID);
    assert_non_null(strstr(event_last_error(ev), "Bogus"));
    evrec_event_free(ev);
}

/* -- ids --------------------------------------------------------------------------------- */

static void event_ids(void **state)
{
    (void)state;
    char a[37], b[37];
    assert_int_equal(event_uuid_v4(a), 0);
    assert_int_equal(event_uuid_v4(b), 0);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));

    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    assert_string_equal(evrec_event_id(ev), "");
    char *id127 = tu_repeat("i", 127), *id128 = tu_repeat("i", 128);
    assert_int_equal(evrec_event_set_id(ev, id128), EVREC_E_ID);
    assert_int_equal(evrec_event_set_id(ev, ""), EVREC_E_ID);
    assert_int_equal(evrec_event_set_id(ev, "has space"), EVREC_E_ID);
    assert_int_equal(evrec_event_set_id(ev, "tab\t"), EVREC_E_ID);
    assert_non_null(strstr(event_last_error(ev), "event id"));
    assert_int_equal(evrec_event_set_endpoint_id(ev, id128), EVREC_E_ID);
    assert_string_equal(evrec_event_id(ev), "");

    /* No id: a UUID v4 is assigned at encode time and kept. */
    event_context_t pp = pinpoint_ctx();
    encoded_t e;
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_int_equal(strlen(evrec_event_id(ev)), 36);
    assert_int_equal(evrec_event_id(ev)[14], '4');
    assert_memory_equal(e.v.event_id, evrec_event_id(ev), 36);
    assert_memory_equal(e.v.endpoint_id, "endpoint-1", 10);
    encoded_free(&e);
    char first[40];
    snprintf(first, sizeof first, "%s", evrec_event_id(ev));
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_string_equal(evrec_event_id(ev), first);
    encoded_free(&e);

    assert_int_equal(evrec_event_set_id(ev, id127), EVREC_OK);
    assert_int_equal(evrec_event_set_endpoint_id(ev, "gw-device-7"), EVREC_OK);
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_int_equal(e.v.event_id_len, 127);
    assert_memory_equal(e.v.endpoint_id, "gw-device-7", 11);
    encoded_free(&e);
    evrec_event_free(ev);
    free(id127);
    free(id128);
}

/* -- timestamps -------------------------------------------------------------------------- */

static void iso8601_parse_and_format(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(event_parse_iso8601("2026-11-22T10:00:00Z", &ms), 0);
    assert_true(ms == 1795341600000LL);
    assert_int_equal(event_parse_iso8601("2026-11-22T10:00:00.123456789Z", &ms), 0);
    assert_true(ms == 1795341600123LL);
    assert_int_equal(event_parse_iso8601("2026-11-22T12:00:00.5+02:00", &ms), 0);
    assert_true(ms == 1795341600500LL);
    assert_int_equal(event_parse_iso8601("2026-11-22T04:30:00-05:30", &ms), 0);
    assert_true(ms == 1795341600000LL);
    assert_int_equal(event_parse_iso8601("2026-11-22T15:30:00+0530", &ms), 0);
    assert_true(ms == 1795341600000LL);
    assert_int_equal(event_parse_iso8601("1970-01-01T00:00:00Z", &ms), 0);
    assert_true(ms == 0);
    assert_int_equal(event_parse_iso8601("2024-02-29T23:59:59.999Z", &ms), 0);
    assert_true(ms == 1709251199999LL);
    assert_int_equal(event_parse_iso8601("9999-12-31T23:59:59.999Z", &ms), 0);
    assert_true(ms == 253402300799999LL);

    static const char *bad[] = {
        "2026-11-22T10:00:00",        /* no zone */
        "2026-11-22 10:00:00Z",       /* no T */
        "2026-13-01T00:00:00Z",       /* month */
        "2026-00-01T00:00:00Z",
        "2025-02-29T00:00:00Z",       /* not a leap year */
        "2026-04-31T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T10:60:00Z",
        "2026-11-22T10:00:60Z",
        "2026-11-22T10:00:00.Z",      /* empty fraction */
        "2026-11-22T10:00:00Zjunk",
        "2026-11-22T10:00:00+24:00",
        "1969-12-31T23:59:59.999Z",   /* before 1970 */
        "1970-01-01T00:30:00+01:00",  /* before 1970 after the offset */
        "26-11-22T10:00:00Z",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(event_parse_iso8601(bad[i], &ms), EVREC_E_TIMESTAMP);

    char out[32];
    event_format_iso8601(1795341600123LL, out);
    assert_string_equal(out, "2026-11-22T10:00:00.123Z");
    event_format_iso8601(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    event_format_iso8601(253402300799999LL, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    /* Round trips over a spread of instants, including leap days and month ends. */
    for (int64_t t = 0; t < 253402300799999LL; t += 7777777777LL) {
        event_format_iso8601(t, out);
        assert_int_equal(event_parse_iso8601(out, &ms), 0);
        assert_true(ms == t);
    }
}

static void timestamp_setters(void **state)
{
    (void)state;
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    assert_int_equal(evrec_event_set_timestamp(ev, -1), EVREC_E_TIMESTAMP);
    assert_int_equal(evrec_event_set_timestamp(ev, 253402300800000LL), EVREC_E_TIMESTAMP);
    assert_int_equal(evrec_event_set_timestamp(ev, 253402300799999LL), EVREC_OK);
    assert_int_equal(evrec_event_set_timestamp_iso(ev, "yesterday"), EVREC_E_TIMESTAMP);
    assert_non_null(strstr(event_last_error(ev), "yesterday"));
    assert_int_equal(evrec_event_set_timestamp_iso(ev, "2026-11-22T11:00:00.250+01:00"), EVREC_OK);
    event_context_t pp = pinpoint_ctx();
    encoded_t e;
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_string_equal(jstr(e.json, "Timestamp"), "2026-11-22T10:00:00.250Z");
    assert_true(e.v.created_ms == 1795341600250LL);
    encoded_free(&e);
    evrec_event_free(ev);

    /* Without a timestamp the context's now is used. */
    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_string_equal(jstr(e.json, "Timestamp"), "2025-11-22T10:00:00.123Z");
    assert_true(e.v.created_ms == pp.now_ms);
    encoded_free(&e);
    evrec_event_free(ev);
}

/* -- shapes ------------------------------------------------------------------------------ */

/* An event carrying Personalize fields is recorded Personalize-shaped whatever the agent's
 * service prefers, with its user and session ids kept; one without stays in the preferred
 * shape. */
static void personalize_fields_decide_the_shape(void **state)
{
    (void)state;
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "watch"), EVREC_OK);
    event_context_t pp = pinpoint_ctx();
    encoded_t e;
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_int_equal(e.v.shape, RECORD_SHAPE_PINPOINT);
    encoded_free(&e);
    assert_int_equal(evrec_event_set_user_id(ev, "user-7"), 0);
    assert_int_equal(evrec_event_set_session_id(ev, "sess-7"), 0);
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_int_equal(e.v.shape, RECORD_SHAPE_PERSONALIZE);
    assert_int_equal(e.v.user_id_len, 6);
    assert_memory_equal(e.v.user_id, "user-7", 6);
    assert_int_equal(e.v.session_id_len, 6);
    assert_memory_equal(e.v.session_id, "sess-7", 6);
    assert_string_equal(jstr(e.json, "eventType"), "watch");
    encoded_free(&e);
    evrec_event_free(ev);
    /* any one Personalize field is enough */
    assert_int_equal(evrec_event_new(&ev, "view"), EVREC_OK);
    assert_int_equal(evrec_event_set_item_id(ev, "item-1"), 0);
    assert_int_equal(event_shape(ev, RECORD_SHAPE_PINPOINT), RECORD_SHAPE_PERSONALIZE);
    evrec_event_free(ev);
    assert_int_equal(evrec_event_new(&ev, "view"), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, "a", "b"), 0);
    assert_int_equal(event_shape(ev, RECORD_SHAPE_PINPOINT), RECORD_SHAPE_PINPOINT);
    assert_int_equal(event_shape(ev, RECORD_SHAPE_PERSONALIZE), RECORD_SHAPE_PERSONALIZE);
    evrec_event_free(ev);
}

/* -- Pinpoint fragment ------------------------------------------------------------------- */

static void pinpoint_fragment(void **state)
{
    (void)state;
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "_session.stop"), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, "screen", "main \"quoted\" \xe2\x82\xac"), 0);
    assert_int_equal(evrec_event_set_metric(ev, "latency", 12.5), 0);
    assert_int_equal(evrec_event_set_field(ev, "AppPackageName", "com.example.app"), 0);
    assert_int_equal(evrec_event_set_field(ev, "AppVersionCode", "42"), 0);
    event_context_t pp = pinpoint_ctx();
    pp.session_id = "sess-1";
    pp.session_start_ms = pp.now_ms - 60000;
    pp.session_stop_ms = pp.now_ms;
    pp.session_duration_ms = 60000;
    encoded_t e;
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_int_equal(e.v.shape, RECORD_SHAPE_PINPOINT);
    assert_int_equal(e.v.session_id_len, 0);
    assert_int_equal(e.v.user_id_len, 0);
    assert_string_equal(jstr(e.json, "EventType"), "_session.stop");
    assert_string_equal(jstr(e.json, "Attributes.screen"), "main \"quoted\" \xe2\x82\xac");
    assert_true(jnum(e.json, "Metrics", "latency") == 12.5);
    assert_string_equal(jstr(e.json, "Session.Id"), "sess-1");
    assert_string_equal(jstr(e.json, "Session.StartTimestamp"), "2025-11-22T09:59:00.123Z");
    assert_string_equal(jstr(e.json, "Session.StopTimestamp"), "2025-11-22T10:00:00.123Z");
    assert_true(jnum(e.json, "Session", "Duration") == 60000);
    assert_string_equal(jstr(e.json, "SdkName"), "evrec");
    assert_string_equal(jstr(e.json, "ClientSdkVersion"), EVREC_VERSION_STRING);
    assert_string_equal(jstr(e.json, "AppPackageName"), "com.example.app");
    assert_null(cJSON_GetObjectItem(e.json, "userId"));
    /* Unformatted: no whitespace between tokens. */
    assert_null(strstr(e.fragment, "\n"));
    assert_null(strstr(e.fragment, "\": "));
    assert_valid_shape("pinpoint", "Event", e.fragment);
    encoded_free(&e);

    /* Without a stop: no StopTimestamp/Duration; SdkName overridable. */
    pp.session_stop_ms = 0;
    pp.session_duration_ms = -1;
    assert_int_equal(evrec_event_set_field(ev, "SdkName", "my-sdk"), 0);
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_null(jstr(e.json, "Session.StopTimestamp"));
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(e.json, "Session"), "Duration"));
    assert_string_equal(jstr(e.json, "SdkName"), "my-sdk");
    encoded_free(&e);
    /* No session: no Session member. */
    pp.session_id = NULL;
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_null(cJSON_GetObjectItem(e.json, "Session"));
    encoded_free(&e);
    /* No endpoint id anywhere: nowhere to batch (or store) the event, for either service. */
    pp.endpoint_id = NULL;
    char err[256];
    assert_int_equal(encode(ev, &pp, &e, err, sizeof err), EVREC_E_ID);
    assert_non_null(strstr(err, "endpoint id"));
    pp.endpoint_id = "";
    assert_int_equal(encode(ev, &pp, &e, err, sizeof err), EVREC_E_ID);
    event_context_t pz = personalize_ctx();
    pz.endpoint_id = NULL;
    assert_int_equal(encode(ev, &pz, &e, err, sizeof err), EVREC_E_ID);
    evrec_event_free(ev);
}

/* The checker is not vacuous: it refuses what the model refuses. */
static void shape_checker_refuses_bad_documents(void **state)
{
    (void)state;
    char *report = NULL;
    assert_int_equal(tu_validate_shape("pinpoint", "Event",
                                    "{\"EventType\":\"x\",\"Timestamp\":\"t\","
                                    "\"Session\":{\"Id\":\"s\"}}", &report), 1);
    assert_non_null(strstr(report, "StartTimestamp"));
    free(report);
    assert_int_equal(tu_validate_shape("personalize-events", "Event",
                                    "{\"eventType\":\"x\",\"sentAt\":1,\"recommendationId\":\""
                                    "0123456789012345678901234567890123456789x\"}", &report), 1);
    assert_non_null(strstr(report, "recommendationId"));
    free(report);
}

/* -- Personalize fragment ---------------------------------------------------------------- */

static void personalize_fragment(void **state)
{
    (void)state;
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "click"), EVREC_OK);
    assert_int_equal(evrec_event_set_timestamp(ev, 1795341600123LL), 0);
    assert_int_equal(evrec_event_set_item_id(ev, "item-9"), 0);
    assert_int_equal(evrec_event_set_value(ev, 4.5), 0);
    assert_int_equal(evrec_event_set_properties(ev, "{\"numberOfRatings\":\"12\"}"), 0);
    assert_int_equal(evrec_event_set_recommendation_id(ev, "rec-1"), 0);
    assert_int_equal(evrec_event_add_impression(ev, "item-9"), 0);
    assert_int_equal(evrec_event_add_impression(ev, "item-10"), 0);
    assert_int_equal(evrec_event_set_metric_attribution(ev, "campaign A"), 0);
    event_context_t pz = personalize_ctx();
    pz.user_id = "user-ctx";
    encoded_t e;
    assert_int_equal(encode(ev, &pz, &e, NULL, 0), EVREC_OK);
    assert_int_equal(e.v.shape, RECORD_SHAPE_PERSONALIZE);
    assert_int_equal(e.v.session_id_len, 8);
    assert_memory_equal(e.v.session_id, "sess-ctx", 8);
    assert_memory_equal(e.v.user_id, "user-ctx", 8);
    assert_string_equal(jstr(e.json, "eventType"), "click");
    assert_true(fabs(jnum(e.json, "sentAt", NULL) - 1795341600.123) < 1e-6);
    assert_string_equal(jstr(e.json, "eventId"), evrec_event_id(ev));
    assert_true(jnum(e.json, "eventValue", NULL) == 4.5);
    assert_string_equal(jstr(e.json, "itemId"), "item-9");
    assert_string_equal(jstr(e.json, "properties"), "{\"numberOfRatings\":\"12\"}");
    assert_string_equal(jstr(e.json, "recommendationId"), "rec-1");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(e.json, "impression")), 2);
    assert_string_equal(jstr(e.json, "metricAttribution.eventAttributionSource"), "campaign A");
    assert_null(cJSON_GetObjectItem(e.json, "userId"));
    assert_null(cJSON_GetObjectItem(e.json, "sessionId"));
    assert_null(cJSON_GetObjectItem(e.json, "Timestamp"));
    assert_valid_shape("personalize-events", "Event", e.fragment);
    encoded_free(&e);

    /* The event's own ids win over the context's. */
    assert_int_equal(evrec_event_set_session_id(ev, "sess-own"), 0);
    assert_int_equal(evrec_event_set_user_id(ev, "user-own"), 0);
    assert_int_equal(encode(ev, &pz, &e, NULL, 0), EVREC_OK);
    assert_memory_equal(e.v.session_id, "sess-own", 8);
    assert_memory_equal(e.v.user_id, "user-own", 8);
    encoded_free(&e);
    evrec_event_free(ev);

    /* No session anywhere: a clear EVREC_E_ID. */
    assert_int_equal(evrec_event_new(&ev, "click"), EVREC_OK);
    pz.session_id = NULL;
    char err[256];
    assert_int_equal(encode(ev, &pz, &e, err, sizeof err), EVREC_E_ID);
    assert_non_null(strstr(err, "sessionId"));
    evrec_event_free(ev);
}

static void personalize_attributes_map_to_properties(void **state)
{
    (void)state;
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "watch"), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, "genre", "drama"), 0);
    assert_int_equal(evrec_event_set_metric(ev, "seconds", 42), 0);
    event_context_t pz = personalize_ctx();
    encoded_t e;
    assert_int_equal(encode(ev, &pz, &e, NULL, 0), EVREC_OK);
    cJSON *props = cJSON_Parse(jstr(e.json, "properties"));
    assert_non_null(props);
    assert_string_equal(jstr(props, "genre"), "drama");
    assert_true(jnum(props, "seconds", NULL) == 42);
    cJSON_Delete(props);
    assert_valid_shape("personalize-events", "Event", e.fragment);
    encoded_free(&e);

    /* Same name as attribute and metric: one value per name in properties. */
    assert_int_equal(evrec_event_set_metric(ev, "genre", 1), 0);
    char err[256];
    assert_int_equal(encode(ev, &pz, &e, err, sizeof err), EVREC_E_INVALID);
    assert_non_null(strstr(err, "genre"));
    /* Both properties and attributes: refused. */
    evrec_event_free(ev);
    assert_int_equal(evrec_event_new(&ev, "watch"), EVREC_OK);
    assert_int_equal(evrec_event_set_attribute(ev, "genre", "drama"), 0);
    assert_int_equal(evrec_event_set_properties(ev, "{\"a\":1}"), 0);
    assert_int_equal(encode(ev, &pz, &e, err, sizeof err), EVREC_E_INVALID);
    assert_non_null(strstr(err, "properties"));
    evrec_event_free(ev);

    /* Attributes that make properties longer than 1,024 characters. */
    assert_int_equal(evrec_event_new(&ev, "watch"), EVREC_OK);
    char *v = tu_repeat("x", 200), name[16];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "a%d", i);
        assert_int_equal(evrec_event_set_attribute(ev, name, v), 0);
    }
    assert_int_equal(encode(ev, &pz, &e, err, sizeof err), EVREC_E_VALUE_LENGTH);
    assert_non_null(strstr(err, "properties"));
    evrec_event_free(ev);
    free(v);
}

static void personalize_field_limits(void **state)
{
    (void)state;
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    /* properties: a JSON object string of 1..1,024 characters. */
    const size_t fixed = strlen("{\"k\":\"\"}");
    char *pad;
    pad = tu_repeat("\xc3\xa9", 1024 - fixed);
    char *ok = malloc(strlen(pad) + 16);
    sprintf(ok, "{\"k\":\"%s\"}", pad);
    assert_int_equal(util_utf8_chars(ok, strlen(ok)), 1024);
    assert_int_equal(evrec_event_set_properties(ev, ok), EVREC_OK);
    free(pad);
    free(ok);
    pad = tu_repeat("x", 1024 - fixed + 1);
    char *over = malloc(strlen(pad) + 16);
    sprintf(over, "{\"k\":\"%s\"}", pad);
    assert_int_equal(evrec_event_set_properties(ev, over), EVREC_E_VALUE_LENGTH);
    assert_non_null(strstr(event_last_error(ev), "1025"));
    free(pad);
    free(over);
    assert_int_equal(evrec_event_set_properties(ev, ""), EVREC_E_VALUE_LENGTH);
    assert_int_equal(evrec_event_set_properties(ev, "[1,2]"), EVREC_E_JSON);
    assert_int_equal(evrec_event_set_properties(ev, "{\"a\":"), EVREC_E_JSON);
    assert_int_equal(evrec_event_set_properties(ev, "\"str\""), EVREC_E_JSON);

    /* ids: 1..256 characters (and 255 bytes for what goes in the record header). */
    char *s256 = tu_repeat("i", 256), *s255 = tu_repeat("i", 255), *s257 = tu_repeat("i", 257);
    assert_int_equal(evrec_event_set_item_id(ev, s256), EVREC_OK);
    assert_int_equal(evrec_event_set_item_id(ev, s257), EVREC_E_ID);
    assert_int_equal(evrec_event_set_item_id(ev, ""), EVREC_E_ID);
    assert_non_null(strstr(event_last_error(ev), "itemId"));
    assert_int_equal(evrec_event_set_user_id(ev, s255), EVREC_OK);
    assert_int_equal(evrec_event_set_user_id(ev, s256), EVREC_E_ID);
    assert_int_equal(evrec_event_set_session_id(ev, s255), EVREC_OK);
    assert_int_equal(evrec_event_set_session_id(ev, s256), EVREC_E_ID);
    assert_non_null(strstr(event_last_error(ev), "sessionId"));
    char *r40 = tu_repeat("r", 40), *r41 = tu_repeat("r", 41);
    assert_int_equal(evrec_event_set_recommendation_id(ev, r40), EVREC_OK);
    assert_int_equal(evrec_event_set_recommendation_id(ev, r41), EVREC_E_ID);
    assert_non_null(strstr(event_last_error(ev), "recommendationId"));
    /* impressions: 25 items of 1..256 characters. */
    assert_int_equal(evrec_event_add_impression(ev, s257), EVREC_E_ID);
    assert_int_equal(evrec_event_add_impression(ev, ""), EVREC_E_ID);
    for (int i = 0; i < 25; i++)
        assert_int_equal(evrec_event_add_impression(ev, i ? "it" : s256), EVREC_OK);
    assert_int_equal(evrec_event_add_impression(ev, "it"), EVREC_E_TOO_MANY_VALUES);
    assert_non_null(strstr(event_last_error(ev), "impression"));
    /* metricAttribution.eventAttributionSource: printable ASCII, a non-space, <= 1,024. */
    char *a1024 = tu_repeat("a", 1024), *a1025 = tu_repeat("a", 1025);
    assert_int_equal(evrec_event_set_metric_attribution(ev, a1024), EVREC_OK);
    assert_int_equal(evrec_event_set_metric_attribution(ev, a1025), EVREC_E_VALUE_LENGTH);
    assert_int_equal(evrec_event_set_metric_attribution(ev, "   "), EVREC_E_INVALID);
    assert_int_equal(evrec_event_set_metric_attribution(ev, "caf\xc3\xa9"), EVREC_E_INVALID);
    assert_int_equal(evrec_event_set_metric_attribution(ev, "tab\there"), EVREC_E_INVALID);
    assert_non_null(strstr(event_last_error(ev), "eventAttributionSource"));

    /* The whole event at its limits is valid for the model. */
    event_context_t pz = personalize_ctx();
    encoded_t e;
    assert_int_equal(encode(ev, &pz, &e, NULL, 0), EVREC_OK);
    assert_int_equal(e.v.session_id_len, 255);
    assert_int_equal(e.v.user_id_len, 255);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(e.json, "impression")), 25);
    assert_valid_shape("personalize-events", "Event", e.fragment);
    encoded_free(&e);
    evrec_event_free(ev);
    free(s256);
    free(s255);
    free(s257);
    free(r40);
    free(r41);
    free(a1024);
    free(a1025);
}

/* -- from JSON --------------------------------------------------------------------------- */

static void from_json_pinpoint(void **state)
{
    (void)state;
    const char *json =
        "{\"EventType\":\"purchase\",\"Timestamp\":\"2026-11-22T12:00:00.042+02:00\","
        "\"Attributes\":{\"sku\":\"A-1\"},\"Metrics\":{\"price\":9.99},"
        "\"Session\":{\"Id\":\"s-7\",\"StartTimestamp\":\"2026-11-22T09:00:00Z\","
        "\"StopTimestamp\":\"2026-11-22T10:00:00Z\",\"Duration\":3600000},"
        "\"AppPackageName\":\"com.x\",\"AppTitle\":\"X\",\"AppVersionCode\":\"3\","
        "\"ClientSdkVersion\":\"9.9\",\"SdkName\":\"other\",\"EventId\":\"ev-1\","
        "\"EndpointId\":\"ep-2\"}";
    evrec_event_t *ev;
    assert_int_equal(evrec_event_from_json(&ev, json, 0), EVREC_OK);
    assert_string_equal(evrec_event_id(ev), "ev-1");
    event_context_t pp = pinpoint_ctx();
    pp.session_id = "ctx-session"; /* the event's own Session wins */
    pp.session_start_ms = 5;
    encoded_t e;
    assert_int_equal(encode(ev, &pp, &e, NULL, 0), EVREC_OK);
    assert_memory_equal(e.v.endpoint_id, "ep-2", 4);
    assert_true(e.v.created_ms == 1795341600042LL);
    assert_string_equal(jstr(e.json, "EventType"), "purchase");
    assert_string_equal(jstr(e.json, "Timestamp"), "2026-11-22T10:00:00.042Z");
    assert_string_equal(jstr(e.json, "Attributes.sku"), "A-1");
    assert_true(jnum(e.json, "Metrics", "price") == 9.99);
    assert_string_equal(jstr(e.json, "Session.Id"), "s-7");
    assert_string_equal(jstr(e.json, "Session.StartTimestamp"), "2026-11-22T09:00:00.000Z");
    assert_string_equal(jstr(e.json, "Session.StopTimestamp"), "2026-11-22T10:00:00.000Z");
    assert_true(jnum(e.json, "Session", "Duration") == 3600000);
    assert_string_equal(jstr(e.json, "SdkName"), "other");
    assert_string_equal(jstr(e.json, "ClientSdkVersion"), "9.9");
    assert_string_equal(jstr(e.json, "AppTitle"), "X");
    assert_null(cJSON_GetObjectItem(e.json, "EventId"));
    assert_valid_shape("pinpoint", "Event", e.fragment);
    encoded_free(&e);
    evrec_event_free(ev);

    /* `len` bounds the input (no NUL needed). */
    const char *two = "{\"EventType\":\"a\"}{\"EventType\":\"b\"}";
    assert_int_equal(evrec_event_from_json(&ev, two, 17), EVREC_OK);
    evrec_event_free(ev);
}

static void from_json_personalize(void **state)
{
    (void)state;
    const char *json =
        "{\"eventType\":\"rate\",\"sentAt\":1795341600.5,\"eventId\":\"e-1\",\"eventValue\":3,"
        "\"itemId\":\"i-1\",\"properties\":{\"rating\":\"5\"},\"recommendationId\":\"r\","
        "\"impression\":[\"i-1\",\"i-2\"],\"metricAttribution\":{\"eventAttributionSource\":"
        "\"email\"},\"userId\":\"u-1\",\"sessionId\":\"s-1\",\"EndpointId\":\"ep\"}";
    evrec_event_t *ev;
    assert_int_equal(evrec_event_from_json(&ev, json, strlen(json)), EVREC_OK);
    event_context_t pz = personalize_ctx();
    encoded_t e;
    assert_int_equal(encode(ev, &pz, &e, NULL, 0), EVREC_OK);
    assert_true(e.v.created_ms == 1795341600500LL);
    assert_memory_equal(e.v.session_id, "s-1", 3);
    assert_memory_equal(e.v.user_id, "u-1", 3);
    assert_string_equal(jstr(e.json, "eventId"), "e-1");
    assert_string_equal(jstr(e.json, "properties"), "{\"rating\":\"5\"}");
    assert_true(jnum(e.json, "eventValue", NULL) == 3);
    assert_string_equal(jstr(e.json, "metricAttribution.eventAttributionSource"), "email");
    assert_valid_shape("personalize-events", "Event", e.fragment);
    encoded_free(&e);
    evrec_event_free(ev);

    /* sentAt as an ISO string, properties as a string. */
    const char *iso = "{\"eventType\":\"rate\",\"sentAt\":\"2026-11-22T10:00:00.250Z\","
                      "\"properties\":\"{\\\"a\\\":\\\"b\\\"}\"}";
    assert_int_equal(evrec_event_from_json(&ev, iso, 0), EVREC_OK);
    assert_int_equal(encode(ev, &pz, &e, NULL, 0), EVREC_OK);
    assert_true(e.v.created_ms == 1795341600250LL);
    assert_string_equal(jstr(e.json, "properties"), "{\"a\":\"b\"}");
    encoded_free(&e);
    evrec_event_free(ev);
}

static void from_json_rejects_bad_input(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int code;
        const char *names; /* expected in the message */
    } cases[] = {
        { "not json", EVREC_E_JSON, "JSON" },
        { "[1]", EVREC_E_JSON, "object" },
        { "{}", EVREC_E_EVENT_TYPE, "EventType" },
        { "{\"EventType\":\"a\",\"eventType\":\"b\"}", EVREC_E_JSON, "both" },
        { "{\"EventType\":5}", EVREC_E_JSON, "EventType" },
        { "{\"EventType\":\"\"}", EVREC_E_EVENT_TYPE, "event type" },
        { "{\"EventType\":\"a\",\"Color\":\"red\"}", EVREC_E_JSON, "Color" },
        { "{\"EventType\":\"a\",\"itemId\":\"x\"}", EVREC_E_JSON, "itemId" },
        { "{\"EventType\":\"a\",\"Attributes\":{\"k\":1}}", EVREC_E_JSON, "Attributes.k" },
        { "{\"EventType\":\"a\",\"Attributes\":[]}", EVREC_E_JSON, "Attributes" },
        { "{\"EventType\":\"a\",\"Metrics\":{\"k\":\"1\"}}", EVREC_E_JSON, "Metrics.k" },
        { "{\"EventType\":\"a\",\"Timestamp\":1}", EVREC_E_JSON, "Timestamp" },
        { "{\"EventType\":\"a\",\"Timestamp\":\"2026-02-30T00:00:00Z\"}", EVREC_E_TIMESTAMP,
          "Timestamp" },
        { "{\"EventType\":\"a\",\"Session\":{\"Id\":\"s\"}}", EVREC_E_JSON, "StartTimestamp" },
        { "{\"EventType\":\"a\",\"Session\":{\"Id\":\"s\",\"StartTimestamp\":"
          "\"2026-01-01T00:00:00Z\",\"Duration\":-1}}", EVREC_E_JSON, "Duration" },
        { "{\"EventType\":\"a\",\"Session\":{\"Id\":\"s\",\"Extra\":1}}", EVREC_E_JSON,
          "Session.Extra" },
        { "{\"EventType\":\"a\",\"AppTitle\":7}", EVREC_E_JSON, "AppTitle" },
        { "{\"EventType\":\"a\",\"EventId\":\"has space\"}", EVREC_E_ID, "event id" },
        { "{\"EventType\":\"a\",\"Attributes\":{\"k\":\"\\ud800\"}}", EVREC_E_JSON, "JSON" },
        { "{\"eventType\":\"a\",\"Attributes\":{}}", EVREC_E_JSON, "Attributes" },
        { "{\"eventType\":\"a\",\"sentAt\":true}", EVREC_E_JSON, "sentAt" },
        { "{\"eventType\":\"a\",\"sentAt\":-5}", EVREC_E_TIMESTAMP, "sentAt" },
        { "{\"eventType\":\"a\",\"eventValue\":\"3\"}", EVREC_E_JSON, "eventValue" },
        { "{\"eventType\":\"a\",\"properties\":[1]}", EVREC_E_JSON, "properties" },
        { "{\"eventType\":\"a\",\"properties\":\"[1]\"}", EVREC_E_JSON, "properties" },
        { "{\"eventType\":\"a\",\"impression\":\"x\"}", EVREC_E_JSON, "impression" },
        { "{\"eventType\":\"a\",\"impression\":[1]}", EVREC_E_JSON, "impression" },
        { "{\"eventType\":\"a\",\"metricAttribution\":{\"x\":\"y\"}}", EVREC_E_JSON,
          "metricAttribution" },
        { "{\"eventType\":\"a\",\"userId\":5}", EVREC_E_JSON, "userId" },
        { "{\"eventType\":\"a\",\"recommendationId\":\"0123456789012345678901234567890123456789x\"}",
          EVREC_E_ID, "recommendationId" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        evrec_event_t *ev = (evrec_event_t *)1;
        char err[256] = "";
        int rc = event_from_json(&ev, cases[i].json, 0, err, sizeof err);
        if (rc != cases[i].code || !strstr(err, cases[i].names))
            fprintf(stderr, "case %zu: %s -> %d \"%s\"\n", i, cases[i].json, rc, err);
        assert_int_equal(rc, cases[i].code);
        assert_null(ev);
        assert_non_null(strstr(err, cases[i].names));
        assert_int_equal(evrec_event_from_json(&ev, cases[i].json, 0), cases[i].code);
    }
}

/* What cJSON accepts but would reach the store changed: refused, each with its own message. */
static void from_json_refuses_what_would_change(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        size_t len; /* 0: strlen */
        const char *names;
    } cases[] = {
        /* a NUL inside a string would cut it: escaped, and raw (only with a length) */
        { "{\"EventType\":\"a\",\"Attributes\":{\"k\":\"ab\\u0000cd\"}}", 0, "NUL" },
        { "{\"EventType\":\"a\\u0000b\"}", 0, "NUL" },
        { "{\"eventType\":\"a\",\"userId\":\"u\\u0000\"}", 0, "NUL" },
        { "{\"EventType\":\"a\",\"Attributes\":{\"k\":\"ab\0cd\"}}", 44, "NUL" },
        /* a key twice: top level, nested, and inside properties */
        { "{\"EventType\":\"a\",\"EventType\":\"b\"}", 0, "\"EventType\" more than once" },
        { "{\"EventType\":\"a\",\"Attributes\":{\"k\":\"1\",\"j\":\"2\",\"k\":\"3\"}}", 0,
          "\"k\" more than once" },
        { "{\"eventType\":\"a\",\"properties\":{\"p\":1,\"p\":2}}", 0, "\"p\" more than once" },
        { "{\"eventType\":\"a\",\"properties\":\"{\\\"p\\\":1,\\\"p\\\":2}\"}", 0,
          "more than once" },
        /* a second value after the first */
        { "{\"EventType\":\"a\"} {\"x\":1}", 0, "followed by more text" },
        { "{\"EventType\":\"a\"}x", 0, "followed by more text" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        evrec_event_t *ev = (evrec_event_t *)1;
        char err[256] = "";
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].json);
        int rc = event_from_json(&ev, cases[i].json, len, err, sizeof err);
        if (rc != EVREC_E_JSON || !strstr(err, cases[i].names))
            fail_msg("case %zu: %s -> %d \"%s\"", i, cases[i].json, rc, err);
        assert_null(ev);
        assert_int_equal(evrec_event_from_json(&ev, cases[i].json, len), EVREC_E_JSON);
    }
    /* what is close to those but fine: an escaped backslash before "u0000", white space after
     * the value, the same key in two different objects */
    const char *ok[] = {
        "{\"EventType\":\"a\",\"Attributes\":{\"k\":\"\\\\u0000\"}}",
        "{\"EventType\":\"a\"} \r\n\t",
        "{\"EventType\":\"a\",\"Attributes\":{\"k\":\"1\"},\"Metrics\":{\"k\":1}}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        evrec_event_t *ev = NULL;
        char err[256] = "";
        if (event_from_json(&ev, ok[i], 0, err, sizeof err) != EVREC_OK)
            fail_msg("%s: %s", ok[i], err);
        evrec_event_free(ev);
    }
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    assert_int_equal(evrec_event_set_properties(ev, "{\"a\":1,\"a\":2}"), EVREC_E_JSON);
    assert_non_null(strstr(event_last_error(ev), "more than once"));
    assert_int_equal(evrec_event_set_properties(ev, "{\"a\":1} {}"), EVREC_E_JSON);
    assert_int_equal(evrec_event_set_properties(ev, "{\"a\":1}"), EVREC_OK);
    evrec_event_free(ev);
}

static void null_arguments(void **state)
{
    (void)state;
    assert_int_equal(evrec_event_new(NULL, "t"), EVREC_E_INVALID);
    assert_int_equal(evrec_event_set_attribute(NULL, "a", "b"), EVREC_E_INVALID);
    assert_int_equal(evrec_event_set_metric(NULL, "a", 1), EVREC_E_INVALID);
    assert_int_equal(evrec_event_set_timestamp(NULL, 1), EVREC_E_INVALID);
    assert_int_equal(evrec_event_set_id(NULL, "x"), EVREC_E_INVALID);
    assert_int_equal(evrec_event_set_user_id(NULL, "x"), EVREC_E_INVALID);
    assert_int_equal(evrec_event_from_json(NULL, "{}", 0), EVREC_E_INVALID);
    evrec_event_free(NULL);
    evrec_event_t *ev;
    assert_int_equal(evrec_event_new(&ev, "t"), EVREC_OK);
    assert_string_equal(event_last_error(ev), "");
    assert_int_equal(evrec_event_set_attribute(ev, "a", NULL), EVREC_E_INVALID);
    assert_int_equal(evrec_event_set_item_id(ev, NULL), EVREC_E_INVALID);
    assert_int_equal(evrec_event_set_field(ev, "AppTitle", NULL), EVREC_OK); /* removes */
    uint8_t *out;
    size_t len;
    assert_int_equal(event_encode_record(ev, NULL, &out, &len, NULL, NULL, 0), EVREC_E_INVALID);
    evrec_event_free(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_counts_code_points),
        cmocka_unit_test(utf8_rejects_bad_sequences),
        cmocka_unit_test(event_type_limits),
        cmocka_unit_test(name_and_value_limits),
        cmocka_unit_test(metrics_must_be_finite),
        cmocka_unit_test(forty_fields_and_replacement),
        cmocka_unit_test(truncation_mode_cuts_at_code_points),
        cmocka_unit_test(encoded_size_limit),
        cmocka_unit_test(event_ids),
        cmocka_unit_test(iso8601_parse_and_format),
        cmocka_unit_test(timestamp_setters),
        cmocka_unit_test(pinpoint_fragment),
        cmocka_unit_test(personalize_fields_decide_the_shape),
        cmocka_unit_test(shape_checker_refuses_bad_documents),
        cmocka_unit_test(personalize_fragment),
        cmocka_unit_test(personalize_attributes_map_to_properties),
        cmocka_unit_test(personalize_field_limits),
        cmocka_unit_test(from_json_pinpoint),
        cmocka_unit_test(from_json_personalize),
        cmocka_unit_test(from_json_rejects_bad_input),
        cmocka_unit_test(from_json_refuses_what_would_change),
        cmocka_unit_test(null_arguments),
    };
    return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
