"""The submitter's job-id hook: ``future.jobs_created`` resolves when the IonQ jobs exist.

Against the real local server in a slow profile (a queue wait of seconds per job), so
the jobs are demonstrably still queued when their ids are known.
"""

from __future__ import annotations

import concurrent.futures
import unittest

from qstore_qiskit.client import BatchSubmitter, IonQRequestError
from qstore_qiskit.client.records import Placement
from qstore_qiskit.server import LocalServer

KEY = "created-hook-key"


def x_circuit(bits: int, qubits: int = 2) -> dict:
    return {"qubits": qubits, "circuit": [{"gate": "x", "target": q} for q in range(qubits) if bits >> q & 1]}


class TestJobsCreated(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        # Jobs wait 3 s in the queue: ids are known long before results.
        cls.server = LocalServer(profile="cloud", api_key=KEY, queue_wait=3.0, network_delay=0.0,
                                 network_jitter=0.0, max_circuits_per_job=3)
        cls.server.start()
        cls.sub = BatchSubmitter(KEY, cls.server.url, max_circuits_per_job=3)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sub.close(wait=False)
        cls.server.stop()
        super().tearDownClass()

    def test_placements_before_results_and_match_them(self):
        fut = self.sub.submit([x_circuit(b) for b in (0, 1, 2, 3, 1)], shots=10, gateset="qis")
        placements = fut.jobs_created.result(60)
        # Known while every job still waits in the server's queue: no result yet.
        self.assertFalse(fut.done())
        states = {self.server.job_record(p.job_id)["status"] for p in placements}
        self.assertNotIn("completed", states)
        self.assertEqual(len(placements), 5)
        self.assertTrue(all(isinstance(p, Placement) for p in placements))
        # Split at the cap of 3: two jobs, circuits in order within each.
        self.assertEqual([(p.position, p.size) for p in placements], [(0, 3), (1, 3), (2, 3), (0, 2), (1, 2)])
        self.assertEqual(len({p.job_id for p in placements}), 2)
        results = fut.result(60)
        # The results name the same jobs, circuit for circuit.
        self.assertEqual([r.job_id for r in results], [p.job_id for p in placements])
        self.assertEqual([r.counts for r in results], [{b: 10} for b in (0, 1, 2, 3, 1)])

    def test_failed_submission_fails_the_hook(self):
        bad = {"qubits": 1, "circuit": [{"gate": "no-such-gate", "target": 0}]}
        fut = self.sub.submit([bad], shots=10, gateset="qis")
        with self.assertRaises(IonQRequestError):
            fut.jobs_created.result(60)
        with self.assertRaises(IonQRequestError):
            fut.result(60)

    def test_cancelled_submission_cancels_the_hook(self):
        sub = BatchSubmitter(KEY, self.server.url, batch_window=5.0)  # held in the coalescer
        try:
            fut = sub.submit([x_circuit(1)], shots=10, gateset="qis")
            self.assertTrue(fut.cancel())
            with self.assertRaises(concurrent.futures.CancelledError):
                fut.jobs_created.result(10)
        finally:
            sub.close(wait=False)

    def test_empty_submission(self):
        fut = self.sub.submit([], shots=10)
        self.assertEqual(fut.jobs_created.result(1), [])


if __name__ == "__main__":
    unittest.main()
