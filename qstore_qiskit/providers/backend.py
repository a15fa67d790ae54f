"""``BackendV2`` for IonQ devices: compile once, bind many, submit in batches.

Data path of :meth:`QStoreBackend.run`::

    circuits -> (parameter_binds expanded) -> template cache (compile a structure once,
    bind values into ready JSON) -> BatchSubmitter (coalesced multicircuit jobs, pooled
    HTTP, retries) -> per-circuit results -> qiskit.result.Result
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from qiskit.circuit import QuantumCircuit
from qiskit.providers import BackendV2, Options
from qiskit.transpiler import PassManager, Target

from ..cache import TemplateCache
from ..client import BatchSubmitter
from ..client.submitter import DEFAULT_MAX_CIRCUITS_PER_JOB
from ..transpiler import generate_ionq_pass_manager, ionq_target
from ..transpiler.target import DEVICES
from ..version import __version__
from .cost import CostLimitError
from .inspection import qis_target
from .job import QStoreJob
from .options import FEATURE_OPTIONS, SUBMITTER_OPTIONS, check_option, default_options, job_fields
from .preparation import CircuitPreparationMixin
from .prepared import PreparedCircuit
from .remote import ServiceCallsMixin
from .session import active_session
from .stats import PerformanceTracker, format_report

__all__ = ["QStoreBackend", "PreparedCircuit", "FEATURE_OPTIONS"]


# Per thread: {(device, optimization_level, num_qubits): PassManager} (see _pass_manager).
_THREAD_PMS = threading.local()


class QStoreBackend(ServiceCallsMixin, CircuitPreparationMixin, BackendV2):
    """An IonQ device (or IonQ's simulator) behind qstore's compiler, cache and submitter.

    Made by :meth:`QStoreProvider.get_backend`. Like qiskit-ionq's backends, its qubit
    count and target come from the service (``GET /backends``; the device table is the
    offline fallback), ``gateset`` selects the target (``"native"``: GPi/GPi2/MS, what
    qstore's compiler emits, advertised in their standard-gate form ``sx``/``x``/``rxx``
    (``rzz``) around virtual ``rz``; ``"qis"``: IonQ's QIS gates, compiled by IonQ's
    service), and
    the run options carry qiskit-ionq's names and meanings.

    Options (set with :meth:`set_options` or per :meth:`run` call):

    * ``shots`` (1024), ``memory`` (False), ``sampler_seed`` (None), ``noise_model``
      (None: ideal; ``"aria-1"``, ...), ``error_mitigation`` (None or
      ``qiskit_ionq.ErrorMitigation``), ``job_settings`` (dict sent as the job's
      ``settings``), ``extra_metadata`` (dict merged into the job metadata), ``name``
      (the IonQ job name), ``session_id`` (run in an IonQ session): as in qiskit-ionq.
    * ``max_cost`` (None): refuse to submit, with :class:`CostLimitError` and nothing
      sent, when the service's estimate of the run (see :meth:`estimate_cost`) exceeds it.
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
    * ``optimization_level`` (2): compiler level. ``progress_bar`` (None: automatic).

    Args:
        provider: the provider (it supplies credentials, the control-plane client and
            the service's backend record; the backend never imports its class).
        name: backend name (``"ionq_simulator"``, ``"ionq_qpu.aria-1"``...).
        device: compiler device (``"simulator"``, ``"aria-1"``...).
        api_backend: IonQ API backend name (``"simulator"``, ``"qpu.aria-1"``...).
        description: human description.
        simulator: whether it is a simulator.
        gateset: ``"native"`` or ``"qis"`` (see above).
    """

    def __init__(
        self,
        provider: Any,
        name: str,
        device: str,
        api_backend: str,
        description: str,
        simulator: bool,
        gateset: str = "native",
    ) -> None:
        super().__init__(provider=provider, name=name, description=description, backend_version=__version__)
        if gateset not in ("native", "qis"):
            raise ValueError(f"gateset must be 'qis' or 'native', got {gateset!r}")
        self._device = device
        self._api_backend = api_backend
        self._simulator = simulator
        self._gateset = gateset
        self._record: dict | None = None
        self._record_loaded = False
        self._target_obj: Target | None = None
        self._lock = threading.Lock()
        self._submitters: dict[tuple, BatchSubmitter] = {}
        self._fetching: dict[str, concurrent.futures.Future] = {}
        self._fetch_lock = threading.RLock()
        self._cache = TemplateCache(
            compile_fn=self._compile,
            compile_options={"qubits_initially_zero": True},
            # Persistent templates (docs/templates.rst): the compiler's identity for the
            # disk key, and the directory from the backend's ``template_cache_dir`` option.
            # The compiler's width is the device table's (fixed at construction, so the
            # disk key needs no service call); the service's qubit count bounds run().
            compiler_id=f"qstore-backend:num_qubits={DEVICES[device].num_qubits}",
            store=lambda: self.options.template_cache_dir,
        )
        self._tracker = PerformanceTracker(self._cache_stats, self._client_stats, self._features)
        self._native_templates: dict[tuple, Any] = {}
        if gateset == "qis":
            self.set_options(use_native_gates=False)

    # ------------------------------------------------------------------ BackendV2
    @classmethod
    def _default_options(cls) -> Options:
        return default_options()

    def _service_record(self) -> dict | None:
        """This backend's ``GET /backends`` record (``None`` when the service is offline)."""
        if not self._record_loaded:
            record = self._provider._backend_record(self)
            with self._lock:
                self._record, self._record_loaded = record, True
        return self._record

    def refresh(self) -> None:
        """Read the service's backend record again (qubit count, status, limits)."""
        with self._lock:
            self._record_loaded = False
            self._target_obj = None

    @property
    def num_qubits(self) -> int:
        """Qubits the service offers (``GET /backends``), else the device table's."""
        record = self._service_record()
        if record and isinstance(record.get("qubits"), int) and record["qubits"] > 0:
            return int(record["qubits"])
        return DEVICES[self._device].num_qubits

    @property
    def target(self) -> Target:
        """Native gates with device error rates on every qubit and every qubit pair
        (``gateset="native"``), or IonQ's QIS gates (``gateset="qis"``), on
        :attr:`num_qubits` qubits."""
        if self._target_obj is None:
            n = self.num_qubits
            # No reset: IonQ's gate-list jobs cannot carry it and run() rejects it.
            target = (
                ionq_target(self._device, num_qubits=n, reset=False, isa="standard")
                if self._gateset == "native"
                else qis_target(n)
            )
            with self._lock:
                if self._target_obj is None:
                    self._target_obj = target
        return self._target_obj

    @property
    def _target(self) -> Target:  # the name the compiler helpers (and H4's pass manager) use
        return self.target

    def gateset(self) -> str:
        """``"native"`` or ``"qis"`` (qiskit-ionq's method)."""
        return self._gateset

    @property
    def max_circuits(self) -> int:
        """Circuits per IonQ job; longer ``run`` inputs are split and sent concurrently."""
        return DEFAULT_MAX_CIRCUITS_PER_JOB

    def get_translation_stage_plugin(self) -> str | None:
        """``transpile(qc, backend)`` lowers with the ``qstore`` plugin by default
        (native gate set); the QIS gate set uses Qiskit's own translation."""
        return "qstore" if self._gateset == "native" else None

    @property
    def device(self) -> str:
        """The device name the compiler targets (e.g. ``"aria-1"``)."""
        return self._device

    def __repr__(self) -> str:
        return f"<QStoreBackend('{self.name}')>"

    @property
    def basis_gates(self) -> list[str]:
        """The target's instruction names (qiskit-ionq's ``basis_gates``)."""
        return list(self.target.operation_names)

    # ------------------------------------------------------------------ compile helpers
    def _compile(self, circuit: QuantumCircuit, device: str, optimization_level: int) -> QuantumCircuit:
        return self._pass_manager(device, optimization_level).run(circuit)

    def _pass_manager(self, device: str, optimization_level: int) -> PassManager:
        # Pass objects hold per-run state: one pass manager per thread, shared by the
        # backends of that thread (it depends only on the key below; building one, its
        # target included, took 2 ms of a fresh backend's first run()).
        pms = getattr(_THREAD_PMS, "pms", None)
        if pms is None:
            pms = _THREAD_PMS.pms = {}
        num_qubits = DEVICES[self._device].num_qubits
        key = (device, optimization_level, num_qubits)
        if key not in pms:
            pms[key] = generate_ionq_pass_manager(
                device, optimization_level, num_qubits=num_qubits, qubits_initially_zero=True
            )
        return pms[key]

    def _compile_device(self, opts: Options | Mapping) -> str:
        # (collections.abc's Mapping: typing's generic alias makes isinstance ~3x slower,
        # and run() asks three times)
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
    @staticmethod
    def _as_circuits(run_input: Any) -> list[QuantumCircuit]:
        if isinstance(run_input, QuantumCircuit):
            return [run_input]
        expected = "run() takes a QuantumCircuit or a list of QuantumCircuit"
        if run_input is None or isinstance(run_input, (str, bytes, dict)) or not hasattr(run_input, "__iter__"):
            raise TypeError(f"{expected}, got {type(run_input).__name__}")
        circuits = list(run_input)
        bad = [f"{i}: {type(c).__name__}" for i, c in enumerate(circuits) if not isinstance(c, QuantumCircuit)]
        if bad:
            raise TypeError(f"{expected}; item(s) {', '.join(bad[:5])} are not circuits")
        return circuits

    def run(self, run_input: QuantumCircuit | Sequence[QuantumCircuit], **options: Any) -> QStoreJob:
        """Compile (through the template cache) and submit circuits in batches.

        Args:
            run_input: A circuit or a list of circuits (any gates; they are compiled to
                native gates here, so logical circuits are fine).
            **options: Per-call overrides of the backend options (qiskit-ionq's names:
                ``shots``, ``memory``, ``sampler_seed``, ``noise_model``,
                ``error_mitigation``, ``job_settings``, ``extra_metadata``, ``name``,
                ``session_id``; and ``max_cost``), plus ``parameter_binds``: a list with
                one ``{Parameter: value or [values]}`` dict per circuit; a circuit runs
                once per value set (as in Qiskit Aer).

        Returns:
            A :class:`QStoreJob` (already submitted).

        Raises:
            TypeError: ``run_input`` is not a circuit or a list of circuits;
                ``parameter_binds`` is not a list of dicts.
            ValueError: unknown option, bad option value, unbound parameters without
                ``parameter_binds``, wrong ``parameter_binds`` entries (complex, NaN,
                missing parameters...), a circuit wider than the service's backend.
            CostLimitError: the estimate exceeds ``max_cost`` (or the session's); nothing
                was sent.
            qiskit.transpiler.exceptions.TranspilerError: a circuit IonQ cannot run
                (control flow...), naming the instruction.
        """
        circuits = self._as_circuits(run_input)
        parameter_binds = options.pop("parameter_binds", None)
        # Qiskit's BackendSamplerV2/BackendEstimatorV2 always pass ``seed_simulator``
        # (Aer's name); it is our ``sampler_seed`` unless that is given explicitly.
        if "seed_simulator" in options:
            seed = options.pop("seed_simulator")
            if seed is not None and options.get("sampler_seed") is None:
                options["sampler_seed"] = seed
        opts = self._merged_options(options)
        session = active_session()
        if session is not None and getattr(session, "owner", None) is not self:
            session = None  # a session of another backend
        if session is not None and opts["session_id"] is None:
            opts["session_id"] = session.session_id
        start = time.perf_counter()
        prepared = self._prepare(circuits, parameter_binds, opts)
        prep_seconds = time.perf_counter() - start
        budget = session if session is not None and session.session_id == opts["session_id"] else None
        if opts["max_cost"] is not None or (budget is not None and budget.max_cost is not None):
            price = self._estimate(prepared, opts).cost
            if opts["max_cost"] is not None and price > opts["max_cost"]:
                raise CostLimitError(
                    f"estimated cost {price:g} of {len(prepared)} circuit(s) x {opts['shots']} shots on "
                    f"{self._api_backend} exceeds max_cost {opts['max_cost']:g}; nothing was sent"
                )
            if budget is not None:
                budget.reserve(price)
        self._tracker.record_run(
            len(prepared),
            prep_seconds,
            sum(p.input_gates for p in prepared),
            (
                sum(sum(p.native_gate_counts.values()) for p in prepared),
                sum(p.native_gate_counts.get("ms", 0) + p.native_gate_counts.get("zz", 0) for p in prepared),
            ),
        )
        future = self._submitter(opts).submit([p.body for p in prepared], **self._job_fields(prepared, opts))
        return QStoreJob(
            self,
            None,
            prepared,
            [(slice(0, len(prepared)), future)],
            shots=opts["shots"],
            memory=opts["memory"],
            seed=opts["sampler_seed"],
            progress_bar=opts["progress_bar"],
            on_done=self._tracker.record_result,
            ionq_status=self._provider._service(self).get_job,
        )

    def _job_fields(self, prepared: list[PreparedCircuit], opts: Mapping[str, Any]) -> dict[str, Any]:
        """The submitter's job settings for ``prepared`` (see :func:`.options.job_fields`)."""
        return job_fields(prepared, opts, api_backend=self._api_backend, simulator=self._simulator)

    def _merged_options(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        fields = self.options.__dict__
        unknown = sorted({key for key in overrides if key not in fields})
        if unknown:
            raise ValueError(
                f"unknown run option(s) {', '.join(map(repr, unknown))} for backend {self.name}; "
                f"known: {', '.join(sorted(fields))}"
            )
        opts = dict(fields)
        for key, value in overrides.items():
            opts[key] = check_option(key, value, "run option")
        return opts

    def set_options(self, **fields: Any) -> None:
        """Set backend options; a bad value raises ``ValueError`` naming the option."""
        unknown = sorted(set(fields) - set(self.options.__dict__))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(map(repr, unknown))} for backend {self.name}; "
                f"known: {', '.join(sorted(self.options.__dict__))}"
            )
        checked = {key: check_option(key, value, "option") for key, value in fields.items()}
        try:
            super().set_options(**checked)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad option value: {exc}") from exc


    # ------------------------------------------------------------------ submitter
    def _submitter(self, opts: Mapping[str, Any]) -> BatchSubmitter:
        key = tuple(opts[k] for k in SUBMITTER_OPTIONS)
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
