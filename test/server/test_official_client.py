"""The official ``qiskit-ionq`` client works against the local server unchanged."""

from __future__ import annotations

import unittest
import warnings

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, transpile
from qiskit.circuit.random import random_circuit
from qiskit_ionq import IonQProvider
from qiskit_ionq.exceptions import IonQAPIError

from qstore_qiskit.server import LocalServer
from qstore_qiskit.server.qasm import qasm3_available

from .helpers import assert_counts_match, exact_counts_distribution, ionq_env, map_to_clbits
from .openapi_check import validating_middleware

SHOTS = 2000


def raw_probabilities(backend, job) -> dict[str, float]:
    """The server's probabilities as sent (the client drops zero-count bins)."""
    record = backend.client.retrieve_job(job.job_id())
    return backend.client.get_results(record["results"]["probabilities"]["url"])


def ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n, n, name=f"ghz{n}")
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    qc.measure(range(n), range(n))
    return qc


def rotations() -> QuantumCircuit:
    qc = QuantumCircuit(3, 2, name="rot")
    qc.ry(0.7, 0)
    qc.rx(1.3, 1)
    qc.cp(0.4, 0, 1)
    qc.crx(0.9, 1, 2)
    qc.h(2)
    qc.rzz(0.5, 0, 2)
    qc.ccx(0, 2, 1)
    qc.measure(1, 0)
    qc.measure(2, 1)
    return qc


class TestOfficialClient(unittest.TestCase):
    """``IonQProvider(token, url=srv.url)`` end to end, both gatesets."""

    @classmethod
    def setUpClass(cls):
        cls.srv = LocalServer(profile="instant", api_key="test-key", seed=11).start()
        cls.env = ionq_env(cls.srv.url)
        cls.env.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls.provider = IonQProvider("test-key", url=cls.srv.url)
            cls.qis = cls.provider.get_backend("simulator")
            cls.native = cls.provider.get_backend("simulator", gateset="native")

    @classmethod
    def tearDownClass(cls):
        cls.env.stop()
        cls.srv.stop()

    def setUp(self):
        warnings.simplefilter("ignore")

    def _run(self, backend, circuits, **kwargs):
        job = backend.run(circuits, shots=SHOTS, sampler_seed=5, **kwargs)
        return job, job.result(wait=0.05, timeout=30)

    def test_backend_qubits_from_server(self):
        self.assertEqual(self.qis.num_qubits, self.srv.config.max_qubits)

    def test_single_circuit_qis(self):
        qc = ghz(3)
        _, result = self._run(self.qis, transpile(qc, self.qis, optimization_level=1))
        assert_counts_match(self, result.get_counts(), exact_counts_distribution(qc), SHOTS)

    def test_single_circuit_qis_rotations(self):
        qc = rotations()
        _, result = self._run(self.qis, transpile(qc, self.qis, optimization_level=1))
        assert_counts_match(self, result.get_counts(), exact_counts_distribution(qc), SHOTS)

    def test_multi_circuit_qis(self):
        circuits = [ghz(2), rotations(), ghz(4)]
        job, result = self._run(self.qis, transpile(circuits, self.qis, optimization_level=1))
        counts = result.get_counts()
        self.assertEqual(len(counts), 3)
        for qc, got in zip(circuits, counts):
            assert_counts_match(self, got, exact_counts_distribution(qc), SHOTS)
        record = self.srv.job_record(job.job_id())
        self.assertEqual(len(record["child_job_ids"]), 3)

    def test_single_circuit_native(self):
        qc = rotations()
        tqc = transpile(qc, self.native, optimization_level=1)
        self.assertTrue(set(tqc.count_ops()) <= {"gpi", "gpi2", "ms", "measure", "barrier"})
        _, result = self._run(self.native, tqc)
        assert_counts_match(self, result.get_counts(), exact_counts_distribution(qc), SHOTS)

    def test_multi_circuit_native(self):
        circuits = [ghz(3), rotations()]
        _, result = self._run(self.native, transpile(circuits, self.native,
                                                      optimization_level=1))
        for qc, got in zip(circuits, result.get_counts()):
            assert_counts_match(self, got, exact_counts_distribution(qc), SHOTS)

    def test_random_circuits_probabilities_exact(self):
        for seed in range(3):
            qc = random_circuit(4, 5, measure=True, seed=seed)
            tqc = transpile(qc, self.qis, optimization_level=1)
            job = self.qis.run(tqc, shots=100)
            job.result(wait=0.05)
            got = map_to_clbits(raw_probabilities(self.qis, job), tqc)
            expected = exact_counts_distribution(qc)
            for key in set(got) | set(expected):
                self.assertAlmostEqual(got.get(key, 0.0), expected.get(key, 0.0), places=9)

    def test_retrieve_job_and_metadata_echo(self):
        job = self.qis.run(ghz(2), shots=100, extra_metadata={"submission_id": "abc-123"})
        job.result(wait=0.05)
        again = self.qis.retrieve_job(job.job_id())
        self.assertEqual(set(again.result(wait=0.05).get_counts()), {"00", "11"})
        record = self.qis.client.retrieve_job(job.job_id())
        self.assertEqual(record["metadata"]["submission_id"], "abc-123")
        self.assertEqual(record["status"], "completed")

    def test_cancel_finished_job_and_delete(self):
        job = self.qis.run(ghz(2), shots=100)
        job.result(wait=0.05)
        # IonQ v0.4 cancels a completed job too: it becomes canceled, results dropped.
        response = self.qis.client.cancel_job(job.job_id())
        self.assertEqual(response, {"id": job.job_id(), "status": "canceled"})
        record = self.qis.client.retrieve_job(job.job_id())
        self.assertEqual(record["status"], "canceled")
        self.assertEqual(record["failure"]["code"], "SystemCancel")
        self.assertIsNone(record["results"])
        self.qis.client.delete_job(job.job_id())
        with self.assertRaises(IonQAPIError) as ctx:
            self.qis.client.retrieve_job(job.job_id())
        self.assertEqual(ctx.exception.status_code, 404)

    @unittest.skipUnless(qasm3_available(), "needs qiskit-qasm3-import")
    def test_mid_circuit_measurement_and_reset_qasm3(self):
        qr, cr = QuantumRegister(2, "q"), ClassicalRegister(3, "c")
        qc = QuantumCircuit(qr, cr)
        qc.x(0)
        qc.measure(0, 0)       # always 1
        qc.reset(0)
        qc.measure(0, 1)       # always 0 after reset
        qc.h(1)
        qc.measure(1, 2)       # 50/50
        job = self.qis.run(qc, shots=SHOTS)
        counts = job.result(wait=0.05).get_counts()
        self.assertEqual(set(counts) - {"001", "101"}, set())
        self.assertEqual(sum(counts.values()), SHOTS)
        assert_counts_match(self, counts, {"001": 0.5, "101": 0.5}, SHOTS)

    @unittest.skipUnless(qasm3_available(), "needs qiskit-qasm3-import")
    def test_mid_circuit_feedforward_qasm3(self):
        qc = QuantumCircuit(2, 2)
        qc.h(0)
        qc.measure(0, 0)
        with qc.if_test((qc.clbits[0], 1)):
            qc.x(1)
        qc.measure(1, 1)
        counts = self.qis.run(qc, shots=SHOTS).result(wait=0.05).get_counts()
        self.assertEqual(set(counts) - {"00", "11"}, set())
        assert_counts_match(self, counts, {"00": 0.5, "11": 0.5}, SHOTS)

    def test_noisy_simulation_is_sampled_with_memory(self):
        qc = ghz(3)
        noisy = self.provider.get_backend("simulator")
        noisy.set_options(noise_model="aria-1")  # qiskit-ionq keys memory off the option
        job = noisy.run(qc, shots=500, memory=True)
        result = job.result(wait=0.05)
        counts = result.get_counts()
        self.assertEqual(sum(counts.values()), 500)
        self.assertGreater(counts.get("000", 0) + counts.get("111", 0), 400)
        memory = result.get_memory()
        self.assertEqual(len(memory), 500)
        self.assertEqual({m: memory.count(m) for m in set(memory)}, dict(counts))

    def test_native_zz_family(self):
        """Forte-family targets transpile to ZZ; the server simulates ``zz`` (turns)."""
        backend = self.provider.get_backend("simulator", gateset="native")
        backend.set_options(noise_model="forte-1")
        tqc = transpile(ghz(3), backend, optimization_level=1)
        self.assertIn("zz", tqc.count_ops())
        counts = backend.run(tqc, shots=1000).result(wait=0.05).get_counts()
        self.assertGreater(counts.get("000", 0) + counts.get("111", 0), 900)
        ideal = self.provider.get_backend("simulator", gateset="native")
        job = ideal.run(tqc, shots=100)
        job.result(wait=0.05)
        probs = raw_probabilities(ideal, job)
        self.assertEqual(set(probs), {"0", "7"})
        self.assertAlmostEqual(probs["0"], 0.5, places=9)

    def test_qpu_backend_runs_with_noise(self):
        qpu = self.provider.get_backend("qpu.aria-1")
        counts = qpu.run(transpile(ghz(2), qpu, optimization_level=1), shots=300).result(
            wait=0.05).get_counts()
        self.assertEqual(sum(counts.values()), 300)

    def test_counts_seeded_server_reproducible(self):
        """Same server seed -> same sampled (noisy) distribution from the server."""
        results = []
        for _ in range(2):
            with LocalServer(seed=99) as srv, ionq_env(srv.url):
                backend = IonQProvider("k", url=srv.url).get_backend("simulator")
                job = backend.run(ghz(3), shots=300, noise_model="harmony")
                job.result(wait=0.05)
                results.append(raw_probabilities(backend, job))
        self.assertEqual(results[0], results[1])
        self.assertGreater(len(results[0]), 2)  # noise spread some weight

    def test_probabilities_sum_to_one(self):
        job = self.qis.run(transpile(rotations(), self.qis, optimization_level=1), shots=10)
        job.result(wait=0.05)
        probs = raw_probabilities(self.qis, job)
        self.assertTrue(all(k.isdigit() for k in probs))
        self.assertAlmostEqual(float(np.sum(list(probs.values()))), 1.0, places=9)


class TestOfficialClientLifecycle(unittest.TestCase):
    """qiskit-ionq's job lifecycle, sessions, estimates and calibrations (issue #14)."""

    def setUp(self):
        warnings.simplefilter("ignore")
        validation = validating_middleware()
        self.conformance = validation.__enter__()
        self.addCleanup(validation.__exit__, None, None, None)

    def tearDown(self):
        self.assertEqual(self.conformance, [], "responses that do not match the document")

    def _provider(self, srv):
        env = ionq_env(srv.url)
        env.start()
        self.addCleanup(env.stop)
        return IonQProvider("life-key", url=srv.url)

    def test_session_binds_jobs_and_ends(self):
        from qiskit_ionq import Session

        with LocalServer(api_key="life-key", seed=4) as srv:
            provider = self._provider(srv)
            qpu = provider.get_backend("qpu.aria-1")
            tqc = transpile(ghz(2), qpu, optimization_level=1)
            with Session(qpu, max_jobs=2, max_time=5, max_cost=500) as session:
                sid = session.session_id
                details = session.details()
                self.assertEqual(details["backend"], "qpu.aria-1")
                self.assertEqual(details["settings"]["job_count_limit"], 2)
                self.assertEqual(details["settings"]["duration_limit_min"], 5)
                self.assertEqual(details["settings"]["cost_limit"],
                                 {"unit": "usd", "value": 500.0})
                jobs = [qpu.run(tqc, shots=100) for _ in range(2)]
                for job in jobs:
                    job.result(wait=0.05)
                    self.assertEqual(qpu.client.retrieve_job(job.job_id())["session_id"], sid)
                with self.assertRaises(IonQAPIError) as ctx:  # third job: job_count_limit
                    qpu.run(tqc, shots=100)
                self.assertEqual(ctx.exception.status_code, 400)
            self.assertEqual(Session.from_id(sid, backend=qpu).details()["status"], "ended")

    def test_estimate_matches_job_cost(self):
        with LocalServer(api_key="life-key") as srv:
            client = self._provider(srv).get_backend("qpu.forte-1").client
            estimate = client.estimate_job(backend="qpu.forte-1", oneq_gates=40, twoq_gates=12,
                                           qubits=4, shots=2000, error_mitigation=True)
            self.assertEqual((estimate.shots, estimate.qubits, estimate.error_mitigation),
                             (2000, 4, True))
            self.assertEqual(estimate.cost_unit, "usd")
            self.assertGreater(estimate.cost, 0)
            self.assertIsNotNone(estimate.estimated_at)

    def test_cancel_queued_and_running(self):
        with LocalServer(api_key="life-key", profile="cloud", queue_wait=30.0,
                         rate_limit=None) as srv:
            backend = self._provider(srv).get_backend("simulator")
            queued = backend.run(ghz(2), shots=10)
            queued.cancel()
            self.assertEqual(queued.status().name, "CANCELLED")
            others = [backend.run(ghz(2), shots=10) for _ in range(2)]
            responses = backend.client.cancel_jobs([j.job_id() for j in others])
            self.assertEqual([r["status"] for r in responses], ["canceled", "canceled"])
        with LocalServer(api_key="life-key", inline_execution=False, job_overhead=30.0) as srv:
            backend = self._provider(srv).get_backend("simulator")
            running = backend.run(ghz(2), shots=10)
            while backend.client.retrieve_job(running.job_id())["status"] != "started":
                pass
            running.cancel()
            self.assertEqual(running.status().name, "CANCELLED")

    def test_calibrations(self):
        with LocalServer(api_key="life-key") as srv:
            client = self._provider(srv).get_backend("qpu.aria-1").client
            chars = client.get_calibration_data("qpu.aria-1", limit=3)
            self.assertEqual(len(chars), 3)
            self.assertEqual([c.date for c in chars], sorted((c.date for c in chars),
                                                              reverse=True))
            latest = client.get_latest_calibration("qpu.aria-1")
            self.assertEqual(latest.id, chars[0].id)
            self.assertEqual(latest.qubits, 25)
            self.assertIsNone(client.get_latest_calibration("simulator"))

    def test_noise_models_with_seeds_and_error_mitigation(self):
        with LocalServer(api_key="life-key") as srv:
            provider = self._provider(srv)
            for model in ("harmony-1", "aria-2", "forte-enterprise-1"):
                with self.subTest(model=model):
                    sim = provider.get_backend("simulator")
                    # qiskit-ionq sends the backend's sampler_seed as noise.seed
                    sim.set_options(noise_model=model, sampler_seed=17)
                    probs = []
                    for _ in range(2):
                        job = sim.run(ghz(3), shots=400)
                        job.result(wait=0.05)
                        self.assertEqual(sim.client.retrieve_job(job.job_id())["noise"]["seed"],
                                         17)
                        probs.append(raw_probabilities(sim, job))
                    self.assertEqual(probs[0], probs[1])  # the seed fixes the noise draw
            qpu = provider.get_backend("qpu.aria-1")
            job = qpu.run(transpile(ghz(2), qpu, optimization_level=1), shots=600,
                          error_mitigation={"debiasing": True})
            self.assertEqual(sum(job.result(wait=0.05).get_counts().values()), 600)


if __name__ == "__main__":
    unittest.main()
