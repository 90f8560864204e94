/* Events encrypted at rest: AES-256-GCM per record (see seal.h). */
#include "seal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/gcm.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "port.h"
#include "util_str.h"

#define KEY_BYTES EVREC_KEY_BYTES
#define ID_BYTES 8
#define NONCE_BYTES 12

struct seal_keys {
    size_t n; /* keys[0] is the current key */
    uint8_t keys[SEAL_MAX_KEYS][KEY_BYTES];
    uint8_t ids[SEAL_MAX_KEYS][ID_BYTES];
};

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void key_id(const uint8_t key[KEY_BYTES], uint8_t id[ID_BYTES])
{
    static const char label[] = "evrec key id";
    uint8_t digest[32];
    mbedtls_sha256_context c;
    mbedtls_sha256_init(&c);
    mbedtls_sha256_starts_ret(&c, 0);
    mbedtls_sha256_update_ret(&c, (const uint8_t *)label, sizeof label - 1);
    mbedtls_sha256_update_ret(&c, key, KEY_BYTES);
    mbedtls_sha256_finish_ret(&c, digest);
    mbedtls_sha256_free(&c);
    memcpy(id, digest, ID_BYTES);
}

static void hex_id(const uint8_t id[ID_BYTES], char *buf)
{
    for (int i = 0; i < ID_BYTES; i++)
        snprintf(buf + 2 * i, 3, "%02x", id[i]);
}

void seal_current_id(const seal_keys_t *k, char *buf)
{
    hex_id(k->ids[0], buf);
}

static int add_key(seal_keys_t *k, const uint8_t key[KEY_BYTES])
{
    if (k->n == SEAL_MAX_KEYS)
        return -1;
    memcpy(k->keys[k->n], key, KEY_BYTES);
    key_id(key, k->ids[k->n]);
    k->n++;
    return 0;
}

void seal_keys_free(seal_keys_t *k)
{
    if (k) {
        mbedtls_platform_zeroize(k, sizeof *k);
        port_free(k);
    }
}

void seal_buf_free(seal_buf_t *b)
{
    if (b && b->p) {
        mbedtls_platform_zeroize(b->p, b->cap);
        port_free(b->p);
    }
    if (b)
        memset(b, 0, sizeof *b);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parse the key file's text into k; 0, or the 1-based number of the bad line. */
static int parse_keys(seal_keys_t *k, char *text)
{
    int line = 0;
    for (char *p = text; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        line++;
        size_t n = strlen(p);
        while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
            p[--n] = '\0';
        while (*p == ' ' || *p == '\t')
            p++, n--;
        if (*p != '\0' && *p != '#') {
            uint8_t key[KEY_BYTES];
            int ok = n == 2 * KEY_BYTES;
            for (size_t i = 0; ok && i < KEY_BYTES; i++) {
                int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
                ok = hi >= 0 && lo >= 0;
                key[i] = (uint8_t)(hi << 4 | lo);
            }
            int added = ok && add_key(k, key) == 0;
            mbedtls_platform_zeroize(key, sizeof key);
            if (!added)
                return line;
        }
        p = nl ? nl + 1 : NULL;
    }
    return 0;
}

int seal_keys_from_file(seal_keys_t **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    unsigned mode = 0;
    int mine = 0;
    int prc = port_file_mode(path, &mode, &mine);
    if (prc == -EINVAL)
        return util_failf(err, errlen, EVREC_E_KEY, "encryption key file %s is not a regular file",
                    path);
    if (prc)
        return util_failf(err, errlen, EVREC_E_KEY, "cannot read encryption key file %s: %s", path,
                    strerror(-prc));
    if (!mine)
        return util_failf(err, errlen, EVREC_E_UNSAFE,
                    "encryption key file %s belongs to another user: refused", path);
    if (mode & 0027)
        return util_failf(err, errlen, EVREC_E_UNSAFE,
                    "encryption key file %s may be read by others or written by its group "
                    "(mode %04o): refused; chmod 0600 it",
                    path, mode);
    char *text = NULL;
    size_t len = 0;
    prc = port_read_file(path, &text, &len, 64 * 1024);
    if (prc)
        return util_failf(err, errlen, EVREC_E_KEY, "cannot read encryption key file %s: %s", path,
                    strerror(-prc));
    seal_keys_t *k = port_calloc(1, sizeof *k);
    if (!k) {
        mbedtls_platform_zeroize(text, len);
        port_free(text);
        return EVREC_E_NOMEM;
    }
    int bad = parse_keys(k, text);
    mbedtls_platform_zeroize(text, len);
    port_free(text);
    if (bad || k->n == 0) {
        seal_keys_free(k);
        if (bad)
            return util_failf(err, errlen, EVREC_E_KEY,
                        "encryption key file %s, line %d: not a key (64 hex digits; at most "
                        "%d keys)",
                        path, bad, SEAL_MAX_KEYS);
        return util_failf(err, errlen, EVREC_E_KEY, "encryption key file %s holds no key", path);
    }
    *out = k;
    return EVREC_OK;
}

int seal_keys_from_callback(seal_keys_t **out, evrec_keys_fn fn, void *user, char *err,
                            size_t errlen)
{
    *out = NULL;
    seal_keys_t *k = port_calloc(1, sizeof *k);
    if (!k)
        return EVREC_E_NOMEM;
    size_t n = 0;
    int rc = fn(user, k->keys, SEAL_MAX_KEYS, &n);
    if (rc != 0 || n == 0 || n > SEAL_MAX_KEYS) {
        seal_keys_free(k);
        return util_failf(err, errlen, EVREC_E_KEY,
                    "encryption_keys callback gave no key (returned %d with %zu keys)", rc, n);
    }
    k->n = n;
    for (size_t i = 0; i < n; i++)
        key_id(k->keys[i], k->ids[i]);
    *out = k;
    return EVREC_OK;
}

static const uint8_t *find_key(const seal_keys_t *k, const uint8_t *id)
{
    for (size_t i = 0; k && i < k->n; i++)
        if (memcmp(k->ids[i], id, ID_BYTES) == 0)
            return k->keys[i];
    return NULL;
}

int seal_record(const seal_keys_t *k, const uint8_t *plain, size_t len, uint8_t **out,
                size_t *out_len)
{
    *out = NULL;
    evrec_record_view_t v;
    if (!k || evrec_record_header(plain, len, &v) != EVREC_OK)
        return EVREC_E_INVALID;
    uint8_t *buf = port_malloc(len + SEAL_OVERHEAD);
    if (!buf)
        return EVREC_E_NOMEM;
    buf[0] = EVREC_RECORD_FORMAT_SEALED;
    buf[1] = v.shape;
    uint16_t flags = (uint16_t)(v.flags | EVREC_RECORD_F_SEALED);
    buf[2] = (uint8_t)flags;
    buf[3] = (uint8_t)(flags >> 8);
    put_le64(buf + 4, (uint64_t)v.created_ms);
    memcpy(buf + 12, k->ids[0], ID_BYTES);
    if (port_random(buf + 20, NONCE_BYTES) != 0) {
        port_free(buf);
        return EVREC_E_IO;
    }
    mbedtls_gcm_context g;
    mbedtls_gcm_init(&g);
    int rc = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, k->keys[0], 8 * KEY_BYTES);
    if (!rc)
        rc = mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, len, buf + 20, NONCE_BYTES, buf,
                                       SEAL_HEADER, plain, buf + SEAL_HEADER, SEAL_TAG,
                                       buf + SEAL_HEADER + len);
    mbedtls_gcm_free(&g);
    if (rc) {
        port_free(buf);
        return EVREC_E_INVALID;
    }
    *out = buf;
    *out_len = len + SEAL_OVERHEAD;
    return EVREC_OK;
}

int seal_decode(const seal_keys_t *k, const void *value, size_t len, seal_buf_t *scratch,
                evrec_record_view_t *out)
{
    const uint8_t *b = value;
    if (len == 0 || b[0] != EVREC_RECORD_FORMAT_SEALED)
        return evrec_record_decode(value, len, out);
    if (len <= SEAL_OVERHEAD + EVREC_RECORD_HEADER_SIZE)
        return EVREC_E_CORRUPT;
    const uint8_t *key = find_key(k, b + 12);
    if (!key)
        return EVREC_E_KEY;
    size_t plain_len = len - SEAL_OVERHEAD;
    if (scratch->cap < plain_len) {
        seal_buf_free(scratch);
        scratch->p = port_malloc(plain_len);
        if (!scratch->p)
            return EVREC_E_NOMEM;
        scratch->cap = plain_len;
    }
    mbedtls_gcm_context g;
    mbedtls_gcm_init(&g);
    int rc = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 8 * KEY_BYTES);
    if (!rc)
        rc = mbedtls_gcm_auth_decrypt(&g, plain_len, b + 20, NONCE_BYTES, b, SEAL_HEADER,
                                      b + SEAL_HEADER + plain_len, SEAL_TAG, b + SEAL_HEADER,
                                      scratch->p);
    mbedtls_gcm_free(&g);
    if (rc)
        return EVREC_E_CORRUPT;
    rc = evrec_record_decode(scratch->p, plain_len, out);
    /* the inner record must say what the sealed header says (both are authenticated) */
    if (rc == EVREC_OK && (out->format == EVREC_RECORD_FORMAT_SEALED || out->shape != b[1]))
        rc = EVREC_E_CORRUPT;
    return rc;
}

typedef struct store_scan {
    const seal_keys_t *k;
    uint64_t sealed, unknown;
    uint8_t unknown_id[ID_BYTES];
} store_scan_t;

static int scan_one(void *user, uint64_t seq, const void *value, size_t len)
{
    (void)seq;
    store_scan_t *s = user;
    const uint8_t *b = value;
    if (len < 20 || b[0] != EVREC_RECORD_FORMAT_SEALED)
        return 0;
    s->sealed++;
    if (!find_key(s->k, b + 12)) {
        if (s->unknown++ == 0)
            memcpy(s->unknown_id, b + 12, ID_BYTES);
    }
    return 0;
}

int seal_check_store(const seal_keys_t *k, evrec_queue_t *q, char *err, size_t errlen)
{
    char *mark = NULL;
    size_t mlen = 0;
    int marked = queue_meta_get(q, QUEUE_META_ENCRYPTION, &mark, &mlen) == EVREC_OK;
    port_free(mark);
    store_scan_t s = { k, 0, 0, { 0 } };
    int rc = queue_scan(q, 0, scan_one, &s);
    if (rc)
        return util_failf(err, errlen, rc, "checking the store's encrypted records: %s",
                    evrec_strerror(rc));
    if (!k) {
        if (marked || s.sealed)
            return util_failf(err, errlen, EVREC_E_KEY,
                        "the store is encrypted (%llu sealed events): give its key "
                        "(encryption_key_file / --encryption-key-file, or encryption_keys)",
                        (unsigned long long)s.sealed);
        return EVREC_OK;
    }
    if (s.unknown) {
        char id[2 * ID_BYTES + 1];
        hex_id(s.unknown_id, id);
        return util_failf(err, errlen, EVREC_E_KEY,
                    "%llu of the store's %llu encrypted events are sealed with a key not given "
                    "(key id %s): add that key (an older key stays on a later line of the key "
                    "file until they are sent)",
                    (unsigned long long)s.unknown, (unsigned long long)s.sealed, id);
    }
    if (!marked) {
        static const char v[] = "aes-256-gcm";
        char *stored = NULL;
        rc = queue_meta_put_if_absent(q, QUEUE_META_ENCRYPTION, v, &stored);
        port_free(stored);
        if (rc)
            return util_failf(err, errlen, rc, "marking the store encrypted: %s", evrec_strerror(rc));
    }
    return EVREC_OK;
}
