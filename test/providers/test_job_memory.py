"""A finished job's circuits and results are freed by reference counting.

A job holds every prepared circuit (payload gate lists) and every circuit result of its
run. If the job took part in a reference cycle, all of them (some 50,000 objects for a
1,000-binding PUB) would wait for a full collection of Python's cyclic garbage collector:
memory held for nothing, and a full collection that walks the whole heap. These tests
run with the collector disabled, so only reference counting can free anything.
"""

from __future__ import annotations

import gc
import time
import weakref

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from .helpers import ProviderTestCase


def _freed(ref: weakref.ref, seconds: float = 10.0) -> bool:
    """Whether ``ref`` dies within ``seconds`` (the submitter's loop thread forgets its
    job record right after it delivers, possibly after the caller woke up)."""
    deadline = time.monotonic() + seconds
    while ref() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    return ref() is None


class TestJobMemory(ProviderTestCase):
    def setUp(self) -> None:
        super().setUp()
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.disable()

    def tearDown(self) -> None:
        if self._was_enabled:
            gc.enable()
        super().tearDown()

    def _circuit(self) -> QuantumCircuit:
        theta = Parameter("t")
        qc = QuantumCircuit(2)
        qc.rx(theta, 0)
        qc.cx(0, 1)
        qc.measure_all()
        return qc

    def test_run_job_freed_without_the_collector(self):
        qc = self._circuit()
        job = self.backend.run([qc], parameter_binds=[{qc.parameters[0]: np.linspace(0, 3, 20)}], shots=100)
        pairs = job.circuit_results()
        self.assertEqual(len(pairs), 20)
        job.result()  # the Qiskit Result too
        refs = [weakref.ref(job), weakref.ref(pairs[0][0]), weakref.ref(pairs[-1][1])]
        del job, pairs
        for ref in refs:
            self.assertTrue(_freed(ref), f"{ref} kept alive by a reference cycle")

    def test_performance_counters_still_recorded(self):
        self.backend.reset_performance_stats()
        qc = self._circuit()
        job = self.backend.run([qc], parameter_binds=[{qc.parameters[0]: [0.1, 0.2, 0.3]}], shots=10)
        job.result()
        del job
        deadline = time.monotonic() + 10
        while self.backend.performance_stats()["results_received"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(self.backend.performance_stats()["results_received"], 3)
