"""Decide whether a circuit still has parameters (the ISA path keeps them in virtual RZ)."""

from __future__ import annotations

from qiskit.circuit import ParameterExpression
from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler.basepasses import AnalysisPass


class CheckParameterized(AnalysisPass):
    """Set ``property_set["ionq_parameterized"]``: does an instruction have a free parameter?

    The ``qstore`` stage plugins route parameterized circuits through
    :class:`~qstore_qiskit.transpiler.passes.ParametersToVirtualRZ` (every parameter
    kept, in virtual ``rz`` only) and bound ones through the ordinary lowering. A
    parameter that occurs only in the global phase does not count.
    """

    def run(self, dag: DAGCircuit) -> None:
        # ``is_parameterized`` is answered from the DAG's own storage; only nodes holding
        # an expression are looked at in Python (``node.op`` would build a Python gate
        # object for every standard gate, ~10x slower on large circuits).
        self.property_set["ionq_parameterized"] = any(
            isinstance(p, ParameterExpression) and p.parameters
            for node in dag.op_nodes()
            if node.is_parameterized()
            for p in node.params
        )
