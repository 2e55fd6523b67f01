/* vv_testnatives.h - C natives that exist only for the tests of the native table.
 *
 * Owns a few small natives, one per return path of the C native ABI
 * (vv_natives.h), that tests/test_native_table.py installs through
 * Core._install_test_native(code, name). Nothing installs them in a normal
 * run. `ffi_unsigned_add` is upstream's FFI example (nconfigs/test.toml,
 * libtestfr.c: r1 + r2) written as a foreign function and called through the
 * FFI value marshalling, so that the marshalling is exercised before the FFI
 * loader exists.
 */
#ifndef VV_TESTNATIVES_H
#define VV_TESTNATIVES_H

#include "vv_core.h"

static vv_ffi_value vv_test_unsigned_add(const vv_ffi_value *args, uint32_t argc) {
    vv_ffi_value r = {VV_TAG_U64, 0};
    for (uint32_t i = 0; i < argc; i++) r.data += args[i].data;
    return r;
}

/* r0 = U(as_u64(r1) + as_u64(r2)) through the FFI path, argc = 2. */
static int vv_test_ffi_unsigned_add(vv_vm *vm, void *ctx, unsigned code) {
    (void)ctx; (void)code;
    vv_ffi_value values[VV_NUM_REGISTERS];
    vv_ffi_args(vm, values);
    return vv_ffi_result(vm, vv_test_unsigned_add(values + 1, 2));
}

/* A foreign function returning an invalid type: InvalidDataType, r0 unchanged. */
static int vv_test_ffi_bad_type(vv_vm *vm, void *ctx, unsigned code) {
    (void)ctx; (void)code;
    vv_ffi_value bad = {5, 42};
    return vv_ffi_result(vm, bad);
}

/* Raise exception number as_u64(r1). */
static int vv_test_raise(vv_vm *vm, void *ctx, unsigned code) {
    (void)ctx; (void)code;
    return vv_native_raise(vm, (int)vv_as_u64(vm->regs[1], vm->tags[1]));
}

/* Always the Python handler of the code. */
static int vv_test_host(vv_vm *vm, void *ctx, unsigned code) {
    (void)vm; (void)ctx; (void)code;
    return VV_NATIVE_HOST;
}

/* Trap NATIVE_ERROR with a = the code. */
static int vv_test_trap(vv_vm *vm, void *ctx, unsigned code) {
    (void)ctx;
    vm->trap_kind = VV_TRAP_NATIVE_ERROR;
    vm->trap_a = code;
    vm->trap_b = 0;
    return VV_NATIVE_TRAP;
}

/* r0 = U(r0 + 1), then return to the host (Core.run resumes by itself). */
static int vv_test_yield(vv_vm *vm, void *ctx, unsigned code) {
    (void)ctx; (void)code;
    vm->regs[0] += 1;
    vm->tags[0] = VV_TAG_U64;
    return VV_NATIVE_YIELD;
}

/* ZF := (r1 == 0), NF := 0: a native that changes the flags the loop caches. */
static int vv_test_set_zf(vv_vm *vm, void *ctx, unsigned code) {
    (void)ctx; (void)code;
    vm->flags[1] = vm->regs[1] == 0;
    vm->flags[2] = 0;
    return VV_NATIVE_DONE;
}

#endif /* VV_TESTNATIVES_H */
