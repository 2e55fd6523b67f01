"""voxasm/_fast_encoders.py and voxasm/_optable.py are what tools/gen_encoders.py generates from the ISA now.

The assembler imports its fast operand encoders from the first (a .pyc, not a
compile at every start; a stale file would still assemble correctly, what it
lacks is compiled on use, but must not be committed) and its opcode table from
the second (stale, it would assemble a changed ISA wrongly).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from voxasm import encoding

REPO = Path(__file__).resolve().parents[2]


def test_the_generated_encoders_are_current():
    assert (REPO / "voxasm" / "_fast_encoders.py").read_text() == encoding.fast_encoders_source()


def test_the_generated_opcode_table_is_current():
    assert (REPO / "voxasm" / "_optable.py").read_text() == encoding.optable_source()


def test_the_generator_check_passes():
    done = subprocess.run([sys.executable, str(REPO / "tools" / "gen_encoders.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_encoder_comes_from_the_generated_module():
    for key in encoding._wanted_factories():
        assert encoding._fast_factory(*key).__module__ == "voxasm._fast_encoders", key
