"""A plain run imports only what it needs (start-up; docs/performance.md "Start-up").

Start-up time is measured by tools/bench_startup.py, never asserted; what these
tests pin is the cause: the modules a run imports beyond the interpreter's
own start-up. Each heavy module listed here once cost milliseconds per run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import voxvm
from voxvm.formats import build_vve
from voxvm.isa import BY_MNEMONIC
from voxvm.machine import compiled_core_class
from voxvm.program import Program

# What a run imports is pinned for the default backend, the compiled core; a pure-Python
# install runs the reference backend, which needs the opcode table, typing and ctypes.
pytestmark = pytest.mark.skipif(compiled_core_class() is None,
                                reason="no compiled core: runs use the reference backend")

# Modules a run of a .vve must not import (unless the interpreter's start-up already did).
HEAVY = ["typer", "click", "construct", "dataclasses", "typing", "re", "inspect", "ast", "random",
         "socket", "ipaddress", "subprocess", "traceback", "pygments", "tomllib", "ctypes",
         "voxvm.host.files", "voxvm.host.net", "voxvm.host.proc", "voxvm.host.ffi", "voxasm",
         # ... nor what a run that traps or calls a Python native needs, nor what the
         # enum and namedtuple machinery would bring (voxvm/numbered.py, voxvm/records.py)
         "enum", "collections", "functools", "threading", "signal", "importlib", "bisect",
         "voxvm.traps", "voxvm.values", "voxvm.host.registry", "voxvm.isa",
         # ... nor the capability rules when no --allow-*/--sandbox flag was given
         "voxvm.host.capabilities",
         # ... nor small modules that cost more to import than they do here (the header's
         # fields, one error number, a field getter)
         "struct", "errno", "_operator"]
# Assembling a typical file (TYPICAL below) with the compiled scanner needs neither the
# opcode table's enum classes, nor the Python encoders, nor regular expressions, nor the
# array module (which imports collections) (docs/performance.md "The assembler").
HEAVY_FOR_ASSEMBLY = ["typer", "click", "construct", "dataclasses", "typing", "re", "enum", "functools",
                      "collections", "array", "tempfile", "random", "shutil", "voxvm.isa", "voxasm.encoding",
                      "voxasm._fast_encoders"]
# ... and a run of a .vvs source (which needs the assembler) must not import either.
HEAVY_FOR_SOURCE = ["typer", "click", "construct", "dataclasses", "typing", "inspect", "pygments",
                    "voxvm.host.files", "voxvm.host.net", *HEAVY_FOR_ASSEMBLY]
TYPICAL = """\
section text
.start
    call @main
    halt
func main
    uload r1 5              ; a comment
    uload r2 0x10
    iload r3 -2
    fload r4 1.5
label top
    dsload r5 value 0
    udec r1
    jnz @top
    jmp @done
label done
    ret
section data
    value uint 7
    greeting str "hi; there"
    ratio float 0.5
    table int[3] [1, -2, 3]
    limit const int -4
"""

PROBE = """\
import sys
before = set(sys.modules)
from voxvm.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(set(sys.modules) - before)))
"""


def imported_by(tmp_path, *args: str) -> set[str]:
    halt = bytes([BY_MNEMONIC["halt"].code])
    (tmp_path / "p.vve").write_bytes(build_vve(Program(image=halt)))
    (tmp_path / "p.vvs").write_text("section text\n.start\n    halt\n")
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize("args", [["--vve=p.vve"], ["p.vve"], ["--vve=p.vve", "--init-heap-size=64KB"]])
def test_a_plain_run_of_a_vve_imports_nothing_heavy(tmp_path, args):
    imported = imported_by(tmp_path, *args)
    assert "voxvm.machine" in imported                    # the probe saw the run
    assert sorted(imported & set(HEAVY)) == []


@pytest.mark.parametrize("args", [["p.vvs"], ["run", "p.vvs"]])
def test_running_source_imports_the_assembler_but_not_the_command_line_toolkit(tmp_path, args):
    imported = imported_by(tmp_path, *args)
    assert "voxasm" in imported
    assert sorted(imported & set(HEAVY_FOR_SOURCE)) == []


def test_a_run_that_prints_imports_its_native_family_without_importlib(tmp_path):
    # Every real program calls a native; loading the native's family must not bring
    # importlib (and warnings) with it (voxvm/host/registry.py dispatch).
    from voxasm import assemble_program

    # A string goes to the Python native (a number is printed by the compiled core itself).
    source = ("section text\n.start\n    dsload r1 greeting 0\n    uload r2 1\n    ncall 1 r0\n    halt\n"
              "section data\n    greeting str \"hi\"\n")
    (tmp_path / "prints.vve").write_bytes(build_vve(assemble_program(source, "prints.vvs")))
    # -S, with the package's folder on the path: an editable install's import hook (run by
    # site) imports importlib before the probe starts, which would hide the import checked here.
    package_parent = str(Path(voxvm.__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-S", "-c", PROBE, "--vve=prints.vve"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": package_parent})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    printed, modules = done.stdout.split("\n", 1)
    assert printed == "hi" and "voxvm.host.basic" in modules.split()     # the native ran
    needed_by_natives = {"voxvm.values", "voxvm.host.registry", "struct"}    # (not the trap table)
    assert sorted(set(modules.split()) & ({"importlib", "warnings", *HEAVY} - needed_by_natives)) == []


def test_a_run_of_a_vve_never_builds_the_opcode_table(tmp_path):
    # voxvm/tags.py holds what a run needs; voxvm.isa (the opcode table) is imported only
    # to name an instruction in a trap or exception line.
    assert "voxvm.isa" not in imported_by(tmp_path, "--vve=p.vve")


def test_assembling_a_typical_file_imports_nothing_heavy(tmp_path):
    (tmp_path / "typical.vvs").write_text(TYPICAL)
    imported = imported_by(tmp_path, "--vas=typical.vvs", "--vas-out=typical.vve")
    assert "voxasm._scan" in imported and (tmp_path / "typical.vve").exists()   # it did assemble
    assert sorted(imported & set(HEAVY_FOR_ASSEMBLY)) == []
