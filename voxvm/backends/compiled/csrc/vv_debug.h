/* vv_debug.h - what the debugging tools need from the C core: breakpoints and the profile.
 *
 * Owns the breakpoint bitmap (`vm->breaks`: one bit per main-memory byte,
 * NULL until the first breakpoint) that the decoder consults, so that a
 * breakpoint is a decoded slot of op X_BREAK (the loop returns
 * VV_STATUS_BREAK before the instruction there) and survives every
 * re-decoding; and `vv_prof`, the counters of the profiling loop variant
 * (vv_loop.h with VV_LOOP_PROFILE): per address, instructions completed and
 * clock ticks spent, and a calling-context tree (one node per distinct chain
 * of called function entries) with call counts, instructions and ticks. Both
 * cost nothing unless used: the plain loops never look at them, and the
 * decoder tests one pointer. voxvm/backends/compiled/_core.pyx turns them into Python
 * (docs/debugging.md describes the tools).
 */
#ifndef VV_DEBUG_H
#define VV_DEBUG_H

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

/* ------------------------------------------------------------------------
 * Breakpoints */

/* vv_break_at (vv_core.h, where the decoder needs it) tests a bit. */

/* Set or clear the breakpoint at `addr` (< the capacity); the slots that cover it
 * decode again. Returns 0, or -1 when the bitmap cannot be allocated. */
static VV_COLD VV_MAYBE_UNUSED int vv_break_set(vv_vm *vm, uint64_t addr, int on) {
    if (vm->breaks == NULL) {
        if (!on) return 0;
        uint64_t bytes = ((vm->capacity > vm->len ? vm->capacity : vm->len) + 8) / 8 + 1;
        vm->breaks = (uint8_t *)calloc((size_t)bytes, 1);
        if (vm->breaks == NULL) return -1;
        vm->breaks_len = bytes * 8;
    }
    if (addr >= vm->breaks_len) return -1;
    if (on) vm->breaks[addr >> 3] |= (uint8_t)(1u << (addr & 7));
    else vm->breaks[addr >> 3] &= (uint8_t)~(1u << (addr & 7));
    if (addr <= vm->len) vv_invalidate(vm, addr, 1);
    return 0;
}

/* ------------------------------------------------------------------------
 * The profile */

#define VV_PROF_MAX_NODES (1u << 20)     /* calling contexts kept; deeper or more are folded into their parent */

typedef struct vv_prof_node {
    uint64_t entry;          /* the address execution entered this context at (a function's first instruction) */
    uint32_t parent, child, sibling;     /* tree links; node 0 is the root (the program's entry) */
    uint32_t unused;
    uint64_t calls;          /* times this context was entered */
    uint64_t count;          /* instructions completed in it (not in its callees) */
    uint64_t ticks;          /* clock ticks spent in it (not in its callees) */
} vv_prof_node;

typedef struct vv_prof {
    uint64_t n;              /* per-address buckets; addresses >= n - 1 share the last one (dlbc code) */
    uint64_t *count, *ticks;
    vv_prof_node *nodes;
    uint32_t nnodes, cap, cur, prev_node;
    uint64_t depth;          /* call depth the current node stands for */
    uint64_t lost;           /* calls deeper than the node budget, folded into `cur` */
    uint64_t prev_addr, last;
    uint64_t ticks0, ns0;    /* clock readings when profiling began (the ticks-to-ns scale) */
} vv_prof;

/* A cheap monotonic clock: the time-stamp counter where there is one, else nanoseconds. */
static inline uint64_t vv_ticks(void) {
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return vh_now_ns();
#endif
}

static void vv_prof_free(vv_prof *p) {
    if (p == NULL) return;
    free(p->count); free(p->ticks); free(p->nodes);
    free(p);
}

/* A profile for `vm` from now on (the current call depth is the root's); NULL when out of memory. */
static VV_COLD VV_MAYBE_UNUSED vv_prof *vv_prof_new(const vv_vm *vm) {
    vv_prof *p = (vv_prof *)calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    p->n = vm->len + 2;
    p->count = (uint64_t *)calloc((size_t)p->n, sizeof(uint64_t));
    p->ticks = (uint64_t *)calloc((size_t)p->n, sizeof(uint64_t));
    p->cap = 1024;
    p->nodes = (vv_prof_node *)calloc(p->cap, sizeof(vv_prof_node));
    if (!p->count || !p->ticks || !p->nodes) { vv_prof_free(p); return NULL; }
    p->nnodes = 1;
    p->nodes[0].entry = vm->ip;
    p->nodes[0].calls = 1;
    p->depth = vm->csp;
    p->prev_addr = vm->ip < p->n - 1 ? vm->ip : p->n - 1;
    p->ns0 = vh_now_ns();
    p->ticks0 = p->last = vv_ticks();
    return p;
}

/* The call depth changed since the last instruction: enter the callee's context
 * (its entry is `addr`, the first instruction after the call) or leave to the caller's. */
static VV_COLD void vv_prof_move(vv_prof *p, uint64_t addr, uint64_t csp) {
    while (p->depth > csp) {
        p->depth--;
        if (p->lost) p->lost--;
        else if (p->cur) p->cur = p->nodes[p->cur].parent;
    }
    while (p->depth < csp) {
        p->depth++;
        vv_prof_node *n = p->nodes;
        uint32_t c = n[p->cur].child;
        while (c && n[c].entry != addr) c = n[c].sibling;
        if (!c) {
            if (p->lost || p->nnodes >= VV_PROF_MAX_NODES) { p->lost++; continue; }
            if (p->nnodes == p->cap) {
                vv_prof_node *bigger = (vv_prof_node *)realloc(n, (size_t)p->cap * 2 * sizeof *n);
                if (bigger == NULL) { p->lost++; continue; }
                p->nodes = n = bigger;
                p->cap *= 2;
            }
            c = p->nnodes++;
            memset(&n[c], 0, sizeof n[c]);
            n[c].entry = addr;
            n[c].parent = p->cur;
            n[c].sibling = n[p->cur].child;
            n[p->cur].child = c;
        }
        n[c].calls++;
        p->cur = c;
    }
}

/* One instruction is about to run at `addr` with call depth `csp`: the time since the
 * last one goes to that one, this one is counted. */
static inline void vv_prof_tick(vv_prof *p, uint64_t addr, uint64_t csp) {
    uint64_t now = vv_ticks(), dt = now - p->last;
    p->last = now;
    p->ticks[p->prev_addr] += dt;
    p->nodes[p->prev_node].ticks += dt;
    if (VV_UNLIKELY(csp != p->depth)) vv_prof_move(p, addr, csp);
    uint64_t a = addr < p->n - 1 ? addr : p->n - 1;
    p->count[a]++;
    p->nodes[p->cur].count++;
    p->prev_addr = a;
    p->prev_node = p->cur;
}

/* The instruction just counted did not run (it was only decoded, or it trapped). */
static inline void vv_prof_untick(vv_prof *p) {
    p->count[p->prev_addr]--;
    p->nodes[p->prev_node].count--;
}

/* Give the time since the last instruction to it (before the counters are read). */
static VV_MAYBE_UNUSED void vv_prof_settle(vv_prof *p) {
    uint64_t now = vv_ticks(), dt = now - p->last;
    p->last = now;
    p->ticks[p->prev_addr] += dt;
    p->nodes[p->prev_node].ticks += dt;
}

#endif /* VV_DEBUG_H */
