"""Regression tests for what the input fuzzers found (tools/fuzz_*.py, docs/reliability.md).

One test per finding, named after it, with the fuzzer's replay id where it
came from a fuzzer run.
"""

from __future__ import annotations

import pytest

import voxasm.assembler
import voxasm.data
from voxasm import AssemblyError, assemble_program as assemble

_HEAD = "section text\n.start\n    halt\nsection data\n"
SMALL = 4096


@pytest.fixture
def small_limits(monkeypatch):
    """The item and data limits at 4 KiB: the same code paths without allocating 256 MiB items."""
    monkeypatch.setattr(voxasm.data, "MAX_ITEM_PAYLOAD", SMALL)
    monkeypatch.setattr(voxasm.assembler, "MAX_DATA_PAYLOAD", SMALL)


def test_the_data_limit_is_the_item_limit():
    assert voxasm.assembler.MAX_DATA_PAYLOAD == voxasm.data.MAX_ITEM_PAYLOAD == 1 << 28


def test_many_items_at_the_item_limit_are_an_assembly_error_not_a_memory_error(small_limits):
    # 20 lines of `!zeros=` at the item limit (2^25 elements) asked for 20 x 256 MiB:
    # a MemoryError traceback, voxasm's CLI included, instead of a diagnostic
    # (found by a probe next to tools/fuzz_asm.py, whose corpus had no !zeros=;
    # its tokens now include it). Now the items' total is bounded and each
    # item past it is reported, not kept.
    source = _HEAD + "".join(f"    x{i} uint[] !zeros={SMALL // 8}\n" for i in range(20))
    with pytest.raises(AssemblyError) as caught:
        assemble(source)
    errors = caught.value.diagnostics
    assert all("takes the data items past" in error.message for error in errors)
    assert [error.line for error in errors] == list(range(6, 25))   # the first item fits, no later one


def test_data_items_up_to_the_total_limit_still_assemble(small_limits):
    items = f"    big uint[] !zeros={SMALL // 8 - 2}\n    small uint 7\n    last int 1\n"
    program = assemble(_HEAD + items)
    assert len(program.image) - program.data_base == SMALL + 3 * 9     # payloads + item headers
    with pytest.raises(AssemblyError, match="'one_more'"):
        assemble(_HEAD + items + "    one_more uint 1\n")


# ---------------------------------------------------------------- reported, not fixed here

# fload r4 0x7ff8000000000001 (a quiet NaN); fload r9 0x7ff8000000000002; OP r4 r9; halt
# (OP 0x31 fadd, 0x32 fmul). Reduced from tools/fuzz_vve.py case 1:584316 (seed 1 of
# the long run in docs/reliability.md), where `fadd r4 r9` met two NaNs in a loop.
TWO_NANS = "30047ff800000000000130097ff8000000000002{op}0409ff"


@pytest.mark.parametrize("op", ["31", "32"], ids=["fadd", "fmul"])
def test_two_nan_operands_give_the_same_nan_on_both_cores(op):
    """With two NaN operands the first one's NaN comes back, quieted (semantics.md §12):
    once the compiled core returned R[b]'s and the reference R[a]'s, or R[b]'s until
    CPython specialized its float add."""
    from support.machines import PUREPYTHON
    from voxvm.backends.reference.core import PyCore
    from voxvm.config import VMConfig
    from voxvm.program import Program

    image = bytes.fromhex(TWO_NANS.format(op=op))
    program = Program(image=image, entry=0, data_base=len(image))
    config = VMConfig(init_heap=4096)
    first_operands_nan = (0x7FF8000000000001, 3)
    got = set()
    for _ in range(20):          # long enough for CPython's adaptive interpreter to specialize
        reference = PyCore(program, config)
        reference.run(-1)
        got.add(reference.get_reg(4))
    assert got == {first_operands_nan}
    if not PUREPYTHON:           # a pure-Python install has only the reference to check
        from voxvm.backends.compiled import _core

        compiled = _core.Core(program, config)
        compiled.run(-1)
        assert compiled.get_reg(4) == first_operands_nan
