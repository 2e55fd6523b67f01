"""The network natives 0x20-0x25: net_open, net_close, net_accept, net_write, net_read, net_addr.

Owns those handlers and the socket-address text forms. Addresses are literal
``ip:port`` or ``[v6]:port`` only, never a host name (no DNS).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from ..tags import Exc, Tag
from .capabilities import granted
from .handles import connections_of
from .io import HostIO, reason
from .registry import NativeFailure, lossy_text, native, read_heap, reg_u, require_room, write_heap

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
        if percent and not (scope.isascii() and scope.isdigit() and int(scope) < 1 << 32):
            raise ValueError(f"'{text}': the IPv6 scope id must be a number below 2^32")
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
    kind = reg_u(core, 1)
    if kind not in (NET_CONNECT, NET_LISTEN, NET_UDP):
        raise NativeFailure(f"connection kind {kind} is not 1 (TCP connect), "
                            f"2 (TCP listen) or 3 (UDP bind)", Exc.InvalidDataType)
    text = lossy_text(core, reg_u(core, 2), reg_u(core, 3), "the address")
    try:
        family, sockaddr = parse_socket_address(text)
    except ValueError:
        raise NativeFailure(f"'{text}' is not a literal socket address "
                            f"(ip:port or [ipv6]:port; host names are not looked up)") from None
    granted(io).check_net(io, "net_open", sockaddr, connect=kind == NET_CONNECT)
    sock_type = socket.SOCK_DGRAM if kind == NET_UDP else socket.SOCK_STREAM
    try:
        sock = socket.socket(family, sock_type)
    except OSError as exc:
        raise NativeFailure(f"cannot create a socket: {reason(exc)}") from None
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
        raise NativeFailure(f"cannot {verb} {text}: {reason(exc)}") from None
    core.set_reg(0, connections_of(io).add(entry), Tag.U64)


@native(0x21, "net_close")
def _net_close(core, io: HostIO) -> None:
    """r1 = connection handle."""
    connections_of(io).remove(reg_u(core, 1)).close()


@native(0x22, "net_accept")
def _net_accept(core, io: HostIO) -> None:
    """r1 = listener handle; blocks for a client; r0 = U(handle of the new stream)."""
    number = reg_u(core, 1)
    listener = connections_of(io).get(number)
    if listener.kind != "listener":
        kind = "UDP socket" if listener.kind == "udp" else listener.kind
        raise NativeFailure(f"connection {number} is a {kind}, not a listener")
    io.flush()                     # the program may wait here indefinitely
    try:
        sock, peer = listener.sock.accept()
    except OSError as exc:
        raise NativeFailure(f"{reason(exc)}") from None
    entry = Connection("stream", sock, format_socket_address(peer))
    core.set_reg(0, connections_of(io).add(entry), Tag.U64)


@native(0x23, "net_write")
def _net_write(core, io: HostIO) -> None:
    """r1 = connection handle, r2 = heap source, r3 = count; r0 = U(bytes sent).

    TCP sends everything; UDP sends one datagram to the sender of the last
    datagram received (upstream's UDP write always fails).
    """
    number = reg_u(core, 1)
    entry = connections_of(io).get(number)
    if entry.kind == "listener":
        raise NativeFailure(f"connection {number} is a listener; "
                            f"write to a stream from net_accept")
    data = read_heap(core, reg_u(core, 2), reg_u(core, 3), "the data to send")
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
        raise NativeFailure(f"{reason(exc)}") from None
    core.set_reg(0, sent, Tag.U64)


@native(0x24, "net_read")
def _net_read(core, io: HostIO) -> None:
    """r1 = connection handle, r2 = heap destination, r3 = max bytes; r0 = U(bytes received).

    One blocking receive; only the bytes received are written (0 at end of
    stream). UDP: one datagram (cut to r3 bytes), whose sender becomes the
    socket's peer for net_write.
    """
    number = reg_u(core, 1)
    entry = connections_of(io).get(number)
    destination, limit = reg_u(core, 2), reg_u(core, 3)
    if entry.kind == "listener":
        raise NativeFailure(f"connection {number} is a listener; "
                            f"read from a stream from net_accept")
    require_room(core, destination, limit, "the data to receive")
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
        raise NativeFailure(f"error while reading: {reason(exc)}") from None
    write_heap(core, destination, data, "the data received")
    core.set_reg(0, len(data), Tag.U64)


@native(0x25, "net_addr")
def _net_addr(core, io: HostIO) -> None:
    """r1 = connection handle, r2 = heap destination; writes the address text, r0 = U(bytes).

    Streams from connect: the address connected to; from accept: the peer;
    listeners and UDP sockets: the bound local address (the real port for 0).
    """
    entry = connections_of(io).get(reg_u(core, 1))
    text = entry.address.encode("utf-16-be")
    write_heap(core, reg_u(core, 2), text, "the address")
    core.set_reg(0, len(text), Tag.U64)
