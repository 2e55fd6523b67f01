"""Resource limits of one run (docs/resource-limits.md) that are not flags: what a program
cannot make the host pay for, on every backend.

Owns the regression tests of the reliability issue's bounded-cost items: pending exceptions
as a count per kind (semantics.md §9: constant memory, O(1) ``jexc``) and futile
collections (a failing allocation retried does not repeat a collection that freed nothing,
docs/heap.md). The Ctrl-C guarantee is tested through the command line in
tests/cli/test_interrupt.py.
"""

from __future__ import annotations

import os

import pytest
from support.builders import build
from support.machines import make_core, run_to_halt

from voxvm.backends import Status
from voxvm.config import VMConfig
from voxvm.isa import Exc


def raising_loop(times: int, handle_every: int = 0):
    """udiv by zero ``times`` times; with ``handle_every``, a jexc after each raise handles it."""
    body = [("uload", 4, 100), ("uload", 5, 0), ("uload", 2, 0), ("uload", 3, times), "top:",
            ("udiv", 6, 4, 5)]
    if handle_every:
        body += [("jexc", int(Exc.ZeroDivision), "@next"), "next:"]
    body += [("uinc", 2), ("ucmp", 2, 3), ("jl", "@top"), ("halt",)]
    return body


def test_pending_exceptions_are_counts_per_kind(backend):
    core = run_to_halt(backend, *raising_loop(1000))
    assert core.pending() == {Exc.ZeroDivision: 1000}
    core.raise_exception(Exc.MainSegmFault)
    core.raise_exception(Exc.ZeroDivision)
    assert core.pending() == {Exc.ZeroDivision: 1001, Exc.MainSegmFault: 1}
    assert core.snapshot().pending == core.pending()


def test_jexc_removes_one_of_many_pending(backend):
    """jexc with 10^4 unrelated exceptions pending: one of its kind goes, the rest stay."""
    def setup(core):
        for _ in range(10_000):
            core.raise_exception(Exc.HeapReadFault)
        core.raise_exception(Exc.NativeFault)

    core = run_to_halt(backend, ("jexc", int(Exc.NativeFault), "@caught"), ("halt",), "caught:",
                       ("jexc", int(Exc.NativeFault), "@twice"), ("uload", 1, 1), ("halt",), "twice:", ("halt",),
                       setup=setup)
    assert core.get_reg(1)[0] == 1                       # the second jexc found none
    assert core.pending() == {Exc.HeapReadFault: 10_000}


def test_handled_exceptions_leave_nothing_pending(backend):
    core = run_to_halt(backend, *raising_loop(500, handle_every=1))
    assert core.pending() == {}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_raising_forever_does_not_grow_the_host(dispatch):
    """semantics.md §9: 3 * 10^7 unhandled raises (one byte each used to be 30 MB) take no host memory."""
    from voxvm.backends.compiled._core import Core

    times = 30_000_000
    core = Core(build(*raising_loop(times)), VMConfig(), dispatch=dispatch)
    before = _rss()
    assert core.run() == Status.HALT
    assert core.pending() == {Exc.ZeroDivision: times}
    assert _rss() - before < 8 << 20


# ---------------------------------------------------------------------------------------------
# Futile collections (docs/heap.md "When the collector runs")

# A full heap of live blocks, then 200 more allocations that all fail; r7 counts them.
FULL_HEAP_RETRIES = (
    ("uload", 2, 0), ("uload", 3, 200), ("uload", 7, 0), "fill:", ("alloc", 1, 4000), ("push", 1),
    ("jexc", int(Exc.HeapAllocationFault), "@full"), ("jmp", "@fill"),
    "full:", ("alloc", 1, 4000), ("jexc", int(Exc.HeapAllocationFault), "@failed"), ("halt",),
    "failed:", ("uinc", 7), ("uinc", 2), ("ucmp", 2, 3), ("jl", "@full"), ("halt",),
)
SMALL_HEAP = VMConfig(init_heap=64 << 10, max_heap=256 << 10)


def _collections(core) -> int:
    return core.heap_info()["collections"] if hasattr(core, "heap_info") else core.heap.collections


def test_retrying_a_failing_allocation_does_not_collect_again(backend):
    core = make_core(backend, *FULL_HEAP_RETRIES, config=SMALL_HEAP)
    assert core.run() == Status.HALT
    assert core.get_reg(7)[0] == 200                   # every retry failed: the heap is full of live blocks
    # the fill phase collects a few times; the 200 retries with nothing changed collect at most once
    assert _collections(core) < 20


def test_a_root_change_makes_the_next_collection_run(backend):
    """Dropping a root after a futile collection: the next allocation collects and succeeds."""
    code = ("fill:", ("alloc", 1, 4000), ("jexc", int(Exc.HeapAllocationFault), "@full"), ("push", 1),
            ("jmp", "@fill"),
            "full:", ("alloc", 1, 4000), ("jexc", int(Exc.HeapAllocationFault), "@drop"), ("halt",),
            "drop:", ("pop", 1), ("pop", 1), ("uload", 1, 0), ("alloc", 1, 4000), ("halt",))
    core = make_core(backend, *code, config=SMALL_HEAP)
    assert core.run() == Status.HALT
    assert core.get_reg(1)[0] != 0                      # the dropped blocks were collected
    assert core.pending() == {}


def test_a_pointer_overwrite_makes_the_next_collection_run(backend):
    """A heap edge removed after a futile collection (the only reference to a block lived in
    another block): the next allocation collects and succeeds."""
    code = (("alloc", 8, 16),                                   # the holder, kept in r8
            ("uload", 2, 0), ("uload", 5, 8), "fill:", ("alloc", 1, 4000),
            ("jexc", int(Exc.HeapAllocationFault), "@full"), ("push", 1), ("jmp", "@fill"),
            "full:", ("pop", 1), ("store", 8, 1, 5),          # the last block: only the holder refers to it
            ("uload", 1, 0), ("alloc", 1, 4000),                # fails: the holder keeps it alive
            ("jexc", int(Exc.HeapAllocationFault), "@overwrite"), ("halt",),
            "overwrite:", ("store", 8, 2, 5), ("alloc", 1, 4000), ("halt",))
    core = make_core(backend, *code, config=SMALL_HEAP)
    assert core.run() == Status.HALT
    assert core.get_reg(1)[0] != 0
    assert core.pending() == {}
