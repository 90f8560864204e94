#!/usr/bin/env python3
"""`make run`: the demo device program against the bundled local endpoint.

Starts tools/fake_endpoint.py on 127.0.0.1 (it checks SigV4 with botocore's signer and the body
against botocore's models), runs build/examples/demo on a fresh store for Pinpoint, then again
on another store for a Kinesis data stream, and prints what the endpoint received and the
store's stats. Exits non-zero unless every recorded event arrived.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
DEMO = os.path.join(ROOT, BUILD, "examples", "demo")
CLI = os.path.join(ROOT, BUILD, "evrec")
FAKE = os.path.join(ROOT, "tools", "fake_endpoint.py")
ACCESS_KEY = "AKIDEXAMPLE"  # the local endpoint's test credentials
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def start_endpoint(workdir):
    port_file = os.path.join(workdir, "port")
    proc = subprocess.Popen([sys.executable, FAKE, "--port-file", port_file,
                             "--log", os.path.join(workdir, "events.jsonl")])
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("demo: the local endpoint did not start")
        try:
            with open(port_file) as f:
                parts = f.read().split()
            if parts:
                return proc, f"{parts[1] if len(parts) > 1 else 'http'}://127.0.0.1:{parts[0]}"
        except (FileNotFoundError, ValueError, IndexError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("demo: the local endpoint did not start in time")


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def kinesis_demo(url, env, workdir):
    """The same program with one option changed: events go to a Kinesis data stream."""
    store = os.path.join(workdir, "store-kinesis")
    print(f"\n$ demo {store} {url} demo-app kinesis:demo-events")
    run = subprocess.run([DEMO, store, url, "demo-app", "kinesis:demo-events"], env=env,
                         capture_output=True, text=True, timeout=60)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    recorded = endpoint_id = None
    for line in run.stdout.splitlines():
        if line.startswith("endpoint: "):
            endpoint_id = line.split(": ", 1)[1]
        elif line.startswith("recorded: "):
            recorded = int(line.split(": ", 1)[1])
    records = [ev for ev in fetch(url + "/_fake/log") if ev["service"] == "kinesis"]
    print(f"\nthe Kinesis stream 'demo-events' received {len(records)} records "
          "(PutRecords, one JSON object each):")
    for ev in records:
        e = ev["event"] or {}
        print(f"  {e.get('event_type', '?'):<16} ts {e.get('event_timestamp')}  "
              f"partition key {ev['partition_key'][:8]}  seq ...{ev['SequenceNumber'][-6:]}")
    if records:
        sample = dict(records[0]["event"])
        print("a record's data: " + json.dumps(sample, sort_keys=True)[:600])
    ours = [ev for ev in records if ev.get("endpoint_id") == endpoint_id]
    if run.returncode != 0 or recorded is None or len(ours) != recorded:
        print(f"demo: FAILED: recorded {recorded} events, the stream received {len(ours)} "
              f"for endpoint {endpoint_id}")
        return 1
    print(f"\ndemo: OK: all {recorded} events arrived in the Kinesis stream, signed and valid")
    return 0


def main():
    for path in (DEMO, CLI, FAKE):
        if not os.path.exists(path):
            raise SystemExit(f"demo: {path} is missing (run `make` first)")
    workdir = tempfile.mkdtemp(prefix="evrec-demo-")
    endpoint = None
    try:
        endpoint, url = start_endpoint(workdir)
        print(f"local endpoint: {url}")
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                   AWS_REGION="us-east-1", AWS_CONFIG_FILE="/nonexistent",
                   AWS_SHARED_CREDENTIALS_FILE="/nonexistent", no_proxy="127.0.0.1")
        env.pop("AWS_SESSION_TOKEN", None)
        env.pop("AWS_PROFILE", None)
        store = os.path.join(workdir, "store")
        print(f"$ demo {store} {url}")
        run = subprocess.run([DEMO, store, url, "demo-app"], env=env, capture_output=True,
                             text=True, timeout=60)
        sys.stdout.write(run.stdout)
        sys.stderr.write(run.stderr)
        endpoint_id = recorded = None
        for line in run.stdout.splitlines():
            if line.startswith("endpoint: "):
                endpoint_id = line.split(": ", 1)[1]
            elif line.startswith("recorded: "):
                recorded = int(line.split(": ", 1)[1])
        received = [ev for ev in fetch(url + "/_fake/log") if ev["service"] == "pinpoint"]
        print(f"\nthe endpoint received {len(received)} events:")
        for ev in received:
            e = ev["event"]
            session = (e.get("Session") or {}).get("Id", "-")
            extra = ""
            if e.get("Attributes"):
                extra += " " + json.dumps(e["Attributes"], sort_keys=True)
            if e.get("Metrics"):
                extra += " " + json.dumps(e["Metrics"], sort_keys=True)
            duration = (e.get("Session") or {}).get("Duration")
            if duration is not None:
                extra += f" duration {duration} ms"
            print(f"  {e['Timestamp']}  {e['EventType']:<16} session {session[:8]}{extra}")
        if received:
            profile = received[0].get("endpoint") or {}
            print("endpoint profile sent: " + json.dumps(profile, sort_keys=True))
        stats = subprocess.run([CLI, "stats", "--store", store], env=env, capture_output=True,
                               text=True, timeout=30)
        print("\n$ evrec stats --store ...")
        sys.stdout.write(stats.stdout)
        sys.stderr.write(stats.stderr)

        ours = [ev for ev in received if ev.get("endpoint_id") == endpoint_id]
        if run.returncode != 0:
            print(f"demo: FAILED: the demo exited with {run.returncode}")
            return 1
        if recorded is None or len(ours) != recorded or len(received) != recorded:
            print(f"demo: FAILED: recorded {recorded} events, the endpoint received "
                  f"{len(ours)} for endpoint {endpoint_id}")
            return 1
        print(f"\ndemo: OK: all {recorded} events arrived, signed and valid")
        return kinesis_demo(url, env, workdir)
    finally:
        if endpoint is not None:
            endpoint.terminate()
            try:
                endpoint.wait(timeout=5)
            except subprocess.TimeoutExpired:
                endpoint.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
