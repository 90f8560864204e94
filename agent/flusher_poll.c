/*
 * The flusher without its thread (flusher_config_t.manual): evrec_poll's steps, bounded in
 * time on the transport's multi interface, and the descriptors an event loop waits on.
 */
#include "flusher_internal.h"

/* What each poll does first: the store's count, the status, evictions told; returns the tick.
 * The event loop was woken by the watch's descriptor: take that (and look again in a while:
 * the write may come a moment before its commit can be read, as in thread_main). */
static uint32_t look_around(flusher_t *f)
{
    int changed = f->fds_asked && (port_watch_wait(f->watch, 1, 0) & PORT_WATCH_CHANGED);
    uint32_t tick = flusher_store_tick(f);
    if (changed && tick > FL_STORE_POLL_MS)
        tick = FL_STORE_POLL_MS;
    flusher_count_store(f);
    flusher_persist_status(f, 0);
    flusher_report_evicted(f);
    return tick;
}

/* After a step: go on at once if it sent, else wait until the next one is due. */
static void wait_after(flusher_t *f, step_result_t s, uint32_t tick, uint64_t *wait)
{
    port_mutex_lock(f->mu);
    if (s == STEP_MORE)
        *wait = 0;
    else
        flusher_due_locked(f, port_clock_monotonic_ms(f->cfg.clock), tick, wait);
    port_mutex_unlock(f->mu);
}

int flusher_poll(flusher_t *f, uint32_t *next_ms)
{
    if (!f || !next_ms)
        return EVREC_E_INVALID;
    if (!f->cfg.manual)
        return EVREC_E_STATE;
    uint32_t tick = look_around(f);
    uint64_t wait = 0;
    port_mutex_lock(f->mu);
    int due = flusher_due_locked(f, port_clock_monotonic_ms(f->cfg.clock), tick, &wait);
    port_mutex_unlock(f->mu);
    if (due) {
        step_result_t s = flusher_run_step(f);
        wait_after(f, s, tick, &wait);
    }
    *next_ms = wait > UINT32_MAX ? UINT32_MAX : (uint32_t)wait;
    return EVREC_OK;
}

int flusher_poll_budget(flusher_t *f, uint32_t budget_ms, uint32_t *next_ms)
{
    if (!f || !next_ms)
        return EVREC_E_INVALID;
    if (!f->cfg.manual)
        return EVREC_E_STATE;
    uint64_t deadline = port_clock_monotonic_ms(f->cfg.clock) + budget_ms;
    uint32_t tick = look_around(f);
    uint64_t wait = 0;
    port_mutex_lock(f->work);
    step_result_t s = STEP_EMPTY;
    int stepped = 0;
    if (!f->inflight) {
        port_mutex_lock(f->mu);
        int due = flusher_due_locked(f, port_clock_monotonic_ms(f->cfg.clock), tick, &wait);
        port_mutex_unlock(f->mu);
        if (due) {
            s = flusher_step_as(f, 1);
            stepped = 1;
        }
    }
    if (f->inflight) {
        uint64_t now = port_clock_monotonic_ms(f->cfg.clock);
        int done = 0;
        s = flusher_advance_flight(f, now < deadline ? (uint32_t)(deadline - now) : 0, &done);
        stepped = done;
    }
    if (f->inflight) {
        size_t n = 0;
        wait = transport_wait_hint(f->tp, NULL, 0, &n);
        if (wait > tick)
            wait = tick;
    } else if (stepped) {
        wait_after(f, s, tick, &wait);
    }
    port_mutex_unlock(f->work);
    *next_ms = wait > UINT32_MAX ? UINT32_MAX : (uint32_t)wait;
    return EVREC_OK;
}

int flusher_poll_fds(flusher_t *f, evrec_pollfd_t *fds, size_t max, size_t *n,
                     uint32_t *timeout_ms)
{
    if (!f || !n || !timeout_ms || (max > 0 && !fds))
        return EVREC_E_INVALID;
    port_mutex_lock(f->work);
    *timeout_ms = transport_wait_hint(f->tp, fds, max, n);
    /* The store's data file, last: readable when a process (this one too) wrote to the store,
     * e.g. another process recorded. An event loop that waits on it need not be called back
     * on a timer to notice those records, so from now on next_ms leaves the periodic count of
     * the store out (and is UINT32_MAX on an empty queue with nothing else timed). */
    int wfd = port_watch_fd(f->watch);
    if (wfd >= 0 && *n < max) {
        fds[*n].fd = wfd;
        fds[*n].events = EVREC_POLL_IN;
        (*n)++;
        port_mutex_lock(f->mu);
        f->fds_asked = 1;
        port_mutex_unlock(f->mu);
    }
    port_mutex_unlock(f->work);
    return EVREC_OK;
}
