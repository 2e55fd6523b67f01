"""The runnable examples of the pages written for newcomers: each `; file: NAME` program, run as
the page says, prints what the page shows.

Covers docs/getting-started.md, docs/vvs-language.md and the natives pages (docs/natives/):
a ```vvs block starting ``; file: NAME`` is written to NAME, and each ``$ voxvm …`` command
of the ```console block after it is run in that folder, stdout and stderr together as a
terminal shows them, against the lines that follow it. Left out: commands with a pipe, the
test runner (its timing line), and programs whose output depends on time or a network.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO

PAGES = ["docs/getting-started.md", "docs/vvs-language.md", *sorted(
    str(page.relative_to(REPO)) for page in (REPO / "docs" / "natives").glob("*.md"))]
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
COMMAND = re.compile(r"^\$ (.*)$", re.M)
NOT_RUN = {"clock.vvs": "its output is a time", "tcp.vvs": "a network", "udp.vvs": "a network"}


def examples() -> list:
    cases = []
    for page in PAGES:
        blocks = BLOCK.findall((REPO / page).read_text())
        for (kind, body), following in zip(blocks, blocks[1:] + [("", "")]):
            match = re.match(r"; file: (\S+)\n", body)
            if kind != "vvs" or match is None or following[0] != "console" or match.group(1) in NOT_RUN:
                continue
            parts = COMMAND.split(following[1])          # [before, command, output, command, output, ...]
            for command, expected in zip(parts[1::2], parts[2::2]):
                if not command.startswith("voxvm ") or "|" in command or command.startswith("voxvm test"):
                    continue
                cases.append(pytest.param(body, match.group(1), command, expected.lstrip("\n"),
                                          id=f"{page}:{match.group(1)}:{command}"))
    return cases


@pytest.mark.parametrize("source, name, command, expected", examples())
def test_example(tmp_path, source, name, command, expected):
    (tmp_path / name).write_text(source)
    argv = shlex.split(command)
    stdin = open(tmp_path / argv[argv.index("<") + 1]) if "<" in argv else subprocess.DEVNULL
    argv = argv[:argv.index("<")] if "<" in argv else argv
    result = subprocess.run([sys.executable, "-m", "voxvm", *argv[1:]], cwd=tmp_path, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert result.stdout == expected


def test_the_pages_have_examples():
    assert len(examples()) >= 12
