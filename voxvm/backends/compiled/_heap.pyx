# cython: language_level=3
"""The voxvm heap: first-fit allocator, pointer tracking and mark-sweep GC, in C.

Owns the implementation of the API declared in ``_heap.pxd`` (read its
header for the conventions) and ``HeapTester``, a Python wrapper for tests
and tools. The layout and the algorithms are explained in docs/heap.md; the
short version:

* The arena is one ``realloc``-grown byte array; an address is an offset.
  It is tiled, from byte 8 to its end, by *tiles* of whole 8-byte granules:
  a live block is an 8-byte header followed by its n bytes rounded up to 8
  (at least 8); a free region is a maximal run of free granules.
* Free space: a bitmap of region starts (each region keeps its length in its
  own first word) and, per 512-byte chunk, the length of the longest region
  starting there, under a 16-ary max tree. First fit = descend to the
  leftmost chunk whose maximum fits, then scan its (at most 22) regions.
* A hierarchical bitmap of block starts answers "is this a live block" in
  O(1) and "which block contains this address" in O(levels) <= 6 words.
* A 1-bit-per-byte bitmap records where pointers were stored (allocated on
  the first pointer store): the collector's edges.
* Mark-sweep: marks live in block headers; the sweep walks the tiles in
  address order, frees unmarked GC-managed blocks and merges free runs.

Nothing here allocates host memory per heap allocation: metadata grows only
with the arena (about 4% for free space and block starts, plus 12.5% for
the pointer map once a pointer is stored).
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memset, memmove, memcpy
from libc.stdio cimport snprintf

cdef extern from *:
    """
    /* Index of the first of 16 entries >= need (need >= 1), or 16. The
       summary arrays are padded to whole groups of 16 entries. */
    #if defined(__SSE2__) || defined(_M_X64)
    #include <emmintrin.h>
    /* Entries are < 2^31 (the heap is < 16 GiB), so signed compares are exact. */
    static inline int vxh_first_ge16(const uint32_t *p, uint32_t need) {
        const __m128i t = _mm_set1_epi32((int)(need - 1));
        __m128i a = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)p), t);
        __m128i b = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(p + 4)), t);
        __m128i c = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(p + 8)), t);
        __m128i d = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(p + 12)), t);
        int mask = _mm_movemask_epi8(_mm_packs_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d)));
        return mask ? vxh_ctz64((uint64_t)mask) : 16;
    }
    static inline __m128i vxh_max4(__m128i a, __m128i b) {
        return _mm_xor_si128(b, _mm_and_si128(_mm_xor_si128(a, b), _mm_cmpgt_epi32(a, b)));
    }
    /* Largest of 16 entries (all < 2^31). */
    static inline uint32_t vxh_max16(const uint32_t *p) {
        __m128i m = vxh_max4(vxh_max4(_mm_loadu_si128((const __m128i *)p), _mm_loadu_si128((const __m128i *)(p + 4))),
                             vxh_max4(_mm_loadu_si128((const __m128i *)(p + 8)), _mm_loadu_si128((const __m128i *)(p + 12))));
        m = vxh_max4(m, _mm_shuffle_epi32(m, 0x4E));
        m = vxh_max4(m, _mm_shuffle_epi32(m, 0xB1));
        return (uint32_t)_mm_cvtsi128_si32(m);
    }
    #else
    static inline uint32_t vxh_max16(const uint32_t *p) {
        uint32_t m = 0;
        for (int k = 0; k < 16; k++) m = p[k] > m ? p[k] : m;
        return m;
    }
    static inline int vxh_first_ge16(const uint32_t *p, uint32_t need) {
        int k;
        for (k = 0; k < 16 && p[k] < need; k++) {}
        return k;
    }
    #endif
    """
    int vxh_first_ge16(const uint32_t* p, uint32_t need) nogil
    uint32_t vxh_max16(const uint32_t* p) nogil

cdef uint64_t _ALL = 0xFFFFFFFFFFFFFFFF
cdef uint64_t _MIN_GROWTH = 4096        # bytes: smallest growth of an empty heap
cdef uint64_t _MIN_GC_FLOOR = 65536     # bytes: smallest collection threshold


# ============================================================================
# small helpers
# ============================================================================

cdef inline uint64_t _u64max(uint64_t a, uint64_t b) noexcept nogil:
    return a if a > b else b


cdef inline uint64_t _payload_granules(uint64_t n) noexcept nogil:
    """Granules a block of n bytes occupies after its header (at least 1)."""
    cdef uint64_t g = (n + 7) >> 3
    return g if g >= 1 else 1


cdef inline uint64_t _need_granules(uint64_t n) noexcept nogil:
    """Tile length in granules of an n-byte block: header + payload."""
    return 1 + _payload_granules(n)


cdef inline uint64_t* _hdr(Heap* h, uint64_t start) noexcept nogil:
    return <uint64_t*>(h.mem + start - 8)


cdef inline uint64_t _hdr_foot(uint64_t hdr) noexcept nogil:
    """Tile length in granules of the block with this header."""
    return _need_granules(hdr & VXH_HDR_SIZE_MASK)


cdef inline uint64_t _rlen(Heap* h, uint64_t g) noexcept nogil:
    """Length in granules of the free region starting at granule g."""
    return (<uint64_t*>(h.mem + (g << 3)))[0]


cdef inline void _rlen_set(Heap* h, uint64_t g, uint64_t length) noexcept nogil:
    (<uint64_t*>(h.mem + (g << 3)))[0] = length


cdef inline bint _rs_test(Heap* h, uint64_t g) noexcept nogil:
    return (h.rstarts[g >> 6] >> (g & 63)) & 1


cdef inline void _rs_set(Heap* h, uint64_t g) noexcept nogil:
    h.rstarts[g >> 6] |= <uint64_t>1 << (g & 63)


cdef inline void _rs_clear(Heap* h, uint64_t g) noexcept nogil:
    h.rstarts[g >> 6] &= ~(<uint64_t>1 << (g & 63))


cdef inline void _cache_clear(Heap* h) noexcept nogil:
    h.cache_lo = 1
    h.cache_hi = 0


# ============================================================================
# block-start bitmap (hierarchical)
# ============================================================================

cdef inline bint _bm_test(Heap* h, uint64_t g) noexcept nogil:
    return (h.levels[0][g >> 6] >> (g & 63)) & 1


cdef inline void _bm_set(Heap* h, uint64_t g) noexcept nogil:
    cdef int lv = 0
    cdef uint64_t* w
    cdef uint64_t was
    while lv < h.nlevels:
        w = &h.levels[lv][g >> 6]
        was = w[0]
        w[0] = was | (<uint64_t>1 << (g & 63))
        if was != 0:
            return
        g >>= 6
        lv += 1


cdef inline void _bm_clear(Heap* h, uint64_t g) noexcept nogil:
    cdef int lv = 0
    cdef uint64_t* w
    while lv < h.nlevels:
        w = &h.levels[lv][g >> 6]
        w[0] &= ~(<uint64_t>1 << (g & 63))
        if w[0] != 0:
            return
        g >>= 6
        lv += 1


cdef int64_t _bm_prev(Heap* h, uint64_t g) noexcept nogil:
    """Largest set bit <= g at level 0, or -1."""
    cdef int lv = 0
    cdef uint64_t pos = g
    cdef uint64_t w
    while True:
        w = h.levels[lv][pos >> 6] & (_ALL >> (63 - (pos & 63)))
        if w != 0:
            pos = (pos & ~(<uint64_t>63)) | <uint64_t>(63 - vxh_clz64(w))
            break
        if (pos >> 6) == 0:
            return -1
        pos = (pos >> 6) - 1
        lv += 1
        if lv >= h.nlevels:     # cannot happen: the top level is one word
            return -1
    while lv > 0:
        lv -= 1
        w = h.levels[lv][pos]
        pos = (pos << 6) | <uint64_t>(63 - vxh_clz64(w))
    return <int64_t>pos


cdef int64_t _bm_next(Heap* h, uint64_t g) noexcept nogil:
    """Smallest set bit >= g at level 0, or -1."""
    cdef int lv = 0
    cdef uint64_t pos = g
    cdef uint64_t w
    while True:
        if (pos >> 6) >= h.level_words[lv]:
            return -1
        w = h.levels[lv][pos >> 6] & (_ALL << (pos & 63))
        if w != 0:
            pos = (pos & ~(<uint64_t>63)) | <uint64_t>vxh_ctz64(w)
            break
        pos = (pos >> 6) + 1
        lv += 1
        if lv >= h.nlevels:
            return -1
    while lv > 0:
        lv -= 1
        w = h.levels[lv][pos]
        pos = (pos << 6) | <uint64_t>vxh_ctz64(w)
    return <int64_t>pos


cdef uint64_t* _grow_words(uint64_t* old, uint64_t old_words, uint64_t words) noexcept nogil:
    """realloc a word array to `words` words, zeroing the new ones; NULL on failure."""
    cdef uint64_t* grown = <uint64_t*>realloc(old, words * 8)
    if grown != NULL and words > old_words:
        memset(grown + old_words, 0, (words - old_words) * 8)
    return grown


cdef inline uint64_t _pad16(uint64_t n) noexcept nogil:
    """Summary arrays hold whole groups of 16 entries (zeros past the end)."""
    return (n + 15) & ~(<uint64_t>15)


cdef int _meta_resize(Heap* h, uint64_t granules) noexcept nogil:
    """Size every per-granule structure for `granules` granules (never shrinks).

    Level 0 of both the block-start bitmap and the free-space summary keeps
    its contents; the upper levels are rebuilt from it. On failure (-1) the
    structures that were already enlarged stay valid for the old size.
    """
    cdef uint64_t words0 = (granules + 63) >> 6
    cdef uint64_t old0 = h.level_words[0]
    cdef uint64_t bw[HEAP_MAX_LEVELS]
    cdef uint64_t sw[HEAP_MAX_SUM_LEVELS]
    cdef uint64_t* bfresh[HEAP_MAX_LEVELS]
    cdef uint32_t* sfresh[HEAP_MAX_SUM_LEVELS]
    cdef uint64_t* grown
    cdef uint32_t* grown32
    cdef uint64_t* lower
    cdef uint32_t* slower
    cdef uint64_t n, j
    cdef uint32_t v
    cdef int nb = 1, ns = 1, i
    cdef bint ok = True
    if words0 == 0:
        words0 = 1
    if words0 < old0:
        words0 = old0
    # level 0 arrays: grow in place (realloc keeps the contents)
    grown = _grow_words(h.levels[0], old0, words0)
    if grown == NULL:
        return -1
    h.levels[0] = grown
    grown = _grow_words(h.rstarts, old0, words0)
    if grown == NULL:
        return -1
    h.rstarts = grown
    grown32 = <uint32_t*>realloc(h.sums[0], _pad16(words0) * 4)
    if grown32 == NULL:
        return -1
    if words0 > old0:
        memset(grown32 + _pad16(old0), 0, (_pad16(words0) - _pad16(old0)) * 4)
    h.sums[0] = grown32
    # upper levels: fresh arrays, filled from level 0
    bw[0] = words0
    n = words0
    while n > 1:
        n = (n + 63) >> 6
        bw[nb] = n
        nb += 1
    sw[0] = words0
    n = words0
    while n > 1:
        n = (n + HEAP_SUM_FANOUT - 1) >> 4
        sw[ns] = n
        ns += 1
    for i in range(HEAP_MAX_LEVELS):
        bfresh[i] = NULL
    for i in range(HEAP_MAX_SUM_LEVELS):
        sfresh[i] = NULL
    for i in range(1, nb):
        bfresh[i] = <uint64_t*>calloc(bw[i], 8)
        ok = ok and bfresh[i] != NULL
    for i in range(1, ns):
        sfresh[i] = <uint32_t*>calloc(_pad16(sw[i]), 4)
        ok = ok and sfresh[i] != NULL
    if not ok:
        for i in range(1, nb):
            free(bfresh[i])
        for i in range(1, ns):
            free(sfresh[i])
        return -1
    for i in range(1, nb):
        lower = h.levels[0] if i == 1 else bfresh[i - 1]
        for j in range(bw[i - 1]):
            if lower[j] != 0:
                bfresh[i][j >> 6] |= <uint64_t>1 << (j & 63)
    for i in range(1, ns):
        slower = h.sums[0] if i == 1 else sfresh[i - 1]
        for j in range(sw[i - 1]):
            v = slower[j]
            if v > sfresh[i][j >> 4]:
                sfresh[i][j >> 4] = v
    for i in range(1, h.nlevels):
        free(h.levels[i])
    for i in range(1, h.nsums):
        free(h.sums[i])
    for i in range(1, nb):
        h.levels[i] = bfresh[i]
        h.level_words[i] = bw[i]
    for i in range(1, ns):
        h.sums[i] = sfresh[i]
        h.sum_words[i] = sw[i]
    h.level_words[0] = words0
    h.sum_words[0] = words0
    h.nlevels = nb
    h.nsums = ns
    return 0


# ============================================================================
# pointer bitmap (bit a <=> pointer recorded at address a)
# ============================================================================

cdef int _pm_ensure(Heap* h) noexcept nogil:
    if h.ptrmap == NULL:
        h.ptrmap = <uint64_t*>calloc((h.capacity + 63) >> 6, 8)
        if h.ptrmap == NULL:
            return -1
    return 0


cdef uint64_t _pm_count(Heap* h, uint64_t lo, uint64_t hi) noexcept nogil:
    """Number of recorded pointers at addresses [lo, hi)."""
    cdef uint64_t n = 0, wl, wh, m
    if h.ptrmap == NULL or lo >= hi:
        return 0
    wl = lo >> 6
    wh = (hi - 1) >> 6
    if wl == wh:
        m = (_ALL << (lo & 63)) & (_ALL >> (63 - ((hi - 1) & 63)))
        return vxh_popcount64(h.ptrmap[wl] & m)
    n = vxh_popcount64(h.ptrmap[wl] & (_ALL << (lo & 63)))
    wl += 1
    while wl < wh:
        n += vxh_popcount64(h.ptrmap[wl])
        wl += 1
    n += vxh_popcount64(h.ptrmap[wh] & (_ALL >> (63 - ((hi - 1) & 63))))
    return n


cdef void _pm_clear(Heap* h, uint64_t lo, uint64_t hi) noexcept nogil:
    """Drop the pointers recorded at addresses [lo, hi)."""
    cdef uint64_t wl, wh, m, cleared = 0
    if h.ptrmap == NULL or lo >= hi:
        return
    wl = lo >> 6
    wh = (hi - 1) >> 6
    # every store calls this once pointers exist; usually nothing is there,
    # so test before counting and writing
    if wl == wh:
        m = (_ALL << (lo & 63)) & (_ALL >> (63 - ((hi - 1) & 63)))
        m &= h.ptrmap[wl]
        if m == 0:
            return
        cleared = vxh_popcount64(m)
        h.ptrmap[wl] &= ~m
    else:
        m = (_ALL << (lo & 63)) & h.ptrmap[wl]
        if m != 0:
            cleared = vxh_popcount64(m)
            h.ptrmap[wl] &= ~m
        wl += 1
        while wl < wh:
            if h.ptrmap[wl] != 0:
                cleared += vxh_popcount64(h.ptrmap[wl])
                h.ptrmap[wl] = 0
            wl += 1
        m = (_ALL >> (63 - ((hi - 1) & 63))) & h.ptrmap[wh]
        if m != 0:
            cleared += vxh_popcount64(m)
            h.ptrmap[wh] &= ~m
    h.ptr_count -= cleared


cdef inline uint64_t _pm_get(Heap* h, uint64_t pos, uint64_t cnt) noexcept nogil:
    """Bits [pos, pos+cnt) (cnt 1..64) as the low cnt bits of a word."""
    cdef uint64_t wi = pos >> 6, sh = pos & 63
    cdef uint64_t w = h.ptrmap[wi] >> sh
    if sh != 0 and sh + cnt > 64:
        w |= h.ptrmap[wi + 1] << (64 - sh)
    if cnt < 64:
        w &= (<uint64_t>1 << cnt) - 1
    return w


cdef inline void _pm_put(Heap* h, uint64_t pos, uint64_t w, uint64_t cnt) noexcept nogil:
    """Overwrite bits [pos, pos+cnt) (cnt 1..64) with the low cnt bits of w."""
    cdef uint64_t wi = pos >> 6, sh = pos & 63
    cdef uint64_t mask = _ALL if cnt == 64 else (<uint64_t>1 << cnt) - 1
    w &= mask
    h.ptrmap[wi] = (h.ptrmap[wi] & ~(mask << sh)) | (w << sh)
    if sh != 0 and sh + cnt > 64:
        h.ptrmap[wi + 1] = (h.ptrmap[wi + 1] & ~(mask >> (64 - sh))) | (w >> (64 - sh))


cdef void _pm_move(Heap* h, uint64_t dst, uint64_t src, uint64_t n) noexcept nogil:
    """Pointer bookkeeping of a memmove of n bytes from src to dst.

    Pointers lying wholly inside the source move along; every other pointer
    overlapping the destination bytes is dropped.
    """
    cdef uint64_t lo = dst - 7 if dst >= 7 else 0
    cdef uint64_t before, m, off, c
    if h.ptrmap == NULL or n == 0:
        return
    before = _pm_count(h, lo, dst + n)
    m = n - 7 if n >= 8 else 0      # candidate pointer starts [src, src+m)
    if m != 0 and _pm_count(h, src, src + m) == 0:
        m = 0                       # nothing to carry: just clear below
    if m != 0 and src != dst:
        if dst < src:
            off = 0
            while off < m:
                c = m - off if m - off < 64 else 64
                _pm_put(h, dst + off, _pm_get(h, src + off, c), c)
                off += 64
        else:
            off = ((m - 1) >> 6) << 6
            while True:
                c = m - off if m - off < 64 else 64
                _pm_put(h, dst + off, _pm_get(h, src + off, c), c)
                if off == 0:
                    break
                off -= 64
    # destination bytes that received no whole pointer: pointer starts in
    # [dst+m, dst+n) (all of [dst, dst+n) when m == 0) and the ones straddling dst
    _pm_put_zero_range(h, dst + m, dst + n)
    _pm_put_zero_range(h, lo, dst)
    h.ptr_count = h.ptr_count - before + _pm_count(h, lo, dst + n)


cdef inline void _pm_put_zero_range(Heap* h, uint64_t lo, uint64_t hi) noexcept nogil:
    """Clear bits [lo, hi) without touching ptr_count (the caller recounts)."""
    cdef uint64_t c
    while lo < hi:
        c = hi - lo if hi - lo < 64 else 64
        _pm_put(h, lo, 0, c)
        lo += c


# ============================================================================
# free space: region-start bitmap + per-chunk maxima under a 16-ary max tree
# ============================================================================

# The summaries are upper bounds: sums[0][c] >= the longest region starting
# in chunk c, and every parent equals the maximum of its children. Lengths
# that grow are propagated at once (_sum_raise); lengths that shrink or
# regions that disappear are not, and a search that descends into a chunk
# whose bound turns out stale recomputes that chunk (_sum_recompute) and
# starts again. Each restart repairs one stale entry, so searches stay cheap
# on average while the common allocation (carving the lowest region) touches
# no summary at all. Chunks left of the one a search picks have bounds below
# the request, so they hold no fitting region: first fit stays exact.

cdef void _sum_recompute(Heap* h, uint64_t c) noexcept nogil:
    """Set chunk c's bound to its exact longest region; recompute its ancestors."""
    cdef uint64_t w = h.rstarts[c], m = 0, length
    cdef uint32_t val
    cdef int lv = 0
    while w != 0:
        length = _rlen(h, (c << 6) | <uint64_t>vxh_ctz64(w))
        if length > m:
            m = length
        w &= w - 1
    val = <uint32_t>m
    while True:
        if h.sums[lv][c] == val:
            return                          # unchanged: every ancestor is still right
        h.sums[lv][c] = val
        if lv == h.nsums - 1:
            return
        val = vxh_max16(h.sums[lv] + ((c >> 4) << 4))    # arrays are padded to 16
        c >>= 4
        lv += 1


cdef inline void _sum_raise(Heap* h, uint64_t c, uint64_t length) noexcept nogil:
    """A region of `length` granules now starts in chunk c."""
    cdef int lv = 0
    cdef uint32_t val = <uint32_t>length
    while lv < h.nsums and h.sums[lv][c] < val:
        h.sums[lv][c] = val
        c >>= 4
        lv += 1


cdef inline void _carve(Heap* h, uint64_t g, uint64_t length, uint64_t need) noexcept nogil:
    """Take the first ``need`` granules of the free region at g (``length`` granules)."""
    cdef uint64_t rest = length - need
    cdef uint64_t r
    _rs_clear(h, g)
    if rest == 0:
        h.nfree -= 1
    else:
        r = g + need
        _rs_set(h, r)
        _rlen_set(h, r, rest)
        if (r >> 6) != (g >> 6):            # the remainder starts in another chunk
            _sum_raise(h, r >> 6, rest)


cdef uint64_t _take(Heap* h, uint64_t need) noexcept nogil:
    """Carve `need` granules from the front of the lowest-addressed region that fits.

    Returns the granule where the carved tile starts, or 0 if no region fits.
    """
    cdef int lv
    cdef uint64_t i, w, g, length
    g = h.fit_hint
    if g != 0 and need >= h.fit_hint_need and _rs_test(h, g):
        length = _rlen(h, g)
        if length >= need:                  # the lowest region that fits (see Heap.fit_hint)
            _carve(h, g, length, need)
            h.fit_hint = g + need           # regions below it: all below g, all too short
            return g
    while True:
        lv = h.nsums - 1
        if h.sums[lv][0] < need:
            return 0
        i = 0
        while lv > 0:                       # leftmost child whose bound fits
            lv -= 1                         # (one exists: the parent is their maximum)
            i = (i << 4) + <uint64_t>vxh_first_ge16(h.sums[lv] + (i << 4), <uint32_t>need)
        w = h.rstarts[i]                    # chunk i: its first region that fits
        while w != 0:
            g = (i << 6) | <uint64_t>vxh_ctz64(w)
            length = _rlen(h, g)
            if length >= need:
                _carve(h, g, length, need)
                h.fit_hint = g + need       # first fit: every region below g is shorter than need
                h.fit_hint_need = need
                return g
            w &= w - 1
        _sum_recompute(h, i)                # the bound was stale: repair, search again
        h.stats.repairs += 1


cdef uint64_t _region_before(Heap* h, uint64_t g) noexcept nogil:
    """Start of the free region that ends exactly at granule g, or 0."""
    cdef int64_t sp
    cdef uint64_t end
    if g <= 1:
        return 0
    sp = _bm_prev(h, g - 1)                 # the last live block starting below g
    if sp < 0:
        end = 1                             # no block below: free from the first granule
    else:
        end = <uint64_t>sp - 1 + _hdr_foot(_hdr(h, <uint64_t>sp << 3)[0])
    return end if end < g else 0


cdef void _region_add(Heap* h, uint64_t g, uint64_t length) noexcept nogil:
    """Granules [g, g+length) become free, merged with both neighbours."""
    cdef uint64_t end = g + length
    cdef uint64_t G = h.capacity >> 3
    cdef uint64_t p
    h.fit_hint = 0                          # a new or longer region: the shortcut no longer holds
    if end < G and _rs_test(h, end):        # a free region starts right after
        length += _rlen(h, end)             # (its chunk's bound just goes stale)
        _rs_clear(h, end)
        h.nfree -= 1
    p = _region_before(h, g)
    if p != 0:                              # ... and/or one ends right before
        length += _rlen(h, p)
        g = p
    else:
        _rs_set(h, g)
        h.nfree += 1
    _rlen_set(h, g, length)
    _sum_raise(h, g >> 6, length)


# ============================================================================
# lifetime and growth
# ============================================================================

cdef int heap_init(Heap* h, uint64_t init_size, uint64_t max_size) noexcept nogil:
    cdef uint64_t lim, size
    memset(h, 0, sizeof(Heap))
    _cache_clear(h)
    h.fail_after = -1
    lim = max_size & ~(<uint64_t>7)
    if lim > VXH_HARD_LIMIT:
        lim = VXH_HARD_LIMIT
    h.limit = 8 + lim
    size = init_size if init_size < lim else lim
    size &= ~(<uint64_t>7)
    h.gc_floor = _u64max(_MIN_GC_FLOOR, size >> 2)
    h.gc_threshold = h.gc_floor
    h.mem = <uint8_t*>malloc(8 + size)
    if h.mem == NULL:
        return -1
    if _meta_resize(h, (8 + size) >> 3) != 0:
        free(h.mem)
        h.mem = NULL
        return -1
    h.capacity = 8 + size
    h.stats.peak_capacity = h.capacity
    if size != 0:
        _region_add(h, 1, size >> 3)
    return 0


cdef void heap_free_all(Heap* h) noexcept nogil:
    cdef int i
    free(h.mem)
    free(h.levels[0])
    for i in range(1, h.nlevels):
        free(h.levels[i])
    free(h.sums[0])
    for i in range(1, h.nsums):
        free(h.sums[i])
    free(h.rstarts)
    free(h.ptrmap)
    free(h.mark_stack)
    memset(h, 0, sizeof(Heap))
    _cache_clear(h)


cdef uint64_t _tail_free_granules(Heap* h) noexcept nogil:
    """Length of the free region that ends the arena, or 0."""
    cdef uint64_t G = h.capacity >> 3
    cdef uint64_t p
    if G <= 1:
        return 0
    p = _region_before(h, G)
    return G - p if p != 0 else 0


cdef int _grow(Heap* h, uint64_t need_g) noexcept nogil:
    """Enlarge the arena so that its last region holds need_g granules.

    New size = max(2 * size, size + deficit, 4096), capped at the limit.
    Returns 0, or -1 if the limit or the host forbids it (nothing changes).
    """
    cdef uint64_t size, tail, deficit, new_size, lim, old_g, new_cap, old_w, new_w
    cdef uint8_t* mem
    cdef uint64_t* pm
    if h.mem == NULL:
        return -1
    size = h.capacity - 8
    lim = h.limit - 8
    tail = _tail_free_granules(h)
    deficit = (need_g - tail) << 3 if need_g > tail else 0
    new_size = _u64max(_u64max(size << 1, size + deficit), _MIN_GROWTH)
    if new_size > lim:
        new_size = lim
    if new_size <= size or new_size < size + deficit:
        return -1
    new_cap = 8 + new_size
    old_g = h.capacity >> 3
    if _meta_resize(h, new_cap >> 3) != 0:
        return -1
    if h.ptrmap != NULL:
        old_w = (h.capacity + 63) >> 6
        new_w = (new_cap + 63) >> 6
        pm = _grow_words(h.ptrmap, old_w, new_w)
        if pm == NULL:
            return -1
        h.ptrmap = pm
    mem = <uint8_t*>realloc(h.mem, new_cap)
    if mem == NULL:
        return -1
    h.mem = mem
    h.capacity = new_cap
    h.stats.grows += 1
    if new_cap > h.stats.peak_capacity:
        h.stats.peak_capacity = new_cap
    _region_add(h, old_g, (new_cap >> 3) - old_g)
    return 0


# ============================================================================
# allocation and free
# ============================================================================

cdef inline bint _alloc_possible(Heap* h, uint64_t n) noexcept nogil:
    """False for sizes that can never fit under the limit (no overflow anywhere)."""
    if h.mem == NULL or n > h.limit:
        return False
    return _need_granules(n) << 3 <= h.limit - 8


cdef uint64_t _alloc_fit(Heap* h, uint64_t n, bint gc_managed) noexcept nogil:
    """Allocate from the existing free regions only; 0 if none fits."""
    cdef uint64_t need = _need_granules(n)
    cdef uint64_t g, start, hdr, foot
    g = _take(h, need)
    if g == 0:
        return 0
    start = (g + 1) << 3
    hdr = n
    if gc_managed:
        hdr |= VXH_HDR_GC
    _hdr(h, start)[0] = hdr
    memset(h.mem + start, 0, n)
    _bm_set(h, g + 1)
    h.cache_lo = start                      # a new block is usually initialised next
    h.cache_hi = start + n
    foot = need << 3
    h.nblocks += 1
    h.used_bytes += foot
    h.payload_bytes += n
    if gc_managed:
        h.gc_blocks += 1
        h.gc_bytes += foot
        h.gc_since += foot
    h.stats.allocs += 1
    return start


cdef inline bint _fail_injected(Heap* h) noexcept nogil:
    if h.fail_after < 0:
        return False
    if h.fail_after == 0:
        return True
    h.fail_after -= 1
    return False


cdef uint64_t heap_alloc(Heap* h, uint64_t n, bint gc_managed) noexcept nogil:
    cdef uint64_t a = 0
    if _alloc_possible(h, n) and not _fail_injected(h):
        a = _alloc_fit(h, n, gc_managed)
        if a == 0 and _grow(h, _need_granules(n)) == 0:
            a = _alloc_fit(h, n, gc_managed)
    if a == 0:
        h.stats.failed_allocs += 1
    return a


cdef uint64_t heap_alloc_auto(Heap* h, uint64_t n, bint gc_managed,
                              const HeapRootSpan* roots, size_t nroots) noexcept nogil:
    """The VM's allocation with the collection policy (docs/heap.md).

    1. gc_stress, or gc_since >= gc_threshold: collect.
    2. Fit in the existing free regions.
    3. Else, if no collection ran yet and GC-managed bytes were allocated
       since the last one: collect; if less than a quarter of the heap is
       then free, grow too (avoids collecting on every allocation); fit.
    4. Else grow and fit.
    5. Else, if no collection ran yet and GC-managed blocks exist: collect, fit.
    """
    cdef uint64_t a = 0, need
    cdef bint collected = False
    if not _alloc_possible(h, n) or _fail_injected(h):
        h.stats.failed_allocs += 1
        return 0
    need = _need_granules(n)
    if h.gc_stress or h.gc_since >= h.gc_threshold:
        heap_collect(h, roots, nroots)
        collected = True
    a = _alloc_fit(h, n, gc_managed)
    if a == 0 and not collected and h.gc_since > 0:
        heap_collect(h, roots, nroots)
        collected = True
        if heap_free_bytes(h) * 4 < h.capacity - 8:
            _grow(h, need)
        a = _alloc_fit(h, n, gc_managed)
    if a == 0 and _grow(h, need) == 0:
        a = _alloc_fit(h, n, gc_managed)
    if a == 0 and not collected and h.gc_blocks > 0:
        heap_collect(h, roots, nroots)
        a = _alloc_fit(h, n, gc_managed)
    if a == 0:
        h.stats.failed_allocs += 1
    return a


cdef inline void _release_block(Heap* h, uint64_t start, uint64_t hdr, bint forget_ptrs) noexcept nogil:
    """Bookkeeping of a block leaving the live set (its tile is handled by the caller).

    forget_ptrs=False: the caller drops the block's recorded pointers itself
    (the sweep clears a whole free run at once).
    """
    cdef uint64_t n = hdr & VXH_HDR_SIZE_MASK
    cdef uint64_t foot = _hdr_foot(hdr) << 3
    _bm_clear(h, start >> 3)
    if forget_ptrs and h.ptrmap != NULL and n >= 8:
        _pm_clear(h, start, start + n - 7)
    h.nblocks -= 1
    h.used_bytes -= foot
    h.payload_bytes -= n
    if hdr & VXH_HDR_GC:
        h.gc_blocks -= 1
        h.gc_bytes -= foot
    if h.cache_lo == start:
        _cache_clear(h)


cdef int heap_free(Heap* h, uint64_t addr) noexcept nogil:
    cdef uint64_t hdr
    if not heap_is_block(h, addr):
        return -1                           # double free, interior pointer, 0, garbage
    hdr = _hdr(h, addr)[0]
    _release_block(h, addr, hdr, True)
    _region_add(h, (addr >> 3) - 1, _hdr_foot(hdr))
    h.stats.frees += 1
    return 0


# ============================================================================
# queries and data access
# ============================================================================

cdef bint heap_is_block(Heap* h, uint64_t addr) noexcept nogil:
    return (addr & 7) == 0 and addr >= HEAP_FIRST_ADDRESS and addr < h.capacity \
        and _bm_test(h, addr >> 3)


cdef int64_t heap_block_size(Heap* h, uint64_t addr) noexcept nogil:
    if not heap_is_block(h, addr):
        return -1
    return <int64_t>(_hdr(h, addr)[0] & VXH_HDR_SIZE_MASK)


cdef bint heap_block_gc(Heap* h, uint64_t addr) noexcept nogil:
    return heap_is_block(h, addr) and (_hdr(h, addr)[0] & VXH_HDR_GC) != 0


cdef uint64_t heap_next_block(Heap* h, uint64_t addr) noexcept nogil:
    cdef uint64_t g = (addr >> 3) + 1
    cdef int64_t r
    if h.mem == NULL or g >= (h.capacity >> 3):
        return 0
    r = _bm_next(h, g)
    return <uint64_t>r << 3 if r > 0 else 0


cdef uint64_t heap_free_bytes(Heap* h) noexcept nogil:
    return h.capacity - 8 - h.used_bytes if h.capacity >= 8 else 0


cdef uint8_t* heap_find_slow(Heap* h, uint64_t addr, uint64_t n) noexcept nogil:
    cdef int64_t g
    cdef uint64_t start, end
    if addr < HEAP_FIRST_ADDRESS or addr > h.capacity:
        return NULL
    # addr == capacity is the end of the last block (valid for a count of 0);
    # no block starts at granule capacity/8, so look from the one below
    g = _bm_prev(h, (addr >> 3) if addr < h.capacity else (addr >> 3) - 1)
    if g < 0:
        return NULL
    start = <uint64_t>g << 3
    end = start + (_hdr(h, start)[0] & VXH_HDR_SIZE_MASK)
    if addr > end or n > end - addr:
        return NULL
    h.cache_lo = start
    h.cache_hi = end
    return h.mem + addr


cdef int heap_read(Heap* h, uint64_t addr, uint8_t* dst, uint64_t n) noexcept nogil:
    cdef uint8_t* p = heap_find(h, addr, n)
    if p == NULL:
        return -1
    memcpy(dst, p, n)
    return 0


cdef int heap_write(Heap* h, uint64_t addr, const uint8_t* src, uint64_t n) noexcept nogil:
    cdef uint8_t* p = heap_find(h, addr, n)
    if p == NULL:
        return -1
    memmove(p, src, n)
    if h.ptrmap != NULL:
        heap_forget_pointers(h, addr, n)
    return 0


cdef int heap_copy(Heap* h, uint64_t dst, uint64_t src, uint64_t n) noexcept nogil:
    cdef uint8_t* s = heap_find(h, src, n)
    cdef uint8_t* d
    if s == NULL:
        return -1
    d = heap_find(h, dst, n)
    if d == NULL:
        return -1
    memmove(d, s, n)
    if h.ptrmap != NULL:
        _pm_move(h, dst, src, n)
    return 0


cdef void heap_forget_pointers(Heap* h, uint64_t addr, uint64_t n) noexcept nogil:
    # a pointer at p covers [p, p+8): it overlaps [addr, addr+n) iff addr-7 <= p < addr+n
    if n != 0 and h.ptrmap != NULL:
        _pm_clear(h, addr - 7 if addr >= 7 else 0, addr + n)


cdef int heap_record_pointer(Heap* h, uint64_t addr) noexcept nogil:
    cdef uint64_t lo = addr - 7, hi = addr + 8   # addr >= 16: no underflow
    cdef uint64_t wi, m, w, old, bit
    if heap_find(h, addr, 8) == NULL:
        return -1
    if _pm_ensure(h) != 0:
        return -1
    wi = lo >> 6
    if wi == ((hi - 1) >> 6):
        # the usual case, one word of the map: clear the pointers the 8 bytes
        # overlap and set ours in one read and write (a pointer stored over
        # the same pointer slot changes nothing)
        m = (_ALL << (lo & 63)) & (_ALL >> (63 - ((hi - 1) & 63)))
        bit = <uint64_t>1 << (addr & 63)
        w = h.ptrmap[wi]
        old = w & m
        if old != bit:
            if old != 0:
                h.ptr_count -= <uint64_t>vxh_popcount64(old)
            h.ptrmap[wi] = (w & ~m) | bit
            h.ptr_count += 1
        return 0
    _pm_clear(h, lo, hi)
    h.ptrmap[addr >> 6] |= <uint64_t>1 << (addr & 63)
    h.ptr_count += 1
    return 0


cdef bint heap_has_pointer(Heap* h, uint64_t addr) noexcept nogil:
    return h.ptrmap != NULL and addr < h.capacity and (h.ptrmap[addr >> 6] >> (addr & 63)) & 1


# ============================================================================
# garbage collection
# ============================================================================

cdef inline void _mark_value(Heap* h, uint64_t v) noexcept nogil:
    """Mark the block starting at v (if v is a live block start) and queue it."""
    cdef uint64_t* hp
    cdef uint64_t* grown
    cdef uint64_t cap
    if (v & 7) != 0 or v < HEAP_FIRST_ADDRESS or v >= h.capacity or not _bm_test(h, v >> 3):
        return                              # interior pointers keep nothing alive
    hp = _hdr(h, v)
    if hp[0] & VXH_HDR_MARK:
        return
    hp[0] |= VXH_HDR_MARK
    if h.mark_top == h.mark_cap:
        cap = h.mark_cap * 2 if h.mark_cap != 0 else 1024
        if cap > HEAP_MARK_STACK_MAX:
            cap = HEAP_MARK_STACK_MAX
        grown = NULL
        if cap > h.mark_cap:
            grown = <uint64_t*>realloc(h.mark_stack, cap * 8)
        if grown == NULL:
            h.mark_overflow = True          # found again by the rescan
            return
        h.mark_stack = grown
        h.mark_cap = cap
    h.mark_stack[h.mark_top] = v
    h.mark_top += 1


cdef void _scan_block(Heap* h, uint64_t start) noexcept nogil:
    """Mark everything the pointers recorded inside this block point to."""
    cdef uint64_t n = _hdr(h, start)[0] & VXH_HDR_SIZE_MASK
    cdef uint64_t lo, hi, wi, wh, w
    if h.ptrmap == NULL or n < 8:
        return
    lo = start
    hi = start + n - 7                      # pointer starts lie in [lo, hi)
    wi = lo >> 6
    wh = (hi - 1) >> 6
    while wi <= wh:
        w = h.ptrmap[wi]
        if wi == (lo >> 6):
            w &= _ALL << (lo & 63)
        if wi == wh:
            w &= _ALL >> (63 - ((hi - 1) & 63))
        while w != 0:
            _mark_value(h, vxh_load_be64(h.mem + ((wi << 6) | <uint64_t>vxh_ctz64(w))))
            w &= w - 1
        wi += 1


cdef void _drain(Heap* h) noexcept nogil:
    while h.mark_top != 0:
        h.mark_top -= 1
        _scan_block(h, h.mark_stack[h.mark_top])


cdef inline void _sweep_emit(Heap* h, uint64_t g, uint64_t length) noexcept nogil:
    """The sweep found the free run [g, g+length): record it as one region.

    Also drops the pointers of the blocks freed into it, all at once: pointers
    lie inside blocks, so the run holds no other recorded pointer.
    """
    h.fit_hint = 0
    if h.ptrmap != NULL:
        _pm_clear(h, g << 3, (g + length) << 3)
    if not _rs_test(h, g):
        _rs_set(h, g)
        h.nfree += 1
    _rlen_set(h, g, length)
    _sum_raise(h, g >> 6, length)


cdef uint64_t heap_collect(Heap* h, const HeapRootSpan* roots, size_t nroots) noexcept nogil:
    cdef uint64_t t0 = vxh_now_ns()
    cdef size_t r, i
    cdef const HeapRootSpan* span
    cdef uint64_t v, G, g, hdr, fg, start, fl
    cdef uint64_t freed_blocks = 0, freed_bytes = 0, marked = 0
    cdef uint64_t run_start = 0, run_len = 0
    if h.mem == NULL:
        return 0
    G = h.capacity >> 3
    h.mark_top = 0
    h.mark_overflow = False
    # --- mark: registers and stack entries tagged 8 ---------------------------
    for r in range(nroots):
        span = &roots[r]
        for i in range(span.count):
            if span.tags == NULL or span.tags[i * span.tag_stride] == HEAP_TAG_ADDRESS:
                memcpy(&v, span.values + i * span.value_stride, 8)
                _mark_value(h, v)
        _drain(h)
    # --- every live allocr_nogc block is a root (docs/heap.md) ----------------
    if h.nblocks > h.gc_blocks:
        g = 1
        while g < G:
            if _rs_test(h, g):
                g += _rlen(h, g)
                continue
            start = (g + 1) << 3
            hdr = _hdr(h, start)[0]
            if not (hdr & VXH_HDR_GC) and not (hdr & VXH_HDR_MARK):
                _hdr(h, start)[0] = hdr | VXH_HDR_MARK
                _scan_block(h, start)
                _drain(h)
            g += _hdr_foot(hdr)
    # --- mark stack overflowed: rescan marked blocks until nothing new --------
    while h.mark_overflow:
        h.mark_overflow = False
        g = 1
        while g < G:
            if _rs_test(h, g):
                g += _rlen(h, g)
                continue
            start = (g + 1) << 3
            hdr = _hdr(h, start)[0]
            if hdr & VXH_HDR_MARK:
                _scan_block(h, start)
                _drain(h)
            g += _hdr_foot(hdr)
    # --- sweep in address order, merging free runs as it goes ----------------
    g = 1
    while g < G:
        if _rs_test(h, g):                  # a free region
            fl = _rlen(h, g)
            if run_start == 0:
                run_start = g               # it starts the run: keeps its bit
                run_len = fl
            else:                           # swallowed by the open run
                _rs_clear(h, g)
                h.nfree -= 1
                run_len += fl
            g += fl
            continue
        start = (g + 1) << 3
        hdr = _hdr(h, start)[0]
        fg = _hdr_foot(hdr)
        if (hdr & VXH_HDR_GC) and not (hdr & VXH_HDR_MARK):
            _release_block(h, start, hdr, False)
            freed_blocks += 1
            freed_bytes += hdr & VXH_HDR_SIZE_MASK
            if run_start == 0:
                run_start = g
                run_len = 0
            run_len += fg
        else:
            if hdr & VXH_HDR_MARK:
                marked += 1
                _hdr(h, start)[0] = hdr & ~VXH_HDR_MARK
            if run_start != 0:
                _sweep_emit(h, run_start, run_len)
                run_start = 0
        g += fg
    if run_start != 0:
        _sweep_emit(h, run_start, run_len)
    _cache_clear(h)
    # --- policy and statistics ---------------------------------------------
    h.gc_since = 0
    h.gc_threshold = _u64max(h.gc_floor, h.gc_bytes)
    h.stats.collections += 1
    h.stats.last_marked = marked
    h.stats.last_freed_blocks = freed_blocks
    h.stats.last_freed_bytes = freed_bytes
    h.stats.last_live_bytes = h.payload_bytes
    h.stats.freed_blocks_total += freed_blocks
    h.stats.freed_bytes_total += freed_bytes
    h.stats.last_ns = vxh_now_ns() - t0
    h.stats.gc_ns_total += h.stats.last_ns
    return freed_blocks


# ============================================================================
# invariant check (R12): used by tests, fuzzers and debug builds
# ============================================================================

cdef int heap_check(Heap* h, char* buf, size_t buflen) noexcept nogil:
    cdef uint64_t G, g, hdr, n, fg, start, c, j, want, m, w
    cdef uint64_t used = 0, payload = 0, gcb = 0, gcbytes = 0, blocks = 0, freeb = 0
    cdef uint64_t nfree = 0, ptrs = 0, total_ptrs = 0
    cdef uint32_t sm
    cdef bint prev_free = False
    cdef int lv
    buf[0] = 0
    if h.mem == NULL:
        return 0
    if h.capacity & 7 or h.capacity < 8 or h.capacity > h.limit:
        snprintf(buf, buflen, "capacity %llu is not a multiple of 8 within the limit",
                 <unsigned long long>h.capacity)
        return -1
    G = h.capacity >> 3
    # --- the tiles cover [8, capacity) exactly ----------------------------------
    g = 1
    while g < G:
        if _rs_test(h, g):
            fg = _rlen(h, g)
            if fg == 0 or fg > G - g:
                snprintf(buf, buflen, "free region at 0x%llx has bad length %llu granules",
                         <unsigned long long>(g << 3), <unsigned long long>fg)
                return -1
            if prev_free:
                snprintf(buf, buflen, "two adjacent free regions at 0x%llx", <unsigned long long>(g << 3))
                return -1
            for j in range(g, g + fg):
                if (j != g and _rs_test(h, j)) or (j + 1 < G and _bm_test(h, j + 1) and j + 1 < g + fg):
                    snprintf(buf, buflen, "region or block start inside free region 0x%llx",
                             <unsigned long long>(g << 3))
                    return -1
            nfree += 1
            freeb += fg << 3
            prev_free = True
        else:
            if g + 1 >= G or not _bm_test(h, g + 1):
                snprintf(buf, buflen, "granule 0x%llx starts neither a block nor a free region",
                         <unsigned long long>(g << 3))
                return -1
            start = (g + 1) << 3
            hdr = _hdr(h, start)[0]
            n = hdr & VXH_HDR_SIZE_MASK
            fg = _hdr_foot(hdr)
            if (hdr & ~(VXH_HDR_SIZE_MASK | VXH_HDR_GC)) != 0:
                snprintf(buf, buflen, "bad header 0x%llx of block 0x%llx",
                         <unsigned long long>hdr, <unsigned long long>start)
                return -1
            if fg > G - g:
                snprintf(buf, buflen, "block 0x%llx (size %llu) runs past the arena end",
                         <unsigned long long>start, <unsigned long long>n)
                return -1
            for j in range(g + 1, g + fg):
                if _rs_test(h, j) or (j > g + 1 and _bm_test(h, j)):
                    snprintf(buf, buflen, "region or block start inside block 0x%llx",
                             <unsigned long long>start)
                    return -1
            if h.ptrmap != NULL and n >= 8:
                ptrs += _pm_count(h, start, start + n - 7)
            blocks += 1
            used += fg << 3
            payload += n
            if hdr & VXH_HDR_GC:
                gcb += 1
                gcbytes += fg << 3
            prev_free = False
        g += fg
    if g != G:
        snprintf(buf, buflen, "tiles end at 0x%llx, arena at 0x%llx",
                 <unsigned long long>(g << 3), <unsigned long long>h.capacity)
        return -1
    # --- accounting -------------------------------------------------------------
    if (blocks != h.nblocks or used != h.used_bytes or payload != h.payload_bytes
            or gcb != h.gc_blocks or gcbytes != h.gc_bytes or nfree != h.nfree
            or used + freeb != h.capacity - 8):
        snprintf(buf, buflen,
                 "accounting: blocks %llu/%llu used %llu/%llu payload %llu/%llu gc %llu/%llu "
                 "gcbytes %llu/%llu free regions %llu/%llu free bytes %llu",
                 <unsigned long long>blocks, <unsigned long long>h.nblocks,
                 <unsigned long long>used, <unsigned long long>h.used_bytes,
                 <unsigned long long>payload, <unsigned long long>h.payload_bytes,
                 <unsigned long long>gcb, <unsigned long long>h.gc_blocks,
                 <unsigned long long>gcbytes, <unsigned long long>h.gc_bytes,
                 <unsigned long long>nfree, <unsigned long long>h.nfree,
                 <unsigned long long>freeb)
        return -1
    # --- bitmaps hold exactly the starts seen by the walk ----------------------------
    n = 0
    m = 0
    for j in range(h.level_words[0]):
        n += vxh_popcount64(h.levels[0][j])
        m += vxh_popcount64(h.rstarts[j])
    if n != blocks or m != nfree:
        snprintf(buf, buflen, "bitmaps: %llu block starts for %llu blocks, %llu region starts for %llu regions",
                 <unsigned long long>n, <unsigned long long>blocks,
                 <unsigned long long>m, <unsigned long long>nfree)
        return -1
    for lv in range(1, h.nlevels):
        for j in range(h.level_words[lv - 1]):
            want = 1 if h.levels[lv - 1][j] != 0 else 0
            if ((h.levels[lv][j >> 6] >> (j & 63)) & 1) != want:
                snprintf(buf, buflen, "block bitmap level %d bit %llu disagrees with the level below",
                         lv, <unsigned long long>j)
                return -1
    if h.level_words[h.nlevels - 1] != 1 or h.sum_words[h.nsums - 1] != 1:
        snprintf(buf, buflen, "a top level has more than one entry")
        return -1
    # --- free-space summaries: chunk bounds >= chunk maxima, parents = max of children
    for c in range(h.sum_words[0]):
        m = 0
        w = h.rstarts[c]
        while w != 0:
            fg = _rlen(h, (c << 6) | <uint64_t>vxh_ctz64(w))
            if fg > m:
                m = fg
            w &= w - 1
        if h.sums[0][c] < m:
            snprintf(buf, buflen, "chunk %llu bound %u below its longest region %llu",
                     <unsigned long long>c, h.sums[0][c], <unsigned long long>m)
            return -1
    for lv in range(1, h.nsums):
        for j in range(h.sum_words[lv]):
            sm = 0
            for c in range(j << 4, min((j << 4) + HEAP_SUM_FANOUT, h.sum_words[lv - 1])):
                if h.sums[lv - 1][c] > sm:
                    sm = h.sums[lv - 1][c]
            if h.sums[lv][j] != sm:
                snprintf(buf, buflen, "summary level %d entry %llu is %u, children say %u",
                         lv, <unsigned long long>j, h.sums[lv][j], sm)
                return -1
    # --- pointers: all inside live blocks (wholly), and counted ----------------------
    if h.ptrmap == NULL:
        if h.ptr_count != 0:
            snprintf(buf, buflen, "ptr_count %llu without a pointer map", <unsigned long long>h.ptr_count)
            return -1
    else:
        for j in range((h.capacity + 63) >> 6):
            total_ptrs += vxh_popcount64(h.ptrmap[j])
        if total_ptrs != ptrs or ptrs != h.ptr_count:
            snprintf(buf, buflen, "pointer map: %llu bits, %llu inside blocks, count %llu",
                     <unsigned long long>total_ptrs, <unsigned long long>ptrs,
                     <unsigned long long>h.ptr_count)
            return -1
    # --- the lookup cache names a live block ---------------------------------------
    if h.cache_lo <= h.cache_hi:
        if heap_block_size(h, h.cache_lo) < 0 or h.cache_lo + <uint64_t>heap_block_size(h, h.cache_lo) != h.cache_hi:
            snprintf(buf, buflen, "lookup cache [0x%llx, 0x%llx) is not a live block",
                     <unsigned long long>h.cache_lo, <unsigned long long>h.cache_hi)
            return -1
    return 0


# ============================================================================
# Python wrapper (tests, fuzzers, benchmarks, tools)
# ============================================================================

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

    def __dealloc__(self):
        heap_free_all(&self.h)

    # ---- allocation ----------------------------------------------------------

    def alloc(self, uint64_t n, bint gc=True):
        """First-fit allocation (grows, never collects); the address or 0."""
        return heap_alloc(&self.h, n, gc)

    def alloc_auto(self, uint64_t n, bint gc=True, roots=(), tags=None):
        """Allocation with the VM's collection policy, using these roots."""
        cdef _Roots rs = _Roots(roots, tags)
        return heap_alloc_auto(&self.h, n, gc, &rs.span, 1)

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
        return heap_store(&self.h, addr, value, k, pointer) == 0

    def store_pointer(self, uint64_t addr, uint64_t value):
        """`store` of a register tagged 8 with count 8: records a pointer."""
        return heap_store(&self.h, addr, value, 8, True) == 0

    def load(self, uint64_t addr, int k=8):
        """The `load` instruction: k bytes big-endian as an int, or None."""
        cdef uint64_t v = 0
        if not 1 <= k <= 8:
            raise ValueError("k must be 1..8")
        if heap_load(&self.h, addr, k, &v) != 0:
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
            if _rs_test(&self.h, g):
                out.append((g << 3, _rlen(&self.h, g) << 3))
                g += _rlen(&self.h, g)
            else:
                g += _hdr_foot(_hdr(&self.h, (g + 1) << 3)[0])
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
                out.append((j << 6) | <uint64_t>vxh_ctz64(w))
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
        return self.h.nfree

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

    @property
    def gc_stress(self):
        return bool(self.h.gc_stress)

    @gc_stress.setter
    def gc_stress(self, bint value):
        self.h.gc_stress = value

    @property
    def fail_after(self):
        return self.h.fail_after

    @fail_after.setter
    def fail_after(self, long long value):
        self.h.fail_after = value

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
            t0 = vxh_now_ns()
            for i in range(pairs):          # multiply-shift ranges: no divisions timed
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                j = (x >> 32) * live >> 32
                heap_free(&self.h, slots[j])
                slots[j] = heap_alloc(&self.h, ((x & <uint64_t>0xFFFFFFFF) * max_size >> 32) + 1, False)
                if slots[j] == 0:
                    ok = False
            t1 = vxh_now_ns()
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
        span.count = ring
        with nogil:
            t0 = vxh_now_ns()
            for i in range(objects):
                a = heap_alloc_auto(&self.h, size, True, &span, 1)
                if a == 0:
                    ok = False
                    break
                heap_store(&self.h, a, i, 8, False)         # two plain fields
                heap_store(&self.h, a + 8, i * 3, 8, False)
                slots[k] = a
                k += 1
                if k == ring:
                    k = 0
            t1 = vxh_now_ns()
        free(slots)
        return (t1 - t0) if ok else -1
