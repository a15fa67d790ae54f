"""The accept front (issue #12, half-open connections): silent connections wait as raw
sockets in a bounded pool and never reach aiohttp; so do connections with an
incomplete request head, whose bytes the front holds until the head is complete; a
connection with a complete head is handed over (with any bytes the front read, in
order) and then meets the existing limits; clients are unaffected."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import types
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

    def test_slow_loris_is_held_by_the_front_and_never_reaches_aiohttp(self):
        limit, opened = 4, 12
        partial = b"GET /v0.4/jobs HTTP/1.1\r\nHost: x\r\n"  # headers never finished
        with LocalServer(max_connections=limit, max_pending_connections=64,
                         first_byte_timeout=60, header_timeout=60) as srv:
            socks = _connect(srv.port, opened, partial)
            try:
                _wait_for(lambda: srv._front.counts()["partial"] == opened, "the heads read")
                self.assertEqual(http("GET", srv.base_url + "/", key=None)[0], 200)
                counts = _connections(srv)
                still_open = [s for s in socks if not _closed_by_server(s, 0.05)]
            finally:
                for sock in socks:
                    sock.close()
        # Held as raw sockets: the connection limit of 4 never had to shed anything,
        # and aiohttp built handlers for the two requests only.
        self.assertEqual(len(still_open), opened)
        self.assertEqual((counts["shed_idle"], counts["refused"]), (0, 0))
        self.assertEqual(counts["handed_over"], 2)
        self.assertEqual((counts["partial"], counts["partial_peak"]), (opened, opened))

    def test_head_sent_in_pieces_is_served_with_its_bytes_in_order(self):
        body = json.dumps({"type": "ionq.circuit.v1", "backend": "simulator", "shots": 10,
                           "input": {"qubits": 1, "circuit": [{"gate": "x", "target": 0}]}}
                          ).encode()
        head = (b"POST /v0.4/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: apiKey k\r\n"
                b"Content-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        pieces = [head[:7], head[7:30], head[30:-2], head[-2:] + body[:5], body[5:]]
        with LocalServer(first_byte_timeout=60, header_timeout=60) as srv:
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            try:
                for i, piece in enumerate(pieces):
                    sock.sendall(piece)
                    if i < 3:  # each piece read by the front before the next is sent
                        _wait_for(lambda: srv._front.counts()["partial"] == 1
                                  and len(next(iter(srv._front._partial.values()))[2])
                                  == sum(map(len, pieces[:i + 1])), "the piece read")
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            finally:
                sock.close()
            counts = _connections(srv)
            job_id = json.loads(answer.split(b"\r\n\r\n", 1)[1])["id"]
            # The job the pieces made (a byte out of order would have been a 400).
            self.assertEqual(srv.jobs()[-1]["id"], job_id)
            self.assertEqual(srv.jobs()[-1]["shots"], 10)
        self.assertTrue(answer.startswith(b"HTTP/1.1 201"), answer[:200])
        self.assertEqual((counts["partial"], counts["partial_peak"]), (0, 1))
        self.assertEqual(counts["handed_over"], 2)  # this one and the stats request

    def test_head_beyond_the_limit_is_handed_to_aiohttp(self):
        huge = b"GET / HTTP/1.1\r\nX-Long: " + b"a" * (2 * accept.HEAD_LIMIT)
        with LocalServer(first_byte_timeout=60, header_timeout=60) as srv:
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            try:
                sock.sendall(huge[:100])
                _wait_for(lambda: srv._front.counts()["partial"] == 1, "the head held")
                sock.sendall(huge[100:])
                answer = sock.recv(65536)
            finally:
                sock.close()
            counts = _connections(srv)
        # aiohttp's own answer to a header line over its limit.
        self.assertEqual(answer.split(b" ", 2)[1], b"400", answer[:200])
        self.assertIn(b"Got more than 8190 bytes", answer)
        self.assertEqual(counts["partial"], 0)
        self.assertGreaterEqual(counts["handed_over"], 1)

    def test_client_that_leaves_mid_head_is_closed_by_the_front(self):
        with LocalServer(first_byte_timeout=60, header_timeout=60) as srv:
            socks = _connect(srv.port, 5, b"GET / HTTP/1.1\r\n")
            _wait_for(lambda: srv._front.counts()["partial"] == 5, "the heads held")
            for sock in socks:
                sock.close()
            _wait_for(lambda: srv._front.counts()["partial"] == 0, "the front to notice")
            counts = _connections(srv)
        self.assertEqual(counts["left_partial"], 5)
        self.assertEqual(counts["handed_over"], 1)  # the stats request

    def test_partial_headers_meet_the_header_timeout(self):
        with LocalServer(header_timeout=0.5, first_byte_timeout=0.5) as srv:
            sock = _connect(srv.port, 1, b"GET / HTTP/1.1\r\nHo")[0]
            try:
                self.assertTrue(_closed_by_server(sock))
            finally:
                sock.close()
            counts = _connections(srv)
        self.assertEqual(counts["expired_pending"], 0)
        # Closed by the front at its header deadline: aiohttp never saw it.
        self.assertEqual(counts["expired_partial"], 1)
        self.assertEqual(counts["handed_over"], 1)  # the stats request

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
    """Connections whose first bytes are an incomplete request head are held by the
    front, at most ``max_pending_connections`` of them; the oldest beyond it is
    closed."""

    PARTIAL = b"GET / HTTP/1.1\r\nHost: x\r\n"  # headers not finished yet

    def test_pool_beyond_the_bound_sheds_the_oldest(self):
        bound, opened = 4, 30
        with LocalServer(max_pending_connections=bound, first_byte_timeout=60,
                         header_timeout=60) as srv:
            socks = []
            try:
                for n in range(1, opened + 1):
                    socks.extend(_connect(srv.port, 1, self.PARTIAL))
                    # Read by the front (held, or the oldest shed) before the next.
                    _wait_for(lambda n=n: srv._front.counts()["partial"]
                              + srv._front.shed_partial == n, "the partial head held")
                    self.assertLessEqual(srv._front.counts()["partial"], bound)
                # Health checks (complete heads) are answered meanwhile.
                for _ in range(3):
                    self.assertEqual(http("GET", srv.base_url + "/", key=None)[0], 200)
                counts = _connections(srv)
                shed = [_closed_by_server(s, timeout=0.05) for s in socks]
                # The held ones finish their heads: each is served.
                for sock in socks[-bound:]:
                    sock.settimeout(30)  # a guard against a hang only
                    sock.sendall(b"Connection: close\r\n\r\n")
                answers = [s.recv(4096)[:12] for s in socks[-bound:]]
            finally:
                for sock in socks:
                    sock.close()
        self.assertEqual((counts["partial"], counts["partial_peak"], counts["shed_partial"]),
                         (bound, bound, opened - bound))
        # The oldest were closed, the newest still wait.
        self.assertEqual(shed, [True] * (opened - bound) + [False] * bound)
        self.assertEqual(answers, [b"HTTP/1.1 200"] * bound)

    def test_flood_beyond_the_bounds_leaves_the_server_answering(self):
        """Silent and partial-head connections, each kind three times the bound: the
        front stays within its bounds, nothing reaches aiohttp but the health checks,
        and every socket is accounted for."""
        bound, opened = 32, 192
        with LocalServer(max_pending_connections=bound, first_byte_timeout=60,
                         header_timeout=60, max_connections=16) as srv:
            socks = []
            health = []
            try:
                for i in range(opened):
                    socks.extend(_connect(srv.port, 1, self.PARTIAL if i % 2 else b""))
                    # Accepted (and a partial head read) before the next connects, so
                    # that which socket each bound closes is deterministic.
                    _wait_for(lambda n=i + 1 + len(health): srv._front.accepted >= n
                              and srv._front.counts()["partial"] + srv._front.shed_partial
                              == (n - len(health)) // 2, "the socket accepted")
                    if i % 32 == 31:
                        health.append(http("GET", srv.base_url + "/", key=None)[0])
                health.append(http("GET", srv.base_url + "/", key=None)[0])
                counts = _connections(srv)
                closed = sum(_closed_by_server(s, timeout=0.05) for s in socks)
            finally:
                for sock in socks:
                    sock.close()
        self.assertEqual(health, [200] * len(health))
        self.assertEqual(counts["partial_peak"], bound)
        self.assertEqual(counts["partial"], bound)
        self.assertEqual(counts["shed_partial"], opened // 2 - bound)
        # Every health check and the stats request were handed over, and nothing else.
        self.assertEqual(counts["handed_over"], len(health) + 1)
        self.assertEqual((counts["shed_idle"], counts["refused"]), (0, 0))
        self.assertLessEqual(counts["pending"], bound)
        self.assertEqual((counts["expired_pending"], counts["expired_partial"],
                          counts["left_partial"]), (0, 0, 0))
        # Every accepted socket is accounted for.
        self.assertEqual(counts["accepted"], counts["handed_over"] + counts["evicted_pending"]
                         + counts["shed_partial"] + counts["pending"] + counts["partial"])
        self.assertGreater(counts["evicted_pending"], opened // 2 - bound)
        # The flood's sockets the server closed are exactly those no pool holds now.
        self.assertEqual(closed, opened - counts["pending"] - counts["partial"])


class TestPartialHeadQueueWithoutEpoll(TestPartialHeadQueue):
    """The same, on a platform without epoll: each raw socket is watched with
    ``loop.add_reader``."""

    def setUp(self):
        patcher = mock.patch.object(accept, "select", types.SimpleNamespace())
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_front_watches_with_add_reader(self):
        with LocalServer() as srv:
            self.assertIsNone(srv._front._epoll)
            self.assertEqual(http("GET", srv.base_url + "/", key=None)[0], 200)


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
