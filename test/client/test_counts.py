"""Counts from probabilities: the vectorised construction gives the reference numbers."""

from __future__ import annotations

import math
import unittest

import numpy as np

from qstore_qiskit.client import counts as counts_mod
from qstore_qiskit.client.counts import build_counts, count_array


def _reference_sampled(probs: dict[int, float], shots: int, seed: int) -> dict[int, int]:
    """qiskit-ionq's construction: ``RandomState(seed).choice`` over the outcomes."""
    outcomes = list(probs)
    weights = np.asarray([probs[k] for k in outcomes], dtype=float)
    drawn = np.random.RandomState(seed).choice(len(outcomes), shots, p=weights / weights.sum())
    sampled = np.bincount(drawn, minlength=len(outcomes))
    return {k: int(c) for k, c in zip(outcomes, sampled) if c}


def _reference_rounded(probs: dict[int, float], shots: int) -> dict[int, int]:
    """round(p * shots), then largest-remainder repair, one Python float at a time."""
    outcomes = list(probs)
    weights = np.asarray([probs[k] for k in outcomes], dtype=float)
    exact = (weights / weights.sum() * shots).tolist()  # normalised as the client always did
    counts = [int(round(x)) for x in exact]
    diff = shots - sum(counts)
    if diff:
        order = sorted(range(len(exact)), key=lambda i: counts[i] - exact[i], reverse=diff < 0)
        for i in order[: abs(diff)]:
            counts[i] += int(math.copysign(1, diff))
    return {k: c for k, c in zip(outcomes, counts) if c > 0}


def _histograms(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for trial in range(count):
        size = int(rng.integers(1, 300))
        weights = rng.random(size) ** int(rng.integers(1, 8))
        if trial % 5 == 0:
            weights[rng.random(size) < 0.3] = 0.0
        if weights.sum() == 0:
            weights[0] = 1.0
        if trial % 3 == 0:
            weights = np.round(weights, 2)  # many exact ties in the rounding rule
            weights[0] += 0.01
        keys = rng.permutation(1 << 10)[:size]  # the service's order, not sorted
        yield {int(k): float(v) for k, v in zip(keys, weights / weights.sum())}, int(
            rng.choice([1, 3, 10, 100, 1000, 1024, 4097])
        ), int(rng.integers(0, 40))


class TestCounts(unittest.TestCase):
    def test_sampled_counts_equal_random_state_choice(self) -> None:
        for probs, shots, seed in _histograms(400):
            got = build_counts(probs, shots, use_sampler=True, sampler_seed=seed)
            want = _reference_sampled(probs, shots, seed)
            self.assertEqual(got, want)
            self.assertEqual(list(got), list(want))  # the service's order is kept

    def test_rounded_counts_equal_reference(self) -> None:
        for probs, shots, _ in _histograms(400, seed=1):
            got = build_counts(probs, shots, use_sampler=False)
            want = _reference_rounded(probs, shots)
            self.assertEqual(got, want)
            self.assertEqual(list(got), list(want))
            self.assertEqual(sum(got.values()), shots)

    def test_unseeded_sampling_sums_to_shots(self) -> None:
        counts = build_counts({0: 0.5, 3: 0.25, 1: 0.25}, 1000, use_sampler=True)
        self.assertEqual(sum(counts.values()), 1000)
        self.assertLessEqual(set(counts), {0, 1, 3})

    def test_choice_errors_kept(self) -> None:
        """Weights ``RandomState.choice`` refuses are refused with its messages."""
        with self.assertRaisesRegex(ValueError, "non-negative"):
            count_array(np.array([1.0, -1e-7]), 10, use_sampler=True, sampler_seed=3)
        with self.assertRaisesRegex(ValueError, "NaN"):
            count_array(np.array([1.0, np.nan]), 10, use_sampler=True, sampler_seed=3)
        self.assertIsNone(count_array(np.array([0.0, 0.0]), 10, use_sampler=True, sampler_seed=3))
        self.assertIsNone(count_array(np.array([0.5, 0.5]), 0, use_sampler=False))

    def test_uniform_cache_is_bounded(self) -> None:
        budget = counts_mod._UNIFORM_BUDGET
        shots = budget // 4 + 1
        for seed in range(6):
            count_array(np.array([0.5, 0.5]), shots, use_sampler=True, sampler_seed=seed)
        self.assertLessEqual(sum(map(len, counts_mod._uniforms.values())), budget)
        # Too large to cache: still the reference numbers.
        probs = {0: 0.25, 1: 0.75}
        got = build_counts(probs, budget + 1, use_sampler=True, sampler_seed=5)
        self.assertEqual(got, _reference_sampled(probs, budget + 1, 5))
        self.assertNotIn((5, budget + 1), counts_mod._uniforms)

    def test_bucketed_count_below_equals_searchsorted(self) -> None:
        # count_matrix counts the seed's uniforms below each bin edge through buckets;
        # it must be searchsorted's count exactly, also at the uniforms themselves, just
        # beside them, on the bucket borders and at 0 and 1.
        rng = np.random.default_rng(3)
        for seed in (0, 7, 1234):
            for shots in (1, 2, 5, 100, 1024, 3000):
                uniforms = counts_mod._sorted_uniforms(seed, shots)
                size = counts_mod._uniform_buckets(seed, shots)[2]
                edges = np.concatenate([
                    rng.random(2000), uniforms, np.nextafter(uniforms, 0.0), np.nextafter(uniforms, 1.0),
                    np.arange(size + 1) / size, [0.0, 1.0, 5e-324, np.nextafter(1.0, 0.0)],
                ])
                got = counts_mod._count_below(seed, shots, edges.reshape(2, -1) if len(edges) % 2 == 0 else edges)
                want = np.searchsorted(uniforms, edges, side="left")
                self.assertTrue(np.array_equal(got.ravel(), want), (seed, shots))
        # Out of [0, 1] or NaN: searchsorted itself.
        odd = np.array([[-0.5, 0.3, 1.5, np.nan]])
        self.assertTrue(np.array_equal(counts_mod._count_below(7, 100, odd),
                                       np.searchsorted(counts_mod._sorted_uniforms(7, 100), odd, side="left")))

    def test_count_matrix_rows_equal_count_array(self) -> None:
        rng = np.random.default_rng(11)
        weights = rng.random((60, 32)) ** 3
        weights[5, :] = 0.0  # no positive weight: None, as count_array
        for shots in (1, 64, 1024):
            rows = counts_mod.count_matrix(weights, shots, use_sampler=True, sampler_seed=9)
            for w, got in zip(weights, rows):
                want = count_array(w, shots, use_sampler=True, sampler_seed=9)
                self.assertEqual(got is None, want is None)
                if want is not None:
                    self.assertTrue(np.array_equal(got, want))


if __name__ == "__main__":
    unittest.main()
