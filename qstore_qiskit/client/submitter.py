"""The batching submitter: coalesce, pipeline and retry IonQ circuit jobs.

A :class:`BatchSubmitter` owns a private asyncio event loop running in a daemon thread.
Synchronous callers (scripts, Jupyter cells whose own loop is running, several threads)
call :meth:`~BatchSubmitter.submit` and get a :class:`concurrent.futures.Future`; async
callers ``await`` :meth:`~BatchSubmitter.submit_async` from any loop.

Data path inside the loop, one module per stage (each the one owner of its state)::

    submit() -> Coalescer (coalescer.py): bucket per backend/shots/gateset/noise/
                metadata/session/settings, flush after ``batch_window`` or at the cap,
                split (adaptive sizing)
             -> JobRunner (job_runner.py): slot (max_jobs_in_flight) -> POST /jobs
                (idempotent create) -> wait -> deliver -> journal -> forget the job
             -> ResultFetcher (result_fetcher.py): one shared poller for all in-flight
                jobs; GET results (+ children) -> validate -> CircuitResult
             -> Journal (journal.py): append-only JSON lines for :meth:`recover`

No lost and no duplicated work: every job carries a client-generated
``metadata.submission_id``.  A create whose outcome is unknown (timeout, dropped
connection, 5xx, unreadable response) is never blindly re-sent: the submitter first
looks the submission id up in the job list and adopts the job if it exists.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from ..gc_pause import cyclic_gc_paused
from .coalescer import DEFAULT_MAX_CIRCUITS_PER_JOB, Coalescer
from .exceptions import IonQJobFailedError, SubmitterClosedError
from .job_runner import JobRunner
from .journal import Journal, read_pending
from .loop_support import _SendNow, _cancel_all, _settle_created, _stop_loop
from .records import Item, Job, Request, is_simulator, noise_key, validate_circuit
from .rest import IonQHttpClient
from .result_fetcher import ResultFetcher
from .results import CircuitResult

logger = logging.getLogger(__name__)

# Counters always present in stats() (zero when nothing happened).
_COUNTERS = (
    "submit_calls", "circuits_submitted", "circuits_delivered", "jobs_created", "jobs_adopted",
    "submission_lookups", "create_retries", "poll_rounds", "queue_timeouts", "jobs_failed",
    "submissions_failed", "cancelled_submissions", "jobs_cancelled", "jobs_resplit",
    "speculative_fetches", "speculative_hits",
)

# submit() waits for the loop thread (see BatchSubmitter._catch_up) when it has not taken
# a call posted more than _STARVED seconds ago, for at most _CATCH_UP_WAIT seconds.
_STARVED = 0.001
_CATCH_UP_WAIT = 0.005

# Former private names, kept for code that built the records directly.
_Request, _Item, _Job = Request, Item, Job


class BatchSubmitter:
    """Pooled, coalescing, pipelining IonQ job submitter.

    Args:
        token: IonQ API key (``None``: ``IONQ_API_KEY`` etc., like qiskit-ionq).
        url: API base URL (``None``: ``IONQ_API_URL`` or ``https://api.ionq.co/v0.4``).
        connection_pool_size: max simultaneous HTTP connections. The default, 16, lets
            the parallel jobs of an adaptive batch make their status, results and
            children requests at once when they finish (the design document's 5
            serialized them: 0.42 s instead of 0.32 s per 96-circuit round, measured).
        batch_window: seconds to wait for more ``submit`` calls to coalesce into a job;
            restarted by every arrival, but a circuit is held at most
            ``max(20 * batch_window, 0.05)`` seconds (on a simulator, a stream is cut
            sooner, paced by the free job slots, and a caller waiting for results
            sends its bucket at once: see :class:`~.coalescer.Coalescer`).
        max_circuits_per_job: cap per multicircuit job; ``None`` asks the server
            (``GET /backends/{backend}``, key ``max_circuits_per_job``/``max_circuits``)
            and falls back to 200.
        max_jobs_in_flight: jobs submitted and not yet finished, at most.
        max_queue_wait_time: seconds a job may take from creation to a final state
            before its callers get :class:`QueueTimeoutError` (jobs stay retrievable).
        adaptive_batch_sizing: on the simulator, spread a bucket over the free job
            slots, limited by a per-job vs per-circuit execution-time model fitted on
            finished jobs; QPU buckets are never split beyond the cap.
        use_batch_api: ``False`` sends one job per circuit (A/B comparisons).
        request_timeout: total timeout of one HTTP request, seconds.
        max_retries: retries per request (and per job create).
        rate_limit: ``(requests, per_seconds)`` client-side limit, or ``None``.
        journal_path: append-only JSON-lines journal of submissions (see :meth:`recover`).
        allow_insecure_http: allow ``http://`` to non-loopback hosts.
        poll_interval: ``(first, max)`` status polling interval, seconds.
        compute_counts: also build integer counts (like qiskit-ionq) for each result.
        verify_children: list each multicircuit job's children (``GET /jobs?parent_job_id=``,
            concurrently with the results) and check every child's name tag against the
            circuit at its position.
        rate_limit_deadline: seconds a request (or a job create) may keep waiting out
            HTTP 429 answers; 429s do not count against ``max_retries``.
    """

    def __init__(
        self,
        token: str | None = None,
        url: str | None = None,
        *,
        connection_pool_size: int = 16,
        batch_window: float = 0.005,
        max_circuits_per_job: int | None = None,
        max_jobs_in_flight: int = 8,
        max_queue_wait_time: float = 120.0,
        adaptive_batch_sizing: bool = False,
        use_batch_api: bool = True,
        request_timeout: float = 30.0,
        max_retries: int = 6,
        rate_limit: tuple[float, float] | None = None,
        journal_path: str | os.PathLike | None = None,
        allow_insecure_http: bool = False,
        poll_interval: tuple[float, float] = (0.005, 1.0),
        compute_counts: bool = True,
        verify_children: bool = True,
        rate_limit_deadline: float = 300.0,
    ) -> None:
        if max_jobs_in_flight < 1 or connection_pool_size < 1:
            raise ValueError("max_jobs_in_flight and connection_pool_size must be >= 1")
        if max_circuits_per_job is not None and max_circuits_per_job < 1:
            raise ValueError("max_circuits_per_job must be >= 1")
        self._http = IonQHttpClient(
            token,
            url,
            connection_pool_size=connection_pool_size,
            request_timeout=request_timeout,
            max_retries=max_retries,
            rate_limit=rate_limit,
            allow_insecure_http=allow_insecure_http,
            rate_limit_deadline=rate_limit_deadline,
        )
        self.url = self._http.url
        self.batch_window = batch_window
        self.max_circuits_per_job = max_circuits_per_job
        self.max_jobs_in_flight = max_jobs_in_flight
        # Distinct coalescing keys of exclusive submit() calls (next() of a count is
        # atomic: submit() is called from any thread).
        self._exclusive_ids = itertools.count(1)
        self.max_queue_wait_time = max_queue_wait_time
        self.adaptive_batch_sizing = adaptive_batch_sizing
        self.use_batch_api = use_batch_api
        self.max_retries = max_retries
        self.journal_path = os.fspath(journal_path) if journal_path else None
        self.poll_interval = poll_interval
        self.compute_counts = compute_counts
        self.verify_children = verify_children
        self._closed = False
        self._journal_writer = Journal(journal_path)
        self._tasks: set[asyncio.Task] = set()
        self._counters: Counter = Counter()
        # Hand-off to the loop thread (see _catch_up): submit() calls posted and accepted.
        self._posted = itertools.count(1)
        self._accepted = 0
        self._last_post = 0.0
        self._catching_up = 0
        self._caught_up = threading.Condition()
        self._first_submit: float | None = None

        self._loop = asyncio.new_event_loop()
        # The stages are created here, before the loop runs (asyncio objects bind to a
        # loop only when first used, Python >= 3.10): the constructor no longer waits
        # for the new thread to create them (1-2 ms of a fresh backend's first run(),
        # more on a busy machine). From now on they run on the loop thread only.
        self._init_stages()
        self._thread = threading.Thread(
            target=self._run_loop, name="qstore-batch-submitter", daemon=True
        )
        self._thread.start()
        # A submitter that is never closed still closes its HTTP session at interpreter
        # exit (the finalizer must not reference self; the loop thread keeps self alive).
        self._finalizer = weakref.finalize(self, _stop_loop, self._loop, self._thread, self._http)

    # ------------------------------------------------------------------ loop plumbing
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coro) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _init_stages(self) -> None:
        self._fetcher = ResultFetcher(self)
        self._runner = JobRunner(self)
        self._coalescer = Coalescer(self)

    def _spawn(self, coro) -> asyncio.Task:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _journal(self, record: dict) -> None:
        self._journal_writer.append(record)

    def __repr__(self) -> str:
        return (
            f"BatchSubmitter(url={self.url!r}, in_flight={self._fetcher.in_flight}, "
            f"closed={self._closed})"
        )

    def __enter__(self) -> "BatchSubmitter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ public API
    def submit(
        self,
        circuits: Sequence[dict],
        *,
        backend: str = "simulator",
        shots: int = 1024,
        gateset: str = "native",
        noise: dict | None = None,
        name: str | None = None,
        metadata: dict | None = None,
        sampler_seed: int | None = None,
        session_id: str | None = None,
        job_settings: dict | None = None,
        max_jobs: int | None = None,
        exclusive: bool = False,
    ) -> concurrent.futures.Future:
        """Hand circuits in; returns a future of ``list[CircuitResult]`` in input order.

        The future's ``jobs_created`` attribute is a second future, resolved as soon as
        every circuit's IonQ job exists (before any result) with one
        :class:`~qstore_qiskit.client.records.Placement` per circuit (IonQ job id,
        position in that job, circuits in that job); it fails or is cancelled with the
        submission if that happens first. Its ``send_now()`` attribute tells the
        submitter that the caller is about to block on the results: on a simulator the
        circuits still waiting with the same settings (this call's and later calls')
        are sent at once rather than at the end of the batch window (QPU jobs keep
        coalescing: each has a minimum charge).

        Circuits handed in by separate calls within ``batch_window`` with the same
        ``backend``, ``shots``, ``gateset``, ``noise``, ``metadata``,
        ``sampler_seed``, ``session_id`` and ``job_settings`` share multicircuit jobs;
        circuits that differ in any of them never share a job.

        Args:
            circuits: IonQ circuit bodies ``{"qubits": n, "circuit": [...], "name"?: str}``.
            backend: IonQ backend (``"simulator"``, ``"qpu.aria-1"``, ...).
            shots: shots per circuit.
            gateset: ``"native"`` or ``"qis"``.
            noise: simulator noise settings, e.g. ``{"model": "aria-1", "seed": 7}``.
            name: job name (jobs get ``"<name>"`` or ``"<n> circuits"``).
            metadata: extra job metadata (string values; IonQ limits apply).
            sampler_seed: seed for the counts sampler (see :mod:`.counts`).
            session_id: IonQ session to run the jobs in (sent as the job's top-level
                ``session_id``; IonQ API v0.4 sessions).
            job_settings: IonQ job ``settings`` (sent as the job's top-level ``settings``
                only when given), e.g. ``{"error_mitigation": {"debiasing": True}}``.
            max_jobs: with ``adaptive_batch_sizing``, spread these circuits over at most
                this many jobs (more only if the circuits-per-job cap needs them); circuits
                of several calls that share a bucket take the largest of their bounds.
                ``None``: as many as adaptive sizing picks.
            exclusive: never share a job with circuits of other calls (a caller that
                already gathered its circuits, e.g. the gateway's rounds, so that each
                such call's results arrive as soon as its own jobs finish).

        Raises:
            ValueError: malformed circuit bodies or settings.
            SubmitterClosedError: the submitter is closed.
        """
        if self._closed:
            raise SubmitterClosedError("BatchSubmitter is closed")
        if max_jobs is not None and (isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1):
            raise ValueError("max_jobs must be a positive integer or None")
        if not isinstance(shots, int) or shots < 1:
            raise ValueError("shots must be a positive integer")
        if session_id is not None and (not isinstance(session_id, str) or not session_id):
            raise ValueError("session_id must be a non-empty string")
        if job_settings is not None:
            if not isinstance(job_settings, dict):
                raise ValueError("job_settings must be a dict, e.g. {'error_mitigation': {'debiasing': True}}")
            try:
                settings_key = json.dumps(job_settings, sort_keys=True)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"job_settings must be JSON-serializable: {exc}") from None
        else:
            settings_key = None
        bodies = [validate_circuit(c, i) for i, c in enumerate(circuits)]
        metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        backend = backend.removeprefix("ionq_")
        if noise and not is_simulator(backend):
            raise ValueError(f"noise models apply to simulator backends only, not {backend!r}")
        settings = {
            "backend": backend,
            "shots": shots,
            "gateset": gateset,
            "noise": dict(noise) if noise else None,
            "metadata": metadata,
            "sampler_seed": sampler_seed,
            "name": name,
            "session_id": session_id,
            "job_settings": json.loads(settings_key) if settings_key is not None else None,
        }
        # (the metadata's items, sorted: string keys and values, so equal exactly when the
        # dicts are, without a JSON encoder per call)
        key = (backend, shots, gateset, noise_key(noise), tuple(sorted(metadata.items())), sampler_seed,
               session_id, settings_key)
        if exclusive:  # a bucket of its own: no other call's circuits join its jobs
            key = (*key, "exclusive", next(self._exclusive_ids))
        future: concurrent.futures.Future = concurrent.futures.Future()
        req = Request(
            circuits=bodies,
            key=key,
            settings=settings,
            future=future,
            name=name,
            metadata=metadata,
            submitted_at=time.monotonic(),
            results=[None] * len(bodies),
            remaining=len(bodies),
            max_jobs=max_jobs,
        )
        future.request_tag = req.tag  # type: ignore[attr-defined]  # names it in the journal
        # The job-id hook: resolved with one Placement per circuit as soon as every
        # circuit's IonQ job is created, long before the results (see Request.place).
        future.jobs_created = req.created  # type: ignore[attr-defined]
        # Called by a caller about to block on this future (QStoreJob.result()): on a
        # simulator its bucket is cut now instead of at the end of the window.
        future.send_now = _SendNow(self, key)  # type: ignore[attr-defined]
        if not bodies:
            req.created.set_result([])
            future.set_result([])
            return future
        future.add_done_callback(_settle_created(req.created))
        future.add_done_callback(self._on_future_done(req))
        seq = next(self._posted)
        now, before = time.monotonic(), self._last_post
        self._last_post = now
        try:
            self._loop.call_soon_threadsafe(self._accept, req, seq)
        except RuntimeError:  # closed concurrently
            raise SubmitterClosedError("BatchSubmitter is closed") from None
        if self._accepted < seq - 1 and now - before > _STARVED:
            self._catch_up(seq)
        return future

    def _catch_up(self, seq: int) -> None:
        """Let the loop thread run before the caller goes on (it had not taken the
        previous ``submit`` call, posted more than ``_STARVED`` ago).

        A caller that compiles between ``submit`` calls (a loop of ``run()`` calls)
        holds the GIL nearly all the time, and its numpy and Rust calls release and
        retake it so often that CPython never forces a switch (a waiting thread asks
        for one only after a whole switch interval without any): the loop thread,
        which cuts and sends the jobs, starved for up to 50 ms (20 ``run()`` calls on
        the ``cloud`` profile: 13 circuits taken in at once, the first job sent 50 ms
        late). Blocking here (at most ``_CATCH_UP_WAIT``) hands the GIL over until the
        loop has taken this call and run what that made ready (a due cut, its create
        request). Callers that submit in a tight loop, with no pause, never wait.
        """
        if threading.get_ident() == self._thread.ident:
            return
        with self._caught_up:
            self._catching_up += 1
            try:
                self._caught_up.wait_for(lambda: self._accepted >= seq or self._closed, _CATCH_UP_WAIT)
            finally:
                self._catching_up -= 1

    async def submit_async(self, circuits: Sequence[dict], **kwargs: Any) -> list[CircuitResult]:
        """Coroutine version of :meth:`submit`, usable from any event loop.

        Cancelling the awaiting task cancels the submission.
        """
        return await asyncio.wrap_future(self.submit(circuits, **kwargs))

    def cancel(self, future: concurrent.futures.Future) -> bool:
        """Cancel a submission (same as ``future.cancel()``).

        Circuits not yet sent are dropped; jobs whose circuits all belong to cancelled
        submissions are cancelled on the server.
        """
        return future.cancel()

    def retrieve(self, job_ids: Iterable[str], timeout: float | None = None) -> list[list[CircuitResult]]:
        """Results of earlier jobs (e.g. after :class:`QueueTimeoutError` or a restart).

        Waits (up to ``max_queue_wait_time``) for unfinished jobs.

        Args:
            job_ids: IonQ job ids (parent ids of multicircuit jobs).
            timeout: overall timeout of this call, seconds.

        Returns:
            one list of :class:`CircuitResult` per job id, circuits in job order.
        """
        return self._call(self._runner.retrieve(list(job_ids))).result(timeout)

    async def retrieve_async(self, job_ids: Iterable[str]) -> list[list[CircuitResult]]:
        """Coroutine version of :meth:`retrieve`, usable from any event loop."""
        return await asyncio.wrap_future(self._call(self._runner.retrieve(list(job_ids))))

    def recover(self, journal_path: str | os.PathLike | None = None, timeout: float | None = None) -> dict[str, dict]:
        """Recover the results of every journaled job that was not delivered.

        Reads the JSON-lines journal (``journal_path`` or the one this submitter writes)
        and, for every submission without a ``delivered`` record, finds its job (by the
        journaled job id, or by looking the submission id up on the server when the
        process died between sending and recording the create) and fetches its results.

        Each submission is handed back once: one returned with results, with a final job
        failure or as never sent (``results`` ``None``) is journaled (``delivered`` /
        ``abandoned``), so the next call does not return it again; one that hit a
        transient error (connection, timeout) is tried again by the next call.

        Returns:
            ``{submission_id: entry}``; each entry has the keys ``job_id``, ``name``,
            ``metadata``, ``circuits`` (the journaled ``[request_tag, circuit_index]``
            pairs), ``names`` (the circuit names) and ``results``: the circuits'
            :class:`CircuitResult` in job order, each with the caller's
            ``circuit_index`` and ``name``, or the exception, or ``None`` if the job
            never reached the server (submit those circuits again).
        """
        path = os.fspath(journal_path or self.journal_path or "")
        if not path:
            raise ValueError("no journal_path")
        return self._call(self._recover_async(path)).result(timeout)

    def stats(self) -> dict[str, Any]:
        """Per-stage statistics (see :meth:`_stats_snapshot` for the keys)."""
        return self._call(self._stats_async()).result(10)

    def close(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop accepting work and free the connection pool.

        Requests nobody waits for (backend lookups, remote cancels, jobs whose callers
        all gave up or were cancelled) are cancelled at once, in flight or not, so
        closing never waits for a request that gets no answer.

        Args:
            wait: finish the jobs whose callers still wait for their results (at most
                ``timeout`` seconds, then they are cancelled too); ``False`` cancels
                everything now (callers get :class:`SubmitterClosedError`; jobs already
                created stay on the server and in the journal, see :meth:`recover`).
            timeout: longest wait for unfinished jobs when ``wait`` is true, seconds.
        """
        if self._closed:
            return
        self._closed = True
        if self._loop.is_closed():
            return
        self._finalizer.detach()
        try:
            self._call(self._shutdown(wait, timeout)).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self._loop.close()

    # ------------------------------------------------------------------ accepting work
    def _on_future_done(self, req: Request):
        # A weak reference: the caller's future must not keep the request (its circuit
        # bodies) alive after the submitter is done with it.
        ref = weakref.ref(req)

        def callback(fut: concurrent.futures.Future) -> None:
            live = ref()
            if live is not None and fut.cancelled() and not self._loop.is_closed():
                try:
                    self._loop.call_soon_threadsafe(self._on_cancel, live)
                except RuntimeError:  # loop closed meanwhile
                    pass

        return callback

    def _accept(self, req: Request, seq: int = 0) -> None:
        self._accepted = max(self._accepted, seq)
        if self._catching_up:
            # Wake the caller once the loop has also run what this makes ready (two
            # more iterations: a due cut's job task reaches its create request).
            self._loop.call_soon(self._loop.call_soon, self._wake_caller)
        if req.future.done():  # cancelled before it reached the loop
            return
        self._first_submit = self._first_submit or time.monotonic()
        self._counters["submit_calls"] += 1
        self._counters["circuits_submitted"] += len(req.circuits)
        with cyclic_gc_paused(len(req.circuits) > 8):  # one record per circuit
            items = [Item(req, i) for i in range(len(req.circuits))]
        if not self.use_batch_api:
            for item in items:
                self._runner.start_job(req.settings, [item])
            return
        self._coalescer.add(req, items)

    def _wake_caller(self) -> None:
        with self._caught_up:
            self._caught_up.notify_all()

    def _hurry(self, key: tuple) -> None:
        if not self._closed:
            self._coalescer.hurry(key)

    def _on_cancel(self, req: Request) -> None:
        req.cancelled = True
        self._counters["cancelled_submissions"] += 1
        self._coalescer.drop(req)
        self._runner.cancel(req)

    # ------------------------------------------------------------------ recover
    async def _recover_async(self, path: str) -> dict[str, dict]:
        pending = read_pending(path)

        async def one(sid: str, entry: dict) -> None:
            try:
                if not entry["job_id"]:
                    entry["job_id"] = await self._runner.find_submission(sid)
                if not entry["job_id"]:
                    # Never reached the server: handed back once for the caller to
                    # resubmit (journaled "abandoned", so not returned again).
                    entry["results"] = None
                    self._journal_writer.append({"event": "abandoned", "submission_id": sid,
                                                 "reason": "not found by recover"}, path)
                    return
                doc, prefetched = await asyncio.wait_for(
                    self._fetcher.wait_final(entry["job_id"]), self.max_queue_wait_time
                )
                results = await self._fetcher.results_for(entry["job_id"], doc, None, prefetched)
                # Back to the caller's circuit indices and names, as journaled.
                names = entry.get("names") or []
                circuits = entry.get("circuits") or []
                for pos, res in enumerate(results):
                    circ = circuits[pos] if pos < len(circuits) else None
                    if isinstance(circ, list) and len(circ) == 2 and isinstance(circ[1], int):
                        res.circuit_index = circ[1]
                    if pos < len(names):
                        res.name = names[pos]
                entry["results"] = results
            except Exception as exc:  # reported per submission
                entry["results"] = self._runner.scrub(exc)
                if not isinstance(exc, IonQJobFailedError):
                    return  # transient: a later recover() tries again
            # Handed back once: mark it so that the next recover() does not return it again.
            self._journal_writer.append({"event": "delivered", "submission_id": sid,
                                         "job_id": entry["job_id"], "by": "recover"}, path)

        await asyncio.gather(*(one(s, e) for s, e in pending.items()))
        return pending

    # ------------------------------------------------------------------ stats / shutdown
    async def _stats_async(self) -> dict[str, Any]:
        return self._stats_snapshot()

    def _stats_snapshot(self) -> dict[str, Any]:
        """Statistics: ``requests`` (by endpoint), ``http_status``, ``retries`` (by cause),
        ``api_calls``, counters (``jobs_created``, ``jobs_adopted``, ...),
        ``circuits_per_job``, ``create_rtt``/``queue_time``/``exec_time``/``round_trip``
        summaries (seconds) and ``throughput_circuits_per_s``."""
        span = (self._runner.last_delivery - self._first_submit) if self._first_submit and self._runner.last_delivery else None
        delivered = self._counters["circuits_delivered"]
        return {
            "requests": dict(self._http.requests),
            "api_calls": sum(self._http.requests.values()),
            "http_status": {str(k): v for k, v in self._http.responses.items()},
            "retries": dict(self._http.retries),
            **{k: self._counters.get(k, 0) for k in _COUNTERS},
            **{k: v for k, v in self._counters.items() if k not in _COUNTERS},
            "jobs_in_flight": self._fetcher.in_flight,
            "unfinished_jobs": sorted(self._runner.unfinished),
            "jobs_retained": len(self._runner.jobs),
            "circuits_per_job": self._runner.circuits_per_job.summary(),
            "create_rtt": self._runner.create_rtt.summary(),
            "queue_time": self._runner.queue_times.summary(),
            "exec_time": self._runner.exec_times.summary(),
            "round_trip": self._runner.round_trips.summary(),
            "throughput_circuits_per_s": (delivered / span) if span else None,
        }

    async def _shutdown(self, wait: bool, timeout: float | None = None) -> None:
        self._coalescer.close(wait)
        deadline = None if timeout is None else self._loop.time() + timeout
        while wait:
            live = self._runner.live_tasks()
            # Poll rounds serve the live jobs; everything else serves nobody now.
            for task in self._tasks - live - self._fetcher.rounds:
                task.cancel()  # nobody waits for it (lookups, remote cancels, abandoned jobs)
            if not live:
                break
            left = None if deadline is None else deadline - self._loop.time()
            if left is not None and left <= 0:
                break
            await asyncio.wait(live, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        await _cancel_all(self._tasks)
        await self._fetcher.close()
        await self._http.close()


__all__ = ["BatchSubmitter", "CircuitResult", "DEFAULT_MAX_CIRCUITS_PER_JOB"]
