# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Level 3 (LowerBestOfCandidates): never worse than level 2, always equivalent."""

from __future__ import annotations

import unittest

from qiskit import QuantumCircuit
from qiskit.circuit.random import random_circuit
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.quantum_info import Operator

from .helpers import two_qubit_count
from qstore_qiskit.transpiler import estimated_fidelity, generate_ionq_pass_manager, ionq_target
from qstore_qiskit.transpiler.passes import LowerBestOfCandidates, LowerToIonQNative


_two_qubit = two_qubit_count


class TestLevelThree(unittest.TestCase):
    """Level 3 keeps a candidate only if it dominates level 2's result."""

    def test_never_worse_than_level_2_and_equivalent(self):
        for device in ("aria-1", "forte-1"):
            target = ionq_target(device, num_qubits=5)
            l2 = generate_ionq_pass_manager(target=target, optimization_level=2)
            l3 = generate_ionq_pass_manager(target=target, optimization_level=3)
            for seed in range(6):
                qc = random_circuit(5, 10, max_operands=3, seed=seed)
                with self.subTest(device=device, seed=seed):
                    out2, out3 = l2.run(qc), l3.run(qc)
                    self.assertTrue(Operator(out3).equiv(Operator(qc)))
                    self.assertLessEqual(_two_qubit(out3), _two_qubit(out2))
                    self.assertGreaterEqual(
                        estimated_fidelity(out3, target), estimated_fidelity(out2, target) * (1 - 1e-12)
                    )

    def test_rewrite_can_win(self):
        """A circuit whose CX rewrite lowers better: level 3 finds fewer MS."""
        qc = QuantumCircuit(3)
        for _ in range(2):
            qc.cx(0, 1)
            qc.cx(1, 2)
            qc.cx(0, 1)
            qc.cx(1, 2)
        target = ionq_target("aria-1", num_qubits=3)
        out2 = generate_ionq_pass_manager(target=target, optimization_level=2).run(qc)
        out3 = generate_ionq_pass_manager(target=target, optimization_level=3).run(qc)
        self.assertTrue(Operator(out3).equiv(Operator(qc)))
        self.assertLessEqual(_two_qubit(out3), _two_qubit(out2))

    def test_failing_candidate_is_skipped(self):
        target = ionq_target("aria-1", num_qubits=3)
        qc = QuantumCircuit(3)
        qc.h(0)
        qc.cx(0, 1)
        qc.cx(1, 2)
        best = LowerBestOfCandidates(
            target, lambda: [LowerToIonQNative(target)], pre_bases=[("not_a_gate",)]
        )
        out = dag_to_circuit(best.run(circuit_to_dag(qc)))
        self.assertTrue(Operator(out).equiv(Operator(qc)))
        self.assertEqual(_two_qubit(out), 2)


if __name__ == "__main__":
    unittest.main()
