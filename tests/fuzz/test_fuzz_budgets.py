"""The CI budgets of the input fuzzers (tools/fuzz_vve.py, fuzz_asm.py, fuzz_dump.py).

Each fuzzer runs a fixed seed for a small number of cases on two worker
processes and must report no finding: no crash (a worker killed by a
signal), no hang, no traceback, no differential mismatch, no round-trip
difference. The long runs and their results are in docs/reliability.md.
The worker-pool tests check on a synthetic target that a crash and a hang
are caught and named by their replay id, and that the other cases of the
batch are still run.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))

import fuzzlib  # noqa: E402
from support.machines import PUREPYTHON, UNDER_ASAN  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the worker pool forks")

SEED = 20240613


def _assert_clean(report: fuzzlib.Report) -> None:
    assert report.ok(), report.text()
    assert sum(v for k, v in report.counts.items() if k in ("crash", "hang", "traceback")) == 0


def test_vve_budget():
    import fuzz_vve

    report = fuzzlib.run_cases(fuzz_vve.target(), SEED, 1500, workers=2, batch=50)
    _assert_clean(report)
    # The budget reaches every stage: rejection, the round trip, both kinds of stop, and
    # (with a compiled core to check it against) print in C.
    stages = ["rejected (FormatError)", "loaded", "disasm: round trip identical", "halted"]
    if not PUREPYTHON:
        stages.append("C print checked")
    for tag in stages:
        assert report.counts[tag] > 0, report.text()
    assert any(k.startswith("trapped: ") for k in report.counts), report.text()


def test_asm_budget():
    import fuzz_asm

    report = fuzzlib.run_cases(fuzz_asm.target(), SEED, 4000, workers=2, batch=200)
    _assert_clean(report)
    assert report.counts["assembled and loaded"] > 0 and report.counts["rejected (AssemblyError)"] > 0


def test_dump_budget():
    import fuzz_dump

    report = fuzzlib.run_cases(fuzz_dump.target(), SEED, 2500, workers=2, batch=100)
    _assert_clean(report)
    assert report.counts["parsed and rendered"] > 0 and report.counts["rejected (FormatError)"] > 0


def test_cases_replay_by_id():
    import fuzz_vve

    target = fuzz_vve.target()
    assert target.make(7, 123) == target.make(7, 123)
    assert target.make(7, 123) != target.make(7, 124)
    assert target.run_case(7, 123) == target.run_case(7, 123)


# ---------------------------------------------------------------- the worker pool itself


def _synthetic_check(data: bytes) -> list[str]:
    index = int(data)
    if index == 13:
        os.kill(os.getpid(), signal.SIGSEGV)
    if index == 21:
        time.sleep(3600)
    if index == 30:
        raise KeyError("boom")
    if index == 31:
        raise fuzzlib.Failure("differential mismatch", "made up")
    return ["ok"]


def _synthetic() -> fuzzlib.Target:
    # The generator ignores its random source: case i is the text of i.
    return fuzzlib.Target(name="synthetic", suffix=".txt", load_corpus=lambda: [],
                          generate=lambda rng, corpus: b"", check=_synthetic_check)


class _Indexed(fuzzlib.Target):
    def make(self, seed: int, index: int) -> bytes:
        return str(index).encode()


@pytest.mark.skipif(UNDER_ASAN, reason="ASan's handler turns the synthetic SIGSEGV into SIGABRT")
def test_pool_reports_crashes_hangs_and_tracebacks_by_id():
    base = _synthetic()
    target = _Indexed(name=base.name, suffix=base.suffix, load_corpus=base.load_corpus,
                      generate=base.generate, check=base.check)
    report = fuzzlib.run_cases(target, 5, 40, workers=2, batch=10, timeout=1.5)
    kinds = {f["id"]: f["kind"] for f in report.failures}
    assert kinds == {"5:13": "crash", "5:21": "hang", "5:30": "traceback", "5:31": "differential mismatch"}
    crash = next(f for f in report.failures if f["id"] == "5:13")
    assert "SIGSEGV" in crash["detail"]
    # Every other case ran exactly once, the lost batches' included.
    assert report.counts["ok"] == 36
    assert report.counts["crash"] == report.counts["hang"] == report.counts["traceback"] == 1
