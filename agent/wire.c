/*
 * What the backends' wire formats share: printing a body, and judging an answer. AWS error
 * answers look the same for every service (a JSON body with a message and maybe a __type, plus
 * x-amzn-ErrorType), so the request-level classification lives here once; only the 2xx bodies
 * differ (service_*.c).
 */
#include "wire_internal.h"

#include <stdio.h>
#include <string.h>

#include "evrec.h"
#include "jsonw.h"
#include "port.h"

/* -- size estimates ------------------------------------------------------------------------ */

size_t wire_json_string_bytes(const char *s)
{
    return s ? jsonw_str_bytes(s, strlen(s)) : 2;
}

/* -- printing ------------------------------------------------------------------------------ */

cJSON *wire_raw_reference(const char *json)
{
    cJSON *item = cJSON_CreateNull(); /* any item: its type is replaced below */
    if (item != NULL) {
        item->type = cJSON_Raw | cJSON_IsReference;
        item->valuestring = (char *)json; /* cJSON never writes through it, nor frees it */
    }
    return item;
}

int wire_print(cJSON *root, size_t bound, char **body, size_t *len)
{
    *body = NULL;
    *len = 0;
    /* cJSON asks for a little headroom beyond the exact output when printing in place. */
    bound += 64;
    char *buf = bound < (size_t)INT32_MAX ? port_malloc(bound) : NULL;
    if (buf != NULL && cJSON_PrintPreallocated(root, buf, (int)bound, 0)) {
        *body = buf;
    } else {
        port_free(buf);
        /* cJSON's allocator is evrec's (evrec_set_allocator sets its hooks), so its output can
         * be handed out as port_malloc'ed memory. */
        *body = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    if (*body == NULL)
        return EVREC_E_NOMEM;
    *len = strlen(*body);
    return EVREC_OK;
}

/* -- reading answers ----------------------------------------------------------------------- */

void wire_copy_member(const cJSON *obj, const char *const *names, char *dst, size_t dstlen)
{
    for (; *names != NULL; names++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, *names);
        if (cJSON_IsString(it) && it->valuestring != NULL) {
            snprintf(dst, dstlen, "%s", it->valuestring);
            return;
        }
    }
}

int wire_set_event(wire_result_t *r, size_t i, int status, int accept_status,
                   const char *message)
{
    r->status[i] = status;
    r->verdicts[i] = status == accept_status ? WIRE_ACCEPTED
                     : status == 400         ? WIRE_REJECTED
                                             : WIRE_KEEP;
    port_free(r->messages[i]);
    r->messages[i] = NULL;
    /* An accepted event's message ("Accepted") tells nothing: only the others are kept. */
    if (r->verdicts[i] != WIRE_ACCEPTED && message != NULL &&
        (r->messages[i] = port_strdup(message)) == NULL)
        return EVREC_E_NOMEM;
    return EVREC_OK;
}

/* Copy [s, s+n) up to the first stop character, trimmed of spaces. */
static void copy_token(char *dst, size_t dstlen, const char *s, size_t n, const char *stops)
{
    while (n > 0 && *s == ' ') {
        s++;
        n--;
    }
    size_t k = 0;
    while (k < n && s[k] != '\0' && strchr(stops, s[k]) == NULL)
        k++;
    while (k > 0 && s[k - 1] == ' ')
        k--;
    if (k >= dstlen)
        k = dstlen - 1;
    memcpy(dst, s, k);
    dst[k] = '\0';
}

/* A printable, single-line excerpt of a body that is not a JSON error (an HTML page from a
 * proxy, say), so that the log says something useful. */
static void body_excerpt(char *dst, size_t dstlen, const char *body, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < dstlen && k < 200; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c == '\r' || c == '\n' || c == '\t')
            c = ' ';
        if (c >= 0x20 && c < 0x7f && !(c == ' ' && k > 0 && dst[k - 1] == ' '))
            dst[k++] = (char)c;
    }
    while (k > 0 && dst[k - 1] == ' ')
        k--;
    dst[k] = '\0';
}

/* The error type: x-amzn-ErrorType ("ThrottlingException:http://internal..."), else the
 * body's __type ("com.amazonaws.personalize#InvalidInputException") or code; and the
 * message: {"message"} (Personalize, API Gateway) or {"Message"} (Pinpoint). */
static void read_error(const cJSON *json, const char *header, const char *body, size_t len,
                       wire_result_t *r)
{
    static const char *const type_names[] = { "__type", "code", "Code", NULL };
    static const char *const message_names[] = { "message", "Message", "errorMessage", NULL };
    if (header != NULL && header[0] != '\0')
        copy_token(r->error_type, sizeof r->error_type, header, strlen(header), ":");
    if (cJSON_IsObject(json)) {
        if (r->error_type[0] == '\0') {
            char raw[sizeof r->error_type] = "";
            wire_copy_member(json, type_names, raw, sizeof raw);
            const char *hash = strrchr(raw, '#');
            const char *t = hash ? hash + 1 : raw;
            copy_token(r->error_type, sizeof r->error_type, t, strlen(t), ":");
        }
        wire_copy_member(json, message_names, r->message, sizeof r->message);
    } else if (body != NULL) {
        body_excerpt(r->message, sizeof r->message, body, len);
    }
}

static int type_in(const char *type, const char *const *names)
{
    for (; *names != NULL; names++)
        if (strcmp(type, *names) == 0)
            return 1;
    return 0;
}

/* Case-insensitive substring test (ASCII). */
static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++) {
        size_t k = 0;
        while (k < n && hay[k] != '\0') {
            char a = hay[k], b = needle[k];
            if (a >= 'A' && a <= 'Z')
                a = (char)(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z')
                b = (char)(b - 'A' + 'a');
            if (a != b)
                break;
            k++;
        }
        if (k == n)
            return 1;
    }
    return 0;
}

static int any_in_message(const char *message, const char *const *phrases)
{
    for (; *phrases != NULL; phrases++)
        if (contains_ci(message, *phrases))
            return 1;
    return 0;
}

static wire_outcome_t classify(long status, const char *type, const char *message)
{
    /* Kinesis throttles with 400 ProvisionedThroughputExceededException or
     * LimitExceededException; KMS's throttling reaches the streams' callers too. */
    static const char *const throttled[] = { "TooManyRequestsException", "ThrottlingException",
                                             "ThrottledException", "Throttling",
                                             "RequestLimitExceeded", "SlowDown",
                                             "ProvisionedThroughputExceededException",
                                             "LimitExceededException", "KMSThrottlingException",
                                             NULL };
    static const char *const too_large[] = { "PayloadTooLargeException",
                                             "RequestEntityTooLargeException",
                                             "RequestEntityTooLarge", NULL };
    static const char *const skew_types[] = { "RequestTimeTooSkewed", "RequestExpired", NULL };
    static const char *const skew_phrases[] = {
        "Signature expired", "Signature not yet current", "RequestTimeTooSkewed",
        "request time and the current time is too large", NULL
    };
    static const char *const expired_types[] = { "ExpiredToken", "ExpiredTokenException",
                                                 NULL };
    static const char *const expired_phrases[] = {
        "security token included in the request is expired", NULL
    };
    /* Signing and permission errors some front ends send as 400: bisecting them would drop
     * good events one by one, so they are auth failures whatever the status. */
    static const char *const auth_types[] = {
        "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignature",
        "IncompleteSignatureException", "MissingAuthenticationToken",
        "MissingAuthenticationTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch",
        "AccessDeniedException", "ForbiddenException", "NotFoundException",
        "ResourceNotFoundException", "UnauthorizedException",
        /* the streams' encryption keys: nothing the events can change, so keep them all */
        "KMSDisabledException", "KMSInvalidStateException", "KMSAccessDeniedException",
        "KMSNotFoundException", "KMSOptInRequired", "InvalidKMSResourceException",
        "InvalidSourceException", NULL
    };

    if (status == 429 || type_in(type, throttled))
        return WIRE_THROTTLED;
    if (status == 413 || type_in(type, too_large))
        return WIRE_TOO_LARGE;
    if (status >= 500 && status <= 599)
        return WIRE_RETRY;
    if (status >= 400 && status <= 499) {
        if (type_in(type, skew_types) || any_in_message(message, skew_phrases))
            return WIRE_CLOCK_SKEW;
        if (type_in(type, expired_types) || any_in_message(message, expired_phrases))
            return WIRE_EXPIRED_TOKEN;
        if (status == 408)
            return WIRE_RETRY;
        if (status == 400 && !type_in(type, auth_types))
            return WIRE_BAD_REQUEST;
        /* 401/403/404 and the rest of 4xx: nothing about the events is wrong that we know of. */
        return WIRE_AUTH;
    }
    /* No HTTP answer worth the name (0, 1xx, 3xx): try again later. */
    return WIRE_RETRY;
}

static int is_blank(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n')
            return 0;
    return 1;
}

/* The result arrays for b's events, each WIRE_KEEP. */
static int result_alloc(const batch_t *b, wire_result_t *out)
{
    out->n = b->n;
    out->outcome = WIRE_RETRY;
    out->verdicts = port_calloc(b->n, sizeof *out->verdicts);
    out->status = port_calloc(b->n, sizeof *out->status);
    out->messages = port_calloc(b->n, sizeof *out->messages);
    if (out->verdicts == NULL || out->status == NULL || out->messages == NULL) {
        wire_result_free(out);
        return EVREC_E_NOMEM;
    }
    for (size_t i = 0; i < b->n; i++)
        out->verdicts[i] = WIRE_KEEP;
    return EVREC_OK;
}

int wire_decode_with(const batch_t *b, wire_decode_2xx_fn decode_2xx, long http_status,
                     const char *error_type_header, const char *body, size_t len,
                     wire_result_t *out)
{
    if (out == NULL)
        return EVREC_E_INVALID;
    memset(out, 0, sizeof *out);
    if (b == NULL || decode_2xx == NULL || (body == NULL && len > 0))
        return EVREC_E_INVALID;
    int arc = result_alloc(b, out);
    if (arc != EVREC_OK)
        return arc;

    cJSON *json = len > 0 ? cJSON_ParseWithLength(body, len) : NULL;
    int rc = EVREC_OK;
    if (http_status >= 200 && http_status <= 299) {
        if (json == NULL && !is_blank(body, len)) {
            snprintf(out->message, sizeof out->message, "HTTP %ld answer is not JSON", http_status);
        } else {
            rc = decode_2xx(b, http_status, json, out);
            if (rc >= 0) {
                out->outcome = (wire_outcome_t)rc;
                rc = EVREC_OK;
            }
        }
    } else {
        read_error(json, error_type_header, body, len, out);
        out->outcome = classify(http_status, out->error_type, out->message);
    }
    cJSON_Delete(json);
    if (rc != EVREC_OK)
        wire_result_free(out);
    return rc;
}

int wire_accept_all(const batch_t *b, int status, wire_result_t *out)
{
    if (out == NULL || b == NULL)
        return EVREC_E_INVALID;
    memset(out, 0, sizeof *out);
    int rc = result_alloc(b, out);
    if (rc != EVREC_OK)
        return rc;
    for (size_t i = 0; i < b->n; i++) {
        out->verdicts[i] = WIRE_ACCEPTED;
        out->status[i] = status;
    }
    out->outcome = WIRE_OK;
    return EVREC_OK;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* One key's occurrences as a key: found by its first byte (memchr), then taken only when an
 * unescaped quote opens it, a quote closes it and a colon follows. */
static void count_key(const char *body, const char *end, const wire_member_count_t *m,
                      size_t *count, size_t *with_value)
{
    size_t klen = m->key_len;
    size_t vlen = m->value ? strlen(m->value) : 0;
    const char *p = body;
    while (p < end && (p = memchr(p, m->key[0], (size_t)(end - p))) != NULL) {
        const char *q = p++;
        if (q == body || q[-1] != '"' || (q - 1 > body && q[-2] == '\\'))
            continue; /* not the start of a string, or after an escaped quote inside one */
        if ((size_t)(end - q) <= klen || memcmp(q, m->key, klen) != 0 || q[klen] != '"')
            continue;
        p = q + klen + 1;
        const char *c = skip_ws(p, end);
        if (c >= end || *c != ':')
            continue; /* the same text as a value, not a key */
        (*count)++;
        c = skip_ws(c + 1, end);
        if (m->value && (size_t)(end - c) > vlen && memcmp(c, m->value, vlen) == 0 &&
            (c[vlen] == ',' || c[vlen] == '}' || c[vlen] == ']' || c[vlen] == ' ' ||
             c[vlen] == '\n' || c[vlen] == '\r' || c[vlen] == '\t'))
            (*with_value)++;
    }
}

void wire_count_members(const char *body, size_t len, const wire_member_count_t *m, size_t nm,
                        size_t *counts, size_t *with_value)
{
    for (size_t k = 0; k < nm; k++) {
        counts[k] = with_value[k] = 0;
        if (m[k].key_len > 0)
            count_key(body, body + len, &m[k], &counts[k], &with_value[k]);
    }
}

size_t wire_count_member(const char *body, size_t len, const char *key, const char *value,
                         size_t *with_value)
{
    wire_member_count_t m = { key, strlen(key), value };
    size_t n, nv;
    wire_count_members(body, len, &m, 1, &n, &nv);
    if (with_value)
        *with_value = nv;
    return n;
}

void wire_result_free(wire_result_t *r)
{
    if (r == NULL)
        return;
    if (r->messages != NULL)
        for (size_t i = 0; i < r->n; i++)
            port_free(r->messages[i]);
    port_free(r->messages);
    port_free(r->verdicts);
    port_free(r->status);
    memset(r, 0, sizeof *r);
}

/* -- base64 -------------------------------------------------------------------------------- */

size_t wire_base64_bytes(size_t len)
{
    return 4 * ((len + 2) / 3);
}

#define B64_ROW(c) \
    c "A" c "B" c "C" c "D" c "E" c "F" c "G" c "H" \
    c "I" c "J" c "K" c "L" c "M" c "N" c "O" c "P" \
    c "Q" c "R" c "S" c "T" c "U" c "V" c "W" c "X" \
    c "Y" c "Z" c "a" c "b" c "c" c "d" c "e" c "f" \
    c "g" c "h" c "i" c "j" c "k" c "l" c "m" c "n" \
    c "o" c "p" c "q" c "r" c "s" c "t" c "u" c "v" \
    c "w" c "x" c "y" c "z" c "0" c "1" c "2" c "3" \
    c "4" c "5" c "6" c "7" c "8" c "9" c "+" c "/"
static const char b64_pairs[] = /* the two characters of each 12-bit value */
    B64_ROW("A") B64_ROW("B") B64_ROW("C") B64_ROW("D") B64_ROW("E") B64_ROW("F") B64_ROW("G")
    B64_ROW("H") B64_ROW("I") B64_ROW("J") B64_ROW("K") B64_ROW("L") B64_ROW("M") B64_ROW("N")
    B64_ROW("O") B64_ROW("P") B64_ROW("Q") B64_ROW("R") B64_ROW("S") B64_ROW("T") B64_ROW("U")
    B64_ROW("V") B64_ROW("W") B64_ROW("X") B64_ROW("Y") B64_ROW("Z") B64_ROW("a") B64_ROW("b")
    B64_ROW("c") B64_ROW("d") B64_ROW("e") B64_ROW("f") B64_ROW("g") B64_ROW("h") B64_ROW("i")
    B64_ROW("j") B64_ROW("k") B64_ROW("l") B64_ROW("m") B64_ROW("n") B64_ROW("o") B64_ROW("p")
    B64_ROW("q") B64_ROW("r") B64_ROW("s") B64_ROW("t") B64_ROW("u") B64_ROW("v") B64_ROW("w")
    B64_ROW("x") B64_ROW("y") B64_ROW("z") B64_ROW("0") B64_ROW("1") B64_ROW("2") B64_ROW("3")
    B64_ROW("4") B64_ROW("5") B64_ROW("6") B64_ROW("7") B64_ROW("8") B64_ROW("9") B64_ROW("+")
    B64_ROW("/");
#undef B64_ROW

int wire_base64(const unsigned char *data, size_t len, char *dst, size_t dstlen,
                size_t *written)
{
    *written = 0;
    if (dstlen < wire_base64_bytes(len) + 1)
        return EVREC_E_INVALID;
    /* Not mbedtls_base64_encode: it is constant-time, built for keys, and costs ~100
     * instructions a byte (a fifth of a Kinesis flush under callgrind). Record data is no
     * key: a table lookup a pair of characters (test_wire checks it against mbedTLS's
     * output). */
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = dst;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        memcpy(o, b64_pairs + 2 * (v >> 12), 2);
        memcpy(o + 2, b64_pairs + 2 * (v & 4095), 2);
        o += 4;
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        o[0] = tab[v >> 18];
        o[1] = tab[(v >> 12) & 63];
        o[2] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    *o = '\0';
    *written = (size_t)(o - dst);
    return EVREC_OK;
}
