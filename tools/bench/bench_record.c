/*
 * evrec_record() through the public API, per durability mode: latency percentiles, and its
 * throughput as ratios against baselines measured in the same run, on the same disk, with the
 * very records evrec writes (the same events encoded beforehand):
 *   - SQLite in its default rollback-journal mode with synchronous=FULL, one INSERT per event
 *     (how the AWS mobile SDKs store events);
 *   - raw LMDB puts with the store's flags (MDB_NOSYNC, MDB_APPEND), 1 put a transaction (what
 *     process mode stands on) and 100 puts a transaction (what batched mode stands on);
 *   - queue_append() of the same bytes in the same mode (evrec's store without the encoding).
 * Each round runs every side once, interleaved; the figures are the medians over the rounds
 * (EVREC_BENCH_ROUNDS, default 5), since the machine is shared and wall-clock times are noisy.
 * Targets (issue "Record and upload at the dependencies' floor"): process mode >= 100x SQLite
 * FULL and >= 0.60x raw LMDB 1 put/txn; batched mode >= 0.50x raw LMDB 100 puts/txn; p99 <=
 * 50 us and p99.9 <= 100 us in both. Printed as met or MISSED; nothing is asserted.
 * The stores live under $EVREC_BENCH_DIR, else under ./build (a real disk, not tmpfs).
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/random.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "evrec.h"
#include "port.h"
#include "queue.h"
#include "record.h"
#include "bench_median.h"

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static evrec_event_t *make_event(int i)
{
    evrec_event_t *ev = NULL;
    char v[32];
    snprintf(v, sizeof v, "value-%d", i);
    evrec_event_new(&ev, "bench.event");
    evrec_event_set_attribute(ev, "screen", "home");
    evrec_event_set_attribute(ev, "variant", v);
    evrec_event_set_attribute(ev, "locale", "en_GB");
    evrec_event_set_metric(ev, "load_ms", 12.5 + i);
    evrec_event_set_metric(ev, "count", i);
    return ev;
}

typedef struct result {
    double per_s, p50, p99, p999, max;
} result_t;

static result_t run_record(const char *dir, evrec_durability_t mode, int n)
{
    evrec_options_t o;
    evrec_options_init(&o);
    o.no_flusher = 1;
    o.durability = mode;
    evrec_t *a = NULL;
    char msg[256];
    if (evrec_open(&a, dir, &o, msg, sizeof msg) != EVREC_OK) {
        fprintf(stderr, "bench_record: %s\n", msg);
        exit(1);
    }
    evrec_session_start(a);
    double *lat = malloc(sizeof *lat * (size_t)n);
    double total = 0; /* only inside evrec_record(): building the event is the caller's */
    for (int i = 0; i < n; i++) {
        evrec_event_t *ev = make_event(i); /* built just before, as an application does */
        double s = now_us();
        if (evrec_record(a, ev) != EVREC_OK) {
            fprintf(stderr, "bench_record: %s\n", evrec_last_error(a));
            exit(1);
        }
        lat[i] = now_us() - s;
        total += lat[i];
        evrec_event_free(ev);
    }
    evrec_close(a, 0);
    qsort(lat, (size_t)n, sizeof *lat, bench_cmp_double);
    result_t r = { n / (total / 1e6), lat[n / 2], lat[(size_t)(n * 0.99)],
                   lat[(size_t)(n * 0.999)], lat[n - 1] };
    free(lat);
    return r;
}

/* The records evrec writes for these events (the same sizes and bytes). */
typedef struct recs {
    uint8_t **rec;
    size_t *len;
    int n;
} recs_t;

static recs_t make_records(int n)
{
    recs_t r = { malloc(sizeof(uint8_t *) * (size_t)n), malloc(sizeof(size_t) * (size_t)n), n };
    event_context_t ctx = { 0 };
    ctx.preferred_shape = RECORD_SHAPE_PINPOINT;
    ctx.now_ms = port_wall_ms();
    ctx.endpoint_id = "0b6cf0f4-5d6e-4b1f-9d43-8c5a3c1f2e77";
    ctx.session_id = "5d6e0b6c-f0f4-4b1f-9d43-8c5a3c1f2e77";
    ctx.session_start_ms = ctx.now_ms;
    ctx.session_duration_ms = -1;
    char err[256];
    for (int i = 0; i < n; i++) {
        evrec_event_t *ev = make_event(i);
        int t;
        if (event_encode_record(ev, &ctx, &r.rec[i], &r.len[i], &t, err, sizeof err)) {
            fprintf(stderr, "bench_record: %s\n", err);
            exit(1);
        }
        evrec_event_free(ev);
    }
    return r;
}

static void free_records(recs_t *r)
{
    for (int i = 0; i < r->n; i++)
        port_free(r->rec[i]);
    free(r->rec);
    free(r->len);
}

static double run_append(const char *dir, evrec_durability_t mode, const recs_t *r, int n)
{
    queue_config_t qc;
    memset(&qc, 0, sizeof qc);
    qc.durability = mode;
    qc.max_store_bytes = 256ull << 20;
    evrec_queue_t *q = NULL;
    char err[256];
    if (queue_open(&q, dir, &qc, err, sizeof err) != EVREC_OK) {
        fprintf(stderr, "bench_record: %s\n", err);
        exit(1);
    }
    double t0 = now_us();
    for (int i = 0; i < n; i++)
        queue_append(q, r->rec[i], r->len[i], 0, NULL);
    double t1 = now_us();
    queue_close(q);
    return n / ((t1 - t0) / 1e6);
}

/* Raw LMDB: the same records put with the store's flags, `per_txn` puts a transaction; the
 * latency percentiles are per transaction (what the disk does to the floor). */
/* The baselines' store: a raw LMDB environment in dir with the store's flags (MDB_NOSYNC,
 * MDB_NOTLS), and its main database in *dbi. */
static MDB_env *open_raw_lmdb(const char *dir, MDB_dbi *dbi)
{
    MDB_env *env;
    MDB_txn *txn;
    mkdir(dir, 0700);
    if (mdb_env_create(&env) || mdb_env_set_mapsize(env, 1ull << 30) ||
        mdb_env_open(env, dir, MDB_NOTLS | MDB_NOSYNC, 0600) ||
        mdb_txn_begin(env, NULL, 0, &txn) || mdb_dbi_open(txn, NULL, 0, dbi) ||
        mdb_txn_commit(txn)) {
        fprintf(stderr, "bench_record: lmdb open failed\n");
        exit(1);
    }
    return env;
}

static result_t run_lmdb(const char *dir, const recs_t *r, int n, int per_txn)
{
    MDB_dbi dbi;
    MDB_txn *txn;
    MDB_env *env = open_raw_lmdb(dir, &dbi);
    int ntxn = (n + per_txn - 1) / per_txn;
    double *lat = malloc(sizeof *lat * (size_t)ntxn);
    double t0 = now_us();
    for (int i = 0; i < n; i += per_txn) {
        double s = now_us();
        int rc = mdb_txn_begin(env, NULL, 0, &txn);
        for (int j = i; !rc && j < i + per_txn && j < n; j++) {
            uint8_t key[8];
            for (int b = 0; b < 8; b++)
                key[b] = (uint8_t)((uint64_t)(j + 1) >> (56 - 8 * b));
            MDB_val k = { sizeof key, key }, d = { r->len[j], r->rec[j] };
            rc = mdb_put(txn, dbi, &k, &d, MDB_APPEND);
        }
        if (rc || mdb_txn_commit(txn)) {
            fprintf(stderr, "bench_record: lmdb put failed\n");
            exit(1);
        }
        lat[i / per_txn] = now_us() - s;
    }
    double t1 = now_us();
    mdb_env_close(env);
    qsort(lat, (size_t)ntxn, sizeof *lat, bench_cmp_double);
    result_t res = { n / ((t1 - t0) / 1e6), lat[ntxn / 2], lat[(size_t)(ntxn * 0.99)],
                     lat[(size_t)(ntxn * 0.999)], lat[ntxn - 1] };
    free(lat);
    return res;
}

/* The floor of process mode's power-cut guarantee: raw LMDB, 1 put a transaction, with what
 * the guarantee needs and nothing else. A second thread keeps the last synced snapshot pinned
 * by a read transaction (so no later commit overwrites its pages) and moves the pin each time
 * the writer is PIN_EVERY transactions past it: read transaction, fsync of the data file, the
 * snapshot's id written and fdatasync'ed to a side file, old pin dropped. evrec's process mode
 * does the same work (agent/queue_sync.c: keep_synced, PIN_MAX_TXNS) plus its own bookkeeping. */
#define PIN_EVERY 256u

typedef struct pinner {
    MDB_env *env;
    int side_fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int asked, stop;
    _Atomic uint64_t pin_id;
} pinner_t;

static void *pinner_main(void *arg)
{
    pinner_t *p = arg;
    MDB_txn *pin = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->asked && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        p->asked = 0;
        pthread_mutex_unlock(&p->mu);
        MDB_txn *snap = NULL;
        if (mdb_txn_begin(p->env, NULL, MDB_RDONLY, &snap) == 0 && mdb_env_sync(p->env, 1) == 0) {
            uint64_t id = (uint64_t)mdb_txn_id(snap);
            if (pwrite(p->side_fd, &id, sizeof id, 0) == (ssize_t)sizeof id)
                fdatasync(p->side_fd);
            if (pin)
                mdb_txn_abort(pin);
            pin = snap;
            atomic_store(&p->pin_id, id);
        } else if (snap) {
            mdb_txn_abort(snap);
        }
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    if (pin)
        mdb_txn_abort(pin);
    return NULL;
}

static result_t run_lmdb_pinned(const char *dir, const recs_t *r, int n)
{
    MDB_dbi dbi;
    MDB_txn *txn;
    MDB_env *env = open_raw_lmdb(dir, &dbi);
    char side[800];
    snprintf(side, sizeof side, "%s/synced", dir);
    pinner_t p = { .env = env, .side_fd = open(side, O_RDWR | O_CREAT, 0600) };
    if (p.side_fd < 0) {
        fprintf(stderr, "bench_record: cannot create %s\n", side);
        exit(1);
    }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t th;
    pthread_create(&th, NULL, pinner_main, &p);
    double *lat = malloc(sizeof *lat * (size_t)n);
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        double s = now_us();
        int rc = mdb_txn_begin(env, NULL, 0, &txn);
        uint64_t id = rc ? 0 : (uint64_t)mdb_txn_id(txn);
        uint8_t key[8];
        for (int b = 0; b < 8; b++)
            key[b] = (uint8_t)((uint64_t)(i + 1) >> (56 - 8 * b));
        MDB_val k = { sizeof key, key }, d = { r->len[i], r->rec[i] };
        if (rc || mdb_put(txn, dbi, &k, &d, MDB_APPEND) || mdb_txn_commit(txn)) {
            fprintf(stderr, "bench_record: lmdb put failed\n");
            exit(1);
        }
        if (id > atomic_load(&p.pin_id) + PIN_EVERY) {
            pthread_mutex_lock(&p.mu);
            p.asked = 1;
            pthread_cond_signal(&p.cv);
            pthread_mutex_unlock(&p.mu);
        }
        lat[i] = now_us() - s;
    }
    double t1 = now_us();
    pthread_mutex_lock(&p.mu);
    p.stop = 1;
    pthread_cond_signal(&p.cv);
    pthread_mutex_unlock(&p.mu);
    pthread_join(th, NULL);
    mdb_env_close(env);
    close(p.side_fd);
    qsort(lat, (size_t)n, sizeof *lat, bench_cmp_double);
    result_t res = { n / ((t1 - t0) / 1e6), lat[n / 2], lat[(size_t)(n * 0.99)],
                     lat[(size_t)(n * 0.999)], lat[n - 1] };
    free(lat);
    return res;
}

/* The floor of batched mode with the project's libraries: what evrec_record() does for the
 * bench's event, written the plain way — an event id from a buffered getrandom, the time as
 * ISO 8601 (gmtime_r + snprintf), the Pinpoint event built with cJSON and printed into a
 * buffer (cJSON_PrintPreallocated), the record assembled (evrec's header) and put, 100 puts a
 * transaction. evrec's own encoder writes the same bytes without cJSON's tree. */
static double run_cjson_lmdb(const char *dir, int n)
{
    MDB_dbi dbi;
    MDB_txn *txn = NULL;
    MDB_env *env = open_raw_lmdb(dir, &dbi);
    const char *endpoint = "0b6cf0f4-5d6e-4b1f-9d43-8c5a3c1f2e77";
    const char *session = "5d6e0b6c-f0f4-4b1f-9d43-8c5a3c1f2e77";
    uint8_t pool[512];
    size_t left = 0;
    char frag[1024];
    uint8_t rec[1400];
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        char v[32]; /* the event's own values, as make_event() sets them */
        snprintf(v, sizeof v, "value-%d", i);
        if (left < 16) {
            if (getrandom(pool, sizeof pool, 0) != (ssize_t)sizeof pool)
                exit(1);
            left = sizeof pool;
        }
        uint8_t *u = pool + sizeof pool - left;
        left -= 16;
        u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
        u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
        char id[37];
        snprintf(id, sizeof id,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                 u[13], u[14], u[15]);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        char when[64];
        snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "EventType", "bench.event");
        cJSON_AddStringToObject(e, "Timestamp", when);
        cJSON *a = cJSON_AddObjectToObject(e, "Attributes");
        cJSON_AddStringToObject(a, "screen", "home");
        cJSON_AddStringToObject(a, "variant", v);
        cJSON_AddStringToObject(a, "locale", "en_GB");
        cJSON *m = cJSON_AddObjectToObject(e, "Metrics");
        cJSON_AddNumberToObject(m, "load_ms", 12.5 + i);
        cJSON_AddNumberToObject(m, "count", i);
        cJSON *se = cJSON_AddObjectToObject(e, "Session");
        cJSON_AddStringToObject(se, "Id", session);
        cJSON_AddStringToObject(se, "StartTimestamp", when);
        cJSON_AddStringToObject(e, "ClientSdkVersion", "0.1.0");
        cJSON_AddStringToObject(e, "SdkName", "evrec");
        if (!cJSON_PrintPreallocated(e, frag, (int)sizeof frag, 0)) {
            fprintf(stderr, "bench_record: cJSON print failed\n");
            exit(1);
        }
        cJSON_Delete(e);
        evrec_record_view_t view = { 0 };
        view.shape = RECORD_SHAPE_PINPOINT;
        view.created_ms = ms;
        view.event_id = id;
        view.event_id_len = 36;
        view.endpoint_id = endpoint;
        view.endpoint_id_len = strlen(endpoint);
        view.session_id = session;
        view.session_id_len = strlen(session);
        view.fragment = frag;
        view.fragment_len = strlen(frag);
        size_t len = evrec_record_encode(&view, rec);
        if (!txn && mdb_txn_begin(env, NULL, 0, &txn)) {
            fprintf(stderr, "bench_record: lmdb txn failed\n");
            exit(1);
        }
        uint8_t key[8];
        for (int b = 0; b < 8; b++)
            key[b] = (uint8_t)((uint64_t)(i + 1) >> (56 - 8 * b));
        MDB_val k = { sizeof key, key }, d = { len, rec };
        if (mdb_put(txn, dbi, &k, &d, MDB_APPEND) ||
            ((i + 1) % 100 == 0 && (mdb_txn_commit(txn) || (txn = NULL, 0)))) {
            fprintf(stderr, "bench_record: lmdb put failed\n");
            exit(1);
        }
    }
    if (txn)
        mdb_txn_commit(txn);
    double t1 = now_us();
    mdb_env_close(env);
    return n / ((t1 - t0) / 1e6);
}

/* SQLite, default rollback journal, synchronous=FULL, one INSERT (one transaction) per event. */
static double run_sqlite(const char *dir, const recs_t *r, int n)
{
    char path[800];
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/queue.db", dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "CREATE TABLE q (seq INTEGER PRIMARY KEY, v BLOB NOT NULL)", NULL,
                     NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO q (v) VALUES (?)", -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_record: sqlite: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        sqlite3_bind_blob(st, 1, r->rec[i], (int)r->len[i], SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "bench_record: sqlite insert: %s\n", sqlite3_errmsg(db));
            exit(1);
        }
        sqlite3_reset(st);
    }
    double t1 = now_us();
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n / ((t1 - t0) / 1e6);
}

static void target(const char *what, double got, double want, int at_most, const char *unit)
{
    int ok = at_most ? got <= want : got >= want;
    printf("    target: %-42s %8.2f%s (want %s %.2f%s): %s\n", what, got, unit,
           at_most ? "<=" : ">=", want, unit, ok ? "met" : "MISSED");
}

#define MAX_ROUNDS 15

int main(void)
{
    const int n = 20000, n_sqlite = 300, n_power = 300;
    const char *env_rounds = getenv("EVREC_BENCH_ROUNDS");
    int rounds = env_rounds ? atoi(env_rounds) : 5;
    if (rounds < 1 || rounds > MAX_ROUNDS)
        rounds = 5;
    const char *base_env = getenv("EVREC_BENCH_DIR");
    char base[512];
    snprintf(base, sizeof base, "%s/evrec-bench-record-XXXXXX",
             base_env && *base_env ? base_env : "build");
    if (!mkdtemp(base))
        return 1;
    recs_t recs = make_records(n);
    size_t bytes = 0;
    for (int i = 0; i < n; i++)
        bytes += recs.len[i];
    /* per round: sqlite, lmdb1, lmdb100, append-process, append-batched, process, batched */
    double sq[MAX_ROUNDS], l1[MAX_ROUNDS], l100[MAX_ROUNDS], ap[MAX_ROUNDS], ab[MAX_ROUNDS];
    double l1p50[MAX_ROUNDS], l1p99[MAX_ROUNDS], l1p999[MAX_ROUNDS];
    double lp[MAX_ROUNDS], lpp50[MAX_ROUNDS], lpp99[MAX_ROUNDS], lpp999[MAX_ROUNDS];
    double cj[MAX_ROUNDS];
    double pr[MAX_ROUNDS], p99p[MAX_ROUNDS], p999p[MAX_ROUNDS], p50p[MAX_ROUNDS];
    double bt[MAX_ROUNDS], p99b[MAX_ROUNDS], p999b[MAX_ROUNDS], p50b[MAX_ROUNDS];
    char d[700];
    int k = 0;
#define DIR_FOR(tag) (snprintf(d, sizeof d, "%s/%s-%d", base, (tag), k++), d)
    for (int r = 0; r < rounds; r++) {
        sq[r] = run_sqlite(DIR_FOR("sqlite"), &recs, n_sqlite);
        remove_tree(d);
        result_t raw1 = run_lmdb(DIR_FOR("lmdb1"), &recs, n, 1);
        l1[r] = raw1.per_s, l1p50[r] = raw1.p50, l1p99[r] = raw1.p99, l1p999[r] = raw1.p999;
        remove_tree(d);
        result_t lpin = run_lmdb_pinned(DIR_FOR("lmdb1-pinned"), &recs, n);
        lp[r] = lpin.per_s, lpp50[r] = lpin.p50, lpp99[r] = lpin.p99, lpp999[r] = lpin.p999;
        remove_tree(d);
        result_t p = run_record(DIR_FOR("process"), EVREC_DURABLE_PROCESS, n);
        remove_tree(d);
        ap[r] = run_append(DIR_FOR("append-process"), EVREC_DURABLE_PROCESS, &recs, n);
        remove_tree(d);
        l100[r] = run_lmdb(DIR_FOR("lmdb100"), &recs, n, 100).per_s;
        remove_tree(d);
        cj[r] = run_cjson_lmdb(DIR_FOR("cjson-lmdb100"), n);
        remove_tree(d);
        result_t b = run_record(DIR_FOR("batched"), EVREC_DURABLE_BATCHED, n);
        remove_tree(d);
        ab[r] = run_append(DIR_FOR("append-batched"), EVREC_DURABLE_BATCHED, &recs, n);
        remove_tree(d);
        pr[r] = p.per_s, p50p[r] = p.p50, p99p[r] = p.p99, p999p[r] = p.p999;
        bt[r] = b.per_s, p50b[r] = b.p50, p99b[r] = b.p99, p999b[r] = b.p999;
    }
    result_t pw = run_record(DIR_FOR("power"), EVREC_DURABLE_POWER, n_power);
    remove_tree(d);
    remove_tree(base);
    double SQ = median(sq, rounds), L1 = median(l1, rounds), L100 = median(l100, rounds);
    double LP = median(lp, rounds), CJ = median(cj, rounds);
    double AP = median(ap, rounds), AB = median(ab, rounds);
    double PR = median(pr, rounds), BT = median(bt, rounds);
    printf("evrec_record() with 3 attributes + 2 metrics inside a session (%zu-byte records), "
           "median of %d rounds:\n",
           bytes / (size_t)n, rounds);
    printf("  %-34s %10s  %8s  %8s  %8s\n", "", "events/s", "p50 us", "p99 us", "p99.9 us");
    printf("  %-34s %10.0f\n", "sqlite journal FULL, 1 insert/txn", SQ);
    printf("  %-34s %10.0f  %8.1f  %8.1f  %8.1f\n", "raw LMDB, 1 put a txn", L1,
           median(l1p50, rounds), median(l1p99, rounds), median(l1p999, rounds));
    printf("  %-34s %10.0f  %8.1f  %8.1f  %8.1f\n", "raw LMDB, 1 put a txn, pinned+fsync", LP,
           median(lpp50, rounds), median(lpp99, rounds), median(lpp999, rounds));
    printf("  %-34s %10.0f\n", "raw LMDB, 100 puts a txn", L100);
    printf("  %-34s %10.0f\n", "cJSON-encoded, 100 puts a txn", CJ);
    printf("  %-34s %10.0f\n", "queue_append, process", AP);
    printf("  %-34s %10.0f\n", "queue_append, batched", AB);
    printf("  %-34s %10.0f  %8.1f  %8.1f  %8.1f\n", "evrec_record, process", PR,
           median(p50p, rounds), median(p99p, rounds), median(p999p, rounds));
    printf("  %-34s %10.0f  %8.1f  %8.1f  %8.1f\n", "evrec_record, batched", BT,
           median(p50b, rounds), median(p99b, rounds), median(p999b, rounds));
    printf("  %-34s %10.0f  %8.1f  %8.1f  %8.1f  (1 round of %d, fsync each)\n",
           "evrec_record, power", pw.per_s, pw.p50, pw.p99, pw.p999, n_power);
    printf("  evrec_record / queue_append of the same bytes: process %.2fx, batched %.2fx\n",
           PR / AP, BT / AB);
    target("process vs SQLite FULL", PR / SQ, 100, 0, "x");
    target("process vs raw LMDB, 1 put a txn", PR / L1, 0.60, 0, "x");
    printf("    floor: raw LMDB 1 put a txn with process mode's power-cut guarantee (pinned synced\n"
           "           snapshot, background fsync every %u txns) runs at %.2fx raw LMDB and %.1fx\n"
           "           SQLite FULL; evrec_record, process, runs at %.2fx that floor\n",
           PIN_EVERY, LP / L1, LP / SQ, PR / LP);
    target("batched vs raw LMDB, 100 puts a txn", BT / L100, 0.50, 0, "x");
    printf("    floor: the same events encoded with cJSON (the project's JSON library) and put\n"
           "           100 a txn run at %.2fx raw LMDB; evrec_record, batched, runs at %.2fx\n"
           "           that floor\n",
           CJ / L100, BT / CJ);
    target("process p99", median(p99p, rounds), 50, 1, " us");
    target("process p99.9", median(p999p, rounds), 100, 1, " us");
    target("batched p99", median(p99b, rounds), 50, 1, " us");
    target("batched p99.9", median(p999b, rounds), 100, 1, " us");
    free_records(&recs);
    return 0;
}
