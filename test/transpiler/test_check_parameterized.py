"""CheckParameterized: both answers (free parameter anywhere; already in the standard ISA
form) on every kind of circuit, and how few nodes it reads on an ISA circuit."""

from __future__ import annotations

import unittest

from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.converters import circuit_to_dag
from qiskit.passmanager import PropertySet

from qstore_qiskit.transpiler import ionq_target
from qstore_qiskit.transpiler.passes import CheckParameterized
from qstore_qiskit.transpiler.plugin import _isa_names

ARIA = _isa_names(ionq_target("aria-1", num_qubits=3, reset=False, isa="standard"))
FORTE = _isa_names(ionq_target("forte-1", num_qubits=3, reset=False, isa="standard"))


def check(qc: QuantumCircuit, names=ARIA) -> tuple[bool, bool]:
    """``(ionq_parameterized, ionq_isa_form)`` of ``qc``."""
    pass_ = CheckParameterized(names)
    pass_.property_set = PropertySet()
    pass_.run(circuit_to_dag(qc))
    return pass_.property_set["ionq_parameterized"], pass_.property_set["ionq_isa_form"]


def isa_circuit(theta=None, phi=None) -> QuantumCircuit:
    qc = QuantumCircuit(3, 3)
    qc.rz(0.3, 0)
    qc.sx(0)
    qc.rz(0.1 if theta is None else theta, 1)
    qc.rxx(0.4 if phi is None else phi, 0, 1)
    qc.x(2)
    qc.rz(-0.2, 2)
    qc.barrier()
    qc.measure(range(3), range(3))
    return qc


class TestCheckParameterized(unittest.TestCase):
    def test_answers(self):
        a, b = Parameter("a"), Parameter("b")
        phase_only = isa_circuit()
        phase_only.global_phase = a
        ry = QuantumCircuit(1)
        ry.ry(a, 0)
        bound_expression = isa_circuit(theta=(a + 1.0).bind({a: 0.5}))
        rzz = QuantumCircuit(2)
        rzz.rz(a, 0)
        rzz.rzz(0.3, 0, 1)
        cases = {
            # name: (circuit, isa names, expected (parameterized, isa form))
            # (in ISA form, whether the rz hold parameters is not looked at: None)
            "bound ISA": (isa_circuit(), ARIA, (None, True)),
            "parameter in rz": (isa_circuit(theta=a), ARIA, (None, True)),
            "expression in rz": (isa_circuit(theta=2 * a + b), ARIA, (None, True)),
            "parameter in rxx": (isa_circuit(phi=b), ARIA, (True, False)),
            "parameters in rz and rxx": (isa_circuit(theta=a, phi=b), ARIA, (True, False)),
            "parameter only in the global phase": (phase_only, ARIA, (None, True)),
            "bound expression": (bound_expression, ARIA, (None, True)),
            "a gate outside the ISA": (ry, ARIA, (True, False)),
            "rzz on Aria": (rzz, ARIA, (True, False)),
            "rzz on Forte": (rzz, FORTE, (None, True)),
            "no ISA given": (isa_circuit(theta=a), None, (True, False)),
            "no ISA given, bound": (isa_circuit(), None, (False, False)),
            "no ISA given, parameter only in the global phase": (phase_only, None, (False, False)),
            "no ISA given, bound expression": (bound_expression, None, (False, False)),
            "empty": (QuantumCircuit(2), ARIA, (None, True)),
            "empty, no ISA given": (QuantumCircuit(2), None, (False, False)),
        }
        for name, (qc, names, expected) in cases.items():
            with self.subTest(name):
                self.assertEqual(check(qc, names), expected)

    def test_reads_only_what_the_answers_need(self):
        """Qiskit's preset pass managers run the check on every ISA circuit given again:
        on an ISA circuit it reads the angles outside ``rz`` (one free parameter there
        would decide) and no ``rz`` node; without an ISA to check, it reads the ``rz``
        nodes only up to the first parameterized one."""
        a = Parameter("a")
        qc = QuantumCircuit(2)
        qc.rz(a, 0)
        for i in range(40):
            qc.rz(0.1 * i, i % 2)
            qc.sx(i % 2)
            qc.rxx(0.2, 0, 1)

        class Node:  # a DAG node that records reads of its parameters
            def __init__(self, node, read):
                self.node, self.read = node, read

            def is_parameterized(self):
                self.read.append(self.node.name)
                return self.node.is_parameterized()

            @property
            def params(self):
                return self.node.params

        class Dag:  # the DAG, its nodes wrapped
            def __init__(self, dag, read):
                self.dag, self.read = dag, read

            def count_ops(self, recurse=True):
                return self.dag.count_ops(recurse=recurse)

            def named_nodes(self, *names):
                return [Node(node, self.read) for node in self.dag.named_nodes(*names)]

        for names, expected, rz_read in ((ARIA, (None, True), 0), (None, (True, False), 1)):
            with self.subTest(isa_names=names):
                read: list[str] = []
                pass_ = CheckParameterized(names)
                pass_.property_set = PropertySet()
                pass_.run(Dag(circuit_to_dag(qc), read))
                self.assertEqual(
                    (pass_.property_set["ionq_parameterized"], pass_.property_set["ionq_isa_form"]), expected
                )
                self.assertEqual(read.count("rxx"), 40)  # every non-rz angle
                self.assertEqual(read.count("rz"), rz_read)


if __name__ == "__main__":
    unittest.main()
