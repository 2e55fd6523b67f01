"""Data-segment items: ``NAME [const] TYPE VALUE`` lines -> item bytes.

Owns the item syntax of upstream.md §3.7 with semantics.md §3 item 21's fixes:
scalars ``uint``/``int``/``float``, ``str`` (text between the first and the
last ``"`` on the line, verbatim, UTF-16BE with surrogate pairs for non-BMP
characters), arrays ``uint[N]``/``int[N]``/``float[N]`` written ``[a, b, c]``
or ``!zeros=K`` (with or without ``const``). An item is
``type byte (| 0x10 if const) | u64 BE payload length | payload`` (§1.6).
Columns in ``ItemError`` and warnings are 0-based indices into the line.
"""

from __future__ import annotations

import struct

from voxvm.tags import DATA_CONST_BIT, DataType

from .literals import (
    U64_MAX,
    LiteralError,
    decimal_value,
    is_name,
    parse_float,
    parse_int,
    parse_uint,
    show_token,
)
from .source import Split, token_spans

# A single item may not exceed this payload (a typo in !zeros= must not eat the host's memory).
MAX_ITEM_PAYLOAD = 1 << 28
# Nor may the payloads of all items together: a few !zeros= lines at the item
# limit would otherwise ask for gigabytes (docs/reliability.md, findings).
MAX_DATA_PAYLOAD = 1 << 28


class ItemError(Exception):
    """A data line that cannot be encoded: 0-based ``column``, ``length`` to underline."""

    def __init__(self, column: int, length: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.length = length
        self.message = message
        self.hint = hint


class DataItem:
    """One encoded item; ``warnings`` are (column, length, message) triples."""

    __slots__ = ("name", "name_column", "encoded", "warnings")

    def __init__(self, name: str, name_column: int, encoded: bytes,
                 warnings: list[tuple[int, int, str]] | None = None) -> None:
        self.name = name
        self.name_column = name_column
        self.encoded = encoded
        self.warnings: list[tuple[int, int, str]] = [] if warnings is None else warnings


def _uint(token: str) -> int:
    return parse_uint(token, "an unsigned 64-bit number")


def _int(token: str) -> int:
    return parse_int(token) & U64_MAX


def _float(token: str) -> int:
    return parse_float(token, "a float")


# TYPE token -> (type byte, element converter to an unsigned 64-bit word)
SCALARS = {"uint": (DataType.UINT, _uint), "int": (DataType.INT, _int),
           "float": (DataType.FLOAT, _float)}
ARRAYS = {"uint": (DataType.UINT_ARRAY, _uint), "int": (DataType.INT_ARRAY, _int),
          "float": (DataType.FLOAT_ARRAY, _float)}
TYPE_NAMES = ["uint", "int", "float", "str", "uint[N]", "int[N]", "float[N]"]

_ZEROS = "!zeros="
_HEADER = struct.Struct(">BQ")
_VALUE = struct.Struct(">Q")
ITEM_HEADER_SIZE = _HEADER.size      # type byte + u64 payload length


def array_type(word: str) -> tuple[str, str] | None:
    """``(element type, declared count)`` of an array type ``uint|int|float[DIGITS]`` (ASCII
    digits, maybe none), or None."""
    element, bracket, rest = word.partition("[")
    count = rest[:-1]
    if (bracket and element in ARRAYS and rest[-1:] == "]"
            and (not count or count.isdigit() and count.isascii())):
        return element, count
    return None


def looks_like_item(tokens: list[str]) -> bool:
    """Whether a line's tokens read as a data item (used for hints in a text section)."""
    if len(tokens) < 2:
        return False
    word = tokens[2] if tokens[1] == "const" and len(tokens) > 2 else tokens[1]
    return word == "str" or word in SCALARS or array_type(word) is not None


def parse_item(split: Split) -> DataItem:
    """Encode the data line whose comment-free code and string position are ``split``."""
    code, q1, q2 = split
    item = _simple_item(code, q1, q2)
    if item is not None:
        return item
    head = code if q1 < 0 else code[:q1]
    # name, const, type and two values are all a data line ever looks at (an array's
    # elements are read from the text below, not from tokens).
    spans = token_spans(head, 5)
    if not spans:               # the line starts with a string literal: no name, no type
        raise ItemError(q1, max(1, q2 - q1 + 1) if q2 >= 0 else 1,
                        "a data item needs a name and a type before its value",
                        'for example: greeting str "hello"')
    name_column, name = spans[0]
    if not is_name(name):
        raise ItemError(name_column, len(name), f"{show_token(name)} is not a valid data item name",
                        "names start with a letter, '_', '.' or '$'")
    i = 1
    const = False
    if len(spans) > 1 and spans[1][1] == "const":
        const, i = True, 2
    if len(spans) <= i:
        column = q1 if q1 >= 0 else len(code.rstrip())
        raise ItemError(column, 1, f"data item {show_token(name)} needs a type (" + ", ".join(TYPE_NAMES) + ")")
    type_column, type_token = spans[i]
    values = spans[i + 1:]
    item = DataItem(name, name_column, b"")
    if type_token == "str":
        payload = _string_payload(code, q1, q2, values, item)
        type_byte = DataType.STR
    elif q1 >= 0:
        raise ItemError(q1, 1, f"a {type_token} item takes no string literal",
                        "only 'str' items take text in double quotes")
    elif type_token in SCALARS:
        type_byte, convert = SCALARS[type_token]
        if not values:
            raise ItemError(len(code.rstrip()), 1, f"data item {show_token(name)} needs a {type_token} value")
        column, token = values[0]
        try:
            payload = struct.pack(">Q", convert(token))
        except LiteralError as exc:
            raise ItemError(column, len(token), exc.message, exc.hint) from None
        if len(values) > 1:
            item.warnings.append((values[1][0], len(code.rstrip()) - values[1][0],
                                  "text after the value is ignored (start comments with ';' or '#')"))
    else:
        shape = array_type(type_token)
        if shape is None:
            import difflib  # (only for a suggestion: not on the import path)
            close = difflib.get_close_matches(type_token, ["uint", "int", "float", "str"], n=1)
            raise ItemError(type_column, len(type_token), f"unknown data type {show_token(type_token)}",
                            f"did you mean '{close[0]}'?" if close else "types: " + ", ".join(TYPE_NAMES))
        element, declared = shape
        type_byte, convert = ARRAYS[element]
        payload = _array_payload(code, type_column, type_token, declared, values, convert, item)
    if const:
        type_byte |= DATA_CONST_BIT
    item.encoded = _HEADER.pack(type_byte, len(payload)) + payload
    return item


def _simple_item(code: str, q1: int, q2: int) -> DataItem | None:
    """The common items (``NAME [const] uint|int|float VALUE``, ``NAME [const] str "..."``)
    that are right and draw no warning, encoded without token columns; None for
    anything else, which ``parse_item`` reads in full (and reports)."""
    head = code if q1 < 0 else code[:q1]
    parts = head.split(None, 4)
    count = len(parts)
    const = count > 1 and parts[1] == "const"
    if q1 < 0:
        if count != 3 + const:
            return None
        scalar = SCALARS.get(parts[-2])
        if scalar is None:
            return None
        try:
            payload = _VALUE.pack(scalar[1](parts[-1]))
        except LiteralError:
            return None
        type_byte = scalar[0]
    else:
        if count != 2 + const or parts[-1] != "str" or q2 < 0 or code[q2 + 1:].strip():
            return None
        try:
            payload = code[q1 + 1:q2].encode("utf-16-be")
        except UnicodeEncodeError:
            return None
        type_byte = DataType.STR
    if not is_name(parts[0]):
        return None
    if const:
        type_byte |= DATA_CONST_BIT
    return DataItem(parts[0], len(head) - len(head.lstrip()),
                    _HEADER.pack(type_byte, len(payload)) + payload)


def _string_payload(code: str, q1: int, q2: int, values, item: DataItem) -> bytes:
    if values:
        column, token = values[0]
        raise ItemError(column, len(token), f"expected a string in double quotes, found {show_token(token)}")
    if q1 < 0:
        raise ItemError(len(code.rstrip()), 1, f"str item {show_token(item.name)} needs its text in double quotes")
    if q2 < 0:
        raise ItemError(q1, 1, "unterminated string (no closing '\"' on this line)",
                        "a string ends at the last '\"' of its line")
    trailing = code[q2 + 1:]
    if trailing.strip():
        start = q2 + 1 + (len(trailing) - len(trailing.lstrip()))
        item.warnings.append((start, len(trailing.strip()),
                              "text after the string is ignored (start comments with ';' or '#')"))
    try:
        # UTF-16BE: non-BMP characters become surrogate pairs (semantics.md §3 item 21).
        return code[q1 + 1:q2].encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise ItemError(q1 + 1 + exc.start, 1, "the string contains a lone surrogate code point") from None


def _array_payload(code: str, type_column: int, type_token: str, declared: str,
                   values, convert, item: DataItem) -> bytes:
    if not values:
        raise ItemError(type_column + len(type_token), 1,
                        f"{type_token} item {show_token(item.name)} needs elements: '[1, 2, 3]' or '!zeros=K'")
    start = values[0][0]
    rest = code[start:].rstrip()
    if rest.startswith(_ZEROS):
        token = values[0][1]
        try:
            count = parse_uint(token[len(_ZEROS):], "an element count")
        except LiteralError as exc:
            raise ItemError(start + len(_ZEROS), max(len(token) - len(_ZEROS), 1), exc.message, exc.hint) from None
        if count == 0:
            raise ItemError(start, len(token), "an array needs at least one element")
        if count * 8 > MAX_ITEM_PAYLOAD:
            raise ItemError(start, len(token), f"{count} elements is too large for one data item "
                            f"(at most {MAX_ITEM_PAYLOAD // 8})")
        if len(values) > 1:
            item.warnings.append((values[1][0], len(rest) - (values[1][0] - start),
                                  "text after '!zeros=' is ignored (start comments with ';' or '#')"))
        _check_declared(declared, count, type_column, type_token, item)
        return bytes(8 * count)
    if not rest.startswith("["):
        token = values[0][1]
        raise ItemError(start, len(token), f"expected '[' to start the elements, found {show_token(token)}",
                        "arrays are written '[1, 2, 3]' or '!zeros=K'")
    close = rest.find("]")
    if close < 0:
        raise ItemError(start, len(rest), "missing ']' at the end of the elements")
    inner = rest[1:close]
    trailing = rest[close + 1:]
    if trailing.strip():
        t0 = start + close + 1 + (len(trailing) - len(trailing.lstrip()))
        item.warnings.append((t0, len(trailing.strip()),
                              "text after ']' is ignored (start comments with ';' or '#')"))
    if not inner.strip():
        raise ItemError(start, close + 1, "an array needs at least one element")
    words = bytearray()           # big-endian, 8 bytes an element (not a Python int and a list slot)
    position = start + 1
    for piece in _pieces(inner):
        element = piece.strip()
        column = position + (len(piece) - len(piece.lstrip()))
        position += len(piece) + 1
        if not element:
            raise ItemError(column, 1, "missing array element (two commas in a row, or a trailing comma)")
        if any(ch.isspace() for ch in element):
            raise ItemError(column, len(element), f"expected ',' between array elements in {show_token(element)}")
        try:
            words += _VALUE.pack(convert(element))
        except LiteralError as exc:
            raise ItemError(column, len(element), exc.message, exc.hint) from None
    _check_declared(declared, len(words) // 8, type_column, type_token, item)
    return bytes(words)


def _pieces(text: str):
    """The comma-separated pieces of ``text``, one at a time (no list of a million strings)."""
    begin = 0
    while True:
        comma = text.find(",", begin)
        if comma < 0:
            yield text[begin:]
            return
        yield text[begin:comma]
        begin = comma + 1


def _check_declared(declared: str, count: int, column: int, token: str, item: DataItem) -> None:
    """Upstream ignores N in ``uint[N]``; a mismatch is worth a warning, not an error."""
    if declared and decimal_value(declared) != count:
        item.warnings.append((column, len(token),
                              f"{show_token(token)} declares {show_token(declared.lstrip('0') or '0')} elements but {count} are given "
                              f"(the item holds {count}; the number in brackets is not used)"))
