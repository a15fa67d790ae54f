"""qstore_qiskit.primitives.EstimatorV2 against exact expectation values."""

from __future__ import annotations

import math

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.primitives import BaseEstimatorV2, PrimitiveResult, PubResult, StatevectorEstimator
from qiskit.quantum_info import PauliList, SparsePauliOp

from qstore_qiskit.primitives import EstimatorV2

from .helpers import ProviderTestCase, ansatz, count_runs, no_bound_circuits, random_values

OBSERVABLES = SparsePauliOp.from_list([("ZZI", 0.7), ("IXX", -0.4), ("YIZ", 0.9), ("IIZ", 0.3)])


def exact(circuit, observables, values):
    return StatevectorEstimator().run([(circuit, observables, values)]).result()[0].data.evs


class TestEstimatorV2(ProviderTestCase):
    def test_is_a_base_estimator(self):
        self.assertIsInstance(EstimatorV2(self.backend), BaseEstimatorV2)

    def test_expectation_values_logical_and_isa(self):
        circuit = ansatz(measure=False)
        values = random_values((2, 3), 3)
        reference = exact(circuit, OBSERVABLES, values)
        estimator = EstimatorV2(self.backend, seed=5)
        isa = transpile(circuit, self.backend)
        for name, qc, obs in (("logical", circuit, OBSERVABLES), ("isa", isa, OBSERVABLES.apply_layout(isa.layout))):
            with self.subTest(input=name), no_bound_circuits():
                result = estimator.run([(qc, obs, values)], precision=0.02).result()
            self.assertIsInstance(result, PrimitiveResult)
            pub = result[0]
            self.assertIsInstance(pub, PubResult)
            self.assertEqual(pub.data.evs.shape, (2, 3))
            self.assertEqual(pub.metadata["shots"], math.ceil(1 / 0.02**2))
            self.assertTrue(pub.metadata["ionq_job_ids"])
            self.assertTrue(np.all(np.abs(pub.data.evs - reference) < 5 * np.maximum(pub.data.stds, 0.02)),
                            f"{pub.data.evs} vs {reference}")

    def test_broadcasting(self):
        circuit = ansatz(measure=False)
        observables = [[SparsePauliOp("ZZZ")], [SparsePauliOp("XIX")], [SparsePauliOp("IYY")]]  # shape (3, 1)
        values = random_values((4,), 3, seed=3)  # shape (4,)
        pub = EstimatorV2(self.backend, seed=1).run([(circuit, observables, values)], precision=0.02).result()[0]
        reference = exact(circuit, observables, values)
        self.assertEqual(pub.data.evs.shape, (3, 4))
        np.testing.assert_allclose(pub.data.evs, reference, atol=0.1)

    def test_circuits_per_parameter_set_equal_commuting_groups(self):
        rng = np.random.default_rng(7)
        labels = sorted({"".join(rng.choice(list("IXYZ"), 6)) for _ in range(40)})[:20]
        observables = SparsePauliOp(labels, rng.uniform(-1, 1, len(labels)))
        groups = len(PauliList(labels).group_commuting(qubit_wise=True))
        qc = QuantumCircuit(6)
        qc.h(range(6))
        for q in range(5):
            qc.cx(q, q + 1)
        qc.ry(0.3, range(6))
        with count_runs(self.backend) as calls:
            pub = EstimatorV2(self.backend, seed=2).run([(qc, observables)], precision=0.03).result()[0]
        self.assertEqual(len(calls), 1)  # one submission
        self.assertEqual(calls[0][1], groups)  # one circuit per commuting group
        self.assertEqual(pub.metadata["num_bases"], groups)
        self.assertLess(abs(float(pub.data.evs) - float(exact(qc, observables, None))), 0.15)

    def test_precision_must_be_positive(self):
        with self.assertRaisesRegex(ValueError, "precision"):
            EstimatorV2(self.backend).run([(ansatz(False), OBSERVABLES, [0.1, 0.2, 0.3])], precision=0.0)
