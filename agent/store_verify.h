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

/*
 * The last synced snapshot's meta page, kept beside the store (process and batched modes).
 * Those modes commit without fsync; a power cut may then leave meta pages naming pages that
 * never reached the disk. The queue keeps a read transaction on the last synced snapshot (so
 * its pages are not reused) and a copy of that snapshot's meta record in a side file; if the
 * file is damaged at open, the copy is written back and the store opens as of that sync.
 */
/** Bytes of a meta copy. */
size_t store_meta_copy_size(void);
/** Copy the meta record of transaction `txnid` from the data file (out: store_meta_copy_size()
 *  bytes). EVREC_E_BUSY if a later commit has replaced that meta page already. */
int store_meta_copy(const char *path, uint64_t txnid, void *out, size_t outlen);
/** The transaction id in a copy. */
uint64_t store_meta_copy_txnid(const void *copy);
/** Write a copy back as both meta pages (its id and the one before), fdatasync'ed. The meta
 *  records found first go to saved_out (2 * store_meta_copy_size() bytes), for
 *  store_meta_put_back if the restored store does not verify either. */
int store_meta_restore(const char *path, const void *copy, size_t len, void *saved_out,
                       size_t saved_len);
int store_meta_put_back(const char *path, const void *saved, size_t saved_len);

#endif /* EVREC_STORE_VERIFY_H */
