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
 * parsed with cJSON) is the dependencies' floor; evrec's cost above it is printed. Target (as for Pinpoint, bench_upload): boto3 / evrec CPU per event >= 20; printed
 * as met or MISSED. The exit status is 1 only if not every event arrived (or a side could not
 * run), since the ratio moves with the machine and its load. boto3 missing skips that
 * comparison.
 */
#define _GNU_SOURCE
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
            char *data = cJSON_PrintUnformatted(cJSON_GetObjectItem(e, "event"));
            size_t dlen = strlen(data);
            char *text = malloc(dlen + 2);
            memcpy(text, data, dlen);
            if (!kinesis)
                text[dlen++] = '\n';
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
            cJSON_free(data);
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

/* One service: evrec's flush, then boto3 on the same records. Returns 1 on a failure. */
static int bench_one(const char *dir, const char *url, evrec_service_t svc, const char *name)
{
    char store[700], heap_store[700], u[160];
    snprintf(store, sizeof store, "%s/store-%s", dir, name);
    snprintf(heap_store, sizeof heap_store, "%s/store-%s-heap", dir, name);
    /* the heap pass first, with the counting allocator; then the default allocator again */
    if (evrec_set_allocator(cm, cr, cf) != EVREC_OK)
        return 1;
    result_t heap = run_evrec(heap_store, url, svc);
    if (evrec_set_allocator(NULL, NULL, NULL) != EVREC_OK)
        return 1;
    snprintf(u, sizeof u, "%s/_fake/reset", url);
    cJSON_Delete(http_json("POST", u));
    result_t ev = run_evrec(store, url, svc);
    snprintf(u, sizeof u, "%s/_fake/stats", url);
    cJSON *stats = http_json("GET", u);
    double accepted = stats ? cJSON_GetObjectItem(stats, "events_accepted")->valuedouble : 0;
    double requests = stats ? cJSON_GetObjectItem(stats, "requests")->valuedouble : 0;
    double biggest = stats ? cJSON_GetObjectItem(stats, "max_request_data_bytes")->valuedouble
                           : 0;
    double max_body = stats ? cJSON_GetObjectItem(stats, "max_body_bytes")->valuedouble : 0;
    cJSON_Delete(stats);
    snprintf(u, sizeof u, "%s/_fake/log", url);
    cJSON *log = http_json("GET", u);
    snprintf(u, sizeof u, "%s/_fake/reset", url);
    cJSON_Delete(http_json("POST", u));
    int fail = 0;
    if (!ev.ok || !heap.ok || accepted != EVENTS) {
        fprintf(stderr, "bench_streams: %s: evrec delivered %.0f of %d events\n", name, accepted,
                EVENTS);
        fail = 1;
    }
    printf("%s: evrec: %d events in %.0f requests (largest %.0f bytes of records): %.2f us CPU "
           "per event, %.0f events/s\n",
           name, EVENTS, requests, biggest, ev.cpu_s * 1e6 / EVENTS, EVENTS / ev.wall_s);
    printf("%s: peak heap during the flush: %zu bytes = %.2f x the largest body (%.0f bytes)\n",
           name, heap.peak_heap, max_body > 0 ? (double)heap.peak_heap / max_body : 0, max_body);
    size_t nbodies = 0, ref_ok = 0;
    int kinesis = svc == EVREC_SERVICE_KINESIS;
    char **bodies = log ? reference_bodies(log, kinesis, &nbodies) : NULL;
    double ref_cpu = bodies ? run_reference(url, kinesis, bodies, nbodies, &ref_ok) : 0;
    for (size_t i = 0; i < nbodies; i++)
        cJSON_free(bodies[i]);
    free(bodies);
    snprintf(u, sizeof u, "%s/_fake/reset", url);
    cJSON_Delete(http_json("POST", u));
    if (ref_ok != EVENTS) {
        fprintf(stderr, "bench_streams: %s: the reference exchange had %zu of %d accepted\n",
                name, ref_ok, EVENTS);
        fail = 1;
    }
    printf("%s: reference exchange (libcurl + SigV4 + cJSON, the same bodies): %.2f us CPU per "
           "event; evrec above it: %.2f us (%.1fx the floor)\n",
           name, ref_cpu * 1e6 / EVENTS, (ev.cpu_s - ref_cpu) * 1e6 / EVENTS,
           ref_cpu > 0 ? ev.cpu_s / ref_cpu : 0);
    result_t bo = { 0 };
    int brc = log ? run_boto3(dir, url, log, name, &bo) : 1;
    cJSON_Delete(log);
    if (brc == 3) {
        printf("%s: boto3 not installed; CPU comparison skipped\n", name);
    } else if (brc != 0 || !bo.ok) {
        fprintf(stderr, "bench_streams: %s: the boto3 loop failed (%d)\n", name, brc);
        fail = 1;
    } else {
        double ratio = bo.cpu_s / ev.cpu_s;
        printf("%s: boto3: %.2f us CPU per event, %.0f events/s\n", name,
               bo.cpu_s * 1e6 / EVENTS, EVENTS / bo.wall_s);
        printf("%s: CPU per event, boto3 / evrec: %.1f; target >= 20: %s (the reference: "
               "%.1f)\n", name, ratio, ratio >= 20 ? "met" : "MISSED",
               ref_cpu > 0 ? bo.cpu_s / ref_cpu : 0);
        printf("%s: events per second, evrec / boto3: %.1f\n", name, bo.wall_s / ev.wall_s);
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
    int fail = bench_one(dir, url, EVREC_SERVICE_KINESIS, "kinesis");
    fail |= bench_one(dir, url, EVREC_SERVICE_FIREHOSE, "firehose");
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
