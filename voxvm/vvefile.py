"""Reading program files on the run path, without ``construct``.

Owns ``load_vve`` for the command line's runs: the ``.vve`` v3 header and
function table (upstream.md §4.1) read with ``int.from_bytes``, and the checks every
later stage relies on (``check_vve``), which voxvm/formats.py's
construct-based reader shares. The construct schema in voxvm/formats.py stays
the definition of the format; tests/formats/test_fast_reader.py proves that
both readers give the same Program, or the same FormatError, for every golden
file and for fuzzed ones. Importing ``construct`` costs more start-up time than
a whole run of a small program (docs/performance.md "Start-up"), so a plain
``voxvm --vve=p.vve`` never does.

Also owns ``build_vve`` (the assemblers' writer), ``load_vvr`` (a raw image,
semantics.md §3.14) and ``read_bytes``. Neither reader nor writer uses
``struct``: importing it costs a run about 1 M instructions, more than the
few fields it would unpack (docs/performance.md "Start-up").
"""

from __future__ import annotations

import os
import stat

from .errors import FormatError, InputError, UsageError, VoxIOError, shown_name
from .program import Program

VVE_MAGIC = b"VVE\x00"
VVE_VERSION = 3
VVE_HEADER_SIZE = 0x30  # 46 bytes of fields + 2 bytes of padding
FUNC_ENTRY_SIZE = 16    # index, address: two big-endian uint64

# Offsets of header fields, for error messages (voxvm.formats.VveHeader lays them out).
FIELD_OFFSET = {"magic": 0x00, "version": 0x04, "entry": 0x06, "data_base": 0x0E,
                "code_size": 0x16, "data_size": 0x1E, "func_count": 0x26}



def _u64(data: bytes, offset: int) -> int:
    """The big-endian uint64 at ``offset`` of ``data``."""
    return int.from_bytes(data[offset:offset + 8], "big")


def check_header_length(data: bytes, path: str) -> None:
    """FormatError naming the last field that starts inside ``data`` if the header is cut short."""
    if len(data) < VVE_HEADER_SIZE:
        field = "header"
        for name, offset in FIELD_OFFSET.items():
            if offset <= len(data):
                field = name
        raise FormatError(path, field, len(data),
                          f"file is {len(data)} bytes, shorter than the {VVE_HEADER_SIZE}-byte .vve header")


def check_vve(data: bytes, path: str, magic: bytes, version: int, entry: int, data_base: int,
              count: int, table_entry) -> Program:
    """Validate parsed header fields and build the Program (shared by both readers).

    ``table_entry(offset)`` parses the 16-byte function-table entry at byte
    ``offset`` of ``data`` into ``(index, address)``.
    """

    def fail(field: str, offset: int, message: str) -> FormatError:
        return FormatError(path, field, offset, message)

    if magic != VVE_MAGIC:
        raise fail("magic", 0, f"expected {VVE_MAGIC!r}, found {magic!r} (not a .vve file)")
    if version != VVE_VERSION:
        raise fail("version", FIELD_OFFSET["version"],
                   f"format version {version} is not supported (this voxvm reads version {VVE_VERSION})")
    table_end = VVE_HEADER_SIZE + count * FUNC_ENTRY_SIZE
    if table_end > len(data):
        present = (len(data) - VVE_HEADER_SIZE) // FUNC_ENTRY_SIZE
        raise fail("function table", VVE_HEADER_SIZE + present * FUNC_ENTRY_SIZE,
                   f"header announces {count} entries but the file ends after {present}")
    image_size = len(data) - table_end
    functions: list[int | None] = [None] * count
    for n in range(count):
        offset = VVE_HEADER_SIZE + n * FUNC_ENTRY_SIZE
        index, address = table_entry(offset)
        if index >= count:
            raise fail(f"function table entry {n} index", offset,
                       f"index {index} is not below the entry count {count}")
        if functions[index] is not None:
            raise fail(f"function table entry {n} index", offset, f"index {index} appears twice")
        if address >= image_size:
            raise fail(f"function table entry {n} address", offset + 8,
                       f"function {index} starts at {address}, outside the {image_size}-byte image")
        functions[index] = address
    if entry >= image_size:
        raise fail("entry", FIELD_OFFSET["entry"],
                   f"entry point {entry} lies outside the {image_size}-byte image")
    if data_base > image_size:
        raise fail("data_base", FIELD_OFFSET["data_base"],
                   f"data base {data_base} lies outside the {image_size}-byte image")
    return Program(image=bytes(data[table_end:]), entry=entry, data_base=data_base,
                   functions=tuple(functions), path=path)  # type: ignore[arg-type]


def load_vve(data: bytes, path: str = "<memory>") -> Program:
    """Parse and validate a .vve file's bytes; raise FormatError if malformed."""
    check_header_length(data, path)
    return check_vve(data, path, bytes(data[0:4]), int.from_bytes(data[4:6], "big"),
                     _u64(data, FIELD_OFFSET["entry"]), _u64(data, FIELD_OFFSET["data_base"]),
                     _u64(data, FIELD_OFFSET["func_count"]),
                     lambda offset: (_u64(data, offset), _u64(data, offset + 8)))


def build_vve(program: Program) -> bytes:
    """``program`` as a ``.vve`` file, laid out exactly as voxvm.formats.build_vve (the
    construct schema) does; what the assemblers write (tests/formats/test_fast_reader.py
    checks that the two agree).

    >>> len(build_vve(Program(image=b"\\xff")))
    49
    """
    count = len(program.functions)
    out = bytearray(VVE_MAGIC)
    out += VVE_VERSION.to_bytes(2, "big")
    for field in (program.entry, program.data_base, 0, 0, count):   # code_size and data_size: 0
        out += field.to_bytes(8, "big")
    out += b"\x00\x00"                                              # padding to 0x30
    for index, address in enumerate(program.functions):
        out += index.to_bytes(8, "big") + address.to_bytes(8, "big")
    out += program.image
    return bytes(out)


def load_vvr(data: bytes, path: str = "<memory>") -> Program:
    """A raw image: loaded at address 0, ip 0, data base 0, no functions (semantics.md §3.14)."""
    if not data:
        raise FormatError(path, "image", 0, "raw image is empty (nothing to execute)")
    return Program(image=bytes(data), path=path)


# No program file or input is larger: voxasm reads at most 1 GiB of source (its
# MAX_SOURCE_BYTES), and its data items total at most 256 MiB.
MAX_PROGRAM_FILE = 1 << 30


def _read_at_most(f, count: int) -> bytearray:
    """Up to ``count`` bytes of ``f``, in chunks (``f.read(count)`` would allocate all of it)."""
    data = bytearray()
    while len(data) < count:
        chunk = f.read(min(count - len(data), 1 << 24))
        if not chunk:
            break
        data += chunk
    return data


def read_bytes(path: str, limit: int = MAX_PROGRAM_FILE) -> bytes:
    """The whole file, or a one-line VoxIOError naming it (a UsageError for an empty name:
    ``--vve=`` with nothing after it, as voxasm/driver.py says of an empty output name).
    Only ``limit`` bytes are read: a device or a pipe that never ends (``/dev/zero``) is
    an InputError at the limit, not a process that eats every byte of memory."""
    if not path:
        raise UsageError("the input file name is empty")
    if "\0" in path:               # (only the Python API can pass one: argv cannot hold NUL)
        raise UsageError(f"{path!r}: a file name cannot contain a NUL byte")
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size <= limit:
                data = f.read()               # its size is known: one allocation
            else:
                data = _read_at_most(f, limit + 1)
        if len(data) > limit:
            raise InputError(f"{shown_name(path)}: more than {limit} bytes: no program or input is that large"
                             + ("" if stat.S_ISREG(info.st_mode) else " (a device or a pipe that does not end?)"))
        return bytes(data)
    except MemoryError:
        raise VoxIOError(f"{shown_name(path)}: cannot read: out of memory") from None
    except IsADirectoryError:
        raise VoxIOError(f"{shown_name(path)}: is a directory, not a file") from None
    except OSError as exc:
        raise VoxIOError(f"{shown_name(path)}: cannot read: {exc.strerror or exc}") from None
