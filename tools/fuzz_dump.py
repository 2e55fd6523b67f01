#!/usr/bin/env python3
"""Fuzzer of the core-dump reader: mutated dumps through ``parse_dump`` and ``render_dump``.

Owns the core-dump target of tools/fuzzlib.py. Seeds are real dumps: each
conformance program (the .vve corpus of tools/fuzz_vve.py) runs on the
reference core until it halts, traps or spends its budget, and its
``snapshot`` is serialised with ``voxvm.formats.build_dump`` (registers of
every tag, stacks, pending exceptions, heap blocks). A case mutates one with
the byte mutators, aiming the u64 field tweaks at the dump's length prefixes
(data stack, call stack, pending, memory, heap, each heap block's size). The
contract checked (voxvm/formats.py, voxvm/dumpview.py):

* ``parse_dump`` returns a Dump or raises ``FormatError``; nothing else;
* a parsed dump renders (``render_dump``) to text without an exception;
* the parse is exact: ``build_dump`` of it is a prefix of the input (for the current
  version; an older one, from a mutated version field, is only parsed and rendered).

    python tools/fuzz_dump.py --cases 100000 --workers 2 --seed 1
    python tools/fuzz_dump.py --replay 1:4711 --show
"""

from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzzlib  # noqa: E402
import fuzz_vve  # noqa: E402
from fuzzlib import Failure, Target  # noqa: E402

from voxvm.backends.reference.core import PyCore  # noqa: E402
from voxvm.dumpview import render_dump  # noqa: E402
from voxvm.errors import FormatError  # noqa: E402
from voxvm.formats import DUMP_MAGIC, DUMP_VERSION, build_dump, load_vve, parse_dump  # noqa: E402

MAX_SIZE = 1 << 18
_HEAD = len(DUMP_MAGIC) + 2 + 1 + 2 + 16 + 8 + 4 + 32 * 9      # up to the data-stack count (version 3)


def load_corpus() -> list[bytes]:
    dumps = []
    for data in fuzz_vve.load_corpus():
        try:
            program = load_vve(data)
        except FormatError:
            continue
        core = PyCore(program, fuzz_vve.CONFIG)
        _, outcome, _, _ = fuzz_vve.execute(core, 64, 8)
        dumps.append(build_dump(core.snapshot(1 if outcome.startswith("trapped") else 0)))
    return dumps


def length_fields(data: bytes) -> tuple[int, ...]:
    """Offsets of the u64 length prefixes (and heap block sizes) of a well-formed dump."""
    offsets = []
    at = _HEAD
    try:
        for width in (9, 8, 1):                       # data stack, call stack, pending
            offsets.append(at)
            (count,) = struct.unpack_from(">Q", data, at)
            at += 8 + count * width
        offsets.append(at)                            # memory
        (size,) = struct.unpack_from(">Q", data, at)
        at += 8 + size
        offsets.append(at)                            # heap
        (count,) = struct.unpack_from(">Q", data, at)
        at += 8
        for _ in range(count):
            offsets += [at, at + 8]                   # a block's address and size
            (size,) = struct.unpack_from(">Q", data, at + 8)
            at += 17 + size
    except struct.error:
        pass
    return tuple(offsets) + (len(DUMP_MAGIC) + 5,)    # and the ip


_FIELDS: dict[bytes, tuple[int, ...]] = {}


def generate(rng: random.Random, corpus: list[bytes]) -> bytes:
    seed = rng.choice(corpus)
    fields = _FIELDS.get(seed)
    if fields is None:
        fields = _FIELDS[seed] = length_fields(seed)
    return fuzzlib.mutate_bytes(rng, seed, corpus, MAX_SIZE, fields)


def check(data: bytes) -> list[str]:
    try:
        dump = parse_dump(data, "<mutant.dump>")
    except FormatError:
        return ["rejected (FormatError)"]
    text = render_dump(dump)
    if not isinstance(text, str) or not text.endswith("\n"):
        raise Failure("render_dump", f"returned {text!r:.200}")
    if dump.version != DUMP_VERSION:      # an older layout (a mutated version field): read, not rebuilt
        return [f"parsed as version {dump.version} and rendered"]
    if not data.startswith(build_dump(dump)):
        raise Failure("parse not exact", "build_dump(parse_dump(data)) is not a prefix of data")
    return ["parsed and rendered"] + (["trailing bytes"] if len(build_dump(dump)) < len(data) else [])


def target() -> Target:
    return Target(name="dump", suffix=".dump", load_corpus=load_corpus, generate=generate, check=check,
                  describe=__doc__.splitlines()[0])


if __name__ == "__main__":
    fuzzlib.entry(target, default_cases=10_000)
