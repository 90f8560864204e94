/*
 * Delivery to Kinesis Data Streams and Data Firehose against the local endpoint
 * (tools/fake_endpoint.py on 127.0.0.1), as ratios measured in the same run: client CPU time
 * per delivered event (getrusage, user + system, every thread) of one flush of N queued events
 * (batch, convert to stream records, base64, encode, sign, send, apply the per-record verdicts),
 * against a boto3 `put_records` / `put_record_batch` loop sending the very same records in the
 * same batches of 500. Events per second of both are printed too (the endpoint's own time is
 * in both), and evrec's peak heap during the flush (a second pass, with a counting allocator
 * given to evrec_set_allocator) against the largest request body. A reference exchange (one
 * reused libcurl handle, SigV4 with the same SHA-256 backend, the same bodies POSTed, the answer
 * parsed with cJSON) is the dependencies' floor for the exchange alone; evrec's cost above it
 * is printed. The floor with the store is the smallest program doing all of evrec's work with
 * the same libraries: the records in a raw LMDB store, and per request (evrec's grouping, from
 * the endpoint's request records) a read transaction and cursor over them, the body built in
 * one buffer with evrec's base64, SigV4, the POST on one reused handle, a cJSON parse of the
 * answer and a write transaction deleting what it accepted. The CPU passes run
 * EVREC_BENCH_ROUNDS times (default 3), interleaved; medians are printed. Target (as for
 * Pinpoint, bench_upload): boto3 / evrec CPU per event >= 20; printed as met or MISSED. The
 * exit status is 1 only if not every event arrived (or a side could not run), since the ratio
 * moves with the machine and its load. boto3 missing skips that comparison.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <lmdb.h>
#include <sys/stat.h>

#include "bench_common.h"
#include "event.h"
#include "evrec.h"
#include "flusher.h"
#include "port.h"
#include "queue.h"
#include "record.h"
#include "sigv4.h"
#include "wire_internal.h"
#include "bench_median.h"

#define EVENTS 10000
#define ACCESS_KEY "AKIDEXAMPLE"
#define SECRET_KEY "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static void fill_queue(evrec_queue_t *q)
{
    const char *profile = "{\"ChannelType\":\"CUSTOM\",\"Address\":\"bench-device\","
                          "\"Demographic\":{\"Platform\":\"linux\",\"Make\":\"acme\","
                          "\"Model\":\"gw-1\",\"AppVersion\":\"1.4.2\"},"
                          "\"User\":{\"UserId\":\"bench-user\"}}";
    queue_endpoint_put(q, "bench-endpoint", profile, strlen(profile));
    event_context_t ctx = { 0 };
    ctx.preferred_shape = RECORD_SHAPE_PINPOINT;
    ctx.endpoint_id = "bench-endpoint";
    ctx.session_id = "bench-session";
    ctx.session_start_ms = port_wall_ms() - 60000;
    ctx.session_duration_ms = -1;
    for (int i = 0; i < EVENTS; i++) {
        evrec_event_t *ev = NULL;
        char v[32];
        snprintf(v, sizeof v, "item-%d", i);
        if (evrec_event_new(&ev, "app.view") || evrec_event_set_attribute(ev, "item", v) ||
            evrec_event_set_attribute(ev, "screen", "catalog") ||
            evrec_event_set_attribute(ev, "source", "recommendation") ||
            evrec_event_set_metric(ev, "price", 9.99 + i % 7) ||
            evrec_event_set_metric(ev, "position", i % 20)) {
            fprintf(stderr, "bench_streams: building an event failed\n");
            exit(2);
        }
        uint8_t *rec = NULL;
        size_t len = 0;
        int truncated = 0;
        char err[256];
        ctx.now_ms = port_wall_ms();
        if (event_encode_record(ev, &ctx, &rec, &len, &truncated, err, sizeof err) ||
            queue_append(q, rec, len, 0, NULL)) {
            fprintf(stderr, "bench_streams: recording failed: %s\n", err);
            exit(2);
        }
        port_free(rec);
        evrec_event_free(ev);
    }
    queue_sync(q);
}

typedef struct result {
    double cpu_s, wall_s;
    size_t peak_heap;
    int ok;
} result_t;

static result_t run_evrec(const char *dir, const char *url, evrec_service_t svc)
{
    result_t r = { 0 };
    evrec_queue_t *q = NULL;
    char err[256];
    if (queue_open(&q, dir, NULL, err, sizeof err)) {
        fprintf(stderr, "bench_streams: %s\n", err);
        exit(2);
    }
    fill_queue(q);
    flusher_config_t c;
    memset(&c, 0, sizeof c);
    c.service = svc;
    c.stream_name = "bench-stream";
    c.delivery_stream_name = "bench-delivery";
    if (svc == EVREC_SERVICE_FIREHOSE)
        c.stream_name = NULL;
    c.region = "us-east-1";
    c.endpoint_url = url;
    c.creds.access_key_id = ACCESS_KEY;
    c.creds.secret_access_key = SECRET_KEY;
    c.creds.no_environment = 1;
    c.manual = 1;
    flusher_t *f = NULL;
    if (flusher_new(&f, q, &c, err, sizeof err)) {
        fprintf(stderr, "bench_streams: %s\n", err);
        exit(2);
    }
    size_t base = atomic_load(&g_cur);
    atomic_store(&g_peak, base);
    perf_ctl("evrec", "enable");
    double c0 = cpu_seconds(), w0 = wall_seconds();
    int rc = flusher_flush(f, 120000);
    r.cpu_s = cpu_seconds() - c0;
    perf_ctl("evrec", "disable");
    r.wall_s = wall_seconds() - w0;
    r.peak_heap = atomic_load(&g_peak) - base;
    r.ok = rc == EVREC_OK && queue_count(q) == 0;
    flusher_stop(f, 0);
    queue_close(q);
    return r;
}

/* Sends the records the endpoint logged (their data exactly as evrec sent it, re-serialised
 * the same way; Firehose's with its newline), 500 a request, with boto3; prints
 * {"cpu_s","wall_s","sent"} for the loop only. Exit 3 if boto3 is missing. */
static const char *BOTO3_LOOP =
    "import json, resource, sys, time\n"
    "try:\n"
    "    import boto3\n"
    "except ImportError:\n"
    "    sys.exit(3)\n"
    "from botocore.config import Config\n"
    "log = json.load(open(sys.argv[1]))\n"
    "svc = sys.argv[5]\n"
    "c = boto3.client(svc, endpoint_url=sys.argv[2], region_name='us-east-1',\n"
    "    aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4],\n"
    "    config=Config(retries={'max_attempts': 1}))\n"
    "def cpu():\n"
    "    r = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    return r.ru_utime + r.ru_stime\n"
    "c0, w0, sent = cpu(), time.monotonic(), 0\n"
    "for i in range(0, len(log), 500):\n"
    "    chunk = log[i:i + 500]\n"
    "    if svc == 'kinesis':\n"
    "        recs = [{'Data': json.dumps(e['event'], separators=(',', ':')).encode(),\n"
    "                 'PartitionKey': e['partition_key']} for e in chunk]\n"
    "        r = c.put_records(StreamName='bench-stream', Records=recs)\n"
    "        sent += len(chunk) - r['FailedRecordCount']\n"
    "    else:\n"
    "        recs = [{'Data': (json.dumps(e['event'], separators=(',', ':')) + '\\n').encode()}\n"
    "                for e in chunk]\n"
    "        r = c.put_record_batch(DeliveryStreamName='bench-delivery', Records=recs)\n"
    "        sent += len(chunk) - r['FailedPutCount']\n"
    "print(json.dumps({'cpu_s': cpu() - c0, 'wall_s': time.monotonic() - w0, 'sent': sent}))\n";

static int run_boto3(const char *dir, const char *url, cJSON *log, const char *svc,
                     result_t *out)
{
    char logpath[700], script[700], outpath[700];
    snprintf(logpath, sizeof logpath, "%s/log-%s.json", dir, svc);
    snprintf(script, sizeof script, "%s/boto3_streams.py", dir);
    snprintf(outpath, sizeof outpath, "%s/boto3-%s.out", dir, svc);
    char *text = cJSON_PrintUnformatted(log);
    FILE *f = fopen(logpath, "w");
    if (!f || !text)
        return 1;
    fputs(text, f);
    fclose(f);
    cJSON_free(text);
    f = fopen(script, "w");
    if (!f)
        return 1;
    fputs(BOTO3_LOOP, f);
    fclose(f);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *o = freopen(outpath, "w", stdout);
        (void)o;
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
        execlp(python(), python(), script, logpath, url, ACCESS_KEY, SECRET_KEY, svc,
               (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    char line[512] = "";
    f = fopen(outpath, "r");
    if (!f || !fgets(line, sizeof line, f)) {
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    cJSON *j = cJSON_Parse(line);
    if (!j)
        return 1;
    out->cpu_s = cJSON_GetObjectItem(j, "cpu_s")->valuedouble;
    out->wall_s = cJSON_GetObjectItem(j, "wall_s")->valuedouble;
    out->ok = cJSON_GetObjectItem(j, "sent")->valueint == EVENTS;
    cJSON_Delete(j);
    return 0;
}

/* -- the reference exchange: the floor ------------------------------------------------------ */

/* One logged record's data as evrec sent it (the endpoint's decoded JSON printed again by cJSON;
 * Firehose's with its newline): malloc'ed, *len its bytes (no NUL counted). */
static char *record_data(const cJSON *e, int kinesis, size_t *len)
{
    char *data = cJSON_PrintUnformatted(cJSON_GetObjectItem(e, "event"));
    size_t dlen = strlen(data);
    char *text = malloc(dlen + 2);
    memcpy(text, data, dlen);
    if (!kinesis)
        text[dlen++] = '\n';
    text[dlen] = '\0';
    cJSON_free(data);
    *len = dlen;
    return text;
}

/* The request bodies of the records evrec sent (from the endpoint's log, 500 a request), built
 * before anything is timed: {"StreamName":...,"Records":[{"Data":"<base64>",...}]}. */
static char **reference_bodies(cJSON *log, int kinesis, size_t *count)
{
    size_t n = (size_t)cJSON_GetArraySize(log), nb = (n + 499) / 500;
    char **bodies = calloc(nb ? nb : 1, sizeof *bodies);
    for (size_t b = 0; b < nb; b++) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, kinesis ? "StreamName" : "DeliveryStreamName",
                                kinesis ? "bench-stream" : "bench-delivery");
        cJSON *recs = cJSON_AddArrayToObject(root, "Records");
        for (size_t i = b * 500; i < n && i < b * 500 + 500; i++) {
            cJSON *e = cJSON_GetArrayItem(log, (int)i);
            size_t dlen = 0;
            char *text = record_data(e, kinesis, &dlen);
            size_t cap = wire_base64_bytes(dlen) + 1, written = 0;
            char *b64 = malloc(cap);
            wire_base64((const unsigned char *)text, dlen, b64, cap, &written);
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "Data", b64);
            if (kinesis)
                cJSON_AddStringToObject(r, "PartitionKey",
                                        cJSON_GetObjectItem(e, "partition_key")->valuestring);
            cJSON_AddItemToArray(recs, r);
            free(b64);
            free(text);
        }
        bodies[b] = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
    }
    *count = nb;
    return bodies;
}

/* The smallest program doing the same exchange with the same libraries: one reused libcurl
 * handle, SigV4 (evrec's signer, the port's SHA-256), POST, the answer parsed with cJSON and
 * its record ids counted. CPU seconds for all the bodies; *accepted counts the ids. */
static double run_reference(const char *url, int kinesis, char **bodies, size_t nbodies,
                            size_t *accepted)
{
    char host[64];
    snprintf(host, sizeof host, "%s", url + strlen("http://"));
    const char *target = kinesis ? "Kinesis_20131202.PutRecords"
                                 : "Firehose_20150804.PutRecordBatch";
    const char *id_key = kinesis ? "SequenceNumber" : "RecordId";
    buf_t answer = { NULL, 0 };
    char u[128];
    snprintf(u, sizeof u, "%s/", url);
    CURL *c = reference_handle(u, &answer);
    sigv4_key_cache_t cache;
    memset(&cache, 0, sizeof cache);
    sigv4_credentials_t creds = { ACCESS_KEY, SECRET_KEY, NULL };
    *accepted = 0;
    perf_ctl("reference", "enable");
    double c0 = cpu_seconds();
    for (size_t b = 0; b < nbodies; b++) {
        sigv4_header_t hs[] = { { "Host", host },
                                { "Content-Type", "application/x-amz-json-1.1" },
                                { "X-Amz-Target", target } };
        sigv4_request_t req = { "POST", "/", NULL, hs, 3, bodies[b], strlen(bodies[b]), NULL };
        sigv4_params_t p = { "us-east-1", kinesis ? "kinesis" : "firehose", port_wall_ms(), 0,
                             0 };
        sigv4_signature_t sig;
        if (sigv4_sign(&cache, &req, &p, &creds, &sig) != 0)
            break;
        char h3[96];
        snprintf(h3, sizeof h3, "X-Amz-Target: %s", target);
        cJSON *j = reference_post(c, &answer, "application/x-amz-json-1.1", h3, sig.amz_date,
                                  sig.authorization, bodies[b], req.body_len);
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItem(j, kinesis ? "Records" : "RequestResponses"))
        {
            *accepted += cJSON_IsString(cJSON_GetObjectItem(r, id_key));
        }
        cJSON_Delete(j);
    }
    double cpu = cpu_seconds() - c0;
    perf_ctl("reference", "disable");
    curl_easy_cleanup(c);
    free(answer.data);
    return cpu;
}

/* -- the floor with the store ----------------------------------------------------------------- */

/* The same work as evrec's flush by the smallest program with the same libraries. Its store is
 * a raw LMDB environment (MDB_NOSYNC | MDB_NOTLS, as evrec's store in process mode: commits are
 * not synced; one main database, 8-byte big-endian keys), each value the record's partition
 * key as a JSON string (printed by cJSON when the store is filled; none for Firehose) after
 * one byte of its length, then the record's data exactly as sent. */
static void floor_key(uint64_t seq, unsigned char key[8])
{
    for (int b = 0; b < 8; b++)
        key[b] = (unsigned char)(seq >> (56 - 8 * b));
}

/* A fresh store in dir holding the logged records (MDB_APPEND, one commit). Not timed. */
static MDB_env *floor_fill(const char *dir, cJSON *log, int kinesis, MDB_dbi *dbi)
{
    MDB_env *env;
    MDB_txn *txn;
    mkdir(dir, 0700);
    if (mdb_env_create(&env))
        return NULL;
    if (mdb_env_set_mapsize(env, (size_t)256 << 20) ||
        mdb_env_open(env, dir, MDB_NOTLS | MDB_NOSYNC, 0600) ||
        mdb_txn_begin(env, NULL, 0, &txn)) {
        mdb_env_close(env);
        return NULL;
    }
    int rc = mdb_dbi_open(txn, NULL, 0, dbi);
    size_t n = (size_t)cJSON_GetArraySize(log);
    for (size_t i = 0; i < n && !rc; i++) {
        const cJSON *e = cJSON_GetArrayItem(log, (int)i);
        size_t dlen = 0, klen = 0;
        char *data = record_data(e, kinesis, &dlen), *pk = NULL;
        if (kinesis) {
            pk = cJSON_PrintUnformatted(cJSON_GetObjectItem(e, "partition_key"));
            klen = pk ? strlen(pk) : 0;
        }
        unsigned char key[8];
        floor_key(i + 1, key);
        MDB_val k = { sizeof key, key }, v = { 1 + klen + dlen, NULL };
        rc = (kinesis && !pk) || klen > 255 ? EINVAL
                                            : mdb_put(txn, *dbi, &k, &v, MDB_APPEND | MDB_RESERVE);
        if (!rc) {
            unsigned char *p = v.mv_data;
            p[0] = (unsigned char)klen;
            if (klen)
                memcpy(p + 1, pk, klen);
            memcpy(p + 1 + klen, data, dlen);
        }
        cJSON_free(pk);
        free(data);
    }
    if (rc)
        mdb_txn_abort(txn);
    if (rc || mdb_txn_commit(txn)) {
        mdb_env_close(env);
        return NULL;
    }
    return env;
}

/* Room for n more bytes (and a NUL) in the growing body buffer. */
static int floor_reserve(buf_t *b, size_t *cap, size_t n)
{
    if (b->len + n + 1 <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 4096;
    while (b->len + n + 1 > nc)
        nc *= 2;
    char *nd = realloc(b->data, nc);
    if (!nd)
        return 1;
    b->data = nd;
    *cap = nc;
    return 0;
}

static int floor_put(buf_t *b, size_t *cap, const void *p, size_t n)
{
    if (floor_reserve(b, cap, n))
        return 1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* One record of the body from its stored value: {"Data":"<base64>"[,"PartitionKey":...]}. */
static int floor_record(buf_t *b, size_t *cap, const MDB_val *v, int first)
{
    const unsigned char *p = v->mv_data;
    size_t klen = v->mv_size ? p[0] : 0;
    if (v->mv_size < 1 + klen)
        return 1;
    size_t dlen = v->mv_size - 1 - klen, b64 = wire_base64_bytes(dlen), written = 0;
    if (floor_put(b, cap, &",{\"Data\":\""[first], first ? 9 : 10) ||
        floor_reserve(b, cap, b64) ||
        wire_base64(p + 1 + klen, dlen, b->data + b->len, *cap - b->len, &written))
        return 1;
    b->len += written;
    if (!klen)
        return floor_put(b, cap, "\"}", 2);
    return floor_put(b, cap, "\",\"PartitionKey\":", 17) || floor_put(b, cap, p + 1, klen) ||
           floor_put(b, cap, "}", 1);
}

/* Per request, in evrec's grouping (groups[], the records of each request): one read
 * transaction and cursor over the next records, the body built in one growing buffer (each
 * record's data in base64 with evrec's wire_base64), SigV4 (evrec's signer) and the POST on one
 * reused libcurl handle, the answer parsed with cJSON, then one write transaction deleting the
 * records it accepted. The store is filled before the clock starts and emptied by the run.
 * CPU seconds of the requests, or -1 if the store could not be set up; *accepted counts the
 * records deleted, *left what the store still holds afterwards. */
static double run_floor(const char *dir, const char *url, cJSON *log, int kinesis,
                        const size_t *groups, size_t ngroups, size_t *accepted, size_t *left)
{
    *accepted = 0;
    *left = 0;
    MDB_dbi dbi;
    MDB_env *env = floor_fill(dir, log, kinesis, &dbi);
    if (!env)
        return -1;
    char host[64], u[128], h3[96];
    snprintf(host, sizeof host, "%s", url + strlen("http://"));
    snprintf(u, sizeof u, "%s/", url);
    const char *target = kinesis ? "Kinesis_20131202.PutRecords"
                                 : "Firehose_20150804.PutRecordBatch";
    snprintf(h3, sizeof h3, "X-Amz-Target: %s", target);
    const char *id_key = kinesis ? "SequenceNumber" : "RecordId";
    const char *head = kinesis ? "{\"StreamName\":\"bench-stream\",\"Records\":["
                               : "{\"DeliveryStreamName\":\"bench-delivery\",\"Records\":[";
    size_t most = 1;
    for (size_t g = 0; g < ngroups; g++)
        most = groups[g] > most ? groups[g] : most;
    unsigned char(*keys)[8] = malloc(most * sizeof *keys);
    unsigned char *ok = malloc(most);
    buf_t answer = { NULL, 0 }, body = { NULL, 0 };
    size_t cap = 0;
    CURL *c = reference_handle(u, &answer);
    sigv4_key_cache_t cache;
    memset(&cache, 0, sizeof cache);
    sigv4_credentials_t creds = { ACCESS_KEY, SECRET_KEY, NULL };
    int rc = !keys || !ok || !c;
    const char *stage = "setting up";
    perf_ctl("floor", "enable");
    double c0 = cpu_seconds();
    for (size_t g = 0; g < ngroups && !rc; g++) {
        MDB_txn *txn;
        MDB_cursor *cur;
        MDB_val k, v;
        size_t n = 0;
        body.len = 0;
        stage = "reading the records";
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
        if (rc)
            break;
        rc = mdb_cursor_open(txn, dbi, &cur);
        if (!rc) {
            rc = floor_put(&body, &cap, head, strlen(head));
            for (MDB_cursor_op op = MDB_FIRST; !rc && n < groups[g]; op = MDB_NEXT) {
                rc = mdb_cursor_get(cur, &k, &v, op);
                if (!rc && k.mv_size != sizeof keys[n])
                    rc = MDB_CORRUPTED;
                if (!rc) {
                    memcpy(keys[n], k.mv_data, sizeof keys[n]);
                    rc = floor_record(&body, &cap, &v, n == 0);
                    n++;
                }
            }
            rc = rc ? rc : floor_put(&body, &cap, "]}", 2);
            mdb_cursor_close(cur);
        }
        mdb_txn_abort(txn);
        if (rc)
            break;
        body.data[body.len] = '\0';
        sigv4_header_t hs[] = { { "Host", host },
                                { "Content-Type", "application/x-amz-json-1.1" },
                                { "X-Amz-Target", target } };
        sigv4_request_t req = { "POST", "/", NULL, hs, 3, body.data, body.len, NULL };
        sigv4_params_t p = { "us-east-1", kinesis ? "kinesis" : "firehose", port_wall_ms(), 0,
                             0 };
        sigv4_signature_t sig;
        stage = "signing";
        if (sigv4_sign(&cache, &req, &p, &creds, &sig) != 0) {
            rc = -1;
            break;
        }
        cJSON *j = reference_post(c, &answer, "application/x-amz-json-1.1", h3, sig.amz_date,
                                  sig.authorization, body.data, body.len);
        /* a record is accepted if it got an id; an answer of another length accepts none */
        const cJSON *r, *recs = cJSON_GetObjectItem(j, kinesis ? "Records" : "RequestResponses");
        size_t i = 0;
        cJSON_ArrayForEach(r, recs)
        {
            if (i < n)
                ok[i] = cJSON_IsString(cJSON_GetObjectItem(r, id_key));
            i++;
        }
        if (i != n)
            memset(ok, 0, n);
        cJSON_Delete(j);
        stage = "deleting the accepted records";
        rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (rc)
            break;
        int crc = rc = mdb_cursor_open(txn, dbi, &cur);
        /* after mdb_cursor_del the cursor rests on the following record, which MDB_NEXT then
         * returns without stepping over it */
        for (i = 0; !rc && i < n; i++) {
            k.mv_size = sizeof keys[i];
            k.mv_data = keys[i];
            rc = mdb_cursor_get(cur, &k, &v, i == 0 ? MDB_SET_KEY : MDB_NEXT);
            if (!rc && (k.mv_size != sizeof keys[i] || memcmp(k.mv_data, keys[i], 8) != 0))
                rc = MDB_CORRUPTED;
            if (!rc && ok[i]) {
                rc = mdb_cursor_del(cur, 0);
                *accepted += !rc;
            }
        }
        if (!crc)
            mdb_cursor_close(cur);
        rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
    }
    double cpu = cpu_seconds() - c0;
    perf_ctl("floor", "disable");
    if (rc)
        fprintf(stderr, "bench_streams: the floor with the store failed %s (%d)\n", stage, rc);
    MDB_stat st;
    MDB_txn *txn;
    if (!mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) {
        if (!mdb_stat(txn, dbi, &st))
            *left = st.ms_entries;
        mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    curl_easy_cleanup(c);
    free(answer.data);
    free(body.data);
    free(keys);
    free(ok);
    return cpu;
}

/* The records of each request evrec sent, in order, from the endpoint's request records (NULL
 * if they cannot be read or do not add up to EVENTS); *n the requests. malloc'ed. */
static size_t *request_groups(const char *url, size_t *n)
{
    char u[160];
    snprintf(u, sizeof u, "%s/_fake/requests", url);
    cJSON *reqs = http_json("GET", u);
    size_t cnt = (size_t)cJSON_GetArraySize(reqs), total = 0;
    size_t *groups = calloc(cnt ? cnt : 1, sizeof *groups);
    *n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, reqs)
    {
        const cJSON *status = cJSON_GetObjectItem(r, "status");
        const cJSON *count = cJSON_GetObjectItem(r, "event_count");
        if (groups && cJSON_IsNumber(status) && status->valueint == 200 &&
            cJSON_IsNumber(count) && count->valueint > 0) {
            groups[(*n)++] = (size_t)count->valueint;
            total += (size_t)count->valueint;
        }
    }
    cJSON_Delete(reqs);
    if (total != EVENTS) {
        free(groups);
        return NULL;
    }
    return groups;
}

#define MAX_ROUNDS 9

/* One service: evrec's flush, the reference exchange, the floor with the store and boto3 on
 * the same records, `rounds` times interleaved (medians printed). Returns 1 on a failure. */
static int bench_one(const char *dir, const char *url, evrec_service_t svc, const char *name,
                     int rounds)
{
    char store[700], heap_store[700], u[160], reset[160];
    snprintf(heap_store, sizeof heap_store, "%s/store-%s-heap", dir, name);
    snprintf(reset, sizeof reset, "%s/_fake/reset", url);
    /* the heap pass first, with the counting allocator; then the default allocator again */
    if (evrec_set_allocator(cm, cr, cf) != EVREC_OK)
        return 1;
    result_t heap = run_evrec(heap_store, url, svc);
    if (evrec_set_allocator(NULL, NULL, NULL) != EVREC_OK)
        return 1;
    cJSON_Delete(http_json("POST", reset));
    int fail = 0, brc = 0, kinesis = svc == EVREC_SERVICE_KINESIS;
    double accepted = 0, requests = 0, biggest = 0, max_body = 0;
    double ev_cpu[MAX_ROUNDS], ev_wall[MAX_ROUNDS], ref_cpu[MAX_ROUNDS], fl_cpu[MAX_ROUNDS];
    double bo_cpu[MAX_ROUNDS], bo_wall[MAX_ROUNDS];
    cJSON *log = NULL;
    char **bodies = NULL;
    size_t nbodies = 0, ngroups = 0, *groups = NULL;
    for (int r = 0; r < rounds; r++) { /* evrec, the reference, the floor, boto3: interleaved */
        snprintf(store, sizeof store, "%s/store-%s-%d", dir, name, r);
        result_t ev = run_evrec(store, url, svc);
        ev_cpu[r] = ev.cpu_s, ev_wall[r] = ev.wall_s;
        fail |= !ev.ok;
        if (r == 0) { /* what evrec sent, read once: the others send the same records */
            snprintf(u, sizeof u, "%s/_fake/stats", url);
            cJSON *stats = http_json("GET", u);
            accepted = stats ? cJSON_GetObjectItem(stats, "events_accepted")->valuedouble : 0;
            requests = stats ? cJSON_GetObjectItem(stats, "requests")->valuedouble : 0;
            biggest = stats ? cJSON_GetObjectItem(stats, "max_request_data_bytes")->valuedouble
                            : 0;
            max_body = stats ? cJSON_GetObjectItem(stats, "max_body_bytes")->valuedouble : 0;
            cJSON_Delete(stats);
            snprintf(u, sizeof u, "%s/_fake/log", url);
            log = http_json("GET", u);
            groups = request_groups(url, &ngroups);
            bodies = log ? reference_bodies(log, kinesis, &nbodies) : NULL;
            if (!ev.ok || !heap.ok || accepted != EVENTS) {
                fprintf(stderr, "bench_streams: %s: evrec delivered %.0f of %d events\n", name,
                        accepted, EVENTS);
                fail = 1;
            }
        }
        cJSON_Delete(http_json("POST", reset));
        size_t ok = 0, left = 0;
        ref_cpu[r] = bodies ? run_reference(url, kinesis, bodies, nbodies, &ok) : 0;
        cJSON_Delete(http_json("POST", reset));
        if (ok != EVENTS) {
            fprintf(stderr, "bench_streams: %s: the reference exchange had %zu of %d accepted\n",
                    name, ok, EVENTS);
            fail = 1;
        }
        snprintf(store, sizeof store, "%s/floor-%s-%d", dir, name, r);
        fl_cpu[r] = log && groups ? run_floor(store, url, log, kinesis, groups, ngroups, &ok,
                                              &left)
                                  : -1;
        cJSON_Delete(http_json("POST", reset));
        if (fl_cpu[r] < 0 || ok != EVENTS || left != 0) {
            fprintf(stderr, "bench_streams: %s: the floor with the store had %zu of %d "
                    "accepted, %zu left in its store\n", name, ok, EVENTS, left);
            fail = 1;
        }
        result_t bo = { 0 };
        brc = log ? run_boto3(dir, url, log, name, &bo) : 1;
        if (brc == 0 && !bo.ok)
            brc = 1;
        bo_cpu[r] = bo.cpu_s, bo_wall[r] = bo.wall_s;
        cJSON_Delete(http_json("POST", reset));
    }
    for (size_t i = 0; i < nbodies; i++)
        cJSON_free(bodies[i]);
    free(bodies);
    free(groups);
    cJSON_Delete(log);
    double EV = median(ev_cpu, rounds), EW = median(ev_wall, rounds);
    double REF = median(ref_cpu, rounds), FL = median(fl_cpu, rounds);
    printf("%s: evrec: %d events in %.0f requests (largest %.0f bytes of records): %.2f us CPU "
           "per event, %.0f events/s\n",
           name, EVENTS, requests, biggest, EV * 1e6 / EVENTS, EVENTS / EW);
    printf("%s: peak heap during the flush: %zu bytes = %.2f x the largest body (%.0f bytes)\n",
           name, heap.peak_heap, max_body > 0 ? (double)heap.peak_heap / max_body : 0, max_body);
    printf("%s: reference exchange (libcurl + SigV4 + cJSON, the same bodies): %.2f us CPU per "
           "event; evrec above it: %.2f us (%.1fx the floor)\n",
           name, REF * 1e6 / EVENTS, (EV - REF) * 1e6 / EVENTS, REF > 0 ? EV / REF : 0);
    double BO = median(bo_cpu, rounds), BW = median(bo_wall, rounds);
    char vs_boto3[64] = "boto3 not measured";
    if (brc == 0 && FL > 0)
        snprintf(vs_boto3, sizeof vs_boto3, "%.1f", BO / FL);
    printf("%s: floor with the store (LMDB read + body + SigV4 + POST + cJSON + LMDB delete): "
           "%.2f us CPU per event; boto3 / floor: %s; evrec above it: %.2f us (median of %d "
           "rounds)\n",
           name, FL * 1e6 / EVENTS, vs_boto3, (EV - FL) * 1e6 / EVENTS, rounds);
    if (brc == 3) {
        printf("%s: boto3 not installed; CPU comparison skipped\n", name);
    } else if (brc != 0) {
        fprintf(stderr, "bench_streams: %s: the boto3 loop failed (%d)\n", name, brc);
        fail = 1;
    } else {
        double ratio = BO / EV;
        printf("%s: boto3: %.2f us CPU per event, %.0f events/s\n", name, BO * 1e6 / EVENTS,
               EVENTS / BW);
        printf("%s: CPU per event, boto3 / evrec: %.1f; target >= 20: %s (the reference: "
               "%.1f)\n", name, ratio, ratio >= 20 ? "met" : "MISSED",
               REF > 0 ? BO / REF : 0);
        printf("%s: events per second, evrec / boto3: %.1f\n", name, BW / EW);
    }
    return fail;
}

int main(void)
{
    char tmpl[] = "/tmp/evrec-bench-streams-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir)
        return 2;
    char epdir[600], url[64];
    snprintf(epdir, sizeof epdir, "%s/endpoint", dir);
    mkdir(epdir, 0700);
    pid_t ep = start_endpoint(epdir, url, sizeof url);
    if (ep < 0) {
        fprintf(stderr, "bench_streams: the local endpoint did not start\n");
        return 2;
    }
    const char *env_rounds = getenv("EVREC_BENCH_ROUNDS");
    int rounds = env_rounds ? atoi(env_rounds) : 3;
    if (rounds < 1 || rounds > MAX_ROUNDS)
        rounds = 3;
    int fail = bench_one(dir, url, EVREC_SERVICE_KINESIS, "kinesis", rounds);
    fail |= bench_one(dir, url, EVREC_SERVICE_FIREHOSE, "firehose", rounds);
    stop_endpoint(ep);
    char *argv[] = { "rm", "-rf", dir, NULL };
    fflush(stdout);
    pid_t rm = fork();
    if (rm == 0) {
        execvp("rm", argv);
        _exit(127);
    }
    waitpid(rm, NULL, 0);
    return fail;
}
