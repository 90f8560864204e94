/*
 * Endpoint profiles: the Pinpoint PublicEndpoint shape, validated and stored as JSON.
 *
 * The whole profile is validated after every change (not only the member that changed), so the
 * store never holds a profile the service would refuse for its quotas. Reading of the quotas:
 * Pinpoint allows 250 attributes "assigned to the Attributes, Metrics, and UserAttributes
 * parameters" collectively, per application; a device sees only its own endpoints, so evrec
 * counts the names in those three maps per endpoint. Names <= 50 characters, attribute values
 * <= 100 characters, <= 50 values per attribute, 15 KB per endpoint (counted as 15,000 bytes
 * of unformatted JSON). The model gives ChannelType's enum; its documentation gives the values
 * of EndpointStatus (ACTIVE, INACTIVE) and OptOut (ALL, NONE) and says EffectiveDate is ISO 8601.
 */
#include "endpoint.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "event.h"
#include "port.h"
#include "util_str.h"
#include "util_utf8.h"

static const char *const channel_types[] = {
    "PUSH", "GCM", "APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "ADM",
    "SMS", "VOICE", "EMAIL", "BAIDU", "CUSTOM", "IN_APP", NULL,
};
static const char *const endpoint_statuses[] = { "ACTIVE", "INACTIVE", NULL };
static const char *const opt_outs[] = { "ALL", "NONE", NULL };
static const char *const demographic_members[] = {
    "AppVersion", "Locale", "Make", "Model", "ModelVersion", "Platform", "PlatformVersion",
    "Timezone", NULL,
};
static const char *const location_strings[] = { "City", "Country", "PostalCode", "Region", NULL };

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Validation of a PublicEndpoint tree                                                       */
/* ---------------------------------------------------------------------------------------- */

typedef struct vctx {
    char *err;
    size_t errlen;
    int nattrs; /* Attributes + UserAttributes + Metrics names */
} vctx_t;

/* A member name that appears twice in one object would count twice and confuse readers. */
static int check_unique(vctx_t *v, const cJSON *obj, const char *where)
{
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return util_failf(v->err, v->errlen, EVREC_E_JSON,
                                    "%s has member \"%.50s\" twice", where, a->string);
    return EVREC_OK;
}

static int check_string(vctx_t *v, const cJSON *item, const char *where)
{
    if (!cJSON_IsString(item))
        return util_failf(v->err, v->errlen, EVREC_E_JSON, "%s must be a string", where);
    if (util_utf8_chars(item->valuestring, strlen(item->valuestring)) < 0)
        return util_failf(v->err, v->errlen, EVREC_E_UTF8, "%s is not valid UTF-8", where);
    return EVREC_OK;
}

static int check_enum(vctx_t *v, const cJSON *item, const char *where, const char *const *values)
{
    int rc = check_string(v, item, where);
    if (rc)
        return rc;
    if (!in_list(values, item->valuestring)) {
        char list[256] = "";
        for (const char *const *p = values; *p; p++) {
            strncat(list, *p, sizeof list - strlen(list) - 1);
            if (p[1])
                strncat(list, ", ", sizeof list - strlen(list) - 1);
        }
        return util_failf(v->err, v->errlen, EVREC_E_ENUM,
                            "%s \"%.40s\" is not one of %s", where, item->valuestring, list);
    }
    return EVREC_OK;
}

static int check_name(vctx_t *v, const char *name, const char *where)
{
    long n = util_utf8_chars(name, strlen(name));
    if (n < 0)
        return util_failf(v->err, v->errlen, EVREC_E_UTF8, "%s name is not valid UTF-8", where);
    if (n == 0 || n > ENDPOINT_NAME_MAX)
        return util_failf(v->err, v->errlen, EVREC_E_NAME_LENGTH,
                            "%s name \"%.50s\" is %ld characters; names are 1..%d", where, name,
                            n, ENDPOINT_NAME_MAX);
    return EVREC_OK;
}

/* Attributes / User.UserAttributes: name -> list of strings. */
static int check_list_map(vctx_t *v, const cJSON *map, const char *where)
{
    if (!cJSON_IsObject(map))
        return util_failf(v->err, v->errlen, EVREC_E_JSON,
                            "%s must be an object of string lists", where);
    int rc = check_unique(v, map, where);
    if (rc)
        return rc;
    const cJSON *attr;
    cJSON_ArrayForEach(attr, map)
    {
        if ((rc = check_name(v, attr->string, where)))
            return rc;
        if (!cJSON_IsArray(attr))
            return util_failf(v->err, v->errlen, EVREC_E_JSON,
                                "%s.%s must be a list of strings", where, attr->string);
        int nvalues = cJSON_GetArraySize(attr);
        if (nvalues > ENDPOINT_VALUES_MAX)
            return util_failf(v->err, v->errlen, EVREC_E_TOO_MANY_VALUES,
                                "%s.%s has %d values, more than %d", where, attr->string,
                                nvalues, ENDPOINT_VALUES_MAX);
        int i = 0;
        const cJSON *val;
        cJSON_ArrayForEach(val, attr)
        {
            if (!cJSON_IsString(val))
                return util_failf(v->err, v->errlen, EVREC_E_JSON,
                                    "%s.%s[%d] must be a string", where, attr->string, i);
            long n = util_utf8_chars(val->valuestring, strlen(val->valuestring));
            if (n < 0)
                return util_failf(v->err, v->errlen, EVREC_E_UTF8,
                                    "%s.%s[%d] is not valid UTF-8", where, attr->string, i);
            if (n > ENDPOINT_VALUE_MAX)
                return util_failf(v->err, v->errlen, EVREC_E_VALUE_LENGTH,
                                    "%s.%s[%d] is %ld characters, more than %d", where,
                                    attr->string, i, n, ENDPOINT_VALUE_MAX);
            i++;
        }
        v->nattrs++;
    }
    return EVREC_OK;
}

static int check_metrics(vctx_t *v, const cJSON *map)
{
    if (!cJSON_IsObject(map))
        return util_failf(v->err, v->errlen, EVREC_E_JSON, "Metrics must be an object of numbers");
    int rc = check_unique(v, map, "Metrics");
    if (rc)
        return rc;
    const cJSON *m;
    cJSON_ArrayForEach(m, map)
    {
        if ((rc = check_name(v, m->string, "Metrics")))
            return rc;
        if (!cJSON_IsNumber(m))
            return util_failf(v->err, v->errlen, EVREC_E_JSON, "Metrics.%s must be a number",
                                m->string);
        if (!isfinite(m->valuedouble))
            return util_failf(v->err, v->errlen, EVREC_E_METRIC_VALUE,
                                "Metrics.%s is not a finite number", m->string);
        v->nattrs++;
    }
    return EVREC_OK;
}

/* A sub-object (Demographic, Location, User) whose members are checked by `member`. */
static int check_object(vctx_t *v, const cJSON *obj, const char *where,
                        int (*member)(vctx_t *, const cJSON *))
{
    if (!cJSON_IsObject(obj))
        return util_failf(v->err, v->errlen, EVREC_E_JSON, "%s must be an object", where);
    int rc = check_unique(v, obj, where);
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        if (rc)
            break;
        rc = member(v, it);
    }
    return rc;
}

static int unknown(vctx_t *v, const char *where, const char *name)
{
    return util_failf(v->err, v->errlen, EVREC_E_JSON, "unknown member \"%s%s%.50s\"", where,
                        *where ? "." : "", name);
}

static int demographic_member(vctx_t *v, const cJSON *it)
{
    char where[80];
    snprintf(where, sizeof where, "Demographic.%.50s", it->string);
    return in_list(demographic_members, it->string) ? check_string(v, it, where)
                                                    : unknown(v, "Demographic", it->string);
}

static int check_degrees(vctx_t *v, const char *where, double value, double limit)
{
    if (!isfinite(value) || value < -limit || value > limit)
        return util_failf(v->err, v->errlen, EVREC_E_INVALID,
                            "%s %g is outside -%g..%g degrees", where, value, limit, limit);
    return EVREC_OK;
}

static int location_member(vctx_t *v, const cJSON *it)
{
    char where[80];
    snprintf(where, sizeof where, "Location.%.50s", it->string);
    if (in_list(location_strings, it->string))
        return check_string(v, it, where);
    int lat = strcmp(it->string, "Latitude") == 0;
    if (!lat && strcmp(it->string, "Longitude") != 0)
        return unknown(v, "Location", it->string);
    if (!cJSON_IsNumber(it))
        return util_failf(v->err, v->errlen, EVREC_E_JSON, "%s must be a number", where);
    return check_degrees(v, where, it->valuedouble, lat ? 90.0 : 180.0);
}

static int user_member(vctx_t *v, const cJSON *it)
{
    if (strcmp(it->string, "UserId") == 0)
        return check_string(v, it, "User.UserId");
    if (strcmp(it->string, "UserAttributes") == 0)
        return check_list_map(v, it, "User.UserAttributes");
    return unknown(v, "User", it->string);
}

static int top_member(vctx_t *v, const cJSON *it)
{
    const char *k = it->string;
    if (strcmp(k, "Address") == 0 || strcmp(k, "RequestId") == 0)
        return check_string(v, it, k);
    if (strcmp(k, "ChannelType") == 0)
        return check_enum(v, it, k, channel_types);
    if (strcmp(k, "EndpointStatus") == 0)
        return check_enum(v, it, k, endpoint_statuses);
    if (strcmp(k, "OptOut") == 0)
        return check_enum(v, it, k, opt_outs);
    if (strcmp(k, "EffectiveDate") == 0) {
        int64_t ms;
        int rc = check_string(v, it, k);
        if (!rc && event_parse_iso8601(it->valuestring, &ms))
            rc = util_failf(v->err, v->errlen, EVREC_E_TIMESTAMP,
                              "EffectiveDate \"%.40s\" is not an ISO 8601 date-time", it->valuestring);
        return rc;
    }
    if (strcmp(k, "Demographic") == 0)
        return check_object(v, it, k, demographic_member);
    if (strcmp(k, "Location") == 0)
        return check_object(v, it, k, location_member);
    if (strcmp(k, "User") == 0)
        return check_object(v, it, k, user_member);
    if (strcmp(k, "Attributes") == 0)
        return check_list_map(v, it, k);
    if (strcmp(k, "Metrics") == 0)
        return check_metrics(v, it);
    return unknown(v, "", k);
}

/* Validate the tree and print it; *out is port_malloc'ed unformatted JSON. */
static int validate_and_print(const cJSON *root, char **out, size_t *outlen, char *err,
                              size_t errlen)
{
    vctx_t v = { err, errlen, 0 };
    int rc = check_object(&v, root, "the endpoint profile", top_member);
    if (rc)
        return rc;
    if (v.nattrs > ENDPOINT_ATTRS_MAX)
        return util_failf(err, errlen, EVREC_E_TOO_MANY_FIELDS,
                            "the profile has %d attributes (Attributes + User.UserAttributes + "
                            "Metrics), more than %d", v.nattrs, ENDPOINT_ATTRS_MAX);
    char *txt = cJSON_PrintUnformatted(root);
    if (!txt)
        return EVREC_E_NOMEM;
    size_t len = strlen(txt);
    if (len > ENDPOINT_MAX_BYTES) {
        cJSON_free(txt);
        return util_failf(err, errlen, EVREC_E_EVENT_SIZE,
                            "the encoded profile is %zu bytes, more than %d", len,
                            ENDPOINT_MAX_BYTES);
    }
    rc = EVREC_OK;
    if (out) {
        *out = port_strndup(txt, len);
        *outlen = len;
        if (!*out)
            rc = EVREC_E_NOMEM;
    }
    cJSON_free(txt);
    return rc;
}

int endpoint_validate_json(const char *json, size_t len, char *err, size_t errlen)
{
    if (!json)
        return util_failf(err, errlen, EVREC_E_INVALID, "no profile JSON given");
    cJSON *root = event_json_parse(json, len ? len : strlen(json), "the endpoint profile", err,
                                   errlen);
    if (!root)
        return EVREC_E_JSON;
    int rc = validate_and_print(root, NULL, NULL, err, errlen);
    cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Changes, each inside one write transaction                                                */
/* ---------------------------------------------------------------------------------------- */

typedef struct edit edit_t;
struct edit {
    int (*apply)(edit_t *e, cJSON *root);
    const char *field;      /* set_field: path; set_list / set_metric: the name */
    const char *value;      /* set_field: NULL removes */
    double a, b;            /* location (lat, lon) or metric value (a) */
    int user_attributes;
    const char *const *values;
    size_t n;
    const char *json;       /* set_json */
    char *err;
    size_t errlen;
};

/* The object `name` under parent, created if `create`. */
static cJSON *child_object(cJSON *parent, const char *name, int create)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, name);
    if (!o && create)
        o = cJSON_AddObjectToObject(parent, name);
    return o;
}

/* Set (item != NULL) or remove a member; a section left empty is removed too. */
static int put_member(cJSON *root, const char *section, const char *name, cJSON *item)
{
    cJSON *parent = section ? child_object(root, section, item != NULL) : root;
    if (!parent) {
        if (!item)
            return EVREC_OK; /* removing from a section that does not exist */
        cJSON_Delete(item); /* the section could not be created */
        return EVREC_E_NOMEM;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(parent, name);
    if (item && !cJSON_AddItemToObject(parent, name, item)) {
        cJSON_Delete(item);
        return EVREC_E_NOMEM;
    }
    if (section && !parent->child)
        cJSON_DeleteItemFromObjectCaseSensitive(root, section);
    return EVREC_OK;
}

static int apply_field(edit_t *e, cJSON *root)
{
    static const char *const top[] = {
        "Address", "ChannelType", "EffectiveDate", "EndpointStatus", "OptOut", "RequestId", NULL,
    };
    const char *f = e->field, *dot = strchr(f, '.');
    char section[16] = "";
    const char *name = f;
    if (dot) {
        size_t sl = (size_t)(dot - f);
        name = dot + 1;
        if (sl < sizeof section) {
            memcpy(section, f, sl);
            section[sl] = '\0';
        }
    }
    int known = dot ? (strcmp(section, "Demographic") == 0 && in_list(demographic_members, name)) ||
                          (strcmp(section, "Location") == 0 && in_list(location_strings, name)) ||
                          (strcmp(section, "User") == 0 && strcmp(name, "UserId") == 0)
                    : in_list(top, f);
    if (!known)
        return util_failf(e->err, e->errlen, EVREC_E_INVALID,
                            "\"%.60s\" is not a settable PublicEndpoint field (Location.Latitude "
                            "and Longitude: use set_location)", f);
    cJSON *item = NULL;
    if (e->value && !(item = cJSON_CreateString(e->value)))
        return EVREC_E_NOMEM;
    return put_member(root, dot ? section : NULL, name, item);
}

static int apply_location(edit_t *e, cJSON *root)
{
    vctx_t v = { e->err, e->errlen, 0 };
    int rc = check_degrees(&v, "Location.Latitude", e->a, 90.0);
    if (!rc)
        rc = check_degrees(&v, "Location.Longitude", e->b, 180.0);
    /* A NULL item means "remove" to put_member: an allocation failure must not read as one. */
    cJSON *lat = rc ? NULL : cJSON_CreateNumber(e->a);
    if (!rc && !lat)
        rc = EVREC_E_NOMEM;
    if (!rc)
        rc = put_member(root, "Location", "Latitude", lat);
    cJSON *lon = rc ? NULL : cJSON_CreateNumber(e->b);
    if (!rc && !lon)
        rc = EVREC_E_NOMEM;
    if (!rc)
        rc = put_member(root, "Location", "Longitude", lon);
    return rc;
}

static int apply_list(edit_t *e, cJSON *root)
{
    if (e->n > 0 && !e->values)
        return util_failf(e->err, e->errlen, EVREC_E_INVALID, "values is NULL");
    if (e->n > ENDPOINT_VALUES_MAX) /* before building a huge array */
        return util_failf(e->err, e->errlen, EVREC_E_TOO_MANY_VALUES,
                            "attribute \"%.50s\" has %zu values, more than %d", e->field, e->n,
                            ENDPOINT_VALUES_MAX);
    cJSON *section = root;
    const char *map = "Attributes";
    if (e->user_attributes) {
        section = child_object(root, "User", e->n > 0);
        map = "UserAttributes";
        if (!section)
            return EVREC_OK;
    }
    cJSON *list = NULL;
    if (e->n > 0) {
        if (!(list = cJSON_CreateArray()))
            return EVREC_E_NOMEM;
        for (size_t i = 0; i < e->n; i++) {
            if (!e->values[i]) {
                cJSON_Delete(list);
                return util_failf(e->err, e->errlen, EVREC_E_INVALID,
                                    "attribute \"%.50s\" value %zu is NULL", e->field, i);
            }
            cJSON *s = cJSON_CreateString(e->values[i]);
            if (!s || !cJSON_AddItemToArray(list, s)) {
                cJSON_Delete(s);
                cJSON_Delete(list);
                return EVREC_E_NOMEM;
            }
        }
    }
    int rc = put_member(section, map, e->field, list);
    if (!rc && e->user_attributes && !section->child)
        cJSON_DeleteItemFromObjectCaseSensitive(root, "User");
    return rc;
}

static int apply_metric(edit_t *e, cJSON *root)
{
    cJSON *value = cJSON_CreateNumber(e->a);
    if (!value)
        return EVREC_E_NOMEM; /* not a removal */
    return put_member(root, "Metrics", e->field, value);
}

static int edit_cb(void *user, const char *old_json, size_t old_len, char **new_json,
                   size_t *new_len)
{
    edit_t *e = user;
    cJSON *root;
    if (e->json) {
        /* a NUL in a string, a key twice, text after the profile: refused, not changed */
        root = event_json_parse(e->json, strlen(e->json), "the endpoint profile", e->err,
                                e->errlen);
        if (!root)
            return EVREC_E_JSON;
    } else {
        root = old_json && old_len ? cJSON_ParseWithLength(old_json, old_len) : cJSON_CreateObject();
        if (!cJSON_IsObject(root)) {
            cJSON_Delete(root);
            return util_failf(e->err, e->errlen, EVREC_E_CORRUPT,
                                "the stored endpoint profile is not a JSON object");
        }
    }
    int rc = e->apply ? e->apply(e, root) : EVREC_OK;
    if (!rc)
        rc = validate_and_print(root, new_json, new_len, e->err, e->errlen);
    cJSON_Delete(root);
    return rc;
}

static int run_edit(evrec_queue_t *q, const char *id, edit_t *e)
{
    if (e->err && e->errlen)
        e->err[0] = '\0';
    if (!q)
        return util_failf(e->err, e->errlen, EVREC_E_INVALID, "no store");
    int rc = event_check_id("endpoint id", id, e->err, e->errlen);
    if (rc)
        return rc;
    rc = queue_endpoint_update(q, id, edit_cb, e);
    if (rc && e->err && e->errlen && !e->err[0])
        util_failf(e->err, e->errlen, rc, "storing the endpoint profile failed: %s",
                     evrec_strerror(rc));
    return rc;
}

int endpoint_set_field(evrec_queue_t *q, const char *id, const char *field, const char *value,
                       char *err, size_t errlen)
{
    if (!field)
        return util_failf(err, errlen, EVREC_E_INVALID, "no field given");
    edit_t e = { .apply = apply_field, .field = field, .value = value, .err = err,
                 .errlen = errlen };
    return run_edit(q, id, &e);
}

int endpoint_set_location(evrec_queue_t *q, const char *id, double latitude, double longitude,
                          char *err, size_t errlen)
{
    edit_t e = { .apply = apply_location, .a = latitude, .b = longitude, .err = err,
                 .errlen = errlen };
    return run_edit(q, id, &e);
}

int endpoint_set_list(evrec_queue_t *q, const char *id, int user_attributes, const char *name,
                      const char *const *values, size_t n, char *err, size_t errlen)
{
    if (!name)
        return util_failf(err, errlen, EVREC_E_NAME_LENGTH, "attribute name is missing");
    edit_t e = { .apply = apply_list, .field = name, .user_attributes = user_attributes,
                 .values = values, .n = n, .err = err, .errlen = errlen };
    return run_edit(q, id, &e);
}

int endpoint_set_metric(evrec_queue_t *q, const char *id, const char *name, double value,
                        char *err, size_t errlen)
{
    if (!name)
        return util_failf(err, errlen, EVREC_E_NAME_LENGTH, "metric name is missing");
    if (!isfinite(value))
        return util_failf(err, errlen, EVREC_E_METRIC_VALUE,
                            "Metrics.%.50s is not a finite number", name);
    edit_t e = { .apply = apply_metric, .field = name, .a = value, .err = err,
                 .errlen = errlen };
    return run_edit(q, id, &e);
}

int endpoint_set_json(evrec_queue_t *q, const char *id, const char *json, char *err,
                      size_t errlen)
{
    if (!json)
        return util_failf(err, errlen, EVREC_E_INVALID, "no profile JSON given");
    edit_t e = { .json = json, .err = err, .errlen = errlen };
    return run_edit(q, id, &e);
}

int endpoint_get_json(evrec_queue_t *q, const char *id, char **out)
{
    if (!q || !out || !id)
        return EVREC_E_INVALID;
    *out = NULL;
    uint32_t version;
    int rc = queue_endpoint_get(q, id, out, &version);
    if (rc == EVREC_E_NOT_FOUND) {
        *out = port_strdup("{}");
        return *out ? EVREC_OK : EVREC_E_NOMEM;
    }
    return rc;
}

int endpoint_user_id(evrec_queue_t *q, const char *id, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return EVREC_E_INVALID;
    out[0] = '\0';
    char *json = NULL;
    int rc = endpoint_get_json(q, id, &json);
    if (rc)
        return rc;
    cJSON *root = cJSON_Parse(json);
    port_free(json);
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "User"), "UserId");
    rc = EVREC_E_NOT_FOUND;
    if (cJSON_IsString(uid) && uid->valuestring[0]) {
        size_t n = strlen(uid->valuestring);
        rc = n < outlen ? EVREC_OK : EVREC_E_INVALID;
        if (!rc)
            memcpy(out, uid->valuestring, n + 1);
    }
    cJSON_Delete(root);
    return rc;
}

int endpoint_default_id(evrec_queue_t *q, const char *override, char *out, size_t outlen,
                        char *err, size_t errlen)
{
    if (!out || outlen == 0)
        return util_failf(err, errlen, EVREC_E_INVALID, "no room for the endpoint id");
    out[0] = '\0';
    const char *id = override;
    char *stored = NULL;
    char fresh[37];
    int rc;
    if (!id) {
        if (!q)
            return util_failf(err, errlen, EVREC_E_INVALID, "no store");
        if ((rc = event_uuid_v4(fresh)))
            return util_failf(err, errlen, rc, "no secure random bytes for the endpoint id");
        /* Whoever stores first wins; every process sharing the store reads the same id. */
        if ((rc = queue_meta_put_if_absent(q, QUEUE_META_ENDPOINT_ID, fresh, &stored)))
            return util_failf(err, errlen, rc, "storing the endpoint id failed: %s",
                                evrec_strerror(rc));
        id = stored;
    }
    rc = event_check_id(override ? "endpoint id" : "stored endpoint id", id, err, errlen);
    if (!rc && strlen(id) >= outlen)
        rc = util_failf(err, errlen, EVREC_E_INVALID, "no room for the endpoint id");
    if (!rc)
        memcpy(out, id, strlen(id) + 1);
    port_free(stored);
    return rc;
}
