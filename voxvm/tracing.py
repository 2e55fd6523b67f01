"""The instruction trace (``--trace``): one line per executed instruction.

Owns ``Tracer``: where the trace goes (stderr, each line starting
``voxvm: trace: `` like everything the VM prints there, or a file given with
``--trace-file``), its limit and start (``--trace-limit``, ``--trace-from``),
and the line itself: address, function, source location (when the program
has symbols: assembled from source or given a debug map), the instruction
with the program's names, the flags after it (``OZNC``, ``-`` when clear)
and every register it changed with its new tag and value. The machine
(voxvm/machine.py) drives it with ``Core.step()``, so the same code writes
the trace for both backends (docs/debugging.md).
"""

from __future__ import annotations

from typing import BinaryIO, Callable

from .disasm import InstructionNamer
from .isa import MAX_SIZE
from .program import Program
from .values import format_value

STDERR_PREFIX = "voxvm: trace: "
_FLAG_LETTERS = "OZNC"


class TraceOutputError(Exception):
    """The trace file cannot be written (the run goes on untraced)."""


def flags_text(flags) -> str:
    return "".join(letter if bit else "-" for letter, bit in zip(_FLAG_LETTERS, flags))


class Tracer:
    """Formats and writes trace lines; ``active`` turns False when the limit is reached."""

    def __init__(self, program: Program, write_line: Callable[[str], None], limit: int | None = None,
                 close: Callable[[], None] | None = None) -> None:
        self.program = program
        self.namer = InstructionNamer(program)
        self._write = write_line
        self._close = close
        self.limit = limit
        self.lines = 0
        self.active = limit != 0
        self._functions: dict[int, str] = {}
        self._heads: dict[tuple[int, bytes | None], str] = {}
        self._flags: dict[tuple, str] = {}

    @classmethod
    def to_file(cls, program: Program, path: str, limit: int | None) -> "Tracer":
        """A tracer writing to ``path``; raises TraceOutputError when it cannot be created."""
        try:
            f: BinaryIO = open(path, "wb")
        except OSError as exc:
            raise TraceOutputError(f"cannot write the trace to {path}: {exc.strerror or exc}") from None

        def write(line: str) -> None:
            try:
                f.write(line.encode("utf-8", "replace") + b"\n")
            except OSError as exc:
                raise TraceOutputError(f"cannot write the trace to {path}: {exc.strerror or exc}") from None

        def close() -> None:
            try:
                f.close()
            except OSError:
                pass

        return cls(program, write, limit, close)

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def _function(self, address: int) -> str:
        name = self._functions.get(address)
        if name is None:
            name = self.program.function_at(address) if address < len(self.program.image) else None
            name = name or "-"
            self._functions[address] = name
        return name

    def record(self, address: int, code: bytes | None, before: list[tuple[int, int]],
               after: list[tuple[int, int]], flags, note: str | None = None) -> None:
        """One line for the instruction at ``address`` (its bytes ``code``): the registers
        ``before`` and ``after`` it, the flags after it, and a ``note`` (``trap``, ...)."""
        key = (address, code)
        head = self._heads.get(key)
        if head is None:          # everything about the instruction itself, once per address
            instruction = self.namer.text(code, address) if code else "(outside memory)"
            where = self.program.where(address) or ""
            head = f"0x{address:04x}  {self._function(address):<12} {where:<16} {instruction:<32} "
            if len(self._heads) < 1 << 16:
                self._heads[key] = head
        changes = ""
        if before != after:       # most instructions change one register or none
            changes = ", ".join(f"r{i}={format_value(*after[i])}"
                                for i in range(len(after)) if before[i] != after[i])
        if note:
            changes = f"{changes}  [{note}]" if changes else f"[{note}]"
        flags = tuple(flags)
        shown = self._flags.get(flags)
        if shown is None:
            shown = self._flags[flags] = flags_text(flags)
        line = f"{head}{shown}  {changes}".rstrip()
        self._write(line)
        self.lines += 1
        if self.limit is not None and self.lines >= self.limit:
            self.active = False


def read_code(read_memory: Callable[[int, int], bytes | None], address: int) -> bytes | None:
    """Up to one instruction's bytes at ``address`` (fewer at the end of memory; None outside)."""
    for count in range(MAX_SIZE, 0, -1):
        code = read_memory(address, count)
        if code is not None:
            return code
    return None
