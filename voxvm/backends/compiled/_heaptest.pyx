# cython: language_level=3
"""The C heap (csrc/heap/) driven from Python: ``HeapTester`` and benchmarks.

Owns the test wrapper of the heap, for tests (tests/test_heap_*.py,
tests/test_pyvm_heap.py), the fuzzer (tools/fuzz_heap.py) and the
micro-benchmarks (tools/bench_heap.py). It is its own small extension over
the same C headers the VM compiles, so the production module
(voxvm.backends.compiled._core) carries none of it. docs/heap.md explains
the heap.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc

from voxvm.backends.compiled._heap_api cimport (Heap, HeapRootSpan, heap_alloc, heap_alloc_auto, heap_alloc_quick,
                                               heap_block_gc, heap_settings_changed,
                                               heap_block_size, heap_collect, heap_copy, heap_find, heap_free,
                                               heap_free_all, heap_free_bytes, heap_init, heap_is_block,
                                               heap_load, heap_next_block, heap_store, heap_write)

# The invariant checker and the internals the inspection methods read.
cdef extern from "heap/vh_check.h" nogil:
    int heap_check(Heap *h, char *buf, size_t buflen)
    int vh_bit_test(const uint64_t *w, uint64_t i)
    uint64_t vh_rlen(const Heap *h, uint64_t g)
    uint64_t *vh_hdr(Heap *h, uint64_t start)
    uint64_t vh_hdr_foot(uint64_t hdr)
    int vh_ctz64(uint64_t x)
    uint64_t vh_now_ns()


class HeapInvariantError(AssertionError):
    """heap.check() found a broken invariant (a bug in the allocator)."""


cdef class _Roots:
    """C arrays of root values (and optional tags) built from Python sequences."""

    cdef HeapRootSpan span
    cdef uint64_t* values
    cdef uint8_t* tags

    def __cinit__(self, roots, tags):
        cdef size_t n = len(roots), i
        self.values = <uint64_t*>malloc((n if n else 1) * 8)
        if self.values == NULL:
            raise MemoryError()
        for i in range(n):
            self.values[i] = roots[i]
        self.tags = NULL
        if tags is not None:
            if len(tags) != n:
                raise ValueError("roots and tags differ in length")
            self.tags = <uint8_t*>malloc(n if n else 1)
            if self.tags == NULL:
                raise MemoryError()
            for i in range(n):
                self.tags[i] = tags[i]
        self.span.values = <const uint8_t*>self.values
        self.span.value_stride = 8
        self.span.tags = self.tags
        self.span.tag_stride = 1
        self.span.tag_size = 1
        self.span.count = n

    def __dealloc__(self):
        free(self.values)
        free(self.tags)


cdef class HeapTester:
    """One heap, driven from Python. Addresses and values are Python ints.

    >>> h = HeapTester(4096, 1 << 20)
    >>> a = h.alloc(16)
    >>> a
    16
    >>> h.store(a, 0x1122, 2), h.load(a, 2)
    (True, 4386)
    >>> h.free(a), h.free(a)
    (True, False)
    """

    cdef Heap h

    def __cinit__(self, uint64_t init_size=1 << 20, uint64_t max_size=1 << 30, *,
                  bint gc_stress=False, gc_floor=None, long long fail_after=-1):
        if heap_init(&self.h, init_size, max_size) != 0:
            heap_free_all(&self.h)
            raise MemoryError("cannot allocate the heap arena")
        self.h.gc_stress = gc_stress
        self.h.fail_after = fail_after
        if gc_floor is not None:
            self.h.gc_floor = gc_floor
            self.h.gc_threshold = gc_floor
        heap_settings_changed(&self.h)

    def __dealloc__(self):
        heap_free_all(&self.h)

    # ---- allocation ----------------------------------------------------------

    def alloc(self, uint64_t n, bint gc=True):
        """First-fit allocation (grows, never collects); the address or 0."""
        return heap_alloc(&self.h, n, gc)

    def alloc_auto(self, uint64_t n, bint gc=True, roots=(), tags=None):
        """Allocation with the VM's collection policy, using these roots, taken as the
        VM takes it: the inline quick step first, the whole policy when that gives 0."""
        cdef _Roots rs = _Roots(roots, tags)
        cdef uint64_t a = heap_alloc_quick(&self.h, n, gc)
        return a if a != 0 else heap_alloc_auto(&self.h, n, gc, &rs.span, 1)

    def free(self, uint64_t addr):
        """True if addr was a live block (now freed); False is a HeapFreeFault."""
        return heap_free(&self.h, addr) == 0

    def collect(self, roots=(), tags=None):
        """Mark-sweep from `roots` (all addresses, or only those whose tag is 8).

        Returns the number of blocks freed.
        """
        cdef _Roots rs = _Roots(roots, tags)
        return heap_collect(&self.h, &rs.span, 1)

    # ---- data ------------------------------------------------------------------

    def read(self, uint64_t addr, uint64_t n):
        """n bytes inside one live block, or None (HeapReadFault)."""
        cdef uint8_t* p = heap_find(&self.h, addr, n)
        if p == NULL:
            return None
        return (<char*>p)[:n]

    def write(self, uint64_t addr, const unsigned char[:] data):
        """Write inside one live block; False if it does not fit (HeapWriteFault)."""
        cdef uint64_t n = data.shape[0]
        if n == 0:
            return heap_find(&self.h, addr, 0) != NULL
        return heap_write(&self.h, addr, &data[0], n) == 0

    def store(self, uint64_t addr, uint64_t value, int k=8, bint pointer=False):
        """The `store` instruction: the low k bytes of value, big-endian."""
        if not 1 <= k <= 8:
            raise ValueError("k must be 1..8")
        return heap_store(&self.h, addr, value, <unsigned>k, pointer) == 0

    def store_pointer(self, uint64_t addr, uint64_t value):
        """`store` of a register tagged 8 with count 8: records a pointer."""
        return heap_store(&self.h, addr, value, 8, 1) == 0

    def load(self, uint64_t addr, int k=8):
        """The `load` instruction: k bytes big-endian as an int, or None."""
        cdef uint64_t v = 0
        if not 1 <= k <= 8:
            raise ValueError("k must be 1..8")
        if heap_load(&self.h, addr, <unsigned>k, &v) != 0:
            return None
        return v

    def copy(self, uint64_t dst, uint64_t src, uint64_t n):
        """`memcpy`: memmove semantics; False is a HeapSegmFault."""
        return heap_copy(&self.h, dst, src, n) == 0

    # ---- inspection --------------------------------------------------------------

    def is_block(self, uint64_t addr):
        return bool(heap_is_block(&self.h, addr))

    def block_size(self, uint64_t addr):
        """Size of the live block starting at addr, or None."""
        cdef int64_t n = heap_block_size(&self.h, addr)
        return None if n < 0 else n

    def blocks(self):
        """[(address, size, gc_managed)] of every live block, in address order."""
        out = []
        cdef uint64_t a = heap_next_block(&self.h, 0)
        while a != 0:
            out.append((a, heap_block_size(&self.h, a), bool(heap_block_gc(&self.h, a))))
            a = heap_next_block(&self.h, a)
        return out

    def regions(self):
        """[(start, length)] of the free regions in address order (start = header slot)."""
        out = []
        cdef uint64_t G = self.h.capacity >> 3
        cdef uint64_t g = 1
        while g < G:
            if self.h.fit_len != 0 and g == self.h.fit_hint:   # the shortcut region: outside the index
                out.append((g << 3, self.h.fit_len << 3))
                g += self.h.fit_len
            elif vh_bit_test(self.h.rstarts, g):
                out.append((g << 3, vh_rlen(&self.h, g) << 3))
                g += vh_rlen(&self.h, g)
            else:
                g += vh_hdr_foot(vh_hdr(&self.h, (g + 1) << 3)[0])
        return out

    def pointers(self):
        """Sorted addresses at which a pointer is recorded."""
        out = []
        cdef uint64_t j, w
        if self.h.ptrmap == NULL:
            return out
        for j in range((self.h.capacity + 63) >> 6):
            w = self.h.ptrmap[j]
            while w:
                out.append((j << 6) | <uint64_t>vh_ctz64(w))
                w &= w - 1
        return out

    def debug_poke(self, uint64_t offset, uint64_t word):
        """Tests only: overwrite the raw arena word at `offset` (headers included),
        to prove that check() notices corruption. Never used by the VM."""
        if offset & 7 or offset + 8 > self.h.capacity:
            raise ValueError("offset must be an aligned arena word")
        (<uint64_t*>(self.h.mem + offset))[0] = word

    def check(self):
        """Raise HeapInvariantError unless every invariant holds."""
        cdef char buf[512]
        if heap_check(&self.h, buf, sizeof(buf)) != 0:
            raise HeapInvariantError(buf.decode("utf-8", "replace"))

    # ---- configuration and numbers ----------------------------------------------

    @property
    def capacity(self):
        """Arena bytes (the heap size plus the 8 reserved bytes below the first header)."""
        return self.h.capacity

    @property
    def heap_size(self):
        return self.h.capacity - 8 if self.h.capacity >= 8 else 0

    @property
    def limit(self):
        return self.h.limit

    @property
    def free_bytes(self):
        return heap_free_bytes(&self.h)

    @property
    def used_bytes(self):
        return self.h.used_bytes

    @property
    def payload_bytes(self):
        return self.h.payload_bytes

    @property
    def nblocks(self):
        return self.h.nblocks

    @property
    def gc_blocks(self):
        return self.h.gc_blocks

    @property
    def gc_bytes(self):
        return self.h.gc_bytes

    @property
    def nfree(self):
        return self.h.nfree + (self.h.fit_len != 0)    # the shortcut region is a free region too

    @property
    def ptr_count(self):
        return self.h.ptr_count

    @property
    def gc_since(self):
        return self.h.gc_since

    @property
    def gc_threshold(self):
        return self.h.gc_threshold

    @property
    def gc_floor(self):
        return self.h.gc_floor

    @gc_floor.setter
    def gc_floor(self, uint64_t value):
        self.h.gc_floor = value
        heap_settings_changed(&self.h)

    @property
    def gc_stress(self):
        return bool(self.h.gc_stress)

    @gc_stress.setter
    def gc_stress(self, bint value):
        self.h.gc_stress = value
        heap_settings_changed(&self.h)

    @property
    def fail_after(self):
        return self.h.fail_after

    @fail_after.setter
    def fail_after(self, long long value):
        self.h.fail_after = value
        heap_settings_changed(&self.h)

    @property
    def stats(self):
        """Counters of allocation and collection (for --gc-log and benchmarks)."""
        s = self.h.stats
        return {
            "allocs": s.allocs, "failed_allocs": s.failed_allocs, "frees": s.frees,
            "grows": s.grows, "collections": s.collections, "gc_ns_total": s.gc_ns_total,
            "freed_blocks_total": s.freed_blocks_total, "freed_bytes_total": s.freed_bytes_total,
            "last_ns": s.last_ns, "last_marked": s.last_marked,
            "last_freed_blocks": s.last_freed_blocks, "last_freed_bytes": s.last_freed_bytes,
            "last_live_bytes": s.last_live_bytes, "peak_capacity": s.peak_capacity,
            "repairs": s.repairs,
        }

    # ---- benchmarks (whole loops in C, so Python call overhead is not measured) --

    def bench_alloc_free(self, uint64_t live, uint64_t pairs, uint64_t max_size, uint64_t seed=1):
        """Keep `live` random-sized blocks, then do `pairs` (free random, alloc new).

        Returns the nanoseconds taken by the pairs, or -1 if an allocation failed.
        """
        cdef uint64_t* slots = <uint64_t*>malloc(live * 8 if live else 8)
        cdef uint64_t x = seed * 0x9E3779B97F4A7C15 + 1, i, j, t0, t1
        cdef bint ok = True
        if slots == NULL:
            raise MemoryError()
        with nogil:
            for i in range(live):
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                slots[i] = heap_alloc(&self.h, ((x & <uint64_t>0xFFFFFFFF) * max_size >> 32) + 1, False)
                if slots[i] == 0:
                    ok = False
            t0 = vh_now_ns()
            for i in range(pairs):          # multiply-shift ranges: no divisions timed
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                j = (x >> 32) * live >> 32
                heap_free(&self.h, slots[j])
                slots[j] = heap_alloc(&self.h, ((x & <uint64_t>0xFFFFFFFF) * max_size >> 32) + 1, False)
                if slots[j] == 0:
                    ok = False
            t1 = vh_now_ns()
        free(slots)
        return (t1 - t0) if ok else -1

    def bench_ring(self, uint64_t objects, uint64_t ring, uint64_t size=16):
        """The `alloc` benchmark's pattern: `objects` GC blocks, each kept alive
        for `ring` allocations (one root slot per ring entry), with the VM's
        collection policy. Returns the nanoseconds taken, or -1 on failure.
        """
        cdef uint64_t* slots = <uint64_t*>calloc(ring if ring else 1, 8)
        cdef HeapRootSpan span
        cdef uint64_t i, t0, t1, a, k = 0
        cdef bint ok = True
        if slots == NULL:
            raise MemoryError()
        span.values = <const uint8_t*>slots
        span.value_stride = 8
        span.tags = NULL
        span.tag_stride = 0
        span.tag_size = 0
        span.count = ring
        with nogil:
            t0 = vh_now_ns()
            for i in range(objects):
                a = heap_alloc_auto(&self.h, size, True, &span, 1)
                if a == 0:
                    ok = False
                    break
                heap_store(&self.h, a, i, 8, 0)             # two plain fields
                heap_store(&self.h, a + 8, i * 3, 8, 0)
                slots[k] = a
                k += 1
                if k == ring:
                    k = 0
            t1 = vh_now_ns()
        free(slots)
        return (t1 - t0) if ok else -1
