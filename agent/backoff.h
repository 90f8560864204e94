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

/**
 * The periodic flush's first wait after a start: interval/2 + floor(rand / 2^32 * interval),
 * i.e. uniform over [interval/2, 3*interval/2). Devices that boot together then flush at
 * phases spread over a whole interval instead of in lockstep; none waits less than half an
 * interval (events recorded at boot still wait about one interval on average).
 */
uint64_t backoff_phase_ms(uint32_t interval_ms, uint32_t rand_u32);

/** The first time strictly after `now` on the grid `next` + k * interval (k >= 0): the
 *  periodic flush keeps its phase whatever else started a drain. interval 0: now + 1. */
uint64_t backoff_next_tick(uint64_t next, uint64_t now, uint32_t interval_ms);

#endif /* EVREC_BACKOFF_H */
