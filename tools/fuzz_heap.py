#!/usr/bin/env python3
"""Long-running differential fuzzer: the compiled heap against PyHeap (the Python heap model).

Owns the long-run mode of the heap fuzzing that tests/heap/test_heap_fuzz.py runs
briefly in CI. A seeded random driver (tests/support/heaps.py: RandomDriver)
applies the same operations to the C heap and to the PyHeap oracle and compares
every result; the whole state (blocks, free regions, bytes, pointers,
accounting, the C invariant check) is compared every --check-every ops.
The run is split into episodes, each with a fresh heap of a random
configuration (initial and maximum size, collection floor, gc-stress).

    python tools/fuzz_heap.py --ops 10000000
    python tools/fuzz_heap.py --ops 200000 --seed 1234          # replay a run
    python tools/fuzz_heap.py --seed 1234 --episode 17 --ops 1   # replay one episode

Exit status 0 if everything agreed, 1 on the first disagreement (with the
seed, episode and operation needed to replay it).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from pathlib import Path

from argtypes import nonnegative_int, positive_int  # tools/argtypes.py

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.heaps import PyHeapTester, RandomDriver, assert_same  # noqa: E402

CONFIGS_INIT = [0, 24, 256, 4096, 65536]
CONFIGS_MAX = [200, 4096, 1 << 16, 1 << 20]
CONFIGS_FLOOR = [None, 64, 1024, 1 << 16]


def episode_config(master_seed: int, episode: int) -> dict:
    """The configuration and driver seed of one episode (a pure function: replayable)."""
    rng = random.Random(f"{master_seed}/{episode}")
    init = rng.choice(CONFIGS_INIT)
    return {
        "init": init,
        "max": max(rng.choice(CONFIGS_MAX), init),
        "floor": rng.choice(CONFIGS_FLOOR),
        "stress": rng.random() < 0.2,
        "seed": rng.getrandbits(64),
    }


def run_episode(cfg: dict, ops: int, check_every: int) -> int:
    """Run one episode; return the number of operations done (raises on disagreement)."""
    from support.heaps import compiled_heap_tester

    heap = compiled_heap_tester()(cfg["init"], cfg["max"], gc_stress=cfg["stress"], gc_floor=cfg["floor"])
    oracle = PyHeapTester(cfg["init"], cfg["max"], gc_floor=cfg["floor"], gc_stress=cfg["stress"])
    driver = RandomDriver(heap, oracle, cfg["seed"])
    for i in range(ops):
        try:
            driver.step()
            if (i + 1) % check_every == 0:
                assert_same(heap, oracle)
        except Exception as exc:
            exc.add_note(f"operation {i} of the episode")
            raise
    assert_same(heap, oracle)
    return ops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=positive_int, default=1_000_000, help="total operations (default 1e6)")
    parser.add_argument("--seed", type=nonnegative_int, default=None, help="master seed (default: random)")
    parser.add_argument("--episode-ops", type=positive_int, default=20_000, help="operations per fresh heap")
    parser.add_argument("--episode", type=nonnegative_int, default=None, help="run only this episode (replay)")
    parser.add_argument("--check-every", type=positive_int, default=50, help="full comparison period")
    args = parser.parse_args(argv)

    import pytest                   # tests/support skips with pytest.skip in a pure-Python install

    try:
        from support.heaps import compiled_heap_tester

        compiled_heap_tester()
    except (ImportError, pytest.skip.Exception) as error:
        print(f"fuzz_heap: the compiled heap is not available ({error})", file=sys.stderr)
        return 2

    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    episodes = [args.episode] if args.episode is not None else None
    what = f"episode {args.episode}" if episodes else f"{args.ops} operations"
    print(f"fuzz_heap: seed {seed}, {what}", flush=True)
    done, episode, start, last_report = 0, 0, time.monotonic(), time.monotonic()
    while done < args.ops:
        number = episodes[0] if episodes else episode
        cfg = episode_config(seed, number)
        ops = min(args.episode_ops, args.ops - done) if episodes is None else args.episode_ops
        try:
            done += run_episode(cfg, ops, args.check_every)
        except KeyboardInterrupt:             # stopped by the user: not a heap disagreement
            print(f"fuzz_heap: interrupted in episode {number} after {done} operations", file=sys.stderr)
            return 130
        except BaseException:
            traceback.print_exc()
            print(f"fuzz_heap: FAILED in episode {number} {cfg}\n"
                  f"  replay: python tools/fuzz_heap.py --seed {seed} --episode {number} "
                  f"--episode-ops {args.episode_ops}", file=sys.stderr)
            return 1
        if episodes:
            break
        episode += 1
        now = time.monotonic()
        if now - last_report > 10:
            print(f"  {done} ops, {done / (now - start):,.0f} ops/s", flush=True)
            last_report = now
    elapsed = time.monotonic() - start
    print(f"fuzz_heap: OK: {done} operations in {episode if not episodes else 1} episode(s), "
          f"{elapsed:.1f} s, {done / elapsed:,.0f} ops/s, seed {seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
