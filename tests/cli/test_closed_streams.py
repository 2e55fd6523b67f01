"""Standard streams closed by the caller (``>&-``, ``2>&-``, ``<&-``): a status, never a traceback.

The real command lines run in a subprocess whose descriptor is closed before
Python starts (voxvm/stdstreams.py): program output that cannot be written is
exit status 74 with one ``voxvm:`` line, a trap with stderr closed is still 70,
and a closed stdin is end of input.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HELLO = """section text
.start
    dsload r1 greeting 0
    uload r2 1
    ncall 1 r0
    halt
section data
    greeting str "hello"
"""
TRAP = "section text\n.start\n    pop r1\n    halt\n"
ECHO_INPUT = ("section text\n.start\n    alloc r1 64\n    uload r2 64\n    ncall 2 r0\n"
              "    uload r2 1\n    movr r1 r0\n    ncall 1 r0\n    halt\n")


def _run(tool: str, args: list[str], close: int, cwd) -> subprocess.CompletedProcess:
    """``python -m tool args`` with descriptor ``close`` closed; the others captured."""
    streams = {0: "stdin", 1: "stdout", 2: "stderr"}
    kwargs = {name: subprocess.PIPE for fd, name in streams.items() if fd != close}
    kwargs["stdin"] = subprocess.DEVNULL if close != 0 else None
    return subprocess.run([sys.executable, "-m", tool, *args], cwd=cwd, timeout=60,
                          preexec_fn=lambda: os.close(close), **kwargs)


@pytest.fixture
def programs(tmp_path):
    for name, text in (("hello", HELLO), ("trap", TRAP), ("echo", ECHO_INPUT)):
        (tmp_path / f"{name}.vvs").write_text(text)
    return tmp_path


def test_closed_stdout_is_an_io_error_with_one_line(programs):
    result = _run("voxvm", ["run", "hello.vvs"], 1, programs)
    assert result.returncode == 74
    assert result.stderr.decode().splitlines() == [
        "voxvm: error: cannot write to stdout: the stream was closed by the caller"]


def test_closed_stdout_on_the_fast_path(programs):
    assert _run("voxvm", ["--vas=hello.vvs"], 1, programs).returncode == 0
    result = _run("voxvm", ["--vve=hello.vve"], 1, programs)
    assert result.returncode == 74
    assert b"Traceback" not in result.stderr and result.stderr.count(b"\n") == 1


def test_closed_stderr_keeps_the_trap_status(programs):
    result = _run("voxvm", ["run", "trap.vvs"], 2, programs)
    assert result.returncode == 70
    assert result.stdout == b""


def test_closed_stderr_keeps_the_error_statuses(programs):
    assert _run("voxvm", ["--vve=missing.vve"], 2, programs).returncode == 74
    assert _run("voxasm", ["missing.vvs"], 2, programs).returncode == 74


def test_closed_stdin_is_end_of_input(programs):
    result = _run("voxvm", ["run", "echo.vvs"], 0, programs)
    assert result.returncode == 0
    assert result.stdout == b"0\n"


@pytest.mark.parametrize("tool", ["voxvm", "voxasm"])
def test_help_to_a_closed_stdout(tool, programs):
    result = _run(tool, ["--help"], 1, programs)
    assert result.returncode == 74
    assert b"Traceback" not in result.stderr
