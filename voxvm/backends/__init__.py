"""The contract between the machine driver and an execution backend.

Owns the status codes a dispatch loop returns (generated into the C core's
``vv_tables.h`` by tools/gen_isa.py), ``observable_state`` and the wording of
the collector's log lines (``gc_collection_line``, ``gc_growth_line``), which
both backends print for --gc-log. The ``Core``
protocol both backends implement, the compiled one
(voxvm/backends/compiled/_core.pyx) and the pure-Python reference
(voxvm/backends/reference/core.py), is written out in
voxvm/backends/protocol.py. voxvm/machine.py drives a Core:
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

from ..numbered import Numbered

TYPE_CHECKING = False     # typing costs start-up time; annotations are strings here
if TYPE_CHECKING:
    from .protocol import Core


class Status(Numbered):
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
    BREAK = 6     # ip reached a breakpoint (set_breakpoint); the instruction there has not run


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


def gc_collection_line(number: int, freed_blocks: int, freed_bytes: int, live_blocks: int,
                       live_bytes: int, heap_size: int, pause_ns: int) -> str:
    """The --gc-log line of one collection (docs/heap.md): block counts and payload bytes
    freed and left live (every live block, collected or not), the heap's size, the pause."""
    return (f"gc: collection {number}: freed {freed_blocks} blocks ({freed_bytes} bytes), "
            f"{live_blocks} blocks live ({live_bytes} bytes), heap {heap_size} bytes, "
            f"pause {pause_ns / 1e6:.3f} ms")


def gc_growth_line(heap_size: int) -> str:
    """The --gc-log line of the heap growing to ``heap_size`` bytes."""
    return f"gc: heap grown to {heap_size} bytes"
