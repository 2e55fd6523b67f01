/* vh_bitset.h - the heap's bitmaps, one helper family over uint64_t words.
 *
 * Owns the bit operations of the three bitmaps: region starts (h->rstarts,
 * flat), pointer map (h->ptrmap, flat, one bit per byte) and block starts
 * (h->levels, hierarchical: bit j of level i+1 says word j of level i is
 * non-zero, so "previous / next set bit" costs one word per level). The flat
 * helpers take the word array, not the Heap, so every bitmap shares them;
 * what a bit means is the caller's business.
 */
#ifndef VH_BITSET_H
#define VH_BITSET_H

#include "vh_types.h"

/* ------------------------------------------------------------------------
 * Flat bitsets */

static inline int vh_bit_test(const uint64_t *w, uint64_t i) { return (int)((w[i >> 6] >> (i & 63)) & 1); }
static inline void vh_bit_set(uint64_t *w, uint64_t i) { w[i >> 6] |= (uint64_t)1 << (i & 63); }
static inline void vh_bit_clear(uint64_t *w, uint64_t i) { w[i >> 6] &= ~((uint64_t)1 << (i & 63)); }

/* The bits of one word that lie in [lo, hi] (both inside that word). */
static inline uint64_t vh_word_mask(uint64_t lo, uint64_t hi) {
    return (VH_ALL << (lo & 63)) & (VH_ALL >> (63 - (hi & 63)));
}

/* Number of set bits in [lo, hi). */
static inline uint64_t vh_bits_count(const uint64_t *w, uint64_t lo, uint64_t hi) {
    if (lo >= hi) return 0;
    uint64_t wl = lo >> 6, wh = (hi - 1) >> 6, n;
    if (wl == wh) return (uint64_t)vh_popcount64(w[wl] & vh_word_mask(lo, hi - 1));
    n = (uint64_t)vh_popcount64(w[wl] & (VH_ALL << (lo & 63)));
    for (wl++; wl < wh; wl++) n += (uint64_t)vh_popcount64(w[wl]);
    return n + (uint64_t)vh_popcount64(w[wh] & (VH_ALL >> (63 - ((hi - 1) & 63))));
}

/* Clear the bits in [lo, hi); returns how many were set. Tests before it
 * writes: the pointer map calls this on every store once a pointer exists,
 * and usually nothing is there. */
static inline uint64_t vh_bits_clear(uint64_t *w, uint64_t lo, uint64_t hi) {
    if (lo >= hi) return 0;
    uint64_t wl = lo >> 6, wh = (hi - 1) >> 6, m, cleared = 0;
    if (wl == wh) {
        m = vh_word_mask(lo, hi - 1) & w[wl];
        if (m == 0) return 0;
        w[wl] &= ~m;
        return (uint64_t)vh_popcount64(m);
    }
    m = (VH_ALL << (lo & 63)) & w[wl];
    if (m != 0) { cleared = (uint64_t)vh_popcount64(m); w[wl] &= ~m; }
    for (wl++; wl < wh; wl++) {
        if (w[wl] != 0) { cleared += (uint64_t)vh_popcount64(w[wl]); w[wl] = 0; }
    }
    m = (VH_ALL >> (63 - ((hi - 1) & 63))) & w[wh];
    if (m != 0) { cleared += (uint64_t)vh_popcount64(m); w[wh] &= ~m; }
    return cleared;
}

/* Bits [pos, pos+cnt) (cnt 1..64) as the low cnt bits of a word. */
static inline uint64_t vh_bits_get(const uint64_t *w, uint64_t pos, uint64_t cnt) {
    uint64_t wi = pos >> 6, sh = pos & 63;
    uint64_t v = w[wi] >> sh;
    if (sh != 0 && sh + cnt > 64) v |= w[wi + 1] << (64 - sh);
    if (cnt < 64) v &= ((uint64_t)1 << cnt) - 1;
    return v;
}

/* Overwrite bits [pos, pos+cnt) (cnt 1..64) with the low cnt bits of v. */
static inline void vh_bits_put(uint64_t *w, uint64_t pos, uint64_t v, uint64_t cnt) {
    uint64_t wi = pos >> 6, sh = pos & 63;
    uint64_t mask = cnt == 64 ? VH_ALL : ((uint64_t)1 << cnt) - 1;
    v &= mask;
    w[wi] = (w[wi] & ~(mask << sh)) | (v << sh);
    if (sh != 0 && sh + cnt > 64) w[wi + 1] = (w[wi + 1] & ~(mask >> (64 - sh))) | (v >> (64 - sh));
}

/* Clear bits [lo, hi) without counting them (the caller recounts): the
 * partial words at both ends, whole words in between. */
static inline void vh_bits_zero(uint64_t *w, uint64_t lo, uint64_t hi) {
    if (lo >= hi) return;
    uint64_t wl = lo >> 6, wh = (hi - 1) >> 6;
    if (wl == wh) {
        w[wl] &= ~vh_word_mask(lo, hi - 1);
        return;
    }
    w[wl] &= ~(VH_ALL << (lo & 63));
    if (wh > wl + 1) memset(w + wl + 1, 0, (size_t)((wh - wl - 1) * 8));
    w[wh] &= ~(VH_ALL >> (63 - ((hi - 1) & 63)));
}

/* realloc a word array to `words` words, zeroing the new ones; NULL on failure. */
static inline uint64_t *vh_words_grow(uint64_t *old, uint64_t old_words, uint64_t words) {
    uint64_t *grown = (uint64_t *)realloc(old, (size_t)(words * 8));
    if (grown != NULL && words > old_words) memset(grown + old_words, 0, (size_t)((words - old_words) * 8));
    return grown;
}

/* ------------------------------------------------------------------------
 * The hierarchical block-start bitmap (h->levels) */

static inline int vh_bm_test(const Heap *h, uint64_t g) { return vh_bit_test(h->levels[0], g); }

/* Level 0's word wi became non-zero: say so in the levels above. */
static VH_NOINLINE void vh_bm_set_upper(Heap *h, uint64_t wi) {
    for (int lv = 1; lv < h->nlevels; lv++) {
        uint64_t *w = &h->levels[lv][wi >> 6], was = *w;
        *w = was | ((uint64_t)1 << (wi & 63));
        if (was != 0) return;            /* the levels above already say "non-zero" */
        wi >>= 6;
    }
}

/* (Called only with an arena, so level 0 exists: the usual case, a word that
 * already holds a start, is one read and one write, inline in allocations.) */
static VH_ALWAYS_INLINE void vh_bm_set(Heap *h, uint64_t g) {
    uint64_t *w = &h->levels[0][g >> 6], was = *w;
    *w = was | ((uint64_t)1 << (g & 63));
    if (VH_UNLIKELY(was == 0)) vh_bm_set_upper(h, g >> 6);
}

static inline void vh_bm_clear(Heap *h, uint64_t g) {
    for (int lv = 0; lv < h->nlevels; lv++) {
        uint64_t *w = &h->levels[lv][g >> 6];
        *w &= ~((uint64_t)1 << (g & 63));
        if (*w != 0) return;
        g >>= 6;
    }
}

/* Clear the level-0 bits `mask` of word wi at once (the sweep's dead blocks
 * of one word), then the levels above as vh_bm_clear does. */
static inline void vh_bm_clear_word(Heap *h, uint64_t wi, uint64_t mask) {
    uint64_t *w = &h->levels[0][wi];
    if ((*w &= ~mask) != 0) return;
    for (int lv = 1; lv < h->nlevels; lv++) {
        w = &h->levels[lv][wi >> 6];
        *w &= ~((uint64_t)1 << (wi & 63));
        if (*w != 0) return;
        wi >>= 6;
    }
}

/* Largest set bit <= g at level 0, or -1. */
static VH_NOINLINE int64_t vh_bm_prev(const Heap *h, uint64_t g) {
    int lv = 0;
    uint64_t pos = g, w;
    for (;;) {
        w = h->levels[lv][pos >> 6] & (VH_ALL >> (63 - (pos & 63)));
        if (w != 0) {
            pos = (pos & ~(uint64_t)63) | (uint64_t)(63 - vh_clz64(w));
            break;
        }
        if ((pos >> 6) == 0) return -1;
        pos = (pos >> 6) - 1;
        if (++lv >= h->nlevels) return -1;   /* cannot happen: the top level is one word */
    }
    while (lv > 0) {
        w = h->levels[--lv][pos];
        pos = (pos << 6) | (uint64_t)(63 - vh_clz64(w));
    }
    return (int64_t)pos;
}

/* Smallest set bit >= g at level 0, or -1. */
static int64_t vh_bm_next(const Heap *h, uint64_t g) {
    int lv = 0;
    uint64_t pos = g, w;
    for (;;) {
        if ((pos >> 6) >= h->level_words[lv]) return -1;
        w = h->levels[lv][pos >> 6] & (VH_ALL << (pos & 63));
        if (w != 0) {
            pos = (pos & ~(uint64_t)63) | (uint64_t)vh_ctz64(w);
            break;
        }
        pos = (pos >> 6) + 1;
        if (++lv >= h->nlevels) return -1;
    }
    while (lv > 0) {
        w = h->levels[--lv][pos];
        pos = (pos << 6) | (uint64_t)vh_ctz64(w);
    }
    return (int64_t)pos;
}

#endif /* VH_BITSET_H */
