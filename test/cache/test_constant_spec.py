"""The constant-template fast path of the builder (a new circuit's exact template).

:func:`~qstore_qiskit.cache.builder.constant_spec` must return exactly what the general
trace and layout return (bit for bit), and hand every case it does not cover (parameters,
non-float angles, errors) back to the general path.
"""

from __future__ import annotations

import math
import unittest

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate

from qstore_qiskit.cache import CompiledTemplate, QStoreCacheError
from qstore_qiskit.cache.builder import build_spec, constant_spec, order_slots, trace_native
from qstore_qiskit.payload import circuit_to_native_gates
from qstore_qiskit.transpiler import generate_ionq_pass_manager


def _general(native: QuantumCircuit):
    return order_slots(trace_native(native, []), native, 0)


def _random_logical(rng: np.random.Generator, zz: bool) -> QuantumCircuit:
    n = int(rng.integers(2, 6))
    qc = QuantumCircuit(n, n)
    for _ in range(int(rng.integers(1, 6))):
        for q in range(n):
            [qc.rx, qc.ry, qc.rz][int(rng.integers(3))](float(rng.uniform(-6, 6)), q)
        a, b = rng.choice(n, 2, replace=False)
        qc.cx(int(a), int(b))
        if zz:
            qc.rzz(float(rng.uniform(-3, 3)), int(b), int(a))
    picks = rng.permutation(n)[: int(rng.integers(1, n + 1))]
    for c, q in enumerate(picks):
        qc.measure(int(q), c)
    return qc


class TestConstantSpec(unittest.TestCase):
    def assertSameSpec(self, a, b):
        for name in a.__dataclass_fields__:
            x, y = getattr(a, name), getattr(b, name)
            if isinstance(x, np.ndarray):
                self.assertEqual((x.dtype, x.shape, x.tobytes()), (y.dtype, y.shape, y.tobytes()), name)
            elif name in ("terms", "flips"):
                for u, v in zip(x, y):
                    self.assertEqual((u.dtype, u.shape, u.tobytes()), (v.dtype, v.shape, v.tobytes()), name)
            else:
                self.assertEqual(x, y, name)

    def test_compiled_circuits_match_general_path(self):
        rng = np.random.default_rng(5)
        for device in ("aria-1", "forte-1"):  # forte-1 has ZZ: flips
            pm = generate_ionq_pass_manager(device, 2)
            flipped = 0
            for i in range(40):
                native = pm.run(_random_logical(rng, zz=i % 2 == 1))
                spec = constant_spec(native)
                self.assertIsNotNone(spec)
                self.assertSameSpec(_general(native), spec)
                flipped += bool(spec.flips[0].size)
            if device == "forte-1":
                self.assertGreater(flipped, 0)

    def test_every_native_form(self):
        qc = QuantumCircuit(3, 2)
        qc.rz(0.3, 0)
        qc.append(GPIGate(0.1), [0])
        qc.append(GPI2Gate(-0.7), [1])
        qc.sx(2)
        qc.x(0)
        qc.barrier()
        qc.rz(-1.25, 1)
        qc.append(MSGate(0.2, 0.4, 0.125), [0, 1])
        qc.rxx(0.9, 1, 2)
        qc.append(ZZGate(0.4), [0, 2])  # |angle| > 1/4: flips later phases
        qc.rzz(-2.0, 1, 2)
        qc.id(2)
        qc.append(GPI2Gate(0.5), [2])
        qc.measure(2, 0)
        qc.measure(0, 1)
        spec = constant_spec(qc)
        self.assertSameSpec(_general(qc), spec)
        # directives (the barrier) are read by Qiskit's flag: the size Qiskit reports
        self.assertEqual(spec.native_size, qc.size())
        # and it binds to the payload of the circuit itself (up to rounding: the
        # serializer sums the frames in another order)
        bound = CompiledTemplate.from_native(qc, []).bind([])
        direct = circuit_to_native_gates(qc)
        self.assertEqual([(g["gate"], g.get("target"), g.get("targets")) for g in bound],
                         [(g["gate"], g.get("target"), g.get("targets")) for g in direct])
        for a, b in zip(bound, direct):
            for key in ("phase", "phases", "angle"):
                if key in a:
                    np.testing.assert_allclose(a[key], b[key], atol=1e-12)

    def test_hands_other_circuits_to_the_general_path(self):
        theta = Parameter("t")
        with_parameter = QuantumCircuit(1)
        with_parameter.rz(theta, 0)
        with_parameter.sx(0)
        self.assertIsNone(constant_spec(with_parameter))
        numpy_angle = QuantumCircuit(1)
        numpy_angle.append(GPIGate(np.float32(0.25)), [0])  # whatever Qiskit stores: same spec
        self.assertSameSpec(_general(numpy_angle), build_spec(numpy_angle, []))
        after_measure = QuantumCircuit(1, 1)
        after_measure.measure(0, 0)
        after_measure.sx(0)
        self.assertIsNone(constant_spec(after_measure))
        with self.assertRaisesRegex(QStoreCacheError, "after a measurement"):
            build_spec(after_measure, [])
        not_native = QuantumCircuit(2)
        not_native.cx(0, 1)
        self.assertIsNone(constant_spec(not_native))
        with self.assertRaisesRegex(QStoreCacheError, "not an IonQ native gate"):
            build_spec(not_native, [])
        infinite = QuantumCircuit(1)
        infinite.rz(math.inf, 0)
        self.assertIsNone(constant_spec(infinite))
        with self.assertRaisesRegex(QStoreCacheError, "not finite"):
            build_spec(infinite, [])


if __name__ == "__main__":
    unittest.main()


class TestConstantRow(unittest.TestCase):
    """One binding of a constant template (plain floats) equals the numpy path bit for bit."""

    EDGES = [0.0, -0.0, 0.25, -0.25, 0.5, -0.5, 0.75, 1.0, -1.0, 0.125, 0.25 + 1e-12, 0.25 + 2e-12,
             -0.25 - 2e-12, 1e-300, -1e-300, 3.5, -7.25, 1e6 + 0.5, 2.0 ** -30, 0.9999999999999999]

    def _angle(self, rng):
        if rng.random() < 0.5:
            return float(self.EDGES[int(rng.integers(len(self.EDGES)))])
        return float(rng.uniform(-20, 20))

    def test_matches_numpy_path(self):
        rng = np.random.default_rng(17)
        slow = 0
        for trial in range(400):
            n = int(rng.integers(1, 5))
            qc = QuantumCircuit(n, n)
            for _ in range(int(rng.integers(0, 14))):
                kind = int(rng.integers(0, 6))
                a = int(rng.integers(n))
                if kind == 0:
                    qc.rz(self._angle(rng) * 6.283185307179586, a)
                elif kind == 1:
                    qc.append(GPIGate(self._angle(rng)), [a])
                elif kind == 2:
                    qc.append(GPI2Gate(self._angle(rng)), [a])
                elif kind == 3:
                    qc.sx(a)
                elif n > 1:
                    b = int((a + 1 + rng.integers(n - 1)) % n)
                    if kind == 4:
                        qc.append(MSGate(self._angle(rng), self._angle(rng), self._angle(rng)), [a, b])
                    else:
                        qc.rxx(self._angle(rng) * 6.283185307179586, a, b)
            qc.measure(range(n), range(n))
            template = CompiledTemplate.from_native(qc, [])
            one = template.bind_many(np.empty((1, 0)))[0]  # the plain-float path
            self.assertIsNotNone(template._constant_row())
            two = template.bind_many(np.empty((2, 0)))  # the numpy path
            with self.subTest(trial=trial):
                self.assertEqual(repr(one), repr(two[0]))
                self.assertEqual(repr(one), repr(two[1]))
            slow += template._constant_row()[1] is not None
        self.assertGreater(slow, 10)  # the GPI (x) GPI rewrite of large MS angles is covered

    def test_zz_templates_take_the_numpy_path(self):
        qc = QuantumCircuit(2)
        qc.append(GPIGate(0.1), [0])
        qc.append(ZZGate(0.4), [0, 1])
        qc.append(GPIGate(0.2), [0])
        template = CompiledTemplate.from_native(qc, [])
        self.assertEqual(repr(template.bind([])), repr(template.bind_many(np.empty((2, 0)))[0]))


class TestFirstBinding(unittest.TestCase):
    """A template's first binding (a plain loop) equals the data-driven emitter's."""

    def test_emit_plain_matches_data_emitter(self):
        from qstore_qiskit.cache.emitter import emit_plain, make_data_emitter

        rng = np.random.default_rng(23)
        for trial in range(200):
            plan, slot = [], 0
            for _ in range(int(rng.integers(0, 20))):
                kind = ["gpi", "gpi2", "ms", "zz"][int(rng.integers(4))]
                qs = tuple(int(q) for q in rng.choice(6, 1 if kind.startswith("gpi") else 2, replace=False))
                width = 3 if kind == "ms" else 1
                plan.append((kind, qs, tuple(range(slot, slot + width))))
                slot += width
            v = rng.uniform(0, 1, slot).tolist()
            with self.subTest(trial=trial):
                plain, data = emit_plain(plan, v), make_data_emitter(plan)(v)
                self.assertEqual(repr(plain), repr(data))
                self.assertEqual([list(g) for g in plain], [list(g) for g in data])  # key order

    def test_first_binding_then_data_emitter(self):
        qc = QuantumCircuit(2)
        qc.append(GPIGate(0.1), [0])
        qc.append(MSGate(0.2, 0.3, 0.2), [0, 1])
        template = CompiledTemplate.from_native(qc, [])
        first = template.bind([])
        self.assertIsNone(template._emit._emit)  # nothing built for the first binding
        self.assertEqual(repr(template.bind([])), repr(first))
        self.assertIsNotNone(template._emit._emit)
