/*
 * The device providers: 5, the AWS IoT credentials provider (a role alias's credentials over
 * mutual TLS with the thing's certificate), and 6, an Amazon Cognito identity pool,
 * unauthenticated (GetId once, the identity kept in the store's meta, then
 * GetCredentialsForIdentity). Both answer the chain (creds_chain.h) and are gated by it.
 */
#include "creds_chain.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <mbedtls/platform_util.h>

#include "event.h"
#include "port.h"
#include "queue.h"
#include "transport.h"

#define JSON11 "application/x-amz-json-1.1"

static int set(const char *s)
{
    return s && *s;
}

/* A remote provider's expiration time in our clock. The provider's answer says what time it
 * is there (its Date header): a device clock far off would otherwise make fresh credentials
 * look expired (and the request that would correct the clock never leaves) or expired ones
 * fresh. Without a Date the provider's clock is taken to be ours. */
static int64_t remote_expiry(const creds_t *c, int64_t exp_ms, int64_t provider_now_ms)
{
    if (provider_now_ms <= 0)
        return exp_ms;
    return creds_now_ms(c) + (exp_ms - provider_now_ms);
}

/* Whether a remote provider's credentials have already expired by its own clock. */
static int remote_expired(const creds_t *c, int64_t exp_ms, int64_t provider_now_ms)
{
    return exp_ms <= (provider_now_ms > 0 ? provider_now_ms : creds_now_ms(c));
}

static int remote_transport(creds_t *c, transport_t **tx, int mutual)
{
    if (*tx)
        return EVREC_OK;
    transport_config_t tc = {
        .ca_bundle = c->cfg.ca_bundle,
        .no_verify_tls = c->cfg.no_verify_tls,
        .connect_timeout_ms = c->cfg.connect_timeout_ms,
        .request_timeout_ms = c->cfg.request_timeout_ms,
        .max_response_bytes = 64 * 1024,
        .client_cert_file = mutual ? c->cfg.iot_cert_file : NULL,
        .client_key_file = mutual ? c->cfg.iot_key_file : NULL,
    };
    return transport_new(tx, &tc);
}

/* The service's own words for a refusal: "message" / "Message" and "__type". */
static void service_reason(const transport_response_t *r, char *out, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "__type");
    const cJSON *msg = cJSON_GetObjectItem(j, "message");
    const char *t = cJSON_IsString(type) ? type->valuestring : r->error_type;
    const char *m = cJSON_IsString(msg) ? msg->valuestring : "";
    const char *hash = strchr(t, '#'); /* "com.amazonaws...#NotAuthorizedException" */
    if (hash)
        t = hash + 1;
    snprintf(out, len, "HTTP %ld%s%s%s%s", r->status, *t ? " " : "", t, *m ? ": " : "", m);
    cJSON_Delete(j);
}

static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static creds_result_t fail_net(creds_attempt_t *a, creds_provider_t p, int rc, const char *what,
                               const char *err)
{
    creds_note(a, p, "%s failed: %s", what, err[0] ? err : evrec_strerror(rc));
    if (evrec_error_is_retryable(rc) || rc == EVREC_E_TLS)
        a->net_code = a->net_code ? a->net_code : rc;
    return R_FAIL;
}

/* -- 5: the AWS IoT credentials provider --------------------------------------------------- */

/* The request URL and thing-name header of the IoT credentials provider: IOT_OK, IOT_NONE
 * (none of its options given) or IOT_BAD (half configured or malformed; `why` says what). */
int creds_iot_request(const creds_config_t *g, char url[1024], char thing[512], char *why,
                       size_t whylen)
{
    static const char *const names[] = { "iot_credentials_endpoint", "iot_role_alias",
                                         "iot_thing_name", "iot_cert_file", "iot_key_file" };
    const char *values[] = { g->iot_endpoint, g->iot_role_alias, g->iot_thing_name,
                             g->iot_cert_file, g->iot_key_file };
    const char *given = NULL, *missing = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (set(values[i]) && !given)
            given = names[i];
        if (!set(values[i]) && !missing)
            missing = names[i];
    }
    if (!given)
        return IOT_NONE;
    if (missing) {
        snprintf(why, whylen, "%s is set but %s is not (the IoT credentials provider needs "
                 "the endpoint, role alias, thing name, certificate and key)", given, missing);
        return IOT_BAD;
    }
    if (!creds_no_control_chars(g->iot_thing_name) || !creds_no_control_chars(g->iot_role_alias) ||
        strchr(g->iot_role_alias, '/') || strchr(g->iot_role_alias, '?')) {
        snprintf(why, whylen, "iot_role_alias or iot_thing_name holds characters it cannot have");
        return IOT_BAD;
    }
    /* The key is a secret (private to its owner, as ssh asks); neither file may be a FIFO or
     * a device, which would block the TLS set-up past any timeout. A missing file is reported
     * by the TLS set-up itself. */
    long owner = -1;
    unsigned mode = 0;
    int kr = port_file_check_private(g->iot_key_file, &owner, &mode);
    int cr = port_file_check_private(g->iot_cert_file, NULL, NULL);
    if (cr == -EINVAL || kr == -EINVAL) {
        snprintf(why, whylen, "%s is not a regular file", cr == -EINVAL ? "iot_cert_file"
                                                                        : "iot_key_file");
        return IOT_BAD;
    }
    if (kr == -EPERM || kr == -EACCES) {
        if (kr == -EPERM)
            snprintf(why, whylen, "iot_key_file %.120s belongs to another user (uid %ld)",
                     g->iot_key_file, owner);
        else
            snprintf(why, whylen, "iot_key_file %.120s may be accessed by group or others "
                     "(mode %04o): chmod 600 it", g->iot_key_file, mode);
        return IOT_BAD;
    }
    int has_scheme = strncmp(g->iot_endpoint, "https://", 8) == 0 ||
                     strncmp(g->iot_endpoint, "http://", 7) == 0;
    size_t elen = strlen(g->iot_endpoint);
    while (elen > 0 && g->iot_endpoint[elen - 1] == '/')
        elen--;
    int n = snprintf(url, 1024, "%s%.*s/role-aliases/%s/credentials",
                     has_scheme ? "" : "https://", (int)elen, g->iot_endpoint, g->iot_role_alias);
    if (n < 0 || n >= 1024 ||
        snprintf(thing, 512, "x-amzn-iot-thingname: %s", g->iot_thing_name) >= 512) {
        snprintf(why, whylen, "the endpoint, role alias or thing name is too long");
        return IOT_BAD;
    }
    return IOT_OK;
}

creds_result_t creds_from_iot(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a)
{
    const creds_config_t *g = &c->cfg;
    char url[1024], thing[512], why[256];
    int state = creds_iot_request(g, url, thing, why, sizeof why);
    if (state == IOT_NONE)
        return R_SKIP;
    if (state == IOT_BAD) {
        creds_note(a, P_IOT, "%s", why);
        return R_STOP;
    }
    int rc = remote_transport(c, &c->iot_tx, 1);
    if (rc != EVREC_OK) {
        creds_note(a, P_IOT, "cannot set up the TLS client (%s)", evrec_strerror(rc));
        return rc == EVREC_E_CONFIG ? R_STOP : R_FAIL;
    }
    const char *const headers[] = { thing, "Accept: application/json", NULL };
    transport_response_t r;
    char err[384];
    rc = transport_send(c->iot_tx, "GET", url, headers, NULL, 0, &r, err, sizeof err);
    if (rc != EVREC_OK)
        return fail_net(a, P_IOT, rc, "GET /role-aliases/.../credentials", err);
    creds_result_t res = R_FAIL;
    if (r.status != 200) {
        service_reason(&r, why, sizeof why);
        creds_note(a, P_IOT, "role alias '%s' for thing '%s': %s", g->iot_role_alias,
                   g->iot_thing_name, why);
        if (r.status >= 500 || r.status == 429)
            a->net_code = a->net_code ? a->net_code
                                      : r.status == 429 ? EVREC_E_THROTTLED : EVREC_E_SERVICE;
        transport_response_clear(&r);
        return R_FAIL;
    }
    cJSON *j = cJSON_ParseWithLength(r.body, r.body_len);
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(j, "credentials");
    const char *id = json_str(cr, "accessKeyId"), *secret = json_str(cr, "secretAccessKey");
    const char *token = json_str(cr, "sessionToken"), *exp = json_str(cr, "expiration");
    int64_t exp_ms = 0, date_ms = transport_date_ms(&r);
    if (!id || !secret || !token || !exp)
        creds_note(a, P_IOT, "the answer lacks credentials.accessKeyId, secretAccessKey, "
                             "sessionToken or expiration");
    else if (event_parse_iso8601(exp, &exp_ms) != EVREC_OK)
        creds_note(a, P_IOT, "the answer's expiration is not an ISO 8601 time");
    else if (remote_expired(c, exp_ms, date_ms))
        creds_note(a, P_IOT, "the answer's credentials have already expired");
    else if (creds_fill(out, id, secret, token, remote_expiry(c, exp_ms, date_ms)) != 0)
        creds_note(a, P_IOT, "the answer holds an over-long key or token");
    else
        res = R_HIT;
    cJSON_Delete(j);
    mbedtls_platform_zeroize(r.body, r.body_len);
    transport_response_clear(&r);
    return res;
}

/* -- 6: an Amazon Cognito identity pool --------------------------------------------------- */

/* One JSON 1.1 call to Cognito Identity with a one-member request {member: value};
 * *answer is the parsed body on HTTP 200. */
static int cognito_call(creds_t *c, const char *url, const char *op, const char *member,
                        const char *value, cJSON **answer, int64_t *date_ms, char *why,
                        size_t whylen, creds_attempt_t *a)
{
    *answer = NULL;
    if (date_ms)
        *date_ms = 0;
    cJSON *req = cJSON_CreateObject();
    char *body = req && cJSON_AddStringToObject(req, member, value)
                     ? cJSON_PrintUnformatted(req)
                     : NULL;
    cJSON_Delete(req);
    if (!body) {
        snprintf(why, whylen, "out of memory");
        return EVREC_E_NOMEM;
    }
    char target[96];
    snprintf(target, sizeof target, "X-Amz-Target: AWSCognitoIdentityService.%s", op);
    const char *const headers[] = { "Content-Type: " JSON11, target, NULL };
    transport_response_t r;
    char err[384];
    int rc = transport_send(c->cognito_tx, "POST", url, headers, body, strlen(body), &r, err,
                            sizeof err);
    cJSON_free(body);
    if (rc != EVREC_OK) {
        snprintf(why, whylen, "%s failed: %s", op, err[0] ? err : evrec_strerror(rc));
        if (evrec_error_is_retryable(rc) || rc == EVREC_E_TLS)
            a->net_code = a->net_code ? a->net_code : rc;
        return rc;
    }
    if (r.status != 200) {
        char reason[256];
        service_reason(&r, reason, sizeof reason);
        snprintf(why, whylen, "%s: %s", op, reason);
        if (r.status >= 500 || r.status == 429)
            a->net_code = a->net_code ? a->net_code
                                      : r.status == 429 ? EVREC_E_THROTTLED : EVREC_E_SERVICE;
        rc = strstr(reason, "ResourceNotFound") || strstr(reason, "NotAuthorized")
                 ? EVREC_E_NOT_FOUND
                 : EVREC_E_CREDENTIALS;
        transport_response_clear(&r);
        return rc;
    }
    *answer = cJSON_ParseWithLength(r.body, r.body_len);
    if (date_ms)
        *date_ms = transport_date_ms(&r);
    mbedtls_platform_zeroize(r.body, r.body_len);
    transport_response_clear(&r);
    if (!*answer) {
        snprintf(why, whylen, "%s: the answer is not JSON", op);
        return EVREC_E_RESPONSE;
    }
    return EVREC_OK;
}

static int cognito_get_id(creds_t *c, const char *url, char *why, size_t whylen, creds_attempt_t *a)
{
    cJSON *ans;
    int rc = cognito_call(c, url, "GetId", "IdentityPoolId", c->cfg.cognito_pool_id, &ans, NULL,
                          why, whylen, a);
    if (rc != EVREC_OK)
        return rc == EVREC_E_NOT_FOUND ? EVREC_E_CREDENTIALS : rc;
    const char *id = json_str(ans, "IdentityId");
    if (!id || strlen(id) >= sizeof c->cognito_id || !creds_no_control_chars(id)) {
        snprintf(why, whylen, "GetId: the answer has no usable IdentityId");
        rc = EVREC_E_RESPONSE;
    } else {
        snprintf(c->cognito_id, sizeof c->cognito_id, "%s", id);
        /* Persist it so the device keeps its identity across restarts. A store that cannot
         * write it costs a new identity next time, not this upload. */
        if (c->cfg.queue)
            queue_meta_put(c->cfg.queue, QUEUE_META_COGNITO_ID, id, strlen(id));
    }
    cJSON_Delete(ans);
    return rc;
}

static int cognito_credentials(creds_t *c, const char *url, evrec_credentials_t *out,
                               char *why, size_t whylen, creds_attempt_t *a)
{
    cJSON *ans;
    int64_t date_ms = 0;
    int rc = cognito_call(c, url, "GetCredentialsForIdentity", "IdentityId", c->cognito_id, &ans,
                          &date_ms, why, whylen, a);
    if (rc != EVREC_OK)
        return rc;
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(ans, "Credentials");
    const char *id = json_str(cr, "AccessKeyId"), *secret = json_str(cr, "SecretKey");
    const char *token = json_str(cr, "SessionToken");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(cr, "Expiration");
    rc = EVREC_E_RESPONSE;
    if (!id || !secret || !token || !cJSON_IsNumber(exp))
        snprintf(why, whylen, "GetCredentialsForIdentity: the answer lacks Credentials."
                              "AccessKeyId, SecretKey, SessionToken or Expiration");
    else if (remote_expired(c, (int64_t)(exp->valuedouble * 1000.0), date_ms))
        snprintf(why, whylen, "GetCredentialsForIdentity: the credentials have already expired");
    else if (creds_fill(out, id, secret, token,
                        remote_expiry(c, (int64_t)(exp->valuedouble * 1000.0), date_ms)) != 0)
        snprintf(why, whylen, "GetCredentialsForIdentity: an over-long key or token");
    else
        rc = EVREC_OK;
    cJSON_Delete(ans);
    return rc;
}

/* The pool id is "<region>:<uuid>"; the pool lives in that region, whatever region the
 * events go to. 0 and the region, or -1 when the pool id is malformed. */
int creds_cognito_region(const char *pool_id, char region[64])
{
    const char *colon = strchr(pool_id, ':');
    region[0] = '\0';
    if (colon && colon - pool_id < 64)
        snprintf(region, 64, "%.*s", (int)(colon - pool_id), pool_id);
    return colon && region[0] && colon[1] && creds_no_control_chars(pool_id) ? 0 : -1;
}

creds_result_t creds_from_cognito(creds_t *c, evrec_credentials_t *out, creds_attempt_t *a)
{
    const creds_config_t *g = &c->cfg;
    if (!set(g->cognito_pool_id))
        return R_SKIP;
    char region[64];
    if (creds_cognito_region(g->cognito_pool_id, region) != 0) {
        creds_note(a, P_COGNITO, "cognito_identity_pool_id '%s' is not <region>:<id>",
                   g->cognito_pool_id);
        return R_STOP;
    }
    /* The service-specific override of the SDKs; not the global AWS_ENDPOINT_URL, which
     * names the PutEvents endpoint and would send these calls there. */
    char env_buf[512];
    const char *env_url = creds_service_endpoint(c, "AWS_ENDPOINT_URL_COGNITO_IDENTITY", env_buf,
                                                 sizeof env_buf);
    char url[512];
    if (set(g->cognito_endpoint_url))
        snprintf(url, sizeof url, "%s", g->cognito_endpoint_url);
    else if (set(env_url))
        snprintf(url, sizeof url, "%s", env_url);
    else
        snprintf(url, sizeof url, "https://cognito-identity.%s.amazonaws.com/", region);
    int rc = remote_transport(c, &c->cognito_tx, 0);
    if (rc != EVREC_OK) {
        creds_note(a, P_COGNITO, "cannot set up the HTTPS client (%s)", evrec_strerror(rc));
        return R_FAIL;
    }
    if (!c->cognito_id[0] && g->queue) {
        char *stored = NULL;
        size_t len = 0;
        if (queue_meta_get(g->queue, QUEUE_META_COGNITO_ID, &stored, &len) == EVREC_OK &&
            stored && len > 0 && len < sizeof c->cognito_id) {
            memcpy(c->cognito_id, stored, len);
            c->cognito_id[len] = '\0';
        }
        port_free(stored);
    }
    char why[512] = "";
    int fresh = 0;
    if (!c->cognito_id[0]) {
        rc = cognito_get_id(c, url, why, sizeof why, a);
        fresh = 1;
    }
    if (rc == EVREC_OK) {
        rc = cognito_credentials(c, url, out, why, sizeof why, a);
        if (rc == EVREC_E_NOT_FOUND && !fresh) {
            /* The remembered identity is gone (deleted, or of another pool): start again. */
            c->cognito_id[0] = '\0';
            rc = cognito_get_id(c, url, why, sizeof why, a);
            if (rc == EVREC_OK)
                rc = cognito_credentials(c, url, out, why, sizeof why, a);
        }
    }
    if (rc == EVREC_OK)
        return R_HIT;
    creds_note(a, P_COGNITO, "pool '%s': %s", g->cognito_pool_id, why);
    return R_FAIL;
}
