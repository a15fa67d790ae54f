"""The accept front (issue #12, half-open connections): silent connections wait as raw
sockets in a bounded pool and never reach aiohttp; a connection that sends bytes is
handed over and then meets the existing limits; clients are unaffected."""

from __future__ import annotations

import asyncio
import socket
import time
import unittest
from unittest import mock

import aiohttp

from qstore_qiskit.server import LocalServer, accept

from .helpers import http


def _connect(port: int, count: int, send: bytes = b"") -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if send:
            sock.sendall(send)
        socks.append(sock)
    return socks


def _closed_by_server(sock: socket.socket, timeout: float = 5.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def _connections(srv: LocalServer) -> dict[str, int]:
    return http("GET", srv.base_url + "/_qstore/stats")[2]["connections"]


def _wait_for(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class TestPendingPool(unittest.TestCase):

    def test_silent_connections_beyond_the_pool_are_evicted_oldest_first(self):
        limit, opened = 16, 50
        with LocalServer(max_pending_connections=limit, first_byte_timeout=60,
                         header_timeout=60) as srv:
            socks = _connect(srv.port, opened)
            try:
                # The health check connects behind all of them and is answered.
                status, _, health = http("GET", srv.base_url + "/", key=None)
                self.assertEqual((status, health["status"]), (200, "ok"))
                counts = _connections(srv)
                # The health check's connection evicted one more (the pool was full).
                evicted = opened - limit + 1
                closed = sum(_closed_by_server(s) for s in socks[:evicted])
                still_open = [s for s in socks[evicted:] if not _closed_by_server(s, 0.05)]
            finally:
                for sock in socks:
                    sock.close()
        self.assertEqual(closed, evicted)
        self.assertEqual(len(still_open), opened - evicted)
        self.assertEqual(counts["evicted_pending"], evicted)
        self.assertEqual(counts["pending"], opened - evicted)
        self.assertEqual(counts["expired_pending"], 0)
        # aiohttp saw only the two requests: no handler was built for a silent socket.
        self.assertEqual(counts["handed_over"], 2)
        self.assertEqual(counts["shed_idle"], 0)

    def test_silent_connections_expire_after_the_first_byte_timeout(self):
        with LocalServer(first_byte_timeout=0.3, header_timeout=60) as srv:
            socks = _connect(srv.port, 6)
            try:
                closed = sum(_closed_by_server(s) for s in socks)
            finally:
                for sock in socks:
                    sock.close()
            counts = _connections(srv)
        self.assertEqual(closed, 6)
        self.assertEqual((counts["expired_pending"], counts["evicted_pending"]), (6, 0))
        self.assertEqual(counts["pending"], 0)

    def test_first_byte_timeout_is_capped_by_the_header_timeout(self):
        with LocalServer(first_byte_timeout=60, header_timeout=0.3) as srv:
            sock = _connect(srv.port, 1)[0]
            try:
                self.assertTrue(_closed_by_server(sock))
            finally:
                sock.close()
            self.assertEqual(_connections(srv)["expired_pending"], 1)


class TestHandedOverConnections(unittest.TestCase):

    def test_slow_loris_is_handed_over_then_shed_by_the_connection_limit(self):
        limit, opened = 4, 12
        partial = b"GET /v0.4/jobs HTTP/1.1\r\nHost: x\r\n"  # headers never finished
        with LocalServer(max_connections=limit, max_pending_connections=2,
                         first_byte_timeout=60, header_timeout=60) as srv:
            socks = []
            for _ in range(opened):
                socks.extend(_connect(srv.port, 1, partial))
                # Each one reaches aiohttp before the next connects (so the pool of 2
                # never fills and the limiter, not the pool, decides).
                _wait_for(lambda n=len(socks): srv._front.handed_over >= n, "the hand-over")
            try:
                self.assertEqual(http("GET", srv.base_url + "/", key=None)[0], 200)
                closed = sum(_closed_by_server(s) for s in socks[:opened - limit])
                counts = _connections(srv)
            finally:
                for sock in socks:
                    sock.close()
        self.assertEqual(closed, opened - limit)
        self.assertEqual(counts["evicted_pending"], 0)
        self.assertGreaterEqual(counts["shed_idle"], opened - limit)

    def test_partial_headers_meet_the_header_timeout(self):
        with LocalServer(header_timeout=0.5, first_byte_timeout=0.5) as srv:
            sock = _connect(srv.port, 1, b"GET / HTTP/1.1\r\nHo")[0]
            try:
                self.assertTrue(_closed_by_server(sock))
            finally:
                sock.close()
            counts = _connections(srv)
        self.assertEqual(counts["expired_pending"], 0)
        self.assertGreaterEqual(counts["handed_over"], 1)

    def test_keep_alive_client_is_served_on_one_connection(self):
        with LocalServer(max_pending_connections=4) as srv:
            silent = _connect(srv.port, 10)  # fills (and churns) the pending pool

            async def run() -> list[int]:
                async with aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=1)) as session:
                    statuses = []
                    for _ in range(20):
                        async with session.get(srv.base_url + "/") as resp:
                            await resp.read()
                            statuses.append(resp.status)
                    return statuses

            try:
                statuses = asyncio.run(run())
                counts = _connections(srv)
            finally:
                for sock in silent:
                    sock.close()
        self.assertEqual(statuses, [200] * 20)
        # One keep-alive connection for the 20 requests, one for the stats request.
        self.assertEqual(counts["handed_over"], 2)


class TestPartialHeadQueue(unittest.TestCase):
    """Connections whose first bytes are an incomplete request head wait in a queue
    bounded by ``max_pending_connections``; the oldest beyond it is closed."""

    PARTIAL = b"GET /v0.4/jobs HTTP/1.1\r\nHost: x\r\n"  # headers never finished

    def test_queue_beyond_the_bound_sheds_the_oldest(self):
        bound, opened = 4, 30
        drained = []
        real_drain = accept.AcceptFront._drain_partial  # pylint: disable=protected-access

        def held_drain(front):  # stays "draining": nothing is handed over meanwhile
            drained.append(front)

        with mock.patch.object(accept.AcceptFront, "_drain_partial", held_drain), \
                LocalServer(max_pending_connections=bound, first_byte_timeout=60,
                            header_timeout=60) as srv:
            socks = []
            try:
                for n in range(1, opened + 1):
                    socks.extend(_connect(srv.port, 1, self.PARTIAL))
                    # Read by the front (queued, or the oldest shed) before the next.
                    _wait_for(lambda n=n: srv._front.counts()["partial"]
                              + srv._front.shed_partial == n, "the partial head queued")
                    self.assertLessEqual(srv._front.counts()["partial"], bound)
                # Health checks (complete heads) are answered meanwhile.
                for _ in range(3):
                    self.assertEqual(http("GET", srv.base_url + "/", key=None)[0], 200)
                counts = _connections(srv)
                shed = [_closed_by_server(s, timeout=0.05) for s in socks]
                # Now hand the queued ones over; they meet aiohttp's limits as usual.
                srv._loop.call_soon_threadsafe(real_drain, srv._front)
                _wait_for(lambda: srv._front.counts()["partial"] == 0, "the hand-over")
                self.assertEqual(http("GET", srv.base_url + "/", key=None)[0], 200)
            finally:
                for sock in socks:
                    sock.close()
        self.assertEqual(len(drained), 1)
        self.assertEqual((counts["partial"], counts["partial_peak"], counts["shed_partial"]),
                         (bound, bound, opened - bound))
        # The oldest were closed, the newest still wait.
        self.assertEqual(shed, [True] * (opened - bound) + [False] * bound)

    def test_flood_of_partial_heads_stays_bounded(self):
        bound, opened = 8, 400
        with LocalServer(max_pending_connections=bound, first_byte_timeout=60,
                         header_timeout=60, max_connections=64) as srv:
            socks = []
            try:
                for i in range(opened):
                    socks.extend(_connect(srv.port, 1, self.PARTIAL))
                    if i % 100 == 99:
                        self.assertEqual(http("GET", srv.base_url + "/", key=None)[0], 200)
                _wait_for(lambda: srv._front.counts()["partial"] == 0, "the queue drained")
                self.assertEqual(http("GET", srv.base_url + "/", key=None)[0], 200)
                counts = _connections(srv)
            finally:
                for sock in socks:
                    sock.close()
        self.assertLessEqual(counts["partial_peak"], bound)
        self.assertEqual(counts["partial"], 0)
        # Every partial connection was handed over or shed (or evicted before it was
        # read); the health checks were handed over too.
        self.assertGreaterEqual(counts["handed_over"] + counts["shed_partial"]
                                + counts["evicted_pending"], opened + 4)


class TestFallback(unittest.TestCase):

    def test_loop_without_add_reader_uses_aiohttps_accept_path(self):
        with mock.patch.object(accept, "supported", return_value=False):
            with LocalServer(max_connections=4, header_timeout=60) as srv:
                socks = _connect(srv.port, 10)
                try:
                    self.assertEqual(http("GET", srv.base_url + "/", key=None)[0], 200)
                    counts = _connections(srv)
                finally:
                    for sock in socks:
                        sock.close()
        self.assertNotIn("pending", counts)
        # Without the front every accepted connection costs a handler: the limit sheds.
        self.assertGreaterEqual(counts["shed_idle"], 10 - 4)


class TestDecoderPrestart(unittest.TestCase):

    def test_decode_worker_starts_with_the_server(self):
        with LocalServer(prestart_workers=True) as srv:
            self.assertEqual(len(srv._require_state().decoder._all), 1)
        with LocalServer(decode_processes=0, prestart_workers=True) as srv:
            self.assertEqual(srv._require_state().decoder._all, [])


if __name__ == "__main__":
    unittest.main()
