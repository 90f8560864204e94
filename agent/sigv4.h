/*
 * AWS Signature Version 4 (header signing): SHA-256 from the port (port_sha256: mbedTLS, or
 * libcrypto where the build adds it), HMAC from mbedTLS.
 *
 * The caller gives the request exactly as it will be sent (method, path as on the wire, raw
 * query, headers including Host) and gets back the headers to add. Every stage is exposed so
 * the AWS SigV4 test suite can be checked stage by stage.
 */
#ifndef EVREC_SIGV4_H
#define EVREC_SIGV4_H

#include <stddef.h>
#include <stdint.h>

typedef struct sigv4_header {
    const char *name;
    const char *value;
} sigv4_header_t;

typedef struct sigv4_request {
    const char *method;             /**< "POST" */
    const char *path;               /**< as sent, e.g. "/v1/apps/abc/events" */
    const char *query;              /**< without '?', NULL or "" for none */
    const sigv4_header_t *headers;  /**< must include Host; any order, any case */
    size_t nheaders;
    const void *body;               /**< hashed in a streaming pass; may be NULL if body_len 0 */
    size_t body_len;
    const char *payload_hash;       /**< hex SHA-256 to use instead of hashing body, or NULL */
} sigv4_request_t;

typedef struct sigv4_params {
    const char *region;             /**< "us-east-1" */
    const char *service;            /**< signing name: "mobiletargeting", "personalize" */
    int64_t unix_ms;                /**< signing time (device clock + skew correction) */
    int no_path_normalize;          /**< 1 only for S3-style signing; 0 for our services */
    int sign_content_sha256;        /**< 1: add and sign X-Amz-Content-Sha256 */
} sigv4_params_t;

typedef struct sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;      /**< NULL or "" for long-term keys */
} sigv4_credentials_t;

/** What to add to the request. Strings are NUL-terminated inside the struct. */
typedef struct sigv4_signature {
    char amz_date[17];              /**< X-Amz-Date: 20261122T100000Z */
    char content_sha256[65];        /**< hex body hash (send as X-Amz-Content-Sha256 if asked) */
    char authorization[1024];       /**< the Authorization header value */
    char signature[65];             /**< hex signature alone */
} sigv4_signature_t;

/** Cache of the derived signing key for one (date, region, service, secret). No allocation. */
typedef struct sigv4_key_cache {
    char scope[128];                /**< "yyyymmdd/region/service" the key is for ("" = empty) */
    unsigned char secret_digest[32];/**< SHA-256 of the secret it was derived from */
    unsigned char key[32];
} sigv4_key_cache_t;

/**
 * Sign: compute X-Amz-Date, the body hash, and Authorization over the given headers plus
 * X-Amz-Date (and X-Amz-Security-Token when a session token is given, and
 * X-Amz-Content-Sha256 if params->sign_content_sha256). The caller sends those headers.
 * `cache` may be NULL. Returns EVREC_OK or EVREC_E_INVALID (also for a header value or session
 * token holding a control character other than tab, which could not be sent as one line).
 */
int sigv4_sign(sigv4_key_cache_t *cache, const sigv4_request_t *req, const sigv4_params_t *p,
               const sigv4_credentials_t *creds, sigv4_signature_t *out);

/* Stages (for tests and --debug). Each *out is port_malloc'ed, NUL-terminated. The request's
 * headers are taken as the complete set to sign (the caller adds X-Amz-Date itself). */
int sigv4_canonical_request(const sigv4_request_t *req, const sigv4_params_t *p, char **out);
int sigv4_string_to_sign(const char *canonical_request, const sigv4_params_t *p, char **out);
int sigv4_authorization(const char *string_to_sign, const char *canonical_request,
                        const sigv4_params_t *p, const sigv4_credentials_t *creds,
                        sigv4_key_cache_t *cache, char **out);

/** Hex SHA-256 of data (65 bytes with NUL). */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

#endif /* EVREC_SIGV4_H */
