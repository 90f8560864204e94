/*
 * Queue append throughput per durability mode and record size, as ratios against baselines
 * measured in the same run on the same disk:
 *   - SQLite in its default rollback-journal mode with synchronous=FULL, one INSERT per event:
 *     how the AWS mobile SDKs store events (the baseline of the targets);
 *   - raw LMDB puts of the same bytes, one per transaction and 100 per transaction, with the
 *     store's flags (the limit evrec's own work sits on);
 *   - SQLite WAL with synchronous=NORMAL and FULL (the usual "durable queue in SQLite" setups).
 * Targets: process mode >= 80x the SQLite baseline and >= 60% of raw LMDB (1 put a
 * transaction); batched mode >= 70% of raw LMDB with 100 puts a transaction.
 *
 * Also reported: bytes written to storage per event (port_io_write_bytes over the run,
 * including the final sync), a proxy for flash wear. Nothing is asserted: times vary with the
 * machine; the ratios are what to compare.
 *
 * The stores live under $EVREC_BENCH_DIR, else under ./build (a real disk, not tmpfs).
 */
#define _GNU_SOURCE
#include <lmdb.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "port.h"
#include "queue.h"
#include "record.h"

typedef struct result {
    double per_sec;
    double bytes_per_event;
} result_t;

static char *make_dir(const char *tag)
{
    const char *base = getenv("EVREC_BENCH_DIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/bench-%s-XXXXXX", base && *base ? base : "build", tag);
    char *d = mkdtemp(tmpl);
    if (!d) {
        perror("mkdtemp");
        exit(1);
    }
    return strdup(d);
}

static void remove_tree(const char *dir)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static size_t make_record(uint8_t *buf, size_t size, unsigned i)
{
    static char frag[8192];
    char id[40];
    snprintf(id, sizeof id, "%08x-bench-event-%u", i * 2654435761u, i);
    evrec_record_view_t v = { 0 };
    v.created_ms = 1764000000000LL + i;
    v.event_id = id;
    v.event_id_len = strlen(id);
    v.endpoint_id = "3f1b0e9c-endpoint";
    v.endpoint_id_len = strlen(v.endpoint_id);
    size_t fixed = EVREC_RECORD_HEADER_SIZE + v.event_id_len + v.endpoint_id_len;
    size_t flen = size > fixed + 20 ? size - fixed : 20;
    int n = snprintf(frag, sizeof frag, "{\"EventType\":\"bench\",\"p\":\"");
    memset(frag + n, 'a' + (char)(i % 26), flen - (size_t)n - 2);
    memcpy(frag + flen - 2, "\"}", 2);
    v.fragment = frag;
    v.fragment_len = flen;
    return evrec_record_encode(&v, buf);
}

static result_t bench_evrec(evrec_durability_t mode, size_t size, unsigned n)
{
    char *dir = make_dir("evrec");
    queue_config_t c;
    memset(&c, 0, sizeof c);
    c.durability = mode;
    c.max_store_bytes = 256ull << 20;
    evrec_queue_t *q = NULL;
    char err[512];
    if (queue_open(&q, dir, &c, err, sizeof err) != EVREC_OK) {
        fprintf(stderr, "queue_open: %s\n", err);
        exit(1);
    }
    uint8_t *buf = malloc(size + 64);
    int64_t w0 = port_io_write_bytes();
    uint64_t t0 = port_monotonic_us();
    for (unsigned i = 0; i < n; i++) {
        size_t len = make_record(buf, size, i);
        if (queue_append(q, buf, len, 0, NULL) != EVREC_OK) {
            fprintf(stderr, "append: %s\n", queue_last_error(q));
            exit(1);
        }
    }
    queue_sync(q);
    uint64_t t1 = port_monotonic_us();
    queue_close(q);
    int64_t w1 = port_io_write_bytes();
    free(buf);
    remove_tree(dir);
    free(dir);
    result_t r = { n * 1e6 / (double)(t1 - t0 ? t1 - t0 : 1),
                   w0 >= 0 && w1 >= 0 ? (double)(w1 - w0) / n : -1 };
    return r;
}

static void sql(sqlite3 *db, const char *s)
{
    char *e = NULL;
    if (sqlite3_exec(db, s, NULL, NULL, &e) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s: %s\n", s, e ? e : "?");
        exit(1);
    }
}

static result_t bench_sqlite(const char *journal, const char *sync_mode, size_t size, unsigned n)
{
    char *dir = make_dir("sqlite");
    char path[1100];
    snprintf(path, sizeof path, "%s/queue.db", dir);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "sqlite3_open failed\n");
        exit(1);
    }
    char jpragma[64];
    snprintf(jpragma, sizeof jpragma, "PRAGMA journal_mode=%s", journal);
    sql(db, jpragma);
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous=%s", sync_mode);
    sql(db, pragma);
    sql(db, "CREATE TABLE q (seq INTEGER PRIMARY KEY, v BLOB NOT NULL)");
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "INSERT INTO q (v) VALUES (?)", -1, &st, NULL);
    uint8_t *buf = malloc(size + 64);
    int64_t w0 = port_io_write_bytes();
    uint64_t t0 = port_monotonic_us();
    for (unsigned i = 0; i < n; i++) {
        size_t len = make_record(buf, size, i);
        sqlite3_bind_blob(st, 1, buf, (int)len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "sqlite insert: %s\n", sqlite3_errmsg(db));
            exit(1);
        }
        sqlite3_reset(st);
    }
    sql(db, "PRAGMA wal_checkpoint(FULL)");
    uint64_t t1 = port_monotonic_us();
    sqlite3_finalize(st);
    sqlite3_close(db);
    int64_t w1 = port_io_write_bytes();
    free(buf);
    remove_tree(dir);
    free(dir);
    result_t r = { n * 1e6 / (double)(t1 - t0 ? t1 - t0 : 1),
                   w0 >= 0 && w1 >= 0 ? (double)(w1 - w0) / n : -1 };
    return r;
}

/* Raw LMDB: the same records put with the store's flags, `per_txn` puts a transaction. */
static result_t bench_lmdb(size_t size, unsigned n, unsigned per_txn)
{
    char *dir = make_dir("lmdb");
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;
    if (mdb_env_create(&env) || mdb_env_set_mapsize(env, 1ull << 30) ||
        mdb_env_open(env, dir, MDB_NOTLS | MDB_NOSYNC, 0600)) {
        fprintf(stderr, "lmdb open failed\n");
        exit(1);
    }
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, &dbi);
    mdb_txn_commit(txn);
    uint8_t *buf = malloc(size + 64);
    int64_t w0 = port_io_write_bytes();
    uint64_t t0 = port_monotonic_us();
    for (unsigned i = 0; i < n; i += per_txn) {
        if (mdb_txn_begin(env, NULL, 0, &txn)) {
            fprintf(stderr, "lmdb txn failed\n");
            exit(1);
        }
        for (unsigned j = i; j < i + per_txn && j < n; j++) {
            uint8_t key[8];
            for (int b = 0; b < 8; b++)
                key[b] = (uint8_t)((uint64_t)(j + 1) >> (56 - 8 * b));
            size_t len = make_record(buf, size, j);
            MDB_val k = { sizeof key, key }, d = { len, buf };
            if (mdb_put(txn, dbi, &k, &d, MDB_APPEND)) {
                fprintf(stderr, "lmdb put failed\n");
                exit(1);
            }
        }
        if (mdb_txn_commit(txn)) {
            fprintf(stderr, "lmdb commit failed\n");
            exit(1);
        }
    }
    mdb_env_sync(env, 1);
    uint64_t t1 = port_monotonic_us();
    mdb_env_close(env);
    int64_t w1 = port_io_write_bytes();
    free(buf);
    remove_tree(dir);
    free(dir);
    result_t r = { n * 1e6 / (double)(t1 - t0 ? t1 - t0 : 1),
                   w0 >= 0 && w1 >= 0 ? (double)(w1 - w0) / n : -1 };
    return r;
}

static void target(const char *what, double ratio, double want)
{
    printf("        target: %-44s %7.2fx (want >= %.2fx): %s\n", what, ratio, want,
           ratio >= want ? "met" : "MISSED");
}

static void row(size_t size, const char *name, result_t r, double base)
{
    char wb[32];
    if (r.bytes_per_event >= 0)
        snprintf(wb, sizeof wb, "%.0f", r.bytes_per_event);
    else
        snprintf(wb, sizeof wb, "n/a");
    printf("%6zu  %-30s %12.0f  %8.2fx  %10s\n", size, name, r.per_sec, r.per_sec / base, wb);
}

int main(void)
{
    const size_t sizes[] = { 128, 512, 2048 };
    const unsigned n_fast = 20000, n_batched = 50000, n_fsync = 300;
    printf("queue append throughput; ratios against SQLite's default rollback journal with "
           "synchronous=FULL, one insert per event (how the AWS mobile SDKs store events; same "
           "run, same disk)\n");
    printf("%6s  %-30s %12s  %9s  %10s\n", "bytes", "store / mode", "appends/s", "vs sqlite",
           "written/ev");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t s = sizes[i];
        result_t base = bench_sqlite("DELETE", "FULL", s, n_fsync);
        row(s, "sqlite journal FULL (baseline)", base, base.per_sec);
        result_t raw1 = bench_lmdb(s, n_fast, 1);
        row(s, "raw LMDB, 1 put a txn", raw1, base.per_sec);
        result_t raw100 = bench_lmdb(s, n_batched, 100);
        row(s, "raw LMDB, 100 puts a txn", raw100, base.per_sec);
        result_t proc = bench_evrec(EVREC_DURABLE_PROCESS, s, n_fast);
        row(s, "evrec process (default)", proc, base.per_sec);
        result_t batched = bench_evrec(EVREC_DURABLE_BATCHED, s, n_batched);
        row(s, "evrec batched (100/commit)", batched, base.per_sec);
        row(s, "evrec power (fsync each)", bench_evrec(EVREC_DURABLE_POWER, s, n_fsync),
            base.per_sec);
        row(s, "sqlite WAL NORMAL", bench_sqlite("WAL", "NORMAL", s, n_fast), base.per_sec);
        row(s, "sqlite WAL FULL (fsync each)", bench_sqlite("WAL", "FULL", s, n_fsync),
            base.per_sec);
        target("process vs SQLite baseline", proc.per_sec / base.per_sec, 80.0);
        target("process vs raw LMDB, 1 put a txn", proc.per_sec / raw1.per_sec, 0.60);
        target("batched vs raw LMDB, 100 puts a txn", batched.per_sec / raw100.per_sec, 0.70);
    }
    printf("written/ev: bytes sent to storage per event (/proc/self/io write_bytes), including "
           "the final sync\n");
    return 0;
}
