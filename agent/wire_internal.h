/*
 * Shared by wire.c and the backends (service_*.c): the pieces every wire format uses, and the
 * backends' halves of the answer decoding.
 */
#ifndef EVREC_WIRE_INTERNAL_H
#define EVREC_WIRE_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "wire.h"

/** Print `root` unformatted into a port_malloc'ed buffer of `bound` bytes (an upper bound of
 *  the output from the wire_*_bytes estimates), falling back to cJSON's own growing buffer
 *  if the bound was short. Frees root. */
int wire_print(cJSON *root, size_t bound, char **body, size_t *len);

/** A raw JSON item that refers to `json` instead of copying it (cJSON_IsReference: printed as
 *  is, never freed by cJSON_Delete). `json` must outlive the tree: the batch's fragments do,
 *  so a request body costs one copy of the events, not two. */
cJSON *wire_raw_reference(const char *json);

/** Copy a JSON string member's value (first of the names given that is a string) into dst. */
void wire_copy_member(const cJSON *obj, const char *const *names, char *dst, size_t dstlen);

/** Store a per-event answer: status, verdict (202/200 accepted, 400 rejected, else keep) and,
 *  unless accepted, the message (copied). */
int wire_set_event(wire_result_t *r, size_t i, int status, int accept_status,
                   const char *message);

/** Base64 of `len` bytes into dst (dstlen >= wire_base64_bytes(len) + 1), NUL-terminated;
 *  *written: the characters written, without the NUL (mbedTLS's encoder). */
int wire_base64(const unsigned char *data, size_t len, char *dst, size_t dstlen,
                size_t *written);
/** Bytes base64 makes of `len` bytes (without the NUL). */
size_t wire_base64_bytes(size_t len);

#endif /* EVREC_WIRE_INTERNAL_H */
