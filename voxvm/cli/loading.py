"""Any program file from disk into a ``Program``: the one place the VM side meets the assembler.

Owns the choice of format by file name (``.vvs`` source is assembled in
memory, ``.vvr`` is a raw image, anything else is read as ``.vve``), turns
the file into a Program, and gives it its debug map (docs/debug-maps.md):
the one named with ``--debug-map``, else ``FILE.map`` when it exists. A map
that cannot be read, is not a map, or was written for other bytes (its hash
does not match) is left out with one ``voxvm: warning:`` line; the run goes
on without it. Reading and parsing are voxvm.vvefile's (no ``construct``: start-up),
voxvm.debugmap's and voxasm's; only the command line imports this module, so the runtime never
reaches up into the assembler.
"""

from __future__ import annotations

import os

from ..vvefile import load_vve, load_vvr, read_bytes
from ..program import Program
from ..stdstreams import say

TYPE_CHECKING = False              # typing itself is not imported on the run path (start-up)
if TYPE_CHECKING:
    from typing import Callable

    from ..debugmap import DebugMap

MAP_SUFFIX = ".map"        # voxvm.debugmap.MAP_SUFFIX (not imported: start-up)


def warn_on_stderr(message: str) -> None:
    say(f"voxvm: warning: {message}")


def load_path(path: str, kind: str | None = None, debug_map: str | None = None,
              warn: Callable[[str], None] = warn_on_stderr) -> Program:
    """Load ``path`` as ``kind`` ("vvs", "vve", "vvr"), by default chosen from its suffix,
    with its debug map (``debug_map``: a map file; default ``path + ".map"`` if present)."""
    if kind is None:
        suffix = os.path.splitext(path)[1].lower()
        kind = {".vvs": "vvs", ".vvr": "vvr"}.get(suffix, "vve")
    data = read_bytes(path)
    if kind == "vvs":
        from voxasm import assemble_program as assemble  # the only runtime use of the assembler

        if debug_map is not None:
            warn(f"--debug-map is not used for {path}: a program assembled from source "
                 f"has its source lines and names already")
        return assemble(data, path, pause_gc=True)   # only the command line loads files here
    program = load_vvr(data, path) if kind == "vvr" else load_vve(data, path)
    found = read_map(path, debug_map, warn)
    if found is None:
        return program
    if not found.describes(data):
        warn(f"{found.path} does not belong to {path} (it was written for other bytes: "
             f"reassemble with -g); ignoring it")
        return program
    return found.apply(program)


def load_paths(paths: list[str], kind: str | None = None, debug_map: str | None = None,
               warn: Callable[[str], None] = warn_on_stderr) -> list[Program]:
    """Every program of a run, loaded and validated before any of them runs (docs/concurrency.md),
    each with its map; ``debug_map`` names the first program's (the one --trace follows)."""
    return [load_path(path, kind, debug_map if n == 0 else None, warn) for n, path in enumerate(paths)]


def read_map(program_path: str | None, debug_map: str | None,
             warn: Callable[[str], None] = warn_on_stderr) -> "DebugMap | None":
    """The map named ``debug_map``, else the one next to ``program_path``; None (with a
    warning unless no map was asked for and none is there) when there is none to use."""
    if debug_map is None and program_path is None:
        return None
    path = debug_map if debug_map is not None else program_path + MAP_SUFFIX
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        if debug_map is not None:
            warn(f"debug map {path}: no such file; ignoring it")
        return None
    except IsADirectoryError:
        warn(f"debug map {path}: is a directory; ignoring it")
        return None
    except OSError as exc:
        warn(f"debug map {path}: cannot read: {exc.strerror or exc}; ignoring it")
        return None
    from ..debugmap import MapError, parse_map   # json and hashlib: only when there is a map

    try:
        return parse_map(raw, path)
    except MapError as exc:
        warn(f"{exc}; ignoring it")
        return None


def source_text_for(program: Program, warn: Callable[[str], None] = warn_on_stderr) -> str | None:
    """The text of the source file the program's symbols refer to (for listings), or None:
    looked for as recorded, then next to the program file; a file whose hash differs from the
    one the map recorded is not used: the next candidate is tried, and when none matches,
    the first changed one is named in a warning."""
    symbols = program.symbols
    if symbols is None or not symbols.source_path:
        return None
    candidates = [symbols.source_path]
    if not os.path.isabs(symbols.source_path):
        beside = os.path.join(os.path.dirname(program.path), os.path.basename(symbols.source_path))
        if os.path.normpath(beside) != os.path.normpath(symbols.source_path):
            candidates.append(beside)
    changed = None
    for candidate in candidates:
        try:
            with open(candidate, "rb") as f:
                data = f.read()
        except OSError:
            continue
        from ..debugmap import sha256

        if symbols.source_sha256 is not None and sha256(data) != symbols.source_sha256:
            changed = changed or candidate      # a same-named file elsewhere: try the next one
            continue
        return data.decode("utf-8", "replace")
    if changed is not None:
        warn(f"{changed} changed since the debug map was written; showing line numbers only")
    return None
