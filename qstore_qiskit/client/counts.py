"""Probabilities -> integer counts, the way qiskit-ionq does it.

The IonQ API returns, per circuit, a map ``{"<outcome int>": probability}`` where the
outcome integer has qubit 0 as its least significant bit.  qiskit-ionq
(``qiskit_ionq.ionq_job._build_counts``) turns it into counts in one of two ways:

* **ideal simulator** (``backend == "simulator"`` and noise model ``ideal``): it *samples*
  ``shots`` outcomes with ``np.random.RandomState(sampler_seed).choice`` over the outcomes
  in the order the API returned them, with the normalised probabilities as weights.
  We do exactly the same, so for the same payload and seed the counts are identical.
* **everything else** (QPU, noisy simulator): it uses ``round(p * shots)``.  For QPU
  histograms that already sums to ``shots``; for a noisy simulator it may not, so we
  repair the sum with the largest-remainder method (only bins whose rounding was off by
  the most are adjusted).  When ``round`` already sums to ``shots`` the result equals
  qiskit-ionq's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np


def uses_sampler(backend: str, noise: Mapping | None) -> bool:
    """Whether qiskit-ionq would sample counts for this backend / noise setting."""
    model = (noise or {}).get("model", "ideal") if isinstance(noise, Mapping) else "ideal"
    return backend.removeprefix("ionq_") == "simulator" and model in (None, "ideal")


def build_counts(
    probabilities: Mapping[int, float],
    shots: int,
    *,
    use_sampler: bool,
    sampler_seed: int | None = None,
) -> dict[int, int]:
    """Integer counts summing to ``shots`` (zero bins dropped).

    Args:
        probabilities: outcome -> probability, in the order the API returned them.
        shots: number of shots.
        use_sampler: sample (ideal simulator) rather than round.
        sampler_seed: seed of ``np.random.RandomState`` when sampling.

    Returns:
        dict of outcome -> count.
    """
    if not probabilities or shots <= 0:
        return {}
    outcomes = list(probabilities)
    weights = np.asarray([float(probabilities[k]) for k in outcomes], dtype=float)
    total = weights.sum()
    if total <= 0:
        return {}
    if use_sampler:
        rand = np.random.RandomState(sampler_seed)
        sampled = np.bincount(
            rand.choice(len(outcomes), shots, p=weights / total), minlength=len(outcomes)
        )
        return {k: int(c) for k, c in zip(outcomes, sampled) if c}
    # qiskit-ionq: round(p * shots); then largest-remainder repair of the total.
    exact = weights / total * shots
    counts = [int(round(x)) for x in exact]
    diff = shots - sum(counts)
    if diff:
        # Positive diff: add to bins that were rounded down the most; negative: take
        # from bins rounded up the most.
        order = sorted(range(len(exact)), key=lambda i: counts[i] - exact[i], reverse=diff < 0)
        for i in order[: abs(diff)]:
            counts[i] += int(math.copysign(1, diff))
    return {k: c for k, c in zip(outcomes, counts) if c > 0}


__all__ = ["build_counts", "uses_sampler"]
