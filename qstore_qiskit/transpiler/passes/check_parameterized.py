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

    With ``isa_names`` (the instruction names of a target's ISA form, e.g. the
    standard-gate form of :func:`~qstore_qiskit.transpiler.ionq_target`), it also sets
    ``property_set["ionq_isa_form"]``: every instruction's name is in ``isa_names`` and
    every free parameter sits in an ``rz`` angle, so the circuit is already in the
    target's ISA form and the stage has nothing to do (bound or not). Both answers come
    from one look at the nodes that can take an angle.

    Args:
        isa_names: Instruction names of the ISA form, or ``None`` (do not check it;
            ``ionq_isa_form`` is then ``False``).
    """

    def __init__(self, isa_names: frozenset[str] | None = None) -> None:
        super().__init__()
        self.isa_names = isa_names

    def run(self, dag: DAGCircuit) -> None:
        # ``is_parameterized`` is answered from the DAG's own storage; only nodes holding
        # an expression are looked at in Python (``node.op`` would build a Python gate
        # object for every standard gate, ~10x slower on large circuits), and only nodes
        # of names that can take an angle are visited at all (Qiskit's preset pass
        # managers run this on every ISA circuit they are given again).
        counts = dag.count_ops(recurse=False)
        isa = self.isa_names is not None and counts.keys() <= self.isa_names
        names = [name for name in counts if name not in _NO_ANGLE]
        parameterized = False
        if names:
            for node in dag.named_nodes(*names):
                if node.is_parameterized() and any(
                    isinstance(p, ParameterExpression) and p.parameters for p in node.params
                ):
                    parameterized = True
                    if node.name != "rz":
                        isa = False
                    if not isa:
                        break
        self.property_set["ionq_parameterized"] = parameterized
        self.property_set["ionq_isa_form"] = isa
