"""The reference heap (voxvm/backends/reference/heap.py): allocator, accesses, collector.

Also a randomized model check (hypothesis) of the allocator against a plain
dict-of-bytearrays model, and of the collector against an independently
computed reachability set. The compiled heap is checked against PyHeap in
tests/heap/test_heap_fuzz.py.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.heaps import compiled_heap_tester

from voxvm.backends.reference.heap import FIRST_BLOCK, MIN_GC_FLOOR, MIN_GROWTH, PyHeap, need_bytes


def ptr(value: int) -> bytes:
    return value.to_bytes(8, "big")


# ---------------------------------------------------------------- allocator

def test_layout_first_fit_split_merge():
    heap = PyHeap(1024, 1024)
    a = heap.alloc(10)
    b = heap.alloc(16)
    c = heap.alloc(17)
    # header 8 bytes, payload rounded up to 8 and at least 8
    assert (a, b, c) == (FIRST_BLOCK, FIRST_BLOCK + 24, FIRST_BLOCK + 48)
    assert need_bytes(0) == 16 and need_bytes(8) == 16 and need_bytes(17) == 32
    assert heap.regions() == [(88, 1032 - 88)]
    assert heap.free(b)
    assert heap.regions() == [(32, 24), (88, 1032 - 88)]
    assert heap.alloc(20) == 96                         # b's hole (24 bytes) is too small
    assert heap.alloc(3) == b                           # first fit takes the hole ...
    assert heap.regions()[0] == (48, 8)                 # ... and leaves an 8-byte region
    assert heap.free(b) and heap.free(a)
    assert heap.regions()[0] == (8, 48)                 # merged with the following hole
    assert heap.free(c)
    assert heap.regions()[0] == (8, 80)                 # merged with both neighbours
    heap.check()


def test_no_slack_a_short_rest_stays_free():
    heap = PyHeap(1024, 1024)
    a, b = heap.alloc(40), heap.alloc(8)
    heap.free(a)                                        # a 48-byte hole at 8
    assert heap.alloc(32) == a                          # needs 40; the 8-byte rest stays free
    assert heap.regions()[0] == (48, 8)
    assert heap.alloc(0) > b                            # a 0-byte block needs 16: not in 8
    heap.free(a)
    assert heap.regions()[0] == (8, 48)                 # the rest merges back
    heap.check()


def test_null_is_never_a_block_and_free_faults():
    heap = PyHeap(256, 256)
    assert not heap.free(0)
    a = heap.alloc(32)
    assert a == FIRST_BLOCK
    assert not heap.free(a + 8)                         # interior pointer
    assert heap.free(a)
    assert not heap.free(a)                             # double free


def test_blocks_are_zero_filled_and_exactly_n_bytes_long():
    heap = PyHeap(256, 256)
    a = heap.alloc(8)
    assert heap.write(a, b"\xff" * 8)
    assert heap.free(a)
    b = heap.alloc(5)
    assert b == a
    assert heap.read(b, 5) == bytes(5)
    assert heap.read(b, 6) is None
    assert heap.write(b + 4, b"x")
    assert not heap.write(b + 4, b"xy")
    assert heap.read(b + 5, 1) is None


def test_count_zero_touches_nothing_but_needs_a_block_address():
    heap = PyHeap(256, 256)
    a = heap.alloc(8)
    assert heap.read(a, 0) == b"" and heap.read(a + 8, 0) == b""   # inside or at the end
    assert heap.read(0, 0) is None and heap.read(a + 9, 0) is None
    assert heap.write(a + 3, b"") and not heap.write(0, b"")
    assert heap.copy(a, a + 8, 0) and not heap.copy(0, a, 0)
    empty = heap.alloc(0)
    assert heap.read(empty, 0) == b"" and heap.read(empty, 1) is None


def test_accesses_never_span_two_blocks():
    heap = PyHeap(256, 256)
    a, b = heap.alloc(16), heap.alloc(16)
    assert heap.read(a + 8, 16) is None
    assert not heap.write(a + 15, b"ab")
    assert heap.read(b - 8, 8) is None                  # the header is not accessible


def test_copy_is_memmove():
    heap = PyHeap(256, 256)
    a = heap.alloc(16)
    heap.write(a, bytes(range(16)))
    assert heap.copy(a + 2, a, 10)
    assert heap.read(a, 16) == bytes([0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15])
    b = heap.alloc(4)
    assert not heap.copy(b, a, 8)                       # destination too small
    assert not heap.copy(a, b, 8)                       # source too small


def test_growth():
    log: list[str] = []
    heap = PyHeap(64, 10_000, log=log.append)
    heap.alloc(24, collectable=False)                   # 32 of 64 bytes
    a = heap.alloc(100, collectable=False)              # needs 112: grow to 4096
    assert a == FIRST_BLOCK + 32 and heap.size == 4096
    heap.alloc(5000, collectable=False)                 # deficit: max(8192, size + deficit)
    assert heap.size == 8192
    assert heap.alloc(6000, collectable=False) == 0     # would need more than the 10_000 limit
    assert heap.size == 8192
    assert heap.alloc(3500, collectable=False)          # 3040 free at the end: grows to the limit
    assert heap.size == 10_000
    assert any("grown to 4096" in line for line in log)
    heap.check()


def test_a_request_larger_than_the_maximum_fails_without_collecting():
    heap = PyHeap(1024, 4096)
    heap.alloc(8)
    assert heap.alloc(1 << 62) == 0
    assert heap.alloc(4097) == 0
    assert heap.collections == 0


def test_tiny_heaps_start_empty_and_grow():
    heap = PyHeap(7, 1 << 20)
    assert heap.size == 0 and heap.regions() == []
    assert heap.alloc(0) == FIRST_BLOCK
    assert heap.size == MIN_GROWTH
    heap.check()
    heap = PyHeap(16, 1 << 20)                          # one 16-byte region: exactly one small block
    assert heap.regions() == [(8, 16)]
    assert heap.alloc(8, collectable=False) == FIRST_BLOCK and heap.size == 16
    assert heap.alloc(1, collectable=False) == FIRST_BLOCK + 16 and heap.size == MIN_GROWTH
    heap.check()


# ---------------------------------------------------------------- collector

def test_collect_frees_unreachable_and_keeps_roots():
    heap = PyHeap(4096, 4096)
    a, b, c = heap.alloc(16), heap.alloc(16), heap.alloc(16)
    assert heap.collect([b]) == 2
    assert [blk[0] for blk in heap.blocks()] == [b]
    heap.check()


def test_only_block_starts_keep_blocks_alive():
    # upstream.md §6: interior pointers do not keep a block alive
    heap = PyHeap(4096, 4096)
    a = heap.alloc(24)
    b = heap.alloc(8)
    heap.collect([a, b + 4, 12345])
    assert [blk[0] for blk in heap.blocks()] == [a]


def test_pointers_anywhere_inside_a_block_are_traced():
    heap = PyHeap(4096, 4096)
    head, node1, node2, garbage = (heap.alloc(32) for _ in range(4))
    assert heap.write(head + 8, ptr(node1), is_pointer=True)
    assert heap.write(node1 + 24, ptr(node2), is_pointer=True)
    assert heap.write(node2 + 16, ptr(garbage + 8), is_pointer=True)   # interior: not an edge target
    heap.collect([head])
    assert {blk[0] for blk in heap.blocks()} == {head, node1, node2}
    assert heap.edges() == {head + 8: node1, node1 + 24: node2, node2 + 16: garbage + 8}
    assert heap.pointers() == [head + 8, node1 + 24, node2 + 16]


def test_only_flagged_8_byte_writes_are_edges():
    heap = PyHeap(4096, 4096)
    head, target = heap.alloc(32), heap.alloc(16)
    heap.write(head, ptr(target))                       # not flagged (a uint that looks like it)
    heap.write(head + 8, ptr(target)[4:], is_pointer=True)   # not 8 bytes
    heap.collect([head])
    assert [blk[0] for blk in heap.blocks()] == [head]


@pytest.mark.parametrize("offset,count", [(0, 8), (7, 1), (4, 8), (0, 32), (8, 1)])
def test_overwriting_a_pointer_removes_the_edge(offset, count):
    heap = PyHeap(4096, 4096)
    head, target = heap.alloc(40), heap.alloc(16)
    heap.write(head + 8, ptr(target), is_pointer=True)
    heap.write(head + offset, bytes(count))
    heap.collect([head])
    overlaps = offset < 16 and offset + count > 8
    assert (target in {blk[0] for blk in heap.blocks()}) == (not overlaps)


def test_memcpy_carries_pointers_and_clears_the_destination():
    heap = PyHeap(4096, 4096)
    src, dst, t1, t2 = heap.alloc(32), heap.alloc(32), heap.alloc(8), heap.alloc(8)
    heap.write(src + 8, ptr(t1), is_pointer=True)
    heap.write(dst + 16, ptr(t2), is_pointer=True)
    assert heap.copy(dst, src, 24)                      # covers dst+16: t2's edge is gone
    heap.collect([dst])
    assert {blk[0] for blk in heap.blocks()} == {dst, t1}
    assert heap.edges() == {dst + 8: t1}


def test_partially_copied_pointers_are_not_carried():
    heap = PyHeap(4096, 4096)
    src, dst, target = heap.alloc(16), heap.alloc(16), heap.alloc(8)
    heap.write(src + 8, ptr(target), is_pointer=True)
    heap.copy(dst, src, 12)
    heap.collect([dst])
    assert {blk[0] for blk in heap.blocks()} == {dst}


def test_nogc_blocks_are_never_collected_and_always_traced():
    heap = PyHeap(4096, 4096)
    manual = heap.alloc(16, collectable=False)
    target = heap.alloc(16)
    heap.write(manual, ptr(target), is_pointer=True)
    heap.collect([])
    assert {blk[0] for blk in heap.blocks()} == {manual, target}
    assert heap.blocks()[0][2] == 1 and heap.blocks()[1][2] == 0


def test_freeing_a_gc_block_removes_it_and_its_edges():
    heap = PyHeap(4096, 4096)
    a, target = heap.alloc(16), heap.alloc(16)
    heap.write(a, ptr(target), is_pointer=True)
    assert heap.free(a)
    b = heap.alloc(16)                                  # reuses a's address
    assert b == a and heap.read(b, 16) == bytes(16)
    heap.collect([b])
    assert {blk[0] for blk in heap.blocks()} == {b}      # the old edge died with a


def test_collection_is_triggered_by_allocation_volume():
    heap = PyHeap(8 << 20, 8 << 20)
    assert heap.gc_threshold == heap.gc_floor == max(MIN_GC_FLOOR, (8 << 20) // 4)
    keep = heap.alloc(1000)                             # tile: 1008 bytes
    while heap.gc_since + 1008 < heap.gc_threshold:
        heap.alloc(1000, roots=[keep])
    heap.alloc(1000, roots=[keep])                      # reaches the threshold ...
    assert heap.collections == 0
    heap.alloc(1000, roots=lambda: [keep])              # ... so the next allocation collects
    assert heap.collections == 1
    assert len(heap.blocks()) == 2
    assert heap.gc_since == 1008 and heap.gc_threshold == heap.gc_floor


def test_nogc_allocations_do_not_count_towards_the_trigger():
    heap = PyHeap(1 << 20, 1 << 20)
    heap.alloc(1000, collectable=False)
    assert heap.gc_since == 0


def test_collection_before_growth_and_gc_stress():
    heap = PyHeap(256, 1 << 20)
    first = heap.alloc(200)
    assert heap.alloc(200) == first                     # the garbage was collected instead of growing
    assert heap.size == 256 and heap.collections == 1
    stress = PyHeap(4096, 4096, gc_stress=True)
    for _ in range(5):
        stress.alloc(8)
    assert stress.collections == 5
    assert len(stress.blocks()) == 1


def test_roots_are_computed_only_when_collecting():
    heap = PyHeap(4096, 4096)
    calls = []
    heap.alloc(8, roots=lambda: calls.append(1) or [])
    assert calls == []


def test_gc_log_lines():
    log: list[str] = []
    heap = PyHeap(4096, 4096, log=log.append)
    heap.alloc(8)
    heap.collect([])
    assert log and log[-1].startswith("gc: collection 1: freed 1 blocks")


# ---------------------------------------------------------------- randomized model checks

operations = st.lists(st.tuples(st.sampled_from(["alloc", "free", "write", "read", "copy"]),
                                st.integers(0, 300), st.integers(0, 40), st.integers(0, 40)),
                      max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations, st.booleans())
def test_allocator_matches_a_simple_model(ops, small):
    heap = PyHeap(128 if small else 2048, 1 << 16)
    model: dict[int, bytearray] = {}

    def containing(address: int, count: int):
        for start, data in model.items():
            if start <= address and address + count <= start + len(data):
                return start
        return None

    for kind, x, y, z in ops:
        starts = sorted(model)
        pick = starts[x % len(starts)] if starts else 16 + x
        if kind == "alloc":
            address = heap.alloc(x, collectable=False)
            assert address != 0 and address % 8 == 0 and address not in model
            assert all(address + x <= s or s + len(d) <= address for s, d in model.items())
            model[address] = bytearray(x)
        elif kind == "free":
            assert heap.free(pick) == (pick in model)
            model.pop(pick, None)
        elif kind == "write":
            data = bytes([y]) * z
            expected = containing(pick + y, z) is not None
            assert heap.write(pick + y, data) == expected
            if expected and z:
                start = containing(pick + y, z)
                model[start][pick + y - start:pick + y - start + z] = data
        elif kind == "read":
            start = containing(pick + y, z)
            got = heap.read(pick + y, z)
            if start is None:
                assert got is None
            else:
                assert got == bytes(model[start][pick + y - start:pick + y - start + z])
        else:
            other = starts[y % len(starts)] if starts else 16
            src, dst = containing(pick, z), containing(other, z)
            ok = heap.copy(other, pick, z)
            assert ok == (src is not None and dst is not None)
            if ok and z:
                chunk = bytes(model[src][pick - src:pick - src + z])
                model[dst][other - dst:other - dst + z] = chunk
        heap.check()
    assert {a: bytes(d) for a, d in model.items()} == {a: d for a, _, _, d in heap.blocks()}


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.lists(st.tuples(st.integers(0, 11), st.integers(0, 3),
                                              st.integers(0, 11)), max_size=30),
       st.lists(st.integers(0, 11), max_size=3), st.sets(st.integers(0, 11), max_size=3))
def test_collector_frees_exactly_the_unreachable_blocks(n, links, roots, manual):
    heap = PyHeap(1 << 16, 1 << 16)
    blocks = [heap.alloc(32, collectable=i not in manual) for i in range(n)]
    graph: dict[int, dict[int, int]] = {i: {} for i in range(n)}
    for source, slot, target in links:
        if source < n and target < n:
            heap.write(blocks[source] + 8 * slot, ptr(blocks[target]), is_pointer=True)
            graph[source][slot] = target
    reachable: set[int] = set()
    frontier = [r for r in roots if r < n] + [m for m in manual if m < n]
    while frontier:
        index = frontier.pop()
        if index not in reachable:
            reachable.add(index)
            frontier.extend(graph[index].values())
    heap.collect([blocks[r] for r in roots if r < n])
    assert {blk[0] for blk in heap.blocks()} == {blocks[i] for i in reachable}
    heap.check()


# ---------------------------------------------------------------- same contract as the compiled heap
# PyHeap is the oracle of the compiled heap's fuzz (tests/heap/test_heap_fuzz.py,
# tests/support/heaps.py): the random lockstep runs live there.

def test_count_zero_at_the_end_of_the_last_block_of_the_arena():
    """The end of a block is a valid count-0 address even where the arena ends too."""
    heap = PyHeap(4096, 4096)
    end = heap.alloc(4088) + 4088
    assert end == heap.capacity
    assert heap.read(end, 0) == b"" and heap.write(end, b"") and heap.copy(end, end, 0)
    assert heap.read(end, 1) is None


def test_compiled_heap_count_zero_at_the_end_of_the_arena():
    """Regression (fixed in the compiled heap 8cb468d): the answer once depended on the lookup cache."""
    heap = compiled_heap_tester()(4096, 4096)
    end = heap.alloc(4088) + 4088
    heap.collect([end - 4088])                          # empties the lookup cache
    assert heap.read(end, 0) == b"" and heap.write(end, b"") and heap.copy(end, end, 0)
    assert heap.read(end, 1) is None


def test_mark_stack_overflow_still_marks_everything(monkeypatch):
    """With a mark stack of 2 entries, the rescans after an overflow reach every block."""
    from voxvm.backends.reference import heap as pyheap

    monkeypatch.setattr(pyheap, "MARK_STACK_LIMIT", 2)
    heap = PyHeap(1 << 16, 1 << 16)
    root = heap.alloc(8 * 40)
    fan = [heap.alloc(16) for _ in range(40)]           # a wide fan-out from the root ...
    chain = [heap.alloc(16) for _ in range(30)]         # ... and a long list from its last entry
    garbage = [heap.alloc(16) for _ in range(10)]
    for slot, block in enumerate(fan):
        heap.write(root + 8 * slot, ptr(block), is_pointer=True)
    for source, target in zip([fan[-1]] + chain, chain):
        heap.write(source + 8, ptr(target), is_pointer=True)
    assert heap.collect([root]) == len(garbage)
    assert {blk[0] for blk in heap.blocks()} == {root, *fan, *chain}
    heap.check()
