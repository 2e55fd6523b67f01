"""Debug maps: the sidecar ``OUT.vve.map`` that ties a program's addresses to its source.

Owns the map's JSON schema (docs/debug-maps.md), its writer ``build_map``
(used by voxasm ``-g``), its reader ``parse_map`` (which validates every field a
later stage relies on, so a corrupt or foreign file is one ``MapError``, never
a traceback) and the two checks that a map belongs to what it is applied to:
``DebugMap.describes(file_bytes)`` (the ``.vve``/``.vvr`` file, by SHA-256) and
``DebugMap.describes_memory(memory)`` (a core dump's main memory, by the hash of
the code bytes: a run writes only data items and appends with ``dlbc`` after
the image, so the code is as the assembler wrote it). Pure: bytes in, bytes or objects out; the command
line does the file I/O and the warnings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .errors import InputError
from .program import Program, Symbols

MAP_FORMAT = "voxvm-debug-map"
MAP_VERSION = 1
MAP_SUFFIX = ".map"
MAX_MAP_BYTES = 1 << 30        # a map larger than this is not one voxasm wrote


class MapError(InputError):
    """A file that is not a usable debug map (the caller warns and goes on without it)."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def default_map_path(program_path: str) -> str:
    """``prog.vve`` -> ``prog.vve.map`` (the name voxasm -g writes and the VM looks for)."""
    return program_path + MAP_SUFFIX


def code_end(program: Program) -> int:
    """Where the code ends: the data base when the program has data items, else the image end."""
    symbols = program.symbols
    if symbols is not None and symbols.data:
        return min(program.data_base, len(program.image))
    return len(program.image)


def _columns(source: str | None, lines: tuple[tuple[int, int], ...]) -> list[int]:
    """1-based column of each line's first non-blank character (the mnemonic or item name)."""
    if source is None:
        return [1] * len(lines)
    text = source.split("\n")
    out = []
    for _, line in lines:
        row = text[line - 1] if 0 < line <= len(text) else ""
        out.append(len(row) - len(row.lstrip()) + 1)
    return out


def build_map(program: Program, artifact: bytes, source: bytes | None = None) -> bytes:
    """The map of ``program`` (assembled by voxasm, so it has Symbols) written as ``artifact``.

    ``artifact`` is the exact bytes of the written ``.vve`` or ``.vvr``;
    ``source`` the ``.vvs`` bytes, for the columns and the source hash.
    """
    symbols = program.symbols or Symbols()
    text = source.decode("utf-8", "replace") if source is not None else None
    end = code_end(program)
    document = {
        "format": MAP_FORMAT,
        "version": MAP_VERSION,
        "file": {"sha256": sha256(artifact), "size": len(artifact)},
        "code": {"size": end, "sha256": sha256(program.image[:end])},
        "source": {"path": symbols.source_path or program.path,
                   "sha256": sha256(source) if source is not None else None},
        "entry": program.entry,
        "data_base": program.data_base,
        "functions": [{"index": i, "name": symbols.functions.get(i, f"func#{i}"), "address": a}
                      for i, a in enumerate(program.functions)],
        "labels": [{"name": n, "address": a} for n, a in sorted(symbols.labels.items(), key=lambda x: (x[1], x[0]))],
        "data": [{"name": n, "offset": o, "address": program.data_base + o}
                 for n, o in sorted(symbols.data.items(), key=lambda x: (x[1], x[0]))],
        "lines": [[a, line, col] for (a, line), col in zip(symbols.lines, _columns(text, symbols.lines))],
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:      # a file name that is not UTF-8 (surrogate escapes): \u escapes
        return (json.dumps(document, separators=(",", ":")) + "\n").encode("ascii")


@dataclass(frozen=True)
class DebugMap:
    """A parsed, validated map."""

    path: str
    file_sha256: str
    file_size: int
    code_size: int
    code_sha256: str
    entry: int
    data_base: int
    function_addresses: tuple[int, ...]
    symbols: Symbols

    def describes(self, file_bytes: bytes) -> bool:
        """True when this map was written for exactly this ``.vve``/``.vvr`` file."""
        return len(file_bytes) == self.file_size and sha256(file_bytes) == self.file_sha256

    def describes_memory(self, memory: bytes) -> bool:
        """True when ``memory`` (a core dump's) starts with the code this map describes."""
        return len(memory) >= self.code_size and sha256(memory[:self.code_size]) == self.code_sha256

    def apply(self, program: Program) -> Program:
        """``program`` with this map's symbols (the caller checked ``describes``)."""
        return Program(program.image, program.entry, program.data_base, program.functions,
                       program.path, self.symbols)

    def program_for_memory(self, memory: bytes, path: str) -> Program:
        """A Program over a dump's memory with this map's function table and symbols."""
        return Program(memory, self.entry, self.data_base, self.function_addresses, path, self.symbols)


MAX_LINE = 1 << 31        # more lines (or columns) than a source voxasm accepts (1 GiB) can have


def _fail(path: str, message: str) -> MapError:
    return MapError(f"{path}: not a usable debug map: {message}")


def _int(value, what: str, path: str) -> int:
    if type(value) is not int or not 0 <= value < 1 << 64:
        raise _fail(path, f"{what} is not an address or count")
    return value


def _of_type(kind: type, noun: str):
    """A checker: ``value`` itself if it is a ``kind`` (JSON's ``noun``), else a MapError."""

    def check(value, what: str, path: str):
        if not isinstance(value, kind):
            raise _fail(path, f"{what} is not {noun}")
        return value

    return check


_str = _of_type(str, "a string")
_obj = _of_type(dict, "an object")
_list = _of_type(list, "a list")


def _hash(value, what: str, path: str) -> str:
    text = _str(value, what, path)
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise _fail(path, f"{what} is not a SHA-256 in hex")
    return text


def _lines(rows: list, path: str) -> tuple[list, list]:
    """The ``lines`` rows as (address, line) pairs and columns: one tight loop (a map has a
    row per instruction), and the row-by-row checks only to name what is wrong."""
    lines: list[tuple[int, int]] = []
    columns: list[int] = []
    previous = -1
    try:
        for address, line, column in rows:
            if (type(address) is not int or type(line) is not int or type(column) is not int
                    or not previous < address < 1 << 64 or not 0 <= line <= MAX_LINE
                    or not 0 <= column <= MAX_LINE):
                raise ValueError
            previous = address
            lines.append((address, line))
            columns.append(column)
        return lines, columns
    except (TypeError, ValueError):
        pass
    previous = -1
    for n, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 3:
            raise _fail(path, f"lines[{n}] is not [address, line, column]")
        address = _int(row[0], f"lines[{n}] address", path)
        if address <= previous:
            raise _fail(path, f"lines[{n}]: addresses are not ascending")
        previous = address
        for value, what in ((row[1], "line"), (row[2], "column")):
            if _int(value, f"lines[{n}] {what}", path) > MAX_LINE:
                raise _fail(path, f"lines[{n}]: {what} {value} is more than any source file has")
    raise _fail(path, "'lines' is malformed")    # pragma: no cover - the loop above names it


def parse_map(data: bytes, path: str = "<map>") -> DebugMap:
    """Decode and validate a map; raise MapError naming what is wrong."""
    if len(data) > MAX_MAP_BYTES:
        raise _fail(path, f"{len(data)} bytes is too large")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _fail(path, "not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise _fail(path, f"not JSON ({exc})" if isinstance(exc, json.JSONDecodeError) else "not JSON") from None
    document = _obj(document, "the document", path)
    if document.get("format") != MAP_FORMAT:
        raise _fail(path, f"'format' is not {MAP_FORMAT!r}")
    if document.get("version") != MAP_VERSION:
        raise _fail(path, f"version {document.get('version')!r} is not supported (this voxvm reads {MAP_VERSION})")
    file = _obj(document.get("file"), "'file'", path)
    code = _obj(document.get("code"), "'code'", path)
    source = _obj(document.get("source"), "'source'", path)
    functions: dict[int, str] = {}
    addresses: list[int] = []
    for n, entry in enumerate(_list(document.get("functions"), "'functions'", path)):
        entry = _obj(entry, f"functions[{n}]", path)
        if _int(entry.get("index"), f"functions[{n}].index", path) != n:
            raise _fail(path, f"functions[{n}].index is not {n}")
        functions[n] = _str(entry.get("name"), f"functions[{n}].name", path)
        addresses.append(_int(entry.get("address"), f"functions[{n}].address", path))
    labels = {}
    for n, entry in enumerate(_list(document.get("labels"), "'labels'", path)):
        entry = _obj(entry, f"labels[{n}]", path)
        name = _str(entry.get("name"), f"labels[{n}].name", path)
        if name in labels:
            raise _fail(path, f"labels[{n}]: {name!r} names two labels")
        labels[name] = _int(entry.get("address"), f"labels[{n}].address", path)
    data_items = {}
    for n, entry in enumerate(_list(document.get("data"), "'data'", path)):
        entry = _obj(entry, f"data[{n}]", path)
        name = _str(entry.get("name"), f"data[{n}].name", path)
        if name in data_items:
            raise _fail(path, f"data[{n}]: {name!r} names two data items")
        data_items[name] = _int(entry.get("offset"), f"data[{n}].offset", path)
    lines, columns = _lines(_list(document.get("lines"), "'lines'", path), path)
    source_hash = source.get("sha256")
    symbols = Symbols(functions=functions, lines=tuple(lines),
                      source_path=_str(source.get("path"), "source.path", path),
                      labels=labels, data=data_items, columns=tuple(columns),
                      source_sha256=None if source_hash is None else _hash(source_hash, "source.sha256", path))
    found = DebugMap(path=path, file_sha256=_hash(file.get("sha256"), "file.sha256", path),
                     file_size=_int(file.get("size"), "file.size", path),
                     code_size=_int(code.get("size"), "code.size", path),
                     code_sha256=_hash(code.get("sha256"), "code.sha256", path),
                     entry=_int(document.get("entry"), "'entry'", path),
                     data_base=_int(document.get("data_base"), "'data_base'", path),
                     function_addresses=tuple(addresses), symbols=symbols)
    _check_consistent(found, path)
    return found


def _check_consistent(found: DebugMap, path: str) -> None:
    """What the assembler never writes, even in a map whose hashes match its file: an
    address past the code or the file, and a name given twice (.vvs has one namespace for
    functions, labels and data items, so a name must say one thing)."""
    symbols = found.symbols
    if found.entry >= found.code_size and found.code_size:
        raise _fail(path, f"'entry' 0x{found.entry:x} is past the code (0x{found.code_size:x} bytes)")
    for n, address in enumerate(found.function_addresses):
        if address >= found.code_size:
            raise _fail(path, f"functions[{n}].address 0x{address:x} is past the code (0x{found.code_size:x} bytes)")
    for name, address in symbols.labels.items():
        if address > found.code_size:
            raise _fail(path, f"label {name!r} at 0x{address:x} is past the code (0x{found.code_size:x} bytes)")
    for name, offset in symbols.data.items():
        if found.data_base + offset >= found.file_size:
            raise _fail(path, f"data item {name!r} at offset {offset} is past the file ({found.file_size} bytes)")
    if symbols.lines and symbols.lines[-1][0] >= found.file_size:
        raise _fail(path, f"a line at 0x{symbols.lines[-1][0]:x} is past the file ({found.file_size} bytes)")
    seen: dict[str, str] = {}
    for kind, names in (("function", symbols.functions.values()), ("label", symbols.labels),
                        ("data item", symbols.data)):
        for name in names:
            if name in seen:
                both = f"two {kind}s" if seen[name] == kind else f"both a {seen[name]} and a {kind}"
                raise _fail(path, f"{name!r} names {both}")
            seen[name] = kind
