"""The OpenAPI 3.1 document of the local server, built here and served by :mod:`.openapi`.

It follows IonQ's v0.4 document (component names kept) for what this server implements,
with the decisions of ``docs/server.rst`` where the production clients need something
else (``next`` left out of the last page, string ``shots``, ``lang``, ZZ ``phase``, the
``/calibrations`` routes). The test suite validates every response it provokes against
it and fuzzes the server from it with Schemathesis.
"""

from __future__ import annotations

from typing import Any

from .job_requests import DOCUMENTED_NOISE_MODELS, JOB_TYPES

REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(props: dict[str, Any], required: list[str] | None = None, extra: bool = False
         ) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props,
                           "additionalProperties": extra}
    if required:
        out["required"] = required
    return out


STRING = {"type": "string"}
INT = {"type": "integer"}
NUMBER = {"type": "number"}
BOOL = {"type": "boolean"}
URL = _obj({"url": STRING}, ["url"])

FAILURE_CODES = ["InvalidInput", "CompilationError", "ContractExpiredError", "DebiasingError",
                 "InternalError", "NotEnoughQubits", "OptimizationError", "PreflightError",
                 "QuantumCircuitComplexityError", "QuantumComputerError",
                 "QuotaExhaustedError", "SimulationError", "SimulationTimeout",
                 "SystemCancel", "TooLongPredictedExecutionTime", "TooManyControls",
                 "TooManyGates", "TooManyShots", "UnknownBillingError", "UnsupportedGate"]

QIS_GATES = ["x", "y", "z", "rx", "ry", "rz", "h", "s", "si", "v", "vi", "t", "ti", "not",
             "cnot", "swap", "xx", "yy", "zz", "pauliexp"]
NATIVE_GATES = ["gpi", "gpi2", "ms", "zz", "nop"]


def _schemas() -> dict[str, Any]:
    qubit = {"type": "integer", "minimum": 0, "maximum": 35}
    qis_gate = _obj({
        "gate": {"enum": QIS_GATES}, "target": qubit, "targets": {"type": "array",
                                                                  "items": qubit},
        "control": qubit, "controls": {"type": "array", "items": qubit},
        "rotation": NUMBER, "terms": {"type": "array", "items": STRING},
        "coefficients": {"type": "array", "items": NUMBER}, "time": NUMBER,
    }, ["gate"])
    native_gate = _obj({
        "gate": {"enum": NATIVE_GATES}, "target": qubit,
        "targets": {"type": "array", "items": qubit},
        "phase": {"type": "number", "minimum": -1, "maximum": 1},
        "phases": {"type": "array", "items": {"type": "number", "minimum": -1, "maximum": 1}},
        "angle": {"type": "number", "minimum": -1, "maximum": 1},
    }, ["gate"])
    circuit_input = {"anyOf": [
        _obj({"gateset": {"const": "qis"}, "qubits": {"type": "integer", "minimum": 1},
              "circuit": {"type": "array", "items": qis_gate}}, ["circuit"]),
        _obj({"gateset": {"const": "native"}, "qubits": {"type": "integer", "minimum": 1},
              "circuit": {"type": "array", "items": native_gate}}, ["gateset", "circuit"]),
    ]}
    multi_input = _obj({
        "gateset": {"enum": ["qis", "native"]}, "qubits": {"type": "integer", "minimum": 1},
        "circuits": {"type": "array", "minItems": 1, "items": _obj({
            "name": STRING, "qubits": {"type": "integer", "minimum": 1},
            "gateset": {"enum": ["qis", "native"]},
            "circuit": {"type": "array", "items": {"anyOf": [qis_gate, native_gate]}},
        }, ["circuit"])},
    }, ["circuits"])
    qasm_input = _obj({"data": STRING, "qubits": {"type": "integer", "minimum": 1},
                       "format": STRING}, ["data"])
    settings = _obj({
        "error_mitigation": _obj({"debiasing": {"anyOf": [BOOL, {"type": "object"}]}}),
        "compilation": {"type": "object"},
    })
    creation = _obj({
        "type": {"enum": list(JOB_TYPES)},
        "backend": {"$ref": REF + "JobBackends"},
        "name": STRING,
        "metadata": _ref("JobMetadata"),
        "shots": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 1_000_000},
                            {"type": "string", "pattern": "^[0-9]{1,7}$"}],
                  "description": "cirq-ionq sends decimal strings"},
        "session_id": STRING,
        "settings": settings,
        "dry_run": BOOL,
        "noise": _ref("Noise"),
        "lang": {"const": "json", "description": "sent by cirq-ionq; ignored"},
        "input": {"anyOf": [circuit_input, multi_input, qasm_input]},
    }, ["type", "backend", "input"])
    job_props = {
        "id": STRING, "status": _ref("JobStatus"), "type": STRING, "backend": STRING,
        "dry_run": BOOL, "cost_model": {"enum": ["quantum_compute_time", "execution_time"]},
        "submitter_id": STRING, "project_id": _nullable(STRING),
        "parent_job_id": _nullable(STRING),
        "child_job_ids": _nullable({"type": "array", "items": STRING}),
        "session_id": _nullable(STRING), "metadata": _nullable(_ref("JobMetadata")),
        "name": _nullable(STRING), "submitted_at": STRING, "started_at": _nullable(STRING),
        "completed_at": _nullable(STRING), "predicted_wait_time_ms": _nullable(INT),
        "predicted_execution_duration_ms": _nullable(INT),
        "execution_duration_ms": _nullable(INT), "shots": INT,
        "noise": _ref("Noise"), "failure": _nullable(_ref("Failure")),
        "settings": {"type": "object"},
        "stats": _obj({
            "qubits": INT, "circuits": INT,
            "gate_counts": _obj({"1q": INT, "2q": INT}, ["1q", "2q"]),
            "kwh": NUMBER, "predicted_quantum_compute_time_us": INT,
            "billed_quantum_compute_time_us": INT,
        }, ["qubits", "circuits", "gate_counts"]),
        "results": _nullable({"type": "object", "additionalProperties": _obj(
            {"url": STRING, "id": STRING}, ["url"])}),
        "output": _obj({"error_mitigation": _obj({"debiasing": _obj({"variants": {
            "type": "array", "items": _obj({
                "variant_id": STRING, "qubit_map": {"type": "array", "items": INT},
                "shots": INT, "results": _obj({"probabilities": URL, "histogram": URL,
                                               "shots": URL}, ["probabilities"]),
            }, ["variant_id", "qubit_map", "shots", "results"])}}, ["variants"])})}),
    }
    job_required = [k for k in job_props if k not in ("noise", "cost_model")]
    number_map = {"type": "object", "additionalProperties": NUMBER}
    session_settings = _obj({
        "job_count_limit": INT, "duration_limit_min": INT,
        "cost_limit": _ref("SessionCostLimit"), "expires_at": STRING,
    })
    characterization = {
        "id": STRING, "backend": STRING, "date": STRING,
        "qubits": {"type": "integer", "minimum": 1},
        "connectivity": {"type": "array", "items": {"type": "array", "items": INT,
                                                    "minItems": 2, "maxItems": 2}},
        "fidelity": _obj({k: _obj({"median": NUMBER, "stderr": _nullable(NUMBER)},
                                  ["median"]) for k in ("spam", "1q", "2q")}, ["spam"]),
        "timing": _obj({k: NUMBER for k in ("readout", "reset", "1q", "2q", "t1", "t2")},
                       ["readout", "reset"]),
    }
    return {
        "Error": _obj({"statusCode": INT, "error": STRING, "message": STRING},
                      ["statusCode", "error", "message"]),
        "BadRequestError": _obj({
            "statusCode": {"const": 400}, "error": STRING, "message": STRING,
            "validation": _obj({"keys": {"type": "array", "items": STRING},
                                "source": {"enum": ["body", "query", "params"]}}),
        }, ["statusCode", "error", "message", "validation"]),
        "JobStatus": {"enum": ["submitted", "ready", "started", "canceled", "failed",
                               "completed"]},
        "JobBackends": {"enum": ["simulator", "qpu.aria-1", "qpu.aria-2", "qpu.forte-1",
                                 "qpu.forte-enterprise-1", "qpu", "ionq_simulator"],
                        "description": "the backends, and the aliases qiskit-ionq/cirq-ionq "
                                       "send (qpu = qpu.aria-1)"},
        "JobMetadata": {"type": "object", "maxProperties": 10,
                        "additionalProperties": STRING},
        "Noise": _obj({"model": {"enum": list(DOCUMENTED_NOISE_MODELS)},
                       "seed": _nullable({"type": "integer", "minimum": 0,
                                          "maximum": 2**31 - 1})}, ["model"]),
        "Failure": _obj({"code": {"enum": FAILURE_CODES}, "message": STRING},
                        ["code", "message"]),
        "JobCreationPayload": creation,
        "JobCreationResponse": _obj({"id": STRING, "status": _ref("JobStatus"),
                                     "session_id": _nullable(STRING)},
                                    ["id", "status", "session_id"]),
        "GetJobResponse": _obj(job_props, job_required),
        "GetJobsResponse": _obj({"jobs": {"type": "array", "items": _ref("GetJobResponse")},
                                 "next": STRING}, ["jobs"]),
        "JobsBulkOperationRequest": _obj({"ids": {"type": "array", "items": STRING}},
                                         ["ids"]),
        "JobCanceledResponse": _obj({"id": STRING, "status": {"const": "canceled"}},
                                    ["id", "status"]),
        "JobsCanceledResponse": _obj({"ids": {"type": "array", "items": STRING},
                                      "status": {"const": "canceled"}}, ["ids", "status"]),
        "JobDeletedResponse": _obj({"id": STRING, "status": {"const": "deleted"}},
                                   ["id", "status"]),
        "JobsDeletedResponse": _obj({"ids": {"type": "array", "items": STRING},
                                     "status": {"const": "deleted"}}, ["ids", "status"]),
        "GetJobEstimateResponse": _obj({
            "input_values": _obj({
                "backend": STRING, "type": STRING, "qubits": INT, "shots": INT,
                "1q_gates": INT, "2q_gates": INT, "error_mitigation": BOOL, "session": BOOL,
            }, ["backend"]),
            "estimated_at": STRING, "cost_unit": STRING,
            "rate_information": _obj({"job_cost_minimum": NUMBER, "cost_2q_gate": NUMBER,
                                      "cost_1q_gate": NUMBER, "organization": STRING},
                                     ["job_cost_minimum", "cost_2q_gate", "cost_1q_gate",
                                      "organization"]),
            "estimated_cost": NUMBER, "estimated_execution_time": NUMBER,
            "current_predicted_queue_time": NUMBER,
        }, ["input_values", "estimated_at", "cost_unit", "rate_information",
            "estimated_cost", "estimated_execution_time", "current_predicted_queue_time"]),
        "CostValue": _obj({"value": NUMBER, "unit": STRING}, ["value", "unit"]),
        "GetJobCostResponse": _obj({"dry_run": BOOL, "estimated_cost": _ref("CostValue"),
                                    "cost": _ref("CostValue")},
                                   ["dry_run", "estimated_cost"]),
        "GetResultsResponse": {"type": "object", "additionalProperties": {
            "anyOf": [NUMBER, number_map]},
            "description": "{state: value}, or {child_id: {state: value}} for a "
                           "multicircuit parent"},
        "GetShotsResponse": {"anyOf": [
            {"type": "array", "items": INT},
            {"type": "object", "additionalProperties": {"type": "array", "items": INT}}]},
        "GetVariantResultsResponse": number_map,
        "Artifact": {"type": "object"},
        "SessionCostLimit": _obj({"unit": STRING, "value": NUMBER}, ["unit", "value"]),
        "SessionSettings": session_settings,
        "Session": _obj({
            "id": STRING, "created_at": STRING, "organization_id": STRING,
            "backend": _nullable(STRING), "project_id": _nullable(STRING),
            "creator_id": _nullable(STRING), "ended_at": _nullable(STRING),
            "ender_id": _nullable(STRING), "settings": _ref("SessionSettings"),
            "active": BOOL, "status": {"enum": ["created", "started", "ended"]},
            "started_at": _nullable(STRING),
        }, ["id", "created_at", "organization_id", "backend", "project_id", "creator_id",
            "ended_at", "ender_id", "active", "status", "started_at"]),
        "CreateSessionRequest": _obj({
            "backend": _ref("JobBackends"),
            "settings": _obj({"job_count_limit": {"type": "integer", "minimum": 1},
                              "duration_limit_min": {"type": "integer", "minimum": 1},
                              "duration_limit": {"type": "integer", "minimum": 1},
                              "cost_limit": _ref("SessionCostLimit")}),
        }, ["backend"]),
        "SessionsResponse": _obj({"organization_id": STRING,
                                  "sessions": {"type": "array", "items": _ref("Session")}},
                                 ["organization_id", "sessions"]),
        "Whoami": _obj({"key_id": STRING, "key_name": STRING, "project_id": STRING},
                       ["key_id", "key_name"]),
        "Backend": _obj({
            "backend": STRING, "status": {"enum": ["available", "unavailable", "retired"]},
            "qubits": {"type": "integer", "minimum": 0}, "average_queue_time": NUMBER,
            "last_updated": STRING, "degraded": BOOL,
            "characterization_id": _nullable(STRING), "has_access": BOOL,
            "native_2q_gate": {"enum": ["ms", "zz"]}, "max_circuits_per_job": INT,
            "max_shots": INT, "noise_models": {"type": "array", "items": STRING},
        }, ["backend", "status", "qubits", "average_queue_time", "last_updated"]),
        "Characterization": _obj(characterization,
                                 ["id", "backend", "date", "qubits", "fidelity", "timing"]),
        "ListCharacterizations": _obj({
            "characterizations": {"type": "array", "items": _ref("Characterization")},
            "pages": INT}, ["characterizations"]),
        "Calibration": _obj(dict(characterization, target=STRING),
                            ["id", "backend", "date", "qubits", "fidelity", "timing",
                             "target"]),
        "ListCalibrations": _obj({
            "calibrations": {"type": "array", "items": _ref("Calibration")},
            "next": STRING}, ["calibrations"]),
    }


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors(*codes: int) -> dict[str, Any]:
    out = {}
    for code in codes:
        name = "BadRequestError" if code == 400 else "Error"
        out[str(code)] = {"description": "error", "content": _json_content(_ref(name))}
    return out


# Any route may answer these (auth, rate limit, gateway and injected faults).
COMMON_ERRORS = (401, 429, 500, 502, 503, 504)


def _op(op_id: str, ok: str, schema: str | dict, *codes: int, params: list | None = None,
        body: str | None = None, public: bool = False, summary: str = "") -> dict[str, Any]:
    content = _json_content(_ref(schema) if isinstance(schema, str) else schema)
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary or op_id,
        "responses": {ok: {"description": "success", "content": content},
                      **_errors(*sorted(set(codes) | ({429, 500, 502, 503, 504} if public
                                                       else set(COMMON_ERRORS))))},
    }
    if public:
        op["security"] = []
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": _json_content(_ref(body))}
    return op


def _path(name: str) -> dict[str, Any]:
    return {"in": "path", "name": name, "required": True, "schema": STRING}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"in": "query", "name": name, "required": False, "schema": schema}


def build_document() -> dict[str, Any]:
    """The document (a fresh dict)."""
    job = [_path("job_id")]
    session = [_path("session_id")]
    backend = [{"in": "path", "name": "name", "required": True,
                "schema": {"enum": ["simulator", "qpu.aria-1", "qpu.aria-2", "qpu.forte-1",
                                    "qpu.forte-enterprise-1"]}}]
    list_params = [
        _query("ids", STRING), _query("status", STRING), _query("target", STRING),
        _query("backend", STRING), _query("session_id", STRING),
        _query("parent_job_id", STRING), _query("type", STRING), _query("name", STRING),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        _query("next", STRING),
    ]
    bound = {"type": "string", "description": "date (2025-12-31) or epoch milliseconds"}
    paths: dict[str, Any] = {
        "/openapi.json": {"get": _op("getOpenApi", "200", {"type": "object"}, public=True)},
        "/whoami": {"get": _op("getWhoami", "200", "Whoami")},
        "/jobs": {
            "post": _op("CreateJob", "201", "JobCreationResponse", 400, 408, 413, 422, 501,
                        body="JobCreationPayload"),
            "get": _op("GetJobs", "200", "GetJobsResponse", 400, params=list_params),
            "delete": _op("DeleteJobs", "200", "JobsDeletedResponse", 400, 404, 410,
                          body="JobsBulkOperationRequest"),
        },
        "/jobs/status/cancel": {"put": _op("CancelJobs", "200", "JobsCanceledResponse", 400,
                                           404, 410, body="JobsBulkOperationRequest")},
        "/jobs/estimate": {"get": _op("EstimateJobCost", "200", "GetJobEstimateResponse", 400,
                                      params=[
            {"in": "query", "name": "backend", "required": True,
             "schema": _ref("JobBackends")},
            _query("type", STRING), _query("qubits", INT), _query("shots", INT),
            _query("1q_gates", INT), _query("2q_gates", INT),
            _query("error_mitigation", BOOL), _query("session", BOOL)])},
        "/jobs/{job_id}": {
            "get": _op("GetJob", "200", "GetJobResponse", 404, 410, params=job),
            "delete": _op("DeleteJob", "200", "JobDeletedResponse", 400, 404, 410,
                          params=job),
        },
        "/jobs/{job_id}/status/cancel": {"put": _op("CancelJob", "200", "JobCanceledResponse",
                                                    400, 404, 410, params=job)},
        "/jobs/{job_id}/cost": {"get": _op("GetJobCost", "200", "GetJobCostResponse", 404,
                                           410, params=job)},
        "/jobs/{job_id}/results/probabilities": {"get": _op(
            "GetJobProbabilities", "200", "GetResultsResponse", 400, 404, 410,
            params=job + [_query("sharpen", BOOL)])},
        "/jobs/{job_id}/results/probabilities/aggregated": {"get": _op(
            "GetJobAggregatedProbabilities", "200", "GetResultsResponse", 400, 404, 410,
            params=job + [_query("sharpen", BOOL)])},
        "/jobs/{job_id}/results/histogram": {"get": _op(
            "GetJobHistogram", "200", "GetResultsResponse", 404, 410, params=job)},
        "/jobs/{job_id}/results/shots": {"get": _op(
            "GetJobShots", "200", "GetShotsResponse", 404, 410, params=job)},
        "/jobs/{job_id}/artifacts/{artifact_id}": {"get": _op(
            "GetJobArtifact", "200", "Artifact", 404, 410,
            params=job + [_path("artifact_id")])},
        "/sessions": {
            "post": _op("CreateSession", "201", "Session", 400, body="CreateSessionRequest"),
            "get": _op("GetSessions", "200", "SessionsResponse", 400,
                       params=[_query("active", BOOL)]),
        },
        "/sessions/{session_id}": {"get": _op("GetSession", "200", "Session", 404,
                                              params=session)},
        "/sessions/{session_id}/end": {"post": _op("EndSession", "200", "Session", 404,
                                                   params=session)},
        "/sessions/{session_id}/jobs": {"get": _op("GetSessionJobs", "200", "GetJobsResponse",
                                                   400, 404, params=session + list_params)},
        "/backends": {"get": _op("getBackends", "200", {"type": "array",
                                                        "items": _ref("Backend")},
                                 public=True)},
        "/backends/{name}": {"get": _op("getBackend", "200", "Backend", 404, params=backend,
                                        public=True)},
        "/backends/{name}/characterizations": {"get": _op(
            "getCharacterizationsForBackend", "200", "ListCharacterizations", 400, 404,
            public=True, params=backend + [
                _query("start", bound), _query("end", bound),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 10}),
                _query("page", {"type": "integer", "minimum": 1})])},
        "/backends/{name}/characterizations/{cid}": {"get": _op(
            "getCharacterization", "200", "Characterization", 404,
            params=backend + [_path("cid")])},
        "/calibrations": {"get": _op(
            "listCalibrations", "200", "ListCalibrations", 400, params=[
                _query("start", bound), _query("end", bound),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                _query("next", STRING)])},
        "/calibrations/current": {"get": _op("getCurrentCalibration", "200", "Calibration")},
    }
    for name in ("probabilities", "histogram", "shots"):
        paths[f"/jobs/{{job_id}}/variants/{{variant_id}}/results/{name}"] = {"get": _op(
            f"GetVariant{name.capitalize()}", "200", "GetVariantResultsResponse", 404, 410,
            params=job + [_path("variant_id")])}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "qstore-qiskit local IonQ API",
            "version": "v0.4",
            "description": "The subset of IonQ's v0.4 API that the local server implements, "
                           "in IonQ's shapes (see docs/server.rst for where the production "
                           "clients required a different choice).",
        },
        "servers": [{"url": "/v0.4"}],
        "security": [{"apiKeyAuth": []}],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"apiKeyAuth": {
                "type": "apiKey", "in": "header", "name": "Authorization",
                "description": "Authorization: apiKey <key>"}},
        },
    }


__all__ = ["build_document"]
