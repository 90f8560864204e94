/*
 * The agent's periodic queue work: commits of staged records and fsyncs on time (the ticker
 * thread, or recording threads and evrec_poll without one), woken by the queue's hook when
 * this process writes; evictions told to on_delivery when this agent has no flusher.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "agent.h"
#include "flusher.h"
#include "port.h"
#include "queue.h"

#define TICK_MIN_MS 5
#define TICK_MAX_MS 10000 /* removals alone wait ten sync intervals (queue_sync_every_ms) */

static uint32_t clamp_tick(uint32_t ms)
{
    return ms < TICK_MIN_MS ? TICK_MIN_MS : ms > TICK_MAX_MS ? TICK_MAX_MS : ms;
}

/* With nothing staged or unsynced the queue wants no timer (QUEUE_TICK_IDLE): the ticker
 * sleeps until agent_queue_woke() says this process wrote again, so an idle agent does not
 * wake for the queue at all. A write that comes while the tick runs is not missed: wake_gen
 * moves. */
uint32_t agent_run_tick(evrec_t *a)
{
    uint64_t gen = atomic_load(&a->wake_gen);
    uint32_t w = queue_tick(a->queue);
    uint32_t next = w == QUEUE_TICK_IDLE ? w : clamp_tick(w);
    atomic_store(&a->tick_due_ms,
                 w == QUEUE_TICK_IDLE ? UINT64_MAX : port_monotonic_ms() + next);
    if (atomic_load(&a->wake_gen) != gen) {
        atomic_store(&a->tick_due_ms, 0);
        next = TICK_MIN_MS;
    }
    return next;
}

/* The queue's wake hook: timed work again (an fsync or a batched commit is due). */
void agent_queue_woke(void *user)
{
    evrec_t *a = user;
    atomic_fetch_add(&a->wake_gen, 1);
    atomic_store(&a->tick_due_ms, 0);
    /* Not `if (a->ticker)`: the flusher thread, started first, may write (and so call this)
     * while evrec_open is still storing the ticker's handle. Without a ticker (manual_flush)
     * nobody waits and the broadcast is a no-op. */
    port_mutex_lock(a->mu);
    port_cond_broadcast(a->tick_cond);
    port_mutex_unlock(a->mu);
}

/* Without a ticker thread (manual_flush firmware), recording threads do the periodic work
 * when it is due; this cheap check is all they pay. With one, they never wait on an fsync
 * or a batched commit that the ticker does in the background. */
void agent_tick_if_due(evrec_t *a)
{
    if (a->ticker == NULL && port_monotonic_ms() >= atomic_load(&a->tick_due_ms))
        (void)agent_run_tick(a);
}

/* An agent without the flusher role tells on_delivery of the events its own records evicted
 * (with the role, the flusher does, on its thread). */
void agent_deliver_evicted_here(evrec_t *a)
{
    if (a->flusher == NULL)
        flusher_deliver_evicted(a->queue, a->opts.on_delivery, a->opts.delivery_user, &a->log);
}

/* Commits staged records and fsyncs on time even when nobody records. */
void agent_ticker_main(void *arg)
{
    evrec_t *a = arg;
    port_mutex_lock(a->mu);
    while (!a->stopping) {
        port_mutex_unlock(a->mu);
        uint64_t gen = atomic_load(&a->wake_gen);
        uint32_t next = agent_run_tick(a);
        agent_deliver_evicted_here(a);
        port_mutex_lock(a->mu);
        /* a wake after the tick looked is seen here, under the lock the hook takes */
        if (!a->stopping && atomic_load(&a->wake_gen) == gen)
            (void)port_cond_timedwait(a->tick_cond, a->mu, next);
    }
    port_mutex_unlock(a->mu);
}
