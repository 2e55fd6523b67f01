"""Whole runs of one or several programs, in process or through the ``voxvm`` command.

Owns ``run_sources`` (assemble .vvs texts and run them together with
voxvm.machine.run_programs on BytesIO streams, as the command line would with
the same flags) and ``cli`` (the installed ``voxvm`` in a subprocess, with the
working directory the caller gives: CI installs non-editably).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from voxasm import assemble_program as assemble
from voxvm.config import config_from_args
from voxvm.machine import run_programs


def run_sources(sources: list[str], backend: str, args: list[str] = (), stdin: bytes = b"",
                ) -> tuple[int, bytes, bytes]:
    """Run the programs together: ``(exit status, stdout, stderr)``."""
    programs = [assemble(text.encode(), f"prog{i}.vvs") for i, text in enumerate(sources)]
    config = config_from_args(list(args), backend=backend)
    out, err = io.BytesIO(), io.BytesIO()
    rc = run_programs(programs, config, io.BytesIO(stdin), out, err)
    return rc, out.getvalue(), err.getvalue()


def vm_lines(stderr: bytes) -> list[str]:
    """The lines the VM itself wrote (they start with ``voxvm:``)."""
    return [line for line in stderr.decode().splitlines() if line.startswith("voxvm:")]


def cli(args: list[str], cwd: Path, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voxvm", *args], cwd=cwd, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=timeout, **kwargs)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path
