#!/usr/bin/env python3
"""Benchmarks of voxvm against CPython, Lua 5.4, LuaJIT (interpreter and JIT) and C, whole process and in-run.

Owns the benchmark driver (not a test: timings depend on the machine). The
programs live in ``tools/bench/`` as ``NAME.vvs`` / ``NAME.py`` / ``NAME.lua`` /
``NAME.c``, the same algorithm in each language (docs/performance.md "Reference
timings"): ``loop``, ``fib``, ``mandel`` and the two heap programs ``sieve`` (a
byte array in one heap block) and ``alloc`` (GC-managed 16-byte objects kept
alive in a ring).

Method (docs/performance.md "Method": the machine is noisy):

* once per bench run, every ``NAME.vvs`` is assembled to a ``.vve`` with
  ``voxvm --vas`` and every ``NAME.c`` compiled with ``gcc -O2`` (or ``cc``),
  into a temporary directory;
* every measurement is a separate child process, and the runs are
  *interleaved*: repeat 1 of every (program, runner), then repeat 2, ...;
  the runners' order changes from repeat to repeat, as the rows of a
  Williams design (a Latin square balanced for carry-over) each followed by
  its reverse: over 2n repeats of n runners every runner runs right after
  every other one twice, and after any even number of repeats ``a`` has run
  right after ``b`` as often as ``b`` after ``a`` (the machine's state after
  one process can favour or slow the next);
* the figure is the **median CPU time** (user + system, from the kernel's
  child rusage) over the repeats;
* the whole-process ratios are also taken **repeat by repeat** (voxvm's run
  and the other command's run of the same repeat, seconds apart), in a third
  table: the median of those ratios, their lowest and highest, and in how
  many repeats voxvm took less CPU time. It says whether "below" holds in
  most repeats or only in the medians;
* two figures for voxvm: **whole process**, the CPU time of the installed
  console command ``voxvm --vve=NAME.vve`` (what a user times: start-up,
  imports, loading and the run), and **in-run**, the time inside
  ``Core.run()`` alone, reported by a child harness (this file's ``--child``)
  that assembles and runs the program in Python; the other languages are
  always whole processes (their start-up is 1-15 ms);
* the VM instruction count comes from an independent counter (the
  ``dispatch="count"`` loop: fusion off, one count per completed
  instruction), giving nanoseconds per VM instruction of the in-run time;
* every child's output is checked against the known result.

Lua runners are skipped when ``lua5.4`` / ``luajit`` are not installed
(``apt-get install lua5.4 luajit``), the C runner when there is no C compiler.

Usage::

    python tools/bench.py                      # everything, 5 repeats
    python tools/bench.py -r 3 -p fib -p loop  # fewer repeats / programs
    python tools/bench.py --dispatch switch    # the portable switch loop (in-run only)
    python tools/bench.py --markdown           # tables for docs/performance.md
    python tools/bench.py --baseline-python /tmp/base/bin/python --profile
        # this build against another one (same loop?), and what --profile costs

The ``baseline`` and ``--profile`` columns are in-run seconds (``Core.run()``),
like ``voxvm run s``; ``run / baseline`` near 1.00 says the plain loop
did not get slower (docs/performance.md "Debugging hooks").
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
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
    built = REPO / "voxvm" / "backends" / "compiled"
    if mode != "baseline" and any((built / f"_core{suffix}").exists()
                                  for suffix in importlib.machinery.EXTENSION_SUFFIXES):
        # This checkout's build (an editable install); a checkout without a compiled core
        # (a plain `pip install .`, as in CI) is measured through the installed package.
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
# parent: the runners and their one-off builds

@dataclass
class Runner:
    name: str
    command: list[str]           # program name is substituted for {p}
    in_run: bool = False         # a --child harness: its figure is Core.run() time, not the process's


@dataclass
class Setup:
    """What the runners need that is built once per bench run, and what the header says about it."""
    runners: list[Runner]
    voxvm: list[str]
    versions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def voxvm_command() -> list[str]:
    """The ``voxvm`` console script of this interpreter's environment (the command a user
    times), else ``python -m voxvm``.

    A ``voxvm`` found on PATH counts only if it runs with this interpreter, so that the
    whole-process and in-run columns measure the same installation.
    """
    for candidate in (str(Path(sys.executable).with_name("voxvm")), shutil.which("voxvm")):
        if candidate and os.access(candidate, os.X_OK) and _shebang_is_this_python(candidate):
            return [candidate]
    return [sys.executable, "-m", "voxvm"]


def _shebang_is_this_python(script: str) -> bool:
    try:
        with open(script, "rb") as file:
            first = file.readline(4096).decode("utf-8", "replace")
    except OSError:
        return False
    words = first[2:].split() if first.startswith("#!") else []
    return bool(words) and os.path.realpath(words[0]) == os.path.realpath(sys.executable)


def assemble_all(voxvm: list[str], programs: list[str], out: Path) -> None:
    """tools/bench/NAME.vvs -> OUT/NAME.vve with ``voxvm --vas`` (the user's way)."""
    for program in programs:
        result = subprocess.run(voxvm + [f"--vas={BENCH_DIR / f'{program}.vvs'}",
                                         f"--vas-out={out / f'{program}.vve'}"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"bench: voxvm --vas {program}.vvs failed ({result.returncode}): "
                             f"{result.stderr.strip()}")


def compile_all(programs: list[str], out: Path) -> tuple[str | None, str]:
    """tools/bench/NAME.c -> OUT/NAME with ``gcc -O2`` (else ``cc -O2``).

    Returns (the compiler, its version line), or (None, why not) when there is no
    compiler or it fails: the C column is then left out with that note.
    """
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        return None, "no C compiler (gcc or cc) on PATH: the C column is left out"
    for program in programs:
        result = subprocess.run([compiler, "-O2", "-o", str(out / program), str(BENCH_DIR / f"{program}.c")],
                                capture_output=True, text=True)
        if result.returncode != 0:
            first = (result.stderr.strip().splitlines() or ["no message"])[0]
            return None, f"{Path(compiler).name} -O2 {program}.c failed ({first}): the C column is left out"
    return compiler, _first_line([compiler, "--version"])


def _first_line(command: list[str]) -> str:
    """The first line a version query prints (stdout or stderr: lua -v writes to either)."""
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except OSError:
        return ""
    return ((result.stdout + result.stderr).strip().splitlines() or [""])[0]


def setup(args: argparse.Namespace, programs: list[str], tmp: Path) -> Setup:
    """The runners in column order: voxvm in-run harnesses first, then the whole processes."""
    voxvm = voxvm_command()
    assemble_all(voxvm, programs, tmp)
    child_args = ["--child", "{p}", args.dispatch]
    found = Setup([Runner("voxvm run", [sys.executable, __file__, *child_args], in_run=True)], voxvm)
    if args.baseline_python:
        found.runners.append(Runner("baseline", [args.baseline_python, __file__, *child_args, "baseline"], True))
    if args.profile:
        found.runners.append(Runner("--profile", [sys.executable, __file__, *child_args, "profile"], True))
    found.runners.append(Runner("voxvm", voxvm + [f"--vve={tmp}/{{p}}.vve"]))
    found.runners.append(Runner("CPython", [sys.executable, str(BENCH_DIR / "{p}.py")]))
    found.versions.append(f"CPython {platform.python_version()}")
    if not args.no_lua:
        lua = shutil.which("lua5.4") or shutil.which("lua")
        version = _first_line([lua, "-v"]) if lua else ""
        if "5.4" in version:
            found.runners.append(Runner("Lua 5.4", [lua, str(BENCH_DIR / "{p}.lua")]))
            found.versions.append(" ".join(version.split()[:2]))
        else:
            found.notes.append("no Lua 5.4 (lua5.4) on PATH: its column is left out")
        luajit = shutil.which("luajit")
        if luajit:
            found.runners.append(Runner("LuaJIT -joff", [luajit, "-joff", str(BENCH_DIR / "{p}.lua")]))
            found.runners.append(Runner("LuaJIT", [luajit, str(BENCH_DIR / "{p}.lua")]))
            found.versions.append(" ".join(_first_line([luajit, "-v"]).split()[:2]))
        else:
            found.notes.append("no luajit on PATH: the LuaJIT columns are left out")
    if not args.no_c:
        compiler, version = compile_all(programs, tmp)
        if compiler:
            found.runners.append(Runner(f"{Path(compiler).name} -O2", [str(tmp / "{p}")]))
            found.versions.append(version)
        else:
            found.notes.append(version)
    if args.dispatch != "goto":
        found.notes.append(f"--dispatch {args.dispatch} applies to the in-run columns only: "
                           "voxvm --vve runs the default loop")
    installed = _installed_voxvm()
    if installed and REPO not in Path(installed).resolve().parents:
        found.notes.append(f"the voxvm command runs the voxvm installed at {installed}, the in-run "
                           f"harness this checkout ({REPO}): pip install -e . to measure one build")
    return found


def _installed_voxvm() -> str | None:
    """Where this interpreter imports voxvm from (this script's sys.path has tools/, not the checkout)."""
    spec = importlib.util.find_spec("voxvm")
    return spec.origin if spec and spec.origin else None


# --------------------------------------------------------------------------
# parent: interleaved runs

def measure(runner: Runner, program: str) -> tuple[float, int | None]:
    """One child run: (seconds, executed or None). The seconds are the process's CPU time
    (user + system), or for an in-run harness the Core.run() time it reports."""
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
    if not runner.in_run:
        return cpu, None
    for line in lines:
        if line.startswith(MARKER):
            fields = dict(item.split("=") for item in line.split()[1:])
            return float(fields["run"]), int(fields["executed"])
    raise SystemExit(f"bench: {runner.name} {program} printed no {MARKER} line")


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
    _, executed = measure(Runner("count", [sys.executable, __file__, "--child", "{p}", "count"], True), program)
    return executed or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs="+", metavar="PROGRAM DISPATCH [MODE]", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-python", metavar="PY",
                        help="also run the voxvm installed for interpreter PY (another build, e.g. the "
                             "commit before a change to the loop), as the in-run column 'baseline'")
    parser.add_argument("--profile", action="store_true",
                        help="also run with the profiler on (--profile's loop), as the in-run column '--profile'")
    parser.add_argument("-r", "--repeats", type=int, default=5, help="interleaved repeats (default 5)")
    parser.add_argument("-p", "--program", action="append", choices=PROGRAMS, help="program(s) to run")
    parser.add_argument("--dispatch", default="goto", choices=("goto", "switch"),
                        help="the in-run harness's dispatch loop (voxvm --vve always runs the default)")
    parser.add_argument("--no-lua", action="store_true", help="skip the Lua runners")
    parser.add_argument("--no-c", action="store_true", help="skip the C runner (gcc -O2)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    if args.repeats < 1:
        parser.error("-r/--repeats must be at least 1")
    if args.baseline_python and not shutil.which(args.baseline_python):
        parser.error(f"--baseline-python: {args.baseline_python} is not an executable")
    command = shlex.join(sys.orig_argv if argv is None else [sys.executable, __file__, *argv])
    load_before = os.getloadavg()

    programs = list(dict.fromkeys(args.program or PROGRAMS))
    with tempfile.TemporaryDirectory(prefix="voxvm-bench-") as tmp:
        found = setup(args, programs, Path(tmp))
        counts = {p: instruction_count(p) for p in programs}
        samples: dict[tuple[str, str], list[float]] = {(r.name, p): [] for r in found.runners for p in programs}
        for repeat in range(args.repeats):
            for program in programs:
                for runner in ordered(found.runners, repeat):
                    samples[(runner.name, program)].append(measure(runner, program)[0])
            print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    med = {key: statistics.median(values) for key, values in samples.items()}
    report(args, found, programs, med, counts, command, load_before[0])
    report_paired(args, found, programs, samples)
    return 0


def williams_orders(n: int) -> list[list[int]]:
    """The orders of n runners, one per repeat, cyclically: the n rows of a Williams square,
    each followed by its reverse. Over the 2n orders every runner comes right after every
    other runner exactly twice (the rows alone do it once when n is even; their reverses
    make up for odd n), and after every even number of repeats ``a`` has come right after
    ``b`` as often as ``b`` after ``a``, so a short run is balanced pair by pair.

    The square's first row is 0, 1, n-1, 2, n-2, ...; row i adds i (mod n) to each entry.
    """
    first, low, high = [0], 1, n - 1
    while len(first) < n:
        if len(first) % 2:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
    orders = []
    for shift in range(n):
        row = [(entry + shift) % n for entry in first]
        orders += [row, row[::-1]]
    return orders


def ordered(runners: list[Runner], repeat: int) -> list[Runner]:
    """The runners in the order of repeat number ``repeat`` (0-based): williams_orders,
    cyclically."""
    orders = williams_orders(len(runners))
    return [runners[i] for i in orders[repeat % len(orders)]]


def paired_ratios(ours: list[float], theirs: list[float]) -> list[float]:
    """ours[i] / theirs[i] for every repeat i where both are above zero (tick-based CPU
    accounting can report 0 for a millisecond process: no ratio is then known)."""
    return [a / b for a, b in zip(ours, theirs) if a > 0 and b > 0]


def paired_cell(ratios: list[float], repeats: int) -> str:
    """'median [lowest-highest] below/repeats' of one column of repeat-by-repeat ratios;
    repeats without a ratio (a 0 s time) are named, not silently left out."""
    if not ratios:
        return "-"
    below = sum(ratio < 1 for ratio in ratios)
    cell = f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}] {below}/{len(ratios)}"
    missing = repeats - len(ratios)
    return cell + (f" ({missing} at 0 s left out)" if missing else "")


def report_paired(args: argparse.Namespace, found: Setup, programs: list[str],
                  samples: dict[tuple[str, str], list[float]]) -> None:
    """The third table: voxvm's whole process over each other command's, repeat by repeat."""
    against = [r.name for r in found.runners if not r.in_run][1:]
    print_section("Whole process, repeat by repeat: voxvm / other in the same repeat: median "
                  "[lowest-highest] and the repeats where voxvm took less CPU time", args.markdown,
                  ["program"] + [f"voxvm / {name}" for name in against],
                  [[p] + [paired_cell(paired_ratios(samples[("voxvm", p)], samples[(name, p)]), args.repeats)
                          for name in against] for p in programs])


def report(args: argparse.Namespace, found: Setup, programs: list[str], med: dict[tuple[str, str], float],
           counts: dict[str, int], command: str, load_before: float) -> None:
    """The header lines, then the whole-process table and the inside-the-run table."""
    print(f"# {time.strftime('%Y-%m-%d')}, {machine()}; load average {load_before:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end (a shared machine: compare ratios within one run)")
    print(f"# command: {command}")
    print(f"# median CPU seconds (user + system) of {args.repeats} interleaved run{'s' * (args.repeats != 1)} "
          f"of each command; {', '.join(found.versions)}")
    print(f"# voxvm whole process: {' '.join(found.voxvm)} --vve=NAME.vve; voxvm in-run: Core.run() in "
          f"{Path(__file__).name} --child NAME {args.dispatch}")
    for note in found.notes:
        print(f"# note: {note}")
    in_run = [r.name for r in found.runners if r.in_run]
    whole = [r.name for r in found.runners if not r.in_run]
    against = whole[1:]
    print_section("Whole process: CPU seconds of each command, voxvm = `voxvm --vve=NAME.vve`", args.markdown,
                  ["program"] + [f"{name} s" for name in whole] + [f"voxvm / {name}" for name in against],
                  [[p] + [_seconds(med[(name, p)]) for name in whole]
                   + [_ratio(med[("voxvm", p)], med[(name, p)]) for name in against] for p in programs])
    ours, extra = in_run[0], in_run[1:]
    print_section("Inside the run: voxvm's Core.run() seconds, against the other languages' whole processes",
                  args.markdown,
                  ["program"] + [f"{name} s" for name in in_run] + [f"run / {name}" for name in extra]
                  + [f"run / {name}" for name in against] + ["ns / VM instr", "VM instrs"],
                  [[p] + [_seconds(med[(name, p)]) for name in in_run]
                   + [_ratio(med[(ours, p)], med[(name, p)]) for name in extra + against]
                   + [f"{med[(ours, p)] / counts[p] * 1e9:.2f}" if counts[p] else "-", f"{counts[p]:,}"]
                   for p in programs])


def machine() -> str:
    """CPU model, architecture, CPU count and kernel, for the header line."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    model = model or platform.processor() or "unknown CPU"
    return f"{model} ({platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()})"


def _seconds(value: float) -> str:
    return f"{value:.3f}" if value >= 0.01 else f"{value:.4f}"


def _ratio(ours: float, theirs: float) -> str:
    """ours / theirs; '-' when theirs rounds to zero (the kernel's CPU accounting may be
    tick-based, and the C programs take milliseconds)."""
    return f"{ours / theirs:.2f}" if theirs > 0 else "-"


def print_section(title: str, markdown: bool, header: list[str], rows: list[list[str]]) -> None:
    print()
    print(f"**{title}**" if markdown else f"{title}:")
    if markdown:
        print()
    print_table(header, rows, markdown)


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
