#!/usr/bin/env python3
"""The AWS CLI's own code (Debian's awscli, AWS CLI v2) as the reference for evrec's
AWS CLI-compatible parsing and output: shorthand syntax, JSON, text, table and YAML output.

Reads one JSON object per line: {"kind": "...", "input": "<text>"} where input is shorthand
text (kind "shorthand"), a blob parameter's text (kind "blob": what the request carries with
--cli-binary-format base64, base64.b64decode then b64encode, or the AWS CLI's error) or JSON text
(every other kind, read with json.loads as the AWS CLI reads parameters and answers). Writes one JSON line per case: {"ok": true, "text": "..."} with
the AWS CLI's output, or {"ok": false, "error": "..."} with its error message.
"""
import argparse
import base64
import io
import json
import sys

from awscli.customizations.binaryformat import Base64DecodeVisitor, InvalidBase64Error
from awscli.formatter import (JSONFormatter, StreamedYAMLFormatter, TableFormatter,
                              TextFormatter, YAMLFormatter)
from awscli.shorthand import ShorthandParseError, ShorthandParser

FORMATTERS = {"json": JSONFormatter, "text": TextFormatter, "table": TableFormatter,
              "yaml": YAMLFormatter, "yaml-stream": StreamedYAMLFormatter}


class Select:
    """A --query that yields the value under test, so any value (not only an answer's object)
    goes through the formatter's whole path."""

    def search(self, data):
        return data["value"]


def run(case):
    kind, src = case["kind"], case["input"]
    if kind == "shorthand":
        try:
            value = ShorthandParser().parse(src)
        except ShorthandParseError as e:
            return {"ok": False, "error": str(e)}
        return {"ok": True, "text": json.dumps(value, ensure_ascii=False)}
    if kind == "blob":
        class Blob:  # the smallest model a ModelVisitor walks: one blob member
            type_name = "structure"
            members = {"Data": type("S", (), {"type_name": "blob"})()}
        params = {"Data": src}
        try:
            Base64DecodeVisitor().visit(params, Blob())
        except (InvalidBase64Error, ValueError) as e:
            return {"ok": False, "error": str(e)}
        return {"ok": True, "text": base64.b64encode(params["Data"]).decode()}
    value = json.loads(src)  # botocore hands the formatters plain (ordered) dicts
    out = io.StringIO()
    args = argparse.Namespace(query=Select(), color="off")
    try:
        FORMATTERS[kind](args)("PutEvents", {"value": value}, out)
    except ValueError as e:  # the table formatter's row-width check
        return {"ok": False, "error": str(e)}
    return {"ok": True, "text": out.getvalue()}


for line in sys.stdin:
    if line.strip():
        print(json.dumps(run(json.loads(line))), flush=True)
