# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Numerical three-qubit synthesis and the level-3 pass that uses it: exact, fewer MS."""

from __future__ import annotations

import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.quantum_info import Operator

from .helpers import two_qubit_count
from qstore_qiskit.transpiler import estimated_fidelity, generate_ionq_pass_manager, ionq_target
from qstore_qiskit.transpiler.three_qubit_synthesis import (
    Budget,
    Template,
    synthesize_three_qubit,
    template_circuit,
)


_two_qubit = two_qubit_count


def _conjugated(core: str) -> QuantumCircuit:
    """A Toffoli-class gate wrapped in commuting ZZ rotations that cancel: per-pair
    lowering (level 2) cannot see that, a three-qubit resynthesis can."""
    qc = QuantumCircuit(3)
    qc.h(2)
    for angle, (a, b) in zip((0.3, 0.7, 1.1), ((0, 1), (1, 2), (0, 2))):
        qc.rzz(angle, a, b)
    getattr(qc, core)(0, 1, 2)
    for angle, (a, b) in zip((0.3, 0.7, 1.1), ((0, 1), (1, 2), (0, 2))):
        qc.rzz(-angle, a, b)
    return qc


class TestTemplate(unittest.TestCase):
    def test_unitary_matches_qiskit_circuit(self):
        rng = np.random.default_rng(3)
        template = Template([(0, 1), (1, 2), (0, 2)])
        x = rng.uniform(-np.pi, np.pi, template.num_params)
        expected = Operator(template_circuit(template.pairs, x)).data
        np.testing.assert_allclose(template.unitary(x), expected, atol=1e-12)

    def test_jacobian_matches_finite_differences(self):
        rng = np.random.default_rng(4)
        template = Template([(0, 2), (0, 1)])
        target = template.unitary(rng.uniform(-3, 3, template.num_params))
        x = rng.uniform(-3, 3, template.num_params + 1)
        res, jac = template.residual_and_jacobian(x, target)
        eps = 1e-7
        for k in range(0, len(x), 3):
            step = x.copy()
            step[k] += eps
            numeric = (template.residual_and_jacobian(step, target, want_jac=False)[0] - res) / eps
            np.testing.assert_allclose(numeric, jac[:, k], atol=1e-5)


class TestSynthesizeThreeQubit(unittest.TestCase):
    def test_recovers_known_count_exactly(self):
        """A unitary built from 4 RZZ and random one-qubit gates, given as a 6-gate
        sequence, comes back with at most 4 two-qubit gates and the same unitary."""
        known = [(0, 1), (1, 2), (0, 2), (0, 1)]
        for seed in range(1):
            with self.subTest(seed=seed):
                rng = np.random.default_rng(seed)
                template = Template(known)
                target = template.unitary(rng.uniform(-np.pi, np.pi, template.num_params))
                wasteful = [(0, 1), (1, 2), (0, 1), (0, 2), (0, 1)]
                found = synthesize_three_qubit(target, wasteful, seed=seed, budget=Budget(400))  # seeded: deterministic
                self.assertIsNotNone(found)
                pairs, params = found
                self.assertLessEqual(len(pairs), 4)
                circuit = template_circuit(pairs, params)
                self.assertTrue(Operator(circuit).equiv(Operator(target)))

    def test_budget_is_respected_and_exhaustion_returns_none(self):
        template = Template([(0, 1), (1, 2), (0, 2)])
        target = template.unitary(np.random.default_rng(5).uniform(-3, 3, template.num_params))
        budget = Budget(1)
        found = synthesize_three_qubit(target, [(0, 1), (1, 2), (0, 2)], budget=budget)
        self.assertIsNone(found)  # 2 RZZ cannot make a generic 3-RZZ unitary
        self.assertEqual(budget.left, 0)


class TestLevelThreeResynthesis(unittest.TestCase):
    def test_toffoli_class_blocks_shrink(self):
        target = ionq_target("aria-1", num_qubits=3)
        l2 = generate_ionq_pass_manager(target=target, optimization_level=2)
        l3 = generate_ionq_pass_manager(target=target, optimization_level=3)
        for core in ("ccx", "ccz"):
            with self.subTest(core=core):
                qc = _conjugated(core)
                out2, out3 = l2.run(qc), l3.run(qc)
                self.assertTrue(Operator(out3).equiv(Operator(qc)))
                self.assertLess(_two_qubit(out3), _two_qubit(out2))
                self.assertLessEqual(_two_qubit(out3), 6)  # a Toffoli needs 5
                self.assertGreaterEqual(
                    estimated_fidelity(out3, target), estimated_fidelity(out2, target)
                )

    def test_deterministic(self):
        target = ionq_target("aria-1", num_qubits=3)
        qc = _conjugated("ccx")
        runs = [generate_ionq_pass_manager(target=target, optimization_level=3).run(qc) for _ in range(2)]
        self.assertEqual(runs[0], runs[1])

    def test_small_blocks_are_left_alone(self):
        """A circuit with fewer MS than ``min_two_qubit`` in any block is returned as is."""
        from qstore_qiskit.transpiler.passes import ResynthesizeThreeQubitBlocks

        target = ionq_target("aria-1", num_qubits=3)
        qc = QuantumCircuit(3)
        qc.h(0)
        qc.cx(0, 1)
        qc.cx(1, 2)
        native = generate_ionq_pass_manager(target=target, optimization_level=2).run(qc)
        dag = circuit_to_dag(native)
        resynth = ResynthesizeThreeQubitBlocks(target, lambda: [])
        self.assertIs(resynth.run(dag), dag)
        self.assertEqual(resynth.stats, {"blocks": 0, "searched": 0, "found": 0, "saved": 0})
        self.assertTrue(Operator(dag_to_circuit(dag)).equiv(Operator(qc)))


if __name__ == "__main__":
    unittest.main()
