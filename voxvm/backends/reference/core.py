"""The pure-Python reference backend: ``PyCore`` implements voxvm.backends.Core.

Owns the executable meaning of every opcode for the reference backend:
decode (with traps for bad fetches and registers), the generic arithmetic,
compare and bitwise tables (upstream.md §1.3 with semantics.md §2's one tag per
register), the flag rules (upstream.md §1.4), data-segment items, the data and
call stacks, the pending-exception list and the heap family (on
voxvm/backends/reference/heap.py). It is written to be read: one small method per opcode, in
ISA order, every decision cited. The compiled core (voxvm/backends/compiled/_core.pyx) must
behave identically; docs/semantics.md lists every choice made where the specs
are silent, and a differential test compares the two.

Conventions inside this module: a register is ``self.regs[i]`` (64 unsigned
bits) plus ``self.tags[i]`` (voxvm.isa.Tag). A handler validates everything
that can trap *before* it changes any state, so a trapping instruction has no
effect and ``ip`` stays on it. Handlers return None to continue, or a Status.
"""

from __future__ import annotations

import ctypes
import math

from .. import Status
from ...diagnostics import SHOWN as DIAG_SHOWN, USF_EVENT as DIAG_USF
from ...isa import (BY_CODE, DATA_CONST_BIT, DATA_HEADER_SIZE, MAX_SIZE, NUM_REGISTERS, OPS,
                  PUSHALL_COUNT, UINT_LIKE_TAGS, VALID_TAGS, Exc, Flag, Operand, Tag, decode_at)
from .heap import PyHeap
from .profile import ProfileCounters
from ...traps import ArithOp, TrapKind
from ...values import (ADDRESS_TAGS, MASK64, as_f64, as_i64, as_u64, bits_from_f64, c_fmod,
                     c_pow, c_sqrt, f64_from_bits, f64_to_i64, ieee_div, to_signed)

U64, I64, F64, STR, ADDR, DS_ADDR = (Tag.U64, Tag.I64, Tag.F64, Tag.STR, Tag.ADDR, Tag.DS_ADDR)

# Operation ids of the TYPE_MISMATCH trap argument (voxvm.traps.ArithOp), bound
# to module names once: a global costs a tenth of an enum attribute lookup.
OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_REM = ArithOp.ADD, ArithOp.SUB, ArithOp.MUL, ArithOp.DIV, ArithOp.REM
OP_AND, OP_OR, OP_XOR, OP_NOT = ArithOp.AND, ArithOp.OR, ArithOp.XOR, ArithOp.NOT
OP_SHL, OP_SHR, OP_INC, OP_DEC, OP_CMP = ArithOp.SHL, ArithOp.SHR, ArithOp.INC, ArithOp.DEC, ArithOp.CMP


# Encoded size of each mnemonic (voxvm.isa): how far a handler advances ip.
SIZE = {op.mnemonic: op.size for op in OPS}

_EPSILON = 1e-10              # fcmp_eps tolerance (upstream.md §2.3)
_OF, _ZF, _NF, _CF = range(4)
_U_LIKE = UINT_LIKE_TAGS    # tags for which "== U(0)" can hold
_I_ONLY = frozenset((I64,))
_F_ONLY = frozenset((F64,))
_BRANCH = Flag.JUMP | Flag.CALL | Flag.RETURN  # events counted by the run() budget


class _TrapSignal(Exception):
    """Raised by a handler to stop the program; run() turns it into Status.TRAP."""

    def __init__(self, kind: TrapKind, a: int = 0, b: int = 0) -> None:
        super().__init__(kind)
        self.kind, self.a, self.b = kind, a, b


def _mismatch(op: int, left: int, right: int = 0) -> _TrapSignal:
    return _TrapSignal(TrapKind.TYPE_MISMATCH, op << 16 | left << 8 | right)


def result_tag(op: int, left: int, right: int) -> int | None:
    """Result tag of a binary arithmetic or bitwise operation, or None if the pair traps.

    Upstream §1.3 with semantics.md §2: equal tags give that tag; an address-like
    tag X (StrAddr, address, ds_addr) with uint64 gives X, except U-X, U/X and
    U%X, which give uint64. Float bitwise operations are rejected by the callers.
    """
    if left == right:
        return left
    if left in ADDRESS_TAGS and right == U64:
        return left
    if left == U64 and right in ADDRESS_TAGS:
        return U64 if op in (OP_SUB, OP_DIV, OP_REM) else right
    return None


def arithmetic(op: int, lbits: int, ltag: int, rbits: int, rtag: int) -> tuple[int, int] | None:
    """Generic ``+ - * / %`` (upstream.md §1.3): ``(bits, tag)``, or None for an integer division by zero.

    Integers wrap modulo 2^64; int64 division truncates toward zero, the
    remainder takes the dividend's sign, MIN / -1 = MIN and MIN % -1 = 0
    (semantics.md §3.3). Floats are IEEE: x / 0.0 is +-inf or NaN, x % 0.0 is NaN.
    """
    tag = result_tag(op, ltag, rtag)
    if tag is None:
        raise _mismatch(op, ltag, rtag)
    if tag == F64:
        x, y = f64_from_bits(lbits), f64_from_bits(rbits)
        if op == OP_ADD:
            r = x + y
        elif op == OP_SUB:
            r = x - y
        elif op == OP_MUL:
            r = x * y
        elif op == OP_DIV:
            r = ieee_div(x, y)
        else:
            r = c_fmod(x, y)
        if r != r:
            return nan_result(lbits, rbits, bits_from_f64(r)), F64
        return bits_from_f64(r), F64
    if tag == I64:
        x, y = to_signed(lbits), to_signed(rbits)
    else:
        x, y = lbits, rbits
    if op == OP_ADD:
        r = x + y
    elif op == OP_SUB:
        r = x - y
    elif op == OP_MUL:
        r = x * y
    else:
        if y == 0:
            return None
        quotient = abs(x) // abs(y)
        if (x < 0) != (y < 0):
            quotient = -quotient
        r = quotient if op == OP_DIV else x - quotient * y
    return r & MASK64, tag


def bitwise(op: int, lbits: int, ltag: int, rbits: int, rtag: int) -> tuple[int, int]:
    """Generic ``& | ^`` (upstream.md §1.3): the arithmetic tag table; floats trap."""
    tag = result_tag(op, ltag, rtag)
    if tag is None or tag == F64:
        raise _mismatch(op, ltag, rtag)
    if op == OP_AND:
        return lbits & rbits, tag
    if op == OP_OR:
        return lbits | rbits, tag
    return lbits ^ rbits, tag


def compare(lbits: int, ltag: int, rbits: int, rtag: int) -> tuple[bool, bool]:
    """Generic ``(a == b, a < b)`` (upstream.md §1.3): unordered pairs give (False, False)."""
    if ltag == rtag:
        if ltag == F64:
            x, y = f64_from_bits(lbits), f64_from_bits(rbits)
            return x == y, x < y
        if ltag == I64:
            x, y = to_signed(lbits), to_signed(rbits)
            return x == y, x < y
        return lbits == rbits, lbits < rbits
    if (ltag in ADDRESS_TAGS and rtag == U64) or (ltag == U64 and rtag in ADDRESS_TAGS):
        return lbits == rbits, lbits < rbits
    return False, False


def _is_u_zero(bits: int, tag: int) -> bool:
    """``value == U(0)`` with §1.3 typing: only uint64 and address-like values can be equal."""
    return tag in _U_LIKE and bits == 0


def _clamp_count(count: int) -> int:
    """store/load byte count: clamp(as_u64(R[c]), 1, 8) (voxvm.isa)."""
    return 1 if count < 1 else 8 if count > 8 else count


class PyCore:
    """The reference execution backend. ``PyCore(program, config)``; see voxvm.backends.Core."""

    def __init__(self, program, config, log=None) -> None:
        self.program = program
        self.config = config
        self.mem = bytearray(program.image)
        self.capacity = config.init_ram        # only dlbc consults it (semantics.md §4)
        self.data_base = program.data_base
        self.functions = tuple(program.functions)
        self.regs = [0] * NUM_REGISTERS
        self.tags = [int(U64)] * NUM_REGISTERS
        self.flags = [0, 0, 0, 0]              # OF, ZF, NF, CF
        self.stack: list[tuple[int, int]] = []
        self.stack_limit = config.stack_limit
        self.calls: list[int] = []
        self.max_recursion = config.max_recursion
        # Pending exceptions: a count per kind, exceptions[N - 1] for N (semantics.md §9).
        self.exceptions: list[int] = [0] * len(Exc)
        # Diagnostics (semantics.md §9, voxvm/diagnostics.py): totals, and the sink that
        # hears the first SHOWN events of each kind as they happen.
        self.raised_total = self.usf_total = 0
        self.diag_sink = None
        self.heap = PyHeap(config.init_heap, config.max_heap, gc_stress=config.gc_stress)
        self._stop = False                     # request_stop(): honoured at the next branch event
        self._ret_ends = False                 # end_on_return(): a spawned thread's first frame
        self.set_log(log)
        self.ip = program.entry
        self.trap_kind = self.trap_ip = self.trap_a = self.trap_b = 0
        self.ncall_code = self.ncall_ip = 0
        self.budget_left = -1
        self._decoded: dict[int, tuple] = {}
        self._handlers = {op.code: getattr(self, "_op_" + op.mnemonic) for op in BY_CODE.values()}
        self._breaks: set[int] = set()         # breakpoints: decoded as a BREAK entry (set_breakpoint)
        self._profile: ProfileCounters | None = None
        self._profiling = False                # enable_profile(): the counters start with run()

    def set_log(self, log) -> None:
        """Where ``gc: ...`` reports go when --gc-log or -v asked for them."""
        wanted = self.config.gc_log or self.config.verbose
        self.heap.log = log if wanted else None

    def set_diagnostics(self, sink) -> None:
        """Where semantics.md §9 events go: ``sink(code, ip, a, b)``, or None."""
        self.diag_sink = sink

    def diagnostic_totals(self) -> tuple[int, int]:
        return self.raised_total, self.usf_total

    def _diagnostic(self, seen: int, code: int, ip: int, a: int = 0, b: int = 0) -> None:
        """Report an event to the sink if it is among the first SHOWN of its kind."""
        if seen < DIAG_SHOWN and self.diag_sink is not None:
            self.diag_sink(code, ip, a, b)

    def set_stdout(self, sink) -> None:
        """Nothing to hand over: every native of this core runs in the Python host (voxvm/host/)."""

    # ================================================================== the loop

    def run(self, budget: int = -1) -> int:
        """Execute until halt, trap, ncall or budget exhaustion (voxvm.backends.Core.run)."""
        if budget == 0:
            return Status.BUDGET
        if self._stop:
            self._stop = False
            return Status.STOP
        if self._profiling:
            if self._profile is None:          # the counters start here, as the compiled core's
                self._profile = ProfileCounters(len(self.mem), self.ip, len(self.calls))
            return self._run_profiled(budget)
        decoded = self._decoded
        try:
            while True:
                entry = decoded.get(self.ip)
                if entry is None:
                    entry = self._decode(self.ip)
                handler, operands, is_branch = entry
                status = handler(*operands)
                if status is not None:
                    self.budget_left = budget      # after NCALL, what a caller's budget has left
                    return status
                if is_branch:
                    if budget > 0:
                        budget -= 1
                        if budget == 0:
                            return Status.BUDGET
                    # A loop always branches, so a stop is seen within one
                    # iteration (Python's own signal handlers run between bytecodes).
                    if self._stop:
                        self._stop = False
                        return Status.STOP
        except _TrapSignal as trap:
            self.trap_kind, self.trap_a, self.trap_b = int(trap.kind), trap.a, trap.b
            self.trap_ip = self.ip
            return Status.TRAP

    def _run_profiled(self, budget: int) -> int:
        """run() with the profile counters ticked before every instruction (enable_profile)."""
        decoded, profile, calls = self._decoded, self._profile, self.calls
        try:
            while True:
                profile.tick(self.ip, len(calls))
                entry = decoded.get(self.ip)
                if entry is None:
                    entry = self._decode(self.ip)
                handler, operands, is_branch = entry
                status = handler(*operands)
                if status is not None:
                    if status == Status.BREAK:
                        profile.untick()
                    elif status == Status.HALT:
                        profile.settle()
                        profile.final = True
                    return status
                if is_branch:
                    if budget > 0:
                        budget -= 1
                        if budget == 0:
                            return Status.BUDGET
                    if self._stop:
                        self._stop = False
                        return Status.STOP
        except _TrapSignal as trap:
            profile.untick()
            profile.settle()
            profile.final = True
            self.trap_kind, self.trap_a, self.trap_b = int(trap.kind), trap.a, trap.b
            self.trap_ip = self.ip
            return Status.TRAP

    def step(self) -> int:
        """Execute one instruction (voxvm.backends.Core.step); a breakpoint at ip does not stop it."""
        if self._stop:
            self._stop = False
            return Status.STOP
        ip = self.ip
        held = ip in self._breaks
        if held:
            self._breaks.discard(ip)
            self._decoded.pop(ip, None)
        try:
            entry = self._decoded.get(ip)
            if entry is None:
                entry = self._decode(ip)
            handler, operands, _ = entry
            status = handler(*operands)
        except _TrapSignal as trap:
            self.trap_kind, self.trap_a, self.trap_b = int(trap.kind), trap.a, trap.b
            self.trap_ip = self.ip
            return Status.TRAP
        finally:
            if held:
                self._breaks.add(ip)
                self._decoded.pop(ip, None)
        return Status.BUDGET if status is None else status

    def set_breakpoint(self, address: int, on: bool = True) -> None:
        """Make run() return Status.BREAK whenever ip reaches ``address`` (or stop doing so)."""
        if not 0 <= address <= max(self.capacity, len(self.mem)):
            raise ValueError(f"no breakpoint can be set at 0x{address:x} (outside main memory)")
        if on:
            self._breaks.add(address)
        else:
            self._breaks.discard(address)
        self._decoded.pop(address, None)

    def _op_break(self) -> int:
        return Status.BREAK                   # ip stays on the instruction under the breakpoint

    def enable_profile(self) -> None:
        """Count instructions and time per address and calling context from now on."""
        self._profiling = True

    def profile_data(self) -> dict | None:
        """The profile so far (as the compiled Core's ``profile_data``), or None when not profiling."""
        return None if self._profile is None else self._profile.data()

    def call_stack(self) -> list[int]:
        """The return addresses on the call stack, oldest first."""
        return list(self.calls)

    def registers(self) -> list[tuple[int, int]]:
        """``(bits, tag)`` of every register, r0 first."""
        return list(zip(self.regs, self.tags))

    def _decode(self, ip: int) -> tuple:
        """Decode and cache the instruction at ``ip``; trap if it cannot run."""
        if ip in self._breaks and ip < len(self.mem):
            entry = (self._op_break, (), False)
            self._decoded[ip] = entry
            return entry
        mem = self.mem
        if ip >= len(mem):
            raise _TrapSignal(TrapKind.IP_OUTSIDE, ip, len(mem))
        op = BY_CODE.get(mem[ip])
        if op is None:
            raise _TrapSignal(TrapKind.UNKNOWN_OPCODE, mem[ip])
        if ip + op.size > len(mem):
            raise _TrapSignal(TrapKind.TRUNCATED_INSTRUCTION, op.size, len(mem) - ip)
        operands = decode_at(mem, ip).operands
        # ncall's register byte is ignored by the VM (upstream.md §2.1), so it is not checked.
        if op.mnemonic != "ncall":
            for kind, value in zip(op.operands, operands):
                if kind is Operand.REG and value >= NUM_REGISTERS:
                    raise _TrapSignal(TrapKind.BAD_REGISTER, value)
        entry = (self._handlers[op.code], operands, bool(op.flags & _BRANCH))
        self._decoded[ip] = entry
        return entry

    def _memory_changed(self, address: int, count: int) -> None:
        """Forget decoded instructions that overlap rewritten main memory."""
        for ip in range(max(0, address - MAX_SIZE + 1), address + count):
            self._decoded.pop(ip, None)

    # ================================================================== helpers

    def _u(self, r: int) -> int:
        return as_u64(self.regs[r], self.tags[r])

    def _i(self, r: int) -> int:
        return as_i64(self.regs[r], self.tags[r])

    def _f(self, r: int) -> float:
        return as_f64(self.regs[r], self.tags[r])

    def _set(self, r: int, bits: int, tag: int) -> None:
        self.regs[r] = bits & MASK64
        self.tags[r] = tag

    def _set_f(self, r: int, x: float) -> None:
        self.regs[r] = bits_from_f64(x)
        self.tags[r] = F64

    def _raise(self, exc: Exc, ip: int | None = None) -> None:
        """Raise ``exc`` from the instruction at ``ip`` (default: the one running)."""
        self.exceptions[int(exc) - 1] += 1
        self.raised_total += 1
        self._diagnostic(self.raised_total - 1, int(exc), self.ip if ip is None else ip)

    def _int_flags(self, value: int) -> None:
        """ZF/NF against I(0) for an int64 result."""
        self.flags[_ZF] = int(value == 0)
        self.flags[_NF] = int(value < 0)

    def _float_flags(self, x: float) -> None:
        """ZF/NF against F(0.0) for a float64 result (NaN: both 0)."""
        self.flags[_ZF] = int(x == 0.0)
        self.flags[_NF] = int(x < 0.0)

    def _binary(self, d: int, s: int, op: int) -> None:
        """R[d] := R[d] op R[s] (generic); result tag from the §1.3 table (semantics.md §2)."""
        self.regs[d], self.tags[d] = arithmetic(op, self.regs[d], self.tags[d], self.regs[s], self.tags[s])

    def _divide(self, d: int, a: int, b: int, op: int, fdiv: bool = False) -> None:
        """udiv/urem/idiv/irem/fdiv/frem: R[d] := R[a] op R[b] (generic).

        Integer division by zero raises ZeroDivision and leaves R[d] (semantics.md
        §3.3). ``fdiv`` by a float +-0 does the same before any type check, as
        upstream does; the other mnemonics divide floats the IEEE way.
        """
        rbits, rtag = self.regs[b], self.tags[b]
        if fdiv and rtag == F64 and f64_from_bits(rbits) == 0.0:
            self._raise(Exc.ZeroDivision)
        else:
            result = arithmetic(op, self.regs[a], self.tags[a], rbits, rtag)
            if result is None:
                self._raise(Exc.ZeroDivision)
            else:
                self.regs[d], self.tags[d] = result
        self.ip += SIZE["udiv"]  # every division and remainder has this size

    def _step(self, d: int, op: int, allowed: frozenset[int]) -> int:
        """inc/dec by one for the allowed register tags; returns the new bits."""
        bits, tag = self.regs[d], self.tags[d]
        if tag not in allowed:
            raise _mismatch(op, tag)
        if tag == F64:
            x = f64_from_bits(bits) + (1.0 if op == OP_INC else -1.0)
            self.regs[d] = bits_from_f64(x)
        else:
            self.regs[d] = (bits + (1 if op == OP_INC else -1)) & MASK64
        return self.regs[d]

    # ================================================================== 0x01-0x02, 0xFF

    def _op_ncall(self, code: int, _register: int) -> int:
        self.ncall_code, self.ncall_ip = code, self.ip
        self.ip += SIZE["ncall"]
        return Status.NCALL

    def _op_nop(self) -> None:
        self.ip += SIZE["nop"]  # semantics.md §3.1

    def _op_halt(self) -> int:
        return Status.HALT                    # ip stays on the halt

    # ================================================================== 0x10 unsigned

    def _op_uload(self, d: int, imm: int) -> None:
        self._set(d, imm, U64)
        self.ip += SIZE["uload"]

    def _op_uadd(self, d: int, s: int) -> None:
        self._binary(d, s, OP_ADD)
        self.ip += SIZE["uadd"]

    def _op_umul(self, d: int, s: int) -> None:
        self._binary(d, s, OP_MUL)
        self.ip += SIZE["umul"]

    def _op_usub(self, d: int, s: int) -> None:
        self._binary(d, s, OP_SUB)
        self.flags[_ZF] = int(_is_u_zero(self.regs[d], self.tags[d]))
        self.ip += SIZE["usub"]

    def _op_udiv(self, d: int, a: int, b: int) -> None:
        self._divide(d, a, b, OP_DIV)

    def _op_urem(self, d: int, a: int, b: int) -> None:
        self._divide(d, a, b, OP_REM)

    def _op_ucmp(self, a: int, b: int) -> None:
        equal, less = compare(self.regs[a], self.tags[a], self.regs[b], self.tags[b])
        self.flags[_ZF], self.flags[_NF] = int(equal), int(less)
        self.ip += SIZE["ucmp"]

    def _op_usqrt(self, d: int, s: int) -> None:
        root = math.isqrt(self._u(s))
        self._set(d, root, U64)
        self.flags[_ZF] = int(root == 0)
        self.ip += SIZE["usqrt"]

    def _op_upow(self, d: int, s: int) -> None:
        exponent = self._u(s) & 0xFFFFFFFF
        result = pow(self._u(d), exponent, 1 << 64)
        self._set(d, result, U64)               # semantics.md §2: upow gives uint64
        self.flags[_ZF] = int(result == 0)
        self.ip += SIZE["upow"]

    def _op_uinc(self, d: int) -> None:
        bits = self._step(d, OP_INC, _U_LIKE)
        self.flags[_OF] = int(bits == 0)       # upstream: uinc writes OF, not ZF
        self.ip += SIZE["uinc"]

    def _op_udec(self, d: int) -> None:
        bits = self._step(d, OP_DEC, _U_LIKE)
        self.flags[_ZF] = int(bits == 0)
        self.ip += SIZE["udec"]

    # ================================================================== 0x20 signed

    def _op_iload(self, d: int, imm: int) -> None:
        self._set(d, imm, I64)
        self.ip += SIZE["iload"]

    # Upstream §1.3 / §11 item 6: the arithmetic is generic (tag-dispatched), so
    # the signed and float spellings are the same operations as the unsigned
    # ones; only the flags differ (isub and fsub set none).
    _op_iadd = _op_fadd = _op_uadd
    _op_imul = _op_fmul = _op_umul
    _op_idiv = _op_udiv
    _op_irem = _op_frem = _op_urem
    _op_icmp = _op_fcmp = _op_ucmp

    def _op_isub(self, d: int, s: int) -> None:
        self._binary(d, s, OP_SUB)             # no flags (upstream.md §1.4)
        self.ip += SIZE["isub"]

    _op_fsub = _op_isub

    def _op_iabs(self, d: int, s: int) -> None:
        result = to_signed(abs(self._i(s)) & MASK64)   # abs(MIN) = MIN
        self._set(d, result, I64)
        self.flags[_ZF] = int(result == 0)
        self.ip += SIZE["iabs"]

    def _op_ineg(self, d: int, s: int) -> None:
        result = to_signed(-self._i(s) & MASK64)       # semantics.md §2: int64 -as_i64(src)
        self._set(d, result, I64)
        self._int_flags(result)
        self.ip += SIZE["ineg"]

    def _op_isqrt(self, d: int, s: int) -> None:
        if self.tags[s] == I64 and to_signed(self.regs[s]) < 0:
            self._raise(Exc.NegativeSqrt)      # nothing else changes
        else:
            value = self._i(s)
            if value < 0:                      # e.g. a uint >= 2^63 or a negative float
                raise _TrapSignal(TrapKind.NEGATIVE_ISQRT)
            root = math.isqrt(value)
            self._set(d, root, I64)
            self.flags[_ZF] = int(root == 0)
        self.ip += SIZE["isqrt"]

    def _op_ipow(self, d: int, s: int) -> None:
        exponent = self._i(s) & 0xFFFFFFFF     # low 32 bits, unsigned
        result = to_signed(pow(self._i(d), exponent, 1 << 64))
        self._set(d, result, I64)               # semantics.md §2: ipow gives int64
        self.flags[_ZF] = int(result == 0)
        self.flags[_NF] = int(result < 0)
        self.ip += SIZE["ipow"]

    def _op_iinc(self, d: int) -> None:
        self._int_flags(to_signed(self._step(d, OP_INC, _I_ONLY)))
        self.ip += SIZE["iinc"]

    def _op_idec(self, d: int) -> None:
        self._int_flags(to_signed(self._step(d, OP_DEC, _I_ONLY)))
        self.ip += SIZE["idec"]

    # ================================================================== 0x30 float

    def _op_fload(self, d: int, imm: int) -> None:
        self._set(d, imm, F64)
        self.ip += SIZE["fload"]

    def _op_fdiv(self, d: int, a: int, b: int) -> None:
        self._divide(d, a, b, OP_DIV, fdiv=True)

    def _op_fcmp_eps(self, a: int, b: int) -> None:
        ab = arithmetic(OP_SUB, self.regs[a], self.tags[a], self.regs[b], self.tags[b])
        ba = arithmetic(OP_SUB, self.regs[b], self.tags[b], self.regs[a], self.tags[a])
        self.flags[_ZF] = int(abs(as_f64(*ab)) < _EPSILON)
        self.flags[_NF] = int(ba[1] == F64 and f64_from_bits(ba[0]) > _EPSILON)
        self.ip += SIZE["fcmp_eps"]

    def _op_fabs(self, d: int, s: int) -> None:
        result = abs(self._f(s))
        self._set_f(d, result)
        self.flags[_ZF] = int(result == 0.0)
        self.ip += SIZE["fabs"]

    def _op_fneg(self, d: int, s: int) -> None:
        result = -self._f(s)                   # semantics.md §2: float64 -as_f64(src)
        self._set_f(d, result)
        self._float_flags(result)
        self.ip += SIZE["fneg"]

    def _op_fsqrt(self, d: int, s: int) -> None:
        if self.tags[s] == F64 and f64_from_bits(self.regs[s]) < 0.0:
            self._raise(Exc.NegativeSqrt)      # nothing else changes
        else:
            x = self._f(s)
            result = c_sqrt(x)                 # a negative int64 gives NaN
            self._set_f(d, result)
            self.flags[_ZF] = int(result == 0.0)
        self.ip += SIZE["fsqrt"]

    def _op_fpow(self, d: int, s: int) -> None:
        result = c_pow(self._f(d), self._f(s))  # silent (semantics.md §3.5)
        self._set_f(d, result)
        self.flags[_ZF] = int(result == 0.0)
        self.ip += SIZE["fpow"]

    def _op_finc(self, d: int) -> None:
        self._float_flags(f64_from_bits(self._step(d, OP_INC, _F_ONLY)))
        self.ip += SIZE["finc"]

    def _op_fdec(self, d: int) -> None:
        self._float_flags(f64_from_bits(self._step(d, OP_DEC, _F_ONLY)))
        self.ip += SIZE["fdec"]

    # ================================================================== 0x40 jumps

    def _jump_if(self, condition: bool, address: int) -> None:
        self.ip = address if condition else self.ip + SIZE["jz"]  # every conditional jump: one size

    def _op_jmp(self, address: int) -> None:
        self.ip = address

    def _op_jz(self, address: int) -> None:
        self._jump_if(self.flags[_ZF] != 0, address)

    def _op_jl(self, address: int) -> None:
        self._jump_if(self.flags[_NF] != 0, address)

    def _op_jg(self, address: int) -> None:
        self._jump_if(self.flags[_ZF] == 0 and self.flags[_NF] == 0, address)

    def _op_jge(self, address: int) -> None:
        self._jump_if(self.flags[_NF] == 0, address)

    def _op_jle(self, address: int) -> None:
        self._jump_if(self.flags[_NF] != 0 or self.flags[_ZF] != 0, address)

    def _op_jnz(self, address: int) -> None:
        self._jump_if(self.flags[_ZF] == 0, address)

    def _op_jexc(self, number: int, address: int) -> None:
        if not 1 <= number <= len(Exc):        # all 11 are handled (semantics.md §3.4)
            raise _TrapSignal(TrapKind.BAD_EXCEPTION, number)
        if self.exceptions[number - 1]:
            self.exceptions[number - 1] -= 1
            self.ip = address
        else:
            self.ip += SIZE["jexc"]

    def _op_jmpr(self, s: int) -> None:
        self.ip = self._u(s)

    # ================================================================== 0x50 conversions

    def _op_utoi(self, d: int, s: int) -> None:
        self._set(d, self._u(s), I64)
        self.ip += SIZE["utoi"]

    def _op_itou(self, d: int, s: int) -> None:
        self._set(d, self._i(s), U64)
        self.ip += SIZE["itou"]

    def _op_utof(self, d: int, s: int) -> None:
        self._set_f(d, float(self._u(s)))
        self.ip += SIZE["utof"]

    def _op_itof(self, d: int, s: int) -> None:
        self._set_f(d, float(self._i(s)))
        self.ip += SIZE["itof"]

    def _op_ftou(self, d: int, s: int) -> None:
        self._set(d, self._u(s), U64)          # saturating for floats
        self.ip += SIZE["ftou"]

    def _op_ftoi(self, d: int, s: int) -> None:
        self._set(d, f64_to_i64(self._f(s)), I64)
        self.ip += SIZE["ftoi"]

    def _op_ptou(self, d: int, s: int) -> None:
        self._set(d, self._u(s), U64)
        self.ip += SIZE["ptou"]

    def _op_utop(self, d: int, s: int) -> None:
        self._set(d, self._u(s), ADDR)
        self.ip += SIZE["utop"]

    # ================================================================== 0x60 moves, logic

    def _op_movr(self, d: int, s: int) -> None:
        self.regs[d], self.tags[d] = self.regs[s], self.tags[s]
        self.ip += SIZE["movr"]

    def _logic(self, d: int, s: int, op: int) -> None:
        bits, tag = bitwise(op, self.regs[d], self.tags[d], self.regs[s], self.tags[s])
        self.regs[d], self.tags[d] = bits, tag  # the table's tag, not the source's (semantics.md §2)
        self.flags[_ZF] = int(bits == 0)
        self.ip += SIZE["or"]  # or / and / xor: one size

    def _op_or(self, d: int, s: int) -> None:
        self._logic(d, s, OP_OR)

    def _op_and(self, d: int, s: int) -> None:
        self._logic(d, s, OP_AND)

    def _op_xor(self, d: int, s: int) -> None:
        self._logic(d, s, OP_XOR)

    def _op_not(self, d: int, s: int) -> None:
        tag = self.tags[s]
        if tag == F64:
            raise _mismatch(OP_NOT, tag)
        self._set(d, ~self.regs[s], tag)
        self.flags[_ZF] = int(self.regs[d] == 0)
        self.ip += SIZE["not"]

    def _op_test(self, a: int, b: int) -> None:
        bits, _ = bitwise(OP_AND, self.regs[a], self.tags[a], self.regs[b], self.tags[b])
        self.flags[_ZF] = int(bits == 0)
        self.ip += SIZE["test"]

    def _op_lnot(self, d: int, s: int) -> None:
        bits, tag = self.regs[s], self.tags[s]
        if tag == F64:
            result = bits_from_f64(1.0 if f64_from_bits(bits) == 0.0 else 0.0)
        else:
            result = 1 if bits == 0 else 0
        self._set(d, result, tag)
        self.flags[_ZF] = int(as_u64(result, tag) == 0)
        self.ip += SIZE["lnot"]

    def _shift(self, d: int, s: int, op: int) -> None:
        tag, amount_tag = self.tags[d], self.tags[s]
        if amount_tag != U64 or tag == F64:    # (U|I|S|A|D) shifted by a uint64 only
            raise _mismatch(op, tag, amount_tag)
        amount = self.regs[s] & 63             # modulo 64 (release-build upstream)
        if op == OP_SHL:
            result = self.regs[d] << amount
        elif tag == I64:
            result = to_signed(self.regs[d]) >> amount  # arithmetic for int64
        else:
            result = self.regs[d] >> amount
        self._set(d, result, tag)
        self.ip += SIZE["shl"]  # shl / shr: one size

    def _op_shl(self, d: int, s: int) -> None:
        self._shift(d, s, OP_SHL)

    def _op_shr(self, d: int, s: int) -> None:
        self._shift(d, s, OP_SHR)

    # ================================================================== 0x70 data segment

    def _mem_byte(self, address: int) -> int:
        if address >= len(self.mem):
            raise _TrapSignal(TrapKind.DATA_OUT_OF_RANGE, address, len(self.mem))
        return self.mem[address]

    def _mem_u64(self, address: int) -> int:
        if address + 8 > len(self.mem):
            raise _TrapSignal(TrapKind.DATA_OUT_OF_RANGE, address, len(self.mem))
        return int.from_bytes(self.mem[address:address + 8], "big")

    def _load_item(self, d: int, item: int, offset: int) -> None:
        """R[d] := the element at byte ``offset`` of the item at ``item`` (upstream dsload)."""
        raw = self._mem_byte(item)
        kind = raw & ~DATA_CONST_BIT & 0xFF
        if kind in (6, 7, 8):                  # arrays give their element type
            kind -= 5
        address = (item + DATA_HEADER_SIZE + offset) & MASK64
        if kind == STR:
            self._set(d, address, STR)
        elif kind in (U64, I64, F64):
            self._set(d, self._mem_u64(address), kind)
        else:
            raise _TrapSignal(TrapKind.BAD_DATA_TYPE, item, raw)

    def _save_item(self, s: int, item: int, offset: int) -> None:
        """Write R[s]'s 8 bits at byte ``offset`` of the item's payload (semantics.md §3.27)."""
        raw = self._mem_byte(item)
        if raw & DATA_CONST_BIT:
            raise _TrapSignal(TrapKind.CONST_WRITE, item)
        length = self._mem_u64(item + 1)
        address = item + DATA_HEADER_SIZE + offset
        if offset + 8 > length or address + 8 > len(self.mem):
            self._raise(Exc.MainSegmFault)
            return
        self.mem[address:address + 8] = self.regs[s].to_bytes(8, "big")
        self._memory_changed(address, 8)

    def _op_dsload(self, d: int, rel: int, offset: int) -> None:
        self._load_item(d, (self.data_base + rel) & MASK64, offset)
        self.ip += SIZE["dsload"]

    def _op_dsrload(self, d: int, o: int, rel: int) -> None:
        self._load_item(d, (self.data_base + rel) & MASK64, self._u(o))
        self.ip += SIZE["dsrload"]

    def _op_dssave(self, s: int, rel: int, offset: int) -> None:
        self._save_item(s, (self.data_base + rel) & MASK64, offset)
        self.ip += SIZE["dssave"]

    def _op_dsrsave(self, s: int, o: int, rel: int) -> None:
        self._save_item(s, (self.data_base + rel) & MASK64, self._u(o))
        self.ip += SIZE["dsrsave"]

    def _op_dslea(self, d: int, rel: int, offset: int) -> None:
        self._set(d, self.data_base + rel + offset, DS_ADDR)
        self.ip += SIZE["dslea"]

    def _op_dsderef(self, s: int, d: int, offset: int) -> None:
        # semantics.md §2: the item's own type, like dsload at offset 0
        self._load_item(d, (self._u(s) - offset) & MASK64, 0)
        self.ip += SIZE["dsderef"]

    def _op_dsrlea(self, d: int, o: int, rel: int) -> None:
        self._set(d, self.data_base + rel + self._u(o), DS_ADDR)
        self.ip += SIZE["dsrlea"]

    def _op_dsrderef(self, s: int, d: int, o: int) -> None:
        self._load_item(d, (self._u(s) - self._u(o)) & MASK64, 0)
        self.ip += SIZE["dsrderef"]

    # ================================================================== 0x80 data stack

    def _op_push(self, s: int) -> None:
        if len(self.stack) >= self.stack_limit:
            raise _TrapSignal(TrapKind.STACK_OVERFLOW, self.stack_limit)
        self.stack.append((self.regs[s], self.tags[s]))
        self.ip += SIZE["push"]

    def _op_pop(self, d: int) -> None:
        if not self.stack:
            raise _TrapSignal(TrapKind.STACK_UNDERFLOW)
        self.regs[d], self.tags[d] = self.stack.pop()
        self.ip += SIZE["pop"]

    def _op_pushall(self) -> None:
        if len(self.stack) + PUSHALL_COUNT > self.stack_limit:
            raise _TrapSignal(TrapKind.STACK_OVERFLOW, self.stack_limit)
        self.stack.extend(zip(self.regs[:PUSHALL_COUNT], self.tags[:PUSHALL_COUNT]))
        self.ip += SIZE["pushall"]

    def _op_popall(self) -> None:
        # semantics.md §3.2: pop the 31 pushall entries, restore r30..r1, keep r0.
        if len(self.stack) < PUSHALL_COUNT:
            raise _TrapSignal(TrapKind.STACK_UNDERFLOW, PUSHALL_COUNT, len(self.stack))
        saved = self.stack[-PUSHALL_COUNT:]
        del self.stack[-PUSHALL_COUNT:]
        for index in range(1, PUSHALL_COUNT):
            self.regs[index], self.tags[index] = saved[index]
        self.ip += SIZE["popall"]

    def _op_gsf(self, d: int, s: int) -> None:
        index = self._u(s)
        if index < len(self.stack):            # out of range: nothing happens (upstream)
            self.regs[d], self.tags[d] = self.stack[index]
        self.ip += SIZE["gsf"]

    def _op_usf(self, d: int, s: int) -> None:
        index = self._u(d)
        if index < len(self.stack):
            self.stack[index] = (self.regs[s], self.tags[s])
        else:                                  # nothing written (upstream), but a warning
            self.usf_total += 1
            self._diagnostic(self.usf_total - 1, DIAG_USF, self.ip, index, len(self.stack))
        self.ip += SIZE["usf"]

    # ================================================================== 0x90 functions

    def _enter(self, index: int, return_address: int) -> None:
        if len(self.calls) + 1 > self.max_recursion:     # call and callr (semantics.md §3.6)
            raise _TrapSignal(TrapKind.RECURSION_LIMIT, self.max_recursion)
        if index >= len(self.functions):
            raise _TrapSignal(TrapKind.BAD_FUNCTION, index, len(self.functions))
        self.calls.append(return_address)
        self.ip = self.functions[index]

    def _op_call(self, index: int) -> None:
        self._enter(index, self.ip + SIZE["call"])

    def _op_ret(self) -> int | None:
        if not self.calls:
            if self._ret_ends:                 # a spawned thread returns from its first frame
                return Status.HALT             # and ends like `halt`, ip on the ret (docs/concurrency.md)
            raise _TrapSignal(TrapKind.CALL_STACK_UNDERFLOW)
        self.ip = self.calls.pop()

    def _op_fnstind(self, d: int, index: int) -> None:
        self._set(d, index, U64)
        self.ip += SIZE["fnstind"]

    def _op_callr(self, s: int) -> None:
        self._enter(self._u(s), self.ip + SIZE["callr"])

    # ================================================================== 0xA0 heap

    def _roots(self) -> list[int]:
        """GC roots: every register and data-stack entry tagged address (semantics.md §3.8)."""
        roots = [bits for bits, tag in zip(self.regs, self.tags) if tag == ADDR]
        roots.extend(bits for bits, tag in self.stack if tag == ADDR)
        return roots

    def _allocate(self, d: int, size: int, collectable: bool) -> None:
        address = self.heap.alloc(size, collectable, self._roots)
        if address == 0:
            self._raise(Exc.HeapAllocationFault)   # and A(0), the null pointer (semantics.md §3.9)
        self._set(d, address, ADDR)

    def _op_alloc(self, d: int, size: int) -> None:
        self._allocate(d, size, True)
        self.ip += SIZE["alloc"]

    def _op_allocr(self, d: int, n: int) -> None:
        self._allocate(d, self._u(n), True)
        self.ip += SIZE["allocr"]

    def _op_allocr_nogc(self, d: int, n: int) -> None:
        self._allocate(d, self._u(n), False)
        self.ip += SIZE["allocr_nogc"]

    def _op_free(self, s: int) -> None:
        if not self.heap.free(self._u(s)):
            self._raise(Exc.HeapFreeFault)
        self.ip += SIZE["free"]

    def _op_store(self, p: int, v: int, c: int) -> None:
        count = _clamp_count(self._u(c))
        data = self.regs[v].to_bytes(8, "big")[8 - count:]   # the LOW bytes (semantics.md §3.11)
        pointer = count == 8 and self.tags[v] == ADDR         # a GC edge (semantics.md §3.8)
        if not self.heap.write(self._u(p), data, is_pointer=pointer):
            self._raise(Exc.HeapWriteFault)
        self.ip += SIZE["store"]

    def _op_load(self, t: int, d: int, p: int, c: int) -> None:
        kind = self._u(t)
        data = self.heap.read(self._u(p), _clamp_count(self._u(c)))
        if data is None:
            self._raise(Exc.HeapReadFault)
        else:
            # The type is checked after a successful read, as upstream does, so
            # a program whose bad-typed load fails keeps running as it did there.
            if kind not in VALID_TAGS:
                raise _TrapSignal(TrapKind.BAD_LOAD_TYPE, kind)
            self._set(d, int.from_bytes(data, "big"), kind)
        self.ip += SIZE["load"]

    def _op_memcpy(self, d: int, s: int, c: int) -> None:
        if not self.heap.copy(self._u(d), self._u(s), self._u(c)):
            self._raise(Exc.HeapSegmFault)
        self.ip += SIZE["memcpy"]

    def _op_storedat(self, d: int, s: int, c: int) -> None:
        start, count = self._u(s), self._u(c)
        if start + count > len(self.mem):
            self._raise(Exc.MainSegmFault)
        elif not self.heap.write(self._u(d), bytes(self.mem[start:start + count])):
            self._raise(Exc.HeapWriteFault)
        self.ip += SIZE["storedat"]

    def _op_dlbc(self, d: int, s: int, c: int) -> None:
        count = self._u(c)
        if len(self.mem) + count > self.capacity:
            self._raise(Exc.MainSegmFault)
        else:
            data = self.heap.read(self._u(s), count)
            if data is None:
                self._raise(Exc.HeapReadFault)
            else:
                self._set(d, len(self.mem), DS_ADDR)   # semantics.md §2: tag ds_addr
                self.mem.extend(data)
        self.ip += SIZE["dlbc"]

    def _op_ubd(self, s: int, c: int, d: int) -> None:
        data = self.heap.read(self._u(s), self._u(c))
        if data is None:
            self._raise(Exc.HeapReadFault)
        else:
            text = data.decode("utf-8", "replace")     # Rust from_utf8_lossy
            if not self.heap.write(self._u(d), text.encode("utf-16-be")):
                self._raise(Exc.HeapWriteFault)
        self.ip += SIZE["ubd"]  # always advances (semantics.md §3.7)

    # ================================================================== Core protocol

    def get_reg(self, index: int) -> tuple[int, int]:
        return self.regs[index], self.tags[index]

    def set_reg(self, index: int, bits: int, tag: int) -> None:
        if tag not in VALID_TAGS:
            raise ValueError(f"tag {tag} is not a register tag")
        self._set(index, bits, tag)

    def end_on_return(self) -> None:
        """Make ``ret`` on an empty call stack end the program like ``halt`` (a spawned thread)."""
        self._ret_ends = True

    def request_stop(self) -> None:
        """Make run() return Status.STOP at its next branch event (an attribute store: any thread)."""
        self._stop = True

    def raise_exception(self, number: int) -> None:
        if not 1 <= number <= len(Exc):
            raise ValueError(f"{number} is not a voxvm exception number")
        self._raise(Exc(number), self.ncall_ip)           # natives raise; the ncall is the place

    def pending(self) -> dict[int, int]:
        return {number: count for number, count in enumerate(self.exceptions, 1) if count}

    def memory(self) -> bytes:
        return bytes(self.mem)

    def read_memory(self, address: int, count: int) -> bytes | None:
        if address > len(self.mem) or count > len(self.mem) - address:
            return None
        return bytes(self.mem[address:address + count])

    def heap_read(self, address: int, count: int) -> bytes | None:
        return self.heap.read(address, count)

    def heap_write(self, address: int, data: bytes) -> bool:
        return self.heap.write(address, bytes(data))

    def host_pointer(self, address: int, tag: int):
        """A foreign ``ptr`` argument's host address: ``(pointer, keepalive)``, or None.

        The pointer is into this core's own bytearray (the heap's, or main
        memory's), which must not be resized while the foreign call runs:
        ``keepalive`` is the ctypes view that pins it; drop it after the call.
        A heap address must be inside a live block; a main-memory address
        (StrAddr, ds_addr) inside memory, whose decoded instructions from
        there on are forgotten first, since the function may write.
        """
        if tag == Tag.ADDR:
            if self.heap._find(address, 1) is None:
                return None
            buffer = self.heap.data
        elif tag in (Tag.STR, Tag.DS_ADDR) and address < len(self.mem):
            self._memory_changed(address, len(self.mem) - address)
            buffer = self.mem
        else:
            return None
        view = (ctypes.c_char * (len(buffer) - address)).from_buffer(buffer, address)
        return ctypes.addressof(view), view

    def snapshot(self, reason: int = 0):
        from ...formats import Dump             # construct: only when a dump is made (start-up)

        return Dump(
            reason=reason, trap=self.trap_kind if reason else 0, ip=self.ip,
            trap_a=self.trap_a if reason else 0, trap_b=self.trap_b if reason else 0,
            flags=tuple(self.flags), registers=list(zip(self.regs, self.tags)),
            data_stack=list(self.stack), call_stack=list(self.calls),
            pending=self.pending(), memory=bytes(self.mem), heap=self.heap.blocks())

    def write_dump(self, f, reason: int = 0) -> None:
        """Write ``snapshot(reason)``'s core dump to the binary file ``f`` without building it:
        the state is packed a chunk at a time (voxvm.formats.DumpWriter)."""
        from ...formats import DumpWriter

        writer = DumpWriter(f)
        writer.head(reason, self.trap_kind if reason else 0, self.ip, self.flags, zip(self.regs, self.tags),
                    self.trap_a if reason else 0, self.trap_b if reason else 0)
        writer.data_stack(self.stack, len(self.stack))
        writer.call_stack(self.calls, len(self.calls))
        writer.pending(self.pending())
        writer.memory(self.mem)
        writer.heap(self.heap.iter_blocks(), self.heap.block_count())


Core = PyCore


def nan_result(lbits: int, rbits: int, rbits_result: int) -> int:
    """A binary float operation's NaN result (semantics.md §12): a NaN operand's bits,
    quieted, the first operand's when both are NaN; a NaN the operation created stays."""
    for bits in (lbits, rbits):
        if (bits & 0x7FFFFFFFFFFFFFFF) > 0x7FF0000000000000:
            return bits | 0x0008000000000000
    return rbits_result
