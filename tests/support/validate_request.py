#!/usr/bin/env python3
"""Validate a request body against botocore's service model.

    validate_request.py pinpoint|personalize [application_id] < body.json
    validate_request.py kinesis|firehose < body.json

The body is read from stdin as the JSON sent on the wire. For Pinpoint the body is the
EventsRequest payload and is checked as {"ApplicationId": ..., "EventsRequest": body}; for
Personalize it is the whole PutEvents input. Checked: botocore's ParamValidator, then the
constraints it leaves to the service (max lengths and list sizes, enums, patterns; shared with
validate_shape.py), and duplicate keys in any object (a JSON map with two equal keys loses one). Exit 0 when valid, else 1 with the
reason on stdout.

Kinesis PutRecords and Firehose PutRecordBatch: each Data is decoded as strict base64 first;
the services' size limits (Kinesis 1 MiB a record with its partition key and 5 MiB a request,
Firehose 1,000 KiB and 4 MiB) are checked, and each record's data must be one JSON object
(Firehose: followed by exactly one newline) with the members Pinpoint's event streams wrote
(Pinpoint-shaped) or eventType/sentAt/sessionId (Personalize-shaped).
"""
import base64
import binascii
import json
import re
import os
import sys

import botocore.session
from botocore.validate import ParamValidator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from validate_shape import service_side_errors  # noqa: E402

SERVICES = {"pinpoint": "pinpoint", "personalize": "personalize-events", "kinesis": "kinesis",
            "firehose": "firehose"}
STREAMS = {"kinesis": ("PutRecords", 1024 * 1024, 5 * 1024 * 1024),
           "firehose": ("PutRecordBatch", 1000 * 1024, 4 * 1024 * 1024)}
KINESIS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/([a-zA-Z0-9_.-]+)$")


def record_problems(svc, i, data):
    """Why one record's data is not a stream record evrec promises, or []."""
    if svc == "firehose":
        if not data.endswith(b"\n") or data.endswith(b"\n\n"):
            return [f"Records[{i}]: Firehose data must end with one newline"]
        data = data[:-1]
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        return [f"Records[{i}]: data is not one JSON object: {e}"]
    if not isinstance(doc, dict):
        return [f"Records[{i}]: data is not a JSON object"]
    if "eventType" in doc:  # Personalize-shaped
        missing = [k for k in ("eventType", "sentAt", "sessionId") if k not in doc]
        return [f"Records[{i}]: Personalize-shaped record lacks {missing}"] if missing else []
    out = []
    for key, kind in (("event_type", str), ("event_timestamp", int), ("arrival_timestamp", int),
                      ("event_version", str), ("event_id", str), ("application", dict),
                      ("client", dict), ("attributes", dict), ("metrics", dict)):
        if not isinstance(doc.get(key), kind) or isinstance(doc.get(key), bool):
            out.append(f"Records[{i}].{key}: missing or not a {kind.__name__}")
    if isinstance(doc.get("client"), dict) and not isinstance(doc["client"].get("client_id"), str):
        out.append(f"Records[{i}].client.client_id: missing")
    for name in ("attributes",):
        for k, v in (doc.get(name) or {}).items():
            if not isinstance(v, str):
                out.append(f"Records[{i}].{name}.{k}: not a string")
    for k, v in (doc.get("metrics") or {}).items():
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            out.append(f"Records[{i}].metrics.{k}: not a number")
    return out


def check_stream(svc, body, model):
    op, max_record, max_request = STREAMS[svc]
    shape = model.operation_model(op).input_shape
    params = dict(body)
    problems = []
    if svc == "kinesis" and "StreamARN" in params:
        m = KINESIS_ARN_RE.match(str(params["StreamARN"]))
        if not m:
            problems.append("StreamARN is not a Kinesis stream ARN")
        elif "StreamARN" not in shape.members:  # an older model: check it as the name
            params["StreamName"] = m.group(1)
            del params["StreamARN"]
    records = params.get("Records")
    datas = []
    if isinstance(records, list):
        params["Records"] = []
        for i, rec in enumerate(records):
            if isinstance(rec, dict) and isinstance(rec.get("Data"), str):
                try:
                    data = base64.b64decode(rec["Data"], validate=True)
                except (binascii.Error, ValueError):
                    problems.append(f"Records[{i}].Data is not base64")
                    data = b""
                datas.append(data)
                rec = {**rec, "Data": data}
            params["Records"].append(rec)
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        problems.insert(0, report.generate_report())
    problems.extend(service_side_errors(params, shape, op + "Input"))
    total = 0
    for i, (rec, data) in enumerate(zip(params.get("Records") or [], datas)):
        cost = len(data) + len(str(rec.get("PartitionKey", "")).encode())
        total += cost
        if cost > max_record:
            problems.append(f"Records[{i}]: {cost} bytes, over {max_record}")
        problems.extend(record_problems(svc, i, data))
    if total > max_request:
        problems.append(f"request: {total} bytes of records, over {max_request}")
    return problems


def no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError("duplicate key %r" % key)
        seen[key] = value
    return seen


def main(argv):
    if len(argv) < 2 or argv[1] not in SERVICES:
        print("usage: validate_request.py pinpoint|personalize|kinesis|firehose [application_id]")
        return 2
    raw = sys.stdin.buffer.read()
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        print("body is not valid JSON: %s" % e)
        return 1
    if not isinstance(body, dict):
        print("body is not a JSON object")
        return 1
    model = botocore.session.get_session().get_service_model(SERVICES[argv[1]])
    if argv[1] in STREAMS:
        problems = check_stream(argv[1], body, model)
        if problems:
            print("\n".join(problems))
            return 1
        return 0
    shape = model.operation_model("PutEvents").input_shape
    if argv[1] == "pinpoint":
        params = {"ApplicationId": argv[2] if len(argv) > 2 else "app", "EventsRequest": body}
    else:
        params = body
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        print(report.generate_report())
        return 1
    extra = list(service_side_errors(params, shape, "PutEventsRequest"))
    if extra:
        print("\n".join(extra))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
