"""Shared helpers of the provider tests: exact distributions and tolerant comparisons."""

from __future__ import annotations

import math
import os
import unittest
from unittest import mock

from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from qstore_qiskit import QStoreProvider

from ..server.helpers import exact_counts_distribution as exact_distribution

__all__ = ["exact_distribution", "assert_counts_match", "ProviderTestCase", "bell", "asymmetric"]


def assert_counts_match(test: unittest.TestCase, counts: dict, exact: dict[str, float], shots: int, sigmas: float = 5.0):
    """Every outcome's frequency within ``sigmas`` binomial standard deviations of exact."""
    test.assertEqual(sum(counts.values()), shots)
    for key in set(counts) | set(exact):
        p = exact.get(key, 0.0)
        freq = counts.get(key, 0) / shots
        tol = sigmas * math.sqrt(max(p * (1 - p), 1.0 / shots) / shots) + 1e-9
        test.assertLessEqual(abs(freq - p), tol, f"outcome {key}: {freq:.4f} vs exact {p:.4f}; counts {counts}")


class ProviderTestCase(unittest.TestCase):
    """One embedded-server provider (profile ``instant``) for the whole class."""

    provider: QStoreProvider

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        # Never talk to IonQ's service from tests, whatever the environment says.
        cls._env = mock.patch.dict(os.environ, {}, clear=False)
        cls._env.start()
        for name in ("IONQ_API_KEY", "IONQ_API_TOKEN", "QISKIT_IONQ_API_TOKEN", "IONQ_API_URL"):
            os.environ.pop(name, None)
        cls.provider = QStoreProvider(local_profile="instant")
        cls.backend = cls.provider.get_backend("ionq_simulator")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.provider.close()
        cls._env.stop()
        super().tearDownClass()


def bell(measure: bool = True) -> QuantumCircuit:
    qc = QuantumCircuit(2, name="bell")
    qc.h(0)
    qc.cx(0, 1)
    if measure:
        qc.measure_all()
    return qc


def asymmetric(measure: bool = True) -> QuantumCircuit:
    """A 3-qubit circuit with an uneven distribution (catches bit-order mistakes)."""
    qc = QuantumCircuit(3, name="asym")
    qc.ry(0.7, 0)
    qc.cx(0, 1)
    qc.rx(1.9, 2)
    qc.cry(0.8, 2, 0)
    qc.rzz(0.6, 1, 2)
    qc.h(1)
    if measure:
        qc.measure_all()
    return qc


def ansatz(measure: bool) -> QuantumCircuit:
    """A 3-qubit, 3-parameter circuit with a shared parameter expression (``x0 + x2``)."""
    x = ParameterVector("x", 3)
    qc = QuantumCircuit(3, name="ansatz")
    qc.ry(x[0], 0)
    qc.rx(x[1], 1)
    qc.cx(0, 1)
    qc.crz(x[2], 1, 2)
    qc.h(2)
    qc.rzz(x[0] + x[2], 0, 2)
    if measure:
        qc.measure_all()
    return qc
