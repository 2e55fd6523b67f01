"""The thread natives: spawn (0x30), join (0x31) and thread_id (0x32).

Owns their Python handlers (docs/concurrency.md). The threads themselves, the
id numbering and the join bookkeeping belong to the run (voxvm/threads.py,
reached as ``io.group``, which the machine layer sets); these handlers read
the registers, call it, and write the results. ``thread_id`` also runs in the
compiled core's C native table (csrc/vv_shm.h); spawn and join always come
here, since a new thread needs a new Core and join blocks.
"""

from __future__ import annotations

from ..tags import Tag
from .io import HostIO
from .registry import NativeFailure, native, reg_u


def _group(io: HostIO, name: str):
    if io.group is None:
        raise NativeFailure(f"{name}: this machine does not belong to a run that can start threads")
    return io.group


@native(0x30, "spawn")
def _spawn(core, io: HostIO) -> None:
    """r1 = function index, r2 = argument (tag kept); r0 = U(the new thread's id)."""
    index = reg_u(core, 1)
    bits, tag = core.get_reg(2)
    thread_id = _group(io, "spawn").spawn(io.thread_id, core, index, bits, tag)
    core.set_reg(0, thread_id, Tag.U64)


@native(0x31, "join")
def _join(core, io: HostIO) -> None:
    """r1 = thread id: wait for it; r0 = its final r0 (value and tag)."""
    target = reg_u(core, 1)
    group = _group(io, "join")
    bits, tag, failure = group.join(io.thread_id, target)
    core.set_reg(0, bits, tag)
    if failure is not None:
        raise NativeFailure(f"join: {failure}")


@native(0x32, "thread_id")
def _thread_id(core, io: HostIO) -> None:
    """r0 = U(own id): command-line programs 0, 1, ...; spawned threads continue the numbering."""
    core.set_reg(0, io.thread_id, Tag.U64)
