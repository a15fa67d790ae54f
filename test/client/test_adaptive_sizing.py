"""Unit tests of the adaptive job-sizing model of BatchSubmitter."""

from __future__ import annotations

import unittest
from collections import deque

from qstore_qiskit.client import BatchSubmitter


SIM = ("simulator", 1024)


class TestAdaptiveSizing(unittest.TestCase):
    """The execution-time fit and the number of concurrent jobs it leads to."""

    def setUp(self) -> None:
        # No request is made: the model and the split are pure functions of the state.
        self.sub = BatchSubmitter("k", "http://127.0.0.1:9", adaptive_batch_sizing=True, max_jobs_in_flight=4)

    def tearDown(self) -> None:
        self.sub.close()

    def feed(self, kind, samples) -> None:
        self.sub._coalescer._exec_samples[kind] = deque(samples, maxlen=32)  # pylint: disable=protected-access

    def test_fit_recovers_per_job_and_per_circuit_time(self) -> None:
        self.feed(SIM, [(n, 0.02 + 0.004 * n) for n in (24, 24, 2, 48, 6)])
        per_job, per_circuit = self.sub._coalescer._exec_model(SIM)  # pylint: disable=protected-access
        self.assertAlmostEqual(per_job, 0.02, places=9)
        self.assertAlmostEqual(per_circuit, 0.004, places=9)

    def test_one_size_only_counts_everything_per_circuit(self) -> None:
        self.feed(SIM, [(30, 0.3), (30, 0.32)])
        self.assertEqual(self.sub._coalescer._exec_model(SIM), (0.0, 0.31 / 30))  # pylint: disable=protected-access

    def test_no_model_spreads_over_free_slots(self) -> None:
        self.assertEqual(self.sub._coalescer._adaptive_parts(96, SIM), 4)  # pylint: disable=protected-access

    def test_no_model_keeps_the_prior_job_size(self) -> None:
        """Before any job finished, no job gets fewer than PRIOR_CIRCUITS_PER_JOB
        circuits: a stream's small buckets are not cut into one-circuit jobs."""
        from qstore_qiskit.client.coalescer import PRIOR_CIRCUITS_PER_JOB  # pylint: disable=import-outside-toplevel

        parts = self.sub._coalescer._adaptive_parts  # pylint: disable=protected-access
        self.assertEqual(PRIOR_CIRCUITS_PER_JOB, 4)
        self.assertEqual([parts(n, SIM) for n in (1, 3, 4, 7, 8, 11, 12, 16, 40)], [1, 1, 1, 1, 2, 2, 3, 4, 4])
        # Once a job has finished, the measured model decides instead of the prior.
        self.feed(SIM, [(n, 0.001 + 0.004 * n) for n in (1, 2, 3)])
        self.assertEqual(parts(3, SIM), 3)

    def test_per_job_cost_limits_the_split(self) -> None:
        # 96 circuits x 4 ms = 0.384 s of work; a 0.1 s per-job cost allows 3 jobs (>= 25 each).
        self.feed(SIM, [(n, 0.1 + 0.004 * n) for n in (10, 40, 80)])
        self.assertEqual(self.sub._coalescer._adaptive_parts(96, SIM), 3)  # pylint: disable=protected-access
        # A cheap per-job cost: every free slot is used.
        self.feed(SIM, [(n, 0.001 + 0.004 * n) for n in (10, 40, 80)])
        self.assertEqual(self.sub._coalescer._adaptive_parts(96, SIM), 4)  # pylint: disable=protected-access

    def test_models_are_per_shot_count(self) -> None:
        self.feed(SIM, [(n, 0.02 + 0.004 * n) for n in (24, 2, 48)])
        self.assertIsNone(self.sub._coalescer._exec_model(("simulator", 4096)))  # pylint: disable=protected-access

    def test_qpu_batches_are_not_split(self) -> None:
        self.assertEqual(self.sub._coalescer._adaptive_parts(96, ("qpu.aria-1", 1024)), 1)  # pylint: disable=protected-access

    def test_capacity_learnt_from_a_batch_that_waited(self) -> None:
        from qstore_qiskit.client.records import Job as _Job  # pylint: disable=import-outside-toplevel

        def finish(batch, runs):
            self.sub._coalescer._batch_runs[batch] = (len(runs), [])  # pylint: disable=protected-access
            for sub, start, end in runs:
                job = _Job("sid", {"backend": "simulator", "shots": 1024}, [], batch=batch)
                doc = {k: f"2026-01-01T00:00:{v:06.3f}Z"
                       for k, v in (("submitted_at", sub), ("started_at", start), ("completed_at", end))}
                self.sub._coalescer._learn_capacity(job, doc)  # pylint: disable=protected-access

        # A fast service that finished each job before the next create arrived: no
        # evidence about its capacity.
        finish(1, [(1.0, 1.0, 1.0), (1.001, 1.001, 1.001), (1.002, 1.002, 1.002)])
        self.assertNotIn("simulator", self.sub._coalescer._capacity)  # pylint: disable=protected-access
        # Nor are a few milliseconds of scheduling delay on a fast server.
        finish(9, [(1.0, 1.0, 1.001), (1.0, 1.0, 1.001), (1.0, 1.002, 1.003)])
        self.assertNotIn("simulator", self.sub._coalescer._capacity)  # pylint: disable=protected-access
        # Four of six jobs ran at once; two had been submitted with them but started only
        # when the first ones completed.
        finish(2, [(1.0, 1.15, 1.3), (1.0, 1.15, 1.3), (1.01, 1.16, 1.31), (1.01, 1.16, 1.31),
                   (1.01, 1.3, 1.45), (1.02, 1.31, 1.46)])
        self.assertEqual(self.sub._coalescer._capacity["simulator"], 4)  # pylint: disable=protected-access
        self.assertEqual(self.sub._coalescer._adaptive_parts(96, SIM), 4)  # pylint: disable=protected-access
        # Every 16th batch probes one job more than the capacity.
        self.sub.max_jobs_in_flight = 8
        self.assertEqual(self.sub._coalescer._adaptive_parts(96, SIM), 4)  # pylint: disable=protected-access
        self.sub._coalescer._batch_seq = 15  # pylint: disable=protected-access
        self.assertEqual(self.sub._coalescer._adaptive_parts(96, SIM), 5)  # pylint: disable=protected-access
        # A later batch of six that all ran at once raises it.
        finish(3, [(2.0, 2.1, 2.2)] * 6)
        self.assertEqual(self.sub._coalescer._capacity["simulator"], 6)  # pylint: disable=protected-access

    def test_split_is_balanced_and_keeps_order(self) -> None:
        items = list(range(10))
        parts = self.sub._coalescer._split(items, cap=4, kind=("qpu.aria-1", 1024))  # pylint: disable=protected-access
        self.assertEqual([len(p) for p in parts], [4, 3, 3])
        self.assertEqual([x for p in parts for x in p], items)


if __name__ == "__main__":
    unittest.main()
