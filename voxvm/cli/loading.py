"""Any program file from disk into a ``Program``: the one place the VM side meets the assembler.

Owns the choice of format by file name (``.vvs`` source is assembled in
memory, ``.vvr`` is a raw image, anything else is read as ``.vve``) and turns
the file into a Program. Reading and parsing are voxvm.vvefile's (no ``construct``: start-up) and voxasm's;
only the command line imports this module, so the runtime never reaches up
into the assembler.
"""

from __future__ import annotations

import os

from ..vvefile import load_vve, load_vvr, read_bytes
from ..program import Program


def load_path(path: str, kind: str | None = None) -> Program:
    """Load ``path`` as ``kind`` ("vvs", "vve", "vvr"), by default chosen from its suffix."""
    if kind is None:
        suffix = os.path.splitext(path)[1].lower()
        kind = {".vvs": "vvs", ".vvr": "vvr"}.get(suffix, "vve")
    data = read_bytes(path)
    if kind == "vvs":
        from voxasm import assemble_program as assemble  # the only runtime use of the assembler

        return assemble(data, path, pause_gc=True)   # only the command line loads files here
    return load_vvr(data, path) if kind == "vvr" else load_vve(data, path)


def load_paths(paths: list[str], kind: str | None = None) -> list[Program]:
    """Every program of a run, loaded and validated before any of them runs (docs/concurrency.md)."""
    return [load_path(path, kind) for path in paths]
