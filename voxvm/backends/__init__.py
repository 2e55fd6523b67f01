"""The contract between the machine driver and an execution backend.

Owns the status codes a dispatch loop returns (generated into the C core's
``vv_tables.h`` by tools/gen_isa.py) and the ``Core`` protocol that
both backends implement: the compiled one (voxvm/backends/compiled/_core.pyx) and the
pure-Python reference (voxvm/backends/reference/core.py). voxvm/machine.py drives a Core:
it calls ``run()``, and whenever the loop leaves with a status other than
HALT it does the rare work in Python (native calls, trap reports) and calls
``run()`` again. A Core is self-contained: no module-level mutable state, so
several can run in one process (and, for the compiled one, on several
threads without the GIL).

Register values cross this boundary as ``(bits, tag)``: ``bits`` is the
unsigned 64-bit payload (an int64 as two's complement, a float64 as its IEEE
bits) and ``tag`` one of voxvm.isa.Tag (semantics.md §2).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # formats imports construct (~40 ms): keep it off the start-up path
    from .formats import Dump


class Status(enum.IntEnum):
    """Why ``Core.run()`` returned."""

    HALT = 0      # `halt` executed; ip is the halt's address
    TRAP = 1      # fatal error; see trap_kind / trap_ip / trap_a / trap_b
    NCALL = 2     # `ncall`: ip already points past it; ncall_code / ncall_ip say which
    BUDGET = 3    # the branch budget ran out (tests and tracing only)
    # Internal to the compiled core, never returned by Core.run(): its loop
    # left early only because the GC-event buffer is full, a C native
    # yielded (vv_natives.h), or it polled (time slice over, stop requested);
    # the instruction is complete.
    FLUSH = 4
    STOP = 5      # request_stop() was called; run() may be called again to go on


class Core(Protocol):
    """What every backend offers. Created as ``Core(program, config)``."""

    # After run() returned TRAP: the voxvm.traps.TrapKind and its two message
    # arguments, and the address of the trapping instruction.
    trap_kind: int
    trap_ip: int
    trap_a: int
    trap_b: int
    # After run() returned NCALL: the 16-bit code and the ncall's own address.
    ncall_code: int
    ncall_ip: int
    # After run(budget) with budget > 0 returned NCALL: the branch budget left, so
    # that a caller's budget spans native calls (voxvm/machine.py Machine.run).
    budget_left: int
    # Current instruction address (byte offset into main memory).
    ip: int

    def run(self, budget: int = -1) -> int:
        """Execute until halt, trap, ncall or budget exhaustion; return a Status.

        ``budget`` < 0 means unlimited. Otherwise it counts *branch events*
        (every executed jump whether taken or not, call, callr, ret, jmpr,
        jexc); when it reaches 0 the loop returns BUDGET before the next
        instruction. Both backends count identically, so differential tests
        can stop them at the same point. It returns STOP, between two
        instructions, after ``request_stop()``; a signal handler that raises
        (Ctrl-C's KeyboardInterrupt) raises out of it, also within
        milliseconds of the signal.
        """

    def request_stop(self) -> None:
        """Make ``run()`` return STOP soon (within milliseconds); callable from any thread.

        The request stays until ``run()`` has returned STOP for it (so a request
        made just before ``run()`` starts is not lost). The machine driver calls
        it from its SIGINT handler (docs/resource-limits.md "Interrupting a run").
        """

    def get_reg(self, index: int) -> tuple[int, int]:
        """``(bits, tag)`` of register ``index``."""

    def set_reg(self, index: int, bits: int, tag: int) -> None:
        """Write register ``index`` (natives return results this way)."""

    def raise_exception(self, number: int) -> None:
        """Count one more pending voxvm exception ``number`` (voxvm.isa.Exc)."""

    def pending(self) -> dict[int, int]:
        """The pending exceptions as ``{number: count}``: only kinds with a count, by number.

        A count per kind is all `jexc` can observe (semantics.md §9), so it is
        all a Core keeps: pending exceptions take constant memory.
        """

    def set_diagnostics(self, sink) -> None:
        """Where the events of semantics.md §9 go (voxvm/diagnostics.py), or None.

        ``sink(code, ip, a, b)`` hears, in program order and interleaved with
        the ``gc: ...`` log as they happened, each of the first
        ``diagnostics.SHOWN`` raised exceptions (``code`` = its number, ``ip``
        = the raising instruction, or the ``ncall`` for a native) and of the
        first ``SHOWN`` out-of-range ``usf`` writes (``code`` =
        ``diagnostics.USF_EVENT``, ``a`` = the index, ``b`` = the stack depth).
        A C print does not get ahead of an event it follows.
        """

    def diagnostic_totals(self) -> tuple[int, int]:
        """``(raised, usf_missed)``: how many exceptions and out-of-range usf writes the run has had."""

    def memory(self) -> bytes:
        """A copy of main memory (image plus what dlbc appended, with dssave writes)."""

    def read_memory(self, address: int, count: int) -> bytes | None:
        """``count`` bytes of main memory at ``address`` without copying the rest; None if outside."""

    def set_log(self, log) -> None:
        """Where the core's ``gc: ...`` lines go (a callable taking one str) under --gc-log or -v."""

    def set_stdout(self, sink) -> None:
        """Where stdout that natives running inside the core print goes (None: nowhere, they are off).

        ``sink(data: bytes) -> int`` (``HostIO.take_stdout``) takes the bytes, in
        program order, and returns how many bytes the core may hold before
        handing them over again; the core hands everything over before ``run``
        returns. A core without in-core natives never calls it.
        """

    def heap_read(self, address: int, count: int) -> bytes | None:
        """``count`` bytes inside one live heap block, or None (the caller raises HeapReadFault)."""

    def heap_write(self, address: int, data: bytes) -> bool:
        """Write inside one live heap block; False if it does not fit (HeapWriteFault)."""

    def host_pointer(self, address: int, tag: int):
        """For a foreign function's ``ptr`` argument (voxvm/host/ffi.py): ``(host address, keepalive)``.

        None unless ``tag`` is ``address`` and ``address`` is inside a live heap
        block, or ``tag`` is StrAddr/ds_addr and ``address`` inside main memory.
        ``keepalive`` must be kept until the call returns.
        """

    def snapshot(self, reason: int = 0) -> "Dump":
        """The whole machine state, for core dumps and differential tests."""

    def write_dump(self, f, reason: int = 0) -> None:
        """Write ``voxvm.formats.build_dump(snapshot(reason))``'s bytes to the binary file ``f``,
        streaming: host memory of a bounded buffer, never a Python object per entry."""


def observable_state(core: Core, status: int) -> dict:
    """Everything a program could observe about a stopped core, heap blocks included.

    The one definition the differential tests and the fuzzers compare two
    backends with (tests/support/machines.py, tools/fuzz_vve.py).
    """
    dump = core.snapshot(1 if status == Status.TRAP else 0)
    result = {
        "status": int(status), "ip": core.ip, "flags": tuple(dump.flags),
        "registers": [(int(v), int(t)) for v, t in dump.registers],
        "data_stack": [(int(v), int(t)) for v, t in dump.data_stack],
        "call_stack": list(dump.call_stack), "pending": dict(dump.pending),
        "memory": bytes(dump.memory),
        "heap": [(int(a), int(n), int(k), bytes(d)) for a, n, k, d in dump.heap],
    }
    if status == Status.TRAP:
        result["trap"] = (int(core.trap_kind), core.trap_ip, core.trap_a, core.trap_b)
    if status == Status.NCALL:
        result["ncall"] = (core.ncall_code, core.ncall_ip)
    return result
