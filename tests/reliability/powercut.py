#!/usr/bin/env python3
"""Power cuts, rebuilt from traced writes.

For each durability mode, `powercut_tool workload` records events into a new store under the
iotrace LD_PRELOAD shim, which logs every write and sync of data.mdb (with the bytes) and the
workload's markers (event acknowledged, event deleted, everything so far synced). Then, at
random crash points of the trace, the data file is rebuilt as a power cut could have left it:

  reorder  every write made durable by a sync (or written O_DSYNC) is there; of each 4 KiB
           page written since, any one version is there: the one before, or any later one
           (the page cache writes pages back in any order, or not at all)
  torn     every write up to the crash point is there, except that one 4 KiB page written
           since the last sync is torn: its first k 512-byte sectors new, the rest old

Each image is opened with evrec (`powercut_tool check`, a child process per image). Counted
per mode and model: stores refused at open (EVREC_E_CORRUPT: the whole backlog unusable),
crashes (must be 0), and acknowledged events missing although the mode promised them: power
mode promises every event acknowledged before the cut; process and batched modes promise
those acknowledged before the last completed sync (queue_sync / the periodic fsync). Events
deleted (as delivered) before the cut are not required.

Seeded: prints its seed; --seed gives it back. Exit 1 if a promise is broken: an opener
crash, a promised event missing, or a store refused although it had been synced (a cut while
the store is being created, before its first sync, can leave a file with no valid meta page:
counted apart).
"""
import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

PAGE = 4096
SECTOR = 512
REC = struct.Struct("=c7xQQ")
MARK_ACK, MARK_DEL, MARK_SYNCED = 1, 2, 3


def read_trace(path):
    ops = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        t, off, ln = REC.unpack_from(data, pos)
        pos += REC.size
        t = t.decode()
        if t in "WDF":
            ops.append((t, off, data[pos:pos + ln]))
            pos += ln
        elif t == "S":
            ops.append(("S", 0, b""))
        else:
            ops.append(("M", off, ln))
    return ops


class Replay:
    """Page versions of the data file along the trace."""

    def __init__(self):
        self.durable = {}   # page -> bytes
        self.latest = {}    # page -> bytes (page cache)
        self.pending = {}   # page -> [versions since the page was last durable]

    def write(self, off, data, durable):
        end = off + len(data)
        p = off // PAGE
        while p * PAGE < end:
            base = p * PAGE
            cur = bytearray(self.latest.get(p, bytes(PAGE)))
            lo = max(off, base)
            hi = min(end, base + PAGE)
            cur[lo - base:hi - base] = data[lo - off:hi - off]
            cur = bytes(cur)
            self.latest[p] = cur
            if durable:
                self.durable[p] = cur
                self.pending.pop(p, None)
            else:
                self.pending.setdefault(p, []).append(cur)
            p += 1

    def sync(self):
        for p in self.pending:
            self.durable[p] = self.latest[p]
        self.pending = {}


def side_file(ops, cut):
    """synced.meta as of the cut (written atomically and fsynced by evrec), or None."""
    content = None
    for t, _, data in ops[:cut]:
        if t == "F":
            content = data
    return content


def image(ops, cut, model, rng):
    r = Replay()
    for t, off, data in ops[:cut]:
        if t == "W":
            r.write(off, data, False)
        elif t == "D":
            r.write(off, data, True)
        elif t == "S":
            r.sync()
    pages = dict(r.durable)
    if model == "reorder":
        for p, versions in r.pending.items():
            choice = rng.randrange(len(versions) + 1)
            if choice > 0:
                pages[p] = versions[choice - 1]
    else:  # torn
        for p in r.pending:
            pages[p] = r.latest[p]
        if r.pending:
            p = rng.choice(sorted(r.pending))
            old = r.durable.get(p, bytes(PAGE))
            k = rng.randrange(1, PAGE // SECTOR)
            pages[p] = r.latest[p][:k * SECTOR] + old[k * SECTOR:]
    if not pages:
        return b""
    size = (max(pages) + 1) * PAGE
    buf = bytearray(size)
    for p, content in pages.items():
        buf[p * PAGE:(p + 1) * PAGE] = content
    return bytes(buf)


def promised(ops, cut, mode):
    acked, deleted, synced_upto = [], set(), 0
    for t, off, val in ops[:cut]:
        if t != "M":
            continue
        if off == MARK_ACK:
            acked.append(val)
        elif off == MARK_DEL:
            deleted.add(val)
        elif off == MARK_SYNCED:
            synced_upto = len(acked)
    kept = acked if mode == "power" else acked[:synced_upto]
    return set(kept) - deleted


def run(args):
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"powercut: seed {seed} (--seed {seed} repeats this run), {args.images} images per "
          f"mode and model, {args.events} events per workload")
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="evrec-powercut-")
    failed = False
    results = []
    try:
        for mode in args.modes.split(","):
            store = os.path.join(work, f"store-{mode}")
            trace = os.path.join(work, f"trace-{mode}")
            env = dict(os.environ, LD_PRELOAD=args.shim, EVREC_IOTRACE=trace)
            # A sanitizer build's runtime must come first in the library list, and the shim
            # comes before it: tell ASan the order is intended (the shim only wraps I/O).
            env["ASAN_OPTIONS"] = ":".join(
                o for o in (os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0") if o)
            subprocess.run([args.tool, "workload", store, mode, str(args.events)], env=env,
                           check=True)
            ops = read_trace(trace)
            nw = sum(1 for o in ops if o[0] in "WD")
            ns = sum(1 for o in ops if o[0] == "S")
            for model in ("reorder", "torn"):
                dirs, cuts = [], []
                for i in range(args.images):
                    cut = rng.randrange(1, len(ops) + 1)
                    d = os.path.join(work, f"img-{mode}-{model}-{i}")
                    os.mkdir(d, 0o700)
                    with open(os.path.join(d, "data.mdb"), "wb") as f:
                        f.write(image(ops, cut, model, rng))
                    side = side_file(ops, cut)
                    if side is not None:
                        with open(os.path.join(d, "synced.meta"), "wb") as f:
                            f.write(side)
                    dirs.append(d)
                    cuts.append(cut)
                # The images are opened as after a restart of the machine.
                reboot = dict(os.environ, EVREC_TEST_BOOT_ID="after-the-power-cut")
                out = subprocess.run([args.tool, "check"], input="\n".join(dirs) + "\n", env=reboot,
                                     capture_output=True, text=True, check=True).stdout
                lines = out.splitlines()
                refused = crashed = lossy = missing = creating = 0
                example = ""
                for d, cut, line in zip(dirs, cuts, lines):
                    if line.startswith("OK"):
                        have = {int(x) for x in line.split()[1:] if x.lstrip("-").isdigit()}
                        miss = promised(ops, cut, mode) - have
                        if miss:
                            lossy += 1
                            missing += len(miss)
                    elif line.startswith("REFUSED"):
                        refused += 1
                        synced = any(o[0] == "S" for o in ops[:cut])
                        if not synced or (mode != "power" and side_file(ops, cut) is None):
                            creating += 1  # cut before the store's first sync completed
                        else:
                            example = example or line[:160]
                    else:
                        crashed += 1
                    shutil.rmtree(d)
                if len(lines) != len(dirs):
                    crashed += len(dirs) - len(lines)
                results.append((mode, model, len(dirs), refused, crashed, lossy, missing))
                print(f"powercut: {mode:8s} {model:8s} {len(dirs)} images ({nw} writes, {ns} "
                      f"syncs traced): {refused} refused ({creating} cut while the store was "
                      f"being created), {crashed} crashed, {lossy} opened without promised "
                      f"events ({missing} events)" + (f"; e.g. {example}" if example else ""))
                # Every mode keeps its promise: no crash, nothing promised missing, and no
                # store refused once it has been synced.
                if crashed or missing or refused > creating:
                    failed = True
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("powercut: " + ("FAILED" if failed else "ok") + f" (seed {seed})")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool", required=True)
    ap.add_argument("--shim", required=True)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--modes", default="process,batched,power")
    args = ap.parse_args()
    args.tool = os.path.abspath(args.tool)
    args.shim = os.path.abspath(args.shim)
    sys.exit(run(args))


if __name__ == "__main__":
    main()
