"""The .vvs language as voxasm accepts it: literals, comments, sections, data items, symbols.

Includes one test per upstream assembler bug that semantics.md §3 items 21-23
fix (upstream.md §11 items 37-47), named ``test_bug_NN_...``.
"""

from __future__ import annotations

import struct

import pytest

from voxasm import AssemblyError, assemble_program as assemble
from voxvm.formats import build_vve


def image(body: str) -> bytes:
    """Image of ``body`` placed after ``section text``."""
    return assemble("section text\n" + body).image


def code(body: str) -> bytes:
    """The code bytes of ``body`` (the data segment cut off)."""
    program = assemble("section text\n" + body)
    return program.image[:program.data_base] if program.data_base else program.image


def error_lines(source: str) -> list[int]:
    with pytest.raises(AssemblyError) as info:
        assemble(source, "t.vvs")
    return info.value.lines


def only_error(source: str):
    with pytest.raises(AssemblyError) as info:
        assemble(source, "t.vvs")
    assert len(info.value.diagnostics) == 1, info.value.render()
    return info.value.diagnostics[0]


def warnings_of(source: str) -> list:
    found = []
    assemble(source, "t.vvs", warnings=found)
    return found


def u64(value: int) -> bytes:
    return struct.pack(">Q", value & (2**64 - 1))


def f64(value: float) -> bytes:
    return struct.pack(">d", value)


# --- numbers ---------------------------------------------------------------------------

@pytest.mark.parametrize("literal, value", [
    ("42", 42), ("+42", 42), ("0x2a", 42), ("0X2A", 42), ("0b101010", 42), ("0B101010", 42),
    ("0", 0), ("18446744073709551615", 2**64 - 1), ("0xFFFFFFFFFFFFFFFF", 2**64 - 1), ("007", 7),
])
def test_unsigned_literals(literal, value):
    assert image(f"uload r1 {literal}\nhalt") == b"\x10\x01" + u64(value) + b"\xff"


@pytest.mark.parametrize("literal, value", [
    ("-5", -5), ("5", 5), ("-0x10", -16), ("0x10", 16), ("-0b11", -3),
    ("-9223372036854775808", -2**63), ("9223372036854775807", 2**63 - 1),
])
def test_signed_literals(literal, value):
    assert image(f"iload r1 {literal}\nhalt") == b"\x20\x01" + u64(value) + b"\xff"


@pytest.mark.parametrize("literal, value", [
    ("1.5", 1.5), ("-2.5", -2.5), ("2", 2.0), ("-7", -7.0), ("0", 0.0), ("1e5", 1e5),
    ("1.5e3", 1500.0), (".5", 0.5), ("5.", 5.0), ("inf", float("inf")), ("-inf", float("-inf")),
    ("1.0e308", 1.0e308), ("5.0e-324", 5e-324), ("-0.0", -0.0), ("1e400", float("inf")),
])
def test_float_literals(literal, value):
    assert image(f"fload r1 {literal}\nhalt") == b"\x30\x01" + f64(value) + b"\xff"


def test_float_nan_and_hex_bit_patterns():
    nan = image("fload r1 nan\nhalt")[2:10]
    assert struct.unpack(">d", nan)[0] != struct.unpack(">d", nan)[0]
    assert image("fload r1 0x3FF0000000000000\nhalt")[2:10] == f64(1.0)
    assert image("fload r1 0x7ff8000000000001\nhalt")[2:10] == u64(0x7FF8000000000001)


def test_float_token_in_an_integer_immediate_keeps_upstream_bits():
    # upstream.md §3.4 (c) 6: a token with '.' is an f64 for any 8-byte immediate.
    assert image("uload r1 1.5\nhalt")[2:10] == f64(1.5)
    assert image("iload r1 -2.5\nhalt")[2:10] == f64(-2.5)
    assert image("alloc r1 0.5\nhalt")[2:10] == f64(0.5)


@pytest.mark.parametrize("line", [
    "uload r1 -1", "uload r1 18446744073709551616", "uload r1 1_000", "uload r1 0x", "uload r1 0b2",
    "uload r1 12z4", "uload r1 ٣", "iload r1 9223372036854775808", "iload r1 -9223372036854775809",
    "fload r1 1.2.3", "fload r1 -0x10", "fload r1 0x10000000000000000", "fload r1 infinit",
    "uload r1 1e5", "ncall 1.0 r0", "ncall -1 r0", "uload r1 @x",
])
def test_bad_numbers_are_errors(line):
    diagnostic = only_error(f"section text\n{line}\nhalt\n")
    words = line.split()
    bad = words[1] if words[0] == "ncall" else words[2]
    assert (diagnostic.line, diagnostic.column) == (2, line.index(bad, len(words[0])) + 1)
    assert diagnostic.length == len(bad)


# --- registers and operands -------------------------------------------------------------

def test_registers_are_exactly_r0_to_r31():
    assert image("movr r0 r31\nhalt") == b"\x60\x00\x1f\xff"
    assert image("movr r07 r1\nhalt") == b"\x60\x07\x01\xff"  # upstream parses the digits
    for bad in ("r32", "r200", "R1", "x1", "r-1", "r", "rr1", "r1.5"):
        diagnostic = only_error(f"section text\nmovr r1 {bad}\nhalt\n")
        assert (diagnostic.line, diagnostic.column) == (2, 9), bad


def test_operand_classes_are_checked():
    only_error("section text\nuload r1 r2\nhalt\n")   # a register where a number goes
    only_error("section text\nuadd r1 5\nhalt\n")     # a number where a register goes
    only_error("section text\njmp r1\nhalt\n")
    only_error("section text\ncall r1\nhalt\n")


def test_every_mnemonic_assembles_with_its_operands():
    """One line per ISA row, operands generated from voxvm.isa; sizes from the table."""
    from voxvm.isa import OPS, Operand

    sample = {Operand.REG: "r3", Operand.IMM_U64: "7", Operand.IMM_I64: "-7", Operand.IMM_F64: "1.5",
              Operand.IMM16: "1", Operand.ADDR: "@here", Operand.FUNC: "@f", Operand.EXC: "@nativefault",
              Operand.DITEM: "item", Operand.DADDR: "item"}
    lines = ["section text", "func f", "label here"]
    for op in OPS:
        lines.append(" ".join([op.mnemonic] + [sample[o] for o in op.operands]))
    lines += ["section data", "item uint 1"]
    program = assemble("\n".join(lines))
    assert program.data_base == sum(op.size for op in OPS)
    address = 0
    for op in OPS:
        assert program.image[address] == op.code
        address += op.size


# --- comments and tokens ----------------------------------------------------------------

def test_comments_glued_or_separate():
    expected = image("uload r2 1\nhalt")
    for text in ("uload r2 1;stdout\nhalt", "uload r2 1#x\nhalt", "uload r2 1 ; x\nhalt#end",
                 ";only a comment\n  # another\nuload r2 1\nhalt ;", "uload\tr2\t1\r\nhalt\r\n",
                 "\n\n   \nuload r2 1\n\nhalt\n\n"):
        assert image(text) == expected, text


def test_comment_markers_inside_strings_are_text():
    program = assemble('section text\nhalt\nsection data\ns str "a;b # c" ; real comment\n')
    assert program.image[1 + 9:] == "a;b # c".encode("utf-16-be")


def test_directives_take_glued_comments():
    program = assemble("section text;c\nfunc f#c\n.start;c\nlabel l ; c\njmp @l\n")
    assert program.functions == (0,) and program.image == b"\x40" + u64(0)


def test_utf8_bom_is_ignored():
    assert assemble(b"\xef\xbb\xbfsection text\nhalt\n").image == b"\xff"


# --- sections, symbols, layout ----------------------------------------------------------

def test_forward_and_backward_references():
    program = assemble("section text\n.start\njmp @end\nlabel top\ncall @f\njmp @top\n"
                       "label end\nhalt\nfunc f\nret\n")
    assert program.image == (b"\x40" + u64(27) + b"\x90" + u64(0) + b"\x40" + u64(9)
                             + b"\xff\x91")
    assert program.functions == (28,)


def test_start_last_wins_with_a_warning():
    found = warnings_of("section text\n.start\nhalt\n.start\nhalt\n")
    assert assemble("section text\n.start\nhalt\n.start\nhalt\n").entry == 1
    assert [w.line for w in found] == [4]


def test_function_indices_in_definition_order():
    program = assemble("section text\ncall @b\nfunc a\nret\nfunc b\nfnstind r1 @a\nret\n")
    assert program.functions == (9, 10)
    assert program.image[1:9] == u64(1)
    assert program.symbols.functions == {0: "a", 1: "b"}


def test_numeric_call_index_and_jump_address():
    assert image("call 0x2\njmp 0b11\njexc 0x5 7\nhalt") == (
        b"\x90" + u64(2) + b"\x40" + u64(3) + b"\x46" + u64(5) + u64(7) + b"\xff")


def test_jexc_exception_names_case_insensitive_and_enum_spellings():
    for name in ("@heap_read_fault", "@HEAP_READ_FAULT", "@HeapReadFault", "@heapreadfault", "5"):
        assert image(f"label l\njexc {name} @l")[1:9] == u64(5), name
    assert image("label l\njexc @MainSegmFault @l")[1:9] == u64(11)


def test_jexc_unknown_number_is_a_warning():
    found = warnings_of("section text\nlabel l\njexc 12 @l\n")
    assert len(found) == 1 and "12" in found[0].message


def test_data_ops_take_bare_labels_or_numbers():
    program = assemble("section text\ndsload r1 b 0x8\ndsrload r1 r2 a\nhalt\n"
                       "section data\na uint 1\nb int[2] [1, 2]\n")
    assert program.image[:30] == (b"\x70\x01" + u64(17) + u64(8) + b"\x71\x01\x02" + u64(0) + b"\xff")


def test_several_data_sections_are_merged_after_the_code():
    program = assemble("section data\nfirst uint 1\nsection text\n.start\ndsload r1 second 0\nhalt\n"
                       "section data\nsecond uint 2\nsection text\nfunc f\nret\nsection data\nthird uint 3\n")
    assert program.data_base == 20
    assert program.functions == (19,)
    assert program.image[2:10] == u64(17)
    assert program.image[20:] == b"".join(b"\x01" + u64(8) + u64(v) for v in (1, 2, 3))


def test_data_base_without_data_matches_upstream():
    assert assemble("section text\nhalt\n").data_base == 0
    assert assemble("section text\nhalt\nsection data\n").data_base == 1


def test_names_share_one_namespace():
    for source in ("section text\nlabel x\nfunc x\nhalt\n",
                   "section text\nlabel x\nlabel x\nhalt\n",
                   "section text\nhalt\nsection data\nx uint 1\nx uint 2\n",
                   "section text\nlabel x\nhalt\nsection data\nx uint 1\n"):
        assert error_lines(source) == [3] or error_lines(source) == [5], source


def test_jump_to_a_function_is_an_error_with_a_hint():
    diagnostic = only_error("section text\nfunc f\njmp @f\n")
    assert "function" in diagnostic.hint


@pytest.mark.parametrize("source, line", [
    ("section text\nlabel\nhalt\n", 2),
    ("section text\nfunc 1abc\nhalt\n", 2),
    ("section text\nfunc @f\nhalt\n", 2),
    ("section\nhalt\n", 1),
    ("section code\nhalt\n", 1),
    ("section text\nUADD r1 r2\nhalt\n", 2),
    ("section text\nloop:\nhalt\n", 2),
    ("section text\nuload r1 \"x\"\nhalt\n", 2),
])
def test_directive_and_mnemonic_errors(source, line):
    assert error_lines(source) == [line]


# --- data items ---------------------------------------------------------------------------

def item(text: str) -> bytes:
    program = assemble(f"section text\nhalt\nsection data\n{text}\n")
    return program.image[1:]


def test_scalar_items():
    assert item("x uint 0xff") == b"\x01" + u64(8) + u64(255)
    assert item("x int -5") == b"\x02" + u64(8) + u64(-5)
    assert item("x const int 0b11") == b"\x12" + u64(8) + u64(3)
    assert item("x float 2") == b"\x03" + u64(8) + f64(2.0)
    assert item("x float -1e3") == b"\x03" + u64(8) + f64(-1000.0)
    assert item("x const float inf") == b"\x13" + u64(8) + f64(float("inf"))


def test_string_items():
    assert item('s str "Hi"') == b"\x04" + u64(4) + "Hi".encode("utf-16-be")
    assert item('s str ""') == b"\x04" + u64(0)
    assert item('s const str "a"') == b"\x14" + u64(2) + b"\x00a"
    # verbatim between the first and the last quote; no escapes
    assert item('cmd str "echo "test""') == b"\x04" + u64(22) + 'echo "test"'.encode("utf-16-be")
    assert item('s str "a\\nb"') == b"\x04" + u64(8) + "a\\nb".encode("utf-16-be")
    assert item('s str "  spaced\tout  "')[9:] == "  spaced\tout  ".encode("utf-16-be")


def test_array_items():
    assert item("a uint[3] [1, 0x2, 0b11]") == b"\x06" + u64(24) + u64(1) + u64(2) + u64(3)
    assert item("a int[2] [-1,2]") == b"\x07" + u64(16) + u64(-1) + u64(2)
    assert item("a const float[2] [ 0.5 , 2 ]") == b"\x18" + u64(16) + f64(0.5) + f64(2.0)
    assert item("a uint[] [7]") == b"\x06" + u64(8) + u64(7)


def test_array_count_mismatch_is_a_warning():
    found = warnings_of("section text\nhalt\nsection data\na uint[2] [1, 2, 3]\n")
    assert len(found) == 1 and found[0].line == 4


@pytest.mark.parametrize("text", [
    "a uint[3] []", "a uint[3] [1,,2]", "a uint[3] [1, 2,]", "a uint[3] [1 2]", "a uint[3] 1, 2",
    "a uint[3] [1, 2", "a uint[3] [1.5]", "a int[1] [x]", "a uint[3]", "a uint", "a uint -1",
    "a int 0.5", "a float abc", "a unit 5", "a", "1a uint 5", 'a uint "5"', "a uint[3] !zeros=0",
    "a uint[3] !zeros=x", 's str "abc', "s str abc", 's str x "abc"', "a uint[1] !zeros=99999999999",
])
def test_bad_items_are_errors(text):
    assert error_lines(f"section text\nhalt\nsection data\n{text}\n") == [4]


# --- the fixed upstream bugs (upstream.md §11 items 37-47) -----------------------------------

def test_bug_37_section_state_does_not_leak_between_passes():
    # Code before any `section text`, file ends inside `section data`: upstream
    # parsed the first code lines as data in pass 2.
    program = assemble("uload r1 1\nhalt\nsection data\nx uint 5\n")
    assert program.image[:11] == b"\x10\x01" + u64(1) + b"\xff"
    assert program.data_base == 11


def test_bug_38_hex_and_binary_everywhere():
    program = assemble("section text\njmp 0x0\ncall 0b0\njexc 0x1 0x0\ndsload r1 0x0 0x9\nfnstind r1 0x0\n"
                       "func f\nhalt\nsection data\nx uint 0x10\ny int -0x10\nz uint[2] [0x1, 0b1]\n")
    assert program.image[:9] == b"\x40" + u64(0)
    data = program.image[program.data_base:]
    assert data[9:17] == u64(16) and data[26:34] == u64(-16)


def test_bug_39_zeros_for_every_array_type_with_or_without_const():
    for kind, byte in (("uint", 6), ("int", 7), ("float", 8)):
        for const in ("", "const "):
            data = item(f"a {const}{kind}[4] !zeros=4\nb uint 9")
            flag = 0x10 if const else 0
            assert data[:9 + 32] == bytes([byte | flag]) + u64(32) + bytes(32), (kind, const)
            assert data[41:] == b"\x01" + u64(8) + u64(9)  # the next item is where layout says


def test_bug_39_comment_with_commas_and_brackets_after_an_array():
    program = assemble("section text\ndsload r1 b 0\nhalt\nsection data\n"
                       "a uint[2] [1, 2] ; note [x, y], z\nb uint 5\n")
    assert program.image[2:10] == u64(25)
    assert program.image[program.data_base + 25:] == b"\x01" + u64(8) + u64(5)


def test_bug_40_non_bmp_characters_become_surrogate_pairs():
    data = item('s str "a😀b"\nn uint 1')
    assert data[:9] == b"\x04" + u64(8)
    assert data[9:17] == b"\x00a\xd8\x3d\xde\x00\x00b"
    assert data[17:] == b"\x01" + u64(8) + u64(1)


def test_bug_41_operand_counts_are_checked():
    assert error_lines("section text\nuadd r1\nmovr r1 r2 r3\nhalt\n") == [2, 3]
    assert error_lines("section text\nncall 1\nhalt\n") == [2]
    assert error_lines("section text\nhalt now\n") == [2]


def test_bug_41_extra_words_after_call_and_data_ops_only_warn():
    # upstream reads a fixed number of tokens there, so these lines assemble identically.
    source = "section text\ncall @f the main work\ndsload r1 x 0 load it\nfunc f\nret\nsection data\nx uint 1\n"
    found = warnings_of(source)
    assert [w.line for w in found] == [2, 3]
    assert assemble(source).image[:9] == b"\x90" + u64(0)


def test_bug_41_r_and_dot_do_not_change_operand_kinds():
    assert error_lines("section text\nuload r1 r2\nhalt\n") == [2]    # not a register byte
    assert error_lines("section text\nncall 1.5 r0\nhalt\n") == [2]   # not 8 bytes of f64


def test_bug_42_fload_integer_and_ncall_range():
    assert image("fload r1 2\nhalt")[2:10] == f64(2.0)
    assert image("ncall 0xFFFF r0\nhalt") == b"\x01\xff\xff\x00\xff"
    assert error_lines("section text\nncall 0x10000 r0\nhalt\n") == [2]
    assert error_lines("section text\nncall 65536 r0\nhalt\n") == [2]


def test_bug_43_glued_comment_markers():
    assert image(";glued\nuload r2 1;x\nhalt#x") == image("uload r2 1\nhalt")


def test_bug_44_duplicate_function_is_an_error_not_a_corrupt_table():
    with pytest.raises(AssemblyError) as info:
        assemble("section text\ncall @f\nfunc f\nret\nfunc f\nret\n", "t.vvs")
    assert info.value.lines == [5]
    assert "line 3" in info.value.diagnostics[0].message


def test_bug_45_several_data_sections_have_correct_offsets():
    program = assemble("section data\na uint 1\nsection text\ndsload r1 b 0\nhalt\n"
                       "section data\nb uint 2\n")
    assert program.image[2:10] == u64(17)
    assert program.data_base == 19
    assert program.image[19 + 17 + 9:] == u64(2)


def test_bug_46_code_and_data_size_fields_stay_zero():
    vve = build_vve(assemble("section text\nhalt\nsection data\nx uint 1\n"))
    assert vve[0x16:0x26] == bytes(16)


def test_empty_and_comment_only_files_are_errors():
    for source in ("", "\n\n", "; nothing\n# here\n", "section text\n", "section data\nx uint 1\n"):
        diagnostic = only_error(source)
        assert "no code" in diagnostic.message and diagnostic.line == 1


def test_nul_inside_a_string_is_text():
    assert item('s str "a\x00b"') == b"\x04" + u64(6) + b"\x00a\x00\x00\x00b"


# --- property: every operand form encodes the value decode_at reads back -------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from voxvm.isa import OPS, Operand, decode_at  # noqa: E402


def _spell(value: int, style: int) -> str:
    return (str(value), hex(value), bin(value), "+" + str(value), hex(value).upper().replace("X", "x"))[style]


@st.composite
def instruction(draw):
    op = draw(st.sampled_from(OPS))
    words, values = [op.mnemonic], []
    for kind in op.operands:
        style = draw(st.integers(0, 4))
        if kind is Operand.REG:
            value = draw(st.integers(0, 31))
            words.append(f"r{value}")
        elif kind is Operand.IMM16:
            value = draw(st.integers(0, 0xFFFF))
            words.append(_spell(value, style))
        elif kind is Operand.IMM_I64:
            value = draw(st.integers(-2**63, 2**63 - 1))
            words.append(str(value) if style == 0 or value < 0 else _spell(value, style))
            value &= 2**64 - 1
        elif kind is Operand.IMM_F64:
            number = draw(st.floats(allow_nan=False))
            words.append(repr(number))
            value = struct.unpack(">Q", struct.pack(">d", number))[0]
        else:  # u64 immediates, numeric addresses, indices, exception numbers, data offsets
            value = draw(st.integers(0, 2**64 - 1) if kind is not Operand.EXC else st.integers(1, 11))
            words.append(_spell(value, style))
        values.append(value)
    return op, " ".join(words), tuple(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(instruction(), min_size=1, max_size=8))
def test_operands_round_trip_through_decode(instructions):
    program = assemble("section text\n" + "\n".join(line for _, line, _ in instructions) + "\n")
    address = 0
    for op, line, values in instructions:
        decoded = decode_at(program.image, address)
        assert (decoded.op, decoded.operands) == (op, values), line
        address += op.size
    assert address == len(program.image)
