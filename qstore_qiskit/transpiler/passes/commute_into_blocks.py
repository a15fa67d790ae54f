"""Move two-qubit gates back through commuting gates to join an earlier block on the same pair."""

from __future__ import annotations

import numpy as np
from qiskit.circuit.commutation_library import SessionCommutationChecker
from qiskit.dagcircuit import DAGCircuit
from qiskit.quantum_info import Operator
from qiskit.transpiler.basepasses import TransformationPass

from ..synthesis import is_symbolic
from ...gc_pause import pauses_cyclic_gc


#: Standard gates that are diagonal in the computational basis (they commute pairwise).
_Z_DIAGONAL = frozenset(
    {"rz", "p", "u1", "z", "s", "sdg", "t", "tdg", "cz", "cp", "cu1", "crz", "rzz", "ccz", "cs", "csdg"}
)
#: Gates whose name and parameters do not identify their matrix.
_UNKEYED = frozenset({"unitary", "hamiltonian", "isometry"})


def _embed(matrix: np.ndarray, positions: list[int], width: int) -> np.ndarray:
    """``matrix`` (acting on ``positions``, little-endian) as a ``2**width`` operator."""
    dim = 1 << width
    index = np.arange(dim)
    sub = np.zeros(dim, dtype=np.int64)
    rest = index.copy()
    for k, pos in enumerate(positions):
        bit = (index >> pos) & 1
        sub |= bit << k
        rest &= ~(1 << pos)
    same_rest = rest[:, None] == rest[None, :]
    return np.where(same_rest, matrix[sub[:, None], sub[None, :]], 0.0)


def _is_library_gate(op) -> bool:
    """Whether ``op`` is an instance of a Qiskit (or qiskit-ionq) gate class, whose name
    and parameters determine its matrix."""
    module = type(op).__module__ or ""
    return module.split(".")[0] in ("qiskit", "qiskit_ionq")


def _op_key(op):
    """The part of a commutation-cache key that identifies one operation: its name,
    class and numeric parameters, or ``None`` when those do not determine its matrix
    (matrix-defined or symbolic gates, or a custom gate class)."""
    if op.name in _UNKEYED or not _is_library_gate(op):
        return None
    params = []
    for p in getattr(op, "params", ()):
        if not isinstance(p, (int, float, complex)):
            return None
        params.append(p)
    return (op.name, type(op).__name__, tuple(params))


_UNSET = object()


class _Entry:
    """One instruction of a commutation check. The Python operation (and its cache key)
    is built only when the check needs it: ``node.op`` constructs a new gate object for
    every standard gate, which cost as much as the rest of the pass. The sweep itself
    holds ``(node, wire indices, cargs)`` tuples and makes an entry only for the
    instructions it checks (:meth:`CommuteIntoTwoQubitBlocks._entry`)."""

    __slots__ = ("node", "qs", "cargs", "std", "_op", "_key")

    def __init__(self, node, qs: tuple) -> None:
        self.node, self.qs, self.cargs = node, qs, node.cargs
        # A Qiskit standard gate: its name and parameters determine its matrix.
        self.std = node.is_standard_gate()
        self._op = None
        self._key = _UNSET

    @property
    def qargs(self) -> tuple:
        return self.node.qargs

    @property
    def op(self):
        if self._op is None:
            self._op = self.node.op
        return self._op

    @property
    def key(self):
        if self._key is _UNSET:
            if self.std:
                params = self.node.params
                numeric = all(isinstance(p, (int, float, complex)) for p in params)
                self._key = (self.node.name, "", tuple(params)) if numeric else None
            else:
                self._key = _op_key(self.op)
        return self._key


def _signature(key_a, qubits_a, key_b, qubits_b):
    """A hashable key for "does operation ``key_a`` on ``qubits_a`` commute with
    ``key_b`` on ``qubits_b``" (``None`` if either operation has no key)."""
    if key_a is None or key_b is None:
        return None
    if len(qubits_b) == 1 and qubits_b[0] in qubits_a:
        # The common case (a one-qubit gate on a wire of the other): its position in
        # ``qubits_a`` is the whole relative placement.
        return (key_a, key_b, qubits_a.index(qubits_b[0]))
    if len(qubits_a) == 2 and len(qubits_b) == 2:
        # Two two-qubit gates (the common case on entangling layers): which wires they
        # share, and where, is the whole relative placement (the order of wires only one
        # of them touches does not change whether they commute).
        a0, a1 = qubits_a
        b0, b1 = qubits_b
        return (key_a, key_b, a0 == b0, a0 == b1, a1 == b0, a1 == b1)
    # The relative placement of the qubits is what matters, not their indices (at most
    # four qubits: a list lookup is cheaper than building a dict per call).
    qubits = sorted(set(qubits_a).union(qubits_b))
    rank = qubits.index
    return (key_a, tuple(map(rank, qubits_a)), key_b, tuple(map(rank, qubits_b)))


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
        # ``CommutationChecker.commute`` on two DAG nodes, with the arguments ``commute``
        # passes by default (no qubit limit, exact, matrices up to three qubits); ``None``
        # where this Qiskit's checker has no such method.
        self._node_checker = getattr(getattr(SessionCommutationChecker, "cc", None), "commute_nodes", None)
        # Per-run memo of commutation answers: Qiskit's checker builds an Operator for
        # every gate it has no rule for (e.g. the controlled powers in amplitude
        # estimation), which dominated this pass; the same pairs recur many times.
        self._cache: dict = {}
        self._matrices: dict = {}
        self._entries: dict = {}

    @pauses_cyclic_gc
    def run(self, dag: DAGCircuit) -> DAGCircuit:
        self._cache, self._matrices, self._entries = {}, {}, {}
        qidx = {q: i for i, q in enumerate(dag.qubits)}
        nodes = list(dag.topological_op_nodes())
        wires = self._may_move(nodes, qidx)
        if wires is None:
            return dag
        # (node, wire indices, cargs) per instruction, in circuit order.
        ops = [(node, qs, node.cargs) for node, qs in zip(nodes, wires)]
        moved_any = False
        # Position of the latest instruction on each unordered pair of wires (no clbits):
        # the walk back of ``_try_move`` can only end in a move at such an instruction
        # inside its window, so a gate whose pair has none there is not walked at all
        # (wide entangling layers: the previous gate on a pair is layers back).
        last_on_pair: dict[frozenset, int] = {}
        # Only two-qubit instructions start a walk or are recorded. A move permutes the
        # window ``start..i`` only, so the instructions after ``i`` keep their positions.
        for i in [k for k, qs in enumerate(wires) if len(qs) == 2]:
            node, qs, cargs = ops[i]
            if cargs:
                continue
            pair = frozenset(qs)
            previous = last_on_pair.get(pair)
            if (
                previous is not None
                and previous >= i - self.window
                and not node.is_directive()
            ):
                start = self._try_move(ops, i)
                if start is not None:
                    moved_any = True
                    # The window start..i was permuted: re-record its positions.
                    for k in range(start, i + 1):
                        _, moved_qs, moved_cargs = ops[k]
                        if len(moved_qs) == 2 and not moved_cargs:
                            last_on_pair[frozenset(moved_qs)] = k
                    continue
            last_on_pair[pair] = i
        if not moved_any:
            return dag
        out = dag.copy_empty_like()
        # The nodes' instructions as they are (no Python gate object built per standard
        # gate, as ``apply_operation_back(node.op, ...)`` needs), where Qiskit has that.
        append_node = getattr(out, "_apply_op_node_back", None)
        if append_node is not None:
            for node, _, _ in ops:
                append_node(node, check=False)
        else:  # pragma: no cover - older or newer Qiskit without the node method
            for node, _, cargs in ops:
                out.apply_operation_back(node.op, node.qargs, cargs, check=False)
        return out

    def _entry(self, item: tuple) -> _Entry:
        """The commutation-check entry of a sweep item (one per node and run)."""
        node = item[0]
        entry = self._entries.get(id(node))
        if entry is None:
            entry = self._entries[id(node)] = _Entry(node, item[1])
        return entry

    def _may_move(self, nodes: list, qidx: dict) -> list | None:
        """The wire indices of each instruction, or ``None`` if no two-qubit gate has an
        earlier instruction on the same pair of wires inside its window (in circuit
        order). Then no walk of the sweep can end in a move (moves are what change the
        order), so the pass has nothing to do and skips building its entries (small or
        wide circuits often)."""
        last_on_pair: dict[frozenset, int] = {}
        window = self.window
        wires: list[tuple] = []
        may_move = False
        for i, node in enumerate(nodes):
            qargs = node.qargs
            if len(qargs) == 1:
                wires.append((qidx[qargs[0]],))
                continue
            qs = tuple([qidx[q] for q in qargs])
            wires.append(qs)
            if may_move or len(qs) != 2 or node.cargs:
                continue
            pair = frozenset(qs)
            previous = last_on_pair.get(pair)
            if previous is not None and previous >= i - window and not node.is_directive():
                may_move = True
            last_on_pair[pair] = i
        return wires if may_move else None

    def _commute(self, a: _Entry, b: _Entry) -> bool:
        if a.cargs or b.cargs or b.node.is_directive():
            return False
        if not b.std and not hasattr(b.op, "to_matrix"):
            return False
        name_a, name_b = a.node.name, b.node.name
        if (
            name_a in _Z_DIAGONAL
            and name_b in _Z_DIAGONAL
            and (a.std or _is_library_gate(a.op))
            and (b.std or _is_library_gate(b.op))
        ):
            return True  # diagonal in the computational basis: always commute
        ia, ib = a.qs, b.qs
        key = _signature(a.key, ia, b.key, ib)
        if key is not None:
            cached = self._cache.get(key)
            if cached is not None:
                return cached
        if a.std and b.std and self._node_checker is not None:
            # Two standard gates: Qiskit's checker answers from the DAG nodes themselves
            # (the same Rust check as ``commute`` of their operations, which would first
            # build a Python gate object for each).
            try:
                result = bool(self._node_checker(a.node, b.node, None, 1.0, 3))
            except Exception:  # noqa: BLE001 - as below: undecided means "does not commute"
                result = False
            if key is not None:
                self._cache[key] = result
            return result
        # Only now the Python operations are needed (built lazily, see _Entry).
        op_a, qa, ca = a.op, a.qargs, a.cargs
        op_b, qb, cb = b.op, b.qargs, b.cargs
        result = None
        if getattr(op_a, "_standard_gate", None) is None or getattr(op_b, "_standard_gate", None) is None:
            # Qiskit's checker answers standard gates in Rust; others go numeric here.
            result = self._commute_numeric(op_a, ia, op_b, ib)
        if result is None:
            try:
                result = bool(self._checker.commute(op_a, qa, ca, op_b, qb, cb))
            except Exception:  # noqa: BLE001 - anything the checker cannot decide does not commute
                result = False
        if key is not None:
            self._cache[key] = result
        return result

    def _matrix(self, op) -> np.ndarray | None:
        entry = self._matrices.get(id(op))
        if entry is None:
            matrix = None
            if not any(is_symbolic(p) for p in getattr(op, "params", ())):
                try:
                    matrix = np.asarray(op.to_matrix(), dtype=complex)
                except Exception:  # noqa: BLE001 - e.g. a controlled unitary: from its definition
                    try:
                        matrix = Operator(op).data
                    except Exception:  # noqa: BLE001 - matrix-less: let Qiskit decide
                        matrix = None
            entry = self._matrices[id(op)] = (op, matrix)  # keep op alive: ids stay unique
        return entry[1]

    def _commute_numeric(self, op_a, qubits_a, op_b, qubits_b) -> bool | None:
        """Exact commutation test on the (at most four) qubits the two gates touch.

        Qiskit's checker builds a :class:`~qiskit.quantum_info.Operator` for every gate
        it has no stored rule for (e.g. the ``c-unitary`` powers of amplitude
        estimation), which is ~100x slower than this product of small matrices.
        Returns ``None`` when a matrix is unavailable.
        """
        if len(qubits_a) > 2 or len(qubits_b) > 2:
            return None
        ma, mb = self._matrix(op_a), self._matrix(op_b)
        if ma is None or mb is None:
            return None
        union = sorted(set(qubits_a) | set(qubits_b))
        ea = _embed(ma, [union.index(q) for q in qubits_a], len(union))
        eb = _embed(mb, [union.index(q) for q in qubits_b], len(union))
        return bool(np.allclose(ea @ eb, eb @ ea, atol=1e-10, rtol=0.0))

    def _try_move(self, ops: list, i: int) -> int | None:
        gate_item = ops[i]
        gate = self._entry(gate_item)
        pair = set(gate.qs)
        qa, qb = gate.qs
        pinned = {q: False for q in pair}
        skipped: set[int] = set()
        found = None
        stop = max(-1, i - 1 - self.window)
        for j in range(i - 1, stop, -1):
            item = ops[j]
            oqs = item[1]
            # Most instructions in the window are on other wires: tuple membership
            # rejects them without building a set.
            if qa not in oqs and qb not in oqs:
                continue
            if len(oqs) == 2 and (oqs == (qa, qb) or oqs == (qb, qa)) and not item[2]:
                if skipped:
                    found = j
                break
            if len(oqs) == 1:
                (q,) = oqs
                if not pinned[q] and self._commute(gate, self._entry(item)):
                    skipped.add(j)
                elif not item[2]:
                    pinned[q] = True  # stays before the gate, inside the block
                else:
                    return None
                continue
            # Another multi-qubit instruction on one of our wires: pass it only if it
            # commutes and no wire it touches is pinned.
            overlap = pair.intersection(oqs)
            if any(pinned[q] for q in overlap) or not self._commute(gate, self._entry(item)):
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
        # Only the window ``found + 1 .. i`` is permuted: replace that slice in place
        # (same length, so O(i - found)) instead of rebuilding the whole list, which made
        # the pass quadratic in the circuit size.
        ops[found + 1 : i + 1] = [ops[k] for k in staying] + [gate_item] + [ops[k] for k in moving]
        return found + 1
