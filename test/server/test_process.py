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

    def test_config_overrides_reach_the_child(self) -> None:
        with ServerProcess(max_job_work=100, job_store_bytes=None) as srv:
            self.assertIsInstance(srv.pid, int)
            body = bell_body(shots=200)
            status, _, err = http("POST", srv.url + "/jobs", body)
            self.assertEqual(status, 413, err)
            self.assertIn("at most 100", err["message"])
        self.assertIsNone(srv.pid)
        with self.assertRaises(RuntimeError):  # a bad field: the child refuses to start
            ServerProcess(not_a_field=1, start_timeout=20).start()

    def test_not_started(self) -> None:
        srv = ServerProcess()
        with self.assertRaises(RuntimeError):
            _ = srv.url


if __name__ == "__main__":
    unittest.main()
