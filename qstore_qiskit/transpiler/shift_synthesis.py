"""Synthesis of unitaries that commute with a cyclic shift of a register.

Let ``R`` be ``m`` of a circuit's qubits read as an integer (in some bit order) and ``T``
the cyclic shift ``|x> -> |x + 1 mod 2^m>`` on ``R``. ``T`` is diagonal in the Fourier
basis of ``R`` with ``2^m`` distinct eigenvalues, so a unitary ``W`` commutes with ``T``
exactly when ``A W A^dagger`` is block diagonal over the Fourier values ``k`` of ``R``
(``A`` the QFT on ``R``): a *multiplexor* ``sum_k |k><k| (x) V_k`` of gates ``V_k`` on
the other qubits. Then

.. math:: W = A^\\dagger \\Big(\\sum_k |k\\rangle\\langle k| \\otimes V_k\\Big) A,

and with one other qubit (``V_k`` one-qubit gates) the multiplexor is Qiskit's
:class:`~qiskit.circuit.library.UCGate` (``2^m - 1`` CNOTs and a diagonal); with none it is
a diagonal. The QFT costs ``m(m-1)/2`` controlled phases, each one partial-angle MS.

Such unitaries are what controlled modular additions compose into: the coin-controlled
increment and decrement of a quantum walk (several steps, with coin flips in between),
controlled constant adders, counters. Built from multi-controlled-X cascades they cost
far more: a 6-qubit quantum walk of 3 steps (MQT Bench ``qwalk``) lowers to 468 MS gate
by gate and to 74 MS through this synthesis.

:func:`find_shift_symmetry` finds ``R`` and its bit order from ``W`` alone (every choice of ``R``
leaving at most one qubit out, the bit order searched from the most significant bit down
with pruning); :func:`shift_invariant_circuit` builds the
circuit. Both are exact: the caller verifies the result against ``W``.
"""

from __future__ import annotations

import itertools

import numpy as np

#: Largest entry-wise deviation accepted by the commutation and block-diagonal checks.
_TOL = 1e-8


def qft_no_swaps(num_qubits: int):
    """``A``: the QFT without its final swaps on ``num_qubits`` qubits (qubit ``j`` is
    bit ``j`` of the input value). Built with Qiskit's ``synth_qft_full``."""
    from qiskit.synthesis import synth_qft_full  # pylint: disable=import-outside-toplevel

    return synth_qft_full(num_qubits, do_swaps=False)


def shift_permutation(order: tuple[int, ...], num_qubits: int) -> np.ndarray:
    """``t`` with ``T|x> = |t[x]>`` for the ``+1`` shift of the register ``order``
    (qubit indices, least significant bit first) on ``num_qubits`` qubits."""
    idx = np.arange(1 << num_qubits, dtype=np.int64)
    value = np.zeros_like(idx)
    for j, q in enumerate(order):
        value |= ((idx >> q) & 1) << j
    value = (value + 1) % (1 << len(order))
    out = idx.copy()
    for j, q in enumerate(order):
        out &= ~(1 << q)
        out |= ((value >> j) & 1) << q
    return out


def commutes_with(unitary: np.ndarray, perm: np.ndarray) -> bool:
    """Whether ``unitary`` commutes with the permutation matrix ``|x> -> |perm[x]>``."""
    # P W P^-1 = W  <=>  W[perm[i], perm[j]] = W[i, j]; probe a few rows first.
    probe = unitary[:4]
    if not np.allclose(unitary[perm[:4]][:, perm], probe, atol=_TOL):
        return False
    return np.allclose(unitary[np.ix_(perm, perm)], unitary, atol=_TOL)


def find_shift_symmetry(
    unitary: np.ndarray, num_qubits: int, max_outside: int = 1
) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """``(register, others)`` such that ``unitary`` commutes with the ``+1`` shift of
    ``register`` (LSB first), the largest register first, or ``None``.

    Registers of ``num_qubits - max_outside`` to ``num_qubits`` qubits (at least two)
    are tried. The bit order is found from the most significant bit down: if ``W``
    commutes with ``T`` it commutes with ``T^(2^j)``, which adds one to the bits
    ``j..m-1`` alone, so a partial order of the top bits that fails prunes every
    completion of it.
    """
    qubits = range(num_qubits)
    for outside in range(0, max_outside + 1):
        m = num_qubits - outside
        if m < 2:
            break
        for others in itertools.combinations(qubits, outside):
            rest = [q for q in qubits if q not in others]
            found = _top_down(unitary, num_qubits, rest, ())
            if found is not None:
                return found, others
    return None


def _top_down(unitary, num_qubits, rest, top):
    """Complete ``top`` (the register's highest bits, LSB first) with ``rest`` below it."""
    if not rest:
        return top
    for q in rest:
        order = (q, *top)
        if commutes_with(unitary, shift_permutation(order, num_qubits)):
            found = _top_down(unitary, num_qubits, [r for r in rest if r != q], order)
            if found is not None:
                return found
    return None


def shift_invariant_circuit(unitary: np.ndarray, num_qubits: int, register, others):
    """The circuit ``A^dagger M A`` of ``unitary`` (see the module docstring), or
    ``None`` when the conjugated unitary is not a multiplexor over ``register``'s
    Fourier values with at most one target qubit."""
    # pylint: disable=import-outside-toplevel
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import DiagonalGate, UCGate
    from qiskit.quantum_info import Operator

    if len(others) > 1:
        return None
    qft = QuantumCircuit(num_qubits)
    qft.compose(qft_no_swaps(len(register)), list(register), inplace=True)
    a = Operator(qft).data
    conj = a @ unitary @ a.conj().T
    idx = np.arange(1 << num_qubits)
    reg_mask = sum(1 << q for q in register)
    off_block = (idx[:, None] & reg_mask) != (idx[None, :] & reg_mask)
    if np.abs(conj[off_block]).max(initial=0.0) > _TOL:
        return None
    middle = QuantumCircuit(num_qubits)
    if not others:
        middle.append(DiagonalGate(list(np.diag(conj))), list(range(num_qubits)))
    else:
        target = others[0]
        controls = [q for q in range(num_qubits) if q != target]
        blocks = []
        for k in range(1 << len(controls)):
            base = 0
            for j, q in enumerate(controls):
                base |= ((k >> j) & 1) << q
            sel = [base, base | (1 << target)]
            blocks.append(conj[np.ix_(sel, sel)])
        middle.append(UCGate(blocks, up_to_diagonal=False), [target, *controls])
    out = QuantumCircuit(num_qubits)
    out.compose(qft, inplace=True)
    out.compose(middle, inplace=True)
    out.compose(qft.inverse(), inplace=True)
    return out
