/*
 * evrec — an on-device event recorder for Amazon Pinpoint and Amazon Personalize Events.
 *
 * This header is the whole public API. Everything else in the source tree is private.
 *
 * The shape of the agent:
 *   evrec_record() validates an event, encodes it to JSON once and appends it to a durable
 *   LMDB-backed queue on the caller's thread. It never touches the network.
 *   A flusher (a thread, or evrec_poll() for firmware without threads) batches queued events
 *   per endpoint, signs each request with SigV4 and uploads it, retrying with capped
 *   exponential backoff and full jitter. Events are deleted only once the service has answered
 *   for them (accepted, or permanently rejected).
 *
 * Conventions (they hold for every function below unless its comment says otherwise):
 *   - Returns: every fallible call returns int: EVREC_OK (0) or a negative EVREC_E_* code.
 *     Each function's comment lists the codes it returns besides EVREC_OK; any of them may
 *     also return EVREC_E_NOMEM (an allocation failed; nothing was changed). A NULL agent,
 *     event or required pointer gives EVREC_E_INVALID. evrec_strerror() names a code;
 *     evrec_last_error() gives the detail of the last failure on an agent (per calling
 *     thread), evrec_event_last_error() the detail of the last refused setter on an event.
 *   - Ownership: strings and structs passed in are copied before the call returns; the caller
 *     keeps ownership of what it passes and may free or reuse it at once. Anything returned
 *     says who owns it: "owned by the agent / event" (valid until it is closed / freed, never
 *     freed by the caller), or "free with evrec_free()".
 *   - Threads: any thread may call any function on an agent at the same time, except
 *     evrec_close(), which must be the last call on it (no other call may be running or
 *     start). An event (evrec_event_t) belongs to one thread at a time: build it on one
 *     thread, or lock it yourself. Process-wide: evrec_set_allocator() only before anything
 *     else.
 *   - Callbacks are called from the flusher thread (or from inside evrec_poll() /
 *     evrec_flush() with manual_flush, on the caller's thread), never while evrec holds a
 *     store transaction. They may call evrec_record(), evrec_stats() and the event and
 *     session functions on the agent; they must not call evrec_close(), evrec_flush() or
 *     evrec_poll() (these wait on the flusher that is running the callback), and must return
 *     promptly: the flusher waits for them.
 *   - Never use an agent across fork(): open a new one in the child.
 */
#ifndef EVREC_H
#define EVREC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(EVREC_BUILDING) && defined(__GNUC__)
#define EVREC_API __attribute__((visibility("default")))
#else
#define EVREC_API
#endif

/* ---------------------------------------------------------------------------------------- */
/* Version                                                                                   */
/* ---------------------------------------------------------------------------------------- */

#define EVREC_VERSION_MAJOR 0
#define EVREC_VERSION_MINOR 1
#define EVREC_VERSION_PATCH 0
#define EVREC_VERSION_STRING "0.1.0"
/** Bumped whenever a change breaks binary compatibility; it is the shared library's soname. */
#define EVREC_ABI_VERSION 1 /* 1: evrec_stats_t starts with struct_size */

/** The library's version string, e.g. "0.1.0" (static storage: never free it). Any thread. */
EVREC_API const char *evrec_version(void);

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                    */
/* ---------------------------------------------------------------------------------------- */

typedef enum evrec_error {
    EVREC_OK = 0,

    /* general */
    EVREC_E_INVALID = -1,        /**< an argument is NULL, empty or out of range */
    EVREC_E_NOMEM = -2,          /**< an allocation failed */
    EVREC_E_IO = -3,             /**< the operating system refused a file operation */
    EVREC_E_FULL = -4,           /**< the store is full (refuse-new policy, or the disk is full) */
    EVREC_E_CORRUPT = -5,        /**< the store's files are damaged */
    EVREC_E_FOREIGN = -6,        /**< the directory holds something that is not an evrec store */
    EVREC_E_FORMAT_VERSION = -7, /**< the store was written by a newer, unknown format */
    EVREC_E_TIMEOUT = -8,        /**< the operation did not finish in the time given */
    EVREC_E_CLOSED = -9,         /**< the agent is closing or closed */
    EVREC_E_NOT_FOUND = -10,     /**< no such item */
    EVREC_E_BUSY = -11,          /**< another process holds the role asked for (e.g. flusher) */
    EVREC_E_STATE = -12,         /**< the call does not fit the current state (e.g. no session) */
    EVREC_E_CONFIG = -13,        /**< the options are inconsistent or incomplete */
    EVREC_E_UNSAFE = -14,        /**< the store's directory belongs to another user or is
                                      writable by others, or its files are symbolic links */
    EVREC_E_KEY = -15,           /**< the store's encryption key is missing, wrong or unusable */

    /* validation of events and endpoint profiles (the services' documented quotas) */
    EVREC_E_EVENT_TYPE = -20,     /**< event type missing, or longer than 50 characters */
    EVREC_E_TOO_MANY_FIELDS = -21,/**< more than 40 attributes + metrics, or 250 endpoint attributes */
    EVREC_E_NAME_LENGTH = -22,    /**< an attribute or metric name is empty or too long */
    EVREC_E_VALUE_LENGTH = -23,   /**< an attribute value is too long */
    EVREC_E_METRIC_VALUE = -24,   /**< a metric is not a finite number */
    EVREC_E_UTF8 = -25,           /**< a string is not valid UTF-8 */
    EVREC_E_EVENT_SIZE = -26,     /**< the encoded event or profile is larger than allowed */
    EVREC_E_TIMESTAMP = -27,      /**< a timestamp is not valid ISO 8601 or is out of range */
    EVREC_E_ID = -28,             /**< an event, endpoint, user or session id is not acceptable */
    EVREC_E_ENUM = -29,           /**< a value is not one of the service's enumerated values */
    EVREC_E_JSON = -30,           /**< input JSON does not parse or has the wrong shape */
    EVREC_E_TOO_MANY_VALUES = -31,/**< an endpoint attribute has more than 50 values */

    /* signing, credentials, network, service */
    EVREC_E_CREDENTIALS = -40, /**< no provider in the chain gave usable credentials */
    EVREC_E_DNS = -41,         /**< host name did not resolve (retryable) */
    EVREC_E_CONNECT = -42,     /**< connection refused or unreachable (retryable) */
    EVREC_E_NET_TIMEOUT = -43, /**< connect or transfer timed out (retryable) */
    EVREC_E_TLS = -44,         /**< TLS handshake or certificate verification failed */
    EVREC_E_NET = -45,         /**< connection reset, or another transfer failure (retryable) */
    EVREC_E_RESPONSE = -46,    /**< the response is too large or malformed */
    EVREC_E_THROTTLED = -47,   /**< the service answered 429 TooManyRequests (retryable) */
    EVREC_E_SERVICE = -48,     /**< the service answered 5xx (retryable) */
    EVREC_E_AUTH = -49,        /**< the service refused the signature or the credentials (403) */
    EVREC_E_REJECTED = -50,    /**< the service refused the request as bad (4xx, not retryable) */
    EVREC_E_CLOCK_SKEW = -51,  /**< the device clock is too far from the service's */

    /* refusals at record time added later (kept at the end: the values never change) */
    EVREC_E_TOO_OLD = -52,     /**< the event's timestamp is older than max_event_age_ms */
    /** evrec_flush(): every event left is of a shape this agent's service cannot carry (e.g.
     *  Personalize-shaped events in an agent delivering to Pinpoint); they stay queued for an
     *  agent configured for a service that carries them. */
    EVREC_E_OTHER_SERVICE = -53,
} evrec_error_t;

/** A short description of an error code ("event type missing or too long"); an unknown code
 *  gives "unknown error". Static storage: never free it. Any thread. */
EVREC_API const char *evrec_strerror(int code);

/** 1 if an operation that failed with this code may succeed when retried later (network,
 *  throttling, 5xx, timeouts, a busy or full store), else 0. Pure; any thread. */
EVREC_API int evrec_error_is_retryable(int code);

/* ---------------------------------------------------------------------------------------- */
/* Allocation                                                                                */
/* ---------------------------------------------------------------------------------------- */

typedef void *(*evrec_malloc_fn)(size_t size);
typedef void *(*evrec_realloc_fn)(void *ptr, size_t size);
typedef void (*evrec_free_fn)(void *ptr);

/**
 * Route every allocation evrec makes (and the ones cJSON makes on its behalf) through these
 * functions. Call it once, before anything else; all three must be non-NULL (EVREC_E_INVALID
 * otherwise). Passing NULLs for all three restores the C library's allocator. Blocks must be
 * aligned as malloc's are (for max_align_t): a header in front of each block has to be padded
 * to that alignment (on 32-bit ARM an unaligned 64-bit member faults).
 * Returns EVREC_OK, or EVREC_E_INVALID (some but not all three NULL; nothing changed).
 * Not thread-safe: call it before any agent or event exists; memory allocated before must
 * not be freed by the new functions.
 */
EVREC_API int evrec_set_allocator(evrec_malloc_fn m, evrec_realloc_fn r, evrec_free_fn f);

/* ---------------------------------------------------------------------------------------- */
/* Options                                                                                   */
/* ---------------------------------------------------------------------------------------- */

typedef struct evrec evrec_t;             /**< an agent: one store, one flusher */
typedef struct evrec_event evrec_event_t; /**< an event being built */

/**
 * Where events go. Each event is recorded in a *shape*: Personalize-shaped if it carries any
 * Personalize field (user, session, item id, value, properties, recommendation id,
 * impressions, metric attribution), else the shape the agent's service prefers (Pinpoint-shaped
 * for Pinpoint, Kinesis and Firehose). Pinpoint carries Pinpoint-shaped events, Personalize
 * Personalize-shaped ones; Kinesis and Firehose carry both (converted to JSON records at send
 * time), so switching an agent from Pinpoint to a stream strands nothing already queued.
 */
typedef enum evrec_service {
    EVREC_SERVICE_PINPOINT = 0,   /**< Amazon Pinpoint PutEvents (signing name mobiletargeting) */
    EVREC_SERVICE_PERSONALIZE = 1,/**< Amazon Personalize Events PutEvents (signing name personalize) */
    EVREC_SERVICE_KINESIS = 2,    /**< Amazon Kinesis Data Streams PutRecords (signing name kinesis) */
    EVREC_SERVICE_FIREHOSE = 3    /**< Amazon Data Firehose PutRecordBatch (signing name firehose) */
} evrec_service_t;

/** Kinesis PartitionKey of each record. */
typedef enum evrec_partition_key {
    EVREC_PARTITION_ENDPOINT = 0, /**< the endpoint id: one device's events stay on one shard, in order */
    EVREC_PARTITION_SESSION = 1,  /**< the session id (the endpoint id for events without one) */
    EVREC_PARTITION_RANDOM = 2    /**< a random UUID per record: spreads a hot device over shards */
} evrec_partition_key_t;

typedef enum evrec_durability {
    /** One LMDB transaction per record, no fsync: survives the process being killed at any
     *  instant; a power cut loses at most what was committed since the last fsync (every
     *  sync_interval_ms): the store then opens as of that fsync, with a warning. Default. */
    EVREC_DURABLE_PROCESS = 0,
    /** fsync before evrec_record() returns: survives power loss; slowest, most flash wear. */
    EVREC_DURABLE_POWER = 1,
    /** Records are staged in memory and committed every commit_interval_ms or
     *  commit_max_events: fastest, least wear; a crash loses at most that window (a power cut
     *  also what was committed since the last fsync). The mode is the store's: see
     *  set_store_settings. */
    EVREC_DURABLE_BATCHED = 2
} evrec_durability_t;

typedef enum evrec_full_policy {
    EVREC_FULL_DROP_OLDEST = 0, /**< evict the oldest events to make room (counted) — default */
    EVREC_FULL_REFUSE_NEW = 1   /**< evrec_record() fails with EVREC_E_FULL */
} evrec_full_policy_t;

typedef enum evrec_log_level {
    EVREC_LOG_ERROR = 0,
    EVREC_LOG_WARN = 1,
    EVREC_LOG_INFO = 2,
    EVREC_LOG_DEBUG = 3
} evrec_log_level_t;

/** Log sink. `message` is NUL-terminated, already redacted of secrets, and valid only during
 *  the call (copy it to keep it). Called from any thread that calls into evrec (recording
 *  threads as well as the flusher), possibly from several at once: it must be thread-safe.
 *  It must not call back into evrec on the same agent (evrec_last_error() is fine). */
typedef void (*evrec_log_fn)(void *user, evrec_log_level_t level, const char *message);

/** Credentials given by a caller callback. */
typedef struct evrec_credentials {
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[4096]; /**< empty for long-term keys */
    int64_t expiration_ms;    /**< Unix ms when they expire; 0 = never */
} evrec_credentials_t;

/** Fill *out (zeroed before the call; strings NUL-terminated within their arrays) and return
 *  EVREC_OK, or return a negative code: the flusher then tries the next provider of the chain
 *  and, if none answers, backs off with EVREC_E_CREDENTIALS, keeping every event queued.
 *  Called from the flusher thread (or evrec_poll()'s caller) when credentials are first
 *  needed and again before expiration_ms. May block (it delays the upload only); must not
 *  call evrec_close(), evrec_flush() or evrec_poll(). */
typedef int (*evrec_credentials_fn)(void *user, evrec_credentials_t *out);

typedef enum evrec_outcome {
    EVREC_OUTCOME_ACCEPTED = 0, /**< the service accepted the event (202 / 200) */
    EVREC_OUTCOME_REJECTED = 1, /**< the service permanently rejected it (per-event 400) */
    EVREC_OUTCOME_DROPPED = 2   /**< evrec dropped it (evicted, expired, poison) */
} evrec_outcome_t;

/** One event's fate, given to evrec_delivery_fn. Every pointer is owned by evrec and valid only
 *  during the call. */
typedef struct evrec_delivery {
    const char *event_id;
    const char *endpoint_id;
    evrec_outcome_t outcome;
    int status_code;     /**< the service's per-event status code, or 0 */
    const char *reason;  /**< the service's message, or evrec's reason for a drop; may be "" */
} evrec_delivery_t;

/** Told of each event's fate. Called from the flusher thread (inside evrec_poll() with
 *  manual_flush); events evicted by this agent's own records are reported within a tick,
 *  also by an agent without the flusher role (from its background thread, or evrec_poll()),
 *  and those left at evrec_close() on the closing thread. Must not call evrec_close(). */
typedef void (*evrec_delivery_fn)(void *user, const evrec_delivery_t *delivery);

/** Bytes of an encryption key (AES-256). */
#define EVREC_KEY_BYTES 32
/** Gives the application's encryption keys (evrec_options_t.encryption_keys): fill keys[0..*n)
 *  (at most `max`), the current key first, and return 0; any other return fails evrec_open()
 *  with EVREC_E_KEY. Called once, inside evrec_open(), on its caller's thread; evrec copies
 *  the keys and wipes its copies at evrec_close(). Must not call into evrec. */
typedef int (*evrec_keys_fn)(void *user, unsigned char keys[][EVREC_KEY_BYTES], size_t max,
                             size_t *n);

/**
 * Options for evrec_open(). Always start from evrec_options_init(), then set what you need.
 * Strings are copied by evrec_open(). New fields are only ever added at the end.
 */
typedef struct evrec_options {
    size_t struct_size; /**< set by evrec_options_init(); lets old binaries keep working */

    /* -- service ----------------------------------------------------------------------- */
    evrec_service_t service;
    const char *application_id; /**< Pinpoint project (application) id */
    const char *tracking_id;    /**< Personalize event tracker id */
    const char *region;         /**< else AWS_REGION, AWS_DEFAULT_REGION, the profile */
    const char *endpoint_url;   /**< override, e.g. "http://127.0.0.1:8080"; else AWS_ENDPOINT_URL */

    /* -- credentials (first provider that answers wins) ---------------------------------- */
    const char *access_key_id;      /**< 1. static keys */
    const char *secret_access_key;
    const char *session_token;
    evrec_credentials_fn credentials_cb; /**< 2. caller callback */
    void *credentials_user;
    int no_environment_credentials; /**< 3. set to 1 to skip AWS_ACCESS_KEY_ID & co */
    const char *profile;            /**< 4. shared files profile; else AWS_DEFAULT_PROFILE,
                                         AWS_PROFILE, "default". Set, it also skips 3 (the
                                         profile chosen is the identity used) */
    const char *iot_credentials_endpoint; /**< 5. AWS IoT credentials provider host or URL */
    const char *iot_role_alias;
    const char *iot_thing_name;
    const char *iot_cert_file;  /**< device certificate (PEM) */
    const char *iot_key_file;   /**< device private key (PEM) */
    const char *cognito_identity_pool_id; /**< 6. Cognito unauthenticated identity */
    const char *cognito_endpoint_url;     /**< override for the Cognito endpoint */

    /* -- transport ----------------------------------------------------------------------- */
    const char *ca_bundle;      /**< PEM bundle; else AWS_CA_BUNDLE, else the system's */
    int no_verify_tls;          /**< 1 disables certificate verification (tests only!) */
    uint32_t connect_timeout_ms;/**< default 10,000 */
    uint32_t request_timeout_ms;/**< default 60,000 */
    size_t max_response_bytes;  /**< default 1 MiB */

    /* -- store --------------------------------------------------------------------------- */
    evrec_durability_t durability;
    uint32_t sync_interval_ms;   /**< process mode: fsync period; default 1,000 */
    uint32_t commit_interval_ms; /**< batched mode: commit period; default 1,000 */
    uint32_t commit_max_events;  /**< batched mode: commit when this many are staged; default 100 */
    uint64_t max_store_bytes;    /**< bound on queued event bytes; default 64 MiB */
    evrec_full_policy_t full_policy;
    uint64_t max_event_age_ms;   /**< older events are dropped and counted; default 30 days */
    uint64_t map_size_bytes;     /**< LMDB map size; 0 = derived from max_store_bytes */
    int quarantine_corrupt;      /**< 1: move a corrupt store aside and start a new one */
    /** durability and max_store_bytes are the store's, kept in it: a new store takes this
     *  agent's; an existing store keeps its own and the agent follows them (as does every
     *  process writing to it, recorders and the flusher's deletions alike). An agent asking
     *  for other values — a durability other than EVREC_DURABLE_PROCESS, a max_store_bytes
     *  other than the 64 MiB default — fails to open with EVREC_E_CONFIG unless this is 1,
     *  which writes its values into the store: every process follows from its next write.
     *  CLI: --set-store-settings. */
    int set_store_settings;
    int truncate_oversize;       /**< 1: truncate over-long names/values (counted) instead of refusing */

    /* -- sessions and endpoint ----------------------------------------------------------- */
    uint32_t session_timeout_ms; /**< a pause longer than this ends the session; default 5,000 */
    const char *endpoint_id;     /**< override the persisted default endpoint id */

    /* -- delivery ------------------------------------------------------------------------ */
    int manual_flush;             /**< 1: start no flusher thread; drive it with evrec_poll() */
    int no_flusher;               /**< 1: record only; never upload from this agent */
    uint32_t flush_interval_ms;   /**< default 30,000 */
    uint32_t flush_threshold_events; /**< wake the flusher at this many queued; default 100 */
    uint32_t max_batch_events;    /**< per request, ≤ the service's limit (Pinpoint 100,
                                       Personalize 10, Kinesis and Firehose 500); 0: that limit */
    size_t max_request_bytes;     /**< per request, ≤ the service's limit; 0 (default): that limit
                                       (Pinpoint and Personalize 4,000,000 bytes of body;
                                       Kinesis 5 MiB, Firehose 4 MiB of record data) */
    uint32_t backoff_base_ms;     /**< default 1,000 */
    uint32_t backoff_cap_ms;      /**< default 300,000 */
    evrec_delivery_fn on_delivery;
    void *delivery_user;

    /* -- logging ------------------------------------------------------------------------- */
    evrec_log_fn log_fn;          /**< NULL: no logging */
    void *log_user;
    evrec_log_level_t log_level;  /**< default EVREC_LOG_WARN */

    /* -- streams (added later: new fields only ever go at the end) ------------------------- */
    const char *stream_name;      /**< Kinesis: the stream's name (or stream_arn) */
    const char *stream_arn;       /**< Kinesis: the stream's ARN, instead of stream_name */
    const char *delivery_stream_name; /**< Firehose: the delivery stream's name */
    evrec_partition_key_t partition_key; /**< Kinesis; default EVREC_PARTITION_ENDPOINT */
    size_t max_record_bytes;      /**< Kinesis/Firehose: one record, ≤ the service's limit
                                       (Kinesis 1 MiB with its partition key, Firehose
                                       1,000 KiB); 0 (default): that limit. A record over it
                                       is dropped as poison (EVREC_OUTCOME_DROPPED) */

    /* -- metered links ------------------------------------------------------------------- */
    /** Request body bytes the flusher may send per UTC day; 0 (default) = no limit. Spending
     *  is kept in the store (a restart does not reset the day's). A request that would go over
     *  waits for the next UTC day, its events queued (the first request of a day is always
     *  sent, so one larger than the whole budget is not held for ever); batches are made to
     *  fit what is left. */
    uint64_t daily_upload_bytes;
    /** Asked by the flusher (its thread, or evrec_poll()'s caller) before each request: return
     *  1 to send now, 0 to hold back (e.g. only on Wi-Fi, not while roaming). Held-back events
     *  stay queued; it is asked again at the next flush interval or evrec_flush(). NULL:
     *  always allowed. Must not call evrec_close(). */
    int (*upload_allowed)(void *user);
    void *upload_allowed_user;

    /* -- encryption at rest -------------------------------------------------------------- */
    /** A key file (lines of 64 hex digits: the current key first, then older keys still to be
     *  read) that only its owner may read (0600; 0640 for a group store). Every record is
     *  sealed with AES-256-GCM under the current key and names its key, so keys rotate without
     *  losing the backlog. A store holding records of a key not given, or marked encrypted
     *  and opened without a key, fails to open with EVREC_E_KEY: never a plaintext fallback.
     *  CLI: --encryption-key-file. */
    const char *encryption_key_file;
    /** Instead of the file: the application gives its keys (a keystore, a secure element's
     *  unwrapped key): fills keys[0..*n) (at most max), the current key first; returns 0.
     *  Called once, in evrec_open(). */
    evrec_keys_fn encryption_keys;
    void *encryption_keys_user;
} evrec_options_t;

/** Fill *opts with the defaults documented on each field (and struct_size). Cannot fail; any
 *  thread. The struct holds no allocation: nothing to free. */
EVREC_API void evrec_options_init(evrec_options_t *opts);

/* ---------------------------------------------------------------------------------------- */
/* Lifecycle                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/**
 * Open (or create) the store in `store_dir` and start the agent.
 * The directory is created 0700 and the store files 0600. Stale LMDB readers left by killed
 * processes are cleared. A damaged store gives EVREC_E_CORRUPT, a directory holding something
 * else EVREC_E_FOREIGN, a store from a newer evrec EVREC_E_FORMAT_VERSION — unless
 * opts->quarantine_corrupt, which renames a damaged store aside (`<dir>.corrupt-<time>`) and
 * starts an empty one. Several processes may open the same store; only one of them runs the
 * flusher at a time (the others record only).
 * On success *out owns the agent (free with evrec_close()). `opts` may be NULL for defaults.
 * On failure *out is NULL and, if `error_message` is not NULL, up to `error_message_len`
 * bytes of detail are written there (NUL-terminated).
 * Returns EVREC_E_INVALID (out or store_dir NULL, struct_size unset), EVREC_E_CONFIG (options
 * inconsistent, e.g. no application id for Pinpoint, store settings differing without
 * set_store_settings), EVREC_E_IO, EVREC_E_UNSAFE, EVREC_E_CORRUPT, EVREC_E_FOREIGN,
 * EVREC_E_FORMAT_VERSION, EVREC_E_KEY, EVREC_E_FULL (no room for the store), EVREC_E_NOMEM.
 * Everything in `opts` is copied: the caller may free its strings once this returns.
 * Any thread; several agents (of one or several stores) may be open in one process.
 */
EVREC_API int evrec_open(evrec_t **out, const char *store_dir, const evrec_options_t *opts,
                         char *error_message, size_t error_message_len);

/**
 * Stop the agent: ends nothing (sessions stay open for the next start), drains the queue for up
 * to `timeout_ms` if this agent runs a flusher, commits staged records, and frees everything.
 * Returns EVREC_OK, or EVREC_E_TIMEOUT if events were left queued (they are kept on disk), or
 * the commit's error (EVREC_E_FULL / EVREC_E_IO) if staged records (batched mode) could not be
 * committed: those are lost, counted in `dropped_uncommitted` and logged. `agent` may be NULL
 * (EVREC_OK). Whatever it returns, the agent is freed: it must be the last call on `agent`,
 * made when no other thread is inside a call on it, and never from a callback.
 */
EVREC_API int evrec_close(evrec_t *agent, uint32_t timeout_ms);

/** The detail of the last error on `agent` in this thread ("" if none; a NULL agent gives "").
 *  Owned by the agent; valid until this thread's next call on the agent. */
EVREC_API const char *evrec_last_error(const evrec_t *agent);

/** The store's kept durability and max_store_bytes, which this agent follows (see
 *  set_store_settings). Either pointer may be NULL. Returns EVREC_E_INVALID (agent NULL),
 *  EVREC_E_IO / EVREC_E_CORRUPT (the store could not be read). Any thread. */
EVREC_API int evrec_store_settings(evrec_t *agent, evrec_durability_t *durability,
                                   uint64_t *max_store_bytes);

/** Force everything recorded so far to disk (commit staged records and fsync), in any
 *  durability mode. Returns EVREC_E_INVALID, EVREC_E_IO, EVREC_E_FULL (a staged commit found
 *  the disk full: the records stay staged), EVREC_E_CLOSED. Any thread; blocks for the fsync. */
EVREC_API int evrec_sync(evrec_t *agent);

/** How many records this agent has acknowledged (evrec_record() returned EVREC_OK) that wait,
 *  staged in memory, for their commit: batched durability only (always 0 in the other modes).
 *  0 means everything this agent recorded so far is committed, and survives a crash of the
 *  process; the store commits on its own every commit_max_events records or commit_interval_ms,
 *  and evrec_sync() commits at once. For acknowledging upstream only what is kept.
 *  Returns EVREC_E_INVALID (agent or staged NULL; *staged is then 0 if not NULL). Any thread;
 *  cheap (no transaction, no I/O). */
EVREC_API int evrec_staged(evrec_t *agent, uint64_t *staged);

/**
 * Ask the flusher to upload now and wait until the queue is empty or `timeout_ms` passed.
 * Returns EVREC_OK only when the store is empty; EVREC_E_TIMEOUT if events are still queued
 * that this agent can deliver; EVREC_E_OTHER_SERVICE, without waiting out the timeout, when
 * all that is left is of a shape this agent's service cannot carry (evrec_last_error() says
 * how many wait and which services carry them: "3 events are queued that Pinpoint cannot
 * carry (3 wait for Personalize or Kinesis or Firehose)..."). With
 * manual_flush, this runs the flushing work itself on the calling thread.
 * Also returns EVREC_E_INVALID, EVREC_E_STATE (no_flusher, or another process holds the
 * store's flusher role), EVREC_E_CLOSED. Any thread but a callback's; blocks up to timeout_ms.
 */
EVREC_API int evrec_flush(evrec_t *agent, uint32_t timeout_ms);

/**
 * For firmware without threads (options.manual_flush = 1): do one bounded step of flushing
 * work (at most one request) and store in *next_ms how long until it wants to be called again.
 * Returns EVREC_OK whether or not a request went out or was accepted (delivery problems are
 * retried later and show in evrec_stats()); EVREC_E_INVALID (agent or next_ms NULL),
 * EVREC_E_STATE (the agent runs its own flusher thread: manual_flush is 0), EVREC_E_BUSY
 * (another process holds the store's flusher role; call again later), or the store's error
 * (EVREC_E_IO, EVREC_E_CORRUPT). Call it from one thread at a time; callbacks run inside it.
 */
EVREC_API int evrec_poll(evrec_t *agent, uint32_t *next_ms);

/**
 * evrec_poll() that never waits on the network for longer than `budget_ms` (0: not at all):
 * a due request is started and then advanced across calls on libcurl's multi interface, its
 * verdicts carried out in the call that sees it end. *next_ms is when to call again (while a
 * request is in flight: libcurl's own timeout, or 0 when it can go on at once). Returns as
 * evrec_poll(). The longest call is about budget_ms plus the local work of one request
 * (reading the batch, encoding, signing: milliseconds), provided the credentials need no
 * network (static keys, a profile; not IMDS, STS or a credential process, which block while
 * they are fetched) and the URL's host needs no resolver thread (see the README: a numeric
 * URL, or a libcurl built with c-ares). evrec_poll(), evrec_flush() and evrec_close() finish
 * a request left in flight, waiting for it.
 */
EVREC_API int evrec_poll_budget(evrec_t *agent, uint32_t budget_ms, uint32_t *next_ms);

#define EVREC_POLL_IN 1  /**< evrec_pollfd_t.events: wait until readable */
#define EVREC_POLL_OUT 2 /**< evrec_pollfd_t.events: wait until writable */

/** A descriptor an event loop waits on for evrec (see evrec_poll_fds()). */
typedef struct evrec_pollfd {
    int fd;
    int events; /**< EVREC_POLL_IN and/or EVREC_POLL_OUT */
} evrec_pollfd_t;

/**
 * For an event loop (select, poll, epoll, an RTOS's): the sockets of the request in flight
 * (up to `max` in fds, their count in *n) and *timeout_ms, the longest wait before
 * evrec_poll_budget() must be called again (UINT32_MAX when no request is in flight: then the
 * next_ms of the last evrec_poll_budget() applies). After the sockets, where the platform can
 * watch the store's data file (Linux: inotify), one more descriptor (EVREC_POLL_IN), readable
 * when a process — another one recording into the store, or this one — wrote to the store; it
 * is there whether or not a request is in flight. Once it has been handed out, the loop is
 * taken to wait on it: next_ms no longer includes the once-a-second look at the store for
 * other processes' records, and on an empty queue with nothing else timed it is UINT32_MAX
 * (sleep until a descriptor wakes you, or until you record: then call evrec_poll_budget() for
 * a new next_ms). Wait on all of them and the time, then call evrec_poll_budget() (which
 * takes the notification). EVREC_E_INVALID (NULL agent, n or timeout_ms, or fds NULL with
 * max > 0), EVREC_E_STATE (not manual_flush). Same thread rules as evrec_poll().
 */
EVREC_API int evrec_poll_fds(evrec_t *agent, evrec_pollfd_t *fds, size_t max, size_t *n,
                             uint32_t *timeout_ms);

/* ---------------------------------------------------------------------------------------- */
/* Events                                                                                    */
/* ---------------------------------------------------------------------------------------- */

#define EVREC_ID_MAX 128 /**< the longest id evrec accepts, plus room for the NUL */

/** Start an event of `event_type` (required, UTF-8, ≤ 256 characters — Personalize's limit;
 *  Pinpoint's 50 is enforced when the event is recorded for Pinpoint). Free with
 *  evrec_event_free().
 *
 *  Over-long values that the AWS SDKs would silently truncate (the event type for Pinpoint,
 *  attribute and metric names, attribute values) are kept on the event while the setter returns
 *  EVREC_E_NAME_LENGTH / EVREC_E_VALUE_LENGTH: evrec_record() then refuses the event with the
 *  same code, or, if the agent was opened with truncate_oversize, truncates them at a code-point
 *  boundary and counts the event as truncated. Every other violation is refused and not stored.
 *  "Characters" are Unicode code points.
 *
 *  Returns EVREC_E_INVALID (out NULL), EVREC_E_EVENT_TYPE, EVREC_E_UTF8, EVREC_E_NOMEM; on
 *  failure *out is NULL. *out is owned by the caller. Every setter below returns EVREC_OK or
 *  the EVREC_E_* code of the limit it breaks (EVREC_E_INVALID for a NULL event or argument,
 *  EVREC_E_UTF8, EVREC_E_NAME_LENGTH, EVREC_E_VALUE_LENGTH, EVREC_E_TOO_MANY_FIELDS,
 *  EVREC_E_METRIC_VALUE, EVREC_E_TIMESTAMP, EVREC_E_ID, EVREC_E_ENUM, EVREC_E_JSON), with the
 *  detail in evrec_event_last_error(); a refused setter leaves the event as it was (except the
 *  over-long values described above). Setters copy their strings. */
EVREC_API int evrec_event_new(evrec_event_t **out, const char *event_type);

/** Free an event and everything it holds (NULL is fine). The caller's pointer is then
 *  invalid, as are strings evrec_event_id() / evrec_event_last_error() returned for it. */
EVREC_API void evrec_event_free(evrec_event_t *event);

/** Add or replace a string attribute (name ≤ 50, value ≤ 200 characters). */
EVREC_API int evrec_event_set_attribute(evrec_event_t *event, const char *name,
                                        const char *value);

/** Add or replace a numeric metric (name ≤ 50 characters, finite value). */
EVREC_API int evrec_event_set_metric(evrec_event_t *event, const char *name, double value);

/** When the event happened, Unix milliseconds. Default: the time evrec_record() is called. */
EVREC_API int evrec_event_set_timestamp(evrec_event_t *event, int64_t unix_ms);

/** Set the timestamp from an ISO 8601 string ("2026-11-22T10:00:00Z", offsets accepted). */
EVREC_API int evrec_event_set_timestamp_iso(evrec_event_t *event, const char *iso8601);

/** Use this event id instead of a random UUID v4 (1..EVREC_ID_MAX-1 printable characters). */
EVREC_API int evrec_event_set_id(evrec_event_t *event, const char *event_id);

/** Record the event for another endpoint than the agent's own (gateways). */
EVREC_API int evrec_event_set_endpoint_id(evrec_event_t *event, const char *endpoint_id);

/** Application fields of the Pinpoint Event: AppPackageName, AppTitle, AppVersionCode,
 *  ClientSdkVersion, SdkName. `field` is the Pinpoint member name. */
EVREC_API int evrec_event_set_field(evrec_event_t *event, const char *field, const char *value);

/* Personalize fields: setting any of them makes the event Personalize-shaped whatever the
 * agent's service (see evrec_service_t; a Pinpoint agent keeps such events queued for an agent
 * that carries them), with the lengths of the service model: user,
 * session and item ids 1..256 characters (user and session ids also ≤ 255 bytes), recommendation
 * id ≤ 40, ≤ 25 impressions. For Personalize, attributes and metrics are sent as the
 * `properties` JSON object (one value per name) unless properties are set; setting both is
 * refused at record time. */
EVREC_API int evrec_event_set_user_id(evrec_event_t *event, const char *user_id);
EVREC_API int evrec_event_set_session_id(evrec_event_t *event, const char *session_id);
EVREC_API int evrec_event_set_item_id(evrec_event_t *event, const char *item_id);
EVREC_API int evrec_event_set_value(evrec_event_t *event, double event_value);
/** `properties_json`: a JSON object as a string, ≤ 1,024 characters. */
EVREC_API int evrec_event_set_properties(evrec_event_t *event, const char *properties_json);
EVREC_API int evrec_event_set_recommendation_id(evrec_event_t *event, const char *id);
EVREC_API int evrec_event_add_impression(evrec_event_t *event, const char *item_id);
EVREC_API int evrec_event_set_metric_attribution(evrec_event_t *event, const char *source);

/**
 * Build an event from one JSON object in the Pinpoint `Event` shape (EventType, Attributes,
 * Metrics, Timestamp, Session, AppPackageName, ...) or the Personalize `Event` shape
 * (eventType, sentAt, itemId, properties, ...), plus optional "EventId" and "EndpointId"
 * (and "userId"/"sessionId" for Personalize). `len` may be 0 for a NUL-terminated string.
 * Returns EVREC_E_INVALID, EVREC_E_JSON (does not parse, or a member has the wrong type or is
 * unknown) or any setter's code for a member that breaks a limit; on failure *out is NULL.
 * *out is owned by the caller (evrec_event_free()).
 */
EVREC_API int evrec_event_from_json(evrec_event_t **out, const char *json, size_t len);

/** evrec_event_from_json() that says why it refused: on failure up to `error_message_len`
 *  bytes of detail naming the member (e.g. "Attributes.color: expected a string") are written
 *  to `error_message` (NUL-terminated; may be NULL), as evrec_open() does. For input from
 *  outside (a file, a socket) whose bad lines are reported. Returns what evrec_event_from_json()
 *  returns; *out is the caller's on success and NULL on failure, `error_message` is the
 *  caller's buffer ("" on success). Any thread; no agent is involved. */
EVREC_API int evrec_event_from_json_detail(evrec_event_t **out, const char *json, size_t len,
                                           char *error_message, size_t error_message_len);

/** The event's id (assigned by evrec_record() if not set; "" before that and for a NULL
 *  event). Owned by the event: valid until it is freed or its id changes. */
EVREC_API const char *evrec_event_id(const evrec_event_t *event);

/** The detail of the last setter (or evrec_event_from_json()'s parse) refused on this event,
 *  e.g. "attribute name \"x...\" is 51 characters, more than 50" ("" if none; "" for a NULL
 *  event). Owned by the event: valid until its next setter call or evrec_event_free(). */
EVREC_API const char *evrec_event_last_error(const evrec_event_t *event);

/**
 * Validate the event, encode it and append it to the durable queue. Returns in microseconds;
 * never touches the network. On EVREC_OK the event is stored (per the durability mode) and
 * its id is readable with evrec_event_id(). The caller still owns `event`. Recording the same
 * event object twice stores two events with the same id unless a new id is set between.
 * Returns EVREC_E_INVALID (agent or event NULL), the event's validation codes for this
 * agent's service (EVREC_E_EVENT_TYPE, EVREC_E_NAME_LENGTH, EVREC_E_VALUE_LENGTH,
 * EVREC_E_EVENT_SIZE, EVREC_E_TOO_MANY_FIELDS, EVREC_E_ID, ...; nothing is stored),
 * EVREC_E_TOO_OLD (older than max_event_age_ms), EVREC_E_FULL (refuse_new policy, or the disk
 * is full), EVREC_E_IO, EVREC_E_CORRUPT, EVREC_E_KEY, EVREC_E_CLOSED; the detail is in
 * evrec_last_error(). Any thread, concurrently with others; never waits for the flusher.
 */
EVREC_API int evrec_record(evrec_t *agent, evrec_event_t *event);

/* ---------------------------------------------------------------------------------------- */
/* Sessions                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Sessions are the agent's (one open session at a time, shared by every thread); each call
 * records its `_session.*` event as evrec_record() does and returns what evrec_record() returns
 * for it, or EVREC_E_INVALID (agent NULL) / EVREC_E_STATE (no session in a state that allows
 * the call). Any thread; the calls are serialised. */

/** Start a session (stopping any open one first); records `_session.start`. */
EVREC_API int evrec_session_start(evrec_t *agent);
/** Stop the open session; records `_session.stop` with its duration. */
EVREC_API int evrec_session_stop(evrec_t *agent);
/** Pause the open session (app to background); records `_session.pause`. */
EVREC_API int evrec_session_pause(evrec_t *agent);
/** Resume a paused session; if it was paused longer than session_timeout_ms it is stopped and
 *  a new one started instead. Records `_session.resume` (or stop + start). */
EVREC_API int evrec_session_resume(evrec_t *agent);
/** Copy the open session's id into buf ("" and EVREC_E_STATE if none; EVREC_E_INVALID if buf
 *  is NULL, len 0 or too small). The caller owns buf. */
EVREC_API int evrec_session_id(evrec_t *agent, char *buf, size_t len);

/* ---------------------------------------------------------------------------------------- */
/* Endpoint profile (Pinpoint PublicEndpoint)                                                */
/* ---------------------------------------------------------------------------------------- */

/** The agent's default endpoint id (a persisted UUID v4 unless overridden; NULL for a NULL
 *  agent). Owned by the agent: valid until evrec_close(). Any thread. */
EVREC_API const char *evrec_endpoint_id(const evrec_t *agent);

/**
 * Set a string member of an endpoint's profile. `endpoint_id` NULL means the agent's own.
 * `field` is the PublicEndpoint path: "Address", "ChannelType", "EffectiveDate",
 * "EndpointStatus", "OptOut", "RequestId", "Demographic.AppVersion", "Demographic.Locale",
 * "Demographic.Make", "Demographic.Model", "Demographic.ModelVersion", "Demographic.Platform",
 * "Demographic.PlatformVersion", "Demographic.Timezone", "Location.City", "Location.Country",
 * "Location.PostalCode", "Location.Region", "User.UserId". `value` NULL removes the member.
 * The profile is persisted at once and sent with the endpoint's next events.
 * The endpoint_set functions return EVREC_E_INVALID (unknown field, NULL name), the limits'
 * codes (EVREC_E_ID, EVREC_E_NAME_LENGTH, EVREC_E_VALUE_LENGTH, EVREC_E_TOO_MANY_FIELDS,
 * EVREC_E_TOO_MANY_VALUES, EVREC_E_METRIC_VALUE, EVREC_E_UTF8, EVREC_E_ENUM,
 * EVREC_E_EVENT_SIZE, EVREC_E_JSON), or the store's (EVREC_E_IO, EVREC_E_FULL); a refused
 * change leaves the stored profile as it was. Any thread; changes to one profile are
 * serialised (last writer wins per member).
 */
EVREC_API int evrec_endpoint_set(evrec_t *agent, const char *endpoint_id, const char *field,
                                 const char *value);

/** Set Location.Latitude and Location.Longitude (degrees). */
EVREC_API int evrec_endpoint_set_location(evrec_t *agent, const char *endpoint_id,
                                          double latitude, double longitude);

/** Set an endpoint attribute (a list of ≤ 50 strings of ≤ 100 characters); n = 0 removes it. */
EVREC_API int evrec_endpoint_set_attribute(evrec_t *agent, const char *endpoint_id,
                                           const char *name, const char *const *values, size_t n);

/** Set a User.UserAttributes entry (same limits as attributes); n = 0 removes it. */
EVREC_API int evrec_endpoint_set_user_attribute(evrec_t *agent, const char *endpoint_id,
                                                const char *name, const char *const *values,
                                                size_t n);

/** Set an endpoint metric (finite). */
EVREC_API int evrec_endpoint_set_metric(evrec_t *agent, const char *endpoint_id,
                                        const char *name, double value);

/** Replace the whole profile with a PublicEndpoint JSON object (validated). */
EVREC_API int evrec_endpoint_set_json(evrec_t *agent, const char *endpoint_id, const char *json);

/** The endpoint's profile as PublicEndpoint JSON. *out is malloc'ed (evrec's allocator);
 *  the caller owns it: free it with evrec_free(). An endpoint with no profile stored gives "{}".
 *  Returns EVREC_E_INVALID, EVREC_E_IO, EVREC_E_CORRUPT, EVREC_E_NOMEM; on failure *out is
 *  NULL. */
EVREC_API int evrec_endpoint_get_json(evrec_t *agent, const char *endpoint_id, char **out);

/** Free memory that evrec returned to the caller (evrec_endpoint_get_json()); NULL is fine.
 *  Uses evrec's allocator (evrec_set_allocator). */
EVREC_API void evrec_free(void *ptr);

/* ---------------------------------------------------------------------------------------- */
/* Statistics                                                                                */
/* ---------------------------------------------------------------------------------------- */

typedef struct evrec_stats {
    /** Set by the caller to sizeof(evrec_stats_t) before calling evrec_stats(), which fills the
     *  struct only that far (a program built against an older header passes a shorter one) and
     *  sets it to the bytes it filled. Below sizeof(size_t) + 8 it is refused (EVREC_E_INVALID).
     *  New fields are only ever added at the end. */
    size_t struct_size;
    uint64_t queued_events;  /**< events in the store now */
    uint64_t queued_bytes;   /**< their stored size */
    uint64_t endpoints;      /**< endpoint profiles in the store */
    int64_t oldest_ms;       /**< timestamp of the oldest queued event, 0 if empty */
    uint64_t recorded;       /**< events ever recorded into this store */
    /* drops, by reason (persisted in the store, shared across processes) */
    uint64_t dropped_evicted;  /**< evicted to stay within max_store_bytes */
    uint64_t dropped_expired;  /**< older than max_event_age_ms */
    uint64_t dropped_rejected; /**< permanently rejected by the service (per-event 400) */
    uint64_t dropped_poison;   /**< isolated as the cause of a whole-request 400 */
    uint64_t dropped_refused;  /**< refused at record time because the store was full */
    uint64_t dropped_uncommitted; /**< batched mode: acknowledged, staged, and lost because
                                       their commit failed (disk full) when the agent closed */
    uint64_t truncated;        /**< events whose fields were truncated (truncate_oversize) */
    /* delivery */
    uint64_t delivered;        /**< accepted by the service */
    uint64_t requests;         /**< requests sent */
    uint64_t retries;          /**< requests that will be retried (throttled, 5xx, network) */
    int64_t last_upload_ms;    /**< Unix ms of the last accepted request, 0 if none */
    int64_t backoff_until_ms;  /**< Unix ms until which the flusher waits, 0 if not */
    int last_error;            /**< last delivery error code, 0 if none */
    char last_error_message[256];
    /* the store's flusher (this agent's, or another process's as it last wrote its status) */
    int flusher_alive;          /**< 1 if a process (this one included) runs it now, else 0 */
    int64_t flusher_pid;        /**< its process id; if none runs now, the last one's; 0 unknown */
    int64_t flusher_since_ms;   /**< Unix ms when it took the role, 0 if unknown */
    int64_t status_updated_ms;  /**< Unix ms when the delivery fields were written: now for this
                                     agent's flusher; another process's writes them when they
                                     change, at most a second late */
    uint64_t dropped_purged;   /**< deleted on request (evrec_purge, `evrec queue purge`) */
    /* metered links (daily_upload_bytes, upload_allowed) */
    uint64_t deferrals;        /**< requests held back by the limits (this flusher's) */
    uint64_t deferred_events;  /**< events held back now (0 when nothing is held back) */
    uint64_t upload_bytes_today; /**< request body bytes sent this UTC day */
} evrec_stats_t;

/** Fill *out with the store's and this agent's counters. Set out->struct_size first (see
 *  above). Returns EVREC_E_INVALID (agent or out NULL, struct_size too small), EVREC_E_IO /
 *  EVREC_E_CORRUPT (the store could not be read); *out is the caller's. Any thread; cheap (one
 *  read transaction), fine to poll. */
EVREC_API int evrec_stats(evrec_t *agent, evrec_stats_t *out);

/* ---------------------------------------------------------------------------------------- */
/* Queue maintenance: purge and export (support tools)                                      */
/* ---------------------------------------------------------------------------------------- */

/** Which queued events evrec_purge() and evrec_export() take: every criterion set must hold.
 *  Initialise with evrec_filter_init() (nothing set). */
typedef struct evrec_filter {
    int all;                   /**< evrec_purge: 1 to purge with no criterion at all (a
                                    filter with none set is refused otherwise) */
    int64_t created_before_ms; /**< only events stamped before this Unix ms; 0 = any age */
    const char *endpoint_id;   /**< only this endpoint's events; NULL = any */
    int shape;                 /**< only events recorded in this shape (EVREC_SERVICE_PINPOINT
                                    or EVREC_SERVICE_PERSONALIZE: the service the event is
                                    shaped for); -1 = any */
} evrec_filter_t;

/** Set *f to match nothing by criterion (all = 0, no age, any endpoint, shape -1). Cannot
 *  fail; the filter holds no allocation. */
EVREC_API void evrec_filter_init(evrec_filter_t *f);

/** Delete the queued events that match `filter` from the store (every process's), counted in
 *  evrec_stats()'s dropped_purged. *purged (may be NULL) gets how many. A filter with no
 *  criterion and all = 0 is refused with EVREC_E_INVALID (nothing is deleted). Events being
 *  sent at that moment may still be delivered (the store deletes them first; the answer then
 *  finds them gone). Also returns EVREC_E_INVALID (agent or filter NULL, shape unknown),
 *  EVREC_E_IO, EVREC_E_FULL. Any thread. */
EVREC_API int evrec_purge(evrec_t *agent, const evrec_filter_t *filter, uint64_t *purged);

/** Count the queued events that match `filter` (NULL: all; `all` is not needed) into *count:
 *  what evrec_export() would hand out with that filter, and what evrec_purge() would delete
 *  (a record that cannot be decoded counts only when no criterion is set). The store is not
 *  changed; one read transaction over the whole queue (it reads every record: for support
 *  tools and rare checks, not for polling — evrec_stats() has the total). Returns EVREC_OK,
 *  EVREC_E_INVALID (agent or count NULL, shape unknown, endpoint_id empty), EVREC_E_IO,
 *  EVREC_E_NOMEM; *count (the caller's) is 0 on failure. Any thread. */
EVREC_API int evrec_count(evrec_t *agent, const evrec_filter_t *filter, uint64_t *count);

/** 1 if an agent opened for `service` delivers events recorded in `shape`
 *  (EVREC_SERVICE_PINPOINT or EVREC_SERVICE_PERSONALIZE, as in evrec_filter_t), else 0 (also
 *  for an unknown service or shape): Pinpoint carries the Pinpoint shape, Personalize Events
 *  the Personalize shape, Kinesis and Firehose both. Events of a shape the agent's service does
 *  not carry stay queued for an agent whose service does (see evrec_flush()). Pure; any
 *  thread. */
EVREC_API int evrec_service_carries(evrec_service_t service, int shape);

/** Called by evrec_export() with one event as a line of JSON (NUL-terminated, no newline; valid
 *  during the call). A non-zero return stops the export, which returns that value. Called on
 *  evrec_export()'s thread inside a read transaction of the store: it may not call evrec_purge(),
 *  evrec_close() or evrec_export() on the agent; recording from it works but waits for no one. */
typedef int (*evrec_export_fn)(void *user, const char *json, size_t len);

/** Hand every queued event matching `filter` (NULL: all; `all` is not needed), oldest first,
 *  to fn as one JSON object: {"Seq", "CreatedMs", "EventId", "EndpointId", "SessionId" and
 *  "UserId" when set, "Service" (the event's shape: "pinpoint" or "personalize"), "Event" (the
 *  event as it goes on the wire)}; a record that cannot be read gives {"Seq", "Error"}. The
 *  store is not changed. Runs inside one read transaction of the store. Returns EVREC_OK,
 *  fn's non-zero return, EVREC_E_INVALID (agent or fn NULL), EVREC_E_IO, EVREC_E_NOMEM.
 *  Any thread. */
EVREC_API int evrec_export(evrec_t *agent, const evrec_filter_t *filter, evrec_export_fn fn,
                           void *user);

#ifdef __cplusplus
}
#endif

#endif /* EVREC_H */
