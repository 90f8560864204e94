/*
 * Capped exponential backoff with full jitter (see backoff.h).
 *
 * Everything is computed in 64-bit integers: the ceiling is at most 2^32 - 1 and the random
 * value below 2^32, so their product fits, and the exponent is never applied past the cap.
 */
#include "backoff.h"

#define BACKOFF_DEFAULT_BASE_MS 1000u
#define BACKOFF_DEFAULT_CAP_MS 300000u

/* min(cap, base * 2^attempt) without ever shifting base past 32 bits. */
static uint64_t ceiling_ms(uint32_t base, uint32_t cap, uint32_t attempt)
{
    if (base == 0 || cap == 0)
        return 0;
    if (attempt >= 32)
        return cap;
    uint64_t grown = (uint64_t)base << attempt; /* < 2^64: base < 2^32, attempt < 32 */
    return grown < cap ? grown : cap;
}

uint64_t backoff_delay_ms(const backoff_config_t *c, uint32_t attempt, int64_t retry_after_ms,
                          uint32_t rand_u32)
{
    uint32_t base = c ? c->base_ms : BACKOFF_DEFAULT_BASE_MS;
    uint32_t cap = c ? c->cap_ms : BACKOFF_DEFAULT_CAP_MS;
    uint64_t delay = ((uint64_t)rand_u32 * ceiling_ms(base, cap, attempt)) >> 32;
    if (retry_after_ms >= 0) {
        uint64_t floor = retry_after_ms > BACKOFF_RETRY_AFTER_MAX_MS
                             ? (uint64_t)BACKOFF_RETRY_AFTER_MAX_MS
                             : (uint64_t)retry_after_ms;
        if (delay < floor)
            delay = floor;
    }
    return delay;
}

uint64_t backoff_phase_ms(uint32_t interval_ms, uint32_t rand_u32)
{
    return interval_ms / 2 + (((uint64_t)rand_u32 * interval_ms) >> 32);
}

uint64_t backoff_next_tick(uint64_t next, uint64_t now, uint32_t interval_ms)
{
    if (interval_ms == 0)
        return now + 1;
    if (next > now)
        return next;
    return next + ((now - next) / interval_ms + 1) * interval_ms;
}
