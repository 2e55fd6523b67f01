"""The trap table: every fatal run-time error, numbered once for both backends.

Owns ``TrapKind`` (the numbers both the Cython core and the pure-Python
backend return when a program must stop, decisions.md §5), the message of
each, and ``Trap``, the error raised at the one boundary where a backend's
status code becomes a Python exception (voxvm/machine.py). Catchable
voxvm exceptions (ZeroDivision, heap faults, ...) are *not* traps: they live
in voxvm.isa.Exc and go to the pending list.
"""

from __future__ import annotations

import enum

from .errors import ExitStatus, VoxError


class TrapKind(enum.IntEnum):
    """Why a program was stopped. The two int arguments fill the message."""

    UNKNOWN_OPCODE = 1
    IP_OUTSIDE = 2
    TRUNCATED_INSTRUCTION = 3
    BAD_REGISTER = 4
    TYPE_MISMATCH = 5
    STACK_UNDERFLOW = 6
    CALL_STACK_UNDERFLOW = 7
    RECURSION_LIMIT = 8
    BAD_FUNCTION = 9
    BAD_LOAD_TYPE = 10
    CONST_WRITE = 11
    STACK_OVERFLOW = 12
    BAD_DATA_TYPE = 13
    DATA_OUT_OF_RANGE = 14
    BAD_EXCEPTION = 15
    NEGATIVE_ISQRT = 16
    NATIVE_ERROR = 17
    HOST_MEMORY = 18       # the host could not allocate memory for a stack or list


_TAG_NAMES = {1: "uint64", 2: "int64", 3: "float64", 4: "StrAddr", 8: "address", 9: "ds_addr"}


def tag_name(tag: int) -> str:
    """Human name of a register tag (decisions §2)."""
    return _TAG_NAMES.get(tag, f"tag {tag}")


def _mismatch(a: int, b: int) -> str:
    # a = operation code << 16 | left tag << 8 | right tag; b unused.
    operation = ["+", "-", "*", "/", "%", "&", "|", "^", "~", "<<", ">>", "inc", "dec", "cmp"]
    op, left, right = a >> 16, (a >> 8) & 0xFF, a & 0xFF
    name = operation[op] if op < len(operation) else "?"
    if right == 0:
        return f"type mismatch: {name} on {tag_name(left)}"
    return f"type mismatch: {tag_name(left)} {name} {tag_name(right)}"


_MESSAGES = {
    TrapKind.UNKNOWN_OPCODE: lambda a, b: f"unknown opcode 0x{a:02x}",
    TrapKind.IP_OUTSIDE: lambda a, b: f"ip outside the image (length {b})",
    TrapKind.TRUNCATED_INSTRUCTION: lambda a, b: f"truncated instruction (needs {a} bytes, {b} left)",
    TrapKind.BAD_REGISTER: lambda a, b: f"register operand r{a} does not exist (r0..r31)",
    TrapKind.TYPE_MISMATCH: _mismatch,
    TrapKind.STACK_UNDERFLOW: lambda a, b: "pop from an empty data stack",
    TrapKind.CALL_STACK_UNDERFLOW: lambda a, b: "ret with an empty call stack",
    TrapKind.RECURSION_LIMIT: lambda a, b: f"recursion limit exceeded ({a} frames)",
    TrapKind.BAD_FUNCTION: lambda a, b: f"function index {a} is not in the function table ({b} entries)",
    TrapKind.BAD_LOAD_TYPE: lambda a, b: f"load type {a} is not one of 1, 2, 3, 4, 8, 9",
    TrapKind.CONST_WRITE: lambda a, b: f"write to the const data item at 0x{a:x}",
    TrapKind.STACK_OVERFLOW: lambda a, b: f"data stack overflow ({a} entries)",
    TrapKind.BAD_DATA_TYPE: lambda a, b: f"data item at 0x{a:x} has unusable type byte 0x{b:02x}",
    TrapKind.DATA_OUT_OF_RANGE: lambda a, b: f"main-memory access at 0x{a:x} outside the {b}-byte memory",
    TrapKind.BAD_EXCEPTION: lambda a, b: f"jexc with unknown exception number {a}",
    TrapKind.NEGATIVE_ISQRT: lambda a, b: "isqrt of a negative value that is not an int64",
    TrapKind.NATIVE_ERROR: lambda a, b: f"native call 0x{a:x} failed",
    TrapKind.HOST_MEMORY: lambda a, b: "the host ran out of memory",
}


def describe(kind: int, a: int = 0, b: int = 0) -> str:
    """The '<what>' part of a trap line."""
    try:
        return _MESSAGES[TrapKind(kind)](a, b)
    except (ValueError, KeyError):
        return f"trap {kind}"


class Trap(VoxError):
    """A program stopped by a trap; ``render()`` is the one-line report."""

    exit_status = ExitStatus.SOFTWARE

    def __init__(self, kind: int, ip: int, mnemonic: str | None, a: int = 0, b: int = 0,
                 function: str | None = None, line: int | None = None,
                 source: str | None = None, detail: str | None = None) -> None:
        self.kind = kind
        self.ip = ip
        self.mnemonic = mnemonic
        self.args_ = (a, b)
        self.function = function
        self.line = line
        self.source = source
        self.what = detail or describe(kind, a, b)
        super().__init__(self.render())

    def render(self) -> str:
        text = f"voxvm: trap: {self.what} at 0x{self.ip:x}"
        if self.mnemonic:
            text += f" ({self.mnemonic})"
        if self.function:
            text += f" in {self.function}"
        if self.line is not None:
            text += f", {self.source or 'line'}:{self.line}" if self.source else f", line {self.line}"
        return text
