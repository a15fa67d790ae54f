"""Job requests, job records and the in-memory job store.

:func:`parse_job_request` validates a ``POST /jobs`` body into a :class:`JobSpec`;
:class:`Job` is a stored job with its lifecycle fields and results; and
:func:`render_job` turns a job into the v0.4 (or v0.3) JSON record the API returns.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import simulator as sim
from .circuits import ParsedCircuit, parse_circuit
from .config import ServerConfig
from .errors import ApiError, bad_request, unprocessable
from .qasm import QasmProgram, load_program

CIRCUIT_TYPE = "ionq.circuit.v1"
MULTI_TYPE = "ionq.multi-circuit.v1"
QASM3_TYPE = "ionq.qasm3.v1"
JOB_TYPES = (CIRCUIT_TYPE, MULTI_TYPE, QASM3_TYPE)
SHOTS_V2 = "ionq.result.shots.json.v2"

ACTIVE_STATUSES = ("submitted", "ready", "started")
# Cap on state-vector amplitudes the mid-circuit sampler may hold at once (~1 GiB).
MAX_BRANCH_AMPLITUDES = 1 << 26
FINAL_STATUSES = ("completed", "failed", "canceled")


@dataclass(frozen=True)
class BackendInfo:
    """A backend the server offers."""

    name: str
    qubits: int
    simulator: bool
    noise_model: str  # model applied to its jobs ("ideal" = none, for the simulator)
    native_2q: str


def backends_for(config: ServerConfig) -> dict[str, BackendInfo]:
    """The backends on offer: the simulator and simulated QPUs (all run on the simulator,
    capped at ``config.max_qubits``)."""
    cap = config.max_qubits
    return {
        "simulator": BackendInfo("simulator", cap, True, "ideal", "ms"),
        "qpu.aria-1": BackendInfo("qpu.aria-1", min(25, cap), False, "aria-1", "ms"),
        "qpu.aria-2": BackendInfo("qpu.aria-2", min(25, cap), False, "aria-2", "ms"),
        "qpu.forte-1": BackendInfo("qpu.forte-1", min(36, cap), False, "forte-1", "zz"),
        "qpu.forte-enterprise-1": BackendInfo(
            "qpu.forte-enterprise-1", min(36, cap), False, "forte-enterprise-1", "zz"
        ),
    }


# Names qiskit-ionq may send that mean one of the above.
BACKEND_ALIASES = {"qpu": "qpu.aria-1", "qpu.qpu": "qpu.aria-1", "ionq_simulator": "simulator"}


@dataclass(frozen=True)
class JobSpec:
    """A validated job-creation request."""

    type: str
    backend: str
    shots: int
    name: str | None
    metadata: Any
    noise_model: str
    noise_seed: int | None
    settings: Any
    dry_run: bool
    session_id: Any
    gateset: str
    circuits: tuple[ParsedCircuit, ...] = ()
    program: QasmProgram | None = None

    @property
    def num_circuits(self) -> int:
        """Number of circuits in the job."""
        return len(self.circuits) if self.program is None else 1

    @property
    def native_gate_counts(self) -> list[int]:
        """(Estimated) native gate count per circuit, for the execution-time model."""
        if self.program is not None:
            return [self.program.gates_1q + 3 * self.program.gates_2q]
        return [c.native_gates for c in self.circuits]


def _opt_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"'{where}' must be an integer, got {value!r}")
    return value


def parse_job_request(body: Any, config: ServerConfig) -> JobSpec:
    """Validate a job-creation body.

    Raises:
        ApiError: 400 for malformed input, 413 for too many circuits/gates, 422 for
            limits (qubits, shots).
    """
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    backends = backends_for(config)
    backend = body.get("backend", body.get("target", "simulator"))
    if not isinstance(backend, str):
        raise bad_request("'backend' must be a string")
    backend = BACKEND_ALIASES.get(backend, backend)
    if backend not in backends:
        raise bad_request(f"unknown backend '{backend}'; available: {sorted(backends)}")
    info = backends[backend]

    shots = body.get("shots")
    if shots is None:
        shots = config.default_shots
    if not isinstance(shots, int) or isinstance(shots, bool):
        raise bad_request(f"'shots' must be an integer, got {shots!r}")
    if not 1 <= shots <= config.max_shots:
        raise unprocessable(f"'shots' must be between 1 and {config.max_shots}, got {shots}")

    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise bad_request("'metadata' must be an object")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise bad_request("'name' must be a string")

    noise = body.get("noise") or {}
    if not isinstance(noise, dict):
        raise bad_request("'noise' must be an object")
    noise_model = noise.get("model") or "ideal"
    if not isinstance(noise_model, str) or noise_model not in sim.NOISE_MODELS:
        raise bad_request(
            f"unknown noise model {noise_model!r}; available: {sorted(sim.NOISE_MODELS)}"
        )
    noise_seed = _opt_int(noise.get("seed"), "noise.seed")
    if not info.simulator:
        noise_model = info.noise_model  # a (simulated) QPU always has its own noise

    inp = body.get("input")
    if not isinstance(inp, dict):
        raise bad_request("'input' must be an object")
    job_type = body.get("type")
    if job_type is None:  # v0.3 bodies carry no type: infer it
        if "circuits" in inp:
            job_type = MULTI_TYPE
        elif isinstance(inp.get("data"), str) or inp.get("format") in ("openqasm", "qasm"):
            job_type = QASM3_TYPE
        else:
            job_type = CIRCUIT_TYPE
    if job_type not in JOB_TYPES:
        raise bad_request(f"unsupported job type {job_type!r}; supported: {list(JOB_TYPES)}")
    gateset = inp.get("gateset", "qis")
    if gateset not in ("qis", "native"):
        raise bad_request(f"unknown gateset {gateset!r}; use 'qis' or 'native'")
    qubits = _opt_int(inp.get("qubits"), "input.qubits")
    if qubits is not None and qubits < 0:
        raise bad_request("'input.qubits' must be non-negative")
    max_qubits = info.qubits

    circuits: list[ParsedCircuit] = []
    program = None
    if job_type == CIRCUIT_TYPE:
        circuits.append(parse_circuit(inp.get("circuit"), gateset, qubits or None, max_qubits,
                                      config.max_gates_per_circuit, name=name))
    elif job_type == MULTI_TYPE:
        items = inp.get("circuits")
        if not isinstance(items, list) or not items:
            raise bad_request("'input.circuits' must be a non-empty list")
        if len(items) > config.max_circuits_per_job:
            raise ApiError(413, f"{len(items)} circuits exceed the limit of "
                                f"{config.max_circuits_per_job} per job")
        for i, item in enumerate(items):
            where = f"input.circuits[{i}]"
            if not isinstance(item, dict):
                raise bad_request(f"{where} must be an object")
            cq = _opt_int(item.get("qubits"), f"{where}.qubits")
            cname = item.get("name")
            cgateset = item.get("gateset", gateset)
            if cgateset not in ("qis", "native"):
                raise bad_request(f"{where}: unknown gateset {cgateset!r}")
            circuits.append(parse_circuit(
                item.get("circuit"), cgateset, cq or qubits or None,
                max_qubits, config.max_gates_per_circuit,
                name=cname if isinstance(cname, str) else None, where=f"{where}.circuit",
            ))
    else:
        program = load_program(inp.get("data"), max_qubits, qubits or None)
        if program.max_branch_amplitudes(shots) > MAX_BRANCH_AMPLITUDES:
            raise unprocessable(
                "too many mid-circuit measurement branches to simulate "
                f"({program.branch_points} measurements/resets on {program.num_qubits} "
                f"qubits with {shots} shots); use fewer shots or qubits"
            )

    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise bad_request("'dry_run' must be a boolean")
    return JobSpec(
        type=job_type,
        backend=backend,
        shots=shots,
        name=name,
        metadata=metadata,
        noise_model=noise_model,
        noise_seed=noise_seed,
        settings=body.get("settings"),
        dry_run=dry_run,
        session_id=body.get("session_id"),
        gateset=gateset,
        circuits=tuple(circuits),
        program=program,
    )


@dataclass
class Job:
    """A stored job (a top-level job or one child of a multicircuit job)."""

    id: str
    spec: JobSpec
    seq: int
    parent_id: str | None = None
    circuit_index: int = 0
    status: str = "submitted"
    created: float = field(default_factory=time.time)
    started: float | None = None
    completed: float | None = None
    predicted_wait: float = 0.0
    predicted_exec: float = 0.0
    failure: dict | None = None
    fault: str | None = None
    children: list["Job"] = field(default_factory=list)
    # Results (set when completed).
    probabilities_json: str | None = None  # serialized once, off the event loop
    histogram: dict[int, int] | None = None
    shot_outcomes: list[int] | None = None
    artifacts: dict[str, str] = field(default_factory=dict)  # format -> artifact id
    artifact_payloads: dict[str, Any] = field(default_factory=dict)  # id -> payload
    sample_seed: Any = None
    deleted: bool = False

    @property
    def is_parent(self) -> bool:
        """Whether this is a multicircuit parent."""
        return bool(self.children)

    @property
    def circuit(self) -> ParsedCircuit | None:
        """This job's circuit (children and single-circuit jobs)."""
        if self.spec.circuits and not self.is_parent:
            return self.spec.circuits[self.circuit_index]
        return None

    def stats(self) -> dict[str, Any]:
        """The ``stats`` block of the record."""
        spec = self.spec
        if spec.program is not None:
            qubits, n1, n2 = spec.program.num_qubits, spec.program.gates_1q, spec.program.gates_2q
            circuits = 1
            native = spec.native_gate_counts[0]
        else:
            parts = [self.circuit] if self.circuit is not None else list(spec.circuits)
            qubits = max(c.num_qubits for c in parts)
            n1 = sum(c.gates_1q for c in parts)
            n2 = sum(c.gates_2q for c in parts)
            circuits = len(parts)
            native = sum(c.native_gates for c in parts)
        return {
            "qubits": qubits,
            "circuits": circuits,
            "gate_counts": {"1q": n1, "2q": n2},
            "native_gate_estimate": native,
        }


def iso(ts: float | None) -> str | None:
    """Epoch seconds -> ISO-8601 UTC with milliseconds and ``Z``."""
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[
        :-3
    ] + "Z"


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def results_block(job: Job, version: str) -> dict[str, Any] | None:
    """The v0.4 ``results`` map: format -> descriptor with a ``url`` (and ``id``)."""
    if job.status != "completed" or job.spec.dry_run:
        return None
    base = f"/{version}/jobs/{job.id}"
    out: dict[str, Any] = {"probabilities": {"url": f"{base}/results/probabilities"}}
    if job.histogram is not None or job.shot_outcomes is not None:
        out["histogram"] = {"url": f"{base}/results/histogram"}
        out["shots"] = {"url": f"{base}/results/shots"}
    for fmt, aid in job.artifacts.items():
        out[fmt] = {"id": aid, "url": f"{base}/artifacts/{aid}"}
    return out


def render_job(job: Job, version: str = "v0.4") -> dict[str, Any]:
    """The JSON record of ``job`` as ``GET /jobs/{id}`` returns it.

    ``version`` is ``"v0.4"`` (default) or ``"v0.3"`` (legacy field names).
    """
    spec = job.spec
    exec_ms = (
        _ms(job.completed - job.started) if job.completed and job.started is not None else None
    )
    child_ids = [c.id for c in job.children] or None
    stats = job.stats()
    if version == "v0.3":
        return {
            "id": job.id,
            "status": job.status,
            "name": spec.name,
            "target": spec.backend,
            "noise": {"model": spec.noise_model, "seed": spec.noise_seed},
            "metadata": spec.metadata if job.parent_id is None else None,
            "shots": spec.shots,
            "gate_counts": stats["gate_counts"],
            "qubits": stats["qubits"],
            "circuits": stats["circuits"],
            "request": int(job.created),
            "start": int(job.started) if job.started else None,
            "response": int(job.completed) if job.completed else None,
            "execution_time": exec_ms,
            "predicted_execution_time": _ms(job.predicted_exec),
            "children": child_ids,
            "results_url": (
                f"/v0.3/jobs/{job.id}/results" if job.status == "completed" else None
            ),
            "failure": job.failure,
            "dry_run": spec.dry_run,
        }
    return {
        "id": job.id,
        "status": job.status,
        "type": spec.type if job.parent_id is None else CIRCUIT_TYPE,
        "backend": spec.backend,
        "dry_run": spec.dry_run,
        "submitter_id": "local-user",
        "project_id": "local-project",
        "parent_job_id": job.parent_id,
        "child_job_ids": child_ids,
        "session_id": spec.session_id,
        # Children do not repeat the parent's metadata, so a lookup by a client's
        # ``metadata.submission_id`` finds exactly one job.
        "metadata": spec.metadata if job.parent_id is None else None,
        "name": spec.name if job.parent_id is None else (job.circuit.name if job.circuit else None),
        "submitted_at": iso(job.created),
        "started_at": iso(job.started),
        "completed_at": iso(job.completed),
        "predicted_execution_duration_ms": _ms(job.predicted_exec),
        "predicted_wait_time_ms": _ms(job.predicted_wait),
        "execution_duration_ms": exec_ms,
        "shots": spec.shots,
        "noise": {"model": spec.noise_model, "seed": spec.noise_seed},
        "failure": job.failure,
        "settings": spec.settings if spec.settings is not None else {"compilation": {}},
        "stats": stats,
        "results": results_block(job, version),
        "output": {},
    }


class JobStore:
    """Jobs by id, in creation order. Thread-safe for the read helpers tests use."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._log: list[Job] = []  # every top-level job ever stored, deleted ones too
        self._lock = threading.Lock()
        self._seq = 0

    def new_id(self) -> tuple[str, int]:
        """A fresh job id and its sequence number."""
        with self._lock:
            self._seq += 1
            return str(uuid.uuid4()), self._seq

    def add(self, job: Job) -> None:
        """Store ``job`` and its children."""
        with self._lock:
            self._jobs[job.id] = job
            if job.parent_id is None:
                self._log.append(job)
            for child in job.children:
                self._jobs[child.id] = child

    def get(self, job_id: str) -> Job:
        """The job with ``job_id``.

        Raises:
            ApiError: 404 if there is no such job.
        """
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"job '{job_id}' not found")
        return job

    def delete(self, job_id: str) -> Job:
        """Remove a job (and its children)."""
        with self._lock:
            job = self._jobs.pop(job_id, None)
            if job is None:
                raise ApiError(404, f"job '{job_id}' not found")
            job.deleted = True
            for j in [job, *job.children]:
                self._jobs.pop(j.id, None)
                # Free the results; the log keeps only the record.
                j.probabilities_json = j.histogram = None
                j.artifact_payloads = {}
            return job

    def all(self) -> list[Job]:
        """Every stored job, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def top_level(self) -> list[Job]:
        """Jobs that are not children, oldest first."""
        return [j for j in self.all() if j.parent_id is None]

    def history(self) -> list[Job]:
        """Every top-level job ever stored (deleted ones included), oldest first."""
        with self._lock:
            return list(self._log)


def matches_filters(job: Job, query: dict[str, str], ids: Iterable[str] | None) -> bool:
    """Whether ``job`` passes ``GET /jobs`` filters.

    Supported: ``status``, ``backend``/``target``, ``type``, ``name``, ``session_id``,
    ``parent_job_id``, ``ids``, and metadata equality as ``metadata.<key>=<value>`` or
    ``metadata[<key>]=<value>``.
    """
    spec = job.spec
    if ids is not None and job.id not in ids:
        return False
    for key, value in query.items():
        if key == "status" and job.status not in value.split(","):
            return False
        if key in ("backend", "target") and spec.backend != value:
            return False
        if key == "type" and spec.type != value:
            return False
        if key == "name" and spec.name != value:
            return False
        if key == "session_id" and str(spec.session_id) != value:
            return False
        if key == "parent_job_id" and job.parent_id != value:
            return False
        meta_key = None
        if key.startswith("metadata."):
            meta_key = key[len("metadata."):]
        elif key.startswith("metadata[") and key.endswith("]"):
            meta_key = key[len("metadata["):-1]
        if meta_key is not None:
            meta = spec.metadata if job.parent_id is None else None
            if not isinstance(meta, dict) or str(meta.get(meta_key)) != value:
                return False
    return True


__all__ = [
    "Job",
    "JobSpec",
    "JobStore",
    "BackendInfo",
    "backends_for",
    "parse_job_request",
    "render_job",
    "matches_filters",
    "CIRCUIT_TYPE",
    "MULTI_TYPE",
    "QASM3_TYPE",
    "SHOTS_V2",
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
]
