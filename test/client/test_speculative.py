"""Speculative result fetches: a hit saves a round trip, a miss decodes nothing.

At the completion time the service predicts, the poller asks for the job record, its
results and (multicircuit) its first page of children at once. The two bodies come back
undecoded: only a job that turned out final has them decoded (a 1,000-circuit job's
results are 7 MB and its child list 1.2 MB of JSON), and a miss drops them.
"""

from __future__ import annotations

import unittest
from unittest import mock

from qstore_qiskit.client import BatchSubmitter
from qstore_qiskit.client import rest, result_fetcher
from qstore_qiskit.server import LocalServer

KEY = "speculative-test-key"
BELL = [{"gate": "h", "target": 0}, {"gate": "cnot", "control": 0, "target": 1}]


def _circuits(n: int) -> list[dict]:
    return [{"qubits": 2, "circuit": BELL, "name": f"c{i}"} for i in range(n)]


class TestSpeculativeFetch(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        # Every job waits 0.4 s in the queue (no network delay).
        cls.server = LocalServer(profile="cloud", api_key=KEY, queue_wait=0.4, network_delay=0.0,
                                 network_jitter=0.0)
        cls.server.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()
        super().tearDownClass()

    def run_job(self, predicted_seconds: float) -> tuple[list, dict, dict]:
        """Results, submitter stats and how many results and child-list bodies were
        decoded, for one 20-circuit job whose completion is predicted
        ``predicted_seconds`` after it is sent."""
        decoded = {"results": 0, "children": 0}
        real = rest.decode_json

        def counting(raw, what, status=200):
            if "results" in what:
                decoded["results"] += 1
            elif what == "GET jobs" or "parent_job_id" in what:
                decoded["children"] += 1
            return real(raw, what, status)

        with mock.patch.object(result_fetcher, "poll_hint", lambda doc: predicted_seconds), \
                mock.patch.object(result_fetcher, "decode_json", counting), \
                mock.patch.object(rest, "decode_json", counting):
            with BatchSubmitter(KEY, self.server.url, batch_window=0.0) as sub:
                results = sub.submit(_circuits(20), shots=100, gateset="qis", sampler_seed=3).result(30)
                stats = sub.stats()
        return results, stats, decoded

    def assert_bell(self, results: list) -> None:
        self.assertEqual(len(results), 20)
        for res in results:
            self.assertEqual(sum(res.counts.values()), 100)
            self.assertEqual(set(res.counts) - {0, 3}, set())

    def test_too_early_decodes_nothing(self) -> None:
        results, stats, decoded = self.run_job(0.0)  # predicted done at once: every guess is early
        self.assert_bell(results)
        self.assertGreaterEqual(stats["speculative_fetches"], 1)
        self.assertEqual(stats["speculative_hits"], 0)
        # The early child pages came back and were dropped undecoded: only the lists
        # fetched once the job was final were decoded.
        self.assertGreater(stats["requests"].get("GET /jobs"), 1)
        self.assertEqual(decoded, {"results": 1, "children": 1})

    def test_hit_uses_the_prefetched_bodies(self) -> None:
        results, stats, decoded = self.run_job(1.5)  # predicted after it finishes: a hit
        self.assert_bell(results)
        self.assertEqual(stats["speculative_hits"], 1)
        self.assertEqual(decoded, {"results": 1, "children": 1})  # the prefetched bodies
        # No second results or child-list request: the hit saved them.
        self.assertEqual(stats["requests"].get("GET results"), 1)
        self.assertEqual(stats["requests"].get("GET /jobs"), 1)



class TestSpeculationSchedule(unittest.TestCase):
    """The poll scheduled as speculative stays speculative when the RTT estimate shrinks."""

    def test_scheduled_speculation_survives_a_smaller_rtt(self) -> None:
        from qstore_qiskit.client.records import Watch  # pylint: disable=import-outside-toplevel

        sub = BatchSubmitter(KEY, "http://127.0.0.1:9")  # no request is made
        try:
            now = sub._loop.time()  # pylint: disable=protected-access
            # Scheduled with a 4 s round trip for a completion predicted 1 s from now: the
            # poll is due now and speculative even though the estimate fell to 20 ms since.
            watch = Watch(future=None, interval=0.1, next_poll=now, predicted_done=now + 1.0, spec_rtt=4.0)
            sub._http.rtt = 0.02  # pylint: disable=protected-access
            self.assertTrue(sub._fetcher._should_speculate(watch))  # pylint: disable=protected-access
            watch.spec_rtt = 0.0  # not scheduled by the prediction: 1 s early is a plain poll
            self.assertFalse(sub._fetcher._should_speculate(watch))  # pylint: disable=protected-access
        finally:
            sub.close()
