"""Decide whether a circuit already is in the lowering's native output form."""

from __future__ import annotations

from qiskit.circuit import ParameterExpression
from qiskit.dagcircuit import DAGCircuit, DAGOpNode
from qiskit.transpiler import Target
from qiskit.transpiler.basepasses import AnalysisPass

_ALWAYS = frozenset({"gpi", "gpi2", "ms", "rz", "measure", "reset", "barrier"})


def _numeric(value) -> float | None:
    if isinstance(value, ParameterExpression):
        if value.parameters:
            return None
        value = value.numeric()
    return float(value)


class CheckNativeForm(AnalysisPass):
    """Set ``property_set["ionq_native_form"]``: is the circuit already lowered?

    True exactly when the circuit satisfies the output contract of
    :class:`~qstore_qiskit.transpiler.passes.LowerToIonQNative`: only ``gpi``, ``gpi2``,
    ``ms``, ``zz`` (only if the target has it), ``rz``, ``measure``, ``reset`` and
    ``barrier``; every ``rz`` is the last operation on its wire; bound phases are in
    ``[0, 1)`` and bound MS angles in ``[0, 1/4]``; no wire has more than two
    single-qubit natives in a row. The translation stage skips lowering such circuits,
    which makes it idempotent (Qiskit re-runs translation in its optimization loop).

    Args:
        target: The target (decides whether ``zz`` is allowed).
    """

    def __init__(self, target: Target | None = None) -> None:
        super().__init__()
        self.allowed = set(_ALWAYS)
        if target is None or "zz" in target.operation_names:
            self.allowed.add("zz")

    def run(self, dag: DAGCircuit) -> None:
        self.property_set["ionq_native_form"] = self._native(dag)

    def _native(self, dag: DAGCircuit) -> bool:
        # Any instruction name outside the native set decides it (a logical circuit, the
        # usual input): counted in Rust, without a Python node object per instruction.
        allowed = self.allowed
        if any(name not in allowed for name in dag.count_ops(recurse=False)):
            return False
        run_length: dict = {}
        for node in dag.topological_op_nodes():
            name = node.name  # not node.op: that builds a Python object per standard gate
            if name not in self.allowed:
                return False
            if name == "rz":
                if any(isinstance(s, DAGOpNode) for s in dag.successors(node)):
                    return False
                continue
            if name in ("gpi", "gpi2"):
                (q,) = node.qargs
                run_length[q] = run_length.get(q, 0) + 1
                if run_length[q] > 2:
                    return False
                phase = _numeric(node.params[0])
                if phase is not None and not 0.0 <= phase < 1.0:
                    return False
                continue
            for q in node.qargs:
                run_length[q] = 0
            if name == "ms":
                values = [_numeric(p) for p in node.params]
                if any(v is not None and not 0.0 <= v < 1.0 for v in values[:2]):
                    return False
                if values[2] is not None and not 0.0 <= values[2] <= 0.25:
                    return False
        return True
