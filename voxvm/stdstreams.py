"""Standard streams the caller closed (``>&-``, ``2>&-``, ``<&-``): never a traceback.

Owns ``run_console``, the frame of the ``voxvm`` and ``voxasm`` console
scripts (streams guarded first; a stream that cannot be written is exit 74,
Ctrl-C is 130), ``run_app`` (a typer application whose usage errors are one
``<tool>: error: …`` line and exit status 2, not click's usage block),
``exit_without_teardown`` (the plain paths' quick exit), ``guard_standard_streams``
and ``say``, the one way the command lines print their own messages on stderr.
Python starts with ``sys.stdout`` (or stderr, stdin) set to None when that
descriptor is closed. Here such a stream becomes one whose
writes fail with EBADF (so a program's output that cannot be written is the
documented exit status 74 with one ``voxvm:`` line, docs/semantics.md §5) and
whose reads see end of input; its descriptor number is held on /dev/null so
a file the program opens can never become "stdout" by accident.
"""

from __future__ import annotations

import io
import os
import sys

TYPE_CHECKING = False     # typing costs start-up time; annotations are strings here
if TYPE_CHECKING:
    from typing import Callable, NoReturn


def _closed() -> OSError:
    import errno      # only for a closed stream: a plain run does not import it (start-up)

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


def exit_without_teardown(status: int) -> int:
    """End the process now with ``status``, skipping the interpreter's teardown; or, if a
    standard stream cannot be flushed, return ``status`` for the usual exit to report.

    Python's teardown (finalizing every module, freeing every object) costs a small
    run about 9 M instructions, a quarter of all it does (docs/performance.md
    "Start-up"). What the teardown would do that anyone can observe is done here
    first: the ``atexit`` functions run, among them every ``weakref.finalize`` still
    alive (voxvm/host/handles.py closes the files and connections a program left
    open that way), and the standard streams are flushed. Only the plain run and
    assembly paths (voxvm/cli/__init__.py) use it, once everything they started has
    finished: the run has closed its trace file, written its dumps and profile, and
    unmapped its shared segments. (No full collection first: it would cost 3.6 M
    instructions to free memory the exit gives back anyway.)
    """
    import atexit   # built in: no import cost

    atexit._run_exitfuncs()          # noqa: SLF001 (what Py_FinalizeEx calls first)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        return status                # the usual exit reports it, as before
    os._exit(status)


def run_console(tool: str, body: Callable[[], int | None], entry: bool = False) -> NoReturn:
    """Run a console script's ``body`` and exit with its status.

    A standard stream closed by the caller is guarded first; an OSError that
    escapes (typer writing help or usage to a closed or broken stream) is exit
    74 with one line; Ctrl-C is ``<tool>: interrupted`` and 130. As the process's
    ``entry``, a run that left threads behind (Ctrl-C abandons one blocked reading
    stdin, docs/resource-limits.md) ends without the interpreter's teardown, which
    would wait for the stdin lock that thread holds and then abort the process.
    """
    guard_standard_streams()
    try:
        status = body() or 0
    except OSError as exc:
        say(f"{tool}: error: cannot write: {exc.strerror or exc}")
        status = 74
    except KeyboardInterrupt:
        say(f"{tool}: interrupted")
        status = 130
    if entry and _threads_left_behind():
        exit_without_teardown(status)
    sys.exit(status)


def _threads_left_behind() -> bool:
    """Is a daemon thread still running (threading is imported only by runs that start one)?"""
    threading = sys.modules.get("threading")
    return threading is not None and any(t.daemon and t.is_alive() for t in threading.enumerate())


def run_app(tool: str, app, args: list[str] | None) -> int:
    """Run a typer/click application; its usage errors become one ``<tool>: error: …`` line, status 2.

    click's own report is three or four lines (usage, a hint, a blank line,
    the error); every other message of the toolchain is one line
    (docs/semantics.md §5), so the error is reworded here, with where to get
    help, e.g. ``voxvm: error: no such option: --bogus (see 'voxvm --help')``.
    """
    try:
        result = app(args=args, prog_name=tool, standalone_mode=False)
    except Exception as error:      # click's exception classes (typer >= 0.20 vendors its own click)
        kind = type(error).__name__
        if kind == "Abort":
            raise KeyboardInterrupt from None
        if kind == "Exit" and hasattr(error, "exit_code"):
            return int(error.exit_code)
        if not (hasattr(error, "format_message") and hasattr(error, "exit_code")):
            raise
        message = error.format_message().rstrip(".")
        import re                     # only for a usage error (start-up)

        message = re.sub(r" \(Possible options: ([^)]*)\)$", r" (did you mean \1?)", message)
        if message[:1].isupper() and message[1:2].islower():
            message = message[0].lower() + message[1:]
        ctx = getattr(error, "ctx", None)
        where = ctx.command_path if ctx is not None else tool
        say(f"{tool}: error: {message} (see '{where} --help')")
        return int(error.exit_code)
    return result if isinstance(result, int) else 0
