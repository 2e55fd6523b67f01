"""Native calls (``ncall CODE``): the host side of the VM, one handler per code.

Owns the built-in natives of upstream §8 with the fixes of decisions.md §3
items 16 and 18, the table ``NATIVES`` that maps codes to handlers, and
``HostIO``, the buffered binary streams the natives write to. ``dispatch`` is
what voxvm/machine.py calls when a Core returns Status.NCALL: it finds the
handler, runs it, and turns anything unexpected into a ``voxvm:`` diagnostic
plus the NativeFault exception (never a traceback).

A handler is ``handler(core, io) -> None``. It reads its arguments with
``core.get_reg`` (r1..r4, upstream §8.0), writes results with
``core.set_reg(0, bits, tag)`` (decisions §2: the tag of the value written),
reads and writes the heap with ``core.heap_read``/``core.heap_write`` and
reports failures with ``core.raise_exception`` after an ``io.diag`` line.
runcmd 0x07, files 0x10-0x16 and network 0x20-0x25 live in
voxvm/natives_io.py, imported at the end of this module. Later natives (FFI,
concurrency 0x30-0x39) register with ``@native(code, name)`` or add entries
to ``HostIO.extra_natives`` (per-run handlers such as FFI functions); per-run
state (open files, sockets) belongs in ``HostIO.state``.
"""

from __future__ import annotations

import io as _io
import random
import sys
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable

from .isa import Exc, Tag
from .values import (as_i64, as_u64, bits_from_f64, decode_utf16be, f64_from_bits, format_f64,
                     to_signed)

STDOUT, STDERR = 1, 2
_FLUSH_AT = 1 << 16       # buffered stdout is written out at this size

Handler = Callable[["object", "HostIO"], None]


class OutputError(Exception):
    """The program's stdout or stderr cannot be written (e.g. a closed pipe)."""


class NativeFailure(Exception):
    """Raised by a handler: print ``voxvm: ncall ...: <message>`` and raise ``exception``."""

    def __init__(self, message: str, exception: Exc = Exc.NativeFault) -> None:
        super().__init__(message)
        self.exception = exception


class _TextSink:
    """Adapts a text stream without a binary buffer (e.g. io.StringIO)."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, data: bytes) -> int:
        self.stream.write(data.decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self.stream.flush()


def binary_stream(stream, default):
    """A binary file object for ``stream`` (None means ``default``, e.g. sys.stdout)."""
    if stream is None:
        stream = default
    if stream is None:
        return None
    if isinstance(stream, _io.TextIOBase) or not _accepts_bytes(stream):
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
            return buffer
        return _TextSink(stream)
    return stream


def _accepts_bytes(stream) -> bool:
    mode = getattr(stream, "mode", "b")
    return not isinstance(mode, str) or "b" in mode


class HostIO:
    """The program's standard streams plus per-run native state.

    stdout is buffered (flushed at 64 KiB, before stdin is read, before a
    sleep, before anything goes to stderr, and at exit or trap); stderr is
    written through. An interactive stdout is flushed after every print.
    """

    def __init__(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
                 stderr: BinaryIO | None = None, *, seed: int | None = None) -> None:
        self.stdin = binary_stream(stdin, sys.stdin)
        self.stdout = binary_stream(stdout, sys.stdout)
        self.stderr = binary_stream(stderr, sys.stderr)
        self._buffer = bytearray()
        try:
            self._interactive = bool(self.stdout.isatty())
        except (AttributeError, OSError, ValueError):
            self._interactive = False
        self.rng = random.Random(seed)
        self.state: dict[str, object] = {}
        self.extra_natives: dict[int, tuple[str, Handler]] = {}

    # -------------------------------------------------------------- output

    def emit(self, stream: int, data: bytes) -> None:
        """Program output on stream 1 (stdout) or 2 (stderr)."""
        if stream == STDOUT:
            self._buffer += data
            if self._interactive or len(self._buffer) >= _FLUSH_AT:
                self.flush()
        else:
            self.flush()
            self._write_err(data)

    def flush(self) -> None:
        """Write buffered stdout out; raise OutputError if that is impossible."""
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            try:
                self.stdout.write(data)
                self.stdout.flush()
            except (OSError, ValueError) as exc:
                raise OutputError(f"cannot write to stdout: {_reason(exc)}") from None

    def _write_err(self, data: bytes) -> None:
        try:
            self.stderr.write(data)
            self.stderr.flush()
        except (OSError, ValueError) as exc:
            raise OutputError(f"cannot write to stderr: {_reason(exc)}") from None

    def diag(self, message: str) -> None:
        """A line from the VM itself on stderr: always ``voxvm: ...`` (conformance README)."""
        self.report(f"voxvm: {message}")

    def report(self, line: str) -> None:
        """Write one complete line (already starting with ``voxvm:``) on stderr."""
        try:
            self.flush()
        except OutputError:
            pass
        try:
            self.stderr.write(f"{line}\n".encode("utf-8", "replace"))
            self.stderr.flush()
        except (OSError, ValueError):
            pass  # nowhere left to report it

    # -------------------------------------------------------------- input

    def read_line(self) -> bytes | None:
        """One line of stdin including its newline; None at end of input."""
        self.flush()
        if self.stdin is None:
            return None
        line = self.stdin.readline()
        return line or None


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


# ====================================================================== registry

@dataclass(frozen=True)
class Native:
    code: int
    name: str
    handler: Handler


NATIVES: dict[int, Native] = {}


def native(code: int, name: str):
    """Register a built-in native handler for ``code``."""

    def register(handler: Handler) -> Handler:
        if code in NATIVES:
            raise ValueError(f"ncall 0x{code:x} registered twice ({NATIVES[code].name}, {name})")
        NATIVES[code] = Native(code, name, handler)
        return handler

    return register


def dispatch(core, code: int, io: HostIO) -> None:
    """Run native ``code`` against ``core``; failures become voxvm exceptions."""
    entry = NATIVES.get(code)
    if entry is not None:
        name, handler = entry.name, entry.handler
    elif code in io.extra_natives:
        name, handler = io.extra_natives[code]
    else:
        io.diag(f"ncall 0x{code:x}: No such callcode! (not a built-in native, and no "
                f"--native-configs library maps it)")
        core.raise_exception(Exc.NativeFault)
        return
    try:
        handler(core, io)
    except NativeFailure as failure:
        io.diag(f"ncall 0x{code:x} ({name}): {failure}")
        core.raise_exception(failure.exception)
    except OutputError:
        raise
    except Exception as exc:  # a bug or an unexpected host error: never a traceback
        io.diag(f"ncall 0x{code:x} ({name}): internal error: {type(exc).__name__}: {exc}")
        core.raise_exception(Exc.NativeFault)


def _reg_u(core, index: int) -> int:
    return as_u64(*core.get_reg(index))


def _reg_i(core, index: int) -> int:
    return as_i64(*core.get_reg(index))


# ====================================================================== 0x01 print

def printable(core, io: HostIO, bits: int, tag: int) -> str | None:
    """The text ``print`` shows for a register value (upstream §8.1, by tag: decisions §2)."""
    if tag == Tag.U64:
        return str(bits)
    if tag == Tag.I64:
        return str(to_signed(bits))
    if tag == Tag.F64:
        return format_f64(f64_from_bits(bits))
    if tag == Tag.DS_ADDR:
        return f"VM Data segment address: 0x{bits:x}"
    if tag == Tag.STR:
        return _main_memory_string(core, io, bits)
    if tag == Tag.ADDR:
        count_bits, count_tag = core.get_reg(3)
        if count_tag == Tag.U64 and count_bits > 0:
            data = core.heap_read(bits, count_bits)
            if data is None:
                io.diag(f"print: Failed to read bytes [0x{bits:x}]:[0x{bits + count_bits:x}]")
            else:
                text = decode_utf16be(data)
                if text is not None:
                    return text
                io.diag(f"print: the {count_bits} bytes at heap 0x{bits:x} are not valid UTF-16")
        return f"VM Heap address: 0x{bits:x}"
    raise NativeFailure(f"print: register r1 has no valid tag ({tag})")


def _main_memory_string(core, io: HostIO, address: int) -> str | None:
    """A str item's payload in main memory: length at address-8, then UTF-16BE."""
    memory = core.memory()
    if address < 8 or address > len(memory):
        raise NativeFailure(f"print: string address 0x{address:x} is outside main memory "
                            f"({len(memory)} bytes)")
    length = int.from_bytes(memory[address - 8:address], "big")
    if address + length > len(memory):
        raise NativeFailure(f"print: the {length}-byte string at 0x{address:x} runs past the end "
                            f"of main memory ({len(memory)} bytes)")
    text = decode_utf16be(memory[address:address + length])
    if text is None:
        # Upstream prints two ERROR lines and nothing on the stream, and raises nothing.
        io.diag(f"print: the string at 0x{address:x} is not valid UTF-16; nothing printed")
    return text


@native(0x01, "print")
def _print(core, io: HostIO) -> None:
    """r1 = value, r2 = stream (1 stdout, 2 stderr), r3 = byte count for heap strings."""
    stream, _ = core.get_reg(2)
    if stream not in (STDOUT, STDERR):   # decisions §3.18: NativeFault, not silence
        raise NativeFailure(f"print: stream {stream} is neither 1 (stdout) nor 2 (stderr)")
    text = printable(core, io, *core.get_reg(1))
    if text is not None:
        io.emit(stream, text.encode("utf-8") + b"\n")


# ====================================================================== 0x02-0x06

@native(0x02, "input")
def _input(core, io: HostIO) -> None:
    """r1 = heap destination, r2 = byte limit; r0 = U(bytes written) (decisions §3.16)."""
    destination, limit = _reg_u(core, 1), _reg_u(core, 2)
    try:
        line = io.read_line()
    except (OSError, ValueError) as exc:
        core.set_reg(0, 0, Tag.U64)
        raise NativeFailure(f"input: cannot read stdin: {_reason(exc)}") from None
    if line is None:                      # end of input: r0 = 0, nothing written
        core.set_reg(0, 0, Tag.U64)
        return
    data = line.decode("utf-8", "replace").encode("utf-16-be")[:limit]
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
    low, high = _reg_i(core, 1), _reg_i(core, 2)
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
    remaining = _reg_u(core, 1) / 1000.0
    while remaining > 0:
        chunk = min(remaining, _MAX_SLEEP_CHUNK)
        time.sleep(chunk)
        remaining -= chunk


# ====================================================================== 0x07, 0x10-0x16, 0x20-0x25

# Registers runcmd, the file and the network natives (needs the names above).
from . import natives_io  # noqa: E402,F401
