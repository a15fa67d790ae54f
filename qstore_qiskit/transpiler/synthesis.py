"""Numerical building blocks of the native-gate lowering.

Small, allocation-light helpers shared by the lowering pass: ZYZ angles of a 2x2
unitary, Weyl (KAK) coordinates of a 4x4 unitary, and the fixed matrices used to move
interactions between the X, Y and Z axes. Kept free of any DAG handling so they can be
tested on their own.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
from qiskit._accelerate import two_qubit_decompose as _two_qubit_decompose
from qiskit.circuit import ParameterExpression

#: Tolerance below which an angle (radians) or Weyl coordinate is treated as zero.
ANGLE_TOL = 1e-9

SQ2 = 1.0 / math.sqrt(2.0)
#: Hadamard: conjugating by it swaps the X and Z axes.
H = np.array([[SQ2, SQ2], [SQ2, -SQ2]], dtype=complex)
#: sqrt(X) = GPI2(0) = RX(pi/2).
SX = np.array([[SQ2, -1j * SQ2], [-1j * SQ2, SQ2]], dtype=complex)
#: W with W Z W^dagger = Y (W = S H) and its inverse.
W_ZY = np.array([[1, 0], [0, 1j]], dtype=complex) @ H
W_ZY_DG = W_ZY.conj().T

TWO_PI = 2.0 * math.pi

#: Constant matrices of the lowering's state preparation (read-only: shared by every run).
I2 = np.eye(2, dtype=complex)
I4 = np.eye(4, dtype=complex)
DIAG_1_I = np.diag([1.0, 1j])
for _constant in (I2, I4, DIAG_1_I):
    _constant.setflags(write=False)

_COMPLEX = np.dtype(complex)
try:  # NumPy's private gufunc module (numpy/linalg/_linalg.py imports it the same way)
    from numpy.linalg import _umath_linalg

    _SVD_F = _umath_linalg.svd_f
except (ImportError, AttributeError):  # pragma: no cover - another NumPy layout
    _SVD_F = None


def is_symbolic(value) -> bool:
    """Whether ``value`` is a :class:`ParameterExpression` with free parameters."""
    return isinstance(value, ParameterExpression) and bool(value.parameters)


def rz_matrix(angle: float) -> np.ndarray:
    """``RZ(angle)`` as a 2x2 matrix."""
    half = 0.5 * angle
    return np.array([[cmath.exp(-1j * half), 0.0], [0.0, cmath.exp(1j * half)]], dtype=complex)


def gpi_matrix(phase_turns: float) -> np.ndarray:
    """IonQ ``GPI(phase)`` (phase in turns) as a 2x2 matrix."""
    e = cmath.exp(1j * TWO_PI * phase_turns)
    return np.array([[0.0, e.conjugate()], [e, 0.0]], dtype=complex)


def zyz_angles(u: np.ndarray) -> tuple[float, float, float]:
    """Angles ``(theta, phi, lam)`` with ``u = e^{i g} RZ(phi) RY(theta) RZ(lam)``.

    ``theta`` is in ``[0, pi]``. Same convention as Qiskit's ``OneQubitEulerDecomposer``
    with basis ``"ZYZ"``, computed directly: the decomposer builds a circuit per call,
    which costs ~100x more than the arithmetic on this hot path.
    """
    det = u[0, 0] * u[1, 1] - u[0, 1] * u[1, 0]
    su = u / cmath.sqrt(det)
    theta = 2.0 * math.atan2(abs(su[1, 0]), abs(su[0, 0]))
    phi_plus_lam = 2.0 * cmath.phase(su[1, 1])
    phi_minus_lam = 2.0 * cmath.phase(su[1, 0])
    return theta, 0.5 * (phi_plus_lam + phi_minus_lam), 0.5 * (phi_plus_lam - phi_minus_lam)


def is_diagonal(u: np.ndarray, tol: float = 1e-12) -> bool:
    """Whether a 2x2 matrix is diagonal (a pure Z rotation up to phase)."""
    # ``item`` gives Python complex numbers: their ``abs`` is the same ``hypot`` as
    # NumPy's, without building NumPy scalars (this runs for every local gate).
    return abs(u.item(0, 1)) < tol and abs(u.item(1, 0)) < tol


def diagonal_angle(u: np.ndarray) -> float:
    """The ``RZ`` angle of a diagonal 2x2 unitary (up to global phase)."""
    return cmath.phase(u[1, 1]) - cmath.phase(u[0, 0])


def svd2(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.linalg.svd(matrix)`` of a complex 2x2 matrix: the same LAPACK routine through
    NumPy's ``svd_f`` gufunc, as ``np.linalg.svd`` calls it for a complex input with
    ``full_matrices=True``, without its argument handling (three quarters of its cost at
    this size). Whatever that gufunc cannot decide (no convergence, a NaN) goes through
    ``np.linalg.svd`` itself, which raises as usual."""
    if matrix.dtype == _COMPLEX and _SVD_F is not None:
        with np.errstate(all="ignore"):
            u, s, vh = _SVD_F(matrix, signature="D->DdD")
        if math.isfinite(s.item(0)) and math.isfinite(s.item(1)):
            return u, s, vh
    return np.linalg.svd(matrix)


def kron2(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """``np.kron`` of two 2x2 matrices, bit for bit (one product per entry), without
    its generic shape handling, which costs ~10x the arithmetic at this size."""
    return (high[:, None, :, None] * low[None, :, None, :]).reshape(4, 4)


#: The default fidelity of :class:`~qiskit.synthesis.TwoQubitWeylDecomposition`.
_WEYL_FIDELITY = 1.0 - 1.0e-9


def weyl(matrix: np.ndarray) -> _two_qubit_decompose.TwoQubitWeylDecomposition:
    """Weyl (KAK) decomposition of a 4x4 unitary in Qiskit's little-endian convention.

    ``matrix = e^{i g} (K1l (x) K1r) exp(i (a XX + b YY + c ZZ)) (K2l (x) K2r)``, with
    ``K1r``/``K2r`` acting on the first qubit argument and ``K1l``/``K2l`` on the second.
    Coordinates that are zero within Qiskit's default fidelity are made exactly zero by
    its specialisation step.

    Returns Qiskit's Rust decomposition object itself (same ``a``, ``b``, ``c``,
    ``K1l``, ``K1r``, ``K2l``, ``K2r`` as the Python class, which wraps it): the wrapper
    copies every attribute out at construction, which cost as much as the
    decomposition on the lowering's hot path.
    """
    return _two_qubit_decompose.TwoQubitWeylDecomposition(
        np.asarray(matrix, dtype=complex), fidelity=_WEYL_FIDELITY
    )


def canonical_fidelity(kept: tuple[float, float, float], full: tuple[float, float, float]) -> float:
    """Average gate fidelity between two canonical gates ``exp(i(aXX+bYY+cZZ))``.

    Used to price dropping small Weyl coordinates when approximation is allowed.
    """
    da, db, dc = (f - k for f, k in zip(full, kept))
    trace = 4.0 * complex(
        math.cos(da) * math.cos(db) * math.cos(dc), math.sin(da) * math.sin(db) * math.sin(dc)
    )
    return (4.0 + abs(trace) ** 2) / 20.0
