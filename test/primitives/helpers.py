"""Shared fixtures of the primitives tests: an embedded server and a call counter."""

from __future__ import annotations

import contextlib
from unittest import mock

import numpy as np
from qiskit import QuantumCircuit

from ..providers.helpers import ProviderTestCase, ansatz, assert_counts_match, exact_distribution

__all__ = ["ProviderTestCase", "assert_counts_match", "exact_distribution", "ansatz", "no_bound_circuits", "count_runs"]


@contextlib.contextmanager
def no_bound_circuits():
    """Fail if anything binds a QuantumCircuit (the primitives bind templates only)."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"assign_parameters called on circuit '{self.name}'")

    with mock.patch.object(QuantumCircuit, "assign_parameters", refuse):
        yield


@contextlib.contextmanager
def count_runs(backend):
    """Record ``(number of circuits, number of value sets)`` of each ``backend.run`` call."""
    calls: list[tuple[int, int]] = []
    original = backend.run

    def run(circuits, **options):
        binds = options.get("parameter_binds") or []
        sets = sum(max((len(next(iter(b.values()))) if b else 1), 1) for b in binds) if binds else len(circuits)
        calls.append((len(circuits), sets))
        return original(circuits, **options)

    with mock.patch.object(backend, "run", run):
        yield calls


def random_values(shape, n, seed=0):
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, (*shape, n))
