# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""ResynthesizeCnotNetworks: same unitary, never more CX; level 3 uses it."""

from __future__ import annotations

import unittest

from qiskit import QuantumCircuit
from qiskit.circuit.library import n_local
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.quantum_info import Operator

from .helpers import two_qubit_count
from qstore_qiskit.transpiler import estimated_fidelity, generate_ionq_pass_manager, ionq_target
from qstore_qiskit.transpiler.passes import ResynthesizeCnotNetworks


def _full_ladder(n: int) -> QuantumCircuit:
    """The full-entanglement CX layer of ``TwoLocal``: every pair ``i < j``."""
    qc = QuantumCircuit(n)
    for i in range(n):
        for j in range(i + 1, n):
            qc.cx(i, j)
    return qc


_two_qubit = two_qubit_count


class TestResynthesizeCnotNetworks(unittest.TestCase):
    def test_full_ladder_shrinks_and_is_exact(self):
        qc = _full_ladder(6)
        out = dag_to_circuit(ResynthesizeCnotNetworks().run(circuit_to_dag(qc)))
        self.assertTrue(Operator(out).equiv(Operator(qc)))
        self.assertLess(out.count_ops().get("cx", 0), 15)

    def test_never_more_cx(self):
        qc = QuantumCircuit(3)
        qc.cx(0, 1)
        qc.h(1)
        qc.cx(1, 2)  # no two CX in a row: nothing to gain
        out = dag_to_circuit(ResynthesizeCnotNetworks().run(circuit_to_dag(qc)))
        self.assertTrue(Operator(out).equiv(Operator(qc)))
        self.assertLessEqual(out.count_ops().get("cx", 0), 2)

    def test_level_3_on_two_local(self):
        """vqe_two_local-like ansatz: level 3 needs far fewer MS than level 2."""
        qc = n_local(5, "ry", "cx", entanglement="full", reps=2).assign_parameters(
            [0.1 * (k + 1) for k in range(15)]
        )
        target = ionq_target("aria-1", num_qubits=5)
        out2 = generate_ionq_pass_manager(target=target, optimization_level=2).run(qc)
        out3 = generate_ionq_pass_manager(target=target, optimization_level=3).run(qc)
        self.assertTrue(Operator(out3).equiv(Operator(qc)))
        self.assertLess(_two_qubit(out3), _two_qubit(out2))
        self.assertGreaterEqual(estimated_fidelity(out3, target), estimated_fidelity(out2, target))


if __name__ == "__main__":
    unittest.main()
