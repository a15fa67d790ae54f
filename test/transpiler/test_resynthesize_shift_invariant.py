# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""ResynthesizeShiftInvariant: circuits commuting with a cyclic shift, rebuilt through the QFT."""

from __future__ import annotations

import unittest

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Operator, Statevector
from qiskit.transpiler import PassManager

from .helpers import two_qubit_count
from qstore_qiskit.transpiler import estimated_fidelity, generate_ionq_pass_manager, ionq_target
from qstore_qiskit.transpiler.passes import ResynthesizeShiftInvariant
from qstore_qiskit.transpiler.passes.resynthesize_shift_invariant import _evolve, _some_x_commutes
from qstore_qiskit.transpiler.shift_synthesis import (
    commutes_with,
    find_shift_symmetry,
    shift_permutation,
)


_two_qubit = two_qubit_count


def quantum_walk(num_qubits: int, steps: int, coin_gate: str = "h") -> QuantumCircuit:
    """MQT Bench's ``qwalk`` (coin-controlled increment and decrement, MCX cascades),
    with the node register's bits in the reverse of the usual order."""
    node = QuantumRegister(num_qubits - 1, "node")
    coin = QuantumRegister(1, "coin")
    qc = QuantumCircuit(node, coin)
    k = num_qubits - 1
    for step in range(steps):
        if coin_gate == "h":
            qc.h(coin)
        else:
            qc.rx(0.3 + 0.2 * step, coin)
        for i in range(k - 1):
            qc.mcx(coin[:] + node[i + 1 :], node[i])
        qc.cx(coin, node[k - 1])
        qc.x(coin)
        qc.x(node[1:])
        for i in range(k - 1):
            qc.mcx(coin[:] + node[i + 1 :], node[i])
        qc.cx(coin, node[k - 1])
        qc.x(node[1:])
        qc.x(coin)
    return qc


def controlled_adder(num_qubits: int, constant: int, perm: list[int]) -> QuantumCircuit:
    """``|c, x> -> |c, x + c * constant>`` with the register's bits (LSB first) on the
    qubits ``perm[:-1]`` and the control on ``perm[-1]``: ``constant`` controlled
    increments, each an MCX cascade, then a phase on the control."""
    m = num_qubits - 1
    reg, ctrl = perm[:-1], perm[-1]
    qc = QuantumCircuit(num_qubits)
    for _ in range(constant):
        for j in range(m - 1, 0, -1):  # highest bit first: flip bit j if bits below are 1
            qc.mcx([ctrl, *reg[:j]], reg[j])
        qc.cx(ctrl, reg[0])
    qc.rz(0.7, ctrl)
    return qc


class TestShiftSymmetry(unittest.TestCase):
    """The symmetry search on unitaries."""

    def test_finds_register_order_of_a_walk(self):
        qc = quantum_walk(5, 2)
        found = find_shift_symmetry(Operator(qc).data, 5)
        self.assertIsNotNone(found)
        register, others = found
        self.assertEqual(others, (4,))  # the coin
        # The walk increments with node[3] as least significant bit.
        self.assertEqual(register, (3, 2, 1, 0))

    def test_shift_permutation_adds_one(self):
        t = shift_permutation((2, 0), 3)  # qubit 2 is the LSB, qubit 0 the MSB
        # |q2 q1 q0> = |001> means value 2 (q0 is the MSB): +1 -> value 3 -> q2 = 1.
        self.assertEqual(t[0b001], 0b101)
        self.assertEqual(t[0b101], 0b000)
        self.assertEqual(t[0b010], 0b110)  # q1 is untouched

    def test_random_unitary_has_no_symmetry(self):
        for seed in range(3):
            qc = random_circuit(4, 6, max_operands=2, seed=seed)
            with self.subTest(seed=seed):
                self.assertIsNone(find_shift_symmetry(Operator(qc).data, 4))

    def test_commutes_with_detects_a_single_entry(self):
        u = np.eye(8, dtype=complex)
        t = shift_permutation((0, 1, 2), 3)
        self.assertTrue(commutes_with(u, t))
        u[5, 5] = -1
        self.assertFalse(commutes_with(u, t))


class TestPrecheck(unittest.TestCase):
    """The random-vector precheck and the simulation it uses."""

    @staticmethod
    def _ops(qc):
        return [(i.operation, [qc.find_bit(q).index for q in i.qubits]) for i in qc.data]

    def test_evolve_matches_operator(self):
        qc = quantum_walk(5, 1)  # MCX gates on 4-5 qubits: expanded through definitions
        qc.global_phase = 0.4
        got = _evolve(self._ops(qc), 5, np.eye(32, dtype=complex), qc.global_phase)
        np.testing.assert_allclose(got, Operator(qc).data, atol=1e-10)

    def test_walk_passes_random_fails(self):
        walk = quantum_walk(5, 2)
        self.assertTrue(_some_x_commutes(self._ops(walk), 5, 0.0))
        for seed in range(3):
            qc = random_circuit(5, 6, max_operands=2, seed=seed)
            with self.subTest(seed=seed):
                self.assertFalse(_some_x_commutes(self._ops(qc), 5, qc.global_phase))


class TestResynthesizeShiftInvariant(unittest.TestCase):
    """The pass and its use at level 3."""

    def test_walk_is_rewritten_exactly(self):
        for n, steps in ((4, 2), (5, 3), (6, 3)):
            qc = quantum_walk(n, steps)
            shift = ResynthesizeShiftInvariant()
            out = PassManager([shift]).run(qc)
            with self.subTest(n=n):
                self.assertEqual(shift.stats["register"], n - 1)
                # Exact, global phase included.
                np.testing.assert_allclose(Operator(out).data, Operator(qc).data, atol=1e-8)

    def test_level_3_walk_fewer_ms_and_equivalent(self):
        target = ionq_target("aria-1", num_qubits=6)
        qc = quantum_walk(6, 3, coin_gate="rx")
        out2 = generate_ionq_pass_manager(target=target, optimization_level=2).run(qc)
        out3 = generate_ionq_pass_manager(target=target, optimization_level=3).run(qc)
        self.assertTrue(Operator(out3).equiv(Operator(qc)))
        # 3 steps of 2 x (C5X, C4X, C3X, CCX, CX) vs 2 QFTs on 5 qubits and a multiplexor.
        self.assertLess(_two_qubit(out3), _two_qubit(out2) / 3)
        self.assertGreater(estimated_fidelity(out3, target), estimated_fidelity(out2, target))

    def test_controlled_adder_any_bit_order(self):
        rng = np.random.default_rng(5)
        for constant in (1, 3, 6):
            perm = [int(q) for q in rng.permutation(5)]
            qc = controlled_adder(5, constant, perm)
            shift = ResynthesizeShiftInvariant()
            out = PassManager([shift]).run(qc)
            with self.subTest(constant=constant):
                self.assertEqual(shift.stats["register"], 4)
                self.assertTrue(Operator(out).equiv(Operator(qc)))
                # Any adder commutes with +1 on its register, in the register's order.
                register = find_shift_symmetry(Operator(qc).data, 5)[0]
                self.assertEqual(list(register), perm[:-1])

    def test_final_measurements_are_kept(self):
        qc = quantum_walk(5, 2)
        qc.measure_all()
        shift = ResynthesizeShiftInvariant()
        out = PassManager([shift]).run(qc)
        self.assertEqual(shift.stats["register"], 4)
        self.assertEqual(out.count_ops()["measure"], 5)
        body = out.remove_final_measurements(inplace=False)
        self.assertTrue(Operator(body).equiv(Operator(qc.remove_final_measurements(inplace=False))))

    def test_left_alone(self):
        # A mid-circuit measurement, a parameter, a wide circuit, no symmetry.
        walk = quantum_walk(4, 1)
        mid = walk.copy()
        mid.add_register(ClassicalRegister(1))
        mid.measure(0, 0)
        mid.compose(walk, inplace=True)
        param = walk.copy()
        param.rz(Parameter("t"), 0)
        wide = quantum_walk(9, 1)
        random = random_circuit(5, 8, max_operands=3, seed=3)
        for name, qc in (("mid", mid), ("param", param), ("wide", wide), ("random", random)):
            shift = ResynthesizeShiftInvariant()
            out = PassManager([shift]).run(qc)
            with self.subTest(name=name):
                self.assertEqual(shift.stats["register"], 0)
                self.assertEqual(out, qc)


try:
    from mqt.bench import BenchmarkLevel, get_benchmark

    HAS_MQT_BENCH = True
except ImportError:  # pragma: no cover - depends on the environment
    HAS_MQT_BENCH = False


@unittest.skipUnless(HAS_MQT_BENCH, "MQT Bench not installed")
class TestMqtQuantumWalk(unittest.TestCase):
    """MQT Bench's ``qwalk`` (already decomposed into 1-3 qubit gates) at level 3."""

    def test_level_3_both_modes(self):
        for n in (4, 6):
            qc = get_benchmark("qwalk", BenchmarkLevel.INDEP, n).remove_final_measurements(
                inplace=False
            )
            target = ionq_target("aria-1", num_qubits=n)
            out2 = generate_ionq_pass_manager(target=target, optimization_level=2).run(qc)
            out3 = generate_ionq_pass_manager(target=target, optimization_level=3).run(qc)
            zero3 = generate_ionq_pass_manager(
                target=target, optimization_level=3, qubits_initially_zero=True
            ).run(qc)
            with self.subTest(n=n):
                self.assertTrue(Operator(out3).equiv(Operator(qc)))
                self.assertTrue(Statevector(zero3).equiv(Statevector(qc)))
                self.assertLess(_two_qubit(out3), _two_qubit(out2) / 2)
                self.assertLess(_two_qubit(zero3), _two_qubit(out2) / 2)


if __name__ == "__main__":
    unittest.main()
