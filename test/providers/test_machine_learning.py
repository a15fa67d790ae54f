"""qiskit-machine-learning on qstore backends: correct gradients, training, template reuse."""

from __future__ import annotations

import math

import numpy as np
from qiskit.circuit.library import real_amplitudes, zz_feature_map
from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2, StatevectorEstimator, StatevectorSampler
from qiskit_machine_learning.algorithms import NeuralNetworkClassifier
from qiskit_machine_learning.neural_networks import EstimatorQNN, SamplerQNN
from qiskit_machine_learning.optimizers import OptimizerResult
from qiskit.transpiler import generate_preset_pass_manager

import qstore_qiskit
from qstore_qiskit import QStoreProvider
from qstore_qiskit.primitives import EstimatorV2, SamplerV2

from .helpers import ProviderTestCase


def gradient_descent(steps: int, learning_rate: float, trace: list):
    """A plain full-batch gradient-descent minimizer (qiskit-ml's callable protocol)."""

    def minimize(fun, x0, jac=None, bounds=None):
        x = np.asarray(x0, dtype=float)
        trace.append(float(fun(x)))
        for _ in range(steps):
            x = x - learning_rate * np.asarray(jac(x), dtype=float).reshape(x.shape)
            trace.append(float(fun(x)))
        result = OptimizerResult()
        result.x, result.fun = x, trace[-1]
        return result

    return minimize


def toy_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (8, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1, -1)
    return X, y


class _Circuit:
    def setUp(self):
        self.feature_map = zz_feature_map(2, reps=1)
        self.ansatz = real_amplitudes(2, reps=1)
        self.circuit = self.feature_map.compose(self.ansatz)
        self.x = np.array([[0.3, -0.5], [0.8, 0.1]])
        self.w = np.array([0.1, 0.2, 0.3, 0.4])


class TestGradients(_Circuit, ProviderTestCase):
    def test_estimator_qnn_matches_statevector(self):
        reference = EstimatorQNN(
            circuit=self.circuit, input_params=self.feature_map.parameters,
            weight_params=self.ansatz.parameters, estimator=StatevectorEstimator(),
            default_precision=0.0,  # exact: qiskit-ml's default 1/64 adds unseeded noise
        )
        ref_forward = reference.forward(self.x, self.w)
        _, ref_grad = reference.backward(self.x, self.w)
        estimator = BackendEstimatorV2(backend=self.backend, options={"seed_simulator": 7, "default_precision": 0.01})
        qnn = EstimatorQNN(
            circuit=self.circuit, input_params=self.feature_map.parameters,
            weight_params=self.ansatz.parameters, estimator=estimator,
            pass_manager=qstore_qiskit.generate_ionq_pass_manager(self.backend),
        )
        forward = qnn.forward(self.x, self.w)
        _, grad = qnn.backward(self.x, self.w)
        np.testing.assert_allclose(forward, ref_forward, atol=0.06)
        self.assertEqual(grad.shape, ref_grad.shape)
        # A native-gate parameterized circuit would give silently wrong (or zero)
        # parameter-shift gradients; ours must match the exact ones.
        np.testing.assert_allclose(grad, ref_grad, atol=0.06)
        self.assertGreater(np.abs(grad).max(), 0.1)

    def test_sampler_qnn_matches_statevector(self):
        circuit = self.circuit.copy()
        circuit.measure_all()

        def parity(bits: int) -> int:
            return bin(bits).count("1") % 2

        kwargs = dict(
            input_params=self.feature_map.parameters, weight_params=self.ansatz.parameters,
            interpret=parity, output_shape=2,
        )
        reference = SamplerQNN(circuit=circuit, sampler=StatevectorSampler(default_shots=200_000, seed=1), **kwargs)
        sampler = BackendSamplerV2(backend=self.backend, options={"seed_simulator": 3, "default_shots": 10_000})
        qnn = SamplerQNN(
            circuit=circuit, sampler=sampler,
            pass_manager=qstore_qiskit.generate_ionq_pass_manager(self.backend), **kwargs,
        )
        np.testing.assert_allclose(qnn.forward(self.x, self.w), reference.forward(self.x, self.w), atol=0.05)
        _, grad = qnn.backward(self.x, self.w)
        _, ref_grad = reference.backward(self.x, self.w)
        np.testing.assert_allclose(grad, ref_grad, atol=0.06)


class TestPresetPassManager(_Circuit, ProviderTestCase):
    """Qiskit's own ``generate_preset_pass_manager(backend=...)``: exact gradients (the
    parameters sit in virtual rz only) equal to the package's own pass manager's."""

    def qnn(self, pass_manager):
        estimator = BackendEstimatorV2(backend=self.backend, options={"seed_simulator": 7, "default_precision": 0.01})
        return EstimatorQNN(
            circuit=self.circuit, input_params=self.feature_map.parameters,
            weight_params=self.ansatz.parameters, estimator=estimator, pass_manager=pass_manager,
        )

    def test_estimator_qnn_preset_equals_own_path(self):
        reference = EstimatorQNN(
            circuit=self.circuit, input_params=self.feature_map.parameters,
            weight_params=self.ansatz.parameters, estimator=StatevectorEstimator(),
            default_precision=0.0,  # exact: qiskit-ml's default 1/64 adds unseeded noise
        )
        _, exact = reference.backward(self.x, self.w)
        own = self.qnn(qstore_qiskit.generate_ionq_pass_manager(self.backend))
        _, own_grad = own.backward(self.x, self.w)
        for level in range(4):
            with self.subTest(level=level):
                preset = self.qnn(generate_preset_pass_manager(optimization_level=level, backend=self.backend))
                forward = preset.forward(self.x, self.w)
                _, grad = preset.backward(self.x, self.w)
                np.testing.assert_allclose(forward, reference.forward(self.x, self.w), atol=0.06)
                # 10,000 shots per term: a difference of a gradient entry has std ~0.01.
                np.testing.assert_allclose(grad, own_grad, atol=0.06)
                np.testing.assert_allclose(grad, exact, atol=0.06)

    def test_sampler_qnn_preset(self):
        sampler = BackendSamplerV2(backend=self.backend, options={"seed_simulator": 3, "default_shots": 4000})
        qnn = SamplerQNN(
            circuit=self.circuit, input_params=self.feature_map.parameters, weight_params=self.ansatz.parameters,
            sampler=sampler, pass_manager=generate_preset_pass_manager(1, backend=self.backend),
        )
        reference = SamplerQNN(
            circuit=self.circuit, input_params=self.feature_map.parameters, weight_params=self.ansatz.parameters,
            sampler=StatevectorSampler(default_shots=20_000, seed=1),
        )
        np.testing.assert_allclose(qnn.forward(self.x, self.w), reference.forward(self.x, self.w), atol=0.05)
        np.testing.assert_allclose(qnn.backward(self.x, self.w)[1], reference.backward(self.x, self.w)[1], atol=0.06)


class TestNativePrimitives(_Circuit, ProviderTestCase):
    """qiskit-machine-learning unchanged on :mod:`qstore_qiskit.primitives`."""

    def test_estimator_qnn(self):
        reference = EstimatorQNN(
            circuit=self.circuit, input_params=self.feature_map.parameters,
            weight_params=self.ansatz.parameters, estimator=StatevectorEstimator(),
            default_precision=0.0,  # exact: qiskit-ml's default 1/64 adds unseeded noise
        )
        for name, pm in (("none", None), ("preset", generate_preset_pass_manager(1, backend=self.backend))):
            with self.subTest(pass_manager=name):
                qnn = EstimatorQNN(
                    circuit=self.circuit, input_params=self.feature_map.parameters,
                    weight_params=self.ansatz.parameters, pass_manager=pm,
                    estimator=EstimatorV2(self.backend, seed=4, default_precision=0.01),
                )
                np.testing.assert_allclose(qnn.forward(self.x, self.w), reference.forward(self.x, self.w), atol=0.06)
                _, grad = qnn.backward(self.x, self.w)
                np.testing.assert_allclose(grad, reference.backward(self.x, self.w)[1], atol=0.06)
                self.assertGreater(np.abs(grad).max(), 0.1)

    def test_sampler_qnn(self):
        reference = SamplerQNN(
            circuit=self.circuit, input_params=self.feature_map.parameters, weight_params=self.ansatz.parameters,
            sampler=StatevectorSampler(default_shots=20_000, seed=1),
        )
        for name, pm in (("none", None), ("preset", generate_preset_pass_manager(1, backend=self.backend))):
            with self.subTest(pass_manager=name):
                qnn = SamplerQNN(
                    circuit=self.circuit, input_params=self.feature_map.parameters,
                    weight_params=self.ansatz.parameters, pass_manager=pm,
                    sampler=SamplerV2(self.backend, seed=2, default_shots=4000),
                )
                np.testing.assert_allclose(qnn.forward(self.x, self.w), reference.forward(self.x, self.w), atol=0.05)
                _, grad = qnn.backward(self.x, self.w)
                np.testing.assert_allclose(grad, reference.backward(self.x, self.w)[1], atol=0.06)


class TestTraining(ProviderTestCase):
    def test_classifier_trains_with_template_hits(self):
        provider = QStoreProvider(local_profile="instant")
        try:
            backend = provider.get_backend()
            X, y = toy_data()
            feature_map, ansatz = zz_feature_map(2, reps=1), real_amplitudes(2, reps=1)
            estimator = BackendEstimatorV2(backend=backend, options={"seed_simulator": 7, "default_precision": 1 / 32})
            qnn = EstimatorQNN(
                circuit=feature_map.compose(ansatz), input_params=feature_map.parameters,
                weight_params=ansatz.parameters, estimator=estimator,
                pass_manager=qstore_qiskit.generate_ionq_pass_manager(backend),
            )
            losses: list[float] = []
            classifier = NeuralNetworkClassifier(
                qnn, optimizer=gradient_descent(3, 0.5, losses), initial_point=np.full(ansatz.num_parameters, 0.3)
            )
            classifier.fit(X, y)
            self.assertEqual(len(losses), 4)
            self.assertTrue(all(math.isfinite(v) for v in losses))
            self.assertLess(losses[-1], losses[0])
            predictions = classifier.predict(X)
            self.assertEqual(predictions.shape[0], len(X))
            stats = backend.performance_stats()
            cache = stats["circuit_cache"]
            # 3 gradient steps x (8 forward + 8 x 8 shifted) + 4 losses x 8 + 8 predictions.
            self.assertGreater(stats["total_circuits"], 200)
            self.assertLessEqual(cache["compiles"], 2)
            self.assertGreater(cache["template_hit_rate"], 0.98)
            self.assertEqual(stats["results_received"], stats["total_circuits"])
        finally:
            provider.close()
