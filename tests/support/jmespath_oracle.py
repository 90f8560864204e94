#!/usr/bin/env python3
"""Evaluate JMESPath cases with the Python reference implementation (the one the AWS CLI uses).

Reads one JSON object per line: {"expr": "...", "data": <json>}; writes one line per case:
{"ok": true, "result": <json>, "numbers": [...]} or {"ok": false, "error": "<exception class>"}.
"numbers" has each number of the result in document order as Python holds it: "i:<digits>" for
an int (exact, whatever its size), "f" for a float, which the AWS CLI prints with its ".0".
"""
import json
import sys

import jmespath


def numbers(v, out):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        pass
    elif isinstance(v, int):
        out.append("i:%d" % v)
    elif isinstance(v, float):
        out.append("f")
    elif isinstance(v, dict):
        for x in v.values():
            numbers(x, out)
    elif isinstance(v, list):
        for x in v:
            numbers(x, out)
    return out


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    case = json.loads(line)
    try:
        result = jmespath.search(case["expr"], case["data"])
        out = {"ok": True, "result": result, "numbers": numbers(result, [])}
    except Exception as exc:  # every JMESPath error is a failure to compare, whatever its class
        out = {"ok": False, "error": type(exc).__name__}
    try:
        print(json.dumps(out))
    except TypeError:  # e.g. a bare expression reference: not a JSON value
        print(json.dumps({"ok": False, "error": "TypeError"}))
