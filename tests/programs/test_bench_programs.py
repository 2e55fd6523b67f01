"""The benchmark programs (tools/bench/) compute what they claim.

tools/bench.py runs them at full size and checks the printed result; here the
heap programs' sources (sieve.*, alloc.*) run at reduced sizes (the size literal
replaced) on every backend, against an independent computation and against their
CPython, Lua and C versions, and the C versions of all five run at full size
(a fraction of a second), so a broken benchmark program is found by the suite, not
at measuring time.
"""

from __future__ import annotations

import ast
import io
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from voxasm import assemble_program as assemble
from voxvm.config import VMConfig
from voxvm.machine import run_program

BENCH = REPO / "tools" / "bench"
C_COMPILER = shutil.which("gcc") or shutil.which("cc")
needs_cc = pytest.mark.skipif(C_COMPILER is None, reason="no C compiler (gcc or cc) on PATH")
FULL_SIZE = {"sieve": "10000000", "alloc": "5000000"}
RING = 1024


def resized(program: str, suffix: str, size: int) -> str:
    """tools/bench/PROGRAM.SUFFIX with its size literal replaced by `size`."""
    text = (BENCH / f"{program}.{suffix}").read_text(encoding="utf-8")
    assert FULL_SIZE[program] in text, f"{program}.{suffix}: size literal not found"
    return text.replace(FULL_SIZE[program], str(size))


def run_vvs(program: str, size: int, backend: str, **config) -> str:
    out, err = io.BytesIO(), io.BytesIO()
    path = str(BENCH / f"{program}.vvs")
    status = run_program(assemble(resized(program, "vvs", size), path),
                         VMConfig(backend=backend, **config), stdout=out, stderr=err)
    assert status == 0, err.getvalue().decode()
    return out.getvalue().decode().strip()


def primes_up_to(n: int) -> int:
    return sum(1 for k in range(2, n + 1) if all(k % d for d in range(2, int(k ** 0.5) + 1)))


def alloc_checksum(n: int) -> int:
    """Sum of old.next.value over the dropped objects: values 1 .. n - RING."""
    return (n - RING) * (n - RING + 1) // 2


@pytest.mark.parametrize("size", [2, 3, 30_000])
def test_sieve(backend, size):
    assert run_vvs("sieve", size, backend) == str(primes_up_to(size))


def test_alloc(backend):
    assert run_vvs("alloc", 25_000, backend) == str(alloc_checksum(25_000))


def test_alloc_collecting_before_every_allocation(backend):
    """With --gc-stress every allocation collects first: live objects (reachable
    only through the ring block and the next fields) must survive intact."""
    assert run_vvs("alloc", RING + 300, backend, gc_stress=True) == str(alloc_checksum(RING + 300))


def compile_c(source, out) -> str:
    """`cc -O2` as tools/bench.py builds the C column; returns the executable's path."""
    result = subprocess.run([C_COMPILER, "-O2", "-o", str(out), str(source)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return str(out)


@pytest.mark.parametrize("program, size, expected", [
    ("sieve", 30_000, primes_up_to(30_000)),
    ("alloc", 25_000, alloc_checksum(25_000)),
])
def test_python_lua_and_c_versions_agree(tmp_path, program, size, expected):
    script = tmp_path / f"{program}.py"
    script.write_text(resized(program, "py", size), encoding="utf-8")
    runners = [[sys.executable, str(script)]]
    lua_script = tmp_path / f"{program}.lua"
    lua_script.write_text(resized(program, "lua", size), encoding="utf-8")
    for lua in ("lua5.4", "luajit"):
        if shutil.which(lua):
            runners.append([lua, str(lua_script)])
    if C_COMPILER:
        c_source = tmp_path / f"{program}.c"
        c_source.write_text(resized(program, "c", size), encoding="utf-8")
        runners.append([compile_c(c_source, tmp_path / program)])
    for command in runners:
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(expected), command


def bench_expected() -> dict[str, int]:
    """tools/bench.py's EXPECTED (the results every runner's output is checked against),
    read as the literal it is rather than by importing the script."""
    tree = ast.parse((REPO / "tools" / "bench.py").read_text(encoding="utf-8"))
    return next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                and any(isinstance(target, ast.Name) and target.id == "EXPECTED" for target in node.targets))


@needs_cc
@pytest.mark.parametrize("program, expected", sorted(bench_expected().items()))
def test_c_version_prints_the_expected_result(tmp_path, program, expected):
    """The C column's programs at full size (gcc -O2: at most about 0.1 s each)."""
    result = subprocess.run([compile_c(BENCH / f"{program}.c", tmp_path / program)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{expected}\n"
