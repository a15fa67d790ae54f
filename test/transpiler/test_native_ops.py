# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""The entry-list form of native circuits used between the lowering passes."""

from __future__ import annotations

import math
import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.random import random_circuit
from qiskit.circuit.library import RZGate
from qiskit.converters import circuit_to_dag, dag_to_circuit

from qstore_qiskit.transpiler import ionq_target
from qstore_qiskit.transpiler.native_ops import (
    NATIVE_CLASSES,
    entries_cost,
    entries_to_dag,
    entry_op,
)
from qstore_qiskit.transpiler.passes import AbsorbPiPulses, LowerToIonQNative
from qstore_qiskit.transpiler.gauge import I2 as _I2, X as _X, Y as _Y, rotation as _rotation
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


class TestFastConstructions(unittest.TestCase):
    """The shortcuts of the hot path build exactly what the plain code builds."""

    def test_entry_op_equals_constructor(self):
        for name, params in [
            ("ms", [0.125, -0.0, 0.25]),
            ("ms", [0.0, 0.5, 0.1]),
            ("gpi2", [0.3]),
            ("gpi", [-0.0]),
            ("zz", [-0.07]),
            ("rz", [1.5]),
        ]:
            built = entry_op([name, params, None, (), ()])
            expected = NATIVE_CLASSES[name](*params)
            self.assertIs(type(built), type(expected))
            self.assertEqual(built.__dict__.keys(), expected.__dict__.keys())
            for key, value in expected.__dict__.items():
                if key != "_params":
                    self.assertEqual(built.__dict__[key], value, key)
            self.assertEqual(
                [(p, math.copysign(1.0, p)) for p in built.params],
                [(p, math.copysign(1.0, p)) for p in expected.params],
            )
            self.assertIsNot(built.params, params)  # its own list
            self.assertEqual(built.to_matrix().tobytes(), expected.to_matrix().tobytes())

    def test_entry_op_symbolic_params_use_constructor(self):
        theta = Parameter("t")
        built = entry_op(["rz", [theta], None, (), ()])
        self.assertEqual(built, RZGate(theta))

    def test_dot_is_matmul_bit_for_bit(self):
        """The lowering's 2x2 products are ``a.dot(b)``: the same BLAS call as ``a @ b``,
        hence the same bits, for every memory layout the lowering hands it (C order,
        Fortran order as Qiskit's Weyl factors come, conjugate-transposed views)."""
        rng = np.random.default_rng(11)
        checked = 0
        for _ in range(2_000):
            x = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
            y = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
            for a in (x, np.asfortranarray(x), x.conj().T, _rotation(_X, float(rng.normal()))):
                for b in (y, np.asfortranarray(y), y.conj().T, _I2, _X):
                    self.assertEqual(
                        np.ascontiguousarray(a.dot(b)).tobytes(), np.ascontiguousarray(a @ b).tobytes()
                    )
                    checked += 1
        self.assertEqual(checked, 40_000)

    def test_rotation_bit_for_bit(self):
        """``_rotation`` equals ``cos I - i sin P`` computed with NumPy, signs of zeros
        included, for X and Y."""
        rng = np.random.default_rng(5)
        specials = [0.0, -0.0, math.pi, -math.pi, 2 * math.pi, -2 * math.pi, 3 * math.pi]
        specials += [math.pi / 2, -math.pi / 2, 1e-300, -1e-300, 5e-324, -5e-324]
        angles = specials + list(rng.normal(size=20_000) * 3) + list(rng.uniform(-20, 20, 20_000))
        for pauli in (_X, _Y):
            for angle in angles:
                expected = math.cos(angle / 2) * _I2 - 1j * math.sin(angle / 2) * pauli
                self.assertEqual(_rotation(pauli, angle).tobytes(), expected.tobytes(), angle)
