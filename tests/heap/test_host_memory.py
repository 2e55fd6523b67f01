"""The reference heap's host memory: its arena plus a few percent, whatever the block count.

Owns the bound stated in docs/resource-limits.md (row "heap") for the
pure-Python backend: PyHeap keeps its metadata in the arena and in bitmaps of
one bit per 8-byte granule (voxvm/backends/reference/heap.py,
"Representation"), so filling ``--max-heap`` with the smallest blocks (one per
16 bytes, each holding a pointer) costs the arena plus 2/64 of it plus the
first-fit bounds and a summary (1/512 each), or 5/64 more once a pointer is
stored unaligned; never a Python object per block. Measured two ways while
the heap is filled, fully marked, fragmented and swept: the pages of the
heap's own mappings that hold memory (/proc/self/pagemap, Linux), and every
allocation made through Python's allocators (tracemalloc), directly and
through a program on the python backend. The representation before this one
(a code byte per granule) took 1/8 more than the arena; the one before it (a
Python object, a dict and list entries per block) about 250 bytes per
16-byte block.
"""

from __future__ import annotations

import io
import tracemalloc

import pytest
from support.memory import HAVE_PAGEMAP, PAGE, resident_bytes

from voxasm import assemble_program as assemble
from voxvm.backends.reference.heap import FIRST_BLOCK, PyHeap, need_bytes
from voxvm.config import VMConfig
from voxvm.machine import run_program

MAX_HEAP = 1 << 20             # 65536 blocks of 8 bytes
HEAP_SLACK = 64 * 1024         # PyHeap's Python objects: the mark stack, a collection's locals
VM_SLACK = 256 * 1024          # a whole VM: 64 KiB of main memory, stacks, handler tables
ALIGNED = 2 / 64 + 2 / 512     # tile and pointer bits, the summary of the tile bits, the bounds
UNALIGNED = ALIGNED + 3 / 64   # plus the three planes of pointer offsets


def traced_peak(run) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def heap_mappings(heap: PyHeap) -> list:
    return [heap.data, heap._tiles, heap._tile_words, heap._ptrs] + (heap._offsets or [])


def fill_mark_fragment_sweep(offset: int) -> tuple[PyHeap, int]:
    """Fill the heap with linked blocks (a pointer at ``offset`` in each), mark them all,
    free every other one, sweep the rest."""
    heap = PyHeap(4096, MAX_HEAP)
    size = 8 + offset
    previous = blocks = 0
    while address := heap.alloc_raw(size):             # a linked list: every block holds a pointer
        heap.write(address + offset, previous.to_bytes(8, "big"), is_pointer=True)
        previous, blocks = address, blocks + 1
    assert heap.collect([previous]) == 0                # marks every block
    tile = need_bytes(size)
    left = heap.free_bytes                              # the end of the arena no block fits in
    freed = range(FIRST_BLOCK, FIRST_BLOCK + blocks * tile, 2 * tile)
    for address in freed:
        assert heap.free(address)                       # as many free regions as blocks
    assert heap.free_bytes == left + len(freed) * tile
    assert heap.collect([]) == blocks - len(freed)      # sweeps the rest
    assert heap.free_bytes == heap.size
    heap.check()
    return heap, blocks


@pytest.mark.parametrize("offset, overhead", [(0, ALIGNED), (4, UNALIGNED)],
                         ids=["aligned-pointers", "unaligned-pointers"])
def test_pyheap_filled_with_the_smallest_blocks(offset, overhead):
    (heap, blocks), peak = traced_peak(lambda: fill_mark_fragment_sweep(offset))
    assert blocks == MAX_HEAP // need_bytes(8 + offset)
    assert peak <= HEAP_SLACK, f"{peak} bytes of Python objects for a {MAX_HEAP}-byte heap"
    if HAVE_PAGEMAP:
        mappings = heap_mappings(heap)
        resident = sum(resident_bytes(buffer) for buffer in mappings)
        bound = MAX_HEAP * (1 + overhead) + PAGE * len(mappings)
        assert resident <= bound, f"{resident} bytes resident for a {MAX_HEAP}-byte heap"
        assert resident >= MAX_HEAP, "the measure missed the arena"


@pytest.mark.skipif(not HAVE_PAGEMAP, reason="resident pages are read from Linux's /proc/self/pagemap")
def test_growing_and_allocating_touch_only_what_is_written():
    heap = PyHeap(4096, 1 << 30)
    a = heap.alloc_raw(600 << 20)                       # grows the arena to 600 MiB + a bit
    assert a and heap.size >= 600 << 20
    assert resident_bytes(heap.data) <= 4 * PAGE        # header, a region word: nothing zero-filled
    heap.write(a + (300 << 20), b"\x01" * 8)
    assert heap.read(a + (300 << 20) - 8, 24) == bytes(8) + b"\x01" * 8 + bytes(8)
    assert heap.free(a)
    b = heap.alloc_raw(600 << 20)                       # the same block again: zeroed by
    assert b == a and heap.read(a + (300 << 20), 8) == bytes(8)   # dropping its pages
    assert resident_bytes(heap.data) <= 6 * PAGE
    heap.check()


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
    small = 64 * 1024
    run_fill(4096)                  # first: the lazy imports and caches of a run are not the heap's
    (status, out), peak = traced_peak(lambda: run_fill(small))
    assert status == 0
    assert int(out.split()[0]) == small // need_bytes(8) - 1
    # the heap's own memory is mapped, not Python's: what is traced is the VM's, not per block
    assert peak <= VM_SLACK, f"{peak} bytes traced for a {small}-byte heap"
