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
       were allocated since the last collection: collect; first fit again.
    4. if nothing fits: grow if possible and first fit again.
    5. if nothing fits, nothing was collected yet and GC blocks exist: collect
       and first fit again. Otherwise return 0 (the VM raises
       HeapAllocationFault and writes A(0)).
    After every collection of the policy the heap grows with the live set
    (``_grow_for_live``): while fewer bytes are free than the live GC blocks
    take, to max(used + live GC, 1.5 * size) (a multiple of 8, at most ``limit``).
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

Representation (host memory: the arena plus about 1/7 of it, whatever the block count)
    Everything lives in three flat buffers; no Python object exists per block,
    per free region or per pointer, so filling the heap with the smallest
    blocks costs what filling it with one big block costs
    (tests/heap/test_host_memory.py, docs/resource-limits.md):

    * ``data``, the arena (``capacity`` bytes). A block's header word (the 8
      bytes below its start, little-endian) holds its size (bits 0-39), the
      GC-managed bit (62) and the mark bit (63, set only during a collection).
      A free region's first word holds its length in granules and, if it is
      2+ granules long, its last word holds its first granule (so the region
      that ends before a tile is found without a search when a block is freed).
    * ``_codes``, one byte per granule (1/8 of the arena): BLOCK on a block's
      header granule, REGION / REGION_END on a free region's first / last
      granule, POINTER + k on a payload granule where a recorded pointer starts
      at byte k, INSIDE elsewhere. Recorded pointers never overlap, so at most
      one starts in a granule; its value is the 8 arena bytes there (a write
      that changes them forgets it). Searches are ``bytearray.find`` / ``rfind``
      (which block contains an address: the last BLOCK code before it) and a
      regular expression over the POINTER codes.
    * ``_bounds``, a tree of upper bounds on the longest free region starting
      in each 64-granule chunk (4 bytes per chunk and per inner node: 1/64 of
      the arena), searched for first fit; plus a shortcut that lets
      consecutive allocations carve one region without a search.

    Growing extends ``data`` and ``_codes`` from a zero mapping (no temporary
    copy of the new part); zero-filling and ``copy`` work in 64 KiB pieces; a
    collection's mark stack is capped at 65536 entries (on overflow the marked
    blocks are rescanned). Transients: ``copy`` of k bytes whose source holds
    pointers keeps a copy of their k/8 codes; ``read`` returns a k-byte copy
    and the inspection methods build lists. CPython may over-allocate a
    bytearray by up to 1/8 when one growth step adds less than 1/8 (only the
    last step before ``limit`` can); those pages are never written.

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
    ``block_sizes() -> dict[address, size]``  by address, without the bytes
    ``regions() -> list[(start, length)]``; ``pointers() -> list[address]``;
    ``capacity``, ``size``, ``free_bytes``, ``gc_since``, ``gc_threshold``,
    ``collections``; ``check()`` asserts every invariant.
    ``roots`` may be an iterable of ints or a callable returning one (called only
    when a collection actually runs).
"""

from __future__ import annotations

import mmap
import re
import struct
from array import array
from typing import Callable, Iterable, Iterator

GRANULE = 8                    # alignment, header size, smallest payload and free region
MIN_GROWTH = 4096              # growing an empty heap goes at least to this size
MIN_GC_FLOOR = 64 * 1024       # smallest collection threshold
HARD_LIMIT = (1 << 34) - 8     # the heap stays below 16 GiB
FIRST_BLOCK = 2 * GRANULE      # address of the first block (its header is at 8)
POINTER_SIZE = 8

# Granule codes: one byte per 8 arena bytes (see "Representation").
INSIDE = 0                     # nothing starts in this granule
BLOCK = 1                      # the header granule of a live block
REGION = 2                     # the first granule of a free region (its word: the length)
REGION_END = 3                 # the last granule of a free region of 2+ granules (its word: the start)
POINTER = 8                    # 8 + k: a recorded pointer starts at byte k of this payload granule

SIZE_MASK = (1 << 40) - 1      # header bits 0-39: the block's size in bytes
GC_BIT = 1 << 62               # header: the block is GC-managed (not allocr_nogc)
MARK_BIT = 1 << 63             # header: reached by the collection under way

CHUNK = 64                     # granules per first-fit bound (one leaf of the bound tree)
NO_HINT = 1 << 40             # a _hint_need no request reaches
MARK_STACK_LIMIT = 1 << 16     # mark stack entries; beyond it the collector rescans
ZERO_CHUNK = 1 << 16           # zero-filling and moving go in pieces of this many bytes

_ZEROS = memoryview(bytes(ZERO_CHUNK))
_WORD = struct.Struct("<Q")                     # block headers and free-region words
_VALUE = struct.Struct(">Q")                    # a stored pointer (the VM stores big-endian)
_POINTER_CODES = re.compile(b"[\x08-\x0f]")     # granule codes POINTER..POINTER+7

Roots = Iterable[int] | Callable[[], Iterable[int]]


def need_bytes(n: int) -> int:
    """Tile bytes of an n-byte block: 8-byte header + payload rounded up to 8 (at least 8)."""
    return GRANULE + max(GRANULE, -(-n // GRANULE) * GRANULE)


def _append_zeros(buffer: bytearray, count: int) -> None:
    """Append ``count`` zero bytes to ``buffer`` without a ``count``-byte temporary.

    The source is an anonymous mapping that is only read, so its pages are never
    backed by memory: growing the arena holds no second copy of the new part.
    """
    with mmap.mmap(-1, count) as zeros:
        buffer.extend(zeros)


def _fill_zero(buffer: bytearray, start: int, end: int) -> None:
    """Zero ``buffer[start:end]`` in pieces (no temporary as large as the range)."""
    while start < end:
        piece = min(end - start, ZERO_CHUNK)
        buffer[start:start + piece] = _ZEROS[:piece]
        start += piece


class PyHeap:
    """The reference heap. See the module docstring for the contract."""

    def __init__(self, init_size: int, max_size: int, *, gc_stress: bool = False,
                 log: Callable[[str], None] | None = None, gc_floor: int | None = None) -> None:
        self.limit = min(max(max_size, 0) & ~7, HARD_LIMIT)
        self.size = min(max(init_size, 0), self.limit) & ~7
        self.gc_stress = gc_stress
        self.log = log
        self.data = bytearray(GRANULE + self.size)           # the arena
        self._codes = bytearray(len(self.data) // GRANULE)    # one code per granule
        self._leaves = 1                                      # leaves of the bound tree
        self._bounds = array("I", bytes(8))                   # the bound tree (see _first_fit)
        self._resize_bounds()
        self._free_granules = 0
        self._blocks = 0                                      # live blocks
        self._gc_blocks = 0                                   # live GC-managed blocks
        self._last = (0, 0)                                   # _find's cache: [start, end) of a live block
        self._hint_need, self._hint = NO_HINT, 0              # see _first_fit
        self._stack = array("Q")                              # a collection's mark stack (granules)
        self._overflowed = False                              # a marked block did not fit on it
        if self.size:
            self._add_region(1, self.size // GRANULE)
        self.gc_floor = gc_floor if gc_floor is not None else max(MIN_GC_FLOOR, self.size >> 2)
        self.gc_threshold = self.gc_floor
        self.gc_since = 0
        self.collections = 0
        self.mutations = 0                       # see the policy in the module docstring
        self._futile: tuple[int, list[int]] | None = None
        self._live_gc = 0                        # tile bytes of the live GC blocks after the last collection

    @property
    def capacity(self) -> int:
        return GRANULE + self.size

    @property
    def free_bytes(self) -> int:
        return self._free_granules * GRANULE

    # ------------------------------------------------------------------ words in the arena

    def _word(self, granule: int) -> int:
        """The 8-byte word at the start of ``granule``: a header or a free region's length/start."""
        return _WORD.unpack_from(self.data, granule * GRANULE)[0]

    def _set_word(self, granule: int, value: int) -> None:
        _WORD.pack_into(self.data, granule * GRANULE, value)

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
            address = self._fit(n, collectable)
        if not address and self._grow(n):
            address = self._fit(n, collectable)
        if not address and not collected and self._gc_blocks:
            self._policy_collect(roots)
            address = self._fit(n, collectable)
        return address

    def _policy_collect(self, roots: Roots) -> None:
        """A collection of the policy, unless it is futile (module docstring), then growth."""
        roots = list(roots() if callable(roots) else roots)
        if not self.gc_stress and self._futile == (self.mutations, roots):
            return
        self._futile = (self.mutations, roots) if self.collect(roots) == 0 else None
        self._grow_for_live()

    def _grow_for_live(self) -> None:
        """Growth with the live set after a collection of the policy (docs/heap.md).

        While fewer bytes are free than the live GC blocks take (tiles, headers
        included), grow to max(used + live GC, 1.5 * size) rounded down to 8, at
        most ``limit``: the next collection, due when the GC bytes allocated since
        reach the live GC bytes, then frees about as much as is live instead of
        running early on a full heap. Manual blocks count as used but ask for no
        room (they are never collected). The compiled heap's vh_grow_for_live
        (vh_policy.h) is the same rule.
        """
        live_gc = self._live_gc
        if self.free_bytes >= live_gc:
            return
        used = self.size - self.free_bytes
        target = min(max(used + live_gc, (self.size + (self.size >> 1)) & ~7), self.limit)
        if target > self.size:
            self._grow_to(target)

    def alloc_raw(self, n: int, collectable: bool = True) -> int:
        """First fit, growing if nothing fits; never collects."""
        if not self._possible(n):
            return 0
        address = self._fit(n, collectable)
        if not address and self._grow(n):
            address = self._fit(n, collectable)
        return address

    def _fit(self, n: int, collectable: bool) -> int:
        """Carve an n-byte block from the front of the first fitting region; 0 if none fits."""
        need = need_bytes(n) // GRANULE
        granule = self._first_fit(need)
        if granule < 0:
            return 0
        length = self._remove_region(granule)
        if length > need:
            self._add_region(granule + need, length - need)
        self._codes[granule] = BLOCK
        self._set_word(granule, n | (GC_BIT if collectable else 0))
        start = (granule + 1) * GRANULE
        _fill_zero(self.data, start, start + n)
        self._blocks += 1
        self.mutations += 1
        if collectable:
            self._gc_blocks += 1
            self.gc_since += need * GRANULE
        return start

    def _grow(self, n: int | None) -> bool:
        tail_start = self._region_before(len(self._codes))
        tail = (len(self._codes) - tail_start) * GRANULE if tail_start >= 0 else 0
        deficit = max(0, (need_bytes(n) if n is not None else 0) - tail)
        new_size = min(max(2 * self.size, self.size + deficit, MIN_GROWTH), self.limit)
        if new_size <= self.size or new_size < self.size + deficit:
            return False
        return self._grow_to(new_size)

    def _grow_to(self, new_size: int) -> bool:
        """Enlarge the arena to ``new_size`` bytes (a multiple of 8 above the size, at most ``limit``)."""
        capacity = self.capacity
        added = new_size - self.size
        codes_before = len(self._codes)
        try:
            _append_zeros(self._codes, added // GRANULE)
            try:
                _append_zeros(self.data, added)
            except MemoryError:
                del self._codes[codes_before:]
                raise
        except MemoryError:          # the host cannot give more: the allocation fails
            return False
        self.size = new_size
        self._resize_bounds()
        self._release(capacity // GRANULE, added // GRANULE)
        if self.log:
            self.log(f"gc: heap grown to {new_size} bytes")
        return True

    def free(self, address: int) -> bool:
        """Free the block starting exactly at ``address``; False if there is none."""
        if not self._is_block(address):
            return False
        granule = address // GRANULE - 1
        header = self._word(granule)
        tile = need_bytes(header & SIZE_MASK) // GRANULE
        _fill_zero(self._codes, granule, granule + tile)     # its code and its pointers
        self._blocks -= 1
        if header & GC_BIT:
            self._gc_blocks -= 1
        self._last = (0, 0)
        self._release(granule, tile)
        self.mutations += 1
        return True

    # free regions ---------------------------------------------------------
    # A free region of n granules at granule g: code REGION at g with n in its
    # word; if n >= 2, code REGION_END at g + n - 1 with g in its word, so the
    # region ending before any granule is found without a search. Every other
    # granule of a region has code INSIDE.

    def _add_region(self, granule: int, length: int) -> None:
        """Record the free region ``[granule, granule + length)`` (neighbours already merged)."""
        self._codes[granule] = REGION
        self._set_word(granule, length)
        if length > 1:
            self._codes[granule + length - 1] = REGION_END
            self._set_word(granule + length - 1, granule)
        self._free_granules += length
        self._raise_bound(granule, length)
        if granule < self._hint and length >= self._hint_need:
            self._hint_need = NO_HINT

    def _remove_region(self, granule: int) -> int:
        """Forget the free region at ``granule``; returns its length in granules."""
        length = self._word(granule)
        self._codes[granule] = INSIDE
        self._codes[granule + length - 1] = INSIDE
        self._free_granules -= length
        return length

    def _region_before(self, granule: int) -> int:
        """The first granule of the free region that ends just before ``granule``, or -1."""
        code = self._codes[granule - 1]
        if code == REGION:
            return granule - 1
        if code == REGION_END:
            return self._word(granule - 1)
        return -1                    # a block's last granule, or granule 0 (below the arena)

    def _release(self, granule: int, length: int) -> None:
        """Make ``[granule, granule + length)`` free, merging with both neighbouring regions.

        The caller has set every code in the range to INSIDE.
        """
        end = granule + length
        if end < len(self._codes) and self._codes[end] == REGION:
            length += self._remove_region(end)
        before = self._region_before(granule)
        if before >= 0:
            length += self._remove_region(before)
            granule = before
        self._add_region(granule, length)

    # first fit ------------------------------------------------------------
    # The bound tree: leaf c (index _leaves + c) bounds from above the length of
    # every free region that starts in chunk c (granules [64c, 64c + 64)); an
    # inner node is >= both of its children. A bound is raised at once when a
    # region appears or grows and left too high when one shrinks or goes; the
    # search lowers the stale bounds it meets. So every chunk left of the one
    # the search settles on holds no region long enough: first fit is exact.

    def _resize_bounds(self) -> None:
        """Make the tree cover every granule (growth keeps the leaves' values)."""
        chunks = -(-len(self._codes) // CHUNK)
        if chunks <= self._leaves:
            return
        leaves = self._leaves
        while leaves < chunks:
            leaves *= 2
        bounds = array("I", bytes(2 * leaves * 4))
        bounds[leaves:leaves + self._leaves] = self._bounds[self._leaves:]
        for node in range(leaves - 1, 0, -1):
            bounds[node] = max(bounds[2 * node], bounds[2 * node + 1])
        self._leaves, self._bounds = leaves, bounds

    def _raise_bound(self, granule: int, length: int) -> None:
        bounds = self._bounds
        node = self._leaves + granule // CHUNK
        while node and bounds[node] < length:
            bounds[node] = length
            node //= 2

    def _chunk_regions(self, chunk: int) -> Iterator[tuple[int, int]]:
        """The free regions starting in ``chunk``: (granule, length) in address order."""
        end = min((chunk + 1) * CHUNK, len(self._codes))
        granule = self._codes.find(REGION, chunk * CHUNK, end)
        while granule >= 0:
            length = self._word(granule)
            yield granule, length
            granule = self._codes.find(REGION, granule + length, end)

    # The shortcut: every free region starting below granule _hint is shorter
    # than _hint_need granules. A search that returns region g for n granules
    # proves it for (n, g + n) once the block is carved; taking the region at
    # _hint for a request of >= _hint_need granules keeps it true for what is
    # left. _add_region drops the shortcut if a region below _hint reaches
    # _hint_need (regions only shrink or vanish otherwise). So consecutive
    # allocations of equal or growing sizes carve one region without a search.

    def _first_fit(self, need: int) -> int:
        """The first granule of the lowest-addressed free region of >= ``need`` granules, or -1."""
        hint = self._hint
        if need >= self._hint_need and hint < len(self._codes) and self._codes[hint] == REGION \
                and self._word(hint) >= need:
            self._hint = hint + need
            return hint
        granule = self._search(need)
        if granule >= 0:
            self._hint_need, self._hint = need, granule + need
        return granule

    def _search(self, need: int) -> int:
        """First fit through the bound tree: the granule of the region, or -1."""
        bounds, leaves = self._bounds, self._leaves
        while bounds[1] >= need:
            node = 1
            while node < leaves:                 # the leftmost path whose bounds allow a fit
                if bounds[2 * node] >= need:
                    node = 2 * node
                elif bounds[2 * node + 1] >= need:
                    node = 2 * node + 1
                else:
                    break
            if node >= leaves:
                for granule, length in self._chunk_regions(node - leaves):
                    if length >= need:
                        return granule
            # node's bound was stale (>= need, but nothing below it fits): make it
            # exact, which lowers it below need, and fix the path to the root
            if node >= leaves:
                bounds[node] = max((length for _, length in self._chunk_regions(node - leaves)),
                                   default=0)
            else:
                bounds[node] = max(bounds[2 * node], bounds[2 * node + 1])
            node //= 2
            while node:
                bounds[node] = max(bounds[2 * node], bounds[2 * node + 1])
                node //= 2
        return -1

    # ------------------------------------------------------------------ access

    def _is_block(self, value: int) -> bool:
        """Is ``value`` the start of a live block?"""
        return (value % GRANULE == 0 and FIRST_BLOCK <= value < len(self.data)
                and self._codes[value // GRANULE - 1] == BLOCK)

    def _find(self, address: int, count: int) -> int | None:
        """The start of the live block whose bytes contain ``[address, address+count)``, or None.

        (voxvm/backends/reference/core.py's ``host_pointer`` calls it too.)
        """
        start, end = self._last
        if start and start <= address and address + count <= end:
            return start
        if address < FIRST_BLOCK:
            return None
        granule = self._codes.rfind(BLOCK, 0, address // GRANULE)   # the last block starting <= address
        if granule < 0:
            return None
        start = (granule + 1) * GRANULE
        end = start + (self._word(granule) & SIZE_MASK)
        if address + count > end:
            return None
        self._last = (start, end)
        return start

    def read(self, address: int, count: int) -> bytes | None:
        """``count`` bytes at ``address`` inside one live block, or None."""
        if self._find(address, count) is None:
            return None
        return bytes(self.data[address:address + count])

    def write(self, address: int, data: bytes, *, is_pointer: bool = False) -> bool:
        """Write ``data`` inside one live block; ``is_pointer`` records an 8-byte pointer."""
        count = len(data)
        if self._find(address, count) is None:
            return False
        if count:
            self.data[address:address + count] = data
            forgot = self._forget(address, count)
            if is_pointer and count == POINTER_SIZE:
                self._codes[address // GRANULE] = POINTER + address % GRANULE
                self.mutations += 1
            elif forgot:
                self.mutations += 1
        return True

    def copy(self, dst: int, src: int, count: int) -> bool:
        """memmove ``count`` bytes from ``src`` to ``dst`` (each range inside one live block)."""
        if self._find(src, count) is None or self._find(dst, count) is None:
            return False
        if count == 0:
            return True
        # the codes of the granules where a carried pointer may start, read before any write
        first, last = src // GRANULE, (src + count - POINTER_SIZE) // GRANULE
        carried = None
        if count >= POINTER_SIZE and _POINTER_CODES.search(self._codes, first, last + 1):
            carried = self._codes[first:last + 1]
        self._move(dst, src, count)
        changed = self._forget(dst, count)
        if carried:
            for match in _POINTER_CODES.finditer(carried):
                where = (first + match.start()) * GRANULE + carried[match.start()] - POINTER
                if src <= where and where + POINTER_SIZE <= src + count:
                    target = where - src + dst
                    self._codes[target // GRANULE] = POINTER + target % GRANULE
                    changed = True
        if changed:
            self.mutations += 1
        return True

    def _move(self, dst: int, src: int, count: int) -> None:
        """memmove inside the arena in pieces, in the order that never reads a byte already written."""
        data = self.data
        offsets = range(0, count, ZERO_CHUNK)
        for offset in (offsets if dst <= src else reversed(offsets)):
            piece = min(ZERO_CHUNK, count - offset)
            data[dst + offset:dst + offset + piece] = data[src + offset:src + offset + piece]

    def _forget(self, address: int, count: int) -> bool:
        """Forget the pointers whose 8 bytes overlap ``[address, address+count)`` (count >= 1); True if any.

        Those are the pointers starting in ``[address-7, address+count)``. The
        granules strictly between the first and the last one of that range lie
        inside the payload of the one block the range is in, so their codes are
        INSIDE or POINTER+k: they are cleared wholesale. The two end granules
        (one may be the block's header granule) are checked one by one.
        """
        codes = self._codes
        low, high = address - POINTER_SIZE + 1, address + count
        first, last = low // GRANULE, (high - 1) // GRANULE
        forgot = False
        for granule in {first, last}:
            code = codes[granule]
            if code >= POINTER and low <= granule * GRANULE + code - POINTER < high:
                codes[granule] = INSIDE
                forgot = True
        if last - first > 1 and _POINTER_CODES.search(codes, first + 1, last):
            _fill_zero(codes, first + 1, last)
            forgot = True
        return forgot

    # ------------------------------------------------------------------ collection

    def collect(self, roots: Roots = ()) -> int:
        """Mark from ``roots`` and the nogc blocks, free every unmarked GC block."""
        if callable(roots):
            roots = roots()
        self._stack = array("Q")
        self._overflowed = False
        for value in roots:
            self._mark(value)
        for granule in self._block_granules():
            if not self._word(granule) & GC_BIT:
                self._mark((granule + 1) * GRANULE)
        self._drain()
        while self._overflowed:
            # some marked blocks were not pushed: scan every marked block again
            # (scanning one twice is harmless) until a pass marks nothing unpushed
            self._overflowed = False
            for granule in self._block_granules():
                if self._word(granule) & MARK_BIT:
                    self._scan(granule)
                    self._drain()
        freed, freed_bytes, live_gc = self._sweep()
        self.mutations += freed                   # each freed block, as free() counts it
        self.gc_since = 0
        self.gc_threshold = max(self.gc_floor, live_gc)
        self._live_gc = live_gc                   # for _grow_for_live
        self.collections += 1
        if self.log:
            self.log(f"gc: collection {self.collections}: freed {freed} blocks "
                     f"({freed_bytes} bytes), {self._blocks} blocks live, "
                     f"heap {self.size} bytes ({self.free_bytes} free)")
        return freed

    def _block_granules(self) -> Iterator[int]:
        """The header granule of every live block, in address order."""
        granule = self._codes.find(BLOCK, 1)
        while granule >= 0:
            yield granule
            granule = self._codes.find(BLOCK, granule + 1)

    def _mark(self, value: int) -> None:
        """Mark the block starting at ``value``, if any and not yet marked, and push it."""
        if self._is_block(value):
            granule = value // GRANULE - 1
            header = self._word(granule)
            if not header & MARK_BIT:
                self._set_word(granule, header | MARK_BIT)
                if len(self._stack) < MARK_STACK_LIMIT:
                    self._stack.append(granule)
                else:
                    self._overflowed = True

    def _scan(self, granule: int) -> None:
        """Mark what the pointers recorded in the block at ``granule`` refer to."""
        start = (granule + 1) * GRANULE
        end = start + (self._word(granule) & SIZE_MASK)
        for match in _POINTER_CODES.finditer(self._codes, granule + 1, -(-end // GRANULE)):
            where = match.start() * GRANULE + self._codes[match.start()] - POINTER
            self._mark(_VALUE.unpack_from(self.data, where)[0])

    def _drain(self) -> None:
        while self._stack:
            self._scan(self._stack.pop())

    def _sweep(self) -> tuple[int, int, int]:
        """Free the unmarked GC blocks and clear the marks, walking the tiles in address order.

        Each run of dead blocks and free regions becomes one region. Returns
        (blocks freed, their bytes, tile bytes of the live GC blocks).
        """
        codes = self._codes
        freed = freed_bytes = live_gc = 0
        run = -1                                  # first granule of the free run being built
        granule = 1
        while granule < len(codes):
            if codes[granule] == REGION:
                length = self._remove_region(granule)
                free = True
            else:
                header = self._word(granule)
                length = need_bytes(header & SIZE_MASK) // GRANULE
                free = bool(header & GC_BIT) and not header & MARK_BIT
                if free:
                    _fill_zero(codes, granule, granule + length)
                    self._blocks -= 1
                    self._gc_blocks -= 1
                    freed += 1
                    freed_bytes += header & SIZE_MASK
                else:
                    self._set_word(granule, header & ~MARK_BIT)
                    if header & GC_BIT:
                        live_gc += length * GRANULE
            if free and run < 0:
                run = granule
            elif not free and run >= 0:
                self._add_region(run, granule - run)
                run = -1
            granule += length
        if run >= 0:
            self._add_region(run, granule - run)
        self._last = (0, 0)
        return freed, freed_bytes, live_gc

    # ------------------------------------------------------------------ inspection

    def blocks(self) -> list[tuple[int, int, int, bytes]]:
        """Live blocks in address order: ``(address, size, kind, data)``, kind 1 = nogc."""
        return [(start, size, kind, bytes(data)) for start, size, kind, data in self.iter_blocks()]

    def iter_blocks(self):
        """``blocks()`` one at a time, each block's data a view into the arena (core dumps:
        nothing is copied). The heap must not change while the views are in use."""
        view = memoryview(self.data)
        for granule in self._block_granules():
            header = self._word(granule)
            start, size = (granule + 1) * GRANULE, header & SIZE_MASK
            yield start, size, 0 if header & GC_BIT else 1, view[start:start + size]

    def block_count(self) -> int:
        return self._codes.count(BLOCK)

    def block_sizes(self) -> dict[int, int]:
        """Live blocks in address order: address -> size (no byte copies)."""
        return {(granule + 1) * GRANULE: self._word(granule) & SIZE_MASK
                for granule in self._block_granules()}

    def regions(self) -> list[tuple[int, int]]:
        """The free regions ``(start, length)`` in address order."""
        result = []
        granule = self._codes.find(REGION, 1)
        while granule >= 0:
            length = self._word(granule)
            result.append((granule * GRANULE, length * GRANULE))
            granule = self._codes.find(REGION, granule + length)
        return result

    def pointers(self) -> list[int]:
        """Addresses where a traced pointer is stored, sorted."""
        return [match.start() * GRANULE + self._codes[match.start()] - POINTER
                for match in _POINTER_CODES.finditer(self._codes)]

    def edges(self) -> dict[int, int]:
        """Every recorded pointer: absolute address -> stored value."""
        return {where: _VALUE.unpack_from(self.data, where)[0] for where in self.pointers()}

    def check(self) -> None:
        """Assert every invariant of the representation (for tests and fuzzers)."""
        codes = self._codes
        assert len(self.data) == self.capacity and self.size <= max(self.limit, 0)
        assert len(codes) * GRANULE == self.capacity and codes[0] == INSIDE
        granule, previous_free = 1, False
        free = blocks = gc_blocks = 0
        exact = {}                                # chunk -> longest region starting in it
        while granule < len(codes):
            code = codes[granule]
            word = self._word(granule)
            if code == REGION:
                length = word
                assert length >= 1 and granule + length <= len(codes), (granule, length)
                assert not previous_free, f"unmerged free regions at {granule * GRANULE}"
                if length > 1:
                    assert codes[granule + length - 1] == REGION_END
                    assert self._word(granule + length - 1) == granule
                inner = codes[granule + 1:granule + length - 1]
                assert inner.count(INSIDE) == len(inner), f"codes inside region {granule * GRANULE}"
                free += length
                assert granule >= self._hint or length < self._hint_need, "first-fit shortcut unsound"
                chunk = granule // CHUNK
                exact[chunk] = max(exact.get(chunk, 0), length)
            else:
                assert code == BLOCK, f"gap or overlap at {granule * GRANULE}: code {code}"
                assert word & ~(SIZE_MASK | GC_BIT) == 0, f"bad header at {granule * GRANULE}"
                size = word & SIZE_MASK
                length = need_bytes(size) // GRANULE
                assert granule + length <= len(codes), "block beyond the arena"
                payload = codes[granule + 1:granule + length]
                pointers = [m.start() for m in _POINTER_CODES.finditer(payload)]
                assert payload.count(INSIDE) + len(pointers) == len(payload), \
                    f"bad codes in block {(granule + 1) * GRANULE}"
                for index in pointers:
                    offset = index * GRANULE + payload[index] - POINTER   # from the block start
                    assert offset + POINTER_SIZE <= size, f"pointer outside block {(granule + 1) * GRANULE}"
                blocks += 1
                gc_blocks += bool(word & GC_BIT)
            previous_free = code == REGION
            granule += length
        assert granule == len(codes), "tiles do not cover the arena"
        assert (free, blocks, gc_blocks) == (self._free_granules, self._blocks, self._gc_blocks)
        bounds, leaves = self._bounds, self._leaves
        assert leaves * CHUNK >= len(codes)
        for chunk in range(leaves):
            assert bounds[leaves + chunk] >= exact.get(chunk, 0), f"bound of chunk {chunk} too low"
        for node in range(1, leaves):
            assert bounds[node] >= max(bounds[2 * node], bounds[2 * node + 1])
        start, end = self._last                   # the lookup cache names a live block exactly
        if start:
            assert self._is_block(start), f"cached block {start} is not live"
            assert end == start + (self._word(start // GRANULE - 1) & SIZE_MASK)
