# Cython declarations of the C heap (csrc/heap/, docs/heap.md), for the two
# extensions that compile it: _core (the VM, through vv_core.h) and
# _heaptest (HeapTester, for tests and tools). The semantics and the
# conventions live in the C headers (csrc/heap/vh_types.h opens with them);
# this file only names what the Cython code touches.

from libc.stdint cimport int64_t, uint8_t, uint64_t


cdef extern from "heap/vh_heap.h" nogil:
    ctypedef struct HeapRootSpan:
        const uint8_t *values
        size_t value_stride
        const uint8_t *tags
        size_t tag_stride
        size_t tag_size
        size_t count

    ctypedef struct HeapStats:
        uint64_t allocs, failed_allocs, frees, grows, collections, gc_ns_total
        uint64_t freed_blocks_total, freed_bytes_total
        uint64_t last_ns, last_marked, last_freed_blocks, last_freed_bytes, last_live_bytes
        uint64_t peak_capacity, repairs

    ctypedef struct Heap:
        uint8_t *mem
        uint64_t capacity, limit
        uint64_t *rstarts
        uint64_t *ptrmap
        uint64_t ptr_count
        uint64_t nblocks, gc_blocks, nfree, used_bytes, payload_bytes, gc_bytes
        uint64_t fit_hint, fit_len      # the first-fit shortcut region (vh_types.h)
        uint64_t gc_since, gc_threshold, gc_floor
        int gc_stress
        int64_t fail_after
        HeapStats stats

    int heap_init(Heap *h, uint64_t init_size, uint64_t max_size)
    void heap_free_all(Heap *h)
    uint64_t heap_alloc(Heap *h, uint64_t n, int gc_managed)
    uint64_t heap_alloc_auto(Heap *h, uint64_t n, int gc_managed, const HeapRootSpan *roots, size_t nroots)
    int heap_free(Heap *h, uint64_t addr)
    uint64_t heap_collect(Heap *h, const HeapRootSpan *roots, size_t nroots)
    void heap_settings_changed(Heap *h)
    uint64_t heap_alloc_quick(Heap *h, uint64_t n, int gc_managed)

    uint8_t *heap_find(Heap *h, uint64_t addr, uint64_t n)
    int heap_is_block(const Heap *h, uint64_t addr)
    int64_t heap_block_size(Heap *h, uint64_t addr)
    int heap_block_gc(Heap *h, uint64_t addr)
    uint64_t heap_next_block(const Heap *h, uint64_t addr)
    uint64_t heap_free_bytes(const Heap *h)

    int heap_read(Heap *h, uint64_t addr, uint8_t *dst, uint64_t n)
    int heap_write(Heap *h, uint64_t addr, const uint8_t *src, uint64_t n)
    int heap_copy(Heap *h, uint64_t dst, uint64_t src, uint64_t n)
    int heap_store(Heap *h, uint64_t addr, uint64_t value, unsigned k, int is_pointer)
    int heap_load(Heap *h, uint64_t addr, unsigned k, uint64_t *out)
