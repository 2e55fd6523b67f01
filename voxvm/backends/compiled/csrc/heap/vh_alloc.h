/* vh_alloc.h - the allocator: free-space index, first fit, split/merge,
 * arena life cycle and growth, explicit free.
 *
 * Owns the free-space index: the region-start bitmap (each free region keeps
 * its length in its own first word) and, per 512-byte chunk (64 granules),
 * an upper bound of the longest region starting there, under a 16-ary max
 * tree scanned 16 entries at a time (SSE2, with a portable fallback). First
 * fit = descend to the leftmost chunk whose bound fits, then scan its
 * regions; what the search leaves of the region it took is the shortcut
 * region, bump allocated outside the index until something else needs the
 * index (vh_settle_shortcut). Also owns heap_init / heap_free_all, growth of
 * the arena and of every per-granule structure, heap_alloc (never collects:
 * the policy that may collect is vh_policy.h) and heap_free.
 *
 * Nothing here allocates host memory per heap allocation: metadata grows only
 * with the arena (about 4% for free space and block starts, plus 12.5% for
 * the pointer map once a pointer is stored).
 */
#ifndef VH_ALLOC_H
#define VH_ALLOC_H

#include "vh_access.h"

/* ------------------------------------------------------------------------
 * 16-entry scans of the summary tree. The summary arrays are padded to whole
 * groups of 16 entries, and entries are < 2^31 (the heap is < 16 GiB), so
 * signed SIMD compares are exact. */

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>

/* Index of the first of 16 entries >= need (need >= 1), or 16. */
static inline int vh_first_ge16(const uint32_t *p, uint32_t need) {
    const __m128i t = _mm_set1_epi32((int)(need - 1));
    __m128i a = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)p), t);
    __m128i b = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(p + 4)), t);
    __m128i c = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(p + 8)), t);
    __m128i d = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(p + 12)), t);
    int mask = _mm_movemask_epi8(_mm_packs_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d)));
    return mask ? vh_ctz64((uint64_t)mask) : 16;
}

static inline __m128i vh_max4(__m128i a, __m128i b) {   /* SSE2 has no pmaxsd */
    return _mm_xor_si128(b, _mm_and_si128(_mm_xor_si128(a, b), _mm_cmpgt_epi32(a, b)));
}

/* Largest of 16 entries. */
static inline uint32_t vh_max16(const uint32_t *p) {
    __m128i m = vh_max4(vh_max4(_mm_loadu_si128((const __m128i *)p), _mm_loadu_si128((const __m128i *)(p + 4))),
                        vh_max4(_mm_loadu_si128((const __m128i *)(p + 8)), _mm_loadu_si128((const __m128i *)(p + 12))));
    m = vh_max4(m, _mm_shuffle_epi32(m, 0x4E));
    m = vh_max4(m, _mm_shuffle_epi32(m, 0xB1));
    return (uint32_t)_mm_cvtsi128_si32(m);
}
#else
static inline int vh_first_ge16(const uint32_t *p, uint32_t need) {
    int k;
    for (k = 0; k < 16 && p[k] < need; k++) {}
    return k;
}

static inline uint32_t vh_max16(const uint32_t *p) {
    uint32_t m = 0;
    for (int k = 0; k < 16; k++) m = p[k] > m ? p[k] : m;
    return m;
}
#endif

/* Summary arrays hold whole groups of 16 entries (zeros past the end). */
static inline uint64_t vh_pad16(uint64_t n) { return (n + 15) & ~(uint64_t)15; }

/* ------------------------------------------------------------------------
 * Per-granule structures */

/* Size every per-granule structure for `granules` granules (never shrinks).
 * Level 0 of both the block-start bitmap and the free-space summary keeps its
 * contents; the upper levels are rebuilt from it. On failure (-1) the
 * structures that were already enlarged stay valid for the old size. */
static int vh_meta_resize(Heap *h, uint64_t granules) {
    uint64_t words0 = (granules + 63) >> 6, old0 = h->level_words[0];
    uint64_t bw[HEAP_MAX_LEVELS], sw[HEAP_MAX_SUM_LEVELS], n, j;
    uint64_t *bfresh[HEAP_MAX_LEVELS] = {0};
    uint32_t *sfresh[HEAP_MAX_SUM_LEVELS] = {0};
    uint64_t *grown;
    uint32_t *grown32;
    int nb = 1, ns = 1, i, ok = 1;
    if (words0 == 0) words0 = 1;
    if (words0 < old0) words0 = old0;
    /* level 0 arrays: grow in place (realloc keeps the contents) */
    if ((grown = vh_words_grow(h->levels[0], old0, words0)) == NULL) return -1;
    h->levels[0] = grown;
    if ((grown = vh_words_grow(h->rstarts, old0, words0)) == NULL) return -1;
    h->rstarts = grown;
    if ((grown = vh_words_grow(h->marks, old0, words0)) == NULL) return -1;
    h->marks = grown;
    if ((grown32 = (uint32_t *)realloc(h->sums[0], (size_t)(vh_pad16(words0) * 4))) == NULL) return -1;
    if (words0 > old0) memset(grown32 + vh_pad16(old0), 0, (size_t)((vh_pad16(words0) - vh_pad16(old0)) * 4));
    h->sums[0] = grown32;
    /* upper levels: fresh arrays, filled from level 0 */
    bw[0] = words0;
    for (n = words0; n > 1; nb++) bw[nb] = n = (n + 63) >> 6;
    sw[0] = words0;
    for (n = words0; n > 1; ns++) sw[ns] = n = (n + HEAP_SUM_FANOUT - 1) >> 4;
    for (i = 1; i < nb; i++) ok &= (bfresh[i] = (uint64_t *)calloc((size_t)bw[i], 8)) != NULL;
    for (i = 1; i < ns; i++) ok &= (sfresh[i] = (uint32_t *)calloc((size_t)vh_pad16(sw[i]), 4)) != NULL;
    if (!ok) {
        for (i = 1; i < nb; i++) free(bfresh[i]);
        for (i = 1; i < ns; i++) free(sfresh[i]);
        return -1;
    }
    for (i = 1; i < nb; i++) {
        const uint64_t *lower = i == 1 ? h->levels[0] : bfresh[i - 1];
        for (j = 0; j < bw[i - 1]; j++)
            if (lower[j] != 0) bfresh[i][j >> 6] |= (uint64_t)1 << (j & 63);
    }
    for (i = 1; i < ns; i++) {
        const uint32_t *lower = i == 1 ? h->sums[0] : sfresh[i - 1];
        for (j = 0; j < sw[i - 1]; j++)
            if (lower[j] > sfresh[i][j >> 4]) sfresh[i][j >> 4] = lower[j];
    }
    for (i = 1; i < h->nlevels; i++) free(h->levels[i]);
    for (i = 1; i < h->nsums; i++) free(h->sums[i]);
    for (i = 1; i < nb; i++) { h->levels[i] = bfresh[i]; h->level_words[i] = bw[i]; }
    for (i = 1; i < ns; i++) { h->sums[i] = sfresh[i]; h->sum_words[i] = sw[i]; }
    h->level_words[0] = words0;
    h->sum_words[0] = words0;
    h->nlevels = nb;
    h->nsums = ns;
    return 0;
}

/* ------------------------------------------------------------------------
 * Free space: region-start bitmap + per-chunk bounds under a 16-ary max tree.
 *
 * The summaries are upper bounds: sums[0][c] >= the longest region starting
 * in chunk c, and every parent equals the maximum of its children. Lengths
 * that grow are propagated at once (vh_sum_raise); lengths that shrink or
 * regions that disappear are not, and a search that descends into a chunk
 * whose bound turns out stale recomputes that chunk (vh_sum_recompute) and
 * starts again. Each restart repairs one stale entry, so searches stay cheap
 * on average while the common allocation (carving the lowest region) touches
 * no summary at all. Chunks left of the one a search picks have bounds below
 * the request, so they hold no fitting region: first fit stays exact. */

/* Set chunk c's bound to its exact longest region; recompute its ancestors. */
static void vh_sum_recompute(Heap *h, uint64_t c) {
    uint64_t w = h->rstarts[c], m = 0;
    for (; w != 0; w &= w - 1) {
        uint64_t length = vh_rlen(h, (c << 6) | (uint64_t)vh_ctz64(w));
        if (length > m) m = length;
    }
    uint32_t val = (uint32_t)m;
    for (int lv = 0;; lv++) {
        if (h->sums[lv][c] == val) return;      /* unchanged: every ancestor is still right */
        h->sums[lv][c] = val;
        if (lv == h->nsums - 1) return;
        val = vh_max16(h->sums[lv] + ((c >> 4) << 4));   /* arrays are padded to 16 */
        c >>= 4;
    }
}

/* A region of `length` granules now starts in chunk c. */
static inline void vh_sum_raise(Heap *h, uint64_t c, uint64_t length) {
    uint32_t val = (uint32_t)length;
    for (int lv = 0; lv < h->nsums && h->sums[lv][c] < val; lv++, c >>= 4) h->sums[lv][c] = val;
}

/* The shortcut region (Heap.fit_hint) goes back into the free-space index,
 * as the free region it is: its start bit, its length, its chunk's bound. The
 * shortcut is then empty. Every reader of the index but the shortcut itself
 * calls this first (the search, a new region, the sweep, growth). */
static VH_NOINLINE void vh_settle_shortcut(Heap *h) {
    uint64_t g = h->fit_hint, length = h->fit_len;
    if (length == 0) return;
    vh_bit_set(h->rstarts, g);
    vh_rlen_set(h, g, length);
    vh_sum_raise(h, g >> 6, length);            /* (it may have moved into a chunk of shorter regions) */
    h->nfree += 1;
    h->fit_hint = h->fit_len = 0;
}

/* The free region at g (`length` granules) is the lowest one that fits a
 * request of `need`: its first `need` granules are taken, and the rest, if
 * any, leaves the free-space index to become the shortcut region (every
 * region below it is shorter than need). */
static VH_ALWAYS_INLINE void vh_take_region(Heap *h, uint64_t g, uint64_t length, uint64_t need) {
    vh_bit_clear(h->rstarts, g);
    h->nfree -= 1;
    h->fit_hint = g + need;
    h->fit_len = length - need;
    h->fit_hint_need = need;
}

/* The first-fit search of vh_take: descend the summary tree to the leftmost
 * chunk whose bound fits, then scan its regions. Returns the granule where
 * the carved tile starts, or 0 if no region fits. */
static VH_NOINLINE uint64_t vh_take_search(Heap *h, uint64_t need) {
    vh_settle_shortcut(h);                      /* its region may be the first that fits */
    for (;;) {
        int lv = h->nsums - 1;
        uint64_t i = 0, w, g, length;
        if (h->sums[lv][0] < need) return 0;
        while (lv > 0) {                        /* leftmost child whose bound fits */
            lv--;                               /* (one exists: the parent is their maximum) */
            i = (i << 4) + (uint64_t)vh_first_ge16(h->sums[lv] + (i << 4), (uint32_t)need);
        }
        for (w = h->rstarts[i]; w != 0; w &= w - 1) {   /* chunk i: its first region that fits */
            g = (i << 6) | (uint64_t)vh_ctz64(w);
            length = vh_rlen(h, g);
            if (length >= need) {               /* first fit: every region below g is shorter than need */
                vh_take_region(h, g, length, need);
                return g;
            }
        }
        vh_sum_recompute(h, i);                 /* the bound was stale: repair, search again */
        h->stats.repairs += 1;
    }
}

/* Take `need` granules from the front of the shortcut region, which the
 * caller checked fits (need <= fit_len) and is first fit (need >=
 * fit_hint_need): two stores, nothing in the free-space index. */
static VH_ALWAYS_INLINE uint64_t vh_take_shortcut(Heap *h, uint64_t need) {
    uint64_t g = h->fit_hint;
    h->fit_hint = g + need;                     /* the rest stays first fit: all below it is taken */
    h->fit_len -= need;
    return g;
}

/* Carve `need` granules from the front of the lowest-addressed region that
 * fits. Returns the granule where the carved tile starts, or 0. The
 * shortcut is inline (it serves most allocations after a sweep), the search
 * is not. */
static VH_ALWAYS_INLINE uint64_t vh_take(Heap *h, uint64_t need) {
    if (need <= h->fit_len && need >= h->fit_hint_need) return vh_take_shortcut(h, need);
    return vh_take_search(h, need);
}

/* Start of the free region that ends exactly at granule g, or 0. */
static uint64_t vh_region_before(Heap *h, uint64_t g) {
    uint64_t end;
    if (g <= 1) return 0;
    int64_t sp = vh_bm_prev(h, g - 1);          /* the last live block starting below g */
    if (sp < 0) end = 1;                        /* no block below: free from the first granule */
    else end = (uint64_t)sp - 1 + vh_hdr_foot(*vh_hdr(h, (uint64_t)sp << 3));
    return end < g ? end : 0;
}

/* Granules [g, g+length) become free, merged with both neighbours. */
static void vh_region_add(Heap *h, uint64_t g, uint64_t length) {
    uint64_t end = g + length, G = h->capacity >> 3, p;
    vh_settle_shortcut(h);                      /* a new or longer region: the shortcut no longer holds */
    if (end < G && vh_bit_test(h->rstarts, end)) {   /* a free region starts right after */
        length += vh_rlen(h, end);              /* (its chunk's bound just goes stale) */
        vh_bit_clear(h->rstarts, end);
        h->nfree -= 1;
    }
    p = vh_region_before(h, g);
    if (p != 0) {                               /* ... and/or one ends right before */
        length += vh_rlen(h, p);
        g = p;
    } else {
        vh_bit_set(h->rstarts, g);
        h->nfree += 1;
    }
    vh_rlen_set(h, g, length);
    vh_sum_raise(h, g >> 6, length);
}

/* ------------------------------------------------------------------------
 * Life cycle and growth */

/* heap_alloc_quick's limit (Heap.quick_limit): the collection threshold when
 * nothing else makes every allocation take the whole policy. */
static inline void vh_quick_refresh(Heap *h) {
    h->quick_limit = h->mem == NULL || h->gc_stress || h->fail_after >= 0 ? 0 : h->gc_threshold;
}

/* init_size: initial heap bytes; max_size: the heap never grows beyond it
 * (clamped to 16 GiB). Returns 0, or -1 when the host cannot provide memory
 * (the heap is then empty but safe to use and to free). */
VH_API int heap_init(Heap *h, uint64_t init_size, uint64_t max_size) {
    uint64_t lim = max_size & ~(uint64_t)7, size;
    memset(h, 0, sizeof *h);
    heap_cache_reset(h);
    h->fail_after = -1;
    if (lim > VH_HARD_LIMIT) lim = VH_HARD_LIMIT;
    h->limit = 8 + lim;
    size = (init_size < lim ? init_size : lim) & ~(uint64_t)7;
    h->gc_floor = vh_max_u64(VH_MIN_GC_FLOOR, size >> 2);
    h->gc_threshold = h->gc_floor;
    h->mem = (uint8_t *)malloc((size_t)(8 + size));
    if (h->mem == NULL) return -1;
    if (vh_meta_resize(h, (8 + size) >> 3) != 0) {
        free(h->mem);
        h->mem = NULL;
        return -1;
    }
    h->capacity = 8 + size;
    h->stats.peak_capacity = h->capacity;
    if (size != 0) vh_region_add(h, 1, size >> 3);
    vh_quick_refresh(h);
    return 0;
}

VH_API void heap_free_all(Heap *h) {
    free(h->mem);
    for (int i = 0; i < h->nlevels; i++) free(h->levels[i]);
    for (int i = 0; i < h->nsums; i++) free(h->sums[i]);
    if (h->nlevels == 0) free(h->levels[0]);    /* level 0 may exist alone after a failed resize */
    if (h->nsums == 0) free(h->sums[0]);
    free(h->rstarts);
    free(h->marks);
    free(h->ptrmap);
    free(h->mark_stack);
    free(h->futile_roots);
    memset(h, 0, sizeof *h);
    heap_cache_reset(h);
}

/* Length of the free region that ends the arena, or 0. */
static uint64_t vh_tail_free_granules(Heap *h) {
    uint64_t G = h->capacity >> 3, p;
    if (G <= 1) return 0;
    p = vh_region_before(h, G);
    return p != 0 ? G - p : 0;
}

/* Enlarge the arena to new_size bytes (a multiple of 8, above the current
 * size and at most the limit; the new space joins the free region at the
 * end). Returns 0, or -1 if the host cannot provide the memory (nothing
 * changes). */
static VH_NOINLINE int vh_grow_to(Heap *h, uint64_t new_size) {
    uint64_t old_g, new_cap;
    uint8_t *mem;
    new_cap = 8 + new_size;
    old_g = h->capacity >> 3;
    if (vh_meta_resize(h, new_cap >> 3) != 0) return -1;
    if (h->ptrmap != NULL) {
        uint64_t *pm = vh_words_grow(h->ptrmap, vh_pm_words(h->capacity), vh_pm_words(new_cap));
        if (pm == NULL) return -1;
        h->ptrmap = pm;
    }
    if ((mem = (uint8_t *)realloc(h->mem, (size_t)new_cap)) == NULL) return -1;
    h->mem = mem;
    h->capacity = new_cap;
    h->stats.grows += 1;
    h->stats.grow_sizes[h->stats.grows & 3] = new_cap - 8;
    if (new_cap > h->stats.peak_capacity) h->stats.peak_capacity = new_cap;
    vh_region_add(h, old_g, (new_cap >> 3) - old_g);
    return 0;
}

/* Enlarge the arena so that its last region holds need_g granules.
 * New size = max(2 * size, size + deficit, 4096), capped at the limit.
 * Returns 0, or -1 if the limit or the host forbids it (nothing changes). */
static int vh_grow(Heap *h, uint64_t need_g) {
    uint64_t size, tail, deficit, new_size, lim;
    if (h->mem == NULL) return -1;
    vh_settle_shortcut(h);                      /* the arena's last region may be the shortcut's */
    size = h->capacity - 8;
    lim = h->limit - 8;
    tail = vh_tail_free_granules(h);
    deficit = need_g > tail ? (need_g - tail) << 3 : 0;
    new_size = vh_max_u64(vh_max_u64(size << 1, size + deficit), VH_MIN_GROWTH);
    if (new_size > lim) new_size = lim;
    if (new_size <= size || new_size < size + deficit) return -1;
    return vh_grow_to(h, new_size);
}

/* ------------------------------------------------------------------------
 * Allocation and free */

/* False for sizes that can never fit under the limit (no overflow anywhere). */
static inline int vh_alloc_possible(const Heap *h, uint64_t n) {
    if (h->mem == NULL || n > h->limit) return 0;
    return vh_need_granules(n) << 3 <= h->limit - 8;
}

/* Fault injection (tests): fail every allocation after fail_after more. */
static inline int vh_fail_injected(Heap *h) {
    if (h->fail_after < 0) return 0;
    if (h->fail_after == 0) return 1;
    h->fail_after -= 1;
    return 0;
}

/* Zero words 1 .. words-1 of a small payload (1 <= words <= 8) whose word 0
 * the caller writes: pairs of stores from both ends, which may overlap, so
 * that the usual sizes take a compare or two and no jump table. */
static VH_ALWAYS_INLINE void vh_zero_after_first(uint64_t *p, uint64_t words) {
    if (words < 2) return;
    p[1] = p[words - 1] = 0;                    /* words 2..3 done */
    if (words < 4) return;
    p[2] = p[words - 2] = 0;                    /* words 4..5 done */
    if (words < 6) return;
    p[3] = p[4] = p[words - 3] = 0;             /* words 6..8 done */
}

/* The tile of `need` granules carved at granule g becomes the live block of
 * n bytes: header, zero-filled payload, block-start bit, the cached block and
 * the counters. Returns its address. With `caller_writes_first` (a constant:
 * heap_alloc_small, need <= 9) the payload's first word is left to the
 * caller, which stores into it at once. */
static VH_ALWAYS_INLINE uint64_t vh_alloc_finish(Heap *h, uint64_t g, uint64_t n, uint64_t need, int gc_managed,
                                                 int caller_writes_first) {
    uint64_t start = (g + 1) << 3, foot = need << 3;
    *vh_hdr(h, start) = n | (gc_managed ? VH_HDR_GC : 0);
    /* zero whole payload granules (the padding past n is never readable).
     * Small objects get straight word stores: GCC turns a loop here into
     * `rep stos`, whose start-up costs more than a 16-byte object. */
    uint64_t *payload = (uint64_t *)(h->mem + start), words = need - 1;
    if (caller_writes_first) {
        vh_zero_after_first(payload, words);
    } else {
        switch (words) {
        case 8: payload[7] = 0; /* fall through */
        case 7: payload[6] = 0; /* fall through */
        case 6: payload[5] = 0; /* fall through */
        case 5: payload[4] = 0; /* fall through */
        case 4: payload[3] = 0; /* fall through */
        case 3: payload[2] = 0; /* fall through */
        case 2: payload[1] = 0; /* fall through */
        case 1: payload[0] = 0; break;
        default: memset(payload, 0, (size_t)(words << 3));
        }
    }
    vh_bm_set(h, g + 1);
    h->cache_lo = start;                        /* a new block is usually initialised next */
    h->cache_hi = start + n;
    h->nblocks += 1;
    h->used_bytes += foot;
    h->payload_bytes += n;
    if (gc_managed) {
        h->gc_blocks += 1;
        h->gc_bytes += foot;
        h->gc_since += foot;
    }
    h->stats.allocs += 1;
    h->mutations += 1;
    return start;
}

/* Allocate from the existing free regions only; 0 if none fits. The block is
 * zero-filled and becomes the cached one. */
static VH_ALWAYS_INLINE uint64_t vh_alloc_fit(Heap *h, uint64_t n, int gc_managed) {
    uint64_t need = vh_need_granules(n), g = vh_take(h, need);
    return g != 0 ? vh_alloc_finish(h, g, n, need, gc_managed, 0) : 0;
}

/* First fit (lowest-addressed free region that fits), split, zero-filled;
 * grows the arena when nothing fits; never collects. 0 on failure. */
VH_API uint64_t heap_alloc(Heap *h, uint64_t n, int gc_managed) {
    uint64_t a = 0;
    if (vh_alloc_possible(h, n) && !vh_fail_injected(h)) {
        a = vh_alloc_fit(h, n, gc_managed);
        if (a == 0 && vh_grow(h, vh_need_granules(n)) == 0) a = vh_alloc_fit(h, n, gc_managed);
    }
    if (a == 0) h->stats.failed_allocs += 1;
    return a;
}

/* Bookkeeping of a block leaving the live set by `free` (its tile is the
 * caller's; the sweep does the same for many blocks at once, vh_sweep). */
static inline void vh_release_block(Heap *h, uint64_t start, uint64_t hdr) {
    uint64_t n = hdr & VH_HDR_SIZE_MASK, foot = vh_hdr_foot(hdr) << 3;
    vh_bm_clear(h, start >> 3);
    h->mutations += 1;
    if (h->ptrmap != NULL && n >= 8) h->ptr_count -= vh_bits_clear(h->ptrmap, start, start + n - 7);
    h->nblocks -= 1;
    h->used_bytes -= foot;
    h->payload_bytes -= n;
    if (hdr & VH_HDR_GC) {
        h->gc_blocks -= 1;
        h->gc_bytes -= foot;
    }
}

/* Free a live block (GC-managed or not); anything else is a fault (-1). */
VH_API int heap_free(Heap *h, uint64_t addr) {
    if (!heap_is_block(h, addr)) return -1;     /* double free, interior pointer, 0, garbage */
    uint64_t hdr = *vh_hdr(h, addr);
    vh_release_block(h, addr, hdr);
    vh_region_add(h, (addr >> 3) - 1, vh_hdr_foot(hdr));
    heap_cache_reset(h);                        /* the freed block may be cached */
    h->stats.frees += 1;
    return 0;
}

#endif /* VH_ALLOC_H */
