#!/usr/bin/env python3
"""Micro-benchmarks of voxvm.backends.compiled._heaptest (the numbers quoted in docs/heap.md).

Owns nothing the product uses. The timed loops run inside the extension
(HeapTester.bench_*), so no Python call overhead is measured:

* alloc+free pairs with L live blocks of random sizes 1..S: free a random
  live block, allocate a new one (first fit over a fragmented heap);
* the `alloc` benchmark's pattern: 16-byte GC-managed objects, each kept
  alive by one of 1024 root slots (a ring), with the VM's collection policy;
  the time includes every collection.

Anchors (performance.md): malloc+free 10.7 ns/object, LuaJIT GC 64-91,
Lua 5.4 200, CPython 255-380 ns. The machine is noisy: the median of
--repeat runs is reported.

    python tools/bench_heap.py [--repeat 5] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from argtypes import positive_int  # tools/argtypes.py


def median_ns(fn, repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=positive_int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer operations (smoke test)")
    args = parser.parse_args(argv)
    try:
        from voxvm.backends.compiled._heaptest import HeapTester
    except ImportError:
        print("bench_heap: voxvm.backends.compiled._heaptest is not built", file=sys.stderr)
        return 2

    pairs = 200_000 if args.quick else 2_000_000
    print(f"{'live blocks':>12} {'sizes':>8} {'ns / alloc+free':>16}")
    for live in (1_000, 100_000):
        for max_size in (16, 64, 256, 1024):
            def run():
                h = HeapTester(1 << 20, 1 << 32)
                ns = h.bench_alloc_free(live, pairs, max_size, 1)
                if ns < 0:
                    raise SystemExit("bench_heap: an allocation failed")
                return ns / pairs
            print(f"{live:>12,} {'1..' + str(max_size):>8} {median_ns(run, args.repeat):>16.1f}")

    objects = 500_000 if args.quick else 5_000_000
    stats = {}

    def ring():
        h = HeapTester(1 << 20, 1 << 30)
        ns = h.bench_ring(objects, 1024, 16)
        if ns < 0:
            raise SystemExit("bench_heap: an allocation failed")
        stats.update(h.stats, capacity=h.capacity)
        return ns / objects
    per = median_ns(ring, args.repeat)
    print(f"\nring of 1024 live 16-byte GC objects, {objects:,} allocations:")
    print(f"  {per:.1f} ns/object including collection; {stats['collections']} collections, "
          f"{stats['gc_ns_total'] / 1e6:.1f} ms collecting, heap {stats['capacity'] / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
