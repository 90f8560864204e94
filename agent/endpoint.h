/*
 * Endpoint profiles (the Pinpoint PublicEndpoint shape), stored as JSON in the queue's
 * `endpoints` database and sent with the endpoint's events. Every change is validated against
 * the endpoint quotas (250 attributes, names <= 50, values <= 100 characters, <= 50 values per
 * attribute, 15 KB encoded, the ChannelType enum, ...) and applied in one write transaction
 * (queue_endpoint_update), so processes sharing a store never lose each other's changes.
 * `id` NULL is not accepted here: the caller (evrec.c) substitutes the agent's default id.
 */
#ifndef EVREC_ENDPOINT_H
#define EVREC_ENDPOINT_H

#include <stddef.h>

#include "queue.h"

#define ENDPOINT_ATTRS_MAX 250
#define ENDPOINT_NAME_MAX 50
#define ENDPOINT_VALUE_MAX 100
#define ENDPOINT_VALUES_MAX 50
#define ENDPOINT_MAX_BYTES (15 * 1000)

/** The store's default endpoint id: `override` if given (validated), else the UUID v4 persisted
 *  in meta (created on first use; processes sharing the store agree on one). */
int endpoint_default_id(evrec_queue_t *q, const char *override, char *out, size_t outlen,
                        char *err, size_t errlen);

/** Set (value != NULL) or remove (value == NULL) a string member, by the field paths listed at
 *  evrec_endpoint_set() in evrec.h. */
int endpoint_set_field(evrec_queue_t *q, const char *id, const char *field, const char *value,
                       char *err, size_t errlen);
int endpoint_set_location(evrec_queue_t *q, const char *id, double latitude, double longitude,
                          char *err, size_t errlen);
/** Attributes (user_attributes 0) or User.UserAttributes (1); n == 0 removes the name. */
int endpoint_set_list(evrec_queue_t *q, const char *id, int user_attributes, const char *name,
                      const char *const *values, size_t n, char *err, size_t errlen);
int endpoint_set_metric(evrec_queue_t *q, const char *id, const char *name, double value,
                        char *err, size_t errlen);
/** Replace the whole profile with a PublicEndpoint JSON object (validated). */
int endpoint_set_json(evrec_queue_t *q, const char *id, const char *json, char *err,
                      size_t errlen);
/** The profile JSON ("{}" if none is stored); *out port_malloc'ed. */
int endpoint_get_json(evrec_queue_t *q, const char *id, char **out);
/** The profile's User.UserId into out ("" and EVREC_E_NOT_FOUND if none). */
int endpoint_user_id(evrec_queue_t *q, const char *id, char *out, size_t outlen);

/** Validate a PublicEndpoint JSON object against the quotas (used by set_json and the CLI). */
int endpoint_validate_json(const char *json, size_t len, char *err, size_t errlen);

#endif /* EVREC_ENDPOINT_H */
