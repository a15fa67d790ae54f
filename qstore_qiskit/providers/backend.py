"""``BackendV2`` for IonQ devices: compile once, bind many, submit in batches.

Data path of :meth:`QStoreBackend.run`::

    circuits -> (parameter_binds expanded) -> template cache (compile a structure once,
    bind values into ready JSON) -> BatchSubmitter (coalesced multicircuit jobs, pooled
    HTTP, retries) -> per-circuit results -> qiskit.result.Result
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.providers import BackendV2, Options
from qiskit.transpiler import PassManager, Target

from ..cache import TemplateCache
from ..client import BatchSubmitter
from ..client.submitter import DEFAULT_MAX_CIRCUITS_PER_JOB
from ..payload import dense_width, measurement_map, native_body
from ..transpiler import DeviceSpec, generate_ionq_pass_manager, ionq_target
from ..transpiler.target import DEVICES, instruction_error
from ..version import __version__
from .job import QStoreJob
from .stats import PerformanceTracker, format_report

if TYPE_CHECKING:  # pragma: no cover
    from .provider import QStoreProvider

#: The seed's feature flags, all switchable per backend or per run for A/B comparison.
FEATURE_OPTIONS = ("use_batch_api", "use_native_gates", "enable_smart_caching", "adaptive_batch_sizing")
#: Options that configure the HTTP submitter (a new submitter is made when they change).
_SUBMITTER_OPTIONS = (
    "connection_pool_size",
    "batch_window",
    "max_queue_wait_time",
    "adaptive_batch_sizing",
    "use_batch_api",
    "request_timeout",
    "max_retries",
    "journal_path",
)
_NATIVE_NAMES = frozenset({"gpi", "gpi2", "ms", "zz"})
_NOT_GATES = frozenset({"measure", "barrier", "reset"})


@dataclass
class PreparedCircuit:
    """One circuit ready to send, plus what is needed to decode its result."""

    name: str
    body: dict[str, Any]
    gateset: str
    meas_map: list[int | None]
    payload_qubits: int
    creg_sizes: list
    clbit_labels: list
    metadata: dict = field(default_factory=dict)
    native_gate_counts: dict = field(default_factory=dict)
    estimated_fidelity: float | None = None
    input_gates: int = 0


def _payload_fidelity(gates: list[dict], spec: DeviceSpec) -> float:
    """Estimated success of a native gate list (same model as ``estimated_fidelity``)."""
    if not (spec.oneq_error or spec.ms_error or spec.zz_error):
        return 1.0  # the ideal simulator: every error is zero
    log_1q = np.log1p(-min(spec.oneq_error, 1 - 1e-15))
    n_1q = 0
    log_f = 0.0
    for gate in gates:
        name = gate["gate"]
        if name in ("gpi", "gpi2"):
            n_1q += 1
            continue
        params = [0.0, 0.0, gate.get("angle", 0.25)] if name == "ms" else [gate.get("angle", 0.25)]
        log_f += np.log1p(-min(instruction_error(name, params, spec), 1 - 1e-15))
    return float(np.exp(log_f + n_1q * log_1q))


_NATIVE_LIFTED = frozenset({"gpi", "gpi2", "ms", "zz"})
_NATIVE_OK = _NATIVE_LIFTED | {"rz", "measure", "barrier", "reset", "global_phase", "delay"}


def _scan(circuit: QuantumCircuit) -> tuple[int, str, list[int | None]]:
    """One pass over ``circuit``: ``(gate count, kind, measurement map)``.

    ``kind`` is ``"logical"`` (no native gates), ``"native"`` (only GPi/GPi2/MS/ZZ/RZ) or
    ``"mixed"``; the measurement map is :func:`~qstore_qiskit.payload.measurement_map`'s
    (clbit -> measured qubit). The pass reads instruction names, qubits and parameters
    only, never ``inst.operation`` (which makes Qiskit build a Python gate object per
    instruction): it runs for every circuit a backend receives.

    Raises a clear error for what a gate-list job cannot carry: classical control flow
    (``TranspilerError``), mid-circuit measurement or reset (``ValueError``).

    Circuits holding native gates do not go through the template cache: lifted
    templates of native angles currently bind wrong values for other angles (reported
    upstream). Already-native circuits (e.g. the output of ``transpile(qc, backend)``)
    need no compiler anyway and are serialized directly; "mixed" ones (native gates next
    to others, e.g. a preset-transpiled circuit plus the ``h``/``sdg`` basis changes
    ``BackendEstimatorV2`` appends) are compiled exactly, per circuit.
    """
    from qiskit.transpiler.exceptions import TranspilerError

    measured: set = set()
    meas_map: list[int | None] = [None] * circuit.num_clbits
    qidx = cidx = None
    gates = 0
    native = logical = False
    for inst in circuit.data:
        name = inst.name
        if name in ("barrier", "delay"):
            continue
        if inst.is_control_flow():
            raise TranspilerError(
                f"circuit '{circuit.name}' contains '{name}' (classical control flow), which IonQ "
                "devices do not support; unroll it or run the branches as separate circuits."
            )
        if name == "measure":
            if qidx is None:
                qidx = {q: i for i, q in enumerate(circuit.qubits)}
                cidx = {c: i for i, c in enumerate(circuit.clbits)}
            qubit = inst.qubits[0]
            measured.add(qubit)
            meas_map[cidx[inst.clbits[0]]] = qidx[qubit]
            continue
        if name in ("reset", "initialize"):
            raise ValueError(
                f"circuit '{circuit.name}' contains '{name}', which resets qubits (at the start or "
                "mid-circuit): IonQ's circuit jobs have no reset (qubits start in |0>). "
                + ("Use StatePreparation (qc.prepare_state) instead." if name == "initialize" else "Remove it.")
            )
        if measured and not measured.isdisjoint(inst.qubits):
            raise ValueError(
                f"circuit '{circuit.name}' measures or resets a qubit mid-circuit; qstore backends "
                "batch gate-list jobs only. Run it with qiskit-ionq's backend (OpenQASM 3 jobs)."
            )
        gates += 1
        for value in inst.params:
            if type(value) is float and not math.isfinite(value):  # noqa: E721 (hot path)
                raise ValueError(
                    f"circuit '{circuit.name}': instruction '{name}' has angle {value}; angles must be finite"
                )
        if name in _NATIVE_LIFTED:
            native = True
        elif name not in _NATIVE_OK:
            logical = True
    kind = ("mixed" if logical else "native") if native else "logical"
    return gates, kind, meas_map


def _gate_width(circuit: QuantumCircuit) -> int:
    """Highest index of a qubit that a gate (not a measurement or barrier) acts on, plus one."""
    qidx = {q: i for i, q in enumerate(circuit.qubits)}
    width = 0
    for inst in circuit.data:
        if inst.name not in ("measure", "barrier", "delay"):
            for q in inst.qubits:
                width = max(width, qidx[q] + 1)
    return width


def _gate_counts(gates: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for gate in gates:
        counts[gate["gate"]] = counts.get(gate["gate"], 0) + 1
    return counts


_QIS_BASIS: list[str] | None = None


def _qis_basis() -> list[str]:
    """IonQ's QIS gate names that Qiskit's ``transpile(basis_gates=...)`` accepts."""
    global _QIS_BASIS
    if _QIS_BASIS is None:
        from qiskit.circuit.library import get_standard_gate_name_mapping
        from qiskit_ionq.helpers import GATESET_MAP

        standard = get_standard_gate_name_mapping()
        _QIS_BASIS = sorted(g for g in GATESET_MAP["qis"] if g in standard)
    return _QIS_BASIS


def _registers(circuit: QuantumCircuit) -> tuple[list, list]:
    sizes = [[reg.name, reg.size] for reg in circuit.cregs]
    labels = [[reg.name, i] for reg in circuit.cregs for i in range(reg.size)]
    return sizes, labels


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_option(key: str, value: Any, what: str) -> Any:
    """The validated (normalised) value of one option; ``ValueError`` naming it otherwise."""

    def bad(expected: str) -> ValueError:
        return ValueError(f"bad value for {what} {key!r}: expected {expected}, got {value!r}")

    if key == "shots":
        if not _is_int(value):
            raise bad("an integer")
        if not 1 <= int(value) <= 1_000_000:
            raise bad("1 <= shots <= 1000000")
        return int(value)
    if key in (*FEATURE_OPTIONS, "memory"):
        if not isinstance(value, (bool, np.bool_)):
            raise bad("True or False")
        return bool(value)
    if key == "sampler_seed":
        if value is not None and (not _is_int(value) or int(value) < 0):
            raise bad("None or a non-negative integer")
        return None if value is None else int(value)
    if key == "connection_pool_size":
        if not _is_int(value) or not 1 <= int(value) <= 1024:
            raise bad("an integer in [1, 1024]")
        return int(value)
    if key == "batch_window":
        if not _is_number(value) or not 0.0 <= float(value) <= 10.0:
            raise bad("seconds in [0, 10]")
        return float(value)
    if key == "max_queue_wait_time":
        if not _is_number(value) or not 0.001 <= float(value) <= 7 * 24 * 3600.0:
            raise bad("seconds in [0.001, 604800]")
        return float(value)
    if key == "request_timeout":
        if not _is_number(value) or not 0.001 <= float(value) <= 3600.0:
            raise bad("seconds in [0.001, 3600]")
        return float(value)
    if key == "max_retries":
        if not _is_int(value) or not 0 <= int(value) <= 100:
            raise bad("an integer in [0, 100]")
        return int(value)
    if key == "journal_path":
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise bad("None or a file path")
        return None if value is None else os.fspath(value)
    if key == "noise_model":
        if value is not None and not isinstance(value, str):
            raise bad("None or a noise model name such as 'ideal' or 'aria-1'")
        return value
    if key == "optimization_level":
        if not _is_int(value) or int(value) not in (0, 1, 2, 3):
            raise bad("0, 1, 2 or 3")
        return int(value)
    if key == "progress_bar":
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise bad("None, True or False")
        return None if value is None else bool(value)
    return value


class QStoreBackend(BackendV2):
    """An IonQ device (or IonQ's simulator) behind qstore's compiler, cache and submitter.

    Options (set with :meth:`set_options` or per :meth:`run` call):

    * ``shots`` (1024), ``memory`` (False), ``sampler_seed`` (None): as in qiskit-ionq.
    * ``use_batch_api`` (True): many circuits per IonQ job; False sends one job each.
    * ``use_native_gates`` (True): compile to GPi/GPi2/MS with the ``qstore`` compiler;
      False sends IonQ's ``qis`` gate set (transpiled per circuit, the plain way).
    * ``enable_smart_caching`` (True): compile each circuit structure once into a
      :class:`~qstore_qiskit.CompiledTemplate` and bind values into payloads.
    * ``adaptive_batch_sizing`` (False): on the simulator, run each batch as parallel jobs
      sized from measured execution times (QPU batches are not split).
    * ``connection_pool_size`` (16), ``batch_window`` (0.005 s), ``max_queue_wait_time``
      (120 s): HTTP pool size, coalescing window, queue timeout.
    * ``request_timeout`` (30 s), ``max_retries`` (6): per HTTP request.
    * ``journal_path`` (None): append-only journal of submitted jobs, for
      :meth:`recover_jobs` after a crash.
    * ``noise_model`` (None): IonQ simulator noise model (``"ideal"``, ``"aria-1"``, ...).
    * ``optimization_level`` (2): compiler level. ``progress_bar`` (None: automatic).
    """

    def __init__(
        self,
        provider: "QStoreProvider",
        name: str,
        device: str,
        api_backend: str,
        description: str,
        simulator: bool,
    ) -> None:
        super().__init__(provider=provider, name=name, description=description, backend_version=__version__)
        self._device = device
        self._api_backend = api_backend
        self._simulator = simulator
        # No reset: IonQ's gate-list jobs cannot carry it and run() rejects it.
        self._target = ionq_target(device, reset=False)
        self._lock = threading.Lock()
        self._submitters: dict[tuple, BatchSubmitter] = {}
        self._cache = TemplateCache(
            compile_fn=self._compile,
            compile_options={"qubits_initially_zero": True},
            # Persistent templates (docs/templates.rst): the compiler's identity for the
            # disk key, and the directory from the backend's ``template_cache_dir`` option.
            compiler_id=f"qstore-backend:num_qubits={self._target.num_qubits}",
            store=lambda: self.options.template_cache_dir,
        )
        self._tracker = PerformanceTracker(self._cache_stats, self._client_stats, self._features)
        self._pms = threading.local()
        self._native_templates: dict[tuple, Any] = {}

    # ------------------------------------------------------------------ BackendV2
    @classmethod
    def _default_options(cls) -> Options:
        options = Options(
            shots=1024,
            memory=False,
            sampler_seed=None,
            use_batch_api=True,
            use_native_gates=True,
            enable_smart_caching=True,
            adaptive_batch_sizing=False,
            connection_pool_size=16,
            batch_window=0.005,
            max_queue_wait_time=120.0,
            request_timeout=30.0,
            max_retries=6,
            journal_path=None,
            noise_model=None,
            optimization_level=2,
            progress_bar=None,
            template_cache_dir=None,  # None: default user cache dir; False: off; or a path
        )
        options.set_validator("shots", (1, 1_000_000))
        options.set_validator("connection_pool_size", (1, 1024))
        options.set_validator("batch_window", (0.0, 10.0))
        options.set_validator("max_queue_wait_time", (0.001, 7 * 24 * 3600.0))
        options.set_validator("request_timeout", (0.001, 3600.0))
        options.set_validator("max_retries", (0, 100))
        options.set_validator("optimization_level", [0, 1, 2, 3])
        for flag in (*FEATURE_OPTIONS, "memory"):
            options.set_validator(flag, bool)
        return options

    @property
    def target(self) -> Target:
        """Native gates with device error rates on every qubit and every qubit pair."""
        return self._target

    @property
    def max_circuits(self) -> int:
        """Circuits per IonQ job; longer ``run`` inputs are split and sent concurrently."""
        return DEFAULT_MAX_CIRCUITS_PER_JOB

    def get_translation_stage_plugin(self) -> str:
        """``transpile(qc, backend)`` lowers with the ``qstore`` plugin by default."""
        return "qstore"

    @property
    def device(self) -> str:
        """The device name the compiler targets (e.g. ``"aria-1"``)."""
        return self._device

    def __repr__(self) -> str:
        return f"<QStoreBackend('{self.name}')>"

    # ------------------------------------------------------------------ compile helpers
    def _compile(self, circuit: QuantumCircuit, device: str, optimization_level: int) -> QuantumCircuit:
        return self._pass_manager(device, optimization_level).run(circuit)

    def _pass_manager(self, device: str, optimization_level: int) -> PassManager:
        # Pass objects hold per-run state: one pass manager per thread.
        pms = getattr(self._pms, "pms", None)
        if pms is None:
            pms = self._pms.pms = {}
        key = (device, optimization_level)
        if key not in pms:
            pms[key] = generate_ionq_pass_manager(
                device, optimization_level, num_qubits=self._target.num_qubits, qubits_initially_zero=True
            )
        return pms[key]

    def _compile_device(self, opts: Options | Mapping) -> str:
        noise = opts.get("noise_model") if isinstance(opts, Mapping) else getattr(opts, "noise_model", None)
        if self._simulator and noise and noise in DEVICES:
            return noise  # compile for the device whose noise the simulator mimics
        return self._device

    def qstore_pass_manager(self, optimization_level: int | None = None) -> "PassManager":
        """A pass manager backed by this backend's template cache (see
        :func:`~qstore_qiskit.generate_ionq_pass_manager`)."""
        from .passmanager import CachedIonQPassManager

        level = self.options.optimization_level if optimization_level is None else optimization_level
        return CachedIonQPassManager(self, level)

    # ------------------------------------------------------------------ run
    def run(self, run_input: QuantumCircuit | Sequence[QuantumCircuit], **options: Any) -> QStoreJob:
        """Compile (through the template cache) and submit circuits in batches.

        Args:
            run_input: A circuit or a list of circuits (any gates; they are compiled to
                native gates here, so logical circuits are fine).
            **options: Per-call overrides of the backend options, plus
                ``parameter_binds``: one ``{Parameter: value or [values]}`` dict per
                circuit; a circuit runs once per value set (as in Qiskit Aer).

        Returns:
            A :class:`QStoreJob` (already submitted).

        Raises:
            ValueError: unknown option, bad option value, unbound parameters without
                ``parameter_binds``, wrong ``parameter_binds`` shape.
            qiskit.transpiler.exceptions.TranspilerError: a circuit IonQ cannot run
                (control flow, too many qubits, ...), naming the instruction.
        """
        circuits = [run_input] if isinstance(run_input, QuantumCircuit) else list(run_input)
        if not all(isinstance(c, QuantumCircuit) for c in circuits):
            raise TypeError("run() takes a QuantumCircuit or a list of QuantumCircuit")
        parameter_binds = options.pop("parameter_binds", None)
        # Qiskit's BackendSamplerV2/BackendEstimatorV2 always pass ``seed_simulator``
        # (Aer's name); it is our ``sampler_seed`` unless that is given explicitly.
        if "seed_simulator" in options:
            seed = options.pop("seed_simulator")
            if seed is not None and options.get("sampler_seed") is None:
                options["sampler_seed"] = seed
        opts = self._merged_options(options)
        start = time.perf_counter()
        prepared = self._prepare(circuits, parameter_binds, opts)
        prep_seconds = time.perf_counter() - start
        self._tracker.record_run(
            len(prepared),
            prep_seconds,
            sum(p.input_gates for p in prepared),
            (
                sum(sum(p.native_gate_counts.values()) for p in prepared),
                sum(p.native_gate_counts.get("ms", 0) + p.native_gate_counts.get("zz", 0) for p in prepared),
            ),
        )
        noise = None
        if self._simulator and opts["noise_model"]:
            noise = {"model": opts["noise_model"]}
            if opts["sampler_seed"] is not None:
                noise["seed"] = opts["sampler_seed"]
        gateset = prepared[0].gateset if prepared else "native"
        future = self._submitter(opts).submit(
            [p.body for p in prepared],
            backend=self._api_backend,
            shots=opts["shots"],
            gateset=gateset,
            noise=noise,
            sampler_seed=opts["sampler_seed"],
        )
        return QStoreJob(
            self,
            uuid.uuid4().hex,
            prepared,
            [(slice(0, len(prepared)), future)],
            shots=opts["shots"],
            memory=opts["memory"],
            seed=opts["sampler_seed"],
            progress_bar=opts["progress_bar"],
        )

    def _merged_options(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(self.options.__dict__))
        if unknown:
            raise ValueError(
                f"unknown run option(s) {', '.join(map(repr, unknown))} for backend {self.name}; "
                f"known: {', '.join(sorted(self.options.__dict__))}"
            )
        opts = dict(self.options.__dict__)
        for key, value in overrides.items():
            opts[key] = _check_option(key, value, "run option")
        return opts

    def set_options(self, **fields: Any) -> None:
        """Set backend options; a bad value raises ``ValueError`` naming the option."""
        unknown = sorted(set(fields) - set(self.options.__dict__))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(map(repr, unknown))} for backend {self.name}; "
                f"known: {', '.join(sorted(self.options.__dict__))}"
            )
        checked = {key: _check_option(key, value, "option") for key, value in fields.items()}
        try:
            super().set_options(**checked)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad option value: {exc}") from exc

    # ------------------------------------------------------------------ preparation
    def _prepare(
        self,
        circuits: list[QuantumCircuit],
        parameter_binds: Sequence[Mapping] | None,
        opts: dict[str, Any],
    ) -> list[PreparedCircuit]:
        if parameter_binds is not None and len(parameter_binds) != len(circuits):
            raise ValueError(
                f"parameter_binds has {len(parameter_binds)} entries for {len(circuits)} circuits; "
                "give one dict per circuit"
            )
        for circuit in circuits:
            if circuit.num_qubits > self._target.num_qubits:
                raise ValueError(
                    f"circuit '{circuit.name}' has {circuit.num_qubits} qubits; backend {self.name} "
                    f"has {self._target.num_qubits}"
                )
        scans = [_scan(circuit) for circuit in circuits]  # clear errors before any work
        value_sets = [
            self._value_sets(circuit, parameter_binds[i] if parameter_binds is not None else None)
            for i, circuit in enumerate(circuits)
        ]
        # Bound circuits that go through the template cache bind in one batch per
        # structure (one matmul for all of them) instead of one bind per circuit.
        batched: dict[int, dict] = {}
        if opts["use_native_gates"] and opts["enable_smart_caching"]:
            idx = [i for i, c in enumerate(circuits) if value_sets[i] is None and scans[i][1] == "logical"]
            if idx:
                bodies = self._cache.payload_many(
                    [circuits[i] for i in idx],
                    device=self._compile_device(opts),
                    optimization_level=opts["optimization_level"],
                )
                batched = dict(zip(idx, bodies))
        prepared: list[PreparedCircuit] = []
        for index, circuit in enumerate(circuits):
            prepared.extend(
                self._prepare_one(circuit, value_sets[index], opts, scans[index], batched.get(index))
            )
        return prepared

    @staticmethod
    def _value_sets(circuit: QuantumCircuit, binds: Mapping | None) -> np.ndarray | None:
        """Rows of values ordered like ``circuit.parameters``; ``None`` if unparameterized."""
        params = list(circuit.parameters)
        if not params:
            if binds:
                raise ValueError(f"parameter_binds given for circuit '{circuit.name}', which has no parameters")
            return None
        if not binds:
            names = ", ".join(p.name for p in params[:5])
            raise ValueError(
                f"circuit '{circuit.name}' has unbound parameters ({names}{', ...' if len(params) > 5 else ''}); "
                "bind them or pass parameter_binds"
            )
        if not isinstance(binds, Mapping):
            raise ValueError(
                f"parameter_binds entry for circuit '{circuit.name}' is a {type(binds).__name__}; "
                "give one {Parameter: value or [values]} dict per circuit"
            )
        by_name = {p.name: p for p in params}
        columns: dict[Parameter, np.ndarray] = {}
        for key, value in binds.items():
            param = key if isinstance(key, Parameter) else by_name.get(str(key))
            if param is None or param not in circuit.parameters:
                raise ValueError(f"parameter_binds names {key!s}, which circuit '{circuit.name}' does not have")
            try:
                column = np.asarray(value, dtype=float)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"parameter_binds value for {param.name} of circuit '{circuit.name}' is not a number "
                    f"or a flat list of numbers: {value!r}"
                ) from exc
            if column.ndim > 1:
                raise ValueError(
                    f"parameter_binds value for {param.name} of circuit '{circuit.name}' must be a number "
                    f"or a flat list of numbers, got shape {column.shape}"
                )
            columns[param] = np.atleast_1d(column)
        missing = [p.name for p in params if p not in columns]
        if missing:
            raise ValueError(f"parameter_binds for circuit '{circuit.name}' lacks {', '.join(missing)}")
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"parameter_binds for circuit '{circuit.name}' have different lengths {sorted(lengths)}")
        table = np.column_stack([columns[p] for p in params])
        if not np.all(np.isfinite(table)):
            raise ValueError(f"parameter_binds for circuit '{circuit.name}' contain NaN or infinite values")
        return table

    def _prepare_one(
        self,
        circuit: QuantumCircuit,
        value_sets: np.ndarray | None,
        opts: dict[str, Any],
        scan: tuple[int, str, list[int | None]],
        body: dict | None = None,
    ) -> list[PreparedCircuit]:
        input_gates, kind, scanned_meas_map = scan
        sizes, labels = _registers(circuit)
        device = self._compile_device(opts)
        level = opts["optimization_level"]
        spec = DEVICES.get(device, self._target.device)
        rows = [None] if value_sets is None else list(value_sets)
        if opts["use_native_gates"]:
            if body is not None:
                bodies = [body]
            elif kind == "native" and value_sets is not None:
                # An ISA circuit (e.g. from transpile(qc, backend)): its parameters sit in
                # virtual rz, so the exact template of the circuit itself binds them.
                bodies = self._native_bind_many(circuit, value_sets)
            elif kind == "native":
                bodies = [native_body(circuit)]
            elif opts["enable_smart_caching"] and kind == "logical":
                if value_sets is None:
                    bodies = [self._cache.payload(circuit, device=device, optimization_level=level)]
                else:
                    bodies = self._cache_bind_many(circuit, value_sets, device, level)
            else:
                bodies = []
                pm = self._pass_manager(device, level)
                for row in rows:
                    bound = circuit if row is None else circuit.assign_parameters(row)
                    bodies.append(native_body(pm.run(bound)))
            meas_map = scanned_meas_map  # the compiler keeps measurements in place
            gateset = "native"
        else:
            bodies, meas_map = self._qis_bodies(circuit, rows)
            gateset = "qis"
        measured = any(q is not None for q in meas_map)
        # Qubits that are only measured read 0 without being sent (a preset-transpiled
        # circuit that qiskit-machine-learning measures on every device qubit).
        gate_width = _gate_width(circuit) if measured else None
        # Bodies bound from one template differ only by the two GPi each folded MS angle
        # adds: their gate counts are determined by their length (computed once each).
        one_template = value_sets is not None and len(bodies) > 1 and body is None
        counts_by_length: dict[int, dict[str, int]] = {}
        out = []
        for i, body in enumerate(bodies):
            # IonQ wants >= 1 qubit even for a circuit without gates (all zeros).
            qubits = max(int(body["qubits"]) if gate_width is None else min(int(body["qubits"]), gate_width), 1)
            # Without measurements: report every qubit of the circuit (unused ones read 0).
            width = max(circuit.num_qubits, 1)
            mmap = meas_map if measured else list(range(width))
            name = circuit.name if len(bodies) == 1 else f"{circuit.name}[{i}]"
            gates = body["circuit"]
            if gateset != "native":
                counts: dict[str, int] = {}
            elif one_template and kind != "mixed" and (opts["enable_smart_caching"] or kind == "native"):
                counts = counts_by_length.get(len(gates))  # type: ignore[assignment]
                if counts is None:
                    counts = counts_by_length[len(gates)] = _gate_counts(gates)
                counts = dict(counts)
            else:
                counts = _gate_counts(gates)
            out.append(
                PreparedCircuit(
                    name=name,
                    body={"qubits": qubits, "circuit": gates, "name": name},
                    gateset=gateset,
                    meas_map=mmap,
                    payload_qubits=qubits,
                    creg_sizes=sizes if measured else [["meas", width]],
                    clbit_labels=labels if measured else [["meas", j] for j in range(width)],
                    metadata=dict(circuit.metadata or {}),
                    native_gate_counts=counts,
                    estimated_fidelity=_payload_fidelity(gates, spec) if gateset == "native" else None,
                    input_gates=input_gates,
                )
            )
        return out

    def _cache_bind_many(self, circuit: QuantumCircuit, value_sets: np.ndarray, device: str, level: int) -> list[dict]:
        template, base = self._cache.get_template(circuit, device=device, optimization_level=level)
        col = {p: i for i, p in enumerate(template.parameters)}
        table = np.repeat(base[None, :], len(value_sets), axis=0)
        for j, param in enumerate(circuit.parameters):
            table[:, col[param]] = value_sets[:, j]
        return template.bodies(table)

    def _native_bind_many(self, circuit: QuantumCircuit, value_sets: np.ndarray) -> list[dict]:
        """Bodies of a parameterized native circuit for many value sets (one template per
        structure: numeric angles stay constants, only free parameters are columns)."""
        from ..cache import CompiledTemplate, structural_key

        from .passmanager import _first_appearance

        # Names in order of first appearance: the same structure with parameters swapped
        # between gates is another template.
        key = (structural_key(circuit), tuple(p.name for p in _first_appearance(circuit)))
        with self._lock:
            template = self._native_templates.get(key)
        if template is None:
            template = CompiledTemplate.from_native(circuit, list(circuit.parameters), device=self._device)
            with self._lock:
                if len(self._native_templates) >= 256:
                    self._native_templates.pop(next(iter(self._native_templates)))
                self._native_templates[key] = template
        # Same names at the same places: columns (circuit.parameters, sorted by name) agree.
        return template.bodies(value_sets)

    def _qis_bodies(self, circuit: QuantumCircuit, rows: list) -> tuple[list[dict], list[int | None]]:
        """The plain path: transpile to IonQ's QIS gate set and serialize per circuit."""
        from qiskit import transpile
        from qiskit_ionq.helpers import qiskit_circ_to_ionq_circ

        bodies = []
        meas_map: list[int | None] = measurement_map(circuit)
        for row in rows:
            bound = circuit if row is None else circuit.assign_parameters(row)
            if _NATIVE_NAMES.intersection(bound.count_ops()):
                # Unroll IonQ native gates through their own definitions: once qiskit-ionq
                # has registered its equivalences in Qiskit's global library, the basis
                # translator would look for (non-existent) paths from them instead.
                bound = bound.decompose(gates_to_decompose=sorted(_NATIVE_NAMES))
            # Qiskit 2 rejects non-standard names (``i``, ``cnot``, ``mcx``...) in
            # ``basis_gates``; the standard QIS gates are all IonQ accepts anyway.
            qis = transpile(bound, basis_gates=_qis_basis(), optimization_level=1)
            gates, _, _ = qiskit_circ_to_ionq_circ(qis, "qis")
            # Like the native path: highest used qubit + 1 (a 29-qubit preset-transpiled
            # circuit that uses 2 qubits is a 2-qubit job).
            width = max(dense_width(bound), dense_width(qis), 1)
            bodies.append({"qubits": width, "circuit": gates})
        return bodies, meas_map

    # ------------------------------------------------------------------ submitter
    def _submitter(self, opts: Mapping[str, Any]) -> BatchSubmitter:
        key = tuple(opts[k] for k in _SUBMITTER_OPTIONS)
        with self._lock:
            sub = self._submitters.get(key)
            if sub is None:
                # gateway="ray": the cluster's shared gateway replaces this process's submitter.
                sub = self._provider._gateway_submitter(self)
            if sub is None:
                token, url = self._provider._credentials(self)
                sub = BatchSubmitter(
                    token,
                    url,
                    connection_pool_size=opts["connection_pool_size"],
                    batch_window=opts["batch_window"],
                    max_queue_wait_time=opts["max_queue_wait_time"],
                    adaptive_batch_sizing=opts["adaptive_batch_sizing"],
                    use_batch_api=opts["use_batch_api"],
                    request_timeout=opts["request_timeout"],
                    max_retries=opts["max_retries"],
                    journal_path=opts["journal_path"],
                )
            self._submitters[key] = sub
            return sub

    def recover_jobs(self, journal_path: str | None = None, timeout: float | None = None) -> dict[str, dict]:
        """Results of every journaled submission that was not delivered (crash recovery).

        Reads the JSON-lines journal written when the ``journal_path`` option is set
        (``journal_path`` here, or the option's value) and fetches the results of every
        job recorded there whose results never reached their caller, e.g. because the
        process was killed. See :meth:`qstore_qiskit.client.BatchSubmitter.recover`.

        Returns:
            ``{submission_id: {"job_id", "name", "metadata", "circuits", "results"}}``.
        """
        path = journal_path or self.options.journal_path
        if not path:
            raise ValueError("no journal: pass journal_path or set the backend's journal_path option")
        opts = self._merged_options({"journal_path": path})
        return self._submitter(opts).recover(path, timeout=timeout)

    def close(self) -> None:
        """Close this backend's HTTP sessions promptly.

        Requests in flight are cancelled (a request that gets no answer is not waited
        out); jobs already created stay on the server and in the journal, and results
        not yet collected get :class:`~qstore_qiskit.client.SubmitterClosedError`.
        """
        with self._lock:
            subs, self._submitters = list(self._submitters.values()), {}
        for sub in subs:
            sub.close(wait=False)

    # ------------------------------------------------------------------ performance
    def _cache_stats(self) -> dict | None:
        return self._cache.stats()

    def _client_stats(self) -> dict:
        with self._lock:
            subs = list(self._submitters.values())
        merged: dict[str, Any] = {"api_calls": 0, "jobs_created": 0, "circuits_submitted": 0, "retries": {}}
        per_job: list[float] = []
        for sub in subs:
            st = sub.stats()
            merged["api_calls"] += st.get("api_calls", 0)
            merged["jobs_created"] += st.get("jobs_created", 0)
            merged["circuits_submitted"] += st.get("circuits_submitted", 0)
            for cause, n in (st.get("retries") or {}).items():
                merged["retries"][cause] = merged["retries"].get(cause, 0) + n
            cpj = st.get("circuits_per_job")
            if cpj:
                per_job.append(cpj["total"])
        merged["circuits_per_job"] = (
            {"mean": merged["circuits_submitted"] / merged["jobs_created"]} if merged["jobs_created"] else None
        )
        return merged

    def _features(self) -> dict[str, Any]:
        return {name: getattr(self.options, name) for name in FEATURE_OPTIONS}

    def performance_stats(self) -> dict[str, Any]:
        """Throughput, batches, cache hit rates and time saved, gate reduction, API calls,
        retries (a dict; see ``docs/backend.rst`` for every key)."""
        return self._tracker.snapshot()

    def print_performance_report(self, file=None) -> None:
        """Print the performance report (the seed's CircuitBatchManager report)."""
        print(format_report(self.performance_stats(), f"QSTORE-QISKIT PERFORMANCE REPORT: {self.name}"), file=file)

    def reset_performance_stats(self) -> None:
        """Start counting afresh (the cache keeps its entries)."""
        self._tracker.reset()
