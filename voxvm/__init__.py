"""voxvm: a register-based bytecode VM compatible with voxvm v8.03.

Public API (kept small and lazy so that start-up stays fast): ``__version__``,
and the submodules ``isa`` (instruction set), ``formats`` (.vve/.vvr/dump),
``program`` (loaded programs), ``errors``, ``traps``.
"""

from ._version import __version__

__all__ = ["__version__"]
