"""Forget a stale two-qubit block list before :class:`ConsolidateBlocks`."""

from __future__ import annotations

from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler.basepasses import AnalysisPass


class ClearBlockList(AnalysisPass):
    """Drop a ``block_list`` left in the property set by an earlier
    :class:`~qiskit.transpiler.passes.Collect2qBlocks` (of a user's pass manager).

    Guarantee: after this pass the property set holds no ``block_list``, so a following
    :class:`~qiskit.transpiler.passes.ConsolidateBlocks` collects the blocks of the
    circuit it is given (in Rust, the same blocks as ``Collect2qBlocks``), never those
    of a circuit an earlier pass has since changed. The circuit is not touched.
    """

    def run(self, dag: DAGCircuit) -> None:
        if self.property_set["block_list"] is not None:
            del self.property_set["block_list"]
