/* Limits for metered links: the daily byte budget (see meter.h). */
#include "meter.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int64_t day_of(int64_t wall_ms)
{
    return wall_ms >= 0 ? wall_ms / METER_DAY_MS : -1 - (-1 - wall_ms) / METER_DAY_MS;
}

uint64_t meter_used_today(const meter_t *m, int64_t wall_ms)
{
    return m->day == day_of(wall_ms) ? m->used : 0;
}

uint64_t meter_left(const meter_t *m, int64_t wall_ms)
{
    if (m->budget == 0)
        return UINT64_MAX;
    uint64_t used = meter_used_today(m, wall_ms);
    return used >= m->budget ? 0 : m->budget - used;
}

uint64_t meter_wait_ms(const meter_t *m, size_t len, int64_t wall_ms)
{
    if (m->budget == 0)
        return 0;
    uint64_t used = meter_used_today(m, wall_ms);
    if (used == 0 || (uint64_t)len <= meter_left(m, wall_ms))
        return 0;
    int64_t next_day_ms = (day_of(wall_ms) + 1) * METER_DAY_MS;
    return (uint64_t)(next_day_ms - wall_ms);
}

void meter_spend(meter_t *m, size_t len, int64_t wall_ms)
{
    int64_t today = day_of(wall_ms);
    if (m->day != today) {
        m->day = today;
        m->used = 0;
    }
    m->used += (uint64_t)len;
}

void meter_format(const meter_t *m, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRId64 " %" PRIu64, m->day, m->used);
}

int meter_parse(meter_t *m, const char *text, size_t len)
{
    char tmp[64];
    if (!text || len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, text, len);
    tmp[len] = '\0';
    int64_t day;
    uint64_t used;
    char extra;
    if (sscanf(tmp, "%" SCNd64 " %" SCNu64 " %c", &day, &used, &extra) != 2)
        return -1;
    m->day = day;
    m->used = used;
    return 0;
}
