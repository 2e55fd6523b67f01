"""The operand order of every instruction: voxvm.isa.OPERAND_NAMES, the reference handlers, the docs.

docs/vvs-language.md "Operand order" is the table users read (``load TYPE DEST PTR
COUNT``); it must list every mnemonic of the ISA table with the names of
``OPERAND_NAMES``, whose length must match the operand classes, and whose order
must be the reference backend's (its handler ``_op_load(t, d, p, c)`` takes the
operands as they are encoded).
"""

from __future__ import annotations

import inspect
import re

from conftest import REPO
from voxvm.backends.reference.core import PyCore
from voxvm.isa import OPERAND_NAMES, OPS, Operand

# Parameter names of the reference handlers -> the names people read.
HANDLER_NAMES = {"d": "DEST", "s": "SRC", "a": "A", "b": "B", "imm": "VALUE", "code": "CODE",
                 "_register": "REG", "address": "@LABEL", "number": "@EXCEPTION", "index": "@FUNCTION",
                 "rel": "ITEM", "offset": "OFFSET", "o": "OFFSET_REG", "p": "PTR", "v": "VALUE",
                 "c": "COUNT", "t": "TYPE", "n": "SIZE", "size": "SIZE"}
# gsf/usf name their operands by role (d, s) in the handler; people need INDEX.
ROLE_EXCEPTIONS = {"gsf": ("DEST", "INDEX"), "usf": ("INDEX", "SRC")}

KIND = {Operand.REG: "reg", Operand.IMM_U64: "uint", Operand.IMM_I64: "int", Operand.IMM_F64: "float",
        Operand.IMM16: "code", Operand.ADDR: "@label", Operand.FUNC: "@function",
        Operand.EXC: "@exception", Operand.DITEM: "data", Operand.DADDR: "data"}


def expected_rows() -> list[str]:
    return [f"| `{op.mnemonic}` | `{' '.join([op.mnemonic, *OPERAND_NAMES[op.mnemonic]])}` | "
            f"{' '.join(KIND[o] for o in op.operands) or '–'} |" for op in sorted(OPS, key=lambda o: o.code)]


def test_every_mnemonic_has_one_name_per_operand():
    missing = sorted({op.mnemonic for op in OPS} - set(OPERAND_NAMES))
    assert not missing, f"give {missing} operand names in _NAMES_BY_GROUP (voxvm/isa.py)"
    assert not set(OPERAND_NAMES) - {op.mnemonic for op in OPS}, "_NAMES_BY_GROUP names an op the ISA lacks"
    for op in OPS:
        assert len(OPERAND_NAMES[op.mnemonic]) == len(op.operands), (
            f"{op.mnemonic}: _NAMES_BY_GROUP (voxvm/isa.py) gives {len(OPERAND_NAMES[op.mnemonic])} "
            f"names for {len(op.operands)} operands")


def test_the_names_are_in_the_reference_handlers_order():
    for op in OPS:
        params = list(inspect.signature(getattr(PyCore, "_op_" + op.mnemonic)).parameters)[1:]
        names = ROLE_EXCEPTIONS.get(op.mnemonic) or tuple(HANDLER_NAMES[p] for p in params)
        assert names == OPERAND_NAMES[op.mnemonic], (op.mnemonic, params)


def test_the_language_reference_lists_every_instruction_in_that_order():
    text = (REPO / "docs" / "vvs-language.md").read_text()
    section = text.split("### Operand order", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"\| `", line)]
    expected = expected_rows()
    missing, extra = [r for r in expected if r not in rows], [r for r in rows if r not in expected]
    assert rows == expected, ("docs/vvs-language.md, '### Operand order': "
                              + (f"add {missing} " if missing else "") + (f"remove {extra} " if extra else "")
                              + "(in this order: every row is\n" + "\n".join(expected) + ")")
