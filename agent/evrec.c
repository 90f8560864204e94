/* The public API (include/evrec.h): options, lifecycle, recording, stats, endpoint wrappers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "agent.h"
#include "credentials.h"
#include "endpoint.h"
#include "event.h"
#include "flusher.h"
#include "options.h"
#include "port.h"
#include "queue.h"
#include "record.h"
#include "seal.h"
#include "service.h"
#include "session.h"
#include "util_str.h"

/* -- options ------------------------------------------------------------------------------- */

static int empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

static int config_error(char *err, size_t errlen, const char *fmt, ...) LOG_PRINTF(3, 4);
static int config_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    util_vfailf(err, errlen, EVREC_E_CONFIG, fmt, ap);
    va_end(ap);
    return EVREC_E_CONFIG;
}

/* What the backend needs from the options, as it reads them. */
static service_ctx_t service_ctx_of(const evrec_options_t *o)
{
    service_ctx_t c = { 0 };
    c.application_id = o->application_id;
    c.tracking_id = o->tracking_id;
    c.stream_name = o->stream_name;
    c.stream_arn = o->stream_arn;
    c.delivery_stream_name = o->delivery_stream_name;
    c.partition_key = o->partition_key;
    c.max_record_bytes = o->max_record_bytes;
    return c;
}

/* The credential providers' options (the region and transport are added by the caller). */
static void creds_options(const evrec_options_t *o, creds_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->access_key_id = o->access_key_id;
    c->secret_access_key = o->secret_access_key;
    c->session_token = o->session_token;
    c->callback = o->credentials_cb;
    c->callback_user = o->credentials_user;
    c->no_environment = o->no_environment_credentials;
    c->profile = o->profile;
    c->iot_endpoint = o->iot_credentials_endpoint;
    c->iot_role_alias = o->iot_role_alias;
    c->iot_thing_name = o->iot_thing_name;
    c->iot_cert_file = o->iot_cert_file;
    c->iot_key_file = o->iot_key_file;
    c->cognito_pool_id = o->cognito_identity_pool_id;
    c->cognito_endpoint_url = o->cognito_endpoint_url;
}

/* The options' ranges come from options.def (options_check_ranges); what is checked here is
 * what relates options to each other and to the service. */
static int validate_options(evrec_options_t *o, char *err, size_t errlen)
{
    int rc = options_check_ranges(o, 0, err, errlen);
    if (rc != EVREC_OK)
        return rc;
    const service_ops_t *svc = service_get(o->service);
    if (svc == NULL)
        return config_error(err, errlen, "options.service: %d is not a service", (int)o->service);
    if (o->map_size_bytes != 0 && o->map_size_bytes < o->max_store_bytes)
        return config_error(err, errlen, "options.map_size_bytes (%llu) is smaller than "
                            "max_store_bytes (%llu)", (unsigned long long)o->map_size_bytes,
                            (unsigned long long)o->max_store_bytes);
    if (o->durability == EVREC_DURABLE_BATCHED &&
        (o->commit_max_events == 0 || o->commit_interval_ms == 0))
        return config_error(err, errlen, "options.commit_max_events and commit_interval_ms "
                                         "must be > 0 in batched durability");
    if (o->durability == EVREC_DURABLE_PROCESS && o->sync_interval_ms == 0)
        return config_error(err, errlen, "options.sync_interval_ms must be > 0 (use "
                                         "EVREC_DURABLE_POWER to fsync every record)");
    if (o->manual_flush && o->no_flusher)
        return config_error(err, errlen, "options.manual_flush and no_flusher exclude each "
                                         "other");
    if (o->no_flusher)
        return EVREC_OK; /* delivery options are not used */
    service_ctx_t sc = service_ctx_of(o);
    char why[256] = "";
    if (svc->check(&sc, why, sizeof why) != EVREC_OK)
        return config_error(err, errlen, "options.%s (or set no_flusher to record only)", why);
    uint32_t limit = svc->rules.max_events;
    if (o->max_batch_events == 0)
        o->max_batch_events = limit;
    else if (o->max_batch_events > limit)
        return config_error(err, errlen, "options.max_batch_events %u exceeds %s's limit of %u",
                            o->max_batch_events, svc->title, limit);
    if (o->max_request_bytes == 0 || o->max_request_bytes > svc->rules.max_bytes)
        o->max_request_bytes = svc->rules.max_bytes;
    if ((rc = options_check_ranges(o, 1, err, errlen)) != EVREC_OK)
        return rc;
    if (o->backoff_cap_ms < o->backoff_base_ms)
        return config_error(err, errlen, "options.backoff_base_ms (%u) must be > 0 and <= "
                            "backoff_cap_ms (%u)", o->backoff_base_ms, o->backoff_cap_ms);
    if (!empty(o->access_key_id) != !empty(o->secret_access_key))
        return config_error(err, errlen, "options.access_key_id and secret_access_key go "
                                         "together");
    /* Every provider given an option must be complete: a half-configured one would start the
     * agent and only fail (or fall through to another identity) at each upload. */
    creds_config_t cc;
    creds_options(o, &cc);
    return creds_check_config(&cc, err, errlen);
}

static int is_http_url(const char *u)
{
    return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

/* Region and endpoint URL, as the AWS SDKs find them. */
static int resolve_endpoint(evrec_t *a, char *err, size_t errlen)
{
    const evrec_options_t *o = &a->opts;
    if (creds_resolve_region(o->region, o->profile, a->region, sizeof a->region) != EVREC_OK ||
        a->region[0] == '\0')
        return config_error(err, errlen, "no region: set options.region, AWS_REGION or "
                                         "AWS_DEFAULT_REGION, or region in the profile");
    for (const char *c = a->region; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            return config_error(err, errlen, "region '%s' is not a region name", a->region);
    }
    const service_ops_t *svc = service_get(o->service);
    if (svc == NULL)
        return config_error(err, errlen, "options.service: %d is not a service", (int)o->service);
    const char *svc_env = svc->endpoint_env;
    const char *url = o->endpoint_url;
    const char *from = "options.endpoint_url";
    char configured[1024], where[160];
    if (empty(url) && creds_endpoint_url(svc_env, o->profile, 1, configured, sizeof configured,
                                         where, sizeof where) == EVREC_OK) {
        url = configured; /* the environment's or the config file's, as the SDKs read them */
        from = where;
    }
    char def[160];
    if (empty(url)) {
        const char *suffix = strncmp(a->region, "cn-", 3) == 0 ? "amazonaws.com.cn"
                                                                : "amazonaws.com";
        snprintf(def, sizeof def, "https://%s.%s.%s", svc->host_prefix, a->region, suffix);
        url = def;
    } else if (!is_http_url(url)) {
        return config_error(err, errlen, "%s '%s' is not an http:// or https:// URL", from, url);
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    a->endpoint_url = port_strndup(url, len);
    return a->endpoint_url ? EVREC_OK : EVREC_E_NOMEM;
}

static void transport_log(void *user, const char *line)
{
    log_msg(user, EVREC_LOG_DEBUG, "http: %s", line);
}

static void build_flusher_config(evrec_t *a)
{
    const evrec_options_t *o = &a->opts;
    flusher_config_t *f = &a->fcfg;
    memset(f, 0, sizeof *f);
    f->service = o->service;
    f->application_id = o->application_id;
    f->tracking_id = o->tracking_id;
    f->stream_name = o->stream_name;
    f->stream_arn = o->stream_arn;
    f->delivery_stream_name = o->delivery_stream_name;
    f->partition_key = o->partition_key;
    f->max_record_bytes = o->max_record_bytes;
    f->region = a->region;
    f->endpoint_url = a->endpoint_url;

    creds_config_t *c = &f->creds;
    creds_options(o, c);
    c->region = a->region;
    c->queue = a->queue;
    c->ca_bundle = o->ca_bundle;
    c->no_verify_tls = o->no_verify_tls;
    c->connect_timeout_ms = o->connect_timeout_ms;
    c->request_timeout_ms = o->request_timeout_ms;

    transport_config_t *t = &f->transport;
    t->ca_bundle = o->ca_bundle;
    t->no_verify_tls = o->no_verify_tls;
    t->connect_timeout_ms = o->connect_timeout_ms;
    t->request_timeout_ms = o->request_timeout_ms;
    t->max_response_bytes = o->max_response_bytes;
    t->verbose = o->log_fn != NULL && o->log_level >= EVREC_LOG_DEBUG;
    t->log_fn = transport_log;
    t->log_user = &a->log;

    f->max_batch_events = o->max_batch_events;
    f->max_request_bytes = o->max_request_bytes;
    f->backoff.base_ms = o->backoff_base_ms;
    f->backoff.cap_ms = o->backoff_cap_ms;
    f->flush_interval_ms = o->flush_interval_ms;
    f->flush_threshold_events = o->flush_threshold_events;
    f->max_event_age_ms = o->max_event_age_ms;
    f->on_delivery = o->on_delivery;
    f->delivery_user = o->delivery_user;
    f->log = a->log;
    f->manual = o->manual_flush;
    f->keys = a->keys;
    f->daily_upload_bytes = o->daily_upload_bytes;
    f->upload_allowed = o->upload_allowed;
    f->upload_allowed_user = o->upload_allowed_user;
}

/* The queue's detail of its last failure in this thread, else the code's name. */
static const char *queue_detail(evrec_queue_t *q, int rc)
{
    const char *m = queue_last_error(q);
    return m && *m ? m : evrec_strerror(rc);
}

/* -- per-thread error messages ------------------------------------------------------------- */

struct agent_error_buf {
    agent_error_buf_t *prev, *next;
    evrec_t *owner;
    char msg[AGENT_ERROR_LEN];
};

/* A thread that used the agent ends: forget its buffer. */
static void error_buf_destroy(void *p)
{
    agent_error_buf_t *b = p;
    evrec_t *a = b->owner;
    port_mutex_lock(a->mu);
    if (b->prev)
        b->prev->next = b->next;
    else
        a->errors = b->next;
    if (b->next)
        b->next->prev = b->prev;
    port_mutex_unlock(a->mu);
    port_free(b);
}

static agent_error_buf_t *error_buf(const evrec_t *ca)
{
    evrec_t *a = (evrec_t *)ca; /* the buffers are bookkeeping, not the agent's state */
    agent_error_buf_t *b = port_tls_get(a->err_key);
    if (b != NULL)
        return b;
    b = port_calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->owner = a;
    port_mutex_lock(a->mu);
    b->next = a->errors;
    if (a->errors)
        a->errors->prev = b;
    a->errors = b;
    port_mutex_unlock(a->mu);
    if (port_tls_set(a->err_key, b) != 0) {
        error_buf_destroy(b);
        return NULL;
    }
    return b;
}

int agent_error(const evrec_t *a, int code, const char *fmt, ...)
{
    if (a == NULL || a->err_key == NULL)
        return code;
    agent_error_buf_t *b = error_buf(a);
    if (b != NULL) {
        va_list ap;
        va_start(ap, fmt);
        util_vfailf(b->msg, sizeof b->msg, code, fmt, ap);
        va_end(ap);
        log_redact(b->msg); /* details may quote a key or a token */
    }
    return code;
}

EVREC_API const char *evrec_last_error(const evrec_t *agent)
{
    if (agent == NULL || agent->err_key == NULL)
        return "";
    agent_error_buf_t *b = port_tls_get(agent->err_key);
    return b ? b->msg : "";
}

/* -- lifecycle ----------------------------------------------------------------------------- */

static void agent_free(evrec_t *a)
{
    if (a == NULL)
        return;
    if (a->err_key)
        port_tls_free(a->err_key);
    agent_error_buf_t *b = a->errors;
    while (b) {
        agent_error_buf_t *next = b->next;
        port_free(b);
        b = next;
    }
    if (a->tick_cond)
        port_cond_free(a->tick_cond);
    if (a->mu)
        port_mutex_free(a->mu);
    options_free(&a->opts);
    seal_keys_free(a->keys);
    port_free(a->endpoint_url);
    port_free(a->store_dir);
    port_free(a);
}

static void set_message(char *dst, size_t len, const char *msg)
{
    if (dst != NULL && len > 0)
        snprintf(dst, len, "%s", msg);
}

static int start_delivery(evrec_t *a, char *err, size_t errlen)
{
    if (a->opts.no_flusher)
        return EVREC_OK;
    build_flusher_config(a);
    char ferr[AGENT_ERROR_LEN] = "";
    int rc = flusher_new(&a->flusher, a->queue, &a->fcfg, ferr, sizeof ferr);
    if (rc == EVREC_E_BUSY) {
        a->flusher = NULL;
        a->flusher_elsewhere = 1;
        log_msg(&a->log, EVREC_LOG_INFO,
                "another process runs the flusher of %s; this agent records only", a->store_dir);
        return EVREC_OK;
    }
    if (rc != EVREC_OK) {
        a->flusher = NULL;
        snprintf(err, errlen, "could not start the flusher: %.400s",
                 ferr[0] ? ferr : evrec_strerror(rc));
    }
    return rc;
}

/* Encryption at rest: the keys of the key file or the application's callback, if any. */
static int load_keys(evrec_t *a, char *err, size_t errlen)
{
    const evrec_options_t *o = &a->opts;
    if (!empty(o->encryption_key_file) && o->encryption_keys)
        return config_error(err, errlen, "options.encryption_key_file and encryption_keys "
                                         "exclude each other");
    if (!empty(o->encryption_key_file))
        return seal_keys_from_file(&a->keys, o->encryption_key_file, err, errlen);
    if (o->encryption_keys)
        return seal_keys_from_callback(&a->keys, o->encryption_keys, o->encryption_keys_user,
                                       err, errlen);
    return EVREC_OK;
}

EVREC_API int evrec_open(evrec_t **out, const char *store_dir, const evrec_options_t *opts,
                         char *error_message, size_t error_message_len)
{
    char err[AGENT_ERROR_LEN] = "";
    if (out != NULL)
        *out = NULL;
    if (out == NULL || empty(store_dir)) {
        set_message(error_message, error_message_len,
                    out == NULL ? "evrec_open: out is NULL" : "evrec_open: store_dir is empty");
        return EVREC_E_INVALID;
    }
    evrec_t *a = port_calloc(1, sizeof *a);
    if (a == NULL) {
        set_message(error_message, error_message_len, "out of memory");
        return EVREC_E_NOMEM;
    }
    int rc = options_copy(&a->opts, opts, err, sizeof err);
    if (rc != EVREC_OK) {
        port_free(a);
        set_message(error_message, error_message_len, err);
        return rc;
    }
    a->log.fn = a->opts.log_fn;
    a->log.user = a->opts.log_user;
    a->log.level = a->opts.log_level;
    a->store_dir = port_strdup(store_dir);
    rc = validate_options(&a->opts, err, sizeof err);
    /* Configuration is checked before anything touches the disk. */
    if (rc == EVREC_OK && !a->opts.no_flusher)
        rc = resolve_endpoint(a, err, sizeof err);
    if (rc == EVREC_OK)
        rc = load_keys(a, err, sizeof err);
    if (rc == EVREC_OK && (a->store_dir == NULL || port_mutex_new(&a->mu) != 0 ||
                           port_cond_new(&a->tick_cond) != 0 ||
                           port_tls_new(&a->err_key, error_buf_destroy) != 0)) {
        rc = EVREC_E_NOMEM;
        snprintf(err, sizeof err, "out of memory");
    }
    if (rc == EVREC_OK) {
        queue_config_t qc = {
            .durability = a->opts.durability,
            .sync_interval_ms = a->opts.sync_interval_ms,
            .commit_interval_ms = a->opts.commit_interval_ms,
            .commit_max_events = a->opts.commit_max_events,
            .max_store_bytes = a->opts.max_store_bytes,
            .full_policy = a->opts.full_policy,
            .map_size_bytes = a->opts.map_size_bytes,
            .quarantine_corrupt = a->opts.quarantine_corrupt,
            .set_store_settings = a->opts.set_store_settings,
        };
        rc = queue_open(&a->queue, store_dir, &qc, err, sizeof err);
        if (rc == EVREC_OK && err[0]) /* a damaged store was moved aside */
            log_msg(&a->log, EVREC_LOG_WARN, "%s", err);
        if (rc == EVREC_OK && a->opts.on_delivery)
            queue_report_evictions(a->queue, 1);
        if (rc == EVREC_OK)
            err[0] = '\0';
    }
    if (rc == EVREC_OK)
        rc = seal_check_store(a->keys, a->queue, err, sizeof err);
    if (rc == EVREC_OK)
        rc = endpoint_default_id(a->queue, a->opts.endpoint_id, a->endpoint_id,
                                 sizeof a->endpoint_id, err, sizeof err);
    if (rc == EVREC_OK) {
        rc = session_new(&a->session, a->queue, a->opts.session_timeout_ms, &a->log);
        if (rc == EVREC_OK)
            session_set_clock(a->session, &a->clock);
        if (rc != EVREC_OK)
            snprintf(err, sizeof err, "could not load the session state");
    }
    if (rc == EVREC_OK)
        queue_set_wake_hook(a->queue, agent_queue_woke, a);
    if (rc == EVREC_OK)
        rc = start_delivery(a, err, sizeof err);
    if (rc == EVREC_OK && !a->opts.manual_flush &&
        port_thread_start(&a->ticker, agent_ticker_main, a) != 0) {
        rc = EVREC_E_NOMEM;
        snprintf(err, sizeof err, "could not start a thread");
    }
    if (rc != EVREC_OK) {
        if (a->flusher)
            (void)flusher_stop(a->flusher, 0);
        session_free(a->session, port_clock_wall_ms(&a->clock));
        if (a->queue)
            queue_close(a->queue);
        agent_free(a);
        set_message(error_message, error_message_len, err[0] ? err : evrec_strerror(rc));
        return rc;
    }
    log_msg(&a->log, EVREC_LOG_INFO, "opened store %s (endpoint %s, %s)", store_dir,
            a->endpoint_id,
            a->flusher ? (a->opts.manual_flush ? "manual flushing" : "flusher running")
                       : "recording only");
    *out = a;
    return EVREC_OK;
}

EVREC_API int evrec_close(evrec_t *agent, uint32_t timeout_ms)
{
    if (agent == NULL)
        return EVREC_OK;
    if (agent->ticker) {
        port_mutex_lock(agent->mu);
        agent->stopping = 1;
        port_cond_broadcast(agent->tick_cond);
        port_mutex_unlock(agent->mu);
        port_thread_join(agent->ticker);
    }
    int rc = EVREC_OK;
    if (agent->flusher)
        rc = flusher_stop(agent->flusher, timeout_ms);
    else
        agent_deliver_evicted_here(agent); /* the last ones, on the closing thread */
    session_free(agent->session, port_clock_wall_ms(&agent->clock));
    char qerr[512];
    int qrc = queue_close_report(agent->queue, qerr, sizeof qerr);
    if (qrc != EVREC_OK) {
        log_msg(&agent->log, EVREC_LOG_ERROR, "close: %s", qerr);
        rc = qrc; /* events lost outweigh a flush that timed out */
    }
    agent_free(agent);
    return rc;
}

EVREC_API int evrec_store_settings(evrec_t *agent, evrec_durability_t *durability,
                                   uint64_t *max_store_bytes)
{
    if (agent == NULL)
        return EVREC_E_INVALID;
    queue_settings(agent->queue, durability, max_store_bytes);
    return EVREC_OK;
}

EVREC_API int evrec_sync(evrec_t *agent)
{
    if (agent == NULL)
        return EVREC_E_INVALID;
    int rc = queue_sync(agent->queue);
    if (rc != EVREC_OK)
        return agent_error(agent, rc, "sync: could not commit and fsync the store: %s",
                           queue_detail(agent->queue, rc));
    return EVREC_OK;
}

EVREC_API int evrec_staged(evrec_t *agent, uint64_t *staged)
{
    if (staged)
        *staged = 0;
    if (agent == NULL || staged == NULL)
        return EVREC_E_INVALID;
    *staged = queue_staged_count(agent->queue);
    return EVREC_OK;
}

EVREC_API int evrec_service_carries(evrec_service_t service, int shape)
{
    const service_ops_t *s = service_get(service);
    return s && shape >= 0 && service_carries(s, (unsigned)shape);
}

EVREC_API int evrec_event_from_json_detail(evrec_event_t **out, const char *json, size_t len,
                                           char *error_message, size_t error_message_len)
{
    if (error_message && error_message_len)
        error_message[0] = '\0';
    return event_from_json(out, json, len, error_message, error_message_len);
}

static int no_flusher_here(evrec_t *a, const char *what)
{
    if (a->flusher_elsewhere)
        return agent_error(a, EVREC_E_BUSY, "%s: another process runs the flusher of this "
                                            "store; it uploads the events", what);
    return agent_error(a, EVREC_E_STATE, "%s: this agent has no flusher (no_flusher is set)",
                       what);
}

EVREC_API int evrec_flush(evrec_t *agent, uint32_t timeout_ms)
{
    if (agent == NULL)
        return EVREC_E_INVALID;
    if (agent->flusher == NULL)
        return no_flusher_here(agent, "flush");
    (void)queue_sync(agent->queue); /* staged (batched) records are part of "everything" */
    int rc = flusher_flush(agent->flusher, timeout_ms);
    if (rc != EVREC_OK && rc != EVREC_E_TIMEOUT)
        return agent_error(agent, rc, "flush: %s", evrec_strerror(rc));
    if (queue_count(agent->queue) == 0)
        return EVREC_OK;
    /* Left over: events of shapes this backend cannot carry, ones recorded meanwhile, or the
     * time ran out. */
    uint64_t per_shape[RECORD_SHAPES] = { 0 };
    uint64_t other = 0;
    const service_ops_t *svc = service_get(agent->opts.service);
    if (queue_count_shapes(agent->queue, per_shape, RECORD_SHAPES, &other) == EVREC_OK) {
        uint64_t carried = other, stranded = 0;
        char what[256] = "";
        size_t used = 0;
        for (unsigned sh = 0; sh < RECORD_SHAPES; sh++) {
            if (per_shape[sh] == 0)
                continue;
            if (service_carries(svc, sh)) {
                carried += per_shape[sh];
                continue;
            }
            stranded += per_shape[sh];
            char titles[160];
            service_titles_for_shape(sh, titles, sizeof titles);
            int n = snprintf(what + used, sizeof what - used, "%s%llu wait for %s",
                             used ? ", " : "", (unsigned long long)per_shape[sh], titles);
            if (n > 0 && (size_t)n < sizeof what - used)
                used += (size_t)n;
        }
        if (stranded > 0 && carried == 0)
            return agent_error(agent, EVREC_E_OTHER_SERVICE,
                               "flush: %llu event%s queued that %s cannot carry (%s); %s "
                               "for an agent configured for that service",
                               (unsigned long long)stranded, stranded == 1 ? " is" : "s are",
                               svc ? svc->title : "this agent", what,
                               stranded == 1 ? "it stays" : "they stay");
        if (rc == EVREC_E_TIMEOUT || carried > 0)
            return agent_error(agent, EVREC_E_TIMEOUT,
                               "flush: %llu events still queued after %u ms%s%s",
                               (unsigned long long)(carried + stranded), timeout_ms,
                               stranded ? "; " : "", what);
    }
    return agent_error(agent, EVREC_E_TIMEOUT, "flush: %llu events still queued after %u ms",
                       (unsigned long long)queue_count(agent->queue), timeout_ms);
}

/* evrec_poll (budget UINT32_MAX: the whole request) and evrec_poll_budget. */
static int poll_here(evrec_t *agent, uint32_t budget_ms, uint32_t *next_ms)
{
    if (agent == NULL)
        return EVREC_E_INVALID;
    if (agent->flusher == NULL) {
        agent_deliver_evicted_here(agent);
        return no_flusher_here(agent, "poll");
    }
    if (!agent->opts.manual_flush)
        return agent_error(agent, EVREC_E_STATE, "poll: the flusher runs on its own thread; "
                                                 "evrec_poll() is for manual_flush");
    uint32_t tick = agent_run_tick(agent);
    uint32_t want = tick;
    int rc = budget_ms == UINT32_MAX ? flusher_poll(agent->flusher, &want)
                                     : flusher_poll_budget(agent->flusher, budget_ms, &want);
    if (next_ms != NULL)
        *next_ms = want < tick ? want : tick;
    if (rc != EVREC_OK)
        return agent_error(agent, rc, "poll: %s", evrec_strerror(rc));
    return EVREC_OK;
}

EVREC_API int evrec_poll(evrec_t *agent, uint32_t *next_ms)
{
    return poll_here(agent, UINT32_MAX, next_ms);
}

EVREC_API int evrec_poll_budget(evrec_t *agent, uint32_t budget_ms, uint32_t *next_ms)
{
    return poll_here(agent, budget_ms == UINT32_MAX ? UINT32_MAX - 1 : budget_ms, next_ms);
}

EVREC_API int evrec_poll_fds(evrec_t *agent, evrec_pollfd_t *fds, size_t max, size_t *n,
                             uint32_t *timeout_ms)
{
    if (agent == NULL || n == NULL || timeout_ms == NULL || (max > 0 && fds == NULL))
        return EVREC_E_INVALID;
    *n = 0;
    *timeout_ms = UINT32_MAX;
    if (agent->flusher == NULL)
        return EVREC_OK;
    if (!agent->opts.manual_flush)
        return agent_error(agent, EVREC_E_STATE, "poll: evrec_poll_fds() is for manual_flush");
    return flusher_poll_fds(agent->flusher, fds, max, n, timeout_ms);
}

/* -- recording ----------------------------------------------------------------------------- */

/* The Personalize userId for events of the default endpoint: its profile's User.UserId. */
static void default_user_id(evrec_t *a, char *out, size_t len)
{
    uint64_t now = port_monotonic_ms();
    port_mutex_lock(a->mu);
    int fresh = a->user_id_read_ms != 0 && now - a->user_id_read_ms < AGENT_USER_ID_TTL_MS;
    if (fresh)
        snprintf(out, len, "%s", a->user_id);
    port_mutex_unlock(a->mu);
    if (fresh)
        return;
    char uid[EVREC_ID_MAX] = "";
    if (endpoint_user_id(a->queue, a->endpoint_id, uid, sizeof uid) != EVREC_OK)
        uid[0] = '\0';
    port_mutex_lock(a->mu);
    snprintf(a->user_id, sizeof a->user_id, "%s", uid);
    a->user_id_read_ms = now ? now : 1;
    port_mutex_unlock(a->mu);
    snprintf(out, len, "%s", uid);
}


int agent_record_with(evrec_t *a, evrec_event_t *ev, event_context_t *ctx)
{
    char uid[EVREC_ID_MAX] = "";
    const service_ops_t *svc = service_get(a->opts.service);
    ctx->preferred_shape = svc ? svc->preferred_shape : RECORD_SHAPE_PINPOINT;
    if (ctx->now_ms == 0)
        ctx->now_ms = port_clock_wall_ms(&a->clock);
    ctx->endpoint_id = a->endpoint_id;
    ctx->truncate_oversize = a->opts.truncate_oversize;
    ctx->max_age_ms = a->opts.max_event_age_ms;
    if (event_shape(ev, ctx->preferred_shape) == RECORD_SHAPE_PERSONALIZE &&
        !event_has_user_id(ev)) {
        /* The userId is the User.UserId of the profile of the event's endpoint: the default
         * one (cached), or the one the event names (read from the store). */
        const char *own = event_endpoint_id(ev);
        if (own == NULL || strcmp(own, a->endpoint_id) == 0)
            default_user_id(a, uid, sizeof uid);
        else if (endpoint_user_id(a->queue, own, uid, sizeof uid) != EVREC_OK)
            uid[0] = '\0';
        ctx->user_id = uid[0] ? uid : NULL;
    }
    /* The record is encoded on the stack (a larger one in a buffer of its own): no
     * allocation between the caller's event and the store. */
    uint8_t stack[AGENT_RECORD_STACK];
    uint8_t *rec = NULL;
    size_t len = 0;
    int truncated = 0;
    char err[AGENT_ERROR_LEN];
    err[0] = '\0';
    int rc = event_encode_record_in(ev, ctx, stack, sizeof stack, &rec, &len, &truncated, err,
                                    sizeof err);
    if (rc != EVREC_OK)
        return agent_error(a, rc, "record: %s", err[0] ? err : evrec_strerror(rc));
    if (a->keys) { /* encrypted at rest: the plain record never reaches the store */
        uint8_t *sealed = NULL;
        size_t slen = 0;
        int src = seal_record(a->keys, rec, len, &sealed, &slen);
        mbedtls_platform_zeroize(rec, len);
        if (rec != stack)
            port_free(rec);
        if (src != EVREC_OK)
            return agent_error(a, src, "record: cannot encrypt the event: %s",
                               evrec_strerror(src));
        rec = sealed;
        len = slen;
    }
    rc = queue_append(a->queue, rec, len, truncated, NULL);
    if (rec != stack)
        port_free(rec);
    if (rc != EVREC_OK)
        return agent_error(a, rc, "record: event %s not stored: %s", evrec_event_id(ev),
                           queue_detail(a->queue, rc));
    if (a->flusher)
        flusher_notify(a->flusher);
    agent_tick_if_due(a);
    return EVREC_OK;
}

EVREC_API int evrec_record(evrec_t *agent, evrec_event_t *event)
{
    if (agent == NULL)
        return EVREC_E_INVALID;
    if (event == NULL)
        return agent_error(agent, EVREC_E_INVALID, "record: event is NULL");
    event_context_t ctx = { 0 };
    ctx.now_ms = port_clock_wall_ms(&agent->clock);
    ctx.session_duration_ms = -1;
    char sid[SESSION_ID_LEN];
    if (session_current(agent->session, ctx.now_ms, sid, &ctx.session_start_ms))
        ctx.session_id = sid;
    return agent_record_with(agent, event, &ctx);
}

/* -- stats --------------------------------------------------------------------------------- */

static int fill_stats(evrec_t *agent, evrec_stats_t *out);

/* Fills the caller's struct as far as its struct_size reaches (a caller built against an older
 * header passes a shorter struct), then says how far it filled. */
EVREC_API int evrec_stats(evrec_t *agent, evrec_stats_t *out)
{
    if (agent == NULL || out == NULL)
        return agent_error(agent, EVREC_E_INVALID, "stats: out is NULL");
    if (out->struct_size < offsetof(evrec_stats_t, queued_bytes))
        return agent_error(agent, EVREC_E_INVALID,
                           "stats: struct_size is %zu; set it to sizeof(evrec_stats_t)",
                           out->struct_size);
    size_t n = out->struct_size < sizeof *out ? out->struct_size : sizeof *out;
    evrec_stats_t full;
    int rc = fill_stats(agent, &full);
    if (rc != EVREC_OK)
        return rc;
    full.struct_size = n;
    memcpy(out, &full, n);
    return EVREC_OK;
}

static int fill_stats(evrec_t *agent, evrec_stats_t *out)
{
    memset(out, 0, sizeof *out);
    queue_stats_t qs;
    int rc = queue_stats(agent->queue, &qs);
    if (rc != EVREC_OK)
        return agent_error(agent, rc, "stats: could not read the store: %s",
                           queue_detail(agent->queue, rc));
    out->queued_events = qs.events;
    out->queued_bytes = qs.bytes;
    out->endpoints = qs.endpoints;
    out->oldest_ms = qs.oldest_ms;
    out->recorded = qs.counters[QC_RECORDED];
    out->dropped_evicted = qs.counters[QC_EVICTED];
    out->dropped_expired = qs.counters[QC_EXPIRED];
    out->dropped_rejected = qs.counters[QC_REJECTED];
    out->dropped_poison = qs.counters[QC_POISON];
    out->dropped_refused = qs.counters[QC_REFUSED];
    out->dropped_uncommitted = qs.counters[QC_UNCOMMITTED];
    out->truncated = qs.counters[QC_TRUNCATED];
    out->delivered = qs.counters[QC_DELIVERED];
    out->dropped_purged = qs.counters[QC_PURGED];
    if (agent->flusher) {
        flusher_stats(agent->flusher, out);
    } else { /* the delivery state as the store's flusher (another process) last wrote it */
        (void)flusher_stats_from_store(agent->queue, out);
        out->flusher_alive = queue_flusher_alive(agent->queue);
    }
    return EVREC_OK;
}

/* -- endpoint profile ---------------------------------------------------------------------- */

void agent_set_clock(evrec_t *a, const port_clock_t *c)
{
    if (!a)
        return;
    if (c)
        a->clock = *c;
    else
        memset(&a->clock, 0, sizeof a->clock);
}

evrec_queue_t *agent_queue(const evrec_t *a)
{
    return a ? a->queue : NULL;
}

const struct seal_keys *agent_keys(const evrec_t *a)
{
    return a ? a->keys : NULL;
}

EVREC_API const char *evrec_endpoint_id(const evrec_t *agent)
{
    return agent ? agent->endpoint_id : NULL;
}

static const char *endpoint_or_default(const evrec_t *a, const char *id)
{
    return id != NULL ? id : a->endpoint_id;
}

/* After a change: report it, and forget a cached user id the change may have replaced. */
static int endpoint_done(evrec_t *a, const char *id, int rc, const char *err)
{
    if (rc != EVREC_OK)
        return agent_error(a, rc, "endpoint %s: %s", id, err[0] ? err : evrec_strerror(rc));
    if (strcmp(id, a->endpoint_id) == 0) {
        port_mutex_lock(a->mu);
        a->user_id_read_ms = 0;
        port_mutex_unlock(a->mu);
    }
    return EVREC_OK;
}

EVREC_API int evrec_endpoint_set(evrec_t *agent, const char *endpoint_id, const char *field,
                                 const char *value)
{
    if (agent == NULL)
        return EVREC_E_INVALID;
    const char *id = endpoint_or_default(agent, endpoint_id);
    char err[AGENT_ERROR_LEN] = "";
    int rc = endpoint_set_field(agent->queue, id, field, value, err, sizeof err);
    return endpoint_done(agent, id, rc, err);
}

EVREC_API int evrec_endpoint_set_location(evrec_t *agent, const char *endpoint_id,
                                          double latitude, double longitude)
{
    if (agent == NULL)
        return EVREC_E_INVALID;
    const char *id = endpoint_or_default(agent, endpoint_id);
    char err[AGENT_ERROR_LEN] = "";
    int rc = endpoint_set_location(agent->queue, id, latitude, longitude, err, sizeof err);
    return endpoint_done(agent, id, rc, err);
}

static int set_list(evrec_t *agent, const char *endpoint_id, int user, const char *name,
                    const char *const *values, size_t n)
{
    if (agent == NULL)
        return EVREC_E_INVALID;
    const char *id = endpoint_or_default(agent, endpoint_id);
    char err[AGENT_ERROR_LEN] = "";
    int rc = endpoint_set_list(agent->queue, id, user, name, values, n, err, sizeof err);
    return endpoint_done(agent, id, rc, err);
}

EVREC_API int evrec_endpoint_set_attribute(evrec_t *agent, const char *endpoint_id,
                                           const char *name, const char *const *values, size_t n)
{
    return set_list(agent, endpoint_id, 0, name, values, n);
}

EVREC_API int evrec_endpoint_set_user_attribute(evrec_t *agent, const char *endpoint_id,
                                                const char *name, const char *const *values,
                                                size_t n)
{
    return set_list(agent, endpoint_id, 1, name, values, n);
}

EVREC_API int evrec_endpoint_set_metric(evrec_t *agent, const char *endpoint_id,
                                        const char *name, double value)
{
    if (agent == NULL)
        return EVREC_E_INVALID;
    const char *id = endpoint_or_default(agent, endpoint_id);
    char err[AGENT_ERROR_LEN] = "";
    int rc = endpoint_set_metric(agent->queue, id, name, value, err, sizeof err);
    return endpoint_done(agent, id, rc, err);
}

EVREC_API int evrec_endpoint_set_json(evrec_t *agent, const char *endpoint_id, const char *json)
{
    if (agent == NULL)
        return EVREC_E_INVALID;
    const char *id = endpoint_or_default(agent, endpoint_id);
    char err[AGENT_ERROR_LEN] = "";
    int rc = endpoint_set_json(agent->queue, id, json, err, sizeof err);
    return endpoint_done(agent, id, rc, err);
}

EVREC_API int evrec_endpoint_get_json(evrec_t *agent, const char *endpoint_id, char **out)
{
    if (agent == NULL || out == NULL)
        return agent_error(agent, EVREC_E_INVALID, "endpoint: out is NULL");
    *out = NULL;
    const char *id = endpoint_or_default(agent, endpoint_id);
    int rc = endpoint_get_json(agent->queue, id, out);
    if (rc != EVREC_OK)
        return agent_error(agent, rc, "endpoint %s: could not read the profile: %s", id,
                           evrec_strerror(rc));
    return EVREC_OK;
}
