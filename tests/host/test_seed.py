"""``--seed=N`` makes randf/randint reproducible, and the same on both backends."""

from __future__ import annotations

from support.builders import VvsProgram

RANDF, RANDINT = 0x03, 0x04


def _draws() -> VvsProgram:
    p = VvsProgram()
    for _ in range(3):
        p.ncall(RANDF).print_reg("r0")
        p.ncall(RANDINT, r1=0, r2=1_000_000).print_reg("r0")
    return p


def test_a_seed_gives_the_same_numbers_on_every_backend_and_run():
    runs = [_draws().run(backend, seed=7) for backend in ("python", "cython", "python")]
    assert runs[0] == runs[1] == runs[2]
    assert runs[0][2] == [] and len(set(runs[0][1])) > 2


def test_different_seeds_give_different_numbers():
    assert _draws().run("python", seed=7)[1] != _draws().run("python", seed=8)[1]
