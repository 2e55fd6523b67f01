"""The reference heap's host memory stays near its arena, whatever the block count.

Owns the bound stated in docs/resource-limits.md (row "heap") for the
pure-Python backend: PyHeap keeps its metadata in the arena and in one code
byte per 8-byte granule (voxvm/backends/reference/heap.py, "Representation"),
so filling ``--max-heap`` with the smallest blocks (one per 16 bytes) costs
about 1.15 times the arena, not a Python object per block. Measured with
tracemalloc (every allocation made through Python's allocators) while the heap
is filled, fully marked, fragmented and swept, directly and through a program
on the python backend. The old representation (a Python object, a dict and
list entries per block) took about 250 bytes per 16-byte block: 1 MB here.

The heaps are small because tracemalloc slows every Python allocation down
many times; the cost per block is what is measured, and the bound is linear.
"""

from __future__ import annotations

import io
import tracemalloc

from voxasm import assemble_program as assemble
from voxvm.backends.reference.heap import FIRST_BLOCK, PyHeap, need_bytes
from voxvm.config import VMConfig
from voxvm.machine import run_program

MAX_HEAP = 64 * 1024           # 4096 blocks of 8 bytes
HEAP_SLACK = 64 * 1024         # PyHeap alone: the mark stack, a collection's locals, the test's own
VM_SLACK = 256 * 1024          # a whole VM: 64 KiB of main memory, stacks, handler tables


def traced_peak(run) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def fill_mark_fragment_sweep() -> int:
    heap = PyHeap(4096, MAX_HEAP)
    previous = blocks = 0
    while address := heap.alloc_raw(8):                 # a linked list: every block holds a pointer
        heap.write(address, previous.to_bytes(8, "big"), is_pointer=True)
        previous, blocks = address, blocks + 1
    assert heap.collect([previous]) == 0                # marks every block
    tile = need_bytes(8)
    for address in range(FIRST_BLOCK, heap.capacity, 2 * tile):
        assert heap.free(address)                       # as many free regions as blocks
    assert heap.free_bytes == blocks // 2 * tile
    assert heap.collect([]) == blocks // 2              # sweeps the rest
    assert heap.free_bytes == heap.size
    return blocks


def test_pyheap_filled_with_the_smallest_blocks():
    blocks, peak = traced_peak(fill_mark_fragment_sweep)
    assert blocks == MAX_HEAP // need_bytes(8)
    assert peak <= 1.2 * MAX_HEAP + HEAP_SLACK, f"{peak} bytes traced for a {MAX_HEAP}-byte heap"


FILL = """
section text
.start
    uload r2 1
    uload r3 0
    uload r20 8             ; count: a whole word, so the store records a pointer
    uload r11 0             ; blocks allocated
    alloc r10 8
label fill
    alloc r12 8
    jexc @heap_allocation_fault @full
    store r12 r10 r20       ; each block points to the previous one: all stay reachable
    movr r10 r12
    uinc r11
    jmp @fill
label full
    movr r1 r11
    ncall 1 r0
    halt
"""


def run_fill(max_heap: int) -> tuple[int, bytes]:
    config = VMConfig(backend="python", init_ram=64 * 1024, init_heap=4096, max_heap=max_heap)
    out = io.BytesIO()
    status = run_program(assemble(FILL, "fill.vvs"), config, stdin=io.BytesIO(), stdout=out,
                         stderr=io.BytesIO())
    return status, out.getvalue()


def test_program_on_the_python_backend_fills_the_heap():
    run_fill(4096)                  # first: the lazy imports and caches of a run are not the heap's
    (status, out), peak = traced_peak(lambda: run_fill(MAX_HEAP))
    assert status == 0
    assert int(out.split()[0]) == MAX_HEAP // need_bytes(8) - 1
    assert peak <= 1.2 * MAX_HEAP + VM_SLACK, f"{peak} bytes traced for a {MAX_HEAP}-byte heap"
