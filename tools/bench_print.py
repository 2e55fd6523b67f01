#!/usr/bin/env python3
"""Benchmark of print-heavy programs: print inside the compiled loop (C native table) vs leaving it.

Owns the print benchmark (not a test: timings depend on the machine). The
programs are ``tools/bench/print_u.vvs`` (10^6 prints of uint64) and
``print_f.vvs`` (10^6 prints of float64), run through ``voxvm.machine.Machine``
exactly as the ``voxvm`` command runs them, stdout to /dev/null. Paths:

* ``c``: the compiled core as shipped: ``ncall 1`` of a number runs in C inside
  the loop and writes into the VM's stdout buffer (csrc/vv_builtins.h);
* ``exit``: the same core with print taken out of its C table
  (``Core.remove_native(1)``): every print leaves the loop for the Python
  handler, as every native did before the table existed;
* ``python``: the pure-Python reference backend (only with ``--python``: slow).

Method as tools/bench.py: every measurement is a separate child process, the
runs are interleaved, and the figure is the median CPU time of ``Machine.run``
plus the final flush (the run, without start-up and assembly).

Usage::

    python tools/bench_print.py              # 5 repeats, c and exit
    python tools/bench_print.py -r 3 --python
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from argtypes import positive_int  # tools/argtypes.py

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "tools" / "bench"
PROGRAMS = ("print_u", "print_f")
MARKER = "@@bench"


def child(program: str, path: str) -> int:
    sys.path.insert(0, str(REPO))
    from voxasm import assemble_program as assemble
    from voxvm.config import VMConfig
    from voxvm.machine import Machine

    source = BENCH_DIR / f"{program}.vvs"
    prog = assemble(source.read_text(encoding="utf-8"), str(source))
    backend = "python" if path == "python" else "cython"
    with open("/dev/null", "wb") as sink:
        machine = Machine(prog, VMConfig(backend=backend), stdout=sink)
        if path == "exit":
            machine.core.remove_native(0x01)
        start = time.process_time()
        machine.run()
        machine.io.flush()
        elapsed = time.process_time() - start
    print(f"{MARKER} run={elapsed:.6f}")
    return 0


def measure(program: str, path: str) -> float:
    result = subprocess.run([sys.executable, __file__, "--child", program, path],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"bench_print: {program} on {path} failed:\n{result.stderr}")
    for line in result.stdout.splitlines():
        if line.startswith(MARKER):
            return float(line.split("=")[1])
    raise SystemExit(f"bench_print: {program} on {path} printed no measurement")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("PROGRAM", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("-r", "--repeats", type=positive_int, default=5, help="interleaved repeats (default 5)")
    parser.add_argument("--python", action="store_true", help="also the pure-Python reference backend")
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    paths = ["c", "exit"] + (["python"] if args.python else [])
    samples: dict[tuple[str, str], list[float]] = {(p, q): [] for p in PROGRAMS for q in paths}
    for repeat in range(args.repeats):
        for program in PROGRAMS:
            for path in paths:
                samples[(program, path)].append(measure(program, path))
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    header = ["program"] + [f"{q} s" for q in paths] + ["exit / c", "ns per print (c)"]
    print(f"median CPU seconds of Machine.run over {args.repeats} interleaved runs, 10^6 prints each")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for program in PROGRAMS:
        med = {q: statistics.median(samples[(program, q)]) for q in paths}
        row = [program] + [f"{med[q]:.3f}" for q in paths]
        row += [f"{med['exit'] / med['c']:.1f}", f"{med['c'] / 1e6 * 1e9:.0f}"]
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
