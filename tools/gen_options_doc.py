#!/usr/bin/env python3
"""README.md's option table, generated from agent/options.def (the one list of
evrec_options_t's members, their defaults and their meaning).

    python3 tools/gen_options_doc.py --write     (make regen)
    python3 tools/gen_options_doc.py --check     (make check-generated: fails when README.md's
                                                   table is stale, or when a member of
                                                   evrec_options_t in include/evrec.h is missing
                                                   from agent/options.def or out of order, or
                                                   a row is malformed: a kind, range or CLI
                                                   column that is not one of options.def's)
"""
import re
import sys

BEGIN = "<!-- options: generated from agent/options.def by tools/gen_options_doc.py (make regen) -->"
END = "<!-- /options -->"
KINDS = {"STR", "BOOL", "U32", "U64", "SIZE", "ENUM", "FN", "PTR"}
NUMERIC = {"U32", "U64", "SIZE"}


def split_args(text):
    """The top-level arguments of a macro call's text (between its parentheses): commas inside
    nested parentheses or string literals do not split."""
    args, depth, cur, i = [], 0, "", 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            cur += text[i:j + 1]
            i = j + 1
            continue
        if ch == "/" and text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    args.append(cur.strip())
    return args


def calls(text, name):
    """Each `name(...)` call in text, as its arguments' text."""
    out, i = [], 0
    while True:
        i = text.find(name + "(", i)
        if i < 0:
            return out
        if i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
            i += 1
            continue
        j, depth = i + len(name), 0
        while True:
            ch = text[j]
            if ch == '"':
                j += 1
                while text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out.append(split_args(text[i + len(name) + 1:j]))
        i = j


def c_strings(text):
    return "".join(bytes(m, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
                   for m in re.findall(r'"((?:[^"\\]|\\.)*)"', text))


def form(arg):
    """("ALWAYS", ["1", "UINT64_MAX"]) for "ALWAYS(1, UINT64_MAX)", ("ANY", []) for "ANY"."""
    m = re.match(r"^(\w+)\s*(?:\((.*)\))?$", arg, re.S)
    if not m:
        return (None, [])
    return (m.group(1), split_args(m.group(2)) if m.group(2) is not None else [])


def entries():
    text = open("agent/options.def", encoding="utf-8").read()
    text = re.sub(r"^/\*.*?\*/", "", text, flags=re.S)  # the file's comment
    rows = []
    for args in calls(text, "EVREC_OPTION"):
        if len(args) != 7:
            rows.append({"bad": "EVREC_OPTION(%s ...) has %d columns, not 7"
                         % (", ".join(args[:2]), len(args))})
            continue
        kind, name, default, rng, cli, shown, meaning = args
        rows.append({"kind": kind, "name": name, "default": default, "range": form(rng),
                     "cli": form(cli), "shown": c_strings(shown), "meaning": c_strings(meaning)})
    return rows


def row_problems(r):
    """What is wrong with one row of options.def."""
    if "bad" in r:
        return [r["bad"]]
    p = []
    name, kind = r["name"], r["kind"]
    rform, rargs = r["range"]
    cform, cargs = r["cli"]
    if kind not in KINDS:
        p.append("%s: kind %s is not one of %s" % (name, kind, ", ".join(sorted(KINDS))))
    if kind == "ENUM":
        if rform != "ONE_OF" or len(rargs) < 4:
            p.append("%s: an ENUM's range is ONE_OF(last, \"a noun\", \"name0\", ...)" % name)
    elif kind in NUMERIC:
        if rform not in ("ANY", "ALWAYS", "DELIVERING", "DELIVERING_OR_0") or \
                (rform != "ANY" and len(rargs) != 2):
            p.append("%s: a number's range is ANY, ALWAYS(min, max), DELIVERING(min, max) or "
                     "DELIVERING_OR_0(min, max)" % name)
    elif rform != "ANY":
        p.append("%s: a %s option's range is ANY" % (name, kind))
    if cform == "CLI" and len(cargs) == 2 or cform == "CLI_SECRET" and len(cargs) == 3:
        if kind in ("FN", "PTR"):
            p.append("%s: a %s option cannot be a CLI flag (NOT_CLI(\"why\"))" % (name, kind))
        if cform == "CLI_SECRET" and kind != "STR":
            p.append("%s: only a string option has a CLI_SECRET file" % name)
    elif not (cform == "NOT_CLI" and len(cargs) == 1 and c_strings(cargs[0])):
        p.append("%s: its CLI column is CLI(commands, \"help\"), CLI_SECRET(commands, \"help\", "
                 "\"file help\") or NOT_CLI(\"why\")" % name)
    if not r["shown"] or not r["meaning"]:
        p.append("%s: no shown default or meaning for README.md" % name)
    return p


def flags(r):
    """README's cell: the option's CLI flag(s), by the rule (member name with dashes)."""
    cform = r["cli"][0]
    if cform not in ("CLI", "CLI_SECRET"):
        return "—"
    flag = "--" + r["name"].replace("_", "-")
    return "`%s`" % flag + (", `%s-file`" % flag if cform == "CLI_SECRET" else "")


def struct_members():
    h = open("include/evrec.h", encoding="utf-8").read()
    body = re.search(r"typedef struct evrec_options \{(.*?)\} evrec_options_t;", h, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names = []
    for decl in body.split(";"):
        decl = decl.strip()
        if not decl:
            continue
        m = re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", decl) or re.search(r"(\w+)\s*(?:\[[^\]]*\])?$", decl)
        names.append(m.group(1))
    return [n for n in names if n != "struct_size"]


def table(rows):
    out = [BEGIN, "", "| option | default | CLI flag (config key: the option's name) | meaning |",
           "|---|---|---|---|"]
    for r in rows:
        out.append("| `%s` | %s | %s | %s |" % (r["name"], r["shown"], flags(r), r["meaning"]))
    out += ["", END]
    return "\n".join(out)


def main():
    rows = entries()
    problems = [p for r in rows for p in row_problems(r)]
    rows = [r for r in rows if "bad" not in r]
    names = [r["name"] for r in rows]
    members = struct_members()
    if names != members:
        missing = [m for m in members if m not in names]
        extra = [n for n in names if n not in members]
        problems.append("agent/options.def does not list evrec_options_t's members in order"
                        + (": missing %s" % ", ".join(missing) if missing else "")
                        + (": not members %s" % ", ".join(extra) if extra else ""))
    readme = open("README.md", encoding="utf-8").read()
    if BEGIN not in readme or END not in readme:
        problems.append("README.md has no generated option table (%s ... %s)" % (BEGIN, END))
    else:
        i = readme.index(BEGIN)
        j = readme.index(END) + len(END)
        new = readme[:i] + table(rows) + readme[j:]
        if sys.argv[1:] == ["--write"]:
            if new != readme and not problems:
                open("README.md", "w", encoding="utf-8").write(new)
        elif new != readme:
            problems.append("README.md's option table is stale (make regen)")
    for p in problems:
        print("check-generated: " + p)
    if not problems and sys.argv[1:] == ["--check"]:
        print("check-generated: README.md's option table matches agent/options.def (%d options)"
              % len(rows))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
