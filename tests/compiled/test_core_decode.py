"""The compiled core's pre-decoder: fetch traps, fusion, invalidation, budget, ip range.

The core decodes lazily into one slot per byte address and fuses common pairs
(voxvm/backends/compiled/csrc/vv_core.h). These tests pin down what must not be visible from
outside: fetch traps happen exactly where and when upstream's fetch would
fail (docs/semantics.md §14), jumps into the middle of a fused pair work,
writes into main memory are seen by later fetches (also inside fused
pairs), and the branch budget counts fused compare-and-branch as one event.
"""

from __future__ import annotations

import pytest
from support.builders import build
from support.configs import CONFIG
from support.machines import compiled, dispatches


from voxvm.backends import Status
from voxvm.isa import BY_MNEMONIC, OPS, Tag, encode
from voxvm.program import Program
from voxvm.traps import TrapKind

core_module = compiled()          # skips the module only in a pure-Python install
Core = core_module.Core
DISPATCHES = dispatches()

MASK = (1 << 64) - 1
U = int(Tag.U64)


def raw(image: bytes, **kw) -> Program:
    return Program(image=bytes(image), **kw)


@pytest.fixture(params=DISPATCHES)
def dispatch(request) -> str:
    return request.param


def trap(core) -> tuple[int, int, int, int]:
    return (core.trap_kind, core.trap_ip, core.trap_a, core.trap_b)


# ----------------------------------------------------------------------------- fetch traps

def test_unknown_opcode(dispatch):
    core = Core(raw(encode(BY_MNEMONIC["nop"], ()) + b"\x00"), CONFIG, dispatch=dispatch)
    assert core.run() == Status.TRAP
    assert trap(core) == (TrapKind.UNKNOWN_OPCODE, 1, 0, 0) and core.ip == 1


def test_every_undefined_opcode_traps(dispatch):
    for byte in range(256):
        if byte in {op.code for op in OPS}:
            continue
        core = Core(raw(bytes([byte]) + bytes(20)), CONFIG, dispatch=dispatch)
        assert core.run() == Status.TRAP and trap(core) == (TrapKind.UNKNOWN_OPCODE, 0, byte, 0), hex(byte)


def test_truncated_instruction(dispatch):
    core = Core(raw(encode(BY_MNEMONIC["nop"], ()) + bytes([0x10, 1, 0, 0])), CONFIG, dispatch=dispatch)
    assert core.run() == Status.TRAP
    assert trap(core) == (TrapKind.TRUNCATED_INSTRUCTION, 1, 10, 4)


def test_bad_register_reports_the_first_bad_operand(dispatch):
    image = encode(BY_MNEMONIC["uadd"], (1, 40)) + encode(BY_MNEMONIC["uadd"], (50, 60))
    core = Core(raw(image), CONFIG, dispatch=dispatch)
    assert core.run() == Status.TRAP and trap(core) == (TrapKind.BAD_REGISTER, 0, 40, 0)
    core.ip = 3
    assert core.run() == Status.TRAP and trap(core) == (TrapKind.BAD_REGISTER, 3, 50, 0)


def test_ncall_register_byte_is_not_checked(dispatch):
    core = Core(raw(encode(BY_MNEMONIC["ncall"], (0x1234, 200)) + encode(BY_MNEMONIC["halt"], ())),
                CONFIG, dispatch=dispatch)
    assert core.run() == Status.NCALL
    assert (core.ncall_code, core.ncall_ip, core.ip) == (0x1234, 0, 4)
    assert core.run() == Status.HALT and core.ip == 4


# ----------------------------------------------------------------------------- ip outside memory

def test_falling_off_the_end(dispatch):
    core = Core(raw(encode(BY_MNEMONIC["nop"], ())), CONFIG, dispatch=dispatch)
    assert core.run() == Status.TRAP and trap(core) == (TrapKind.IP_OUTSIDE, 1, 1, 1) and core.ip == 1


def test_entry_outside_and_empty_image(dispatch):
    assert Core(raw(b""), CONFIG, dispatch=dispatch).run() == Status.TRAP
    core = Core(raw(b"\x02\x02", entry=7), CONFIG, dispatch=dispatch)
    assert core.run() == Status.TRAP and trap(core) == (TrapKind.IP_OUTSIDE, 7, 7, 2)


@pytest.mark.parametrize("code", [
    [("jmp", 5000)],
    [("uload", 1, MASK), ("jmpr", 1)],
    [("uload", 1, 1), ("ucmp", 1, 1), ("jz", 5000)],            # fused compare-and-branch
    [("uload", 1, 5), ("uinc", 1), ("ucmp", 1, 1), ("jz", 5000)],  # fused counted-loop step
    [("uload", 1, 2), ("udec", 1), ("jnz", 5000)],               # fused count-down step
    [("uload", 1, 2), ("uload", 2, 3), ("ucmp", 1, 2), ("jl", 5000)],  # compare with a constant
])
def test_jumps_outside_trap_at_the_target(code, dispatch):
    core = Core(build(*code), CONFIG, dispatch=dispatch)
    assert core.run() == Status.TRAP
    target = code[-1][-1] if code[-1][0] != "jmpr" else MASK
    assert trap(core)[:3] == (TrapKind.IP_OUTSIDE, target, target) and core.ip == target


def test_call_to_a_function_outside_memory_traps_at_the_target(dispatch):
    # Only a function inside memory decodes as a resolved call; this one fetches outside.
    core = Core(raw(encode(BY_MNEMONIC["call"], (0,)), functions=(5000,)), CONFIG, dispatch=dispatch)
    assert core.run() == Status.TRAP
    assert trap(core)[:3] == (TrapKind.IP_OUTSIDE, 5000, 5000) and core.snapshot().call_stack == [9]


def test_return_address_at_the_end(dispatch):
    core = Core(build(("jmp", "@f"), "f:", ("call", 0), functions=("f",)), CONFIG, dispatch=dispatch)
    core.ip = 9
    # call pushes 18 (the end of memory); the callee is the call itself: recursion until the limit.
    assert core.run() == Status.TRAP and core.trap_kind == TrapKind.RECURSION_LIMIT
    assert core.snapshot().call_stack == [18] * CONFIG.max_recursion


# ----------------------------------------------------------------------------- fusion details

def test_jump_into_the_middle_of_a_fused_pair(dispatch):
    core = Core(build(("uload", 1, 1), ("uload", 2, 2), ("ucmp", 1, 2), "mid:", ("jl", "@yes"), ("halt",),
                      "yes:", ("uload", 3, 7), ("ucmp", 2, 1), ("jmp", "@mid")), CONFIG, dispatch=dispatch)
    # first pass: ucmp 1 2 + jl (fused) taken; then ucmp 2 1 sets NF = 0, and jl alone is not taken.
    assert core.run() == Status.HALT
    assert core.get_reg(3) == (7, U) and core.ip == 32   # the halt after the jl


def test_jump_into_the_middle_of_a_constant_compare_and_branch(dispatch):
    core = Core(build(("uload", 1, 1), ("uload", 2, 2), "mid:", ("ucmp", 1, 2), ("jl", "@yes"), ("halt",),
                      "yes:", ("uload", 3, 7), ("uload", 1, 3), ("jmp", "@mid")), CONFIG, dispatch=dispatch)
    # uload 2 + ucmp + jl (fused) taken with r1 = 1; then at mid, ucmp 3 2 alone: not taken.
    assert core.run() == Status.HALT
    assert core.get_reg(3) == (7, U) and core.ip == 32   # the halt after the jl


def _self_modifying(dispatch: str, payload_code, patch_offset: int, patch_value: int, probe) -> Core:
    """A function whose code is also the payload of a data item, patched by dssave between two calls.

    Layout: jmp start | item header (uint[], length = len(payload)) | payload = the
    function's code | start: call f; probe; patch; call f; halt.
    """
    body = build(*payload_code).image
    header = bytes([6]) + len(body).to_bytes(8, "big")
    head = encode(BY_MNEMONIC["jmp"], (0,)) + header + body
    start = len(head)
    tail_code = [("call", 0), *probe, ("uload", 30, patch_value), ("dssave", 30, 0, patch_offset),
                 ("call", 0), ("halt",)]
    tail = build(*tail_code).image
    image = bytearray(encode(BY_MNEMONIC["jmp"], (start,)) + header + body + tail)
    data_base = len(image)
    item = 9
    # dssave's item offset is relative to data_base: wrap around to the item inside the code.
    rel = (item - data_base) & MASK
    tail = build(*[("call", 0), *probe, ("uload", 30, patch_value), ("dssave", 30, rel, patch_offset),
                   ("call", 0), ("halt",)]).image
    image = bytearray(encode(BY_MNEMONIC["jmp"], (start,)) + header + body + tail)
    assert len(image) == data_base
    return Core(Program(image=bytes(image), entry=0, data_base=data_base, functions=(18,)), CONFIG,
                dispatch=dispatch)


def test_dssave_into_code_is_seen_by_the_next_fetch(dispatch):
    # f: uload r1 1; ret   -> patch the immediate's 8 bytes (payload offset 2) to 0x42
    core = _self_modifying(dispatch, [("uload", 1, 1), ("ret",)], 2, 0x42, [("movr", 2, 1)])
    assert core.run() == Status.HALT
    assert core.get_reg(2) == (1, U) and core.get_reg(1) == (0x42, U)


def test_dssave_into_the_second_half_of_a_fused_pair(dispatch):
    # f: ucmp r1 r2; jl yes; uload r3 0; ret; yes: uload r3 1; ret  (addresses inside the payload)
    base = 18
    code = [("ucmp", 1, 2), ("jl", base + 23), ("uload", 3, 0), ("ret",), ("uload", 3, 1), ("ret",)]
    # payload offset 3 is jl's opcode: write jz (0x41) there, keeping the target's low byte.
    core = _self_modifying(dispatch, code, 3, 0x41 << 56, [("movr", 4, 3)])
    core.set_reg(1, 1, U)
    core.set_reg(2, 2, U)
    assert core.run() == Status.HALT
    assert core.get_reg(4) == (1, U)      # ucmp + jl: taken
    assert core.get_reg(3) == (0, U)      # ucmp + jz after the patch: not taken


def test_dssave_into_the_last_byte_of_a_constant_compare_and_branch(dispatch):
    # f: uload r3 2; ucmp r1 r3; jl one; uload r4 0; ret; one: uload r4 1; ret; two: uload r4 2; ret
    # The 22 bytes of the first three fuse into one slot; the patch writes only the last
    # byte of jl's target (payload offset 21, keeping the 7 bytes after it): one -> two.
    base = 18
    code = [("uload", 3, 2), ("ucmp", 1, 3), ("jl", base + 33), ("uload", 4, 0), ("ret",),
            ("uload", 4, 1), ("ret",), ("uload", 4, 2), ("ret",)]
    body = build(*code).image
    patch = int.from_bytes(bytes([base + 44]) + body[22:29], "big")
    core = _self_modifying(dispatch, code, 21, patch, [("movr", 5, 4)])
    core.set_reg(1, 1, U)
    assert core.run() == Status.HALT
    assert core.get_reg(5) == (1, U)      # before the patch: jl to one
    assert core.get_reg(4) == (2, U)      # after: jl to two


def test_dssave_that_makes_an_unknown_opcode(dispatch):
    core = _self_modifying(dispatch, [("uload", 1, 1), ("ret",)], 0, 0xEE << 56, [])
    assert core.run() == Status.TRAP and trap(core)[:3] == (TrapKind.UNKNOWN_OPCODE, 18, 0xEE)


# ----------------------------------------------------------------------------- branch budget

def test_budget_zero_runs_nothing(dispatch):
    core = Core(build(("uload", 1, 5), ("halt",)), CONFIG, dispatch=dispatch)
    assert core.run(0) == Status.BUDGET and core.ip == 0 and core.get_reg(1) == (0, U)


def test_budget_counts_branch_events_and_fused_pairs_once(dispatch):
    program = build(("uload", 1, 0), ("uload", 2, 10), "top:", ("uinc", 1), ("ucmp", 1, 2), ("jl", "@top"),
                    ("halt",))
    core = Core(program, CONFIG, dispatch=dispatch)
    assert core.run(3) == Status.BUDGET
    assert core.get_reg(1) == (3, U) and core.ip == 20     # back at the loop top after 3 jl's
    assert core.run(6) == Status.BUDGET and core.get_reg(1) == (9, U)
    assert core.run(2) == Status.HALT and core.get_reg(1) == (10, U)


def test_budget_counts_constant_operand_pairs_once(dispatch):
    program = build(("uload", 1, 0), "top:", ("uload", 3, 1), ("uadd", 1, 3), ("uload", 2, 10), ("ucmp", 1, 2),
                    ("jl", "@top"), ("halt",))
    core = Core(program, CONFIG, dispatch=dispatch)
    assert core.run(3) == Status.BUDGET
    assert core.get_reg(1) == (3, U) and core.ip == 10     # back at the loop top after 3 jl's
    assert core.run(8) == Status.HALT and core.get_reg(1) == (10, U)   # 7 more jl's, then the halt


@pytest.mark.parametrize("loop", [
    [("uinc", 1), ("ucmp", 1, 2), ("jl", "@top")],                  # uinc + compare + jcc
    [("uinc", 1), ("uload", 3, 10), ("ucmp", 1, 3), ("jl", "@top")],  # a constant bound
    [("uinc", 1), ("udec", 2), ("jnz", "@top")],                      # udec + jnz
], ids=["inc-cmp-jcc", "const-cmp-jcc", "dec-jnz"])
def test_budget_ending_on_a_fused_branch_stops_where_the_branch_went(dispatch, loop):
    # The poll path works out the branch's destination apart from the hot path (vv_loop.h
    # BRANCH_MASK): taken at the 9th event, back at the top; not taken at the 10th, after it.
    program = build(("uload", 1, 0), ("uload", 2, 10), "top:", *loop, ("halt",))
    top = 20
    halt = top + sum(BY_MNEMONIC[ins[0]].size for ins in loop)
    core = Core(program, CONFIG, dispatch=dispatch)
    assert core.run(9) == Status.BUDGET and core.ip == top and core.get_reg(1) == (9, U)
    assert core.run(1) == Status.BUDGET and core.ip == halt and core.get_reg(1) == (10, U)
    assert core.run(1) == Status.HALT


def test_budget_ends_on_a_jump_outside_then_the_fetch_traps(dispatch):
    core = Core(build(("jmp", 777)), CONFIG, dispatch=dispatch)
    assert core.run(1) == Status.BUDGET and core.ip == 777
    assert core.run(1) == Status.TRAP and trap(core)[:2] == (TrapKind.IP_OUTSIDE, 777)


def test_a_trapping_branch_returns_trap_not_budget(dispatch):
    core = Core(build(("ret",)), CONFIG, dispatch=dispatch)
    assert core.run(1) == Status.TRAP and core.trap_kind == TrapKind.CALL_STACK_UNDERFLOW


def test_every_branch_kind_counts(dispatch):
    program = build(("uload", 1, "@j"), ("jmp", "@a"), "a:", ("jz", "@b"), "b:", ("jnz", "@c"), "c:",
                    ("jexc", 1, "@d"), "d:", ("call", 0), ("jmpr", 1), "j:", ("callr", 2), ("halt",),
                    "f:", ("ret",), functions=("f",))
    core = Core(program, CONFIG, dispatch=dispatch)
    core.set_reg(2, 0, U)
    events = 0
    while (status := core.run(1)) == Status.BUDGET:
        events += 1
    assert status == Status.HALT
    assert events == 9  # jmp jz jnz jexc call ret jmpr callr ret


# ----------------------------------------------------------------------------- slot storage
# Decoded slots live in pages of 256 slots (one per byte of main memory); at most a
# budget of pages stays resident and the others are dropped and decoded again when
# executed (vv_core.h "Slot storage"). Core._limit_decoded_pages(2) makes every
# page-in drop a page, so these programs spread their code over several pages.

SLOT_PAGE = 256            # bytes of main memory per page of slots (4 KiB of 16-byte slots)
NOPS = bytes([BY_MNEMONIC["nop"].code]) * (2 * SLOT_PAGE)


def _limited(core, pages: int = 2):
    core._limit_decoded_pages(pages)
    return core


def test_fused_loop_over_dropped_pages(dispatch):
    program = build(("uload", 1, 0), ("uload", 2, 40), ("uload", 4, 0),
                    "top:", ("jmp", "@a"), bytes(SLOT_PAGE * 2),
                    "a:", ("movr", 3, 1), ("uadd", 3, 2), ("uadd", 4, 3), ("jmp", "@b"), bytes(SLOT_PAGE * 2),
                    "b:", NOPS, ("uinc", 1), ("ucmp", 1, 2), ("jl", "@top"),
                    ("halt",))
    core = _limited(Core(program, CONFIG, dispatch=dispatch))
    assert core.run() == Status.HALT
    assert core.get_reg(4) == (sum(i + 40 for i in range(40)), U)
    live, budget = core.decoded_bytes()
    assert budget == 2 * SLOT_PAGE * 16 and live <= budget


def test_jump_into_the_middle_of_a_fused_pair_after_its_page_was_dropped(dispatch):
    program = build(("uload", 1, 1), ("uload", 2, 2), ("ucmp", 1, 2), "mid:", ("jl", "@yes"), ("halt",),
                    "yes:", ("jmp", "@far"), bytes(SLOT_PAGE * 2),
                    "far:", NOPS, ("uload", 3, 7), ("ucmp", 2, 1), ("jmp", "@mid"))
    core = _limited(Core(program, CONFIG, dispatch=dispatch))
    assert core.run() == Status.HALT
    assert core.get_reg(3) == (7, U) and core.ip == 32


def test_dssave_into_code_whose_slots_were_dropped(dispatch):
    # The nops between the two calls run over two pages: f's page is dropped before the patch.
    core = _limited(_self_modifying(dispatch, [("uload", 1, 1), ("ret",)], 2, 0x42, [("movr", 2, 1), NOPS]))
    assert core.run() == Status.HALT
    assert core.get_reg(2) == (1, U) and core.get_reg(1) == (0x42, U)


def test_decoded_slots_stay_within_twice_main_memory():
    """Executing every byte of main memory keeps at most 2 bytes of slots per byte (floor 4 MiB)."""
    size = 1 << 21                      # 2 MiB of nops, ending in halt: 32 MiB of slots unbounded
    program = Program(image=bytes([BY_MNEMONIC["nop"].code]) * (size - 1) + bytes([BY_MNEMONIC["halt"].code]))
    core = Core(program, CONFIG)
    assert core.run() == Status.HALT
    live, budget = core.decoded_bytes()
    assert budget == max(4 << 20, 2 * size) and 0 < live <= budget


def test_dlbc_filling_main_memory_costs_at_most_three_times_it(tmp_path):
    """The issue's case: dlbc appends code up to --init-ram and all of it runs.

    Measured in a child process as the growth of its peak RSS over the run
    (before: about 17x --init-ram)."""
    import subprocess
    import sys
    import textwrap

    nop = BY_MNEMONIC["nop"].code
    source = textwrap.dedent(f"""
        section text
        .start
            alloc r10 65536
            uload r1 0
            uload r2 {int.from_bytes(bytes([nop]) * 8, "big")}
            uload r3 8
            uload r4 65536
        label fill
            movr r5 r10
            uadd r5 r1
            store r5 r2 r3
            uadd r1 r3
            ucmp r1 r4
            jl @fill
            dlbc r8 r10 r4
        label grow
            dlbc r7 r10 r4
            jexc @mainsegmfault @full
            jmp @grow
        label full
            jmpr r8
        """)
    (tmp_path / "fill.vvs").write_text(source)
    ram = 16 << 20
    child = textwrap.dedent(f"""
        import resource, sys
        from voxasm.assembler import assemble
        from voxvm.config import VMConfig
        from voxvm.backends.compiled._core import Core
        from voxvm.traps import TrapKind
        program = assemble(open(sys.argv[1]).read(), sys.argv[1])
        core = Core(program, VMConfig(init_ram={ram}))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        core.run()
        assert core.trap_kind == TrapKind.IP_OUTSIDE and core.trap_ip >= {ram} - 65536, core.trap_ip
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
        """)
    # From a scratch folder: the installed package, never the source tree (no compiled core there).
    out = subprocess.run([sys.executable, "-c", child, str(tmp_path / "fill.vvs")], capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout
    assert int(out) <= 3 * ram
