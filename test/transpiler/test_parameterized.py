# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Parameterized circuits: compiling then binding equals binding then compiling.

The lowering keeps parameters symbolic (phases and MS/ZZ angles become affine
expressions of the input's parameters, non-affine inputs are kept whole), so a circuit
compiled once can be bound many times. For library ansatzes, a QAOA ansatz and a custom
circuit using every parametric gate the lowering has a rule for, we check that both
orders give the same unitary (up to global phase) for several random bindings, and that
the output only depends on the input's parameters.
"""

from __future__ import annotations

import functools
import math
import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterExpression, ParameterVector
from qiskit.circuit.library import (
    CU1Gate,
    U1Gate,
    U2Gate,
    XXMinusYYGate,
    XXPlusYYGate,
    efficient_su2,
    pauli_two_design,
    qaoa_ansatz,
    real_amplitudes,
    zz_feature_map,
)
from qiskit.quantum_info import Operator, SparsePauliOp
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate

from qstore_qiskit.transpiler import generate_ionq_pass_manager

DEVICES = ("aria-1", "forte-1")
BINDINGS = 3


@functools.lru_cache(maxsize=None)
def pass_manager(device: str, level: int, num_qubits: int):
    return generate_ionq_pass_manager(device, level, num_qubits=num_qubits)


def every_parametric_gate() -> QuantumCircuit:
    """Every gate the lowering has a parametric rule for, with affine and non-affine angles."""
    t = ParameterVector("t", 8)
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(3, name="every_parametric_gate")
    # one-qubit rules
    qc.rx(t[0], 0)
    qc.ry(2 * t[1] + 0.3, 1)
    qc.rz(t[0] - t[1], 2)
    qc.p(t[2], 0)
    qc.u(t[0], t[1], t[2], 1)
    qc.r(t[3], t[4], 2)
    qc.append(U2Gate(t[5], a), [0])
    qc.append(U1Gate(b), [1])
    qc.append(GPIGate(t[6]), [2])
    qc.append(GPI2Gate(a - 0.1), [0])
    # two-qubit rules
    qc.rxx(t[0], 0, 1)
    qc.ryy(t[1] - t[2], 1, 2)
    qc.rzz(2 * t[2] + 0.3, 0, 2)
    qc.rzx(t[3], 1, 0)
    qc.cp(t[4], 0, 1)
    qc.append(CU1Gate(t[5]), [1, 2])
    qc.crx(a, 0, 1)
    qc.cry(b, 1, 2)
    qc.crz(a - b, 2, 0)
    qc.cu(t[0], t[1], t[2], t[3], 0, 1)
    qc.append(XXPlusYYGate(t[4], t[5]), [1, 2])
    qc.append(XXMinusYYGate(a, b), [0, 2])
    qc.append(MSGate(t[6], t[7], 0.1 * a), [0, 1])
    qc.append(ZZGate(b / 7), [1, 2])
    # non-affine angles
    qc.rz(a * b, 0)
    qc.ry(t[7].sin(), 1)
    qc.rzz(a * t[0], 1, 2)
    qc.p(b.cos() + 0.5, 2)
    qc.cx(2, 0)  # a bound gate between symbolic ones
    return qc


def qaoa() -> QuantumCircuit:
    cost = SparsePauliOp.from_list([("ZZII", 1.0), ("IZZI", -0.5), ("IIZZ", 0.7), ("ZIIZ", 0.3)])
    return qaoa_ansatz(cost, reps=2)


CIRCUITS = {
    "efficient_su2": lambda: efficient_su2(3, reps=2),
    "real_amplitudes": lambda: real_amplitudes(4, reps=2),
    "zz_feature_map": lambda: zz_feature_map(3, reps=2),
    "pauli_two_design": lambda: pauli_two_design(3, reps=2, seed=11),
    "qaoa": qaoa,
    "every_parametric_gate": every_parametric_gate,
}


class TestCompileThenBind(unittest.TestCase):
    def check(self, name: str, qc: QuantumCircuit, device: str, level: int, rng: np.random.Generator):
        pm = pass_manager(device, level, max(qc.num_qubits, 2))
        out = pm.run(qc)
        self.assertTrue(
            set(out.parameters) <= set(qc.parameters),
            f"{name}: new parameters {set(out.parameters) - set(qc.parameters)}",
        )
        self.assertGreater(len(out.parameters), 0, "everything got bound?")
        for instruction in out.data:
            for param in instruction.operation.params:
                if isinstance(param, ParameterExpression):
                    self.assertTrue(param.parameters <= set(qc.parameters))
        for _ in range(BINDINGS):
            values = dict(zip(qc.parameters, rng.uniform(-math.pi, math.pi, qc.num_parameters)))
            expected = Operator(qc.assign_parameters(values))
            compiled_then_bound = out.assign_parameters({p: values[p] for p in out.parameters})
            if not Operator(compiled_then_bound).equiv(expected):
                self.fail(f"{name} on {device} level {level}: compile-then-bind differs")
            bound_then_compiled = pm.run(qc.assign_parameters(values))
            if not Operator(bound_then_compiled).equiv(Operator(compiled_then_bound)):
                self.fail(f"{name} on {device} level {level}: bind-then-compile differs")

    def test_circuits(self):
        rng = np.random.default_rng(2024)
        for name, build in CIRCUITS.items():
            qc = build()
            for device in DEVICES:
                for level in (0, 2, 3):
                    with self.subTest(circuit=name, device=device, level=level):
                        self.check(name, qc, device, level, rng)

    def test_every_parametric_gate_covers_the_rules(self):
        names = set(every_parametric_gate().count_ops())
        rules = {
            "rx", "ry", "rz", "p", "u", "r", "u2", "u1", "rxx", "ryy", "rzz", "rzx", "cp",
            "cu1", "crx", "cry", "crz", "cu", "xx_plus_yy", "xx_minus_yy", "gpi", "gpi2",
            "ms", "zz",
        }
        self.assertTrue(rules <= names, rules - names)

    def test_output_is_native(self):
        qc = every_parametric_gate()
        for device in DEVICES:
            with self.subTest(device=device):
                out = pass_manager(device, 2, 3).run(qc)
                allowed = {"gpi", "gpi2", "ms", "rz"} | ({"zz"} if device.startswith("forte") else set())
                self.assertFalse(set(out.count_ops()) - allowed)

    def test_parameter_vector_elements_kept(self):
        t = ParameterVector("t", 2)
        qc = QuantumCircuit(2)
        qc.rx(t[0], 0)
        qc.rzz(t[1], 0, 1)
        out = pass_manager("aria-1", 2, 2).run(qc)
        self.assertEqual(set(out.parameters), {t[0], t[1]})

    def test_symbolic_ms_angle_bound_out_of_range(self):
        """A symbolic MS angle may leave [0, 1/4] once bound; the unitary is still right."""
        theta = Parameter("theta")
        qc = QuantumCircuit(2)
        qc.rxx(theta, 0, 1)
        out = pass_manager("aria-1", 2, 2).run(qc)
        self.assertEqual(out.count_ops().get("ms"), 1)
        for value in (-2.0, 0.4, 3.0, 5.5):
            with self.subTest(value=value):
                bound = out.assign_parameters({theta: value})
                self.assertTrue(Operator(bound).equiv(Operator(qc.assign_parameters({theta: value}))))

    def test_partially_bound(self):
        qc = every_parametric_gate()
        rng = np.random.default_rng(5)
        half = list(qc.parameters)[::2]
        partial = qc.assign_parameters(dict(zip(half, rng.uniform(-1, 1, len(half)))))
        self.check("partially bound", partial, "aria-1", 2, rng)


if __name__ == "__main__":
    unittest.main()
