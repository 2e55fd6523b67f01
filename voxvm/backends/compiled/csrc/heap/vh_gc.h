/* vh_gc.h - the precise mark-sweep collector.
 *
 * Owns heap_collect: reading the roots (HeapRootSpans: the caller's arrays of
 * tagged values, plus every live allocr_nogc block), marking through the
 * pointer map with a bounded mark stack (rescanning when it overflows), and
 * the sweep, which frees the unmarked GC-managed blocks and merges free runs
 * into single regions word by word over the bitmaps, without reading a
 * block. Marks live in a bitmap beside the block-start bitmap (Heap.marks);
 * the mark phase also counts what survives, so the sweep needs no header.
 * When to collect is vh_policy.h's business.
 */
#ifndef VH_GC_H
#define VH_GC_H

#include "vh_alloc.h"

/* How many links ahead of the list node being scanned vh_drain prefetches,
 * guessing that the nodes lie one stride apart (as nodes allocated one after
 * another do), when the link just followed spans less than
 * VH_MARK_STRIDE_MAX bytes either way (so a list in random order, or a tree,
 * is rarely prefetched at random). The hardware's own prefetcher did not
 * follow a list far enough ahead on an Intel host (4.3 ns a link at 10^6
 * nodes; 2.6 ns from 64 links on, the same for 128 and 256); 8-32 links were
 * slower on an AMD one (docs/performance.md "Prefetching a list's nodes"). */
#define VH_MARK_PREFETCH_LINKS 64
#define VH_MARK_STRIDE_MAX 256

/* The mark phase's working state. The loops copy it into a local and write
 * it back when they end, so that the compiler keeps it in registers: as
 * Heap fields, every store into the mark bitmap or the mark stack (uint64_t
 * stores that might alias them, for all the compiler knows) forced a reload
 * of the stack top, the arena and the counters. */
typedef struct VhMarker {
    uint8_t *mem;
    const uint64_t *starts;      /* level 0 of the block-start bitmap */
    uint64_t *marks;
    const uint64_t *ptrmap;      /* NULL: no block holds a pointer */
    uint64_t glimit;             /* granules that can start a block, minus 2: (capacity - 16) / 8 */
    uint64_t *stack, top, cap;
    uint64_t payload;            /* sizes n of the blocks scanned */
    uint64_t ptrs;               /* pointers found in the blocks scanned */
} VhMarker;

/* Double the mark stack (at most HEAP_MARK_STACK_MAX entries); NULL when it
 * cannot grow (the caller sets overflow and the block is found by a rescan). */
static VH_NOINLINE uint64_t *vh_mark_stack_grow(Heap *h) {
    uint64_t cap = h->mark_cap != 0 ? h->mark_cap * 2 : 1024, *grown;
    if (cap > HEAP_MARK_STACK_MAX) cap = HEAP_MARK_STACK_MAX;
    if (cap <= h->mark_cap || (grown = (uint64_t *)realloc(h->mark_stack, (size_t)(cap * 8))) == NULL) return NULL;
    h->mark_stack = grown;
    h->mark_cap = cap;
    return grown;
}

/* Mark the block starting at v if v is a live block start not marked yet;
 * 1 when it did. Rotating v - 16 right by 3 turns a multiple of 8 into its
 * granule minus 2 and anything else into a number >= 2^61, so one compare
 * rejects null, unaligned and out-of-arena values; the mark is a bit beside
 * the block-start bit, so "a live, unmarked block start?" is one test of two
 * words of the same index (only block starts are ever marked, so starts ^
 * marks are the unmarked starts: one operation less than starts & ~marks).
 * The block itself is not touched here. */
static VH_ALWAYS_INLINE int vh_mark_new(const uint64_t *starts, uint64_t *marks, uint64_t glimit, uint64_t v) {
    uint64_t x = v - HEAP_FIRST_ADDRESS, gi = (x >> 3) | (x << 61);
    if (gi >= glimit) return 0;                 /* null, unaligned, outside the arena */
    uint64_t g = gi + 2, wi = g >> 6, bit = (uint64_t)1 << (g & 63), m = marks[wi];
    if (((starts[wi] ^ m) & bit) == 0) return 0;   /* interior, stale, garbage, or marked */
    marks[wi] = m | bit;
    return 1;
}

/* Queue the marked block v; on a full stack that cannot grow, set overflow
 * (the block is found again by the rescan: rare, so kept out of the loops). */
static VH_ALWAYS_INLINE void vh_mark_push(Heap *h, uint64_t **stack, uint64_t *top, uint64_t *cap, uint64_t v) {
    if (VH_UNLIKELY(*top == *cap)) {
        uint64_t *grown = vh_mark_stack_grow(h);
        if (grown == NULL) {
            h->mark_overflow = 1;
            return;
        }
        *stack = grown;
        *cap = h->mark_cap;
    }
    (*stack)[(*top)++] = v;
}

/* Mark the block starting at v (if v is a live block start not marked yet)
 * and queue it. */
static VH_ALWAYS_INLINE void vh_mark_value(Heap *h, VhMarker *mk, uint64_t v) {
    if (vh_mark_new(mk->starts, mk->marks, mk->glimit, v)) vh_mark_push(h, &mk->stack, &mk->top, &mk->cap, v);
}

/* The pointer-map bits [start, start + 64) of an 8-aligned start: on a
 * little-endian host the 8 bytes at byte start / 8 of the map (the map has a
 * word of padding, vh_pm_words); elsewhere two words shifted. */
static VH_ALWAYS_INLINE uint64_t vh_pm_window(const uint64_t *pm, uint64_t start) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, (const uint8_t *)pm + (start >> 3), 8);
    return w;
#else
    uint64_t wi = start >> 6, sh = start & 63;
    return sh == 0 ? pm[wi] : (pm[wi] >> sh) | (pm[wi + 1] << (64 - sh));
#endif
}

/* Count the block at start (its size n) and mark everything the pointers
 * recorded inside it point to. Pointer starts lie in [start, start + n - 7);
 * for a block of up to 70 bytes (the usual small object) they are one
 * 64-bit window of the map. */
static VH_ALWAYS_INLINE void vh_scan_block(Heap *h, VhMarker *mk, uint64_t start) {
    uint64_t n = *(const uint64_t *)(mk->mem + start - 8) & VH_HDR_SIZE_MASK, cnt, w;
    const uint64_t *pm = mk->ptrmap;            /* (not NULL: see vh_drain) */
    mk->payload += n;
    if (n < 8) return;
    cnt = n - 7;
    if (VH_LIKELY(cnt < 64)) {
        for (w = vh_pm_window(pm, start) & (((uint64_t)1 << cnt) - 1); w != 0; w &= w - 1) {
            mk->ptrs += 1;
            vh_mark_value(h, mk, vh_load_be64(mk->mem + start + (unsigned)vh_ctz64(w)));   /* (no sign extension) */
        }
        return;
    }
    uint64_t lo = start, hi = start + cnt;
    uint64_t wl = lo >> 6, wh = (hi - 1) >> 6;
    for (uint64_t wi = wl; wi <= wh; wi++) {
        w = pm[wi];
        if (wi == wl) w &= VH_ALL << (lo & 63);
        if (wi == wh) w &= VH_ALL >> (63 - ((hi - 1) & 63));
        for (; w != 0; w &= w - 1) {
            mk->ptrs += 1;
            vh_mark_value(h, mk, vh_load_be64(mk->mem + ((wi << 6) | (uint64_t)vh_ctz64(w))));
        }
    }
}

/* Scan the queued blocks until none is left. The usual block (at most 70
 * bytes: its pointers are one window of the map) is scanned here with the
 * state in locals: its pointers but the last are marked and queued, and the
 * block its last pointer newly marks is scanned next without going through
 * the stack, so a list is followed link by link. Larger blocks take
 * vh_scan_block.
 *
 * Following a list is bound by latency, not instructions: each link's
 * address comes from a load whose address came from the previous one. So
 * the loop expects a block's one pointer at the same offset t as the
 * previous block's last pointer (the nodes of a list have one layout): the
 * address of the word it loads then does not wait for the block's header and
 * pointer map, only a well-predicted branch does (w == tbit), so the
 * processor loads the next link while the check runs: a link costs one
 * dependent load instead of three (header and map window, then the word at
 * the window's first bit). When the layout differs the block is scanned as
 * usual (the same marks and counts) and its last pointer's offset becomes t.
 *
 * With the load off the chain, the loop is bound by its instructions, so it
 * also expects the previous block's header word: a block with exactly that
 * header has the same size and map mask, and its size and pointer are
 * counted in k (added to the totals when the header changes and at the end)
 * instead of on each block. What the loop needs on every block stays in
 * locals, the rest in mk, so that the compiler keeps the loop's state in
 * registers. After a short link, the node VH_MARK_PREFETCH_LINKS links
 * further on at the same stride is prefetched, so that a list laid out in
 * allocation order streams in ahead of the chain.
 * (Measured: docs/performance.md "Marking a list at the speed of its loads"
 * and "The marking loop's instructions".) */
static void vh_drain(Heap *h, VhMarker *mkp) {
    VhMarker mk = *mkp;
    if (mk.ptrmap == NULL) {                    /* no block holds a pointer: count them only */
        while (mk.top != 0) mk.payload += *(const uint64_t *)(mk.mem + mk.stack[--mk.top] - 8) & VH_HDR_SIZE_MASK;
        *mkp = mk;
        return;
    }
    uint8_t *mem = mk.mem;
    const uint64_t *starts = mk.starts, *pm = mk.ptrmap;
    uint64_t *marks = mk.marks, *stack = mk.stack, top = mk.top;
    uint64_t glimit = mk.glimit;
    uint64_t tbit = (uint64_t)1 << 8;           /* the guess: an offset's map bit */
    const uint8_t *memt = mem + 8;              /* ... and mem + the offset */
    uint64_t ehdr = 0, emask = 0, k = 0;        /* the expected header, its map mask, blocks seen with it */
    while (top != 0) {
        uint64_t v = stack[--top];
        if (top != 0) VH_PREFETCH(mem + stack[top - 1] - 8);   /* the next queued block's header */
        for (;;) {
            uint64_t hdr = *(const uint64_t *)(mem + v - 8), w, c;
            if (VH_UNLIKELY(hdr != ehdr)) {
                uint64_t n = hdr & VH_HDR_SIZE_MASK;
                if (VH_UNLIKELY(n - 8 > 70 - 8)) {  /* no room for a pointer, or a larger block */
                    if (n >= 8) {               /* the general scan (it counts n) */
                        mk.stack = stack; mk.top = top;
                        vh_scan_block(h, &mk, v);
                        stack = mk.stack; top = mk.top;
                    } else {
                        mk.payload += n;
                    }
                    break;
                }
                mk.payload += (ehdr & VH_HDR_SIZE_MASK) * k;
                mk.ptrs += k;
                k = 0;
                ehdr = hdr;
                emask = VH_ALL >> (71 - n);     /* its n - 7 bits */
            }
            k += 1;                             /* payload += n, ptrs += 1 (the pointer undone when w == 0) */
            w = vh_pm_window(pm, v) & emask;
            if (VH_UNLIKELY(w != tbit)) {       /* not exactly one pointer, at t */
                if (w == 0) {
                    mk.ptrs -= 1;
                    break;
                }
                for (; (w & (w - 1)) != 0; w &= w - 1) {   /* the pointers before the last: queued */
                    mk.ptrs += 1;
                    c = vh_load_be64(mem + v + (unsigned)vh_ctz64(w));
                    if (vh_mark_new(starts, marks, glimit, c)) vh_mark_push(h, &stack, &top, &mk.cap, c);
                }
                tbit = w;                       /* the last pointer's offset: the next guess */
                memt = mem + (unsigned)vh_ctz64(w);
            }
            c = vh_load_be64(memt + v);         /* the last pointer (inside the block: w has bit t) */
            if (!vh_mark_new(starts, marks, glimit, c)) break;
            /* a link to a nearby block: guess the list goes on with that
             * stride and fetch the node that many links ahead (a hint: an
             * address outside the arena is ignored; integer arithmetic
             * keeps it defined) */
            if (c - v + VH_MARK_STRIDE_MAX < 2 * VH_MARK_STRIDE_MAX)
                VH_PREFETCH((const void *)((uintptr_t)mem + c + (c - v) * VH_MARK_PREFETCH_LINKS));
            v = c;                              /* scanned next */
        }
    }
    mk.payload += (ehdr & VH_HDR_SIZE_MASK) * k;
    mk.ptrs += k;
    mk.stack = stack; mk.top = top;
    *mkp = mk;
}

/* After a rescan: the sizes of the marked blocks, each counted once. */
static void vh_recount_marked(Heap *h, VhMarker *mk) {
    uint64_t W = ((h->capacity >> 3) + 63) >> 6;
    mk->payload = 0;
    for (uint64_t wi = 0; wi < W; wi++)
        for (uint64_t bits = h->marks[wi]; bits != 0; bits &= bits - 1)
            mk->payload += *vh_hdr(h, ((wi << 6) | (uint64_t)vh_ctz64(bits)) << 3) & VH_HDR_SIZE_MASK;
}

/* The tag of root candidate i, read at the span's tag width. */
static inline uint64_t vh_root_tag(const HeapRootSpan *span, size_t i) {
    const uint8_t *p = span->tags + i * span->tag_stride;
    if (span->tag_size == 1) return *p;
    uint64_t t;
    memcpy(&t, p, 8);
    return t;
}

static void vh_mark_roots(Heap *h, VhMarker *mk, const HeapRootSpan *roots, size_t nroots) {
    for (size_t r = 0; r < nroots; r++) {
        const HeapRootSpan *span = &roots[r];
        for (size_t i = 0; i < span->count; i++) {
            if (span->tags == NULL || vh_root_tag(span, i) == HEAP_TAG_ADDRESS) {
                uint64_t v;
                memcpy(&v, span->values + i * span->value_stride, 8);
                vh_mark_value(h, mk, v);
            }
        }
        vh_drain(h, mk);
    }
}

/* Walk the live blocks by the block-start bitmap: with `manual`, mark and
 * scan every manual (allocr_nogc) block not marked yet (they are roots);
 * otherwise scan every marked block again (after a mark-stack overflow). */
static void vh_scan_blocks(Heap *h, VhMarker *mk, int manual) {
    uint64_t W = ((h->capacity >> 3) + 63) >> 6;
    for (uint64_t wi = 0; wi < W; wi++) {
        uint64_t bits = h->levels[0][wi] & (manual ? ~h->marks[wi] : h->marks[wi]);
        for (; bits != 0; bits &= bits - 1) {
            uint64_t start = ((wi << 6) | (uint64_t)vh_ctz64(bits)) << 3;
            if (manual) {
                if (*vh_hdr(h, start) & VH_HDR_GC) continue;
                vh_mark_value(h, mk, start);    /* unless a manual block before reached it */
            } else if (mk->ptrmap != NULL) {
                vh_scan_block(h, mk, start);    /* (recounted after the rescans) */
            }
            vh_drain(h, mk);
        }
    }
}

/* The sweep found the free run [g, end): record it as one region (its start
 * bit is the caller's). */
static inline void vh_sweep_emit(Heap *h, uint64_t g, uint64_t end) {
    vh_rlen_set(h, g, end - g);
    vh_sum_raise(h, g >> 6, end - g);
}

/* Drop the recorded pointers of the dead blocks in granules [g, end), all at
 * once: pointers lie inside blocks, so these granules hold no other one.
 * Only when some dead block holds a pointer (`forget`, see heap_collect). */
static inline void vh_sweep_forget(Heap *h, int forget, uint64_t g, uint64_t end) {
    if (forget && g < end) vh_bits_zero(h->ptrmap, g << 3, end << 3);
}

/* Sweep: free the unmarked blocks (only GC-managed blocks can be unmarked:
 * every manual block is a root) and rebuild the free regions, without
 * reading a block. Per level-0 word it derives the first granules of the
 * tiles from the bitmaps: a block starting at granule b has its header, the
 * first granule of its tile, at b-1, and a free region starts where its
 * rstarts bit is. A free run is a maximal sequence of tiles that are not
 * live blocks (dead blocks and old regions); it starts at the first such
 * tile after a live one and ends at the next live tile. So a word whose
 * tiles are all live outside a run, or none live inside one, costs a few
 * operations, and the work is the words plus one step per change between
 * live and free. Afterwards the runs are the only free regions (nfree), the
 * bitmaps hold the live blocks only and the marks are clear. Returns the
 * number of blocks freed; the counters come from the mark phase's totals. */
static uint64_t vh_sweep(Heap *h, const VhMarker *mk, int forget) {
    uint64_t G = h->capacity >> 3, W = (G + 63) >> 6, *S = h->levels[0], *M = h->marks, *R = h->rstarts;
    uint64_t run_start = 0, dirty = 0, free_granules = 0, runs = 0, dead = 0;   /* dirty: dead blocks from here */
    int in_run = 0;
    vh_settle_shortcut(h);                      /* regions appear and grow: first back into the index */
    for (uint64_t w = 0; w < W; w++) {
        uint64_t s = S[w], m = M[w], sn = w + 1 < W ? S[w + 1] : 0, mn = w + 1 < W ? M[w + 1] : 0;
        uint64_t d = s & ~m, dn = sn & ~mn;
        uint64_t live = ((s & m) >> 1) | ((sn & mn) << 63);   /* first granules of live tiles */
        uint64_t other = (d >> 1) | (dn << 63) | R[w];       /* ... of dead blocks and free regions */
        if (d != 0) {                           /* the dead blocks starting in this word */
            dead += (uint64_t)vh_popcount64(d);
            vh_bm_clear_word(h, w, d);
        }
        if (m != 0) M[w] = 0;
        uint64_t r = R[w];
        if (in_run ? (live | r) == 0 : other == 0) continue;   /* no change here: a run goes on, or live tiles do */
        uint64_t from = VH_ALL, starts = 0, base = w << 6;   /* from: the bits not passed yet */
        for (;;) {
            if (!in_run) {                      /* the first tile of a run */
                uint64_t x = other & from;
                if (x == 0) break;
                int p = vh_ctz64(x);
                run_start = base + (uint64_t)p;
                dirty = (r >> p) & 1 ? run_start + vh_rlen(h, run_start) : run_start;
                starts |= (uint64_t)1 << p;
                in_run = 1;
                from = VH_ALL << p << 1;
            } else {                            /* a live tile (the run's end) or an old region */
                uint64_t x = (live | r) & from;
                if (x == 0) break;
                int q = vh_ctz64(x);
                uint64_t g = base + (uint64_t)q;
                vh_sweep_forget(h, forget, dirty, g);   /* the dead blocks before it */
                from = VH_ALL << q << 1;
                if ((live >> q) & 1) {
                    vh_sweep_emit(h, run_start, g);
                    free_granules += g - run_start;
                    runs += 1;
                    in_run = 0;
                } else {
                    dirty = g + vh_rlen(h, g);  /* its granules hold no pointer */
                }
            }
        }
        R[w] = starts;
    }
    if (in_run) {
        vh_sweep_forget(h, forget, dirty, G);
        vh_sweep_emit(h, run_start, G);
        free_granules += G - run_start;
        runs += 1;
    }
    /* the counters: the survivors are exactly the marked blocks */
    uint64_t used = (G - 1 - free_granules) << 3;
    h->gc_bytes -= h->used_bytes - used;
    h->used_bytes = used;
    h->nblocks -= dead;
    h->gc_blocks -= dead;
    h->payload_bytes = mk->payload;
    h->nfree = runs;
    return dead;
}

/* Precise mark-sweep from the given roots (plus every live allocr_nogc
 * block). Returns the number of blocks freed. */
VH_API VH_NOINLINE uint64_t heap_collect(Heap *h, const HeapRootSpan *roots, size_t nroots) {
    uint64_t t0 = vh_now_ns(), freed_blocks, freed_bytes, payload_before = h->payload_bytes;
    if (h->mem == NULL) return 0;
    VhMarker mk = {h->mem, h->levels[0], h->marks, h->ptrmap, h->capacity >= 16 ? (h->capacity - 16) >> 3 : 0,
                   h->mark_stack, 0, h->mark_cap, 0, 0};
    int rescanned = 0;                          /* some blocks scanned twice: mk's sums are redone */
    h->mark_overflow = 0;
    vh_mark_roots(h, &mk, roots, nroots);       /* registers and stack entries tagged 8 */
    if (h->nblocks > h->gc_blocks)              /* every live allocr_nogc block is a root (docs/heap.md) */
        vh_scan_blocks(h, &mk, 1);
    while (h->mark_overflow) {                  /* the mark stack overflowed: rescan until nothing new */
        h->mark_overflow = 0;
        rescanned = 1;
        vh_scan_blocks(h, &mk, 0);
    }
    if (rescanned) vh_recount_marked(h, &mk);
    /* Without a rescan the marked blocks hold exactly mk.ptrs of the recorded
     * pointers; when that is all of them (ptr_count is exact, vh_check.h),
     * the dead blocks hold none and the sweep need not clear their part of
     * the map (about 3 M instructions per collection at bench_gc's L = 10^6,
     * whose garbage holds no pointer). */
    freed_blocks = vh_sweep(h, &mk, h->ptrmap != NULL && (rescanned || mk.ptrs != h->ptr_count));
    freed_bytes = payload_before - h->payload_bytes;
    /* the pointers left are those of the marked blocks (the sweep cleared the
     * others'); a rescan counted some twice, so then count the map */
    if (h->ptrmap != NULL)
        h->ptr_count = rescanned ? vh_bits_count(h->ptrmap, 0, ((h->capacity + 63) >> 6) << 6) : mk.ptrs;
    heap_cache_reset(h);                        /* cached blocks may have died */
    /* policy and statistics */
    h->gc_since = 0;
    h->gc_threshold = vh_max_u64(h->gc_floor, VH_GC_ROOM(h->gc_bytes));
    vh_quick_refresh(h);
    h->stats.collections += 1;
    h->stats.last_marked = h->nblocks;          /* every block left was marked */
    h->stats.last_freed_blocks = freed_blocks;
    h->stats.last_freed_bytes = freed_bytes;
    h->stats.last_live_bytes = h->payload_bytes;
    h->stats.last_heap_size = h->capacity - 8;
    h->stats.last_collection_grows = h->stats.grows;
    h->stats.freed_blocks_total += freed_blocks;
    h->stats.freed_bytes_total += freed_bytes;
    h->stats.last_ns = vh_now_ns() - t0;
    h->stats.gc_ns_total += h->stats.last_ns;
    return freed_blocks;
}

#endif /* VH_GC_H */
