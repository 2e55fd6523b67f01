"""The compiled core against the reference, instruction by instruction, on every dispatch loop.

* a **matrix** against the reference backend: every register-only
  instruction, and every pair the decoder fuses, runs over a grid of edge
  values of every tag (zeros, 1, MIN, MAX, -1, NaN, +-inf, -0.0, subnormals,
  address-like values); after each run the whole state (registers, tags,
  flags, pending exceptions, ip, trap) must equal ``voxvm.backends.reference.core.PyCore``'s, on
  every compiled dispatch loop (the counting loop decodes without fusion, so
  fused and unfused execution are compared too);
* the **fusion fallback**: a fused pair whose second half traps has done the first.

The exact expectations of every backend are in tests/vm/test_semantics.py.
"""

from __future__ import annotations

import itertools
import math
import struct

import pytest
from support.builders import build
from support.configs import CONFIG, config
from support.machines import compiled, differences, dispatches, state


from voxvm.backends import Status
from voxvm.config import VMConfig
from voxvm.isa import OPS, Flag, Operand, Tag
from voxvm.backends.reference.core import PyCore
from voxvm.traps import TrapKind

core_module = compiled()          # skips the module only in a pure-Python install
Core = core_module.Core
DISPATCHES = dispatches()

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

    def __init__(self, program, dispatch: str, config=CONFIG) -> None:
        self.ref = PyCore(program, config)
        self.core = Core(program, config, dispatch=dispatch)
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


@pytest.mark.parametrize("dispatch", DISPATCHES)
def test_fused_alloc_store_matrix(dispatch):
    """alloc d n + store d v c: the new block's first field for every value tag and count
    (a count other than uint64 8, or a collection due, takes the unfused path; sizes
    outside 8..4096 are not fused: n = 7 makes the store fault)."""
    counts = [(8, U), (1, U), (4, U), (9, U), (0, U), (8, I), (fb(8.0), F), (8, A)]
    for size in (7, 8, 16, 4096, 4097):
        pair = Pair(build(("alloc", 1, size), ("store", 1, 2, 3), ("halt",)), dispatch)
        for value, count in itertools.product(SMALL_GRID + [(16, A), (24, A)], counts):
            pair.run({2: value, 3: count}, f"alloc r1 {size} + store r1 v c")
    # the value or the count register is the new block's: not fused, read after the alloc
    for store in (("store", 1, 1, 3), ("store", 1, 2, 1)):
        pair = Pair(build(("alloc", 1, 16), store, ("halt",)), dispatch)
        pair.run({2: (5, U), 3: (8, U)}, f"alloc r1 16 + {store}")


@pytest.mark.parametrize("dispatch", DISPATCHES)
def test_fused_alloc_store_records_the_pointer(dispatch):
    """A fused store of an address is a GC edge. In a full 4 KiB heap ([target][new
    block][filler]) the last allocation must collect: it fits only if the target died,
    which it must not while the new block's first field points at it."""
    program = build(("alloc", 6, 16), ("alloc", 1, 16), ("store", 1, 6, 3), ("alloc", 5, 4040), ("uload", 6, 0),
                    ("alloc", 7, 16), ("load", 3, 8, 1, 3), ("halt",))
    pair = Pair(program, dispatch, VMConfig(init_heap=4096, max_heap=4096))
    for count in ((8, U), (4, U)):                      # 4: a plain store (unfused), no edge
        pair.run({3: count}, f"alloc+store of an address, count {count}")


CONSTANTS = [0, 1, 2, MIN, MASK]


FLOAT_OPS = ["fadd", "fsub", "fmul"]
FLOAT_GRID = [(fb(1.5), F), (fb(-0.0), F), (fb(math.inf), F), (fb(math.nan), F), (0x7FF0000000000001, F),
              (3, U), (MIN, I), (16, A)]


@pytest.mark.parametrize("dispatch", DISPATCHES)
@pytest.mark.parametrize("first", FLOAT_OPS)
def test_fused_float_pair_matrix(first, dispatch):
    """fop d x + fop d y and movr d s + fop d x + fop d y (y == d: the first result), with
    the fallbacks when x or s (nothing done yet) or y (the first op done) is not a float."""
    for second in FLOAT_OPS:
        programs = {
            "pair": build((first, 1, 2), (second, 1, 3), ("halt",)),
            "pair onto itself": build((first, 1, 2), (second, 1, 1), ("halt",)),
            "movr + pair": build(("movr", 1, 4), (first, 1, 2), (second, 1, 3), ("halt",)),
            "movr + pair onto itself": build(("movr", 1, 4), (first, 1, 1), (second, 1, 1), ("halt",)),
        }
        for name, program in programs.items():
            pair = Pair(program, dispatch)
            for a, b, c in itertools.product(FLOAT_GRID, repeat=3):
                pair.run({1: a, 2: b, 3: c, 4: a}, f"{name}: {first} + {second}")


@pytest.mark.parametrize("dispatch", DISPATCHES)
@pytest.mark.parametrize("load,mnemonic", [("uload", "uadd"), ("uload", "usub"), ("iload", "iadd"),
                                           ("iload", "isub"), ("uload", "iadd"), ("iload", "usub")])
def test_fused_constant_operand_matrix(load, mnemonic, dispatch):
    """load k v + op x k (a constant operand), its fallback for other types, and op k k (not fused)."""
    for constant in CONSTANTS:
        other = Pair(build((load, 2, constant), (mnemonic, 1, 2), ("halt",)), dispatch)
        itself = Pair(build((load, 2, constant), (mnemonic, 2, 2), ("halt",)), dispatch)
        for value in GRID:
            other.run({1: value, 2: (5, F)}, f"{load} {constant} + {mnemonic}")
            itself.run({1: value}, f"{load} {constant} + {mnemonic} k k")


@pytest.mark.parametrize("dispatch", DISPATCHES)
@pytest.mark.parametrize("load,compare", [("uload", "ucmp"), ("iload", "icmp"), ("uload", "icmp"),
                                          ("fload", "fcmp")])
def test_fused_constant_compare_jump_matrix(load, compare, dispatch):
    """load k v + compare x k + jcc: compare with a constant and branch (any type of x)."""
    for jump in JCC:
        for constant in CONSTANTS:
            pair = Pair(build((load, 2, constant), (compare, 1, 2), (jump, "@yes"), ("uload", 5, 1), ("halt",),
                              "yes:", ("uload", 5, 2), ("halt",)), dispatch)
            for value in GRID:
                pair.run({1: value}, f"{load} {constant} + {compare} + {jump}")


@pytest.mark.parametrize("dispatch", DISPATCHES)
def test_fused_movr_ret_matrix(dispatch):
    """movr d s + ret: returning a value, and with an empty call stack the ret's own trap."""
    called = Pair(build(("call", 0), ("halt",), "f:", ("movr", 0, 1), ("ret",), functions=("f",)), dispatch)
    alone = Pair(build(("movr", 0, 1), ("ret",)), dispatch)
    for value in GRID:
        called.run({1: value}, "call + movr + ret")
        alone.run({1: value}, "movr + ret on an empty call stack")


STACK_PROGRAMS = {
    "push + push, pop + pop": [("push", 1), ("push", 2), ("pop", 3), ("pop", 4)],
    "push + push, pop + pop, one register": [("push", 1), ("push", 1), ("pop", 1), ("pop", 1)],
    "pop + push (replace the top)": [("push", 1), ("pop", 3), ("push", 2), ("pop", 4)],
    "pop + push, one register": [("push", 1), ("pop", 2), ("push", 2), ("pop", 4)],
    "pop + pop from one entry": [("push", 1), ("nop",), ("pop", 3), ("pop", 4)],
    "pop + pop from nothing": [("pop", 3), ("pop", 4)],
    "pop + push from nothing": [("pop", 3), ("push", 4)],
    "pop + ret from nothing": [("pop", 3), ("ret",)],
    "pop + ret with an empty call stack": [("push", 2), ("nop",), ("pop", 3), ("ret",)],
}


@pytest.mark.parametrize("dispatch", DISPATCHES)
@pytest.mark.parametrize("name", STACK_PROGRAMS)
def test_fused_stack_pairs(name, dispatch):
    """push/pop pairs, pop + ret, and where they stop: an empty or one-entry stack, no caller."""
    pair = Pair(build(*STACK_PROGRAMS[name], ("halt",)), dispatch)
    for value in SMALL_GRID:
        pair.run({1: value, 2: (7, I)}, name)


@pytest.mark.parametrize("dispatch", DISPATCHES)
def test_fused_pop_ret_returns(dispatch):
    pair = Pair(build(("push", 1), ("call", 0), ("halt",), "f:", ("pop", 2), ("ret",), functions=("f",)), dispatch)
    for value in SMALL_GRID:
        pair.run({1: value}, "push; call f; f: pop + ret")


@pytest.mark.parametrize("dispatch", DISPATCHES)
def test_fused_push_pairs_at_the_stack_limit(dispatch):
    """Pairs of pushes growing the stack up to its limit (3 entries): the third push
    completes alone and the fourth traps at its own address, as unfused."""
    small = config(init_stack=1, max_stack=3)
    pair = Pair(build(("push", 1), ("push", 2), ("push", 1), ("push", 2), ("halt",)), dispatch, small)
    pair.run({1: (1, U), 2: (2, I)}, "four pushes, room for three")
    grows = Pair(build(*[("push", r) for r in (1, 2) * 8], ("halt",)), dispatch, config(init_stack=1))
    grows.run({1: (1, U), 2: (2, I)}, "sixteen pushes from a one-entry stack")


# ----------------------------------------------------------------------------- fusion fallback
# The exact expectations (division by zero, MIN / -1, square roots, saturating
# conversions, flags, popall, jexc, dssave, dsderef, fpow, trap arguments) are
# written once for every backend in tests/vm/test_semantics.py.

def run_one(*code, regs=None, dispatch=None, **kw):
    """Run a program (built with support.builders.build) on the compiled core; returns (core, status)."""
    core = Core(build(*code, **kw), CONFIG, dispatch=dispatch)
    for index, (bits, tag) in (regs or {}).items():
        core.set_reg(index, bits, tag)
    return core, core.run()


def reg(core, index):
    return core.get_reg(index)


def test_unfused_fallback_does_the_movr_then_traps_at_the_second_instruction():
    core, status = run_one(("movr", 1, 2), ("fmul", 1, 3), ("halt",), regs={2: (4, U), 3: (fb(1.0), F)})
    assert status == Status.TRAP and core.trap_ip == 3 and core.trap_kind == TrapKind.TYPE_MISMATCH
    assert reg(core, 1) == (4, U)
