"""Crash recovery through the backend's ``journal_path`` option."""

from __future__ import annotations

import os
import tempfile
import time
import unittest

from qiskit import QuantumCircuit

from qstore_qiskit import QStoreProvider
from qstore_qiskit.server import LocalServer


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


def _wait_for_job_record(path: str, timeout: float = 30.0) -> None:
    """Wait until the journal records a created job (the batch window must pass first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                if any('"job_id"' in line for line in handle):
                    return
        time.sleep(0.01)
    raise AssertionError("the journal never recorded a job")


class TestBackendJournal(unittest.TestCase):
    def test_undelivered_jobs_are_recovered_by_another_backend(self):
        tmp = tempfile.mkdtemp()
        journal = os.path.join(tmp, "jobs.jsonl")
        with LocalServer(profile="cloud", api_key="journal-key", seed=1) as srv:
            first = QStoreProvider(token="journal-key", url=srv.url)
            # A second process (here: another provider) reads the journal while the first
            # one has not collected its results yet. Its backend is made first: making one
            # asks the service (GET /whoami, /backends), which must not eat into the window.
            second = QStoreProvider(token="journal-key", url=srv.url)
            try:
                other = second.get_backend("ionq_simulator")
                backend = first.get_backend("ionq_simulator", journal_path=journal)
                job = backend.run([bell()] * 3, shots=200)
                _wait_for_job_record(journal)
                recovered = other.recover_jobs(journal, timeout=60)
                job.result(timeout=60)
            finally:
                second.close()
                first.close()
        self.assertTrue(os.path.exists(journal))
        circuits = [r for entry in recovered.values() for r in (entry["results"] or [])]
        self.assertEqual(len(circuits), 3)
        for result in circuits:
            self.assertEqual(sum(result.counts.values()), 200)
            self.assertTrue(set(result.counts) <= {0, 3})

    def test_recover_without_journal_is_a_clear_error(self):
        with QStoreProvider() as provider:
            with self.assertRaisesRegex(ValueError, "journal"):
                provider.get_backend("ionq_simulator").recover_jobs()

    def test_bad_journal_path_option(self):
        with QStoreProvider() as provider:
            with self.assertRaisesRegex(ValueError, "journal_path"):
                provider.get_backend("ionq_simulator").set_options(journal_path=3)


if __name__ == "__main__":
    unittest.main()
