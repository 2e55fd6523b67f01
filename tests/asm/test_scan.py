"""The compiled hot path of the assembler (voxasm/_scan.pyx) does exactly what the Python path does.

voxasm assembles the common text-section lines with the compiled ``Scanner``
when it is built and with ``_Assembler.layout_fast`` when it is not (a
pure-Python install). Both must give the same program, byte for byte, and the
same errors and warnings, in the same order, with the same lines, columns and
hints: these tests assemble the same sources both ways (the conformance
sources, the benchmark's program with and without mistakes, and generated
lines built from the spellings at the edges of every operand class) and
compare everything the caller can see. A pure-Python install has only one
path: the comparisons are skipped there, the rest of the suite tests it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.machines import PUREPYTHON
from voxasm import AssemblyError, assembler, assemble_program
from voxvm.isa import OPS, Operand

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import bench_asm  # noqa: E402  (the benchmark's program generator)

compiled_only = pytest.mark.skipif(PUREPYTHON, reason="pure-Python install: there is no compiled scanner")


def test_the_scanner_is_built_unless_this_is_a_pure_python_install():
    if PUREPYTHON:
        assert assembler.Scanner is None
    else:
        from voxasm._scan import Scanner

        assert assembler.Scanner is Scanner


def _diagnostic(d) -> tuple:
    return (d.render(), d.line, d.column, d.length, d.message, d.hint, d.severity, d.source_line)


def outcome(source: str | bytes) -> tuple:
    """Everything a caller sees of assembling ``source``."""
    warnings: list = []
    try:
        p = assemble_program(source, "t.vvs", warnings=warnings)
    except AssemblyError as error:
        result: tuple = ("error", [_diagnostic(d) for d in error.diagnostics])
    else:
        s = p.symbols
        result = ("ok", p.image, p.entry, p.data_base, p.functions, list(s.lines), s.functions,
                  s.labels, s.data)
    return result, [_diagnostic(d) for d in warnings]


def both_ways(source: str | bytes) -> tuple[tuple, tuple]:
    """``outcome`` with the compiled scanner, then with the Python path."""
    compiled = outcome(source)
    scanner = assembler.Scanner
    assembler.Scanner = None
    try:
        python = outcome(source)
    finally:
        assembler.Scanner = scanner
    return compiled, python


def corpus() -> list[Path]:
    folders = ["tests/conformance/programs", "tests/conformance/asm-errors", "tests/conformance/concurrency",
               "docs/examples", "tests/programs"]
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.vvs"))


@compiled_only
def test_every_source_of_the_repository_assembles_the_same_both_ways():
    files = corpus()
    assert len(files) > 50
    for path in files:
        compiled, python = both_ways(path.read_bytes())
        assert compiled == python, path


@compiled_only
@pytest.mark.parametrize("seed", [1, 2])
def test_the_benchmark_program_assembles_the_same_both_ways(seed):
    source = bench_asm.generate(4000, seed)
    compiled, python = both_ways(source)
    assert compiled == python and compiled[0][0] == "ok"
    compiled, python = both_ways(bench_asm.with_mistakes(source))
    assert compiled == python and compiled[0][0] == "error"


# Spellings at the edges of what each operand class's fast path accepts (voxasm.encoding._FAST).
EDGES = {
    Operand.REG: ["r0", "r9", "r10", "r31", "r32", "r00", "r07", "r-1", "R1", "r", "rr1", "r1x", "r١"],
    Operand.IMM_U64: ["0", "7", "00012", "18446744073709551615", "18446744073709551616", "99999999999999999999",
                      "000000000000000000001", "0x0", "0x", "0X1F", "0xffffffffffffffff", "0x10000000000000000",
                      "0x0000000000000001", "0x00000000000000001", "0xg", "0x-1", "0b101", "-1", "+1", "1.5", "١٢"],
    Operand.IMM_I64: ["0", "-0", "-1", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                      "-9223372036854775809", "00000000000000000001", "-0000000000000000001", "-", "+1", "--1",
                      "0x10", "1.5", "-١"],
    Operand.IMM_F64: ["1.5", ".5", "5.", "-2.5e3", "1e308", "1e309", "-1e309", "nan", "NaN", "-nan", "inf",
                      "-Infinity", "1_0.5", "1e", "7", "0x10", "١.٥", "+.5e-3"],
    Operand.IMM16: ["0", "65535", "65536", "00000000000000065535", "0x1", "-1", "1.0", "99999999999999999999"],
    Operand.ADDR: ["@l", "@fwd", "@f", "@", "@@l", "l", "xl", "@d", "@nosuch", "0", "12"],
    Operand.FUNC: ["@f", "@g", "@l", "@fwd", "@", "0", "f", "xf"],
    Operand.EXC: ["@overflow", "@OVERFLOW", "@nosuch", "1", "12"],
    Operand.DITEM: ["d", "e", "@d", "0", "99", "18446744073709551616", "nosuch", "0x10"],
}
EDGES[Operand.DADDR] = EDGES[Operand.DITEM]
ANY = sorted({token for tokens in EDGES.values() for token in tokens})
SPACES = [" ", "  ", "\t", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\u00a0", "\u3000"]
COMMENTS = ["", "", "", "", ";", "; note", "#x", " ;", '"s"', ' "s" ;c', ";\"q\"", "\x00"]
OTHER_LINES = ["", "   ", "; c", "# c", "label l2", "label fwd", "label l", "label x1 x2", "label 9x",
               "label ünï", "label l3;c", "func g", ".start", "section text", "Uadd r1 r2", "uadd: r1"]


# A right spelling of each class, for the operands not under test.
PLAIN = {Operand.REG: "r1", Operand.IMM_U64: "5", Operand.IMM_I64: "-5", Operand.IMM_F64: "1.5",
         Operand.IMM16: "1", Operand.ADDR: "@l", Operand.FUNC: "@f", Operand.EXC: "@overflow",
         Operand.DITEM: "d", Operand.DADDR: "d"}


def program(body: list[str]) -> str:
    """A text section around ``body`` that defines every name the spellings use."""
    return "\n".join(["section text", ".start", "func f", "label l", *body, "label fwd", "    halt",
                       "func g", "    ret", "section data", "    d uint 5", '    e str "x"']) + "\n"


@compiled_only
@pytest.mark.parametrize("comment", ["", " ; note", "#x"])
def test_every_edge_spelling_of_every_operand_assembles_the_same_both_ways(comment):
    body = []
    for op in OPS:
        for position, kind in enumerate(op.operands):
            for token in EDGES[kind]:
                words = [PLAIN[k] for k in op.operands]
                words[position] = token
                body.append("    " + " ".join([op.mnemonic, *words]) + comment)
    assert len(body) > 1500
    compiled, python = both_ways(program(body))
    assert compiled == python


@compiled_only
def test_every_ascii_character_separates_tokens_or_not_the_same_both_ways():
    # (str.split() cuts at \t \n \v \f \r, \x1c-\x1f and space; the scanner has its own table)
    body = [f"    uadd{c}r1{c}r2" for c in map(chr, range(128)) if c != "\n"]
    body += [f"label{c}x{ord(c)}" for c in map(chr, range(128)) if c != "\n"]
    compiled, python = both_ways(program(body))
    assert compiled == python


@st.composite
def lines(draw) -> str:
    """A line of a text section: mostly an instruction with its operand count, each operand
    a spelling at the edge of its class (sometimes of another class), in varied whitespace."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(OTHER_LINES))
    op = draw(st.sampled_from(OPS))
    kinds = list(op.operands)
    if draw(st.integers(0, 9)) == 0:     # a wrong operand count
        kinds = kinds[:-1] if kinds and draw(st.booleans()) else kinds + [Operand.REG]
    words = [op.mnemonic] + [draw(st.sampled_from(EDGES[kind] if draw(st.integers(0, 7)) else ANY))
                             for kind in kinds]
    text = draw(st.sampled_from(["", "    "]))
    for i, word in enumerate(words):
        text += (draw(st.sampled_from(SPACES[:3] if draw(st.integers(0, 3)) else SPACES)) if i else "") + word
    return text + draw(st.sampled_from(COMMENTS))


@compiled_only
@settings(max_examples=400, deadline=None)
@given(st.lists(lines(), min_size=1, max_size=12))
def test_generated_lines_assemble_the_same_both_ways(body):
    compiled, python = both_ways(program(body))
    assert compiled == python
