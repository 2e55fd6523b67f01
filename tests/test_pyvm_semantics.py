"""Unit tests of PyCore semantics the conformance programs do not pin down.

Tag table of decisions §2, the generic operation tables of upstream §1.3, the
flags of §1.4, saturating conversions, shifts modulo 64, division edge cases,
and the fixed bugs of decisions §3. See docs/semantics.md.
"""

from __future__ import annotations

import math

import pytest
from pyvm_support import build, f64s, fbits, item, run_to_halt, u64s, utf16

from voxvm.isa import Exc, Tag
from voxvm.backends.reference.core import OP_ADD, OP_MUL, OP_SUB, PyCore, result_tag
from voxvm.traps import TrapKind
from voxvm.values import MASK64, f64_from_bits, to_signed

U, I, F, S, A, D = (int(t) for t in (Tag.U64, Tag.I64, Tag.F64, Tag.STR, Tag.ADDR, Tag.DS_ADDR))
ALL_TAGS = (U, I, F, S, A, D)
MIN64 = 1 << 63


def one(mnemonic: str, *operands, regs: dict[int, tuple[int, int]] | None = None, **kw) -> PyCore:
    """Run a single instruction (then halt) with preset registers."""

    def setup(core: PyCore) -> None:
        for index, (bits, tag) in (regs or {}).items():
            core.set_reg(index, bits & MASK64, tag)

    return run_to_halt((mnemonic, *operands), ("halt",), setup=setup, **kw)


def trap_of(mnemonic: str, *operands, regs=None) -> PyCore:
    core = PyCore(build((mnemonic, *operands), ("halt",)), _cfg())
    for index, (bits, tag) in (regs or {}).items():
        core.set_reg(index, bits & MASK64, tag)
    assert core.run() == 1, "expected a trap"
    return core


def _cfg(**kw):
    from voxvm.config import VMConfig

    return VMConfig(init_heap=64 * 1024, **kw)


def sample(tag: int) -> int:
    """A non-zero value of each tag."""
    return fbits(6.0) if tag == F else 6


# ---------------------------------------------------------------- §1.3 result-tag table

@pytest.mark.parametrize("left", ALL_TAGS)
@pytest.mark.parametrize("right", ALL_TAGS)
@pytest.mark.parametrize("op,mnemonic", [(OP_ADD, "uadd"), (OP_SUB, "isub"), (OP_MUL, "fmul")])
def test_binary_arithmetic_tag_table(left, right, op, mnemonic):
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
        core = trap_of(mnemonic, 1, 2, regs=regs)
        assert core.trap_kind == TrapKind.TYPE_MISMATCH
        assert core.get_reg(1) == regs[1]          # a trapping instruction has no effect
        assert core.ip == 0
    else:
        core = one(mnemonic, 1, 2, regs=regs)
        assert core.get_reg(1)[1] == expected


@pytest.mark.parametrize("mnemonic", ["udiv", "idiv", "fdiv", "urem", "irem", "frem"])
@pytest.mark.parametrize("left,right,expected", [
    (U, U, U), (I, I, I), (F, F, F), (A, U, A), (U, A, U), (S, U, S), (U, D, U), (D, D, D)])
def test_division_result_tag_is_the_table_not_the_mnemonic(mnemonic, left, right, expected):
    # decisions §2: udiv/idiv/fdiv... give the §1.3 result type, not a forced 1/2/3.
    core = one(mnemonic, 3, 1, 2, regs={1: (sample(left), left),
                                        2: (fbits(4.0) if right == F else 4, right)})
    assert core.get_reg(3)[1] == expected


def test_address_arithmetic_with_uint():
    core = one("uadd", 1, 2, regs={1: (5, U), 2: (0x100, A)})
    assert core.get_reg(1) == (0x105, A)          # U + X -> X
    core = one("usub", 1, 2, regs={1: (0x105, U), 2: (0x100, D)})
    assert core.get_reg(1) == (5, U)              # U - X -> U
    core = one("usub", 1, 2, regs={1: (0x105, S), 2: (5, U)})
    assert core.get_reg(1) == (0x100, S)          # X - U -> X


def test_integer_arithmetic_wraps():
    assert one("uadd", 1, 2, regs={1: (MASK64, U), 2: (2, U)}).get_reg(1) == (1, U)
    assert one("imul", 1, 2, regs={1: (1 << 62, I), 2: (4, I)}).get_reg(1) == (0, I)
    assert one("usub", 1, 2, regs={1: (0, U), 2: (1, U)}).get_reg(1) == (MASK64, U)


def test_signed_division_truncates_and_remainder_has_dividend_sign():
    core = one("idiv", 3, 1, 2, regs={1: (-7, I), 2: (2, I)})
    assert to_signed(core.get_reg(3)[0]) == -3
    core = one("irem", 3, 1, 2, regs={1: (-7, I), 2: (2, I)})
    assert to_signed(core.get_reg(3)[0]) == -1
    core = one("irem", 3, 1, 2, regs={1: (7, I), 2: (-2, I)})
    assert to_signed(core.get_reg(3)[0]) == 1


def test_min_divided_by_minus_one():
    core = one("idiv", 3, 1, 2, regs={1: (MIN64, I), 2: (-1, I)})
    assert core.get_reg(3) == (MIN64, I)
    core = one("irem", 3, 1, 2, regs={1: (MIN64, I), 2: (-1, I)})
    assert core.get_reg(3) == (0, I)
    assert core.pending() == []


@pytest.mark.parametrize("mnemonic", ["udiv", "urem", "idiv", "irem", "fdiv", "frem"])
@pytest.mark.parametrize("tag", [U, I, A])
def test_integer_division_by_zero_raises_and_keeps_destination(mnemonic, tag):
    core = one(mnemonic, 3, 1, 2, regs={1: (10, tag), 2: (0, tag), 3: (555, U)})
    assert core.get_reg(3) == (555, U)
    assert core.pending() == [Exc.ZeroDivision]
    assert core.ip == 4                            # advanced to the halt


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_fdiv_by_float_zero_raises_before_the_type_check(zero):
    core = one("fdiv", 3, 1, 2, regs={1: (1, I), 2: (fbits(zero), F), 3: (7, U)})
    assert core.get_reg(3) == (7, U)
    assert core.pending() == [Exc.ZeroDivision]


def test_other_float_divisions_by_zero_are_ieee():
    core = one("udiv", 3, 1, 2, regs={1: (fbits(-1.0), F), 2: (fbits(0.0), F)})
    assert f64_from_bits(core.get_reg(3)[0]) == -math.inf
    assert core.pending() == []
    core = one("idiv", 3, 1, 2, regs={1: (fbits(0.0), F), 2: (fbits(0.0), F)})
    assert math.isnan(f64_from_bits(core.get_reg(3)[0]))
    for mnemonic in ("frem", "urem", "irem"):
        core = one(mnemonic, 3, 1, 2, regs={1: (fbits(5.0), F), 2: (fbits(0.0), F)})
        assert math.isnan(f64_from_bits(core.get_reg(3)[0])), mnemonic
        assert core.pending() == []


def test_frem_is_fmod():
    core = one("frem", 3, 1, 2, regs={1: (fbits(-7.5), F), 2: (fbits(2.0), F)})
    assert f64_from_bits(core.get_reg(3)[0]) == -1.5


def test_division_type_check_comes_before_the_zero_check():
    core = trap_of("udiv", 3, 1, 2, regs={1: (1, U), 2: (0, I)})
    assert core.trap_kind == TrapKind.TYPE_MISMATCH
    assert core.pending() == []


# ---------------------------------------------------------------- bitwise, shifts

@pytest.mark.parametrize("mnemonic", ["or", "and", "xor"])
def test_bitwise_result_tag_is_the_table_not_the_source(mnemonic):
    # Upstream copies the source's tag; decisions §2 takes the §1.3 table's.
    core = one(mnemonic, 1, 2, regs={1: (0xF0, A), 2: (0x0F, U)})
    assert core.get_reg(1)[1] == A
    core = one(mnemonic, 1, 2, regs={1: (0xF0, U), 2: (0x0F, A)})
    assert core.get_reg(1)[1] == A


@pytest.mark.parametrize("mnemonic", ["or", "and", "xor", "test"])
def test_bitwise_on_floats_traps(mnemonic):
    core = trap_of(mnemonic, 1, 2, regs={1: (fbits(1.0), F), 2: (fbits(1.0), F)})
    assert core.trap_kind == TrapKind.TYPE_MISMATCH


def test_not_and_lnot():
    assert one("not", 1, 2, regs={2: (0, I)}).get_reg(1) == (MASK64, I)
    assert trap_of("not", 1, 2, regs={2: (fbits(1.0), F)}).trap_kind == TrapKind.TYPE_MISMATCH
    core = one("lnot", 1, 2, regs={2: (fbits(-0.0), F)})
    assert core.get_reg(1) == (fbits(1.0), F) and core.flags[1] == 0
    core = one("lnot", 1, 2, regs={2: (5, D)})
    assert core.get_reg(1) == (0, D) and core.flags[1] == 1


@pytest.mark.parametrize("amount", [1, 65, 129])
def test_shift_amount_is_modulo_64(amount):
    assert one("shl", 1, 2, regs={1: (3, U), 2: (amount, U)}).get_reg(1) == (6, U)


def test_shift_right_is_arithmetic_for_int_only():
    assert one("shr", 1, 2, regs={1: (-8, I), 2: (1, U)}).get_reg(1) == ((-4) & MASK64, I)
    assert one("shr", 1, 2, regs={1: (-8, U), 2: (1, U)}).get_reg(1) == ((MASK64 - 7) >> 1, U)
    assert one("shl", 1, 2, regs={1: (1, A), 2: (4, U)}).get_reg(1) == (16, A)


@pytest.mark.parametrize("value_tag,amount_tag", [(F, U), (U, I), (I, I), (U, A), (U, F)])
def test_bad_shift_operands_trap(value_tag, amount_tag):
    core = trap_of("shl", 1, 2, regs={1: (sample(value_tag), value_tag), 2: (1, amount_tag)})
    assert core.trap_kind == TrapKind.TYPE_MISMATCH


# ---------------------------------------------------------------- compares and flags

@pytest.mark.parametrize("left", ALL_TAGS)
@pytest.mark.parametrize("right", ALL_TAGS)
def test_compare_table(left, right):
    lv = fbits(1.0) if left == F else 1
    rv = fbits(2.0) if right == F else 2
    core = one("ucmp", 1, 2, regs={1: (lv, left), 2: (rv, right)})
    ordered = left == right or (U in (left, right) and {left, right} <= {U, S, A, D})
    assert (core.flags[1], core.flags[2]) == ((0, 1) if ordered else (0, 0))


def test_compare_signed_unsigned_and_nan():
    assert one("icmp", 1, 2, regs={1: (-1, I), 2: (1, I)}).flags[1:3] == [0, 1]
    assert one("fcmp", 1, 2, regs={1: (-1, U), 2: (1, U)}).flags[1:3] == [0, 0]
    nan = fbits(math.nan)
    assert one("fcmp", 1, 2, regs={1: (nan, F), 2: (nan, F)}).flags[1:3] == [0, 0]
    assert one("fcmp", 1, 2, regs={1: (fbits(-0.0), F), 2: (fbits(0.0), F)}).flags[1:3] == [1, 0]


def test_usub_sets_zf_typed_but_isub_sets_nothing():
    assert one("usub", 1, 2, regs={1: (4, U), 2: (4, U)}).flags[1] == 1
    assert one("usub", 1, 2, regs={1: (4, I), 2: (4, I)}).flags[1] == 0   # I(0) != U(0)
    core = one("isub", 1, 2, regs={1: (4, I), 2: (4, I)})
    assert core.flags == [0, 0, 0, 0]


def test_uinc_writes_of_not_zf():
    core = one("uinc", 1, regs={1: (MASK64, U)})
    assert core.get_reg(1) == (0, U)
    assert core.flags == [1, 0, 0, 0]
    core = one("udec", 1, regs={1: (1, A)})
    assert core.get_reg(1) == (0, A) and core.flags[1] == 1


@pytest.mark.parametrize("mnemonic,tag", [("uinc", I), ("uinc", F), ("iinc", U), ("idec", F),
                                          ("finc", U), ("fdec", I)])
def test_inc_dec_need_their_type(mnemonic, tag):
    assert trap_of(mnemonic, 1, regs={1: (sample(tag), tag)}).trap_kind == TrapKind.TYPE_MISMATCH


def test_signed_and_float_flag_writers():
    core = one("iinc", 1, regs={1: (-2, I)})
    assert to_signed(core.get_reg(1)[0]) == -1 and core.flags[1:3] == [0, 1]
    core = one("idec", 1, regs={1: (1, I)})
    assert core.flags[1:3] == [1, 0]
    core = one("fdec", 1, regs={1: (fbits(0.5), F)})
    assert f64_from_bits(core.get_reg(1)[0]) == -0.5 and core.flags[1:3] == [0, 1]
    core = one("ipow", 1, 2, regs={1: (-2, I), 2: (3, U)})
    assert to_signed(core.get_reg(1)[0]) == -8 and core.flags[1:3] == [0, 1]


def test_fcmp_eps():
    core = one("fcmp_eps", 1, 2, regs={1: (fbits(1.0), F), 2: (fbits(1.0 + 1e-12), F)})
    assert core.flags[1:3] == [1, 0]
    core = one("fcmp_eps", 1, 2, regs={1: (fbits(1.0), F), 2: (fbits(2.0), F)})
    assert core.flags[1:3] == [0, 1]
    core = one("fcmp_eps", 1, 2, regs={1: (5, U), 2: (5, U)})
    assert core.flags[1:3] == [1, 0]                 # |as_f64(U(0))| < eps; NF needs a float
    assert trap_of("fcmp_eps", 1, 2, regs={1: (1, U), 2: (fbits(1.0), F)}).trap_kind \
        == TrapKind.TYPE_MISMATCH


def test_flags_persist_across_unrelated_instructions():
    core = run_to_halt(("uload", 1, 0), ("uload", 2, 0), ("usub", 1, 2),   # ZF = 1
                       ("uadd", 1, 2), ("iload", 3, -1), ("movr", 4, 3), ("push", 4), ("pop", 5),
                       ("fload", 6, 2.0), ("fmul", 6, 6), ("halt",))
    assert core.flags[1] == 1


# ---------------------------------------------------------------- unary results and tags

def test_ineg_and_fneg_convert():
    core = one("ineg", 1, 2, regs={2: (5, U)})
    assert core.get_reg(1) == ((-5) & MASK64, I) and core.flags[1:3] == [0, 1]
    core = one("ineg", 1, 2, regs={2: (MIN64, I)})
    assert core.get_reg(1) == (MIN64, I)
    core = one("fneg", 1, 2, regs={2: (-3, I)})
    assert core.get_reg(1) == (fbits(3.0), F)
    core = one("fneg", 1, 2, regs={2: (fbits(0.0), F)})
    assert core.get_reg(1) == (fbits(-0.0), F) and core.flags[1:3] == [1, 0]


def test_pow_tags_and_wrapping():
    assert one("upow", 1, 2, regs={1: (fbits(3.0), F), 2: (3, U)}).get_reg(1) == (27, U)
    assert one("upow", 1, 2, regs={1: (2, U), 2: (64, U)}).get_reg(1) == (0, U)
    assert one("upow", 1, 2, regs={1: (2, U), 2: ((1 << 32) + 3, U)}).get_reg(1) == (8, U)
    assert one("ipow", 1, 2, regs={1: (fbits(-3.0), F), 2: (3, I)}).get_reg(1) == ((-27) & MASK64, I)
    assert one("upow", 1, 2, regs={1: (0, U), 2: (0, U)}).get_reg(1) == (1, U)


def test_abs_and_sqrt():
    assert one("iabs", 1, 2, regs={2: (MIN64, I)}).get_reg(1) == (MIN64, I)
    assert one("iabs", 1, 2, regs={2: (fbits(-2.7), F)}).get_reg(1) == (2, I)
    assert one("usqrt", 1, 2, regs={2: (MASK64, U)}).get_reg(1) == (4294967295, U)
    assert one("isqrt", 1, 2, regs={2: (fbits(-0.5), F)}).get_reg(1) == (0, I)
    core = one("isqrt", 1, 2, regs={1: (9, U), 2: (-4, I)})
    assert core.get_reg(1) == (9, U) and core.pending() == [Exc.NegativeSqrt]
    assert trap_of("isqrt", 1, 2, regs={2: (MIN64, U)}).trap_kind == TrapKind.NEGATIVE_ISQRT
    core = one("fsqrt", 1, 2, regs={1: (9, U), 2: (fbits(-4.0), F)})
    assert core.get_reg(1) == (9, U) and core.pending() == [Exc.NegativeSqrt]
    core = one("fsqrt", 1, 2, regs={2: (-4, I)})
    assert math.isnan(f64_from_bits(core.get_reg(1)[0])) and core.pending() == []
    core = one("fabs", 1, 2, regs={2: (-3, I)})
    assert core.get_reg(1) == (fbits(3.0), F)


@pytest.mark.parametrize("x,y,expected", [(0.0, -1.0, math.inf), (-0.0, -1.0, -math.inf),
                                          (-8.0, 1 / 3, math.nan), (10.0, 400.0, math.inf),
                                          (-10.0, 401.0, -math.inf), (2.0, 0.5, math.sqrt(2))])
def test_fpow_is_c_pow_and_silent(x, y, expected):
    core = one("fpow", 1, 2, regs={1: (fbits(x), F), 2: (fbits(y), F)})
    got = f64_from_bits(core.get_reg(1)[0])
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


# ---------------------------------------------------------------- conversions

@pytest.mark.parametrize("x,as_u,as_i", [
    (-1.5, 0, -1), (1e300, MASK64, (1 << 63) - 1), (-1e300, 0, MIN64), (math.nan, 0, 0),
    (2.9, 2, 2), (18446744073709551616.0, MASK64, (1 << 63) - 1), (-0.0, 0, 0)])
def test_float_to_integer_conversions_saturate(x, as_u, as_i):
    assert one("ftou", 1, 2, regs={2: (fbits(x), F)}).get_reg(1) == (as_u, U)
    assert one("ftoi", 1, 2, regs={2: (fbits(x), F)}).get_reg(1) == (as_i & MASK64, I)
    assert one("ptou", 1, 2, regs={2: (fbits(x), F)}).get_reg(1) == (as_u, U)


def test_integer_conversions_reinterpret_bits():
    assert one("utoi", 1, 2, regs={2: (MASK64, U)}).get_reg(1) == (MASK64, I)
    assert one("itou", 1, 2, regs={2: (-1, I)}).get_reg(1) == (MASK64, U)
    assert one("itou", 1, 2, regs={2: (fbits(-3.5), F)}).get_reg(1) == ((-3) & MASK64, U)
    assert one("utof", 1, 2, regs={2: (MASK64, U)}).get_reg(1) == (fbits(18446744073709551616.0), F)
    assert one("utof", 1, 2, regs={2: ((1 << 53) + 1, U)}).get_reg(1) == (fbits(2.0 ** 53), F)
    assert one("itof", 1, 2, regs={2: (-1, U)}).get_reg(1) == (fbits(-1.0), F)
    assert one("ftoi", 1, 2, regs={2: (MASK64, U)}).get_reg(1) == ((1 << 63) - 1, I)
    assert one("utop", 1, 2, regs={2: (-1, I)}).get_reg(1) == (MASK64, A)


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
def test_dsderef_gives_the_items_own_type(name, tag, value):
    core = run_to_halt(("dslea", 4, f"%{name}", 0), ("dsderef", 4, 1, 0), ("halt",), data=DATA)
    assert core.get_reg(4)[1] == D
    assert core.get_reg(1) == (value, tag)
    core = run_to_halt(("uload", 6, 0), ("dsrlea", 4, 6, f"%{name}"), ("uload", 7, 3),
                       ("uadd", 4, 7), ("dsrderef", 4, 1, 7), ("halt",), data=DATA)
    assert core.get_reg(1) == (value, tag)


@pytest.mark.parametrize("name", ["s", "cs"])
def test_dsderef_of_a_string_gives_its_payload_address(name):
    core = run_to_halt(("dslea", 4, f"%{name}", 0), ("dsderef", 4, 1, 0),
                       ("dsload", 2, f"%{name}", 0), ("halt",), data=DATA)
    assert core.get_reg(1)[1] == S
    assert core.get_reg(1) == core.get_reg(2)


def test_dsload_reads_array_elements_by_byte_offset():
    core = run_to_halt(("dsload", 1, "%ia", 8), ("uload", 5, 8), ("dsrload", 2, 5, "%fa"),
                       ("halt",), data=DATA)
    assert core.get_reg(1) == (1, I)
    assert core.get_reg(2) == (fbits(8.5), F)


def test_dssave_inside_outside_and_const():
    core = run_to_halt(("iload", 1, -42), ("dssave", 1, "%ua", 8), ("dsload", 2, "%ua", 8),
                       ("dssave", 1, "%ua", 9), ("uload", 3, 16), ("dsrsave", 1, 3, "%ua"),
                       ("halt",), data=DATA)
    assert core.get_reg(2) == ((-42) & MASK64, U)   # the item type gives the load type
    assert core.pending() == [Exc.MainSegmFault, Exc.MainSegmFault]
    program = build(("uload", 1, 1), ("dssave", 1, "%c", 0), ("halt",), data=DATA)
    core = PyCore(program, _cfg())
    before = core.memory()
    assert core.run() == 1
    assert core.trap_kind == TrapKind.CONST_WRITE and core.trap_ip == 10
    assert core.memory() == before


def test_rewritten_code_is_decoded_again():
    # The item's payload is code "uinc r1; jmp 20". It runs once, then dsrsave
    # writes a halt over it and the program jumps there again.
    payload = bytes([0x19, 1, 0x40]) + (20).to_bytes(8, "big") + bytes(5)
    program = build(("dslea", 5, "%code", 9), ("jmpr", 5),                 # 0, 18
                    ("uload", 7, 0xFF00000000000000), ("uload", 6, 0),     # 20, 30
                    ("dsrsave", 7, 6, "%code"), ("jmpr", 5),               # 40, 51
                    data={"code": item(6, payload)})
    core = PyCore(program, _cfg())
    assert core.run(budget=50) == 0
    assert core.get_reg(1) == (1, U)
    assert core.ip == program.data_base + 9


@pytest.mark.parametrize("code,kind", [
    ((("dsload", 1, 10_000, 0),), TrapKind.DATA_OUT_OF_RANGE),
    ((("dsload", 1, "%u", 10_000),), TrapKind.DATA_OUT_OF_RANGE),
    ((("uload", 4, 0), ("dsderef", 4, 1, 0)), TrapKind.BAD_DATA_TYPE),
    ((("dsload", 1, "%bad", 0),), TrapKind.BAD_DATA_TYPE),
])
def test_data_segment_traps(code, kind):
    program = build(*code, ("halt",), data={"u": item(1, u64s(1)), "bad": item(5, u64s(1))})
    core = PyCore(program, _cfg())
    assert core.run() == 1
    assert core.trap_kind == kind


# ---------------------------------------------------------------- jumps, calls, stacks

@pytest.mark.parametrize("number", range(1, 12))
def test_jexc_handles_all_eleven(number):
    def setup(core):
        core.raise_exception(number)
        core.raise_exception(number)

    core = run_to_halt(("jexc", number, "@caught"), ("halt",), "caught:", ("uload", 1, 1),
                       ("halt",), setup=setup)
    assert core.get_reg(1) == (1, U)
    assert core.pending() == [number]              # only the first occurrence is removed


@pytest.mark.parametrize("number", [0, 12, 2**64 - 1])
def test_jexc_with_an_unknown_number_traps(number):
    core = trap_of("jexc", number, 0)
    assert core.trap_kind == TrapKind.BAD_EXCEPTION and core.trap_a == number


def test_nop_advances():
    core = run_to_halt(("nop",), ("nop",), ("uload", 1, 3), ("halt",))
    assert core.get_reg(1) == (3, U) and core.ip == 12


def test_pushall_popall_keep_r0_and_skip_r31():
    core = run_to_halt(
        ("uload", 0, 100), ("uload", 1, 1), ("iload", 30, -30), ("uload", 31, 31), ("pushall",),
        ("uload", 0, 7), ("uload", 1, 11), ("uload", 30, 0), ("uload", 31, 0), ("popall",),
        ("halt",))
    assert core.get_reg(0) == (7, U)               # r0 keeps the callee's value
    assert core.get_reg(1) == (1, U)
    assert core.get_reg(30) == ((-30) & MASK64, I)
    assert core.get_reg(31) == (0, U)              # r31 is neither saved nor restored
    assert core.stack == []


def test_popall_with_too_few_entries_traps_without_popping():
    core = PyCore(build(("push", 1), ("popall",), ("halt",)), _cfg())
    assert core.run() == 1 and core.trap_kind == TrapKind.STACK_UNDERFLOW
    assert len(core.stack) == 1 and core.trap_ip == 2


def test_gsf_usf():
    core = run_to_halt(("iload", 1, -1), ("push", 1), ("fload", 2, 2.5), ("push", 2),
                       ("uload", 3, 1), ("gsf", 4, 3),                  # r4 := stack[1]
                       ("uload", 5, 0), ("uload", 6, 9), ("usf", 5, 6),   # stack[0] := r6
                       ("uload", 7, 99), ("gsf", 8, 7), ("usf", 7, 6),   # out of range: nothing
                       ("halt",))
    assert core.get_reg(4) == (fbits(2.5), F)
    assert core.stack == [(9, U), (fbits(2.5), F)]
    assert core.get_reg(8) == (0, U)


def test_stack_overflow_traps():
    config = _cfg(max_stack=40, init_stack=40)
    core = PyCore(build("top:", ("push", 1), ("jmp", "@top")), config)
    assert core.run() == 1 and core.trap_kind == TrapKind.STACK_OVERFLOW
    assert len(core.stack) == 40
    core = PyCore(build(("pushall",), ("pushall",)), config)
    assert core.run() == 1 and core.trap_kind == TrapKind.STACK_OVERFLOW
    assert len(core.stack) == 31 and core.trap_ip == 1


@pytest.mark.parametrize("via", ["call", "callr"])
def test_recursion_limit_applies_to_call_and_callr(via):
    body = ("call", 0) if via == "call" else ("callr", 7)
    program = build(("fnstind", 7, 0), "f:", body, ("ret",), functions=("f",))
    core = PyCore(program, _cfg(max_recursion=5))
    assert core.run() == 1
    assert core.trap_kind == TrapKind.RECURSION_LIMIT and core.trap_a == 5
    assert len(core.calls) == 5


def test_bad_function_index_and_empty_ret():
    core = trap_of("callr", 1, regs={1: (3, U)})
    assert core.trap_kind == TrapKind.BAD_FUNCTION and (core.trap_a, core.trap_b) == (3, 0)
    core = trap_of("ret")
    assert core.trap_kind == TrapKind.CALL_STACK_UNDERFLOW


def test_jmpr_and_call_return_addresses():
    program = build(("call", 0), ("callr", 5), ("halt",), "f:", ("uinc", 1), ("ret",),
                    functions=("f",))
    core = PyCore(program, _cfg())
    assert core.run() == 0
    assert core.get_reg(1) == (2, U)               # f ran twice (r5 = 0 is function 0)


# ---------------------------------------------------------------- fetch traps

def test_fetch_traps_and_trap_ip():
    core = PyCore(build(("jmp", 1000)), _cfg())
    assert core.run() == 1
    assert (core.trap_kind, core.trap_ip, core.trap_a, core.trap_b) == (TrapKind.IP_OUTSIDE, 1000,
                                                                       1000, 9)
    core = PyCore(build(("nop",), bytes([0x00])), _cfg())
    assert core.run() == 1
    assert (core.trap_kind, core.trap_ip, core.trap_a) == (TrapKind.UNKNOWN_OPCODE, 1, 0)
    core = PyCore(build(("nop",), bytes([0x10, 1, 0, 0])), _cfg())
    assert core.run() == 1
    assert (core.trap_kind, core.trap_a, core.trap_b) == (TrapKind.TRUNCATED_INSTRUCTION, 10, 4)
    core = PyCore(build(("uadd", 1, 32)), _cfg())
    assert core.run() == 1
    assert (core.trap_kind, core.trap_a) == (TrapKind.BAD_REGISTER, 32)


def test_ncall_register_byte_is_not_checked():
    core = PyCore(build(("ncall", 5, 200), ("halt",)), _cfg())
    assert core.run() == 2
    assert (core.ncall_code, core.ncall_ip, core.ip) == (5, 0, 4)
    assert core.run() == 0


# ---------------------------------------------------------------- heap instructions

def test_store_load_low_bytes_and_count_clamp():
    core = run_to_halt(
        ("alloc", 1, 16), ("uload", 2, 0x1122334455667788), ("uload", 3, 2), ("store", 1, 2, 3),
        ("uload", 4, 1), ("load", 4, 5, 1, 3),               # 2 bytes back: 0x7788
        ("uload", 3, 0), ("store", 1, 2, 3),                 # count 0 -> 1 byte (clamp)
        ("uload", 3, 99), ("load", 4, 6, 1, 3),              # count 99 -> 8 bytes
        ("halt",))
    assert core.get_reg(5) == (0x7788, U)
    assert core.get_reg(6) == (0x8888000000000000, U)


@pytest.mark.parametrize("kind", [1, 2, 3, 4, 8, 9])
def test_load_gives_the_requested_tag(kind):
    core = run_to_halt(("alloc", 1, 8), ("uload", 2, 8), ("uload", 3, kind), ("load", 3, 4, 1, 2),
                       ("halt",))
    assert core.get_reg(4) == (0, kind)


def test_load_type_is_checked_after_a_successful_read():
    core = run_to_halt(("uload", 3, 5), ("uload", 2, 8), ("load", 3, 4, 1, 2), ("halt",))
    assert core.pending() == [Exc.HeapReadFault]         # r1 = 0: the read fails first
    core = PyCore(build(("alloc", 1, 8), ("uload", 3, 5), ("uload", 2, 8), ("load", 3, 4, 1, 2)),
                  _cfg())
    assert core.run() == 1
    assert (core.trap_kind, core.trap_a) == (TrapKind.BAD_LOAD_TYPE, 5)


def test_alloc_failure_gives_null_and_exception():
    core = run_to_halt(("alloc", 1, 1 << 62), ("uload", 2, MASK64), ("allocr_nogc", 3, 2),
                       ("halt",))
    assert core.get_reg(1) == (0, A) and core.get_reg(3) == (0, A)
    assert core.pending() == [Exc.HeapAllocationFault] * 2


def test_heap_faults():
    core = run_to_halt(
        ("alloc", 1, 8), ("uload", 2, 8), ("movr", 3, 1), ("uinc", 3),
        ("store", 3, 2, 2),                   # 8 bytes at offset 1 of an 8-byte block
        ("load", 2, 4, 3, 2),                 # read past the end
        ("free", 3),                          # interior pointer
        ("free", 1), ("free", 1),             # double free
        ("alloc", 5, 8), ("alloc", 6, 4), ("memcpy", 6, 5, 2),   # 8 bytes into 4
        ("uload", 7, 10_000), ("storedat", 5, 7, 2),             # main memory too short
        ("halt",))
    assert core.pending() == [Exc.HeapWriteFault, Exc.HeapReadFault, Exc.HeapFreeFault,
                              Exc.HeapFreeFault, Exc.HeapSegmFault, Exc.MainSegmFault]


def test_dlbc_appends_and_tags_ds_addr():
    code = bytes([0x10, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0xFF])   # uload r1 42; halt
    program = build(("alloc", 5, 11), ("dslea", 6, "%c", 9), ("uload", 7, 11), ("storedat", 5, 6, 7),
                    ("dlbc", 8, 5, 7), ("jmpr", 8), data={"c": item(6, code + bytes(5))})
    core = PyCore(program, _cfg())
    assert core.run() == 0
    assert core.get_reg(8) == (len(program.image), D)
    assert core.get_reg(1) == (42, U)
    assert len(core.memory()) == len(program.image) + 11


def test_dlbc_respects_the_ram_capacity():
    program = build(("alloc", 5, 64), ("uload", 7, 64), ("uload", 8, 3), ("dlbc", 8, 5, 7), ("halt",))
    core = PyCore(program, _cfg(init_ram=len(program.image) + 10))
    assert core.run() == 0
    assert core.pending() == [Exc.MainSegmFault]
    assert core.get_reg(8) == (3, U)


def test_ubd_converts_and_always_advances():
    text = "añ€😀".encode()
    program = build(("alloc", 1, 16), ("uload", 2, int.from_bytes(text[:8], "big")), ("uload", 3, 8),
                    ("store", 1, 2, 3), ("movr", 4, 1), ("uadd", 4, 3),
                    ("uload", 2, int.from_bytes(text[8:] + b"\xff", "big") << 8 * (8 - len(text[8:]) - 1)),
                    ("uload", 5, len(text[8:]) + 1), ("store", 4, 2, 3),
                    ("alloc", 6, 64), ("uload", 7, len(text) + 1), ("ubd", 1, 7, 6),
                    ("uload", 8, 1000), ("ubd", 1, 8, 6),           # read fails, still advances
                    ("alloc", 9, 2), ("ubd", 1, 7, 9),              # write fails
                    ("halt",))
    core = PyCore(program, _cfg())
    assert core.run() == 0
    expected = (text + b"\xff").decode("utf-8", "replace").encode("utf-16-be")
    assert core.heap_read(core.get_reg(6)[0], len(expected)) == expected
    assert core.pending() == [Exc.HeapReadFault, Exc.HeapWriteFault]


# ---------------------------------------------------------------- run budget

def test_budget_counts_every_branch_event():
    program = build(("uload", 1, 3), "loop:", ("udec", 1), ("jnz", "@loop"),   # 3 jnz events
                    ("call", 0), ("jexc", 1, "@end"), ("jmp", "@end"), "f:", ("ret",),
                    "end:", ("halt",), functions=("f",))
    core = PyCore(program, _cfg())
    assert core.run(budget=2) == 3 and core.ip == 10          # after two jnz (taken), at udec
    assert core.run(budget=1) == 3 and core.ip == 21          # the third jnz fell through
    assert core.run(budget=1) == 3 and core.ip == program.functions[0]   # call
    assert core.run(budget=1) == 3 and core.ip == 30          # ret
    assert core.run(budget=0) == 3 and core.ip == 30
    assert core.run(budget=2) == 3                              # jexc (not taken), jmp
    assert core.run(budget=1) == 0                              # halt reached first


def test_budget_is_not_consumed_by_ncall_and_unlimited_when_negative():
    core = PyCore(build(("ncall", 3, 0), ("jmp", 13), ("halt",)), _cfg())
    assert core.run(budget=1) == 2
    assert core.run(budget=1) == 3 and core.ip == 13
    assert core.run(budget=-1) == 0


def test_invalid_float_operations_give_the_fpu_default_nan():
    # Bits are observable (store, dssave): they must equal what C code computes.
    from voxvm.values import DEFAULT_NAN, bits_from_f64

    default = bits_from_f64(DEFAULT_NAN)
    assert default == bits_from_f64(float("inf") - float("inf"))
    cases = [("frem", 5.0, 0.0), ("frem", math.inf, 2.0), ("udiv", 0.0, 0.0), ("fpow", -8.0, 0.5)]
    for mnemonic, x, y in cases:
        operands = (3, 1, 2) if mnemonic != "fpow" else (1, 2)
        core = one(mnemonic, *operands, regs={1: (fbits(x), F), 2: (fbits(y), F)})
        assert core.get_reg(operands[0])[0] == default, mnemonic
    assert one("fsqrt", 1, 2, regs={2: (-4, I)}).get_reg(1)[0] == default
    quiet = fbits(math.nan)
    core = one("udiv", 3, 1, 2, regs={1: (quiet, F), 2: (fbits(0.0), F)})
    assert core.get_reg(3)[0] == quiet                 # a NaN operand propagates unchanged


@pytest.mark.parametrize("x_bits,y,expected_bits", [
    (0xFFFFFFFFFFFFFFFF, 5.0, 0x7FFFFFFFFFFFFFFF),   # NaN ** odd: x*x negated (glibc)
    (0xFFFFFFFFFFFFFFFF, 2.0, 0xFFFFFFFFFFFFFFFF),
    (0x7FF8000000000000, 0.0, fbits(1.0)),
    (0x7FF0000000000001, 0.0, 0x7FF8000000000001),   # a signaling NaN is quieted, not 1
])
def test_fpow_nan_bits_follow_c(x_bits, y, expected_bits):
    core = one("fpow", 1, 2, regs={1: (x_bits, F), 2: (fbits(y), F)})
    assert core.get_reg(1)[0] == expected_bits
