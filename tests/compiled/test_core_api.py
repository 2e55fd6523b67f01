"""The compiled core's Python face: the voxvm.backends.Core protocol and its limits.

Construction from a Program and VMConfig, the register / exception / memory /
snapshot accessors with their argument checks, independence of several Cores
(also on threads, the loop runs without the GIL), signals reaching Python
during an endless loop, and the configured limits (data stack, recursion,
main-memory capacity).
"""

from __future__ import annotations

import signal
import threading

import pytest
from support.builders import build, item, u64s
from support.configs import CONFIG
from support.machines import compiled, dispatches


from voxvm.backends import Status
from voxvm.config import VMConfig
from voxvm.formats import Dump, build_dump, parse_dump
from voxvm.isa import Tag
from voxvm.traps import TrapKind

core_module = compiled()          # skips the module only in a pure-Python install
Core = core_module.Core
DISPATCHES = dispatches()

U, I, F, A = int(Tag.U64), int(Tag.I64), int(Tag.F64), int(Tag.ADDR)
MASK = (1 << 64) - 1


def test_fresh_state():
    program = build(("halt",), data={"x": item(1, u64s(7))})
    core = Core(program, CONFIG)
    assert [core.get_reg(i) for i in range(32)] == [(0, U)] * 32
    assert core.ip == 0 and core.flags == (0, 0, 0, 0) and core.pending() == {}
    assert core.memory() == program.image
    assert core.program is program and core.config is CONFIG
    assert core.run() == Status.HALT and core.ip == 0


def test_registers():
    core = Core(build(("halt",)), CONFIG)
    core.set_reg(5, -1, I)
    core.set_reg(31, MASK, F)
    assert core.get_reg(5) == (MASK, I) and core.get_reg(31) == (MASK, F)
    for bad in (-1, 32):
        with pytest.raises(IndexError):
            core.get_reg(bad)
        with pytest.raises(IndexError):
            core.set_reg(bad, 0, U)
    for tag in (0, 5, 6, 7, 10, 255):
        with pytest.raises(ValueError):
            core.set_reg(0, 0, tag)


def test_exceptions():
    core = Core(build(("halt",)), CONFIG)
    for number in (3, 1, 3, 11):
        core.raise_exception(number)
    assert core.pending() == {3: 2, 1: 1, 11: 1}
    for bad in (0, 12, -1):
        with pytest.raises(ValueError):
            core.raise_exception(bad)


def test_memory_views():
    program = build(("halt",), data={"x": item(1, u64s(7))})
    core = Core(program, CONFIG)
    assert core.read_memory(1, 9) == program.image[1:10]
    assert core.read_memory(len(program.image), 0) == b""
    assert core.read_memory(len(program.image), 1) is None
    assert core.read_memory(MASK, 2) is None


def test_ip_and_flags_are_settable():
    core = Core(build(("uload", 1, 1), ("uload", 2, 2), ("halt",)), CONFIG)
    core.ip = 10
    core.flags = (1, 1, 0, 1)
    assert core.run() == Status.HALT
    assert core.get_reg(1) == (0, U) and core.get_reg(2) == (2, U) and core.flags == (1, 1, 0, 1)
    with pytest.raises(ValueError):
        core.flags = (1, 0)


def test_snapshot_is_a_dump_that_round_trips():
    program = build(("uload", 1, 9), ("push", 1), ("call", 0), "f:", ("pop", 2), ("ret",), functions=("f",))
    core = Core(program, CONFIG)
    core.raise_exception(8)
    # call f; f pops 9 and returns; execution falls into f again and pops an empty stack
    assert core.run() == Status.TRAP and core.trap_kind == TrapKind.STACK_UNDERFLOW
    dump = core.snapshot(1)
    assert isinstance(dump, Dump)
    assert dump.reason == 1 and dump.trap == TrapKind.STACK_UNDERFLOW and dump.ip == core.ip == 21
    assert dump.registers[2] == (9, U) and dump.data_stack == [] and dump.call_stack == []
    assert dump.pending == {8: 1} and dump.memory == program.image and dump.heap == []
    assert parse_dump(build_dump(dump)) == dump
    assert core.snapshot().trap == 0


def test_dispatch_selection(monkeypatch):
    program = build(("halt",))
    assert Core(program, CONFIG).dispatch == DISPATCHES[0]
    for dispatch in DISPATCHES:
        assert Core(program, CONFIG, dispatch=dispatch).dispatch == dispatch
    monkeypatch.setenv("VOXVM_DISPATCH", "switch")
    assert Core(program, CONFIG).dispatch == "switch"
    with pytest.raises(ValueError):
        Core(program, CONFIG, dispatch="threaded")


def test_instruction_counter():
    core = Core(build(("uload", 1, 3), "top:", ("udec", 1), ("jnz", "@top"), ("halt",)), CONFIG, dispatch="count")
    assert core.run() == Status.HALT and core.executed == 1 + 3 * 2 + 1
    core = Core(build(("uload", 1, 1), ("uadd", 1, 2), ("halt",)), CONFIG, dispatch="count")
    core.set_reg(2, 0, F)
    assert core.run() == Status.TRAP and core.executed == 1   # a trapping instruction is not counted


def test_cores_are_independent():
    program = build(("uinc", 1), ("push", 1), ("halt",))
    a, b = Core(program, CONFIG), Core(program, CONFIG)
    a.set_reg(1, 10, U)
    a.run()
    b.run()
    assert a.get_reg(1) == (11, U) and b.get_reg(1) == (1, U)
    assert a.snapshot().data_stack == [(11, U)] and b.snapshot().data_stack == [(1, U)]


def _counting_program(n: int):
    return build(("uload", 1, 0), ("uload", 2, n), "top:", ("uinc", 1), ("ucmp", 1, 2), ("jl", "@top"),
                 ("halt",))


def test_cores_run_on_threads():
    cores = [Core(_counting_program(2_000_000 + i), CONFIG) for i in range(4)]
    results = [None] * len(cores)

    def work(index):
        results[index] = cores[index].run()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [Status.HALT] * 4
    assert [core.get_reg(1) for core in cores] == [(2_000_000 + i, U) for i in range(4)]


def test_signals_interrupt_an_endless_loop():
    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop

    core = Core(build("top:", ("jmp", "@top")), CONFIG)
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Stop):
            core.run()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert core.ip == 0   # stopped cleanly between branches; it can run on
    assert core.run(5) == Status.BUDGET


def test_data_stack_grows_to_its_limit_then_traps():
    config = VMConfig(init_stack=1, max_stack=1000)
    core = Core(build("top:", ("push", 1), ("jmp", "@top")), config)
    assert core.run() == Status.TRAP
    assert (core.trap_kind, core.trap_a) == (TrapKind.STACK_OVERFLOW, 1000)
    assert len(core.snapshot().data_stack) == 1000


def test_pushall_needs_room_for_31():
    core = Core(build(("pushall",), ("pushall",)), VMConfig(max_stack=40, init_stack=2))
    assert core.run() == Status.TRAP and core.trap_kind == TrapKind.STACK_OVERFLOW and core.ip == 1
    assert len(core.snapshot().data_stack) == 31


@pytest.mark.parametrize("call", [("call", 0), ("callr", 1)])
def test_recursion_limit_applies_to_call_and_callr(call):
    core = Core(build("f:", call, functions=("f",)), VMConfig(max_recursion=50))
    assert core.run() == Status.TRAP
    assert (core.trap_kind, core.trap_a) == (TrapKind.RECURSION_LIMIT, 50)
    assert len(core.snapshot().call_stack) == 50


def test_zero_recursion_limit():
    core = Core(build(("call", 0), functions=()), VMConfig(max_recursion=0))
    assert core.run() == Status.TRAP and core.trap_kind == TrapKind.RECURSION_LIMIT


def test_bad_function_index():
    core = Core(build(("call", 3), ("halt",), functions=()), CONFIG)
    assert core.run() == Status.TRAP and (core.trap_kind, core.trap_a, core.trap_b) == (TrapKind.BAD_FUNCTION, 3, 0)


def test_image_larger_than_init_ram_runs():
    program = build(*[("nop",)] * 5000, ("uload", 1, 1), ("halt",))
    core = Core(program, VMConfig(init_ram=100))
    assert core.run() == Status.HALT and core.get_reg(1) == (1, U)
