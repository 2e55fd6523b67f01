"""Capabilities (semantics.md §8): runcmd, the network and, under --sandbox, files need a grant.

Every case runs a real .vvs program on both backends. A denied call raises
NativeFault, leaves r0 unchanged and says once per native per run which flag
would allow it; arguments are checked before permissions.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from support.builders import VvsProgram
from voxvm.errors import UsageError
from voxvm.host.capabilities import ANY_PORT, parse_net_rules

RUNCMD, FOPEN, FDELETE = 0x07, 0x10, 0x14
NET_OPEN, LISTEN = 0x20, 2
NONE = {"allow_run": False, "allow_net": None}        # what a plain `voxvm` run grants


def _runcmd_twice() -> VvsProgram:
    p = VvsProgram()
    n = p.heap_text("r10", "echo hi")
    p.op("alloc r13 16", "uload r0 77")
    p.ncall(RUNCMD, r1="r10", r2=n, r3="r13", r4=16).print_reg("r0")
    p.ncall(RUNCMD, r1="r10", r2=n, r3="r13", r4=16)
    return p


def test_runcmd_needs_allow_run(backend):
    rc, out, err = _runcmd_twice().run(backend, **NONE)
    assert rc == 0
    assert out == ["nativefault", "77", "nativefault"]          # r0 unchanged
    assert err == ["voxvm: runcmd: denied: run with --allow-run to allow running commands"]


def test_runcmd_with_allow_run(backend):
    rc, out, err = _runcmd_twice().run(backend, allow_run=True)
    assert (rc, out[:2], err) == (0, ["ok", "6"], [])


def test_the_sandbox_overrides_allow_run_and_allow_net(backend):
    rc, out, err = _runcmd_twice().run(backend, allow_run=True, allow_net="127.0.0.1:*", sandbox=True)
    assert out[0] == "nativefault"
    assert err == ["voxvm: warning: --sandbox ignores --allow-run and --allow-net (a sandboxed program "
                   "never runs commands or uses the network)",
                   "voxvm: runcmd: denied: --sandbox forbids it (running commands is never granted)"]


def _listen(address: str) -> VvsProgram:
    p = VvsProgram()
    n = p.heap_text("r10", address)
    p.op("uload r0 55")
    p.ncall(NET_OPEN, r1=LISTEN, r2="r10", r3=n).print_reg("r0")
    return p


def test_the_network_needs_allow_net(backend):
    rc, out, err = _listen("127.0.0.1:0").run(backend, **NONE)
    assert out == ["nativefault", "55"]
    assert err == ["voxvm: net_open: denied: run with --allow-net=127.0.0.1:0 to allow network access"]


@pytest.mark.parametrize("rules", ["*", "127.0.0.1:0", "127.0.0.1:*", "localhost:0"])
def test_allow_net_grants_what_it_names(backend, rules):
    rc, out, err = _listen("127.0.0.1:0").run(backend, allow_net=rules)
    assert (out[0], err) == ("ok", [])


@pytest.mark.parametrize("rules", ["127.0.0.2:*", "127.0.0.1:1", "[::1]:0"])
def test_allow_net_grants_nothing_else(backend, rules):
    rc, out, err = _listen("127.0.0.1:0").run(backend, allow_net=rules)
    assert out[0] == "nativefault"


@pytest.mark.parametrize("flags", [
    ["--allow-net=127.0.0.2:1", "--allow-net=127.0.0.1:0"],
    ["--allow-net=127.0.0.1:0", "--allow-net=127.0.0.2:1"],     # a later one does not replace it
    ["--allow-net", "--allow-net=127.0.0.2:1"],                 # nor narrow a bare --allow-net
])
def test_grants_given_twice_add_up(backend, flags):
    from voxvm.config import config_from_args

    rc, out, err = _listen("127.0.0.1:0").run(backend, allow_net=config_from_args(flags).allow_net)
    assert (out[0], err) == ("ok", [])
    assert config_from_args(["--allow-read=a", "--allow-read=b,c"]).allow_read == "a,b,c"


def test_arguments_are_checked_before_permissions(backend):
    p = VvsProgram()
    n = p.heap_text("r10", "127.0.0.1:9")
    p.ncall(NET_OPEN, r1=9, r2="r10", r3=n)               # kind 9: InvalidDataType either way
    for grants in (NONE, {"allow_net": "*"}):
        rc, out, err = p.run(backend, **grants)
        assert out == ["invaliddatatype"]


def _open(path, mode: int) -> VvsProgram:
    p = VvsProgram()
    n = p.heap_text("r10", str(path))
    p.ncall(FOPEN, r1="r10", r2=n, r3=mode)
    return p


def test_files_are_allowed_without_the_sandbox(backend, tmp_path):
    rc, out, err = _open(tmp_path / "f", 1).run(backend, **NONE)
    assert (out, err) == (["ok"], [])


def test_the_sandbox_denies_files_unless_a_folder_is_granted(backend, tmp_path):
    inside = tmp_path / "in"
    inside.mkdir()
    (inside / "r.txt").write_bytes(b"")
    rc, out, err = _open(inside / "r.txt", 2).run(backend, sandbox=True)
    assert out == ["nativefault"] and "run with --allow-read=" in err[0]
    rc, out, err = _open(inside / "r.txt", 2).run(backend, sandbox=True, allow_read=str(inside))
    assert (out, err) == (["ok"], [])
    rc, out, err = _open(inside / "w.txt", 1).run(backend, sandbox=True, allow_read=str(inside))
    assert out == ["nativefault"] and "run with --allow-write=" in err[0]
    rc, out, err = _open(inside / "w.txt", 4).run(backend, sandbox=True, allow_read=str(inside),
                                                  allow_write=str(inside))
    assert (out, err) == (["ok"], [])


def test_paths_are_resolved_before_the_check(backend, tmp_path):
    granted, secret = tmp_path / "granted", tmp_path / "secret"
    granted.mkdir()
    secret.mkdir()
    (secret / "s.txt").write_bytes(b"")
    os.symlink(secret / "s.txt", granted / "link.txt")
    for path in (granted / "link.txt", granted / ".." / "secret" / "s.txt"):
        rc, out, err = _open(path, 2).run(backend, sandbox=True, allow_read=str(granted))
        assert out == ["nativefault"], path


def test_fdelete_counts_as_a_write(backend, tmp_path):
    (tmp_path / "d.txt").write_bytes(b"")
    p = _open(tmp_path / "d.txt", 2).op("movr r12 r0")
    p.ncall(FDELETE, r1="r12")
    rc, out, err = p.run(backend, sandbox=True, allow_read=str(tmp_path))
    assert out == ["ok", "nativefault"]
    assert (tmp_path / "d.txt").exists()


def test_net_rules_parse_literal_addresses_only():
    assert parse_net_rules("*") is None
    assert parse_net_rules("10.0.0.1:80,[::1]:*") == {("10.0.0.1", 80), ("::1", ANY_PORT)}
    assert parse_net_rules("localhost:5") == {("127.0.0.1", 5), ("::1", 5)}
    for bad in ("example.com:80", "10.0.0.1", "10.0.0.1:99999", ":80"):
        with pytest.raises(UsageError):
            parse_net_rules(bad)


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voxvm", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_command_line_spellings(tmp_path):
    (tmp_path / "p.vvs").write_text(_listen("127.0.0.1:0").source())
    assert _cli("--vas=p.vvs", cwd=tmp_path).returncode == 0
    assert _cli("--vve=p.vve", "--allow-net", cwd=tmp_path).stdout.split()[0] == "ok"
    assert _cli("run", "p.vvs", "--allow-net", cwd=tmp_path).stdout.split()[0] == "ok"
    assert _cli("run", "p.vvs", "--allow-net=127.0.0.1:*", cwd=tmp_path).stdout.split()[0] == "ok"
    assert _cli("--vve=p.vve", cwd=tmp_path).stdout.split()[0] == "nativefault"
    refused = _cli("--vve=p.vve", "--sandbox", "--native-configs=nconfigs", cwd=tmp_path)
    assert refused.returncode == 2 and "--sandbox refuses --native-configs" in refused.stderr
    bad = _cli("--vve=p.vve", "--allow-net=example.com:80", cwd=tmp_path)
    assert bad.returncode == 2 and "not a literal IP address" in bad.stderr


def test_fdelete_checks_the_entry_it_removes_not_where_a_link_points(backend, tmp_path):
    granted, outside = tmp_path / "granted", tmp_path / "outside"
    granted.mkdir()
    outside.mkdir()
    (granted / "f.txt").write_bytes(b"data")
    os.symlink(granted / "f.txt", outside / "link")       # outside the grant, pointing into it
    p = _open(outside / "link", 2).op("movr r12 r0")
    p.ncall(FDELETE, r1="r12")
    rc, out, err = p.run(backend, sandbox=True, allow_read=str(granted), allow_write=str(granted))
    assert out == ["ok", "nativefault"]
    assert err == [f"voxvm: fdelete: denied: run with --allow-write={outside} to allow writing there"]
    assert os.path.islink(outside / "link") and (granted / "f.txt").read_bytes() == b"data"
    os.symlink(outside / "nowhere", granted / "inner")       # inside the grant: the link itself goes
    (outside / "nowhere").write_bytes(b"kept")
    p = _open(granted / "inner", 2).op("movr r12 r0")
    p.ncall(FDELETE, r1="r12")
    rc, out, err = p.run(backend, sandbox=True, allow_read=str(tmp_path), allow_write=str(granted))
    assert (out, err) == (["ok", "ok"], [])
    assert not os.path.lexists(granted / "inner") and (outside / "nowhere").read_bytes() == b"kept"


def test_fdelete_removes_the_file_that_was_opened_through_link_dotdot(backend, tmp_path):
    # W/deep -> sub/inner, so W/deep/../x is W/sub/x to the OS (not W/x, as text would say)
    (tmp_path / "sub" / "inner").mkdir(parents=True)
    os.symlink("sub/inner", tmp_path / "deep")
    (tmp_path / "x").write_bytes(b"keep")
    (tmp_path / "sub" / "x").write_bytes(b"victim")
    p = _open(f"{tmp_path}/deep/../x", 2).op("movr r12 r0")
    p.ncall(FDELETE, r1="r12")
    rc, out, err = p.run(backend)
    assert (out, err) == (["ok", "ok"], [])
    assert (tmp_path / "x").read_bytes() == b"keep" and not (tmp_path / "sub" / "x").exists()


def test_a_nul_in_a_sandboxed_path_is_an_ordinary_failure(backend, tmp_path):
    for grants in ({}, {"sandbox": True, "allow_read": str(tmp_path)}):
        rc, out, err = _open("a\0b", 2).run(backend, **grants)
        assert (out, err) == (["nativefault"], ["voxvm: ncall 0x10 (fopen): cannot open 'a\\x00b': "
                                                "embedded null byte"]), grants


def test_connecting_to_the_unspecified_address_needs_the_loopback_grant(backend):
    p = VvsProgram()
    n = p.heap_text("r10", "0.0.0.0:9")
    p.ncall(NET_OPEN, r1=1, r2="r10", r3=n)              # kind 1: TCP connect
    rc, out, err = p.run(backend, allow_net="0.0.0.0:*")
    assert out == ["nativefault"]
    assert err == ["voxvm: net_open: denied: run with --allow-net=127.0.0.1:9 to allow network access"]


@pytest.mark.parametrize("values", [[""], [" "], ["127.0.0.1:1", ""]])
def test_an_empty_allow_net_is_an_error_not_every_address(values):
    from voxvm.config import config_from_options

    with pytest.raises(UsageError, match="an empty address list"):
        config_from_options(allow_net=values)
    assert config_from_options(allow_net=[]).allow_net is None       # nothing granted


def test_net_rules_brackets_ports_and_scopes():
    assert parse_net_rules("[fe80::1%2]:80") == {("fe80::1", 80)}
    for bad, says in (("[127.0.0.1]:80", "brackets are for IPv6"), ("[::1]", "has no port"),
                      ("::1:80", "goes in brackets"), ("[::1]x", "is not [IPV6]:PORT"),
                      ("", "an empty address list")):
        with pytest.raises(UsageError, match=re.escape(says)):
            parse_net_rules(bad)


def test_command_line_refuses_an_empty_allow_net(tmp_path):
    (tmp_path / "p.vvs").write_text(_listen("127.0.0.1:0").source())
    for flag in ("--allow-net=", "--allow-net= "):
        refused = _cli("run", "p.vvs", flag, cwd=tmp_path)
        assert (refused.returncode, refused.stdout) == (2, ""), flag
        assert "--allow-net: an empty address list" in refused.stderr
