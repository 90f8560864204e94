/*
 * Queue maintenance for support: evrec_purge() deletes queued events by criterion (counted as
 * purged), evrec_export() hands them out as JSON lines. Both decide on the stored record's
 * header and ids, without the network.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "agent.h"
#include "queue.h"
#include "record.h"
#include "seal.h"

EVREC_API void evrec_filter_init(evrec_filter_t *f)
{
    if (f) {
        memset(f, 0, sizeof *f);
        f->shape = -1;
    }
}

static const char *detail(evrec_queue_t *q, int rc)
{
    const char *m = queue_last_error(q);
    return m && *m && rc != EVREC_E_NOMEM ? m : evrec_strerror(rc);
}

static int has_criterion(const evrec_filter_t *f)
{
    return f->created_before_ms != 0 || f->endpoint_id != NULL || f->shape >= 0;
}

/* 1 if the decoded record matches (no filter: everything). */
static int view_matches(const evrec_filter_t *f, const evrec_record_view_t *v)
{
    if (!f)
        return 1;
    if (f->created_before_ms != 0 && v->created_ms >= f->created_before_ms)
        return 0;
    if (f->shape >= 0 && v->shape != (uint8_t)f->shape)
        return 0;
    if (f->endpoint_id &&
        (strlen(f->endpoint_id) != v->endpoint_id_len ||
         memcmp(f->endpoint_id, v->endpoint_id, v->endpoint_id_len) != 0))
        return 0;
    return 1;
}

static int check_filter(evrec_t *agent, const char *what, const evrec_filter_t *f)
{
    if (f && f->shape != -1 && f->shape != EVREC_SERVICE_PINPOINT &&
        f->shape != EVREC_SERVICE_PERSONALIZE)
        return agent_error(agent, EVREC_E_INVALID, "%s: shape %d is not a known shape", what,
                           f->shape);
    if (f && f->endpoint_id && !*f->endpoint_id)
        return agent_error(agent, EVREC_E_INVALID, "%s: endpoint_id is empty", what);
    return EVREC_OK;
}

typedef struct purge_ctx {
    const evrec_filter_t *filter;
    uint64_t unreadable; /* records that cannot be decoded: kept, never purged by criterion */
    const struct seal_keys *keys;
    seal_buf_t opened;
} purge_ctx_t;

static int purge_match(void *user, uint64_t seq, const void *value, size_t len)
{
    (void)seq;
    purge_ctx_t *c = user;
    if (c->filter->all && !has_criterion(c->filter))
        return 1;
    evrec_record_view_t v;
    if (seal_decode(c->keys, value, len, &c->opened, &v) != EVREC_OK) {
        c->unreadable++;
        return 0;
    }
    return view_matches(c->filter, &v);
}

EVREC_API int evrec_purge(evrec_t *agent, const evrec_filter_t *filter, uint64_t *purged)
{
    if (purged)
        *purged = 0;
    if (!agent || !filter)
        return agent_error(agent, EVREC_E_INVALID, "purge: filter is NULL");
    int rc = check_filter(agent, "purge", filter);
    if (rc)
        return rc;
    if (!filter->all && !has_criterion(filter))
        return agent_error(agent, EVREC_E_INVALID,
                           "purge: no criterion given; set all = 1 to purge every event");
    purge_ctx_t c = { filter, 0, agent_keys(agent), { NULL, 0 } };
    uint64_t n = 0;
    rc = queue_remove_matching(agent_queue(agent), purge_match, &c, QC_PURGED, &n);
    seal_buf_free(&c.opened);
    if (purged)
        *purged = n;
    if (rc)
        return agent_error(agent, rc, "purge: %s", detail(agent_queue(agent), rc));
    return EVREC_OK;
}

typedef struct export_ctx {
    const evrec_filter_t *filter;
    evrec_export_fn fn;
    void *user;
    int result; /* fn's non-zero return */
    const struct seal_keys *keys;
    seal_buf_t opened;
} export_ctx_t;

static void add_part(cJSON *o, const char *name, const char *s, size_t len)
{
    char *copy = port_malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, s, len);
    copy[len] = '\0';
    cJSON_AddStringToObject(o, name, copy);
    port_free(copy);
}

static cJSON *export_object(uint64_t seq, const evrec_record_view_t *v, int decoded)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "Seq", (double)seq);
    if (!decoded) {
        cJSON_AddStringToObject(o, "Error", "the record cannot be decoded");
        return o;
    }
    cJSON_AddNumberToObject(o, "CreatedMs", (double)v->created_ms);
    add_part(o, "EventId", v->event_id, v->event_id_len);
    add_part(o, "EndpointId", v->endpoint_id, v->endpoint_id_len);
    if (v->session_id_len)
        add_part(o, "SessionId", v->session_id, v->session_id_len);
    if (v->user_id_len)
        add_part(o, "UserId", v->user_id, v->user_id_len);
    cJSON_AddStringToObject(o, "Service",
                            v->shape == RECORD_SHAPE_PERSONALIZE ? "personalize" : "pinpoint");
    cJSON *ev = cJSON_ParseWithLength(v->fragment, v->fragment_len);
    if (ev)
        cJSON_AddItemToObject(o, "Event", ev);
    else
        add_part(o, "EventText", v->fragment, v->fragment_len);
    return o;
}

static int export_one(void *user, uint64_t seq, const void *value, size_t len)
{
    export_ctx_t *c = user;
    evrec_record_view_t v;
    int decoded = seal_decode(c->keys, value, len, &c->opened, &v) == EVREC_OK;
    if (decoded && !view_matches(c->filter, &v))
        return 0;
    if (!decoded && c->filter && has_criterion(c->filter))
        return 0; /* cannot tell whether it matches */
    cJSON *o = export_object(seq, &v, decoded);
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text)
        return EVREC_E_NOMEM;
    int r = c->fn(c->user, text, strlen(text));
    cJSON_free(text);
    if (r) {
        c->result = r;
        return 1;
    }
    return 0;
}

EVREC_API int evrec_export(evrec_t *agent, const evrec_filter_t *filter, evrec_export_fn fn,
                           void *user)
{
    if (!agent || !fn)
        return agent_error(agent, EVREC_E_INVALID, "export: fn is NULL");
    int rc = check_filter(agent, "export", filter);
    if (rc)
        return rc;
    export_ctx_t c = { filter, fn, user, 0, agent_keys(agent), { NULL, 0 } };
    rc = queue_scan(agent_queue(agent), 0, export_one, &c);
    seal_buf_free(&c.opened);
    if (rc)
        return agent_error(agent, rc, "export: %s", detail(agent_queue(agent), rc));
    return c.result;
}

typedef struct count_ctx {
    const evrec_filter_t *filter;
    uint64_t n;
    const struct seal_keys *keys;
    seal_buf_t opened;
} count_ctx_t;

/* As evrec_export() would hand it out: a record that cannot be decoded counts only when no
 * criterion is set. */
static int count_one(void *user, uint64_t seq, const void *value, size_t len)
{
    (void)seq;
    count_ctx_t *c = user;
    evrec_record_view_t v;
    int decoded = seal_decode(c->keys, value, len, &c->opened, &v) == EVREC_OK;
    if (decoded ? view_matches(c->filter, &v) : !(c->filter && has_criterion(c->filter)))
        c->n++;
    return 0;
}

EVREC_API int evrec_count(evrec_t *agent, const evrec_filter_t *filter, uint64_t *count)
{
    if (count)
        *count = 0;
    if (!agent || !count)
        return agent_error(agent, EVREC_E_INVALID, "count: count is NULL");
    int rc = check_filter(agent, "count", filter);
    if (rc)
        return rc;
    count_ctx_t c = { filter, 0, agent_keys(agent), { NULL, 0 } };
    rc = queue_scan(agent_queue(agent), 0, count_one, &c);
    seal_buf_free(&c.opened);
    if (rc)
        return agent_error(agent, rc, "count: %s", detail(agent_queue(agent), rc));
    *count = c.n;
    return EVREC_OK;
}
