#!/usr/bin/env bash
# `make check-layers`: agent/README.md's module table is true. Every agent/*.c and agent/*.h
# belongs to a row, and includes only the modules its row's "may use" column names (itself
# and the system's and the dependencies' headers aside).
# The CLI's store commands (record, stats, queue, endpoint, flush, agent, version, their
# options and main) are a user of the library like any other: they include include/evrec.h and
# the CLI's own headers, never an agent/ header, nor a port/ one but where PORT_ALLOWED says
# why (README.md, "Tests and benchmarks"). agent/options.def is no header: it is the options'
# one table, which the CLI's flags are compiled from by design.
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

STORE_COMMANDS = ["cmd_record.c", "cmd_flush.c", "cmd_queue.c", "cmd_stats.c", "cmd_endpoint.c",
                  "cmd_agent.c", "cmd_version.c", "cli_opts.c", "cli_opts.h", "cli.h", "main.c"]
# The one use of the port layer left: --upload-allowed-cmd runs its program with
# port_run_capture (no shell, a deadline, output bounded), as credential_process does.
PORT_ALLOWED = {("cli_opts.c", "port.h")}
agent_headers = {os.path.basename(h) for h in glob.glob("agent/*.h")}
port_headers = {os.path.basename(h) for h in glob.glob("port/*.h")}
cli_failed = 0
for name in STORE_COMMANDS:
    f = "tools/evrec/" + name
    text = open(f, encoding="utf-8", errors="replace").read()
    used = re.findall(r'^\s*#\s*include\s*[<"]([^">]+)[">]', text, re.M)
    bad = sorted({u for u in used if u.startswith(("agent/", "port/")) or "/agent/" in u
                  or os.path.basename(u) in agent_headers
                  or (os.path.basename(u) in port_headers and (name, u) not in PORT_ALLOWED)})
    if bad:
        print("check-layers: %s (a store command: public API only) includes %s"
              % (f, ", ".join(bad)))
        cli_failed += 1
print("check-layers: %d store-command files of the CLI checked for the public API only, "
      "%d failed"
      % (len(STORE_COMMANDS), cli_failed))
sys.exit(1 if failed or cli_failed else 0)
PY
