# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Two-qubit block matrices computed without ConsolidateBlocks, and the resynthesis
that uses them."""

from __future__ import annotations

import copy
import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit.random import random_circuit
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.passmanager import PropertySet
from qiskit.quantum_info import Operator, Statevector, process_fidelity
from qiskit.transpiler.passes import Collect2qBlocks, ConsolidateBlocks
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate

from qstore_qiskit.transpiler import generate_ionq_pass_manager, ionq_target
from qstore_qiskit.transpiler.blocks import block_matrix, block_plan
from qstore_qiskit.transpiler.native_ops import entries_to_dag
from qstore_qiskit.transpiler.passes import LowerToIonQNative, ResynthesizeNativeBlocks
from qstore_qiskit.transpiler.passes.resynthesize_native import native_cost


def random_native(num_qubits: int, gates: int, seed: int, with_zz: bool = True) -> QuantumCircuit:
    """A random circuit of GPi, GPi2, MS, ZZ, RZ and a few standard gates."""
    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(num_qubits)
    for _ in range(gates):
        kind = rng.integers(7 if with_zz else 6)
        q = [int(x) for x in rng.choice(num_qubits, size=2, replace=False)]
        if kind == 0:
            qc.append(GPIGate(float(rng.random())), [q[0]])
        elif kind == 1:
            qc.append(GPI2Gate(float(rng.random())), [q[0]])
        elif kind == 2:
            qc.rz(float(rng.normal()), q[0])
        elif kind == 3:
            qc.append(MSGate(float(rng.random()), float(rng.random()), float(rng.random()) / 4), q)
        elif kind == 4:
            qc.cx(*q)
        elif kind == 5:
            qc.sx(q[0])
        else:
            qc.append(ZZGate(float(rng.random()) / 4), q)
    return qc


def collect(dag):
    pass_ = Collect2qBlocks()
    pass_.property_set = PropertySet()
    pass_.run(dag)
    return pass_.property_set["block_list"]


class TestBlockMatrices(unittest.TestCase):
    """``block_matrix`` is the block's unitary; ``block_plan`` covers every block once."""

    def test_matches_operator_of_the_block(self):
        checked = 0
        for seed in range(12):
            dag = circuit_to_dag(random_native(4, 40, seed))
            for block in collect(dag):
                first = next(n for n in block if len(n.qargs) == 2)
                for a, b in (first.qargs, first.qargs[::-1]):  # both qubit orders
                    local = QuantumCircuit(2)
                    for node in block:
                        local.append(node.op, [0 if q == a else 1 for q in node.qargs])
                    expected = Operator(local).data
                    np.testing.assert_allclose(block_matrix(block, a, b), expected, atol=1e-12)
                    checked += 1
        self.assertGreater(checked, 50)

    def test_plan_has_one_trigger_per_block(self):
        dag = circuit_to_dag(random_native(5, 60, seed=3))
        blocks = collect(dag)
        plan = block_plan(blocks, {q: i for i, q in enumerate(dag.qubits)})
        triggers = [v for v in plan.values() if v is not None]
        self.assertEqual(len(triggers), len(blocks))
        self.assertEqual(len(plan), sum(len(b) for b in blocks))
        for _, a, b in triggers:
            self.assertLess(dag.find_bit(a).index, dag.find_bit(b).index)

    def test_lowering_with_blocks_equals_consolidated_lowering(self):
        """Same circuit (as a unitary) and the same MS count as ConsolidateBlocks + lowering."""
        target = ionq_target("aria-1")
        for seed in range(8):
            dag = circuit_to_dag(random_native(4, 50, seed, with_zz=False))
            lower = LowerToIonQNative(target)
            direct = dag_to_circuit(entries_to_dag(dag, lower.lower_entries(dag, collect(dag))))
            work = copy.copy(dag)
            props = PropertySet()
            c, cons = Collect2qBlocks(), ConsolidateBlocks(force_consolidate=True)
            c.property_set = cons.property_set = props
            c.run(work)
            reference = dag_to_circuit(LowerToIonQNative(target).run(cons.run(work)))
            source = Operator(dag_to_circuit(dag))
            # Qiskit's Weyl decomposition may drop a coordinate below its 1e-9 fidelity
            # threshold (both paths alike), hence a fidelity bound, not ``equiv``.
            self.assertGreater(process_fidelity(Operator(direct), source), 1 - 1e-8, seed)
            self.assertGreater(process_fidelity(Operator(reference), source), 1 - 1e-8, seed)
            self.assertEqual(direct.count_ops().get("ms", 0), reference.count_ops().get("ms", 0))


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
