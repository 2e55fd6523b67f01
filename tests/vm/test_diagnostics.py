"""The VM's lines about exceptions and usf (semantics.md §9), on both backends.

One line per raised exception for the first 10, a count of the rest,
``--quiet-exceptions``, the summary of pending exceptions at halt, ``--strict``
(exit status 70) and the usf warning; none of it ever on stdout.
"""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from voxasm import assemble_program as assemble
from voxvm.machine import run_program

from support.configs import config_for
from support.machines import backends, require_backend


def run(source: str, backend: str, **options) -> tuple[int, str, list[str]]:
    """Assemble ``source`` as d.vvs and run it: (status, stdout, stderr lines)."""
    require_backend(backend)
    out, err = io.BytesIO(), io.BytesIO()
    rc = run_program(assemble(source, "d.vvs"), config_for(backend, **options), io.BytesIO(), out, err)
    return rc, out.getvalue().decode(), err.getvalue().decode().splitlines()


DIVIDE_IN_A_FUNCTION = """\
section text
.start
    iload r1 5
    iload r2 0
    call @divide
    uload r2 1
    ncall 1 r0
    halt

func divide
    idiv r1 r1 r2
    ret
"""


@pytest.mark.parametrize("backend", backends())
def test_a_raise_names_the_exception_the_instruction_the_function_and_the_line(backend):
    rc, out, err = run(DIVIDE_IN_A_FUNCTION, backend)
    assert (rc, out) == (0, "5\n")           # idiv by zero leaves r1 (semantics.md §3.3)
    assert err == ["voxvm: exception: ZeroDivision at 0x2c (idiv) in divide, d.vvs:11",
                   "voxvm: exceptions pending at halt: ZeroDivision 1"]


@pytest.mark.parametrize("backend", backends())
def test_a_native_raises_at_its_ncall_after_its_reason(backend):
    source = "section text\n.start\n    uload r1 7\n    uload r2 3\n    ncall 1 r0\n    halt\n"
    rc, out, err = run(source, backend)
    assert rc == 0 and out == ""
    assert err[0].startswith("voxvm: ncall 0x1 (print): ")
    assert err[1:] == ["voxvm: exception: NativeFault at 0x14 (ncall), d.vvs:5",
                       "voxvm: exceptions pending at halt: NativeFault 1"]


RAISE_25_TIMES_THEN_PRINT = """\
section text
.start
    uload r10 25
    uload r11 0
label again
    fload r1 -1.0
    fsqrt r1 r1
    udec r10
    jnz @again
    uload r1 42
    uload r2 1
    ncall 1 r0
    {end}
"""


@pytest.mark.parametrize("backend", backends())
def test_the_first_ten_raises_get_a_line_and_the_rest_a_count(backend):
    rc, out, err = run(RAISE_25_TIMES_THEN_PRINT.format(end="halt"), backend)
    assert (rc, out) == (0, "42\n")          # nothing on stdout but the program's output
    line = "voxvm: exception: NegativeSqrt at 0x1e (fsqrt), d.vvs:7"
    assert err == [line] * 10 + [
        "voxvm: exception: 15 more raised (only the first 10 are shown; --quiet-exceptions hides them)",
        "voxvm: exceptions pending at halt: NegativeSqrt 25"]


@pytest.mark.parametrize("backend", backends())
def test_the_count_comes_before_a_trap_line(backend):
    rc, out, err = run(RAISE_25_TIMES_THEN_PRINT.format(end="pop r1"), backend)
    assert (rc, out) == (70, "42\n")
    assert err[10].startswith("voxvm: exception: 15 more raised")
    assert err[11].startswith("voxvm: trap: pop from an empty data stack") and len(err) == 12


@pytest.mark.parametrize("backend", backends())
def test_quiet_exceptions_keeps_only_the_summary(backend):
    rc, out, err = run(RAISE_25_TIMES_THEN_PRINT.format(end="halt"), backend, quiet_exceptions=True)
    assert (rc, out, err) == (0, "42\n", ["voxvm: exceptions pending at halt: NegativeSqrt 25"])


HANDLED_AND_UNHANDLED = """\
section text
.start
    uload r1 1
    uload r2 0
    udiv r3 r1 r2
    jexc @zero_division @handled
label handled
    free r2
    free r2
    fload r4 -4.0
    fsqrt r4 r4
    halt
"""


@pytest.mark.parametrize("backend", backends())
def test_strict_fails_a_run_that_halts_with_exceptions_pending(backend):
    rc, _, err = run(HANDLED_AND_UNHANDLED, backend, quiet_exceptions=True)
    summary = "voxvm: exceptions pending at halt: HeapFreeFault 2, NegativeSqrt 1"
    assert (rc, err) == (0, [summary])       # counts per name, in exception-number order
    rc, _, err = run(HANDLED_AND_UNHANDLED, backend, quiet_exceptions=True, strict=True)
    assert (rc, err) == (70, [summary + "; exit status 70 (--strict)"])


@pytest.mark.parametrize("backend", backends())
def test_strict_passes_a_run_whose_exceptions_were_all_handled(backend):
    source = HANDLED_AND_UNHANDLED.replace("    free r2\n    free r2\n    fload r4 -4.0\n    fsqrt r4 r4\n", "")
    rc, _, err = run(source, backend, strict=True)
    assert (rc, err) == (0, ["voxvm: exception: ZeroDivision at 0x14 (udiv), d.vvs:5"])


USF_OUT_OF_RANGE = """\
section text
.start
    push r1
    uload r3 {count}
    uload r4 5
label again
    usf r4 r1
    udec r3
    jnz @again
    halt
"""


@pytest.mark.parametrize("backend", backends())
def test_an_out_of_range_usf_warns(backend):
    rc, out, err = run(USF_OUT_OF_RANGE.format(count=1), backend)
    assert (rc, out) == (0, "")
    assert err == ["voxvm: warning: usf: stack frame 5 was not updated (stack depth 1)"]


@pytest.mark.parametrize("backend", backends())
def test_usf_warnings_are_limited_too_and_quiet_exceptions_keeps_them(backend):
    rc, out, err = run(USF_OUT_OF_RANGE.format(count=12), backend, quiet_exceptions=True)
    assert err == ["voxvm: warning: usf: stack frame 5 was not updated (stack depth 1)"] * 10 + [
        "voxvm: warning: usf: 2 more stack frames were not updated (only the first 10 are shown)"]


@pytest.mark.parametrize("backend", backends())
def test_raising_a_million_times_prints_a_bounded_number_of_lines(backend):
    count = 1_000_000 if backend == "cython" else 20_000
    source = RAISE_25_TIMES_THEN_PRINT.format(end="halt").replace("uload r10 25", f"uload r10 {count}")
    rc, out, err = run(source, backend)
    assert (rc, out, len(err)) == (0, "42\n", 12)
    assert err[10].startswith(f"voxvm: exception: {count - 10} more raised")


def test_the_flags_are_run_options_of_the_command_line(tmp_path):
    (tmp_path / "d.vvs").write_text(HANDLED_AND_UNHANDLED)
    done = subprocess.run([sys.executable, "-m", "voxvm", "run", "--strict", "--quiet-exceptions", "d.vvs"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (70, "")
    assert done.stderr == ("voxvm: exceptions pending at halt: HeapFreeFault 2, NegativeSqrt 1; "
                           "exit status 70 (--strict)\n")


def test_a_file_name_with_control_characters_is_escaped_in_trap_and_backtrace_lines(tmp_path):
    import subprocess
    import sys

    name = "x\x1b[31m.vvs"
    (tmp_path / name).write_text("func f\n    pop r1\n    ret\n.start\n    call @f\n    halt\n")
    result = subprocess.run([sys.executable, "-m", "voxvm", name], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 70 and "\x1b" not in result.stderr
    assert result.stderr.splitlines()[0].endswith("in f, x\\x1b[31m.vvs:2")
