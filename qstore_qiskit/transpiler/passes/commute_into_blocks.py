"""Move two-qubit gates back through commuting gates to join an earlier block on the same pair."""

from __future__ import annotations

from qiskit.circuit.commutation_library import SessionCommutationChecker
from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler.basepasses import TransformationPass


class CommuteIntoTwoQubitBlocks(TransformationPass):
    """Let a two-qubit gate jump back over gates it commutes with, onto its pair's block.

    Example: in ``cx(3, 2); cx(2, 1); h(3); cp(2, 3)`` the ``cp`` commutes with
    ``cx(2, 1)`` (it is diagonal on qubit 2, the control), so it can be applied right
    after ``h(3)`` and before ``cx(2, 1)``. Then ``cx(3, 2); h(3); cp(2, 3)`` form one
    two-qubit block, which Weyl resynthesis realises with fewer MS gates than two blocks.

    For each two-qubit gate ``g`` (in circuit order) the pass walks back along the
    circuit at most ``window`` instructions. On each of ``g``'s qubits it may pass over
    instructions that commute with ``g`` (checked with Qiskit's commutation checker);
    a non-commuting single-qubit gate pins ``g`` after it on that wire (it becomes part
    of the block), after which only single-qubit gates may follow on that wire. The
    move happens only if both wires reach the same earlier two-qubit gate on the same
    pair. The passed-over instructions, and everything after them that depends on them,
    are moved right after ``g`` in their original order.

    Guarantees: the output is the same unitary as the input (only commuting
    instructions change order), and no instruction is added or removed.

    Args:
        window: How many instructions back to search.
    """

    def __init__(self, window: int = 64) -> None:
        super().__init__()
        self.window = window
        self._checker = SessionCommutationChecker

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        nodes = list(dag.topological_op_nodes())
        qidx = {q: i for i, q in enumerate(dag.qubits)}
        ops = [(n.op, tuple(qidx[q] for q in n.qargs), n.qargs, n.cargs) for n in nodes]
        moved_any = False
        i = 0
        while i < len(ops):
            op, qs, _, cargs = ops[i]
            if len(qs) == 2 and not cargs and not getattr(op, "_directive", False):
                new_order = self._try_move(ops, i)
                if new_order is not None:
                    ops = new_order
                    moved_any = True
            i += 1
        if not moved_any:
            return dag
        out = dag.copy_empty_like()
        for op, _, qargs, cargs in ops:
            out.apply_operation_back(op, qargs, cargs, check=False)
        return out

    def _commute(self, a, b) -> bool:
        op_a, _, qa, ca = a
        op_b, _, qb, cb = b
        if ca or cb or getattr(op_b, "_directive", False) or not hasattr(op_b, "to_matrix"):
            return False
        try:
            return self._checker.commute(op_a, qa, ca, op_b, qb, cb)
        except Exception:  # noqa: BLE001 - anything the checker cannot decide does not commute
            return False

    def _try_move(self, ops: list, i: int) -> list | None:
        gate = ops[i]
        pair = set(gate[1])
        pinned = {q: False for q in pair}
        skipped: set[int] = set()
        found = None
        stop = max(-1, i - 1 - self.window)
        for j in range(i - 1, stop, -1):
            other = ops[j]
            overlap = pair.intersection(other[1])
            if not overlap:
                continue
            if len(other[1]) == 2 and set(other[1]) == pair and not other[3]:
                if skipped:
                    found = j
                break
            if len(other[1]) == 1:
                (q,) = other[1]
                if not pinned[q] and self._commute(gate, other):
                    skipped.add(j)
                elif not other[3]:
                    pinned[q] = True  # stays before the gate, inside the block
                else:
                    return None
                continue
            # Another multi-qubit instruction on one of our wires: pass it only if it
            # commutes and no wire it touches is pinned.
            if any(pinned[q] for q in overlap) or not self._commute(gate, other):
                return None
            skipped.add(j)
        if found is None:
            return None
        # Everything after `found` that depends on a skipped instruction moves too.
        moving: list[int] = []
        moving_qubits: set[int] = set()
        staying: list[int] = []
        for k in range(found + 1, i):
            qs = set(ops[k][1])
            if k in skipped or qs & moving_qubits:
                if k not in skipped and qs & pair:
                    return None  # a dependent on our wires that we did not check
                moving.append(k)
                moving_qubits |= qs
            else:
                staying.append(k)
        if not moving:
            return None
        return (
            ops[: found + 1]
            + [ops[k] for k in staying]
            + [gate]
            + [ops[k] for k in moving]
            + ops[i + 1 :]
        )
