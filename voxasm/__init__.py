"""voxasm: the assembler for voxvm's ``.vvs`` assembly language.

Public API (docs/api.md):

* ``assemble(source, filename="<input>", *, format="vve") -> bytes``: the
  bytes of a ``.vve`` executable (or a raw ``.vvr`` image), what ``voxasm``
  writes to a file;
* ``assemble_program(source, path) -> voxvm.program.Program``: the program in
  memory, with its symbols (function names, source lines);
* ``AssemblyError`` (every error of a file; ``str()`` is the first
  ``file:LINE:COL: error: …`` line, ``render()`` all of them as the command
  line prints them, ``diagnostics`` the list) and ``Diagnostic``.

Both functions are pure (no I/O). File handling lives in ``voxasm.driver``, the
command line in ``voxasm.cli``; the language is described in
``docs/vvs-language.md``.
"""

from __future__ import annotations

from .assembler import assemble as assemble_program
from .diagnostics import AssemblyError, Diagnostic

__all__ = ["assemble", "assemble_program", "AssemblyError", "Diagnostic"]


def assemble(source: bytes | str, filename: str = "<input>", *, format: str = "vve",
             warnings: list[Diagnostic] | None = None) -> bytes:
    """Assemble ``.vvs`` source into the bytes of a ``.vve`` (``format="vvr"``: a raw image).

    ``filename`` names the source in diagnostics. Raises ``AssemblyError``
    with every error of the source; warnings are appended to ``warnings``
    when a list is given.

    >>> assemble("section text\\n.start\\n    halt\\n")[:4]
    b'VVE\\x00'
    """
    if format not in ("vve", "vvr"):
        from voxvm.errors import UsageError

        raise UsageError(f"format: '{format}' is not one of vve, vvr")
    program = assemble_program(source, filename, warnings=warnings)
    if format == "vvr":
        return program.image
    from voxvm.vvefile import build_vve   # (struct: no construct import; same bytes, tests/formats)

    return build_vve(program)
