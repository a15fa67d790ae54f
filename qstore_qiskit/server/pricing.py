"""The pricing model behind ``GET /jobs/estimate`` and ``GET /jobs/{id}/cost``.

One model serves both routes, so a job's cost is exactly what an estimate with its
backend, gate counts, shots and error-mitigation flag predicted. The rates are modelled
on IonQ's public list prices (per gate-shot with a per-job minimum, a higher minimum
with error mitigation); they are the local server's, not a quote. The simulator is free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

COST_UNIT = "usd"
ORGANIZATION = "local-organization"


@dataclass(frozen=True)
class Rates:
    """Prices of one backend (USD)."""

    cost_1q_gate: float  # per 1q gate, per shot
    cost_2q_gate: float  # per 2q gate, per shot
    job_cost_minimum: float
    job_cost_minimum_mitigated: float

    def as_rate_information(self, error_mitigation: bool) -> dict[str, object]:
        """The ``rate_information`` block of an estimate."""
        return {
            "job_cost_minimum": (self.job_cost_minimum_mitigated if error_mitigation
                                 else self.job_cost_minimum),
            "cost_2q_gate": self.cost_2q_gate,
            "cost_1q_gate": self.cost_1q_gate,
            "organization": ORGANIZATION,
        }


FREE = Rates(0.0, 0.0, 0.0, 0.0)
ARIA = Rates(0.000220, 0.000975, 12.42, 97.50)
FORTE = Rates(0.000283, 0.002422, 25.00, 97.50)


def rates_for(backend: str) -> Rates:
    """The rates of ``backend`` (free for the simulator and unknown names)."""
    if backend.startswith("qpu.aria"):
        return ARIA
    if backend.startswith("qpu.forte"):
        return FORTE
    return FREE


def cost_of(backend: str, gates_1q: int, gates_2q: int, shots: int,
            error_mitigation: bool = False) -> float:
    """Price of running ``shots`` shots of circuits with these gate counts.

    All inputs must be non-negative (the routes reject others with a 400). The result
    is finite for any such integers: it is computed in floating point and rounded to
    cents.
    """
    rates = rates_for(backend)
    if rates is FREE:
        return 0.0
    per_shot = math.fsum((rates.cost_1q_gate * float(gates_1q),
                          rates.cost_2q_gate * float(gates_2q)))
    minimum = rates.job_cost_minimum_mitigated if error_mitigation else (
        rates.job_cost_minimum)
    total = max(minimum, per_shot * float(shots))
    return round(total, 2) if math.isfinite(total) else float("inf")


__all__ = ["Rates", "rates_for", "cost_of", "COST_UNIT", "ORGANIZATION"]
