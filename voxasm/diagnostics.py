"""Assembler diagnostics: what went wrong, where, and how it is shown.

Owns ``Diagnostic`` (one error or warning with a 1-based line and column),
``AssemblyError`` (every error of one file; exit status 65 through
``voxvm.errors.InputError``) and the compiler-style rendering::

    prog.vvs:5:5: error: unknown mnemonic 'uloda'
        uloda r1 5
        ^~~~~
      hint: did you mean 'uload'?

No parsing happens here; the assembler decides line, column and message.
"""

from __future__ import annotations

TYPE_CHECKING = False     # typing costs start-up time (voxvm run FILE.vvs); annotations are strings
if TYPE_CHECKING:
    from typing import Callable

from voxvm.errors import InputError, shown_name

# Diagnostics shown by ``render`` before the rest is summarised. A binary file
# fed to the assembler can produce one error per "line"; printing a million of
# them helps nobody. ``assemble`` still collects every one of them.
DEFAULT_RENDER_LIMIT = 100

# Source lines longer than this are shown as a window around the caret.
_MAX_SHOWN_LINE = 160


class Diagnostic:
    """One message about one place in a source file.

    ``line`` and ``column`` are 1-based; ``column`` counts characters (not
    bytes) of the decoded line; ``length`` is how many characters the caret
    line underlines (at least 1). ``hint`` may be given as a function: it is
    then called the first time the hint is read, so that a file with a million
    errors does not pay for a million fuzzy "did you mean" searches of which a
    hundred are shown (docs/vvs-language.md "Errors").
    """

    __slots__ = ("path", "line", "column", "message", "source_line", "length", "_hint",
                 "severity")

    def __init__(self, path: str, line: int, column: int, message: str, source_line: str = "",
                 length: int = 1, hint: str | Callable[[], str | None] | None = None,
                 severity: str = "error") -> None:
        self.path, self.line, self.column, self.message = path, line, column, message
        self.source_line, self.length, self._hint, self.severity = source_line, length, hint, severity

    @property
    def hint(self) -> str | None:
        """The hint text (computed on first use when it was given as a function)."""
        if callable(self._hint):
            self._hint = self._hint()
        return self._hint

    def _key(self) -> tuple:
        return (self.path, self.line, self.column, self.message, self.source_line, self.length,
                self.hint, self.severity)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Diagnostic) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Diagnostic({self.path!r}, {self.line}, {self.column}, {self.message!r}, "
                f"length={self.length}, hint={self.hint!r}, severity={self.severity!r})")

    @property
    def headline(self) -> str:
        """``file.vvs:LINE:COL: error: message`` (the grep-able first line)."""
        return f"{shown_name(self.path)}:{self.line}:{self.column}: {self.severity}: {self.message}"

    def render(self) -> str:
        """Headline, the source line and a caret line, then the hint if any."""
        parts = [self.headline]
        excerpt = _excerpt(self.source_line, self.column, self.length)
        if excerpt is not None:
            parts.extend(excerpt)
        if self.hint:
            parts.append(f"  hint: {self.hint}")
        return "\n".join(parts)


def _printable(ch: str) -> str:
    """One display cell for one source character (control characters become '?')."""
    return ch if ch == "\t" or ch.isprintable() else "?"


def _cells(text: str) -> int:
    """How many terminal cells ``text`` takes: 2 for a wide (CJK, emoji) character, 0 for a
    combining mark, else 1 (so that the caret stands under the character it means)."""
    if text.isascii():
        return len(text)
    import unicodedata       # only for a line with non-ASCII text before or under the caret

    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def _excerpt(line: str, column: int, length: int) -> list[str] | None:
    """The source line and the caret line under ``column``, or None if there is nothing to show."""
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    start = max(column - 1, 0)
    prefix_cut = ""
    suffix_cut = ""
    if len(line) > _MAX_SHOWN_LINE:
        # Show a window around the caret so that huge lines stay readable.
        lo = max(0, start - _MAX_SHOWN_LINE // 2)
        hi = min(len(line), lo + _MAX_SHOWN_LINE)
        if lo > 0:
            prefix_cut = "..."
        if hi < len(line):
            suffix_cut = "..."
        line = line[lo:hi]
        start -= lo
        length = min(length, max(len(line) - start, 1))
    shown = prefix_cut + "".join(_printable(c) for c in line) + suffix_cut
    # Reuse tabs from the source so the caret lines up in any terminal.
    lead = prefix_cut.replace(".", " ") + "".join(
        "\t" if c == "\t" else " " * _cells(c) for c in line[:start])
    caret = "^" + "~" * (max(_cells(line[start:start + max(length, 1)]), 1) - 1)
    return [shown, lead + caret]


def plural(count: int, word: str) -> str:
    """``1 error`` / ``3 errors``."""
    return f"{count} {word}" + ("" if count == 1 else "s")


class AssemblyError(InputError):
    """A source file that does not assemble: every error found in it.

    ``diagnostics`` holds the errors sorted by position (warnings found in
    the same run are in ``warnings``). ``render`` prints them all, up to
    ``limit`` (``DEFAULT_RENDER_LIMIT``; None or 0 = no limit).
    """

    def __init__(self, diagnostics: list[Diagnostic], path: str,
                 warnings: list[Diagnostic] | None = None) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.line, d.column))
        self.warnings = list(warnings or ())
        self.path = path
        first = self.diagnostics[0].headline if self.diagnostics else f"{path}: cannot assemble"
        extra = len(self.diagnostics) - 1
        super().__init__(first + (f" (and {plural(extra, 'more error')})" if extra > 0 else ""))

    @property
    def lines(self) -> list[int]:
        """The distinct 1-based line numbers that have errors, ascending."""
        return sorted({d.line for d in self.diagnostics})

    def render(self, limit: int | None = DEFAULT_RENDER_LIMIT) -> str:
        """Every error (up to ``limit``) as text for stderr, then a one-line summary."""
        shown = self.diagnostics if not limit else self.diagnostics[:limit]
        parts = [d.render() for d in shown]
        hidden = len(self.diagnostics) - len(shown)
        if hidden > 0:
            parts.append(f"voxasm: {plural(hidden, 'more error')} not shown")
        parts.append(f"voxasm: {shown_name(self.path)}: {plural(len(self.diagnostics), 'error')}, nothing assembled")
        return "\n".join(parts)
