"""Backtraces: the call stack of a stopped program, innermost first, for people.

Owns ``frames`` (from the stopped instruction's address and the call stack of
return addresses to ``Frame``s: the address each frame is at, its function
and source location when the Program's symbols know them) and
``render_frames`` (Lua-style: the innermost ``HEAD`` frames and the outermost
``TAIL`` ones, the rest counted in one line). A caller frame is "at" its call
instruction: the ``call`` (or ``callr``) that ends at the return address, when
the bytes there are one; otherwise at the return address itself. Used by the
trap report (voxvm/machine.py), ``voxvm dump`` (voxvm/dumpview.py) and the trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from .isa import BY_MNEMONIC
from .program import Program

HEAD = 10          # innermost frames shown
TAIL = 10          # outermost frames shown
TOP_LEVEL = "(top level)"    # code before the first function (or a program without functions)
_CALLS = tuple((BY_MNEMONIC[m].code, BY_MNEMONIC[m].size) for m in ("call", "callr"))


@dataclass(frozen=True)
class Frame:
    depth: int                 # 0: where the program stopped
    address: int               # the instruction (a call site for depth > 0)
    function: str | None
    where: str | None          # FILE:LINE, when the symbols know it
    returns_to: int | None     # for depth > 0: the return address on the call stack

    def text(self) -> str:
        out = f"#{self.depth:<3} 0x{self.address:04x} in {self.function or TOP_LEVEL}"
        if self.where:
            out += f", {self.where}"
        return out


def call_site(return_address: int, read: Callable[[int, int], bytes | None]) -> int:
    """The address of the call instruction that returns to ``return_address`` (else that address)."""
    for code, size in _CALLS:
        if return_address >= size:
            byte = read(return_address - size, 1)
            if byte and byte[0] == code:
                return return_address - size
    return return_address


def frames(ip: int, call_stack: list[int], program: Program | None,
           read: Callable[[int, int], bytes | None], head: int | None = None,
           tail: int = TAIL) -> list[Frame]:
    """Every frame, innermost (the stopped instruction at ``ip``) first; with ``head``, only
    the frames ``render_frames(…, head, tail)`` shows of a deeper stack, each with its true
    depth (a trap at a recursion limit of 16 M frames resolves 20, not 16 M)."""

    def frame(depth: int, address: int, returns_to: int | None) -> Frame:
        if program is None:
            return Frame(depth, address, None, None, returns_to)
        inside = address < len(program.image)
        return Frame(depth, address, program.function_at(address) if inside else None,
                     program.where(address), returns_to)

    count = len(call_stack) + 1
    if head is None or count <= head + tail + 1:
        depths: Iterable[int] = range(count)
    else:
        depths = (*range(head), *range(count - tail, count))
    return [frame(0, ip, None) if depth == 0 else
            frame(depth, call_site(call_stack[-depth], read), call_stack[-depth]) for depth in depths]


def render_frames(shown: list[Frame], head: int = HEAD, tail: int = TAIL) -> list[str]:
    """One line per frame shown; a deep stack keeps its innermost and outermost frames.

    ``shown`` is every frame, or only those (``frames(…, head, tail)``): the depth of the
    outermost one says how deep the stack is."""
    count = shown[-1].depth + 1 if shown else 0
    if count <= head + tail + 1:
        return [f.text() for f in shown]
    return ([f.text() for f in shown if f.depth < head] + [f"...  ({count - head - tail} frames not shown)"]
            + [f.text() for f in shown if f.depth >= count - tail])
