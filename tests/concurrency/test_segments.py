"""Shared segments: ``--shm=SIZE``, ``--shm=SIZE:PATH`` (and ``-m``), the shm natives' bounds,
two ``voxvm`` processes talking through a file, and every bad input of docs/concurrency.md."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support.runs import cli, run_sources, vm_lines, write

# Segment r10, offset r11: store 1, then say whether it worked.
STORE_AT = """\
section text
.start
    uload r1 {segment}
    uload r2 {offset}
    uload r3 1
    ncall 0x35 r0
    jexc @mainsegmfault @outside
    jexc @nativefault @nosegment
    dsload r1 ok 0
    jmp @show
label outside
    dsload r1 outside_msg 0
    jmp @show
label nosegment
    dsload r1 nosegment_msg 0
label show
    uload r2 1
    ncall 1 r0
    halt

section data
    ok str "ok"
    outside_msg str "MainSegmFault"
    nosegment_msg str "NativeFault"
"""


@pytest.mark.parametrize("segment,offset,expected", [
    (1, 24, "ok"), (1, 32, "MainSegmFault"), (1, 20, "MainSegmFault"), (0, 8, "ok"),
    (0, 16, "MainSegmFault"), (2, 0, "NativeFault"), (0, 2**64 - 8, "MainSegmFault"),
])
def test_segments_are_numbered_in_flag_order_and_bounded(segment, offset, expected, backend) -> None:
    rc, out, err = run_sources([STORE_AT.format(segment=segment, offset=offset)], backend,
                               ["--shm=16", "-m=32"])
    assert (rc, out.decode()) == (0, expected + "\n"), err


COPY = """\
section text
.start
    alloc r10 {block}
    uload r1 0
    uload r2 {offset}
    uload r3 {count}
    movr r4 r10
    ncall {code} r0
    jexc @mainsegmfault @outside
    jexc @heapreadfault @heapread
    jexc @heapwritefault @heapwrite
    dsload r1 ok 0
    jmp @show
label outside
    dsload r1 outside_msg 0
    jmp @show
label heapread
    dsload r1 heapread_msg 0
    jmp @show
label heapwrite
    dsload r1 heapwrite_msg 0
label show
    uload r2 1
    ncall 1 r0
    halt

section data
    ok str "ok"
    outside_msg str "MainSegmFault"
    heapread_msg str "HeapReadFault"
    heapwrite_msg str "HeapWriteFault"
"""


@pytest.mark.parametrize("code,block,offset,count,expected", [
    ("0x38", 16, 48, 16, "ok"),
    ("0x38", 16, 56, 16, "MainSegmFault"),          # past the end of the 64-byte segment
    ("0x38", 16, 1, 16, "ok"),                      # copies need no alignment
    ("0x38", 8, 0, 16, "HeapWriteFault"),           # the heap block is too small
    ("0x39", 8, 0, 16, "HeapReadFault"),
    ("0x39", 16, 2**64 - 1, 2, "MainSegmFault"),    # offset + count overflows
    ("0x39", 16, 64, 0, "ok"),                      # nothing at the very end
    ("0x38", 16, 65, 0, "MainSegmFault"),
])
def test_shm_read_and_write_check_the_segment_then_the_heap(code, block, offset, count, expected,
                                                             backend) -> None:
    source = COPY.format(code=code, block=block, offset=offset, count=count)
    rc, out, err = run_sources([source], backend, ["--shm=64"])
    assert (rc, out.decode()) == (0, expected + "\n"), err


LOAD_WORD = """\
section text
.start
    uload r1 0
    uload r2 {offset}
    ncall 0x34 r0
    movr r1 r0
    uload r2 1
    ncall 1 r0
    uload r1 0
    uload r2 {offset}
    uload r3 {value}
    ncall 0x35 r0
    halt
"""


def test_a_file_segment_is_created_extended_kept_and_shared_between_runs(tmp_path, backend) -> None:
    path = tmp_path / "seg.dump"
    program = write(tmp_path, "p.vvs", LOAD_WORD.format(offset=8, value=0x0102030405060708))
    flags = [f"--shm=4096:{path}", f"--backend={backend}"]
    first = cli(["run", str(program), *flags], tmp_path)
    assert (first.returncode, first.stdout) == (0, b"0\n"), first.stderr
    assert path.stat().st_size == 4096
    assert path.read_bytes()[8:16] == bytes(range(1, 9))     # big-endian, kept after exit
    second = cli(["run", str(program), *flags], tmp_path)
    assert second.stdout == f"{0x0102030405060708}\n".encode()
    # A longer file is never shrunk; the segment is its first SIZE bytes.
    with open(path, "ab") as f:
        f.write(b"\xff" * 4096)
    third = cli(["run", str(program), f"-m 64:{path}".replace(" ", ""), f"--backend={backend}"],
                tmp_path)
    assert third.returncode == 0, third.stderr
    assert path.stat().st_size == 8192
    # A shorter file is zero-extended, its bytes kept.
    path.write_bytes(b"\x00" * 8 + (5).to_bytes(8, "big"))
    fourth = cli(["run", str(program), "-m", f"100:{path}", f"--backend={backend}"], tmp_path)
    assert fourth.stdout == b"5\n" and path.stat().st_size == 100


def test_an_anonymous_segment_starts_zero_filled_and_a_path_may_hold_colons(tmp_path, backend) -> None:
    program = write(tmp_path, "p.vvs", LOAD_WORD.format(offset=0, value=3))
    run = cli(["run", str(program), "--shm=1KB", f"--backend={backend}"], tmp_path)
    assert (run.returncode, run.stdout) == (0, b"0\n"), run.stderr
    run = cli(["run", str(program), "--shm=8:a:b", f"--backend={backend}"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "a:b").read_bytes() == (3).to_bytes(8, "big")


# ---------------------------------------------------------------- two processes

WRITER = """\
section text
.start
    uload r20 1                 ; the next value
    uload r21 {count}
label next
    uload r22 0
label wait_empty                ; until the flag (word 0) is 0
    uload r1 0
    uload r2 0
    ncall 0x34 r0
    uload r5 0
    ucmp r0 r5
    jz @empty
    call @backoff
    jmp @wait_empty
label empty
    uload r1 0
    uload r2 8
    movr r3 r20
    ncall 0x35 r0               ; the value (word 1)
    uload r2 0
    uload r3 0
    uload r4 1
    ncall 0x37 r0               ; flag 0 -> 1: published
    jnz @broken
    ucmp r20 r21
    uinc r20
    jl @next
    halt
label broken
    uload r1 999
    uload r2 1
    ncall 1 r0
    halt

func backoff                    ; spin, and every 256 tries give the CPU away for 1 ms
    uinc r22
    uload r5 255
    and r5 r22
    uload r6 0
    ucmp r5 r6
    jnz @spin
    uload r1 1
    ncall 6 r0
label spin
    ret
"""

READER = """\
section text
.start
    uload r20 0                 ; values taken
    uload r21 {count}
    uload r23 0                 ; values out of order
    uload r24 0                 ; their sum
label next
    uload r22 0
label wait_full
    uload r1 0
    uload r2 0
    ncall 0x34 r0
    uload r5 1
    ucmp r0 r5
    jz @full
    call @backoff
    jmp @wait_full
label full
    uload r1 0
    uload r2 8
    ncall 0x34 r0
    uinc r20
    ucmp r0 r20
    jz @in_order
    uinc r23
label in_order
    uadd r24 r0
    uload r1 0
    uload r2 0
    uload r3 1
    uload r4 0
    ncall 0x37 r0               ; flag 1 -> 0: taken
    ucmp r20 r21
    jl @next
    uload r2 1
    movr r1 r20
    ncall 1 r0
    movr r1 r23
    ncall 1 r0
    movr r1 r24
    ncall 1 r0
    halt

func backoff
    uinc r22
    uload r5 255
    and r5 r22
    uload r6 0
    ucmp r5 r6
    jnz @spin
    uload r1 1
    ncall 6 r0
label spin
    ret
"""


def handover_count(backend: str) -> int:
    """CI sizes: 10^5 on the compiled core (docs/concurrency.md), fewer on the reference."""
    return 100_000 if backend == "cython" else 2_000


def test_a_writer_and_a_reader_process_hand_values_over_in_order(tmp_path, backend) -> None:
    count = handover_count(backend)
    path = tmp_path / "channel.dump"
    writer = write(tmp_path, "writer.vvs", WRITER.format(count=count))
    reader = write(tmp_path, "reader.vvs", READER.format(count=count))
    flags = [f"--shm=4096:{path}", f"--backend={backend}"]
    command = [sys.executable, "-m", "voxvm", "run"]
    # The reader first: it creates the file and waits; then the writer maps the same file.
    reading = subprocess.Popen([*command, str(reader), *flags], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL)
    try:
        writing = subprocess.run([*command, str(writer), *flags], cwd=tmp_path, capture_output=True,
                                 stdin=subprocess.DEVNULL, timeout=600)
        out, err = reading.communicate(timeout=600)
    finally:
        reading.kill()
    assert (writing.returncode, writing.stdout) == (0, b""), writing.stderr
    assert reading.returncode == 0, err
    assert out.decode().split() == [str(count), "0", str(count * (count + 1) // 2)]


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("flag,message", [
    ("--shm=0", "a segment is 1 byte to 16GB"),
    ("--shm=4XB", "is not a size"),
    ("--shm=-4", "is not a size"),
    ("--shm=4096:", "the file name after ':' is missing"),
    ("--shm=17GB", "a segment is 1 byte to 16GB"),
    ("-m=abc", "is not a size"),
])
def test_a_bad_segment_flag_is_a_usage_error(flag, message, tmp_path) -> None:
    program = write(tmp_path, "p.vvs", LOAD_WORD.format(offset=0, value=1))
    for args in (["run", str(program), flag], [f"--vve={program}", flag]):
        run = cli(args, tmp_path)
        assert run.returncode == 2, run.stderr
        assert message in run.stderr.decode() and b"Traceback" not in run.stderr


def test_a_bad_segment_file_is_an_io_error_and_nothing_is_truncated(tmp_path) -> None:
    program = write(tmp_path, "p.vvs", LOAD_WORD.format(offset=0, value=1))

    def run(spec: str):
        return cli(["run", str(program), f"--shm={spec}"], tmp_path)

    missing = run(f"4096:{tmp_path}/no/such/dir/seg")
    assert missing.returncode == 74 and b"cannot open" in missing.stderr
    folder = run(f"4096:{tmp_path}")
    assert folder.returncode == 74 and b"is a directory" in folder.stderr
    assert run("4096:/dev/null").returncode == 74          # not a regular file
    if os.geteuid() != 0:                                   # root may write anything
        readonly = tmp_path / "ro.dump"
        readonly.write_bytes(b"abc")
        readonly.chmod(0o444)
        short = run(f"4096:{readonly}")
        assert short.returncode == 74 and b"cannot open" in short.stderr
        assert readonly.read_bytes() == b"abc"
    # A later segment failing removes a file the run created for an earlier one, and
    # leaves an existing one as it was.
    existing = tmp_path / "existing.dump"
    existing.write_bytes(b"keep")
    failed = cli(["run", str(program), f"--shm=16:{tmp_path}/new.dump", f"--shm=16:{existing}",
                  f"--shm=16:{tmp_path}/no/dir/x"], tmp_path)
    assert failed.returncode == 74
    assert not (tmp_path / "new.dump").exists()
    assert existing.read_bytes() == b"keep" + bytes(12)    # extended, as the run asked, never cut
    assert failed.stdout == b""                            # nothing ran


def test_shm_natives_without_segments_raise_nativefault(backend) -> None:
    rc, out, err = run_sources([STORE_AT.format(segment=0, offset=0)], backend)
    assert (rc, out) == (0, b"NativeFault\n"), err
    assert any("no segment 0" in line for line in vm_lines(err))


def test_the_c_natives_and_their_python_handlers_agree() -> None:
    """The compiled core runs 0x32-0x39 in C (csrc/vv_shm.h); taken out of its table, the
    Python handlers (voxvm/host/shm.py) must give the same bytes, flags and exceptions."""
    import io

    from support.machines import compiled

    compiled()
    from conftest import conformance_dir
    from voxasm import assemble_program as assemble
    from voxvm.config import VMConfig
    from voxvm.machine import Machine

    source = conformance_dir("concurrency") / "conc_shm_ops.vvs"
    program = assemble(source.read_bytes(), str(source))
    results = []
    for in_c in (True, False):
        out, err = io.BytesIO(), io.BytesIO()
        machine = Machine(program, VMConfig(backend="cython", shm=("4096",)), io.BytesIO(), out, err)
        assert set(range(0x32, 0x3A)) <= set(machine.core.c_natives())
        if not in_c:
            for code in range(0x32, 0x3A):
                machine.core.remove_native(code)
        rc = machine.run_to_status()
        results.append((rc, out.getvalue(), err.getvalue(), machine.core.flags))
    assert results[0] == results[1]
    assert results[0][0] == 0 and results[0][1].endswith(b"errors caught\n")


def test_two_segments_of_one_file_share_the_reference_backends_lock(tmp_path):
    # record locks do not exclude the threads of one process: the in-process lock must be shared
    from voxvm.config import SegmentSpec
    from voxvm.host.shm import open_segments

    path = str(tmp_path / "one.bin")
    segments = open_segments([SegmentSpec(64, path), SegmentSpec(64, path), SegmentSpec(64, None)])
    try:
        assert segments[0].lock is segments[1].lock and segments[2].lock is not segments[0].lock
    finally:
        for segment in segments:
            segment.close()


def test_a_file_whose_storage_cannot_be_set_aside_is_74_before_anything_runs(tmp_path, monkeypatch):
    import errno

    from voxvm.config import SegmentSpec
    from voxvm.errors import VoxIOError
    from voxvm.host.shm import open_segments

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    with pytest.raises(VoxIOError, match=r"--shm=4096:.*: cannot set aside 4096 bytes of storage for .*"
                                         r"No space left on device") as refused:
        open_segments([SegmentSpec(4096, str(tmp_path / "full.bin"))])
    assert refused.value.exit_status == 74 and not (tmp_path / "full.bin").exists()   # created, then removed


@pytest.mark.parametrize("size", ["1.5", "0.5", "2.25"])
def test_a_fraction_of_a_byte_is_a_usage_error(size):
    from voxvm.config import parse_segment
    from voxvm.errors import UsageError

    with pytest.raises(UsageError, match="is not a whole number of bytes"):
        parse_segment(size, "--shm")
