#!/usr/bin/env python3
"""Generate tools/evrec/model_gen.c: the shapes of the operations the CLI's AWS commands run
(Pinpoint and Personalize Events PutEvents, Kinesis PutRecords, Firehose PutRecordBatch).

Reads botocore's service models (the copy the AWS CLI bundles if present, else python3-botocore)
and writes C tables of every shape reachable from each operation's input and output, so the CLI
can validate, serialise and parse exactly as the AWS CLI does without Python at build time.

    make regen      (python3 tools/gen_model.py > tools/evrec/model_gen.c)

The first line of the output names the botocore (and AWS CLI) version the models came from.
"""
import glob
import json
import os
import re
import sys
import xml.dom.minidom
import xml.parsers.expat

SEARCH = [
    "/usr/lib/python3/dist-packages/awscli/botocore/data",
    "/usr/lib/python3/dist-packages/botocore/data",
]
# (model directory, the AWS CLI's command name, operation)
SERVICES = [("pinpoint", "pinpoint", "PutEvents"),
            ("personalize-events", "personalize-events", "PutEvents"),
            ("kinesis", "kinesis", "PutRecords"),
            ("firehose", "firehose", "PutRecordBatch")]
TYPES = {
    "structure": "MT_STRUCTURE", "list": "MT_LIST", "map": "MT_MAP", "string": "MT_STRING",
    "integer": "MT_INTEGER", "long": "MT_LONG", "double": "MT_DOUBLE", "float": "MT_FLOAT",
    "boolean": "MT_BOOLEAN", "timestamp": "MT_TIMESTAMP", "blob": "MT_BLOB",
}


def xform_name(name):
    """botocore.xform_name with '-' (ApplicationId -> application-id)."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", s)
    return s.lower()


def strip_xml(doc):
    """awscli.customizations.utils._strip_xml_from_documentation"""
    try:
        dom = xml.dom.minidom.parseString("<doc>%s</doc>" % doc)
    except xml.parsers.expat.ExpatError:
        return doc
    out = []

    def walk(node):
        for child in node.childNodes:
            if child.nodeType == node.TEXT_NODE:
                out.append(child.data)
            else:
                walk(child)
    walk(dom)
    return "".join(out)


def yaml_comment(model, member, shape_name, required):
    """The end-of-line comment of a member in the AWS CLI's yaml-input skeleton."""
    doc = member.get("documentation", model["shapes"][shape_name].get("documentation", ""))
    overview = re.split(r"[.:]+", strip_xml(doc), maxsplit=1)[0]
    if overview:
        overview += "."
    overview = overview.replace("\n", " ").replace("\u2028", " ")
    parts = (["[REQUIRED]"] if required else []) + [overview]
    enum = model["shapes"][shape_name].get("enum")
    if enum:
        parts.append("Valid values are: %s." % ", ".join(enum))
    comment = " ".join(parts)
    return comment if comment and not comment.isspace() else None


def package_version(base):
    """The version of the botocore whose data directory is BASE, and of the AWS CLI bundling it."""
    def version_of(init):
        try:
            m = re.search(r"^__version__ = ['\"]([^'\"]+)['\"]", open(init).read(), re.M)
        except OSError:
            return None
        return m.group(1) if m else None
    pkg = os.path.dirname(base)
    text = "botocore %s" % (version_of(os.path.join(pkg, "__init__.py")) or "(unknown version)")
    if os.path.basename(os.path.dirname(pkg)) == "awscli":
        cli = version_of(os.path.join(os.path.dirname(pkg), "__init__.py"))
        text += " as bundled with awscli %s" % (cli or "(unknown version)")
    return text


def model_path(service):
    for base in SEARCH:
        found = sorted(glob.glob(os.path.join(base, service, "*", "service-2.json")))
        if found:
            return found[-1], base
    sys.exit("no botocore model for %s" % service)


def c_str(s):
    if s is None:
        return "NULL"
    # a C string literal: JSON's escapes are C's, except that \uXXXX becomes UTF-8 octets
    out = []
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append("\\%03o" % ord(ch))
        elif ord(ch) < 0x80:
            out.append(ch)
        else:
            out.append("".join("\\%03o" % b for b in ch.encode("utf-8")))
    return '"' + "".join(out) + '"'


def main():
    out = []
    header = len(out)
    out.append('#include "model.h"')
    out.append("")
    sources = set()
    shapes = []          # (service, shape name, shape dict)
    models = {}
    index = {}           # (service, name) -> index
    ops = []

    def visit(svc, model, name):
        key = (svc, name)
        if key in index:
            return index[key]
        index[key] = len(shapes)
        shape = model["shapes"][name]
        shapes.append((svc, name, shape))
        t = shape["type"]
        if t == "structure":
            for m in shape.get("members", {}).values():
                visit(svc, model, m["shape"])
        elif t == "list":
            visit(svc, model, shape["member"]["shape"])
        elif t == "map":
            visit(svc, model, shape["key"]["shape"])
            visit(svc, model, shape["value"]["shape"])
        return index[key]

    for svc, cli, op_name in SERVICES:
        path, base = model_path(svc)
        sources.add(package_version(base))
        model = json.load(open(path))
        models[svc] = model
        op = model["operations"][op_name]
        inp = visit(svc, model, op["input"]["shape"])
        outp = visit(svc, model, op["output"]["shape"]) if "output" in op else -1
        errs = [visit(svc, model, e["shape"]) for e in op.get("errors", [])]
        ops.append((cli, model["metadata"], op, inp, outp, errs, os.path.relpath(path, "/usr/lib/python3/dist-packages")))

    for i, (svc, name, shape) in enumerate(shapes):
        if shape["type"] == "structure" and shape.get("members"):
            req = set(shape.get("required", []))
            out.append("static const model_member_t members_%d[] = {" % i)
            for mname, m in shape["members"].items():
                out.append("    { %s, %s, %d, %d, %s, %s, %d, %d,\n      %s }," % (
                    c_str(mname), c_str(xform_name(mname)), index[(svc, m["shape"])],
                    1 if mname in req else 0, c_str(m.get("location")),
                    c_str(m.get("locationName")), 1 if m.get("jsonvalue") else 0,
                    1 if shape.get("payload") == mname else 0,
                    c_str(yaml_comment(models[svc], m, m["shape"], mname in req))))
            out.append("};")
        if shape.get("enum"):
            out.append("static const char *const enum_%d[] = { %s };" % (
                i, ", ".join(c_str(e) for e in shape["enum"])))
    out.append("")
    out.append("const model_shape_t model_shapes[] = {")
    for i, (svc, name, shape) in enumerate(shapes):
        t = shape["type"]
        nm = len(shape.get("members", {})) if t == "structure" else 0
        fields = [
            c_str(name), TYPES[t],
            "members_%d" % i if nm else "NULL", str(nm),
            str(index[(svc, shape["member"]["shape"])]) if t == "list" else "-1",
            str(index[(svc, shape["key"]["shape"])]) if t == "map" else "-1",
            str(index[(svc, shape["value"]["shape"])]) if t == "map" else "-1",
            "1" if "min" in shape else "0", repr(float(shape.get("min", 0))),
            "1" if "max" in shape else "0", repr(float(shape.get("max", 0))),
            "enum_%d" % i if shape.get("enum") else "NULL", str(len(shape.get("enum", []))),
            c_str(shape.get("timestampFormat")),
            "1" if shape.get("error") or shape.get("exception") else "0",
        ]
        out.append("    { %s }, /* %d %s */" % (", ".join(fields), i, svc))
    out.append("};")
    out.append("const size_t model_nshapes = sizeof model_shapes / sizeof model_shapes[0];")
    out.append("")
    for k, (cli, meta, op, inp, outp, errs, path) in enumerate(ops):
        out.append("static const int errors_%d[] = { %s };" % (k, ", ".join(map(str, errs)) or "-1"))
    out.append("const model_operation_t model_operations[] = {")
    for k, (cli, meta, op, inp, outp, errs, path) in enumerate(ops):
        out.append("    { %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %d, %d, %d, errors_%d, %d,\n"
                   "      %s }," % (
            c_str(cli), c_str(xform_name(op["name"])), c_str(op["name"]),
            c_str(op["http"]["method"]), c_str(op["http"]["requestUri"]),
            c_str(meta["endpointPrefix"]), c_str(meta.get("signingName", meta["endpointPrefix"])),
            c_str(meta["apiVersion"]), c_str(meta["protocol"]), c_str(meta.get("targetPrefix")),
            c_str(meta.get("jsonVersion")), op["http"].get("responseCode", 200), inp, outp, k,
            len(errs), c_str(path)))
    out.append("};")
    out.append("const size_t model_noperations = sizeof model_operations / sizeof model_operations[0];")
    out.insert(header, "/* Generated by tools/gen_model.py from botocore's service models (%s).\n"
                       "   Do not edit: `make regen` writes it, `make check-generated` fails when it is stale. */"
               % "; ".join(sorted(sources)))
    print("\n".join(out))


if __name__ == "__main__":
    main()
