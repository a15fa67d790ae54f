# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""The entry-list form of native circuits used between the lowering passes."""

from __future__ import annotations

import unittest

from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.random import random_circuit
from qiskit.converters import circuit_to_dag, dag_to_circuit

from qstore_qiskit.transpiler import ionq_target
from qstore_qiskit.transpiler.native_ops import entries_cost, entries_to_dag
from qstore_qiskit.transpiler.passes import AbsorbPiPulses, LowerToIonQNative
from qstore_qiskit.transpiler.passes.resynthesize_native import native_cost
from qstore_qiskit.transpiler.target import spec_from_target


def circuits():
    """Random circuits, plus measurements, resets, barriers and a free parameter."""
    out = [random_circuit(4, 8, max_operands=2, seed=seed) for seed in range(8)]
    qc = QuantumCircuit(3, 3)
    qc.h(0)
    qc.x(1)
    qc.cx(0, 1)
    qc.measure(0, 0)
    qc.barrier()
    qc.y(2)
    qc.reset(1)
    qc.ry(Parameter("t"), 2)
    qc.x(2)
    qc.cx(2, 1)
    qc.measure([1, 2], [1, 2])
    out.append(qc)
    return out


class TestEntries(unittest.TestCase):
    def test_fused_absorption_equals_the_separate_pass(self):
        for device in ("aria-1", "forte-1"):
            target = ionq_target(device)
            for qc in circuits():
                dag = circuit_to_dag(qc)
                fused = LowerToIonQNative(target, absorb_pi_pulses=True).run(dag)
                separate = AbsorbPiPulses().run(LowerToIonQNative(target).run(dag))
                self.assertEqual(dag_to_circuit(fused), dag_to_circuit(separate))

    def test_cost_of_entries_equals_cost_of_their_dag(self):
        target = ionq_target("forte-1")
        spec = spec_from_target(target)
        for qc in circuits()[:8]:
            dag = circuit_to_dag(qc)
            entries = LowerToIonQNative(target).lower_entries(dag)
            self.assertTrue(any(e[2] is None for e in entries))  # gates are not built
            self.assertEqual(entries_cost(entries, spec), native_cost(entries_to_dag(dag, entries), spec))


if __name__ == "__main__":
    unittest.main()
