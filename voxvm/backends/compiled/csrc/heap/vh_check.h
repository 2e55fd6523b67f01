/* vh_check.h - the heap's invariant checker (tests, fuzzers, debug builds).
 *
 * Owns heap_check: walks the tiles and compares everything the allocator
 * keeps on the side (accounting, the four bitmaps, the free-space bounds,
 * the pointer count, the lookup cache) with what the walk sees. The VM never
 * calls it; the test extension (_heaptest.pyx) does after every operation.
 */
#ifndef VH_CHECK_H
#define VH_CHECK_H

#include "vh_policy.h"

#define VH_FAIL(...) do { snprintf(buf, buflen, __VA_ARGS__); return -1; } while (0)
#define VH_ULL(x) ((unsigned long long)(x))

/* The tiles cover [8, capacity) exactly, and the bitmaps agree with them. */
static int vh_check_tiles(Heap *h, char *buf, size_t buflen, uint64_t *blocks_out, uint64_t *nfree_out) {
    uint64_t G = h->capacity >> 3, g = 1, j, fg;
    uint64_t used = 0, payload = 0, gcb = 0, gcbytes = 0, blocks = 0, freeb = 0, nfree = 0, ptrs = 0;
    int prev_free = 0, shortcut_seen = 0;
    while (g < G) {
        int shortcut = h->fit_len != 0 && g == h->fit_hint;   /* a free region outside the index */
        if (shortcut || vh_bit_test(h->rstarts, g)) {
            if (shortcut && vh_bit_test(h->rstarts, g))
                VH_FAIL("the shortcut region at 0x%llx has a region-start bit", VH_ULL(g << 3));
            fg = shortcut ? h->fit_len : vh_rlen(h, g);
            if (fg == 0 || fg > G - g)
                VH_FAIL("free region at 0x%llx has bad length %llu granules", VH_ULL(g << 3), VH_ULL(fg));
            if (prev_free) VH_FAIL("two adjacent free regions at 0x%llx", VH_ULL(g << 3));
            for (j = g; j < g + fg; j++)
                if ((j != g && vh_bit_test(h->rstarts, j)) || (j + 1 < G && vh_bm_test(h, j + 1) && j + 1 < g + fg))
                    VH_FAIL("region or block start inside free region 0x%llx", VH_ULL(g << 3));
            nfree += !shortcut;
            shortcut_seen |= shortcut;
            freeb += fg << 3;
            prev_free = 1;
        } else {
            if (g + 1 >= G || !vh_bm_test(h, g + 1))
                VH_FAIL("granule 0x%llx starts neither a block nor a free region", VH_ULL(g << 3));
            uint64_t start = (g + 1) << 3, hdr = *vh_hdr(h, start), n = hdr & VH_HDR_SIZE_MASK;
            fg = vh_hdr_foot(hdr);
            if ((hdr & ~(VH_HDR_SIZE_MASK | VH_HDR_GC)) != 0)
                VH_FAIL("bad header 0x%llx of block 0x%llx", VH_ULL(hdr), VH_ULL(start));
            if (fg > G - g) VH_FAIL("block 0x%llx (size %llu) runs past the arena end", VH_ULL(start), VH_ULL(n));
            for (j = g + 1; j < g + fg; j++)
                if (vh_bit_test(h->rstarts, j) || (j > g + 1 && vh_bm_test(h, j)))
                    VH_FAIL("region or block start inside block 0x%llx", VH_ULL(start));
            if (h->ptrmap != NULL && n >= 8) ptrs += vh_bits_count(h->ptrmap, start, start + n - 7);
            blocks += 1;
            used += fg << 3;
            payload += n;
            if (hdr & VH_HDR_GC) {
                gcb += 1;
                gcbytes += fg << 3;
            }
            prev_free = 0;
        }
        g += fg;
    }
    if (g != G) VH_FAIL("tiles end at 0x%llx, arena at 0x%llx", VH_ULL(g << 3), VH_ULL(h->capacity));
    if (h->fit_len != 0 && !shortcut_seen)
        VH_FAIL("the shortcut region at 0x%llx does not start a tile", VH_ULL(h->fit_hint << 3));
    if (blocks != h->nblocks || used != h->used_bytes || payload != h->payload_bytes || gcb != h->gc_blocks ||
        gcbytes != h->gc_bytes || nfree != h->nfree || used + freeb != h->capacity - 8)
        VH_FAIL("accounting: blocks %llu/%llu used %llu/%llu payload %llu/%llu gc %llu/%llu "
                "gcbytes %llu/%llu free regions %llu/%llu free bytes %llu",
                VH_ULL(blocks), VH_ULL(h->nblocks), VH_ULL(used), VH_ULL(h->used_bytes), VH_ULL(payload),
                VH_ULL(h->payload_bytes), VH_ULL(gcb), VH_ULL(h->gc_blocks), VH_ULL(gcbytes), VH_ULL(h->gc_bytes),
                VH_ULL(nfree), VH_ULL(h->nfree), VH_ULL(freeb));
    /* pointers: all inside live blocks (wholly), and counted */
    if (h->ptrmap == NULL) {
        if (h->ptr_count != 0) VH_FAIL("ptr_count %llu without a pointer map", VH_ULL(h->ptr_count));
    } else {
        uint64_t total = vh_bits_count(h->ptrmap, 0, ((h->capacity + 63) >> 6) << 6);   /* whole words */
        if (total != ptrs || ptrs != h->ptr_count)
            VH_FAIL("pointer map: %llu bits, %llu inside blocks, count %llu", VH_ULL(total), VH_ULL(ptrs),
                    VH_ULL(h->ptr_count));
    }
    *blocks_out = blocks;
    *nfree_out = nfree;
    return 0;
}

/* The bitmaps hold exactly the starts the walk saw; the upper levels and the
 * free-space summaries agree with the levels below. */
static int vh_check_indexes(Heap *h, char *buf, size_t buflen, uint64_t blocks, uint64_t nfree) {
    uint64_t n = 0, m = 0, j, c, w, fg;
    for (j = 0; j < h->level_words[0]; j++) {
        n += (uint64_t)vh_popcount64(h->levels[0][j]);
        m += (uint64_t)vh_popcount64(h->rstarts[j]);
        if (h->marks[j] != 0) VH_FAIL("mark bits left in word %llu outside a collection", VH_ULL(j));
    }
    if (n != blocks || m != nfree)
        VH_FAIL("bitmaps: %llu block starts for %llu blocks, %llu region starts for %llu regions", VH_ULL(n),
                VH_ULL(blocks), VH_ULL(m), VH_ULL(nfree));
    for (int lv = 1; lv < h->nlevels; lv++)
        for (j = 0; j < h->level_words[lv - 1]; j++)
            if ((uint64_t)vh_bit_test(h->levels[lv], j) != (h->levels[lv - 1][j] != 0))
                VH_FAIL("block bitmap level %d bit %llu disagrees with the level below", lv, VH_ULL(j));
    if (h->level_words[h->nlevels - 1] != 1 || h->sum_words[h->nsums - 1] != 1)
        VH_FAIL("a top level has more than one entry");
    /* chunk bounds >= chunk maxima, parents = max of children */
    for (c = 0; c < h->sum_words[0]; c++) {
        for (m = 0, w = h->rstarts[c]; w != 0; w &= w - 1)
            if ((fg = vh_rlen(h, (c << 6) | (uint64_t)vh_ctz64(w))) > m) m = fg;
        if (h->sums[0][c] < m)
            VH_FAIL("chunk %llu bound %u below its longest region %llu", VH_ULL(c), h->sums[0][c], VH_ULL(m));
    }
    for (int lv = 1; lv < h->nsums; lv++) {
        for (j = 0; j < h->sum_words[lv]; j++) {
            uint32_t sm = 0;
            uint64_t end = (j << 4) + HEAP_SUM_FANOUT < h->sum_words[lv - 1] ? (j << 4) + HEAP_SUM_FANOUT
                                                                            : h->sum_words[lv - 1];
            for (c = j << 4; c < end; c++)
                if (h->sums[lv - 1][c] > sm) sm = h->sums[lv - 1][c];
            if (h->sums[lv][j] != sm)
                VH_FAIL("summary level %d entry %llu is %u, children say %u", lv, VH_ULL(j), h->sums[lv][j], sm);
        }
    }
    return 0;
}

/* Both entries of the lookup cache, unless empty, name a live block exactly. */
static int vh_check_cache(Heap *h, char *buf, size_t buflen) {
    for (int i = 0; i < 2; i++) {
        uint64_t lo = i ? h->long_lo : h->cache_lo, hi = i ? h->long_hi : h->cache_hi;
        if (lo <= hi && (heap_block_size(h, lo) < 0 || lo + (uint64_t)heap_block_size(h, lo) != hi))
            VH_FAIL("lookup cache [0x%llx, 0x%llx) is not a live block", VH_ULL(lo), VH_ULL(hi));
    }
    return 0;
}

/* The first-fit shortcut (Heap.fit_hint), when it holds a region: the tile
 * walk found that region free (vh_check_tiles); it lies inside the arena, and
 * every region below it is shorter than fit_hint_need (so taking it is first
 * fit). */
static int vh_check_shortcut(Heap *h, char *buf, size_t buflen) {
    uint64_t g = h->fit_hint, G = h->capacity >> 3, j;
    if (h->fit_len == 0) return 0;
    if (g == 0 || g >= G || h->fit_len > G - g)
        VH_FAIL("first-fit shortcut: %llu granules at granule %llu, outside the arena", VH_ULL(h->fit_len), VH_ULL(g));
    for (j = 1; j < g; j++)
        if (vh_bit_test(h->rstarts, j) && vh_rlen(h, j) >= h->fit_hint_need)
            VH_FAIL("first-fit shortcut at granule %llu, but the region at %llu fits %llu granules", VH_ULL(g),
                    VH_ULL(j), VH_ULL(h->fit_hint_need));
    return 0;
}

/* 0 if every invariant holds; otherwise -1 and a message in buf. */
VH_API int heap_check(Heap *h, char *buf, size_t buflen) {
    uint64_t blocks = 0, nfree = 0;
    buf[0] = 0;
    if (h->mem == NULL) return 0;
    if ((h->capacity & 7) || h->capacity < 8 || h->capacity > h->limit)
        VH_FAIL("capacity %llu is not a multiple of 8 within the limit", VH_ULL(h->capacity));
    if (vh_check_tiles(h, buf, buflen, &blocks, &nfree)) return -1;
    if (vh_check_indexes(h, buf, buflen, blocks, nfree)) return -1;
    if (vh_check_shortcut(h, buf, buflen)) return -1;
    return vh_check_cache(h, buf, buflen);
}

#undef VH_FAIL
#undef VH_ULL

#endif /* VH_CHECK_H */
