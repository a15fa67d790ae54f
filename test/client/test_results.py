"""Histogram validation: the array path accepts exactly what the per-entry path accepts."""

from __future__ import annotations

import json
import unittest

import numpy as np

from qstore_qiskit.client.exceptions import IonQResponseError
from qstore_qiskit.client.results import CircuitResult, parse_histogram, parse_histogram_arrays


def _decoded(hist: dict) -> dict:
    return json.loads(json.dumps(hist))  # as it arrives: string keys


class TestParseHistogramArrays(unittest.TestCase):
    def assert_same(self, raw, num_qubits: int) -> None:
        want = parse_histogram(raw, num_qubits, "job j")
        outcomes, probs = parse_histogram_arrays(raw, num_qubits, "job j")
        self.assertEqual(outcomes.dtype, np.int64)
        self.assertEqual(probs.dtype, np.float64)
        self.assertEqual(dict(zip(outcomes.tolist(), probs.tolist())), want)
        self.assertEqual(outcomes.tolist(), list(want))  # the service's order

    def assert_refused(self, raw, num_qubits: int) -> None:
        with self.assertRaises(IonQResponseError) as want:
            parse_histogram(raw, num_qubits, "job j")
        with self.assertRaises(IonQResponseError) as got:
            parse_histogram_arrays(raw, num_qubits, "job j")
        self.assertEqual(str(got.exception), str(want.exception))

    def test_valid_histograms(self) -> None:
        rng = np.random.default_rng(7)
        for size in (1, 2, 5, 256):
            probs = rng.dirichlet(np.ones(size))
            keys = rng.permutation(256)[:size]
            raw = _decoded({str(k): p for k, p in zip(keys, probs)})
            self.assert_same(raw, 8)
            self.assert_same(raw, 8)  # again: the key list is now cached
        self.assert_same({"0": 1}, 1)  # an integer probability is a float 1.0
        self.assert_same({"0": 0.5, "1": 0.5 + 1e-4}, 1)  # within the sum tolerance
        self.assert_same({"0": 1.0, "1": -1e-7}, 1)  # tiny negative: tolerated
        self.assert_same({str(2**62): 1.0}, 63)  # wide circuits
        self.assert_same({"3": 0.5, "01": 0.5}, 2)  # another spelling, distinct outcomes

    def test_tampered_histograms_raise_the_same_errors(self) -> None:
        full = _decoded({str(i): 1 / 16 for i in range(16)})
        parse_histogram_arrays(full, 4, "job j")  # caches this key list
        self.assert_refused(full, 3)  # outcomes beyond the circuit's qubits
        for bad in ("0.0625", True, None, float("nan"), float("inf"), [0.1], 10**400):
            raw = dict(full)
            raw["5"] = bad
            self.assert_refused(raw, 4)
        for raw in (
            {},
            [],
            "0.5",
            {"a": 1.0},
            {"1.5": 1.0},
            {"-1": 1.0},
            {"1": 0.5, "01": 0.5},  # one outcome twice
            {"0": 1.2, "1": -0.2},  # negative probability
            {"0": 0.5, "1": 0.4},  # does not sum to 1
            {str(2**70): 1.0},  # beyond int64 and the qubit count
        ):
            with self.subTest(raw=raw):
                self.assert_refused(raw, 4)

    def test_key_cache_is_bounded(self) -> None:
        from qstore_qiskit.client import results

        for n in range(1, 100):
            parse_histogram_arrays({str(i): 1 / n for i in range(n)}, 8, "job j")
        self.assertLessEqual(len(results._keys_cache), results._KEYS_CACHE_SIZE)


class TestLazyCircuitResult(unittest.TestCase):
    """``CircuitResult.from_arrays``: dicts built on first read, equal to eager ones."""

    def setUp(self) -> None:
        self.outcomes = np.array([3, 0, 2], dtype=np.int64)
        self.probs = np.array([0.5, 0.25, 0.25])
        self.counts = (np.array([3, 0, 2], dtype=np.int64), np.array([6, 2, 2], dtype=np.int64))
        self.fields = dict(shots=10, job_id="j", child_job_id="c", num_qubits=2, circuit_index=4)

    def lazy(self) -> CircuitResult:
        return CircuitResult.from_arrays((self.outcomes, self.probs), self.counts, **self.fields)

    def test_equals_the_eager_result(self) -> None:
        eager = CircuitResult(probabilities={3: 0.5, 0: 0.25, 2: 0.25}, counts={3: 6, 0: 2, 2: 2}, **self.fields)
        lazy = self.lazy()
        self.assertEqual(lazy, eager)
        self.assertEqual(list(lazy.probabilities), [3, 0, 2])  # the service's order
        self.assertEqual(lazy.get_counts(), {"11": 6, "00": 2, "10": 2})
        self.assertEqual(repr(lazy), repr(eager))

    def test_same_state_as_the_dataclass_path(self) -> None:
        # from_arrays writes the instance dict directly: the same keys, values and order
        # as building through __init__ and assigning the arrays.
        for fields in (self.fields, {**self.fields, "name": "n", "metadata": {"k": "v"}}):
            for counts in (self.counts, None):
                slow = CircuitResult(probabilities=None, counts=None, **fields)  # type: ignore[arg-type]
                slow.probability_arrays = (self.outcomes, self.probs)
                slow.count_arrays = counts
                fast = CircuitResult.from_arrays((self.outcomes, self.probs), counts, **fields)
                self.assertEqual(list(vars(fast)), list(vars(slow)))
                self.assertEqual(repr(fast), repr(slow))
                self.assertEqual(fast, slow)
        self.assertIsNot(self.lazy().metadata, self.lazy().metadata)  # a dict each
        with self.assertRaises(TypeError):
            CircuitResult.from_arrays((self.outcomes, self.probs), None, shot=3, **self.fields)

    def test_no_dict_until_read(self) -> None:
        import pickle

        from qstore_qiskit.primitives._run import shot_table
        from types import SimpleNamespace

        lazy = self.lazy()
        table = shot_table([(SimpleNamespace(meas_map=[0, 1]), lazy)], 10, np.random.default_rng(0))
        self.assertEqual(sorted(table[0].tolist()), [0, 0, 2, 2, 3, 3, 3, 3, 3, 3])
        self.assertIsNone(lazy.__dict__["_counts"])  # the sampler read only the arrays
        self.assertIsNone(lazy.__dict__["_probabilities"])
        copy = pickle.loads(pickle.dumps(lazy))  # the Ray gateway ships results pickled
        self.assertEqual(copy.counts, {3: 6, 0: 2, 2: 2})

    def test_assigning_counts_drops_the_arrays(self) -> None:
        from qstore_qiskit.primitives._run import count_arrays

        lazy = self.lazy()
        lazy.counts = {1: 10}
        self.assertIsNone(lazy.count_arrays)
        keys, reps = count_arrays(lazy, 10, np.random.default_rng(0))
        self.assertEqual((keys.tolist(), reps.tolist()), ([1], [10]))

    def test_probabilities_only(self) -> None:
        from qstore_qiskit.primitives._run import count_arrays

        lazy = CircuitResult.from_arrays((self.outcomes, self.probs), None, **self.fields)
        self.assertIsNone(lazy.counts)
        keys, reps = count_arrays(lazy, 1000, np.random.default_rng(1))
        self.assertEqual(int(reps.sum()), 1000)
        self.assertTrue(set(keys.tolist()) <= {0, 2, 3})
        self.assertIsNone(lazy.__dict__["_probabilities"])  # sampled from the arrays


if __name__ == "__main__":
    unittest.main()
