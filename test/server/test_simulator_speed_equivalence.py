"""The batched small-circuit kernel and the fast result paths give the old results.

``simulate_small_batch`` (used by ``simulate_job`` for 2-12 qubit circuits) is checked
against ``qiskit.quantum_info.Statevector`` and against the general kernel
(``simulate_unitary_circuit``, which ``simulate_job`` used before); the small-array
paths of ``probability_json`` / ``sample_histogram`` against their numpy paths; and
``simulate_job`` against the previous per-circuit loop, seeded.
"""

from __future__ import annotations

import json
import math
import unittest
import warnings
from unittest import mock

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import PauliEvolutionGate
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit_ionq.helpers import qiskit_circ_to_ionq_circ

from qstore_qiskit.server import batch_kernel
from qstore_qiskit.server import simulator as sim
from qstore_qiskit.server.circuits import iter_probabilities, parse_circuit
from qstore_qiskit.server.config import ServerConfig
from qstore_qiskit.server.jobs import Job, parse_job_request
from qstore_qiskit.server.runner import job_rng, simulate_job

from .helpers import random_native_circuit

_QIS_BASIS = ["h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx", "sxdg", "rx", "ry", "rz", "p",
              "cx", "cy", "cz", "ch", "crx", "cry", "crz", "cp", "csx", "swap", "rxx", "ryy",
              "rzz", "ccx"]


def _parse(qc: QuantumCircuit, gateset: str):
    gates, _, _ = qiskit_circ_to_ionq_circ(qc, gateset)
    return parse_circuit(gates, gateset, qc.num_qubits, 20, 10**6)


def _generic_probs(parsed) -> np.ndarray:
    return sim.probabilities(sim.simulate_unitary_circuit(parsed.num_qubits,
                                                          parsed.unitaries()))


class TestBatchBuilders(unittest.TestCase):
    """The vectorized gate-matrix builders equal the scalar functions."""

    def test_every_builder_matches_its_function(self):
        rng = np.random.default_rng(11)
        for fn, batch_fn in batch_kernel._BATCH_BUILDERS.items():
            nargs = {sim.ms: 3}.get(fn, 1)
            args = rng.uniform(-7, 7, size=(25, nargs))
            got = batch_fn(args)
            expected = np.array([fn(*row) for row in args.tolist()])
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15, err_msg=fn.__name__)


    def test_two_qubit_kron_is_np_kron(self):
        rng = np.random.default_rng(12)
        for _ in range(20):
            a, b = rng.normal(size=(2, 2, 2, 2)) @ np.array([1, 1j])
            self.assertTrue(np.array_equal(sim._kron_for((3, 1), {3: a, 1: b}), np.kron(b, a)))
            self.assertTrue(np.array_equal(sim._kron_for((0, 2), {2: b}), np.kron(b, sim.I2)))


class TestSmallBatchKernel(unittest.TestCase):
    """``simulate_small_batch`` against Statevector and the general kernel."""

    def _check(self, circuits: list[QuantumCircuit], gateset: str) -> None:
        parsed = [_parse(qc, gateset) for qc in circuits]
        for p in parsed:
            self.assertTrue(sim.batchable(p.num_qubits, p.gates))
        got = list(iter_probabilities(parsed))
        for qc, p, probs in zip(circuits, parsed, got):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy sparse-format notes (PauliEvolution)
                expected = Statevector(qc).probabilities()
            np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-12)
            np.testing.assert_allclose(probs, _generic_probs(p), rtol=0, atol=1e-12)

    def test_random_native_circuits_mixed_widths_and_lengths(self):
        rng = np.random.default_rng(2025)
        circuits = [random_native_circuit(2 + i % 7, int(rng.integers(0, 61)), rng)
                    for i in range(40)]
        self._check(circuits, "native")

    def test_random_qis_circuits(self):
        circuits = []
        for seed in range(30):
            qc = random_circuit(2 + seed % 6, 10, max_operands=2, seed=seed)
            circuits.append(transpile(qc, basis_gates=_QIS_BASIS, optimization_level=0,
                                      seed_transpiler=seed))
        self._check(circuits, "qis")

    def test_orientations_controls_and_idle_qubits(self):
        qc = QuantumCircuit(5)
        qc.h(4)  # a qubit that no two-qubit gate touches
        qc.sx(0)
        qc.ry(0.3, 2)
        qc.cx(3, 1)  # control above the target
        qc.cx(1, 3)  # and below
        qc.crz(0.7, 2, 0)
        qc.cp(1.1, 0, 2)
        qc.rzz(0.4, 3, 0)
        qc.rxx(0.5, 0, 3)
        qc.ryy(0.6, 2, 1)
        qc.swap(1, 2)
        qc.p(0.2, 1)
        qc.append(PauliEvolutionGate(SparsePauliOp(["XZ", "YY"], [0.3, -0.5]), time=0.8),
                  [3, 1])
        qc.s(4)
        two = QuantumCircuit(2)
        two.cz(1, 0)
        circuits = [qc, QuantumCircuit(3), two]
        self._check(circuits, "qis")

    def test_batches_are_split_the_same(self):
        rng = np.random.default_rng(3)
        circuits = [random_native_circuit(4, 30, rng) for _ in range(9)]
        parsed = [_parse(qc, "native") for qc in circuits]
        whole = sim.simulate_small_batch(4, [p.gates for p in parsed])
        with mock.patch.object(batch_kernel, "_MAX_BATCH_SLOTS", 70), \
                mock.patch.object(batch_kernel, "_MAX_BATCH_AMPLITUDES", 40):
            split = sim.simulate_small_batch(4, [p.gates for p in parsed])
        np.testing.assert_allclose(split, whole, rtol=0, atol=1e-15)

    def test_unbatchable_circuits_keep_their_place(self):
        rng = np.random.default_rng(8)
        ccx = QuantumCircuit(3)
        ccx.h([0, 1])
        ccx.ccx(0, 1, 2)  # a three-qubit gate: general kernel
        one = QuantumCircuit(1)
        one.rx(0.4, 0)  # one qubit: general kernel
        circuits = [random_native_circuit(3, 20, rng), ccx, random_native_circuit(5, 20, rng), one,
                    random_native_circuit(3, 10, rng)]
        parsed = [_parse(qc, "qis") for qc in circuits[1:2]]
        self.assertFalse(sim.batchable(parsed[0].num_qubits, parsed[0].gates))
        parsed = [_parse(qc, "qis" if i in (1, 3) else "native")
                  for i, qc in enumerate(circuits)]
        for qc, probs in zip(circuits, iter_probabilities(parsed)):
            np.testing.assert_allclose(probs, Statevector(qc).probabilities(), rtol=0,
                                       atol=1e-12)


class TestResultPaths(unittest.TestCase):
    """Small-array shortcuts give the text/dicts of the numpy paths."""

    def test_probability_json_and_histogram(self):
        rng = np.random.default_rng(4)
        for size in (2, 16, 256, 4096, 8192):
            probs = rng.random(size) ** 8
            probs[rng.random(size) < 0.3] = 0.0
            probs[0] = 5e-15  # under the cutoff
            probs /= probs.sum()
            nonzero = np.flatnonzero(probs > 1e-14)
            expected = "{" + ",".join(
                f'"{k}":{v!r}' for k, v in zip(nonzero.tolist(), probs[nonzero].tolist())
            ) + "}"
            self.assertEqual(sim.probability_json(probs), expected)
            self.assertEqual(json.loads(expected), sim.probability_dict(probs))
            hist = sim.sample_histogram(probs, 5000, np.random.default_rng(size))
            counts = np.random.default_rng(size).multinomial(5000, probs / probs.sum())
            nz = np.flatnonzero(counts)
            self.assertEqual(list(hist.items()),
                             list(zip(nz.tolist(), counts[nz].tolist())))


def _old_simulate_job(job: Job, server_seed: int | None) -> None:
    """``simulate_job``'s circuit loop before the batched kernel (ideal noise only)."""
    for child in job.children or [job]:
        circuit = child.circuit
        probs = _generic_probs(circuit)
        rng = job_rng(child, server_seed)
        nonzero = np.flatnonzero(probs > 1e-14)
        child.probabilities_json = "{" + ",".join(
            f'"{k}":{v!r}' for k, v in zip(nonzero.tolist(), probs[nonzero].tolist())
        ) + "}"
        counts = rng.multinomial(job.spec.shots, probs / probs.sum())
        nz = np.flatnonzero(counts)
        child.histogram = dict(zip(nz.tolist(), counts[nz].tolist()))
        child.sample_seed = int(rng.integers(2**63 - 1))


def _job(body: dict) -> Job:
    spec = parse_job_request(body, ServerConfig())
    job = Job(id="j", spec=spec, seq=3)
    if len(spec.circuits) > 1:
        job.children = [Job(id=f"j-{i}", spec=spec, seq=4 + i, parent_id="j", circuit_index=i)
                        for i in range(len(spec.circuits))]
    return job


class TestSimulateJob(unittest.TestCase):
    """Seeded jobs: reproducible, and the same results as the previous loop."""

    def _body(self, noise: dict | None = None) -> dict:
        rng = np.random.default_rng(6)
        items = []
        for i in range(12):
            qc = random_native_circuit(2 + i % 5, 30, rng)
            gates, _, _ = qiskit_circ_to_ionq_circ(qc, "native")
            items.append({"circuit": gates, "qubits": qc.num_qubits})
        body = {"type": "ionq.multi-circuit.v1", "backend": "simulator", "shots": 1000,
                "input": {"gateset": "native", "circuits": items}}
        if noise:
            body["noise"] = noise
        return body

    def test_seeded_results_match_previous_implementation(self):
        new, old = _job(self._body()), _job(self._body())
        simulate_job(new, 1234)
        _old_simulate_job(old, 1234)
        for a, b in zip(new.children, old.children):
            pa, pb = json.loads(a.probabilities_json), json.loads(b.probabilities_json)
            self.assertEqual(pa.keys(), pb.keys())
            for key in pa:
                self.assertAlmostEqual(pa[key], pb[key], delta=1e-12)
            self.assertEqual(a.histogram, b.histogram)
            self.assertEqual(a.sample_seed, b.sample_seed)

    def test_same_seed_same_results(self):
        for noise in (None, {"model": "aria-1", "seed": 99}):
            a, b = _job(self._body(noise)), _job(self._body(noise))
            simulate_job(a, 77)
            simulate_job(b, 77)
            for x, y in zip(a.children, b.children):
                self.assertEqual(x.probabilities_json, y.probabilities_json)
                self.assertEqual(x.histogram, y.histogram)
                self.assertEqual(x.sample_seed, y.sample_seed)
                self.assertEqual(sum(x.histogram.values()), 1000)

    def test_single_circuit_job(self):
        qc = random_native_circuit(4, 25, np.random.default_rng(12))
        gates, _, _ = qiskit_circ_to_ionq_circ(qc, "native")
        job = _job({"type": "ionq.circuit.v1", "backend": "simulator", "shots": 500,
                    "input": {"gateset": "native", "qubits": 4, "circuit": gates}})
        simulate_job(job, 5)
        got = json.loads(job.probabilities_json)
        expected = Statevector(qc).probabilities()
        for key, p in got.items():
            self.assertTrue(math.isclose(p, expected[int(key)], abs_tol=1e-12))
        self.assertAlmostEqual(sum(got.values()), 1.0, places=12)


if __name__ == "__main__":
    unittest.main()
