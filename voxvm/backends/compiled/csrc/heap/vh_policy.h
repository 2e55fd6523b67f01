/* vh_policy.h - when to collect and when to grow: the VM's allocation.
 *
 * Owns heap_alloc_auto (the collection policy of docs/heap.md "When the
 * collector runs", as in Lua the policy sits beside the collector, not in
 * the allocator) and its inline first step heap_alloc_quick, which the VM
 * takes on every allocation: when no collection is due, fit in the existing
 * free space, and only when that fails describe the roots and run the whole
 * policy. It also owns the rule that skips futile collections (a
 * collection certain to free nothing, see below).
 */
#ifndef VH_POLICY_H
#define VH_POLICY_H

#include "vh_gc.h"

/* Futile collections. A collection frees a block only if the block became
 * unreachable, which needs a changed root or a heap mutation (Heap.mutations:
 * a block allocated or freed, a pointer recorded, forgotten or moved). After a
 * policy collection that freed nothing, every GC block was reachable; while
 * neither the roots (the values tagged 8, compared in span order) nor the
 * mutation count has changed, the same collection would free nothing again,
 * leave gc_since at 0 and gc_threshold as it is: skipping it changes nothing
 * a program can observe, so the collector is exactly as precise, and a
 * program that retries a failing allocation pays O(roots) per retry instead
 * of a whole mark-sweep. The reference heap (voxvm/backends/reference/heap.py)
 * applies the same rule, so both count the same collections. */

/* Run BODY with V bound to every root value tagged 8, in span order. */
#define VH_FOR_EACH_ROOT(roots, nroots, V, BODY) do { \
        for (size_t r_ = 0; r_ < (nroots); r_++) { \
            const HeapRootSpan *s_ = &(roots)[r_]; \
            for (size_t i_ = 0; i_ < s_->count; i_++) { \
                if (s_->tags != NULL && vh_root_tag(s_, i_) != HEAP_TAG_ADDRESS) continue; \
                uint64_t V; \
                memcpy(&V, s_->values + i_ * s_->value_stride, 8); \
                BODY; \
            } \
        } \
    } while (0)

/* 1 if the roots and the heap are exactly as after the last futile collection. */
static int vh_collection_futile(const Heap *h, const HeapRootSpan *roots, size_t nroots) {
    size_t k = 0;
    if (!h->futile_valid || h->mutations != h->futile_mutations) return 0;
    VH_FOR_EACH_ROOT(roots, nroots, v, {
        if (k == h->futile_nroots || h->futile_roots[k] != v) return 0;
        k++;
    });
    return k == h->futile_nroots;
}

/* Remember the roots of a collection that freed nothing; without memory for
 * them, remember nothing (the next collection simply runs). */
static void vh_remember_futile(Heap *h, const HeapRootSpan *roots, size_t nroots) {
    size_t k = 0;
    h->futile_valid = 0;
    VH_FOR_EACH_ROOT(roots, nroots, v, { (void)v; k++; });
    if (k > h->futile_cap) {
        uint64_t *p = (uint64_t *)realloc(h->futile_roots, (k > 16 ? k : 16) * sizeof(uint64_t));
        if (p == NULL) return;
        h->futile_roots = p;
        h->futile_cap = k > 16 ? k : 16;
    }
    k = 0;
    VH_FOR_EACH_ROOT(roots, nroots, v, { h->futile_roots[k++] = v; });
    h->futile_nroots = k;
    h->futile_mutations = h->mutations;
    h->futile_valid = 1;
}

/* Growth with the live set (docs/heap.md "Growth after a collection"): after
 * a collection of the policy, while fewer bytes are free than the room
 * VH_GC_ROOM gives the live GC-managed blocks (1.25 x their tiles, headers
 * included: gc_bytes), the arena grows to max(used + room, 1.5 x size) (a
 * multiple of 8), at most the limit; when the host has no memory it stays as
 * it is. The next collection is due once the GC-managed bytes allocated since
 * reach that room (gc_threshold), so it then finds 1.25 x as much garbage as
 * is live instead of running early because the heap is full: the work per
 * allocated byte stays constant however large the live set (a heap of GC
 * objects only is then at most about 44 % full). Manual (allocr_nogc) blocks
 * count as used but ask for no room: the collector never frees them. The 1.5 x size step
 * keeps growth geometric when the live set creeps up a block at a time
 * (--gc-stress collects before every allocation). A futile collection needs
 * no growth here: the one it repeats already grew, and nothing live changed
 * since. The reference heap (voxvm/backends/reference/heap.py,
 * PyHeap._grow_for_live) applies the same rule. */
static void vh_grow_for_live(Heap *h) {
    uint64_t size, lim = h->limit - 8, target, room = VH_GC_ROOM(h->gc_bytes);
    if (h->mem == NULL || heap_free_bytes(h) >= room) return;
    size = h->capacity - 8;
    target = vh_max_u64((h->used_bytes + room + 7) & ~(uint64_t)7, (size + (size >> 1)) & ~(uint64_t)7);
    if (target > lim) target = lim;
    if (target > size) vh_grow_to(h, target);
}

/* A collection of the policy, unless it is futile (gc_stress always collects:
 * it exists to exercise the collector), then growth with the live set. */
static void vh_policy_collect(Heap *h, const HeapRootSpan *roots, size_t nroots) {
    if (!h->gc_stress && vh_collection_futile(h, roots, nroots)) return;
    if (heap_collect(h, roots, nroots) == 0) vh_remember_futile(h, roots, nroots);
    else h->futile_valid = 0;
    vh_grow_for_live(h);
}

/* The VM's allocation with the collection policy:
 * 1. gc_stress, or gc_since >= gc_threshold: collect.
 * 2. Fit in the existing free regions.
 * 3. Else, if no collection ran yet and GC-managed bytes were allocated since
 *    the last one: collect; fit.
 * 4. Else grow and fit.
 * 5. Else, if no collection ran yet and GC-managed blocks exist: collect, fit.
 * "Collect" skips a futile collection and is followed by growth with the live
 * set (both above). Returns the block address, or 0. */
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
        vh_policy_collect(h, roots, nroots);
        collected = 1;
    }
    a = vh_alloc_fit(h, n, gc_managed);
    if (a == 0 && !collected && h->gc_since > 0) {
        vh_policy_collect(h, roots, nroots);
        collected = 1;
        a = vh_alloc_fit(h, n, gc_managed);
    }
    if (a == 0 && vh_grow(h, need) == 0) a = vh_alloc_fit(h, n, gc_managed);
    if (a == 0 && !collected && h->gc_blocks > 0) {
        vh_policy_collect(h, roots, nroots);
        a = vh_alloc_fit(h, n, gc_managed);
    }
    if (a == 0) h->stats.failed_allocs += 1;
    vh_quick_refresh(h);                        /* fault injection may have counted down */
    return a;
}

/* After the caller changed gc_stress, fail_after, gc_floor or gc_threshold. */
VH_API void heap_settings_changed(Heap *h) { vh_quick_refresh(h); }

/* Larger requests always take heap_alloc_auto (which checks their size);
 * below this, the granule arithmetic cannot overflow. */
#define VH_QUICK_MAX_SIZE (1ULL << 32)

/* Steps 1-2 of heap_alloc_auto when they cannot collect: the block, or 0 when
 * the caller must run heap_alloc_auto (a collection is due, nothing fits,
 * fault injection or gc_stress is on, or the size is huge: all folded into
 * quick_limit and one size test). A request that fits in a free region is
 * possible under the limit, since regions lie inside it. Calling
 * heap_alloc_auto after a 0 gives exactly its result: this changed nothing
 * but possibly repaired stale bounds. */
static VH_ALWAYS_INLINE uint64_t heap_alloc_quick(Heap *h, uint64_t n, int gc_managed) {
    if (h->gc_since >= h->quick_limit || n > VH_QUICK_MAX_SIZE) return 0;
    return vh_alloc_fit(h, n, gc_managed);
}

/* The smallest first step, for a small GC-managed object of n bytes whose
 * tile is `need` (2..9) granules (the VM's fused alloc+store, which computes
 * need when it decodes): only the first-fit shortcut region (vh_take's inline
 * part), with no search and no call, so that it adds little to the dispatch
 * loop; 0 when it does not apply (the caller then takes heap_alloc_quick and
 * heap_alloc_auto). When it allocates, the block is the one heap_alloc_quick
 * would give. */
static VH_ALWAYS_INLINE uint64_t heap_alloc_small(Heap *h, uint64_t n, uint64_t need) {
    if (h->gc_since >= h->quick_limit || need > h->fit_len || need < h->fit_hint_need) return 0;
    return vh_alloc_finish(h, vh_take_shortcut(h, need), n, need, 1, 1);
}

#endif /* VH_POLICY_H */
