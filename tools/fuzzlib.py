"""Shared machinery of the input fuzzers (tools/fuzz_vve.py, fuzz_asm.py, fuzz_dump.py).

Owns what the three fuzzers have in common:

* case identity: case ``index`` of run ``seed`` is generated from
  ``random.Random(f"{seed}:{index}")`` alone, so ``--replay SEED:INDEX``
  rebuilds exactly that input without generating the ones before it;
* the byte mutators (bit flips, interesting bytes, chunk insert / delete /
  duplicate, big-endian u64 field tweaks, splicing two corpus files);
* the corpus paths (tests/conformance/);
* ``Target``: what a fuzzer plugs in (its corpus, its generator, its check);
* ``run_cases``: a pool of worker processes that run batches of cases; the
  parent notices a worker killed by a signal (a crash) or stuck in one case
  for longer than the timeout (a hang), replays that case alone in a fresh
  worker to confirm it, and re-queues the rest of the batch;
* ``main``: the command line every fuzzer shares (--cases, --seed, --workers,
  --replay, --save, --json).

A check returns the outcome tags to count (e.g. ``["loaded", "halted"]``) and
raises ``Failure`` for a finding; any other exception escaping a check is a
finding too (a traceback). The fuzzers count outcomes, they do not stop at
the first failure: the summary lists every failing case with its replay id.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import signal
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from argtypes import nonnegative_int, positive_float, positive_int, writable_file  # tools/argtypes.py

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT / "tests" / "conformance"

# Values that tend to sit on a boundary somewhere (sizes, signs, register
# numbers, opcode ranges).
INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x07, 0x08, 0x0F, 0x10, 0x1F, 0x20, 0x21, 0x3F, 0x40,
                     0x7E, 0x7F, 0x80, 0x81, 0xFE, 0xFF]
INTERESTING_U64 = [0, 1, 2, 7, 8, 9, 15, 16, 31, 32, 48, 64, 255, 256, 4096, 65535, 65536,
                   (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63,
                   (1 << 64) - 2, (1 << 64) - 1]


class Failure(Exception):
    """A finding of a check (wrong result, disagreement): not a crash of the tool."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def case_rng(seed: int, index: int) -> random.Random:
    """The one random generator of case ``index`` of run ``seed``."""
    return random.Random(f"{seed}:{index}")


# ---------------------------------------------------------------- mutators


def _u64_at(rng: random.Random, size: int, limit: int) -> int:
    """Interesting u64 values, including ones relative to the input size."""
    pick = rng.random()
    if pick < 0.5:
        return rng.choice(INTERESTING_U64)
    if pick < 0.85:
        return max(0, size + rng.randint(-limit, limit))
    return rng.getrandbits(64)


def mutate_bytes(rng: random.Random, data: bytes, corpus: list[bytes], max_size: int = 1 << 14,
                 field_offsets: tuple[int, ...] = (), steps: int | None = None) -> bytes:
    """Apply 1-4 (or ``steps``) random mutations to ``data``.

    ``field_offsets`` are offsets of big-endian u64 fields (a header's
    counts and addresses) that are worth setting to boundary values.
    """
    buf = bytearray(data)
    for _ in range(steps if steps is not None else rng.choice((1, 1, 1, 2, 2, 3, 4))):
        op = rng.random()
        n = len(buf)
        if op < 0.25 and n:                                   # bit flips
            for _ in range(rng.choice((1, 1, 2, 3, 8))):
                i = rng.randrange(n)
                buf[i] ^= 1 << rng.randrange(8)
        elif op < 0.45 and n:                                 # interesting / random byte
            i = rng.randrange(n)
            buf[i] = rng.choice(INTERESTING_BYTES) if rng.random() < 0.7 else rng.randrange(256)
        elif op < 0.55 and field_offsets:                     # header field tweak
            offset = rng.choice(field_offsets)
            if offset + 8 <= n:
                value = _u64_at(rng, n, 64)
                buf[offset:offset + 8] = value.to_bytes(8, "big")
        elif op < 0.65:                                       # insert random bytes
            i = rng.randint(0, n)
            buf[i:i] = bytes(rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)
                             for _ in range(rng.choice((1, 1, 2, 4, 8, 9, 17))))
        elif op < 0.77 and n:                                 # delete a chunk
            i = rng.randrange(n)
            del buf[i:i + rng.choice((1, 1, 2, 4, 8, 9, 16, 64))]
        elif op < 0.87 and n:                                 # duplicate a chunk
            i = rng.randrange(n)
            chunk = buf[i:i + rng.choice((1, 2, 8, 9, 10, 16, 32))]
            j = rng.randint(0, n)
            buf[j:j] = chunk
        elif op < 0.94 and n >= 8:                            # u64 at a random offset
            i = rng.randrange(n - 7)
            buf[i:i + 8] = _u64_at(rng, n, 16).to_bytes(8, "big")
        elif corpus:                                          # splice with another file
            other = rng.choice(corpus)
            cut = rng.randint(0, n)
            buf = buf[:cut] + other[rng.randint(0, len(other)):]
        if len(buf) > max_size:
            del buf[max_size:]
    return bytes(buf)


def corpus_files(folder: str, suffix: str) -> list[Path]:
    """The conformance files ``tests/conformance/<folder>/*<suffix>``, sorted (stable case ids)."""
    return sorted((CONFORMANCE / folder).glob("*" + suffix))


# ---------------------------------------------------------------- targets


@dataclass
class Target:
    """One fuzzer: a corpus, a generator and a check.

    ``load_corpus()`` runs once per process; ``generate(rng, corpus)`` makes
    one input; ``check(data)`` returns the outcome tags to count, raising
    ``Failure`` (or anything else) on a finding.
    """

    name: str
    suffix: str
    load_corpus: Callable[[], list[bytes]]
    generate: Callable[[random.Random, list[bytes]], bytes]
    check: Callable[[bytes], list[str]]
    describe: str = ""
    _corpus: list[bytes] | None = field(default=None, repr=False)

    def corpus(self) -> list[bytes]:
        if self._corpus is None:
            self._corpus = self.load_corpus()
        return self._corpus

    def make(self, seed: int, index: int) -> bytes:
        return self.generate(case_rng(seed, index), self.corpus())

    def run_case(self, seed: int, index: int) -> tuple[list[str], dict | None]:
        """(outcome tags, failure or None) of one case, never raising."""
        try:
            data = self.make(seed, index)
        except Exception:  # a bug of the generator itself: report it like any finding
            return ["generator error"], {"id": f"{seed}:{index}", "kind": "generator error",
                                         "detail": traceback.format_exc()}
        try:
            return self.check(data), None
        except Failure as failure:
            return [failure.kind], {"id": f"{seed}:{index}", "kind": failure.kind, "detail": failure.detail}
        except Exception as exc:
            return ["traceback"], {"id": f"{seed}:{index}", "kind": "traceback",
                                   "detail": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"}


# ---------------------------------------------------------------- workers

# A worker may not take more address space than this: a runaway allocation
# becomes a MemoryError (a finding) instead of starving the shared machine.
WORKER_ADDRESS_SPACE = 4 << 30


def _under_address_sanitizer() -> bool:
    """ASan reserves terabytes of shadow address space: no RLIMIT_AS can be set under it."""
    return "libasan" in os.environ.get("LD_PRELOAD", "")


def _worker(target: Target, seed: int, conn, progress) -> None:
    if not _under_address_sanitizer():
        try:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (WORKER_ADDRESS_SPACE, WORKER_ADDRESS_SPACE))
        except (ImportError, ValueError, OSError):
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides when to stop
    # The parent reports a crash with its replay id; a fault handler inherited
    # from the parent (pytest's) would only add the worker loop's stack.
    faulthandler.disable()
    target.corpus()
    parent = os.getppid()
    while True:
        try:
            job = conn.recv()
        except EOFError:          # the parent is gone
            return
        if job is None:
            return
        start, stop = job
        counts: Counter[str] = Counter()
        failures = []
        for index in range(start, stop):
            if os.getppid() != parent:   # orphaned (the parent was killed): stop working
                return
            progress.value = index
            tags, failure = target.run_case(seed, index)
            counts.update(tags)
            if failure is not None:
                failures.append(failure)
        progress.value = -1
        try:
            conn.send((start, stop, counts, failures))
        except (BrokenPipeError, ConnectionResetError):
            return


class _Worker:
    def __init__(self, context, target: Target, seed: int) -> None:
        self.conn, child = context.Pipe()
        self.progress = context.Value("q", -1, lock=False)
        self.process = context.Process(target=_worker, args=(target, seed, child, self.progress), daemon=True)
        self.process.start()
        child.close()
        self.job: tuple[int, int] | None = None
        self.seen = -1
        self.since = time.monotonic()

    def send(self, job: tuple[int, int]) -> None:
        self.job = job
        self.seen, self.since = -1, time.monotonic()
        self.conn.send(job)

    def stuck_for(self) -> float:
        """Seconds the worker has spent on its current case."""
        now = self.progress.value
        if now != self.seen:
            self.seen, self.since = now, time.monotonic()
        return time.monotonic() - self.since

    def stop(self, kill: bool = False) -> None:
        if kill and self.process.is_alive():
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _death(process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


@dataclass
class Report:
    target: str
    seed: int
    start: int
    cases: int
    counts: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {"target": self.target, "seed": self.seed, "start": self.start, "cases": self.cases,
                "seconds": round(self.seconds, 1), "counts": dict(sorted(self.counts.items())),
                "failures": self.failures}

    def text(self) -> str:
        lines = [f"{self.target}: seed {self.seed}, cases {self.start}..{self.start + self.cases - 1}, "
                 f"{self.seconds:.1f} s ({self.cases / max(self.seconds, 1e-9):,.0f} cases/s)"]
        width = max((len(k) for k in self.counts), default=0)
        for key, value in sorted(self.counts.items()):
            lines.append(f"  {key:<{width}}  {value:>10,}")
        lines.append(f"  failures: {len(self.failures)}")
        for failure in self.failures[:50]:
            first = failure["detail"].strip().splitlines()[0] if failure["detail"].strip() else ""
            lines.append(f"    {failure['id']}  {failure['kind']}: {first[:200]}")
        return "\n".join(lines)


def isolate(target: Target, seed: int, index: int, timeout: float) -> tuple[str, str]:
    """Run one case alone in a fresh worker: ("ok" | "crash" | "hang", detail)."""
    context = multiprocessing.get_context("fork")
    worker = _Worker(context, target, seed)
    worker.send((index, index + 1))
    deadline = time.monotonic() + timeout + 30      # + start-up (corpus loading)
    try:
        while time.monotonic() < deadline:
            if worker.conn.poll(0.2):
                try:
                    worker.conn.recv()
                except EOFError:
                    worker.process.join(5)
                    return "crash", _death(worker.process)
                return "ok", ""
            if not worker.process.is_alive():
                return "crash", _death(worker.process)
            if worker.progress.value == index and worker.stuck_for() > timeout:
                return "hang", f"no answer after {timeout:g} s"
        return "hang", f"no answer after {timeout:g} s"
    finally:
        worker.stop(kill=True)


def run_cases(target: Target, seed: int, cases: int, *, start: int = 0, workers: int = 2,
              batch: int = 100, timeout: float = 20.0, progress_every: float = 0.0,
              on_failure: Callable[[dict], None] | None = None) -> Report:
    """Run cases ``start .. start+cases-1`` of ``seed`` on ``workers`` processes."""
    report = Report(target.name, seed, start, cases)
    target.corpus()           # once here: the forked workers inherit it
    began = last_print = time.monotonic()
    queue = [(i, min(i + batch, start + cases)) for i in range(start, start + cases, batch)]
    queue.reverse()
    context = multiprocessing.get_context("fork")
    pool = [_Worker(context, target, seed) for _ in range(max(1, min(workers, len(queue))))]
    done = 0

    def record(failure: dict) -> None:
        report.failures.append(failure)
        if on_failure is not None:
            on_failure(failure)

    def lost(worker: _Worker, kind: str, why: str) -> None:
        """A worker crashed or hung in its batch: find the case, re-queue the others."""
        nonlocal done
        first, stop = worker.job
        suspect = worker.progress.value
        if not first <= suspect < stop:
            suspect = first
        outcome, detail = isolate(target, seed, suspect, timeout)
        if outcome == "ok":
            # Only in sequence with the cases before it: report the range to replay.
            record({"id": f"{seed}:{suspect}", "kind": kind,
                    "detail": f"{why} at case {suspect}, which passes alone; replay the batch "
                              f"--replay {seed}:{first}-{suspect}"})
        else:
            record({"id": f"{seed}:{suspect}", "kind": outcome,
                    "detail": f"{detail} (in the batch: {why})"})
        report.counts[kind] += 1
        done += 1
        if first < suspect:
            queue.append((first, suspect))
        if suspect + 1 < stop:
            queue.append((suspect + 1, stop))

    try:
        while queue or any(w.job for w in pool):
            for worker in pool:
                if worker.job is None and queue:
                    worker.send(queue.pop())
            busy = [w for w in pool if w.job is not None]
            ready = multiprocessing.connection.wait([w.conn for w in busy], timeout=0.5)
            for i, worker in enumerate(pool):
                if worker.job is None:
                    continue
                if worker.conn in ready:
                    try:
                        first, stop, counts, failures = worker.conn.recv()
                    except EOFError:
                        worker.process.join(5)
                        why = _death(worker.process)
                        lost(worker, "crash", why)
                        worker.stop(kill=True)
                        pool[i] = _Worker(context, target, seed)
                        continue
                    report.counts.update(counts)
                    for failure in failures:
                        record(failure)
                    done += stop - first
                    worker.job = None
                elif not worker.process.is_alive():
                    why = _death(worker.process)
                    lost(worker, "crash", why)
                    worker.stop(kill=True)
                    pool[i] = _Worker(context, target, seed)
                elif worker.stuck_for() > timeout:
                    worker.stop(kill=True)
                    lost(worker, "hang", f"one case took more than {timeout:g} s")
                    pool[i] = _Worker(context, target, seed)
            now = time.monotonic()
            if progress_every and now - last_print >= progress_every:
                last_print = now
                print(f"  {target.name}: {done:,}/{cases:,} cases, {now - began:,.0f} s, "
                      f"{len(report.failures)} failures", flush=True)
    finally:
        for worker in pool:
            worker.stop(kill=worker.job is not None)
    report.seconds = time.monotonic() - began
    return report


# ---------------------------------------------------------------- command line


def parse_replay(text: str) -> tuple[int, int, int]:
    """``SEED:INDEX`` or ``SEED:FIRST-LAST`` -> (seed, first, last); ValueError if it is not one."""
    seed, colon, which = text.partition(":")
    first, _, last = which.partition("-")
    last = last or first
    if not (colon and all(part.isascii() and part.isdigit() for part in (seed, first, last))
            and int(first) <= int(last)):
        raise ValueError(f"--replay: '{text}' is not SEED:INDEX or SEED:FIRST-LAST (FIRST <= LAST)")
    return int(seed), int(first), int(last)


def save_case(target: Target, seed: int, index: int, directory: str, failure: dict) -> Path:
    """Write the input of a failing case (and what failed) to ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{target.name}-{seed}-{index}{target.suffix}"
    path.write_bytes(target.make(seed, index))
    path.with_name(path.name + ".txt").write_text(
        f"{failure['kind']}\nreplay: --replay {seed}:{index}\n\n{failure['detail']}\n")
    return path


def replay(target: Target, seed: int, first: int, last: int, save: str | None, show: bool) -> int:
    """Run cases in this process (a traceback is printed, a crash kills us: both visible)."""
    status = 0
    for index in range(first, last + 1):
        data = target.make(seed, index)
        tags, failure = target.run_case(seed, index)
        print(f"{seed}:{index}: {len(data)} bytes: {', '.join(tags)}")
        if show:
            print(f"  input: {data.hex()}")
        if failure is not None:
            status = 1
            print(f"  {failure['kind']}: {failure['detail']}")
            if save:
                print(f"  saved {save_case(target, seed, index, save, failure)}")
    return status


def main(target: Target, argv: list[str] | None = None, default_cases: int = 10_000) -> int:
    parser = argparse.ArgumentParser(description=target.describe)
    parser.add_argument("--cases", type=positive_int, default=default_cases, help=f"cases to run (default {default_cases})")
    parser.add_argument("--seed", type=nonnegative_int, default=None, help="run seed (default: random, printed)")
    parser.add_argument("--start", type=nonnegative_int, default=0, help="first case index (default 0)")
    parser.add_argument("--workers", type=positive_int, default=2, help="worker processes (default 2)")
    parser.add_argument("--batch", type=positive_int, default=100, help="cases per batch sent to a worker")
    parser.add_argument("--timeout", type=positive_float, default=20.0,
                        help="seconds one case may take before it counts as a hang (default 20)")
    parser.add_argument("--replay", metavar="SEED:INDEX[-LAST]", help="run these cases in this process")
    parser.add_argument("--show", action="store_true", help="with --replay: print the input as hex")
    parser.add_argument("--save", metavar="DIR", help="write the inputs of failing cases to DIR")
    parser.add_argument("--json", metavar="FILE", type=writable_file, help="also write the summary as JSON")
    args = parser.parse_args(argv)

    if args.show and not args.replay:
        parser.error("--show needs --replay")
    if args.replay:
        try:
            seed, first, last = parse_replay(args.replay)
        except ValueError as error:
            parser.error(str(error))
        return replay(target, seed, first, last, args.save, args.show)

    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print(f"{target.name}: seed {seed}, {args.cases:,} cases from {args.start}, "
          f"{args.workers} workers, pid {os.getpid()}", flush=True)

    def on_failure(failure: dict) -> None:
        print(f"  FAIL {failure['id']} {failure['kind']}", flush=True)
        if args.save:
            index = int(failure["id"].split(":")[1])
            save_case(target, seed, index, args.save, failure)

    report = run_cases(target, seed, args.cases, start=args.start, workers=args.workers, batch=args.batch,
                       timeout=args.timeout, progress_every=30.0, on_failure=on_failure)
    print(report.text(), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=1) + "\n")
    return 0 if report.ok() else 1


def entry(target_factory: Callable[[], Target], default_cases: int = 10_000) -> None:
    """``if __name__ == "__main__"`` of a fuzzer script."""
    sys.exit(main(target_factory(), default_cases=default_cases))
