"""A vectorized numpy state-vector simulator for IonQ's qis and native gatesets.

Hand-written rather than delegating to ``qiskit.quantum_info`` or Aer: the server
needs (a) exactly qiskit-ionq's native gate matrices in *turns*, (b) gates applied
by ``tensordot`` on a ``(2,)*n`` tensor without building full ``2**n`` operators,
(c) a branching sampler for mid-circuit measurement that splits shot counts
binomially instead of simulating every shot on its own, and (d) a batched kernel
(:func:`simulate_small_batch`, in :mod:`.batch_kernel`; gate matrices in :mod:`.gates`) that runs all the small circuits of a job together, since
on a few qubits numpy's per-call overhead, not arithmetic, is the cost.

Conventions (the same as Qiskit's): a basis index is ``sum(b_q << q)``, so qubit 0
is the least significant bit, and a k-qubit gate matrix acting on ``qubits
[q_0, ..., q_{k-1}]`` treats ``q_0`` as its least significant bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence, Union

import numpy as np

# The noise models live in :mod:`.noise_models` (IonQ's documented table); re-exported here.
from .noise_models import NOISE_MODELS, NoiseModel

# Gate matrices and the batched small-circuit kernel live in their own modules;
# re-exported here, where the rest of the server looks them up.
from .batch_kernel import SMALL_CIRCUIT_MAX_QUBITS, GateRecipe, batchable, simulate_small_batch  # noqa: F401
from .gates import (  # noqa: F401
    PAULIS, SDG, SWAP, SX, SXDG, TDG, H, I2, S, T, X, Y, Z, controlled, gpi, gpi2, ms,
    pauli_exponential, pauli_string_matrix, phase, rx, rxx, ry, ryy, rz, rzz, zz,
)

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
