"""The run path's ``struct`` reader (voxvm/vvefile.py) agrees with the construct schema (voxvm/formats.py).

The construct schema is the definition of the ``.vve`` format; runs read files
without importing construct (start-up). Both must give the same Program, or
the same FormatError message, for every golden and malformed file of the
conformance vectors and for fuzzed bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxvm import formats, vvefile
from voxvm.errors import FormatError
from voxvm.isa import BY_MNEMONIC

VECTORS = Path(__file__).resolve().parents[1] / "conformance"
FILES = sorted(VECTORS.glob("*/*.vve"))


def outcome(reader, data: bytes):
    """What ``reader`` makes of ``data``: the Program, or the FormatError's message."""
    try:
        return reader(data, "f.vve")
    except FormatError as error:
        return ("FormatError", str(error))


def test_there_are_golden_and_malformed_files():
    kinds = {path.parent.name for path in FILES}
    assert {"programs", "bad-vve"} <= kinds and len(FILES) > 50


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_both_readers_agree_on_every_vector(path):
    data = path.read_bytes()
    assert outcome(vvefile.load_vve, data) == outcome(formats.load_vve, data)


def _header(entry: int, data_base: int, count: int, version: int = 3, magic: bytes = b"VVE\x00") -> bytes:
    return struct.pack(">4sHQQQQQ2s", magic, version, entry, data_base, 0, 0, count, b"\x00\x00")


# Files near the valid ones: plausible headers with small fields, then arbitrary tables and images.
near_valid = st.builds(
    lambda entry, base, count, version, table, image: _header(entry, base, count, version) + table + image,
    st.integers(0, 40), st.integers(0, 40), st.integers(0, 4), st.sampled_from([3, 3, 3, 2]),
    st.binary(max_size=80), st.binary(max_size=40))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=120), near_valid))
def test_both_readers_agree_on_fuzzed_files(data):
    assert outcome(vvefile.load_vve, data) == outcome(formats.load_vve, data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FILES), st.integers(0, 200), st.integers(0, 255))
def test_both_readers_agree_on_mutated_vectors(path, position, value):
    data = bytearray(path.read_bytes())
    if data:
        data[position % len(data)] = value
    assert outcome(vvefile.load_vve, bytes(data)) == outcome(formats.load_vve, bytes(data))


def test_a_plain_run_never_imports_construct(tmp_path):
    import subprocess
    import sys

    halt = bytes([BY_MNEMONIC["halt"].code])
    (tmp_path / "p.vve").write_bytes(formats.build_vve(formats.Program(image=halt)))
    probe = ("import sys; from voxvm.cli import main\n"
             "try:\n    main(['--vve=p.vve'])\nexcept SystemExit as e:\n    code = e.code\n"
             "print(code, 'construct' in sys.modules, 'typer' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert done.stdout.split() == ["0", "False", "False"], done.stderr


# ---- the writer: the assemblers write .vve files through vvefile.build_vve ----

programs = st.builds(
    lambda image, entry, base, functions: formats.Program(
        image=image, entry=entry, data_base=base, functions=tuple(functions)),
    st.binary(max_size=60), st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1),
    st.lists(st.integers(0, (1 << 64) - 1), max_size=6))


@pytest.mark.parametrize("path", [p for p in FILES if p.parent.name == "programs"],
                         ids=lambda p: p.name)
def test_both_writers_agree_on_every_golden_program(path):
    program = formats.load_vve(path.read_bytes(), str(path))
    assert vvefile.build_vve(program) == formats.build_vve(program) == path.read_bytes()


@settings(max_examples=300, deadline=None)
@given(programs)
def test_both_writers_agree_on_any_program(program):
    assert vvefile.build_vve(program) == formats.build_vve(program)


def test_assembling_never_imports_construct(tmp_path):
    import subprocess
    import sys

    (tmp_path / "p.vvs").write_text("section text\n.start\n    halt\n")
    probe = ("import sys; from voxvm.cli import main\n"
             "try:\n    main(['--vas=p.vvs'])\nexcept SystemExit as e:\n    code = e.code\n"
             "print(code, 'construct' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert done.stdout.split() == ["0", "False"], done.stderr
    assert (tmp_path / "p.vve").read_bytes() == formats.build_vve(formats.Program(image=b"\xff"))
