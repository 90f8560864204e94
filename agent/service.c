/* The table of backends (service.h). */
#include "service.h"

#include <string.h>


static const service_ops_t *const backends[] = {
    &service_pinpoint,
    &service_personalize,
    &service_kinesis,
    &service_firehose,
};
#define N_BACKENDS (sizeof backends / sizeof backends[0])

const service_ops_t *service_get(evrec_service_t id)
{
    for (size_t i = 0; i < N_BACKENDS; i++)
        if (backends[i]->id == id)
            return backends[i];
    return NULL;
}

const service_ops_t *service_by_name(const char *name)
{
    for (size_t i = 0; name != NULL && i < N_BACKENDS; i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

const batch_rules_t *service_rules(evrec_service_t id)
{
    const service_ops_t *s = service_get(id);
    return s ? &s->rules : NULL;
}

const service_ops_t *service_of(const batch_t *b)
{
    /* rules is the first member of every backend's table */
    return b != NULL ? (const service_ops_t *)(const void *)b->rules : NULL;
}

int service_carries(const service_ops_t *s, unsigned shape)
{
    return s != NULL && shape < 8 * sizeof s->rules.shapes && (s->rules.shapes & (1u << shape));
}

void service_titles_for_shape(unsigned shape, char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < N_BACKENDS; i++) {
        if (!service_carries(backends[i], shape))
            continue;
        const char *sep = used == 0 ? "" : " or ";
        size_t k = strlen(sep) + strlen(backends[i]->title);
        if (used + k + 1 > len)
            break;
        memcpy(buf + used, sep, strlen(sep));
        memcpy(buf + used + strlen(sep), backends[i]->title, strlen(backends[i]->title));
        used += k;
        buf[used] = '\0';
    }
}

int service_decode(const batch_t *b, long http_status, const char *error_type_header,
                   const char *body, size_t len, wire_result_t *out)
{
    const service_ops_t *s = service_of(b);
    int accepted = s && s->all_accepted && b && body && http_status >= 200 && http_status <= 299
                       ? s->all_accepted(b, http_status, body, len)
                       : 0;
    if (accepted > 0) /* the common answer, confirmed by a count: no tree */
        return wire_accept_all(b, accepted, out);
    return wire_decode_with(b, s ? s->decode_2xx : NULL, http_status, error_type_header, body,
                            len, out);
}
