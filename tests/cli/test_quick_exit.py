"""The plain command line ends without the interpreter's teardown, and loses nothing by it.

``voxvm --vve=...``, ``voxvm run FILE`` and ``voxvm --vas=...`` as a process end with
``os._exit`` once the run is over (voxvm/stdstreams.py exit_without_teardown). What
the teardown would have done that anyone can see must still happen: files the program
left open are written out, a trace file is complete, buffered output reaches a pipe,
the exit status is the run's.
"""

from __future__ import annotations

import subprocess
import sys

from support.builders import VvsProgram
from support.runs import cli

FOPEN, FWRITE = 0x10, 0x12


def test_a_file_the_program_never_closes_is_written_out(backend, tmp_path):
    path = tmp_path / "left-open.txt"
    p = VvsProgram()
    n = p.heap_text("r10", str(path))
    p.heap_text("r11", "kept")
    p.ncall(FOPEN, r1="r10", r2=n, r3=1).op("movr r12 r0")
    p.ncall(FWRITE, r1="r12", r2="r11", r3=8)          # no fclose: the run's end closes it
    (tmp_path / "p.vvs").write_text(p.source())
    done = cli(["run", "p.vvs", f"--backend={backend}"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert path.read_bytes() == "kept".encode("utf-16-be")


def test_the_trace_file_is_complete(tmp_path):
    (tmp_path / "p.vvs").write_text("section text\n.start\n    uload r1 7\n    halt\n")
    done = cli(["run", "p.vvs", "--trace-file=trace.txt"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "trace.txt").read_text().splitlines()
    assert len(lines) == 2 and "halt" in lines[-1]


def test_all_output_reaches_a_pipe_and_the_status_is_the_runs(tmp_path):
    # 20 000 lines: more than the output buffers hold, so the end of the run must flush.
    (tmp_path / "p.vvs").write_text("section text\n.start\n    uload r3 20000\nlabel top\n"
                                    "    movr r1 r3\n    uload r2 1\n    ncall 1 r0\n"
                                    "    udec r3\n    jnz @top\n    pop r1\n    halt\n")
    done = cli(["run", "p.vvs"], tmp_path)
    lines = done.stdout.split()
    assert len(lines) == 20000 and lines[0] == b"20000" and lines[-1] == b"1"
    assert done.returncode == 70 and b"pop from an empty data stack" in done.stderr   # the trap


def test_an_assembly_is_written_completely(tmp_path):
    (tmp_path / "p.vvs").write_text("section text\n.start\n" + "    uload r1 7\n" * 5000 + "    halt\n")
    done = cli(["--vas=p.vvs", "--vas-out=p.vve"], tmp_path)
    assert done.returncode == 0, done.stderr
    again = subprocess.run([sys.executable, "-m", "voxvm", "--vve=p.vve"], cwd=tmp_path,
                           capture_output=True)
    assert again.returncode == 0 and (tmp_path / "p.vve").stat().st_size > 5000 * 10


def test_the_quick_exit_runs_the_atexit_functions_and_skips_the_teardown(tmp_path):
    probe = ("import atexit\nfrom voxvm.stdstreams import exit_without_teardown\n"
             "class Kept:\n    def __del__(self):\n        print('torn down')\n"
             "kept = Kept()                  # a module global: only the teardown would free it\n"
             "atexit.register(print, 'atexit ran')\nprint('buffered', end='')\n"
             "exit_without_teardown(3)\nprint('not reached')\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, "bufferedatexit ran\n", "")
