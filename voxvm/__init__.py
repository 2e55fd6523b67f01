"""voxvm: a register-based bytecode VM compatible with voxvm v8.03.

Public API (docs/api.md): ``load(bytes | path) -> Program``,
``Machine(program, **run_options)`` with ``.run(stdin=, max_steps=, timeout=)``
returning a ``RunResult``, ``Value``, ``NativeCall``, ``NativeError``, and the
error types ``VoxError``, ``UsageError``, ``FormatError``, ``AssemblyError``,
``Trap``, ``RunLimitExceeded`` (voxvm/embed.py). They are imported on first
use, so that ``import voxvm`` (and the command line's start-up) stays fast.
Submodules: ``isa`` (instruction set), ``formats`` (.vve/.vvr/dump),
``program``, ``errors``, ``traps``.

PYTEST_DONT_REWRITE: voxvm ships a pytest plugin (voxvm/pytest_plugin.py), so
pytest would rewrite this package's asserts, and warns that it cannot when
``voxvm test`` has imported it before pytest starts; there is nothing to rewrite.
"""

from __future__ import annotations

# The package version, read by setuptools (pyproject.toml) without importing the package.
# Here, not in a module of its own: every module a run imports costs it about 0.3 M
# instructions (docs/performance.md "Start-up").
__version__ = "0.1.0"

TYPE_CHECKING = False     # typing costs start-up time (docs/performance.md "Start-up")

__all__ = ["__version__", "load", "Machine", "RunResult", "Value", "Frame", "NativeCall",
           "NativeError", "RunLimitExceeded", "Program", "Trap", "VoxError", "UsageError",
           "FormatError", "AssemblyError", "Exc", "Tag"]

if TYPE_CHECKING:
    from .embed import (AssemblyError, Exc, FormatError, Frame, Machine, NativeCall, NativeError,
                        Program, RunLimitExceeded, RunResult, Tag, Trap, UsageError, Value, VoxError,
                        load)


def __getattr__(name: str):
    """The API names of voxvm/embed.py, imported when first asked for."""
    if name in __all__:
        from . import embed

        return getattr(embed, name)
    raise AttributeError(f"module 'voxvm' has no attribute {name!r}")
