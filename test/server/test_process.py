"""Tests of ServerProcess: the local server in a child process."""

from __future__ import annotations

import unittest

from qstore_qiskit.server import ServerProcess

from .helpers import http
from .test_errors import bell_body


class TestServerProcess(unittest.TestCase):
    """Start, serve, count, authenticate and stop."""

    def test_serves_and_counts_like_local_server(self) -> None:
        with ServerProcess(profile="instant", seed=3, api_key="right-key") as srv:
            self.assertTrue(srv.url.endswith("/v0.4"))
            status, _, job = http("POST", srv.url + "/jobs", bell_body(), key="right-key")
            self.assertEqual(status, 201, job)
            status, _, _ = http("GET", srv.url + "/jobs", key="wrong-key")
            self.assertEqual(status, 401)
            stats = srv.stats()
            self.assertEqual(stats["jobs_created"], 1)
            self.assertEqual(stats["by_route_status"]["create_job 201"], 1)
            self.assertEqual(stats["unauthorized"], 1)
            self.assertNotIn("right-key", repr(srv))
            proc = srv._proc  # pylint: disable=protected-access
        self.assertIsNotNone(proc.poll())  # the child is gone
        srv.stop()  # idempotent

    def test_not_started(self) -> None:
        srv = ServerProcess()
        with self.assertRaises(RuntimeError):
            _ = srv.url


if __name__ == "__main__":
    unittest.main()
