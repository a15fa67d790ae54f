"""Tests for :mod:`qstore_qiskit.cache.store` (the in-memory template cache)."""

from __future__ import annotations

import threading
import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate

from qstore_qiskit.cache import QStoreCacheError, TemplateCache

from ..test_payload import (
    assert_body_equiv,
    random_circuit,
    real_compile_or_none,
    toy_compile,
)
from .helpers import CountingCompile, ansatz


class TestCacheBehaviour(unittest.TestCase):
    def test_level2_hits(self):
        cache = TemplateCache(compile_fn=CountingCompile())
        qc = ansatz(2, 1)
        vals = [0.1, 0.2, 0.3, 0.4]
        b1 = cache.payload(qc, vals)
        b2 = cache.payload(qc, vals)
        b3 = cache.payload(qc, [v + 1e-14 for v in vals])  # rounds to the same key
        self.assertIs(b1, b2)
        self.assertIs(b1, b3)
        cache.payload(qc, [0.5, 0.2, 0.3, 0.4])
        s = cache.stats()
        self.assertEqual((s["bound_hits"], s["bound_misses"]), (2, 2))
        self.assertGreaterEqual(s["time_saved_seconds"], 0.0)
        self.assertGreater(s["compile_seconds"], 0.0)

    def test_one_circuit_path_is_the_batch_of_one(self):
        """payload_many of one circuit (a separate run()) takes its own path: the same
        bodies, entries and counters as the batch path given the same single circuit."""
        from qstore_qiskit.cache.analysis import INSTRUCTION_ROW

        rng = np.random.default_rng(23)
        shapes = [random_circuit(rng, 3, 8) for _ in range(4)]
        for qc in shapes:
            qc.measure_all()
        sequence = []
        for qc in shapes + shapes:  # first sightings (exact), exact repeats
            sequence.append(qc)
        for qc in shapes:  # other angles: the structure's second sighting (lifted)
            other = qc.copy_empty_like()
            for inst in qc.data:
                params = [float(rng.uniform(-3, 3)) if isinstance(p, float) else p for p in inst.params]
                other._append(inst.replace(params=params) if params else inst)  # pylint: disable=protected-access
            sequence += [other, qc]
        caches = [TemplateCache(max_templates=5, max_bound=4, compile_fn=toy_compile) for _ in range(2)]
        for qc in sequence:
            rows = [list(map(INSTRUCTION_ROW, qc.data))]
            one = caches[0].payload_many([qc], device="aria-1", optimization_level=2, rows=rows)
            batch = caches[1]._payload_batch([qc], "aria-1", 2, rows)  # pylint: disable=protected-access
            self.assertEqual(one, batch)
            self.assertEqual(caches[0].stats()["bound"], caches[1].stats()["bound"])
        first, second = caches[0].stats(), caches[1].stats()
        for key in ("compile_seconds", "time_saved_seconds"):
            first.pop(key), second.pop(key)
        self.assertEqual(first, second)
        self.assertGreater(first["bound_hits"], 0)
        self.assertGreater(first["compiles"], len(shapes))  # exact and lifted templates
        self.assertGreater(first["template_evictions"], 0)

    def test_lru_count_limits(self):
        cache = TemplateCache(max_templates=2, max_bound=3, compile_fn=CountingCompile())
        circuits = [ansatz(n, 1) for n in (1, 2, 3)]
        for qc in circuits:
            cache.get_template(qc)
        s = cache.stats()
        self.assertEqual((s["templates"], s["template_evictions"]), (2, 1))
        # Most recently used survive: 2, 3. Touch 2 then add 1 -> 3 evicted.
        cache.get_template(circuits[1])
        cache.get_template(circuits[0])
        self.assertEqual(cache.stats()["template_misses"], 4)
        before = cache.stats()["template_misses"]
        cache.get_template(circuits[1])
        self.assertEqual(cache.stats()["template_misses"], before)
        qc = circuits[1]
        for i in range(5):
            cache.payload(qc, np.full(qc.num_parameters, float(i)))
        s = cache.stats()
        self.assertEqual(s["bound"], 3)
        self.assertEqual(s["bound_evictions"], 2)

    def test_lru_byte_limit(self):
        probe = TemplateCache(compile_fn=CountingCompile())
        qc = ansatz(3, 2)
        probe.get_template(qc)
        one_template = probe.stats()["bytes"]
        cache = TemplateCache(max_bytes=int(one_template * 1.5), compile_fn=CountingCompile())
        cache.get_template(qc)
        for i in range(200):
            cache.payload(qc, np.full(qc.num_parameters, i / 7))
        s = cache.stats()
        self.assertLessEqual(s["bytes"], cache.max_bytes)
        self.assertGreater(s["bound_evictions"], 0)
        self.assertEqual(s["templates"], 1)
        cache.get_template(ansatz(4, 2))
        s = cache.stats()
        # The older template had to go; the newest is kept even if it alone is over budget.
        self.assertEqual(s["templates"], 1)
        self.assertEqual(s["bound"], 0)
        self.assertGreaterEqual(s["template_evictions"], 1)
        misses = s["template_misses"]
        cache.get_template(ansatz(4, 2))
        self.assertEqual(cache.stats()["template_misses"], misses)
        cache.get_template(qc)
        self.assertEqual(cache.stats()["template_misses"], misses + 1)

    def test_device_and_options_in_key(self):
        compile_fn = CountingCompile()
        cache = TemplateCache(compile_fn=compile_fn)
        qc = ansatz(2, 1)
        t1, _ = cache.get_template(qc, device="aria-1")
        t2, _ = cache.get_template(qc, device="forte-1")
        t3, _ = cache.get_template(qc, device="aria-1", optimization_level=1)
        self.assertEqual(compile_fn.calls, 3)
        self.assertEqual(t2.device, "forte-1")
        self.assertIn("zz", t2.native_gate_counts)
        self.assertNotEqual(t1.optimization_level, t3.optimization_level)

    def test_payload_many(self):
        compile_fn = CountingCompile()
        cache = TemplateCache(adaptive_lifting=False, compile_fn=compile_fn)
        rng = np.random.default_rng(4)
        src = [ansatz(3, 1), ansatz(2, 2)]
        circuits, refs = [], []
        for i in range(12):
            s = src[i % 2]
            vals = rng.uniform(-4, 4, s.num_parameters)
            circuits.append(s.assign_parameters(vals))
        circuits.append(circuits[0])  # an exact repeat -> level-2 hit
        bodies = cache.payload_many(circuits)
        self.assertEqual(compile_fn.calls, 2)
        for circ, body in zip(circuits, bodies):
            refs.append(cache.payload(circ))
            self.assertEqual(body, refs[-1])
            template, values = cache.get_template(circ)
            assert_body_equiv(
                self, body["circuit"], template.final_frames(values), circ, circ.num_qubits
            )
        self.assertGreaterEqual(cache.stats()["bound_hits"], 13)

    def test_compile_errors_propagate_and_are_not_cached(self):
        calls = []

        def broken(circuit, device, level):
            calls.append(1)
            raise RuntimeError("compiler exploded")

        cache = TemplateCache(compile_fn=broken)
        for _ in range(2):
            with self.assertRaisesRegex(RuntimeError, "exploded"):
                cache.get_template(ansatz(2, 1))
        self.assertEqual(len(calls), 2)
        self.assertEqual(cache.stats()["compile_errors"], 2)
        self.assertEqual(cache.stats()["inflight"], 0)


class TestThreadSafety(unittest.TestCase):
    def test_hammer(self):
        compile_fn = CountingCompile(delay=0.05)
        # One template per shape (free and bound circuits share it): no adaptive lifting.
        cache = TemplateCache(max_templates=3, max_bound=50, compile_fn=compile_fn, adaptive_lifting=False)
        shapes = [ansatz(2, 1), ansatz(3, 1), ansatz(2, 2)]
        errors: list[BaseException] = []
        results: dict[tuple, dict] = {}
        results_lock = threading.Lock()
        barrier = threading.Barrier(8)

        def worker(seed):
            rng = np.random.default_rng(seed)
            try:
                barrier.wait()
                for i in range(40):
                    s = shapes[int(rng.integers(len(shapes)))]
                    vals = tuple(np.round(rng.uniform(-2, 2, s.num_parameters), 1) * 0 + (i % 4) / 3)
                    if rng.random() < 0.5:
                        body = cache.payload(s, list(vals))
                    else:
                        body = cache.payload(s.assign_parameters(list(vals)))
                    key = (shapes.index(s), vals)
                    with results_lock:
                        prev = results.setdefault(key, body)
                    if prev != body:
                        raise AssertionError("inconsistent bodies under concurrency")
                    cache.get_template(s)
                    cache.stats()
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        s = cache.stats()
        # Concurrent misses on the same key are deduplicated: one compile per shape.
        self.assertEqual(compile_fn.calls, 3)
        self.assertEqual(s["compiles"], 3)
        self.assertLessEqual(s["bound"], 50)
        self.assertEqual(s["inflight"], 0)
        for (shape_i, vals), body in results.items():
            s_circ = shapes[shape_i].assign_parameters(list(vals))
            template, values = cache.get_template(s_circ)
            assert_body_equiv(
                self, body["circuit"], template.final_frames(values), s_circ, s_circ.num_qubits
            )

    def test_concurrent_real_compiles(self):
        if real_compile_or_none() is None:
            self.skipTest("qstore_qiskit.transpiler not available yet")
        cache = TemplateCache()
        rng = np.random.default_rng(21)
        circuits = [random_circuit(rng, 2 + i % 3, 10) for i in range(12)]
        errors: list[BaseException] = []

        def worker(chunk):
            try:
                for qc in chunk:
                    cache.payload(qc)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(circuits[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for qc in circuits:
            template, values = cache.get_template(qc)
            body = cache.payload(qc)
            assert_body_equiv(self, body["circuit"], template.final_frames(values), qc, qc.num_qubits)

    def test_concurrent_first_compile_dedup(self):
        compile_fn = CountingCompile(delay=0.2)
        cache = TemplateCache(compile_fn=compile_fn)
        qc = ansatz(3, 1)
        out = []
        threads = [
            threading.Thread(target=lambda: out.append(cache.get_template(qc)[0].structural_key))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(compile_fn.calls, 1)
        self.assertEqual(len(set(out)), 1)
        self.assertEqual(len(out), 6)


class TestLiftedNativeGates(unittest.TestCase):
    """Regression: lifting qiskit-ionq's Python-defined gates must change their params."""

    def test_native_gates_bind_their_own_values(self):
        from qiskit.quantum_info import Statevector
        from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate

        cache = TemplateCache(compile_options={"qubits_initially_zero": True})
        rng = np.random.default_rng(5)
        for _ in range(6):
            x, y, z, t = rng.uniform(-1, 1, 4)
            qc = QuantumCircuit(2)
            qc.append(GPI2Gate(x), [0])
            qc.append(MSGate(y, 0.1, abs(t) / 4), [0, 1])
            qc.append(GPIGate(z), [1])
            qc.append(GPI2Gate(y), [1])
            template, values = cache.get_template(qc, device="simulator")
            got = Statevector(template.to_circuit(values)).probabilities()
            self.assertTrue(np.allclose(got, Statevector(qc).probabilities(), atol=1e-9))
        self.assertGreaterEqual(cache.stats()["template_hits"], 1)


if __name__ == "__main__":
    unittest.main()


class TestGlobalPhaseParameters(unittest.TestCase):
    """#12 defect 5: parameters of the global phase only, on the cached path."""

    def setUp(self):
        self.a, self.g = Parameter("a"), Parameter("g")
        self.qc = QuantumCircuit(2)
        self.qc.rx(self.a, 0)
        self.qc.cx(0, 1)
        self.qc.global_phase = self.g

    def test_template_takes_a_value_for_the_phase_parameter(self):
        cache = TemplateCache(compile_fn=toy_compile)
        template, values = cache.get_template(self.qc)
        self.assertEqual(set(template.parameters), {self.a, self.g})
        self.assertEqual(len(values), len(template.parameters))
        self.assertTrue(np.isnan(values).all())
        # A table ordered like the template (the backend builds it by parameter).
        col = {p: i for i, p in enumerate(template.parameters)}
        rows = np.zeros((3, 2))
        for r, (a, g) in enumerate([(np.pi, 0.3), (np.pi, -2.0), (0.4, 0.3)]):
            rows[r, col[self.a]], rows[r, col[self.g]] = a, g
        bodies = template.bodies(rows)
        # The phase never changes the payload; the payload is the bound circuit's.
        self.assertEqual(bodies[0], bodies[1])
        self.assertNotEqual(bodies[0], bodies[2])
        for r in (0, 2):
            bound = self.qc.assign_parameters({self.a: rows[r, col[self.a]], self.g: rows[r, col[self.g]]})
            assert_body_equiv(self, bodies[r]["circuit"], template.final_frames(rows[r]), bound, 2)
        self.assertEqual(bodies[0], cache.payload(self.qc, {self.a: np.pi, self.g: 0.3}))
        self.assertEqual(bodies[0], cache.payload(self.qc.assign_parameters({self.a: np.pi, self.g: 0.3})))

    def test_missing_phase_value_names_the_parameter(self):
        template, _ = TemplateCache(compile_fn=toy_compile).get_template(self.qc)
        with self.assertRaisesRegex(QStoreCacheError, r"no value.*'g'"):
            template.bind({self.a: np.pi})

    def test_circuit_without_phase_parameters_is_served_unchanged(self):
        cache = TemplateCache(compile_fn=toy_compile)
        plain = self.qc.assign_parameters({self.g: 0.0})
        template, values = cache.get_template(plain)
        self.assertEqual(template.parameters, (self.a,))
        self.assertEqual(len(values), 1)


class TestComplexValues(unittest.TestCase):
    """#12 defect 8 in the cache: complex values are an error, never truncated."""

    def test_payload_rejects_complex(self):
        a = Parameter("a")
        qc = QuantumCircuit(1)
        qc.rx(a, 0)
        cache = TemplateCache(compile_fn=toy_compile)
        for bad in ({a: np.pi + 5j}, {a: np.complex128(1 + 1j)}, {a: np.array(1 + 0.5j)}, [1 + 2j],
                    np.array([np.pi + 5j])):
            with self.subTest(bad=bad), self.assertRaisesRegex(QStoreCacheError, "complex"):
                cache.payload(qc, bad)


class TestBackendGlobalPhase(unittest.TestCase):
    """#12 defect 5 end to end: ``run(..., parameter_binds)`` with a phase parameter."""

    def test_run_with_phase_parameter_cached_and_not(self):
        import os
        from unittest import mock

        from qstore_qiskit import QStoreProvider

        a, g = Parameter("a"), Parameter("g")
        qc = QuantumCircuit(1, 1)
        qc.rx(a, 0)
        qc.global_phase = g
        qc.measure(0, 0)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IONQ_", "QISKIT_IONQ"))}
        with mock.patch.dict(os.environ, env, clear=True):
            provider = QStoreProvider(local_profile="instant")
            try:
                backend = provider.get_backend("ionq_simulator")
                binds = [{a: [np.pi, 0.0], g: [0.3, -1.0]}]
                counts = {
                    caching: backend.run(qc, parameter_binds=binds, shots=50, enable_smart_caching=caching)
                    .result()
                    .get_counts()
                    for caching in (True, False)
                }
                self.assertEqual(counts[True], [{"1": 50}, {"0": 50}])
                self.assertEqual(counts[True], counts[False])
                with self.assertRaisesRegex(ValueError, r"\bg\b"):
                    backend.run(qc, parameter_binds=[{a: np.pi}], shots=10)
            finally:
                provider.close()
