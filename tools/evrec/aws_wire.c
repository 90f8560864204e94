/* rest-json and json request serialisation and response parsing (see aws_wire.h). */
#define _GNU_SOURCE
#include "aws_wire.h"

#include <math.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "port.h"
#include "util_str.h"
#include "validate.h"

static const model_member_t *find_member(const model_shape_t *s, const char *name)
{
    for (size_t i = 0; i < s->nmembers; i++)
        if (strcmp(s->members[i].name, name) == 0)
            return &s->members[i];
    return NULL;
}

/* botocore's percent_encode: everything but unreserved characters (the library's one
 * percent-encoding, libcurl's). */
static void percent_encode(sbuf_t *b, const char *s)
{
    size_t cap = 3 * strlen(s) + 1;
    char *e = port_malloc(cap);
    if (e && util_percent_encode(s, e, cap) == 0)
        sb_puts(b, e);
    else
        b->oom = 1; /* the label is missing: wire_serialize fails */
    port_free(e);
}

static cJSON *serialize_value(const cJSON *v, int shape);

/* Adds item under key (to an array when key is NULL); on failure (item NULL, out of memory)
 * frees item and container and returns NULL: a request is whole or not made. */
static cJSON *add_or_drop(cJSON *container, const char *key, cJSON *item)
{
    if (!container || !item ||
        !(key ? cJSON_AddItemToObject(container, key, item)
              : cJSON_AddItemToArray(container, item))) {
        cJSON_Delete(item);
        cJSON_Delete(container);
        return NULL;
    }
    return container;
}

static cJSON *serialize_structure(const cJSON *v, const model_shape_t *s)
{
    cJSON *out = cJSON_CreateObject();
    for (const cJSON *c = v->child; c && out; c = c->next) {
        const model_member_t *m = find_member(s, c->string);
        if (!m || cJSON_IsNull(c) || m->location)
            continue;
        out = add_or_drop(out, m->location_name ? m->location_name : m->name,
                          serialize_value(c, m->shape));
    }
    return out;
}

static cJSON *serialize_value(const cJSON *v, int shape)
{
    const model_shape_t *s = &model_shapes[shape];
    switch (s->type) {
    case MT_STRUCTURE:
        return serialize_structure(v, s);
    case MT_LIST: {
        cJSON *out = cJSON_CreateArray();
        for (const cJSON *c = v->child; c && out; c = c->next)
            out = add_or_drop(out, NULL, serialize_value(c, s->member));
        return out;
    }
    case MT_MAP: {
        cJSON *out = cJSON_CreateObject();
        for (const cJSON *c = v->child; c && out; c = c->next)
            out = add_or_drop(out, c->string, serialize_value(c, s->value));
        return out;
    }
    case MT_TIMESTAMP: {
        double t = 0;
        timestamp_parse(v, &t);
        if (s->timestamp_format && strcmp(s->timestamp_format, "iso8601") == 0) {
            time_t secs = (time_t)floor(t);
            struct tm tm;
            gmtime_r(&secs, &tm);
            char buf[40];
            strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
            return cJSON_CreateString(buf);
        }
        /* int(calendar.timegm(value.timetuple())): whole seconds, rounded down */
        return pyjson_int((long long)floor(t));
    }
    default:
        return pyjson_dup(v);
    }
}

int wire_is_json(const model_operation_t *op) { return strcmp(op->protocol, "json") == 0; }

/* The request body from doc (freed); -1 with "out of memory" when doc, the path or the body
 * could not be built whole. */
static int dump_body(cJSON *doc, const sbuf_t *path, sbuf_t *body, char *err, size_t errlen)
{
    if (doc)
        pyjson_dump_ascii(body, doc);
    cJSON_Delete(doc);
    if (!doc || path->oom || body->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int wire_serialize(const model_operation_t *op, const cJSON *params, sbuf_t *path, sbuf_t *body,
                   char *err, size_t errlen)
{
    const model_shape_t *in = &model_shapes[op->input];
    if (wire_is_json(op)) {
        /* json: POST to the request URI, every member in the body (the target is a header) */
        sb_puts(path, op->request_uri);
        return dump_body(serialize_structure(params, in), path, body, err, errlen);
    }
    for (const char *p = op->request_uri; *p; p++) {
        if (*p != '{') {
            sb_putc(path, *p);
            continue;
        }
        const char *end = strchr(p, '}');
        if (!end)
            break;
        char label[128];
        snprintf(label, sizeof label, "%.*s", (int)(end - p - 1), p + 1);
        const cJSON *v = NULL;
        for (size_t i = 0; i < in->nmembers; i++)
            if (in->members[i].location && strcmp(in->members[i].location, "uri") == 0 &&
                strcmp(in->members[i].location_name, label) == 0)
                v = cJSON_GetObjectItemCaseSensitive(params, in->members[i].name);
        if (!cJSON_IsString(v)) {
            snprintf(err, errlen, "missing URI label %s", label);
            return -1;
        }
        percent_encode(path, v->valuestring);
        p = end;
    }
    const model_member_t *payload = NULL;
    for (size_t i = 0; i < in->nmembers; i++)
        if (in->members[i].payload)
            payload = &in->members[i];
    cJSON *doc;
    if (payload) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, payload->name);
        doc = v ? serialize_value(v, payload->shape) : cJSON_CreateObject();
    } else {
        doc = serialize_structure(params, in);
    }
    return dump_body(doc, path, body, err, errlen);
}

/* -- responses ------------------------------------------------------------------------------- */

static cJSON *body_json(const char *body, size_t len)
{
    cJSON *v = NULL;
    char err[256];
    if (!body || len == 0)
        return cJSON_CreateObject();
    if (pyjson_parse(body, len, &v, err, sizeof err) != 0) {
        /* botocore: {'message': <the text>} */
        v = cJSON_CreateObject();
        char *t = port_strndup(body, len);
        if (!t || !cJSON_AddStringToObject(v, "message", t)) {
            cJSON_Delete(v); /* the callers take NULL as out of memory */
            v = NULL;
        }
        port_free(t);
    }
    return v;
}

/* Python's name of v's type ("int" of "<class 'int'>"). */
static void py_type(sbuf_t *b, const cJSON *v)
{
    const char *t = pyjson_type_name(v) + 8;
    sb_putn(b, t, strlen(t) - 2);
}

/* botocore's _handle_structure: null stays None; anything else that is not an object fails
 * on value.get() (err set, the AWS CLI's 255). NULL when out of memory. */
static cJSON *parse_shape(const cJSON *v, int shape, sbuf_t *err)
{
    const model_shape_t *s = &model_shapes[shape];
    switch (s->type) {
    case MT_STRUCTURE: {
        if (cJSON_IsNull(v))
            return cJSON_CreateNull();
        if (!cJSON_IsObject(v)) {
            if (!err->len) {
                sb_putc(err, '\'');
                py_type(err, v);
                sb_puts(err, "' object has no attribute 'get'");
            }
            return cJSON_CreateNull();
        }
        cJSON *out = cJSON_CreateObject();
        for (size_t i = 0; i < s->nmembers; i++) {
            const model_member_t *m = &s->members[i];
            if (m->location)
                continue;
            const cJSON *raw =
                cJSON_GetObjectItemCaseSensitive(v, m->location_name ? m->location_name : m->name);
            if (out && raw && !cJSON_IsNull(raw))
                out = add_or_drop(out, m->name, parse_shape(raw, m->shape, err));
        }
        return out;
    }
    case MT_LIST: {
        cJSON *out = cJSON_CreateArray();
        if (cJSON_IsArray(v))
            for (const cJSON *c = v->child; c && out; c = c->next)
                out = add_or_drop(out, NULL, parse_shape(c, s->member, err));
        return out;
    }
    case MT_MAP: {
        cJSON *out = cJSON_CreateObject();
        if (cJSON_IsObject(v))
            for (const cJSON *c = v->child; c && out; c = c->next)
                out = add_or_drop(out, c->string, parse_shape(c, s->value, err));
        return out;
    }
    default:
        return pyjson_dup(v);
    }
}

int wire_parse_output(const model_operation_t *op, const char *body, size_t len,
                      int has_request_id, cJSON **result, sbuf_t *err)
{
    *result = NULL;
    if (op->output < 0) {
        *result = cJSON_CreateObject();
        if (!*result)
            sb_puts(err, "out of memory");
        return *result ? 0 : -1;
    }
    const model_shape_t *out = &model_shapes[op->output];
    cJSON *doc = body_json(body, len);
    cJSON *res = NULL;
    const model_member_t *payload = NULL;
    for (size_t i = 0; i < out->nmembers; i++)
        if (out->members[i].payload)
            payload = &out->members[i];
    if (!doc) {
        /* out of memory: below */
    } else if (payload) {
        /* a null payload is "EventsResponse": null */
        res = add_or_drop(cJSON_CreateObject(), payload->name,
                          parse_shape(doc, payload->shape, err));
    } else {
        cJSON *p = parse_shape(doc, op->output, err);
        cJSON_Delete(res);
        res = p;
        /* the json protocol's answer of null is None: botocore fails adding the request id
         * to it, or the AWS CLI looking into it */
        if (cJSON_IsNull(res) && !err->len)
            sb_puts(err, has_request_id ? "'NoneType' object has no attribute 'setdefault'"
                                        : "argument of type 'NoneType' is not iterable");
    }
    cJSON_Delete(doc);
    if (!res && !err->len)
        sb_puts(err, "out of memory");
    if (err->len || err->oom) {
        cJSON_Delete(res);
        return -1;
    }
    *result = res;
    return 0;
}

static const char *reason_phrase(long status)
{
    static const struct { long code; const char *text; } r[] = {
        { 500, "Internal Server Error" }, { 501, "Not Implemented" }, { 502, "Bad Gateway" },
        { 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
        { 505, "HTTP Version Not Supported" }, { 507, "Insufficient Storage" },
        { 508, "Loop Detected" }, { 510, "Not Extended" },
        { 511, "Network Authentication Required" },
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (r[i].code == status)
            return r[i].text;
    return "";
}

void wire_parse_error(const model_operation_t *op, long status, const char *error_type_header,
                      const char *body, size_t len, char *code, size_t codelen, sbuf_t *message)
{
    /* json (BaseJSONParser): the code only from __type or the status; rest-json
     * (RestJSONParser) also from x-amzn-ErrorType or the body's code */
    int rest = !wire_is_json(op);
    /* a 5xx with an empty or HTML body is a "generic" error: the status and its reason */
    size_t k = 0;
    while (body && k < len && strchr(" \t\r\n", body[k]))
        k++;
    if (status >= 500 && (!body || k == len || (len - k >= 6 && strncmp(body + k, "<html>", 6) == 0))) {
        snprintf(code, codelen, "%ld", status);
        sb_puts(message, reason_phrase(status));
        return;
    }
    cJSON *doc = body_json(body, len);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "message");
    if (!m)
        m = cJSON_GetObjectItemCaseSensitive(doc, "Message");
    if (m)
        pyjson_str(message, m);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "__type");
    sbuf_t c = { 0 };
    if (t)
        pyjson_str(&c, t);
    else
        sb_printf(&c, "%ld", status);
    const char *cs = sb_str(&c);
    const char *hash = strrchr(cs, '#');
    snprintf(code, codelen, "%s", hash ? hash + 1 : cs);
    if (!rest) {
        /* nothing more */
    } else if (error_type_header && *error_type_header) {
        snprintf(code, codelen, "%s", error_type_header);
        char *colon = strchr(code, ':');
        if (colon)
            *colon = '\0';
    } else {
        const cJSON *bc = cJSON_GetObjectItemCaseSensitive(doc, "code");
        if (!bc)
            bc = cJSON_GetObjectItemCaseSensitive(doc, "Code");
        if (bc) {
            sbuf_t x = { 0 };
            pyjson_str(&x, bc);
            snprintf(code, codelen, "%s", sb_str(&x));
            sb_free(&x);
        }
    }
    sb_free(&c);
    cJSON_Delete(doc);
}

/* -- blobs ------------------------------------------------------------------------------------- */

/* base64.b64decode(s) as Python 3.11 does it (binascii.a2b_base64, not strict): characters
 * outside the alphabet are skipped, decoding stops at the padding that ends a quad, and a
 * quad left open is an error. */
static int py_b64decode(const char *s, sbuf_t *out)
{
    int quad = 0, pads = 0;
    unsigned int left = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '=') {
            if (quad >= 2 && quad + ++pads >= 4)
                return 0;
            continue;
        }
        const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *hit = strchr(alpha, *p);
        if (!hit)
            continue;
        unsigned int v = (unsigned int)(hit - alpha);
        pads = 0;
        switch (quad) {
        case 0: left = v; quad = 1; break;
        case 1: sb_putc(out, (char)((left << 2) | (v >> 4))); left = v & 0xf; quad = 2; break;
        case 2: sb_putc(out, (char)((left << 4) | (v >> 2))); left = v & 0x3; quad = 3; break;
        default: sb_putc(out, (char)((left << 6) | v)); quad = 0; break;
        }
    }
    return quad == 0 ? 0 : -1;
}

static int b64encode(sbuf_t *out, const unsigned char *data, size_t len)
{
    size_t need = 0;
    mbedtls_base64_encode(NULL, 0, &need, data, len);
    unsigned char *buf = port_malloc(need + 1);
    if (!buf)
        return -1;
    size_t n = 0;
    int rc = mbedtls_base64_encode(buf, need + 1, &n, data, len);
    if (rc == 0)
        sb_putn(out, (const char *)buf, n);
    port_free(buf);
    return rc == 0 && !out->oom ? 0 : -1;
}

static int blobs(cJSON *v, int shape, int base64_in, sbuf_t *err)
{
    const model_shape_t *s = &model_shapes[shape];
    switch (s->type) {
    case MT_STRUCTURE:
        if (!cJSON_IsObject(v))
            return 0;
        for (size_t i = 0; i < s->nmembers; i++) {
            cJSON *m = cJSON_GetObjectItemCaseSensitive(v, s->members[i].name);
            if (m && blobs(m, s->members[i].shape, base64_in, err) != 0)
                return -1;
        }
        return 0;
    case MT_LIST:
    case MT_MAP:
        if (s->type == MT_LIST ? !cJSON_IsArray(v) : !cJSON_IsObject(v))
            return 0;
        for (cJSON *c = v->child; c; c = c->next)
            if (blobs(c, s->type == MT_LIST ? s->member : s->value, base64_in, err) != 0)
                return -1;
        return 0;
    case MT_BLOB:
        break;
    default:
        return 0;
    }
    if (!cJSON_IsString(v))
        return 0;
    const char *text = v->valuestring;
    sbuf_t raw = { 0 }, enc = { 0 };
    int rc = 0;
    if (base64_in) {
        for (const unsigned char *p = (const unsigned char *)text; *p; p++)
            if (*p >= 0x80) {
                /* b64decode's str.encode('ascii'): a ValueError the AWS CLI does not catch */
                sb_puts(err, "string argument should contain only ASCII characters");
                return -1;
            }
        if (py_b64decode(text, &raw) != 0) {
            sb_printf(err, "Invalid base64: \"%s\"", text);
            sb_free(&raw);
            return -1;
        }
        rc = b64encode(&enc, (const unsigned char *)raw.data, raw.len);
    } else {
        rc = b64encode(&enc, (const unsigned char *)text, strlen(text));
    }
    if (rc != 0 || raw.oom || !cJSON_SetValuestring(v, sb_str(&enc))) {
        rc = -1;
        sb_puts(err, "out of memory");
    }
    sb_free(&raw);
    sb_free(&enc);
    return rc;
}

int wire_blobs_to_base64(cJSON *params, int shape, int base64_in, sbuf_t *err)
{
    return blobs(params, shape, base64_in, err);
}

/* -- skeletons ------------------------------------------------------------------------------- */

/* botocore's ArgumentGenerator: placeholders by type; with member names (the output skeleton)
 * strings hold their member's name and list elements their shape's name. NULL when out of
 * memory. */
static cJSON *skeleton(int shape, int *stack, int depth, int names, const char *name)
{
    const model_shape_t *s = &model_shapes[shape];
    switch (s->type) {
    case MT_STRUCTURE: {
        int seen = 0;
        for (int i = 0; i < depth; i++)
            seen += stack[i] == shape;
        if (seen > 1 || depth >= 63)
            return cJSON_CreateObject();
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; i < s->nmembers && o; i++) {
            stack[depth] = s->members[i].shape;
            o = add_or_drop(o, s->members[i].name,
                            skeleton(s->members[i].shape, stack, depth + 1, names,
                                     s->members[i].name));
        }
        return o;
    }
    case MT_LIST: {
        stack[depth] = s->member;
        return add_or_drop(cJSON_CreateArray(), NULL,
                           skeleton(s->member, stack, depth + 1, names,
                                    names ? model_shapes[s->member].name : ""));
    }
    case MT_MAP: {
        stack[depth] = s->value;
        return add_or_drop(cJSON_CreateObject(), "KeyName",
                           skeleton(s->value, stack, depth + 1, names, ""));
    }
    case MT_STRING:
        if (names)
            return cJSON_CreateString(name);
        return cJSON_CreateString(s->nenums ? s->enums[0] : "");
    case MT_INTEGER:
    case MT_LONG:
        return pyjson_int(0);
    case MT_DOUBLE:
    case MT_FLOAT:
        return pyjson_float(0.0);
    case MT_BOOLEAN:
        return cJSON_CreateTrue();
    case MT_TIMESTAMP:
        return cJSON_CreateString("1970-01-01T00:00:00");
    case MT_BLOB:
        /* botocore's ArgumentGenerator has no case for blobs: None */
        return cJSON_CreateNull();
    }
    return cJSON_CreateNull();
}

cJSON *wire_skeleton(int shape, int member_names)
{
    int stack[64];
    stack[0] = shape;
    return skeleton(shape, stack, 1, member_names, "");
}

/* ruamel's round-trip dumper as the AWS CLI uses it for yaml-input: model order, each member's
 * comment at the end of its line (two spaces before the first of a mapping, one after). */
static void y_skel(sbuf_t *b, int shape, int indent, int inline_first, int *stack, int depth);

static void y_pad(sbuf_t *b, int n)
{
    for (int i = 0; i < n; i++)
        sb_putc(b, ' ');
}

static void y_skel_scalar(sbuf_t *b, const model_shape_t *s)
{
    switch (s->type) {
    case MT_INTEGER:
    case MT_LONG: sb_puts(b, "0"); break;
    case MT_DOUBLE:
    case MT_FLOAT: sb_puts(b, "0.0"); break;
    case MT_BOOLEAN: sb_puts(b, "true"); break;
    case MT_TIMESTAMP: sb_puts(b, "1970-01-01 00:00:00"); break;
    case MT_BLOB: sb_puts(b, "!!binary ''"); break;
    default:
        if (s->nenums)
            sb_puts(b, s->enums[0]);
        else
            sb_puts(b, "''");
    }
}

static int is_block(int shape)
{
    model_type_t t = model_shapes[shape].type;
    return t == MT_STRUCTURE || t == MT_LIST || t == MT_MAP;
}

static void y_skel_entry(sbuf_t *b, const char *key, int vshape, const char *comment, int first,
                         int indent, int inline_key, int *stack, int depth)
{
    if (!inline_key)
        y_pad(b, indent);
    sb_puts(b, key);
    sb_putc(b, ':');
    int block = is_block(vshape);
    const model_shape_t *vs = &model_shapes[vshape];
    int empty = vs->type == MT_STRUCTURE && vs->nmembers == 0;
    if (!block || empty) {
        sb_putc(b, ' ');
        if (empty)
            sb_puts(b, "{}");
        else
            y_skel_scalar(b, vs);
    }
    if (comment)
        sb_printf(b, "%s# %s", first ? "  " : " ", comment);
    sb_putc(b, '\n');
    if (block && !empty)
        y_skel(b, vshape, vs->type == MT_LIST ? indent : indent + 2, 0, stack, depth);
}

static void y_skel(sbuf_t *b, int shape, int indent, int inline_first, int *stack, int depth)
{
    const model_shape_t *s = &model_shapes[shape];
    if (depth >= 63)
        return;
    stack[depth] = shape;
    if (s->type == MT_STRUCTURE) {
        int seen = 0;
        for (int i = 0; i <= depth; i++)
            seen += stack[i] == shape;
        for (size_t i = 0; i < s->nmembers && seen <= 1; i++)
            y_skel_entry(b, s->members[i].name, s->members[i].shape, s->members[i].yaml_comment,
                         i == 0, indent, i == 0 && inline_first, stack, depth + 1);
    } else if (s->type == MT_MAP) {
        y_skel_entry(b, "KeyName", s->value, NULL, 1, indent, inline_first, stack, depth + 1);
    } else if (s->type == MT_LIST) {
        if (!inline_first)
            y_pad(b, indent);
        sb_puts(b, "- ");
        if (is_block(s->member)) {
            y_skel(b, s->member, indent + 2, 1, stack, depth + 1);
        } else {
            y_skel_scalar(b, &model_shapes[s->member]);
            sb_putc(b, '\n');
        }
    }
}

void wire_yaml_skeleton(sbuf_t *b, int shape)
{
    int stack[64];
    y_skel(b, shape, 0, 0, stack, 0);
}
