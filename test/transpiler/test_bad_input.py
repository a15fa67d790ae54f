# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Input IonQ cannot run is rejected early with a clear ``TranspilerError``.

Classical control flow, ``delay``, classical-only instructions, circuits wider than the
target and gates the compiler cannot lower each raise an error naming the instruction
or the problem. Mid-circuit measurement and reset pass through and are flagged in the
property set.
"""

from __future__ import annotations

import unittest

from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Gate, Parameter
from qiskit.transpiler import PassManager
from qiskit.transpiler.exceptions import TranspilerError

from qstore_qiskit.transpiler import CheckIonQInput, generate_ionq_pass_manager, ionq_target


def if_else_circuit() -> QuantumCircuit:
    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)) as else_:
        qc.x(1)
    with else_:
        qc.h(1)
    return qc


def for_loop_circuit() -> QuantumCircuit:
    qc = QuantumCircuit(2, 1)
    with qc.for_loop(range(3)):
        qc.cx(0, 1)
    return qc


def while_loop_circuit() -> QuantumCircuit:
    qc = QuantumCircuit(1, 1)
    qc.h(0)
    qc.measure(0, 0)
    with qc.while_loop((qc.clbits[0], 1)):
        qc.h(0)
        qc.measure(0, 0)
    return qc


def switch_circuit() -> QuantumCircuit:
    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.measure(0, 0)
    with qc.switch(qc.clbits[0]) as case:
        with case(0):
            qc.x(1)
        with case(1):
            qc.z(1)
    return qc


class TestRejected(unittest.TestCase):
    """``generate_ionq_pass_manager(...).run`` raises a ``TranspilerError`` naming the problem."""

    def assertRejected(self, qc: QuantumCircuit, *needles: str, device: str = "aria-1", **kwargs):
        for level in (0, 2):
            with self.subTest(level=level):
                pm = generate_ionq_pass_manager(device, level, **kwargs)
                with self.assertRaises(TranspilerError) as ctx:
                    pm.run(qc)
                message = str(ctx.exception)
                for needle in needles:
                    self.assertIn(needle, message)

    def test_if_else(self):
        self.assertRejected(if_else_circuit(), "if_else", "control flow")

    def test_for_loop(self):
        self.assertRejected(for_loop_circuit(), "for_loop", "control flow")

    def test_while_loop(self):
        self.assertRejected(while_loop_circuit(), "while_loop", "control flow")

    def test_switch(self):
        self.assertRejected(switch_circuit(), "switch_case", "control flow")

    def test_delay(self):
        qc = QuantumCircuit(2)
        qc.h(0)
        qc.delay(100, 0, unit="dt")
        qc.cx(0, 1)
        self.assertRejected(qc, "delay")

    def test_too_many_qubits(self):
        qc = QuantumCircuit(30)
        qc.h(0)
        self.assertRejected(qc, "30", "25")

    def test_too_many_qubits_small_target(self):
        qc = QuantumCircuit(4)
        qc.h(0)
        self.assertRejected(qc, "4", "3", device="forte-1", num_qubits=3)

    def test_opaque_gate_without_definition(self):
        for width in (1, 2):
            qc = QuantumCircuit(width)
            qc.append(Gate("mystery", width, []), range(width))
            with self.subTest(width=width):
                self.assertRejected(qc, "mystery")

    def test_opaque_three_qubit_gate(self):
        qc = QuantumCircuit(3)
        qc.append(Gate("mystery3", 3, []), [0, 1, 2])
        self.assertRejected(qc, "mystery3")

    def test_opaque_gate_with_unbound_params(self):
        theta = Parameter("theta")
        for width in (1, 2):
            qc = QuantumCircuit(width)
            qc.append(Gate("mystery_p", width, [theta]), range(width))
            with self.subTest(width=width):
                self.assertRejected(qc, "mystery_p", "unbound parameters")

    def test_classical_store(self):
        from qiskit.circuit.classical import expr

        qc = QuantumCircuit(1, 1)
        flag = qc.add_var("flag", expr.lift(False))
        qc.measure(0, 0)
        qc.store(flag, expr.lift(qc.clbits[0]))
        self.assertRejected(qc, "store")

    def test_through_transpile(self):
        """The same errors surface through ``transpile`` with the qstore stages."""
        cases = {
            "delay": QuantumCircuit(2),
            "mystery": QuantumCircuit(2),
        }
        cases["delay"].delay(10, 0)
        cases["delay"].cx(0, 1)
        cases["mystery"].append(Gate("mystery", 2, []), [0, 1])
        for needle, qc in cases.items():
            with self.subTest(case=needle):
                with self.assertRaises(TranspilerError) as ctx:
                    transpile(
                        qc,
                        target=ionq_target("aria-1", num_qubits=2),
                        translation_method="qstore",
                        optimization_method="qstore",
                    )
                self.assertIn(needle, str(ctx.exception))
        with self.assertRaises(TranspilerError) as ctx:
            transpile(
                if_else_circuit(),
                target=ionq_target("aria-1", num_qubits=2),
                translation_method="qstore",
                optimization_method="qstore",
            )
        self.assertIn("if_else", str(ctx.exception))


class TestMidCircuitMeasurement(unittest.TestCase):
    """Mid-circuit ``measure`` and ``reset`` are accepted and flagged."""

    @staticmethod
    def flag(qc: QuantumCircuit):
        pm = PassManager([CheckIonQInput(ionq_target("aria-1", num_qubits=qc.num_qubits))])
        pm.run(qc)
        return pm.property_set["ionq_mid_circuit_measurement"]

    def test_mid_circuit_measure_and_reset_flagged(self):
        qc = QuantumCircuit(2, 2)
        qc.h(0)
        qc.measure(0, 0)
        qc.reset(0)
        qc.cx(0, 1)
        qc.measure([0, 1], [0, 1])
        self.assertIs(self.flag(qc), True)

    def test_measure_then_gate_flagged(self):
        qc = QuantumCircuit(1, 1)
        qc.measure(0, 0)
        qc.x(0)
        self.assertIs(self.flag(qc), True)

    def test_reset_then_gate_flagged(self):
        qc = QuantumCircuit(1)
        qc.h(0)
        qc.reset(0)
        qc.h(0)
        self.assertIs(self.flag(qc), True)

    def test_final_measurements_not_flagged(self):
        qc = QuantumCircuit(2, 2)
        qc.h(0)
        qc.cx(0, 1)
        qc.barrier()
        qc.measure([0, 1], [0, 1])
        self.assertIs(self.flag(qc), False)
        self.assertIs(self.flag(QuantumCircuit(2)), False)

    def test_mid_circuit_compiles(self):
        qc = QuantumCircuit(2, 3)
        qc.h(0)
        qc.measure(0, 0)
        qc.reset(0)
        qc.cx(1, 0)
        qc.measure(0, 1)
        qc.measure(1, 2)
        for device in ("aria-1", "forte-1"):
            for level in range(4):
                with self.subTest(device=device, level=level):
                    pm = generate_ionq_pass_manager(device, level, num_qubits=2)
                    out = pm.run(qc)
                    self.assertIs(pm.property_set["ionq_mid_circuit_measurement"], True)
                    ops = out.count_ops()
                    self.assertEqual(ops.get("measure"), 3)
                    self.assertEqual(ops.get("reset"), 1)
                    self.assertEqual(out.num_clbits, 3)
                    self.assertFalse(set(ops) - {"gpi", "gpi2", "ms", "zz", "rz", "measure", "reset"})
                    # measure -> reset -> ... order on qubit 0 is kept
                    names = [i.operation.name for i in out.data if out.qubits[0] in i.qubits]
                    first_measure = names.index("measure")
                    self.assertLess(first_measure, names.index("reset"))
                    self.assertTrue({"ms", "zz"} & set(names[names.index("reset"):]))


if __name__ == "__main__":
    unittest.main()
