"""The fault proxy itself, against a loopback echo server: each fault does what it says."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from devstack.faultproxy import FaultProxy, ProxyHost, redis_commit
from tests.integration.live import free_port

pytestmark = pytest.mark.faults


@pytest.fixture
def echo() -> Iterator[tuple[int, list[bytes]]]:
    """An echo server on loopback; the list gets every chunk it received."""
    got: list[bytes] = []
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(ConnectionResetError, BrokenPipeError):  # the proxy's resets reach it too
            while data := conn.recv(65536):
                got.append(data)
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield srv.getsockname()[1], got
    srv.close()


@pytest.fixture
def proxy(echo: tuple[int, list[bytes]]) -> Iterator[tuple[ProxyHost, FaultProxy]]:
    host = ProxyHost()
    p = host.add(FaultProxy(free_port(), echo[0], "echo"))
    yield host, p
    host.close()


def _client(p: FaultProxy) -> socket.socket:
    c = socket.create_connection(("127.0.0.1", p.listen_port), timeout=10)
    c.sendall(b"hello")
    assert c.recv(100) == b"hello"  # healthy until told otherwise
    return c


def test_a_stall_holds_data_until_it_ends(proxy: tuple[ProxyHost, FaultProxy]) -> None:
    host, p = proxy
    c = _client(p)
    host.stall("echo", 1.5)
    c.sendall(b"held")
    c.settimeout(0.5)
    with pytest.raises(TimeoutError):
        c.recv(100)  # nothing comes back while the stall lasts
    c.settimeout(10)
    assert c.recv(100) == b"held"  # and then it does, nothing lost
    c.close()


def test_a_reset_aborts_every_connection(proxy: tuple[ProxyHost, FaultProxy]) -> None:
    host, p = proxy
    c = _client(p)
    assert host.reset_all("echo") == 1
    with pytest.raises(ConnectionResetError):
        c.sendall(b"x")
        c.recv(100)
    c.close()


def test_a_reset_after_a_request_lets_the_server_do_the_work_and_loses_the_answer(
        proxy: tuple[ProxyHost, FaultProxy], echo: tuple[int, list[bytes]]) -> None:
    host, p = proxy
    c = _client(p)
    host.reset_after("echo", redis_commit)
    c.sendall(b"*1\r\n$4\r\nEXEC\r\n")
    with pytest.raises(ConnectionResetError):
        assert c.recv(100) == b""
    deadline = time.monotonic() + 5
    while b"*1\r\n$4\r\nEXEC\r\n" not in echo[1]:
        assert time.monotonic() < deadline, "the request should have reached the server"
        time.sleep(0.05)
    assert host.count("echo", "resets_after_request") == 1 and not p.armed
    c.close()


def test_a_half_close_ends_the_replies_but_not_the_requests(
        proxy: tuple[ProxyHost, FaultProxy], echo: tuple[int, list[bytes]]) -> None:
    host, p = proxy
    c = _client(p)
    assert host.half_close_all("echo") == 1
    assert c.recv(100) == b""  # EOF from the "server"
    c.sendall(b"still heard")
    deadline = time.monotonic() + 5
    while b"still heard" not in echo[1]:
        assert time.monotonic() < deadline, "the client's direction should stay open"
        time.sleep(0.05)
    c.close()


def test_latency_delays_but_keeps_order(proxy: tuple[ProxyHost, FaultProxy]) -> None:
    host, p = proxy
    c = _client(p)
    host.set_latency("echo", 0.3)
    c.sendall(b"a")
    c.settimeout(0.1)
    with pytest.raises(TimeoutError):
        c.recv(100)  # not yet: held for the latency
    c.settimeout(10)
    data = b""
    c.sendall(b"b")
    while len(data) < 2:
        data += c.recv(100)
    assert data == b"ab"
    c.close()


def test_a_server_that_resets_its_connection_resets_the_client_too() -> None:
    """A killed broker's kernel answers its clients with an RST; through the proxy the client must
    learn it at once, not wait out its request timeout on a socket nobody will answer."""
    import struct

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        conn, _ = srv.accept()
        conn.recv(100)  # a request comes in; the server dies without answering it
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    host = ProxyHost()
    try:
        p = host.add(FaultProxy(free_port(), srv.getsockname()[1], "dying"))
        c = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
        c.sendall(b"request")
        t0 = time.monotonic()
        with contextlib.suppress(ConnectionResetError):  # an RST, or a FIN after it: both end the wait
            assert c.recv(100) == b""
        assert time.monotonic() - t0 < 4, "the client waited for an answer from a server that was gone"
        assert host.count("dying", "peer_resets") == 1
        c.close()
    finally:
        host.close()
        srv.close()


def test_a_port_in_use_is_named_with_the_proxy() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        host = ProxyHost()
        try:
            with pytest.raises(OSError, match=f"fault proxy kafka-3 cannot listen on 127.0.0.1:{port}"):
                host.add(FaultProxy(port, 1, "kafka-3", kafka=True))
        finally:
            host.close()
