"""The compiled core's instruction semantics, instruction by instruction.

Two kinds of checks:

* a **matrix** against the reference backend: every register-only
  instruction, and every pair the decoder fuses, runs over a grid of edge
  values of every tag (zeros, 1, MIN, MAX, -1, NaN, +-inf, -0.0, subnormals,
  address-like values); after each run the whole state (registers, tags,
  flags, pending exceptions, ip, trap) must equal ``voxvm.backends.reference.core.PyCore``'s, on
  every compiled dispatch loop (the counting loop decodes without fusion, so
  fused and unfused execution are compared too);
* **exact expectations** for the decisions.md items the core implements
  (division by zero, MIN / -1, exact integer square roots, saturating
  conversions, flags, popall, jexc, data-segment writes, dsderef tags).
"""

from __future__ import annotations

import itertools
import math
import struct

import pytest
from core_support import CONFIG, DISPATCHES, Core, differences, state
from pyvm_support import build, f64s, fbits, item, u64s, utf16

from voxvm.backends import Status
from voxvm.isa import OPS, Exc, Flag, Operand, Tag
from voxvm.backends.reference.core import PyCore
from voxvm.traps import TrapKind

U, I, F, S, A, D = (int(t) for t in (Tag.U64, Tag.I64, Tag.F64, Tag.STR, Tag.ADDR, Tag.DS_ADDR))
MASK = (1 << 64) - 1
MIN = 1 << 63
MAX = MIN - 1


def fb(x: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", x))[0]


# (bits, tag) edge values of every tag.
GRID = ([(v, U) for v in (0, 1, 2, 7, MIN, MASK)]
        + [(v & MASK, I) for v in (0, 1, -1, -7, 5, MIN, MAX)]
        + [(fb(x), F) for x in (0.0, -0.0, 1.0, -1.5, 2.5, math.inf, -math.inf, math.nan, 1e300, 4e-320)]
        + [(v, t) for t in (S, A, D) for v in (0, 16)])
SMALL_GRID = [(0, U), (3, U), (MASK, U), (MIN, I), (MASK, I), (2, I), (fb(-0.0), F), (fb(2.5), F),
              (fb(math.nan), F), (16, A), (0, S), (9, D)]

_SKIP = Flag.JUMP | Flag.CALL | Flag.RETURN | Flag.NATIVE | Flag.HEAP | Flag.HALT | Flag.WRITES_MEMORY
REGISTER_OPS = [op for op in OPS if op.operands and all(o is Operand.REG for o in op.operands)
                and not (op.flags & _SKIP) and not op.mnemonic.startswith(("ds", "push", "pop", "gsf", "usf"))]


class Pair:
    """A reference PyCore and one compiled Core running the same program, compared after each run."""

    def __init__(self, program, dispatch: str) -> None:
        self.ref = PyCore(program, CONFIG)
        self.core = Core(program, CONFIG, dispatch=dispatch)
        self.dispatch = dispatch

    def run(self, regs: dict[int, tuple[int, int]], what: str) -> None:
        for core in (self.ref, self.core):
            for index, (bits, tag) in regs.items():
                core.set_reg(index, bits, tag)
            core.ip = 0
        expected = state(self.ref, self.ref.run())
        got = state(self.core, self.core.run())
        assert got == expected, f"{what} with {regs} on {self.dispatch}: {differences(got, expected)}"


@pytest.mark.parametrize("dispatch", DISPATCHES)
@pytest.mark.parametrize("op", REGISTER_OPS, ids=lambda op: op.mnemonic)
def test_register_instruction_matrix(op, dispatch):
    registers = list(range(1, len(op.operands) + 1))
    pair = Pair(build((op.mnemonic, *registers), ("halt",)), dispatch)
    grid = GRID if len(registers) <= 2 else SMALL_GRID
    for values in itertools.product(grid, repeat=len(registers)):
        pair.run(dict(zip(registers, values)), op.mnemonic)
    if len(registers) >= 2:  # the same register on both sides
        same = Pair(build((op.mnemonic, *([1] * len(registers))), ("halt",)), dispatch)
        for value in GRID:
            same.run({1: value}, f"{op.mnemonic} r1 r1")


FUSED_BINARY = ["uadd", "iadd", "fadd", "umul", "imul", "fmul", "usub", "isub", "fsub"]


@pytest.mark.parametrize("dispatch", DISPATCHES)
@pytest.mark.parametrize("mnemonic", FUSED_BINARY)
def test_fused_movr_binary_matrix(mnemonic, dispatch):
    """movr d s + op d x (and op d d): the fused 3-operand form and its unfused fallback."""
    other = Pair(build(("movr", 1, 2), (mnemonic, 1, 3), ("halt",)), dispatch)
    itself = Pair(build(("movr", 1, 2), (mnemonic, 1, 1), ("halt",)), dispatch)
    for left, right in itertools.product(GRID, repeat=2):
        other.run({1: (5, U), 2: left, 3: right}, f"movr+{mnemonic}")
    for value in GRID:
        itself.run({1: (5, I), 2: value}, f"movr+{mnemonic} d d")


JCC = ["jz", "jnz", "jl", "jg", "jge", "jle"]


@pytest.mark.parametrize("dispatch", DISPATCHES)
@pytest.mark.parametrize("compare", ["ucmp", "icmp", "fcmp"])
def test_fused_compare_jump_matrix(compare, dispatch):
    for jump in JCC:
        pair = Pair(build((compare, 1, 2), (jump, "@yes"), ("uload", 5, 1), ("halt",), "yes:", ("uload", 5, 2),
                          ("halt",)), dispatch)
        for left, right in itertools.product(GRID, repeat=2):
            pair.run({1: left, 2: right}, f"{compare}+{jump}")


@pytest.mark.parametrize("dispatch", DISPATCHES)
def test_fused_counted_loop_step_matrix(dispatch):
    for compare, jump in itertools.product(["ucmp", "icmp", "fcmp"], JCC):
        for left_reg, right_reg in ((1, 2), (2, 1), (1, 1), (3, 2)):   # the counted register on either side
            pair = Pair(build(("uinc", 1), (compare, left_reg, right_reg), (jump, "@yes"), ("halt",), "yes:",
                              ("uload", 5, 2), ("halt",)), dispatch)
            for left, right in itertools.product(SMALL_GRID + [(MASK - 1, U), (1, U)], repeat=2):
                pair.run({1: left, 2: right, 3: (MASK, U)}, f"uinc r1 + {compare} r{left_reg} r{right_reg} + {jump}")
    pair = Pair(build(("udec", 1), ("jnz", "@yes"), ("halt",), "yes:", ("uload", 5, 2), ("halt",)), dispatch)
    for value in GRID:
        pair.run({1: value}, "udec+jnz")


# ----------------------------------------------------------------------------- exact expectations

def run_one(*code, regs=None, dispatch=None, **kw):
    """Run a program (built with pyvm_support.build) on the compiled core; returns (core, status)."""
    core = Core(build(*code, **kw), CONFIG, dispatch=dispatch)
    for index, (bits, tag) in (regs or {}).items():
        core.set_reg(index, bits, tag)
    return core, core.run()


def reg(core, index):
    return core.get_reg(index)


def test_integer_division_by_zero_raises_and_keeps_the_destination():
    for mnemonic in ("udiv", "urem", "idiv", "irem", "fdiv", "frem"):
        for divisor in ((0, U), (0, I)):
            core, status = run_one((mnemonic, 3, 1, 2), ("halt",), regs={1: (7, divisor[1]), 2: divisor, 3: (99, U)})
            assert status == Status.HALT
            assert reg(core, 3) == (99, U), mnemonic
            assert core.pending() == [Exc.ZeroDivision], mnemonic


def test_fdiv_by_float_zero_raises_before_the_type_check():
    core, status = run_one(("fdiv", 3, 1, 2), ("halt",), regs={1: (7, U), 2: (fb(-0.0), F), 3: (99, U)})
    assert status == Status.HALT and reg(core, 3) == (99, U) and core.pending() == [Exc.ZeroDivision]


def test_float_division_and_remainder_by_zero_without_fdiv():
    core, _ = run_one(("udiv", 3, 1, 2), ("frem", 4, 1, 2), ("halt",), regs={1: (fb(1.0), F), 2: (fb(0.0), F)})
    assert reg(core, 3) == (fb(math.inf), F)
    assert math.isnan(struct.unpack(">d", reg(core, 4)[0].to_bytes(8, "big"))[0]) and reg(core, 4)[1] == F
    assert core.pending() == []


def test_signed_min_divided_by_minus_one():
    core, _ = run_one(("idiv", 3, 1, 2), ("irem", 4, 1, 2), ("halt",), regs={1: (MIN, I), 2: (MASK, I)})
    assert reg(core, 3) == (MIN, I) and reg(core, 4) == (0, I)


@pytest.mark.parametrize("value", [0, 1, 2, 3, 4, 15, 16, 17, (1 << 32) - 1, 1 << 32, (1 << 52) + 1,
                                   ((1 << 32) - 1) ** 2, ((1 << 32) - 1) ** 2 - 1, MAX, MIN, MASK - 1, MASK])
def test_exact_integer_square_roots(value):
    core, _ = run_one(("usqrt", 2, 1), ("halt",), regs={1: (value, U)})
    assert reg(core, 2) == (math.isqrt(value), U)
    if value <= MAX:
        core, _ = run_one(("isqrt", 2, 1), ("halt",), regs={1: (value, I)})
        assert reg(core, 2) == (math.isqrt(value), I)


def test_isqrt_of_negative_values():
    core, status = run_one(("isqrt", 2, 1), ("halt",), regs={1: (MASK, I), 2: (5, U)})
    assert status == Status.HALT and reg(core, 2) == (5, U) and core.pending() == [Exc.NegativeSqrt]
    core, status = run_one(("isqrt", 2, 1), ("halt",), regs={1: (MIN, U)})
    assert status == Status.TRAP and core.trap_kind == TrapKind.NEGATIVE_ISQRT and core.trap_ip == 0


@pytest.mark.parametrize("x, as_u, as_i", [
    (math.nan, 0, 0), (-1.5, 0, MASK), (1.9, 1, 1), (-0.0, 0, 0), (1e30, MASK, MAX), (-1e30, 0, MIN),
    (2.0 ** 64, MASK, MAX), (2.0 ** 63, MIN, MAX), (-(2.0 ** 63), 0, MIN)])
def test_saturating_conversions(x, as_u, as_i):
    core, _ = run_one(("ftou", 2, 1), ("ftoi", 3, 1), ("ptou", 4, 1), ("halt",), regs={1: (fb(x), F)})
    assert reg(core, 2) == (as_u, U) and reg(core, 3) == (as_i, I) and reg(core, 4) == (as_u, U)


def test_flags_of_the_odd_writers():
    # usub sets ZF, isub does not; uinc writes OF and leaves ZF.
    core, _ = run_one(("usub", 1, 1), ("halt",), regs={1: (5, U)})
    assert core.flags[1] == 1
    core, _ = run_one(("isub", 1, 1), ("halt",), regs={1: (5, I)})
    assert core.flags[1] == 0
    core, _ = run_one(("uinc", 1), ("halt",), regs={1: (MASK, U)})
    assert core.flags == (1, 0, 0, 0) and reg(core, 1) == (0, U)
    # usub of two int64 values: ZF compares with U(0), a different kind: 0.
    core, _ = run_one(("usub", 1, 1), ("halt",), regs={1: (5, I)})
    assert core.flags[1] == 0


def test_popall_restores_r30_to_r1_and_keeps_r0():
    code = [("uload", r, 100 + r) for r in range(32)] + [("pushall",)]
    code += [("uload", r, 7) for r in range(32)] + [("iload", 0, 42), ("popall",), ("halt",)]
    core, status = run_one(*code)
    assert status == Status.HALT
    assert reg(core, 0) == (42, I)
    assert [reg(core, r) for r in range(1, 31)] == [(100 + r, U) for r in range(1, 31)]
    assert reg(core, 31) == (7, U)
    assert core.snapshot().data_stack == []


def test_popall_needs_31_entries():
    core, status = run_one(*[("push", 1)] * 30, ("popall",), ("halt",))
    assert status == Status.TRAP and core.trap_kind == TrapKind.STACK_UNDERFLOW
    assert len(core.snapshot().data_stack) == 30


@pytest.mark.parametrize("number", range(1, 12))
def test_jexc_handles_all_eleven(number):
    core = Core(build(("jexc", number, "@caught"), ("uload", 1, 1), ("halt",), "caught:", ("uload", 1, 2),
                      ("halt",)), CONFIG)
    core.raise_exception(number)
    core.raise_exception(number)
    assert core.run() == Status.HALT
    assert reg(core, 1) == (2, U) and core.pending() == [number]


@pytest.mark.parametrize("number", [0, 12, 255, MASK])
def test_jexc_with_an_unknown_number_traps(number):
    core, status = run_one(("nop",), ("jexc", number, 0), ("halt",))
    assert status == Status.TRAP
    assert (core.trap_kind, core.trap_ip, core.trap_a) == (TrapKind.BAD_EXCEPTION, 1, number)


def test_jexc_removes_the_first_match_only():
    core = Core(build(("jexc", 6, "@x"), "x:", ("halt",)), CONFIG)
    for number in (1, 6, 2, 6):
        core.raise_exception(number)
    core.run()
    assert core.pending() == [1, 2, 6]


def test_dssave_inside_the_payload_only():
    data = {"arr": item(6, u64s(1, 2)), "k": item(1, u64s(5), const=True)}
    core, status = run_one(("uload", 1, 77), ("dssave", 1, "%arr", 8), ("dssave", 1, "%arr", 9),
                           ("dssave", 1, "%arr", 16), ("dssave", 1, "%arr", MASK), ("halt",), data=data)
    assert status == Status.HALT
    assert core.pending() == [Exc.MainSegmFault] * 3
    base = core.program.data_base
    assert core.memory()[base + 9:base + 25] == u64s(1, 77)
    core, status = run_one(("dssave", 1, "%k", 0), ("halt",), data=data)
    assert status == Status.TRAP and core.trap_kind == TrapKind.CONST_WRITE


def test_dsderef_gives_the_item_type():
    data = {"i": item(2, u64s(MASK)), "f": item(8, f64s(2.5, 3.5), const=True), "s": item(4, utf16("hi")),
            "bad": item(5, u64s(1))}
    code = [("dslea", 1, "%i", 0), ("dsderef", 1, 2, 0), ("dslea", 1, "%f", 0), ("dsderef", 1, 3, 0),
            ("dslea", 1, "%s", 0), ("dsderef", 1, 4, 0), ("halt",)]
    core, status = run_one(*code, data=data)
    assert status == Status.HALT
    assert reg(core, 2) == (MASK, I) and reg(core, 3) == (fb(2.5), F) and reg(core, 4)[1] == S
    core, status = run_one(("dslea", 1, "%bad", 0), ("dsderef", 1, 2, 0), ("halt",), data=data)
    assert status == Status.TRAP and core.trap_kind == TrapKind.BAD_DATA_TYPE and core.trap_b == 5


def test_fpow_is_silent_and_c_pow(capfd):
    core, _ = run_one(("fpow", 1, 2), ("halt",), regs={1: (fb(-8.0), F), 2: (fb(1 / 3), F)})
    assert math.isnan(struct.unpack(">d", reg(core, 1)[0].to_bytes(8, "big"))[0])
    core, _ = run_one(("fpow", 1, 2), ("halt",), regs={1: (fb(2.0), F), 2: (fb(10.0), F)})
    assert reg(core, 1) == (fb(1024.0), F)
    assert capfd.readouterr() == ("", "")


def test_type_mismatch_trap_arguments():
    core, status = run_one(("nop",), ("uadd", 1, 2), ("halt",), regs={1: (1, U), 2: (fb(1.0), F)})
    assert status == Status.TRAP
    assert (core.trap_kind, core.trap_ip, core.trap_a) == (TrapKind.TYPE_MISMATCH, 1, 0 << 16 | U << 8 | F)
    assert reg(core, 1) == (1, U)   # no effect


def test_unfused_fallback_does_the_movr_then_traps_at_the_second_instruction():
    core, status = run_one(("movr", 1, 2), ("fmul", 1, 3), ("halt",), regs={2: (4, U), 3: (fb(1.0), F)})
    assert status == Status.TRAP and core.trap_ip == 3 and core.trap_kind == TrapKind.TYPE_MISMATCH
    assert reg(core, 1) == (4, U)
