"""Tests for :mod:`qstore_qiskit.cache.template` (compiled templates and binding)."""

from __future__ import annotations

import gc
import json
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
from .helpers import ansatz


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


class TestComplexValues(unittest.TestCase):
    """#12 defect 8 in the cache: complex values are an error, never truncated."""

    def setUp(self):
        self.a, self.b = Parameter("a"), Parameter("b")
        qc = QuantumCircuit(2)
        qc.rx(self.a, 0)
        qc.rzz(self.b, 0, 1)
        self.template = CompiledTemplate.compile(qc, compile_fn=toy_compile)

    def test_bind_rejects_complex(self):
        t = self.template
        cases = [
            [np.pi + 5j, 0.1],
            np.array([np.pi + 5j, 0.1]),
            np.array([1.0 + 0j, 0.1]),  # complex dtype, even with a zero imaginary part
            {self.a: np.pi + 5j, self.b: 0.1},
            {self.a: np.complex64(1 + 1j), self.b: 0.1},
            {"a": np.array(2 + 1j), "b": 0.1},
        ]
        for bad in cases:
            with self.subTest(bad=bad), self.assertRaisesRegex(QStoreCacheError, "complex"):
                t.bind(bad)

    def test_bind_many_rejects_complex(self):
        t = self.template
        for bad in (np.array([[0.1, 0.2], [np.pi + 5j, 0.1]]), [[0.1, 0.2], [1j, 0.0]],
                    [{self.a: 0.1, self.b: 0.2}, {self.a: 1j, self.b: 0.0}]):
            with self.subTest(bad=bad), self.assertRaisesRegex(QStoreCacheError, "complex"):
                t.bind_many(bad)

    def test_real_values_still_accepted(self):
        t = self.template
        ref = t.bind([0.3, 0.1])
        self.assertEqual(t.bind(np.array([0.3, 0.1])), ref)
        self.assertEqual(t.bind([1, 0]), t.bind([1.0, 0.0]))  # integers are real numbers
        self.assertEqual(t.bind({self.a: np.float64(0.3), self.b: 0.1}), ref)
        self.assertEqual(t.bind_many(np.array([[0.3, 0.1]]))[0], ref)


class TestEmitterMemo(unittest.TestCase):
    """Generated emitters are shared by equal plans only."""

    def test_memo_returns_the_emitter_of_this_plan_only(self):
        from qstore_qiskit.cache import emitter

        base = [("gpi2", (0,), (0,)), ("ms", (0, 1), (1, 2, 3)), ("gpi", (1,), (4,))]
        variants = [
            base,
            [("gpi2", (1,), (0,)), ("ms", (0, 1), (1, 2, 3)), ("gpi", (1,), (4,))],  # qubit
            [("gpi2", (0,), (4,)), ("ms", (0, 1), (1, 2, 3)), ("gpi", (1,), (0,))],  # slots
            [("gpi", (0,), (0,)), ("ms", (0, 1), (1, 2, 3)), ("gpi", (1,), (4,))],  # kind
            [("gpi2", (0,), (0,)), ("ms", (1, 0), (1, 2, 3)), ("gpi", (1,), (4,))],  # order
            base[:2],
        ]
        emitters = [emitter.make_emitter(p) for p in variants]
        self.assertEqual(len({id(e) for e in emitters}), len(variants))
        v = [0.125, 0.25, 0.375, 0.0625, 0.5]
        for plan, emit in zip(variants, emitters):
            n = 1 + max(x for _, _, ss in plan for x in ss)  # emitters take exactly their slots
            expected = emitter._generate(tuple(plan))(v[:n])
            self.assertEqual(emit(v[:n]), expected)
            # Equal plans (as lists or tuples) share the function ...
            same = emitter.make_emitter([[k, list(q), list(s)] for k, q, s in plan])
            self.assertIs(same, emit)
        # ... which returns new objects on every call.
        a, b = emitters[0](v), emitters[0](v)
        self.assertEqual(a, b)
        self.assertIsNot(a[0], b[0])
        a[1]["targets"].append(7)
        self.assertEqual(emitters[0](v)[1]["targets"], [0, 1])

    def test_memo_is_bounded(self):
        from qstore_qiskit.cache import emitter

        for i in range(emitter._MEMO_SIZE + 10):
            emitter.make_emitter([("gpi", (i,), (0,))])
        self.assertLessEqual(len(emitter._MEMO), emitter._MEMO_SIZE)
        plan = [("gpi", (3,), (0,))]
        self.assertEqual(emitter.make_emitter(plan)([0.5]), [{"gate": "gpi", "target": 3, "phase": 0.5}])


class TestDataDrivenEmitter(unittest.TestCase):
    """The data-driven emitter returns exactly what the generated one does; templates
    switch to the generated one only after GENERATE_AFTER bindings, without any change."""

    def test_equal_to_generated_code_for_every_gate_mix(self):
        from qstore_qiskit.cache import emitter

        rng = np.random.default_rng(21)
        plans = [[], [("gpi", (2,), (0,))], [("ms", (0, 1), (0, 1, 2))], [("zz", (1, 0), (0,))]]
        for device, seed in (("aria-1", 1), ("forte-1", 2), ("aria-1", 3)):
            qc = random_circuit(np.random.default_rng(seed), 4, 14, ParameterVector("p", 4))
            plans.append(CompiledTemplate.compile(qc, device, compile_fn=toy_compile)._plan)
        for plan in plans:
            n = 1 + max((x for _, _, ss in plan for x in ss), default=-1)
            data, generated = emitter.make_data_emitter(plan), emitter._generate(tuple(plan))
            for _ in range(3):
                v = rng.uniform(0, 1, n).tolist()
                got, want = data(v), generated(v)
                self.assertEqual(json.dumps(got), json.dumps(want))  # key order too
                self.assertEqual([list(g) for g in got], [list(g) for g in want])
            # New, independent objects on every call.
            a, b = data(v), data(v)
            for x, y in zip(a, b):
                self.assertIsNot(x, y)
                for key in ("targets", "phases"):
                    if key in x:
                        self.assertIsNot(x[key], y[key])

    def test_switch_to_generated_code_changes_no_output(self):
        from qstore_qiskit.cache import emitter

        qc = random_circuit(np.random.default_rng(5), 4, 16, ParameterVector("p", 5))
        t = CompiledTemplate.compile(qc, "forte-1", compile_fn=toy_compile)
        view = t._relabel(list(t.parameters))  # views share the template's emitter
        X = np.random.default_rng(6).uniform(-20, 20, (emitter.GENERATE_AFTER + 10, len(t.parameters)))
        self.assertFalse(t._emit.generated)
        before = t.bind_many(X[:50])  # data-driven
        self.assertFalse(t._emit.generated)
        view.bind_many(X[50 : emitter.GENERATE_AFTER])
        self.assertTrue(t._emit.generated)  # counted across views
        self.assertEqual(json.dumps(t.bind_many(X[:50])), json.dumps(before))
        self.assertEqual(json.dumps(t.bind(X[3])), json.dumps(before[3]))
