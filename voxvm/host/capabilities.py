"""What host access a program was granted: runcmd, the network, files (semantics.md §8).

Owns ``Capabilities``, built once per run from the run flags
(``--allow-run``, ``--allow-net[=HOST:PORT,...]``, ``--sandbox``,
``--allow-read=DIR,...``, ``--allow-write=DIR,...``), and the checks the
natives make *after* validating their arguments (so a malformed call raises
the same exception with or without the permission). A denied call raises
NativeFault, leaves r0 unchanged and prints one line per native per run
naming the flag that would allow it.

Network rules name literal addresses only (the natives never look up a host
name): ``127.0.0.1:8080``, ``[::1]:53``, ``10.0.0.5:*`` (any port of that
host), ``localhost:PORT`` (both loopback addresses). File rules name
folders; a path is resolved (symlinks, ``..``) before it is compared, so a
link out of an allowed folder does not escape it. ``fdelete`` removes a
directory entry, not what a link points to, so its check is on the entry's
own folder (``entry_path``).
"""

from __future__ import annotations

import os

from ..errors import UsageError

ANY_PORT = -1
_LOCALHOST = ("127.0.0.1", "::1")


def parse_net_rules(text: str) -> frozenset[tuple[str, int]] | None:
    """``--allow-net``'s value: None for every address (``*``, the bare flag), else
    ``{(ip, port or ANY_PORT)}``. An empty list is a UsageError, not every address: an
    unset ``--allow-net=$HOSTS`` must not open the whole network."""
    if text == "*":
        return None
    if not text.strip():
        raise UsageError("--allow-net: an empty address list; give HOST:PORT,... "
                         "(or the bare --allow-net for every address)")
    rules = set()
    for entry in text.split(","):
        host, port = _net_rule(entry.strip())
        hosts = _LOCALHOST if host == "localhost" else (host,)
        import ipaddress                  # only with --allow-net=... (start-up)

        for name in hosts:
            try:
                rules.add((str(ipaddress.ip_address(name)), port))
            except ValueError:
                raise UsageError(f"--allow-net: '{entry.strip()}': {name} is not a literal IP address "
                                 f"(or localhost); host names are never looked up") from None
    return frozenset(rules)


def _net_rule(entry: str) -> tuple[str, int]:
    """One ``--allow-net`` entry -> (host text, port or ANY_PORT): ``HOST:PORT``, ``HOST:*``,
    ``[IPV6]:PORT``; an IPv6 scope (``%2``) is dropped, as the check drops the connection's."""
    if entry.startswith("["):
        literal, close, rest = entry[1:].partition("]")
        if not close or not literal:
            raise UsageError(f"--allow-net: '{entry}' is not [IPV6]:PORT or [IPV6]:*")
        if not rest:
            raise UsageError(f"--allow-net: '{entry}' has no port; give {entry}:PORT or {entry}:*")
        if not rest.startswith(":"):
            raise UsageError(f"--allow-net: '{entry}' is not [IPV6]:PORT or [IPV6]:*")
        host, port_text = literal.partition("%")[0], rest[1:]
        if ":" not in host:
            raise UsageError(f"--allow-net: '{entry}': brackets are for IPv6 addresses only; "
                             f"give {host}{rest}")
    else:
        host, sep, port_text = entry.rpartition(":")
        if not sep or not host:
            raise UsageError(f"--allow-net: '{entry}' is not HOST:PORT or HOST:*")
        if ":" in host:
            raise UsageError(f"--allow-net: '{entry}': an IPv6 address goes in brackets, "
                             f"as [{host}]:{port_text}")
    if port_text == "*":
        return host, ANY_PORT
    if port_text.isascii() and port_text.isdigit() and int(port_text) <= 65535:
        return host, int(port_text)
    raise UsageError(f"--allow-net: '{entry}': the port must be 0-65535 or *")


def parse_folders(flag: str, text: str | None) -> tuple[str, ...]:
    """``--allow-read``/``--allow-write``'s value: the folders, resolved."""
    if not text:
        return ()
    folders = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            raise UsageError(f"{flag}: an empty folder name in '{text}'")
        folders.append(os.path.realpath(entry))
    return tuple(folders)


class Capabilities:
    """The grants of one run; ``denied_once`` remembers which natives have said so already.

    ``net_rules``: the (host, port) pairs the network natives may use, None for
    every address. (A plain class: a dataclass would cost start-up time.)
    """

    def __init__(self, *, allow_run: bool = False,
                 net_rules: frozenset[tuple[str, int]] | None = frozenset(), sandbox: bool = False,
                 read_folders: tuple[str, ...] = (), write_folders: tuple[str, ...] = ()) -> None:
        self.allow_run = allow_run
        self.net_rules = net_rules
        self.sandbox = sandbox
        self.read_folders = read_folders
        self.write_folders = write_folders
        self.denied_once: set[str] = set()

    def __repr__(self) -> str:
        return (f"Capabilities(allow_run={self.allow_run}, net_rules={self.net_rules}, sandbox={self.sandbox}, "
                f"read_folders={self.read_folders}, write_folders={self.write_folders})")

    @classmethod
    def from_config(cls, config) -> "Capabilities":
        net = parse_net_rules(config.allow_net) if config.allow_net is not None else frozenset()
        return cls(allow_run=config.allow_run and not config.sandbox,
                   net_rules=frozenset() if config.sandbox else net,
                   sandbox=config.sandbox,
                   read_folders=parse_folders("--allow-read", config.allow_read),
                   write_folders=parse_folders("--allow-write", config.allow_write))

    # ------------------------------------------------------------------ checks

    def check_run(self, io) -> None:
        if not self.allow_run:
            self._deny(io, "runcmd", "--allow-run" if not self.sandbox else None,
                       "to allow running commands")

    def check_net(self, io, native: str, sockaddr: tuple, *, connect: bool = False) -> None:
        """A connection to (``connect``) or a binding of ``sockaddr``. Connecting to the
        unspecified address (0.0.0.0, ::) reaches this host's loopback, so it needs
        the loopback's grant: a grant of 0.0.0.0, given to listen on every
        interface, does not open the services that listen on loopback only."""
        if self.net_rules is None:
            return
        import ipaddress                  # only when the network is used (start-up)

        ip = ipaddress.ip_address(sockaddr[0].partition("%")[0])
        mapped = getattr(ip, "ipv4_mapped", None)        # ::ffff:0.0.0.0 reaches 127.0.0.1
        if connect and (ip.is_unspecified or (mapped is not None and mapped.is_unspecified)):
            ip = ipaddress.ip_address(_LOCALHOST[ip.version == 6 and mapped is None])
        host, port = str(ip), sockaddr[1]
        if (host, port) in self.net_rules or (host, ANY_PORT) in self.net_rules:
            return
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._deny(io, native, f"--allow-net={shown}" if not self.sandbox else None,
                   "to allow network access")

    def check_file(self, io, native: str, path: str, *, read: bool, write: bool,
                   resolved: bool = False) -> None:
        """An open of ``path`` (its symlinks followed), or with ``resolved`` an action on
        the directory entry ``path`` itself (fdelete: ``entry_path``'s result)."""
        if not self.sandbox:
            return
        resolved_path = path if resolved else os.path.realpath(path)
        if read and not _inside(resolved_path, self.read_folders):
            self._deny(io, native, f"--allow-read={os.path.dirname(resolved_path) or '/'}",
                       "to allow reading there")
        if write and not _inside(resolved_path, self.write_folders):
            self._deny(io, native, f"--allow-write={os.path.dirname(resolved_path) or '/'}",
                       "to allow writing there")

    def _deny(self, io, native: str, flag: str | None, purpose: str) -> None:
        if native not in self.denied_once:
            self.denied_once.add(native)
            how = (f"run with {flag} {purpose}" if flag is not None
                   else f"--sandbox forbids it ({purpose.removeprefix('to allow ')} is never granted)")
            io.diag(f"{native}: denied: {how}")
        from .registry import NativeFailure    # a denial comes from a native, so it is loaded

        raise NativeFailure("denied", quiet=True)


def entry_path(path: str) -> str:
    """The directory entry ``path`` names, absolute, with every folder on the way resolved
    (symlinks, then ``..``, as the OS walks it) but not the entry itself: what ``unlink``
    removes. ``os.path.abspath`` would drop ``link/..`` as text and name another file."""
    head, tail = os.path.split(path)
    if tail in ("", ".", ".."):
        return os.path.realpath(path)
    return os.path.join(os.path.realpath(head or os.curdir), tail)


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)


def granted(io) -> Capabilities:
    """The run's capabilities; a HostIO made without a machine (tests) gets the defaults."""
    if io.capabilities is None:
        io.capabilities = Capabilities()
    return io.capabilities
