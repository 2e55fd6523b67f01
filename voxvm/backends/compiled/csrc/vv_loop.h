/* vv_loop.h - the voxvm dispatch loop, as a template.
 *
 * Owns `VV_RUN_NAME(vm, budget)`: the one function that executes
 * instructions (performance.md rule 1). Include it after vv_core.h with
 * VV_RUN_NAME defined; define VV_LOOP_SWITCH as well to get the portable
 * `switch` dispatch instead of computed goto (rule 4). voxvm/backends/compiled/_core.pyx builds
 * both, `vv_run_goto` and `vv_run_switch`, from this one source, so that the
 * fallback is tested and every handler exists once.
 *
 * Handlers keep pc, stack/call pointers and flags in C locals, never check
 * register numbers (the decoder did), and leave through one of the exits at
 * the bottom, which write the locals back into the vv_vm.
 */
#ifndef VV_RUN_NAME
#error "define VV_RUN_NAME before including vv_loop.h"
#endif
#if defined(VV_HAVE_COMPUTED_GOTO) && !defined(VV_LOOP_SWITCH)
#define VV_COMPUTED_GOTO 1
#endif

/* ------------------------------------------------------------------------
 * The dispatch loop.
 *
 * Returns a status. `budget` < 0: unlimited; otherwise the number of branch
 * events (every executed jump taken or not, call, callr, ret, jmpr, jexc)
 * after which it returns VV_STATUS_BUDGET before the next instruction. The
 * count is one decrement per branch; "unlimited" is a count that never ends.
 */

/* With VV_LOOP_COUNT, every completed instruction is counted into
 * vm->executed (an independent instruction counter for benchmarks and tests;
 * voxvm/backends/compiled/_core.pyx runs it with fusion off, so one slot is one instruction). */
#ifdef VV_LOOP_COUNT
#define COUNT_ONE() (executed++)
#define UNCOUNT() (executed--)
#elif defined(VV_LOOP_STEP)
/* The single-step variant (tracing, the debugger): the second instruction leaves. */
#define COUNT_ONE() do { if (executed++) goto vv_stepped; } while (0)
#define UNCOUNT() (executed--)
#elif defined(VV_LOOP_PROFILE)
/* The profiling variant: counts and clock ticks per address and calling context (vv_debug.h). */
#define COUNT_ONE() vv_prof_tick(vm->prof, ADDR(), CSP_INDEX())
#define UNCOUNT() vv_prof_untick(vm->prof)
#else
#define COUNT_ONE() ((void)0)
#define UNCOUNT() ((void)0)
#endif

#ifdef VV_COMPUTED_GOTO
#define TARGET(name) L_##name:
#define DISPATCH() do { COUNT_ONE(); VV_IN_REGISTERS(vm, fl, sp, budget); goto *vv_labels[pc->op]; } while (0)
#else
#define TARGET(name) case VV_SOP_##name:
#define DISPATCH() goto vv_dispatch
#endif

/* The slot array is read from vm (it moves only when dlbc outgrows its
 * reservation): a jump to an address is one add from memory, and fused jumps
 * are relative to the slot (JUMP_SLOT), so it needs no register. */
#define CODE (vm->code)
#define ADDR() ((uint64_t)(pc - CODE))
#define NEXT(n) do { pc += (n); DISPATCH(); } while (0)
#define TRAP(kind, a_, b_) do { trap_kind = (kind); trap_a = (uint64_t)(a_); trap_b = (uint64_t)(b_); goto vv_trap; } while (0)
#define MISMATCH(op, l, r) TRAP(VV_TRAP_TYPE_MISMATCH, (uint64_t)(op) << 16 | (uint64_t)(l) << 8 | (uint64_t)(r), 0)
#define RAISE(exc) vv_raise_at(vm, (exc), ADDR())
/* A taken branch to `target`: count it, then fetch there (a fetch outside
 * memory traps IP_OUTSIDE, as in voxvm/backends/reference/core.py). Every
 * VV_POLL_MASK + 1 branch events (and at the budget's end, a multiple of
 * it) the branch goes through vv_branch_poll. */
#define JUMP(target) do { uint64_t t_ = (target); \
        if (VV_UNLIKELY(--budget == 0)) { next_ip = t_; goto vv_branch_poll; } \
        if (VV_UNLIKELY(t_ >= vm->len)) { next_ip = t_; goto vv_outside; } \
        pc = CODE + t_; DISPATCH(); } while (0)
/* A taken branch to a target known to be inside memory. */
#define JUMP_INSIDE(target) do { uint64_t t_ = (target); \
        if (VV_UNLIKELY(--budget == 0)) { next_ip = t_; goto vv_branch_poll; } \
        pc = CODE + t_; DISPATCH(); } while (0)
/* ... given as the decoder stored it, relative to this slot (VV_SLOT_REL, vv_core.h). */
#define JUMP_SLOT(rel) do { int64_t r_ = (rel); \
        if (VV_UNLIKELY(--budget == 0)) { \
            next_ip = ADDR() + (uint64_t)(r_ / (int64_t)sizeof(vv_slot)); goto vv_branch_poll; } \
        pc = (const vv_slot *)((const char *)pc + r_); DISPATCH(); } while (0)
#define NOT_TAKEN(n) do { pc += (n); \
        if (VV_UNLIKELY(--budget == 0)) { next_ip = ADDR(); goto vv_branch_poll; } \
        DISPATCH(); } while (0)
#define BRANCH_IF(cond, target, n) do { if (cond) JUMP(target); NOT_TAKEN(n); } while (0)
/* The end of a fused compare-and-branch: the slot's condition mask decides. */
#define FUSED_BRANCH(n) BRANCH_MASK(pc->d, (int64_t)pc->imm, n)
#define BRANCH_MASK(mask, offset, n) do { \
        if (VV_UNLIKELY(--budget == 0)) { \
            unsigned f_ = fl; VV_OPAQUE(f_); \
            next_ip = ADDR() + ((((mask) >> f_) & 1u) ? (uint64_t)((int64_t)(offset) / (int64_t)sizeof(vv_slot)) \
                                                       : (uint64_t)(n)); \
            goto vv_branch_poll; } \
        if (((mask) >> fl) & 1u) { pc = (const vv_slot *)((const char *)pc + (int64_t)(offset)); DISPATCH(); } \
        pc += (n); DISPATCH(); } while (0)
/* ZF is bit 0 and NF bit 1 of the local `fl` (OF lives in vm->flags[0]: only uinc writes it). */
#define ZF (fl & 1u)
#define NF (fl >> 1)
#define SET_ZF(z) (fl = (fl & 2u) | (unsigned)(z))
#define SET_ZN(z, n) (fl = (unsigned)(z) | (unsigned)(n) << 1)
#define SET_OF(o) (vm->flags[0] = (uint8_t)(o))
/* *out = x + 1; 1 if it wrapped to 0 (uinc's OF) */
#if defined(__GNUC__) || defined(__clang__)
#define VV_INC_OVERFLOW(x, out) ((unsigned)__builtin_add_overflow((x), (uint64_t)1, (out)))
#else
#define VV_INC_OVERFLOW(x, out) ((*(out) = (x) + 1) == 0)
#endif
/* One-test fast paths of the generic operations, per mnemonic: both uint64
 * (ucmp, uadd, ...), both int64 (icmp, iadd, ...), both float64 (fcmp,
 * fadd, ...). (ta & tb) == 3 holds for no other pair of valid tags. */
#define BOTH_U(ta, tb) (((ta) | (tb)) == VV_TAG_U64)
#define BOTH_I(ta, tb) (((ta) | (tb)) == VV_TAG_I64)
#define BOTH_F(ta, tb) (((ta) & (tb)) == VV_TAG_F64)
/* uinc/udec's operand: uint64 (one compare) or an address-like tag. */
#define INC_OK(t) VV_LIKELY((t) == VV_TAG_U64 || VV_IS_UX(t))
/* An address-like value and a uint64 (pointer arithmetic, semantics.md §2):
 * + - * keep the address's tag, the left one. */
#define ADDRESS_U(tl, tr) ((tr) == VV_TAG_U64 && VV_IS_X(tl))
#define U_OR_ADDRESS_U(tl, tr) (BOTH_U(tl, tr) || ADDRESS_U(tl, tr))
/* The same pairs (for the valid tags a register holds; anything else takes
 * the slow path, which decides by the whole table), tested address-first: one
 * test for both, for the field accesses, whose left operand is an address. */
#define UX_U(tl, tr) ((tr) == VV_TAG_U64 && VV_IS_UX(tl))
/* Pairs that compare as unsigned payloads (vv_compare): uint64 with uint64,
 * an address-like tag with itself or with uint64 (pointer loops, null checks).
 * Both uint64 is one test; the others one row of a table (vv_core.h
 * vv_unsigned_pairs) and one bit test instead of a chain of tag tests. */
#define UNSIGNED_PAIR(ta, tb) (BOTH_U(ta, tb) || ((vv_unsigned_pairs[(ta) & 31u] >> ((tb) & 31u)) & 1u))
/* Generic compare of registers a and b into ZF/NF: the fast path FAST,
 * everything else out of line (vv_compare implements the whole table). */
#define COMPARE(ra, rb, FAST, FASTOP) do { \
        unsigned ta_ = T[ra], tb_ = T[rb]; uint64_t x_ = R[ra], y_ = R[rb]; \
        if (VV_LIKELY(FAST(ta_, tb_))) { FASTOP(x_, y_); } \
        else fl = vv_compare(x_, ta_, y_, tb_); \
    } while (0)


/* ZF | NF << 1 = (a == b) | (a < b) << 1 = (a <= b) + (a < b), also for
 * floats (NaN: 0 + 0) - two compares instead of three. */
#define CMP_UNSIGNED(x, y) (fl = (unsigned)((x) <= (y)) + (unsigned)((x) < (y)))
#define CMP_SIGNED(x, y) (fl = (unsigned)((int64_t)(x) <= (int64_t)(y)) + (unsigned)((int64_t)(x) < (int64_t)(y)))
/* A float64 register read or written in place (vv_core.h, vv_vm.fregs): the
 * compiler can use the register file as a memory operand of the float unit
 * instead of moving the bits through an integer register. */
#define FREG(r) (vm->fregs[r])
#define SET_FREG(r, v) (vm->fregs[r] = (v))
/* fcmp's COMPARE, reading both floats in place. */
#define COMPARE_FLOAT(ra, rb) do { \
        unsigned a_ = (ra), b_ = (rb); \
        if (VV_LIKELY(BOTH_F(T[a_], T[b_]))) { \
            double fx_ = FREG(a_), fy_ = FREG(b_); \
            fl = (unsigned)(fx_ <= fy_) + (unsigned)(fx_ < fy_); \
        } else fl = vv_compare(R[a_], T[a_], R[b_], T[b_]); \
    } while (0)
/* R[d] := R[d] op R[s] with the mnemonic's fast path; everything else goes
 * to the shared out-of-line block `vv_binary_slow`, which implements the
 * whole §1.3 table (performance.md rule 8). */
#define BINARY_INT(OPNUM, FAST, INTOP) do { \
        unsigned d_ = pc->a, s_ = pc->b; \
        if (VV_UNLIKELY(!FAST(T[d_], T[s_]))) { slow_op = (OPNUM); goto vv_binary_slow; } \
        R[d_] = R[d_] INTOP R[s_]; \
    } while (0)
/* R[d] := R[x] op R[y] for float64 registers, with the NaN result of
 * semantics.md §12 (vv_core.h vv_nan_result, VV_SSE_FLOAT_OP). */
#ifdef VV_SSE_FLOAT_OP
#define FLOAT_OP(d, x, y, FOP, INSN) SET_FREG(d, VV_SSE_FLOAT_OP(INSN, FREG(x), FREG(y)))
#else
#define FLOAT_OP(d, x, y, FOP, INSN) do { \
        double r_ = FREG(x) FOP FREG(y); \
        if (VV_UNLIKELY(r_ != r_)) R[d] = vv_nan_result_at(&R[x], &R[y], r_); else SET_FREG(d, r_); \
    } while (0)
#endif
#define BINARY_FLOAT(OPNUM, FOP, INSN) do { \
        unsigned d_ = pc->a, s_ = pc->b; \
        if (VV_UNLIKELY(!BOTH_F(T[d_], T[s_]))) { slow_op = (OPNUM); goto vv_binary_slow; } \
        FLOAT_OP(d_, d_, s_, FOP, INSN); \
    } while (0)
/* Fused movr d s + op d x (the decoder already replaced x == d by s); any
 * tag pair but the fast one takes the unfused path. */
#define MOV_BINARY_INT(OP) do { \
        unsigned d_ = pc->a, s_ = pc->b, x_ = pc->c, ts_ = T[s_], tx_ = T[x_]; \
        if (VV_UNLIKELY((ts_ != tx_ || ts_ == VV_TAG_F64) && !ADDRESS_U(ts_, tx_))) goto vv_unfuse_movr; \
        R[d_] = R[s_] OP R[x_]; T[d_] = (uint8_t)ts_; \
    } while (0)
#define MOV_BINARY_FLOAT(OP, INSN) do { \
        unsigned d_ = pc->a, s_ = pc->b, x_ = pc->c; \
        if (VV_UNLIKELY(!BOTH_F(T[s_], T[x_]))) goto vv_unfuse_movr; \
        FLOAT_OP(d_, s_, x_, OP, INSN); \
        T[d_] = VV_TAG_F64; \
    } while (0)
/* After an instruction of `size` bytes whose cost grew with `n` bytes: poll
 * (vv_core.h) and return if asked, so no run of such instructions outlasts
 * a time slice by more than one of them. */
#define POLL_AFTER(n, size) do { \
        if (VV_UNLIKELY((n) >= VV_POLL_BYTES) && vv_poll(vm)) { next_ip = ADDR() + (size); goto vv_flush; } \
    } while (0)
/* The two stacks are kept as C pointers to their first free entry (`sp`,
 * `csp`) and to the end of their allocation (`stack_end`, `calls_end`), so a
 * push or pop is one compare and one pointer step; vm->sp / vm->csp hold the
 * depths (entries), published before anything outside the loop looks. */
#define SP_INDEX() ((uint64_t)(sp - vm->stack))
#define CSP_INDEX() ((uint64_t)(csp - vm->calls))
#define PUBLISH_STACKS() do { vm->sp = SP_INDEX(); vm->csp = CSP_INDEX(); } while (0)
#define LOAD_STACKS() do { sp = vm->stack + vm->sp; stack_end = vm->stack + vm->stack_alloc; \
        csp = vm->calls + vm->csp; calls_end = vm->calls + vm->calls_alloc; } while (0)
/* Data stack / call stack room for `n` more entries (grow or trap). */
#define STACK_ROOM(n) do { if (VV_UNLIKELY((uint64_t)(stack_end - sp) < (n))) { \
        uint64_t depth_ = SP_INDEX(); \
        if (depth_ + (n) > vm->stack_limit) TRAP(VV_TRAP_STACK_OVERFLOW, vm->stack_limit, 0); \
        if (vv_grow((void **)&vm->stack, &vm->stack_alloc, depth_ + (n), vm->stack_limit, sizeof(vv_entry))) \
            TRAP(VV_TRAP_HOST_MEMORY, 0, 0); \
        sp = vm->stack + depth_; stack_end = vm->stack + vm->stack_alloc; } } while (0)
#define CALL_ROOM() do { if (VV_UNLIKELY(csp >= calls_end)) { \
        uint64_t depth_ = CSP_INDEX(); \
        if (depth_ >= vm->call_limit) TRAP(VV_TRAP_RECURSION_LIMIT, vm->call_limit, 0); \
        if (vv_grow((void **)&vm->calls, &vm->calls_alloc, depth_ + 1, vm->call_limit, sizeof(uint64_t))) \
            TRAP(VV_TRAP_HOST_MEMORY, 0, 0); \
        csp = vm->calls + depth_; calls_end = vm->calls + vm->calls_alloc; } } while (0)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
#endif

/* Registers and tags are addressed off `vm` (one base register for both). */
#define R (vm->regs)
#define T (vm->tags)

static int VV_RUN_NAME(vv_vm *const vm_arg, int64_t budget) {
    register vv_vm *const vm VV_PIN("rbx") = vm_arg;   /* (vv_core.h VV_PIN) */
#ifdef VV_COMPUTED_GOTO
#define VV_LABEL_ENTRY(NAME) [VV_SOP_##NAME] = &&L_##NAME,
    static const void *const vv_labels[256] = {
        [0 ... 255] = &&vv_bad_op,
        VV_FOREACH_SLOT_OP(VV_LABEL_ENTRY)
    };
#undef VV_LABEL_ENTRY
#endif
    /* Main memory, its length and the slot array are read from vm (vm->mem,
     * vm->len, CODE): only rarer handlers and jumps to an address need them, and
     * fewer locals leave the hot ones in registers (DISPATCH names vm, the flags,
     * the data stack pointer and the budget with VV_IN_REGISTERS; vm and the
     * flags are bound to registers with VV_PIN). */
    vv_entry *sp, *stack_end;
    uint64_t *csp, *calls_end;
    LOAD_STACKS();
    register unsigned fl VV_PIN("r15") = (vm->flags[1] & 1u) | (vm->flags[2] & 1u) << 1;   /* ZF | NF << 1 */
#if defined(VV_LOOP_COUNT) || defined(VV_LOOP_STEP)
    uint64_t executed = 0;
#define SAVE_COUNT() (vm->executed += executed)
#else
#define SAVE_COUNT() ((void)0)
#endif
    const vv_slot *pc;
    uint64_t next_ip = 0, trap_a = 0, trap_b = 0;
    int trap_kind = 0;
    unsigned op_logic = 0, slow_op = 0, ds_reg = 0, ds_size = 0, heap_gc = 0, heap_size = 0;
    uint64_t ds_item = 0, ds_off = 0, heap_n = 0;

    if (budget < 0) budget = INT64_MAX;
    else if (budget == 0) return VV_STATUS_BUDGET;
    /* `budget` counts down the events to the next poll (one decrement and a
     * jump-if-zero per branch); `budget_rest` holds the events after that
     * window, a multiple of VV_POLL_MASK + 1, so the polls fall where the whole
     * count left is such a multiple. */
    int64_t budget_rest = budget & ~(int64_t)VV_POLL_MASK;
    budget &= VV_POLL_MASK;
    if (budget == 0) { budget = VV_POLL_MASK + 1; budget_rest -= VV_POLL_MASK + 1; }
    if (vm->ip >= vm->len) {
        vm->trap_kind = VV_TRAP_IP_OUTSIDE;
        vm->trap_ip = vm->trap_a = vm->ip;
        vm->trap_b = vm->len;
        return VV_STATUS_TRAP;
    }
    pc = CODE + vm->ip;

#ifdef VV_COMPUTED_GOTO
    DISPATCH();
#else
vv_dispatch:
    COUNT_ONE();
    switch (pc->op) {
#endif

    /* ---------------------------------------------------------- internal */
    TARGET(X_DECODE) {
        UNCOUNT();                                     /* decoding is not an instruction */
        vv_decode(vm, ADDR());
        DISPATCH();
    }
    TARGET(X_TRAP) TRAP(pc->a, pc->imm, pc->x);     /* a fetch that traps */
    TARGET(X_OUTSIDE) { UNCOUNT(); next_ip = ADDR(); goto vv_outside; }
    TARGET(X_BREAK) { UNCOUNT(); goto vv_break; }   /* a breakpoint (vv_debug.h) */

    /* Fused compare + conditional jump (performance.md rule 5): sets ZF and
     * NF exactly as the compare does, then branches as the jump would. */
    TARGET(X_UCJ) { COMPARE(pc->a, pc->b, UNSIGNED_PAIR, CMP_UNSIGNED); FUSED_BRANCH(VV_FUSED_CMP_JCC_SIZE); }
    TARGET(X_ICJ) { COMPARE(pc->a, pc->b, BOTH_I, CMP_SIGNED); FUSED_BRANCH(VV_FUSED_CMP_JCC_SIZE); }
    TARGET(X_FCJ) { COMPARE_FLOAT(pc->a, pc->b); FUSED_BRANCH(VV_FUSED_CMP_JCC_SIZE); }
    /* uinc c + compare a b + jcc: the counted-loop step. */
    TARGET(X_INC_CJ) {
        unsigned c = pc->c;
        if (!INC_OK(T[c])) MISMATCH(VV_AR_INC, T[c], 0);
        SET_OF(++R[c] == 0);
        COMPARE(pc->a, pc->b, UNSIGNED_PAIR, CMP_UNSIGNED);
        FUSED_BRANCH(VV_FUSED_INC_CMP_JCC_SIZE);
    }
    /* ... the usual form, `uinc i; ucmp i n; jcc`: the new i is compared from a
     * C register instead of being read back from memory. */
    TARGET(X_INC_SELF_CJ) {
        unsigned c = pc->c, b = pc->b, tc = T[c], tb = T[b];
        uint64_t v, y;
        unsigned of;
        if (VV_LIKELY(BOTH_U(tc, tb))) {               /* the usual counter and bound: one test */
            of = VV_INC_OVERFLOW(R[c], &v);            /* (one add and its carry, whatever else the loop holds) */
            R[c] = v;
            y = R[b];                                  /* after the store: b may be c */
            SET_OF(of);
            CMP_UNSIGNED(v, y);
        } else {
            if (VV_UNLIKELY(!VV_IS_UX(tc))) MISMATCH(VV_AR_INC, tc, 0);
            of = VV_INC_OVERFLOW(R[c], &v);
            R[c] = v;
            y = R[b];
            SET_OF(of);
            if (UNSIGNED_PAIR(tc, tb)) CMP_UNSIGNED(v, y);
            else fl = vv_compare(v, tc, y, tb);
        }
        FUSED_BRANCH(VV_FUSED_INC_CMP_JCC_SIZE);
    }
    /* uadd i x + ucmp i n + jcc: the stepped-loop step (a pointer or index
     * advanced by a stride). Other tag pairs of the uadd run it alone; other
     * pairs of the compare continue at the compare's own slot. */
    TARGET(X_ADD_CJ) {
        unsigned c = pc->a, x = pc->b, b = pc->c, tc = T[c];
        if (VV_UNLIKELY(!U_OR_ADDRESS_U(tc, T[x]))) { slow_op = VV_AR_ADD; goto vv_binary_slow; }
        uint64_t v = R[c] + R[x], y;
        R[c] = v;
        y = R[b];                                      /* after the store: b may be c */
        if (VV_UNLIKELY(!UNSIGNED_PAIR(tc, T[b]))) NEXT(VV_SIZE_UADD);
        CMP_UNSIGNED(v, y);
        FUSED_BRANCH(VV_FUSED_ADD_CMP_JCC_SIZE);
    }
    /* udec a + jnz: the count-down step. */
    TARGET(X_DEC_JNZ) {
        unsigned d = pc->a;
        if (!INC_OK(T[d])) MISMATCH(VV_AR_DEC, T[d], 0);
        SET_ZF(--R[d] == 0);
        BRANCH_MASK(VV_COND_JNZ, (int64_t)pc->imm, VV_FUSED_DEC_JNZ_SIZE);
    }

    /* movr d s + binary op d x, as R[d] = R[s] op R[x]. Other tag pairs take
     * the unfused path: do the movr, continue at the binary op's own slot. */
    TARGET(X_MOV_ADD) { MOV_BINARY_INT(+); NEXT(VV_FUSED_MOV_BINARY_SIZE); }
    TARGET(X_MOV_MUL) { MOV_BINARY_INT(*); NEXT(VV_FUSED_MOV_BINARY_SIZE); }
    TARGET(X_MOV_SUB) { MOV_BINARY_INT(-); NEXT(VV_FUSED_MOV_BINARY_SIZE); }
    TARGET(X_MOV_USUB) {
        MOV_BINARY_INT(-);
        SET_ZF(VV_IS_UX(T[pc->a]) && R[pc->a] == 0);     /* result == U(0), typed */
        NEXT(VV_FUSED_MOV_BINARY_SIZE);
    }
    TARGET(X_MOV_FADD) { MOV_BINARY_FLOAT(+, "addsd"); NEXT(VV_FUSED_MOV_BINARY_SIZE); }
    TARGET(X_MOV_FMUL) { MOV_BINARY_FLOAT(*, "mulsd"); NEXT(VV_FUSED_MOV_BINARY_SIZE); }
    TARGET(X_MOV_FSUB) { MOV_BINARY_FLOAT(-, "subsd"); NEXT(VV_FUSED_MOV_BINARY_SIZE); }

    /* Float pairs (vv_core.h): R[d] = (R[s] op1 R[x]) op2 R[y], where y == d reads
     * the first result. Tags are checked as each op needs them: if s or x is not a
     * float64 nothing has happened and the unfused path runs from the first op;
     * if y is not, the first op (and the movr) are done and the second op's own
     * slot goes on. */
#ifdef VV_SSE_FLOAT_OP
#define FLOAT_PAIR_OP(d, s, x, y, FOP1, INSN1, FOP2, INSN2, FIRST_DONE) do { \
        double r_ = VV_SSE_FLOAT_OP(INSN1, FREG(s), FREG(x)); \
        SET_FREG(d, r_); T[d] = VV_TAG_F64;             /* y may be d */ \
        if (VV_UNLIKELY(T[y] != VV_TAG_F64)) FIRST_DONE; \
        SET_FREG(d, VV_SSE_FLOAT_OP(INSN2, r_, FREG(y))); \
    } while (0)
#else
#define FLOAT_PAIR_OP(d, s, x, y, FOP1, INSN1, FOP2, INSN2, FIRST_DONE) do { \
        FLOAT_OP(d, s, x, FOP1, INSN1); T[d] = VV_TAG_F64; \
        if (VV_UNLIKELY(T[y] != VV_TAG_F64)) FIRST_DONE; \
        FLOAT_OP(d, d, y, FOP2, INSN2); \
    } while (0)
#endif
#define FOP_FADD +
#define FOP_FSUB -
#define FOP_FMUL *
#define INSN_FADD "addsd"
#define INSN_FSUB "subsd"
#define INSN_FMUL "mulsd"
#define AR_FADD VV_AR_ADD
#define AR_FSUB VV_AR_SUB
#define AR_FMUL VV_AR_MUL
#define FLOAT_PAIR_TARGETS(FIRST, SECOND) \
    TARGET(X_##FIRST##_##SECOND) { \
        unsigned d_ = pc->a, x_ = pc->b, y_ = pc->c; \
        if (VV_UNLIKELY(!BOTH_F(T[d_], T[x_]))) { slow_op = AR_##FIRST; goto vv_binary_slow; } \
        FLOAT_PAIR_OP(d_, d_, x_, y_, FOP_##FIRST, INSN_##FIRST, FOP_##SECOND, INSN_##SECOND, NEXT(VV_SIZE_FADD)); \
        NEXT(VV_FUSED_FLOAT_PAIR_SIZE); \
    } \
    TARGET(X_MOV_##FIRST##_##SECOND) { \
        unsigned d_ = pc->a, s_ = pc->b, x_ = pc->c, y_ = pc->d; \
        if (VV_UNLIKELY(!BOTH_F(T[s_], T[x_]))) goto vv_unfuse_movr; \
        FLOAT_PAIR_OP(d_, s_, x_, y_, FOP_##FIRST, INSN_##FIRST, FOP_##SECOND, INSN_##SECOND, \
                      NEXT(VV_FUSED_MOV_BINARY_SIZE)); \
        NEXT(VV_FUSED_MOV_FLOAT_PAIR_SIZE); \
    }
    FLOAT_PAIR_TARGETS(FADD, FADD) FLOAT_PAIR_TARGETS(FADD, FSUB) FLOAT_PAIR_TARGETS(FADD, FMUL)
    FLOAT_PAIR_TARGETS(FSUB, FADD) FLOAT_PAIR_TARGETS(FSUB, FSUB) FLOAT_PAIR_TARGETS(FSUB, FMUL)
    FLOAT_PAIR_TARGETS(FMUL, FADD) FLOAT_PAIR_TARGETS(FMUL, FSUB) FLOAT_PAIR_TARGETS(FMUL, FMUL)
#undef FLOAT_PAIR_TARGETS
#undef FLOAT_PAIR_OP
#undef FOP_FADD
#undef FOP_FSUB
#undef FOP_FMUL
#undef INSN_FADD
#undef INSN_FSUB
#undef INSN_FMUL
#undef AR_FADD
#undef AR_FSUB
#undef AR_FMUL
    vv_unfuse_movr: { VV_OPAQUE(pc); R[pc->a] = R[pc->b]; T[pc->a] = T[pc->b]; NEXT(VV_SIZE_MOVR); }

    /* A constant operand: uload/iload k v + op x k. The load is done first; a
     * register x of another type continues at the op's own slot, which does
     * the generic operation (or traps) as the unfused code would. */
#define CONST_BINARY(TAG, OP, RESULT) do { \
        unsigned k_ = pc->a, x_ = pc->b; uint64_t v_ = pc->imm; \
        R[k_] = v_; T[k_] = (TAG); \
        if (VV_UNLIKELY(T[x_] != (TAG))) NEXT(VV_SIZE_ULOAD); \
        R[x_] = RESULT = R[x_] OP v_; \
    } while (0)
    TARGET(X_KUADD) { uint64_t r; CONST_BINARY(VV_TAG_U64, +, r); (void)r; NEXT(VV_FUSED_LOAD_BINARY_SIZE); }
    TARGET(X_KUSUB) {
        uint64_t r;
        CONST_BINARY(VV_TAG_U64, -, r);
        SET_ZF(r == 0);                                 /* a uint64 result */
        NEXT(VV_FUSED_LOAD_BINARY_SIZE);
    }
    TARGET(X_KIADD) { uint64_t r; CONST_BINARY(VV_TAG_I64, +, r); (void)r; NEXT(VV_FUSED_LOAD_BINARY_SIZE); }
    TARGET(X_KISUB) { uint64_t r; CONST_BINARY(VV_TAG_I64, -, r); (void)r; NEXT(VV_FUSED_LOAD_BINARY_SIZE); }
#undef CONST_BINARY
    /* ... + compare x k + jcc: the compare never traps, so any other type of x
     * takes the generic compare. */
#define CONST_COMPARE_BRANCH(TAG, FASTOP) do { \
        unsigned k_ = pc->a, x_ = pc->b, tx_ = T[x_]; \
        uint64_t v_ = pc->imm, y_ = R[x_]; \
        R[k_] = v_; T[k_] = (TAG); \
        if (VV_LIKELY(tx_ == (TAG))) FASTOP(y_, v_); \
        else fl = vv_compare(y_, tx_, v_, (TAG)); \
        BRANCH_MASK(pc->c, (int32_t)pc->w, VV_FUSED_LOAD_CMP_JCC_SIZE); \
    } while (0)
    TARGET(X_KUCJ) CONST_COMPARE_BRANCH(VV_TAG_U64, CMP_UNSIGNED);
    TARGET(X_KICJ) CONST_COMPARE_BRANCH(VV_TAG_I64, CMP_SIGNED);
#undef CONST_COMPARE_BRANCH

    /* ---------------------------------------------------------- control */
    TARGET(NOP) NEXT(VV_SIZE_NOP);                    /* advances (semantics.md §3.1) */
    TARGET(HALT) { vm->ip = ADDR(); goto vv_exit_halt; }
    TARGET(NCALL) {
        vm->ncall_code = pc->x;
        vm->ncall_ip = ADDR();
        vm->ip = ADDR() + VV_SIZE_NCALL;
        const vv_native *native = vv_native_find(vm, pc->x);
        if (native == NULL) goto vv_exit_ncall;            /* the Python host's native */
        /* A C native of the VM's table (vv_natives.h ABI): it sees the state in
         * vm, so publish the cached flags and depths and reload all after. */
        vm->flags[1] = (uint8_t)ZF; vm->flags[2] = (uint8_t)NF;
        PUBLISH_STACKS();
        int rc = native->fn(vm, native->ctx, (unsigned)vm->ncall_code);
        fl = (vm->flags[1] & 1u) | (vm->flags[2] & 1u) << 1;
        LOAD_STACKS();
        pc = CODE + vm->ncall_ip;
        if (VV_LIKELY(rc == VV_NATIVE_DONE)) NEXT(VV_SIZE_NCALL);
        if (rc == VV_NATIVE_YIELD) { next_ip = ADDR() + VV_SIZE_NCALL; goto vv_flush; }
        if (rc == VV_NATIVE_HOST) goto vv_exit_ncall;
        TRAP(vm->trap_kind, vm->trap_a, vm->trap_b);
    }

    /* ---------------------------------------------------------- loads */
    TARGET(ULOAD) { R[pc->a] = pc->imm; T[pc->a] = VV_TAG_U64; NEXT(VV_SIZE_ULOAD); }
    TARGET(ILOAD) { R[pc->a] = pc->imm; T[pc->a] = VV_TAG_I64; NEXT(VV_SIZE_ILOAD); }
    TARGET(FLOAD) { R[pc->a] = pc->imm; T[pc->a] = VV_TAG_F64; NEXT(VV_SIZE_FLOAD); }

    /* ---------------------------------------------------------- generic + - * */
    /* The three spellings are one generic operation (upstream.md §1.3); each has
     * the fast path of its own type, and all share the slow block. */
    TARGET(UADD) { BINARY_INT(VV_AR_ADD, U_OR_ADDRESS_U, +); NEXT(VV_SIZE_UADD); }
    TARGET(IADD) { BINARY_INT(VV_AR_ADD, BOTH_I, +); NEXT(VV_SIZE_IADD); }
    TARGET(FADD) { BINARY_FLOAT(VV_AR_ADD, +, "addsd"); NEXT(VV_SIZE_FADD); }
    TARGET(UMUL) { BINARY_INT(VV_AR_MUL, U_OR_ADDRESS_U, *); NEXT(VV_SIZE_UMUL); }
    TARGET(IMUL) { BINARY_INT(VV_AR_MUL, BOTH_I, *); NEXT(VV_SIZE_IMUL); }
    TARGET(FMUL) { BINARY_FLOAT(VV_AR_MUL, *, "mulsd"); NEXT(VV_SIZE_FMUL); }
    TARGET(ISUB) { BINARY_INT(VV_AR_SUB, BOTH_I, -); NEXT(VV_SIZE_ISUB); }   /* no flags */
    TARGET(FSUB) { BINARY_FLOAT(VV_AR_SUB, -, "subsd"); NEXT(VV_SIZE_FSUB); }         /* no flags */
    TARGET(USUB) {
        unsigned d = pc->a, x = pc->b;
        if (VV_LIKELY(U_OR_ADDRESS_U(T[d], T[x]))) {    /* the result is uint64 or the address's tag */
            uint64_t r = R[d] - R[x];
            R[d] = r;
            SET_ZF(r == 0);
            NEXT(VV_SIZE_USUB);
        }
        slow_op = VV_AR_SUB;
        goto vv_binary_slow;
    vv_usub_flags:
        SET_ZF(VV_IS_UX(T[pc->a]) && R[pc->a] == 0);     /* result == U(0), typed */
        NEXT(VV_SIZE_USUB);
    }
    vv_binary_slow: {
        VV_OPAQUE(pc);
        /* Every other tag pair of + - * (upstream.md §1.3 table, semantics.md §2). */
        unsigned d = pc->a, s = pc->b;
        if (vv_arith(slow_op, R[d], T[d], R[s], T[s], &R[d], &T[d]) != VV_ARITH_OK)
            MISMATCH(slow_op, T[d], T[s]);
        if (pc->op == VV_SOP_USUB) goto vv_usub_flags;
        NEXT(VV_SIZE_UADD);
    }

    /* ---------------------------------------------------------- / % */
    TARGET(FDIV) {
        /* fdiv by a float +-0 raises ZeroDivision before any type check (semantics.md §3.3). */
        unsigned y = pc->c;
        if (T[y] == VV_TAG_F64 && vv_f(R[y]) == 0.0) { RAISE(VV_EXC_ZERODIVISION); NEXT(VV_SIZE_FDIV); }
        goto vv_divide;
    }
    TARGET(UDIV) TARGET(IDIV) goto vv_divide;
    TARGET(UREM) TARGET(IREM) TARGET(FREM) {
        unsigned d = pc->a, x = pc->b, y = pc->c, tx = T[x];
        if (VV_LIKELY(tx == VV_TAG_U64 && T[y] == VV_TAG_U64 && R[y] != 0)) {
            R[d] = R[x] % R[y]; T[d] = VV_TAG_U64;
        } else {
            uint64_t v; uint8_t t;
            int rc = vv_arith(VV_AR_REM, R[x], tx, R[y], T[y], &v, &t);
            if (rc == VV_ARITH_MISMATCH) MISMATCH(VV_AR_REM, tx, T[y]);
            if (rc == VV_ARITH_ZERODIV) RAISE(VV_EXC_ZERODIVISION);   /* destination unchanged */
            else { R[d] = v; T[d] = t; }
        }
        NEXT(VV_SIZE_UREM);
    }
    vv_divide: {
        VV_OPAQUE(pc);
        unsigned d = pc->a, x = pc->b, y = pc->c, tx = T[x];
        if (VV_LIKELY(tx == T[y] && tx == VV_TAG_F64)) {
            R[d] = vv_b(vv_f(R[x]) / vv_f(R[y])); T[d] = VV_TAG_F64;
        } else if (tx == VV_TAG_U64 && T[y] == VV_TAG_U64 && R[y] != 0) {
            R[d] = R[x] / R[y]; T[d] = VV_TAG_U64;
        } else {
            uint64_t v; uint8_t t;
            int rc = vv_arith(VV_AR_DIV, R[x], tx, R[y], T[y], &v, &t);
            if (rc == VV_ARITH_MISMATCH) MISMATCH(VV_AR_DIV, tx, T[y]);
            if (rc == VV_ARITH_ZERODIV) RAISE(VV_EXC_ZERODIVISION);   /* destination unchanged */
            else { R[d] = v; T[d] = t; }
        }
        NEXT(VV_SIZE_UDIV);
    }

    /* ---------------------------------------------------------- compare */
    TARGET(UCMP) { COMPARE(pc->a, pc->b, UNSIGNED_PAIR, CMP_UNSIGNED); NEXT(VV_SIZE_UCMP); }
    TARGET(ICMP) { COMPARE(pc->a, pc->b, BOTH_I, CMP_SIGNED); NEXT(VV_SIZE_ICMP); }
    TARGET(FCMP) { COMPARE_FLOAT(pc->a, pc->b); NEXT(VV_SIZE_FCMP); }
    TARGET(FCMP_EPS) {
        /* ZF := |as_f64(a - b)| < eps; NF := (b - a) > F(eps), typed (upstream.md §2.3). */
        unsigned a = pc->a, b = pc->b;
        uint64_t ab, ba; uint8_t tab, tba;
        if (vv_arith(VV_AR_SUB, R[a], T[a], R[b], T[b], &ab, &tab) != VV_ARITH_OK)
            MISMATCH(VV_AR_SUB, T[a], T[b]);
        if (vv_arith(VV_AR_SUB, R[b], T[b], R[a], T[a], &ba, &tba) != VV_ARITH_OK)
            MISMATCH(VV_AR_SUB, T[b], T[a]);
        SET_ZN(fabs(vv_as_f64(ab, tab)) < 1e-10, tba == VV_TAG_F64 && vv_f(ba) > 1e-10);
        NEXT(VV_SIZE_FCMP_EPS);
    }

    /* ---------------------------------------------------------- unsigned unary */
    TARGET(USQRT) {
        uint64_t r = vv_isqrt(vv_as_u64(R[pc->b], T[pc->b]));
        R[pc->a] = r; T[pc->a] = VV_TAG_U64; SET_ZF(r == 0);
        NEXT(VV_SIZE_USQRT);
    }
    TARGET(UPOW) {
        unsigned d = pc->a, s = pc->b;
        uint64_t r = vv_pow_wrap(vv_as_u64(R[d], T[d]), (uint32_t)vv_as_u64(R[s], T[s]));
        R[d] = r; T[d] = VV_TAG_U64; SET_ZF(r == 0);     /* semantics.md §2: upow gives uint64 */
        NEXT(VV_SIZE_UPOW);
    }
    TARGET(UINC) {
        unsigned d = pc->a;
        if (!INC_OK(T[d])) MISMATCH(VV_AR_INC, T[d], 0);
        SET_OF(++R[d] == 0);                            /* uinc writes OF, not ZF (upstream.md §1.4) */
        NEXT(VV_SIZE_UINC);
    }
    TARGET(UDEC) {
        unsigned d = pc->a;
        if (!INC_OK(T[d])) MISMATCH(VV_AR_DEC, T[d], 0);
        SET_ZF(--R[d] == 0);
        NEXT(VV_SIZE_UDEC);
    }

    /* ---------------------------------------------------------- signed unary */
    TARGET(IABS) {
        int64_t v = vv_as_i64(R[pc->b], T[pc->b]);
        uint64_t r = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;   /* abs(MIN) = MIN */
        R[pc->a] = r; T[pc->a] = VV_TAG_I64; SET_ZF(r == 0);
        NEXT(VV_SIZE_IABS);
    }
    TARGET(INEG) {
        uint64_t r = (uint64_t)0 - (uint64_t)vv_as_i64(R[pc->b], T[pc->b]);  /* semantics.md §2 */
        R[pc->a] = r; T[pc->a] = VV_TAG_I64; SET_ZN(r == 0, (int64_t)r < 0);
        NEXT(VV_SIZE_INEG);
    }
    TARGET(ISQRT) {
        unsigned d = pc->a, s = pc->b;
        if (T[s] == VV_TAG_I64 && (int64_t)R[s] < 0) {
            RAISE(VV_EXC_NEGATIVESQRT);               /* nothing else changes */
        } else {
            int64_t v = vv_as_i64(R[s], T[s]);
            if (v < 0) TRAP(VV_TRAP_NEGATIVE_ISQRT, 0, 0);   /* a uint >= 2^63, a negative float */
            uint64_t r = vv_isqrt((uint64_t)v);
            R[d] = r; T[d] = VV_TAG_I64; SET_ZF(r == 0);
        }
        NEXT(VV_SIZE_ISQRT);
    }
    TARGET(IPOW) {
        unsigned d = pc->a, s = pc->b;
        uint64_t r = vv_pow_wrap((uint64_t)vv_as_i64(R[d], T[d]), (uint32_t)(uint64_t)vv_as_i64(R[s], T[s]));
        R[d] = r; T[d] = VV_TAG_I64; SET_ZN(r == 0, (int64_t)r < 0);   /* semantics.md §2 */
        NEXT(VV_SIZE_IPOW);
    }
    TARGET(IINC) {
        unsigned d = pc->a;
        if (VV_UNLIKELY(T[d] != VV_TAG_I64)) MISMATCH(VV_AR_INC, T[d], 0);
        uint64_t r = ++R[d];
        SET_ZN(r == 0, (int64_t)r < 0);
        NEXT(VV_SIZE_IINC);
    }
    TARGET(IDEC) {
        unsigned d = pc->a;
        if (VV_UNLIKELY(T[d] != VV_TAG_I64)) MISMATCH(VV_AR_DEC, T[d], 0);
        uint64_t r = --R[d];
        SET_ZN(r == 0, (int64_t)r < 0);
        NEXT(VV_SIZE_IDEC);
    }

    /* ---------------------------------------------------------- float unary */
    TARGET(FABS) {
        double r = fabs(vv_as_f64(R[pc->b], T[pc->b]));
        R[pc->a] = vv_b(r); T[pc->a] = VV_TAG_F64; SET_ZF(r == 0.0);
        NEXT(VV_SIZE_FABS);
    }
    TARGET(FNEG) {
        double r = -vv_as_f64(R[pc->b], T[pc->b]);    /* semantics.md §2 */
        R[pc->a] = vv_b(r); T[pc->a] = VV_TAG_F64; SET_ZN(r == 0.0, r < 0.0);
        NEXT(VV_SIZE_FNEG);
    }
    TARGET(FSQRT) {
        unsigned d = pc->a, s = pc->b;
        if (T[s] == VV_TAG_F64 && vv_f(R[s]) < 0.0) {
            RAISE(VV_EXC_NEGATIVESQRT);               /* nothing else changes */
        } else {
            double r = sqrt(vv_as_f64(R[s], T[s]));   /* NaN for a negative int */
            R[d] = vv_b(r); T[d] = VV_TAG_F64; SET_ZF(r == 0.0);
        }
        NEXT(VV_SIZE_FSQRT);
    }
    TARGET(FPOW) {
        unsigned d = pc->a, s = pc->b;
        double r = pow(vv_as_f64(R[d], T[d]), vv_as_f64(R[s], T[s]));   /* silent (semantics.md §3.5) */
        R[d] = vv_b(r); T[d] = VV_TAG_F64; SET_ZF(r == 0.0);
        NEXT(VV_SIZE_FPOW);
    }
    TARGET(FINC) {
        unsigned d = pc->a;
        if (VV_UNLIKELY(T[d] != VV_TAG_F64)) MISMATCH(VV_AR_INC, T[d], 0);
        double r = vv_f(R[d]) + 1.0;
        R[d] = vv_b(r); SET_ZN(r == 0.0, r < 0.0);
        NEXT(VV_SIZE_FINC);
    }
    TARGET(FDEC) {
        unsigned d = pc->a;
        if (VV_UNLIKELY(T[d] != VV_TAG_F64)) MISMATCH(VV_AR_DEC, T[d], 0);
        double r = vv_f(R[d]) - 1.0;
        R[d] = vv_b(r); SET_ZN(r == 0.0, r < 0.0);
        NEXT(VV_SIZE_FDEC);
    }

    /* ---------------------------------------------------------- jumps */
    TARGET(JMP) JUMP(pc->imm);
    TARGET(JZ) BRANCH_IF(ZF, pc->imm, VV_SIZE_JZ);
    TARGET(JNZ) BRANCH_IF(!ZF, pc->imm, VV_SIZE_JNZ);
    TARGET(JL) BRANCH_IF(NF, pc->imm, VV_SIZE_JL);
    TARGET(JGE) BRANCH_IF(!NF, pc->imm, VV_SIZE_JGE);
    TARGET(JG) BRANCH_IF(fl == 0, pc->imm, VV_SIZE_JG);
    TARGET(JLE) BRANCH_IF(fl != 0, pc->imm, VV_SIZE_JLE);
    TARGET(JEXC) BRANCH_IF(vv_take_exception(vm, pc->a), pc->imm, VV_SIZE_JEXC);
    TARGET(JMPR) JUMP(vv_as_u64(R[pc->a], T[pc->a]));

    /* ---------------------------------------------------------- conversions */
    TARGET(UTOI) { unsigned s = pc->b; R[pc->a] = vv_as_u64(R[s], T[s]); T[pc->a] = VV_TAG_I64; NEXT(VV_SIZE_UTOI); }
    TARGET(ITOU) { unsigned s = pc->b; R[pc->a] = (uint64_t)vv_as_i64(R[s], T[s]); T[pc->a] = VV_TAG_U64; NEXT(VV_SIZE_ITOU); }
    TARGET(UTOF) { unsigned s = pc->b; R[pc->a] = vv_b((double)vv_as_u64(R[s], T[s])); T[pc->a] = VV_TAG_F64; NEXT(VV_SIZE_UTOF); }
    TARGET(ITOF) { unsigned s = pc->b; R[pc->a] = vv_b((double)vv_as_i64(R[s], T[s])); T[pc->a] = VV_TAG_F64; NEXT(VV_SIZE_ITOF); }
    TARGET(FTOU) TARGET(PTOU) { unsigned s = pc->b; R[pc->a] = vv_as_u64(R[s], T[s]); T[pc->a] = VV_TAG_U64; NEXT(VV_SIZE_FTOU); }
    TARGET(FTOI) { unsigned s = pc->b; R[pc->a] = (uint64_t)vv_f2i_sat(vv_as_f64(R[s], T[s])); T[pc->a] = VV_TAG_I64; NEXT(VV_SIZE_FTOI); }
    TARGET(UTOP) { unsigned s = pc->b; R[pc->a] = vv_as_u64(R[s], T[s]); T[pc->a] = VV_TAG_ADDR; NEXT(VV_SIZE_UTOP); }

    /* ---------------------------------------------------------- moves, logic, shifts */
    TARGET(MOVR) { unsigned s = pc->b; R[pc->a] = R[s]; T[pc->a] = T[s]; NEXT(VV_SIZE_MOVR); }
    TARGET(AND) { op_logic = VV_AR_AND; goto vv_logic; }
    TARGET(OR) { op_logic = VV_AR_OR; goto vv_logic; }
    TARGET(XOR) { op_logic = VV_AR_XOR; goto vv_logic; }
    vv_logic: {
        VV_OPAQUE(pc);
        /* The result tag is the §1.3 table's, not the source's (semantics.md §2). */
        unsigned d = pc->a, s = pc->b;
        uint64_t v; uint8_t t;
        if (vv_arith(op_logic, R[d], T[d], R[s], T[s], &v, &t) != VV_ARITH_OK || t == VV_TAG_F64)
            MISMATCH(op_logic, T[d], T[s]);
        R[d] = v; T[d] = t; SET_ZF(v == 0);
        NEXT(VV_SIZE_AND);
    }
    TARGET(TEST) {
        unsigned a = pc->a, b = pc->b;
        uint64_t v; uint8_t t;
        if (vv_arith(VV_AR_AND, R[a], T[a], R[b], T[b], &v, &t) != VV_ARITH_OK || t == VV_TAG_F64)
            MISMATCH(VV_AR_AND, T[a], T[b]);
        SET_ZF(v == 0);
        NEXT(VV_SIZE_TEST);
    }
    TARGET(NOT) {
        unsigned s = pc->b, t = T[s];
        if (VV_UNLIKELY(t == VV_TAG_F64)) MISMATCH(VV_AR_NOT, t, 0);
        uint64_t r = ~R[s];
        R[pc->a] = r; T[pc->a] = (uint8_t)t; SET_ZF(r == 0);
        NEXT(VV_SIZE_NOT);
    }
    TARGET(LNOT) {
        unsigned s = pc->b, t = T[s];
        uint64_t r;
        if (t == VV_TAG_F64) {
            r = vv_b(vv_f(R[s]) == 0.0 ? 1.0 : 0.0);
            SET_ZF(r == 0);                               /* as_u64(1.0) = 1, as_u64(0.0) = 0 */
        } else {
            r = R[s] == 0;
            SET_ZF(r == 0);
        }
        R[pc->a] = r; T[pc->a] = (uint8_t)t;
        NEXT(VV_SIZE_LNOT);
    }
    TARGET(SHL) {
        unsigned d = pc->a, s = pc->b;
        if (VV_UNLIKELY(T[s] != VV_TAG_U64 || T[d] == VV_TAG_F64)) MISMATCH(VV_AR_SHL, T[d], T[s]);
        R[d] <<= (R[s] & 63u);
        NEXT(VV_SIZE_SHL);
    }
    TARGET(SHR) {
        unsigned d = pc->a, s = pc->b;
        if (VV_UNLIKELY(T[s] != VV_TAG_U64 || T[d] == VV_TAG_F64)) MISMATCH(VV_AR_SHR, T[d], T[s]);
        if (T[d] == VV_TAG_I64) R[d] = (uint64_t)((int64_t)R[d] >> (R[s] & 63u));   /* arithmetic */
        else R[d] >>= (R[s] & 63u);
        NEXT(VV_SIZE_SHR);
    }

    /* ---------------------------------------------------------- data segment */
    TARGET(DSLOAD) { ds_item = pc->imm; ds_off = vv_be64(vm->mem + ADDR() + 10); ds_reg = pc->a; ds_size = VV_SIZE_DSLOAD; goto vv_ds_load; }
    TARGET(DSRLOAD) { ds_item = pc->imm; ds_off = vv_as_u64(R[pc->b], T[pc->b]); ds_reg = pc->a; ds_size = VV_SIZE_DSRLOAD; goto vv_ds_load; }
    TARGET(DSDEREF) {
        /* semantics.md §2: the item's own element type; always the first payload word. */
        ds_item = vv_as_u64(R[pc->a], T[pc->a]) - pc->imm; ds_off = 0; ds_reg = pc->b; ds_size = VV_SIZE_DSDEREF;
        goto vv_ds_load;
    }
    TARGET(DSRDEREF) {
        ds_item = vv_as_u64(R[pc->a], T[pc->a]) - vv_as_u64(R[pc->c], T[pc->c]); ds_off = 0; ds_reg = pc->b;
        ds_size = VV_SIZE_DSRDEREF;
        goto vv_ds_load;
    }
    vv_ds_load: {
        VV_OPAQUE(pc);
        const uint8_t *mem = vm->mem;
        uint64_t len = vm->len;
        if (VV_UNLIKELY(ds_item >= len)) TRAP(VV_TRAP_DATA_OUT_OF_RANGE, ds_item, len);
        unsigned raw = mem[ds_item], kind = raw & ~(unsigned)VV_DATA_CONST_BIT & 0xFFu;
        if (kind >= VV_DT_UINT_ARRAY && kind <= VV_DT_FLOAT_ARRAY) kind -= VV_DT_ARRAY_DELTA;   /* element type */
        uint64_t at = ds_item + VV_DATA_HEADER_SIZE + ds_off;                    /* wraps like upstream */
        if (kind == VV_DT_STR) {
            R[ds_reg] = at; T[ds_reg] = VV_TAG_STR;
        } else if (kind >= VV_DT_UINT && kind <= VV_DT_FLOAT) {
            if (VV_UNLIKELY(len < 8 || at > len - 8)) TRAP(VV_TRAP_DATA_OUT_OF_RANGE, at, len);
            R[ds_reg] = vv_be64(mem + at); T[ds_reg] = (uint8_t)kind;
        } else {
            TRAP(VV_TRAP_BAD_DATA_TYPE, ds_item, raw);
        }
        NEXT(ds_size);
    }
    TARGET(DSSAVE) { ds_item = pc->imm; ds_off = vv_be64(vm->mem + ADDR() + 10); ds_reg = pc->a; ds_size = VV_SIZE_DSSAVE; goto vv_ds_save; }
    TARGET(DSRSAVE) { ds_item = pc->imm; ds_off = vv_as_u64(R[pc->b], T[pc->b]); ds_reg = pc->a; ds_size = VV_SIZE_DSRSAVE; goto vv_ds_save; }
    vv_ds_save: {
        VV_OPAQUE(pc);
        uint8_t *mem = vm->mem;
        uint64_t len = vm->len;
        if (VV_UNLIKELY(ds_item >= len)) TRAP(VV_TRAP_DATA_OUT_OF_RANGE, ds_item, len);
        if (mem[ds_item] & VV_DATA_CONST_BIT) TRAP(VV_TRAP_CONST_WRITE, ds_item, 0);
        if (VV_UNLIKELY(len - ds_item < VV_DATA_HEADER_SIZE)) TRAP(VV_TRAP_DATA_OUT_OF_RANGE, ds_item + 1, len);
        uint64_t length = vv_be64(mem + ds_item + 1);
        uint64_t at = ds_item + VV_DATA_HEADER_SIZE + ds_off;
        /* Only inside the item's payload and inside memory (semantics.md §3.27). */
        if (length < 8 || ds_off > length - 8 || ds_off > UINT64_MAX - VV_DATA_HEADER_SIZE - ds_item ||
            len < 8 || at > len - 8) {
            RAISE(VV_EXC_MAINSEGMFAULT);
        } else {
            vv_put_be64(mem + at, R[ds_reg]);        /* the bits; the tag decides their encoding */
            vv_invalidate(vm, at, 8);
        }
        NEXT(ds_size);
    }
    TARGET(DSLEA) { R[pc->a] = pc->imm; T[pc->a] = VV_TAG_DS_ADDR; NEXT(VV_SIZE_DSLEA); }
    TARGET(DSRLEA) {
        unsigned o = pc->b;
        R[pc->a] = pc->imm + vv_as_u64(R[o], T[o]); T[pc->a] = VV_TAG_DS_ADDR;
        NEXT(VV_SIZE_DSRLEA);
    }

    /* ---------------------------------------------------------- data stack */
    TARGET(PUSH) {
    vv_push:
        STACK_ROOM(1);
        unsigned s = pc->a;
        sp->v = R[s]; sp->t = T[s]; sp++;
        NEXT(VV_SIZE_PUSH);
    }
    TARGET(POP) {
    vv_pop:
        if (VV_UNLIKELY(sp == vm->stack)) TRAP(VV_TRAP_STACK_UNDERFLOW, 0, 0);
        unsigned d = pc->a;
        sp--; R[d] = sp->v; T[d] = (uint8_t)sp->t;
        NEXT(VV_SIZE_POP);
    }
    /* Stack pairs (vv_core.h): the stack machine's own sequences. When the
     * pair would stop in its second half (a second pop from a one-entry stack,
     * a second push that must grow the stack) the first one runs alone as the
     * plain instruction, and the second's own slot goes on. */
    TARGET(X_PUSH_PUSH) {
        if (VV_UNLIKELY(stack_end - sp < 2)) goto vv_push;
        unsigned s = pc->a, t = pc->b;
        sp[0].v = R[s]; sp[0].t = T[s];
        sp[1].v = R[t]; sp[1].t = T[t];
        sp += 2;
        NEXT(VV_FUSED_STACK_PAIR_SIZE);
    }
    TARGET(X_POP_POP) {
        if (VV_UNLIKELY(sp - vm->stack < 2)) goto vv_pop;
        unsigned d = pc->a, e = pc->b;
        R[d] = sp[-1].v; T[d] = (uint8_t)sp[-1].t;
        R[e] = sp[-2].v; T[e] = (uint8_t)sp[-2].t;   /* after the first: e may be d */
        sp -= 2;
        NEXT(VV_FUSED_STACK_PAIR_SIZE);
    }
    TARGET(X_POP_PUSH) {
        /* pop d; push s: the top entry is read, then replaced (there is room) */
        if (VV_UNLIKELY(sp == vm->stack)) TRAP(VV_TRAP_STACK_UNDERFLOW, 0, 0);
        unsigned d = pc->a, s = pc->b;
        R[d] = sp[-1].v; T[d] = (uint8_t)sp[-1].t;
        sp[-1].v = R[s]; sp[-1].t = T[s];             /* after the pop: s may be d */
        NEXT(VV_FUSED_STACK_PAIR_SIZE);
    }
    TARGET(PUSHALL) {
        STACK_ROOM(VV_PUSHALL_COUNT);                 /* r0..r30 (semantics.md §1) */
        for (int i = 0; i < VV_PUSHALL_COUNT; i++) { sp[i].v = R[i]; sp[i].t = T[i]; }
        sp += VV_PUSHALL_COUNT;
        NEXT(VV_SIZE_PUSHALL);
    }
    TARGET(POPALL) {
        /* semantics.md §3.2: pop the 31 entries, restore r30..r1, r0 keeps its value. */
        if (VV_UNLIKELY(SP_INDEX() < VV_PUSHALL_COUNT))   /* (entries needed, entries there) */
            TRAP(VV_TRAP_STACK_UNDERFLOW, VV_PUSHALL_COUNT, SP_INDEX());
        sp -= VV_PUSHALL_COUNT;
        for (int i = 1; i < VV_PUSHALL_COUNT; i++) { R[i] = sp[i].v; T[i] = (uint8_t)sp[i].t; }
        NEXT(VV_SIZE_POPALL);
    }
    TARGET(GSF) {
        uint64_t i = vv_as_u64(R[pc->b], T[pc->b]);
        if (i < SP_INDEX()) { R[pc->a] = vm->stack[i].v; T[pc->a] = (uint8_t)vm->stack[i].t; }   /* else nothing */
        NEXT(VV_SIZE_GSF);
    }
    TARGET(USF) {
        uint64_t i = vv_as_u64(R[pc->a], T[pc->a]);
        if (VV_LIKELY(i < SP_INDEX())) { vm->stack[i].v = R[pc->b]; vm->stack[i].t = T[pc->b]; }
        else vv_usf_missed(vm, ADDR(), i, SP_INDEX());
        NEXT(VV_SIZE_USF);
    }

    /* ---------------------------------------------------------- functions */
    TARGET(CALL) {
        CALL_ROOM();                                   /* the recursion limit first, like upstream */
        uint64_t idx = pc->imm;
        if (VV_UNLIKELY(idx >= vm->nfuncs)) TRAP(VV_TRAP_BAD_FUNCTION, idx, vm->nfuncs);
        *csp++ = ADDR() + VV_SIZE_CALL;
        JUMP(vm->funcs[idx]);
    }
    /* A call the decoder resolved (vv_core.h): the function's slot in imm, the
     * return address in w. */
    TARGET(X_CALL) {
        CALL_ROOM();
        *csp++ = pc->w;
        JUMP_SLOT((int64_t)pc->imm);
    }
    TARGET(CALLR) {
        CALL_ROOM();                                   /* callr checks the limit too (semantics.md §3.6) */
        uint64_t idx = vv_as_u64(R[pc->a], T[pc->a]);
        if (VV_UNLIKELY(idx >= vm->nfuncs)) TRAP(VV_TRAP_BAD_FUNCTION, idx, vm->nfuncs);
        *csp++ = ADDR() + VV_SIZE_CALLR;
        JUMP(vm->funcs[idx]);
    }
    TARGET(RET) {
        if (VV_UNLIKELY(csp == vm->calls)) {
            /* A spawned thread returning from its first frame ends (docs/concurrency.md). */
            if (vm->ret_ends) { vm->ip = ADDR(); goto vv_exit_halt; }
            TRAP(VV_TRAP_CALL_STACK_UNDERFLOW, 0, 0);
        }
        /* Return addresses were pushed by call/callr as the end of an instruction
         * inside memory, and memory never shrinks: at most len, where the sentinel
         * slot traps IP_OUTSIDE like the check would. */
        JUMP_INSIDE(*--csp);
    }
    /* pop d + ret, movr d s + ret; with an empty call stack the first
     * instruction is done and the ret's own slot decides. */
    TARGET(X_POP_RET) {
        if (VV_UNLIKELY(sp == vm->stack)) TRAP(VV_TRAP_STACK_UNDERFLOW, 0, 0);
        unsigned d = pc->a;
        sp--; R[d] = sp->v; T[d] = (uint8_t)sp->t;
        if (VV_UNLIKELY(csp == vm->calls)) NEXT(VV_SIZE_POP);
        JUMP_INSIDE(*--csp);
    }
    TARGET(X_MOV_RET) {
        R[pc->a] = R[pc->b]; T[pc->a] = T[pc->b];
        if (VV_UNLIKELY(csp == vm->calls)) NEXT(VV_SIZE_MOVR);
        JUMP_INSIDE(*--csp);
    }
    TARGET(FNSTIND) { R[pc->a] = pc->imm; T[pc->a] = VV_TAG_U64; NEXT(VV_SIZE_FNSTIND); }

    /* ---------------------------------------------------------- heap (heap/vh_vmops.h, heap/vh_heap.h) */
    /* The allocations: R[d] := A(block), or A(0) and HeapAllocationFault
     * (semantics.md §3.9). The collector may run (roots: registers and stack
     * entries tagged 8), so the stack depth is published first. */
    TARGET(ALLOC) { heap_n = pc->imm; heap_gc = 1; heap_size = VV_SIZE_ALLOC; goto vv_alloc; }
    TARGET(ALLOCR) { heap_n = vv_as_u64(R[pc->b], T[pc->b]); heap_gc = 1; heap_size = VV_SIZE_ALLOCR; goto vv_alloc; }
    TARGET(ALLOCR_NOGC) {
        heap_n = vv_as_u64(R[pc->b], T[pc->b]); heap_gc = 0; heap_size = VV_SIZE_ALLOCR_NOGC;
        goto vv_alloc;
    }
    vv_alloc: {
        /* No collection is due and a free region fits (the usual case): no
         * root to describe, no log event, no slice to end. */
        VV_OPAQUE(pc);
        uint64_t address = heap_alloc_quick(&vm->heap, heap_n, (int)heap_gc);
        if (VV_UNLIKELY(address == 0)) goto vv_alloc_slow;
        R[pc->a] = address; T[pc->a] = VV_TAG_ADDR;
        POLL_AFTER(heap_n, heap_size);
        NEXT(heap_size);
    }
    vv_alloc_slow: {
        VV_OPAQUE(pc);
        vm->sp = SP_INDEX();
        uint64_t address = vv_heap_alloc_slow(vm, heap_n, (int)heap_gc);
        if (VV_UNLIKELY(address == 0)) RAISE(VV_EXC_HEAPALLOCATIONFAULT);
        R[pc->a] = address; T[pc->a] = VV_TAG_ADDR;
        /* the log has no room for another allocation's events, or a collection or
         * growth ran and the slice is over (vh_vmops.h) */
        if (VV_UNLIKELY(vm->ngc_events > VV_GC_EVENTS - VV_GC_EVENTS_PER_ALLOC || vm->flush_due)) {
            next_ip = ADDR() + heap_size;
            goto vv_flush;
        }
        POLL_AFTER(heap_n, heap_size);
        NEXT(heap_size);
    }
    /* alloc a n + store a b c (b, c != a; 8 <= n <= VV_FUSED_ALLOC_MAX): a new
     * object and its first field. With a count of uint64 8, no collection due
     * and the block carved from the first-fit shortcut region (the usual case:
     * heap_alloc_small, which makes no call and so costs the loop's other
     * handlers no register), the value goes straight into the fresh block: it
     * is inside the block, and no recorded pointer can overlap it (a free
     * region holds none, the 7 bytes below are the header), so there is
     * nothing to look up or to forget; an address is recorded with one bit.
     * Otherwise the alloc runs alone and the store's own slot follows. */
    TARGET(X_ALLOC_STORE) {
        unsigned rv = pc->b, rc = pc->c;
        Heap *hp = &vm->heap;
        if (VV_UNLIKELY(T[rc] != VV_TAG_U64 || R[rc] != 8)) goto vv_unfuse_alloc;
        if (T[rv] == VV_TAG_ADDR && VV_UNLIKELY(hp->ptrmap == NULL)) goto vv_unfuse_alloc;   /* the map's first pointer */
        uint64_t address = heap_alloc_small(hp, pc->imm, pc->x);
        if (VV_UNLIKELY(address == 0)) goto vv_unfuse_alloc;
        R[pc->a] = address; T[pc->a] = VV_TAG_ADDR;
        vh_store_be64(hp->mem + address, R[rv]);
        if (T[rv] == VV_TAG_ADDR) vh_record_pointer_fresh(hp, address);   /* a GC edge; the map exists */
        NEXT(VV_FUSED_ALLOC_STORE_SIZE);
    }
    vv_unfuse_alloc: { VV_OPAQUE(pc); heap_n = pc->imm; heap_gc = 1; heap_size = VV_SIZE_ALLOC; goto vv_alloc; }
    TARGET(FREE) {
        if (heap_free(&vm->heap, vv_as_u64(R[pc->a], T[pc->a]))) RAISE(VV_EXC_HEAPFREEFAULT);
        NEXT(VV_SIZE_FREE);
    }
    /* store p v c / load t d p c: the heap's block cache is the fast path
     * (one block used over and over, e.g. a sieve's array); a miss resolves
     * the block inline too (the level-0 block-start word and the header), and
     * a pointer store sets its bit in the pointer map inline. A count register
     * holding uint64 8 (a whole word, the usual count) is tested first, so
     * that the lookup, the byte order and the pointer test are compiled for a
     * constant k = 8; any other count goes through vv_clamp_count. */
#define HEAP_STORE(K) do { \
        unsigned k_ = (K); \
        Heap *hp_ = &vm->heap; \
        uint8_t *p_ = VV_LIKELY(heap_cached(hp_, address, k_)) ? hp_->mem + address \
                                                                : heap_find_uncached(hp_, address, k_); \
        if (VV_UNLIKELY(p_ == NULL)) { RAISE(VV_EXC_HEAPWRITEFAULT); NEXT(VV_SIZE_STORE); } \
        vh_put_be(p_, R[rv], k_); \
        if (k_ == 8 && T[rv] == VV_TAG_ADDR) {           /* a GC edge (semantics.md §3.8) */ \
            if (VV_UNLIKELY(vh_record_pointer_in_block(hp_, address))) TRAP(VV_TRAP_HOST_MEMORY, 0, 0); \
        } else if (VV_UNLIKELY(hp_->ptrmap != NULL)) { \
            heap_forget_pointers(hp_, address, k_); \
        } \
        NEXT(VV_SIZE_STORE); \
    } while (0)
#define HEAP_LOAD(K) do { \
        unsigned k_ = (K); \
        Heap *hp_ = &vm->heap; \
        const uint8_t *p_ = VV_LIKELY(heap_cached(hp_, address, k_)) ? hp_->mem + address \
                                                                      : heap_find_uncached(hp_, address, k_); \
        if (VV_UNLIKELY(p_ == NULL)) { RAISE(VV_EXC_HEAPREADFAULT); NEXT(VV_SIZE_LOAD); }   /* and no type check (upstream order) */ \
        uint64_t v_ = vh_get_be(p_, k_); \
        if (VV_UNLIKELY(!VV_IS_VALID_TAG(kind))) TRAP(VV_TRAP_BAD_LOAD_TYPE, kind, 0); \
        R[pc->b] = v_; T[pc->b] = (uint8_t)kind;        /* every tag takes the bits as they are */ \
        NEXT(VV_SIZE_LOAD); \
    } while (0)
    TARGET(STORE) {
        unsigned rv = pc->b, rc = pc->c;
        uint64_t address = vv_as_u64(R[pc->a], T[pc->a]);
        if (VV_LIKELY(T[rc] == VV_TAG_U64 && R[rc] == 8)) HEAP_STORE(8);
        HEAP_STORE(vv_clamp_count(vv_as_u64(R[rc], T[rc])));
    }
    TARGET(LOAD) {
        unsigned rc = pc->d;
        uint64_t kind = vv_as_u64(R[pc->a], T[pc->a]), address = vv_as_u64(R[pc->c], T[pc->c]);
        if (VV_LIKELY(T[rc] == VV_TAG_U64 && R[rc] == 8)) HEAP_LOAD(8);
        HEAP_LOAD(vv_clamp_count(vv_as_u64(R[rc], T[rc])));
    }
#undef HEAP_STORE
#undef HEAP_LOAD
    /* A field access (vv_core.h "Field accesses"): the address step ran and
     * wrote R[p]; the access takes its fast path here (count uint64 8, the
     * block cached or found, a uint64 load type naming a valid tag, a map
     * for a pointer) or continues at its own slot, DONE bytes on, which
     * redoes it with every fault and trap of the unfused instruction. */
#define FIELD_LOAD8(TK, TV, RC, ADDRESS, DONE, SIZE) do { \
        unsigned tk_ = (TK), rc_ = (RC); \
        uint64_t kind_ = R[tk_], a_ = (ADDRESS); \
        Heap *hp_ = &vm->heap; \
        const uint8_t *p_; \
        if (VV_UNLIKELY(T[tk_] != VV_TAG_U64 || !VV_IS_VALID_TAG(kind_) || T[rc_] != VV_TAG_U64 || R[rc_] != 8)) \
            NEXT(DONE); \
        p_ = VV_LIKELY(heap_cached(hp_, a_, 8)) ? hp_->mem + a_ : heap_find_uncached(hp_, a_, 8); \
        if (VV_UNLIKELY(p_ == NULL)) NEXT(DONE); \
        R[TV] = vh_get_be(p_, 8); T[TV] = (uint8_t)kind_; \
        NEXT(SIZE); \
    } while (0)
#define FIELD_STORE8(RV, RC, ADDRESS, DONE, SIZE) do { \
        unsigned rv_ = (RV), rc_ = (RC); \
        uint64_t a_ = (ADDRESS); \
        Heap *hp_ = &vm->heap; \
        uint8_t *p_; \
        if (VV_UNLIKELY(T[rc_] != VV_TAG_U64 || R[rc_] != 8)) NEXT(DONE); \
        p_ = VV_LIKELY(heap_cached(hp_, a_, 8)) ? hp_->mem + a_ : heap_find_uncached(hp_, a_, 8); \
        if (VV_UNLIKELY(p_ == NULL)) NEXT(DONE); \
        if (T[rv_] == VV_TAG_ADDR) {                /* (the lookup only moved the cache) */ \
            if (VV_UNLIKELY(hp_->ptrmap == NULL)) NEXT(DONE); \
            vh_put_be(p_, R[rv_], 8); \
            vh_record_pointer_mapped(hp_, a_); \
        } else { \
            vh_put_be(p_, R[rv_], 8); \
            if (VV_UNLIKELY(hp_->ptrmap != NULL)) heap_forget_pointers(hp_, a_, 8); \
        } \
        NEXT(SIZE); \
    } while (0)
    /* The address step: uadd p x (any tag pair but the fast one runs the uadd alone) ... */
#define FIELD_ADD(ADDRESS) \
        unsigned p_ = pc->a, x_ = pc->b; \
        if (VV_UNLIKELY(!UX_U(T[p_], T[x_]))) { slow_op = VV_AR_ADD; goto vv_binary_slow; } \
        uint64_t ADDRESS = R[p_] + R[x_]; \
        R[p_] = ADDRESS
    /* ... or movr p s + uadd p x (anything else runs the movr alone). */
#define FIELD_MOV_ADD(ADDRESS) \
        unsigned p_ = pc->a, s_ = pc->b, x_ = pc->c, ts_ = T[s_]; \
        if (VV_UNLIKELY(!UX_U(ts_, T[x_]))) goto vv_unfuse_movr; \
        uint64_t ADDRESS = R[s_] + R[x_]; \
        R[p_] = ADDRESS; T[p_] = (uint8_t)ts_
    TARGET(X_ADD_LOAD) {
        FIELD_ADD(address);
        FIELD_LOAD8(pc->c, pc->d, pc->x, address, VV_SIZE_UADD, VV_FUSED_ADD_LOAD_SIZE);
    }
    TARGET(X_ADD_STORE) {
        FIELD_ADD(address);
        FIELD_STORE8(pc->c, pc->d, address, VV_SIZE_UADD, VV_FUSED_ADD_STORE_SIZE);
    }
    TARGET(X_MOV_ADD_LOAD) {
        FIELD_MOV_ADD(address);
        FIELD_LOAD8(pc->d, pc->x & 0xFFu, pc->x >> 8, address, VV_FUSED_MOV_BINARY_SIZE, VV_FUSED_MOV_ADD_LOAD_SIZE);
    }
    TARGET(X_MOV_ADD_STORE) {
        FIELD_MOV_ADD(address);
        FIELD_STORE8(pc->d, pc->x, address, VV_FUSED_MOV_BINARY_SIZE, VV_FUSED_MOV_ADD_STORE_SIZE);
    }
#undef FIELD_LOAD8
#undef FIELD_STORE8
#undef FIELD_ADD
#undef FIELD_MOV_ADD
    TARGET(MEMCPY) {
        if (heap_copy(&vm->heap, vv_as_u64(R[pc->a], T[pc->a]), vv_as_u64(R[pc->b], T[pc->b]),
                      vv_as_u64(R[pc->c], T[pc->c])))
            RAISE(VV_EXC_HEAPSEGMFAULT);                 /* semantics.md §3.13 */
        POLL_AFTER(vv_as_u64(R[pc->c], T[pc->c]), VV_SIZE_MEMCPY);
        NEXT(VV_SIZE_MEMCPY);
    }
    TARGET(STOREDAT) {
        int rc = vv_heap_storedat(vm, vv_as_u64(R[pc->a], T[pc->a]), vv_as_u64(R[pc->b], T[pc->b]),
                                  vv_as_u64(R[pc->c], T[pc->c]));
        if (rc) RAISE(rc);
        POLL_AFTER(vv_as_u64(R[pc->c], T[pc->c]), VV_SIZE_STOREDAT);
        NEXT(VV_SIZE_STOREDAT);
    }
    TARGET(DLBC) {
        /* Append heap bytes to main memory, up to --init-ram (semantics.md §4);
         * R[d] := the old length, tagged ds_addr (semantics.md §2). */
        uint64_t n = vv_as_u64(R[pc->c], T[pc->c]), old_len = vm->len, here = ADDR();
        unsigned d = pc->a;
        const uint8_t *bytes;
        if (old_len > vm->capacity || n > vm->capacity - old_len) {     /* len + n > capacity, as voxvm/backends/reference/core.py */
            RAISE(VV_EXC_MAINSEGMFAULT);
        } else if (!(bytes = heap_find(&vm->heap, vv_as_u64(R[pc->b], T[pc->b]), n))) {
            RAISE(VV_EXC_HEAPREADFAULT);
        } else {
            int rc = vv_mem_append(vm, bytes, n);
            pc = CODE + here;                          /* the slot array may have moved */
            if (VV_UNLIKELY(rc)) TRAP(VV_TRAP_HOST_MEMORY, 0, 0);
            R[d] = old_len; T[d] = VV_TAG_DS_ADDR;
        }
        POLL_AFTER(n, VV_SIZE_DLBC);
        NEXT(VV_SIZE_DLBC);
    }
    TARGET(UBD) {
        int rc = vv_heap_ubd(vm, vv_as_u64(R[pc->a], T[pc->a]), vv_as_u64(R[pc->b], T[pc->b]),
                             vv_as_u64(R[pc->c], T[pc->c]));
        if (VV_UNLIKELY(rc < 0)) TRAP(VV_TRAP_HOST_MEMORY, 0, 0);
        if (rc) RAISE(rc);
        POLL_AFTER(vv_as_u64(R[pc->b], T[pc->b]), VV_SIZE_UBD);
        NEXT(VV_SIZE_UBD);                              /* also on error (semantics.md §3.7) */
    }

#ifndef VV_COMPUTED_GOTO
    default:
        goto vv_bad_op;
    }
#endif

vv_bad_op:
    /* Unreachable: the decoder only produces handled slot ops. Defensive. */
    TRAP(VV_TRAP_UNKNOWN_OPCODE, pc->op, 0);

vv_outside:
    SAVE_COUNT();
    vm->trap_kind = VV_TRAP_IP_OUTSIDE;
    vm->trap_ip = vm->trap_a = next_ip;
    vm->trap_b = vm->len;
    vm->ip = next_ip;
    goto vv_save;

vv_trap:
    UNCOUNT();                                         /* the trapping instruction did not complete */
    SAVE_COUNT();
    vm->trap_kind = trap_kind;
    vm->trap_ip = ADDR();
    vm->trap_a = trap_a;
    vm->trap_b = trap_b;
    vm->ip = ADDR();                                   /* ip stays on the trapping instruction */
    goto vv_save;

vv_branch_poll:
    /* a branch event whose count is a multiple of VV_POLL_MASK + 1: the budget's
     * end, or time to poll (the branch itself is complete; resume at next_ip) */
    if (budget_rest == 0) goto vv_budget;
    budget = VV_POLL_MASK + 1;
    budget_rest -= VV_POLL_MASK + 1;
    if (!vv_poll(vm)) {
        if (VV_UNLIKELY(next_ip >= vm->len)) goto vv_outside;
        pc = CODE + next_ip;
        DISPATCH();
    }
    goto vv_flush;

vv_budget:
    SAVE_COUNT();
    vm->ip = next_ip;
    vm->flags[1] = (uint8_t)ZF; vm->flags[2] = (uint8_t)NF;
    PUBLISH_STACKS();
    return VV_STATUS_BUDGET;

vv_break:
    SAVE_COUNT();
    vm->ip = ADDR();
    vm->flags[1] = (uint8_t)ZF; vm->flags[2] = (uint8_t)NF;
    PUBLISH_STACKS();
    return VV_STATUS_BREAK;

#ifdef VV_LOOP_STEP
vv_stepped:
    /* one instruction completed; pc is the next one */
    vm->executed += 1;
    vm->ip = ADDR();
    vm->flags[1] = (uint8_t)ZF; vm->flags[2] = (uint8_t)NF;
    PUBLISH_STACKS();
    return VV_STATUS_BUDGET;
#endif

vv_exit_halt:
    SAVE_COUNT();
    vm->flags[1] = (uint8_t)ZF; vm->flags[2] = (uint8_t)NF;
    PUBLISH_STACKS();
    return VV_STATUS_HALT;

vv_exit_ncall:
    SAVE_COUNT();
    vm->budget_left = budget + budget_rest;    /* Core.budget_left: a caller's budget goes on after the native */
    vm->flags[1] = (uint8_t)ZF; vm->flags[2] = (uint8_t)NF;
    PUBLISH_STACKS();
    return VV_STATUS_NCALL;

vv_flush:
    /* The GC event buffer is full, or a C native yielded: return so that run()
     * can log the events or take the native's output; the instruction is
     * complete and the loop resumes at next_ip. */
    SAVE_COUNT();
    vm->flush_due = 0;
    vm->ip = next_ip;
    vm->budget_left = budget + budget_rest;
    vm->flags[1] = (uint8_t)ZF; vm->flags[2] = (uint8_t)NF;
    PUBLISH_STACKS();
    return VV_STATUS_FLUSH;

vv_save:
    vm->flags[1] = (uint8_t)ZF; vm->flags[2] = (uint8_t)NF;
    PUBLISH_STACKS();
    return VV_STATUS_TRAP;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#undef TARGET
#undef COUNT_ONE
#undef UNCOUNT
#undef SAVE_COUNT
#undef DISPATCH
#undef ADDR
#undef NEXT
#undef TRAP
#undef MISMATCH
#undef RAISE
#undef JUMP
#undef POLL_AFTER
#undef NOT_TAKEN
#undef BRANCH_IF
#undef COMPARE
#undef BINARY_INT
#undef BINARY_FLOAT
#undef FLOAT_OP
#undef MOV_BINARY_INT
#undef MOV_BINARY_FLOAT
#undef JUMP_INSIDE
#undef JUMP_SLOT
#undef CODE
#undef FUSED_BRANCH
#undef BRANCH_MASK
#undef BOTH_U
#undef ADDRESS_U
#undef U_OR_ADDRESS_U
#undef UNSIGNED_PAIR
#undef ZF
#undef NF
#undef SET_ZF
#undef SET_ZN
#undef SET_OF
#undef VV_INC_OVERFLOW
#undef R
#undef T
#undef BOTH_I
#undef CMP_UNSIGNED
#undef CMP_SIGNED
#undef COMPARE_FLOAT
#undef FREG
#undef SET_FREG
#undef BOTH_F
#undef INC_OK
#undef STACK_ROOM
#undef CALL_ROOM
#undef LOAD_STACKS
#undef PUBLISH_STACKS
#undef CSP_INDEX
#undef SP_INDEX

#undef VV_COMPUTED_GOTO
