"""Regression tests for what the input fuzzers found (tools/fuzz_*.py, docs/reliability.md).

One test per finding, named after it, with the fuzzer's replay id where it
came from a fuzzer run.
"""

from __future__ import annotations

import pytest

import voxasm.assembler
import voxasm.data
from voxasm import AssemblyError, assemble

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
