/*
 * The credentials provider chain, first hit wins (the AWS SDKs' default chain, botocore's
 * order, with the device providers where options name them):
 *   1 static keys, 2 caller callback, 3 environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *   AWS_SESSION_TOKEN; skipped when a profile is chosen explicitly), 4 shared files
 *   (~/.aws/credentials, ~/.aws/config; AWS_DEFAULT_PROFILE, AWS_PROFILE,
 *   AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE) and what a profile names, in order: assume
 *   role (STS), web identity (STS; also from AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN), SSO,
 *   keys, credential_process, keys in the config file; 5 AWS IoT credentials provider (mutual
 *   TLS), 6 Amazon Cognito identity pool, unauthenticated (GetId + GetCredentialsForIdentity),
 *   7 container credentials (AWS_CONTAINER_CREDENTIALS_*), 8 EC2 instance metadata (IMDSv2).
 * The providers themselves live in creds_*.c (creds_internal.h).
 * Temporary credentials are cached and refreshed ahead of expiry; never used after it. A
 * remote provider that failed is not asked again for a while (1 s doubling to 5 minutes).
 * Errors name the provider that failed and why, never a secret.
 */
#ifndef EVREC_CREDENTIALS_H
#define EVREC_CREDENTIALS_H

#include <stddef.h>
#include <stdint.h>

#include "evrec.h"
#include "queue.h"

typedef struct creds creds_t;

typedef struct creds_config {
    const char *access_key_id, *secret_access_key, *session_token; /* 1 */
    evrec_credentials_fn callback;                                  /* 2 */
    void *callback_user;
    int no_environment;                                             /* 3 skipped if 1 */
    const char *profile;        /* 4: NULL: AWS_DEFAULT_PROFILE, AWS_PROFILE, else "default";
                                   set, it skips 3 (an explicit profile wins over env keys) */
    const char *iot_endpoint;   /* 5: host or https URL of the credentials endpoint */
    const char *iot_role_alias, *iot_thing_name, *iot_cert_file, *iot_key_file;
    const char *cognito_pool_id;       /* 6 */
    const char *cognito_endpoint_url;  /* NULL: AWS_ENDPOINT_URL_COGNITO_IDENTITY, else
                                          https://cognito-identity.<region>.amazonaws.com */
    const char *region;                /* the service's region (Cognito uses its pool's) */
    evrec_queue_t *queue;              /* persists the Cognito identity id (may be NULL) */
    /* transport for 5 and 6 */
    const char *ca_bundle;
    int no_verify_tls;
    uint32_t connect_timeout_ms, request_timeout_ms;
    int64_t (*now_ms)(void *user);     /* NULL: port_wall_ms */
    const char *container_endpoint;    /* scheme://host[:port] in front of
                                          AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; NULL:
                                          http://169.254.170.2 (tests point it at 127.0.0.1) */
    void *now_user;
} creds_config_t;

/** A chain over *cfg. Its strings are borrowed, not copied: they must outlive the creds_t (an
 *  agent's are its one copy of the options, freed and wiped after the flusher that owns the
 *  chain is stopped). EVREC_E_INVALID, EVREC_E_NOMEM. */
int creds_new(creds_t **out, const creds_config_t *cfg);
/** Free the chain, wiping the credentials it cached (not the borrowed configuration). */
void creds_free(creds_t *c);

/** Usable credentials now (refreshing ahead of expiry). On failure EVREC_E_CREDENTIALS (or a
 *  network code from providers 5/6) with a message naming each provider tried; EVREC_E_CONFIG
 *  when a provider is half configured (the message names the missing option). A creds_t has
 *  one owner at a time (the flusher, or the CLI): calls on it are not serialised. */
int creds_get(creds_t *c, evrec_credentials_t *out, char *err, size_t errlen);

/** Check, without touching the network or the files, that every provider given any option is
 *  completely configured: static keys (a key id and its secret; a session token only with
 *  them; lengths), IoT (endpoint, role alias, thing name, certificate and key, all or none),
 *  Cognito (a pool id "<region>:<id>"; an endpoint override only with a pool id).
 *  EVREC_E_CONFIG with a message naming the provider and the option, else EVREC_OK. */
int creds_check_config(const creds_config_t *cfg, char *err, size_t errlen);

/** Forget cached temporary credentials (after the service said they expired). */
void creds_invalidate(creds_t *c);

/** Region: `explicit_region` if set, else AWS_REGION, AWS_DEFAULT_REGION, then the profile's
 *  `region` in the config file. EVREC_E_CONFIG if none. */
int creds_resolve_region(const char *explicit_region, const char *profile, char *out,
                         size_t outlen);

/* -- shared config/credentials files (exposed for tests and the CLI) ------------------------ */

/** Look up `key` of `profile` in an INI text parsed as the AWS CLI does: `[name]` sections in
 *  the credentials file, `[profile name]` (and `[default]`) in the config file
 *  (is_config = 1); comments (# ;), whitespace, case-insensitive keys, nested sub-sections
 *  ignored. Copies the value into out. EVREC_E_NOT_FOUND if absent. */
int creds_ini_get(const char *text, int is_config, const char *profile, const char *key,
                  char *out, size_t outlen);

/** 1 if the INI text has a section for `profile`, read as creds_ini_get reads it (the one
 *  scanner of the shared files: the CLI's "profile could not be found" asks it too). */
int creds_ini_has_profile(const char *text, int is_config, const char *profile);

/* -- service endpoints from the environment and the config file ---------------------------- */

/** The endpoint URL configured for a service, as the AWS SDKs find it, first found wins:
 *  env_name (AWS_ENDPOINT_URL_<SERVICE ID>: the service id upper-cased, spaces to '_'), then,
 *  if `global`, AWS_ENDPOINT_URL; the profile's `services = NAME` section
 *  ([services NAME], "<service id lower-cased> =" then an indented "endpoint_url = URL"); then,
 *  if `global`, the profile's own endpoint_url. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true or
 *  ignore_configured_endpoint_urls = true in the profile turns all of them off. `profile`:
 *  as creds_config_t.profile. `from` names where the URL came from (for messages).
 *  EVREC_E_NOT_FOUND when none is set (use the default endpoint). */
int creds_endpoint_url(const char *env_name, const char *profile, int global, char *out,
                       size_t outlen, char *from, size_t fromlen);

/** The profile in use: `configured`, else AWS_DEFAULT_PROFILE, AWS_PROFILE, "default". */
const char *creds_profile_name(const char *configured);
/** The config file's text (port_free), or NULL when there is none or it cannot be read. */
char *creds_config_text(void);

#endif /* EVREC_CREDENTIALS_H */
