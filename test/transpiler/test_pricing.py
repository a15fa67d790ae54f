# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Pricing a resynthesis candidate without its phases (``lower_entries(...,
pricing=True)``) gives exactly the full candidate's cost and the same gates."""

from __future__ import annotations

import math
import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.random import random_circuit
from qiskit.converters import circuit_to_dag
from qiskit.passmanager import PropertySet
from qiskit.transpiler.passes import ConsolidateBlocks

from qstore_qiskit.transpiler import ionq_target
from qstore_qiskit.transpiler.native_ops import entries_cost
from qstore_qiskit.transpiler.passes import LowerToIonQNative
from qstore_qiskit.transpiler.passes.absorb_pi_pulses import absorb_entries
from qstore_qiskit.transpiler.passes.resynthesize_native import working_dag
from qstore_qiskit.transpiler.synthesis import ANGLE_TOL


def lowered(lower: LowerToIonQNative, dag, pricing: bool) -> list:
    entries = lower.lower_entries(dag, pricing=pricing)
    return absorb_entries(entries, dag.qubits) or entries


def shape(entries: list) -> list:
    """Names and wires of the gates (``rz`` is a virtual frame: not priced)."""
    return [(e[0], e[3]) for e in entries if e[0] != "rz"]


def angles(entries: list) -> list:
    """The priced angles: MS and ZZ turns (ZZ's sign may differ, its error does not)."""
    return [abs(e[1][-1]) if isinstance(e[1][-1], float) else str(e[1][-1]) for e in entries if e[0] in ("ms", "zz")]


class TestPricing(unittest.TestCase):
    def check(self, lower: LowerToIonQNative, dag) -> None:
        full = lowered(lower, dag, pricing=False)
        priced = lowered(lower, dag, pricing=True)
        self.assertEqual(shape(priced), shape(full))
        self.assertEqual(angles(priced), angles(full))
        self.assertEqual(entries_cost(priced, lower.spec), entries_cost(full, lower.spec))
        for entry in priced:
            if entry[0] in ("gpi", "gpi2"):
                self.assertTrue(isinstance(entry[1][0], float))

    def test_random_circuits_and_their_rounds(self):
        """Both sweeps of the level-2 pass: the lowering of a circuit and of its
        consolidated native output (the round), on Aria and Forte, both modes."""
        checked = 0
        for device, zero in (("aria-1", False), ("aria-1", True), ("forte-1", True), ("forte-1", False)):
            target = ionq_target(device)
            for seed in range(10):
                source = random_circuit(5, 14, max_operands=2, seed=seed, measure=seed % 3 == 0)
                dag = circuit_to_dag(source)
                lower = LowerToIonQNative(target, qubits_initially_zero=zero)
                with self.subTest(device=device, zero=zero, seed=seed, sweep=1):
                    self.check(lower, dag)
                entries = lowered(lower, dag, pricing=False)
                consolidate = ConsolidateBlocks(force_consolidate=True)
                consolidate.property_set = PropertySet()
                work = consolidate.run(working_dag(dag, entries))
                with self.subTest(device=device, zero=zero, seed=seed, sweep=2):
                    self.check(lower, work)
                checked += 1
        self.assertEqual(checked, 40)

    def test_parameterized_circuit(self):
        theta, phi = Parameter("t"), Parameter("p")
        qc = QuantumCircuit(3)
        for layer in range(3):
            for q in range(3):
                qc.ry(theta * (q + 1) + layer, q)
                qc.rz(phi, q)
            qc.cx(0, 1)
            qc.rzz(theta, 1, 2)
            qc.h(2)
        self.check(LowerToIonQNative(ionq_target("aria-1")), circuit_to_dag(qc))
        self.check(LowerToIonQNative(ionq_target("forte-1")), circuit_to_dag(qc))

    def test_angles_at_the_edges_of_the_decision(self):
        """Single-qubit runs whose ZYZ angle lies at, just inside and just outside each
        threshold of the choice between 0, 1 and 2 natives: pricing decides as the
        lowering does (near an edge it asks ``zyz_angles``)."""
        lower = LowerToIonQNative(ionq_target("aria-1"))
        rng = np.random.default_rng(5)
        edges = [0.0, math.pi / 2, math.pi]
        offsets = [0.0, 1e-16, ANGLE_TOL * 0.5, ANGLE_TOL * (1 - 1e-7), ANGLE_TOL, ANGLE_TOL * (1 + 1e-7), 2 * ANGLE_TOL, 1e-6]
        compared = 0
        for edge in edges:
            for offset in offsets:
                for sign in (-1.0, 1.0):
                    theta = edge + sign * offset
                    if not 0.0 <= theta <= math.pi:
                        continue
                    for _ in range(3):
                        phi, lam = rng.uniform(-math.pi, math.pi, 2)
                        qc = QuantumCircuit(1)
                        qc.rz(lam, 0)
                        qc.ry(theta, 0)
                        qc.rz(phi, 0)
                        dag = circuit_to_dag(qc)
                        with self.subTest(theta=theta):
                            self.check(lower, dag)
                        compared += 1
        self.assertGreater(compared, 80)


if __name__ == "__main__":
    unittest.main()
