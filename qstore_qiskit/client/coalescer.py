"""Coalescing: which circuits share a job, and when a job is cut.

A :class:`Coalescer` owns the buckets of circuits waiting to be sent (one bucket per
backend, shots, gateset, noise, metadata, sampler seed, session and job settings),
their batch windows, the circuits-per-job cap of each backend (asked once from
``GET /backends/{name}``, lowered by a 413) and the adaptive job-sizing model. It
hands each cut chunk of circuits to :meth:`JobRunner.start_job
<qstore_qiskit.client.job_runner.JobRunner.start_job>` and forgets it.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections import deque
from typing import TYPE_CHECKING

from .exceptions import IonQClientError, SubmitterClosedError
from .records import Item, Job, Request, iso

if TYPE_CHECKING:  # pragma: no cover
    from .submitter import BatchSubmitter

DEFAULT_MAX_CIRCUITS_PER_JOB = 200
#: Adaptive sizing's smallest job before any job has finished: the per-job execution
#: cost is taken to equal this many circuits' until the model measures it. IonQ
#: documents no per-job cost; the ``cloud`` profile's is about 5 circuits of 4 qubits at
#: 1,024 shots (0.02 s against 3.7 ms).
PRIOR_CIRCUITS_PER_JOB = 4

__all__ = ["Coalescer", "DEFAULT_MAX_CIRCUITS_PER_JOB", "PRIOR_CIRCUITS_PER_JOB"]


class Coalescer:
    """Buckets, batch windows, job splits and the adaptive sizing model of a submitter.

    Runs on the submitter's event loop only; reads the submitter's settings
    (``batch_window``, ``max_circuits_per_job``, ``adaptive_batch_sizing``,
    ``max_jobs_in_flight``) at each use, so changing them applies to the next bucket.
    """

    def __init__(self, owner: "BatchSubmitter") -> None:
        self._s = owner
        self._loop = owner._loop
        self._http = owner._http
        self._spawn = owner._spawn
        self._buckets: dict[tuple, list[Item]] = {}
        self._bucket_timers: dict[tuple, asyncio.TimerHandle] = {}
        self._bucket_started: dict[tuple, float] = {}
        # Per waiting bucket: its last arrival, its settings, and how long it may be
        # held (fixed when it starts, see _hold_limit; shortened when a slot frees).
        self._last_arrival: dict[tuple, float] = {}
        self._bucket_settings: dict[tuple, dict] = {}
        self._bucket_hold: dict[tuple, float] = {}
        # Buckets that were due while every job slot was taken: cut when one frees.
        self._deferred: set[tuple] = set()
        # When each key's last job was cut (paces a simulator stream's cuts).
        self._last_cut: dict[tuple, float] = {}
        self._max_hold = max(20 * owner.batch_window, 0.05)
        self._caps: dict[str, int] = {}
        self._cap_tasks: dict[str, asyncio.Task] = {}
        # adaptive sizing model, per (backend, shots): (circuits, execution seconds) of the
        # last finished jobs, fitted as execution ~ per_job + per_circuit * circuits.
        self._exec_samples: dict[tuple[str, int], deque[tuple[int, float]]] = {}
        # How many jobs the service executes at once, per backend, learnt from batches
        # whose jobs had to wait for each other (see _learn_capacity).
        self._capacity: dict[str, int] = {}
        self._batch_seq = 0
        self._batch_runs: dict[int, tuple[int, list[tuple[float, float, float]]]] = {}

    def add(self, req: Request, items: list[Item]) -> None:
        """Put a request's circuits in their bucket; cut a job when full or when due.

        A bucket is due (:meth:`_due_time`) once no circuit has arrived for
        ``batch_window`` (debounce: a caller streaming circuits in a loop fills one job
        instead of many tiny ones), or once it has been held for its hold limit
        (:meth:`_hold_limit`) since its first circuit; a simulator stream's window cuts
        are also paced by that limit since the key's last cut.
        """
        key = req.key
        bucket = self._buckets.setdefault(key, [])
        bucket.extend(items)
        cap = self.cap(req.settings["backend"])
        if len(bucket) >= cap:
            # A full job's worth is waiting: no reason to wait for the window.
            self.flush(key, req.settings)
            return
        now = self._loop.time()
        if key not in self._bucket_started:
            self._bucket_started[key] = now
            self._bucket_settings[key] = req.settings
            self._bucket_hold[key] = self._hold_limit(req.settings["backend"])
        self._last_arrival[key] = now
        if key not in self._deferred:  # a deferred bucket waits for a slot, not a time
            self._arm(key)

    def _due_time(self, key: tuple) -> float:
        """Loop time at which the waiting bucket ``key`` should be cut (slots permitting)."""
        hold = self._bucket_hold[key]
        quiet = self._last_arrival[key] + self._s.batch_window
        if self._s.batch_window > 0 and self._bucket_settings[key]["backend"].startswith("simulator"):
            # A pause of one window inside a stream whose circuits come slower than the
            # window (a loop compiling each circuit on a busy machine) is no end of
            # the stream: cut no more often than the paced hold allows.
            quiet = max(quiet, self._last_cut.get(key, -math.inf) + hold)
        return min(quiet, self._bucket_started[key] + hold)

    def _arm(self, key: tuple) -> None:
        when = self._due_time(key)
        timer = self._bucket_timers.get(key)
        if timer is not None:
            if timer.when() == when:
                return
            timer.cancel()
        self._bucket_timers[key] = self._loop.call_at(when, self._fire, key)

    def _fire(self, key: tuple) -> None:
        """A bucket's timer: cut it if it is due and a job slot is free."""
        self._bucket_timers.pop(key, None)
        if not self._buckets.get(key):  # its callers cancelled
            self._forget_bucket(key)
            self._buckets.pop(key, None)
            return
        if self._loop.time() < self._due_time(key) - 1e-4:
            self._arm(key)  # its due time moved (paced)
            return
        self._cut_when_slot(key)

    def _cut_when_slot(self, key: tuple) -> None:
        if self._s._runner.active_jobs >= self._s.max_jobs_in_flight:
            # Every job slot is taken: a job cut now would only wait for one, and the
            # circuits that arrive meanwhile are better in that same job (a stream
            # never turns into a queue of tiny jobs waiting for slots).
            self._deferred.add(key)
            return
        self.flush(key, self._bucket_settings[key])

    def slot_freed(self) -> None:
        """A job released its slot: cut the buckets that were waiting for one, and let
        the others' hold limits shrink to the new state."""
        for key in list(self._buckets):
            if key not in self._bucket_started:
                continue
            if key in self._deferred:
                self._deferred.discard(key)
                self._cut_when_slot(key)
            else:
                self._bucket_hold[key] = min(
                    self._bucket_hold[key], self._hold_limit(self._bucket_settings[key]["backend"])
                )
                self._arm(key)

    def hurry(self, key: tuple) -> None:
        """A caller blocks on results of ``key``'s circuits: on a simulator, cut the
        circuits still waiting in that bucket now (as soon as a job slot is free), since
        the caller's thread is not submitting more meanwhile. A QPU bucket keeps its
        hold: each job there has a minimum charge, and 20 windows are nothing next to a
        QPU's queue."""
        if self._buckets.get(key) and key in self._bucket_started:
            if self._bucket_settings[key]["backend"].startswith("simulator"):
                timer = self._bucket_timers.pop(key, None)
                if timer is not None:
                    timer.cancel()
                self._cut_when_slot(key)

    def _hold_limit(self, backend: str) -> float:
        """How long a bucket may be held after its first circuit.

        A QPU executes one job at a time and each job has a fixed cost: a stream of
        circuits (a loop of separate ``run()`` calls, each compiling its circuit) fills
        one job for up to 20 batch windows. A simulator runs jobs side by side, so a
        stream is cut into several jobs whose queue waits overlap the caller's next
        compiles, and the last job carries only the last few circuits. The cuts are
        paced by the job slots (``max_jobs_in_flight``): with ``F`` slots free and the
        oldest job in flight cut ``age`` seconds ago, the hold is ``age / (F - 1)``,
        at least 2 windows (10 ms) and at most the QPU's hold. The free slots are so
        spread over the time the slots take to come back, and the last free slot is
        left to the stream's end (with one slot free, only the window, a caller
        waiting for results or a full job cut). Without the pacing, a stream whose
        circuits come farther apart than the window took every slot and its tail
        waited a whole job's life for one (20 ``run()`` calls on the ``cloud`` profile,
        see docs/client.rst).
        """
        if not backend.startswith("simulator"):
            return self._max_hold
        free = self._s.max_jobs_in_flight - self._s._runner.active_jobs
        if free <= 1:
            return self._max_hold
        oldest = self._s._runner.oldest_cut()
        age = 0.0 if oldest is None else self._loop.time() - oldest
        return min(self._max_hold, max(2 * self._s.batch_window, 0.01, age / (free - 1)))

    def _forget_bucket(self, key: tuple) -> None:
        timer = self._bucket_timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._bucket_started.pop(key, None)
        self._last_arrival.pop(key, None)
        self._bucket_settings.pop(key, None)
        self._bucket_hold.pop(key, None)
        self._deferred.discard(key)

    def drop(self, req: Request) -> None:
        """Remove a cancelled request's circuits that are still waiting."""
        bucket = self._buckets.get(req.key)
        if bucket:
            bucket[:] = [it for it in bucket if it.request is not req]

    def close(self, wait: bool) -> None:
        """Cut every waiting bucket now (``wait``) or fail its callers."""
        for key in list(self._buckets):
            settings = self._bucket_settings.get(key) or next(
                (it.request.settings for it in self._buckets.get(key, [])), None
            )
            if wait and settings is not None:
                self.flush(key, settings)
            else:
                self._forget_bucket(key)
                for it in self._buckets.pop(key, []):
                    self._s._runner.fail(it, SubmitterClosedError("BatchSubmitter closed"))

    def learn_cap(self, backend: str, size: int) -> None:
        """A 413 named the service's limit: use it for later jobs of ``backend``."""
        if self._s.max_circuits_per_job is None or size < self._s.max_circuits_per_job:
            self._caps[backend] = size
            if self._s.max_circuits_per_job is not None:
                self._s.max_circuits_per_job = size

    def record(self, job: Job, doc: dict, execution: float | None) -> None:
        """Feed a finished job into the sizing model and the capacity estimate."""
        if job.batch in self._batch_runs:
            self._learn_capacity(job, doc)
        if execution is not None and job.items:
            kind = (job.settings["backend"], job.settings["shots"])
            samples = self._exec_samples.setdefault(kind, deque(maxlen=32))
            samples.append((len(job.items), execution))

    def flush(self, key: tuple, settings: dict) -> None:
        """Cut the bucket ``key`` into jobs now and hand them to the runner."""
        self._forget_bucket(key)
        items = [it for it in self._buckets.pop(key, []) if not it.request.cancelled]
        if not items:
            return
        now = self._loop.time()
        self._last_cut[key] = now
        if len(self._last_cut) > 64:  # older than any hold: no longer paces anything
            for old in [k for k, t in self._last_cut.items() if now - t > self._max_hold]:
                del self._last_cut[old]
        # The requests' max_jobs bound the split: the largest of them (None: unbounded).
        limits = {it.request.max_jobs for it in items}
        limit = None if None in limits else max(limits)
        chunks = self._split(items, self.cap(settings["backend"]), (settings["backend"], settings["shots"]), limit)
        batch = 0
        if len(chunks) > 1 and self._s.adaptive_batch_sizing:
            self._batch_seq += 1
            batch = self._batch_seq
            self._batch_runs[batch] = (len(chunks), [])
            if len(self._batch_runs) > 64:  # batches whose jobs failed never complete
                del self._batch_runs[next(iter(self._batch_runs))]
        for chunk in chunks:
            self._s._runner.start_job(settings, chunk, batch)

    def _split(
        self, items: list[Item], cap: int, kind: tuple[str, int] = ("", 0), limit: int | None = None
    ) -> list[list[Item]]:
        """Cut a bucket into jobs: at the cap, or adaptively (see :meth:`_adaptive_parts`),
        into at most ``limit`` jobs then (the requests' ``max_jobs``) unless the cap needs more."""
        n = len(items)
        parts = math.ceil(n / cap)
        if self._s.adaptive_batch_sizing:
            adaptive = self._adaptive_parts(n, kind)
            parts = max(parts, adaptive if limit is None else min(adaptive, limit))
        # Balanced parts (sizes differ by at most one): a batch is as late as its largest job.
        size, extra = divmod(n, parts)
        out, start = [], 0
        for k in range(parts):
            end = start + size + (1 if k < extra else 0)
            out.append(items[start:end])
            start = end
        return out

    def _adaptive_parts(self, n: int, kind: tuple[str, int]) -> int:
        """How many concurrent jobs finish ``n`` circuits soonest without waste.

        ``kind`` is ``(backend, shots)``: execution time per circuit grows with shots, so
        each has its own model.

        A QPU executes one job at a time, so splitting cannot shorten a batch there:
        one job (up to the cap). A simulator runs jobs side by side: the batch is spread
        over the job slots free now (a busy submitter makes fewer, larger jobs), but no
        job gets fewer circuits than ``per_job / per_circuit``, from the execution-time
        model fitted on finished jobs (:meth:`_exec_model`), so that fixed per-job
        execution cost never exceeds half of a job's execution time. Before the first
        job of ``kind`` has finished there is no model, and the prior
        :data:`PRIOR_CIRCUITS_PER_JOB` stands in for that ratio: a fresh submitter fed a
        stream of small buckets no longer cuts each into one-circuit jobs that take
        every job slot (the tail then waited a whole job's life for a slot). Queue wait
        and round trips are not counted as per-job cost: concurrent jobs wait and travel
        in parallel.
        """
        if not kind[0].startswith("simulator"):
            return 1
        parts = max(1, min(n, self._s.max_jobs_in_flight - self._s._runner.active_jobs))
        capacity = self._capacity.get(kind[0])
        if capacity is not None:
            # More would wait for a free execution slot. Every 16th batch probes one job
            # more, so that a capacity learnt while the service was busy can grow back.
            parts = min(parts, capacity + (self._batch_seq % 16 == 15))
        model = self._exec_model(kind)
        if model is None:
            parts = min(parts, max(1, n // PRIOR_CIRCUITS_PER_JOB))
        else:
            per_job, per_circuit = model
            if per_job > 0:
                parts = min(parts, max(1, int(n * per_circuit / per_job)))
        return parts

    def _exec_model(self, kind: tuple[str, int]) -> tuple[float, float] | None:
        """``(per_job, per_circuit)`` execution seconds, least squares over recent jobs.

        ``None`` before the first finished job. While all recent jobs had the same size
        the two terms cannot be told apart and the whole time counts as per-circuit
        (``per_job = 0``): the next split then has other sizes to learn from.
        """
        samples = self._exec_samples.get(kind)
        if not samples:
            return None
        ns = [float(c) for c, _ in samples]
        ts = [t for _, t in samples]
        mean_n, mean_t = statistics.fmean(ns), statistics.fmean(ts)
        var_n = sum((x - mean_n) ** 2 for x in ns)
        if var_n > 0:
            per_circuit = sum((x - mean_n) * (t - mean_t) for x, t in zip(ns, ts)) / var_n
            per_job = mean_t - per_circuit * mean_n
            if per_circuit > 0 and per_job >= 0:
                return per_job, per_circuit
        return 0.0, max(mean_t / max(mean_n, 1.0), 1e-9)

    def cap(self, backend: str) -> int:
        if self._s.max_circuits_per_job is not None:
            return self._s.max_circuits_per_job
        if backend not in self._caps and backend not in self._cap_tasks:
            self._cap_tasks[backend] = self._spawn(self._ask_cap(backend))
        return self._caps.get(backend, DEFAULT_MAX_CIRCUITS_PER_JOB)

    async def _ask_cap(self, backend: str) -> None:
        try:
            info = await self._http.get_backend(backend)
        except IonQClientError:
            info = None
        cap = None
        if isinstance(info, dict):
            # IonQ's backend record has no such key today; servers that add one are
            # honoured, and a 413 teaches the cap otherwise (see _resplit).
            for key in ("max_circuits_per_job", "max_circuits"):
                if isinstance(info.get(key), int) and info[key] > 0:
                    cap = info[key]
                    break
        if cap:
            self._caps[backend] = min(cap, self._caps.get(backend, cap))
        else:  # keep a cap learnt from a 413 meanwhile
            self._caps.setdefault(backend, DEFAULT_MAX_CIRCUITS_PER_JOB)

    def _learn_capacity(self, job: Job, doc: dict) -> None:
        """Learn how many jobs the service runs at once from one adaptive batch.

        The jobs of a batch are created together. Once all have finished, look at the
        moment the first of them completed. A job that had been submitted before that
        moment but started only at or after it, and clearly later than the others (by
        more than 10 ms and half an execution), was waiting for an execution slot: the
        service was full, and the siblings that had started by then are its capacity.
        If every job was submitted and started before that moment, the capacity is at
        least the batch size. Jobs submitted only after it (a fast service finishing a
        job before the next create arrives) say nothing either way. Needs
        ``submitted_at``/``started_at``/``completed_at`` in the job records (IonQ's v0.4
        API has them); without them nothing is learnt and batches use the free job slots.
        """
        size, runs = self._batch_runs[job.batch]
        times = [iso(doc.get(k)) for k in ("submitted_at", "started_at", "completed_at")]
        if any(t is None for t in times):
            del self._batch_runs[job.batch]
            return
        runs.append((times[0], times[1], times[2]))  # type: ignore[arg-type]  # None ruled out above
        if len(runs) < size:
            return
        del self._batch_runs[job.batch]
        first_done = min(c for _, _, c in runs)
        early = [(sub, st, c) for sub, st, c in runs if st < first_done]
        started = len(early)
        # Waiting for a slot shows as a start delay well beyond the early jobs' (their
        # queue wait), of the order of a job's execution; a few milliseconds of event-loop
        # scheduling on a fast server is not evidence.
        base = min(st - sub for sub, st, _ in early) if early else 0.0
        margin = max(0.01, 0.5 * min((c - st for _, st, c in early), default=0.0))
        waited = any(sub < first_done <= st and (st - sub) - base > margin for sub, st, _ in runs)
        backend = job.settings["backend"]
        if waited:
            self._capacity[backend] = max(1, started)
        elif started == size and self._capacity.get(backend, size) < size:
            self._capacity[backend] = size
