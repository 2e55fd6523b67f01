"""Tags, exceptions and data-item types: the numbered kinds every layer shares.

Owns ``Tag`` (register and data-stack tags, semantics.md §2, with their
classes ``VALID_TAGS``, ``ADDRESS_LIKE_TAGS``, ``UINT_LIKE_TAGS``), ``Exc``
(the 11 voxvm exceptions, upstream.md §7, and their ``jexc`` spellings),
``DataType`` (data-segment item types, upstream.md §1.6), the register and
data-item constants and ``tag_name``, how messages name a tag. voxvm/isa.py re-exports all of it next to the opcode
table; a run imports this module alone, so it never builds that table
(start-up, docs/performance.md "Start-up"). tools/gen_isa.py writes these
numbers into the C core's ``vv_tables.h``.
"""

from __future__ import annotations

from .numbered import Numbered


class Tag(Numbered):
    """Register / data-stack / load-type tags (semantics.md §2), with their classes.

    Each member carries ``display_name`` (how messages name it) and
    ``address_like`` (StrAddr, address and ds_addr combine with a uint64 the
    way upstream's ``address`` kind does). The derived classes below
    (VALID_TAGS, ADDRESS_LIKE_TAGS, UINT_LIKE_TAGS) are what both backends and
    the trap messages use; tools/gen_isa.py writes them into the C core as
    bit masks, with static asserts on the numeric tricks the loop plays.
    """

    # value, display_name, address_like, meaning (docs/isa.md)
    _fields = ("display_name", "address_like", "meaning")
    U64 = 1, "uint64", False, "unsigned 64-bit integer"
    I64 = 2, "int64", False, "signed 64-bit integer"
    F64 = 3, "float64", False, "IEEE-754 binary64"
    STR = 4, "StrAddr", True, "main-memory address of a str payload (StrAddr)"
    ADDR = 8, "address", True, "heap address (a garbage-collector root)"
    DS_ADDR = 9, "ds_addr", True, "main-memory address from dslea / dsrlea / dlbc"

    @property
    def uint_like(self) -> bool:
        """uint64 or address-like: "== U(0)" can hold, arithmetic is unsigned."""
        return self is Tag.U64 or self.address_like


# The classes as sets of plain ints (what registers hold), for membership tests.
VALID_TAGS = frozenset(int(t) for t in Tag)
ADDRESS_LIKE_TAGS = frozenset(int(t) for t in Tag if t.address_like)
UINT_LIKE_TAGS = frozenset(int(t) for t in Tag if t.uint_like)


def tag_name(tag: int) -> str:
    """Human name of a register tag (semantics.md §2); ``tag N`` for a number that is none."""
    try:
        return Tag(tag).display_name
    except ValueError:
        return f"tag {tag}"


class Exc(Numbered):
    """The 11 voxvm exceptions (upstream.md §7) with their numbers."""

    ZeroDivision = 1
    HeapAllocationFault = 2
    HeapFreeFault = 3
    HeapWriteFault = 4
    HeapReadFault = 5
    NegativeSqrt = 6
    InvalidDataType = 7
    NativeFault = 8
    IncorrectRegType = 9
    HeapSegmFault = 10
    MainSegmFault = 11


# `@name` spellings accepted by `jexc` (case-insensitive; upstream.md §7).
EXC_NAMES: dict[str, Exc] = {
    "zero_division": Exc.ZeroDivision,
    "heap_allocation_fault": Exc.HeapAllocationFault,
    "heap_free_fault": Exc.HeapFreeFault,
    "heap_write_fault": Exc.HeapWriteFault,
    "heap_read_fault": Exc.HeapReadFault,
    "negative_sqrt": Exc.NegativeSqrt,
    "invaliddatatype": Exc.InvalidDataType,
    "nativefault": Exc.NativeFault,
    "incorrectregtype": Exc.IncorrectRegType,
    "heapsegmfault": Exc.HeapSegmFault,
    "mainsegmfault": Exc.MainSegmFault,
}
EXC_SPELLING: dict[Exc, str] = {exc: name for name, exc in EXC_NAMES.items()}


class DataType(Numbered):
    """Type byte of a data-segment item (low nibble; upstream.md §1.6)."""

    UINT = 1
    INT = 2
    FLOAT = 3
    STR = 4
    UINT_ARRAY = 6
    INT_ARRAY = 7
    FLOAT_ARRAY = 8

    @property
    def element(self) -> "DataType":
        """The scalar type of one element (an array's element type; a scalar is its own)."""
        return _ARRAY_ELEMENT.get(self, self)

    @property
    def tag(self) -> Tag:
        """The register tag `dsload` / `dsderef` give an element of this type (semantics.md §2)."""
        return _ELEMENT_TAG[self.element]


_ARRAY_ELEMENT = {DataType.UINT_ARRAY: DataType.UINT, DataType.INT_ARRAY: DataType.INT,
                  DataType.FLOAT_ARRAY: DataType.FLOAT}
_ELEMENT_TAG = {DataType.UINT: Tag.U64, DataType.INT: Tag.I64, DataType.FLOAT: Tag.F64, DataType.STR: Tag.STR}

DATA_CONST_BIT = 0x10
DATA_HEADER_SIZE = 9  # type byte + u64 BE payload length

NUM_REGISTERS = 32
PUSHALL_COUNT = 31  # r0..r30 (semantics.md §1)
