#!/usr/bin/env python3
"""The collector-scaling benchmark: a large live set next to many short-lived objects.

Owns the benchmark of docs/heap.md §6 "A collector that scales with the live set"
(not a test: timings depend on the machine). The program (generated for each L and N,
the same algorithm in voxvm assembly and in Lua):

1. build a linked list of L live nodes ``{value, next}`` (16-byte heap blocks,
   GC-managed, kept alive from one register);
2. allocate N short-lived 16-byte objects ``{i, 0}`` (each garbage as soon as the
   next one is made);
3. walk the list and print the sum of its values, L * (L - 1) / 2 (so the
   collector must have kept every node).

For every L it reports, as medians of interleaved runs (docs/performance.md "Method"):

* **run s**: CPU time inside ``Core.run()`` (the execution core alone);
* **gc s** and **gc / run**: the collector's own time (``gc_ns_total``, which the
  heap measures around every collection on the monotonic clock, i.e. wall time)
  and its share of the run's wall time (both wall clock, so that a busy machine
  inflates both alike);
* **collections**, **peak heap** and the **pause** distribution (median and maximum
  of the collections' durations, from the ``--gc-log`` events);
* **voxvm s**: CPU of the whole ``voxvm --vve=...`` process (Python start-up,
  loading, the run) next to **Lua 5.4 s** (``lua5.4`` on the same algorithm),
  when ``lua5.4`` is installed.

Usage::

    python tools/bench_gc.py                          # L = 1e5, 1e6, 4e6; N = 2e7; 3 repeats
    python tools/bench_gc.py -L 1000000 -N 20000000 -r 5
    python tools/bench_gc.py --markdown               # a table for the docs
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from argtypes import positive_int  # tools/argtypes.py

from bench import print_table    # tools/bench.py, beside this file

REPO = Path(__file__).resolve().parents[1]
MARKER = "@@bench_gc"

VVS = """\
; bench_gc: a list of {L} live nodes, then {N} short-lived objects (tools/bench_gc.py)
section text
.start
    uload r10 {L}           ; L live nodes
    uload r11 {N}           ; N short-lived objects
    uload r8 8              ; a field's size, and the load type "address"
    uload r9 1              ; the load type uint64
    uload r13 0             ; head = null
    uload r14 0             ; i
label build
    alloc r17 16            ; node = {{value 0, next null}}
    store r17 r14 r8        ; node.value = i
    movr r3 r17
    uadd r3 r8
    store r3 r13 r8         ; node.next = head (a pointer from the second node on)
    movr r13 r17            ; head = node
    uinc r14
    ucmp r14 r10
    jl @build
    uload r14 0
label churn
    alloc r17 16            ; a short-lived object, garbage at the next allocation
    store r17 r14 r8
    uinc r14
    ucmp r14 r11
    jl @churn
    uload r16 0             ; checksum
    uload r20 0             ; null
    movr r4 r13
label walk
    ucmp r4 r20
    jz @done
    load r9 r6 r4 r8        ; node.value
    uadd r16 r6
    uadd r4 r8
    load r8 r4 r4 r8        ; node = node.next
    jmp @walk
label done
    movr r1 r16
    uload r2 1
    ncall 1 r0              ; print the checksum
    halt
"""

LUA = """\
-- bench_gc: a list of L live nodes, then N short-lived objects (tools/bench_gc.py)
local L, N = {L}, {N}
local head = false
for i = 0, L - 1 do head = {{i, head}} end
for i = 0, N - 1 do local t = {{i, false}} end
local sum, node = 0, head
while node do sum = sum + node[1]; node = node[2] end
print(sum)
"""


def expected(live: int) -> int:
    return live * (live - 1) // 2


# --------------------------------------------------------------------------
# child: run the program on the compiled core, report run time, GC time and pauses

def child(vvs: str) -> int:
    sys.path.insert(0, str(REPO))
    from voxasm import assemble_program as assemble
    from voxvm.backends import Status
    from voxvm.backends.compiled._core import Core
    from voxvm.config import VMConfig

    pauses: list[float] = []

    def log(line: str) -> None:
        if " pause " in line:
            pauses.append(float(line.rsplit(" pause ", 1)[1].split()[0]))

    core = Core(assemble(Path(vvs).read_text(encoding="utf-8"), vvs), VMConfig(gc_log=True))
    core.set_log(log)
    run_time = run_wall = 0.0
    while True:
        start, start_wall = time.process_time(), time.perf_counter()
        status = core.run()
        run_time += time.process_time() - start
        run_wall += time.perf_counter() - start_wall
        if status != Status.NCALL:
            break
        print(core.get_reg(1)[0])
    if status != Status.HALT:
        print(f"bench_gc: stopped with status {status} (trap {core.trap_kind})", file=sys.stderr)
        return 1
    info = core.heap_info()
    print(f"{MARKER} run={run_time:.6f} wall={run_wall:.6f} gc={info['gc_ns_total'] / 1e9:.6f} "
          f"collections={info['collections']} peak={info['peak_capacity']} "
          f"pauses={','.join(f'{p:.3f}' for p in pauses) or '-'}")
    return 0


# --------------------------------------------------------------------------
# parent

def cpu_of(command: list[str], want: int) -> tuple[float, list[str]]:
    """CPU seconds (user + system) of one child process, and its output lines."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"bench_gc: {command[0]} failed ({result.returncode}):\n{result.stderr}")
    lines = result.stdout.splitlines()
    if not lines or lines[0].strip() != str(want):
        raise SystemExit(f"bench_gc: {' '.join(command)} printed {lines[:1]}, expected {want}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-L", "--live", type=positive_int, action="append",
                        help="live list length (repeatable; default 1e5, 1e6, 4e6)")
    parser.add_argument("-N", "--short", type=positive_int, default=20_000_000, help="short-lived objects (default 2e7)")
    parser.add_argument("-r", "--repeat", type=positive_int, default=3, help="interleaved repeats (default 3)")
    parser.add_argument("--no-lua", action="store_true", help="skip Lua 5.4")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--child", metavar="VVS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    lives = args.live or [100_000, 1_000_000, 4_000_000]
    lua = None if args.no_lua else shutil.which("lua5.4")
    voxvm = [sys.executable, "-m", "voxvm"]
    results: dict[int, dict[str, list]] = {live: {} for live in lives}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for live in lives:
            base = Path(tmp) / f"gc_{live}"
            base.with_suffix(".vvs").write_text(VVS.format(L=live, N=args.short), encoding="utf-8")
            base.with_suffix(".lua").write_text(LUA.format(L=live, N=args.short), encoding="utf-8")
            subprocess.run(voxvm + ["--vas", str(base.with_suffix(".vvs"))], check=True, cwd=tmp)
            files[live] = base
        for rep in range(args.repeat):
            for live in lives:
                base, want, r = files[live], expected(live), results[live]
                _, lines = cpu_of([sys.executable, __file__, "--child", str(base.with_suffix(".vvs"))], want)
                fields = dict(item.split("=", 1) for item in lines[-1].split()[1:])
                for key in ("run", "wall", "gc"):
                    r.setdefault(key, []).append(float(fields[key]))
                r.setdefault("collections", []).append(int(fields["collections"]))
                r.setdefault("peak", []).append(int(fields["peak"]))
                r.setdefault("pauses", []).append([float(p) for p in fields["pauses"].split(",") if p != "-"])
                cpu, _ = cpu_of(voxvm + [f"--vve={base.with_suffix('.vve')}"], want)
                r.setdefault("voxvm", []).append(cpu)
                if lua:
                    cpu, _ = cpu_of([lua, str(base.with_suffix(".lua"))], want)
                    r.setdefault("lua", []).append(cpu)
            print(f"repeat {rep + 1}/{args.repeat} done", file=sys.stderr)
    med = statistics.median
    header = ["L", "N", "run s", "gc s", "gc / run", "collections", "peak heap MiB",
              "pause median ms", "pause max ms", "voxvm s", "Lua 5.4 s", "voxvm / Lua 5.4"]
    rows = []
    for live in lives:
        r = results[live]
        run, gc = med(r["run"]), med(r["gc"])
        share = med(g / w for g, w in zip(r["gc"], r["wall"]))
        pauses = [p for run_pauses in r["pauses"] for p in run_pauses]
        vox, lua_s = med(r["voxvm"]), med(r["lua"]) if r.get("lua") else None
        rows.append([f"{live:,}", f"{args.short:,}", f"{run:.3f}", f"{gc:.3f}", f"{share:.3f}",
                     str(med(r["collections"])), f"{med(r['peak']) / 2**20:.0f}",
                     f"{med(pauses):.2f}" if pauses else "-", f"{max(pauses):.2f}" if pauses else "-",
                     f"{vox:.3f}", f"{lua_s:.3f}" if lua_s else "-", f"{vox / lua_s:.2f}" if lua_s else "-"])
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; median CPU seconds of {args.repeat} interleaved runs; "
          f"pauses over all runs")
    if lua is None:
        print("# note: " + ("--no-lua: " if args.no_lua else "no Lua 5.4 (lua5.4) on PATH: ")
              + "the Lua 5.4 columns are left out")
    print_table(header, rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
