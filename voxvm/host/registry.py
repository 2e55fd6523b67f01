"""The native-call registry: code -> handler, and ``dispatch``.

Owns ``NATIVES`` (filled by ``@native(code, name)`` in the handler modules
voxvm/host/basic.py, proc.py, files.py, net.py, threads.py and shm.py), ``FAMILY_OF`` (which of
those modules holds each built-in code: ``dispatch`` imports a module the
first time one of its codes is called, so a run imports only the natives it
uses; tests/host/test_registry.py checks the table against the
registrations), ``NativeFailure`` and ``dispatch``, which voxvm/machine.py
calls when a Core returns Status.NCALL: it finds the handler, runs it, and
turns anything unexpected into a ``voxvm:`` diagnostic plus the NativeFault
exception (never a traceback).

A handler is ``handler(core, io) -> None``. It reads its arguments with
``core.get_reg`` (r1..r4, docs/semantics.md "Natives"), writes results with
``core.set_reg(0, bits, tag)`` (the tag of the value written), reads and
writes the heap with ``core.heap_read``/``core.heap_write`` (or the helpers
below) and reports failures by raising ``NativeFailure``. Per-run handlers
(FFI functions) go in ``HostIO.extra_natives``; per-run state (open files,
sockets) in ``HostIO.state``.
"""

from __future__ import annotations


from ..records import record
from ..tags import Exc
from ..values import as_i64, as_u64
from .io import HostIO, OutputError

TYPE_CHECKING = False     # typing costs start-up time; annotations are strings here
if TYPE_CHECKING:
    from typing import Callable

    Handler = Callable[[object, HostIO], None]

# The module of voxvm/host/ that registers each built-in native (upstream.md §8.1).
FAMILY_OF: dict[int, str] = {
    **dict.fromkeys(range(0x01, 0x07), "basic"),    # print, input, randf, randint, unixtime, sleep
    0x07: "proc",                                   # runcmd
    0x08: "basic",                                  # put (print without a newline; semantics.md §7.2)
    **dict.fromkeys(range(0x10, 0x17), "files"),    # fopen ... fseekset
    **dict.fromkeys(range(0x20, 0x26), "net"),      # net_open ... net_addr
    **dict.fromkeys(range(0x30, 0x33), "threads"),  # spawn, join, thread_id (docs/concurrency.md)
    **dict.fromkeys(range(0x33, 0x3A), "shm"),      # shm_size ... shm_write
}


class NativeFailure(Exception):
    """Raised by a handler: print ``voxvm: ncall ...: <message>`` and raise ``exception``.

    ``quiet``: the handler has already said what went wrong (a denied call
    says so once per run, voxvm/host/capabilities.py), so no line is printed.
    """

    def __init__(self, message: str, exception: Exc = Exc.NativeFault, *, quiet: bool = False) -> None:
        super().__init__(message)
        self.exception = exception
        self.quiet = quiet


class Native(record("Native", "code name handler")):
    """One registered native: its code, its name in messages, and its handler."""

    __slots__ = ()


NATIVES: dict[int, Native] = {}


def native(code: int, name: str):
    """Register a built-in native handler for ``code``."""

    def register(handler: Handler) -> Handler:
        if code in NATIVES:
            raise ValueError(f"ncall 0x{code:x} registered twice ({NATIVES[code].name}, {name})")
        NATIVES[code] = Native(code, name, handler)
        return handler

    return register


def dispatch(core, code: int, io: HostIO) -> None:
    """Run native ``code`` against ``core``; failures become voxvm exceptions."""
    entry = NATIVES.get(code)
    if entry is None and code in FAMILY_OF:
        # registers the family's natives; the builtin __import__, because importing
        # importlib (and the warnings module it imports) costs a run that prints 0.4 ms
        __import__(f"{__package__}.{FAMILY_OF[code]}")
        entry = NATIVES.get(code)
    if entry is not None:
        name, handler = entry.name, entry.handler
    elif code in io.extra_natives:
        name, handler = io.extra_natives[code]
    else:
        io.diag(f"ncall 0x{code:x}: No such callcode! (not a built-in native, and no "
                f"--native-configs library maps it)")
        core.raise_exception(Exc.NativeFault)
        return
    try:
        handler(core, io)
    except NativeFailure as failure:
        if not failure.quiet:
            io.diag(f"ncall 0x{code:x} ({name}): {failure}")
        core.raise_exception(failure.exception)
    except OutputError:
        raise
    except Exception as exc:  # a bug or an unexpected host error: never a traceback
        io.diag(f"ncall 0x{code:x} ({name}): internal error: {type(exc).__name__}: {exc}")
        core.raise_exception(Exc.NativeFault)


def load_all_natives() -> dict[int, Native]:
    """Import every family of FAMILY_OF (tools and tests that list the natives); NATIVES."""
    from importlib import import_module

    for family in sorted(set(FAMILY_OF.values())):
        import_module(f"{__package__}.{family}")
    return NATIVES


def reg_u(core, index: int) -> int:
    return as_u64(*core.get_reg(index))


def reg_i(core, index: int) -> int:
    return as_i64(*core.get_reg(index))


def read_heap(core, address: int, count: int, what: str) -> bytes:
    """``count`` bytes of one live heap block, or NativeFailure(HeapReadFault)."""
    data = core.heap_read(address, count)
    if data is None:
        raise NativeFailure(f"cannot read {what} ({count} bytes at heap 0x{address:x})",
                            Exc.HeapReadFault)
    return data


def write_heap(core, address: int, data: bytes, what: str) -> None:
    """Write inside one live heap block, or NativeFailure(HeapWriteFault)."""
    if not core.heap_write(address, data):
        raise NativeFailure(f"cannot write {what} ({len(data)} bytes at heap 0x{address:x})",
                            Exc.HeapWriteFault)


def require_room(core, address: int, count: int, what: str) -> None:
    """Fail with HeapWriteFault *before* consuming input if ``count`` bytes do not fit.

    Upstream writes the whole requested size, so a destination smaller than the
    request fails there too; checking first means no file or socket data is
    consumed and lost when it does.
    """
    if core.heap_read(address, count) is None:
        raise NativeFailure(f"no room for {what}: {count} bytes at heap 0x{address:x} are not "
                            f"inside one heap block", Exc.HeapWriteFault)


def lossy_text(core, address: int, count: int, what: str) -> str:
    """UTF-16BE text from the heap, unpaired surrogates replaced (upstream: lossy decode)."""
    data = read_heap(core, address, count, what)
    if len(data) % 2:
        data = data[:-1]
    return data.decode("utf-16-be", "replace")
