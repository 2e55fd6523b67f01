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
