"""The disassembler: a loaded ``Program`` back to ``.vvs`` source or a listing.

Owns the reading of an image as code plus data items (``get_instructions``,
``get_data_items``) and its two printed forms:

* ``disassemble(program)``: ``.vvs`` source that re-assembles to the identical
  image, entry point, data base and function table (``asm(dis(b)) == b``,
  docs/architecture.md "Encode and decode are symmetric"). Anything that no source text can produce
  (undecodable code bytes, a register >= 32, a string with a newline, a
  function table out of address order, ...) raises ``InputError`` naming
  the byte offset, rather than printing source that would assemble to
  something else.
* ``disassemble(program, listing=True)``: one line per instruction with its
  address and raw bytes (CPython ``dis`` style, ``>>`` marks jump targets),
  then the data items with their addresses. It never fails: bytes that are
  not instructions or items are shown as ``.byte`` comment lines.

Operands are printed in the assembler's syntax (upstream.md §3.4, §3.6):
``@label`` for jump targets that start an instruction (numbers otherwise),
``@function`` for ``call``/``fnstind``, ``@exception_name`` for ``jexc``,
bare data labels for the item operand of data-segment instructions.
Decoding itself is ``voxvm.isa.decode_at``'s; nothing here knows an opcode
number.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

from . import isa
from .errors import InputError, shown_name
from .program import Program

__all__ = ["DataItem", "InstructionNamer", "disassemble", "item_text", "float_literal", "get_data_items", "get_instructions"]

_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")

_SCALAR_TYPES = {isa.DataType.UINT: "uint", isa.DataType.INT: "int", isa.DataType.FLOAT: "float"}
_ARRAY_TYPES = {isa.DataType.UINT_ARRAY: "uint", isa.DataType.INT_ARRAY: "int",
                isa.DataType.FLOAT_ARRAY: "float"}

# The names voxasm accepts (a letter, '_', '.' or '$', then word characters,
# '.', '$', '-'); a symbol name outside it is replaced by a generated one.
_NAME = re.compile(r"(?:[^\W\d]|[.$])[\w.$\-]*\Z")
# No str literal can hold a newline: it ends the source line (voxasm and upstream
# split lines at "\n" only). Every other character, NUL included, is written as is.


class _Unrepresentable(Exception):
    """No .vvs text assembles to these bytes (carries the image offset)."""

    def __init__(self, address: int, reason: str) -> None:
        super().__init__(reason)
        self.address = address
        self.reason = reason


# --------------------------------------------------------------------------
# Reading the image

@dataclass(frozen=True)
class DataItem:
    """One data-segment item (upstream.md §1.6): type byte, u64 length, payload."""

    offset: int        # from the data base: the value of its data label
    address: int       # in main memory (data_base + offset)
    type_byte: int
    payload: bytes

    @property
    def size(self) -> int:
        return isa.DATA_HEADER_SIZE + len(self.payload)

    @property
    def is_const(self) -> bool:
        return bool(self.type_byte & isa.DATA_CONST_BIT)


def _code_end(program: Program) -> int:
    """Where code stops and the data items start: the most plausible reading.

    voxasm puts every data item after the code and points data_base at the
    first one. Without items, data_base is the address of the last
    ``section data`` line, 0 without one (upstream.md §4.1, §3.3): a data base
    inside the code whose tail is no clean item sequence is read as such an
    empty section. A data base of 0 means "all code" unless the image is not
    code but is a clean sequence of items (a data-only image).
    """
    image, base = program.image, program.data_base
    whole_is_code = _sweep_code(image, len(image))[1] is None
    if base == 0:
        return 0 if not whole_is_code and _parse_items(image, 0)[1] is None else len(image)
    if base < len(image) and whole_is_code and _parse_items(image, base)[1] is not None:
        return len(image)
    return min(base, len(image))  # a base past the image (never from load_vve) has no data


def _sweep_code(image: bytes, end: int) -> tuple[list[isa.Decoded], int | None]:
    """Decode [0, end) instruction by instruction; stop at the first bad address."""
    code = image[:end]
    out: list[isa.Decoded] = []
    address = 0
    while address < end:
        try:
            decoded = isa.decode_at(code, address)
        except isa.DecodeError:
            return out, address
        out.append(decoded)
        address += decoded.size
    return out, None


def _parse_items(image: bytes, start: int) -> tuple[list[DataItem], int | None]:
    """Split [start, end of image) into items; the second value is where that fails."""
    items: list[DataItem] = []
    address = start
    while address < len(image):
        if address + isa.DATA_HEADER_SIZE > len(image):
            return items, address
        length = _U64.unpack_from(image, address + 1)[0]
        payload_start = address + isa.DATA_HEADER_SIZE
        if length > len(image) - payload_start:
            return items, address
        items.append(DataItem(address - start, address, image[address],
                              image[payload_start:payload_start + length]))
        address = payload_start + length
    return items, None


def _read_code(program: Program, end: int) -> list[isa.Decoded]:
    instructions, bad = _sweep_code(program.image, end)
    if bad is not None:
        raise _Unrepresentable(bad, _decode_reason(program.image, end, bad))
    return instructions


def _read_items(program: Program, start: int) -> list[DataItem]:
    items, bad = _parse_items(program.image, start)
    if bad is not None:
        raise _Unrepresentable(bad, _item_reason(program.image, bad))
    return items


def get_instructions(program: Program) -> list[isa.Decoded]:
    """The instructions of the code region, in address order.

    Raises ``InputError`` if the code region does not decode cleanly.
    """
    try:
        return _read_code(program, _code_end(program))
    except _Unrepresentable as problem:
        raise _input_error(program, problem) from None


def instruction_spans(program: Program) -> list[tuple[int, int]]:
    """(start, end) of every instruction of the code region; empty when it does not decode."""
    try:
        return [(ins.address, ins.address + ins.size) for ins in get_instructions(program)]
    except InputError:
        return []


def covering_start(spans: list[tuple[int, int]], address: int) -> int | None:
    """The start of the instruction in ``spans`` that covers ``address`` (None: none does)."""
    from bisect import bisect_right

    index = bisect_right(spans, (address, float("inf"))) - 1
    if index >= 0 and spans[index][0] <= address < spans[index][1]:
        return spans[index][0]
    return None


def get_data_items(program: Program) -> list[DataItem]:
    """The data items after the code. Raises ``InputError`` if they are not a clean sequence."""
    try:
        return _read_items(program, _code_end(program))
    except _Unrepresentable as problem:
        raise _input_error(program, problem) from None


def _decode_reason(image: bytes, end: int, address: int) -> str:
    try:
        isa.decode_at(image[:end], address)
    except isa.DecodeError as exc:
        if exc.reason.startswith("truncated") and address + isa.BY_CODE[image[address]].size <= len(image):
            return f"{exc.reason} (it runs into the data segment at 0x{end:x})"
        return f"{exc.reason} in the code region"
    return "undecodable bytes"  # pragma: no cover - only called after a failure


def _item_reason(image: bytes, address: int) -> str:
    if address + isa.DATA_HEADER_SIZE > len(image):
        return f"data item header needs {isa.DATA_HEADER_SIZE} bytes, only {len(image) - address} left"
    length = _U64.unpack_from(image, address + 1)[0]
    left = len(image) - address - isa.DATA_HEADER_SIZE
    return f"data item announces a {length}-byte payload, only {left} bytes left"


def _input_error(program: Program, problem: _Unrepresentable) -> InputError:
    return InputError(f"{program.path}: cannot disassemble to source: {problem.reason} "
                      f"at image offset {problem.address} (0x{problem.address:x}); "
                      f"'voxvm dis --listing' shows the raw bytes")


# --------------------------------------------------------------------------
# Literals

def float_literal(bits: int) -> str:
    """Source text for the binary64 ``bits`` that assembles back to the same bits.

    A decimal literal (shortest round trip, ``repr``) that always has a ``.``
    or is inf/nan, so upstream's float detection (§3.4 c 6) and the integer
    rule of ``fload`` (semantics.md §3.22) cannot misread it; NaNs that no
    decimal literal produces (payload, sign) become a ``0x`` bit pattern,
    which voxasm reads as raw IEEE bits in float positions.

    >>> float_literal(0x3FF8000000000000), float_literal(0x8000000000000000), float_literal(0x4341C37937E08000)
    ('1.5', '-0.0', '1.0e+16')
    >>> float_literal(0x7FF0000000000001)
    '0x7ff0000000000001'
    """
    raw = bits.to_bytes(8, "big")
    value = _F64.unpack(raw)[0]
    text = repr(value)
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    candidates = [text, "-nan"] if math.isnan(value) else [text]
    for candidate in candidates:
        if _F64.pack(float(candidate)) == raw:
            return candidate
    return f"0x{bits:016x}"


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _string_text(item: DataItem) -> str:
    if len(item.payload) % 2:
        raise _Unrepresentable(item.address, f"str item has an odd payload length {len(item.payload)}")
    try:
        text = item.payload.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise _Unrepresentable(item.address + isa.DATA_HEADER_SIZE + exc.start,
                               "str item holds a lone UTF-16 surrogate") from None
    newline = text.find("\n")
    if newline >= 0:
        raise _Unrepresentable(item.address, f"str item holds a line break at character {newline}, "
                                             "which no .vvs string literal can contain")
    return text


def _item_source(item: DataItem) -> str:
    """``[const] TYPE VALUE`` for an item (without its label)."""
    kind = item.type_byte & ~isa.DATA_CONST_BIT
    const = "const " if item.is_const else ""
    payload = item.payload
    if kind in _SCALAR_TYPES:
        if len(payload) != 8:
            raise _Unrepresentable(item.address, f"{_SCALAR_TYPES[kind]} item has a {len(payload)}-byte "
                                                 "payload (always 8 when assembled)")
        return f"{const}{_SCALAR_TYPES[kind]} {_element_text(kind, payload, 0)}"
    if kind in _ARRAY_TYPES:
        if len(payload) % 8 or not payload:
            raise _Unrepresentable(item.address, f"{_ARRAY_TYPES[kind]}[] item has a {len(payload)}-byte "
                                                 "payload (a positive multiple of 8 when assembled)")
        count = len(payload) // 8
        elements = ", ".join(_element_text(kind, payload, 8 * i) for i in range(count))
        return f"{const}{_ARRAY_TYPES[kind]}[{count}] [{elements}]"
    if kind == isa.DataType.STR:
        return f'{const}str "{_string_text(item)}"'
    raise _Unrepresentable(item.address, f"data item type byte 0x{item.type_byte:02x} is not an "
                                         "assemblable type")


def _element_text(kind: int, payload: bytes, at: int) -> str:
    raw = _U64.unpack_from(payload, at)[0]
    if kind in (isa.DataType.UINT, isa.DataType.UINT_ARRAY):
        return str(raw)
    if kind in (isa.DataType.INT, isa.DataType.INT_ARRAY):
        return str(_signed(raw))
    return float_literal(raw)


# --------------------------------------------------------------------------
# Names

@dataclass
class _Names:
    """Every name the printed source defines, unique across all kinds."""

    functions: dict[int, str]          # table index -> name
    labels: dict[int, str]             # code address -> label name
    data: dict[int, str]               # data offset -> data label name

    @classmethod
    def choose(cls, program: Program, targets: set[int], items: list[DataItem]) -> "_Names":
        taken: set[str] = set()

        def claim(name: str) -> str:
            unique, suffix = name, 1
            while unique in taken:
                unique, suffix = f"{name}_{suffix}", suffix + 1
            taken.add(unique)
            return unique

        # Names from the source (or its debug map) first, so that generated ones give way to them.
        symbols = program.symbols
        known = symbols.functions if symbols else {}
        functions = {index: claim(name) for index, name in sorted(known.items())
                     if index < len(program.functions) and _NAME.match(name)}
        source_labels: dict[int, str] = {}
        for name, address in sorted((symbols.labels if symbols else {}).items(), key=lambda x: (x[1], x[0])):
            if address in targets and address not in source_labels and _NAME.match(name) and name not in taken:
                source_labels[address] = claim(name)
        offsets = {item.offset for item in items}
        source_data: dict[int, str] = {}
        for name, offset in sorted((symbols.data if symbols else {}).items(), key=lambda x: (x[1], x[0])):
            if offset in offsets and offset not in source_data and _NAME.match(name) and name not in taken:
                source_data[offset] = claim(name)
        for index in range(len(program.functions)):
            if index not in functions:
                functions[index] = claim(f"f{index}")
        labels = {address: source_labels.get(address) or claim(f"L_{address:04x}") for address in sorted(targets)}
        data = {item.offset: source_data.get(item.offset) or claim(f"d{n}") for n, item in enumerate(items)}
        return cls(functions, labels, data)


# --------------------------------------------------------------------------
# Operands

def _operand_text(ins: isa.Decoded, position: int, names: _Names) -> str:
    """One operand in the assembler's syntax (raises _Unrepresentable if it has none)."""
    kind = ins.op.operands[position]
    value = ins.operands[position]
    if kind is isa.Operand.REG:
        if value >= isa.NUM_REGISTERS:
            raise _Unrepresentable(ins.address, f"{ins.op.mnemonic} uses register byte {value} "
                                                f"(registers are r0..r{isa.NUM_REGISTERS - 1})")
        return f"r{value}"
    if kind is isa.Operand.IMM_I64:
        return str(_signed(value))
    if kind is isa.Operand.IMM_F64:
        return float_literal(value)
    if kind is isa.Operand.IMM16:
        return f"0x{value:02x}"
    if kind is isa.Operand.ADDR:
        label = names.labels.get(value)
        return f"@{label}" if label else str(value)
    if kind is isa.Operand.FUNC:
        name = names.functions.get(value)
        return f"@{name}" if name else str(value)
    if kind is isa.Operand.EXC:
        try:
            return f"@{isa.EXC_SPELLING[isa.Exc(value)]}"
        except ValueError:
            return str(value)
    if kind is isa.Operand.DITEM:  # names a data item (upstream.md §2.7 "rel"): its label
        return names.data.get(value, str(value))
    return str(value)  # IMM_U64 and DADDR byte offsets


def _instruction_text(ins: isa.Decoded, names: _Names) -> str:
    operands = [_operand_text(ins, i, names) for i in range(len(ins.operands))]
    return " ".join([ins.op.mnemonic, *operands])


def _jump_targets(instructions: list[isa.Decoded]) -> set[int]:
    starts = {ins.address for ins in instructions}
    targets = set()
    for ins in instructions:
        for kind, value in zip(ins.op.operands, ins.operands):
            if kind is isa.Operand.ADDR and value in starts:
                targets.add(value)
    return targets


# --------------------------------------------------------------------------
# Source form

def _directives_at(program: Program, names: _Names) -> dict[int, list[str]]:
    """``func``, ``.start`` and ``label`` lines keyed by the address they precede."""
    at: dict[int, list[str]] = {}
    for index, address in enumerate(program.functions):
        at.setdefault(address, []).append(f"func {names.functions[index]}")
    at.setdefault(program.entry, []).append(".start")
    for address, label in sorted(names.labels.items()):
        at.setdefault(address, []).append(f"label {label}")
    return at


def _check_placeable(program: Program, instructions: list[isa.Decoded], code_end: int) -> None:
    """Functions, the entry point and an empty data section must sit where a line can put them."""
    places = {ins.address for ins in instructions} | {code_end}
    previous = -1
    for index, address in enumerate(program.functions):
        if address not in places:
            raise _Unrepresentable(address, f"function {index} does not start at an instruction")
        if address < previous:
            # Source order defines the indices (upstream.md §3.3), so addresses never decrease.
            raise _Unrepresentable(address, f"function {index} starts before function {index - 1} "
                                            "(the table is not in address order)")
        previous = address
    if program.entry not in places:
        raise _Unrepresentable(program.entry, "the entry point does not start an instruction")
    if program.data_base not in places and program.data_base != 0:
        raise _Unrepresentable(program.data_base, "the data base is neither the end of the code "
                                                  "nor an instruction start")


def _source(program: Program) -> str:
    """Try the plausible split of code and data first, then the other one."""
    first = _code_end(program)
    ends = [first]
    if 0 < program.data_base < len(program.image):
        ends.append(len(program.image) if first == program.data_base else program.data_base)
    problems = []
    for code_end in ends:
        try:
            return _source_for(program, code_end)
        except _Unrepresentable as problem:
            problems.append(problem)
    raise problems[0]


def _source_for(program: Program, code_end: int) -> str:
    if code_end == 0:
        # voxasm refuses a file without instructions (docs/vvs-language.md).
        raise _Unrepresentable(0, "the image holds data items but no instruction, "
                                  "and a .vvs file needs at least one")
    image = program.image
    instructions = _read_code(program, code_end)
    items = _read_items(program, code_end)
    _check_placeable(program, instructions, code_end)
    names = _Names.choose(program, _jump_targets(instructions), items)
    directives = _directives_at(program, names)
    data_at_end = code_end < len(image) or program.data_base == code_end
    if program.data_base and not data_at_end:
        # An empty data section between instructions: only its address is recorded.
        directives.setdefault(program.data_base, [])[:0] = ["section data", "section text"]

    # shown_name: a newline in the file's name would end the comment and put the rest of
    # the name on a line of its own, which the assembler would then read as source.
    lines = [f"; disassembled by voxvm dis from {shown_name(program.path)}", "section text"]
    for ins in instructions:
        lines += directives.pop(ins.address, [])
        lines.append(f"    {_instruction_text(ins, names)}")
    lines += directives.pop(code_end, [])
    assert not directives, directives  # _check_placeable guarantees it
    if data_at_end:
        lines.append("section data")
        for item in items:
            lines.append(f"    {names.data[item.offset]} {_item_source(item)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Listing form

def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


class SourceLines:
    """The ``[line]`` column of a listing (like ``luac -l``) and the source text beside it,
    when the program has symbols; the text only from the source file they were made from."""

    def __init__(self, program: Program, source_text: str | None) -> None:
        self.symbols = program.symbols
        self.text = source_text.split("\n") if source_text is not None else None
        self.note = None
        if self.symbols is not None and self.symbols.lines:
            where = self.symbols.source_path or "the source"
            self.note = (f"[line] and source text from {where}" if self.text is not None
                         else f"[line] of {where}")
        self._width = len(str(max(line for _, line in self.symbols.lines))) + 2 if self.symbols and self.symbols.lines else 0

    def column(self, address: int) -> str:
        if self.symbols is None or not self._width:
            return ""
        line = self.symbols.exact_line(address)
        if line is None:
            return " " * (self._width + 2)
        return f"{f'[{line}]':<{self._width}}  "

    def beside(self, address: int) -> str | None:
        if self.symbols is None or self.text is None:
            return None
        line = self.symbols.exact_line(address)
        if line is None or not 0 < line <= len(self.text):
            return None
        return self.text[line - 1].strip()


def _listing(program: Program, source_text: str | None = None) -> str:
    image = program.image
    code_end = _code_end(program)
    code = image[:code_end]
    # Linear sweep that steps over undecodable bytes one at a time.
    rows: list[tuple[int, isa.Decoded | None]] = []
    address = 0
    while address < code_end:
        try:
            ins = isa.decode_at(code, address)
        except isa.DecodeError:
            rows.append((address, None))
            address += 1
            continue
        rows.append((address, ins))
        address += ins.size
    instructions = [ins for _, ins in rows if ins is not None]
    items, bad_item = _parse_items(image, code_end)
    names = _Names.choose(program, _jump_targets(instructions), items)
    width = 3 * max((ins.size for ins in instructions), default=1)

    lines = [f"; {shown_name(program.path)}: {len(image)}-byte image, entry 0x{program.entry:x}, "
             f"data_base 0x{program.data_base:x}, {len(program.functions)} function(s)"]
    for index, address in enumerate(program.functions):
        lines.append(f";   function {index} {names.functions[index]} at 0x{address:x}")
    lines.append("section text")
    marks: dict[int, list[str]] = {}
    for index, address in enumerate(program.functions):
        marks.setdefault(address, []).append(f"func {names.functions[index]}:")
    marks.setdefault(program.entry, []).append(".start:")
    for address, label in names.labels.items():
        marks.setdefault(address, []).append(f"{label}:")
    source = SourceLines(program, source_text)
    if source.note:
        lines.append(f"; {source.note}")
    for address, ins in rows:
        lines += [f"          {mark}" for mark in marks.pop(address, [])]
        arrow = ">>" if address in names.labels else "  "
        if ins is None:
            reason = _decode_reason(image, code_end, address)
            lines.append(f"{arrow} {address:#07x}  {image[address]:02x}{' ' * (width - 2)}"
                         f"  ; .byte 0x{image[address]:02x}  ({reason})")
            continue
        text, notes = _listing_text(ins, names, program)
        beside = source.beside(address)
        if beside is not None and beside != text:     # the source says more (a comment, other spelling)
            notes.insert(0, f"| {beside}")
        note = f"  ; {'; '.join(notes)}" if notes else ""
        lines.append(f"{arrow} {address:#07x}  {_hex(image[address:address + ins.size]):<{width}}  "
                     f"{source.column(address)}{text}{note}")
    for address in sorted(marks):  # entry / functions at the end of the code or inside data
        lines += [f"          {mark}  ; at 0x{address:x}" for mark in marks[address]]

    if code_end < len(image) or program.data_base:
        lines.append(f"section data  ; data_base 0x{program.data_base:x}")
    for item in items:
        try:
            text = _item_source(item)
        except _Unrepresentable as exc:
            text = f"; type 0x{item.type_byte:02x}, {len(item.payload)} bytes: {exc.reason}"
        lines.append(f"   {item.address:#07x}  +{item.offset:<6} {source.column(item.address)}"
                     f"{names.data[item.offset]} {text}")
    if bad_item is not None:
        lines.append(f"   ; {_item_reason(image, bad_item)} at 0x{bad_item:x}; raw bytes follow")
        for start in range(bad_item, len(image), 16):
            chunk = image[start:start + 16]
            lines.append(f"   {start:#07x}  ; .byte {', '.join(f'0x{b:02x}' for b in chunk)}")
    return "\n".join(lines) + "\n"


def _listing_text(ins: isa.Decoded, names: _Names, program: Program) -> tuple[str, list[str]]:
    """The instruction as in the source form, plus notes for people."""
    operands, notes = [], []
    for position, (kind, value) in enumerate(zip(ins.op.operands, ins.operands)):
        try:
            operands.append(_operand_text(ins, position, names))
        except _Unrepresentable as exc:
            operands.append(f"r{value}" if kind is isa.Operand.REG else f"0x{value:016x}")
            notes.append(exc.reason)
            continue
        if kind is isa.Operand.ADDR:
            notes.append(f"to 0x{value:x}")
        elif kind is isa.Operand.FUNC:
            if value < len(program.functions):
                notes.append(f"-> 0x{program.functions[value]:x}")
            else:
                notes.append(f"function {value} does not exist")
    return " ".join([ins.op.mnemonic, *operands]), notes


def item_text(type_byte: int, payload: bytes, address: int = 0) -> str:
    """A data item's type and value as the source writes them (``uint[4] [3, 5, 7, 9]``), or a
    description when no source could (the debugger's ``print NAME``)."""
    item = DataItem(0, address, type_byte, payload)
    try:
        return _item_source(item)
    except _Unrepresentable as exc:
        return f"type 0x{type_byte:02x}, {len(payload)} bytes ({exc.reason})"


# --------------------------------------------------------------------------
# One instruction at a time (the trace, the debugger)

class InstructionNamer:
    """Renders single instructions with the program's own names (its symbols), as the trace
    shows them: labels and functions by name, data items by name, other addresses as numbers."""

    def __init__(self, program: Program) -> None:
        symbols = program.symbols
        labels = {a: n for n, a in sorted(symbols.labels.items(), reverse=True)} if symbols else {}
        data = {o: n for n, o in sorted(symbols.data.items(), reverse=True)} if symbols else {}
        functions = {i: program.function_name(i) for i in range(len(program.functions))}
        for index, address in enumerate(program.functions):
            labels.setdefault(address, functions[index])
        self._names = _Names(functions, labels, data)
        self._cache: dict[tuple[int, bytes], str] = {}

    def text(self, memory: bytes, address: int) -> str:
        """The instruction whose bytes ``memory`` holds at ``address`` (a slice from there is enough)."""
        key = (address, bytes(memory[:isa.MAX_SIZE]))
        found = self._cache.get(key)
        if found is not None:
            return found
        try:
            ins = isa.decode_at(key[1], 0)
        except isa.DecodeError as exc:
            text = f".byte 0x{key[1][0]:02x}  ({exc})" if key[1] else "(outside memory)"
        else:
            ins = ins._replace(address=address)
            operands = []
            for position, (kind, value) in enumerate(zip(ins.op.operands, ins.operands)):
                if kind is isa.Operand.ADDR and value not in self._names.labels:
                    operands.append(f"0x{value:x}")
                    continue
                try:
                    operands.append(_operand_text(ins, position, self._names))
                except _Unrepresentable:
                    operands.append(f"r{value}")
            text = " ".join([ins.op.mnemonic, *operands])
        if len(self._cache) < 1 << 16:
            self._cache[key] = text
        return text


# --------------------------------------------------------------------------

def disassemble(program: Program, listing: bool = False, source_text: str | None = None) -> str:
    """``.vvs`` source for ``program`` (or a listing with addresses and bytes).

    The source re-assembles to the identical ``.vve``; if no source can, this
    raises ``InputError`` naming the image offset of the first obstacle. With
    symbols, the listing shows each instruction's source line number, and
    ``source_text`` (the source file the symbols were made from) beside it.
    """
    if listing:
        return _listing(program, source_text)
    try:
        return _source(program)
    except _Unrepresentable as problem:
        raise _input_error(program, problem) from None
