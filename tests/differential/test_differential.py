"""Differential test: random valid programs on the compiled core and the pure-Python reference.

Hypothesis generates programs from the ISA table (voxvm.isa): straight-line
code and loops whose jumps land on instruction starts, calls through a
function table, pushes and pops, data items of every type (const or not) for
the data-segment instructions, interesting integers and floats (zeros, MIN,
MAX, NaN, infinities, subnormals), occasional bad registers, bad function
indices and bad exception numbers. Each program runs on
``voxvm.backends.reference.core.PyCore`` and on ``voxvm.backends.compiled._core.Core`` with every compiled dispatch
loop (computed goto, switch, and the counting loop that decodes without
fusion), a few branch-budget slices at a time; after every slice the status,
trap, native-call fields, ip, flags, registers, tags, data stack, call stack,
pending exceptions, main memory and heap blocks must be equal. One test adds
the heap family to the generated programs.
"""

from __future__ import annotations

import math
import struct

import pytest

from support.configs import CONFIG as _BASE_CONFIG
from support.machines import compiled, differences, dispatches, state

from hypothesis import HealthCheck, given, settings, target
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st

from voxvm.backends import Status
from voxvm.isa import BY_MNEMONIC, OPS, Flag, Operand, encode
from voxvm.program import Program
from voxvm.backends.reference.core import PyCore

core_module = compiled()          # skips the module only in a pure-Python install
Core = core_module.Core
DISPATCHES = dispatches()

MASK = (1 << 64) - 1

# The search steers toward programs that run long (target() below); with a 1 GiB heap
# ceiling it found ones whose every collection walks tens of MB in the reference
# backend's Python collector, minutes per example. 4 MiB keeps growth, faults and
# collections in reach and every example fast.
CONFIG = _BASE_CONFIG._replace(max_heap=4 << 20)


def _bits(x: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", x))[0]


INTERESTING_INTS = [0, 1, 2, 3, 5, 7, 8, 9, 16, 31, 63, 64, 65, 100, 255, 1 << 31, (1 << 32) - 1, 1 << 32,
                    (1 << 63) - 1, 1 << 63, (1 << 63) + 1, MASK, MASK - 1, MASK - 7]
INTERESTING_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 2.0, 3.0, 4.0, 1e-10, 2e-10, -1e-10,
                      1e300, -1e300, 1e-320, math.inf, -math.inf, math.nan, 2.0 ** 63, 2.0 ** 64,
                      -(2.0 ** 63), 1e20, 123.456]

# Weighted by repetition: values come from a few registers so that they
# interact; a register byte >= 32 (a decode trap) is rare.
REGISTERS = st.sampled_from([1, 2, 3, 4] * 40 + [0, 5, 6, 30, 31] * 8 + [32, 200])
INT_IMMEDIATES = st.one_of(st.sampled_from(INTERESTING_INTS), st.integers(0, MASK))
FLOAT_IMMEDIATES = st.one_of(st.sampled_from([_bits(x) for x in INTERESTING_FLOATS]),
                             st.floats(allow_nan=True).map(_bits), st.integers(0, MASK))
OFFSETS = st.sampled_from([0, 0, 8, 8, 16, 1, 7, 9, 24, 100, MASK, MASK - 8])

# Mnemonics the generator uses, with weights; ncall stops the loop with NCALL
# on both sides (the natives themselves are not run here).
_HEAP = {op.mnemonic for op in OPS if Flag.HEAP in op.flags}
_WEIGHTS = {"movr": 4, "jmp": 2, "jz": 2, "jnz": 2, "jl": 2, "jg": 2, "jge": 2, "jle": 2,
            "ucmp": 4, "icmp": 3, "fcmp": 3, "uinc": 3, "udec": 3, "uadd": 3, "iadd": 2, "fadd": 3,
            "fmul": 3, "fsub": 2, "usub": 3, "umul": 2, "call": 2, "ret": 2, "push": 4, "pop": 2,
            "dslea": 2, "dsload": 2, "dssave": 2, "dsrload": 2, "dsrsave": 2, "pushall": 2, "popall": 2,
            "halt": 1}
# A program has a theme: the loads it mostly uses, so that its arithmetic
# mostly meets equal tags (mixed tags still occur and must trap alike).
THEMES = {"uint": {"uload": 12, "iload": 2, "fload": 2}, "int": {"uload": 3, "iload": 12, "fload": 2},
          "float": {"uload": 3, "iload": 2, "fload": 12}, "mixed": {"uload": 6, "iload": 6, "fload": 6}}
# ... and leaves out the instructions that would trap on its type at once.
_BITWISE = ("and", "or", "xor", "not", "test", "shl", "shr")
_OFF_THEME = {"uint": ("iinc", "idec", "finc", "fdec"), "int": ("uinc", "udec", "finc", "fdec") + _BITWISE,
              "float": ("uinc", "udec", "iinc", "idec") + _BITWISE, "mixed": ()}


def _mnemonics(with_heap: bool, theme: str) -> list[str]:
    weights = {**_WEIGHTS, **THEMES[theme], **{name: 0 for name in _OFF_THEME[theme]}}
    names = []
    for op in OPS:
        if op.mnemonic in _HEAP and not with_heap:
            continue
        names += [op.mnemonic] * weights.get(op.mnemonic, 1)
    return names


_PROLOGUE = {"uint": "uload", "int": "iload", "float": "fload"}


@st.composite
def data_items(draw) -> bytes:
    """One data-segment item (upstream.md §1.6), sometimes const, sometimes with an odd type byte."""
    kind = draw(st.sampled_from([1, 2, 3, 4, 6, 7, 8, 1, 6, 0, 5, 9]))
    if kind in (1, 2, 6, 7, 0, 5, 9):
        count = 1 if kind in (1, 2) else draw(st.integers(0, 4))
        payload = b"".join(draw(INT_IMMEDIATES).to_bytes(8, "big") for _ in range(count))
    elif kind in (3, 8):
        count = 1 if kind == 3 else draw(st.integers(0, 4))
        payload = b"".join(draw(FLOAT_IMMEDIATES).to_bytes(8, "big") for _ in range(count))
    else:
        payload = draw(st.text(max_size=6)).encode("utf-16-be", "surrogatepass")
    const = draw(st.sampled_from([False, False, False, True]))
    return bytes([kind | (0x10 if const else 0)]) + len(payload).to_bytes(8, "big") + payload


@st.composite
def programs(draw, with_heap: bool = False) -> Program:
    items = draw(st.lists(data_items(), max_size=4))
    count = draw(st.integers(1, 24))
    theme = draw(st.sampled_from(sorted(THEMES)))
    names = _mnemonics(with_heap, theme)
    code = []
    for register in (1, 2, 3, 4):  # start from values of the theme's type
        load = BY_MNEMONIC[_PROLOGUE.get(theme) or draw(st.sampled_from(sorted(_PROLOGUE.values())))]
        value = draw(FLOAT_IMMEDIATES if load.mnemonic == "fload" else INT_IMMEDIATES)
        code.append((load, [("lit", register), ("lit", value)]))
    count += len(code)
    for _ in range(count - len(code)):
        op = BY_MNEMONIC[draw(st.sampled_from(names))]
        operands = []
        for kind in op.operands:
            if kind is Operand.REG:
                operands.append(("lit", draw(REGISTERS)))
            elif kind in (Operand.IMM_U64, Operand.IMM_I64):
                operands.append(("lit", draw(INT_IMMEDIATES)))
            elif kind is Operand.IMM_F64:
                operands.append(("lit", draw(FLOAT_IMMEDIATES)))
            elif kind is Operand.IMM16:
                operands.append(("lit", draw(st.sampled_from([1, 2, 0x7777]))))
            elif kind is Operand.ADDR:
                if draw(st.integers(0, 19)):
                    operands.append(("label", draw(st.integers(4, count))))
                else:
                    operands.append(("lit", draw(INT_IMMEDIATES)))
            elif kind is Operand.FUNC:
                operands.append(("lit", draw(st.integers(0, 4))))
            elif kind is Operand.EXC:
                operands.append(("lit", draw(st.integers(0, 12))))
            else:  # DITEM: an item's offset; DADDR: a byte offset
                if kind is Operand.DITEM and items and draw(st.integers(0, 9)):
                    operands.append(("item", draw(st.integers(0, len(items) - 1))))
                else:
                    operands.append(("lit", draw(OFFSETS)))
        code.append((op, operands))
    code.append((BY_MNEMONIC["halt"], []))
    functions = draw(st.lists(st.integers(4, count), max_size=3))
    return _layout(code, items, functions)


def _layout(code, items, functions) -> Program:
    starts, address = [], 0
    for op, _ in code:
        starts.append(address)
        address += op.size
    item_offsets, position = [], 0
    for blob in items:
        item_offsets.append(position)
        position += len(blob)
    image = bytearray()
    for op, operands in code:
        values = []
        for kind, value in operands:
            if kind == "label":
                value = starts[value]
            elif kind == "item":
                value = item_offsets[value]
            values.append(value & MASK)
        image += encode(op, values)
    data_base = len(image)
    for blob in items:
        image += blob
    return Program(image=bytes(image), entry=0, data_base=data_base,
                   functions=tuple(starts[f] for f in functions))


def _reference_states(program: Program, budget: int, slices: int) -> list[dict]:
    core = PyCore(program, CONFIG)
    states = []
    for _ in range(slices):
        status = core.run(budget)
        states.append(state(core, status))
        if status in (Status.HALT, Status.TRAP):
            break
    return states


def check_program(program: Program, budget: int, slices: int = 6) -> None:
    expected = _reference_states(program, budget, slices)
    if currently_in_test_context():
        # Steer the search toward programs that run longer before they stop.
        counter = Core(program, CONFIG, dispatch="count")
        for _ in range(len(expected)):
            counter.run(budget)
        target(float(counter.executed), label="instructions executed")
    for dispatch in DISPATCHES:
        core = Core(program, CONFIG, dispatch=dispatch)
        for number, reference in enumerate(expected):
            status = core.run(budget)
            got = state(core, status)
            assert got == reference, (f"dispatch={dispatch}, slice {number}: "
                                      f"{differences(got, reference)}\nimage={program.image.hex()} "
                                      f"data_base={program.data_base} functions={program.functions}")


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(program=programs(), budget=st.sampled_from([1, 2, 3, 7, 25, 60]))
def test_random_programs_agree(program, budget):
    check_program(program, budget)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_programs_with_heap_agree(data):
    check_program(data.draw(programs(with_heap=True)), data.draw(st.sampled_from([3, 25, 60])))


def test_counted_loop_agrees_to_the_end():
    """A long loop through every fused pair, run to completion on all loops."""
    from support.builders import build

    program = build(
        ("uload", 1, 0), ("uload", 2, 0), ("uload", 3, 300), ("fload", 4, 0.0), ("fload", 5, 0.25),
        "top:",
        ("movr", 6, 2), ("uadd", 6, 1),          # movr + uadd
        ("movr", 7, 4), ("fmul", 7, 5),          # movr + fmul
        ("fadd", 4, 5),
        ("uadd", 1, 2),
        ("ucmp", 1, 3), ("jg", "@skip"),         # cmp + jcc
        ("udec", 3), ("jnz", "@skip"),           # udec + jnz
        "skip:",
        ("uinc", 2), ("ucmp", 2, 3), ("jl", "@top"),   # uinc + cmp + jcc
        ("halt",))
    check_program(program, budget=-1, slices=1)
    check_program(program, budget=7, slices=200)


# Field accesses (csrc/vv_core.h "Field accesses"): uadd p x or movr p s + uadd p x, then a
# load or store through p, one slot on the fused loops. Every way off the fast path
# (no pointer map yet, a fault, a count other than 8, a bad load type, an operand that
# is not uint64 or address + uint64, registers shared with p) must leave the state
# the unfused instructions leave.
_FIELD_SETUP = (
    ("uload", 8, 8), ("uload", 9, 1), ("uload", 5, 16), ("uload", 12, 4),
    ("alloc", 1, 32),                           # A: four fields (no store after: not fused with alloc)
    ("uload", 3, 0),
    ("alloc", 2, 16),                           # B
    ("uload", 3, 0),
    ("movr", 4, 1), ("uadd", 4, 8), ("store", 4, 2, 8),     # A.f1 = B: the map's first pointer
    ("movr", 4, 1), ("uadd", 4, 5), ("store", 4, 2, 8),     # A.f2 = B: the fast path
    ("uadd", 4, 8), ("store", 4, 9, 8),                     # A.f3 = 1
    ("movr", 4, 1), ("uadd", 4, 8), ("store", 4, 4, 8),     # A.f1 = &A.f1 (v == p)
    ("movr", 4, 1), ("uadd", 4, 8), ("store", 4, 9, 8),     # A.f1 = 1: forgets the pointer
    ("movr", 4, 1), ("uadd", 4, 5), ("load", 8, 7, 4, 8),   # r7 = A.f2 (an address)
    ("uadd", 4, 8), ("load", 9, 10, 4, 8),                  # r10 = A.f3
    ("movr", 6, 1), ("uadd", 6, 5), ("load", 9, 11, 6, 12),  # count 4
    ("uadd", 6, 12), ("store", 6, 9, 12),                   # count 4
    ("movr", 6, 7), ("uadd", 6, 8), ("load", 9, 13, 6, 8),  # B.f1 (still 0)
    ("movr", 4, 1), ("uadd", 4, 5), ("uadd", 4, 5), ("load", 9, 14, 4, 8),   # A + 32: HeapReadFault
    ("uadd", 4, 8), ("store", 4, 9, 8),                     # A + 40: HeapWriteFault
    ("movr", 4, 1), ("uadd", 4, 5), ("store", 4, 4, 5),     # a count of 16 (clamped to 8)
    ("uload", 15, 0), ("movr", 4, 15), ("uadd", 4, 8), ("load", 9, 16, 4, 8),   # null + 8: a fault
    ("movr", 17, 1), ("uadd", 17, 17), ("load", 9, 18, 17, 8),   # x == p: 2A, outside
    ("uload", 20, 3), ("movr", 6, 1), ("uadd", 6, 8), ("load", 20, 21, 6, 8),  # a float load
)
_FIELD_TAILS = {
    "halt": (("halt",),),
    "bad load type": (("uload", 24, 5), ("movr", 6, 1), ("uadd", 6, 8), ("load", 24, 25, 6, 8), ("halt",)),
    "address + int64": (("iload", 22, 8), ("movr", 6, 1), ("uadd", 6, 22), ("load", 9, 23, 6, 8), ("halt",)),
    "load type p": (("movr", 6, 1), ("uadd", 6, 8), ("load", 6, 19, 6, 8), ("halt",)),   # t == p
    "uadd mismatch": (("fload", 26, 1.5), ("uadd", 26, 8), ("load", 9, 27, 26, 8), ("halt",)),
    "movr+uadd mismatch": (("fload", 26, 1.5), ("movr", 6, 26), ("uadd", 6, 8),
                           ("store", 6, 9, 8), ("halt",)),
}


@pytest.mark.parametrize("tail", sorted(_FIELD_TAILS))
def test_field_access_fusions_agree(tail):
    from support.builders import build

    program = build(*_FIELD_SETUP, *_FIELD_TAILS[tail])
    check_program(program, budget=-1, slices=1)


def test_field_accesses_under_collection_agree():
    """The alloc benchmark's loop in small (tools/bench/alloc.vvs): fused field accesses
    between collections. Every pointer is stored by a fused slot, so an object kept
    alive only by a pointer the fast path failed to record would be collected."""
    from support.builders import build

    program = build(
        ("uload", 10, 3000), ("uload", 8, 8), ("uload", 9, 1), ("uload", 11, 256),
        ("allocr", 12, 11), ("alloc", 13, 16), ("uload", 14, 0), ("uload", 15, 0), ("uload", 16, 0),
        ("uload", 20, 0),
        "loop:",
        ("alloc", 17, 16), ("store", 17, 14, 8),
        ("movr", 3, 13), ("uadd", 3, 8), ("store", 3, 17, 8),
        ("movr", 13, 17),
        ("movr", 3, 12), ("uadd", 3, 15), ("load", 8, 4, 3, 8),
        ("ucmp", 4, 20), ("jz", "@empty"),
        ("uadd", 4, 8), ("load", 8, 5, 4, 8),
        ("load", 9, 6, 5, 8), ("uadd", 16, 6),
        "empty:",
        ("movr", 3, 12), ("movr", 7, 7), ("uadd", 3, 15), ("store", 3, 17, 8),   # uadd + store
        ("uadd", 15, 8), ("ucmp", 15, 11), ("jl", "@same"),
        ("uload", 15, 0),
        "same:",
        ("uinc", 14), ("ucmp", 14, 10), ("jl", "@loop"),
        ("halt",))
    check_program(program, budget=-1, slices=1)
    check_program(program, budget=700, slices=30)


_STEP_TAILS = {
    "halt": (("halt",),),
    "uadd mismatch": (("fload", 7, 2.5), ("uadd", 7, 2), ("ucmp", 7, 3), ("jl", "@end"), "end:", ("halt",)),
}


@pytest.mark.parametrize("tail", sorted(_STEP_TAILS))
def test_stepped_loops_agree(tail):
    """uadd i x; ucmp i n; jcc (X_ADD_CJ): uint64 counters, a pointer walking a block
    up to its end, a bound that is not unsigned (the compare's own slow path), b == i,
    and an add that is not uint64 or address + uint64."""
    from support.builders import build

    program = build(
        ("uload", 1, 0), ("uload", 2, 3), ("uload", 3, 100), ("uload", 9, 1), ("uload", 10, 0),
        "up:",
        ("uadd", 1, 2), ("ucmp", 1, 3), ("jl", "@up"),             # i += 3 while i < 100
        ("uload", 4, 64), ("allocr", 5, 4), ("movr", 6, 5), ("uadd", 6, 4), ("uload", 8, 8),
        "walk:",
        ("store", 5, 9, 8), ("uadd", 5, 8), ("ucmp", 5, 6), ("jl", "@walk"),   # a pointer to the end
        ("iload", 11, 50), ("uload", 1, 0),
        "mixed:",
        ("uadd", 1, 2), ("ucmp", 1, 11), ("jl", "@mixed"),         # uint64 vs int64: vv_compare
        ("uadd", 1, 1), ("ucmp", 1, 1), ("jz", "@same"),           # x == i, b == i
        "same:",
        ("uadd", 10, 9), ("ucmp", 10, 3), ("jge", "@out"),         # not taken: falls through
        "out:",
        *_STEP_TAILS[tail])
    check_program(program, budget=-1, slices=1)
    check_program(program, budget=5, slices=40)
