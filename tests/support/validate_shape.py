#!/usr/bin/env python3
"""Validate one JSON document against a shape of an AWS service model, independently of evrec.

Usage: validate_shape.py <service> <ShapeName>   (the JSON document on standard input)

<service> is a botocore service name (pinpoint, personalize-events). The document is checked
with botocore's own ParamValidator against the named shape of the model botocore ships (types,
required members, unknown members, minimum lengths), and then against the model's constraints
that ParamValidator leaves to the service: maximum lengths and list sizes, enums and patterns.
Exit status 0 if it is valid, 1 with the report on stderr if it is not, 2 on a usage or input
error.
"""
import json
import re
import sys

import botocore.session
from botocore.validate import ParamValidator


def service_side_errors(value, shape, path):
    """Yield the violations of max / enum / pattern, which ParamValidator does not check."""
    t = shape.type_name
    meta = shape.metadata
    if t == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            yield "%s: length %d > max %d" % (path, len(value), meta["max"])
        if shape.enum and value not in shape.enum:
            yield "%s: %r is not one of %s" % (path, value, shape.enum)
        if "pattern" in meta and not re.search(meta["pattern"], value):
            yield "%s: %r does not match %s" % (path, value, meta["pattern"])
    elif t == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            yield "%s: %d items > max %d" % (path, len(value), meta["max"])
        for i, item in enumerate(value):
            yield from service_side_errors(item, shape.member, "%s[%d]" % (path, i))
    elif t == "map" and isinstance(value, dict):
        for k, v in value.items():
            yield from service_side_errors(k, shape.key, "%s key %r" % (path, k))
            yield from service_side_errors(v, shape.value, "%s.%s" % (path, k))
    elif t == "structure" and isinstance(value, dict):
        for k, v in value.items():
            if k in shape.members:
                yield from service_side_errors(v, shape.members[k], "%s.%s" % (path, k))


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    service, shape_name = argv[1], argv[2]
    try:
        doc = json.load(sys.stdin)
    except ValueError as e:
        print("input is not JSON: %s" % e, file=sys.stderr)
        return 2
    model = botocore.session.get_session().get_service_model(service)
    try:
        shape = model.shape_for(shape_name)
    except Exception as e:  # botocore raises NoShapeFoundError
        print("no shape %s in %s: %s" % (shape_name, service, e), file=sys.stderr)
        return 2
    report = ParamValidator().validate(doc, shape)
    if report.has_errors():
        print(report.generate_report(), file=sys.stderr)
        return 1
    extra = list(service_side_errors(doc, shape, shape_name))
    if extra:
        print("\n".join(extra), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
