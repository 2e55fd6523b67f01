"""Reading program files from disk into a ``Program``.

Owns the choice of format by file name (``.vvs`` source is assembled in
memory, ``.vvr`` is a raw image, anything else is read as ``.vve``) and turns
OS errors into ``VoxIOError`` (exit status 74). Parsing itself is
voxvm.formats' and voxasm's.
"""

from __future__ import annotations

import os

from .errors import VoxIOError
from .program import Program


def read_bytes(path: str) -> bytes:
    """The whole file, or a one-line VoxIOError naming it."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise VoxIOError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise VoxIOError(f"{path}: cannot read: {exc.strerror or exc}") from None


def load_path(path: str, kind: str | None = None) -> Program:
    """Load ``path`` as ``kind`` ("vvs", "vve", "vvr"), by default chosen from its suffix."""
    if kind is None:
        suffix = os.path.splitext(path)[1].lower()
        kind = {".vvs": "vvs", ".vvr": "vvr"}.get(suffix, "vve")
    data = read_bytes(path)
    if kind == "vvs":
        from voxasm import assemble  # the only runtime use of the assembler

        return assemble(data, path)
    from .formats import load_vve, load_vvr

    return load_vvr(data, path) if kind == "vvr" else load_vve(data, path)
