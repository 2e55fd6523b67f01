/* vv_ffi.h - foreign function calls inside the dispatch loop.
 *
 * Owns the C native (vv_natives.h ABI) that every FFI code of the VM's native
 * table points at, and its per-code entry: the resolved function pointer and
 * how to call it. voxvm/host/ffi.py reads the configs, opens the libraries
 * and resolves each symbol once; _core.pyx (Core.install_ffi) copies the
 * result into a vv_ffi_entry and registers vv_native_ffi with it as ctx. So
 * a call costs a table lookup and the C call, without the GIL and without
 * Python (docs/ffi.md, docs/performance.md "FFI calls").
 *
 * Two kinds of entry:
 *  - upstream's ABI (docs/upstream.md §9.3): VMValue f(const VMValue *args,
 *    uint32_t argc) with args[i] = {tag, bits} of r(i+1). The bits are the
 *    register's own, so a float arrives as its IEEE bits (semantics.md §3.19);
 *  - a typed signature (docs/ffi.md "Typed signatures"): each argument is
 *    converted from its register by the signature's type, and the call goes
 *    through the generated prototype of its shape (vv_ffi_shapes.h). That
 *    relies on integer and floating-point arguments taking separate register
 *    sequences, which holds on x86-64 System V and AArch64; elsewhere
 *    VV_FFI_TYPED_IN_C is 0 and typed entries are not registered, so the
 *    Python handler (ctypes, the real prototype) calls them.
 *
 * Error paths (a ptr argument that is not a VM address, or not inside its
 * block) change nothing and return VV_NATIVE_HOST: the Python handler of the
 * code finds the same problem and reports it with its diagnostic.
 */
#ifndef VV_FFI_H
#define VV_FFI_H

#include "vv_core.h"
#include "vv_ffi_shapes.h"

#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(_WIN32)
#define VV_FFI_TYPED_IN_C 1
#else
#define VV_FFI_TYPED_IN_C 0
#endif

#define VV_FFI_WHAT 200

typedef struct vv_ffi_entry {
    void *fn;                   /* the resolved symbol */
    int32_t ret;                /* -1: upstream's ABI; else the result's VV_FFI_T_* */
    uint32_t argc;              /* arguments r1..r(argc) */
    uint8_t types[31];          /* typed: VV_FFI_T_* of each argument */
    char what[VV_FFI_WHAT];     /* how the crash line names it (vv_crash.h): "strlen (ncall 0x40, libc.so.6)" */
} vv_ffi_entry;

/* An integer argument of type t from a register: as_i64/as_u64 by signedness,
 * then cut to the type's width and sign- or zero-extended, as a C caller
 * would pass that type (callees may rely on the extension). */
static inline uint64_t vv_ffi_int_arg(unsigned t, uint64_t v, unsigned tag) {
    switch (t) {
    case VV_FFI_T_I8:  return (uint64_t)(int64_t)(int8_t)vv_as_i64(v, tag);
    case VV_FFI_T_I16: return (uint64_t)(int64_t)(int16_t)vv_as_i64(v, tag);
    case VV_FFI_T_I32: return (uint64_t)(int64_t)(int32_t)vv_as_i64(v, tag);
    case VV_FFI_T_I64: return (uint64_t)vv_as_i64(v, tag);
    case VV_FFI_T_U8:  return (uint8_t)vv_as_u64(v, tag);
    case VV_FFI_T_U16: return (uint16_t)vv_as_u64(v, tag);
    case VV_FFI_T_U32: return (uint32_t)vv_as_u64(v, tag);
    default:           return vv_as_u64(v, tag);
    }
}

/* A typed integer result: only the type's width of the return register is
 * defined by the ABI, so cut and extend it. */
static inline uint64_t vv_ffi_int_result(unsigned t, uint64_t r) {
    switch (t) {
    case VV_FFI_T_I8:  return (uint64_t)(int64_t)(int8_t)r;
    case VV_FFI_T_I16: return (uint64_t)(int64_t)(int16_t)r;
    case VV_FFI_T_I32: return (uint64_t)(int64_t)(int32_t)r;
    case VV_FFI_T_U8:  return (uint8_t)r;
    case VV_FFI_T_U16: return (uint16_t)r;
    case VV_FFI_T_U32: return (uint32_t)r;
    default:           return r;
    }
}

/* The host pointer for a ptr argument, or NULL: a heap address inside a live
 * block, or a main-memory address (StrAddr, ds_addr) inside main memory. The
 * function may write the bytes; *mem_from (lowest main-memory address passed)
 * tells the caller where to forget the
 * decoded instructions from (main memory can hold code). */
static inline void *vv_ffi_pointer(vv_vm *vm, uint64_t v, unsigned tag, uint64_t *mem_from) {
    if (tag == VV_TAG_ADDR) return heap_find(&vm->heap, v, 1);
    if ((tag == VV_TAG_STR || tag == VV_TAG_DS_ADDR) && v < vm->len) {
        if (v < *mem_from) *mem_from = v;
        return vm->mem + v;
    }
    return NULL;
}

static int vv_native_ffi(vv_vm *vm, void *ctx, unsigned code) {
    (void)code;
    const vv_ffi_entry *e = (const vv_ffi_entry *)ctx;
    if (e->ret < 0) {
        vv_ffi_value args[VV_NUM_REGISTERS];
        for (uint32_t i = 0; i < e->argc; i++) {
            args[i].typeind = vm->tags[i + 1];
            args[i].data = vm->regs[i + 1];
        }
        vm->ffi_running = e->what;                       /* for the crash line (vv_crash.h) */
        vv_ffi_value result = ((vv_ffi_fn)e->fn)(args, e->argc);
        vm->ffi_running = NULL;
        return vv_ffi_result(vm, result);
    }
#if VV_FFI_TYPED_IN_C
    uint64_t a[VV_FFI_MAX_INT];
    double d[VV_FFI_MAX_F64];
    unsigned ni = 0, nd = 0;
    uint64_t mem_from = UINT64_MAX;
    for (uint32_t i = 0; i < e->argc; i++) {
        unsigned t = e->types[i], tag = vm->tags[i + 1];
        uint64_t v = vm->regs[i + 1];
        if (t == VV_FFI_T_F64) {
            d[nd++] = vv_as_f64(v, tag);
        } else if (t == VV_FFI_T_PTR) {
            void *p = vv_ffi_pointer(vm, v, tag, &mem_from);
            if (p == NULL) return VV_NATIVE_HOST;          /* the host reports it */
            a[ni++] = (uint64_t)(uintptr_t)p;
        } else {
            a[ni++] = vv_ffi_int_arg(t, v, tag);
        }
    }
    /* Before the call: nothing runs in between, and the slots decode again lazily. */
    if (mem_from != UINT64_MAX) vv_invalidate(vm, mem_from, vm->len - mem_from);
    vm->ffi_running = e->what;
    if (e->ret == VV_FFI_T_F64) {
        double r = vv_ffi_call_f64(e->fn, ni, nd, a, d);
        vm->ffi_running = NULL;
        uint64_t bits;
        memcpy(&bits, &r, 8);
        vm->regs[0] = bits;
        vm->tags[0] = VV_TAG_F64;
    } else {
        uint64_t r = vv_ffi_call_int(e->fn, ni, nd, a, d);
        vm->ffi_running = NULL;
        if (e->ret != VV_FFI_T_VOID) {
            vm->regs[0] = vv_ffi_int_result((unsigned)e->ret, r);
            vm->tags[0] = e->ret <= VV_FFI_T_I64 ? VV_TAG_I64 : VV_TAG_U64;
        }
    }
    return VV_NATIVE_DONE;
#else
    return VV_NATIVE_HOST;
#endif
}

#endif /* VV_FFI_H */
