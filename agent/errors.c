/* Error names and version: the small, static parts of the public API. */
#include "evrec.h"

EVREC_API const char *evrec_version(void)
{
    return EVREC_VERSION_STRING;
}

EVREC_API const char *evrec_strerror(int code)
{
    switch ((evrec_error_t)code) {
    case EVREC_OK: return "success";
    case EVREC_E_INVALID: return "invalid argument";
    case EVREC_E_NOMEM: return "out of memory";
    case EVREC_E_IO: return "input/output error";
    case EVREC_E_FULL: return "store is full";
    case EVREC_E_CORRUPT: return "store is corrupt";
    case EVREC_E_FOREIGN: return "directory is not an evrec store";
    case EVREC_E_FORMAT_VERSION: return "store was written by a newer format";
    case EVREC_E_TIMEOUT: return "timed out";
    case EVREC_E_CLOSED: return "agent is closed";
    case EVREC_E_NOT_FOUND: return "not found";
    case EVREC_E_BUSY: return "busy: held by another process";
    case EVREC_E_STATE: return "not allowed in the current state";
    case EVREC_E_CONFIG: return "invalid configuration";
    case EVREC_E_UNSAFE: return "store directory or files are not safe to use";
    case EVREC_E_KEY: return "encryption key missing, wrong or unusable";
    case EVREC_E_EVENT_TYPE: return "event type missing or too long";
    case EVREC_E_TOO_MANY_FIELDS: return "too many attributes and metrics";
    case EVREC_E_NAME_LENGTH: return "name empty or too long";
    case EVREC_E_VALUE_LENGTH: return "value too long";
    case EVREC_E_METRIC_VALUE: return "metric is not a finite number";
    case EVREC_E_UTF8: return "string is not valid UTF-8";
    case EVREC_E_EVENT_SIZE: return "event or profile too large";
    case EVREC_E_TIMESTAMP: return "invalid timestamp";
    case EVREC_E_ID: return "invalid id";
    case EVREC_E_ENUM: return "value is not one of the allowed values";
    case EVREC_E_JSON: return "invalid JSON input";
    case EVREC_E_TOO_MANY_VALUES: return "too many values for one attribute";
    case EVREC_E_CREDENTIALS: return "no usable credentials";
    case EVREC_E_DNS: return "host name did not resolve";
    case EVREC_E_CONNECT: return "could not connect";
    case EVREC_E_NET_TIMEOUT: return "network timeout";
    case EVREC_E_TLS: return "TLS or certificate verification failed";
    case EVREC_E_NET: return "network transfer failed";
    case EVREC_E_RESPONSE: return "response too large or malformed";
    case EVREC_E_THROTTLED: return "throttled by the service";
    case EVREC_E_SERVICE: return "service error";
    case EVREC_E_AUTH: return "signature or credentials refused";
    case EVREC_E_REJECTED: return "request rejected by the service";
    case EVREC_E_CLOCK_SKEW: return "device clock is skewed";
    case EVREC_E_TOO_OLD: return "event is older than max_event_age";
    case EVREC_E_OTHER_SERVICE: return "queued events need another service";
    }
    return "unknown error";
}

EVREC_API int evrec_error_is_retryable(int code)
{
    switch (code) {
    case EVREC_E_DNS:
    case EVREC_E_CONNECT:
    case EVREC_E_NET_TIMEOUT:
    case EVREC_E_NET:
    case EVREC_E_THROTTLED:
    case EVREC_E_SERVICE:
    case EVREC_E_CLOCK_SKEW:
    case EVREC_E_CREDENTIALS:
    case EVREC_E_TIMEOUT:
    case EVREC_E_BUSY:
        return 1;
    default:
        return 0;
    }
}
