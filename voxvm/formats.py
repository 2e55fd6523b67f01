"""Binary file formats, described once with ``construct``.

Owns the ``.vve`` v3 header and function table (upstream.md §4.1) and the
structured core dump (semantics.md §3.26). ``load_vve``/``parse_dump`` validate
everything later stages rely on and raise ``FormatError`` naming the file, the
field and the byte offset; ``build_vve``/``build_dump`` are their inverses.
The checks of a ``.vve``, the raw ``.vvr`` image (§4.2, semantics.md §3.14)
and the ``construct``-free reader a run uses live in voxvm/vvefile.py.
``DumpWriter`` writes the same dump bytes as ``build_dump`` section by
section through a bounded buffer, for dumps too large to build in memory.
Instructions are never decoded here (see voxvm/isa.py and the loaders of the
backends): construct costs microseconds per field.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from itertools import chain, islice

from construct import (
    Array,
    Bytes,
    Const,
    GreedyBytes,
    ConstructError,
    StreamError,
    Int8ub,
    Int16ub,
    Int64ub,
    Prefixed,
    PrefixedArray,
    Struct,
    this,
)

from .errors import FormatError
from .program import Program
from .vvefile import (FUNC_ENTRY_SIZE, VVE_HEADER_SIZE, VVE_MAGIC, VVE_VERSION,  # noqa: F401 (re-exported)
                      check_header_length, check_vve, load_vvr, read_bytes)

VveHeader = Struct(
    "magic" / Bytes(4),
    "version" / Int16ub,
    "entry" / Int64ub,
    "data_base" / Int64ub,
    "code_size" / Int64ub,   # always written 0, ignored (upstream)
    "data_size" / Int64ub,   # always written 0, ignored (upstream)
    "func_count" / Int64ub,
    "padding" / Bytes(2),
)
assert VveHeader.sizeof() == VVE_HEADER_SIZE

FuncEntry = Struct("index" / Int64ub, "address" / Int64ub)
assert FuncEntry.sizeof() == FUNC_ENTRY_SIZE


def build_vve(program: Program) -> bytes:
    """Serialise ``program`` exactly as the upstream assembler lays it out.

    >>> len(build_vve(Program(image=b"\\xff")))
    49
    """
    header = VveHeader.build(dict(
        magic=VVE_MAGIC, version=VVE_VERSION, entry=program.entry,
        data_base=program.data_base, code_size=0, data_size=0,
        func_count=len(program.functions), padding=b"\x00\x00"))
    table = b"".join(FuncEntry.build(dict(index=i, address=a))
                     for i, a in enumerate(program.functions))
    return header + table + program.image


def load_vve(data: bytes, path: str = "<memory>") -> Program:
    """Parse (with the schema above) and validate a .vve file's bytes; FormatError if malformed.

    The definition of the format; runs read files with voxvm/vvefile.py's
    ``struct`` reader, which shares the checks and is tested against this one.
    """
    check_header_length(data, path)
    try:
        header = VveHeader.parse(data)
    except ConstructError as exc:  # pragma: no cover - length was checked above
        raise FormatError(path, "header", 0, str(exc)) from None

    def table_entry(offset: int) -> tuple[int, int]:
        entry = FuncEntry.parse(data[offset:offset + FUNC_ENTRY_SIZE])
        return entry.index, entry.address

    return check_vve(data, path, header.magic, header.version, header.entry, header.data_base,
                     header.func_count, table_entry)


# --------------------------------------------------------------------------
# Core dump (semantics.md §3.26): written after `halt` with --coredump_exit as
# voxvm.dump, and as voxvm_err.dump when a trap stops the program.

DUMP_MAGIC = b"VVDUMP\x00\x00"
DUMP_VERSION = 3              # 3: the trap's two arguments; 2: pending exceptions as 11 counts (1: a list)
EXCEPTION_KINDS = 11          # voxvm.isa.Exc, numbers 1..11

TaggedValue = Struct("value" / Int64ub, "tag" / Int8ub)
_HEAP_BLOCK_HEAD = (
    "address" / Int64ub,
    "size" / Int64ub,
    "kind" / Int8ub,          # 0 = collected by the GC, 1 = allocr_nogc (never collected)
)
HeapBlockHead = Struct(*_HEAP_BLOCK_HEAD)
HeapBlock = Struct(*_HEAP_BLOCK_HEAD, "data" / Bytes(this.size))


def _dump_head(version: int) -> tuple:
    """Everything before the first variable-length section (DumpWriter builds it alone)."""
    # Version 3: the trap's arguments (voxvm.traps.describe: the operation and operand tags
    # of a type mismatch, the frame count of the recursion limit, ...), 0 after halt.
    trap_args = ("trap_a" / Int64ub, "trap_b" / Int64ub) if version >= 3 else ()
    return (
        "magic" / Const(DUMP_MAGIC),
        "version" / Const(version, Int16ub),
        "reason" / Int8ub,        # 0 = halt, 1 = trap
        "trap" / Int16ub,         # trap kind number (voxvm.traps.TrapKind), 0 after halt
        *trap_args,
        "ip" / Int64ub,
        "flags" / Array(4, Int8ub),  # OF, ZF, NF, CF
        "registers" / Array(32, TaggedValue),
    )


def _dump_file(version: int, pending) -> Struct:
    return Struct(
        *_dump_head(version),
        "data_stack" / PrefixedArray(Int64ub, TaggedValue),   # bottom first
        "call_stack" / PrefixedArray(Int64ub, Int64ub),       # return addresses, oldest first
        "pending" / pending,
        "memory" / Prefixed(Int64ub, GreedyBytes),
        "heap" / PrefixedArray(Int64ub, HeapBlock),
    )


DumpHead = Struct(*_dump_head(DUMP_VERSION))
# Version 2: pending[N - 1] = how many exceptions N are pending (semantics.md §9).
PendingCounts = Array(EXCEPTION_KINDS, Int64ub)
DumpFile = _dump_file(DUMP_VERSION, PendingCounts)
# Version 2 (read only): no trap arguments.
DumpFileV2 = _dump_file(2, PendingCounts)
# Version 1 (read only): the pending exception numbers, oldest first.
DumpFileV1 = _dump_file(1, PrefixedArray(Int64ub, Int8ub))


@dataclass
class Dump:
    """A decoded core dump (also what the backends snapshot for it)."""

    reason: int
    trap: int
    ip: int
    flags: tuple[int, int, int, int]
    registers: list[tuple[int, int]]          # (value bits, tag) x 32
    data_stack: list[tuple[int, int]]
    call_stack: list[int]
    pending: dict[int, int]                   # exception number -> count, only counts > 0
    memory: bytes
    heap: list[tuple[int, int, int, bytes]]   # (address, size, kind, data)
    trap_a: int = 0                           # the trap's arguments (voxvm.traps.describe)
    trap_b: int = 0
    version: int = field(default=DUMP_VERSION, compare=False)   # of the file it was read from


def build_dump(dump: Dump) -> bytes:
    """Serialise a core dump."""
    return DumpFile.build(dict(
        reason=dump.reason, trap=dump.trap, trap_a=dump.trap_a, trap_b=dump.trap_b,
        ip=dump.ip, flags=list(dump.flags),
        registers=[dict(value=v, tag=t) for v, t in dump.registers],
        data_stack=[dict(value=v, tag=t) for v, t in dump.data_stack],
        call_stack=list(dump.call_stack),
        pending=[dump.pending.get(number, 0) for number in range(1, EXCEPTION_KINDS + 1)],
        memory=bytes(dump.memory),
        heap=[dict(address=a, size=n, kind=k, data=bytes(d)) for a, n, k, d in dump.heap]))


# Every variable-length section is an Int64ub count (entries, or bytes for
# memory) followed by the entries; the fixed-size entries in bytes:
DUMP_COUNT = Int64ub
TAGGED_VALUE_SIZE = TaggedValue.sizeof()        # data stack entry: value (8), tag (1)
RETURN_ADDRESS_SIZE = Int64ub.sizeof()          # call stack entry
HEAP_BLOCK_HEAD_SIZE = HeapBlockHead.sizeof()   # heap block: address, size, kind, then size bytes


class DumpWriter:
    """Writes one core dump to a binary file in DumpFile's layout, section by section.

    Call ``head``, then each section in file order: ``data_stack``,
    ``call_stack``, ``pending`` (11 counts, not prefixed), ``memory``, ``heap``. Sections with many
    entries are packed a chunk at a time into a buffer of about
    ``buffer_size`` bytes, so writing costs that buffer, not a Python object
    per entry (the compiled core has its own C writer, ``Core.write_dump``;
    tests check that both produce ``build_dump``'s bytes).
    """

    _CHUNK = 4096   # entries packed per struct call

    def __init__(self, f, buffer_size: int = 1 << 18) -> None:
        self._f = f
        self._buffer = bytearray()
        self._limit = buffer_size

    def _put(self, data) -> None:
        self._buffer += data
        if len(self._buffer) >= self._limit:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._f.write(self._buffer)
            self._buffer = bytearray()

    def head(self, reason: int, trap: int, ip: int, flags, registers, trap_a: int = 0, trap_b: int = 0) -> None:
        self._put(DumpHead.build(dict(reason=reason, trap=trap, trap_a=trap_a, trap_b=trap_b,
                                      ip=ip, flags=list(flags),
                                      registers=[dict(value=v, tag=t) for v, t in registers])))

    def count(self, n: int) -> None:
        self._put(DUMP_COUNT.build(n))

    def _packed(self, entries, count: int, fmt: str, per_entry: int) -> None:
        """``count`` entries of ``per_entry`` fields each, packed ``_CHUNK`` at a time."""
        self.count(count)
        iterator = iter(entries)
        left = count
        while left:
            n = min(left, self._CHUNK)
            fields = list(islice(iterator, n)) if per_entry == 1 else list(chain.from_iterable(islice(iterator, n)))
            if len(fields) != n * per_entry:
                raise ValueError(f"dump section ended after {count - left + len(fields) // per_entry} of {count} entries")
            self._put(struct.pack(">" + fmt * n, *fields))
            left -= n

    def data_stack(self, entries, count: int) -> None:
        """``count`` (value, tag) pairs, bottom first."""
        self._packed(entries, count, "QB", 2)

    def call_stack(self, addresses, count: int) -> None:
        self._packed(addresses, count, "Q", 1)

    def pending(self, counts: dict[int, int]) -> None:
        """The pending exceptions, ``{number: count}``: one count per kind (version 2)."""
        self._put(PendingCounts.build([counts.get(number, 0)
                                       for number in range(1, EXCEPTION_KINDS + 1)]))

    def memory(self, data) -> None:
        view = memoryview(data)
        self.count(len(view))
        for start in range(0, len(view), self._limit):
            self._put(view[start:start + self._limit])

    def heap(self, blocks, count: int) -> None:
        """``count`` blocks (address, size, kind, data), in address order."""
        self.count(count)
        written = 0
        for address, size, kind, data in blocks:
            self._put(HeapBlockHead.build(dict(address=address, size=size, kind=kind)))
            view = memoryview(data)
            for start in range(0, len(view), self._limit):
                self._put(view[start:start + self._limit])
            written += 1
        if written != count:
            raise ValueError(f"dump heap section: {written} blocks, announced {count}")
        self.flush()


def _dump_format_error(exc: ConstructError, data: bytes, path: str) -> FormatError:
    """construct's two-line error as one FormatError line: the field as a dotted path and,
    for a file cut off inside a field, that field's byte offset."""
    field = (exc.path or "").replace("(parsing)", "").replace(" -> ", ".").strip(". ") or "dump"
    reason = str(exc).splitlines()[-1]
    words = reason.replace(",", "").split()
    if isinstance(exc, StreamError) and words[-4:-3] == ["expected"] and words[-2:-1] == ["found"]:
        wanted, there = int(words[-3]), int(words[-1])
        if wanted > len(data):
            return FormatError(path, field, len(data) - there,
                               f"its length field asks for {wanted} bytes, more than the whole file "
                               f"({len(data)} bytes): a corrupt core dump")
        return FormatError(path, field, len(data) - there,
                           f"the file ends inside this {wanted}-byte field ({len(data)} bytes in all; "
                           f"a cut-off core dump?)")
    if isinstance(exc, StreamError) and words[-3:-2] == ["requested"] and words[-2].isdigit():
        # a length field so large that reading it failed outright (construct knows no offset)
        return FormatError(path, field, None, f"its length field asks for {int(words[-2])} bytes, more than "
                                              f"the whole file ({len(data)} bytes): a corrupt core dump")
    return FormatError(path, field, None, f"malformed core dump: {reason}")


def _check_dump(parsed, end: int, size: int, path: str) -> None:
    """What the schema's shape cannot say: the dump ends where the file ends, the reason is
    halt or trap, and every register and stack entry has a tag this voxvm knows."""
    from .tags import VALID_TAGS

    if end != size:
        extra = size - end
        raise FormatError(path, "end", end, f"{extra} more byte{'s' if extra != 1 else ''} after the core "
                                            "dump's end (a corrupt file, or two joined)")
    if parsed.reason not in (0, 1):
        raise FormatError(path, "reason", None, f"{parsed.reason} is neither 0 (halt) nor 1 (trap): "
                                                "a corrupt core dump")
    from .traps import TrapKind

    if parsed.reason == 1 and parsed.trap not in {int(kind) for kind in TrapKind}:
        raise FormatError(path, "trap", None, f"{parsed.trap} is no trap kind: a corrupt core dump")
    for what, entries in (("registers", parsed.registers), ("data_stack", parsed.data_stack)):
        for index, entry in enumerate(entries):
            if entry.tag not in VALID_TAGS:
                raise FormatError(path, f"{what}[{index}].tag", None,
                                  f"{entry.tag} is not a register type: a corrupt core dump")


def parse_dump(data: bytes, path: str = "<memory>") -> Dump:
    """Decode a core dump; raise FormatError if it is not one."""
    if data[:len(DUMP_MAGIC)] != DUMP_MAGIC:
        raise FormatError(path, "magic", 0, f"expected {DUMP_MAGIC!r} (not a voxvm core dump)")
    version = int.from_bytes(data[len(DUMP_MAGIC):len(DUMP_MAGIC) + 2], "big")
    if not 1 <= version <= DUMP_VERSION and len(data) >= len(DUMP_MAGIC) + 2:
        raise FormatError(path, "version", len(DUMP_MAGIC),
                          f"version {version} is not one this voxvm reads (1 to {DUMP_VERSION}; "
                          f"a corrupt core dump, or one from a newer voxvm?)")
    stream = io.BytesIO(data)
    try:
        if version == 1:
            parsed = DumpFileV1.parse_stream(stream)
            pending: dict[int, int] = {}
            for number in parsed.pending:
                pending[number] = pending.get(number, 0) + 1
            pending = dict(sorted(pending.items()))
        else:
            parsed = (DumpFileV2 if version == 2 else DumpFile).parse_stream(stream)
            pending = {number: count for number, count in enumerate(parsed.pending, 1) if count}
    except ConstructError as exc:
        raise _dump_format_error(exc, data, path) from None
    _check_dump(parsed, stream.tell(), len(data), path)
    return Dump(
        reason=parsed.reason, trap=parsed.trap, ip=parsed.ip, flags=tuple(parsed.flags),
        registers=[(r.value, r.tag) for r in parsed.registers],
        data_stack=[(e.value, e.tag) for e in parsed.data_stack],
        call_stack=list(parsed.call_stack), pending=pending,
        memory=bytes(parsed.memory),
        heap=[(b.address, b.size, b.kind, bytes(b.data)) for b in parsed.heap],
        trap_a=parsed.get("trap_a", 0), trap_b=parsed.get("trap_b", 0), version=version)
