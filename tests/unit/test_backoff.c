/* Backoff: full-jitter bounds for every attempt, cap, Retry-After floor, overflow, spread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "backoff.h"
#include "testutil.h"

/* The ceiling min(cap, base * 2^attempt), computed by repeated doubling (independently of
 * the shift the implementation uses). */
static uint64_t ref_ceiling(uint32_t base, uint32_t cap, uint32_t attempt)
{
    uint64_t v = base;
    for (uint32_t i = 0; i < attempt && v < cap; i++)
        v *= 2;
    return v < cap ? v : cap;
}

/* delay must be floor(rand * ceiling / 2^32): delay * 2^32 <= rand * ceiling < (delay+1) * 2^32. */
static void assert_floor_of_fraction(uint64_t delay, uint32_t r, uint64_t ceiling)
{
    uint64_t prod = (uint64_t)r * ceiling; /* both < 2^32 */
    assert_true(delay < ((uint64_t)1 << 32));
    uint64_t lo = delay << 32;
    assert_true(lo <= prod);
    assert_true(prod - lo < ((uint64_t)1 << 32));
}

static uint32_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 32);
}

static void bounds_every_attempt(void **state)
{
    (void)state;
    backoff_config_t c = { 1000, 300000 };
    const uint32_t rands[] = { 0, 1, 12345, 0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu };
    for (uint32_t a = 0; a < 200; a++) {
        uint64_t ceil = ref_ceiling(c.base_ms, c.cap_ms, a);
        for (size_t i = 0; i < sizeof rands / sizeof rands[0]; i++) {
            uint64_t d = backoff_delay_ms(&c, a, -1, rands[i]);
            assert_true(d < ceil);
            assert_floor_of_fraction(d, rands[i], ceil);
        }
        assert_int_equal(backoff_delay_ms(&c, a, -1, 0), 0);
        /* the largest random value reaches the top millisecond of the range */
        assert_int_equal(backoff_delay_ms(&c, a, -1, 0xffffffffu), ceil - 1);
    }
    /* concrete values: attempt 0 -> [0, 1000), attempt 3 -> [0, 8000), attempt 9+ capped */
    assert_int_equal(backoff_delay_ms(&c, 0, -1, 0x80000000u), 500);
    assert_int_equal(backoff_delay_ms(&c, 3, -1, 0x80000000u), 4000);
    assert_int_equal(backoff_delay_ms(&c, 8, -1, 0x80000000u), 128000);
    assert_int_equal(backoff_delay_ms(&c, 9, -1, 0x80000000u), 150000);
    assert_int_equal(backoff_delay_ms(&c, 40, -1, 0x80000000u), 150000);
}

static void cap_and_huge_attempts(void **state)
{
    (void)state;
    backoff_config_t c = { 1000, 300000 };
    const uint32_t huge[] = { 31, 32, 33, 63, 64, 65, 1000, 0x7fffffffu, 0xffffffffu };
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        assert_int_equal(backoff_delay_ms(&c, huge[i], -1, 0xffffffffu), 299999);
        assert_int_equal(backoff_delay_ms(&c, huge[i], -1, 0x40000000u), 75000);
    }
    /* the largest configuration: no wrap anywhere */
    backoff_config_t big = { 0xffffffffu, 0xffffffffu };
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        uint64_t d = backoff_delay_ms(&big, huge[i], -1, 0xffffffffu);
        assert_true(d == 0xfffffffeULL);
    }
    backoff_config_t odd = { 7, 1000 }; /* cap not a power-of-two multiple of base */
    assert_int_equal(backoff_delay_ms(&odd, 7, -1, 0xffffffffu), 895); /* 7*128 = 896 */
    assert_int_equal(backoff_delay_ms(&odd, 8, -1, 0xffffffffu), 999); /* 1792 capped */
    backoff_config_t small_cap = { 5000, 2000 }; /* cap below base: the cap wins */
    assert_int_equal(backoff_delay_ms(&small_cap, 0, -1, 0xffffffffu), 1999);
    backoff_config_t zero = { 0, 300000 };
    assert_int_equal(backoff_delay_ms(&zero, 5, -1, 0xffffffffu), 0);
    /* NULL config: the documented defaults */
    assert_int_equal(backoff_delay_ms(NULL, 0, -1, 0xffffffffu), 999);
    assert_int_equal(backoff_delay_ms(NULL, 50, -1, 0xffffffffu), 299999);
}

static void retry_after_is_a_floor(void **state)
{
    (void)state;
    backoff_config_t c = { 1000, 300000 };
    /* below the jittered value: no effect */
    assert_int_equal(backoff_delay_ms(&c, 9, 1000, 0x80000000u), 150000);
    /* above it: the floor wins, even past the cap */
    assert_int_equal(backoff_delay_ms(&c, 0, 5000, 0x80000000u), 5000);
    assert_int_equal(backoff_delay_ms(&c, 20, 600000, 0xffffffffu), 600000);
    /* zero Retry-After is a floor of zero, not "absent" */
    assert_int_equal(backoff_delay_ms(&c, 0, 0, 0), 0);
    assert_int_equal(backoff_delay_ms(&c, 3, 0, 0x80000000u), 4000);
    /* capped at 24 hours */
    const int64_t day = 24LL * 3600 * 1000;
    assert_true(backoff_delay_ms(&c, 0, day, 0) == (uint64_t)day);
    assert_true(backoff_delay_ms(&c, 0, day + 1, 0) == (uint64_t)day);
    assert_true(backoff_delay_ms(&c, 0, INT64_MAX, 0xffffffffu) == (uint64_t)day);
    assert_true(BACKOFF_RETRY_AFTER_MAX_MS == day);
    /* any negative value means absent */
    assert_int_equal(backoff_delay_ms(&c, 0, INT64_MIN, 0x80000000u), 500);
}

/* The model the implementation must match: the delay is a function of the configuration,
 * the attempt, Retry-After and the caller's random value, and nothing else (no hidden state,
 * no randomness of its own), so a flusher's schedule replays from its injected RNG. */
static uint64_t ref_delay(const backoff_config_t *c, uint32_t attempt, int64_t retry_after,
                          uint32_t r)
{
    uint64_t ceil = ref_ceiling(c->base_ms, c->cap_ms, attempt);
    if (c->base_ms == 0)
        ceil = 0;
    /* floor(r * ceil / 2^32) by long division on 32-bit halves, not a 64-bit shift */
    uint64_t hi = (ceil >> 16) * r, lo = (ceil & 0xffff) * r;
    uint64_t d = (hi + (lo >> 16)) >> 16;
    if (retry_after >= 0) {
        uint64_t floor = (uint64_t)(retry_after < 86400000 ? retry_after : 86400000);
        d = d < floor ? floor : d;
    }
    return d;
}

/* Random configurations, attempts, Retry-After values and random values (a printed seed that
 * EVREC_TEST_SEED takes back): every delay equals the model's, and a second call in a
 * different order gives the same delay (no hidden state). */
static void deterministic(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_backoff deterministic");
    enum { N = 20000 };
    static struct { backoff_config_t c; uint32_t attempt, r; int64_t ra; uint64_t d; } draws[N];
    for (int i = 0; i < N; i++) {
        backoff_config_t c = { lcg(&seed) % 100000, 0 };
        c.cap_ms = lcg(&seed) % 4 == 0 ? lcg(&seed) : c.base_ms + lcg(&seed) % 10000000;
        uint32_t attempt = lcg(&seed) % 70;
        uint32_t r = lcg(&seed);
        int64_t ra = lcg(&seed) % 3 == 0 ? (int64_t)(lcg(&seed) % 200000000) - 100000 : -1;
        uint64_t want = ref_delay(&c, attempt, ra, r);
        uint64_t got = backoff_delay_ms(&c, attempt, ra, r);
        if (got != want)
            fail_msg("base %u cap %u attempt %u retry-after %lld r %u: %llu ms, model %llu ms",
                     c.base_ms, c.cap_ms, attempt, (long long)ra, r, (unsigned long long)got,
                     (unsigned long long)want);
        draws[i].c = c;
        draws[i].attempt = attempt;
        draws[i].r = r;
        draws[i].ra = ra;
        draws[i].d = got;
    }
    for (int i = N - 1; i >= 0; i--)
        assert_true(backoff_delay_ms(&draws[i].c, draws[i].attempt, draws[i].ra, draws[i].r) ==
                    draws[i].d);
}

/* The periodic flush's first wait covers [interval/2, 3*interval/2) evenly (a fleet that boots
 * together spreads over a whole interval), and later ticks stay on that phase's grid. */
static void flush_phase_spread(void **state)
{
    (void)state;
    assert_int_equal(backoff_phase_ms(30000, 0), 15000);
    assert_int_equal(backoff_phase_ms(30000, 0x80000000u), 30000);
    assert_int_equal(backoff_phase_ms(30000, 0xffffffffu), 44999);
    assert_int_equal(backoff_phase_ms(0, 0xffffffffu), 0);
    uint64_t seed = tu_seed("test_backoff flush_phase_spread");
    uint64_t bins[10] = { 0 };
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        uint64_t p = backoff_phase_ms(30000, lcg(&seed));
        assert_true(p >= 15000 && p < 45000);
        bins[(p - 15000) / 3000]++;
    }
    for (int b = 0; b < 10; b++) /* 10% each, +- 1% (sigma ~0.1%) */
        assert_true(bins[b] > (uint64_t)n / 10 - n / 100 && bins[b] < (uint64_t)n / 10 + n / 100);
    /* the grid: first tick after `now`, never earlier, never a whole interval late */
    assert_true(backoff_next_tick(1000, 500, 300) == 1000);   /* not yet due: unchanged */
    assert_true(backoff_next_tick(1000, 1000, 300) == 1300);  /* due now: the next one */
    assert_true(backoff_next_tick(1000, 1950, 300) == 2200);  /* late: stays on the grid */
    assert_true(backoff_next_tick(1000, 2200, 300) == 2500);
    assert_true(backoff_next_tick(1000, 5, 0) == 6);
    assert_true(backoff_next_tick(1000, 1000, 0) == 1001);
}

/* Over many random values the delays cover [0, ceiling) evenly: ten equal bins each get
 * 10% +- 1% of 200,000 draws (the binomial sigma is 0.07%), and the mean is ceiling/2. */
static void roughly_uniform(void **state)
{
    (void)state;
    backoff_config_t c = { 1000, 300000 };
    const uint32_t attempts[] = { 0, 4, 12 };
    for (size_t k = 0; k < 3; k++) {
        uint64_t ceil = ref_ceiling(c.base_ms, c.cap_ms, attempts[k]);
        uint64_t bins[10] = { 0 };
        uint64_t seed = 7 + k, sum = 0;
        const int n = 200000;
        for (int i = 0; i < n; i++) {
            uint64_t d = backoff_delay_ms(&c, attempts[k], -1, lcg(&seed));
            assert_true(d < ceil);
            bins[d * 10 / ceil]++;
            sum += d;
        }
        for (int b = 0; b < 10; b++) {
            assert_true(bins[b] > (uint64_t)n / 10 * 90 / 100);
            assert_true(bins[b] < (uint64_t)n / 10 * 110 / 100);
        }
        double mean = (double)sum / n;
        assert_true(mean > 0.49 * (double)ceil && mean < 0.51 * (double)ceil);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bounds_every_attempt),
        cmocka_unit_test(cap_and_huge_attempts),
        cmocka_unit_test(retry_after_is_a_floor),
        cmocka_unit_test(deterministic),
        cmocka_unit_test(flush_phase_spread),
        cmocka_unit_test(roughly_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
