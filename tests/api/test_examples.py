"""The worked example of docs/compiler-guide.md: tools/examples/calc, its test suite run by the plugin."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

CALC = REPO / "tools" / "examples" / "calc"


def test_the_calc_suite_passes_under_the_plugin(tmp_path):
    programs = sorted(p.name for p in (CALC / "tests").glob("*.calc"))
    assert len(programs) >= 4
    result = subprocess.run([sys.executable, "-m", "pytest", str(CALC), "-q", "-p", "no:cacheprovider"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(programs)} passed" in result.stdout


def test_the_compiler_reports_errors_with_file_and_line(tmp_path):
    (tmp_path / "bad.calc").write_text("def f(x) = x;\nprint f(1, 2);\n")
    result = subprocess.run([sys.executable, str(CALC / "calc.py"), "bad.calc"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == "bad.calc:2: error: f takes 1 arguments, not 2\n"


def test_a_wrong_expectation_fails_the_suite(tmp_path):
    (tmp_path / "pytest.ini").write_text((CALC / "pytest.ini").read_text().replace(
        "{python} calc.py", f"{{python}} {CALC / 'calc.py'}"))
    (tmp_path / "one.calc").write_text("# expect: 3\nprint 1 + 1;\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "-3\n+2" in result.stdout


def test_run_through_the_api_names_the_function_and_line_of_a_trap(tmp_path):
    # calc.py --run passes a Program (voxasm.assemble_program), not bare .vve bytes
    (tmp_path / "down.calc").write_text("def down(n) = down(n + 1);\nprint down(0);\n")
    result = subprocess.run([sys.executable, str(CALC / "calc.py"), "down.calc", "--run"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 70
    assert result.stderr.splitlines()[0].endswith(") at 0x8a (call) in f_down, down.calc.vvs:36")
