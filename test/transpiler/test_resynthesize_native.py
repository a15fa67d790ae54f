# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""ResynthesizeNativeBlocks: exact, never worse, input untouched when it loses, and the
kept candidate equal to the plain pass sequence it replaces."""

from __future__ import annotations

import copy
import unittest

from qiskit import QuantumCircuit
from qiskit.circuit.random import random_circuit
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.passmanager import PropertySet
from qiskit.quantum_info import Operator, Statevector
from qiskit.transpiler.passes import Collect2qBlocks, ConsolidateBlocks
from qiskit_ionq.ionq_gates import MSGate

from qstore_qiskit.transpiler import generate_ionq_pass_manager, ionq_target
from qstore_qiskit.transpiler.passes import (
    AbsorbPiPulses,
    LowerToIonQNative,
    ResynthesizeNativeBlocks,
)
from qstore_qiskit.transpiler.passes.resynthesize_native import native_cost


class TestResynthesizeNativeBlocks(unittest.TestCase):
    """The resynthesis stays exact and never returns a worse circuit."""

    def check(self, device: str, zero: bool) -> None:
        target = ionq_target(device)
        pm = generate_ionq_pass_manager(device, optimization_level=1, qubits_initially_zero=zero)
        improved = 0
        for seed in range(10):
            source = random_circuit(4, 10, max_operands=2, seed=seed)
            native = pm.run(source)
            dag = circuit_to_dag(native)
            out = ResynthesizeNativeBlocks(target, qubits_initially_zero=zero).run(dag)
            result = dag_to_circuit(out)
            if zero:
                self.assertTrue(Statevector(result).equiv(Statevector(source)), seed)
            else:
                self.assertTrue(Operator(result).equiv(Operator(source)), seed)
            self.assertLessEqual(native_cost(out, target_spec(target)), native_cost(dag, target_spec(target)))
            improved += out is not dag
        self.assertGreater(improved, 0)  # the test reaches the accepting branch

    def test_unitary_mode_aria(self):
        self.check("aria-1", zero=False)

    def test_state_mode_forte(self):
        self.check("forte-1", zero=True)

    def test_candidate_equals_the_pass_sequence(self):
        """The kept candidate is what ConsolidateBlocks + lowering + AbsorbPiPulses give."""
        target = ionq_target("aria-1")
        pm = generate_ionq_pass_manager("aria-1", optimization_level=0)
        compared = 0
        for seed in range(10):
            dag = circuit_to_dag(pm.run(random_circuit(4, 10, max_operands=2, seed=seed)))
            out = ResynthesizeNativeBlocks(target).run(dag)
            if out is dag:
                continue
            work = copy.copy(dag)
            collect, consolidate = Collect2qBlocks(), ConsolidateBlocks(force_consolidate=True)
            collect.property_set = consolidate.property_set = PropertySet()
            collect.run(work)
            expected = AbsorbPiPulses().run(LowerToIonQNative(target).run(consolidate.run(work)))
            self.assertEqual(dag_to_circuit(out), dag_to_circuit(expected))
            compared += 1
        self.assertGreater(compared, 3)

    def test_input_dag_untouched_when_rejected(self):
        target = ionq_target("aria-1")
        qc = QuantumCircuit(2)
        qc.append(MSGate(0.0, 0.0, 0.25), [0, 1])
        dag = circuit_to_dag(qc)
        before = dag_to_circuit(dag)
        out = ResynthesizeNativeBlocks(target).run(dag)
        self.assertIs(out, dag)
        self.assertEqual(dag_to_circuit(dag), before)


def target_spec(target):
    # pylint: disable=import-outside-toplevel
    from qstore_qiskit.transpiler.target import spec_from_target

    return spec_from_target(target)


if __name__ == "__main__":
    unittest.main()
