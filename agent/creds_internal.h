/*
 * What the credential providers share with the chain (credentials.c). Each provider in its
 * own file answers with a code and, on failure, a reason naming what it tried and why it
 * failed — never a key, a secret, a token, or a command's output:
 *   EVREC_OK            credentials in *out
 *   EVREC_E_NOT_FOUND   not configured here (the chain moves on, nothing to report)
 *   EVREC_E_CONFIG      half configured (the chain stops: falling through would hide it)
 *   anything else       configured, but it failed (a network code is retryable)
 */
#ifndef EVREC_CREDS_INTERNAL_H
#define EVREC_CREDS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "credentials.h"
#include "transport.h"

/** Fill *out; 0, or -1 when a field is too long for it (refused, not cut). */
int creds_fill(evrec_credentials_t *out, const char *id, const char *secret, const char *token,
               int64_t expiration_ms);

/** A remote expiration (the provider's clock) in our clock, from the answer's Date (0: none). */
int64_t creds_local_expiry(int64_t now_ms, int64_t exp_ms, int64_t provider_now_ms);

#define CREDS_JSON_NEED_EXPIRY 1 /* Expiration is required */
#define CREDS_JSON_VERSION_1 2   /* "Version": 1 is required (credential_process) */
/** Credentials from the JSON the container endpoints, IMDS and credential_process give:
 *  AccessKeyId, SecretAccessKey, Token or SessionToken, Expiration (ISO 8601), as `flags`
 *  ask. `what` names the source in the reason. */
int creds_from_json(const char *body, size_t len, int64_t now_ms, int64_t date_ms, int flags,
                    const char *what, evrec_credentials_t *out, char *why, size_t whylen);

/** A transport for a credentials service (no client certificate); timeout_ms 0 keeps the
 *  configured ones. */
int creds_transport(transport_t **tx, const creds_config_t *cfg, uint32_t timeout_ms);

/** "HTTP <status> <error type>: <message>" from a JSON, XML or plain answer (bounded). */
void creds_http_reason(const transport_response_t *r, char *out, size_t len);


/** A retryable failure of the network or of the service (5xx, 429) as a code. */
int creds_status_code(long status);

/* -- the shared files' scanner (creds_ini.c) -------------------------------------------- */

/** `key` of `profile` in the text of a shared file (creds_ini_get's lookup) into out (cut to
 *  outlen). EVREC_OK, EVREC_E_NOT_FOUND, or EVREC_E_CONFIG for a malformed file with the
 *  1-based line of the problem in *bad_line. is_config 2: `profile` is another kind of
 *  config section, "KIND NAME" ("sso-session NAME"). */
int creds_ini_lookup(const char *text, int is_config, const char *profile, const char *key,
                     char *out, size_t outlen, int *bad_line);

/* -- credential_process (creds_process.c) ------------------------------------------------ */

/** Run a profile's credential_process (split as a POSIX shell would split words, but run
 *  without one) and read its JSON Version 1 answer. */
int creds_process(const char *command, int64_t now_ms, evrec_credentials_t *out, char *why,
                  size_t whylen);
/** Split a command line into at most max-1 words (NULL-terminated) in buf; -1 if it does not
 *  fit or a quote is left open. Exposed for tests. */
int creds_split_command(const char *command, char *buf, size_t buflen, char **argv, size_t max);

/* -- STS (creds_sts.c) ------------------------------------------------------------------- */

typedef struct creds_role {
    const char *role_arn;
    const char *session_name;  /**< NULL: evrec-<unix seconds> */
    const char *external_id;   /**< AssumeRole only; may be NULL */
    const char *duration_s;    /**< may be NULL */
    const char *region;        /**< STS's region; NULL: us-east-1 */
    const char *endpoint_url;  /**< NULL: https://sts.<region>.amazonaws.com */
} creds_role_t;

/** AssumeRole, signed with `source`. */
int creds_sts_assume_role(transport_t **tx, const creds_config_t *cfg, const creds_role_t *role,
                          const evrec_credentials_t *source, int64_t now_ms,
                          evrec_credentials_t *out, char *why, size_t whylen);
/** AssumeRoleWithWebIdentity (unsigned) with the token read from token_file. */
int creds_sts_web_identity(transport_t **tx, const creds_config_t *cfg, const creds_role_t *role,
                           const char *token_file, int64_t now_ms, evrec_credentials_t *out,
                           char *why, size_t whylen);
/** The text of the first <name>...</name> element inside `xml` (entities decoded) into out;
 *  0, or -1 when absent or too long. Exposed for tests. */
int creds_xml_text(const char *xml, size_t len, const char *name, char *out, size_t outlen);

/* -- container, instance metadata, SSO (creds_http.c) ------------------------------------ */

/** ECS / EKS Pod Identity / Greengrass token exchange: AWS_CONTAINER_CREDENTIALS_* . */
int creds_container(transport_t **tx, const creds_config_t *cfg, int64_t now_ms,
                    evrec_credentials_t *out, char *why, size_t whylen);
/** EC2 instance metadata, IMDSv2 (a session token first). */
int creds_imds(transport_t **tx, const creds_config_t *cfg, int64_t now_ms,
               evrec_credentials_t *out, char *why, size_t whylen);
/** The instance's region from IMDSv2 (placement/region). */
int creds_imds_region(const creds_config_t *cfg, char *out, size_t outlen);

typedef struct creds_sso {
    const char *cache_key;   /**< sso_session name, else the start URL (hashed for the file) */
    const char *region;      /**< sso_region */
    const char *account_id, *role_name;
    const char *endpoint_url;/**< NULL: https://portal.sso.<region>.amazonaws.com */
} creds_sso_t;

/** IAM Identity Center: the AWS CLI's cached token, then GetRoleCredentials. */
int creds_sso(transport_t **tx, const creds_config_t *cfg, const creds_sso_t *sso,
              int64_t now_ms, evrec_credentials_t *out, char *why, size_t whylen);

#endif /* EVREC_CREDS_INTERNAL_H */
