"""Ctrl-C stops any run promptly (docs/resource-limits.md "Interrupting a run").

Owns the command-line tests of the interrupt guarantee: ``voxvm run`` of a busy loop, of a
program retrying an allocation on a full heap, of a long ``sleep`` native and of a loop of
long instructions gets SIGINT and must exit with status 130 and the one line
``voxvm: interrupted`` on stderr, on both backends, and within a generous bound (the
machine running the tests is shared and noisy; the guarantee itself is 100 ms). Also
``Core.request_stop`` from another thread, which is how several VMs on several threads
will be stopped by one Ctrl-C.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest
from support.machines import backends, make_core

from voxvm.backends import Status

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

BUSY = """\
section text
.start
label top
    uinc r1
    jmp @top
"""
# Every live block stays on the stack, so the heap fills; then the failing allocation is
# retried forever (pushing its A(0) result: the roots change, so collections keep running).
ALLOC_RETRY = """\
section text
.start
label fill
    alloc r1 1048576
    push r1
    jexc @heap_allocation_fault @full
    jmp @fill
label full
    alloc r1 1048576
    push r1
    jexc @heap_allocation_fault @full
    jmp @full
"""
SLEEP = """\
section text
.start
    uload r1 600000
    ncall 6 r0
    halt
"""
# Long instructions between branches: 4 copies of 8 MiB per iteration.
MEMCPY = """\
section text
.start
    uload r3 8388608
    alloc r1 8388608
    alloc r2 8388608
label top
    memcpy r1 r2 r3
    memcpy r2 r1 r3
    memcpy r1 r2 r3
    memcpy r2 r1 r3
    jmp @top
"""
# alloc_retry raises HeapAllocationFault in a loop; its exception lines are tested elsewhere.
PROGRAMS = {"busy": (BUSY, []), "alloc_retry": (ALLOC_RETRY, ["--max-heap=64MB", "--quiet-exceptions"]),
            "sleep": (SLEEP, []), "memcpy": (MEMCPY, [])}


def _start(tmp_path, name: str, backend: str) -> subprocess.Popen:
    source, flags = PROGRAMS[name]
    path = tmp_path / f"{name}.vvs"
    path.write_text(source)
    # Python ignores SIGINT in a child whose parent ignored it: give the child the default.
    return subprocess.Popen([sys.executable, "-m", "voxvm", "run", f"--backend={backend}", *flags, str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_until_running(process: subprocess.Popen) -> None:
    """Past start-up (imports, assembly) and into the program: ~300 ms after the VM starts."""
    # The machine is noisy: poll the child's CPU time instead of trusting a fixed delay.
    deadline = time.monotonic() + 30
    with open(f"/proc/{process.pid}/stat") as stat:
        while time.monotonic() < deadline:
            stat.seek(0)
            fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[11]) + int(fields[12]) >= 60:        # utime + stime, in clock ticks
                break
            time.sleep(0.05)
    time.sleep(0.3)


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_sigint_stops_the_run(tmp_path, name, backend):
    if name == "memcpy" and backend == "python":
        pytest.skip("the reference backend copies 8 MiB in pure Python too slowly to matter here")
    process = _start(tmp_path, name, backend)
    try:
        _wait_until_running(process)
        assert process.poll() is None, process.stderr.read()
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        line = process.stderr.readline()
        seen = time.monotonic() - sent
        rest = process.stderr.read()
        status = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (status, line, rest) == (130, b"voxvm: interrupted\n", b"")
    assert seen < 2.0, f"'voxvm: interrupted' came {seen:.3f} s after SIGINT"


@pytest.mark.parametrize("backend", backends())
def test_request_stop_from_another_thread(backend):
    """request_stop() stops a loop running on another thread; run() may then go on."""
    core = make_core(backend, "top:", ("uinc", 1), ("jmp", "@top"))
    results = []
    runner = threading.Thread(target=lambda: results.append(core.run()))
    runner.start()
    time.sleep(0.2)
    core.request_stop()
    runner.join(timeout=30)
    assert not runner.is_alive() and results == [Status.STOP]
    count = core.get_reg(1)[0]
    assert count > 0
    assert core.run(10) == Status.BUDGET and core.get_reg(1)[0] == count + 10   # the request was consumed


def test_request_stop_before_run_is_not_lost(backend):
    core = make_core(backend, "top:", ("jmp", "@top"))
    core.request_stop()
    assert core.run() == Status.STOP


READ_STDIN = """\
section text
.start
    alloc r5 64
    movr r1 r5
    uload r2 64
    ncall 2 r0
    halt
"""


@pytest.mark.parametrize("backend", backends())
def test_sigint_with_another_thread_blocked_on_stdin_is_130_not_an_abort(tmp_path, backend):
    # Thread 1 waits on a stdin that never ends; the interpreter's teardown would wait for the
    # stdin lock that thread holds and abort the process (status 134).
    (tmp_path / "busy.vvs").write_text(BUSY)
    (tmp_path / "read.vvs").write_text(READ_STDIN)
    process = subprocess.Popen([sys.executable, "-m", "voxvm", "run", f"--backend={backend}", "busy.vvs",
                                "read.vvs"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, cwd=tmp_path,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_until_running(process)
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=60)
        errors = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdin.close()
    assert (status, errors) == (130, b"voxvm: interrupted\n")
