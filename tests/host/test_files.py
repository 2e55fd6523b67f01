"""The file natives 0x10-0x16 and runcmd 0x07, through real .vvs programs on both backends.

Handles are stable and never reused (semantics.md §3.17), fopen's heap-read
failure is HeapReadFault (§3.18), fread reports the bytes read in r0 and
writes only those (docs/semantics.md §18), and every failure is a ``voxvm:``
line plus the exception upstream.md §8.1 names.
"""

from __future__ import annotations

from support.builders import VvsProgram

FOPEN, FCLOSE, FWRITE, FREAD, FDELETE, FSEEKGET, FSEEKSET = range(0x10, 0x17)
RUNCMD = 0x07


def test_write_read_seek_append_delete(backend, tmp_path):
    path = tmp_path / "data.txt"
    p = VvsProgram()
    n = p.heap_text("r10", str(path))
    p.heap_text("r11", "hello")
    p.ncall(FOPEN, r1="r10", r2=n, r3=1).op("movr r12 r0").print_reg("r12")      # ok 0
    p.ncall(FWRITE, r1="r12", r2="r11", r3=10)                                   # ok
    p.ncall(FSEEKGET, r1="r12").print_reg("r0")                                  # ok 10
    p.ncall(FCLOSE, r1="r12")                                                    # ok
    p.ncall(FOPEN, r1="r10", r2=n, r3=2).op("movr r13 r0").print_reg("r13")      # ok 1
    p.op("alloc r14 32")
    p.ncall(FREAD, r1="r13", r2=32, r3="r14").op("movr r15 r0").print_reg("r15")  # ok 10
    p.print_heap("r14", "r15")                                                   # hello
    p.ncall(FREAD, r1="r13", r2=32, r3="r14").print_reg("r0")                    # ok 0 (EOF)
    p.ncall(FSEEKSET, r1="r13", r2=2)
    p.ncall(FREAD, r1="r13", r2=32, r3="r14").op("movr r15 r0").print_reg("r15")  # ok 8
    p.print_heap("r14", "r15")                                                   # ello
    p.ncall(FOPEN, r1="r10", r2=n, r3=3).op("movr r16 r0").print_reg("r16")      # ok 2
    p.ncall(FSEEKGET, r1="r16").print_reg("r0")                                  # ok 0
    p.heap_text("r17", "!!")
    p.ncall(FWRITE, r1="r16", r2="r17", r3=4)
    p.ncall(FCLOSE, r1="r16")
    rc, out, err = p.run(backend)
    assert rc == 0 and err == []
    assert out == ["ok", "0", "ok", "ok", "10", "ok", "ok", "1", "ok", "10", "hello",
                   "ok", "0", "ok", "ok", "8", "ello", "ok", "2", "ok", "0", "ok", "ok"]
    assert path.read_bytes() == "hello!!".encode("utf-16-be")

    delete = VvsProgram()
    n = delete.heap_text("r10", str(path))
    delete.ncall(FOPEN, r1="r10", r2=n, r3=2).op("movr r12 r0")
    delete.ncall(FDELETE, r1="r12")
    delete.ncall(FSEEKGET, r1="r12")                 # the handle is gone with the file
    rc, out, err = delete.run(backend)
    assert (rc, out) == (0, ["ok", "ok", "nativefault"])
    assert not path.exists()
    assert err == ["voxvm: ncall 0x15 (fseekget): file handle 0 is closed"]


def test_read_write_modes_and_read_plus_write(backend, tmp_path):
    path = tmp_path / "rw.bin"
    path.write_bytes("abcdef".encode("utf-16-be"))
    p = VvsProgram()
    n = p.heap_text("r10", str(path))
    p.heap_text("r11", "XY")
    p.op("alloc r14 16")
    p.ncall(FOPEN, r1="r10", r2=n, r3=2).op("movr r12 r0")        # read only
    p.ncall(FWRITE, r1="r12", r2="r11", r3=4)                      # nativefault
    p.ncall(FOPEN, r1="r10", r2=n, r3=3).op("movr r13 r0")        # append, write only
    p.ncall(FREAD, r1="r13", r2=4, r3="r14")                       # nativefault
    p.ncall(FOPEN, r1="r10", r2=n, r3=4).op("movr r15 r0")        # read + write, no truncate
    p.ncall(FSEEKSET, r1="r15", r2=4)
    p.ncall(FWRITE, r1="r15", r2="r11", r3=4)
    p.ncall(FSEEKGET, r1="r15").print_reg("r0")                   # 8
    rc, out, err = p.run(backend)
    assert rc == 0
    assert out == ["ok", "nativefault", "ok", "nativefault", "ok", "ok", "ok", "ok", "8"]
    assert path.read_bytes() == "abXYef".encode("utf-16-be")
    assert err == ["voxvm: ncall 0x12 (fwrite): file 0 was opened for reading only",
                   "voxvm: ncall 0x13 (fread): file 1 was opened for writing only"]


def test_bad_and_closed_handles_are_never_reused(backend, tmp_path):
    path = tmp_path / "h.txt"
    p = VvsProgram()
    n = p.heap_text("r10", str(path))
    p.ncall(FCLOSE, r1=7)                                          # never opened
    p.ncall(FOPEN, r1="r10", r2=n, r3=1).print_reg("r0")          # 0
    p.ncall(FOPEN, r1="r10", r2=n, r3=4).print_reg("r0")          # 1
    p.ncall(FCLOSE, r1=0)
    p.ncall(FCLOSE, r1=0)                                          # closed twice
    p.ncall(FWRITE, r1=0, r2="r10", r3=2)                          # closed
    p.ncall(FOPEN, r1="r10", r2=n, r3=2).print_reg("r0")          # 2, not 0
    p.ncall(FSEEKGET, r1=1).print_reg("r0")                       # handle 1 still valid: 0
    rc, out, err = p.run(backend)
    assert rc == 0
    assert out == ["nativefault", "ok", "0", "ok", "1", "ok", "nativefault", "nativefault",
                   "ok", "2", "ok", "0"]
    assert err == ["voxvm: ncall 0x11 (fclose): no open file with handle 7",
                   "voxvm: ncall 0x11 (fclose): file handle 0 is closed",
                   "voxvm: ncall 0x12 (fwrite): file handle 0 is closed"]


def test_open_and_heap_faults(backend, tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"0123456789")
    missing = tmp_path / "missing" / "x.txt"
    p = VvsProgram()
    n = p.heap_text("r10", str(path))
    m = p.heap_text("r11", str(missing))
    p.ncall(FOPEN, r1="r10", r2=n, r3=9)                           # bad mode: nativefault
    p.ncall(FOPEN, r1="r11", r2=m, r3=2)                           # no such file: nativefault
    p.ncall(FOPEN, r1="r11", r2=m, r3=1)                           # no such dir: nativefault
    p.ncall(FOPEN, r1="r10", r2=n + 64, r3=2)                      # past the block: heapreadfault
    p.ncall(FOPEN, r1="r10", r2=n, r3=2).op("movr r12 r0")        # ok, handle 0
    p.op("alloc r13 4")
    p.ncall(FREAD, r1="r12", r2=8, r3="r13")   # 8 bytes do not fit: heapwritefault
    p.ncall(FSEEKGET, r1="r12").print_reg("r0")                   # nothing consumed: 0
    p.ncall(FREAD, r1="r12", r2=4, r3="r13").print_reg("r0")      # 4
    p.ncall(FOPEN, r1="r10", r2=n, r3=4).op("movr r15 r0")        # read + write
    p.ncall(FWRITE, r1="r15", r2="r13", r3=64)                     # heap source too short
    rc, out, err = p.run(backend)
    assert rc == 0
    assert out == ["nativefault", "nativefault", "nativefault", "heapreadfault", "ok",
                   "heapwritefault", "ok", "0", "ok", "4", "ok", "heapreadfault"]
    assert len(err) == 6 and all(line.startswith("voxvm: ncall 0x1") for line in err)
    assert "mode 9 is not 1 (write)" in err[0]
    assert "No such file or directory" in err[1]


def test_runcmd_captures_stdout(backend):
    p = VvsProgram()
    n = p.heap_text("r10", "echo hi; echo oops >&2")
    p.op("alloc r11 64")
    p.ncall(RUNCMD, r1="r10", r2=n, r3="r11", r4=64).op("movr r12 r0").print_reg("r12")
    p.print_heap("r11", "r12")
    p.op("alloc r13 2")
    p.ncall(RUNCMD, r1="r10", r2=n, r3="r13", r4=2).print_reg("r0")   # stores 2, reports 6
    p.op("uload r14 2").print_heap("r13", "r14")
    rc, out, err = p.run(backend)
    assert (rc, err) == (0, [])
    assert out == ["ok", "6", "hi", "", "ok", "6", "h"]


def test_runcmd_faults(backend):
    p = VvsProgram()
    p.op("alloc r10 4", "uload r11 0xD800", "uload r12 2", "store r10 r11 r12",
         "uload r11 0x61", "uload r13 2", "uadd r13 r10", "store r13 r11 r12")
    p.ncall(RUNCMD, r1="r10", r2=4, r3="r10", r4=0)               # lone surrogate: heapsegmfault
    p.ncall(RUNCMD, r1="r10", r2=64, r3="r10", r4=0)              # heapreadfault
    n = p.heap_text("r14", "printf abc")
    p.ncall(RUNCMD, r1="r14", r2=n, r3=12345, r4=6)               # heapwritefault
    p.op("uload r11 0", "store r10 r11 r12")                       # "\0a": NUL in the command
    p.ncall(RUNCMD, r1="r10", r2=4, r3="r10", r4=0)               # nativefault
    rc, out, err = p.run(backend)
    assert rc == 0
    assert out == ["heapsegmfault", "heapreadfault", "heapwritefault", "nativefault"]
    assert len(err) == 4 and all(line.startswith("voxvm: ncall 0x7 (runcmd): ") for line in err)


def test_a_seek_beyond_the_largest_file_position_says_so(backend, tmp_path):
    p = VvsProgram()
    n = p.heap_text("r10", str(tmp_path / "s.bin"))
    p.ncall(FOPEN, r1="r10", r2=n, r3=1).op("movr r12 r0")
    p.op("uload r13 9223372036854775808")
    p.ncall(FSEEKSET, r1="r12", r2="r13")
    rc, out, err = p.run(backend)
    assert out == ["ok", "nativefault"]
    assert err == ["voxvm: ncall 0x16 (fseekset): cannot seek to 9223372036854775808: "
                   "beyond the largest file position, 9223372036854775807"]
