#!/usr/bin/env bash
# `make check-layers`: agent/README.md's module table is true. Every agent/*.c and agent/*.h
# belongs to a row, and includes only the modules its row's "may use" column names (itself
# and the system's and the dependencies' headers aside).
# Usage: tests/build/check_layers.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
python3 - <<'PY'
import glob, os, re, sys
rows = {}
for line in open("agent/README.md", encoding="utf-8"):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 3 or not cells[0].startswith("`"):
        continue
    names = re.findall(r"`([a-z0-9_]+)`", cells[0])
    may = set(re.findall(r"`([a-z0-9_]+)`", cells[2]))
    for n in names:
        rows[n] = may | set(names)
failed = 0
files = sorted(glob.glob("agent/*.c") + glob.glob("agent/*.h"))
for f in files:
    mod = os.path.splitext(os.path.basename(f))[0]
    if mod not in rows:
        print("check-layers: %s is not in agent/README.md's module table" % f)
        failed += 1
        continue
    text = open(f, encoding="utf-8", errors="replace").read()
    used = set(re.findall(r'^#include "([a-z0-9_]+)\.h"', text, re.M))
    extra = sorted(u for u in used - rows[mod] - {mod} if os.path.exists("agent/%s.h" % u)
                   or u in ("port", "evrec"))
    if extra:
        print("check-layers: %s uses %s, which agent/README.md does not allow for %s"
              % (f, ", ".join(extra), mod))
        failed += 1
print("check-layers: %d files checked against agent/README.md, %d failed" % (len(files), failed))
sys.exit(1 if failed else 0)
PY
