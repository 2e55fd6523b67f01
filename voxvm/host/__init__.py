"""The host side of the VM, in Python: streams, the native registry and the built-in natives.

``dispatch`` (voxvm/host/registry.py) serves Status.NCALL exits of either
backend; it imports the module of a built-in native family (basic, proc,
files, net) the first time the program calls one of its natives, so a run
imports only what it uses (``load_all_natives`` imports them all). Natives
that need to run inside the compiled loop (the C native table) are filled in
by the compiled backend, not here.
"""

from .io import STDERR, STDOUT, HostIO, OutputError, binary_stream

__all__ = ["HostIO", "OutputError", "binary_stream", "STDOUT", "STDERR", "FAMILY_OF",
           "NATIVES", "Native", "NativeFailure", "dispatch", "load_all_natives", "native"]

_FROM_REGISTRY = frozenset(("FAMILY_OF", "NATIVES", "Native", "NativeFailure", "dispatch",
                            "load_all_natives", "native"))


def __getattr__(name: str):
    """The registry's names, imported on first use: a run whose natives all run in C
    (the compiled core's table) never needs the registry (start-up)."""
    if name in _FROM_REGISTRY:
        from . import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
