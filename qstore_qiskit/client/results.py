"""Result containers and validation of IonQ result payloads."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import IonQResponseError

_PROB_TOLERANCE = 1e-6


@dataclass
class CircuitResult:
    """The result of one circuit.

    Attributes:
        probabilities: outcome -> probability, outcome integers with qubit 0 as the least
            significant bit (IonQ's convention), in the order the API returned them.
        counts: outcome -> integer count summing to ``shots`` (see
            :mod:`qstore_qiskit.client.counts`), or ``None`` if not requested.
        shots: shots of the job.
        job_id: id of the (parent) job that ran the circuit.
        child_job_id: id of the child job for multicircuit jobs, else ``None``.
        num_qubits: qubit count of the circuit as submitted.
        circuit_index: index of the circuit in the caller's ``submit`` list.
        name: the circuit's ``name`` as handed in (if any).
        metadata: the job's metadata, plus the caller's ``metadata``.
    """

    probabilities: dict[int, float]
    counts: dict[int, int] | None
    shots: int
    job_id: str
    child_job_id: str | None
    num_qubits: int
    circuit_index: int
    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def get_counts(self) -> dict[str, int]:
        """Counts keyed by Qiskit bitstrings (qubit 0 rightmost)."""
        return {format(k, f"0{self.num_qubits}b"): v for k, v in (self.counts or {}).items()}

    def get_probabilities(self) -> dict[str, float]:
        """Probabilities keyed by Qiskit bitstrings (qubit 0 rightmost)."""
        return {format(k, f"0{self.num_qubits}b"): v for k, v in self.probabilities.items()}


def parse_histogram(raw: Any, num_qubits: int, where: str) -> dict[int, float]:
    """Validate one ``{"<int>": p}`` histogram and convert its keys to ``int``.

    Args:
        raw: the decoded JSON histogram.
        num_qubits: every outcome must be ``< 2**num_qubits``.
        where: context for error messages (job / child id).

    Raises:
        IonQResponseError: not a mapping, bad keys or values, outcomes out of range,
            probabilities not summing to 1.
    """
    if not isinstance(raw, Mapping) or not raw:
        raise IonQResponseError(f"{where}: expected a non-empty probability map, got {type(raw).__name__}")
    out: dict[int, float] = {}
    limit = 1 << num_qubits
    for key, value in raw.items():
        try:
            outcome = int(key)
        except (TypeError, ValueError):
            raise IonQResponseError(f"{where}: outcome {key!r} is not an integer") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise IonQResponseError(f"{where}: probability of {key!r} is not a number")
        if outcome < 0 or outcome >= limit:
            raise IonQResponseError(
                f"{where}: outcome {outcome} does not fit the circuit's {num_qubits} qubit(s) "
                "(wrong qubit count)"
            )
        if value < -_PROB_TOLERANCE:
            raise IonQResponseError(f"{where}: negative probability for {outcome}")
        out[outcome] = float(value)
    total = sum(out.values())
    if abs(total - 1.0) > 1e-3:
        raise IonQResponseError(f"{where}: probabilities sum to {total:.6f}, not 1")
    return out


__all__ = ["CircuitResult", "parse_histogram"]
