#!/usr/bin/env python3
"""Validate a PutEvents request body against botocore's service model.

    validate_request.py pinpoint|personalize [application_id] < body.json

The body is read from stdin as the JSON sent on the wire. For Pinpoint the body is the
EventsRequest payload and is checked as {"ApplicationId": ..., "EventsRequest": body}; for
Personalize it is the whole PutEvents input. Checked: botocore's ParamValidator, then the
constraints it leaves to the service (max lengths and list sizes, enums, patterns; shared with
validate_shape.py), and duplicate keys in any object (a JSON map with two equal keys loses one). Exit 0 when valid, else 1 with the
reason on stdout.
"""
import json
import os
import sys

import botocore.session
from botocore.validate import ParamValidator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from validate_shape import service_side_errors  # noqa: E402

SERVICES = {"pinpoint": "pinpoint", "personalize": "personalize-events"}


def no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError("duplicate key %r" % key)
        seen[key] = value
    return seen


def main(argv):
    if len(argv) < 2 or argv[1] not in SERVICES:
        print("usage: validate_request.py pinpoint|personalize [application_id]")
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
