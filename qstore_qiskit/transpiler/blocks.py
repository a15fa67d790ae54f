"""Two-qubit blocks of a DAG as matrices, without rewriting the DAG.

:class:`~qiskit.transpiler.passes.ConsolidateBlocks` replaces every block found by
:class:`~qiskit.transpiler.passes.Collect2qBlocks` with a ``unitary`` instruction. On a
native IonQ circuit that costs one call back into Python per GPi/GPi2/MS (their matrices
are Python code), one ``UnitaryGate`` object and one DAG rewrite per block, about a
quarter of the time of a resynthesis whose result is often discarded. The lowering only
needs each block's matrix and where it sits: :func:`block_matrices` computes those
directly (native gates from closed forms, anything else from ``DAGOpNode.matrix``).
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

_TWO_PI = 2.0 * math.pi
_SQ2 = 1.0 / math.sqrt(2.0)
#: Row/column permutation that swaps the two qubits of a 4x4 matrix.
_SWAP = [0, 2, 1, 3]


def _float_params(node) -> list[float] | None:
    try:
        return [float(p) for p in node.params]
    except (TypeError, ValueError):  # a symbolic parameter
        return None


def _matrix_1q(node) -> np.ndarray | None:
    name = node.name
    if name in ("gpi", "gpi2", "rz"):
        params = _float_params(node)
        if params is None:
            return None
        if name == "gpi2":
            e = cmath.exp(1j * _TWO_PI * params[0])
            return np.array([[_SQ2, -1j * _SQ2 * e.conjugate()], [-1j * _SQ2 * e, _SQ2]])
        if name == "gpi":
            e = cmath.exp(1j * _TWO_PI * params[0])
            return np.array([[0.0, e.conjugate()], [e, 0.0]])
        e = cmath.exp(0.5j * params[0])
        return np.array([[e.conjugate(), 0.0], [0.0, e]])
    return _node_matrix(node)


def _matrix_2q(node) -> np.ndarray | None:
    name = node.name
    if name in ("ms", "zz"):
        params = _float_params(node)
        if params is None:
            return None
        if name == "zz":
            e = cmath.exp(1j * math.pi * params[0])
            return np.diag([e.conjugate(), e, e, e.conjugate()])
        phi0, phi1, theta = params
        c, s = math.cos(math.pi * theta), math.sin(math.pi * theta)
        plus = -1j * s * cmath.exp(1j * _TWO_PI * (phi0 + phi1))
        minus = -1j * s * cmath.exp(1j * _TWO_PI * (phi0 - phi1))
        return np.array(
            [
                [c, 0.0, 0.0, -1j * s * cmath.exp(-1j * _TWO_PI * (phi0 + phi1))],
                [0.0, c, minus, 0.0],
                [0.0, -1j * s * cmath.exp(-1j * _TWO_PI * (phi0 - phi1)), c, 0.0],
                [plus, 0.0, 0.0, c],
            ]
        )
    return _node_matrix(node)


def _node_matrix(node) -> np.ndarray | None:
    if node.is_parameterized() or node.num_clbits:
        return None
    try:
        matrix = node.matrix
    except Exception:  # noqa: BLE001 - no matrix: the block is not consolidated
        return None
    return None if matrix is None else np.asarray(matrix, dtype=complex)


def block_matrix(block: Sequence[Any], a: Any, b: Any) -> np.ndarray | None:
    """The unitary of ``block`` (nodes in circuit order on qubits ``a`` and ``b``).

    Qiskit's little-endian convention with ``a`` as qubit 0, as for a gate applied to
    ``(a, b)``. ``None`` if an instruction has no numeric matrix.
    """
    pending = {a: None, b: None}
    total = None
    for node in block:
        qargs = node.qargs
        if len(qargs) == 1:
            u = _matrix_1q(node)
            if u is None:
                return None
            q = qargs[0]
            prev = pending[q]
            pending[q] = u if prev is None else u @ prev
            continue
        g = _matrix_2q(node)
        if g is None or len(qargs) != 2:
            return None
        if qargs[0] != a:
            g = g[_SWAP][:, _SWAP]
        local = _kron(pending[b], pending[a])
        pending[a] = pending[b] = None
        if local is not None:
            g = g @ local
        total = g if total is None else g @ total
    local = _kron(pending[b], pending[a])
    if total is None:
        return local
    return total if local is None else local @ total


def _kron(high: np.ndarray | None, low: np.ndarray | None) -> np.ndarray | None:
    if high is None and low is None:
        return None
    if high is None:
        high = np.eye(2, dtype=complex)
    if low is None:
        low = np.eye(2, dtype=complex)
    return kron2(high, low)


def kron2(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """``np.kron`` of two 2x2 matrices, bit for bit (one product per entry), without
    its generic shape handling, which costs ~10x the arithmetic at this size."""
    return (high[:, None, :, None] * low[None, :, None, :]).reshape(4, 4)


def block_plan(
    blocks: Iterable[Sequence[Any]], qubit_index: dict[Any, int]
) -> dict[int, tuple | None]:
    """Where each block is resynthesised: ``node id -> (matrix, a, b)`` for the first
    two-qubit node of each block, ``node id -> None`` for its other nodes.

    Processing a whole block at its first two-qubit node is valid in a topological
    sweep: the block is convex and contiguous on its two wires, so everything before it
    on those wires comes earlier and everything after it comes later. Blocks without a
    two-qubit gate or without a numeric matrix are left out (lowered gate by gate).
    The pair is ordered by ``qubit_index`` (the lower index first), as ConsolidateBlocks
    orders a block's qubits, so that the lowering sees the same matrices.
    """
    plan: dict[int, tuple | None] = {}
    for block in blocks:
        first = next((node for node in block if len(node.qargs) == 2), None)
        if first is None:
            continue
        a, b = sorted(first.qargs, key=qubit_index.__getitem__)
        if any(q not in (a, b) for node in block for q in node.qargs):
            continue
        matrix = block_matrix(block, a, b)
        if matrix is None:
            continue
        for node in block:
            plan[node._node_id] = None  # pylint: disable=protected-access
        plan[first._node_id] = (matrix, a, b)  # pylint: disable=protected-access
    return plan
