# cython: language_level=3
"""C-level API of the voxvm heap: allocator, pointer tracking and mark-sweep GC.

Owns the heap's data layout and every operation on it; ``voxvm/backends/compiled/_core.pyx``
``cimport``s this file. Everything here is ``noexcept nogil`` over one
``Heap`` struct: no Python objects and no module-level state, so every VM
(and every VM thread) owns its own heap. docs/heap.md explains the design.

Conventions (read once; every function below follows them):

* Addresses are byte offsets into the arena ``h.mem``; 0 is the null pointer
  and never a block; the first block starts at 16 (decisions.md §3 item 9).
* Results: functions returning ``int`` give 0 on success and -1 on a fault
  (the caller raises HeapReadFault / HeapWriteFault / HeapFreeFault /
  HeapSegmFault); ``heap_alloc*`` return the block address or 0.
* A *range* ``[addr, addr+n)`` is valid iff it lies inside ONE live block
  ``[start, start+size)``: ``start <= addr`` and ``addr + n <= start + size``.
  So an n-byte block has exactly n accessible bytes (decisions §3 item 12);
  a count of 0 touches nothing but its address must still lie inside a live
  block or at its end; a 0-byte block accepts only count-0 accesses.
* Pointers returned by ``heap_find`` point into ``h.mem``; they stay valid
  only until the next allocation (the arena may be moved by ``realloc``).
  Whoever writes through such a pointer must call ``heap_note_write`` after.
* Pointer tracking (decisions §3 item 8): ``heap_store`` of 8 bytes with
  ``is_pointer`` records a pointer at that address; every other write that
  overlaps a recorded pointer removes it; ``heap_copy`` carries recorded
  pointers along; free drops them.
* Collection (decisions §3 item 8, §6): only heap_alloc_auto (the VM's
  alloc/allocr/allocr_nogc) and heap_collect collect. Roots are the values
  tagged 8 in the HeapRootSpans the core passes, plus every live manual
  (allocr_nogc) block; only a value equal to a live block's start counts.
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #include <time.h>
    /* Small portable intrinsics for voxvm.backends.compiled._heap (big-endian heap words, bit scans). */
    static inline uint64_t vxh_bswap64(uint64_t v) {
    #if defined(__GNUC__) || defined(__clang__)
        return __builtin_bswap64(v);
    #else
        v = ((v & 0x00FF00FF00FF00FFULL) << 8) | ((v >> 8) & 0x00FF00FF00FF00FFULL);
        v = ((v & 0x0000FFFF0000FFFFULL) << 16) | ((v >> 16) & 0x0000FFFF0000FFFFULL);
        return (v << 32) | (v >> 32);
    #endif
    }
    static inline int vxh_little_endian(void) { const uint16_t one = 1; return *(const uint8_t *)&one; }
    static inline uint64_t vxh_load_be64(const uint8_t *p) {
        uint64_t v; memcpy(&v, p, 8); return vxh_little_endian() ? vxh_bswap64(v) : v;
    }
    static inline void vxh_store_be64(uint8_t *p, uint64_t v) {
        if (vxh_little_endian()) v = vxh_bswap64(v);
        memcpy(p, &v, 8);
    }
    static inline int vxh_ctz64(uint64_t x) {   /* x != 0 */
    #if defined(__GNUC__) || defined(__clang__)
        return __builtin_ctzll(x);
    #else
        int n = 0; while (!(x & 1)) { x >>= 1; n++; } return n;
    #endif
    }
    static inline int vxh_clz64(uint64_t x) {   /* x != 0 */
    #if defined(__GNUC__) || defined(__clang__)
        return __builtin_clzll(x);
    #else
        int n = 0; while (!(x & 0x8000000000000000ULL)) { x <<= 1; n++; } return n;
    #endif
    }
    static inline int vxh_popcount64(uint64_t x) {
    #if defined(__POPCNT__)
        return __builtin_popcountll(x);
    #else
        /* SWAR: without -mpopcnt (we build for baseline x86-64) the builtin
         * is a call into libgcc, slower than these dozen instructions. */
        x = x - ((x >> 1) & 0x5555555555555555ULL);
        x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
        x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
        return (int)((x * 0x0101010101010101ULL) >> 56);
    #endif
    }
    static inline uint64_t vxh_now_ns(void) {
    #if defined(CLOCK_MONOTONIC)
        struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    #else
        struct timespec ts; timespec_get(&ts, TIME_UTC);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    #endif
    }
    /* Block header: the 8 bytes just below a live block's start. */
    #define VXH_HDR_SIZE_MASK  0x000000FFFFFFFFFFULL   /* bits 0..39: accessible size n */
    #define VXH_HDR_GC         0x4000000000000000ULL   /* GC-managed (alloc/allocr) */
    #define VXH_HDR_MARK       0x8000000000000000ULL   /* reached in the current mark phase */
    #define VXH_HARD_LIMIT     ((1ULL << 34) - 8)      /* < 16 GiB: granule counts < 2^31 */
    """
    uint64_t vxh_load_be64(const uint8_t* p) nogil
    void vxh_store_be64(uint8_t* p, uint64_t v) nogil
    int vxh_ctz64(uint64_t x) nogil
    int vxh_clz64(uint64_t x) nogil
    int vxh_popcount64(uint64_t x) nogil
    uint64_t vxh_now_ns() nogil
    const uint64_t VXH_HDR_SIZE_MASK
    const uint64_t VXH_HDR_GC
    const uint64_t VXH_HDR_MARK
    const uint64_t VXH_HARD_LIMIT

cdef enum:
    HEAP_FIRST_ADDRESS = 16     # the lowest block address; 0 is null (decisions §3 item 9)
    HEAP_GRANULE = 8            # block starts, headers and tiles are 8-byte aligned
    HEAP_MAX_LEVELS = 8         # levels of the block-start bitmap hierarchy
    HEAP_MAX_SUM_LEVELS = 10    # levels of the free-space summary tree
    HEAP_SUM_FANOUT = 16        # summary entries per parent (one 64-byte cache line)
    HEAP_TAG_ADDRESS = 8        # register / stack tag of a heap address (decisions §2)
    HEAP_MARK_STACK_MAX = 65536 # entries; beyond it marking falls back to rescanning

# One array of GC root candidates, e.g. the 32 registers or the data stack.
# Entry i's value is the uint64 at values + i*value_stride; it is a root iff
# tags is NULL or the byte at tags + i*tag_stride equals HEAP_TAG_ADDRESS.
cdef struct HeapRootSpan:
    const uint8_t* values
    size_t value_stride
    const uint8_t* tags
    size_t tag_stride
    size_t count

cdef struct HeapStats:
    uint64_t allocs             # successful allocations
    uint64_t failed_allocs
    uint64_t frees              # successful explicit frees
    uint64_t grows              # arena growths
    uint64_t collections
    uint64_t gc_ns_total        # time spent collecting
    uint64_t freed_blocks_total # blocks freed by the collector
    uint64_t freed_bytes_total  # payload bytes freed by the collector
    uint64_t last_ns            # the last collection: duration,
    uint64_t last_marked        #   blocks found reachable,
    uint64_t last_freed_blocks  #   blocks freed,
    uint64_t last_freed_bytes   #   payload bytes freed,
    uint64_t last_live_bytes    #   payload bytes of all live blocks afterwards
    uint64_t peak_capacity      # largest arena size reached (bytes)
    uint64_t repairs            # stale free-space bounds repaired by searches

cdef struct Heap:
    uint8_t* mem                # the arena; tiles cover [8, capacity)
    uint64_t capacity           # arena bytes (multiple of 8)
    uint64_t limit              # largest capacity allowed: 8 + max heap size
    uint64_t cache_lo           # last block hit by heap_find: [cache_lo, cache_hi)
    uint64_t cache_hi           # (lo > hi when empty)
    # free space: bit g of rstarts set iff a free region starts at granule g
    # (8*g); the region's length in granules is the uint64 stored at 8*g.
    # sums[0][c] = longest region starting in chunk c (granules 64c..64c+63);
    # sums[k+1][i] = max of sums[k][16i .. 16i+15]; the top level has one entry.
    uint64_t* rstarts
    uint32_t* sums[HEAP_MAX_SUM_LEVELS]
    uint64_t sum_words[HEAP_MAX_SUM_LEVELS]
    int nsums
    # first-fit shortcut (_take): when fit_hint != 0, every free region below
    # granule fit_hint is shorter than fit_hint_need granules, so a request of
    # at least that many that fits the region at fit_hint takes it (bump-like
    # allocation after a sweep). Any new or grown region resets it to 0.
    uint64_t fit_hint
    uint64_t fit_hint_need
    # block-start bitmap: bit g of level 0 set iff 8*g is a live block start;
    # bit j of level i+1 set iff word j of level i is non-zero
    uint64_t* levels[HEAP_MAX_LEVELS]
    uint64_t level_words[HEAP_MAX_LEVELS]
    int nlevels
    # pointer bitmap: bit a set iff a pointer is recorded at address a
    uint64_t* ptrmap            # NULL until the first pointer store
    uint64_t ptr_count
    # accounting
    uint64_t nblocks            # live blocks
    uint64_t gc_blocks          # ... of which GC-managed
    uint64_t nfree              # free regions
    uint64_t used_bytes         # tile bytes of live blocks (headers included)
    uint64_t payload_bytes      # sum of live block sizes n
    uint64_t gc_bytes           # tile bytes of GC-managed live blocks
    # collection policy (docs/heap.md "When the collector runs")
    uint64_t gc_since           # tile bytes of GC-managed allocations since the last collection
    uint64_t gc_threshold       # collect when gc_since reaches this
    uint64_t gc_floor           # lower bound of gc_threshold
    bint gc_stress              # collect before every allocation
    int64_t fail_after          # fault injection: fail allocations after this many (-1 = off)
    # mark stack (grown up to HEAP_MARK_STACK_MAX entries)
    uint64_t* mark_stack
    uint64_t mark_top
    uint64_t mark_cap
    bint mark_overflow
    HeapStats stats

# ---- lifetime --------------------------------------------------------------
# init_size: initial heap bytes; max_size: the heap never grows beyond it
# (clamped to 16 GiB). Returns 0, or -1 when the host cannot provide memory
# (the heap is then empty but safe to use and to free).
cdef int heap_init(Heap* h, uint64_t init_size, uint64_t max_size) noexcept nogil
cdef void heap_free_all(Heap* h) noexcept nogil

# ---- allocation ------------------------------------------------------------
# First fit (lowest-addressed free region that fits), split, zero-filled;
# grows the arena when nothing fits; never collects. 0 on failure.
cdef uint64_t heap_alloc(Heap* h, uint64_t n, bint gc_managed) noexcept nogil
# The VM's allocation: heap_alloc plus the collection policy (may run
# heap_collect with these roots before allocating or before growing).
cdef uint64_t heap_alloc_auto(Heap* h, uint64_t n, bint gc_managed,
                              const HeapRootSpan* roots, size_t nroots) noexcept nogil
# Free a live block (GC-managed or not); anything else is a fault (-1).
cdef int heap_free(Heap* h, uint64_t addr) noexcept nogil

# ---- queries ---------------------------------------------------------------
cdef uint8_t* heap_find_slow(Heap* h, uint64_t addr, uint64_t n) noexcept nogil
cdef bint heap_is_block(Heap* h, uint64_t addr) noexcept nogil
# size n of the live block starting at addr, or -1
cdef int64_t heap_block_size(Heap* h, uint64_t addr) noexcept nogil
cdef bint heap_block_gc(Heap* h, uint64_t addr) noexcept nogil
# smallest live block start > addr (pass 0 for the first), or 0: for dumps
cdef uint64_t heap_next_block(Heap* h, uint64_t addr) noexcept nogil
cdef uint64_t heap_free_bytes(Heap* h) noexcept nogil

# ---- data access -----------------------------------------------------------
cdef int heap_read(Heap* h, uint64_t addr, uint8_t* dst, uint64_t n) noexcept nogil
cdef int heap_write(Heap* h, uint64_t addr, const uint8_t* src, uint64_t n) noexcept nogil
# memmove semantics inside or between blocks; carries recorded pointers along
cdef int heap_copy(Heap* h, uint64_t dst, uint64_t src, uint64_t n) noexcept nogil
# after writing [addr, addr+n) through a heap_find pointer: drop overlapped pointers
cdef void heap_forget_pointers(Heap* h, uint64_t addr, uint64_t n) noexcept nogil
# record a pointer at addr (the 8 bytes [addr, addr+8) must be inside one live block)
cdef int heap_record_pointer(Heap* h, uint64_t addr) noexcept nogil
cdef bint heap_has_pointer(Heap* h, uint64_t addr) noexcept nogil

# ---- garbage collection ----------------------------------------------------
# Precise mark-sweep from the given roots (plus every live allocr_nogc block).
# Returns the number of blocks freed.
cdef uint64_t heap_collect(Heap* h, const HeapRootSpan* roots, size_t nroots) noexcept nogil
# 0 if every invariant holds; otherwise -1 and a message in buf.
cdef int heap_check(Heap* h, char* buf, size_t buflen) noexcept nogil


# ---- inline fast paths (compiled into every module that cimports this) -----

cdef inline uint8_t* heap_find(Heap* h, uint64_t addr, uint64_t n) noexcept nogil:
    """Pointer to the n bytes at addr if they lie inside one live block, else NULL."""
    if addr >= h.cache_lo and addr <= h.cache_hi and n <= h.cache_hi - addr:
        return h.mem + addr
    return heap_find_slow(h, addr, n)


cdef inline void heap_note_write(Heap* h, uint64_t addr, uint64_t n) noexcept nogil:
    """Call after writing [addr, addr+n) through a heap_find pointer."""
    if h.ptrmap != NULL:
        heap_forget_pointers(h, addr, n)


cdef inline int heap_store(Heap* h, uint64_t addr, uint64_t value, int k, bint is_pointer) noexcept nogil:
    """`store`: the low k bytes (1..8) of value, big-endian (decisions §3 item 11).

    With k == 8 and is_pointer (the value register is tagged 8) the word is
    recorded as a pointer for the collector.
    """
    cdef uint8_t* p = heap_find(h, addr, <uint64_t>k)
    cdef int i
    if p == NULL:
        return -1
    if k == 8:
        vxh_store_be64(p, value)
        if is_pointer:
            return heap_record_pointer(h, addr)
    else:
        i = k - 1
        while i >= 0:
            p[i] = <uint8_t>(value & 0xFF)
            value >>= 8
            i -= 1
    if h.ptrmap != NULL:
        heap_forget_pointers(h, addr, <uint64_t>k)
    return 0


cdef inline int heap_load(Heap* h, uint64_t addr, int k, uint64_t* out) noexcept nogil:
    """`load`: k bytes (1..8) big-endian into the low bytes of *out."""
    cdef const uint8_t* p = heap_find(h, addr, <uint64_t>k)
    cdef uint64_t v = 0
    cdef int i
    if p == NULL:
        return -1
    if k == 8:
        out[0] = vxh_load_be64(p)
        return 0
    for i in range(k):
        v = (v << 8) | p[i]
    out[0] = v
    return 0
