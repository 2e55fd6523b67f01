"""voxasm against golden bytes: the conformance programs and upstream.md §3.11's worked examples.

Every conformance ``NAME.vvs`` with a golden ``NAME.vve`` (what upstream v8.03
writes) must assemble to identical bytes; the ones without a golden use the
fixed syntax (semantics.md §3 items 21-22) and must assemble too.
"""

from __future__ import annotations

import struct

import pytest

from conftest import conformance_dir
from voxasm import assemble_program as assemble
from voxvm.formats import build_vve, load_vve
from voxvm.isa import BY_CODE, decode_at


def _sources(kind: str):
    return sorted(conformance_dir(kind).glob("*.vvs"))


GOLDEN = [p for kind in ("programs", "concurrency") for p in _sources(kind)
          if p.with_suffix(".vve").exists()]
NO_GOLDEN = [p for kind in ("programs", "concurrency") for p in _sources(kind)
             if not p.with_suffix(".vve").exists()]


def test_vectors_are_there():
    assert len(GOLDEN) >= 60
    assert {p.stem for p in NO_GOLDEN} >= {"asm_fload_int", "asm_literals", "asm_multi_data"}


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_bytes_identical(path):
    warnings = []
    program = assemble(path.read_bytes(), str(path), warnings=warnings)
    assert build_vve(program) == path.with_suffix(".vve").read_bytes()
    assert warnings == []


@pytest.mark.parametrize("path", NO_GOLDEN, ids=lambda p: p.stem)
def test_fixed_syntax_programs_assemble(path):
    program = assemble(path.read_bytes(), str(path))
    # The result is a well-formed executable whose code decodes cleanly.
    again = load_vve(build_vve(program))
    assert again.image == program.image
    address, code_end = 0, program.data_base or len(program.image)
    while address < code_end:
        address += decode_at(program.image, address).size
    assert address == code_end


@pytest.mark.parametrize("path", GOLDEN[:20], ids=lambda p: p.stem)
def test_symbols_cover_every_instruction_and_item(path):
    program = assemble(path.read_bytes(), str(path))
    symbols = program.symbols
    assert symbols.source_path == str(path)
    addresses = [a for a, _ in symbols.lines]
    assert addresses == sorted(addresses)
    lines = path.read_text(encoding="utf-8").split("\n")
    for address, line in symbols.lines:
        if address < program.data_base or not program.data_base:
            op = BY_CODE[program.image[address]]
            assert lines[line - 1].split()[0] == op.mnemonic
    assert sorted(symbols.functions) == list(range(len(program.functions)))


# --- upstream.md §3.11 worked examples ------------------------------------------------------

def _hex(text: str) -> bytes:
    return bytes.fromhex(" ".join(text.split()))


EXAMPLE_A = """section text
.start
    uload r1 42
    uload r2 1
    ncall 1 r0
    halt
"""

EXAMPLE_B = """section text
.start
    call @main
    halt

func main
    dsload r1 msg 0
    uload r2 1
    ncall 1 r0
    uload r3 3
    label loop
        udec r3
        jnz @loop
    ret

section data
    msg str "Hi"
    n const uint 7
"""

EXAMPLE_C = """section text
.start
    uload r5 16
    allocr r1 r5
    uload r2 0x4142
    uload r3 8
    store r1 r2 r3
    uload r4 1
    load r4 r6 r1 r3
    jexc @heap_read_fault @fail
    halt
label fail
    halt
"""

EXAMPLE_D = """section text
.start
    iload r1 -5
    fload r2 -2.5
    fload r3 2
    ncall 0x05 r0
    fnstind r7 @second
    callr r7
    dsload r8 arr 8
    halt
func first
    ret
func second
    ret
section data
    arr int[3] [1, -2, 3]
    pi const float 3.5
"""


def test_example_a():
    vve = build_vve(assemble(EXAMPLE_A))
    assert vve == _hex("""
        56 56 45 00 00 03 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        10 01 00 00 00 00 00 00 00 2a 10 02 00 00 00 00
        00 00 00 01 01 00 01 00 ff""")


def test_example_b():
    program = assemble(EXAMPLE_B)
    assert program.functions == (10,) and program.data_base == 64
    assert build_vve(program) == _hex("""
        56 56 45 00 00 03 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 40 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 0a
        90 00 00 00 00 00 00 00 00 ff 70 01 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 10 02 00 00
        00 00 00 00 00 01 01 00 01 00 10 03 00 00 00 00
        00 00 00 03 1a 03 48 00 00 00 00 00 00 00 34 91
        04 00 00 00 00 00 00 00 04 00 48 00 69 11 00 00
        00 00 00 00 00 08 00 00 00 00 00 00 00 07""")


def test_example_c():
    program = assemble(EXAMPLE_C)
    assert (program.entry, program.data_base, program.functions) == (0, 0, ())
    assert program.image == _hex("""
        10 05 00 00 00 00 00 00 00 10   A3 01 05   10 02 00 00 00 00 00 00 41 42
        10 03 00 00 00 00 00 00 00 08   A2 01 02 03   10 04 00 00 00 00 00 00 00 01
        A4 04 06 01 03   46 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 46   FF   FF""")


def test_example_d_with_the_fload_fix():
    """Byte-exact except `fload r3 2`, which loads 2.0 here (semantics.md §3 item 22)."""
    upstream = _hex("""
        56 56 45 00 00 03 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 43 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 02 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 41
        00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 42
        20 01 ff ff ff ff ff ff ff fb 30 02 c0 04 00 00
        00 00 00 00 30 03 00 00 00 00 00 00 00 02 01 00
        05 00 92 07 00 00 00 00 00 00 00 01 93 07 70 08
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 08
        ff 91 91 07 00 00 00 00 00 00 00 18 00 00 00 00
        00 00 00 01 ff ff ff ff ff ff ff fe 00 00 00 00
        00 00 00 03 13 00 00 00 00 00 00 00 08 40 0c 00
        00 00 00 00 00""")
    expected = bytearray(upstream)
    expected[0x66:0x6E] = struct.pack(">d", 2.0)
    vve = build_vve(assemble(EXAMPLE_D))
    assert len(vve) == 197
    assert vve == bytes(expected)


def test_example_d_upstream_bits_with_a_hex_pattern():
    """The raw bit pattern upstream stored is still reachable: `fload r3 0x2`."""
    source = EXAMPLE_D.replace("fload r3 2", "fload r3 0x2")
    assert assemble(source).image[0x66 - 0x50:0x6E - 0x50] == bytes(7) + b"\x02"
