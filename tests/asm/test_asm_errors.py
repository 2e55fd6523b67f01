"""voxasm diagnostics: the asm-errors vectors, the rendered format, and hostile input.

Every error of a file is reported (semantics.md §5) as ``file:LINE:COL: error:
message`` plus the source line and a caret; bad input of any kind gives
diagnostics (``AssemblyError``, exit status 65), never a traceback.
"""

from __future__ import annotations

import re

import pytest

from conftest import conformance_dir
import voxasm
from voxasm import AssemblyError, assemble_program as assemble
from voxvm.errors import ExitStatus, InputError

CASES = sorted(conformance_dir("asm-errors").glob("*.vvs"))
HEADLINE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): error: .+$", re.M)


def failure(source, path="t.vvs") -> AssemblyError:
    with pytest.raises(AssemblyError) as info:
        assemble(source, path)
    return info.value


def test_there_are_error_vectors():
    assert len(CASES) >= 10


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_asm_error_vectors_report_exactly_their_lines(path):
    expected = sorted(int(n) for n in path.with_suffix(".errlines").read_text().split())
    error = failure(path.read_bytes(), path.name)
    assert error.lines == expected
    rendered = error.render()
    assert sorted({int(m["line"]) for m in HEADLINE.finditer(rendered)}) == expected
    assert int(path.with_suffix(".rc").read_text()) == error.exit_status == 65


def test_assembly_error_is_an_input_error_with_status_65():
    error = failure("section text\nbogus\n")
    assert isinstance(error, InputError)
    assert error.exit_status == ExitStatus.DATAERR == 65


def test_rendered_diagnostic_has_source_line_and_caret():
    error = failure("section text\n.start\n    uloda r1 5\n    halt\n", "prog.vvs")
    assert error.render().splitlines()[:4] == [
        "prog.vvs:3:5: error: unknown mnemonic 'uloda'",
        "    uloda r1 5",
        "    ^~~~~",
        "  hint: did you mean 'uload'?",
    ]


def test_caret_follows_tabs():
    error = failure("section text\n\tuload\tr1\t12z4\nhalt\n", "p.vvs")
    _, source, caret = error.render().splitlines()[:3]
    assert source == "\tuload\tr1\t12z4"
    assert caret == "\t     \t  \t^~~~"
    assert error.diagnostics[0].column == 11


def test_missing_operand_caret_points_after_the_line():
    diagnostic = failure("section text\nuadd r1   ; comment\nhalt\n").diagnostics[0]
    assert (diagnostic.line, diagnostic.column) == (2, 8)


def test_every_error_is_reported_and_addresses_stay_sensible():
    source = "\n".join([
        "section text",
        "uload r1 zz",        # 2: bad number (still 10 bytes)
        "jmp @after",         # 3
        "frobnicate",         # 4: unknown mnemonic
        "uadd r1",            # 5: missing operand
        "label after",
        "jmp @nowhere",       # 7: unknown label
        "halt",
        "section data",
        "x uint -1",          # 10: negative uint
        'y str "open',        # 11: unterminated
        "z float[2] [1, x]",  # 12: bad element
    ])
    error = failure(source)
    assert error.lines == [2, 4, 5, 7, 10, 11, 12]
    # No error about line 3: `after` is still defined, at the address layout gives it.


def test_a_data_item_with_a_bad_value_still_defines_its_name():
    # Its uses must not each say "unknown data item" ahead of the real error (the value).
    error = failure("section text\n.start\n    dsload r1 x 0\n    dsload r1 y 0\n    halt\n"
                    "section data\nx uint -5\ny blah 5\n")
    assert error.lines == [7, 8]
    assert "unknown data item" not in error.render()


def test_hints_suggest_close_names():
    error = failure("section text\ncall @mian\njmp @lop\nhalt\nfunc main\nret\nlabel loop\n")
    assert [d.hint for d in error.diagnostics] == ["did you mean 'main'?", "did you mean 'loop'?"]


def test_errors_are_sorted_by_position():
    error = failure("section text\njmp @x\nbogus\njmp @y\nhalt\n")
    assert error.lines == [2, 3, 4]


def test_render_limit_summarises_the_rest():
    error = failure("section text\n" + "bogus\n" * 150)
    assert len(error.diagnostics) == 150
    text = error.render(limit=10)
    assert len(HEADLINE.findall(text)) == 10 and "140 more errors not shown" in text
    assert len(HEADLINE.findall(error.render(limit=0))) == 150


# --- hostile input ----------------------------------------------------------------------

def test_non_utf8_input_names_every_bad_line():
    error = failure(b"section text\nuload r1 \xff\nhalt\n\xc3\x28\n", "bin.vvs")
    assert error.lines == [2, 4]
    first = error.diagnostics[0]
    assert (first.line, first.column) == (2, 10) and "UTF-8" in first.message
    assert "bin.vvs:2:10: error:" in error.render()


def test_nul_bytes_are_reported():
    error = failure(b"section text\nhalt\x00\nhalt\n")
    assert error.lines == [2] and "NUL" in error.diagnostics[0].message


@pytest.mark.parametrize("blob", [
    bytes(range(256)) * 8,
    b"\x00" * 5000,
    b"\x7fELF\x02\x01\x01" + bytes(200),
    b"\n" * 1000 + b"\xff",
    b"\x1b[31m red \x1b[0m\nhalt\n",
    "\u2028\u2029\x85 halt \ud7ff".encode("utf-8"),
], ids=["all-bytes", "nuls", "elf", "late-bad-byte", "escapes", "odd-whitespace"])
def test_binary_garbage_gives_diagnostics(blob):
    error = failure(blob)
    assert error.diagnostics
    text = error.render()
    assert "Traceback" not in text and "\x00" not in text and "\x1b" not in text


def test_a_binary_file_is_one_diagnostic_that_counts_the_bad_lines():
    error = failure(b"\x7fELF\x00\xff" * 50 + b"\nhalt\n\x80\x80\n\xfe", "lib.so")
    assert len(error.diagnostics) == 1
    only = error.diagnostics[0]
    assert (only.line, only.column) == (1, 6)
    assert only.message == ("invalid UTF-8 byte 0xff (.vvs source must be UTF-8 text), "
                            "and 2 more lines that are not UTF-8")
    assert only.hint == "this looks like a binary file (it holds NUL bytes), not .vvs source"
    assert error.render().splitlines() == [only.headline, f"  hint: {only.hint}",   # no garbage
                                           "voxasm: lib.so: 1 error, nothing assembled"]


def test_a_vve_file_given_to_the_assembler_says_how_to_run_it():
    vve = voxasm.assemble("section text\n.start\n    halt\n")
    error = failure(vve, "p.vve")
    assert [d.message for d in error.diagnostics] == [
        "this is a .vve binary (it starts with the .vve magic), not .vvs source"]
    assert error.diagnostics[0].hint == ("run it with `voxvm --vve=p.vve`; `voxvm dis p.vve` "
                                         "turns it back into source")


def test_str_input_with_a_lone_surrogate_is_an_error():
    error = failure('section text\nhalt\nsection data\ns str "\ud800"\n')
    assert error.lines == [4]


def test_huge_source_assembles_quickly():
    lines = ["section text", ".start"] + ["uadd r1 r2"] * 200_000 + ["halt"]
    program = assemble("\n".join(lines))
    assert len(program.image) == 3 * 200_000 + 1


def test_huge_line_is_shown_as_a_window():
    line = "uload r1 " + "9" * 100_000
    text = failure("section text\n" + line + "\nhalt\n").render()
    assert max(len(t) for t in text.splitlines()) < 400


def test_enormous_zeros_count_is_refused_not_allocated():
    error = failure("section text\nhalt\nsection data\nbig uint[1] !zeros=0xFFFFFFFFFFFF\n")
    assert error.lines == [4]


def test_the_caret_counts_terminal_cells_and_the_file_name_is_escaped():
    from voxasm.diagnostics import Diagnostic

    wide = Diagnostic("p.vvs", 2, 17, "m", ' s str "日本語日本語" extra', length=5).render().splitlines()
    assert wide[2] == " " * 22 + "^~~~~"                       # six wide characters: twelve cells
    combining = Diagnostic("p.vvs", 1, 6, "m", ' jmp @日本x', length=4).render().splitlines()
    assert combining[2] == "     ^~~~~~"
    marks = Diagnostic("p.vvs", 1, 9, "m", 's "e\u0301e\u0301" x', length=1).render().splitlines()
    assert marks[2] == "      ^"                              # combining marks take no cell
    assert Diagnostic("we\nird\x1b.vvs", 1, 1, "m").headline == "we\\nird\\x1b.vvs:1:1: error: m"
