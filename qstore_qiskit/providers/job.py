"""The job returned by :meth:`QStoreBackend.run`."""

from __future__ import annotations

import concurrent.futures
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from qiskit.providers import JobError, JobStatus, JobV1
from qiskit.result import Result

from .results import experiment_result

if TYPE_CHECKING:  # pragma: no cover
    from .backend import QStoreBackend, PreparedCircuit


def _interactive() -> bool:
    """Whether a progress bar makes sense: a terminal, and not CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


class QStoreJob(JobV1):
    """A batch of circuits handed to the batching submitter by one ``run`` call.

    The circuits may travel in several IonQ jobs, shared with other ``run`` calls made
    at the same time (coalescing); :meth:`ionq_job_ids` lists them once known.

    Args:
        backend: The backend that ran the circuits.
        job_id: Client-side id of this ``run`` call.
        prepared: The prepared circuits (payload plus what is needed to decode results).
        futures: One future per submission part, each resolving to a list of
            :class:`~qstore_qiskit.client.CircuitResult` for its slice of ``prepared``.
        shots: Shots per circuit.
        memory: Whether per-shot memory was requested.
        seed: Seed for per-shot memory ordering.
        progress_bar: ``True``/``False`` or ``None`` for automatic (interactive only).
    """

    def __init__(
        self,
        backend: "QStoreBackend",
        job_id: str,
        prepared: list["PreparedCircuit"],
        futures: list[tuple[slice, concurrent.futures.Future]],
        shots: int,
        memory: bool,
        seed: int | None,
        progress_bar: bool | None = None,
    ) -> None:
        super().__init__(backend, job_id)
        self._prepared = prepared
        self._futures = futures
        self._shots = shots
        self._memory = memory
        self._seed = seed
        self._progress = progress_bar
        self._submitted_at = time.perf_counter()
        self._result: Result | None = None
        self._recorded = False
        for _, fut in futures:
            fut.add_done_callback(self._maybe_record)

    def _maybe_record(self, _fut) -> None:
        if self._recorded or not all(f.done() for _, f in self._futures):
            return
        self._recorded = True
        ok = sum(
            len(f.result()) for _, f in self._futures if not f.cancelled() and f.exception() is None
        )
        self._backend._tracker.record_result(ok, time.perf_counter() - self._submitted_at)

    def submit(self) -> None:
        """Circuits are submitted by :meth:`QStoreBackend.run`; calling this is an error."""
        raise RuntimeError("QStoreJob is submitted by backend.run(); do not call submit().")

    def status(self) -> JobStatus:
        """``DONE`` when every part finished, ``ERROR``/``CANCELLED`` if one failed/was
        cancelled, ``RUNNING`` otherwise."""
        futures = [f for _, f in self._futures]
        if any(f.cancelled() for f in futures):
            return JobStatus.CANCELLED
        done = [f for f in futures if f.done()]
        if any(f.exception() is not None for f in done):
            return JobStatus.ERROR
        if len(done) == len(futures):
            return JobStatus.DONE
        return JobStatus.RUNNING

    def cancel(self) -> bool:
        """Cancel every part not yet finished. Returns whether anything was cancelled."""
        cancelled = False
        for _, fut in self._futures:
            if not fut.done() and fut.cancel():
                # Move the future to CANCELLED_AND_NOTIFIED: wakes result()/as_completed
                # waiters, which otherwise keep waiting on a merely CANCELLED future.
                fut.set_running_or_notify_cancel()
                cancelled = True
        return cancelled

    def ionq_job_ids(self) -> list[str]:
        """IonQ job ids of the finished parts (parent ids of multicircuit jobs)."""
        ids: list[str] = []
        for _, fut in self._futures:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                for res in fut.result():
                    if res.job_id not in ids:
                        ids.append(res.job_id)
        return ids

    def circuit_results(self, timeout: float | None = None) -> list[tuple["PreparedCircuit", Any]]:
        """Wait and return ``(prepared circuit, CircuitResult)`` pairs in ``run`` order.

        The raw per-circuit results (counts over qubits, IonQ job ids) without building a
        Qiskit ``Result``: what :mod:`qstore_qiskit.primitives` decode into bit arrays.
        Raises like :meth:`result`.
        """
        if any(f.cancelled() for _, f in self._futures):
            raise JobError(f"job {self._job_id} was cancelled; it has no result")
        deadline = None if timeout is None else time.monotonic() + timeout
        pairs: list[tuple[Any, Any]] = []
        for part, fut in self._futures:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            pairs.extend(zip(self._prepared[part], fut.result(timeout=wait)))
        return pairs

    def result(self, timeout: float | None = None) -> Result:
        """Wait for every circuit and return a Qiskit :class:`~qiskit.result.Result`.

        Args:
            timeout: Seconds to wait in total; ``None`` waits for the backend's
                ``max_queue_wait_time`` handling in the submitter.

        Raises:
            concurrent.futures.TimeoutError: if ``timeout`` passes first.
            qiskit.providers.JobError: the job was cancelled.
            qstore_qiskit.client.IonQClientError: the submission failed (the subclass says
                why: authentication, bad request, server errors beyond the retry budget,
                queue timeout with the job ids, failed job...).
        """
        if self._result is not None:
            return self._result
        if any(f.cancelled() for _, f in self._futures):
            raise JobError(f"job {self._job_id} was cancelled; it has no result")
        deadline = None if timeout is None else time.monotonic() + timeout
        futures = [f for _, f in self._futures]
        bar = None
        show = self._progress if self._progress is not None else (_interactive() and len(self._prepared) >= 50)
        if show:
            from tqdm.auto import tqdm  # the field's progress bar; optional display only

            bar = tqdm(total=len(self._prepared), desc=f"{self._backend.name}", unit="circuit")
        try:
            for fut in concurrent.futures.as_completed(
                futures, timeout=None if deadline is None else max(0.0, deadline - time.monotonic())
            ):
                if fut.cancelled():
                    raise JobError(f"job {self._job_id} was cancelled; it has no result")
                fut.result()  # raise the first failure
                if bar is not None:
                    bar.update(len(fut.result()))
        finally:
            if bar is not None:
                bar.close()
        experiments: list[dict[str, Any]] = []
        for part, fut in self._futures:
            for prepared, circuit_result in zip(self._prepared[part], fut.result()):
                experiments.append(
                    experiment_result(
                        prepared, circuit_result, self._shots, self._memory, self._seed, len(experiments)
                    )
                )
        self._result = Result.from_dict(
            {
                "backend_name": self._backend.name,
                "backend_version": self._backend.backend_version,
                "job_id": self._job_id,
                "qobj_id": self._job_id,
                "success": True,
                "results": experiments,
                "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
        return self._result
