"""The assembler never fails ungracefully and never writes a file its own loader rejects.

Regressions found by fuzzing the assembler from outside: a data line that
starts with a string literal (an IndexError once), ``.start`` or a ``func``
after the last instruction (a .vve the loader refused), and "did you mean"
suggestions computed for every one of a million errors (now only for the
diagnostics shown).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxasm import AssemblyError, assemble_program as assemble
from voxasm import encoding
from voxasm.source import token_spans
from voxvm.formats import build_vve, load_vve


def _errors(source: str) -> list:
    with pytest.raises(AssemblyError) as info:
        assemble(source, "t.vvs")
    return info.value.diagnostics


@pytest.mark.parametrize("line", ['"x"', '  "x" str "y"', '"unterminated'])
def test_a_data_line_starting_with_a_string_is_an_error(line):
    (error,) = _errors(f"section text\n.start\n    halt\nsection data\n{line}\n")
    assert error.line == 5
    assert "needs a name and a type" in error.message


def test_start_after_the_last_instruction_is_an_error():
    (error,) = _errors("section text\n    halt\n.start\n")
    assert (error.line, error.message) == (3, "'.start' is not followed by any instruction: "
                                              "nothing follows it")


def test_an_empty_last_function_is_an_error():
    (error,) = _errors("section text\n.start\n    halt\nfunc tail\n")
    assert (error.line, error.message) == (4, "function 'tail' has no instructions: nothing follows it")


def test_a_name_at_the_end_of_the_code_with_data_after_it_is_a_warning():
    warnings: list = []
    program = assemble("section text\n    halt\n.start\nfunc f\nsection data\n    x uint 1\n", "t.vvs",
                       warnings=warnings)
    assert program.entry == 1 and program.functions == (1,)
    assert [w.message for w in warnings] == [
        "'.start' is not followed by any instruction: it names the start of the data",
        "function 'f' has no instructions: it names the start of the data"]


def test_an_empty_function_before_another_one_is_fine():
    program = assemble("section text\n.start\nfunc a\nfunc b\n    halt\n", "t.vvs")
    assert program.functions == (0, 0)


@given(st.lists(st.sampled_from(["func f", ".start", "halt", "label l", "section data",
                                 "section text", "x uint 1"]), min_size=1, max_size=8))
def test_whatever_assembles_also_loads(lines):
    source = "\n".join(dict.fromkeys(lines)) + "\n"       # each name at most once
    try:
        program = assemble(source, "t.vvs")
    except AssemblyError:
        return
    load_vve(build_vve(program), "t.vve")                  # raises FormatError if not loadable


def test_suggestions_are_computed_only_for_the_diagnostics_shown(monkeypatch):
    calls = []
    real = encoding._suggest
    monkeypatch.setattr(encoding, "_suggest", lambda *a: calls.append(a) or real(*a))
    source = "section text\n.start\nlabel target\n" + "    jmp @targte\n" * 1000 + "    halt\n"
    with pytest.raises(AssemblyError) as info:
        assemble(source, "t.vvs")
    assert len(info.value.diagnostics) == 1000 and calls == []
    info.value.render(limit=10)
    assert len(calls) == 10
    assert info.value.diagnostics[0].hint == "did you mean 'target'?"


@given(st.text(alphabet=st.sampled_from("ab \t\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000"), max_size=30))
def test_token_spans_cut_like_str_split(text):
    spans = token_spans(text)
    assert [token for _, token in spans] == text.split()
    assert all(text[i:i + len(token)] == token for i, token in spans)


@pytest.mark.parametrize("line", ["uload r99 5", "uload r1 xyz", "jmp @undefined", "ncall 0x10000 r0"])
def test_a_bad_operand_leaves_no_cycle_for_a_paused_collector(line):
    # The command line assembles with the collector paused: an error kept alive in a cycle
    # (exception, traceback, frame) cost about 5 KB per bad line, 1 GB for 200k of them.
    import gc

    gc.collect()
    gc.disable()
    try:
        try:
            assemble(f"{line}\n" * 20 + "halt\n", "t.vvs")
        except AssemblyError:
            pass
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        kept = [o for o in gc.garbage if type(o).__name__ == "LiteralError"
                or type(o).__name__ == "frame" and "voxasm" in o.f_code.co_filename]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert kept == []
