/*
 * Structural check of an LMDB data file before LMDB walks it.
 *
 * LMDB keeps no checksums: a flipped byte in a branch or leaf page (bit rot on flash, a torn
 * write the filesystem did not protect) makes it follow a bad page number or node offset and
 * crash the process. store_verify() reads the file page by page with positional reads (never
 * through the map) and checks what LMDB would trust: the meta page it picks, every page
 * reachable from it (page numbers in range, header page numbers, page kinds per tree level,
 * free-space bounds, node offsets and sizes, overflow runs), each named database's record,
 * the entry and page counts the meta page claims, and the free list. Any violation is
 * EVREC_E_CORRUPT with a message naming the page.
 *
 * The caller holds an LMDB read transaction with id `txnid` while it runs, so that the pages
 * of that snapshot cannot be reused by writers in other processes during the walk.
 * Cost: one read of every page in use (about 10 ms per 64 MiB from the page cache).
 */
#ifndef EVREC_STORE_VERIFY_H
#define EVREC_STORE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

/** Verify the data file at `path` as of the snapshot `txnid` (mdb_txn_id of a read txn).
 *  EVREC_OK, EVREC_E_CORRUPT (message in err), EVREC_E_IO or EVREC_E_NOMEM; EVREC_E_BUSY if
 *  other processes committed twice since the snapshot began, so that its meta page is no
 *  longer in the file (take a new snapshot and call again). */
int store_verify(const char *path, uint64_t txnid, char *err, size_t errlen);

#endif /* EVREC_STORE_VERIFY_H */
