#!/usr/bin/env python3
"""Benchmark of FFI calls: 10^6 ncalls of a foreign function, in ns per call.

Owns the FFI benchmark (not a test: timings depend on the machine). It builds
the example libraries nconfigs/libs/*.c with the system C compiler into a
temporary copy of nconfigs/, then times one loop of 10^6 iterations per case,
run through ``voxvm.machine.Machine`` as the ``voxvm`` command runs it:

* ``empty``: the loop alone (uinc, ucmp, jl), subtracted from every other case;
* ``upstream``: ``unsigned_add`` through upstream's VMValue ABI (test.toml, 0x100);
* ``typed``: ``vv_add``, signature ``u64(u64,u64)`` (strings.toml, 0x11e);
* ``cos``: libm's ``cos``, signature ``f64(f64)`` (libm.toml, 0x200);
* ``exit``: the built-in ``unixtime`` (0x05), which has no C half and so leaves
  the loop for its Python handler on every call: what every FFI call would
  cost if it ran in Python.

On the compiled backend the FFI cases never leave the loop (csrc/vv_ffi.h);
``--python`` adds the reference backend (ctypes per call; slow). The figure is
the median CPU time of ``Machine.run`` over the repeats, minus the empty loop,
divided by the number of calls.

Usage::

    python tools/bench_ffi.py            # 5 repeats, compiled backend
    python tools/bench_ffi.py -r 3 --python
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from argtypes import positive_int  # tools/argtypes.py

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

N = 1_000_000
CASES = {                     # name: (setup, ncall code or None)
    "empty": ("uload r1 5\n    uload r2 7", None),
    "upstream": ("uload r1 5\n    uload r2 7", 0x100),
    "typed": ("uload r1 5\n    uload r2 7", 0x11E),
    "cos": ("fload r1 0.5", 0x200),
    "exit": ("uload r1 5", 0x05),
}


def program(setup: str, code: int | None) -> str:
    call = f"    ncall 0x{code:x} r0\n" if code is not None else ""
    return (f".start\n    uload r10 0\n    uload r11 {N}\n    {setup}\nlabel loop\n{call}"
            "    uinc r10\n    ucmp r10 r11\n    jl @loop\n    halt\n")


def build_nconfigs(folder: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        sys.exit("bench_ffi: needs a C compiler (cc) to build nconfigs/libs/*.c")
    from voxvm.host.ffi import host_library_name

    (folder / "libs").mkdir(parents=True)
    for config in (REPO / "nconfigs").glob("*.toml"):
        shutil.copy(config, folder / config.name)
    for source in (REPO / "nconfigs" / "libs").glob("*.c"):
        target = folder / "libs" / host_library_name(source.stem)
        subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(target), str(source)], check=True)
    return folder


def time_case(name: str, backend: str, configs: Path) -> float:
    import io

    from voxasm import assemble_program as assemble
    from voxvm.config import VMConfig
    from voxvm.machine import Machine

    setup, code = CASES[name]
    prog = assemble(program(setup, code), f"{name}.vvs")
    machine = Machine(prog, VMConfig(backend=backend, native_configs=str(configs)),
                      stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=io.BytesIO())
    start = time.process_time()
    machine.run()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--repeat", type=positive_int, default=5)
    parser.add_argument("--python", action="store_true", help="also the reference backend (slow)")
    args = parser.parse_args(argv)
    backends = ["cython"] + (["python"] if args.python else [])
    with tempfile.TemporaryDirectory() as tmp:
        configs = build_nconfigs(Path(tmp) / "nconfigs")
        for backend in backends:
            repeat = args.repeat if backend == "cython" else 1
            times = {name: [] for name in CASES}
            for _ in range(repeat):             # interleaved, so drift hits every case alike
                for name in CASES:
                    times[name].append(time_case(name, backend, configs))
            empty = statistics.median(times["empty"])
            print(f"backend {backend}: {N} calls per case, median of {repeat}; loop alone "
                  f"{empty * 1e9 / N:.1f} ns/iteration")
            for name in CASES:
                if name != "empty":
                    per_call = (statistics.median(times[name]) - empty) * 1e9 / N
                    print(f"  {name:9s} {per_call:9.1f} ns/call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
