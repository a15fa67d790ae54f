"""The numpy simulator against ``qiskit.quantum_info.Statevector``, both gatesets."""

from __future__ import annotations

import math
import unittest
import warnings

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import PauliEvolutionGate
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Operator, SparsePauliOp, Statevector
from qiskit_ionq.helpers import ionq_basis_gates, qiskit_circ_to_ionq_circ
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate

from qstore_qiskit.server import simulator as sim
from qstore_qiskit.server.circuits import parse_circuit
from qstore_qiskit.server.qasm import load_program, qasm3_available, sample_program

from .helpers import random_native_circuit

# Standard-gate names among the qis gates qiskit-ionq's converter accepts.
_QIS_BASIS = ["h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx", "sxdg", "rx", "ry", "rz", "p",
              "cx", "cy", "cz", "ch", "crx", "cry", "crz", "cp", "csx", "swap", "rxx", "ryy",
              "rzz", "ccx"]


def _simulate(ionq_gates: list[dict], gateset: str, num_qubits: int) -> np.ndarray:
    parsed = parse_circuit(ionq_gates, gateset, num_qubits, 20, 10**6)
    return sim.simulate_unitary_circuit(parsed.num_qubits, parsed.unitaries())


def _assert_same_state(test: unittest.TestCase, got: np.ndarray, qc: QuantumCircuit,
                       up_to_phase: bool = True) -> None:
    ref = Statevector(qc).data
    if up_to_phase:
        overlap = abs(np.vdot(ref, got))
        test.assertAlmostEqual(overlap, 1.0, places=9)
    else:
        np.testing.assert_allclose(got, ref, atol=1e-9)
    np.testing.assert_allclose(np.abs(got) ** 2, np.abs(ref) ** 2, atol=1e-10)


class TestGateMatrices(unittest.TestCase):
    """Native matrices are exactly qiskit-ionq's."""

    def test_native_matrices_match_qiskit_ionq(self):
        rng = np.random.default_rng(7)
        for _ in range(20):
            phi0, phi1, theta = rng.random(3)
            np.testing.assert_allclose(sim.gpi(phi0), np.array(GPIGate(phi0)), atol=1e-12)
            np.testing.assert_allclose(sim.gpi2(phi0), np.array(GPI2Gate(phi0)), atol=1e-12)
            np.testing.assert_allclose(sim.ms(phi0, phi1, theta),
                                       np.array(MSGate(phi0, phi1, theta)), atol=1e-12)
            np.testing.assert_allclose(sim.zz(theta), np.array(ZZGate(theta)), atol=1e-12)
            # ZZ(θ) = RZZ(2πθ)
            from qiskit.circuit.library import RZZGate
            np.testing.assert_allclose(sim.zz(theta), RZZGate(2 * math.pi * theta).to_matrix(),
                                       atol=1e-12)

    def test_pauli_exponential_matches_qiskit(self):
        op = SparsePauliOp(["XZ", "ZZ", "YI"], [0.3, -0.7, 0.2])
        gate = PauliEvolutionGate(op, time=0.9)
        got = sim.pauli_exponential(["XZ", "ZZ", "YI"], [0.3, -0.7, 0.2], 0.9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy sparse-format notes from the reference
            expected = Operator(gate).data
        np.testing.assert_allclose(got, expected, atol=1e-10)


class TestQisCircuits(unittest.TestCase):
    """Random qis circuits through qiskit-ionq's own converter."""

    def test_random_qis_circuits(self):
        for seed in range(12):
            n = 2 + seed % 5
            qc = random_circuit(n, 8, max_operands=3, seed=seed)
            self.assertTrue(set(_QIS_BASIS) <= set(ionq_basis_gates))
            tqc = transpile(qc, basis_gates=_QIS_BASIS, optimization_level=0,
                            seed_transpiler=seed)
            gates, _, _ = qiskit_circ_to_ionq_circ(tqc, "qis")
            got = _simulate(gates, "qis", n)
            _assert_same_state(self, got, tqc)

    def test_every_qis_gate_and_controls(self):
        qc = QuantumCircuit(4)
        qc.h(range(4))
        qc.rx(0.3, 0)
        qc.ry(0.4, 1)
        qc.rz(0.5, 2)
        qc.p(0.6, 3)
        qc.s(0)
        qc.sdg(1)
        qc.t(2)
        qc.tdg(3)
        qc.sx(0)
        qc.sxdg(1)
        qc.x(2)
        qc.y(3)
        qc.z(0)
        qc.cx(0, 1)
        qc.cy(1, 2)
        qc.cz(2, 3)
        qc.ch(3, 0)
        qc.csx(0, 2)
        qc.crx(0.7, 1, 3)
        qc.cry(0.8, 2, 0)
        qc.crz(0.9, 3, 1)
        qc.cp(1.1, 0, 3)
        qc.swap(1, 2)
        qc.rxx(0.2, 0, 1)
        qc.ryy(0.3, 1, 2)
        qc.rzz(0.4, 2, 3)
        qc.ccx(0, 1, 2)
        qc.mcx([0, 1, 2], 3)
        qc.mcp(0.5, [0, 1], 3)
        gates, _, _ = qiskit_circ_to_ionq_circ(qc, "qis")
        names = {g["gate"] for g in gates}
        self.assertTrue({"v", "vi", "si", "ti", "xx", "yy", "zz", "swap"} <= names)
        self.assertTrue(any(len(g.get("controls", [])) > 1 for g in gates))
        _assert_same_state(self, _simulate(gates, "qis", 4), qc)

    def test_pauliexp_through_converter(self):
        op = SparsePauliOp(["ZZI", "IZZ", "XXX"], [0.3, 0.4, -0.2])  # commuting terms
        qc = QuantumCircuit(3)
        qc.h([0, 1, 2])
        qc.append(PauliEvolutionGate(op, time=0.7), [0, 1, 2])
        gates, _, _ = qiskit_circ_to_ionq_circ(qc, "qis")
        self.assertEqual(gates[-1]["gate"], "pauliexp")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy sparse-format notes from the reference
            _assert_same_state(self, _simulate(gates, "qis", 3), qc)


class TestNativeCircuits(unittest.TestCase):
    """Random GPI/GPI2/MS/ZZ circuits built with qiskit-ionq's gates."""

    def test_random_native_circuits(self):
        rng = np.random.default_rng(2024)
        for trial in range(15):
            n = 1 + trial % 6
            qc = random_native_circuit(n, 30, rng)
            gates, _, _ = qiskit_circ_to_ionq_circ(qc, "native")
            got = _simulate(gates, "native", n)
            # Same matrices, so the states agree exactly (no global phase freedom).
            _assert_same_state(self, got, qc, up_to_phase=False)

    def test_wide_native_circuit_uses_tensordot_path(self):
        rng = np.random.default_rng(5)
        qc = random_native_circuit(17, 40, rng)
        gates, _, _ = qiskit_circ_to_ionq_circ(qc, "native")
        _assert_same_state(self, _simulate(gates, "native", 17), qc, up_to_phase=False)

    def test_fusion_is_exact(self):
        rng = np.random.default_rng(9)
        qc = random_native_circuit(5, 60, rng)
        gates, _, _ = qiskit_circ_to_ionq_circ(qc, "native")
        parsed = parse_circuit(gates, "native", 5, 20, 10**6)
        ops = parsed.unitaries()
        fused = sim.fuse_unitaries(ops)
        self.assertLess(len(fused), len(ops))
        state = sim.zero_state(5)
        for op in fused:
            state = sim.apply_unitary(state, op.matrix, op.qubits, 5)
        _assert_same_state(self, state, qc, up_to_phase=False)


class TestSampling(unittest.TestCase):
    """Histograms, noise and the branching mid-circuit sampler."""

    def test_histogram_seeded_and_sized(self):
        probs = np.array([0.5, 0.0, 0.25, 0.25])
        a = sim.sample_histogram(probs, 1000, np.random.default_rng(1))
        b = sim.sample_histogram(probs, 1000, np.random.default_rng(1))
        self.assertEqual(a, b)
        self.assertEqual(sum(a.values()), 1000)
        self.assertNotIn(1, a)

    def test_noise_keeps_normalization_and_spreads(self):
        probs = np.zeros(8)
        probs[0] = 1.0
        noisy = sim.NOISE_MODELS["harmony"].apply(probs, 3, n1=10, n2=10)
        self.assertAlmostEqual(noisy.sum(), 1.0, places=12)
        self.assertTrue(np.all(noisy > 0))
        self.assertGreater(noisy[0], 0.5)
        self.assertIs(sim.NOISE_MODELS["ideal"].apply(probs, 3, 10, 10), probs)

    def test_probability_dict_keys(self):
        qc = QuantumCircuit(3)
        qc.x(0)
        qc.x(2)
        state = Statevector(qc).data
        self.assertEqual(sim.probability_dict(sim.probabilities(state)), {"5": 1.0})

    @unittest.skipUnless(qasm3_available(), "needs qiskit-qasm3-import")
    def test_branching_sampler_mid_circuit(self):
        program = load_program(
            'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[3] c;'
            "h q[0]; c[0] = measure q[0]; if (c[0]) x q[1]; c[1] = measure q[1];"
            "reset q[0]; x q[0]; c[2] = measure q[0];",
            max_qubits=10,
        )
        outcomes = sample_program(program, 4000, np.random.default_rng(3))
        self.assertEqual(len(outcomes), 4000)
        self.assertEqual(set(outcomes), {0b100, 0b111})
        frac = outcomes.count(0b111) / 4000
        self.assertLess(abs(frac - 0.5), 5 * math.sqrt(0.25 / 4000))


if __name__ == "__main__":
    unittest.main()
