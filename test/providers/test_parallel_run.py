"""``backend.run`` of many distinct circuits: the cache compiles them in parallel."""

from __future__ import annotations

import os
import unittest
from unittest import mock

from qiskit.circuit.random import random_circuit

from qstore_qiskit import QStoreProvider
from qstore_qiskit.transpiler import parallel

from ..cache.helpers import ansatz
from ..cache.test_batch_compile import HAS_FORK, _Patched
from .helpers import ProviderTestCase


def _distinct(count: int, width: int = 4):
    out = []
    for k in range(count):
        qc = random_circuit(width, 6, max_operands=2, seed=100 + k)
        qc.measure_all()
        qc.name = f"d{k}"
        out.append(qc)
    return out


@unittest.skipUnless(HAS_FORK, "needs os.fork")
class TestParallelRun(ProviderTestCase):
    def _fresh(self):
        # One backend (and so one empty template cache) per case, on the class's server.
        token, url = self.provider._credentials(self.backend)  # noqa: SLF001 - the class's server
        provider = QStoreProvider(token=token, url=url)
        self.addCleanup(provider.close)
        backend = provider.get_backend("ionq_simulator")
        backend.set_options(template_cache_dir=False)
        return backend

    def test_parallel_run_equals_serial_and_caches(self):
        circuits = _distinct(6)
        serial_backend = self._fresh()
        with mock.patch.dict(os.environ, {"QISKIT_NUM_PROCS": "1"}):
            serial = serial_backend.run(circuits, shots=300, sampler_seed=5)
        backend = self._fresh()
        with _Patched() as forks:
            job = backend.run(circuits, shots=300, sampler_seed=5)
        self.assertEqual(len(forks.pids), 1, "run() did not compile in a worker")
        self.assertEqual([p.body for p in job._prepared], [p.body for p in serial._prepared])  # noqa: SLF001
        self.assertEqual([p.name for p in job._prepared], [c.name for c in circuits])  # noqa: SLF001
        self.assertEqual(job.result().get_counts(), serial.result().get_counts())
        stats = backend._cache.stats()  # noqa: SLF001
        self.assertEqual((stats["compiles"], stats["templates"]), (6, 6))
        with _Patched() as forks:  # the worker-compiled templates are shared
            again = backend.run(circuits, shots=300, sampler_seed=5)
        self.assertEqual(forks.pids, [])
        self.assertEqual(backend._cache.stats()["compiles"], 6)  # noqa: SLF001
        self.assertEqual(again.result().get_counts(), serial.result().get_counts())

    def test_parameter_binds_compile_in_parallel(self):
        """The primitives' path: parameterized circuits with binds."""
        circuits = [ansatz(n, 2) for n in (2, 3, 4)]
        for c in circuits:
            c.measure_all()
        binds = [{p: [0.1 * (k + 1), 0.2 * (k + 1)] for k, p in enumerate(c.parameters)} for c in circuits]
        with mock.patch.dict(os.environ, {"QISKIT_NUM_PROCS": "1"}):
            serial = self._fresh().run(circuits, parameter_binds=binds, shots=200, sampler_seed=2)
        backend = self._fresh()
        with _Patched() as forks:
            job = backend.run(circuits, parameter_binds=binds, shots=200, sampler_seed=2)
        self.assertEqual(len(forks.pids), 1)
        self.assertEqual([p.body for p in job._prepared], [p.body for p in serial._prepared])  # noqa: SLF001
        self.assertEqual(job.result().get_counts(), serial.result().get_counts())
        self.assertEqual(backend._cache.stats()["compiles"], 3)  # noqa: SLF001

    def test_one_usable_core_is_serial(self):
        circuits = _distinct(4)
        backend = self._fresh()
        with _Patched(cores=1) as forks:
            job = backend.run(circuits, shots=100)
        self.assertEqual(forks.pids, [])
        self.assertEqual(parallel.usable_cores(), len(os.sched_getaffinity(0)))
        self.assertEqual(len(job.result().get_counts()), 4)
        self.assertEqual(backend._cache.stats()["compiles"], 4)  # noqa: SLF001


if __name__ == "__main__":
    unittest.main()
