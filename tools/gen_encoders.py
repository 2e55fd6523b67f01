#!/usr/bin/env python3
"""Generate voxasm/_fast_encoders.py and voxasm/_optable.py from voxasm/encoding.py and the ISA.

voxasm/encoding.py describes the fast path of each operand class as a
template; this writes the factory of every operand signature of the ISA
(voxvm/isa.py) into voxasm/_fast_encoders.py, so that the assembler imports
them from a ``.pyc`` instead of compiling them at every start, and what layout
and the compiled scanner need of the opcode table into voxasm/_optable.py, so
that a typical assembly imports neither voxvm.isa nor the encoders
(docs/performance.md, "The assembler"). Deterministic: a regenerated file is
byte-identical.

Usage::

    python tools/gen_encoders.py            # rewrite the files
    python tools/gen_encoders.py --check    # exit 1 if one is stale

The check runs in the test suite (tests/asm/test_generated_encoders.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What is generated, and the function of voxasm.encoding that writes its text.
TARGETS = {REPO / "voxasm" / "_fast_encoders.py": "fast_encoders_source",
           REPO / "voxasm" / "_optable.py": "optable_source"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from voxasm import encoding

    stale = 0
    for target, source in TARGETS.items():
        text = getattr(encoding, source)()
        current = target.read_text() if target.exists() else None
        if current == text:
            continue
        if args.check:
            print(f"{target.relative_to(REPO)} is stale; run python tools/gen_encoders.py", file=sys.stderr)
            stale = 1
        else:
            target.write_text(text)
            print(f"wrote {target.relative_to(REPO)}")
    return stale


if __name__ == "__main__":
    sys.exit(main())
