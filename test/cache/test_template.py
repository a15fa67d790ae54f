"""Tests for :mod:`qstore_qiskit.cache` (compiled templates and the template cache)."""

from __future__ import annotations

import gc
import json
import threading
import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.quantum_info import Operator
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate

import qstore_qiskit
from qstore_qiskit.cache import (
    CompiledTemplate,
    QStoreCacheError,
    TemplateCache,
    lift_parameters,
    structural_key,
)
from qstore_qiskit.payload import circuit_to_native_gates

from ..test_payload import (
    assert_body_equiv,
    assert_in_range,
    random_circuit,
    real_compile_or_none,
    toy_compile,
)


def ansatz(num_qubits: int, layers: int) -> QuantumCircuit:
    """ry+rz on every qubit and a cx ladder per layer (the benchmark ansatz)."""
    theta = ParameterVector("t", 2 * num_qubits * layers)
    qc = QuantumCircuit(num_qubits)
    k = 0
    for _ in range(layers):
        for q in range(num_qubits):
            qc.ry(theta[k], q)
            qc.rz(theta[k + 1], q)
            k += 2
        for q in range(num_qubits - 1):
            qc.cx(q, q + 1)
    return qc


class CountingCompile:
    """toy_compile that counts calls (thread-safe) and can be slowed down."""

    def __init__(self, delay: float = 0.0):
        self.calls = 0
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, circuit, device, optimization_level):
        with self._lock:
            self.calls += 1
        if self.delay:
            threading.Event().wait(self.delay)
        return toy_compile(circuit, device, optimization_level)


class TestPublicNames(unittest.TestCase):
    def test_lazy_exports(self):
        self.assertIs(qstore_qiskit.TemplateCache, TemplateCache)
        self.assertIs(qstore_qiskit.CompiledTemplate, CompiledTemplate)


class TestTemplateEquivalence(unittest.TestCase):
    """Bound template payloads equal the bound source circuit as unitaries."""

    def _check_template(self, template, source, values):
        bound = source.assign_parameters(dict(zip(source.parameters, values)))
        gates = template.bind(values)
        assert_in_range(self, gates)
        assert_body_equiv(self, gates, template.final_frames(values), bound, source.num_qubits)
        native = template.to_circuit(values)
        self.assertTrue(Operator(native).equiv(Operator(bound)))
        # The template path and the plain serializer agree on the bound native circuit.
        self.assertEqual(len(circuit_to_native_gates(native)), len(gates))

    def test_random_parameterized(self):
        rng = np.random.default_rng(2024)
        for trial in range(30):
            n = 1 + trial % 5
            device = "forte-1" if trial % 4 == 3 else "aria-1"
            params = ParameterVector("p", 1 + trial % 4)
            source = random_circuit(rng, n, 5 + 3 * n, params=list(params))
            template = CompiledTemplate.compile(source, device, 1, compile_fn=toy_compile)
            self.assertEqual(template.parameters, tuple(source.parameters))
            for _ in range(3):
                values = rng.uniform(-7, 7, source.num_parameters)
                with self.subTest(trial=trial, device=device, values=values):
                    self._check_template(template, source, values)

    def test_bind_many_matches_bind(self):
        rng = np.random.default_rng(7)
        source = ansatz(4, 2)
        for device in ("aria-1", "forte-1"):
            template = CompiledTemplate.compile(source, device, compile_fn=toy_compile)
            X = rng.uniform(-10, 10, (25, source.num_parameters))
            many = template.bind_many(X)
            self.assertEqual(many, [template.bind(x) for x in X])
            json.dumps(many)

    def test_bind_many_leaves_the_gc_as_it_found_it(self):
        """GC enabled: re-enabled afterwards, young pass run per block; disabled: untouched."""
        template = CompiledTemplate.compile(ansatz(3, 2), "aria-1")
        X = np.random.default_rng(5).uniform(-3, 3, (300, template.num_parameters))
        passes: list[int] = []

        def count(phase, info):
            if phase == "start":
                passes.append(info["generation"])

        gc.collect()  # empty young generation: no automatic pass can fall due meanwhile
        gc.callbacks.append(count)
        try:
            template.bind_many(X)
            self.assertTrue(gc.isenabled())
            self.assertEqual(passes.count(0), 3)  # one per block of 128 bindings
            passes.clear()
            gc.disable()
            try:
                template.bind_many(X)
                self.assertFalse(gc.isenabled())
                self.assertEqual(passes, [])
            finally:
                gc.enable()
        finally:
            gc.callbacks.remove(count)

    def test_batch_size_never_changes_the_numbers(self):
        """Small and large batches take different arithmetic paths: bit-identical bodies."""
        rng = np.random.default_rng(11)
        source = ansatz(5, 3)
        for device in ("aria-1", "forte-1"):
            template = CompiledTemplate.compile(source, device)
            X = rng.uniform(-20, 20, (300, source.num_parameters))  # > one 128-row block
            X[:3] = 0.0  # exact zeros: signed-zero corner cases
            reference = template.bind_many(X)
            self.assertEqual(reference[250:], [template.bind(x) for x in X[250:]])
            for size in (1, 2, 3, 4, 5, 9):
                for start in range(0, 27, size):
                    with self.subTest(device=device, size=size, start=start):
                        self.assertEqual(template.bind_many(X[start : start + size]), reference[start : start + size])

    def test_ms_edge_angles_through_template(self):
        """Parameterized MS / ZZ angles crossing 0, 1/4, 1/2 and 1, vectorised."""
        a = Parameter("a")
        for gate in ("ms", "zz"):
            qc = QuantumCircuit(2)
            qc.append(GPI2Gate(0.1), [0])
            if gate == "ms":
                qc.append(MSGate(0.3 * a, 0.2, a), [0, 1])
            else:
                qc.append(ZZGate(a), [0, 1])
            qc.append(GPIGate(a + 0.1), [1])
            qc.append(GPI2Gate(0.7), [0])
            qc.rz(2 * a, 0)
            template = CompiledTemplate.from_native(qc)
            thetas = [0, 1e-15, -0.1, 0.25, -0.25, 0.2500001, 0.3, -0.3, 0.5, -0.5, 0.5 - 1e-12,
                      0.75, 0.99, 1.0, 1.0 + 1e-13, -1.0, 3.3]  # fmt: skip
            many = template.bind_many(np.array(thetas)[:, None])
            for theta, gates in zip(thetas, many):
                with self.subTest(gate=gate, theta=theta):
                    assert_in_range(self, gates)
                    bound = qc.assign_parameters([theta])
                    assert_body_equiv(self, gates, template.final_frames([theta]), bound, 2)
                    # Same result as the scalar serializer, up to float noise.
                    ref = circuit_to_native_gates(bound)
                    self.assertEqual([g["gate"] for g in gates], [g["gate"] for g in ref])

    def test_non_affine_fallback(self):
        a, b = Parameter("a"), Parameter("b")
        qc = QuantumCircuit(2)
        qc.append(GPI2Gate(a * b), [0])
        qc.append(MSGate(0.1, b, a.sin() / 4), [0, 1])
        qc.append(GPIGate(a + b), [1])
        template = CompiledTemplate.from_native(qc)
        for vals in ([0.3, 0.7], [2.0, -1.5], [-4.0, 0.25]):
            bound = qc.assign_parameters(dict(zip(qc.parameters, vals)))
            gates = template.bind(vals)
            assert_body_equiv(self, gates, template.final_frames(vals), bound, 2)

    def test_non_parameterized(self):
        rng = np.random.default_rng(5)
        source = random_circuit(rng, 3, 15)
        template = CompiledTemplate.compile(source, compile_fn=toy_compile)
        self.assertEqual(template.num_parameters, 0)
        gates = template.bind()
        assert_body_equiv(self, gates, template.final_frames(), source, 3)
        self.assertEqual(template.bind_many(np.empty((3, 0))), [gates] * 3)

    def test_measurements_kept_in_to_circuit(self):
        qc = ansatz(3, 1)
        qc.measure_all()
        template = CompiledTemplate.compile(qc, compile_fn=toy_compile)
        self.assertEqual(template.meas_map, [0, 1, 2])
        circ = template.to_circuit(np.zeros(qc.num_parameters))
        self.assertEqual(circ.count_ops().get("measure"), 3)
        body = template.body(np.zeros(qc.num_parameters))
        self.assertEqual(body["qubits"], 3)

    def test_properties_and_dict_values(self):
        qc = ansatz(3, 1)
        template = CompiledTemplate.compile(qc, "aria-1", compile_fn=toy_compile)
        self.assertEqual(template.num_qubits, 3)
        self.assertEqual(template.device, "aria-1")
        self.assertEqual(template.structural_key, structural_key(qc))
        self.assertEqual(set(template.native_gate_counts) - {"gpi", "gpi2", "ms"}, set())
        vals = np.linspace(0.1, 1.0, qc.num_parameters)
        by_param = dict(zip(qc.parameters, vals))
        by_name = {p.name: v for p, v in by_param.items()}
        self.assertEqual(template.bind(by_param), template.bind(vals))
        self.assertEqual(template.bind(by_name), template.bind(vals))

    def test_real_compiler_if_present(self):
        compile_fn = real_compile_or_none()
        if compile_fn is None:
            self.skipTest("qstore_qiskit.transpiler not available yet")
        rng = np.random.default_rng(31)
        source = ansatz(3, 2)
        template = CompiledTemplate.compile(source, "aria-1", 2)
        for _ in range(5):
            self._check_template(template, source, rng.uniform(-4, 4, source.num_parameters))


class TestStructuralKey(unittest.TestCase):
    def test_names_and_values_ignored(self):
        a, b = Parameter("a"), Parameter("b")
        x, y = Parameter("x"), Parameter("y")
        c1, c2 = QuantumCircuit(2), QuantumCircuit(2)
        c1.rx(a, 0)
        c1.rzz(2 * b + 0.5, 0, 1)
        c2.rx(x, 0)
        c2.rzz(2 * y + 0.5, 0, 1)
        self.assertEqual(structural_key(c1), structural_key(c2))
        # Different affine structure / positions -> different key.
        c3 = QuantumCircuit(2)
        c3.rx(x, 0)
        c3.rzz(2 * x + 0.5, 0, 1)
        c4 = QuantumCircuit(2)
        c4.rx(x, 0)
        c4.rzz(3 * y + 0.5, 0, 1)
        keys = {structural_key(c) for c in (c1, c3, c4)}
        self.assertEqual(len(keys), 3)

    def test_numeric_angles(self):
        c1, c2 = QuantumCircuit(1), QuantumCircuit(1)
        c1.rx(0.1, 0)
        c2.rx(0.2, 0)
        self.assertNotEqual(structural_key(c1), structural_key(c2))
        self.assertEqual(structural_key(c1, lift=True), structural_key(c2, lift=True))
        # Lifted numeric angle and a free parameter in the same place share a structure.
        c3 = QuantumCircuit(1)
        c3.rx(Parameter("t"), 0)
        self.assertEqual(structural_key(c1, lift=True), structural_key(c3, lift=True))

    def test_stable(self):
        rng = np.random.default_rng(0)
        qc = random_circuit(rng, 4, 30, params=list(ParameterVector("v", 5)))
        self.assertEqual(structural_key(qc), structural_key(qc.copy()))
        self.assertEqual(structural_key(qc, lift=True), structural_key(qc.copy(), lift=True))

    def test_collision_resistance(self):
        """Many random circuits: equal key <=> identical canonical structure."""
        rng = np.random.default_rng(77)
        seen: dict[str, str] = {}
        for trial in range(600):
            n = 1 + trial % 4
            params = list(ParameterVector(f"w{trial}", 3)) if trial % 2 else None
            qc = random_circuit(rng, n, int(rng.integers(1, 6)), params=params)
            if rng.random() < 0.3:
                qc.measure_all()
            for lift in (False, True):
                key = structural_key(qc, lift=lift)
                canon = _canonical(qc, lift)
                if key in seen:
                    self.assertEqual(seen[key], canon, "two structures share a key")
                seen[key] = canon
        self.assertGreater(len(seen), 500)

    def test_qubit_and_clbit_order_matter(self):
        c1, c2 = QuantumCircuit(2, 2), QuantumCircuit(2, 2)
        c1.cx(0, 1)
        c2.cx(1, 0)
        self.assertNotEqual(structural_key(c1), structural_key(c2))
        c1.measure([0, 1], [0, 1])
        c2.cx(1, 0)
        c3 = c1.copy_empty_like()
        c3.cx(0, 1)
        c3.measure([0, 1], [1, 0])
        self.assertNotEqual(structural_key(c1), structural_key(c3))


def _canonical(qc: QuantumCircuit, lift: bool) -> str:
    """Independent, slow canonical form: parameters renamed by first appearance."""
    from qstore_qiskit.cache import LIFTABLE_GATES

    names: dict = {}
    out = [f"{qc.num_qubits},{qc.num_clbits}"]
    n_lift = 0
    for inst in qc.data:
        ps = []
        for p in inst.params:
            if hasattr(p, "parameters") and p.parameters:
                for q in sorted(p.parameters, key=lambda q: q.name):
                    names.setdefault(q, f"c{len(names) + n_lift}")
                ps.append(str(p.subs({q: Parameter(names[q]) for q in p.parameters})))
            elif lift and inst.name in LIFTABLE_GATES:
                ps.append(f"c{len(names) + n_lift}")
                n_lift += 1
            else:
                ps.append(repr(p))
        out.append(
            f"{inst.name}{[qc.find_bit(q).index for q in inst.qubits]}"
            f"{[qc.find_bit(c).index for c in inst.clbits]}{ps}"
        )
    return "\n".join(out)


class TestLifting(unittest.TestCase):
    def test_lift_roundtrip(self):
        rng = np.random.default_rng(3)
        qc = random_circuit(rng, 3, 20)
        lifted, values = lift_parameters(qc)
        self.assertEqual(lifted.num_parameters, len(values))
        self.assertGreater(len(values), 0)
        self.assertTrue(Operator(lifted.assign_parameters(values)).equiv(Operator(qc)))

    def test_bound_circuits_share_template(self):
        # adaptive_lifting=False: one lifted template from the first sight.
        compile_fn = CountingCompile()
        cache = TemplateCache(compile_fn=compile_fn, adaptive_lifting=False)
        source = ansatz(3, 2)
        rng = np.random.default_rng(11)
        for i in range(6):
            vals = rng.uniform(-3, 3, source.num_parameters)
            bound = source.assign_parameters(vals)
            template, values = cache.get_template(bound, device="aria-1")
            self.assertFalse(np.isnan(values).any())
            body = cache.payload(bound, device="aria-1")
            assert_in_range(self, body["circuit"])
            assert_body_equiv(self, body["circuit"], template.final_frames(values), bound, 3)
        self.assertEqual(compile_fn.calls, 1)
        stats = cache.stats()
        self.assertEqual(stats["template_misses"], 1)
        self.assertEqual(stats["template_hits"], 11)

    def test_adaptive_lifting_compiles_exactly_first(self):
        # Default: the first sight compiles the bound circuit exactly (no lifted
        # parameters); the structure coming back with other values gets the lifted
        # template, and from then on every binding is a hit. Identical repeats hit the
        # exact entry.
        compile_fn = CountingCompile()
        cache = TemplateCache(compile_fn=compile_fn)
        source = ansatz(3, 2)
        rng = np.random.default_rng(11)
        first = source.assign_parameters(rng.uniform(-3, 3, source.num_parameters))
        template, values = cache.get_template(first, device="aria-1")
        self.assertEqual(len(template.parameters), 0)
        self.assertEqual(len(values), 0)
        assert_body_equiv(self, cache.payload(first, device="aria-1")["circuit"],
                          template.final_frames(values), first, 3)
        self.assertEqual(compile_fn.calls, 1)
        for _ in range(5):
            bound = source.assign_parameters(rng.uniform(-3, 3, source.num_parameters))
            template, values = cache.get_template(bound, device="aria-1")
            self.assertGreater(len(template.parameters), 0)
            body = cache.payload(bound, device="aria-1")
            assert_body_equiv(self, body["circuit"], template.final_frames(values), bound, 3)
        self.assertEqual(compile_fn.calls, 2)
        template, values = cache.get_template(first, device="aria-1")
        self.assertEqual(compile_fn.calls, 2)

    def test_lifted_compile_with_real_compiler(self):
        if real_compile_or_none() is None:
            self.skipTest("qstore_qiskit.transpiler not available yet")
        cache = TemplateCache()
        rng = np.random.default_rng(5)
        for device in ("aria-1", "forte-1"):
            for trial in range(8):
                qc = random_circuit(rng, 1 + trial % 4, 12)
                with self.subTest(device=device, trial=trial):
                    body = cache.payload(qc, device=device)
                    assert_in_range(self, body["circuit"])
                    template, values = cache.get_template(qc, device=device)
                    assert_body_equiv(
                        self, body["circuit"], template.final_frames(values), qc, qc.num_qubits
                    )

    def test_free_parameters_with_values(self):
        compile_fn = CountingCompile()
        cache = TemplateCache(adaptive_lifting=False, compile_fn=compile_fn)
        a, b = Parameter("a"), Parameter("b")
        qc = QuantumCircuit(2)
        qc.rx(a, 0)
        qc.cx(0, 1)
        qc.ry(0.4, 1)
        qc.rzz(b - a, 0, 1)
        template, values = cache.get_template(qc)
        self.assertEqual(template.parameters[0], a)
        self.assertTrue(np.isnan(values[0]))
        for vals in ([0.1, 0.2], [3.0, -1.0]):
            body = cache.payload(qc, vals)
            bound = qc.assign_parameters(vals)
            filled = values.copy()
            for i, p in enumerate(template.parameters):
                if p in (a, b):
                    filled[i] = dict(zip(qc.parameters, vals))[p]
            assert_body_equiv(self, body["circuit"], template.final_frames(filled), bound, 2)
        # Renamed parameters, same structure: no new compile.
        x, y = Parameter("x"), Parameter("y")
        qc2 = qc.assign_parameters({a: x, b: y})
        body = cache.payload(qc2, {x: 0.1, y: 0.2})
        self.assertEqual(body, cache.payload(qc, [0.1, 0.2]))
        self.assertEqual(compile_fn.calls, 1)
        # Binding rzz(b - a) leaves one number where the template has an affine form of
        # two parameters: a different lifted structure, compiled once more.
        bound = qc.assign_parameters([0.5, 0.6])
        cache.payload(bound)
        cache.payload(qc.assign_parameters([0.7, 0.1]))
        self.assertEqual(compile_fn.calls, 2)


    def test_global_phase_parameters(self):
        g, a = Parameter("g"), Parameter("a")
        qc = QuantumCircuit(2, global_phase=g)
        qc.rx(a, 0)
        qc.cx(0, 1)
        template = CompiledTemplate.compile(qc, compile_fn=toy_compile)
        self.assertEqual(template.parameters, tuple(qc.parameters))
        bound = qc.assign_parameters([0.4, 1.1])
        gates = template.bind([0.4, 1.1])
        assert_body_equiv(self, gates, template.final_frames([0.4, 1.1]), bound, 2)
        cache = TemplateCache(compile_fn=toy_compile)
        self.assertEqual(cache.payload(qc, [0.4, 1.1])["circuit"], gates)
        self.assertEqual(cache.payload(qc, {a: 0.4})["circuit"], gates)

    def test_global_phase_gate_ignored_in_key(self):
        from qiskit.circuit.library import GlobalPhaseGate

        compile_fn = CountingCompile()
        cache = TemplateCache(adaptive_lifting=False, compile_fn=compile_fn)
        for phase in (0.1, 0.7):
            qc = QuantumCircuit(1)
            qc.append(GlobalPhaseGate(phase), [])
            qc.rx(phase, 0)
            body = cache.payload(qc)
            template, values = cache.get_template(qc)
            assert_body_equiv(self, body["circuit"], template.final_frames(values), qc, 1)
        self.assertEqual(compile_fn.calls, 1)


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


class TestBadInput(unittest.TestCase):
    def setUp(self):
        self.qc = ansatz(2, 1)
        self.template = CompiledTemplate.compile(self.qc, "aria-1", compile_fn=toy_compile)

    def test_wrong_count(self):
        with self.assertRaisesRegex(QStoreCacheError, "expected 4"):
            self.template.bind([0.1, 0.2])
        with self.assertRaisesRegex(QStoreCacheError, "shape"):
            self.template.bind_many(np.zeros((3, 5)))
        cache = TemplateCache(compile_fn=toy_compile)
        with self.assertRaisesRegex(QStoreCacheError, "expected 4"):
            cache.payload(self.qc, [0.1])
        with self.assertRaisesRegex(QStoreCacheError, "free parameter"):
            cache.payload(self.qc)
        with self.assertRaisesRegex(QStoreCacheError, "no free parameters"):
            cache.payload(self.qc.assign_parameters([0.0] * 4), [1.0])

    def test_non_finite(self):
        for bad in (np.nan, np.inf, -np.inf):
            with self.assertRaisesRegex(QStoreCacheError, "finite"):
                self.template.bind([0.1, bad, 0.2, 0.3])
            with self.assertRaisesRegex(QStoreCacheError, "finite"):
                self.template.bind_many([[0.1, 0.2, 0.3, 0.4], [0.1, bad, 0.2, 0.3]])
        cache = TemplateCache(compile_fn=toy_compile)
        with self.assertRaisesRegex(QStoreCacheError, "finite"):
            cache.payload(self.qc, [0.1, np.nan, 0.2, 0.3])

    def test_unknown_and_missing_parameters(self):
        with self.assertRaisesRegex(QStoreCacheError, "unknown parameter"):
            self.template.bind({**dict(zip(self.qc.parameters, [0.0] * 4)), Parameter("zz"): 1.0})
        with self.assertRaisesRegex(QStoreCacheError, "no value"):
            self.template.bind({self.qc.parameters[0]: 1.0})
        cache = TemplateCache(compile_fn=toy_compile)
        with self.assertRaisesRegex(QStoreCacheError, "unknown parameter"):
            cache.payload(self.qc, {Parameter("nope"): 1.0})
        with self.assertRaisesRegex(QStoreCacheError, "not numbers"):
            self.template.bind(["a", "b", "c", "d"])

    def test_wrong_device(self):
        with self.assertRaisesRegex(QStoreCacheError, "compiled for device 'aria-1'"):
            self.template.bind([0.0] * 4, device="forte-1")
        with self.assertRaisesRegex(QStoreCacheError, "compiled for device"):
            self.template.bind_many([[0.0] * 4], device="forte-1")
        self.template.bind([0.0] * 4, device="aria-1")

    def test_not_native(self):
        qc = QuantumCircuit(2)
        qc.cx(0, 1)
        with self.assertRaisesRegex(QStoreCacheError, "not an IonQ native gate"):
            CompiledTemplate.compile(qc, compile_fn=lambda c, d, o: c)

    def test_control_flow(self):
        qc = QuantumCircuit(1, 1)
        with qc.if_test((qc.clbits[0], 1)):
            qc.x(0)
        with self.assertRaisesRegex(QStoreCacheError, "control flow"):
            structural_key(qc)

    def test_bad_limits(self):
        with self.assertRaises(QStoreCacheError):
            TemplateCache(max_templates=0)


if __name__ == "__main__":
    unittest.main()


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
