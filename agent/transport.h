/*
 * HTTP(S) transport: one reused libcurl easy handle (connection keep-alive) per owner.
 * Not thread-safe: one transport per thread (the flusher owns one; the CLI owns one).
 */
#ifndef EVREC_TRANSPORT_H
#define EVREC_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct transport transport_t;

typedef struct transport_config {
    const char *ca_bundle;          /**< PEM bundle; NULL: AWS_CA_BUNDLE, else the system's */
    int no_verify_tls;              /**< 1 disables peer and host verification */
    uint32_t connect_timeout_ms;    /**< 0: 10,000 */
    uint32_t request_timeout_ms;    /**< 0: 60,000 */
    size_t max_response_bytes;      /**< 0: 1 MiB; a larger body fails with EVREC_E_RESPONSE */
    const char *client_cert_file;   /**< mutual TLS (AWS IoT credentials provider), PEM */
    const char *client_key_file;
    int verbose;                    /**< 1: log the exchange through log_fn (redacted) */
    void (*log_fn)(void *user, const char *line);
    void *log_user;
} transport_config_t;

typedef struct transport_response {
    long status;                    /**< HTTP status code */
    char *body;                     /**< port_malloc'ed, NUL-terminated (may be "") */
    size_t body_len;
    char date[64];                  /**< the Date header as sent ("" if absent); read with
                                         transport_date_ms, only when needed (it costs a
                                         curl_getdate) */
    int64_t retry_after_ms;         /**< Retry-After (seconds or HTTP date) in ms, -1 if absent,
                                         capped at 24 hours */
    char error_type[128];           /**< x-amzn-ErrorType up to ':' ("" if absent) */
    char request_id[128];           /**< x-amzn-RequestId / x-amz-request-id ("" if absent) */
    char content_type[128];
    unsigned sent;                  /**< how many times the request went out: 0 when no
                                         connection was made, 2 when libcurl resent it on a
                                         fresh connection after a kept-alive one died; set
                                         on failure too */
} transport_response_t;

/** The response's Date header as Unix ms, 0 if absent or unreadable. */
int64_t transport_date_ms(const transport_response_t *resp);

int transport_new(transport_t **out, const transport_config_t *cfg);
void transport_free(transport_t *t);

/**
 * Send one request. `headers` is a NULL-terminated array of "Name: value" lines (Host is taken
 * from the URL; User-Agent evrec/<version> is added unless given). Returns EVREC_OK when any
 * HTTP response arrived (look at resp->status), else a network code: EVREC_E_DNS,
 * EVREC_E_CONNECT, EVREC_E_NET_TIMEOUT, EVREC_E_TLS, EVREC_E_NET, EVREC_E_RESPONSE — with the
 * detail in err. Proxies come from the environment as libcurl reads them.
 */
int transport_send(transport_t *t, const char *method, const char *url,
                   const char *const *headers, const void *body, size_t body_len,
                   transport_response_t *resp, char *err, size_t errlen);

/**
 * The same exchange without blocking (libcurl's multi interface): transport_start() sets it
 * going (body, headers and resp must stay valid until transport_finish()), transport_advance()
 * does what can be done now and waits at most wait_ms for the network (0: not at all), *done
 * says whether it ended; transport_finish() returns what transport_send() would have (or
 * EVREC_E_NET when called before the end: the request is abandoned). One exchange at a time.
 */
int transport_start(transport_t *t, const char *method, const char *url,
                    const char *const *headers, const void *body, size_t body_len,
                    transport_response_t *resp, char *err, size_t errlen);
int transport_advance(transport_t *t, uint32_t wait_ms, int *done);
int transport_finish(transport_t *t, char *err, size_t errlen);

/** What an event loop waits on while an exchange runs: up to `max` fds with their events
 *  (EVREC_POLL_IN, EVREC_POLL_OUT), their count in *n, and the longest wait in ms before transport_advance() must
 *  be called (UINT32_MAX when no exchange runs). */
struct evrec_pollfd;
uint32_t transport_wait_hint(transport_t *t, struct evrec_pollfd *fds, size_t max, size_t *n);

/** Free what a response holds and reset it. */
void transport_response_clear(transport_response_t *resp);

/** Split a URL into scheme://host[:port] and path; host_header gets "host[:port]" as the Host
 *  header must read (default ports omitted). */
int transport_url_host(const char *url, char *host_header, size_t len);

#endif /* EVREC_TRANSPORT_H */
