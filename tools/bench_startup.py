#!/usr/bin/env python3
"""Start-up benchmark: wall time of ``voxvm --vve=hello.vve`` end to end.

Owns the start-up measurement of the execution-core issue (target <= 100 ms
wall). Assembles docs/examples/hello.vvs once, then runs the installed
``voxvm`` command and, interleaved with it, a bare ``python -c pass`` of the
same interpreter (the floor no Python program can beat) and the typer path
(``voxvm run hello.vve``). Reports medians. Not a test: timings depend on the
machine.

Usage: python tools/bench_startup.py [-n 21]
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

REPO = Path(__file__).resolve().parents[1]


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=21, help="runs of each command (default 21)")
    args = parser.parse_args()
    voxvm = shutil.which("voxvm")
    if voxvm is None:
        print("voxvm is not installed in this environment (pip install .)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        hello = os.path.join(tmp, "hello.vve")
        subprocess.run([voxvm, f"--vas={REPO / 'docs/examples/hello.vvs'}", f"--vas-out={hello}"],
                       check=True)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "voxvm --vve=hello.vve": [voxvm, f"--vve={hello}"],
            "voxvm run hello.vve (typer)": [voxvm, "run", hello],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.n):
            for name, cmd in commands.items():
                times[name].append(wall(cmd))
    for name, samples in times.items():
        print(f"{name:32s} median {statistics.median(samples) * 1000:6.1f} ms   "
              f"min {min(samples) * 1000:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
