/* vv_core.h - the voxvm execution core in C: machine state, generic
 * arithmetic and the lazy pre-decoder (the dispatch loop is vv_loop.h).
 *
 * Owns everything that runs without the GIL: the `vv_vm` state (registers
 * with one tag each, flags, main memory, decoded-instruction slots, data and
 * call stacks, pending exceptions), the out-of-line halves of the generic
 * (tag-dispatched) operations, and decoding of the big-endian voxvm bytecode
 * into fixed-width slots. The Python
 * face (`Core`, voxvm.backend protocol) is voxvm/backends/compiled/_core.pyx; every
 * number shared with Python (opcodes, sizes, operand kinds, tags and tag
 * classes, traps, statuses, TYPE_MISMATCH operation ids, slot ops) comes from
 * the generated header vv_tables.h (tools/gen_isa.py), never from a second
 * hand-written table.
 *
 * Semantics: docs/semantics.md wins, upstream-voxvm-v8.md where it is silent;
 * voxvm/backends/reference/core.py is the readable reference and tests/test_differential.py
 * checks that the two agree. Design rules: docs/performance.md "Design rules"
 * (one nogil function over C state, raw pointers, computed goto with a switch
 * fallback, compare+branch fusion, rare work out of line).
 *
 * Decoding. Program-visible ip is a byte address, so there is one slot per
 * byte of main memory (plus a sentinel slot at index `len` whose op traps
 * IP_OUTSIDE, so falling off the end needs no check). Slots start as
 * VV_SOP_X_DECODE (zero); executing one decodes the instruction at that address
 * into the slot (or into an X_TRAP slot carrying the trap a fetch there gives:
 * unknown opcode, truncated instruction, register byte >= 32) and dispatches
 * again. Handlers therefore never check register numbers. A write into main
 * memory resets every slot whose instruction could overlap the written bytes.
 *
 * Slot storage (docs/architecture.md "Slot storage"). The slot array is one
 * virtual reservation for every byte main memory may ever hold, so the loop
 * keeps `pc += size` and `pc = code + target`; host memory is only spent on
 * the pages of slots that were decoded. A page of slots costs memory once a
 * slot in it is written (a read of an untouched page sees zeros, X_DECODE).
 * At most `slot_budget` pages are resident, 2 bytes per byte of main memory
 * (at least VV_SLOT_FLOOR_BYTES): beyond that, decoding a slot in a new page
 * first drops another page (a clock hand over the pages), which the OS
 * returns as zeros, i.e. X_DECODE, so its slots are decoded again when next
 * executed. Decoding is a function of memory alone, so a dropped slot is
 * never wrong, only slower the next time.
 */
#ifndef VV_CORE_H
#define VV_CORE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define VV_SLOTS_MMAP 1
#endif

#include "vv_tables.h"
#include "heap/vh_heap.h"

#if defined(__GNUC__) || defined(__clang__)
#define VV_LIKELY(x) __builtin_expect(!!(x), 1)
#define VV_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define VV_NOINLINE __attribute__((noinline))
#define VV_COLD __attribute__((noinline, cold))
#define VV_MAYBE_UNUSED __attribute__((unused))
/* Make the compiler forget what it knows about x (keeps shared slow paths
 * from pinning the fast paths' temporaries in stack slots). */
#define VV_OPAQUE(x) __asm__("" : "+r"(x))
/* The dispatch loop's registers (performance.md "Registers of the loop"). GCC's
 * allocator spilled some of the loop's most used locals (vm itself, the flags,
 * the budget) to the stack, and which ones changed with any edit of the loop.
 * Two things together keep them in registers: on GCC/x86-64 vm and the flags are
 * bound to callee-saved registers (VV_PIN), and every dispatch names them, the
 * data stack pointer and the budget in an empty asm that needs them in registers
 * (VV_IN_REGISTERS; for a bound local, in its register). Neither emits an
 * instruction or changes a value. */
#define VV_IN_REGISTERS(a, b, c, d) __asm__("" : : "r"(a), "r"(b), "r"(c), "r"(d))
#if !defined(__clang__) && defined(__x86_64__)
#define VV_PIN(reg) __asm__(reg)
#endif
/* Threaded dispatch (one indirect jump per handler) unless asked not to. */
#if !defined(VV_NO_COMPUTED_GOTO)
#define VV_HAVE_COMPUTED_GOTO 1
#endif
#else
#define VV_LIKELY(x) (x)
#define VV_UNLIKELY(x) (x)
#define VV_NOINLINE
#define VV_COLD
#define VV_MAYBE_UNUSED
#define VV_OPAQUE(x) ((void)0)
#define VV_IN_REGISTERS(a, b, c, d) ((void)0)
#endif
#ifndef VV_PIN
#define VV_PIN(reg)
#endif

/* ------------------------------------------------------------------------
 * Decoded slots. A slot's op is a slot op (VV_SOP_*, vv_tables.h), not an
 * opcode byte: the decoder maps each opcode to its own slot op and has
 * internal ones (fused pairs, X_DECODE, X_TRAP, X_OUTSIDE) in the same dense
 * numbering, so they can never collide with an opcode.
 *
 * Fused compare + conditional jump (X_UCJ / X_ICJ / X_FCJ, 12 bytes): a, b =
 * compared registers, imm = VV_SLOT_REL(target) (inside memory when decoded), d =
 * condition mask: the jump is taken iff bit (ZF | NF << 1) of d is set
 * (VV_COND_*). X_INC_CJ adds a uinc c in front (14 bytes), X_ADD_CJ a uadd a b
 * stepping the compared register a (c = the bound; 15 bytes); X_DEC_JNZ is udec a
 * + jnz imm (11 bytes); X_MOV_<op> is movr d s + op d x (6 bytes) computing
 * R[a] = R[b] op R[c].
 *
 * A constant operand (X_K*): uload/iload k v + an instruction x k (x != k),
 * i.e. the constant loaded into a scratch register and used at once, as
 * 2-operand code without immediates does it: a = k, b = x, imm = v. The
 * compare-and-branch forms X_KUCJ / X_KICJ (22 bytes) keep the condition mask
 * in c and the target in w, as VV_SLOT_REL(target) (fused only when that fits
 * 32 bits). X_MOV_RET is movr a b + ret.
 *
 * Float pairs: two of fadd/fsub/fmul on one register, d = (d op1 x) op2 y
 * (X_<OP1>_<OP2>: a = d, b = x, c = y) and its movr form d = (s op1 x) op2 y
 * (X_MOV_<OP1>_<OP2>: a = d, b = s, c = x, d = y), 2-operand code's way of
 * writing a * b + c. y may be d: then it is the first result.
 *
 * Field accesses: uadd p x + load t v p c (X_ADD_LOAD: a = p, b = x, c = t,
 * d = v, x = c) or + store p v c (X_ADD_STORE: a = p, b = x, c = v, d = c),
 * an address computed and used at once; with a movr p s in front
 * (X_MOV_ADD_LOAD: a = p, b = s, c = x, d = t, x = v | c << 8;
 * X_MOV_ADD_STORE: a = p, b = s, c = x, d = v, x = c), 2-operand code's
 * `p = base + offset`. The loop runs the address step, then the access only
 * on its fast path (count uint64 8, the block found, a valid load type): any
 * other case continues at the access's own slot, with the address step done,
 * so faults and traps stay those of the unfused instruction.
 *
 * Stack pairs, the sequences of a stack machine's code (docs/compiler-guide.md):
 * X_PUSH_PUSH push a + push b, X_POP_POP pop a + pop b, X_POP_PUSH pop a + push b
 * (replace the top), X_POP_RET pop a + ret. */

/* Condition masks of the conditional jumps, indexed by ZF | NF << 1 (upstream.md §1.4). */
#define VV_COND_JZ 0xAu   /* ZF */
#define VV_COND_JNZ 0x5u  /* !ZF */
#define VV_COND_JL 0xCu   /* NF */
#define VV_COND_JGE 0x3u  /* !NF */
#define VV_COND_JG 0x1u   /* !ZF && !NF */
#define VV_COND_JLE 0xEu  /* NF || ZF */

#define VV_FUSED_CMP_JCC_SIZE (VV_SIZE_UCMP + VV_SIZE_JZ)
#define VV_FUSED_MOV_BINARY_SIZE (VV_SIZE_MOVR + VV_SIZE_UADD)
#define VV_FUSED_INC_CMP_JCC_SIZE (VV_SIZE_UINC + VV_SIZE_UCMP + VV_SIZE_JZ)
#define VV_FUSED_DEC_JNZ_SIZE (VV_SIZE_UDEC + VV_SIZE_JNZ)
#define VV_FUSED_ADD_CMP_JCC_SIZE (VV_SIZE_UADD + VV_SIZE_UCMP + VV_SIZE_JZ)
#define VV_FUSED_ALLOC_STORE_SIZE (VV_SIZE_ALLOC + VV_SIZE_STORE)
#define VV_FUSED_ADD_LOAD_SIZE (VV_SIZE_UADD + VV_SIZE_LOAD)
#define VV_FUSED_ADD_STORE_SIZE (VV_SIZE_UADD + VV_SIZE_STORE)
#define VV_FUSED_MOV_ADD_LOAD_SIZE (VV_SIZE_MOVR + VV_SIZE_UADD + VV_SIZE_LOAD)
#define VV_FUSED_MOV_ADD_STORE_SIZE (VV_SIZE_MOVR + VV_SIZE_UADD + VV_SIZE_STORE)
/* Largest block alloc+store fuses: small objects (heap_alloc_small's), far
 * below VV_POLL_BYTES, so the fused op never needs the poll an allocation's
 * size may ask for. */
#define VV_FUSED_ALLOC_MAX 64u
#define VV_FUSED_LOAD_BINARY_SIZE (VV_SIZE_ULOAD + VV_SIZE_UADD)
#define VV_FUSED_LOAD_CMP_JCC_SIZE (VV_SIZE_ULOAD + VV_SIZE_UCMP + VV_SIZE_JZ)
#define VV_FUSED_MOV_RET_SIZE (VV_SIZE_MOVR + VV_SIZE_RET)
#define VV_FUSED_FLOAT_PAIR_SIZE (VV_SIZE_FADD + VV_SIZE_FADD)
#define VV_FUSED_STACK_PAIR_SIZE (VV_SIZE_PUSH + VV_SIZE_POP)
#define VV_FUSED_POP_RET_SIZE (VV_SIZE_POP + VV_SIZE_RET)
#define VV_FUSED_MOV_FLOAT_PAIR_SIZE (VV_SIZE_MOVR + VV_SIZE_FADD + VV_SIZE_FADD)
/* Longest span of one slot's instruction (plain or fused): a write at byte w
 * can change the slots starting in [w - VV_MAX_SPAN + 1, w]. */
#define VV_MAX_SPAN 22

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(VV_MAX_INSTRUCTION_SIZE <= VV_MAX_SPAN, "VV_MAX_SPAN too small");
_Static_assert(VV_FUSED_CMP_JCC_SIZE <= VV_MAX_SPAN && VV_FUSED_MOV_BINARY_SIZE <= VV_MAX_SPAN &&
               VV_FUSED_INC_CMP_JCC_SIZE <= VV_MAX_SPAN && VV_FUSED_DEC_JNZ_SIZE <= VV_MAX_SPAN &&
               VV_FUSED_ALLOC_STORE_SIZE <= VV_MAX_SPAN && VV_FUSED_MOV_ADD_LOAD_SIZE <= VV_MAX_SPAN &&
               VV_FUSED_MOV_ADD_STORE_SIZE <= VV_MAX_SPAN && VV_FUSED_ADD_CMP_JCC_SIZE <= VV_MAX_SPAN &&
               VV_FUSED_LOAD_BINARY_SIZE <= VV_MAX_SPAN && VV_FUSED_LOAD_CMP_JCC_SIZE <= VV_MAX_SPAN &&
               VV_FUSED_MOV_RET_SIZE <= VV_MAX_SPAN && VV_FUSED_MOV_FLOAT_PAIR_SIZE <= VV_MAX_SPAN,
               "VV_MAX_SPAN too small for fusion");
_Static_assert(VV_SIZE_ULOAD == VV_SIZE_ILOAD, "uload/iload sizes differ");
_Static_assert(VV_SIZE_PUSH == VV_SIZE_POP, "push/pop sizes differ");
/* Handlers shared by several opcodes advance by one size: they must agree. */
_Static_assert(VV_SIZE_UADD == 3 && VV_SIZE_IADD == 3 && VV_SIZE_FADD == 3 && VV_SIZE_UMUL == 3 &&
               VV_SIZE_IMUL == 3 && VV_SIZE_FMUL == 3 && VV_SIZE_USUB == 3 && VV_SIZE_ISUB == 3 &&
               VV_SIZE_FSUB == 3, "binary arithmetic sizes differ");
_Static_assert(VV_SIZE_UDIV == VV_SIZE_IDIV && VV_SIZE_UDIV == VV_SIZE_FDIV && VV_SIZE_UREM == VV_SIZE_IREM &&
               VV_SIZE_UREM == VV_SIZE_FREM, "division sizes differ");
_Static_assert(VV_SIZE_UCMP == VV_SIZE_ICMP && VV_SIZE_UCMP == VV_SIZE_FCMP, "compare sizes differ");
_Static_assert(VV_SIZE_FTOU == VV_SIZE_PTOU, "ftou/ptou sizes differ");
_Static_assert(VV_SIZE_AND == VV_SIZE_OR && VV_SIZE_AND == VV_SIZE_XOR, "logic sizes differ");
_Static_assert(VV_SIZE_JZ == VV_SIZE_JNZ && VV_SIZE_JZ == VV_SIZE_JL && VV_SIZE_JZ == VV_SIZE_JG &&
               VV_SIZE_JZ == VV_SIZE_JGE && VV_SIZE_JZ == VV_SIZE_JLE, "conditional jump sizes differ");
#endif

/* ------------------------------------------------------------------------
 * State */

/* One decoded instruction: 16 bytes, four per cache line. Register operands
 * go to a, b, c, d in operand order (already checked < 32); the first 64-bit
 * immediate (specialised per op, e.g. data_base + rel) to imm; a 16-bit
 * immediate to x. Rare second immediates are read back from memory. X_CALL
 * (its return address), X_KUCJ and X_KICJ (their jump) keep a second immediate
 * in w instead of d, len and x. */
typedef struct vv_slot {
    uint8_t op, a, b, c;
    union {
        struct {
            uint8_t d, len;
            uint16_t x;
        };
        uint32_t w;
    };
    uint64_t imm;
} vv_slot;

/* A jump target the decoder found inside memory, as the fused and X_CALL
 * slots keep it: the distance in bytes from the jumping slot (at `from`) to the
 * target's slot, two's complement, so that the loop's jump is one add to its
 * slot pointer (vv_loop.h JUMP_SLOT). */
#define VV_SLOT_REL(target, from) (((uint64_t)(target) - (uint64_t)(from)) * sizeof(vv_slot))
/* ... and whether it fits the 32-bit field w (as int32_t). */
#define VV_SLOT_REL_FITS32(target, from) \
    ((target) >= (from) ? (target) - (from) <= (uint64_t)INT32_MAX / sizeof(vv_slot) \
                        : (from) - (target) <= (uint64_t)INT32_MAX / sizeof(vv_slot))

/* One collection or growth of the heap, reported through the Core's log
 * callback (--gc-log, -v) once the loop has returned (no Python in the loop). */
enum { VV_GC_COLLECTION = 0, VV_GC_GROWTH = 1 };
typedef struct vv_gc_event {
    uint64_t kind;           /* VV_GC_COLLECTION or VV_GC_GROWTH */
    uint64_t number;         /* collections so far, this one included */
    uint64_t freed_blocks, freed_bytes;   /* collection: what the sweep freed (payload bytes) */
    uint64_t live_blocks, live_bytes;     /* ... and what it left */
    uint64_t heap_size;      /* growth: the new heap size in bytes */
    uint64_t ns;             /* collection: the pause */
} vv_gc_event;

/* One event of semantics.md §9 waiting for run() to report it (voxvm/diagnostics.py):
 * code = an exception number, or VV_DIAG_USF for an out-of-range usf (a = the
 * index, b = the stack depth). gc_mark = how many GC events were recorded
 * before it, so that run() prints both kinds of line in the order they happened. */
typedef struct vv_diag {
    uint32_t code, gc_mark;
    uint64_t ip, a, b;
} vv_diag;
#define VV_GC_EVENTS 64      /* the loop returns to flush the log when fewer than ... */
#define VV_GC_EVENTS_PER_ALLOC 3   /* ... these are left: an allocation logs a collection and two growths at most (vh_policy.h) */

/* A data-stack entry: the 64 bits and the tag (upstream.md §1.7). */
typedef struct vv_entry {
    uint64_t v;
    uint64_t t;
} vv_entry;

typedef struct vv_vm {
    /* The registers' bits; fregs reads and writes the same bits as float64, so
     * that the loop's float fast paths use the register file as a memory operand
     * of the float unit (type punning through a union: defined in C). */
    union {
        uint64_t regs[VV_NUM_REGISTERS];
        double fregs[VV_NUM_REGISTERS];
    };
    uint8_t tags[VV_NUM_REGISTERS];
    uint8_t flags[4];            /* OF, ZF, NF, CF (upstream.md §1.4) */
    uint64_t ip;                 /* byte address of the next instruction */

    uint8_t *mem;                /* main memory: image + what dlbc appended */
    uint64_t len;                /* bytes in use */
    uint64_t mem_alloc;          /* bytes allocated for mem */
    uint64_t capacity;           /* --init-ram: dlbc's limit (an image may be larger; then dlbc always fails) */
    vv_slot *code;               /* len + 1 slots used; code[len] is the X_OUTSIDE sentinel */
    uint64_t code_alloc;         /* slots reserved (address space; see "Slot storage") */
    uint8_t *slot_live;          /* one byte per page of slots: 1 if it may hold decoded slots */
    uint64_t slot_pages;         /* pages reserved (entries of slot_live) */
    uint64_t slots_live;         /* pages marked live */
    uint64_t slot_budget;        /* at most this many live pages */
    uint64_t slot_hand;          /* the next page the clock looks at when one must go */
    uint64_t slot_budget_max;    /* 0, or a lower budget in pages (tests: Core._limit_decoded_pages) */
    unsigned slot_shift;         /* log2(slots per page) */
    uint64_t dec_lo, dec_hi;     /* slots outside [dec_lo, dec_hi) were never decoded */
    uint64_t data_base;

    uint64_t *funcs;             /* function table: absolute addresses */
    uint64_t nfuncs;

    vv_entry *stack;             /* data stack, bottom first */
    uint64_t sp, stack_alloc, stack_limit;
    uint64_t *calls;             /* call stack of return addresses */
    uint64_t csp, calls_alloc, call_limit;
    /* Pending exceptions (semantics.md §9): a count per kind, pending[N - 1]
     * for exception N. `jexc` only asks whether one of a kind is pending and
     * removes one, so counts are exact; a program raising forever never grows
     * the host. */
    uint64_t pending[VV_EXC_COUNT];
    /* Diagnostics (semantics.md §9): every raise and out-of-range usf is
     * counted; the first VV_DIAG_SHOWN of each kind are also kept in diags
     * until run() hands them to the host (a C print defers to the host while
     * any wait, so its line keeps its place among them). */
    uint64_t raised_total, usf_total;
    uint32_t ndiags;
    vv_diag diags[2 * VV_DIAG_SHOWN];

    int fuse;                    /* decoder may fuse pairs (off for instruction counting) */
    uint64_t executed;           /* instructions counted by the VV_LOOP_COUNT loop */

    int trap_kind;
    uint64_t trap_ip, trap_a, trap_b;
    uint64_t ncall_code, ncall_ip;

    /* The program's heap (heap/vh_heap.h), compiled into this extension and
     * called directly by the loop; heap_init / heap_free_all are the Core's
     * (voxvm/backends/compiled/_core.pyx). Its block cache is the load/store fast path. */
    Heap heap;
    int gc_log;                  /* record GC events for the log callback */
    uint32_t ngc_events;
    vv_gc_event gc_events[VV_GC_EVENTS];
    int64_t budget_left;         /* branch budget left when the loop returned VV_STATUS_FLUSH or _NCALL */
    /* Interruption (docs/resource-limits.md "Interrupting a run"): the loop
     * polls (vv_poll) every VV_POLL_BRANCHES branch events and after every
     * instruction that may take long, and returns VV_STATUS_FLUSH when a stop
     * was requested (from any thread: vv_request_stop) or the time slice that
     * run() granted is over, so that run() can look at signals and the flag. */
    int stop;                    /* set atomically by vv_request_stop, cleared by the owner */
    int flush_due;               /* a slow path polled and asks the loop to return after this instruction */
    uint64_t deadline;           /* vh_now_ns() after which the loop returns; 0: never */
    uint8_t *breaks;             /* breakpoints, one bit per address (vv_debug.h); NULL: none */
    uint64_t breaks_len;         /* addresses the bitmap covers */
    struct vv_prof *prof;        /* the profiling loop's counters (vv_debug.h); NULL: not profiling */
    struct vv_natives *natives;  /* C natives `ncall` runs in the loop, and their stdout (vv_natives.h); NULL: none */
    int ret_ends;                /* a spawned thread (docs/concurrency.md): `ret` on an empty call stack ends it like `halt` */
    /* The crash line (vv_crash.h): the foreign function running now, as its
     * entry names it, or NULL; the thread that last ran the loop; this
     * machine's place in vv_crash_vms. Last, so that the loop's fields keep
     * their offsets. */
    const char *volatile ffi_running;
    uintptr_t run_thread;
    int crash_slot;
} vv_vm;

/* ------------------------------------------------------------------------
 * Interruption */

/* Every this many branch events the loop polls (a relaxed atomic load and a
 * clock read, ~20 ns per 1024 branches); one power of two less than 2^k. */
#define VV_POLL_MASK 1023
/* Instructions whose cost grows with a byte count (memcpy, storedat, ubd,
 * dlbc, alloc) poll after running when the count is at least this. */
#define VV_POLL_BYTES (64u << 10)
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(VV_FUSED_ALLOC_MAX < VV_POLL_BYTES, "a fused allocation must not need a poll");
#endif

#if defined(__GNUC__) || defined(__clang__)
#define VV_ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define VV_ATOMIC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define VV_ATOMIC_TAKE(p) __atomic_exchange_n((p), 0, __ATOMIC_RELAXED)
#else
#define VV_ATOMIC_TAKE(p) vv_take_volatile((volatile int *)(p))
static inline int vv_take_volatile(volatile int *p) { int v = *p; if (v) *p = 0; return v; }
#define VV_ATOMIC_LOAD(p) (*(volatile int *)(p))
#define VV_ATOMIC_STORE(p, v) (*(volatile int *)(p) = (v))
#endif

/* Ask the VM's loop to return at its next poll; safe from any thread (the
 * owner's run() turns it into a stop). */
static inline void vv_request_stop(vv_vm *vm) { VV_ATOMIC_STORE(&vm->stop, 1); }

/* The owner consumes a stop request: 1 if there was one (it is cleared). */
static inline int vv_take_stop(vv_vm *vm) { return VV_ATOMIC_TAKE(&vm->stop); }

/* 1 if the loop should return now: a stop was requested or the slice is over. */
static VV_COLD int vv_poll(vv_vm *vm) {
    if (VV_ATOMIC_LOAD(&vm->stop)) return 1;
    return vm->deadline != 0 && vh_now_ns() >= vm->deadline;
}

/* ------------------------------------------------------------------------
 * Small helpers */

static inline double vv_f(uint64_t bits) { double d; memcpy(&d, &bits, 8); return d; }
static inline uint64_t vv_b(double d) { uint64_t bits; memcpy(&bits, &d, 8); return bits; }

/* The result of a binary float operation whose result r is a NaN (semantics.md §12):
 * with a NaN operand, that NaN quieted, the first operand's when both are NaN (C and
 * the hardware leave that choice open, and compilers swap operands of + and *); a NaN
 * the operation created (inf - inf) stays the FPU's default NaN. Called only when the
 * result is a NaN, so the fast paths pay one compare. */
#define VV_QUIET_NAN_BIT 0x0008000000000000ull
static inline uint64_t vv_nan_result(uint64_t x, uint64_t y, uint64_t r) {
    if ((x << 1) > 0xFFE0000000000000ull) return x | VV_QUIET_NAN_BIT;
    if ((y << 1) > 0xFFE0000000000000ull) return y | VV_QUIET_NAN_BIT;
    return r;
}

/* vv_nan_result of the operands in registers *x and *y, out of line: the fast
 * paths then read their operands straight into the float unit (vv_loop.h FREG). */
static VV_COLD VV_MAYBE_UNUSED uint64_t vv_nan_result_at(const uint64_t *x, const uint64_t *y, double r) {
    return vv_nan_result(*x, *y, vv_b(r));
}

/* x INSN y for the loop's float fast paths (vv_loop.h FLOAT_OP), where the
 * hardware already gives vv_nan_result's answer: on x86-64 the SSE2 scalar
 * instructions return a NaN operand quieted, the first source's (the
 * destination's) when both are NaN, and the default NaN for a NaN they create
 * (Intel SDM vol. 1, 4.8.3.5 "Rules for Handling NaNs"; AMD the same). C leaves
 * the operand order to the compiler, so the asm fixes it, and no NaN check is
 * needed. Elsewhere the loop checks the result (vv_nan_result_at). */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define VV_SSE_FLOAT_OP(INSN, x, y) __extension__({ \
        double a_ = (x); \
        __asm__(INSN " {%1, %0|%0, %1}" : "+x"(a_) : "xm"(y)); \
        a_; })
#endif

static inline uint64_t vv_be64(const uint8_t *p) {
    return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40) |
           ((uint64_t)p[3] << 32) | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
           ((uint64_t)p[6] << 8) | (uint64_t)p[7];
}

static inline void vv_put_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}

/* Rust `f as u64` / `f as i64`: truncation toward zero, NaN -> 0, saturating (upstream.md §1.2). */
static inline uint64_t vv_f2u_sat(double f) {
    if (!(f > 0.0)) return 0;                       /* NaN, zero, negative */
    if (f >= 18446744073709551616.0) return UINT64_MAX;
    return (uint64_t)f;
}

static inline int64_t vv_f2i_sat(double f) {
    if (f != f) return 0;
    if (f >= 9223372036854775808.0) return INT64_MAX;
    if (f <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)f;
}

static inline uint64_t vv_as_u64(uint64_t v, unsigned t) {
    return t == VV_TAG_F64 ? vv_f2u_sat(vv_f(v)) : v;
}

static inline int64_t vv_as_i64(uint64_t v, unsigned t) {
    return t == VV_TAG_F64 ? vv_f2i_sat(vv_f(v)) : (int64_t)v;
}

static inline double vv_as_f64(uint64_t v, unsigned t) {
    if (t == VV_TAG_F64) return vv_f(v);
    if (t == VV_TAG_I64) return (double)(int64_t)v;
    return (double)v;
}

/* Exact floor(sqrt(v)) for every u64 (no double rounding error survives). */
static VV_NOINLINE uint64_t vv_isqrt(uint64_t v) {
    if (v < 2) return v;
    uint64_t r = (uint64_t)sqrt((double)v);
    if (r > 0xFFFFFFFFull) r = 0xFFFFFFFFull;
    while (r * r > v) r--;
    while (r < 0xFFFFFFFFull && (r + 1) * (r + 1) <= v) r++;
    return r;
}

/* base ** exponent modulo 2^64 (release-build upstream wraps). */
static VV_NOINLINE uint64_t vv_pow_wrap(uint64_t base, uint32_t exponent) {
    uint64_t result = 1;
    while (exponent) {
        if (exponent & 1u) result *= base;
        base *= base;
        exponent >>= 1;
    }
    return result;
}

/* ------------------------------------------------------------------------
 * Generic (tag-dispatched) arithmetic: the full upstream.md §1.3 table with the
 * one-tag rules of semantics.md §2. The loop handles equal integer or float tags
 * inline and calls these for everything else. */

enum { VV_ARITH_OK = 0, VV_ARITH_ZERODIV = 1, VV_ARITH_MISMATCH = 2 };

/* Result tag of a binary + - * / % & | ^, or 0 for a mismatched pair. */
static inline unsigned vv_result_tag(int op, unsigned l, unsigned r) {
    if (l == r) return l;
    if (VV_IS_X(l) && r == VV_TAG_U64) return l;
    if (l == VV_TAG_U64 && VV_IS_X(r))
        return (op == VV_AR_SUB || op == VV_AR_DIV || op == VV_AR_REM) ? VV_TAG_U64 : r;
    return 0;
}

static VV_NOINLINE int vv_arith(int op, uint64_t x, unsigned tx, uint64_t y, unsigned ty,
                                uint64_t *out, uint8_t *tout) {
    unsigned t = vv_result_tag(op, tx, ty);
    if (!t) return VV_ARITH_MISMATCH;
    if (t == VV_TAG_F64) {
        double a = vv_f(x), b = vv_f(y), r;
        switch (op) {
        case VV_AR_ADD: r = a + b; break;
        case VV_AR_SUB: r = a - b; break;
        case VV_AR_MUL: r = a * b; break;
        case VV_AR_DIV: r = a / b; break;            /* IEEE: x/0 is +-inf or NaN */
        case VV_AR_REM: r = fmod(a, b); break;       /* x % 0.0 is NaN */
        default: return VV_ARITH_MISMATCH;           /* bitwise on floats */
        }
        *out = r != r ? vv_nan_result(x, y, vv_b(r)) : vv_b(r);
    } else {
        uint64_t r;
        switch (op) {
        case VV_AR_ADD: r = x + y; break;
        case VV_AR_SUB: r = x - y; break;
        case VV_AR_MUL: r = x * y; break;
        case VV_AR_AND: r = x & y; break;
        case VV_AR_OR: r = x | y; break;
        case VV_AR_XOR: r = x ^ y; break;
        case VV_AR_DIV:
        case VV_AR_REM:
            if (y == 0) return VV_ARITH_ZERODIV;      /* semantics.md §3.3 */
            if (t == VV_TAG_I64) {
                int64_t a = (int64_t)x, b = (int64_t)y;
                if (b == -1) {                        /* MIN / -1 = MIN, MIN % -1 = 0 */
                    r = op == VV_AR_DIV ? (uint64_t)0 - x : 0;
                } else {
                    r = (uint64_t)(op == VV_AR_DIV ? a / b : a % b);
                }
            } else {
                r = op == VV_AR_DIV ? x / y : x % y;
            }
            break;
        default: return VV_ARITH_MISMATCH;
        }
        *out = r;
    }
    *tout = (uint8_t)t;
    return VV_ARITH_OK;
}

/* The tag pairs vv_compare compares as unsigned payloads, as a table for the
 * loop's fast path of ucmp (vv_loop.h UNSIGNED_PAIR): bit u of row t is set
 * iff (t, u) is uint64 with uint64, or an address-like tag with itself or
 * with uint64. Registers only ever hold valid tags (< 32). */
#define VV_UPAIR_ROW(t) ((t) == VV_TAG_U64 ? (1u << VV_TAG_U64) | VV_X_MASK \
                         : VV_IS_X(t) ? (1u << (t)) | (1u << VV_TAG_U64) : 0u)
#define VV_UPAIR_ROWS4(t) VV_UPAIR_ROW(t), VV_UPAIR_ROW((t) + 1), VV_UPAIR_ROW((t) + 2), VV_UPAIR_ROW((t) + 3)
static const uint32_t vv_unsigned_pairs[32] = {
    VV_UPAIR_ROWS4(0), VV_UPAIR_ROWS4(4), VV_UPAIR_ROWS4(8), VV_UPAIR_ROWS4(12),
    VV_UPAIR_ROWS4(16), VV_UPAIR_ROWS4(20), VV_UPAIR_ROWS4(24), VV_UPAIR_ROWS4(28),
};
#undef VV_UPAIR_ROWS4
#undef VV_UPAIR_ROW

/* Generic compare: returns ZF | NF << 1 (a == b, a < b); unordered pairs give 0. */
static VV_NOINLINE unsigned vv_compare(uint64_t x, unsigned tx, uint64_t y, unsigned ty) {
    if (tx == ty) {
        if (tx == VV_TAG_F64) {
            double a = vv_f(x), b = vv_f(y);
            return (unsigned)(a == b) | (unsigned)(a < b) << 1;
        }
        if (tx == VV_TAG_I64)
            return (unsigned)(x == y) | (unsigned)((int64_t)x < (int64_t)y) << 1;
        return (unsigned)(x == y) | (unsigned)(x < y) << 1;
    }
    if ((VV_IS_X(tx) && ty == VV_TAG_U64) || (tx == VV_TAG_U64 && VV_IS_X(ty)))
        return (unsigned)(x == y) | (unsigned)(x < y) << 1;
    return 0;
}

/* ------------------------------------------------------------------------
 * Growable arrays (all out of line: they run on the first push past a
 * capacity, never on the hot path). Each returns 0, or -1 when the host is
 * out of memory. */

static VV_COLD int vv_grow(void **array, uint64_t *alloc, uint64_t need, uint64_t limit, size_t item) {
    uint64_t n = *alloc ? *alloc : 16;
    while (n < need) n = n > UINT64_MAX / 2 ? need : n * 2;
    if (n > limit) n = limit;
    if (n < need) n = need;
    if (n > SIZE_MAX / item) return -1;
    void *p = realloc(*array, (size_t)(n ? n * item : 1));
    if (!p) return -1;
    *array = p;
    *alloc = n;
    return 0;
}

/* Keep a diagnostic event for run() to report (the first VV_DIAG_SHOWN of its
 * kind; `seen` is how many of that kind came before it). */
static inline void vv_diag_keep(vv_vm *vm, uint64_t seen, uint32_t code, uint64_t ip,
                                uint64_t a, uint64_t b) {
    if (seen >= VV_DIAG_SHOWN || vm->ndiags >= 2 * VV_DIAG_SHOWN) return;
    vv_diag *d = &vm->diags[vm->ndiags++];
    d->code = code; d->gc_mark = vm->ngc_events;
    d->ip = ip; d->a = a; d->b = b;
}

/* Record one more pending exception `number` (1..VV_EXC_COUNT), raised by the
 * instruction at `ip`. A count cannot realistically wrap (2^64 raises); it
 * saturates rather than lose them. */
static inline void vv_raise_at(vv_vm *vm, int number, uint64_t ip) {
    uint64_t *c = &vm->pending[number - 1];
    *c += *c != UINT64_MAX;
    vv_diag_keep(vm, vm->raised_total, (uint32_t)number, ip, 0, 0);
    vm->raised_total += vm->raised_total != UINT64_MAX;
}

/* A usf at `ip` whose index is not below the stack depth: nothing is written
 * (upstream), but the host warns (semantics.md §9). */
static inline void vv_usf_missed(vv_vm *vm, uint64_t ip, uint64_t index, uint64_t depth) {
    vv_diag_keep(vm, vm->usf_total, VV_DIAG_USF, ip, index, depth);
    vm->usf_total += vm->usf_total != UINT64_MAX;
}

/* Remove one pending `number` (1..VV_EXC_COUNT); 1 if there was one. O(1). */
static inline int vv_take_exception(vv_vm *vm, unsigned number) {
    uint64_t *c = &vm->pending[number - 1];
    if (*c == 0) return 0;
    *c -= 1;
    return 1;
}

/* ------------------------------------------------------------------------
 * Slot storage (see the top of this file) */

/* Decoded slots a program may keep resident: 2 bytes per byte of main memory
 * (main memory plus its slots stay within 3x its size), never fewer than a
 * floor that keeps small programs' hot code decoded (4 MiB: 262144 slots). */
#define VV_SLOT_BYTES_PER_MEM_BYTE 2u
#define VV_SLOT_FLOOR_BYTES ((uint64_t)4 << 20)
#define VV_SLOT_PAGE_MIN 4096u

static uint64_t vv_slot_page_bytes(void) {
    uint64_t page = VV_SLOT_PAGE_MIN;
#ifdef VV_SLOTS_MMAP
    long os = sysconf(_SC_PAGESIZE);
    /* Pages are dropped one OS page at a time, so a slot page is at least one. */
    if (os > 0 && (uint64_t)os > page && ((uint64_t)os & ((uint64_t)os - 1)) == 0) page = (uint64_t)os;
#endif
    return page;
}

/* Zero-filled address space for `bytes` of slots (a multiple of the page
 * size): untouched pages cost no host memory. NULL if it cannot be had. */
static vv_slot *vv_slots_map(uint64_t bytes) {
    if (bytes > SIZE_MAX) return NULL;
#ifdef VV_SLOTS_MMAP
#ifdef MAP_NORESERVE
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
#else
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#endif
    void *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_NOHUGEPAGE
    /* A transparent huge page would make one decoded slot cost 2 MiB and
     * could not be dropped a page at a time. */
    madvise(p, (size_t)bytes, MADV_NOHUGEPAGE);
#endif
    return (vv_slot *)p;
#else
    /* Without mmap the reservation is ordinary memory: correct, not bounded
     * (dropping a page only zeroes it). */
    return (vv_slot *)calloc((size_t)bytes, 1);
#endif
}

static void vv_slots_unmap(vv_slot *p, uint64_t bytes) {
    if (!p) return;
#ifdef VV_SLOTS_MMAP
    munmap((void *)p, (size_t)bytes);
#else
    (void)bytes;
    free(p);
#endif
}

/* Give page `page` back to the host; afterwards it reads as zeros (X_DECODE). */
static VV_COLD void vv_slots_drop(vv_vm *vm, uint64_t page) {
    size_t bytes = (size_t)sizeof(vv_slot) << vm->slot_shift;
    void *p = (void *)(vm->code + (page << vm->slot_shift));
#if defined(VV_SLOTS_MMAP) && defined(__linux__) && defined(MADV_DONTNEED)
    /* Linux: private anonymous pages read as zeros after MADV_DONTNEED. */
    if (madvise(p, bytes, MADV_DONTNEED) == 0) return;
#elif defined(VV_SLOTS_MMAP)
    /* Elsewhere MADV_DONTNEED may keep the contents: map fresh zero pages over it. */
#ifdef MAP_NORESERVE
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
#else
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
#endif
    if (mmap(p, bytes, PROT_READ | PROT_WRITE, flags, -1, 0) != MAP_FAILED) return;
#endif
    memset(p, 0, bytes);   /* the contract (zeros) holds even if the host refused */
}

/* The page of slot `addr` becomes live; if that would exceed the budget,
 * another live page is dropped first (never this one, never the sentinel's:
 * with a budget below three pages, as tests may set, one sweep gives up). */
static VV_COLD void vv_slot_page_in(vv_vm *vm, uint64_t page) {
    const uint64_t sentinel = vm->len >> vm->slot_shift;   /* no page beyond it is live */
    for (uint64_t looked = 0; vm->slots_live >= vm->slot_budget && looked <= sentinel + 1; looked++) {
        uint64_t h = vm->slot_hand > sentinel ? 0 : vm->slot_hand;
        vm->slot_hand = h + 1;
        if (vm->slot_live[h] && h != page && h != sentinel) {
            vv_slots_drop(vm, h);
            vm->slot_live[h] = 0;
            vm->slots_live--;
        }
    }
    vm->slot_live[page] = 1;
    vm->slots_live++;
}

/* Slot `addr` is about to be written (decoded or made the sentinel). */
static inline void vv_slot_touch(vv_vm *vm, uint64_t addr) {
    uint64_t page = addr >> vm->slot_shift;
    if (VV_UNLIKELY(!vm->slot_live[page])) vv_slot_page_in(vm, page);
}

/* The budget follows the size of main memory (it grows with dlbc). */
static VV_MAYBE_UNUSED void vv_slot_set_budget(vv_vm *vm) {
    uint64_t bytes = vm->len <= UINT64_MAX / VV_SLOT_BYTES_PER_MEM_BYTE ? vm->len * VV_SLOT_BYTES_PER_MEM_BYTE : UINT64_MAX;
    if (bytes < VV_SLOT_FLOOR_BYTES) bytes = VV_SLOT_FLOOR_BYTES;
    vm->slot_budget = bytes / (sizeof(vv_slot) << vm->slot_shift);
    if (vm->slot_budget_max && vm->slot_budget > vm->slot_budget_max) vm->slot_budget = vm->slot_budget_max;
}

/* Reserve room for `nslots` slots (at init, or when an image larger than
 * --init-ram grows and the first reservation was only its size): live pages
 * are copied over, the rest stays untouched. 0, or -1 (host refused). */
static VV_COLD int vv_slots_reserve(vv_vm *vm, uint64_t nslots) {
    const uint64_t per_page = (uint64_t)1 << vm->slot_shift;
    if (nslots > (UINT64_MAX >> 5) - per_page) return -1;
    uint64_t pages = (nslots + per_page - 1) >> vm->slot_shift;
    uint64_t bytes = pages * per_page * sizeof(vv_slot);
    vv_slot *code = vv_slots_map(bytes);
    uint8_t *live = code ? (uint8_t *)calloc((size_t)pages, 1) : NULL;
    if (!live) { vv_slots_unmap(code, bytes); return -1; }
    for (uint64_t p = 0; p < vm->slot_pages && p < pages; p++) {
        if (!vm->slot_live[p]) continue;
        memcpy(code + (p << vm->slot_shift), vm->code + (p << vm->slot_shift), (size_t)(per_page * sizeof(vv_slot)));
        live[p] = 1;
    }
    vv_slots_unmap(vm->code, (vm->slot_pages * per_page) * sizeof(vv_slot));
    free(vm->slot_live);
    vm->code = code;
    vm->slot_live = live;
    vm->slot_pages = pages;
    vm->code_alloc = pages * per_page;
    return 0;
}

/* ------------------------------------------------------------------------
 * Decoding */

typedef struct vv_opinfo {
    uint8_t size;          /* 0: undefined opcode */
    uint8_t sop;           /* its slot op (VV_SOP_<NAME>) */
    char operands[5];      /* R register, H 16-bit, Q 64-bit, D data item (vv_tables.h) */
} vv_opinfo;

#define VV_OPINFO_ENTRY(NAME, CODE, SIZE, OPERANDS) [CODE] = {SIZE, VV_SOP_##NAME, OPERANDS},
static const vv_opinfo vv_opinfo_table[256] = {VV_FOREACH_OP(VV_OPINFO_ENTRY)};
#undef VV_OPINFO_ENTRY

static inline void vv_trap_slot(vv_slot *s, int kind, uint64_t a, uint64_t b) {
    memset(s, 0, sizeof *s);
    s->op = VV_SOP_X_TRAP;
    s->a = (uint8_t)kind;
    s->imm = a;
    s->x = (uint16_t)b;
}

/* Decode the single instruction at `addr` (< len) into `s`. */
static void vv_decode_one(const vv_vm *vm, uint64_t addr, vv_slot *s) {
    const uint8_t *m = vm->mem + addr;
    const unsigned code = m[0];
    const vv_opinfo *info = &vv_opinfo_table[code];
    const uint64_t left = vm->len - addr;
    if (info->size == 0) { vv_trap_slot(s, VV_TRAP_UNKNOWN_OPCODE, code, 0); return; }
    if (info->size > left) { vv_trap_slot(s, VV_TRAP_TRUNCATED_INSTRUCTION, info->size, left); return; }
    vv_slot out;
    memset(&out, 0, sizeof out);
    out.op = info->sop;
    out.len = info->size;
    uint8_t regs[4] = {0, 0, 0, 0};
    unsigned nregs = 0, nimm = 0, pos = 1;
    uint64_t imm2 = 0;
    for (const char *k = info->operands; *k; k++) {
        if (*k == 'R') {
            unsigned r = m[pos++];
            /* ncall's register byte is ignored by the VM (upstream.md §2.1), so never checked. */
            if (r >= VV_NUM_REGISTERS && code != VV_OP_NCALL) {
                vv_trap_slot(s, VV_TRAP_BAD_REGISTER, r, 0);
                return;
            }
            regs[nregs++] = (uint8_t)(r & 31u);
        } else if (*k == 'H') {
            out.x = (uint16_t)(m[pos] << 8 | m[pos + 1]);
            pos += 2;
        } else {
            uint64_t v = vv_be64(m + pos);
            if (*k == 'D') v += vm->data_base;        /* a data item: its address h (wrapping) */
            if (nimm++ == 0) out.imm = v; else imm2 = v;
            pos += 8;
        }
    }
    out.a = regs[0]; out.b = regs[1]; out.c = regs[2]; out.d = regs[3];
    /* Specialise immediates so that handlers do less. */
    switch (code) {
    case VV_OP_JEXC:
        /* imm = exception number, imm2 = target; all 11 handled (semantics.md §3.4). */
        if (out.imm < 1 || out.imm > VV_EXC_COUNT) {
            vv_trap_slot(s, VV_TRAP_BAD_EXCEPTION, out.imm, 0);
            return;
        }
        out.a = (uint8_t)out.imm;
        out.imm = imm2;
        break;
    case VV_OP_DSLEA:
        out.imm += imm2;                              /* item address + offset: the final address */
        break;
    case VV_OP_CALL:
        /* A function of the table at an address inside memory (the table is
         * fixed and memory never shrinks): X_CALL jumps there without looking
         * it up and pushes its return address from the slot. Any other index
         * stays a CALL, which checks the recursion limit and then traps. */
        if (out.imm < vm->nfuncs && vm->funcs[out.imm] < vm->len && addr + VV_SIZE_CALL <= UINT32_MAX) {
            out.op = VV_SOP_X_CALL;
            out.w = (uint32_t)(addr + VV_SIZE_CALL);
            out.imm = VV_SLOT_REL(vm->funcs[out.imm], addr);
        }
        break;
    default:
        break;
    }
    *s = out;
}

/* Condition mask of a conditional jump opcode (VV_COND_*), or 0 if it is not one. */
static inline unsigned vv_jcc_mask(unsigned opcode) {
    switch (opcode) {
    case VV_OP_JZ: return VV_COND_JZ;
    case VV_OP_JNZ: return VV_COND_JNZ;
    case VV_OP_JL: return VV_COND_JL;
    case VV_OP_JGE: return VV_COND_JGE;
    case VV_OP_JG: return VV_COND_JG;
    case VV_OP_JLE: return VV_COND_JLE;
    default: return 0;
    }
}

/* The float pair slot ops, [first][second] in the order fadd, fsub, fmul. */
#define VV_FLOAT_PAIR_ROW(PREFIX, FIRST) \
    {PREFIX##FIRST##_FADD, PREFIX##FIRST##_FSUB, PREFIX##FIRST##_FMUL}
static const uint8_t vv_float_pair_sop[2][3][3] = {
    {VV_FLOAT_PAIR_ROW(VV_SOP_X_, FADD), VV_FLOAT_PAIR_ROW(VV_SOP_X_, FSUB), VV_FLOAT_PAIR_ROW(VV_SOP_X_, FMUL)},
    {VV_FLOAT_PAIR_ROW(VV_SOP_X_MOV_, FADD), VV_FLOAT_PAIR_ROW(VV_SOP_X_MOV_, FSUB),
     VV_FLOAT_PAIR_ROW(VV_SOP_X_MOV_, FMUL)},
};
#undef VV_FLOAT_PAIR_ROW

/* 0, 1, 2 for fadd, fsub, fmul; -1 for any other opcode. */
static inline int vv_float_op_index(unsigned opcode) {
    return opcode == VV_OP_FADD ? 0 : opcode == VV_OP_FSUB ? 1 : opcode == VV_OP_FMUL ? 2 : -1;
}

/* The float op at m (first index `first`) followed by another on register d:
 * its slot op (with movr: `mov` = 1), or -1. */
static inline int vv_float_pair_at(const uint8_t *m, uint64_t left, int first, unsigned d, int mov) {
    int second = left >= VV_SIZE_FADD + VV_SIZE_FADD ? vv_float_op_index(m[VV_SIZE_FADD]) : -1;
    if (first < 0 || second < 0 || m[VV_SIZE_FADD + 1] != d || m[VV_SIZE_FADD + 2] >= VV_NUM_REGISTERS) return -1;
    return vv_float_pair_sop[mov][first][second];
}

/* The access after an address step that wrote register p (uadd p x), at m
 * with `left` bytes: 1 for a load or store through p (X_ADD_LOAD / X_ADD_STORE
 * and their movr forms), its registers in r[0..3] (load: t v p c; store: p v c). */
static inline int vv_field_access_at(const uint8_t *m, uint64_t left, unsigned p, uint8_t r[4]) {
    if (left >= VV_SIZE_LOAD && m[0] == VV_OP_LOAD && m[3] == p) {
        for (int i = 0; i < 4; i++) if ((r[i] = m[1 + i]) >= VV_NUM_REGISTERS) return 0;
        return 1;
    }
    if (left >= VV_SIZE_STORE && m[0] == VV_OP_STORE && m[1] == p) {
        for (int i = 0; i < 3; i++) if ((r[i] = m[1 + i]) >= VV_NUM_REGISTERS) return 0;
        return 1;
    }
    return 0;
}

static inline int vv_is_compare(unsigned opcode) {
    return opcode == VV_OP_UCMP || opcode == VV_OP_ICMP || opcode == VV_OP_FCMP;
}

/* Decode the slot at `addr` (< len), fusing common pairs into one slot
 * (performance.md rule 5). A fused slot covers several instructions; the
 * later ones keep their own slots (lazily decoded) for jumps into the middle
 * and for the un-fused slow paths. Fusion only happens when every fused
 * instruction is complete and valid and a jump target lies inside memory
 * (memory never shrinks, so fused jumps need no range check), so traps are
 * never moved. */
static inline int vv_break_at(const vv_vm *vm, uint64_t addr) {
    return addr < vm->breaks_len && ((vm->breaks[addr >> 3] >> (addr & 7)) & 1u);
}

static VV_NOINLINE void vv_decode(vv_vm *vm, uint64_t addr) {
    vv_slot *s = vm->code + addr;
    const uint8_t *m = vm->mem + addr;
    const uint64_t left = vm->len - addr;
    vv_slot_touch(vm, addr);                       /* may drop another page, never this one */
    if (VV_UNLIKELY(vm->breaks != NULL) && vv_break_at(vm, addr)) {
        memset(s, 0, sizeof *s);                   /* a breakpoint (vv_debug.h): the loop stops here */
        s->op = VV_SOP_X_BREAK;
    } else {
        vv_decode_one(vm, addr, s);
    }
    switch (vm->fuse ? s->op : VV_SOP_X_DECODE) {
    case VV_SOP_UCMP: case VV_SOP_ICMP: case VV_SOP_FCMP:
        /* compare a b; jcc L  ->  one compare-and-branch that still sets ZF and NF */
        if (left >= VV_FUSED_CMP_JCC_SIZE) {
            unsigned mask = vv_jcc_mask(m[VV_SIZE_UCMP]);
            uint64_t target = vv_be64(m + VV_SIZE_UCMP + 1);
            if (mask && target < vm->len) {
                s->op = s->op == VV_SOP_UCMP ? VV_SOP_X_UCJ : s->op == VV_SOP_ICMP ? VV_SOP_X_ICJ : VV_SOP_X_FCJ;
                s->len = VV_FUSED_CMP_JCC_SIZE;
                s->d = (uint8_t)mask;
                s->imm = VV_SLOT_REL(target, addr);
            }
        }
        break;
    case VV_SOP_MOVR:
        if (left >= VV_FUSED_MOV_RET_SIZE && m[VV_SIZE_MOVR] == VV_OP_RET) {
            /* movr d s; ret  ->  return with a result (the usual epilogue) */
            s->op = VV_SOP_X_MOV_RET;
            s->len = VV_FUSED_MOV_RET_SIZE;
        } else if (left >= VV_FUSED_MOV_BINARY_SIZE && m[VV_SIZE_MOVR + 1] == s->a &&
                   m[VV_SIZE_MOVR + 2] < VV_NUM_REGISTERS) {
            /* movr d s; op d x  ->  R[d] = R[s] op R[x] (2-operand code's usual pair) */
            int fused = -1;   /* a slot op */
            switch (m[VV_SIZE_MOVR]) {
            case VV_OP_UADD: case VV_OP_IADD: fused = VV_SOP_X_MOV_ADD; break;
            case VV_OP_UMUL: case VV_OP_IMUL: fused = VV_SOP_X_MOV_MUL; break;
            case VV_OP_ISUB: fused = VV_SOP_X_MOV_SUB; break;
            case VV_OP_USUB: fused = VV_SOP_X_MOV_USUB; break;
            case VV_OP_FADD: fused = VV_SOP_X_MOV_FADD; break;
            case VV_OP_FMUL: fused = VV_SOP_X_MOV_FMUL; break;
            case VV_OP_FSUB: fused = VV_SOP_X_MOV_FSUB; break;
            default: break;
            }
            if (fused >= 0) {
                unsigned x = m[VV_SIZE_MOVR + 2];
                /* movr d s; fop d x; fop d y  ->  R[d] = (R[s] op R[x]) op R[y] */
                int pair = vv_float_pair_at(m + VV_SIZE_MOVR, left - VV_SIZE_MOVR,
                                            vv_float_op_index(m[VV_SIZE_MOVR]), s->a, 1);
                uint8_t r[4];
                s->op = (uint8_t)(pair >= 0 ? pair : fused);
                s->len = pair >= 0 ? VV_FUSED_MOV_FLOAT_PAIR_SIZE : VV_FUSED_MOV_BINARY_SIZE;
                s->c = (uint8_t)(x == s->a ? s->b : x);   /* after the movr, R[d] is R[s] */
                if (pair >= 0) s->d = m[VV_SIZE_MOVR + VV_SIZE_FADD + 2];
                /* movr p s; uadd p x; load/store through p  ->  a field access */
                else if (m[VV_SIZE_MOVR] == VV_OP_UADD &&
                         vv_field_access_at(m + VV_FUSED_MOV_BINARY_SIZE, left - VV_FUSED_MOV_BINARY_SIZE, s->a, r)) {
                    int load = m[VV_FUSED_MOV_BINARY_SIZE] == VV_OP_LOAD;
                    s->op = load ? VV_SOP_X_MOV_ADD_LOAD : VV_SOP_X_MOV_ADD_STORE;
                    s->len = load ? VV_FUSED_MOV_ADD_LOAD_SIZE : VV_FUSED_MOV_ADD_STORE_SIZE;
                    s->d = load ? r[0] : r[1];
                    s->x = load ? (uint16_t)(r[1] | r[3] << 8) : r[2];
                }
            }
        }
        break;
    case VV_SOP_FADD: case VV_SOP_FSUB: case VV_SOP_FMUL: {
        /* fop d x; fop d y  ->  R[d] = (R[d] op R[x]) op R[y] */
        int pair = vv_float_pair_at(m, left, vv_float_op_index(m[0]), s->a, 0);
        if (pair >= 0) {
            s->op = (uint8_t)pair;
            s->len = VV_FUSED_FLOAT_PAIR_SIZE;
            s->c = m[VV_SIZE_FADD + 2];
        }
        break;
    }
    case VV_SOP_UADD: {
        /* uadd p x; load/store through p  ->  a field access */
        uint8_t r[4];
        if (vv_field_access_at(m + VV_SIZE_UADD, left - VV_SIZE_UADD, s->a, r)) {
            int load = m[VV_SIZE_UADD] == VV_OP_LOAD;
            s->op = load ? VV_SOP_X_ADD_LOAD : VV_SOP_X_ADD_STORE;
            s->len = load ? VV_FUSED_ADD_LOAD_SIZE : VV_FUSED_ADD_STORE_SIZE;
            s->c = load ? r[0] : r[1];
            s->d = load ? r[1] : r[2];
            s->x = load ? r[3] : 0;
        } else if (left >= VV_FUSED_ADD_CMP_JCC_SIZE && m[VV_SIZE_UADD] == VV_OP_UCMP &&
                   m[VV_SIZE_UADD + 1] == s->a && m[VV_SIZE_UADD + 2] < VV_NUM_REGISTERS) {
            /* uadd i x; ucmp i n; jcc L  ->  the stepped-loop step */
            unsigned mask = vv_jcc_mask(m[VV_SIZE_UADD + VV_SIZE_UCMP]);
            uint64_t target = vv_be64(m + VV_SIZE_UADD + VV_SIZE_UCMP + 1);
            if (mask && target < vm->len) {
                s->op = VV_SOP_X_ADD_CJ;
                s->len = VV_FUSED_ADD_CMP_JCC_SIZE;
                s->c = m[VV_SIZE_UADD + 2];
                s->d = (uint8_t)mask;
                s->imm = VV_SLOT_REL(target, addr);
            }
        }
        break;
    }
    case VV_SOP_UINC:
        /* uinc c; compare a b; jcc L  ->  the counted-loop step */
        if (left >= VV_FUSED_INC_CMP_JCC_SIZE && vv_is_compare(m[VV_SIZE_UINC]) &&
            m[VV_SIZE_UINC + 1] < VV_NUM_REGISTERS && m[VV_SIZE_UINC + 2] < VV_NUM_REGISTERS) {
            unsigned mask = vv_jcc_mask(m[VV_SIZE_UINC + VV_SIZE_UCMP]);
            uint64_t target = vv_be64(m + VV_SIZE_UINC + VV_SIZE_UCMP + 1);
            if (mask && target < vm->len) {
                s->op = m[VV_SIZE_UINC + 1] == s->a ? VV_SOP_X_INC_SELF_CJ : VV_SOP_X_INC_CJ;
                s->len = VV_FUSED_INC_CMP_JCC_SIZE;
                s->c = s->a;
                s->a = m[VV_SIZE_UINC + 1];
                s->b = m[VV_SIZE_UINC + 2];
                s->d = (uint8_t)mask;
                s->imm = VV_SLOT_REL(target, addr);
            }
        }
        break;
    case VV_SOP_ALLOC:
        /* alloc d n; store d v c  ->  a new object and its first field (v, c not d:
         * the store must read what it read unfused) */
        if (left >= VV_FUSED_ALLOC_STORE_SIZE && m[VV_SIZE_ALLOC] == VV_OP_STORE && m[VV_SIZE_ALLOC + 1] == s->a &&
            m[VV_SIZE_ALLOC + 2] < VV_NUM_REGISTERS && m[VV_SIZE_ALLOC + 3] < VV_NUM_REGISTERS &&
            m[VV_SIZE_ALLOC + 2] != s->a && m[VV_SIZE_ALLOC + 3] != s->a && s->imm >= 8 &&
            s->imm <= VV_FUSED_ALLOC_MAX) {
            s->op = VV_SOP_X_ALLOC_STORE;
            s->len = VV_FUSED_ALLOC_STORE_SIZE;
            s->b = m[VV_SIZE_ALLOC + 2];
            s->c = m[VV_SIZE_ALLOC + 3];
            s->x = (uint16_t)vh_need_granules(s->imm);   /* the tile, in granules (at most 9) */
        }
        break;
    case VV_SOP_ULOAD: case VV_SOP_ILOAD: {
        /* uload k v; op x k  ->  op with a constant operand (x != k, so the
         * loaded register is an input of the op, never its result) */
        const uint8_t *n = m + VV_SIZE_ULOAD;       /* the next instruction */
        const int u = s->op == VV_SOP_ULOAD;
        if (left < VV_FUSED_LOAD_BINARY_SIZE || n[2] != s->a || n[1] == s->a || n[1] >= VV_NUM_REGISTERS) break;
        int fused = -1;   /* a slot op */
        switch (n[0]) {
        case VV_OP_UADD: if (u) fused = VV_SOP_X_KUADD; break;
        case VV_OP_USUB: if (u) fused = VV_SOP_X_KUSUB; break;
        case VV_OP_IADD: if (!u) fused = VV_SOP_X_KIADD; break;
        case VV_OP_ISUB: if (!u) fused = VV_SOP_X_KISUB; break;
        case VV_OP_UCMP: case VV_OP_ICMP:
            /* ... + jcc L: compare with a constant and branch */
            if (n[0] == (u ? VV_OP_UCMP : VV_OP_ICMP) && left >= VV_FUSED_LOAD_CMP_JCC_SIZE) {
                unsigned mask = vv_jcc_mask(n[VV_SIZE_UCMP]);
                uint64_t target = vv_be64(n + VV_SIZE_UCMP + 1);
                if (mask && target < vm->len && VV_SLOT_REL_FITS32(target, addr)) {
                    s->op = u ? VV_SOP_X_KUCJ : VV_SOP_X_KICJ;
                    s->b = n[1];
                    s->c = (uint8_t)mask;
                    s->w = (uint32_t)VV_SLOT_REL(target, addr);
                }
            }
            break;
        default: break;
        }
        if (fused >= 0) {
            s->op = (uint8_t)fused;
            s->len = VV_FUSED_LOAD_BINARY_SIZE;
            s->b = n[1];
        }
        break;
    }
    case VV_SOP_PUSH: case VV_SOP_POP: {
        /* push/pop a; push/pop b (b in b), pop a; ret  ->  one slot */
        const unsigned next = left > VV_SIZE_POP ? m[VV_SIZE_POP] : 0;
        const int pop = s->op == VV_SOP_POP;
        int fused = -1;   /* a slot op */
        if (pop && next == VV_OP_RET) {
            s->op = VV_SOP_X_POP_RET;
            s->len = VV_FUSED_POP_RET_SIZE;
        } else if (left >= VV_FUSED_STACK_PAIR_SIZE && m[VV_SIZE_POP + 1] < VV_NUM_REGISTERS) {
            if (next == VV_OP_PUSH) fused = pop ? VV_SOP_X_POP_PUSH : VV_SOP_X_PUSH_PUSH;
            else if (next == VV_OP_POP && pop) fused = VV_SOP_X_POP_POP;
        }
        if (fused >= 0) {
            s->op = (uint8_t)fused;
            s->len = VV_FUSED_STACK_PAIR_SIZE;
            s->b = m[VV_SIZE_POP + 1];
        }
        break;
    }
    case VV_SOP_UDEC:
        /* udec a; jnz L  ->  the count-down step */
        if (left >= VV_FUSED_DEC_JNZ_SIZE && m[VV_SIZE_UDEC] == VV_OP_JNZ) {
            uint64_t target = vv_be64(m + VV_SIZE_UDEC + 1);
            if (target < vm->len) {
                s->op = VV_SOP_X_DEC_JNZ;
                s->len = VV_FUSED_DEC_JNZ_SIZE;
                s->imm = VV_SLOT_REL(target, addr);
            }
        }
        break;
    default:
        break;
    }
    if (addr < vm->dec_lo) vm->dec_lo = addr;
    if (addr >= vm->dec_hi) vm->dec_hi = addr + 1;
}

/* Main memory [addr, addr + n) changed: forget every decoded slot that could
 * overlap it (semantics.md §6: decoding is free, but never stale). Pages that
 * are not live hold no decoded slot and are not written (that would cost a page). */
static inline void vv_invalidate(vv_vm *vm, uint64_t addr, uint64_t n) {
    uint64_t lo = addr >= VV_MAX_SPAN - 1 ? addr - (VV_MAX_SPAN - 1) : 0;
    uint64_t hi = addr + n;
    if (hi <= vm->dec_lo || lo >= vm->dec_hi) return;   /* the common case: data, not code */
    if (lo < vm->dec_lo) lo = vm->dec_lo;
    if (hi > vm->dec_hi) hi = vm->dec_hi;
    if (hi > vm->len) hi = vm->len;                     /* never the sentinel */
    for (uint64_t i = lo; i < hi; i++)
        if (vm->slot_live[i >> vm->slot_shift]) vm->code[i].op = VV_SOP_X_DECODE;
}

/* Append n bytes to main memory (for dlbc): grows mem (the slot array is
 * reserved up to --init-ram already) and moves the sentinel. The caller
 * checks the capacity (MainSegmFault) first. Returns 0, or -1 when the host
 * is out of memory. The dispatch loop must reload its code/mem/len locals
 * after calling this, and must not rely on any slot it held: the page of
 * the new sentinel may have dropped another page. */
static VV_COLD VV_MAYBE_UNUSED int vv_mem_append(vv_vm *vm, const uint8_t *bytes, uint64_t n) {
    uint64_t new_len = vm->len + n;
    if (new_len < vm->len || new_len == UINT64_MAX) return -1;
    /* Grow toward --init-ram, never past what dlbc may fill. */
    if (new_len > vm->mem_alloc &&
        vv_grow((void **)&vm->mem, &vm->mem_alloc, new_len, vm->capacity > new_len ? vm->capacity : new_len, 1))
        return -1;
    if (new_len + 1 > vm->code_alloc) {
        uint64_t want = vm->code_alloc * 2 > new_len + 1 ? vm->code_alloc * 2 : new_len + 1;
        if (vv_slots_reserve(vm, want) && vv_slots_reserve(vm, new_len + 1)) return -1;
    }
    if (n) memcpy(vm->mem + vm->len, bytes, (size_t)n);
    /* Slots that decoded as truncated before the append, and the old
     * sentinel, must be decoded again. */
    vv_invalidate(vm, vm->len, 1);
    vm->code[vm->len].op = VV_SOP_X_DECODE;          /* its page is live: it held the sentinel */
    vm->len = new_len;
    vv_slot_set_budget(vm);
    vv_slot_touch(vm, new_len);
    memset(&vm->code[new_len], 0, sizeof(vv_slot));
    vm->code[new_len].op = VV_SOP_X_OUTSIDE;
    return 0;
}

/* ------------------------------------------------------------------------
 * Life cycle */

static void vv_natives_free(vv_vm *vm);
static void vv_prof_free(struct vv_prof *p);

static void vv_free(vv_vm *vm) {
    vv_natives_free(vm);
    vv_prof_free(vm->prof);
    free(vm->breaks);
    vm->prof = NULL; vm->breaks = NULL; vm->breaks_len = 0;
    vv_slots_unmap(vm->code, vm->code_alloc * sizeof(vv_slot));
    free(vm->slot_live);
    free(vm->mem); free(vm->funcs);
    free(vm->stack); free(vm->calls);
    vm->mem = NULL; vm->code = NULL; vm->slot_live = NULL; vm->funcs = NULL;
    vm->code_alloc = vm->slot_pages = vm->slots_live = 0;
    vm->stack = NULL; vm->calls = NULL;
}

/* Returns 0, or -1 when memory cannot be allocated (the caller frees). */
static int vv_init(vv_vm *vm, const uint8_t *image, uint64_t n, uint64_t capacity,
                   uint64_t entry, uint64_t data_base, const uint64_t *funcs, uint64_t nfuncs,
                   uint64_t init_stack, uint64_t stack_limit, uint64_t call_limit) {
    memset(vm, 0, sizeof *vm);
    for (int i = 0; i < VV_NUM_REGISTERS; i++) vm->tags[i] = VV_TAG_U64;
    if (n >= SIZE_MAX / sizeof(vv_slot) - 1) return -1;
    vm->mem_alloc = n ? n : 1;
    vm->mem = (uint8_t *)malloc((size_t)vm->mem_alloc);
    vm->funcs = (uint64_t *)malloc((size_t)(nfuncs ? nfuncs : 1) * sizeof(uint64_t));
    if (!vm->mem || !vm->funcs) return -1;
    /* Slots for everything dlbc may append, so that the array never moves;
     * if the host will not give that much address space, the image's size. */
    uint64_t per_page = vv_slot_page_bytes() / sizeof(vv_slot);
    while (((uint64_t)1 << vm->slot_shift) < per_page) vm->slot_shift++;
    uint64_t most = capacity > n ? capacity : n;
    if (vv_slots_reserve(vm, most + 1) && vv_slots_reserve(vm, n + 1)) return -1;
    if (n) memcpy(vm->mem, image, (size_t)n);
    vm->len = n;
    vm->capacity = capacity;
    vv_slot_set_budget(vm);
    vv_slot_touch(vm, n);
    vm->code[n].op = VV_SOP_X_OUTSIDE;
    vm->dec_lo = UINT64_MAX;
    vm->dec_hi = 0;
    vm->fuse = 1;
    vm->data_base = data_base;
    if (nfuncs) memcpy(vm->funcs, funcs, (size_t)nfuncs * sizeof(uint64_t));
    vm->nfuncs = nfuncs;
    vm->stack_limit = stack_limit;
    vm->call_limit = call_limit;
    uint64_t first = init_stack < stack_limit ? init_stack : stack_limit;
    if (first > (1u << 20)) first = 1u << 20;     /* reserve lazily beyond 1M entries */
    /* Both stacks always have an allocation (perhaps of no entries): the loop
     * keeps pointers into them (vv_loop.h), never NULL. */
    if (vv_grow((void **)&vm->stack, &vm->stack_alloc, first, stack_limit, sizeof(vv_entry)))
        return -1;
    uint64_t calls = call_limit < 256 ? call_limit : 256;
    if (vv_grow((void **)&vm->calls, &vm->calls_alloc, calls, call_limit, sizeof(uint64_t)))
        return -1;
    vm->ip = entry;
    return 0;
}

#include "heap/vh_vmops.h"
#include "vv_natives.h"
#include "vv_debug.h"

#endif /* VV_CORE_H */
