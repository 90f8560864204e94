#!/usr/bin/env python3
"""README.md's option table, generated from agent/options.def (the one list of
evrec_options_t's members, their defaults and their meaning).

    python3 tools/gen_options_doc.py --write     (make regen)
    python3 tools/gen_options_doc.py --check     (make check-generated: fails when README.md's
                                                   table is stale, or when a member of
                                                   evrec_options_t in include/evrec.h is missing
                                                   from agent/options.def or out of order, or
                                                   an option that is not a callback has no CLI
                                                   flag / config key in tools/evrec/cli_opts.c)
"""
import re
import sys

BEGIN = "<!-- options: generated from agent/options.def by tools/gen_options_doc.py (make regen) -->"
END = "<!-- /options -->"
STRING = r'(?:"(?:[^"\\]|\\.)*"\s*)+'
ENTRY = re.compile(r'^EVREC_OPTION\(\s*(\w+),\s*(\w+),\s*(.*?),\s*(' + STRING + r'),\s*(' + STRING +
                   r')\)', re.M | re.S)


def c_strings(text):
    return "".join(bytes(m, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
                   for m in re.findall(r'"((?:[^"\\]|\\.)*)"', text))


def entries():
    text = open("agent/options.def", encoding="utf-8").read()
    return [(k, n, d.strip(), c_strings(s), c_strings(m)) for k, n, d, s, m in ENTRY.findall(text)]


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


# Options the CLI does not take as a flag or config key: each command decides them itself.
NOT_CLI = {"manual_flush": "the CLI's commands choose how they flush",
           "no_flusher": "record-only commands set it themselves"}


def cli_keys():
    """The options tools/evrec/cli_opts.c turns into flags and config keys (O(member))."""
    return set(re.findall(r"\bO\((\w+)\)", open("tools/evrec/cli_opts.c", encoding="utf-8").read()))


def table(rows):
    out = [BEGIN, "", "| option | default | meaning |", "|---|---|---|"]
    for kind, name, _, shown, meaning in rows:
        out.append("| `%s` | %s | %s |" % (name, shown, meaning))
    out += ["", END]
    return "\n".join(out)


def main():
    rows = entries()
    problems = []
    names = [r[1] for r in rows]
    members = struct_members()
    if names != members:
        missing = [m for m in members if m not in names]
        extra = [n for n in names if n not in members]
        problems.append("agent/options.def does not list evrec_options_t's members in order"
                        + (": missing %s" % ", ".join(missing) if missing else "")
                        + (": not members %s" % ", ".join(extra) if extra else ""))
    cli = cli_keys()
    for kind, name, _, _, _ in rows:
        if kind not in ("FN", "PTR") and name not in cli and name not in NOT_CLI:
            problems.append("%s is an option but not a CLI flag / config key "
                            "(tools/evrec/cli_opts.c)" % name)
    readme = open("README.md", encoding="utf-8").read()
    if BEGIN not in readme or END not in readme:
        problems.append("README.md has no generated option table (%s ... %s)" % (BEGIN, END))
    else:
        i = readme.index(BEGIN)
        j = readme.index(END) + len(END)
        new = readme[:i] + table(rows) + readme[j:]
        if sys.argv[1:] == ["--write"]:
            if new != readme:
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
