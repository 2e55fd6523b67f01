#!/usr/bin/env python3
"""Start-up benchmark: CPU and wall time of a whole ``voxvm`` process, next to its floors.

Owns the start-up measurement of the start-up issue (targets: ``voxvm
--vve=hello.vve`` at most 20 ms of CPU, ``voxvm run hello.vvs`` at most
40 ms, medians). Assembles docs/examples/hello.vvs once, then runs,
interleaved so that the machine's noise hits every command alike:

* ``python3 -S -c pass`` and ``python -c pass`` (this interpreter, with and
  without ``site``): the floor no Python program can beat;
* ``lua5.4 -e ''`` and ``luajit -e ''`` when installed: what users compare with;
* ``voxvm --vve=hello.vve`` (the fast path), ``voxvm run hello.vvs``
  (assembly in memory), ``voxvm run hello.vve`` (the typer path).

CPU is user + system time of the child (``os.wait4``), wall is elapsed time;
both are medians over ``-n`` rounds. ``--imports`` also prints the modules a
plain run imports with their own import time (``python -X importtime``),
largest first, and the total. Not a test: timings depend on the machine.

Usage: python tools/bench_startup.py [-n 31] [--imports]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from argtypes import positive_int  # tools/argtypes.py

REPO = Path(__file__).resolve().parents[1]


def measure(cmd: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of ``cmd``; output discarded."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        child = subprocess.Popen(cmd, stdout=null, stderr=null)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with status {child.returncode}")
    return usage.ru_utime + usage.ru_stime, wall


def import_breakdown(cmd: list[str], top: int) -> None:
    """The modules ``cmd`` (a ``python -m voxvm ...`` command) imports, by own time."""
    done = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        rows.append((int(own), int(cumulative), name.strip()))
    total = sum(own for own, _, _ in rows)
    print(f"\n{len(rows)} modules imported, {total / 1000:.1f} ms of import time in all; largest own times:")
    for own, cumulative, name in sorted(rows, reverse=True)[:top]:
        print(f"  {own / 1000:6.2f} ms  (with its imports {cumulative / 1000:6.2f} ms)  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=positive_int, default=31, help="rounds (default 31)")
    parser.add_argument("--imports", action="store_true", help="also print the import-time breakdown")
    parser.add_argument("--top", type=positive_int, default=25, help="modules listed by --imports (default 25)")
    args = parser.parse_args()
    # this interpreter's own console script first (a venv run without activating it), then PATH's
    voxvm = next((candidate for candidate in (str(Path(sys.executable).with_name("voxvm")), shutil.which("voxvm"))
                  if candidate and os.access(candidate, os.X_OK)), None)
    if voxvm is None:
        print("voxvm is not installed in this environment (pip install .)", file=sys.stderr)
        return 2
    source = REPO / "docs" / "examples" / "hello.vvs"
    with tempfile.TemporaryDirectory() as tmp:
        hello = os.path.join(tmp, "hello.vve")
        subprocess.run([voxvm, f"--vas={source}", f"--vas-out={hello}"], check=True)
        commands = {
            "python3 -S -c pass": [sys.executable, "-S", "-c", "pass"],
            "python -c pass": [sys.executable, "-c", "pass"],
        }
        for lua in ("lua5.4", "luajit"):
            if shutil.which(lua):
                commands[f"{lua} -e ''"] = [lua, "-e", ""]
            else:
                print(f"note: no {lua} on PATH: its row is left out", file=sys.stderr)
        commands.update({
            "voxvm --vve=hello.vve": [voxvm, f"--vve={hello}"],
            "voxvm run hello.vvs": [voxvm, "run", str(source)],
            "voxvm run hello.vve (typer)": [voxvm, "run", hello],
        })
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        wall: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.n):
            for name, cmd in commands.items():
                c, w = measure(cmd)
                cpu[name].append(c)
                wall[name].append(w)
        print(f"{'command':30s} {'CPU median':>11s} {'wall median':>12s} {'wall min':>9s}   ({args.n} rounds)")
        for name in commands:
            print(f"{name:30s} {statistics.median(cpu[name]) * 1000:8.1f} ms "
                  f"{statistics.median(wall[name]) * 1000:9.1f} ms {min(wall[name]) * 1000:6.1f} ms")
        if args.imports:
            import_breakdown([sys.executable, "-m", "voxvm", f"--vve={hello}"], args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
