"""Value semantics shared by the pure-Python backend, the natives and the tools.

Owns the meaning of a register value ``(bits, tag)`` (semantics.md §2): the
conversion helpers of upstream.md §1.2 (``as_u64``/``as_i64``/``as_f64``, all
saturating for floats), two's-complement and IEEE bit casts, the C/Rust float
operations Python does not offer directly (IEEE division by zero, ``fmod``
with NaN instead of an error, C ``pow``), Rust ``Display`` formatting of
``f64`` (used by ``print``, upstream.md §8.1) and lenient/strict UTF-16BE text
helpers. Pure functions, no state; imports only the standard library and
voxvm/tags.py.
"""

from __future__ import annotations

import math
import struct

from .tags import ADDRESS_LIKE_TAGS, Tag, tag_name

__all__ = [
    "MASK64", "INT64_MIN", "INT64_MAX", "ADDRESS_TAGS",
    "to_signed", "to_bits", "f64_from_bits", "bits_from_f64",
    "f64_to_u64", "f64_to_i64", "as_u64", "as_i64", "as_f64", "value_of",
    "ieee_div", "c_fmod", "c_pow", "c_sqrt", "format_f64", "format_value", "DEFAULT_NAN",
    "decode_utf16be", "tag_name",
]

MASK64 = (1 << 64) - 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
TWO64 = 1 << 64

# StrAddr, address and ds_addr behave like upstream's `address` kind when they
# meet a uint64 (semantics.md §2): the address-like class of voxvm.isa.Tag.
ADDRESS_TAGS = ADDRESS_LIKE_TAGS

# The NaN the FPU produces for an invalid operation (0/0, inf-inf, fmod(x, 0),
# sqrt(-1)): 0xFFF8000000000000 on x86-64. Computed, not spelled, so that this
# backend produces the same bits as C code on whatever machine runs it; Python
# raises where C returns this NaN, so the helpers below substitute it.
DEFAULT_NAN = math.inf - math.inf

_F64 = struct.Struct(">d")
_U64 = struct.Struct(">Q")


def to_signed(bits: int) -> int:
    """Reinterpret 64 unsigned bits as an int64."""
    return bits - TWO64 if bits & (1 << 63) else bits


def to_bits(value: int) -> int:
    """Any Python int wrapped to 64 bits (two's complement)."""
    return value & MASK64


def f64_from_bits(bits: int) -> float:
    return _F64.unpack(_U64.pack(bits))[0]


def bits_from_f64(x: float) -> int:
    return _U64.unpack(_F64.pack(x))[0]


def f64_to_u64(x: float) -> int:
    """Rust ``x as u64``: truncate toward zero, NaN -> 0, saturate to [0, 2^64-1]."""
    if math.isnan(x) or x <= 0.0:
        return 0
    if x >= 18446744073709551616.0:
        return MASK64
    return int(x)


def f64_to_i64(x: float) -> int:
    """Rust ``x as i64``: truncate toward zero, NaN -> 0, saturate to [-2^63, 2^63-1]."""
    if math.isnan(x):
        return 0
    if x >= 9223372036854775808.0:
        return INT64_MAX
    if x <= -9223372036854775808.0:
        return INT64_MIN
    return int(x)


def as_u64(bits: int, tag: int) -> int:
    """Upstream §1.2 ``as_u64`` of a register: the unsigned 64-bit reading of the value."""
    if tag == Tag.F64:
        return f64_to_u64(f64_from_bits(bits))
    return bits  # uint, address-like: the payload; int64: its two's-complement bits


def as_i64(bits: int, tag: int) -> int:
    """Upstream §1.2 ``as_i64``: the signed reading (a Python int in int64 range)."""
    if tag == Tag.F64:
        return f64_to_i64(f64_from_bits(bits))
    return to_signed(bits)


def as_f64(bits: int, tag: int) -> float:
    """Upstream §1.2 ``as_f64``: numeric conversion (round to nearest even), or the float itself."""
    if tag == Tag.F64:
        return f64_from_bits(bits)
    if tag == Tag.I64:
        return float(to_signed(bits))  # Python's int -> float is correctly rounded
    return float(bits)


def value_of(bits: int, tag: int) -> int | float:
    """The natural Python value of a register: int for integer-like tags, float for float64."""
    if tag == Tag.F64:
        return f64_from_bits(bits)
    if tag == Tag.I64:
        return to_signed(bits)
    return bits


def ieee_div(a: float, b: float) -> float:
    """IEEE-754 division: x/0 is +-inf (or NaN for 0/0 and NaN/0), never an error."""
    if b != 0.0 or math.isnan(b):
        return a / b
    if math.isnan(a):
        return a + b                 # a NaN operand propagates (quieted, as the FPU does)
    if a == 0.0:
        return DEFAULT_NAN
    negative = (math.copysign(1.0, a) < 0) != (math.copysign(1.0, b) < 0)
    return -math.inf if negative else math.inf


def c_fmod(a: float, b: float) -> float:
    """C ``fmod`` (Rust ``%`` on f64): sign of the dividend; x % 0, inf % y and NaN give NaN."""
    try:
        return math.fmod(a, b)
    except ValueError:  # b == 0 or a infinite (NaN operands do not raise: they propagate)
        return DEFAULT_NAN


def c_sqrt(x: float) -> float:
    """C ``sqrt``: the invalid-operation NaN for x < 0 (Python raises), -0.0 stays -0.0."""
    return math.sqrt(x) if not x < 0.0 else DEFAULT_NAN


def _is_signaling(x: float) -> bool:
    """A NaN whose quiet bit (bit 51) is clear."""
    bits = bits_from_f64(x)
    return (bits >> 52) & 0x7FF == 0x7FF and bits & ((1 << 52) - 1) != 0 and not bits & (1 << 51)


def _is_odd_integer(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and math.fmod(y, 2.0) != 0.0


def _nan_sum(x: float, y: float) -> float:
    """glibc's ``x + y`` with a NaN operand, as the compiled core gets it: the first NaN,
    quieted. (Python's own ``x + y`` may take the second when both are NaN: the C compiler
    that built CPython is free to swap the operands of an addition.)"""
    for value in (x, y):
        if math.isnan(value):
            return f64_from_bits(bits_from_f64(value) | 0x0008000000000000)
    return x + y


def c_pow(x: float, y: float) -> float:
    """C ``pow`` (Rust ``powf``), with the IEEE results where Python's math.pow raises.

    NaN operands follow glibc's pow exactly, so that the NaN's sign and payload
    bits equal the compiled core's: ``pow(x, ±0) = pow(1, y) = 1`` unless the
    other operand is a signaling NaN (then ``x + y``); a NaN with a
    zero, infinite or NaN exponent gives ``x + y``; a NaN base with a finite
    exponent gives ``x * x``, negated for a negative base and an odd integer
    exponent, inverted for a negative exponent.
    """
    if y == 0.0:
        return _nan_sum(x, y) if _is_signaling(x) else 1.0
    if x == 1.0:
        return _nan_sum(x, y) if _is_signaling(y) else 1.0
    if math.isnan(x) or math.isnan(y):
        if not math.isfinite(y):
            return _nan_sum(x, y)
        square = x * x
        if math.copysign(1.0, x) < 0 and _is_odd_integer(y):
            square = -square
        return 1.0 / square if y < 0 else square
    try:
        return math.pow(x, y)
    except OverflowError:
        return -math.inf if x < 0 and _is_odd_integer(y) else math.inf
    except ValueError:
        if x == 0.0:  # 0 ** negative: pole
            return -math.inf if math.copysign(1.0, x) < 0 and _is_odd_integer(y) else math.inf
        return DEFAULT_NAN  # negative base, non-integer exponent


def format_f64(x: float) -> str:
    """Rust ``Display`` for f64: shortest round-trip digits, never an exponent.

    >>> [format_f64(v) for v in (1.0, -0.0, 0.1, 1e21, 1e-7, float("nan"), float("-inf"))]
    ['1', '-0', '0.1', '1000000000000000000000', '0.0000001', 'NaN', '-inf']
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = repr(x)  # shortest round-trip digits, maybe with an exponent
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)  # decimal point position in digits
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if not digits:
        return sign + "0"
    if len(digits) >= 16 and digits[-1] in "02468":
        digits, point = _round_tie_up(abs(x), digits, point)
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _round_tie_up(x: float, digits: str, point: int) -> tuple[str, int]:
    """Rust's choice where ``repr``'s differs (docs/semantics.md §10): ``repr`` breaks an exact tie
    between two shortest digit strings towards the even one, Rust towards the one farther
    from zero. Only strings of 16 or 17 digits can tie (the two candidates must be closer
    together than the double's spacing), and only an even last digit can be ``repr``'s pick.
    """
    num, den = x.as_integer_ratio()
    scale = point - len(digits)               # digits * 10^scale is repr's value
    twice_mid = 2 * int(digits) + 1           # the midpoint between digits and digits + 1, doubled
    if scale >= 0:
        tie = 2 * num == twice_mid * 10 ** scale * den
    else:
        tie = 2 * num * 10 ** -scale == twice_mid * den
    if not tie:
        return digits, point
    up = str(int(digits) + 1)
    if float(f"{up}e{point - len(digits)}") != x:  # the other candidate does not read back as x
        return digits, point
    if len(up) > len(digits):                  # 99..9 + 1: one more power of ten
        point += 1
    return up.rstrip("0"), point


def format_value(bits: int, tag: int) -> str:
    """A register value for people (dumps, debugging): ``uint64 42``, ``float64 2.5``..."""
    name = tag_name(tag)
    if tag == Tag.U64:
        return f"{name} {bits}"
    if tag == Tag.I64:
        return f"{name} {to_signed(bits)}"
    if tag == Tag.F64:
        return f"{name} {format_f64(f64_from_bits(bits))}"
    return f"{name} 0x{bits:x}"


def decode_utf16be(data: bytes) -> str | None:
    """Strict UTF-16BE text (Rust ``String::from_utf16``), or None if a surrogate is unpaired.

    A trailing odd byte is dropped, as upstream does (upstream.md §0).
    """
    if len(data) % 2:
        data = data[:-1]
    try:
        return data.decode("utf-16-be")
    except UnicodeDecodeError:
        return None
