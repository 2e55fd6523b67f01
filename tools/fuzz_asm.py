#!/usr/bin/env python3
"""Fuzzer of the assembler: mutated .vvs sources through ``voxasm.assemble_program``.

Owns the ``.vvs`` target of tools/fuzzlib.py. Seeds are the conformance
sources (``tests/conformance/programs``, ``asm-errors`` and ``concurrency``).
A case mutates one at the level of lines (delete, duplicate, swap, lines
spliced from another file), of tokens (a token replaced by a boundary number,
a register, a label reference, a type name, a string with escapes, ...) or of
bytes (the byte mutators, which also make invalid UTF-8). The contract
checked (docs/vvs-language.md, voxasm/__init__.py):

* ``assemble`` either returns a Program or raises ``AssemblyError``; any
  other exception is a finding;
* whatever assembles must load: ``voxvm.formats.load_vve(build_vve(p))``
  gives back the same image, entry point, data base and function table.

    python tools/fuzz_asm.py --cases 100000 --workers 2 --seed 1
    python tools/fuzz_asm.py --replay 1:4711 --show
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzzlib  # noqa: E402
from fuzzlib import Failure, Target  # noqa: E402

from voxasm import AssemblyError, assemble_program as assemble  # noqa: E402
from voxvm.errors import FormatError  # noqa: E402
from voxvm.formats import build_vve, load_vve  # noqa: E402
from voxvm.isa import OPS  # noqa: E402

MAX_SIZE = 1 << 15
_TOKEN = re.compile(rb"\S+")
# Replacement tokens: the boundaries of every literal kind and operand kind.
TOKENS = [
    b"0", b"1", b"-1", b"18446744073709551615", b"18446744073709551616", b"-9223372036854775808",
    b"-9223372036854775809", b"9223372036854775807", b"0x", b"0x0", b"0xffffffffffffffff",
    b"0x10000000000000000", b"0b", b"0b102", b"0o7", b"1e308", b"1e309", b"-1e309", b"1.5", b"-0.0",
    b".5", b"5.", b"1e", b"nan", b"NaN", b"inf", b"-inf", b"1_000", b"00", b"+1", b"--1",
    b"r0", b"r31", b"r32", b"r-1", b"r", b"R1", b"r01", b"r99999999999999999999",
    b"@", b"@start", b"@main", b"@nosuch", b"@0", b"@@x", b"label:", b":", b"a:b", b".start", b".", b"..",
    b"uint", b"int", b"float", b"str", b"uint[0]", b"uint[1]", b"uint[3]", b"int[]", b"float[-1]",
    b"uint[18446744073709551616]", b"[", b"]", b"[]", b"[1,", b"[1,2,3]", b",", b",,",
    b'"', b'""', b'"a"', b'"\\"', b'"\\n"', b'"\\u{10ffff}"', b'"\\u{110000}"', b'"\\x"', b'"\\u{d800}"',
    b'"\xf0\x9f\x98\x80"', b"\xff\xfe", b"\x00", b"\t", b";", b"#", b"section", b"text", b"data",
    b"section text", b"section data", b"const", b"\\",
    b"!zeros=1", b"!zeros=0", b"!zeros=4096", b"!zeros=33554432", b"!zeros=33554433",
]
LINES = [b"", b"section text", b"section data", b".start", b"halt", b"main:", b"main:", b"ret",
         b"    x uint 5", b"    x str \"\"", b"    x float[2] [1.0, nan]", b"    jmp @main", b"    call @main",
         b"    ncall 1 r0", b"    ncall 65536 r0", b"    uload r1", b"    uload r1 1 2"]


def load_corpus() -> list[bytes]:
    files = (fuzzlib.corpus_files("programs", ".vvs") + fuzzlib.corpus_files("asm-errors", ".vvs")
             + fuzzlib.corpus_files("concurrency", ".vvs"))
    return [path.read_bytes() for path in files]


def _mnemonic_tokens() -> list[bytes]:
    return [op.mnemonic.encode() for op in OPS]


MNEMONICS = _mnemonic_tokens()


def _mutate_lines(rng: random.Random, text: bytes, corpus: list[bytes]) -> bytes:
    lines = text.split(b"\n")
    n = len(lines)
    op = rng.random()
    i = rng.randrange(n)
    if op < 0.25:
        del lines[i]
    elif op < 0.45:
        lines.insert(rng.randrange(n + 1), lines[i])
    elif op < 0.6:
        j = rng.randrange(n)
        lines[i], lines[j] = lines[j], lines[i]
    elif op < 0.85:
        other = rng.choice(corpus).split(b"\n")
        lines.insert(rng.randrange(n + 1), rng.choice(other))
    else:
        lines.insert(rng.randrange(n + 1), rng.choice(LINES))
    return b"\n".join(lines)


def _mutate_tokens(rng: random.Random, text: bytes) -> bytes:
    spans = [m.span() for m in _TOKEN.finditer(text)]
    if not spans:
        return text + rng.choice(TOKENS)
    start, end = rng.choice(spans)
    pick = rng.random()
    if pick < 0.6:
        new = rng.choice(TOKENS)
    elif pick < 0.75:
        new = rng.choice(MNEMONICS)
    elif pick < 0.85:
        new = b""                                           # drop the token
    else:
        new = text[start:end] + b" " + rng.choice(TOKENS)   # an extra operand
    return text[:start] + new + text[end:]


def generate(rng: random.Random, corpus: list[bytes]) -> bytes:
    data = rng.choice(corpus)
    for _ in range(rng.choice((1, 1, 2, 3))):
        kind = rng.random()
        if kind < 0.35:
            data = _mutate_tokens(rng, data)
        elif kind < 0.65:
            data = _mutate_lines(rng, data, corpus)
        else:
            data = fuzzlib.mutate_bytes(rng, data, corpus, MAX_SIZE, steps=1)
    return data[:MAX_SIZE]


def check(data: bytes) -> list[str]:
    try:
        program = assemble(data, "<mutant.vvs>")
    except AssemblyError:
        return ["rejected (AssemblyError)"]
    vve = build_vve(program)
    try:
        loaded = load_vve(vve, "<assembled>")
    except FormatError as exc:
        raise Failure("assembled but does not load", str(exc)) from None
    if (loaded.image, loaded.entry, loaded.data_base, tuple(loaded.functions)) != \
            (program.image, program.entry, program.data_base, tuple(program.functions)):
        raise Failure("assembled program changes through build_vve/load_vve",
                      f"entry {program.entry}/{loaded.entry}, data base {program.data_base}/"
                      f"{loaded.data_base}, functions {program.functions}/{loaded.functions}")
    return ["assembled and loaded"]


def target() -> Target:
    return Target(name="asm", suffix=".vvs", load_corpus=load_corpus, generate=generate, check=check,
                  describe=__doc__.splitlines()[0])


if __name__ == "__main__":
    fuzzlib.entry(target, default_cases=10_000)
