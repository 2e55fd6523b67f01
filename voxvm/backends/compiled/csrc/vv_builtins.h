/* vv_builtins.h - the built-in natives that have a C version.
 *
 * Owns the C halves of built-in natives (docs/upstream.md §8.1) for the VM's native
 * table (vv_natives.h): the common cases run inside the loop, and every other
 * case returns VV_NATIVE_HOST so that the Python handler in voxvm/host/ (the
 * one implementation of the whole native, which the reference backend always
 * uses) does it. So each C half must give byte-for-byte the output of its
 * Python handler for the cases it takes; tests/test_native_table.py and the
 * differential and conformance tests check that.
 *
 * Registered by voxvm/backends/compiled/_core.pyx (Core.set_stdout).
 */
#ifndef VV_BUILTINS_H
#define VV_BUILTINS_H

#include "vv_core.h"
#include "vv_numtext.h"

/* 0x01 print and 0x08 put (print without the newline, docs/semantics.md §7.2),
 * numbers to stdout: r1 = U, I or F value, r2 = 1 (stdout). ctx is the VM's
 * vv_outbuf. Strings, addresses, stream 2 and bad streams (NativeFault and its
 * diagnostic) stay with voxvm/host/basic.py. */
static inline int vv_native_show(vv_vm *vm, vv_outbuf *out, int newline) {
    unsigned tag = vm->tags[1];
    if (vm->regs[2] != 1 || (tag != VV_TAG_U64 && tag != VV_TAG_I64 && tag != VV_TAG_F64))
        return VV_NATIVE_HOST;
    /* GC log lines and exception diagnostics recorded since the loop started
     * go to stderr when it returns, after this buffer: a line printed now
     * would come out before them, so let the host print it in order. */
    if (vm->ngc_events || vm->ndiags || out->len > VV_OUT_CAPACITY - (VV_NUMTEXT_MAX + 1))
        return VV_NATIVE_HOST;
    char *p = (char *)out->data + out->len;
    uint64_t bits = vm->regs[1];
    unsigned n = tag == VV_TAG_U64 ? vv_text_u64(bits, p)
               : tag == VV_TAG_I64 ? vv_text_i64(bits, p) : vv_text_f64(bits, p);
    if (newline) p[n++] = '\n';
    out->len += n;
    return out->len >= out->room ? VV_NATIVE_YIELD : VV_NATIVE_DONE;
}

static int vv_native_print(vv_vm *vm, void *ctx, unsigned code) {
    (void)code;
    return vv_native_show(vm, (vv_outbuf *)ctx, 1);
}

static int vv_native_put(vv_vm *vm, void *ctx, unsigned code) {
    (void)code;
    return vv_native_show(vm, (vv_outbuf *)ctx, 0);
}

#endif /* VV_BUILTINS_H */
