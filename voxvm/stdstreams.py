"""Standard streams the caller closed (``>&-``, ``2>&-``, ``<&-``): never a traceback.

Owns ``run_console``, the frame of the ``voxvm`` and ``voxasm`` console
scripts (streams guarded first; a stream that cannot be written is exit 74,
Ctrl-C is 130), ``guard_standard_streams`` and ``say``, the one way the
command lines print their own messages on stderr. Python starts with ``sys.stdout`` (or stderr, stdin) set
to None when that descriptor is closed. Here such a stream becomes one whose
writes fail with EBADF (so a program's output that cannot be written is the
documented exit status 74 with one ``voxvm:`` line, docs/semantics.md §5) and
whose reads see end of input; its descriptor number is held on /dev/null so
a file the program opens can never become "stdout" by accident.
"""

from __future__ import annotations

import errno
import io
import os
import sys
TYPE_CHECKING = False     # typing costs start-up time; annotations are strings here
if TYPE_CHECKING:
    from typing import Callable, NoReturn


def _closed() -> OSError:
    return OSError(errno.EBADF, "the stream was closed by the caller")


class ClosedStream(io.RawIOBase):
    """The binary side of a closed standard stream: writing fails, reading is end of input."""

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return 0

    def write(self, data) -> int:
        raise _closed()


class ClosedTextStream(io.TextIOBase):
    """The text side: every write fails at once, so nothing is left to fail again at exit."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = ClosedStream()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        return ""

    def readline(self, size: int | None = -1) -> str:
        return ""

    def write(self, text: str) -> int:
        raise _closed()

    def isatty(self) -> bool:
        return False


def _hold_descriptor(fd: int) -> None:
    """Keep ``fd`` taken (on /dev/null) so that no file opened later gets its number."""
    try:
        os.fstat(fd)
        return                                   # open after all
    except OSError:
        pass
    try:
        held = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    if held != fd:                               # lower descriptors were free: move it there
        os.dup2(held, fd)
        os.close(held)


def guard_standard_streams() -> None:
    """Replace each standard stream Python found closed by a ClosedStream."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is None:
            _hold_descriptor(fd)
            setattr(sys, name, ClosedTextStream())


def say(text: str) -> None:
    """Print one message of the command line itself on stderr; a closed stderr loses it quietly."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        pass
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def run_console(tool: str, body: Callable[[], int | None]) -> NoReturn:
    """Run a console script's ``body`` and exit with its status.

    A standard stream closed by the caller is guarded first; an OSError that
    escapes (typer writing help or usage to a closed or broken stream) is exit
    74 with one line; Ctrl-C is ``<tool>: interrupted`` and 130.
    """
    guard_standard_streams()
    try:
        status = body()
    except OSError as exc:
        say(f"{tool}: error: cannot write: {exc.strerror or exc}")
        sys.exit(74)
    except KeyboardInterrupt:
        say(f"{tool}: interrupted")
        sys.exit(130)
    sys.exit(status or 0)
