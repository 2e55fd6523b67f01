"""The runnable examples of the pages written for newcomers: each `; file: NAME` program, run as
the page says, prints what the page shows.

Covers docs/getting-started.md, docs/vvs-language.md and the ``put`` example of
docs/natives/basic.md: a ```vvs block starting ``; file: NAME`` is written to NAME, and the
```console block after it (``$ voxvm …`` then the expected output) is run in that folder.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO

PAGES = ["docs/getting-started.md", "docs/vvs-language.md", "docs/natives/basic.md"]
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def examples() -> list:
    cases = []
    for page in PAGES:
        blocks = BLOCK.findall((REPO / page).read_text())
        for (kind, body), following in zip(blocks, blocks[1:] + [("", "")]):
            match = re.match(r"; file: (\S+)\n", body)
            if kind != "vvs" or match is None or following[0] != "console":
                continue
            command, _, expected = following[1].partition("\n")
            if not command.startswith("$ voxvm ") or "|" in command or command.startswith("$ voxvm test"):
                continue
            if page.endswith("basic.md") and match.group(1) != "put.vvs":
                continue            # the other natives pages' examples need time, files or a network
            cases.append(pytest.param(body, match.group(1), command[2:], expected, id=f"{page}:{match.group(1)}"))
    return cases


@pytest.mark.parametrize("source, name, command, expected", examples())
def test_example(tmp_path, source, name, command, expected):
    (tmp_path / name).write_text(source)
    argv = shlex.split(command)
    result = subprocess.run([sys.executable, "-m", "voxvm", *argv[1:]], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout + result.stderr == expected


def test_the_pages_have_examples():
    assert len(examples()) >= 4
