"""The built-in natives are imported on first use, and FAMILY_OF says where each one lives.

dispatch imports a family's module the first time the program calls one of
its codes (start-up: a run imports only the natives it uses), so the table
must name exactly the modules that register each code.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from importlib import import_module

import voxvm.host
from voxvm.host.registry import FAMILY_OF, NATIVES, load_all_natives


def test_family_of_names_the_module_that_registers_every_built_in():
    for module in pkgutil.iter_modules(voxvm.host.__path__):    # every module, not only the listed ones
        import_module(f"voxvm.host.{module.name}")
    where = {code: entry.handler.__module__.rsplit(".", 1)[1] for code, entry in NATIVES.items()}
    assert where == FAMILY_OF
    assert load_all_natives() is NATIVES


def test_a_run_imports_only_the_families_it_calls(tmp_path):
    (tmp_path / "p.vvs").write_text("section text\n.start\n    uload r1 7\n    uload r2 1\n"
                                    "    ncall 0x05 r0\n    halt\n")            # unixtime: basic
    probe = ("import sys\nfrom voxvm.cli import main\ntry:\n    main(['run', '--backend=python', 'p.vvs'])\n"
             "except SystemExit as e:\n    pass\n"
             "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('voxvm.host.')))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    imported = eval(done.stdout.strip().splitlines()[-1])
    assert "basic" in imported and not {"files", "net", "proc", "ffi"} & set(imported), done.stderr
