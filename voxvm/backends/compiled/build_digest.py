"""The digest of the compiled core's sources, so that a stale build is named as such.

Owns ``source_digest``: SHA-256 over ``_core.pyx``, ``_core.pxd`` and every header
under ``csrc/`` (relative path and bytes, in path order). setup.py compiles it
into the core as ``VV_BUILD_DIGEST`` (loading this file by path: it imports
nothing of voxvm); tests/compiled/test_build_is_current.py compares it with
the sources beside the tests, so that editing the C (or regenerating
vv_tables.h) without rebuilding fails with "rebuild", not with a puzzling
trap in some semantics test (docs/adding-an-opcode.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def source_digest(compiled_dir: str | Path) -> str:
    """The hex SHA-256 of the core's sources under ``compiled_dir``."""
    root = Path(compiled_dir)
    files = [root / "_core.pyx", root / "_core.pxd", *sorted((root / "csrc").rglob("*.h"))]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()
