/*
 * SHA-256 for SigV4 (shared by all ports, like alloc.c). mbedTLS's is the reference and is
 * always built; a platform may add a faster one. Here: OpenSSL's libcrypto where the build
 * links it (EVREC_SHA256_LIBCRYPTO; Debian's libcurl loads it anyway), which uses the CPU's
 * SHA extensions. The fastest built backend is the default; port_sha256_use() switches (the
 * tests run the SigV4 suite on each, the benchmark times each).
 */
#include "port.h"

#include <limits.h>
#include <stdatomic.h>
#include <string.h>

#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

#ifdef EVREC_SHA256_LIBCRYPTO
#include <openssl/evp.h>
#endif

static void sha256_mbedtls(const void *data, size_t len, uint8_t out[32])
{
    mbedtls_sha256_ret(data, len, out, 0);
}

static int hmac_mbedtls(const void *key, size_t keylen, const void *msg, size_t len,
                        uint8_t out[32])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    return md && mbedtls_md_hmac(md, key, keylen, msg, len, out) == 0 ? 0 : -1;
}

#ifdef EVREC_SHA256_LIBCRYPTO
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
/* OpenSSL 3 looks the algorithm up on every EVP_sha256() use: fetch it once. */
static _Atomic(EVP_MD *) g_md;

static const EVP_MD *libcrypto_md(void)
{
    EVP_MD *md = atomic_load(&g_md);
    if (md)
        return md;
    EVP_MD *fresh = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!fresh)
        return NULL;
    EVP_MD *none = NULL;
    if (!atomic_compare_exchange_strong(&g_md, &none, fresh)) {
        EVP_MD_free(fresh); /* another thread was first */
        return none;
    }
    return fresh;
}
#else
static const EVP_MD *libcrypto_md(void)
{
    return EVP_sha256();
}
#endif

static void sha256_libcrypto(const void *data, size_t len, uint8_t out[32])
{
    const EVP_MD *md = libcrypto_md();
    unsigned int n = 0;
    if (!md || !EVP_Digest(data, len, out, &n, md, NULL) || n != 32)
        sha256_mbedtls(data, len, out); /* libcrypto unusable: the reference still answers */
}

#endif

typedef struct sha_backend {
    const char *name;
    void (*fn)(const void *, size_t, uint8_t[32]);
    int (*hmac)(const void *, size_t, const void *, size_t, uint8_t[32]);
} sha_backend_t;

static const sha_backend_t g_backends[] = {
#ifdef EVREC_SHA256_LIBCRYPTO
    /* HMAC stays with mbedTLS: SigV4's HMACs are over a few hundred bytes, where OpenSSL 3's
     * HMAC() costs more in its per-call algorithm fetch (locks, a property lookup) than in
     * hashing: 12.4 us a call with cold caches, as in a flush, against mbedTLS's 3.8 us. */
    { "libcrypto", sha256_libcrypto, hmac_mbedtls },
#endif
    { "mbedtls", sha256_mbedtls, hmac_mbedtls },
};
#define NBACKENDS (sizeof g_backends / sizeof g_backends[0])

static atomic_uint g_current; /* index into g_backends: the first, the fastest, by default */

void port_sha256(const void *data, size_t len, uint8_t out[32])
{
    g_backends[atomic_load_explicit(&g_current, memory_order_relaxed)].fn(data, len, out);
}

int port_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                     uint8_t out[32])
{
    return g_backends[atomic_load_explicit(&g_current, memory_order_relaxed)].hmac(key, keylen,
                                                                                   msg, len, out);
}

const char *port_sha256_backend(void)
{
    return g_backends[atomic_load(&g_current)].name;
}

int port_sha256_use(const char *name)
{
    for (unsigned i = 0; name && i < NBACKENDS; i++) {
        if (strcmp(g_backends[i].name, name) == 0) {
            atomic_store(&g_current, i);
            return 0;
        }
    }
    return -ENOENT;
}
