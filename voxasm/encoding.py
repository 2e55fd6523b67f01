"""Instruction encoding: operand tokens -> bytes, driven only by ``voxvm.isa``.

Owns the per-operand-class converters (register, immediates, ``@label``,
``@function``, ``@exception``, data labels), resolving names against a
``voxasm.symbols.SymbolTable``, and one encoder per opcode, built from the ISA
table on first use: opcode byte followed by each operand big-endian in its
class width. Also the text of the generated modules voxasm/_fast_encoders.py
and voxasm/_optable.py (tools/gen_encoders.py). Layout imports this module
only when a line needs the Python encoders (voxasm.assembler).
Encoders assume the operand count was checked; a bad operand raises
``LiteralError`` and ``locate_bad_operand`` says which one it was.
"""

from __future__ import annotations

import struct
TYPE_CHECKING = False     # typing costs start-up time (voxvm run FILE.vvs); annotations are strings
if TYPE_CHECKING:
    from typing import Callable

from voxvm.isa import BY_MNEMONIC, EXC_NAMES, OPS, Exc, Flag, Op, Operand

from .literals import (
    I64_MAX,
    I64_MIN,
    REGISTERS,
    U64_MAX,
    LiteralError,
    float_bits,
    parse_float,
    parse_imm_float_compat,
    parse_int,
    parse_register,
    parse_uint,
    show_token,
)
from .symbols import MAX_SUGGESTED_WORD, SymbolTable  # noqa: F401  (SymbolTable: re-exported)


def _suggest(name: str, candidates) -> str | None:
    if len(name) > MAX_SUGGESTED_WORD:
        return None
    import difflib  # (only for a suggestion: not on the import path)
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _unknown(kind: str, name: str, table: dict, syms: SymbolTable, wanted: str) -> LiteralError:
    # The hint is computed only if the diagnostic is shown: a fuzzy search over every
    # name, once per unknown reference, would make a file of many errors quadratic.
    def hint() -> str | None:
        return syms.elsewhere(name, wanted) or _suggest(name, table)
    return LiteralError(f"unknown {kind} {show_token(name)}", hint)


# --- operand converters: (token, symbols) -> int ------------------------------------------

def conv_reg(token: str, syms: SymbolTable) -> int:
    index = REGISTERS.get(token)
    return parse_register(token) if index is None else index


def conv_u64(token: str, syms: SymbolTable) -> int:
    if token.isdigit() and token.isascii() and len(token) <= 20:
        value = int(token)
        if value <= U64_MAX:
            return value
    bits = parse_imm_float_compat(token)
    if bits is not None:
        return bits
    return parse_uint(token, "an unsigned 64-bit number")


def conv_i64(token: str, syms: SymbolTable) -> int:
    if token.isdigit() and token.isascii() and len(token) <= 20:
        value = int(token)
        if value <= I64_MAX:
            return value
    bits = parse_imm_float_compat(token)
    if bits is not None:
        return bits
    return parse_int(token, "a signed 64-bit number") & U64_MAX


def conv_f64(token: str, syms: SymbolTable) -> int:
    return parse_float(token, "a float")


def conv_imm16(token: str, syms: SymbolTable) -> int:
    if "." in token:
        raise LiteralError(f"expected an ncall code (0..0xFFFF), found {show_token(token)}")
    value = parse_uint(token, "an ncall code (0..0xFFFF)")
    if value > 0xFFFF:
        # semantics.md §3 item 22: upstream silently truncated the code mod 65536.
        raise LiteralError(f"ncall code {show_token(token)} does not fit in 16 bits (0..0xFFFF)")
    return value


def conv_addr(token: str, syms: SymbolTable) -> int:
    if token[:1] == "@":
        name = token[1:]
        address = syms.labels.get(name)
        if address is None:
            raise _unknown("label", name, syms.labels, syms, "label")
        return address
    if token in syms.labels:
        raise LiteralError(f"expected a jump target, found {show_token(token)}",
                           f"labels are referenced with '@': {show_token('@' + token)}")
    return parse_uint(token, "a jump target ('@label' or an address)")


def conv_func(token: str, syms: SymbolTable) -> int:
    if token[:1] == "@":
        name = token[1:]
        index = syms.functions.get(name)
        if index is None:
            raise _unknown("function", name, syms.functions, syms, "function")
        return index
    if token in syms.functions:
        raise LiteralError(f"expected a function, found {show_token(token)}",
                           f"functions are referenced with '@': {show_token('@' + token)}")
    return parse_uint(token, "a function ('@name' or a function-table index)")


# jexc accepts upstream's @names and the enum spellings, case-insensitively (upstream.md §7).
_EXCEPTIONS: dict[str, int] = {**{name: int(e) for name, e in EXC_NAMES.items()},
                               **{e.name.lower(): int(e) for e in Exc}}


def conv_exc(token: str, syms: SymbolTable) -> int:
    if token[:1] == "@":
        number = _EXCEPTIONS.get(token[1:].lower())
        if number is None:
            raise LiteralError(f"unknown exception {show_token(token[1:])}",
                               lambda: _suggest(token[1:].lower(), EXC_NAMES)
                               or "exceptions: " + ", ".join("@" + n for n in EXC_NAMES))
        return number
    # Any number assembles (a jexc with an unknown number traps only when it
    # runs, and the disassembler must be able to round-trip it); the
    # assembler warns about it (see ``lint``).
    return parse_uint(token, "an exception ('@name' or a number 1..11)")


def _lint_jexc(toks: list[str], syms: SymbolTable) -> tuple[int, str] | None:
    number = conv_exc(toks[1], syms)
    if not 1 <= number <= len(Exc):
        return 1, (f"there is no exception number {show_token(toks[1])} (exceptions are 1..{len(Exc)}); "
                   f"executing this jexc is a trap")
    return None


# Checks on correctly encoded instructions that deserve a warning:
# mnemonic -> f(tokens, symbols) -> (token position, message) or None.
LINTS = {"jexc": _lint_jexc}


def conv_daddr(token: str, syms: SymbolTable) -> int:
    offset = syms.data.get(token)
    if offset is not None:
        return offset
    c = token[:1]
    if c.isdigit() or c == "+" or c == "-":
        return parse_uint(token, "a data offset")
    if c == "@" and token[1:] in syms.data:
        raise LiteralError(f"expected a data item or offset, found {show_token(token)}",
                           f"data items are referenced without '@': {show_token(token[1:])}")
    raise _unknown("data item", token, syms.data, syms, "data item")


CONVERTERS: dict[Operand, Callable[[str, SymbolTable], int]] = {
    Operand.REG: conv_reg,
    Operand.IMM_U64: conv_u64,
    Operand.IMM_I64: conv_i64,
    Operand.IMM_F64: conv_f64,
    Operand.IMM16: conv_imm16,
    Operand.ADDR: conv_addr,
    Operand.FUNC: conv_func,
    Operand.EXC: conv_exc,
    Operand.DITEM: conv_daddr,   # upstream.md §3.4(b): both data kinds take a data label or a number
    Operand.DADDR: conv_daddr,
}

_FORMAT = {1: "B", 2: "H", 8: "Q"}

# upstream.md §3.4 (a)/(b): call and the data-segment instructions read a fixed
# number of tokens and ignore the rest, so extra words there are harmless text
# (a warning here); everywhere else an extra operand is an error.
LENIENT_EXTRA_OPERANDS = frozenset(
    op.code for op in OPS if op.mnemonic == "call" or Flag.DATA in op.flags)


def operand_summary(op: Op) -> str:
    """``uadd r, r`` style: what the instruction takes, for messages."""
    names = {Operand.REG: "reg", Operand.IMM_U64: "uint", Operand.IMM_I64: "int",
             Operand.IMM_F64: "float", Operand.IMM16: "code", Operand.ADDR: "@label",
             Operand.FUNC: "@function", Operand.EXC: "@exception", Operand.DITEM: "data",
             Operand.DADDR: "data"}
    return " ".join([op.mnemonic] + [names[o] for o in op.operands])


# Fast paths, per operand class, for the forms that dominate real source
# (``r7``, decimal and ``0x`` numbers, ``-5`` where signed, floats that
# Python's ``float`` reads exactly as the f64 grammar does (ASCII, no ``_``),
# ``@label``, ``@function``, bare data labels). Any other spelling, and every
# error, takes ``{fallback}``: in the plain encoders ``generic``, which runs the
# full converters above; so the fast paths only ever accept a subset of what
# the converters accept, with the same value. None of these forms contains
# whitespace, ``;``, ``#`` or ``"``, so a token a fast path accepts never
# holds a comment or a string literal.
_FAST: dict[Operand, str] = {
    Operand.REG: """
    v{i} = reg.get(t{i})
    if v{i} is None: {fallback}""",
    Operand.IMM_U64: """
    if t{i}.isdigit() and t{i}.isascii() and len(t{i}) <= 20:
        v{i} = int(t{i})
        if v{i} > U64_MAX: {fallback}
    elif t{i}[:2] in HEX and 2 < len(t{i}) <= 18 and t{i}.isascii() and t{i}.isalnum():
        try: v{i} = int(t{i}, 16)
        except ValueError: {fallback}
    else: {fallback}""",
    Operand.IMM_I64: """
    if t{i}.isascii() and len(t{i}) <= 20 and (t{i}.isdigit() or t{i}[:1] == "-" and t{i}[1:].isdigit()):
        v{i} = int(t{i})
        if not I64_MIN <= v{i} <= I64_MAX: {fallback}
        v{i} &= U64_MAX
    else: {fallback}""",
    Operand.IMM_F64: """
    if not t{i}.isascii() or "_" in t{i}: {fallback}
    try: v{i} = fbits(float(t{i}))
    except ValueError: {fallback}""",
    Operand.IMM16: """
    if not (t{i}.isdigit() and t{i}.isascii()) or len(t{i}) > 20: {fallback}
    v{i} = int(t{i})
    if v{i} > 0xFFFF: {fallback}""",
    Operand.ADDR: """
    if t{i}[:1] != "@": {fallback}
    v{i} = syms.labels.get(t{i}[1:])
    if v{i} is None: {fallback}""",
    Operand.FUNC: """
    if t{i}[:1] != "@": {fallback}
    v{i} = syms.functions.get(t{i}[1:])
    if v{i} is None: {fallback}""",
    Operand.DADDR: """
    v{i} = syms.data.get(t{i})
    if v{i} is None:
        if not (t{i}.isdigit() and t{i}.isascii()) or len(t{i}) > 20: {fallback}
        v{i} = int(t{i})
        if v{i} > U64_MAX: {fallback}""",
}
_FAST[Operand.DITEM] = _FAST[Operand.DADDR]  # the same spellings (CONVERTERS)
_FAST_CACHE: dict[tuple[tuple[Operand, ...], bool], Callable] = {}
# What a fast encoder does with any other spelling, or a name it does not know
# (yet): the full converters (the value, or an error with its message), or, in
# layout's early variant, None (pass 2 encodes the line, or reports it; the name
# may be defined further down). The early variant never raises.
_FALLBACK = {False: "return generic(toks, syms)", True: "return None"}


def _factory_source(signature: tuple[Operand, ...], early: bool) -> tuple[str, str]:
    """``(name, source)`` of the factory of fast encoders for one operand signature."""
    n = len(signature)
    names = ", ".join(f"t{i}" for i in range(n))
    body = "".join(_FAST[kind].replace("{fallback}", _FALLBACK[early]).format(i=i)
                   for i, kind in enumerate(signature))
    values = "".join(f", v{i}" for i in range(n))
    name = "factory_" + "_".join(kind.short for kind in signature) + ("_early" if early else "")
    body = body.replace("\n", "\n    ")
    return name, (f"def {name}(code, pack, generic, reg, U64_MAX, I64_MIN, I64_MAX, HEX, fbits):\n"
                  f"    def encode(toks, syms):\n"
                  f"        _, {names} = toks{body}\n"
                  f"        return pack(code{values})\n"
                  f"    return encode\n")


def _wanted_factories() -> list[tuple[tuple[Operand, ...], bool]]:
    """Every (signature, early) the ISA needs a fast factory for, in a stable order."""
    signatures = sorted({op.operands for op in OPS if op.operands
                         and all(kind in _FAST for kind in op.operands)},
                        key=lambda sig: [kind.short for kind in sig])
    return [(signature, early) for signature in signatures for early in (False, True)]


def fast_encoders_source() -> str:
    """The text of voxasm/_fast_encoders.py (written by tools/gen_encoders.py)."""
    parts = ['"""Fast operand encoders of voxasm, generated by tools/gen_encoders.py: do not edit.\n\n'
             'The factories voxasm.encoding compiles from its ``_FAST`` templates, one per\n'
             'operand signature of the ISA and variant (``early``: any other spelling, or a\n'
             'name not defined yet, gives None). Generated once and imported from its\n'
             '``.pyc`` (on first use), instead of compiled at every start\n'
             '(tests/asm/test_generated_encoders.py checks that it is current).\n"""\n']
    for key in _wanted_factories():
        parts.append("\n\n" + _factory_source(*key)[1])
    return "".join(parts)


def _fast_factory(signature: tuple[Operand, ...], early: bool = False) -> Callable:
    """The factory of inlined fast encoders for ``signature``: the generated module's
    (voxasm/_fast_encoders.py, imported on first use), or compiled now if it lacks it."""
    factory = _FAST_CACHE.get((signature, early))
    if factory is None:
        name, source = _factory_source(signature, early)
        from . import _fast_encoders as generated

        factory = getattr(generated, name, None)
        if factory is None:
            namespace: dict = {}
            exec(compile(source, f"<voxasm fast encoder {name}>", "exec"), namespace)
            factory = namespace[name]
        _FAST_CACHE[(signature, early)] = factory
    return factory


def _make_encoder(op: Op, early: bool = False) -> Callable[[list[str], SymbolTable], bytes | None]:
    """The fastest correct encoder for ``op``: tokens (mnemonic first) -> bytes.

    ``early``: layout's variant, which never raises: bytes when every operand
    has a fast spelling (``_FAST``) and names only what is defined already,
    else None (a forward reference, a rarer spelling, an error: pass 2 encodes
    the line with the plain encoder, or reports it).
    """
    code = op.code
    convs = tuple(CONVERTERS[o] for o in op.operands)
    packer = struct.Struct(">B" + "".join(_FORMAT[o.width] for o in op.operands))
    pack = packer.pack
    assert packer.size == op.size, op  # the ISA table and the struct must agree

    def generic(toks: list[str], syms: SymbolTable) -> bytes:
        return pack(code, *[conv(tok, syms) for conv, tok in zip(convs, toks[1:])])

    if not op.operands:
        single = bytes((code,))
        return lambda toks, syms: single
    if all(kind in _FAST for kind in op.operands):
        return _fast_factory(op.operands, early)(code, pack, generic, REGISTERS, U64_MAX, I64_MIN,
                                                 I64_MAX, ("0x", "0X"), float_bits)
    return (lambda toks, syms: None) if early else generic


def _encodable_early(op: Op) -> bool:
    """Whether layout may encode ``op`` (its names resolve to the same values in either pass;
    an instruction with a lint waits for pass 2, which reports the lint's warning)."""
    return op.mnemonic not in LINTS


class _Encoders(dict):
    """mnemonic -> (op, operand count, encoder, size in bytes, encodable in pass 1,
    pass 1's encoder), each built on first use.

    Plain tuples because this is read once per source line that reaches Python
    (``Op.size`` is a computed property). Built lazily because with the
    compiled scanner most runs need the encoders of a few instructions or none,
    and building all of them is a tenth of ``voxvm --vas``'s start-up
    (docs/performance.md "The assembler"). ``in`` and ``get`` answer for
    every mnemonic of the ISA, built or not.
    """

    def __missing__(self, mnemonic: str) -> tuple:
        op = BY_MNEMONIC[mnemonic]
        entry = self[mnemonic] = (op, len(op.operands), _make_encoder(op), op.size, _encodable_early(op),
                                  _make_encoder(op, early=True))
        return entry

    def get(self, mnemonic: str, default=None):
        return self[mnemonic] if mnemonic in BY_MNEMONIC else default

    def __contains__(self, mnemonic: object) -> bool:
        return mnemonic in BY_MNEMONIC


ENCODERS: dict[str, tuple[Op, int, Callable[[list[str], SymbolTable], bytes], int, bool,
                          Callable[[list[str], SymbolTable], bytes | None]]] = _Encoders()

_EARLY: dict[str, tuple[int, Callable[[list[str], SymbolTable], bytes | None], int]] = {}


def early_encoders() -> dict[str, tuple[int, Callable[[list[str], SymbolTable], bytes | None], int]]:
    """Layout's Python hot path: mnemonic -> (tokens of the line with exactly its operands,
    early encoder, size in bytes), for the instructions layout may encode (built on first use)."""
    if not _EARLY:
        for op in OPS:
            _, count, _, size, encodable, early = ENCODERS[op.mnemonic]
            if encodable:
                _EARLY[op.mnemonic] = (count + 1, early, size)
    return _EARLY


def optable_source() -> str:
    """The text of voxasm/_optable.py (written by tools/gen_encoders.py): what layout and
    the compiled scanner need of the ISA table, as plain data."""
    opcodes = "".join(f"    {op.mnemonic!r}: (0x{op.code:02X}, {op.size}, {len(op.operands)}),\n" for op in OPS)
    scan = "".join(
        f"    ({op.mnemonic!r}, 0x{op.code:02X}, {tuple((k.short, k.width) for k in op.operands)!r}),\n"
        for op in OPS if _encodable_early(op) and all(kind in _FAST for kind in op.operands))
    return ('"""The opcode table of voxasm\'s layout, generated by tools/gen_encoders.py from voxvm/isa.py:\n'
            'do not edit.\n\n'
            'Layout needs every instruction\'s opcode, size and operand count, and the compiled\n'
            'scanner (voxasm/_scan.pyx) the operand classes of those it may encode. Reading them\n'
            'here instead of from voxvm.isa (its enum classes) and voxasm.encoding (its encoders)\n'
            'keeps both off the import path of a typical assembly (docs/performance.md "The\n'
            'assembler"); tests/asm/test_generated_encoders.py checks that it is current.\n"""\n\n'
            '# mnemonic -> (opcode, size in bytes, operand count), every instruction of the ISA.\n'
            f'OPCODES = {{\n{opcodes}}}\n\n'
            '# (mnemonic, opcode, ((operand class, width), ...)) of every instruction layout may\n'
            '# encode whose operands all have fast spellings (voxasm.encoding._FAST).\n'
            f'SCAN_TABLE = [\n{scan}]\n')


def locate_bad_operand(op: Op, toks: list[str], syms: SymbolTable) -> tuple[int, LiteralError]:
    """Which operand (1-based token index) of a failed encoding is wrong, and why."""
    for i, kind in enumerate(op.operands, 1):
        try:
            CONVERTERS[kind](toks[i], syms)
        except LiteralError as exc:
            # Without its traceback and the encoder's exception it was raised in (its
            # __context__): the caller keeps it in a frame those reach, a cycle, and with
            # the collector paused (a command-line assembly) 200k bad lines took 1 GB.
            exc.__context__ = None
            return i, exc.with_traceback(None)
    raise AssertionError(f"{op.mnemonic}: encoder failed but every operand converts")  # pragma: no cover
