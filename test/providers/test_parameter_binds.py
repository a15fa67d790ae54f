"""``parameter_binds`` shapes and values: a clear error or the correct result (Hypothesis).

#12 defects 8 and 9: complex values (numpy or Python) are rejected, a dict instead of a
list of dicts says what shape is expected; every other malformed input raises a
``TypeError``/``ValueError`` naming the problem before anything is sent, and every
well-formed input runs each circuit once per value set with the right angles.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from qstore_qiskit.providers.binds import check_parameter_binds, value_table

from .helpers import ProviderTestCase

A, B = Parameter("a"), Parameter("b")


def circuit() -> QuantumCircuit:
    qc = QuantumCircuit(1, 1, name="rx_ry")
    qc.rx(A, 0)
    qc.ry(B, 0)
    qc.measure(0, 0)
    return qc


def p_one(a: float, b: float) -> float:
    """P(1) after rx(a) then ry(b) on |0> (exact)."""
    # Bloch vector after rx(a): (0, -sin a, cos a); ry(b) rotates x-z: z' = cos b * z - sin b * x.
    z = math.cos(b) * math.cos(a)
    return (1 - z) / 2


finite = st.floats(min_value=-10, max_value=10, allow_nan=False, allow_infinity=False)
bad_scalar = st.one_of(
    st.complex_numbers(allow_nan=False, allow_infinity=False, max_magnitude=10).filter(lambda z: z.imag != 0),
    st.just(float("nan")),
    st.just(float("inf")),
    st.text(max_size=3),
    st.booleans(),
    st.none(),
)


class TestShapes(ProviderTestCase):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(values=st.lists(st.tuples(finite, finite), min_size=1, max_size=6), shots=st.integers(200, 400))
    def test_well_formed_runs_each_value_set(self, values, shots):
        a = [v[0] for v in values]
        b = [v[1] for v in values]
        as_numpy = len(values) % 2 == 0  # numpy arrays and lists mean the same
        binds = [{A: np.array(a) if as_numpy else a, "b": b}]
        result = self.backend.run(circuit(), shots=shots, parameter_binds=binds).result()
        probs = result.get_probabilities() if len(values) > 1 else [result.get_probabilities()]
        self.assertEqual(len(result.results), len(values))
        for (x, y), p in zip(values, probs):
            self.assertAlmostEqual(p.get("1", 0.0), p_one(x, y), places=6)

    @settings(max_examples=60, deadline=None)
    @given(value=bad_scalar, where=st.sampled_from(["scalar", "list", "numpy"]))
    def test_bad_values_are_named(self, value, where):
        wrapped = {"scalar": value, "list": [0.5, value], "numpy": None}[where]
        if where == "numpy":
            # numpy turns a bool into 1.0 (a real angle then); everything else stays bad.
            assume(not isinstance(value, bool))
            try:
                wrapped = np.array([0.5, value])
            except (TypeError, ValueError):
                wrapped = [value]
        with self.assertRaises((TypeError, ValueError)) as caught:
            self.backend.run(circuit(), parameter_binds=[{A: wrapped, B: 0.1 if where == "scalar" else [0.1, 0.2]}])
        self.assertIn("parameter_binds", str(caught.exception))

    def test_complex_values_rejected(self):  # #12 defect 8
        for value in (np.array([math.pi + 5j]), np.complex128(1 + 0j), [1j], 1 + 2j, np.array([1.0], dtype=complex)):
            with self.subTest(value=value), self.assertRaisesRegex(ValueError, "complex"):
                self.backend.run(circuit(), parameter_binds=[{A: value, B: [0.0] * np.size(value)}])

    def test_dict_instead_of_list(self):  # #12 defect 9
        with self.assertRaisesRegex(TypeError, r"parameter_binds is a dict; expected a list with one"):
            self.backend.run(circuit(), parameter_binds={A: 1.0, B: 2.0})

    @settings(max_examples=60, deadline=None)
    @given(
        outer=st.one_of(
            st.integers(), st.text(max_size=4), st.dictionaries(st.text(max_size=2), st.floats(), max_size=2),
            st.lists(st.one_of(st.none(), st.integers(), st.lists(st.floats(), max_size=2)), max_size=3),
        )
    )
    def test_malformed_outer_shapes(self, outer):
        try:
            check_parameter_binds(outer, 1)
        except (TypeError, ValueError) as exc:
            self.assertIn("parameter_binds", str(exc))
            return
        # Accepted outer shapes are a list with one entry per circuit (entries are
        # checked per circuit, and anything but a dict is refused there).
        self.assertIsInstance(outer, list)
        self.assertEqual(len(outer), 1)
        if outer[0] is not None and not isinstance(outer[0], dict):
            with self.assertRaisesRegex(ValueError, "parameter_binds"):
                value_table(circuit(), outer[0])

    @settings(max_examples=60, deadline=None)
    @given(
        keys=st.lists(st.sampled_from(["a", "b", "c", A, B, Parameter("a")]), min_size=0, max_size=3, unique=True),
        lengths=st.lists(st.integers(0, 3), min_size=3, max_size=3),
    )
    def test_keys_and_lengths(self, keys, lengths):
        qc = circuit()
        binds = {k: [0.1] * n for k, n in zip(keys, lengths)}
        try:
            table = value_table(qc, binds)
        except (TypeError, ValueError) as exc:
            self.assertIn("parameter_binds", str(exc))
            return
        # Accepted: exactly a and b (by object or name), same non-zero length.
        names = {k if isinstance(k, str) else k.name for k in keys}
        self.assertEqual(names, {"a", "b"})
        self.assertTrue(all(k in (A, B, "a", "b") for k in keys))
        self.assertEqual(table.shape, (lengths[0], 2))
