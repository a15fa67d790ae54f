# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""The passes added for compile speed: same answers as the slow paths they replace."""

from __future__ import annotations

import unittest

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.commutation_library import SessionCommutationChecker
from qiskit.circuit.library import UnitaryGate, get_standard_gate_name_mapping
from qiskit.converters import circuit_to_dag
from qiskit.passmanager import PropertySet
from qiskit.providers.fake_provider import GenericBackendV2
from qiskit.quantum_info import Operator, random_unitary
from qiskit.transpiler import Target

from qstore_qiskit.transpiler import ionq_target
from qstore_qiskit.transpiler.passes import CommuteIntoTwoQubitBlocks, UniformLayoutScore
from qstore_qiskit.transpiler.passes.uniform_layout_score import is_uniform_all_to_all


class TestUniformLayoutScore(unittest.TestCase):
    """The flat VF2 error map is set on IonQ targets only, and keeps outputs correct."""

    def run_pass(self, target) -> PropertySet:
        pass_ = UniformLayoutScore(target)
        pass_.property_set = PropertySet()
        qc = QuantumCircuit(3)
        qc.cx(0, 1)
        pass_.run(circuit_to_dag(qc))
        return pass_.property_set

    def test_ionq_target_gets_flat_map(self):
        self.assertTrue(is_uniform_all_to_all(ionq_target("forte-1")))
        self.assertIsNotNone(self.run_pass(ionq_target("aria-1"))["vf2_avg_error_map"])

    def test_other_targets_untouched(self):
        backend = GenericBackendV2(5, seed=3)  # a line-ish coupling map with varied errors
        self.assertFalse(is_uniform_all_to_all(backend.target))
        self.assertIsNone(self.run_pass(backend.target)["vf2_avg_error_map"])
        self.assertIsNone(self.run_pass(None)["vf2_avg_error_map"])

    def test_transpile_level2_stays_equivalent(self):
        qc = QuantumCircuit(5)
        qc.h(0)
        for i in range(4):
            qc.cx(i, i + 1)
        qc.ccx(0, 2, 4)
        qc.rzz(0.3, 1, 3)
        ionq = ionq_target("aria-1", num_qubits=5)
        # The same per-pair entries in a plain Target (as MQT Bench's IonQ targets are):
        # Qiskit sees a coupling map there and runs its layout search.
        plain = Target(num_qubits=5)
        for name in ionq.operation_names:
            plain.add_instruction(ionq.operation_from_name(name), dict(ionq[name]))
        for target, layout_searched in ((ionq, False), (plain, True)):
            stops, passes = [], []

            def callback(pass_, property_set, **_):
                passes.append(type(pass_).__name__)
                if type(pass_).__name__ == "VF2Layout":
                    stops.append(property_set["VF2Layout_stop_reason"])

            out = transpile(
                qc,
                target=target,
                init_method="qstore",
                translation_method="qstore",
                optimization_method="qstore",
                optimization_level=2,
                qubits_initially_zero=False,
                callback=callback,
            )
            with self.subTest(target=type(target).__name__):
                if layout_searched:
                    # the flat error map stops the search at the first layout
                    self.assertTrue(stops and all(s is not None for s in stops))
                else:
                    # an IonQTarget is all-to-all: no layout or routing stage at all
                    self.assertFalse({"VF2Layout", "SabreLayout", "TrivialLayout", "CheckMap"} & set(passes))
                    self.assertEqual(out.num_qubits, qc.num_qubits)
                self.assertTrue(Operator.from_circuit(out).equiv(Operator(qc)))


class TestCommuteIntoBlocksFastPaths(unittest.TestCase):
    """The memoized, numeric commutation test agrees with Qiskit's checker."""

    def test_numeric_agrees_with_checker(self):
        rng = np.random.default_rng(7)
        gates = [
            g
            for name, g in get_standard_gate_name_mapping().items()
            if g.num_qubits <= 2 and not g.params and name not in ("measure", "reset", "delay")
        ]
        gates += [UnitaryGate(random_unitary(2, seed=1)), UnitaryGate(np.diag([1, 1j]))]
        pass_ = CommuteIntoTwoQubitBlocks()
        pass_.run(circuit_to_dag(QuantumCircuit(1)))  # resets the per-run caches
        checked = 0
        for _ in range(300):
            a, b = rng.choice(len(gates), size=2)
            ga, gb = gates[a], gates[b]
            qa = tuple(int(q) for q in rng.choice(3, size=ga.num_qubits, replace=False))
            qb = tuple(int(q) for q in rng.choice(3, size=gb.num_qubits, replace=False))
            numeric = pass_._commute_numeric(ga, qa, gb, qb)  # pylint: disable=protected-access
            expected = SessionCommutationChecker.commute(ga, qa, [], gb, qb, [])
            self.assertEqual(numeric, expected, f"{ga.name}{qa} vs {gb.name}{qb}")
            checked += 1
        self.assertEqual(checked, 300)

    def test_controlled_unitaries_move_and_stay_equivalent(self):
        """Amplitude-estimation-like circuit: ``c-unitary`` gates (no stored rule)."""
        qc = QuantumCircuit(3)
        qc.h([0, 1, 2])
        for k in range(3):
            cu = UnitaryGate(random_unitary(2, seed=k)).control(1)
            qc.append(cu, [k, (k + 1) % 3])
            qc.cp(0.2 * (k + 1), k, (k + 2) % 3)
            qc.append(UnitaryGate(np.diag([1, np.exp(0.4j * k)])).control(1), [(k + 2) % 3, (k + 1) % 3])
        out = CommuteIntoTwoQubitBlocks().run(circuit_to_dag(qc))
        from qiskit.converters import dag_to_circuit  # pylint: disable=import-outside-toplevel

        self.assertTrue(Operator(dag_to_circuit(out)).equiv(Operator(qc)))


if __name__ == "__main__":
    unittest.main()
