# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Parallel compilation of many circuits (qstore_qiskit.transpiler.parallel)."""

from __future__ import annotations

import os
import unittest
from unittest import mock

from qiskit import QuantumCircuit
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Operator

from qstore_qiskit.transpiler import generate_ionq_pass_manager, parallel
from qstore_qiskit.transpiler.parallel import ParallelPassManager, run_parallel

HAS_FORK = hasattr(os, "fork")


def _circuits(count: int = 6) -> list[QuantumCircuit]:
    return [random_circuit(4, 12, max_operands=2, seed=seed) for seed in range(count)]


class _Boom(Exception):
    pass


def _fail_on_third(circuit: QuantumCircuit) -> QuantumCircuit:
    if circuit.name == "third":
        raise _Boom("third circuit")
    return circuit


class TestRunParallel(unittest.TestCase):
    """Same results, in order, as the serial loop; serial whenever parallel cannot pay."""

    def setUp(self) -> None:
        idle = mock.patch.object(os, "getloadavg", return_value=(0.0, 0.0, 0.0))
        idle.start()
        self.addCleanup(idle.stop)
        self.pm = generate_ionq_pass_manager("aria-1", 2, num_qubits=4)
        self.circuits = _circuits()

    def test_generate_returns_parallel_pass_manager(self):
        self.assertIsInstance(self.pm, ParallelPassManager)

    @unittest.skipUnless(HAS_FORK, "needs the fork start method")
    def test_forked_results_match_serial_in_order(self):
        serial = [self.pm.run(c) for c in self.circuits]
        with mock.patch.object(parallel, "usable_cores", return_value=2):
            forked = run_parallel(self.pm.run, self.circuits, min_ops=0)
        self.assertEqual(len(forked), len(serial))
        for original, a, b in zip(self.circuits, serial, forked):
            self.assertEqual(a, b)
            self.assertTrue(Operator(b).equiv(Operator(original)))

    @unittest.skipUnless(HAS_FORK, "needs the fork start method")
    def test_pass_manager_list_run_is_parallel_and_equal(self):
        serial = [self.pm.run(c) for c in self.circuits]
        with mock.patch.object(parallel, "MIN_PARALLEL_OPS", 0), mock.patch.object(
            parallel, "usable_cores", return_value=2
        ), mock.patch.object(parallel, "_fork_worker", wraps=parallel._fork_worker) as fork:
            out = self.pm.run(self.circuits)
        self.assertEqual(fork.call_count, 1, "a list of circuits was not compiled in a worker")
        self.assertEqual(out, serial)

    @unittest.skipUnless(HAS_FORK, "needs the fork start method")
    def test_worker_exception_propagates(self):
        circuits = _circuits(4)
        circuits[2].name = "third"
        with mock.patch.object(parallel, "usable_cores", return_value=2):
            with self.assertRaises(_Boom):
                run_parallel(_fail_on_third, circuits, min_ops=0)

    def test_serial_fallbacks(self):
        """One core, one circuit, little work or already in a worker: no processes."""
        with mock.patch.object(parallel, "_fork_worker", side_effect=AssertionError):
            with mock.patch.object(parallel, "usable_cores", return_value=1):
                run_parallel(self.pm.run, self.circuits, min_ops=0)
            with mock.patch.object(parallel, "usable_cores", return_value=2):
                run_parallel(self.pm.run, self.circuits[:1], min_ops=0)
                run_parallel(self.pm.run, self.circuits)  # below MIN_PARALLEL_OPS
                run_parallel(self.pm.run, self.circuits, num_processes=1, min_ops=0)
                with mock.patch.dict(os.environ, {"QISKIT_NUM_PROCS": "1"}):
                    run_parallel(self.pm.run, self.circuits, min_ops=0)
                with mock.patch.dict(os.environ, {"QISKIT_IN_PARALLEL": "TRUE"}):
                    out = run_parallel(self.pm.run, self.circuits, min_ops=0)
        self.assertEqual(out, [self.pm.run(c) for c in self.circuits])

    @unittest.skipUnless(HAS_FORK, "needs the fork start method")
    def test_exception_in_parent_share_reaps_the_worker(self):
        """Whichever process fails, the error propagates and no worker is left behind."""
        circuits = _circuits(4)
        for c in circuits:
            c.name = "third"
        pids: list[int] = []
        real_fork = parallel._fork_worker  # pylint: disable=protected-access

        def fork(*args):
            pid, fd = real_fork(*args)
            pids.append(pid)
            return pid, fd

        with mock.patch.object(parallel, "usable_cores", return_value=2), mock.patch.object(
            parallel, "_fork_worker", side_effect=fork
        ):
            with self.assertRaises(_Boom):
                run_parallel(_fail_on_third, circuits, min_ops=0)
        self.assertEqual(len(pids), 1)
        with self.assertRaises(ChildProcessError):  # the worker was reaped
            os.waitpid(pids[0], os.WNOHANG)

    @unittest.skipUnless(HAS_FORK, "needs the fork start method")
    def test_concurrent_batches_do_not_share_a_pool(self):
        """A second thread's batch, while one runs, is compiled in-process, correctly."""
        import threading

        serial = [self.pm.run(c) for c in self.circuits]
        outs: dict[int, list] = {}

        def go(k: int) -> None:
            pm = generate_ionq_pass_manager("aria-1", 2, num_qubits=4)
            outs[k] = run_parallel(pm.run, self.circuits, min_ops=0)

        with mock.patch.object(parallel, "usable_cores", return_value=2):
            threads = [threading.Thread(target=go, args=(k,)) for k in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        # Each thread gets every circuit, in order, correctly compiled. (Not asserted:
        # bit-identical to the serial run; compiles racing in three threads may pick
        # another of equally valid lowerings.)
        for k in range(3):
            self.assertEqual(len(outs[k]), len(serial))
            for original, out in zip(self.circuits, outs[k]):
                self.assertTrue(Operator(out).equiv(Operator(original)))

    def test_busy_machine_stays_serial(self):
        """No idle core by the load average: in-process, counted as a serial batch."""
        before = dict(parallel.STATS)
        with mock.patch.object(parallel, "usable_cores", return_value=2), mock.patch.object(
            os, "getloadavg", return_value=(2.6, 2.0, 2.0)
        ), mock.patch.object(parallel, "_fork_worker", side_effect=AssertionError):
            out = run_parallel(self.pm.run, self.circuits, min_ops=0)
        self.assertEqual(out, [self.pm.run(c) for c in self.circuits])
        self.assertEqual(parallel.STATS["serial_batches"], before["serial_batches"] + 1)
        with mock.patch.object(parallel, "usable_cores", return_value=2), mock.patch.object(
            os, "getloadavg", return_value=(2.4, 2.0, 2.0)
        ):
            self.assertEqual(parallel.parallel_workers([1000, 1000]), 2)

    def test_chunks_balance_by_size(self):
        groups = parallel._chunks([100, 1, 1, 1, 90, 5], 2)  # pylint: disable=protected-access
        self.assertEqual(sorted(i for g in groups for i in g), list(range(6)))
        loads = [sum([100, 1, 1, 1, 90, 5][i] for i in g) for g in groups]
        self.assertLessEqual(max(loads) - min(loads), 10)


if __name__ == "__main__":
    unittest.main()


class TestQiskitParallelTranspile(unittest.TestCase):
    """``transpile([...], num_processes=2)`` with Qiskit's own process pool and our stage
    plugins: the staged pass manager pickles, and the results equal the serial ones."""

    @unittest.skipUnless(HAS_FORK, "needs the fork start method")
    def test_transpile_list_with_qiskit_parallelism(self):
        import dill

        from qiskit import transpile
        from qiskit.transpiler import generate_preset_pass_manager
        from qiskit.utils import should_run_in_parallel

        from qstore_qiskit.transpiler import ionq_target

        target = ionq_target("aria-1", num_qubits=6)
        kwargs = dict(
            target=target, init_method="qstore", translation_method="qstore",
            optimization_method="qstore", optimization_level=2, seed_transpiler=3,
        )
        staged = generate_preset_pass_manager(**kwargs)
        # Qiskit ships the pass manager to its workers with dill (HLSConfig holds lambdas).
        self.assertIsNotNone(dill.loads(dill.dumps(staged)))
        circuits = [random_circuit(5, 10, max_operands=2, seed=seed) for seed in range(4)]
        serial = transpile(circuits, num_processes=1, **kwargs)
        with should_run_in_parallel.override(True):
            forked = transpile(circuits, num_processes=2, **kwargs)
        self.assertEqual(forked, serial)  # equivalence of the serial output: tested elsewhere


class TestDirectRun(unittest.TestCase):
    """``ParallelPassManager.run`` of one circuit calls the passes directly: the same
    output and property set as Qiskit's task runner, and Qiskit's runner whenever the
    direct one would differ (callbacks, ``requires``, a repeated pass, pass logging)."""

    def _qiskit_run(self, pm, circuit):
        from qiskit.transpiler import PassManager

        return PassManager.run(pm, circuit)

    def test_same_output_and_property_set_as_qiskit(self):
        for level in (0, 1, 2, 3):
            pm = generate_ionq_pass_manager("aria-1", level, num_qubits=5, qubits_initially_zero=level % 2 == 0)
            for seed in range(4 if level < 3 else 1):
                circuit = random_circuit(4, 8, max_operands=3, seed=seed, measure=seed % 2 == 0)
                with mock.patch.object(ParallelPassManager, "_run_direct", wraps=pm._run_direct) as direct:
                    out = pm.run(circuit)
                self.assertEqual(direct.call_count, 1)
                direct_props = dict(pm.property_set)
                expected = self._qiskit_run(pm, circuit)
                self.assertEqual(out, expected)
                self.assertEqual(out.name, expected.name)
                self.assertEqual(out.layout, expected.layout)
                self.assertEqual(direct_props.keys(), dict(pm.property_set).keys())
                self.assertEqual(direct_props["ionq_native_form"], pm.property_set["ionq_native_form"])

    def test_native_input_skips_the_conditional_passes(self):
        pm = generate_ionq_pass_manager("aria-1", 2, num_qubits=3)
        native = pm.run(random_circuit(3, 6, max_operands=2, seed=3))
        again = pm.run(native)
        self.assertTrue(pm.property_set["ionq_native_form"])
        self.assertEqual(again, native)

    def test_errors_are_the_same(self):
        from qiskit.transpiler.exceptions import TranspilerError

        pm = generate_ionq_pass_manager("aria-1", 2, num_qubits=2)
        wide = QuantumCircuit(3)
        wide.h(range(3))
        with self.assertRaisesRegex(TranspilerError, "uses 3 qubits but the target has only 2"):
            pm.run(wide)

    def test_transformation_pass_must_return_a_dag(self):
        from qiskit.transpiler.basepasses import TransformationPass
        from qiskit.transpiler.exceptions import TranspilerError

        class Broken(TransformationPass):
            def run(self, dag):
                return None

        pm = ParallelPassManager([Broken()])
        with self.assertRaisesRegex(TranspilerError, "Transformation passes should return a transformed dag"):
            pm.run(QuantumCircuit(1))

    def test_falls_back_to_qiskit_when_it_would_differ(self):
        import logging

        from qiskit.transpiler.basepasses import AnalysisPass

        class Needs(AnalysisPass):
            def __init__(self):
                super().__init__()
                self.requires = [Counted()]

            def run(self, dag):
                pass

        class Counted(AnalysisPass):
            def run(self, dag):
                self.property_set["runs"] = (self.property_set["runs"] or 0) + 1

        counted = Counted()
        circuit = QuantumCircuit(1)
        cases = {
            "requires": ParallelPassManager([Needs()]),
            "repeated pass": ParallelPassManager([counted, counted]),
        }
        for label, pm in cases.items():
            with self.subTest(label), mock.patch.object(ParallelPassManager, "_run_direct") as direct:
                pm.run(circuit)
                direct.assert_not_called()
        # A pass that appears twice runs once (Qiskit skips a completed analysis pass).
        pm = ParallelPassManager([counted, counted])
        pm.run(circuit)
        self.assertEqual(pm.property_set["runs"], 1)
        pm = generate_ionq_pass_manager("aria-1", 2, num_qubits=2)
        with mock.patch.object(ParallelPassManager, "_run_direct") as direct:
            pm.run(circuit, callback=lambda **_: None)
            logger = logging.getLogger("qiskit.passmanager.base_tasks")
            old = logger.level
            logger.setLevel(logging.INFO)
            try:
                pm.run(circuit)
            finally:
                logger.setLevel(old)
            direct.assert_not_called()


class TestDirectRunOutput(unittest.TestCase):
    """The direct run builds its output circuit as Qiskit's ``dag_to_circuit`` does (without
    adding the registers twice) and remembers its steps per pass list."""

    @staticmethod
    def _same_circuit(test, got, expected):
        test.assertEqual(got, expected)
        # Same instructions in the same order (``==`` compares DAGs, i.e. up to the order
        # of commuting instructions), same wires, registers and attributes.
        test.assertEqual(list(got.data), list(expected.data))
        test.assertEqual(got.qubits, expected.qubits)
        test.assertEqual(got.clbits, expected.clbits)
        test.assertEqual(got.qregs, expected.qregs)
        test.assertEqual(got.cregs, expected.cregs)
        test.assertEqual(got.ancillas, expected.ancillas)
        test.assertEqual(got.global_phase, expected.global_phase)
        test.assertEqual(got.metadata, expected.metadata)
        test.assertEqual(got.name, expected.name)
        test.assertEqual(got.layout, expected.layout)
        test.assertEqual(
            {k for k in vars(got) if not k.startswith("__")}, {k for k in vars(expected) if not k.startswith("__")}
        )
        for key in ("_duration", "_unit", "_op_start_times", "_clbit_write_latency", "_conditional_latency"):
            test.assertEqual(getattr(got, key, "absent"), getattr(expected, key, "absent"), key)

    def test_dag_to_circuit_is_qiskits(self):
        from qiskit import ClassicalRegister, QuantumRegister
        from qiskit.circuit import AncillaRegister
        from qiskit.converters import circuit_to_dag, dag_to_circuit

        qc = QuantumCircuit(QuantumRegister(2, "a"), AncillaRegister(1, "anc"), ClassicalRegister(2, "c"),
                            name="named", global_phase=0.4, metadata={"k": [1]})
        qc.h(0)
        qc.cx(0, 2)
        qc.rz(0.3, 1)
        qc.measure([0, 2], [0, 1])
        for circuit in (qc, random_circuit(4, 6, measure=True, seed=5)):
            dag = circuit_to_dag(circuit)
            expected = dag_to_circuit(dag, copy_operations=False)
            got = parallel._dag_to_circuit(dag)
            self._same_circuit(self, got, expected)
            self.assertIs(got.metadata, expected.metadata if expected.metadata else got.metadata)
            self.assertTrue(all(a.operation is b.operation for a, b in zip(got.data, expected.data)
                                if not getattr(a.operation, "_standard_gate", None)))

    def test_direct_output_is_qiskits_output(self):
        from qiskit import ClassicalRegister, QuantumRegister
        from qiskit.transpiler import PassManager

        qc = QuantumCircuit(QuantumRegister(3, "q"), ClassicalRegister(3, "c"), global_phase=0.2,
                            metadata={"tag": 7})
        qc.h(0)
        qc.cx(0, 1)
        qc.ry(0.7, 2)
        qc.cz(1, 2)
        qc.measure(range(3), range(3))
        for level in (0, 1, 2):
            pm = generate_ionq_pass_manager("aria-1", level, num_qubits=4, qubits_initially_zero=True)
            for circuit in (qc, random_circuit(3, 8, measure=True, seed=level)):
                with self.subTest(level=level):
                    got = pm.run(circuit)
                    expected = PassManager.run(pm, circuit)  # Qiskit's own runner
                    self._same_circuit(self, got, expected)

    def test_layout_in_the_property_set_goes_through_qiskits_backend(self):
        from qiskit.transpiler import Layout, PassManager
        from qiskit.transpiler.basepasses import AnalysisPass

        class SetLayout(AnalysisPass):
            def run(self, dag):
                self.property_set["layout"] = Layout.generate_trivial_layout(*dag.qregs.values())

        circuit = QuantumCircuit(2)
        circuit.h(0)
        circuit.cx(0, 1)
        pm = ParallelPassManager([SetLayout()])
        with mock.patch.object(parallel, "_dag_to_circuit", wraps=parallel._dag_to_circuit) as fast:
            out = pm.run(circuit)
            fast.assert_not_called()  # Qiskit's backend attaches the layout
            self.assertIsNotNone(out.layout)
            self.assertEqual(out, PassManager.run(pm, circuit))
            self.assertEqual(out.layout, PassManager.run(pm, circuit).layout)
            ParallelPassManager([]).run(circuit)
            fast.assert_called_once()

        class OwnBackend(ParallelPassManager):  # a subclass's own conversion is used
            def _passmanager_backend(self, passmanager_ir, in_program, **kwargs):
                out = super()._passmanager_backend(passmanager_ir, in_program, **kwargs)
                out.name = "own"
                return out

        self.assertEqual(OwnBackend([]).run(circuit).name, "own")

    def test_steps_follow_changes_of_the_pass_list(self):
        from qiskit.transpiler.basepasses import AnalysisPass

        class Mark(AnalysisPass):
            def __init__(self, tag):
                super().__init__()
                self.tag = tag

            def run(self, dag):
                self.property_set["marks"] = (self.property_set["marks"] or ()) + (self.tag,)

        circuit = QuantumCircuit(1)
        first, second, third = Mark("a"), Mark("b"), Mark("c")
        pm = ParallelPassManager([first])
        pm.run(circuit)
        self.assertEqual(pm.property_set["marks"], ("a",))
        pm.append(second)
        pm.run(circuit)
        self.assertEqual(pm.property_set["marks"], ("a", "b"))
        pm.replace(1, third)
        pm.run(circuit)
        self.assertEqual(pm.property_set["marks"], ("a", "c"))
        pm._tasks[0].append(Mark("d"))  # a list inside the pass list, changed in place
        pm.run(circuit)
        self.assertEqual(pm.property_set["marks"], ("a", "d", "c"))
        pm.remove(0)
        pm.run(circuit)
        self.assertEqual(pm.property_set["marks"], ("c",))
        # An equal pass (same arguments) in place of another is still a new pass.
        equal = Mark("c")
        pm.replace(0, equal)
        pm.run(circuit)
        self.assertIs(pm._direct_steps()[0], equal)
