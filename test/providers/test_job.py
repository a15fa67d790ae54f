"""``QStoreJob.job_id()`` and ``status()`` while the IonQ jobs run (qiskit-ionq's meaning).

A local server in a slow profile (every job waits seconds in the queue): ``job_id()``
must answer as soon as the jobs exist, with the job still queued, and the id must be
one a fresh provider can retrieve the same results with.
"""

from __future__ import annotations

import unittest
from concurrent.futures import ThreadPoolExecutor

from qiskit import QuantumCircuit
from qiskit.providers import JobStatus

from qstore_qiskit import QStoreProvider
from qstore_qiskit.server import LocalServer

KEY = "job-id-test-key"
PENDING = {"submitted", "ready", "started", "running"}


def flips(bits: int, n: int = 2, name: str | None = None) -> QuantumCircuit:
    qc = QuantumCircuit(n, n, name=name or f"flip{bits}")
    for q in range(n):
        if bits >> q & 1:
            qc.x(q)
    qc.measure(range(n), range(n))
    return qc


class TestJobIdBeforeResults(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        # Every job waits 3 s in the queue; at most 4 circuits per IonQ job.
        cls.server = LocalServer(profile="cloud", api_key=KEY, queue_wait=3.0, network_delay=0.0,
                                 network_jitter=0.0, max_circuits_per_job=4)
        cls.server.start()
        cls.provider = QStoreProvider(token=KEY, url=cls.server.url)
        cls.backend = cls.provider.get_backend("simulator")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.provider.close()
        cls.server.stop()
        super().tearDownClass()

    def assert_pending(self, job, job_id: str) -> None:
        """The job's results are not here and the service still runs its IonQ jobs."""
        self.assertNotEqual(job.status(), JobStatus.DONE)
        self.assertFalse(job.in_final_state())
        for ionq_id in job.ionq_job_ids():
            self.assertIn(self.server.job_record(ionq_id)["status"], PENDING, job_id)

    def retrieved_counts(self, job_id: str):
        fresh = QStoreProvider(token=KEY, url=self.server.url)  # nothing cached from the run
        try:
            retrieved = fresh.get_backend("simulator").retrieve_job(job_id)
            self.assertEqual(retrieved.job_id(), job_id)
            return retrieved.result().get_counts()
        finally:
            fresh.close()

    def results_requests(self) -> int:
        """Result fetches the server has answered so far (any job)."""
        return int(self.server.stats()["by_route"].get("get_probabilities", 0))

    def test_job_id_returns_while_queued(self):
        fetched = self.results_requests()
        job = self.backend.run(flips(1), shots=50, sampler_seed=3)
        job_id = job.job_id()
        self.assertEqual(self.results_requests(), fetched)  # no result was asked for
        self.assert_pending(job, job_id)
        self.assertIn(job.status(), (JobStatus.QUEUED, JobStatus.RUNNING))
        self.assertEqual(job.ionq_job_ids(), [job_id])  # a plain IonQ job id
        self.assertNotIn("+", job_id)
        counts = job.result().get_counts()
        self.assertEqual(counts, {"01": 50})
        self.assertGreater(self.results_requests(), fetched)  # the count above can move
        self.assertEqual(job.status(), JobStatus.DONE)
        self.assertEqual(job.job_id(), job_id)
        self.assertEqual(job.result().job_id, job_id)
        self.assertEqual(self.retrieved_counts(job_id), counts)

    def test_composite_id_of_a_split_run_while_queued(self):
        circuits = [flips(b % 4) for b in range(6)]  # 6 circuits, 4 per job: two IonQ jobs
        job = self.backend.run(circuits, shots=20)
        job_id = job.job_id()
        self.assert_pending(job, job_id)
        self.assertEqual(job_id.split("+"), job.ionq_job_ids())  # two whole jobs, in order
        self.assertEqual(len(job.ionq_job_ids()), 2)
        counts = job.result().get_counts()
        self.assertEqual(counts, [{format(b % 4, "02b"): 20} for b in range(6)])
        self.assertEqual(self.retrieved_counts(job_id), counts)

    def test_composite_ids_of_coalesced_runs_while_queued(self):
        # Two concurrent run() calls share one IonQ job: each id names only its circuits.
        self.backend.set_options(batch_window=0.3)
        try:
            with ThreadPoolExecutor(2) as pool:
                jobs = list(pool.map(lambda b: self.backend.run([flips(b, name=f"c{b}")] * 2, shots=10), (1, 2)))
        finally:
            self.backend.set_options(batch_window=0.005)
        ids = [job.job_id() for job in jobs]
        for job, job_id in zip(jobs, ids):
            self.assert_pending(job, job_id)
        self.assertEqual(len({jid.split("[")[0] for jid in ids}), 1, ids)  # one shared IonQ job
        self.assertTrue(all("[" in jid for jid in ids), ids)
        for job, job_id, bits in zip(jobs, ids, ("01", "10")):
            counts = job.result().get_counts()
            self.assertEqual(counts, [{bits: 10}] * 2)
            self.assertEqual(self.retrieved_counts(job_id), counts)

    def test_cancelled_before_creation(self):
        from qiskit.providers import JobError

        self.backend.set_options(batch_window=5.0)  # held in the coalescer
        try:
            job = self.backend.run(flips(3), shots=10)
            self.assertEqual(job.status(), JobStatus.INITIALIZING)  # no IonQ job yet
            self.assertTrue(job.cancel())
        finally:
            self.backend.set_options(batch_window=0.005)
        with self.assertRaises(JobError):
            job.job_id()
        self.assertEqual(job.status(), JobStatus.CANCELLED)


if __name__ == "__main__":
    unittest.main()


class TestResultSendsWaitingCircuits(unittest.TestCase):
    """``result()``/``job_id()`` tell the submitter the caller now waits: the circuits
    still held for the batch window go out at once (simulator)."""

    def test_result_does_not_wait_for_the_window(self) -> None:
        with LocalServer(profile="instant", api_key=KEY) as server:
            provider = QStoreProvider(token=KEY, url=server.url)
            try:
                backend = provider.get_backend("simulator")
                backend.set_options(batch_window=5.0, template_cache_dir=False)  # 5 s window
                jobs = [backend.run(flips(bits), shots=50) for bits in range(3)]
                # Within 3 s only if result() sent the waiting circuits: one job for all three.
                counts = [job.result(timeout=3).get_counts() for job in jobs]
                self.assertEqual(counts, [{format(b, "02b"): 50} for b in range(3)])
                self.assertEqual(len(server.jobs()), 1)
                late = backend.run(flips(1), shots=50)
                with ThreadPoolExecutor(1) as pool:  # job_id() sends it too: known within 3 s
                    self.assertTrue(pool.submit(late.job_id).result(timeout=3))
                self.assertEqual(late.result(timeout=3).get_counts(), {"01": 50})
            finally:
                provider.close()
