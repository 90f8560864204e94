/* evrec_options_init() gives the defaults agent/options.def (and README.md's table, generated
 * from it) documents, evrec_open() copies every string option, options.def has one row per
 * member of evrec_options_t with its kind, and the ranges it gives are the ones evrec_open()
 * enforces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "evrec.h"
#include "testutil.h"

/* options.def's rows as this test reads them. */
typedef enum { K_STR, K_BOOL, K_U32, K_U64, K_SIZE, K_ENUM, K_FN, K_PTR } kind_t;
typedef enum { R_ANY, R_ALWAYS, R_DELIVERING, R_DELIVERING_OR_0, R_ONE_OF } form_t;
typedef struct row {
    const char *name;
    kind_t kind;
    size_t offset, size;
    int type; /* TYPE_OF the member */
    form_t form;
    uint64_t min, max;
} row_t;

/* The C type of a member, as far as _Generic tells them apart (on LP64 uint64_t and size_t are
 * both unsigned long; an enumeration is int or unsigned int). */
#define TYPE_OF(x)                                                                                \
    _Generic((x), const char *: 1, int: 2, unsigned int: 3, unsigned long: 4,                     \
             unsigned long long: 5, void *: 6, default: 0)
#define MEMBER(name) (((evrec_options_t *)0)->name)
#define ANY R_ANY, 0, 0
#define ALWAYS(lo, hi) R_ALWAYS, (lo), (hi)
#define DELIVERING(lo, hi) R_DELIVERING, (lo), (hi)
#define DELIVERING_OR_0(lo, hi) R_DELIVERING_OR_0, (lo), (hi)
#define ONE_OF(last, noun, ...) R_ONE_OF, 0, (last)
static const row_t rows[] = {
#define EVREC_OPTION(kind, name, def, range, cli, shown, meaning)                                 \
    { #name, K_##kind, offsetof(evrec_options_t, name), sizeof MEMBER(name),                      \
      TYPE_OF(MEMBER(name)), range },
#include "options.def"
#undef EVREC_OPTION
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static void defaults_as_documented(void **state)
{
    (void)state;
    evrec_options_t o;
    memset(&o, 0xA5, sizeof o);
    evrec_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.service, EVREC_SERVICE_PINPOINT);
    assert_null(o.application_id);
    assert_null(o.credentials_cb);
    assert_int_equal(o.connect_timeout_ms, 10000);
    assert_int_equal(o.request_timeout_ms, 60000);
    assert_int_equal(o.max_response_bytes, 1024 * 1024);
    assert_int_equal(o.durability, EVREC_DURABLE_PROCESS);
    assert_int_equal(o.sync_interval_ms, 1000);
    assert_int_equal(o.commit_interval_ms, 1000);
    assert_int_equal(o.commit_max_events, 100);
    assert_int_equal(o.max_store_bytes, 64ull * 1024 * 1024);
    assert_int_equal(o.full_policy, EVREC_FULL_DROP_OLDEST);
    assert_int_equal(o.max_event_age_ms, 30ull * 24 * 3600 * 1000);
    assert_int_equal(o.session_timeout_ms, 5000);
    assert_int_equal(o.flush_interval_ms, 30000);
    assert_int_equal(o.flush_threshold_events, 100);
    assert_int_equal(o.max_batch_events, 0);
    assert_int_equal(o.backoff_base_ms, 1000);
    assert_int_equal(o.backoff_cap_ms, 300000);
    assert_int_equal(o.log_level, EVREC_LOG_WARN);
    assert_int_equal(o.partition_key, EVREC_PARTITION_ENDPOINT);
    assert_int_equal(o.daily_upload_bytes, 0);
    assert_null(o.encryption_key_file);
    assert_null(o.encryption_keys_user);
}

/* The caller may free or change its strings as soon as evrec_open() returns. */
static void strings_are_copied(void **state)
{
    (void)state;
    char *dir = tu_tempdir("options");
    char app[] = "app-one", endpoint[] = "endpoint-one";
    evrec_options_t o;
    evrec_options_init(&o);
    o.application_id = app;
    o.endpoint_id = endpoint;
    o.region = "us-east-1";
    o.no_flusher = 1;
    evrec_t *a = NULL;
    assert_int_equal(evrec_open(&a, dir, &o, NULL, 0), EVREC_OK);
    memset(endpoint, 'x', sizeof endpoint - 1);
    memset(app, 'x', sizeof app - 1);
    assert_string_equal(evrec_endpoint_id(a), "endpoint-one");
    assert_int_equal(evrec_close(a, 0), EVREC_OK);
    tu_rmtree(dir);
    free(dir);
}

/* One row a member, in the struct's order: laid out as the rows say, one member after the other
 * (each aligned to its size), they fill evrec_options_t exactly. A missing row leaves a hole, a
 * row out of order or of the wrong size moves the next one. */
static void rows_fill_the_struct_in_order(void **state)
{
    (void)state;
    size_t at = sizeof(size_t); /* struct_size comes first */
    for (size_t i = 0; i < N_ROWS; i++) {
        at = (at + rows[i].size - 1) / rows[i].size * rows[i].size;
        if (rows[i].offset != at)
            fail_msg("options.def: %s is at offset %zu of evrec_options_t, its row says %zu "
                     "(a row missing or out of order before it)", rows[i].name, rows[i].offset, at);
        at += rows[i].size;
    }
    size_t align = _Alignof(evrec_options_t);
    assert_int_equal((at + align - 1) / align * align, sizeof(evrec_options_t));
}

/* Each row's kind is its member's type: a STR is a const char *, a BOOL an int, a PTR a
 * void *, numbers are their width, an ENUM is int-sized. */
static void kinds_are_the_members_types(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ROWS; i++) {
        const row_t *r = &rows[i];
        int want = -1;
        size_t size = 0;
        switch (r->kind) {
        case K_STR: want = TYPE_OF((const char *)0); break;
        case K_BOOL: want = TYPE_OF((int)0); break;
        case K_U32: want = TYPE_OF((uint32_t)0); break;
        case K_U64: want = TYPE_OF((uint64_t)0); break;
        case K_SIZE: want = TYPE_OF((size_t)0); break;
        case K_PTR: want = TYPE_OF((void *)0); break;
        case K_ENUM: size = sizeof(int); break;
        case K_FN: size = sizeof(void (*)(void)); want = 0; break;
        }
        if ((want >= 0 && r->type != want) || (size && r->size != size))
            fail_msg("options.def: %s's kind does not match its member's type", r->name);
        if (r->form != R_ANY && r->kind != K_U32 && r->kind != K_U64 && r->kind != K_SIZE &&
            r->kind != K_ENUM)
            fail_msg("options.def: %s has a range but is not a number", r->name);
        if ((r->kind == K_ENUM) != (r->form == R_ONE_OF))
            fail_msg("options.def: %s: an ENUM, and only an ENUM, has ONE_OF", r->name);
    }
}

/* The enumerations' last values, as include/evrec.h has them: a ONE_OF that forgets one refuses
 * a valid value, one that names too many lets a bad one through. */
static void enum_ranges_end_at_the_last_value(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint64_t last;
    } want[] = {
        { "service", EVREC_SERVICE_FIREHOSE },   { "durability", EVREC_DURABLE_BATCHED },
        { "full_policy", EVREC_FULL_REFUSE_NEW }, { "log_level", EVREC_LOG_DEBUG },
        { "partition_key", EVREC_PARTITION_RANDOM },
    };
    size_t enums = 0;
    for (size_t i = 0; i < N_ROWS; i++) {
        if (rows[i].kind != K_ENUM)
            continue;
        enums++;
        size_t k = 0;
        while (k < sizeof want / sizeof want[0] && strcmp(want[k].name, rows[i].name) != 0)
            k++;
        if (k == sizeof want / sizeof want[0])
            fail_msg("options.def: %s is an ENUM this test does not know", rows[i].name);
        assert_int_equal(rows[i].max, want[k].last);
    }
    assert_int_equal(enums, sizeof want / sizeof want[0]);
}

static void set_number(evrec_options_t *o, const row_t *r, uint64_t v)
{
    char *p = (char *)o + r->offset;
    if (r->size == sizeof(uint32_t)) {
        uint32_t n = (uint32_t)v;
        memcpy(p, &n, sizeof n);
    } else {
        memcpy(p, &v, sizeof v);
    }
}

/* Options that open an agent that delivers (manual flushing: no thread, no request at open),
 * or, with `record_only`, one that only records. */
static void base_options(evrec_options_t *o, int record_only)
{
    evrec_options_init(o);
    o->no_flusher = record_only;
    o->manual_flush = !record_only;
    o->application_id = "app";
    o->region = "us-east-1";
    o->endpoint_url = "http://127.0.0.1:9";
    o->access_key_id = "AKIDEXAMPLE";
    o->secret_access_key = "secret";
}

/* evrec_open() with o in a new store: its code, and the message in msg. */
static int open_with(const evrec_options_t *o, char *msg, size_t len)
{
    char *dir = tu_tempdir("options-range");
    evrec_t *a = NULL;
    msg[0] = '\0';
    int rc = evrec_open(&a, dir, o, msg, len);
    if (rc == EVREC_OK)
        assert_int_equal(evrec_close(a, 0), EVREC_OK);
    tu_rmtree(dir);
    free(dir);
    return rc;
}

/* A value outside a row's range fails evrec_open() with EVREC_E_CONFIG naming the option; its
 * minimum (and an enumeration's last value) passes. DELIVERING ranges bind only an agent that
 * delivers. */
static void ranges_are_enforced(void **state)
{
    (void)state;
    char msg[512], name[80];
    size_t checked = 0;
    for (size_t i = 0; i < N_ROWS; i++) {
        const row_t *r = &rows[i];
        if (r->form == R_ANY)
            continue;
        checked++;
        int record_only = r->form == R_ALWAYS || r->form == R_ONE_OF;
        snprintf(name, sizeof name, "options.%s", r->name);
        evrec_options_t o;
        uint64_t type_max = r->size == sizeof(uint32_t) ? UINT32_MAX : UINT64_MAX;
        uint64_t bad[2];
        int nbad = 0;
        if (r->max < type_max)
            bad[nbad++] = r->max + 1;
        if (r->min > 0 && !(r->form == R_DELIVERING_OR_0 && r->min == 1))
            bad[nbad++] = r->min - 1;
        for (int k = 0; k < nbad; k++) {
            base_options(&o, record_only);
            set_number(&o, r, bad[k]);
            int rc = open_with(&o, msg, sizeof msg);
            if (rc != EVREC_E_CONFIG || strstr(msg, name) == NULL)
                fail_msg("%s = %llu: evrec_open gave %d \"%s\", not EVREC_E_CONFIG naming it",
                         r->name, (unsigned long long)bad[k], rc, msg);
        }
        uint64_t ends[2] = { r->min, r->max }; /* a number's max is its type's */
        for (int k = 0; k < (r->form == R_ONE_OF ? 2 : 1); k++) {
            base_options(&o, record_only);
            set_number(&o, r, ends[k]);
            (void)open_with(&o, msg, sizeof msg); /* may fail for another reason */
            if (strstr(msg, name) != NULL)
                fail_msg("%s = %llu is in its range, yet evrec_open said \"%s\"", r->name,
                         (unsigned long long)ends[k], msg);
        }
        if (!record_only && r->min > 0) { /* an agent that only records does not check it */
            base_options(&o, 1);
            set_number(&o, r, r->min - 1);
            assert_int_equal(open_with(&o, msg, sizeof msg), EVREC_OK);
        }
    }
    assert_true(checked >= 13);
}

int main(void)
{
    tu_isolate_aws_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_as_documented),
        cmocka_unit_test(strings_are_copied),
        cmocka_unit_test(rows_fill_the_struct_in_order),
        cmocka_unit_test(kinds_are_the_members_types),
        cmocka_unit_test(enum_ranges_end_at_the_last_value),
        cmocka_unit_test(ranges_are_enforced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
