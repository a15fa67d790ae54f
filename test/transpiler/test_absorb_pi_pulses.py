"""Tests for the AbsorbPiPulses pass."""

from __future__ import annotations

import math
import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import RZGate
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.quantum_info import Operator, Statevector
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate

from qstore_qiskit import generate_ionq_pass_manager
from qstore_qiskit.transpiler.passes import AbsorbPiPulses, CheckNativeForm


def _absorb(circuit: QuantumCircuit) -> QuantumCircuit:
    return dag_to_circuit(AbsorbPiPulses().run(circuit_to_dag(circuit)))


def _counts(circuit: QuantumCircuit) -> tuple[int, int, int]:
    ops = circuit.count_ops()
    return ops.get("gpi", 0) + ops.get("gpi2", 0), ops.get("ms", 0), ops.get("zz", 0)


def _random_native(rng: np.random.Generator, n: int, depth: int, params=None) -> QuantumCircuit:
    """A random native circuit; with ``params`` some phases are affine in them."""
    qc = QuantumCircuit(n)

    def phase():
        if params is not None and rng.random() < 0.5:
            p = params[rng.integers(len(params))]
            return float(rng.choice([-1.0, 1.0, 0.5])) * p + float(rng.random())
        return float(rng.random())

    for _ in range(depth):
        kind = rng.choice(["gpi", "gpi", "gpi2", "ms", "zz", "rz"])
        q = int(rng.integers(n))
        if kind == "gpi":
            qc.append(GPIGate(phase()), [q])
        elif kind == "gpi2":
            qc.append(GPI2Gate(phase()), [q])
        elif kind == "rz":
            qc.append(RZGate(TWO_PI_ * phase()), [q])
        else:
            a, b = (int(x) for x in rng.choice(n, 2, replace=False))
            if kind == "ms":
                qc.append(MSGate(phase(), phase(), float(rng.uniform(0.0, 0.25))), [a, b])
            else:
                qc.append(ZZGate(float(rng.uniform(-0.5, 0.5))), [a, b])
    return qc


TWO_PI_ = 2.0 * math.pi


class TestAbsorbPiPulses(unittest.TestCase):
    """Equivalence, gate counts and the treatment of measurements, resets and barriers."""

    def test_identity_used_for_merging(self):
        """X . GPi2(p) == RZ(-4 pi p) . GPi2(p + 1/2) up to global phase."""
        for p in np.linspace(-1.0, 1.0, 17):
            lhs = QuantumCircuit(1)
            lhs.append(GPI2Gate(p), [0])
            lhs.x(0)
            rhs = QuantumCircuit(1)
            rhs.append(GPI2Gate(p + 0.5), [0])
            rhs.rz(-4 * math.pi * p, 0)
            self.assertTrue(Operator(lhs).equiv(Operator(rhs)), p)

    def test_random_native_circuits_equivalent_and_never_longer(self):
        rng = np.random.default_rng(1234)
        removed = 0
        for i in range(200):
            n = int(rng.integers(2, 5))
            qc = _random_native(rng, n, int(rng.integers(1, 30)))
            out = _absorb(qc)
            with self.subTest(i=i):
                self.assertTrue(Operator(qc).equiv(Operator(out)))
                before, after = _counts(qc), _counts(out)
                self.assertLessEqual(after[0], before[0])
                self.assertEqual(after[1:], before[1:])
                self.assertLessEqual(out.count_ops().get("gpi", 0), n)
                removed += before[0] - after[0]
        self.assertGreater(removed, 100)

    def test_symbolic_phases_bind_to_the_same_unitary(self):
        rng = np.random.default_rng(99)
        params = ParameterVector("p", 4)
        for i in range(60):
            qc = _random_native(rng, 3, 20, params=params)
            out = _absorb(qc)
            self.assertLessEqual(_counts(out)[0], _counts(qc)[0])
            for _ in range(2):
                values = dict(zip(params, rng.uniform(-3, 3, len(params))))
                with self.subTest(i=i):
                    self.assertTrue(
                        Operator(qc.assign_parameters(values, strict=False)).equiv(
                            Operator(out.assign_parameters(values, strict=False))
                        )
                    )

    def test_pi_pulse_is_not_moved_across_a_measurement(self):
        qc = QuantumCircuit(2, 2)
        qc.append(GPIGate(0.3), [0])
        qc.append(MSGate(0.1, 0.2, 0.25), [0, 1])
        qc.measure([0, 1], [0, 1])
        out = _absorb(qc)
        self.assertEqual(out.count_ops().get("gpi", 0), 1)
        names = [inst.name for inst in out.data]
        self.assertLess(names.index("gpi"), names.index("measure"))
        # The Z frame left before a measurement is dropped: same outcome probabilities.
        probs_in = Statevector(qc.remove_final_measurements(False)).probabilities()
        probs_out = Statevector(out.remove_final_measurements(False)).probabilities()
        np.testing.assert_allclose(probs_in, probs_out, atol=1e-12)

    def test_pi_pulse_merges_into_last_gpi2_before_measurement(self):
        qc = QuantumCircuit(1, 1)
        qc.append(GPIGate(0.3), [0])
        qc.append(GPI2Gate(0.1), [0])
        qc.measure(0, 0)
        out = _absorb(qc)
        self.assertEqual(dict(out.count_ops()), {"gpi2": 1, "measure": 1})
        probs_in = Statevector(qc.remove_final_measurements(False)).probabilities()
        probs_out = Statevector(out.remove_final_measurements(False)).probabilities()
        np.testing.assert_allclose(probs_in, probs_out, atol=1e-12)

    def test_barrier_keeps_pi_pulse_on_its_side(self):
        qc = QuantumCircuit(1)
        qc.append(GPIGate(0.2), [0])
        qc.barrier()
        qc.append(GPIGate(0.2), [0])
        out = _absorb(qc)
        names = [inst.name for inst in out.data]
        self.assertEqual(names[:2], ["gpi", "barrier"])
        self.assertEqual(names.count("gpi"), 2)
        self.assertTrue(Operator(qc).equiv(Operator(out)))

    def test_reset_discards_pending_work(self):
        qc = QuantumCircuit(1, 1)
        qc.append(GPIGate(0.2), [0])
        qc.reset(0)
        qc.append(GPI2Gate(0.4), [0])
        qc.measure(0, 0)
        out = _absorb(qc)
        self.assertEqual([i.name for i in out.data], ["reset", "gpi2", "measure"])
        self.assertAlmostEqual(float(out.data[1].operation.params[0]), 0.4)

    def test_non_native_input_is_unchanged(self):
        qc = QuantumCircuit(2)
        qc.append(GPIGate(0.2), [0])
        qc.cx(0, 1)
        dag = circuit_to_dag(qc)
        self.assertIs(AbsorbPiPulses().run(dag), dag)

    def test_output_stays_in_native_form(self):
        rng = np.random.default_rng(5)
        for _ in range(30):
            qc = _random_native(rng, 3, 25)
            compiled = generate_ionq_pass_manager("forte-1", optimization_level=2).run(qc)
            check = CheckNativeForm()
            check.run(circuit_to_dag(compiled))
            self.assertTrue(check.property_set["ionq_native_form"])
            self.assertTrue(Operator(qc).equiv(Operator(compiled)))

    def test_parameterized_ansatz_has_no_pi_pulses(self):
        """The fixed pi pulses next to symbolic rotations are all absorbed."""
        theta = ParameterVector("t", 32)
        qc = QuantumCircuit(4)
        k = 0
        for _ in range(4):
            for q in range(4):
                qc.ry(theta[k], q)
                qc.rz(theta[k + 1], q)
                k += 2
            for q in range(3):
                qc.cx(q, q + 1)
        out = generate_ionq_pass_manager("aria-1", optimization_level=2).run(qc)
        self.assertEqual(out.count_ops().get("gpi", 0), 0)
        rng = np.random.default_rng(3)
        for _ in range(3):
            values = rng.uniform(-np.pi, np.pi, len(theta))
            self.assertTrue(
                Operator(qc.assign_parameters(values)).equiv(Operator(out.assign_parameters(values)))
            )


if __name__ == "__main__":
    unittest.main()
