"""The Python embedding API: load a program, run it with captured streams, read the result.

Owns what ``import voxvm`` offers to programs that drive the VM from Python
(compilers' test suites, tools, embedders; docs/api.md): ``load`` (bytes of a
``.vve``/``.vvr``, or a path to any program file, ``.vvs`` assembled in
memory), ``Machine`` (a program plus run options given as keyword arguments
and natives written in Python; each ``run()`` starts a fresh VM), the
``RunResult`` of a run (exit status, stdout and stderr as bytes, the trap,
registers as tagged ``Value``s, pending exceptions), ``NativeCall`` (what a
Python native sees) and ``RunLimitExceeded``. Errors are the toolchain's own
types with the command line's messages: ``AssemblyError``, ``FormatError``,
``UsageError``, ``Trap`` (voxvm/errors.py, voxvm/traps.py, voxasm).

It is a thin layer over voxvm/machine.py (the same driver the command line
uses, so a run here prints byte for byte what ``voxvm run`` prints) and sits
at the command line's level of docs/architecture.md: the only other module
that may load ``.vvs`` through the assembler.
"""

from __future__ import annotations

import io
import os
import struct
import threading
from dataclasses import dataclass, field
from typing import IO, Callable, NamedTuple, Union

from .config import RUN_OPTIONS, VMConfig, config_from_options
from .errors import ExitStatus, FormatError, UsageError, VoxError, VoxIOError
from .host.registry import NativeFailure
from .isa import NUM_REGISTERS, Exc, Tag
from .program import Program
from .traps import Trap

__all__ = ["load", "Machine", "RunResult", "Value", "Frame", "NativeCall", "NativeError",
           "RunLimitExceeded", "Program", "Trap", "VoxError", "UsageError", "FormatError",
           "AssemblyError", "Exc", "Tag"]

from voxasm.diagnostics import AssemblyError  # noqa: E402  (re-exported: voxvm.AssemblyError)

PathLike = Union[str, "os.PathLike[str]"]
ProgramSource = Union[Program, bytes, bytearray, memoryview, PathLike]
NativeError = NativeFailure
"""Raise ``NativeError(message, exception=Exc.X)`` in a Python native: a ``voxvm: ncall …`` line
on stderr and exception X pending, exactly as the built-in natives fail (docs/natives/README.md §2)."""

_MASK = (1 << 64) - 1
_RUN_OPTION_FIELDS = {o.field: o for o in RUN_OPTIONS}


# ====================================================================== loading

def load(source: ProgramSource, *, kind: str | None = None, filename: str | None = None) -> Program:
    """A runnable ``Program`` from ``.vve`` bytes, or from a file.

    * ``bytes`` (or bytearray, memoryview): a ``.vve`` executable, e.g. what
      ``voxasm.assemble`` returns; ``kind="vvr"`` for a raw image loaded at 0.
      ``filename`` names it in messages (default ``<bytes>``).
    * a path (``str`` or ``os.PathLike``): the format comes from the name as on
      the command line (``.vvs`` is assembled in memory, ``.vvr`` is raw,
      anything else is read as ``.vve``), or from ``kind`` ("vvs", "vve", "vvr").
    * a ``Program``: returned as it is.

    Raises ``FormatError`` (malformed ``.vve``/``.vvr``), ``AssemblyError``
    (``.vvs`` with errors), ``VoxIOError`` (unreadable file) or ``UsageError``
    (an unknown ``kind``).
    """
    if kind not in (None, "vvs", "vve", "vvr"):
        raise UsageError(f"kind: '{kind}' is not one of vvs, vve, vvr")
    if isinstance(source, Program):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        from .vvefile import load_vve, load_vvr

        data, name = bytes(source), filename or "<bytes>"
        if kind == "vvs":
            from voxasm.assembler import assemble

            return assemble(data, name)
        return load_vvr(data, name) if kind == "vvr" else load_vve(data, name)
    if isinstance(source, (str, os.PathLike)):
        from .cli.loading import load_path

        return load_path(os.fspath(source), kind)
    raise UsageError(f"load: expected bytes, a path or a Program, not {type(source).__name__}")


# ====================================================================== values


class Value(NamedTuple):
    """One register (or data-stack entry): its 64 bits and its tag (docs/semantics.md §2)."""

    bits: int
    tag: Tag

    @property
    def value(self) -> int | float:
        """The payload as Python sees it: int64 signed, float64 a float, anything else unsigned."""
        if self.tag == Tag.I64:
            return self.bits - (1 << 64) if self.bits >> 63 else self.bits
        if self.tag == Tag.F64:
            return struct.unpack(">d", self.bits.to_bytes(8, "big"))[0]
        return self.bits

    def __repr__(self) -> str:
        return f"Value({self.value!r}, {self.tag.name})"

    @classmethod
    def of(cls, value: "int | float | bool | Value") -> "Value":
        """A Value from a Python number: bool and int >= 0 are uint64, negative int int64,
        float float64; a Value stays as it is. Out of range is a ``UsageError``."""
        if isinstance(value, Value):
            return value
        if isinstance(value, bool):
            return cls(int(value), Tag.U64)
        if isinstance(value, int):
            if not -(1 << 63) <= value <= _MASK:
                raise UsageError(f"{value} does not fit in 64 bits")
            return cls(value & _MASK, Tag.U64 if value >= 0 else Tag.I64)
        if isinstance(value, float):
            return cls(struct.unpack(">Q", struct.pack(">d", value))[0], Tag.F64)
        raise UsageError(f"expected an int, a float, a bool or a voxvm.Value, not {type(value).__name__}")


def _tag(number: int) -> Tag | int:
    try:
        return Tag(number)
    except ValueError:            # an untagged (zeroed) register keeps its raw number
        return number


@dataclass(frozen=True)
class Frame:
    """One frame of a backtrace: the instruction's address, its function and source line (if known)."""

    address: int
    function: str | None
    line: int | None
    source: str | None

    def __str__(self) -> str:
        text = f"0x{self.address:x}"
        if self.function:
            text += f" in {self.function}"
        if self.line is not None:
            text += f", {self.source}:{self.line}" if self.source else f", line {self.line}"
        return text


# ====================================================================== natives written in Python


class NativeCall:
    """What a Python native sees: the registers, the heap and main memory of the calling VM.

    Arguments are in r1, r2, … (docs/natives/README.md §1): ``call.args`` is
    r1..r4 as ``Value``s, ``call.reg(n)`` any register. The native's return
    value goes to r0 (None leaves it alone).
    """

    __slots__ = ("code", "_core", "_io")

    def __init__(self, code: int, core, host) -> None:
        self.code = code
        self._core = core
        self._io = host

    # Wrong arguments are the native's own bug: a UsageError, which run() raises (the same on
    # both backends). An address no block or memory holds is the program's: a NativeError.

    def reg(self, index: int) -> Value:
        """Register ``index`` (0..31)."""
        bits, tag = self._core.get_reg(_register(index))
        return Value(bits, _tag(tag))

    def set_reg(self, index: int, value: "int | float | bool | Value") -> None:
        """Write register ``index``; a Python number gets the tag of ``Value.of``."""
        index = _register(index)
        try:
            v = Value.of(value)
        except UsageError as error:
            raise UsageError(f"set_reg(r{index}): {error}") from None
        self._core.set_reg(index, v.bits, int(v.tag))

    @property
    def args(self) -> tuple[Value, Value, Value, Value]:
        """r1, r2, r3, r4."""
        return (self.reg(1), self.reg(2), self.reg(3), self.reg(4))

    def read_heap(self, address: int, count: int) -> bytes:
        """``count`` bytes inside one live heap block; else NativeError(HeapReadFault)."""
        _span("read_heap", address, count)
        data = self._core.heap_read(address, count) if address <= _MASK and count <= _MASK else None
        if data is None:
            raise NativeError(f"cannot read {count} bytes at heap 0x{address:x}", Exc.HeapReadFault)
        return data

    def write_heap(self, address: int, data: bytes) -> None:
        """Write inside one live heap block; else NativeError(HeapWriteFault)."""
        data = _bytes("write_heap", data)
        _span("write_heap", address, len(data))
        if address > _MASK or not self._core.heap_write(address, data):
            raise NativeError(f"cannot write {len(data)} bytes at heap 0x{address:x}", Exc.HeapWriteFault)

    def read_memory(self, address: int, count: int) -> bytes:
        """``count`` bytes of main memory; else NativeError(MainSegmFault)."""
        _span("read_memory", address, count)
        data = self._core.read_memory(address, count) if address <= _MASK and count <= _MASK else None
        if data is None:
            raise NativeError(f"cannot read {count} bytes of main memory at 0x{address:x}", Exc.MainSegmFault)
        return data

    def string(self, index: int) -> str:
        """The text register ``index`` points to, as natives take strings: a heap address
        with its byte count in the next register, or a StrAddr of a ``str`` item."""
        value = self.reg(index)
        if value.tag == Tag.STR:
            length = int.from_bytes(self.read_memory(value.bits - 8, 8), "big") if value.bits >= 8 else None
            if length is None:
                raise NativeError(f"string address 0x{value.bits:x} is outside main memory", Exc.MainSegmFault)
            data = self.read_memory(value.bits, length)
        elif value.tag == Tag.ADDR:
            data = self.read_heap(value.bits, self.reg(index + 1).bits)
        else:
            raise NativeError(f"r{index} is not a string (tag {value.tag!r}: expected a heap address "
                              f"or a StrAddr)", Exc.IncorrectRegType)
        return data.decode("utf-16-be", "replace")

    def raise_exception(self, exception: Exc) -> None:
        """Add ``exception`` to the pending list without a message (a ``jexc`` will see it)."""
        self._core.raise_exception(int(exception))

    def write(self, text: str | bytes, stream: int = 1) -> None:
        """Program output on stdout (1) or stderr (2), in order with the program's own prints."""
        if stream not in (1, 2) or isinstance(stream, bool):
            raise UsageError(f"write: stream {stream!r} is neither 1 (stdout) nor 2 (stderr)")
        self._io.emit(stream, text.encode("utf-8") if isinstance(text, str) else _bytes("write", text))


def _register(index: object) -> int:
    if not isinstance(index, int) or isinstance(index, bool):
        raise UsageError(f"a register number is an int, not {type(index).__name__}")
    if not 0 <= index < NUM_REGISTERS:
        raise UsageError(f"register r{index} does not exist (r0..r{NUM_REGISTERS - 1})")
    return index


def _span(what: str, address: object, count: object) -> None:
    """An address and a byte count as NativeCall takes them: ints, neither negative."""
    for name, number in (("address", address), ("count", count)):
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise UsageError(f"{what}: the {name} must be an int of at least 0, not {number!r}")


def _bytes(what: str, data: object) -> bytes:
    """Bytes-like data, not an int (``bytes(3)`` would be three NUL bytes) or text."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UsageError(f"{what}: expected bytes, not {type(data).__name__}")
    return bytes(data)


NativeFunction = Callable[[NativeCall], "int | float | bool | Value | None"]


class _NativeRaised(BaseException):
    """Carries an exception a Python native raised past the dispatcher (which turns an
    ``Exception`` into NativeFault): a bug in a test's native must fail the test. On a
    spawned thread, RunThreads keeps it (``raised_by_native``) for ``run()`` to raise."""

    raised_by_native = True

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


def _wrap(code: int, func: NativeFunction):
    def handler(core, host) -> None:
        try:
            result = func(NativeCall(code, core, host))
        except (NativeFailure, KeyboardInterrupt):     # a failure as the built-ins fail; Ctrl-C
            raise
        except BaseException as error:                 # pytest.fail, SystemExit, any bug: run() raises it
            raise _NativeRaised(error) from None
        if result is not None:
            try:
                value = Value.of(result)
            except UsageError as error:
                raise _NativeRaised(UsageError(f"the native of ncall 0x{code:x} returned a value r0 "
                                               f"cannot hold: {error} (None leaves r0 alone)")) from None
            core.set_reg(0, value.bits, int(value.tag))

    return handler


# ====================================================================== results


@dataclass(frozen=True)
class RunResult:
    """What one run did. ``exit_status`` is the command line's: 0 halt, 70 trap."""

    exit_status: int
    stdout: bytes
    stderr: bytes
    trap: Trap | None
    registers: tuple[Value, ...]
    pending: dict[Exc, int]
    backtrace: tuple[Frame, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the program halted."""
        return self.trap is None and self.exit_status == ExitStatus.OK

    def check(self) -> "RunResult":
        """This result if the program halted; else raise its ``Trap`` (like ``CompletedProcess.check_returncode``)."""
        if self.trap is not None:
            raise self.trap
        return self


class RunLimitExceeded(VoxError):
    """The program neither halted nor trapped within ``max_steps`` or ``timeout``.

    ``reason`` is ``"max_steps"``, ``"timeout"`` or ``"max_output"``; ``result`` holds what it
    did so far (its ``exit_status`` is 124, as timeout(1) reports).
    """

    exit_status = ExitStatus.TIMED_OUT

    def __init__(self, message: str, reason: str, result: RunResult) -> None:
        super().__init__(message)
        self.reason = reason
        self.result = result


# ====================================================================== the machine


class Machine:
    """A program with run options and Python natives; ``run()`` runs it in a fresh VM each time.

    ``Machine(program, init_ram="1MB", seed=7, backend="python", allow_run=True, …)``:
    the keyword arguments are the run options of ``voxvm --help`` by their
    VMConfig field names (docs/api.md lists them); sizes may be numbers of
    bytes or texts such as ``"64KB"``. An unknown option or a bad value is a
    ``UsageError`` with the command line's message.
    """

    def __init__(self, program: ProgramSource, **run_options: object) -> None:
        self.program = load(program)
        for name in run_options:
            if name not in _RUN_OPTION_FIELDS:
                raise UsageError(f"unknown run option '{name}' (run options: "
                                 f"{', '.join(sorted(_RUN_OPTION_FIELDS))})")
        self.config: VMConfig = config_from_options(**run_options)
        self._natives: dict[int, tuple[str, Callable]] = {}

    @classmethod
    def from_flags(cls, program: ProgramSource, flags: list[str], **run_options: object) -> "Machine":
        """A Machine whose run options are command-line flags as ``voxvm run`` takes them
        (``["--seed=3", "--allow-run", "--init-ram=1MB"]``; keyword arguments win)."""
        from .config import config_from_args

        machine = cls(program, **run_options)
        try:
            config = config_from_args(list(flags), **{k: v for k, v in run_options.items()})
        except TypeError as error:                 # not a run option: already refused by __init__
            raise UsageError(str(error)) from None
        machine.config = config
        return machine

    def native(self, code: int, name: str | None = None) -> Callable[[NativeFunction], NativeFunction]:
        """Decorator: run ``func(call: NativeCall)`` for ``ncall code``; its return value goes to r0.

        ``code`` must be one no built-in or reserved native uses (0x100 and up
        is always safe; docs/natives/ffi-and-extensions.md). Raising
        ``NativeError`` reports a failure as the built-ins do; any other
        exception propagates out of ``run()``.
        """
        from .host.ffi import BUILTIN_CODES, CONCURRENCY_CODES

        if not isinstance(code, int) or not 0 <= code <= 0xFFFF:
            raise UsageError(f"native code {code!r} is outside 0..0xffff")
        if code in BUILTIN_CODES or code in CONCURRENCY_CODES:
            raise UsageError(f"ncall 0x{code:x} is reserved for a built-in native "
                             f"(docs/natives/README.md §6); use 0x100 or above")

        def register(func: NativeFunction) -> NativeFunction:
            self._natives[code] = (name or getattr(func, "__name__", f"native_0x{code:x}"), _wrap(code, func))
            return func

        return register

    def run(self, stdin: bytes | str | IO[bytes] | None = None, *, max_steps: int | None = None,
            timeout: float | None = None, max_output: int | None = None) -> RunResult:
        """Run the program from its entry point in a fresh VM; return what it did.

        ``stdin``: bytes, text (UTF-8) or a binary file; default empty.
        ``max_steps``: at most this many branch events (every executed jump,
        call and return: docs/semantics.md §20; a program without a loop ends
        anyway). ``timeout``: seconds of wall-clock time. ``max_output``: bytes
        kept of stdout, and of stderr; a program that writes more is stopped (a
        runaway print loop would otherwise fill memory before any timeout).
        Exceeding any of them raises ``RunLimitExceeded`` carrying the partial result. A trap is
        not raised: it is ``result.trap`` (``result.check()`` raises it).
        """
        from .machine import Machine as Driver
        from .threads import STOP_GRACE_SECONDS

        if max_steps is not None and (not isinstance(max_steps, int) or isinstance(max_steps, bool)
                                      or not 1 <= max_steps < 1 << 63):
            raise UsageError(f"max_steps: {max_steps!r} is not a positive integer below 2**63")
        if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                                    or not 0 < timeout <= threading.TIMEOUT_MAX):
            raise UsageError(f"timeout: {timeout!r} is not a positive number of seconds "
                             f"(at most {threading.TIMEOUT_MAX:g})")
        if max_output is not None and (not isinstance(max_output, int) or isinstance(max_output, bool)
                                       or max_output < 1):
            raise UsageError(f"max_output: {max_output!r} is not a positive number of bytes")
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8")
        if stdin is None or isinstance(stdin, (bytes, bytearray, memoryview)):
            stdin_stream = io.BytesIO(stdin or b"")
        elif callable(getattr(stdin, "read", None)):
            stdin_stream = stdin if _reads_lines_of_bytes(stdin) else _read_whole(stdin)
        else:           # (bytes(5) would be five NUL bytes, not an error)
            raise UsageError(f"stdin: expected bytes, text or a binary file, not {type(stdin).__name__}")
        out, err = (_Capture(max_output), _Capture(max_output)) if max_output else (io.BytesIO(), io.BytesIO())
        driver = Driver(self.program, self.config, stdin_stream, out, err)
        group = driver.group
        if max_output:
            out.full = err.full = lambda: group.stop_for_limit("max_output")
        # Threads the program spawns run to their end, as with `voxvm run`; each has the same
        # max_steps, and the timeout stops them all (docs/api.md "Threads").
        group.budget = -1 if max_steps is None else max_steps
        timer = None
        try:
            self._install_natives(driver)
            if timeout is not None:
                timer = threading.Timer(timeout, group.stop_for_limit, ("timeout",))
                timer.daemon = True
                timer.start()
            trap, finished = self._run_thread_0(driver)
            if group.native_error is not None:
                status = ExitStatus.SOFTWARE    # raised below, once every thread has stopped
            elif finished:      # the command line's ending: diagnostics, trap line, dump (machine.py)
                status = driver.conclude(trap)
            else:
                group.stop_for_limit("max_steps", driver.thread_id)   # unless a limit came first
                status = ExitStatus.TIMED_OUT
                driver.io.flush()
                driver.diagnostics.finish(driver.core.diagnostic_totals())
            group.finish(driver.thread_id, status)
            group.wait_all()
        except BaseException:
            group.finish(driver.thread_id, ExitStatus.INTERRUPTED)
            group.request_stop()            # never leave threads running behind an exception
            if group.wait_all(STOP_GRACE_SECONDS):
                group.close()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        group.close()
        if group.native_error is not None:
            raise group.native_error.error from None
        backtrace = _backtrace(driver, trap) if trap is not None else ()
        if trap is not None and getattr(trap, "backtrace", None) is None:
            trap.backtrace = backtrace          # type: ignore[attr-defined]
        reason = group.limit_reason
        status = ExitStatus.TIMED_OUT if reason is not None else group.status()
        result = self._result(driver, status, out, err, trap, backtrace)
        if reason is not None:
            raise RunLimitExceeded(self._limit_message(group, driver, finished, timeout, max_steps,
                                                       max_output), reason, result)
        return result

    def _limit_message(self, group, driver, finished: bool, timeout, max_steps, max_output) -> str:
        if group.limit_reason == "max_output":
            return f"{self.program.path}: the program wrote more than {max_output} bytes (max_output)"
        if group.limit_reason == "max_steps" and group.limit_thread != driver.thread_id:
            return (f"{self.program.path}: thread {group.limit_thread}, which the program started, "
                    f"did not halt within {max_steps} branch events")
        limit = f"{timeout} s" if group.limit_reason == "timeout" else f"{max_steps} branch events"
        where = f"(at 0x{driver.core.ip:x})" if not finished else "(a thread it started was still running)"
        return f"{self.program.path}: the program did not halt within {limit} {where}"

    @staticmethod
    def _run_thread_0(driver) -> tuple[Trap | None, bool]:
        """Run the program's own thread: (its trap or None, whether it halted or trapped)."""
        group = driver.group
        try:
            return None, driver.run(group.budget)
        except Trap as raised:
            return raised, True
        except _NativeRaised as wrapped:
            group.stop_for_error(wrapped)
            return None, False
        except KeyboardInterrupt:
            if group.limit_reason is None and group.native_error is None:
                raise                       # Ctrl-C
            return None, False              # a join or read the run's stop woke up

    def _install_natives(self, driver) -> None:
        if not self._natives:
            return
        taken = set(driver.io.extra_natives) & set(self._natives)     # --native-configs codes
        if taken:
            raise UsageError(f"ncall 0x{min(taken):x} is mapped by --native-configs and by a Python native")
        driver.io.extra_natives.update(self._natives)
        driver.group.python_natives = self._natives       # the threads it spawns call them too

    @staticmethod
    def _result(driver, status: int, out: io.BytesIO, err: io.BytesIO, trap: Trap | None,
                backtrace: tuple[Frame, ...]) -> RunResult:
        core = driver.core
        registers = tuple(Value(bits, _tag(tag)) for bits, tag in (core.get_reg(i) for i in range(NUM_REGISTERS)))
        pending = {Exc(number): count for number, count in core.pending().items()}
        return RunResult(status, out.getvalue(), err.getvalue(), trap, registers, pending, backtrace)


class _Capture(io.BytesIO):
    """A captured stream that keeps at most ``limit`` bytes: the first write past it keeps
    what fits and calls ``full`` once (run(): stop the run for "max_output")."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.full = lambda: None
        self.overflowed = False

    def write(self, data) -> int:
        room = self.limit - self.tell()
        if len(data) <= room:
            return super().write(data)
        super().write(bytes(data[:room]))
        if not self.overflowed:
            self.overflowed = True
            self.full()
        return len(data)           # the rest is dropped: the run is stopping


def _reads_lines_of_bytes(stream) -> bool:
    """Can the input natives read ``stream`` line by line as it is (binary ``readline``, or a
    text file's binary ``buffer``; voxvm/host/io.py)?"""
    if isinstance(stream, io.TextIOBase) or "b" not in str(getattr(stream, "mode", "b")):
        return callable(getattr(getattr(stream, "buffer", None), "readline", None))
    return callable(getattr(stream, "readline", None))


def _read_whole(stream) -> io.BytesIO:
    """Any other object with ``read`` (io.StringIO, a class with read() only): all of it, now."""
    data = stream.read()
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UsageError(f"stdin: its read() gave {type(data).__name__}, not bytes or text")
    return io.BytesIO(bytes(data))


def _backtrace(driver, trap: Trap) -> tuple[Frame, ...]:
    """The trap site, then each active call's site, innermost first (call sites as voxvm/backtrace.py finds them)."""
    from .backtrace import call_site

    program, core = driver.program, driver.core
    frames = [Frame(trap.ip, trap.function, trap.line, trap.source)]
    returns = core.snapshot(1).call_stack
    for ret in reversed(returns):
        address = call_site(ret, core.read_memory)
        line = source = None
        if program.symbols is not None and address < len(program.image):
            line, source = program.symbols.line_at(address), program.symbols.source_path
        function = program.function_at(address) if address < len(program.image) else None
        frames.append(Frame(address, function, line, source))
    return tuple(frames)


