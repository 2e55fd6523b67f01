"""The lexical layer of ``.vvs`` source: text, lines, comments and tokens.

Owns decoding the input (UTF-8 only; every undecodable line is reported),
splitting a line into its code part, its optional string literal and its
comment (a comment starts at ``;`` or ``#`` anywhere outside the string
literal, glued or separate: semantics.md §3 item 21), and recovering the
column of a token. Tokens are whitespace-separated words; the hot path uses
``str.split`` and columns are computed only when a diagnostic needs one.
"""

from __future__ import annotations

import codecs

TYPE_CHECKING = False     # typing costs start-up time (voxvm run FILE.vvs); annotations are strings
if TYPE_CHECKING:
    from typing import Iterator

from voxvm.records import record
from voxvm.vvefile import VVE_MAGIC

from .diagnostics import AssemblyError, Diagnostic
from .literals import regex

# Bigger sources are refused up front instead of exhausting memory.
MAX_SOURCE_BYTES = 1 << 30


class Split(record("Split", "code quote_start quote_end", defaults=(-1, -1))):
    """A line cut into its code part and the position of its string literal.

    ``code`` is the line without its comment. ``quote_start`` is the index of
    the opening ``"`` (-1 if there is none) and ``quote_end`` the index of the
    closing one (the *last* ``"`` on the line, as upstream; -1 if unterminated).
    """

    __slots__ = ()


def _first_marker(text: str, start: int = 0) -> int:
    """Index of the first ``;`` or ``#`` at or after ``start``, or -1."""
    a = text.find(";", start)
    b = text.find("#", start)
    if a < 0:
        return b
    if b < 0:
        return a
    return a if a < b else b


def split_comment(line: str) -> Split:
    """Cut ``line`` at its comment, keeping a ``"..."`` string literal intact.

    The string literal runs from the first ``"`` to the last ``"`` of the line,
    verbatim (upstream.md §3.7), so ``;`` and ``#`` inside it are text.

    >>> split_comment('uload r2 1;stdout').code
    'uload r2 1'
    >>> split_comment('s str "a;b" ; c')
    Split(code='s str "a;b" ', quote_start=6, quote_end=10)
    """
    q1 = line.find('"')
    c = _first_marker(line)
    if c >= 0 and (q1 < 0 or c < q1):
        return Split(line[:c], -1, -1)      # (every field given: the record's quick path)
    if q1 < 0:
        return Split(line, -1, -1)
    q2 = line.rfind('"')
    if q2 == q1:
        return Split(line, q1, -1)
    c = _first_marker(line, q2 + 1)
    return Split(line if c < 0 else line[:c], q1, q2)


def token_spans(text: str, limit: int | None = None) -> list[tuple[int, str]]:
    """``(index, token)`` for the first ``limit`` (default: every) whitespace-separated token.

    Tokens are cut exactly as ``str.split`` cuts them (it cuts them here). Callers
    that need only the head of a line pass ``limit``, so a line of millions of tokens
    costs no more than its text (docs/resource-limits.md).

    >>> token_spans(' uadd  r1 r2')
    [(1, 'uadd'), (7, 'r1'), (10, 'r2')]
    >>> token_spans(' uadd  r1 r2', 1)
    [(1, 'uadd')]
    """
    words = text.split() if limit is None else text.split(None, limit)[:limit]
    spans = []
    index = 0
    for word in words:
        # (only whitespace lies between the previous token and this one, and a token holds
        # none, so its first occurrence from there is where it starts)
        index = text.find(word, index)
        spans.append((index, word))
        index += len(word)
    return spans


def count_tokens(text: str) -> int:
    """How many whitespace-separated tokens ``text`` has, without keeping any of them."""
    return sum(1 for _ in regex("token").finditer(text))


# Text is decoded and cut into lines this many bytes at a time, so that no list of every
# line (about 70 bytes a line) and no second copy of the source ever exists.
CHUNK_BYTES = 1 << 20
_BOM = "\ufeff"


def text_chunks(source: bytes | str, path: str) -> Iterator[str]:
    """The source as text, in pieces cut at line ends (each newline dropped), so
    ``"\n".join(pieces).split("\n")`` are its lines; an ``AssemblyError`` naming every
    line that is not UTF-8, raised before the piece holding the first of them.

    A leading UTF-8 byte-order mark is dropped (editors on some systems add it).
    Each piece is decoded when it is needed; reading the source again gives the
    same pieces (the assembler's second pass does).

    >>> list(text_chunks(b"\xef\xbb\xbfa\nb\n", "x.vvs"))
    ['a\nb\n']
    """
    if isinstance(source, str):
        if len(source) > MAX_SOURCE_BYTES:
            raise AssemblyError([Diagnostic(
                path, 1, 1, f"source is {len(source)} characters; voxasm reads at most "
                            f"{MAX_SOURCE_BYTES}")], path)
        pos = 1 if source.startswith(_BOM) else 0
        while True:
            end = source.find("\n", pos + CHUNK_BYTES)
            if end < 0:
                yield source[pos:]
                return
            yield source[pos:end]
            pos = end + 1
    if not isinstance(source, (bytes, bytearray)):
        source = bytes(source)
    if len(source) > MAX_SOURCE_BYTES:
        raise AssemblyError([Diagnostic(
            path, 1, 1, f"source is {len(source)} bytes; voxasm reads at most "
                        f"{MAX_SOURCE_BYTES} bytes")], path)
    encoding = ("UTF-32" if source.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")) else
                "UTF-16" if source.startswith((b"\xff\xfe", b"\xfe\xff")) else None)   # by its byte-order mark
    if encoding is not None:
        raise AssemblyError([Diagnostic(
            path, 1, 1, f"this file is {encoding} text; .vvs source must be UTF-8",
            hint=f"convert it: iconv -f {encoding} -t UTF-8 {path} > converted.vvs")], path)
    if source.startswith(VVE_MAGIC):
        raise AssemblyError([Diagnostic(
            path, 1, 1, "this is a .vve binary (it starts with the .vve magic), not .vvs source",
            hint=f"run it with `voxvm --vve={path}`; `voxvm dis {path}` turns it back into source")],
            path)
    view = memoryview(source)
    pos = 3 if source.startswith(_BOM.encode()) else 0
    while True:
        end = source.find(b"\n", pos + CHUNK_BYTES)
        try:
            piece = codecs.utf_8_decode(view[pos:] if end < 0 else view[pos:end], "strict", True)[0]
        except UnicodeDecodeError:
            raise AssemblyError(_utf8_diagnostics(bytes(source), path), path) from None
        yield piece
        if end < 0:
            return
        pos = end + 1


def decode(source: bytes | str, path: str) -> str:
    """The whole source as text (``text_chunks`` joined): for callers that need it at once."""
    return "\n".join(text_chunks(source, path))


def _utf8_diagnostics(data: bytes, path: str) -> list[Diagnostic]:
    """One diagnostic per line that does not decode as UTF-8 (at its first bad byte); for a
    binary file (one that also holds NUL bytes), one diagnostic for the first such line that
    counts the others and shows none of them: their text would be noise."""
    out = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            column = len(raw[:exc.start].decode("utf-8", "replace")) + 1
            shown = raw.decode("utf-8", "replace")
            bad = raw[exc.start:exc.end] or raw[exc.start:exc.start + 1]
            out.append(Diagnostic(
                path, number, column,
                f"invalid UTF-8 byte 0x{bad[0]:02x} (.vvs source must be UTF-8 text)",
                source_line=shown,
                hint="is this a binary file?" if b"\x00" in raw else None))
    if len(out) > 1 and b"\x00" in data:
        first, more = out[0], len(out) - 1
        return [Diagnostic(
            path, first.line, first.column,
            f"{first.message}, and {more} more line{' that is' if more == 1 else 's that are'} not UTF-8",
            hint="this looks like a binary file (it holds NUL bytes), not .vvs source")]
    return out
