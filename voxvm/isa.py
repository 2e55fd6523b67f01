"""The voxvm instruction set: the one hand-written source of truth.

Owns the opcode table (numbers, mnemonics, operand classes, sizes, one-line
semantics, property flags) and the operand decoder shared by the disassembler
and the pure-Python backend; it re-exports voxvm/tags.py (the register type
tags, the exception table, data-item types), which a run imports alone.
The assembler, the disassembler and the reference backend read it at import
time; ``docs/isa.md`` and the compiled core's C header
(``voxvm/backends/compiled/csrc/vv_tables.h``) are generated from it by
``tools/gen_isa.py`` and checked for freshness by ``tests/isa/test_isa.py``.
Imports nothing from voxvm but voxvm.tags.

Numbers, mnemonics, sizes and encodings are upstream voxvm v8.03's
(upstream.md §2, §3.10); every multi-byte operand is big-endian.
"""

from __future__ import annotations

import enum
import struct
from collections import namedtuple

from .tags import (  # noqa: F401  (re-exported: the ISA's tags, exceptions and data types)
    ADDRESS_LIKE_TAGS, DATA_CONST_BIT, DATA_HEADER_SIZE, EXC_NAMES, EXC_SPELLING, NUM_REGISTERS,
    PUSHALL_COUNT, UINT_LIKE_TAGS, VALID_TAGS, DataType, Exc, Tag)


class Operand(enum.Enum):
    """Operand classes. ``width`` is the encoded size in bytes."""

    REG = ("reg", 1, "register r0..r31")
    IMM_U64 = ("imm64u", 8, "unsigned 64-bit immediate")
    IMM_I64 = ("imm64i", 8, "signed 64-bit immediate (two's complement)")
    IMM_F64 = ("imm64f", 8, "IEEE-754 binary64 immediate")
    IMM16 = ("imm16", 2, "16-bit native call code")
    ADDR = ("addr", 8, "absolute code address (@label)")
    FUNC = ("func", 8, "function-table index (@function)")
    EXC = ("exc", 8, "exception number (@exception_name)")
    # A data-segment operand is one of two kinds: the item it names (upstream
    # §2.7 "rel": the decoder adds data_base, the disassembler prints the
    # item's label) or a byte offset (added to an item or an address as is).
    DITEM = ("ditem", 8, "data item: its data-segment offset (bare data label or number)")
    DADDR = ("daddr", 8, "data-segment byte offset (bare data label or number)")

    def __init__(self, short: str, width: int, description: str) -> None:
        self.short = short
        self.width = width
        self.description = description


class Flag(enum.Flag):
    """Properties of an opcode used by tools (disassembler labels, docs, loop)."""

    NONE = 0
    JUMP = enum.auto()          # may transfer control to an ADDR operand
    COND = enum.auto()          # ... only when a condition holds
    INDIRECT = enum.auto()      # target comes from a register (jmpr, callr)
    CALL = enum.auto()
    RETURN = enum.auto()
    HALT = enum.auto()
    NATIVE = enum.auto()        # leaves the dispatch loop for host code
    HEAP = enum.auto()          # touches the heap
    ALLOCATES = enum.auto()     # may trigger a garbage collection
    WRITES_MEMORY = enum.auto() # modifies or extends main memory (re-decode)
    SETS_FLAGS = enum.auto()
    READS_FLAGS = enum.auto()
    RAISES = enum.auto()        # may append to the pending-exception list
    DATA = enum.auto()          # data-segment family: voxasm ignores extra operand tokens (upstream.md §3.4(b))


R, U64, I64, F64, I16 = Operand.REG, Operand.IMM_U64, Operand.IMM_I64, Operand.IMM_F64, Operand.IMM16
ADDR, FUNC, EXC, DITEM, DADDR = Operand.ADDR, Operand.FUNC, Operand.EXC, Operand.DITEM, Operand.DADDR
F = Flag


class Op(namedtuple("Op", "code mnemonic operands semantics flags", defaults=(Flag.NONE,))):
    """One opcode row: ``code``, ``mnemonic``, ``operands`` (a tuple of Operand),
    ``semantics`` (the table's text) and ``flags`` (Flag).

    A namedtuple, not a dataclass: the dataclass machinery costs more start-up
    time than a whole small run (docs/performance.md "Start-up").
    """

    __slots__ = ()

    @property
    def size(self) -> int:
        """Encoded size in bytes: opcode byte plus operand widths."""
        return 1 + sum(o.width for o in self.operands)

    @property
    def const_name(self) -> str:
        """Name of the generated C constant, e.g. ``OP_UADD``."""
        return "OP_" + self.mnemonic.upper()


# fmt: off
# Notation: R[x] register x, T[x] its type tag, `generic` = kind-dispatched
# arithmetic of semantics.md §2 / upstream.md §1.3, EXC(X) appends exception X.
OPS: tuple[Op, ...] = (
    Op(0x01, "ncall",  (I16, R), "run built-in native or FFI function CODE (register byte ignored)", F.NATIVE | F.RAISES),
    Op(0x02, "nop",    (), "do nothing, advance by 1 (semantics.md §3.1)"),
    Op(0xFF, "halt",   (), "stop the program normally", F.HALT),

    Op(0x10, "uload",  (R, U64), "R[d] := U(imm)"),
    Op(0x11, "uadd",   (R, R), "R[d] := R[d] + R[s] (generic)"),
    Op(0x12, "umul",   (R, R), "R[d] := R[d] * R[s] (generic)"),
    Op(0x13, "usub",   (R, R), "R[d] := R[d] - R[s] (generic); ZF := result == U(0)", F.SETS_FLAGS),
    Op(0x14, "udiv",   (R, R, R), "R[d] := R[a] / R[b] (generic); b == 0: EXC(ZeroDivision), d unchanged", F.RAISES),
    Op(0x15, "urem",   (R, R, R), "R[d] := R[a] % R[b] (generic); b == 0: EXC(ZeroDivision), d unchanged", F.RAISES),
    Op(0x16, "ucmp",   (R, R), "ZF := R[a] == R[b]; NF := R[a] < R[b] (generic compare)", F.SETS_FLAGS),
    Op(0x17, "usqrt",  (R, R), "R[d] := U(isqrt(as_u64(R[s]))); ZF := result == 0", F.SETS_FLAGS),
    Op(0x18, "upow",   (R, R), "R[d] := U(as_u64(R[d]) ** low32(R[s])) wrapping; ZF := result == 0", F.SETS_FLAGS),
    Op(0x19, "uinc",   (R,), "R[d] := R[d] + U(1); OF := result == U(0)", F.SETS_FLAGS),
    Op(0x1A, "udec",   (R,), "R[d] := R[d] - U(1); ZF := result == U(0)", F.SETS_FLAGS),

    Op(0x20, "iload",  (R, I64), "R[d] := I(imm)"),
    Op(0x21, "iadd",   (R, R), "R[d] := R[d] + R[s] (generic)"),
    Op(0x22, "imul",   (R, R), "R[d] := R[d] * R[s] (generic)"),
    Op(0x23, "isub",   (R, R), "R[d] := R[d] - R[s] (generic); no flags"),
    Op(0x24, "idiv",   (R, R, R), "R[d] := R[a] / R[b] truncating (generic); b == 0: EXC(ZeroDivision); MIN/-1 = MIN", F.RAISES),
    Op(0x25, "irem",   (R, R, R), "R[d] := R[a] % R[b] sign of dividend (generic); b == 0: EXC(ZeroDivision); MIN%-1 = 0", F.RAISES),
    Op(0x26, "icmp",   (R, R), "same as ucmp", F.SETS_FLAGS),
    Op(0x27, "iabs",   (R, R), "R[d] := I(|as_i64(R[s])|) wrapping; ZF := result == 0", F.SETS_FLAGS),
    Op(0x28, "ineg",   (R, R), "R[d] := I(-as_i64(R[s])); ZF, NF from the result", F.SETS_FLAGS),
    Op(0x29, "isqrt",  (R, R), "R[s] < I(0): EXC(NegativeSqrt); else R[d] := I(isqrt(as_i64(R[s]))); ZF", F.SETS_FLAGS | F.RAISES),
    Op(0x2A, "ipow",   (R, R), "R[d] := I(as_i64(R[d]) ** low32(R[s])) wrapping; ZF, NF", F.SETS_FLAGS),
    Op(0x2B, "iinc",   (R,), "R[d] := R[d] + I(1) (kind int only); ZF, NF", F.SETS_FLAGS),
    Op(0x2C, "idec",   (R,), "R[d] := R[d] - I(1) (kind int only); ZF, NF", F.SETS_FLAGS),

    Op(0x30, "fload",  (R, F64), "R[d] := F(imm)"),
    Op(0x31, "fadd",   (R, R), "R[d] := R[d] + R[s] (generic)"),
    Op(0x32, "fmul",   (R, R), "R[d] := R[d] * R[s] (generic)"),
    Op(0x33, "fsub",   (R, R), "R[d] := R[d] - R[s] (generic); no flags"),
    Op(0x34, "fdiv",   (R, R, R), "R[d] := R[a] / R[b] (generic); b == +-0: EXC(ZeroDivision), d unchanged", F.RAISES),
    Op(0x35, "frem",   (R, R, R), "R[d] := fmod(R[a], R[b]) (generic); x % 0.0 = NaN", F.RAISES),
    Op(0x36, "fcmp",   (R, R), "same as ucmp", F.SETS_FLAGS),
    Op(0x37, "fcmp_eps", (R, R), "ZF := |R[a] - R[b]| < 1e-10; NF := R[b] - R[a] > 1e-10", F.SETS_FLAGS),
    Op(0x38, "fabs",   (R, R), "R[d] := F(|as_f64(R[s])|); ZF := result == 0", F.SETS_FLAGS),
    Op(0x39, "fneg",   (R, R), "R[d] := F(-as_f64(R[s])); ZF, NF from the result", F.SETS_FLAGS),
    Op(0x3A, "fsqrt",  (R, R), "R[s] < F(0): EXC(NegativeSqrt); else R[d] := F(sqrt(as_f64(R[s]))); ZF", F.SETS_FLAGS | F.RAISES),
    Op(0x3B, "fpow",   (R, R), "R[d] := F(as_f64(R[d]) ** as_f64(R[s])); ZF (prints nothing, semantics.md §3.5)", F.SETS_FLAGS),
    Op(0x3C, "finc",   (R,), "R[d] := R[d] + F(1.0) (kind float only); ZF, NF", F.SETS_FLAGS),
    Op(0x3D, "fdec",   (R,), "R[d] := R[d] - F(1.0) (kind float only); ZF, NF", F.SETS_FLAGS),

    Op(0x40, "jmp",    (ADDR,), "ip := addr", F.JUMP),
    Op(0x41, "jz",     (ADDR,), "if ZF: ip := addr", F.JUMP | F.COND | F.READS_FLAGS),
    Op(0x42, "jl",     (ADDR,), "if NF: ip := addr", F.JUMP | F.COND | F.READS_FLAGS),
    Op(0x43, "jg",     (ADDR,), "if not ZF and not NF: ip := addr", F.JUMP | F.COND | F.READS_FLAGS),
    Op(0x44, "jge",    (ADDR,), "if not NF: ip := addr", F.JUMP | F.COND | F.READS_FLAGS),
    Op(0x45, "jle",    (ADDR,), "if NF or ZF: ip := addr", F.JUMP | F.COND | F.READS_FLAGS),
    Op(0x46, "jexc",   (EXC, ADDR), "if exception N is pending: remove its first entry, ip := addr", F.JUMP | F.COND),
    Op(0x47, "jmpr",   (R,), "ip := as_u64(R[s])", F.JUMP | F.INDIRECT),
    Op(0x48, "jnz",    (ADDR,), "if not ZF: ip := addr", F.JUMP | F.COND | F.READS_FLAGS),

    Op(0x50, "utoi",   (R, R), "R[d] := I(bits of as_u64(R[s]))"),
    Op(0x51, "itou",   (R, R), "R[d] := U(bits of as_i64(R[s]))"),
    Op(0x52, "utof",   (R, R), "R[d] := F(as_u64(R[s]) converted)"),
    Op(0x53, "itof",   (R, R), "R[d] := F(as_i64(R[s]) converted)"),
    Op(0x54, "ftou",   (R, R), "R[d] := U(as_u64(R[s])) saturating"),
    Op(0x55, "ftoi",   (R, R), "R[d] := I(as_f64(R[s]) truncated) saturating"),
    Op(0x56, "ptou",   (R, R), "R[d] := U(as_u64(R[s]))"),
    Op(0x57, "utop",   (R, R), "R[d] := A(as_u64(R[s])) (a GC root)"),

    Op(0x60, "movr",   (R, R), "R[d] := R[s] (value and tag)"),
    Op(0x61, "or",     (R, R), "R[d] := R[d] | R[s] (generic); ZF := result == 0", F.SETS_FLAGS),
    Op(0x62, "and",    (R, R), "R[d] := R[d] & R[s] (generic); ZF := result == 0", F.SETS_FLAGS),
    Op(0x63, "not",    (R, R), "R[d] := ~R[s] (generic); ZF := result == 0", F.SETS_FLAGS),
    Op(0x64, "xor",    (R, R), "R[d] := R[d] ^ R[s] (generic); ZF := result == 0", F.SETS_FLAGS),
    Op(0x65, "test",   (R, R), "ZF := (R[a] & R[b]) == 0 (generic); nothing stored", F.SETS_FLAGS),
    Op(0x66, "lnot",   (R, R), "R[d] := R[s] == 0 ? 1 : 0 (same kind); ZF := result == 0", F.SETS_FLAGS),
    Op(0x67, "shl",    (R, R), "R[d] := R[d] << (R[s] mod 64); amount must be uint"),
    Op(0x68, "shr",    (R, R), "R[d] := R[d] >> (R[s] mod 64); arithmetic for int"),

    Op(0x70, "dsload",   (R, DITEM, DADDR), "R[d] := element at data item REL, byte offset OFF (str: its address)", F.DATA),
    Op(0x71, "dsrload",  (R, R, DITEM), "as dsload with OFF := as_u64(R[o])", F.DATA),
    Op(0x72, "dssave",   (R, DITEM, DADDR), "write R[s] (8 bytes, by tag) into item REL at OFF; const item: trap", F.WRITES_MEMORY | F.RAISES | F.DATA),
    Op(0x73, "dsrsave",  (R, R, DITEM), "as dssave with OFF := as_u64(R[o])", F.WRITES_MEMORY | F.RAISES | F.DATA),
    Op(0x74, "dslea",    (R, DITEM, DADDR), "R[d] := D(data_base + REL + OFF)", F.DATA),
    Op(0x75, "dsderef",  (R, R, DADDR), "R[d] := first element of the item at as_u64(R[s]) - OFF", F.DATA),
    Op(0x76, "dsrlea",   (R, R, DITEM), "R[d] := D(data_base + REL + as_u64(R[o]))", F.DATA),
    Op(0x77, "dsrderef", (R, R, R), "as dsderef with OFF := as_u64(R[o])", F.DATA),

    Op(0x80, "push",    (R,), "push (R[s], T[s]) on the data stack"),
    Op(0x81, "pop",     (R,), "pop the data stack into R[d]; empty: trap"),
    Op(0x82, "pushall", (), "push r0..r30 (31 entries)"),
    Op(0x83, "popall",  (), "pop 31 entries, restore r30..r1; r0 keeps its value (semantics.md §3.2)"),
    Op(0x84, "gsf",     (R, R), "R[d] := stack[as_u64(R[s])] (0 = bottom) if in range"),
    Op(0x85, "usf",     (R, R), "stack[as_u64(R[d])] := R[s] if in range"),

    Op(0x90, "call",    (FUNC,), "push return address, ip := functions[idx]", F.CALL),
    Op(0x91, "ret",     (), "ip := popped return address", F.RETURN),
    Op(0x92, "fnstind", (R, FUNC), "R[d] := U(idx)"),
    Op(0x93, "callr",   (R,), "call functions[as_u64(R[s])]", F.CALL | F.INDIRECT),

    Op(0xA0, "alloc",       (R, U64), "R[d] := A(new GC block of imm bytes); failure: EXC(HeapAllocationFault), A(0)", F.HEAP | F.ALLOCATES | F.RAISES),
    Op(0xA1, "free",        (R,), "free the block at R[s]; not a block start: EXC(HeapFreeFault)", F.HEAP | F.RAISES),
    Op(0xA2, "store",       (R, R, R), "write the low k = clamp(R[c],1,8) bytes of R[v] at heap R[p]", F.HEAP | F.RAISES),
    Op(0xA3, "allocr",      (R, R), "R[d] := A(new GC block of as_u64(R[n]) bytes)", F.HEAP | F.ALLOCATES | F.RAISES),
    Op(0xA4, "load",        (R, R, R, R), "R[d] := k = clamp(R[c],1,8) bytes at heap R[p] as type R[t]", F.HEAP | F.RAISES),
    Op(0xA5, "allocr_nogc", (R, R), "R[d] := A(new never-collected block of as_u64(R[n]) bytes)", F.HEAP | F.ALLOCATES | F.RAISES),
    Op(0xA6, "memcpy",      (R, R, R), "copy R[c] bytes from heap R[s] to heap R[d] (memmove)", F.HEAP | F.RAISES),
    Op(0xA7, "storedat",    (R, R, R), "copy R[c] bytes of main memory at R[s] to heap R[d]", F.HEAP | F.RAISES),
    Op(0xA8, "dlbc",        (R, R, R), "append R[c] heap bytes at R[s] to main memory; R[d] := D(old length)", F.HEAP | F.RAISES | F.WRITES_MEMORY),
    Op(0xA9, "ubd",         (R, R, R), "decode R[c] UTF-8 bytes at heap R[s] to UTF-16BE at heap R[d]", F.HEAP | F.RAISES),
)
# fmt: on

# Operand names in source order, for people: `load TYPE DEST PTR COUNT` (docs/vvs-language.md
# "Operand order"). The reference backend's handlers take the operands in the same order
# (tests/isa/test_operand_order.py checks both, and the table in the docs).
_NAMES_BY_GROUP: dict[tuple[str, ...], str] = {
    ("uadd", "umul", "usub", "usqrt", "upow", "iadd", "imul", "isub", "iabs", "ineg", "isqrt", "ipow",
     "fadd", "fmul", "fsub", "fabs", "fneg", "fsqrt", "fpow", "utoi", "itou", "utof", "itof", "ftou",
     "ftoi", "ptou", "utop", "movr", "or", "and", "not", "xor", "lnot", "shl", "shr"): "DEST SRC",
    ("udiv", "urem", "idiv", "irem", "fdiv", "frem"): "DEST A B",
    ("ucmp", "icmp", "fcmp", "fcmp_eps", "test"): "A B",
    ("uinc", "udec", "iinc", "idec", "finc", "fdec", "pop"): "DEST",
    ("jmpr", "push", "callr", "free"): "SRC",
    ("uload", "iload", "fload"): "DEST VALUE",
    ("jmp", "jz", "jl", "jg", "jge", "jle", "jnz"): "@LABEL",
    ("nop", "halt", "pushall", "popall", "ret"): "",
    ("dsload", "dslea"): "DEST ITEM OFFSET",
    ("dssave",): "SRC ITEM OFFSET",
    ("dsrload", "dsrlea"): "DEST OFFSET_REG ITEM",
    ("dsrsave",): "SRC OFFSET_REG ITEM",
    ("dsderef",): "SRC DEST OFFSET",
    ("dsrderef",): "SRC DEST OFFSET_REG",
    ("gsf",): "DEST INDEX",
    ("usf",): "INDEX SRC",
    ("allocr", "allocr_nogc"): "DEST SIZE",
    ("memcpy", "storedat", "dlbc"): "DEST SRC COUNT",
    ("ncall",): "CODE REG",
    ("jexc",): "@EXCEPTION @LABEL",
    ("call",): "@FUNCTION",
    ("fnstind",): "DEST @FUNCTION",
    ("alloc",): "DEST SIZE",
    ("store",): "PTR VALUE COUNT",
    ("load",): "TYPE DEST PTR COUNT",
    ("ubd",): "SRC COUNT DEST",
}
OPERAND_NAMES: dict[str, tuple[str, ...]] = {
    mnemonic: tuple(names.split()) for group, names in _NAMES_BY_GROUP.items() for mnemonic in group}

BY_CODE: dict[int, Op] = {op.code: op for op in OPS}
BY_MNEMONIC: dict[str, Op] = {op.mnemonic: op for op in OPS}
MAX_SIZE: int = max(op.size for op in OPS)


class Decoded(namedtuple("Decoded", "address op operands")):
    """One decoded instruction at ``address``: its Op and its ``operands`` as plain
    ints (floats as bits)."""

    __slots__ = ()

    @property
    def size(self) -> int:
        return self.op.size


class DecodeError(ValueError):
    """The bytes at an address are not a complete, valid instruction."""

    def __init__(self, address: int, reason: str) -> None:
        super().__init__(f"{reason} at 0x{address:x}")
        self.address = address
        self.reason = reason


_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")


def decode_at(mem: bytes | bytearray | memoryview, address: int) -> Decoded:
    """Decode the instruction at ``address``; raise DecodeError if impossible.

    Register operands >= 32 decode fine here (they are a run-time trap, and the
    disassembler must still show them); callers check ``operands`` themselves.

    >>> decode_at(bytes([0x11, 1, 2]), 0).op.mnemonic
    'uadd'
    """
    if address < 0 or address >= len(mem):
        raise DecodeError(address, "address outside the image")
    op = BY_CODE.get(mem[address])
    if op is None:
        raise DecodeError(address, f"unknown opcode 0x{mem[address]:02x}")
    if address + op.size > len(mem):
        raise DecodeError(address, f"truncated {op.mnemonic} instruction")
    values = []
    pos = address + 1
    for operand in op.operands:
        if operand.width == 1:
            values.append(mem[pos])
        elif operand.width == 2:
            values.append(_U16.unpack_from(mem, pos)[0])
        else:
            values.append(_U64.unpack_from(mem, pos)[0])
        pos += operand.width
    return Decoded(address, op, tuple(values))


def encode(op: Op, operands: tuple[int, ...] | list[int]) -> bytes:
    """Encode ``op`` with integer operand values (floats given as their bits).

    >>> encode(BY_MNEMONIC["uadd"], (1, 2)).hex()
    '110102'
    """
    if len(operands) != len(op.operands):
        raise ValueError(f"{op.mnemonic} takes {len(op.operands)} operands, got {len(operands)}")
    out = bytearray([op.code])
    for kind, value in zip(op.operands, operands):
        out += int(value).to_bytes(kind.width, "big")
    return bytes(out)
