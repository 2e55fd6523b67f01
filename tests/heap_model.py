"""A deliberately simple Python model of the voxvm heap, for differential fuzzing.

Owns nothing the product uses: tests/test_heap_fuzz.py and tools/fuzz_heap.py
run ``voxvm.backends.compiled._heap.HeapTester`` and this model side by side and compare them
after every operation. The model states the heap's contract (docs/heap.md)
in the most obvious way, with no cleverness and no speed:

* live blocks are a dict ``start -> Block``; free regions are *computed* as
  the gaps between the tiles of live blocks, so "free space is fully merged"
  holds by construction and the allocator's regions must equal these gaps;
* first fit is a linear scan of the gaps from the lowest address;
* recorded pointers are a set of addresses; the collector is a plain
  breadth-first search.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

GRANULE = 8
MIN_GROWTH = 4096        # bytes: smallest growth of an empty heap
MIN_GC_FLOOR = 65536
HARD_LIMIT = (1 << 34) - 8   # the heap stays below 16 GiB
TAG_ADDRESS = 8
U64 = (1 << 64) - 1


def need_bytes(n: int) -> int:
    """Tile bytes of an n-byte block: 8-byte header + n rounded up to 8 (at least 8)."""
    return GRANULE + max(GRANULE, -(-n // GRANULE) * GRANULE)


@dataclass
class Block:
    size: int            # accessible bytes
    gc: bool             # GC-managed (alloc/allocr) or manual (allocr_nogc)
    foot: int            # tile bytes: header + payload rounded up
    data: bytearray


class HeapModel:
    """The contract of voxvm.backends.compiled._heap, one obvious line at a time."""

    def __init__(self, init_size: int, max_size: int, *, gc_floor: int | None = None,
                 gc_stress: bool = False, fail_after: int = -1) -> None:
        self.limit_size = min(max_size & ~7, HARD_LIMIT)
        size = min(init_size, self.limit_size) & ~7
        self.size = size                                # tiles cover [8, 8 + size)
        self.blocks: dict[int, Block] = {}
        self.starts: list[int] = []                    # sorted keys of self.blocks
        self.ptrs: set[int] = set()
        self.gc_floor = gc_floor if gc_floor is not None else max(MIN_GC_FLOOR, self.size >> 2)
        self.gc_threshold = self.gc_floor
        self.gc_since = 0
        self.gc_stress = gc_stress
        self.fail_after = fail_after
        self.collections = 0

    # ---- layout ----------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return 8 + self.size

    def tiles(self) -> list[tuple[int, int]]:
        """(tile start, tile bytes) of every live block, in address order."""
        return [(start - GRANULE, self.blocks[start].foot) for start in self.starts]

    def regions(self) -> list[tuple[int, int]]:
        """The free regions: every gap between tiles."""
        out, pos = [], GRANULE
        for start, foot in self.tiles():
            if start > pos:
                out.append((pos, start - pos))
            pos = start + foot
        if self.capacity > pos:
            out.append((pos, self.capacity - pos))
        return out

    def used_bytes(self) -> int:
        return sum(b.foot for b in self.blocks.values())

    def gc_bytes(self) -> int:
        return sum(b.foot for b in self.blocks.values() if b.gc)

    def free_bytes(self) -> int:
        return self.size - self.used_bytes()

    # ---- allocation ----------------------------------------------------------------

    def _possible(self, n: int) -> bool:
        return n <= 8 + self.limit_size and need_bytes(n) <= self.limit_size

    def _fail_injected(self) -> bool:
        if self.fail_after < 0:
            return False
        if self.fail_after == 0:
            return True
        self.fail_after -= 1
        return False

    def _fit(self, n: int, gc: bool) -> int:
        need = need_bytes(n)
        for start, length in self.regions():            # lowest address first
            if length >= need:
                self.blocks[start + GRANULE] = Block(n, gc, need, bytearray(n))
                bisect.insort(self.starts, start + GRANULE)
                if gc:
                    self.gc_since += need
                return start + GRANULE
        return 0

    def _grow(self, n: int | None) -> bool:
        regions = self.regions()
        tail = regions[-1][1] if regions and sum(regions[-1]) == self.capacity else 0
        need = need_bytes(n) if n is not None else 0
        deficit = max(0, need - tail)
        new = min(max(2 * self.size, self.size + deficit, MIN_GROWTH), self.limit_size)
        if new <= self.size or new < self.size + deficit:
            return False
        self.size = new
        return True

    def alloc(self, n: int, gc: bool = True) -> int:
        """heap_alloc: first fit, growing if nothing fits; never collects."""
        if not self._possible(n) or self._fail_injected():
            return 0
        a = self._fit(n, gc)
        if not a and self._grow(n):
            a = self._fit(n, gc)
        return a

    def alloc_auto(self, n: int, gc: bool, roots: list[int]) -> int:
        """heap_alloc_auto: the VM's allocation with the collection policy."""
        if not self._possible(n) or self._fail_injected():
            return 0
        collected = False
        if self.gc_stress or self.gc_since >= self.gc_threshold:
            self.collect(roots)
            collected = True
        a = self._fit(n, gc)
        if not a and not collected and self.gc_since > 0:
            self.collect(roots)
            collected = True
            if self.free_bytes() * 4 < self.size:
                self._grow(n)
            a = self._fit(n, gc)
        if not a and self._grow(n):
            a = self._fit(n, gc)
        if not a and not collected and any(b.gc for b in self.blocks.values()):
            self.collect(roots)
            a = self._fit(n, gc)
        return a

    def free(self, addr: int) -> bool:
        block = self.blocks.pop(addr, None)
        if block is None:
            return False
        self.starts.remove(addr)
        self.ptrs.difference_update(self.ptrs_in(addr, addr + block.size))
        return True

    # ---- data --------------------------------------------------------------------

    def find(self, addr: int, n: int) -> int | None:
        """Start of the live block holding [addr, addr+n), or None."""
        i = bisect.bisect_right(self.starts, addr) - 1   # the last block starting <= addr
        if i >= 0 and addr + n <= self.starts[i] + self.blocks[self.starts[i]].size:
            return self.starts[i]
        return None

    def ptrs_in(self, lo: int, hi: int) -> list[int]:
        """Recorded pointers at addresses [lo, hi) (whichever way is quicker)."""
        if hi - lo <= 4 * len(self.ptrs):
            return [p for p in range(lo, hi) if p in self.ptrs]
        return [p for p in self.ptrs if lo <= p < hi]

    def _forget(self, addr: int, n: int) -> None:
        """A write of n bytes at addr removes every pointer whose 8 bytes it overlaps."""
        if n:
            self.ptrs.difference_update(self.ptrs_in(addr - 7, addr + n))

    def read(self, addr: int, n: int) -> bytes | None:
        start = self.find(addr, n)
        if start is None:
            return None
        return bytes(self.blocks[start].data[addr - start:addr - start + n])

    def write(self, addr: int, data: bytes) -> bool:
        start = self.find(addr, len(data))
        if start is None:
            return False
        self.blocks[start].data[addr - start:addr - start + len(data)] = data
        self._forget(addr, len(data))
        return True

    def store(self, addr: int, value: int, k: int = 8, pointer: bool = False) -> bool:
        if not self.write(addr, (value & U64).to_bytes(8, "big")[8 - k:]):
            return False
        if pointer and k == 8:
            self.ptrs.add(addr)
        return True

    def load(self, addr: int, k: int = 8) -> int | None:
        data = self.read(addr, k)
        return None if data is None else int.from_bytes(data, "big")

    def copy(self, dst: int, src: int, n: int) -> bool:
        if self.find(src, n) is None or self.find(dst, n) is None:
            return False
        carried = {p - src for p in self.ptrs_in(src, src + n - 7)}
        data = self.read(src, n)
        self.write(dst, data)                  # drops the overlapped pointers
        self.ptrs |= {dst + off for off in carried}
        return True

    # ---- collection --------------------------------------------------------------

    def reachable(self, roots: list[int]) -> set[int]:
        """Blocks reachable from roots and from every manual block (BFS)."""
        starts = self.starts
        inside: dict[int, list[int]] = {}         # block start -> pointers stored in it
        for p in self.ptrs:
            s = starts[bisect.bisect_right(starts, p) - 1]
            inside.setdefault(s, []).append(p)
        todo = [r for r in roots if r in self.blocks]
        todo += [s for s, b in self.blocks.items() if not b.gc]
        seen: set[int] = set()
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            b = self.blocks[s]
            for p in inside.get(s, ()):
                v = int.from_bytes(b.data[p - s:p - s + 8], "big")
                if v in self.blocks:             # only block starts count
                    todo.append(v)
        return seen

    def collect(self, roots: list[int]) -> int:
        live = self.reachable(roots)
        dead = [s for s, b in self.blocks.items() if b.gc and s not in live]
        for s in dead:
            self.free(s)
        self.gc_since = 0
        self.gc_threshold = max(self.gc_floor, self.gc_bytes())
        self.collections += 1
        return len(dead)

    # ---- comparison ----------------------------------------------------------------

    def block_list(self) -> list[tuple[int, int, bool]]:
        return sorted((s, b.size, b.gc) for s, b in self.blocks.items())


def assert_same(heap, model: HeapModel, *, contents: bool = True) -> None:
    """Every observable of the C heap equals the model's (and its own check passes)."""
    heap.check()
    assert heap.capacity == model.capacity, (heap.capacity, model.capacity)
    assert heap.blocks() == model.block_list()
    assert heap.regions() == model.regions()
    assert heap.pointers() == sorted(model.ptrs)
    assert heap.free_bytes == model.free_bytes()
    assert heap.gc_since == model.gc_since and heap.gc_threshold == model.gc_threshold
    assert heap.stats["collections"] == model.collections
    if contents:
        for start, b in model.blocks.items():
            assert heap.read(start, b.size) == bytes(b.data), f"contents of block {start:#x}"


class RandomDriver:
    """Seeded random operations applied to a heap and a model alike (tools/fuzz_heap.py).

    Every result is compared at once; ``assert_same`` runs every ``check_every`` ops.
    """

    OPS = ("alloc", "alloc", "alloc_auto", "free", "free", "write", "read", "store",
           "store_ptr", "ptr_burst", "load", "copy", "copy", "shift", "collect")

    def __init__(self, heap, model: HeapModel, seed: int) -> None:
        self.heap, self.model = heap, model
        self.rng = random.Random(seed)

    def _size(self) -> int:
        r = self.rng.random()
        if r < 0.6:
            return self.rng.randrange(0, 40)
        if r < 0.95:
            return self.rng.randrange(0, 600)
        if r < 0.99:
            return self.rng.randrange(0, 20000)
        return self.rng.choice([1 << 63, U64, self.model.limit_size, self.model.limit_size - 8])

    def _addr(self) -> int:
        rng, blocks = self.rng, self.model.blocks
        r = rng.random()
        if blocks and r < 0.9:
            start = rng.choice(self.model.starts)
            return (start + rng.choice([0, 0, 0, rng.randrange(-8, blocks[start].size + 9)])) & U64
        if r < 0.95:
            return rng.choice([0, 8, 16, 24, self.model.capacity, U64, 1 << 63])
        return rng.randrange(0, self.model.capacity + 64)

    def _roots(self) -> list[int]:
        live = self.model.starts
        picked = [s for s in live if self.rng.random() < 0.5]
        return picked + [self._addr() for _ in range(self.rng.randrange(3))]

    def step(self) -> str:
        rng, heap, model = self.rng, self.heap, self.model
        op = rng.choice(self.OPS)
        if op == "alloc":
            n, gc = self._size(), rng.random() < 0.8
            assert heap.alloc(n, gc) == model.alloc(n, gc), op
        elif op == "alloc_auto":
            n, gc, roots = self._size(), rng.random() < 0.8, self._roots()
            assert heap.alloc_auto(n, gc, roots) == model.alloc_auto(n, gc, roots), op
        elif op == "free":
            a = self._addr()
            assert heap.free(a) == model.free(a), (op, a)
        elif op == "write":
            a = self._addr()
            data = rng.randbytes(rng.choice([0, 1, 3, 8, 9, 17, rng.randrange(64)]))
            assert heap.write(a, data) == model.write(a, data), (op, a, len(data))
        elif op == "read":
            a, n = self._addr(), rng.choice([0, 1, 8, rng.randrange(80), U64])
            assert heap.read(a, n) == model.read(a, n), (op, a, n)
        elif op in ("store", "store_ptr"):
            a, k = self._addr(), rng.randrange(1, 9)
            v = self._addr() if rng.random() < 0.7 else rng.getrandbits(64)
            ptr = op == "store_ptr"
            if ptr and rng.random() < 0.8:
                k = 8
            assert heap.store(a, v, k, ptr) == model.store(a, v, k, ptr), (op, a, v, k)
        elif op == "ptr_burst" and model.blocks:        # many pointers in one block
            start = rng.choice(model.starts)
            size = model.blocks[start].size
            for _ in range(rng.randrange(1, 2 + size // 8)):
                a, v = start + rng.randrange(0, size + 1), self._addr()
                assert heap.store(a, v, 8, True) == model.store(a, v, 8, True), (op, a, v)
        elif op == "shift":             # overlapping copy of pointer-dense data in a big block
            big = [s for s, b in model.blocks.items() if b.size >= 80]
            if not big:
                n = rng.randrange(80, 700)
                assert heap.alloc(n, True) == model.alloc(n, True), op
                big = [s for s, b in model.blocks.items() if b.size >= 80]
            if big:
                start = rng.choice(big)
                size = model.blocks[start].size
                for _ in range(rng.randrange(size // 4)):
                    a, v = start + rng.randrange(0, size - 7), self._addr()
                    assert heap.store(a, v, 8, True) == model.store(a, v, 8, True), (op, a, v)
                src = start + rng.randrange(0, size // 4)
                dst = max(start, min(start + size, src + rng.randrange(-70, 71)))
                n = rng.randrange(0, start + size - max(src, dst) + 2)
                assert heap.copy(dst, src, n) == model.copy(dst, src, n), (op, dst, src, n)
        elif op == "load":
            a, k = self._addr(), rng.randrange(1, 9)
            assert heap.load(a, k) == model.load(a, k), (op, a, k)
        elif op == "copy":
            d, s = self._addr(), self._addr()
            n = rng.choice([0, 1, 7, 8, 9, 16, 24, rng.randrange(100), U64])
            r = rng.random()
            if r < 0.3 and model.blocks:                # overlapping, inside one block
                d = (s + rng.randrange(-16, 17)) & U64
            elif r < 0.6 and model.blocks:              # whole blocks: carries their pointers
                s, d = rng.choice(model.starts), rng.choice(model.starts)
                n = max(0, min(model.blocks[s].size, model.blocks[d].size) - rng.choice([0, 0, 1, 8]))
            assert heap.copy(d, s, n) == model.copy(d, s, n), (op, d, s, n)
        elif op == "collect":
            roots = self._roots()
            assert heap.collect(roots) == model.collect(roots), op
        return op
