"""The conformance vectors (tests/conformance/programs, bad-vve and concurrency) on every available backend.

Follows docs/conformance.md: assemble NAME.vvs (byte-identical
to NAME.vve where that exists), run with ``--init-ram=16MB
--init-stack-size=8MB --init-heap-size=8MB`` plus NAME.args and an empty
stdin, then compare stdout exactly, stderr without the ``voxvm:`` lines, and
the exit status. Most cases run in-process through the embedding API (``voxvm.Machine``) with
BytesIO streams (fast); a handful go through the real ``voxvm`` command line
in a subprocess; the heap programs also run with ``--gc-stress``. The
concurrency cases (threads and shared segments, docs/concurrency.md) run the
same three ways: in process from the golden .vve and from source, and through
the real command line (``--vve=`` and ``voxvm run NAME.vvs``).
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import conformance_dir
from voxvm import config as cfg
from voxvm.config import VMConfig
from voxvm.errors import VoxError
from voxvm.formats import load_vve
from voxasm import assemble_program as assemble        # a broken voxasm fails the suite, never skips tests
import voxvm

PROGRAMS = conformance_dir("programs")
BAD_VVE = conformance_dir("bad-vve")
CONCURRENCY = conformance_dir("concurrency")
BASE_ARGS = ["--init-ram=16MB", "--init-stack-size=8MB", "--init-heap-size=8MB"]

# Programs that need natives of a later issue (files, network, runcmd, FFI,
# concurrency 0x30-0x39). Strict: when those natives land, the XPASS fails and
# the entry must be removed.
NEEDS_LATER_NATIVES = {
}

# Programs whose output depends on the heap and the collector: also run with --gc-stress.
HEAP_PROGRAMS = [
    "dynamic_array", "gc_live_list", "heap_alloc_fail", "heap_bounds", "heap_free_faults",
    "heap_itoa", "heap_store_load", "linked_list", "memcpy_blocks", "ring_buffer",
    "store_load_partial", "storedat_string", "string_reverse", "ubd_utf8", "vowel_count",
    "tag_results", "dlbc_jmpr", "input_eof", "trap_bad_load_type", "exceptions_extended",
]

# Run through the real command line (subprocess), one per kind of outcome.
CLI_CASES = ["factorial", "print_strings", "trap_type_mismatch", "heap_alloc_fail", "div_zero"]


def program_names() -> list[str]:
    return sorted(p.stem for p in PROGRAMS.glob("*.vvs"))


def bad_vve_names() -> list[str]:
    return sorted(p.stem for p in BAD_VVE.glob("*.vve"))


def case_param(name: str):
    if name in NEEDS_LATER_NATIVES:
        return pytest.param(name, marks=pytest.mark.xfail(reason=NEEDS_LATER_NATIVES[name],
                                                          strict=True))
    return name


def config_from_args(args: list[str], backend: str) -> VMConfig:
    """The VMConfig the command line would build from these flags (voxvm.config.RUN_OPTIONS)."""
    return cfg.config_from_args(args, backend=backend)


def case_args(name: str, folder: Path = PROGRAMS) -> list[str]:
    path = folder / f"{name}.args"
    return BASE_ARGS + (path.read_text().split() if path.exists() else [])


@functools.lru_cache(maxsize=None)
def case_program(name: str, folder: Path = PROGRAMS):
    """The program to run: the golden .vve if there is one, else NAME.vvs assembled."""
    golden = folder / f"{name}.vve"
    if golden.exists():
        return load_vve(golden.read_bytes(), str(golden))
    source = folder / f"{name}.vvs"
    return assemble(source.read_bytes(), str(source))


def strip_vm_lines(stderr: bytes) -> bytes:
    """Program stderr: every line the VM itself wrote starts with ``voxvm:`` (README)."""
    return b"".join(line for line in stderr.splitlines(keepends=True)
                    if not line.startswith(b"voxvm:"))


def run_in_process(program, config: VMConfig) -> tuple[int, bytes, bytes]:
    """One run through the embedding API (voxvm.Machine), which must print what the command line prints."""
    machine = voxvm.Machine(program)
    machine.config = config
    result = machine.run(b"")
    return result.exit_status, result.stdout, result.stderr


def check_outcome(folder: Path, name: str, rc: int, stdout: bytes, stderr: bytes) -> None:
    expected_rc = int((folder / f"{name}.rc").read_text().strip())
    vm_lines = [line for line in stderr.splitlines() if line.startswith(b"voxvm:")]
    assert stdout == (folder / f"{name}.stdout").read_bytes(), f"stdout differs; VM said {vm_lines}"
    assert strip_vm_lines(stderr) == (folder / f"{name}.stderr").read_bytes(), "stderr differs"
    assert rc == expected_rc, f"exit status {rc}, expected {expected_rc}; VM said {vm_lines}"


# ---------------------------------------------------------------- programs/

@pytest.mark.parametrize("name", [case_param(n) for n in program_names()])
def test_program(name: str, backend: str) -> None:
    program = case_program(name)
    rc, stdout, stderr = run_in_process(program, config_from_args(case_args(name), backend))
    check_outcome(PROGRAMS, name, rc, stdout, stderr)


@pytest.mark.parametrize("name", [case_param(n) for n in HEAP_PROGRAMS])
def test_program_gc_stress(name: str, backend: str) -> None:
    """No expectation depends on when the collector runs (README): collect before every allocation."""
    program = case_program(name)
    rc, stdout, stderr = run_in_process(program, config_from_args(case_args(name) + ["--gc-stress"],
                                                                  backend))
    check_outcome(PROGRAMS, name, rc, stdout, stderr)


def test_heap_program_list_is_current() -> None:
    names = set(program_names())
    assert set(HEAP_PROGRAMS) <= names
    uses_heap = {n for n in names if any(m in (PROGRAMS / f"{n}.vvs").read_text()
                                         for m in ("alloc", "store ", "memcpy", "storedat"))}
    assert uses_heap <= set(HEAP_PROGRAMS) | set(NEEDS_LATER_NATIVES), \
        f"add these heap programs to HEAP_PROGRAMS: {sorted(uses_heap - set(HEAP_PROGRAMS))}"


@pytest.mark.parametrize("name", [n for n in program_names()])
def test_program_assembles_to_golden(name: str) -> None:
    """README step 1: NAME.vvs assembles, byte-identical to NAME.vve where that exists."""
    from voxvm.formats import build_vve

    source = PROGRAMS / f"{name}.vvs"
    program = assemble(source.read_bytes(), str(source))
    golden = PROGRAMS / f"{name}.vve"
    if golden.exists():
        assert build_vve(program) == golden.read_bytes()


@pytest.mark.parametrize("name", [case_param(n) for n in program_names()])
def test_program_from_source(name: str, backend: str) -> None:
    """README step 2: running NAME.vvs assembled in memory gives the same result."""
    source = PROGRAMS / f"{name}.vvs"
    program = assemble(source.read_bytes(), str(source))
    rc, stdout, stderr = run_in_process(program, config_from_args(case_args(name), backend))
    check_outcome(PROGRAMS, name, rc, stdout, stderr)


# ---------------------------------------------------------------- concurrency/

def concurrency_names() -> list[str]:
    return sorted(p.stem for p in CONCURRENCY.glob("*.vvs"))


def test_concurrency_cases_exist() -> None:
    assert {"conc_counter", "conc_shm_ops"} <= set(concurrency_names())


@pytest.mark.parametrize("name", concurrency_names())
def test_concurrency_assembles_to_golden(name: str) -> None:
    from voxvm.formats import build_vve

    source = CONCURRENCY / f"{name}.vvs"
    program = assemble(source.read_bytes(), str(source))
    golden = CONCURRENCY / f"{name}.vve"
    if golden.exists():
        assert build_vve(program) == golden.read_bytes()


@pytest.mark.parametrize("name", concurrency_names())
def test_concurrency_program(name: str, backend: str) -> None:
    program = case_program(name, CONCURRENCY)
    rc, stdout, stderr = run_in_process(program, config_from_args(case_args(name, CONCURRENCY), backend))
    check_outcome(CONCURRENCY, name, rc, stdout, stderr)


@pytest.mark.parametrize("name", concurrency_names())
def test_concurrency_program_from_source(name: str, backend: str) -> None:
    source = CONCURRENCY / f"{name}.vvs"
    program = assemble(source.read_bytes(), str(source))
    rc, stdout, stderr = run_in_process(program, config_from_args(case_args(name, CONCURRENCY), backend))
    check_outcome(CONCURRENCY, name, rc, stdout, stderr)


@pytest.mark.parametrize("how", ["vve", "run-vvs"])
@pytest.mark.parametrize("name", concurrency_names())
def test_concurrency_via_cli(name: str, how: str, backend: str, tmp_path: Path) -> None:
    args = case_args(name, CONCURRENCY) + [f"--backend={backend}"]
    golden = CONCURRENCY / f"{name}.vve"
    if how == "vve" and golden.exists():
        run = _cli([f"--vve={golden}", *args], tmp_path)
    else:
        run = _cli(["run", str(CONCURRENCY / f"{name}.vvs"), *args], tmp_path)
    check_outcome(CONCURRENCY, name, run.returncode, run.stdout, run.stderr)


# ---------------------------------------------------------------- bad-vve/

@pytest.mark.parametrize("name", bad_vve_names())
def test_bad_vve(name: str, backend: str) -> None:
    path = BAD_VVE / f"{name}.vve"
    expected_rc = int((BAD_VVE / f"{name}.rc").read_text().strip())
    try:
        program = load_vve(path.read_bytes(), str(path))
    except VoxError as error:
        rc = int(error.exit_status)
        assert rc == expected_rc, f"loader rejected it ({error}) with {rc}, expected {expected_rc}"
        return
    assert expected_rc != 65, "the loader accepted a file that must be rejected"
    rc, stdout, stderr = run_in_process(program, config_from_args(BASE_ARGS, backend))
    check_outcome(BAD_VVE, name, rc, stdout, stderr)


# ---------------------------------------------------------------- the real command line

def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # The installed package, as a user runs it: no PYTHONPATH to the source tree, whose
    # voxvm/ has no compiled core after a plain `pip install .` (CI).
    return subprocess.run([sys.executable, "-m", "voxvm", *args], cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120)


@pytest.mark.parametrize("name", CLI_CASES)
def test_program_via_cli(name: str, backend: str, tmp_path: Path) -> None:
    out = tmp_path / "OUT.vve"
    assembled = _cli([f"--vas={PROGRAMS / name}.vvs", f"--vas-out={out}"], tmp_path)
    assert assembled.returncode == 0, assembled.stderr.decode()
    golden = PROGRAMS / f"{name}.vve"
    if golden.exists():
        assert out.read_bytes() == golden.read_bytes()
    run = _cli([f"--vve={out}", *case_args(name), f"--backend={backend}"], tmp_path)
    check_outcome(PROGRAMS, name, run.returncode, run.stdout, run.stderr)


@pytest.mark.parametrize("name", ["unknown_opcode", "bad_magic"])
def test_bad_vve_via_cli(name: str, backend: str, tmp_path: Path) -> None:
    run = _cli([f"--vve={BAD_VVE / name}.vve", *BASE_ARGS, f"--backend={backend}"], tmp_path)
    expected_rc = int((BAD_VVE / f"{name}.rc").read_text().strip())
    assert run.returncode == expected_rc, run.stderr.decode()
    if expected_rc == 65:
        assert run.stdout == b""
        assert run.stderr.startswith(b"voxvm:")
    else:
        check_outcome(BAD_VVE, name, run.returncode, run.stdout, run.stderr)
