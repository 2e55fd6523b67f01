"""Error types shared by the whole toolchain, and the exit status each maps to.

Owns the exception tree (``VoxError`` and its subclasses) and the exit statuses
of semantics.md §5. Every error a user can reach is one of these; the CLI
prints ``render()`` and exits with ``exit_status`` (never a traceback).
"""

from __future__ import annotations

from .numbered import Numbered


def shown_name(name: str) -> str:
    """A file name (or other text from outside) for a one-line message: control characters
    such as a newline or an ESC escaped, so that they cannot break or colour the line."""
    return name if name.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


class ExitStatus(Numbered):
    """Process exit statuses (semantics.md §5, BSD sysexits)."""

    OK = 0
    USAGE = 2
    DATAERR = 65    # malformed input: assembly error, bad .vve/.vvr
    SOFTWARE = 70   # the program trapped
    IOERR = 74      # a file could not be read or written
    TIMED_OUT = 124     # the embedding API's max_steps or timeout ran out (as timeout(1) reports)
    INTERRUPTED = 130   # Ctrl-C (128 + SIGINT, as shells report it; docs/resource-limits.md)


class VoxError(Exception):
    """Base of every error the toolchain reports to a user."""

    exit_status: ExitStatus = ExitStatus.SOFTWARE

    def render(self, tool: str = "voxvm") -> str:
        """The text ``tool`` prints on stderr (without a trailing newline)."""
        return f"{tool}: error: {self}"


class UsageError(VoxError):
    """A bad command line: unknown flag, bad size, missing argument."""

    exit_status = ExitStatus.USAGE

    def render(self, tool: str = "voxvm") -> str:
        """One line with where to get help, as click's own usage errors (semantics.md §5)."""
        text = super().render(tool)
        return text if "(see " in text or "see docs/" in text else f"{text} (see '{tool} --help')"


class InputError(VoxError):
    """Input that is not acceptable (bad source, malformed binary)."""

    exit_status = ExitStatus.DATAERR


class FormatError(InputError):
    """A malformed .vve/.vvr/dump file: names the file, the field and the byte offset."""

    def __init__(self, path: str, field: str, offset: int | None, message: str) -> None:
        where = f" at byte offset {offset} (0x{offset:x})" if offset is not None else ""
        super().__init__(f"{path}: {field}{where}: {message}")
        self.path = path
        self.field = field
        self.offset = offset
        self.message = message


class VoxIOError(VoxError):
    """A file that cannot be read or written."""

    exit_status = ExitStatus.IOERR
