"""Tests for :mod:`qstore_qiskit.cache.analysis` (structural keys and lifting)."""

from __future__ import annotations

import unittest

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.quantum_info import Operator

from qstore_qiskit.cache import (
    CompiledTemplate,
    TemplateCache,
    lift_parameters,
    structural_key,
)

from ..test_payload import (
    assert_body_equiv,
    assert_in_range,
    random_circuit,
    real_compile_or_none,
    toy_compile,
)
from .helpers import CountingCompile, ansatz


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

    def test_key_depends_on_values_not_object_identity(self):
        from qstore_qiskit.cache.analysis import _canonical_bytes

        name = "".join(["r", "x"])  # equal to "rx", another object
        shared = (0,)
        one = [2, 0, ("rx", shared, (), (0,)), ("rx", shared, (), (1,))]
        other = [2, 0, (name, (0,), (), (0,)), ("rx", tuple([0]), (), (1,))]
        self.assertIsNot(one[2][0], other[2][0])
        self.assertEqual(_canonical_bytes(one), _canonical_bytes(other))
        self.assertNotEqual(_canonical_bytes(one), _canonical_bytes([2, 0, ("rx", (0,), (), (0,)), ("rx", (0,), (), ("1",))]))
        # The same circuit built twice, and in another process, has one key.
        import subprocess
        import sys

        def build() -> QuantumCircuit:
            qc = QuantumCircuit(3, 2)
            qc.rx(0.25, 0)
            qc.cx(0, 2)
            qc.ry(Parameter("a") * 2 + 1, 1)
            qc.measure([0, 1], [1, 0])
            return qc

        key = structural_key(build(), lift=True)
        self.assertEqual(key, structural_key(build(), lift=True))
        code = (
            "from qiskit import QuantumCircuit\nfrom qiskit.circuit import Parameter\n"
            "from qstore_qiskit.cache import structural_key\n"
            "qc = QuantumCircuit(3, 2)\nqc.rx(0.25, 0)\nqc.cx(0, 2)\nqc.ry(Parameter('b') * 2 + 1, 1)\n"
            "qc.measure([0, 1], [1, 0])\nprint(structural_key(qc, lift=True))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
        self.assertEqual(out.stdout.strip(), key)

    def test_scan_rows_give_the_same_analysis(self):
        """The backend's scan hands its instruction reads to the analysis (one walk per
        run()): keys, columns, values and lift sites equal the analysis's own walk, and
        the scan's result does not change when it records them."""
        from qiskit.circuit import Instruction

        from qstore_qiskit.cache.analysis import _analyse
        from qstore_qiskit.providers.inspection import scan_gated

        rng = np.random.default_rng(31)
        for trial in range(120):
            n = 1 + trial % 5
            params = list(ParameterVector(f"r{trial}", 3)) if trial % 3 == 0 else None
            qc = random_circuit(rng, n, int(rng.integers(0, 14)), params=params)
            qc.add_register(ClassicalRegister(n + 1, "c"))
            if trial % 4 == 1:
                qc.barrier()
            if trial % 5 == 2:
                # a custom instruction with clbits (read through the rows, mapped in the key)
                qc.append(Instruction("tagged", 1, 1, [0.5]), [0], [n])
            if trial % 2:
                qc.measure(range(n), range(n))
            rows: list = []
            with self.subTest(trial=trial):
                self.assertEqual(scan_gated(qc, rows=rows), scan_gated(qc))
                self.assertEqual(len(rows), len(qc.data))
                for lift in (False, True):
                    for sites in (False, True):
                        own, given = _analyse(qc, lift, sites), _analyse(qc, lift, sites, rows=rows)
                        self.assertEqual(given.key, own.key)
                        self.assertEqual(given.columns, own.columns)
                        np.testing.assert_array_equal(given.values, own.values)
                        self.assertEqual(given.lift_sites, own.lift_sites)

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


if __name__ == "__main__":
    unittest.main()
