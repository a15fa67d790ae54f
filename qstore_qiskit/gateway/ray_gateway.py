"""The gateway: one named, detached Ray actor per (service URL, API key) in a cluster.

It owns one :class:`~qstore_qiskit.client.BatchSubmitter`. Every worker's backend hands
it ready circuit bodies (compiled and bound on the worker); the submitter coalesces the
circuits of all workers into multicircuit jobs, under one HTTP pool, one poller and one
rate budget, and each call returns the caller's own results, in its own order.

Guarantees:

* **The key stays on the gateway.** It is read from the gateway process's environment
  (``IONQ_API_KEY``: the cluster's environment or the actor's ``runtime_env``), never
  received in an actor or task argument. Workers send the URL and a key fingerprint;
  the gateway refuses to start if its key does not match the fingerprint, and only
  sends the key to allowed URLs (:func:`~qstore_qiskit.gateway.identity.check_url`).
* **Results only to their caller.** A call's results are its return value (a Ray
  object only the caller's reference can fetch). Calls carry a random 256-bit request
  id; the gateway keeps only its SHA-256 (in memory and in its journal), so a retried
  call with the same id gets the same results, and no id can be guessed or read back.
* **Restart without loss or duplicates.** The submitter journals every job; the
  gateway journals which request owns which circuits. When the actor restarts (Ray
  restarts it and retries the pending calls, ``max_restarts=-1``,
  ``max_task_retries=-1``), it first recovers the results of journaled jobs from the
  service (no job is sent twice), then answers the retried calls from them; circuits
  that never reached the service are submitted then.
* **A dead worker loses only its own pending results.** Its calls still finish (their
  circuits usually share jobs with other workers' circuits); their results are dropped
  with the caller's references. Nobody else's calls are affected.
* **Job ids before results, to their caller only.** :meth:`QStoreGateway.created`
  answers, for a request id, where each of its circuits runs (IonQ job id, position,
  job size) as soon as its IonQ jobs exist; it needs the request id itself (only the
  caller holds it), so no worker learns another's jobs. A request that fails or is
  cancelled first fails or cancels that answer the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from typing import Any

from ..client import BatchSubmitter
from ..client.results import CircuitResult
from .identity import ENV_KEY, KEY_ENV, actor_name, check_url, key_fingerprint, request_digest
from .placements import PlacementBoard
from .release import DEFAULT_RELEASE, NEWCOMER_QUIET, RELEASES, Gatherer, settings_key
from .recovery import recover_requests
from .rounds import Held, JobBudget, Share, Submission

logger = logging.getLogger(__name__)

#: Submitter options a gateway is started with unless told otherwise. The batch window is
#: wider than a single process's (5 ms): calls from many workers arrive less closely
#: spaced than calls from one process's threads, and one job of 100 circuits costs the
#: service's queue wait once instead of once per worker.
DEFAULT_SUBMITTER_OPTIONS: dict[str, Any] = {"batch_window": 0.02, "max_jobs_in_flight": 8}
#: The submitter's batch window when the gateway gathers rounds itself (gather_window > 0).
ROUND_BATCH_WINDOW = 0.001
#: Most jobs a round's circuits are spread over by default (more only when the service's
#: circuits-per-job cap needs more). A round holds every caller's circuits, so one job
#: executes them one after another, each caller's own job would have run side by side:
#: spreading it over concurrent jobs gives back part of that parallelism, each extra job
#: costs a job (the service's queue, rate budget, per-job price). 2 keeps a sweep of 8 or
#: more callers at 4x fewer jobs than a job per call.
DEFAULT_ROUND_JOBS = 2
#: A round is split only into jobs of at least this many circuits: a job of fewer executes
#: in tens of milliseconds, so splitting it would save less time than the job costs.
ROUND_JOB_MIN_CIRCUITS = 16
_SETTINGS = ("backend", "shots", "gateset", "noise", "name", "metadata", "sampler_seed", "session_id", "job_settings")


def default_journal_dir() -> str:
    """``$XDG_CACHE_HOME/qstore-qiskit/gateway`` (``~/.cache/...`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "qstore-qiskit", "gateway")


class QStoreGateway:
    """The gateway actor (decorated with ``ray.remote`` by :func:`get_gateway`).

    Args:
        url: Service URL (``https://api.ionq.co/v0.4``, a local server's URL, ...).
        fingerprint: :func:`~qstore_qiskit.gateway.identity.key_fingerprint` of the key
            the workers hold, or ``"env"`` to use whatever key the gateway's environment
            holds.
        journal_dir: Directory of the journals (``None``: :func:`default_journal_dir`;
            ``False``: no journal, so no recovery after a restart).
        submitter_options: Keyword arguments of :class:`BatchSubmitter` (no token, no
            URL), over :data:`DEFAULT_SUBMITTER_OPTIONS`.
        gather_window: Longest time (s) a call is held to gather a round (see
            :meth:`_gate`); 0 hands every call to the submitter at once.
        linger: A caller whose last call returned less than ``linger`` seconds ago is
            waited for (up to ``gather_window``) before a round is released.
        round_jobs: Most concurrent jobs a round's circuits (of equal settings) are
            spread over, and never more than the round has calls (so never more jobs
            than a job per call) nor jobs of fewer than :data:`ROUND_JOB_MIN_CIRCUITS`
            circuits, unless the circuits-per-job cap needs more. The
            submitter picks how many within that (``adaptive_batch_sizing``: the free
            job slots, the concurrency it learnt from the service, its execution-time
            model, which keeps small rounds in one job). 1: the fewest jobs. Ignored
            with ``gather_window=0`` or an explicit ``adaptive_batch_sizing`` submitter
            option.
        release: When held calls go out (:mod:`~qstore_qiskit.gateway.release`).
            ``"pipeline"`` (default): the callers take turns in cohorts of
            ``ceil(active callers / round_jobs)`` calls, each cohort one submission
            released while fewer than ``round_jobs`` submissions are in flight, so that
            one cohort's job is queued behind another's while the other callers
            compute. ``"round"``: when every active caller has a call in (see
            :meth:`_gate`). ``"nagle"``: as soon as fewer than ``round_jobs`` of the
            gateway's submissions are in flight and at least ``1 / job_budget`` calls
            are held (one without a budget); calls arriving while that many are in
            flight coalesce until one of them finishes, as Nagle's algorithm does for
            small packets. All also release when every active caller is in;
            ``gather_window`` after the first held call ``"round"`` releases,
            ``"nagle"`` if at least ``1 / job_budget`` calls are held; ``"pipeline"``
            releases only whole cohorts (a cohort missing a caller waits for it, at
            most ``linger`` after that caller's last call returned).
        job_budget: Most jobs per call, on average over the gateway's life (``None``: no
            budget). A round is split into no more jobs than its calls have earned
            (``job_budget`` each; unused credit carries over, up to ``round_jobs``): with
            0.25 a round is split only as far as a quarter of the calls so far allow
            (every submission still makes at least one job), so small rounds that stay
            one job leave their credit to the large ones.
        newcomer_quiet: How long (s) a newcomer's first call waits for other new callers
            (see :data:`~qstore_qiskit.gateway.release.NEWCOMER_QUIET`).

    Raises:
        ValueError: no key in the environment, the key does not match ``fingerprint``,
            or the URL is not allowed.
    """

    def __init__(
        self,
        url: str,
        fingerprint: str,
        journal_dir: str | bool | None = None,
        submitter_options: dict[str, Any] | None = None,
        gather_window: float = 0.5,
        linger: float = 1.0,
        round_jobs: int = DEFAULT_ROUND_JOBS,
        release: str = DEFAULT_RELEASE,
        job_budget: float | None = None,
        newcomer_quiet: float = NEWCOMER_QUIET,
    ) -> None:
        if release not in RELEASES:
            raise ValueError(f"release must be one of {RELEASES}, got {release!r}")
        if job_budget is not None and not 0.0 < float(job_budget) <= 64.0:
            raise ValueError(f"job_budget must be in (0, 64] jobs per call or None, got {job_budget!r}")
        if not 0.0 <= float(newcomer_quiet) <= 10.0:
            raise ValueError(f"newcomer_quiet must be in [0, 10] s, got {newcomer_quiet!r}")
        self._release_mode = release
        self._newcomer_quiet = float(newcomer_quiet)
        self._budget = JobBudget(job_budget, round_jobs)
        self._round_cap = round_jobs
        self._in_flight = 0  # submissions handed to the submitter, results not yet back
        # release="nagle": the calls a submission waits for (1 / job_budget, so that each
        # submission earns at least the one job it makes).
        self._quorum = 1 if job_budget is None else max(1, round(1.0 / float(job_budget)))
        if not 0.0 <= gather_window <= 10.0 or not 0.0 <= linger <= 60.0:
            raise ValueError("gather_window must be in [0, 10] s and linger in [0, 60] s")
        if isinstance(round_jobs, bool) or not isinstance(round_jobs, int) or not 1 <= round_jobs <= 64:
            raise ValueError(f"round_jobs must be an integer in [1, 64], got {round_jobs!r}")
        self._gather_window = float(gather_window)
        self._linger = float(linger)
        self._url = check_url(url)
        self._name = actor_name(self._url, fingerprint)
        token = os.environ.get(KEY_ENV)
        if not token:
            raise ValueError(
                f"the qstore gateway found no {KEY_ENV} in its environment; set it where the Ray "
                "cluster starts, or start the gateway with runtime_env={'env_vars': {...}} "
                "(see qstore_qiskit.gateway.start_gateway)"
            )
        if fingerprint != ENV_KEY and key_fingerprint(self._url, token) != fingerprint:
            raise ValueError(
                f"the qstore gateway's {KEY_ENV} is not the key this worker uses for {self._url}; "
                "give the gateway that key through its environment"
            )
        opts = {**DEFAULT_SUBMITTER_OPTIONS, **(submitter_options or {})}
        if self._gather_window > 0 and "batch_window" not in (submitter_options or {}):
            # Rounds are gathered here and handed in as one submit() each: a batch window
            # in the submitter would only delay them.
            opts["batch_window"] = ROUND_BATCH_WINDOW
        # A round is one submission: the submitter spreads it over up to round_jobs
        # concurrent jobs, never more than the round has calls (see _release).
        self._round_jobs: int | None = None
        if self._gather_window > 0 and round_jobs > 1 and "adaptive_batch_sizing" not in (submitter_options or {}):
            opts["adaptive_batch_sizing"] = True
            self._round_jobs = round_jobs
        for forbidden in ("token", "url", "journal_path"):
            if forbidden in opts:
                raise ValueError(f"submitter option {forbidden!r} is set by the gateway itself")
        self._journal: str | None = None
        self._requests_path: str | None = None
        if journal_dir is not False:
            if journal_dir is None or journal_dir is True:
                directory = default_journal_dir()
            elif isinstance(journal_dir, (str, os.PathLike)):
                directory = os.fspath(journal_dir)
            else:
                raise ValueError(f"journal_dir must be a directory, None or False, got {journal_dir!r}")
            os.makedirs(directory, mode=0o700, exist_ok=True)
            self._journal = os.path.join(directory, f"{self._name}.jsonl")
            self._requests_path = os.path.join(directory, f"{self._name}.requests.jsonl")
        self._sub = BatchSubmitter(token, self._url, journal_path=self._journal, **opts)
        del token
        self._file_lock = threading.Lock()
        self._pending: dict[str, asyncio.Future] = {}  # request digest -> in-flight call
        # request digest -> future of its placements (see created()); bounded in time.
        self._placements = PlacementBoard(lambda digest: digest in self._pending)
        self._recovered: dict[str, list[Any]] | None = None
        self._recovery: asyncio.Task | None = None
        self._started = time.time()
        # Round gathering (see _gate): callers inside the gateway, when each last left,
        # the held calls, and the timers that release them.
        self._gatherer = Gatherer(release, self._gather_window, self._linger, round_jobs, self._quorum,
                                  self._newcomer_quiet, self._release, lambda: self._in_flight)
        self._counts = {
            "requests": 0,
            "circuits": 0,
            "requests_recovered": 0,
            "circuits_recovered": 0,
            "circuits_resubmitted": 0,
            "requests_cancelled": 0,
            "requests_failed": 0,
            "requests_joined": 0,
            "rounds": 0,
            "most_in_flight": 0,  # most of the gateway's submissions in flight at once
        }
        self._release_sizes: dict[int, int] = {}  # calls per release: releases
        # Where a call's time goes: held for its round, then submitted until its results.
        self._seconds = {"held": 0.0, "results": 0.0}

    def __repr__(self) -> str:  # Ray shows it in its actor table: no URL, no key
        return f"QStoreGateway({self._name})"

    # ------------------------------------------------------------------ public methods
    async def ping(self) -> dict[str, Any]:
        """Liveness and identity: ``{"name", "pid", "started"}`` (no URL, no key)."""
        return {"name": self._name, "pid": os.getpid(), "started": self._started}

    async def submit(
        self, request_id: str, circuits: list[dict], settings: dict[str, Any], client_id: str | None = None
    ) -> list[CircuitResult]:
        """Run ``circuits`` (IonQ circuit bodies) and return their results in order.

        Idempotent per ``request_id`` for the retries that happen: a call repeated
        while the first is running joins it, and a call retried after a gateway restart
        (by Ray, or by a worker's client) gets the results of the first one's jobs,
        recovered from the journal. (A call repeated after the first returned runs
        again: no results are kept once delivered.)

        Args:
            request_id: A random, unguessable id chosen by the caller (>= 32 characters).
            circuits: Circuit bodies ``{"qubits", "circuit", "name"?}``.
            settings: ``backend``, ``shots``, ``gateset``, ``noise``, ``name``,
                ``metadata``, ``sampler_seed``, ``session_id``, ``job_settings`` of
                :meth:`BatchSubmitter.submit`.
            client_id: The calling client's random id (used only to gather rounds).
        """
        if not isinstance(request_id, str) or len(request_id) < 32:
            raise ValueError("request_id must be a random string of at least 32 characters")
        unknown = sorted(set(settings) - set(_SETTINGS))
        if unknown:
            raise ValueError(f"unknown submit setting(s) {', '.join(unknown)}")
        digest = request_digest(request_id)
        await self._recover_once()
        joined = self._pending.get(digest)
        if joined is not None:  # the same call again while the first is running
            self._counts["requests_joined"] += 1
            return await asyncio.shield(joined)
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[digest] = done
        created = self._placements.fresh(digest)
        try:
            results = await self._run(digest, list(circuits), dict(settings), str(client_id or digest))
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                self._counts["requests_cancelled"] += 1
                done.cancel()
                created.cancel()
            else:
                if not created.done():
                    created.set_exception(exc)
                    created.exception()
                self._counts["requests_failed"] += 1
                if not done.done():
                    done.set_exception(exc)
                    done.exception()  # retrieved: no "never retrieved" warning when nobody joined
            raise
        else:
            if not created.done():  # e.g. recovered: the results name the jobs
                created.set_result(None)
            done.set_result(results)
            return results
        finally:
            self._pending.pop(digest, None)

    async def created(self, request_id: str) -> dict[str, Any]:
        """Where the circuits of the caller's request ``request_id`` run, once every one's
        IonQ job exists (before any result).

        Returns ``{"placements": [(IonQ job id, position in it, circuits in it), ...]}``
        in the request's circuit order; ``{"placements": None}`` when the gateway cannot
        tell (a request answered from the journal after a restart: its results name its
        jobs), and ``{"cancelled": True}`` for a request cancelled first. Raises the
        request's error if it failed first. Only the holder of ``request_id`` (a random
        256-bit id whose digest alone the gateway keeps) can ask.
        """
        if not isinstance(request_id, str) or len(request_id) < 32:
            raise ValueError("request_id must be a random string of at least 32 characters")
        entry = self._placements.entry(request_digest(request_id))
        try:
            placements = await asyncio.shield(entry)
        except asyncio.CancelledError:
            if entry.cancelled():
                return {"cancelled": True}
            raise  # this call itself was cancelled
        return {"placements": placements}

    async def stats(self) -> dict[str, Any]:
        """The submitter's :meth:`~BatchSubmitter.stats` plus ``"gateway"`` counters."""
        loop = asyncio.get_running_loop()
        stats = await loop.run_in_executor(None, self._sub.stats)
        stats["gateway"] = {
            **self._counts,
            "name": self._name,
            "requests_in_flight": len(self._pending),
            "calls_per_release": dict(sorted(self._release_sizes.items())),
            "held_seconds": self._seconds["held"],
            "results_seconds": self._seconds["results"],
            "journal": self._journal is not None,
        }
        return stats

    async def shutdown(self) -> None:
        """Finish outstanding work and close the submitter (the actor stays until killed)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._sub.close)

    # ------------------------------------------------------------------ running
    async def _run(
        self, digest: str, circuits: list[dict], settings: dict[str, Any], client: str
    ) -> list[CircuitResult]:
        self._counts["requests"] += 1
        self._counts["circuits"] += len(circuits)
        recovered = (self._recovered or {}).pop(digest, None)
        results: list[Any] = [None] * len(circuits)
        if recovered is not None:
            self._counts["requests_recovered"] += 1
            self._write_request({"claimed": digest})
            for index, value in enumerate(recovered[: len(circuits)]):
                if isinstance(value, BaseException):
                    raise value
                results[index] = value
            self._counts["circuits_recovered"] += sum(r is not None for r in results)
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            if recovered is not None:
                self._counts["circuits_resubmitted"] += len(missing)
            arrived = time.monotonic()
            try:
                share = await self._gate(client, digest, [circuits[i] for i in missing], settings, missing)
                self._placements.forward(
                    digest, getattr(share.submission.future, "jobs_created", None), share.offset, share.count,
                    missing, len(circuits),
                )
                released = time.monotonic()
                fresh = await share.results()
                self._seconds["held"] += released - arrived
                self._seconds["results"] += time.monotonic() - released
            finally:
                self._gatherer.left(client)
            for i, result in zip(missing, fresh):
                results[i] = result
        for index, result in enumerate(results):
            result.circuit_index = index
            result.name = circuits[index].get("name")
        return results

    # ------------------------------------------------------------------ rounds
    async def _gate(
        self, client: str, digest: str, circuits: list[dict], settings: dict[str, Any], indices: list[int]
    ) -> "Share":
        """Hold this call until its round is released; returns its share of the round's
        submission.

        Workers of a sweep run in near lockstep: each sends a call, waits for its
        results, computes, sends the next. Their calls arrive spread over the time their
        computation takes (on a busy machine, far more than a batch window), so they
        would make a job each. A round is released as soon as every active caller has a
        call in it, and at the latest ``gather_window`` seconds after its first call.
        Active callers are those with a call in the gateway (held, or waiting for its
        results: these are waited for too, so that groups of workers running out of
        phase merge into one round) and those whose last call returned less than
        ``linger`` seconds ago. A caller's first call waits until no new caller has
        arrived for ``newcomer_quiet`` seconds (the other workers of a sweep are
        starting too). On release, the round's calls with equal settings go to
        the submitter as one submission (cut into at most ``round_jobs`` concurrent
        jobs, or as the circuits-per-job cap needs), and
        each call gets its own slice of the results. That is ``release="round"``; the
        other policies (:mod:`~qstore_qiskit.gateway.release`) differ in when a
        release happens, and ``"pipeline"`` makes each release one job of its own.
        """
        gate = self._gatherer.hold(Held(client, digest, circuits, settings, indices, None, False))
        try:
            return await gate
        except asyncio.CancelledError:
            self._gatherer.drop(gate)
            if gate.done() and not gate.cancelled():
                gate.result().cancel()
            raise

    def _release(self, held: list[Held]) -> None:
        """Submit the released calls ``held`` (see :class:`~.release.Gatherer`)."""
        self._counts["rounds"] += 1
        self._release_sizes[len(held)] = self._release_sizes.get(len(held), 0) + 1
        groups: dict[str, list[Held]] = {}
        for h in held:
            if not h.gate.done():
                groups.setdefault(settings_key(h.settings), []).append(h)
        for members in groups.values():
            if self._release_mode == "pipeline" and self._gather_window > 0:
                # A cohort is one job (more only if the circuits-per-job cap needs more)
                # of its own: its callers get their results as soon as it is done, while
                # the next cohort's job, queued behind it, runs.
                self._submit_group(members, {"max_jobs": 1} if self._round_jobs else {}, exclusive=True)
            else:
                self._submit_group(members, None)

    def _submit_group(self, members: list[Held], split: dict[str, Any] | None, exclusive: bool = False) -> None:
        """One submission for ``members`` (calls of equal settings); ``split``: the
        submitter's ``max_jobs`` (``None``: :meth:`_split`)."""
        try:
            circuits = [c for h in members for c in h.circuits]
            if split is None:
                split = self._split(len(members), len(circuits))
            else:
                self._budget.charge(len(members), split.get("max_jobs", 1))
            future = self._sub.submit(circuits, **members[0].settings, **split, **(
                {"exclusive": True} if exclusive else {}))
        except Exception:  # noqa: BLE001 - a malformed call: only its own caller fails
            if len(members) == 1:
                self._submit_alone(members[0])
            else:
                for h in members:
                    self._submit_alone(h)
            return
        self._hand_out(future, members)

    def _split(self, calls: int, circuits: int) -> dict[str, Any]:
        """The submitter's ``max_jobs`` for a submission of ``calls`` calls holding
        ``circuits`` circuits: at most ``round_jobs``, one per call, one per
        :data:`ROUND_JOB_MIN_CIRCUITS` circuits and, with ``job_budget``, as many as the
        calls have earned (:class:`~.rounds.JobBudget`)."""
        if self._round_jobs is None:
            self._budget.charge(calls, 1)
            return {}
        cap = max(1, min(self._round_jobs, calls, circuits // ROUND_JOB_MIN_CIRCUITS))
        return {"max_jobs": self._budget.charge(calls, cap)}

    def _submit_alone(self, h: "Held") -> None:
        try:
            future = self._sub.submit(h.circuits, **h.settings, **self._split(1, len(h.circuits)))
        except Exception as exc:  # noqa: BLE001 - the caller's own error (ValueError, ...)
            h.gate.set_exception(exc)
            return
        self._hand_out(future, [h])

    def _hand_out(self, future: Any, members: list["Held"]) -> None:
        """Give each member its slice of ``future`` (one submitter call)."""
        submission = Submission(future, len(members))
        self._in_flight += 1
        self._counts["most_in_flight"] = max(self._counts["most_in_flight"], self._in_flight)
        loop = asyncio.get_running_loop()

        clients = [h.client for h in members]
        self._gatherer.took_off(clients)

        def finished(_f: Any) -> None:
            try:
                loop.call_soon_threadsafe(self._submission_done, clients)
            except RuntimeError:  # the loop is closed: the gateway is shutting down
                pass

        future.add_done_callback(finished)
        # Journal who owns which circuits before the submitter forms a job from them (it
        # waits ``batch_window`` first): after a crash, the submitter's journal names
        # them by this tag and offset, and these records map them back to the requests.
        tag = getattr(future, "request_tag", None)
        offset = 0
        for h in members:
            if tag is not None:
                self._write_request({"rid": h.digest, "tag": tag, "offset": offset, "indices": h.indices})
            h.gate.set_result(Share(submission, offset, len(h.circuits)))
            offset += len(h.circuits)

    def _submission_done(self, clients: list[str]) -> None:
        self._in_flight -= 1
        self._gatherer.landed(clients)

    def _write_request(self, record: dict) -> None:
        if self._requests_path is None:
            return
        line = json.dumps(record, separators=(",", ":")) + "\n"
        # Flushed, not fsynced: a killed gateway process loses nothing the OS has; a
        # machine crash may lose the last records (those requests are then resubmitted).
        with self._file_lock, open(self._requests_path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()

    # ------------------------------------------------------------------ recovery
    async def _recover_once(self) -> None:
        if self._recovered is not None:
            return
        if self._recovery is None:
            self._recovery = asyncio.ensure_future(self._recover())
        await asyncio.shield(self._recovery)

    async def _recover(self) -> None:
        """Fetch the results of journaled, undelivered jobs; index them by request
        (:func:`~qstore_qiskit.gateway.recovery.recover_requests`)."""
        recovered: dict[str, list[Any]] = {}
        try:
            if self._journal and self._requests_path:
                recovered = await recover_requests(self._sub, self._journal, self._requests_path)
                if recovered:
                    logger.info("qstore gateway %s recovered %d request(s)", self._name, len(recovered))
        except Exception as exc:  # recovery is best effort: a failure must not stop serving
            logger.warning("qstore gateway %s could not recover its journal: %s", self._name, exc)
        self._recovered = recovered


def remote_class(ray_module: Any) -> Any:
    """``ray.remote(QStoreGateway)`` with the gateway's actor options."""
    return ray_module.remote(
        num_cpus=0,  # never holds a CPU slot: it waits on the network
        max_concurrency=1000,  # async actor: concurrent calls of all workers
        max_restarts=-1,
        max_task_retries=-1,
    )(QStoreGateway)


__all__ = [
    "QStoreGateway",
    "DEFAULT_SUBMITTER_OPTIONS",
    "DEFAULT_ROUND_JOBS",
    "RELEASES",
    "DEFAULT_RELEASE",
    "ROUND_JOB_MIN_CIRCUITS",
    "default_journal_dir",
    "remote_class",
]
