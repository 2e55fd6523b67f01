"""Syntax highlighting of ``.vvs`` text: the Pygments lexer and colour for terminals.

Owns ``VvsLexer`` (registered as a Pygments plugin through the
``pygments.lexers`` entry point in pyproject.toml, so ``pygmentize -l vvs``
and any Pygments-based tool know the language) and ``colorize``, which
``voxvm dis`` (and any other command that prints ``.vvs`` text) calls to
colour its output only when it goes to a terminal: never in a pipe or a
file, never with ``NO_COLOR`` set (https://no-color.org), always with
``--color=always``. The mnemonics come from the ISA table (voxvm/isa.py), so
a new opcode is highlighted without touching this file. The lexer covers the
language of docs/vvs-language.md and the listing form of ``voxvm dis
--listing`` (addresses and raw bytes).

Pygments is imported only when this module is, and this module only when
text is actually coloured, so plain runs never pay for it.
"""

from __future__ import annotations

import os
from typing import TextIO

from pygments import highlight
from pygments.formatters import TerminalFormatter
from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text

from .isa import EXC_NAMES, OPS, Exc

COLOR_CHOICES = ("auto", "always", "never")

_NAME = r"[A-Za-z_.$][\w.$\-]*"
_EXCEPTIONS = sorted({*EXC_NAMES, *(e.name for e in Exc)}, key=len, reverse=True)


class VvsLexer(RegexLexer):
    """voxvm assembly (``.vvs``, docs/vvs-language.md), and ``voxvm dis --listing`` output."""

    name = "voxvm assembly"
    aliases = ["vvs", "voxasm", "voxvm"]
    filenames = ["*.vvs"]
    mimetypes = ["text/x-vvs"]
    url = "https://github.com/voxvm"

    tokens = {
        "root": [
            # voxvm dis --listing: ">>" marks the entry, then the address and the raw bytes.
            (r"^(>>)?([ \t]*)(0x[0-9a-fA-F]+)((?:  (?:[0-9a-f]{2} ?)+)?)(?=\s)",
             bygroups(Keyword.Pseudo, Text, Number.Hex, Comment.Special)),
            (r"\n", Text),
            (r"[ \t\r\f]+", Text),
            # A str item's literal runs from the first to the last '"' of the line, so ';'
            # and '#' inside it are text (docs/vvs-language.md §1); greedy matching does that.
            (r'"[^\n]*"', String),
            (r"[;#][^\n]*", Comment.Single),
            (r"(section)([ \t]+)(text|data)\b", bygroups(Keyword.Namespace, Text, Name.Namespace)),
            (r"\.start\b:?", Keyword.Declaration),
            (rf"(func)([ \t]+)({_NAME})", bygroups(Keyword.Declaration, Text, Name.Function)),
            (rf"(label)([ \t]+)({_NAME})", bygroups(Keyword.Declaration, Text, Name.Label)),
            (rf"({_NAME})(:)(?=\s)", bygroups(Name.Label, Punctuation)),           # listing labels
            (words([op.mnemonic for op in sorted(OPS, key=lambda o: -len(o.mnemonic))],
                   prefix=r"(?<![\w.$@\-])", suffix=r"(?![\w.$\-])"), Keyword),
            (r"r\d+(?![\w.$\-])", Name.Builtin),
            (words(_EXCEPTIONS, prefix="@", suffix=r"(?![\w.$\-])"), Name.Exception),
            (rf"@{_NAME}", Name.Label),
            (r"(const)(?![\w.$\-])", Keyword.Type),
            (r"(?:uint|int|float)\[\d*\]|(?:uint|int|float|str)(?![\w.$\-])", Keyword.Type),
            (r"(!zeros)(=)", bygroups(Keyword.Pseudo, Operator)),
            (r"[-+]?(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?\d+[eE][-+]?\d+", Number.Float),
            (r"[-+]?(?i:inf|infinity|nan)(?![\w.$\-])", Number.Float),
            (r"[-+]?0[xX][0-9a-fA-F]+", Number.Hex),
            (r"[-+]?0[bB][01]+", Number.Bin),
            (r"[-+]?\d+", Number.Integer),
            (r"[\[\],]", Punctuation),
            (_NAME, Name),
            (r".", Text),
        ],
    }


def wants_color(stream: TextIO, choice: str = "auto") -> bool:
    """Whether text written to ``stream`` gets colour: ``always``, ``never``, or ``auto``
    (a terminal, and ``NO_COLOR`` unset or empty)."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty() and os.environ.get("TERM") != "dumb")
    except (OSError, ValueError):
        return False


def colorize(text: str) -> str:
    """``text`` with ANSI colours for a terminal (16-colour codes: every terminal has them)."""
    return highlight(text, VvsLexer(stripnl=False, ensurenl=False), TerminalFormatter())
