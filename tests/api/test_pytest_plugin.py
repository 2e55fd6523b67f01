"""The pytest plugin (voxvm/pytest_plugin.py) and ``voxvm test``, through real pytest runs.

Each test writes a small project into tmp_path and runs pytest (or ``voxvm
test``) there in a subprocess, so the ``pytest11`` entry point, collection,
reporting and exit statuses are the real ones.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import voxasm
from voxvm.errors import UsageError
from voxvm.pytest_plugin import HeaderError, parse_headers

PASSING = """\
; expect: x = 5
; expect: 7
section text
.start
    uload r2 1
    dsload r1 xeq 0
    ncall 0x08 r0
    uload r1 5
    ncall 0x01 r0
    uload r1 7
    ncall 0x01 r0
    halt
section data
    xeq str "x = "
"""

TRAPPING = """\
; expect-rc: 70
; expect-stderr: voxvm: trap: type mismatch: uint64 + float64 at 0x14 (uadd), trap.vvs:7
section text
.start
    uload r1 1
    fload r2 1.5
    uadd r1 r2
    halt
"""

ECHO = """\
; args: --seed=1 --backend=python
; stdin: hi
; expect: hi
section text
.start
    alloc r10 16
    movr r1 r10
    uload r2 16
    ncall 0x02 r0
    movr r1 r10
    movr r3 r0
    uload r2 1
    ncall 0x08 r0
    halt
"""

WRONG = PASSING.replace("; expect: 7", "; expect: 8")


def pytest_run(cwd: Path, *args: str, command: list[str] | None = None) -> subprocess.CompletedProcess:
    argv = command or [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    return subprocess.run([*argv, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return folder


def test_nothing_is_collected_unless_switched_on(tmp_path):
    write(tmp_path, {"ok.vvs": PASSING})
    assert "no tests ran" in pytest_run(tmp_path, "-q").stdout


def test_programs_pass_and_fail_like_pytest_tests(tmp_path):
    write(tmp_path, {"ok.vvs": PASSING, "trap.vvs": TRAPPING, "echo.vvs": ECHO, "wrong.vvs": WRONG,
                     "plain.vvs": "section text\n.start\n    halt\n"})
    result = pytest_run(tmp_path, "-q", "--voxvm-tests", "-rN")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 3 passed" in result.stdout           # plain.vvs has no headers: not a test
    assert "-8\n+7" in result.stdout.replace("\r", "") and "stdout differs" in result.stdout
    assert "Traceback" not in result.stdout
    only = pytest_run(tmp_path, "-q", "--voxvm-tests", "-k", "echo")
    assert only.returncode == 0 and "1 passed" in only.stdout


def test_the_short_summary_says_what_differed(tmp_path):
    write(tmp_path, {"wrong.vvs": WRONG, "bad.vvs": "; expect: 1\nsection text\n.start\n    bogus\n"})
    result = pytest_run(tmp_path, "-q", "--voxvm-tests", "-rf", "-p", "no:cacheprovider")
    lines = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert "FAILED wrong.vvs::wrong.vvs - stdout differs" in lines, result.stdout
    assert "FAILED bad.vvs::bad.vvs - exit status 65, expected 0; stdout differs" in lines, result.stdout


def test_the_ini_option_switches_it_on_and_junit_xml_reports_each_program(tmp_path):
    write(tmp_path, {"pytest.ini": "[pytest]\nvoxvm_tests = true\n", "t/ok.vvs": PASSING})
    result = pytest_run(tmp_path, "-q", "--junitxml=out.xml")
    assert result.returncode == 0 and "1 passed" in result.stdout
    assert 'name="ok.vvs"' in (tmp_path / "out.xml").read_text()


def test_a_vve_takes_its_headers_from_a_sidecar(tmp_path):
    write(tmp_path, {"p.vve": voxasm.assemble(PASSING), "p.expect": "; expect: x = 5\n; expect: 7\n",
                     "lone.vve": voxasm.assemble(PASSING)})
    result = pytest_run(tmp_path, "-q", "--voxvm-tests")
    assert result.returncode == 0 and "1 passed" in result.stdout


def test_a_malformed_header_is_a_collection_error_naming_file_and_line(tmp_path):
    write(tmp_path, {"bad.vvs": "section text\n.start\n; expect-stdrr: x\n    halt\n", "ok.vvs": PASSING})
    result = pytest_run(tmp_path, "-q", "--voxvm-tests")
    assert result.returncode == 2
    # named as pytest names it, relative to where pytest runs
    assert "\nbad.vvs:3: unknown header 'expect-stdrr:' (did you mean 'expect-stderr'?)" in result.stdout


@pytest.mark.parametrize("sidecar, message", [
    ("expect: x = 5\n", "p.expect:1: 'expect: x = 5' is not a header: each line of a .expect file is a comment"),
    ("; a comment alone\n\n", "p.expect:1: no header: a .expect file states at least one"),
])
def test_a_sidecar_that_states_nothing_is_a_collection_error(tmp_path, sidecar, message):
    write(tmp_path, {"p.vve": voxasm.assemble(PASSING), "p.expect": sidecar})
    result = pytest_run(tmp_path, "-q", "--voxvm-tests")
    assert result.returncode == 2 and message in result.stdout, result.stdout


@pytest.mark.parametrize("value", ["60          # seconds", "0", "-1", "nan", "soon", "1e300"])
def test_a_bad_voxvm_timeout_is_a_usage_error_before_any_test(tmp_path, value):
    write(tmp_path, {"pytest.ini": f"[pytest]\nvoxvm_tests = true\nvoxvm_timeout = {value}\n", "ok.vvs": PASSING})
    result = pytest_run(tmp_path, "-q")
    hint = "; a comment goes on its own line" if "#" in value else ""
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"voxvm_timeout: '{value}' is not a number of seconds above 0 (and at most " in result.stderr
    assert result.stderr.rstrip().endswith(f"){hint}")
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("command, message", [
    ("{python} -c \"import time; time.sleep(30)\" {src} {out}", "the compiler did not finish within 1 s"),
    ("no-such-compiler-here {src} {out}", "the compiler could not be started (No such file or directory)"),
])
def test_a_compiler_that_hangs_or_is_missing_fails_its_test(tmp_path, command, message):
    write(tmp_path, {"pytest.ini": f"[pytest]\nvoxvm_tests = true\nvoxvm_timeout = 1\n"
                                   f"voxvm_compilers =\n    .calc: {command}\n",
                     "p.calc": "# expect: 1\n"})
    result = pytest_run(tmp_path, "-q", "-rf")
    assert result.returncode == 1 and message in result.stdout, result.stdout
    assert "Traceback" not in result.stdout


@pytest.mark.parametrize("text, message", [
    ("; expect-rc: seventy\n", "2: expect-rc: 'seventy' is not an exit status (0-255)"),
    ("; expect-rc: 0\n; expect-rc: 1\n", "3: expect-rc given twice (first on line 2)"),
    ("; args: --init-ram=lots\n", "2: args: --init-ram: 'lots' is not a size"),
    ("; args: --no-such-flag\n", "2: args: --no-such-flag: not a run option"),
    ("; args: 'unclosed\n", "2: args: No closing quotation"),
])
def test_header_errors(text, message):
    with pytest.raises(HeaderError) as caught:
        parse_headers("section text\n" + text, Path("h.vvs"))
    assert str(caught.value).startswith(f"h.vvs:{message}")


def test_voxvm_test_is_a_front_end_with_pytest_options(tmp_path):
    write(tmp_path, {"suite/ok.vvs": PASSING, "suite/wrong.vvs": WRONG})
    voxvm_test = [sys.executable, "-m", "voxvm", "test"]
    result = pytest_run(tmp_path, "suite", "-q", "-p", "no:cacheprovider", command=voxvm_test)
    assert result.returncode == 1 and "1 failed, 1 passed" in result.stdout
    passing = pytest_run(tmp_path, "suite", "-q", "-p", "no:cacheprovider", "-k", "ok", command=voxvm_test)
    assert passing.returncode == 0, passing.stdout


def test_the_plugin_runs_under_xdist(tmp_path):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    write(tmp_path, {f"p{i}.vvs": PASSING for i in range(4)})
    result = pytest_run(tmp_path, "-q", "--voxvm-tests", "-n", "2")
    assert result.returncode == 0 and "4 passed" in result.stdout


@pytest.mark.parametrize("marker", [";", "#", "//", "--"])
def test_headers_take_the_comment_markers_of_compiled_languages(marker):
    found = parse_headers(f"{marker} expect: 2\n  {marker} expect-rc: 0\nprint 2;\n", Path("p.c"))
    assert (found.stdout, found.rc) == (["2"], 0)
    sidecar = parse_headers(f"{marker} a note\n; expect: 2\n", Path("p.expect"), sidecar=True)
    assert sidecar.stdout == ["2"]


ENDLESS = "; expect: 1\nsection text\n.start\n    uload r2 1\n    uload r1 1234567890\nlabel again\n    ncall 0x01 r0\n    jmp @again\n"


def test_an_endless_print_is_stopped_and_its_report_is_short(tmp_path):
    write(tmp_path, {"pytest.ini": "[pytest]\nvoxvm_tests = true\n", "loop.vvs": ENDLESS})
    result = pytest_run(tmp_path, "-q")
    assert result.returncode == 1
    assert "wrote more than 16777216 bytes to stdout or stderr" in result.stdout
    assert len(result.stdout) < 20_000                       # the last 40 lines, not 16 MiB


def test_a_vve_runs_with_its_debug_map_in_its_own_folder(tmp_path):
    folder = tmp_path / "sub"
    write(folder, {"t.vvs": "section text\n.start\nfunc f\n    call @f\n    halt\n"})
    subprocess.run([sys.executable, "-m", "voxasm", "-g", "t.vvs"], cwd=folder, check=True, timeout=60)
    (folder / "t.vvs").unlink()
    trap = "voxvm: trap: recursion limit exceeded (2 frames; --max-recursion=N raises it) at 0x0 (call) in f, t.vvs:4"
    write(folder, {"t.expect": f"; args: --max-recursion 2 --coredump_exit\n; expect-rc: 70\n"
                               f"; expect-stderr: {trap}\n" + "".join(
                                   f"; expect-stderr: {line}\n" for line in (
                                       "voxvm: backtrace (innermost first):", "voxvm:   #0   0x0000 in f, t.vvs:4",
                                       "voxvm:   #1   0x0000 in f, t.vvs:4", "voxvm:   #2   0x0000 in f, t.vvs:4"))})
    write(tmp_path, {"pytest.ini": "[pytest]\nvoxvm_tests = true\n"})
    result = pytest_run(tmp_path, "-q")
    assert result.returncode == 0, result.stdout
    assert (folder / "voxvm_err.dump").exists() and not (tmp_path / "voxvm_err.dump").exists()


@pytest.mark.parametrize("files, message", [
    ({"b.vvs": "\ufeff; Expect: 2\nsection text\n.start\n    halt\n"}, "unknown header 'Expect:' (did you mean 'expect'?)"),
    ({"p.calc": "print 1;\n"}, "the compiler exited 0 but wrote no {out}"),
])
def test_mistakes_that_used_to_be_skipped_or_tracebacks_are_reported(tmp_path, files, message):
    ini = "[pytest]\nvoxvm_tests = true\nvoxvm_compilers =\n    .calc: {python} -c pass {src} {out}\n"
    write(tmp_path, {"pytest.ini": ini, **files})
    if "p.calc" in files:
        (tmp_path / "p.calc").write_text("# expect: 1\nprint 1;\n")
    result = pytest_run(tmp_path, "-q")
    assert result.returncode in (1, 2) and message in result.stdout, result.stdout
    assert "Traceback" not in result.stdout


def test_an_unbalanced_quote_in_a_compiler_is_a_usage_error(tmp_path):
    write(tmp_path, {"pytest.ini": "[pytest]\nvoxvm_tests = true\nvoxvm_compilers =\n    .calc: 'x {src} {out}\n"})
    result = pytest_run(tmp_path, "-q")
    assert result.returncode == 4 and "voxvm_compilers: " in result.stderr and "No closing quotation" in result.stderr


def test_args_take_a_value_after_a_space_as_voxvm_run_does():
    from voxvm.config import config_from_args

    assert config_from_args(["--max-recursion", "3", "--seed", "7", "--gc-stress"]).max_recursion == 3
    with pytest.raises(UsageError, match="--max-recursion: needs a value"):
        config_from_args(["--max-recursion"])
