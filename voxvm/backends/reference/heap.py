"""The reference heap and garbage collector (pure Python, simple, obviously correct).

Owns the heap of the pure-Python backend (voxvm/backends/reference/core.py): semantics.md §3
items 8-13, §4 and §6. It implements the same contract as the compiled heap
(voxvm/backends/compiled/csrc/heap/, docs/heap.md): same layout, same first-fit choices, same
growth and collection policy, so both backends hand out the same addresses
and a differential test can compare them register for register. It is also
usable as a model oracle for allocator fuzzing (see "API" below);
tests/heap/test_heap_fuzz.py and tools/fuzz_heap.py use it as the oracle of
voxvm.backends.compiled._heaptest.HeapTester, and tests/differential/test_heap_programs.py compares whole
heap-heavy programs on both backends.

Layout
    Addresses are offsets in one arena of ``8 + size`` bytes; 0 is the null
    pointer and never a block (semantics.md §3.9). From offset 8 to the end the
    arena is tiled by whole 8-byte granules: a live block is an 8-byte header
    followed by its n bytes rounded up to 8 (at least 8), so a fresh n-byte
    block takes ``need_bytes(n)`` = 8 + max(8, ceil8(n)) bytes and never more
    (no slack); a free region is a maximal run of free granules (8 bytes or
    more). The first block therefore starts at address 16. Exactly n bytes are
    accessible (semantics.md §3.12); they are zero-filled.

Allocation (first fit)
    The lowest-addressed free region whose length is >= need takes the block
    at its start (the block's address is the region start + 8); the rest, if
    any, stays free. ``free`` returns the block's tile and merges it with both
    neighbours. Growing: with ``tail`` = the free bytes at the end of the arena
    and ``deficit`` = need - tail, the size becomes min(max(2 * size, size +
    deficit, 4096), limit); it fails if that is not enough (or the host has no
    memory). ``limit`` = --max-heap rounded down to 8, at most 16 GiB - 8 (so
    granule counts stay below 2^31 in the compiled heap); a request with
    need > limit fails at once.

The VM's allocation policy: ``alloc(n, collectable, roots)``
    1. impossible request (need > limit): return 0 without collecting.
    2. if gc_stress, or ``gc_since >= gc_threshold``: collect.
    3. first fit. If nothing fits and nothing was collected yet and GC blocks
       were allocated since the last collection: collect; if then less than a
       quarter of the heap is free, grow; first fit again.
    4. if nothing fits: grow if possible and first fit again.
    5. if nothing fits, nothing was collected yet and GC blocks exist: collect
       and first fit again. Otherwise return 0 (the VM raises
       HeapAllocationFault and writes A(0)).
    "Collect" skips a futile collection (except under gc_stress): after a
    collection of the policy that freed nothing, while ``mutations`` (blocks
    allocated or freed, pointers recorded, forgotten or moved) and the roots
    (as a sequence) are unchanged, a collection would free nothing again and
    change nothing, so it is not run and not counted; a program retrying a
    failing allocation then costs O(roots) per retry (the compiled heap's
    vh_policy.h has the same rule).
    ``gc_since`` counts the tile bytes of GC-managed allocations since the last
    collection; after a collection ``gc_threshold = max(gc_floor, tile bytes
    of the live GC blocks)`` with ``gc_floor = max(64 KiB, initial size / 4)``.

Accesses
    A range ``[a, a+n)`` is valid iff it lies inside one live block: ``start <=
    a`` and ``a + n <= start + size``. A count of 0 touches nothing, but its
    address must still lie inside a live block or at its end.

Garbage collection: precise mark-sweep (semantics.md §3.8, §3.10)
    Roots: the values the caller passes (the VM: registers and data-stack
    entries tagged 8) and every live ``allocr_nogc`` block (never collected;
    the pointers stored in it are always traced). Only a value equal to a live
    block's start refers to that block (upstream.md §6: interior pointers do not
    keep a block alive). Edges: an 8-byte write flagged ``is_pointer`` (the VM's
    ``store`` of a tag-8 value with count 8) at any offset of a block records a
    pointer there; any later write overlapping those 8 bytes forgets it (a
    pointer write records it again); ``copy`` carries the pointers lying
    entirely inside the source range; ``free`` forgets the block's pointers.
    The sweep frees every unmarked GC-managed block. Collections are reported
    through ``log`` as ``gc: ...`` lines.

API
    ``PyHeap(init_size, max_size, *, gc_stress=False, log=None, gc_floor=None)``
    ``alloc(n, collectable=True, roots=()) -> address or 0``   the VM's policy
    ``alloc_raw(n, collectable=True) -> address or 0``         first fit + growth only
    ``free(address) -> bool``            False: not the start of a live block
    ``read(address, count) -> bytes | None``
    ``write(address, data, *, is_pointer=False) -> bool``
    ``copy(dst, src, count) -> bool``    memmove semantics
    ``collect(roots) -> int``            number of blocks freed
    ``blocks() -> list[(address, size, kind, data)]``  kind 0 GC, 1 nogc; by address
    ``regions() -> list[(start, length)]``; ``pointers() -> list[address]``;
    ``capacity``, ``size``, ``free_bytes``, ``gc_since``, ``gc_threshold``,
    ``collections``; ``check()`` asserts every invariant.
    ``roots`` may be an iterable of ints or a callable returning one (called only
    when a collection actually runs).
"""

from __future__ import annotations

import bisect
from typing import Callable, Iterable

GRANULE = 8                    # alignment, header size, smallest payload and free region
MIN_GROWTH = 4096              # growing an empty heap goes at least to this size
MIN_GC_FLOOR = 64 * 1024       # smallest collection threshold
HARD_LIMIT = (1 << 34) - 8     # the heap stays below 16 GiB
FIRST_BLOCK = 2 * GRANULE      # address of the first block (its header is at 8)
POINTER_SIZE = 8

Roots = Iterable[int] | Callable[[], Iterable[int]]


def need_bytes(n: int) -> int:
    """Tile bytes of an n-byte block: 8-byte header + payload rounded up to 8 (at least 8)."""
    return GRANULE + max(GRANULE, -(-n // GRANULE) * GRANULE)


class Block:
    """One live allocation; its tile is ``[start - 8, start - 8 + foot)``."""

    __slots__ = ("start", "size", "foot", "collectable", "edges")

    def __init__(self, start: int, size: int, collectable: bool) -> None:
        self.start = start
        self.size = size                    # accessible bytes
        self.foot = need_bytes(size)        # tile bytes: header + payload
        self.collectable = collectable
        self.edges: dict[int, int] = {}     # offset -> pointer value stored there


class PyHeap:
    """The reference heap. See the module docstring for the contract."""

    def __init__(self, init_size: int, max_size: int, *, gc_stress: bool = False,
                 log: Callable[[str], None] | None = None, gc_floor: int | None = None) -> None:
        self.limit = min(max(max_size, 0) & ~7, HARD_LIMIT)
        self.size = min(max(init_size, 0), self.limit) & ~7
        self.gc_stress = gc_stress
        self.log = log
        self.data = bytearray(GRANULE + self.size)
        self._free_starts: list[int] = []       # free regions, sorted by start
        self._free_len: dict[int, int] = {}
        if self.size:
            self._add_region(GRANULE, self.size)
        self._starts: list[int] = []             # sorted starts of live blocks
        self._blocks: dict[int, Block] = {}
        self.gc_floor = gc_floor if gc_floor is not None else max(MIN_GC_FLOOR, self.size >> 2)
        self.gc_threshold = self.gc_floor
        self.gc_since = 0
        self.collections = 0
        self.mutations = 0                       # see the policy in the module docstring
        self._futile: tuple[int, list[int]] | None = None

    @property
    def capacity(self) -> int:
        return GRANULE + self.size

    @property
    def free_bytes(self) -> int:
        return sum(self._free_len.values())

    # ------------------------------------------------------------------ allocation

    def _possible(self, n: int) -> bool:
        return n <= GRANULE + self.limit and need_bytes(n) <= self.limit

    def alloc(self, n: int, collectable: bool = True, roots: Roots = ()) -> int:
        """The VM's allocation: first fit with the collection policy (module docstring)."""
        if not self._possible(n):
            return 0
        collected = False
        if self.gc_stress or self.gc_since >= self.gc_threshold:
            self._policy_collect(roots)
            collected = True
        address = self._fit(n, collectable)
        if not address and not collected and self.gc_since > 0:
            self._policy_collect(roots)
            collected = True
            if self.free_bytes * 4 < self.size:
                self._grow(n)
            address = self._fit(n, collectable)
        if not address and self._grow(n):
            address = self._fit(n, collectable)
        if not address and not collected and any(b.collectable for b in self._blocks.values()):
            self._policy_collect(roots)
            address = self._fit(n, collectable)
        return address

    def _policy_collect(self, roots: Roots) -> None:
        """A collection of the policy, unless it is futile (module docstring)."""
        roots = list(roots() if callable(roots) else roots)
        if not self.gc_stress and self._futile == (self.mutations, roots):
            return
        self._futile = (self.mutations, roots) if self.collect(roots) == 0 else None

    def alloc_raw(self, n: int, collectable: bool = True) -> int:
        """First fit, growing if nothing fits; never collects."""
        if not self._possible(n):
            return 0
        address = self._fit(n, collectable)
        if not address and self._grow(n):
            address = self._fit(n, collectable)
        return address

    def _fit(self, n: int, collectable: bool) -> int:
        need = need_bytes(n)
        for region in self._free_starts:
            length = self._free_len[region]
            if length >= need:
                self._remove_region(region)
                if length > need:
                    self._add_region(region + need, length - need)
                start = region + GRANULE
                self._blocks[start] = Block(start, n, collectable)
                bisect.insort(self._starts, start)
                self.data[start:start + n] = bytes(n)
                self.mutations += 1
                if collectable:
                    self.gc_since += need
                return start
        return 0

    def _grow(self, n: int | None) -> bool:
        capacity = self.capacity
        last = self._free_starts[-1] if self._free_starts else None
        tail = self._free_len[last] if last is not None and last + self._free_len[last] == capacity else 0
        deficit = max(0, (need_bytes(n) if n is not None else 0) - tail)
        new_size = min(max(2 * self.size, self.size + deficit, MIN_GROWTH), self.limit)
        if new_size <= self.size or new_size < self.size + deficit:
            return False
        try:
            self.data.extend(bytes(new_size - self.size))
        except MemoryError:          # the host cannot give more: the allocation fails
            return False
        self.size = new_size
        self._release(capacity, GRANULE + new_size - capacity)
        if self.log:
            self.log(f"gc: heap grown to {new_size} bytes")
        return True

    def free(self, address: int) -> bool:
        """Free the block starting exactly at ``address``; False if there is none."""
        block = self._blocks.pop(address, None)
        if block is None:
            return False
        del self._starts[bisect.bisect_left(self._starts, address)]
        self._release(address - GRANULE, block.foot)
        self.mutations += 1
        return True

    # free regions ---------------------------------------------------------

    def _add_region(self, start: int, length: int) -> None:
        bisect.insort(self._free_starts, start)
        self._free_len[start] = length

    def _remove_region(self, start: int) -> None:
        del self._free_starts[bisect.bisect_left(self._free_starts, start)]
        del self._free_len[start]

    def _release(self, start: int, length: int) -> None:
        """Make ``[start, start+length)`` free, merging with both neighbouring regions."""
        index = bisect.bisect_left(self._free_starts, start)
        if index < len(self._free_starts) and start + length == self._free_starts[index]:
            length += self._free_len[self._free_starts[index]]
            self._remove_region(self._free_starts[index])
        if index > 0:
            previous = self._free_starts[index - 1]
            if previous + self._free_len[previous] == start:
                self._free_len[previous] += length
                return
        self._add_region(start, length)

    # ------------------------------------------------------------------ access

    def _find(self, address: int, count: int) -> Block | None:
        """The live block whose accessible bytes contain ``[address, address+count)``."""
        index = bisect.bisect_right(self._starts, address) - 1
        if index < 0:
            return None
        block = self._blocks[self._starts[index]]
        return block if address + count <= block.start + block.size else None

    def read(self, address: int, count: int) -> bytes | None:
        """``count`` bytes at ``address`` inside one live block, or None."""
        if self._find(address, count) is None:
            return None
        return bytes(self.data[address:address + count])

    def write(self, address: int, data: bytes, *, is_pointer: bool = False) -> bool:
        """Write ``data`` inside one live block; ``is_pointer`` records an 8-byte pointer."""
        count = len(data)
        block = self._find(address, count)
        if block is None:
            return False
        if count:
            self.data[address:address + count] = data
            forgot = self._forget(block, address - block.start, count)
            if is_pointer and count == POINTER_SIZE:
                block.edges[address - block.start] = int.from_bytes(data, "big")
                self.mutations += 1
            elif forgot:
                self.mutations += 1
        return True

    def copy(self, dst: int, src: int, count: int) -> bool:
        """memmove ``count`` bytes from ``src`` to ``dst`` (each range inside one live block)."""
        source = self._find(src, count)
        target = self._find(dst, count)
        if source is None or target is None:
            return False
        if count == 0:
            return True
        low = src - source.start
        carried = [(offset - low, value) for offset, value in source.edges.items()
                   if low <= offset and offset + POINTER_SIZE <= low + count]
        self.data[dst:dst + count] = self.data[src:src + count]  # the slice is a copy
        base = dst - target.start
        if self._forget(target, base, count) or carried:
            self.mutations += 1
        for relative, value in carried:
            target.edges[base + relative] = value
        return True

    @staticmethod
    def _forget(block: Block, offset: int, count: int) -> bool:
        """Forget the pointers whose 8 bytes overlap ``[offset, offset+count)`` of ``block``; True if any."""
        if not block.edges:
            return False
        before = len(block.edges)
        first = offset - POINTER_SIZE + 1
        if count <= 4 * POINTER_SIZE:
            for candidate in range(max(first, 0), offset + count):
                block.edges.pop(candidate, None)
        else:
            for candidate in [o for o in block.edges if first <= o < offset + count]:
                del block.edges[candidate]
        return len(block.edges) != before

    # ------------------------------------------------------------------ collection

    def collect(self, roots: Roots = ()) -> int:
        """Mark from ``roots`` and the nogc blocks, free every unmarked GC block."""
        if callable(roots):
            roots = roots()
        blocks = self._blocks
        marked: set[int] = set()
        pending = [value for value in roots if value in blocks]
        pending += [start for start, block in blocks.items() if not block.collectable]
        while pending:
            start = pending.pop()
            if start not in marked:
                marked.add(start)
                pending.extend(v for v in blocks[start].edges.values() if v in blocks)
        dead = [start for start, block in blocks.items()
                if block.collectable and start not in marked]
        freed_bytes = sum(blocks[start].size for start in dead)
        for start in dead:
            self.free(start)
        live_gc = sum(b.foot for b in blocks.values() if b.collectable)
        self.gc_since = 0
        self.gc_threshold = max(self.gc_floor, live_gc)
        self.collections += 1
        if self.log:
            self.log(f"gc: collection {self.collections}: freed {len(dead)} blocks "
                     f"({freed_bytes} bytes), {len(blocks)} blocks live, "
                     f"heap {self.size} bytes ({self.free_bytes} free)")
        return len(dead)

    # ------------------------------------------------------------------ inspection

    def blocks(self) -> list[tuple[int, int, int, bytes]]:
        """Live blocks in address order: ``(address, size, kind, data)``, kind 1 = nogc."""
        return [(start, size, kind, bytes(data)) for start, size, kind, data in self.iter_blocks()]

    def iter_blocks(self):
        """``blocks()`` one at a time, each block's data a view into the arena (core dumps:
        nothing is copied). The heap must not change while the views are in use."""
        view = memoryview(self.data)
        for start in self._starts:
            block = self._blocks[start]
            yield start, block.size, 0 if block.collectable else 1, view[start:start + block.size]

    def block_count(self) -> int:
        return len(self._starts)

    def regions(self) -> list[tuple[int, int]]:
        """The free regions ``(start, length)`` in address order."""
        return [(start, self._free_len[start]) for start in self._free_starts]

    def pointers(self) -> list[int]:
        """Addresses where a traced pointer is stored, sorted."""
        return sorted(b.start + offset for b in self._blocks.values() for offset in b.edges)

    def edges(self) -> dict[int, int]:
        """Every recorded pointer: absolute address -> stored value."""
        return {b.start + offset: value for b in self._blocks.values()
                for offset, value in b.edges.items()}

    def check(self) -> None:
        """Assert the layout invariants (for tests and fuzzers)."""
        tiles = [(s - GRANULE, self._blocks[s].foot, "block") for s in self._starts]
        tiles += [(s, n, "free") for s, n in self.regions()]
        tiles.sort()
        position, previous = GRANULE, None
        for start, length, kind in tiles:
            assert start == position, f"gap or overlap at {start} (expected {position})"
            assert length % GRANULE == 0 and length >= GRANULE, (start, length)
            assert not (kind == previous == "free"), f"unmerged free regions at {start}"
            position += length
            previous = kind
        assert position == self.capacity, "tiles do not cover the arena"
        assert len(self.data) == self.capacity and self.size <= max(self.limit, 0)
        assert self._starts == sorted(self._blocks)
        assert self._free_starts == sorted(self._free_len)
        for block in self._blocks.values():
            assert block.start % GRANULE == 0
            assert block.foot == need_bytes(block.size)
            for offset, value in block.edges.items():
                assert 0 <= offset and offset + POINTER_SIZE <= block.size
                stored = self.data[block.start + offset:block.start + offset + 8]
                assert int.from_bytes(stored, "big") == value
