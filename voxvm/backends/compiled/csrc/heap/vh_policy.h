/* vh_policy.h - when to collect and when to grow: the VM's allocation.
 *
 * Owns heap_alloc_auto (the collection policy of docs/heap.md "When the
 * collector runs", as in Lua the policy sits beside the collector, not in
 * the allocator) and its inline first step heap_alloc_quick, which the VM
 * takes on every allocation: when no collection is due, fit in the existing
 * free space, and only when that fails describe the roots and run the whole
 * policy.
 */
#ifndef VH_POLICY_H
#define VH_POLICY_H

#include "vh_gc.h"

/* The VM's allocation with the collection policy:
 * 1. gc_stress, or gc_since >= gc_threshold: collect.
 * 2. Fit in the existing free regions.
 * 3. Else, if no collection ran yet and GC-managed bytes were allocated since
 *    the last one: collect; if less than a quarter of the heap is then free,
 *    grow too (avoids collecting on every allocation); fit.
 * 4. Else grow and fit.
 * 5. Else, if no collection ran yet and GC-managed blocks exist: collect, fit.
 * Returns the block address, or 0. */
VH_API VH_NOINLINE uint64_t heap_alloc_auto(Heap *h, uint64_t n, int gc_managed,
                                            const HeapRootSpan *roots, size_t nroots) {
    uint64_t a = 0, need;
    int collected = 0;
    if (!vh_alloc_possible(h, n) || vh_fail_injected(h)) {
        h->stats.failed_allocs += 1;
        return 0;
    }
    need = vh_need_granules(n);
    if (h->gc_stress || h->gc_since >= h->gc_threshold) {
        heap_collect(h, roots, nroots);
        collected = 1;
    }
    a = vh_alloc_fit(h, n, gc_managed);
    if (a == 0 && !collected && h->gc_since > 0) {
        heap_collect(h, roots, nroots);
        collected = 1;
        if (heap_free_bytes(h) * 4 < h->capacity - 8) vh_grow(h, need);
        a = vh_alloc_fit(h, n, gc_managed);
    }
    if (a == 0 && vh_grow(h, need) == 0) a = vh_alloc_fit(h, n, gc_managed);
    if (a == 0 && !collected && h->gc_blocks > 0) {
        heap_collect(h, roots, nroots);
        a = vh_alloc_fit(h, n, gc_managed);
    }
    if (a == 0) h->stats.failed_allocs += 1;
    return a;
}

/* Steps 1-2 of heap_alloc_auto when they cannot collect: the block, or 0 when
 * the caller must run heap_alloc_auto (a collection is due, nothing fits, or
 * fault injection is on). Calling heap_alloc_auto after a 0 gives exactly its
 * result: this changed nothing but possibly repaired stale bounds. */
static VH_ALWAYS_INLINE uint64_t heap_alloc_quick(Heap *h, uint64_t n, int gc_managed) {
    if (h->gc_stress || h->gc_since >= h->gc_threshold || h->fail_after >= 0 || !vh_alloc_possible(h, n))
        return 0;
    return vh_alloc_fit(h, n, gc_managed);
}

#endif /* VH_POLICY_H */
