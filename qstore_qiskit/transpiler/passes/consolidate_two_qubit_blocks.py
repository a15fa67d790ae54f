"""Consolidate the two-qubit blocks of the circuit as it is now, into unitaries."""

from __future__ import annotations

from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler.passes import ConsolidateBlocks


class ConsolidateTwoQubitBlocks(ConsolidateBlocks):
    """Qiskit's ``ConsolidateBlocks(force_consolidate=True)`` on freshly collected blocks.

    Guarantees: the output is exactly what :class:`ClearBlockList` followed by
    :class:`~qiskit.transpiler.passes.ConsolidateBlocks` with ``force_consolidate=True``
    gives: any ``block_list`` an earlier pass left in the property set is dropped first
    (it may describe a circuit that has since changed), so the blocks are collected from
    the circuit given (in Rust, the same blocks as
    :class:`~qiskit.transpiler.passes.Collect2qBlocks`), and every such block becomes
    one ``unitary`` on its two qubits.

    One pass instead of two, and the recursion into control-flow blocks (which builds a
    new pass manager on every run, a few percent of a small circuit's compile) is only
    set up when the circuit has control flow.
    """

    def __init__(self) -> None:
        super().__init__(force_consolidate=True)

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        if self.property_set["block_list"] is not None:
            del self.property_set["block_list"]
        return super().run(dag)

    def _handle_control_flow_ops(self, dag: DAGCircuit, qubit_map):
        # Qiskit's method only rewrites control-flow nodes (after building a pass
        # manager for them): without any, it returns ``dag`` unchanged.
        if not dag.control_flow_op_nodes():
            return dag
        return super()._handle_control_flow_ops(dag, qubit_map)
