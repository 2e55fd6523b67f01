#!/usr/bin/env python3
"""Benchmarks of the compiled voxvm core against CPython, Lua 5.4 and LuaJIT's interpreter.

Owns the benchmark driver (not a test: timings depend on the machine). The
programs live in ``tools/bench/`` as ``NAME.vvs`` / ``NAME.py`` / ``NAME.lua``,
the same algorithm in each language (docs/performance.md "Reference timings"): ``loop``, ``fib``,
``mandel`` and the two heap programs ``sieve`` (a byte array in one heap
block) and ``alloc`` (GC-managed 16-byte objects kept alive in a ring).

Method (docs/performance.md "Method": the machine is noisy):

* every measurement is a separate child process, and the runs are
  *interleaved*: repeat 1 of every (program, runner), then repeat 2, ...;
* the figure is the **median CPU time** (user + system, from the kernel's
  child rusage) over the repeats;
* for voxvm the child also reports the time spent inside ``Core.run()``
  alone (the execution core, without Python start-up and assembly), so two
  columns are shown: ``run`` and ``process``;
* the VM instruction count comes from an independent counter (the
  ``dispatch="count"`` loop: fusion off, one count per completed
  instruction), giving nanoseconds per VM instruction;
* every child's output is checked against the known result.

Lua runners are skipped when ``lua5.4`` / ``luajit`` are not installed
(``apt-get install lua5.4 luajit``).

Usage::

    python tools/bench.py                      # everything, 5 repeats
    python tools/bench.py -r 3 -p fib -p loop  # fewer repeats / programs
    python tools/bench.py --dispatch switch    # the portable switch loop
    python tools/bench.py --markdown           # a table for docs/performance.md
    python tools/bench.py --baseline-python /tmp/base/bin/python --profile
        # this build against another one (same loop?), and what --profile costs

The ``baseline`` and ``--profile`` columns are run seconds (``Core.run()``),
like the first column; ``run / baseline`` near 1.00 says the plain loop
did not get slower (docs/performance.md "Debugging hooks").
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
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "tools" / "bench"
PROGRAMS = ("loop", "fib", "mandel", "sieve", "alloc")
EXPECTED = {"loop": 4999999950000000, "fib": 2178309, "mandel": 397380,
            "sieve": 664579, "alloc": 12494883023776}
MARKER = "@@bench"


# --------------------------------------------------------------------------
# child: run one .vvs program on the compiled core and report the run time

def child(program: str, dispatch: str, mode: str = "plain") -> int:
    """Assemble and run tools/bench/PROGRAM.vvs; print its output, then the measurement line.

    ``mode``: ``plain``; ``profile`` (the --profile loop, Core.enable_profile); ``baseline``
    (plain, but with the voxvm this interpreter has installed rather than this checkout's:
    --baseline-python, to compare two builds).
    """
    if mode != "baseline":
        sys.path.insert(0, str(REPO))
    try:
        from voxasm import assemble_program as assemble
    except ImportError:               # a --baseline-python build from before voxasm.assemble_program
        from voxasm import assemble   # (then assemble returned a Program)
    from voxvm.backends.compiled._core import Core
    from voxvm.backends import Status
    from voxvm.config import VMConfig
    from voxvm.values import f64_from_bits, format_f64, to_signed

    path = BENCH_DIR / f"{program}.vvs"
    core = Core(assemble(path.read_text(encoding="utf-8"), str(path)), VMConfig(), dispatch=dispatch)
    if mode == "profile":
        core.enable_profile()
    run_time = 0.0
    while True:
        start = time.process_time()
        status = core.run()
        run_time += time.process_time() - start
        if status != Status.NCALL:
            break
        if core.ncall_code != 1:  # the benchmarks only print (ncall 1, r1)
            print(f"bench: unexpected ncall 0x{core.ncall_code:x}", file=sys.stderr)
            return 1
        bits, tag = core.get_reg(1)
        print(format_f64(f64_from_bits(bits)) if tag == 3 else to_signed(bits) if tag == 2 else bits)
    if status != Status.HALT:
        print(f"bench: {program} stopped with status {status} (trap {core.trap_kind})", file=sys.stderr)
        return 1
    print(f"{MARKER} run={run_time:.6f} executed={core.executed}")
    return 0


# --------------------------------------------------------------------------
# parent: interleaved runs

@dataclass
class Runner:
    name: str
    command: list[str]           # program name is substituted for {p}
    is_voxvm: bool = False


@dataclass
class Samples:
    process: list[float] = field(default_factory=list)
    run: list[float] = field(default_factory=list)


def runners(dispatch: str, with_lua: bool, baseline: str | None = None, profile: bool = False) -> list[Runner]:
    found = [Runner(f"voxvm ({dispatch})", [sys.executable, __file__, "--child", "{p}", dispatch], True)]
    if baseline:
        found.append(Runner("baseline", [baseline, __file__, "--child", "{p}", dispatch, "baseline"], True))
    if profile:
        found.append(Runner("--profile", [sys.executable, __file__, "--child", "{p}", dispatch, "profile"], True))
    found.append(Runner("CPython", [sys.executable, str(BENCH_DIR / "{p}.py")]))
    if with_lua:
        lua = shutil.which("lua5.4") or shutil.which("lua")
        if lua and _lua_is_54(lua):
            found.append(Runner("Lua 5.4", [lua, str(BENCH_DIR / "{p}.lua")]))
        luajit = shutil.which("luajit")
        if luajit:
            found.append(Runner("LuaJIT -joff", [luajit, "-joff", str(BENCH_DIR / "{p}.lua")]))
    return found


def _lua_is_54(lua: str) -> bool:
    out = subprocess.run([lua, "-v"], capture_output=True, text=True)
    return "5.4" in (out.stdout + out.stderr)


def measure(runner: Runner, program: str) -> tuple[float, float | None, int | None]:
    """(process CPU seconds, voxvm run seconds or None, executed or None) of one child run."""
    command = [part.replace("{p}", program) for part in runner.command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        raise SystemExit(f"bench: {runner.name} {program} failed ({result.returncode}):\n{result.stderr}")
    lines = result.stdout.splitlines()
    if not lines or not _is_number(lines[0], EXPECTED[program]):
        raise SystemExit(f"bench: {runner.name} {program} printed {lines[:1]}, expected {EXPECTED[program]}")
    run = executed = None
    for line in lines:
        if line.startswith(MARKER):
            fields = dict(item.split("=") for item in line.split()[1:])
            run, executed = float(fields["run"]), int(fields["executed"])
    return cpu, run, executed


def _is_number(text: str, expected: int) -> bool:
    """Does the printed result equal `expected`? Exact for integers; LuaJIT prints
    large numbers as %.14g (4.99999995e+15), which is still exact for these results."""
    try:
        return int(text) == expected
    except ValueError:
        try:
            return float(text) == expected
        except ValueError:
            return False


def instruction_count(program: str) -> int:
    _, _, executed = measure(Runner("count", [sys.executable, __file__, "--child", "{p}", "count"], True), program)
    return executed or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs="+", metavar="PROGRAM DISPATCH [MODE]", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-python", metavar="PY",
                        help="also run the voxvm installed for interpreter PY (another build, e.g. the "
                             "commit before a change to the loop), as the column 'baseline'")
    parser.add_argument("--profile", action="store_true",
                        help="also run with the profiler on (--profile's loop), as the column '--profile'")
    parser.add_argument("-r", "--repeats", type=int, default=5, help="interleaved repeats (default 5)")
    parser.add_argument("-p", "--program", action="append", choices=PROGRAMS, help="program(s) to run")
    parser.add_argument("--dispatch", default="goto", choices=("goto", "switch"), help="voxvm dispatch loop")
    parser.add_argument("--no-lua", action="store_true", help="skip the Lua runners")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)

    programs = args.program or list(PROGRAMS)
    active = runners(args.dispatch, not args.no_lua, args.baseline_python, args.profile)
    samples = {(r.name, p): Samples() for r in active for p in programs}
    counts = {p: instruction_count(p) for p in programs}
    for repeat in range(args.repeats):
        for program in programs:
            for runner in active:
                cpu, run, _ = measure(runner, program)
                samples[(runner.name, program)].process.append(cpu)
                if run is not None:
                    samples[(runner.name, program)].run.append(run)
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)

    ours = active[0].name
    others = [r.name for r in active[1:]]
    med = {key: statistics.median(s.process) for key, s in samples.items()}
    # voxvm runners are compared by their run time (Core.run() alone), the rest by process time.
    for key, s in samples.items():
        if s.run and key[0] != ours:
            med[key] = statistics.median(s.run)
    run_med = {p: statistics.median(samples[(ours, p)].run) for p in programs}
    header = (["program", f"{ours} run s", f"{ours} process s"] + [f"{o} s" for o in others]
              + [f"run / {o}" for o in others] + ["ns / VM instr", "VM instrs"])
    rows = []
    for p in programs:
        row = [p, f"{run_med[p]:.3f}", f"{med[(ours, p)]:.3f}"]
        row += [f"{med[(o, p)]:.3f}" for o in others]
        row += [f"{run_med[p] / med[(o, p)]:.2f}" for o in others]
        row += [f"{run_med[p] / counts[p] * 1e9:.2f}" if counts[p] else "-", f"{counts[p]:,}"]
        rows.append(row)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"# {time.strftime('%Y-%m-%d')}, {machine}; median CPU seconds of {args.repeats} interleaved runs")
    print_table(header, rows, args.markdown)
    return 0


def print_table(header: list[str], rows: list[list[str]], markdown: bool) -> None:
    """A results table: Markdown (for docs/performance.md) or right-aligned columns."""
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    sys.exit(main())
