"""--profile (voxvm/profiler.py over both cores' counters): exact counts on both backends."""

from __future__ import annotations

import json

import pytest

from support.debug_programs import FIXED, RECURSE, run_source
from voxvm.config import VMConfig
from voxvm.errors import UsageError

# FIXED: main runs call + halt; average 10 instructions; total 3 + 4 rounds of 7 + ret.
FUNCTIONS = {"main": 2, "average": 10, "total": 32}


def profile_json(tmp_path, backend, source=FIXED, **options) -> tuple[dict, str]:
    path = tmp_path / "p.json"
    status, out, err = run_source(source, backend=backend, profile=str(path), **options)
    return json.loads(path.read_text()), err


def test_counts_per_function_opcode_line_and_calls(backend, tmp_path):
    document, err = profile_json(tmp_path, backend)
    assert err == ""
    assert document["format"] == "voxvm-profile" and document["backend"] == backend
    assert document["instructions"] == sum(FUNCTIONS.values())
    assert {f["name"]: f["instructions"] for f in document["functions"]} == FUNCTIONS
    assert {f["name"]: f["calls"] for f in document["functions"]} == {"main": 0, "average": 1, "total": 1}
    opcodes = {o["mnemonic"]: o["instructions"] for o in document["opcodes"]}
    assert opcodes["dsrload"] == opcodes["jl"] == 4 and opcodes["uload"] == 4 + 3 + 1
    lines = {(line["file"], line["line"]): line["instructions"] for line in document["lines"]}
    assert lines[("avg.vvs", 25)] == 4 and lines[("avg.vvs", 7)] == 1
    assert [c["stack"] for c in document["contexts"]] == [["main"], ["main", "average"],
                                                          ["main", "average", "total"]]
    assert all(f["ns"] >= 0 for f in document["functions"]) and document["ns"] > 0


def test_folded_stacks_weigh_each_context_by_its_instructions(backend, tmp_path):
    path = tmp_path / "p.folded"
    status, out, err = run_source(FIXED, backend=backend, profile=str(path), profile_format="folded")
    assert (status, out, err) == (0, "6\n", "")
    assert path.read_text() == "main 2\nmain;average 10\nmain;average;total 32\n"


def test_recursion_gives_one_context_per_depth(backend, tmp_path):
    path = tmp_path / "p.folded"
    status, _, _ = run_source(RECURSE, backend=backend, profile=str(path), profile_format="folded",
                              max_recursion=3)
    assert status == 70
    # the fourth call traps: it did not complete, so the third down's context counts nothing
    assert path.read_text() == "main 1\nmain;down 1\nmain;down;down 1\n"


def test_the_table_goes_to_stderr(backend):
    status, out, err = run_source(FIXED, backend=backend, profile="-")
    lines = err.splitlines()
    assert (status, out) == (0, "6\n")
    assert all(line.startswith("voxvm: ") for line in lines)
    assert lines[0].startswith(f"voxvm: profile: 44 instructions in ")
    rows = {line.split()[1]: line.split()[2:] for line in lines[2:5]}
    assert rows["total"][0] == "32" and rows["total"][3] == "1"
    assert rows["main"][0] == "2" and rows["main"][3] == "-"
    assert any(line.split()[1:3] == ["avg.vvs:25", "4"] for line in lines)


def test_an_unwritable_profile_is_a_warning_before_the_run(backend, tmp_path):
    target = tmp_path / "no" / "p.json"
    status, out, err = run_source(FIXED, backend=backend, profile=str(target))
    assert (status, out) == (0, "6\n")
    assert err == (f"voxvm: warning: cannot write the profile to {target}: No such file or directory; "
                   "the run goes on without a profile\n")
    status, out, err = run_source(FIXED, backend=backend, profile=str(tmp_path))
    assert err == (f"voxvm: warning: cannot write the profile to {tmp_path}: Is a directory; "
                   "the run goes on without a profile\n")


@pytest.mark.parametrize("options, message", [
    (dict(profile="-", profile_format="folded"), "needs a file"),
    (dict(profile_format="json"), "--profile-format needs --profile"),
    (dict(profile="p", profile_format="svg"), "is not one of table, json, folded"),
    (dict(profile="-", trace=True), "cannot be combined"),
])
def test_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        VMConfig(**options)
