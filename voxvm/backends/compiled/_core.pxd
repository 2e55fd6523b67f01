# Declarations of the C execution core (voxvm/backends/compiled/csrc/vv_core.h, heap/) and
# of the compiled ``Core`` class, so that other Cython modules (tools) can
# cimport them. The semantics live in the C headers;
# the Python face is voxvm/backends/compiled/_core.pyx.

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from voxvm.backends.compiled._heap_api cimport Heap


cdef extern from "vv_core.h" nogil:
    ctypedef struct vv_slot:
        uint8_t op, a, b, c, d, len
        uint16_t x
        uint64_t imm

    ctypedef struct vv_entry:
        uint64_t v
        uint64_t t

    ctypedef struct vv_prof_node:
        uint64_t entry
        uint32_t parent
        uint64_t calls, count, ticks

    ctypedef struct vv_prof:
        uint64_t n
        uint64_t *count
        uint64_t *ticks
        vv_prof_node *nodes
        uint32_t nnodes
        uint64_t ticks0, ns0, last

    ctypedef struct vv_gc_event:
        uint64_t kind
        uint64_t number
        uint64_t freed_blocks, freed_bytes, live_blocks, live_bytes
        uint64_t heap_size
        uint64_t ns

    ctypedef struct vv_diag:
        uint32_t code, gc_mark
        uint64_t ip, a, b

    ctypedef struct vv_vm:
        uint64_t regs[32]
        uint8_t tags[32]
        uint8_t flags[4]
        uint64_t ip
        uint8_t *mem
        uint64_t len
        uint64_t mem_alloc
        uint64_t capacity
        vv_slot *code
        uint64_t code_alloc
        uint8_t *slot_live
        uint64_t slot_pages, slots_live, slot_budget, slot_budget_max
        unsigned slot_shift
        uint64_t dec_lo, dec_hi
        uint64_t data_base
        uint64_t *funcs
        uint64_t nfuncs
        vv_entry *stack
        uint64_t sp, stack_alloc, stack_limit
        uint64_t *calls
        uint64_t csp, calls_alloc, call_limit
        uint64_t pending[11]
        uint64_t raised_total, usf_total
        uint32_t ndiags
        vv_diag diags[20]
        int fuse
        uint64_t executed
        int trap_kind
        uint64_t trap_ip, trap_a, trap_b
        uint64_t ncall_code, ncall_ip
        Heap heap
        int gc_log
        uint32_t ngc_events
        vv_gc_event gc_events[64]
        int64_t budget_left
        uint8_t *breaks
        vv_prof *prof
        int stop
        int flush_due
        uint64_t deadline
        int ret_ends

    enum:
        VV_GC_COLLECTION
        VV_GC_GROWTH
        VV_GC_EVENTS

    int vv_init(vv_vm *vm, const uint8_t *image, uint64_t n, uint64_t capacity,
                uint64_t entry, uint64_t data_base, const uint64_t *funcs, uint64_t nfuncs,
                uint64_t init_stack, uint64_t stack_limit, uint64_t call_limit)
    void vv_free(vv_vm *vm)
    void vv_request_stop(vv_vm *vm)
    int vv_take_stop(vv_vm *vm)
    uint64_t vh_now_ns()
    void vv_raise_at(vv_vm *vm, int number, uint64_t ip)
    void vv_invalidate(vv_vm *vm, uint64_t addr, uint64_t n)
    int vv_break_at(const vv_vm *vm, uint64_t addr)
    int vv_break_set(vv_vm *vm, uint64_t addr, int on)
    vv_prof *vv_prof_new(const vv_vm *vm)
    void vv_prof_settle(vv_prof *p)
    uint64_t vv_ticks()
    int vv_mem_append(vv_vm *vm, const uint8_t *data, uint64_t n)
    void vv_slot_set_budget(vv_vm *vm)
    void vv_put_be64(uint8_t *p, uint64_t v)
    uint64_t vv_utf8_to_utf16be(const uint8_t *s, uint64_t n, uint8_t *dst)


# The numbers shared with Python, generated from the Python tables by
# tools/gen_isa.py: only the names the Cython side uses are declared; their
# values come from the header, so there is nothing here to keep in step.
cdef extern from "vv_tables.h" nogil:
    enum:
        VV_STATUS_BUDGET
        VV_STATUS_FLUSH
        VV_STATUS_STOP
        VV_EXC_COUNT
        VV_NUM_REGISTERS
        VV_TAG_STR
        VV_TAG_ADDR
        VV_TAG_DS_ADDR


cdef class Core:
    cdef vv_vm vm
    cdef bint ready          # vv_init succeeded (else __dealloc__ frees a partial state)
    cdef bint heap_ready     # heap_init ran on vm.heap: __dealloc__ frees the heap
    cdef object log          # where `gc: ...` lines go (set_log), or None
    cdef bint running        # inside run(): guards against use from another thread
    cdef int (*loop)(vv_vm *, int64_t) noexcept nogil
    cdef readonly object program
    cdef readonly object config
    cdef readonly str dispatch
    cdef object stdout_sink  # the host's taker of C natives' stdout (set_stdout), or None
    cdef object diag_sink    # the host's taker of semantics.md §9 events (set_diagnostics), or None
    cdef object ffi_entries  # ncall code -> address of its malloc'd vv_ffi_entry (install_ffi)
    cdef void *conc          # the vv_conc of the thread and shm natives (install_shm), or NULL
    cdef object shm_views    # the segments' buffers, held while ``conc`` points into them

    cdef _flush_stderr_events(self)
    cdef _log_gc_events(self, uint32_t start, uint32_t end)
    cdef bint profiling      # the loop is vv_run_profile (enable_profile)
    cdef bint prof_final     # the profiled run ended (halt or trap): its clock stopped

    cdef _debug_mode(self)
    cdef int _hand_over_stdout(self, bint query) except -1
