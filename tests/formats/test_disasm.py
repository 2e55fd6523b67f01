"""The disassembler: source that re-assembles to the same bytes, listings, errors.

The central property (docs/architecture.md "Encode and decode are symmetric"): for every program,
``build_vve(assemble(disassemble(p))) == build_vve(p)``. It is checked on
every golden ``.vve`` of the conformance vectors and on random valid
programs built straight from the ISA table.
"""

from __future__ import annotations

import math
import struct

import pytest
from conftest import conformance_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxvm import isa
from voxvm.disasm import disassemble, float_literal, get_data_items, get_instructions
from voxvm.errors import InputError
from voxvm.formats import build_vve, load_vve
from voxvm.program import Program, Symbols


def reassemble(source: str, warnings: list | None = None) -> Program:
    from voxasm import assemble_program as assemble

    return assemble(source, "<disassembly>", warnings=warnings)


def assert_round_trip(program: Program, clean: bool = True) -> str:
    """Disassemble, re-assemble, compare the .vve bytes.

    ``clean``: the assembler must not even warn (true for sensible programs;
    random ones may hold oddities it lints, such as ``jexc 0``).
    """
    source = disassemble(program)
    warnings: list = []
    again = reassemble(source, warnings)
    assert build_vve(again) == build_vve(program), source
    if clean:
        assert warnings == [], "\n".join(w.render() for w in warnings)
    return source


def _golden_files() -> list:
    return sorted(conformance_dir("programs").glob("*.vve")) + sorted(conformance_dir("concurrency").glob("*.vve"))


# --------------------------------------------------------------------------
# Conformance vectors

@pytest.mark.parametrize("path", _golden_files(), ids=lambda p: p.name)
def test_conformance_round_trip(path):
    program = load_vve(path.read_bytes(), str(path))
    assert_round_trip(program)
    # The listing of a well-formed program shows every instruction.
    listing = disassemble(program, listing=True)
    assert len([line for line in listing.splitlines() if line[3:5] == "0x"]) >= len(get_instructions(program))


def test_golden_files_exist():
    assert len(_golden_files()) > 50


@pytest.mark.parametrize("path", sorted(conformance_dir("programs").glob("*.vvs")), ids=lambda p: p.name)
def test_assembled_sources_round_trip_with_their_names(path):
    """Programs straight from voxasm carry symbols: the disassembly keeps function names."""
    program = reassemble(path.read_text(encoding="utf-8"))
    source = assert_round_trip(program)
    for name in program.symbols.functions.values():
        assert f"func {name}\n" in source


# --------------------------------------------------------------------------
# Random valid programs

# Any text but a newline (it ends the source line); lone surrogates cannot be encoded.
SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=12)
FLOAT_BITS = st.one_of(
    st.floats(allow_nan=False).map(lambda f: struct.unpack(">Q", struct.pack(">d", f))[0]),
    st.sampled_from([0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001, 0xFFFFFFFFFFFFFFFF]))
U64 = st.integers(0, (1 << 64) - 1)


@st.composite
def data_items(draw) -> bytes:
    """One encoded data item of any assemblable kind."""
    kind = draw(st.sampled_from(list(isa.DataType)))
    const = isa.DATA_CONST_BIT if draw(st.booleans()) else 0
    if kind is isa.DataType.STR:
        payload = draw(SAFE_TEXT).encode("utf-16-be")
    else:
        count = 1 if kind in (isa.DataType.UINT, isa.DataType.INT, isa.DataType.FLOAT) \
            else draw(st.integers(1, 4))
        element = FLOAT_BITS if kind in (isa.DataType.FLOAT, isa.DataType.FLOAT_ARRAY) else U64
        payload = b"".join(v.to_bytes(8, "big") for v in draw(st.lists(element, min_size=count, max_size=count)))
    return bytes([kind | const]) + len(payload).to_bytes(8, "big") + payload


@st.composite
def valid_programs(draw) -> Program:
    """A random program that some .vvs source produces (operands in range, targets sensible)."""
    ops = draw(st.lists(st.sampled_from(isa.OPS), min_size=1, max_size=25))
    starts, address = [], 0
    for op in ops:
        starts.append(address)
        address += op.size
    code_end = address
    items = draw(st.lists(data_items(), max_size=5))
    item_offsets, offset = [], 0
    for item in items:
        item_offsets.append(offset)
        offset += len(item)
    # A function may name the end of the code only when data follows it: with nothing
    # after the code, that address is outside the image and the loader rejects the file.
    function_starts = starts + [code_end] if items else starts
    functions = sorted(draw(st.lists(st.sampled_from(function_starts), max_size=4)))

    def operand(kind: isa.Operand, mnemonic: str) -> int:
        if kind is isa.Operand.REG:
            return draw(st.integers(0, 31))
        if kind is isa.Operand.IMM_F64:
            return draw(FLOAT_BITS)
        if kind is isa.Operand.IMM16:
            return draw(st.integers(0, 0xFFFF))
        if kind is isa.Operand.ADDR:  # mostly instruction starts, sometimes any address
            return draw(st.one_of(st.sampled_from(starts), U64))
        if kind is isa.Operand.FUNC:
            return draw(st.one_of(st.integers(0, len(functions) + 1), U64))
        if kind is isa.Operand.EXC:
            return draw(st.one_of(st.integers(1, 11), st.integers(0, 20)))
        if kind in (isa.Operand.DITEM, isa.Operand.DADDR) and item_offsets:
            return draw(st.one_of(st.sampled_from(item_offsets), st.integers(0, 64), U64))
        return draw(U64)

    code = b"".join(isa.encode(op, [operand(kind, op.mnemonic) for kind in op.operands]) for op in ops)
    data = b"".join(items)
    # Without items, the data base is where the last (empty) `section data` line was: none (0),
    # at the end of the code, or between two instructions.
    data_base = code_end if items else draw(st.sampled_from([0, code_end, *starts]))
    return Program(image=code + data, entry=draw(st.sampled_from(starts)),
                   data_base=data_base, functions=tuple(functions))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_programs())
def test_random_programs_round_trip(program):
    assert_round_trip(program, clean=False)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=80), st.data())
def test_listing_never_fails(image, data):
    """Listings show any bytes at all, without raising."""
    # Addresses a little past the image too: a Program built in memory is not validated.
    address = st.integers(0, len(image) + 3)
    program = Program(image=image, entry=data.draw(address), data_base=data.draw(address),
                      functions=tuple(data.draw(st.lists(address, max_size=3))))
    listing = disassemble(program, listing=True)
    assert listing.startswith("; ")
    try:
        assert disassemble(program).startswith("; disassembled")
    except InputError as exc:
        assert "image offset" in str(exc)


# --------------------------------------------------------------------------
# The printed form

EXAMPLE_B = Program(  # upstream.md §3.11, example B
    image=bytes.fromhex(
        "900000000000000000ff" "700100000000000000000000000000000000" "10020000000000000001"
        "01000100" "10030000000000000003" "1a03" "480000000000000034" "91"
        "040000000000000004004800691100000000000000080000000000000007"),
    entry=0, data_base=64, functions=(10,))


def test_source_golden():
    assert disassemble(EXAMPLE_B) == (
        "; disassembled by voxvm dis from <memory>\n"
        "section text\n"
        ".start\n"
        "    call @f0\n"
        "    halt\n"
        "func f0\n"
        "    dsload r1 d0 0\n"
        "    uload r2 1\n"
        "    ncall 0x01 r0\n"
        "    uload r3 3\n"
        "label L_0034\n"
        "    udec r3\n"
        "    jnz @L_0034\n"
        "    ret\n"
        "section data\n"
        '    d0 str "Hi"\n'
        "    d1 const uint 7\n")


def test_a_file_name_with_control_characters_stays_in_the_header_comment():
    named = Program(image=EXAMPLE_B.image, entry=EXAMPLE_B.entry, data_base=EXAMPLE_B.data_base,
                    functions=EXAMPLE_B.functions, path="evil\n    halt\n\x1b[31mred.vve")
    source = assert_round_trip(named)
    assert source.splitlines()[:2] == ["; disassembled by voxvm dis from evil\\n    halt\\n\\x1b[31mred.vve",
                                       "section text"]
    listing = disassemble(named, listing=True)          # its header line too
    assert listing.splitlines()[0].startswith("; evil\\n    halt\\n\\x1b[31mred.vve: 94-byte image")


def test_listing_golden():
    assert disassemble(EXAMPLE_B, listing=True) == (
        "; <memory>: 94-byte image, entry 0x0, data_base 0x40, 1 function(s)\n"
        ";   function 0 f0 at 0xa\n"
        "section text\n"
        "          .start:\n"
        "   0x00000  90 00 00 00 00 00 00 00 00                              call @f0  ; -> 0xa\n"
        "   0x00009  ff                                                      halt\n"
        "          func f0:\n"
        "   0x0000a  70 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   dsload r1 d0 0\n"
        "   0x0001c  10 02 00 00 00 00 00 00 00 01                           uload r2 1\n"
        "   0x00026  01 00 01 00                                             ncall 0x01 r0\n"
        "   0x0002a  10 03 00 00 00 00 00 00 00 03                           uload r3 3\n"
        "          L_0034:\n"
        ">> 0x00034  1a 03                                                   udec r3\n"
        "   0x00036  48 00 00 00 00 00 00 00 34                              jnz @L_0034  ; to 0x34\n"
        "   0x0003f  91                                                      ret\n"
        "section data  ; data_base 0x40\n"
        '   0x00040  +0      d0 str "Hi"\n'
        "   0x0004d  +13     d1 const uint 7\n")


def test_symbol_names_are_used():
    named = Program(EXAMPLE_B.image, 0, 64, (10,), symbols=Symbols(functions={0: "main"}))
    source = disassemble(named)
    assert "func main\n" in source and "call @main\n" in source


def test_clashing_symbol_names_are_made_unique():
    image = bytes.fromhex("91" "91" "91")
    named = Program(image, 0, 0, (0, 1, 2), symbols=Symbols(functions={0: "f1", 2: "L_0000 bad"}))
    source = disassemble(named)
    assert "func f1\n" in source and "func f1_1\n" in source and "func f2\n" in source


def test_operand_forms():
    code = b"".join([
        isa.encode(isa.BY_MNEMONIC["iload"], (1, (1 << 64) - 5)),
        isa.encode(isa.BY_MNEMONIC["fload"], (2, 0x8000000000000000)),
        isa.encode(isa.BY_MNEMONIC["fload"], (3, 0x7FF0000000000000)),
        isa.encode(isa.BY_MNEMONIC["fload"], (4, 0x7FF8000000000001)),
        isa.encode(isa.BY_MNEMONIC["jexc"], (8, 0)),
        isa.encode(isa.BY_MNEMONIC["jexc"], (99, 12345)),
        isa.encode(isa.BY_MNEMONIC["call"], (7,)),
        isa.encode(isa.BY_MNEMONIC["dsderef"], (1, 2, 0)),
        isa.encode(isa.BY_MNEMONIC["halt"], ()),
    ])
    source = disassemble(Program(image=code))
    for expected in ("iload r1 -5", "fload r2 -0.0", "fload r3 inf", "fload r4 0x7ff8000000000001",
                     "label L_0000", "jexc @nativefault @L_0000", "jexc 99 12345", "call 7",
                     "dsderef r1 r2 0"):
        assert f"{expected}\n" in source


@pytest.mark.parametrize("bits", [0x0, 0x8000000000000000, 0x3FB999999999999A, 0x0000000000000001,
                                  0x7FEFFFFFFFFFFFFF, 0x7FF0000000000000, 0xFFF0000000000000,
                                  0x7FF8000000000000, 0xFFF8000000000000, 0x7FF4000000000000,
                                  0x4341C37937E08000, 0x44B52D02C7E14AF6])
def test_float_literal_is_exact(bits):
    text = float_literal(bits)
    if text.startswith("0x"):
        assert math.isnan(struct.unpack(">d", bits.to_bytes(8, "big"))[0])
        assert int(text, 16) == bits
    else:
        assert "." in text or text.lstrip("-") in ("inf", "nan")
        assert struct.unpack(">Q", struct.pack(">d", float(text)))[0] == bits


def test_data_only_program():
    item = bytes([1]) + (8).to_bytes(8, "big") + (5).to_bytes(8, "big")
    program = Program(image=item)  # data_base 0 and the bytes are not code
    assert get_instructions(program) == []
    assert [i.offset for i in get_data_items(program)] == [0]
    assert "   0x00000  +0      d0 uint 5\n" in disassemble(program, listing=True)
    with pytest.raises(InputError, match="no instruction"):
        disassemble(program)  # voxasm needs at least one instruction


def test_empty_data_section_between_instructions():
    program = reassemble("section text\n.start\n uload r1 1\nsection data\nsection text\n halt\n")
    assert program.data_base == 10 and len(program.image) == 11
    source = assert_round_trip(program)
    assert "    uload r1 1\nsection data\nsection text\n    halt\n" in source


# --------------------------------------------------------------------------
# Bytes no source can produce

def _item(type_byte: int, payload: bytes) -> bytes:
    return bytes([type_byte]) + len(payload).to_bytes(8, "big") + payload


HALT = b"\xff"


@pytest.mark.parametrize("program, offset, words", [
    (Program(image=HALT + b"\x00"), 1, "unknown opcode 0x00"),
    (Program(image=bytes.fromhex("1001000000")), 0, "truncated uload"),
    (Program(image=bytes.fromhex("102800000000000000ff") + HALT), 0, "register byte 40"),
    (Program(image=bytes.fromhex("01000120")), 0, "register byte 32"),
    (Program(image=HALT + bytes.fromhex("1001000000000000000000"), data_base=3), 1, "runs into the data segment"),
    (Program(image=HALT + bytes.fromhex("10010000000000000000"), data_base=3), 3, "data base is neither"),
    (Program(image=HALT + _item(1, b"\x00" * 8)[:12], data_base=1), 1, "only 3 bytes left"),
    (Program(image=HALT + b"\x01\x02", data_base=1), 1, "header needs 9 bytes"),
    (Program(image=HALT + _item(1, b"\x00" * 4), data_base=1), 1, "4-byte payload"),
    (Program(image=HALT + _item(5, b"\x00" * 8), data_base=1), 1, "type byte 0x05"),
    (Program(image=HALT + _item(0x24, b"\x00A"), data_base=1), 1, "type byte 0x24"),
    (Program(image=HALT + _item(6, b""), data_base=1), 1, "0-byte payload"),
    (Program(image=HALT + _item(4, b"\x00A\x00"), data_base=1), 1, "odd payload length"),
    (Program(image=HALT + _item(4, "a\nb".encode("utf-16-be")), data_base=1), 1, "line break"),
    (Program(image=HALT + _item(4, b"\x00A\xd8\x00"), data_base=1), 12, "lone UTF-16 surrogate"),
    (Program(image=bytes.fromhex("10010000000000000000") + HALT, entry=3), 3, "entry point"),
    (Program(image=HALT + HALT, functions=(1, 0)), 0, "not in address order"),
    (Program(image=bytes.fromhex("10010000000000000000") + HALT, functions=(2,)), 2,
     "does not start at an instruction"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_unrepresentable_bytes_are_reported(program, offset, words):
    with pytest.raises(InputError) as caught:
        disassemble(program)
    message = str(caught.value)
    assert words in message
    assert f"image offset {offset} (0x{offset:x})" in message
    assert caught.value.exit_status == 65
    # The listing still shows everything.
    assert disassemble(program, listing=True)


def test_listing_shows_raw_bytes_for_bad_code_and_data():
    program = Program(image=HALT + b"\xee" + HALT + b"\x01\x02\x03", data_base=3)
    listing = disassemble(program, listing=True)
    assert "; .byte 0xee  (unknown opcode 0xee in the code region)" in listing
    assert ".byte 0x01, 0x02, 0x03" in listing


# --------------------------------------------------------------------------
# Command line

def test_cli_dis(tmp_path):
    from typer.testing import CliRunner

    from voxvm.cli.app import app

    path = tmp_path / "b.vve"
    path.write_bytes(build_vve(EXAMPLE_B))
    runner = CliRunner()
    result = runner.invoke(app, ["dis", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == disassemble(load_vve(path.read_bytes(), str(path)))
    listing = runner.invoke(app, ["dis", "--listing", str(path)])
    assert listing.exit_code == 0 and ">> 0x00034" in listing.stdout

    bad = tmp_path / "bad.vve"
    bad.write_bytes(build_vve(Program(image=HALT + b"\x00")))
    result = runner.invoke(app, ["dis", str(bad)])
    assert result.exit_code == 65
    assert "cannot disassemble to source: unknown opcode 0x00" in result.stderr
