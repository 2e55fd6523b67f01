# cython: language_level=3
"""The compiled execution backend: ``Core`` implements ``voxvm.backend.Core``.

Owns the Python face of the C execution core in ``voxvm/csrc`` (machine
state and decoder in ``vv_core.h``, the dispatch loop in ``vv_loop.h``):
building a machine from a ``Program`` and ``VMConfig``, running the loop
without the GIL, and the register/exception/memory/snapshot accessors the
machine driver (voxvm/machine.py) and the natives use. Every instance owns
its whole state in C memory; nothing here is mutable module state, so
several Cores can run at once, on several threads.

The loop is compiled twice from one source: ``goto`` (computed goto,
threaded dispatch; GCC and Clang) and ``switch`` (portable C switch). The
default is ``goto`` where available; ``VOXVM_DISPATCH=switch`` or the
``dispatch`` argument selects the other (tests run both).
"""

import os

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc

from voxvm._opcodes cimport EXC_COUNT, NUM_REGISTERS

from .backend import Status
from .formats import Dump
from .isa import BY_CODE, VALID_TAGS
from .traps import TrapKind

cdef extern from *:
    """
    /* The two instantiations of the one dispatch loop (vv_loop.h). */
    #define VV_RUN_NAME vv_run_goto
    #include "vv_loop.h"
    #undef VV_RUN_NAME
    #define VV_RUN_NAME vv_run_switch
    #define VV_LOOP_SWITCH 1
    #include "vv_loop.h"
    #undef VV_RUN_NAME
    #define VV_RUN_NAME vv_run_count
    #define VV_LOOP_COUNT 1
    #include "vv_loop.h"
    #undef VV_RUN_NAME
    #undef VV_LOOP_COUNT
    #undef VV_LOOP_SWITCH
    #ifdef VV_HAVE_COMPUTED_GOTO
    #define VV_GOTO_AVAILABLE 1
    #else
    #define VV_GOTO_AVAILABLE 0
    #endif
    """
    int vv_run_goto(vv_vm *vm, int64_t budget) noexcept nogil
    int vv_run_switch(vv_vm *vm, int64_t budget) noexcept nogil
    int vv_run_count(vv_vm *vm, int64_t budget) noexcept nogil
    int VV_GOTO_AVAILABLE

# run() hands the loop at most this many branch events at a time, so that
# Ctrl-C (and other signals) are noticed within milliseconds even when the
# caller asked for an unlimited budget.
cdef int64_t SIGNAL_CHECK_BRANCHES = 1 << 22
cdef object _STATUS = tuple(Status)
cdef uint64_t MASK64 = 0xFFFFFFFFFFFFFFFF

#: Dispatch variants compiled into this build, default first. "count" is the
#: switch loop with fusion off and an instruction counter (``Core.executed``):
#: slower, for benchmarks' ns-per-instruction figures and for tests.
DISPATCH_VARIANTS = ("goto", "switch", "count") if VV_GOTO_AVAILABLE else ("switch", "count")


def _check_tables():
    """The C numbers must match the Python tables they mirror (import-time guard).

    Kinds that only Python code raises (natives) need no C number.
    """
    c_status = {Status.HALT: VV_STATUS_HALT, Status.TRAP: VV_STATUS_TRAP,
                Status.NCALL: VV_STATUS_NCALL, Status.BUDGET: VV_STATUS_BUDGET}
    c_traps = {
        "UNKNOWN_OPCODE": VV_TRAP_UNKNOWN_OPCODE, "IP_OUTSIDE": VV_TRAP_IP_OUTSIDE,
        "TRUNCATED_INSTRUCTION": VV_TRAP_TRUNCATED_INSTRUCTION, "BAD_REGISTER": VV_TRAP_BAD_REGISTER,
        "TYPE_MISMATCH": VV_TRAP_TYPE_MISMATCH, "STACK_UNDERFLOW": VV_TRAP_STACK_UNDERFLOW,
        "CALL_STACK_UNDERFLOW": VV_TRAP_CALL_STACK_UNDERFLOW, "RECURSION_LIMIT": VV_TRAP_RECURSION_LIMIT,
        "BAD_FUNCTION": VV_TRAP_BAD_FUNCTION, "BAD_LOAD_TYPE": VV_TRAP_BAD_LOAD_TYPE,
        "CONST_WRITE": VV_TRAP_CONST_WRITE, "STACK_OVERFLOW": VV_TRAP_STACK_OVERFLOW,
        "BAD_DATA_TYPE": VV_TRAP_BAD_DATA_TYPE, "DATA_OUT_OF_RANGE": VV_TRAP_DATA_OUT_OF_RANGE,
        "BAD_EXCEPTION": VV_TRAP_BAD_EXCEPTION, "NEGATIVE_ISQRT": VV_TRAP_NEGATIVE_ISQRT,
        "NATIVE_ERROR": VV_TRAP_NATIVE_ERROR, "HOST_MEMORY": VV_TRAP_HOST_MEMORY,
    }
    internal = internal_opcodes()
    problems = [f"Status.{s.name}" for s, v in c_status.items() if int(s) != v]
    problems += [f"TrapKind.{name}" for name, v in c_traps.items()
                 if name not in TrapKind.__members__ or TrapKind[name] != v]
    problems += [f"internal op 0x{op:02x} is a real opcode now" for op in internal if op in BY_CODE]
    if problems:
        raise ImportError("voxvm._core is out of step with the Python tables: " + ", ".join(problems)
                          + " (update voxvm/csrc/vv_core.h)")



def internal_opcodes():
    """Slot op numbers the decoder uses internally (all undefined in voxvm.isa)."""
    return (VV_OP_X_DECODE, VV_OP_X_TRAP, VV_OP_X_OUTSIDE, VV_OP_X_UCJ,
            VV_OP_X_ICJ, VV_OP_X_FCJ, VV_OP_X_INC_CJ, VV_OP_X_INC_SELF_CJ, VV_OP_X_DEC_JNZ,
            VV_OP_X_MOV_ADD, VV_OP_X_MOV_MUL, VV_OP_X_MOV_SUB, VV_OP_X_MOV_USUB,
            VV_OP_X_MOV_FADD, VV_OP_X_MOV_FMUL, VV_OP_X_MOV_FSUB)


_check_tables()


def core_available():
    """True: the compiled extension was built and imports."""
    return True


cdef class Core:
    """The compiled backend. ``Core(program, config, dispatch=None)``; see voxvm.backend.Core."""

    def __cinit__(self, program, config, dispatch=None):
        cdef const uint8_t[::1] image_view
        cdef const uint8_t *image = NULL
        cdef uint64_t n
        cdef Py_ssize_t i
        cdef uint64_t *funcs = NULL
        cdef int rc
        self.ready = False
        self.running = False
        self.program = program
        self.config = config
        if dispatch is None:
            dispatch = os.environ.get("VOXVM_DISPATCH") or DISPATCH_VARIANTS[0]
        if dispatch not in DISPATCH_VARIANTS:
            raise ValueError(f"dispatch {dispatch!r} is not one of {', '.join(DISPATCH_VARIANTS)}")
        self.dispatch = dispatch
        if dispatch == "goto":
            self.loop = vv_run_goto
        elif dispatch == "switch":
            self.loop = vv_run_switch
        else:
            self.loop = vv_run_count
        data = bytes(program.image)
        n = len(data)
        if n:
            image_view = data
            image = &image_view[0]
        functions = [int(address) for address in program.functions]
        funcs = <uint64_t *>malloc((len(functions) or 1) * sizeof(uint64_t))
        if funcs == NULL:
            raise MemoryError("cannot allocate the function table")
        try:
            for i in range(len(functions)):
                funcs[i] = functions[i]
            rc = vv_init(&self.vm, image, n, config.init_ram, program.entry, program.data_base,
                         funcs, len(functions), config.init_stack, config.stack_limit,
                         config.max_recursion)
        finally:
            free(funcs)
        self.ready = True       # from here on __dealloc__ frees whatever vv_init allocated
        if rc != 0:
            raise MemoryError(f"cannot allocate a {n}-byte machine")
        if dispatch == "count":
            self.vm.fuse = 0    # one slot = one instruction

    def __dealloc__(self):
        if self.ready:
            vv_free(&self.vm)

    # ------------------------------------------------------------------ run

    def run(self, long long budget=-1):
        """Execute until halt, trap, ncall or budget exhaustion; return a Status."""
        cdef int status
        cdef int64_t chunk
        cdef int64_t remaining = budget
        if self.running:
            raise RuntimeError("Core.run() is already running (a Core belongs to one thread at a time)")
        self.running = True
        try:
            while True:
                chunk = SIGNAL_CHECK_BRANCHES if remaining < 0 or remaining > SIGNAL_CHECK_BRANCHES else remaining
                with nogil:
                    status = self.loop(&self.vm, chunk)
                if status != VV_STATUS_BUDGET or chunk == remaining:
                    return _STATUS[status]
                if remaining > 0:
                    remaining -= chunk
                PyErr_CheckSignals()
        finally:
            self.running = False

    # ------------------------------------------------------------------ state after run()

    @property
    def trap_kind(self):
        return self.vm.trap_kind

    @property
    def trap_ip(self):
        return self.vm.trap_ip

    @property
    def trap_a(self):
        return self.vm.trap_a

    @property
    def trap_b(self):
        return self.vm.trap_b

    @property
    def executed(self):
        """Instructions completed so far; counted only with ``dispatch="count"`` (else 0)."""
        return self.vm.executed

    @property
    def ncall_code(self):
        return self.vm.ncall_code

    @property
    def ncall_ip(self):
        return self.vm.ncall_ip

    @property
    def ip(self):
        """Current instruction address (byte offset into main memory); settable."""
        return self.vm.ip

    @ip.setter
    def ip(self, value):
        self.vm.ip = value

    @property
    def flags(self):
        """(OF, ZF, NF, CF); assign a 4-sequence of 0/1 to change them (natives)."""
        return (self.vm.flags[0], self.vm.flags[1], self.vm.flags[2], self.vm.flags[3])

    @flags.setter
    def flags(self, values):
        values = tuple(values)
        if len(values) != 4:
            raise ValueError("flags are (OF, ZF, NF, CF)")
        for i in range(4):
            self.vm.flags[i] = 1 if values[i] else 0

    # ------------------------------------------------------------------ registers, exceptions

    def get_reg(self, int index):
        """``(bits, tag)`` of register ``index``."""
        if not 0 <= index < NUM_REGISTERS:
            raise IndexError(f"register r{index} does not exist (r0..r31)")
        return (self.vm.regs[index], self.vm.tags[index])

    def set_reg(self, int index, bits, int tag):
        """Write register ``index``; ``bits`` is taken modulo 2^64 (so an int64 may be negative)."""
        if not 0 <= index < NUM_REGISTERS:
            raise IndexError(f"register r{index} does not exist (r0..r31)")
        if tag not in VALID_TAGS:
            raise ValueError(f"tag {tag} is not a register tag")
        self.vm.regs[index] = <uint64_t>(int(bits) & MASK64)
        self.vm.tags[index] = tag

    def raise_exception(self, int number):
        """Append voxvm exception ``number`` to the pending list."""
        if not 1 <= number <= EXC_COUNT:
            raise ValueError(f"{number} is not a voxvm exception number")
        if vv_raise(&self.vm, number) != 0:
            raise MemoryError("cannot grow the pending-exception list")

    def pending(self):
        """The pending exception numbers, oldest first."""
        cdef uint64_t i
        return [self.vm.pending[i] for i in range(self.vm.npending)]

    # ------------------------------------------------------------------ memory

    def memory(self):
        """A copy of main memory (image plus appended code, with dssave writes)."""
        return PyBytes_FromStringAndSize(<char *>self.vm.mem, self.vm.len)

    def read_memory(self, uint64_t address, uint64_t count):
        """``count`` bytes of main memory at ``address``, or None if outside it (no full copy)."""
        if address > self.vm.len or count > self.vm.len - address:
            return None
        return PyBytes_FromStringAndSize(<char *>self.vm.mem + address, count)

    def heap_read(self, address, count):
        """Heap bytes, or None: the compiled core has no heap yet (heap family traps)."""
        return None

    def heap_write(self, address, data):
        """False: the compiled core has no heap yet."""
        return False

    # ------------------------------------------------------------------ snapshot

    def snapshot(self, int reason=0):
        """The whole machine state as a voxvm.formats.Dump."""
        cdef uint64_t i
        return Dump(
            reason=reason,
            trap=self.vm.trap_kind if reason else 0,
            ip=self.vm.ip,
            flags=self.flags,
            registers=[(self.vm.regs[i], self.vm.tags[i]) for i in range(NUM_REGISTERS)],
            data_stack=[(self.vm.stack[i].v, self.vm.stack[i].t) for i in range(self.vm.sp)],
            call_stack=[self.vm.calls[i] for i in range(self.vm.csp)],
            pending=self.pending(),
            memory=self.memory(),
            heap=[],
        )

    # ------------------------------------------------------------------ introspection (tests, tools)

    def decoded_op(self, uint64_t address):
        """The slot op at ``address`` (0 = not decoded yet); for tests of the decoder."""
        if address > self.vm.len:
            raise IndexError(f"address {address} is outside the {self.vm.len}-byte memory")
        return self.vm.code[address].op
