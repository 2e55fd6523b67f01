"""The names a source defines: labels, functions and data items.

Owns ``SymbolTable``, filled by layout and read by encoding (voxasm.assembler,
voxasm.encoding, the compiled scanner voxasm/_scan.pyx), in a module of its own
so that layout can make one without importing the encoders.
"""

from __future__ import annotations

from .literals import show_token


class SymbolTable:
    """Every name the source defines, filled by layout and read by encoding.

    ``labels``: code label -> absolute address; ``functions``: function name
    -> function-table index; ``data``: data label -> offset in the data
    segment; ``kinds``: name -> ("label" | "function" | "data item", line) for
    messages and the single-namespace duplicate check. (A plain class: the
    dataclass machinery costs more start-up than ``voxvm --vas`` of a small file.)
    """

    __slots__ = ("labels", "functions", "data", "kinds")

    def __init__(self) -> None:
        self.labels: dict[str, int] = {}
        self.functions: dict[str, int] = {}
        self.data: dict[str, int] = {}
        self.kinds: dict[str, tuple[str, int]] = {}

    def elsewhere(self, name: str, wanted: str) -> str | None:
        """A hint when ``name`` exists but is of another kind than ``wanted``."""
        found = self.kinds.get(name)
        if found is None or found[0] == wanted:
            return None
        kind, line = found
        shown = show_token(name)
        if kind == "function" and wanted == "label":
            return (f"{shown} is a function (line {line}); jump targets are labels: "
                    f"call it with 'call @', or put a 'label' after its 'func' line")
        if kind == "label" and wanted == "function":
            return f"{shown} is a label (line {line}); a function operand (call, fnstind) needs a 'func' name"
        if kind == "data item":
            return (f"{shown} is a data item (line {line}); data items are used by the "
                    f"ds* instructions, written without '@'")
        return f"{shown} is a {kind} (line {line})"


# No name worth suggesting is longer; difflib's index of a longer word costs ~36 bytes per character.
MAX_SUGGESTED_WORD = 64
