"""The server's own OpenAPI document: served, valid, matched by every response, and a
bounded Schemathesis run finds no 500 (issue #14)."""

from __future__ import annotations

import time
import unittest

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from qstore_qiskit.server import LocalServer
from qstore_qiskit.server.openapi import openapi_document

from .helpers import http
from .openapi_check import DOC, problems, validating_middleware

# Examples per operation and mode; the run covers every operation of the document.
EXAMPLES = 8


def bell(**extra):
    body = {"type": "ionq.circuit.v1", "backend": "simulator", "shots": 100,
            "input": {"gateset": "qis", "qubits": 2, "circuit": [
                {"gate": "h", "target": 0}, {"gate": "cnot", "control": 0, "target": 1}]}}
    body.update(extra)
    return body


class TestDocument(unittest.TestCase):
    def test_served_publicly_and_loadable(self):
        with LocalServer(api_key="doc-key") as srv:
            status, _, served = http("GET", srv.url + "/openapi.json", key=None)
        self.assertEqual(status, 200)
        self.assertEqual(served, openapi_document())
        schema = schemathesis.openapi.from_dict(served)
        operations = [r.ok() for r in schema.get_all_operations()]
        self.assertEqual(len(operations), sum(len(v) for v in DOC["paths"].values()))
        ids = {op.definition.raw["operationId"] for op in operations}
        for documented in ("CreateJob", "GetJobs", "GetJob", "CancelJob", "CancelJobs",
                           "DeleteJob", "DeleteJobs", "EstimateJobCost", "GetJobCost",
                           "GetJobProbabilities", "GetVariantHistogram", "CreateSession",
                           "GetSessions", "GetSession", "EndSession", "getWhoami",
                           "getBackends", "getCharacterizationsForBackend"):
            self.assertIn(documented, ids)

    def test_validator_catches_drift(self):
        """The checker is not vacuous: old shapes fail it."""
        self.assertTrue(problems("GET", "/v0.4/jobs", 200, {"jobs": [], "next": None}))
        self.assertTrue(problems("POST", "/v0.4/jobs", 200, {"id": "x", "status": "completed"}))
        self.assertTrue(problems("GET", "/v0.4/jobs/x", 404,
                                 {"error": {"type": "not_found", "message": "m"}}))
        self.assertEqual(problems("GET", "/v0.4/jobs/x", 404, {
            "statusCode": 404, "error": "Not Found", "message": "m"}), [])


class TestRepresentativeResponses(unittest.TestCase):
    """Every response of a request set covering each operation (success and errors),
    checked by a validating middleware inside the server."""

    def test_all_operations(self):
        with validating_middleware() as found, LocalServer(seed=5) as srv:
            call = lambda m, p, b=None: http(m, srv.url + p, body=b, validate=False)
            single = call("POST", "/jobs", bell(noise={"model": "aria-1", "seed": 3}))[2]["id"]
            multi = call("POST", "/jobs", {
                "type": "ionq.multi-circuit.v1", "backend": "simulator", "shots": 50,
                "input": {"gateset": "qis", "qubits": 2, "circuits": [
                    {"name": "a", "circuit": [{"gate": "x", "target": 0}]},
                    {"name": "b", "circuit": [{"gate": "x", "target": 1}]}]}})[2]["id"]
            qasm = call("POST", "/jobs", {
                "type": "ionq.qasm3.v1", "backend": "simulator", "shots": 20,
                "input": {"data": 'OPENQASM 3.0; include "stdgates.inc"; qubit[1] q; '
                                  "bit[1] c; x q[0]; c[0] = measure q[0];"}})[2]["id"]
            record = call("GET", f"/jobs/{qasm}")[2]
            artifact = next(v["id"] for k, v in record["results"].items() if "id" in v)
            session = call("POST", "/sessions", {"backend": "qpu.aria-1", "settings": {
                "job_count_limit": 3, "cost_limit": {"unit": "usd", "value": 99}}})[2]["id"]
            in_session = call("POST", "/jobs", bell(backend="qpu.aria-1",
                                                    session_id=session))[2]["id"]
            char = call("GET", "/backends/qpu.forte-1/characterizations?limit=2")[2]
            for method, path, body in [
                ("GET", "/openapi.json", None), ("GET", "/whoami", None),
                ("GET", "/jobs", None), ("GET", "/jobs?limit=1", None),
                ("GET", f"/jobs?parent_job_id={multi}", None),
                ("GET", "/jobs?target=simulator,qpu.aria-1&status=completed", None),
                ("GET", f"/jobs/{single}", None), ("GET", f"/jobs/{multi}", None),
                ("GET", f"/jobs/{single}/results/probabilities", None),
                ("GET", f"/jobs/{multi}/results/probabilities?sharpen=true", None),
                ("GET", f"/jobs/{multi}/results/probabilities/aggregated", None),
                ("GET", f"/jobs/{single}/results/histogram", None),
                ("GET", f"/jobs/{multi}/results/histogram", None),
                ("GET", f"/jobs/{single}/results/shots", None),
                ("GET", f"/jobs/{multi}/results/shots", None),
                ("GET", f"/jobs/{qasm}/artifacts/{artifact}", None),
                ("GET", f"/jobs/{single}/cost", None),
                ("GET", f"/jobs/{single}/variants/none/results/probabilities", None),
                ("GET", "/jobs/estimate?backend=qpu.aria-2&1q_gates=3&2q_gates=2", None),
                ("GET", "/jobs/estimate?backend=qpu.aria-2&shots=-1", None),
                ("GET", f"/sessions/{session}", None), ("GET", "/sessions", None),
                ("GET", f"/sessions/{session}/jobs", None),
                ("POST", f"/sessions/{session}/end", None),
                ("POST", "/jobs", bell(backend="qpu.aria-1", session_id=session)),
                ("POST", "/jobs", bell(shots=0)), ("POST", "/jobs", bell(bogus=1)),
                ("POST", "/jobs", {"type": "ionq.circuit.v1"}),
                ("GET", "/backends", None), ("GET", "/backends/qpu.aria-1", None),
                ("GET", "/backends/nowhere", None),
                ("GET", f"/backends/qpu.forte-1/characterizations/"
                        f"{char['characterizations'][1]['id']}", None),
                ("GET", "/calibrations/current", None), ("GET", "/calibrations?limit=2", None),
                ("PUT", f"/jobs/{single}/status/cancel", None),
                ("PUT", "/jobs/status/cancel", {"ids": [multi]}),
                ("GET", f"/jobs/{single}/results/probabilities", None),  # canceled: 404
                ("DELETE", f"/jobs/{in_session}", None),
                ("DELETE", "/jobs", {"ids": [multi, qasm]}),
                ("GET", f"/jobs/{multi}", None),
            ]:
                status, _, payload = call(method, path, body)
                self.assertLess(status, 500, (method, path, payload))
            self.assertEqual(found, [])
            self.assertGreater(srv.stats()["requests"], 40)


class TestSchemathesisFuzz(unittest.TestCase):
    """A bounded, derandomized Schemathesis run over every operation: valid and invalid
    requests (positive and negative generation) never get a 500, and every answer matches
    the document."""

    def test_no_server_errors(self):
        schema = schemathesis.openapi.from_dict(openapi_document())
        operations = [r.ok() for r in schema.get_all_operations()]
        outcomes: dict[int, int] = {}
        started = time.monotonic()
        with validating_middleware() as found, LocalServer(seed=13, max_qubits=12,
                                                           max_shots=5000) as srv:
            # a few real jobs and a session, so that generated ids sometimes hit
            for _ in range(3):
                http("POST", srv.url + "/jobs", body=bell(), validate=False)
            for operation in operations:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    strategy = operation.as_strategy(generation_mode=mode)

                    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
                              database=None, phases=[Phase.generate],
                              suppress_health_check=list(HealthCheck))
                    @given(case=strategy)
                    def run(case):
                        headers = dict(case.headers or {})
                        headers["Authorization"] = "apiKey fuzz"
                        case.headers = headers
                        response = case.call(base_url=srv.url, timeout=30)
                        outcomes[response.status_code] = outcomes.get(
                            response.status_code, 0) + 1
                        self.assertLess(response.status_code, 500,
                                        f"{case.method} {case.formatted_path}: "
                                        f"{response.text[:300]}")

                    try:
                        run()
                    except Unsatisfiable:
                        # nothing to negate (no parameters or body): positive only
                        self.assertEqual(mode, GenerationMode.NEGATIVE)
            server_errors = srv.stats()["by_status"].get(500, 0)
        self.assertEqual(server_errors, 0)
        self.assertEqual(found, [], found[:5])
        self.assertGreater(sum(outcomes.values()), len(operations) * EXAMPLES)
        self.assertGreater(outcomes.get(200, 0) + outcomes.get(201, 0), 50)
        self.assertGreater(outcomes.get(400, 0), 50)
        print(f"\nschemathesis: {sum(outcomes.values())} requests in "
              f"{time.monotonic() - started:.1f} s, statuses {sorted(outcomes.items())}")


if __name__ == "__main__":
    unittest.main()
