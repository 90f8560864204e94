#!/usr/bin/env python3
"""Load: several recording processes (each recording from several threads through the library,
via tests/reliability/load_recorder) while the agent uploads and the local endpoint throttles a
third of the requests, for a while. Checks: no acknowledged event lost, the agent's memory flat
(anonymous RSS sampled every second — the store's mapped pages excluded: the last third's peak
within 25% + 2 MiB of the first third's), and
the store within its bound. Prints the figures and 'load: N passed, N failed'.
"""
import argparse
import random
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):  # the store's mapped file pages are not heap
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def control(url, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def stats(cli, store):
    out = subprocess.run([cli, "stats", "--store", store], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--max-store-bytes", type=int, default=32 << 20)
    ap.add_argument("--no-memory-check", action="store_true",
                    help="report RSS without judging it (sanitizer builds keep freed memory)")
    ap.add_argument("--cli", default=os.environ.get("EVREC_CLI", os.path.join(ROOT, "build", "evrec")))
    ap.add_argument("--recorder", default=os.path.join(ROOT, os.environ.get("BUILD", "build"),
                                                       "tests", "reliability", "load_recorder"))
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the endpoint's throttling (default: EVREC_TEST_SEED, else fresh)")
    args = ap.parse_args()
    if args.seed is None:
        env = os.environ.get("EVREC_TEST_SEED", "")
        args.seed = int(env, 0) if env else random.SystemRandom().randrange(1, 10 ** 12)
    print("load: seed %d (--seed %d or EVREC_TEST_SEED=%d repeats the endpoint's choices)"
          % (args.seed, args.seed, args.seed), flush=True)

    work = tempfile.mkdtemp(prefix="evrec-load-")
    store = os.path.join(work, "store")
    port_file = os.path.join(work, "port")
    endpoint = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "fake_endpoint.py"), "--port-file", port_file,
         "--throttle-rate", "0.33", "--retry-after", "0", "--seed", str(args.seed)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.1)
        url = "http://127.0.0.1:%s" % open(port_file).read().split()[0]
        cfg = {"store": store, "service": "pinpoint", "application_id": "load", "region": "us-east-1",
               "endpoint_url": url, "access_key_id": KEY, "secret_access_key": SECRET,
               "no_environment_credentials": True, "flush_interval_ms": 100,
               "flush_threshold_events": 100, "backoff_base_ms": 10, "backoff_cap_ms": 200,
               "max_store_bytes": args.max_store_bytes}
        config = os.path.join(work, "agent.json")
        with open(config, "w") as f:
            json.dump(cfg, f)
        os.chmod(config, 0o600)  # it holds the secret key: evrec refuses it otherwise
        agent = subprocess.Popen([args.cli, "agent", "--config", config, "--drain-timeout", "60"],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "agent.log"), "w"))
        acked = []
        lock = threading.Lock()

        def recorder(n):
            p = subprocess.Popen([args.recorder, store, str(args.threads), str(args.seconds), "p%d" % n],
                                 stdout=subprocess.PIPE, text=True)
            ids = [line.strip() for line in p.stdout if line.strip()]
            p.wait()
            with lock:
                acked.extend(ids)

        threads = [threading.Thread(target=recorder, args=(i,)) for i in range(args.processes)]
        for t in threads:
            t.start()
        samples, sizes = [], []
        t0 = time.monotonic()
        while any(t.is_alive() for t in threads):
            samples.append(rss_kib(agent.pid))
            data = os.path.join(store, "data.mdb")
            sizes.append(os.path.getsize(data) if os.path.exists(data) else 0)
            time.sleep(1.0)
        for t in threads:
            t.join()
        recorded_for = time.monotonic() - t0
        # Drain, then stop the agent.
        end = time.monotonic() + 120
        while time.monotonic() < end and stats(args.cli, store)["events"] > 0:
            samples.append(rss_kib(agent.pid))
            time.sleep(0.5)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=90)
        st = stats(args.cli, store)
        log = control(url, "/_fake/log")
        received = set(e["event_id"] for e in log)
        evicted = st["dropped"]["evicted"]
        lost = [i for i in acked if i not in received]
        third = max(1, len(samples) // 3)
        early, late = max(samples[:third] or [0]), max(samples[-third:] or [0])
        flat = late <= early * 1.25 + 2048 or args.no_memory_check
        within = max(sizes or [0]) <= 2 * args.max_store_bytes + (8 << 20)
        print("load: %d processes x %d threads for %.1f s: %d acknowledged (%.0f/s), %d received, "
              "%d evicted, %d queued after the drain" % (args.processes, args.threads, recorded_for,
                                                         len(acked), len(acked) / recorded_for,
                                                         len(received), evicted, st["events"]))
        fs = control(url, "/_fake/stats")
        print("load: the endpoint answered %s" % json.dumps(fs, sort_keys=True))
        print("load: agent anonymous RSS KiB: first third peak %d, last third peak %d (%s)"
              % (early, late, "flat" if flat else "GROWING"))
        print("load: data file peak %d bytes for a bound of %d stored bytes"
              % (max(sizes or [0]), args.max_store_bytes))
        ok = (not lost or len(lost) <= evicted) and flat and within and st["events"] == 0
        if lost and len(lost) > evicted:
            print("load: %d acknowledged events lost (first: %s)" % (len(lost), lost[:5]))
        print("load: %d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
        return 0 if ok else 1
    finally:
        endpoint.terminate()
        endpoint.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
