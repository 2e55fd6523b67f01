"""Shared segments (``--shm``) and the shared-memory natives 0x33-0x39 in Python.

Owns ``Segment`` and ``open_segments`` (anonymous mappings, and files mapped
with ``mmap``: created or zero-extended to the size asked, never shrunk, kept
after exit; docs/concurrency.md), and the Python handlers of shm_size,
shm_load, shm_store, shm_add, shm_cas, shm_read and shm_write. The reference
backend runs every call here; the compiled core runs the successful calls in
its C native table (csrc/vv_shm.h) with C11 atomics on the same mapped bytes
and leaves only the error paths (which print a diagnostic) to these handlers,
which then raise exactly what the C code would have.

Atomicity here (the reference backend): each segment has a lock, so the four
word operations are atomic between the threads of one process; on a
file-backed segment they also hold a POSIX record lock on the word's 8 bytes,
so they are atomic between reference-backend processes too. They are not
atomic against a compiled-core process, which uses lock-free hardware atomics
(docs/concurrency.md "Memory ordering").

Values are 64-bit big-endian words; offsets are byte offsets into the
segment. A bad segment index is NativeFault; an access outside the segment
or a word offset that is not a multiple of 8 is MainSegmFault.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import threading

from ..errors import VoxError, VoxIOError
from ..tags import Exc, Tag
from ..values import MASK64
from .io import HostIO, reason
from .registry import NativeFailure, native, read_heap, reg_u, require_room, write_heap

try:                     # record locks for cross-process atomicity of the reference backend
    import fcntl
except ImportError:      # Windows: only the in-process lock
    fcntl = None

WORD = 8


class Segment:
    """One shared segment: ``size`` bytes of a mapping, anonymous or of the file ``path``."""

    def __init__(self, index: int, size: int, path: str | None, mapping: mmap.mmap,
                 fd: int | None = None, created: bool = False) -> None:
        self.index = index
        self.size = size
        self.path = path
        self.mapping = mapping
        self.fd = fd                  # the open file of a file-backed segment (record locks)
        self.created = created        # this run created the file
        # The reference backend's word operations, in this process: one lock per file, so
        # that two segments mapping one file exclude each other too (record locks do not
        # work between the threads of one process).
        self.lock = _file_lock(os.fstat(fd)) if fd is not None else threading.Lock()

    def close(self) -> None:
        """Unmap (when no Core holds a view any more) and close the file."""
        try:
            self.mapping.close()
        except BufferError:
            pass                      # a Core still exports it: the mapping goes with the Core
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    # -------------------------------------------------------------- word operations (reference)

    def _word(self, offset: int, update) -> int:
        """Run ``update(old) -> new | None`` atomically on the word at ``offset``; the old value."""
        with self.lock:
            locked = fcntl is not None and self.fd is not None
            if locked:
                fcntl.lockf(self.fd, fcntl.LOCK_EX, WORD, offset, os.SEEK_SET)
            try:
                old = int.from_bytes(self.mapping[offset:offset + WORD], "big")
                new = update(old)
                if new is not None:
                    self.mapping[offset:offset + WORD] = (new & MASK64).to_bytes(WORD, "big")
                return old
            finally:
                if locked:
                    fcntl.lockf(self.fd, fcntl.LOCK_UN, WORD, offset, os.SEEK_SET)

    def load(self, offset: int) -> int:
        return self._word(offset, lambda old: None)

    def store(self, offset: int, value: int) -> None:
        self._word(offset, lambda old: value)

    def add(self, offset: int, delta: int) -> int:
        return self._word(offset, lambda old: old + delta)

    def cas(self, offset: int, expected: int, new: int) -> tuple[int, bool]:
        old = self._word(offset, lambda old: new if old == expected else None)
        return old, old == expected


_FILE_LOCKS: dict[tuple[int, int], threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(info: os.stat_result) -> threading.Lock:
    """The one in-process lock of the file ``info`` describes (by device and inode)."""
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault((info.st_dev, info.st_ino), threading.Lock())


def open_segments(specs) -> list[Segment]:
    """Map every ``--shm`` segment (voxvm.config.SegmentSpec), in order; VoxError if one fails.

    Nothing is ever truncated: a file is only extended (with zeros) to the size
    asked. When one segment fails, files this call created are removed again
    and every mapping made so far is closed.
    """
    segments: list[Segment] = []
    try:
        for index, spec in enumerate(specs):
            segments.append(_open_segment(index, spec.size, spec.path))
    except BaseException:
        for segment in segments:
            segment.close()
            if segment.created and segment.path is not None:
                try:
                    os.unlink(segment.path)
                except OSError:
                    pass
        raise
    return segments


def _open_segment(index: int, size: int, path: str | None) -> Segment:
    flag = f"--shm={size}" + (f":{path}" if path is not None else "")
    if path is None:
        try:
            return Segment(index, size, None, mmap.mmap(-1, size))
        except (OSError, ValueError, OverflowError, MemoryError) as exc:
            raise VoxError(f"{flag}: cannot map {size} bytes of shared memory: {reason(exc)}") from None
    created = False
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            created = True
        except FileExistsError:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise VoxIOError(f"{flag}: {path} is a directory, not a file") from None
    except OSError as exc:
        raise VoxIOError(f"{flag}: cannot open {path} for reading and writing: {reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise VoxIOError(f"{flag}: {path} is not a regular file")
        if info.st_size < size:
            try:
                os.ftruncate(fd, size)     # only ever extends: zeros after the old end
            except OSError as exc:
                raise VoxIOError(f"{flag}: cannot extend {path} to {size} bytes: {reason(exc)}") from None
        _set_aside(fd, size, flag, path)
        try:
            mapping = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError, OverflowError) as exc:
            raise VoxIOError(f"{flag}: cannot map {path}: {reason(exc)}") from None
    except BaseException:
        os.close(fd)
        if created:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise
    return Segment(index, size, path, mapping, fd, created)


def _set_aside(fd: int, size: int, flag: str, path: str) -> None:
    """Give the file real storage for its first ``size`` bytes now. A sparse file maps
    fine, but a page the file system then has no room for kills the whole process
    with SIGBUS at its first write; a full disk must be an error before anything runs."""
    allocate = getattr(os, "posix_fallocate", None)
    if allocate is None:
        return
    try:
        allocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS):
            return                     # a file system that cannot say: as before
        raise VoxIOError(f"{flag}: cannot set aside {size} bytes of storage for {path}: {reason(exc)}") from None


# ---------------------------------------------------------------------- the natives


def _segment(core, io: HostIO, name: str) -> Segment:
    segments = io.group.segments if io.group is not None else []
    index = reg_u(core, 1)
    if index >= len(segments):
        raise NativeFailure(f"{name}: no segment {index} (this run has {len(segments)}; "
                            f"--shm=SIZE adds one)")
    return segments[index]


def _range(segment: Segment, offset: int, count: int, name: str, word: bool) -> None:
    if word and offset % WORD:
        raise NativeFailure(f"{name}: offset {offset} is not a multiple of 8", Exc.MainSegmFault)
    if count > segment.size or offset > segment.size - count:
        raise NativeFailure(f"{name}: {count} bytes at offset {offset} are outside segment "
                            f"{segment.index} ({segment.size} bytes)", Exc.MainSegmFault)


def _word_offset(core, io: HostIO, name: str) -> tuple[Segment, int]:
    segment = _segment(core, io, name)
    offset = reg_u(core, 2)
    _range(segment, offset, WORD, name, True)
    return segment, offset


@native(0x33, "shm_size")
def _shm_size(core, io: HostIO) -> None:
    """r1 = segment; r0 = U(its size in bytes)."""
    core.set_reg(0, _segment(core, io, "shm_size").size, Tag.U64)


@native(0x34, "shm_load")
def _shm_load(core, io: HostIO) -> None:
    """r1 = segment, r2 = offset; r0 = U(the word there), read atomically."""
    segment, offset = _word_offset(core, io, "shm_load")
    core.set_reg(0, segment.load(offset), Tag.U64)


@native(0x35, "shm_store")
def _shm_store(core, io: HostIO) -> None:
    """r1 = segment, r2 = offset, r3 = value: the bits of r3 stored atomically."""
    segment, offset = _word_offset(core, io, "shm_store")
    segment.store(offset, core.get_reg(3)[0])


@native(0x36, "shm_add")
def _shm_add(core, io: HostIO) -> None:
    """r1 = segment, r2 = offset, r3 = delta (its bits): wrapping fetch-and-add; r0 = U(old)."""
    segment, offset = _word_offset(core, io, "shm_add")
    core.set_reg(0, segment.add(offset, core.get_reg(3)[0]), Tag.U64)


@native(0x37, "shm_cas")
def _shm_cas(core, io: HostIO) -> None:
    """r1 = segment, r2 = offset, r3 = expected, r4 = new; r0 = U(old); ZF = 1 iff it swapped."""
    segment, offset = _word_offset(core, io, "shm_cas")
    old, swapped = segment.cas(offset, core.get_reg(3)[0], core.get_reg(4)[0])
    core.set_reg(0, old, Tag.U64)
    flags = list(core.flags)
    flags[1] = 1 if swapped else 0
    core.flags = flags


def _copy_args(core, io: HostIO, name: str) -> tuple[Segment, int, int, int]:
    segment = _segment(core, io, name)
    offset, count, address = reg_u(core, 2), reg_u(core, 3), reg_u(core, 4)
    _range(segment, offset, count, name, False)
    return segment, offset, count, address


@native(0x38, "shm_read")
def _shm_read(core, io: HostIO) -> None:
    """r1 = segment, r2 = offset, r3 = count, r4 = heap address: segment bytes into the heap."""
    segment, offset, count, address = _copy_args(core, io, "shm_read")
    if count:
        require_room(core, address, count, "shm_read's destination")
        write_heap(core, address, segment.mapping[offset:offset + count], "shm_read's destination")


@native(0x39, "shm_write")
def _shm_write(core, io: HostIO) -> None:
    """r1 = segment, r2 = offset, r3 = count, r4 = heap address: heap bytes into the segment."""
    segment, offset, count, address = _copy_args(core, io, "shm_write")
    if count:
        segment.mapping[offset:offset + count] = read_heap(core, address, count, "shm_write's source")
