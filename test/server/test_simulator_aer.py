"""The qiskit-aer simulation path: exact gates, IonQ's noise models, widths, bounded results.

The noisy references are built independently of the server's code: the circuit is made of
qiskit-ionq's gate classes (or Qiskit's standard gates), every gate is followed by an
explicit :func:`qiskit_aer.noise.depolarizing_error` instruction with the documented rate,
and qiskit-aer's density-matrix method gives the exact noisy distribution. The server's
seeded histograms must pass a chi-square test against it (p > 1e-4) and fail one against
the ideal distribution (so the noise is really there).
"""

from __future__ import annotations

import dataclasses
import json
import math
import unittest
from unittest import mock

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import UnitaryGate
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Operator, Statevector
from qiskit_aer import AerSimulator
from qiskit_aer.noise import depolarizing_error
from qiskit_ionq.helpers import qiskit_circ_to_ionq_circ
from scipy.stats import chi2

from qstore_qiskit.server import aer_simulator as aer
from qstore_qiskit.server.circuits import parse_circuit
from qstore_qiskit.server.config import ServerConfig
from qstore_qiskit.server.jobs import Job, parse_job_request
from qstore_qiskit.server.noise_models import NOISE_MODELS
from qstore_qiskit.server.runner import simulate_job

from .helpers import random_native_circuit

_QIS_BASIS = ["h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx", "sxdg", "rx", "ry", "rz", "p",
              "cx", "cy", "cz", "ch", "crx", "cry", "crz", "cp", "swap", "rxx", "ryy", "rzz"]


def _parse(qc: QuantumCircuit, gateset: str):
    gates, _, _ = qiskit_circ_to_ionq_circ(qc, gateset)
    return parse_circuit(gates, gateset, qc.num_qubits, 29, 10**6), gates


def _reference_noisy(qc: QuantumCircuit, model) -> np.ndarray:
    """Exact noisy distribution: Aer density matrix, explicit depolarizing after each gate."""
    ref = QuantumCircuit(qc.num_qubits)
    for inst in qc.data:
        qubits = [qc.find_bit(q).index for q in inst.qubits]
        ref.append(UnitaryGate(Operator(inst.operation)), qubits)
        ref.append(depolarizing_error(model.gate_error(len(qubits)), len(qubits)), qubits)
    ref.save_probabilities()
    result = AerSimulator(method="density_matrix").run(ref).result()
    probs = np.asarray(result.data(0)["probabilities"])
    if model.readout:  # each bit flips independently: the n-fold kron of a 2x2 stochastic
        flip = np.array([[1 - model.readout, model.readout],
                         [model.readout, 1 - model.readout]])
        full = np.ones((1, 1))
        for _ in range(qc.num_qubits):
            full = np.kron(full, flip)
        probs = full @ probs
    return probs / probs.sum()


def _chi2_pvalue(histogram: dict[int, int], probs: np.ndarray) -> float:
    """Pearson chi-square p-value of ``histogram`` against ``probs`` (bins with an
    expected count under 5 are pooled into one)."""
    shots = sum(histogram.values())
    expected = probs * shots
    observed = np.zeros(probs.size)
    for k, c in histogram.items():
        observed[k] = c
    big = expected >= 5
    obs = list(observed[big]) + [observed[~big].sum()]
    exp = list(expected[big]) + [expected[~big].sum()]
    pairs = [(o, e) for o, e in zip(obs, exp) if e > 0]
    # Outcomes the model gives probability 0 must never be observed.
    assert all(observed[probs <= 0] == 0), "an impossible outcome was sampled"
    stat = sum((o - e) ** 2 / e for o, e in pairs)
    return float(chi2.sf(stat, len(pairs) - 1))


def _job(body: dict, max_qubits: int = 29) -> Job:
    spec = parse_job_request(body, ServerConfig(max_qubits=max_qubits))
    job = Job(id="j", spec=spec, seq=1)
    for i in range(len(spec.circuits) if spec.type.endswith("multi-circuit.v1") else 0):
        job.children.append(Job(id=f"j-{i}", spec=spec, seq=2 + i, parent_id="j",
                                circuit_index=i))
    return job


def _body(gates, n: int, gateset: str = "qis", shots: int = 1000, model: str | None = None,
          backend: str = "simulator", seed: int = 7, settings=None) -> dict:
    body = {"type": "ionq.circuit.v1", "backend": backend, "shots": shots,
            "input": {"gateset": gateset, "qubits": n, "circuit": gates}}
    if model is not None:
        body["noise"] = {"model": model, "seed": seed}
    if settings is not None:
        body["settings"] = settings
    return body


def _ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    qc.h(0)
    for q in range(1, n):
        qc.cx(q - 1, q)
    return qc


class TestExactGates(unittest.TestCase):
    """Aer, fed the server's matrices, gives Statevector's distribution."""

    def test_random_native_and_qis_circuits(self):
        rng = np.random.default_rng(31)
        circuits = [(random_native_circuit(2 + i % 5, 25, rng), "native") for i in range(6)]
        for seed in range(6):
            qc = transpile(random_circuit(2 + seed % 4, 8, max_operands=3, seed=seed),
                           basis_gates=_QIS_BASIS + ["ccx"], optimization_level=0,
                           seed_transpiler=seed)
            circuits.append((qc, "qis"))
        for qc, gateset in circuits:
            parsed, _ = _parse(qc, gateset)
            ops = aer.circuit_ops(parsed, decompose_wide=False)
            result = aer.simulate_ideal(qc.num_qubits, ops, 100, np.random.default_rng(0))
            expected = Statevector(qc).probabilities()
            got = np.zeros(expected.size)
            for k, v in result.probabilities.items():
                got[k] = v
            np.testing.assert_allclose(got, expected, atol=1e-10)
            self.assertEqual(sum(result.histogram.values()), 100)
            # A permuted layout (a debiasing variant) maps back to the same distribution.
            layout = list(reversed(range(qc.num_qubits)))
            permuted = aer.simulate_circuit(parsed, 100, NOISE_MODELS["ideal"],
                                            np.random.default_rng(0), layout=layout)
            got_p = np.zeros(expected.size)
            for k, v in permuted.probabilities.items():
                got_p[k] = v
            np.testing.assert_allclose(got_p, expected, atol=1e-10)

    def test_wide_gate_decomposition_is_exact(self):
        qc = QuantumCircuit(4)
        qc.h([0, 1, 2])
        qc.ccx(0, 1, 3)
        qc.mcp(0.7, [0, 1, 2], 3)
        parsed, _ = _parse(qc, "qis")
        ops = aer.circuit_ops(parsed, decompose_wide=True)
        self.assertTrue(all(len(q) <= 2 for _, q, _ in ops))
        result = aer.simulate_ideal(4, ops, 10, np.random.default_rng(0))
        expected = Statevector(qc).probabilities()
        got = np.zeros(16)
        for k, v in result.probabilities.items():
            got[k] = v
        np.testing.assert_allclose(got, expected, atol=1e-9)


class TestNoiseModels(unittest.TestCase):
    """The documented table and its Aer noise model."""

    def test_documented_rates_and_widths(self):
        self.assertEqual((NOISE_MODELS["aria-1"].error_1q, NOISE_MODELS["aria-1"].error_2q),
                         (0.0005, 0.0133))
        self.assertEqual(NOISE_MODELS["aria-2"].error_2q, 0.01856)
        self.assertAlmostEqual(NOISE_MODELS["forte-1"].error_2q, 0.004949333333333333)
        self.assertEqual(NOISE_MODELS["aria-1"].max_qubits, 25)
        self.assertEqual(NOISE_MODELS["harmony"].max_qubits, 11)
        self.assertEqual(NOISE_MODELS["ideal"].max_qubits, 29)
        self.assertEqual(set(NOISE_MODELS), {"ideal", "harmony", "harmony-1", "harmony-2",
                                             "aria-1", "aria-2", "forte-1",
                                             "forte-enterprise-1"})

    def test_channel_is_ionqs_kraus_form(self):
        # IonQ: K_0 = sqrt(1 - 3r/4) I, K_i = sqrt(r/4) sigma_i. Aer's depolarizing_error(r)
        # is the same channel: compare their action on every Pauli.
        from qiskit.quantum_info import Kraus, SuperOp

        r = NOISE_MODELS["aria-1"].error_2q
        paulis = [np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]),
                  np.diag([1, -1])]
        kraus = [math.sqrt(1 - 15 * r / 16) * np.eye(4)]
        kraus += [math.sqrt(r / 16) * np.kron(a, b) for i, a in enumerate(paulis)
                  for j, b in enumerate(paulis) if (i, j) != (0, 0)]
        ionq = SuperOp(Kraus(kraus))
        ours = SuperOp(depolarizing_error(r, 2))
        np.testing.assert_allclose(ours.data, ionq.data, atol=1e-12)
        self.assertAlmostEqual(NOISE_MODELS["aria-1"].pauli_error_probability(2), 15 * r / 16)


class TestNoisyAgainstDensityMatrix(unittest.TestCase):
    """Seeded server histograms against the independent density-matrix reference."""

    SHOTS = 20000

    def _circuits(self):
        rng = np.random.default_rng(77)
        qis = QuantumCircuit(4)
        qis.h(0)
        qis.cx(0, 1)
        qis.ry(0.7, 2)
        qis.rzz(0.9, 1, 2)
        qis.cx(2, 3)
        qis.crx(0.4, 3, 0)
        return [(_ghz(4), "qis"), (random_native_circuit(3, 20, rng), "native"), (qis, "qis")]

    def _check(self, model_name: str, force_trajectories: bool = False):
        model = NOISE_MODELS[model_name]
        for index, (qc, gateset) in enumerate(self._circuits()):
            parsed, gates = _parse(qc, gateset)
            job = _job(_body(gates, qc.num_qubits, gateset, self.SHOTS, model_name,
                             seed=100 + index))
            if force_trajectories:
                with mock.patch.object(aer, "DENSITY_MATRIX_MAX_QUBITS", 0):
                    simulate_job(job, None)
            else:
                simulate_job(job, None)
            self.assertEqual(sum(job.histogram.values()), self.SHOTS)
            reference = _reference_noisy(qc, model)
            pvalue = _chi2_pvalue(job.histogram, reference)
            self.assertGreater(pvalue, 1e-4, f"{model_name} circuit {index}: p={pvalue}")
            ideal = Statevector(qc).probabilities()
            # Noise is really applied: the ideal distribution is rejected (outcomes the
            # ideal circuit never gives appear, or the chi-square fails).
            impossible = sum(c for k, c in job.histogram.items() if ideal[k] < 1e-12)
            if impossible == 0:
                self.assertLess(_chi2_pvalue(job.histogram, ideal), 1e-6)
            probabilities = json.loads(job.probabilities_json)
            self.assertAlmostEqual(sum(probabilities.values()), 1.0, places=12)

    def test_aria_2_density_matrix_path(self):
        self._check("aria-2")

    def test_aria_2_trajectory_path(self):
        self._check("aria-2", force_trajectories=True)

    def test_harmony_with_readout_both_paths(self):
        self._check("harmony")
        self._check("harmony", force_trajectories=True)

    def test_seed_reproduces_and_differs(self):
        qc = _ghz(3)
        _, gates = _parse(qc, "qis")
        runs = []
        for seed in (5, 5, 6):
            job = _job(_body(gates, 3, model="aria-1", seed=seed, shots=4000))
            simulate_job(job, None)
            runs.append(job.histogram)
        self.assertEqual(runs[0], runs[1])
        self.assertNotEqual(runs[0], runs[2])


class TestWidthsAndMemory(unittest.TestCase):
    """Documented widths within the memory budget; bounded results for dense states."""

    def test_ghz_25_ideal(self):
        qc = _ghz(25)
        _, gates = _parse(qc, "qis")
        job = _job(_body(gates, 25, shots=200))
        simulate_job(job, 1)
        self.assertEqual(json.loads(job.probabilities_json),
                         {"0": 0.5, str(2**25 - 1): 0.5})
        self.assertEqual(set(job.histogram), {0, 2**25 - 1})
        self.assertEqual(sum(job.histogram.values()), 200)

    def test_25_qubit_state_vector_within_budget(self):
        qc = QuantumCircuit(25)
        qc.ry(0.8, 0)
        qc.cx(0, 24)
        qc.rz(0.3, 24)
        parsed, gates = _parse(qc, "qis")
        result = aer.simulate_circuit(parsed, 100, NOISE_MODELS["ideal"],
                                      np.random.default_rng(1))
        self.assertEqual(result.method, "statevector")  # not Clifford
        # single precision: 2**25 amplitudes x 8 bytes = 256 MiB, within the budget
        self.assertEqual(result.required_memory_mb, 256)
        self.assertLessEqual(result.required_memory_mb, aer.MEMORY_BUDGET_MB)
        p1 = math.sin(0.4) ** 2
        self.assertEqual(set(result.probabilities), {0, 1 + 2**24})
        self.assertAlmostEqual(result.probabilities[0], 1 - p1, places=6)

    def test_20_qubit_noisy_job(self):
        qc = QuantumCircuit(20)
        qc.ry(0.4, range(20))
        for q in range(0, 10, 2):
            qc.cx(q, q + 1)
        parsed, gates = _parse(qc, "qis")
        job = _job(_body(gates, 20, shots=20, model="aria-1", seed=3))
        simulate_job(job, None)
        self.assertEqual(sum(job.histogram.values()), 20)
        self.assertLessEqual(len(json.loads(job.probabilities_json)), 20)
        result = aer.simulate_circuit(parsed, 5, NOISE_MODELS["aria-1"],
                                      np.random.default_rng(2))
        self.assertEqual(result.method, "statevector-trajectories")
        self.assertEqual(result.required_memory_mb, 16)  # 2**20 x 16 bytes

    def test_wide_noisy_clifford_runs_on_stabilizer(self):
        parsed, gates = _parse(_ghz(25), "qis")
        job = _job(_body(gates, 25, shots=300, model="aria-1", seed=3))
        simulate_job(job, None)
        self.assertEqual(sum(job.histogram.values()), 300)
        # Mostly the two GHZ outcomes; depolarizing errors add others.
        top = job.histogram.get(0, 0) + job.histogram.get(2**25 - 1, 0)
        self.assertGreater(top, 150)
        self.assertGreater(len(job.histogram), 2)
        result = aer.simulate_circuit(parsed, 5, NOISE_MODELS["aria-1"],
                                      np.random.default_rng(2))
        self.assertEqual(result.method, "stabilizer-trajectories")

    def test_dense_20_qubit_ideal_result_is_bounded(self):
        qc = QuantumCircuit(20)
        qc.h(range(20))
        _, gates = _parse(qc, "qis")
        job = _job(_body(gates, 20, shots=500))
        simulate_job(job, 1)
        probabilities = json.loads(job.probabilities_json)
        self.assertLessEqual(len(probabilities), 500)  # sampled frequencies, not 2**20
        self.assertAlmostEqual(sum(probabilities.values()), 1.0, places=12)
        self.assertTrue(all(v * 500 == round(v * 500) for v in probabilities.values()))

    def test_sparse_wide_ideal_is_exact(self):
        qc = QuantumCircuit(16)
        qc.h(3)
        qc.ry(0.8, 9)
        qc.cx(9, 15)
        parsed, _ = _parse(qc, "qis")
        result = aer.simulate_circuit(parsed, 1000, NOISE_MODELS["ideal"],
                                      np.random.default_rng(4))
        expected = {k: v for k, v in Statevector(qc).probabilities_dict().items() if v > 1e-12}
        self.assertEqual(len(result.probabilities), len(expected))
        for bits, p in expected.items():
            self.assertAlmostEqual(result.probabilities[int(bits, 2)], p, places=10)

    def test_noise_model_width_is_enforced(self):
        # The request parser should already refuse this; the simulation checks again.
        _, gates = _parse(_ghz(12), "qis")
        job = _job(_body(gates, 12, shots=10))
        job.spec = dataclasses.replace(job.spec, noise_model="harmony")
        with self.assertRaisesRegex(ValueError, "at most 11 qubits"):
            simulate_job(job, None)


if __name__ == "__main__":
    unittest.main()


class TestNoisyPrograms(unittest.TestCase):
    """OpenQASM jobs with a noise model: Aer trajectories with the same per-gate model."""

    def _run(self, source: str, shots: int, model: str, seed: int) -> Job:
        job = _job({"type": "ionq.qasm3.v1", "backend": "simulator", "shots": shots,
                    "noise": {"model": model, "seed": seed},
                    "input": {"format": "openqasm", "data": source}})
        simulate_job(job, None)
        return job

    def test_terminal_measurements_match_density_matrix(self):
        source = ('OPENQASM 2.0; include "qelib1.inc"; qreg q[3]; creg c[3]; '
                  "h q[0]; cx q[0],q[1]; ry(0.7) q[2]; cx q[1],q[2]; measure q -> c;")
        job = self._run(source, 8000, "aria-2", 21)
        qc = QuantumCircuit(3)
        qc.h(0)
        qc.cx(0, 1)
        qc.ry(0.7, 2)
        qc.cx(1, 2)
        probabilities = json.loads(job.probabilities_json)
        histogram = {int(k): round(v * 8000) for k, v in probabilities.items()}
        self.assertEqual(sum(histogram.values()), 8000)
        self.assertGreater(_chi2_pvalue(histogram, _reference_noisy(qc, NOISE_MODELS["aria-2"])),
                           1e-4)
        again = self._run(source, 8000, "aria-2", 21)
        self.assertEqual(again.probabilities_json, job.probabilities_json)

    @unittest.skipUnless(__import__("qstore_qiskit.server.qasm", fromlist=["x"])
                         .qasm3_available(), "needs qiskit-qasm3-import")
    def test_mid_circuit_measurement_with_noise(self):
        source = ('OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[3] c;'
                  "h q[0]; c[0] = measure q[0]; if (c[0]) x q[1]; c[1] = measure q[1];"
                  "reset q[0]; x q[0]; c[2] = measure q[0];")
        job = self._run(source, 4000, "harmony", 5)
        probabilities = json.loads(job.probabilities_json)
        main = probabilities.get("4", 0) + probabilities.get("7", 0)
        self.assertGreater(main, 0.95)  # the ideal outcomes 0b100 and 0b111
        self.assertLess(main, 1.0)  # harmony's gate and readout errors
        self.assertAlmostEqual(probabilities.get("4", 0), 0.5, delta=0.05)


class TestWorkEstimate(unittest.TestCase):
    """The work estimate a request cap can use grows as the simulation does."""

    def test_estimate(self):
        wide, _ = _parse(_ghz(20), "qis")
        small, _ = _parse(_ghz(4), "qis")
        ideal, aria = NOISE_MODELS["ideal"], NOISE_MODELS["aria-1"]
        self.assertEqual(aer.estimate_work(small, 1000, ideal), 4 * 16)
        self.assertEqual(aer.estimate_work(small, 1000, aria), 4 * 256)
        # trajectories: one run plus the expected shots with an error, linear in shots
        one = aer.estimate_work(wide, 1000, aria)
        two = aer.estimate_work(wide, 2000, aria)
        base = 20 * 2.0**20
        p_error = 1 - (1 - aria.pauli_error_probability(1)) * (
            1 - aria.pauli_error_probability(2)) ** 19
        self.assertAlmostEqual(one / base, 1 + 1000 * p_error)
        self.assertAlmostEqual((two - one) / base, 1000 * p_error)


class TestOverHttp(unittest.TestCase):
    """A noisy job through the real server matches the density-matrix reference."""

    def test_noisy_job_via_local_server(self):
        from qstore_qiskit.server import LocalServer  # pylint: disable=import-outside-toplevel

        from .helpers import http  # pylint: disable=import-outside-toplevel

        qc = _ghz(3)
        qc.ry(0.5, 1)
        _, gates = _parse(qc, "qis")
        body = _body(gates, 3, shots=20000, model="aria-2", seed=17)
        with LocalServer(seed=1) as srv:
            status, _, created = http("POST", srv.url + "/jobs", body=body, key="k")
            self.assertIn(status, (200, 201), created)
            record = srv.job_record(created["id"])
            self.assertEqual(record["status"], "completed")
            status, _, hist = http("GET", srv.base_url + record["results"]["histogram"]["url"],
                                   key="k")
        self.assertEqual(status, 200)
        histogram = {int(k): v for k, v in hist.items()}
        reference = _reference_noisy(qc, NOISE_MODELS["aria-2"])
        self.assertGreater(_chi2_pvalue(histogram, reference), 1e-4)


class TestPauliInsertion(unittest.TestCase):
    """The fast Pauli insertion builds the same circuit as the plain builder."""

    def test_same_operator(self):
        rng = np.random.default_rng(12)
        parsed, _ = _parse(random_native_circuit(4, 15, rng), "native")
        ops = aer.circuit_ops(parsed, decompose_wide=True)
        base = aer.aer_circuit(4, ops)
        for pattern in (((0, 1),), ((3, 7), (9, 15)), ((14, 2), (0, 3), (5, 11))):
            pattern = tuple((i, c % (4 ** len(ops[i][1]))) or (i, 1) for i, c in pattern)
            pattern = tuple((i, c if c else 1) for i, c in pattern)
            fast = aer._with_paulis(base, ops, pattern)
            plain = aer.aer_circuit(4, ops, paulis=dict(pattern))
            self.assertEqual(fast.size(), plain.size())
            self.assertTrue(Operator(fast).equiv(Operator(plain)))
            self.assertFalse(Operator(fast).equiv(Operator(base)))


class TestFewShots(unittest.TestCase):
    """A wide sparse ideal job with few shots still reports exact probabilities once its
    shots saw the whole support (3 shots, 2 outcomes: more than half the shots distinct)."""

    def test_three_shot_ghz(self):
        parsed, _ = _parse(_ghz(18), "qis")
        result = aer.simulate_circuit(parsed, 3, NOISE_MODELS["ideal"],
                                      np.random.default_rng(0))
        self.assertEqual(set(result.histogram), {0, 2**18 - 1})
        self.assertEqual(result.probabilities, {0: 0.5, 2**18 - 1: 0.5})
        one = aer.simulate_circuit(parsed, 1, NOISE_MODELS["ideal"], np.random.default_rng(0))
        self.assertIsNone(one.probabilities)  # one outcome seen: not the whole support
