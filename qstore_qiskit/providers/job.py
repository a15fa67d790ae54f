"""The job returned by :meth:`QStoreBackend.run` and :meth:`QStoreBackend.retrieve_job`.

A job gets what the backend prepared as data (:class:`~.prepared.PreparedCircuit` and
futures of per-circuit results) plus two callables: ``on_done`` (performance counters)
and ``ionq_status`` (the service's ``GET /jobs/{id}``). It never imports the backend.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
import time
import warnings
from typing import Any, Callable, Sequence

from qiskit.providers import JobError, JobStatus, JobV1
from qiskit.result import Counts

from .prepared import PreparedCircuit, compose_job_id
from .results import QStoreResult, experiment_result, retrieved_layout

#: IonQ job states -> Qiskit's (see qiskit_ionq.constants.APIJobStatus).
IONQ_STATUS = {
    "submitted": JobStatus.QUEUED,
    "ready": JobStatus.QUEUED,
    "started": JobStatus.RUNNING,
    "running": JobStatus.RUNNING,
    "completed": JobStatus.DONE,
    "canceled": JobStatus.CANCELLED,
    "cancelled": JobStatus.CANCELLED,
    "failed": JobStatus.ERROR,
}


def combined_status(states: Sequence[str]) -> JobStatus:
    """One Qiskit status for several IonQ jobs: ERROR if one failed, CANCELLED if one was
    cancelled, DONE if all completed, RUNNING if one started, QUEUED otherwise."""
    mapped = []
    for state in states:
        status = IONQ_STATUS.get(str(state).lower())
        if status is None:
            raise JobError(f"unknown IonQ job status {state!r}")
        mapped.append(status)
    for status in (JobStatus.ERROR, JobStatus.CANCELLED):
        if status in mapped:
            return status
    if mapped and all(s is JobStatus.DONE for s in mapped):
        return JobStatus.DONE
    if JobStatus.RUNNING in mapped or JobStatus.DONE in mapped:
        return JobStatus.RUNNING
    return JobStatus.QUEUED


def _parts_from_placements(placements: list) -> list[tuple[str, list[int] | None]]:
    """Composite-id parts of per-circuit placements (``job_id``, ``position``, ``size``):
    consecutive circuits in one IonQ job form one part; a part that is the whole job,
    in job order, names no positions."""
    groups: list[tuple[str, list[int], int]] = []
    for p in placements:
        if groups and groups[-1][0] == p.job_id:
            groups[-1][1].append(p.position)
        else:
            groups.append((p.job_id, [p.position], p.size))
    return [(jid, None if pos == list(range(size)) else pos) for jid, pos, size in groups]


class _DoneCounter:
    """Done callback of a job's futures: calls ``on_done(circuits delivered, seconds)``
    once the last of ``parts`` futures is done (see :class:`QStoreJob`)."""

    __slots__ = ("_left", "_ok", "_on_done", "_started", "_lock")

    def __init__(self, parts: int, on_done: Callable[[int, float], None]) -> None:
        self._left = parts
        self._ok = 0
        self._on_done = on_done
        self._started = time.perf_counter()
        self._lock = threading.Lock()

    def __call__(self, fut: concurrent.futures.Future) -> None:
        with self._lock:  # futures finish on different threads
            if not fut.cancelled() and fut.exception() is None:
                self._ok += len(fut.result())
            self._left -= 1
            if self._left:
                return
        self._on_done(self._ok, time.perf_counter() - self._started)


def _interactive() -> bool:
    """Whether a progress bar makes sense: a terminal, and not CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


class QStoreJob(JobV1):
    """The circuits of one ``run`` call (or one retrieved job id).

    The circuits may travel in several IonQ jobs, shared with other ``run`` calls made
    at the same time (coalescing); :meth:`job_id` names them (see
    :mod:`qstore_qiskit.providers.prepared` for the composite form) and
    :meth:`ionq_job_ids` lists them.

    Args:
        backend: The backend that ran the circuits (kept for ``job.backend()``).
        job_id: The job id if known now (retrieved jobs); ``None`` for a ``run`` job,
            whose id is known once its IonQ jobs reported back.
        prepared: The prepared circuits, or ``None`` for a retrieved job (decoded from
            the job's ``qstore_layout`` metadata).
        futures: One future per submission part, each resolving to a list of
            :class:`~qstore_qiskit.client.CircuitResult` for its slice of ``prepared``.
        shots: Shots per circuit.
        memory: Whether per-shot memory was requested.
        seed: Seed for per-shot memory ordering.
        progress_bar: ``True``/``False`` or ``None`` for automatic (interactive only).
        on_done: called with ``(circuits delivered, seconds)`` once every part finished.
        ionq_status: ``job id -> IonQ job document`` (``GET /jobs/{id}``), for status.
        cancel_remote: ``job id -> None``, cancels one IonQ job (retrieved jobs).
        positions: for composite ids, ``[(ionq job id, positions or None)]``.
    """

    def __init__(
        self,
        backend: Any,
        job_id: str | None,
        prepared: list[PreparedCircuit] | None,
        futures: list[tuple[slice, concurrent.futures.Future]],
        shots: int,
        memory: bool,
        seed: int | None,
        progress_bar: bool | None = None,
        *,
        on_done: Callable[[int, float], None] | None = None,
        ionq_status: Callable[[str], dict] | None = None,
        cancel_remote: Callable[[str], Any] | None = None,
        positions: list[tuple[str, list[int] | None]] | None = None,
    ) -> None:
        super().__init__(backend, job_id or "")
        self._known_id = job_id
        self._prepared = prepared
        self._futures = futures
        self._shots = shots
        self._memory = memory
        self._seed = seed
        self._progress = progress_bar
        self._ionq_status = ionq_status
        self._cancel_remote = cancel_remote
        self._positions = positions
        self._result: QStoreResult | None = None
        self._id_lock = threading.Lock()
        if on_done is not None and futures:
            # The callback holds a small counter, not the job: a future keeps its done
            # callbacks, so a bound method here would make job -> future -> job a
            # reference cycle, and every prepared circuit and result of the job (for a
            # 1,000-binding PUB some 50,000 objects) would wait for a full collection of
            # the cyclic garbage collector instead of being freed with the job.
            callback = _DoneCounter(len(futures), on_done)
            for _, fut in futures:
                fut.add_done_callback(callback)

    def submit(self) -> None:
        """Circuits are submitted by :meth:`QStoreBackend.run`; calling this is an error."""
        raise RuntimeError("QStoreJob is submitted by backend.run(); do not call submit().")

    def _send_now(self) -> None:
        """The caller is about to block on this job: ask the submitter to send the
        circuits still waiting for the batch window (simulator only; see
        :meth:`BatchSubmitter.submit <qstore_qiskit.client.BatchSubmitter.submit>`)."""
        for _, fut in self._futures:
            send_now = getattr(fut, "send_now", None)
            if send_now is not None and not fut.done():
                send_now()

    # ------------------------------------------------------------------ ids
    def _circuit_results(self) -> list:
        out: list = []
        for _, fut in self._futures:
            out.extend(fut.result())
        return out

    def _created(self, timeout: float | None = None) -> list | None:
        """One placement (IonQ job id, position, circuits in that job) per circuit, in
        ``run`` order, once every circuit's IonQ job exists; ``None`` when a part's
        submitter does not report creation (then only the results name the jobs).

        Raises:
            JobError: the job was cancelled before its IonQ jobs existed.
            concurrent.futures.TimeoutError: ``timeout`` passed first.
            qstore_qiskit.client.IonQClientError: the submission failed first.
        """
        hooks = [getattr(fut, "jobs_created", None) for _, fut in self._futures]
        ready: list[concurrent.futures.Future] = [h for h in hooks if h is not None]
        if not hooks or len(ready) != len(hooks):
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        self._send_now()
        out: list = []
        for hook in ready:
            try:
                placements = hook.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except concurrent.futures.CancelledError:
                raise JobError(f"job {self._job_id or '(run)'} was cancelled before its IonQ jobs were created") from None
            if placements is None:  # the submitter could not tell (e.g. a recovered gateway call)
                return None
            out.extend(placements)
        return out

    def job_id(self) -> str:
        """The IonQ job id, or a composite of IonQ job ids (see
        :mod:`qstore_qiskit.providers.prepared`); accepted by ``retrieve_job``.

        For a ``run`` job this blocks only until its IonQ jobs are *created* (circuits of
        concurrent ``run`` calls are coalesced into shared jobs asynchronously, so the ids
        are not known at ``run`` time), not until they finish: like qiskit-ionq, whose
        ``job_id()`` is known once ``POST /jobs`` answered. It raises the submission's
        error if that fails first.
        """
        with self._id_lock:
            if self._known_id is not None:
                return self._known_id
        placements = self._created()
        if placements is not None:
            resolved = _parts_from_placements(placements)
        else:  # a submitter without the creation hook: the results name the jobs
            resolved = self._parts_from_results()
        with self._id_lock:
            self._known_id = compose_job_id(resolved)
            self._job_id = self._known_id
            return self._known_id

    def _parts_from_results(self) -> list[tuple[str, list[int] | None]]:
        self.result()
        results = self._circuit_results()
        parts: list[tuple[str, list[str | None]]] = []
        for res in results:
            if parts and parts[-1][0] == res.job_id:
                parts[-1][1].append(res.child_job_id)
            else:
                parts.append((res.job_id, [res.child_job_id]))
        resolved: list[tuple[str, list[int] | None]] = []
        for parent, children in parts:
            if None in children or self._ionq_status is None:
                resolved.append((parent, None))  # single-circuit job: all of it
                continue
            doc = self._ionq_status(parent)
            order = doc.get("child_job_ids") or doc.get("children") or []
            if sorted(order) == sorted(c for c in children if c is not None):
                resolved.append((parent, None))
            else:
                where = {cid: i for i, cid in enumerate(order)}
                resolved.append((parent, [where[c] for c in children]))
        return resolved

    def ionq_job_ids(self) -> list[str]:
        """IonQ job ids of the job (parent ids of multicircuit jobs): every one once they
        are all created, else those of the finished parts. Never waits."""
        if self._positions is not None:
            return list(dict.fromkeys(jid for jid, _ in self._positions))
        placements = self._created_now()
        if placements is not None:
            return list(dict.fromkeys(p.job_id for p in placements))
        ids: list[str] = []
        for _, fut in self._futures:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                for res in fut.result():
                    if res.job_id not in ids:
                        ids.append(res.job_id)
        return ids

    def _created_now(self) -> list | None:
        """:meth:`_created` if every part's IonQ jobs exist already, else ``None``."""
        hooks = [getattr(fut, "jobs_created", None) for _, fut in self._futures]
        if not hooks or any(h is None or not h.done() or h.cancelled() or h.exception() is not None for h in hooks):
            return None
        return self._created(0)

    # ------------------------------------------------------------------ status
    def status(self) -> JobStatus:
        """Qiskit's view of the job.

        ``DONE`` when every circuit's result is here, ``ERROR``/``CANCELLED`` if a part
        failed/was cancelled. Before that, the service is asked about the job's IonQ jobs
        (``submitted``/``ready`` -> ``QUEUED``, ``started`` -> ``RUNNING``; a job the
        service reports finished whose results are still being fetched is ``RUNNING``);
        a ``run`` job whose IonQ jobs do not all exist yet is ``INITIALIZING``.
        """
        futures = [f for _, f in self._futures]
        if any(f.cancelled() for f in futures):
            return JobStatus.CANCELLED
        done = [f for f in futures if f.done()]
        if any(f.exception() is not None for f in done):
            return JobStatus.ERROR
        if len(done) == len(futures):
            return JobStatus.DONE
        if self._ionq_status is None:
            return JobStatus.RUNNING
        if self._positions is None:
            if self._created_now() is None:
                hooks = [getattr(f, "jobs_created", None) for f in futures]
                untold = any(h is None or (h.done() and not h.cancelled() and h.exception() is None
                                           and h.result() is None) for h in hooks)  # ids come with results
                return JobStatus.RUNNING if untold else JobStatus.INITIALIZING
        states = [self._ionq_status(jid).get("status", "") for jid in self.ionq_job_ids()]
        status = combined_status(states)
        if self._positions is None and status is JobStatus.DONE:
            return JobStatus.RUNNING  # completed on the service; results on their way here
        return status

    def cancel(self) -> bool:
        """Cancel every part not yet finished. Returns whether anything was cancelled."""
        cancelled = False
        for _, fut in self._futures:
            if not fut.done() and fut.cancel():
                # Move the future to CANCELLED_AND_NOTIFIED: wakes result()/as_completed
                # waiters, which otherwise keep waiting on a merely CANCELLED future.
                fut.set_running_or_notify_cancel()
                cancelled = True
        if cancelled and self._positions is not None and self._cancel_remote is not None:
            for jid in self.ionq_job_ids():
                self._cancel_remote(jid)
        return cancelled

    def circuit_results(self, timeout: float | None = None) -> list[tuple[PreparedCircuit, Any]]:
        """Wait and return ``(prepared circuit, CircuitResult)`` pairs in ``run`` order.

        The raw per-circuit results (counts over qubits, IonQ job ids) without building a
        Qiskit ``Result``: what :mod:`qstore_qiskit.primitives` decode into bit arrays.
        Raises like :meth:`result`. For a retrieved job, the prepared circuits are the
        layouts recorded in the job metadata.
        """
        if any(f.cancelled() for _, f in self._futures):
            raise JobError(f"job {self._job_id or '(run)'} was cancelled; it has no result")
        deadline = None if timeout is None else time.monotonic() + timeout
        self._send_now()
        pairs: list[tuple[Any, Any]] = []
        for part, fut in self._futures:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            results = fut.result(timeout=wait)
            if self._prepared is not None:
                prepared = self._prepared[part]
            else:
                base = len(pairs)
                prepared = [
                    retrieved_layout(res, base + i, f"{res.child_job_id or res.job_id}")
                    for i, res in enumerate(results)
                ]
            pairs.extend(zip(prepared, results))
        return pairs

    # ------------------------------------------------------------------ results
    def result(
        self,
        timeout: float | None = None,
        *,
        sharpen: bool | None = None,
        wait: float | None = None,
        callback: Callable | None = None,
    ) -> QStoreResult:
        """Wait for every circuit and return a Qiskit :class:`~qiskit.result.Result`.

        The result also has qiskit-ionq's ``get_probabilities()``.

        Args:
            timeout: Seconds to wait in total; ``None`` waits for the backend's
                ``max_queue_wait_time`` handling in the submitter.
            sharpen: qiskit-ionq's aggregation switch for debiased QPU results. qstore
                fetches the service's default aggregation; ``sharpen=True`` warns that it
                is not applied (results are never silently changed).
            wait, callback: accepted for qiskit-ionq compatibility; the submitter polls
                adaptively, so they have no effect.

        Raises:
            concurrent.futures.TimeoutError: if ``timeout`` passes first.
            qiskit.providers.JobError: the job was cancelled.
            qstore_qiskit.client.IonQClientError: the submission failed (the subclass says
                why: authentication, bad request, server errors beyond the retry budget,
                queue timeout with the job ids, failed job...).
        """
        if sharpen:
            warnings.warn(
                "sharpen=True is not applied: qstore fetches IonQ's default result aggregation",
                UserWarning,
                stacklevel=2,
            )
        if self._result is not None:
            return self._result
        if any(f.cancelled() for _, f in self._futures):
            raise JobError(f"job {self._job_id or '(run)'} was cancelled; it has no result")
        deadline = None if timeout is None else time.monotonic() + timeout
        self._send_now()
        futures = [f for _, f in self._futures]
        total = len(self._prepared) if self._prepared is not None else 0
        bar = None
        show = self._progress if self._progress is not None else (_interactive() and total >= 50)
        if show:
            from tqdm.auto import tqdm  # the field's progress bar; optional display only

            bar = tqdm(total=total or None, desc=f"{self._backend.name}", unit="circuit")
        try:
            for fut in concurrent.futures.as_completed(
                futures, timeout=None if deadline is None else max(0.0, deadline - time.monotonic())
            ):
                if fut.cancelled():
                    raise JobError(f"job {self._job_id or '(run)'} was cancelled; it has no result")
                fut.result()  # raise the first failure
                if bar is not None:
                    bar.update(len(fut.result()))
        finally:
            if bar is not None:
                bar.close()
        experiments: list[dict[str, Any]] = []
        for part, fut in self._futures:
            results = fut.result()
            if self._prepared is not None:
                prepared = self._prepared[part]
            else:
                base = len(experiments)
                prepared = [
                    retrieved_layout(res, base + i, f"{res.child_job_id or res.job_id}")
                    for i, res in enumerate(results)
                ]
            for prep, circuit_result in zip(prepared, results):
                experiments.append(
                    experiment_result(prep, circuit_result, self._shots or circuit_result.shots, self._memory,
                                      self._seed, len(experiments))
                )
        # The IonQ job id(s) are known without another request once the jobs exist.
        known = self._known_id if self._known_id is not None or self._created_now() is None else self.job_id()
        self._result = QStoreResult.from_dict(
            {
                "backend_name": self._backend.name,
                "backend_version": self._backend.backend_version,
                "job_id": known or "",
                "qobj_id": known or "",
                "success": True,
                "results": experiments,
                "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
        return self._result

    def get_counts(self, circuit: Any = None) -> Any:
        """Counts of one circuit (index, name or circuit) or of all (qiskit-ionq's call)."""
        return self.result().get_counts(circuit)

    def get_memory(self, circuit: Any = None) -> Any:
        """Per-shot memory (requires the ``memory=True`` option, as in qiskit-ionq)."""
        if not self._memory:
            raise JobError("no memory for this job: run with memory=True to get per-shot memory")
        return self.result().get_memory(circuit)

    def get_probabilities(self, circuit: Any = None) -> Counts | list[Counts]:
        """The service's probabilities over each circuit's clbits (qiskit-ionq's call)."""
        return self.result().get_probabilities(circuit)
