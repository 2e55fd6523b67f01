"""voxasm: the assembler for voxvm's ``.vvs`` assembly language.

Public API: ``assemble(source, path) -> voxvm.program.Program`` (pure, no
I/O) and ``AssemblyError`` (every error of a file, exit status 65). File
handling lives in ``voxasm.driver``, the command line in ``voxasm.cli``;
the language is described in ``docs/vvs-language.md``.
"""

from .assembler import assemble
from .diagnostics import AssemblyError, Diagnostic

__all__ = ["assemble", "AssemblyError", "Diagnostic"]
