"""Number, float, register and name literals of ``.vvs`` source.

Owns what a single token may mean as a value: ``0x``/``0b``/decimal integers
everywhere a number is allowed, ``-`` only where the value is signed
(semantics.md §3 item 21), float syntax (Rust's ``f64`` grammar: ``1.5``,
``-2.``, ``.5``, ``1e5``, ``inf``, ``nan``), registers exactly ``r0``..``r31``
and symbol names. Every parser returns a Python int (floats as their IEEE-754
bits) or raises ``LiteralError`` with a message for the user.

The grammars are regular expressions, compiled on first use (``regex``): the
common spellings (decimal numbers, ``1.5``, ASCII identifiers) are read without
them, so assembling a typical file imports no ``re`` (docs/performance.md "The
assembler").
"""

from __future__ import annotations

import struct
TYPE_CHECKING = False     # typing costs start-up time (voxvm run FILE.vvs); annotations are strings
if TYPE_CHECKING:
    from typing import Callable

from voxvm.tags import NUM_REGISTERS

U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1


class LiteralError(ValueError):
    """A token that is not the value its position needs.

    ``hint`` may be a function, called only if the diagnostic is shown
    (voxasm.diagnostics.Diagnostic).
    """

    def __init__(self, message: str, hint: str | Callable[[], str | None] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


# `r0`..`r31`; the hot path is this dict lookup.
REGISTERS: dict[str, int] = {f"r{i}": i for i in range(NUM_REGISTERS)}

_PATTERNS = {
    # Integers: optional sign, then 0x hex, 0b binary or decimal (ASCII digits only).
    "int": r"([+-]?)(?:0[xX]([0-9A-Fa-f]+)|0[bB]([01]+)|([0-9]+))\Z",
    # Rust's f64 grammar (what upstream parses float tokens with); no `_`, no hex floats.
    "float": r"(?i)[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)\Z",
    # Names: a letter, `_`, `.` or `$` first, then word characters, `.`, `$`, `-`.
    "name": r"(?:[^\W\d]|[.$])[\w.$\-]*\Z",
    # A token: a maximal run of non-whitespace, where whitespace is what str.isspace() says
    # (as str.split() cuts; the re module's \s uses the same Unicode table).
    "token": r"\S+",
}
_COMPILED: dict = {}


def regex(name: str):
    """The compiled pattern ``name`` of ``_PATTERNS`` (compiled, and ``re`` imported, on first use)."""
    compiled = _COMPILED.get(name)
    if compiled is None:
        import re

        compiled = _COMPILED[name] = re.compile(_PATTERNS[name])
    return compiled


def _decimal_sign(token: str) -> tuple[bool, str] | None:
    """``(negative, digits)`` of ``[+-]?`` and ASCII decimal digits, else None (the fast path
    of the "int" pattern's decimal branch, without ``re``)."""
    digits = token[1:] if token[:1] in ("+", "-") else token
    if digits.isdigit() and digits.isascii():
        return token[:1] == "-", digits
    return None


def _plain_float(token: str) -> bool:
    """``[+-]?`` digits ``.`` digits (one side may be empty, not both): a spelling the
    "float" pattern accepts, recognised without ``re``."""
    body = token[1:] if token[:1] in ("+", "-") else token
    whole, dot, fraction = body.partition(".")
    return (bool(dot) and body.isascii() and bool(whole or fraction)
            and (not whole or whole.isdigit()) and (not fraction or fraction.isdigit()))

_F64 = struct.Struct(">d")
_Q = struct.Struct(">Q")


# Stands for any decimal literal with more than 40 significant digits: far
# outside every range, and never handed to int() (CPython refuses to convert
# more than 4300 digits).
TOO_BIG = 1 << 200


def decimal_value(digits: str) -> int:
    """``int(digits)`` for ASCII decimal digits; huge literals become ``TOO_BIG``."""
    if len(digits) > 40:
        digits = digits.lstrip("0") or "0"
        if len(digits) > 40:
            return TOO_BIG
    return int(digits)


def float_bits(value: float) -> int:
    """IEEE-754 binary64 bits of ``value`` as an unsigned int."""
    return _Q.unpack(_F64.pack(value))[0]


def is_name(token: str) -> bool:
    """Whether ``token`` can name a label, function or data item."""
    if token.isidentifier() and token.isascii():
        return True     # (an ASCII identifier matches the pattern: the common case, without re)
    return regex("name").match(token) is not None


def parse_register(token: str) -> int:
    """``r0``..``r31`` -> 0..31.

    Leading zeros (``r07``) are accepted because upstream assembles them to
    the same register; anything else is an error (upstream treated any token
    containing ``r`` as a register: semantics.md §3 item 21).
    """
    index = REGISTERS.get(token)
    if index is not None:
        return index
    if token[:1] == "r" and token[1:].isascii() and token[1:].isdigit():
        index = decimal_value(token[1:])
        if index < NUM_REGISTERS:
            return index
        raise LiteralError(f"no register {show_token(token)}: registers are r0..r31")
    if token[:1] == "R" and token[1:].isascii() and token[1:].isdigit():
        raise LiteralError(f"expected a register, found {show_token(token)}",
                           f"registers are written in lowercase: {show_token('r' + token[1:])}")
    raise LiteralError(f"expected a register (r0..r31), found {show_token(token)}")


def show_token(token: str) -> str:
    """A token for a message: quoted, unprintable characters escaped, huge ones abbreviated."""
    suffix = ""
    if len(token) > 40:
        suffix = f" ({len(token)} characters)"
        token = token[:24] + "..." + token[-8:]
    return (f"'{token}'" if token.isprintable() else repr(token)) + suffix


def _match_int(token: str) -> tuple[bool, int] | None:
    """(negative, magnitude) of an integer literal, or None if it is not one."""
    decimal = _decimal_sign(token)
    if decimal is not None:
        return decimal[0], decimal_value(decimal[1])
    body = token[1:] if token[:1] in ("+", "-") else token
    if body[:2] not in ("0x", "0X", "0b", "0B"):
        return None     # (what else the pattern takes starts so: no need to import re)
    m = regex("int").match(token)
    if m is None:
        return None
    sign, hexa, binary, dec = m.groups()
    if hexa is not None:
        value = int(hexa, 16)
    elif binary is not None:
        value = int(binary, 2)
    else:
        value = decimal_value(dec)
    return sign == "-", value


def _not_a_number(token: str, what: str) -> LiteralError:
    hint = None
    if token.startswith("@"):
        hint = "'@name' is only allowed for jump targets, functions and exceptions"
    elif "_" in token and _match_int(token.replace("_", "")) is not None:
        hint = "digit separators '_' are not allowed"
    elif token.lower().startswith(("0x", "0b")):
        hint = "hex digits are 0-9 a-f, binary digits 0 and 1"
    return LiteralError(f"expected {what}, found {show_token(token)}", hint)


def parse_uint(token: str, what: str = "an unsigned integer", limit: int = U64_MAX) -> int:
    """An unsigned integer literal in 0..limit (``+`` allowed, ``-`` not)."""
    if token.isdigit() and token.isascii():
        value = decimal_value(token)
    else:
        parsed = _match_int(token)
        if parsed is None:
            raise _not_a_number(token, what)
        negative, value = parsed
        if negative and value:
            raise LiteralError(f"expected {what}, found the negative number {show_token(token)}",
                               "only iload, fload and int/float data accept a sign")
    if value > limit:
        raise LiteralError(f"{show_token(token)} is too large for {what} (0..{limit})")
    return value


def parse_int(token: str, what: str = "a signed 64-bit integer") -> int:
    """A signed integer literal in the i64 range, as a Python int."""
    parsed = _match_int(token)
    if parsed is None:
        raise _not_a_number(token, what)
    negative, value = parsed
    value = -value if negative else value
    if not I64_MIN <= value <= I64_MAX:
        raise LiteralError(f"{show_token(token)} does not fit in {what} "
                           f"({I64_MIN}..{I64_MAX})")
    return value


def parse_float(token: str, what: str = "a float") -> int:
    """A float operand or data value, as IEEE bits (semantics.md §3 item 22).

    Float syntax and decimal integers give that number as a float (``2`` is
    2.0); an unsigned ``0x``/``0b`` literal is the raw bit pattern, which keeps
    upstream's meaning of ``fload r1 0x3FF0000000000000`` (= 1.0).
    """
    parsed = _match_int(token)
    if parsed is not None:
        negative, value = parsed
        lowered = token.lstrip("+-").lower()
        if lowered.startswith(("0x", "0b")):
            if negative:
                raise LiteralError(f"a float bit pattern cannot have a sign: {show_token(token)}",
                                   "write the negative float in decimal, e.g. -1.5")
            if value > U64_MAX:
                raise LiteralError(f"{show_token(token)} is not a 64-bit float bit pattern (more than 64 bits)")
            return value
        # float() of the text rounds correctly (and gives inf past the range,
        # like Rust's parse) where float() of a huge int would raise.
        return float_bits(float(token))
    if not _plain_float(token) and regex("float").match(token) is None:
        raise _not_a_number(token, what)
    return float_bits(float(token))


def parse_imm_float_compat(token: str) -> int | None:
    """Upstream compatibility: a token containing ``.`` is an f64 for any 8-byte immediate.

    Upstream encodes ``uload r1 1.5`` as the bits of 1.5 (upstream.md §3.4 (c) 6);
    returns those bits, or None if the token is not such a float.
    """
    if "." in token and (_plain_float(token) or regex("float").match(token) is not None):
        return parse_float(token)
    return None
