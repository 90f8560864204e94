/*
 * Limits for metered links: a byte budget per UTC day for request bodies. Pure: the caller
 * gives the wall clock and keeps the state (the flusher persists it in the store's meta as
 * text, so a restart does not reset the day's spending).
 */
#ifndef EVREC_METER_H
#define EVREC_METER_H

#include <stddef.h>
#include <stdint.h>

#define METER_DAY_MS 86400000LL
#define QUEUE_META_UPLOAD_BUDGET "upload_budget" /* "<UTC day> <bytes sent that day>" */

typedef struct meter {
    uint64_t budget; /* request body bytes per UTC day; 0 = no limit */
    int64_t day;     /* the UTC day (days since 1970) `used` counts */
    uint64_t used;   /* bytes sent that day */
} meter_t;

/** Bytes that may still be sent today (UINT64_MAX without a budget). */
uint64_t meter_left(const meter_t *m, int64_t wall_ms);

/** 0 if a request body of `len` bytes may be sent now; else the ms until it may (the start of
 *  the next UTC day). The first request of a day is always allowed, so that a request larger
 *  than the whole budget is not held for ever. */
uint64_t meter_wait_ms(const meter_t *m, size_t len, int64_t wall_ms);

/** Count `len` bytes sent at wall_ms. */
void meter_spend(meter_t *m, size_t len, int64_t wall_ms);

/** Bytes sent today (0 if the state is of another day). */
uint64_t meter_used_today(const meter_t *m, int64_t wall_ms);

/** The state as text (buf of at least 48 bytes), and back: 0, or -1 if `text` is not one
 *  (the state is then left as it was). */
void meter_format(const meter_t *m, char *buf, size_t len);
int meter_parse(meter_t *m, const char *text, size_t len);

#endif /* EVREC_METER_H */
