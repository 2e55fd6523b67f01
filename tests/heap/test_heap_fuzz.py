"""CI fuzzing of the compiled heap (HeapTester) against PyHeap, the one Python heap model.

A hypothesis state machine drives alloc / alloc_auto (the VM's collection
policy) / free / write / read / store / store-pointer / load / copy /
collect on the C heap and on the oracle (tests/support/heaps.py: PyHeap behind
the HeapTester interface), and after every step checks that
they agree on everything observable: block addresses and sizes (so first fit
picks the lowest-addressed fit), free regions (so free space is fully merged
and blocks never overlap), every byte of every block, the recorded pointers,
the accounting, the collection policy's counters, and the heap's own C
invariant check. The collector must free exactly the unreachable blocks.

The run is seeded: set VOXVM_HEAP_FUZZ_SEED to replay one; a failure names its
seed. Long runs: ``python tools/fuzz_heap.py --ops 10000000``.
"""

from __future__ import annotations

import os
import random

import pytest

from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support.heaps import U64, PyHeapTester, RandomDriver, assert_same, compiled_heap_tester

HeapTester = compiled_heap_tester()

SEED = int(os.environ.get("VOXVM_HEAP_FUZZ_SEED", random.randrange(1 << 32)))
EXAMPLES = 150                     # about 85 operations each: >= 10^4 in total
STEPS = 100
MIN_TOTAL_STEPS = 10_000          # the CI budget: at least this many operations

SIZES = st.one_of(
    st.integers(0, 40),
    st.integers(0, 700),
    st.sampled_from([1 << 63, U64, 5000, 70000]),
)
# An address: (kind, index, offset). kind 0-2: a live block's start plus an
# offset (mostly 0); kind 3: a fixed awkward value; kind 4: anything.
PICKS = st.tuples(st.integers(0, 4), st.integers(0, 1 << 20), st.sampled_from([0, 0, 0, 1, 7, 8, -8, 9, 16, 40]))
AWKWARD = [0, 8, 16, 24, 1 << 63, U64, 15, 17]


class HeapMachine(RuleBasedStateMachine):
    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.heap = None
        self.oracle = None

    @initialize(init=st.sampled_from([0, 24, 256, 4096]),
                max_size=st.sampled_from([200, 4096, 1 << 16]),
                floor=st.sampled_from([None, 64, 2048]),
                stress=st.booleans(),
                fail_after=st.sampled_from([-1, -1, -1, 0, 5]))
    def setup(self, init, max_size, floor, stress, fail_after):
        self.heap = HeapTester(init, max_size, gc_stress=stress, gc_floor=floor, fail_after=fail_after)
        self.oracle = PyHeapTester(init, max_size, gc_floor=floor, gc_stress=stress, fail_after=fail_after)

    # ---- helpers ---------------------------------------------------------------

    def addr(self, pick) -> int:
        kind, index, offset = pick
        blocks = sorted(self.oracle.blocks)
        if kind <= 2 and blocks:
            return (blocks[index % len(blocks)] + offset) & U64
        if kind == 3 or not blocks:
            cap = self.oracle.capacity                 # the arena's end (a block may end there)
            return (AWKWARD + [cap, cap - 8, cap + 8])[index % (len(AWKWARD) + 3)]
        return index % (self.oracle.capacity + 64)

    def roots(self, picks) -> list[int]:
        return [self.addr(p) for p in picks]

    def tick(self) -> None:
        HeapMachine.steps += 1

    # ---- allocation --------------------------------------------------------------

    @rule(n=SIZES, gc=st.booleans())
    def alloc(self, n, gc):
        self.tick()
        assert self.heap.alloc(n, gc) == self.oracle.alloc(n, gc)

    @rule(n=SIZES, gc=st.booleans(), picks=st.lists(PICKS, max_size=4))
    def alloc_auto(self, n, gc, picks):
        self.tick()
        roots = self.roots(picks)
        assert self.heap.alloc_auto(n, gc, roots) == self.oracle.alloc_auto(n, gc, roots)

    @rule(pick=PICKS)
    def free(self, pick):
        self.tick()
        a = self.addr(pick)
        assert self.heap.free(a) == self.oracle.free(a)

    # ---- data ----------------------------------------------------------------------

    @rule(pick=PICKS, data=st.binary(max_size=40))
    def write(self, pick, data):
        self.tick()
        a = self.addr(pick)
        assert self.heap.write(a, data) == self.oracle.write(a, data)

    @rule(pick=PICKS, n=st.sampled_from([0, 1, 8, 9, 16, 33, U64]))
    def read(self, pick, n):
        self.tick()
        a = self.addr(pick)
        assert self.heap.read(a, n) == self.oracle.read(a, n)

    @rule(pick=PICKS, value=PICKS, raw=st.integers(0, U64), use_raw=st.booleans(),
          k=st.integers(1, 8), pointer=st.booleans())
    def store(self, pick, value, raw, use_raw, k, pointer):
        self.tick()
        a, v = self.addr(pick), raw if use_raw else self.addr(value)
        assert self.heap.store(a, v, k, pointer) == self.oracle.store(a, v, k, pointer)

    @rule(pick=PICKS, values=st.lists(st.tuples(st.integers(0, 1 << 16), PICKS), min_size=1, max_size=12))
    def store_pointers(self, pick, values):
        """Many pointer stores into one block (dense pointer maps)."""
        blocks = self.oracle.blocks
        start = self.addr(pick)
        if start not in blocks:
            return
        for off, value in values:
            self.tick()
            a, v = start + off % (blocks[start] + 1), self.addr(value)
            assert self.heap.store_pointer(a, v) == self.oracle.store(a, v, 8, True)

    @rule(holder=PICKS, pointee=PICKS, slot=st.sampled_from([0, 0, 8, 16]))
    def link(self, holder, pointee, slot):
        """holder.slot := pointer to pointee's start (object graphs, cycles, nogc holders)."""
        self.tick()
        blocks = sorted(self.oracle.blocks)
        if not blocks:
            return
        a = blocks[holder[1] % len(blocks)] + slot
        v = blocks[pointee[1] % len(blocks)]
        assert self.heap.store_pointer(a, v) == self.oracle.store(a, v, 8, True)

    @rule(pick=PICKS, k=st.integers(1, 8))
    def load(self, pick, k):
        self.tick()
        a = self.addr(pick)
        assert self.heap.load(a, k) == self.oracle.load(a, k)

    @rule(dst=PICKS, src=PICKS, n=st.sampled_from([0, 1, 7, 8, 9, 15, 16, 24, 64, 100, U64]))
    def copy(self, dst, src, n):
        self.tick()
        d, s = self.addr(dst), self.addr(src)
        assert self.heap.copy(d, s, n) == self.oracle.copy(d, s, n)

    @precondition(lambda self: any(size >= 80 for size in self.oracle.blocks.values()))
    @rule(index=st.integers(0, 1 << 16), src_off=st.integers(0, 200), shift=st.integers(-70, 70),
          length=st.integers(0, 700))
    def shift(self, index, src_off, shift, length):
        """Overlapping copy inside one big block: multi-word pointer-map moves."""
        self.tick()
        big = sorted(s for s, size in self.oracle.blocks.items() if size >= 80)
        start = big[index % len(big)]
        size = self.oracle.blocks[start]
        src = start + src_off % (size // 2)
        dst = min(max(start, src + shift), start + size)
        n = length % (start + size - max(src, dst) + 2)
        assert self.heap.copy(dst, src, n) == self.oracle.copy(dst, src, n)

    # ---- collection ------------------------------------------------------------------

    @rule(picks=st.lists(PICKS, max_size=6), tags=st.lists(st.sampled_from([8, 8, 1, 4, 9]), max_size=6))
    def collect(self, picks, tags):
        self.tick()
        roots = self.roots(picks)
        tags = (tags + [8] * len(roots))[:len(roots)]             # only tag 8 is a root
        assert self.heap.collect(roots, tags) == self.oracle.collect(roots, tags)

    @invariant()
    def agree(self):
        if self.heap is not None:
            assert_same(self.heap, self.oracle)


def test_heap_state_machine():
    """>= 10^4 random operations against PyHeap; the seed is printed on failure."""
    print(f"heap fuzz seed: VOXVM_HEAP_FUZZ_SEED={SEED}")
    HeapMachine.steps = 0
    machine = seed(SEED)(HeapMachine)
    try:
        run_state_machine_as_test(machine, settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            print_blob=True))
    except BaseException as exc:
        exc.add_note(f"reproduce with VOXVM_HEAP_FUZZ_SEED={SEED}")
        raise
    assert HeapMachine.steps >= MIN_TOTAL_STEPS, f"only {HeapMachine.steps} operations ran"


# (initial size, maximum size, gc_stress): heaps that grow, a tiny maximum that
# makes allocations fail, a heap that never grows, stress mode.
CONFIGURATIONS = [(256, 1 << 16, False), (0, 4096, False), (4096, 1 << 20, False),
                  (4096, 1 << 16, False), (0, 1 << 14, False), (100_000, 100_000, False),
                  (64, 1 << 20, True), (1 << 16, 1 << 18, False), (24, 200, False),
                  (8, 4096, True), (16, 1 << 12, False)]


@pytest.mark.parametrize("init,max_size,stress", CONFIGURATIONS)
def test_random_driver(init, max_size, stress):
    """The long-run driver of tools/fuzz_heap.py, briefly (another operation mix).

    Every result (addresses, fault answers, bytes read, blocks freed by a
    collection) and, every 10 operations, the whole state must be equal, so
    registers holding addresses can be compared exactly across backends.
    """
    rng_seed = SEED ^ max_size ^ init
    heap = HeapTester(init, max_size, gc_stress=stress)
    oracle = PyHeapTester(init, max_size, gc_stress=stress)
    driver = RandomDriver(heap, oracle, rng_seed)
    for i in range(1500):
        try:
            driver.step()
            if i % 10 == 0:
                assert_same(heap, oracle)
        except BaseException as exc:
            exc.add_note(f"RandomDriver seed {rng_seed}, step {i} (tools/fuzz_heap.py --seed {rng_seed})")
            raise
    assert_same(heap, oracle)


# Blocks of one layout in runs, then another: (size, offsets of recorded pointers).
# Each block's last pointer links the next block; the others point elsewhere.
LAYOUTS = [(16, [8]), (16, [0]), (24, [8]), (24, [0, 16]), (8, [0]), (70, [56]), (70, [0, 8, 62]),
           (71, [8]), (200, [8, 192]), (16, []), (5, []), (32, [24]), (32, [8, 24])]


@pytest.mark.parametrize("seed_offset", range(4))
def test_lists_of_changing_layouts(seed_offset):
    """The marker expects each block's pointer where the previous block had its last one
    (vh_drain in vh_gc.h): chains whose layout changes from run to run, blocks with
    several pointers, none, or a pointer at that offset to a non-block, an interior
    address, null or a dead block, and unrecorded words that look like blocks must be
    marked exactly as the oracle marks them."""
    rng = random.Random(SEED ^ (0x5EED + seed_offset))
    heap, oracle = HeapTester(1 << 12, 1 << 24), PyHeapTester(1 << 12, 1 << 24)
    chain: list[tuple[int, list[int]]] = []
    while len(chain) < 3000:
        size, offsets = rng.choice(LAYOUTS)
        for _ in range(rng.choice([1, 1, 2, 5, 40])):
            address = heap.alloc(size)
            assert address == oracle.alloc(size) and address != 0
            chain.append((address, offsets))
    starts = [address for address, _ in chain]
    for i, (address, offsets) in enumerate(chain):
        for k, off in enumerate(offsets):
            last = k == len(offsets) - 1
            if last and rng.random() < 0.97:
                target = starts[i + 1] if i + 1 < len(chain) else 0
            else:
                target = rng.choice([rng.choice(starts), rng.choice(starts) + 8, 0, 12345, starts[-1] + (1 << 30)])
            assert heap.store_pointer(address + off, target) == oracle.store(address + off, target, 8, True)
        if not offsets and heap.block_size(address) >= 8:   # a word that looks like a block, not a pointer
            value = rng.choice(starts)
            assert heap.store(address, value) == oracle.store(address, value, 8, False)
    roots = [starts[0]] + rng.sample(starts, 3)
    for _ in range(3):                 # later collections also see blocks freed by the earlier
        assert heap.collect(roots) == oracle.collect(roots)
        assert_same(heap, oracle)
        assert heap.payload_bytes == sum(size for _, size, _ in heap.blocks())
        assert heap.ptr_count == len(heap.pointers())
        roots = [r for r in roots if heap.is_block(r)][1:] or roots
