"""qstore_qiskit.primitives.SamplerV2 against exact distributions."""

from __future__ import annotations

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, transpile
from qiskit.circuit import Parameter
from qiskit.primitives import BaseSamplerV2, PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers import BitArray

from qstore_qiskit.primitives import SamplerV2

from .helpers import (
    ProviderTestCase,
    ansatz,
    assert_counts_match,
    count_runs,
    exact_distribution,
    no_bound_circuits,
    random_values,
)

SHOTS = 3000


class TestSamplerV2(ProviderTestCase):
    def test_is_a_base_sampler(self):
        self.assertIsInstance(SamplerV2(self.backend), BaseSamplerV2)

    def test_bindings_of_any_shape(self):
        circuit = ansatz(measure=True)
        values = random_values((2, 3), 3)
        sampler = SamplerV2(self.backend, seed=11)
        for name, qc in (("logical", circuit), ("isa", transpile(circuit, self.backend))):
            with self.subTest(input=name), no_bound_circuits():
                result = sampler.run([(qc, values)], shots=SHOTS).result()
            self.assertIsInstance(result, PrimitiveResult)
            pub = result[0]
            self.assertIsInstance(pub, SamplerPubResult)
            self.assertIsInstance(pub.data.meas, BitArray)
            self.assertEqual(pub.data.meas.shape, (2, 3))
            self.assertEqual(pub.data.meas.num_shots, SHOTS)
            for index in np.ndindex(2, 3):
                exact = exact_distribution(circuit.assign_parameters(values[index]))
                assert_counts_match(self, pub.data.meas.get_counts(index), exact, SHOTS)

    def test_one_submission_per_call(self):
        circuit = ansatz(measure=True)
        bell = QuantumCircuit(2)
        bell.h(0)
        bell.cx(0, 1)
        bell.measure_all()
        sampler = SamplerV2(self.backend, seed=3)
        with count_runs(self.backend) as calls:
            result = sampler.run([(circuit, random_values((4,), 3)), bell, (circuit, random_values((2,), 3, 1))]).result()
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0][1], 4 + 1 + 2)
        self.assertEqual([r.data.meas.shape for r in result], [(4,), (), (2,)])
        self.assertTrue(result.metadata["ionq_job_ids"])
        for pub in result:
            self.assertTrue(set(pub.metadata["ionq_job_ids"]) <= set(result.metadata["ionq_job_ids"]))

    def test_split_at_circuit_cap_keeps_order(self):
        # ry(theta) with theta in {0, pi}: each binding has one certain outcome, so a
        # result attached to the wrong binding shows.
        theta = Parameter("t")
        qc = QuantumCircuit(1, 1)
        qc.ry(theta, 0)
        qc.measure(0, 0)
        # The instant profile caps multicircuit jobs at 1,000 circuits (GET /backends).
        bits = np.random.default_rng(2).integers(0, 2, 2517)
        sampler = SamplerV2(self.backend, seed=1)
        pub = sampler.run([(qc, (np.pi * bits)[:, None])], shots=10).result()[0]
        self.assertGreater(len(pub.metadata["ionq_job_ids"]), 1)  # several IonQ jobs
        got = np.array([pub.data.c.get_counts(i).get("1", 0) == 10 for i in range(len(bits))])
        np.testing.assert_array_equal(got, bits.astype(bool))

    def test_large_run_collects_once_its_payloads_are_freed(self):
        # A run of >= 100 circuits makes the middle-generation collection itself, after
        # its payloads are released: when it runs, no payload dict of the run is alive
        # (no more MS gate dicts than before the run: other tests' may live on). A small
        # run leaves the collector to the interpreter.
        import gc
        from unittest import mock

        from qstore_qiskit.primitives import _run

        circuit = ansatz(measure=True)
        sampler = SamplerV2(self.backend, seed=5)
        seen: list[tuple[int, int]] = []

        def ms_dicts() -> int:
            # MS gate dicts hold lists, so the collector tracks them: any alive shows here.
            return sum(1 for o in gc.get_objects() if type(o) is dict and o.get("gate") == "ms")

        def collect(generation: int = 2) -> int:
            seen.append((generation, ms_dicts()))
            return gc.collect(generation)

        spy = mock.Mock(wraps=gc)
        spy.collect = collect
        for sets, calls in ((2, 0), (_run._COLLECT_FROM, 1)):
            seen.clear()
            gc.collect()
            before = ms_dicts()
            with self.subTest(sets=sets), mock.patch.object(_run, "gc", spy):
                pub = sampler.run([(circuit, random_values((sets,), 3))], shots=16).result()[0]
                self.assertEqual(pub.data.meas.shape, (sets,))
                ours = [entry for entry in seen if entry[0] == 1]
                self.assertEqual(len(ours), calls, seen)
                for _, alive in ours:
                    self.assertLessEqual(alive, before)

    def test_registers_and_seed(self):
        qr = QuantumRegister(3)
        a, b = ClassicalRegister(1, "a"), ClassicalRegister(2, "b")
        qc = QuantumCircuit(qr, a, b)
        qc.x(0)
        qc.h(1)
        qc.cx(1, 2)
        qc.measure(0, a[0])
        qc.measure([1, 2], b)
        first = SamplerV2(self.backend, seed=9).run([qc], shots=400).result()[0]
        second = SamplerV2(self.backend, seed=9).run([qc], shots=400).result()[0]
        self.assertEqual(first.data.a.get_counts(), {"1": 400})
        self.assertEqual(set(first.data.b.get_counts()), {"00", "11"})
        np.testing.assert_array_equal(first.data.b.array, second.data.b.array)

    def test_bad_pub(self):
        with self.assertRaises(ValueError):
            SamplerV2(self.backend).run([(ansatz(True), [1.0, 2.0])])  # 2 values for 3 parameters
        with self.assertRaisesRegex(ValueError, "'shots'"):
            SamplerV2(self.backend, options={"shots": 5})


class TestSamplerShotStatistics(ProviderTestCase):
    """The whole-PUB shot paths (one matrix of counts, one expansion, one shuffle of every
    row) against exact distributions, with fixed seeds: counts, not times."""

    def test_many_sets_match_exact_and_shots_are_shuffled(self):
        circuit = ansatz(measure=True)
        values = random_values((60,), 3, 4)
        shots = 2000
        result = SamplerV2(self.backend, seed=21).run([(circuit, values)], shots=shots).result()[0]
        bits = result.data.meas
        self.assertEqual((bits.shape, bits.num_shots), ((60,), shots))
        outcomes = bits.array[..., -1]  # 3 clbits: one byte per shot
        first_half = np.zeros(8)
        second_half = np.zeros(8)
        for i in range(60):
            exact = exact_distribution(circuit.assign_parameters(values[i]))
            p = np.array([exact.get(format(k, "03b"), 0.0) for k in range(8)])
            freq = np.bincount(outcomes[i], minlength=8) / shots
            # TVD of 2,000 shots over 8 outcomes: about 0.03 expected; 0.08 is > 5 sigma.
            self.assertLess(0.5 * np.abs(freq - p).sum(), 0.08, f"set {i}")
            first_half += np.bincount(outcomes[i, : shots // 2], minlength=8)
            second_half += np.bincount(outcomes[i, shots // 2 :], minlength=8)
        # Shot order carries no information: the first and second halves of every row
        # hold the same distribution (an unshuffled expansion puts the low outcomes
        # first). Chi-square of the 2 x 8 table, 7 degrees of freedom: 99.99% < 29.9.
        table = np.stack([first_half, second_half])
        expected = table.sum(axis=0, keepdims=True) * table.sum(axis=1, keepdims=True) / table.sum()
        keep = expected > 0
        chi2 = float((((table - expected) ** 2)[keep] / expected[keep]).sum())
        self.assertLess(chi2, 29.9)

    def test_counts_equal_the_backend_counts_and_seed_reproduces(self):
        circuit = ansatz(measure=True)
        values = random_values((25,), 3, 5)
        first = SamplerV2(self.backend, seed=8).run([(circuit, values)], shots=500).result()[0].data.meas
        again = SamplerV2(self.backend, seed=8).run([(circuit, values)], shots=500).result()[0].data.meas
        other = SamplerV2(self.backend, seed=9).run([(circuit, values)], shots=500).result()[0].data.meas
        np.testing.assert_array_equal(first.array, again.array)  # same seed: same bits
        self.assertFalse(np.array_equal(first.array, other.array))
        # The shots are the job's own integer counts (qiskit-ionq's seeded sampler),
        # expanded: the same binds through backend.run give the same counts per set.
        binds = [{p: values[:, j] for j, p in enumerate(circuit.parameters)}]
        job = self.backend.run([circuit], parameter_binds=binds, shots=500, sampler_seed=8)
        for i in range(25):
            self.assertEqual(first.get_counts(i), job.result().get_counts(i))
