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

    def test_node_checks_and_node_rebuild_give_the_same_circuit(self):
        """Standard-gate pairs checked on DAG nodes (and the moved DAG rebuilt from the
        nodes) give gate for gate the circuit of the operation-level path."""
        from qiskit.circuit.random import random_circuit  # pylint: disable=import-outside-toplevel

        def sequence(dag):
            return [(n.name, n.qargs, n.cargs, tuple(map(repr, n.params))) for n in dag.topological_op_nodes()]

        moved = 0
        for seed in range(120):
            qc = random_circuit(4, 10, max_operands=2, seed=seed, measure=seed % 3 == 0)
            fast = CommuteIntoTwoQubitBlocks()
            slow = CommuteIntoTwoQubitBlocks()
            slow._node_checker = None  # pylint: disable=protected-access
            dag = circuit_to_dag(qc)
            got, expected = fast.run(dag), slow.run(circuit_to_dag(qc))
            self.assertEqual(sequence(got), sequence(expected), seed)
            self.assertEqual(fast._cache, slow._cache)  # pylint: disable=protected-access
            moved += got is not dag
        self.assertGreater(moved, 10)

    def test_node_checker_agrees_with_checker(self):
        rng = np.random.default_rng(11)
        names = [
            name for name, g in get_standard_gate_name_mapping().items()
            if 1 <= g.num_qubits <= 2 and name not in ("measure", "reset", "delay", "barrier")
        ]
        checker = SessionCommutationChecker.cc.commute_nodes
        for _ in range(300):
            qc = QuantumCircuit(3)
            for name in rng.choice(names, size=2):
                gate = get_standard_gate_name_mapping()[name]
                params = [float(rng.choice([0.0, np.pi, rng.uniform(-4, 4)])) for _ in gate.params]
                gate = type(gate)(*params) if params else gate
                qubits = [int(q) for q in rng.choice(3, size=gate.num_qubits, replace=False)]
                qc.append(gate, qubits)
            a, b = circuit_to_dag(qc).topological_op_nodes()
            self.assertEqual(
                checker(a, b, None, 1.0, 3),
                SessionCommutationChecker.commute(a.op, a.qargs, a.cargs, b.op, b.qargs, b.cargs),
                f"{a.name}{a.qargs} {a.params} vs {b.name}{b.qargs} {b.params}",
            )


class TestConsolidateTwoQubitBlocks(unittest.TestCase):
    """One pass, the output of ClearBlockList + ConsolidateBlocks(force_consolidate=True)."""

    def run_both(self, qc, stale: bool):
        from qiskit.transpiler.passes import Collect2qBlocks, ConsolidateBlocks  # pylint: disable=import-outside-toplevel

        from qstore_qiskit.transpiler.passes import ClearBlockList, ConsolidateTwoQubitBlocks  # pylint: disable=import-outside-toplevel

        outs = []
        for passes in ([ConsolidateTwoQubitBlocks()], [ClearBlockList(), ConsolidateBlocks(force_consolidate=True)]):
            dag = circuit_to_dag(qc)
            props = PropertySet()
            if stale:  # a block list of another circuit
                collect = Collect2qBlocks()
                collect.property_set = props
                collect.run(circuit_to_dag(qc.reverse_ops()))
            for pass_ in passes:
                pass_.property_set = props
                dag = pass_.run(dag) or dag
            self.assertIsNone(props["block_list"])
            outs.append([(n.name, n.qargs, n.cargs, [repr(p) if not hasattr(p, "shape") else p.tobytes() for p in n.params])
                         for n in dag.topological_op_nodes()])
        return outs

    def test_same_output(self):
        from qiskit.circuit.random import random_circuit  # pylint: disable=import-outside-toplevel

        consolidated = 0
        for seed in range(40):
            qc = random_circuit(4, 8, max_operands=2, seed=seed, measure=seed % 2 == 0)
            got, expected = self.run_both(qc, stale=seed % 4 == 1)
            self.assertEqual(got, expected, seed)
            consolidated += any(name == "unitary" for name, *_ in got)
        self.assertGreater(consolidated, 20)

    def test_control_flow_blocks_consolidated_as_qiskits(self):
        from qiskit.converters import dag_to_circuit  # pylint: disable=import-outside-toplevel
        from qiskit.transpiler.passes import ConsolidateBlocks  # pylint: disable=import-outside-toplevel

        from qstore_qiskit.transpiler.passes import ConsolidateTwoQubitBlocks  # pylint: disable=import-outside-toplevel

        qc = QuantumCircuit(2, 1)
        qc.h(0)
        qc.cx(0, 1)
        qc.measure(0, 0)
        with qc.if_test((qc.clbits[0], 1)):
            qc.cx(0, 1)
            qc.rz(0.3, 1)
            qc.cx(1, 0)
        outs = []
        for pass_ in (ConsolidateTwoQubitBlocks(), ConsolidateBlocks(force_consolidate=True)):
            pass_.property_set = PropertySet()
            outs.append(dag_to_circuit(pass_.run(circuit_to_dag(qc))))
        self.assertEqual(outs[0], outs[1])
        inner = [i for i in outs[0].data if i.operation.name == "if_else"][0].operation.blocks[0]
        self.assertEqual(inner.count_ops(), {"unitary": 1})


class TestStatePreparationPieces(unittest.TestCase):
    """The lowering's shortcuts for the state preparation are NumPy's results, bit for bit."""

    def test_svd_is_numpys(self):
        from qstore_qiskit.transpiler.synthesis import svd2 as _svd  # pylint: disable=import-outside-toplevel

        rng = np.random.default_rng(3)
        cases = [rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)) for _ in range(2000)]
        cases += [np.eye(2, dtype=complex), np.zeros((2, 2), dtype=complex), np.array([[0, 1], [0, 0]], dtype=complex),
                  np.array([[1e-300, 0], [0, 1e300]], dtype=complex), np.array([[-0.0, 1j], [1, -0.0]])]
        for m in cases:
            for got, expected in zip(_svd(m), np.linalg.svd(m)):
                self.assertEqual(got.tobytes(), expected.tobytes())
                self.assertEqual((got.dtype, got.shape), (expected.dtype, expected.shape))
        real = rng.normal(size=(2, 2))
        for got, expected in zip(_svd(real), np.linalg.svd(real)):
            self.assertEqual(got.tobytes(), expected.tobytes())
        with self.assertRaises(np.linalg.LinAlgError):
            _svd(np.array([[np.nan, 1], [0, 1]], dtype=complex))

    def test_identity_constant_is_kron2_of_identities(self):
        from qstore_qiskit.transpiler.synthesis import I2 as _I2, I4 as _I4  # pylint: disable=import-outside-toplevel
        from qstore_qiskit.transpiler.synthesis import kron2  # pylint: disable=import-outside-toplevel

        self.assertEqual(kron2(_I2, _I2).tobytes(), _I4.tobytes())
        self.assertEqual(kron2(np.eye(2, dtype=complex), np.eye(2, dtype=complex)).tobytes(), _I4.tobytes())
        with self.assertRaises(ValueError):
            _I4[0, 0] = 2.0  # read-only: shared by every lowering


class TestChecksByName(unittest.TestCase):
    """CheckNativeForm's and CheckIonQInput's shortcuts decide as their full sweeps do."""

    def test_native_form(self):
        from qstore_qiskit.transpiler import generate_ionq_pass_manager  # pylint: disable=import-outside-toplevel
        from qstore_qiskit.transpiler.passes import CheckNativeForm  # pylint: disable=import-outside-toplevel

        qc = QuantumCircuit(2)
        qc.h(0)
        qc.cx(0, 1)
        native = generate_ionq_pass_manager("aria-1", 2, num_qubits=2).run(qc)
        check = CheckNativeForm(ionq_target("aria-1"))
        for circuit, expected in ((qc, False), (native, True)):
            check.property_set = PropertySet()
            check.run(circuit_to_dag(circuit))
            self.assertIs(check.property_set["ionq_native_form"], expected)

    def test_non_finite_parameter_of_a_standard_gate_is_rejected(self):
        from qiskit.transpiler.exceptions import TranspilerError  # pylint: disable=import-outside-toplevel

        from qstore_qiskit.transpiler.passes import CheckIonQInput  # pylint: disable=import-outside-toplevel

        for value in (float("nan"), float("inf")):
            qc = QuantumCircuit(2)
            qc.h(0)
            qc.rz(value, 1)
            check = CheckIonQInput(ionq_target("aria-1"))
            check.property_set = PropertySet()
            with self.assertRaisesRegex(TranspilerError, "Instruction 'rz' has a non-finite parameter"):
                check.run(circuit_to_dag(qc))


if __name__ == "__main__":
    unittest.main()
