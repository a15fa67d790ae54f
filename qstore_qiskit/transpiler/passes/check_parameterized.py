"""Decide whether a circuit still has parameters (the ISA path keeps them in virtual RZ)."""

from __future__ import annotations

from qiskit.circuit import ParameterExpression
from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler.basepasses import AnalysisPass


#: Instructions that never take an angle (standard gates without parameters, directives).
_NO_ANGLE = frozenset(
    {"sx", "sxdg", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "cx", "cy", "cz", "ch", "swap",
     "iswap", "ecr", "dcx", "ccx", "cswap", "ccz", "id", "measure", "barrier", "reset"}
)


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
        # object for every standard gate, ~10x slower on large circuits), and only nodes
        # of names that can take an angle are visited at all (Qiskit's preset pass
        # managers run this on every ISA circuit they are given again).
        names = [name for name in dag.count_ops(recurse=False) if name not in _NO_ANGLE]
        self.property_set["ionq_parameterized"] = bool(names) and any(
            isinstance(p, ParameterExpression) and p.parameters
            for node in dag.named_nodes(*names)
            if node.is_parameterized()
            for p in node.params
        )
