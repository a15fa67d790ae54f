"""Result fetching: polling every in-flight job, and turning a finished job into results.

A :class:`ResultFetcher` owns the watch table (one entry per job someone waits on) and
the single poll loop that serves all of them: one ``GET /jobs?ids=`` per 100 jobs when
the service filters by ids, else concurrent ``GET /jobs/{id}``; an interval that grows
with a job's age; a speculative status + results fetch at the completion time the
service predicts. When a job is final it fetches the results (and, for multicircuit
jobs, the child job list at the same time), validates them against what was submitted
and returns one :class:`~qstore_qiskit.client.results.CircuitResult` per circuit. It
holds nothing about a job once the job's waiter has its answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, cast

from ..gc_pause import cyclic_gc_paused
from .counts import count_matrix, positive_count_rows, uses_sampler
from .exceptions import (
    IonQClientError,
    IonQConnectionError,
    IonQJobFailedError,
    IonQRequestError,
    IonQResponseError,
    IonQServerError,
    redact_exception,
)
from .records import Job, Watch, poll_hint
from .rest import decode_json
from .results import CircuitResult, parse_histogram_groups

if TYPE_CHECKING:  # pragma: no cover
    from .submitter import BatchSubmitter

logger = logging.getLogger(__name__)

_FINAL = {"completed", "failed", "canceled", "cancelled"}
_ID_CHUNK = 100  # ids per GET /jobs?ids=... poll

__all__ = ["ResultFetcher"]


def _children_params(job_id: str, expected: int, cursor: str | None = None) -> dict[str, str]:
    """Query of one ``GET /jobs?parent_job_id=`` page of a job's ``expected`` children."""
    params = {"parent_job_id": job_id, "limit": str(min(max(expected, 1), 1000))}
    if cursor:
        params["next"] = cursor
    return params


class ResultFetcher:
    """The shared poller and the results stage of a submitter (event-loop side only)."""

    def __init__(self, owner: "BatchSubmitter") -> None:
        self._s = owner
        self._loop = owner._loop
        self._http = owner._http
        self._spawn = owner._spawn
        self._counters = owner._counters
        self._watch: dict[str, Watch] = {}
        self._ids_listing: bool | None = None  # does GET /jobs?ids= filter? (probed)
        self._watch_event = asyncio.Event()
        self.rounds: set[asyncio.Task] = set()  # poll rounds in flight
        self._poller = self._loop.create_task(self._poll_loop())

    @property
    def in_flight(self) -> int:
        """Jobs being waited on."""
        return len(self._watch)

    def watching(self, job_id: str) -> bool:
        """Whether someone waits for ``job_id`` to finish."""
        return job_id in self._watch

    async def close(self) -> None:
        """Stop the poll loop."""
        self._poller.cancel()
        await asyncio.gather(self._poller, return_exceptions=True)

    async def wait_final(self, job_id: str) -> tuple[dict, tuple | None]:
        """Final status document of a job, plus prefetched ``(results, children)`` if any."""
        fut = self._loop.create_future()
        now = self._loop.time()
        first = self._first_poll_delay()
        self._watch[job_id] = Watch(fut, interval=first, next_poll=now + first, started=now)
        self._watch_event.set()
        try:
            return await fut
        finally:
            self._watch.pop(job_id, None)

    def _first_poll_delay(self) -> float:
        return self._s.poll_interval[0]

    async def _poll_loop(self) -> None:
        """One loop polls every in-flight job (one ``GET /jobs?ids=`` per 100 ids when
        the server supports it, else concurrent ``GET /jobs/{id}``).

        Poll rounds overlap: a round runs as its own task, and a job is left out of new
        rounds only while its own request is in flight. Awaiting each round before the
        next would make a job that falls due during a round (a speculative fetch takes
        a full round trip) wait for that round, so jobs finishing together would be
        seen one round trip apart.
        """
        while True:
            idle = [w for w in self._watch.values() if not w.busy]
            if not idle:
                self._watch_event.clear()
                await self._watch_event.wait()
                continue
            now = self._loop.time()
            due = [jid for jid, w in self._watch.items() if not w.busy and w.next_poll <= now]
            if not due:
                wait = min(w.next_poll for w in idle) - now
                self._watch_event.clear()
                try:
                    await asyncio.wait_for(self._watch_event.wait(), max(wait, 0.0))
                except asyncio.TimeoutError:
                    pass
                continue
            for jid in due:
                self._watch[jid].busy = True
            task = self._spawn(self._poll_round(due))
            self.rounds.add(task)
            task.add_done_callback(self.rounds.discard)

    async def _poll_round(self, due: list[str]) -> None:
        try:
            await self._poll_once(due)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the poller must never die
            logger.error("status poll failed: %s", self._http.redact(repr(exc)))
            await asyncio.sleep(0.05)
        finally:
            for jid in due:
                w = self._watch.get(jid)
                if w is not None:
                    w.busy = False
            self._watch_event.set()

    async def _poll_once(self, due: list[str]) -> None:
        self._counters["poll_rounds"] += 1
        spec = [j for j in due if self._should_speculate(self._watch.get(j))]
        normal = [j for j in due if j not in spec]
        await asyncio.gather(self._poll_docs(normal), *(self._speculate(j) for j in spec))

    def _should_speculate(self, w: Watch | None) -> bool:
        # The poll scheduled at the predicted completion less half a round trip stays
        # speculative if the round-trip estimate has shrunk since (the first requests of
        # a submitter, sent while its caller compiled, measure the caller's GIL too):
        # otherwise it became a plain status poll, and the results came a poll and a
        # round trip later.
        return bool(
            w is not None and w.predicted_done is not None and w.spec_budget > 0
            and self._loop.time() >= w.predicted_done - max(self._http.rtt, w.spec_rtt) / 2
        )

    async def _speculate(self, jid: str) -> None:
        """At the predicted completion, fetch status, results (and children) at once.

        If the job is done this saves the round trip of a separate results fetch; if it
        is not, the results request gets a 409 and the status counts as a normal poll.
        The results and the first page of children come back as bytes, decoded by
        :meth:`results_for` only if the job was done: a child list fetched too early
        (1.2 MB for 1,000 circuits) is dropped undecoded.
        """
        w = self._watch.get(jid)
        if w is None:
            return
        w.spec_budget -= 1
        self._counters["speculative_fetches"] += 1
        job = self._s._runner.jobs.get(jid)
        calls = [self._http.get_job(jid), self._http.get_results(f"jobs/{jid}/results/probabilities", decode=False)]
        if job is not None and len(job.items) > 1 and self._s.verify_children:
            calls.append(self._http.list_jobs(_children_params(jid, len(job.items)), decode=False))
        out = await asyncio.gather(*calls, return_exceptions=True)
        doc, raw = out[0], out[1]
        children = out[2] if len(out) > 2 else None
        prefetched = None
        if (
            isinstance(doc, dict) and doc.get("status") == "completed"
            and not isinstance(raw, BaseException)
            and not isinstance(children, BaseException)
        ):
            prefetched = (raw, children)
            self._counters["speculative_hits"] += 1
        self._after_doc(jid, doc, self._loop.time(), prefetched)

    async def _poll_docs(self, due: list[str]) -> None:
        if not due:
            return
        docs: dict[str, Any] = {}
        if self._ids_listing is not False and len(due) > 1:
            for i in range(0, len(due), _ID_CHUNK):
                chunk = due[i : i + _ID_CHUNK]
                try:
                    # `ids` is a query array (repeated key), as in IonQ's v0.4 OpenAPI spec.
                    page = await self._http.list_jobs([("ids", j) for j in chunk] + [("limit", str(len(chunk)))])
                    jobs = page.get("jobs") if isinstance(page, dict) else None
                    got = {d.get("id"): d for d in jobs or [] if isinstance(d, dict)}
                    if jobs is None or set(got) - set(chunk):
                        self._ids_listing = False  # server ignores the ids filter
                        break
                    self._ids_listing = True
                    docs.update({k: v for k, v in got.items() if k in chunk})
                except IonQRequestError:
                    self._ids_listing = False
                    break
                except IonQClientError as exc:
                    docs.update({jid: exc for jid in chunk})
        missing = [jid for jid in due if jid not in docs]
        if missing:
            fetched = await asyncio.gather(*(self._http.get_job(j) for j in missing), return_exceptions=True)
            docs.update(dict(zip(missing, fetched)))
        now = self._loop.time()
        for jid in due:
            self._after_doc(jid, docs.get(jid), now, None)

    def _after_doc(self, jid: str, doc: Any, now: float, prefetched: tuple | None) -> None:
        """Resolve a watched job from a status document, or schedule its next poll."""
        w = self._watch.get(jid)
        if w is None or w.future.done():
            return
        if isinstance(doc, BaseException):
            w.failures += 1
            if w.failures > 3 or not isinstance(doc, (IonQConnectionError, IonQServerError)):
                w.future.set_exception(doc)
                return
        elif not isinstance(doc, dict) or not isinstance(doc.get("status"), str):
            w.future.set_exception(IonQResponseError(f"GET /jobs/{jid}: no status in response"))
            return
        elif doc["status"] in _FINAL:
            w.future.set_result((doc, prefetched))
            return
        else:
            w.failures = 0
        # The interval grows with the job's age (10% of it, between the configured
        # min and max), so a job finishing at time t is seen by ~1.1 t: the relative
        # overshoot stays bounded while long jobs cost few polls.  One poll round covers
        # every due job, so more jobs do not mean more requests.
        age = now - w.started
        w.interval = min(max(self._s.poll_interval[0], 0.1 * age), self._s.poll_interval[1])
        delay = w.interval
        # A server prediction (queue wait + execution, from submission) moves the next
        # poll to the predicted completion, less half a round trip (the moment a
        # request is looked at by the server), and makes that poll speculative.
        hint = poll_hint(doc) if isinstance(doc, dict) else None
        if hint is not None and w.hint_used < 2:
            w.hint_used += 1
            w.predicted_done = w.started + hint
            w.spec_rtt = self._http.rtt
            target = w.predicted_done - self._http.rtt / 2
            delay = max(delay, min(target - now, self._s.poll_interval[1] * 5))
        if w.predicted_done is not None and w.quick_polls > 0 and now >= w.predicted_done - self._http.rtt / 2:
            # Past the predicted completion (a speculative fetch came a little early: a
            # late start, a slow executor): the job ends any moment, so the next few
            # polls come half a round trip apart, not 10% of the job's age (~20 ms for
            # a 0.2 s job, then a separate results fetch).
            w.quick_polls -= 1
            delay = min(delay, max(self._s.poll_interval[0], self._http.rtt / 2))
        w.next_poll = now + delay

    async def results_for(
        self, job_id: str, doc: dict, job: Job | None, prefetched: tuple | None = None
    ) -> list[CircuitResult]:
        """Fetch (unless ``prefetched``), validate and convert the results of a finished job."""
        status = doc.get("status")
        if status != "completed":
            failure: dict = doc["failure"] if isinstance(doc.get("failure"), dict) else {}
            # IonQ v0.4 documents failure.message; older servers said failure.error.
            message = failure.get("message") or failure.get("error") or ""
            raise redact_exception(IonQJobFailedError(job_id, str(status), str(failure.get("code") or ""), str(message)),
                                   self._http.redact)
        meta: dict = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
        children = doc.get("child_job_ids") or doc.get("children") or []
        n_sent = len(job.items) if job else None
        qubits_sent: list[int] | None = (
            [it.request.circuits[it.index]["qubits"] for it in job.items] if job else None
        )
        stats: dict = doc["stats"] if isinstance(doc.get("stats"), dict) else {}
        job_qubits = stats.get("qubits") or doc.get("qubits")
        if qubits_sent is not None and job_qubits is not None and int(job_qubits) != max(qubits_sent):
            raise IonQResponseError(
                f"job {job_id}: server reports {job_qubits} qubits, {max(qubits_sent)} were submitted (wrong qubit count)"
            )
        results_map: dict = doc["results"] if isinstance(doc.get("results"), dict) else {}
        prob = results_map.get("probabilities")
        url = prob.get("url") if isinstance(prob, dict) else None
        url = url or f"jobs/{job_id}/results/probabilities"
        multi = bool(children) or (n_sent is not None and n_sent > 1)
        if prefetched is not None:  # bytes from a speculative fetch (see _speculate)
            raw = decode_json(prefetched[0], f"GET results of job {job_id}")
            if multi and job is not None and self._s.verify_children:
                child_docs = await self._list_children(job_id, len(children), prefetched[1])
                self._check_child_names(job, job_id, children, child_docs)
        elif multi and job is not None and self._s.verify_children:
            # Results and child records are fetched concurrently: one round trip.
            raw, child_docs = await asyncio.gather(
                self._http.get_results(url), self._list_children(job_id, len(children))
            )
            self._check_child_names(job, job_id, children, child_docs)
        else:
            raw = await self._http.get_results(url)
        # Thousands of result objects at once (validated as one matrix, then one
        # CircuitResult per circuit): made with the automatic collector paused, as the
        # decode (rest.decode_json), so that they cost one young collection afterwards
        # instead of dozens during (see the decode's docstring).
        with cyclic_gc_paused(len(children) > 8):
            if multi:
                if not isinstance(raw, dict):
                    raise IonQResponseError(f"job {job_id}: multicircuit results are not a map by child id")
                if n_sent is not None and len(children) != n_sent:
                    raise IonQResponseError(f"job {job_id}: {len(children)} child jobs for {n_sent} circuits")
                if set(raw) != set(children) or len(raw) != len(children):
                    raise IonQResponseError(f"job {job_id}: result keys do not match the child job ids")
                histograms = [(cid, raw[cid]) for cid in children]  # mapped by child id
            else:
                histograms = [(None, raw)]
            shots = int(meta.get("shots") or (job.settings["shots"] if job else doc.get("shots") or 1024))
            seed_txt = str(meta.get("sampler_seed", ""))
            seed = int(seed_txt) if seed_txt.lstrip("-").isdigit() else None
            backend = job.settings["backend"] if job else str(doc.get("backend") or doc.get("target") or "")
            noise = job.settings["noise"] if job else doc.get("noise")
            sampler = uses_sampler(backend, noise)
            ideal = not noise or (isinstance(noise, dict) and noise.get("model") in (None, "ideal"))
            width = int(job_qubits) if job_qubits is not None else (max(qubits_sent) if qubits_sent else 64)
            nqs = [qubits_sent[pos] if qubits_sent and ideal else width for pos in range(len(histograms))]
            wheres = [f"job {job_id}" + (f" child {cid}" if cid else "") for cid, _ in histograms]
            # Arrays, not per-entry Python: the histograms sharing a key list are validated
            # and counted as one matrix (a multicircuit job's children usually all do).
            arrays: list[tuple | None] = [None] * len(histograms)
            for group in parse_histogram_groups([h for _, h in histograms], nqs, wheres):
                positive: list[Any] = (
                    positive_count_rows(
                        group.outcomes,
                        count_matrix(group.probabilities, shots, use_sampler=sampler, sampler_seed=seed),
                    )
                    if self._s.compute_counts else [None] * len(group.rows)
                )
                for r, pos in enumerate(group.rows):
                    arrays[pos] = ((group.outcomes, group.probabilities[r]), positive[r])
            # The dicts are built on first read (the primitives read only the arrays).
            of_arrays = CircuitResult._of_arrays
            filled = cast("list[tuple[Any, Any]]", arrays)  # every position set above
            return [
                of_arrays(filled[pos][0], filled[pos][1], shots, job_id, cid,
                          qubits_sent[pos] if qubits_sent else width, pos, None, dict(meta))
                for pos, (cid, _) in enumerate(histograms)
            ]

    async def _list_children(self, job_id: str, expected: int, first_page: bytes | None = None) -> dict[str, dict]:
        """The child job records of ``job_id`` by id (``first_page``: the undecoded
        answer to the first ``GET /jobs?parent_job_id=`` request, if already fetched)."""
        docs: dict[str, dict] = {}
        cursor = None
        for _ in range(1 + expected // 100 + 5):
            if first_page is not None:
                page = decode_json(first_page, f"GET /jobs?parent_job_id={job_id}")
                first_page = None
            else:
                page = await self._http.list_jobs(_children_params(job_id, expected, cursor))
            jobs = page.get("jobs") if isinstance(page, dict) else None
            if not isinstance(jobs, list):
                raise IonQResponseError(f"GET /jobs?parent_job_id={job_id}: no job list")
            docs.update({d["id"]: d for d in jobs if isinstance(d, dict) and isinstance(d.get("id"), str)})
            cursor = page.get("next")
            if not cursor or len(docs) >= expected or not jobs:
                break
        return docs

    @staticmethod
    def _check_child_names(job: Job, job_id: str, children: list[str], docs: dict[str, dict]) -> None:
        """Child ``i`` must carry the tag ``"<i>:<submission id>"`` we gave circuit ``i``."""
        for pos, cid in enumerate(children):
            doc = docs.get(cid)
            if doc is None:
                raise IonQResponseError(f"job {job_id}: child {cid} is not listed under its parent")
            name = doc.get("name")
            if name is not None and name != f"{pos}:{job.submission_id}":
                raise IonQResponseError(
                    f"job {job_id}: child {cid} at position {pos} is circuit {name!r}; "
                    "children are out of order"
                )
