/* vv_natives.h - natives that run inside the dispatch loop: the VM's C table.
 *
 * Owns the C native ABI, the per-VM table from ncall code to C function that
 * `ncall` consults before it leaves the loop (vv_loop.h TARGET(NCALL)), the
 * per-VM stdout buffer that C natives write program output into, and the
 * upstream FFI value marshalling (docs/upstream.md §9.3) that the FFI native
 * (vv_ffi.h) uses. The built-in C natives themselves are in
 * vv_builtins.h; the Python face that fills the table is
 * voxvm/backends/compiled/_core.pyx. docs/architecture.md "Native calls"
 * describes both native paths.
 *
 * Why a table in the VM: a native that leaves the loop pays a return to
 * Python, the GIL and a Python handler (microseconds), which serialises
 * threads and dominates print-heavy programs. Several VMs run at once on
 * several threads, so the table and everything a native touches belong to
 * one vv_vm: there is no global state here.
 *
 * The C native ABI
 * ----------------
 *   int fn(vv_vm *vm, void *ctx, unsigned code)
 *
 * `ncall CODE` looks CODE up in vm->natives. With no entry (or no table) the
 * loop returns VV_STATUS_NCALL and the Python host (voxvm/host/registry.py)
 * runs the native, as before. With an entry, the loop calls fn(vm, ctx, CODE)
 * without the GIL, on the VM's thread, with:
 *   - registers and tags in vm->regs / vm->tags (arguments r1..r4, or r1..r(argc)
 *     for FFI functions; the result goes to r0 with the tag it should have);
 *   - flags in vm->flags (OF, ZF, NF, CF), the data stack in vm->stack[0, vm->sp),
 *     the call stack in vm->calls[0, vm->csp), main memory vm->mem[0, vm->len),
 *     the heap through heap_find / heap_note_write on &vm->heap (read and write inside live blocks);
 *     the loop publishes its cached copies before the call and reloads them after;
 *   - vm->ncall_ip = the ncall's address, vm->ip = the next instruction's.
 * It returns one of:
 *   VV_NATIVE_DONE   handled: the loop continues with the next instruction;
 *   VV_NATIVE_YIELD  handled, but the host must run before the next instruction
 *                    (e.g. the stdout buffer is full): Core.run() hands the buffer
 *                    to the host, then resumes the loop; invisible to its caller;
 *   VV_NATIVE_HOST   not handled here: leave the loop as a plain ncall, so the
 *                    Python handler of CODE runs (e.g. print of a string, or any
 *                    error path that must write a diagnostic on stderr: C natives
 *                    never write stderr themselves, so that stdout/stderr ordering
 *                    stays the host's). Nothing may have been changed before;
 *   VV_NATIVE_TRAP   stop the program with the trap in vm->trap_kind/trap_a/trap_b
 *                    (e.g. VV_TRAP_HOST_MEMORY); ip stays on the ncall.
 * voxvm exceptions are raised with vv_native_raise (the pending list), then
 * VV_NATIVE_DONE: ip advances past the ncall in every case, as docs/upstream.md §8.0.
 * `ctx` is the entry's own pointer (the stdout buffer for print and put, a resolved
 * foreign function for FFI, a shared segment for atomics); the table does not
 * own it: whoever registers an entry keeps ctx alive while it is registered.
 */
#ifndef VV_NATIVES_H
#define VV_NATIVES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    VV_NATIVE_DONE = 0,
    VV_NATIVE_YIELD = 1,
    VV_NATIVE_HOST = 2,
    VV_NATIVE_TRAP = 3
};

typedef int (*vv_native_fn)(vv_vm *vm, void *ctx, unsigned code);

typedef struct vv_native {
    vv_native_fn fn;            /* NULL: no C native for this code */
    void *ctx;
} vv_native;

/* Program output that C natives produce for stdout. The host (Core.run in
 * _core.pyx) takes the bytes at every return of the loop, so they reach the
 * host's stream in program order with what Python natives write; a native
 * returns VV_NATIVE_YIELD once `len` reaches `room`, which the host sets (the
 * room left in its own 64 KiB buffer, or 1 for an interactive stdout, so that
 * every print is flushed at once as voxvm/host/io.py HostIO does). */
#define VV_OUT_ROOM_MAX 65536u
#define VV_OUT_CAPACITY (VV_OUT_ROOM_MAX + 1024u)   /* room plus one line of any C native */
typedef struct vv_outbuf {
    uint8_t *data;              /* VV_OUT_CAPACITY bytes, allocated with the first C print */
    uint32_t len, room;
} vv_outbuf;

/* 65,536 possible codes in pages of 256 entries, allocated when an entry of
 * the page is first set: a lookup is two loads, and a VM with a few natives
 * costs a few KiB. */
typedef struct vv_natives {
    vv_native *pages[256];
    vv_outbuf out;
} vv_natives;

/* The entry for `code`, or NULL (the hot case for Python-only codes: one test). */
static inline const vv_native *vv_native_find(const vv_vm *vm, unsigned code) {
    const vv_natives *t = vm->natives;
    if (VV_LIKELY(t == NULL)) return NULL;
    const vv_native *page = t->pages[(code >> 8) & 255u];
    if (page == NULL || page[code & 255u].fn == NULL) return NULL;
    return &page[code & 255u];
}

/* The VM's native state, created on first use; NULL when out of memory. */
static vv_natives *vv_natives_get(vv_vm *vm) {
    if (vm->natives == NULL) vm->natives = (vv_natives *)calloc(1, sizeof(vv_natives));
    return vm->natives;
}

/* Set (fn != NULL) or remove (fn == NULL) the C native for `code`. 0, or -1
 * when out of memory. Not while the loop runs (the Core's `running` guard). */
static int vv_native_set(vv_vm *vm, unsigned code, vv_native_fn fn, void *ctx) {
    if (code > 0xFFFFu) return -1;
    if (fn == NULL && vm->natives == NULL) return 0;
    vv_natives *t = vv_natives_get(vm);
    if (t == NULL) return -1;
    vv_native **page = &t->pages[code >> 8];
    if (*page == NULL) {
        if (fn == NULL) return 0;
        *page = (vv_native *)calloc(256, sizeof(vv_native));
        if (*page == NULL) return -1;
    }
    (*page)[code & 255u].fn = fn;
    (*page)[code & 255u].ctx = fn ? ctx : NULL;
    return 0;
}

/* The stdout buffer, allocated on first use; NULL when out of memory. */
static vv_outbuf *vv_native_out(vv_vm *vm) {
    vv_natives *t = vv_natives_get(vm);
    if (t == NULL) return NULL;
    if (t->out.data == NULL) {
        t->out.data = (uint8_t *)malloc(VV_OUT_CAPACITY);
        if (t->out.data == NULL) return NULL;
        t->out.len = 0;
        t->out.room = VV_OUT_ROOM_MAX;
    }
    return &t->out;
}

static void vv_natives_free(vv_vm *vm) {
    vv_natives *t = vm->natives;
    if (t == NULL) return;
    for (int i = 0; i < 256; i++) free(t->pages[i]);
    free(t->out.data);
    free(t);
    vm->natives = NULL;
}

/* Raise voxvm exception `number` from a native: VV_NATIVE_DONE (the
 * pending counts take no memory, so raising cannot fail); a number outside
 * 1..VV_EXC_COUNT is a bug of the native and stops the program as a
 * BAD_EXCEPTION trap instead of writing outside the counts. */
static inline int vv_native_raise(vv_vm *vm, int number) {
    if (number < 1 || number > VV_EXC_COUNT) {
        vm->trap_kind = VV_TRAP_BAD_EXCEPTION;
        vm->trap_a = (uint64_t)number;
        vm->trap_b = 0;
        return VV_NATIVE_TRAP;
    }
    vv_raise_at(vm, number, vm->ncall_ip);
    return VV_NATIVE_DONE;
}

/* ------------------------------------------------------------------------
 * FFI values (docs/upstream.md §9.3): what a foreign function `VMValue f(const
 * VMValue *args, uint32_t argc)` receives and returns. */

typedef struct vv_ffi_value {
    uint32_t typeind;           /* the register's tag (docs/semantics.md §2: tags are upstream's kinds) */
    uint64_t data;
} vv_ffi_value;

typedef vv_ffi_value (*vv_ffi_fn)(const vv_ffi_value *args, uint32_t argc);

/* Snapshot the 32 registers as upstream does before a foreign call, with
 * semantics.md §3.19's fix: data = the register's bits (the payload for
 * integers and addresses, the IEEE bits for a float, where upstream truncates
 * it). The callee gets &values[1]: args[0..argc-1] = r1..r(argc).
 * vv_ffi.h's vv_native_ffi copies only r1..r(argc) the same way. */
static inline void vv_ffi_args(const vv_vm *vm, vv_ffi_value values[VV_NUM_REGISTERS]) {
    for (int i = 0; i < VV_NUM_REGISTERS; i++) {
        values[i].typeind = vm->tags[i];
        values[i].data = vm->regs[i];
    }
}

/* Store a foreign function's result in r0: its bits with its tag (a float
 * result is IEEE bits), or InvalidDataType with r0 unchanged when the type is
 * not a register tag. Returns what the native returns. */
static inline int vv_ffi_result(vv_vm *vm, vv_ffi_value result) {
    if (!VV_IS_VALID_TAG(result.typeind))
        return vv_native_raise(vm, VV_EXC_INVALIDDATATYPE);
    vm->regs[0] = result.data;
    vm->tags[0] = (uint8_t)result.typeind;
    return VV_NATIVE_DONE;
}

#endif /* VV_NATIVES_H */
