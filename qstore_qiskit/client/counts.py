"""Probabilities -> integer counts, the way qiskit-ionq does it.

The IonQ API returns, per circuit, a map ``{"<outcome int>": probability}`` where the
outcome integer has qubit 0 as its least significant bit.  qiskit-ionq
(``qiskit_ionq.ionq_job._build_counts``) turns it into counts in one of two ways:

* **ideal simulator** (``backend == "simulator"`` and noise model ``ideal``): it *samples*
  ``shots`` outcomes with ``np.random.RandomState(sampler_seed).choice`` over the outcomes
  in the order the API returned them, with the normalised probabilities as weights.
  We get exactly the same counts for the same payload and seed, computed without drawing
  per shot: the seed's uniforms are drawn once and each outcome's count is read off the
  cumulative distribution with one ``searchsorted`` (see ``_seeded_choice_counts``).
  Without a seed (qiskit-ionq then draws from fresh OS entropy) we draw the same
  multinomial distribution directly (``RandomState.multinomial``), which is faster.
* **everything else** (QPU, noisy simulator): it uses ``round(p * shots)``.  For QPU
  histograms that already sums to ``shots``; for a noisy simulator it may not, so we
  repair the sum with the largest-remainder method (only bins whose rounding was off by
  the most are adjusted).  When ``round`` already sums to ``shots`` the result equals
  qiskit-ionq's.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import cast

import numpy as np


# Building ``np.random.RandomState()`` costs ~1 ms (legacy MT19937 seeding), more than
# sampling itself, so each thread keeps one for unseeded draws and lets it continue
# (qiskit-ionq draws from fresh OS entropy each time: statistically the same). Seeded
# draws never touch it: see ``_seeded_choice_counts``.
_local = threading.local()


def _random_state() -> np.random.RandomState:
    rand = getattr(_local, "rand", None)
    if rand is None:
        rand = _local.rand = np.random.RandomState()
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
    outcomes = np.fromiter(probabilities, dtype=np.int64, count=len(probabilities))
    weights = np.fromiter(probabilities.values(), dtype=float, count=len(probabilities))
    counts = count_array(weights, shots, use_sampler=use_sampler, sampler_seed=sampler_seed)
    return counts_dict(outcomes, counts)


def counts_dict(outcomes: np.ndarray, counts: np.ndarray | None) -> dict[int, int]:
    """``{outcome: count}`` of the positive counts, in the order of ``outcomes``."""
    keys, values = positive_counts(outcomes, counts)
    return dict(zip(keys.tolist(), values.tolist()))


def positive_counts(outcomes: np.ndarray, counts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``(outcomes, counts)`` restricted to the positive counts, order kept."""
    if counts is None:
        return outcomes[:0], np.zeros(0, dtype=np.int64)
    keep = counts > 0
    return outcomes[keep], counts[keep].astype(np.int64, copy=False)


def positive_count_rows(
    outcomes: np.ndarray, counts: list[np.ndarray | None]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`positive_counts` of ``outcomes`` with each of ``counts`` (the rows of a
    :func:`count_matrix`): the same arrays, selected for all rows at once when every row
    has counts (a multicircuit job's 1,000 rows in a few numpy calls, not 3,000)."""
    if not counts or any(c is None for c in counts) or outcomes.ndim != 1:
        return [positive_counts(outcomes, c) for c in counts]
    matrix = np.stack(cast("list[np.ndarray]", counts))  # no None among them (checked above)
    keep = matrix > 0
    keys = np.broadcast_to(outcomes, matrix.shape)[keep]  # row by row, order kept
    values = matrix[keep].astype(np.int64, copy=False)
    ends = np.cumsum(keep.sum(axis=1)).tolist()
    starts = [0] + ends[:-1]
    return [(keys[a:b], values[a:b]) for a, b in zip(starts, ends)]


def count_array(
    weights: np.ndarray, shots: int, *, use_sampler: bool, sampler_seed: int | None = None
) -> np.ndarray | None:
    """:func:`build_counts` on arrays: integer counts aligned with ``weights`` (the
    probabilities in the API's order), or ``None`` when there is nothing to count.

    Same numbers as qiskit-ionq's ``_build_counts`` (see the module docstring), computed
    without a Python loop over the outcomes.
    """
    if not len(weights) or shots <= 0:
        return None
    total = weights.sum()
    if total <= 0:
        return None
    if use_sampler:
        if sampler_seed is None:
            # Same distribution as counting `shots` categorical draws, in O(outcomes).
            return _random_state().multinomial(shots, weights / total)
        return _seeded_choice_counts(weights / total, shots, sampler_seed)
    # qiskit-ionq: round(p * shots); then largest-remainder repair of the total.
    exact = weights / total * shots
    counts = np.rint(exact).astype(np.int64)  # half to even, as Python's round()
    diff = shots - int(counts.sum())
    if diff:
        # Positive diff: add to bins that were rounded down the most; negative: take
        # from bins rounded up the most (stable order among equals, as sorted()).
        key = counts - exact
        order = np.argsort(-key if diff < 0 else key, kind="stable")
        counts[order[: abs(diff)]] += 1 if diff > 0 else -1
    return counts


# ``RandomState(seed).choice(n, shots, p=p)`` draws ``random_sample(shots)`` uniforms and
# puts each into the bin of the cumulative distribution it falls in; the uniforms depend
# only on (seed, shots), and every circuit of a job has the same seed. So we draw them
# once, sorted, and count each bin with one ``searchsorted`` of the bin edges: O(outcomes
# x log shots) per circuit instead of O(shots x log outcomes), bit-identical counts.
_uniforms: dict[tuple[int, int], np.ndarray] = {}
_uniforms_lock = threading.Lock()
_UNIFORM_BUDGET = 1 << 22  # cached doubles in all (32 MiB)


def _sorted_uniforms(seed: int, shots: int) -> np.ndarray:
    key = (seed, shots)
    got = _uniforms.get(key)
    if got is None:
        got = np.sort(np.random.RandomState(seed).random_sample(shots))
        got.setflags(write=False)
        if shots <= _UNIFORM_BUDGET:
            with _uniforms_lock:
                while _uniforms and sum(map(len, _uniforms.values())) + shots > _UNIFORM_BUDGET:
                    _uniforms.pop(next(iter(_uniforms)))
                _uniforms[key] = got
    return got


# Counting the uniforms below each bin edge of a whole job (1,000 rows x 256 edges) with
# ``searchsorted`` costs ~10 binary-search steps per edge. The uniforms are fixed per
# (seed, shots), so they are bucketed once: bucket ``j`` of ``M`` (a power of two) holds
# the uniforms in ``[j/M, (j+1)/M)``, and ``first[j]`` counts those below ``j/M``. For an
# edge ``x`` in ``[0, 1]``, ``j = floor(x * M)`` is exact (scaling by a power of two), so
# ``x`` lies in bucket ``j``: the count below ``x`` is ``first[j]`` plus those of bucket
# ``j``'s few uniforms (at most ``depth``) that are below ``x``. The uniforms are padded
# with ``depth`` infinities, so reading past bucket ``j`` only reads values above ``x``.
# Integers, so the very same counts as ``searchsorted``, at ~1/3 of its cost.
_buckets: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, int, int]] = {}
_BUCKETED_SHOTS = 1 << 16  # at most 2**20 buckets (8 MiB); more shots: searchsorted


def _uniform_buckets(seed: int, shots: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(first, padded uniforms, M, depth)`` of the sorted uniforms of ``(seed, shots)``
    (see the comment above); kept as long as the uniforms are."""
    key = (seed, shots)
    got = _buckets.get(key)
    if got is not None and key in _uniforms:
        return got
    uniforms = _sorted_uniforms(seed, shots)
    size = 1 << max(4, int(shots * 8).bit_length())  # ~8-16 buckets per uniform
    first = np.searchsorted(uniforms, np.arange(size + 1, dtype=np.float64) / size, side="left")
    depth = int(np.diff(first).max(initial=0))
    padded = np.concatenate([uniforms, np.full(depth + 1, np.inf)])
    got = (first, padded, size, depth)
    with _uniforms_lock:
        for stale in [k for k in _buckets if k not in _uniforms]:
            _buckets.pop(stale, None)
        if key in _uniforms:
            _buckets[key] = got
    return got


def _count_below(seed: int, shots: int, edges: np.ndarray) -> np.ndarray:
    """``np.searchsorted(_sorted_uniforms(seed, shots), edges, side="left")`` (``int64``,
    the shape of ``edges``), through the buckets when every edge is in ``[0, 1]``."""
    if shots > _BUCKETED_SHOTS or not edges.size or not (edges.min() >= 0.0 and edges.max() <= 1.0):  # NaN fails too
        return np.searchsorted(_sorted_uniforms(seed, shots), edges, side="left")
    first, padded, size, depth = _uniform_buckets(seed, shots)
    start = first[(edges * size).astype(np.intp)]  # x * 2**k: exact, truncation = floor
    below = start.copy()
    for t in range(depth):
        below += padded[start + t] < edges
    return below


def _seeded_choice_counts(p: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """``np.bincount(RandomState(seed).choice(len(p), shots, p=p), minlength=len(p))``,
    including ``choice``'s checks of ``p`` (same errors)."""
    if not p.min() >= 0:  # also false for NaN
        raise ValueError("probabilities contain NaN" if np.isnan(p).any() else "probabilities are not non-negative")
    if abs(p.sum() - 1.0) > np.sqrt(np.finfo(np.float64).eps):
        raise ValueError("probabilities do not sum to 1")
    cdf = p.cumsum()
    cdf /= cdf[-1]
    # choice: bin i gets the uniforms u with cdf[i-1] <= u < cdf[i] (searchsorted right).
    below = np.searchsorted(_sorted_uniforms(seed, shots), cdf, side="left")
    counts = below.copy()
    counts[1:] -= below[:-1]
    return counts


def count_matrix(
    weights: np.ndarray, shots: int, *, use_sampler: bool, sampler_seed: int | None = None
) -> list[np.ndarray | None]:
    """:func:`count_array` of every row of ``weights`` (``(circuits, outcomes)``): the
    same counts, bit for bit, and the same errors.

    The seeded sampler (every circuit of a job has the same seed, so the same sorted
    uniforms) and rounding are computed for the whole matrix at once: one ``cumsum`` and
    one ``searchsorted`` of the bin edges of all rows. Rows those paths do not cover as
    they stand (no positive weight, a negative one, rounding that needs its total
    repaired, the unseeded sampler) go through :func:`count_array` one by one.
    """
    rows = weights.shape[0]
    if not weights.shape[1] or shots <= 0:
        return [None] * rows
    totals = weights.sum(axis=1)  # pairwise per row, as weights[r].sum()
    out: list[np.ndarray | None] = [None] * rows
    fast = totals > 0
    if use_sampler and sampler_seed is None:
        fast[:] = False
    elif use_sampler:
        fast &= weights.min(axis=1) >= 0
    if fast.any():
        idx = np.flatnonzero(fast)
        p = weights[idx] / totals[idx, None]
        if use_sampler:
            # _seeded_choice_counts per row: its sum check, then its cumsum and edges.
            ok = np.abs(p.sum(axis=1) - 1.0) <= np.sqrt(np.finfo(np.float64).eps)
            cdf = p.cumsum(axis=1)
            cdf /= cdf[:, -1:]
            below = _count_below(int(sampler_seed), shots, cdf)  # type: ignore[arg-type]  # seeded here
            counts = below.copy()
            counts[:, 1:] -= below[:, :-1]
        else:
            counts = np.rint(p * shots).astype(np.int64)
            ok = counts.sum(axis=1) == shots  # else the per-row largest-remainder repair
        for r, k in enumerate(idx):
            if ok[r]:
                out[k] = counts[r]
            else:
                fast[k] = False
    for k in np.flatnonzero(~fast):
        out[k] = count_array(weights[k], shots, use_sampler=use_sampler, sampler_seed=sampler_seed)
    return out


__all__ = [
    "build_counts", "count_array", "count_matrix", "counts_dict", "positive_count_rows", "positive_counts", "uses_sampler",
]
