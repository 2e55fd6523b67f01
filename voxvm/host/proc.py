"""The process native: runcmd (0x07), ``sh -c`` with its output into the heap."""

from __future__ import annotations

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
        completed = subprocess.run(["sh", "-c", command], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   check=False)
    except (OSError, ValueError) as exc:    # no sh, fork failure, NUL in the command
        raise NativeFailure(f"cannot run sh -c: {reason(exc)}") from None
    output = completed.stdout.decode("utf-8", "replace").encode("utf-16-be")
    write_heap(core, destination, output[:limit], "the command's output")
    core.set_reg(0, len(output), Tag.U64)
