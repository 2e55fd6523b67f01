"""The basic natives: print (0x01), input, randf, randint, unixtime, sleep (0x02-0x06), put (0x08).

Owns those handlers (upstream's built-ins with the fixes listed in
docs/semantics.md "Natives"; ``put``, print without the newline, is the
extension of semantics.md §7.2) and ``printable``, the text ``print`` and
``put`` show for a register value.
"""

from __future__ import annotations

import time

from ..tags import Exc, Tag
from ..values import bits_from_f64, decode_utf16be, f64_from_bits, format_f64, to_signed
from .io import STDERR, STDOUT, HostIO, reason
from .registry import NativeFailure, native, reg_i, reg_u

# ====================================================================== 0x01 print


def printable(core, io: HostIO, bits: int, tag: int, name: str = "print") -> str | None:
    """The text ``print`` (or ``put``: ``name``, for the messages) shows for a register value
    (upstream.md §8.1, by tag: semantics.md §2)."""
    if tag == Tag.U64:
        return str(bits)
    if tag == Tag.I64:
        return str(to_signed(bits))
    if tag == Tag.F64:
        return format_f64(f64_from_bits(bits))
    if tag == Tag.DS_ADDR:
        return f"VM Data segment address: 0x{bits:x}"
    if tag == Tag.STR:
        return _main_memory_string(core, io, bits, name)
    if tag == Tag.ADDR:
        count_bits, count_tag = core.get_reg(3)
        if count_tag == Tag.U64 and count_bits > 0:
            data = core.heap_read(bits, count_bits)
            if data is None:
                io.diag(f"{name}: Failed to read bytes [0x{bits:x}]:[0x{bits + count_bits:x}]")
            else:
                text = decode_utf16be(data)
                if text is not None:
                    return text
                io.diag(f"{name}: the {count_bits} bytes at heap 0x{bits:x} are not valid UTF-16")
        return f"VM Heap address: 0x{bits:x}"
    raise NativeFailure(f"{name}: register r1 has no valid tag ({tag})")


def _main_memory_string(core, io: HostIO, address: int, name: str) -> str | None:
    """A str item's payload in main memory: length at address-8, then UTF-16BE.

    Reads only the item (two small reads), never a copy of all main memory.
    """
    header = core.read_memory(address - 8, 8) if address >= 8 else None
    if header is None:
        raise NativeFailure(f"{name}: string address 0x{address:x} is outside main memory")
    length = int.from_bytes(header, "big")
    payload = core.read_memory(address, length)
    if payload is None:
        raise NativeFailure(f"{name}: the {length}-byte string at 0x{address:x} runs past the end "
                            f"of main memory")
    text = decode_utf16be(payload)
    if text is None:
        # Upstream prints two ERROR lines and nothing on the stream, and raises nothing.
        io.diag(f"{name}: the string at 0x{address:x} is not valid UTF-16; nothing printed")
    return text


PRINT = 0x01
PUT = 0x08      # an extension (semantics.md §7.2): a code upstream v8.03 leaves undefined


def _show(core, io: HostIO, name: str, end: bytes) -> None:
    """print and put: r1 = value, r2 = stream (1 stdout, 2 stderr), r3 = byte count for heap strings."""
    stream, _ = core.get_reg(2)
    if stream not in (STDOUT, STDERR):   # semantics.md §3.18: NativeFault, not silence
        raise NativeFailure(f"{name}: stream {stream} is neither 1 (stdout) nor 2 (stderr)")
    text = printable(core, io, *core.get_reg(1), name)
    if text is not None:
        io.emit(stream, text.encode("utf-8") + end)


@native(PRINT, "print")
def _print(core, io: HostIO) -> None:
    """The value's text and a newline."""
    _show(core, io, "print", b"\n")


@native(PUT, "put")
def _put(core, io: HostIO) -> None:
    """The value's text alone, so that a program can build one line from several values."""
    _show(core, io, "put", b"")


# ====================================================================== 0x02-0x06

@native(0x02, "input")
def _input(core, io: HostIO) -> None:
    """r1 = heap destination, r2 = byte limit; r0 = U(bytes written) (semantics.md §3.16).

    At most r2 bytes are read (the rest of a longer line stays for the next input).
    """
    destination, limit = reg_u(core, 1), reg_u(core, 2)
    try:
        data = io.read_line(limit)
    except (OSError, ValueError) as exc:
        core.set_reg(0, 0, Tag.U64)
        raise NativeFailure(f"input: cannot read stdin: {reason(exc)}") from None
    if data is None:                      # end of input: r0 = 0, nothing written
        core.set_reg(0, 0, Tag.U64)
        return
    if not core.heap_write(destination, data):
        core.set_reg(0, 0, Tag.U64)
        raise NativeFailure(f"input: cannot write {len(data)} bytes at heap 0x{destination:x}",
                            Exc.HeapWriteFault)
    core.set_reg(0, len(data), Tag.U64)


@native(0x03, "randf")
def _randf(core, io: HostIO) -> None:
    """r0 = F(x), x uniform in [0, 1)."""
    core.set_reg(0, bits_from_f64(io.rng.random()), Tag.F64)


@native(0x04, "randint")
def _randint(core, io: HostIO) -> None:
    """r0 = I(x), x uniform in [r1, r2) (as int64); an empty range raises NativeFault."""
    low, high = reg_i(core, 1), reg_i(core, 2)
    if low >= high:
        raise NativeFailure(f"randint: empty range [{low}, {high})")
    core.set_reg(0, io.rng.randrange(low, high) & ((1 << 64) - 1), Tag.I64)


@native(0x05, "unixtime")
def _unixtime(core, io: HostIO) -> None:
    """r0 = I(whole seconds since the Unix epoch)."""
    core.set_reg(0, int(time.time()) & ((1 << 64) - 1), Tag.I64)


_MAX_SLEEP_CHUNK = 86400.0


@native(0x06, "sleep")
def _sleep(core, io: HostIO) -> None:
    """Sleep r1 milliseconds (as uint64); stdout is flushed first."""
    io.flush()
    remaining = reg_u(core, 1) / 1000.0
    while remaining > 0:
        chunk = min(remaining, _MAX_SLEEP_CHUNK)
        io.pause(chunk)
        remaining -= chunk
        if io.stop_event is not None and io.stop_event.is_set():
            return                 # the run is stopping (Ctrl-C): the loop stops next


