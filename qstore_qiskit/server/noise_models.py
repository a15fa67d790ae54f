"""IonQ's documented noise models for the simulator, as qiskit-aer noise.

IonQ's page "Simulation with Noise Models" (docs.ionq.com/guides/simulation-with-noise-models)
documents the model: a depolarizing channel after every one- and two-qubit gate, with
Kraus operators ``K_0 = sqrt(1 - 3 r_1q / 4) I``, ``K_i = sqrt(r_1q / 4) sigma_i`` (one
qubit) and ``K_00 = sqrt(1 - 15 r_2q / 16) I⊗I``, ``K_ij = sqrt(r_2q / 16) sigma_i⊗sigma_j``
(two qubits). That is exactly :func:`qiskit_aer.noise.depolarizing_error` with parameter
``r`` (``(1 - r) rho + r I / 2**k``): every non-identity Pauli has probability
``r / 4**k``.

The table (error rates per gate, simulation width):

=====================  ===========================  ==========================  ======  =====================================
``noise.model``        ``r_1q``                     ``r_2q``                    qubits  source
=====================  ===========================  ==========================  ======  =====================================
``aria-1``             0.0005                       0.0133                      25      IonQ table
``aria-2``             0.0006573333333333332        0.01856                     25      IonQ table
``forte-1``            0.0002666666666666667        0.004949333333333333        29      IonQ table (simulation capped at 29)
``forte-enterprise-1`` as ``forte-1``               as ``forte-1``              29      not published ("available in the
                                                                                        future"): Forte-class rates assumed
``harmony``,           0.0065                       0.0398                      11      not published ("a different formula
``harmony-1``,                                                                          and parameters"): Harmony's published
``harmony-2``                                                                           gate fidelities (99.35 % 1q, 96.02 %
                                                                                        2q) as depolarizing rates, plus a
                                                                                        0.5 % readout flip (SPAM 99.3-99.8 %)
``ideal``              0                            0                           29      no noise
=====================  ===========================  ==========================  ======  =====================================

The widths are IonQ's: "as many qubits as its corresponding QPU has (25 qubits for Aria 1
or Aria 2, 11 qubits for Harmony). For our Forte 1 system (which has 36 qubits) as well as
our ideal simulator, each simulation can currently use up to 29 qubits." The accepted
model names are IonQ's v0.4 ``NoiseModel`` enum.

Decisions where IonQ documents nothing: gates on more than two qubits (``qis`` gates with
several controls, ``pauliexp`` on three or more targets) are decomposed into one- and
two-qubit gates by Qiskit's synthesis and every resulting gate gets its channel; a gate
whose matrix is the identity (``nop``) gets none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

# Labels the Aer circuits give their gates so that an Aer ``NoiseModel`` can attach the
# one- and two-qubit channels by label (both are "unitary" instructions).
LABEL_1Q = "ionq_1q"
LABEL_2Q = "ionq_2q"


@dataclass(frozen=True)
class NoiseModel:
    """One of IonQ's noise models.

    Attributes:
        name: The ``noise.model`` name.
        error_1q: Depolarizing parameter ``r_1q`` after every one-qubit gate.
        error_2q: Depolarizing parameter ``r_2q`` after every two-qubit gate.
        readout: Probability that a measured bit is flipped (``harmony`` only).
        max_qubits: Widest circuit this model simulates.
        source: Where the numbers come from.
    """

    name: str
    error_1q: float = 0.0
    error_2q: float = 0.0
    readout: float = 0.0
    max_qubits: int = 29
    source: str = ""

    @property
    def is_ideal(self) -> bool:
        """Whether this model changes nothing."""
        return self.error_1q == 0 and self.error_2q == 0 and self.readout == 0

    def gate_error(self, num_qubits: int) -> float:
        """The depolarizing parameter after a gate on ``num_qubits`` (1 or 2) qubits."""
        return self.error_1q if num_qubits == 1 else self.error_2q

    def pauli_error_probability(self, num_qubits: int) -> float:
        """Probability that the channel after a ``num_qubits`` gate applies a
        non-identity Pauli: ``r (4**k - 1) / 4**k``."""
        dim2 = 4**num_qubits
        return self.gate_error(num_qubits) * (dim2 - 1) / dim2

    def aer_noise_model(self, readout: bool = True):
        """This model as a :class:`qiskit_aer.noise.NoiseModel` on labelled gates.

        The channels attach to instructions labelled :data:`LABEL_1Q` / :data:`LABEL_2Q`
        (how :mod:`~qstore_qiskit.server.aer_simulator` labels its gates); with
        ``readout``, bit flips attach to every measurement.
        """
        from qiskit_aer.noise import (  # pylint: disable=import-outside-toplevel
            NoiseModel as AerNoiseModel,
            ReadoutError,
            depolarizing_error,
        )

        model = AerNoiseModel(basis_gates=["unitary"])
        if self.error_1q > 0:
            model.add_all_qubit_quantum_error(depolarizing_error(self.error_1q, 1), [LABEL_1Q])
        if self.error_2q > 0:
            model.add_all_qubit_quantum_error(depolarizing_error(self.error_2q, 2), [LABEL_2Q])
        if readout and self.readout > 0:
            p = self.readout
            model.add_all_qubit_readout_error(ReadoutError([[1 - p, p], [p, 1 - p]]))
        return model

    def apply(self, probs: np.ndarray, num_qubits: int, n1: int, n2: int) -> np.ndarray:
        """Global approximation of the model on a final distribution.

        Not used by the server's simulation (which applies the channel after every gate);
        kept for ``qasm.sample_program(..., noise=...)`` callers: the circuit fidelity ``(1 - p_1)**n1 (1 - p_2)**n2`` (``p_k``
        the probability of a non-identity Pauli) mixes the ideal distribution with the
        uniform one, then each bit is flipped with probability ``readout``.
        """
        if self.is_ideal:
            return probs
        fidelity = ((1.0 - self.pauli_error_probability(1)) ** n1
                    * (1.0 - self.pauli_error_probability(2)) ** n2)
        out = fidelity * probs + (1.0 - fidelity) / probs.size
        if self.readout > 0:
            out = apply_readout_to_probabilities(out, num_qubits, self.readout)
        return out / out.sum()


def apply_readout_to_probabilities(probs: np.ndarray, num_qubits: int, flip: float
                                   ) -> np.ndarray:
    """Flip every bit of a dense distribution independently with probability ``flip``."""
    tensor = probs.reshape((2,) * num_qubits) if num_qubits else probs
    for axis in range(num_qubits):
        tensor = (1 - flip) * tensor + flip * np.flip(tensor, axis)
    return tensor.reshape(-1)


def apply_readout_to_histogram(histogram: Mapping[int, int], num_qubits: int, flip: float,
                               rng: np.random.Generator) -> dict[int, int]:
    """Flip every measured bit of every shot independently with probability ``flip``."""
    if flip <= 0 or not histogram:
        return dict(histogram)
    keys = np.fromiter(histogram.keys(), dtype=np.int64, count=len(histogram))
    counts = np.fromiter(histogram.values(), dtype=np.int64, count=len(histogram))
    shots = np.repeat(keys, counts)
    flips = rng.random((shots.size, num_qubits)) < flip
    masks = (flips.astype(np.int64) << np.arange(num_qubits, dtype=np.int64)).sum(axis=1)
    values, totals = np.unique(shots ^ masks, return_counts=True)
    return dict(zip(values.tolist(), totals.tolist()))


_IONQ_PAGE = "IonQ, 'Simulation with Noise Models' (docs.ionq.com)"
_HARMONY_SOURCE = ("IonQ Harmony's published gate fidelities (Azure Quantum provider page); "
                   "IonQ does not publish its Harmony simulator model")
_FORTE_1Q, _FORTE_2Q = 0.0002666666666666667, 0.004949333333333333


def _harmony(name: str) -> NoiseModel:
    return NoiseModel(name, 0.0065, 0.0398, readout=0.005, max_qubits=11,
                      source=_HARMONY_SOURCE)


NOISE_MODELS: dict[str, NoiseModel] = {
    "ideal": NoiseModel("ideal", max_qubits=29, source="no noise"),
    "aria-1": NoiseModel("aria-1", 0.0005, 0.0133, max_qubits=25, source=_IONQ_PAGE),
    "aria-2": NoiseModel("aria-2", 0.0006573333333333332, 0.01856, max_qubits=25,
                         source=_IONQ_PAGE),
    "forte-1": NoiseModel("forte-1", _FORTE_1Q, _FORTE_2Q, max_qubits=29, source=_IONQ_PAGE),
    "forte-enterprise-1": NoiseModel(
        "forte-enterprise-1", _FORTE_1Q, _FORTE_2Q, max_qubits=29,
        source="not published by IonQ; Forte 1's rates from " + _IONQ_PAGE),
    "harmony": _harmony("harmony"),
    "harmony-1": _harmony("harmony-1"),
    "harmony-2": _harmony("harmony-2"),
}
"""Every accepted ``noise.model`` name (IonQ's v0.4 ``NoiseModel`` enum) and its model."""


__all__ = [
    "NoiseModel",
    "NOISE_MODELS",
    "LABEL_1Q",
    "LABEL_2Q",
    "apply_readout_to_probabilities",
    "apply_readout_to_histogram",
]
