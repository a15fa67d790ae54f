"""BatchSubmitter against the local IonQ-API server with injected faults.

Every circuit must get exactly one correct result (checked against
``qiskit.quantum_info.Statevector``) or a clear error, and the server's job log must
show no submission id twice.
"""

from __future__ import annotations

import collections
import concurrent.futures
import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate

from qstore_qiskit.client import BatchSubmitter, IonQClientError, IonQJobFailedError
from qstore_qiskit.payload import native_body
from qstore_qiskit.server import LocalServer


def random_native(num_qubits: int, layers: int, rng: np.random.Generator) -> QuantumCircuit:
    """A random circuit of GPI / GPI2 / MS gates touching every qubit."""
    qc = QuantumCircuit(num_qubits)
    for _ in range(layers):
        for q in range(num_qubits):
            gate = GPI2Gate(float(rng.random())) if rng.random() < 0.6 else GPIGate(float(rng.random()))
            qc.append(gate, [q])
        a, b = rng.choice(num_qubits, 2, replace=False)
        qc.append(MSGate(float(rng.random()), float(rng.random()), 0.25), [int(a), int(b)])
    return qc


def make_workload(n: int, seed: int) -> tuple[list[dict], list[np.ndarray]]:
    """``n`` distinct 3-qubit native bodies and their exact outcome probabilities."""
    rng = np.random.default_rng(seed)
    bodies, exact = [], []
    for i in range(n):
        qc = random_native(3, 2, rng)
        body = native_body(qc)
        bodies.append({"qubits": body["qubits"], "circuit": body["circuit"], "name": f"c{i}"})
        exact.append(Statevector(qc).probabilities())
    return bodies, exact


def assert_matches(test: unittest.TestCase, result, expected: np.ndarray) -> None:
    """Probabilities equal the exact ones (up to float error) for every outcome."""
    got = np.zeros(len(expected))
    for outcome, p in result.probabilities.items():
        got[outcome] = p
    np.testing.assert_allclose(got, expected, atol=1e-9)
    test.assertEqual(sum(result.counts.values()), result.shots)


class TestFaultInjection(unittest.TestCase):
    """2000 circuits from 8 threads under 5xx, 429, dropped connections, slow responses."""

    def test_thousands_of_circuits_exactly_once(self) -> None:
        n = 2000
        bodies, exact = make_workload(n, seed=2024)
        with LocalServer(
            profile="instant",
            seed=7,
            fault_rate=0.12,
            slow_response_delay=1.5,
            late_result_delay=0.3,
            rate_limit=400.0,
            rate_limit_burst=40,
        ) as srv:
            with BatchSubmitter(
                "any-key",
                srv.url,
                batch_window=0.01,
                max_circuits_per_job=40,
                max_jobs_in_flight=8,
                request_timeout=1.0,  # slow responses (1.5 s) time out: ambiguous creates
                max_retries=8,
                max_queue_wait_time=60,
            ) as sub:
                rng = np.random.default_rng(3)
                cuts = np.sort(rng.choice(np.arange(1, n), 160, replace=False))
                slices = [(int(a), int(b)) for a, b in zip([0, *cuts], [*cuts, n])]

                def worker(part: list[tuple[int, int]]) -> list[tuple[int, int, object]]:
                    futs = [(a, b, sub.submit(bodies[a:b], gateset="native", shots=1000)) for a, b in part]
                    out = []
                    for a, b, fut in futs:
                        try:
                            out.append((a, b, fut.result(120)))
                        except IonQClientError as exc:
                            out.append((a, b, exc))
                    return out

                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    outcomes = [o for chunk in pool.map(worker, [slices[i::8] for i in range(8)]) for o in chunk]
                stats = sub.stats()
            server_jobs = srv.jobs()
            faults = srv.fault_counts()
            server_stats = srv.stats()

        # Every circuit accounted for exactly once: a correct result or a clear error.
        seen = collections.Counter()
        errors = []
        for a, b, out in outcomes:
            if isinstance(out, BaseException):
                errors.append(out)
                seen.update(range(a, b))
                continue
            self.assertEqual(len(out), b - a)
            for k, res in enumerate(out):
                self.assertEqual(res.circuit_index, k)
                self.assertEqual(res.name, f"c{a + k}")
                assert_matches(self, res, exact[a + k])
                seen[a + k] += 1
        self.assertEqual(sorted(seen), list(range(n)))
        self.assertTrue(all(v == 1 for v in seen.values()))
        # The only errors allowed are jobs the server failed on purpose.
        self.assertTrue(all(isinstance(e, IonQJobFailedError) for e in errors), errors[:3])
        self.assertLessEqual(len({e.job_id for e in errors}), faults["job_failed"])

        # No duplicate submissions on the server, and every one of ours is there once.
        sids = [j["metadata"]["submission_id"] for j in server_jobs]
        self.assertEqual(len(sids), len(set(sids)))
        self.assertEqual(len(sids), stats["jobs_created"] + stats["jobs_adopted"])
        # Every circuit is on the server once, except that a job whose every request had
        # already failed (another of its parts was a failed job) is never created: those
        # callers have their error, and sending their circuits would only cost.
        failed_circuits = sum(b - a for a, b, out in outcomes if isinstance(out, BaseException))
        on_server = sum(j["circuits"] for j in server_jobs)
        self.assertLessEqual(on_server, n)
        self.assertGreaterEqual(on_server, n - failed_circuits)

        # Faults really happened and were retried.
        self.assertGreater(sum(faults.values()), 0)
        self.assertGreater(faults["create_response_lost"] + faults["slow_response"], 0)
        self.assertGreater(sum(stats["retries"].values()), 0)
        self.assertEqual(stats["circuits_submitted"], n)
        if server_stats["rate_limited"]:
            self.assertIn("429", stats["retries"])


class TestIdempotentCreate(unittest.TestCase):
    """A create whose answer is lost is adopted, never sent twice."""

    def test_every_create_response_lost(self) -> None:
        bodies, exact = make_workload(30, seed=5)
        with LocalServer(
            profile="instant", seed=1, fault_rate=1.0, fault_weights={"create_response_lost": 1.0}
        ) as srv:
            with BatchSubmitter("k", srv.url, max_circuits_per_job=10, max_retries=3) as sub:
                res = sub.submit(bodies).result(60)
                stats = sub.stats()
            jobs = srv.jobs()
        for r, e in zip(res, exact):
            assert_matches(self, r, e)
        self.assertEqual(len(jobs), 3)
        self.assertEqual(stats["jobs_adopted"], 3)
        self.assertEqual(stats.get("jobs_created", 0), 0)
        self.assertEqual(len({j["metadata"]["submission_id"] for j in jobs}), 3)


class TestRateLimit(unittest.TestCase):
    """429 answers are waited out (Retry-After) and nothing is lost."""

    def test_429(self) -> None:
        bodies, exact = make_workload(12, seed=9)
        # Retry-After is whole seconds (>= 1), so keep the number of 429 rounds small.
        with LocalServer(profile="instant", seed=2, rate_limit=30.0, rate_limit_burst=3) as srv:
            with BatchSubmitter("k", srv.url, use_batch_api=False, max_jobs_in_flight=16,
                                connection_pool_size=16, max_retries=10) as sub:
                res = sub.submit(bodies).result(120)
                stats = sub.stats()
            limited = srv.stats()["rate_limited"]
        for r, e in zip(res, exact):
            assert_matches(self, r, e)
        self.assertGreater(limited, 0)
        self.assertGreater(stats["retries"].get("429", 0), 0)
        self.assertEqual(stats["jobs_created"], 12)

    def test_client_side_rate_limit(self) -> None:
        bodies, exact = make_workload(20, seed=10)
        # The server's burst (10) is twice the client's (5 per 0.1 s) so that a scheduling
        # stall on a loaded machine, which delivers a client window's requests at once,
        # is not counted against the client; 16 unthrottled creates would still exceed it.
        with LocalServer(profile="instant", seed=3, rate_limit=100.0, rate_limit_burst=10) as srv:
            with BatchSubmitter("k", srv.url, use_batch_api=False, rate_limit=(5, 0.1),
                                max_jobs_in_flight=16) as sub:
                res = sub.submit(bodies).result(120)
            limited = srv.stats()["rate_limited"]
        for r, e in zip(res, exact):
            assert_matches(self, r, e)
        self.assertEqual(limited, 0)  # the client stays under the server's limit


if __name__ == "__main__":
    unittest.main()
