"""A job's results as matrices: the batch paths give the per-circuit numbers and errors."""

from __future__ import annotations

import json
import unittest

import numpy as np

from qstore_qiskit.client.counts import count_array, count_matrix
from qstore_qiskit.client.exceptions import IonQResponseError
from qstore_qiskit.client.results import parse_histogram_arrays, parse_histogram_groups


def _decoded(hist: dict) -> dict:
    return json.loads(json.dumps(hist))  # as it arrives: string keys


def _job(rng: np.random.Generator, circuits: int, size: int = 16) -> list[dict]:
    """Histograms sharing one key list (as a multicircuit job's children do)."""
    keys = rng.permutation(size)
    return [_decoded({str(k): p for k, p in zip(keys, rng.dirichlet(np.ones(size)))}) for _ in range(circuits)]


class TestParseHistogramGroups(unittest.TestCase):
    def assert_same_as_rows(self, raws: list, nqs: list[int]) -> None:
        groups = parse_histogram_groups(raws, nqs, [f"job j child {i}" for i in range(len(raws))])
        seen = sorted(r for g in groups for r in g.rows)
        self.assertEqual(seen, list(range(len(raws))))  # every circuit exactly once
        for g in groups:
            self.assertEqual(g.probabilities.shape, (len(g.rows), len(g.outcomes)))
            for r, pos in enumerate(g.rows):
                outcomes, probs = parse_histogram_arrays(raws[pos], nqs[pos], "x")
                np.testing.assert_array_equal(g.outcomes, outcomes)
                np.testing.assert_array_equal(g.probabilities[r], probs)  # bit for bit

    def test_one_matrix_for_shared_keys(self) -> None:
        raws = _job(np.random.default_rng(1), 50)
        groups = parse_histogram_groups(raws, [4] * 50, ["w"] * 50)
        self.assertEqual(len(groups), 1)
        self.assertEqual(groups[0].rows, list(range(50)))
        self.assert_same_as_rows(raws, [4] * 50)

    def test_mixed_key_lists_and_edge_values(self) -> None:
        rng = np.random.default_rng(2)
        raws = _job(rng, 6) + [_decoded({"0": 1}), _decoded({"1": 0.5, "0": 0.5})] + _job(rng, 3, size=4)
        raws.insert(3, _decoded({"0": 0.5, "1": 0.5 + 1e-4}))  # within the sum tolerance
        raws.insert(5, {"0": 1.0, "1": -1e-7})  # tiny negative: tolerated
        raws.append({"0": 0.0, "1": 1.0})  # exact 0 and 1 (floats, not bools)
        self.assert_same_as_rows(raws, [4] * len(raws))

    def test_first_bad_histogram_raises_its_own_error(self) -> None:
        base = _job(np.random.default_rng(3), 8)
        for bad in ("0.1", True, False, None, float("nan"), [0.1], 10**400):
            raws = [dict(h) for h in base]
            for pos in (6, 2):  # two bad circuits: the first in order raises
                key = next(iter(raws[pos]))
                raws[pos][key] = bad
            with self.subTest(bad=bad):
                with self.assertRaises(IonQResponseError) as want:
                    parse_histogram_arrays(raws[2], 4, "job j child 2")
                with self.assertRaises(IonQResponseError) as got:
                    parse_histogram_groups(raws, [4] * 8, [f"job j child {i}" for i in range(8)])
                self.assertEqual(str(got.exception), str(want.exception))
        # A row that fits fewer qubits than its outcomes, a sum off, a negative: refused.
        for raws, nqs in (
            (base, [4, 4, 4, 3, 4, 4, 4, 4]),
            (base[:3] + [_decoded({"0": 0.5, "1": 0.4})] + base[3:], [4] * 9),
            (base[:1] + [_decoded({"0": 1.2, "1": -0.2})], [4] * 2),
            (base[:1] + [{}], [4] * 2),
        ):
            with self.assertRaises(IonQResponseError):
                parse_histogram_groups(raws, nqs, ["w"] * len(raws))


class TestCountMatrix(unittest.TestCase):
    def assert_rows(self, weights: np.ndarray, shots: int, **kw) -> None:
        got = count_matrix(weights, shots, **kw)
        self.assertEqual(len(got), len(weights))
        for r, row in enumerate(weights):
            want = count_array(row, shots, **kw)
            if want is None:
                self.assertIsNone(got[r])
            else:
                np.testing.assert_array_equal(got[r], want)  # the same counts, bit for bit

    def test_seeded_sampler_and_rounding_equal_the_rows(self) -> None:
        rng = np.random.default_rng(4)
        for size in (1, 3, 17, 256):
            weights = rng.dirichlet(np.ones(size), 40)
            weights[3] = 0.0  # nothing to count
            weights[5, 0] = 0.0
            for shots in (1, 100, 1024):
                for seed in (0, 1234):
                    self.assert_rows(weights, shots, use_sampler=True, sampler_seed=seed)
                self.assert_rows(weights, shots, use_sampler=False)  # incl. repaired totals

    def test_sums_and_unseeded(self) -> None:
        weights = np.random.default_rng(5).dirichlet(np.ones(8), 30)
        for kw in ({"use_sampler": True}, {"use_sampler": True, "sampler_seed": 9}, {"use_sampler": False}):
            for counts in count_matrix(weights, 500, **kw):
                self.assertEqual(int(counts.sum()), 500)

    def test_bad_rows_raise_as_count_array(self) -> None:
        weights = np.random.default_rng(6).dirichlet(np.ones(4), 5)
        weights[2] = [0.7, -0.1, 0.2, 0.2]  # a negative weight: choice's own check
        with self.assertRaises(ValueError) as want:
            count_array(weights[2], 100, use_sampler=True, sampler_seed=1)
        with self.assertRaises(ValueError) as got:
            count_matrix(weights, 100, use_sampler=True, sampler_seed=1)
        self.assertEqual(str(got.exception), str(want.exception))
        self.assertEqual(count_matrix(np.empty((3, 0)), 10, use_sampler=False), [None] * 3)
        self.assertEqual(count_matrix(weights, 0, use_sampler=False), [None] * 5)


if __name__ == "__main__":
    unittest.main()


class TestPositiveCountRows(unittest.TestCase):
    def test_equals_positive_counts_per_row(self) -> None:
        from qstore_qiskit.client.counts import positive_count_rows, positive_counts

        rng = np.random.default_rng(4)
        outcomes = rng.permutation(64).astype(np.int64)
        weights = rng.dirichlet(np.full(64, 0.3), size=40)  # many bins empty after counting
        for rows in (
            count_matrix(weights, 100, use_sampler=True, sampler_seed=9),
            count_matrix(weights, 100, use_sampler=False),
            [None, *count_matrix(weights[:3], 100, use_sampler=True, sampler_seed=9)],  # a row without counts
            [],
        ):
            got = positive_count_rows(outcomes, rows)
            want = [positive_counts(outcomes, c) for c in rows]
            self.assertEqual(len(got), len(want))
            for (k1, v1), (k2, v2) in zip(got, want):
                np.testing.assert_array_equal(k1, k2)
                np.testing.assert_array_equal(v1, v2)
                self.assertEqual((k1.dtype, v1.dtype), (k2.dtype, v2.dtype))
