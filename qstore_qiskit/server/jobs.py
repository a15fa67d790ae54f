"""Job records and the in-memory job store.

:class:`Job` is a stored job with its lifecycle fields and results; :func:`render_job`
turns a job into the v0.4 (or v0.3) JSON record the API returns; :class:`JobStore` holds
the jobs within a byte budget. Request parsing lives in :mod:`.job_requests` (its names
are re-exported here).
"""

from __future__ import annotations

import datetime as _dt
import functools
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from .circuits import ParsedCircuit
from .config import HISTORY_ENTRY_BYTES  # noqa: F401  (the bound Job.summary keeps to)
from .errors import ApiError
# One variant type for the simulation that fills job.variants and the routes that read it.
from .mitigation import Variant  # noqa: F401  (re-exported)
from .job_requests import (  # noqa: F401  (re-exported)
    ACTIVE_STATUSES,
    BACKEND_ALIASES,
    CIRCUIT_TYPE,
    DOCUMENTED_NOISE_MODELS,
    FINAL_STATUSES,
    JOB_TYPES,
    MULTI_TYPE,
    QASM3_TYPE,
    QPU_QUBITS,
    SHOTS_V2,
    BackendInfo,
    JobSpec,
    backends_for,
    noise_model_qubits,
    parse_job_request,
)


# A stored job's parsed circuits take about this many times its JSON body in Python
# objects (benchmarks/long_run.py: between 10,000 and 20,000 circuits the server's RSS
# grew 1.07x the bytes charged at a factor of 8).
REQUEST_MEMORY_FACTOR = 9

# What one history entry of an evicted or deleted job may hold at most: its id, status,
# counts and the metadata values of at most HISTORY_METADATA_CHARS characters (IonQ allows
# 10 keys of 40 characters with values of up to 40,000: longer values are not kept).
# The bound is what ServerConfig.memory_budget() reserves per entry (HISTORY_ENTRY_BYTES).
HISTORY_METADATA_CHARS = 128


def _short_metadata(metadata: Any) -> Any:
    """``metadata`` without values longer than :data:`HISTORY_METADATA_CHARS` (a bounded
    copy for the history; the job's own record is unchanged while it is stored)."""
    if not isinstance(metadata, dict):
        return None
    # Validated: at most 10 keys, string values (job_requests._metadata).
    return {k: v for k, v in metadata.items()
            if len(k) <= HISTORY_METADATA_CHARS and len(v) <= HISTORY_METADATA_CHARS}


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
    # The submitting organization's label (machine.Organizations: never the key itself);
    # the fair-share queue model takes turns between organizations.
    org: str = "org-0"

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

    def summary(self, compact: bool = False) -> dict[str, Any]:
        """A small record of the job for :meth:`JobStore.history`.

        Args:
            compact: The bounded form kept once the job has left the store (evicted or
                deleted): metadata values longer than :data:`HISTORY_METADATA_CHARS`
                are left out and ``child_job_ids`` is ``None`` (a 1,000-circuit job's
                child ids alone take ~90 KB), so that an entry stays within
                :data:`HISTORY_ENTRY_BYTES`.
        """
        return {
            "id": self.id,
            "status": self.status,
            "metadata": _short_metadata(self.spec.metadata) if compact else self.spec.metadata,
            "circuits": self.spec.num_circuits,
            "created": self.created,
            "backend": self.spec.backend,
            "type": self.spec.type,
            "shots": self.spec.shots,
            "fault": self.fault,
            "child_job_ids": None if compact else [c.id for c in self.children],
            "deleted": self.deleted,
        }

    def result_bytes(self) -> int:
        """Approximate bytes this job (and its children) holds, for the store's budget."""
        # The parsed circuits held for a job take several times their JSON size in
        # Python objects (REQUEST_MEMORY_FACTOR). Measured with benchmarks/long_run.py at
        # a 256 MiB budget: counting the body once, the server's RSS rose by 1 GB.
        total = REQUEST_MEMORY_FACTOR * self.request_bytes + 2048
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


@functools.lru_cache(maxsize=4096)
def iso(ts: float | None) -> str | None:
    """Epoch seconds -> ISO-8601 UTC with milliseconds and ``Z``.

    Memoised: a job's three timestamps are rendered again at every poll of it, and
    ``strftime`` is most of a rendered record's cost.
    """
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
    noise: dict[str, Any] = {"model": spec.noise_model}
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
    404. Active jobs, and jobs finished less than ``min_age`` seconds ago (their client
    may not have fetched the results yet), are never evicted.

    Args:
        budget_bytes: Byte budget of stored jobs and results (``None``: unbounded).
        max_jobs: Most top-level jobs kept (``None``: unbounded).
        history: How many of the latest top-level jobs keep a summary after they leave
            the store (:meth:`history`, for tests that look for duplicates). Older ones
            are only counted (:attr:`history_dropped`). A summary of a job that left
            the store is compact (:meth:`Job.summary`), at most
            :data:`HISTORY_ENTRY_BYTES`.
        gone_ids: How many evicted ids answer 410 (older ones 404).
        min_age: Seconds a finished job is kept whatever the budget.
    """

    def __init__(self, budget_bytes: int | None = None, max_jobs: int | None = None,
                 history: int = 10_000, gone_ids: int = 100_000,
                 min_age: float = 0.0) -> None:
        self.budget_bytes = budget_bytes
        self.max_jobs = max_jobs
        self.min_age = min_age
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
        self.history_dropped = 0  # summaries forgotten beyond the history cap

    def new_id(self) -> tuple[str, int]:
        """A fresh job id and its sequence number."""
        with self._lock:
            self._seq += 1
            return str(uuid.uuid4()), self._seq

    @property
    def history_len(self) -> int:
        """Summaries held in the history (at most ``history``)."""
        return len(self._log)

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
                    self.history_dropped += 1
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
        cutoff = time.time() - self.min_age
        for job in list(self._top.values()):
            if job.created > cutoff:
                break  # this and every later job is too recent
            finished = job.completed if job.completed is not None else job.created
            if job.status not in FINAL_STATUSES or finished > cutoff:
                continue  # active, or finished too recently to have been fetched

            self._drop(job, gone=True)
            over_bytes = self.budget_bytes is not None and self._bytes > self.budget_bytes
            over_count = self.max_jobs is not None and len(self._top) > self.max_jobs
            if not (over_bytes or over_count):
                return

    def _drop(self, job: Job, gone: bool) -> None:
        self._top.pop(job.id, None)
        self._bytes -= self._sizes.pop(job.id, 0)
        if job.id in self._log:
            self._log[job.id] = job.summary(compact=True)
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
        """A summary (:meth:`Job.summary`) of each of the latest ``history`` top-level
        jobs stored, deleted and evicted ones included (compact), oldest first."""
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
    "BACKEND_ALIASES",
    "JOB_TYPES",
    "QPU_QUBITS",
]
