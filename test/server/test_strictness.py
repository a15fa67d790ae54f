"""The server is as strict as IonQ's cloud (issue #14), so that code passing here passes
there, while accepting what the production clients send."""

from __future__ import annotations

import unittest

from qstore_qiskit.server import LocalServer
from qstore_qiskit.server import simulator as sim

from .helpers import http


def body_of(gates, gateset="native", qubits=2, **extra):
    body = {"type": "ionq.circuit.v1", "backend": "simulator", "shots": 100,
            "input": {"gateset": gateset, "qubits": qubits, "circuit": gates}}
    body.update(extra)
    return body


H = [{"gate": "h", "target": 0}]


class TestStrictness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = LocalServer(seed=2, enforce_native_2q=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def post(self, body, version="v0.4"):
        status, _, payload = http("POST", f"{self.srv.base_url}/{version}/jobs", body=body)
        return status, payload

    def assert400(self, body, key=None, fragment=None):
        status, err = self.post(body)
        self.assertEqual(status, 400, err)
        if key is not None:
            self.assertIn(key, err["validation"]["keys"])
        if fragment is not None:
            self.assertIn(fragment, err["message"])
        return err

    def assert201(self, body):
        status, payload = self.post(body)
        self.assertEqual(status, 201, payload)
        return payload["id"]

    def record(self, job_id):
        return http("GET", f"{self.srv.url}/jobs/{job_id}")[2]

    def test_top_level_fields(self):
        self.assert400(body_of(H, "qis", extra_field=1), "extra_field")
        self.assert201(body_of(H, "qis", lang="json"))  # cirq-ionq sends it
        no_type = body_of(H, "qis")
        del no_type["type"]
        self.assert400(no_type, "type")
        no_backend = body_of(H, "qis")
        del no_backend["backend"]
        self.assert400(no_backend, "backend")
        # v0.3 bodies still carry neither (inferred type, "target")
        v03 = {"target": "simulator", "shots": 10, "input": {"qubits": 1, "circuit": H}}
        self.assertEqual(self.post(v03, "v0.3")[0], 200)

    def test_metadata(self):
        self.assert400(body_of(H, "qis", metadata={"n": 1}), "metadata.n", "strings")
        self.assert400(body_of(H, "qis", metadata={"x": {"a": "b"}}), "metadata.x")
        self.assert400(body_of(H, "qis", metadata={f"k{i}": "v" for i in range(11)}),
                       "metadata", "at most 10")
        self.assert201(body_of(H, "qis", metadata={f"k{i}": "v" for i in range(10)}))

    def test_shots(self):
        job = self.assert201(body_of(H, "qis", shots="250"))  # cirq-ionq's string shots
        self.assertEqual(self.record(job)["shots"], 250)
        for shots in ("1e2", "abc", "", -1, 0, True, 2.5, 10**7):
            with self.subTest(shots=shots):
                self.assert400(body_of(H, "qis", shots=shots), "shots")

    def test_native_parameter_ranges(self):
        for gate in ({"gate": "gpi", "target": 0, "phase": 1.01},
                     {"gate": "gpi2", "target": 0, "phase": -1.5},
                     {"gate": "ms", "targets": [0, 1], "phases": [0, 2]},
                     {"gate": "ms", "targets": [0, 1], "phases": [0, 0], "angle": 0.26},
                     {"gate": "ms", "targets": [0, 1], "phases": [0, 0], "angle": -0.01},
                     {"gate": "zz", "targets": [0, 1], "angle": 1.5}):
            with self.subTest(gate=gate):
                self.assert400(body_of([gate]), fragment="outside")
        self.assert201(body_of([{"gate": "gpi", "target": 0, "phase": -1.0},
                                {"gate": "ms", "targets": [0, 1], "phases": [1, -1],
                                 "angle": 0.25},
                                {"gate": "zz", "targets": [0, 1], "angle": -0.25}]))

    def test_zz_with_phase_as_cirq_sends_it(self):
        gates = [{"gate": "gpi2", "target": 0, "phase": 0.25},
                 {"gate": "gpi2", "target": 1, "phase": 0.25}]
        angle = self.assert201(body_of(gates + [{"gate": "zz", "targets": [0, 1],
                                                 "angle": 0.125}]))
        phase = self.assert201(body_of(gates + [{"gate": "zz", "targets": [0, 1],
                                                 "phase": 0.125}]))
        get = lambda j: http("GET", f"{self.srv.url}/jobs/{j}/results/probabilities")[2]
        self.assertEqual(get(angle), get(phase))

    def test_native_two_qubit_gate_per_qpu(self):
        ms = [{"gate": "ms", "targets": [0, 1], "phases": [0, 0]}]
        zz = [{"gate": "zz", "targets": [0, 1], "angle": 0.25}]
        self.assert400(body_of(ms, backend="qpu.forte-1"), fragment="not native")
        self.assert400(body_of(zz, backend="qpu.aria-1"), fragment="not native")
        self.assert201(body_of(zz, backend="qpu.forte-1"))
        self.assert201(body_of(ms, backend="qpu.aria-2"))
        self.assert201(body_of(ms + zz))  # the simulator takes both

    def test_nop_gate(self):
        job = self.assert201(body_of([{"gate": "nop", "target": 1},
                                      {"gate": "gpi", "target": 0, "phase": 0}]))
        probs = http("GET", f"{self.srv.url}/jobs/{job}/results/probabilities")[2]
        self.assertEqual(probs, {"1": 1.0})

    def test_debiasing_shot_minimum(self):
        mitigated = {"error_mitigation": {"debiasing": True}}
        self.assert400(body_of(H, "qis", backend="qpu.aria-1", shots=499,
                               settings=mitigated), "shots", "500")
        self.assert201(body_of(H, "qis", backend="qpu.aria-1", shots=500, settings=mitigated))
        self.assert201(body_of(H, "qis", backend="qpu.aria-1", shots=10,
                               settings={"error_mitigation": {"debiasing": False}}))
        self.assert400(body_of(H, "qis", settings={"error_mitigation": {"debiasing": "yes"}}),
                       "settings.error_mitigation.debiasing")
        self.assert400(body_of(H, "qis", settings={"unknown": {}}), "settings.unknown")

    def test_noise_models_and_seed(self):
        for model in ("ideal", "harmony", "harmony-1", "harmony-2", "aria-1", "aria-2",
                      "forte-1", "forte-enterprise-1"):
            with self.subTest(model=model):
                job = self.assert201(body_of(H, "qis", noise={"model": model, "seed": 5}))
                rec = self.record(job)
                family = model.split("-")[0]
                expected = model if model in sim.NOISE_MODELS else family
                self.assertEqual(rec["noise"], {"model": expected, "seed": 5})
                self.assertEqual(rec["status"], "completed")
        self.assert400(body_of(H, "qis", noise={"model": "aria-3"}), "noise.model")
        self.assert400(body_of(H, "qis", noise={"model": "ideal", "seed": "x"}), "noise.seed")
        self.assert400(body_of(H, "qis", noise={"model": "ideal", "extra": 1}), "noise.extra")
        # qiskit-ionq sends "seed": null when no sampler seed is set
        self.assert201(body_of(H, "qis", noise={"model": "ideal", "seed": None}))

    def test_documented_widths(self):
        def wide(n, **extra):
            return body_of([{"gate": "h", "target": n - 1}], "qis", qubits=n, dry_run=True,
                           **extra)

        self.assert201(wide(29))  # IonQ's ideal simulator width
        self.assertEqual(self.post(wide(30))[0], 422)
        self.assert201(wide(25, noise={"model": "aria-1"}))  # noisy: up to the QPU's width
        self.assertEqual(self.post(wide(26, noise={"model": "aria-1"}))[0], 422)
        self.assertEqual(self.post(wide(12, noise={"model": "harmony-2"}))[0], 422)
        self.assert201(wide(25, backend="qpu.aria-1"))
        # Forte is 36 qubits wide: valid (a dry run simulates nothing), but a real run is
        # beyond this server's simulation budget
        self.assert201(wide(36, backend="qpu.forte-1"))
        status, err = self.post(dict(wide(36, backend="qpu.forte-1"), dry_run=False))
        self.assertEqual(status, 413, err)
        self.assertIn("amplitudes", err["message"])

if __name__ == "__main__":
    unittest.main()
