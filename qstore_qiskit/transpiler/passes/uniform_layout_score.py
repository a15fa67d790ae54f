"""Tell Qiskit's layout search that every layout scores the same on an IonQ device."""

from __future__ import annotations

from functools import lru_cache

from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler import Target
from qiskit.transpiler.basepasses import AnalysisPass
from qiskit.transpiler.passes.layout.vf2_utils import ErrorMap


def is_uniform_all_to_all(target: Target | None) -> bool:
    """Whether every ordered pair of the target's qubits has every two-qubit gate, with
    one error rate per instruction across all qubits (so no layout beats another).

    IonQ targets (:class:`~qstore_qiskit.transpiler.IonQTarget`) are so by construction;
    other targets are checked through their instruction properties.
    """
    if target is None or not target.num_qubits:
        return False
    from ..target import IonQTarget  # pylint: disable=import-outside-toplevel

    if isinstance(target, IonQTarget):
        return True
    n = target.num_qubits
    for name in target.operation_names:
        props_map = target[name]
        if None in props_map:
            continue  # a global instruction: the same everywhere
        errors = {p.error for p in props_map.values() if p is not None}
        if len(errors) > 1:
            return False
        arity = {len(q) for q in props_map}
        if arity == {2} and len(props_map) < n * (n - 1):
            return False
    return True


@lru_cache(maxsize=16)
def _flat_error_map(num_qubits: int) -> ErrorMap:
    """An error map with zero error on every qubit pair (and every qubit).

    Built once per width (``n * n`` entries through Python, ~0.1 ms at 25 qubits, paid
    by every ``transpile`` call otherwise) and shared: Qiskit's layout passes only read
    it.
    """
    error_map = ErrorMap(num_qubits * num_qubits)
    for i in range(num_qubits):
        for j in range(num_qubits):
            error_map.add_error((i, j), 0.0)
    return error_map


class UniformLayoutScore(AnalysisPass):
    """Give Qiskit's ``VF2Layout`` a flat error map on a uniform all-to-all target.

    On a device where every qubit pair couples with the same error rates (every IonQ
    device), every layout is equally good. Qiskit's ``VF2Layout`` (layout stage of
    optimization levels 2 and 3) does not know that: after finding the first perfect
    layout it keeps scoring up to 10,000 (level 2) or 100,000 (level 3) more, which costs
    40-200 ms per circuit on a 25-36 qubit complete coupling graph, more than compiling a
    small circuit. Setting ``property_set["vf2_avg_error_map"]`` to zero errors (the
    *relative* scores are all equal anyway) makes it stop at the first layout found.
    Nothing is set on other targets or when an error map is already present.

    Args:
        target: The compilation target.
    """

    def __init__(self, target: Target | None = None) -> None:
        super().__init__()
        self._error_map: ErrorMap | None = None
        if is_uniform_all_to_all(target):
            self._error_map = _flat_error_map(target.num_qubits)

    def run(self, dag: DAGCircuit) -> None:
        if self._error_map is not None and self.property_set["vf2_avg_error_map"] is None:
            self.property_set["vf2_avg_error_map"] = self._error_map
