"""Distinct misses of one call compiled together, in forked workers
(:mod:`qstore_qiskit.cache.batch_compile`)."""

from __future__ import annotations

import os
import tempfile
import unittest
from unittest import mock

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit.random import random_circuit

from qstore_qiskit.cache import PersistentTemplateStore, TemplateCache
from qstore_qiskit.cache.compiler import default_compile
from qstore_qiskit.transpiler import parallel

from .helpers import ansatz

HAS_FORK = hasattr(os, "fork")


def _bound(count: int, width: int = 4, seed: int = 0) -> list[QuantumCircuit]:
    """Distinct bound circuits (distinct structures), measured."""
    out = []
    for k in range(count):
        qc = random_circuit(width, 6, max_operands=2, seed=seed + k)
        qc.measure_all()
        qc.name = f"c{k}"
        out.append(qc)
    return out


class _ForkCounter:
    """Wraps ``parallel._fork_worker``: counts forks and the pids it made."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self._real = parallel._fork_worker  # pylint: disable=protected-access

    def __call__(self, *args):
        pid, fd = self._real(*args)
        self.pids.append(pid)
        return pid, fd


def _parallel(cores: int = 2):
    """Make the cache's batches go parallel on a small test batch (or not, on 1 core)."""
    counter = _ForkCounter()
    patches = [
        mock.patch.object(parallel, "MIN_PARALLEL_OPS", 0),
        mock.patch.object(parallel, "_fork_worker", side_effect=counter),
        mock.patch.object(os, "sched_getaffinity", return_value=set(range(cores))),
        mock.patch.object(os, "getloadavg", return_value=(0.0, 0.0, 0.0)),  # an idle machine
    ]
    return counter, patches


class _Patched:
    def __init__(self, cores: int = 2) -> None:
        self.counter, self._patches = _parallel(cores)

    def __enter__(self) -> _ForkCounter:
        for p in self._patches:
            p.start()
        return self.counter

    def __exit__(self, *exc) -> None:
        for p in reversed(self._patches):
            p.stop()


def _failing_compile(circuit, device, level):
    if circuit.name == "bad":
        raise ValueError("cannot compile circuit 'bad'")
    return default_compile(circuit, device, level)


@unittest.skipUnless(HAS_FORK, "needs os.fork")
class TestBatchCompile(unittest.TestCase):
    def test_parallel_payloads_equal_serial_in_order_and_are_cached(self):
        circuits = _bound(6)
        serial_cache = TemplateCache()
        with mock.patch.dict(os.environ, {"QISKIT_NUM_PROCS": "1"}):
            serial = serial_cache.payload_many(circuits)
        cache = TemplateCache()
        with _Patched() as forks:
            bodies = cache.payload_many(circuits)
        self.assertEqual(len(forks.pids), 1, "the batch was not compiled in a worker")
        self.assertEqual(bodies, serial)  # same payloads, same order
        stats = cache.stats()
        self.assertEqual((stats["compiles"], stats["template_misses"], stats["template_hits"]), (6, 6, 0))
        self.assertEqual(stats["templates"], 6)
        self.assertGreater(stats["compile_seconds"], 0.0)
        self.assertEqual(stats["inflight"], 0)
        self.assertGreater(cache.miss_stats()["compile_seconds"], 0.0)
        # The worker-compiled templates serve the next call: nothing compiles or forks.
        with _Patched() as forks:
            again = cache.payload_many(circuits)
        self.assertEqual(forks.pids, [])
        self.assertEqual(again, serial)
        self.assertEqual(cache.stats()["compiles"], 6)
        self.assertEqual(cache.stats()["template_hits"], 6)
        # ... and single-circuit calls too.
        self.assertEqual(cache.payload(circuits[3]), serial[3])
        self.assertEqual(cache.stats()["compiles"], 6)

    def test_adaptive_lifting_decides_as_serially(self):
        """Same structure with other angles in one batch: exact first, then lifted;
        an exact repeat hits its exact entry (planning the batch first changes nothing)."""
        base = _bound(3)
        other = base[0].copy()  # an exact repeat
        shifted = base[0].copy()  # same structure, other angles
        for inst in shifted.data:
            if inst.operation.params and all(isinstance(p, float) for p in inst.operation.params):
                inst.operation.params = [p + 0.25 for p in inst.operation.params]
        circuits = [base[0], base[1], shifted, other, base[2]]
        serial_cache = TemplateCache()
        with mock.patch.dict(os.environ, {"QISKIT_NUM_PROCS": "1"}):
            serial = serial_cache.payload_many(circuits)
        cache = TemplateCache()
        with _Patched():
            bodies = cache.payload_many(circuits)
        self.assertEqual(bodies, serial)
        keys = ("compiles", "template_misses", "template_hits", "templates")
        self.assertEqual({k: cache.stats()[k] for k in keys}, {k: serial_cache.stats()[k] for k in keys})

    def test_one_usable_core_stays_serial(self):
        circuits = _bound(5)
        cache = TemplateCache()
        with _Patched(cores=1) as forks:
            bodies = cache.payload_many(circuits)
        self.assertEqual(forks.pids, [])
        self.assertEqual(cache.stats()["compiles"], 5)
        with mock.patch.dict(os.environ, {"QISKIT_NUM_PROCS": "1"}):
            self.assertEqual(bodies, TemplateCache().payload_many(circuits))

    def test_little_work_stays_serial(self):
        cache = TemplateCache()
        with mock.patch.object(os, "sched_getaffinity", return_value={0, 1}), mock.patch.object(
            os, "getloadavg", return_value=(0.0, 0.0, 0.0)
        ), mock.patch.object(
            parallel, "_fork_worker", side_effect=AssertionError("forked below the threshold")
        ):
            cache.payload_many(_bound(3))  # a few dozen instructions < MIN_PARALLEL_OPS
        self.assertEqual(cache.stats()["compiles"], 3)

    def test_worker_error_raises_in_order_and_keeps_the_others(self):
        circuits = _bound(5)
        circuits[1].name = "bad"  # the exact path compiles the circuit itself: name kept
        cache = TemplateCache(compile_fn=_failing_compile)
        with _Patched() as forks:
            with self.assertRaisesRegex(ValueError, "cannot compile circuit 'bad'"):
                cache.payload_many(circuits)
        self.assertEqual(len(forks.pids), 1)
        stats = cache.stats()
        self.assertEqual(stats["inflight"], 0)
        self.assertEqual(stats["compile_errors"], 1)
        self.assertEqual(stats["compiles"], 4)  # the good ones, compiled in the batch
        good = [c for c in circuits if c.name != "bad"]
        before = stats["compiles"]
        cache.payload_many(good)
        self.assertEqual(cache.stats()["compiles"], before)

    def test_get_templates_matches_get_template(self):
        circuits = [ansatz(n, 2) for n in (3, 4, 5)] + _bound(2, seed=40)
        reference = TemplateCache()
        expected = [reference.get_template(c) for c in circuits]
        cache = TemplateCache()
        with _Patched() as forks:
            got = cache.get_templates(circuits)
        self.assertEqual(len(forks.pids), 1)
        rng = np.random.default_rng(1)
        for circuit, (t1, v1), (t2, v2) in zip(circuits, expected, got):
            self.assertEqual(t1.parameters, t2.parameters)
            np.testing.assert_array_equal(v1, v2)
            values = np.where(np.isnan(v1), rng.random(len(v1)), v1)
            self.assertEqual(t1.body(values), t2.body(values), circuit.name)

    def test_persistent_store_gets_worker_templates(self):
        circuits = _bound(4, seed=20)
        with tempfile.TemporaryDirectory() as tmp:
            store = PersistentTemplateStore(tmp)
            try:
                first = TemplateCache(store=store)
                with _Patched() as forks:
                    bodies = first.payload_many(circuits)
                self.assertEqual(len(forks.pids), 1)
                self.assertEqual(first.stats()["disk_misses"], 4)
                second = TemplateCache(store=store)  # another process, in effect
                with _Patched() as forks:
                    again = second.payload_many(circuits)
                self.assertEqual(forks.pids, [])
                self.assertEqual(again, bodies)
                self.assertEqual((second.stats()["compiles"], second.stats()["disk_hits"]), (0, 4))
            finally:
                store.close()


if __name__ == "__main__":
    unittest.main()
