"""The parameter-preserving ISA form: every parameter kept, only in virtual ``rz``."""

from __future__ import annotations

import unittest

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter, ParameterExpression, ParameterVector
from qiskit.circuit.library import efficient_su2, real_amplitudes, zz_feature_map
from qiskit.quantum_info import Operator, Statevector
from qiskit.transpiler import PassManager
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate

from qstore_qiskit.transpiler import ionq_target, translation_passes
from qstore_qiskit.transpiler.passes import ParametersToVirtualRZ
from qstore_qiskit.transpiler.plugin import QStoreInitPlugin, QStoreOptimizationPlugin, QStoreTranslationPlugin

NATIVE = {"gpi", "gpi2", "ms", "zz", "rz", "measure", "barrier"}


def mixed_ansatz() -> QuantumCircuit:
    """Many gate kinds, an expression of two parameters, a numeric-and-symbolic ``u``."""
    x = ParameterVector("x", 3)
    qc = QuantumCircuit(3)
    qc.ry(x[0], 0)
    qc.rx(x[1], 1)
    qc.cx(0, 1)
    qc.crz(x[2], 1, 2)
    qc.h(2)
    qc.rzz(x[0] + x[2], 0, 2)
    qc.u(x[0], x[1], 0.3, 1)
    qc.cp(x[1], 0, 2)
    qc.rxx(x[2], 1, 0)
    qc.p(x[0], 2)
    qc.cry(2 * x[1], 2, 1)
    return qc


def circuits():
    yield "efficient_su2", efficient_su2(3, reps=2)
    yield "real_amplitudes", real_amplitudes(4, reps=2)
    yield "zz_feature_map+ansatz", zz_feature_map(3, reps=1).compose(real_amplitudes(3, reps=1))
    yield "mixed", mixed_ansatz()


def symbolic(value) -> bool:
    return isinstance(value, ParameterExpression) and bool(value.parameters)


def affine_input(circuit: QuantumCircuit) -> bool:
    """Whether every angle of ``circuit`` is affine in its parameters (zz_feature_map's
    ``(pi - x0)(pi - x1)`` is not; its rz angles then carry that same expression)."""
    return all(
        not symbolic(angle.gradient(p))
        for inst in circuit.data
        for angle in inst.params
        if symbolic(angle)
        for p in angle.parameters
    )


class ISAFormMixin:
    def assertISAForm(self, source: QuantumCircuit, out: QuantumCircuit):
        self.assertEqual(set(out.parameters), set(source.parameters))
        for inst in out.data:
            self.assertIn(inst.name, NATIVE)
            if inst.name != "rz":
                self.assertFalse(any(symbolic(p) for p in inst.params), f"{inst.name}{inst.params}")
            elif symbolic(inst.params[0]) and affine_input(source):
                # affine input angles give affine rz angles: the derivatives are numbers
                expr = inst.params[0]
                for p in expr.parameters:
                    grad = expr.gradient(p)
                    self.assertFalse(symbolic(grad), f"rz({expr}) is not linear in {p}")

    def assertEquivalent(self, source: QuantumCircuit, out: QuantumCircuit, unitary: bool, seed: int = 0):
        rng = np.random.default_rng(seed)
        for _ in range(3):
            values = dict(zip(source.parameters, rng.uniform(-np.pi, np.pi, source.num_parameters)))
            a = source.assign_parameters(values)
            b = out.assign_parameters({p: values[p] for p in out.parameters})
            if unitary:
                self.assertTrue(Operator.from_circuit(b).equiv(Operator(a)))
            else:
                state = Operator.from_circuit(b).data[:, 0]
                self.assertTrue(Statevector(a).equiv(Statevector(state)))


class TestPass(ISAFormMixin, unittest.TestCase):
    def test_every_level_keeps_parameters_in_rz(self):
        for name, qc in circuits():
            target = ionq_target("aria-1", num_qubits=qc.num_qubits)
            for level in range(4):
                for zero in (False, True):
                    with self.subTest(circuit=name, level=level, qubits_initially_zero=zero):
                        out = PassManager([ParametersToVirtualRZ(target, level, qubits_initially_zero=zero)]).run(qc)
                        self.assertISAForm(qc, out)
                        self.assertEquivalent(qc, out, unitary=not zero, seed=level)

    def test_idempotent(self):
        qc = efficient_su2(3, reps=1)
        target = ionq_target("aria-1", num_qubits=3)
        once = PassManager([ParametersToVirtualRZ(target, 2)]).run(qc)
        twice = PassManager([ParametersToVirtualRZ(target, 2)]).run(once)
        self.assertEqual(once, twice)

    def test_last_layer_before_measure_kept(self):
        qc = efficient_su2(3, reps=1)
        qc.measure_all()
        out = PassManager([ParametersToVirtualRZ(ionq_target("aria-1", num_qubits=3), 2)]).run(qc)
        self.assertEqual(len(out.parameters), 12)
        self.assertEqual(out.count_ops()["measure"], 3)

    def test_symbolic_native_gates(self):
        a, b, c = Parameter("a"), Parameter("b"), Parameter("c")
        qc = QuantumCircuit(2)
        qc.append(GPIGate(a), [0])
        qc.append(GPI2Gate(b), [1])
        qc.append(MSGate(a, 0.1, c), [0, 1])
        qc.append(MSGate(0.2, b, 0.1), [1, 0])
        out = PassManager([ParametersToVirtualRZ(ionq_target("aria-1", num_qubits=2), 1)]).run(qc)
        self.assertISAForm(qc, out)
        self.assertEquivalent(qc, out, unitary=True)

    def test_bound_circuit_lowered_as_usual(self):
        qc = efficient_su2(3, reps=1).assign_parameters(np.linspace(0, 1, 12))
        target = ionq_target("aria-1", num_qubits=3)
        out = PassManager([ParametersToVirtualRZ(target, 2)]).run(qc)
        self.assertEqual(out, PassManager(translation_passes(target, 2)).run(qc))
        self.assertTrue(Operator.from_circuit(out).equiv(Operator(qc)))


class TestPresetPath(ISAFormMixin, unittest.TestCase):
    """``transpile`` with the qstore stages keeps every parameter at every level."""

    def test_transpile_every_level(self):
        for name, qc in circuits():
            for level in range(4):
                with self.subTest(circuit=name, level=level):
                    out = transpile(
                        qc,
                        target=ionq_target("aria-1", num_qubits=qc.num_qubits),
                        translation_method="qstore",
                        optimization_method="qstore",
                        optimization_level=level,
                        qubits_initially_zero=False,
                        seed_transpiler=1,
                    )
                    self.assertISAForm(qc, out)
                    self.assertEquivalent(qc, out, unitary=True, seed=level)

    def test_every_plugin_stage(self):
        qc = mixed_ansatz()
        qc.ccx(0, 1, 2)  # needs the init stage
        target = ionq_target("aria-1", num_qubits=3)

        class Config:
            pass

        config = Config()
        config.target = target
        config.approximation_degree = 1.0
        config.qubits_initially_zero = False
        for level in range(4):
            with self.subTest(level=level):
                out = QStoreInitPlugin().pass_manager(config, level).run(qc)
                self.assertEqual(set(out.parameters), set(qc.parameters))
                out = QStoreTranslationPlugin().pass_manager(config, level).run(out)
                self.assertISAForm(qc, out)
                again = QStoreOptimizationPlugin().pass_manager(config, level).run(out)
                self.assertEqual(again, out)  # the optimization stage leaves ISA form alone
                out = QStoreTranslationPlugin().pass_manager(config, level).run(again)
                self.assertEqual(again, out)  # translation is idempotent on it
                self.assertEquivalent(qc, out, unitary=True, seed=level)


if __name__ == "__main__":
    unittest.main()
