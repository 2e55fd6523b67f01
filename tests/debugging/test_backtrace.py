"""Backtraces on traps (voxvm/backtrace.py) and the trap record of core dumps (format v3)."""

from __future__ import annotations

import pytest

from support.debug_programs import AVERAGE, RECURSE, run_source
from voxvm.dumpview import render_dump
from voxvm.formats import DumpFileV2, parse_dump


def test_a_deep_stack_shows_its_innermost_and_outermost_frames(backend):
    status, _, err = run_source(RECURSE, "r.vvs", backend=backend, max_recursion=50)
    lines = err.splitlines()
    assert status == 70
    assert lines[0] == ("voxvm: trap: recursion limit exceeded (50 frames; --max-recursion=N raises it) "
                        "at 0xa (call) in down, r.vvs:7")
    assert lines[1] == "voxvm: backtrace (innermost first):"
    frames = lines[2:]
    assert len(frames) == 21
    assert frames[0] == "voxvm:   #0   0x000a in down, r.vvs:7"
    assert frames[9] == "voxvm:   #9   0x000a in down, r.vvs:7"
    assert frames[10] == "voxvm:   ...  (31 frames not shown)"
    assert frames[11] == "voxvm:   #41  0x000a in down, r.vvs:7"
    assert frames[-1] == "voxvm:   #50  0x0000 in main, r.vvs:4"


@pytest.mark.parametrize("source, options, header", [
    (AVERAGE, {}, "voxvm core dump: program trapped (TYPE_MISMATCH: type mismatch: uint64 / float64)"),
    (RECURSE, {"max_recursion": 5},
     "voxvm core dump: program trapped (RECURSION_LIMIT: recursion limit exceeded (5 frames; "
     "--max-recursion=N raises it))"),
])
def test_the_dump_records_the_trap_kind_and_arguments(backend, tmp_path, monkeypatch, source, options, header):
    monkeypatch.chdir(tmp_path)
    status, _, _ = run_source(source, backend=backend, coredump_exit=True, **options)
    assert status == 70
    dump = parse_dump((tmp_path / "voxvm_err.dump").read_bytes())
    assert render_dump(dump).splitlines()[0] == header


def test_a_version_2_dump_says_it_has_no_trap_details():
    head = dict(reason=1, trap=5, ip=0, flags=[0, 0, 0, 0],
                registers=[dict(value=0, tag=1)] * 32, data_stack=[], call_stack=[],
                pending=[0] * 11, memory=b"\xff", heap=[])
    dump = parse_dump(DumpFileV2.build(head))
    assert dump.version == 2 and dump.trap_a == 0
    assert render_dump(dump).splitlines()[0] == ("voxvm core dump: program trapped (TYPE_MISMATCH; "
                                                 "a version 2 dump does not record the trap's details)")


@pytest.mark.parametrize("depth", [0, 5, 20, 21, 22, 500])
def test_resolving_only_the_shown_frames_renders_the_same_lines(depth):
    # A trap at a recursion limit of 16 M frames resolved every frame (minutes and
    # gigabytes) to print 21 lines; frames(..., HEAD) resolves only what is shown.
    import voxasm
    from voxvm.backtrace import HEAD, frames, render_frames

    program = voxasm.assemble_program(RECURSE, "r.vvs")
    call_stack = [3] + [10] * depth                 # main's call, then `down` calling itself
    memory = program.image
    read = lambda address, n: memory[address:address + n]      # noqa: E731
    every = frames(10, call_stack, program, read)
    shown = frames(10, call_stack, program, read, HEAD)
    assert len(shown) == (len(every) if len(every) <= 21 else 20) and shown[-1].depth == len(call_stack)
    assert render_frames(shown) == render_frames(every)


def test_code_after_a_function_from_the_entry_point_on_is_top_level(backend):
    # .start after f's body: no end-of-function mark, but the entry point begins top-level code
    source = "func f\n    uload r1 1\n    pop r1\n    ret\n.start\n    call @f\n    halt\n"
    status, _, err = run_source(source, "tb.vvs", backend=backend)
    assert err.splitlines()[2:] == ["voxvm:   #0   0x000a in f, tb.vvs:3", "voxvm:   #1   0x000d in (top level), tb.vvs:6"]


def test_only_the_entry_points_own_stretch_is_top_level():
    from voxvm.program import Program

    program = Program(bytes(64), entry=20, functions=(0, 10, 30))
    assert [program.function_index_at(a) for a in (0, 15, 20, 29, 30, 63)] == [0, 1, None, None, 2, 2]
    inside = Program(bytes(64), entry=10, functions=(0, 10, 30))      # `func main` + .start
    assert [inside.function_index_at(a) for a in (10, 29)] == [1, 1]
