"""The in-memory form of a loaded program, shared by loader, assembler and VM.

Owns ``Program`` (the image plus entry point, data base and function table)
and ``Symbols`` (names, source lines and columns: what a debug map holds,
docs/debug-maps.md; known when the program came from ``.vvs`` source or a
map was loaded next to its file). Pure data: no I/O, no parsing.
"""

from __future__ import annotations

from .errors import shown_name
from .records import record

# Both are records (voxvm/records.py), not dataclasses or namedtuples: their
# machinery costs more start-up time than a whole small run (docs/performance.md "Start-up").


class Symbols(record("Symbols", "functions lines source_path labels data columns source_sha256",
                         defaults=(None, (), None, None, None, (), None))):
    """What the assembler knows about addresses: names for people, lines for messages.

    ``functions`` maps function-table index -> name (dict[int, str]); ``lines``
    is a sorted sequence of ``(address, line)`` pairs, one per emitted
    instruction or data item (a tuple, or for assembled code the compact
    voxasm.linetable.LineTable), and ``columns`` (when known: empty otherwise)
    the 1-based column of each of them; ``source_path`` the file they come
    from (str or None). ``labels`` maps a code label to its address, ``data`` a
    data label to its offset from the data base. ``source_sha256`` is the hash
    of the source file the lines refer to (None when unknown), so that a tool
    showing source text can tell that the file changed since.
    """

    __slots__ = ()

    def __new__(cls, functions=None, lines=(), source_path=None, labels=None, data=None, columns=(),
                source_sha256=None):
        return super().__new__(cls, {} if functions is None else functions, lines, source_path,
                               {} if labels is None else labels, {} if data is None else data,
                               columns, source_sha256)

    def _index_at(self, address: int) -> int:
        from bisect import bisect_right     # only when a line is looked up (start-up)

        return bisect_right(self.lines, (address, float("inf"))) - 1

    def line_at(self, address: int) -> int | None:
        """Source line of the instruction that starts at or covers ``address``."""
        i = self._index_at(address)
        return self.lines[i][1] if i >= 0 else None

    def exact_line(self, address: int) -> int | None:
        """Source line of the instruction or item that starts exactly at ``address``."""
        i = self._index_at(address)
        return self.lines[i][1] if i >= 0 and self.lines[i][0] == address else None

    def column_at(self, address: int) -> int | None:
        """1-based column of the instruction covering ``address``, when columns are known."""
        i = self._index_at(address)
        return self.columns[i] if 0 <= i < len(self.columns) else None

    def where(self, address: int) -> str | None:
        """``FILE:LINE`` of ``address`` (``line N`` without a file), or None when unknown."""
        line = self.line_at(address)
        if line is None:
            return None
        return f"{shown_name(self.source_path)}:{line}" if self.source_path else f"line {line}"


class Program(record("Program", "image entry data_base functions path symbols",
                         defaults=(0, 0, (), "<memory>", None))):
    """A program ready to run: what a .vve (or .vvr) file holds.

    ``image`` (bytes), ``entry`` and ``data_base`` (addresses in it),
    ``functions`` (tuple of start addresses, by function-table index),
    ``path`` (where it came from, for messages) and ``symbols`` (Symbols, or
    None when it came from a binary file without a debug map).
    """

    __slots__ = ()

    def function_index_at(self, address: int) -> int | None:
        """Index of the function whose body encloses ``address`` (nearest start at or below
        it), or None for top-level code: before the first function, and from an entry
        point that is no function's start up to the next function (``.start`` written
        after a function's body begins top-level code; .vvs has no end-of-function mark)."""
        best_index, best_addr = None, -1
        for index, start in enumerate(self.functions):
            if best_addr < start <= address:
                best_index, best_addr = index, start
        if best_addr < self.entry <= address and self.entry not in self.functions:
            return None
        return best_index

    def function_name(self, index: int) -> str:
        """The source name of function ``index``, else ``func#N``."""
        if self.symbols and index in self.symbols.functions:
            return self.symbols.functions[index]
        return f"func#{index}"

    def function_at(self, address: int) -> str | None:
        """Name of the function whose body encloses ``address`` (nearest start below)."""
        index = self.function_index_at(address)
        return None if index is None else self.function_name(index)

    def where(self, address: int) -> str | None:
        """``FILE:LINE`` of ``address`` when the symbols know it (an address inside the image)."""
        if self.symbols is None or address >= len(self.image):
            return None
        return self.symbols.where(address)

    def address_of(self, name: str) -> int | None:
        """The code address a name stands for: a label, a function (by name or ``func#N``),
        or a number (``0x1a``, ``26``); None when nothing has that name."""
        symbols = self.symbols
        if symbols is not None:
            if name in symbols.labels:
                return symbols.labels[name]
            for index, fname in symbols.functions.items():
                if fname == name and index < len(self.functions):
                    return self.functions[index]
        number = name[5:]
        if name.startswith("func#") and number.isascii() and number.isdigit() and int(number) < len(self.functions):
            return self.functions[int(name[5:])]
        try:
            return int(name, 0)
        except ValueError:
            return None
