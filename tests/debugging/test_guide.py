"""docs/debugging.md shows real output: its example program still behaves as shown."""

from __future__ import annotations


from support.debug_programs import run_source

from conftest import REPO

GUIDE = (REPO / "docs" / "debugging.md").read_text()
SOURCE = (REPO / "docs" / "examples" / "average.vvs").read_text()


def shown(line: str) -> None:
    assert line in GUIDE, f"docs/debugging.md no longer shows: {line}"


def test_the_trap_and_backtrace_are_as_shown(backend):
    status, _, err = run_source(SOURCE, "average.vvs", backend=backend)
    assert status == 70
    for line in err.splitlines():
        shown(line)


def test_the_traces_are_as_shown(backend):
    for options in (dict(trace_from="0x25"), dict(trace_from="total", trace_limit=8)):
        _, _, err = run_source(SOURCE, "average.vvs", backend=backend, **options)
        for line in err.splitlines()[:-3]:
            shown(line)


def test_the_fix_and_its_folded_profile_are_as_shown(backend, tmp_path):
    fixed = SOURCE.replace("    movr r1 r0\n", "    movr r1 r0\n    utof r1 r1\n")
    path = tmp_path / "fixed.folded"
    status, out, _ = run_source(fixed, "fixed.vvs", backend=backend, profile=str(path), profile_format="folded")
    assert (status, out) == (0, "6\n")
    assert "$ cat fixed.folded\n" + path.read_text() in GUIDE


def test_the_debugger_session_is_as_shown(tmp_path):
    import subprocess
    import sys

    (tmp_path / "average.vvs").write_text(SOURCE)
    script = GUIDE.split("$ cat session.txt\n", 1)[1].split("$ voxvm debug", 1)[0]
    result = subprocess.run([sys.executable, "-m", "voxvm", "debug", "average.vvs"], input=script,
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 70
    for line in result.stdout.splitlines() + result.stderr.splitlines():
        shown(line)
