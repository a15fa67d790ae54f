"""Property-based tests (Hypothesis) of the server's job parsing (issue #12): random JSON
and random gate lists get a 4xx with an IonQ error body, or a result equal to the exact
distribution; never a 500."""

from __future__ import annotations

import math
import unittest

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit.library import (
    HGate, RXGate, RXXGate, RYGate, RYYGate, RZGate, RZZGate, SdgGate, SGate, SwapGate,
    SXdgGate, SXGate, TdgGate, TGate, XGate, YGate, ZGate,
)
from qiskit.quantum_info import Statevector
from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate

from qstore_qiskit.server import LocalServer

from .helpers import http

WIDTH = 3
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                             database=None, suppress_health_check=list(HealthCheck))

FIXED = {"x": XGate, "y": YGate, "z": ZGate, "h": HGate, "s": SGate, "si": SdgGate,
         "t": TGate, "ti": TdgGate, "v": SXGate, "vi": SXdgGate}
ROT1 = {"rx": RXGate, "ry": RYGate, "rz": RZGate}
ROT2 = {"xx": RXXGate, "yy": RYYGate, "zz": RZZGate}

angles = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)
turns = st.floats(-1, 1, allow_nan=False)


@st.composite
def qis_gate(draw):
    """A random qis gate dict and the qiskit instruction it means."""
    kind = draw(st.sampled_from(["fixed", "rot1", "rot2", "swap"]))
    if kind in ("fixed", "rot1"):
        qubits = draw(st.permutations(range(WIDTH)))
        target = qubits[0]
        controls = list(qubits[1:1 + draw(st.integers(0, 1))])
        if kind == "fixed":
            name = draw(st.sampled_from(sorted(FIXED)))
            gate, op = {"gate": name, "target": target}, FIXED[name]()
        else:
            name, theta = draw(st.sampled_from(sorted(ROT1))), draw(angles)
            gate, op = {"gate": name, "target": target, "rotation": theta}, ROT1[name](theta)
        if controls:
            gate["controls"] = controls
            op = op.control(len(controls))
        return gate, op, controls + [target]
    a, b = draw(st.permutations(range(WIDTH)))[:2]
    if kind == "swap":
        return {"gate": "swap", "targets": [a, b]}, SwapGate(), [a, b]
    name, theta = draw(st.sampled_from(sorted(ROT2))), draw(angles)
    return {"gate": name, "targets": [a, b], "rotation": theta}, ROT2[name](theta), [a, b]


@st.composite
def native_gate(draw):
    kind = draw(st.sampled_from(["gpi", "gpi2", "ms", "zz"]))
    if kind in ("gpi", "gpi2"):
        q, phi = draw(st.integers(0, WIDTH - 1)), draw(turns)
        op = GPIGate(phi) if kind == "gpi" else GPI2Gate(phi)
        return {"gate": kind, "target": q, "phase": phi}, op, [q]
    a, b = draw(st.permutations(range(WIDTH)))[:2]
    if kind == "ms":
        p0, p1 = draw(turns), draw(turns)
        theta = draw(st.floats(0, 0.25, allow_nan=False))
        return ({"gate": "ms", "targets": [a, b], "phases": [p0, p1], "angle": theta},
                MSGate(p0, p1, theta), [a, b])
    theta = draw(st.floats(-1, 1, allow_nan=False))
    return {"gate": "zz", "targets": [a, b], "angle": theta}, ZZGate(theta), [a, b]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELDS = ["type", "backend", "shots", "name", "metadata", "noise", "settings", "session_id",
          "dry_run", "input", "lang"]
INPUT_FIELDS = ["gateset", "qubits", "circuit", "circuits", "data"]


def valid_body() -> dict:
    return {"type": "ionq.circuit.v1", "backend": "simulator", "shots": 50,
            "input": {"gateset": "qis", "qubits": 2,
                      "circuit": [{"gate": "h", "target": 0},
                                  {"gate": "cnot", "control": 0, "target": 1}]}}


class TestParsingProperties(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = LocalServer(seed=8, max_qubits=10, max_shots=10_000,
                              max_gates_per_circuit=200).start()

    @classmethod
    def tearDownClass(cls):
        cls.assert_no_500(cls.srv)
        cls.srv.stop()

    @staticmethod
    def assert_no_500(srv):
        if srv.stats()["by_status"].get(500, 0):
            raise AssertionError("the server answered 500")

    def post(self, body=None, raw=None):
        return http("POST", self.srv.url + "/jobs", body=body, raw=raw)[0::2]

    def check_error(self, status, payload):
        self.assertTrue(400 <= status < 500, (status, payload))
        self.assertEqual(payload["statusCode"], status)
        self.assertIsInstance(payload["message"], str)

    def check_exact(self, job_id, circuit: QuantumCircuit):
        probs = http("GET", f"{self.srv.url}/jobs/{job_id}/results/probabilities")[2]
        exact = Statevector(circuit).probabilities()
        got = np.zeros(len(exact))
        for key, p in probs.items():
            got[int(key)] = p
        np.testing.assert_allclose(got, exact, atol=1e-9)

    @PROPERTY_SETTINGS
    @given(st.lists(qis_gate(), min_size=1, max_size=12))
    def test_random_qis_circuits_are_exact(self, gates):
        circuit = QuantumCircuit(WIDTH)
        for _, op, qubits in gates:
            circuit.append(op, qubits)
        status, payload = self.post({"type": "ionq.circuit.v1", "backend": "simulator",
                                     "shots": 10, "input": {"gateset": "qis", "qubits": WIDTH,
                                                            "circuit": [g for g, _, _ in gates]}})
        self.assertEqual(status, 201, payload)
        self.check_exact(payload["id"], circuit)

    @PROPERTY_SETTINGS
    @given(st.lists(native_gate(), min_size=1, max_size=12))
    def test_random_native_circuits_are_exact(self, gates):
        circuit = QuantumCircuit(WIDTH)
        for _, op, qubits in gates:
            circuit.append(op, qubits)
        status, payload = self.post({"type": "ionq.circuit.v1", "backend": "simulator",
                                     "shots": 10, "input": {"gateset": "native",
                                                            "qubits": WIDTH,
                                                            "circuit": [g for g, _, _ in gates]}})
        self.assertEqual(status, 201, payload)
        self.check_exact(payload["id"], circuit)

    @PROPERTY_SETTINGS
    @given(json_values)
    def test_random_json_bodies(self, body):
        status, payload = self.post(body)
        self.check_error(status, payload)  # nothing random is a valid job

    @PROPERTY_SETTINGS
    @given(st.sampled_from(FIELDS), json_values, st.booleans())
    def test_one_field_replaced(self, field, value, inside_input):
        body = valid_body()
        if inside_input:
            body["input"][INPUT_FIELDS[FIELDS.index(field) % len(INPUT_FIELDS)]] = value
        else:
            body[field] = value
        status, payload = self.post(body)
        if status == 201:
            record = http("GET", f"{self.srv.url}/jobs/{payload['id']}")[2]
            self.assertEqual(record["status"], "completed", record)  # accepted => ran
        else:
            self.check_error(status, payload)

    @PROPERTY_SETTINGS
    @given(st.lists(st.dictionaries(st.sampled_from(
        ["gate", "target", "targets", "control", "controls", "rotation", "phase", "phases",
         "angle", "terms", "coefficients"]), json_values, max_size=5), max_size=6),
        st.sampled_from(["qis", "native"]))
    def test_random_gate_dicts(self, gates, gateset):
        body = valid_body()
        body["input"] = {"gateset": gateset, "circuit": gates}
        status, payload = self.post(body)
        if status == 201:
            record = http("GET", f"{self.srv.url}/jobs/{payload['id']}")[2]
            self.assertEqual(record["status"], "completed", record)
        else:
            self.check_error(status, payload)

    @PROPERTY_SETTINGS
    @given(st.binary(max_size=64))
    def test_random_bytes(self, raw):
        status, payload = self.post(raw=raw)
        self.check_error(status, payload)


if __name__ == "__main__":
    unittest.main()
