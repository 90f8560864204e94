/*
 * What the chain's own files share: the chain and its cache (credentials.c), the shared
 * files (creds_files.c), a profile and what it names (creds_profile.c), the device providers
 * (creds_device.c). A provider here answers with a result and notes its reason in the pass's
 * attempt; the providers that answer a code and a reason (creds_internal.h) never see a
 * creds_t.
 */
#ifndef EVREC_CREDS_CHAIN_H
#define EVREC_CREDS_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "credentials.h"
#include "creds_internal.h"
#include "log.h"
#include "transport.h"

/* The chain's providers, in its order. */
typedef enum {
    P_STATIC, P_CALLBACK, P_ENV, P_FILES, P_IOT, P_COGNITO, P_CONTAINER, P_IMDS, P_COUNT
} creds_provider_t;

/* The remote calls, each with its own backoff. */
typedef enum {
    G_PROCESS, G_STS, G_WEB_IDENTITY, G_SSO, G_CONTAINER, G_IMDS, G_IOT, G_COGNITO, G_COUNT
} creds_gate_id_t;

/* After a failure a remote provider is not asked again before next_ms (1 s, doubling to
 * 5 minutes): a device far from its provider, or not on EC2 at all, does not pay a timeout on
 * every upload, and a struggling service is not hammered. The last reason is kept, so the
 * error during the wait still says why. */
typedef struct creds_gate {
    unsigned failures;
    int64_t next_ms;
    int code;
    char why[320];
} creds_gate_t;

/* HIT: credentials; SKIP: not configured; FAIL: configured but failed (the chain moves on);
 * STOP: half configured (the chain stops: falling through would hide it). */
typedef enum { R_HIT, R_SKIP, R_FAIL, R_STOP } creds_result_t;

struct creds {
    creds_config_t cfg; /* its strings are the caller's, borrowed (creds_new) */
    evrec_credentials_t cache;
    int cache_valid;
    creds_provider_t cache_from;
    int64_t cache_fetched_ms;
    transport_t *iot_tx, *cognito_tx;
    char cognito_id[256];
    transport_t *sts_tx, *sso_tx, *container_tx, *imds_tx;
    creds_gate_t gates[G_COUNT];
};

/* What one pass over the chain learnt, for the error message. */
typedef struct creds_attempt {
    char msg[1024];
    size_t len;
    int net_code; /* a retryable network code from providers 5/6, else 0 */
} creds_attempt_t;

/* -- the chain (credentials.c) ----------------------------------------------------------- */

/** Add "<provider>: <reason>" to the attempt's message (cut when full). */
void creds_note(creds_attempt_t *a, creds_provider_t p, const char *fmt, ...) LOG_PRINTF(3, 4);
/** The chain's clock: the configured one, else the wall clock. */
int64_t creds_now_ms(const creds_t *c);
/** 1 if s has no control character (it can be sent inside one header line). */
int creds_no_control_chars(const char *s);
/** A credential service's endpoint (AWS_ENDPOINT_URL_<ID> or the profile's `services`
 *  entry) in buf, else NULL: the SDKs' default. */
const char *creds_service_endpoint(creds_t *c, const char *env_name, char *buf, size_t len);

/** 1 (with the kept reason in why) while gate g waits out its backoff; the gate's code is the
 *  answer meanwhile. */
int creds_gate_closed(const creds_t *c, creds_gate_id_t g, char *why, size_t whylen);
/** A remote call's code through gate g: a failure closes it for longer each time. */
void creds_gate_settle(creds_t *c, creds_gate_id_t g, int rc, const char *why);
/** A provider's code as the chain's result; the reason is noted under provider p. */
creds_result_t creds_settle(creds_attempt_t *a, creds_provider_t p, int rc, const char *why);
/** Container credentials and instance metadata behind their gates (credential_source too). */
int creds_run_container(creds_t *c, evrec_credentials_t *out, char *why, size_t whylen);
int creds_run_imds(creds_t *c, evrec_credentials_t *out, char *why, size_t whylen);

/* -- the shared files (creds_files.c) ---------------------------------------------------- */

typedef struct creds_shared_file {
    char path[512];
    char *text; /* NULL if absent */
    int is_config;
    long owner;     /* its uid */
    unsigned mode;  /* its permission bits */
} creds_shared_file_t;

/** Read ~/.aws/<name> (or the file `env` names); 0 with f->text NULL when it is absent, else
 *  a port error (-EFBIG over 1 MiB, -EINVAL not a regular file). Free with creds_shared_free,
 *  even on failure. */
int creds_shared_load(creds_shared_file_t *f, const char *env, const char *name, int is_config);
/** Wipe and free the file's text. */
void creds_shared_free(creds_shared_file_t *f);
/** 0 if `f` may hold the secret `key` (private to its owner); else a note and -1. */
int creds_secret_file_ok(const creds_shared_file_t *f, const char *key, creds_attempt_t *a);
/** `key` of `profile`, the first of files[0..nfiles) that has it; *from (when not NULL) the
 *  file. EVREC_E_NOT_FOUND; EVREC_E_CONFIG with *malformed set and a note. */
int creds_shared_get_from(creds_shared_file_t *files, size_t nfiles, const char *profile,
                          const char *key, char *out, size_t outlen, creds_attempt_t *a,
                          int *malformed, const creds_shared_file_t **from);
int creds_shared_get(creds_shared_file_t *files, size_t nfiles, const char *profile,
                     const char *key, char *out, size_t outlen, creds_attempt_t *a,
                     int *malformed);

/* -- providers 4, 5, 6 (creds_profile.c, creds_device.c) ---------------------------------- */

/** 4: the shared files' profile and what it names (assume role, web identity, SSO,
 *  credential_process, keys). */
creds_result_t creds_from_files(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a);
/** 5: the AWS IoT credentials provider (mutual TLS). */
creds_result_t creds_from_iot(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a);
/** 6: an Amazon Cognito identity pool, unauthenticated. */
creds_result_t creds_from_cognito(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a);

/* The IoT provider's request from the configuration: IOT_OK (url and thing header made),
 * IOT_NONE (none of its options given) or IOT_BAD (half configured or malformed; `why` says
 * what). */
enum { IOT_OK, IOT_NONE, IOT_BAD };
int creds_iot_request(const creds_config_t *g, char url[1024], char thing[512], char *why,
                      size_t whylen);
/** The region of a pool id "<region>:<uuid>"; 0, or -1 when the pool id is malformed. */
int creds_cognito_region(const char *pool_id, char region[64]);

#endif /* EVREC_CREDS_CHAIN_H */
