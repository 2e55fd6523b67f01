"""Malformed input never crashes the compiled core, and it fails exactly like the reference.

Random byte strings (biased toward real opcodes, register bytes and small
addresses, so that they run for a while) become images with random entry
points, data bases and function tables; each runs on every compiled dispatch
loop with a branch budget. A crash or an out-of-bounds read would kill or
corrupt the test process (the suite also runs under the C checks of the
dedicated fuzz run, see docs/performance.md); the states are compared with
voxvm.backends.reference.core.PyCore. The longer no-crash run checks that
every run returns a valid Status, that traps are known kinds, and that the
core stays consistent and usable afterwards.
"""

from __future__ import annotations

import random

from support.configs import CONFIG
from support.machines import compiled, differences, dispatches, state

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxvm.backends import Status
from voxvm.isa import OPS
from voxvm.program import Program
from voxvm.backends.reference.core import PyCore
from voxvm.traps import TrapKind

core_module = compiled()          # skips the module only in a pure-Python install
Core = core_module.Core
DISPATCHES = dispatches()

OPCODES = sorted(op.code for op in OPS)
BYTE = st.one_of(st.sampled_from(OPCODES), st.integers(0, 31), st.integers(0, 255))


@st.composite
def images(draw) -> Program:
    image = bytes(draw(st.lists(BYTE, min_size=1, max_size=120)))
    size = len(image)
    return Program(image=image, entry=draw(st.integers(0, size + 2)), data_base=draw(st.integers(0, size)),
                   functions=tuple(draw(st.lists(st.integers(0, size + 2), max_size=4))))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=images(), budget=st.sampled_from([1, 5, 40]))
def test_random_images_agree_with_the_reference(program, budget):
    reference = PyCore(program, CONFIG)
    expected = []
    for _ in range(4):
        status = reference.run(budget)
        expected.append(state(reference, status))
        if status in (Status.HALT, Status.TRAP):
            break
    for dispatch in DISPATCHES:
        core = Core(program, CONFIG, dispatch=dispatch)
        for number, want in enumerate(expected):
            got = state(core, core.run(budget))
            assert got == want, f"{dispatch} slice {number}: {differences(got, want)} image={program.image.hex()}"


def test_random_images_never_crash():
    """Longer random runs: every run returns a valid Status, a trap names a known TrapKind, and
    the core stays usable (its snapshot is consistent
    and ``ip`` can be reset and run again)."""
    rng = random.Random(20240613)
    statuses = set()
    for _ in range(3000):
        size = rng.randint(1, 200)
        image = bytes(rng.choice(OPCODES) if rng.random() < 0.5 else rng.randrange(256) for _ in range(size))
        program = Program(image=image, entry=rng.randrange(size), data_base=rng.randrange(size + 1),
                          functions=tuple(rng.randrange(size + 3) for _ in range(rng.randint(0, 4))))
        for dispatch in DISPATCHES:
            core = Core(program, CONFIG, dispatch=dispatch)
            for _ in range(5):
                status = Status(core.run(200))             # ValueError if not a Status
                if status not in (Status.NCALL, Status.BUDGET):
                    break
            statuses.add(status)
            if status == Status.TRAP:
                TrapKind(core.trap_kind)                   # ValueError if not a TrapKind
            dump = core.snapshot(1 if status == Status.TRAP else 0)
            assert len(dump.registers) == 32 and dump.memory == core.memory()
            assert dump.ip == core.ip and dump.pending == core.pending()
            core.ip = 0                                    # still usable: runs again from 0
            assert Status(core.run(5)) in Status
    assert {Status.HALT, Status.TRAP} <= statuses           # the images are not all alike
