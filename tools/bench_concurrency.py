#!/usr/bin/env python3
"""Benchmarks of the concurrency extension: atomics, parallel speed-up, cross-process latency.

Owns the concurrency benchmark (not a test: timings depend on the machine;
docs/concurrency.md "Performance" quotes its figures). Three measurements,
each in separate child processes, repeated and interleaved, medians reported:

* ``atomics``: T threads (spawned by one program) each doing M ``shm_add`` of 1
  on one shared word, T = 1 and 8, M = 10^6 by default: wall time of the run
  divided by T·M (ns per atomic operation, contended for T > 1), and the
  total, which must be exactly T·M;
* ``speedup``: K copies of a CPU-bound program (``s += i`` for 3·10^7 i) run
  at once (``voxvm.machine.run_programs``, one OS thread each) against the
  same K programs one after another, K = 2 and 4: the ratio of wall times
  is the parallel speed-up (at most min(K, cores));
* ``pingpong``: two ``voxvm`` processes sharing ``--shm=4096:FILE`` bounce a
  counter N times (each spins on ``shm_load`` until the other's store
  arrives); the round-trip latency is (T(N) - T(N/10)) / (0.9·N), so process
  start-up cancels out.

Usage::

    python tools/bench_concurrency.py                 # everything, compiled core, 5 repeats
    python tools/bench_concurrency.py atomics -r 3 --adds 200000
    python tools/bench_concurrency.py --backend=python --adds 2000 --loop 100000 --rounds 2000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from argtypes import positive_int  # tools/argtypes.py

REPO = Path(__file__).resolve().parents[1]
MARKER = "@@bench"

COUNTER = """\
section text
.start
    uload r10 0
    uload r11 {threads}
label spawn
    fnstind r1 @worker
    uload r2 {adds}
    ncall 0x30 r0
    push r0
    uinc r10
    ucmp r10 r11
    jl @spawn
label join
    pop r1
    ncall 0x31 r0
    udec r11
    jnz @join
    uload r1 0
    uload r2 0
    ncall 0x34 r0
    movr r1 r0
    uload r2 1
    ncall 1 r0
    halt

func worker
    movr r20 r1
    uload r1 0
    uload r2 0
    uload r3 1
label again
    ncall 0x36 r0
    udec r20
    jnz @again
    ret
"""

LOOP = """\
section text
.start
    uload r1 0
    uload r2 0
    uload r3 {n}
label loop
    uadd r1 r2
    uinc r2
    ucmp r2 r3
    jl @loop
    uload r2 1
    ncall 1 r0
    halt
"""

# Word 0: the pinger's count, word 8: the ponger's. Each side spins on the other's word;
# after 2^16 failed tries it sleeps 1 ms (only when the other process is not running).
PING = """\
section text
.start
    uload r20 1
    uload r21 {rounds}
label round
    uload r1 0
    uload r2 0
    movr r3 r20
    ncall 0x35 r0
    uload r22 0
label wait
    uload r1 0
    uload r2 8
    ncall 0x34 r0
    ucmp r0 r20
    jz @answered
    call @backoff
    jmp @wait
label answered
    ucmp r20 r21
    uinc r20
    jl @round
    halt
{backoff}
"""

PONG = """\
section text
.start
    uload r20 1
    uload r21 {rounds}
label round
    uload r22 0
label wait
    uload r1 0
    uload r2 0
    ncall 0x34 r0
    ucmp r0 r20
    jz @asked
    call @backoff
    jmp @wait
label asked
    uload r1 0
    uload r2 8
    movr r3 r20
    ncall 0x35 r0
    ucmp r20 r21
    uinc r20
    jl @round
    halt
{backoff}
"""

BACKOFF = """\
func backoff
    uinc r22
    uload r5 65535
    and r5 r22
    uload r6 0
    ucmp r5 r6
    jnz @spin
    uload r1 1
    ncall 6 r0
label spin
    ret
"""


def _run(sources: list[str], backend: str, flags: list[str]) -> tuple[float, bytes]:
    """Wall time of ``run_programs`` (assembly and start-up excluded) and its stdout."""
    import io

    sys.path.insert(0, str(REPO))
    from voxasm import assemble_program as assemble
    from voxvm.config import config_from_args
    from voxvm.machine import run_programs

    programs = [assemble(text.encode(), f"bench{i}.vvs") for i, text in enumerate(sources)]
    config = config_from_args(flags, backend=backend)
    out = io.BytesIO()
    start = time.perf_counter()
    rc = run_programs(programs, config, io.BytesIO(), out, sys.stderr.buffer)
    elapsed = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(f"bench_concurrency: a run failed with status {rc}")
    return elapsed, out.getvalue()


def child(args: argparse.Namespace) -> int:
    kind, value = args.child
    count = int(value)
    # Warm up (the first run of a process imports the host natives and touches fresh pages).
    _run([COUNTER.format(threads=2, adds=1)], args.backend, ["--shm=64"])
    if kind == "atomics":
        elapsed, out = _run([COUNTER.format(threads=count, adds=args.adds)], args.backend, ["--shm=64"])
        total = int(out.split()[-1])
        print(f"{MARKER} seconds={elapsed:.6f} total={total}")
    elif kind == "parallel":
        elapsed, _ = _run([LOOP.format(n=args.loop)] * count, args.backend, [])
        print(f"{MARKER} seconds={elapsed:.6f}")
    elif kind == "sequential":
        elapsed = sum(_run([LOOP.format(n=args.loop)], args.backend, [])[0] for _ in range(count))
        print(f"{MARKER} seconds={elapsed:.6f}")
    return 0


def measure(kind: str, value: int, args: argparse.Namespace) -> dict[str, float]:
    result = subprocess.run([sys.executable, __file__, "--child", kind, str(value),
                             f"--backend={args.backend}", f"--adds={args.adds}", f"--loop={args.loop}"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"bench_concurrency: {kind} {value} failed:\n{result.stderr}")
    for line in result.stdout.splitlines():
        if line.startswith(MARKER):
            return {k: float(v) for k, v in (f.split("=") for f in line.split()[1:])}
    raise SystemExit(f"bench_concurrency: {kind} {value} printed no measurement")


def pingpong(rounds: int, folder: str, backend: str, tag: str) -> float:
    """Wall time of one ping-pong pair of ``voxvm`` processes over a fresh file segment."""
    path = os.path.join(folder, f"pingpong-{tag}.dump")
    if os.path.exists(path):
        os.unlink(path)
    files = []
    for name, template in (("ping", PING), ("pong", PONG)):
        source = os.path.join(folder, f"{name}.vvs")
        with open(source, "w") as f:
            f.write(template.format(rounds=rounds, backoff=BACKOFF))
        files.append(source)
    command = [sys.executable, "-m", "voxvm", "run", f"--shm=4096:{path}", f"--backend={backend}"]
    start = time.perf_counter()
    pong = subprocess.Popen([*command, files[1]], cwd=folder)
    ping = subprocess.run([*command, files[0]], cwd=folder)
    pong.wait()
    elapsed = time.perf_counter() - start
    if ping.returncode or pong.returncode:
        raise SystemExit("bench_concurrency: a ping-pong process failed")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="*", metavar="atomics|speedup|pingpong",
                        help="measurements to run (default: all)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    parser.add_argument("-r", "--repeats", type=positive_int, default=5, help="interleaved repeats (default 5)")
    parser.add_argument("--backend", default="cython", choices=["cython", "python"])
    parser.add_argument("--adds", type=positive_int, default=1_000_000, help="shm_add per thread (default 10^6)")
    parser.add_argument("--loop", type=positive_int, default=30_000_000, help="iterations of the CPU-bound program")
    parser.add_argument("--rounds", type=positive_int, default=100_000,
                        help="ping-pong round trips (default 10^5; at least 20: a tenth of them is run "
                             "too, to remove the start-up)")
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    what = args.what or ["atomics", "speedup", "pingpong"]
    unknown = set(what) - {"atomics", "speedup", "pingpong"}
    if unknown:
        parser.error(f"unknown measurement: {', '.join(sorted(unknown))}")
    print(f"backend {args.backend}; {os.cpu_count()} CPUs; {args.repeats} interleaved repeats, medians")

    if "atomics" in what:
        runs: dict[int, list[float]] = {1: [], 8: []}
        for _ in range(args.repeats):
            for threads in runs:
                m = measure("atomics", threads, args)
                if int(m["total"]) != threads * args.adds:
                    raise SystemExit(f"bench_concurrency: {threads} x {args.adds} adds gave {int(m['total'])}")
                runs[threads].append(m["seconds"])
        for threads, seconds in runs.items():
            ns = statistics.median(seconds) / (threads * args.adds) * 1e9
            print(f"atomics  {threads} thread(s) x {args.adds} shm_add: {ns:7.1f} ns per op "
                  f"(total exact: {threads * args.adds})")

    if "speedup" in what:
        for k in (2, 4):
            parallel, sequential = [], []
            for _ in range(args.repeats):
                parallel.append(measure("parallel", k, args)["seconds"])
                sequential.append(measure("sequential", k, args)["seconds"])
            p, s = statistics.median(parallel), statistics.median(sequential)
            print(f"speedup  {k} programs of {args.loop} iterations: one after another {s:.3f} s, "
                  f"at once {p:.3f} s, speed-up {s / p:.2f}x")

    if "pingpong" in what:
        if args.rounds < 20:
            parser.error("--rounds: at least 20 (the start-up is removed by also running a tenth of them)")
        small = args.rounds // 10
        with tempfile.TemporaryDirectory() as folder:
            big_runs, small_runs = [], []
            for i in range(args.repeats):
                big_runs.append(pingpong(args.rounds, folder, args.backend, f"b{i}"))
                small_runs.append(pingpong(small, folder, args.backend, f"s{i}"))
        per_round = (statistics.median(big_runs) - statistics.median(small_runs)) / (args.rounds - small)
        print(f"pingpong two processes, {args.rounds} round trips: {per_round * 1e6:.2f} us per round trip "
              f"(start-up removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
