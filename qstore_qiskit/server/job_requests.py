"""Job requests: the backends on offer and :func:`parse_job_request`, which validates a
``POST /jobs`` body into a :class:`JobSpec` as strictly as IonQ's cloud does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise bad_request("'dry_run' must be a boolean", keys=["dry_run"])
    if not dry_run:  # a dry run simulates nothing
        _check_work(circuits, program, shots, config)
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


__all__ = [
    "JobSpec",
    "BackendInfo",
    "backends_for",
    "parse_job_request",
    "noise_model_qubits",
    "BACKEND_ALIASES",
    "CIRCUIT_TYPE",
    "MULTI_TYPE",
    "QASM3_TYPE",
    "JOB_TYPES",
    "SHOTS_V2",
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "DOCUMENTED_NOISE_MODELS",
    "QPU_QUBITS",
    "MAX_BRANCH_AMPLITUDES",
]
