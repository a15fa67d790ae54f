"""Decide whether a circuit still has parameters (the ISA path keeps them in virtual RZ)."""

from __future__ import annotations

from qiskit.circuit import ParameterExpression
from qiskit.dagcircuit import DAGCircuit, DAGOpNode
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
    from one look at the nodes that can take an angle, which stops as soon as they are
    known. On a circuit in the ISA form, ``ionq_parameterized`` is not needed (nothing
    is lowered, whether it holds parameters or not): its ``rz`` nodes are not read and
    ``ionq_parameterized`` is ``None`` (unknown, falsy).

    Args:
        isa_names: Instruction names of the ISA form, or ``None`` (do not check it;
            ``ionq_isa_form`` is then ``False``).
    """

    def __init__(self, isa_names: frozenset[str] | None = None) -> None:
        super().__init__()
        self.isa_names = isa_names

    def run(self, dag: DAGCircuit) -> None:
        # Instruction names come from the DAG's own count. Only nodes of names that can
        # take an angle are visited, and of those only nodes holding an expression are
        # looked at in Python (``node.op`` would build a Python gate object for every
        # standard gate). Qiskit's preset pass managers run this on every ISA circuit
        # they are given again (qiskit-machine-learning: each shifted circuit of every
        # gradient, 96 per backward pass of a small QNN), so it reads as little as the
        # answers need: a free parameter outside ``rz`` settles both (parameterized, not
        # in ISA form); an ISA circuit needs no more (its ``rz`` nodes, most of its
        # angles, are not read); otherwise the ``rz`` nodes are read up to the first
        # free parameter.
        counts = dag.count_ops(recurse=False)
        isa = self.isa_names is not None and counts.keys() <= self.isa_names
        others = [name for name in counts if name not in _NO_ANGLE and name != "rz"]
        parameterized: bool | None
        if others and any(_free(node) for node in dag.named_nodes(*others)):
            parameterized, isa = True, False
        elif isa:
            parameterized = None
        else:
            parameterized = "rz" in counts and any(_free(node) for node in dag.named_nodes("rz"))
        self.property_set["ionq_parameterized"] = parameterized
        self.property_set["ionq_isa_form"] = isa


def _free(node: DAGOpNode) -> bool:
    """Whether ``node`` has an angle with a free parameter (``is_parameterized`` is
    answered from the DAG's storage; the parameters are read only when it says so)."""
    return node.is_parameterized() and any(
        isinstance(p, ParameterExpression) and p.parameters for p in node.params
    )
