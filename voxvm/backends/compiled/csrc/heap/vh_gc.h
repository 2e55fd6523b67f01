/* vh_gc.h - the precise mark-sweep collector.
 *
 * Owns heap_collect: reading the roots (HeapRootSpans: the caller's arrays of
 * tagged values, plus every live allocr_nogc block), marking through the
 * pointer map with a bounded mark stack (rescanning when it overflows), and
 * the sweep, which walks the tiles in address order, frees unmarked
 * GC-managed blocks and merges free runs into single regions. Marks live in
 * the block headers. When to collect is vh_policy.h's business.
 */
#ifndef VH_GC_H
#define VH_GC_H

#include "vh_alloc.h"

/* Mark the block starting at v (if v is a live block start) and queue it. */
static inline void vh_mark_value(Heap *h, uint64_t v) {
    if ((v & 7) != 0 || v < HEAP_FIRST_ADDRESS || v >= h->capacity || !vh_bm_test(h, v >> 3))
        return;                                 /* interior pointers keep nothing alive */
    uint64_t *hp = vh_hdr(h, v);
    if (*hp & VH_HDR_MARK) return;
    *hp |= VH_HDR_MARK;
    if (h->mark_top == h->mark_cap) {
        uint64_t cap = h->mark_cap != 0 ? h->mark_cap * 2 : 1024, *grown = NULL;
        if (cap > HEAP_MARK_STACK_MAX) cap = HEAP_MARK_STACK_MAX;
        if (cap > h->mark_cap) grown = (uint64_t *)realloc(h->mark_stack, (size_t)(cap * 8));
        if (grown == NULL) {
            h->mark_overflow = 1;               /* found again by the rescan */
            return;
        }
        h->mark_stack = grown;
        h->mark_cap = cap;
    }
    h->mark_stack[h->mark_top++] = v;
}

/* Mark everything the pointers recorded inside this block point to. */
static void vh_scan_block(Heap *h, uint64_t start) {
    uint64_t n = *vh_hdr(h, start) & VH_HDR_SIZE_MASK;
    if (h->ptrmap == NULL || n < 8) return;
    uint64_t lo = start, hi = start + n - 7;    /* pointer starts lie in [lo, hi) */
    uint64_t wl = lo >> 6, wh = (hi - 1) >> 6;
    for (uint64_t wi = wl; wi <= wh; wi++) {
        uint64_t w = h->ptrmap[wi];
        if (wi == wl) w &= VH_ALL << (lo & 63);
        if (wi == wh) w &= VH_ALL >> (63 - ((hi - 1) & 63));
        for (; w != 0; w &= w - 1)
            vh_mark_value(h, vh_load_be64(h->mem + ((wi << 6) | (uint64_t)vh_ctz64(w))));
    }
}

static void vh_drain(Heap *h) {
    while (h->mark_top != 0) vh_scan_block(h, h->mark_stack[--h->mark_top]);
}

/* The tag of root candidate i, read at the span's tag width. */
static inline uint64_t vh_root_tag(const HeapRootSpan *span, size_t i) {
    const uint8_t *p = span->tags + i * span->tag_stride;
    if (span->tag_size == 1) return *p;
    uint64_t t;
    memcpy(&t, p, 8);
    return t;
}

static void vh_mark_roots(Heap *h, const HeapRootSpan *roots, size_t nroots) {
    for (size_t r = 0; r < nroots; r++) {
        const HeapRootSpan *span = &roots[r];
        for (size_t i = 0; i < span->count; i++) {
            if (span->tags == NULL || vh_root_tag(span, i) == HEAP_TAG_ADDRESS) {
                uint64_t v;
                memcpy(&v, span->values + i * span->value_stride, 8);
                vh_mark_value(h, v);
            }
        }
        vh_drain(h);
    }
}

/* Scan every live block whose header matches `want` under `mask` (and is not
 * free), marking it first when `mark` is set. */
static void vh_scan_blocks(Heap *h, uint64_t mask, uint64_t want, int mark) {
    uint64_t G = h->capacity >> 3, g = 1;
    while (g < G) {
        if (vh_bit_test(h->rstarts, g)) {
            g += vh_rlen(h, g);
            continue;
        }
        uint64_t start = (g + 1) << 3, hdr = *vh_hdr(h, start);
        if ((hdr & mask) == want) {
            if (mark) *vh_hdr(h, start) = hdr | VH_HDR_MARK;
            vh_scan_block(h, start);
            vh_drain(h);
        }
        g += vh_hdr_foot(hdr);
    }
}

/* The sweep found the free run [g, g+length): record it as one region. Also
 * drops the pointers of the blocks freed into it, all at once: pointers lie
 * inside blocks, so the run holds no other recorded pointer. */
static inline void vh_sweep_emit(Heap *h, uint64_t g, uint64_t length) {
    h->fit_hint = 0;
    if (h->ptrmap != NULL) h->ptr_count -= vh_bits_clear(h->ptrmap, g << 3, (g + length) << 3);
    if (!vh_bit_test(h->rstarts, g)) {
        vh_bit_set(h->rstarts, g);
        h->nfree += 1;
    }
    vh_rlen_set(h, g, length);
    vh_sum_raise(h, g >> 6, length);
}

/* Sweep in address order, merging free runs as it goes; the number of
 * blocks and payload bytes freed, and the blocks left marked. A dead block's
 * bookkeeping is batched: its block-start bit is gathered per level-0 word
 * and cleared with the word's other dead blocks, and the heap's counters are
 * updated once at the end (nothing reads them during the sweep). Only
 * GC-managed blocks die here. */
static void vh_sweep(Heap *h, uint64_t *freed_blocks, uint64_t *freed_bytes, uint64_t *marked) {
    uint64_t G = h->capacity >> 3, g = 1, run_start = 0, run_len = 0;
    uint64_t dead = 0, dead_bytes = 0, dead_granules = 0, live_marked = 0;
    uint64_t clear_word = 0, clear_mask = 0;    /* dead starts of level-0 word clear_word, not yet cleared */
    while (g < G) {
        if (vh_bit_test(h->rstarts, g)) {       /* a free region */
            uint64_t fl = vh_rlen(h, g);
            if (run_start == 0) {               /* it starts the run: keeps its bit */
                run_start = g;
                run_len = fl;
            } else {                            /* swallowed by the open run */
                vh_bit_clear(h->rstarts, g);
                h->nfree -= 1;
                run_len += fl;
            }
            g += fl;
            continue;
        }
        uint64_t *hp = (uint64_t *)(h->mem + (g << 3)), hdr = *hp, fg = vh_hdr_foot(hdr);   /* the header of the block at g+1 */
        if ((hdr & (VH_HDR_GC | VH_HDR_MARK)) == VH_HDR_GC) {   /* unreached: dead */
            uint64_t b = g + 1;
            if ((b >> 6) != clear_word) {
                if (clear_mask != 0) vh_bm_clear_word(h, clear_word, clear_mask);
                clear_word = b >> 6;
                clear_mask = 0;
            }
            clear_mask |= (uint64_t)1 << (b & 63);
            dead += 1;
            dead_bytes += hdr & VH_HDR_SIZE_MASK;
            dead_granules += fg;
            if (run_start == 0) {
                run_start = g;
                run_len = 0;
            }
            run_len += fg;
        } else {
            if (hdr & VH_HDR_MARK) {
                live_marked += 1;
                *hp = hdr & ~VH_HDR_MARK;
            }
            if (run_start != 0) {
                vh_sweep_emit(h, run_start, run_len);
                run_start = 0;
            }
        }
        g += fg;
    }
    if (run_start != 0) vh_sweep_emit(h, run_start, run_len);
    if (clear_mask != 0) vh_bm_clear_word(h, clear_word, clear_mask);
    /* vh_release_block's counters, for all of them */
    h->nblocks -= dead;
    h->gc_blocks -= dead;
    h->used_bytes -= dead_granules << 3;
    h->gc_bytes -= dead_granules << 3;
    h->payload_bytes -= dead_bytes;
    *freed_blocks += dead;
    *freed_bytes += dead_bytes;
    *marked += live_marked;
}

/* Precise mark-sweep from the given roots (plus every live allocr_nogc
 * block). Returns the number of blocks freed. */
VH_API VH_NOINLINE uint64_t heap_collect(Heap *h, const HeapRootSpan *roots, size_t nroots) {
    uint64_t t0 = vh_now_ns(), freed_blocks = 0, freed_bytes = 0, marked = 0;
    if (h->mem == NULL) return 0;
    h->mark_top = 0;
    h->mark_overflow = 0;
    vh_mark_roots(h, roots, nroots);            /* registers and stack entries tagged 8 */
    if (h->nblocks > h->gc_blocks)              /* every live allocr_nogc block is a root (docs/heap.md) */
        vh_scan_blocks(h, VH_HDR_GC | VH_HDR_MARK, 0, 1);
    while (h->mark_overflow) {                  /* the mark stack overflowed: rescan until nothing new */
        h->mark_overflow = 0;
        vh_scan_blocks(h, VH_HDR_MARK, VH_HDR_MARK, 0);
    }
    vh_sweep(h, &freed_blocks, &freed_bytes, &marked);
    heap_cache_reset(h);                        /* cached blocks may have died */
    /* policy and statistics */
    h->gc_since = 0;
    h->gc_threshold = vh_max_u64(h->gc_floor, h->gc_bytes);
    h->stats.collections += 1;
    h->stats.last_marked = marked;
    h->stats.last_freed_blocks = freed_blocks;
    h->stats.last_freed_bytes = freed_bytes;
    h->stats.last_live_bytes = h->payload_bytes;
    h->stats.freed_blocks_total += freed_blocks;
    h->stats.freed_bytes_total += freed_bytes;
    h->stats.last_ns = vh_now_ns() - t0;
    h->stats.gc_ns_total += h->stats.last_ns;
    return freed_blocks;
}

#endif /* VH_GC_H */
