/* Queued events counted by record shape, for evrec_flush()'s "what is left, and for whom". */
#include <string.h>

#include "queue.h"
#include "record.h"

typedef struct shape_count {
    uint64_t *counts;
    size_t nshapes;
    uint64_t *other;
} shape_count_t;

static int count_one(void *user, uint64_t seq, const void *value, size_t len)
{
    (void)seq;
    shape_count_t *c = user;
    evrec_record_view_t v;
    if (evrec_record_header(value, len, &v) == EVREC_OK && v.shape < c->nshapes)
        c->counts[v.shape]++;
    else
        (*c->other)++;
    return 0;
}

int queue_count_shapes(evrec_queue_t *q, uint64_t *counts, size_t nshapes, uint64_t *other)
{
    if (q == NULL || counts == NULL || other == NULL)
        return EVREC_E_INVALID;
    memset(counts, 0, nshapes * sizeof *counts);
    *other = 0;
    shape_count_t c = { counts, nshapes, other };
    return queue_scan(q, 0, count_one, &c);
}
