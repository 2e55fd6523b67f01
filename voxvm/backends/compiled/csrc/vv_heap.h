/* vv_heap.h - the heap family (0xA0-0xA9) on the VM side, in C.
 *
 * Owns what the dispatch loop (vv_loop.h) needs to run alloc, allocr,
 * allocr_nogc, free, store, load, memcpy, storedat, dlbc and ubd: the
 * block cache that makes load/store on the block used last a compare and a
 * memory access, the out-of-line halves of the heap instructions, and the
 * UTF-8 -> UTF-16BE conversion of `ubd`. The heap itself (allocator,
 * pointer tracking, collector) is voxvm.backends.compiled._heap, reached through the adapters
 * in vm->hops (vv_core.h explains why); voxvm/backends/compiled/_core.pyx fills them in.
 *
 * Semantics (decisions.md §3 items 8-13, voxvm/backends/reference/core.py): an n-byte block has
 * exactly n accessible bytes; a range is valid iff it lies inside one live
 * block; store/load move the LOW k bytes of the value, big-endian, with
 * k = clamp(count, 1, 8); an 8-byte store of a tag-8 value records a GC edge.
 * Every heap error is an exception appended to the pending list.
 *
 * Helper results: 0 = done, > 0 = the exception number to raise, < 0 = the
 * host ran out of memory (the loop traps HOST_MEMORY).
 */
#ifndef VV_HEAP_H
#define VV_HEAP_H

/* store/load byte count: clamp(count, 1, 8) (voxvm.isa, pyvm._clamp_count). */
static inline unsigned vv_clamp_count(uint64_t count) {
    return count - 1 < 8 ? (unsigned)count : count == 0 ? 1u : 8u;
}

static inline void vv_heap_cache_reset(vv_vm *vm) {
    vm->hlo = 1;
    vm->hhi = 0;
    vm->hvlo[0] = vm->hvlo[1] = 1;
    vm->hvhi[0] = vm->hvhi[1] = 0;
}

/* [addr, addr + n) inside the cached block? */
static inline int vv_heap_cached(const vv_vm *vm, uint64_t addr, uint64_t n) {
    return addr >= vm->hlo && addr <= vm->hhi && n <= vm->hhi - addr;
}

/* The live block [lo, hi) becomes the cached one; the one before moves
 * behind it (the oldest of the two behind is dropped). */
static inline void vv_heap_cache_push(vv_vm *vm, uint64_t lo, uint64_t hi) {
    vm->hvlo[1] = vm->hvlo[0]; vm->hvhi[1] = vm->hvhi[0];
    vm->hvlo[0] = vm->hlo;     vm->hvhi[0] = vm->hhi;
    vm->hlo = lo;              vm->hhi = hi;
}

/* After a miss of the cached block: is [addr, addr + n) inside one of the
 * blocks behind it? Then that block becomes the cached one (same test as
 * vv_heap_cached: the range is valid exactly when it is). */
static inline int vv_heap_cache_retry(vv_vm *vm, uint64_t addr, uint64_t n) {
    for (int i = 0; i < 2; i++) {
        uint64_t lo = vm->hvlo[i], hi = vm->hvhi[i];
        if (addr >= lo && addr <= hi && n <= hi - addr) {
            if (i == 1) { vm->hvlo[1] = vm->hvlo[0]; vm->hvhi[1] = vm->hvhi[0]; }
            vm->hvlo[0] = vm->hlo; vm->hvhi[0] = vm->hhi;
            vm->hlo = lo; vm->hhi = hi;
            return 1;
        }
    }
    return 0;
}

/* The k bytes (1..8) at p, big-endian, as the low bytes of a uint64. */
static inline uint64_t vv_get_be(const uint8_t *p, unsigned k) {
    if (k == 1) return p[0];                    /* bytes and words first: the usual counts */
    if (k == 8) return vv_be64(p);
    uint64_t v = 0;
    for (unsigned i = 0; i < k; i++) v = v << 8 | p[i];
    return v;
}

/* The low k bytes (1..8) of v at p, big-endian (decisions §3.11). */
static inline void vv_put_be(uint8_t *p, uint64_t v, unsigned k) {
    if (k == 1) { p[0] = (uint8_t)v; return; }
    if (k == 8) { vv_put_be64(p, v); return; }
    for (unsigned i = k; i-- > 0;) { p[i] = (uint8_t)v; v >>= 8; }
}

/* `store` outside the cached block, or of a pointer. */
static VV_NOINLINE int vv_heap_store_slow(vv_vm *vm, uint64_t addr, uint64_t value, unsigned k, int pointer) {
    uint8_t *p = vv_heap_cache_retry(vm, addr, k) ? vm->hmem + addr : vm->hops.find(vm, addr, k);
    if (!p) return VV_EXC_HEAPWRITEFAULT;
    vv_put_be(p, value, k);
    if (pointer && k == 8) {                /* a GC edge (decisions §3.8) */
        if (vm->hops.record_pointer(vm, addr)) return -1;
    } else if (vm->hptrs) {
        vm->hops.wrote(vm, addr, k);
    }
    return 0;
}

/* `load` outside the cached block: the value into *out, or HeapReadFault. */
static VV_NOINLINE int vv_heap_load_slow(vv_vm *vm, uint64_t addr, unsigned k, uint64_t *out) {
    const uint8_t *p = vv_heap_cache_retry(vm, addr, k) ? vm->hmem + addr : vm->hops.find(vm, addr, k);
    if (!p) return VV_EXC_HEAPREADFAULT;
    *out = vv_get_be(p, k);
    return 0;
}

/* `storedat`: n bytes of main memory at `from` into the heap at dst. */
static VV_NOINLINE int vv_heap_storedat(vv_vm *vm, uint64_t dst, uint64_t from, uint64_t n) {
    if (from > vm->len || n > vm->len - from) return VV_EXC_MAINSEGMFAULT;
    uint8_t *p = vm->hops.find(vm, dst, n);
    if (!p) return VV_EXC_HEAPWRITEFAULT;
    if (n) memcpy(p, vm->mem + from, (size_t)n);   /* heap and main memory never overlap */
    if (vm->hptrs) vm->hops.wrote(vm, dst, n);
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
 * dst (the ranges may overlap). Always advances (decisions §3.7). */
static VV_NOINLINE int vv_heap_ubd(vv_vm *vm, uint64_t src, uint64_t n, uint64_t dst) {
    const uint8_t *p = vm->hops.find(vm, src, n);
    if (!p) return VV_EXC_HEAPREADFAULT;
    uint64_t size = vv_utf8_to_utf16be(p, n, NULL);
    uint8_t *q = vm->hops.find(vm, dst, size);      /* no allocation: p stays valid */
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
        if (vm->hptrs) vm->hops.wrote(vm, dst, size);
    }
    return 0;
}

#endif /* VV_HEAP_H */
