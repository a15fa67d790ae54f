"""Seeded fault injection.

Every request under ``/jobs`` asks :meth:`FaultInjector.draw` whether it gets a
fault. Each call consumes exactly two numbers from a private ``random.Random`` (one
for "fault or not", one for the kind), whatever the outcome, so the schedule is a
pure function of the seed and the order of requests.
"""

from __future__ import annotations

import random
import threading
from typing import Mapping

from .config import CREATE_ONLY_FAULT_KINDS, FAULT_KINDS, REQUEST_FAULT_KINDS


class FaultInjector:
    """Decide and count injected faults.

    Args:
        rate: Probability that a request gets a fault.
        weights: Relative weight per kind (see :data:`~.config.FAULT_KINDS`).
        seed: Seed of the schedule (``None``: nondeterministic).
    """

    def __init__(self, rate: float, weights: Mapping[str, float], seed: int | None):
        self.rate = float(rate)
        self.weights = {k: float(weights.get(k, 0.0)) for k in FAULT_KINDS}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {k: 0 for k in FAULT_KINDS}

    def draw(self, is_create: bool) -> str | None:
        """Draw the fault (kind name) for the next request, or ``None``.

        Args:
            is_create: Whether the request creates a job; only creations can get the
                job-level kinds (``job_failed``, ``late_result``, ``create_response_lost``).
        """
        with self._lock:
            u_fault = self._rng.random()
            u_kind = self._rng.random()
            if self.rate <= 0.0 or u_fault >= self.rate:
                return None
            kinds = REQUEST_FAULT_KINDS + (CREATE_ONLY_FAULT_KINDS if is_create else ())
            total = sum(self.weights[k] for k in kinds)
            if total <= 0.0:
                return None
            acc = 0.0
            threshold = u_kind * total
            chosen = [k for k in kinds if self.weights[k] > 0][-1]
            for kind in kinds:
                acc += self.weights[kind]
                if threshold < acc and self.weights[kind] > 0:
                    chosen = kind
                    break
            return chosen

    def record(self, kind: str) -> None:
        """Count one injected fault of ``kind`` (called when it is actually applied)."""
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1

    def counts(self) -> dict[str, int]:
        """Injected faults so far, by kind (every kind present, zeros included)."""
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        """Total number of injected faults."""
        with self._lock:
            return sum(self._counts.values())


__all__ = ["FaultInjector"]
