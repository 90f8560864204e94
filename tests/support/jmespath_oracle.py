#!/usr/bin/env python3
"""Evaluate JMESPath cases with the Python reference implementation (the one the AWS CLI uses).

Reads one JSON object per line: {"expr": "...", "data": <json>}; writes one line per case:
{"ok": true, "result": <json>} or {"ok": false, "error": "<exception class>"}.
"""
import json
import sys

import jmespath

for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    case = json.loads(line)
    try:
        out = {"ok": True, "result": jmespath.search(case["expr"], case["data"])}
    except Exception as exc:  # every JMESPath error is a failure to compare, whatever its class
        out = {"ok": False, "error": type(exc).__name__}
    try:
        print(json.dumps(out))
    except TypeError:  # e.g. a bare expression reference: not a JSON value
        print(json.dumps({"ok": False, "error": "TypeError"}))
