# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""ResynthesizeNativeBlocks: exact, never worse, input untouched when it loses, and the
kept candidate equal to the plain pass sequence it replaces."""

from __future__ import annotations

import contextlib
import copy
import unittest
from unittest import mock

from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit.circuit.random import random_circuit
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.passmanager import PropertySet
from qiskit.quantum_info import Operator, Statevector
from qiskit.transpiler.passes import Collect2qBlocks, ConsolidateBlocks
from qiskit_ionq.ionq_gates import MSGate

from qstore_qiskit.transpiler import generate_ionq_pass_manager, ionq_target
from qstore_qiskit.transpiler.passes import (
    AbsorbPiPulses,
    LowerAndResynthesize,
    LowerToIonQNative,
    ResynthesizeNativeBlocks,
)
from qstore_qiskit.transpiler.passes import lower_and_resynthesize, resynthesize_native
from qstore_qiskit.transpiler.native_ops import entries_to_dag
from qstore_qiskit.transpiler.passes.absorb_pi_pulses import absorb_entries
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


class TestWorkingDag(unittest.TestCase):
    """``working_dag`` (native gates as unitaries) gives ConsolidateBlocks the same block
    matrices, bit for bit, as the native circuit's working copy, hence the same round."""

    @staticmethod
    def consolidated(work):
        consolidate = ConsolidateBlocks(force_consolidate=True)
        consolidate.property_set = PropertySet()
        return consolidate.run(work)

    @staticmethod
    def fingerprint(dag):
        out = []
        for node in dag.topological_op_nodes():
            matrix = node.matrix
            out.append((node.name, node.qargs, None if matrix is None else matrix.tobytes()))
        return out

    def test_same_blocks_and_round_as_the_native_circuit(self):
        compared = 0
        for device, zero in (("aria-1", False), ("forte-1", True)):
            target = ionq_target(device)
            for seed in range(8):
                source = random_circuit(5, 12, max_operands=2, seed=seed, measure=seed % 2 == 0)
                dag = circuit_to_dag(source)
                lower = LowerToIonQNative(target, qubits_initially_zero=zero)
                entries = lower.lower_entries(dag)
                entries = absorb_entries(entries, dag.qubits) or entries
                native = entries_to_dag(dag, entries)
                before = self.fingerprint(native)
                expected = self.consolidated(resynthesize_native.working_copy(native))
                got = self.consolidated(resynthesize_native.working_dag(dag, entries))
                self.assertEqual(self.fingerprint(got), self.fingerprint(expected), (device, seed))
                self.assertEqual(self.fingerprint(native), before)  # the native DAG is untouched
                candidate = lower.lower_entries(got)
                reference = lower.lower_entries(expected)
                self.assertEqual(
                    [(e[0], e[3], repr(e[1])) for e in candidate],
                    [(e[0], e[3], repr(e[1])) for e in reference],
                )
                compared += sum(1 for node in got.op_nodes() if node.name == "unitary")
        self.assertGreater(compared, 50)

    def test_symbolic_gates_stay_native(self):
        theta = Parameter("t")
        qc = QuantumCircuit(2)
        qc.rx(theta, 0)
        qc.cx(0, 1)
        qc.ry(0.3, 1)
        dag = circuit_to_dag(qc)
        entries = LowerToIonQNative(ionq_target("aria-1")).lower_entries(dag)
        work = resynthesize_native.working_dag(dag, entries)
        names = [node.name for node in work.topological_op_nodes()]
        self.assertIn("gpi2", [e[0] for e in entries])
        symbolic = [e for e in entries if any(not isinstance(p, float) for p in e[1] or [])]
        self.assertTrue(symbolic)
        for entry in symbolic:
            self.assertIn(entry[0], names)
        self.assertIn("unitary", names)


@contextlib.contextmanager
def count_resynthesis_rounds():
    """Count the calls of ``consolidate_and_lower`` (one per resynthesis round)."""
    rounds: list[int] = []
    original = resynthesize_native.consolidate_and_lower

    def counting(*args, **kwargs):
        rounds.append(1)
        return original(*args, **kwargs)

    with mock.patch.object(resynthesize_native, "consolidate_and_lower", counting), mock.patch.object(
        lower_and_resynthesize, "consolidate_and_lower", counting
    ):
        yield rounds


class TestLowerAndResynthesize(unittest.TestCase):
    """The fused pass gives node for node what the two passes give, and the optimization
    stage then passes its output through instead of resynthesising it again."""

    def test_equals_lowering_then_resynthesis(self):
        kept = rejected = 0
        for device, zero in (("aria-1", False), ("forte-1", True), ("aria-1", True)):
            target = ionq_target(device)
            for seed in range(12):
                source = random_circuit(5, 12, max_operands=2, seed=seed)
                dag = circuit_to_dag(source)
                lowered = LowerToIonQNative(
                    target, qubits_initially_zero=zero, absorb_pi_pulses=True
                ).run(circuit_to_dag(source))
                resynth = ResynthesizeNativeBlocks(target, qubits_initially_zero=zero)
                resynth.property_set = PropertySet()
                expected = resynth.run(lowered)
                fused = LowerAndResynthesize(target, qubits_initially_zero=zero)
                fused.property_set = PropertySet()
                out = fused.run(dag)
                self.assertEqual(dag_to_circuit(out), dag_to_circuit(expected), (device, zero, seed))
                if zero:
                    self.assertTrue(Statevector(dag_to_circuit(out)).equiv(Statevector(source)))
                else:
                    self.assertTrue(Operator(dag_to_circuit(out)).equiv(Operator(source)))
                kept += expected is not lowered
                rejected += expected is lowered
        # Both branches of the comparison are exercised.
        self.assertGreater(kept, 0)
        self.assertGreater(rejected, 0)

    def test_optimization_stage_passes_the_output_through(self):
        target = ionq_target("aria-1", num_qubits=5)
        source = random_circuit(5, 12, max_operands=2, seed=3)
        options = dict(
            target=target,
            translation_method="qstore",
            optimization_level=2,
            seed_transpiler=1,
            qubits_initially_zero=False,
        )
        with count_resynthesis_rounds() as rounds:
            both = transpile(source, optimization_method="qstore", **options)
            fused_rounds = len(rounds)
            rounds.clear()
            # Without the qstore optimization stage, the translation does not resynthesise.
            transpile(source, **options)
            plain_rounds = len(rounds)
        self.assertEqual(fused_rounds, 1)
        self.assertEqual(plain_rounds, 0)
        self.assertTrue(Operator.from_circuit(both).equiv(Operator(source)))

    def test_stage_reruns_on_another_circuit_or_other_options(self):
        target = ionq_target("aria-1")
        dag = circuit_to_dag(random_circuit(4, 10, max_operands=2, seed=5))
        fused = LowerAndResynthesize(target)
        fused.property_set = PropertySet()
        out = fused.run(dag)
        other = ResynthesizeNativeBlocks(target, qubits_initially_zero=True)
        other.property_set = fused.property_set
        with count_resynthesis_rounds() as rounds:
            other.run(out)  # other options: runs
            same = ResynthesizeNativeBlocks(target)
            same.property_set = fused.property_set
            same.run(copy.copy(out))  # another circuit object: runs
            same.run(out)  # the fused pass's own output: passed through
        self.assertEqual(len(rounds), 2)


def target_spec(target):
    # pylint: disable=import-outside-toplevel
    from qstore_qiskit.transpiler.target import spec_from_target

    return spec_from_target(target)


if __name__ == "__main__":
    unittest.main()
