"""The ISA table (voxvm/isa.py) against upstream's numbering, and its generated files.

The frozen maps below are written out by hand from upstream.md §3.10 (and
§7 for the exceptions) on purpose: a change to isa.py that renumbers or
resizes an opcode must fail here, because it breaks byte compatibility with
voxvm v8.03 (semantics.md §1).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from voxvm import isa

GEN_ISA = REPO / "tools" / "gen_isa.py"

# upstream.md §3.10: mnemonic -> opcode
UPSTREAM_CODES = {
    "halt": 0xFF, "ncall": 0x01, "nop": 0x02,
    "uload": 0x10, "uadd": 0x11, "umul": 0x12, "usub": 0x13, "udiv": 0x14, "urem": 0x15,
    "ucmp": 0x16, "usqrt": 0x17, "upow": 0x18, "uinc": 0x19, "udec": 0x1A,
    "iload": 0x20, "iadd": 0x21, "imul": 0x22, "isub": 0x23, "idiv": 0x24, "irem": 0x25,
    "icmp": 0x26, "iabs": 0x27, "ineg": 0x28, "isqrt": 0x29, "ipow": 0x2A, "iinc": 0x2B, "idec": 0x2C,
    "fload": 0x30, "fadd": 0x31, "fmul": 0x32, "fsub": 0x33, "fdiv": 0x34, "frem": 0x35,
    "fcmp": 0x36, "fcmp_eps": 0x37, "fabs": 0x38, "fneg": 0x39, "fsqrt": 0x3A, "fpow": 0x3B,
    "finc": 0x3C, "fdec": 0x3D,
    "jmp": 0x40, "jz": 0x41, "jl": 0x42, "jg": 0x43, "jge": 0x44, "jle": 0x45, "jexc": 0x46,
    "jmpr": 0x47, "jnz": 0x48,
    "utoi": 0x50, "itou": 0x51, "utof": 0x52, "itof": 0x53, "ftou": 0x54, "ftoi": 0x55,
    "ptou": 0x56, "utop": 0x57,
    "movr": 0x60, "or": 0x61, "and": 0x62, "not": 0x63, "xor": 0x64, "test": 0x65, "lnot": 0x66,
    "shl": 0x67, "shr": 0x68,
    "dsload": 0x70, "dsrload": 0x71, "dssave": 0x72, "dsrsave": 0x73, "dslea": 0x74,
    "dsderef": 0x75, "dsrlea": 0x76, "dsrderef": 0x77,
    "push": 0x80, "pop": 0x81, "pushall": 0x82, "popall": 0x83, "gsf": 0x84, "usf": 0x85,
    "call": 0x90, "ret": 0x91, "fnstind": 0x92, "callr": 0x93,
    "alloc": 0xA0, "free": 0xA1, "store": 0xA2, "allocr": 0xA3, "load": 0xA4, "allocr_nogc": 0xA5,
    "memcpy": 0xA6, "storedat": 0xA7, "dlbc": 0xA8, "ubd": 0xA9,
}

# upstream.md §3.10: mnemonic -> instruction size in bytes
UPSTREAM_SIZES = {
    "halt": 1, "ncall": 4, "nop": 1,
    "uload": 10, "uadd": 3, "umul": 3, "usub": 3, "udiv": 4, "urem": 4,
    "ucmp": 3, "usqrt": 3, "upow": 3, "uinc": 2, "udec": 2,
    "iload": 10, "iadd": 3, "imul": 3, "isub": 3, "idiv": 4, "irem": 4,
    "icmp": 3, "iabs": 3, "ineg": 3, "isqrt": 3, "ipow": 3, "iinc": 2, "idec": 2,
    "fload": 10, "fadd": 3, "fmul": 3, "fsub": 3, "fdiv": 4, "frem": 4,
    "fcmp": 3, "fcmp_eps": 3, "fabs": 3, "fneg": 3, "fsqrt": 3, "fpow": 3,
    "finc": 2, "fdec": 2,
    "jmp": 9, "jz": 9, "jl": 9, "jg": 9, "jge": 9, "jle": 9, "jexc": 17, "jmpr": 2, "jnz": 9,
    "utoi": 3, "itou": 3, "utof": 3, "itof": 3, "ftou": 3, "ftoi": 3, "ptou": 3, "utop": 3,
    "movr": 3, "or": 3, "and": 3, "not": 3, "xor": 3, "test": 3, "lnot": 3, "shl": 3, "shr": 3,
    "dsload": 18, "dsrload": 11, "dssave": 18, "dsrsave": 11, "dslea": 18,
    "dsderef": 11, "dsrlea": 11, "dsrderef": 4,
    "push": 2, "pop": 2, "pushall": 1, "popall": 1, "gsf": 3, "usf": 3,
    "call": 9, "ret": 1, "fnstind": 10, "callr": 2,
    "alloc": 10, "free": 2, "store": 4, "allocr": 3, "load": 5, "allocr_nogc": 3,
    "memcpy": 4, "storedat": 4, "dlbc": 4, "ubd": 4,
}

# upstream.md §7: exception name -> number
UPSTREAM_EXCEPTIONS = {
    "ZeroDivision": 1, "HeapAllocationFault": 2, "HeapFreeFault": 3, "HeapWriteFault": 4,
    "HeapReadFault": 5, "NegativeSqrt": 6, "InvalidDataType": 7, "NativeFault": 8,
    "IncorrectRegType": 9, "HeapSegmFault": 10, "MainSegmFault": 11,
}


def _run_gen(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(cwd / "tools" / "gen_isa.py"), *args],
                          capture_output=True, text=True, cwd=cwd)


def test_generated_files_are_fresh():
    result = _run_gen("--check")
    assert result.returncode == 0, result.stderr


# Everything tools/gen_isa.py reads and writes, copied into a private tree by the staleness tests.
_GENERATOR_FILES = ("tools/gen_isa.py", "voxvm/__init__.py", "voxvm/isa.py", "voxvm/tags.py",
                    "voxvm/numbered.py", "voxvm/errors.py", "voxvm/traps.py", "voxvm/diagnostics.py", "voxvm/backends/__init__.py",
                    "voxvm/backends/compiled/slotops.py", "docs/isa.md", "voxvm/backends/compiled/csrc/vv_tables.h")
TABLES_H = REPO / "voxvm" / "backends" / "compiled" / "csrc" / "vv_tables.h"


def _private_tree(tmp_path: Path) -> Path:
    for rel in _GENERATOR_FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    assert _run_gen("--check", cwd=tmp_path).returncode == 0
    return tmp_path


def test_check_detects_an_edited_header(tmp_path):
    tree = _private_tree(tmp_path)
    header = tree / "voxvm" / "backends" / "compiled" / "csrc" / "vv_tables.h"
    header.write_text(header.read_text().replace("VV_OP_UADD", "VV_OP_UADD_EDITED"))
    result = _run_gen("--check", cwd=tree)
    assert result.returncode == 1
    assert "generated files are stale; run python tools/gen_isa.py" in result.stderr
    assert "vv_tables.h" in result.stderr
    # Regenerating repairs it, and a second run is a no-op (deterministic output).
    assert _run_gen(cwd=tree).returncode == 0
    assert header.read_text() == TABLES_H.read_text()
    again = _run_gen(cwd=tree)
    assert again.returncode == 0 and again.stdout == ""


@pytest.mark.parametrize("source,old,new", [
    ("voxvm/traps.py", "    HOST_MEMORY = 18", "    HOST_MEMORY = 18\n    NEW_KIND = 19"),
    ("voxvm/backends/__init__.py", "    FLUSH = 4", "    FLUSH = 4\n    NEW_STATUS = 5"),
    ("voxvm/backends/compiled/slotops.py", '    SlotOp("X_MOV_FSUB"', '    SlotOp("X_NEW", "new"),\n    SlotOp("X_MOV_FSUB"'),
    ("voxvm/tags.py", '    DS_ADDR = 9, "ds_addr", True', '    DS_ADDR = 9, "ds_addr", False'),  # not address-like
], ids=["trap kind", "status", "slot op", "tag class"])
def test_check_detects_a_changed_source(tmp_path, source, old, new):
    """Each Python source of the header, changed, makes --check fail until regenerated."""
    tree = _private_tree(tmp_path)
    path = tree / source
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    result = _run_gen("--check", cwd=tree)
    assert result.returncode == 1 and "vv_tables.h" in result.stderr
    assert _run_gen(cwd=tree).returncode == 0
    assert _run_gen("--check", cwd=tree).returncode == 0


def test_exactly_95_opcodes():
    assert len(isa.OPS) == 95


def test_codes_and_mnemonics_unique():
    codes = [op.code for op in isa.OPS]
    mnemonics = [op.mnemonic for op in isa.OPS]
    assert len(set(codes)) == len(codes)
    assert len(set(mnemonics)) == len(mnemonics)
    assert len(isa.BY_CODE) == len(isa.BY_MNEMONIC) == 95


def test_numbering_frozen_against_upstream():
    assert {op.mnemonic: op.code for op in isa.OPS} == UPSTREAM_CODES


def test_sizes_frozen_against_upstream():
    assert {op.mnemonic: op.size for op in isa.OPS} == UPSTREAM_SIZES


@pytest.mark.parametrize("op", isa.OPS, ids=lambda op: op.mnemonic)
def test_size_agrees_with_operand_widths(op):
    assert op.size == 1 + sum(operand.width for operand in op.operands)
    assert op.size <= isa.MAX_SIZE


def test_exceptions_frozen_against_upstream():
    assert {e.name: int(e) for e in isa.Exc} == UPSTREAM_EXCEPTIONS
    assert len(isa.EXC_NAMES) == 11
    assert set(isa.EXC_NAMES.values()) == set(isa.Exc)
    # jexc spellings are matched case-insensitively: keep them lower-case and unique.
    assert all(name == name.lower() for name in isa.EXC_NAMES)


def test_tags_and_data_types():
    assert {t.name: int(t) for t in isa.Tag} == {
        "U64": 1, "I64": 2, "F64": 3, "STR": 4, "ADDR": 8, "DS_ADDR": 9}
    assert {int(d) for d in isa.DataType} == {1, 2, 3, 4, 6, 7, 8}


def _sample_operands(op: isa.Op, variant: int) -> tuple[int, ...]:
    """Operand values exercising each class's extremes (variant 0: low, 1: high)."""
    values = []
    for i, operand in enumerate(op.operands):
        top = (1 << (8 * operand.width)) - 1
        if operand is isa.Operand.REG:
            values.append((i + 1) if variant == 0 else 31 - i)
        else:
            values.append(i if variant == 0 else top - i)
    return tuple(values)


@pytest.mark.parametrize("op", isa.OPS, ids=lambda op: op.mnemonic)
@pytest.mark.parametrize("variant", [0, 1])
def test_encode_decode_round_trip(op, variant):
    operands = _sample_operands(op, variant)
    encoded = isa.encode(op, operands)
    assert len(encoded) == op.size and encoded[0] == op.code
    # Decode inside a larger buffer, at a non-zero address.
    buffer = b"\xee" * 3 + encoded + b"\xee" * 5
    decoded = isa.decode_at(buffer, 3)
    assert decoded == isa.Decoded(3, op, operands)
    assert decoded.size == op.size


@pytest.mark.parametrize("op", [op for op in isa.OPS if op.size > 1], ids=lambda op: op.mnemonic)
def test_truncated_instruction_is_a_decode_error(op):
    encoded = isa.encode(op, _sample_operands(op, 0))
    with pytest.raises(isa.DecodeError, match="truncated"):
        isa.decode_at(encoded[:-1], 0)


def test_unknown_opcode_is_a_decode_error():
    undefined = [code for code in range(256) if code not in isa.BY_CODE]
    assert len(undefined) == 161  # upstream.md §2.11
    for code in undefined:
        with pytest.raises(isa.DecodeError, match=f"unknown opcode 0x{code:02x}"):
            isa.decode_at(bytes([code, 0, 0]), 0)


def test_generated_header_names():
    from voxvm.backends import Status
    from voxvm.backends.compiled import slotops
    from voxvm.traps import ArithOp, TrapKind

    text = TABLES_H.read_text()
    assert "GENERATED by tools/gen_isa.py" in text
    for op in isa.OPS:
        assert f"#define VV_OP_{op.mnemonic.upper()} 0x{op.code:02X}\n" in text
        assert f"#define VV_SIZE_{op.mnemonic.upper()} {op.size}\n" in text
    for tag in isa.Tag:
        assert f"#define VV_TAG_{tag.name} {int(tag)}\n" in text
    for kind in TrapKind:
        assert f"    VV_TRAP_{kind.name} = {int(kind)}," in text
    for status in Status:
        assert f"    VV_STATUS_{status.name} = {int(status)}," in text
    for op in ArithOp:
        assert f"    VV_AR_{op.name} = {int(op)}," in text
    for name, number in slotops.numbering().items():
        assert f"    VV_SOP_{name} = {number}," in text


def test_slot_ops_have_their_own_dense_numbering():
    from voxvm.backends.compiled import slotops

    numbering = slotops.numbering()
    assert sorted(numbering.values()) == list(range(len(numbering)))   # dense
    assert numbering["X_DECODE"] == 0                                  # zero-filled slots decode
    assert len(numbering) <= 256                                       # one byte in vv_slot
    assert {op.mnemonic.upper() for op in isa.OPS} <= set(numbering)    # every opcode has one
    assert all(op.name.startswith("X_") for op in slotops.INTERNAL)     # never an opcode's name


def test_ditem_operands_are_the_items_the_decoder_relocates():
    """DITEM names an item (its offset gets data_base); DADDR is a byte offset."""
    items = {op.mnemonic: [i for i, o in enumerate(op.operands) if o is isa.Operand.DITEM] for op in isa.OPS}
    assert {m: p for m, p in items.items() if p} == {
        "dsload": [1], "dssave": [1], "dslea": [1], "dsrload": [2], "dsrsave": [2], "dsrlea": [2]}
    assert [op.mnemonic for op in isa.OPS if isa.Flag.DATA in op.flags] == [
        "dsload", "dsrload", "dssave", "dsrsave", "dslea", "dsderef", "dsrlea", "dsrderef"]


def test_tag_classes():
    assert isa.VALID_TAGS == {1, 2, 3, 4, 8, 9}
    assert isa.ADDRESS_LIKE_TAGS == {4, 8, 9}
    assert isa.UINT_LIKE_TAGS == {1, 4, 8, 9}
    assert [t.display_name for t in isa.Tag] == ["uint64", "int64", "float64", "StrAddr", "address", "ds_addr"]


def _probe(tmp_path: Path, header_dir: Path, body: str = "") -> subprocess.CompletedProcess:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    probe = tmp_path / "probe.c"
    probe.write_text(f'#include "vv_tables.h"\n{body}\n')
    return subprocess.run([cc, "-std=c11", "-fsyntax-only", "-Wall", "-Werror", "-I", str(header_dir), str(probe)],
                          capture_output=True, text=True)


def test_generated_header_compiles_and_its_static_asserts_hold(tmp_path):
    """The header stands alone and every _Static_assert in it holds for today's tables."""
    text = TABLES_H.read_text()
    assert text.count("_Static_assert(") >= 15
    body = "\n".join([
        "#define VV_COUNT_OP(NAME, CODE, SIZE, OPERANDS) + 1",
        "#define VV_COUNT_SOP(NAME) + 1",
        f"_Static_assert(0 VV_FOREACH_OP(VV_COUNT_OP) == {len(isa.OPS)}, \"every opcode\");",
        "_Static_assert(0 VV_FOREACH_SLOT_OP(VV_COUNT_SOP) == VV_SLOT_OP_COUNT, \"every slot op\");",
    ])
    result = _probe(tmp_path, TABLES_H.parent, body)
    assert result.returncode == 0, result.stderr


def test_static_asserts_catch_a_tag_that_breaks_the_loop_tricks(tmp_path):
    """A new tag 7 (bits 0b111) would make BOTH_F's (ta & tb) == 3 true for (7, 3): the build must fail."""
    tree = _private_tree(tmp_path / "tree")
    path = tree / "voxvm" / "tags.py"
    path.write_text(path.read_text().replace('    DS_ADDR = 9, "ds_addr", True,',
                                             '    WIDE = 7, "wide", False, "a new tag"\n    DS_ADDR = 9, "ds_addr", True,', 1))
    assert _run_gen(cwd=tree).returncode == 0
    result = _probe(tmp_path, tree / "voxvm" / "backends" / "compiled" / "csrc")
    assert result.returncode != 0
    assert "BOTH_F" in result.stderr


def test_doc_lists_every_opcode_and_exception():
    text = (REPO / "docs" / "isa.md").read_text()
    for op in isa.OPS:
        assert f"| 0x{op.code:02X} | `{op.mnemonic}` |" in text
    for exc in isa.Exc:
        assert f"| {int(exc)} | {exc.name} |" in text


def test_every_op_has_a_handler_in_the_python_backend():
    """docs/architecture.md "One ISA table": a row without a handler fails here, not at run time."""
    from voxvm.backends.reference.core import PyCore

    missing = [op.mnemonic for op in isa.OPS if not callable(getattr(PyCore, f"_op_{op.mnemonic}", None))]
    assert missing == [], f"voxvm/backends/reference/core.py PyCore has no _op_<mnemonic> for {missing}"


def test_every_op_has_a_handler_in_the_c_loop():
    loop_path = REPO / "voxvm" / "backends" / "compiled" / "csrc" / "vv_loop.h"
    if not loop_path.exists():
        pytest.skip("the C dispatch loop (voxvm/backends/compiled/csrc/vv_loop.h) is not in this checkout")
    loop = loop_path.read_text()
    missing = [op.mnemonic for op in isa.OPS if f"TARGET({op.mnemonic.upper()})" not in loop]
    assert missing == [], f"voxvm/backends/compiled/csrc/vv_loop.h has no TARGET(<MNEMONIC>) for {missing}"
