"""What a backend asks the service: availability, calibration, sessions, cost, retrieval.

A mixin of :class:`~qstore_qiskit.providers.QStoreBackend`, split out of ``backend.py``
by responsibility: these calls go through the provider's control-plane client
(:class:`~.service.ServiceClient`), not through compiling and batching. It relies on the
backend's ``_provider``, ``_api_backend``, ``_simulator``, ``target``, ``run``,
``_merged_options``, ``_prepare``, ``_as_circuits`` and ``_submitter``.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from qiskit.circuit import QuantumCircuit

from .cost import CostEstimate, estimate
from .job import QStoreJob
from .options import check_option
from .prepared import PreparedCircuit, parse_job_id
from .session import Session


def _select(whole: concurrent.futures.Future, job_id: str, positions: list[int] | None) -> concurrent.futures.Future:
    """A future of ``positions`` of ``whole``'s result list (all of it for ``None``)."""
    out: concurrent.futures.Future = concurrent.futures.Future()

    def done(fut: concurrent.futures.Future) -> None:
        if fut.cancelled():
            out.cancel()
            out.set_running_or_notify_cancel()
            return
        exc = fut.exception()
        if exc is not None:
            out.set_exception(exc)
            return
        results = fut.result()
        bad = [p for p in positions or () if p >= len(results)]
        if bad:
            out.set_exception(ValueError(f"job {job_id} has {len(results)} circuits; positions {bad[:5]} do not exist"))
        else:
            out.set_result(list(results) if positions is None else [results[p] for p in positions])

    whole.add_done_callback(done)
    return out


@functools.lru_cache(maxsize=1)
def _characterization_type() -> type:
    from qiskit_ionq.ionq_client import Characterization

    class QStoreCharacterization(Characterization):
        """qiskit-ionq's ``Characterization``, also readable as the raw record (``c["fidelity"]``)."""

        def __getitem__(self, key: str) -> Any:
            return self._data[key]

        def get(self, key: str, default: Any = None) -> Any:
            return self._data.get(key, default)

        def __contains__(self, key: object) -> bool:
            return key in self._data

    return QStoreCharacterization


def _Characterization(data: dict) -> Any:  # noqa: N802 (reads like the class it builds)
    return _characterization_type()(data)


class ServiceCallsMixin:
    """Service-side calls of a backend (see the module docstring)."""

    _provider: Any
    _api_backend: str
    _simulator: bool
    _fetching: dict[str, concurrent.futures.Future]
    _fetch_lock: threading.RLock

    if TYPE_CHECKING:  # provided by QStoreBackend

        def _service_record(self) -> dict | None: ...
        def _as_circuits(self, run_input: Any) -> list[QuantumCircuit]: ...
        def _merged_options(self, overrides: Mapping[str, Any]) -> dict[str, Any]: ...
        def _prepare(self, circuits: list[QuantumCircuit], parameter_binds: Any, opts: dict[str, Any]) -> list[PreparedCircuit]: ...
        def _submitter(self, opts: Mapping[str, Any]) -> Any: ...
        def run(self, run_input: Any, **options: Any) -> QStoreJob: ...

    def status(self) -> bool:
        """Whether the backend is available (qiskit-ionq's meaning): the service's record
        says ``"available"``; simulators are available whenever the service is reachable."""
        record = self._service_record()
        if record is None:
            return False
        return str(record.get("status", "available")).lower() == "available"

    def calibration(self) -> Any:
        """The latest characterization (``GET /backends/{b}/characterizations``), as
        qiskit-ionq's ``Characterization`` (``.fidelity``, ``.timing``, ``.qubits``,
        ``.connectivity``, ``.status``...; ``[key]`` reads the raw record too); ``None`` for
        simulators, as in qiskit-ionq."""
        if self._simulator:
            return None
        chars = self.characterizations(limit=1)
        if not chars:
            return None
        return _Characterization(chars[0])

    def cancel_job(self, job_id: str) -> dict:
        """Cancel IonQ job ``job_id`` (``PUT /jobs/{id}/status/cancel``), as qiskit-ionq."""
        return self._provider._service(self).cancel_job(job_id)

    def cancel_jobs(self, job_ids: Sequence[str]) -> list[dict]:
        """:meth:`cancel_job` for each id."""
        return [self.cancel_job(j) for j in job_ids]

    def characterizations(self, limit: int = 10) -> list[dict]:
        """Up to ``limit`` characterizations of this backend, newest first."""
        return self._provider._service(self).characterizations(self._api_backend, limit=limit)

    def session(
        self,
        *,
        max_time: int | None = None,
        max_cost: float | None = None,
        max_jobs: int | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Open an IonQ session (``POST /sessions``), or attach to ``session_id``.

        Use it as a context manager: inside the ``with`` block every :meth:`run` of this
        backend in this thread carries the session id, and the session is closed
        (``POST /sessions/{id}/end``) on exit. ``max_cost`` is checked before every
        submission in the session (see :mod:`qstore_qiskit.providers.session`).
        """
        if max_cost is not None:
            max_cost = check_option("max_cost", max_cost, "session option")
        return Session(
            self, max_time=max_time, max_cost=max_cost, max_jobs=max_jobs, session_id=session_id
        )

    def estimate_cost(self, circuits: QuantumCircuit | Sequence[QuantumCircuit], **options: Any) -> CostEstimate:
        """The service's estimate (``GET /jobs/estimate``) of running ``circuits``.

        Takes the same arguments as :meth:`run` (``shots=``, ``parameter_binds=``...);
        the circuits are prepared exactly as ``run`` would send them (so the gate counts
        priced are the native ones), but nothing is submitted.
        """
        circuits_list = self._as_circuits(circuits)
        parameter_binds = options.pop("parameter_binds", None)
        options.pop("seed_simulator", None)
        opts = self._merged_options(options)
        prepared = self._prepare(circuits_list, parameter_binds, opts)
        return self._estimate(prepared, opts)

    def _estimate(self, prepared: list[PreparedCircuit], opts: Mapping[str, Any]) -> CostEstimate:
        return estimate(
            self._provider._service(self),
            [p.body for p in prepared],
            backend=self._api_backend,
            shots=opts["shots"],
            error_mitigation=bool((opts.get("error_mitigation") or {}).get("debiasing")),
            session=opts.get("session_id") is not None,
        )

    def retrieve_job(self, job_id: str) -> QStoreJob:
        """A job by id: an IonQ job id or a composite id from :meth:`QStoreJob.job_id`.

        Works in a new process: results are fetched from the service and decoded with the
        layout qstore stored in the job's metadata (jobs made by other clients are read
        over all their qubits).
        """
        parts = parse_job_id(job_id)
        service = self._provider._service(self)
        futures = [(slice(0, 0), _select(self._fetch_job(jid), jid, positions)) for jid, positions in parts]
        return QStoreJob(
            self,
            job_id.strip(),
            None,
            futures,
            shots=0,
            memory=False,
            seed=None,
            progress_bar=False,
            ionq_status=service.get_job,
            cancel_remote=service.cancel_job,
            positions=parts,
        )

    def _fetch_job(self, job_id: str) -> concurrent.futures.Future:
        """A future of all results of IonQ job ``job_id``, shared by concurrent callers
        (one watch per job id in the submitter)."""
        with self._fetch_lock:  # re-entrant: a done future runs ``first`` at once
            fut = self._fetching.get(job_id)
            if fut is not None:
                return fut
            sub = self._submitter(self._merged_options({}))
            whole: concurrent.futures.Future = concurrent.futures.Future()
            self._fetching[job_id] = whole

            def first(f: concurrent.futures.Future) -> None:
                with self._fetch_lock:
                    self._fetching.pop(job_id, None)
                if f.exception() is not None:
                    whole.set_exception(f.exception())
                else:
                    whole.set_result(f.result()[0])  # [[results]] -> [results]

            self._provider._service(self).submit(sub.retrieve_async([job_id])).add_done_callback(first)
            return whole

    def retrieve_jobs(self, job_ids: Sequence[str]) -> list[QStoreJob]:
        """:meth:`retrieve_job` for each id."""
        return [self.retrieve_job(j) for j in job_ids]
