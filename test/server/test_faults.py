"""Seeded fault injection: every kind, counting, determinism, create-after-store rule."""

from __future__ import annotations

import time
import unittest

import requests

from qstore_qiskit.server import FAULT_KINDS, LocalServer
from qstore_qiskit.server.faults import FaultInjector

from .test_errors import bell_body


def drive(srv: LocalServer, creates: int = 30) -> list:
    """A fixed, sequential request sequence; returns what the client observed."""
    observed = []
    session = requests.Session()
    known_ids = []
    for i in range(creates):
        body = bell_body(metadata={"submission_id": f"sub-{i}"})
        try:
            r = session.post(srv.url + "/jobs", json=body, timeout=10)
            observed.append(("create", r.status_code))
            if r.status_code == 201:
                known_ids.append(r.json()["id"])
        except requests.ConnectionError:
            observed.append(("create", "dropped"))
            session = requests.Session()
        target = known_ids[-1] if known_ids else "missing"
        try:
            r = session.get(f"{srv.url}/jobs/{target}", timeout=10)
            observed.append(("get", r.status_code))
        except requests.ConnectionError:
            observed.append(("get", "dropped"))
            session = requests.Session()
    return observed


def wait_final(srv: LocalServer, timeout: float = 20.0) -> None:
    """Wait until every stored job is final."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(j["status"] in ("completed", "failed", "canceled") for j in srv.jobs()):
            return
        time.sleep(0.02)
    raise AssertionError("jobs did not finish")


class TestFaultSchedule(unittest.TestCase):
    """Same seed and request sequence -> same faults."""

    def run_once(self, seed: int):
        with LocalServer(seed=seed, fault_rate=0.3, slow_response_delay=0.05,
                         late_result_delay=0.05) as srv:
            observed = drive(srv)
            wait_final(srv)
            return observed, srv.fault_counts(), srv.jobs()

    def test_same_seed_same_faults(self):
        obs_a, counts_a, jobs_a = self.run_once(1234)
        obs_b, counts_b, jobs_b = self.run_once(1234)
        self.assertEqual(counts_a, counts_b)
        self.assertEqual(obs_a, obs_b)
        self.assertEqual([j["status"] for j in jobs_a], [j["status"] for j in jobs_b])
        self.assertGreater(sum(counts_a.values()), 0)
        self.assertEqual(set(counts_a), set(FAULT_KINDS))

    def test_different_seed_different_schedule(self):
        obs_a, _, _ = self.run_once(1)
        obs_c, _, _ = self.run_once(2)
        self.assertNotEqual(obs_a, obs_c)

    def test_counts_match_what_the_client_saw(self):
        observed, counts, jobs = self.run_once(77)
        seen = {code: 0 for code in (500, 502, 503, 504, "dropped")}
        for _, outcome in observed:
            if outcome in seen:
                seen[outcome] += 1
        self.assertEqual(seen[500], counts["http_500"])
        self.assertEqual(seen[502], counts["http_502"])
        self.assertEqual(seen[503], counts["http_503"])
        self.assertEqual(seen["dropped"], counts["drop_connection"]
                         + counts["create_response_lost"])
        # A stalled create is answered 504 and never stored.
        slow_creates = sum(1 for kind, o in observed if kind == "create" and o == 504)
        self.assertLessEqual(slow_creates, counts["slow_response"])
        # Jobs stored = creates answered 201 + creates whose answer was lost.
        ok_creates = sum(1 for kind, o in observed if kind == "create" and o == 201)
        self.assertEqual(len(jobs), ok_creates + counts["create_response_lost"])
        # No duplicate submission ids, whatever happened.
        sub_ids = [j["metadata"]["submission_id"] for j in jobs]
        self.assertEqual(len(sub_ids), len(set(sub_ids)))
        failed = [j for j in jobs if j["status"] == "failed"]
        self.assertEqual(len(failed), counts["job_failed"])

    def test_injector_draws_fixed_amount(self):
        a = FaultInjector(0.5, {k: 1.0 for k in FAULT_KINDS}, seed=3)
        b = FaultInjector(0.5, {k: 1.0 for k in FAULT_KINDS}, seed=3)
        seq_a = [a.draw(i % 3 == 0) for i in range(200)]
        seq_b = [b.draw(i % 3 == 0) for i in range(200)]
        self.assertEqual(seq_a, seq_b)
        self.assertTrue(all(k is None or k in FAULT_KINDS for k in seq_a))
        # job-level kinds only on creates
        for i, kind in enumerate(seq_a):
            if i % 3 != 0:
                self.assertNotIn(kind, ("job_failed", "late_result", "create_response_lost"))
        none = FaultInjector(0.0, {k: 1.0 for k in FAULT_KINDS}, seed=3)
        self.assertTrue(all(none.draw(True) is None for _ in range(50)))


class TestEachFaultKind(unittest.TestCase):
    """One kind at a time, at rate 1."""

    def server(self, kind: str, **kw) -> LocalServer:
        return LocalServer(seed=5, fault_rate=1.0, fault_weights={kind: 1.0},
                           slow_response_delay=0.2, late_result_delay=0.3, **kw)

    def test_http_errors(self):
        for kind, code in (("http_500", 500), ("http_502", 502), ("http_503", 503)):
            with self.server(kind) as srv:
                r = requests.get(srv.url + "/jobs", timeout=5)
                self.assertEqual(r.status_code, code)
                self.assertIn("error", r.json())
                r = requests.post(srv.url + "/jobs", json=bell_body(), timeout=5)
                self.assertEqual(r.status_code, code)
                self.assertEqual(srv.jobs(), [])
                self.assertEqual(srv.fault_counts()[kind], 2)
                # routes outside /jobs are never faulted
                r = requests.get(srv.url + "/backends", timeout=5)
                self.assertEqual(r.status_code, 200)

    def test_drop_connection(self):
        with self.server("drop_connection") as srv:
            with self.assertRaises(requests.ConnectionError):
                requests.get(srv.url + "/jobs", timeout=5)
            with self.assertRaises(requests.ConnectionError):
                requests.post(srv.url + "/jobs", json=bell_body(), timeout=5)
            self.assertEqual(srv.jobs(), [])  # dropped before storing
            self.assertEqual(srv.fault_counts()["drop_connection"], 2)

    def test_create_response_lost(self):
        with self.server("create_response_lost") as srv:
            body = bell_body(metadata={"submission_id": "lost-1"})
            with self.assertRaises(requests.ConnectionError):
                requests.post(srv.url + "/jobs", json=body, timeout=5)
            jobs = srv.jobs()
            self.assertEqual(len(jobs), 1)  # it reached the server
            self.assertEqual(srv.fault_counts()["create_response_lost"], 1)
            self.assertEqual(srv.fault_counts()["drop_connection"], 0)
            # GETs are not affected by this create-only kind
            listing = requests.get(srv.url + "/jobs",
                                   params={"metadata.submission_id": "lost-1"}, timeout=5)
            self.assertEqual(listing.status_code, 200)
            self.assertEqual([j["id"] for j in listing.json()["jobs"]], [jobs[0]["id"]])

    def test_slow_response_times_out_client(self):
        with self.server("slow_response") as srv:
            with self.assertRaises(requests.Timeout):
                requests.get(srv.url + "/jobs", timeout=0.05)
            r = requests.post(srv.url + "/jobs", json=bell_body(), timeout=5)
            self.assertEqual(r.status_code, 504)
            self.assertEqual(srv.jobs(), [])  # a stalled create is never stored
            r = requests.get(srv.url + "/jobs", timeout=5)  # slow but answered
            self.assertEqual(r.status_code, 200)
            self.assertEqual(srv.fault_counts()["slow_response"], 3)

    def test_job_failed(self):
        with self.server("job_failed") as srv:
            r = requests.post(srv.url + "/jobs", json=bell_body(), timeout=5)
            self.assertEqual(r.status_code, 201)
            job_id = r.json()["id"]
            wait_final(srv)
            record = srv.job_record(job_id)
            self.assertEqual(record["status"], "failed")
            self.assertEqual(record["failure"], {
                "code": "InternalError", "message": "Job failed during execution (injected fault)"})
            self.assertIsNone(record["results"])
            self.assertEqual(srv.fault_counts()["job_failed"], 1)

    def test_job_failed_through_official_client(self):
        import warnings

        from qiskit import QuantumCircuit
        from qiskit_ionq import IonQProvider
        from qiskit_ionq.exceptions import IonQJobFailureError

        from .helpers import ionq_env

        with self.server("job_failed") as srv, ionq_env(srv.url), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            backend = IonQProvider("k", url=srv.url).get_backend("simulator")
            qc = QuantumCircuit(1, 1)
            qc.h(0)
            qc.measure(0, 0)
            job = backend.run(qc, shots=10)
            with self.assertRaises(IonQJobFailureError):
                job.result(wait=0.02, timeout=10)

    def test_late_result(self):
        with self.server("late_result") as srv:
            r = requests.post(srv.url + "/jobs", json=bell_body(), timeout=5)
            self.assertEqual(r.status_code, 201)
            job_id = r.json()["id"]
            # Even on the instant profile the job is not done when the create returns.
            self.assertNotEqual(r.json()["status"], "completed")
            wait_final(srv)
            record = srv.job_record(job_id)
            self.assertEqual(record["status"], "completed")
            self.assertGreater(record["execution_duration_ms"],
                               record["predicted_execution_duration_ms"])
            self.assertEqual(srv.fault_counts()["late_result"], 1)

    def test_invalid_create_does_not_count_job_level_fault(self):
        with self.server("job_failed") as srv:
            r = requests.post(srv.url + "/jobs", json=bell_body(shots=0), timeout=5)
            self.assertEqual(r.status_code, 400)
            self.assertEqual(srv.fault_counts()["job_failed"], 0)


if __name__ == "__main__":
    unittest.main()
