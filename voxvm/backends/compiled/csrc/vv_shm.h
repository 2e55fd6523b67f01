/* vv_shm.h - the shared-memory natives (0x33-0x39) and thread_id (0x32) in C.
 *
 * Owns the C halves of docs/concurrency.md's natives for the VM's native table
 * (vv_natives.h ABI): the calls run inside the dispatch loop, without the GIL,
 * on the mapped bytes of the run's segments, with C11 atomics. So they are
 * atomic between the threads of one voxvm and between voxvm processes that map
 * the same file (the atomics are lock-free on 8-byte words: the static assert
 * below refuses a build where they would take a lock, which could not work
 * across processes). Every error path (bad segment: NativeFault; outside the
 * segment or an unaligned word: MainSegmFault; a heap block too small:
 * HeapRead/WriteFault) returns VV_NATIVE_HOST, so the Python handler in
 * voxvm/host/shm.py raises it with its diagnostic line; that handler is also
 * the reference backend's whole implementation. spawn and join are always
 * Python (voxvm/host/threads.py): a new thread needs a Core, and join blocks.
 *
 * Values in segments are 64-bit big-endian words: loads and stores swap bytes
 * on a little-endian host, and fetch-and-add is a compare-and-swap loop on the
 * stored (big-endian) representation, since a hardware add would carry the
 * wrong way. Every word operation is sequentially consistent
 * (memory_order_seq_cst). shm_read and shm_write are plain copies: ordered
 * after the calling thread's earlier atomics and before its later ones (each
 * native is a separate call the compiler cannot move memory accesses across,
 * and a seq_cst operation is both a release and an acquire), but bytes a
 * concurrent writer changes during the copy may be seen old or new, each byte
 * on its own (docs/concurrency.md "Memory ordering").
 *
 * Registered by voxvm/backends/compiled/_core.pyx (Core.install_shm); the ctx of
 * every entry is the VM's one vv_conc, owned by the Core.
 */
#ifndef VV_SHM_H
#define VV_SHM_H

#include "vv_core.h"

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_ATOMICS__)
#include <stdatomic.h>
typedef _Atomic uint64_t vv_aword;
#define VV_A_LOAD(p) atomic_load_explicit((p), memory_order_seq_cst)
#define VV_A_STORE(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define VV_A_CAS(p, expected, desired) \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_seq_cst, memory_order_seq_cst)
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && sizeof(vv_aword) == 8,
               "64-bit atomics must be lock-free (they are shared between processes)");
#elif defined(__GNUC__) || defined(__clang__)
typedef uint64_t vv_aword;
#define VV_A_LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define VV_A_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define VV_A_CAS(p, expected, desired) \
    __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#else
#error "voxvm's shared-memory natives need C11 atomics or the GCC/Clang __atomic builtins"
#endif

typedef struct vv_segment {
    uint8_t *base;              /* the mapping (page-aligned, so 8-aligned offsets are 8-aligned addresses) */
    uint64_t size;
} vv_segment;

typedef struct vv_conc {
    uint64_t thread_id;         /* thread_id's answer */
    uint64_t nseg;
    vv_segment seg[];           /* the run's segments, by index */
} vv_conc;

/* Big-endian word <-> value (a memcpy through bytes: one bswap on x86-64). */
static inline uint64_t vv_shm_from_be(uint64_t raw) {
    uint8_t b[8];
    memcpy(b, &raw, 8);
    return vv_be64(b);
}

static inline uint64_t vv_shm_to_be(uint64_t value) {
    uint8_t b[8];
    uint64_t raw;
    vv_put_be64(b, value);
    memcpy(&raw, b, 8);
    return raw;
}

/* The segment r1 names, or NULL (NativeFault: the Python handler says so). */
static inline const vv_segment *vv_shm_segment(const vv_vm *vm, const vv_conc *c) {
    uint64_t index = vv_as_u64(vm->regs[1], vm->tags[1]);
    return index < c->nseg ? &c->seg[index] : NULL;
}

/* The word at offset r2 of segment r1, or NULL (bad segment, unaligned, outside). */
static inline vv_aword *vv_shm_word(const vv_vm *vm, const vv_conc *c) {
    const vv_segment *s = vv_shm_segment(vm, c);
    if (s == NULL) return NULL;
    uint64_t offset = vv_as_u64(vm->regs[2], vm->tags[2]);
    if ((offset & 7u) != 0 || s->size < 8 || offset > s->size - 8) return NULL;
    return (vv_aword *)(void *)(s->base + offset);
}

static inline int vv_shm_result(vv_vm *vm, uint64_t value) {
    vm->regs[0] = value;
    vm->tags[0] = VV_TAG_U64;
    return VV_NATIVE_DONE;
}

/* Copies this long give the host a turn afterwards (Ctrl-C, other output), as
 * the loop's own long instructions do (vv_core.h VV_POLL_BYTES). */
static inline int vv_shm_after_copy(uint64_t count) {
    return count >= VV_POLL_BYTES ? VV_NATIVE_YIELD : VV_NATIVE_DONE;
}

static int vv_native_shm(vv_vm *vm, void *ctx, unsigned code) {
    const vv_conc *c = (const vv_conc *)ctx;
    switch (code) {
    case 0x32:                                          /* thread_id */
        return vv_shm_result(vm, c->thread_id);
    case 0x33: {                                        /* shm_size */
        const vv_segment *s = vv_shm_segment(vm, c);
        return s == NULL ? VV_NATIVE_HOST : vv_shm_result(vm, s->size);
    }
    case 0x34: {                                        /* shm_load */
        vv_aword *w = vv_shm_word(vm, c);
        if (w == NULL) return VV_NATIVE_HOST;
        return vv_shm_result(vm, vv_shm_from_be(VV_A_LOAD(w)));
    }
    case 0x35: {                                        /* shm_store: the bits of r3 */
        vv_aword *w = vv_shm_word(vm, c);
        if (w == NULL) return VV_NATIVE_HOST;
        VV_A_STORE(w, vv_shm_to_be(vm->regs[3]));
        return VV_NATIVE_DONE;
    }
    case 0x36: {                                        /* shm_add: wrapping, r0 = old */
        vv_aword *w = vv_shm_word(vm, c);
        if (w == NULL) return VV_NATIVE_HOST;
        uint64_t delta = vm->regs[3];
        uint64_t old = VV_A_LOAD(w);
        while (!VV_A_CAS(w, &old, vv_shm_to_be(vv_shm_from_be(old) + delta))) {
            /* old now holds the current word: try again with it */
        }
        return vv_shm_result(vm, vv_shm_from_be(old));
    }
    case 0x37: {                                        /* shm_cas: r0 = old, ZF = swapped */
        vv_aword *w = vv_shm_word(vm, c);
        if (w == NULL) return VV_NATIVE_HOST;
        uint64_t seen = vv_shm_to_be(vm->regs[3]);
        int swapped = VV_A_CAS(w, &seen, vv_shm_to_be(vm->regs[4]));
        vm->flags[1] = (uint8_t)(swapped ? 1 : 0);
        return vv_shm_result(vm, vv_shm_from_be(seen));
    }
    case 0x38:                                          /* shm_read: segment -> heap */
    case 0x39: {                                        /* shm_write: heap -> segment */
        const vv_segment *s = vv_shm_segment(vm, c);
        if (s == NULL) return VV_NATIVE_HOST;
        uint64_t offset = vv_as_u64(vm->regs[2], vm->tags[2]);
        uint64_t count = vv_as_u64(vm->regs[3], vm->tags[3]);
        uint64_t address = vv_as_u64(vm->regs[4], vm->tags[4]);
        if (count > s->size || offset > s->size - count) return VV_NATIVE_HOST;
        if (count == 0) return VV_NATIVE_DONE;
        uint8_t *p = heap_find(&vm->heap, address, count);
        if (p == NULL) return VV_NATIVE_HOST;
        if (code == 0x38) {
            memcpy(p, s->base + offset, count);
            heap_note_write(&vm->heap, address, count);
        } else {
            memcpy(s->base + offset, p, count);
        }
        return vv_shm_after_copy(count);
    }
    default:
        return VV_NATIVE_HOST;
    }
}

/* A vv_conc for `nseg` segments (filled by the caller), or NULL; free() it. */
static vv_conc *vv_conc_new(uint64_t thread_id, uint64_t nseg) {
    vv_conc *c = (vv_conc *)calloc(1, sizeof(vv_conc) + nseg * sizeof(vv_segment));
    if (c != NULL) {
        c->thread_id = thread_id;
        c->nseg = nseg;
    }
    return c;
}

#endif /* VV_SHM_H */
