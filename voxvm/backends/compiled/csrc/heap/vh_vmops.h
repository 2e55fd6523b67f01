/* vh_vmops.h - the heap family (0xA0-0xA9) on the VM side, in C.
 *
 * Owns what the dispatch loop (vv_loop.h) needs around the heap (vh_heap.h)
 * to run alloc, allocr, allocr_nogc, free, store, load, memcpy, storedat,
 * dlbc and ubd: the allocation with the VM's roots and its GC log events,
 * the out-of-line halves of the heap instructions, and the UTF-8 ->
 * UTF-16BE conversion of `ubd`. The loop calls the heap directly (the heap
 * is compiled into the same extension); the load/store fast path (the
 * heap's block cache, heap_cached) is written in the loop itself.
 *
 * Semantics (docs/semantics.md §3 items 8-13, voxvm/backends/reference/core.py): an n-byte block has
 * exactly n accessible bytes; a range is valid iff it lies inside one live
 * block; store/load move the LOW k bytes of the value, big-endian, with
 * k = clamp(count, 1, 8); an 8-byte store of a tag-8 value records a GC edge.
 * Every heap error is an exception appended to the pending list.
 *
 * Helper results: 0 = done, > 0 = the exception number to raise, < 0 = the
 * host ran out of memory (the loop traps HOST_MEMORY).
 */
#ifndef VH_VMOPS_H
#define VH_VMOPS_H

/* The heap stands alone (the test extension builds it without the VM's tables), so
 * it names the address tag itself; here, where both are visible, the two must agree. */
_Static_assert(HEAP_TAG_ADDRESS == VV_TAG_ADDR, "the heap's address tag is the VM's");

/* store/load byte count: clamp(count, 1, 8) (voxvm.isa, the reference core's _clamp_count). */
static inline unsigned vv_clamp_count(uint64_t count) {
    return count - 1 < 8 ? (unsigned)count : count == 0 ? 1u : 8u;
}

/* Growths number from+1 .. to into the log (their sizes: HeapStats.grow_sizes). */
static void vv_record_growths(vv_vm *vm, uint64_t from, uint64_t to) {
    const Heap *h = &vm->heap;
    for (uint64_t g = from + 1; g <= to && vm->ngc_events < VV_GC_EVENTS; g++) {
        vv_gc_event *e = &vm->gc_events[vm->ngc_events++];
        e->kind = VV_GC_GROWTH;
        e->number = g;
        e->heap_size = h->stats.grow_sizes[g & 3];
    }
}

/* Log what an allocation just did (when --gc-log asked), in the order it
 * happened, as the reference heap logs it: at most one collection
 * (heap_alloc_auto collects at most once per call) and the growths before and
 * after it (at most VV_GC_EVENTS_PER_ALLOC events in all; the loop leaves that
 * much room before every allocation). */
static void vv_record_gc_events(vv_vm *vm, uint64_t collections, uint64_t grows) {
    const Heap *h = &vm->heap;
    if (h->stats.collections == collections) {
        vv_record_growths(vm, grows, h->stats.grows);
        return;
    }
    vv_record_growths(vm, grows, h->stats.last_collection_grows);
    if (vm->ngc_events < VV_GC_EVENTS) {
        vv_gc_event *e = &vm->gc_events[vm->ngc_events++];
        e->kind = VV_GC_COLLECTION;
        e->number = h->stats.collections;
        e->freed_blocks = h->stats.last_freed_blocks;
        e->freed_bytes = h->stats.last_freed_bytes;
        e->live_blocks = h->stats.last_marked;   /* every block left after a collection is marked */
        e->live_bytes = h->stats.last_live_bytes;
        e->heap_size = h->stats.last_heap_size;
        e->ns = h->stats.last_ns;
    }
    vv_record_growths(vm, h->stats.last_collection_grows, h->stats.grows);
}

/* alloc / allocr / allocr_nogc when heap_alloc_quick (inline in the loop)
 * gave 0: the whole collection policy. The roots (semantics.md §3.8) are every
 * register and data-stack entry tagged 8, described here, only when a
 * collection may run; the stack's 64-bit tags are read at their own width.
 * The block (zero-filled, now the cached one), or 0 (HeapAllocationFault);
 * vm->sp must be current. */
static VV_NOINLINE uint64_t vv_heap_alloc_slow(vv_vm *vm, uint64_t n, int gc_managed) {
    Heap *h = &vm->heap;
    uint64_t collections = h->stats.collections, grows = h->stats.grows;
    const uint8_t *stack = (const uint8_t *)vm->stack;
    HeapRootSpan roots[2] = {
        {(const uint8_t *)vm->regs, sizeof vm->regs[0], vm->tags, sizeof vm->tags[0], sizeof vm->tags[0],
         VV_NUM_REGISTERS},
        {stack, sizeof(vv_entry), stack ? stack + offsetof(vv_entry, t) : NULL, sizeof(vv_entry),
         sizeof(uint64_t), stack ? vm->sp : 0},
    };
    uint64_t address = heap_alloc_auto(h, n, gc_managed, roots, 2);
    if (vm->gc_log) vv_record_gc_events(vm, collections, grows);
    /* a collection or growth costs up to the whole heap: let the loop return if
     * the slice is over or a stop was requested (a retried failing allocation
     * must not keep Ctrl-C waiting) */
    if ((h->stats.collections != collections || h->stats.grows != grows) && vv_poll(vm)) vm->flush_due = 1;
    return address;
}

/* `storedat`: n bytes of main memory at `from` into the heap at dst. */
static VV_NOINLINE int vv_heap_storedat(vv_vm *vm, uint64_t dst, uint64_t from, uint64_t n) {
    if (from > vm->len || n > vm->len - from) return VV_EXC_MAINSEGMFAULT;
    uint8_t *p = heap_find(&vm->heap, dst, n);
    if (!p) return VV_EXC_HEAPWRITEFAULT;
    if (n) memcpy(p, vm->mem + from, (size_t)n);   /* heap and main memory never overlap */
    heap_note_write(&vm->heap, dst, n);
    return 0;
}

/* ------------------------------------------------------------------------
 * ubd: UTF-8 with replacement -> UTF-16BE. The replacement rule is Python's
 * `bytes.decode("utf-8", "replace")` and Rust's from_utf8_lossy (Unicode's
 * "maximal subpart"): an invalid or truncated sequence becomes one U+FFFD
 * for its longest valid prefix, and decoding resumes at the first byte that
 * did not fit. Writes to dst unless it is NULL; returns the output length
 * (at most 2 * n). */
static uint64_t vv_utf8_to_utf16be(const uint8_t *s, uint64_t n, uint8_t *dst) {
    uint64_t i = 0, out = 0;
    while (i < n) {
        unsigned b = s[i];
        uint32_t cp;
        if (b < 0x80) {
            cp = b;
            i++;
        } else if (b < 0xC2 || b > 0xF4) {
            cp = 0xFFFD;
            i++;
        } else {
            unsigned need = b < 0xE0 ? 1 : b < 0xF0 ? 2 : 3;
            unsigned lo = b == 0xE0 ? 0xA0 : b == 0xF0 ? 0x90 : 0x80;
            unsigned hi = b == 0xED ? 0x9F : b == 0xF4 ? 0x8F : 0xBF;
            unsigned j;
            cp = b & (0x3Fu >> need);
            for (j = 1; j <= need; j++) {
                if (i + j >= n) break;
                unsigned c = s[i + j];
                if (c < lo || c > hi) break;
                cp = cp << 6 | (c & 0x3Fu);
                lo = 0x80; hi = 0xBF;
            }
            if (j <= need) cp = 0xFFFD;    /* the maximal subpart s[i, i + j) */
            i += j;
        }
        if (cp >= 0x10000) {
            if (dst) {
                uint32_t v = cp - 0x10000, h = 0xD800 | v >> 10, l = 0xDC00 | (v & 0x3FF);
                dst[out] = (uint8_t)(h >> 8); dst[out + 1] = (uint8_t)h;
                dst[out + 2] = (uint8_t)(l >> 8); dst[out + 3] = (uint8_t)l;
            }
            out += 4;
        } else {
            if (dst) { dst[out] = (uint8_t)(cp >> 8); dst[out + 1] = (uint8_t)cp; }
            out += 2;
        }
    }
    return out;
}

/* `ubd`: decode n UTF-8 bytes at heap src, write the UTF-16BE text at heap
 * dst (the ranges may overlap). Always advances (semantics.md §3.7). */
static VV_NOINLINE int vv_heap_ubd(vv_vm *vm, uint64_t src, uint64_t n, uint64_t dst) {
    const uint8_t *p = heap_find(&vm->heap, src, n);
    if (!p) return VV_EXC_HEAPREADFAULT;
    uint64_t size = vv_utf8_to_utf16be(p, n, NULL);
    uint8_t *q = heap_find(&vm->heap, dst, size);   /* no allocation: p stays valid */
    if (!q) return VV_EXC_HEAPWRITEFAULT;
    if (size) {
        if (dst >= src + n || src >= dst + size) {
            vv_utf8_to_utf16be(p, n, q);           /* disjoint: straight into place */
        } else {
            uint8_t *text = (uint8_t *)malloc((size_t)size);
            if (!text) return -1;
            vv_utf8_to_utf16be(p, n, text);
            memmove(q, text, (size_t)size);
            free(text);
        }
        heap_note_write(&vm->heap, dst, size);
    }
    return 0;
}

#endif /* VH_VMOPS_H */
