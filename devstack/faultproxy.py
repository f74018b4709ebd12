"""A TCP fault proxy on loopback (asyncio): latency, stalls, resets (also right after a given request), half-closes.

One `FaultProxy` forwards a listening port to a target port. Faults are switched on from any
thread through `ProxyHost` (its own event loop in a daemon thread), so synchronous tests and
the soak drive them. With `kafka=True` the client-to-server stream is cut at Kafka's request
frames (a 4-byte size, then api key and version), so a reset can follow a given request type;
otherwise at whatever chunks the socket returns, matched by bytes (a Redis commit: the fold's
commit script or an `EXEC`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

CHUNK = 65536
KAFKA_PRODUCE, KAFKA_OFFSET_COMMIT = 0, 8  # api keys (the Kafka protocol guide)
T = TypeVar("T")


def kafka_api_key(frame: bytes) -> int:
    """The api key of a Kafka request frame (size prefix included)."""
    return int(struct.unpack(">h", frame[4:6])[0]) if len(frame) >= 6 else -1


class _Conn:
    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client, self.server = client, server
        self.half_closed = False

    def reset(self) -> None:
        """Close both sockets with an RST (SO_LINGER 0), not a FIN: what a crashed peer or a middlebox does."""
        for w in (self.client, self.server):
            sock = w.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()


class FaultProxy:
    """listen_port -> target_port on 127.0.0.1, healthy until told otherwise."""

    def __init__(self, listen_port: int, target_port: int, name: str, kafka: bool = False) -> None:
        self.listen_port, self.target_port, self.name, self.kafka = listen_port, target_port, name, kafka
        self.latency_s = 0.0
        self.stall_until = 0.0  # time.monotonic(): nothing is forwarded before then
        self.refuse = False  # new connections are closed at once (the peer is "down")
        self.stats: Counter[str] = Counter()
        self._conns: set[_Conn] = set()
        self._armed: tuple[Callable[[bytes], bool], int] | None = None  # reset after a matching request
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.listen_port,
                                                      reuse_address=True)
        except OSError as exc:  # the port is another process's: say whose proxy and which port
            raise OSError(exc.errno, f"fault proxy {self.name} cannot listen on 127.0.0.1:{self.listen_port} "
                                     f"(-> {self.target_port}): {exc.strerror}") from exc

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for c in list(self._conns):
                c.reset()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    # -- faults (call on the proxy's loop: ProxyHost does) ------------------------------------

    def stall(self, seconds: float) -> None:
        self.stall_until = time.monotonic() + seconds
        self.stats["stalls"] += 1

    def reset_all(self) -> int:
        conns = list(self._conns)
        for c in conns:
            c.reset()
        self.stats["resets"] += len(conns)
        return len(conns)

    def half_close_all(self) -> int:
        """Send a FIN to every client and stop relaying the server's replies; the client's own
        direction stays open until it closes it."""
        conns = [c for c in self._conns if not c.half_closed]
        for c in conns:
            c.half_closed = True
            with contextlib.suppress(OSError, RuntimeError):
                c.client.write_eof()
        self.stats["half_closes"] += len(conns)
        return len(conns)

    def reset_after(self, match: Callable[[bytes], bool], times: int = 1) -> None:
        """The next `times` client requests that `match` accepts are forwarded, and then their
        connection is reset before any reply comes back: the server did the work, the client
        never hears (a commit whose answer is lost)."""
        self._armed = (match, times)

    @property
    def armed(self) -> bool:
        return self._armed is not None

    # -- forwarding -----------------------------------------------------------------------------

    async def _accept(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        if self.refuse:
            self.stats["refused"] += 1
            cwriter.transport.abort()
            return
        try:
            sreader, swriter = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            self.stats["upstream_down"] += 1
            cwriter.transport.abort()
            return
        conn = _Conn(cwriter, swriter)
        self._conns.add(conn)
        self.stats["connections"] += 1
        try:
            await asyncio.gather(self._relay(self._pump_up(creader, conn), conn),
                                 self._relay(self._pump_down(sreader, conn), conn), return_exceptions=True)
        finally:
            self._conns.discard(conn)
            for w in (cwriter, swriter):
                w.close()

    async def _wait(self, arrived: float) -> None:
        """Hold a chunk for the latency (from when it arrived) and while a stall lasts."""
        while True:
            now = time.monotonic()
            hold = max(arrived + self.latency_s - now, self.stall_until - now)
            if hold <= 0:
                return
            await asyncio.sleep(min(hold, 0.05))

    async def _read_up(self, reader: asyncio.StreamReader) -> bytes:
        if not self.kafka:
            return await reader.read(CHUNK)
        try:
            head = await reader.readexactly(4)
            return head + await reader.readexactly(struct.unpack(">i", head)[0])
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    async def _relay(self, pump: Coroutine[Any, Any, None], conn: _Conn) -> None:
        """Run one direction; a side that fails (an RST, a killed process's socket) resets the other,
        as it would reach the peer without a proxy in between. Swallowed, the error would leave the
        client waiting on an open socket for an answer that never comes (its request timeout, 40 s
        in aiokafka, after every broker kill)."""
        try:
            await pump
        except (ConnectionError, OSError):
            self.stats["peer_resets"] += 1
            conn.reset()

    async def _pump_up(self, reader: asyncio.StreamReader, conn: _Conn) -> None:
        while data := await self._read_up(reader):
            await self._wait(time.monotonic())
            conn.server.write(data)
            await conn.server.drain()
            armed = self._armed
            if armed is not None and armed[0](data):
                self._armed = (armed[0], armed[1] - 1) if armed[1] > 1 else None
                await asyncio.sleep(0)  # the request is on its way; its answer is not
                self.stats["resets_after_request"] += 1
                conn.reset()
                return
        with contextlib.suppress(OSError, RuntimeError):
            conn.server.write_eof()

    async def _pump_down(self, reader: asyncio.StreamReader, conn: _Conn) -> None:
        while data := await reader.read(CHUNK):
            await self._wait(time.monotonic())
            if conn.half_closed:
                return
            conn.client.write(data)
            await conn.client.drain()
        with contextlib.suppress(OSError, RuntimeError):
            conn.client.write_eof()


class ProxyHost:
    """Runs proxies on an event loop in a daemon thread; every method may be called from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxies: dict[str, FaultProxy] = {}
        self._thread = threading.Thread(target=self.loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def add(self, proxy: FaultProxy) -> FaultProxy:
        self._call(proxy.start())
        self.proxies[proxy.name] = proxy
        return proxy

    def group(self, prefix: str) -> list[FaultProxy]:
        return [p for name, p in sorted(self.proxies.items()) if name.startswith(prefix)]

    def on_loop(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()
        return self._call(run())

    def set_latency(self, prefix: str, seconds: float) -> None:
        for p in self.group(prefix):
            p.latency_s = seconds

    def _each(self, prefix: str, fn: Callable[[FaultProxy], int | None]) -> int:
        def run() -> int:
            return sum(fn(p) or 0 for p in self.group(prefix))
        return self.on_loop(run)

    def stall(self, prefix: str, seconds: float) -> None:
        self._each(prefix, lambda p: p.stall(seconds))

    def reset_all(self, prefix: str) -> int:
        return self._each(prefix, FaultProxy.reset_all)

    def half_close_all(self, prefix: str) -> int:
        return self._each(prefix, FaultProxy.half_close_all)

    def reset_after(self, prefix: str, match: Callable[[bytes], bool], times: int = 1) -> None:
        self._each(prefix, lambda p: p.reset_after(match, times))

    def disarm(self, prefix: str) -> None:
        def run(p: FaultProxy) -> None:
            p._armed = None
        self._each(prefix, run)

    def count(self, prefix: str, stat: str) -> int:
        return sum(s.get(stat, 0) for name, s in self.stats().items() if name.startswith(prefix))

    def stats(self) -> dict[str, dict[str, int]]:
        return self.on_loop(lambda: {name: dict(p.stats) for name, p in sorted(self.proxies.items())})

    def close(self) -> None:
        async def shut() -> None:
            for p in self.proxies.values():
                await p.close()
        with contextlib.suppress(Exception):
            self._call(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


def redis_commit(data: bytes) -> bool:
    """A Redis request that carries a commit: the fold's per-partition commit script (an EVAL of
    projections/commit.py's text, recognised by its `local EMBEDDED` table) or an EXEC (the end of
    a MULTI/EXEC transaction)."""
    return b"local EMBEDDED = " in data or b"\r\nEXEC\r\n" in data


def kafka_request(*api_keys: int) -> Callable[[bytes], bool]:
    return lambda frame: kafka_api_key(frame) in api_keys
