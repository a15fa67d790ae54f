"""Tests for :mod:`qstore_qiskit.payload` (native body serializer and its inverse)."""

from __future__ import annotations

import json
import math
import unittest

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit.quantum_info import Operator
from qiskit_ionq.helpers import qiskit_circ_to_ionq_circ
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate

from qstore_qiskit.payload import (
    QStorePayloadError,
    body_operator,
    circuit_to_native_gates,
    dense_width,
    ionq_native_to_circuit,
    measurement_map,
    native_body,
    normalize_phase,
)

# ---------------------------------------------------------------------------------------
# Shared helpers (also imported by test_cache)
# ---------------------------------------------------------------------------------------


def toy_compile(circuit: QuantumCircuit, device: str = "aria-1", optimization_level: int = 1):
    """A tiny *test-only* native lowering, used until / besides the real compiler.

    Qiskit translates to ``rz, sx, x`` plus ``rxx`` (Aria) or ``rzz`` (Forte); those map
    1:1 onto native gates: ``sx ~ GPI2(0)``, ``x ~ GPI(0)``, ``rxx(t) = MS(0, 0, t/2pi)``,
    ``rzz(t) = ZZ(t/2pi)``; ``rz`` stays as a (non-trailing) virtual frame. Parameters stay
    affine, and MS / ZZ angles land anywhere (negative, > 1/4), which exercises the
    serializer's normalisation.
    """
    two = "rzz" if device.startswith("forte") else "rxx"
    lowered = transpile(
        circuit,
        basis_gates=["rz", "sx", "x", two],
        optimization_level=min(optimization_level, 1),
        seed_transpiler=11,
    )
    out = QuantumCircuit(*lowered.qregs, *lowered.cregs)
    for inst in lowered.data:
        name = inst.name
        if name == "sx":
            out.append(GPI2Gate(0.0), inst.qubits)
        elif name == "x":
            out.append(GPIGate(0.0), inst.qubits)
        elif name == "rxx":
            out.append(MSGate(0.0, 0.0, inst.params[0] / (2 * math.pi)), inst.qubits)
        elif name == "rzz":
            out.append(ZZGate(inst.params[0] / (2 * math.pi)), inst.qubits)
        else:
            out._append(inst)
    return out


def real_compile_or_none():
    """The project's compiler as a compile_fn, or None while it does not exist yet."""
    try:
        from qstore_qiskit.transpiler import generate_ionq_pass_manager  # noqa: F401
    except ImportError:
        return None
    from qstore_qiskit.cache import default_compile

    return default_compile


def random_circuit(rng: np.random.Generator, num_qubits: int, depth: int, params=None):
    """A random circuit of standard gates; angles are ``params`` expressions or floats."""
    qc = QuantumCircuit(num_qubits)
    one = ["rx", "ry", "rz", "h", "sx", "x", "p", "u"]
    two = ["cx", "rzz", "rxx", "cz", "cp"]
    k = 0

    def angle():
        nonlocal k
        if params is None or rng.random() < 0.2:
            return float(rng.uniform(-2 * np.pi, 2 * np.pi))
        p = params[k % len(params)]
        k += 1
        form = rng.integers(3)
        if form == 0:
            return p
        if form == 1:
            return float(rng.uniform(-3, 3)) * p + float(rng.uniform(-1, 1))
        q = params[int(rng.integers(len(params)))]
        return p - 0.5 * q

    for _ in range(depth):
        if num_qubits > 1 and rng.random() < 0.35:
            a, b = (int(x) for x in rng.choice(num_qubits, 2, replace=False))
            g = two[int(rng.integers(len(two)))]
            if g == "cx":
                qc.cx(a, b)
            elif g == "cz":
                qc.cz(a, b)
            else:
                getattr(qc, g)(angle(), a, b)
        else:
            q = int(rng.integers(num_qubits))
            g = one[int(rng.integers(len(one)))]
            if g in ("h", "sx", "x"):
                getattr(qc, g)(q)
            elif g == "u":
                qc.u(angle(), angle(), angle(), q)
            else:
                getattr(qc, g)(angle(), q)
    return qc


def assert_body_equiv(test: unittest.TestCase, gates, frames, reference: QuantumCircuit, n: int):
    """Gates + trailing frames must equal ``reference`` (no measurements) up to global phase."""
    rebuilt = ionq_native_to_circuit(gates, n, frames)
    ref = reference.remove_final_measurements(inplace=False)
    test.assertTrue(Operator(rebuilt).equiv(Operator(ref)), "unitary mismatch")


def assert_in_range(test: unittest.TestCase, gates):
    for g in gates:
        for ph in g.get("phases", [g["phase"]] if "phase" in g else []):
            test.assertTrue(0.0 <= ph < 1.0, g)
        if g["gate"] == "ms":
            test.assertTrue(0.0 <= g["angle"] <= 0.25, g)
        if g["gate"] == "zz":
            test.assertTrue(-0.25 <= g["angle"] <= 0.25, g)


class TestNormalisation(unittest.TestCase):
    """MS / ZZ angle and phase normalisation, exact up to global phase."""

    EDGE = [0.0, 1e-15, -1e-15, 0.1, -0.1, 0.25, -0.25, 0.25 + 1e-9, 0.3, -0.3, 0.49,
            0.5 - 1e-13, 0.5, 0.5 + 1e-13, -0.5, 0.75, -0.75, 0.99, 1.0 - 1e-14, 1.0,
            -1.0, 1.3, 7.77, -12.4]  # fmt: skip

    def _check(self, gate_factory):
        rng = np.random.default_rng(5)
        for theta in self.EDGE:
            with self.subTest(theta=theta):
                qc = QuantumCircuit(2)
                qc.append(GPI2Gate(float(rng.random())), [0])
                qc.rz(float(rng.uniform(-7, 7)), 1)
                qc.append(gate_factory(rng, theta), [0, 1])
                qc.append(GPIGate(float(rng.random())), [1])
                qc.append(GPI2Gate(float(rng.random())), [0])
                qc.rz(0.3, 0)
                gates, frames = circuit_to_native_gates(qc, return_frames=True)
                assert_in_range(self, gates)
                assert_body_equiv(self, gates, frames, qc, 2)

    def test_ms_angles(self):
        self._check(lambda rng, t: MSGate(float(rng.uniform(-2, 2)), float(rng.random()), t))

    def test_zz_angles(self):
        self._check(lambda rng, t: ZZGate(t))

    def test_ms_rewrite_shapes(self):
        """|theta| > 1/4 inserts GPI(phi0), GPI(phi1) before the MS; otherwise none."""
        for theta, extra in [(0.2, 0), (-0.2, 0), (0.3, 2), (-0.3, 2), (0.5, 2), (1.0, 0)]:
            qc = QuantumCircuit(2)
            qc.append(MSGate(0.1, 0.2, theta), [0, 1])
            gates = circuit_to_native_gates(qc)
            self.assertEqual(len(gates), 1 + extra, (theta, gates))
            if extra:
                self.assertEqual([g["gate"] for g in gates], ["gpi", "gpi", "ms"])
                self.assertEqual(gates[0]["phase"], 0.1)
                self.assertEqual(gates[1]["phase"], 0.2)

    def test_negative_ms_flips_phase(self):
        qc = QuantumCircuit(2)
        qc.append(MSGate(0.1, 0.2, -0.125), [0, 1])
        (g,) = circuit_to_native_gates(qc)
        self.assertAlmostEqual(g["phases"][0], 0.6)
        self.assertEqual(g["phases"][1], 0.2)
        self.assertEqual(g["angle"], 0.125)

    def test_half_turn_ms_is_two_gpis(self):
        qc = QuantumCircuit(2)
        qc.append(MSGate(0.1, 0.2, 0.5), [0, 1])
        gates = circuit_to_native_gates(qc)
        self.assertEqual(gates[-1]["angle"], 0.0)
        assert_body_equiv(self, gates, None, qc, 2)

    def test_phase_mod(self):
        self.assertEqual(normalize_phase(-1e-18), 0.0)
        self.assertEqual(normalize_phase(1.0), 0.0)
        self.assertAlmostEqual(normalize_phase(-0.25), 0.75)
        self.assertAlmostEqual(normalize_phase(3.5), 0.5)
        self.assertEqual(math.copysign(1.0, normalize_phase(-0.0)), 1.0)


class TestFormat(unittest.TestCase):
    """Byte compatibility with qiskit-ionq and the body shape."""

    def test_byte_compatible_with_qiskit_ionq(self):
        rng = np.random.default_rng(3)
        for trial in range(20):
            qc = QuantumCircuit(4, 4)
            for _ in range(30):
                r = rng.random()
                q = int(rng.integers(4))
                if r < 0.3:
                    qc.append(GPIGate(float(rng.random())), [q])
                elif r < 0.6:
                    qc.append(GPI2Gate(float(rng.random())), [q])
                else:
                    a, b = (int(x) for x in rng.choice(4, 2, replace=False))
                    if trial % 2:
                        qc.append(MSGate(float(rng.random()), float(rng.random()), float(rng.uniform(0, 0.25))), [a, b])
                    else:
                        qc.append(ZZGate(float(rng.uniform(-0.25, 0.25))), [a, b])
            qc.barrier()
            qc.measure(range(4), range(4))
            ours = circuit_to_native_gates(qc)
            theirs, _, meas = qiskit_circ_to_ionq_circ(qc, "native")
            self.assertEqual(json.dumps(ours), json.dumps(theirs))
            self.assertEqual(measurement_map(qc), meas)

    def test_body_and_gate_width_in_one_pass(self):
        from qstore_qiskit.payload import native_body_and_gate_width
        from qstore_qiskit.providers.inspection import gate_width

        rng = np.random.default_rng(11)
        for trial in range(30):
            qc = QuantumCircuit(6, 6)
            for _ in range(int(rng.integers(0, 12))):
                kind = int(rng.integers(0, 5))
                a, b = (int(x) for x in rng.choice(5, 2, replace=False))
                if kind == 0:
                    qc.append(GPIGate(float(rng.random())), [a])
                elif kind == 1:
                    qc.append(GPI2Gate(float(rng.random())), [a])
                elif kind == 2:
                    qc.rz(float(rng.uniform(-3, 3)), a)
                elif kind == 3:
                    qc.append(MSGate(float(rng.random()), float(rng.random()), 0.25), [a, b])
                else:
                    qc.barrier()
            measured = [int(q) for q in rng.choice(6, int(rng.integers(0, 4)), replace=False)]
            qc.measure(measured, measured)
            with self.subTest(trial=trial):
                body, width = native_body_and_gate_width(qc)
                self.assertEqual(body, native_body(qc))
                self.assertEqual(body["qubits"], dense_width(qc))
                self.assertEqual(body["circuit"], circuit_to_native_gates(qc))
                self.assertEqual(width, gate_width(qc))

    def test_scan_gated_gives_gate_width(self):
        """The scan's gated qubits give gate_width without a second walk."""
        from qstore_qiskit.providers.inspection import gate_width, scan, scan_gated, width_of

        rng = np.random.default_rng(13)
        for trial in range(40):
            qc = QuantumCircuit(6, 6)
            for _ in range(int(rng.integers(0, 12))):
                kind = int(rng.integers(0, 7))
                a, b = (int(x) for x in rng.choice(6, 2, replace=False))
                if kind == 0:
                    qc.rz(float(rng.uniform(-3, 3)), a)
                elif kind == 1:
                    qc.sx(a)
                elif kind == 2:
                    qc.cx(a, b)
                elif kind == 3:
                    qc.h(a)
                elif kind == 4:
                    qc.delay(10, a)
                elif kind == 5:
                    qc.append(MSGate(float(rng.random()), float(rng.random()), 0.25), [a, b])
                else:
                    qc.barrier()
            measured = [int(q) for q in rng.choice(6, int(rng.integers(0, 4)), replace=False)]
            qc.measure(measured, measured)
            with self.subTest(trial=trial):
                *first, gated = scan_gated(qc)
                self.assertEqual(tuple(first), scan(qc))
                self.assertEqual(width_of(qc, gated), gate_width(qc))

    def test_scan_native_is_scan_and_body_in_one_pass(self):
        """The backend's one-pass scan of a bound native circuit gives what the scan and
        the serializer give apart; any other circuit is left to the scan (None)."""
        from qstore_qiskit.payload import native_body_and_gate_width
        from qstore_qiskit.providers.inspection import STANDARD_NATIVE, STANDARD_NATIVE_ZZ, scan, scan_native

        rng = np.random.default_rng(12)
        for trial in range(40):
            qc = QuantumCircuit(5, 6)
            for _ in range(int(rng.integers(1, 14))):
                kind = int(rng.integers(0, 8))
                a, b = (int(x) for x in rng.choice(5, 2, replace=False))
                if kind == 0:
                    qc.append(GPIGate(float(rng.random())), [a])
                elif kind == 1:
                    qc.sx(a)
                elif kind == 2:
                    qc.rz(float(rng.uniform(-7, 7)), a)
                elif kind == 3:
                    qc.rxx(float(rng.uniform(-4, 4)), a, b)
                elif kind == 4:
                    qc.x(a)
                elif kind == 5:
                    qc.rzz(float(rng.uniform(-4, 4)), a, b)
                elif kind == 6:
                    qc.append(MSGate(float(rng.random()), float(rng.random()), 0.2), [a, b])
                else:
                    qc.barrier()
            measured = [int(q) for q in rng.choice(5, int(rng.integers(0, 4)), replace=False)]
            qc.measure(measured, [c + 1 for c in measured])
            for standard in (STANDARD_NATIVE, STANDARD_NATIVE_ZZ):
                with self.subTest(trial=trial, zz="rzz" in standard):
                    found = scan_native(qc, standard)
                    scanned = scan(qc, standard)
                    if scanned[1] != "native":  # rzz without ZZ, or only rz
                        self.assertIsNone(found)
                        continue
                    self.assertIsNotNone(found)
                    self.assertEqual(found[0], scanned)
                    self.assertEqual(found[1:], native_body_and_gate_width(qc))

        theta = Parameter("t")
        parameterized = QuantumCircuit(1)
        parameterized.rz(theta, 0)
        parameterized.sx(0)
        only_rz = QuantumCircuit(1, 1)
        only_rz.rz(0.3, 0)
        only_rz.measure(0, 0)
        logical = QuantumCircuit(2)
        logical.sx(0)
        logical.cx(0, 1)
        mid_measure = QuantumCircuit(1, 1)
        mid_measure.measure(0, 0)
        mid_measure.sx(0)
        infinite = QuantumCircuit(1)
        infinite.sx(0)
        infinite.rz(math.inf, 0)
        reset = QuantumCircuit(1)
        reset.sx(0)
        reset.reset(0)
        cases = {"parameterized": parameterized, "only rz": only_rz, "logical": logical,
                 "mid-circuit measurement": mid_measure, "infinite angle": infinite, "reset": reset}
        for name, qc in cases.items():
            with self.subTest(name):
                self.assertIsNone(scan_native(qc))
        for qc in (mid_measure, infinite, reset):  # the scan's own clear error
            with self.assertRaises(ValueError):
                scan(qc)

    def test_body_and_width(self):
        qc = QuantumCircuit(5, 2)
        qc.append(GPIGate(0.25), [1])
        qc.append(MSGate(0, 0.5, 0.25), [0, 2])
        qc.barrier(range(5))
        qc.measure([0, 2], [1, 0])
        body = native_body(qc)
        self.assertEqual(list(body), ["gateset", "qubits", "circuit"])
        self.assertEqual(body["gateset"], "native")
        self.assertEqual(body["qubits"], 3)
        self.assertEqual(dense_width(qc), 3)
        self.assertEqual(measurement_map(qc), [2, 0])
        self.assertEqual(
            body["circuit"],
            [
                {"gate": "gpi", "target": 1, "phase": 0.25},
                {"gate": "ms", "targets": [0, 2], "phases": [0.0, 0.5], "angle": 0.25},
            ],
        )
        json.dumps(body)  # JSON-ready

    def test_trailing_rz_dropped(self):
        qc = QuantumCircuit(1, 1)
        qc.append(GPI2Gate(0.1), [0])
        qc.rz(1.234, 0)
        qc.measure(0, 0)
        gates, frames = circuit_to_native_gates(qc, return_frames=True)
        self.assertEqual(gates, [{"gate": "gpi2", "target": 0, "phase": 0.1}])
        self.assertAlmostEqual(frames[0], 1.234)

    def test_body_operator(self):
        rng = np.random.default_rng(12)
        source = random_circuit(rng, 3, 15)
        native = toy_compile(source)
        gates, frames = circuit_to_native_gates(native, return_frames=True)
        body = {"gateset": "native", "qubits": 3, "circuit": gates}
        self.assertTrue(body_operator(body, frames=frames).equiv(Operator(source)))

    def test_roundtrip(self):
        rng = np.random.default_rng(8)
        for n in range(1, 5):
            qc = toy_compile(random_circuit(rng, n, 20))
            gates, frames = circuit_to_native_gates(qc, return_frames=True)
            back = ionq_native_to_circuit({"qubits": n, "circuit": gates})
            self.assertEqual(circuit_to_native_gates(back), gates)


class TestEquivalence(unittest.TestCase):
    """Serialized bound native circuits reproduce the source unitary."""

    def test_random_bound_circuits(self):
        rng = np.random.default_rng(1234)
        for trial in range(40):
            n = 1 + trial % 5
            device = "forte-1" if trial % 3 == 0 else "aria-1"
            source = random_circuit(rng, n, 6 + 3 * n)
            with self.subTest(trial=trial, device=device):
                native = toy_compile(source, device)
                gates, frames = circuit_to_native_gates(native, return_frames=True)
                assert_in_range(self, gates)
                assert_body_equiv(self, gates, frames, source, n)

    def test_real_compiler_if_present(self):
        compile_fn = real_compile_or_none()
        if compile_fn is None:
            self.skipTest("qstore_qiskit.transpiler not available yet")
        rng = np.random.default_rng(99)
        for trial in range(10):
            n = 1 + trial % 4
            source = random_circuit(rng, n, 12)
            native = compile_fn(source, "aria-1", 2)
            gates, frames = circuit_to_native_gates(native, return_frames=True)
            assert_in_range(self, gates)
            assert_body_equiv(self, gates, frames, source, n)


class TestErrors(unittest.TestCase):
    """Clear errors for inputs that cannot be serialized."""

    def test_non_native(self):
        qc = QuantumCircuit(2)
        qc.cx(0, 1)
        with self.assertRaisesRegex(QStorePayloadError, "not an IonQ native gate"):
            circuit_to_native_gates(qc)

    def test_unbound(self):
        qc = QuantumCircuit(1)
        qc.append(GPIGate(Parameter("a")), [0])
        with self.assertRaisesRegex(QStorePayloadError, "unbound"):
            circuit_to_native_gates(qc)

    def test_non_finite(self):
        qc = QuantumCircuit(1)
        qc.append(GPIGate(float("nan")), [0])
        with self.assertRaisesRegex(QStorePayloadError, "finite"):
            circuit_to_native_gates(qc)

    def test_mid_circuit_measurement(self):
        qc = QuantumCircuit(1, 1)
        qc.measure(0, 0)
        qc.append(GPIGate(0.1), [0])
        with self.assertRaisesRegex(QStorePayloadError, "mid-circuit"):
            circuit_to_native_gates(qc)

    def test_unknown_gate_in_body(self):
        with self.assertRaises(QStorePayloadError):
            ionq_native_to_circuit([{"gate": "cnot", "targets": [0, 1]}], 2)
        with self.assertRaises(QStorePayloadError):
            ionq_native_to_circuit([{"gate": "gpi", "target": 0}], 1)


if __name__ == "__main__":
    unittest.main()
