/*
 * Retry delays: capped exponential backoff with full jitter. Pure: no clock, no sleep, the
 * randomness is the caller's (so tests and the fleet simulation are deterministic).
 */
#ifndef EVREC_BACKOFF_H
#define EVREC_BACKOFF_H

#include <stdint.h>

#define BACKOFF_RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

typedef struct backoff_config {
    uint32_t base_ms; /**< default 1,000 */
    uint32_t cap_ms;  /**< default 300,000 */
} backoff_config_t;

/**
 * delay = floor(rand / 2^32 * min(cap, base * 2^attempt)), attempt counted from 0; then
 * Retry-After (ms, < 0 when absent; capped at BACKOFF_RETRY_AFTER_MAX_MS) is a floor.
 * Never overflows for any attempt. `c` NULL means the defaults (1 s base, 5 min cap).
 */
uint64_t backoff_delay_ms(const backoff_config_t *c, uint32_t attempt, int64_t retry_after_ms,
                          uint32_t rand_u32);

#endif /* EVREC_BACKOFF_H */
