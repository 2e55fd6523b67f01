"""Human-readable rendering of a core dump (``voxvm dump FILE``).

Owns ``render_dump``: the text a person reads for a ``voxvm.dump`` or
``voxvm_err.dump`` (semantics.md §3.26) already decoded by
voxvm.formats.parse_dump. Pure formatting, no I/O.
"""

from __future__ import annotations

from .backtrace import HEAD, frames, render_frames
from .formats import Dump
from .program import Program
from .isa import BY_CODE, Exc
from .traps import TrapKind, describe
from .values import format_value

HEXDUMP_HEAD = 256          # bytes of main memory shown
HEAP_BLOCK_HEAD = 64        # bytes of each heap block shown
MAX_STACK_SHOWN = 64        # data-stack entries shown (the top ones)
MAX_BLOCKS_SHOWN = 64


def hexdump(data: bytes, base: int = 0, limit: int | None = None) -> list[str]:
    """Classic 16-bytes-per-line hex dump lines with an ASCII column."""
    shown = data if limit is None else data[:limit]
    lines = []
    for offset in range(0, len(shown), 16):
        chunk = shown[offset:offset + 16]
        hex_part = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"  {base + offset:08x}  {hex_part:<47}  |{text}|")
    return lines


def _exception_name(number: int) -> str:
    try:
        return f"{Exc(number).name} ({number})"
    except ValueError:
        return f"exception {number}"


def _trap_name(number: int) -> str:
    try:
        return TrapKind(number).name
    except ValueError:
        return f"trap {number}"


def _read(memory: bytes):
    def read(address: int, count: int) -> bytes | None:
        return memory[address:address + count] if address + count <= len(memory) else None
    return read


def render_dump(dump: Dump, program: Program | None = None) -> str:
    """The whole dump as text, ending with a newline; ``program`` (a debug map's, over the
    dump's memory) names the functions and source lines."""
    out: list[str] = []
    if dump.reason == 0:
        out.append("voxvm core dump: program halted")
    elif dump.version < 3:
        out.append(f"voxvm core dump: program trapped ({_trap_name(dump.trap)}; a version "
                   f"{dump.version} dump does not record the trap's details)")
    else:
        out.append(f"voxvm core dump: program trapped ({_trap_name(dump.trap)}: "
                   f"{describe(dump.trap, dump.trap_a, dump.trap_b)})")
    at = ""
    if dump.ip < len(dump.memory) and dump.memory[dump.ip] in BY_CODE:
        at = f" ({BY_CODE[dump.memory[dump.ip]].mnemonic})"
    stack = frames(dump.ip, dump.call_stack, program, _read(dump.memory), HEAD)
    if program is not None:
        at += "".join(stack[0].text().split(f"0x{dump.ip:04x}", 1)[1:])
    out.append(f"ip: 0x{dump.ip:x}{at}")
    of, zf, nf, cf = dump.flags
    out.append(f"flags: OF={of} ZF={zf} NF={nf} CF={cf}")

    out.append("registers:")
    for index, (bits, tag) in enumerate(dump.registers):
        out.append(f"  r{index:<2} = 0x{bits:016x}  {format_value(bits, tag)}")

    out.append(f"data stack: {len(dump.data_stack)} entries (index 0 = bottom)")
    first = max(0, len(dump.data_stack) - MAX_STACK_SHOWN)
    if first:
        out.append(f"  ... {first} older entries not shown")
    for index in range(first, len(dump.data_stack)):
        bits, tag = dump.data_stack[index]
        out.append(f"  [{index}] {format_value(bits, tag)}")

    out.append(f"call stack: {len(dump.call_stack)} frames (oldest first)")
    for depth, address in enumerate(dump.call_stack):
        out.append(f"  #{depth} return to 0x{address:x}")
    if program is not None and dump.call_stack:
        out.append("backtrace (innermost first):")
        out.extend(f"  {line}" for line in render_frames(stack))

    if dump.pending:
        out.append("pending exceptions: " + ", ".join(
            f"{_exception_name(n)} x{count}" for n, count in sorted(dump.pending.items())))
    else:
        out.append("pending exceptions: none")

    out.append(f"main memory: {len(dump.memory)} bytes")
    out.extend(hexdump(dump.memory, 0, HEXDUMP_HEAD))
    if len(dump.memory) > HEXDUMP_HEAD:
        out.append(f"  ... {len(dump.memory) - HEXDUMP_HEAD} more bytes")

    total = sum(size for _, size, _, _ in dump.heap)
    out.append(f"heap: {len(dump.heap)} live blocks, {total} bytes")
    for address, size, kind, data in dump.heap[:MAX_BLOCKS_SHOWN]:
        label = "nogc" if kind else "gc"
        out.append(f"  block 0x{address:x}: {size} bytes ({label})")
        out.extend("  " + line for line in hexdump(data, address, HEAP_BLOCK_HEAD))
        if size > HEAP_BLOCK_HEAD:
            out.append(f"    ... {size - HEAP_BLOCK_HEAD} more bytes")
    if len(dump.heap) > MAX_BLOCKS_SHOWN:
        out.append(f"  ... {len(dump.heap) - MAX_BLOCKS_SHOWN} more blocks")
    return "\n".join(out) + "\n"
