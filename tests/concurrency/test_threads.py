"""Threads of one run: spawn, join, thread_id, isolation and the run's exit status.

docs/concurrency.md is the contract. Each acceptance line it lists is checked here or in
the sibling modules: N threads × M ``shm_add`` give exactly N·M (here), two processes hand
values over through a file (test_segments.py), a trap stops only its program (here), the
avmir examples (tests/concurrency/test_avmir_examples.py). The speed-up of two CPU-bound
programs is a performance claim and is measured by tools/bench_concurrency.py, not
asserted here (no timed assertions in tests).
"""

from __future__ import annotations

import pytest
from support.runs import run_sources, vm_lines

COUNTER = """\
section text
.start
    uload r10 0
    uload r11 {threads}
label spawn
    fnstind r1 @worker
    uload r2 {adds}
    ncall 0x30 r0
    push r0
    uinc r10
    ucmp r10 r11
    jl @spawn
label join
    pop r1
    ncall 0x31 r0
    udec r11
    jnz @join
    uload r1 0
    uload r2 8
    ncall 0x34 r0
    movr r1 r0
    uload r2 1
    ncall 1 r0
    halt

func worker
    movr r20 r1
    uload r1 0
    uload r2 8
    uload r3 1
label again
    ncall 0x36 r0
    udec r20
    jnz @again
    ret
"""


def adds_for(backend: str) -> int:
    """CI sizes: the reference backend is ~100x slower."""
    return 100_000 if backend == "cython" else 1_500


@pytest.mark.parametrize("threads", [1, 2, 4, 8])
def test_n_threads_times_m_adds_is_exact(threads: int, backend: str) -> None:
    adds = adds_for(backend)
    for _ in range(3 if backend == "cython" else 1):     # repeatedly: a lost update would show
        rc, out, err = run_sources([COUNTER.format(threads=threads, adds=adds)], backend,
                                   ["--shm=64"])
        assert (rc, out) == (0, f"{threads * adds}\n".encode()), err


SPAWN_JOIN = """\
section text
.start
    uload r5 7
    dssave r5 cell 0            ; the child gets a copy of this memory
    alloc r6 16                 ; the parent's heap is not the child's
    fnstind r1 @child
    iload r2 -5                 ; the argument keeps its tag
    ncall 0x30 r0
    movr r12 r0
    uload r5 9
    dssave r5 cell 0            ; after the spawn: the child never sees it
    movr r1 r12
    ncall 0x31 r0               ; r0 = the child's final r0
    movr r1 r0
    uload r2 1
    ncall 1 r0                  ; 2.5 (a float: the tag came back too)
    dsload r1 cell 0
    ncall 1 r0                  ; 9 (the child's write stayed in its copy)
    movr r1 r12
    ncall 1 r0                  ; 1 (the first spawned id after program 0)
    ncall 0x32 r0
    movr r1 r0
    ncall 1 r0                  ; 0 (own id)
    halt

func child
    uload r2 1
    ncall 1 r0                  ; -5
    dsload r1 cell 0
    ncall 1 r0                  ; 7
    ncall 0x32 r0
    movr r1 r0
    ncall 1 r0                  ; 1
    uload r5 100
    dssave r5 cell 0
    alloc r7 16
    jexc @heapallocationfault @bad
    fload r0 2.5
    ret
label bad
    halt

section data
    cell uint 0
"""


def test_spawn_copies_memory_keeps_the_argument_tag_and_join_returns_r0(backend: str) -> None:
    rc, out, err = run_sources([SPAWN_JOIN], backend)
    assert rc == 0, err
    assert out.decode().split() == ["-5", "7", "1", "2.5", "9", "1", "0"]
    assert vm_lines(err) == []


RETURN_A_RESULT = """\
section text
.start
    fnstind r1 @child
    uload r2 6
    ncall 0x30 r0
    movr r1 r0
    ncall 0x31 r0
    movr r1 r0
    uload r2 1
    ncall 1 r0                  ; 42
    halt

func child
    uload r3 7
    umul r3 r1
    movr r0 r3
    ret
"""


def test_a_thread_returning_with_movr_then_ret_joins_with_that_value(backend: str) -> None:
    """The usual epilogue (movr r0 rX; ret) on the thread's first frame ends the thread."""
    rc, out, err = run_sources([RETURN_A_RESULT], backend)
    assert (rc, out) == (0, b"42\n"), err


HALT_IN_CHILD = """\
section text
.start
    fnstind r1 @child
    uload r2 3
    ncall 0x30 r0
    movr r1 r0
    ncall 0x31 r0
    movr r1 r0
    uload r2 1
    ncall 1 r0                  ; 42: halt in the child's callee ends the child
    halt

func child
    call @deeper
    uload r0 1                  ; never reached
    ret

func deeper
    uload r0 42
    halt
"""


def test_halt_anywhere_in_a_child_ends_the_child(backend: str) -> None:
    rc, out, err = run_sources([HALT_IN_CHILD], backend)
    assert (rc, out) == (0, b"42\n"), err


JOIN_ERRORS = """\
section text
.start
    fnstind r1 @child
    uload r2 0
    ncall 0x30 r0
    movr r12 r0
    movr r1 r12
    ncall 0x31 r0
    uload r2 1
    movr r1 r0
    ncall 1 r0                  ; 11
    movr r1 r12
    uload r0 5
    ncall 0x31 r0               ; twice
    call @outcome
    uload r1 999
    ncall 0x31 r0               ; unknown id
    call @outcome
    uload r1 0
    ncall 0x31 r0               ; itself
    call @outcome
    fnstind r1 @nope
    uload r1 77                 ; a bad function index
    uload r0 5
    ncall 0x30 r0
    call @outcome
    movr r1 r0
    uload r2 1
    ncall 1 r0                  ; 5: r0 unchanged by the failed spawn
    halt

func child
    uload r0 11
    ret

func nope
    ret

func outcome
    jexc @nativefault @fault
    dsload r1 msg_ok 0
    jmp @show
label fault
    dsload r1 msg_fault 0
label show
    uload r2 1
    ncall 1 r0
    ret

section data
    msg_ok str "ok"
    msg_fault str "NativeFault"
"""


def test_join_twice_unknown_or_self_and_a_bad_spawn_raise_nativefault(backend: str) -> None:
    rc, out, err = run_sources([JOIN_ERRORS], backend)
    assert rc == 0, err
    assert out.decode().split() == ["11", "NativeFault", "NativeFault", "NativeFault",
                                    "NativeFault", "5"]
    lines = [line for line in vm_lines(err) if line.startswith("voxvm: ncall")]  # the natives' reasons
    assert len(lines) == 4
    assert "already joined" in lines[0] and "no thread 999" in lines[1]
    assert "cannot join itself" in lines[2] and "function index 77 does not exist" in lines[3]


JOIN_CYCLE = """\
section text
.start
    fnstind r1 @child
    uload r2 0
    ncall 0x30 r0
    movr r1 r0
    ncall 0x31 r0               ; waits for the child, which joins this thread
    jexc @nativefault @caught
    halt
label caught
    uload r1 1
    uload r2 1
    ncall 1 r0
    halt

func child
    uload r1 0
    ncall 0x31 r0               ; joins thread 0, which is (or will be) joining this one
    jexc @nativefault @caught_child
    ret
label caught_child
    uload r1 2
    uload r2 1
    ncall 1 r0
    ret
"""


def test_a_join_cycle_is_refused_instead_of_deadlocking(backend: str) -> None:
    rc, out, err = run_sources([JOIN_CYCLE], backend)
    assert rc == 0, err
    assert out in (b"1\n", b"2\n")           # exactly one of the two joins is refused
    assert [line for line in vm_lines(err) if "would deadlock" in line] != []


TRAPPING_CHILD = """\
section text
.start
    fnstind r1 @child
    uload r2 0
    ncall 0x30 r0
    movr r1 r0
    ncall 0x31 r0
    jexc @nativefault @failed
    halt
label failed
    movr r1 r0
    uload r2 1
    ncall 1 r0                  ; 33: the child's last r0
    halt

func child
    uload r0 33
    pop r1                      ; empty data stack: a trap
    ret
"""


def test_joining_a_trapped_thread_gives_its_r0_and_nativefault_and_the_run_reports_it(backend: str) -> None:
    rc, out, err = run_sources([TRAPPING_CHILD], backend)
    assert (rc, out) == (70, b"33\n"), err
    lines = vm_lines(err)
    assert any(line.startswith("voxvm: thread 1: trap:") for line in lines), lines
    assert any("did not halt" in line for line in lines), lines


PRINT_ID = """\
section text
.start
    ncall 0x32 r0
    movr r1 r0
    uload r2 1
    ncall 1 r0
    halt
"""

SPAWN_AND_PRINT_ID = """\
section text
.start
    fnstind r1 @child
    uload r2 0
    ncall 0x30 r0
    movr r1 r0
    ncall 0x31 r0
    halt

func child
    ncall 0x32 r0
    movr r1 r0
    uload r2 2
    ncall 1 r0
    ret
"""


def test_command_line_programs_are_0_1_2_and_spawned_threads_continue(backend: str) -> None:
    rc, out, err = run_sources([PRINT_ID, SPAWN_AND_PRINT_ID, PRINT_ID], backend)
    assert rc == 0, err
    assert sorted(out.decode().split()) == ["0", "2"]
    assert err.decode().split() == ["3"]          # the child printed its id on stream 2


TRAP = """\
section text
.start
    uload r1 1
    uload r2 1
    ncall 1 r0
    pop r1
    halt
"""

WORKER = """\
section text
.start
    uload r10 0
    uload r11 2000
label loop
    movr r1 r10
    uload r2 1
    ncall 1 r0
    uinc r10
    ucmp r10 r11
    jl @loop
    halt
"""


def test_a_trap_stops_only_its_program_and_sets_the_status(backend: str) -> None:
    rc, out, err = run_sources([WORKER, TRAP, WORKER], backend)
    assert rc == 70
    numbers = out.decode().split()
    assert len(numbers) == 2 * 2000 + 1            # both workers finished
    lines = vm_lines(err)
    assert len(lines) == 1 and lines[0].startswith("voxvm: thread 1: trap:"), lines


def test_a_halting_first_program_does_not_hide_a_later_failure(backend: str) -> None:
    rc, _, _ = run_sources([PRINT_ID, TRAP], backend)
    assert rc == 70
    rc, _, _ = run_sources([PRINT_ID, PRINT_ID], backend)
    assert rc == 0


def test_the_run_waits_for_threads_nobody_joins(backend: str) -> None:
    source = """\
section text
.start
    fnstind r1 @child
    uload r2 0
    ncall 0x30 r0
    halt

func child
    uload r1 50
    ncall 6 r0                  ; sleep 50 ms: the parent has long halted
    uload r1 8
    uload r2 1
    ncall 1 r0
    ret
"""
    rc, out, err = run_sources([source], backend)
    assert (rc, out) == (0, b"8\n"), err


def test_each_thread_has_its_own_reproducible_random_numbers(backend: str) -> None:
    source = """\
section text
.start
    fnstind r1 @child
    uload r2 0
    ncall 0x30 r0
    movr r1 r0
    ncall 0x31 r0
    iload r1 0
    iload r2 1000000
    ncall 4 r0
    movr r1 r0
    uload r2 1
    ncall 1 r0
    halt

func child
    iload r1 0
    iload r2 1000000
    ncall 4 r0
    movr r1 r0
    uload r2 1
    ncall 1 r0
    ret
"""
    first = run_sources([source], backend, ["--seed=7"])
    second = run_sources([source], backend, ["--seed=7"])
    assert first == second and first[0] == 0
    child, parent = first[1].decode().split()
    assert child != parent                          # not one generator copied twice


def test_more_programs_than_the_thread_ceiling_is_a_usage_error() -> None:
    from voxvm.errors import UsageError
    from voxvm.machine import run_programs
    from voxvm.program import Program
    from voxvm.threads import MAX_LIVE_THREADS

    halt = Program(bytes([0xFF]))
    with pytest.raises(UsageError, match=f"{MAX_LIVE_THREADS + 1} programs: at most {MAX_LIVE_THREADS} "):
        run_programs([halt] * (MAX_LIVE_THREADS + 1))


def test_a_thread_the_os_refuses_is_an_error_and_the_others_stop(monkeypatch) -> None:
    import io

    from voxvm.errors import VoxError
    from voxvm.machine import run_programs
    from voxvm.program import Program
    from voxvm.threads import RunThreads

    started = []
    real_start = RunThreads.start

    def start(self, record):
        if started:
            raise RuntimeError("can't start new thread")
        started.append(record.id)
        real_start(self, record)

    monkeypatch.setattr(RunThreads, "start", start)
    spin = Program(bytes([0x40, 0, 0, 0, 0, 0, 0, 0, 0]))        # jmp 0, forever
    with pytest.raises(VoxError, match="cannot start thread 2 of the run: can't start new thread"):
        run_programs([spin, spin, spin], stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=io.BytesIO())
    assert started == [1]


def test_connecting_to_the_ipv4_mapped_unspecified_address_needs_the_loopback_grant() -> None:
    from voxvm.host.capabilities import Capabilities
    from voxvm.host.registry import NativeFailure

    class _Io:
        def diag(self, line: str) -> None:
            self.said = line

    io = _Io()
    grants = Capabilities(net_rules=frozenset({("::ffff:0:0", 9), ("0.0.0.0", 9)}))   # (as parse_net_rules keeps them)
    for address in ("::ffff:0.0.0.0", "0.0.0.0"):
        with pytest.raises(NativeFailure):
            grants.check_net(io, "net_open", (address, 9), connect=True)
    assert io.said == "net_open: denied: run with --allow-net=127.0.0.1:9 to allow network access"
    grants.check_net(io, "net_open", ("::ffff:0.0.0.0", 9))           # binding it is what was granted
