# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Lowering to IonQ native gates (``generate_ionq_pass_manager`` / ``LowerToIonQNative``).

Checks the output contract on every standard gate and on seeded random circuits:
only native instructions, the input's unitary up to global phase, ``rz`` only as the
last operation on a wire, at most two GPi/GPi2 per one-qubit run, MS angles in
``[0, 1/4]`` and phases in ``[0, 1)``, the minimal number of MS for common gates,
idempotence, and the ``qubits_initially_zero`` state-preparation mode.
"""

from __future__ import annotations

import functools
import math
import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit.library import GlobalPhaseGate, get_standard_gate_name_mapping
from qiskit.circuit.random import random_circuit
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.quantum_info import Operator, Statevector
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate

from qstore_qiskit.transpiler import LowerToIonQNative, generate_ionq_pass_manager, ionq_target

DEVICES = ("aria-1", "forte-1")
LEVELS = (0, 1, 2, 3)
#: Pass managers are built for this many qubits; they keep the circuit's own qubits.
PM_QUBITS = 6
NON_UNITARY = {"measure", "reset", "delay", "global_phase"}
ONE_Q_NATIVE = {"gpi", "gpi2"}
TWO_Q_NATIVE = {"ms", "zz"}


@functools.lru_cache(maxsize=None)
def pass_manager(device: str, level: int, zero: bool = False):
    return generate_ionq_pass_manager(
        device, level, num_qubits=PM_QUBITS, qubits_initially_zero=zero
    )


def compile_(qc: QuantumCircuit, device: str = "aria-1", level: int = 2, zero: bool = False):
    return pass_manager(device, level, zero).run(qc)


def count(circuit: QuantumCircuit, names) -> int:
    ops = circuit.count_ops()
    return sum(ops.get(name, 0) for name in names)


def random_bound_gate(name: str, rng: np.random.Generator):
    gate = get_standard_gate_name_mapping()[name]
    if not gate.params:
        return gate
    return type(gate)(*rng.uniform(-2 * math.pi, 2 * math.pi, len(gate.params)))


class NativeAssertions(unittest.TestCase):
    """Contract checks shared by the test classes."""

    def assertNativeOnly(self, out: QuantumCircuit, device: str):
        allowed = {"gpi", "gpi2", "ms", "rz", "measure", "reset", "barrier"}
        if device.startswith("forte"):
            allowed.add("zz")
        extra = set(out.count_ops()) - allowed
        self.assertFalse(extra, f"non-native instructions {extra} on {device}")

    def assertRzOnlyTrailing(self, out: QuantumCircuit):
        last = {}
        for index, instruction in enumerate(out.data):
            for qubit in instruction.qubits:
                last[qubit] = index
        for index, instruction in enumerate(out.data):
            if instruction.operation.name == "rz":
                (qubit,) = instruction.qubits
                self.assertEqual(last[qubit], index, "rz is not the last op on its wire")

    def assertFusedRuns(self, out: QuantumCircuit, limit: int = 2):
        """At most ``limit`` GPi/GPi2 in a row on a wire between other instructions."""
        run = {q: 0 for q in out.qubits}
        for instruction in out.data:
            if instruction.operation.name in ONE_Q_NATIVE:
                (qubit,) = instruction.qubits
                run[qubit] += 1
                if run[qubit] > limit:
                    self.fail(f"more than {limit} 1q natives in a run:\n{out}")
            else:
                for qubit in instruction.qubits:
                    run[qubit] = 0

    def assertBoundAnglesInRange(self, out: QuantumCircuit):
        for instruction in out.data:
            op = instruction.operation
            if op.name == "ms":
                p0, p1, theta = (float(p) for p in op.params)
                self.assertGreaterEqual(theta, 0.0, op.params)
                self.assertLessEqual(theta, 0.25 + 1e-12, op.params)
                for phase in (p0, p1):
                    self.assertGreaterEqual(phase, 0.0, op.params)
                    self.assertLess(phase, 1.0, op.params)
            elif op.name in ONE_Q_NATIVE:
                phase = float(op.params[0])
                self.assertGreaterEqual(phase, 0.0, op.params)
                self.assertLess(phase, 1.0, op.params)

    def assertEquivalent(self, out: QuantumCircuit, qc: QuantumCircuit):
        if not Operator(out).equiv(Operator(qc)):
            self.fail(f"not equivalent:\n{qc}\n{out}")


class TestEveryStandardGate(NativeAssertions):
    """Each standard gate alone, randomly parameterized, on Aria and Forte at every level."""

    def test_each_standard_gate(self):
        rng = np.random.default_rng(1234)
        for name, template in sorted(get_standard_gate_name_mapping().items()):
            if name in NON_UNITARY:
                continue
            gate = random_bound_gate(name, rng)
            qc = QuantumCircuit(template.num_qubits)
            qc.append(gate, range(template.num_qubits))
            for device in DEVICES:
                for level in LEVELS:
                    with self.subTest(gate=name, device=device, level=level):
                        out = compile_(qc, device, level)
                        self.assertNativeOnly(out, device)
                        self.assertRzOnlyTrailing(out)
                        self.assertBoundAnglesInRange(out)
                        self.assertEquivalent(out, qc)

    def test_every_gate_covered(self):
        """Guard: the loop above really visits the unitary standard gates."""
        names = set(get_standard_gate_name_mapping()) - NON_UNITARY
        self.assertGreater(len(names), 45)
        self.assertTrue({"cx", "ccx", "c3sx", "rcccx", "xx_plus_yy", "ecr", "iswap"} <= names)

    def test_global_phase(self):
        qc = QuantumCircuit(1)
        qc.append(GlobalPhaseGate(0.7), [])
        qc.h(0)
        for device in DEVICES:
            for level in LEVELS:
                with self.subTest(device=device, level=level):
                    out = compile_(qc, device, level)
                    self.assertNativeOnly(out, device)
                    self.assertEquivalent(out, qc)

    @staticmethod
    def native_input(with_zz: bool) -> QuantumCircuit:
        qc = QuantumCircuit(3)
        qc.append(GPIGate(0.1), [0])
        qc.append(GPI2Gate(0.7), [1])
        qc.append(MSGate(0.2, 0.9, 0.15), [0, 1])
        if with_zz:
            qc.append(ZZGate(0.1), [1, 2])
        qc.append(MSGate(0.0, 0.5, 0.25), [2, 0])
        return qc

    def test_ionq_native_gates_as_input(self):
        for device in DEVICES:
            qc = self.native_input(with_zz=device.startswith("forte"))
            for level in LEVELS:
                with self.subTest(device=device, level=level):
                    out = compile_(qc, device, level)
                    self.assertNativeOnly(out, device)
                    self.assertBoundAnglesInRange(out)
                    self.assertEquivalent(out, qc)

    # Regression (0dcd568, fixed in 60fc82e): the native-circuit skip used to return a ZZ
    # given to an Aria pass manager unchanged.
    def test_zz_input_lowered_on_aria(self):
        qc = self.native_input(with_zz=True)
        for level in LEVELS:
            with self.subTest(level=level):
                out = compile_(qc, "aria-1", level)
                self.assertNativeOnly(out, "aria-1")
                self.assertEquivalent(out, qc)

    # Regression (0dcd568, fixed in 60fc82e): a non-trailing rz in native input survived.
    def test_native_input_rz_made_trailing(self):
        qc = QuantumCircuit(1)
        qc.rz(0.3, 0)
        qc.append(GPI2Gate(0.1), [0])
        for level in LEVELS:
            with self.subTest(level=level):
                out = compile_(qc, "aria-1", level)
                self.assertRzOnlyTrailing(out)
                self.assertEquivalent(out, qc)

    # Regression (0dcd568, fixed in 60fc82e): out-of-range native angles were kept.
    def test_native_input_angles_normalised(self):
        qc = QuantumCircuit(2)
        qc.append(MSGate(-0.2, 1.7, 0.4), [0, 1])
        qc.append(GPI2Gate(-0.3), [0])
        for level in LEVELS:
            with self.subTest(level=level):
                out = compile_(qc, "aria-1", level)
                self.assertBoundAnglesInRange(out)
                self.assertEquivalent(out, qc)

    # Regression (0dcd568, fixed in 60fc82e): a run of five native GPi2 was not fused.
    def test_native_input_runs_fused(self):
        qc = QuantumCircuit(1)
        for k in range(5):
            qc.append(GPI2Gate(0.1 * k), [0])
        for level in (1, 2, 3):
            with self.subTest(level=level):
                out = compile_(qc, "aria-1", level)
                self.assertFusedRuns(out)
                self.assertEquivalent(out, qc)

    def test_lowering_pass_alone(self):
        """``LowerToIonQNative`` on <=2-qubit gates, without the rest of the pass manager."""
        qc = QuantumCircuit(2)
        qc.h(0)
        qc.cx(0, 1)
        qc.rzz(0.4, 0, 1)
        qc.u(0.1, 0.2, 0.3, 1)
        out = dag_to_circuit(LowerToIonQNative(ionq_target("aria-1", num_qubits=2)).run(circuit_to_dag(qc)))
        self.assertNativeOnly(out, "aria-1")
        self.assertEquivalent(out, qc)


class TestRandomCircuits(NativeAssertions):
    """Seeded random circuits of 1-6 qubits, depth 2-8, with gates on up to 3 qubits."""

    NUM_CIRCUITS = 240

    @staticmethod
    def circuit(seed: int) -> QuantumCircuit:
        n = 1 + seed % 6
        depth = 2 + (seed // 6) % 7
        return random_circuit(n, depth, max_operands=min(3, n), seed=seed)

    def test_random_circuits(self):
        for seed in range(self.NUM_CIRCUITS):
            qc = self.circuit(seed)
            device = DEVICES[seed % 2]
            level = (seed // 2) % 4
            with self.subTest(seed=seed, device=device, level=level):
                out = compile_(qc, device, level)
                self.assertNativeOnly(out, device)
                self.assertRzOnlyTrailing(out)
                self.assertBoundAnglesInRange(out)
                if level >= 1:
                    self.assertFusedRuns(out)
                self.assertEquivalent(out, qc)

    def test_has_three_qubit_gates(self):
        """Guard: the random set exercises gates on three qubits."""
        widths = {
            instruction.operation.num_qubits
            for seed in range(self.NUM_CIRCUITS)
            for instruction in self.circuit(seed).data
        }
        self.assertIn(3, widths)

    def test_qubits_initially_zero_same_state(self):
        for seed in range(0, self.NUM_CIRCUITS, 2):
            qc = self.circuit(seed)
            device = DEVICES[(seed // 2) % 2]
            level = (seed // 4) % 4
            with self.subTest(seed=seed, device=device, level=level):
                unitary_out = compile_(qc, device, level, zero=False)
                state_out = compile_(qc, device, level, zero=True)
                self.assertNativeOnly(state_out, device)
                self.assertRzOnlyTrailing(state_out)
                self.assertBoundAnglesInRange(state_out)
                if not Statevector(qc).equiv(Statevector(state_out)):
                    self.fail(f"different state:\n{qc}\n{state_out}")
                self.assertLessEqual(count(state_out, TWO_Q_NATIVE), count(unitary_out, TWO_Q_NATIVE))

    def test_qubits_initially_zero_saves_ms(self):
        """Bell preparation: one MS either way, but a generic first block needs only one."""
        rng = np.random.default_rng(7)
        from qiskit.quantum_info import random_unitary

        qc = QuantumCircuit(2)
        qc.unitary(random_unitary(4, seed=rng.integers(1 << 30)), [0, 1])
        for level in (1, 2, 3):
            with self.subTest(level=level):
                self.assertEqual(count(compile_(qc, "aria-1", level, zero=False), {"ms"}), 3)
                out = compile_(qc, "aria-1", level, zero=True)
                self.assertEqual(count(out, {"ms"}), 1)
                self.assertTrue(Statevector(qc).equiv(Statevector(out)))

    def test_idempotent_ms_count(self):
        for seed in range(0, self.NUM_CIRCUITS, 3):
            qc = self.circuit(seed)
            device = DEVICES[seed % 2]
            level = seed % 4
            with self.subTest(seed=seed, device=device, level=level):
                out = compile_(qc, device, level)
                again = compile_(out, device, level)
                self.assertLessEqual(count(again, TWO_Q_NATIVE), count(out, TWO_Q_NATIVE))
                self.assertEquivalent(again, qc)

    # Regression (fixed in 0dcd568): recompiling the compiler's own output used to add
    # GPi/GPi2 gates.
    def test_idempotent_one_qubit_count(self):
        for seed in range(0, self.NUM_CIRCUITS, 3):
            qc = self.circuit(seed)
            device = DEVICES[seed % 2]
            level = 1 + seed % 3
            with self.subTest(seed=seed, device=device, level=level):
                out = compile_(qc, device, level)
                again = compile_(out, device, level)
                self.assertLessEqual(count(again, ONE_Q_NATIVE), count(out, ONE_Q_NATIVE))


class TestTwoQubitGateCounts(NativeAssertions):
    """Minimal MS counts and partial angles for common two-qubit gates."""

    @staticmethod
    def folded_turns(turns: float) -> float:
        """An interaction of ``turns`` as an MS angle in [0, 1/4] (MS(t + 1/2) ~ MS(t) up to locals)."""
        t = abs(turns) % 0.5
        return 0.5 - t if t > 0.25 else t

    def ms_angles(self, out: QuantumCircuit) -> list[float]:
        return [float(i.operation.params[2]) for i in out.data if i.operation.name == "ms"]

    def test_cx_is_one_ms(self):
        qc = QuantumCircuit(2)
        qc.cx(0, 1)
        for device in DEVICES:
            for level in LEVELS:
                with self.subTest(device=device, level=level):
                    out = compile_(qc, device, level)
                    self.assertEqual(count(out, TWO_Q_NATIVE), 1)
                    if device == "aria-1":
                        self.assertEqual(count(out, {"ms"}), 1)
                    (gate,) = [i.operation for i in out.data if i.operation.name in TWO_Q_NATIVE]
                    angle = gate.params[2] if gate.name == "ms" else gate.params[0]
                    self.assertAlmostEqual(abs(float(angle)), 0.25)
                    self.assertFusedRuns(out)
                    self.assertEquivalent(out, qc)

    def test_partial_angle_gates_are_one_ms(self):
        # (gate, turns of the equivalent XX interaction per radian of parameter)
        cases = (("cp", 1 / (4 * math.pi)), ("crz", 1 / (4 * math.pi)), ("rzz", 1 / (2 * math.pi)))
        for name, scale in cases:
            for angle in (0.3, -0.3, 1.1, 2.5, 5.9):
                qc = QuantumCircuit(2)
                getattr(qc, name)(angle, 0, 1)
                for level in (1, 2, 3):
                    with self.subTest(gate=name, angle=angle, level=level):
                        out = compile_(qc, "aria-1", level)
                        self.assertEqual(count(out, TWO_Q_NATIVE), 1)
                        (theta,) = self.ms_angles(out)
                        self.assertAlmostEqual(theta, self.folded_turns(angle * scale), places=9)
                        self.assertLess(theta, 0.25)
                        self.assertEquivalent(out, qc)

    def test_swap_is_three_ms(self):
        qc = QuantumCircuit(2)
        qc.swap(0, 1)
        for device in DEVICES:
            for level in LEVELS:
                with self.subTest(device=device, level=level):
                    out = compile_(qc, device, level)
                    self.assertEqual(count(out, TWO_Q_NATIVE), 3)
                    if device == "aria-1":
                        self.assertEqual(count(out, {"ms"}), 3)
                    self.assertEquivalent(out, qc)

    def test_forte_symbolic_rzz_is_one_zz(self):
        from qiskit.circuit import Parameter

        theta = Parameter("theta")
        qc = QuantumCircuit(2)
        qc.rzz(theta, 0, 1)
        for level in LEVELS:
            with self.subTest(level=level):
                out = compile_(qc, "forte-1", level)
                self.assertEqual(count(out, {"zz"}), 1)
                self.assertEqual(count(out, {"ms"}), 0)

    # Regression (fixed in 0dcd568): a bound rzz on Forte used to become 1 MS + 4 GPi2.
    def test_forte_rzz_is_one_zz(self):
        qc = QuantumCircuit(2)
        qc.rzz(0.7, 0, 1)
        for level in LEVELS:
            with self.subTest(level=level):
                out = compile_(qc, "forte-1", level)
                self.assertEqual(count(out, {"zz"}), 1)
                self.assertEqual(count(out, {"ms"}), 0)
                self.assertEqual(count(out, ONE_Q_NATIVE), 0)

    # Regression (fixed in 0dcd568): recompiling a dcx used to add two GPi gates
    # (a = b = pi/4 is a degenerate Weyl point).
    def test_idempotent_dcx(self):
        qc = QuantumCircuit(2)
        qc.dcx(0, 1)
        for level in (1, 2, 3):
            with self.subTest(level=level):
                out = compile_(qc, "aria-1", level)
                again = compile_(out, "aria-1", level)
                self.assertLessEqual(count(again, ONE_Q_NATIVE), count(out, ONE_Q_NATIVE))

    # Regression (fixed in 0dcd568): a lone MS used to compile to 1 MS + 8 GPi2 + 2 rz.
    def test_native_ms_needs_no_one_qubit_gates(self):
        for gate in (MSGate(0, 0, 0.25), MSGate(0, 0, 0.1)):
            qc = QuantumCircuit(2)
            qc.append(gate, [0, 1])
            for level in LEVELS:
                with self.subTest(params=gate.params, level=level):
                    out = compile_(qc, "aria-1", level)
                    self.assertEqual(count(out, {"ms"}), 1)
                    self.assertEqual(count(out, ONE_Q_NATIVE), 0)

    def test_partial_ms_is_cheaper_than_cx_pair(self):
        """A small cp costs one partial MS, not the two full MS of a CX-based rule."""
        from qstore_qiskit.transpiler import estimated_fidelity

        qc = QuantumCircuit(2)
        qc.cp(0.2, 0, 1)
        out = compile_(qc, "aria-1", 2)
        fid = estimated_fidelity(out, "aria-1")
        self.assertGreater(fid, 1 - 0.0128)  # better than one full MS alone


if __name__ == "__main__":
    unittest.main()
