#!/usr/bin/env python3
"""Host memory, growth and Ctrl-C latency of the reference heap (the figures in docs/heap.md §6).

Owns nothing the product uses. Each measurement runs in a fresh child
process that imports the heap from ``--source`` (default: the installed
voxvm), so the same command measures any checkout:

* **memory**: fill ``PyHeap(1MB, --fill-heap)`` with 8-byte blocks, each
  holding a pointer to the previous one (the worst case: one block and one
  pointer per 16 bytes; ``--offset 4`` stores the pointers unaligned), then
  mark them all in one collection. Reported: the arena, the rise of the
  process's peak RSS over its RSS before the heap existed (``VmHWM`` minus
  ``VmRSS``, /proc/self/status), and their ratio.
* **growth**: ``PyHeap(1MB, --grow-to)`` doubled step by step to its limit
  (``_grow``, what an allocation that does not fit calls), then one block of
  60 % of the limit allocated, freed and allocated again. Reported per step:
  wall time, and the longest stretch during it in which Python ran no signal
  handler (an interval timer fires every 5 ms; a Ctrl-C waits that long).
* **ctrl-c**: ``voxvm run --backend=python --max-heap=--grow-to`` of a
  program whose first instruction allocates 70 % of the limit (one growth
  step) and then spins; SIGINT after each of ``--delays`` seconds. Reported:
  exit status and the time from SIGINT to exit.

    python tools/bench_pyheap.py [--fill-heap 16MB] [--grow-to 1GB] [--source DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from argtypes import existing_dir, nonnegative_int, positive_float  # tools/argtypes.py

MIB = 1 << 20

CHILD_COMMON = """
import json, signal, sys, time
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
from voxvm.backends.reference.heap import PyHeap
"""

MEMORY_CHILD = CHILD_COMMON + """
max_heap, offset = int(sys.argv[1]), int(sys.argv[2])
before = status("VmRSS")
heap = PyHeap(1 << 20, max_heap)
started = time.perf_counter()
previous = blocks = 0
while address := heap.alloc_raw(8 + offset):
    heap.write(address + offset, previous.to_bytes(8, "big"), is_pointer=True)
    previous, blocks = address, blocks + 1
filled = time.perf_counter()
assert heap.collect([previous]) == 0
json.dump({"arena": heap.capacity, "blocks": blocks, "before": before,
           "peak": status("VmHWM"), "fill_s": filled - started,
           "collect_s": time.perf_counter() - filled}, sys.stdout)
"""

GROWTH_CHILD = CHILD_COMMON + """
limit = int(sys.argv[1])
gaps = []
last = [time.perf_counter()]
def tick(*_):
    now = time.perf_counter()
    gaps.append(now - last[0])
    last[0] = now
def measured(what, action):
    gaps.clear()
    last[0] = started = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, 0.005, 0.005)
    try:
        result = action()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    wall = time.perf_counter() - started
    gaps.append(time.perf_counter() - last[0])
    rows.append({"what": what, "wall_s": wall, "gap_s": max(gaps), "hwm": status("VmHWM")})
    return result
signal.signal(signal.SIGALRM, tick)
rows = []
heap = PyHeap(1 << 20, limit)
while heap.size < heap.limit:
    size = heap.size
    measured(f"grow {size >> 20} -> {min(2 * size, heap.limit) >> 20} MiB", lambda: heap._grow(None))
big = limit * 6 // 10
a = measured(f"alloc {big >> 20} MiB (fresh)", lambda: heap.alloc_raw(big))
heap.write(a + big // 2, b"x" * 8)
measured("free it", lambda: heap.free(a))
measured(f"alloc {big >> 20} MiB (reused)", lambda: heap.alloc_raw(big))
json.dump(rows, sys.stdout)
"""

SPIN = """
section text
.start
    alloc r1 {size}
    uload r2 0
label spin
    uinc r2
    jmp @spin
"""


def child(source: str | None, code: str, *args: str) -> object:
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = source
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            env=env, check=False)
    if result.returncode:
        sys.exit(f"bench_pyheap: child failed:\n{result.stderr}")
    return json.loads(result.stdout)


def parse_size(text: str) -> int:
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(float(text[:-2]) * factor)
    return int(text)


def memory(args) -> None:
    row = child(args.source, MEMORY_CHILD, str(args.fill_heap), str(args.offset))
    rise = row["peak"] - row["before"]
    print(f"memory: {row['blocks']:,} blocks of {8 + args.offset} bytes fill a "
          f"{row['arena'] / MIB:.1f} MiB arena in {row['fill_s']:.1f} s "
          f"(collection {row['collect_s']:.1f} s)")
    print(f"  RSS before {row['before'] / MIB:.1f} MiB, peak {row['peak'] / MIB:.1f} MiB: "
          f"rise {rise / MIB:.1f} MiB = {rise / row['arena']:.3f} x the arena")


def growth(args) -> None:
    rows = child(args.source, GROWTH_CHILD, str(args.grow_to))
    print(f"growth to {args.grow_to / MIB:.0f} MiB:")
    print(f"  {'step':<32} {'wall ms':>9} {'longest gap ms':>15} {'peak RSS MiB':>13}")
    for row in rows:
        print(f"  {row['what']:<32} {row['wall_s'] * 1e3:9.1f} {row['gap_s'] * 1e3:15.1f} "
              f"{row['hwm'] / MIB:13.1f}")


def ctrl_c(args) -> None:
    env = dict(os.environ)
    if args.source:
        env["PYTHONPATH"] = args.source
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp, "spin.vvs")
        program.write_text(textwrap.dedent(SPIN.format(size=args.grow_to * 7 // 10)))
        print(f"ctrl-c: voxvm run --backend=python --max-heap={args.grow_to} "
              f"(alloc {args.grow_to * 7 // 10 >> 20} MiB, then spin)")
        for delay in args.delays:
            process = subprocess.Popen(
                [sys.executable, "-m", "voxvm", "run", "--backend=python",
                 f"--max-heap={args.grow_to}", str(program)],
                cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(delay)
            sent = time.perf_counter()
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=120)
            latency = time.perf_counter() - sent
            print(f"  SIGINT at {delay:.2f} s: status {process.returncode}, "
                  f"exit {latency * 1e3:.0f} ms later ({err.decode().strip()!r})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fill-heap", type=parse_size, default=16 * MIB)
    parser.add_argument("--offset", type=nonnegative_int, default=0, help="byte offset of each pointer")
    parser.add_argument("--grow-to", type=parse_size, default=1 << 30)
    parser.add_argument("--delays", type=positive_float, nargs="*", default=[0.3, 0.6, 1.0, 2.0])
    parser.add_argument("--source", type=existing_dir, help="import voxvm from this checkout (PYTHONPATH)")
    parser.add_argument("--only", choices=["memory", "growth", "ctrl-c"])
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("bench_pyheap: reads /proc/self/status (Linux only)", file=sys.stderr)
        return 2
    for name, run in (("memory", memory), ("growth", growth), ("ctrl-c", ctrl_c)):
        if args.only in (None, name):
            run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
