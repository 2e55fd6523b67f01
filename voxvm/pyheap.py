"""The reference heap and garbage collector (pure Python, simple, obviously correct).

Owns the heap semantics of decisions.md §3 items 8-13 and §4/§6 for the
pure-Python backend (voxvm/pyvm.py), and serves as the model oracle for the
compiled heap: an allocator fuzzer can drive this class and the C heap with
the same operations and compare ``blocks()`` after every step.

Address space and layout
    Heap addresses start at ``HEAP_BASE`` = 16; 0 is the null pointer and never
    a block (decisions §3.9). The heap holds ``size`` usable bytes at addresses
    ``[16, 16 + size)``; ``size`` starts at ``init_size`` (``--init-heap-size``).
    A request for n bytes reserves ``reserved_size(n)`` = n rounded up to a
    multiple of 16, at least 16, so every block starts 16-aligned. Exactly n
    bytes are accessible (decisions §3.12); they are zero-filled on allocation.

Allocation: first fit, split, merge
    The free list is kept sorted by address. ``alloc`` takes the lowest-addressed
    free range whose length is >= the reserved size, carves the block from its
    start and leaves the rest free. ``free`` returns the reserved range and
    merges it with both neighbours when they are free. The exact policy of
    ``alloc(n, collectable, roots)``:

    1. ``need = reserved_size(n)``; if ``need > max_size`` fail at once (no
       collection: the request can never fit).
    2. If ``gc_stress``, or more than ``trigger`` bytes were reserved since the
       last collection, collect.
    3. First fit. If nothing fits and step 2 did not collect, collect and retry.
    4. While nothing fits and ``size < max_size``: grow (``size`` doubles, at
       least to 4096, at most to ``max_size``; the new range joins the free
       list) and retry.
    5. Nothing fits: return 0 (the VM raises HeapAllocationFault and sets A(0)).
    ``allocated_since_gc`` counts reserved bytes of every allocation (collected
    or not). After a collection ``trigger = max(GC_MIN_TRIGGER, live reserved
    bytes)``, so collections happen when the heap's live part has been
    allocated again (amortised linear cost).

Accesses (all return success; a count of 0 always succeeds and touches nothing)
    ``read(a, n)`` / ``write(a, data)`` succeed only when ``[a, a+n)`` lies
    inside the first n accessible bytes of one live block. ``copy(dst, src, n)``
    checks both ranges that way and behaves like memmove.

Garbage collection: precise mark-sweep (decisions §3.8, §3.10)
    Roots are the values the caller passes (the VM passes every register and
    data-stack entry tagged 8 (address)) plus every live ``allocr_nogc`` block,
    which is never collected and whose stored pointers are always traced.
    A value v references the live block b with ``b.start <= v < b.start +
    max(b.size, 1)`` (interior pointers keep a block alive; one-past-the-end
    pointers do not). Edges: an 8-byte write flagged ``is_pointer`` (the VM's
    ``store`` of a tag-8 value with count 8) anywhere inside a block records
    "this block holds pointer v at offset o". Any later write overlapping those
    8 bytes removes the edge (a pointer write re-adds it); ``copy`` carries the
    edges that lie entirely inside the copied source range to the same relative
    place in the destination; ``free`` (explicit or by the collector) drops the
    block with its edges. Sweep frees every unreached collectable block.
    Collections are reported through ``log`` as ``gc: ...`` lines.

API
    ``PyHeap(init_size, max_size, *, gc_stress=False, log=None)``
    ``alloc(n, collectable=True, roots=()) -> address or 0``
    ``free(address) -> bool``            False: not the start of a live block
    ``read(address, count) -> bytes | None``
    ``write(address, data, *, is_pointer=False) -> bool``
    ``copy(dst, src, count) -> bool``
    ``collect(roots) -> int``            number of blocks freed
    ``blocks() -> list[(address, size, kind, data)]``  kind 0 GC, 1 nogc; by address
    ``free_ranges() -> list[(address, length)]``; ``edges() -> dict``; ``check()``
    ``roots`` may be an iterable of ints or a callable returning one (called only
    when a collection actually runs).
"""

from __future__ import annotations

import bisect
from typing import Callable, Iterable

HEAP_BASE = 16                 # first usable address; 0 is null (decisions §3.9)
GRANULE = 16                   # reservation unit and alignment
MIN_GROWTH = 4096              # growing a tiny heap goes at least to this size
GC_MIN_TRIGGER = 1 << 20       # bytes allocated before the first collection
POINTER_SIZE = 8

Roots = Iterable[int] | Callable[[], Iterable[int]]


def reserved_size(n: int) -> int:
    """Bytes of address space a request for ``n`` bytes occupies."""
    return max(GRANULE, -(-n // GRANULE) * GRANULE)


class Block:
    """One live allocation."""

    __slots__ = ("start", "size", "reserved", "collectable", "edges")

    def __init__(self, start: int, size: int, collectable: bool) -> None:
        self.start = start
        self.size = size                    # accessible bytes
        self.reserved = reserved_size(size)
        self.collectable = collectable
        self.edges: dict[int, int] = {}     # offset -> pointer value stored there


class PyHeap:
    """A first-fit heap with a precise mark-sweep collector. See the module docstring."""

    def __init__(self, init_size: int, max_size: int, *, gc_stress: bool = False,
                 log: Callable[[str], None] | None = None) -> None:
        self.size = max(0, init_size)
        self.max_size = max(max_size, self.size)
        self.gc_stress = gc_stress
        self.log = log
        self.data = bytearray(HEAP_BASE + self.size)
        self._free_starts: list[int] = []          # sorted
        self._free_len: dict[int, int] = {}
        if self.size:
            self._free_starts.append(HEAP_BASE)
            self._free_len[HEAP_BASE] = self.size
        self._starts: list[int] = []               # sorted starts of live blocks
        self._blocks: dict[int, Block] = {}
        self.allocated_since_gc = 0
        self.trigger = GC_MIN_TRIGGER
        self.collections = 0

    # ------------------------------------------------------------------ allocation

    def alloc(self, n: int, collectable: bool = True, roots: Roots = ()) -> int:
        """Allocate ``n`` zeroed bytes; return the address, or 0 if impossible."""
        need = reserved_size(n)
        if need > self.max_size:
            return 0
        collected = False
        if self.gc_stress or self.allocated_since_gc > self.trigger:
            self.collect(roots)
            collected = True
        start = self._first_fit(need)
        if start is None and not collected:
            self.collect(roots)
            start = self._first_fit(need)
        while start is None and self._grow():
            start = self._first_fit(need)
        if start is None:
            return 0
        self._take(start, need)
        block = Block(start, n, collectable)
        self._blocks[start] = block
        bisect.insort(self._starts, start)
        self.data[start:start + n] = bytes(n)
        self.allocated_since_gc += need
        return start

    def free(self, address: int) -> bool:
        """Free the block starting exactly at ``address``; False if there is none."""
        block = self._blocks.pop(address, None)
        if block is None:
            return False
        del self._starts[bisect.bisect_left(self._starts, address)]
        self._release(address, block.reserved)
        return True

    def _first_fit(self, need: int) -> int | None:
        for start in self._free_starts:
            if self._free_len[start] >= need:
                return start
        return None

    def _take(self, start: int, need: int) -> None:
        length = self._free_len.pop(start)
        index = bisect.bisect_left(self._free_starts, start)
        if length == need:
            del self._free_starts[index]
        else:
            self._free_starts[index] = start + need
            self._free_len[start + need] = length - need

    def _release(self, start: int, length: int) -> None:
        """Return ``[start, start+length)`` to the free list, merging with both neighbours."""
        index = bisect.bisect_left(self._free_starts, start)
        if index < len(self._free_starts) and start + length == self._free_starts[index]:
            following = self._free_starts.pop(index)
            length += self._free_len.pop(following)
        if index > 0:
            previous = self._free_starts[index - 1]
            if previous + self._free_len[previous] == start:
                self._free_len[previous] += length
                return
        self._free_starts.insert(index, start)
        self._free_len[start] = length

    def _grow(self) -> bool:
        if self.size >= self.max_size:
            return False
        new_size = min(max(self.size * 2, MIN_GROWTH), self.max_size)
        old_end = HEAP_BASE + self.size
        self.data.extend(bytes(new_size - self.size))
        self.size = new_size
        self._release(old_end, HEAP_BASE + new_size - old_end)
        if self.log:
            self.log(f"gc: heap grown to {new_size} bytes")
        return True

    # ------------------------------------------------------------------ access

    def _find(self, address: int, count: int) -> Block | None:
        """The live block whose accessible bytes contain ``[address, address+count)``."""
        index = bisect.bisect_right(self._starts, address) - 1
        if index < 0:
            return None
        block = self._blocks[self._starts[index]]
        if address + count <= block.start + block.size:
            return block
        return None

    def read(self, address: int, count: int) -> bytes | None:
        """``count`` bytes at ``address`` inside one live block, or None."""
        if count == 0:
            return b""
        block = self._find(address, count)
        if block is None:
            return None
        return bytes(self.data[address:address + count])

    def write(self, address: int, data: bytes, *, is_pointer: bool = False) -> bool:
        """Write ``data`` inside one live block; ``is_pointer`` records an 8-byte GC edge."""
        count = len(data)
        if count == 0:
            return True
        block = self._find(address, count)
        if block is None:
            return False
        self.data[address:address + count] = data
        self._drop_edges(block, address - block.start, count)
        if is_pointer and count == POINTER_SIZE:
            block.edges[address - block.start] = int.from_bytes(data, "big")
        return True

    def copy(self, dst: int, src: int, count: int) -> bool:
        """memmove ``count`` bytes from ``src`` to ``dst`` (each inside one live block)."""
        if count == 0:
            return True
        source = self._find(src, count)
        target = self._find(dst, count)
        if source is None or target is None:
            return False
        low = src - source.start
        carried = [(offset - low, value) for offset, value in source.edges.items()
                   if low <= offset and offset + POINTER_SIZE <= low + count]
        self.data[dst:dst + count] = self.data[src:src + count]  # the slice is a copy
        base = dst - target.start
        self._drop_edges(target, base, count)
        for relative, value in carried:
            target.edges[base + relative] = value
        return True

    @staticmethod
    def _drop_edges(block: Block, offset: int, count: int) -> None:
        """Forget pointers whose 8 bytes overlap ``[offset, offset+count)`` of ``block``."""
        if not block.edges:
            return
        first = offset - POINTER_SIZE + 1
        if count <= 4 * POINTER_SIZE:
            for candidate in range(max(first, 0), offset + count):
                block.edges.pop(candidate, None)
        else:
            for candidate in [o for o in block.edges if first <= o < offset + count]:
                del block.edges[candidate]

    # ------------------------------------------------------------------ collection

    def _block_at(self, value: int) -> Block | None:
        index = bisect.bisect_right(self._starts, value) - 1
        if index < 0:
            return None
        block = self._blocks[self._starts[index]]
        return block if value < block.start + max(block.size, 1) else None

    def collect(self, roots: Roots = ()) -> int:
        """Mark from ``roots`` and the nogc blocks, free every unreached GC block."""
        if callable(roots):
            roots = roots()
        marked: set[int] = set()
        pending: list[Block] = []

        def reach(block: Block | None) -> None:
            if block is not None and block.start not in marked:
                marked.add(block.start)
                pending.append(block)

        for value in roots:
            reach(self._block_at(value))
        for block in self._blocks.values():
            if not block.collectable:
                reach(block)
        while pending:
            for value in pending.pop().edges.values():
                reach(self._block_at(value))
        dead = [b for b in self._blocks.values() if b.collectable and b.start not in marked]
        freed_bytes = 0
        for block in dead:
            freed_bytes += block.size
            self.free(block.start)
        live_reserved = sum(b.reserved for b in self._blocks.values())
        self.trigger = max(GC_MIN_TRIGGER, live_reserved)
        self.allocated_since_gc = 0
        self.collections += 1
        if self.log:
            self.log(f"gc: collection {self.collections}: freed {len(dead)} blocks "
                     f"({freed_bytes} bytes), {len(self._blocks)} blocks live "
                     f"({live_reserved} bytes reserved), heap size {self.size} bytes")
        return len(dead)

    # ------------------------------------------------------------------ inspection

    def blocks(self) -> list[tuple[int, int, int, bytes]]:
        """Live blocks in address order: ``(address, size, kind, data)``, kind 1 = nogc."""
        return [(start, b.size, 0 if b.collectable else 1,
                 bytes(self.data[start:start + b.size]))
                for start in self._starts for b in (self._blocks[start],)]

    def free_ranges(self) -> list[tuple[int, int]]:
        return [(start, self._free_len[start]) for start in self._free_starts]

    def edges(self) -> dict[int, int]:
        """Every recorded pointer: absolute address -> stored value."""
        return {b.start + offset: value for b in self._blocks.values()
                for offset, value in b.edges.items()}

    @property
    def live_bytes(self) -> int:
        return sum(b.size for b in self._blocks.values())

    def check(self) -> None:
        """Assert the allocator invariants (for tests and fuzzers)."""
        ranges = [(s, self._blocks[s].reserved, "block") for s in self._starts]
        ranges += [(s, n, "free") for s, n in self.free_ranges()]
        ranges.sort()
        position = HEAP_BASE
        previous_kind = None
        for start, length, kind in ranges:
            assert start == position, f"gap or overlap at {start} (expected {position})"
            assert length > 0
            assert not (kind == previous_kind == "free"), f"unmerged free ranges at {start}"
            position += length
            previous_kind = kind
        assert position == HEAP_BASE + self.size, "ranges do not cover the heap"
        assert len(self.data) == HEAP_BASE + self.size
        assert self._starts == sorted(self._blocks)
        assert self._free_starts == sorted(self._free_len)
        for block in self._blocks.values():
            assert block.start % GRANULE == 0
            for offset in block.edges:
                assert 0 <= offset and offset + POINTER_SIZE <= block.size
