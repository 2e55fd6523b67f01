#!/usr/bin/env python3
"""Generate voxasm/_fast_encoders.py, the assembler's fast operand encoders.

voxasm/encoding.py describes the fast path of each operand class as a
template; this writes the factory of every operand signature of the ISA
(voxvm/isa.py) into a module, so that the assembler imports them from a
``.pyc`` instead of compiling them at every start (docs/performance.md, "The
assembler"). Deterministic: a regenerated file is byte-identical.

Usage::

    python tools/gen_encoders.py            # rewrite the file
    python tools/gen_encoders.py --check    # exit 1 if it is stale

The check runs in the test suite (tests/asm/test_generated_encoders.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "voxasm" / "_fast_encoders.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from voxasm.encoding import fast_encoders_source

    text = fast_encoders_source()
    current = TARGET.read_text() if TARGET.exists() else None
    if args.check:
        if current != text:
            print("voxasm/_fast_encoders.py is stale; run python tools/gen_encoders.py", file=sys.stderr)
            return 1
        return 0
    if current != text:
        TARGET.write_text(text)
        print(f"wrote {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
