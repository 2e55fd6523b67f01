"""Core dumps are written streaming (docs/resource-limits.md "Core dumps").

``Core.write_dump(f, reason)`` on both backends writes exactly the bytes of
``voxvm.formats.build_dump(core.snapshot(reason))`` (the construct schema stays the
definition of the format, and ``parse_dump`` reads what is written), but a
section at a time through a bounded buffer: writing a dump of a large data
stack must not allocate Python objects per entry. The machine driver writes
through it and leaves no partial file behind when writing fails.
"""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from types import SimpleNamespace

import pytest
from support.builders import build
from support.configs import CONFIG
from support.machines import backends, new_core

from voxvm.backends import Status
from voxvm.formats import DUMP_MAGIC, build_dump, parse_dump
from voxvm.machine import Machine
from voxvm.traps import TrapKind


class Sink:
    """A write-only binary file that keeps only the size and a hash (no copy of the dump)."""

    def __init__(self) -> None:
        self.size = 0
        self.hash = hashlib.sha256()

    def write(self, data) -> int:
        n = len(memoryview(data).cast("B"))
        self.size += n
        self.hash.update(data)
        return n


def _everything_program(pushes: int):
    """Pushes, nested calls, a pending exception, GC and nogc heap blocks, a dssave; then a trap."""
    return build(
        ("uload", 1, 0), ("uload", 2, pushes), ("fload", 3, -2.5),
        "top:", ("push", 1), ("push", 3), ("uinc", 1), ("ucmp", 1, 2), ("jl", "@top"),
        ("alloc", 4, 24), ("uload", 5, 0x1122334455667788), ("uload", 6, 8), ("store", 4, 5, 6),
        ("uload", 7, 5), ("allocr_nogc", 8, 7),
        ("udiv", 9, 1, 0),                                # raises ZeroDivision: stays pending
        ("call", 0),
        "f:", ("call", 1),
        "g:", ("pop", 9), ("pop", 9), ("jmp", "@g"),        # pops until the stack is empty: trap
        functions=("f", "g"))


@pytest.mark.parametrize("backend", backends())
def test_streamed_dump_equals_the_built_one(backend):
    core = new_core(backend, _everything_program(40))
    assert core.run() == Status.TRAP and core.trap_kind == TrapKind.STACK_UNDERFLOW
    for reason in (0, 1):
        out = io.BytesIO()
        core.write_dump(out, reason)
        snapshot = core.snapshot(reason)
        assert out.getvalue() == build_dump(snapshot)
        assert parse_dump(out.getvalue()) == snapshot
    assert snapshot.call_stack and snapshot.pending and len(snapshot.heap) == 2


@pytest.mark.parametrize("backend", backends())
def test_streamed_dump_of_a_stack_larger_than_the_buffer(backend):
    core = new_core(backend, build(("uload", 1, 0), ("uload", 2, 70_000), "top:", ("push", 1), ("uinc", 1),
                                   ("ucmp", 1, 2), ("jl", "@top"), ("halt",)))
    assert core.run() == Status.HALT
    out = io.BytesIO()
    core.write_dump(out, 0)
    assert out.getvalue() == build_dump(core.snapshot(0))


@pytest.mark.parametrize("backend", backends())
def test_writing_a_dump_costs_a_buffer_not_the_entries(backend):
    """A 9 MB data-stack section: Python allocations while writing stay below 4 MiB
    (building it with construct took hundreds of bytes per entry)."""
    entries = 1_000_000 if backend == "cython" else 200_000
    core = new_core(backend, build(("uload", 1, 0), ("uload", 2, entries), "top:", ("push", 1), ("uinc", 1),
                                   ("ucmp", 1, 2), ("jl", "@top"), ("halt",)))
    assert core.run() == Status.HALT
    sink = Sink()
    tracemalloc.start()
    try:
        core.write_dump(sink, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    head = 8 + 2 + 1 + 2 + 16 + 8 + 4 + 32 * 9     # ... trap kind, its two arguments, ip, ...
    # data stack, call stack (count), pending (11 counts), memory (count + bytes), heap (count)
    assert sink.size == head + 8 + entries * 9 + 8 + 11 * 8 + 8 + len(core.memory()) + 8
    assert peak < 4 << 20, peak


def test_machine_writes_the_dump_and_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    machine = Machine(_everything_program(3), CONFIG)
    with pytest.raises(Exception):
        machine.run()
    machine.write_dump("voxvm_err.dump", 1)
    data = (tmp_path / "voxvm_err.dump").read_bytes()
    assert data.startswith(DUMP_MAGIC) and parse_dump(data) == machine.core.snapshot(1)

    def fail(f, reason):
        f.write(b"VVDUMP")
        raise OSError(28, "No space left on device")

    machine.core = SimpleNamespace(write_dump=fail)
    machine.write_dump("second.dump", 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voxvm_err.dump"]
