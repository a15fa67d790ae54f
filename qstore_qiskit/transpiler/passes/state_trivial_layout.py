"""State the trivial layout of a circuit that no layout stage laid out."""

from __future__ import annotations

from functools import lru_cache

from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler import Layout
from qiskit.transpiler.basepasses import AnalysisPass


class StateTrivialLayout(AnalysisPass):
    """Set ``property_set["layout"]`` to the trivial layout when nothing set a layout.

    IonQ targets have no connectivity constraint
    (:meth:`~qstore_qiskit.transpiler.IonQTarget.build_coupling_map` is ``None``), so
    Qiskit's preset pass managers run no layout stage and their output would carry no
    :class:`~qiskit.transpiler.TranspileLayout`. Qiskit's own code handles that, but
    qiskit-machine-learning's gradients read ``circuit.layout._input_qubit_count`` of
    every pass-manager output, and ``SparsePauliOp.apply_layout(circuit.layout)`` is the
    documented ISA step. This pass states what happened instead: virtual qubit ``i`` on
    physical qubit ``i``.

    Guarantees: the DAG is not changed; the property set is changed only when
    ``layout``, ``final_layout`` and ``virtual_permutation_layout`` are all unset (a
    layout stage, a routing stage or :class:`~qiskit.transpiler.passes.ElidePermutations`
    already gives Qiskit what it needs to build the layout itself), so the resulting
    ``TranspileLayout`` is the identity on the circuit's qubits. Each run sets a
    :class:`~qiskit.transpiler.Layout` of its own (a copy of one built once per tuple of
    qubits: qiskit-machine-learning sends one circuit through the pass manager for each
    shifted parameter set, and ``Layout``'s constructor checks every entry).
    """

    def run(self, dag: DAGCircuit) -> None:
        props = self.property_set
        if props["layout"] is None and props["final_layout"] is None and props["virtual_permutation_layout"] is None:
            props["layout"] = _trivial_layout(tuple(dag.qubits)).copy()


@lru_cache(maxsize=64)
def _trivial_layout(qubits: tuple) -> Layout:
    """The layout ``{i: qubits[i]}`` (never handed out itself: callers copy it)."""
    return Layout(dict(enumerate(qubits)))
