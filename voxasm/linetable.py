"""The source line of every assembled instruction and data item, stored compactly.

Owns ``LineTable``, what ``Program.symbols.lines`` holds for assembled code
(voxvm/program.py, ``Symbols``): the sequence of ``(address, line)`` pairs, one
per instruction and then one per data item, in address order. It keeps 4 bytes
per instruction (its line number) and finds the instructions' addresses on
first use by walking the image from opcode to opcode with the ISA table's
sizes, so the assembler builds no tuple per instruction, and a run that never
asks for a line (no trap) never pays for the walk. The numbers are native
``uint32`` in a ``bytearray`` (read through ``memoryview.cast``), not an
``array``: the array module imports the collections package when it loads.
"""

from __future__ import annotations

# (collections.abc's implementation, which the interpreter's start-up has loaded already;
# collections.abc itself would import the whole collections package)
from _collections_abc import Sequence
TYPE_CHECKING = False     # typing costs start-up time (voxvm run FILE.vvs); annotations are strings
if TYPE_CHECKING:
    from typing import Iterator

from ._optable import OPCODES

_SIZES = [0] * 256
for _code, _size, _ in OPCODES.values():
    _SIZES[_code] = _size


class LineTable(Sequence):
    """``(address, line)`` for each instruction of ``image[:code_size]``, then ``data_lines``."""

    __slots__ = ("_image", "_numbers", "_code_size", "_data", "_addresses")

    def __init__(self, image: bytes, numbers: bytearray, code_size: int,
                 data_lines: Sequence[tuple[int, int]] = ()) -> None:
        self._image = image                  # the program's image (shared, not copied)
        self._numbers = numbers              # line of instruction i: native uint32 at 4 * i
        self._code_size = code_size
        self._data = tuple(data_lines)       # absolute (address, line) of each data item
        self._addresses: bytearray | None = None   # of instruction i: native uint64 at 8 * i

    def _lines(self) -> memoryview:
        return memoryview(self._numbers).cast("I")

    def _code_addresses(self) -> memoryview:
        if self._addresses is None:
            image, sizes = self._image, _SIZES
            count = len(self._numbers) // 4
            table = bytearray(8 * count)
            addresses = memoryview(table).cast("Q")
            address = 0
            for i in range(count):
                addresses[i] = address
                address += sizes[image[address]]
            if address != self._code_size:   # pragma: no cover - the assembler emitted the image
                raise AssertionError(f"line table walked to {address}, code ends at {self._code_size}")
            self._addresses = table
        return memoryview(self._addresses).cast("Q")

    def __len__(self) -> int:
        return len(self._numbers) // 4 + len(self._data)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        count = len(self._numbers) // 4
        if index < 0:
            index += len(self)
        if 0 <= index < count:
            return self._code_addresses()[index], self._lines()[index]
        if count <= index < len(self):
            return self._data[index - count]
        raise IndexError("line table index out of range")

    def __iter__(self) -> Iterator[tuple[int, int]]:
        yield from zip(self._code_addresses(), self._lines())
        yield from self._data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return f"LineTable({len(self._numbers) // 4} instructions, {len(self._data)} data items)"
