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


# Width of each QPU IonQ documents; noisy simulation with a QPU's noise model is
# allowed up to that QPU's width (IonQ's "Simulation with Noise Models" page).
QPU_QUBITS = {"harmony": 11, "aria": 25, "forte": 36}

# Noise model names of IonQ's v0.4 document (``components/schemas/NoiseModel``).
DOCUMENTED_NOISE_MODELS = ("ideal", "harmony", "harmony-1", "harmony-2", "aria-1", "aria-2",
                           "forte-1", "forte-enterprise-1")


def noise_model_qubits(model: str, ideal_width: int) -> int:
    """Widest circuit the simulator takes with noise ``model``."""
    if model == "ideal":
        return ideal_width
    family = model.split("-")[0]
    return QPU_QUBITS.get(family, ideal_width)


def backends_for(config: ServerConfig) -> dict[str, BackendInfo]:
    """The backends on offer: the simulator (``config.max_qubits`` wide, 29 by default as
    IonQ's) and simulated QPUs at their documented widths."""
    return {
        "simulator": BackendInfo("simulator", config.max_qubits, True, "ideal", "ms"),
        "qpu.aria-1": BackendInfo("qpu.aria-1", QPU_QUBITS["aria"], False, "aria-1", "ms"),
        "qpu.aria-2": BackendInfo("qpu.aria-2", QPU_QUBITS["aria"], False, "aria-2", "ms"),
        "qpu.forte-1": BackendInfo("qpu.forte-1", QPU_QUBITS["forte"], False, "forte-1", "zz"),
        "qpu.forte-enterprise-1": BackendInfo(
            "qpu.forte-enterprise-1", QPU_QUBITS["forte"], False, "forte-enterprise-1", "zz"
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
        raise bad_request(f"'{where}' must be an integer, got {value!r}", keys=[where])
    return value


# Top-level fields of a v0.4 job body (IonQ's ``CircuitJobCreationPayload``), plus
# ``lang``, which cirq-ionq 1.x sends with every job (the cloud accepts it).
V04_FIELDS = frozenset({"type", "backend", "name", "metadata", "shots", "session_id",
                        "settings", "dry_run", "noise", "input", "lang"})
# v0.3 bodies (``/v0.3/jobs``) also carry ``target``/``format``/``registers``.
V03_FIELDS = V04_FIELDS | {"target", "format", "registers"}
MAX_METADATA_KEYS = 10
# IonQ: "To turn on debiasing, you must request at least 500 shots".
DEBIASING_MIN_SHOTS = 500
_SETTINGS_FIELDS = frozenset({"error_mitigation", "compilation"})


def _shots(value: Any, config: ServerConfig) -> int:
    """``shots`` as an integer: JSON integers, and decimal strings as cirq-ionq sends."""
    if value is None:
        return config.default_shots
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 12:
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"'shots' must be an integer, got {value!r}", keys=["shots"])
    if not 1 <= value <= config.max_shots:
        raise bad_request(f"'shots' must be between 1 and {config.max_shots}, got {value}",
                          keys=["shots"])
    return value


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("'metadata' must be an object of string values", keys=["metadata"])
    if len(value) > MAX_METADATA_KEYS:
        raise bad_request(f"'metadata' has {len(value)} keys; at most {MAX_METADATA_KEYS} "
                          "are allowed", keys=["metadata"])
    bad = sorted(k for k, v in value.items() if not isinstance(v, str))
    if bad:
        raise bad_request(f"metadata values must be strings; not so for {bad}",
                          keys=[f"metadata.{k}" for k in bad])
    return value


def _noise(value: Any, info: BackendInfo) -> tuple[str, int | None]:
    if value is None:
        return ("ideal" if info.simulator else info.noise_model), None
    if not isinstance(value, dict):
        raise bad_request("'noise' must be an object {model, seed}", keys=["noise"])
    unknown = sorted(set(value) - {"model", "seed"})
    if unknown:
        raise bad_request(f"unknown field(s) {unknown} in 'noise'",
                          keys=[f"noise.{k}" for k in unknown])
    model = value.get("model", "ideal")
    if model is None:
        model = "ideal"
    if model not in DOCUMENTED_NOISE_MODELS:
        raise bad_request(f"unknown noise model {model!r}; available: "
                          f"{list(DOCUMENTED_NOISE_MODELS)}", keys=["noise.model"])
    seed = value.get("seed")
    if isinstance(seed, str) and seed.strip().isdigit() and len(seed) <= 10:
        seed = int(seed)  # qiskit-ionq/cirq pass seeds through as the user gave them
    seed = _opt_int(seed, "noise.seed")
    if seed is not None and not 0 <= seed < 2**31:
        raise bad_request("'noise.seed' must be in [0, 2**31)", keys=["noise.seed"])
    if not info.simulator:
        return info.noise_model, seed  # a (simulated) QPU always has its own noise
    if model not in sim.NOISE_MODELS:
        # A documented name the simulator does not model yet: its family's model.
        model = model.split("-")[0] if model.split("-")[0] in sim.NOISE_MODELS else "ideal"
    return model, seed


def _settings(value: Any, shots: int) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("'settings' must be an object", keys=["settings"])
    unknown = sorted(set(value) - _SETTINGS_FIELDS)
    if unknown:
        raise bad_request(f"unknown field(s) {unknown} in 'settings'",
                          keys=[f"settings.{k}" for k in unknown])
    mitigation = value.get("error_mitigation")
    if mitigation is not None:
        if not isinstance(mitigation, dict):
            raise bad_request("'settings.error_mitigation' must be an object",
                              keys=["settings.error_mitigation"])
        debiasing = mitigation.get("debiasing")
        if debiasing is not None and not isinstance(debiasing, (bool, dict)):
            raise bad_request("'settings.error_mitigation.debiasing' must be a boolean or "
                              "an object", keys=["settings.error_mitigation.debiasing"])
        if debiasing and shots < DEBIASING_MIN_SHOTS:
            raise bad_request(f"debiasing needs at least {DEBIASING_MIN_SHOTS} shots, got "
                              f"{shots}", keys=["shots", "settings.error_mitigation"])
    compilation = value.get("compilation")
    if compilation is not None and not isinstance(compilation, dict):
        raise bad_request("'settings.compilation' must be an object",
                          keys=["settings.compilation"])
    return value


def _check_native_2q(circuits: list[ParsedCircuit], info: BackendInfo, where: str) -> None:
    """``ms`` only on Aria-class and ``zz`` only on Forte-class QPUs (the simulator takes
    both)."""
    if info.simulator:
        return
    wrong = "zz" if info.native_2q == "ms" else "ms"
    for circuit in circuits:
        if wrong in circuit.native_names:
            raise bad_request(f"{where}: gate '{wrong}' is not native to {info.name} (its "
                              f"two-qubit gate is '{info.native_2q}')", keys=[where])


def _check_work(circuits: list[ParsedCircuit], program: Any, shots: int,
                config: ServerConfig) -> None:
    """Refuse a job whose simulation would exceed the per-job budgets, before any work."""
    widths = [c.num_qubits for c in circuits] or [program.num_qubits]
    work = sum(widths) * shots
    if config.max_job_work is not None and work > config.max_job_work:
        raise ApiError(413, f"the job asks for {work} qubit-shots (qubits x shots summed "
                            f"over its circuits); this server takes at most "
                            f"{config.max_job_work} per job")
    amplitudes = sum(1 << w for w in widths)
    if config.max_job_amplitudes is not None and amplitudes > config.max_job_amplitudes:
        raise ApiError(413, f"simulating the job needs {amplitudes} state amplitudes "
                            f"(2**qubits summed over its circuits); this server's budget "
                            f"is {config.max_job_amplitudes} per job")


def parse_job_request(body: Any, config: ServerConfig, version: str = "v0.4",
                      native_ranges: bool = False) -> JobSpec:
    """Validate a job-creation body as strictly as IonQ's cloud does.

    ``version`` ``"v0.4"`` (default) requires ``type`` and ``backend`` and refuses
    unknown top-level fields; ``"v0.3"`` bodies may omit ``type`` (it is inferred) and
    name the backend ``target``. ``native_ranges`` enforces the documented native gate
    parameter ranges (the API sets it; simulator tests and benchmarks feed arbitrary
    angles).

    Raises:
        ApiError: 400 for malformed input or a violated documented constraint, 413 for
            too many circuits/gates or a job beyond the server's work budget.
    """
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    strict = version != "v0.3"
    unknown = sorted(set(body) - (V04_FIELDS if strict else V03_FIELDS))
    if unknown:
        raise bad_request(f"unknown field(s) {unknown}", keys=unknown)
    backends = backends_for(config)
    if strict and "backend" not in body:
        raise bad_request("'backend' is required", keys=["backend"])
    backend = body.get("backend", body.get("target", "simulator"))
    if not isinstance(backend, str):
        raise bad_request("'backend' must be a string", keys=["backend"])
    backend = BACKEND_ALIASES.get(backend, backend)
    if backend not in backends:
        raise bad_request(f"unknown backend '{backend}'; available: {sorted(backends)}",
                          keys=["backend"])
    info = backends[backend]

    shots = _shots(body.get("shots"), config)
    metadata = _metadata(body.get("metadata"))
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise bad_request("'name' must be a string", keys=["name"])
    noise_model, noise_seed = _noise(body.get("noise"), info)
    settings = _settings(body.get("settings"), shots)
    session_id = body.get("session_id")
    if session_id is not None and not isinstance(session_id, str):
        raise bad_request("'session_id' must be a string", keys=["session_id"])

    inp = body.get("input")
    if not isinstance(inp, dict):
        raise bad_request("'input' must be an object", keys=["input"])
    job_type = body.get("type")
    if job_type is None:
        if strict:
            raise bad_request(f"'type' is required; one of {list(JOB_TYPES)}", keys=["type"])
        if "circuits" in inp:  # v0.3 bodies carry no type: infer it
            job_type = MULTI_TYPE
        elif isinstance(inp.get("data"), str) or inp.get("format") in ("openqasm", "qasm"):
            job_type = QASM3_TYPE
        else:
            job_type = CIRCUIT_TYPE
    if job_type not in JOB_TYPES:
        raise bad_request(f"unsupported job type {job_type!r}; supported: {list(JOB_TYPES)}",
                          keys=["type"])
    gateset = inp.get("gateset", "qis")
    if gateset not in ("qis", "native"):
        raise bad_request(f"unknown gateset {gateset!r}; use 'qis' or 'native'",
                          keys=["input.gateset"])
    qubits = _opt_int(inp.get("qubits"), "input.qubits")
    if qubits is not None and qubits < 0:
        raise bad_request("'input.qubits' must be non-negative", keys=["input.qubits"])
    max_qubits = min(info.qubits, noise_model_qubits(noise_model, info.qubits))

    circuits: list[ParsedCircuit] = []
    program = None
    if job_type == CIRCUIT_TYPE:
        circuits.append(parse_circuit(inp.get("circuit"), gateset, qubits or None, max_qubits,
                                      config.max_gates_per_circuit, name=name,
                                      strict=native_ranges))
    elif job_type == MULTI_TYPE:
        items = inp.get("circuits")
        if not isinstance(items, list) or not items:
            raise bad_request("'input.circuits' must be a non-empty list",
                              keys=["input.circuits"])
        if len(items) > config.max_circuits_per_job:
            raise ApiError(413, f"{len(items)} circuits exceed the limit of "
                                f"{config.max_circuits_per_job} per job")
        for i, item in enumerate(items):
            where = f"input.circuits[{i}]"
            if not isinstance(item, dict):
                raise bad_request(f"{where} must be an object", keys=[where])
            cq = _opt_int(item.get("qubits"), f"{where}.qubits")
            cname = item.get("name")
            cgateset = item.get("gateset", gateset)
            if cgateset not in ("qis", "native"):
                raise bad_request(f"{where}: unknown gateset {cgateset!r}",
                                  keys=[f"{where}.gateset"])
            circuits.append(parse_circuit(
                item.get("circuit"), cgateset, cq or qubits or None,
                max_qubits, config.max_gates_per_circuit,
                name=cname if isinstance(cname, str) else None, where=f"{where}.circuit",
                strict=native_ranges,
            ))
    else:
        program = load_program(inp.get("data"), max_qubits, qubits or None)
        if program.max_branch_amplitudes(shots) > MAX_BRANCH_AMPLITUDES:
            raise unprocessable(
                "too many mid-circuit measurement branches to simulate "
                f"({program.branch_points} measurements/resets on {program.num_qubits} "
                f"qubits with {shots} shots); use fewer shots or qubits"
            )
    if config.enforce_native_2q:
        _check_native_2q(circuits, info, "input")
    _check_work(circuits, program, shots, config)

    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise bad_request("'dry_run' must be a boolean", keys=["dry_run"])
    return JobSpec(
        type=job_type,
        backend=backend,
        shots=shots,
        name=name,
        metadata=metadata,
        noise_model=noise_model,
        noise_seed=noise_seed,
        settings=settings,
        dry_run=dry_run,
        session_id=session_id,
        gateset=gateset,
        circuits=tuple(circuits),
        program=program,
    )


@dataclass
class Variant:
    """One debiasing variant of a job (filled in by the simulation).

    Attributes:
        id: The variant's id (``/jobs/{id}/variants/{variant_id}/...``).
        qubit_map: Physical qubit of each logical qubit in this variant.
        shots: Shots the variant ran.
        probabilities: ``{outcome: probability}`` of this variant.
        histogram: ``{outcome: count}`` of this variant (``None``: not sampled).
        sample_seed: Seed of the per-shot order of ``histogram`` (``None``: fixed order).
    """

    id: str
    qubit_map: list[int]
    shots: int
    probabilities: dict[int, float]
    histogram: dict[int, int] | None = None
    sample_seed: Any = None


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
    variants: dict[str, Variant] = field(default_factory=dict)  # debiasing variants
    # Plurality-voted aggregate of the variants (``?sharpen=true``); ``None``: not debiased.
    sharpened_json: str | None = None
    deleted: bool = False
    request_bytes: int = 0  # size of the creation body (for the store's byte budget)

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

    def gate_counts(self) -> tuple[int, int, int]:
        """``(qubits, 1q gates, 2q gates)`` of this job (all circuits for a parent)."""
        spec = self.spec
        if spec.program is not None:
            return spec.program.num_qubits, spec.program.gates_1q, spec.program.gates_2q
        parts = [self.circuit] if self.circuit is not None else list(spec.circuits)
        return (max(c.num_qubits for c in parts), sum(c.gates_1q for c in parts),
                sum(c.gates_2q for c in parts))

    def stats(self) -> dict[str, Any]:
        """The ``stats`` block of the record (IonQ's ``CircuitJobStats``)."""
        spec = self.spec
        qubits, n1, n2 = self.gate_counts()
        circuits = 1 if spec.program is not None or self.circuit is not None else len(
            spec.circuits)
        predicted_us = int(round(self.predicted_exec * 1e6))
        billed = None
        if self.status == "completed" and self.started is not None and self.completed:
            billed = int(round((self.completed - self.started) * 1e6))
        out: dict[str, Any] = {
            "qubits": qubits,
            "circuits": circuits,
            "gate_counts": {"1q": n1, "2q": n2},
            "predicted_quantum_compute_time_us": predicted_us,
        }
        if billed is not None:
            out["billed_quantum_compute_time_us"] = billed
        return out

    def summary(self) -> dict[str, Any]:
        """A small record of the job for :meth:`JobStore.history` (kept after eviction)."""
        return {
            "id": self.id,
            "status": self.status,
            "metadata": self.spec.metadata,
            "circuits": self.spec.num_circuits,
            "created": self.created,
            "backend": self.spec.backend,
            "type": self.spec.type,
            "shots": self.spec.shots,
            "fault": self.fault,
            "child_job_ids": [c.id for c in self.children],
            "deleted": self.deleted,
        }

    def result_bytes(self) -> int:
        """Approximate bytes this job (and its children) holds, for the store's budget."""
        total = self.request_bytes + 2048
        for j in [self, *self.children]:
            total += 512
            if j.probabilities_json is not None:
                total += len(j.probabilities_json)
            if j.histogram is not None:
                total += 100 * len(j.histogram)
            for payload in j.artifact_payloads.values():
                shots = payload.get("shots") if isinstance(payload, dict) else None
                total += 64 * (len(shots) if isinstance(shots, list) else 1)
            for variant in j.variants.values():
                total += 100 * (len(variant.probabilities) + len(variant.histogram or ()))
        return total


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


def output_block(job: Job, version: str) -> dict[str, Any]:
    """The ``output`` block: the debiasing variants and their result URLs, if any."""
    if not job.variants or job.status != "completed":
        return {}
    base = f"/{version}/jobs/{job.id}/variants"
    variants = []
    for variant in job.variants.values():
        urls = {kind: {"url": f"{base}/{variant.id}/results/{kind}"}
                for kind in ("probabilities", "histogram", "shots")
                if kind == "probabilities" or variant.histogram is not None}
        variants.append({"variant_id": variant.id, "qubit_map": list(variant.qubit_map),
                         "shots": variant.shots, "results": urls})
    return {"error_mitigation": {"debiasing": {"variants": variants}}}


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
    noise = {"model": spec.noise_model}
    if spec.noise_seed is not None:
        noise["seed"] = spec.noise_seed
    if version == "v0.3":
        return {
            "id": job.id,
            "status": job.status,
            "name": spec.name,
            "target": spec.backend,
            "noise": noise,
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
    record = {
        "id": job.id,
        "status": job.status,
        "type": spec.type if job.parent_id is None else CIRCUIT_TYPE,
        "backend": spec.backend,
        "dry_run": spec.dry_run,
        "cost_model": "quantum_compute_time",
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
        "failure": job.failure,
        "settings": spec.settings if spec.settings is not None else {"compilation": {}},
        "stats": stats,
        "results": results_block(job, version),
        "output": output_block(job, version),
    }
    if spec.backend == "simulator":  # documented: "only present when backend is simulator"
        record["noise"] = noise
    return record


class JobGone(ApiError):
    """410 for a job the store evicted to stay within its byte budget."""

    def __init__(self, job_id: str):
        super().__init__(410, f"job '{job_id}' finished long ago and was evicted from this "
                              "server's job store (see ServerConfig.job_store_bytes)")


class JobStore:
    """Jobs by id, in creation order, within a byte budget. Thread-safe.

    When the results held exceed ``budget_bytes`` (or more than ``max_jobs`` top-level
    jobs are stored), the oldest *finished* top-level jobs are evicted with their
    children: their ids then answer 410 (for the last ``gone_ids`` evicted) and later
    404. Active jobs are never evicted.

    Args:
        budget_bytes: Byte budget of stored jobs and results (``None``: unbounded).
        max_jobs: Most top-level jobs kept (``None``: unbounded).
        history: Keep a small summary of every job ever stored (for tests that look
            for duplicates; :meth:`history`). Bounded by ``history`` entries.
    """

    def __init__(self, budget_bytes: int | None = None, max_jobs: int | None = None,
                 history: int = 1_000_000, gone_ids: int = 100_000) -> None:
        self.budget_bytes = budget_bytes
        self.max_jobs = max_jobs
        self._jobs: dict[str, Job] = {}
        self._top: dict[str, Job] = {}  # top-level jobs in creation order
        self._sizes: dict[str, int] = {}  # charged bytes per top-level job
        self._bytes = 0
        self._log: dict[str, Job | dict[str, Any]] = {}
        self._history_cap = history
        self._gone: dict[str, None] = {}
        self._gone_cap = gone_ids
        self._lock = threading.Lock()
        self._seq = 0
        self.evicted = 0

    def new_id(self) -> tuple[str, int]:
        """A fresh job id and its sequence number."""
        with self._lock:
            self._seq += 1
            return str(uuid.uuid4()), self._seq

    @property
    def bytes_held(self) -> int:
        """Bytes charged to the stored jobs."""
        return self._bytes

    def add(self, job: Job) -> None:
        """Store ``job`` and its children (evicting old finished jobs if over budget)."""
        with self._lock:
            self._jobs[job.id] = job
            if job.parent_id is None:
                self._top[job.id] = job
                self._charge(job)
                self._log[job.id] = job
                while len(self._log) > self._history_cap:
                    del self._log[next(iter(self._log))]
            for child in job.children:
                self._jobs[child.id] = child
            self._evict()

    def settle(self, job: Job) -> None:
        """Re-charge ``job`` now that it holds results, and evict if over budget."""
        with self._lock:
            if job.id in self._top:
                self._charge(job)
                self._evict()

    def _charge(self, job: Job) -> None:
        size = job.result_bytes()
        self._bytes += size - self._sizes.get(job.id, 0)
        self._sizes[job.id] = size

    def _evict(self) -> None:
        over_bytes = self.budget_bytes is not None and self._bytes > self.budget_bytes
        over_count = self.max_jobs is not None and len(self._top) > self.max_jobs
        if not (over_bytes or over_count):
            return
        for job_id, job in list(self._top.items()):
            if job.status not in FINAL_STATUSES:
                continue
            self._drop(job, gone=True)
            over_bytes = self.budget_bytes is not None and self._bytes > self.budget_bytes
            over_count = self.max_jobs is not None and len(self._top) > self.max_jobs
            if not (over_bytes or over_count):
                return

    def _drop(self, job: Job, gone: bool) -> None:
        self._top.pop(job.id, None)
        self._bytes -= self._sizes.pop(job.id, 0)
        if job.id in self._log:
            self._log[job.id] = job.summary()
        for j in [job, *job.children]:
            self._jobs.pop(j.id, None)
            # Free the results; the history keeps only the summary.
            j.probabilities_json = j.histogram = None
            j.artifact_payloads = {}
            j.variants = {}
            j.sharpened_json = None
            if gone:
                self._gone[j.id] = None
        if gone:
            self.evicted += 1
            while len(self._gone) > self._gone_cap:
                del self._gone[next(iter(self._gone))]

    def get(self, job_id: str) -> Job:
        """The job with ``job_id``.

        Raises:
            ApiError: 404 if there is no such job, 410 if it was evicted.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            gone = job is None and job_id in self._gone
        if gone:
            raise JobGone(job_id)
        if job is None:
            raise ApiError(404, f"job '{job_id}' not found")
        return job

    def delete(self, job_id: str) -> Job:
        """Remove a job (and its children)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                if job_id in self._gone:
                    raise JobGone(job_id)
                raise ApiError(404, f"job '{job_id}' not found")
            job.deleted = True
            self._drop(job, gone=False)
            return job

    def all(self) -> list[Job]:
        """Every stored job, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def top_level(self) -> list[Job]:
        """Jobs that are not children, oldest first."""
        with self._lock:
            return list(self._top.values())

    def history(self) -> list[dict[str, Any]]:
        """A summary (:meth:`Job.summary`) of every top-level job ever stored, deleted and
        evicted ones included, oldest first."""
        with self._lock:
            entries = list(self._log.values())
        return [e.summary() if isinstance(e, Job) else dict(e) for e in entries]


def matches_filters(job: Job, query: dict[str, str], ids: Iterable[str] | None) -> bool:
    """Whether ``job`` passes ``GET /jobs`` filters.

    Supported: ``status`` and ``backend``/``target`` (comma-separated lists), ``type``,
    ``name``, ``session_id``, ``parent_job_id``, ``ids``, and metadata equality as
    ``metadata.<key>=<value>`` or ``metadata[<key>]=<value>``.
    """
    spec = job.spec
    if ids is not None and job.id not in ids:
        return False
    for key, value in query.items():
        if key == "status" and job.status not in value.split(","):
            return False
        if key in ("backend", "target") and spec.backend not in {
            BACKEND_ALIASES.get(v.strip(), v.strip()) for v in value.split(",")
        }:
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
    "JobGone",
    "Variant",
    "BackendInfo",
    "backends_for",
    "parse_job_request",
    "render_job",
    "matches_filters",
    "noise_model_qubits",
    "CIRCUIT_TYPE",
    "MULTI_TYPE",
    "QASM3_TYPE",
    "SHOTS_V2",
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "DOCUMENTED_NOISE_MODELS",
]
