/*
 * The structural check of the data file (store_verify.c), through queue_open(): damage that
 * would make LMDB follow a bad page number or offset is refused with EVREC_E_CORRUPT and a
 * message naming the page; an undamaged store of any size opens; a damaged transaction id in
 * a meta page is refused instead of silently opening an older snapshot.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <unistd.h>

#include "queue.h"
#include "record.h"
#include "testutil.h"

#define PSIZE 4096
#define W sizeof(size_t)

static queue_config_t cfg(void)
{
    queue_config_t c;
    memset(&c, 0, sizeof c);
    /* Batched: few transactions, so the file holds few pages beyond those in use (process
     * mode keeps its synced snapshot's pages while it commits, see queue_sync.c). */
    c.durability = EVREC_DURABLE_BATCHED;
    c.commit_max_events = 500;
    c.max_store_bytes = 16u << 20;
    return c;
}

static uint64_t expected_count; /* records in the store make_store made */

/* A store of `n` records (spread over many leaf pages and a branch level), closed. */
static char *make_store(int n, char *data_path, size_t len)
{
    char *dir = tu_tempdir("verify");
    queue_config_t c = cfg();
    evrec_queue_t *q = NULL;
    char err[256];
    assert_int_equal(queue_open(&q, dir, &c, err, sizeof err), EVREC_OK);
    uint8_t buf[400];
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "ev-%d", i);
        evrec_record_view_t v = { 0 };
        v.created_ms = 1764000000000LL + i;
        v.event_id = id;
        v.event_id_len = strlen(id);
        v.endpoint_id = "ep";
        v.endpoint_id_len = 2;
        v.fragment = "{\"EventType\":\"verify\",\"Attributes\":{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxx\"}}";
        v.fragment_len = strlen(v.fragment);
        size_t sz = evrec_record_encode(&v, buf);
        assert_int_equal(queue_append(q, buf, sz, 0, NULL), EVREC_OK);
    }
    queue_close(q);
    expected_count = (uint64_t)n;
    snprintf(data_path, len, "%s/data.mdb", dir);
    return dir;
}

static int open_code(const char *dir, char *err, size_t len)
{
    queue_config_t c = cfg();
    evrec_queue_t *q = NULL;
    err[0] = '\0';
    int rc = queue_open(&q, dir, &c, err, len);
    if (rc == EVREC_OK) {
        assert_int_equal(queue_count(q) > 0, 1);
        if (strstr(err, "opened as of its last sync")) /* nothing was unsynced here */
            assert_int_equal(queue_count(q), expected_count);
        queue_close(q);
    }
    return rc;
}

static void patch(const char *path, off_t at, const void *bytes, size_t n, void *saved)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if (saved)
        assert_int_equal(pread(fd, saved, n, at), (ssize_t)n);
    assert_int_equal(pwrite(fd, bytes, n, at), (ssize_t)n);
    close(fd);
}

static size_t page_count(const char *path)
{
    int fd = open(path, O_RDONLY);
    off_t size = lseek(fd, 0, SEEK_END);
    close(fd);
    return (size_t)size / PSIZE;
}

static void intact_store_opens(void **state)
{
    (void)state;
    char data[700], err[512];
    char *dir = make_store(5000, data, sizeof data);
    assert_true(page_count(data) > 50);
    assert_int_equal(open_code(dir, err, sizeof err), EVREC_OK);
    tu_rmtree(dir);
    free(dir);
}

/* Every in-use page of a store gets its header page number damaged in turn: each open is
 * refused (the page is reachable) or, for pages no tree reaches, opens intact. None crash. */
static void page_header_damage_refused(void **state)
{
    (void)state;
    char data[700], err[512];
    char *dir = make_store(3000, data, sizeof data);
    size_t pages = page_count(data), refused = 0;
    for (size_t pg = 2; pg < pages; pg++) {
        size_t bogus = pg + 100000, saved;
        patch(data, (off_t)(pg * PSIZE), &bogus, W, &saved);
        int rc = open_code(dir, err, sizeof err);
        if (rc != EVREC_OK) {
            assert_int_equal(rc, EVREC_E_CORRUPT);
            assert_non_null(strstr(err, "carries the number"));
            refused++;
        }
        patch(data, (off_t)(pg * PSIZE), &saved, W, NULL);
    }
    printf("page header damage: %zu of %zu pages refused\n", refused, pages - 2);
    assert_true(refused > pages / 2);
    assert_int_equal(open_code(dir, err, sizeof err), EVREC_OK); /* all restored */
    tu_rmtree(dir);
    free(dir);
}

/* Node offsets pointing outside their page, and free-space bounds past the page end. */
static void node_and_bounds_damage_refused(void **state)
{
    (void)state;
    char data[700], err[512];
    char *dir = make_store(3000, data, sizeof data);
    size_t pages = page_count(data), refused = 0;
    for (size_t pg = 2; pg < pages; pg++) {
        uint16_t bad_off = 0xfff0, saved;
        patch(data, (off_t)(pg * PSIZE + W + 8), &bad_off, 2, &saved); /* first node ptr */
        int rc = open_code(dir, err, sizeof err);
        if (rc != EVREC_OK) {
            assert_int_equal(rc, EVREC_E_CORRUPT);
            refused++;
        }
        patch(data, (off_t)(pg * PSIZE + W + 8), &saved, 2, NULL);
        uint16_t bad_upper = PSIZE + 8;
        patch(data, (off_t)(pg * PSIZE + W + 6), &bad_upper, 2, &saved);
        rc = open_code(dir, err, sizeof err);
        assert_true(rc == EVREC_OK || rc == EVREC_E_CORRUPT);
        patch(data, (off_t)(pg * PSIZE + W + 6), &saved, 2, NULL);
    }
    assert_true(refused > pages / 2);
    assert_int_equal(open_code(dir, err, sizeof err), EVREC_OK);
    tu_rmtree(dir);
    free(dir);
}

/* A damaged transaction id in a meta page (here the older one raised by three) leaves the
 * pair non-consecutive, or with the wrong parity, and is refused. (Raised by exactly two, the
 * older meta would pass for the newest and LMDB would open the previous snapshot: the one
 * damage of this kind that no structural check can see, documented in the README.) */
static void meta_txnid_damage_refused(void **state)
{
    (void)state;
    char data[700], err[512];
    char *dir = make_store(50, data, sizeof data);
    const off_t txn_at = (off_t)(W + 8 + 24 + 12 * W + W); /* page header, then meta fields */
    size_t t[2];
    int fd = open(data, O_RDONLY);
    for (int m = 0; m < 2; m++)
        assert_int_equal(pread(fd, &t[m], W, m * PSIZE + txn_at), (ssize_t)W);
    close(fd);
    assert_true(t[0] + 1 == t[1] || t[1] + 1 == t[0]);
    int older = t[0] < t[1] ? 0 : 1;
    size_t bumped = t[older] + 3, saved;
    patch(data, older * PSIZE + txn_at, &bumped, W, &saved);
    /* Without the synced snapshot's copy (synced.meta): refused. */
    char side[800], kept[820];
    snprintf(side, sizeof side, "%s/synced.meta", dir);
    snprintf(kept, sizeof kept, "%s.kept", side);
    assert_int_equal(rename(side, kept), 0);
    assert_int_equal(open_code(dir, err, sizeof err), EVREC_E_CORRUPT);
    assert_non_null(strstr(err, "not consecutive"));
    /* With it: the meta pages are rewritten from it and the store opens whole, saying so. */
    assert_int_equal(rename(kept, side), 0);
    assert_int_equal(open_code(dir, err, sizeof err), EVREC_OK);
    assert_non_null(strstr(err, "opened as of its last sync"));
    patch(data, older * PSIZE + txn_at, &saved, W, NULL);
    assert_int_equal(open_code(dir, err, sizeof err), EVREC_OK);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(intact_store_opens),
        cmocka_unit_test(page_header_damage_refused),
        cmocka_unit_test(node_and_bounds_damage_refused),
        cmocka_unit_test(meta_txnid_damage_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
