"""One job's life, from the moment it is cut to the moment it is forgotten.

The :class:`JobRunner` is the one owner of a job's end of life. For every chunk the
:class:`~qstore_qiskit.client.coalescer.Coalescer` cuts, it

1. journals ``submit`` and waits for a job slot (``max_jobs_in_flight``);
2. creates the job exactly once (:meth:`JobRunner._create`): ``POST /jobs`` carries a
   client-made ``metadata.submission_id``; a create whose outcome is unknown (timeout,
   dropped connection, 5xx, unreadable answer) is never blindly re-sent, the job is
   looked up by that id first and adopted if it exists; 429s wait (``Retry-After``)
   within ``rate_limit_deadline`` without using up ``max_retries``; a 413 re-splits,
   a 400 from coalesced callers isolates the bad caller;
3. waits for the job through the :class:`~qstore_qiskit.client.result_fetcher.ResultFetcher`
   and delivers each circuit's result to its caller's future (never twice);
4. once every caller with circuits in the job has its answer, journals ``delivered``
   and **forgets the job** (:meth:`JobRunner._forget`): nothing per job stays in memory
   (jobs whose callers timed out stay until :meth:`retrieve` collects them).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import random
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..gc_pause import cyclic_gc_paused
from .exceptions import (
    IonQClientError,
    IonQConnectionError,
    IonQRateLimitError,
    IonQRequestError,
    IonQResponseError,
    IonQServerError,
    QueueTimeoutError,
    SubmitterClosedError,
    redact_exception,
)
from .records import Item, Job, Request, Summary, is_simulator, iso, seconds
from .rest import retry_after_wait
from .results import CircuitResult

if TYPE_CHECKING:  # pragma: no cover
    from .submitter import BatchSubmitter

logger = logging.getLogger(__name__)

_LOOKUP_PAGES = 20  # pages of GET /jobs scanned when adopting an ambiguous create
_KEPT = ("qubits", "name")  # what a request keeps of its circuit bodies once answered

__all__ = ["JobRunner"]


class JobRunner:
    """Creates, waits for, delivers and forgets jobs (event-loop side only)."""

    def __init__(self, owner: "BatchSubmitter") -> None:
        self._s = owner
        self._loop = owner._loop
        self._http = owner._http
        self._spawn = owner._spawn
        self._counters = owner._counters
        self._journal = owner._journal
        # job id -> job, for jobs not settled yet (created, results not delivered to every
        # caller) and jobs whose callers gave up (QueueTimeoutError: kept for retrieve()).
        # A settled job is forgotten (issue #12 item 1): the journal keeps what recovery needs.
        self.jobs: dict[str, Job] = {}
        self.unfinished: set[str] = set()  # job ids whose callers gave up (timeout)
        self.tasks: dict[asyncio.Task, Job] = {}  # running job tasks
        self.active_jobs = 0  # jobs started whose slot is not released yet
        # submission id -> loop time it was cut, for those same jobs: the coalescer paces
        # a stream's cuts by the age of the oldest (see Coalescer._hold_limit).
        self._holding: dict[str, float] = {}
        self._slots = asyncio.Semaphore(owner.max_jobs_in_flight)
        self._metadata_filter = True  # send GET /jobs?metadata.submission_id= (until refused)
        # Running summaries: constant memory however many jobs run.
        self.circuits_per_job = Summary()
        self.create_rtt = Summary()
        self.queue_times = Summary()
        self.exec_times = Summary()
        self.round_trips = Summary()
        self.last_delivery: float | None = None

    def scrub(self, exc: BaseException) -> BaseException:
        """``exc`` without the API key in its text."""
        return redact_exception(exc, self._http.redact)

    def live_tasks(self) -> set[asyncio.Task]:
        """Job tasks that some caller still waits for."""
        return {t for t, job in self.tasks.items() if any(not r.future.done() for r in job.requests())}

    def cancel(self, req: Request) -> None:
        """A caller cancelled: cancel its jobs on the server that serve nobody else."""
        for job_id in req.job_ids:
            job = self.jobs.get(job_id)
            if job and all(r.cancelled for r in job.requests()) and self._s._fetcher.watching(job_id):
                self._counters["jobs_cancelled"] += 1
                self._spawn(self._cancel_remote(job_id))

    def start_job(self, settings: dict, items: list[Item], batch: int = 0) -> None:
        job = Job(submission_id=uuid.uuid4().hex[:20], settings=settings, items=items, batch=batch)
        # Journaled as soon as it is formed (not when it gets a job slot), so that after a
        # crash recover() also reports the circuits that were still waiting to be sent.
        if self._s._journal_writer:  # (the record lists every circuit: built only if written)
            self._journal({"event": "submit", "submission_id": job.submission_id,
                           "backend": settings["backend"], "shots": settings["shots"],
                           "name": settings["name"], "metadata": settings["metadata"],
                           "circuits": [[it.request.tag, it.index] for it in items],
                           "names": [it.request.circuits[it.index].get("name") for it in items]})
        self.active_jobs += 1  # until its slot is released
        self._holding[job.submission_id] = self._loop.time()
        task = self._spawn(self._run_job(job))
        self.tasks[task] = job
        task.add_done_callback(self.tasks.pop)

    def oldest_cut(self) -> float | None:
        """Loop time at which the oldest job still holding (or waiting for) a slot was
        cut; ``None`` when no job holds one."""
        return min(self._holding.values(), default=None)

    def _release_slot(self, job: Job) -> None:
        self._slots.release()
        self.active_jobs -= 1
        self._holding.pop(job.submission_id, None)
        # Circuits held back because every slot was taken go out now.
        self._s._coalescer.slot_freed()

    async def _cancel_remote(self, job_id: str) -> None:
        try:
            await self._http.cancel_job(job_id)
        except IonQClientError as exc:
            logger.warning("could not cancel job %s: %s", job_id, self._http.redact(str(exc)))

    def _payload(self, job: Job) -> dict:
        s = job.settings
        circuits = [it.request.circuits[it.index] for it in job.items]
        qubits = max(c["qubits"] for c in circuits)
        # Metadata values are strings (IonQ API); shots/sampler_seed as qiskit-ionq sends them.
        metadata = {
            **s["metadata"],
            "submission_id": job.submission_id,
            "shots": str(s["shots"]),
            "sampler_seed": str(s["sampler_seed"]),
            "client": "qstore-qiskit",
        }
        body: dict[str, Any] = {
            "backend": s["backend"],
            "shots": s["shots"],
            "metadata": metadata,
        }
        if len(circuits) == 1:
            body["type"] = "ionq.circuit.v1"
            body["name"] = s["name"] or circuits[0].get("name") or f"qstore {job.submission_id}"
            body["input"] = {"gateset": s["gateset"], "qubits": qubits, "circuit": circuits[0]["circuit"]}
        else:
            body["type"] = "ionq.multi-circuit.v1"
            body["name"] = s["name"] or f"{len(circuits)} circuits"
            # Each circuit is tagged "<index in job>:<submission id>" so results can be
            # checked against the child jobs by name, not by position alone.
            body["input"] = {
                "gateset": s["gateset"],
                "qubits": qubits,
                "circuits": [
                    {"name": f"{i}:{job.submission_id}", "circuit": c["circuit"]}
                    for i, c in enumerate(circuits)
                ],
            }
        # Noise models exist on the simulator only (IonQ API v0.4); QPU jobs carry none.
        if is_simulator(s["backend"]):
            body["noise"] = s["noise"] if s["noise"] is not None else {"model": "ideal"}
        if s.get("session_id"):
            body["session_id"] = s["session_id"]
        if s.get("job_settings") is not None:
            body["settings"] = s["job_settings"]
        return body

    async def _run_job(self, job: Job) -> None:
        await self._slots.acquire()
        released = False
        try:
            if all(r.cancelled or r.future.done() for r in job.requests()):
                self._journal({"event": "abandoned", "submission_id": job.submission_id, "reason": "cancelled"})
                return
            try:
                # The job body (one dict per circuit) is not kept for the wait.
                await self._create(job, self._payload(job))
            except IonQRequestError as exc:
                if exc.status == 413 and len(job.items) >= 2:
                    # Too many circuits / too large: nothing was created, so re-split.
                    self._resplit(job, exc)
                    return
                if exc.status in (400, 422) and len({id(it.request) for it in job.items}) > 1:
                    # One caller's bad circuit must not fail the others coalesced with it.
                    self._isolate(job, exc)
                    return
                raise
            job_id = job.job_id
            assert job_id is not None  # _create() returns only with an id
            self.jobs[job_id] = job
            # One Placement per circuit: made with the collector paused, like the rest
            # of a large job's per-circuit records (see rest.decode_json).
            with cyclic_gc_paused(len(job.items) > 8):
                for pos, it in enumerate(job.items):
                    if job_id not in it.request.job_ids:
                        it.request.job_ids.append(job_id)
                    it.request.place(it.index, job_id, pos, len(job.items))  # job ids known now
            self._journal({"event": "created", "submission_id": job.submission_id, "job_id": job_id})
            self.circuits_per_job.append(len(job.items))
            if all(r.cancelled for r in job.requests()):
                await self._cancel_remote(job_id)
            try:
                doc, prefetched = await asyncio.wait_for(self._s._fetcher.wait_final(job_id), self._s.max_queue_wait_time)
            except asyncio.TimeoutError:
                self._counters["queue_timeouts"] += 1
                self.unfinished.add(job_id)
                raise QueueTimeoutError([job_id], self._s.max_queue_wait_time) from None
            job.done_at = time.monotonic()
            released = True
            self._release_slot(job)
            results = await self._s._fetcher.results_for(job_id, doc, job, prefetched)
            self._record_timings(job, doc)
            with cyclic_gc_paused(len(job.items) > 8):
                self.deliver_many(job.items, results)
            self._journal_if_settled(job)
        except asyncio.CancelledError:
            for it in job.items:
                self.fail(it, SubmitterClosedError("BatchSubmitter closed before the job finished"))
            raise
        except Exception as exc:  # every error reaches the callers, none is swallowed
            if not isinstance(exc, IonQClientError):
                logger.error("unexpected error in job %s: %s", job.submission_id,
                             self._http.redact(repr(exc)))
            self._counters["jobs_failed"] += 1
            if isinstance(exc, QueueTimeoutError):
                # every caller learns all job ids it is waiting on
                for it in job.items:
                    self.fail(it, QueueTimeoutError(it.request.job_ids, exc.waited))
            else:
                for it in job.items:
                    self.fail(it, exc)
        finally:
            if not released:
                self._release_slot(job)
            # End of the job's task. Nobody can ask for it any more once every caller's
            # future is done (delivered, failed or cancelled), unless retrieve() may
            # (queue timeout): forget it even if it never reached "delivered" (the
            # journal then keeps it for recover()).
            if (job.job_id is not None and job.job_id not in self.unfinished
                    and all(r.future.done() for r in job.requests())):
                self._forget(job)

    def _resplit(self, job: Job, exc: IonQRequestError) -> None:
        """Split a job the server refused as too large (413) and start the parts.

        The server's limit is learnt from its message ("... limit of N per job") when it
        gives one (the cap used for later jobs of that backend); otherwise halve.
        """
        backend = job.settings["backend"]
        match = re.search(r"limit of (\d+)", exc.server_message or "")
        if match and int(match.group(1)) < len(job.items):
            size = int(match.group(1))
            self._s._coalescer.learn_cap(backend, size)
        else:
            size = math.ceil(len(job.items) / 2)
        self._counters["jobs_resplit"] += 1
        self._journal({"event": "abandoned", "submission_id": job.submission_id, "reason": "413"})
        logger.info("job of %d circuits refused (413); resubmitting in parts of %d", len(job.items), size)
        for i in range(0, len(job.items), size):
            self.start_job(job.settings, job.items[i : i + size])

    def _isolate(self, job: Job, exc: IonQRequestError) -> None:
        """Resend a job the server rejected (400/422) as one job per ``submit`` call, so
        only the caller whose circuits are bad gets the error."""
        groups: dict[int, list[Item]] = {}
        for it in job.items:
            groups.setdefault(id(it.request), []).append(it)
        self._counters["jobs_isolated"] += 1
        self._journal({"event": "abandoned", "submission_id": job.submission_id, "reason": str(exc.status)})
        logger.info("job of %d circuits from %d callers refused (%d); resubmitting per caller",
                    len(job.items), len(groups), exc.status)
        for items in groups.values():
            self.start_job(job.settings, items)

    def deliver_many(self, items: list[Item], results: list[CircuitResult]) -> None:
        """:meth:`deliver` of each ``(item, result)`` pair, in order, with each caller's
        future asked whether it is done once per run of its items (a 1,000-circuit job
        usually serves one caller; ``done()`` takes the future's lock), not once per
        circuit. A caller that cancels while its run is delivered gets its remaining
        results stored and never read, as if they had come first."""
        req: Request | None = None
        open_ = False
        for item, result in zip(items, results):
            if item.request is not req:
                req = item.request
                open_ = not req.future.done()
            if open_:
                self._deliver(req, item, result)
                open_ = req.remaining > 0  # complete: its future is set

    def deliver(self, item: Item, result: CircuitResult) -> None:
        req = item.request
        if req.future.done():
            return
        self._deliver(req, item, result)

    def _deliver(self, req: Request, item: Item, result: CircuitResult) -> None:
        if req.results[item.index] is not None:  # never double-deliver a circuit
            self._counters["duplicate_results_dropped"] += 1
            return
        result.circuit_index = item.index
        result.name = req.circuits[item.index].get("name")
        if req.metadata:
            result.metadata = {**result.metadata, **req.metadata}
        req.results[item.index] = result
        req.remaining -= 1
        self._counters["circuits_delivered"] += 1
        if req.remaining == 0:
            self.last_delivery = time.monotonic()
            self.round_trips.append(self.last_delivery - req.submitted_at)
            # Every circuit is answered: the bodies (a 1,000-circuit call's payloads, some
            # 50,000 objects) are dropped before the caller wakes, so that the jobs this
            # loop still finishes do not keep them alive once the caller lets them go
            # (the V2 primitives collect right then). What a late look needs stays.
            req.circuits = [{k: c[k] for k in _KEPT if k in c} for c in req.circuits]
            try:
                req.future.set_result(list(req.results))
            except concurrent.futures.InvalidStateError:  # cancelled meanwhile
                pass
            for job_id in req.job_ids:  # other jobs this caller was waiting on
                other = self.jobs.get(job_id)
                if other is not None:
                    self._journal_if_settled(other)

    def _journal_if_settled(self, job: Job) -> None:
        """Journal ``delivered`` once every caller with circuits in ``job`` has its
        future resolved: until then a crash must leave the job to :meth:`recover`, since
        a caller whose ``submit`` spans several jobs gets nothing before the last one."""
        if job.journaled or job.job_id is None or job.done_at == 0.0:
            return
        if all(r.future.done() for r in job.requests()):
            job.journaled = True
            self._journal({"event": "delivered", "submission_id": job.submission_id, "job_id": job.job_id})
            if job.job_id not in self.unfinished:  # retrieve() may still ask for it
                self._forget(job)

    def _forget(self, job: Job) -> None:
        """End of a job's life: drop every reference this submitter holds to it, so its
        bodies and results are freed once the callers drop their futures."""
        if job.job_id is not None:
            self.jobs.pop(job.job_id, None)

    def fail(self, item: Item, exc: BaseException) -> None:
        exc = self.scrub(exc)
        fut = item.request.future
        if not fut.done():
            self._counters["submissions_failed"] += 1
            try:
                fut.set_exception(exc)
            except concurrent.futures.InvalidStateError:
                pass
            for job_id in item.request.job_ids:
                other = self.jobs.get(job_id)
                if other is not None:
                    self._journal_if_settled(other)

    async def _create(self, job: Job, body: dict) -> None:
        """POST the job exactly once, adopting it if an ambiguous attempt created it."""
        ambiguous = False
        attempt = 0
        throttled_since: float | None = None
        last: IonQClientError = IonQServerError(429, "rate limited")
        while True:
            if ambiguous:
                found = await self.find_submission(job.submission_id)
                if found is not None:
                    job.job_id, job.adopted = found, True
                    job.created_at = time.monotonic()
                    self._counters["jobs_adopted"] += 1
                    return
            start = time.monotonic()
            try:
                resp = await self._http.create_job(body)
                if not isinstance(resp, dict) or not isinstance(resp.get("id"), str) or not resp["id"]:
                    raise IonQResponseError("POST /jobs: response has no job id")
                job.job_id = resp["id"]
                job.created_at = time.monotonic()
                self.create_rtt.append(job.created_at - start)
                self._counters["jobs_created"] += 1
                return
            except IonQRateLimitError as exc:  # 429: rejected before creating anything
                # Nothing was created, so a 429 is no failed attempt: it does not count
                # against max_retries; the waiting is bounded by rate_limit_deadline.
                now = time.monotonic()
                throttled_since = throttled_since or now
                delay = retry_after_wait(exc.retry_after) if exc.retry_after is not None else self._backoff(attempt)
                if now + delay - throttled_since > self._http.rate_limit_deadline:
                    raise
                self._http.retries["429"] += 1
                self._counters["create_retries"] += 1
                await asyncio.sleep(delay)
                continue
            except IonQConnectionError as exc:
                # Only a refused connection proves the request never reached the server.
                ambiguous = ambiguous or getattr(exc, "cause", "") != "connect"
                self._http.retries[getattr(exc, "cause", "connection")] += 1
                delay = self._backoff(attempt)
                last = exc
            except IonQServerError as exc:  # a 5xx may come from a proxy after creation
                ambiguous = True
                self._http.retries[str(exc.status)] += 1
                delay = self._backoff(attempt)
                last = exc
            except IonQResponseError:
                # Unreadable success response: the job probably exists; look once.
                found = await self.find_submission(job.submission_id)
                if found is None:
                    raise
                job.job_id, job.adopted = found, True
                job.created_at = time.monotonic()
                self._counters["jobs_adopted"] += 1
                return
            attempt += 1
            if attempt > self._s.max_retries:
                if ambiguous:
                    found = await self.find_submission(job.submission_id)
                    if found is not None:
                        job.job_id, job.adopted = found, True
                        job.created_at = time.monotonic()
                        self._counters["jobs_adopted"] += 1
                        return
                raise last
            self._counters["create_retries"] += 1
            await asyncio.sleep(min(delay, 60.0))

    def _backoff(self, attempt: int) -> float:
        step = min(self._http.backoff_max, self._http.backoff_base * 2**attempt)
        return random.uniform(step / 2, step)

    async def find_submission(self, submission_id: str) -> str | None:
        """Job id of the job tagged ``metadata.submission_id``, or ``None``.

        Asks ``GET /jobs?metadata.submission_id=<id>`` (the local server filters on it)
        and checks every returned record itself, paging through the newest jobs, so a
        server that ignores the filter is scanned client-side; one that rejects it
        (400/422) is asked without it from then on.
        """
        self._counters["submission_lookups"] += 1
        cursor = None
        for _ in range(_LOOKUP_PAGES):
            params = {"limit": "100"}
            if self._metadata_filter:
                params["metadata.submission_id"] = submission_id
            if cursor:
                params["next"] = cursor
            try:
                page = await self._http.list_jobs(params)
            except IonQRequestError as exc:
                if not self._metadata_filter or exc.status not in (400, 422):
                    raise
                self._metadata_filter = False  # server rejects the filter: scan instead
                cursor = None
                continue
            jobs = page.get("jobs") if isinstance(page, dict) else page
            if not isinstance(jobs, list):
                raise IonQResponseError("GET /jobs: response has no job list")
            for doc in jobs:
                meta = doc.get("metadata") or {} if isinstance(doc, dict) else {}
                if isinstance(meta, dict) and meta.get("submission_id") == submission_id:
                    return doc.get("id")
            cursor = page.get("next") if isinstance(page, dict) else None
            if not cursor or not jobs:
                return None
        return None

    def _record_timings(self, job: Job, doc: dict) -> None:
        execution = seconds(doc, "execution_duration_ms", "execution_time")
        if execution is not None:
            self.exec_times.append(execution)
        queue = seconds(doc, "queue_duration_ms", "queue_time")
        if queue is None:  # v0.4 records give timestamps instead
            submitted, started = iso(doc.get("submitted_at")), iso(doc.get("started_at"))
            if submitted is not None and started is not None:
                queue = max(started - submitted, 0.0)
        if queue is not None:
            self.queue_times.append(queue)
        self._s._coalescer.record(job, doc, execution)

    async def retrieve(self, job_ids: list[str]) -> list[list[CircuitResult]]:
        """Results of earlier jobs; a job this runner still knows gets its callers'
        circuit indices and names back, is journaled ``delivered`` and forgotten."""

        async def one(job_id: str) -> list[CircuitResult]:
            try:
                doc, prefetched = await asyncio.wait_for(
                    self._s._fetcher.wait_final(job_id), self._s.max_queue_wait_time
                )
                job = self.jobs.get(job_id)
                results = await self._s._fetcher.results_for(job_id, doc, job, prefetched)
            except IonQClientError as exc:
                raise self.scrub(exc)
            self.unfinished.discard(job_id)
            if job is not None:  # restore the caller's circuit indices/names
                for it, res in zip(job.items, results):
                    res.circuit_index = it.index
                    res.name = it.request.circuits[it.index].get("name")
                if not job.journaled:
                    job.journaled = True
                    self._journal({"event": "delivered", "submission_id": job.submission_id,
                                   "job_id": job_id, "by": "retrieve"})
                self._forget(job)
            return results

        return list(await asyncio.gather(*(one(j) for j in job_ids)))
