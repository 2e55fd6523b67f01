"""Several programs on one command line: both spellings, validation first, whole lines, Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from support.machines import backends
from support.runs import cli, write

PRINT_ID = """\
section text
.start
    ncall 0x32 r0
    movr r1 r0
    uload r2 1
    ncall 1 r0
    halt
"""

# Prints VALUE COUNT times: a line torn by another program's output would not be VALUE.
PRINT_MANY = """\
section text
.start
    uload r10 0
    uload r11 {count}
    uload r1 {value}
    uload r2 1
label loop
    ncall 1 r0
    uinc r10
    ucmp r10 r11
    jl @loop
    halt
"""

BUSY = """\
section text
.start
label top
    uinc r1
    jmp @top
"""


def test_several_vve_flags_and_run_with_several_files(tmp_path) -> None:
    source = write(tmp_path, "id.vvs", PRINT_ID)
    assembled = cli([f"--vas={source}", f"--vas-out={tmp_path / 'id.vve'}"], tmp_path)
    assert assembled.returncode == 0, assembled.stderr
    vve = str(tmp_path / "id.vve")
    fast = cli([f"--vve={vve}", f"--vve={vve}", f"--vve={vve}"], tmp_path)
    assert fast.returncode == 0, fast.stderr
    assert sorted(fast.stdout.split()) == [b"0", b"1", b"2"]
    typer = cli(["--vve", vve, "--vve", vve, "-m", "64"], tmp_path)   # the typer path
    assert sorted(typer.stdout.split()) == [b"0", b"1"]
    mixed = cli(["run", str(source), vve, "--shm=8"], tmp_path)
    assert sorted(mixed.stdout.split()) == [b"0", b"1"], mixed.stderr
    both = cli([f"--vve={vve}", f"--vvr={vve}"], tmp_path)
    assert both.returncode == 2 and b"not both" in both.stderr


def test_every_program_is_validated_before_any_runs(tmp_path) -> None:
    good = write(tmp_path, "good.vvs", PRINT_ID)
    bad = write(tmp_path, "bad.vvs", "section text\n.start\n    uload r99 1\n")
    run = cli(["run", str(good), str(bad)], tmp_path)
    assert run.returncode == 65 and run.stdout == b"", run.stderr
    broken = tmp_path / "broken.vve"
    broken.write_bytes(b"VVE\0")
    run = cli(["run", str(good), str(broken)], tmp_path)
    assert run.returncode == 65 and run.stdout == b""


@pytest.mark.parametrize("backend", backends())
def test_lines_of_concurrent_programs_never_interleave(tmp_path, backend) -> None:
    count = 20_000 if backend == "cython" else 2_000
    values = [11111111111111111, 2222222222222222222, 333333333333, 4]
    files = [str(write(tmp_path, f"p{i}.vvs", PRINT_MANY.format(count=count, value=v)))
             for i, v in enumerate(values)]
    run = cli(["run", *files, f"--backend={backend}"], tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.decode().split("\n")
    assert lines.pop() == ""
    assert sorted(set(lines)) == sorted(str(v) for v in values)
    assert all(lines.count(str(v)) == count for v in values)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("backend", backends())
def test_ctrl_c_stops_every_program_with_one_message(tmp_path, backend) -> None:
    busy = str(write(tmp_path, "busy.vvs", BUSY))
    sleeper = str(write(tmp_path, "sleep.vvs", "section text\n.start\n    uload r1 600000\n"
                                                "    ncall 6 r0\n    halt\n"))
    spawner = str(write(tmp_path, "spawn.vvs", """\
section text
.start
    fnstind r1 @child
    uload r2 0
    ncall 0x30 r0
    movr r1 r0
    ncall 0x31 r0               ; joins a child that never ends
    halt

func child
label top
    uinc r1
    jmp @top
"""))
    process = subprocess.Popen(
        [sys.executable, "-m", "voxvm", "run", busy, sleeper, spawner, busy, f"--backend={backend}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        time.sleep(3.0)                       # past start-up; not a measurement
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert err == b"voxvm: interrupted\n", err.decode()
    assert out == b""


def test_trap_lines_name_the_thread_when_several_programs_run(tmp_path) -> None:
    good = write(tmp_path, "good.vvs", PRINT_ID)
    trap = write(tmp_path, "trap.vvs", "section text\n.start\n    pop r1\n    halt\n")
    run = cli(["run", str(good), str(trap)], tmp_path)
    assert run.returncode == 70
    assert run.stderr.decode().startswith("voxvm: thread 1: trap: ")
    single = cli(["run", str(trap)], tmp_path)
    assert single.stderr.decode().startswith("voxvm: trap: ")


def test_core_dumps_of_several_threads_do_not_clobber_each_other(tmp_path) -> None:
    good = write(tmp_path, "good.vvs", PRINT_ID)
    run = cli(["run", str(good), str(good), "--coredump_exit"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "voxvm.dump").exists() and (tmp_path / "voxvm.1.dump").exists()
