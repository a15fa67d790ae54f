"""Resynthesise a small circuit whose unitary commutes with a cyclic shift of a register."""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Gate
from qiskit.converters import circuit_to_dag
from qiskit.dagcircuit import DAGCircuit, DAGOpNode
from qiskit.quantum_info import Operator
from qiskit.transpiler.basepasses import TransformationPass

from ..shift_synthesis import find_shift_symmetry, shift_invariant_circuit

#: Instructions that may end the circuit (they are kept after the resynthesised part).
_FINAL = frozenset({"measure", "barrier"})


def _two_qubit_estimate(dag: DAGCircuit) -> int:
    """Two-qubit gates the input costs at least: one per two-qubit gate, ``2^(k-1)`` per
    gate on ``k >= 3`` qubits (a Toffoli lowers to 5 MS, wider multi-controlled gates to
    many more)."""
    total = 0
    for node in dag.op_nodes():
        k = len(node.qargs)
        if k == 2:
            total += 1
        elif k >= 3:
            total += 1 << (k - 1)
    return total


class ResynthesizeShiftInvariant(TransformationPass):
    """Replace a circuit that commutes with a register's ``+1`` shift by ``QFT^dagger M QFT``.

    For a circuit of at most ``max_qubits`` qubits, computes its unitary ``W`` and looks
    for a register ``R`` (all qubits, or all but one, in some bit order) whose cyclic
    shift ``|x> -> |x + 1 mod 2^m>`` commutes with ``W``
    (:func:`~qstore_qiskit.transpiler.shift_synthesis.find_shift_symmetry`). Then ``W``
    is block diagonal in the Fourier basis of ``R`` and is rebuilt as the QFT on ``R``
    (without swaps), a multiplexor of one-qubit gates on the remaining qubit
    (:class:`~qiskit.circuit.library.UCGate`; a diagonal when no qubit remains) and the
    inverse QFT (:func:`~qstore_qiskit.transpiler.shift_synthesis.shift_invariant_circuit`).
    Quantum walks (coin-controlled increments and decrements) and controlled modular
    additions have this symmetry. The pass makes the rewrite when an optimistic
    estimate of its two-qubit cost (``m(m-1)`` for the two QFTs, ``2^m`` for the
    multiplexor, which needs about three times that with its diagonal) is below the
    input's (:func:`_two_qubit_estimate`); the caller decides on the lowered result (:class:`LowerBestOfCandidates` keeps it only if it has no more MS and no
    lower estimated success).

    Guarantees: the output's unitary equals the input's (checked numerically, global
    phase included, before it is returned); final measurements and barriers are kept
    after it. Circuits wider than ``max_qubits``, with non-unitary instructions before
    the end, or with unbound parameters are returned unchanged.

    Args:
        max_qubits: Widest circuit analysed (its unitary is ``2^n x 2^n``).
    """

    def __init__(self, max_qubits: int = 8) -> None:
        super().__init__()
        self.max_qubits = max_qubits
        #: Statistics of the last run: ``register`` (its size, 0 when not rewritten).
        self.stats: dict[str, int] = {}

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        self.stats = {"register": 0}
        n = dag.num_qubits()
        if n < 2 or n > self.max_qubits:
            return dag
        final: set[int] = set()
        for node in reversed(list(dag.topological_op_nodes())):
            if node.op.name in _FINAL and all(
                not isinstance(succ, DAGOpNode) or succ._node_id in final  # pylint: disable=protected-access
                for succ in dag.successors(node)
            ):
                final.add(node._node_id)  # pylint: disable=protected-access
        body = QuantumCircuit(n, global_phase=dag.global_phase)
        qindex = {q: i for i, q in enumerate(dag.qubits)}
        for node in dag.topological_op_nodes():
            if node._node_id in final:  # pylint: disable=protected-access
                continue
            if not isinstance(node.op, Gate) or node.op.is_parameterized() or node.cargs:
                return dag
            body.append(node.op, [qindex[q] for q in node.qargs])
        if _two_qubit_estimate(dag) < 4:
            return dag
        try:
            unitary = Operator(body).data
        except Exception:  # noqa: BLE001 - a gate without a matrix: nothing to do
            return dag
        symmetry = find_shift_symmetry(unitary, n)
        if symmetry is None:
            return dag
        register, others = symmetry
        m = len(register)
        if m * (m - 1) + (1 << m) >= _two_qubit_estimate(dag):
            return dag
        circuit = shift_invariant_circuit(unitary, n, register, others)
        if circuit is None:
            return dag
        new = Operator(circuit).data
        pivot = np.unravel_index(np.argmax(np.abs(unitary)), unitary.shape)
        circuit.global_phase += float(np.angle(unitary[pivot] / new[pivot]))
        if not np.allclose(Operator(circuit).data, unitary, atol=1e-8):
            return dag  # never return an unverified rewrite
        out_dag = dag.copy_empty_like()
        rebuilt = circuit_to_dag(circuit)
        out_dag.global_phase = rebuilt.global_phase
        for node in rebuilt.topological_op_nodes():
            out_dag.apply_operation_back(
                node.op, tuple(dag.qubits[rebuilt.find_bit(q).index] for q in node.qargs), (), check=False
            )
        for node in dag.topological_op_nodes():
            if node._node_id in final:  # pylint: disable=protected-access
                out_dag.apply_operation_back(node.op, node.qargs, node.cargs, check=False)
        self.stats["register"] = m
        return out_dag
