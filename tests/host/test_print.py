"""``print`` of a main-memory string reads only that string (never a copy of all main memory)."""

from __future__ import annotations

import io

import pytest

from voxvm.host import HostIO, NativeFailure
from voxvm.host.basic import printable
from voxvm.isa import Tag


class StringMemoryCore:
    """A Core that holds one str item and refuses whole-memory copies."""

    def __init__(self, text: str, at: int = 64, size: int = 1 << 20) -> None:
        payload = text.encode("utf-16-be")
        self.mem = bytearray(size)
        self.mem[at - 8:at] = len(payload).to_bytes(8, "big")
        self.mem[at:at + len(payload)] = payload
        self.reads: list[tuple[int, int]] = []

    def memory(self) -> bytes:
        raise AssertionError("print copied all of main memory")

    def read_memory(self, address: int, count: int) -> bytes | None:
        self.reads.append((address, count))
        if address > len(self.mem) or count > len(self.mem) - address:
            return None
        return bytes(self.mem[address:address + count])


def _io() -> HostIO:
    return HostIO(io.BytesIO(), io.BytesIO(), io.BytesIO())


def test_a_string_is_read_with_two_small_reads():
    core = StringMemoryCore("héllo")
    assert printable(core, _io(), 64, Tag.STR) == "héllo"
    assert core.reads == [(56, 8), (64, 10)]


@pytest.mark.parametrize("address", [0, 7, (1 << 20) + 1, (1 << 64) - 1])
def test_an_address_outside_main_memory_is_a_native_failure(address):
    with pytest.raises(NativeFailure, match="outside main memory"):
        printable(StringMemoryCore("x"), _io(), address, Tag.STR)


def test_a_length_running_past_the_end_is_a_native_failure():
    core = StringMemoryCore("x")
    core.mem[56:64] = (1 << 40).to_bytes(8, "big")
    with pytest.raises(NativeFailure, match="runs past the end"):
        printable(core, _io(), 64, Tag.STR)
