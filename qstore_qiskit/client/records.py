"""The records the batching submitter keeps while work is in flight, and small helpers.

* :class:`Request` - one ``submit`` call (its circuits, future and results).
* :class:`Item` - one circuit of one request.
* :class:`Job` - one IonQ job (single- or multicircuit) made of items.
* :class:`Watch` - the polling state of one job being waited on.
* :class:`Summary` - constant-memory statistics of a stream of values.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import json
import math
import os
import statistics
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .results import CircuitResult

__all__ = ["Request", "Placement", "Item", "Job", "Watch", "Summary", "validate_circuit", "is_simulator", "noise_key"]


class _RandomTags:
    """Random 12-hex-digit tags (48 bits from ``os.urandom``, as ``uuid4().hex[:12]``
    gave), cut from a buffer refilled 256 tags at a time.

    ``os.urandom`` releases the GIL: one call per ``submit()`` handed the loop thread
    the GIL in the middle of every call (besides its CPU). Thread-safe; a forked child
    draws from a fresh buffer, never its parent's.
    """

    _PER_FILL = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hex = ""
        self._pos = 0
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._hex, self._pos = "", 0

    def __call__(self) -> str:
        with self._lock:
            pos = self._pos
            if pos >= len(self._hex):
                self._hex, pos = os.urandom(6 * self._PER_FILL).hex(), 0
            self._pos = pos + 12
            return self._hex[pos : pos + 12]


_new_tag = _RandomTags()


@dataclass
class Request:
    """One ``submit`` call. Referenced by its items while they wait or run, and only
    weakly by the caller's future, so it is freed once its jobs are forgotten."""

    circuits: list[dict]
    key: tuple
    settings: dict
    future: concurrent.futures.Future
    name: str | None
    metadata: dict
    submitted_at: float
    results: list[CircuitResult | None] = field(default_factory=list)
    remaining: int = 0
    cancelled: bool = False
    job_ids: list[str] = field(default_factory=list)
    tag: str = field(default_factory=_new_tag)
    # Resolved with one Placement per circuit once every circuit's IonQ job exists
    # (before any result): what lets ``job.job_id()`` answer while the jobs run.
    created: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    placement: list[Placement | None] = field(default_factory=list)
    unplaced: int = 0
    # Most jobs adaptive sizing may spread this request's circuits over (None: no limit).
    max_jobs: int | None = None

    def place(self, index: int, job_id: str, position: int, size: int) -> None:
        """Record that circuit ``index`` is circuit ``position`` of the ``size``-circuit
        IonQ job ``job_id``; resolves :attr:`created` when the last circuit is placed.
        A circuit placed twice (never: a job is created once) keeps its first place."""
        if not self.placement:
            self.placement = [None] * len(self.circuits)
            self.unplaced = len(self.circuits)
        if self.placement[index] is not None:
            return
        self.placement[index] = Placement(job_id, position, size)
        self.unplaced -= 1
        if self.unplaced == 0 and not self.created.done():
            try:
                self.created.set_result(list(self.placement))
            except concurrent.futures.InvalidStateError:  # failed or cancelled meanwhile
                pass


class Placement(NamedTuple):
    """Where one circuit of a ``submit`` call runs: circuit ``position`` (0-based, the
    child job at that index for multicircuit jobs) of the ``size``-circuit IonQ job
    ``job_id``. (A tuple: immutable, and of no concern to the garbage collector.)"""

    job_id: str
    position: int
    size: int


@dataclass
class Item:
    """One circuit of one request."""

    request: Request
    index: int


@dataclass
class Job:
    """One IonQ job (single- or multicircuit)."""

    submission_id: str
    settings: dict
    items: list[Item]
    job_id: str | None = None
    created_at: float = 0.0
    done_at: float = 0.0
    adopted: bool = False
    journaled: bool = False  # "delivered" written to the journal
    batch: int = 0  # jobs cut from one bucket flush share a batch number (0: none)

    def requests(self) -> list[Request]:
        """The distinct ``submit`` calls whose circuits this job carries, in first-seen
        order (a 1,000-circuit job usually serves one: checking each call's future once
        instead of once per circuit)."""
        return list({id(it.request): it.request for it in self.items}.values())


@dataclass
class Watch:
    """Polling state of one job someone waits for (see :class:`~qstore_qiskit.client.result_fetcher.ResultFetcher`)."""

    future: asyncio.Future
    interval: float
    next_poll: float
    started: float = 0.0
    failures: int = 0
    hint_used: int = 0
    predicted_done: float | None = None  # loop time the server predicts completion
    spec_rtt: float = 0.0  # the round trip the speculative poll was scheduled with
    spec_budget: int = 2  # speculative result fetches left (see ResultFetcher._speculate)
    quick_polls: int = 4  # prompt polls left once past the predicted completion
    busy: bool = False  # a status request for this job is in flight


def noise_key(noise: dict | None) -> str:
    """Canonical text of a noise setting (part of the coalescing key)."""
    return json.dumps(noise, sort_keys=True) if noise else ""


def is_simulator(backend: str) -> bool:
    """Whether ``backend`` is IonQ's simulator (noise models apply to it only)."""
    return backend == "simulator" or backend.startswith("simulator.")


def _infer_qubits(body: dict) -> int:
    top = -1
    for gate in body.get("circuit", []):
        for key in ("target", "control"):
            if isinstance(gate.get(key), int):
                top = max(top, gate[key])
        for key in ("targets", "controls"):
            for q in gate.get(key) or []:
                top = max(top, int(q))
    return top + 1


def validate_circuit(body: Any, index: int) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("circuit"), list):
        raise ValueError(f"circuit {index}: expected an IonQ circuit body {{'qubits': n, 'circuit': [...]}}")
    qubits = body.get("qubits")
    if qubits is None:
        qubits = _infer_qubits(body)
        body = {**body, "qubits": qubits}
    if not isinstance(qubits, int) or qubits < 1:
        raise ValueError(f"circuit {index}: 'qubits' must be a positive integer")
    return body


def poll_hint(doc: dict) -> float | None:
    """Seconds from submission until the job is predicted to finish, if the server says
    (``predicted_wait_time_ms`` + ``predicted_execution_duration_ms``)."""
    total = 0.0
    found = False
    for key in ("predicted_wait_time_ms", "predicted_execution_duration_ms"):
        value = doc.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            total += value / 1000.0
            found = True
    return total if found else None


def seconds(doc: dict, ms_key: str, s_key: str) -> float | None:
    value = doc.get(ms_key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value / 1000.0
    value = doc.get(s_key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value / 1000.0  # IonQ reports execution_time in ms
    return None


def iso(value: Any) -> float | None:
    """Epoch seconds of an ISO-8601 timestamp like ``2026-01-01T00:00:00.000Z``."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Summary:
    """Count, total, max and a median over the last 1,024 values, in constant memory."""

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.max = -math.inf
        self.recent: deque[float] = deque(maxlen=1024)

    def append(self, value: float) -> None:
        self.n += 1
        self.total += value
        self.max = max(self.max, value)
        self.recent.append(value)

    def summary(self) -> dict[str, float] | None:
        if not self.n:
            return None
        return {
            "n": self.n,
            "mean": self.total / self.n,
            "median": statistics.median(self.recent),
            "max": self.max,
            "total": self.total,
        }
