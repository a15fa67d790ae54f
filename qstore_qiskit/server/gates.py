"""Gate matrices of IonQ's qis and native gatesets, in Qiskit's conventions.

qiskit-ionq's native gates (GPi, GPi2, MS, ZZ) take their phases and angles in *turns*;
a k-qubit matrix on qubits ``[q_0, ..., q_{k-1}]`` treats ``q_0`` as its least
significant bit. Shared by the state-vector kernels (:mod:`.simulator`) and the batched
small-circuit kernel (:mod:`.batch_kernel`).
"""

from __future__ import annotations

import cmath
import math
from typing import Sequence

import numpy as np

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


