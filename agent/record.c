#include "record.h"

#include <string.h>

#include "evrec.h"

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

size_t evrec_record_size(const evrec_record_view_t *v)
{
    return EVREC_RECORD_HEADER_SIZE + v->event_id_len + v->endpoint_id_len + v->session_id_len +
           v->user_id_len + v->fragment_len + 1;
}

size_t evrec_record_encode(const evrec_record_view_t *v, uint8_t *buf)
{
    buf[0] = EVREC_RECORD_FORMAT;
    buf[1] = v->shape;
    put_le(buf + 2, v->flags, 2);
    put_le(buf + 4, (uint64_t)v->created_ms, 8);
    buf[12] = (uint8_t)v->event_id_len;
    buf[13] = (uint8_t)v->endpoint_id_len;
    buf[14] = (uint8_t)v->session_id_len;
    buf[15] = (uint8_t)v->user_id_len;
    put_le(buf + 16, v->fragment_len, 4);
    uint8_t *p = buf + EVREC_RECORD_HEADER_SIZE;
    memcpy(p, v->event_id, v->event_id_len);
    p += v->event_id_len;
    memcpy(p, v->endpoint_id, v->endpoint_id_len);
    p += v->endpoint_id_len;
    if (v->session_id_len)
        memcpy(p, v->session_id, v->session_id_len);
    p += v->session_id_len;
    if (v->user_id_len)
        memcpy(p, v->user_id, v->user_id_len);
    p += v->user_id_len;
    if ((const char *)p != v->fragment) /* else written in place already */
        memcpy(p, v->fragment, v->fragment_len);
    p += v->fragment_len;
    *p++ = 0;
    return (size_t)(p - buf);
}

int evrec_record_header(const void *data, size_t len, evrec_record_view_t *out)
{
    const uint8_t *b = data;
    memset(out, 0, sizeof *out);
    if (len < EVREC_RECORD_HEADER_SIZE || b[0] == 0)
        return EVREC_E_CORRUPT;
    if (b[0] > EVREC_RECORD_FORMAT_SEALED)
        return EVREC_E_FORMAT_VERSION;
    out->format = b[0];
    out->shape = b[1];
    out->flags = (uint16_t)get_le(b + 2, 2);
    out->created_ms = (int64_t)get_le(b + 4, 8);
    return EVREC_OK;
}

int evrec_record_decode(const void *data, size_t len, evrec_record_view_t *out)
{
    const uint8_t *b = data;
    if (len < EVREC_RECORD_HEADER_SIZE)
        return EVREC_E_CORRUPT;
    if (b[0] == 0)
        return EVREC_E_CORRUPT;
    if (b[0] == EVREC_RECORD_FORMAT_SEALED)
        return EVREC_E_KEY;
    if (b[0] > EVREC_RECORD_FORMAT)
        return EVREC_E_FORMAT_VERSION;
    memset(out, 0, sizeof *out);
    out->format = b[0];
    out->shape = b[1];
    out->flags = (uint16_t)get_le(b + 2, 2);
    out->created_ms = (int64_t)get_le(b + 4, 8);
    out->event_id_len = b[12];
    out->endpoint_id_len = b[13];
    out->session_id_len = b[14];
    out->user_id_len = b[15];
    out->fragment_len = (size_t)get_le(b + 16, 4);
    size_t need = EVREC_RECORD_HEADER_SIZE + out->event_id_len + out->endpoint_id_len +
                  out->session_id_len + out->user_id_len + out->fragment_len;
    out->fragment_nul = out->format >= 2;
    if (out->fragment_nul && (need >= len || b[need] != 0))
        return EVREC_E_CORRUPT;
    if (need + (size_t)out->fragment_nul != len || out->event_id_len == 0 ||
        out->endpoint_id_len == 0 || out->fragment_len == 0)
        return EVREC_E_CORRUPT;
    const char *p = (const char *)b + EVREC_RECORD_HEADER_SIZE;
    out->event_id = p;
    p += out->event_id_len;
    out->endpoint_id = p;
    p += out->endpoint_id_len;
    out->session_id = p;
    p += out->session_id_len;
    out->user_id = p;
    p += out->user_id_len;
    out->fragment = p;
    return EVREC_OK;
}
