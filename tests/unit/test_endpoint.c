/* Endpoint profiles: PublicEndpoint validation (every quota at its boundary and one past it),
 * changes through the store, the persisted default id, and stored profiles checked against
 * botocore's PublicEndpoint shape by tests/support/validate_shape.py. */
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
#include <unistd.h>

#include <cjson/cJSON.h>

#include "endpoint.h"
#include "event.h"
#include "port.h"
#include "queue.h"
#include "testutil.h"

#define ID "endpoint-1"

/* -- helpers ----------------------------------------------------------------------------- */

static int validate(const char *json, char *err, size_t errlen)
{
    err[0] = '\0';
    return endpoint_validate_json(json, 0, err, errlen);
}

/* Check that json is refused with `code` and a message containing `names`. */
static void refused(const char *json, int code, const char *names)
{
    char err[256];
    int rc = validate(json, err, sizeof err);
    if (rc != code || !strstr(err, names))
        fprintf(stderr, "%.200s -> %d \"%s\"\n", json, rc, err);
    assert_int_equal(rc, code);
    assert_non_null(strstr(err, names));
}

static void accepted(const char *json)
{
    char err[256];
    int rc = validate(json, err, sizeof err);
    if (rc)
        fprintf(stderr, "%.200s -> %d \"%s\"\n", json, rc, err);
    assert_int_equal(rc, EVREC_OK);
}

static int validate_shape(const char *json, char **report)
{
    return tu_validate_shape("pinpoint", "PublicEndpoint", json, report);
}

typedef struct fixture {
    char *dir;
    evrec_queue_t *q;
} fixture_t;

static queue_config_t config(void)
{
    queue_config_t c;
    memset(&c, 0, sizeof c);
    c.durability = EVREC_DURABLE_PROCESS;
    c.sync_interval_ms = 1000;
    c.commit_interval_ms = 1000;
    c.commit_max_events = 100;
    c.max_store_bytes = 1 << 20;
    return c;
}

static evrec_queue_t *open_store(const char *dir)
{
    queue_config_t c = config();
    evrec_queue_t *q = NULL;
    char err[256];
    int rc = queue_open(&q, dir, &c, err, sizeof err);
    if (rc)
        fprintf(stderr, "queue_open: %d %s\n", rc, err);
    assert_int_equal(rc, EVREC_OK);
    return q;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = tu_tempdir("endpoint");
    f->q = open_store(f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    queue_close(f->q);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* The stored profile, parsed. */
static cJSON *profile(evrec_queue_t *q, const char *id)
{
    char *json = NULL;
    assert_int_equal(endpoint_get_json(q, id, &json), EVREC_OK);
    cJSON *root = cJSON_Parse(json);
    port_free(json);
    assert_non_null(root);
    return root;
}

static const char *str_at(const cJSON *root, const char *section, const char *name)
{
    const cJSON *o = section ? cJSON_GetObjectItemCaseSensitive(root, section) : root;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* -- pure validation --------------------------------------------------------------------- */

static void valid_full_profile(void **state)
{
    (void)state;
    accepted("{}");
    accepted("{\"Address\":\"tok\",\"ChannelType\":\"GCM\",\"EffectiveDate\":"
             "\"2026-11-22T10:00:00.000Z\",\"EndpointStatus\":\"ACTIVE\",\"OptOut\":\"NONE\","
             "\"RequestId\":\"r\",\"Demographic\":{\"AppVersion\":\"1\",\"Locale\":\"en_US\","
             "\"Make\":\"acme\",\"Model\":\"m\",\"ModelVersion\":\"2\",\"Platform\":\"linux\","
             "\"PlatformVersion\":\"6\",\"Timezone\":\"Europe/Paris\"},\"Location\":{\"City\":"
             "\"Paris\",\"Country\":\"FR\",\"Latitude\":48.8,\"Longitude\":2.3,\"PostalCode\":"
             "\"75001\",\"Region\":\"IDF\"},\"Metrics\":{\"battery\":0.5},\"Attributes\":"
             "{\"tags\":[\"a\",\"b\"]},\"User\":{\"UserId\":\"u\",\"UserAttributes\":{\"plan\":"
             "[\"pro\"]}}}");
}

static void enums(void **state)
{
    (void)state;
    static const char *channels[] = { "PUSH", "GCM", "APNS", "APNS_SANDBOX", "APNS_VOIP",
                                      "APNS_VOIP_SANDBOX", "ADM", "SMS", "VOICE", "EMAIL",
                                      "BAIDU", "CUSTOM", "IN_APP" };
    char json[128];
    for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++) {
        snprintf(json, sizeof json, "{\"ChannelType\":\"%s\"}", channels[i]);
        accepted(json);
    }
    refused("{\"ChannelType\":\"FAX\"}", EVREC_E_ENUM, "ChannelType");
    refused("{\"ChannelType\":\"gcm\"}", EVREC_E_ENUM, "GCM");
    refused("{\"ChannelType\":3}", EVREC_E_JSON, "ChannelType");
    accepted("{\"EndpointStatus\":\"INACTIVE\"}");
    refused("{\"EndpointStatus\":\"ON\"}", EVREC_E_ENUM, "EndpointStatus");
    accepted("{\"OptOut\":\"ALL\"}");
    refused("{\"OptOut\":\"SOME\"}", EVREC_E_ENUM, "OptOut");
    refused("{\"EffectiveDate\":\"last week\"}", EVREC_E_TIMESTAMP, "EffectiveDate");
}

static void shape_errors(void **state)
{
    (void)state;
    refused("", EVREC_E_JSON, "JSON");
    refused("[]", EVREC_E_JSON, "object");
    refused("{\"Colour\":\"x\"}", EVREC_E_JSON, "Colour");
    refused("{\"Demographic\":{\"Shoe\":\"x\"}}", EVREC_E_JSON, "Demographic.Shoe");
    refused("{\"Location\":{\"Street\":\"x\"}}", EVREC_E_JSON, "Location.Street");
    refused("{\"User\":{\"Name\":\"x\"}}", EVREC_E_JSON, "User.Name");
    refused("{\"Demographic\":\"x\"}", EVREC_E_JSON, "Demographic");
    refused("{\"Demographic\":{\"Make\":1}}", EVREC_E_JSON, "Demographic.Make");
    refused("{\"Location\":{\"Latitude\":\"1\"}}", EVREC_E_JSON, "Location.Latitude");
    refused("{\"Attributes\":{\"a\":\"x\"}}", EVREC_E_JSON, "Attributes.a");
    refused("{\"Attributes\":{\"a\":[1]}}", EVREC_E_JSON, "Attributes.a[0]");
    refused("{\"Metrics\":{\"m\":\"1\"}}", EVREC_E_JSON, "Metrics.m");
    refused("{\"User\":{\"UserAttributes\":[]}}", EVREC_E_JSON, "User.UserAttributes");
    refused("{\"Address\":\"a\",\"Address\":\"b\"}", EVREC_E_JSON, "Address");
    refused("{\"Attributes\":{\"a\":[\"x\"],\"a\":[\"y\"]}}", EVREC_E_JSON, "\"a\"");
    refused("{\"Address\":\"\xc0\x80\"}", EVREC_E_UTF8, "Address");
    refused("{\"Attributes\":{\"a\":[\"\xed\xa0\x80\"]}}", EVREC_E_UTF8, "Attributes.a[0]");
    refused("{\"Attributes\":{\"\xff\":[\"x\"]}}", EVREC_E_UTF8, "Attributes");
}

static void location_ranges(void **state)
{
    (void)state;
    accepted("{\"Location\":{\"Latitude\":90,\"Longitude\":180}}");
    accepted("{\"Location\":{\"Latitude\":-90,\"Longitude\":-180}}");
    refused("{\"Location\":{\"Latitude\":90.0001}}", EVREC_E_INVALID, "Location.Latitude");
    refused("{\"Location\":{\"Latitude\":-90.5}}", EVREC_E_INVALID, "Location.Latitude");
    refused("{\"Location\":{\"Longitude\":180.01}}", EVREC_E_INVALID, "Location.Longitude");
    refused("{\"Location\":{\"Longitude\":-181}}", EVREC_E_INVALID, "Location.Longitude");
}

static void name_value_and_count_limits(void **state)
{
    (void)state;
    char *n50 = tu_repeat("\xc3\xa9", 50), *n51 = tu_repeat("n", 51);
    char *v100 = tu_repeat("\xe2\x82\xac", 100), *v101 = tu_repeat("v", 101);
    char *json = malloc(64 * 1024);
    sprintf(json, "{\"Attributes\":{\"%s\":[\"%s\"]},\"Metrics\":{\"%s\":1}}", n50, v100, n50);
    accepted(json);
    sprintf(json, "{\"Attributes\":{\"%s\":[\"v\"]}}", n51);
    refused(json, EVREC_E_NAME_LENGTH, "Attributes");
    sprintf(json, "{\"User\":{\"UserAttributes\":{\"%s\":[\"v\"]}}}", n51);
    refused(json, EVREC_E_NAME_LENGTH, "User.UserAttributes");
    sprintf(json, "{\"Metrics\":{\"%s\":1}}", n51);
    refused(json, EVREC_E_NAME_LENGTH, "Metrics");
    refused("{\"Metrics\":{\"\":1}}", EVREC_E_NAME_LENGTH, "Metrics");
    sprintf(json, "{\"Attributes\":{\"a\":[\"ok\",\"%s\"]}}", v101);
    refused(json, EVREC_E_VALUE_LENGTH, "Attributes.a[1]");

    /* 50 values per attribute, not 51. */
    strcpy(json, "{\"Attributes\":{\"a\":[");
    for (int i = 0; i < 50; i++)
        strcat(json, i ? ",\"v\"" : "\"v\"");
    strcat(json, "]}}");
    accepted(json);
    json[strlen(json) - 3] = '\0';
    strcat(json, ",\"v\"]}}");
    refused(json, EVREC_E_TOO_MANY_VALUES, "Attributes.a");

    /* 250 names across Attributes, User.UserAttributes and Metrics, not 251. */
    for (int extra = 0; extra < 2; extra++) {
        char *p = json;
        p += sprintf(p, "{\"Attributes\":{");
        for (int i = 0; i < 100; i++)
            p += sprintf(p, "%s\"a%d\":[\"v\"]", i ? "," : "", i);
        p += sprintf(p, "},\"User\":{\"UserAttributes\":{");
        for (int i = 0; i < 100; i++)
            p += sprintf(p, "%s\"u%d\":[\"v\"]", i ? "," : "", i);
        p += sprintf(p, "}},\"Metrics\":{");
        for (int i = 0; i < 50 + extra; i++)
            p += sprintf(p, "%s\"m%d\":%d", i ? "," : "", i, i);
        sprintf(p, "}}");
        if (extra)
            refused(json, EVREC_E_TOO_MANY_FIELDS, "251");
        else
            accepted(json);
    }
    free(json);
    free(n50);
    free(n51);
    free(v100);
    free(v101);
}

static void size_limit(void **state)
{
    (void)state;
    size_t base = strlen("{\"Address\":\"\"}");
    char *fill = tu_repeat("x", ENDPOINT_MAX_BYTES - base);
    char *json = malloc(ENDPOINT_MAX_BYTES + 64);
    sprintf(json, "{\"Address\":\"%s\"}", fill);
    assert_int_equal(strlen(json), ENDPOINT_MAX_BYTES);
    accepted(json);
    sprintf(json, "{\"Address\":\"%sx\"}", fill);
    refused(json, EVREC_E_EVENT_SIZE, "15001");
    free(fill);
    free(json);
}

/* -- through the store ------------------------------------------------------------------- */

static void set_and_remove_each_field(void **state)
{
    fixture_t *f = *state;
    static const char *fields[] = {
        "Address", "ChannelType", "EffectiveDate", "EndpointStatus", "OptOut", "RequestId",
        "Demographic.AppVersion", "Demographic.Locale", "Demographic.Make", "Demographic.Model",
        "Demographic.ModelVersion", "Demographic.Platform", "Demographic.PlatformVersion",
        "Demographic.Timezone", "Location.City", "Location.Country", "Location.PostalCode",
        "Location.Region", "User.UserId",
    };
    char err[256];
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *value = "value-1";
        if (strcmp(fields[i], "ChannelType") == 0)
            value = "IN_APP";
        else if (strcmp(fields[i], "EffectiveDate") == 0)
            value = "2026-11-22T10:00:00.000Z";
        else if (strcmp(fields[i], "EndpointStatus") == 0)
            value = "ACTIVE";
        else if (strcmp(fields[i], "OptOut") == 0)
            value = "NONE";
        assert_int_equal(endpoint_set_field(f->q, ID, fields[i], value, err, sizeof err), 0);
        cJSON *root = profile(f->q, ID);
        const char *dot = strchr(fields[i], '.');
        char section[32] = "";
        if (dot)
            snprintf(section, sizeof section, "%.*s", (int)(dot - fields[i]), fields[i]);
        assert_string_equal(str_at(root, dot ? section : NULL, dot ? dot + 1 : fields[i]), value);
        cJSON_Delete(root);
    }
    char *json = NULL;
    assert_int_equal(endpoint_get_json(f->q, ID, &json), 0);
    char *report = NULL;
    int rc = validate_shape(json, &report);
    if (rc)
        fprintf(stderr, "%s\n%s\n", json, report);
    assert_int_equal(rc, 0);
    free(report);
    port_free(json);

    char uid[64];
    assert_int_equal(endpoint_user_id(f->q, ID, uid, sizeof uid), 0);
    assert_string_equal(uid, "value-1");

    /* Removing every member leaves an empty profile: empty sections go too. */
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        assert_int_equal(endpoint_set_field(f->q, ID, fields[i], NULL, err, sizeof err), 0);
    assert_int_equal(endpoint_get_json(f->q, ID, &json), 0);
    assert_string_equal(json, "{}");
    port_free(json);
    assert_int_equal(endpoint_user_id(f->q, ID, uid, sizeof uid), EVREC_E_NOT_FOUND);
    assert_string_equal(uid, "");
}

static void refused_changes_leave_the_profile(void **state)
{
    fixture_t *f = *state;
    char err[256];
    assert_int_equal(endpoint_set_field(f->q, ID, "Address", "a", err, sizeof err), 0);
    assert_int_equal(endpoint_set_field(f->q, ID, "ChannelType", "FAX", err, sizeof err),
                     EVREC_E_ENUM);
    assert_non_null(strstr(err, "ChannelType"));
    assert_int_equal(endpoint_set_field(f->q, ID, "Location.Latitude", "1", err, sizeof err),
                     EVREC_E_INVALID);
    assert_int_equal(endpoint_set_field(f->q, ID, "Demographic.Shoe", "1", err, sizeof err),
                     EVREC_E_INVALID);
    assert_non_null(strstr(err, "Demographic.Shoe"));
    assert_int_equal(endpoint_set_field(f->q, ID, "Address", "\xc3", err, sizeof err),
                     EVREC_E_UTF8);
    assert_int_equal(endpoint_set_field(f->q, "bad id", "Address", "a", err, sizeof err),
                     EVREC_E_ID);
    assert_int_equal(endpoint_set_field(f->q, ID, NULL, "a", err, sizeof err), EVREC_E_INVALID);
    char *json = NULL;
    assert_int_equal(endpoint_get_json(f->q, ID, &json), 0);
    assert_string_equal(json, "{\"Address\":\"a\"}");
    port_free(json);
    assert_int_equal(endpoint_get_json(f->q, "never-set", &json), 0);
    assert_string_equal(json, "{}");
    port_free(json);
}

static void location_lists_and_metrics(void **state)
{
    fixture_t *f = *state;
    char err[256];
    assert_int_equal(endpoint_set_location(f->q, ID, 48.85, 2.35, err, sizeof err), 0);
    assert_int_equal(endpoint_set_location(f->q, ID, 91, 0, err, sizeof err), EVREC_E_INVALID);
    assert_non_null(strstr(err, "Latitude"));
    assert_int_equal(endpoint_set_location(f->q, ID, 0, -180.5, err, sizeof err),
                     EVREC_E_INVALID);
    assert_int_equal(endpoint_set_location(f->q, ID, NAN, 0, err, sizeof err), EVREC_E_INVALID);
    const char *interests[] = { "science", "music" };
    assert_int_equal(endpoint_set_list(f->q, ID, 0, "interests", interests, 2, err, sizeof err),
                     0);
    const char *plan[] = { "pro" };
    assert_int_equal(endpoint_set_list(f->q, ID, 1, "plan", plan, 1, err, sizeof err), 0);
    assert_int_equal(endpoint_set_metric(f->q, ID, "battery", 0.75, err, sizeof err), 0);
    assert_int_equal(endpoint_set_metric(f->q, ID, "battery", INFINITY, err, sizeof err),
                     EVREC_E_METRIC_VALUE);

    cJSON *root = profile(f->q, ID);
    const cJSON *loc = cJSON_GetObjectItem(root, "Location");
    assert_true(cJSON_GetObjectItem(loc, "Latitude")->valuedouble == 48.85);
    assert_true(cJSON_GetObjectItem(loc, "Longitude")->valuedouble == 2.35);
    const cJSON *attr = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "Attributes"), "interests");
    assert_int_equal(cJSON_GetArraySize(attr), 2);
    assert_string_equal(cJSON_GetArrayItem(attr, 1)->valuestring, "music");
    const cJSON *ua = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "User"),
                                                              "UserAttributes"), "plan");
    assert_string_equal(cJSON_GetArrayItem(ua, 0)->valuestring, "pro");
    assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "Metrics"), "battery")->valuedouble
                == 0.75);
    cJSON_Delete(root);

    char *json = NULL;
    assert_int_equal(endpoint_get_json(f->q, ID, &json), 0);
    assert_int_equal(validate_shape(json, NULL), 0);
    port_free(json);

    /* Limits through the setters. */
    const char *vals[51];
    for (int i = 0; i < 51; i++)
        vals[i] = "v";
    assert_int_equal(endpoint_set_list(f->q, ID, 0, "many", vals, 50, err, sizeof err), 0);
    assert_int_equal(endpoint_set_list(f->q, ID, 0, "many", vals, 51, err, sizeof err),
                     EVREC_E_TOO_MANY_VALUES);
    char *v101 = tu_repeat("v", 101);
    const char *longv[] = { v101 };
    assert_int_equal(endpoint_set_list(f->q, ID, 1, "plan", longv, 1, err, sizeof err),
                     EVREC_E_VALUE_LENGTH);
    assert_non_null(strstr(err, "User.UserAttributes.plan[0]"));
    free(v101);
    assert_int_equal(endpoint_set_list(f->q, ID, 0, "", interests, 1, err, sizeof err),
                     EVREC_E_NAME_LENGTH);
    const char *with_null[] = { "a", NULL };
    assert_int_equal(endpoint_set_list(f->q, ID, 0, "x", with_null, 2, err, sizeof err),
                     EVREC_E_INVALID);

    /* n == 0 removes; a User left without attributes and id disappears. */
    assert_int_equal(endpoint_set_list(f->q, ID, 0, "interests", NULL, 0, err, sizeof err), 0);
    assert_int_equal(endpoint_set_list(f->q, ID, 0, "many", NULL, 0, err, sizeof err), 0);
    assert_int_equal(endpoint_set_list(f->q, ID, 1, "plan", NULL, 0, err, sizeof err), 0);
    assert_int_equal(endpoint_set_list(f->q, ID, 1, "absent", NULL, 0, err, sizeof err), 0);
    root = profile(f->q, ID);
    assert_null(cJSON_GetObjectItem(root, "Attributes"));
    assert_null(cJSON_GetObjectItem(root, "User"));
    assert_non_null(cJSON_GetObjectItem(root, "Metrics"));
    cJSON_Delete(root);
}

static void attribute_quota_through_setters(void **state)
{
    fixture_t *f = *state;
    char err[256], name[16];
    const char *v[] = { "v" };
    for (int i = 0; i < 125; i++) {
        snprintf(name, sizeof name, "a%d", i);
        assert_int_equal(endpoint_set_list(f->q, ID, i % 2, name, v, 1, err, sizeof err), 0);
    }
    for (int i = 0; i < 125; i++) {
        snprintf(name, sizeof name, "m%d", i);
        assert_int_equal(endpoint_set_metric(f->q, ID, name, i, err, sizeof err), 0);
    }
    /* Replacing an existing name is not a new attribute. */
    assert_int_equal(endpoint_set_metric(f->q, ID, "m0", 7, err, sizeof err), 0);
    assert_int_equal(endpoint_set_metric(f->q, ID, "m125", 1, err, sizeof err),
                     EVREC_E_TOO_MANY_FIELDS);
    assert_non_null(strstr(err, "250"));
    assert_int_equal(endpoint_set_list(f->q, ID, 1, "u-extra", v, 1, err, sizeof err),
                     EVREC_E_TOO_MANY_FIELDS);
    char *json = NULL;
    assert_int_equal(endpoint_get_json(f->q, ID, &json), 0);
    assert_null(strstr(json, "m125"));
    assert_int_equal(validate_shape(json, NULL), 0);
    port_free(json);
}

static void replace_with_json(void **state)
{
    fixture_t *f = *state;
    char err[256];
    assert_int_equal(endpoint_set_field(f->q, ID, "Address", "old", err, sizeof err), 0);
    const char *doc = "{\"ChannelType\":\"EMAIL\",\"Address\":\"a@example.com\","
                      "\"User\":{\"UserId\":\"u-9\"},\"Location\":{\"Country\":\"FR\"}}";
    assert_int_equal(endpoint_set_json(f->q, ID, doc, err, sizeof err), 0);
    cJSON *root = profile(f->q, ID);
    assert_string_equal(str_at(root, NULL, "Address"), "a@example.com");
    assert_string_equal(str_at(root, "User", "UserId"), "u-9");
    cJSON_Delete(root);
    char uid[8];
    assert_int_equal(endpoint_user_id(f->q, ID, uid, sizeof uid), 0);
    assert_string_equal(uid, "u-9");
    assert_int_equal(endpoint_user_id(f->q, ID, uid, 3), EVREC_E_INVALID);

    /* A refused document changes nothing. */
    assert_int_equal(endpoint_set_json(f->q, ID, "{\"ChannelType\":\"FAX\"}", err, sizeof err),
                     EVREC_E_ENUM);
    assert_int_equal(endpoint_set_json(f->q, ID, "{not json", err, sizeof err), EVREC_E_JSON);
    assert_int_equal(endpoint_set_json(f->q, ID, "[]", err, sizeof err), EVREC_E_JSON);
    /* what cJSON takes but would store changed: a key twice, a NUL, a second value */
    assert_int_equal(endpoint_set_json(f->q, ID, "{\"Address\":\"x\",\"Address\":\"y\"}", err,
                                       sizeof err), EVREC_E_JSON);
    assert_non_null(strstr(err, "\"Address\" more than once"));
    assert_int_equal(endpoint_set_json(f->q, ID, "{\"Address\":\"a\\u0000b\"}", err, sizeof err),
                     EVREC_E_JSON);
    assert_non_null(strstr(err, "NUL"));
    assert_int_equal(endpoint_set_json(f->q, ID, "{\"Address\":\"x\"} {}", err, sizeof err),
                     EVREC_E_JSON);
    assert_non_null(strstr(err, "followed by more text"));
    assert_int_equal(endpoint_validate_json("{\"Address\":\"x\",\"Address\":\"y\"}", 0, err,
                                            sizeof err), EVREC_E_JSON);
    root = profile(f->q, ID);
    assert_string_equal(str_at(root, NULL, "ChannelType"), "EMAIL");
    cJSON_Delete(root);
    /* Later field changes apply on top of the replaced profile. */
    assert_int_equal(endpoint_set_field(f->q, ID, "Demographic.Make", "acme", err, sizeof err), 0);
    char *json = NULL;
    assert_int_equal(endpoint_get_json(f->q, ID, &json), 0);
    assert_non_null(strstr(json, "\"Make\":\"acme\""));
    assert_non_null(strstr(json, "a@example.com"));
    assert_int_equal(validate_shape(json, NULL), 0);
    port_free(json);
    /* Profiles are per endpoint. */
    assert_int_equal(endpoint_set_field(f->q, "other", "Address", "x", err, sizeof err), 0);
    root = profile(f->q, ID);
    assert_string_equal(str_at(root, NULL, "Address"), "a@example.com");
    cJSON_Delete(root);
}

/* Second-process role (main() with --print-default-id DIR): open the store, print its default
 * endpoint id. A store is opened once per process, so "another opener" is another process. */
static int print_default_id(const char *dir)
{
    queue_config_t c = config();
    evrec_queue_t *q = NULL;
    char id[EVREC_ID_MAX] = "", err[256] = "";
    int rc = queue_open(&q, dir, &c, err, sizeof err);
    if (rc == 0)
        rc = endpoint_default_id(q, NULL, id, sizeof id, err, sizeof err);
    queue_close(q);
    if (rc) {
        fprintf(stderr, "%d %s\n", rc, err);
        return 1;
    }
    printf("%s", id);
    return 0;
}

/* The default id as another process sees it while this one has the store open (malloc'ed). */
static char *id_from_other_process(const char *dir)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    /* Under an emulator (cross builds: EVREC_TEST_RUNNER is "qemu-... -L ..."), the second
     * process must be started through it too. */
    const char *argv[32];
    int n_args = 0;
    char *runner = getenv("EVREC_TEST_RUNNER") ? strdup(getenv("EVREC_TEST_RUNNER")) : NULL;
    char *save = NULL;
    for (char *w = runner ? strtok_r(runner, " ", &save) : NULL; w && n_args < 28;
         w = strtok_r(NULL, " ", &save))
        argv[n_args++] = w;
    argv[n_args++] = self;
    argv[n_args++] = "--print-default-id";
    argv[n_args++] = dir;
    argv[n_args] = NULL;
    char *out = NULL, *err = NULL;
    int rc = tu_run(argv, NULL, &out, &err);
    free(runner);
    if (rc)
        fprintf(stderr, "second process: %s\n", err);
    assert_int_equal(rc, 0);
    free(err);
    return out;
}

static void default_id_persisted_and_shared(void **state)
{
    fixture_t *f = *state;
    char a[EVREC_ID_MAX], b[EVREC_ID_MAX], err[256];
    assert_int_equal(endpoint_default_id(f->q, NULL, a, sizeof a, err, sizeof err), 0);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '4');
    assert_int_equal(endpoint_default_id(f->q, NULL, b, sizeof b, err, sizeof err), 0);
    assert_string_equal(a, b);

    /* Another process with the same store open at the same time agrees. */
    char *other = id_from_other_process(f->dir);
    assert_string_equal(other, a);
    free(other);
    /* So does a reopen after close. */
    queue_close(f->q);
    f->q = open_store(f->dir);
    assert_int_equal(endpoint_default_id(f->q, NULL, b, sizeof b, err, sizeof err), 0);
    assert_string_equal(a, b);
    char *stored = NULL;
    size_t len = 0;
    assert_int_equal(queue_meta_get(f->q, QUEUE_META_ENDPOINT_ID, &stored, &len), 0);
    assert_int_equal(len, 36);
    assert_memory_equal(stored, a, 36);
    port_free(stored);

    /* A fresh store gets a different id. */
    char *dir2 = tu_tempdir("endpoint2");
    evrec_queue_t *q2 = open_store(dir2);
    assert_int_equal(endpoint_default_id(q2, NULL, b, sizeof b, err, sizeof err), 0);
    assert_string_not_equal(a, b);
    queue_close(q2);
    tu_rmtree(dir2);
    free(dir2);

    /* An override is validated and used as it is, without touching the stored id. */
    assert_int_equal(endpoint_default_id(f->q, "gateway-7", b, sizeof b, err, sizeof err), 0);
    assert_string_equal(b, "gateway-7");
    assert_int_equal(endpoint_default_id(f->q, "bad id", b, sizeof b, err, sizeof err),
                     EVREC_E_ID);
    assert_non_null(strstr(err, "endpoint id"));
    assert_int_equal(endpoint_default_id(f->q, "", b, sizeof b, err, sizeof err), EVREC_E_ID);
    assert_int_equal(endpoint_default_id(f->q, NULL, b, 10, err, sizeof err), EVREC_E_INVALID);
    assert_int_equal(endpoint_default_id(f->q, NULL, b, sizeof b, err, sizeof err), 0);
    assert_string_equal(a, b);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--print-default-id") == 0)
        return print_default_id(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_full_profile),
        cmocka_unit_test(enums),
        cmocka_unit_test(shape_errors),
        cmocka_unit_test(location_ranges),
        cmocka_unit_test(name_value_and_count_limits),
        cmocka_unit_test(size_limit),
        cmocka_unit_test_setup_teardown(set_and_remove_each_field, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_changes_leave_the_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(location_lists_and_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(attribute_quota_through_setters, setup, teardown),
        cmocka_unit_test_setup_teardown(replace_with_json, setup, teardown),
        cmocka_unit_test_setup_teardown(default_id_persisted_and_shared, setup, teardown),
    };
    return cmocka_run_group_tests_name("endpoint", tests, NULL, NULL);
}
