# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""The compiler's native gate classes (``qstore_qiskit.transpiler.gates``): qiskit-ionq's
gates, only cheaper to ask for a matrix or a copy."""

from __future__ import annotations

import copy
import pickle
import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import Operator
from qiskit_ionq import ionq_gates

from qstore_qiskit.transpiler import gates

PAIRS = [
    (gates.GPIGate, ionq_gates.GPIGate, 1),
    (gates.GPI2Gate, ionq_gates.GPI2Gate, 1),
    (gates.MSGate, ionq_gates.MSGate, 3),
    (gates.ZZGate, ionq_gates.ZZGate, 1),
]


class TestNativeGates(unittest.TestCase):
    def test_same_matrices_bit_for_bit(self):
        rng = np.random.default_rng(3)
        for ours, theirs, nparams in PAIRS:
            angles = [tuple(rng.uniform(-1, 1, nparams)) for _ in range(20)]
            angles += [(0.0,) * nparams, (-0.0,) * nparams, (0.25,) * nparams]
            for params in angles + angles:  # the second round is served from the memo
                with self.subTest(gate=ours.__name__, params=params):
                    a, b = ours(*params), theirs(*params)
                    expected = b.to_matrix()
                    self.assertTrue(np.array_equal(a.to_matrix(), expected))
                    # zero entries keep their signs too (-0.0 and 0.0 are memoized apart)
                    self.assertTrue(np.array_equal(np.signbit(a.to_matrix().real), np.signbit(expected.real)))
                    self.assertTrue(np.array_equal(np.signbit(a.to_matrix().imag), np.signbit(expected.imag)))

    def test_float_matrices_bit_for_bit_on_many_angles(self):
        """The fast path for float parameters (``float_matrix``, also behind ``to_matrix``)
        computes qiskit-ionq's matrices bit for bit: signed zeros, multiples of a quarter
        turn, tiny, huge and random angles."""
        rng = np.random.default_rng(11)
        edge = [0.0, -0.0, 0.25, -0.25, 0.5, 0.75, 1.0, -1.0, 0.125, 1e-300, -5e-324, 1e300, 1 / 3]
        for ours, theirs, nparams in PAIRS:
            grid = np.array(np.meshgrid(*[edge] * nparams)).reshape(nparams, -1).T.tolist()
            angles = grid + rng.uniform(-2, 2, (4000, nparams)).tolist()
            angles += rng.uniform(-1e4, 1e4, (500, nparams)).tolist()
            differ = []
            for params in angles:
                params = [float(p) for p in params]
                expected = np.asarray(theirs(*params).__array__(), dtype=complex)
                got = ours.float_matrix(params)
                if got.tobytes() != expected.tobytes() or got.shape != expected.shape:
                    differ.append(params)
            with self.subTest(gate=ours.__name__):
                self.assertEqual(differ, [])
                self.assertFalse(ours.float_matrix([0.1] * nparams).flags.writeable)

    def test_matrices_are_fresh_and_writable(self):
        gate = gates.GPI2Gate(0.125)
        first = gate.to_matrix()
        first[0, 0] = 99.0
        self.assertEqual(gate.to_matrix()[0, 0], ionq_gates.GPI2Gate(0.125).to_matrix()[0, 0])
        self.assertEqual(np.asarray(gate, dtype=np.complex64).dtype, np.complex64)

    def test_memo_is_bounded(self):
        memo = gates.GPIGate._memo
        for i in range(gates.MEMO_SIZE + 10):
            gates.GPIGate(i / (gates.MEMO_SIZE + 10)).to_matrix()
        self.assertLessEqual(len(memo), gates.MEMO_SIZE)
        self.assertIsNot(gates.GPIGate._memo, gates.GPI2Gate._memo)  # one memo per class

    def test_equal_to_qiskit_ionq_gates_both_ways(self):
        for ours, theirs, nparams in PAIRS:
            with self.subTest(gate=ours.__name__):
                params = [0.1 * (i + 1) for i in range(nparams)]
                self.assertEqual(ours(*params), theirs(*params))
                self.assertEqual(theirs(*params), ours(*params))
                self.assertNotEqual(ours(*params), theirs(*[p + 0.01 for p in params]))
                self.assertIsInstance(ours(*params), theirs)
                self.assertIs(ours(*params).base_class, theirs)
                qc1 = QuantumCircuit(2)
                qc2 = QuantumCircuit(2)
                qubits = [0, 1][: ours(*params).num_qubits]
                qc1.append(ours(*params), qubits)
                qc2.append(theirs(*params), qubits)
                self.assertEqual(qc1, qc2)
                self.assertTrue(Operator(qc1).equiv(Operator(qc2)))

    def test_deep_copy_is_independent(self):
        gate = gates.MSGate(0.1, 0.2, 0.25)
        gate.definition  # build it, so that it is copied too
        dup = copy.deepcopy(gate)
        self.assertEqual(dup, gate)
        self.assertIsNot(dup.params, gate.params)
        self.assertIsNot(dup.definition, gate.definition)
        dup = dup.to_mutable()
        dup.params[0] = 0.3
        self.assertEqual(gate.params[0], 0.1)
        gate.params[1] = 0.4  # the original stays mutable
        self.assertEqual(copy.deepcopy(gate).params, [0.1, 0.4, 0.25])
        symbolic = gates.GPI2Gate(Parameter("a") * 2)
        self.assertEqual(copy.deepcopy(symbolic), symbolic)
        self.assertEqual(symbolic.copy(), symbolic)

    def test_deep_copies_with_numeric_parameters_are_shared_and_immutable(self):
        for ours, theirs, nparams in PAIRS:
            with self.subTest(gate=ours.__name__):
                params = [0.1 * (i + 1) for i in range(nparams)]
                gate = ours(*params)
                dup = copy.deepcopy(gate)
                self.assertIsNot(dup, gate)
                self.assertTrue(gate.mutable)  # the original is not touched
                self.assertFalse(dup.mutable)
                self.assertIs(copy.deepcopy(dup), dup)  # copies of a shared gate are the gate
                self.assertEqual(dup, gate)
                self.assertEqual(dup, theirs(*params))
                self.assertIsInstance(dup, ours)
                self.assertIsInstance(dup, theirs)
                self.assertIs(dup.base_class, theirs)
                self.assertTrue(np.array_equal(dup.to_matrix(), theirs(*params).to_matrix()))
                for attr, value in (("label", "x"), ("params", [0.5] * nparams), ("name", "other")):
                    with self.assertRaises(TypeError):
                        setattr(dup, attr, value)
                self.assertEqual(dup.params, params)
                for change in (lambda: dup.params.__setitem__(0, 0.5), lambda: dup.params.append(0.5),
                               lambda: dup.params.extend([0.5]), lambda: dup.params.pop()):
                    with self.assertRaises(TypeError):  # no in-place change either
                        change()
                self.assertEqual(dup.params, params)
                self.assertIsInstance(dup.params, list)
                self.assertIsNone(dup.label)
                self.assertIsNotNone(dup.definition)  # built on first use, also when shared
                # copy() and to_mutable() give independent, mutable gates
                for mutable in (dup.copy(), dup.to_mutable()):
                    self.assertTrue(mutable.mutable)
                    self.assertIsNot(mutable, dup)
                    mutable.params = [0.7] * nparams
                    mutable.label = "changed"
                    self.assertEqual(dup.params, params)
                    self.assertIsNone(dup.label)
                    self.assertTrue(np.array_equal(mutable.to_matrix(), theirs(*[0.7] * nparams).to_matrix()))
                self.assertEqual(dup.copy(name="renamed").name, "renamed")
                back = pickle.loads(pickle.dumps(dup))
                self.assertEqual(back, dup)
                self.assertFalse(back.mutable)
                self.assertIs(copy.copy(dup).mutable, False)

    def test_symbolic_gates_are_copied_not_shared(self):
        a = Parameter("a")
        gate = gates.GPI2Gate(a * 2)
        dup = copy.deepcopy(gate)
        self.assertIsNot(dup, gate)
        self.assertTrue(dup.mutable)
        qc = QuantumCircuit(1)
        qc.append(gate, [0])
        bound = qc.assign_parameters({a: 0.1})
        self.assertEqual(bound.data[0].operation, ionq_gates.GPI2Gate(0.2))
        self.assertEqual(qc.data[0].operation.params[0], a * 2)

    def test_circuit_copies_share_gates_and_stay_equivalent(self):
        from qiskit.converters import circuit_to_dag, dag_to_circuit

        qc = QuantumCircuit(2)
        qc.append(gates.GPI2Gate(0.3), [0])
        qc.rz(0.4, 1)
        qc.append(gates.MSGate(0.1, 0.2, 0.125), [0, 1])
        qc.append(gates.GPIGate(0.7), [1])
        once = dag_to_circuit(circuit_to_dag(qc))
        twice = dag_to_circuit(circuit_to_dag(once))
        deep = copy.deepcopy(twice)
        for inst_once, inst_twice, inst_deep in zip(once.data, twice.data, deep.data):
            if inst_once.name != "rz":
                self.assertFalse(inst_once.operation.mutable)
                self.assertIs(inst_twice.operation, inst_once.operation)
                self.assertIs(inst_deep.operation, inst_once.operation)
        self.assertTrue(all(inst.operation.mutable for inst in qc.data))
        for other in (once, twice, deep):
            self.assertEqual(other, qc)
            self.assertTrue(Operator(other).equiv(Operator(qc)))

    def test_free_parameters_have_no_matrix(self):
        with self.assertRaises(TypeError):
            gates.GPI2Gate(Parameter("a")).to_matrix()

    def test_pickle_round_trip(self):
        qc = QuantumCircuit(2)
        qc.append(gates.GPI2Gate(0.3), [0])
        qc.append(gates.MSGate(0.1, 0.2, 0.125), [0, 1])
        back = pickle.loads(pickle.dumps(qc))
        self.assertEqual(back, qc)
        self.assertIs(type(back.data[0].operation), gates.GPI2Gate)


if __name__ == "__main__":
    unittest.main()
