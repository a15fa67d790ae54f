"""Shot expansion and bit packing: the whole-PUB array paths equal the per-row ones."""

from __future__ import annotations

import unittest
from types import SimpleNamespace

import numpy as np

from qstore_qiskit.client.results import CircuitResult
from qstore_qiskit.primitives._run import pack_bits, remap, shot_outcomes, shot_table


def _result(counts: dict[int, int], arrays: bool) -> CircuitResult:
    result = CircuitResult(
        probabilities={k: 1 / len(counts) for k in counts}, counts=dict(counts), shots=sum(counts.values()),
        job_id="j", child_job_id=None, num_qubits=4, circuit_index=0,
    )
    if arrays:
        result.count_arrays = (np.fromiter(counts, np.int64), np.fromiter(counts.values(), np.int64))
    return result


def _pairs(rng: np.random.Generator, n: int, shots: int, maps: list[list]) -> list:
    pairs = []
    for k in range(n):
        keys = rng.permutation(16)[: int(rng.integers(1, 17))]
        split = np.sort(rng.integers(0, shots + 1, len(keys) - 1))
        reps = np.diff(np.concatenate([[0], split, [shots]]))
        counts = {int(a): int(b) for a, b in zip(keys, reps) if b}
        pairs.append((SimpleNamespace(meas_map=maps[k % len(maps)]), _result(counts, arrays=k % 2 == 0)))
    return pairs


class TestShotTable(unittest.TestCase):
    def test_equals_rows_of_shot_outcomes(self) -> None:
        rng = np.random.default_rng(3)
        for maps in ([[0, 1, 2, 3]], [[3, None, 0, 1], [0, 1, 2, 3]]):  # one / mixed maps
            pairs = _pairs(rng, 9, 100, maps)
            table = shot_table(pairs, 100, np.random.default_rng(0))
            rows = [shot_outcomes(p, r, 100, np.random.default_rng(0), shuffle=False) for p, r in pairs]
            np.testing.assert_array_equal(table, np.stack(rows))
            narrow = shot_table(pairs, 100, np.random.default_rng(0), np.uint8)  # built as bytes
            self.assertEqual(narrow.dtype, np.uint8)
            np.testing.assert_array_equal(narrow, table)

    def test_replaced_counts_win_over_kept_arrays(self) -> None:
        prepared = SimpleNamespace(meas_map=[0, 1])
        result = _result({0: 5, 3: 5}, arrays=True)
        result.counts = {1: 10}  # the dict is what the result says
        table = shot_table([(prepared, result)], 10, np.random.default_rng(0))
        np.testing.assert_array_equal(table, [[1] * 10])

    def test_counts_not_summing_to_shots_raise(self) -> None:
        prepared = SimpleNamespace(meas_map=[0, 1])
        pairs = [(prepared, _result({0: 5, 3: 5}, arrays=True)), (prepared, _result({1: 9}, arrays=False))]
        with self.assertRaises(ValueError):
            shot_table(pairs, 10, np.random.default_rng(0))

    def test_probabilities_only(self) -> None:
        result = _result({0: 1, 1: 1}, arrays=False)
        result.counts = None
        table = shot_table([(SimpleNamespace(meas_map=[0]), result)], 50, np.random.default_rng(1))
        self.assertEqual(table.shape, (1, 50))
        self.assertLessEqual(set(table.ravel().tolist()), {0, 1})


class TestPackBits(unittest.TestCase):
    @staticmethod
    def reference(outcomes: np.ndarray, bits: list[int]) -> np.ndarray:
        num_bytes = max((len(bits) + 7) // 8, 1)
        out = np.zeros(outcomes.shape + (num_bytes,), dtype=np.uint8)
        for j, b in enumerate(bits):  # register bit j -> byte (last = least significant)
            out[..., num_bytes - 1 - j // 8] |= (((outcomes.astype(np.int64) >> b) & 1) << (j % 8)).astype(np.uint8)
        return out

    def test_equals_reference(self) -> None:
        rng = np.random.default_rng(5)
        outcomes = rng.integers(0, 1 << 40, (3, 7, 11), dtype=np.int64)
        for bits in ([0], list(range(8)), list(range(3, 11)), list(range(20)), list(range(40)), [5, 1, 9, 0], []):
            with self.subTest(bits=bits):
                np.testing.assert_array_equal(pack_bits(outcomes, bits), self.reference(outcomes, bits))
        small = rng.integers(0, 256, (4, 9)).astype(np.uint8)  # the sampler's narrow type
        for bits in (list(range(8)), [2, 3], [7, 0]):
            np.testing.assert_array_equal(pack_bits(small, bits), self.reference(small, bits))
        for dtype in (np.uint16, np.uint32):  # read in their own width
            medium = rng.integers(0, 1 << 16, (4, 9)).astype(dtype)
            for bits in (list(range(16)), list(range(3, 12)), [15, 0]):
                np.testing.assert_array_equal(pack_bits(medium, bits), self.reference(medium, bits))

    def test_remap_table_and_loop_agree(self) -> None:
        rng = np.random.default_rng(2)
        outcomes = rng.integers(0, 1 << 20, 1000, dtype=np.int64)
        meas_map = [19, None, 0, 7, 18]  # wider than the lookup table covers
        want = np.zeros_like(outcomes)
        for clbit, qubit in enumerate(meas_map):
            if qubit is not None:
                want |= ((outcomes >> qubit) & 1) << clbit
        np.testing.assert_array_equal(remap(outcomes, meas_map), want)
        # Through the lookup table (measured qubits <= 16; higher qubits unmeasured and
        # ignored), in the default and in a narrow type.
        for meas_map in ([3, None, 0, 7, 15], [0, 1, 2, 3, 4, 5, 6, 7], []):
            want = np.zeros_like(outcomes)
            for clbit, qubit in enumerate(meas_map):
                if qubit is not None:
                    want |= ((outcomes >> qubit) & 1) << clbit
            got = remap(outcomes, meas_map)
            self.assertEqual(got.dtype, np.int64)
            np.testing.assert_array_equal(got, want)
            narrow = remap(outcomes, meas_map, np.uint8)
            self.assertEqual(narrow.dtype, np.uint8)
            np.testing.assert_array_equal(narrow, want.astype(np.uint8))


if __name__ == "__main__":
    unittest.main()
