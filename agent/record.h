/*
 * The stored record: what one queued event looks like inside the LMDB `events` database.
 *
 * Key: the event's sequence number, a big-endian uint64 (so LMDB's byte order is queue order
 * and appends can use MDB_APPEND).
 *
 * Value (all integers little-endian, packed, no padding):
 *   offset size  field
 *   0      1     format      EVREC_RECORD_FORMAT (readers accept every version ≤ theirs)
 *   1      1     shape       RECORD_SHAPE_*: which fragment shape follows (this byte held the
 *                               service before; the values are the same, so records written
 *                               then read unchanged)
 *   2      2     flags       EVREC_RECORD_F_*
 *   4      8     created_ms  the event's timestamp, Unix ms (for ordering, expiry, stats)
 *   12     1     event_id_len
 *   13     1     endpoint_id_len
 *   14     1     session_id_len   (Personalize sessionId; may be 0)
 *   15     1     user_id_len      (Personalize userId override; may be 0)
 *   16     4     fragment_len
 *   20     ...   event_id, endpoint_id, session_id, user_id (no NULs), then the fragment:
 *                the event's JSON object in its shape: a Pinpoint `Event`
 *                (RECORD_SHAPE_PINPOINT) or a Personalize `Event` without userId/sessionId
 *                (RECORD_SHAPE_PERSONALIZE). Backends (service.h) say which shapes they
 *                carry and convert at send time when their wire format differs;
 *                from format 2 on, one NUL byte follows the fragment (not in fragment_len).
 *
 * The header is fixed-size so that the batcher can read ids and lengths without parsing JSON.
 * The NUL lets the request encoder splice a fragment straight out of the store's memory map
 * (cJSON prints raw items as C strings), so a request body is the only copy of its events.
 * Format 1 records (no NUL) are still read; the encoder copies their fragments.
 */
#ifndef EVREC_RECORD_H
#define EVREC_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "evrec.h"

#define EVREC_RECORD_FORMAT 2
/* A record sealed with AES-256-GCM (seal.h): its plain header (format, shape, flags,
 * created_ms) stays readable; the rest needs the key. */
#define EVREC_RECORD_FORMAT_SEALED 3
#define EVREC_RECORD_HEADER_SIZE 20

#define EVREC_RECORD_F_TRUNCATED 0x0001u /* some field was truncated at record time */
#define EVREC_RECORD_F_SEALED 0x0002u    /* encrypted at rest (format EVREC_RECORD_FORMAT_SEALED) */

/* Record shapes: what the fragment looks like. */
#define RECORD_SHAPE_PINPOINT 0u    /* a Pinpoint Event */
#define RECORD_SHAPE_PERSONALIZE 1u /* a Personalize Event; userId/sessionId in the header */
#define RECORD_SHAPES 2u

typedef struct evrec_record_view {
    uint8_t format;
    uint8_t shape;
    uint16_t flags;
    int64_t created_ms;
    const char *event_id;
    size_t event_id_len;
    const char *endpoint_id;
    size_t endpoint_id_len;
    const char *session_id;
    size_t session_id_len;
    const char *user_id;
    size_t user_id_len;
    const char *fragment;
    size_t fragment_len;
    int fragment_nul; /* decode: fragment[fragment_len] is a NUL inside the value (format >= 2) */
} evrec_record_view_t;

/** Bytes needed to encode a record with these parts. */
size_t evrec_record_size(const evrec_record_view_t *v);

/** Encode v into buf (which has evrec_record_size(v) bytes) in the current format. Returns
 *  bytes written. */
size_t evrec_record_encode(const evrec_record_view_t *v, uint8_t *buf);

/** Only the fields every record keeps in plain (format, shape, flags, created_ms), of a plain
 *  or a sealed record; the rest of *out is zero. EVREC_E_CORRUPT / EVREC_E_FORMAT_VERSION. */
int evrec_record_header(const void *data, size_t len, evrec_record_view_t *out);

/** Decode a stored value into a view that points into `data` (no copies). A sealed record
 *  gives EVREC_E_KEY: it is opened with seal_decode (seal.h). Returns 0, or
 *  EVREC_E_CORRUPT if lengths do not add up, or EVREC_E_FORMAT_VERSION for a newer format. */
int evrec_record_decode(const void *data, size_t len, evrec_record_view_t *out);

#endif /* EVREC_RECORD_H */
