"""Level 3 with ``qubits_initially_zero``: never more MS than the unitary-mode result."""

from __future__ import annotations

from collections.abc import Callable

from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler import PassManager, Target
from qiskit.transpiler.basepasses import TransformationPass

from ..target import spec_from_target
from .resynthesize_native import native_cost
from .resynthesize_three_qubit_blocks import ResynthesizeThreeQubitBlocks


def _two_qubit_count(dag: DAGCircuit) -> int:
    ops = dag.count_ops()
    return ops.get("ms", 0) + ops.get("zz", 0)


class BestOfStateAndUnitaryModes(TransformationPass):
    """Run the state-mode passes, and the unitary-mode ones when they may do better.

    With ``qubits_initially_zero`` the lowering may use that qubits start in ``|0>``,
    which never costs MS; but :class:`ResynthesizeThreeQubitBlocks` searches the blocks
    of whatever circuit it is given, and the state-mode blocks differ from the
    unitary-mode ones, so a reduction found in one mode may be missed in the other. When
    the state-mode run has three-qubit blocks worth a search, this pass also runs the
    unitary-mode passes (whose output, being unitary-equivalent, also prepares the
    right state) and keeps the one with fewer MS/ZZ gates (ties: higher estimated
    success). Otherwise the state-mode output is returned directly.

    Guarantees: the output is one of the two pipelines' outputs, so it prepares the
    input's state from ``|0...0>``, with no more two-qubit gates than the state-mode
    pipeline's output.

    Args:
        target: The IonQ target (error model for the tie-break).
        state_passes: Factory of the state-mode (``qubits_initially_zero=True``) passes.
        unitary_passes: Factory of the same passes in unitary mode.
    """

    def __init__(
        self,
        target: Target | None,
        state_passes: Callable[[], list],
        unitary_passes: Callable[[], list],
    ) -> None:
        super().__init__()
        self.spec = spec_from_target(target)
        self._state = state_passes
        self._unitary = unitary_passes

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        circuit = dag_to_circuit(dag)
        passes = self._state()
        state = circuit_to_dag(PassManager(passes).run(circuit))
        searched = any(
            p.stats.get("blocks", 0) for p in passes if isinstance(p, ResynthesizeThreeQubitBlocks)
        )
        if not searched:
            return state
        unitary = circuit_to_dag(PassManager(self._unitary()).run(circuit))
        key_s = (_two_qubit_count(state), native_cost(state, self.spec))
        key_u = (_two_qubit_count(unitary), native_cost(unitary, self.spec))
        return unitary if key_u < key_s else state
