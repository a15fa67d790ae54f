"""Tests for :mod:`qstore_qiskit.cache.persistent` and :mod:`qstore_qiskit.cache.serialize`.

Every test uses its own temporary directory (never the user's cache).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
from diskcache import Cache
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from qstore_qiskit.cache import (
    CACHE_DIR_ENV,
    CompiledTemplate,
    PersistentTemplateStore,
    QStoreCacheError,
    TemplateCache,
    default_cache_dir,
    default_compile,
    open_store,
)
from qstore_qiskit.cache import serialize
from qstore_qiskit.cache.builder import build_spec

from ..test_payload import random_circuit, toy_compile
from . import _workers
from .helpers import CountingCompile, ansatz


def _dumps(bodies) -> str:
    return json.dumps(bodies)


def _decode(text: str, name: str) -> np.ndarray:
    """A stored array of a serialised template (see serialize._ARRAYS)."""
    import base64

    dtype, columns = serialize._ARRAYS[name]  # pylint: disable=protected-access
    a = np.frombuffer(base64.b64decode(text), dtype=dtype)
    return a.reshape(-1, columns) if columns else a


def _encode(array: np.ndarray, name: str) -> str:
    import base64

    return base64.b64encode(np.ascontiguousarray(array, dtype=serialize._ARRAYS[name][0]).tobytes()).decode()


def _structure(i: int, num_qubits: int = 3) -> QuantumCircuit:
    """Distinct parameterized structures of similar size: ``i`` extra entanglers."""
    qc = ansatz(num_qubits, 2)
    for k in range(i + 1):
        qc.rzz(qc.parameters[k % qc.num_parameters] * 0.5 + 0.25, k % (num_qubits - 1), k % (num_qubits - 1) + 1)
    return qc


class StoreTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self._tmp.name) / "templates"

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def cache(self, compile_fn=None, **kwargs) -> TemplateCache:
        """A fresh in-memory cache on this test's store (as a new process would have)."""
        compile_fn = compile_fn or CountingCompile()
        return TemplateCache(store=self.dir, compile_fn=compile_fn, compiler_id="toy", **kwargs)


class TestRoundTrip(StoreTestCase):
    def test_large_entry_stored_in_a_file(self):
        qc = _workers.structure(1500)  # > 32 KiB: diskcache keeps it in a file
        t1, _ = self.cache(_workers.native_compile).get_template(qc)
        cache = self.cache(_workers.native_compile)
        t2, _ = cache.get_template(qc)
        self.assertEqual((cache.stats()["compiles"], cache.stats()["disk_hits"]), (0, 1))
        self.assertTrue(any(self.dir.rglob("*.val")))
        X = np.random.default_rng(4).uniform(-9, 9, (10, len(t1.parameters)))
        self.assertEqual(_dumps(t1.bind_many(X)), _dumps(t2.bind_many(X)))

    def test_loaded_template_binds_bit_identically(self):
        rng = np.random.default_rng(11)
        for i in range(8):
            params = ParameterVector("p", 5)
            qc = random_circuit(rng, 3 + i % 3, 10, params)
            qc.measure_all()
            first, second = CountingCompile(), CountingCompile()
            device = "forte-1" if i % 2 else "aria-1"  # ZZ and MS gates
            t1, v1 = self.cache(first).get_template(qc, device=device)
            t2, v2 = self.cache(second).get_template(qc, device=device)
            self.assertEqual((first.calls, second.calls), (1, 0))
            # The circuit's own parameters label the same columns (lifted ones are fresh).
            own = set(qc.parameters)
            self.assertEqual(len(t1.parameters), len(t2.parameters))
            self.assertEqual([p if p in own else None for p in t1.parameters],
                             [p if p in own else None for p in t2.parameters])
            self.assertTrue(np.array_equal(v1, v2, equal_nan=True))
            # Wide angles: MS rewrites, ZZ flips, negative angles all occur.
            X = rng.uniform(-20, 20, (40, len(t1.parameters)))
            self.assertEqual(_dumps(t1.bind_many(X)), _dumps(t2.bind_many(X)))
            self.assertEqual(_dumps(t1.bind(X[0])), _dumps(t2.bind(X[0])))
            self.assertEqual(t1.final_frames(X[1]), t2.final_frames(X[1]))
            self.assertEqual(t1.native_gate_counts, t2.native_gate_counts)
            self.assertEqual((t1.meas_map, t1.body_qubits), (t2.meas_map, t2.body_qubits))
            if i < 2:  # and after the loaded one switches to generated code
                from qstore_qiskit.cache.emitter import GENERATE_AFTER

                t2.bind_many(rng.uniform(-20, 20, (GENERATE_AFTER, len(t2.parameters))))
                self.assertTrue(t2._emit.generated)
                self.assertEqual(_dumps(t1.bind_many(X)), _dumps(t2.bind_many(X)))

    def test_real_compiler_and_bound_circuits(self):
        qc = ansatz(4, 2)
        qc.measure_all()
        X = np.random.default_rng(3).uniform(-4, 4, (3, qc.num_parameters))
        bound = [qc.assign_parameters(x) for x in X]
        c1 = TemplateCache(store=self.dir)  # the default compiler has an identity
        bodies = [c1.payload(b) for b in bound]  # exact first, then the lifted template
        self.assertEqual(c1.stats()["compiles"], 2)
        c2 = TemplateCache(store=self.dir)
        self.assertEqual([c2.payload(b) for b in bound], bodies)
        self.assertEqual(c2.stats()["compiles"], 0)
        # As in the first process: the exact template for the first, the lifted one after.
        self.assertEqual(c2.stats()["disk_hits"], 2)
        t, _ = c2.get_template(qc)
        self.assertEqual(t.bind(X[1]), bodies[1]["circuit"])

    def test_bound_circuits_across_processes_compile_exact_once_and_lift_once(self):
        # Each TemplateCache stands for a process (they share nothing but the directory).
        qc = ansatz(3, 2)
        rng = np.random.default_rng(8)
        counters = [CountingCompile() for _ in range(4)]
        bodies = []
        for counting in counters:
            cache = self.cache(counting)
            bound = qc.assign_parameters(rng.uniform(-3, 3, qc.num_parameters))
            bodies.append((cache.payload(bound), bound))
        # The first process compiles its circuit exactly; the second, meeting a structure
        # another process has met, compiles the lifted template; the rest load it.
        self.assertEqual([c.calls for c in counters], [1, 1, 0, 0])
        from qiskit.quantum_info import Statevector

        from qstore_qiskit.payload import ionq_native_to_circuit

        for body, bound in bodies:  # every payload is its own circuit's (trailing Z dropped)
            native = ionq_native_to_circuit(body["circuit"], bound.num_qubits)
            self.assertTrue(np.allclose(Statevector(native).probabilities(), Statevector(bound).probabilities(), atol=1e-9))

    def test_serialize_round_trip_and_schema(self):
        rng = np.random.default_rng(5)
        params = ParameterVector("p", 4)
        qc = random_circuit(rng, 4, 12, params)
        native = toy_compile(qc, "forte-1")
        spec = build_spec(native, list(qc.parameters))
        labels = {"key": "k", "device": "forte-1"}
        data = serialize.dumps(spec, labels)
        back, got = serialize.loads(data, labels)
        self.assertEqual(got, labels)
        t1 = CompiledTemplate._from_spec(spec, list(qc.parameters), "forte-1", 1, "s", 0.0)._relabel(list(qc.parameters))
        t2 = CompiledTemplate._from_spec(back, list(qc.parameters), "forte-1", 1, "s", 0.0)._relabel(list(qc.parameters))
        X = rng.uniform(-9, 9, (30, len(params)))
        self.assertEqual(_dumps(t1.bind_many(X)), _dumps(t2.bind_many(X)))
        with self.assertRaisesRegex(serialize.FormatError, "labels"):
            serialize.loads(data, {"key": "other"})
        doc = json.loads(data)

        def bad(mutate):
            d = json.loads(data)
            mutate(d)
            with self.assertRaises(serialize.FormatError):
                serialize.loads(json.dumps(d).encode(), labels)

        bad(lambda d: d.update(version=serialize.FORMAT_VERSION + 1))
        bad(lambda d: d.update(format="something-else"))
        bad(lambda d: d["arrays"].__setitem__("exec", "AAAA"))
        bad(lambda d: d["arrays"].pop("flip_value"))
        bad(lambda d: d["arrays"].__setitem__("const", "not base64!"))
        bad(lambda d: d["arrays"].__setitem__("const", d["arrays"]["const"][:-4]))  # a torn float
        bad(lambda d: d.pop("n_par"))
        bad(lambda d: d.update(num_qubits=True))
        bad(lambda d: d.update(num_clbits=1, meas_map=["os"]))
        arrays = {k: _decode(v, k) for k, v in doc["arrays"].items()}

        def bad_array(name, mutate):
            a = arrays[name].copy()
            mutate(a)
            bad(lambda d: d["arrays"].__setitem__(name, _encode(a, name)))

        bad_array("plan_kind", lambda a: a.__setitem__(0, 7))  # no such gate kind
        bad_array("plan_qubits", lambda a: a.__setitem__((0, 0), 10**6))
        bad_array("plan_qubits", lambda a: a.__setitem__((0, 1), 0 if a[0, 0] else 1))  # 1q gate, 2 qubits
        # Another gate kind changes the slot layout: it no longer fits the stored slots.
        bad_array("plan_kind", lambda a: a.__setitem__(int(np.flatnonzero(a < 2)[0]), 3))
        bad_array("plan_kind", lambda a: a.__setitem__(slice(None), a[:-1].tolist() + [2]) if a[-1] != 2 else a.fill(3))
        bad_array("const", lambda a: a.__setitem__(0, np.inf))
        bad_array("const", lambda a: a.__setitem__(0, np.nan))
        bad_array("term_col", lambda a: a.__setitem__(0, len(params)))  # no such column
        bad_array("term_slot", lambda a: a.__setitem__(slice(None), a[::-1]))  # unsorted terms
        bad_array("term_weight", lambda a: a.__setitem__(0, np.inf))
        self.assertTrue(len(arrays["flip_value"]), "forte-1 templates have ZZ flips")
        bad_array("flip_value", lambda a: a.__setitem__(0, 0.3))  # not a half turn
        bad_array("flip_zz", lambda a: a.__setitem__(0, 10**6))
        with self.assertRaises(serialize.FormatError):
            serialize.loads(data[: len(data) // 2], labels)
        with self.assertRaises(serialize.FormatError):
            serialize.loads(b"\x80\x04K\x01.", labels)  # a pickle, not JSON
        self.assertIn("plan_kind", doc["arrays"])

    def test_non_affine_templates_are_not_stored(self):
        qc = QuantumCircuit(1)
        p = ParameterVector("p", 1)[0]
        qc.rx(p * p, 0)
        cache = self.cache()
        cache.get_template(qc)
        self.assertEqual(cache.stats()["disk_skipped"], 1)
        self.assertEqual(PersistentTemplateStore(self.dir).stats()["entries"], 0)


def _mark_unpickled() -> None:
    os.environ["QSTORE_TEST_UNPICKLED"] = "1"


class _Sentinel:
    """Unpickling this sets an environment variable: proof that something unpickled it."""

    def __reduce__(self):
        return (_mark_unpickled, ())


class TestRejection(StoreTestCase):
    """Corrupt, truncated, tampered or foreign entries are recompiled, never trusted."""

    def setUp(self) -> None:
        super().setUp()
        self.qc = ansatz(3, 2)
        counting = CountingCompile()
        self.template, _ = self.cache(counting).get_template(self.qc)
        self.X = np.random.default_rng(2).uniform(-5, 5, (5, self.qc.num_parameters))
        self.expected = _dumps(self.template.bind_many(self.X))
        self.raw = Cache(str(self.dir))  # plain diskcache view of the same files
        (self.key,) = [k for k in self.raw.iterkeys() if k.startswith("t:")]
        self.value = self.raw[self.key]

    def tearDown(self) -> None:
        self.raw.close()
        super().tearDown()

    def assert_recompiled(self) -> None:
        counting = CountingCompile()
        cache = self.cache(counting)
        template, _ = cache.get_template(self.qc)
        self.assertEqual(counting.calls, 1)
        self.assertEqual(cache.stats()["disk_rejected"] + cache.stats()["disk_misses"], 2)
        self.assertEqual(_dumps(template.bind_many(self.X)), self.expected)
        # ... and the good entry is back.
        again = CountingCompile()
        self.cache(again).get_template(self.qc)
        self.assertEqual(again.calls, 0)

    def test_intact_entry_is_used(self):
        counting = CountingCompile()
        self.cache(counting).get_template(self.qc)
        self.assertEqual(counting.calls, 0)

    def test_flipped_byte(self):
        for pos in (0, 10, len(self.value) // 2, len(self.value) - 1):
            with self.subTest(pos=pos):
                v = bytearray(self.value)
                v[pos] ^= 0x01
                self.raw[self.key] = bytes(v)
                self.assert_recompiled()

    def test_truncated_and_empty(self):
        for v in (self.value[: len(self.value) // 2], self.value[:20], b""):
            with self.subTest(size=len(v)):
                self.raw[self.key] = v
                self.assert_recompiled()

    def test_entry_moved_to_another_key(self):
        other = ansatz(3, 1)
        self.cache().get_template(other)
        keys = [k for k in self.raw.iterkeys() if k.startswith("t:") and k != self.key]
        self.raw[self.key] = self.raw[keys[0]]  # a valid entry, but of another structure
        self.assert_recompiled()

    def test_foreign_directory(self):
        # The same entry written by another cache directory (another secret).
        with tempfile.TemporaryDirectory() as other:
            TemplateCache(store=other, compile_fn=CountingCompile(), compiler_id="toy").get_template(self.qc)
            with Cache(other) as foreign:
                self.raw[self.key] = foreign[self.key]
        self.assert_recompiled()

    def test_valid_mac_but_bad_document(self):
        # Even a correctly authenticated document must pass the schema check.
        store = open_store(self.dir)
        pkey = self.key[2:]
        body = self.value[36:]
        doc = json.loads(body)
        kinds = _decode(doc["arrays"]["plan_kind"], "plan_kind").copy()
        kinds[0] = 200  # not a gate kind
        doc["arrays"]["plan_kind"] = _encode(kinds, "plan_kind")
        store.put(pkey, json.dumps(doc).encode())
        self.assert_recompiled()
        doc = json.loads(body)
        doc["version"] = 0
        store.put(pkey, json.dumps(doc).encode())
        self.assert_recompiled()

    def test_pickled_row_is_never_unpickled(self):
        os.environ.pop("QSTORE_TEST_UNPICKLED", None)
        self.raw.set(self.key, _Sentinel())  # plain diskcache pickles it (MODE_PICKLE)
        self.raw.set("t:" + "0" * 64, _Sentinel())
        self.assert_recompiled()
        PersistentTemplateStore(self.dir).stats()
        self.assertNotIn("QSTORE_TEST_UNPICKLED", os.environ)

    def test_secret_and_directory_permissions(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.dir).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(self.dir / "hmac.key").st_mode), 0o600)
        # A damaged secret is replaced; entries signed with the old one are recompiled.
        (self.dir / "hmac.key").write_bytes(b"short")
        with mock.patch.dict("qstore_qiskit.cache.persistent._OPEN", clear=True), \
                mock.patch.dict("qstore_qiskit.cache.persistent._OPEN_AS_GIVEN", clear=True):  # a new process
            self.assert_recompiled()


class TestRejectionRestarted(TestRejection):
    """The rejection tests again, each load by a store opened afresh (a restarted process).

    A fresh store reads entries through its own read connection without opening diskcache
    (see ``PersistentTemplateStore._read``); these check that path applies every check.
    """

    def cache(self, compile_fn=None, **kwargs) -> TemplateCache:
        compile_fn = compile_fn or CountingCompile()
        return TemplateCache(store=PersistentTemplateStore(self.dir), compile_fn=compile_fn, compiler_id="toy", **kwargs)


class TestFreshStoreReads(StoreTestCase):
    """A restarted process loads entries without opening diskcache, with the same checks."""

    def setUp(self) -> None:
        super().setUp()
        self.qc = _workers.structure(1500)  # > 32 KiB: stored in a value file
        self.small = ansatz(3, 2)  # stored inline in the database
        cache = self.cache(_workers.native_compile)
        self.t_big, _ = cache.get_template(self.qc)
        self.t_small, _ = cache.get_template(self.small)
        open_store(self.dir).close()

    def test_hits_do_not_open_diskcache(self):
        store = PersistentTemplateStore(self.dir)
        cache = TemplateCache(store=store, compile_fn=_workers.native_compile, compiler_id="toy")
        t_big, _ = cache.get_template(self.qc)
        t_small, _ = cache.get_template(self.small)
        self.assertEqual((cache.stats()["compiles"], cache.stats()["disk_hits"]), (0, 2))
        self.assertIsNone(store._opened)  # reads only: diskcache never opened
        for a, b in ((self.t_big, t_big), (self.t_small, t_small)):
            X = np.random.default_rng(4).uniform(-9, 9, (6, len(a.parameters)))
            self.assertEqual(_dumps(a.bind_many(X)), _dumps(b.bind_many(X)))
        # A miss still works (and then opens diskcache to store).
        counting = CountingCompile()
        TemplateCache(store=store, compile_fn=counting, compiler_id="toy").get_template(ansatz(3, 1))
        self.assertEqual(counting.calls, 1)
        self.assertIsNotNone(store._opened)
        store.close()

    def test_value_file_outside_the_directory_is_never_read(self):
        import sqlite3

        with tempfile.TemporaryDirectory() as elsewhere:
            outside = Path(elsewhere) / "x.val"
            outside.write_bytes(b"QST1" + b"\0" * 100)
            con = sqlite3.connect(str(self.dir / "cache.db"))
            with con:
                con.execute("UPDATE Cache SET filename = ? WHERE filename IS NOT NULL", (str(outside),))
            con.close()
            store = PersistentTemplateStore(self.dir)
            counting = CountingCompile()
            cache = TemplateCache(store=store, compile_fn=counting, compiler_id="toy")
            cache.get_template(self.qc)
            self.assertEqual(counting.calls, 1)
            self.assertEqual(cache.stats()["disk_rejected"], 1)
            self.assertTrue(outside.exists())  # not deleted either
            store.close()

    def test_no_database_yet_is_a_miss_and_creates_nothing(self):
        with tempfile.TemporaryDirectory() as other:
            store = PersistentTemplateStore(other)
            self.assertEqual(store.fetch("0" * 64), ("miss", None))
            self.assertNotIn("0" * 64, store)
            self.assertFalse((Path(other) / "cache.db").exists())
            self.assertIsNone(store._opened)


class TestConcurrentProcesses(StoreTestCase):
    def run_workers(self, plans: list[list[int]]) -> list:
        # Fresh interpreters (spawn): no thread pool or lock state inherited from pytest.
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        barrier = ctx.Barrier(len(plans))
        procs = [
            ctx.Process(target=_workers.compile_structures, args=(str(self.dir), plan, barrier, out))
            for plan in plans
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
            self.assertEqual(p.exitcode, 0)
        return results

    def test_concurrent_writers_compile_each_structure_once(self):
        shared = [0, 1]
        plans = [shared + [10 + w] for w in range(4)]  # 2 shared + 4 own = 6 structures
        open_store(self.dir)  # create the store before the race (as a first backend would)
        results = self.run_workers(plans)
        compiles = sum(r[1] for r in results)
        self.assertEqual(compiles, 6, [(r[1], r[2]) for r in results])
        for i in shared:
            self.assertEqual(len({r[3][i] for r in results}), 1)  # everyone got the same body
        # A restarted process compiles nothing it compiled already.
        ((_, calls, stats, _),) = self.run_workers([shared + [10, 11, 12, 13]])
        self.assertEqual(calls, 0)
        self.assertEqual(stats["disk_hits"], 6)

    def test_dead_lock_holder_does_not_block(self):
        store = open_store(self.dir)
        ctx = multiprocessing.get_context("spawn")
        p = ctx.Process(target=time.sleep, args=(0,))
        p.start()
        p.join()
        import socket

        store._cache.add("l:abc", f"{socket.gethostname()}:{p.pid}:x".encode(), expire=600)
        start = time.monotonic()
        with store.single_flight("abc") as owner:
            self.assertTrue(owner)
        self.assertLess(time.monotonic() - start, 5.0)

    def test_live_holder_times_out_instead_of_hanging(self):
        store = PersistentTemplateStore(self.dir, lock_timeout=0.2)
        store._cache.add("l:abc", b"some-other-host:1:x", expire=600)
        with store.single_flight("abc") as owner:
            self.assertTrue(owner)  # waited lock_timeout, then compiles itself

    def test_waiter_loads_what_the_holder_stored(self):
        store = PersistentTemplateStore(self.dir, lock_timeout=30)
        store._cache.add("l:abc", b"some-other-host:1:x", expire=600)
        store.put("abc", b"{}")
        with store.single_flight("abc") as owner:
            self.assertFalse(owner)


class TestThreads(StoreTestCase):
    def test_threads_of_two_caches_compile_each_structure_once(self):
        import threading

        counting = CountingCompile(delay=0.05)
        caches = [self.cache(counting), self.cache(counting)]  # two "processes" in one
        errors: list[BaseException] = []

        def work(k: int) -> None:
            try:
                for i in range(4):
                    caches[k % 2].payload(_workers.structure(i), [0.1, 0.2, 0.3])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(counting.calls, 4)
        self.assertEqual(sum(c.stats()["compiles"] for c in caches), 4)
        self.assertEqual(sum(c.stats()["disk_hits"] for c in caches), 4)


class TestSizeLimit(StoreTestCase):
    def test_eviction_keeps_the_store_bounded(self):
        limit = 256 * 1024
        store = PersistentTemplateStore(self.dir, size_limit=limit)
        cache = TemplateCache(store=store, compile_fn=CountingCompile(), compiler_id="toy")
        for i in range(40):
            cache.get_template(_structure(i, num_qubits=4))
        stats = store.stats()
        self.assertLess(stats["entries"], 40)
        self.assertLessEqual(stats["volume"], 2 * limit)
        # The newest survive, the oldest were evicted (and compile again on request).
        fresh = CountingCompile()
        again = TemplateCache(store=store, compile_fn=fresh, compiler_id="toy")
        again.get_template(_structure(39, num_qubits=4))
        self.assertEqual(fresh.calls, 0)
        again.get_template(_structure(0, num_qubits=4))
        self.assertEqual(fresh.calls, 1)


class TestSettings(StoreTestCase):
    def test_default_directory_and_env(self):
        with mock.patch.dict(os.environ, {CACHE_DIR_ENV: str(self.dir)}):
            self.assertEqual(default_cache_dir(), self.dir)
            self.assertEqual(open_store(None).directory, self.dir)
        for off in ("off", "0", ""):
            with mock.patch.dict(os.environ, {CACHE_DIR_ENV: off}):
                self.assertIsNone(default_cache_dir())
                self.assertIsNone(open_store(None))
                with self.assertRaisesRegex(QStoreCacheError, "disabled"):
                    PersistentTemplateStore()
        with mock.patch.dict(os.environ, {}, clear=True):
            os.environ["HOME"] = "/home/someone"
            self.assertTrue(str(default_cache_dir()).endswith(os.path.join("qstore-qiskit", "templates")))
        self.assertIsNone(open_store(False))
        self.assertIs(open_store(self.dir), open_store(str(self.dir)))
        with self.assertRaisesRegex(QStoreCacheError, "setting"):
            open_store(42)

    def test_custom_compiler_without_identity_is_not_persisted(self):
        cache = TemplateCache(store=self.dir, compile_fn=CountingCompile())
        cache.get_template(ansatz(2, 1))
        self.assertFalse(self.dir.exists() and PersistentTemplateStore(self.dir).stats()["entries"])

    def test_unusable_directory_never_fails_a_compile(self):
        blocker = Path(self._tmp.name) / "file"
        blocker.write_text("not a directory")
        counting = CountingCompile()
        cache = TemplateCache(store=blocker / "templates", compile_fn=counting, compiler_id="toy")
        template, _ = cache.get_template(ansatz(2, 1))
        self.assertEqual(counting.calls, 1)
        self.assertGreaterEqual(cache.stats()["disk_errors"], 1)
        self.assertEqual(len(template.bind([0.1] * 4)), len(template.bind([0.2] * 4)))

    def test_default_compiler_key_includes_versions(self):
        cache = TemplateCache(store=self.dir)
        key = ("s", "aria-1", 2, ())
        base = cache._entry_key(key)
        with mock.patch("qstore_qiskit.cache.loader.__version__", "9.9.9"):
            self.assertNotEqual(cache._entry_key(key), base)
        with mock.patch("qstore_qiskit.cache.loader.FORMAT_VERSION", 99):
            self.assertNotEqual(cache._entry_key(key), base)
        other = TemplateCache(store=self.dir, compile_fn=toy_compile, compiler_id="toy")
        self.assertNotEqual(other._entry_key(key), base)
        self.assertIs(default_compile, cache._compile_fn)


if __name__ == "__main__":
    unittest.main()


class TestBackendOption(StoreTestCase):
    """The backend's ``template_cache_dir`` option: a restarted backend compiles nothing."""

    def run_backend(self, option) -> tuple[dict, list]:
        from qstore_qiskit import QStoreProvider

        env = {k: v for k, v in os.environ.items() if not k.startswith(("IONQ_", "QISKIT_IONQ"))}
        with mock.patch.dict(os.environ, env, clear=True):
            provider = QStoreProvider(local_profile="instant")
            try:
                backend = provider.get_backend("ionq_simulator")
                backend.set_options(template_cache_dir=option)
                qc = ansatz(3, 2)
                qc.measure_all()
                values = np.linspace(0.1, 1.2, qc.num_parameters)
                binds = [{p: [v, -v] for p, v in zip(qc.parameters, values)}]
                counts = backend.run(qc, parameter_binds=binds, shots=2000, sampler_seed=7).result().get_counts()
                return backend._cache.stats(), counts
            finally:
                provider.close()

    def test_restarted_backend_loads_its_templates(self):
        first, counts1 = self.run_backend(str(self.dir))
        self.assertEqual((first["compiles"], first["disk_misses"]), (1, 1))
        second, counts2 = self.run_backend(str(self.dir))
        self.assertEqual((second["compiles"], second["disk_hits"]), (0, 1))
        self.assertEqual(counts1, counts2)  # same payloads, same seed: same samples

    def test_option_false_turns_it_off(self):
        stats, _ = self.run_backend(False)
        self.assertEqual((stats["compiles"], stats["disk_misses"], stats["disk_hits"]), (1, 0, 0))
        self.assertFalse(self.dir.exists())

    def test_default_follows_the_environment(self):
        with mock.patch.dict(os.environ, {CACHE_DIR_ENV: str(self.dir)}):
            self.run_backend(None)
            stats, _ = self.run_backend(None)
        self.assertEqual(stats["compiles"], 0)
