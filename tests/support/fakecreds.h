/* Starting tools/fake_credentials.py and its test PKI (for the transport and credentials
 * integration tests). */
#ifndef EVREC_FAKECREDS_H
#define EVREC_FAKECREDS_H

#include "testutil.h"

/** Write a fresh test PKI into dir (ca, server for 127.0.0.1, client, an unrelated CA and a
 *  client of it), with the openssl command. Returns 0 on success. */
int fc_make_pki(const char *dir);

/** Start the fake: HTTPS with the PKI in tls_dir (client certificates optional, checked
 *  against its ca.pem), or plain HTTP when tls_dir is NULL. `extra` is NULL-terminated. */
int fc_start(tu_endpoint_t *ep, const char *tls_dir, const char *const *extra);

/** A counter of /_fake/stats ("connections", "iot", "getid", "getcreds"), or -1. */
long fc_stat(const tu_endpoint_t *ep, const char *tls_dir, const char *name);

/** POST /_fake/config?<query> (e.g. "expiry=1"). Returns 0 on success. */
int fc_config(const tu_endpoint_t *ep, const char *tls_dir, const char *query);

/** A 127.0.0.1 TCP port nothing listens on (bound, then released). */
int fc_free_port(void);

/** Path of a PKI file ("ca.pem", ...) in dir; malloc'ed. */
char *fc_file(const char *dir, const char *name);

#endif
