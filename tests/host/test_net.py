"""The network natives 0x20-0x25 on 127.0.0.1, through .vvs programs on both backends.

Nothing here can block for long: the TCP test connects to its own listener
before accepting (the kernel completes the handshake from the backlog), and
the UDP peer is a Python thread that keeps sending for at most a few seconds
with socket timeouts on its side.
"""

from __future__ import annotations

import socket
import threading
import time

from support.builders import VvsProgram

NET_OPEN, NET_CLOSE, NET_ACCEPT, NET_WRITE, NET_READ, NET_ADDR = range(0x20, 0x26)
CONNECT, LISTEN, UDP = 1, 2, 3


def test_tcp_listen_connect_accept_write_read_close(backend):
    p = VvsProgram()
    n = p.heap_text("r10", "127.0.0.1:0")
    p.ncall(NET_OPEN, r1=LISTEN, r2="r10", r3=n).op("movr r12 r0").print_reg("r12")   # ok 0
    p.op("alloc r13 64")
    p.ncall(NET_ADDR, r1="r12", r2="r13").op("movr r14 r0")                           # ok
    p.print_heap("r13", "r14")                                       # 127.0.0.1:<real port>
    # Connect to the address the listener reported: it is valid address text already.
    p.ncall(NET_OPEN, r1=CONNECT, r2="r13", r3="r14").op("movr r15 r0").print_reg("r15")  # ok 1
    p.ncall(NET_ACCEPT, r1="r12").op("movr r16 r0").print_reg("r16")                  # ok 2
    p.heap_text("r17", "ping")
    p.ncall(NET_WRITE, r1="r15", r2="r17", r3=8).print_reg("r0")                      # ok 8
    p.op("alloc r18 64")
    p.ncall(NET_READ, r1="r16", r2="r18", r3=64).op("movr r19 r0").print_reg("r19")  # ok 8
    p.print_heap("r18", "r19")                                                        # ping
    p.ncall(NET_ADDR, r1="r16", r2="r13").op("movr r14 r0")          # the accepted peer
    p.print_heap("r13", "r14")
    p.ncall(NET_CLOSE, r1="r15")                                                      # ok
    p.ncall(NET_READ, r1="r16", r2="r18", r3=64).print_reg("r0")     # end of stream: ok 0
    p.ncall(NET_CLOSE, r1="r15")                                     # closed twice
    p.ncall(NET_WRITE, r1="r12", r2="r17", r3=8)                     # a listener
    p.ncall(NET_READ, r1="r12", r2="r18", r3=8)                      # a listener
    p.ncall(NET_ACCEPT, r1="r16")                                    # not a listener
    p.ncall(NET_OPEN, r1=LISTEN, r2="r10", r3=n).print_reg("r0")     # 3: numbers not reused
    rc, out, err = p.run(backend)
    assert rc == 0
    port = out[3].rpartition(":")[2]
    assert out[3] == f"127.0.0.1:{port}" and 0 < int(port) < 65536
    assert out[:3] == ["ok", "0", "ok"]
    assert out[4:14] == ["ok", "1", "ok", "2", "ok", "8", "ok", "8", "ping", "ok"]
    assert out[14].startswith("127.0.0.1:") and out[14] != out[3]
    assert out[15:] == ["ok", "ok", "0", "nativefault", "nativefault", "nativefault",
                        "nativefault", "ok", "3"]
    assert err == [
        "voxvm: ncall 0x21 (net_close): connection handle 1 is closed",
        "voxvm: ncall 0x23 (net_write): connection 0 is a listener; write to a stream from "
        "net_accept",
        "voxvm: ncall 0x24 (net_read): connection 0 is a listener; read from a stream from "
        "net_accept",
        "voxvm: ncall 0x22 (net_accept): connection 2 is a stream, not a listener"]


def test_open_faults(backend):
    p = VvsProgram()
    n = p.heap_text("r10", "127.0.0.1:9")
    h = p.heap_text("r11", "localhost:80")
    b = p.heap_text("r12", "127.0.0.1:70000")
    p.ncall(NET_OPEN, r1=9, r2="r10", r3=n)                          # invaliddatatype
    p.ncall(NET_OPEN, r1=CONNECT, r2="r11", r3=h)                    # a host name: nativefault
    p.ncall(NET_OPEN, r1=LISTEN, r2="r12", r3=b)                     # port too big: nativefault
    p.ncall(NET_OPEN, r1=CONNECT, r2="r10", r3=n + 64)               # heapreadfault
    p.ncall(NET_CLOSE, r1=5)                                         # nativefault
    p.ncall(NET_ADDR, r1=5, r2="r10")                                # nativefault
    rc, out, err = p.run(backend)
    assert rc == 0
    assert out == ["invaliddatatype", "nativefault", "nativefault", "heapreadfault",
                   "nativefault", "nativefault"]
    assert err[0] == ("voxvm: ncall 0x20 (net_open): connection kind 9 is not 1 (TCP connect), "
                      "2 (TCP listen) or 3 (UDP bind)")
    assert "'localhost:80' is not a literal socket address" in err[1]


def test_an_ipv6_scope_id_must_fit_in_32_bits(backend):
    p = VvsProgram()
    n = p.heap_text("r10", "[::1%4294967296]:9")
    p.ncall(NET_OPEN, r1=CONNECT, r2="r10", r3=n)
    rc, out, err = p.run(backend)
    assert out == ["nativefault"]
    assert "'[::1%4294967296]:9' is not a literal socket address" in err[0]


def test_tcp_connect_refused_is_a_native_fault(backend):
    with socket.socket() as probe:        # a port nobody listens on (closed right away)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    p = VvsProgram()
    n = p.heap_text("r10", f"127.0.0.1:{port}")
    p.ncall(NET_OPEN, r1=CONNECT, r2="r10", r3=n)
    rc, out, err = p.run(backend)
    assert (rc, out) == (0, ["nativefault"])
    assert err[0].startswith(f"voxvm: ncall 0x20 (net_open): cannot connect to 127.0.0.1:{port}")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_udp_bind_read_and_reply_to_the_sender(backend):
    port = _free_udp_port()
    replies: list[tuple[bytes, int]] = []
    stop = threading.Event()

    def peer() -> None:
        """Send "hi" until the VM answers (the VM may bind after the first sends)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.05)
            deadline = time.monotonic() + 5
            while not stop.is_set() and time.monotonic() < deadline:
                sock.sendto("hi".encode("utf-16-be"), ("127.0.0.1", port))
                try:
                    data, sender = sock.recvfrom(64)
                except TimeoutError:
                    continue
                replies.append((data, sender[1]))
                return

    p = VvsProgram()
    n = p.heap_text("r10", f"127.0.0.1:{port}")
    p.ncall(NET_OPEN, r1=UDP, r2="r10", r3=n).op("movr r12 r0")
    p.heap_text("r13", "ok!")
    p.ncall(NET_WRITE, r1="r12", r2="r13", r3=6)                    # no peer yet: nativefault
    p.op("alloc r14 16")
    p.ncall(NET_READ, r1="r12", r2="r14", r3=16).op("movr r15 r0").print_reg("r15")  # ok 4
    p.print_heap("r14", "r15")                                                        # hi
    p.ncall(NET_WRITE, r1="r12", r2="r13", r3=6).print_reg("r0")                     # ok 6
    p.op("alloc r16 64")
    p.ncall(NET_ADDR, r1="r12", r2="r16").op("movr r17 r0").print_heap("r16", "r17")
    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    try:
        rc, out, err = p.run(backend)
    finally:
        stop.set()
        thread.join(5)
    assert rc == 0
    assert out == ["ok", "nativefault", "ok", "4", "hi", "ok", "6", "ok", f"127.0.0.1:{port}"]
    assert replies and replies[0][0] == "ok!".encode("utf-16-be") and replies[0][1] == port
    assert len(err) == 1 and "has no peer yet" in err[0]


def test_ipv6_loopback_literal(backend):
    if not socket.has_ipv6:
        return
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return                            # no IPv6 loopback on this host
    p = VvsProgram()
    n = p.heap_text("r10", "[::1]:0")
    p.ncall(NET_OPEN, r1=LISTEN, r2="r10", r3=n).op("movr r12 r0")
    p.op("alloc r13 64")
    p.ncall(NET_ADDR, r1="r12", r2="r13").op("movr r14 r0").print_heap("r13", "r14")
    rc, out, err = p.run(backend)
    assert (rc, err) == (0, [])
    assert out[:2] == ["ok", "ok"] and out[2].startswith("[::1]:")
