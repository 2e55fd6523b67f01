"""Assembling files: read a ``.vvs``, assemble it, write the output atomically.

Owns the output name (semantics.md §3 item 23: ``x.vvs`` -> ``x.vve``, any
other name gets ``.vve`` appended, so the default output never equals the
input), the output format (a name ending in ``.vvr`` gets the raw image,
anything else a ``.vve``; upstream picked by substring, §11 item 47) and the
write itself: a temporary file in the target directory, then ``os.replace``,
so that on any error no output file is created or modified (with ``--debug-map``,
neither the output nor the map). A device or pipe given as the output
(``-o /dev/null``) is written into, never replaced. OS failures
become ``VoxIOError`` (exit 74); assembly errors stay ``AssemblyError`` (65).
"""

from __future__ import annotations

import os
import stat
TYPE_CHECKING = False     # typing costs start-up time (voxvm run FILE.vvs); annotations are strings
if TYPE_CHECKING:
    from typing import Callable

from voxvm.errors import UsageError, VoxIOError
from voxvm.stdstreams import say
from voxvm.vvefile import build_vve, read_bytes
from voxvm.program import Program

from .assembler import assemble
from .diagnostics import DEFAULT_RENDER_LIMIT, AssemblyError, Diagnostic, plural
from .source import MAX_SOURCE_BYTES

FORMATS = ("vve", "vvr")


def default_output_path(src_path: str) -> str:
    """``x.vvs`` -> ``x.vve`` (any case of ``.vvs``); anything else gets ``.vve`` appended.

    >>> default_output_path("dir/prog.vvs"), default_output_path("prog.asm")
    ('dir/prog.vve', 'prog.asm.vve')
    """
    root, ext = os.path.splitext(src_path)
    if ext.lower() == ".vvs" and os.path.basename(root):
        return root + ".vve"
    return src_path + ".vve"


def output_format(out_path: str) -> str:
    """``vvr`` for a name ending in ``.vvr`` (any case), else ``vve``."""
    return "vvr" if out_path.lower().endswith(".vvr") else "vve"


class WarningPrinter:
    """Warnings on stderr, at most ``limit`` of them (0: all), as errors are
    (``--max-errors``): a generated file with 100k suspicious lines must not print 13 MB.
    ``close()`` says how many more there were."""

    def __init__(self, limit: int = DEFAULT_RENDER_LIMIT) -> None:
        self.limit, self.count = limit, 0

    def __call__(self, diagnostic: Diagnostic) -> None:
        self.count += 1
        if not self.limit or self.count <= self.limit:
            say(diagnostic.render())

    def close(self) -> None:
        hidden = self.count - self.limit
        if self.limit and hidden > 0:
            say(f"voxasm: {plural(hidden, 'more warning')} not shown")


def _print_warning(diagnostic: Diagnostic) -> None:
    """The default ``warn``: a fresh WarningPrinter for each assembly (driver.py's own)."""
    raise AssertionError("a marker, never called")    # pragma: no cover


def _sink(warn):
    """The callable that takes the warnings of one assembly, and what closes it."""
    if warn is _print_warning:
        warn = WarningPrinter()
    if isinstance(warn, WarningPrinter):
        return warn, warn.close
    return warn, (lambda: None)


def assemble_file(src_path: str, out_path: str | None = None, *, fmt: str | None = None,
                  warn: Callable[[Diagnostic], None] | None = _print_warning,
                  debug_map: str | None = None) -> str:
    """Assemble ``src_path`` into ``out_path`` (default: ``default_output_path``); return the output path.

    ``fmt`` ("vve" or "vvr") overrides the format chosen from the output
    name. Warnings go to ``warn`` (default: printed on stderr; None drops
    them). ``debug_map`` also writes a debug map (docs/debug-maps.md): "" to
    the default name ``OUT.map``, anything else to that path. Raises
    ``AssemblyError``, ``VoxIOError`` or ``UsageError``; in every error case
    the output file is left exactly as it was.
    """
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"unknown output format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if out_path is None:
        out_path = default_output_path(src_path)
    if out_path == "":
        raise UsageError("the output file name is empty")
    if _same_file(src_path, out_path):
        raise UsageError(f"refusing to write the output over the source file {src_path}")
    map_path = None
    if debug_map is not None:
        # (imported only here: a plain --vas never pays for the map's JSON and dataclass)
        from voxvm.debugmap import build_map, default_map_path

        map_path = debug_map or default_map_path(out_path)
        if _same_file(src_path, map_path) or _same_file(out_path, map_path):
            raise UsageError(f"refusing to write the debug map over {map_path}")
    warn, close = _sink(warn)
    try:
        program, source = _assemble(src_path, warn)
        raw = (fmt or output_format(out_path)) == "vvr"
        if raw and warn is not None:
            for diagnostic in _lost_in_a_raw_image(program, src_path):
                warn(diagnostic)
    finally:
        close()
    data = program.image if raw else build_vve(program)
    outputs = [(out_path, data)]
    if map_path is not None:
        outputs.append((map_path, build_map(program, data, source)))
    write_all(outputs)          # the map and the output together, or neither
    return out_path


def _lost_in_a_raw_image(program: Program, src_path: str) -> list[Diagnostic]:
    """What a .vvr cannot keep (docs/vve-format.md: it runs from 0, with data base 0 and no
    function table), as warnings at the lines that need it."""
    line_at = program.symbols.line_at if program.symbols is not None else (lambda address: None)
    lost = []
    if program.entry != 0:
        lost.append((program.entry, "'.start' is lost in a .vvr, which runs from address 0"))
    if program.functions:
        lost.append((program.functions[0], f"a .vvr has no function table: call and fnstind of the "
                                            f"{len(program.functions)} function(s) trap"))
    if program.symbols is not None and program.symbols.data and program.data_base:
        lost.append((program.data_base, "a .vvr has data base 0: data items' offsets no longer point at them"))
    return [Diagnostic(src_path, line_at(address) or 1, 1, message, hint="write a .vve to keep it",
                       severity="warning") for address, message in lost]


def assemble_path(src_path: str, *,
                  warn: Callable[[Diagnostic], None] | None = _print_warning) -> Program:
    """Read and assemble ``src_path`` without writing anything (``voxasm --check``)."""
    warn, close = _sink(warn)
    try:
        return _assemble(src_path, warn)[0]
    finally:
        close()


def _assemble(src_path: str, warn: Callable[[Diagnostic], None] | None) -> tuple[Program, bytes]:
    """The program and the source bytes it came from."""
    _check_size(src_path)
    source = read_bytes(src_path)
    warnings: list[Diagnostic] = []
    try:
        return assemble(source, src_path, warnings=warnings, pause_gc=True), source   # a command-line process
    finally:
        if warn is not None:
            for diagnostic in warnings:
                warn(diagnostic)


def _check_size(src_path: str) -> None:
    """Refuse an enormous source before reading it into memory."""
    try:
        size = os.path.getsize(src_path)
    except OSError:
        return  # read_bytes reports the real problem
    if size > MAX_SOURCE_BYTES:
        raise AssemblyError([Diagnostic(
            src_path, 1, 1, f"source is {size} bytes; voxasm reads at most {MAX_SOURCE_BYTES} bytes")],
            src_path)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


# How a temporary output file is opened: created, never an existing file or a symlink.
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) \
    | getattr(os, "O_BINARY", 0)


def _temporary_file(directory: str, name: str) -> tuple[int, str]:
    """A new file ``.NAME.RANDOM.tmp`` in ``directory`` (mode 0600, as tempfile.mkstemp makes it):
    its descriptor and path. (tempfile itself would import random, shutil and the compression
    modules: a fifth of ``voxvm --vas``'s start-up; docs/performance.md "The assembler".)"""
    for _ in range(100):
        path = os.path.join(directory, f".{name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(path, _CREATE_NEW, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused temporary name in {directory}")


def write_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: never a half-written file."""
    write_all([(path, data)])


def write_all(files: list[tuple[str, bytes]]) -> None:
    """Write every ``(path, data)``, all or none: each is staged in a temporary file beside
    its target first, and only when every one is staged are they renamed over their
    targets. A target that is not a regular file (``/dev/null``, a pipe, a terminal) is
    written into instead, at the end: renaming over it would replace the device itself."""
    staged: list[_Staged] = []
    try:
        for path, data in files:
            staged.append(_Staged(path, data))
        for item in staged:
            item.commit()
    finally:
        for item in staged:
            item.discard()


class _Staged:
    """One output file on its way: ``commit()`` puts it in place, ``discard()`` removes what
    is left of it (nothing once committed)."""

    def __init__(self, path: str, data: bytes) -> None:
        self.path, self.data, self.tmp = path, data, None
        if os.path.isdir(path):
            raise VoxIOError(f"{path}: is a directory, cannot write a file there")
        try:
            self.special = not stat.S_ISREG(os.stat(path).st_mode)     # follows symlinks
        except OSError:
            self.special = False                                        # absent (or unreadable: found below)
        if self.special:
            return
        # Through a symlink, its target is replaced and the link kept (as cp does).
        self.target = os.path.realpath(path) if os.path.islink(path) else path
        try:
            fd, self.tmp = _temporary_file(os.path.dirname(self.target) or ".", os.path.basename(self.target))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(self.tmp, _mode_for(self.target))
        except OSError as exc:
            self.discard()
            raise VoxIOError(f"{path}: cannot write: {exc.strerror or exc}") from None

    def commit(self) -> None:
        try:
            if self.special:
                with open(self.path, "wb") as f:
                    f.write(self.data)
            else:
                os.replace(self.tmp, self.target)
                self.tmp = None
        except OSError as exc:
            raise VoxIOError(f"{self.path}: cannot write: {exc.strerror or exc}") from None

    def discard(self) -> None:
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = None


def _mode_for(path: str) -> int:
    """Keep an existing file's permissions; a new file gets 0666 minus the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
