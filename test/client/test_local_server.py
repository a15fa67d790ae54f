"""BatchSubmitter features against the local IonQ-API server (no faults)."""

from __future__ import annotations

import json
import os
import tempfile
import unittest

from qstore_qiskit.client import BatchSubmitter, IonQRequestError, QueueTimeoutError
from qstore_qiskit.server import LocalServer

from .mini_server import MiniServer
from .test_faults import assert_matches, make_workload


class TestLocalServer(unittest.TestCase):
    """Cap discovery, adaptive sizing, A/B mode, retrieval from a fresh submitter."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.bodies, cls.exact = make_workload(120, seed=77)

    def test_cap_from_backend_record(self) -> None:
        with LocalServer(profile="instant", seed=1, max_circuits_per_job=25) as srv:
            with BatchSubmitter("k", srv.url) as sub:  # cap=None: asks GET /backends/{b}
                sub.submit(self.bodies[:1]).result(60)
                res = sub.submit(self.bodies).result(60)
                stats = sub.stats()
            jobs = srv.jobs()
        for r, e in zip(res, self.exact):
            assert_matches(self, r, e)
        self.assertEqual(stats["jobs_resplit"], 0)
        # As few jobs as the cap allows, balanced: 120 circuits -> 5 jobs of 24.
        self.assertEqual(len(jobs), 1 + -(-len(self.bodies) // 25))
        self.assertLessEqual(max(j["circuits"] for j in jobs), 25)
        self.assertLessEqual(max(j["circuits"] for j in jobs[1:]) - min(j["circuits"] for j in jobs[1:]), 1)

    def test_cap_learnt_from_413(self) -> None:
        with LocalServer(profile="instant", seed=1, max_circuits_per_job=25) as srv:
            with BatchSubmitter("k", srv.url, max_circuits_per_job=60) as sub:  # too high
                res = sub.submit(self.bodies).result(60)
                stats = sub.stats()
            jobs = srv.jobs()
        for r, e in zip(res, self.exact):
            assert_matches(self, r, e)
        self.assertEqual(stats["jobs_resplit"], 2)  # both 60-circuit parts refused once
        self.assertTrue(all(j["circuits"] <= 25 for j in jobs))
        self.assertEqual(sum(j["circuits"] for j in jobs), 120)

    def test_adaptive_sizing(self) -> None:
        with LocalServer(profile="instant", seed=2) as srv:
            with BatchSubmitter("k", srv.url, adaptive_batch_sizing=True, max_jobs_in_flight=4,
                                max_circuits_per_job=100) as sub:
                first = sub.submit(self.bodies).result(60)
                after_first = sub.stats()
                second = sub.submit(self.bodies).result(60)
                stats = sub.stats()
        for r, e in zip(first + second, self.exact + self.exact):
            assert_matches(self, r, e)
        # Without measurements the first batch is spread over the 4 job slots. (The
        # second batch's split depends on the capacity learnt from the first one's start
        # times, which a loaded machine delays: not asserted.)
        self.assertEqual(after_first["circuits_per_job"]["max"], 30)
        self.assertEqual(after_first["circuits_per_job"]["n"], 4)
        self.assertIsNotNone(stats["exec_time"])

    def test_max_jobs_limits_the_adaptive_split(self) -> None:
        with LocalServer(profile="instant", seed=2) as srv:
            with BatchSubmitter("k", srv.url, adaptive_batch_sizing=True, max_jobs_in_flight=4,
                                max_circuits_per_job=100) as sub:
                # Without measurements adaptive sizing would spread 120 circuits over 4 jobs.
                res = sub.submit(self.bodies, max_jobs=2).result(60)
                # The cap (100) needs more jobs than max_jobs: the cap wins (150 -> 2 x 75).
                capped = sub.submit(self.bodies + self.bodies[:30], max_jobs=1).result(60)
                with self.assertRaises(ValueError):
                    sub.submit(self.bodies, max_jobs=0)
            jobs = srv.jobs()
        for r, e in zip(res, self.exact):
            assert_matches(self, r, e)
        for r, e in zip(capped, self.exact + self.exact[:30]):
            assert_matches(self, r, e)
        self.assertEqual(sorted(j["circuits"] for j in jobs), [60, 60, 75, 75])

    def test_one_job_per_circuit(self) -> None:
        with LocalServer(profile="instant", seed=3) as srv:
            with BatchSubmitter("k", srv.url, use_batch_api=False) as sub:
                res = sub.submit(self.bodies[:12]).result(60)
            jobs = srv.jobs()
        self.assertEqual(len(jobs), 12)
        self.assertTrue(all(j["type"] == "ionq.circuit.v1" for j in jobs))
        for r, e in zip(res, self.exact):
            assert_matches(self, r, e)

    def test_retrieve_from_another_submitter(self) -> None:
        with LocalServer(profile="instant", seed=4) as srv:
            with BatchSubmitter("k", srv.url) as sub:
                res = sub.submit(self.bodies[:5]).result(60)
            with BatchSubmitter("k", srv.url) as fresh:  # e.g. after a restart
                (again,) = fresh.retrieve([res[0].job_id], timeout=60)
        self.assertEqual([r.probabilities for r in again], [r.probabilities for r in res])
        self.assertEqual([r.child_job_id for r in again], [r.child_job_id for r in res])

    def test_request_error_carries_server_message(self) -> None:
        bad = {"qubits": 1, "circuit": [{"gate": "x", "target": 0}]}  # not a native gate
        with LocalServer(profile="instant", seed=6) as srv:
            with BatchSubmitter("k", srv.url) as sub:
                with self.assertRaises(IonQRequestError) as ctx:
                    sub.submit([bad], gateset="native").result(60)
        self.assertEqual(ctx.exception.status, 400)
        self.assertIn("unknown gate 'x'", str(ctx.exception))

    def test_seeded_counts_reproducible(self) -> None:
        with LocalServer(profile="instant", seed=5) as srv:
            with BatchSubmitter("k", srv.url) as sub:
                a = sub.submit(self.bodies[:3], sampler_seed=42).result(60)
                b = sub.submit(self.bodies[:3], sampler_seed=42).result(60)
        self.assertEqual([r.counts for r in a], [r.counts for r in b])


class TestJournal(unittest.TestCase):
    """A crashed process recovers its results from the journal."""

    def test_recover(self) -> None:
        circuits = [{"qubits": 2, "circuit": [{"gate": "x", "target": 1}]},
                    {"qubits": 2, "circuit": [{"gate": "x", "target": 0}]}]
        with tempfile.TemporaryDirectory() as tmp, MiniServer() as srv:
            path = os.path.join(tmp, "journal.jsonl")
            srv.mode = "never_done"
            with BatchSubmitter("k", srv.url, journal_path=path, max_queue_wait_time=0.2) as sub:
                fut = sub.submit(circuits, name="exp-1")
                with self.assertRaises(QueueTimeoutError):
                    fut.result(30)
            with open(path, encoding="utf-8") as fh:
                records = [json.loads(line) for line in fh]
            self.assertEqual([r["event"] for r in records], ["submit", "created"])
            self.assertEqual(records[0]["circuits"], [[fut.request_tag, 0], [fut.request_tag, 1]])
            # A second journal where the process died before recording the answer.
            lost = os.path.join(tmp, "lost.jsonl")
            with open(lost, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(records[0]) + "\n")
                fh.write('{"event": "crea')  # torn last line
            srv.mode = "ok"
            with BatchSubmitter("k", srv.url) as sub:
                for journal in (path, lost):
                    recovered = sub.recover(journal, timeout=30)
                    (entry,) = recovered.values()
                    self.assertEqual(entry["job_id"], records[1]["job_id"])
                    self.assertEqual(entry["name"], "exp-1")
                    self.assertEqual([r.probabilities for r in entry["results"]], [{2: 1.0}, {1: 1.0}])

    def test_delivered_jobs_not_recovered(self) -> None:
        with tempfile.TemporaryDirectory() as tmp, MiniServer() as srv:
            path = os.path.join(tmp, "journal.jsonl")
            with BatchSubmitter("k", srv.url, journal_path=path) as sub:
                sub.submit([{"qubits": 1, "circuit": [{"gate": "x", "target": 0}]}]).result(30)
                self.assertEqual(sub.recover(timeout=30), {})


if __name__ == "__main__":
    unittest.main()
