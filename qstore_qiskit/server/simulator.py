"""A vectorized numpy state-vector simulator for IonQ's qis and native gatesets.

Hand-written rather than delegating to ``qiskit.quantum_info`` or Aer: the server
needs (a) exactly qiskit-ionq's native gate matrices in *turns*, (b) gates applied
by ``tensordot`` on a ``(2,)*n`` tensor without building full ``2**n`` operators,
(c) a branching sampler for mid-circuit measurement that splits shot counts
binomially instead of simulating every shot on its own, and (d) a batched kernel
(:func:`simulate_small_batch`) that runs all the small circuits of a job together, since
on a few qubits numpy's per-call overhead, not arithmetic, is the cost.

Conventions (the same as Qiskit's): a basis index is ``sum(b_q << q)``, so qubit 0
is the least significant bit, and a k-qubit gate matrix acting on ``qubits
[q_0, ..., q_{k-1}]`` treats ``q_0`` as its least significant bit.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence, Union

import numpy as np

# The noise models live in :mod:`.noise_models` (IonQ's documented table); re-exported here.
from .noise_models import NOISE_MODELS, NoiseModel

# -- gate matrices --------------------------------------------------------------------

_SQ2 = 1.0 / math.sqrt(2.0)

I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
Z = np.array([[1, 0], [0, -1]], dtype=complex)
H = np.array([[1, 1], [1, -1]], dtype=complex) * _SQ2
S = np.diag([1, 1j]).astype(complex)
SDG = np.diag([1, -1j]).astype(complex)
T = np.diag([1, cmath.exp(1j * math.pi / 4)])
TDG = np.diag([1, cmath.exp(-1j * math.pi / 4)])
SX = np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]], dtype=complex) / 2
SXDG = np.array([[1 - 1j, 1 + 1j], [1 + 1j, 1 - 1j]], dtype=complex) / 2
SWAP = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=complex)
PAULIS = {"I": I2, "X": X, "Y": Y, "Z": Z}


def rx(theta: float) -> np.ndarray:
    """RX(θ) = exp(-iθX/2)."""
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -1j * s], [-1j * s, c]], dtype=complex)


def ry(theta: float) -> np.ndarray:
    """RY(θ) = exp(-iθY/2)."""
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -s], [s, c]], dtype=complex)


def rz(theta: float) -> np.ndarray:
    """RZ(θ) = exp(-iθZ/2)."""
    return np.diag([cmath.exp(-0.5j * theta), cmath.exp(0.5j * theta)])


def phase(theta: float) -> np.ndarray:
    """P(θ) = diag(1, e^{iθ}); what qiskit-ionq sends as ``z`` with a rotation."""
    return np.diag([1.0, cmath.exp(1j * theta)])


def rxx(theta: float) -> np.ndarray:
    """RXX(θ) = exp(-iθ X⊗X / 2)."""
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return c * np.eye(4, dtype=complex) - 1j * s * np.kron(X, X)


def ryy(theta: float) -> np.ndarray:
    """RYY(θ) = exp(-iθ Y⊗Y / 2)."""
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return c * np.eye(4, dtype=complex) - 1j * s * np.kron(Y, Y)


def rzz(theta: float) -> np.ndarray:
    """RZZ(θ) = exp(-iθ Z⊗Z / 2)."""
    a, b = cmath.exp(-0.5j * theta), cmath.exp(0.5j * theta)
    return np.diag([a, b, b, a])


def gpi(phi: float) -> np.ndarray:
    """IonQ GPI(φ), φ in turns (as :class:`qiskit_ionq.GPIGate`)."""
    return np.array(
        [[0, cmath.exp(-2j * math.pi * phi)], [cmath.exp(2j * math.pi * phi), 0]],
        dtype=complex,
    )


def gpi2(phi: float) -> np.ndarray:
    """IonQ GPI2(φ), φ in turns (as :class:`qiskit_ionq.GPI2Gate`)."""
    return _SQ2 * np.array(
        [[1, -1j * cmath.exp(-2j * math.pi * phi)], [-1j * cmath.exp(2j * math.pi * phi), 1]],
        dtype=complex,
    )


def ms(phi0: float, phi1: float, theta: float = 0.25) -> np.ndarray:
    """IonQ MS(φ0, φ1, θ), all in turns (as :class:`qiskit_ionq.MSGate`).

    ``phi0`` belongs to the gate's first target (its least significant bit).
    """
    c = math.cos(math.pi * theta)
    s = math.sin(math.pi * theta)
    return np.array(
        [
            [c, 0, 0, -1j * s * cmath.exp(-2j * math.pi * (phi0 + phi1))],
            [0, c, -1j * s * cmath.exp(2j * math.pi * (phi0 - phi1)), 0],
            [0, -1j * s * cmath.exp(-2j * math.pi * (phi0 - phi1)), c, 0],
            [-1j * s * cmath.exp(2j * math.pi * (phi0 + phi1)), 0, 0, c],
        ],
        dtype=complex,
    )


def zz(theta: float) -> np.ndarray:
    """IonQ native ZZ(θ) = RZZ(2πθ), θ in turns (as :class:`qiskit_ionq.ZZGate`)."""
    return rzz(2 * math.pi * theta)


def pauli_string_matrix(label: str) -> np.ndarray:
    """Matrix of a Pauli label in Qiskit order (the rightmost letter is qubit 0)."""
    out = np.ones((1, 1), dtype=complex)
    for char in label:
        out = np.kron(out, PAULIS[char])
    return out


def pauli_exponential(terms: Sequence[str], coefficients: Sequence[float], time: float
                      ) -> np.ndarray:
    """exp(-i t Σ_j c_j P_j) as qiskit's ``PauliEvolutionGate`` defines it.

    Computed exactly through the eigendecomposition of the (Hermitian) sum, so it
    is also right for non-commuting terms.
    """
    ham = sum(float(c) * pauli_string_matrix(t) for t, c in zip(terms, coefficients))
    evals, evecs = np.linalg.eigh(ham)
    return (evecs * np.exp(-1j * time * evals)) @ evecs.conj().T


def controlled(matrix: np.ndarray, num_controls: int) -> np.ndarray:
    """Controlled version of ``matrix``, controls as the most significant bits.

    The operation's qubit order is then ``targets + controls``.
    """
    if num_controls == 0:
        return matrix
    dim_t = matrix.shape[0]
    full = np.eye(dim_t << num_controls, dtype=complex)
    full[-dim_t:, -dim_t:] = matrix
    return full


# -- operations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Unitary:
    """Apply ``matrix`` to ``qubits`` (``qubits[0]`` is the matrix's least significant bit)."""

    matrix: np.ndarray
    qubits: tuple[int, ...]


@dataclass(frozen=True)
class Measure:
    """Measure ``qubit`` in the Z basis into classical bit ``clbit``."""

    qubit: int
    clbit: int


@dataclass(frozen=True)
class Reset:
    """Reset ``qubit`` to ``|0>``."""

    qubit: int


@dataclass(frozen=True)
class Conditional:
    """Run ``true_body`` if ``clbits`` read ``value`` (clbits[0] least significant), else
    ``false_body``."""

    clbits: tuple[int, ...]
    value: int
    true_body: tuple["Operation", ...]
    false_body: tuple["Operation", ...] = ()


Operation = Union[Unitary, Measure, Reset, Conditional]


# -- state-vector kernels ------------------------------------------------------------------


def zero_state(num_qubits: int) -> np.ndarray:
    """``|0...0>`` as a flat complex vector."""
    state = np.zeros(1 << num_qubits, dtype=complex)
    state[0] = 1.0
    return state


def apply_unitary(state: np.ndarray, matrix: np.ndarray, qubits: Sequence[int],
                  num_qubits: int) -> np.ndarray:
    """Apply a k-qubit ``matrix`` on ``qubits`` of a flat ``num_qubits`` state.

    One-qubit gates (and two-qubit gates on up to 16 qubits) use a reshape that
    isolates the touched axes (``(a, 2, c)`` / ``(a, 2, b, 2, c)``) and one
    ``matmul``/``einsum`` call, with no transposed copy; otherwise the state is viewed
    as a ``(2,)*n`` tensor (axis ``a`` is qubit ``n-1-a``), contracted with
    ``tensordot`` and the axes moved back. The kernel choice was measured: each wins
    in its range. No ``2**n x 2**n`` operator is ever built.
    """
    k = len(qubits)
    if k == 1:
        q = qubits[0]
        view = state.reshape(1 << (num_qubits - 1 - q), 2, 1 << q)
        if q >= 2 or num_qubits < 8:
            return np.matmul(matrix, view).reshape(-1)
        # matmul over a tiny trailing axis is slow; combine the two halves instead.
        out = np.empty_like(view)
        lo_half, hi_half = view[:, 0, :], view[:, 1, :]
        np.multiply(lo_half, matrix[0, 0], out=out[:, 0, :])
        out[:, 0, :] += matrix[0, 1] * hi_half
        np.multiply(lo_half, matrix[1, 0], out=out[:, 1, :])
        out[:, 1, :] += matrix[1, 1] * hi_half
        return out.reshape(-1)
    if k == 2 and num_qubits <= 16:  # einsum wins below ~16 qubits, tensordot above
        q0, q1 = qubits
        lo, hi = (q0, q1) if q0 < q1 else (q1, q0)
        view = state.reshape(1 << (num_qubits - 1 - hi), 2, 1 << (hi - lo - 1), 2, 1 << lo)
        gate = matrix.reshape(2, 2, 2, 2)  # [out_q1, out_q0, in_q1, in_q0]
        if q0 > q1:  # make it [out_hi, out_lo, in_hi, in_lo]
            gate = gate.transpose(1, 0, 3, 2)
        return np.einsum("xyXY,aXbYc->axbyc", gate, view).reshape(-1)
    tensor = state.reshape((2,) * num_qubits)
    gate = matrix.reshape((2,) * (2 * k))  # axes: out_{k-1}..out_0, in_{k-1}..in_0
    axes = [num_qubits - 1 - q for q in reversed(qubits)]  # matches in_{k-1}..in_0
    out = np.tensordot(gate, tensor, axes=(list(range(k, 2 * k)), axes))
    out = np.moveaxis(out, list(range(k)), axes)
    return np.ascontiguousarray(out).reshape(-1)


def _kron_for(qubits: Sequence[int], singles: dict[int, np.ndarray]) -> np.ndarray:
    """``⊗ singles[q]`` in matrix order (``qubits[0]`` least significant)."""
    if len(qubits) == 2:
        # np.kron costs ~10 numpy calls; for two 2x2 factors one broadcast product does
        # it: (hi ⊗ lo)[2i + k, 2j + l] = hi[i, j] * lo[k, l], the same products.
        lo, hi = singles.get(qubits[0], I2), singles.get(qubits[1], I2)
        return (hi[:, None, :, None] * lo[None, :, None, :]).reshape(4, 4)
    out = np.ones((1, 1), dtype=complex)
    for q in reversed(qubits):
        out = np.kron(out, singles.get(q, I2))
    return out


def _reorder(matrix: np.ndarray, src: Sequence[int], dst: Sequence[int]) -> np.ndarray:
    """Re-express a matrix on qubits ``src`` as one on the same qubits ordered ``dst``."""
    if list(src) == list(dst):
        return matrix
    k = len(src)
    # tensor axes are [out_{k-1}..out_0, in_{k-1}..in_0] in ``src`` order
    perm_src = [k - 1 - src.index(q) for q in reversed(dst)]
    tensor = matrix.reshape((2,) * (2 * k))
    tensor = tensor.transpose(perm_src + [k + p for p in perm_src])
    return tensor.reshape(1 << k, 1 << k)


def fuse_unitaries(ops: Iterable[Unitary], max_fused_qubits: int = 2) -> list[Unitary]:
    """Fuse a unitary circuit into fewer, equivalent operations.

    Hand-written peephole fusion (exact, order-preserving): single-qubit gates are
    accumulated per qubit and folded into the next multi-qubit gate on that qubit
    (or emitted at the end), and a multi-qubit gate is merged into the last emitted
    gate acting on the same qubits when nothing emitted since touched them. On
    native (GPI/GPI2/MS) circuits this removes most of the per-gate overhead.
    """
    pending: dict[int, np.ndarray] = {}
    emitted: list[list] = []  # [matrix, qubits]
    last: dict[int, int] = {}  # qubit -> index in ``emitted`` of its last op
    for op in ops:
        if len(op.qubits) == 1:
            q = op.qubits[0]
            pending[q] = op.matrix @ pending[q] if q in pending else op.matrix
            continue
        qubits = op.qubits
        matrix = op.matrix
        if any(q in pending for q in qubits) and len(qubits) <= max_fused_qubits:
            matrix = matrix @ _kron_for(qubits, pending)
            for q in qubits:
                pending.pop(q, None)
        elif any(q in pending for q in qubits):
            for q in qubits:  # too wide to fold: flush the singles first
                if q in pending:
                    last[q] = len(emitted)
                    emitted.append([pending.pop(q), (q,)])
        targets = {last.get(q) for q in qubits}
        if len(targets) == 1 and None not in targets:
            index = targets.pop()
            prev_matrix, prev_qubits = emitted[index]
            if set(prev_qubits) == set(qubits):
                emitted[index][0] = matrix @ _reorder(prev_matrix, prev_qubits, qubits)
                emitted[index][1] = tuple(qubits)
                continue
        for q in qubits:
            last[q] = len(emitted)
        emitted.append([matrix, tuple(qubits)])
    for q, matrix in pending.items():
        emitted.append([matrix, (q,)])
    return [Unitary(m, q) for m, q in emitted]


def probabilities(state: np.ndarray) -> np.ndarray:
    """Born probabilities of a flat state."""
    probs = state.real**2 + state.imag**2
    total = probs.sum()
    return probs / total if total > 0 else probs


def simulate_unitary_circuit(num_qubits: int, ops: Iterable[Unitary]) -> np.ndarray:
    """Final state of a circuit made only of unitaries, from ``|0...0>``."""
    state = zero_state(num_qubits)
    for op in fuse_unitaries(ops):
        state = apply_unitary(state, op.matrix, op.qubits, num_qubits)
    return state


# -- batched kernel for small circuits ----------------------------------------------------
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


def _qubit_one_mask(num_qubits: int, qubit: int) -> np.ndarray:
    """Boolean mask of basis states with ``qubit`` = 1."""
    return ((np.arange(1 << num_qubits) >> qubit) & 1).astype(bool)


# -- sampling ------------------------------------------------------------------------------


# Up to this many bins, results are read out with a Python scan over ``tolist()``
# (~0.1 µs a bin) instead of ``flatnonzero`` + fancy indexing (several µs of call
# overhead); above it, sparse distributions of wide circuits favour numpy.
_SMALL_OUTPUT = 4096


def sample_histogram(probs: np.ndarray, shots: int, rng: np.random.Generator) -> dict[int, int]:
    """Draw ``shots`` outcomes; return ``{basis index: count}`` of the non-zero bins."""
    counts = rng.multinomial(shots, probs / probs.sum())
    if counts.size <= _SMALL_OUTPUT:  # a Python scan is cheaper than numpy calls here
        return {i: c for i, c in enumerate(counts.tolist()) if c}
    nonzero = np.flatnonzero(counts)
    return dict(zip(nonzero.tolist(), counts[nonzero].tolist()))


def sample_shots(probs: np.ndarray, shots: int, rng: np.random.Generator) -> list[int]:
    """Draw ``shots`` outcomes in order."""
    return [int(i) for i in rng.choice(probs.size, size=shots, p=probs / probs.sum())]


def probability_json(probs: np.ndarray, cutoff: float = 1e-14) -> str:
    """:func:`probability_dict` serialized straight to JSON text.

    Written by hand (no intermediate dict, floats via ``repr``, which is valid JSON for
    finite values) because a 20-qubit distribution has a million entries and this runs
    once per circuit in the simulation thread, never on the server's event loop.
    """
    if probs.size <= _SMALL_OUTPUT:  # same text; one Python scan beats numpy calls here
        pairs = enumerate(probs.tolist())
        return "{" + ",".join([f'"{k}":{v!r}' for k, v in pairs if v > cutoff]) + "}"
    nonzero = np.flatnonzero(probs > cutoff)
    keys = nonzero.tolist()
    values = probs[nonzero].tolist()
    return "{" + ",".join([f'"{k}":{v!r}' for k, v in zip(keys, values)]) + "}"


def probability_dict(probs: np.ndarray, cutoff: float = 1e-14) -> dict[str, float]:
    """IonQ's result shape: decimal basis index (qubit 0 = LSB) -> probability."""
    nonzero = np.flatnonzero(probs > cutoff)
    return dict(zip(map(str, nonzero.tolist()), probs[nonzero].tolist()))


@dataclass
class Branch:
    """One measurement history: a (collapsed) state, its classical bits and its shots."""

    state: np.ndarray
    clbits: int
    shots: int


@dataclass
class BranchingResult:
    """Per-shot outcomes of a circuit with mid-circuit measurements.

    Attributes:
        outcomes: Classical register value of every shot (clbit 0 = LSB), in a random
            order.
        num_clbits: Number of classical bits.
    """

    outcomes: list[int] = field(default_factory=list)
    num_clbits: int = 0


def run_branches(ops: Sequence[Operation], branches: list[Branch], num_qubits: int,
                 rng: np.random.Generator) -> list[Branch]:
    """Advance ``branches`` through ``ops``; measurements and resets split branches.

    Args:
        ops: Operations to apply.
        branches: Current branches (consumed).
        num_qubits: Register width.
        rng: Randomness for the binomial shot splits.

    Returns:
        The branches after ``ops`` (every one with at least one shot).
    """
    for op in ops:
        if isinstance(op, Unitary):
            for br in branches:
                br.state = apply_unitary(br.state, op.matrix, op.qubits, num_qubits)
        elif isinstance(op, (Measure, Reset)):
            mask = _qubit_one_mask(num_qubits, op.qubit)
            new: list[Branch] = []
            for br in branches:
                p1 = float(np.sum(np.abs(br.state[mask]) ** 2))
                p1 = min(max(p1, 0.0), 1.0)
                n1 = int(rng.binomial(br.shots, p1))
                for bit, count, prob in ((0, br.shots - n1, 1.0 - p1), (1, n1, p1)):
                    if count == 0:
                        continue
                    state = br.state.copy()
                    state[mask if bit == 0 else ~mask] = 0.0
                    state /= math.sqrt(prob) if prob > 0 else 1.0
                    clbits = br.clbits
                    if isinstance(op, Measure):
                        clbits = (clbits & ~(1 << op.clbit)) | (bit << op.clbit)
                    elif bit == 1:  # reset: flip |1> back to |0>
                        state = apply_unitary(state, X, (op.qubit,), num_qubits)
                    new.append(Branch(state, clbits, count))
            branches = new
        elif isinstance(op, Conditional):
            new = []
            for br in branches:
                value = 0
                for i, c in enumerate(op.clbits):
                    value |= ((br.clbits >> c) & 1) << i
                body = op.true_body if value == op.value else op.false_body
                new.extend(run_branches(body, [br], num_qubits, rng) if body else [br])
            branches = new
        else:  # pragma: no cover - guarded by the parsers
            raise TypeError(f"unknown operation {op!r}")
    return branches


def run_branching(num_qubits: int, num_clbits: int, ops: Sequence[Operation], shots: int,
                  rng: np.random.Generator) -> BranchingResult:
    """Sample a circuit with measurements, resets and conditionals.

    Shots are not simulated one by one: every measurement splits each branch's shot
    count binomially, so the work is bounded by the number of distinct measurement
    histories (at most ``shots``), which makes this an exact sampler that is usually
    far cheaper than per-shot simulation.
    """
    branches = run_branches(ops, [Branch(zero_state(num_qubits), 0, shots)], num_qubits,
                              rng)
    outcomes: list[int] = []
    for br in branches:
        outcomes.extend([br.clbits] * br.shots)
    order = rng.permutation(len(outcomes))
    return BranchingResult([outcomes[i] for i in order], num_clbits)


__all__ = [
    "Unitary",
    "Measure",
    "Reset",
    "Conditional",
    "Operation",
    "NoiseModel",
    "NOISE_MODELS",
    "apply_unitary",
    "zero_state",
    "probabilities",
    "simulate_unitary_circuit",
    "simulate_small_batch",
    "batchable",
    "fuse_unitaries",
    "sample_histogram",
    "sample_shots",
    "probability_dict",
    "probability_json",
    "run_branching",
    "run_branches",
    "Branch",
    "BranchingResult",
    "controlled",
    "pauli_exponential",
    "gpi",
    "gpi2",
    "ms",
    "zz",
]
