#!/usr/bin/env python3
"""Checks of tools/fake_endpoint.py itself, independent of evrec's C code.

Requests are signed with botocore's own SigV4 signer (and, for the round trips, sent by
botocore's own clients), so a pass here means the local endpoint agrees with AWS's reference
implementation. Run directly: prints "fake endpoint: N passed, N failed" last.
"""

import base64
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import botocore.config
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

ROOT = os.environ.get("EVREC_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "fake_endpoint.py")
AK = "AKIDEXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
PINPOINT = "mobiletargeting"
PERSONALIZE = "personalize"


class Endpoint:
    """One running fake endpoint in a private directory."""

    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="evrec-fake-test-")
        self.port_file = os.path.join(self.dir, "port")
        self.log = os.path.join(self.dir, "events.jsonl")
        self.proc = subprocess.Popen([sys.executable, SCRIPT, "--port-file", self.port_file,
                                      "--log", self.log, *extra])
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    port, self.scheme = f.read().split()
                self.port = int(port)
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"fake endpoint exited with {self.proc.returncode}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("fake endpoint did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def control(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        return resp.status, (json.loads(raw) if raw else None)


def sign(url, body, service, region="us-east-1", key=AK, secret=SK, token=None, headers=None):
    """Headers of a POST signed by botocore's SigV4Auth (which stamps the current time)."""
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "application/json", **(headers or {})})
    if "Content-Type" in (headers or {}):
        req.headers.replace_header("Content-Type", headers["Content-Type"])
    SigV4Auth(Credentials(key, secret, token), service, region).add_auth(req)
    return dict(req.headers.items())


def post(ep, path, doc, service, conn=None, raw=None, **kw):
    """Signed POST; returns (status, headers dict lower-cased, body bytes)."""
    body = raw if raw is not None else json.dumps(doc).encode()
    headers = sign(ep.url + path, body, service, **kw)
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", ep.port, timeout=10)
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if own:
        conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def pinpoint_doc(events=None, endpoint_id="ep-1", user="user-1"):
    events = events if events is not None else {"ev-1": pinpoint_event("click")}
    return {"BatchItem": {endpoint_id: {"Endpoint": {"User": {"UserId": user},
                                                     "Attributes": {"plan": ["free"]}},
                                        "Events": events}}}


def pinpoint_event(etype, attrs=None):
    ev = {"EventType": etype, "Timestamp": "2026-12-01T08:00:00.000Z",
          "Session": {"Id": "sess-1", "StartTimestamp": "2026-12-01T07:59:00.000Z"}}
    if attrs:
        ev["Attributes"] = attrs
    return ev


def personalize_doc(n=1, etype="click", props=None):
    ev = [{"eventId": f"p-{i}", "eventType": etype, "sentAt": time.time(), "itemId": "item-1"}
          for i in range(n)]
    if props is not None:
        ev[0]["properties"] = props
    return {"trackingId": "track-1", "userId": "user-1", "sessionId": "sess-1", "eventList": ev}


PP_PATH = "/v1/apps/app-1/events"
KINESIS_TARGET = "Kinesis_20131202.PutRecords"
FIREHOSE_TARGET = "Firehose_20150804.PutRecordBatch"
JSON11 = "application/x-amz-json-1.1"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"


def b64(data):
    return base64.b64encode(data).decode()


def kinesis_doc(n=1, stream="clicks", data=None, key="ep-1"):
    recs = [{"Data": b64(data if data is not None else
                         json.dumps({"event_id": f"k-{i}", "event_type": "click",
                                     "attributes": {"screen": "home"}}).encode()),
             "PartitionKey": key} for i in range(n)]
    return {"StreamName": stream, "Records": recs}


def firehose_doc(n=1, stream="to-s3", data=None):
    recs = [{"Data": b64(data if data is not None else
                         (json.dumps({"event_id": f"f-{i}", "event_type": "view"}) + "\n")
                         .encode())} for i in range(n)]
    return {"DeliveryStreamName": stream, "Records": recs}


def stream_post(ep, target, doc, raw=None, content_type=JSON11, **kw):
    """A signed AWS JSON 1.1 POST / with X-Amz-Target; (status, headers, decoded body)."""
    service = "kinesis" if target.startswith("Kinesis") else "firehose"
    kw.setdefault("headers", {})
    kw["headers"] = {"X-Amz-Target": target, "Content-Type": content_type, **kw["headers"]}
    status, h, body = post(ep, "/", doc, kw.pop("service", service), raw=raw, **kw)
    return status, h, (json.loads(body) if body else None)


def running(pid):
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


class FakeEndpointTest(unittest.TestCase):
    ep = None

    @classmethod
    def setUpClass(cls):
        cls.ep = Endpoint("--seed", "7")

    @classmethod
    def tearDownClass(cls):
        cls.ep.stop()

    def setUp(self):
        status, _ = self.ep.control("POST", "/_fake/reset")
        self.assertEqual(status, 200)

    def config(self, **kw):
        status, cfg = self.ep.control("POST", "/_fake/config", kw)
        self.assertEqual(status, 200, cfg)
        return cfg

    def log(self):
        return self.ep.control("GET", "/_fake/log")[1]

    def requests(self):
        return self.ep.control("GET", "/_fake/requests")[1]

    def error_of(self, headers, body):
        return headers.get("x-amzn-errortype", "").split(":")[0], json.loads(body)

    # --- accept paths -------------------------------------------------------------------------

    def test_pinpoint_accepts_and_logs(self):
        events = {"ev-1": pinpoint_event("click"), "ev-2": pinpoint_event("view")}
        status, h, body = post(self.ep, PP_PATH, pinpoint_doc(events), PINPOINT)
        self.assertEqual(status, 202, body)
        self.assertEqual(h["content-type"], "application/json")
        self.assertTrue(h["x-amzn-requestid"])
        self.assertIn("GMT", h["date"])
        res = json.loads(body)["Results"]["ep-1"]
        self.assertEqual(res["EndpointItemResponse"], {"Message": "Accepted", "StatusCode": 202})
        self.assertEqual(res["EventsItemResponse"]["ev-2"], {"Message": "Accepted",
                                                              "StatusCode": 202})
        log = self.log()
        self.assertEqual(sorted(e["event_id"] for e in log), ["ev-1", "ev-2"])
        first = log[0]
        self.assertEqual((first["service"], first["application_id"], first["endpoint_id"],
                          first["user_id"], first["session_id"]),
                         ("pinpoint", "app-1", "ep-1", "user-1", "sess-1"))
        self.assertEqual(first["endpoint"]["Attributes"], {"plan": ["free"]})
        with open(self.ep.log) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(sorted(e["event_id"] for e in lines), ["ev-1", "ev-2"])
        req = self.requests()[0]
        self.assertEqual((req["status"], req["outcome"], req["signature_ok"], req["event_count"]),
                         (202, "accepted", True, 2))
        self.assertIsNone(req["validation_error"])

    def test_personalize_accepts_and_logs(self):
        status, h, body = post(self.ep, "/events", personalize_doc(3, props='{"k": "v"}'),
                               PERSONALIZE)
        self.assertEqual(status, 200, body)
        self.assertEqual(body, b"")
        self.assertTrue(h["x-amzn-requestid"])
        log = self.log()
        self.assertEqual([e["event_id"] for e in log], ["p-0", "p-1", "p-2"])
        self.assertEqual((log[0]["tracking_id"], log[0]["user_id"], log[0]["session_id"]),
                         ("track-1", "user-1", "sess-1"))
        self.assertEqual(log[0]["event"]["properties"], '{"k": "v"}')

    def test_botocore_clients_round_trip(self):
        s = botocore.session.get_session()
        kw = dict(region_name="us-east-1", aws_access_key_id=AK, aws_secret_access_key=SK,
                  endpoint_url=self.ep.url)
        pp = s.create_client("pinpoint", **kw)
        r = pp.put_events(ApplicationId="app-9", EventsRequest=pinpoint_doc())
        self.assertEqual(r["EventsResponse"]["Results"]["ep-1"]["EventsItemResponse"]["ev-1"]
                         ["StatusCode"], 202)
        pe = s.create_client("personalize-events", **kw)
        r = pe.put_events(trackingId="t", sessionId="s", eventList=[
            {"eventType": "buy", "sentAt": datetime.datetime.now(datetime.timezone.utc)}])
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.config(throttle_rate=1.0)
        with self.assertRaises(ClientError) as cm:
            s.create_client("pinpoint", config=botocore.config.Config(
                retries={"max_attempts": 1}), **kw).put_events(
                ApplicationId="a", EventsRequest=pinpoint_doc())
        self.assertEqual(cm.exception.response["Error"]["Code"], "TooManyRequestsException")
        self.assertEqual(len(self.log()), 2)

    def test_keep_alive_and_chunked_body(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.ep.port, timeout=10)
        for _ in range(2):
            status, _, _ = post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT, conn=conn)
            self.assertEqual(status, 202)
        body = json.dumps(pinpoint_doc()).encode()
        headers = sign(self.ep.url + PP_PATH, body, PINPOINT)
        conn.request("POST", PP_PATH, body=iter([body[:10], body[10:]]), headers=headers,
                     encode_chunked=True)
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 202)
        conn.close()
        reqs = self.requests()
        self.assertEqual({r["connection"] for r in reqs}, {reqs[0]["connection"]})
        self.assertEqual([r["request_on_connection"] for r in reqs], [1, 2, 3])

    def test_malformed_framing_and_vanished_clients(self):
        with socket.create_connection(("127.0.0.1", self.ep.port), timeout=10) as s:
            s.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\n")
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 400"))
        with socket.create_connection(("127.0.0.1", self.ep.port), timeout=10) as s:
            s.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
            s.shutdown(socket.SHUT_WR)  # a client killed halfway through its body
            self.assertEqual(s.recv(4096), b"")
        stats = self.ep.control("GET", "/_fake/stats")[1]
        self.assertEqual(stats["by_outcome"], {"incomplete": 1})
        self.assertEqual(stats["signature_failures"], 0)

    def test_concurrent_clients_all_logged_once(self):
        import concurrent.futures

        def client(n):
            conn = http.client.HTTPConnection("127.0.0.1", self.ep.port, timeout=20)
            out = [post(self.ep, PP_PATH, pinpoint_doc({f"c{n}-{i}": pinpoint_event("x")}),
                        PINPOINT, conn=conn)[0] for i in range(3)]
            conn.close()
            return out
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            statuses = [s for r in pool.map(client, range(24)) for s in r]
        self.assertEqual(statuses, [202] * 72)
        stats = self.ep.control("GET", "/_fake/stats")[1]
        self.assertEqual((stats["events_accepted"], stats["distinct_events"],
                          stats["duplicates"]), (72, 72, 0))

    def test_binds_loopback_only(self):
        if not shutil.which("ss"):
            self.skipTest("ss not installed")
        out = subprocess.run(["ss", "-ltnH", f"sport = :{self.ep.port}"], capture_output=True,
                             text=True, check=True).stdout
        self.assertEqual([line.split()[3] for line in out.splitlines()],
                         [f"127.0.0.1:{self.ep.port}"])

    # --- signatures ---------------------------------------------------------------------------

    def test_wrong_secret_is_403_in_each_shape(self):
        status, h, body = post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT, secret="wrong")
        self.assertEqual(status, 403)
        etype, err = self.error_of(h, body)
        self.assertEqual(etype, "InvalidSignatureException")
        self.assertIn("does not match the signature you provided", err["Message"])
        self.assertIn("RequestID", err)
        status, h, body = post(self.ep, "/events", personalize_doc(), PERSONALIZE, secret="x")
        etype, err = self.error_of(h, body)
        self.assertEqual((status, etype), (403, "InvalidSignatureException"))
        self.assertIn("does not match", err["message"])
        self.assertEqual(self.log(), [])
        self.assertEqual([r["signature_ok"] for r in self.requests()], [False, False])

    def test_tampered_body_is_403(self):
        body = json.dumps(pinpoint_doc()).encode()
        headers = sign(self.ep.url + PP_PATH, body, PINPOINT)
        tampered = body.replace(b"click", b"clack")
        conn = http.client.HTTPConnection("127.0.0.1", self.ep.port, timeout=10)
        conn.request("POST", PP_PATH, body=tampered, headers=headers)
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 403)

    def test_wrong_scope_access_key_and_missing_auth(self):
        status, _, body = post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT, region="eu-west-1")
        self.assertEqual(status, 403)
        self.assertIn("valid region, not 'eu-west-1'", json.loads(body)["Message"])
        status, _, body = post(self.ep, PP_PATH, pinpoint_doc(), PERSONALIZE)
        self.assertEqual(status, 403)
        self.assertIn("correct service: 'mobiletargeting'", json.loads(body)["Message"])
        status, h, _ = post(self.ep, "/events", personalize_doc(), PERSONALIZE, key="AKIDOTHER")
        self.assertEqual((status, h["x-amzn-errortype"].split(":")[0]),
                         (403, "UnrecognizedClientException"))
        conn = http.client.HTTPConnection("127.0.0.1", self.ep.port, timeout=10)
        conn.request("POST", PP_PATH, body=json.dumps(pinpoint_doc()))
        resp = conn.getresponse()
        resp.read()
        self.assertEqual((resp.status, resp.getheader("x-amzn-ErrorType").split(":")[0]),
                         (403, "MissingAuthenticationTokenException"))

    def test_clock_skew(self):
        self.config(clock_skew_ms=600000)
        status, h, body = post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT)
        self.assertEqual(status, 403)
        self.assertRegex(json.loads(body)["Message"],
                         r"^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z "
                         r"\(\d{8}T\d{6}Z - 5 min\.\)$")
        server_time = datetime.datetime.strptime(h["date"], "%a, %d %b %Y %H:%M:%S GMT")
        offset = (server_time.replace(tzinfo=datetime.timezone.utc).timestamp() - time.time())
        self.assertGreater(offset, 590)
        self.assertLess(offset, 610)
        self.config(clock_skew_ms=-600000)
        status, _, body = post(self.ep, "/events", personalize_doc(), PERSONALIZE)
        self.assertEqual(status, 403)
        self.assertIn("Signature not yet current", json.loads(body)["message"])
        self.assertIn("+ 5 min.)", json.loads(body)["message"])
        self.config(clock_skew_ms=-240000)  # within the 5 minutes: accepted
        status, _, _ = post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT)
        self.assertEqual(status, 202)

    def test_session_token(self):
        ep = Endpoint("--session-token", "TOKEN123", "--access-key", "AKIDTOKEN")
        try:
            ok = dict(key="AKIDTOKEN", token="TOKEN123")
            self.assertEqual(post(ep, PP_PATH, pinpoint_doc(), PINPOINT, **ok)[0], 202)
            self.assertEqual(post(ep, PP_PATH, pinpoint_doc(), PINPOINT, key="AKIDTOKEN")[0],
                             403)
            status, _, body = post(ep, PP_PATH, pinpoint_doc(), PINPOINT, key="AKIDTOKEN",
                                   token="OTHER")
            self.assertEqual(status, 403)
            self.assertIn("security token included in the request is invalid",
                          json.loads(body)["Message"])
            status, reqs = ep.control("GET", "/_fake/requests")
            self.assertEqual(reqs[0]["headers"]["x-amz-security-token"], "(present)")
        finally:
            ep.stop()

    # --- bodies -------------------------------------------------------------------------------

    def assert_bad(self, path, doc, service, needle, raw=None):
        status, h, body = post(self.ep, path, doc, service, raw=raw)
        self.assertEqual(status, 400, body)
        etype, err = self.error_of(h, body)
        if service == PINPOINT:
            self.assertEqual(etype, "BadRequestException")
            self.assertIn(needle, err["Message"])
            self.assertIn("RequestID", err)
        else:
            self.assertEqual(etype, "InvalidInputException")
            self.assertIn(needle, err["message"])
        return err

    def test_invalid_pinpoint_bodies(self):
        ev = pinpoint_event("click")
        del ev["EventType"]
        self.assert_bad(PP_PATH, pinpoint_doc({"e": ev}), PINPOINT, "EventType")
        self.assert_bad(PP_PATH, {"BatchItem": {"ep": {"Events": {}}}}, PINPOINT, "Endpoint")
        self.assert_bad(PP_PATH, {"Items": {}}, PINPOINT, "Items")
        bad_channel = pinpoint_doc()
        bad_channel["BatchItem"]["ep-1"]["Endpoint"]["ChannelType"] = "PIGEON"
        self.assert_bad(PP_PATH, bad_channel, PINPOINT, "PIGEON")
        many = {f"e{i}": pinpoint_event("x") for i in range(101)}
        self.assert_bad(PP_PATH, pinpoint_doc(many), PINPOINT, "101")
        self.assert_bad(PP_PATH, None, PINPOINT, "json", raw=b"{not json")
        self.assertEqual(post(self.ep, PP_PATH, pinpoint_doc(
            {f"e{i}": pinpoint_event("x") for i in range(100)}), PINPOINT)[0], 202)
        self.assertEqual(len(self.log()), 100)
        reqs = self.requests()
        self.assertTrue(all(r["validation_error"] for r in reqs[:-1]))
        self.assertEqual(reqs[4]["event_count"], 101)

    def test_invalid_personalize_bodies(self):
        doc = personalize_doc()
        del doc["eventList"][0]["sentAt"]
        self.assert_bad("/events", doc, PERSONALIZE, "sentAt")
        doc = personalize_doc()
        doc["eventList"][0]["sentAt"] = "yesterday"
        self.assert_bad("/events", doc, PERSONALIZE, "sentAt")
        self.assert_bad("/events", personalize_doc(11), PERSONALIZE, "eventList")
        self.assert_bad("/events", personalize_doc(0), PERSONALIZE, "eventList")
        self.assert_bad("/events", personalize_doc(props=json.dumps({"k": "v" * 1100})),
                        PERSONALIZE, "properties")
        self.assert_bad("/events", personalize_doc(props="not json"), PERSONALIZE, "properties")
        doc = personalize_doc()
        del doc["sessionId"]
        self.assert_bad("/events", doc, PERSONALIZE, "sessionId")
        self.assertEqual(post(self.ep, "/events", personalize_doc(10), PERSONALIZE)[0], 200)
        self.assertEqual(self.ep.control("GET", "/_fake/stats")[1]["validation_failures"], 7)

    # --- Kinesis PutRecords and Firehose PutRecordBatch ----------------------------------------

    def test_streams_round_trip_with_botocore_clients(self):
        s = botocore.session.get_session()
        kw = dict(region_name="us-east-1", aws_access_key_id=AK, aws_secret_access_key=SK,
                  endpoint_url=self.ep.url)
        k = s.create_client("kinesis", **kw)
        r = k.put_records(StreamName="clicks", Records=[
            {"Data": json.dumps({"event_id": "e1", "client": {"client_id": "ep-9"}}).encode(),
             "PartitionKey": "ep-9"},
            {"Data": b"\x00\xffnot json", "PartitionKey": "ep-9"}])
        self.assertEqual(r["FailedRecordCount"], 0)
        self.assertEqual(len(r["Records"]), 2)
        self.assertRegex(r["Records"][0]["SequenceNumber"], r"^[1-9]\d*$")
        self.assertEqual(r["Records"][0]["ShardId"], "shardId-000000000000")
        f = s.create_client("firehose", **kw)
        r = f.put_record_batch(DeliveryStreamName="to-s3",
                               Records=[{"Data": b'{"event_id": "e2"}\n'}])
        self.assertEqual(r["FailedPutCount"], 0)
        self.assertTrue(r["RequestResponses"][0]["RecordId"])
        log = self.log()
        self.assertEqual([(e["service"], e["stream"], e["event_id"]) for e in log],
                         [("kinesis", "clicks", "e1"), ("kinesis", "clicks", None),
                          ("firehose", "to-s3", "e2")])
        self.assertEqual((log[0]["partition_key"], log[0]["endpoint_id"]), ("ep-9", "ep-9"))
        self.assertEqual(base64.b64decode(log[1]["data_base64"]), b"\x00\xffnot json")
        self.assertEqual([e["newline_terminated"] for e in log], [False, False, True])
        self.assertEqual(log[2]["RecordId"], r["RequestResponses"][0]["RecordId"])
        reqs = self.requests()
        self.assertEqual([(q["service"], q["status"], q["event_count"]) for q in reqs],
                         [("kinesis", 200, 2), ("firehose", 200, 1)])
        self.assertEqual(reqs[0]["request_data_bytes"],
                         len(json.dumps({"event_id": "e1", "client": {"client_id": "ep-9"}}))
                         + 10 + 2 * len("ep-9"))

    def test_streams_route_by_target_and_need_json11(self):
        status, h, body = stream_post(self.ep, KINESIS_TARGET, kinesis_doc())
        self.assertEqual((status, h["content-type"]), (200, JSON11))
        status, h, body = stream_post(self.ep, "Kinesis_20131202.DeleteStream", kinesis_doc())
        self.assertEqual((status, body["__type"]), (400, "UnknownOperationException"))
        status, _, body = stream_post(self.ep, KINESIS_TARGET, kinesis_doc(),
                                      content_type="application/json")
        self.assertEqual((status, body["__type"]), (400, "InvalidArgumentException"))
        self.assertIn("application/x-amz-json-1.1", body["message"])
        # signed for the other service: the signing name is checked per target
        status, _, body = stream_post(self.ep, FIREHOSE_TARGET, firehose_doc(),
                                      service="kinesis")
        self.assertEqual(status, 403)
        self.assertIn("correct service: 'firehose'", body["message"])
        status, _, body = stream_post(self.ep, KINESIS_TARGET, kinesis_doc(), secret="nope")
        self.assertEqual((status, body["__type"]), (403, "InvalidSignatureException"))
        self.assertEqual(len(self.log()), 1)

    def test_stream_arn_and_stream_name(self):
        doc = kinesis_doc(2)
        del doc["StreamName"]
        doc["StreamARN"] = STREAM_ARN
        status, _, body = stream_post(self.ep, KINESIS_TARGET, doc)
        self.assertEqual(status, 200, body)
        self.assertEqual({(e["stream"], e["stream_arn"]) for e in self.log()},
                         {(None, STREAM_ARN)} if "StreamARN" in botocore.session.get_session()
                         .get_service_model("kinesis").operation_model("PutRecords")
                         .input_shape.members else {("clicks", STREAM_ARN)})
        del doc["StreamARN"]
        status, _, body = stream_post(self.ep, KINESIS_TARGET, doc)
        self.assertEqual(status, 400)
        self.assertIn("StreamName", body["message"])
        doc["StreamARN"] = "arn:aws:s3:::bucket"
        self.assertEqual(stream_post(self.ep, KINESIS_TARGET, doc)[0], 400)
        doc["StreamARN"], doc["StreamName"] = STREAM_ARN, "other"
        self.assertEqual(stream_post(self.ep, KINESIS_TARGET, doc)[0], 400)

    def test_invalid_stream_bodies(self):
        def bad(target, doc, needle, raw=None):
            status, _, body = stream_post(self.ep, target, doc, raw=raw)
            self.assertEqual((status, body["__type"]), (400, "InvalidArgumentException"), body)
            self.assertIn(needle, body["message"])
        doc = kinesis_doc()
        doc["Records"][0]["Data"] = "not*base64"
        bad(KINESIS_TARGET, doc, "base64")
        doc = kinesis_doc()
        del doc["Records"][0]["PartitionKey"]
        bad(KINESIS_TARGET, doc, "PartitionKey")
        bad(KINESIS_TARGET, kinesis_doc(key="k" * 257), "PartitionKey")
        bad(KINESIS_TARGET, kinesis_doc(0), "Records")
        bad(KINESIS_TARGET, kinesis_doc(501, data=b"x"), "501")
        bad(KINESIS_TARGET, kinesis_doc(stream="bad name!"), "StreamName")
        bad(FIREHOSE_TARGET, {"Records": [{"Data": b64(b"x")}]}, "DeliveryStreamName")
        bad(FIREHOSE_TARGET, firehose_doc(stream="d" * 65), "DeliveryStreamName")
        bad(FIREHOSE_TARGET, None, "json", raw=b"{nope")
        self.assertEqual(self.log(), [])
        self.assertEqual(self.ep.control("GET", "/_fake/stats")[1]["validation_failures"], 9)

    def test_stream_size_limits(self):
        # Kinesis: a record is data + partition key, 1 MiB; Firehose 1,000 KiB of data.
        mib = 1024 * 1024
        self.assertEqual(stream_post(self.ep, KINESIS_TARGET,
                                     kinesis_doc(data=b"x" * (mib - 4), key="ep-1"))[0], 200)
        status, _, body = stream_post(self.ep, KINESIS_TARGET,
                                      kinesis_doc(data=b"x" * (mib - 3), key="ep-1"))
        self.assertEqual(status, 400)
        self.assertIn("record limit", body["message"])
        self.assertEqual(stream_post(self.ep, FIREHOSE_TARGET,
                                     firehose_doc(data=b"x" * 1024000))[0], 200)
        self.assertEqual(stream_post(self.ep, FIREHOSE_TARGET,
                                     firehose_doc(data=b"x" * 1024001))[0], 400)
        # Firehose 4 MiB a request: five records of 1,000 KiB are over, four are not
        status, _, body = stream_post(self.ep, FIREHOSE_TARGET,
                                      firehose_doc(5, data=b"y" * 1000 * 1024))
        self.assertEqual(status, 400)
        self.assertIn("over the limit of 4194304", body["message"])
        # lower limits set at run time
        self.config(max_records=3, max_request_bytes=100, max_record_bytes=40)
        self.assertEqual(stream_post(self.ep, KINESIS_TARGET, kinesis_doc(4, data=b"z"))[0], 400)
        self.assertEqual(stream_post(self.ep, KINESIS_TARGET,
                                     kinesis_doc(1, data=b"z" * 40, key="k"))[0], 400)
        self.assertEqual(stream_post(self.ep, KINESIS_TARGET,
                                     kinesis_doc(3, data=b"z" * 33, key="k"))[0], 400)
        self.assertEqual(stream_post(self.ep, KINESIS_TARGET,
                                     kinesis_doc(3, data=b"z" * 29, key="k"))[0], 200)
        stats = self.ep.control("GET", "/_fake/stats")[1]
        self.assertEqual(stats["max_record_data_bytes"], mib + 1)  # the refused one
        self.assertEqual(len(self.log()), 5)

    def test_stream_request_faults(self):
        self.config(throttle_rate=1.0)
        status, _, body = stream_post(self.ep, KINESIS_TARGET, kinesis_doc())
        self.assertEqual((status, body["__type"]), (400, "ProvisionedThroughputExceededException"))
        status, _, body = stream_post(self.ep, FIREHOSE_TARGET, firehose_doc())
        self.assertEqual((status, body["__type"]), (503, "ServiceUnavailableException"))
        self.config(throttle_rate=0.0, fail_rate=1.0, fail_codes="500")
        status, _, body = stream_post(self.ep, KINESIS_TARGET, kinesis_doc())
        self.assertEqual((status, body["__type"]), (500, "InternalFailure"))
        self.config(fail_rate=0.0, script="LimitExceededException,KMSAccessDeniedException,"
                                          "ExpiredTokenException,InternalFailure,drop,ok")
        seen = [stream_post(self.ep, KINESIS_TARGET, kinesis_doc())[::2] for _ in range(3)]
        self.assertEqual([(st, b["__type"]) for st, b in seen],
                         [(400, "LimitExceededException"), (400, "KMSAccessDeniedException"),
                          (400, "ExpiredTokenException")])
        status, _, body = stream_post(self.ep, FIREHOSE_TARGET, firehose_doc())
        self.assertEqual((status, body["__type"]), (500, "InternalFailure"))
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            stream_post(self.ep, FIREHOSE_TARGET, firehose_doc())
        self.assertEqual(stream_post(self.ep, FIREHOSE_TARGET, firehose_doc())[0], 200)
        self.assertEqual(len(self.log()), 1)
        outcomes = [r["outcome"] for r in self.requests()]
        self.assertEqual(outcomes[:3], ["throttled", "server_error", "server_error"])
        self.assertEqual(outcomes[3], "throttled")

    def test_missing_stream(self):
        self.config(missing_stream=["gone", "arn:aws:kinesis:us-east-1:123456789012:stream/x"])
        status, _, body = stream_post(self.ep, KINESIS_TARGET, kinesis_doc(stream="gone"))
        self.assertEqual((status, body["__type"]), (400, "ResourceNotFoundException"))
        self.assertIn("Stream gone under account", body["message"])
        doc = kinesis_doc()
        del doc["StreamName"]
        doc["StreamARN"] = "arn:aws:kinesis:us-east-1:123456789012:stream/x"
        self.assertEqual(stream_post(self.ep, KINESIS_TARGET, doc)[0], 400)
        status, _, body = stream_post(self.ep, FIREHOSE_TARGET, firehose_doc(stream="gone"))
        self.assertEqual((status, body["__type"]), (400, "ResourceNotFoundException"))
        self.assertEqual(stream_post(self.ep, KINESIS_TARGET, kinesis_doc())[0], 200)
        self.assertEqual(len(self.log()), 1)

    def test_per_record_failures(self):
        self.config(record_fail_rate=0.5, seed=11)
        status, _, body = stream_post(self.ep, KINESIS_TARGET, kinesis_doc(40))
        self.assertEqual(status, 200)
        failed = [i for i, r in enumerate(body["Records"]) if "ErrorCode" in r]
        self.assertEqual(body["FailedRecordCount"], len(failed))
        self.assertTrue(0 < len(failed) < 40)
        for i, r in enumerate(body["Records"]):
            if i in failed:
                self.assertEqual(r["ErrorCode"], "ProvisionedThroughputExceededException")
                self.assertNotIn("SequenceNumber", r)
            else:
                self.assertIn("SequenceNumber", r)
        logged = sorted(e["event_id"] for e in self.log())
        self.assertEqual(logged, sorted(f"k-{i}" for i in range(40) if i not in failed))
        self.config(record_fail_codes="InternalFailure")
        status, _, body = stream_post(self.ep, FIREHOSE_TARGET, firehose_doc(40))
        codes = {r.get("ErrorCode") for r in body["RequestResponses"]}
        self.assertEqual(codes, {None, "InternalFailure"})
        self.assertEqual(body["FailedPutCount"], sum(1 for r in body["RequestResponses"]
                                                     if "ErrorCode" in r))
        self.assertEqual(self.ep.control("GET", "/_fake/stats")[1]["records_failed"],
                         len(failed) + body["FailedPutCount"])

    def test_stream_clock_skew_and_poison(self):
        self.config(clock_skew_ms=600000)
        status, _, body = stream_post(self.ep, KINESIS_TARGET, kinesis_doc())
        self.assertEqual((status, body["__type"]), (403, "InvalidSignatureException"))
        self.assertIn("Signature expired", body["message"])
        self.config(clock_skew_ms=0, poison_attribute=["screen"])
        status, _, body = stream_post(self.ep, KINESIS_TARGET, kinesis_doc())
        self.assertEqual((status, body["__type"]), (400, "InvalidArgumentException"))
        self.assertEqual(stream_post(self.ep, FIREHOSE_TARGET, firehose_doc())[0], 200)

    # --- faults -------------------------------------------------------------------------------

    def test_throttle_with_and_without_retry_after(self):
        self.config(throttle_rate=1.0, retry_after=2)
        status, h, body = post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT)
        self.assertEqual((status, h.get("retry-after")), (429, "2"))
        self.assertEqual(self.error_of(h, body)[0], "TooManyRequestsException")
        self.config(retry_after=None)
        status, h, _ = post(self.ep, "/events", personalize_doc(), PERSONALIZE)
        self.assertEqual(status, 429)
        self.assertNotIn("retry-after", h)
        self.assertEqual(self.log(), [])
        self.assertEqual([r["fault"]["source"] for r in self.requests()],
                         ["throttle_rate", "throttle_rate"])

    def test_fail_rate(self):
        self.config(fail_rate=1.0, fail_codes=[503], retry_after=1)
        status, h, _ = post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT)
        self.assertEqual((status, h.get("retry-after")), (503, "1"))
        self.config(fail_codes="500")
        status, h, body = post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT)
        self.assertEqual(status, 500)
        self.assertNotIn("retry-after", h)
        self.assertEqual(self.error_of(h, body)[0], "InternalServerErrorException")
        self.assertEqual(self.log(), [])

    def test_drop_closes_without_answer(self):
        self.config(drop_rate=1.0)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT)
        reqs = self.requests()
        self.assertEqual((reqs[0]["outcome"], reqs[0]["signature_ok"]), ("drop", True))
        self.assertEqual(self.log(), [])

    def test_slow_answers(self):
        self.config(slow_ms=300)
        t0 = time.monotonic()
        status, _, _ = post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT)
        self.assertEqual(status, 202)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)

    def test_reject_event_type_per_event(self):
        self.config(reject_event_type=["bad.type"])
        events = {"ok-1": pinpoint_event("click"), "no-1": pinpoint_event("bad.type")}
        status, _, body = post(self.ep, PP_PATH, pinpoint_doc(events), PINPOINT)
        self.assertEqual(status, 202)
        per = json.loads(body)["Results"]["ep-1"]["EventsItemResponse"]
        self.assertEqual(per["ok-1"]["StatusCode"], 202)
        self.assertEqual(per["no-1"]["StatusCode"], 400)
        self.assertIn("bad.type", per["no-1"]["Message"])
        self.assertEqual([e["event_id"] for e in self.log()], ["ok-1"])
        self.assertEqual(self.ep.control("GET", "/_fake/stats")[1]["events_rejected"], 1)
        status, _, _ = post(self.ep, "/events", personalize_doc(etype="bad.type"), PERSONALIZE)
        self.assertEqual(status, 400)

    def test_pinpoint_bad_timestamp_is_a_per_event_400(self):
        bad = pinpoint_event("click")
        bad["Timestamp"] = "2026-13-01T00:00:00Z"
        bad_session = pinpoint_event("click")
        bad_session["Session"]["StartTimestamp"] = "yesterday"
        good = pinpoint_event("click")
        good["Timestamp"] = "2026-12-01T08:00:00.123456+01:00"
        status, _, body = post(self.ep, PP_PATH, pinpoint_doc(
            {"bad": bad, "bad-s": bad_session, "good": good}), PINPOINT)
        self.assertEqual(status, 202)
        per = json.loads(body)["Results"]["ep-1"]["EventsItemResponse"]
        self.assertEqual({k: v["StatusCode"] for k, v in per.items()},
                         {"bad": 400, "bad-s": 400, "good": 202})
        self.assertIn("Session.StartTimestamp", per["bad-s"]["Message"])
        self.assertEqual([e["event_id"] for e in self.log()], ["good"])

    def test_poison_attribute_rejects_whole_request(self):
        self.config(poison_attribute="poison")
        events = {"a": pinpoint_event("click"), "b": pinpoint_event("click", {"poison": "1"})}
        self.assert_bad(PP_PATH, pinpoint_doc(events), PINPOINT, "'b'")
        self.assert_bad("/events", personalize_doc(props='{"poison": 1}'), PERSONALIZE, "poison")
        self.assertEqual(self.log(), [])
        del events["b"]
        self.assertEqual(post(self.ep, PP_PATH, pinpoint_doc(events), PINPOINT)[0], 202)

    def test_max_body_bytes(self):
        self.config(max_body_bytes=200)
        big = {f"e{i}": pinpoint_event("click") for i in range(5)}
        status, h, body = post(self.ep, PP_PATH, pinpoint_doc(big), PINPOINT)
        self.assertEqual(status, 413)
        self.assertEqual(self.error_of(h, body)[0], "PayloadTooLargeException")
        self.config(max_body_bytes=100000)
        self.assertEqual(post(self.ep, PP_PATH, pinpoint_doc(big), PINPOINT)[0], 202)

    def test_script_then_normal(self):
        self.config(script="429,503,drop,lost,ok", retry_after=0)
        got = []
        for i in range(6):
            try:
                got.append(post(self.ep, PP_PATH, pinpoint_doc({f"e{i}": pinpoint_event("x")}),
                                PINPOINT)[0])
            except (http.client.RemoteDisconnected, ConnectionError):
                got.append("closed")
        self.assertEqual(got, [429, 503, "closed", "closed", 202, 202])
        self.assertEqual([r["fault"]["source"] for r in self.requests()],
                         ["script"] * 5 + [None])
        # "lost": accepted and logged, but the answer never reaches the client.
        self.assertEqual([e["event_id"] for e in self.log()], ["e3", "e4", "e5"])
        self.assertEqual(self.config()["script"], [])

    def test_seed_makes_rates_repeatable(self):
        def run():
            self.config(seed=42, throttle_rate=0.5)
            return [post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT)[0] for _ in range(12)]
        first, second = run(), run()
        self.assertEqual(first, second)
        self.assertIn(429, first)
        self.assertIn(202, first)

    # --- control API --------------------------------------------------------------------------

    def test_control_api(self):
        status, err = self.ep.control("POST", "/_fake/config", {"throttle_rat": 1})
        self.assertEqual(status, 400)
        self.assertIn("throttle_rat", err["message"])
        status, err = self.ep.control("POST", "/_fake/config", {"drop_rate": 2})
        self.assertEqual(status, 400)
        status, cfg = self.ep.control("POST", "/_fake/config?retry_after=2&fail_codes=502")
        self.assertEqual((status, cfg["retry_after"], cfg["fail_codes"]), (200, 2.0, [502]))
        status, cfg = self.ep.control("POST", "/_fake/config?retry_after=")
        self.assertIsNone(cfg["retry_after"])
        cfg = self.config(slow_ms=5, reject_event_type="a,b")
        self.assertEqual((cfg["slow_ms"], cfg["reject_event_type"]), (5, ["a", "b"]))
        self.assertEqual(self.ep.control("GET", "/_fake/config")[1]["slow_ms"], 5)
        post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT)
        post(self.ep, PP_PATH, pinpoint_doc(), PINPOINT)
        stats = self.ep.control("GET", "/_fake/stats")[1]
        self.assertEqual((stats["requests"], stats["events_accepted"], stats["duplicates"],
                          stats["distinct_events"], stats["by_status"]),
                         (2, 2, 1, 1, {"202": 2}))
        req = self.requests()[0]
        for key in ("time", "path", "service", "status", "outcome", "signature_ok",
                    "validation_error", "body_bytes", "event_count", "headers", "fault"):
            self.assertIn(key, req)
        self.assertEqual(req["headers"]["content-type"], "application/json")
        self.assertNotIn("body", req)
        self.assertEqual(len(self.ep.control("GET", "/_fake/requests?since=1")[1]), 1)
        self.assertEqual(self.ep.control("GET", "/_fake/log?since=1")[1][0]["event_id"], "ev-1")
        self.assertEqual(self.ep.control("GET", "/_fake/log?since=x")[0], 400)
        full = self.ep.control("GET", "/_fake/requests?bodies=1")[1][0]
        self.assertEqual(json.loads(full["body"]), pinpoint_doc())
        self.assertEqual(self.ep.control("POST", "/_fake/reset")[0], 200)
        self.assertEqual(self.log(), [])
        self.assertEqual(self.requests(), [])
        self.assertEqual(self.ep.control("GET", "/_fake/config")[1]["slow_ms"], 0)
        with open(self.ep.log) as f:
            self.assertEqual(f.read(), "")
        self.assertEqual(self.ep.control("GET", "/_fake/nothing")[0], 404)


class LifecycleTest(unittest.TestCase):
    def test_flags_tls_and_sigterm(self):
        if not shutil.which("openssl"):
            self.skipTest("openssl not installed")
        d = tempfile.mkdtemp(prefix="evrec-fake-tls-")
        try:
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                            "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, capture_output=True)
            rlog = os.path.join(d, "requests.jsonl")
            ep = Endpoint("--tls", cert, key, "--throttle-rate", "1", "--retry-after", "3",
                          "--request-log", rlog, "--script", "503")
            try:
                self.assertEqual(ep.scheme, "https")
                import ssl
                ctx = ssl.create_default_context(cafile=cert)
                body = json.dumps(pinpoint_doc()).encode()
                url = f"https://127.0.0.1:{ep.port}{PP_PATH}"
                conn = http.client.HTTPSConnection("127.0.0.1", ep.port, context=ctx, timeout=10)
                got = []
                for _ in range(2):
                    conn.request("POST", PP_PATH, body=body, headers=sign(url, body, PINPOINT))
                    resp = conn.getresponse()
                    resp.read()
                    got.append((resp.status, resp.getheader("Retry-After")))
                self.assertEqual(got, [(503, "3"), (429, "3")])
                conn.close()
                # --request-log: one line per request with its fault decision.
                with open(rlog) as f:
                    recs = [json.loads(line) for line in f]
                self.assertEqual([(r["status"], r["fault"]["source"]) for r in recs],
                                 [(503, "script"), (429, "throttle_rate")])
                self.assertNotIn("body", recs[0])
                t0 = time.monotonic()
                ep.proc.send_signal(signal.SIGTERM)
                self.assertEqual(ep.proc.wait(10), 0)
                self.assertLess(time.monotonic() - t0, 5)
            finally:
                ep.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_exits_with_its_parent(self):
        d = tempfile.mkdtemp(prefix="evrec-fake-orphan-")
        pid = None
        try:
            pf, pidf = os.path.join(d, "port"), os.path.join(d, "pid")
            sh = subprocess.Popen(["sh", "-c", '"$0" "$1" --port-file "$2" & echo $! > "$3"; wait',
                                   sys.executable, SCRIPT, pf, pidf])
            deadline = time.time() + 20
            while not os.path.exists(pf) and time.time() < deadline:
                time.sleep(0.05)
            with open(pidf) as f:
                pid = int(f.read())
            sh.kill()  # like a test program killed before it could stop its endpoint
            sh.wait()
            deadline = time.time() + 10
            while time.time() < deadline and running(pid):
                time.sleep(0.05)
            self.assertLess(time.time(), deadline, "the endpoint outlived its parent")
        finally:
            if pid and running(pid):  # never leave it behind, even when the check failed
                os.kill(pid, signal.SIGKILL)
            shutil.rmtree(d, ignore_errors=True)

    def test_bad_flag_is_refused(self):
        r = subprocess.run([sys.executable, SCRIPT, "--throttle-rate", "3"], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--throttle-rate", r.stderr)


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=1 if "-q" in sys.argv else 2).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"fake endpoint: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
