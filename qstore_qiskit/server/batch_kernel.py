"""The batched state-vector kernel for small circuits (up to 12 qubits).

:func:`simulate_small_batch` runs all the small circuits of a job together, one gate
step at a time; :func:`batchable` says which circuits it takes. The result of each
circuit equals ``probabilities(simulate_unitary_circuit(...))`` of :mod:`.simulator` up
to rounding (tested in ``test/server/test_simulator_speed_equivalence.py``).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from .gates import _SQ2, gpi, gpi2, ms, phase, rx, rxx, ry, ryy, rz, rzz, zz

#
# Why a second kernel: on a few qubits the state has only 2**n amplitudes, so the path
# above (build each gate matrix, fuse with kron/matmul, apply with einsum) costs numpy's
# fixed per-call overhead several times per gate and almost nothing for arithmetic. A
# multicircuit job of ~100 four-qubit circuits thus spent ~0.7 ms per circuit on overhead.
#
# This kernel simulates many circuits of the same width *together*, one gate "step" at a
# time: step t applies gate t of every circuit at once, so the numpy calls per batch grow
# with the longest circuit instead of with the total number of gates. Circuits differ in
# which qubits their t-th gate touches, so there is no common reshape; instead each state
# is gathered into an order whose last axis (length 4) holds the two touched qubits, all
# rows are multiplied by that circuit's 4x4 matrix in one batched ``matmul``, and the
# result is gathered back into basis order. Every gate is a 4x4 matrix: a one-qubit gate
# ``g`` on ``q`` is ``I ⊗ g`` on ``(q, any other qubit)``, a singly controlled one
# ``diag(I, g)`` on ``(target, control)``. Matrices are built per gate kind, vectorized
# over the batch (``_BATCH_BUILDERS``). There is no gate fusion: a (vectorized) fusion
# planner was tried and its per-gate Python bookkeeping cost more than the steps it
# saved below ~10 qubits.

# Widest circuit for the batched kernel. It was measured 2-3x faster than the generic
# path up to 12 qubits, batched or not (even for a single circuit); its gather tables
# cost 2 * n * n * 2**n indices per width used (9 MB at 12 qubits), hence the cap.
SMALL_CIRCUIT_MAX_QUBITS = 12
# Per batch, at most this many (steps x circuits) 4x4 matrices (256 bytes each) and this
# many amplitudes in all the states together; larger batches are split.
_MAX_BATCH_SLOTS = 1 << 16
_MAX_BATCH_AMPLITUDES = 1 << 20
_DIAG4 = np.arange(4)


def _gpi_batch(args: np.ndarray) -> np.ndarray:
    """:func:`gpi` for a column of phases: ``(k, 1)`` -> ``(k, 2, 2)``."""
    out = np.zeros((len(args), 2, 2), dtype=complex)
    out[:, 0, 1] = np.exp(-2j * np.pi * args[:, 0])
    out[:, 1, 0] = np.exp(2j * np.pi * args[:, 0])
    return out


def _gpi2_batch(args: np.ndarray) -> np.ndarray:
    """:func:`gpi2` for a column of phases."""
    out = np.empty((len(args), 2, 2), dtype=complex)
    out[:, 0, 0] = out[:, 1, 1] = _SQ2
    out[:, 0, 1] = _SQ2 * (-1j * np.exp(-2j * np.pi * args[:, 0]))
    out[:, 1, 0] = _SQ2 * (-1j * np.exp(2j * np.pi * args[:, 0]))
    return out


def _ms_batch(args: np.ndarray) -> np.ndarray:
    """:func:`ms` for rows ``(phi0, phi1, theta)``."""
    phi0, phi1, theta = args[:, 0], args[:, 1], args[:, 2]
    c = np.cos(np.pi * theta)
    mis = -1j * np.sin(np.pi * theta)
    out = np.zeros((len(args), 4, 4), dtype=complex)
    out[:, 0, 0] = out[:, 1, 1] = out[:, 2, 2] = out[:, 3, 3] = c
    out[:, 0, 3] = mis * np.exp(-2j * np.pi * (phi0 + phi1))
    out[:, 1, 2] = mis * np.exp(2j * np.pi * (phi0 - phi1))
    out[:, 2, 1] = mis * np.exp(-2j * np.pi * (phi0 - phi1))
    out[:, 3, 0] = mis * np.exp(2j * np.pi * (phi0 + phi1))
    return out


def _rzz_batch(args: np.ndarray) -> np.ndarray:
    """:func:`rzz` for a column of angles (radians)."""
    out = np.zeros((len(args), 4, 4), dtype=complex)
    out[:, 0, 0] = out[:, 3, 3] = np.exp(-0.5j * args[:, 0])
    out[:, 1, 1] = out[:, 2, 2] = np.exp(0.5j * args[:, 0])
    return out


def _zz_batch(args: np.ndarray) -> np.ndarray:
    """:func:`zz` (turns) for a column of angles."""
    return _rzz_batch(2 * math.pi * args)


def _rxx_ryy_batch(args: np.ndarray, corner: float) -> np.ndarray:
    """``c·I - i·s·P⊗P`` for P = X or Y. ``P⊗P`` is anti-diagonal with ones in the
    middle and ``corner`` (1 for X⊗X, -1 for Y⊗Y) in the corners."""
    half = 0.5 * args[:, 0]
    mis = -1j * np.sin(half)
    out = np.zeros((len(args), 4, 4), dtype=complex)
    out[:, 0, 0] = out[:, 1, 1] = out[:, 2, 2] = out[:, 3, 3] = np.cos(half)
    out[:, 1, 2] = out[:, 2, 1] = mis
    out[:, 0, 3] = out[:, 3, 0] = corner * mis
    return out


def _rx_batch(args: np.ndarray) -> np.ndarray:
    """:func:`rx` for a column of angles."""
    half = 0.5 * args[:, 0]
    out = np.empty((len(args), 2, 2), dtype=complex)
    out[:, 0, 0] = out[:, 1, 1] = np.cos(half)
    out[:, 0, 1] = out[:, 1, 0] = -1j * np.sin(half)
    return out


def _ry_batch(args: np.ndarray) -> np.ndarray:
    """:func:`ry` for a column of angles."""
    half = 0.5 * args[:, 0]
    c, s = np.cos(half), np.sin(half)
    out = np.empty((len(args), 2, 2), dtype=complex)
    out[:, 0, 0] = out[:, 1, 1] = c
    out[:, 0, 1] = -s
    out[:, 1, 0] = s
    return out


def _rz_batch(args: np.ndarray) -> np.ndarray:
    """:func:`rz` for a column of angles."""
    out = np.zeros((len(args), 2, 2), dtype=complex)
    out[:, 0, 0] = np.exp(-0.5j * args[:, 0])
    out[:, 1, 1] = np.exp(0.5j * args[:, 0])
    return out


def _phase_batch(args: np.ndarray) -> np.ndarray:
    """:func:`phase` for a column of angles."""
    out = np.zeros((len(args), 2, 2), dtype=complex)
    out[:, 0, 0] = 1.0
    out[:, 1, 1] = np.exp(1j * args[:, 0])
    return out


# Vectorized twins of the matrix functions: ``(k, number of args)`` floats -> ``(k, d, d)``.
# Gate functions not listed here are still supported (called once per gate).
_BATCH_BUILDERS = {
    gpi: _gpi_batch,
    gpi2: _gpi2_batch,
    ms: _ms_batch,
    zz: _zz_batch,
    rx: _rx_batch,
    ry: _ry_batch,
    rz: _rz_batch,
    phase: _phase_batch,
    rzz: _rzz_batch,
    rxx: lambda args: _rxx_ryy_batch(args, 1.0),
    ryy: lambda args: _rxx_ryy_batch(args, -1.0),
}

# Gate recipe the batched kernel reads: ``((fn, args), num_controls, qubits)``; the
# matrix is ``fn(*args)``, or ``args[0]`` when ``fn`` is None, controlled by the last
# ``num_controls`` of ``qubits`` (as :func:`controlled`); ``qubits[0]`` is its LSB.
GateRecipe = tuple[tuple, int, tuple[int, ...]]

# How a slot's 4x4 matrix holds its gate (rows/columns are ``b_lo + 2 b_hi`` for the
# slot's qubit pair (lo, hi)); the matrix starts as the identity.
_EMBED_1Q = 0  # g on lo: I ⊗ g, g on both diagonal 2x2 blocks
_EMBED_CONTROLLED = 1  # g on lo controlled by hi: diag(I, g), the lower-right block
_EMBED_2Q = 2  # a two-qubit matrix on (lo, hi), as is


def batchable(num_qubits: int, gates: Iterable[GateRecipe]) -> bool:
    """Whether :func:`simulate_small_batch` takes a circuit: 2 to
    :data:`SMALL_CIRCUIT_MAX_QUBITS` qubits, no gate on more than two."""
    return 2 <= num_qubits <= SMALL_CIRCUIT_MAX_QUBITS and all(
        len(qubits) <= 2 for _, _, qubits in gates
    )


_PAIR_TABLES: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _pair_tables(num_qubits: int) -> tuple[np.ndarray, np.ndarray]:
    """Gather tables for every ordered qubit pair ``p = q0 * num_qubits + q1``.

    ``perm[p][4 r + c]`` is the basis index whose bits ``q0``, ``q1`` are ``c``'s bits 0
    and 1 and whose other bits are ``r``'s (in increasing qubit order); ``inv[p]`` is its
    inverse. So ``state[perm[p]].reshape(-1, 4)`` has one row per setting of the other
    qubits and columns in a 4x4 gate's basis order. Rows ``p`` with ``q0 == q1`` are unused.
    """
    tables = _PAIR_TABLES.get(num_qubits)
    if tables is None:
        n = num_qubits
        pos = np.arange(1 << n)
        perm = np.tile(pos, (n * n, 1))
        inv = perm.copy()
        for q0 in range(n):
            for q1 in range(n):
                if q0 == q1:
                    continue
                basis = ((pos & 1) << q0) | (((pos >> 1) & 1) << q1)
                others = [q for q in range(n) if q not in (q0, q1)]
                for bit, q in enumerate(others):
                    basis |= ((pos >> (bit + 2)) & 1) << q
                perm[q0 * n + q1] = basis
                inv[q0 * n + q1, basis] = pos
        tables = _PAIR_TABLES.setdefault(num_qubits, (perm, inv))
    return tables


def simulate_small_batch(num_qubits: int, circuits: Sequence[Sequence[GateRecipe]]
                         ) -> np.ndarray:
    """Born probabilities of several circuits of the same width, simulated together.

    Args:
        num_qubits: Width of every circuit (see :func:`batchable`).
        circuits: Each circuit's gates as :data:`GateRecipe` tuples.

    Returns:
        A ``(len(circuits), 2**num_qubits)`` array; row ``i`` equals
        ``probabilities(simulate_unitary_circuit(...))`` of circuit ``i`` up to rounding.
    """
    steps = max((len(gates) for gates in circuits), default=0)
    if len(circuits) > 1 and (steps * len(circuits) > _MAX_BATCH_SLOTS
                              or len(circuits) << num_qubits > _MAX_BATCH_AMPLITUDES):
        half = len(circuits) // 2
        return np.concatenate([simulate_small_batch(num_qubits, circuits[:half]),
                               simulate_small_batch(num_qubits, circuits[half:])])
    n, batch, dim = num_qubits, len(circuits), 1 << num_qubits
    # Gate t of circuit b goes to slot t * batch + b. First, in plain Python (the only
    # per-gate work), note each slot's qubit pair and sort the gates by kind. Slots past
    # a circuit's end keep the identity on pair (0, 1), whose id is 1.
    pair_ids = [1] * (steps * batch)
    # (fn or id(fixed matrix), embedding) -> (fn, first args, slots, args per slot)
    kinds: dict[tuple, tuple] = {}
    for b, gates in enumerate(circuits):
        slot = b
        for (fn, args), num_controls, qubits in gates:
            if len(qubits) == 1:
                q = qubits[0]
                pair_ids[slot] = q * n + (1 if q == 0 else 0)  # (q, any other qubit)
                embed = _EMBED_1Q
            else:  # (target, target) or (target, control)
                pair_ids[slot] = qubits[0] * n + qubits[1]
                embed = _EMBED_CONTROLLED if num_controls else _EMBED_2Q
            key = (fn if fn is not None else id(args[0]), embed)
            kind = kinds.get(key)
            if kind is None:
                kind = kinds[key] = (fn, args, [], [])
            kind[2].append(slot)
            kind[3].append(args)
            slot += batch

    # Each slot's matrix, stored transposed so that ``rows @ mats[slot]`` applies it to
    # rows of amplitudes; built with a few numpy calls per gate kind.
    mats = np.zeros((steps * batch, 4, 4), dtype=complex)
    mats[:, _DIAG4, _DIAG4] = 1.0
    for (_, embed), (fn, args, slots, rows) in kinds.items():
        if fn is None:
            matrix = args[0]  # a fixed matrix: broadcast
        elif fn in _BATCH_BUILDERS:
            matrix = _BATCH_BUILDERS[fn](np.array(rows, dtype=float))
        else:
            matrix = np.array([fn(*row) for row in rows])
        matrix_t = np.swapaxes(matrix, -1, -2)
        where = np.array(slots, dtype=np.intp)
        if embed == _EMBED_1Q:
            mats[where, :2, :2] = matrix_t
            mats[where, 2:, 2:] = matrix_t
        elif embed == _EMBED_CONTROLLED:
            mats[where, 2:, 2:] = matrix_t
        else:
            mats[where] = matrix_t
    mats = mats.reshape(steps, batch, 4, 4)
    pairs = np.array(pair_ids, dtype=np.intp).reshape(steps, batch)

    # Apply step t to all circuits: gather every state into pair-major order, multiply,
    # gather back. Indices address the flat (batch * dim) array, hence the row offsets.
    # All buffers are preallocated (fresh arrays of this size cost page faults each step),
    # and ``take`` runs with mode="clip" because its default mode buffers ``out`` (the
    # indices are in range by construction).
    perm, inv = _pair_tables(n)
    state = np.zeros(batch * dim, dtype=complex)
    state[::dim] = 1.0
    grouped = np.empty((batch, dim >> 2, 4), dtype=complex)
    product = np.empty_like(grouped)
    index = np.empty((batch, dim), dtype=np.intp)
    offsets = np.arange(0, batch * dim, dim, dtype=np.intp)[:, None]
    flat_index, grouped_flat = index.reshape(-1), grouped.reshape(-1)
    product_flat = product.reshape(-1)
    for t in range(steps):
        perm.take(pairs[t], axis=0, out=index, mode="clip")
        index += offsets
        state.take(flat_index, out=grouped_flat, mode="clip")
        np.matmul(grouped, mats[t], out=product)
        inv.take(pairs[t], axis=0, out=index, mode="clip")
        index += offsets
        product_flat.take(flat_index, out=state, mode="clip")
    state = state.reshape(batch, dim)
    probs = state.real**2 + state.imag**2
    total = probs.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0  # as :func:`probabilities`: an all-zero row stays as is
    return probs / total
