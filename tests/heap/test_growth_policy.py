"""Growth with the live set after a collection (docs/heap.md "Growth after a collection").

Written once, run on both heaps: the compiled heap (``HeapTester``) and the
reference heap (``PyHeapTester``), which must grow to the same sizes.
"""

from __future__ import annotations

import pytest

from support.heaps import PyHeapTester, compiled_heap_tester

KB = 1024
MB = 1024 * KB


def _compiled(*args, **kwargs):
    return compiled_heap_tester()(*args, **kwargs)


HEAPS = [pytest.param(PyHeapTester, id="reference"), pytest.param(_compiled, id="compiled")]


@pytest.mark.parametrize("make", HEAPS)
def test_after_every_collection_at_least_as_much_is_free_as_live(make):
    # a live list growing next to garbage: after every collection of the policy
    # the heap is less than half full, so the next one frees at least as much as
    # is live (1.25 x: gc_room)
    h = make(16 * KB, 64 * MB, gc_floor=4 * KB)
    live: list[int] = []
    collections = 0
    for i in range(3000):
        if i % 2 == 0:
            live.append(h.alloc_auto(8, True, live))
        else:
            h.alloc_auto(8, True, live)                    # garbage
        if h.stats["collections"] != collections:
            collections = h.stats["collections"]
            used = h.capacity - 8 - h.free_bytes
            assert h.free_bytes >= used - 16               # minus the block allocated after the collection
    assert collections >= 3 and h.capacity > 8 + 32 * KB     # it grew with the list


@pytest.mark.parametrize("make", HEAPS)
def test_a_full_heap_grows_to_its_live_bytes_and_their_room(make):
    h = make(4096, MB, gc_floor=1 << 30)                   # no threshold collections
    live = [h.alloc_auto(8, True, []) for _ in range(4096 // 16)]   # full of live blocks
    h.alloc_auto(8, True, live)                            # no fit: collect, grow to 4096 + 1.25 x 4096
    assert h.capacity == 8 + 4096 + 5120 and h.stats["collections"] == 1


@pytest.mark.parametrize("make", HEAPS)
def test_growth_after_a_collection_stops_at_the_limit(make):
    h = make(4096, 6000, gc_floor=1 << 30)
    live = [h.alloc_auto(8, True, []) for _ in range(4096 // 16)]
    h.alloc_auto(8, True, live)                            # wants 9216, the limit allows 6000
    assert h.capacity == 8 + (6000 & ~7)


@pytest.mark.parametrize("make", HEAPS)
def test_growth_steps_by_half_the_size_when_the_live_set_creeps_up(make):
    # --gc-stress collects before every allocation; a live set that grows one
    # block at a time must not make every allocation grow the arena
    h = make(4096, 64 * MB, gc_stress=True)
    live: list[int] = []
    sizes = set()
    for _ in range(1000):
        live.append(h.alloc_auto(8, True, live))
        sizes.add(h.capacity)
    assert h.stats["collections"] == 1000
    assert len(sizes) <= 8                                 # geometric: 4 KiB -> 32 KiB in steps of >= 1.5x
    assert h.capacity - 8 >= 2 * (1000 - 1) * 16           # and at most half full after the last collection


@pytest.mark.parametrize("make", HEAPS)
def test_manual_blocks_count_as_used_but_ask_for_no_room(make):
    h = make(8192, MB, gc_floor=1 << 30)
    h.alloc(4096 - 8, gc=False)                            # a manual block: half the heap
    live = [h.alloc_auto(8, True, []) for _ in range(4096 // 16)]   # GC blocks fill the rest
    h.alloc_auto(8, True, live)                            # collect: 4096 GC bytes live, 0 free
    assert h.capacity == 8 + 8192 + 5120                   # room (1.25 x) for the live GC bytes only
