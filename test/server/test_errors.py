"""Bad requests get IonQ-style JSON errors (never a crash), and auth is enforced."""

from __future__ import annotations

import io
import logging
import unittest
import warnings
from unittest import mock

import requests
from qiskit_ionq.exceptions import IonQAPIError

from qstore_qiskit.server import LocalServer
from qstore_qiskit.server.qasm import qasm3_available

from .helpers import http

KEY = "s3cret-key-value"


def bell_body(**overrides):
    body = {
        "type": "ionq.circuit.v1",
        "backend": "simulator",
        "shots": 100,
        "input": {"gateset": "qis", "qubits": 2, "circuit": [
            {"gate": "h", "targets": [0]},
            {"gate": "x", "targets": [1], "controls": [0]},
        ]},
    }
    body.update(overrides)
    return body


class TestErrors(unittest.TestCase):
    """Every error path answers with IonQ's ``{statusCode, error, message}`` (400s add
    ``validation``)."""

    @classmethod
    def setUpClass(cls):
        cls.log = io.StringIO()
        cls.handler = logging.StreamHandler(cls.log)
        logging.getLogger().addHandler(cls.handler)
        logging.getLogger().setLevel(logging.DEBUG)
        cls.srv = LocalServer(api_key=KEY, max_qubits=8, max_shots=5000,
                              max_circuits_per_job=3, max_body_bytes=200_000).start()
        cls.jobs_url = cls.srv.url + "/jobs"

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        logging.getLogger().removeHandler(cls.handler)
        logging.getLogger().setLevel(logging.WARNING)

    def assertApiError(self, status, code, payload, fragment=None):  # pylint: disable=C0103
        self.assertEqual(status, code, payload)
        self.assertIsInstance(payload, dict)
        self.assertEqual(payload["statusCode"], code)
        self.assertIsInstance(payload["error"], str)
        self.assertIsInstance(payload["message"], str)
        if code == 400:
            self.assertIsInstance(payload["validation"]["keys"], list)
        else:
            self.assertNotIn("validation", payload)
        if fragment:
            self.assertIn(fragment, payload["message"])
        self.assertNotIn(KEY, str(payload))

    def expect(self, result, code, fragment=None):
        """Check a ``(status, payload)`` pair from :meth:`post`."""
        status, payload = result
        self.assertApiError(status, code, payload, fragment)

    def post(self, body=None, raw=None, key=KEY):
        status, _, payload = http("POST", self.jobs_url, body=body, raw=raw, key=key)
        return status, payload

    def test_valid_request_works(self):
        status, payload = self.post(bell_body())
        self.assertEqual(status, 201, payload)
        self.assertEqual(set(payload), {"id", "status", "session_id"})

    def test_malformed_json(self):
        status, payload = self.post(raw=b'{"type": "ionq.circuit.v1", ')
        self.assertApiError(status, 400, payload, "malformed JSON")
        status, payload = self.post(raw=b"")
        self.assertApiError(status, 400, payload)
        status, payload = self.post(body=[1, 2, 3])
        self.assertApiError(status, 400, payload, "JSON object")

    def test_unknown_gate(self):
        body = bell_body()
        body["input"]["circuit"].append({"gate": "frobnicate", "targets": [0]})
        status, payload = self.post(body)
        self.assertApiError(status, 400, payload, "unknown gate 'frobnicate'")
        # native gates are not accepted in the qis gateset and vice versa
        body = bell_body()
        body["input"]["circuit"] = [{"gate": "gpi", "target": 0, "phase": 0.1}]
        status, payload = self.post(body)
        self.assertApiError(status, 400, payload, "unknown gate 'gpi'")
        body["input"]["gateset"] = "native"
        body["input"]["circuit"] = [{"gate": "h", "targets": [0]}]
        status, payload = self.post(body)
        self.assertApiError(status, 400, payload, "unknown gate 'h'")

    def test_bad_gate_parameters(self):
        body = bell_body()
        body["input"]["gateset"] = "native"
        body["input"]["circuit"] = [{"gate": "ms", "targets": [0, 1], "phases": [0.1]}]
        self.expect(self.post(body), 400, "phases")
        body["input"]["circuit"] = [{"gate": "gpi2", "target": 0}]
        self.expect(self.post(body), 400, "phase")
        body["input"]["gateset"] = "qis"
        body["input"]["circuit"] = [{"gate": "rx", "targets": [0], "rotation": "abc"}]
        self.expect(self.post(body), 400, "rotation")
        body["input"]["circuit"] = [{"gate": "rx", "targets": [0], "rotation": float("nan")}]
        self.expect(self.post(body), 400, "rotation")
        # numeric strings pass (qiskit-ionq's encoder emits str() for parameter objects)
        body["input"]["circuit"] = [{"gate": "rx", "targets": [0], "rotation": "0.5"}]
        self.assertEqual(self.post(body)[0], 201)
        body["input"]["circuit"] = [{"gate": "cnot", "targets": [0], "controls": [0]}]
        self.expect(self.post(body), 400, "twice")

    def test_qubit_index_out_of_range(self):
        body = bell_body()
        body["input"]["circuit"].append({"gate": "x", "targets": [2]})
        self.expect(self.post(body), 400, "out of range")
        body["input"]["circuit"][-1] = {"gate": "x", "targets": [-1]}
        self.expect(self.post(body), 400, "negative")
        body["input"]["circuit"][-1] = {"gate": "x", "targets": [True]}
        self.expect(self.post(body), 400, "integers")

    def test_too_many_qubits(self):
        body = bell_body()
        body["input"]["qubits"] = 9
        self.expect(self.post(body), 422, "at most 8")
        body = bell_body()
        del body["input"]["qubits"]
        body["input"]["circuit"].append({"gate": "x", "targets": [8]})
        self.expect(self.post(body), 422, "at most 8")

    def test_shots_out_of_range(self):
        self.expect(self.post(bell_body(shots=0)), 400, "shots")
        self.expect(self.post(bell_body(shots=5001)), 400, "shots")
        self.expect(self.post(bell_body(shots="many")), 400, "shots")
        self.expect(self.post(bell_body(shots="-5")), 400, "shots")
        # cirq-ionq sends shots as a decimal string
        self.assertEqual(self.post(bell_body(shots="100"))[0], 201)

    def test_bad_fields(self):
        self.expect(self.post(bell_body(type="ionq.nope.v9")), 400, "job type")
        self.expect(self.post(bell_body(backend="qpu.nowhere")), 400, "backend")
        self.expect(self.post(bell_body(metadata="x")), 400, "metadata")
        self.expect(self.post(bell_body(noise={"model": "bogus"})), 400, "noise")
        self.expect(self.post(bell_body(input=[])), 400, "input")
        body = bell_body()
        body["input"]["gateset"] = "weird"
        self.expect(self.post(body), 400, "gateset")

    @unittest.skipUnless(qasm3_available(), "needs qiskit-qasm3-import")
    def test_bad_qasm(self):
        body = {"type": "ionq.qasm3.v1", "backend": "simulator", "shots": 10,
                "input": {"qubits": 1, "data": "OPENQASM 3.0; qubit[1] q; nonsense q[0];"}}
        self.expect(self.post(body), 400, "OpenQASM")
        body["input"]["data"] = ('OPENQASM 3.0; include "stdgates.inc"; qubit[1] q; bit[1] c;'
                                 "for int i in [0:2] { h q[0]; } c[0] = measure q[0];")
        status, payload = self.post(body)
        self.assertIn(status, (400, 422))
        self.assertApiError(status, status, payload)

    @unittest.skipUnless(qasm3_available(), "needs qiskit-qasm3-import")
    def test_mid_circuit_program_too_large(self):
        lines = ['OPENQASM 3.0; include "stdgates.inc"; qubit[8] q; bit[8] c;']
        for i in range(8):
            lines.append(f"h q[{i}]; c[{i}] = measure q[{i}]; reset q[{i}];")
        lines.append("x q[0];")
        body = {"type": "ionq.qasm3.v1", "backend": "simulator", "shots": 5000,
                "input": {"qubits": 8, "data": " ".join(lines)}}
        with mock.patch("qstore_qiskit.server.job_requests.MAX_BRANCH_AMPLITUDES", 1 << 16):
            self.expect(self.post(body), 422, "mid-circuit")

    def test_too_many_circuits(self):
        circuit = [{"gate": "h", "targets": [0]}]
        body = {"type": "ionq.multi-circuit.v1", "backend": "simulator", "shots": 10,
                "input": {"gateset": "qis", "qubits": 1,
                          "circuits": [{"circuit": circuit} for _ in range(4)]}}
        self.expect(self.post(body), 413, "limit of 3")

    def test_oversize_body(self):
        body = bell_body(metadata={"blob": "x" * 300_000})
        self.expect(self.post(body), 413, "exceeds")

    def test_unknown_job_and_route(self):
        for path in ("/jobs/nope", "/jobs/nope/results/probabilities", "/jobs/nope/results"):
            status, _, payload = http("GET", self.srv.url + path, key=KEY)
            self.assertApiError(status, 404, payload)
        status, _, payload = http("PUT", self.srv.url + "/jobs/nope/status/cancel", key=KEY)
        self.assertApiError(status, 404, payload)
        status, _, payload = http("DELETE", self.srv.url + "/jobs/nope", key=KEY)
        self.assertApiError(status, 404, payload)
        status, _, payload = http("GET", self.srv.base_url + "/v9/whatever", key=KEY)
        self.assertApiError(status, 404, payload, "no route")
        status, _, payload = http("PATCH", self.jobs_url, body={}, key=KEY)
        self.assertApiError(status, 405, payload)

    def test_auth(self):
        for key in (None, "wrong", KEY + "x", ""):
            status, payload = self.post(bell_body(), key=key)
            self.assertApiError(status, 401, payload, "API key")
        status, _, payload = http("GET", self.jobs_url, key="nope")
        self.assertApiError(status, 401, payload)
        # wrong scheme
        status, _, payload = http("GET", self.jobs_url, key=None,
                                  headers={"Authorization": f"Bearer {KEY}"})
        self.assertApiError(status, 401, payload)
        # the one unauthenticated route qiskit-ionq needs
        status, _, payload = http("GET", self.srv.url + "/backends/simulator", key=None)
        self.assertEqual(status, 200)
        self.assertEqual(payload["qubits"], 8)

    def test_official_client_sees_ionq_api_errors(self):
        from qiskit_ionq.ionq_client import IonQClient

        client = IonQClient("wrong-key", self.srv.url)
        with self.assertRaises(IonQAPIError) as ctx:
            client.retrieve_job("whatever")
        self.assertEqual(ctx.exception.status_code, 401)
        self.assertEqual(ctx.exception.error_type, "Unauthorized")
        self.assertIn("API key", ctx.exception.message)
        client = IonQClient(KEY, self.srv.url)
        with self.assertRaises(IonQAPIError) as ctx:
            client.retrieve_job("whatever")
        self.assertEqual(ctx.exception.status_code, 404)
        self.assertEqual(ctx.exception.error_type, "Not Found")
        self.assertIn("whatever", ctx.exception.message)

    def test_key_never_logged_or_repr(self):
        self.post(bell_body())
        self.post(bell_body(), key="wrong-guess")
        self.assertNotIn(KEY, self.log.getvalue())
        self.assertNotIn("wrong-guess", self.log.getvalue())
        self.assertNotIn(KEY, repr(self.srv.config))
        self.assertNotIn(KEY, repr(self.srv))
        self.assertNotIn(KEY, str(self.srv.stats()))

    def test_server_survives_garbage(self):
        deep = b"[" * 100_000 + b"]" * 100_000
        for raw in (b"\xff\xfe\x00", b"null", b"1e999999", b'{"input": null}', deep):
            status, payload = self.post(raw=raw)
            self.assertIn(status, (400, 422))
            self.assertApiError(status, status, payload)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            response = requests.post(self.jobs_url, data=b"{}", timeout=5,
                                     headers={"Authorization": f"apiKey {KEY}",
                                              "Content-Type": "text/plain"})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(http("GET", self.srv.base_url + "/", key=None)[0], 200)
        self.assertEqual(self.srv.stats()["by_status"].get(500, 0), 0)


if __name__ == "__main__":
    unittest.main()
