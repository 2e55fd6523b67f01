"""The ``Core`` protocol: what every execution backend offers the machine driver.

Owns the interface both backends implement (voxvm/backends/compiled/_core.pyx
and voxvm/backends/reference/core.py), as a ``typing.Protocol`` for readers
and type checkers. Nothing imports it at run time: ``typing`` costs start-up
time (docs/performance.md "Start-up"). The status codes and the rest of the
contract are in voxvm/backends/__init__.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..formats import Dump


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
        it from its SIGINT handler (docs/resource-limits.md "Interrupting a run"),
        for every Core of the run.
        """

    def end_on_return(self) -> None:
        """Make ``ret`` on an empty call stack end the program like ``halt`` (it would
        trap otherwise): a spawned thread's first frame (docs/concurrency.md)."""

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

    # ---- debugging (docs/debugging.md; the compiled core's csrc/vv_debug.h)

    def step(self) -> int:
        """Execute one instruction: BUDGET when it completed (ip is the next one), else what
        ``run()`` would have returned for it (HALT, TRAP, NCALL, STOP). A breakpoint at ip does
        not stop it. The compiled core decodes every instruction alone from then on (no fused
        pairs), so one step is always one instruction."""

    def set_breakpoint(self, address: int, on: bool = True) -> None:
        """Make ``run()`` return BREAK, before the instruction, whenever ip reaches ``address``
        (or stop doing so); ValueError outside main memory's capacity."""

    def enable_profile(self) -> None:
        """From the next ``run()`` on, count instructions and time per address and calling
        context (the profiling loop)."""

    def profile_data(self) -> dict | None:
        """The profile so far, or None when not profiling: ``{"addresses": [(address, count,
        ns)], "nodes": [(entry, parent, calls, count, ns)], "buckets": n}`` (voxvm/profiler.py)."""

    def call_stack(self) -> list[int]:
        """The return addresses on the call stack, oldest first."""

    def registers(self) -> list[tuple[int, int]]:
        """``(bits, tag)`` of every register, r0 first."""

    def snapshot(self, reason: int = 0) -> "Dump":
        """The whole machine state, for core dumps and differential tests."""

    def write_dump(self, f, reason: int = 0) -> None:
        """Write ``voxvm.formats.build_dump(snapshot(reason))``'s bytes to the binary file ``f``,
        streaming: host memory of a bounded buffer, never a Python object per entry."""
