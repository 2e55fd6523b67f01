"""The host-facing built-in natives: runcmd (0x07), files (0x10-0x16), network (0x20-0x25).

Owns those handlers (upstream §8.1) with the fixes of decisions.md §3 items
17 and 18 and the choices written down in docs/semantics.md §8, plus the
per-run handle tables they keep in ``HostIO.state``. voxvm/natives.py
imports this module at its end, which registers the handlers with
``@native``.

Handles (decisions §3.17): files and connections are numbered separately,
each from 0; a number stays valid until its handle is closed and is never
given out again while the program runs (upstream renumbers later handles on
close). The tables close whatever the program left open when its HostIO is
collected.

Files use raw OS descriptors (``os.open``/``os.read``/``os.write``), like
upstream's unbuffered ``std::fs::File``: nothing is lost if a program never
closes a file, and append mode starts at position 0 as upstream reports it.
Network addresses are literal ``ip:port`` or ``[v6]:port`` only, never a
host name (no DNS).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import threading
import weakref
from dataclasses import dataclass, field

from .isa import Exc, Tag
from .natives import HostIO, NativeFailure, _reason, _reg_u, native
from .values import decode_utf16be

# ====================================================================== handle tables


class HandleTable:
    """Numbered host objects of one kind: stable numbers, never reused (decisions §3.17)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind                 # "file" or "connection", for messages
        self._items: dict[int, object] = {}
        self._next = 0
        self._lock = threading.Lock()    # concurrent programs may share one HostIO

    def add(self, item) -> int:
        with self._lock:
            number = self._next
            self._next += 1
            self._items[number] = item
            return number

    def get(self, number: int):
        item = self._items.get(number)
        if item is None:
            raise NativeFailure(self._unknown(number))
        return item

    def remove(self, number: int):
        with self._lock:
            item = self._items.pop(number, None)
        if item is None:
            raise NativeFailure(self._unknown(number))
        return item

    def close_all(self) -> None:
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
        for item in items:
            try:
                item.close()
            except OSError:
                pass

    def _unknown(self, number: int) -> str:
        if number < self._next:
            return f"{self.kind} handle {number} is closed"
        return f"no open {self.kind} with handle {number}"


def _table(io: HostIO, key: str, kind: str) -> HandleTable:
    table = io.state.get(key)
    if table is None:
        table = io.state[key] = HandleTable(kind)
        # Close what the program left open once the run's HostIO is gone.
        weakref.finalize(io, table.close_all)
    return table


def _files(io: HostIO) -> HandleTable:
    return _table(io, "files", "file")


def _connections(io: HostIO) -> HandleTable:
    return _table(io, "connections", "connection")


# ====================================================================== heap helpers


def _read_heap(core, address: int, count: int, what: str) -> bytes:
    data = core.heap_read(address, count)
    if data is None:
        raise NativeFailure(f"cannot read {what} ({count} bytes at heap 0x{address:x})",
                            Exc.HeapReadFault)
    return data


def _write_heap(core, address: int, data: bytes, what: str) -> None:
    if not core.heap_write(address, data):
        raise NativeFailure(f"cannot write {what} ({len(data)} bytes at heap 0x{address:x})",
                            Exc.HeapWriteFault)


def _require_room(core, address: int, count: int, what: str) -> None:
    """Fail with HeapWriteFault *before* consuming input if ``count`` bytes do not fit.

    Upstream writes the whole requested size, so a destination smaller than the
    request fails there too; checking first means no file or socket data is
    consumed and lost when it does.
    """
    if core.heap_read(address, count) is None:
        raise NativeFailure(f"no room for {what}: {count} bytes at heap 0x{address:x} are not "
                            f"inside one heap block", Exc.HeapWriteFault)


def _lossy_text(core, address: int, count: int, what: str) -> str:
    """UTF-16BE text from the heap, unpaired surrogates replaced (upstream: lossy decode)."""
    data = _read_heap(core, address, count, what)
    if len(data) % 2:
        data = data[:-1]
    return data.decode("utf-16-be", "replace")


# ====================================================================== 0x07 runcmd


@native(0x07, "runcmd")
def _runcmd(core, io: HostIO) -> None:
    """r1/r2 = command (UTF-16BE, strict), r3 = stdout destination, r4 = byte limit.

    Runs ``sh -c CMD`` with stdin from /dev/null and stderr discarded, waits,
    stores min(r4, len) bytes of its stdout (UTF-8 decoded leniently, then
    UTF-16BE) at r3; r0 = U(full converted length), as upstream.
    """
    address, count = _reg_u(core, 1), _reg_u(core, 2)
    destination, limit = _reg_u(core, 3), _reg_u(core, 4)
    command = decode_utf16be(_read_heap(core, address, count, "the command"))
    if command is None:
        raise NativeFailure("the command is not valid UTF-16", Exc.HeapSegmFault)
    io.flush()          # the command's output must not overtake what the program printed
    try:
        completed = subprocess.run(["sh", "-c", command], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   check=False)
    except (OSError, ValueError) as exc:    # no sh, fork failure, NUL in the command
        raise NativeFailure(f"cannot run sh -c: {_reason(exc)}") from None
    output = completed.stdout.decode("utf-8", "replace").encode("utf-16-be")
    _write_heap(core, destination, output[:limit], "the command's output")
    core.set_reg(0, len(output), Tag.U64)


# ====================================================================== files 0x10-0x16

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_FILE_MODES = {           # upstream §8.1 fopen modes -> (open flags, readable, writable)
    1: (os.O_WRONLY | os.O_CREAT | os.O_TRUNC, False, True),    # write
    2: (os.O_RDONLY, True, False),                              # read
    3: (os.O_WRONLY | os.O_CREAT | os.O_APPEND, False, True),   # append
    4: (os.O_RDWR | os.O_CREAT, True, True),                    # read + write
    5: (os.O_RDWR | os.O_CREAT | os.O_APPEND, True, True),      # read + append
}


@dataclass
class OpenFile:
    fd: int
    path: str          # absolute, so fdelete removes the file that was opened
    mode: int
    readable: bool
    writable: bool

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


@native(0x10, "fopen")
def _fopen(core, io: HostIO) -> None:
    """r1/r2 = path (UTF-16BE, lossy), r3 = mode 1..5; r0 = U(file handle)."""
    address, count, mode = _reg_u(core, 1), _reg_u(core, 2), _reg_u(core, 3)
    path = _lossy_text(core, address, count, "the path")   # decisions §3.18: HeapReadFault
    if mode not in _FILE_MODES:
        raise NativeFailure(f"mode {mode} is not 1 (write), 2 (read), 3 (append), "
                            f"4 (read+write) or 5 (read+append)")
    flags, readable, writable = _FILE_MODES[mode]
    try:
        fd = os.open(path, flags | _O_CLOEXEC, 0o666)
    except (OSError, ValueError) as exc:
        raise NativeFailure(f"cannot open '{path}': {_reason(exc)}") from None
    number = _files(io).add(OpenFile(fd, os.path.abspath(path), mode, readable, writable))
    core.set_reg(0, number, Tag.U64)


@native(0x11, "fclose")
def _fclose(core, io: HostIO) -> None:
    """r1 = file handle."""
    entry = _files(io).remove(_reg_u(core, 1))
    try:
        entry.close()
    except OSError as exc:
        raise NativeFailure(f"{_reason(exc)}") from None


@native(0x12, "fwrite")
def _fwrite(core, io: HostIO) -> None:
    """r1 = file handle, r2 = heap source, r3 = byte count; writes all of it."""
    entry = _files(io).get(_reg_u(core, 1))
    address, count = _reg_u(core, 2), _reg_u(core, 3)
    if not entry.writable:
        raise NativeFailure(f"file {_reg_u(core, 1)} was opened for reading only")
    view = memoryview(_read_heap(core, address, count, "the data to write"))
    try:
        while view:
            written = os.write(entry.fd, view)
            view = view[written:]
    except OSError as exc:
        raise NativeFailure(f"{_reason(exc)}") from None


@native(0x13, "fread")
def _fread(core, io: HostIO) -> None:
    """r1 = file handle, r2 = byte count, r3 = heap destination (upstream's order).

    Reads up to r2 bytes (fewer only at end of file) and writes just those;
    r0 = U(bytes read), 0 at end of file (upstream reports nothing).
    """
    number = _reg_u(core, 1)
    entry = _files(io).get(number)
    count, destination = _reg_u(core, 2), _reg_u(core, 3)
    if not entry.readable:
        raise NativeFailure(f"file {number} was opened for writing only")
    _require_room(core, destination, count, "the data to read")
    chunks, remaining = [], count
    try:
        while remaining:
            chunk = os.read(entry.fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise NativeFailure(f"{_reason(exc)}") from None
    data = b"".join(chunks)
    _write_heap(core, destination, data, "the data read")
    core.set_reg(0, len(data), Tag.U64)


@native(0x14, "fdelete")
def _fdelete(core, io: HostIO) -> None:
    """r1 = file handle: closes it and deletes the file."""
    entry = _files(io).remove(_reg_u(core, 1))
    try:
        entry.close()
        os.unlink(entry.path)
    except OSError as exc:
        raise NativeFailure(f"cannot delete '{entry.path}': {_reason(exc)}") from None


@native(0x15, "fseekget")
def _fseekget(core, io: HostIO) -> None:
    """r1 = file handle; r0 = U(current position)."""
    entry = _files(io).get(_reg_u(core, 1))
    try:
        position = os.lseek(entry.fd, 0, os.SEEK_CUR)
    except OSError as exc:
        raise NativeFailure(f"{_reason(exc)}") from None
    core.set_reg(0, position, Tag.U64)


@native(0x16, "fseekset")
def _fseekset(core, io: HostIO) -> None:
    """r1 = file handle, r2 = absolute position (as uint64)."""
    entry = _files(io).get(_reg_u(core, 1))
    position = _reg_u(core, 2)
    try:
        os.lseek(entry.fd, position, os.SEEK_SET)
    except (OSError, OverflowError) as exc:   # upstream ignores this; a fault is clearer
        raise NativeFailure(f"cannot seek to {position}: {_reason(exc)}") from None


# ====================================================================== network 0x20-0x25

NET_CONNECT, NET_LISTEN, NET_UDP = 1, 2, 3
_LISTEN_BACKLOG = 128        # what Rust's TcpListener::bind uses


@dataclass
class Connection:
    kind: str                          # "stream", "listener" or "udp"
    sock: socket.socket
    address: str                       # what net_addr reports
    peer: tuple | None = field(default=None)   # UDP: where net_write sends

    def close(self) -> None:
        self.sock.close()


def parse_socket_address(text: str) -> tuple[int, tuple]:
    """``ip:port`` or ``[ipv6]:port`` -> (address family, sockaddr); ValueError otherwise.

    Only literal addresses, like Rust's ``SocketAddr::from_str``: no host
    names, so no DNS lookup ever happens.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isascii() or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"'{text}' is not ip:port")
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        literal, percent, scope = host[1:-1].partition("%")
        if percent and not (scope.isascii() and scope.isdigit()):
            raise ValueError(f"'{text}': the IPv6 scope id must be a number")
        ip = ipaddress.IPv6Address(literal)
        return socket.AF_INET6, (str(ip), port, 0, int(scope) if percent else 0)
    return socket.AF_INET, (str(ipaddress.IPv4Address(host)), port)


def format_socket_address(sockaddr: tuple) -> str:
    """Rust ``SocketAddr`` Display: ``1.2.3.4:80``, ``[::1]:80``, ``[fe80::1%2]:80``."""
    host, port = sockaddr[0], sockaddr[1]
    if ":" not in host:
        return f"{host}:{port}"
    host = host.partition("%")[0]
    scope = sockaddr[3] if len(sockaddr) > 3 else 0
    return f"[{host}%{scope}]:{port}" if scope else f"[{host}]:{port}"


@native(0x20, "net_open")
def _net_open(core, io: HostIO) -> None:
    """r1 = kind (1 TCP connect, 2 TCP listen, 3 UDP bind), r2/r3 = address text; r0 = U(handle)."""
    kind = _reg_u(core, 1)
    if kind not in (NET_CONNECT, NET_LISTEN, NET_UDP):
        raise NativeFailure(f"connection kind {kind} is not 1 (TCP connect), "
                            f"2 (TCP listen) or 3 (UDP bind)", Exc.InvalidDataType)
    text = _lossy_text(core, _reg_u(core, 2), _reg_u(core, 3), "the address")
    try:
        family, sockaddr = parse_socket_address(text)
    except ValueError:
        raise NativeFailure(f"'{text}' is not a literal socket address "
                            f"(ip:port or [ipv6]:port; host names are not looked up)") from None
    sock_type = socket.SOCK_DGRAM if kind == NET_UDP else socket.SOCK_STREAM
    try:
        sock = socket.socket(family, sock_type)
    except OSError as exc:
        raise NativeFailure(f"cannot create a socket: {_reason(exc)}") from None
    try:
        if kind == NET_CONNECT:
            io.flush()             # connecting may take a while
            sock.connect(sockaddr)
            entry = Connection("stream", sock, format_socket_address(sockaddr))
        else:
            if kind == NET_LISTEN:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as Rust does
            sock.bind(sockaddr)
            if kind == NET_LISTEN:
                sock.listen(_LISTEN_BACKLOG)
            # The bound address, so that port 0 reports the port the OS chose.
            entry = Connection("listener" if kind == NET_LISTEN else "udp", sock,
                               format_socket_address(sock.getsockname()))
    except OSError as exc:
        sock.close()
        verb = "connect to" if kind == NET_CONNECT else "bind"
        raise NativeFailure(f"cannot {verb} {text}: {_reason(exc)}") from None
    core.set_reg(0, _connections(io).add(entry), Tag.U64)


@native(0x21, "net_close")
def _net_close(core, io: HostIO) -> None:
    """r1 = connection handle."""
    _connections(io).remove(_reg_u(core, 1)).close()


@native(0x22, "net_accept")
def _net_accept(core, io: HostIO) -> None:
    """r1 = listener handle; blocks for a client; r0 = U(handle of the new stream)."""
    number = _reg_u(core, 1)
    listener = _connections(io).get(number)
    if listener.kind != "listener":
        raise NativeFailure(f"connection {number} is a {listener.kind}, "
                            f"not a listener")
    io.flush()                     # the program may wait here indefinitely
    try:
        sock, peer = listener.sock.accept()
    except OSError as exc:
        raise NativeFailure(f"{_reason(exc)}") from None
    entry = Connection("stream", sock, format_socket_address(peer))
    core.set_reg(0, _connections(io).add(entry), Tag.U64)


@native(0x23, "net_write")
def _net_write(core, io: HostIO) -> None:
    """r1 = connection handle, r2 = heap source, r3 = count; r0 = U(bytes sent).

    TCP sends everything; UDP sends one datagram to the sender of the last
    datagram received (upstream's UDP write always fails).
    """
    number = _reg_u(core, 1)
    entry = _connections(io).get(number)
    if entry.kind == "listener":
        raise NativeFailure(f"connection {number} is a listener; "
                            f"write to a stream from net_accept")
    data = _read_heap(core, _reg_u(core, 2), _reg_u(core, 3), "the data to send")
    try:
        if entry.kind == "udp":
            if entry.peer is None:
                raise NativeFailure(f"UDP socket {number} has no peer yet "
                                    f"(it replies to the sender of the last datagram read)")
            sent = entry.sock.sendto(data, entry.peer)
        else:
            entry.sock.sendall(data)
            sent = len(data)
    except OSError as exc:
        raise NativeFailure(f"{_reason(exc)}") from None
    core.set_reg(0, sent, Tag.U64)


@native(0x24, "net_read")
def _net_read(core, io: HostIO) -> None:
    """r1 = connection handle, r2 = heap destination, r3 = max bytes; r0 = U(bytes received).

    One blocking receive; only the bytes received are written (0 at end of
    stream). UDP: one datagram (cut to r3 bytes), whose sender becomes the
    socket's peer for net_write.
    """
    number = _reg_u(core, 1)
    entry = _connections(io).get(number)
    destination, limit = _reg_u(core, 2), _reg_u(core, 3)
    if entry.kind == "listener":
        raise NativeFailure(f"connection {number} is a listener; "
                            f"read from a stream from net_accept")
    _require_room(core, destination, limit, "the data to receive")
    if limit == 0:
        core.set_reg(0, 0, Tag.U64)
        return
    io.flush()                     # the program may wait here indefinitely
    try:
        if entry.kind == "udp":
            data, entry.peer = entry.sock.recvfrom(limit)
        else:
            data = entry.sock.recv(limit)
    except OSError as exc:
        raise NativeFailure(f"error while reading: {_reason(exc)}") from None
    _write_heap(core, destination, data, "the data received")
    core.set_reg(0, len(data), Tag.U64)


@native(0x25, "net_addr")
def _net_addr(core, io: HostIO) -> None:
    """r1 = connection handle, r2 = heap destination; writes the address text, r0 = U(bytes).

    Streams from connect: the address connected to; from accept: the peer;
    listeners and UDP sockets: the bound local address (the real port for 0).
    """
    entry = _connections(io).get(_reg_u(core, 1))
    text = entry.address.encode("utf-16-be")
    _write_heap(core, _reg_u(core, 2), text, "the address")
    core.set_reg(0, len(text), Tag.U64)
