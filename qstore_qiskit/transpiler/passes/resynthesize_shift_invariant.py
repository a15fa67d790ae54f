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


class _NoMatrix(Exception):
    """An instruction without a matrix."""


def _evolve(ops, n: int, columns: np.ndarray, global_phase=0.0) -> np.ndarray:
    """``W @ columns`` for the circuit ``ops`` (``(operation, qubit indices)``) on ``n``
    qubits; gates on more than three qubits are expanded through their definitions."""
    state = np.array(columns, dtype=complex).reshape((2,) * n + (columns.shape[1],))
    cache: dict = {}
    state = _apply_ops(ops, n, state, cache)
    return state.reshape(1 << n, columns.shape[1]) * np.exp(1j * float(global_phase))


def _apply_ops(ops, n: int, state: np.ndarray, cache: dict) -> np.ndarray:
    """Apply ``ops`` to ``state`` (shape ``(2,)*n + (columns,)``); matrices of standard
    gates are cached by name and parameters in ``cache``."""
    for op, qubits in ops:
        if len(qubits) > 3 and getattr(op, "definition", None) is not None:
            definition = op.definition
            inner = [
                (inst.operation, [qubits[definition.find_bit(q).index] for q in inst.qubits])
                for inst in definition.data
            ]
            state = _apply_ops(inner, n, state, cache) * np.exp(1j * float(definition.global_phase))
            continue
        key = None
        if not isinstance(op, Gate):
            raise _NoMatrix
        if getattr(op, "_standard_gate", None) is not None or type(op).__module__.startswith(
            "qiskit.circuit.library.standard_gates"
        ):
            key = (op.name, tuple(float(p) for p in op.params))
        matrix = cache.get(key) if key is not None else None
        if matrix is None:
            try:
                matrix = Operator(op).data
            except Exception as exc:  # noqa: BLE001 - no matrix: the pass does nothing
                raise _NoMatrix from exc
            if key is not None:
                cache[key] = matrix
        k = len(qubits)
        gate = matrix.reshape((2,) * (2 * k))
        axes = [n - 1 - q for q in reversed(qubits)]
        state = np.tensordot(gate, state, axes=(list(range(k, 2 * k)), axes))
        state = np.moveaxis(state, list(range(k)), axes)
    return state


def _some_x_commutes(ops, n: int, global_phase, samples: int = 2) -> bool:
    """Whether ``W X_q v = X_q W v`` for some qubit ``q`` on ``samples`` random vectors
    ``v`` (a necessary condition for a shift symmetry, see :meth:`run`)."""
    rng = np.random.default_rng(1234)
    dim = 1 << n
    v = rng.normal(size=(dim, samples)) + 1j * rng.normal(size=(dim, samples))
    idx = np.arange(dim)
    columns = [v] + [v[idx ^ (1 << q)] for q in range(n)]
    out = _evolve(ops, n, np.concatenate(columns, axis=1), global_phase)
    w_v = out[:, :samples]
    for q in range(n):
        w_xv = out[:, samples * (q + 1) : samples * (q + 2)]
        if np.allclose(w_v[idx ^ (1 << q)], w_xv, atol=1e-8 * np.sqrt(dim)):
            return True
    return False


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
    input's (:func:`_two_qubit_estimate`); the caller decides on the lowered result
    (:class:`LowerBestOfCandidates` keeps it only if it has no more MS and no lower
    estimated success).

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
                # pylint: disable-next=protected-access
                not isinstance(succ, DAGOpNode) or succ._node_id in final
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
        ops = [
            (inst.operation, [body.find_bit(q).index for q in inst.qubits]) for inst in body.data
        ]
        try:
            # Cheap necessary condition first: W commutes with T only if it commutes with
            # X on the register's most significant bit (T^(2^(m-1))); checked on random
            # vectors, which costs a few statevector simulations, not the 2^n x 2^n
            # unitary (seconds at 8 qubits).
            if not _some_x_commutes(ops, n, body.global_phase):
                return dag
            unitary = Operator(body).data  # Qiskit's is faster for all 2^n columns
        except Exception:  # noqa: BLE001 - an instruction without a matrix: nothing to do
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
        phase = float(np.angle(unitary[pivot] / new[pivot]))
        if not np.allclose(new * np.exp(1j * phase), unitary, atol=1e-8):
            return dag  # never return an unverified rewrite
        circuit.global_phase += phase
        out_dag = dag.copy_empty_like()
        rebuilt = circuit_to_dag(circuit)
        out_dag.global_phase = rebuilt.global_phase
        for node in rebuilt.topological_op_nodes():
            qargs = tuple(dag.qubits[rebuilt.find_bit(q).index] for q in node.qargs)
            out_dag.apply_operation_back(node.op, qargs, (), check=False)
        for node in dag.topological_op_nodes():
            if node._node_id in final:  # pylint: disable=protected-access
                out_dag.apply_operation_back(node.op, node.qargs, node.cargs, check=False)
        self.stats["register"] = m
        return out_dag
