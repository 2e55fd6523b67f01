"""voxvm.formats: .vve/.vvr/core-dump schemas build and parse symmetrically, and the
loader rejects every malformed file with a FormatError naming file, field and offset."""

from __future__ import annotations

import dataclasses
import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import conformance_dir
from voxvm.errors import ExitStatus, FormatError
from voxvm.formats import (
    DUMP_MAGIC,
    VVE_HEADER_SIZE,
    Dump,
    DumpWriter,
    VveHeader,
    build_dump,
    build_vve,
    load_vve,
    load_vvr,
    parse_dump,
)
from voxvm.program import Program

u64 = st.integers(0, 2**64 - 1)


@st.composite
def programs(draw) -> Program:
    image = draw(st.binary(min_size=1, max_size=64))
    n = len(image)
    return Program(image=image, entry=draw(st.integers(0, n - 1)),
                   data_base=draw(st.integers(0, n)),
                   functions=tuple(draw(st.lists(st.integers(0, n - 1), max_size=6))))


@given(programs())
def test_vve_build_then_load_round_trips(program):
    data = build_vve(program)
    assert len(data) == VVE_HEADER_SIZE + 16 * len(program.functions) + len(program.image)
    assert load_vve(data) == program
    assert build_vve(load_vve(data)) == data


def test_header_layout_is_upstreams():
    # upstream.md §3.11 example A: 48-byte header, version 3, code/data size 0
    data = build_vve(Program(image=b"\xff"))
    assert data[:6] == b"VVE\x00\x00\x03"
    assert data[0x16:0x26] == bytes(16)
    assert VveHeader.sizeof() == 0x30


@pytest.mark.parametrize("name", sorted(p.stem for p in conformance_dir("bad-vve").glob("*.vve")
                                        if (p.with_suffix(".rc")).read_text().strip() == "65"))
def test_malformed_conformance_files_are_rejected(name):
    path = conformance_dir("bad-vve") / f"{name}.vve"
    with pytest.raises(FormatError) as info:
        load_vve(path.read_bytes(), path.name)
    error = info.value
    assert error.exit_status == ExitStatus.DATAERR
    assert path.name in str(error) and error.field in str(error)
    assert f"byte offset {error.offset}" in str(error)


def _header(**fields) -> bytes:
    values = dict(magic=b"VVE\x00", version=3, entry=0, data_base=0, code_size=0, data_size=0,
                  func_count=0, padding=b"\x00\x00")
    values.update(fields)
    return VveHeader.build(values)


@pytest.mark.parametrize("data,field,offset", [
    (_header(func_count=1) + struct.pack(">QQ", 1, 0) + b"\xff", "function table entry 0 index", 48),
    (_header(func_count=2) + struct.pack(">QQQQ", 0, 0, 0, 0) + b"\xff", "function table entry 1 index", 64),
    (_header(func_count=1) + struct.pack(">QQ", 0, 5) + b"\xff", "function table entry 0 address", 56),
    (_header(data_base=9) + b"\xff", "data_base", 0x0E),
    (_header(func_count=2**62) + b"\xff", "function table", 48),
    (_header(version=4) + b"\xff", "version", 4),
    (_header(), "entry", 6),
])
def test_each_validation_names_its_field_and_offset(data, field, offset):
    with pytest.raises(FormatError) as info:
        load_vve(data, "x.vve")
    assert (info.value.field, info.value.offset) == (field, offset)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_load_or_raise_format_error_only(data):
    try:
        program = load_vve(data)
    except FormatError:
        return
    assert program.entry < len(program.image)
    assert all(a < len(program.image) for a in program.functions)


def test_vvr_loads_at_zero_and_rejects_empty():
    assert load_vvr(b"\xff") == Program(image=b"\xff")
    with pytest.raises(FormatError):
        load_vvr(b"", "e.vvr")


tagged = st.tuples(u64, st.sampled_from([1, 2, 3, 4, 8, 9]))


@st.composite
def dumps(draw) -> Dump:
    blocks = draw(st.lists(st.binary(max_size=24), max_size=4))
    reason = draw(st.integers(0, 1))
    return Dump(
        reason=reason, trap=draw(st.integers(1, 18)) if reason else 0, ip=draw(u64),   # a trap has a kind
        flags=tuple(draw(st.lists(st.integers(0, 1), min_size=4, max_size=4))),
        registers=draw(st.lists(tagged, min_size=32, max_size=32)),
        data_stack=draw(st.lists(tagged, max_size=5)),
        call_stack=draw(st.lists(u64, max_size=5)),
        pending=draw(st.dictionaries(st.integers(1, 11), st.integers(1, (1 << 64) - 1), max_size=5)),
        memory=draw(st.binary(max_size=64)),
        heap=[(16 + 64 * i, len(b), i % 2, b) for i, b in enumerate(blocks)])


@given(dumps())
def test_dump_build_then_parse_round_trips(dump):
    data = build_dump(dump)
    assert data.startswith(DUMP_MAGIC)
    assert parse_dump(data) == dump


@given(dumps(), st.sampled_from([1, 7, 64, 1 << 18]))
def test_dump_writer_writes_build_dumps_bytes(dump, buffer_size):
    """The streaming writer (the backends' write_dump in Python) against the schema's builder,
    with buffers small enough to split every section."""
    out = io.BytesIO()
    writer = DumpWriter(out, buffer_size)
    writer.head(dump.reason, dump.trap, dump.ip, dump.flags, dump.registers)
    writer.data_stack(iter(dump.data_stack), len(dump.data_stack))
    writer.call_stack(iter(dump.call_stack), len(dump.call_stack))
    writer.pending(dump.pending)
    writer.memory(dump.memory)
    writer.heap(iter(dump.heap), len(dump.heap))
    assert out.getvalue() == build_dump(dump)


def test_dump_writer_refuses_a_short_section():
    writer = DumpWriter(io.BytesIO())
    with pytest.raises(ValueError):
        writer.data_stack(iter([(1, 1)]), 2)


def test_parse_dump_rejects_other_files():
    with pytest.raises(FormatError):
        parse_dump(b"VVE\x00" + bytes(60), "p.vve")
    with pytest.raises(FormatError):
        parse_dump(DUMP_MAGIC + b"\x00", "cut.dump")


def test_a_cut_off_dump_names_the_field_and_where_it_starts():
    data = build_dump(Dump(reason=1, trap=3, ip=0x18, flags=(0, 0, 0, 0), registers=[(0, 1)] * 32,
                           data_stack=[(5, 1)], call_stack=[], pending={}, memory=b"m" * 16, heap=[]))
    with pytest.raises(FormatError) as cut:
        parse_dump(data[:12], "c.dump")
    assert str(cut.value) == ("c.dump: trap at byte offset 11 (0xb): the file ends inside this "
                              "2-byte field (12 bytes in all; a cut-off core dump?)")
    for length in range(len(DUMP_MAGIC) + 2, len(data)):
        with pytest.raises(FormatError) as cut:
            parse_dump(data[:length], "c.dump")
        assert "\n" not in str(cut.value) and cut.value.offset <= length, length


def test_a_corrupt_dump_says_which_field_is_wrong_not_offset_0():
    data = bytearray(build_dump(Dump(reason=1, trap=3, ip=0x18, flags=(0, 0, 0, 0), registers=[(0, 1)] * 32,
                                     data_stack=[], call_stack=[], pending={}, memory=b"m" * 16, heap=[])))
    memory_length = data.index(b"m" * 16) - 8              # the u64 before the bytes
    for at, value, message in (
            (len(DUMP_MAGIC), 0xC9, "c.dump: version at byte offset 8 (0x8): version 51459 is not one this voxvm "
                                    "reads (1 to 3; a corrupt core dump, or one from a newer voxvm?)"),
            (memory_length, 0xC9, "c.dump: memory: its length field asks for 14483576401623515152 bytes, more than "
                                  "the whole file")):
        corrupt = bytearray(data)
        corrupt[at] = value
        with pytest.raises(FormatError) as caught:
            parse_dump(bytes(corrupt), "c.dump")
        assert str(caught.value).startswith(message), str(caught.value)


def test_what_the_dump_schema_cannot_say_is_checked_too():
    good = Dump(reason=1, trap=3, ip=0x18, flags=(0, 0, 0, 0), registers=[(0, 1)] * 32,
                data_stack=[(5, 2)], call_stack=[], pending={}, memory=b"m" * 16, heap=[])
    data = build_dump(good)
    for corrupt, message in (
            (data + b"junk", f"c.dump: end at byte offset {len(data)} (0x{len(data):x}): 4 more bytes after "
                             f"the core dump's end"),
            (build_dump(dataclasses.replace(good, reason=7)), "c.dump: reason: 7 is neither 0 (halt) nor 1 (trap)"),
            (build_dump(dataclasses.replace(good, registers=[(0, 238)] * 32)), "c.dump: registers[0].tag: 238 is not a "
                                                                   "register type"),
            (build_dump(dataclasses.replace(good, data_stack=[(5, 99)])), "c.dump: data_stack[0].tag: 99 is not a register type")):
        with pytest.raises(FormatError) as caught:
            parse_dump(corrupt, "c.dump")
        assert str(caught.value).startswith(message), str(caught.value)


def test_dump_version_1_is_still_read():
    """Version 1 stored the pending numbers oldest first; they are read back as counts."""
    from voxvm.formats import DumpFileV1

    data = DumpFileV1.build(dict(
        reason=0, trap=0, ip=4, flags=[0, 1, 0, 0], registers=[dict(value=0, tag=1)] * 32,
        data_stack=[], call_stack=[], pending=[3, 1, 3, 11], memory=b"\x00", heap=[]))
    dump = parse_dump(data)
    assert dump.pending == {1: 1, 3: 2, 11: 1} and dump.ip == 4
    assert parse_dump(build_dump(dump)) == dump          # written again as version 2


def test_dump_records_counts_not_entries():
    """semantics.md §9: the dump's size does not depend on how many exceptions are pending."""
    base = dict(reason=0, trap=0, ip=0, flags=(0, 0, 0, 0), registers=[(0, 1)] * 32,
                data_stack=[], call_stack=[], memory=b"", heap=[])
    few = build_dump(Dump(pending={1: 1}, **base))
    many = build_dump(Dump(pending={1: 10**12, 11: 5}, **base))
    assert len(few) == len(many)
    assert parse_dump(many).pending == {1: 10**12, 11: 5}
