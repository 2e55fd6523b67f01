/* vh_access.h - finding blocks and moving bytes: lookups, reads, writes,
 * copies and pointer tracking.
 *
 * Owns the block lookup cache (the Heap's cache_* fields), heap_find ("which
 * live block holds [addr, addr+n)?": the cached block, else level 0 of the
 * block-start bitmap and the header, else the upper bitmap levels), the queries on blocks, the data accesses with the `store` /
 * `load` semantics of the VM, and the pointer map's bookkeeping (record,
 * forget, carry along on copies). Everything the VM's fast paths need is
 * static inline so the dispatch loop compiles it into its handlers.
 */
#ifndef VH_ACCESS_H
#define VH_ACCESS_H

#include "vh_bitset.h"

/* ------------------------------------------------------------------------
 * The block lookup cache and heap_find */

static inline void heap_cache_reset(Heap *h) {
    h->cache_lo = h->long_lo = 1;
    h->cache_hi = h->long_hi = 0;
}

/* [addr, addr + n) inside the cached block? (The range test of the
 * conventions: valid exactly when it is inside the block.) */
static inline int heap_cached(const Heap *h, uint64_t addr, uint64_t n) {
    return addr >= h->cache_lo && addr <= h->cache_hi && n <= h->cache_hi - addr;
}

/* Blocks at least this long (bytes: a level-0 word's 64 granules) are the
 * long block when a lookup finds them far from their start. */
#define VH_LONG_BLOCK 512

/* The rest of heap_find_uncached, out of line: addresses outside
 * [16, capacity) (faults, and the end of the last block, valid for a count of
 * 0) and blocks whose start is not in addr's level-0 word and that are not the
 * long block found last (the upper bitmap levels). */
static VH_NOINLINE uint8_t *vh_find_far(Heap *h, uint64_t addr, uint64_t n) {
    if (addr < HEAP_FIRST_ADDRESS || addr > h->capacity) return NULL;
    /* addr == capacity is the end of the last block (valid for a count of 0);
     * no block starts at granule capacity/8, so look from the one below */
    uint64_t g = addr < h->capacity ? addr >> 3 : (addr >> 3) - 1, start, end;
    int64_t s = vh_bm_prev(h, g);
    if (s < 0) return NULL;
    start = (uint64_t)s << 3;
    end = start + (*vh_hdr(h, start) & VH_HDR_SIZE_MASK);
    /* A start in another word: a long block, kept for the next lookup that
     * misses its word. Not a short block that merely straddles a word
     * boundary (a field at the start of the next word): it would evict the
     * long block (e.g. an array accessed between small objects) and send both
     * here again and again. */
    if ((g >> 6) != ((uint64_t)s >> 6) && end - start >= VH_LONG_BLOCK) {
        h->long_lo = start;
        h->long_hi = end;
    }
    if (addr > end || n > end - addr) return NULL;
    h->cache_lo = start;
    h->cache_hi = end;
    return h->mem + addr;
}

/* heap_find without the cached block: the block that starts last at or below
 * addr. Usually that start is in the same level-0 word of the block-start
 * bitmap (64 granules): shifting the word so that addr's granule is its top
 * bit, the leading zeros are the distance from addr's granule down to the
 * start, so the lookup is a word, a bit scan and the header (inline in the
 * VM's load/store). A longer block is usually the long one found last (e.g.
 * an array walked slot by slot between other accesses); everything else is
 * vh_find_far. */
static VH_ALWAYS_INLINE uint8_t *heap_find_uncached(Heap *h, uint64_t addr, uint64_t n) {
    if (VH_LIKELY(addr >= HEAP_FIRST_ADDRESS && addr < h->capacity)) {
        uint64_t g = addr >> 3, w = h->levels[0][g >> 6] << (63 - (g & 63)), start, end;
        if (VH_LIKELY(w != 0)) {
            start = (g - (uint64_t)vh_clz64(w)) << 3;
            end = start + (*vh_hdr(h, start) & VH_HDR_SIZE_MASK);
            /* not inside the block that holds addr: for the loop's constant
             * counts (at most 8) one compare, since addr + n cannot wrap here */
            if (VH_CONSTANT_SMALL(n) ? VH_UNLIKELY(addr + n > end) : VH_UNLIKELY(addr > end || n > end - addr))
                return NULL;
            h->cache_lo = start;
            h->cache_hi = end;
            return h->mem + addr;
        }
        if (VH_CONSTANT_SMALL(n) ? addr >= h->long_lo && addr + n <= h->long_hi
                                 : addr >= h->long_lo && addr <= h->long_hi && n <= h->long_hi - addr) {
            h->cache_lo = h->long_lo;
            h->cache_hi = h->long_hi;
            return h->mem + addr;
        }
    }
    return vh_find_far(h, addr, n);
}

/* Pointer to the n bytes at addr if they lie inside one live block, else
 * NULL; the block becomes the cached one. */
static VH_ALWAYS_INLINE uint8_t *heap_find(Heap *h, uint64_t addr, uint64_t n) {
    if (heap_cached(h, addr, n)) return h->mem + addr;
    return heap_find_uncached(h, addr, n);
}

static inline int heap_is_block(const Heap *h, uint64_t addr) {
    return (addr & 7) == 0 && addr >= HEAP_FIRST_ADDRESS && addr < h->capacity && vh_bm_test(h, addr >> 3);
}

/* Size n of the live block starting at addr, or -1. */
static inline int64_t heap_block_size(Heap *h, uint64_t addr) {
    return heap_is_block(h, addr) ? (int64_t)(*vh_hdr(h, addr) & VH_HDR_SIZE_MASK) : -1;
}

static inline int heap_block_gc(Heap *h, uint64_t addr) {
    return heap_is_block(h, addr) && (*vh_hdr(h, addr) & VH_HDR_GC) != 0;
}

/* Smallest live block start > addr (pass 0 for the first), or 0: for dumps. */
static inline uint64_t heap_next_block(const Heap *h, uint64_t addr) {
    uint64_t g = (addr >> 3) + 1;
    if (h->mem == NULL || g >= (h->capacity >> 3)) return 0;
    int64_t r = vh_bm_next(h, g);
    return r > 0 ? (uint64_t)r << 3 : 0;
}

/* ------------------------------------------------------------------------
 * Pointer tracking (bit a of h->ptrmap: a pointer is recorded at address a) */

/* Words of the pointer map of an arena of `capacity` bytes: one bit per byte,
 * plus a zero word past the end, so that the collector can read the 64 bits
 * from any block start as one unaligned word (vh_gc.h, vh_scan_block). */
static inline uint64_t vh_pm_words(uint64_t capacity) { return ((capacity + 63) >> 6) + 1; }

static inline int vh_pm_ensure(Heap *h) {
    if (h->ptrmap == NULL) {
        h->ptrmap = (uint64_t *)calloc((size_t)vh_pm_words(h->capacity), 8);
        if (h->ptrmap == NULL) return -1;
    }
    return 0;
}

static VH_NOINLINE void vh_forget_pointers_in(Heap *h, uint64_t lo, uint64_t hi) {
    uint64_t cleared = vh_bits_clear(h->ptrmap, lo, hi);
    h->ptr_count -= cleared;
    h->mutations += cleared != 0;
}

/* Drop the pointers a write of [addr, addr+n) overlaps: a pointer at p covers
 * [p, p+8), so it overlaps iff addr-7 <= p < addr+n. */
static VH_ALWAYS_INLINE void heap_forget_pointers(Heap *h, uint64_t addr, uint64_t n) {
    if (n == 0 || h->ptrmap == NULL) return;
    uint64_t lo = addr >= 7 ? addr - 7 : 0, last = addr + n - 1;
    /* every plain store comes here once a pointer exists anywhere, and there
     * is usually none under it: one word answers that */
    if ((lo >> 6) == (last >> 6) && (h->ptrmap[lo >> 6] & vh_word_mask(lo, last)) == 0) return;
    vh_forget_pointers_in(h, lo, addr + n);
}

/* Call after writing [addr, addr+n) through a heap_find pointer. */
static inline void heap_note_write(Heap *h, uint64_t addr, uint64_t n) {
    if (h->ptrmap != NULL) heap_forget_pointers(h, addr, n);
}

/* A pointer whose overlap range [addr-7, addr+8) spans two map words (one
 * store in eight): the same as the one-word case of
 * vh_record_pointer_in_block, on the two words. */
static VH_NOINLINE void vh_record_pointer_straddling(Heap *h, uint64_t addr) {
    uint64_t wi = (addr - 7) >> 6, *pm = h->ptrmap;
    uint64_t m0 = VH_ALL << ((addr - 7) & 63), m1 = VH_ALL >> (63 - ((addr + 7) & 63));
    uint64_t old0 = pm[wi] & m0, old1 = pm[wi + 1] & m1;
    if (old0 != 0) h->ptr_count -= (uint64_t)vh_popcount64(old0);
    if (old1 != 0) h->ptr_count -= (uint64_t)vh_popcount64(old1);
    pm[wi] &= ~m0;
    pm[wi + 1] &= ~m1;
    vh_bit_set(pm, addr);
    h->ptr_count += 1;
}

/* Record a pointer at addr, whose 8 bytes the caller found inside a live
 * block (addr >= 16), when the pointer map exists. */
static VH_ALWAYS_INLINE void vh_record_pointer_mapped(Heap *h, uint64_t addr) {
    h->mutations += 1;                          /* even the same value again: see vh_policy.h */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (VH_LIKELY((addr & 7) == 0)) {
        /* An aligned pointer (the usual one): the 8 bytes of the map from
         * byte addr/8 - 1 hold bits [addr-8, addr+56), so the overlap range
         * [addr-7, addr+8) is always bits 1..15 of one unaligned word (never
         * two words to straddle) and ours is bit 8. (The map ends with a
         * padding word, vh_pm_words.) */
        uint8_t *p = (uint8_t *)h->ptrmap + (addr >> 3) - 1;
        uint64_t w, old;
        memcpy(&w, p, 8);
        old = w & 0xFFFEu;
        if (old != 0x100u) {                    /* (the same pointer slot again changes nothing) */
            if (old != 0) h->ptr_count -= (uint64_t)vh_popcount64(old);
            w = (w & ~(uint64_t)0xFFFEu) | 0x100u;
            memcpy(p, &w, 8);
            h->ptr_count += 1;
        }
        return;
    }
#endif
    uint64_t lo = addr - 7, wi = lo >> 6;
    if (VH_UNLIKELY(wi != ((addr + 7) >> 6))) {
        vh_record_pointer_straddling(h, addr);
        return;
    }
    /* The usual case, one word of the map: clear the pointers the 8 bytes
     * overlap and set ours in one read and write (a pointer stored over the
     * same pointer slot changes nothing). */
    uint64_t m = (uint64_t)0x7FFF << (lo & 63), bit = (uint64_t)1 << (addr & 63);   /* [addr-7, addr+8) */
    uint64_t w = h->ptrmap[wi], old = w & m;
    if (old != bit) {
        if (old != 0) h->ptr_count -= (uint64_t)vh_popcount64(old);
        h->ptrmap[wi] = (w & ~m) | bit;
        h->ptr_count += 1;
    }
}

/* The same, creating the map first if needed: 0, or -1 when the host cannot
 * provide it. */
static VH_ALWAYS_INLINE int vh_record_pointer_in_block(Heap *h, uint64_t addr) {
    if (VH_UNLIKELY(h->ptrmap == NULL) && vh_pm_ensure(h) != 0) return -1;
    vh_record_pointer_mapped(h, addr);
    return 0;
}

/* Record a pointer at the start of a block just allocated, when the map
 * exists: the bytes a pointer there overlaps, [addr-7, addr+8), are the header
 * (inside no block) and the fresh payload (carved from a free region, which
 * holds no recorded pointer), so no other pointer is there to forget. */
static VH_ALWAYS_INLINE void vh_record_pointer_fresh(Heap *h, uint64_t addr) {
    h->mutations += 1;
    vh_bit_set(h->ptrmap, addr);
    h->ptr_count += 1;
}

/* Record a pointer at addr (the 8 bytes [addr, addr+8) must be inside one live block). */
static inline int heap_record_pointer(Heap *h, uint64_t addr) {
    if (heap_find(h, addr, 8) == NULL) return -1;
    return vh_record_pointer_in_block(h, addr);
}

static inline int heap_has_pointer(const Heap *h, uint64_t addr) {
    return h->ptrmap != NULL && addr < h->capacity && vh_bit_test(h->ptrmap, addr);
}

/* Pointer bookkeeping of a memmove of n bytes from src to dst: pointers lying
 * wholly inside the source move along; every other pointer overlapping the
 * destination bytes is dropped. */
static void vh_pm_move(Heap *h, uint64_t dst, uint64_t src, uint64_t n) {
    uint64_t *pm = h->ptrmap;
    uint64_t lo = dst >= 7 ? dst - 7 : 0, before, m, off, c;
    if (pm == NULL || n == 0) return;
    before = vh_bits_count(pm, lo, dst + n);
    m = n >= 8 ? n - 7 : 0;                     /* candidate pointer starts [src, src+m) */
    if (m != 0 && vh_bits_count(pm, src, src + m) == 0) m = 0;   /* nothing to carry */
    h->mutations += before != 0 || m != 0;      /* a pointer forgotten, replaced or carried */
    if (m != 0 && src != dst) {
        if (dst < src) {
            for (off = 0; off < m; off += 64) {
                c = m - off < 64 ? m - off : 64;
                vh_bits_put(pm, dst + off, vh_bits_get(pm, src + off, c), c);
            }
        } else {                                /* overlapping forwards: copy from the end */
            for (off = ((m - 1) >> 6) << 6;; off -= 64) {
                c = m - off < 64 ? m - off : 64;
                vh_bits_put(pm, dst + off, vh_bits_get(pm, src + off, c), c);
                if (off == 0) break;
            }
        }
    }
    /* destination bytes that received no whole pointer: pointer starts in
     * [dst+m, dst+n) (all of [dst, dst+n) when m == 0) and the ones straddling dst */
    vh_bits_zero(pm, dst + m, dst + n);
    vh_bits_zero(pm, lo, dst);
    h->ptr_count = h->ptr_count - before + vh_bits_count(pm, lo, dst + n);
}

/* ------------------------------------------------------------------------
 * Data access */

/* The k bytes (1..8) at p, big-endian, as the low bytes of a uint64. */
static inline uint64_t vh_get_be(const uint8_t *p, unsigned k) {
    if (k == 1) return p[0];                    /* bytes and words first: the usual counts */
    if (k == 8) return vh_load_be64(p);
    uint64_t v = 0;
    for (unsigned i = 0; i < k; i++) v = v << 8 | p[i];
    return v;
}

/* The low k bytes (1..8) of v at p, big-endian (semantics.md §3 item 11). */
static inline void vh_put_be(uint8_t *p, uint64_t v, unsigned k) {
    if (k == 1) { p[0] = (uint8_t)v; return; }
    if (k == 8) { vh_store_be64(p, v); return; }
    for (unsigned i = k; i-- > 0;) { p[i] = (uint8_t)v; v >>= 8; }
}

/* `store`: the low k bytes (1..8) of value at addr, big-endian. With k == 8
 * and is_pointer (the value is tagged 8) the word is recorded as a pointer
 * for the collector; any other store forgets the pointers it overwrites.
 * 0; -1 when the bytes are not inside one live block (HeapWriteFault); -2
 * when the host cannot provide the pointer map. */
VH_API VH_NOINLINE int heap_store(Heap *h, uint64_t addr, uint64_t value, unsigned k, int is_pointer) {
    uint8_t *p = heap_find(h, addr, k);
    if (p == NULL) return -1;
    vh_put_be(p, value, k);
    if (k == 8 && is_pointer) return vh_record_pointer_in_block(h, addr) ? -2 : 0;
    heap_note_write(h, addr, k);
    return 0;
}

/* `load`: k bytes (1..8) big-endian into the low bytes of *out; -1 outside a block. */
VH_API VH_NOINLINE int heap_load(Heap *h, uint64_t addr, unsigned k, uint64_t *out) {
    const uint8_t *p = heap_find(h, addr, k);
    if (p == NULL) return -1;
    *out = vh_get_be(p, k);
    return 0;
}

static inline int heap_read(Heap *h, uint64_t addr, uint8_t *dst, uint64_t n) {
    const uint8_t *p = heap_find(h, addr, n);
    if (p == NULL) return -1;
    if (n) memcpy(dst, p, (size_t)n);
    return 0;
}

static inline int heap_write(Heap *h, uint64_t addr, const uint8_t *src, uint64_t n) {
    uint8_t *p = heap_find(h, addr, n);
    if (p == NULL) return -1;
    if (n) memmove(p, src, (size_t)n);
    heap_note_write(h, addr, n);
    return 0;
}

/* memmove semantics inside or between blocks; carries recorded pointers along. */
static inline int heap_copy(Heap *h, uint64_t dst, uint64_t src, uint64_t n) {
    uint8_t *s = heap_find(h, src, n), *d;
    if (s == NULL) return -1;
    d = heap_find(h, dst, n);
    if (d == NULL) return -1;
    if (n) memmove(d, s, (size_t)n);
    if (h->ptrmap != NULL) vh_pm_move(h, dst, src, n);
    return 0;
}

#endif /* VH_ACCESS_H */
