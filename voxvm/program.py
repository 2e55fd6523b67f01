"""The in-memory form of a loaded program, shared by loader, assembler and VM.

Owns ``Program`` (the image plus entry point, data base and function table)
and ``Symbols`` (names and source lines, known only when the program came
from ``.vvs`` source). Pure data: no I/O, no parsing.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Symbols:
    """What the assembler knows about addresses; used for trap messages.

    ``functions`` maps function-table index -> name, ``lines`` is a sorted list
    of ``(address, line)`` pairs, one per emitted instruction or data item.
    """

    functions: dict[int, str] = field(default_factory=dict)
    lines: tuple[tuple[int, int], ...] = ()
    source_path: str | None = None

    def line_at(self, address: int) -> int | None:
        """Source line of the instruction that starts at or covers ``address``."""
        i = bisect.bisect_right(self.lines, (address, float("inf"))) - 1
        return self.lines[i][1] if i >= 0 else None


@dataclass(frozen=True)
class Program:
    """A program ready to run: what a .vve (or .vvr) file holds."""

    image: bytes
    entry: int = 0
    data_base: int = 0
    functions: tuple[int, ...] = ()
    path: str = "<memory>"
    symbols: Symbols | None = None

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
