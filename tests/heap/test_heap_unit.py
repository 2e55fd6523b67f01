"""Deterministic tests of voxvm.backends.compiled._heaptest (the C heap): layout, faults, pointers, the collector, policy.

Each test names the docs/semantics.md item (or docs/heap.md rule) it pins down.
The random differential tests (against PyHeap) live in tests/heap/test_heap_fuzz.py.
"""

from __future__ import annotations

import threading

import pytest

from support.heaps import compiled_heap_module

heap_mod = compiled_heap_module()
HeapTester = heap_mod.HeapTester
HeapInvariantError = heap_mod.HeapInvariantError

U64 = (1 << 64) - 1
KB = 1024
MB = 1024 * KB


def tile(n: int) -> int:
    """Bytes a block of n bytes occupies: 8-byte header + n rounded up to 8 (at least 8)."""
    return 8 + max(8, (n + 7) // 8 * 8)


# ---- layout and first fit (semantics.md §3 items 9, 12) --------------------------------


def test_first_block_is_at_16_and_null_is_never_a_block():
    h = HeapTester(4096, MB)
    a = h.alloc(10)
    assert a == 16
    assert not h.is_block(0) and h.block_size(0) is None
    assert h.read(0, 0) is None and h.read(0, 1) is None
    assert h.free(0) is False
    h.check()


def test_blocks_are_consecutive_tiles_8_byte_aligned():
    h = HeapTester(4096, MB)
    sizes = [1, 8, 9, 16, 17, 100, 0, 3]
    addrs = [h.alloc(n) for n in sizes]
    expect, pos = [], 16
    for n in sizes:
        expect.append(pos)
        pos += tile(n)
    assert addrs == expect
    assert all(a % 8 == 0 for a in addrs)
    assert h.blocks() == [(a, n, True) for a, n in zip(addrs, sizes)]
    h.check()


def test_first_fit_takes_the_lowest_addressed_hole_that_fits():
    h = HeapTester(4096, MB)
    a, b, c, d, e = (h.alloc(n) for n in (64, 8, 32, 8, 200))
    h.free(a)                   # hole of tile(64) at the bottom
    h.free(c)                   # hole of tile(32) higher up
    assert h.alloc(24) == a     # fits both holes: the lowest wins (72 bytes, takes 32)
    assert h.alloc(24) == a + 32            # the 40 bytes left still fit
    assert h.alloc(24) == c     # 8 bytes left at the bottom: too small, next hole up
    h.check()


def test_split_leaves_the_rest_free_and_free_merges_both_neighbours():
    h = HeapTester(4096, MB)
    a, b, c, guard = h.alloc(16), h.alloc(16), h.alloc(16), h.alloc(16)
    h.free(a)
    h.free(c)
    assert len(h.regions()) == 3            # a's hole, c's hole, the tail
    h.free(b)                               # merges with a's hole and c's hole
    assert h.regions()[0] == (8, 3 * tile(16))
    assert len(h.regions()) == 2
    h.free(guard)                           # now everything is one region
    assert h.regions() == [(8, h.heap_size)]
    assert h.nblocks == 0 and h.used_bytes == 0
    h.check()


def test_allocation_is_zero_filled_even_when_memory_is_reused():
    h = HeapTester(4096, MB)
    a = h.alloc(64)
    assert h.write(a, b"\xff" * 64)
    h.free(a)
    assert h.alloc(64) == a
    assert h.read(a, 64) == bytes(64)


def test_an_n_byte_block_has_exactly_n_bytes():
    h = HeapTester(4096, MB)
    a = h.alloc(13)
    assert h.write(a, b"x" * 13)
    assert not h.write(a, b"x" * 14)
    assert not h.write(a + 13, b"x")
    assert h.read(a + 12, 1) == b"x" and h.read(a + 13, 1) is None
    assert h.load(a + 5, 8) == int.from_bytes(b"x" * 8, "big")
    assert h.load(a + 6, 8) is None                     # would cross the end
    assert not h.store(a + 6, 1, 8)
    h.alloc(13)
    assert h.read(a + 13, 2) is None                    # the slack and the next header
    assert h.read(a - 8, 8) is None                     # the header is not accessible


def test_count_zero_touches_nothing_but_needs_an_address_inside_a_block():
    h = HeapTester(4096, MB)
    a = h.alloc(8)
    assert h.read(a, 0) == b"" and h.read(a + 8, 0) == b""      # inside, or at the end
    assert h.read(a + 9, 0) is None and h.read(8, 0) is None
    assert h.write(a + 8, b"") and not h.write(5000, b"")
    assert h.copy(a, a + 8, 0) and not h.copy(a, 1 << 40, 0)


def test_count_zero_at_the_end_of_the_last_block_of_a_full_arena():
    # found by tools/fuzz_heap.py: the end of the last block is the arena's end
    h = HeapTester(4096, 4096)
    a = h.alloc(4096 - 8)
    assert a + 4096 - 8 == h.capacity
    h.alloc(0)                                  # fails (full); the lookup cache is cold
    h.read(a, 1)
    assert h.write(h.capacity, b"") and h.read(h.capacity, 0) == b""
    g = HeapTester(4096, 4096)
    b = g.alloc(4096 - 8)
    assert g.free(b) is True and g.alloc(4096 - 8) == b
    assert g.read(g.capacity, 0) == b""         # straight after alloc: cached
    g.collect([b])
    assert g.read(g.capacity, 0) == b""         # after a collection: cache cleared, slow path
    assert g.read(g.capacity + 8, 0) is None


def test_zero_size_block_is_a_distinct_block_whose_accesses_of_count_1_fault():
    h = HeapTester(4096, MB)
    z1, z2 = h.alloc(0), h.alloc(0)
    assert z1 != 0 and z2 != 0 and z1 != z2 and z2 - z1 == tile(0)
    assert h.block_size(z1) == 0
    assert h.read(z1, 0) == b"" and h.read(z1, 1) is None and h.load(z1, 1) is None
    assert not h.store(z1, 7, 1)
    assert h.free(z1) and not h.free(z1)
    h.check()


# ---- faults and absurd sizes (semantics.md §3 items 9, 10) --------------------------------


@pytest.mark.parametrize("bad", ["double", "interior", "zero", "header", "garbage", "huge", "odd"])
def test_free_of_anything_but_a_live_block_start_faults(bad):
    h = HeapTester(4096, MB)
    a, b = h.alloc(32), h.alloc(32)
    if bad == "double":
        assert h.free(a)
    addr = {"double": a, "interior": b + 8, "zero": 0, "header": b - 8, "garbage": 3000,
            "huge": U64, "odd": b + 1}[bad]
    before = h.blocks()
    assert h.free(addr) is False
    assert h.blocks() == before
    h.check()


@pytest.mark.parametrize("n", [1 << 63, U64, (1 << 63) - 1, 2 * MB, MB + 1])
def test_absurd_sizes_fail_cleanly_without_growing(n):
    h = HeapTester(4096, MB)                # max heap 1 MiB
    cap = h.capacity
    assert h.alloc(n) == 0
    assert h.alloc_auto(n, True, []) == 0
    assert h.capacity == cap and h.stats["failed_allocs"] == 2
    assert h.alloc(8) == 16                 # the heap still works
    h.check()


def test_the_largest_possible_block_fits_exactly_under_the_limit():
    h = HeapTester(0, 64 * KB)
    n = 64 * KB - 8                          # header + payload = the whole heap
    a = h.alloc(n)
    assert a == 16 and h.capacity == 8 + 64 * KB and h.regions() == []
    assert h.alloc(0) == 0
    assert h.free(a)
    assert h.alloc(n + 1) == 0
    h.check()


def test_fail_after_injects_allocation_failures():
    h = HeapTester(4096, MB, fail_after=2)
    assert h.alloc(8) and h.alloc(8)
    assert h.alloc(8) == 0 and h.alloc_auto(8, True, []) == 0
    h.fail_after = -1
    assert h.alloc(8)


# ---- growth and limits (semantics.md §4) ---------------------------------------------------


def test_heap_grows_by_doubling_and_addresses_and_contents_survive():
    h = HeapTester(4096, 16 * MB)
    first = h.alloc(1000)
    h.write(first, bytes(range(256)) * 3 + b"end")
    blocks = [h.alloc(1000) for _ in range(20)]
    assert h.capacity == 8 + 32 * KB        # 4K -> 8K -> 16K -> 32K
    assert h.stats["grows"] == 3
    assert h.read(first, 771) == bytes(range(256)) * 3 + b"end"
    assert len(set(blocks)) == 20 and all(h.is_block(b) for b in blocks)
    h.check()


def test_growth_merges_with_a_free_tail_and_never_passes_the_limit():
    h = HeapTester(4096, 10000)
    a = h.alloc(3000)                       # leaves a free tail
    b = h.alloc(3000)                       # needs growth: merged with the tail
    assert a and b and h.capacity == 8 + 8192
    assert h.alloc(5000) == 0               # 8192 -> 10000 (the limit) is not enough
    assert h.alloc(1000) and h.capacity == 8 + 8192     # fits the tail: no growth
    c = h.alloc(2500)
    assert c and h.capacity == 8 + 10000   # doubling capped at the limit
    h.check()


def test_empty_initial_heap_grows_on_demand():
    h = HeapTester(0, MB)
    assert h.heap_size == 0 and h.regions() == []
    assert h.alloc(8) == 16
    assert h.capacity == 8 + 4096
    h.check()


# ---- store / load (semantics.md §3 item 11) -------------------------------------------------


@pytest.mark.parametrize("k", range(1, 9))
def test_store_and_load_use_the_low_k_bytes_big_endian_and_round_trip(k):
    h = HeapTester(4096, MB)
    a = h.alloc(8)
    value = 0x0123456789ABCDEF
    assert h.store(a, value, k)
    low = value & ((1 << (8 * k)) - 1)
    assert h.read(a, k) == low.to_bytes(k, "big")
    assert h.load(a, k) == low
    assert h.read(a + k, 8 - k) == bytes(8 - k)


# ---- pointer tracking (semantics.md §3 item 8) -----------------------------------------------


def test_pointer_store_records_and_plain_writes_remove():
    h = HeapTester(4096, MB)
    a, b = h.alloc(32), h.alloc(8)
    assert h.store_pointer(a + 8, b) and h.pointers() == [a + 8]
    assert h.store(a + 8, b, 4, pointer=True) and h.pointers() == []   # count < 8: not a pointer
    h.store_pointer(a + 8, b)
    h.store(a + 15, 0, 1)                    # overlaps the last byte
    assert h.pointers() == []
    h.store_pointer(a + 8, b)
    h.store(a + 1, 0, 8)                     # overlaps the first byte
    assert h.pointers() == []
    h.store_pointer(a + 8, b)
    h.store(a, 0, 8)                         # adjacent, no overlap
    h.store(a + 16, 0, 8)
    assert h.pointers() == [a + 8]
    assert h.write(a + 10, b"\0")            # storedat / natives
    assert h.pointers() == []
    h.store_pointer(a + 8, b)
    h.store_pointer(a + 12, b)               # an overlapping pointer replaces it
    assert h.pointers() == [a + 12]
    h.store_pointer(a + 3, b)                # unaligned; [a+3, a+11) misses a+12
    assert h.pointers() == [a + 3, a + 12]
    h.store_pointer(a + 5, b)                # overlaps both
    assert h.pointers() == [a + 5]
    h.check()


def test_memcpy_carries_pointers_and_drops_overwritten_ones():
    h = HeapTester(4096, MB)
    src, dst, x = h.alloc(32), h.alloc(32), h.alloc(8)
    h.store_pointer(src, x)
    h.store_pointer(src + 20, x)             # only partly inside a 24-byte copy
    h.store_pointer(dst + 16, x)             # inside the destination: overwritten
    h.store_pointer(dst + 24, x)             # just past it: kept
    assert h.copy(dst, src, 24)
    assert h.pointers() == [src, src + 20, dst, dst + 24]
    assert h.load(dst, 8) == x
    assert h.copy(src + 1, src, 27)          # overlapping move forwards: src+20 is cut
    assert h.pointers() == [src + 1, dst, dst + 24]
    assert h.copy(src, src + 1, 27)          # and back
    assert h.pointers() == [src, dst, dst + 24]
    h.check()


def test_free_drops_the_pointers_inside_the_block():
    h = HeapTester(4096, MB)
    a, b = h.alloc(64), h.alloc(8)
    for off in (0, 8, 40):
        h.store_pointer(a + off, b)
    h.free(a)
    assert h.pointers() == [] and h.ptr_count == 0
    h.check()


# ---- the collector (semantics.md §3 items 8, 10) ---------------------------------------------


def test_collect_frees_exactly_the_unreachable_blocks():
    h = HeapTester(64 * KB, MB)
    root, child, grandchild, garbage, cyc1, cyc2 = (h.alloc(24) for _ in range(6))
    h.store_pointer(root + 16, child)        # pointers anywhere in a block are traced
    h.store_pointer(child + 3, grandchild)
    h.store_pointer(cyc1, cyc2)              # an unreachable cycle
    h.store_pointer(cyc2, cyc1)
    assert h.collect([root]) == 3
    assert [a for a, _, _ in h.blocks()] == [root, child, grandchild]
    assert h.stats["last_freed_blocks"] == 3 and h.stats["last_marked"] == 3
    h.check()


def test_interior_pointers_and_stale_values_keep_nothing_alive():
    h = HeapTester(64 * KB, MB)
    a, b = h.alloc(32), h.alloc(32)
    h.store_pointer(a, b + 8)                # interior: does not count
    assert h.collect([a + 8, 12345, 0, U64]) == 2
    assert h.blocks() == []


def test_only_values_tagged_8_are_roots():
    h = HeapTester(64 * KB, MB)
    a, b, c = h.alloc(8), h.alloc(8), h.alloc(8)
    assert h.collect([a, b, c], tags=[8, 1, 9]) == 2
    assert [x for x, _, _ in h.blocks()] == [a]


def test_pointer_overwritten_by_plain_data_is_no_longer_an_edge():
    h = HeapTester(64 * KB, MB)
    a, b = h.alloc(16), h.alloc(16)
    h.store_pointer(a, b)
    h.store(a, b, 8)                         # same bits, but a plain uint store
    assert h.collect([a]) == 1 and not h.is_block(b)


def test_memcpy_carried_pointer_keeps_its_target_alive():
    h = HeapTester(64 * KB, MB)
    src, dst, target = h.alloc(16), h.alloc(16), h.alloc(16)
    h.store_pointer(src + 8, target)
    h.copy(dst, src, 16)
    assert h.collect([dst]) == 1             # src is garbage, target is not
    assert h.is_block(target) and not h.is_block(src)


def test_nogc_blocks_are_never_collected_and_are_roots():
    h = HeapTester(64 * KB, MB)
    manual = h.alloc(16, gc=False)
    kept, lost = h.alloc(16), h.alloc(16)
    h.store_pointer(manual, kept)            # only a manual block refers to it
    assert h.collect([]) == 1
    assert h.blocks() == [(manual, 16, False), (kept, 16, True)]
    assert h.free(manual)                    # manual blocks are freed by the program
    assert h.collect([]) == 1 and h.blocks() == []


def test_freeing_a_gc_block_removes_it_from_the_collector():
    h = HeapTester(64 * KB, MB)
    a = h.alloc(16)
    assert h.free(a) and h.gc_blocks == 0
    b = h.alloc(16, gc=False)                # reuses a's address
    assert b == a
    assert h.collect([]) == 0 and h.is_block(b)


def test_wide_fanout_overflows_the_mark_stack_and_still_marks_everything():
    h = HeapTester(8 * MB, 64 * MB)
    fan = 70000                              # more children than the mark stack holds
    hub = h.alloc(8 * fan)
    kids = [h.alloc(8) for _ in range(fan)]
    for i, kid in enumerate(kids):
        h.store_pointer(hub + 8 * i, kid)
    grandkid = h.alloc(8)
    h.store_pointer(kids[-1], grandkid)
    garbage = [h.alloc(8) for _ in range(100)]
    assert h.collect([hub]) == len(garbage)
    assert h.nblocks == fan + 2
    h.check()


def test_long_chain_is_marked_without_recursion():
    h = HeapTester(8 * MB, 64 * MB)
    head = prev = h.alloc(16)
    for _ in range(100000):
        node = h.alloc(16)
        h.store_pointer(prev + 8, node)
        prev = node
    h.alloc(16)
    assert h.collect([head]) == 1
    assert h.nblocks == 100001


def test_sweep_merges_freed_runs_with_existing_free_regions():
    h = HeapTester(64 * KB, MB)
    blocks = [h.alloc(16) for _ in range(10)]
    h.free(blocks[3])
    assert h.collect(blocks[:2] + blocks[6:7]) == 6    # 2,4,5 and 7,8,9 die
    assert h.regions()[0] == (blocks[2] - 8, 4 * tile(16))  # 2, (3, already free), 4, 5
    assert h.regions()[1][0] == blocks[7] - 8         # 7..9 merged with the tail
    assert len(h.regions()) == 2
    h.check()


# ---- when the collector runs (docs/heap.md) --------------------------------------------


def test_gc_stress_collects_before_every_allocation():
    h = HeapTester(64 * KB, MB, gc_stress=True)
    for _ in range(5):
        h.alloc_auto(16, True, [])
    assert h.stats["collections"] == 5 and h.nblocks == 1
    assert h.alloc(16) and h.stats["collections"] == 5     # plain alloc never collects


def test_threshold_collection_and_threshold_follow_the_live_heap():
    h = HeapTester(MB, 16 * MB, gc_floor=1024)
    keep = [h.alloc_auto(8, True, []) for _ in range(64)]  # 64 tiles of 16 bytes
    assert h.stats["collections"] == 0 and h.gc_since == 1024
    x = h.alloc_auto(8, True, keep)                        # gc_since reached the threshold
    assert h.stats["collections"] == 1 and h.stats["last_freed_blocks"] == 0
    assert h.gc_threshold == 1024 + 256 and h.gc_since == 16     # 1.25 x the 64 live tiles
    big = h.alloc_auto(4000, True, keep + [x])             # below the threshold: no collection
    assert h.stats["collections"] == 1 and h.gc_since == 16 + tile(4000)
    h.alloc_auto(8, True, keep + [x, big])
    assert h.stats["collections"] == 2
    live = 65 * 16 + tile(4000)
    assert h.gc_threshold == live + live // 4              # now the live heap (x 1.25) is the threshold


def test_nogc_allocations_do_not_count_towards_the_threshold():
    h = HeapTester(MB, 16 * MB, gc_floor=1024)
    for _ in range(200):
        h.alloc_auto(8, False, [])
    assert h.gc_since == 0 and h.stats["collections"] == 0


def test_collects_before_growing_and_grows_when_little_is_freed():
    h = HeapTester(4096, MB, gc_floor=1 << 30)             # no threshold collections
    for _ in range(4096 // 16):
        h.alloc_auto(8, True, [])                          # garbage fills the heap exactly
    cap = h.capacity
    h.alloc_auto(8, True, [])                              # no fit: collect instead of growing
    assert h.stats["collections"] == 1 and h.capacity == cap
    live = [h.alloc_auto(8, True, []) for _ in range(10)]
    rest = [h.alloc_auto(8, True, live) for _ in range(4096 // 16 - 11)]
    h.alloc_auto(8, True, live + rest)                     # everything is live: collect, then grow
    live_bytes = (4096 // 16 - 1) * 16                     # to the live bytes and 1.25 x as much room
    room = live_bytes + live_bytes // 4                    # (docs/heap.md), a multiple of 8
    assert h.stats["collections"] == 2 and h.capacity == 8 + ((live_bytes + room + 7) & ~7)


def test_allocation_fails_only_after_a_last_collection():
    h = HeapTester(4096, 4096, gc_floor=1 << 30)
    while h.alloc(8, gc=True):                             # manual alloc: no collection
        pass
    assert h.alloc_auto(8, True, []) == 16                 # collect, then fit
    assert h.stats["collections"] == 1


def test_failed_fit_without_gc_garbage_grows_without_collecting():
    h = HeapTester(4096, MB, gc_floor=1 << 30)
    h.alloc(4000, gc=False)
    h.alloc_auto(100, False, [])
    assert h.stats["collections"] == 0 and h.capacity == 8 + 8192


# ---- statistics, isolation, self-check ----------------------------------------------------


def test_statistics_add_up():
    h = HeapTester(64 * KB, MB)
    for _ in range(10):
        h.alloc(100)
    h.free(16)
    h.collect([])
    s = h.stats
    assert s["allocs"] == 10 and s["frees"] == 1 and s["collections"] == 1
    assert s["freed_blocks_total"] == 9 and s["freed_bytes_total"] == 900
    assert s["last_live_bytes"] == 0 and s["gc_ns_total"] >= s["last_ns"] > 0
    assert h.payload_bytes == 0 and h.free_bytes == h.heap_size


def test_heaps_are_independent_even_on_threads():
    def work(h, out):
        for i in range(2000):
            a = h.alloc(i % 50)
            h.store(a, i, 1) if i % 50 else None
            if i % 3 == 0:
                h.free(a)
        h.collect([])
        h.check()
        out.append(h.nblocks)
    heaps = [HeapTester(4096, MB) for _ in range(4)]
    out: list[int] = []
    threads = [threading.Thread(target=work, args=(h, out)) for h in heaps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [0, 0, 0, 0]


@pytest.mark.parametrize("where", ["header", "region", "region_zero"])
def test_check_detects_corruption(where):
    h = HeapTester(4096, MB)
    a, b = h.alloc(16), h.alloc(16)
    h.free(a)
    h.check()
    if where == "header":
        h.debug_poke(b - 8, 1000)            # the block claims 1000 bytes
    elif where == "region":
        h.debug_poke(a - 8, 1)               # the free region claims 1 granule
    else:
        h.debug_poke(a - 8, 0)
    with pytest.raises(HeapInvariantError):
        h.check()


def test_benchmark_helpers_run():
    h = HeapTester(MB, 64 * MB)
    assert h.bench_alloc_free(1000, 1000, 64) > 0
    h.check()
    g = HeapTester(MB, 64 * MB)
    assert g.bench_ring(20000, 1024) > 0
    assert g.stats["collections"] > 0 and g.nblocks <= 1024 + 20000
    g.check()
