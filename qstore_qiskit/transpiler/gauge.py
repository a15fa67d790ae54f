"""Single-qubit gauge rotations for two-qubit synthesis.

An interaction ``exp(i k P P)`` (P = X or Y) commutes with ``R_P(alpha)`` on either
qubit, so a rotation about ``P`` can move from the local before the interaction to the
one after it. :class:`~qstore_qiskit.transpiler.passes.LowerToIonQNative` uses that to
make locals diagonal (virtual, free ``rz``) where it can. Every helper here is exact:
the rotations are built entry by entry, bit for bit the NumPy expressions they replace.

Products of 2x2 matrices are written ``a.dot(b)``: the same BLAS call as ``a @ b`` (bit
for bit the same result, checked in the tests) with about half of its overhead, which
is most of the cost of a 2x2 product.
"""

from __future__ import annotations

import math

import numpy as np

from .synthesis import is_diagonal

X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
I2 = np.eye(2, dtype=complex)


def rotation(pauli: np.ndarray, angle: float) -> np.ndarray:
    """``exp(-i angle/2 P) = cos(angle/2) I - i sin(angle/2) P`` for ``P`` = X or Y.

    Built entry by entry: every entry of the NumPy expression above is ``cos``, ``sin``
    or a signed zero (products with 0 and 1 are exact), and so is each entry here, bit
    for bit including the signs of zeros (checked on a million angles in the tests), at
    a third of the cost of three array operations (this runs several times per block).
    """
    half = angle / 2
    c, s = math.cos(half), math.sin(half)
    diag = complex(c, 0.0)
    if pauli is X:
        upper = lower = complex(math.copysign(0.0, c), 0.0 - s)
    elif pauli is Y:
        upper, lower = complex(0.0 - s, 0.0), complex(s + 0.0, 0.0)
    else:
        return c * I2 - 1j * s * pauli
    # Filled entry by entry: the same C-contiguous array as ``np.array`` of the nested
    # list, at half its cost.
    out = np.empty((2, 2), dtype=complex)
    out[0, 0] = out[1, 1] = diag
    out[0, 1] = upper
    out[1, 0] = lower
    return out


def diagonalizing_rotation(k: np.ndarray, pauli: np.ndarray) -> tuple | None:
    """``(alpha, R_P(-alpha) k)`` with the product diagonal, if such an ``alpha`` exists.

    The product is returned (``None`` when ``alpha`` is exactly zero) so that the caller
    reuses it instead of computing the same rotation and product again.
    """
    # Only the entry (0, 1) of ``pauli @ k`` is needed: for X and Y it is an entry of
    # ``k`` (times -i), exactly the value the 2x2 product gives (the other term is a
    # product with zero), without the product's cost (a few us on this hot path).
    if pauli is X:
        pk01 = k[1, 1]
    elif pauli is Y:
        pk01 = -1j * k[1, 1]
    else:
        pk01 = pauli.dot(k)[0, 1]
    if abs(pk01) < 1e-12:
        return (0.0, None) if abs(k[0, 1]) < 1e-9 else None
    t = 1j * k[0, 1] / pk01
    if abs(t.imag) > 1e-9:
        return None
    alpha = 2.0 * math.atan(t.real)
    rotated = rotation(pauli, -alpha).dot(k)
    return (alpha, rotated) if is_diagonal(rotated, 1e-9) else None


def gauge(pauli: np.ndarray, before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move a rotation about ``pauli`` from one local to the other (the interaction
    ``exp(i k P P)`` commutes with it) to make ``before``, else ``after``, diagonal."""
    found = diagonalizing_rotation(before, pauli)
    from_before = found is not None
    if found is None:
        found = diagonalizing_rotation(after.conj().T, pauli)
    if found is None or abs(found[0]) < 1e-15:
        return before, after
    alpha = found[0]
    # Same arithmetic as ``rotation(pauli, -alpha) @ before``, computed once.
    new_before = found[1] if from_before else rotation(pauli, -alpha).dot(before)
    return new_before, after.dot(rotation(pauli, alpha))


def non_diagonal(mats) -> int:
    return sum(0 if is_diagonal(m, 1e-9) or anti_diagonal(m) else 1 for m in mats)


def anti_diagonal(m: np.ndarray) -> bool:
    return abs(m.item(0, 0)) < 1e-9 and abs(m.item(1, 1)) < 1e-9


__all__ = ["X", "Y", "I2", "rotation", "diagonalizing_rotation", "gauge", "non_diagonal", "anti_diagonal"]
