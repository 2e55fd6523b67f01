"""The scripts in tools/ do not rot: each answers --help, and tools/bench.py still measures.

Benchmarks are never timed here: these tests run the tools on their cheapest inputs and
check that they finish and print what they promise (the tables, the right columns, the
independent instruction count), not how fast anything was.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
import subprocess
import sys

import pytest

from conftest import REPO
from support.machines import NO_COMPILED_CORE, PUREPYTHON

TOOLS = REPO / "tools"
MAIN_GUARD = re.compile(r'^if __name__ == "__main__":', re.MULTILINE)
ALL_TOOLS = sorted(TOOLS.glob("*.py"))
SCRIPTS = [path for path in ALL_TOOLS if MAIN_GUARD.search(path.read_text(encoding="utf-8"))]
# fib(32): 5·fib(33) + 14·(fib(33) − 1) + 6 instructions, derived by hand from fib.vvs.
FIB_INSTRUCTIONS = 5 * 3524578 + 14 * (3524578 - 1) + 6
needs_core = pytest.mark.skipif(PUREPYTHON, reason=NO_COMPILED_CORE)


def run_tool(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_help(tmp_path, script):
    result = run_tool(tmp_path, script, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:"), result.stdout[:200]
    assert not list(tmp_path.iterdir()), "--help wrote files"


def test_every_tool_is_a_script_or_a_library_of_one():
    """A tools/*.py without a main guard would be skipped by test_help: it must be a module
    the scripts import (like fuzzlib.py), not a script that lost its entry point."""
    sources = {path: path.read_text(encoding="utf-8") for path in ALL_TOOLS}
    for path in set(ALL_TOOLS) - set(SCRIPTS):
        importers = [other.name for other, text in sources.items()
                     if re.search(rf"^\s*(from {path.stem} import|import {path.stem}\b)", text, re.MULTILINE)]
        assert importers, f"{path.name} has no main guard and no tool imports it"


def markdown_tables(text: str) -> list[dict[str, str]]:
    """Each Markdown table of `text` as {column: value} of its one data row."""
    tables, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| program |"):
            header = [cell.strip() for cell in line.strip("|").split("|")]
            row = [cell.strip() for cell in lines[i + 2].strip("|").split("|")]
            assert len(row) == len(header), (header, row)
            tables.append(dict(zip(header, row)))
    return tables


@needs_core
def test_bench_reports_whole_process_and_in_run_tables(tmp_path):
    result = run_tool(tmp_path, TOOLS / "bench.py", "-r", "1", "-p", "fib", "--markdown")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^# \d{4}-\d\d-\d\d, .+ CPUs", out, re.MULTILINE), out
    assert "# command: " in out and "-p fib --markdown" in out
    assert "--vve=NAME.vve" in out
    whole, in_run, paired = markdown_tables(out)
    assert whole["program"] == in_run["program"] == paired["program"] == "fib"
    for column in ("voxvm s", "CPython s", "voxvm / CPython"):
        assert float(whole[column]) > 0, column
    for column in ("voxvm run s", "run / CPython", "ns / VM instr"):
        assert float(in_run[column]) > 0, column
    assert in_run["VM instrs"] == f"{FIB_INSTRUCTIONS:,}"
    expected = []
    if shutil.which("gcc") or shutil.which("cc"):
        expected.append(f"{'gcc' if shutil.which('gcc') else 'cc'} -O2")
    if shutil.which("luajit"):
        expected += ["LuaJIT -joff", "LuaJIT"]
    for name in expected:
        assert f"{name} s" in whole and f"voxvm / {name}" in whole and f"run / {name}" in in_run, name
    # One repeat: the repeat-by-repeat ratio is the whole-process ratio, seen in 0 or 1 repeats.
    assert set(paired) == {"program"} | {name for name in whole if name.startswith("voxvm / ")}
    ratio, low_high, below = paired["voxvm / CPython"].split()
    assert ratio == whole["voxvm / CPython"] and low_high == f"[{ratio}-{ratio}]"
    assert below == ("1/1" if float(whole["voxvm s"]) < float(whole["CPython s"]) else "0/1")


def load_bench():
    """tools/bench.py as a module (its helpers are tested directly)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("voxvm_tools_bench", TOOLS / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules["voxvm_tools_bench"] = bench       # its dataclasses look their module up
    spec.loader.exec_module(bench)
    return bench


@pytest.mark.parametrize("n", range(1, 10))
def test_bench_orders_runners_so_that_each_follows_every_other_equally_often(n):
    bench = load_bench()
    orders = bench.williams_orders(n)
    assert len(orders) == 2 * n and all(sorted(order) == list(range(n)) for order in orders)
    follows = Counter((order[i - 1], order[i]) for order in orders for i in range(1, n))
    assert len(follows) == n * (n - 1) and set(follows.values()) <= {2}
    for repeats in range(2, 2 * n + 1, 2):       # a short run is balanced pair by pair
        pairs = Counter((order[i - 1], order[i]) for order in orders[:repeats] for i in range(1, n))
        assert all(pairs[(a, b)] == pairs[(b, a)] for a, b in pairs), repeats


def test_bench_applies_the_orders_to_its_runners_cyclically():
    bench = load_bench()
    runners = [bench.Runner(name, []) for name in "abcd"]
    orders = ["".join(r.name for r in bench.ordered(runners, repeat)) for repeat in range(9)]
    assert orders == ["abdc", "cdba", "bcad", "dacb", "cdba", "abdc", "dacb", "bcad", "abdc"]


def test_bench_paired_ratios_keep_the_repeats_apart():
    bench = load_bench()
    ratios = bench.paired_ratios([0.9, 1.2, 0.8, 0.5, 0.0], [1.0, 1.0, 1.0, 0.0, 1.0])   # 0 s: no ratio
    assert ratios == pytest.approx([0.9, 1.2, 0.8])
    assert bench.paired_cell(ratios, 5) == "0.90 [0.80-1.20] 2/3 (2 at 0 s left out)"
    assert bench.paired_cell(ratios, 3) == "0.90 [0.80-1.20] 2/3"
    assert bench.paired_cell([], 2) == "-"


@needs_core
def test_bench_leaves_out_what_it_is_told_to_and_says_so(tmp_path):
    result = run_tool(tmp_path, TOOLS / "bench.py", "-r", "1", "-p", "fib", "--no-lua", "--no-c",
                      "--dispatch", "switch", "--baseline-python", sys.executable)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "# note: --dispatch switch applies to the in-run columns only" in out
    # No Lua or C column: the two headers are exactly these.
    assert re.search(r"^program +voxvm run s +baseline s +run / baseline +run / CPython +ns / VM instr +VM instrs$",
                     out, re.MULTILINE), out
    assert re.search(r"^program +voxvm s +CPython s +voxvm / CPython$", out, re.MULTILINE), out
    assert re.search(r"^program +voxvm / CPython$", out, re.MULTILINE), out     # repeat by repeat


@pytest.mark.parametrize("args, message", [
    (["-r", "0"], "-r/--repeats must be at least 1"),
    (["--baseline-python", "/nonexistent/python"], "is not an executable"),
    (["-p", "nosuch"], "invalid choice"),
])
def test_bench_usage_errors(tmp_path, args, message):
    result = run_tool(tmp_path, TOOLS / "bench.py", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("tool, args, message", [
    ("fuzz_heap.py", ["--episode-ops", "0"], "argument --episode-ops: '0' is not a whole number of at least 1"),
    ("fuzz_vve.py", ["--cases", "-5"], "argument --cases: '-5' is not a whole number of at least 1"),
    ("fuzz_vve.py", ["--replay", "abc"], "--replay: 'abc' is not SEED:INDEX or SEED:FIRST-LAST"),
    ("bench_gc.py", ["-r", "0"], "argument -r/--repeat: '0' is not a whole number of at least 1"),
    ("bench_asm.py", ["--source", "/nonexistent"], "argument --source: '/nonexistent' is not a folder"),
    ("bench_startup.py", ["-n", "0"], "argument -n: '0' is not a whole number of at least 1"),
])
def test_tools_refuse_counts_that_would_run_nothing(tmp_path, tool, args, message):
    # (a fuzzer given --cases -5 ran no case and reported a pass; fuzz_heap --episode-ops 0 never ended)
    result = run_tool(tmp_path, TOOLS / tool, *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
