"""Probabilities -> integer counts, the way qiskit-ionq does it.

The IonQ API returns, per circuit, a map ``{"<outcome int>": probability}`` where the
outcome integer has qubit 0 as its least significant bit.  qiskit-ionq
(``qiskit_ionq.ionq_job._build_counts``) turns it into counts in one of two ways:

* **ideal simulator** (``backend == "simulator"`` and noise model ``ideal``): it *samples*
  ``shots`` outcomes with ``np.random.RandomState(sampler_seed).choice`` over the outcomes
  in the order the API returned them, with the normalised probabilities as weights.
  We do exactly the same, so for the same payload and seed the counts are identical.
  Without a seed (qiskit-ionq then draws from fresh OS entropy) we draw the same
  multinomial distribution directly (``RandomState.multinomial``), which is faster.
* **everything else** (QPU, noisy simulator): it uses ``round(p * shots)``.  For QPU
  histograms that already sums to ``shots``; for a noisy simulator it may not, so we
  repair the sum with the largest-remainder method (only bins whose rounding was off by
  the most are adjusted).  When ``round`` already sums to ``shots`` the result equals
  qiskit-ionq's.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np


# Building ``np.random.RandomState(seed)`` costs ~1 ms (legacy MT19937 seeding), more
# than sampling itself; with hundreds of circuits per job that dominated result handling.
# So each thread keeps one RandomState: for a seed, the seeded state is computed once and
# restored with ``set_state`` (bit-identical draws to a fresh ``RandomState(seed)``, as
# qiskit-ionq makes per circuit); without a seed the thread's generator simply continues
# (qiskit-ionq draws from fresh OS entropy each time: statistically the same).
_local = threading.local()
_seeded_states: dict[int, Any] = {}
_MAX_SEEDS = 64


def _random_state(seed: int | None) -> np.random.RandomState:
    rand = getattr(_local, "rand", None)
    if rand is None:
        rand = _local.rand = np.random.RandomState()
        _local.seeded = False
    if seed is None:
        if _local.seeded:  # leave a seeded sequence: reseed from entropy
            rand.seed()
            _local.seeded = False
        return rand
    state = _seeded_states.get(seed)
    if state is None:
        state = np.random.RandomState(seed).get_state()
        if len(_seeded_states) >= _MAX_SEEDS:
            _seeded_states.pop(next(iter(_seeded_states)))
        _seeded_states[seed] = state
    rand.set_state(state)
    _local.seeded = True
    return rand


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
        rand = _random_state(sampler_seed)
        if sampler_seed is None:
            # Same distribution as counting `shots` categorical draws, in O(outcomes).
            sampled = rand.multinomial(shots, weights / total)
        else:  # bit-identical to qiskit-ionq for the same seed
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
