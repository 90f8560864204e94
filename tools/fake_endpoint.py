#!/usr/bin/env python3
"""A local stand-in for Amazon Pinpoint PutEvents, Amazon Personalize Events PutEvents,
Amazon Kinesis Data Streams PutRecords and Amazon Data Firehose PutRecordBatch.

It listens on 127.0.0.1 only and checks every request the way the services do, with checks that
are independent of evrec's own code:

* the SigV4 signature is recomputed with botocore's signer (botocore.auth.SigV4Auth) from the
  method, path, query, the headers named in SignedHeaders and the body, with the configured
  credentials, region and each service's signing name;
* the body is validated against botocore's service model for `PutEvents`, `PutRecords` or
  `PutRecordBatch` (ParamValidator plus the `max` lengths and enums that ParamValidator leaves to
  the service; the record blobs are strict base64 and the services' size limits apply to the
  decoded data);
* Kinesis and Firehose are served on `POST /`, routed by `X-Amz-Target` (AWS JSON 1.1);
* answers use each service's real shapes, status codes and error headers.

Accepted events are kept in memory (`GET /_fake/log`) and appended to `--log` as JSON lines.
Faults (throttling, 5xx, dropped connections, slow answers, per-event rejections, poison
requests, clock skew, payload limit, scripted outcomes) come from flags and can be changed while
running with `POST /_fake/config`. See README.md, "The local endpoint".
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import http.server
import json
import os
import random
import re
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from urllib.parse import parse_qsl, unquote, urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from botocore.validate import ParamValidator

SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
SKEW_LIMIT_S = 300
# Bodies above this are not even read: the answer is 413 and the connection is closed.
HARD_BODY_LIMIT = 64 * 1024 * 1024
PINPOINT_MAX_EVENTS = 100
PINPOINT_RE = re.compile(r"^/v1/apps/([^/]+)/events$")
# Headers worth keeping in the request record (values of secrets are never kept).
RECORDED_HEADERS = ("content-type", "content-length", "content-encoding", "transfer-encoding",
                    "expect", "connection", "user-agent", "x-amz-date", "x-amz-content-sha256",
                    "host", "accept", "accept-encoding")
CORAL_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.coral.service/"
ACCOUNT_ID = "123456789012"
# Kinesis PutRecords and Firehose PutRecordBatch, from the services' documentation: records per
# request, bytes per request and per record (decoded data; Kinesis counts the partition key too).
STREAM_MAX_RECORDS = 500
KINESIS_MAX_REQUEST_BYTES = 5 * 1024 * 1024
KINESIS_MAX_RECORD_BYTES = 1024 * 1024
FIREHOSE_MAX_REQUEST_BYTES = 4 * 1024 * 1024
FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024
KINESIS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/([a-zA-Z0-9_.-]+)$")
# A scripted outcome may name an error type: its status, where it is not 400.
NAMED_ERROR_STATUS = {"InternalFailure": 500, "InternalFailureException": 500,
                      "ServiceUnavailableException": 503}
NAMED_ERROR_RE = re.compile(r"^[A-Z][A-Za-z]+(Exception|Failure|Required)$")

DEFAULT_ACCESS_KEY = "AKIDEXAMPLE"
DEFAULT_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def _opt_seconds(v):
    if v is None:
        return None
    f = float(v)
    if f < 0:
        raise ValueError("must not be negative")
    return f


def _str_list(v):
    if v is None:
        return []
    if isinstance(v, str):
        return [s for s in (p.strip() for p in v.split(",")) if s]
    return [str(s) for s in v]


def _script(v):
    items = _str_list(v)
    for item in items:
        if not _script_item_ok(item):
            raise ValueError(f"unknown outcome '{item}' (use ok, drop, lost, slow, null_body, "
                             "a 4xx/5xx status code or an error type such as "
                             "ProvisionedThroughputExceededException)")
    return items


def _script_item_ok(item):
    return (item in ("ok", "drop", "lost", "slow", "null_body")
            or (item.isdigit() and 400 <= int(item) <= 599)
            or NAMED_ERROR_RE.match(item) is not None)


def _rate(v):
    f = float(v)
    if not 0.0 <= f <= 1.0:
        raise ValueError("must be between 0 and 1")
    return f


def _nonneg_int(v):
    i = int(v)
    if i < 0:
        raise ValueError("must not be negative")
    return i


def _opt_nonneg_int(v):
    return None if v is None else _nonneg_int(v)


def _codes(v):
    codes = [int(c) for c in _str_list(v)]
    if not codes or any(c < 500 or c > 599 for c in codes):
        raise ValueError("must be 5xx status codes")
    return codes


# Configuration keys settable by flag and by POST /_fake/config, with their coercions.
CONFIG_KEYS = {
    "throttle_rate": _rate,
    "retry_after": _opt_seconds,
    "fail_rate": _rate,
    "fail_codes": _codes,
    "drop_rate": _rate,
    "slow_ms": _nonneg_int,
    "reject_event_type": _str_list,
    "poison_attribute": _str_list,
    "clock_skew_ms": int,
    "max_body_bytes": _nonneg_int,
    "script": _script,
    "seed": lambda v: None if v is None else int(v),
    # Kinesis and Firehose only.
    "record_fail_rate": _rate,
    "record_fail_codes": _str_list,
    "missing_stream": _str_list,
    "max_records": _opt_nonneg_int,
    "max_request_bytes": _opt_nonneg_int,
    "max_record_bytes": _opt_nonneg_int,
}


ISO8601_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?"
                        r"(Z|[+-]\d{2}:?\d{2})$")


def valid_iso8601(value):
    """An extended-format ISO 8601 date-time with a zone, as Pinpoint's timestamps are."""
    m = ISO8601_RE.match(value) if isinstance(value, str) else None
    if not m:
        return False
    try:  # the constructor checks the ranges (month 13, 31 April...), faster than strptime
        datetime.datetime(*(int(g) for g in m.groups()[:6]))
    except ValueError:
        return False
    return True


def iso_basic(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(SIGV4_TIMESTAMP)


def http_date(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%a, %d %b %Y %H:%M:%S GMT")


class ApiError(Exception):
    """An answer other than success: status, error type, message, extra headers."""

    def __init__(self, status, etype, message, headers=None, coral=False):
        super().__init__(message)
        self.status = status
        self.etype = etype
        self.message = message
        self.headers = headers or {}
        self.coral = coral


class IncompleteBody(Exception):
    """The client went away before sending the whole body (killed, timed out)."""


class Service:
    """What differs between the services: route, signing name, model, answer shapes."""

    operation = "PutEvents"
    stream = False  # AWS JSON 1.1 on POST /, records of base64 data
    ok_status = 200

    def __init__(self, name, signing_name, model):
        self.name = name
        self.signing_name = signing_name
        self.model = model
        self.input_shape = model.operation_model(self.operation).input_shape

    def error_body(self, message, request_id, etype):
        raise NotImplementedError

    def throttle_error(self, headers):
        return ApiError(429, self.throttled, "Rate exceeded", headers)


class Pinpoint(Service):
    bad_request = "BadRequestException"
    throttled = "TooManyRequestsException"
    ok_status = 202

    def error_body(self, message, request_id, etype):
        return {"Message": message, "RequestID": request_id}


class Personalize(Service):
    bad_request = "InvalidInputException"
    throttled = "ThrottlingException"

    def error_body(self, message, request_id, etype):
        return {"message": message}


class StreamService(Service):
    """Kinesis PutRecords and Firehose PutRecordBatch: AWS JSON 1.1, errors as {"__type"}."""

    stream = True
    bad_request = "InvalidArgumentException"

    def __init__(self, name, model):
        super().__init__(name, name, model)
        self.target = f"{model.metadata['targetPrefix']}.{self.operation}"

    def error_body(self, message, request_id, etype):
        return {"__type": etype, "message": message}


class Kinesis(StreamService):
    operation = "PutRecords"
    throttled = "ProvisionedThroughputExceededException"
    record_throttled = "ProvisionedThroughputExceededException"
    name_key = "StreamName"
    max_request_bytes = KINESIS_MAX_REQUEST_BYTES
    max_record_bytes = KINESIS_MAX_RECORD_BYTES
    records_key, answers_key, failed_key = "Records", "Records", "FailedRecordCount"

    def throttle_error(self, headers):
        return ApiError(400, self.throttled, "Rate exceeded for stream under account "
                        f"{ACCOUNT_ID}.", headers)

    def missing(self, name):
        return ApiError(400, "ResourceNotFoundException",
                        f"Stream {name} under account {ACCOUNT_ID} not found.")

    def record_cost(self, rec, data):
        return len(data) + len(rec.get("PartitionKey", "").encode())

    def success_entry(self, rng, i):
        return {"SequenceNumber": str(49600000000000000000000000000000000000000000000000000000
                                      + rng.randrange(1 << 40) * 1000 + i),
                "ShardId": "shardId-000000000000"}

    def answer(self, entries, failed):
        return {"FailedRecordCount": failed, "Records": entries, "EncryptionType": "NONE"}


class Firehose(StreamService):
    operation = "PutRecordBatch"
    throttled = "ServiceUnavailableException"
    record_throttled = "ServiceUnavailableException"
    name_key = "DeliveryStreamName"
    max_request_bytes = FIREHOSE_MAX_REQUEST_BYTES
    max_record_bytes = FIREHOSE_MAX_RECORD_BYTES
    records_key, answers_key, failed_key = "Records", "RequestResponses", "FailedPutCount"

    def throttle_error(self, headers):
        return ApiError(503, self.throttled, "Slow down.", headers)

    def missing(self, name):
        return ApiError(400, "ResourceNotFoundException",
                        f"Firehose {name} under account {ACCOUNT_ID} not found.")

    def record_cost(self, rec, data):
        return len(data)

    def success_entry(self, rng, i):
        return {"RecordId": "%032x%032x" % (rng.getrandbits(128), rng.getrandbits(128))}

    def answer(self, entries, failed):
        return {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": entries}


class ServerSigner(SigV4Auth):
    """botocore's SigV4 signer, fed the request as received instead of stamping a new one.

    The timestamp comes from X-Amz-Date (set in request.context before calling), and the
    headers are exactly those the client listed in SignedHeaders, with their received values.
    """

    def __init__(self, credentials, service_name, region_name, signed_names, raw_headers):
        super().__init__(credentials, service_name, region_name)
        self._signed_names = signed_names
        self._raw_headers = raw_headers

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name in self._signed_names:
            for value in self._raw_headers.get_all(name) or []:
                header_map[name] = value
        return header_map

    def expected_signature(self, request):
        canonical = self.canonical_request(request)
        sts = self.string_to_sign(request, canonical)
        return self.signature(sts, request), canonical, sts


class Validator:
    """Checks a decoded input against a botocore shape.

    A pre-pass converts epoch-number timestamps (the wire form of rest-json) to datetimes and
    checks what ParamValidator does not (`max` lengths, list/map sizes, enums); ParamValidator
    then checks types, required members, unknown members and `min`.
    """

    def validate(self, params, shape):
        errors = []
        converted = self._prepare(params, shape, "", errors)
        report = ParamValidator().validate(converted, shape)
        if report.has_errors():
            errors.insert(0, report.generate_report())
        return converted, errors

    def _prepare(self, value, shape, path, errors):
        t = shape.type_name
        name = path or "input"
        if t == "structure" and isinstance(value, dict):
            out = {}
            for k, v in value.items():
                member = shape.members.get(k)
                sub = f"{path}.{k}" if path else k
                out[k] = self._prepare(v, member, sub, errors) if member is not None else v
            return out
        if t == "list" and isinstance(value, list):
            self._check_max(len(value), shape, name, errors, "items")
            return [self._prepare(v, shape.member, f"{name}[{i}]", errors)
                    for i, v in enumerate(value)]
        if t == "map" and isinstance(value, dict):
            self._check_max(len(value), shape, name, errors, "entries")
            out = {}
            for k, v in value.items():
                self._prepare(k, shape.key, f"{name} key '{k}'", errors)
                out[k] = self._prepare(v, shape.value, f"{name}.{k}", errors)
            return out
        if t == "string" and isinstance(value, str):
            self._check_max(len(value), shape, name, errors, "characters")
            if shape.enum and value not in shape.enum:
                errors.append(f"Invalid value for {name}: '{value}', valid values: "
                              + ", ".join(shape.enum))
            return value
        if t == "timestamp":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                errors.append(f"Invalid type for {name}: expected epoch seconds (a number), "
                              f"got {type(value).__name__}")
                return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
            try:
                return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
            except (OverflowError, OSError, ValueError):
                errors.append(f"Invalid value for {name}: {value} is not a valid timestamp")
                return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        if t == "blob" and isinstance(value, (bytes, bytearray)):
            self._check_max(len(value), shape, name, errors, "bytes")
            return value
        if t in ("double", "float") and isinstance(value, bool):
            errors.append(f"Invalid type for {name}: expected a number, got bool")
        return value

    @staticmethod
    def _check_max(n, shape, name, errors, unit):
        mx = shape.metadata.get("max")
        if mx is not None and n > mx:
            errors.append(f"Invalid length for {name}: {n} {unit}, valid max: {mx}")


class State:
    """Everything the server remembers, behind one lock."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.start_config = self._config_from_args(args)
        self.log_path = args.log
        self.request_log_path = args.request_log
        self.verbose = args.verbose
        self.credentials = Credentials(args.access_key, args.secret_key, args.session_token)
        self.region = args.region
        session = botocore.session.get_session()
        self.services = {
            "pinpoint": Pinpoint("pinpoint", "mobiletargeting",
                                 session.get_service_model("pinpoint")),
            "personalize-events": Personalize("personalize-events", "personalize",
                                              session.get_service_model("personalize-events")),
            "kinesis": Kinesis("kinesis", session.get_service_model("kinesis")),
            "firehose": Firehose("firehose", session.get_service_model("firehose")),
        }
        self.targets = {svc.target: svc for svc in self.services.values() if svc.stream}
        self.validator = Validator()
        self._conn_ids = 0
        self.reset()

    @staticmethod
    def _config_from_args(args):
        cfg = {}
        for key, coerce in CONFIG_KEYS.items():
            cfg[key] = coerce(getattr(args, key))
        return cfg

    def reset(self):
        """Back to the state at start: empty log and records, configuration from the flags."""
        with self.lock:
            self.config = dict(self.start_config)
            self.config["script"] = list(self.start_config["script"])
            self.rng = random.Random(self.config["seed"])
            self.events = []
            self.requests = []
            self.seen_ids = {}
            self.counters = {"requests": 0, "events_accepted": 0, "events_rejected": 0,
                             "duplicates": 0, "signature_failures": 0, "validation_failures": 0,
                             "max_event_count": 0, "max_body_bytes": 0,
                             "max_request_data_bytes": 0, "max_record_data_bytes": 0,
                             "records_failed": 0}
            self.by_status = {}
            self.by_outcome = {}
            if self.log_path:
                open(self.log_path, "w").close()
            if self.request_log_path:
                open(self.request_log_path, "w").close()

    def update_config(self, changes):
        if not isinstance(changes, dict):
            raise ValueError("config must be a JSON object")
        new = {}
        for key, value in changes.items():
            if key not in CONFIG_KEYS:
                raise ValueError(f"unknown config key '{key}' (known: {', '.join(CONFIG_KEYS)})")
            try:
                new[key] = CONFIG_KEYS[key](value)
            except (TypeError, ValueError) as e:
                raise ValueError(f"config key '{key}': {e}") from None
        with self.lock:
            self.config.update(new)
            if "seed" in new:
                self.rng = random.Random(new["seed"])
            return self.snapshot_config()

    def snapshot_config(self):
        cfg = dict(self.config)
        cfg["script"] = list(cfg["script"])
        return cfg

    def next_conn_id(self):
        with self.lock:
            self._conn_ids += 1
            return self._conn_ids

    def server_now(self):
        with self.lock:
            skew = self.config["clock_skew_ms"]
        return time.time() + skew / 1000.0

    def decide_fault(self):
        """One fault decision per request: the next scripted outcome, else the random rates.

        Three draws are taken for every request whatever the rates, so a seed gives the same
        sequence of decisions when rates change at run time.
        """
        with self.lock:
            cfg = self.config
            r_drop, r_throttle, r_fail, r_code = (self.rng.random() for _ in range(4))
            if cfg["script"]:
                item = cfg["script"].pop(0)
                return {"source": "script", "action": item}, dict(cfg)
            if r_drop < cfg["drop_rate"]:
                return {"source": "drop_rate", "action": "drop"}, dict(cfg)
            if r_throttle < cfg["throttle_rate"]:
                return {"source": "throttle_rate", "action": "429"}, dict(cfg)
            if r_fail < cfg["fail_rate"]:
                codes = cfg["fail_codes"]
                code = codes[min(int(r_code * len(codes)), len(codes) - 1)]
                return {"source": "fail_rate", "action": str(code)}, dict(cfg)
            return {"source": None, "action": "ok"}, dict(cfg)

    def record_failures(self, n, cfg):
        """Indexes of the records of an accepted request that fail one by one (record_fail_rate)."""
        with self.lock:
            draws = [self.rng.random() for _ in range(n)]
        return [i for i, r in enumerate(draws) if r < cfg["record_fail_rate"]]

    def stream_rng(self):
        with self.lock:
            return random.Random(self.rng.random())

    def record(self, rec, accepted):
        """Keep the request record and the accepted events (memory and log files)."""
        with self.lock:
            c = self.counters
            c["requests"] += 1
            st = str(rec["status"])
            self.by_status[st] = self.by_status.get(st, 0) + 1
            self.by_outcome[rec["outcome"]] = self.by_outcome.get(rec["outcome"], 0) + 1
            if rec.get("signature_ok") is False:
                c["signature_failures"] += 1
            if rec.get("validation_error"):
                c["validation_failures"] += 1
            c["max_event_count"] = max(c["max_event_count"], rec.get("event_count") or 0)
            c["max_body_bytes"] = max(c["max_body_bytes"], rec.get("body_bytes") or 0)
            c["max_request_data_bytes"] = max(c["max_request_data_bytes"],
                                              rec.get("request_data_bytes") or 0)
            c["max_record_data_bytes"] = max(c["max_record_data_bytes"],
                                             rec.get("max_record_data_bytes") or 0)
            c["records_failed"] += rec.get("records_failed", 0)
            c["events_rejected"] += rec.get("events_rejected", 0)
            for ev in accepted:
                key = (ev["service"], ev.get("application_id") or ev.get("tracking_id")
                       or ev.get("stream"), ev.get("endpoint_id"), ev.get("event_id"))
                if ev.get("event_id") is not None:
                    if key in self.seen_ids:
                        c["duplicates"] += 1
                    self.seen_ids[key] = self.seen_ids.get(key, 0) + 1
                c["events_accepted"] += 1
                self.events.append(ev)
            self.requests.append(rec)
            if self.log_path and accepted:
                with open(self.log_path, "a") as f:
                    for ev in accepted:
                        f.write(json.dumps(ev, sort_keys=True) + "\n")
            if self.request_log_path:
                lean = {k: v for k, v in rec.items() if k != "body"}
                with open(self.request_log_path, "a") as f:
                    f.write(json.dumps(lean, sort_keys=True) + "\n")
        if self.verbose:
            print(f"fake endpoint: {rec['service']} {rec['path']} -> {rec['status']} "
                  f"{rec['outcome']} events={rec.get('event_count')}", file=sys.stderr, flush=True)

    def stats(self):
        with self.lock:
            out = dict(self.counters)
            out["by_status"] = dict(self.by_status)
            out["by_outcome"] = dict(self.by_outcome)
            out["distinct_events"] = len(self.seen_ids)
            return out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, each answer on a kept-alive
    # connection would wait for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(30)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True
        super().setup()
        self.conn_id = self.server.state.next_conn_id()
        self.conn_requests = 0

    def log_message(self, fmt, *args):  # the request records replace the access log
        pass

    # --- plumbing -----------------------------------------------------------------------------

    def _send(self, status, body, headers=None, content_type="application/json"):
        data = b"" if body is None else (body if isinstance(body, bytes) else
                                          json.dumps(body).encode())
        self.log_request(status)
        self.send_response_only(status)
        self.send_header("Server", "Server")
        self.send_header("Date", http_date(self.server.state.server_now()))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def _read_body(self):
        """The request body (Content-Length or chunked); None if over the hard limit."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise IncompleteBody(f"{total} bytes, then end of stream")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > HARD_BODY_LIMIT:
                    return None
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    raise IncompleteBody(f"{total - size + len(chunk)} bytes, then end of stream")
                chunks.append(chunk)
                self.rfile.readline(16)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0:
            raise ValueError(f"Content-Length {n}")
        if n > HARD_BODY_LIMIT:
            return None
        data = self.rfile.read(n) if n > 0 else b""
        if len(data) < n:
            raise IncompleteBody(f"{len(data)} of {n} bytes, then end of stream")
        return data

    # --- routes -------------------------------------------------------------------------------

    def do_GET(self):
        path = urlsplit(self.path).path
        st = self.server.state
        # Encode under the lock (the lists grow concurrently), send after releasing it.
        # ?since=N skips the first N entries (polling a long run); ?bodies=1 keeps the request
        # bodies in /_fake/requests (left out by default: they make the answer large).
        query = dict(parse_qsl(urlsplit(self.path).query))
        try:
            since = max(0, int(query.get("since", 0)))
        except ValueError:
            return self._send(400, {"message": f"since: not a number: {query['since']}"})
        if path == "/_fake/log":
            with st.lock:
                data = json.dumps(st.events[since:]).encode()
            return self._send(200, data)
        if path == "/_fake/requests":
            bodies = query.get("bodies") in ("1", "true")
            with st.lock:
                recs = st.requests[since:]
                if not bodies:
                    recs = [{k: v for k, v in r.items() if k != "body"} for r in recs]
                data = json.dumps(recs).encode()
            return self._send(200, data)
        if path == "/_fake/stats":
            return self._send(200, st.stats())
        if path == "/_fake/config":
            with st.lock:
                data = json.dumps(st.snapshot_config()).encode()
            return self._send(200, data)
        self._send(404, {"message": f"no route for GET {path}"})

    def do_POST(self):
        self.conn_requests += 1
        path = urlsplit(self.path).path
        st = self.server.state
        try:
            body = self._read_body()
        except ValueError as e:  # a bad Content-Length or chunk size: the stream is lost
            self.close_connection = True
            return self._send(400, {"message": f"malformed request body framing: {e}"},
                              {"x-amzn-ErrorType": "SerializationException"})
        except IncompleteBody as e:
            # Nobody is left to answer; recorded apart from signature and body failures.
            self.close_connection = True
            if not path.startswith("/_fake/"):
                st.record({"time": time.time(), "path": self.path, "service": None,
                           "connection": self.conn_id, "status": 0, "outcome": "incomplete",
                           "error_message": str(e)}, [])
            return
        if path.startswith("/_fake/"):
            return self._control(path, body)
        m = PINPOINT_RE.match(path)
        if m:
            return self._service_request(st.services["pinpoint"], unquote(m.group(1)), body)
        if path == "/events":
            return self._service_request(st.services["personalize-events"], None, body)
        target = self.headers.get("X-Amz-Target")
        if path == "/" and target is not None:
            svc = st.targets.get(target)
            if svc is not None:
                return self._service_request(svc, None, body)
            return self._send(400, {"__type": "UnknownOperationException",
                                    "message": f"Unknown operation {target}"},
                              {"x-amzn-ErrorType": "UnknownOperationException"},
                              content_type="application/x-amz-json-1.1")
        self._send(404, {"message": f"no route for POST {path}"},
                   {"x-amzn-ErrorType": "UnknownOperationException"})

    def _control(self, path, body):
        st = self.server.state
        if path == "/_fake/reset":
            st.reset()
            return self._send(200, {"reset": True})
        if path == "/_fake/config":
            try:
                changes = json.loads(body or b"{}")
                # Also accepted as a query (?throttle_rate=0.5&retry_after=1), handy from C.
                query = urlsplit(self.path).query
                if query and isinstance(changes, dict):
                    for k, v in parse_qsl(query, keep_blank_values=True):
                        changes[k] = None if v in ("", "null", "none") else v
                return self._send(200, st.update_config(changes))
            except ValueError as e:
                return self._send(400, {"message": str(e)})
        self._send(404, {"message": f"no control route {path}"})

    # --- the service ----------------------------------------------------------------------------

    def _service_request(self, svc, app_id, body):
        st = self.server.state
        t0 = time.time()
        request_id = str(uuid.uuid4())
        rec = {
            "time": t0, "server_time": st.server_now(), "path": self.path,
            "service": svc.name, "request_id": request_id,
            "connection": self.conn_id, "request_on_connection": self.conn_requests,
            "body_bytes": None if body is None else len(body),
            "headers": {h: self.headers.get(h) for h in RECORDED_HEADERS if h in self.headers},
            "signature_ok": None, "signature_error": None, "validation_error": None,
            "event_count": None, "events_rejected": 0, "fault": None,
            "body": None if body is None else body.decode("utf-8", "replace"),
        }
        if "x-amz-security-token" in self.headers:
            rec["headers"]["x-amz-security-token"] = "(present)"
        if "authorization" in self.headers:
            m = re.search(r"SignedHeaders=([^,\s]+)", self.headers["authorization"])
            rec["signed_headers"] = m.group(1) if m else None
        fault, cfg = st.decide_fault()
        rec["fault"] = fault
        # The record is stored before the answer goes out, so a client that has its answer
        # always finds its request and events in the log.
        try:
            status, answer, headers, accepted = self._answer(svc, app_id, body, rec, fault, cfg)
        except Exception as e:  # a bug here must still answer and leave a record
            status, answer, headers, accepted = 500, {"message": f"fake endpoint error: {e}"}, \
                {}, []
            rec.update(outcome="server_error", error_message=str(e))
        rec["status"] = status
        rec["duration_ms"] = round((time.time() - t0) * 1000, 3)
        st.record(rec, accepted)
        if fault["action"] in ("drop", "lost"):
            self._drop()
            return
        headers = {"x-amzn-RequestId": request_id, **headers}
        self._send(status, answer, headers,
                   content_type="application/x-amz-json-1.1" if svc.stream else
                   "application/json")

    def _answer(self, svc, app_id, body, rec, fault, cfg):
        """(status, body, headers, accepted events) for a service request; fills in rec."""
        try:
            if body is None:
                self.close_connection = True
                raise ApiError(413, "PayloadTooLargeException",
                               "Request payload size exceeds the limit")
            sig_error = self._check_signature(svc, body, self.server.state)
            rec["signature_ok"] = sig_error is None
            rec["signature_error"] = None if sig_error is None else sig_error.message
            self._stream_sizes = None
            params, events, verr = self._decode(svc, app_id, body)
            rec["event_count"] = len(events) if events is not None else None
            if self._stream_sizes is not None:
                rec["request_data_bytes"], rec["max_record_data_bytes"] = self._stream_sizes
            rec["validation_error"] = verr
            delay = cfg["slow_ms"] / 1000.0 if cfg["slow_ms"] else 0.0
            if fault["action"] == "slow":
                delay = max(delay, 1.0)
            if delay:
                time.sleep(delay)
            action = fault["action"]
            if action == "drop":
                rec["outcome"] = "drop"
                return 0, None, {}, []
            if action not in ("ok", "slow", "lost", "null_body"):
                # a status code as an int (subclasses override _fault_error by code), or a name
                raise self._fault_error(svc, int(action) if action.isdigit() else action, cfg)
            if sig_error is not None:
                raise sig_error
            if not svc.stream and len(body) > cfg["max_body_bytes"]:
                raise ApiError(413, "PayloadTooLargeException",
                               f"Request payload size {len(body)} exceeds the limit of "
                               f"{cfg['max_body_bytes']} bytes")
            if verr:
                raise ApiError(400, svc.bad_request, verr)
            if svc.stream:
                name = params.get(svc.name_key)
                arn = params.get("StreamARN")
                if name is None and arn is not None:  # the stream the ARN names
                    name = arn.rsplit("/", 1)[-1]
                if name in cfg["missing_stream"] or arn in cfg["missing_stream"]:
                    raise svc.missing(name)
            self._check_poison(svc, events, cfg)
            if svc.stream:
                answer, accepted, rejected = self._accept_stream(svc, params, events, cfg)
                rec["records_failed"] = rejected
            else:
                answer, accepted, rejected = self._accept(svc, app_id, params, events, cfg)
                rec["events_rejected"] = rejected
            if action == "lost":
                rec["outcome"] = "lost"
            else:
                rec["outcome"] = "accepted" if not rejected else "partial"
            if action == "null_body":  # accepted, answered with the JSON body null
                answer = b"null"
            return svc.ok_status, answer, {}, accepted
        except ApiError as e:
            rec.update(outcome=self._outcome_name(e), error_type=e.etype, error_message=e.message)
            headers = {"x-amzn-ErrorType": e.etype + (CORAL_SUFFIX if e.coral else "")}
            headers.update(e.headers)
            return e.status, svc.error_body(e.message, rec["request_id"], e.etype), headers, []

    @staticmethod
    def _outcome_name(e):
        if e.etype in ("ProvisionedThroughputExceededException", "LimitExceededException",
                       "ThrottlingException", "TooManyRequestsException"):
            return "throttled"
        if e.etype == "ResourceNotFoundException":
            return "not_found"
        if e.status == 403:
            return "auth_error"
        return {400: "bad_request", 413: "too_large", 429: "throttled"}.get(
            e.status, "server_error" if e.status >= 500 else "error")

    def _drop(self):
        self.close_connection = True
        try:
            # The client sees the connection end with no status line ("empty reply").
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _fault_error(self, svc, code, cfg):
        if isinstance(code, str):  # a scripted error type
            return ApiError(NAMED_ERROR_STATUS.get(code, 400), code, f"Scripted {code}")
        headers = {}
        if code in (429, 503) and cfg["retry_after"] is not None:
            headers["Retry-After"] = f"{cfg['retry_after']:g}"
        if svc.stream:
            return self._stream_fault_error(svc, code, headers)
        if code == 429:
            msg = "Too many requests" if svc.name == "pinpoint" else "Rate exceeded"
            return ApiError(429, svc.throttled, msg, headers)
        if code == 503:
            return ApiError(503, "ServiceUnavailableException", "Service is unavailable", headers)
        if code >= 500:
            etype = "InternalServerErrorException" if svc.name == "pinpoint" else "InternalFailure"
            return ApiError(code, etype, "Internal server error", headers)
        if code == 413:
            return ApiError(413, "PayloadTooLargeException",
                            "Request payload size exceeds the limit")
        if code == 400:
            return ApiError(400, svc.bad_request, "Scripted bad request")
        if code == 403:
            return ApiError(403, "ForbiddenException" if svc.name == "pinpoint" else
                            "AccessDeniedException", "Forbidden")
        if code == 404:
            return ApiError(404, "NotFoundException" if svc.name == "pinpoint" else
                            "ResourceNotFoundException", "Resource not found")
        return ApiError(code, "ScriptedException", f"Scripted status {code}")

    @staticmethod
    def _stream_fault_error(svc, code, headers):
        if code == 429:
            return svc.throttle_error(headers)
        if code == 503:
            return ApiError(503, "ServiceUnavailableException", "Service is unavailable",
                            headers)
        if code >= 500:
            return ApiError(code, "InternalFailure", "Internal service failure", headers)
        if code == 403:
            return ApiError(400, "AccessDeniedException", "User is not authorized to perform: "
                            f"{svc.signing_name}:{svc.operation}")
        if code == 404:
            return svc.missing("scripted")
        if code == 413:
            return ApiError(413, "PayloadTooLargeException", "Request payload size exceeds the "
                            "limit")
        return ApiError(code, svc.bad_request, f"Scripted status {code}")

    # --- signature ----------------------------------------------------------------------------

    def _check_signature(self, svc, body, st):
        """None if the request is correctly signed, else the ApiError the service would send."""
        h = self.headers
        auth = h.get("Authorization")
        if not auth:
            return ApiError(403, "MissingAuthenticationTokenException",
                            "Missing Authentication Token", coral=True)
        m = re.match(r"^AWS4-HMAC-SHA256\s+(.*)$", auth.strip())
        if not m:
            return ApiError(403, "IncompleteSignatureException",
                            f"Unsupported authorization type: '{auth.split()[0]}'", coral=True)
        parts = {}
        for item in m.group(1).split(","):
            k, _, v = item.strip().partition("=")
            parts[k] = v
        for need in ("Credential", "SignedHeaders", "Signature"):
            if not parts.get(need):
                return ApiError(403, "IncompleteSignatureException",
                                f"Authorization header requires '{need}' parameter. "
                                f"Authorization={auth[:80]}", coral=True)
        amz_date = h.get("X-Amz-Date")
        if not amz_date:
            return ApiError(403, "IncompleteSignatureException",
                            "Authorization header requires existence of either a 'X-Amz-Date' "
                            "or a 'Date' header.", coral=True)
        try:
            signed_at = datetime.datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            return ApiError(403, "IncompleteSignatureException",
                            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.",
                            coral=True)
        now = st.server_now()
        if signed_at < now - SKEW_LIMIT_S:
            return ApiError(403, "InvalidSignatureException",
                            f"Signature expired: {amz_date} is now earlier than "
                            f"{iso_basic(now - SKEW_LIMIT_S)} ({iso_basic(now)} - 5 min.)",
                            coral=True)
        if signed_at > now + SKEW_LIMIT_S:
            return ApiError(403, "InvalidSignatureException",
                            f"Signature not yet current: {amz_date} is still later than "
                            f"{iso_basic(now + SKEW_LIMIT_S)} ({iso_basic(now)} + 5 min.)",
                            coral=True)
        scope = parts["Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            return ApiError(403, "IncompleteSignatureException",
                            f"Credential must have exactly 5 slash-delimited elements, "
                            f"e.g. keyid/date/region/service/term, got '{parts['Credential']}'",
                            coral=True)
        access_key, date, region, service = scope[:4]
        if access_key != st.credentials.access_key:
            return ApiError(403, "UnrecognizedClientException",
                            "The security token included in the request is invalid.", coral=True)
        if date != amz_date[:8]:
            return ApiError(403, "InvalidSignatureException",
                            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                            f"version of date from HTTP: '{date}' != '{amz_date[:8]}', from "
                            f"'{amz_date}'.", coral=True)
        if region != st.region:
            return ApiError(403, "InvalidSignatureException",
                            f"Credential should be scoped to a valid region, not '{region}'. ",
                            coral=True)
        if service != svc.signing_name:
            return ApiError(403, "InvalidSignatureException",
                            f"Credential should be scoped to correct service: "
                            f"'{svc.signing_name}'. ", coral=True)
        signed = parts["SignedHeaders"].split(";")
        if "host" not in signed:
            return ApiError(403, "InvalidSignatureException",
                            "'Host' must be a 'SignedHeader' in the AWS Authorization.", coral=True)
        token = h.get("X-Amz-Security-Token")
        if st.credentials.token:
            if token != st.credentials.token:
                return ApiError(403, "UnrecognizedClientException",
                                "The security token included in the request is invalid.",
                                coral=True)
            if "x-amz-security-token" not in signed:
                return ApiError(403, "InvalidSignatureException",
                                "'X-Amz-Security-Token' must be a 'SignedHeader' when a session "
                                "token is used.", coral=True)
        elif token is not None:
            return ApiError(403, "UnrecognizedClientException",
                            "The security token included in the request is invalid.", coral=True)
        declared = h.get("X-Amz-Content-SHA256")
        if declared is not None and declared != hashlib.sha256(body).hexdigest():
            return ApiError(400, "InvalidSignatureException",
                            "The provided 'x-amz-content-sha256' header does not match what was "
                            "computed.", coral=True)
        request = AWSRequest(method=self.command, url=f"http://{h.get('Host', '')}{self.path}",
                             data=body)
        for name in signed:
            for value in self.headers.get_all(name) or []:
                request.headers[name] = value
        request.context["timestamp"] = amz_date
        signer = ServerSigner(st.credentials, svc.signing_name, st.region, signed, self.headers)
        expected, canonical, sts = signer.expected_signature(request)
        if expected != parts["Signature"]:
            return ApiError(403, "InvalidSignatureException",
                            "The request signature we calculated does not match the signature "
                            "you provided. Check your AWS Secret Access Key and signing method. "
                            "Consult the service documentation for details.\n\n"
                            f"The Canonical String for this request should have been\n'{canonical}'"
                            f"\n\nThe String-to-Sign should have been\n'{sts}'\n", coral=True)
        return None

    # --- body ---------------------------------------------------------------------------------

    def _decode(self, svc, app_id, body):
        """(params, [(key, event dict, endpoint id, endpoint)], error message or None)."""
        enc = (self.headers.get("Content-Encoding") or "identity").lower()
        if enc != "identity":
            return None, None, f"Unsupported Content-Encoding '{enc}'"
        try:
            doc = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, ValueError) as e:
            return None, None, f"Could not parse request body into json: {e}"
        if not isinstance(doc, dict):
            return None, None, "Request body must be a JSON object"
        st = self.server.state
        if svc.stream:
            return self._decode_stream(svc, doc, st)
        if svc.name == "pinpoint":
            params = {"ApplicationId": app_id, "EventsRequest": doc}
        else:
            params = doc
        converted, errors = st.validator.validate(params, svc.input_shape)
        events = self._events_of(svc, params) if not errors else None
        if events is not None and svc.name == "pinpoint" and len(events) > PINPOINT_MAX_EVENTS:
            errors.append(f"Too many events in one request: {len(events)}, the limit is "
                          f"{PINPOINT_MAX_EVENTS}")
        if events is not None and svc.name == "personalize-events":
            errors.extend(self._personalize_properties(params))
        if events is None:
            events = self._count_only(svc, params)
        return params, events, "; ".join(errors) if errors else None

    def _decode_stream(self, svc, doc, st):
        """PutRecords / PutRecordBatch: (params, [(event id, data JSON, partition key, data)],
        error message or None). The blobs are decoded (strict base64) before validation."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-amz-json-1.1":
            return None, None, (f"Content-Type must be application/x-amz-json-1.1, got "
                                f"'{ctype}'")
        errors, params = [], dict(doc)
        members = svc.input_shape.members
        if svc.name == "kinesis":
            arn = params.get("StreamARN")
            if arn is not None:
                m = KINESIS_ARN_RE.match(arn) if isinstance(arn, str) else None
                if not m:
                    errors.append(f"Invalid StreamARN '{arn}'")
                elif params.get("StreamName") not in (None, m.group(1)):
                    errors.append("StreamName and StreamARN name different streams")
                elif "StreamARN" not in members:  # an older model: validate as the name
                    params["StreamName"] = m.group(1)
            elif "StreamName" not in params:
                errors.append("Either StreamName or StreamARN must be given")
        name = params.get(svc.name_key)
        pattern = members[svc.name_key].metadata.get("pattern")
        if isinstance(name, str) and pattern and not re.fullmatch(pattern, name):
            errors.append(f"Invalid {svc.name_key} '{name}': must match {pattern}")
        records = params.get(svc.records_key)
        decoded = []
        if isinstance(records, list):
            params[svc.records_key] = decoded
            for i, rec in enumerate(records):
                if not isinstance(rec, dict) or not isinstance(rec.get("Data"), str):
                    decoded.append(rec)
                    continue
                try:
                    data = base64.b64decode(rec["Data"], validate=True)
                except (binascii.Error, ValueError):
                    errors.append(f"{svc.records_key}[{i}].Data is not valid base64")
                    data = b""
                decoded.append({**rec, "Data": data})
        vparams = params
        if "StreamARN" in params and "StreamARN" not in members:
            vparams = {k: v for k, v in params.items() if k != "StreamARN"}
        _, verrors = st.validator.validate(vparams, svc.input_shape)
        errors.extend(verrors)
        if errors:
            n = len(records) if isinstance(records, list) else None
            return params, ([None] * n if n is not None else None), "; ".join(errors)
        cfg = st.snapshot_config()
        max_records = min(STREAM_MAX_RECORDS, cfg["max_records"] or STREAM_MAX_RECORDS)
        max_request = min(svc.max_request_bytes, cfg["max_request_bytes"] or
                          svc.max_request_bytes)
        max_record = min(svc.max_record_bytes, cfg["max_record_bytes"] or svc.max_record_bytes)
        if len(decoded) > max_records:
            errors.append(f"Too many records in one request: {len(decoded)}, the limit is "
                          f"{max_records}")
        events, total = [], 0
        for i, rec in enumerate(decoded):
            cost = svc.record_cost(rec, rec["Data"])
            total += cost
            if cost > max_record:
                errors.append(f"{svc.records_key}[{i}]: {cost} bytes, over the record limit of "
                              f"{max_record}")
            try:
                data_doc = json.loads(rec["Data"].decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                data_doc = None
            event_id = None
            if isinstance(data_doc, dict):
                event_id = data_doc.get("event_id") or data_doc.get("eventId")
            events.append((event_id, data_doc, rec.get("PartitionKey"), rec["Data"]))
        if total > max_request:
            errors.append(f"Request data of {total} bytes is over the limit of {max_request}")
        self._stream_sizes = (total, max((svc.record_cost(r, r["Data"]) for r in decoded),
                                         default=0))
        return params, events, "; ".join(errors) if errors else None

    def _accept_stream(self, svc, params, events, cfg):
        """The PutRecords / PutRecordBatch answer, with per-record failures from
        record_fail_rate; only the records that got a sequence number / id are logged."""
        st = self.server.state
        failing = set(st.record_failures(len(events), cfg))
        codes = cfg["record_fail_codes"] or [svc.record_throttled]
        rng = st.stream_rng()
        now = time.time()
        entries, accepted = [], []
        for i, (event_id, data_doc, key, data) in enumerate(events):
            if i in failing:
                code = codes[i % len(codes)]
                entries.append({"ErrorCode": code, "ErrorMessage": f"Record {i} failed: {code}"})
                continue
            entry = svc.success_entry(rng, i)
            entries.append(entry)
            ev = {"service": svc.name, "stream": params.get(svc.name_key),
                  "stream_arn": params.get("StreamARN"), "partition_key": key,
                  "event_id": event_id, "event": data_doc, "endpoint_id": None,
                  "newline_terminated": data.endswith(b"\n"), "data_bytes": len(data),
                  "time": now, **entry}
            if data_doc is None:
                ev["data_base64"] = base64.b64encode(data).decode()
            elif isinstance(data_doc, dict):
                ev["endpoint_id"] = (data_doc.get("client") or {}).get("client_id") \
                    if isinstance(data_doc.get("client"), dict) else None
                ev["user_id"] = data_doc.get("userId")
                ev["session_id"] = data_doc.get("sessionId") or (
                    (data_doc.get("session") or {}).get("session_id")
                    if isinstance(data_doc.get("session"), dict) else None)
            accepted.append(ev)
        return svc.answer(entries, len(failing)), accepted, len(failing)

    @staticmethod
    def _events_of(svc, params):
        if svc.name == "pinpoint":
            out = []
            for endpoint_id, item in params["EventsRequest"]["BatchItem"].items():
                for event_id, event in item["Events"].items():
                    out.append((event_id, event, endpoint_id, item["Endpoint"]))
            return out
        return [(ev.get("eventId"), ev, None, None) for ev in params["eventList"]]

    @staticmethod
    def _count_only(svc, params):
        """Best-effort event list of an invalid body, so the request record shows its size."""
        try:
            if svc.name == "pinpoint":
                return [None for item in params["EventsRequest"]["BatchItem"].values()
                        for _ in item["Events"]]
            return [None for _ in params["eventList"]]
        except (KeyError, TypeError, AttributeError):
            return None

    @staticmethod
    def _personalize_properties(params):
        errors = []
        for i, ev in enumerate(params["eventList"]):
            props = ev.get("properties")
            if props is None:
                continue
            try:
                ok = isinstance(json.loads(props), dict)
            except ValueError:
                ok = False
            if not ok:
                errors.append(f"eventList[{i}].properties must be a JSON object encoded as a "
                              "string")
        return errors

    @staticmethod
    def _attributes(svc, event):
        if svc.stream:  # the record's JSON: Pinpoint's stream shape or Personalize's
            if not isinstance(event, dict):
                return set()
            keys = set()
            for name in ("attributes", "metrics"):
                if isinstance(event.get(name), dict):
                    keys |= set(event[name])
            props = event.get("properties")
            if isinstance(props, str):
                try:
                    props = json.loads(props)
                except ValueError:
                    props = None
            if isinstance(props, dict):
                keys |= set(props)
            return keys
        if svc.name == "pinpoint":
            return set((event.get("Attributes") or {}).keys()) | set(
                (event.get("Metrics") or {}).keys())
        try:
            props = json.loads(event.get("properties") or "{}")
            return set(props.keys()) if isinstance(props, dict) else set()
        except ValueError:
            return set()

    def _check_poison(self, svc, events, cfg):
        poison = set(cfg["poison_attribute"])
        if not poison:
            return
        for event_id, event, _, _ in events:
            hit = poison & self._attributes(svc, event)
            if hit:
                raise ApiError(400, svc.bad_request,
                               f"Event '{event_id}' has attribute '{sorted(hit)[0]}', which this "
                               "endpoint does not accept")

    @staticmethod
    def _pinpoint_event_problem(event):
        """Why Pinpoint would refuse this event on its own (the model types dates as strings)."""
        stamps = [("Timestamp", event.get("Timestamp"))]
        session = event.get("Session") or {}
        for name in ("StartTimestamp", "StopTimestamp"):
            if name in session:
                stamps.append((f"Session.{name}", session[name]))
        for name, value in stamps:
            if not valid_iso8601(value):
                return f"{name} '{value}' is not an ISO 8601 date-time"
        return None

    def _accept(self, svc, app_id, params, events, cfg):
        """The success answer, the accepted log records and the count of rejected events."""
        rejected_types = set(cfg["reject_event_type"])
        now = time.time()
        accepted = []
        if svc.name == "personalize-events":
            for i, (event_id, event, _, _) in enumerate(events):
                if event["eventType"] in rejected_types:
                    raise ApiError(400, svc.bad_request,
                                   f"eventList[{i}]: event type '{event['eventType']}' is "
                                   "rejected by this endpoint")
            for event_id, event, _, _ in events:
                accepted.append({"service": svc.name, "tracking_id": params["trackingId"],
                                 "endpoint_id": None, "user_id": params.get("userId"),
                                 "session_id": params["sessionId"], "event_id": event_id,
                                 "event": event, "endpoint": None, "time": now})
            return None, accepted, 0
        results, rejected = {}, 0
        for endpoint_id, item in params["EventsRequest"]["BatchItem"].items():
            endpoint = item["Endpoint"]
            per_event = {}
            for event_id, event in item["Events"].items():
                problem = self._pinpoint_event_problem(event)
                if problem is None and event["EventType"] in rejected_types:
                    problem = f"Event type '{event['EventType']}' is rejected by this endpoint"
                if problem is not None:
                    rejected += 1
                    per_event[event_id] = {"Message": problem, "StatusCode": 400}
                    continue
                per_event[event_id] = {"Message": "Accepted", "StatusCode": 202}
                accepted.append({"service": svc.name, "application_id": app_id,
                                 "endpoint_id": endpoint_id,
                                 "user_id": (endpoint.get("User") or {}).get("UserId"),
                                 "session_id": (event.get("Session") or {}).get("Id"),
                                 "event_id": event_id, "event": event, "endpoint": endpoint,
                                 "time": now})
            results[endpoint_id] = {
                "EndpointItemResponse": {"Message": "Accepted", "StatusCode": 202},
                "EventsItemResponse": per_event}
        return {"Results": results}, accepted, rejected


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    # Many clients connect at once in the load and kill tests; the default backlog of 5 would
    # turn the excess into SYN retries a second later.
    request_queue_size = 128

    parent_pid = None  # set in main() unless --keep-running

    def service_actions(self):
        """Exit with the program that started us: a test killed before it could stop its
        endpoint must not leave the endpoint behind (the kill-loop tests do this on purpose)."""
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            raise SystemExit(0)

    def handle_error(self, request, client_address):
        """Clients that vanish mid-request (killed, timed out) are normal here: no traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Local fake of Pinpoint and Personalize Events "
                                            "PutEvents, Kinesis PutRecords and Firehose "
                                            "PutRecordBatch (127.0.0.1 only).")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    p.add_argument("--port-file", help="write '<port> http|https' here once listening")
    p.add_argument("--log", help="append each accepted event as a JSON line to this file")
    p.add_argument("--request-log", help="append each request record as a JSON line here")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve HTTPS")
    p.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    p.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    p.add_argument("--session-token", default=None)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--throttle-rate", type=float, default=0.0, help="share of 429 answers")
    p.add_argument("--retry-after", type=float, default=None,
                   help="seconds sent as Retry-After on 429 and 503")
    p.add_argument("--fail-rate", type=float, default=0.0, help="share of 5xx answers")
    p.add_argument("--fail-codes", default="500,503", help="5xx codes used by --fail-rate")
    p.add_argument("--drop-rate", type=float, default=0.0,
                   help="share of requests whose connection is closed without an answer")
    p.add_argument("--slow-ms", type=int, default=0, help="delay before every answer")
    p.add_argument("--reject-event-type", action="append", default=[],
                   help="events of this type get a per-event 400 (repeatable)")
    p.add_argument("--poison-attribute", action="append", default=[],
                   help="a request with an event carrying this attribute gets a 400 (repeatable)")
    p.add_argument("--clock-skew-ms", type=int, default=0,
                   help="the server's clock is real time plus this")
    p.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024,
                   help="larger bodies get 413 (default 4 MiB, the services' limit)")
    p.add_argument("--script", default="",
                   help="outcomes of the next requests, e.g. 429,503,drop,ok (then normal); an "
                        "error type (LimitExceededException, ExpiredTokenException...) is "
                        "answered as such")
    p.add_argument("--record-fail-rate", type=float, default=0.0,
                   help="Kinesis/Firehose: share of the records of an accepted request that "
                        "fail one by one")
    p.add_argument("--record-fail-codes", default="",
                   help="Kinesis/Firehose: ErrorCode of the failed records (default: "
                        "ProvisionedThroughputExceededException / ServiceUnavailableException)")
    p.add_argument("--missing-stream", action="append", default=[],
                   help="Kinesis/Firehose: this stream name or ARN does not exist (repeatable)")
    p.add_argument("--max-records", type=int, default=None,
                   help="Kinesis/Firehose: records per request (default and most: 500)")
    p.add_argument("--max-request-bytes", type=int, default=None,
                   help="Kinesis/Firehose: decoded data per request (default and most: "
                        "5 MiB / 4 MiB)")
    p.add_argument("--max-record-bytes", type=int, default=None,
                   help="Kinesis/Firehose: decoded data per record, Kinesis counting the "
                        "partition key (default and most: 1 MiB / 1,000 KiB)")
    p.add_argument("--seed", type=int, default=None, help="seed of the random fault rates")
    p.add_argument("--verbose", action="store_true", help="one line per request on stderr")
    p.add_argument("--keep-running", action="store_true",
                   help="keep running when the process that started it exits")
    args = p.parse_args(argv)
    for key, coerce in CONFIG_KEYS.items():
        try:
            coerce(getattr(args, key))
        except (TypeError, ValueError) as e:
            p.error(f"--{key.replace('_', '-')}: {e}")
    return args


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    state = State(args)
    server = Server(("127.0.0.1", args.port), Handler)
    server.state = state
    if not args.keep_running:
        server.parent_pid = os.getppid()
    scheme = "http"
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        # The handshake runs in the connection's thread (Handler.setup), not in accept().
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
        scheme = "https"
    port = server.server_address[1]

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port} {scheme}\n")
        os.replace(tmp, args.port_file)  # readers never see a half-written file
    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        server.server_close()
        # Held to the end: a request being recorded finishes its log lines, no new one starts.
        state.lock.acquire(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
