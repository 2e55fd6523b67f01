"""The host side of the VM, in Python: streams, the native registry and the built-in natives.

Importing this package registers every built-in native (basic, proc, files,
net) with voxvm/host/registry.py; ``dispatch`` then serves Status.NCALL exits
of either backend. Natives that need to run inside the compiled loop (the C
native table) are filled in by the compiled backend, not here.
"""

from . import basic, files, net, proc  # noqa: F401  (registers the handlers)
from .io import STDERR, STDOUT, HostIO, OutputError, binary_stream
from .registry import NATIVES, Native, NativeFailure, dispatch, native

__all__ = ["HostIO", "OutputError", "binary_stream", "STDOUT", "STDERR",
           "NATIVES", "Native", "NativeFailure", "dispatch", "native"]
