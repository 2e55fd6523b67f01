"""The pytest plugin: programs whose comments state their expected output become pytest tests.

Owns collecting ``.vvs``/``.vve`` files (and the source files of languages
that compile to ``.vvs``, given by ``voxvm_compilers``), reading their
expectation headers, running them through the embedding API (voxvm/embed.py)
and reporting a mismatch as a readable diff. Registered through the
``pytest11`` entry point, so installing voxvm makes it available; it collects
nothing until it is switched on, with the ini option ``voxvm_tests = true``
or the flag ``--voxvm-tests`` (``voxvm test DIR`` passes the flag), so it
never adds tests to a suite that did not ask for them. docs/testing.md is the
user's guide.

Headers are comment lines (``;``, ``#``, ``//`` or ``--``, alone on their line) anywhere in
the file::

    ; expect: x = 5              one line of stdout (repeat for more lines)
    ; expect-stderr: oops        one line of stderr (voxvm: lines included)
    ; expect-rc: 70              the exit status (default 0)
    ; args: --seed=3 --allow-run run flags, as `voxvm run` takes them
    ; stdin: 12                  one line of stdin (repeat for more lines)

stdout and stderr are compared only when the file has ``expect`` or
``expect-stderr`` lines; the exit status always (0 unless stated). A file
without any header is not a test. A malformed header (unknown key, bad
number, bad flag) is a collection error naming the file and the line.
A ``.vve`` has no comments: its headers go in ``NAME.expect`` beside it.
Programs are named by their file name alone in messages (a trap line reads
``prog.vvs:6``), as when ``voxvm run prog.vvs`` runs in the file's folder.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

KEYS = ("expect", "expect-stderr", "expect-rc", "args", "stdin")
# A header: a comment line whose first word is a key-like word followed by ':'.
# The comment markers: .vvs's own (; #), and C's // and Lua's/SQL's -- for the languages
# that compile to .vvs (voxvm_compilers).
COMMENT_MARKERS = (";", "#", "//", "--")
# (any case: `; Expect: 2` is a header with a wrong key, reported, never a skipped test)
_HEADER = re.compile(r"^\s*(?:;|#|//|--)\s*(expect[\w-]*|args|stdin)\s*:(.*?)\r?$", re.IGNORECASE)
DEFAULT_TIMEOUT = 60.0


class HeaderError(Exception):
    """A malformed expectation header: ``path:line: message``."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")


@dataclass
class Expectations:
    """What one test file states about its run."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    check_stdout: bool = False
    check_stderr: bool = False
    rc: int = 0
    args: list[str] = field(default_factory=list)
    stdin: list[str] | None = None
    headers: int = 0

    @property
    def stdin_bytes(self) -> bytes:
        return "".join(line + "\n" for line in self.stdin).encode() if self.stdin is not None else b""


def parse_headers(text: str, path: Path | str, sidecar: bool = False) -> Expectations:
    """The expectations stated in ``text``; HeaderError on a malformed header.

    A ``sidecar`` (``NAME.expect`` beside ``NAME.vve``) holds nothing but headers,
    so there any other line that is not blank or a comment, and a sidecar with no
    header at all, is an error too: it would otherwise skip the test silently.
    """
    from .config import config_from_args
    from .errors import UsageError

    found = Expectations()
    rc_line = args_line = None
    text = text.removeprefix("\ufeff")       # a byte-order mark, which the assembler skips too
    for number, line in enumerate(text.splitlines(), 1):
        match = _HEADER.match(line)
        if match is None:
            stripped = line.strip()
            if sidecar and stripped and not stripped.startswith(COMMENT_MARKERS):
                raise HeaderError(path, number, f"'{stripped}' is not a header: each line of a .expect "
                                                f"file is a comment, '; expect: TEXT' and the like")
            continue
        key, value = match.group(1), match.group(2)
        value = value[1:] if value.startswith(" ") else value      # one space separates key and text
        if key not in KEYS:
            close = [key.lower()] if key.lower() in KEYS else difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise HeaderError(path, number, f"unknown header '{key}:'{hint}; headers are "
                                            f"{', '.join(k + ':' for k in KEYS)}")
        found.headers += 1
        if key == "expect":
            found.stdout.append(value)
            found.check_stdout = True
        elif key == "expect-stderr":
            found.stderr.append(value)
            found.check_stderr = True
        elif key == "stdin":
            found.stdin = (found.stdin or []) + [value]
        elif key == "expect-rc":
            if rc_line is not None:
                raise HeaderError(path, number, f"expect-rc given twice (first on line {rc_line})")
            rc_line = number
            if not (value.strip().isascii() and value.strip().isdigit()) or int(value) > 255:
                raise HeaderError(path, number, f"expect-rc: '{value.strip()}' is not an exit status (0-255)")
            found.rc = int(value)
        else:   # args
            if args_line is not None:
                raise HeaderError(path, number, f"args given twice (first on line {args_line})")
            args_line = number
            try:
                found.args = shlex.split(value)
                config_from_args(found.args)
            except ValueError as error:
                raise HeaderError(path, number, f"args: {error}") from None
            except UsageError as error:
                raise HeaderError(path, number, f"args: {error}") from None
    if sidecar and found.headers == 0:
        raise HeaderError(path, 1, "no header: a .expect file states at least one, "
                                   "'; expect-rc: 0' for a run that must only succeed")
    return found


# ====================================================================== pytest hooks


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("voxvm", "voxvm expectation tests (docs/testing.md)")
    group.addoption("--voxvm-tests", action="store_true", default=None,
                    help="collect .vvs/.vve files with '; expect:' headers as tests")
    parser.addini("voxvm_tests", type="bool", default=False,
                  help="collect .vvs/.vve files with '; expect:' headers as tests")
    parser.addini("voxvm_compilers", type="linelist", default=[],
                  help="'SUFFIX: COMMAND' per line: compile SUFFIX files to .vvs with COMMAND "
                       "({src}, {out}, {python} are replaced) and test them too")
    parser.addini("voxvm_timeout", default=str(DEFAULT_TIMEOUT),
                  help=f"seconds one test program may run (default {DEFAULT_TIMEOUT:g})")


def _enabled(config: pytest.Config) -> bool:
    flag = config.getoption("voxvm_tests", default=None)
    return bool(flag) or bool(config.getini("voxvm_tests"))


def pytest_configure(config: pytest.Config) -> None:
    """A bad ini setting is a usage error before anything runs, not a failure of every test."""
    if _enabled(config):
        _timeout(config)
        _compilers(config)


def _timeout(config: pytest.Config) -> float:
    """``voxvm_timeout`` in seconds: a number above 0."""
    text = str(config.getini("voxvm_timeout")).strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= threading.TIMEOUT_MAX:
        # pytest keeps an ini value's trailing comment as part of the value
        hint = "; a comment goes on its own line" if "#" in text or ";" in text else ""
        raise pytest.UsageError(f"voxvm_timeout: '{text}' is not a number of seconds above 0 "
                                f"(and at most {threading.TIMEOUT_MAX:g}){hint}")
    return seconds


def _shown(path: Path, config: pytest.Config) -> str:
    """A file as pytest names it: relative to where pytest was started, when it is below it."""
    try:
        return str(path.relative_to(config.invocation_params.dir))
    except ValueError:
        return str(path)


def _compilers(config: pytest.Config) -> dict[str, str]:
    compilers = {}
    for entry in config.getini("voxvm_compilers"):
        suffix, sep, command = entry.partition(":")
        if not sep or not suffix.strip().startswith(".") or "{src}" not in command or "{out}" not in command:
            raise pytest.UsageError(f"voxvm_compilers: '{entry}' is not 'SUFFIX: COMMAND' with "
                                    f"{{src}} and {{out}} in COMMAND")
        try:
            shlex.split(command)
        except ValueError as error:           # an unbalanced quote
            raise pytest.UsageError(f"voxvm_compilers: '{entry}': {error}") from None
        compilers[suffix.strip()] = command.strip()
    return compilers


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    config = parent.config
    if not _enabled(config):
        return None
    suffix = file_path.suffix
    if suffix in (".vvs", ".vve") or suffix in _compilers(config):
        return VoxvmFile.from_parent(parent, path=file_path)
    return None


class VoxvmFile(pytest.File):
    """One program file: one test if it states expectations, none otherwise."""

    def collect(self):
        path = self.path
        header_path = path
        if path.suffix == ".vve":
            header_path = path.with_suffix(".expect")
            if not header_path.exists():
                return
        try:
            text = header_path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            raise HeaderError(_shown(header_path, self.config), 1,
                              f"cannot read: {error.strerror or error}") from None
        expectations = parse_headers(text, _shown(header_path, self.config), sidecar=header_path is not path)
        if expectations.headers == 0:
            return
        yield VoxvmItem.from_parent(self, name=path.name, expectations=expectations)

    def repr_failure(self, excinfo):       # (a Collector's takes no style, unlike an Item's)
        if excinfo.errisinstance(HeaderError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class Mismatch(Exception):
    """The run did not do what the headers say; the message is the report, ``summary`` its
    one-line gist (the first line of the report, which pytest's short summary shows)."""

    def __init__(self, report: str, summary: str | None = None) -> None:
        super().__init__(report)
        self.summary = summary if summary is not None else report.split("\n", 1)[0]


class VoxvmItem(pytest.Item):
    def __init__(self, *, expectations: Expectations, **kwargs) -> None:
        super().__init__(**kwargs)
        self.expectations = expectations
        self.load_warnings = b""         # what loading a .vve said (a debug map it ignored)

    def runtest(self) -> None:
        import voxvm

        want = self.expectations
        program = self._program()
        if not isinstance(program, voxvm.Program):   # did not assemble / compile: (rc, stderr)
            rc, stdout, stderr = program[0], b"", program[1]
        else:
            timeout = _timeout(self.config)
            machine = voxvm.Machine.from_flags(program, want.args)
            try:
                # in the file's folder, as `voxvm run NAME` there: relative paths in the args
                # and the program, dumps and trace files land beside the test
                with contextlib.chdir(self.path.parent):
                    result = machine.run(want.stdin_bytes, timeout=timeout, max_output=MAX_OUTPUT)
            except voxvm.RunLimitExceeded as error:
                what = (f"did not halt within {timeout:g} s (voxvm_timeout)" if error.reason == "timeout"
                        else f"wrote more than {MAX_OUTPUT} bytes to stdout or stderr (a print loop?)")
                raise Mismatch(f"{what}; the end of its stdout:\n{_tail(error.result.stdout)}", what) from None
            rc, stdout, stderr = result.exit_status, result.stdout, self.load_warnings + result.stderr
        problems, gist = [], []
        for what, checked, expected, actual in (("stdout", want.check_stdout, want.stdout, stdout),
                                                ("stderr", want.check_stderr, want.stderr, stderr)):
            diff = _diff(what, "".join(s + "\n" for s in expected), actual) if checked else []
            if diff:
                problems += diff
                gist.append(f"{what} differs")
        if rc != want.rc:
            problems.append(f"exit status {rc}, expected {want.rc}")
            gist.insert(0, problems[-1])
            if not want.check_stderr and stderr:
                problems.append("stderr:\n" + stderr.decode("utf-8", "replace").rstrip("\n"))
        if problems:
            raise Mismatch("\n".join(problems), "; ".join(gist))

    def _program(self):
        """The Program to run, or (exit status, stderr) when it cannot be built (as voxvm run reports it)."""
        import voxvm

        path = self.path
        try:
            if path.suffix == ".vve":
                return self._load_vve(path)
            if path.suffix == ".vvs":
                # Named as in the file's own folder, so that messages read as `voxvm run NAME` there.
                return voxvm.load(path.read_bytes(), kind="vvs", filename=path.name)
            return self._compile(path)
        except voxvm.VoxError as error:
            return int(error.exit_status), (error.render() + "\n").encode()

    def _load_vve(self, path: Path):
        """The .vve with its debug map (NAME.vve.map beside it, or ``; args: --debug-map=``,
        relative to the file's folder), as ``voxvm run NAME.vve`` loads it there; the
        loader's warnings come first on the run's stderr, as on the command line's."""
        from .cli.loading import load_path
        from .config import config_from_args

        debug_map = config_from_args(self.expectations.args).debug_map
        if debug_map is not None:
            debug_map = str(path.parent / debug_map)
        warnings: list[str] = []
        program = load_path(str(path), "vve", debug_map, warnings.append)
        self.load_warnings = "".join(f"voxvm: warning: {w}\n" for w in warnings).encode()
        return program._replace(path=path.name)

    def _compile(self, path: Path):
        import voxvm

        command = _compilers(self.config)[path.suffix]
        with tempfile.TemporaryDirectory(prefix="voxvm-test-") as tmp:
            out = os.path.join(tmp, path.stem + ".vvs")
            argv = [part.replace("{src}", str(path)).replace("{out}", out).replace("{python}", sys.executable)
                    for part in shlex.split(command)]
            timeout = _timeout(self.config)
            from .host.proc import kill_process_group

            try:
                # its own process group: a timeout stops what the compiler started, too
                process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           stdin=subprocess.DEVNULL, cwd=self.config.rootpath,
                                           start_new_session=True)
            except OSError as error:
                raise Mismatch(f"the compiler could not be started ({error.strerror or error}): "
                               f"{shlex.join(argv)}") from None
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_process_group(process)
                raise Mismatch(f"the compiler did not finish within {timeout:g} s (voxvm_timeout): "
                               f"{shlex.join(argv)}") from None
            except BaseException:
                kill_process_group(process)
                raise
            said = (stderr + stdout).decode("utf-8", "replace")   # some compilers report on stdout
            if process.returncode != 0:
                raise Mismatch(f"the compiler failed (exit status {process.returncode}): {shlex.join(argv)}\n"
                               f"{_tail(said.encode())}")
            try:
                compiled = Path(out).read_bytes()
            except OSError:
                raise Mismatch(f"the compiler exited 0 but wrote no {{out}} ({out}): {shlex.join(argv)}") from None
            return voxvm.load(compiled, kind="vvs", filename=Path(out).name)

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(Mismatch):
            return (f"{excinfo.value.summary}\n{_shown(self.path, self.config)}:\n"   # line 1: pytest -r's
                    f"{excinfo.value}")
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"voxvm: {self.path.name}"


# What a test run may write (each of stdout and stderr) before it is stopped, and how much of
# it a report shows: an endless print must not fill memory, nor the terminal.
MAX_OUTPUT = 16 << 20
SHOWN_LINES = 40
SHOWN_LINE_CHARS = 200


def _tail(data: bytes) -> str:
    """The last SHOWN_LINES lines of ``data``, each cut to SHOWN_LINE_CHARS characters."""
    lines = data[-SHOWN_LINES * SHOWN_LINE_CHARS * 4:].decode("utf-8", "replace").splitlines()
    shown = [_cut(line) for line in lines[-SHOWN_LINES:]]
    return "\n".join(shown) if shown else "(nothing)"


def _cut(line: str) -> str:
    return line if len(line) <= SHOWN_LINE_CHARS else line[:SHOWN_LINE_CHARS] + f"... ({len(line)} characters)"


def _diff(what: str, expected: str, actual_bytes: bytes) -> list[str]:
    actual = actual_bytes.decode("utf-8", "replace")
    if actual == expected:
        return []
    lines = difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                 f"expected {what}", f"actual {what}", lineterm="")
    shown = list(itertools.islice(lines, 3 * SHOWN_LINES + 1))
    text = "".join(_cut(line.rstrip("\n")) + "\n" for line in shown[:3 * SHOWN_LINES])
    if len(shown) > 3 * SHOWN_LINES:
        text += "... (the rest of the diff is not shown)\n"
    if not expected.endswith("\n") or not actual.endswith("\n"):
        text += f"(expected {expected[-20:]!r} at the end, got {actual[-20:]!r})\n"
    return [f"{what} differs:\n{text.rstrip()}"]
