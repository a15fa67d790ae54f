"""Unit tests of the adaptive job-sizing model of BatchSubmitter."""

from __future__ import annotations

import unittest
from collections import deque

from qstore_qiskit.client import BatchSubmitter


class TestAdaptiveSizing(unittest.TestCase):
    """The execution-time fit and the number of concurrent jobs it leads to."""

    def setUp(self) -> None:
        # No request is made: the model and the split are pure functions of the state.
        self.sub = BatchSubmitter("k", "http://127.0.0.1:9", adaptive_batch_sizing=True, max_jobs_in_flight=4)

    def tearDown(self) -> None:
        self.sub.close()

    def feed(self, backend: str, samples) -> None:
        self.sub._exec_samples[backend] = deque(samples, maxlen=32)  # pylint: disable=protected-access

    def test_fit_recovers_per_job_and_per_circuit_time(self) -> None:
        self.feed("simulator", [(n, 0.02 + 0.004 * n) for n in (24, 24, 2, 48, 6)])
        per_job, per_circuit = self.sub._exec_model("simulator")  # pylint: disable=protected-access
        self.assertAlmostEqual(per_job, 0.02, places=9)
        self.assertAlmostEqual(per_circuit, 0.004, places=9)

    def test_one_size_only_counts_everything_per_circuit(self) -> None:
        self.feed("simulator", [(30, 0.3), (30, 0.32)])
        self.assertEqual(self.sub._exec_model("simulator"), (0.0, 0.31 / 30))  # pylint: disable=protected-access

    def test_no_model_spreads_over_free_slots(self) -> None:
        self.assertEqual(self.sub._adaptive_parts(96, "simulator"), 4)  # pylint: disable=protected-access
        self.assertEqual(self.sub._adaptive_parts(3, "simulator"), 3)  # pylint: disable=protected-access

    def test_per_job_cost_limits_the_split(self) -> None:
        # 96 circuits x 4 ms = 0.384 s of work; a 0.1 s per-job cost allows 3 jobs (>= 25 each).
        self.feed("simulator", [(n, 0.1 + 0.004 * n) for n in (10, 40, 80)])
        self.assertEqual(self.sub._adaptive_parts(96, "simulator"), 3)  # pylint: disable=protected-access
        # A cheap per-job cost: every free slot is used.
        self.feed("simulator", [(n, 0.001 + 0.004 * n) for n in (10, 40, 80)])
        self.assertEqual(self.sub._adaptive_parts(96, "simulator"), 4)  # pylint: disable=protected-access

    def test_qpu_batches_are_not_split(self) -> None:
        self.assertEqual(self.sub._adaptive_parts(96, "qpu.aria-1"), 1)  # pylint: disable=protected-access

    def test_split_is_balanced_and_keeps_order(self) -> None:
        items = list(range(10))
        parts = self.sub._split(items, cap=4, backend="qpu.aria-1")  # pylint: disable=protected-access
        self.assertEqual([len(p) for p in parts], [4, 3, 3])
        self.assertEqual([x for p in parts for x in p], items)


if __name__ == "__main__":
    unittest.main()
