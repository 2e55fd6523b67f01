"""voxasm's file driver and command lines: output names and formats, atomic writes, exit statuses.

Exit statuses (semantics.md §5): 0 ok, 2 usage, 65 assembly error, 74 I/O.
Most cases call ``voxasm.cli.main`` in-process; a few run the real console
entry points in a subprocess (``python -m voxasm``, ``voxvm --vas=``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import conformance_dir
from voxasm import AssemblyError
from voxasm.cli import main as voxasm_main
from voxasm.driver import assemble_file, default_output_path, output_format
from voxvm.errors import UsageError, VoxIOError
from voxvm.formats import build_vve, load_vve

PROGRAM = "section text\n.start\n    uload r1 42\n    uload r2 1\n    ncall 1 r0\n    halt\n"
BROKEN = "section text\n    uload r1 12z4\n    frob\n    halt\n"


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "prog.vvs"
    path.write_text(PROGRAM)
    return path


def run_cli(argv, capsys):
    """Run voxasm's main in-process; returns (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        voxasm_main(argv)
    out, err = capsys.readouterr()
    return info.value.code or 0, out, err


# --- driver -----------------------------------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    ("x.vvs", "x.vve"), ("dir/x.vvs", "dir/x.vve"), ("x.VVS", "x.vve"), ("x.asm", "x.asm.vve"),
    ("x", "x.vve"), ("x.vve", "x.vve.vve"), (".vvs", ".vvs.vve"), ("a.vvs.txt", "a.vvs.txt.vve"),
])
def test_default_output_name_never_equals_the_input(given, expected):
    assert default_output_path(given) == expected != given


@pytest.mark.parametrize("name, fmt", [
    ("a.vve", "vve"), ("a.vvr", "vvr"), ("a.VVR", "vvr"), ("a.bin", "vve"), ("a.vvr.bak", "vve"),
    ("a.vve.vvr", "vvr"),
])
def test_output_format_by_suffix(name, fmt):
    assert output_format(name) == fmt


def test_assemble_file_default_output(src):
    out = assemble_file(str(src), None)
    assert out == str(src.with_suffix(".vve"))
    assert load_vve(src.with_suffix(".vve").read_bytes()).image[:2] == b"\x10\x01"


def test_bug_47_input_without_vvs_suffix_is_not_truncated(tmp_path):
    src = tmp_path / "program.asm"
    src.write_text(PROGRAM)
    out = assemble_file(str(src))
    assert out == str(src) + ".vve"
    assert src.read_text() == PROGRAM


def test_raw_image_for_vvr_names_and_format_override(src, tmp_path):
    raw = tmp_path / "p.vvr"
    assemble_file(str(src), str(raw))
    assert raw.read_bytes()[0] == 0x10 and len(raw.read_bytes()) == 25
    forced = tmp_path / "p.bin"
    assemble_file(str(src), str(forced), fmt="vvr")
    assert forced.read_bytes() == raw.read_bytes()
    assemble_file(str(src), str(tmp_path / "q.vvr"), fmt="vve")
    assert (tmp_path / "q.vvr").read_bytes()[:4] == b"VVE\x00"


def test_failed_assembly_leaves_an_existing_output_untouched(tmp_path):
    src = tmp_path / "bad.vvs"
    src.write_text(BROKEN)
    out = tmp_path / "bad.vve"
    out.write_bytes(b"previous contents")
    with pytest.raises(AssemblyError):
        assemble_file(str(src), str(out))
    assert out.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.vve", "bad.vvs"]


def test_failed_assembly_creates_no_output(tmp_path):
    src = tmp_path / "bad.vvs"
    src.write_text(BROKEN)
    with pytest.raises(AssemblyError):
        assemble_file(str(src))
    assert [p.name for p in tmp_path.iterdir()] == ["bad.vvs"]


def test_successful_write_replaces_and_keeps_permissions(src, tmp_path):
    out = tmp_path / "o.vve"
    out.write_bytes(b"old")
    os.chmod(out, 0o640)
    assemble_file(str(src), str(out))
    assert out.read_bytes()[:4] == b"VVE\x00"
    assert os.stat(out).st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.vve", "prog.vvs"]


def test_a_failed_debug_map_write_leaves_the_output_untouched(src, tmp_path):
    out = tmp_path / "o.vve"
    out.write_bytes(b"previous contents")
    for bad_map in (tmp_path / "no" / "such.map", tmp_path):
        with pytest.raises(VoxIOError):
            assemble_file(str(src), str(out), debug_map=str(bad_map))
        assert out.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.vve", "prog.vvs"]     # no temporary left


def test_through_a_symlink_the_target_is_written_and_the_link_kept(src, tmp_path):
    (tmp_path / "link.vve").symlink_to("real.vve")          # dangling until the first write
    for _ in range(2):
        assemble_file(str(src), str(tmp_path / "link.vve"))
        assert (tmp_path / "link.vve").is_symlink()
        assert (tmp_path / "real.vve").read_bytes()[:4] == b"VVE\x00"


def test_a_pipe_as_the_output_is_written_into_not_replaced(src, tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        assemble_file(str(src), str(fifo))
        data = reader.communicate(timeout=30)[0]
    finally:
        reader.kill()
    assemble_file(str(src), str(tmp_path / "regular.vve"))
    assert data == (tmp_path / "regular.vve").read_bytes()
    assert fifo.is_fifo()


def test_io_errors(src, tmp_path):
    with pytest.raises(VoxIOError, match="cannot read"):
        assemble_file(str(tmp_path / "missing.vvs"))
    with pytest.raises(VoxIOError, match="is a directory"):
        assemble_file(str(tmp_path))
    with pytest.raises(VoxIOError, match="cannot write"):
        assemble_file(str(src), str(tmp_path / "no" / "such" / "dir.vve"))
    with pytest.raises(VoxIOError, match="is a directory"):
        assemble_file(str(src), str(tmp_path))


def test_refuses_to_overwrite_its_own_source(src):
    with pytest.raises(UsageError):
        assemble_file(str(src), str(src))
    assert src.read_text() == PROGRAM


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory(src, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        with pytest.raises(VoxIOError):
            assemble_file(str(src), str(locked / "o.vve"))
    finally:
        os.chmod(locked, 0o700)


# --- the voxasm command line -------------------------------------------------------------

def test_cli_success(src, tmp_path, capsys):
    out = tmp_path / "o.vve"
    status, stdout, stderr = run_cli([str(src), "-o", str(out)], capsys)
    assert (status, stdout, stderr) == (0, "", "")
    assert out.read_bytes() == build_vve(load_vve(out.read_bytes()))


def test_cli_assembly_error_status_65(tmp_path, capsys):
    src = tmp_path / "bad.vvs"
    src.write_text(BROKEN)
    status, stdout, stderr = run_cli([str(src)], capsys)
    assert status == 65 and stdout == ""
    assert f"{src}:2:14: error:" in stderr and f"{src}:3:5: error:" in stderr
    assert not (tmp_path / "bad.vve").exists()


def test_cli_check_writes_nothing(src, tmp_path, capsys):
    status, _, stderr = run_cli(["--check", str(src)], capsys)
    assert (status, stderr) == (0, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prog.vvs"]


def test_cli_warnings_and_quiet(tmp_path, capsys):
    src = tmp_path / "w.vvs"
    src.write_text("section text\n.start\n.start\nhalt\n")
    status, _, stderr = run_cli([str(src)], capsys)
    assert status == 0 and "w.vvs:3:1: warning:" in stderr
    status, _, stderr = run_cli(["-q", str(src)], capsys)
    assert (status, stderr) == (0, "")


def test_cli_max_errors(tmp_path, capsys):
    src = tmp_path / "many.vvs"
    src.write_text("section text\n" + "bogus\n" * 30)
    status, _, stderr = run_cli(["--max-errors", "3", str(src)], capsys)
    assert status == 65 and stderr.count(": error:") == 3 and "27 more errors" in stderr


@pytest.mark.parametrize("argv", [[], ["--format", "elf", "x.vvs"], ["--bogus", "x.vvs"],
                                  ["--check", "-o", "x.vve", "x.vvs"]])
def test_cli_usage_errors_status_2(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.vvs").write_text(PROGRAM)
    status, _, _ = run_cli(argv, capsys)
    assert status == 2


def test_cli_io_error_status_74(tmp_path, capsys):
    status, _, stderr = run_cli([str(tmp_path / "missing.vvs")], capsys)
    assert status == 74
    assert stderr.startswith("voxasm: error:") and stderr.count("\n") == 1


def test_cli_help_documents_every_flag(capsys):
    status, stdout, _ = run_cli(["--help"], capsys)
    assert status == 0
    for flag in ("--output", "--format", "--check", "--max-errors", "--quiet", "--version", "--help"):
        assert flag in stdout


# --- real processes -------------------------------------------------------------------------

def _python(*args, cwd):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_python_m_voxasm_on_an_error_vector(tmp_path):
    case = conformance_dir("asm-errors") / "several_errors.vvs"
    out = tmp_path / "o.vve"
    result = _python("-m", "voxasm", str(case), "-o", str(out), cwd=tmp_path)
    assert result.returncode == 65
    assert "Traceback" not in result.stderr
    reported = sorted({int(line.split(":")[1]) for line in result.stderr.splitlines()
                       if ": error: " in line})
    assert reported == [5, 8, 11]
    assert not out.exists()


def test_voxvm_vas_end_to_end(tmp_path):
    golden = conformance_dir("programs") / "factorial.vvs"
    out = tmp_path / "f.vve"
    result = _python("-m", "voxvm", f"--vas={golden}", f"--vas-out={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == golden.with_suffix(".vve").read_bytes()
    bad = conformance_dir("asm-errors") / "unknown_label.vvs"
    result = _python("-m", "voxvm", f"--vas={bad}", f"--vas-out={tmp_path / 'g.vve'}", cwd=tmp_path)
    assert result.returncode == 65 and "unknown_label.vvs:6:9: error:" in result.stderr
    assert not (tmp_path / "g.vve").exists()


def test_a_vvr_output_warns_about_what_a_raw_image_cannot_keep(tmp_path, capsys):
    # docs/vve-format.md: a .vvr runs from 0 with data base 0 and no function table.
    src = tmp_path / "v.vvs"
    src.write_text("section text\nfunc f\n    ret\n.start\n    call @f\n    dsload r1 x 0\n    halt\n"
                   "section data\n    x uint 3\n")
    warnings = []
    assemble_file(str(src), str(tmp_path / "v.vvr"), warn=warnings.append)
    assert [(w.line, w.message.split(":")[0]) for w in warnings] == [
        (5, "'.start' is lost in a .vvr, which runs from address 0"),
        (3, "a .vvr has no function table"),
        (9, "a .vvr has data base 0")]
    plain = tmp_path / "p.vvs"
    plain.write_text(PROGRAM)
    assemble_file(str(plain), str(tmp_path / "p.vvr"), warn=warnings.append)
    assert len(warnings) == 3                                 # nothing lost: no warning


def test_warnings_are_capped_as_errors_are(tmp_path):
    (tmp_path / "w.vvs").write_text("halt\nsection data\n" + "".join(f"n{i} uint 5 junk\n" for i in range(150)))
    capped = _python("-m", "voxasm", "--max-errors", "2", "w.vvs", cwd=tmp_path)
    assert capped.returncode == 0
    assert capped.stderr.count(": warning: ") == 2
    assert capped.stderr.splitlines()[-1] == "voxasm: 148 more warnings not shown"
    plain = _python("-m", "voxvm", "--vas=w.vvs", "--vas-out=w.vve", cwd=tmp_path)      # the default, 100
    assert plain.stderr.count(": warning: ") == 100 and plain.stderr.endswith("50 more warnings not shown\n")
    assert _python("-m", "voxasm", "-q", "w.vvs", cwd=tmp_path).stderr == ""


def test_an_input_that_never_ends_stops_at_the_limit(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    result = _python("-m", "voxasm", "/dev/zero", "-o", "z.vve", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (65, "voxasm: error: /dev/zero: more than 1073741824 bytes: no "
                                                      "program or input is that large (a device or a pipe that "
                                                      "does not end?)\n")
