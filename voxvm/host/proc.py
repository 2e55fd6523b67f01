"""The process native: runcmd (0x07), ``sh -c`` with its output into the heap."""

from __future__ import annotations

import os
import signal
import subprocess

from ..tags import Exc, Tag
from ..values import decode_utf16be
from .capabilities import granted
from .io import HostIO, reason
from .registry import NativeFailure, native, read_heap, reg_u, write_heap


@native(0x07, "runcmd")
def _runcmd(core, io: HostIO) -> None:
    """r1/r2 = command (UTF-16BE, strict), r3 = stdout destination, r4 = byte limit.

    Runs ``sh -c CMD`` with stdin from /dev/null and stderr discarded, waits,
    stores min(r4, len) bytes of its stdout (UTF-8 decoded leniently, then
    UTF-16BE) at r3; r0 = U(full converted length), as upstream.
    """
    address, count = reg_u(core, 1), reg_u(core, 2)
    destination, limit = reg_u(core, 3), reg_u(core, 4)
    command = decode_utf16be(read_heap(core, address, count, "the command"))
    if command is None:
        raise NativeFailure("the command is not valid UTF-16", Exc.HeapSegmFault)
    granted(io).check_run(io)
    io.flush()          # the command's output must not overtake what the program printed
    try:
        # Its own process group, so that a run that stops (Ctrl-C, the API's timeout) takes
        # the command and whatever it started with it.
        process = subprocess.Popen(["sh", "-c", command], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
    except (OSError, ValueError) as exc:    # no sh, fork failure, NUL in the command
        raise NativeFailure(f"cannot run sh -c: {reason(exc)}") from None
    stdout = _wait(process, io)
    if stdout is None:
        return                  # the run is stopping: the loop stops next, as after sleep
    output = stdout.decode("utf-8", "replace").encode("utf-16-be")
    write_heap(core, destination, output[:limit], "the command's output")
    core.set_reg(0, len(output), Tag.U64)


_POLL_SECONDS = 0.05


def _wait(process: subprocess.Popen, io: HostIO) -> bytes | None:
    """The command's stdout once it ends; None when the run stopped first (it was killed)."""
    try:
        while True:
            try:
                return process.communicate(timeout=None if io.stop_event is None else _POLL_SECONDS)[0]
            except subprocess.TimeoutExpired:
                if io.stop_event.is_set():
                    kill_process_group(process)
                    return None
    except BaseException:       # Ctrl-C on the main thread: the command's group goes too
        kill_process_group(process)
        raise


def kill_process_group(process: subprocess.Popen) -> None:
    """Stop ``process``, started with ``start_new_session``, and whatever it started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (OSError, AttributeError):      # gone already; or no process groups (Windows)
        process.kill()
    # Not communicate(): a grandchild that left the group (setsid) may hold the pipes open.
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    process.wait()
