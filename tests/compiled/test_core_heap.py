"""The heap family and the collector in the compiled core (voxvm.backends.compiled._core with the C heap of csrc/heap).

Three kinds of checks, each on every compiled dispatch loop:

* **against the reference**: alloc, allocr, allocr_nogc, free, store, load,
  memcpy, storedat, dlbc and ubd over edge operands (sizes, counts, tags,
  addresses at and past the ends of blocks, bad types, overlapping copies,
  invalid UTF-8); the whole state, heap blocks included, must equal
  ``voxvm.backends.reference.core.PyCore``'s;
* **exact expectations** from semantics.md §3 items 8-13 and §4: the
  exception of every fault, the program running on after it, the low-bytes
  rule of store/load, dlbc's append and jmpr into it, the collector's roots
  and edges, --gc-stress, the gc log, --max-heap;
* **the Core's heap API** (heap_read, heap_write, snapshot blocks, heap_info)
  and its life cycle (teardown frees the heap, Cores on threads).
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import threading

import pytest
from support.builders import build, item, utf16
from support.configs import HEAP_CONFIG as CONFIG
from support.machines import UNDER_ASAN, compiled, differences, state

Core = compiled().Core          # skips the module only in a pure-Python install

from voxvm.backends import Status
from voxvm.config import VMConfig
from voxvm.isa import Exc, Tag
from voxvm.backends.reference.core import PyCore
from voxvm.traps import TrapKind

U, I, F, S, A, D = (int(t) for t in (Tag.U64, Tag.I64, Tag.F64, Tag.STR, Tag.ADDR, Tag.DS_ADDR))
MASK = (1 << 64) - 1
ALLOC_FAULT, FREE_FAULT, WRITE_FAULT, READ_FAULT = (int(Exc.HeapAllocationFault), int(Exc.HeapFreeFault),
                                                    int(Exc.HeapWriteFault), int(Exc.HeapReadFault))
SEGM_FAULT, MAIN_SEGM_FAULT = int(Exc.HeapSegmFault), int(Exc.MainSegmFault)


def fb(x: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", x))[0]


def run_pair(program, dispatch: str, config: VMConfig = CONFIG, regs=None, budget: int = -1) -> Core:
    """Run on the reference and on the compiled core; the states (heap included) must be equal."""
    cores = []
    for core in (PyCore(program, config), Core(program, config, dispatch=dispatch)):
        for index, (bits, tag) in (regs or {}).items():
            core.set_reg(index, bits, tag)
        cores.append(core)
    ref, core = cores
    while True:
        expected = state(ref, ref.run(budget))
        got = state(core, core.run(budget))
        assert got == expected, f"{dispatch}: {differences(got, expected)}"
        if got["status"] in (Status.HALT, Status.TRAP):
            return core


def run(program, dispatch: str, config: VMConfig = CONFIG, regs=None) -> tuple[Core, int]:
    core = Core(program, config, dispatch=dispatch)
    for index, (bits, tag) in (regs or {}).items():
        core.set_reg(index, bits, tag)
    return core, core.run()


# ============================================================================ against the reference

SIZES = [0, 1, 7, 8, 9, 24, 100, 4096, 1 << 20, (1 << 20) + 1, 1 << 63, MASK]


def test_allocations_match_the_reference(dispatch):
    for size in SIZES:
        program = build(("alloc", 1, size), ("uload", 2, size), ("allocr", 3, 2), ("allocr_nogc", 4, 2),
                        ("alloc", 5, 3), ("halt",))
        run_pair(program, dispatch)
    # allocr reads its size with as_u64: float sizes truncate, negative int sizes are huge
    program = build(("allocr", 3, 2), ("allocr_nogc", 4, 2), ("halt",))
    for value in [(fb(10.9), F), (fb(-1.0), F), (MASK, I), (40, A), (16, S), (3, D)]:
        run_pair(program, dispatch, regs={2: value})


def test_free_matches_the_reference(dispatch):
    program = build(("alloc", 1, 40), ("allocr_nogc", 2, 3), ("free", 4), ("free", 4), ("halt",))
    for target in [(16, A), (17, A), (24, A), (0, A), (MASK, U), (fb(16.0), F), (16, U)]:
        run_pair(program, dispatch, regs={3: (24, U), 4: target})
    # freeing the nogc block, then a new allocation reuses its tile
    run_pair(build(("alloc", 1, 40), ("allocr_nogc", 2, 3), ("free", 2), ("alloc", 5, 8), ("halt",)),
             dispatch, regs={3: (24, U)})


COUNTS = [(0, U), (1, U), (2, U), (7, U), (8, U), (9, U), (MASK, U), (fb(3.7), F), (MASK, I), (5, A)]


def test_store_and_load_match_the_reference(dispatch):
    store = build(("alloc", 1, 24), ("movr", 5, 1), ("uadd", 5, 6), ("store", 5, 2, 3),
                  ("load", 4, 7, 5, 3), ("halt",))
    values = [(0x0102030405060708, U), (MASK, I), (fb(-2.5), F), (16, A), (5, S), (7, D)]
    for offset in [0, 1, 8, 16, 17, 20, 23, 24, 25, MASK]:
        for count in COUNTS:
            for value in values[:2] if offset not in (0, 16) else values:
                run_pair(store, dispatch, regs={2: value, 3: count, 4: (1, U), 6: (offset, U)})


def test_load_types_match_the_reference(dispatch):
    program = build(("alloc", 1, 16), ("uload", 2, 0x8000000000000001), ("uload", 3, 8), ("store", 1, 2, 3),
                    ("movr", 5, 1), ("uadd", 5, 6), ("load", 4, 7, 5, 3), ("halt",))
    for kind in [(1, U), (2, U), (3, U), (4, U), (8, U), (9, U), (0, U), (5, U), (7, U), (10, U), (MASK, U),
                 (fb(8.5), F), (2, I)]:
        for offset in (0, 9):   # a bad type traps only after a successful read
            run_pair(program, dispatch, regs={4: kind, 6: (offset, U)})


def test_memcpy_matches_the_reference(dispatch):
    program = build(("alloc", 1, 64), ("alloc", 2, 32), ("uload", 9, 0x1122334455667788), ("uload", 10, 8),
                    ("store", 1, 9, 10), ("movr", 11, 1), ("uadd", 11, 10), ("store", 11, 1, 10),
                    ("movr", 5, 1), ("uadd", 5, 6), ("movr", 7, 1), ("uadd", 7, 8),
                    ("memcpy", 7, 5, 3), ("halt",))
    for src, dst, count in [(0, 8, 16), (8, 0, 16), (0, 1, 63), (1, 0, 63), (0, 0, 64), (0, 64, 0),
                            (0, 65, 0), (0, 60, 8), (60, 0, 8), (0, 8, MASK), (MASK, 0, 1), (3, 20, 13)]:
        run_pair(program, dispatch, regs={6: (src, U), 8: (dst, U), 3: (count, U)})
    # between blocks, and out of the second block
    between = build(("alloc", 1, 64), ("alloc", 2, 32), ("uload", 3, 32), ("memcpy", 2, 1, 3),
                    ("uinc", 3), ("memcpy", 2, 1, 3), ("memcpy", 1, 2, 3), ("halt",))
    run_pair(between, dispatch)


def test_storedat_matches_the_reference(dispatch):
    program = build(("alloc", 1, 16), ("storedat", 1, 2, 3), ("halt",), data={"s": item(4, utf16("hi!"))})
    size = len(program.image)
    for start, count in [(0, 16), (0, 17), (size - 4, 4), (size - 4, 5), (size, 0), (size + 1, 0),
                         (MASK, 2), (2, MASK), (program.data_base, 15)]:
        run_pair(program, dispatch, regs={2: (start, U), 3: (count, U)})
    # into the middle of the block; a bad destination
    run_pair(build(("alloc", 1, 16), ("uadd", 1, 4), ("storedat", 1, 2, 3), ("halt",)), dispatch,
             regs={2: (0, U), 3: (8, U), 4: (8, U)})
    run_pair(build(("alloc", 1, 16), ("uadd", 1, 4), ("storedat", 1, 2, 3), ("halt",)), dispatch,
             regs={2: (0, U), 3: (8, U), 4: (9, U)})


UTF8_SAMPLES = [b"", b"hello", "héllo wörld".encode(), "日本語".encode(), "a😀b".encode(), b"\x80", b"\xff\xfe",
                b"\xc3", b"\xe6\x97", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xe0\x80\xaf", b"\xf4\x90\x80\x80",
                b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"ok\xe2\x82", b"\xe2\x82\xac\xe2\x28\xa1", b"\xf0\x28\x8c\x28",
                b"\xc2\xa9\xc2", b"\xf1\x80\x80\x80", b"\xef\xbf\xbf\xf4\x8f\xbf\xbf"]


def ubd_program(data: bytes, dst_size: int, overlap: bool = False):
    """Copy ``data`` to a heap block with storedat, then ubd it to a second block (or onto itself)."""
    size = max(len(data), 1)
    return build(("alloc", 1, size if not overlap else max(size, dst_size)), ("alloc", 2, dst_size),
                 ("dslea", 3, "%s", 9), ("ptou", 3, 3), ("uload", 4, len(data)), ("storedat", 1, 3, 4),
                 ("ubd", 1, 4, 1 if overlap else 2), ("halt",), data={"s": item(7, data)})


def test_ubd_matches_the_reference(dispatch):
    for data in UTF8_SAMPLES:
        expected = data.decode("utf-8", "replace").encode("utf-16-be")
        for dst_size in {len(expected), len(expected) + 3, max(len(expected) - 1, 0)}:
            core = run_pair(ubd_program(data, dst_size), dispatch)
            if dst_size >= len(expected):
                assert core.heap_read(core.get_reg(2)[0], len(expected)) == expected, data
        core = run_pair(ubd_program(data, 2 * len(data) + 2, overlap=True), dispatch)
        assert core.heap_read(16, len(expected)) == expected, data


def test_ubd_agrees_with_python_on_random_bytes(dispatch):
    """The C UTF-8 decoder replaces invalid input exactly as bytes.decode("utf-8", "replace")."""
    import random
    rng = random.Random(1234)
    alphabet = [0x00, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEE, 0xEF, 0xF0,
                0xF1, 0xF4, 0xF5, 0xFF, 0x8F, 0x90, 0x9F, 0xA0]
    for _ in range(60 if dispatch != "count" else 20):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        expected = data.decode("utf-8", "replace").encode("utf-16-be")
        core, status = run(ubd_program(data, len(expected)), dispatch)
        assert status == Status.HALT and core.pending() == {}
        assert core.heap_read(core.get_reg(2)[0], len(expected)) == expected, data.hex()


def test_ubd_faults_and_always_advances(dispatch):
    program = build(("alloc", 1, 8), ("alloc", 2, 4), ("uload", 3, 4), ("ubd", 1, 3, 2), ("ubd", 1, 4, 2),
                    ("ubd", 5, 3, 2), ("uload", 3, 0), ("ubd", 1, 3, 2), ("ubd", 1, 3, 5), ("halt",))
    core = run_pair(program, dispatch, regs={4: (9, U), 5: (12345, U)})
    # 4 bytes -> 8 bytes of UTF-16 do not fit 4; 9 bytes cannot be read; bad source; 0 bytes fine; bad dst
    assert core.pending() == {WRITE_FAULT: 2, READ_FAULT: 2}


UINT_42_HALT = bytes.fromhex("10" "01" "000000000000002a" "ff")   # uload r1 42; halt


def test_dlbc_matches_the_reference(dispatch):
    code = UINT_42_HALT
    program = build(("alloc", 1, len(code)), ("dslea", 3, "%c", 9), ("ptou", 3, 3), ("uload", 4, len(code)),
                    ("storedat", 1, 3, 4), ("dlbc", 5, 1, 4), ("jmpr", 5), ("halt",),
                    data={"c": item(7, code)})
    core = run_pair(program, dispatch)
    assert core.get_reg(5) == (len(program.image), D) and core.get_reg(1) == (42, U)
    # count 0, a bad source, and past --init-ram
    for count, source in [(0, None), (1, (7, U)), (1 << 20, None), (MASK, None)]:
        program = build(("alloc", 1, 8), ("dlbc", 5, 1, 4), ("halt",))
        regs = {4: (count, U)}
        if source:
            program = build(("alloc", 1, 8), ("dlbc", 5, 6, 4), ("halt",))
            regs[6] = source
        run_pair(program, dispatch, config=VMConfig(init_ram=4096, init_heap=1 << 22), regs=regs)


def test_dlbc_appends_code_that_jmpr_runs_and_redecodes_the_old_end(dispatch):
    """A truncated instruction at the image's end traps; once dlbc has appended the rest, it runs."""
    from voxvm.program import Program
    tail, rest = UINT_42_HALT[:2], UINT_42_HALT[2:]
    code = build(("alloc", 1, len(rest)), ("dslea", 3, 0, 9), ("ptou", 3, 3), ("uload", 4, len(rest)),
                 ("storedat", 1, 3, 4), ("dlbc", 5, 1, 4), ("uload", 6, 2), ("usub", 5, 6),
                 ("jmpr", 5)).image
    image = code + item(7, rest) + tail
    core = Core(Program(image=image, entry=0, data_base=len(code)), CONFIG, dispatch=dispatch)
    core.ip = len(image) - 2
    assert core.run() == Status.TRAP and core.trap_kind == TrapKind.TRUNCATED_INSTRUCTION
    core.ip = 0
    assert core.run() == Status.HALT, (core.trap_kind, core.trap_ip)
    assert core.get_reg(1) == (42, U) and core.get_reg(5) == (len(image) - 2, D)
    assert core.memory() == image + rest and core.pending() == {}


def test_dlbc_with_an_image_larger_than_init_ram_always_faults(dispatch):
    program = build(("alloc", 1, 8), ("uload", 4, 0), ("dlbc", 5, 1, 4), ("halt",))
    core = run_pair(program, dispatch, VMConfig(init_ram=10, init_heap=4096))
    assert core.pending() == {MAIN_SEGM_FAULT: 1} and len(core.memory()) == len(program.image)


def test_dlbc_past_init_ram_is_a_main_segm_fault(dispatch):
    program = build(("alloc", 1, 64), ("uload", 4, 64), ("dlbc", 5, 1, 4), ("dlbc", 5, 1, 4), ("halt",))
    ram = len(program.image) + 100
    core, status = run(program, dispatch, VMConfig(init_ram=ram, init_heap=4096))
    assert status == Status.HALT and core.pending() == {MAIN_SEGM_FAULT: 1}
    assert len(core.memory()) == len(program.image) + 64 and core.get_reg(5) == (len(program.image), D)


# ---------------------------------------------------------------------------- the collector

def gc_config(**kw) -> VMConfig:
    return VMConfig(init_heap=4096, max_heap=1 << 20, gc_stress=True, **kw)


def live(core) -> list[int]:
    """Addresses of the live blocks (the tests end with an allocation: under --gc-stress it collects)."""
    return [address for address, *_ in core.snapshot().heap]


def test_roots_are_registers_and_stack_entries_tagged_address(dispatch):
    program = build(("alloc", 1, 8), ("alloc", 2, 8), ("alloc", 3, 8), ("alloc", 4, 8),
                    ("push", 2), ("ptou", 2, 2),           # r2's block: only on the stack (the top entry)
                    ("ptou", 3, 3),                        # r3's block: nothing refers to it
                    ("alloc", 5, 1000), ("halt",))
    core = run_pair(program, dispatch, gc_config())
    a1, a2, a4, a5 = (core.get_reg(i)[0] for i in (1, 2, 4, 5))
    assert live(core) == sorted([a1, a2, a4, a5])           # r3's block was collected


def test_pointers_stored_in_blocks_keep_their_targets(dispatch):
    program = build(
        ("alloc", 1, 32), ("alloc", 2, 8), ("alloc", 3, 8), ("alloc", 4, 8),
        ("movr", 5, 1), ("uload", 6, 8), ("uadd", 5, 6),   # r5 = r1 + 8: a pointer stored at offset 8
        ("store", 5, 2, 6),                                # r1[8] -> block 2 (traced)
        ("uload", 7, 4), ("store", 1, 3, 7),               # r1[0] = low 4 bytes of block 3's address: no edge
        ("movr", 9, 4), ("uinc", 9),                       # an interior pointer to block 4 keeps nothing
        ("ptou", 2, 2), ("ptou", 3, 3), ("ptou", 4, 4), ("ptou", 5, 5),
        ("alloc", 10, 1000), ("halt",))
    core = run_pair(program, dispatch, gc_config())
    assert live(core) == sorted(core.get_reg(i)[0] for i in (1, 2, 10))   # blocks 3 and 4 collected


def test_overwritten_pointers_are_forgotten_and_memcpy_carries_them(dispatch):
    program = build(
        ("alloc", 1, 16), ("alloc", 2, 16), ("alloc", 3, 8), ("alloc", 4, 8), ("uload", 6, 8),
        ("store", 1, 3, 6),                   # r1[0] -> block 3
        ("store", 2, 4, 6),                   # r2[0] -> block 4
        ("uload", 7, 1), ("store", 2, 7, 7),  # overwrite one byte of r2's pointer: edge to block 4 gone
        ("movr", 8, 2), ("uadd", 8, 6), ("memcpy", 8, 1, 6),   # copy r1's pointer into r2[8]
        ("uload", 9, 0), ("store", 1, 9, 6),  # and clear it in r1
        ("ptou", 3, 3), ("ptou", 4, 4), ("ptou", 8, 8), ("ptou", 1, 1),   # only r2 stays a root
        ("alloc", 10, 1000), ("halt",))
    core = run_pair(program, dispatch, gc_config())
    assert live(core) == sorted(core.get_reg(i)[0] for i in (2, 3, 10))   # blocks 1 and 4 collected


def test_nogc_blocks_are_never_collected_and_are_traced(dispatch):
    program = build(("uload", 1, 16), ("allocr_nogc", 2, 1), ("alloc", 3, 8), ("uload", 6, 8),
                    ("store", 2, 3, 6), ("ptou", 2, 2), ("ptou", 3, 3), ("alloc", 4, 8), ("alloc", 5, 8),
                    ("halt",))
    core = run_pair(program, dispatch, gc_config())
    blocks = {address: kind for address, _, kind, _ in core.snapshot().heap}
    assert blocks[core.get_reg(2)[0]] == 1 and core.get_reg(3)[0] in blocks


def test_gc_stress_collects_before_every_allocation(dispatch):
    program = build(("uload", 2, 0), ("uload", 3, 50), "top:", ("alloc", 1, 100), ("uinc", 2), ("ucmp", 2, 3),
                    ("jl", "@top"), ("halt",))
    core, status = run(program, dispatch, gc_config())
    info = core.heap_info()
    # r1 still holds the previous block while the next allocation collects
    assert status == Status.HALT and info["collections"] == 50 and info["blocks"] == 2
    core, status = run(program, dispatch, VMConfig(init_heap=1 << 20))
    assert core.heap_info()["collections"] == 0 and core.heap_info()["blocks"] == 50


def test_collections_run_on_allocation_pressure_and_free_garbage(dispatch):
    """Without --gc-stress a loop that drops every block runs in a heap that stays small."""
    program = build(("uload", 2, 0), ("uload", 3, 20000), "top:", ("alloc", 1, 1000), ("uinc", 2),
                    ("ucmp", 2, 3), ("jl", "@top"), ("halt",))
    core, status = run(program, dispatch, CONFIG)
    info = core.heap_info()
    assert status == Status.HALT and core.pending() == {}
    assert info["collections"] > 0 and info["size"] <= 256 * 1024 and info["blocks"] < 200


def test_gc_log_lines_go_to_the_log_callback(dispatch):
    program = build(("uload", 2, 0), ("uload", 3, 150), "top:", ("alloc", 1, 100), ("uinc", 2), ("ucmp", 2, 3),
                    ("jl", "@top"), ("halt",))
    for config, wanted in [(gc_config(gc_log=True), True), (gc_config(verbose=True), True), (gc_config(), False)]:
        core = Core(program, config, dispatch=dispatch)
        lines = []
        core.set_log(lines.append)
        assert core.run() == Status.HALT
        collections = [line for line in lines if line.startswith("gc: collection ")]
        # 150 collections: more than the C buffer holds, so the loop returned to flush it
        assert len(collections) == (150 if wanted else 0), lines[:3]
        if wanted:
            assert collections[0].startswith("gc: collection 1: freed 0 blocks (0 bytes), 0 blocks live (0 bytes), "
                                             "heap ")
            assert collections[-1].startswith("gc: collection 150: freed 1 blocks (100 bytes), 1 blocks live "
                                              "(100 bytes), heap ")


def test_budget_slices_across_log_flushes_match_the_reference(dispatch):
    program = build(("uload", 2, 0), ("uload", 3, 100), "top:", ("alloc", 1, 16), ("push", 1), ("pop", 4),
                    ("uinc", 2), ("ucmp", 2, 3), ("jl", "@top"), ("halt",))
    config = gc_config(gc_log=True)
    ref, core = PyCore(program, config), Core(program, config, dispatch=dispatch)
    ref_lines, lines = [], []
    ref.set_log(ref_lines.append)
    core.set_log(lines.append)
    for _ in range(40):
        expected, got = state(ref, ref.run(7)), state(core, core.run(7))
        assert got == expected, differences(got, expected)
        if got["status"] == Status.HALT:
            break
    assert got["status"] == Status.HALT
    assert len([x for x in lines if "collection" in x]) == 100
    # The same lines on both backends (voxvm.backends.gc_collection_line), but for the pause.
    assert [without_pause(x) for x in lines] == [without_pause(x) for x in ref_lines]


def without_pause(line: str) -> str:
    return re.sub(r", pause \d+\.\d{3} ms$", ", pause - ms", line)


@pytest.mark.parametrize("program, config", [
    # One allocation that collects, grows for the live set, then grows again to fit.
    (build(("uload", 5, 30), "top:", ("alloc", 1, 100), ("push", 1), ("udec", 5), ("jnz", "@top"),
           ("alloc", 2, 100000), ("halt",)), VMConfig(init_heap=4096, gc_log=True)),
    # ... after 63 collections: the log had one slot left when it came.
    (build(("uload", 5, 63), "top:", ("alloc", 1, 8), ("udec", 5), ("jnz", "@top"), ("alloc", 2, 100000),
           ("halt",)), VMConfig(init_heap=4096, gc_stress=True, gc_log=True)),
], ids=["two-growths", "log-nearly-full"])
def test_every_growth_of_one_allocation_is_logged_in_order(dispatch, program, config):
    ref, core = PyCore(program, config), Core(program, config, dispatch=dispatch)
    ref_lines, lines = [], []
    ref.set_log(ref_lines.append)
    core.set_log(lines.append)
    assert ref.run() == core.run() == Status.HALT
    assert [without_pause(x) for x in lines] == [without_pause(x) for x in ref_lines]
    assert lines[-1].startswith("gc: heap grown to ") and lines[-2].startswith("gc: ")
    assert sum(x.startswith("gc: heap grown to ") for x in lines[-3:]) >= 1


def test_gc_log_lines_agree_between_backends_through_collections_and_growth(dispatch):
    # Kept blocks make the heap grow; dropped ones are freed: both kinds of line, with sizes.
    program = build(("uload", 2, 0), ("uload", 3, 300), "top:", ("alloc", 1, 48), ("push", 1),
                    ("alloc", 4, 200), ("uinc", 2), ("ucmp", 2, 3), ("jl", "@top"), ("halt",))
    config = gc_config(gc_log=True)
    ref, core = PyCore(program, config), Core(program, config, dispatch=dispatch)
    ref_lines, lines = [], []
    ref.set_log(ref_lines.append)
    core.set_log(lines.append)
    assert ref.run() == core.run() == Status.HALT
    assert any(x.startswith("gc: heap grown to ") for x in lines)
    assert any(" freed 0 blocks " not in x for x in lines if "collection" in x)
    assert [without_pause(x) for x in lines] == [without_pause(x) for x in ref_lines]


# ---------------------------------------------------------------------------- --max-heap

def test_exhausting_max_heap_raises_and_the_heap_stays_under_it(dispatch):
    """Every block stays reachable (pushed); allocations fail once --max-heap is reached, the program runs on."""
    program = build(("uload", 2, 0), ("uload", 3, 600), "top:", ("alloc", 1, 4000), ("push", 1), ("uinc", 2),
                    ("ucmp", 2, 3), ("jl", "@top"), ("uload", 9, 7), ("halt",))
    core = run_pair(program, dispatch, VMConfig(init_heap=4096, max_heap=1 << 20))
    info = core.heap_info()
    assert core.get_reg(9) == (7, U)
    failures = core.pending()
    assert set(failures) == {ALLOC_FAULT} and 0 < failures[ALLOC_FAULT] < 600
    assert info["peak_capacity"] <= (1 << 20) + 8 and info["size"] <= 1 << 20


def test_huge_requests_fail_at_once(dispatch):
    program = build(("alloc", 1, 1 << 63), ("alloc", 2, MASK), ("uload", 3, 1 << 40), ("allocr", 4, 3),
                    ("allocr_nogc", 5, 3), ("alloc", 6, 8), ("halt",))
    core, status = run(program, dispatch, VMConfig(init_heap=4096, max_heap=1 << 16))
    assert status == Status.HALT and core.pending() == {ALLOC_FAULT: 4}
    assert [core.get_reg(i) for i in (1, 2, 4, 5)] == [(0, A)] * 4 and core.get_reg(6) == (16, A)
    assert core.heap_info()["peak_capacity"] <= (1 << 16) + 8


CHILD = """
import io, resource, sys
from voxvm.config import VMConfig
from voxvm.cli.loading import load_path
from voxvm.machine import run_program
out = io.BytesIO()
rc = run_program(load_path(sys.argv[1]), VMConfig(backend="cython", max_heap=int(sys.argv[2])),
                 io.BytesIO(), out, io.BytesIO())
print(rc, out.getvalue().decode().strip(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB is Linux's")
def test_process_stays_small_with_a_small_max_heap(tmp_path):
    """A program that allocates 1 MB blocks without end and keeps them: under --max-heap=4MB the
    process's peak memory stays within a few MB of a run that allocates nothing."""
    hog = tmp_path / "hog.vvs"
    hog.write_text("section text\n.start\nuload r2 0\nuload r3 3000\n"
                   "label top\nalloc r1 1048576\npush r1\nuinc r2\nucmp r2 r3\njl @top\n"
                   "uload r1 1\nuload r2 1\nncall 1 r0\nhalt\n")
    idle = tmp_path / "idle.vvs"
    idle.write_text("section text\n.start\nuload r1 1\nuload r2 1\nncall 1 r0\nhalt\n")
    peaks = []
    for source in (idle, hog):
        # cwd outside the checkout: `python -c` puts cwd first on sys.path, and the source
        # tree has no compiled core after a plain `pip install .` (CI).
        result = subprocess.run([sys.executable, "-c", CHILD, str(source), str(4 << 20)],
                                capture_output=True, timeout=120, cwd=tmp_path)
        assert result.returncode == 0, result.stderr.decode()
        rc, printed, peak = result.stdout.split()
        assert (rc, printed) == (b"0", b"1")
        peaks.append(int(peak) * 1024)
    assert peaks[1] - peaks[0] < 16 << 20, peaks


# ============================================================================ the Core's heap API

def test_heap_read_and_write():
    core, status = run(build(("alloc", 1, 10), ("allocr_nogc", 2, 3), ("halt",)), "switch",
                       regs={3: (5, U)})
    assert status == Status.HALT
    assert core.heap_read(16, 10) == bytes(10)
    assert core.heap_write(18, b"abc") is True and core.heap_read(16, 6) == b"\0\0abc\0"
    assert core.heap_write(24, b"abc") is False          # one byte past the block
    assert core.heap_write(16, b"") is True and core.heap_write(26, b"") is True
    assert core.heap_write(MASK, b"x") is False and core.heap_write(-1, b"x") is False
    assert core.heap_write(1 << 64, b"x") is False
    assert core.heap_read(16, 11) is None and core.heap_read(26, 0) == b"" and core.heap_read(0, 0) is None
    assert core.heap_read(-1, 1) is None and core.heap_read(16, -1) is None and core.heap_read(16, 1 << 64) is None
    assert core.heap_write(16, bytearray(b"xy")) and core.heap_write(20, memoryview(b"zz"))
    assert core.snapshot().heap == [(16, 10, 0, b"xyabzz\0\0\0\0"), (core.get_reg(2)[0], 5, 1, bytes(5))]


def test_print_of_a_heap_string_through_the_machine():
    from io import BytesIO

    from voxvm.machine import run_program
    text = utf16("heap text")
    program = build(("alloc", 1, len(text)), ("dslea", 2, "%t", 9), ("ptou", 2, 2), ("uload", 3, len(text)),
                    ("storedat", 1, 2, 3), ("movr", 4, 3), ("uload", 2, 1), ("ncall", 1, 0), ("halt",),
                    data={"t": item(7, text)})
    out = BytesIO()
    rc = run_program(program, VMConfig(backend="cython"), BytesIO(), out, BytesIO())
    assert rc == 0 and out.getvalue() == b"heap text\n"


def test_gc_log_through_the_machine_goes_to_stderr_only():
    from io import BytesIO

    from voxvm.machine import run_program
    program = build(("uload", 2, 0), ("uload", 3, 100), "top:", ("alloc", 1, 8), ("uinc", 2), ("ucmp", 2, 3),
                    ("jl", "@top"), ("movr", 1, 2), ("uload", 2, 1), ("ncall", 1, 0), ("halt",))
    for options, expected in [({"gc_log": True}, 100), ({"verbose": True}, 100), ({}, 0)]:
        out, err = BytesIO(), BytesIO()
        config = VMConfig(backend="cython", gc_stress=True, **options)
        assert run_program(program, config, BytesIO(), out, err) == 0
        lines = err.getvalue().decode().splitlines()
        assert out.getvalue() == b"100\n"
        assert sum(line.startswith("voxvm: gc: collection ") for line in lines) == expected
        assert all(line.startswith("voxvm: ") for line in lines)


@pytest.mark.skipif(UNDER_ASAN, reason="ASan keeps freed memory in quarantine: RSS says nothing")
def test_teardown_frees_the_heap():
    """Cores whose heaps touched 8 MB each come and go without the process growing."""
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc")
    program = build(("alloc", 1, 8 << 20), ("halt",))
    config = VMConfig(init_heap=1 << 20, max_heap=64 << 20)
    for _ in range(3):
        Core(program, config).run()
    before = rss()
    for _ in range(40):
        core = Core(program, config)
        assert core.run() == Status.HALT and core.pending() == {}
        del core
    assert rss() - before < 100 << 20


def test_cores_with_heaps_run_on_threads():
    program = build(("uload", 2, 0), ("uload", 3, 3000), ("uload", 5, 8), "top:", ("alloc", 1, 24),
                    ("store", 1, 2, 5), ("push", 1), ("load", 5, 4, 1, 5), ("uinc", 2), ("ucmp", 2, 3),
                    ("jl", "@top"), ("halt",))
    results = {}

    def work(index):
        core = Core(program, VMConfig(init_heap=4096, max_heap=1 << 24, gc_stress=index % 2 == 0))
        results[index] = (core.run(), core.get_reg(4), core.pending(), len(core.snapshot().heap))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == (Status.HALT, (2999, A), {}, 3000) for r in results.values()), results


def test_set_log_is_optional_and_replaceable():
    program = build(("alloc", 1, 8), ("alloc", 1, 8), ("halt",))
    core = Core(program, gc_config(gc_log=True))
    assert core.run() == Status.HALT            # no callback: events are dropped
    first, second = [], []
    core = Core(program, gc_config(gc_log=True))
    core.set_log(first.append)
    core.set_log(second.append)
    core.run()
    assert first == [] and len(second) == 2
    core = Core(program, gc_config(gc_log=True))
    core.set_log(None)
    assert core.run() == Status.HALT


def test_heap_blocks_in_core_dumps_round_trip(tmp_path):
    from voxvm.formats import build_dump, parse_dump
    program = build(("alloc", 1, 5), ("uload", 2, 0xABCDEF), ("uload", 3, 3), ("store", 1, 2, 3),
                    ("uload", 4, 9), ("allocr_nogc", 5, 4), ("halt",))
    core, status = run(program, "switch")
    dump = parse_dump(build_dump(core.snapshot()))
    assert [(b[0], b[1], b[2], bytes(b[3])) for b in dump.heap] == [
        (16, 5, 0, b"\xab\xcd\xef\0\0"), (core.get_reg(5)[0], 9, 1, bytes(9))]
