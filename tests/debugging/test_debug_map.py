"""Debug maps (voxvm/debugmap.py): voxasm -g writes them, voxvm, dis and dump read them, and
a stale, corrupt or foreign map is one warning, never an error. Through the command lines."""

from __future__ import annotations

import os
import re
import json
import random
import subprocess
import sys

import pytest

from support.debug_programs import AVERAGE
from voxvm.debugmap import MapError, parse_map, sha256

TRAP = "voxvm: trap: type mismatch: uint64 / float64 at 0x32 (fdiv) in average, avg.vvs:14"


def tool(tmp_path, name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", name, *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, cwd=tmp_path)


@pytest.fixture
def built(tmp_path):
    (tmp_path / "avg.vvs").write_text(AVERAGE)
    result = tool(tmp_path, "voxasm", "-g", "avg.vvs")
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_the_map_describes_the_file_and_every_instruction(built):
    document = json.loads((built / "avg.vve.map").read_text())
    assert document["format"] == "voxvm-debug-map" and document["version"] == 1
    assert document["file"] == {"sha256": sha256((built / "avg.vve").read_bytes()),
                                "size": (built / "avg.vve").stat().st_size}
    assert document["source"] == {"path": "avg.vvs", "sha256": sha256(AVERAGE.encode())}
    assert [f["name"] for f in document["functions"]] == ["main", "average", "total"]
    assert document["labels"] == [{"name": "loop", "address": 0x55}]
    assert [d["name"] for d in document["data"]] == ["nums", "count"]
    assert document["lines"][0] == [0, 7, 5]                      # call @average: line 7, column 5
    assert [row[1] for row in document["lines"]][-2:] == [2, 3]   # the data items' lines


def test_the_vm_uses_the_map_next_to_the_program(built):
    result = tool(built, "voxvm", "--vve=avg.vve")
    assert result.returncode == 70
    assert result.stderr.splitlines()[0] == TRAP


def test_a_stale_map_is_ignored_with_one_warning(built):
    (built / "avg.vvs").write_text(AVERAGE.replace("fload r2 4.0", "fload r2 5.0"))
    assert tool(built, "voxasm", "avg.vvs").returncode == 0     # the .vve changed, its map did not
    result = tool(built, "voxvm", "run", "avg.vve")
    lines = result.stderr.splitlines()
    assert lines[0] == ("voxvm: warning: avg.vve.map does not belong to avg.vve (it was written for "
                        "other bytes: reassemble with -g); ignoring it")
    assert lines[1] == "voxvm: trap: type mismatch: uint64 / float64 at 0x32 (fdiv) in func#1"
    assert sum("warning" in line for line in lines) == 1


@pytest.mark.parametrize("content, reason", [
    (b"\xff\xfegarbage", "not UTF-8 text"),
    (b"[1, 2]", "the document is not an object"),
    (b'{"format": "something-else"}', "'format' is not 'voxvm-debug-map'"),
    (b"{" * 100000, "not JSON"),
])
def test_a_corrupt_or_foreign_map_is_a_warning(built, content, reason):
    (built / "avg.vve.map").write_bytes(content)
    result = tool(built, "voxvm", "--vve=avg.vve")
    lines = result.stderr.splitlines()
    assert lines[0].startswith("voxvm: warning: avg.vve.map: not a usable debug map: ") and reason in lines[0]
    assert lines[0].endswith("; ignoring it")
    assert lines[1].startswith("voxvm: trap: ") and result.returncode == 70


def test_a_map_given_by_name(built):
    (built / "avg.vve.map").rename(built / "elsewhere.map")
    result = tool(built, "voxvm", "--vve=avg.vve", "--debug-map=elsewhere.map")
    assert result.stderr.splitlines()[0] == TRAP
    result = tool(built, "voxvm", "--vve=avg.vve", "--debug-map=missing.map")
    assert result.stderr.splitlines()[0] == "voxvm: warning: debug map missing.map: no such file; ignoring it"


def test_dis_uses_the_original_names_and_still_round_trips(built):
    result = tool(built, "voxvm", "dis", "avg.vve")
    assert result.returncode == 0
    for line in ("func average", "label loop", "    dsrload r13 r12 nums", "    jl @loop", "    count uint 4"):
        assert line in result.stdout.splitlines()
    (built / "again.vvs").write_text(result.stdout)
    assert tool(built, "voxasm", "again.vvs").returncode == 0
    assert (built / "again.vve").read_bytes() == (built / "avg.vve").read_bytes()


def test_the_listing_shows_source_lines(built):
    lines = tool(built, "voxvm", "dis", "--listing", "avg.vve").stdout.splitlines()
    fdiv = next(line for line in lines if "fdiv" in line)
    assert fdiv.split()[-5:] == ["[14]", "fdiv", "r3", "r1", "r2"]
    assert any(line.split()[2:4] == ["[3]", "count"] for line in lines)


def test_dump_names_functions_and_lines_with_a_map(built):
    assert tool(built, "voxvm", "--vve=avg.vve", "--coredump_exit").returncode == 70
    plain = tool(built, "voxvm", "dump", "voxvm_err.dump").stdout.splitlines()
    named = tool(built, "voxvm", "dump", "voxvm_err.dump", "--debug-map=avg.vve.map").stdout.splitlines()
    assert plain[1] == "ip: 0x32 (fdiv)"
    assert named[1] == "ip: 0x32 (fdiv) in average, avg.vvs:14"
    at = named.index("backtrace (innermost first):")
    assert named[at + 1:at + 3] == ["  #0   0x0032 in average, avg.vvs:14", "  #1   0x0000 in main, avg.vvs:7"]


def test_voxasm_map_options(built):
    result = tool(built, "voxasm", "avg.vvs", "-o", "x.vve", "--debug-map=maps.json")
    assert result.returncode == 0 and (built / "maps.json").exists()
    assert parse_map((built / "maps.json").read_bytes()).describes((built / "x.vve").read_bytes())
    result = tool(built, "voxasm", "--check", "-g", "avg.vvs")
    assert result.returncode == 2 and "--check writes nothing" in result.stderr


def test_mutated_maps_parse_or_fail_cleanly(built):
    good = (built / "avg.vve.map").read_bytes()
    rng = random.Random(12)
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            parse_map(bytes(data), "m")
        except MapError:
            pass


def test_exception_lines_use_the_map(tmp_path):
    (tmp_path / "exc.vvs").write_text("section text\nfunc main\n.start\n    call @divide\n    halt\n"
                                      "func divide\n    uload r1 1\n    uload r2 0\n    udiv r3 r1 r2\n    ret\n")
    assert tool(tmp_path, "voxasm", "-g", "exc.vvs").returncode == 0
    result = tool(tmp_path, "voxvm", "--vve=exc.vve")
    assert result.stderr.splitlines()[0] == "voxvm: exception: ZeroDivision at 0x1e (udiv) in divide, exc.vvs:9"
    (tmp_path / "exc.vve.map").unlink()
    result = tool(tmp_path, "voxvm", "--vve=exc.vve")
    assert result.stderr.splitlines()[0] == "voxvm: exception: ZeroDivision at 0x1e (udiv) in func#1"


def test_the_loader_looks_for_the_suffix_debugmap_writes():
    from voxvm.cli.loading import MAP_SUFFIX
    from voxvm.debugmap import MAP_SUFFIX as WRITTEN, default_map_path

    assert MAP_SUFFIX == WRITTEN and default_map_path("p.vve") == "p.vve" + MAP_SUFFIX


def test_a_changed_namesake_in_the_working_directory_does_not_hide_the_source_beside_the_program(tmp_path):
    import subprocess
    import sys

    (tmp_path / "prog").mkdir()
    (tmp_path / "cwd").mkdir()
    (tmp_path / "prog" / "p.vvs").write_text("section text\n.start\n    uload r1 1 ; one\n    halt\n")
    subprocess.run([sys.executable, "-m", "voxasm", "-g", "p.vvs"], cwd=tmp_path / "prog", check=True, timeout=60)
    (tmp_path / "cwd" / "p.vvs").write_text("unrelated\n")
    shown = subprocess.run([sys.executable, "-m", "voxvm", "dis", "--listing", "../prog/p.vve"],
                           cwd=tmp_path / "cwd", capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stderr == ""
    assert "uload r1 1 ; one" in shown.stdout


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["functions"][0].update(address=999999), "functions[0].address 0xf423f is past the code"),
    (lambda d: d["functions"][1].update(name="total"), "'total' names two functions"),
    (lambda d: d["labels"].append(dict(d["labels"][0])), "labels[1]: 'loop' names two labels"),
    (lambda d: d["data"][1].update(name="nums"), "data[1]: 'nums' names two data items"),
    (lambda d: d.update(entry=99999), "'entry' 0x1869f is past the code"),
    (lambda d: d["labels"][0].update(name="nums"), "'nums' names both a label and a data item"),
    (lambda d: d["labels"][0].update(address=1 << 40), "label 'loop' at 0x10000000000 is past the code"),
    (lambda d: d["data"][0].update(offset=1 << 40), "data item 'nums' at offset 1099511627776 is past the file"),
    (lambda d: d["lines"][0].__setitem__(1, 10 ** 12), "lines[0]: line 1000000000000 is more than"),
])
def test_a_map_whose_hashes_match_is_still_checked(built, edit, message):
    # the assembler never writes these; a hand-edited map must not make names resolve to nonsense
    document = json.loads((built / "avg.vve.map").read_text())
    edit(document)
    with pytest.raises(MapError, match=re.escape(message)):
        parse_map(json.dumps(document).encode(), "m")


def test_a_source_name_that_is_not_utf8_still_gets_a_map(tmp_path):
    name = os.fsdecode(b"good\xff.vvs")                   # a surrogate escape in Python
    try:
        (tmp_path / name).write_text(AVERAGE)
    except (OSError, UnicodeError):
        pytest.skip("the file system refuses the name")
    result = tool(tmp_path, "voxasm", "-g", name)
    assert (result.returncode, result.stderr) == (0, "")
    found = parse_map((tmp_path / (name[:-1] + "e.map")).read_bytes())
    assert found.symbols.source_path == name
