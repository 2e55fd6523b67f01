"""Highlighting: the Pygments lexer for .vvs (voxvm/highlight.py) and colour in ``voxvm dis``.

The lexer must read every conformance program and both forms of ``voxvm dis``
output without an error token, give each language element its token type,
be found by Pygments through its plugin entry point (``pygmentize -l vvs``),
and ``voxvm dis`` must colour only a terminal (never a pipe, never with
NO_COLOR) unless ``--color`` says otherwise.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from pygments.token import Comment, Error, Keyword, Name, Number, String

from conftest import conformance_dir
from voxasm.assembler import assemble
from voxvm.disasm import disassemble
from voxvm.highlight import VvsLexer
from voxvm.isa import OPS

ESC = "\x1b["

SAMPLE = '''\
; a comment
section text
.start
func main
    uload r1 0x2A       # hex
    fload r2 -1.5e3
    jexc @nativefault @done
    dsload r1 msg 0
    ncall 0x08 r0
label done
    halt
section data
    msg str "a ; not a comment"  ; but this is
    table const uint[2] [1, 0b11]
    zs float[] !zeros=4
'''


def tokens(text: str) -> list[tuple[object, str]]:
    return [(t, v) for t, v in VvsLexer().get_tokens(text) if v.strip()]


def test_each_element_gets_its_token_type():
    got = tokens(SAMPLE)
    assert (Comment.Single, "; a comment") in got
    assert (Keyword, "uload") in got and (Keyword, "halt") in got
    assert (Name.Builtin, "r1") in got
    assert (Number.Hex, "0x2A") in got and (Number.Float, "-1.5e3") in got and (Number.Bin, "0b11") in got
    assert (Name.Exception, "@nativefault") in got and (Name.Label, "@done") in got
    assert (Name.Function, "main") in got and (Name.Label, "done") in got
    assert (String, '"a ; not a comment"') in got and (Comment.Single, "; but this is") in got
    assert (Keyword.Type, "uint[2]") in got and (Keyword.Type, "const") in got
    assert (Keyword.Type, "str") in got and (Keyword.Pseudo, "!zeros") in got


def test_every_mnemonic_of_the_isa_table_is_a_keyword():
    for op in OPS:
        assert tokens(f"    {op.mnemonic} r1\n")[0] == (Keyword, op.mnemonic)


def test_a_name_that_starts_like_a_mnemonic_is_not_one():
    assert tokens("    call @haltx\n")[1] == (Name.Label, "@haltx")
    assert (Keyword, "uload") not in tokens("    dsload r1 uloads 0\n")


def _conformance_sources() -> list[Path]:
    return sorted(conformance_dir("programs").glob("*.vvs"))


def test_conformance_programs_and_their_disassembly_lex_without_errors():
    sources = _conformance_sources()
    assert len(sources) > 50
    for path in sources:
        text = path.read_text(encoding="utf-8", errors="replace")
        texts = [text]
        try:
            program = assemble(path.read_bytes(), str(path))
        except Exception:           # the programs that are meant not to assemble: lex the source only
            program = None
        if program is not None:
            texts += [disassemble(program), disassemble(program, listing=True)]
        for t in texts:
            errors = [v for tok, v in VvsLexer().get_tokens(t) if tok in Error]
            assert errors == [], f"{path.name}: error tokens {errors[:5]}"


def test_listing_addresses_and_bytes():
    program = assemble("section text\n.start\n    uload r1 5\n    halt\n", "t.vvs")
    got = tokens(disassemble(program, listing=True))
    assert (Number.Hex, "0x00000") in got
    assert any(tok is Comment.Special and v.split()[:2] == ["10", "01"] for tok, v in got)
    assert (Keyword, "uload") in got


def test_pygments_finds_the_lexer_through_its_plugin_entry_point():
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename

    assert isinstance(get_lexer_by_name("vvs"), VvsLexer)
    assert isinstance(get_lexer_for_filename("prog.vvs"), VvsLexer)


# ------------------------------------------------------------------ voxvm dis


@pytest.fixture
def vve(tmp_path: Path) -> Path:
    src = tmp_path / "p.vvs"
    src.write_text(SAMPLE)
    subprocess.run([sys.executable, "-m", "voxasm", str(src)], cwd=tmp_path, check=True, timeout=60)
    return tmp_path / "p.vve"


def _dis(vve: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voxvm", "dis", str(vve), *args], cwd=vve.parent,
                          capture_output=True, text=True, timeout=60, env=env)


def _dis_on_a_terminal(vve: Path, *args: str, env: dict) -> str:
    """``voxvm dis`` with its stdout on a pseudo-terminal; what it wrote."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "voxvm", "dis", str(vve), *args],
                                   cwd=vve.parent, stdout=follower, stderr=subprocess.PIPE, env=env)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:          # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert process.wait(timeout=60) == 0, process.stderr.read()
        process.stderr.close()
    finally:
        os.close(leader)
    return b"".join(chunks).decode()


def _env(**changes: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm"
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_dis_to_a_pipe_is_plain_text(vve):
    result = _dis(vve, env=_env())
    assert result.returncode == 0 and ESC not in result.stdout and "uload r1 42" in result.stdout


def test_dis_to_a_terminal_is_coloured_and_says_the_same(vve):
    out = _dis_on_a_terminal(vve, env=_env())
    assert ESC in out
    plain = _dis(vve, env=_env()).stdout
    import re
    assert re.sub(r"\x1b\[[0-9;]*m", "", out).replace("\r\n", "\n") == plain


def test_no_color_and_color_never_keep_a_terminal_plain(vve):
    assert ESC not in _dis_on_a_terminal(vve, env=_env(NO_COLOR="1"))
    assert ESC not in _dis_on_a_terminal(vve, "--color=never", env=_env())


def test_color_always_colours_a_pipe_and_a_bad_choice_is_a_usage_error(vve):
    assert ESC in _dis(vve, "--color=always", env=_env()).stdout
    bad = _dis(vve, "--color=sometimes", env=_env())
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "voxvm: error: --color: 'sometimes' is not one of auto, always, never (see 'voxvm --help')\n"


# ------------------------------------------------------------------ the TextMate grammar

GRAMMAR = Path(__file__).resolve().parents[2] / "tools" / "editors" / "vscode" / "syntaxes" / "vvs.tmLanguage.json"


def _alternation(pattern: str) -> set[str]:
    import re
    inner = re.search(r"\(\?:([^()]*)\)", pattern).group(1)
    return set(inner.split("|"))


def test_the_textmate_grammar_lists_the_isa_mnemonics_and_exception_names():
    import json
    from voxvm.isa import EXC_NAMES, Exc

    grammar = json.loads(GRAMMAR.read_text())
    expected = sorted((op.mnemonic for op in OPS), key=lambda m: (-len(m), m))
    mnemonics = _alternation(grammar["repository"]["mnemonic"]["match"])
    assert mnemonics == set(expected), (
        f"{GRAMMAR.relative_to(GRAMMAR.parents[4])}, repository.mnemonic.match: add "
        f"{sorted(set(expected) - mnemonics)}, remove {sorted(mnemonics - set(expected))}; "
        "the whole alternation, longest first: " + "|".join(expected))
    exceptions = _alternation(grammar["repository"]["reference"]["patterns"][0]["match"])
    assert exceptions == {*EXC_NAMES, *(e.name for e in Exc)}


def test_the_textmate_grammar_patterns_compile_and_match_like_the_lexer():
    """Each TextMate regex (Oniguruma, here a Python re subset of it) finds the elements of SAMPLE."""
    import json
    import re

    grammar = json.loads(GRAMMAR.read_text())
    found: dict[str, set[str]] = {}

    def walk(rule: dict) -> None:
        for sub in rule.get("patterns", []):
            walk(sub)
        if "match" in rule:
            flags = re.IGNORECASE if rule["match"].startswith("(?i)") else 0
            regex = re.compile(rule["match"].removeprefix("(?i)"), flags | re.MULTILINE)
            for m in regex.finditer(SAMPLE):
                found.setdefault(rule.get("name", "captures"), set()).add(m.group(0))

    for rule in grammar["repository"].values():
        walk(rule)
    assert {"uload", "halt", "jexc", "ncall"} <= found["keyword.other.mnemonic.vvs"]
    assert {"r1", "r2", "r0"} <= found["variable.language.register.vvs"]
    assert "@nativefault" in found["constant.language.exception.vvs"]
    assert '"a ; not a comment"' in found["string.quoted.double.vvs"]
    assert "0x2A" in found["constant.numeric.hex.vvs"]
