"""The file natives 0x10-0x16: fopen, fclose, fwrite, fread, fdelete, fseekget, fseekset.

Owns those handlers (upstream's built-ins with the fixes in docs/semantics.md
"Natives"). Files use raw OS descriptors (``os.open``/``os.read``/``os.write``),
like upstream's unbuffered ``std::fs::File``: nothing is lost if a program
never closes a file, and append mode starts at position 0 as upstream reports
it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..tags import Tag
from .capabilities import entry_path, granted
from .handles import files_of
from .io import HostIO, quoted, reason
from .registry import NativeFailure, lossy_text, native, read_heap, reg_u, require_room, write_heap

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_MAX_OFFSET = (1 << 63) - 1   # off_t: lseek's largest position
_FILE_MODES = {           # upstream.md §8.1 fopen modes -> (open flags, readable, writable)
    1: (os.O_WRONLY | os.O_CREAT | os.O_TRUNC, False, True),    # write
    2: (os.O_RDONLY, True, False),                              # read
    3: (os.O_WRONLY | os.O_CREAT | os.O_APPEND, False, True),   # append
    4: (os.O_RDWR | os.O_CREAT, True, True),                    # read + write
    5: (os.O_RDWR | os.O_CREAT | os.O_APPEND, True, True),      # read + append
}


@dataclass
class OpenFile:
    fd: int
    path: str          # its directory entry (capabilities.entry_path): what fdelete removes
    mode: int
    readable: bool
    writable: bool

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


@native(0x10, "fopen")
def _fopen(core, io: HostIO) -> None:
    """r1/r2 = path (UTF-16BE, lossy), r3 = mode 1..5; r0 = U(file handle)."""
    address, count, mode = reg_u(core, 1), reg_u(core, 2), reg_u(core, 3)
    path = lossy_text(core, address, count, "the path")   # semantics.md §3.18: HeapReadFault
    if mode not in _FILE_MODES:
        raise NativeFailure(f"mode {mode} is not 1 (write), 2 (read), 3 (append), "
                            f"4 (read+write) or 5 (read+append)")
    flags, readable, writable = _FILE_MODES[mode]
    if "\0" in path:                  # before the grant check, which resolves the path
        raise NativeFailure(f"cannot open {quoted(path)}: embedded null byte")
    granted(io).check_file(io, "fopen", path, read=readable, write=writable)
    try:
        fd = os.open(path, flags | _O_CLOEXEC, 0o666)
    except OSError as exc:
        raise NativeFailure(f"cannot open {quoted(path)}: {reason(exc)}") from None
    number = files_of(io).add(OpenFile(fd, entry_path(path), mode, readable, writable))
    core.set_reg(0, number, Tag.U64)


@native(0x11, "fclose")
def _fclose(core, io: HostIO) -> None:
    """r1 = file handle."""
    entry = files_of(io).remove(reg_u(core, 1))
    try:
        entry.close()
    except OSError as exc:
        raise NativeFailure(f"{reason(exc)}") from None


@native(0x12, "fwrite")
def _fwrite(core, io: HostIO) -> None:
    """r1 = file handle, r2 = heap source, r3 = byte count; writes all of it."""
    entry = files_of(io).get(reg_u(core, 1))
    address, count = reg_u(core, 2), reg_u(core, 3)
    if not entry.writable:
        raise NativeFailure(f"file {reg_u(core, 1)} was opened for reading only")
    view = memoryview(read_heap(core, address, count, "the data to write"))
    try:
        while view:
            written = os.write(entry.fd, view)
            view = view[written:]
    except OSError as exc:
        raise NativeFailure(f"{reason(exc)}") from None


@native(0x13, "fread")
def _fread(core, io: HostIO) -> None:
    """r1 = file handle, r2 = byte count, r3 = heap destination (upstream's order).

    Reads up to r2 bytes (fewer only at end of file) and writes just those;
    r0 = U(bytes read), 0 at end of file (upstream reports nothing).
    """
    number = reg_u(core, 1)
    entry = files_of(io).get(number)
    count, destination = reg_u(core, 2), reg_u(core, 3)
    if not entry.readable:
        raise NativeFailure(f"file {number} was opened for writing only")
    require_room(core, destination, count, "the data to read")
    chunks, remaining = [], count
    try:
        while remaining:
            chunk = os.read(entry.fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise NativeFailure(f"{reason(exc)}") from None
    data = b"".join(chunks)
    write_heap(core, destination, data, "the data read")
    core.set_reg(0, len(data), Tag.U64)


@native(0x14, "fdelete")
def _fdelete(core, io: HostIO) -> None:
    """r1 = file handle: closes it and deletes the file (deleting counts as writing)."""
    entry = files_of(io).get(reg_u(core, 1))
    granted(io).check_file(io, "fdelete", entry.path, read=False, write=True, resolved=True)
    files_of(io).remove(reg_u(core, 1))
    try:
        entry.close()
        os.unlink(entry.path)
    except OSError as exc:
        raise NativeFailure(f"cannot delete {quoted(entry.path)}: {reason(exc)}") from None


@native(0x15, "fseekget")
def _fseekget(core, io: HostIO) -> None:
    """r1 = file handle; r0 = U(current position)."""
    entry = files_of(io).get(reg_u(core, 1))
    try:
        position = os.lseek(entry.fd, 0, os.SEEK_CUR)
    except OSError as exc:
        raise NativeFailure(f"{reason(exc)}") from None
    core.set_reg(0, position, Tag.U64)


@native(0x16, "fseekset")
def _fseekset(core, io: HostIO) -> None:
    """r1 = file handle, r2 = absolute position (as uint64)."""
    entry = files_of(io).get(reg_u(core, 1))
    position = reg_u(core, 2)
    if position > _MAX_OFFSET:
        raise NativeFailure(f"cannot seek to {position}: beyond the largest file position, {_MAX_OFFSET}")
    try:
        os.lseek(entry.fd, position, os.SEEK_SET)
    except OSError as exc:                    # upstream ignores this; a fault is clearer
        raise NativeFailure(f"cannot seek to {position}: {reason(exc)}") from None
