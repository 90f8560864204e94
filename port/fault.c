/*
 * Fault injection for tests (see port.h). Plain C11 atomics, so every port shares it.
 * This is process-wide state by nature: a test arms a site, the code under test consumes it.
 */
#include "port.h"

#ifdef EVREC_FAULT_INJECTION

#include <stdatomic.h>
#include <string.h>

#define FAULT_SLOTS 8

typedef struct fault_slot {
    _Atomic(const char *) site;
    atomic_int err;
    atomic_uint count;
} fault_slot_t;

static fault_slot_t g_faults[FAULT_SLOTS];
static atomic_uint g_armed; /* how many slots have a non-zero count: the fast path */

void port_fault_set(const char *site, int err, unsigned count)
{
    if (site == NULL)
        return;
    fault_slot_t *free_slot = NULL;
    for (int i = 0; i < FAULT_SLOTS; i++) {
        const char *s = atomic_load(&g_faults[i].site);
        if (s && strcmp(s, site) == 0) {
            free_slot = &g_faults[i];
            break;
        }
        if (!s && !free_slot)
            free_slot = &g_faults[i];
    }
    if (!free_slot)
        return;
    unsigned before = atomic_exchange(&free_slot->count, 0);
    if (before)
        atomic_fetch_sub(&g_armed, 1);
    atomic_store(&free_slot->site, site);
    atomic_store(&free_slot->err, err);
    if (count) {
        atomic_fetch_add(&g_armed, 1);
        atomic_store(&free_slot->count, count);
    }
}

int port_fault_take(const char *site)
{
    if (atomic_load_explicit(&g_armed, memory_order_relaxed) == 0 || site == NULL)
        return 0;
    for (int i = 0; i < FAULT_SLOTS; i++) {
        const char *s = atomic_load(&g_faults[i].site);
        if (!s || strcmp(s, site) != 0)
            continue;
        unsigned c = atomic_load(&g_faults[i].count);
        while (c > 0) {
            if (atomic_compare_exchange_weak(&g_faults[i].count, &c, c - 1)) {
                if (c == 1)
                    atomic_fetch_sub(&g_armed, 1);
                return atomic_load(&g_faults[i].err);
            }
        }
        return 0;
    }
    return 0;
}

#endif /* EVREC_FAULT_INJECTION */
