"""The debugging side of the Core protocol: step(), breakpoints, call_stack(), registers()."""

from __future__ import annotations

import pytest

from support.debug_programs import AVERAGE
from support.machines import new_core
from voxasm import assemble_program as assemble
from voxvm.backends import Status


def program():
    return assemble(AVERAGE, "avg.vvs")


def test_step_runs_one_instruction_at_a_time(backend):
    core, p = new_core(backend, program()), program()
    ips = []
    while True:
        ips.append(core.ip)
        status = core.step()
        if status != Status.BUDGET:
            break
    assert status == Status.TRAP and core.trap_ip == 0x32
    assert len(ips) == 38 and ips[:4] == [0x00, 0x0a, 0x1c, 0x37]
    assert ips.count(p.symbols.labels["loop"]) == 4


def test_breakpoints_stop_before_the_instruction_and_survive_steps(backend):
    p = program()
    core = new_core(backend, p)
    loop = p.symbols.labels["loop"]
    core.set_breakpoint(loop)
    hits = 0
    while (status := core.run()) == Status.BREAK:
        assert core.ip == loop
        assert core.call_stack() == [0x09, 0x25]      # oldest first
        hits += 1
        assert core.step() == Status.BUDGET        # the instruction under the breakpoint runs
    assert (hits, status) == (4, Status.TRAP)
    assert core.registers()[0] == (24, 1)


def test_a_breakpoint_inside_a_fused_pair_is_hit(backend):
    # ucmp + jl is one fused slot in the compiled core's fast loop; a breakpoint on the jl must stop.
    p = program()
    core = new_core(backend, p)
    core.run(budget=3)                              # the fast loop decodes (and fuses) the loop first
    jl = p.symbols.labels["loop"] + 0x20
    core.set_breakpoint(jl)
    assert core.run() == Status.BREAK and core.ip == jl
    core.set_breakpoint(jl, False)
    assert core.run() == Status.TRAP


def test_removed_breakpoints_no_longer_stop(backend):
    p = program()
    core = new_core(backend, p)
    core.set_breakpoint(p.symbols.labels["loop"])
    core.set_breakpoint(p.symbols.labels["loop"], False)
    assert core.run() == Status.TRAP


def test_a_breakpoint_outside_memory_is_refused(backend):
    core = new_core(backend, program())
    with pytest.raises(ValueError, match="outside main memory"):
        core.set_breakpoint(1 << 40)
