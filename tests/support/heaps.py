"""The heap oracle and the heap fuzz scaffolding: PyHeap is the one Python heap model.

Owns what tests/heap/, tests/differential/ and tools/fuzz_heap.py share:

* ``compiled_heap_tester()`` / ``compiled_heap_module()``: THE import of the compiled heap's test wrapper
  ``HeapTester`` (the test extension ``_heaptest``; if it moves, only this
  function changes then). It skips only in a pure-Python install;
* ``PyHeapTester``: voxvm.backends.reference.heap.PyHeap behind the HeapTester
  interface (``alloc`` = first fit + growth, ``alloc_auto`` = the VM's policy,
  ``store``/``load``/``store_pointer``, ``collect(roots, tags)``, fault injection
  with ``fail_after``), plus what a driver needs to aim at live blocks
  (``blocks`` as {start: size}, ``starts``, ``limit_size``). It is the oracle of
  the C heap fuzz: the reference heap states the contract (docs/heap.md);
* ``assert_same(heap, oracle)``: every observable of a HeapTester equals the
  oracle's (capacity, blocks, free regions, pointers, accounting, policy
  counters, bytes) and both invariant checks pass;
* ``RandomDriver``: seeded random operations applied to both, each result
  compared at once;
* ``watch_collections(heap)``: checks every collection of a PyHeap against an
  independent reachability pass (the program-level fuzz).
"""

from __future__ import annotations

import bisect
import random

from voxvm.backends.reference.heap import PyHeap, need_bytes

U64 = (1 << 64) - 1
TAG_ADDRESS = 8


def compiled_heap_module():
    """The module of the compiled heap's test wrapper: ``HeapTester``, ``HeapInvariantError``.

    The one place that knows where it lives. Skips only in a pure-Python
    install (VOXVM_PUREPYTHON=1); a module that is not built raises ImportError.
    """
    from .machines import compiled

    compiled()                                   # the pure-Python skip, with its reason
    from voxvm.backends.compiled import _heaptest

    return _heaptest


def compiled_heap_tester():
    """The compiled heap's ``HeapTester`` class."""
    return compiled_heap_module().HeapTester


class PyHeapTester:
    """PyHeap behind the interface of the compiled ``HeapTester`` (the fuzz oracle)."""

    def __init__(self, init_size: int, max_size: int, *, gc_stress: bool = False,
                 gc_floor: int | None = None, fail_after: int = -1) -> None:
        self.heap = PyHeap(init_size, max_size, gc_stress=gc_stress, gc_floor=gc_floor)
        self.fail_after = fail_after
        self._sizes: dict[int, int] | None = None    # block_sizes() until the block set changes
        self._starts: list[int] = []

    # ---- what the driver aims at -------------------------------------------------

    @property
    def blocks(self) -> dict[int, int]:
        """Live blocks in address order: start -> size (``PyHeap.block_sizes``: no byte copies).

        The driver asks several times per operation; the answer is kept until an
        allocation, a free or a collection (the only calls that change the block set).
        """
        self._refresh()
        return self._sizes

    @property
    def starts(self) -> list[int]:
        """Live block starts in address order."""
        self._refresh()
        return self._starts

    def _refresh(self) -> None:
        if self._sizes is None:
            self._sizes = self.heap.block_sizes()
            self._starts = list(self._sizes)

    @property
    def limit_size(self) -> int:
        return self.heap.limit

    # ---- the HeapTester interface -----------------------------------------------------

    def _refused(self, n: int) -> bool:
        """An impossible request, or the injected failure (HeapTester's ``fail_after``)."""
        if not (n <= 8 + self.heap.limit and need_bytes(n) <= self.heap.limit):
            return True
        if self.fail_after < 0:
            return False
        if self.fail_after == 0:
            return True
        self.fail_after -= 1
        return False

    def alloc(self, n, gc=True):
        self._sizes = None
        return 0 if self._refused(n) else self.heap.alloc_raw(n, gc)

    def alloc_auto(self, n, gc=True, roots=(), tags=None):
        self._sizes = None
        return 0 if self._refused(n) else self.heap.alloc(n, gc, _tagged(roots, tags))

    def free(self, address):
        self._sizes = None
        return self.heap.free(address)

    def read(self, address, n):
        return self.heap.read(address, n)

    def write(self, address, data):
        return self.heap.write(address, bytes(data))

    def store(self, address, value, k=8, pointer=False):
        data = (value & U64).to_bytes(8, "big")[8 - k:]
        return self.heap.write(address, data, is_pointer=pointer and k == 8)

    def store_pointer(self, address, value):
        return self.store(address, value, 8, True)

    def load(self, address, k=8):
        data = self.heap.read(address, k)
        return None if data is None else int.from_bytes(data, "big")

    def copy(self, dst, src, n):
        return self.heap.copy(dst, src, n)

    def collect(self, roots=(), tags=None):
        self._sizes = None
        return self.heap.collect(_tagged(roots, tags))

    def check(self):
        self.heap.check()

    def block_list(self) -> list[tuple[int, int, bool]]:
        """``HeapTester.blocks()``: (address, size, gc-managed) by address."""
        return [(a, n, kind == 0) for a, n, kind, _ in self.heap.blocks()]

    def regions(self):
        return self.heap.regions()

    def pointers(self):
        return self.heap.pointers()

    @property
    def stats(self):
        return {"collections": self.heap.collections}

    # The counters HeapTester exposes, forwarded by name. (A __getattr__ fallback once
    # did this, and turned any AttributeError inside a property above into a confusing
    # "missing attribute" on PyHeap: docs/reliability.md "Sanitizers".)
    capacity = property(lambda self: self.heap.capacity)
    free_bytes = property(lambda self: self.heap.free_bytes)
    gc_since = property(lambda self: self.heap.gc_since)
    gc_threshold = property(lambda self: self.heap.gc_threshold)


def _tagged(roots, tags) -> list[int]:
    """The roots a collection uses: with ``tags``, only the values tagged 8 (addresses)."""
    roots = list(roots)
    if tags is None:
        return roots
    tags = list(tags) + [TAG_ADDRESS] * (len(roots) - len(tags))
    return [r for r, t in zip(roots, tags) if t == TAG_ADDRESS]


def assert_same(heap, oracle: PyHeapTester, *, contents: bool = True) -> None:
    """Every observable of ``heap`` (a HeapTester) equals the oracle's; both invariant checks pass."""
    heap.check()
    oracle.check()
    assert heap.capacity == oracle.capacity, (heap.capacity, oracle.capacity)
    assert heap.blocks() == oracle.block_list()
    assert heap.regions() == oracle.regions()
    assert heap.pointers() == oracle.pointers()
    assert heap.free_bytes == oracle.free_bytes
    assert heap.gc_since == oracle.gc_since and heap.gc_threshold == oracle.gc_threshold
    assert heap.stats["collections"] == oracle.stats["collections"]
    if contents:
        for start, size, _, data in oracle.heap.blocks():
            assert heap.read(start, size) == data, f"contents of block {start:#x}"


def watch_collections(heap: PyHeap) -> list[int]:
    """Check every later ``heap.collect`` against an independent reachability pass.

    Roots: the given values that are block starts, plus every nogc block;
    edges: the recorded pointers, read back from the heap bytes. The collection
    must free exactly the unreachable GC blocks. Returns a one-element list
    counting the checked collections.
    """
    checked = [0]
    collect = heap.collect

    def checked_collect(roots=()) -> int:
        if callable(roots):
            roots = roots()
        roots = list(roots)
        expected = reachable(heap, roots)
        freed = collect(roots)
        survivors = {address for address, *_ in heap.blocks()}
        assert survivors == expected, (
            f"collection {heap.collections}: freed reachable {sorted(expected - survivors)}, "
            f"kept unreachable {sorted(survivors - expected)}")
        checked[0] += 1
        return freed

    heap.collect = checked_collect
    return checked


def reachable(heap: PyHeap, roots: list[int]) -> set[int]:
    """The blocks a collection must keep, computed from the public view of the heap."""
    blocks = {address: (size, kind) for address, size, kind, _ in heap.blocks()}
    starts = sorted(blocks)
    inside: dict[int, list[int]] = {}
    for where in heap.pointers():        # each recorded pointer lies inside one block
        start = starts[bisect.bisect_right(starts, where) - 1]
        assert where + 8 <= start + blocks[start][0], f"pointer at {where} outside its block"
        inside.setdefault(start, []).append(int.from_bytes(heap.read(where, 8), "big"))
    todo = [r for r in roots if r in blocks] + [a for a, (_, kind) in blocks.items() if kind == 1]
    seen: set[int] = set()
    while todo:
        address = todo.pop()
        if address not in seen:
            seen.add(address)
            todo.extend(v for v in inside.get(address, ()) if v in blocks)
    return seen


class RandomDriver:
    """Seeded random operations applied to a heap and the oracle alike (tools/fuzz_heap.py).

    Every result is compared at once; callers run ``assert_same`` every few operations.
    """

    OPS = ("alloc", "alloc", "alloc_auto", "free", "free", "write", "read", "store",
           "store_ptr", "ptr_burst", "load", "copy", "copy", "shift", "collect")

    def __init__(self, heap, oracle: PyHeapTester, seed: int) -> None:
        self.heap, self.oracle = heap, oracle
        self.rng = random.Random(seed)

    def _size(self) -> int:
        r = self.rng.random()
        if r < 0.6:
            return self.rng.randrange(0, 40)
        if r < 0.95:
            return self.rng.randrange(0, 600)
        if r < 0.99:
            return self.rng.randrange(0, 20000)
        return self.rng.choice([1 << 63, U64, self.oracle.limit_size, self.oracle.limit_size - 8])

    def _addr(self) -> int:
        rng, blocks = self.rng, self.oracle.blocks
        r = rng.random()
        if blocks and r < 0.9:
            start = rng.choice(self.oracle.starts)
            return (start + rng.choice([0, 0, 0, rng.randrange(-8, blocks[start] + 9)])) & U64
        if r < 0.95:
            return rng.choice([0, 8, 16, 24, self.oracle.capacity, U64, 1 << 63])
        return rng.randrange(0, self.oracle.capacity + 64)

    def _roots(self) -> list[int]:
        live = self.oracle.starts
        picked = [s for s in live if self.rng.random() < 0.5]
        return picked + [self._addr() for _ in range(self.rng.randrange(3))]

    def step(self) -> str:
        rng, heap, oracle = self.rng, self.heap, self.oracle
        op = rng.choice(self.OPS)
        if op == "alloc":
            n, gc = self._size(), rng.random() < 0.8
            assert heap.alloc(n, gc) == oracle.alloc(n, gc), op
        elif op == "alloc_auto":
            n, gc, roots = self._size(), rng.random() < 0.8, self._roots()
            assert heap.alloc_auto(n, gc, roots) == oracle.alloc_auto(n, gc, roots), op
        elif op == "free":
            a = self._addr()
            assert heap.free(a) == oracle.free(a), (op, a)
        elif op == "write":
            a = self._addr()
            data = rng.randbytes(rng.choice([0, 1, 3, 8, 9, 17, rng.randrange(64)]))
            assert heap.write(a, data) == oracle.write(a, data), (op, a, len(data))
        elif op == "read":
            a, n = self._addr(), rng.choice([0, 1, 8, rng.randrange(80), U64])
            assert heap.read(a, n) == oracle.read(a, n), (op, a, n)
        elif op in ("store", "store_ptr"):
            a, k = self._addr(), rng.randrange(1, 9)
            v = self._addr() if rng.random() < 0.7 else rng.getrandbits(64)
            ptr = op == "store_ptr"
            if ptr and rng.random() < 0.8:
                k = 8
            assert heap.store(a, v, k, ptr) == oracle.store(a, v, k, ptr), (op, a, v, k)
        elif op == "ptr_burst" and oracle.blocks:        # many pointers in one block
            start = rng.choice(oracle.starts)
            size = oracle.blocks[start]
            for _ in range(rng.randrange(1, 2 + size // 8)):
                a, v = start + rng.randrange(0, size + 1), self._addr()
                assert heap.store(a, v, 8, True) == oracle.store(a, v, 8, True), (op, a, v)
        elif op == "shift":             # overlapping copy of pointer-dense data in a big block
            big = [s for s, size in oracle.blocks.items() if size >= 80]
            if not big:
                n = rng.randrange(80, 700)
                assert heap.alloc(n, True) == oracle.alloc(n, True), op
                big = [s for s, size in oracle.blocks.items() if size >= 80]
            if big:
                start = rng.choice(big)
                size = oracle.blocks[start]
                for _ in range(rng.randrange(size // 4)):
                    a, v = start + rng.randrange(0, size - 7), self._addr()
                    assert heap.store(a, v, 8, True) == oracle.store(a, v, 8, True), (op, a, v)
                src = start + rng.randrange(0, size // 4)
                dst = max(start, min(start + size, src + rng.randrange(-70, 71)))
                n = rng.randrange(0, start + size - max(src, dst) + 2)
                assert heap.copy(dst, src, n) == oracle.copy(dst, src, n), (op, dst, src, n)
        elif op == "load":
            a, k = self._addr(), rng.randrange(1, 9)
            assert heap.load(a, k) == oracle.load(a, k), (op, a, k)
        elif op == "copy":
            d, s = self._addr(), self._addr()
            n = rng.choice([0, 1, 7, 8, 9, 16, 24, rng.randrange(100), U64])
            r = rng.random()
            if r < 0.3 and oracle.blocks:                # overlapping, inside one block
                d = (s + rng.randrange(-16, 17)) & U64
            elif r < 0.6 and oracle.blocks:              # whole blocks: carries their pointers
                s, d = rng.choice(oracle.starts), rng.choice(oracle.starts)
                n = max(0, min(oracle.blocks[s], oracle.blocks[d]) - rng.choice([0, 0, 1, 8]))
            assert heap.copy(d, s, n) == oracle.copy(d, s, n), (op, d, s, n)
        elif op == "collect":
            roots = self._roots()
            assert heap.collect(roots) == oracle.collect(roots), op
        return op
