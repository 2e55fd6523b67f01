"""Instruction semantics the conformance programs do not pin down, on every backend.

Each expectation is written once and runs on every available backend (the
``backend`` fixture of tests/conftest.py: the compiled core and the Python
reference). Tag table of semantics.md §2, the generic operation tables of
upstream.md §1.3, the flags of §1.4, saturating conversions, exact integer square
roots, shifts modulo 64, division edge cases (MIN / -1, division by zero),
jexc with all eleven exceptions, pushall/popall, the data segment, the heap
instructions, the run budget, trap arguments, and the fixed bugs of semantics.md
§3. See docs/semantics.md. The compiled core's instruction-by-instruction
matrices against the reference live in tests/compiled/test_core_matrix.py.
"""

from __future__ import annotations

import math

import pytest
from support.builders import build, f64s, fbits, item, u64s, utf16
from support.configs import config as make_config
from support.machines import call_stack, data_stack, flags, new_core, run_to_halt, run_to_trap

from voxvm.isa import Exc, Tag
from voxvm.backends.reference.core import OP_ADD, OP_MUL, OP_SUB, result_tag
from voxvm.traps import TrapKind
from voxvm.values import MASK64, f64_from_bits, to_signed

U, I, F, S, A, D = (int(t) for t in (Tag.U64, Tag.I64, Tag.F64, Tag.STR, Tag.ADDR, Tag.DS_ADDR))
ALL_TAGS = (U, I, F, S, A, D)
MIN64 = 1 << 63


def one(backend: str, mnemonic: str, *operands, regs: dict[int, tuple[int, int]] | None = None, **kw):
    """Run a single instruction (then halt) on ``backend`` with preset registers."""
    return run_to_halt(backend, (mnemonic, *operands), ("halt",), regs=regs, **kw)


def trap_of(backend: str, mnemonic: str, *operands, regs=None):
    """Run a single instruction that must trap."""
    return run_to_trap(backend, (mnemonic, *operands), ("halt",), regs=regs)


def sample(tag: int) -> int:
    """A non-zero value of each tag."""
    return fbits(6.0) if tag == F else 6


# ---------------------------------------------------------------- §1.3 result-tag table

@pytest.mark.parametrize("left", ALL_TAGS)
@pytest.mark.parametrize("right", ALL_TAGS)
@pytest.mark.parametrize("op,mnemonic", [(OP_ADD, "uadd"), (OP_SUB, "isub"), (OP_MUL, "fmul")])
def test_binary_arithmetic_tag_table(left, right, op, mnemonic, backend):
    expected = None
    if left == right:
        expected = left
    elif left in (S, A, D) and right == U:
        expected = left
    elif left == U and right in (S, A, D):
        expected = U if op == OP_SUB else right
    assert result_tag(op, left, right) == expected
    regs = {1: (sample(left), left), 2: (3 if right != F else fbits(3.0), right)}
    if expected is None:
        core = trap_of(backend, mnemonic, 1, 2, regs=regs)
        assert core.trap_kind == TrapKind.TYPE_MISMATCH
        assert core.get_reg(1) == regs[1]          # a trapping instruction has no effect
        assert core.ip == 0
    else:
        core = one(backend, mnemonic, 1, 2, regs=regs)
        assert core.get_reg(1)[1] == expected


@pytest.mark.parametrize("mnemonic", ["udiv", "idiv", "fdiv", "urem", "irem", "frem"])
@pytest.mark.parametrize("left,right,expected", [
    (U, U, U), (I, I, I), (F, F, F), (A, U, A), (U, A, U), (S, U, S), (U, D, U), (D, D, D)])
def test_division_result_tag_is_the_table_not_the_mnemonic(mnemonic, left, right, expected, backend):
    # semantics.md §2: udiv/idiv/fdiv... give the §1.3 result type, not a forced 1/2/3.
    core = one(backend, mnemonic, 3, 1, 2, regs={1: (sample(left), left),
                                        2: (fbits(4.0) if right == F else 4, right)})
    assert core.get_reg(3)[1] == expected


def test_address_arithmetic_with_uint(backend):
    core = one(backend, "uadd", 1, 2, regs={1: (5, U), 2: (0x100, A)})
    assert core.get_reg(1) == (0x105, A)          # U + X -> X
    core = one(backend, "usub", 1, 2, regs={1: (0x105, U), 2: (0x100, D)})
    assert core.get_reg(1) == (5, U)              # U - X -> U
    core = one(backend, "usub", 1, 2, regs={1: (0x105, S), 2: (5, U)})
    assert core.get_reg(1) == (0x100, S)          # X - U -> X


def test_integer_arithmetic_wraps(backend):
    assert one(backend, "uadd", 1, 2, regs={1: (MASK64, U), 2: (2, U)}).get_reg(1) == (1, U)
    assert one(backend, "imul", 1, 2, regs={1: (1 << 62, I), 2: (4, I)}).get_reg(1) == (0, I)
    assert one(backend, "usub", 1, 2, regs={1: (0, U), 2: (1, U)}).get_reg(1) == (MASK64, U)


def test_signed_division_truncates_and_remainder_has_dividend_sign(backend):
    core = one(backend, "idiv", 3, 1, 2, regs={1: (-7, I), 2: (2, I)})
    assert to_signed(core.get_reg(3)[0]) == -3
    core = one(backend, "irem", 3, 1, 2, regs={1: (-7, I), 2: (2, I)})
    assert to_signed(core.get_reg(3)[0]) == -1
    core = one(backend, "irem", 3, 1, 2, regs={1: (7, I), 2: (-2, I)})
    assert to_signed(core.get_reg(3)[0]) == 1


def test_min_divided_by_minus_one(backend):
    core = one(backend, "idiv", 3, 1, 2, regs={1: (MIN64, I), 2: (-1, I)})
    assert core.get_reg(3) == (MIN64, I)
    core = one(backend, "irem", 3, 1, 2, regs={1: (MIN64, I), 2: (-1, I)})
    assert core.get_reg(3) == (0, I)
    assert core.pending() == {}


@pytest.mark.parametrize("mnemonic", ["udiv", "urem", "idiv", "irem", "fdiv", "frem"])
@pytest.mark.parametrize("tag", [U, I, A])
def test_integer_division_by_zero_raises_and_keeps_destination(mnemonic, tag, backend):
    core = one(backend, mnemonic, 3, 1, 2, regs={1: (10, tag), 2: (0, tag), 3: (555, U)})
    assert core.get_reg(3) == (555, U)
    assert core.pending() == {Exc.ZeroDivision: 1}
    assert core.ip == 4                            # advanced to the halt


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_fdiv_by_float_zero_raises_before_the_type_check(zero, backend):
    core = one(backend, "fdiv", 3, 1, 2, regs={1: (1, I), 2: (fbits(zero), F), 3: (7, U)})
    assert core.get_reg(3) == (7, U)
    assert core.pending() == {Exc.ZeroDivision: 1}


def test_other_float_divisions_by_zero_are_ieee(backend):
    core = one(backend, "udiv", 3, 1, 2, regs={1: (fbits(-1.0), F), 2: (fbits(0.0), F)})
    assert f64_from_bits(core.get_reg(3)[0]) == -math.inf
    assert core.pending() == {}
    core = one(backend, "idiv", 3, 1, 2, regs={1: (fbits(0.0), F), 2: (fbits(0.0), F)})
    assert math.isnan(f64_from_bits(core.get_reg(3)[0]))
    for mnemonic in ("frem", "urem", "irem"):
        core = one(backend, mnemonic, 3, 1, 2, regs={1: (fbits(5.0), F), 2: (fbits(0.0), F)})
        assert math.isnan(f64_from_bits(core.get_reg(3)[0])), mnemonic
        assert core.pending() == {}


def test_frem_is_fmod(backend):
    core = one(backend, "frem", 3, 1, 2, regs={1: (fbits(-7.5), F), 2: (fbits(2.0), F)})
    assert f64_from_bits(core.get_reg(3)[0]) == -1.5


def test_division_type_check_comes_before_the_zero_check(backend):
    core = trap_of(backend, "udiv", 3, 1, 2, regs={1: (1, U), 2: (0, I)})
    assert core.trap_kind == TrapKind.TYPE_MISMATCH
    assert core.pending() == {}


# ---------------------------------------------------------------- bitwise, shifts

@pytest.mark.parametrize("mnemonic", ["or", "and", "xor"])
def test_bitwise_result_tag_is_the_table_not_the_source(mnemonic, backend):
    # Upstream copies the source's tag; semantics.md §2 takes the §1.3 table's.
    core = one(backend, mnemonic, 1, 2, regs={1: (0xF0, A), 2: (0x0F, U)})
    assert core.get_reg(1)[1] == A
    core = one(backend, mnemonic, 1, 2, regs={1: (0xF0, U), 2: (0x0F, A)})
    assert core.get_reg(1)[1] == A


@pytest.mark.parametrize("mnemonic", ["or", "and", "xor", "test"])
def test_bitwise_on_floats_traps(mnemonic, backend):
    core = trap_of(backend, mnemonic, 1, 2, regs={1: (fbits(1.0), F), 2: (fbits(1.0), F)})
    assert core.trap_kind == TrapKind.TYPE_MISMATCH


def test_not_and_lnot(backend):
    assert one(backend, "not", 1, 2, regs={2: (0, I)}).get_reg(1) == (MASK64, I)
    assert trap_of(backend, "not", 1, 2, regs={2: (fbits(1.0), F)}).trap_kind == TrapKind.TYPE_MISMATCH
    core = one(backend, "lnot", 1, 2, regs={2: (fbits(-0.0), F)})
    assert core.get_reg(1) == (fbits(1.0), F) and flags(core)[1] == 0
    core = one(backend, "lnot", 1, 2, regs={2: (5, D)})
    assert core.get_reg(1) == (0, D) and flags(core)[1] == 1


@pytest.mark.parametrize("amount", [1, 65, 129])
def test_shift_amount_is_modulo_64(amount, backend):
    assert one(backend, "shl", 1, 2, regs={1: (3, U), 2: (amount, U)}).get_reg(1) == (6, U)


def test_shift_right_is_arithmetic_for_int_only(backend):
    assert one(backend, "shr", 1, 2, regs={1: (-8, I), 2: (1, U)}).get_reg(1) == ((-4) & MASK64, I)
    assert one(backend, "shr", 1, 2, regs={1: (-8, U), 2: (1, U)}).get_reg(1) == ((MASK64 - 7) >> 1, U)
    assert one(backend, "shl", 1, 2, regs={1: (1, A), 2: (4, U)}).get_reg(1) == (16, A)


@pytest.mark.parametrize("value_tag,amount_tag", [(F, U), (U, I), (I, I), (U, A), (U, F)])
def test_bad_shift_operands_trap(value_tag, amount_tag, backend):
    core = trap_of(backend, "shl", 1, 2, regs={1: (sample(value_tag), value_tag), 2: (1, amount_tag)})
    assert core.trap_kind == TrapKind.TYPE_MISMATCH


# ---------------------------------------------------------------- compares and flags

@pytest.mark.parametrize("left", ALL_TAGS)
@pytest.mark.parametrize("right", ALL_TAGS)
def test_compare_table(left, right, backend):
    lv = fbits(1.0) if left == F else 1
    rv = fbits(2.0) if right == F else 2
    core = one(backend, "ucmp", 1, 2, regs={1: (lv, left), 2: (rv, right)})
    ordered = left == right or (U in (left, right) and {left, right} <= {U, S, A, D})
    assert (flags(core)[1], flags(core)[2]) == ((0, 1) if ordered else (0, 0))


def test_compare_signed_unsigned_and_nan(backend):
    assert flags(one(backend, "icmp", 1, 2, regs={1: (-1, I), 2: (1, I)}))[1:3] == [0, 1]
    assert flags(one(backend, "fcmp", 1, 2, regs={1: (-1, U), 2: (1, U)}))[1:3] == [0, 0]
    nan = fbits(math.nan)
    assert flags(one(backend, "fcmp", 1, 2, regs={1: (nan, F), 2: (nan, F)}))[1:3] == [0, 0]
    assert flags(one(backend, "fcmp", 1, 2, regs={1: (fbits(-0.0), F), 2: (fbits(0.0), F)}))[1:3] == [1, 0]


def test_usub_sets_zf_typed_but_isub_sets_nothing(backend):
    assert flags(one(backend, "usub", 1, 2, regs={1: (4, U), 2: (4, U)}))[1] == 1
    assert flags(one(backend, "usub", 1, 2, regs={1: (4, I), 2: (4, I)}))[1] == 0   # I(0) != U(0)
    core = one(backend, "isub", 1, 2, regs={1: (4, I), 2: (4, I)})
    assert flags(core) == [0, 0, 0, 0]


def test_uinc_writes_of_not_zf(backend):
    core = one(backend, "uinc", 1, regs={1: (MASK64, U)})
    assert core.get_reg(1) == (0, U)
    assert flags(core) == [1, 0, 0, 0]
    core = one(backend, "udec", 1, regs={1: (1, A)})
    assert core.get_reg(1) == (0, A) and flags(core)[1] == 1


@pytest.mark.parametrize("mnemonic,tag", [("uinc", I), ("uinc", F), ("iinc", U), ("idec", F),
                                          ("finc", U), ("fdec", I)])
def test_inc_dec_need_their_type(mnemonic, tag, backend):
    assert trap_of(backend, mnemonic, 1, regs={1: (sample(tag), tag)}).trap_kind == TrapKind.TYPE_MISMATCH


def test_signed_and_float_flag_writers(backend):
    core = one(backend, "iinc", 1, regs={1: (-2, I)})
    assert to_signed(core.get_reg(1)[0]) == -1 and flags(core)[1:3] == [0, 1]
    core = one(backend, "idec", 1, regs={1: (1, I)})
    assert flags(core)[1:3] == [1, 0]
    core = one(backend, "fdec", 1, regs={1: (fbits(0.5), F)})
    assert f64_from_bits(core.get_reg(1)[0]) == -0.5 and flags(core)[1:3] == [0, 1]
    core = one(backend, "ipow", 1, 2, regs={1: (-2, I), 2: (3, U)})
    assert to_signed(core.get_reg(1)[0]) == -8 and flags(core)[1:3] == [0, 1]


def test_fcmp_eps(backend):
    core = one(backend, "fcmp_eps", 1, 2, regs={1: (fbits(1.0), F), 2: (fbits(1.0 + 1e-12), F)})
    assert flags(core)[1:3] == [1, 0]
    core = one(backend, "fcmp_eps", 1, 2, regs={1: (fbits(1.0), F), 2: (fbits(2.0), F)})
    assert flags(core)[1:3] == [0, 1]
    core = one(backend, "fcmp_eps", 1, 2, regs={1: (5, U), 2: (5, U)})
    assert flags(core)[1:3] == [1, 0]                 # |as_f64(U(0))| < eps; NF needs a float
    assert trap_of(backend, "fcmp_eps", 1, 2, regs={1: (1, U), 2: (fbits(1.0), F)}).trap_kind \
        == TrapKind.TYPE_MISMATCH


def test_flags_persist_across_unrelated_instructions(backend):
    core = run_to_halt(backend, ("uload", 1, 0), ("uload", 2, 0), ("usub", 1, 2),   # ZF = 1
                       ("uadd", 1, 2), ("iload", 3, -1), ("movr", 4, 3), ("push", 4), ("pop", 5),
                       ("fload", 6, 2.0), ("fmul", 6, 6), ("halt",))
    assert flags(core)[1] == 1


# ---------------------------------------------------------------- unary results and tags

def test_ineg_and_fneg_convert(backend):
    core = one(backend, "ineg", 1, 2, regs={2: (5, U)})
    assert core.get_reg(1) == ((-5) & MASK64, I) and flags(core)[1:3] == [0, 1]
    core = one(backend, "ineg", 1, 2, regs={2: (MIN64, I)})
    assert core.get_reg(1) == (MIN64, I)
    core = one(backend, "fneg", 1, 2, regs={2: (-3, I)})
    assert core.get_reg(1) == (fbits(3.0), F)
    core = one(backend, "fneg", 1, 2, regs={2: (fbits(0.0), F)})
    assert core.get_reg(1) == (fbits(-0.0), F) and flags(core)[1:3] == [1, 0]


def test_pow_tags_and_wrapping(backend):
    assert one(backend, "upow", 1, 2, regs={1: (fbits(3.0), F), 2: (3, U)}).get_reg(1) == (27, U)
    assert one(backend, "upow", 1, 2, regs={1: (2, U), 2: (64, U)}).get_reg(1) == (0, U)
    assert one(backend, "upow", 1, 2, regs={1: (2, U), 2: ((1 << 32) + 3, U)}).get_reg(1) == (8, U)
    assert one(backend, "ipow", 1, 2, regs={1: (fbits(-3.0), F), 2: (3, I)}).get_reg(1) == ((-27) & MASK64, I)
    assert one(backend, "upow", 1, 2, regs={1: (0, U), 2: (0, U)}).get_reg(1) == (1, U)


def test_abs_and_sqrt(backend):
    assert one(backend, "iabs", 1, 2, regs={2: (MIN64, I)}).get_reg(1) == (MIN64, I)
    assert one(backend, "iabs", 1, 2, regs={2: (fbits(-2.7), F)}).get_reg(1) == (2, I)
    assert one(backend, "usqrt", 1, 2, regs={2: (MASK64, U)}).get_reg(1) == (4294967295, U)
    assert one(backend, "isqrt", 1, 2, regs={2: (fbits(-0.5), F)}).get_reg(1) == (0, I)
    core = one(backend, "isqrt", 1, 2, regs={1: (9, U), 2: (-4, I)})
    assert core.get_reg(1) == (9, U) and core.pending() == {Exc.NegativeSqrt: 1}
    assert trap_of(backend, "isqrt", 1, 2, regs={2: (MIN64, U)}).trap_kind == TrapKind.NEGATIVE_ISQRT
    core = one(backend, "fsqrt", 1, 2, regs={1: (9, U), 2: (fbits(-4.0), F)})
    assert core.get_reg(1) == (9, U) and core.pending() == {Exc.NegativeSqrt: 1}
    core = one(backend, "fsqrt", 1, 2, regs={2: (-4, I)})
    assert math.isnan(f64_from_bits(core.get_reg(1)[0])) and core.pending() == {}
    core = one(backend, "fabs", 1, 2, regs={2: (-3, I)})
    assert core.get_reg(1) == (fbits(3.0), F)


@pytest.mark.parametrize("x,y,expected", [(0.0, -1.0, math.inf), (-0.0, -1.0, -math.inf),
                                          (-8.0, 1 / 3, math.nan), (10.0, 400.0, math.inf),
                                          (-10.0, 401.0, -math.inf), (2.0, 0.5, math.sqrt(2))])
def test_fpow_is_c_pow_and_silent(x, y, expected, backend, capfd):
    core = one(backend, "fpow", 1, 2, regs={1: (fbits(x), F), 2: (fbits(y), F)})
    got = f64_from_bits(core.get_reg(1)[0])
    assert (math.isnan(got) and math.isnan(expected)) or got == expected
    assert capfd.readouterr() == ("", "")           # no libm message on either stream


MAX64 = MIN64 - 1


@pytest.mark.parametrize("value", [0, 1, 2, 3, 4, 15, 16, 17, (1 << 32) - 1, 1 << 32, (1 << 52) + 1,
                                   ((1 << 32) - 1) ** 2, ((1 << 32) - 1) ** 2 - 1, MAX64, MIN64,
                                   MASK64 - 1, MASK64])
def test_exact_integer_square_roots(value, backend):
    assert one(backend, "usqrt", 2, 1, regs={1: (value, U)}).get_reg(2) == (math.isqrt(value), U)
    if value <= MAX64:
        assert one(backend, "isqrt", 2, 1, regs={1: (value, I)}).get_reg(2) == (math.isqrt(value), I)


def test_type_mismatch_trap_arguments(backend):
    core = run_to_trap(backend, ("nop",), ("uadd", 1, 2), ("halt",), regs={1: (1, U), 2: (fbits(1.0), F)})
    assert (core.trap_kind, core.trap_ip, core.trap_a) == (TrapKind.TYPE_MISMATCH, 1, 0 << 16 | U << 8 | F)
    assert core.get_reg(1) == (1, U)               # no effect


# ---------------------------------------------------------------- conversions

@pytest.mark.parametrize("x,as_u,as_i", [
    (-1.5, 0, -1), (1e300, MASK64, (1 << 63) - 1), (-1e300, 0, MIN64), (math.nan, 0, 0),
    (2.9, 2, 2), (18446744073709551616.0, MASK64, (1 << 63) - 1), (-0.0, 0, 0),
    (1.9, 1, 1), (2.0 ** 63, MIN64, (1 << 63) - 1), (-(2.0 ** 63), 0, MIN64)])
def test_float_to_integer_conversions_saturate(x, as_u, as_i, backend):
    assert one(backend, "ftou", 1, 2, regs={2: (fbits(x), F)}).get_reg(1) == (as_u, U)
    assert one(backend, "ftoi", 1, 2, regs={2: (fbits(x), F)}).get_reg(1) == (as_i & MASK64, I)
    assert one(backend, "ptou", 1, 2, regs={2: (fbits(x), F)}).get_reg(1) == (as_u, U)


def test_integer_conversions_reinterpret_bits(backend):
    assert one(backend, "utoi", 1, 2, regs={2: (MASK64, U)}).get_reg(1) == (MASK64, I)
    assert one(backend, "itou", 1, 2, regs={2: (-1, I)}).get_reg(1) == (MASK64, U)
    assert one(backend, "itou", 1, 2, regs={2: (fbits(-3.5), F)}).get_reg(1) == ((-3) & MASK64, U)
    assert one(backend, "utof", 1, 2, regs={2: (MASK64, U)}).get_reg(1) == (fbits(18446744073709551616.0), F)
    assert one(backend, "utof", 1, 2, regs={2: ((1 << 53) + 1, U)}).get_reg(1) == (fbits(2.0 ** 53), F)
    assert one(backend, "itof", 1, 2, regs={2: (-1, U)}).get_reg(1) == (fbits(-1.0), F)
    assert one(backend, "ftoi", 1, 2, regs={2: (MASK64, U)}).get_reg(1) == ((1 << 63) - 1, I)
    assert one(backend, "utop", 1, 2, regs={2: (-1, I)}).get_reg(1) == (MASK64, A)


# ---------------------------------------------------------------- data segment

DATA = {
    "u": item(1, u64s(7)), "i": item(2, u64s(-5)), "f": item(3, f64s(2.5)),
    "s": item(4, utf16("hey")), "ua": item(6, u64s(10, 11)), "ia": item(7, u64s(-9, 1)),
    "fa": item(8, f64s(0.75, 8.5)), "c": item(2, u64s(-1), const=True),
    "cs": item(4, utf16("k"), const=True),
}


@pytest.mark.parametrize("name,tag,value", [
    ("u", U, 7), ("i", I, -5 & MASK64), ("f", F, fbits(2.5)), ("ua", U, 10), ("ia", I, -9 & MASK64),
    ("fa", F, fbits(0.75)), ("c", I, MASK64)])
def test_dsderef_gives_the_items_own_type(name, tag, value, backend):
    core = run_to_halt(backend, ("dslea", 4, f"%{name}", 0), ("dsderef", 4, 1, 0), ("halt",), data=DATA)
    assert core.get_reg(4)[1] == D
    assert core.get_reg(1) == (value, tag)
    core = run_to_halt(backend, ("uload", 6, 0), ("dsrlea", 4, 6, f"%{name}"), ("uload", 7, 3),
                       ("uadd", 4, 7), ("dsrderef", 4, 1, 7), ("halt",), data=DATA)
    assert core.get_reg(1) == (value, tag)


@pytest.mark.parametrize("name", ["s", "cs"])
def test_dsderef_of_a_string_gives_its_payload_address(name, backend):
    core = run_to_halt(backend, ("dslea", 4, f"%{name}", 0), ("dsderef", 4, 1, 0),
                       ("dsload", 2, f"%{name}", 0), ("halt",), data=DATA)
    assert core.get_reg(1)[1] == S
    assert core.get_reg(1) == core.get_reg(2)


def test_dsload_reads_array_elements_by_byte_offset(backend):
    core = run_to_halt(backend, ("dsload", 1, "%ia", 8), ("uload", 5, 8), ("dsrload", 2, 5, "%fa"),
                       ("halt",), data=DATA)
    assert core.get_reg(1) == (1, I)
    assert core.get_reg(2) == (fbits(8.5), F)


def test_dssave_inside_outside_and_const(backend):
    core = run_to_halt(backend, ("iload", 1, -42), ("dssave", 1, "%ua", 8), ("dsload", 2, "%ua", 8),
                       ("dssave", 1, "%ua", 9), ("uload", 3, 16), ("dsrsave", 1, 3, "%ua"),
                       ("halt",), data=DATA)
    assert core.get_reg(2) == ((-42) & MASK64, U)   # the item type gives the load type
    assert core.pending() == {Exc.MainSegmFault: 2}
    program = build(("uload", 1, 1), ("dssave", 1, "%c", 0), ("halt",), data=DATA)
    core = new_core(backend, program, make_config())
    before = core.memory()
    assert core.run() == 1
    assert core.trap_kind == TrapKind.CONST_WRITE and core.trap_ip == 10
    assert core.memory() == before


def test_dssave_writes_inside_the_payload_only(backend):
    data = {"arr": item(6, u64s(1, 2))}
    core = run_to_halt(backend, ("uload", 1, 77), ("dssave", 1, "%arr", 8), ("dssave", 1, "%arr", 9),
                       ("dssave", 1, "%arr", 16), ("dssave", 1, "%arr", MASK64), ("halt",), data=data)
    assert core.pending() == {Exc.MainSegmFault: 3}
    base = core.program.data_base
    assert core.memory()[base + 9:base + 25] == u64s(1, 77)


def test_dsderef_of_a_bad_item_type_traps_with_the_type(backend):
    core = run_to_trap(backend, ("dslea", 1, "%bad", 0), ("dsderef", 1, 2, 0), ("halt",),
                       data={"bad": item(5, u64s(1))})
    assert core.trap_kind == TrapKind.BAD_DATA_TYPE and core.trap_b == 5


def test_rewritten_code_is_decoded_again(backend):
    # The item's payload is code "uinc r1; jmp 20". It runs once, then dsrsave
    # writes a halt over it and the program jumps there again.
    payload = bytes([0x19, 1, 0x40]) + (20).to_bytes(8, "big") + bytes(5)
    program = build(("dslea", 5, "%code", 9), ("jmpr", 5),                 # 0, 18
                    ("uload", 7, 0xFF00000000000000), ("uload", 6, 0),     # 20, 30
                    ("dsrsave", 7, 6, "%code"), ("jmpr", 5),               # 40, 51
                    data={"code": item(6, payload)})
    core = new_core(backend, program, make_config())
    assert core.run(budget=50) == 0
    assert core.get_reg(1) == (1, U)
    assert core.ip == program.data_base + 9


@pytest.mark.parametrize("code,kind", [
    ((("dsload", 1, 10_000, 0),), TrapKind.DATA_OUT_OF_RANGE),
    ((("dsload", 1, "%u", 10_000),), TrapKind.DATA_OUT_OF_RANGE),
    ((("uload", 4, 0), ("dsderef", 4, 1, 0)), TrapKind.BAD_DATA_TYPE),
    ((("dsload", 1, "%bad", 0),), TrapKind.BAD_DATA_TYPE),
])
def test_data_segment_traps(code, kind, backend):
    program = build(*code, ("halt",), data={"u": item(1, u64s(1)), "bad": item(5, u64s(1))})
    core = new_core(backend, program, make_config())
    assert core.run() == 1
    assert core.trap_kind == kind


# ---------------------------------------------------------------- jumps, calls, stacks

@pytest.mark.parametrize("number", range(1, 12))
def test_jexc_handles_all_eleven(number, backend):
    def setup(core):
        core.raise_exception(number)
        core.raise_exception(number)

    core = run_to_halt(backend, ("jexc", number, "@caught"), ("halt",), "caught:", ("uload", 1, 1),
                       ("halt",), setup=setup)
    assert core.get_reg(1) == (1, U)
    assert core.pending() == {number: 1}              # jexc removes one of the two


@pytest.mark.parametrize("number", [0, 12, 255, 2**64 - 1])
def test_jexc_with_an_unknown_number_traps(number, backend):
    core = run_to_trap(backend, ("nop",), ("jexc", number, 0), ("halt",))
    assert (core.trap_kind, core.trap_ip, core.trap_a) == (TrapKind.BAD_EXCEPTION, 1, number)


def test_jexc_removes_the_first_match_only(backend):
    def setup(core):
        for number in (1, 6, 2, 6):
            core.raise_exception(number)

    core = run_to_halt(backend, ("jexc", 6, "@x"), "x:", ("halt",), setup=setup)
    assert core.pending() == {1: 1, 2: 1, 6: 1}


def test_nop_advances(backend):
    core = run_to_halt(backend, ("nop",), ("nop",), ("uload", 1, 3), ("halt",))
    assert core.get_reg(1) == (3, U) and core.ip == 12


def test_pushall_popall_keep_r0_and_skip_r31(backend):
    core = run_to_halt(backend, 
        ("uload", 0, 100), ("uload", 1, 1), ("iload", 30, -30), ("uload", 31, 31), ("pushall",),
        ("uload", 0, 7), ("uload", 1, 11), ("uload", 30, 0), ("uload", 31, 0), ("popall",),
        ("halt",))
    assert core.get_reg(0) == (7, U)               # r0 keeps the callee's value
    assert core.get_reg(1) == (1, U)
    assert core.get_reg(30) == ((-30) & MASK64, I)
    assert core.get_reg(31) == (0, U)              # r31 is neither saved nor restored
    assert data_stack(core) == []


@pytest.mark.parametrize("entries", [1, 30])
def test_popall_with_too_few_entries_traps_without_popping(entries, backend):
    core = new_core(backend, build(*[("push", 1)] * entries, ("popall",), ("halt",)), make_config())
    assert core.run() == 1 and core.trap_kind == TrapKind.STACK_UNDERFLOW
    assert len(data_stack(core)) == entries and core.trap_ip == 2 * entries


def test_gsf_usf(backend):
    core = run_to_halt(backend, ("iload", 1, -1), ("push", 1), ("fload", 2, 2.5), ("push", 2),
                       ("uload", 3, 1), ("gsf", 4, 3),                  # r4 := stack[1]
                       ("uload", 5, 0), ("uload", 6, 9), ("usf", 5, 6),   # stack[0] := r6
                       ("uload", 7, 99), ("gsf", 8, 7), ("usf", 7, 6),   # out of range: nothing
                       ("halt",))
    assert core.get_reg(4) == (fbits(2.5), F)
    assert data_stack(core) == [(9, U), (fbits(2.5), F)]
    assert core.get_reg(8) == (0, U)


def test_stack_overflow_traps(backend):
    config = make_config(max_stack=40, init_stack=40)
    core = new_core(backend, build("top:", ("push", 1), ("jmp", "@top")), config)
    assert core.run() == 1 and core.trap_kind == TrapKind.STACK_OVERFLOW
    assert len(data_stack(core)) == 40
    core = new_core(backend, build(("pushall",), ("pushall",)), config)
    assert core.run() == 1 and core.trap_kind == TrapKind.STACK_OVERFLOW
    assert len(data_stack(core)) == 31 and core.trap_ip == 1


@pytest.mark.parametrize("via", ["call", "callr"])
def test_recursion_limit_applies_to_call_and_callr(via, backend):
    body = ("call", 0) if via == "call" else ("callr", 7)
    program = build(("fnstind", 7, 0), "f:", body, ("ret",), functions=("f",))
    core = new_core(backend, program, make_config(max_recursion=5))
    assert core.run() == 1
    assert core.trap_kind == TrapKind.RECURSION_LIMIT and core.trap_a == 5
    assert len(call_stack(core)) == 5


def test_bad_function_index_and_empty_ret(backend):
    core = trap_of(backend, "callr", 1, regs={1: (3, U)})
    assert core.trap_kind == TrapKind.BAD_FUNCTION and (core.trap_a, core.trap_b) == (3, 0)
    core = trap_of(backend, "ret")
    assert core.trap_kind == TrapKind.CALL_STACK_UNDERFLOW


def test_jmpr_and_call_return_addresses(backend):
    program = build(("call", 0), ("callr", 5), ("halt",), "f:", ("uinc", 1), ("ret",),
                    functions=("f",))
    core = new_core(backend, program, make_config())
    assert core.run() == 0
    assert core.get_reg(1) == (2, U)               # f ran twice (r5 = 0 is function 0)


# ---------------------------------------------------------------- fetch traps

def test_fetch_traps_and_trap_ip(backend):
    core = new_core(backend, build(("jmp", 1000)), make_config())
    assert core.run() == 1
    assert (core.trap_kind, core.trap_ip, core.trap_a, core.trap_b) == (TrapKind.IP_OUTSIDE, 1000,
                                                                       1000, 9)
    core = new_core(backend, build(("nop",), bytes([0x00])), make_config())
    assert core.run() == 1
    assert (core.trap_kind, core.trap_ip, core.trap_a) == (TrapKind.UNKNOWN_OPCODE, 1, 0)
    core = new_core(backend, build(("nop",), bytes([0x10, 1, 0, 0])), make_config())
    assert core.run() == 1
    assert (core.trap_kind, core.trap_a, core.trap_b) == (TrapKind.TRUNCATED_INSTRUCTION, 10, 4)
    core = new_core(backend, build(("uadd", 1, 32)), make_config())
    assert core.run() == 1
    assert (core.trap_kind, core.trap_a) == (TrapKind.BAD_REGISTER, 32)


def test_ncall_register_byte_is_not_checked(backend):
    core = new_core(backend, build(("ncall", 5, 200), ("halt",)), make_config())
    assert core.run() == 2
    assert (core.ncall_code, core.ncall_ip, core.ip) == (5, 0, 4)
    assert core.run() == 0


# ---------------------------------------------------------------- heap instructions

def test_store_load_low_bytes_and_count_clamp(backend):
    core = run_to_halt(backend, 
        ("alloc", 1, 16), ("uload", 2, 0x1122334455667788), ("uload", 3, 2), ("store", 1, 2, 3),
        ("uload", 4, 1), ("load", 4, 5, 1, 3),               # 2 bytes back: 0x7788
        ("uload", 3, 0), ("store", 1, 2, 3),                 # count 0 -> 1 byte (clamp)
        ("uload", 3, 99), ("load", 4, 6, 1, 3),              # count 99 -> 8 bytes
        ("halt",))
    assert core.get_reg(5) == (0x7788, U)
    assert core.get_reg(6) == (0x8888000000000000, U)


@pytest.mark.parametrize("n", [8, 9, 16, 17, 24, 31, 32, 40, 48, 56, 63, 64, 72])
def test_alloc_then_store_zero_fills_the_rest_of_reused_memory(n, backend):
    """alloc + store of the first field (one fused slot for blocks of up to 9 granules)
    on memory that held other data: only the first word is the stored value, every
    other byte of the block is zero. A 1 KiB block filled with 0xFF and freed leaves
    dirty memory; the first alloc finds it by a search, the next ones carve what is
    left of it (the first-fit shortcut), so both ways are seen."""
    ones = 0xFFFF_FFFF_FFFF_FFFF
    core = run_to_halt(backend,
        ("uload", 8, 8), ("uload", 9, 1024), ("uload", 2, ones), ("uload", 3, 0),
        ("allocr", 1, 9),
        "fill:", ("movr", 4, 1), ("uadd", 4, 3), ("store", 4, 2, 8),
        ("uadd", 3, 8), ("ucmp", 3, 9), ("jl", "@fill"),
        ("free", 1),
        ("uload", 5, 0x0102030405060708),
        ("alloc", 10, n), ("store", 10, 5, 8),
        ("alloc", 11, n), ("store", 11, 5, 8),
        ("alloc", 12, n), ("store", 12, 5, 8),
        ("halt",))
    for r in (10, 11, 12):
        address, tag = core.get_reg(r)
        assert tag == Tag.ADDR and address != 0
        assert core.heap_read(address, n) == bytes(range(1, 9)) + bytes(n - 8)


@pytest.mark.parametrize("kind", [1, 2, 3, 4, 8, 9])
def test_load_gives_the_requested_tag(kind, backend):
    core = run_to_halt(backend, ("alloc", 1, 8), ("uload", 2, 8), ("uload", 3, kind), ("load", 3, 4, 1, 2),
                       ("halt",))
    assert core.get_reg(4) == (0, kind)


def test_load_type_is_checked_after_a_successful_read(backend):
    core = run_to_halt(backend, ("uload", 3, 5), ("uload", 2, 8), ("load", 3, 4, 1, 2), ("halt",))
    assert core.pending() == {Exc.HeapReadFault: 1}         # r1 = 0: the read fails first
    core = new_core(backend, build(("alloc", 1, 8), ("uload", 3, 5), ("uload", 2, 8), ("load", 3, 4, 1, 2)),
                  make_config())
    assert core.run() == 1
    assert (core.trap_kind, core.trap_a) == (TrapKind.BAD_LOAD_TYPE, 5)


def test_alloc_failure_gives_null_and_exception(backend):
    core = run_to_halt(backend, ("alloc", 1, 1 << 62), ("uload", 2, MASK64), ("allocr_nogc", 3, 2),
                       ("halt",))
    assert core.get_reg(1) == (0, A) and core.get_reg(3) == (0, A)
    assert core.pending() == {Exc.HeapAllocationFault: 2}


def test_heap_faults(backend):
    core = run_to_halt(backend, 
        ("alloc", 1, 8), ("uload", 2, 8), ("movr", 3, 1), ("uinc", 3),
        ("store", 3, 2, 2),                   # 8 bytes at offset 1 of an 8-byte block
        ("load", 2, 4, 3, 2),                 # read past the end
        ("free", 3),                          # interior pointer
        ("free", 1), ("free", 1),             # double free
        ("alloc", 5, 8), ("alloc", 6, 4), ("memcpy", 6, 5, 2),   # 8 bytes into 4
        ("uload", 7, 10_000), ("storedat", 5, 7, 2),             # main memory too short
        ("halt",))
    assert core.pending() == {Exc.HeapWriteFault: 1, Exc.HeapReadFault: 1, Exc.HeapFreeFault: 2, Exc.HeapSegmFault: 1, Exc.MainSegmFault: 1}


def test_dlbc_appends_and_tags_ds_addr(backend):
    code = bytes([0x10, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0xFF])   # uload r1 42; halt
    program = build(("alloc", 5, 11), ("dslea", 6, "%c", 9), ("uload", 7, 11), ("storedat", 5, 6, 7),
                    ("dlbc", 8, 5, 7), ("jmpr", 8), data={"c": item(6, code + bytes(5))})
    core = new_core(backend, program, make_config())
    assert core.run() == 0
    assert core.get_reg(8) == (len(program.image), D)
    assert core.get_reg(1) == (42, U)
    assert len(core.memory()) == len(program.image) + 11


def test_dlbc_respects_the_ram_capacity(backend):
    program = build(("alloc", 5, 64), ("uload", 7, 64), ("uload", 8, 3), ("dlbc", 8, 5, 7), ("halt",))
    core = new_core(backend, program, make_config(init_ram=len(program.image) + 10))
    assert core.run() == 0
    assert core.pending() == {Exc.MainSegmFault: 1}
    assert core.get_reg(8) == (3, U)


def test_ubd_converts_and_always_advances(backend):
    text = "añ€😀".encode()
    program = build(("alloc", 1, 16), ("uload", 2, int.from_bytes(text[:8], "big")), ("uload", 3, 8),
                    ("store", 1, 2, 3), ("movr", 4, 1), ("uadd", 4, 3),
                    ("uload", 2, int.from_bytes(text[8:] + b"\xff", "big") << 8 * (8 - len(text[8:]) - 1)),
                    ("uload", 5, len(text[8:]) + 1), ("store", 4, 2, 3),
                    ("alloc", 6, 64), ("uload", 7, len(text) + 1), ("ubd", 1, 7, 6),
                    ("uload", 8, 1000), ("ubd", 1, 8, 6),           # read fails, still advances
                    ("alloc", 9, 2), ("ubd", 1, 7, 9),              # write fails
                    ("halt",))
    core = new_core(backend, program, make_config())
    assert core.run() == 0
    expected = (text + b"\xff").decode("utf-8", "replace").encode("utf-16-be")
    assert core.heap_read(core.get_reg(6)[0], len(expected)) == expected
    assert core.pending() == {Exc.HeapReadFault: 1, Exc.HeapWriteFault: 1}


# ---------------------------------------------------------------- run budget

def test_budget_counts_every_branch_event(backend):
    program = build(("uload", 1, 3), "loop:", ("udec", 1), ("jnz", "@loop"),   # 3 jnz events
                    ("call", 0), ("jexc", 1, "@end"), ("jmp", "@end"), "f:", ("ret",),
                    "end:", ("halt",), functions=("f",))
    core = new_core(backend, program, make_config())
    assert core.run(budget=2) == 3 and core.ip == 10          # after two jnz (taken), at udec
    assert core.run(budget=1) == 3 and core.ip == 21          # the third jnz fell through
    assert core.run(budget=1) == 3 and core.ip == program.functions[0]   # call
    assert core.run(budget=1) == 3 and core.ip == 30          # ret
    assert core.run(budget=0) == 3 and core.ip == 30
    assert core.run(budget=2) == 3                              # jexc (not taken), jmp
    assert core.run(budget=1) == 0                              # halt reached first


def test_budget_is_not_consumed_by_ncall_and_unlimited_when_negative(backend):
    core = new_core(backend, build(("ncall", 3, 0), ("jmp", 13), ("halt",)), make_config())
    assert core.run(budget=1) == 2
    assert core.run(budget=1) == 3 and core.ip == 13
    assert core.run(budget=-1) == 0


def test_invalid_float_operations_give_the_fpu_default_nan(backend):
    # Bits are observable (store, dssave): they must equal what C code computes.
    from voxvm.values import DEFAULT_NAN, bits_from_f64

    default = bits_from_f64(DEFAULT_NAN)
    assert default == bits_from_f64(float("inf") - float("inf"))
    cases = [("frem", 5.0, 0.0), ("frem", math.inf, 2.0), ("udiv", 0.0, 0.0), ("fpow", -8.0, 0.5)]
    for mnemonic, x, y in cases:
        operands = (3, 1, 2) if mnemonic != "fpow" else (1, 2)
        core = one(backend, mnemonic, *operands, regs={1: (fbits(x), F), 2: (fbits(y), F)})
        assert core.get_reg(operands[0])[0] == default, mnemonic
    assert one(backend, "fsqrt", 1, 2, regs={2: (-4, I)}).get_reg(1)[0] == default
    quiet = fbits(math.nan)
    core = one(backend, "udiv", 3, 1, 2, regs={1: (quiet, F), 2: (fbits(0.0), F)})
    assert core.get_reg(3)[0] == quiet                 # a NaN operand propagates unchanged


SNAN = 0x7FF0000000000001                         # signaling: quiet bit clear
NEGATIVE_NAN = 0xFFF8000000000123                 # quiet, sign set, a payload
PAYLOAD_NAN = 0x7FF800000000ABCD


@pytest.mark.parametrize("mnemonic", ["fadd", "fsub", "fmul"])
@pytest.mark.parametrize("fused", [False, True], ids=["op", "movr+op"])
@pytest.mark.parametrize("x_bits,y_bits,expected_bits", [
    (SNAN, fbits(1.0), SNAN | 1 << 51),           # a NaN operand comes out quieted
    (fbits(1.0), SNAN, SNAN | 1 << 51),
    (fbits(2.0), NEGATIVE_NAN, NEGATIVE_NAN),      # sign and payload kept
    (NEGATIVE_NAN, PAYLOAD_NAN, NEGATIVE_NAN),     # two NaNs: the first operand's
    (PAYLOAD_NAN, NEGATIVE_NAN, PAYLOAD_NAN),
    (PAYLOAD_NAN, SNAN, PAYLOAD_NAN),
])
def test_nan_operands_of_add_sub_mul(mnemonic, fused, x_bits, y_bits, expected_bits, backend):
    # semantics.md §12; the compiled core's x86-64 fast paths rely on the SSE rules for it.
    code = [("movr", 3, 1), (mnemonic, 3, 2)] if fused else [("movr", 3, 1), ("nop",), (mnemonic, 3, 2)]
    core = run_to_halt(backend, *code, ("halt",), regs={1: (x_bits, F), 2: (y_bits, F)})
    assert core.get_reg(3) == (expected_bits, F)


@pytest.mark.parametrize("x_bits,y,expected_bits", [
    (0xFFFFFFFFFFFFFFFF, 5.0, 0x7FFFFFFFFFFFFFFF),   # NaN ** odd: x*x negated (glibc)
    (0xFFFFFFFFFFFFFFFF, 2.0, 0xFFFFFFFFFFFFFFFF),
    (0x7FF8000000000000, 0.0, fbits(1.0)),
    (0x7FF0000000000001, 0.0, 0x7FF8000000000001),   # a signaling NaN is quieted, not 1
])
def test_fpow_nan_bits_follow_c(x_bits, y, expected_bits, backend):
    core = one(backend, "fpow", 1, 2, regs={1: (x_bits, F), 2: (fbits(y), F)})
    assert core.get_reg(1)[0] == expected_bits


@pytest.mark.parametrize("x_bits,y_bits,expected_bits", [
    (0x7FF8000000000005, 0x7FF8000000000007, 0x7FF8000000000005),   # two NaNs: the first's
    (0xFFF8000000000005, 0x7FF0000000000007, 0xFFF8000000000005),   # its sign too; the second quieted
    (fbits(2.0), 0x7FF0000000000007, 0x7FF8000000000007),          # one NaN: it, quieted
])
def test_fpow_of_two_nans_gives_the_first_on_both_backends(x_bits, y_bits, expected_bits, backend):
    # (the reference used Python's x + y, which the C compiler may swap: the second NaN)
    core = one(backend, "fpow", 1, 2, regs={1: (x_bits, F), 2: (y_bits, F)})
    assert core.get_reg(1)[0] == expected_bits


def test_popall_short_of_entries_traps_with_what_it_needs_and_what_is_there(backend):
    core = run_to_trap(backend, ("push", 1), ("popall",), ("halt",))
    assert (core.trap_kind, core.trap_a, core.trap_b) == (TrapKind.STACK_UNDERFLOW, 31, 1)
    assert len(data_stack(core)) == 1                      # nothing popped
