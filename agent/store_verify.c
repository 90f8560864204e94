/*
 * The LMDB on-disk format as far as the check needs it (LMDB 0.9, native word size W):
 *   page header: pgno (W) | pad (u16) | flags (u16) | lower (u16) upper (u16) or pages (u32)
 *   meta (pages 0 and 1, after the header): magic u32, version u32, address (W), mapsize (W),
 *     two database records (free, main), last_pg (W), txnid (W)
 *   database record: pad u32 (the page size, in the free record), flags u16, depth u16,
 *     branch_pages, leaf_pages, overflow_pages, entries, root (W each)
 *   node (at page offset ptrs[i]): lo u16, hi u16, flags u16, ksize u16, key, data.
 *     Branch nodes: the child page number is lo | hi << 16 | flags << 32.
 *     Leaf nodes: data size lo | hi << 16; F_BIGDATA: the data is an overflow page number.
 * Integers are native-endian: a store is read on the machine kind that wrote it.
 */
#include "store_verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "evrec.h"
#include "port.h"

#define W ((size_t)sizeof(size_t))
#define PAGEHDRSZ (W + 8)
#define NODESIZE 8u
#define P_BRANCH 0x01u
#define P_LEAF 0x02u
#define P_OVERFLOW 0x04u
#define P_META 0x08u
#define F_BIGDATA 0x01u
#define F_SUBDATA 0x02u
#define F_DUPDATA 0x04u
#define MDB_MAGIC 0xBEEFC0DEu
#define MDB_DATA_VERSION 1u
#define DB_RECORD_SIZE (8 + 5 * W)
#define MAX_DEPTH 32
#define MAX_NAMED_DBS 8

typedef struct dbrec {
    uint16_t flags, depth;
    size_t branch, leaf, overflow, entries, root;
} dbrec_t;

typedef struct verifier {
    port_file_t *f;
    size_t psize;
    size_t last_pg;
    unsigned char *used;     /* one bit per page: reached from a tree */
    unsigned char *pages[MAX_DEPTH]; /* one page buffer per tree level (allocated on use) */
    unsigned char *scratch;  /* overflow headers */
    char *err;
    size_t errlen;
    /* counts of the tree being walked */
    size_t branch, leaf, overflow, entries;
    dbrec_t named[MAX_NAMED_DBS];
    size_t nnamed;
    int free_tree;           /* walking the free list: values are page-number lists */
    int main_tree;           /* walking the main DB: F_SUBDATA values are named DBs */
    unsigned char *freed;    /* one bit per page: named by a free list */
} verifier_t;

__attribute__((format(printf, 2, 3))) static int bad(verifier_t *v, const char *fmt, ...)
{
    char detail[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (v->err && v->errlen)
        snprintf(v->err, v->errlen, "data.mdb is damaged: %s", detail);
    return EVREC_E_CORRUPT;
}

static size_t get_w(const unsigned char *p)
{
    size_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

static uint16_t get16(const unsigned char *p)
{
    uint16_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

static void get_db(const unsigned char *p, dbrec_t *d)
{
    d->flags = get16(p + 4);
    d->depth = get16(p + 6);
    d->branch = get_w(p + 8);
    d->leaf = get_w(p + 8 + W);
    d->overflow = get_w(p + 8 + 2 * W);
    d->entries = get_w(p + 8 + 3 * W);
    d->root = get_w(p + 8 + 4 * W);
}

static int read_page(verifier_t *v, size_t pgno, unsigned char *buf, size_t len)
{
    int rc = port_file_read_at(v->f, (uint64_t)pgno * v->psize, buf, len);
    if (rc == -ENODATA)
        return bad(v, "page %zu lies beyond the end of the file", pgno);
    if (rc) {
        if (v->err && v->errlen)
            snprintf(v->err, v->errlen, "cannot read data.mdb page %zu (errno %d)", pgno, -rc);
        return EVREC_E_IO;
    }
    return EVREC_OK;
}

static int mark(verifier_t *v, size_t pgno)
{
    if (pgno < 2 || pgno > v->last_pg)
        return bad(v, "page number %zu is out of range (2..%zu)", pgno, v->last_pg);
    unsigned char bit = (unsigned char)(1u << (pgno & 7));
    if (v->used[pgno >> 3] & bit)
        return bad(v, "page %zu is reached twice", pgno);
    v->used[pgno >> 3] |= bit;
    return EVREC_OK;
}

/* A free-list value: a count, then that many page numbers, all in range. */
static int check_free_list(verifier_t *v, const unsigned char *data, size_t dsize, size_t pgno)
{
    if (dsize < W || dsize % W)
        return bad(v, "free list on page %zu has size %zu", pgno, dsize);
    size_t n = get_w(data);
    if (n > dsize / W - 1)
        return bad(v, "free list on page %zu claims %zu pages in %zu bytes", pgno, n, dsize);
    for (size_t i = 1; i <= n; i++) {
        size_t p = get_w(data + i * W);
        if (p < 2 || p > v->last_pg)
            return bad(v, "free list on page %zu names page %zu, out of range", pgno, p);
        v->freed[p >> 3] |= (unsigned char)(1u << (p & 7));
    }
    return EVREC_OK;
}

static int check_overflow(verifier_t *v, size_t ovpg, size_t dsize, size_t at)
{
    if (ovpg < 2 || ovpg > v->last_pg)
        return bad(v, "overflow page number %zu (from page %zu) is out of range", ovpg, at);
    int rc = read_page(v, ovpg, v->scratch, PAGEHDRSZ);
    if (rc)
        return rc;
    if (get_w(v->scratch) != ovpg || !(get16(v->scratch + W + 2) & P_OVERFLOW))
        return bad(v, "overflow page %zu (from page %zu) is not an overflow page", ovpg, at);
    size_t pages = get32(v->scratch + W + 4);
    size_t need = (PAGEHDRSZ - 1 + dsize) / v->psize + 1;
    if (pages != need || ovpg + pages - 1 > v->last_pg || ovpg + pages - 1 < ovpg)
        return bad(v, "overflow run at page %zu has %zu pages for %zu bytes", ovpg, pages,
                   dsize);
    for (size_t i = 0; i < pages; i++) {
        rc = mark(v, ovpg + i);
        if (rc)
            return rc;
    }
    v->overflow += pages;
    return EVREC_OK;
}

static int walk(verifier_t *v, size_t pgno, unsigned level, unsigned depth);

static int check_leaf_node(verifier_t *v, const unsigned char *node, size_t off, size_t pgno)
{
    uint16_t flags = get16(node + 4), ksize = get16(node + 6);
    size_t dsize = (size_t)get16(node) | ((size_t)get16(node + 2) << 16);
    if (flags & F_DUPDATA)
        return bad(v, "page %zu has a duplicate-data node (evrec never writes one)", pgno);
    size_t in_page = (flags & F_BIGDATA) ? W : dsize;
    if (off + NODESIZE + ksize + in_page > v->psize)
        return bad(v, "node at offset %zu of page %zu overruns the page", off, pgno);
    const unsigned char *data = node + NODESIZE + ksize;
    if (flags & F_BIGDATA) {
        int rc = check_overflow(v, get_w(data), dsize, pgno);
        if (rc)
            return rc;
    } else if (v->free_tree) {
        int rc = check_free_list(v, data, dsize, pgno);
        if (rc)
            return rc;
    }
    if (v->main_tree && (flags & F_SUBDATA)) {
        if (dsize != DB_RECORD_SIZE || (flags & F_BIGDATA))
            return bad(v, "named database record on page %zu has size %zu", pgno, dsize);
        if (v->nnamed == MAX_NAMED_DBS)
            return bad(v, "more than %d named databases", MAX_NAMED_DBS);
        get_db(data, &v->named[v->nnamed++]);
    }
    v->entries++;
    return EVREC_OK;
}

static int walk(verifier_t *v, size_t pgno, unsigned level, unsigned depth)
{
    int rc = mark(v, pgno);
    if (rc)
        return rc;
    if (!v->pages[level] && !(v->pages[level] = port_malloc(v->psize)))
        return EVREC_E_NOMEM;
    const unsigned char *p = v->pages[level];
    rc = read_page(v, pgno, v->pages[level], v->psize);
    if (rc)
        return rc;
    if (get_w(p) != pgno)
        return bad(v, "page %zu carries the number %zu", pgno, get_w(p));
    uint16_t flags = get16(p + W + 2);
    int leaf = level + 1 == depth;
    if ((flags & (P_BRANCH | P_LEAF | P_OVERFLOW | P_META)) != (leaf ? P_LEAF : P_BRANCH))
        return bad(v, "page %zu has kind %#x at level %u of %u", pgno, flags, level + 1, depth);
    size_t lower = get16(p + W + 4), upper = get16(p + W + 6);
    if (lower < PAGEHDRSZ || lower > upper || upper > v->psize || (lower - PAGEHDRSZ) % 2)
        return bad(v, "page %zu has free-space bounds %zu..%zu", pgno, lower, upper);
    size_t nkeys = (lower - PAGEHDRSZ) / 2;
    if (nkeys == 0)
        return bad(v, "page %zu holds no nodes", pgno);
    if (leaf)
        v->leaf++;
    else
        v->branch++;
    for (size_t i = 0; i < nkeys; i++) {
        const unsigned char *q = p;
        size_t off = get16(q + PAGEHDRSZ + 2 * i);
        if (off < upper || off + NODESIZE > v->psize)
            return bad(v, "node %zu of page %zu has offset %zu", i, pgno, off);
        const unsigned char *node = q + off;
        uint16_t ksize = get16(node + 6);
        if (off + NODESIZE + ksize > v->psize)
            return bad(v, "key of node %zu of page %zu overruns the page", i, pgno);
        if (leaf) {
            rc = check_leaf_node(v, node, off, pgno);
            if (rc)
                return rc;
            continue;
        }
        size_t child = (size_t)get16(node) | ((size_t)get16(node + 2) << 16);
#if SIZE_MAX > 0xffffffffu
        child |= (size_t)get16(node + 4) << 32;
#endif
        rc = walk(v, child, level + 1, depth);
        if (rc)
            return rc;
    }
    return EVREC_OK;
}

/* Walk one tree and compare what was found with what its record claims. */
static int check_tree(verifier_t *v, const dbrec_t *d, const char *name)
{
    if (d->root == (size_t)-1) {
        if (d->depth || d->entries || d->branch || d->leaf || d->overflow)
            return bad(v, "empty %s database claims depth %u and %zu entries", name,
                       (unsigned)d->depth, d->entries);
        return EVREC_OK;
    }
    if (d->depth == 0 || d->depth > MAX_DEPTH)
        return bad(v, "%s database has depth %u", name, (unsigned)d->depth);
    v->branch = v->leaf = v->overflow = v->entries = 0;
    int rc = walk(v, d->root, 0, d->depth);
    if (rc)
        return rc;
    if (v->entries != d->entries || v->branch != d->branch || v->leaf != d->leaf ||
        v->overflow != d->overflow)
        return bad(v, "%s database claims %zu entries in %zu/%zu/%zu pages, holds %zu in "
                   "%zu/%zu/%zu", name, d->entries, d->branch, d->leaf, d->overflow,
                   v->entries, v->branch, v->leaf, v->overflow);
    return EVREC_OK;
}

/* Read both meta pages; LMDB uses the one with the snapshot's transaction id. The two always
 * hold consecutive transaction ids, meta i the one with parity i (both 0 in a new file): a
 * damaged id would make LMDB silently fall back to the previous snapshot, losing the last
 * commit, so that is refused too. */
static int pick_meta(verifier_t *v, uint64_t txnid, dbrec_t *free_db, dbrec_t *main_db)
{
    unsigned char buf[2][256];
    size_t need = PAGEHDRSZ + 24 + 14 * W, base = 8 + 2 * W;
    size_t t[2];
    if (need > sizeof buf[0])
        return EVREC_E_INVALID;
    for (size_t m = 0; m < 2; m++) {
        int rc = port_file_read_at(v->f, m * v->psize, buf[m], need);
        if (rc == -ENODATA)
            return bad(v, "meta page %zu is missing", m);
        if (rc)
            return EVREC_E_IO;
        const unsigned char *meta = buf[m] + PAGEHDRSZ;
        if (get32(meta) != MDB_MAGIC || get32(meta + 4) != MDB_DATA_VERSION)
            return bad(v, "meta page %zu has no LMDB signature", m);
        t[m] = get_w(meta + base + 2 * DB_RECORD_SIZE + W);
    }
    int fresh = t[0] == 0 && t[1] == 0;
    int paired = (t[0] + 1 == t[1] || t[1] + 1 == t[0]) && (t[0] & 1) == 0 && (t[1] & 1) == 1;
    if (!fresh && !paired)
        return bad(v, "the meta pages hold transactions %zu and %zu (not consecutive)", t[0],
                   t[1]);
    size_t m = t[1] == (size_t)txnid && !fresh ? 1 : 0;
    if (t[m] != (size_t)txnid && paired && t[0] > (size_t)txnid && t[1] > (size_t)txnid) {
        /* Another process committed twice since the snapshot was taken: its meta page is
         * gone (its pages are not: the snapshot pins them). Not damage: take a new one. */
        if (v->err && v->errlen)
            snprintf(v->err, v->errlen, "the store moved on during the check");
        return EVREC_E_BUSY;
    }
    if (t[m] != (size_t)txnid)
        return bad(v, "no meta page holds the open snapshot (transaction %llu)",
                   (unsigned long long)txnid);
    const unsigned char *meta = buf[m] + PAGEHDRSZ;
    get_db(meta + base, free_db);
    get_db(meta + base + DB_RECORD_SIZE, main_db);
    v->last_pg = get_w(meta + base + 2 * DB_RECORD_SIZE);
    return EVREC_OK;
}

int store_verify(const char *path, uint64_t txnid, char *err, size_t errlen)
{
    verifier_t v;
    memset(&v, 0, sizeof v);
    v.err = err;
    v.errlen = errlen;
    int rc = port_file_open_read(path, &v.f);
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "cannot open %s (errno %d)", path, -rc);
        return EVREC_E_IO;
    }
    /* The page size lives in the first meta page's free-database record. */
    unsigned char head[64];
    rc = port_file_read_at(v.f, 0, head, PAGEHDRSZ + 8 + 2 * W + 4);
    if (rc == 0) {
        v.psize = get32(head + PAGEHDRSZ + 8 + 2 * W);
        if (v.psize < 512 || v.psize > 65536 || (v.psize & (v.psize - 1)))
            rc = bad(&v, "page size %zu", v.psize);
    } else {
        rc = rc == -ENODATA ? bad(&v, "shorter than a page") : EVREC_E_IO;
    }
    dbrec_t free_db, main_db;
    if (!rc)
        rc = pick_meta(&v, txnid, &free_db, &main_db);
    if (!rc && v.last_pg < 1)
        rc = bad(&v, "last page %zu", v.last_pg);
    if (!rc) {
        v.used = port_calloc(v.last_pg / 8 + 1, 1);
        v.freed = port_calloc(v.last_pg / 8 + 1, 1);
        v.scratch = port_malloc(PAGEHDRSZ);
        if (!v.used || !v.freed || !v.scratch)
            rc = EVREC_E_NOMEM;
    }
    if (!rc) {
        v.main_tree = 1;
        rc = check_tree(&v, &main_db, "main");
        v.main_tree = 0;
    }
    for (size_t i = 0; !rc && i < v.nnamed; i++)
        rc = check_tree(&v, &v.named[i], "named");
    if (!rc) {
        v.free_tree = 1;
        rc = check_tree(&v, &free_db, "free-list");
    }
    /* A page that is both in use and listed as free would be handed out and overwritten. */
    for (size_t p = 2; !rc && p <= v.last_pg; p++) {
        if ((v.used[p >> 3] & v.freed[p >> 3]) & (1u << (p & 7)))
            rc = bad(&v, "page %zu is both in use and on the free list", p);
    }
    port_free(v.used);
    port_free(v.freed);
    for (size_t i = 0; i < MAX_DEPTH; i++)
        port_free(v.pages[i]);
    port_free(v.scratch);
    port_file_close(v.f);
    return rc;
}

/* -- the last synced meta page (process and batched modes) ------------------------------------
 * Layout of a saved copy: the first META_COPY bytes of the meta page (its header and the meta
 * record) as LMDB wrote it. */
#define META_COPY (PAGEHDRSZ + 24 + 14 * W)
#define META_TXNID_OFF (PAGEHDRSZ + 8 + 2 * W + 2 * DB_RECORD_SIZE + W)

/* The page size, and (if metas is not NULL) the first META_COPY bytes of both meta pages. */
static int read_metas(const char *path, size_t *psize, unsigned char *metas);

static int meta_psize(port_file_t *f, size_t *psize)
{
    unsigned char head[64];
    int rc = port_file_read_at(f, 0, head, PAGEHDRSZ + 8 + 2 * W + 4);
    if (rc)
        return rc == -ENODATA ? EVREC_E_CORRUPT : EVREC_E_IO;
    *psize = get32(head + PAGEHDRSZ + 8 + 2 * W);
    if (*psize < 512 || *psize > 65536 || (*psize & (*psize - 1)))
        return EVREC_E_CORRUPT;
    return EVREC_OK;
}

size_t store_meta_copy_size(void)
{
    return META_COPY;
}

int store_meta_copy(const char *path, uint64_t txnid, void *out, size_t outlen)
{
    if (outlen < META_COPY)
        return EVREC_E_INVALID;
    unsigned char both[2 * META_COPY];
    size_t psize = 0;
    int rc = read_metas(path, &psize, both);
    if (rc)
        return rc;
    unsigned char *p = out;
    memcpy(p, both + (txnid & 1) * META_COPY, META_COPY);
    const unsigned char *meta = p + PAGEHDRSZ;
    if (get32(meta) != MDB_MAGIC || get32(meta + 4) != MDB_DATA_VERSION)
        return EVREC_E_CORRUPT;
    if (get_w(p + META_TXNID_OFF) != (size_t)txnid)
        return EVREC_E_BUSY; /* another commit replaced it already */
    return EVREC_OK;
}

uint64_t store_meta_copy_txnid(const void *copy)
{
    return get_w((const unsigned char *)copy + META_TXNID_OFF);
}

static void put_w(unsigned char *p, size_t x)
{
    memcpy(p, &x, sizeof x);
}

int store_meta_restore(const char *path, const void *copy, size_t len, void *saved_out,
                       size_t saved_len)
{
    if (len != META_COPY || saved_len < 2 * META_COPY)
        return EVREC_E_INVALID;
    size_t txnid = get_w((const unsigned char *)copy + META_TXNID_OFF);
    const unsigned char *meta = (const unsigned char *)copy + PAGEHDRSZ;
    if (txnid < 1 || get32(meta) != MDB_MAGIC || get32(meta + 4) != MDB_DATA_VERSION)
        return EVREC_E_CORRUPT;
    size_t psize = 0;
    int rc = read_metas(path, &psize, saved_out);
    if (rc)
        return rc;
    /* The synced snapshot in its own slot, and the same snapshot under the previous id in the
     * other (LMDB's two meta pages always hold consecutive ids of their parity). */
    unsigned char page[2][META_COPY];
    for (size_t m = 0; m < 2; m++) {
        size_t id = (txnid & 1) == m ? txnid : txnid - 1;
        memcpy(page[m], copy, META_COPY);
        put_w(page[m], m); /* the page header's page number */
        put_w(page[m] + META_TXNID_OFF, id);
    }
    /* The older id first: a cut in between leaves the synced one or the old pages. */
    size_t first = (txnid & 1) ? 0 : 1;
    rc = port_file_write_at_sync(path, first * psize, page[first], META_COPY);
    if (!rc)
        rc = port_file_write_at_sync(path, (1 - first) * psize, page[1 - first], META_COPY);
    return rc ? EVREC_E_IO : EVREC_OK;
}

int store_meta_put_back(const char *path, const void *saved, size_t saved_len)
{
    if (saved_len < 2 * META_COPY)
        return EVREC_E_INVALID;
    size_t psize = 0;
    int rc = read_metas(path, &psize, NULL);
    const unsigned char *s = saved;
    for (size_t m = 0; !rc && m < 2; m++)
        rc = port_file_write_at_sync(path, m * psize, s + m * META_COPY, META_COPY) ? EVREC_E_IO
                                                                                  : EVREC_OK;
    return rc;
}

static int read_metas(const char *path, size_t *psize, unsigned char *metas)
{
    port_file_t *f;
    if (port_file_open_read(path, &f))
        return EVREC_E_IO;
    int rc = meta_psize(f, psize);
    for (size_t m = 0; !rc && metas && m < 2; m++)
        rc = port_file_read_at(f, m * *psize, metas + m * META_COPY, META_COPY) ? EVREC_E_IO
                                                                                : EVREC_OK;
    port_file_close(f);
    return rc;
}
