"""avmir's examples, ported (tools/examples/avmir/README.md): each runs and prints its expected output."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.runs import cli

from conftest import REPO

EXAMPLES = REPO / "tools" / "examples" / "avmir"


def expected(name: str) -> bytes:
    return (EXAMPLES / f"{name}.stdout").read_bytes()


def test_hello_world_through_ffi(tmp_path, backend) -> None:
    run = cli(["run", f"--native-configs={EXAMPLES / 'hello_world.toml'}",
               str(EXAMPLES / "hello_world.vvs"), f"--backend={backend}"], tmp_path)
    assert (run.returncode, run.stdout) == (0, expected("hello_world")), run.stderr


def test_concurrent_read_write_in_one_process(tmp_path, backend) -> None:
    run = cli(["run", str(EXAMPLES / "loop_read.vvs"), str(EXAMPLES / "loop_write.vvs"),
               "--shm=1024", f"--backend={backend}"], tmp_path)
    assert (run.returncode, run.stdout) == (0, expected("loop_read")), run.stderr


def test_concurrent_read_write_across_two_processes(tmp_path, backend) -> None:
    flags = [f"--shm=1024:{tmp_path / 'a_common_file.dump'}", f"--backend={backend}"]
    command = [sys.executable, "-m", "voxvm", "run"]
    reader = subprocess.Popen([*command, str(EXAMPLES / "loop_read.vvs"), *flags], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        writer = cli(["run", str(EXAMPLES / "loop_write.vvs"), *flags], tmp_path)
        out, err = reader.communicate(timeout=300)
    finally:
        reader.kill()
    assert (writer.returncode, writer.stdout) == (0, b""), writer.stderr
    assert (reader.returncode, out) == (0, expected("loop_read")), err
    # The file keeps the last value: a reader started now sees 50000 at once (avmir's README).
    again = cli(["run", str(EXAMPLES / "loop_read.vvs"), *flags], tmp_path)
    assert again.stdout == expected("loop_read")


def test_fork_as_spawn_and_join(tmp_path, backend) -> None:
    run = cli(["run", str(EXAMPLES / "fork.vvs"), f"--backend={backend}"], tmp_path)
    assert (run.returncode, run.stdout) == (0, expected("fork")), run.stderr


@pytest.mark.parametrize("name", ["hello_world", "loop_read", "loop_write", "fork"])
def test_every_example_is_listed_in_the_readme(name) -> None:
    assert f"{name}.vvs" in (EXAMPLES / "README.md").read_text()
