/*
 * What the event's files share (event.c the builder, event_json.c JSON input, event_encode.c
 * the one-time encoding, event_util.c dates and ids): the event's layout, the services' limits
 * beyond event.h's, and the builder's checks the other two reuse. Nothing outside them
 * includes this; the rest of the library goes through event.h.
 */
#ifndef EVREC_EVENT_INTERNAL_H
#define EVREC_EVENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "evrec.h"

/* Personalize's limits (botocore personalize-events 2018-03-22). */
#define PZ_STRING_MAX 256        /* StringType, ItemId, UserId */
#define PZ_RECOMMENDATION_MAX 40 /* RecommendationId */
#define PZ_IMPRESSIONS_MAX 25    /* Impression list */
#define PZ_ATTRIBUTION_MAX 1024  /* EventAttributionSource */
/* The record header stores id lengths in one byte. */
#define RECORD_ID_BYTES_MAX 255
/* 0000-01-01 is not representable by the services; 1970..9999 is what ISO 8601's four-digit
 * year and Unix time both cover. */
#define TS_MIN_MS 0LL
#define TS_MAX_MS 253402300799999LL

typedef struct ev_field {
    char *name;
    int is_metric;
    char *value; /* attribute */
    double number; /* metric */
} ev_field_t;

enum { APP_PACKAGE, APP_TITLE, APP_VERSION_CODE, APP_CLIENT_SDK_VERSION, APP_SDK_NAME, APP_COUNT };
/* The Pinpoint Event's application members, in APP_* order (event.c). */
extern const char *const event_app_field_names[APP_COUNT];

struct evrec_event {
    char *type;
    ev_field_t fields[EVENT_FIELDS_MAX];
    size_t nfields;
    int has_timestamp;
    int64_t timestamp_ms;
    char id[EVREC_ID_MAX];
    char *endpoint_id;
    char *app[APP_COUNT];
    /* Pinpoint Session given explicitly (from JSON); else the agent's open session is used. */
    int has_session;
    int64_t session_start_ms;
    int64_t session_stop_ms; /* 0: none */
    int has_duration;
    int64_t session_duration_ms;
    /* Personalize */
    char *user_id;
    char *session_id; /* also the Pinpoint Session.Id when has_session */
    char *item_id;
    int has_value;
    double value;
    char *properties;
    char *recommendation_id;
    char *impressions[PZ_IMPRESSIONS_MAX];
    size_t nimpressions;
    char *attribution;
    char err[256];
};


/* Write the message (a printf format) of a failed call on `ev` into the event and return
 * `code`. */
#define EV_FAIL(ev, code, ...) util_failf((ev)->err, sizeof (ev)->err, (code), __VA_ARGS__)

/* Replace *slot with a copy of s (NULL clears). EVREC_OK or EVREC_E_NOMEM. */
int event_set_str(char **slot, const char *s);

/* An id: 1..max_chars characters of valid UTF-8 without control characters. `in_header`: it
 * also goes in the record header, whose lengths are one byte (<= RECORD_ID_BYTES_MAX bytes).
 * `visible_ascii` narrows it to 0x21..0x7E. EVREC_OK, EVREC_E_ID or EVREC_E_UTF8 with a
 * message naming `what` in err. */
int event_check_id_in(char *err, size_t errlen, const char *what, const char *s, long max_chars,
                      int in_header, int visible_ascii);

/* The event type: required, valid UTF-8, <= PZ_STRING_MAX characters (the wider of the two
 * services' limits; Pinpoint's EVENT_TYPE_MAX is checked when the event is encoded for it).
 * EVREC_OK, EVREC_E_EVENT_TYPE or EVREC_E_UTF8. */
int event_check_type(char *err, size_t errlen, const char *type);

/* Bytes taken by the first `chars` code points of a valid UTF-8 string (event_util.c). */
size_t event_utf8_prefix(const char *s, size_t len, long chars);

#endif /* EVREC_EVENT_INTERNAL_H */
