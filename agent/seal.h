/*
 * Events encrypted at rest: a record (record.h) sealed with AES-256-GCM under the
 * application's key, and opened again where it is read (the batcher, expiry needs only the
 * plain header, support tools).
 *
 * A sealed record (format EVREC_RECORD_FORMAT_SEALED):
 *   offset size  field
 *   0      1     format      EVREC_RECORD_FORMAT_SEALED
 *   1      1     shape       as in the plain record (the batcher picks by it unopened)
 *   2      2     flags       the plain record's, with EVREC_RECORD_F_SEALED
 *   4      8     created_ms  as in the plain record (expiry and stats read it unopened)
 *   12     8     key id      the first 8 bytes of SHA-256("evrec key id" | key)
 *   20     12    nonce       random, once per record
 *   32     ...   ciphertext  of the whole plain record (format 2, its header included)
 *   end-16 16    tag         GCM tag; bytes 0..31 are the additional authenticated data
 * Keys rotate without losing the backlog: each record names its key; the agent holds the
 * current key (new records) and older ones (reading), and refuses at open a store holding
 * records of a key it does not have.
 */
#ifndef EVREC_SEAL_H
#define EVREC_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "evrec.h"
#include "queue.h"
#include "record.h"

#define SEAL_HEADER 32
#define SEAL_TAG 16
#define SEAL_OVERHEAD (SEAL_HEADER + SEAL_TAG)
#define SEAL_MAX_KEYS 16
#define QUEUE_META_ENCRYPTION "encryption" /* "aes-256-gcm": the store's records are sealed */

typedef struct seal_keys seal_keys_t;

/** A growable buffer for opened records; seal_buf_free wipes it. */
typedef struct seal_buf {
    uint8_t *p;
    size_t cap;
} seal_buf_t;
void seal_buf_free(seal_buf_t *b);

/** The keys of a key file: lines of 64 hex digits (blank lines and # comments ignored), the
 *  first the current key, the others older ones still read. The file must be a regular file
 *  of the caller (or root) that others cannot read and the group cannot write (0600; 0640 for
 *  a group store). EVREC_E_KEY / EVREC_E_UNSAFE with a message. */
int seal_keys_from_file(seal_keys_t **out, const char *path, char *err, size_t errlen);
/** The keys the application's callback gives (the first is the current one). */
int seal_keys_from_callback(seal_keys_t **out, evrec_keys_fn fn, void *user, char *err,
                            size_t errlen);
void seal_keys_free(seal_keys_t *k);
/** The current key's id as 16 hex digits (buf ≥ 17 bytes). */
void seal_current_id(const seal_keys_t *k, char *buf);

/** Seal a plain record under the current key: *out (port_malloc) of *out_len bytes. */
int seal_record(const seal_keys_t *k, const uint8_t *plain, size_t len, uint8_t **out,
                size_t *out_len);

/** Decode a stored value (record.h's view). A plain record is decoded in place; a sealed one
 *  is opened into *scratch (the view points there, valid until the next use of scratch) with
 *  keys k: EVREC_E_KEY if k is NULL or lacks its key, EVREC_E_CORRUPT if it does not
 *  authenticate. */
int seal_decode(const seal_keys_t *k, const void *value, size_t len, seal_buf_t *scratch,
                evrec_record_view_t *out);

/** At open: with keys, mark the store as encrypted and check that every sealed record's key
 *  is among them; without, refuse a store marked encrypted or holding sealed records (no
 *  plaintext written beside them, nothing left unreadable). EVREC_E_KEY with a message. */
int seal_check_store(const seal_keys_t *k, evrec_queue_t *q, char *err, size_t errlen);

#endif /* EVREC_SEAL_H */
