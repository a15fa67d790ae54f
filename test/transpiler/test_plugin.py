# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""The ``qstore`` transpiler stage plugins and ``generate_ionq_pass_manager``'s arguments."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import unittest

from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, transpile
from qiskit.circuit.equivalence_library import SessionEquivalenceLibrary
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Operator, Statevector
from qiskit.transpiler import PassManager
from qiskit.transpiler.preset_passmanagers.plugin import list_stage_plugins
from qiskit_ionq.ionq_gates import MSGate

from qstore_qiskit.transpiler import DEVICES, generate_ionq_pass_manager, ionq_target
from qstore_qiskit.transpiler.plugin import QStoreOptimizationPlugin, QStoreTranslationPlugin

ONE_Q = ("gpi", "gpi2")
TWO_Q = ("ms", "zz")


def count(circuit: QuantumCircuit, names) -> int:
    ops = circuit.count_ops()
    return sum(ops.get(name, 0) for name in names)


def qstore_transpile(qc: QuantumCircuit, level: int, device: str = "aria-1", **kwargs):
    """``transpile`` with both qstore stages onto a target of exactly the circuit's width."""
    return transpile(
        qc,
        target=ionq_target(device, num_qubits=qc.num_qubits),
        translation_method="qstore",
        optimization_method="qstore",
        optimization_level=level,
        seed_transpiler=1234,
        **kwargs,
    )


def equivalence_snapshot() -> dict:
    """Keys of the session equivalence library and how many rules each has."""
    snapshot = {}
    for key in SessionEquivalenceLibrary.keys():
        rules = SessionEquivalenceLibrary._get_equivalences(key)  # noqa: SLF001
        snapshot[(key.name, key.num_qubits)] = len(rules)
    return snapshot


def random_2q_circuits():
    """Seeded random circuits of 2-4 qubits with gates on at most two qubits."""
    for seed in range(16):
        n = 2 + seed % 3
        yield seed, random_circuit(n, 3 + seed % 4, max_operands=2, seed=seed)


class TestDiscovery(unittest.TestCase):
    def test_plugins_listed(self):
        self.assertIn("qstore", list_stage_plugins("translation"))
        self.assertIn("qstore", list_stage_plugins("optimization"))
        self.assertIn("qstore", list_stage_plugins("init"))

    def test_plugin_manager_loads_ours(self):
        from qiskit.transpiler.preset_passmanagers.plugin import PassManagerStagePluginManager

        manager = PassManagerStagePluginManager()
        self.assertIsInstance(manager.translation_plugins["qstore"].obj, QStoreTranslationPlugin)
        self.assertIsInstance(manager.optimization_plugins["qstore"].obj, QStoreOptimizationPlugin)


class TestTranspile(unittest.TestCase):
    """``transpile(..., translation_method="qstore", optimization_method="qstore")``."""

    def assertNative(self, out: QuantumCircuit, device: str = "aria-1"):
        allowed = {"gpi", "gpi2", "ms", "rz", "measure", "reset", "barrier"}
        if device.startswith("forte"):
            allowed.add("zz")
        self.assertFalse(set(out.count_ops()) - allowed, dict(out.count_ops()))

    def test_unitary_equivalent_every_level(self):
        for seed, qc in random_2q_circuits():
            for level in range(4):
                device = ("aria-1", "forte-1")[(seed + level) % 2]
                with self.subTest(seed=seed, level=level, device=device):
                    out = qstore_transpile(qc, level, device, qubits_initially_zero=False)
                    self.assertNative(out, device)
                    self.assertEqual(out.num_qubits, qc.num_qubits)
                    self.assertTrue(Operator.from_circuit(out).equiv(Operator(qc)))

    def test_default_is_state_equivalent(self):
        """By default (qubits start in |0>) the output prepares the same state."""
        for seed, qc in random_2q_circuits():
            for level in range(4):
                with self.subTest(seed=seed, level=level):
                    out = qstore_transpile(qc, level)
                    self.assertNative(out)
                    reference = QuantumCircuit(qc.num_qubits)
                    reference.compose(qc, qubits=out.layout.final_index_layout(), inplace=True)
                    self.assertTrue(Statevector(reference).equiv(Statevector(out)))

    def test_bell_uses_one_ms(self):
        qc = QuantumCircuit(2)
        qc.h(0)
        qc.cx(0, 1)
        for level in range(4):
            with self.subTest(level=level):
                out = qstore_transpile(qc, level)
                self.assertEqual(count(out, TWO_Q), 1)

    # Qiskit's default *init* stage translates gates on >= 3 qubits to the target basis
    # through the global equivalence library, which has no path to gpi/gpi2/ms ("Unable
    # to translate the operations in the circuit: {("ccx", 3)} ..."); since 60fc82e the
    # ``qstore`` init plugin unrolls them instead.
    def test_three_qubit_gates(self):
        qc = QuantumCircuit(4)
        qc.h(0)
        qc.ccx(0, 1, 2)
        qc.cswap(2, 0, 1)
        qc.rccx(3, 1, 0)
        qc.mcx([0, 1, 2], 3)
        for level in range(4):
            for device in ("aria-1", "forte-1"):
                with self.subTest(level=level, device=device):
                    out = qstore_transpile(
                        qc, level, device, init_method="qstore", qubits_initially_zero=False
                    )
                    self.assertNative(out, device)
                    self.assertTrue(Operator.from_circuit(out).equiv(Operator(qc)))

    def test_random_circuits_with_init_plugin(self):
        for seed in range(8):
            n = 3 + seed % 2
            qc = random_circuit(n, 4, max_operands=3, seed=100 + seed)
            level = seed % 4
            with self.subTest(seed=seed, level=level):
                out = qstore_transpile(qc, level, init_method="qstore", qubits_initially_zero=False)
                self.assertNative(out)
                self.assertTrue(Operator.from_circuit(out).equiv(Operator(qc)))
                # default: qubits start in |0>, the output prepares the same state
                out = qstore_transpile(qc, level, init_method="qstore")
                self.assertNative(out)
                reference = QuantumCircuit(qc.num_qubits)
                reference.compose(qc, qubits=out.layout.final_index_layout(), inplace=True)
                self.assertTrue(Statevector(reference).equiv(Statevector(out)))

    def test_measurements_kept(self):
        qr = QuantumRegister(3, "q")
        cr = ClassicalRegister(3, "meas")
        qc = QuantumCircuit(qr, cr)
        qc.h(0)
        qc.cx(0, 1)
        qc.ry(0.3, 2)
        qc.measure(qr, cr)
        for level in range(4):
            with self.subTest(level=level):
                out = qstore_transpile(qc, level)
                self.assertNative(out)
                self.assertEqual(out.count_ops().get("measure"), 3)
                self.assertEqual(out.num_clbits, 3)
                self.assertEqual([c.name for c in out.cregs], ["meas"])
                measured = {
                    out.find_bit(i.clbits[0]).index
                    for i in out.data
                    if i.operation.name == "measure"
                }
                self.assertEqual(measured, {0, 1, 2})
                # measured wires end in a measurement: no trailing rz on them
                last = {}
                for i in out.data:
                    for q in i.qubits:
                        last[q] = i.operation.name
                for q in out.qubits:
                    self.assertEqual(last.get(q, "measure"), "measure")

    def test_mid_circuit_measurement_and_reset(self):
        qc = QuantumCircuit(2, 2)
        qc.h(0)
        qc.measure(0, 0)
        qc.reset(0)
        qc.cx(1, 0)
        qc.measure([0, 1], [0, 1])
        for level in range(4):
            with self.subTest(level=level):
                out = qstore_transpile(qc, level)
                self.assertNative(out)
                self.assertEqual(out.count_ops().get("measure"), 3)
                self.assertEqual(out.count_ops().get("reset"), 1)
                self.assertEqual(out.num_clbits, 2)

    def test_translation_idempotent_ms_count(self):
        for seed, qc in random_2q_circuits():
            for level in range(4):
                with self.subTest(seed=seed, level=level):
                    out = qstore_transpile(qc, level, qubits_initially_zero=False)
                    again = qstore_transpile(out, level, qubits_initially_zero=False)
                    self.assertLessEqual(count(again, TWO_Q), count(out, TWO_Q))
                    # ``out`` (its gates, as a plain circuit) is the second run's input
                    self.assertTrue(Operator.from_circuit(again).equiv(Operator(out)))

    # Regression (fixed in 0dcd568): a lone MS(0, 0, 0.25) used to become
    # 1 MS + 8 GPi2 + 2 rz, and random circuits grew by a few 1q gates.
    def test_translation_idempotent_one_qubit_count(self):
        native = QuantumCircuit(2)
        native.append(MSGate(0, 0, 0.25), [0, 1])
        circuits = [(-1, native)] + [(seed, qstore_transpile(qc, 2, qubits_initially_zero=False))
                                     for seed, qc in random_2q_circuits()]
        for seed, qc in circuits:
            for level in range(4):
                with self.subTest(seed=seed, level=level):
                    again = qstore_transpile(qc, level, qubits_initially_zero=False)
                    self.assertLessEqual(count(again, ONE_Q), count(qc, ONE_Q))
                    self.assertLessEqual(count(again, TWO_Q), count(qc, TWO_Q))

    def test_plugin_pass_managers_directly(self):
        from qiskit.transpiler import PassManagerConfig

        target = ionq_target("aria-1", num_qubits=2)
        config = PassManagerConfig(target=target)
        qc = QuantumCircuit(2)
        qc.h(0)
        qc.cx(0, 1)
        for level in range(4):
            with self.subTest(level=level):
                translated = QStoreTranslationPlugin().pass_manager(config, level).run(qc)
                optimized = QStoreOptimizationPlugin().pass_manager(config, level).run(translated)
                self.assertNative(optimized)
                self.assertLessEqual(count(optimized, ONE_Q + TWO_Q), count(translated, ONE_Q + TWO_Q))

    def test_equivalence_library_untouched_by_use(self):
        before = equivalence_snapshot()
        qc = QuantumCircuit(3)
        qc.h(0)
        qc.cx(0, 1)
        qc.rzz(0.3, 1, 2)
        qc.u(0.1, 0.2, 0.3, 2)
        for level in range(4):
            qstore_transpile(qc, level)
        qc.ccx(0, 1, 2)
        qstore_transpile(qc, 2, init_method="qstore")
        generate_ionq_pass_manager("forte-1", 2, num_qubits=3).run(qc)
        self.assertEqual(equivalence_snapshot(), before)

    def test_equivalence_library_untouched_by_import(self):
        """Importing and using the plugin in a fresh interpreter leaves the library as it was."""
        script = textwrap.dedent(
            """
            import json
            from qiskit.circuit.equivalence_library import SessionEquivalenceLibrary as sel

            def snap():
                return sorted([k.name, k.num_qubits, len(sel._get_equivalences(k))] for k in sel.keys())

            before = snap()
            import qstore_qiskit.transpiler.plugin
            from qiskit import QuantumCircuit, transpile
            from qstore_qiskit.transpiler import ionq_target
            qc = QuantumCircuit(2)
            qc.h(0)
            qc.cx(0, 1)
            transpile(qc, target=ionq_target("aria-1", num_qubits=2), init_method="qstore",
                      translation_method="qstore", optimization_method="qstore")
            print(json.dumps({"before": before, "after": snap()}))
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
        )
        data = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual(data["after"], data["before"])


class TestGenerateIonQPassManager(unittest.TestCase):
    def test_bad_optimization_level(self):
        for bad in (-1, 4, 2.5, "2", None):
            with self.subTest(level=bad):
                with self.assertRaises(ValueError) as ctx:
                    generate_ionq_pass_manager("aria-1", bad)
                self.assertIn("optimization_level", str(ctx.exception))

    def test_bad_device_type(self):
        for bad in (3, 1.5, object(), ["aria-1"], None):
            with self.subTest(device=bad):
                with self.assertRaises(TypeError) as ctx:
                    generate_ionq_pass_manager(bad)
                self.assertIn("device", str(ctx.exception))

    def test_unknown_device_name(self):
        with self.assertRaises(ValueError) as ctx:
            generate_ionq_pass_manager("aria-7")
        self.assertIn("aria-7", str(ctx.exception))

    def test_accepts_names_specs_targets_backends(self):
        class FakeBackend:
            target = ionq_target("forte-1", num_qubits=2)

        qc = QuantumCircuit(2)
        qc.rzz(0.4, 0, 1)
        for device in ("aria-1", "qpu.forte-1", DEVICES["aria-2"], FakeBackend()):
            with self.subTest(device=device):
                pm = generate_ionq_pass_manager(device, 1, num_qubits=2)
                self.assertIsInstance(pm, PassManager)
                self.assertTrue(Operator(pm.run(qc)).equiv(Operator(qc)))
        pm = generate_ionq_pass_manager(target=ionq_target("forte-1", num_qubits=2))
        self.assertTrue(Operator(pm.run(qc)).equiv(Operator(qc)))

    def test_keeps_circuit_width(self):
        qc = QuantumCircuit(3)
        qc.cx(0, 2)
        out = generate_ionq_pass_manager("aria-1", 2).run(qc)
        self.assertEqual(out.num_qubits, 3)

    def test_approximation_degree(self):
        """Approximate synthesis may drop a tiny Weyl term; exact never does."""
        qc = QuantumCircuit(2)
        qc.rzz(1e-4, 0, 1)
        exact = generate_ionq_pass_manager("aria-1", 2, num_qubits=2).run(qc)
        approx = generate_ionq_pass_manager("aria-1", 2, num_qubits=2, approximation_degree=None).run(qc)
        self.assertEqual(count(exact, TWO_Q), 1)
        self.assertEqual(count(approx, TWO_Q), 0)
        self.assertTrue(Operator(exact).equiv(Operator(qc)))


if __name__ == "__main__":
    unittest.main()
