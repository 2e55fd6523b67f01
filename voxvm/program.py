"""The in-memory form of a loaded program, shared by loader, assembler and VM.

Owns ``Program`` (the image plus entry point, data base and function table)
and ``Symbols`` (names and source lines, known only when the program came
from ``.vvs`` source). Pure data: no I/O, no parsing.
"""

from __future__ import annotations

import bisect
from collections import namedtuple

# Both are namedtuples, not dataclasses: the dataclass machinery costs more
# start-up time than a whole small run (docs/performance.md "Start-up").


class Symbols(namedtuple("Symbols", "functions lines source_path", defaults=(None, (), None))):
    """What the assembler knows about addresses; used for trap messages.

    ``functions`` maps function-table index -> name (dict[int, str]), ``lines``
    is a sorted tuple of ``(address, line)`` pairs, one per emitted instruction
    or data item, ``source_path`` the file they come from (str or None).
    """

    __slots__ = ()

    def __new__(cls, functions=None, lines=(), source_path=None):
        return super().__new__(cls, {} if functions is None else functions, lines, source_path)

    def line_at(self, address: int) -> int | None:
        """Source line of the instruction that starts at or covers ``address``."""
        i = bisect.bisect_right(self.lines, (address, float("inf"))) - 1
        return self.lines[i][1] if i >= 0 else None


class Program(namedtuple("Program", "image entry data_base functions path symbols",
                         defaults=(0, 0, (), "<memory>", None))):
    """A program ready to run: what a .vve (or .vvr) file holds.

    ``image`` (bytes), ``entry`` and ``data_base`` (addresses in it),
    ``functions`` (tuple of start addresses, by function-table index),
    ``path`` (where it came from, for messages) and ``symbols`` (Symbols, or
    None when it came from a binary file).
    """

    __slots__ = ()

    def function_at(self, address: int) -> str | None:
        """Name of the function whose body encloses ``address`` (nearest start below)."""
        best_index, best_addr = None, -1
        for index, start in enumerate(self.functions):
            if best_addr < start <= address:
                best_index, best_addr = index, start
        if best_index is None:
            return None
        if self.symbols and best_index in self.symbols.functions:
            return self.symbols.functions[best_index]
        return f"func#{best_index}"
