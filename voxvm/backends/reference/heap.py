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
    (``_grow_for_live``): while fewer bytes are free than ``gc_room`` (1.25 x the
    live GC blocks' tiles), to max(used + room, 1.5 * size) (a multiple of 8, at
    most ``limit``).
    "Collect" skips a futile collection (except under gc_stress): after a
    collection of the policy that freed nothing, while ``mutations`` (blocks
    allocated or freed, pointers recorded, forgotten or moved) and the roots
    (as a sequence) are unchanged, a collection would free nothing again and
    change nothing, so it is not run and not counted; a program retrying a
    failing allocation then costs O(roots) per retry (the compiled heap's
    vh_policy.h has the same rule).
    ``gc_since`` counts the tile bytes of GC-managed allocations since the last
    collection; after a collection ``gc_threshold = max(gc_floor, gc_room(tile
    bytes of the live GC blocks))`` with ``gc_floor = max(64 KiB, initial size / 4)``.

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

Representation (host memory: the arena plus 3.5 % of it, 8.2 % once a pointer is stored
unaligned; whatever the block count)
    Everything lives in the arena and in a few flat bitmaps; no Python object
    exists per block, per free region or per pointer, so filling the heap with
    the smallest blocks costs what filling it with one big block costs
    (tests/heap/test_host_memory.py, docs/resource-limits.md):

    * ``data``, the arena (``capacity`` bytes). A block's header word (the 8
      bytes below its start, little-endian) holds its size (bits 0-39), the
      GC-managed bit (62) and the mark bit (63, set only during a collection).
      A free region's first word holds its length in granules and REGION_BIT
      (61), which no header has: the word at a tile's start says what it is.
    * Two bitmaps with one bit per 8-byte granule (1/64 of the arena each;
      bit g is bit ``g % 8`` of byte ``g // 8``): ``_tiles``, the first
      granule of every tile (live block or free region), and ``_ptrs``, the
      granules where a recorded pointer starts. Recorded pointers never
      overlap, so at most one starts in a granule; its byte offset k in the
      granule (0 for an aligned pointer) is kept in three bit planes
      ``_offsets``, created at the first unaligned pointer (3/64 of the arena:
      programs that store only aligned pointers never pay them); its value is
      the 8 arena bytes there (a write that changes them forgets it).
      ``_tile_words`` has one byte per 64-bit word of ``_tiles``, 1 iff the
      word is not zero (1/512), so the tile containing an address (the last
      tile start at or below it: which block contains it, which free region
      ends before a tile) is one word and, past it, a ``rfind`` over that
      summary.
    * ``_bounds``, a tree of upper bounds on the longest free region starting
      in each 512-granule chunk (8 bytes per chunk: 1/512 of the arena),
      searched for first fit; plus a shortcut that lets consecutive
      allocations carve one region without a search.

    The arena and the bitmaps are anonymous private mappings (``mmap``):
    their pages are zero until written and take host memory only once
    written. Growing resizes them in place (``mremap`` on Linux: no copy and
    no page touched, so a growth step takes microseconds whatever its size
    and never holds up Ctrl-C or ``Core.request_stop()``; where the platform
    has no ``mremap`` the contents are copied into a larger mapping in 64 KiB
    pieces, between which Python handles signals). Every arena byte at or
    beyond ``_clean`` has never been written, so an allocation zero-fills
    only the part of its block below it: a large fresh block costs neither
    time nor host memory until the program writes it. Zero-filling and
    ``copy`` work in 64 KiB pieces; a collection's mark stack is capped at
    65536 entries (on overflow the marked blocks are rescanned). Transients:
    ``copy`` of k bytes whose source holds pointers keeps a copy of the
    source's pointer bits (at most k/16 bytes); ``read`` returns a k-byte
    copy and the inspection methods build lists.

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
import sys
import time
from array import array
from typing import Callable, Iterable, Iterator

from .. import gc_collection_line, gc_growth_line

GRANULE = 8                    # alignment, header size, smallest payload and free region
MIN_GROWTH = 4096              # growing an empty heap goes at least to this size


def gc_room(live_gc: int) -> int:
    """The room a collection leaves for the next one: 1.25 x the live GC bytes (the
    compiled heap's VH_GC_ROOM; docs/heap.md "Growth after a collection")."""
    return live_gc + (live_gc >> 2)
MIN_GC_FLOOR = 64 * 1024       # smallest collection threshold
HARD_LIMIT = (1 << 34) - 8     # the heap stays below 16 GiB
FIRST_BLOCK = 2 * GRANULE      # address of the first block (its header is at 8)
POINTER_SIZE = 8

SIZE_MASK = (1 << 40) - 1      # header bits 0-39: the block's size in bytes
GC_BIT = 1 << 62               # header: the block is GC-managed (not allocr_nogc)
MARK_BIT = 1 << 63             # header: reached by the collection under way
REGION_BIT = 1 << 61           # a free region's first word (never set in a header)

CHUNK = 512                    # granules per first-fit bound (one leaf of the bound tree)
NO_HINT = 1 << 40              # a _hint_need no request reaches
MARK_STACK_LIMIT = 1 << 16     # mark stack entries; beyond it the collector rescans
ZERO_CHUNK = 1 << 16           # zero-filling, moving and copying go in pieces of this many bytes

_ZEROS = memoryview(bytes(ZERO_CHUNK))
_WORD = struct.Struct("<Q")                     # block headers, free-region words, bitmap words
_VALUE = struct.Struct(">Q")                    # a stored pointer (the VM stores big-endian)
_NONZERO = re.compile(b"[^\x00]")               # the non-zero bytes of a piece
PIECE = 4096                                    # bitmaps are searched a page at a time
_ZERO_PIECE = bytes(PIECE)
_ONE = b"\x01"                                  # a _tile_words entry of a non-empty word
# Private: a forked child must not share the heap. (Windows' mmap takes no flags.)
_MAP_FLAGS = ({"flags": mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS}
              if hasattr(mmap, "MAP_PRIVATE") else {})
# Linux's MADV_DONTNEED on private anonymous memory drops the pages: they read as zero
# again and hold no memory (elsewhere it need not zero, so it is not used there).
_DONTNEED = mmap.MADV_DONTNEED if sys.platform.startswith("linux") \
    and hasattr(mmap, "MADV_DONTNEED") else None
_DROP_MIN = 16 * mmap.PAGESIZE   # a zero-fill this long drops its whole pages instead

Roots = Iterable[int] | Callable[[], Iterable[int]]


def need_bytes(n: int) -> int:
    """Tile bytes of an n-byte block: 8-byte header + payload rounded up to 8 (at least 8)."""
    return GRANULE + max(GRANULE, -(-n // GRANULE) * GRANULE)


def _bitmap_bytes(granules: int) -> int:
    """Bytes of a bitmap with one bit per granule, in whole 64-bit words (at least one)."""
    return (granules // 64 + 1) * 8


def _mapping(length: int) -> mmap.mmap:
    """``length`` zero bytes of anonymous memory; a page takes host memory only once written."""
    return mmap.mmap(-1, length, **_MAP_FLAGS)


def _resized(buffer: mmap.mmap, length: int) -> mmap.mmap:
    """``buffer`` grown to ``length`` bytes, the new ones zero; MemoryError if the host refuses.

    On Linux ``resize`` is ``mremap``: the pages move with their page tables,
    nothing is copied or touched. Elsewhere (no ``mremap``: SystemError) the
    bytes are copied to a new mapping in pieces, so signals are handled
    between them.
    """
    try:
        buffer.resize(length)
        return buffer
    except OSError as error:                  # ENOMEM, or an address-space limit
        raise MemoryError(str(error)) from error
    except SystemError:
        pass
    new = _mapping(length)
    for offset in range(0, len(buffer), ZERO_CHUNK):
        end = min(offset + ZERO_CHUNK, len(buffer))
        new[offset:end] = buffer[offset:end]
    buffer.close()
    return new


def _fill_zero(buffer, start: int, end: int) -> None:
    """Zero ``buffer[start:end]`` in pieces (no temporary as large as the range).

    In a mapping (the arena, a bitmap) on Linux the whole pages of a long range
    are dropped instead of written: they read as zero, cost no memory until
    written again, and dropping them takes time per page, not per byte.
    """
    if _DONTNEED is not None and end - start >= _DROP_MIN and isinstance(buffer, mmap.mmap):
        low = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE
        high = end // mmap.PAGESIZE * mmap.PAGESIZE
        buffer.madvise(_DONTNEED, low, high - low)
        _fill_zero(buffer, start, low)
        _fill_zero(buffer, high, end)
        return
    while start < end:
        piece = min(end - start, ZERO_CHUNK)
        buffer[start:start + piece] = _ZEROS[:piece]
        start += piece


def _nonzero_pieces(buffer, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """The page-aligned pieces of ``buffer[start:end]`` that hold a non-zero byte:
    ``(offset, bytes)``. A zero piece costs a copy and a ``memcmp`` (a page never
    written reads the shared zero page: nothing is allocated), so sparse bitmaps
    are searched at several GB/s."""
    while start < end:
        stop = min(end, (start // PIECE + 1) * PIECE)
        piece = buffer[start:stop]
        if piece != _ZERO_PIECE[:stop - start]:
            yield start, piece
        start = stop


def _zero_nonzero(buffer, start: int, end: int) -> bool:
    """Zero ``buffer[start:end]``, writing only the pieces that are not zero; True if any."""
    found = False
    for offset, piece in _nonzero_pieces(buffer, start, end):
        buffer[offset:offset + len(piece)] = _ZERO_PIECE[:len(piece)]
        found = True
    return found


def _set_bits(bits, low: int, high: int) -> Iterator[int]:
    """The set bits of ``bits`` in ``[low, high)``, ascending."""
    if low >= high:
        return
    for offset, piece in _nonzero_pieces(bits, low >> 3, (high + 7) >> 3):
        for match in _NONZERO.finditer(piece):
            base = (offset + match.start()) << 3
            byte = piece[match.start()]
            while byte:
                lowest = byte & -byte
                bit = base + lowest.bit_length() - 1
                if bit >= high:
                    return
                if bit >= low:
                    yield bit
                byte ^= lowest


def _clear_bits(bits, low: int, high: int) -> bool:
    """Clear the bits ``[low, high)`` of ``bits``; True if any was set."""
    if low >= high:
        return False
    first, last = low >> 3, (high - 1) >> 3
    head = (0xFF << (low & 7)) & 0xFF
    tail = (2 << ((high - 1) & 7)) - 1
    if first == last:
        head &= tail
    cleared = False
    if bits[first] & head:
        bits[first] &= ~head & 0xFF
        cleared = True
    if last > first:
        if bits[last] & tail:
            bits[last] &= ~tail & 0xFF
            cleared = True
        if last - first > 1 and _zero_nonzero(bits, first + 1, last):
            cleared = True
    return cleared


class PyHeap:
    """The reference heap. See the module docstring for the contract."""

    def __init__(self, init_size: int, max_size: int, *, gc_stress: bool = False,
                 log: Callable[[str], None] | None = None, gc_floor: int | None = None) -> None:
        self.limit = min(max(max_size, 0) & ~7, HARD_LIMIT)
        self.size = min(max(init_size, 0), self.limit) & ~7
        self.gc_stress = gc_stress
        self.log = log
        self._granules = self.capacity // GRANULE             # granule 0 holds no tile
        self.data = _mapping(self.capacity)                   # the arena
        self._clean = 0                                       # arena bytes from here on are unwritten
        bitmap = _bitmap_bytes(self._granules)
        self._tiles = _mapping(bitmap)                        # tile starts: blocks and free regions
        self._tile_words = _mapping(bitmap // 8)              # 1 per non-empty word of _tiles
        self._ptrs = _mapping(bitmap)                         # granules where a pointer starts
        self._offsets: list[mmap.mmap] | None = None          # its byte offset: bit planes 1, 2, 4
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
        """The 8-byte word at the start of ``granule``: a header, or a region's length | REGION_BIT."""
        return _WORD.unpack_from(self.data, granule * GRANULE)[0]

    def _set_word(self, granule: int, value: int) -> None:
        offset = granule * GRANULE
        _WORD.pack_into(self.data, offset, value)
        if offset + GRANULE > self._clean:
            self._clean = offset + GRANULE

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

        While fewer bytes are free than ``gc_room`` of the live GC blocks (1.25 x
        their tiles, headers included), grow to max(used + room, 1.5 * size) (a
        multiple of 8), at most ``limit``: the next collection, due when the GC
        bytes allocated since reach that room, then frees 1.25 x as much as is live
        instead of running early on a full heap. Manual blocks count as used but ask for no
        room (they are never collected). The compiled heap's vh_grow_for_live
        (vh_policy.h) is the same rule.
        """
        room = gc_room(self._live_gc)
        if self.free_bytes >= room:
            return
        used = self.size - self.free_bytes
        target = min(max((used + room + 7) & ~7, (self.size + (self.size >> 1)) & ~7), self.limit)
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
        clean = self._clean                      # the block's bytes from here on are zero
        length = self._remove_region(granule)    # (its tile bit stays: the block's)
        if length > need:                        # (writes a word past the block's bytes)
            self._add_region(granule + need, length - need)
        self._set_word(granule, n | (GC_BIT if collectable else 0))
        start = (granule + 1) * GRANULE
        if start < clean:
            _fill_zero(self.data, start, min(start + n, clean))
        if start + n > self._clean:
            self._clean = start + n
        self._blocks += 1
        self.mutations += 1
        if collectable:
            self._gc_blocks += 1
            self.gc_since += need * GRANULE
        return start

    def _grow(self, n: int | None) -> bool:
        granules = self._granules
        tail_start = self._region_before(granules)
        tail = (granules - tail_start) * GRANULE if tail_start >= 0 else 0
        deficit = max(0, (need_bytes(n) if n is not None else 0) - tail)
        new_size = min(max(2 * self.size, self.size + deficit, MIN_GROWTH), self.limit)
        if new_size <= self.size or new_size < self.size + deficit:
            return False
        return self._grow_to(new_size)

    def _grow_to(self, new_size: int) -> bool:
        """Enlarge the arena to ``new_size`` bytes (a multiple of 8 above the size, at most ``limit``)."""
        granules = self._granules
        try:
            self._resize_buffers(GRANULE + new_size)
        except MemoryError:          # the host cannot give more: the allocation fails
            return False
        self.size = new_size
        self._granules = self.capacity // GRANULE
        self._resize_bounds()
        self._release(granules, self._granules - granules)
        if self.log:
            self.log(gc_growth_line(new_size))
        return True

    def _resize_buffers(self, capacity: int) -> None:
        """Make the arena ``capacity`` bytes and the bitmaps cover it (MemoryError: nothing
        observable changed; a bitmap may have grown, which costs nothing until written)."""
        bitmap = _bitmap_bytes(capacity // GRANULE)
        if len(self._tiles) < bitmap:
            self._tiles = _resized(self._tiles, bitmap)
            self._tile_words = _resized(self._tile_words, bitmap // 8)
            self._ptrs = _resized(self._ptrs, bitmap)
            if self._offsets:
                self._offsets = [_resized(plane, bitmap) for plane in self._offsets]
        self.data = _resized(self.data, capacity)

    def free(self, address: int) -> bool:
        """Free the block starting exactly at ``address``; False if there is none."""
        if not self._is_block(address):
            return False
        granule = address // GRANULE - 1
        header = self._word(granule)
        tile = need_bytes(header & SIZE_MASK) // GRANULE
        self._clear_tiles(granule, granule + 1)                  # _release sets what starts here
        _clear_bits(self._ptrs, granule + 1, granule + tile)     # its pointers
        self._blocks -= 1
        if header & GC_BIT:
            self._gc_blocks -= 1
        self._last = (0, 0)
        self._release(granule, tile)
        self.mutations += 1
        return True

    # tile starts -----------------------------------------------------------

    def _set_tile(self, granule: int) -> None:
        self._tiles[granule >> 3] |= 1 << (granule & 7)
        self._tile_words[granule >> 6] = 1

    def _is_tile(self, granule: int) -> bool:
        return bool(self._tiles[granule >> 3] >> (granule & 7) & 1)

    def _clear_tiles(self, low: int, high: int) -> None:
        """Clear the tile bits of the granules ``[low, high)`` and keep ``_tile_words``
        exact (the words strictly between the two ends become empty)."""
        tiles, words = self._tiles, self._tile_words
        _clear_bits(tiles, low, high)
        first, last = low >> 6, (high - 1) >> 6
        for word in (first, last) if first != last else (first,):
            if not _WORD.unpack_from(tiles, word << 3)[0]:
                words[word] = 0
        if last - first > 1:
            _zero_nonzero(words, first + 1, last)

    def _last_tile(self, granule: int) -> int:
        """The last tile start at or below ``granule``, or -1."""
        word = granule >> 6
        bits = _WORD.unpack_from(self._tiles, word << 3)[0] & ((2 << (granule & 63)) - 1)
        if not bits:
            word = self._tile_words.rfind(_ONE, 0, word)
            if word < 0:
                return -1
            bits = _WORD.unpack_from(self._tiles, word << 3)[0]
        return (word << 6) + bits.bit_length() - 1

    def _tile_starts(self, low: int = 0, high: int | None = None) -> Iterator[int]:
        """The tile starts in ``[low, high)`` (default: all), in address order."""
        if high is None:
            high = self._granules
        tiles, words = self._tiles, self._tile_words
        word = words.find(_ONE, low >> 6, -(-high // 64))
        while word >= 0:
            bits = _WORD.unpack_from(tiles, word << 3)[0]
            while bits:
                lowest = bits & -bits
                granule = (word << 6) + lowest.bit_length() - 1
                if granule >= high:
                    return
                if granule >= low:
                    yield granule
                bits ^= lowest
            word = words.find(_ONE, word + 1, -(-high // 64))

    def _block_granules(self) -> Iterator[int]:
        """The header granule of every live block, in address order."""
        for granule in self._tile_starts():
            if not self._word(granule) & REGION_BIT:
                yield granule

    # free regions ---------------------------------------------------------
    # A free region of n granules at granule g: bit g of _tiles, n | REGION_BIT
    # in its first word. The region that ends before a tile is the tile that
    # contains the granule below it, if that tile is a region.

    def _add_region(self, granule: int, length: int) -> None:
        """Record the free region ``[granule, granule + length)`` (neighbours already merged)."""
        self._set_tile(granule)
        self._set_word(granule, length | REGION_BIT)
        self._free_granules += length
        self._raise_bound(granule, length)
        if granule < self._hint and length >= self._hint_need:
            self._hint_need = NO_HINT

    def _remove_region(self, granule: int) -> int:
        """Forget the free region at ``granule`` (its tile bit is the caller's); returns its
        length in granules."""
        length = self._word(granule) & ~REGION_BIT
        self._free_granules -= length
        return length

    def _is_region(self, granule: int) -> bool:
        """Does a free region start at ``granule``?"""
        return self._is_tile(granule) and bool(self._word(granule) & REGION_BIT)

    def _region_before(self, granule: int) -> int:
        """The first granule of the free region that ends just before ``granule``, or -1."""
        if granule <= 1:
            return -1
        tile = self._last_tile(granule - 1)
        return tile if tile >= 0 and self._word(tile) & REGION_BIT else -1

    def _release(self, granule: int, length: int) -> None:
        """Make ``[granule, granule + length)`` free, merging with both neighbouring regions.

        The range holds no tile or pointer bit; ``end`` starts a tile (or ends the arena).
        """
        end = granule + length
        if end < self._granules and self._word(end) & REGION_BIT:
            length += self._remove_region(end)
            self._clear_tiles(end, end + 1)
        before = self._region_before(granule)
        if before >= 0:
            length += self._remove_region(before)
            granule = before
        self._add_region(granule, length)

    # first fit ------------------------------------------------------------
    # The bound tree: leaf c (index _leaves + c) bounds from above the length of
    # every free region that starts in chunk c (granules [512c, 512c + 512)); an
    # inner node is >= both of its children. A bound is raised at once when a
    # region appears or grows and left too high when one shrinks or goes; the
    # search lowers the stale bounds it meets. So every chunk left of the one
    # the search settles on holds no region long enough: first fit is exact.

    def _resize_bounds(self) -> None:
        """Make the tree cover every granule (growth keeps the leaves' values).

        Doubling the leaves k times makes the old tree the leftmost subtree of
        the new one: old node i at depth d becomes node i + 2^d (2^k - 1), so
        each level moves as one slice; the new nodes above it hold the old
        root's value (their other subtrees hold only new, empty chunks).
        """
        chunks = -(-self._granules // CHUNK)
        if chunks <= self._leaves:
            return
        old, old_leaves = self._bounds, self._leaves
        leaves = old_leaves
        while leaves < chunks:
            leaves *= 2
        shift = (leaves // old_leaves).bit_length() - 1
        bounds = array("I", bytes(2 * leaves * 4))
        level = 1
        while level <= old_leaves:
            bounds[level << shift:(level << shift) + level] = old[level:2 * level]
            level *= 2
        for depth in range(shift):
            bounds[1 << depth] = old[1]
        self._leaves, self._bounds = leaves, bounds

    def _raise_bound(self, granule: int, length: int) -> None:
        bounds = self._bounds
        node = self._leaves + granule // CHUNK
        while node and bounds[node] < length:
            bounds[node] = length
            node //= 2

    def _chunk_regions(self, chunk: int) -> Iterator[tuple[int, int]]:
        """The free regions starting in ``chunk``: (granule, length) in address order."""
        low = chunk * CHUNK
        bits = int.from_bytes(self._tiles[low >> 3:(low + CHUNK) >> 3], "little")
        while bits:
            lowest = bits & -bits
            granule = low + lowest.bit_length() - 1
            word = self._word(granule)
            if word & REGION_BIT:
                yield granule, word & ~REGION_BIT
            bits ^= lowest

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
        if need >= self._hint_need and hint < self._granules and self._is_region(hint) \
                and self._word(hint) & ~REGION_BIT >= need:
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
        if value % GRANULE or not FIRST_BLOCK <= value < self.capacity:
            return False
        granule = value // GRANULE - 1
        return self._is_tile(granule) and not self._word(granule) & REGION_BIT

    def _find(self, address: int, count: int) -> int | None:
        """The start of the live block whose bytes contain ``[address, address+count)``, or None.

        (voxvm/backends/reference/core.py's ``host_pointer`` calls it too.)
        """
        start, end = self._last
        if start and start <= address and address + count <= end:
            return start
        if address < FIRST_BLOCK:
            return None
        # the tile containing the byte before address: a block starting <= address?
        granule = self._last_tile(min(address // GRANULE, self._granules) - 1)
        if granule < 0:
            return None
        header = self._word(granule)
        if header & REGION_BIT:
            return None
        start = (granule + 1) * GRANULE
        end = start + (header & SIZE_MASK)
        if address + count > end:
            return None
        self._last = (start, end)
        return start

    def read(self, address: int, count: int) -> bytes | None:
        """``count`` bytes at ``address`` inside one live block, or None."""
        if self._find(address, count) is None:
            return None
        return self.data[address:address + count]

    def write(self, address: int, data: bytes, *, is_pointer: bool = False) -> bool:
        """Write ``data`` inside one live block; ``is_pointer`` records an 8-byte pointer."""
        count = len(data)
        if self._find(address, count) is None:
            return False
        if count:
            self.data[address:address + count] = data
            forgot = self._forget(address, count)
            if is_pointer and count == POINTER_SIZE:
                self._record(address)
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
        # the pointer bits of the granules where a carried pointer may start, read before any write
        first, last = src // GRANULE, (src + count - POINTER_SIZE) // GRANULE
        carried = None
        if count >= POINTER_SIZE and any(_nonzero_pieces(self._ptrs, first >> 3, (last >> 3) + 1)):
            low, high = first >> 3, (last >> 3) + 1
            carried = (self._ptrs[low:high],
                       [plane[low:high] for plane in self._offsets] if self._offsets else None)
        self._move(dst, src, count)
        changed = self._forget(dst, count)
        if carried:
            bits, planes = carried
            for index in _set_bits(bits, first - (low << 3), last + 1 - (low << 3)):
                where = ((low << 3) + index) * GRANULE + _offset(planes, index)
                if src <= where and where + POINTER_SIZE <= src + count:
                    self._record(where - src + dst)
                    changed = True
        if changed:
            self.mutations += 1
        return True

    def _move(self, dst: int, src: int, count: int) -> None:
        """memmove inside the arena in pieces, in the order that never reads a byte already written."""
        data = self.data
        offsets = range(0, count, ZERO_CHUNK)
        for offset in (offsets if dst <= src else reversed(offsets)):
            data.move(dst + offset, src + offset, min(ZERO_CHUNK, count - offset))

    # pointers -------------------------------------------------------------

    def _record(self, address: int) -> None:
        """Record a pointer at ``address`` (nothing recorded overlaps its 8 bytes)."""
        granule, offset = address // GRANULE, address % GRANULE
        byte, bit = granule >> 3, 1 << (granule & 7)
        self._ptrs[byte] |= bit
        if offset and self._offsets is None:
            self._offsets = [_mapping(len(self._ptrs)) for _ in range(3)]
        if self._offsets:
            for index, plane in enumerate(self._offsets):
                if offset >> index & 1:
                    plane[byte] |= bit
                elif plane[byte] & bit:
                    plane[byte] &= ~bit & 0xFF

    def _pointer_at(self, granule: int) -> int:
        """The address of the pointer recorded in ``granule`` (its bit is set)."""
        return granule * GRANULE + _offset(self._offsets, granule)

    def _forget(self, address: int, count: int) -> bool:
        """Forget the pointers whose 8 bytes overlap ``[address, address+count)`` (count >= 1); True if any.

        Those are the pointers starting in ``[address-7, address+count)``. The
        granules strictly between the first and the last one of that range lie
        inside the payload of the one block the range is in: their bits are
        cleared wholesale. The two end granules (one may be the block's header
        granule) are checked one by one.
        """
        ptrs = self._ptrs
        low, high = address - POINTER_SIZE + 1, address + count
        first, last = low // GRANULE, (high - 1) // GRANULE
        forgot = False
        for granule in (first, last) if first != last else (first,):
            if ptrs[granule >> 3] >> (granule & 7) & 1 and low <= self._pointer_at(granule) < high:
                ptrs[granule >> 3] &= ~(1 << (granule & 7)) & 0xFF
                forgot = True
        if last - first > 1 and _clear_bits(ptrs, first + 1, last):
            forgot = True
        return forgot

    # ------------------------------------------------------------------ collection

    def collect(self, roots: Roots = ()) -> int:
        """Mark from ``roots`` and the nogc blocks, free every unmarked GC block."""
        started = time.perf_counter_ns()
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
        freed, freed_bytes, live_gc, live_bytes = self._sweep()
        self.mutations += freed                   # each freed block, as free() counts it
        self.gc_since = 0
        self.gc_threshold = max(self.gc_floor, gc_room(live_gc))
        self._live_gc = live_gc                   # for _grow_for_live
        self.collections += 1
        if self.log:
            self.log(gc_collection_line(self.collections, freed, freed_bytes, self._blocks, live_bytes,
                                        self.size, time.perf_counter_ns() - started))
        return freed

    def _mark(self, value: int) -> None:
        """Mark the block starting at ``value``, if any and not yet marked, and push it."""
        if value % GRANULE or not FIRST_BLOCK <= value < GRANULE + self.size:
            return
        granule = value // GRANULE - 1
        if not self._tiles[granule >> 3] >> (granule & 7) & 1:
            return
        header = _WORD.unpack_from(self.data, granule * GRANULE)[0]
        if not header & (MARK_BIT | REGION_BIT):   # a block, not marked yet
            _WORD.pack_into(self.data, granule * GRANULE, header | MARK_BIT)  # (below _clean)
            if len(self._stack) < MARK_STACK_LIMIT:
                self._stack.append(granule)
            else:
                self._overflowed = True

    def _scan(self, granule: int) -> None:
        """Mark what the pointers recorded in the block at ``granule`` refer to."""
        start = (granule + 1) * GRANULE
        end = start + (self._word(granule) & SIZE_MASK)
        low, high = granule + 1, -(-end // GRANULE)
        if high - low > 64:
            pointers = _set_bits(self._ptrs, low, high)
        else:                        # a small block: its bits are one slice of at most 9 bytes
            bits = int.from_bytes(self._ptrs[low >> 3:(high + 7) >> 3], "little") >> (low & 7) \
                & ((1 << (high - low)) - 1)
            if not bits:
                return
            pointers = []
            while bits:
                lowest = bits & -bits
                pointers.append(low + lowest.bit_length() - 1)
                bits ^= lowest
        for pointer in pointers:
            self._mark(_VALUE.unpack_from(self.data, self._pointer_at(pointer))[0])

    def _drain(self) -> None:
        while self._stack:
            self._scan(self._stack.pop())

    def _sweep(self) -> tuple[int, int, int]:
        """Free the unmarked GC blocks and clear the marks, walking the tiles in address order.

        Each run of dead blocks and free regions becomes one region; the block
        and pointer bits of a run are cleared once, when it is recorded.
        Returns (blocks freed, their bytes, tile bytes of the live GC blocks, payload bytes
        of every live block).
        """
        freed = freed_bytes = live_gc = live_bytes = 0
        run = -1                                  # first granule of the free run being built
        granule = 1
        while granule < self._granules:
            header = self._word(granule)
            if header & REGION_BIT:
                length = self._remove_region(granule)
                free = True
            else:
                length = need_bytes(header & SIZE_MASK) // GRANULE
                free = bool(header & GC_BIT) and not header & MARK_BIT
                if free:
                    self._blocks -= 1
                    self._gc_blocks -= 1
                    freed += 1
                    freed_bytes += header & SIZE_MASK
                else:
                    self._set_word(granule, header & ~MARK_BIT)
                    live_bytes += header & SIZE_MASK
                    if header & GC_BIT:
                        live_gc += length * GRANULE
            if free and run < 0:
                run = granule
            elif not free and run >= 0:
                self._free_run(run, granule)
                run = -1
            granule += length
        if run >= 0:
            self._free_run(run, granule)
        self._last = (0, 0)
        return freed, freed_bytes, live_gc, live_bytes

    def _free_run(self, low: int, high: int) -> None:
        """Make the tiles ``[low, high)`` (dead blocks and removed regions) one free region."""
        self._clear_tiles(low, high)
        _clear_bits(self._ptrs, low, high)
        self._add_region(low, high - low)

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
        return self._blocks

    def block_sizes(self) -> dict[int, int]:
        """Live blocks in address order: address -> size (no byte copies)."""
        return {(granule + 1) * GRANULE: self._word(granule) & SIZE_MASK
                for granule in self._block_granules()}

    def regions(self) -> list[tuple[int, int]]:
        """The free regions ``(start, length)`` in address order."""
        return [(granule * GRANULE, (word & ~REGION_BIT) * GRANULE)
                for granule in self._tile_starts()
                if (word := self._word(granule)) & REGION_BIT]

    def pointers(self) -> list[int]:
        """Addresses where a traced pointer is stored, sorted."""
        return [self._pointer_at(granule) for granule in _set_bits(self._ptrs, 0, self._granules)]

    def edges(self) -> dict[int, int]:
        """Every recorded pointer: absolute address -> stored value."""
        return {where: _VALUE.unpack_from(self.data, where)[0] for where in self.pointers()}

    def check(self) -> None:
        """Assert every invariant of the representation (for tests and fuzzers)."""
        granules = self._granules
        assert len(self.data) == self.capacity and self.size <= max(self.limit, 0)
        assert granules * GRANULE == self.capacity
        bitmap = _bitmap_bytes(granules)
        for bits in [self._tiles, self._ptrs] + (self._offsets or []):
            assert len(bits) >= bitmap and len(bits) % 8 == 0
            assert not any(_set_bits(bits, granules, len(bits) * 8)), "bits beyond the arena"
        assert len(self._tile_words) * 8 == len(self._tiles)
        nonempty = {granule >> 6 for granule in _set_bits(self._tiles, 0, len(self._tiles) * 8)}
        marked = {bit >> 3 for bit in _set_bits(self._tile_words, 0, len(self._tile_words) * 8)}
        assert marked == nonempty and all(self._tile_words[word] == 1 for word in marked), \
            "_tile_words is stale"
        assert not any(_nonzero_pieces(self.data, self._clean, self.capacity)), \
            "a written byte beyond _clean"
        assert not self._is_tile(0) and not any(_set_bits(self._ptrs, 0, 1)), "bits for granule 0"
        granule, previous_free = 1, False
        free = blocks = gc_blocks = 0
        pointers = []
        exact = {}                                # chunk -> longest region starting in it
        while granule < granules:
            assert self._is_tile(granule), f"no tile starts at {granule * GRANULE}"
            word = self._word(granule)
            if word & REGION_BIT:
                length = word & ~REGION_BIT
                assert length >= 1 and granule + length <= granules, (granule, length)
                assert not previous_free, f"unmerged free regions at {granule * GRANULE}"
                assert not any(_set_bits(self._ptrs, granule, granule + length)), \
                    f"pointer bits in region {granule * GRANULE}"
                free += length
                assert granule >= self._hint or length < self._hint_need, "first-fit shortcut unsound"
                chunk = granule // CHUNK
                exact[chunk] = max(exact.get(chunk, 0), length)
            else:
                assert word & ~(SIZE_MASK | GC_BIT) == 0, f"bad header at {granule * GRANULE}"
                size = word & SIZE_MASK
                length = need_bytes(size) // GRANULE
                assert granule + length <= granules, "block beyond the arena"
                start = (granule + 1) * GRANULE
                assert start + size <= self._clean, f"block {start} beyond _clean"
                assert not any(_set_bits(self._ptrs, granule, granule + 1)), \
                    f"pointer bit on the header of {start}"
                for index in _set_bits(self._ptrs, granule + 1, granule + length):
                    where = self._pointer_at(index)
                    assert where + POINTER_SIZE <= start + size, f"pointer outside block {start}"
                    assert not pointers or pointers[-1] + POINTER_SIZE <= where, \
                        f"overlapping pointers at {where}"
                    pointers.append(where)
                blocks += 1
                gc_blocks += bool(word & GC_BIT)
            assert not any(_set_bits(self._tiles, granule + 1, granule + length)), \
                f"a tile bit inside the tile at {granule * GRANULE}"
            previous_free = bool(word & REGION_BIT)
            granule += length
        assert granule == granules, "tiles do not cover the arena"
        assert (free, blocks, gc_blocks) == (self._free_granules, self._blocks, self._gc_blocks)
        bounds, leaves = self._bounds, self._leaves
        assert leaves * CHUNK >= granules
        for chunk in range(leaves):
            assert bounds[leaves + chunk] >= exact.get(chunk, 0), f"bound of chunk {chunk} too low"
        for node in range(1, leaves):
            assert bounds[node] >= max(bounds[2 * node], bounds[2 * node + 1])
        start, end = self._last                   # the lookup cache names a live block exactly
        if start:
            assert self._is_block(start), f"cached block {start} is not live"
            assert end == start + (self._word(start // GRANULE - 1) & SIZE_MASK)


def _offset(planes, granule: int) -> int:
    """A recorded pointer's byte offset in ``granule``, from the three bit planes (None: 0)."""
    if not planes:
        return 0
    byte, bit = granule >> 3, granule & 7
    return (planes[0][byte] >> bit & 1) | (planes[1][byte] >> bit & 1) << 1 \
        | (planes[2][byte] >> bit & 1) << 2
