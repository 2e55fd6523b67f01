"""The program's standard streams: ``HostIO``, one per run.

Owns the buffered binary stdout, the written-through stderr, stdin, the
``voxvm:`` diagnostic lines, and per-program native state (``HostIO.state``, e.g.
the open-file table, and the random generator). When several programs run at
once (docs/concurrency.md), each has its own HostIO over the same streams and
one shared lock: every write is whole lines (the buffer only ever holds whole
``print`` lines), taken under the lock, so lines of concurrent programs never
interleave; ``group`` and ``thread_id`` connect the thread natives to the run. Natives write program output
through ``emit``; the compiled core hands over what its C natives printed
through ``take_stdout``; the machine flushes at exit and trap.
"""

from __future__ import annotations

import codecs
import io as _io
import sys
import _thread
import time

TYPE_CHECKING = False     # typing costs start-up time; annotations are strings here
if TYPE_CHECKING:
    import random
    from typing import BinaryIO, Callable

STDOUT, STDERR = 1, 2
_FLUSH_AT = 1 << 16       # buffered stdout is written out at this size


class OutputError(Exception):
    """The program's stdout or stderr cannot be written (e.g. a closed pipe)."""


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
    written through. An interactive stdout is flushed after every print, and
    with ``write_through`` (a run with foreign functions, which may end the
    process) every output the host is given is written at once.
    """

    def __init__(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
                 stderr: BinaryIO | None = None, *, seed: int | None = None,
                 lock=None, input_lock=None) -> None:
        self.stdin = binary_stream(stdin, sys.stdin)
        self.stdout = binary_stream(stdout, sys.stdout)
        self.stderr = binary_stream(stderr, sys.stderr)
        self._buffer = bytearray()
        self.write_through = False
        self._stdout_failure: str | None = None      # why stdout could not be written (flush)
        try:
            self._interactive = bool(self.stdout.isatty())
        except (AttributeError, OSError, ValueError):
            self._interactive = False
        self._seed = seed
        self._rng: random.Random | None = None
        self.state: dict[str, object] = {}
        # What host access the natives may use (voxvm/host/capabilities.py); the machine
        # sets it from the run flags. None: nothing granted beyond the defaults.
        self.capabilities = None
        self.extra_natives: dict[int, tuple[str, Callable]] = {}
        # Shared by every program of a run (voxvm/threads.py): output and input locks.
        self._lock = lock if lock is not None else _thread.RLock()
        self._input_lock = input_lock if input_lock is not None else _thread.allocate_lock()
        # The run this program belongs to (spawn, join, segments) and its thread id; the
        # label goes after "voxvm: " in the VM's own lines when several programs run.
        self.group = None
        self.thread_id = 0
        self.label = ""
        # Set when the run is stopping (Ctrl-C): a sleeping native wakes up at once.
        self.stop_event = None            # voxvm/threads.py StopFlag

    @property
    def rng(self) -> random.Random:
        """The run's random generator (randf, randint), seeded by --seed; made on first use."""
        if self._rng is None:
            import random                 # only programs that draw numbers pay for it (start-up)

            self._rng = random.Random(self._seed)
        return self._rng

    # -------------------------------------------------------------- output

    def emit(self, stream: int, data: bytes) -> None:
        """Program output on stream 1 (stdout) or 2 (stderr)."""
        if stream == STDOUT:
            self._buffer += data
            if (self._interactive or self.write_through or len(self._buffer) >= _FLUSH_AT
                    or self._stdout_failure is not None):
                self.flush()
        else:
            self.flush()
            self._write_err(data)

    def take_stdout(self, data: bytes) -> int:
        """stdout that natives running inside the compiled loop buffered (whole prints, in order).

        Buffered exactly as ``emit(STDOUT, ...)`` would have buffered the same
        prints one by one. Returns the room: how many bytes the caller may
        hold before it must hand them over, so that the flush at 64 KiB (and
        after every print on an interactive stdout) happens where it would
        without the caller's buffer.
        """
        if data:
            self._buffer += data
            if (self._interactive or self.write_through or len(self._buffer) >= _FLUSH_AT
                    or self._stdout_failure is not None):
                self.flush()
        return 1 if self._interactive else _FLUSH_AT - len(self._buffer)

    def flush(self) -> None:
        """Write buffered stdout out; raise OutputError if that is impossible.

        A failure sticks: every later flush raises it again, so that one swallowed
        by ``report`` (which must still get its line out) still ends the run."""
        if self._stdout_failure is not None:
            self._buffer.clear()
            raise OutputError(self._stdout_failure)
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            try:
                with self._lock:
                    self.stdout.write(data)
                    self.stdout.flush()
            except (OSError, ValueError) as exc:
                self._stdout_failure = f"cannot write to stdout: {reason(exc)}"
                raise OutputError(self._stdout_failure) from None

    def _write_err(self, data: bytes) -> None:
        try:
            with self._lock:
                self.stderr.write(data)
                self.stderr.flush()
        except (OSError, ValueError) as exc:
            raise OutputError(f"cannot write to stderr: {reason(exc)}") from None

    def diag(self, message: str) -> None:
        """A line from the VM itself on stderr: always ``voxvm: ...`` (conformance README)."""
        self.report(f"voxvm: {message}")

    def report(self, line: str) -> None:
        """Write one complete line (already starting with ``voxvm:``) on stderr.

        With a label (several programs run), it names the thread: ``voxvm: thread 1: ...``.
        """
        if self.label and line.startswith("voxvm: "):
            line = f"voxvm: {self.label}{line[7:]}"
        with self._lock:
            try:
                self.flush()
            except OutputError:
                pass            # remembered: the program's next print, or the run's end, raises it
            try:
                self.stderr.write(f"{line}\n".encode("utf-8", "replace"))
                self.stderr.flush()
            except (OSError, ValueError):
                pass  # nowhere left to report it

    def pause(self, seconds: float) -> None:
        """Sleep (the ``sleep`` native); a run that is stopping wakes every sleeper at once."""
        if self.stop_event is None:
            time.sleep(seconds)
        else:
            self.stop_event.wait(seconds)

    # -------------------------------------------------------------- input

    def read_line(self, limit: int) -> bytes | None:
        """Up to ``limit`` bytes of UTF-16BE text from stdin's current line; None at end of input.

        Reads only what fits (docs/resource-limits.md), so a 100 MB line or
        ``< /dev/zero`` costs ``limit`` bytes of memory, not the line, and
        never past the newline. Only whole characters are taken: an odd limit
        counts as one byte less, and a character that does not fit in the room
        left (a surrogate pair needs 4 bytes) stays in stdin with the rest of
        the line for the next read, like C's ``fgets``. A limit below 2 reads
        nothing. Invalid UTF-8 becomes U+FFFD.
        """
        self.flush()
        if self.stdin is None:
            return None
        with self._input_lock:      # programs of one run share stdin: one line each at a time
            return read_utf16_line(self.stdin, limit - limit % 2)


def read_utf16_line(stream, room: int) -> bytes | None:
    """At most ``room`` (even) bytes of UTF-16BE from one UTF-8 line of ``stream``; None at EOF."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text: list[str] = []
    produced = taken = 0
    while produced < room:
        left = room - produced
        if left >= 16 and not decoder.getstate()[0]:
            # Bulk: a UTF-8 byte gives at most 2 UTF-16 bytes, and finishing a character
            # cut at the chunk's end adds at most 6 more: (left - 8) // 2 bytes always fit.
            chunk = stream.readline((left - 8) // 2)
        else:
            # The last few bytes: one byte at a time, each looked at before it is taken,
            # so that a character starts only if all of it fits.
            lead = _peek_byte(stream)
            pending = decoder.getstate()[0]
            if lead == _UNKNOWN:
                chunk = stream.readline(1)     # cannot look ahead: take it (cut to the room below)
            elif pending and (lead is None or not 0x80 <= lead <= 0xBF):
                # A cut-off sequence: it becomes U+FFFD now, before the next character.
                piece = decoder.decode(b"", final=True)
                decoder.reset()
                text.append(piece)
                produced += 2 * len(piece)
                continue
            elif lead is None:
                break
            elif not pending and _utf16_size(lead) > left and produced:
                break                      # does not fit: it stays in stdin for the next read
            else:
                # It fits; or nothing was read yet and it never could (a surrogate pair in a
                # 2-byte room): then it is taken and cut, so that every read makes progress.
                chunk = stream.readline(1)
        if not chunk:
            break
        taken += len(chunk)
        piece = decoder.decode(chunk)
        text.append(piece)
        produced += 2 * len(piece) + 2 * sum(1 for ch in piece if ord(ch) > 0xFFFF)
        if chunk.endswith(b"\n"):
            break
    if taken == 0:
        return None if room and _peek_byte(stream) in (None, _UNKNOWN) else b""
    text.append(decoder.decode(b"", final=True))
    return "".join(text).encode("utf-16-be")[:room]


def _utf16_size(lead: int) -> int:
    """UTF-16 bytes of the character that starts with ``lead``: 4 for a surrogate pair."""
    return 4 if 0xF0 <= lead <= 0xF4 else 2


_UNKNOWN = -1      # _peek_byte: the stream cannot be looked into


def _peek_byte(stream) -> int | None:
    """The next byte of ``stream`` without taking it; None at end of input.

    stdin is a buffered reader (``peek``); test streams are seekable. Any
    other stream cannot be looked into: _UNKNOWN.
    """
    peek = getattr(stream, "peek", None)
    if peek is not None:
        data = peek(1)[:1]
    elif getattr(stream, "seekable", lambda: False)():
        position = stream.tell()
        data = stream.read(1)
        stream.seek(position)
    else:
        return _UNKNOWN
    return data[0] if data else None


def reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def quoted(text: str) -> str:
    """``text`` in quotes for a one-line message, control characters escaped: a NUL or a
    newline in a program's path or a config's text must not break the line."""
    from ..errors import shown_name

    return f"'{shown_name(text)}'"


