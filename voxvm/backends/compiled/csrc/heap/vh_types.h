/* vh_types.h - the heap's data layout, conventions and bit-level helpers.
 *
 * Owns the `Heap` struct (one per VM: no globals, so every VM and every VM
 * thread has its own heap), `HeapStats`, the GC root description
 * `HeapRootSpan`, the block header and granule arithmetic, and the portable
 * intrinsics (byte swaps, bit scans, popcount, clock) the other heap headers
 * use. docs/heap.md explains the design.
 *
 * Conventions (every heap header follows them; "semantics.md" is
 * docs/semantics.md):
 *
 * - Addresses are byte offsets into the arena `h->mem`; 0 is the null pointer
 *   and never a block; the first block starts at 16 (semantics.md §3 item 9).
 * - Results: functions returning int give 0 on success and -1 on a fault (the
 *   caller raises HeapReadFault / HeapWriteFault / HeapFreeFault /
 *   HeapSegmFault); heap_alloc* return the block address or 0.
 * - A range [addr, addr+n) is valid iff it lies inside ONE live block
 *   [start, start+size): so an n-byte block has exactly n accessible bytes
 *   (semantics.md §3 item 12); a count of 0 touches nothing but its address must
 *   still lie inside a live block or at its end.
 * - Pointers returned by heap_find point into h->mem; they stay valid only
 *   until the next allocation (the arena may be moved by realloc). Whoever
 *   writes through such a pointer must call heap_note_write after.
 * - Pointer tracking (semantics.md §3 item 8): an 8-byte store of a value tagged
 *   8 records a pointer at that address; every other write that overlaps a
 *   recorded pointer removes it; heap_copy carries recorded pointers along;
 *   free drops them.
 * - Collection (semantics.md §3 item 8, §6): only heap_alloc_auto (the VM's
 *   alloc/allocr/allocr_nogc) and heap_collect collect. Roots are the values
 *   tagged 8 in the HeapRootSpans the caller passes, plus every live manual
 *   (allocr_nogc) block; only a value equal to a live block's start counts.
 *
 * Layout: the arena is tiled, from byte 8 to its end, by tiles of whole
 * 8-byte granules: a live block is an 8-byte header followed by its n bytes
 * rounded up to 8 (at least 8); a free region is a maximal run of free
 * granules whose first word holds its length in granules.
 */
#ifndef VH_TYPES_H
#define VH_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__) || defined(__clang__)
#define VH_LIKELY(x) __builtin_expect(!!(x), 1)
#define VH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define VH_NOINLINE __attribute__((noinline))
#define VH_ALWAYS_INLINE inline __attribute__((always_inline))
#define VH_MAYBE_UNUSED __attribute__((unused))
#define VH_PREFETCH(p) __builtin_prefetch(p)
/* n is a compile-time constant of at most 8 (the VM's load/store counts) */
#define VH_CONSTANT_SMALL(n) (__builtin_constant_p(n) && (n) <= 8)
#else
#define VH_CONSTANT_SMALL(n) 0
#define VH_PREFETCH(p) ((void)(p))
#define VH_ALWAYS_INLINE inline
#define VH_LIKELY(x) (x)
#define VH_UNLIKELY(x) (x)
#define VH_NOINLINE
#define VH_MAYBE_UNUSED
#endif
/* The heap's entry points that are not inline: every user compiles the whole
 * heap and calls only some of them (the VM never calls heap_alloc). */
#define VH_API static VH_MAYBE_UNUSED

enum {
    HEAP_FIRST_ADDRESS = 16,     /* the lowest block address; 0 is null (semantics.md §3 item 9) */
    HEAP_GRANULE = 8,            /* block starts, headers and tiles are 8-byte aligned */
    HEAP_MAX_LEVELS = 8,         /* levels of the block-start bitmap hierarchy */
    HEAP_MAX_SUM_LEVELS = 10,    /* levels of the free-space summary tree */
    HEAP_SUM_FANOUT = 16,        /* summary entries per parent (one 64-byte cache line) */
    HEAP_TAG_ADDRESS = 8,        /* register / stack tag of a heap address (semantics.md §2) */
    HEAP_MARK_STACK_MAX = 65536  /* entries; beyond it marking falls back to rescanning */
};

/* Block header: the 8 bytes just below a live block's start. */
#define VH_HDR_SIZE_MASK 0x000000FFFFFFFFFFULL   /* bits 0..39: accessible size n */
#define VH_HDR_GC 0x4000000000000000ULL          /* GC-managed (alloc/allocr); marks are in Heap.marks */
#define VH_HARD_LIMIT ((1ULL << 34) - 8)         /* < 16 GiB: granule counts < 2^31 */
#define VH_ALL 0xFFFFFFFFFFFFFFFFULL
#define VH_MIN_GROWTH 4096ULL                    /* bytes: smallest growth of an empty heap */
#define VH_MIN_GC_FLOOR 65536ULL                 /* bytes: smallest collection threshold */
/* The room a collection leaves for the next one: 1.25 x the live GC bytes
 * (docs/heap.md "Growth after a collection"; PyHeap's gc_room is the same). */
#define VH_GC_ROOM(live) ((live) + ((live) >> 2))

/* One array of GC root candidates, e.g. the 32 registers or the data stack.
 * Entry i's value is the native uint64 at values + i*value_stride; it is a
 * root iff tags is NULL or the native unsigned integer of tag_size bytes (1
 * or 8) at tags + i*tag_stride equals HEAP_TAG_ADDRESS. Reading the tag at
 * its own width is what lets the VM describe its 64-bit stack tags without
 * knowing which byte holds the value. */
typedef struct HeapRootSpan {
    const uint8_t *values;
    size_t value_stride;
    const uint8_t *tags;
    size_t tag_stride;
    size_t tag_size;
    size_t count;
} HeapRootSpan;

typedef struct HeapStats {
    uint64_t allocs;             /* successful allocations */
    uint64_t failed_allocs;
    uint64_t frees;              /* successful explicit frees */
    uint64_t grows;              /* arena growths */
    uint64_t collections;
    uint64_t gc_ns_total;        /* time spent collecting */
    uint64_t freed_blocks_total; /* blocks freed by the collector */
    uint64_t freed_bytes_total;  /* payload bytes freed by the collector */
    uint64_t last_ns;            /* the last collection: duration, */
    uint64_t last_marked;        /*   blocks found reachable, */
    uint64_t last_freed_blocks;  /*   blocks freed, */
    uint64_t last_freed_bytes;   /*   payload bytes freed, */
    uint64_t last_live_bytes;    /*   payload bytes of all live blocks afterwards, */
    uint64_t last_heap_size;     /*   the arena's usable bytes then (before any growth it led to), */
    uint64_t last_collection_grows; /*   and `grows` then (orders the --gc-log lines) */
    uint64_t grow_sizes[4];      /* the arena's usable bytes after growth number g, at [g % 4] */
    uint64_t peak_capacity;      /* largest arena size reached (bytes) */
    uint64_t repairs;            /* stale free-space bounds repaired by searches */
} HeapStats;

typedef struct Heap {
    uint8_t *mem;                /* the arena; tiles cover [8, capacity) */
    uint64_t capacity;           /* arena bytes (multiple of 8) */
    uint64_t limit;              /* largest capacity allowed: 8 + max heap size */
    /* The block lookup cache (the only one: the VM's load/store fast path
     * tests it inline): the live block [cache_lo, cache_hi) found or
     * allocated last (empty: lo > hi). Emptied by every free and every
     * collection (blocks may die); addresses survive an arena move. A miss
     * usually costs a bitmap word and a header (heap_find); only blocks longer
     * than 64 granules need the upper bitmap levels, so the last such block
     * found is kept too, [long_lo, long_hi), and emptied with the cache. */
    uint64_t cache_lo, cache_hi;
    uint64_t long_lo, long_hi;
    /* Free space: bit g of rstarts set iff a free region starts at granule g
     * (8*g); the region's length in granules is the uint64 stored at 8*g.
     * sums[0][c] = longest region starting in chunk c (granules 64c..64c+63);
     * sums[k+1][i] = max of sums[k][16i .. 16i+15]; the top level has one entry. */
    uint64_t *rstarts;
    uint32_t *sums[HEAP_MAX_SUM_LEVELS];
    uint64_t sum_words[HEAP_MAX_SUM_LEVELS];
    int nsums;
    /* First-fit shortcut (vh_take): when fit_len != 0, the free granules
     * [fit_hint, fit_hint + fit_len) are the shortcut region, and every free
     * region below it is shorter than fit_hint_need granules, so a request of
     * at least that many that fits takes its front: bump allocation, two
     * stores. The shortcut region is not in the free-space index (no start
     * bit, no stored length, not in nfree): vh_settle_shortcut puts it back
     * before anything else reads the index or adds a region. */
    uint64_t fit_hint;
    uint64_t fit_hint_need;
    uint64_t fit_len;
    /* Block-start bitmap: bit g of level 0 set iff 8*g is a live block start;
     * bit j of level i+1 set iff word j of level i is non-zero. */
    uint64_t *levels[HEAP_MAX_LEVELS];
    uint64_t level_words[HEAP_MAX_LEVELS];
    int nlevels;
    /* Pointer bitmap: bit a set iff a pointer is recorded at address a. */
    uint64_t *ptrmap;            /* NULL until the first pointer store */
    uint64_t ptr_count;
    /* accounting */
    uint64_t nblocks;            /* live blocks */
    uint64_t gc_blocks;          /* ... of which GC-managed */
    uint64_t nfree;              /* free regions */
    uint64_t used_bytes;         /* tile bytes of live blocks (headers included) */
    uint64_t payload_bytes;      /* sum of live block sizes n */
    uint64_t gc_bytes;           /* tile bytes of GC-managed live blocks */
    /* collection policy (vh_policy.h; docs/heap.md "When the collector runs") */
    uint64_t gc_since;           /* tile bytes of GC-managed allocations since the last collection */
    uint64_t gc_threshold;       /* collect when gc_since reaches this */
    uint64_t gc_floor;           /* lower bound of gc_threshold */
    int gc_stress;               /* collect before every allocation */
    int64_t fail_after;          /* fault injection: fail allocations after this many (-1 = off) */
    /* heap_alloc_quick may allocate while gc_since < quick_limit: gc_threshold,
     * or 0 (always take heap_alloc_auto) under gc_stress, fault injection or
     * without an arena. Recomputed by vh_quick_refresh whenever one of those
     * changes inside the heap; whoever sets gc_stress, fail_after or
     * gc_threshold from outside calls heap_settings_changed. */
    uint64_t quick_limit;
    /* What a collection could change (vh_policy.h, "futile collections"):
     * `mutations` counts every event that can make a live block unreachable
     * later: a block allocated or freed, a pointer recorded, a recorded
     * pointer forgotten or moved. After a collection of the policy freed
     * nothing, `futile_mutations` and the root values tagged 8 (in span order)
     * are remembered; while both are unchanged, a collection would free
     * nothing again, so the policy does not run it. */
    uint64_t mutations;
    int futile_valid;
    uint64_t futile_mutations;
    uint64_t *futile_roots;
    size_t futile_nroots, futile_cap;
    /* Mark bitmap (vh_gc.h): bit g set iff the block starting at granule g
     * was reached in the current mark phase; all zero outside a collection
     * (the sweep clears it), sized like level 0 of the block-start bitmap. */
    uint64_t *marks;
    /* mark stack (grown up to HEAP_MARK_STACK_MAX entries; empty between collections) */
    uint64_t *mark_stack;
    uint64_t mark_cap;
    int mark_overflow;           /* during a collection: a marked block could not be queued (rescan) */
    HeapStats stats;
} Heap;

/* ------------------------------------------------------------------------
 * Portable intrinsics */

static inline uint64_t vh_bswap64(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_bswap64(v);
#else
    v = ((v & 0x00FF00FF00FF00FFULL) << 8) | ((v >> 8) & 0x00FF00FF00FF00FFULL);
    v = ((v & 0x0000FFFF0000FFFFULL) << 16) | ((v >> 16) & 0x0000FFFF0000FFFFULL);
    return (v << 32) | (v >> 32);
#endif
}

/* Heap words are big-endian (semantics.md §3 item 11): the collector reads
 * pointers back in the byte order `store` wrote them. With GCC/Clang a word
 * is one unaligned load or store plus a byte swap (the byte-by-byte form was
 * not always inlined: a call per 8-byte `load`); elsewhere, byte by byte. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__)
static inline uint64_t vh_load_be64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void vh_store_be64(uint8_t *p, uint64_t v) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}
#else
static inline uint64_t vh_load_be64(const uint8_t *p) {
    return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40) |
           ((uint64_t)p[3] << 32) | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
           ((uint64_t)p[6] << 8) | (uint64_t)p[7];
}

static inline void vh_store_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
#endif

static inline int vh_ctz64(uint64_t x) {   /* x != 0 */
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int n = 0; while (!(x & 1)) { x >>= 1; n++; } return n;
#endif
}

static inline int vh_clz64(uint64_t x) {   /* x != 0 */
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_clzll(x);
#else
    int n = 0; while (!(x & 0x8000000000000000ULL)) { x <<= 1; n++; } return n;
#endif
}

static inline int vh_popcount64(uint64_t x) {
#if defined(__POPCNT__)
    return __builtin_popcountll(x);
#else
    /* SWAR: without -mpopcnt (we build for baseline x86-64) the builtin is a
     * call into libgcc, slower than these dozen instructions. */
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
#endif
}

static inline uint64_t vh_now_ns(void) {
    struct timespec ts;
#if defined(CLOCK_MONOTONIC)
    clock_gettime(CLOCK_MONOTONIC, &ts);
#else
    timespec_get(&ts, TIME_UTC);
#endif
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t vh_max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* ------------------------------------------------------------------------
 * Granules, headers and free-region lengths */

/* Granules a block of n bytes occupies after its header (at least 1). */
static inline uint64_t vh_payload_granules(uint64_t n) {
    uint64_t g = (n + 7) >> 3;
    return g >= 1 ? g : 1;
}

/* Tile length in granules of an n-byte block: header + payload. */
static inline uint64_t vh_need_granules(uint64_t n) { return 1 + vh_payload_granules(n); }

static inline uint64_t *vh_hdr(Heap *h, uint64_t start) { return (uint64_t *)(h->mem + start - 8); }

/* Tile length in granules of the block with this header. */
static inline uint64_t vh_hdr_foot(uint64_t hdr) { return vh_need_granules(hdr & VH_HDR_SIZE_MASK); }

/* Length in granules of the free region starting at granule g. */
static inline uint64_t vh_rlen(const Heap *h, uint64_t g) { return *(const uint64_t *)(h->mem + (g << 3)); }

static inline void vh_rlen_set(Heap *h, uint64_t g, uint64_t length) { *(uint64_t *)(h->mem + (g << 3)) = length; }

static inline uint64_t heap_free_bytes(const Heap *h) {
    return h->capacity >= 8 ? h->capacity - 8 - h->used_bytes : 0;
}

#endif /* VH_TYPES_H */
