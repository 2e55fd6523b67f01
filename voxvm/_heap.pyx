# cython: language_level=3
"""The voxvm heap: first-fit allocator, pointer tracking and mark-sweep GC, in C.

Owns the implementation of the API declared in ``_heap.pxd`` (read its
header for the conventions) and ``HeapTester``, a Python wrapper for tests
and tools. The layout and the algorithms are explained in docs/heap.md; the
short version:

* The arena is one ``realloc``-grown byte array; an address is an offset.
  It is tiled, from byte 8 to its end, by *tiles*: a live block is an 8-byte
  header followed by its bytes (rounded up to 8, at least 16, plus up to 16
  bytes of slack); a free region is a maximal run of free bytes (>= 24).
* Free regions form a treap keyed by address, augmented with the largest
  region length of each subtree, whose nodes live inside the free regions
  themselves: first fit = leftmost region with length >= need, O(log F).
* A hierarchical bitmap of block starts answers "is this a live block" in
  O(1) and "which block contains this address" in O(levels) <= 6 words.
* A 1-bit-per-byte bitmap records where pointers were stored (allocated on
  the first pointer store): the collector's edges.
* Mark-sweep: marks live in block headers; the sweep walks the tiles in
  address order, frees unmarked GC-managed blocks and rebuilds the treap
  from the merged free runs in linear time.

Nothing here allocates host memory per heap allocation: metadata grows only
with the arena (about 1.6% for block starts, 12.5% for pointers when used).
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memset, memmove, memcpy
from libc.stdio cimport snprintf

cdef uint64_t _ALL = 0xFFFFFFFFFFFFFFFF
cdef uint64_t _MIN_GROWTH = 4096        # bytes: smallest growth of an empty heap
cdef uint64_t _MIN_GC_FLOOR = 65536     # bytes: smallest collection threshold


# ============================================================================
# small helpers
# ============================================================================

cdef inline uint64_t _u64max(uint64_t a, uint64_t b) noexcept nogil:
    return a if a > b else b


cdef inline uint64_t _payload_granules(uint64_t n) noexcept nogil:
    """Granules a block of n bytes occupies after its header (at least 2)."""
    cdef uint64_t g = (n + 7) >> 3
    return g if g >= 2 else 2


cdef inline uint64_t _need_granules(uint64_t n) noexcept nogil:
    """Footprint in granules of a fresh n-byte block: header + payload."""
    return 1 + _payload_granules(n)


cdef inline uint64_t* _hdr(Heap* h, uint64_t start) noexcept nogil:
    return <uint64_t*>(h.mem + start - 8)


cdef inline uint64_t _hdr_foot(uint64_t hdr) noexcept nogil:
    """Footprint in granules (header, payload, slack) of a block with this header."""
    return 1 + _payload_granules(hdr & VXH_HDR_SIZE_MASK) + ((hdr >> VXH_HDR_SLACK_SHIFT) & 3)


cdef inline HeapFreeNode* _node(Heap* h, uint32_t g) noexcept nogil:
    return <HeapFreeNode*>(h.mem + (<uint64_t>g << 3))


cdef inline uint32_t _maxof(Heap* h, uint32_t g) noexcept nogil:
    return _node(h, g).max if g != 0 else 0


cdef inline void _fix(Heap* h, uint32_t g) noexcept nogil:
    """Recompute the subtree maximum of node g from its children."""
    cdef HeapFreeNode* x = _node(h, g)
    cdef uint32_t m = x.len
    cdef uint32_t c
    if x.left != 0:
        c = _node(h, x.left).max
        if c > m:
            m = c
    if x.right != 0:
        c = _node(h, x.right).max
        if c > m:
            m = c
    x.max = m


cdef inline uint32_t _rand(Heap* h) noexcept nogil:
    cdef uint64_t x = h.rng
    x ^= x << 13
    x ^= x >> 7
    x ^= x << 17
    h.rng = x
    return <uint32_t>(x >> 32)


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


cdef int _bm_resize(Heap* h, uint64_t granules) noexcept nogil:
    """Make the bitmap cover `granules` bits (never shrinks). 0 or -1."""
    cdef uint64_t words0 = (granules + 63) >> 6
    cdef uint64_t words[HEAP_MAX_LEVELS]
    cdef uint64_t* fresh[HEAP_MAX_LEVELS]
    cdef uint64_t* grown
    cdef uint64_t* lower
    cdef uint64_t n, j
    cdef int nlv = 1, i
    if words0 == 0:
        words0 = 1
    if words0 > h.level_words[0] or h.levels[0] == NULL:
        grown = <uint64_t*>realloc(h.levels[0], words0 * 8)
        if grown == NULL:
            return -1
        memset(grown + h.level_words[0], 0, (words0 - h.level_words[0]) * 8)
        h.levels[0] = grown
    else:
        words0 = h.level_words[0]
    words[0] = words0
    n = words0
    while n > 1:
        n = (n + 63) >> 6
        words[nlv] = n
        nlv += 1
    for i in range(1, nlv):
        fresh[i] = <uint64_t*>calloc(words[i], 8)
        if fresh[i] == NULL:
            while i > 1:
                i -= 1
                free(fresh[i])
            return -1
    for i in range(1, nlv):
        for j in range(words[i - 1]):
            lower = h.levels[0] if i == 1 else fresh[i - 1]
            if lower[j] != 0:
                fresh[i][j >> 6] |= <uint64_t>1 << (j & 63)
    for i in range(1, h.nlevels):
        free(h.levels[i])
        h.levels[i] = NULL
    for i in range(1, nlv):
        h.levels[i] = fresh[i]
        h.level_words[i] = words[i]
    h.level_words[0] = words0
    h.nlevels = nlv
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
    if wl == wh:
        m = (_ALL << (lo & 63)) & (_ALL >> (63 - ((hi - 1) & 63)))
        cleared = vxh_popcount64(h.ptrmap[wl] & m)
        h.ptrmap[wl] &= ~m
    else:
        m = _ALL << (lo & 63)
        cleared = vxh_popcount64(h.ptrmap[wl] & m)
        h.ptrmap[wl] &= ~m
        wl += 1
        while wl < wh:
            if h.ptrmap[wl] != 0:
                cleared += vxh_popcount64(h.ptrmap[wl])
                h.ptrmap[wl] = 0
            wl += 1
        m = _ALL >> (63 - ((hi - 1) & 63))
        cleared += vxh_popcount64(h.ptrmap[wh] & m)
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
# the free tree: a treap of free regions, nodes stored inside the regions
# ============================================================================

cdef uint32_t _merge(Heap* h, uint32_t a, uint32_t b) noexcept nogil:
    """Join two treaps, every key of a below every key of b."""
    cdef HeapFreeNode* x
    if a == 0:
        return b
    if b == 0:
        return a
    if _node(h, a).prio > _node(h, b).prio:
        x = _node(h, a)
        x.right = _merge(h, x.right, b)
        _fix(h, a)
        return a
    x = _node(h, b)
    x.left = _merge(h, a, x.left)
    _fix(h, b)
    return b


cdef uint32_t _take(Heap* h, uint32_t t, uint32_t need, uint32_t* at, uint32_t* got) noexcept nogil:
    """Carve `need` granules from the front of the leftmost region that fits.

    Precondition: the subtree t has max >= need. Sets *at to the granule of
    the carved tile and *got to its length (need, or the whole region when
    the rest would be smaller than a minimum tile). Returns the new root.
    """
    cdef HeapFreeNode* x = _node(h, t)
    cdef uint32_t rest, moved
    if x.left != 0 and _node(h, x.left).max >= need:
        x.left = _take(h, x.left, need, at, got)
        _fix(h, t)
        return t
    if x.len >= need:
        at[0] = t
        rest = x.len - need
        if rest < HEAP_MIN_TILE:
            got[0] = x.len
            h.nfree -= 1
            return _merge(h, x.left, x.right)
        got[0] = need
        moved = t + need                    # the node moves to the new region start
        memcpy(_node(h, moved), x, sizeof(HeapFreeNode))
        x = _node(h, moved)
        x.len = rest
        _fix(h, moved)
        return moved
    x.right = _take(h, x.right, need, at, got)
    _fix(h, t)
    return t


cdef uint32_t _remove(Heap* h, uint32_t t, uint32_t key) noexcept nogil:
    """Remove the region starting at granule `key` (it must be in the tree)."""
    cdef HeapFreeNode* x
    if t == 0:
        return 0
    x = _node(h, t)
    if t == key:
        h.nfree -= 1
        return _merge(h, x.left, x.right)
    if key < t:
        x.left = _remove(h, x.left, key)
    else:
        x.right = _remove(h, x.right, key)
    _fix(h, t)
    return t


cdef uint32_t _insert_or_extend(Heap* h, uint32_t t, uint32_t key, uint32_t length) noexcept nogil:
    """Add free granules [key, key+length): extend the region ending at key, or insert."""
    cdef HeapFreeNode* x
    cdef HeapFreeNode* c
    cdef uint32_t child
    if t == 0:
        x = _node(h, key)
        x.len = length
        x.max = length
        x.left = 0
        x.right = 0
        x.prio = _rand(h)
        x.link = 0
        h.nfree += 1
        return key
    x = _node(h, t)
    if t < key:
        if t + x.len == key:                # the predecessor touches: merge into it
            x.len += length
            if x.len > x.max:
                x.max = x.len
            return t
        x.right = _insert_or_extend(h, x.right, key, length)
        child = x.right
        c = _node(h, child)
        if c.prio > x.prio:                 # rotate left
            x.right = c.left
            _fix(h, t)
            c.left = t
            _fix(h, child)
            return child
    else:
        x.left = _insert_or_extend(h, x.left, key, length)
        child = x.left
        c = _node(h, child)
        if c.prio > x.prio:                 # rotate right
            x.left = c.right
            _fix(h, t)
            c.right = t
            _fix(h, child)
            return child
    _fix(h, t)
    return t


cdef void _free_region_add(Heap* h, uint64_t g, uint64_t length) noexcept nogil:
    """Return granules [g, g+length) to the free tree, merged with both neighbours."""
    cdef uint64_t end = g + length
    cdef uint64_t G = h.capacity >> 3
    if end < G and not _bm_test(h, end + 1):   # a free region starts right after
        length += _node(h, <uint32_t>end).len
        h.root = _remove(h, h.root, <uint32_t>end)
    h.root = _insert_or_extend(h, h.root, <uint32_t>g, <uint32_t>length)


# rebuilding the whole tree from regions given in address order (the sweep):
# a Cartesian-tree construction over a right-spine stack kept in node.link

cdef inline void _cart_push(Heap* h, uint32_t* top, uint32_t g, uint64_t length) noexcept nogil:
    cdef HeapFreeNode* x = _node(h, g)
    cdef uint32_t last = 0
    x.len = <uint32_t>length
    x.max = <uint32_t>length
    x.left = 0
    x.right = 0
    x.prio = _rand(h)
    while top[0] != 0 and _node(h, top[0]).prio < x.prio:
        last = top[0]
        top[0] = _node(h, last).link
        _fix(h, last)
    x.left = last
    if top[0] != 0:
        _node(h, top[0]).right = g
    x.link = top[0]
    top[0] = g


cdef inline uint32_t _cart_finish(Heap* h, uint32_t top) noexcept nogil:
    cdef uint32_t last = 0
    while top != 0:
        last = top
        top = _node(h, last).link
        _fix(h, last)
    return last


# ============================================================================
# lifetime and growth
# ============================================================================

cdef int heap_init(Heap* h, uint64_t init_size, uint64_t max_size) noexcept nogil:
    cdef uint64_t lim, size
    memset(h, 0, sizeof(Heap))
    _cache_clear(h)
    h.rng = 0x9E3779B97F4A7C15
    h.fail_after = -1
    lim = max_size & ~(<uint64_t>7)
    if lim > VXH_HARD_LIMIT:
        lim = VXH_HARD_LIMIT
    h.limit = 8 + lim
    size = init_size if init_size < lim else lim
    size &= ~(<uint64_t>7)
    if size < HEAP_MIN_TILE * 8:
        size = 0                            # too small for a region: grow on demand
    h.gc_floor = _u64max(_MIN_GC_FLOOR, size >> 2)
    h.gc_threshold = h.gc_floor
    h.mem = <uint8_t*>malloc(8 + size)
    if h.mem == NULL:
        return -1
    if _bm_resize(h, (8 + size) >> 3) != 0:
        free(h.mem)
        h.mem = NULL
        return -1
    h.capacity = 8 + size
    h.stats.peak_capacity = h.capacity
    if size != 0:
        h.root = _insert_or_extend(h, 0, 1, <uint32_t>(size >> 3))
    return 0


cdef void heap_free_all(Heap* h) noexcept nogil:
    cdef int i
    free(h.mem)
    for i in range(h.nlevels if h.nlevels > 0 else 1):
        free(h.levels[i])
    free(h.ptrmap)
    free(h.mark_stack)
    memset(h, 0, sizeof(Heap))
    _cache_clear(h)


cdef uint64_t _tail_free_granules(Heap* h) noexcept nogil:
    """Length of the free region that ends the arena, or 0."""
    cdef uint64_t G = h.capacity >> 3
    cdef int64_t last
    cdef uint64_t end
    if G <= 1:
        return 0
    last = _bm_prev(h, G - 1)
    if last < 0:
        return G - 1 if h.root != 0 else 0
    end = <uint64_t>last - 1 + _hdr_foot(_hdr(h, <uint64_t>last << 3)[0])
    return G - end


cdef int _grow(Heap* h, uint64_t need_g) noexcept nogil:
    """Enlarge the arena so that its last region holds need_g granules (0: just double).

    New size = max(2 * size, size + deficit, 4096), capped at the limit.
    Returns 0, or -1 if the limit or the host forbids it (nothing changes).
    """
    cdef uint64_t size, tail, deficit, new_size, lim, old_g, new_cap
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
    if tail == 0 and new_size - size < HEAP_MIN_TILE * 8:
        return -1                           # too little to form a region
    new_cap = 8 + new_size
    old_g = h.capacity >> 3
    if _bm_resize(h, new_cap >> 3) != 0:
        return -1
    if h.ptrmap != NULL:
        pm = <uint64_t*>realloc(h.ptrmap, ((new_cap + 63) >> 6) * 8)
        if pm == NULL:
            return -1
        memset(pm + ((h.capacity + 63) >> 6), 0, (((new_cap + 63) >> 6) - ((h.capacity + 63) >> 6)) * 8)
        h.ptrmap = pm
    mem = <uint8_t*>realloc(h.mem, new_cap)
    if mem == NULL:
        return -1
    h.mem = mem
    h.capacity = new_cap
    h.stats.grows += 1
    if new_cap > h.stats.peak_capacity:
        h.stats.peak_capacity = new_cap
    _free_region_add(h, old_g, (new_cap >> 3) - old_g)
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
    cdef uint32_t at = 0, got = 0
    cdef uint64_t start, hdr, foot
    if h.root == 0 or <uint64_t>_node(h, h.root).max < need:
        return 0
    h.root = _take(h, h.root, <uint32_t>need, &at, &got)
    start = (<uint64_t>at + 1) << 3
    hdr = n | (<uint64_t>(got - need) << VXH_HDR_SLACK_SHIFT)
    if gc_managed:
        hdr |= VXH_HDR_GC
    _hdr(h, start)[0] = hdr
    memset(h.mem + start, 0, n)
    _bm_set(h, at + 1)
    foot = <uint64_t>got << 3
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


cdef inline void _release_block(Heap* h, uint64_t start, uint64_t hdr) noexcept nogil:
    """Bookkeeping of a block leaving the live set (its tile is handled by the caller)."""
    cdef uint64_t n = hdr & VXH_HDR_SIZE_MASK
    cdef uint64_t foot = _hdr_foot(hdr) << 3
    _bm_clear(h, start >> 3)
    if h.ptrmap != NULL and n >= 8:
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
    _release_block(h, addr, hdr)
    _free_region_add(h, (addr >> 3) - 1, _hdr_foot(hdr))
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
    if addr < HEAP_FIRST_ADDRESS or addr >= h.capacity:
        return NULL
    g = _bm_prev(h, addr >> 3)
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
    if heap_find(h, addr, 8) == NULL:
        return -1
    if _pm_ensure(h) != 0:
        return -1
    _pm_clear(h, addr - 7, addr + 8)        # addr >= 16: no underflow
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


cdef uint64_t heap_collect(Heap* h, const HeapRootSpan* roots, size_t nroots) noexcept nogil:
    cdef uint64_t t0 = vxh_now_ns()
    cdef size_t r, i
    cdef const HeapRootSpan* span
    cdef uint64_t v, G, g, hdr, fg, start, fl
    cdef uint64_t freed_blocks = 0, freed_bytes = 0, marked = 0
    cdef uint64_t run_start = 0, run_len = 0, nfree = 0
    cdef uint32_t top = 0
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
            if _bm_test(h, g + 1):
                hdr = _hdr(h, (g + 1) << 3)[0]
                if not (hdr & VXH_HDR_GC) and not (hdr & VXH_HDR_MARK):
                    _hdr(h, (g + 1) << 3)[0] = hdr | VXH_HDR_MARK
                    _scan_block(h, (g + 1) << 3)
                    _drain(h)
                g += _hdr_foot(hdr)
            else:
                g += _node(h, <uint32_t>g).len
    # --- mark stack overflowed: rescan marked blocks until nothing new --------
    while h.mark_overflow:
        h.mark_overflow = False
        g = 1
        while g < G:
            if _bm_test(h, g + 1):
                hdr = _hdr(h, (g + 1) << 3)[0]
                if hdr & VXH_HDR_MARK:
                    _scan_block(h, (g + 1) << 3)
                    _drain(h)
                g += _hdr_foot(hdr)
            else:
                g += _node(h, <uint32_t>g).len
    # --- sweep in address order; rebuild the free tree from the merged runs ---
    g = 1
    while g < G:
        if _bm_test(h, g + 1):
            start = (g + 1) << 3
            hdr = _hdr(h, start)[0]
            fg = _hdr_foot(hdr)
            if (hdr & VXH_HDR_GC) and not (hdr & VXH_HDR_MARK):
                _release_block(h, start, hdr)
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
                    _cart_push(h, &top, <uint32_t>run_start, run_len)
                    nfree += 1
                    run_start = 0
            g += fg
        else:
            fl = _node(h, <uint32_t>g).len
            if run_start == 0:
                run_start = g
                run_len = 0
            run_len += fl
            g += fl
    if run_start != 0:
        _cart_push(h, &top, <uint32_t>run_start, run_len)
        nfree += 1
    h.root = _cart_finish(h, top)
    h.nfree = nfree
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

cdef int _check_tree(Heap* h, uint32_t t, uint64_t lo, uint64_t hi, uint32_t parent_prio,
                     const uint64_t* starts, uint64_t nstarts, uint64_t* count, int depth,
                     char* buf, size_t buflen) noexcept nogil:
    """Verify the subtree t: keys in (lo, hi), heap order, maxima, nodes = free tiles."""
    cdef HeapFreeNode* x
    cdef uint64_t a = 0, b = nstarts, mid
    cdef uint32_t m
    if t == 0:
        return 0
    if depth > 10000:
        snprintf(buf, buflen, "free tree deeper than 10000 (cycle?)")
        return -1
    if t <= lo or t >= hi:
        snprintf(buf, buflen, "free tree node %llu outside its key range (%llu, %llu)",
                 <unsigned long long>t, <unsigned long long>lo, <unsigned long long>hi)
        return -1
    while a < b:                            # t must be the start of a free tile
        mid = (a + b) >> 1
        if starts[mid] < t:
            a = mid + 1
        else:
            b = mid
    if a >= nstarts or starts[a] != t:
        snprintf(buf, buflen, "free tree node at 0x%llx is not a free region",
                 <unsigned long long>(<uint64_t>t << 3))
        return -1
    x = _node(h, t)
    if x.prio > parent_prio:
        snprintf(buf, buflen, "free tree heap order broken at 0x%llx", <unsigned long long>(<uint64_t>t << 3))
        return -1
    count[0] += 1
    if _check_tree(h, x.left, lo, t, x.prio, starts, nstarts, count, depth + 1, buf, buflen) != 0:
        return -1
    if _check_tree(h, x.right, t, hi, x.prio, starts, nstarts, count, depth + 1, buf, buflen) != 0:
        return -1
    m = x.len
    if x.left != 0 and _node(h, x.left).max > m:
        m = _node(h, x.left).max
    if x.right != 0 and _node(h, x.right).max > m:
        m = _node(h, x.right).max
    if m != x.max:
        snprintf(buf, buflen, "free tree max at 0x%llx is %u, should be %u",
                 <unsigned long long>(<uint64_t>t << 3), x.max, m)
        return -1
    return 0


cdef int heap_check(Heap* h, char* buf, size_t buflen) noexcept nogil:
    cdef uint64_t G, g, hdr, n, fg, slack, start
    cdef uint64_t used = 0, payload = 0, gcb = 0, gcbytes = 0, blocks = 0, freeb = 0
    cdef uint64_t nfree = 0, ptrs = 0, nodes = 0, total_ptrs = 0, j, want
    cdef bint prev_free = False
    cdef uint64_t* starts
    cdef int lv, rc
    buf[0] = 0
    if h.mem == NULL:
        return 0
    if h.capacity & 7 or h.capacity < 8 or h.capacity > h.limit:
        snprintf(buf, buflen, "capacity %llu is not a multiple of 8 within the limit",
                 <unsigned long long>h.capacity)
        return -1
    G = h.capacity >> 3
    starts = <uint64_t*>malloc((h.nfree + 1) * 8)
    if starts == NULL:
        snprintf(buf, buflen, "check: out of memory")
        return -1
    # --- the tiles cover [8, capacity) exactly --------------------------------
    g = 1
    while g < G:
        if g + 1 < G and _bm_test(h, g + 1):
            start = (g + 1) << 3
            hdr = _hdr(h, start)[0]
            n = hdr & VXH_HDR_SIZE_MASK
            slack = (hdr >> VXH_HDR_SLACK_SHIFT) & 3
            fg = _hdr_foot(hdr)
            if slack > 2 or hdr & VXH_HDR_MARK or (hdr & ~(VXH_HDR_SIZE_MASK | VXH_HDR_GC | (<uint64_t>3 << VXH_HDR_SLACK_SHIFT))) != 0:
                snprintf(buf, buflen, "bad header 0x%llx of block 0x%llx",
                         <unsigned long long>hdr, <unsigned long long>start)
                free(starts)
                return -1
            if g + fg > G:
                snprintf(buf, buflen, "block 0x%llx (size %llu) runs past the arena end",
                         <unsigned long long>start, <unsigned long long>n)
                free(starts)
                return -1
            for j in range(g + 2, g + fg):
                if _bm_test(h, j):
                    snprintf(buf, buflen, "block start bit inside block 0x%llx", <unsigned long long>start)
                    free(starts)
                    return -1
            if h.ptrmap != NULL:
                if n >= 8:
                    ptrs += _pm_count(h, start, start + n - 7)
            blocks += 1
            used += fg << 3
            payload += n
            if hdr & VXH_HDR_GC:
                gcb += 1
                gcbytes += fg << 3
            prev_free = False
        else:
            fg = _node(h, <uint32_t>g).len
            if fg < HEAP_MIN_TILE or g + fg > G:
                snprintf(buf, buflen, "free region at 0x%llx has bad length %llu granules",
                         <unsigned long long>(g << 3), <unsigned long long>fg)
                free(starts)
                return -1
            if prev_free:
                snprintf(buf, buflen, "two adjacent free regions at 0x%llx", <unsigned long long>(g << 3))
                free(starts)
                return -1
            for j in range(g + 1, g + fg):
                if _bm_test(h, j):
                    snprintf(buf, buflen, "block start bit inside free region 0x%llx",
                             <unsigned long long>(g << 3))
                    free(starts)
                    return -1
            if nfree >= h.nfree:
                snprintf(buf, buflen, "more free regions than counted (%llu)", <unsigned long long>h.nfree)
                free(starts)
                return -1
            starts[nfree] = g
            nfree += 1
            freeb += fg << 3
            prev_free = True
        g += fg
    if g != G:
        snprintf(buf, buflen, "tiles end at 0x%llx, arena at 0x%llx",
                 <unsigned long long>(g << 3), <unsigned long long>h.capacity)
        free(starts)
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
        free(starts)
        return -1
    # --- block-start bitmap: level 0 has exactly the block starts; levels agree ----
    n = 0
    for j in range(h.level_words[0]):
        n += vxh_popcount64(h.levels[0][j])
    if n != blocks:
        snprintf(buf, buflen, "block-start bitmap has %llu bits for %llu blocks",
                 <unsigned long long>n, <unsigned long long>blocks)
        free(starts)
        return -1
    for lv in range(1, h.nlevels):
        for j in range(h.level_words[lv - 1]):
            want = 1 if h.levels[lv - 1][j] != 0 else 0
            if ((h.levels[lv][j >> 6] >> (j & 63)) & 1) != want:
                snprintf(buf, buflen, "bitmap level %d bit %llu disagrees with level below",
                         lv, <unsigned long long>j)
                free(starts)
                return -1
    if h.level_words[h.nlevels - 1] != 1:
        snprintf(buf, buflen, "bitmap top level has %llu words", <unsigned long long>h.level_words[h.nlevels - 1])
        free(starts)
        return -1
    # --- free tree: exactly the free tiles, ordered, heap-ordered, maxima right ----
    rc = _check_tree(h, h.root, 0, G, 0xFFFFFFFF, starts, nfree, &nodes, 0, buf, buflen)
    free(starts)
    if rc != 0:
        return -1
    if nodes != nfree:
        snprintf(buf, buflen, "free tree has %llu nodes for %llu free regions",
                 <unsigned long long>nodes, <unsigned long long>nfree)
        return -1
    # --- pointers: all inside live blocks (wholly), and counted ------------------
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
            if _bm_test(&self.h, g + 1):
                g += _hdr_foot(_hdr(&self.h, (g + 1) << 3)[0])
            else:
                out.append((g << 3, <uint64_t>_node(&self.h, <uint32_t>g).len << 3))
                g += _node(&self.h, <uint32_t>g).len
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
                slots[i] = heap_alloc(&self.h, x % max_size + 1, False)
                if slots[i] == 0:
                    ok = False
            t0 = vxh_now_ns()
            for i in range(pairs):
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                j = (x >> 11) % live
                heap_free(&self.h, slots[j])
                slots[j] = heap_alloc(&self.h, x % max_size + 1, False)
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
        cdef uint64_t i, t0, t1, a
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
                heap_store(&self.h, a, i, 8, False)
                heap_store(&self.h, a + 8, slots[(i + ring - 1) % ring], 8, True)
                slots[i % ring] = a
            t1 = vxh_now_ns()
        free(slots)
        return (t1 - t0) if ok else -1
