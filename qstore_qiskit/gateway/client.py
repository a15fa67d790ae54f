"""The worker side of the gateway: a submitter-shaped proxy to the cluster's gateway actor.

:class:`GatewayClient` has the interface a backend uses from
:class:`~qstore_qiskit.client.BatchSubmitter` (``submit`` -> future of
``list[CircuitResult]``, ``cancel``, ``stats``, ``close``), so a backend created with
``QStoreProvider(..., gateway="ray")`` runs exactly as before: it compiles and binds on
the worker and hands the circuit bodies to the gateway instead of its own submitter.
"""

from __future__ import annotations

import concurrent.futures
import secrets
import threading
import time
from typing import Any, Sequence

from .identity import NAMESPACE, actor_name, key_fingerprint, normalize_url

_CREATE_OPTIONS = ("journal_dir", "submitter_options", "runtime_env", "gather_window", "linger", "round_jobs",
                   "release", "job_budget", "newcomer_quiet")
_RETRIES_AFTER_DEATH = 3  # resends when the gateway died for good (Ray restarts it otherwise)


def _ray():
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "gateway='ray' needs Ray: pip install 'qstore-qiskit[ray]'"
        ) from exc
    if not ray.is_initialized():
        raise RuntimeError(
            "gateway='ray' needs a running Ray: call ray.init(...) first (inside Ray tasks and "
            "actors it is already initialized)"
        )
    return ray


def get_gateway(
    url: str,
    fingerprint: str,
    *,
    journal_dir: str | bool | None = None,
    submitter_options: dict[str, Any] | None = None,
    runtime_env: dict | None = None,
    namespace: str = NAMESPACE,
    gather_window: float = 0.5,
    linger: float = 1.0,
    round_jobs: int | None = None,
    release: str | None = None,
    job_budget: float | None = None,
    newcomer_quiet: float | None = None,
) -> Any:
    """The handle of the gateway actor for ``(url, fingerprint)``, created if absent.

    The first caller creates it (named, detached: it outlives the job that created it,
    until ``ray.kill``); later callers get the same actor, and their
    ``journal_dir``/``submitter_options``/``runtime_env``/``gather_window``/``linger``/
    ``round_jobs``/``release``/``job_budget``/``newcomer_quiet`` (``None``: the
    default) are ignored (see :class:`~qstore_qiskit.gateway.ray_gateway.QStoreGateway`).
    """
    ray = _ray()
    from .ray_gateway import DEFAULT_ROUND_JOBS, remote_class
    from .release import DEFAULT_RELEASE, NEWCOMER_QUIET

    options: dict[str, Any] = {
        "name": actor_name(url, fingerprint),
        "namespace": namespace,
        "lifetime": "detached",
        "get_if_exists": True,
    }
    if runtime_env is not None:
        options["runtime_env"] = runtime_env
    return remote_class(ray).options(**options).remote(
        normalize_url(url), fingerprint, journal_dir, submitter_options, gather_window, linger,
        DEFAULT_ROUND_JOBS if round_jobs is None else round_jobs, DEFAULT_RELEASE if release is None else release,
        job_budget, NEWCOMER_QUIET if newcomer_quiet is None else newcomer_quiet,
    )


def start_gateway(
    url: str,
    token: str | None = None,
    *,
    key_from_env: bool = False,
    journal_dir: str | bool | None = None,
    runtime_env: dict | None = None,
    gather_window: float = 0.5,
    linger: float = 1.0,
    round_jobs: int | None = None,
    release: str | None = None,
    job_budget: float | None = None,
    newcomer_quiet: float | None = None,
    timeout: float = 60.0,
    **submitter_options: Any,
) -> Any:
    """Start (or find) the gateway for ``url`` on the driver and wait until it serves.

    Workers find it by name; starting it on the driver first lets you choose its
    options and hand it the key through ``runtime_env`` (e.g.
    ``{"env_vars": {"IONQ_API_KEY": key}}``), so workers need no key in their
    environment. Without this call the first worker starts it with defaults.

    Args:
        url: Service URL.
        token: The key the workers will use (only its fingerprint leaves this process,
            and its runtime environment if you pass one). ``None`` with
            ``key_from_env=True``: the gateway uses whatever key its environment holds,
            and serves workers that have no key.
        journal_dir, gather_window, linger, round_jobs, release, job_budget, newcomer_quiet:
            See :class:`~qstore_qiskit.gateway.ray_gateway.QStoreGateway` (``None``: the
            defaults, :data:`~qstore_qiskit.gateway.ray_gateway.DEFAULT_ROUND_JOBS`,
            :data:`~qstore_qiskit.gateway.release.DEFAULT_RELEASE`,
            :data:`~qstore_qiskit.gateway.release.NEWCOMER_QUIET`).
        runtime_env: The actor's Ray runtime environment.
        timeout: Seconds to wait for the gateway to answer.
        **submitter_options: :class:`~qstore_qiskit.client.BatchSubmitter` options.

    Returns:
        The actor handle.
    """
    if token is None and not key_from_env:
        raise ValueError("start_gateway needs the token the workers use, or key_from_env=True")
    fingerprint = key_fingerprint(url, None if key_from_env else token)
    handle = get_gateway(
        url,
        fingerprint,
        journal_dir=journal_dir,
        submitter_options=submitter_options or None,
        runtime_env=runtime_env,
        gather_window=gather_window,
        linger=linger,
        round_jobs=round_jobs,
        release=release,
        job_budget=job_budget,
        newcomer_quiet=newcomer_quiet,
    )
    _ray().get(handle.ping.remote(), timeout=timeout)
    return handle


class GatewayClient:
    """A :class:`~qstore_qiskit.client.BatchSubmitter`-shaped proxy to the gateway actor.

    Args:
        url: Service URL.
        token: The worker's API key; only its fingerprint is kept and sent. ``None``:
            use the gateway that serves "the key in the gateway's environment".
        **create_options: ``journal_dir``, ``submitter_options``, ``runtime_env``,
            ``gather_window``, ``linger``, ``round_jobs``, ``release``, ``job_budget``,
            ``newcomer_quiet``: used only if
            this client is the one that
            creates the gateway (see :func:`get_gateway`).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        **create_options: Any,
    ) -> None:
        unknown = sorted(set(create_options) - set(_CREATE_OPTIONS))
        if unknown:
            raise ValueError(f"unknown gateway option(s) {', '.join(unknown)}; known: {', '.join(_CREATE_OPTIONS)}")
        self.url = normalize_url(url)
        self._fingerprint = key_fingerprint(self.url, token)
        self._create = dict(create_options)
        self._lock = threading.Lock()
        self._handle: Any = None
        self._closed = False
        self._retry_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._requests = 0
        self._circuits = 0
        self._round_trip = 0.0  # seconds from submit() to results, summed over requests
        # Lets the gateway gather this client's calls into rounds with the others'; it
        # grants nothing (results go to the caller's own reference only).
        self._client_id = secrets.token_hex(8)

    def __repr__(self) -> str:
        return f"GatewayClient({actor_name(self.url, self._fingerprint)}, closed={self._closed})"

    # ------------------------------------------------------------------ plumbing
    def _actor(self, fresh: bool = False) -> Any:
        with self._lock:
            if self._handle is None or fresh:
                self._handle = get_gateway(self.url, self._fingerprint, **self._create)
            return self._handle

    def _call(self, rid: str, circuits: list[dict], settings: dict[str, Any], out: concurrent.futures.Future,
              attempt: int, fresh: bool = False) -> None:
        ray = _ray()
        try:
            ref = self._actor(fresh).submit.remote(rid, circuits, settings, self._client_id)
        except Exception as exc:  # the gateway cannot be created (bad key, URL, ...)
            if not out.done():
                out.set_exception(exc)
            return
        out._qstore_ref = ref  # type: ignore[attr-defined]  # for cancel()

        def done(inner: concurrent.futures.Future) -> None:
            if out.done():
                return
            try:
                results = inner.result()
            except (ray.exceptions.TaskCancelledError, concurrent.futures.CancelledError):
                out.cancel()
                return
            except ray.exceptions.RayActorError as exc:
                # Died for good (killed with no_restart, node lost): a new gateway by the
                # same name recovers the journal; resending the same request id gets the
                # results of the first call, not a second job.
                # A gateway that failed to start (no key, wrong key, URL refused) fails
                # again: report its error instead.
                if attempt < _RETRIES_AFTER_DEATH and "creation task" not in str(exc):
                    self._pool().submit(self._call, rid, circuits, settings, out, attempt + 1, True)
                else:
                    out.set_exception(exc)
                return
            except ray.exceptions.RayTaskError as exc:
                out.set_exception(_cause(exc))
                return
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                out.set_exception(exc)
                return
            try:
                out.set_result(results)
            except concurrent.futures.InvalidStateError:  # cancelled meanwhile
                pass

        ref.future().add_done_callback(done)

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._retry_pool is None:
                self._retry_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="qstore-gateway")
            return self._retry_pool

    # ------------------------------------------------------------------ BatchSubmitter API
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
    ) -> concurrent.futures.Future:
        """Hand circuits to the gateway; a future of ``list[CircuitResult]`` in input order.

        Same contract as :meth:`BatchSubmitter.submit`; circuits of all workers with the
        same settings share multicircuit jobs.
        """
        if self._closed:
            from ..client import SubmitterClosedError

            raise SubmitterClosedError("GatewayClient is closed")
        if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
            raise ValueError("shots must be a positive integer")
        bodies = list(circuits)
        out: concurrent.futures.Future = concurrent.futures.Future()
        if not bodies:
            out.set_result([])
            return out
        settings = {
            "backend": backend,
            "shots": shots,
            "gateset": gateset,
            "noise": noise,
            "name": name,
            "metadata": metadata,
            "sampler_seed": sampler_seed,
        }
        if session_id is not None:
            settings["session_id"] = session_id
        if job_settings is not None:
            settings["job_settings"] = job_settings
        rid = secrets.token_urlsafe(32)  # 256 random bits: the only handle on the results
        self._requests += 1
        self._circuits += len(bodies)
        out.add_done_callback(self._on_cancel)
        started = time.monotonic()
        out.add_done_callback(lambda _: self._add_round_trip(time.monotonic() - started))
        created: concurrent.futures.Future = concurrent.futures.Future()
        out.jobs_created = created  # type: ignore[attr-defined]  # as BatchSubmitter's futures
        out.add_done_callback(_settle_created(created))
        self._call(rid, bodies, settings, out, 0)
        if not out.done():
            self._ask_created(rid, created)
        return out

    def _ask_created(self, rid: str, created: concurrent.futures.Future) -> None:
        """Resolve ``created`` with the request's placements as soon as the gateway has
        them (one small actor call that waits there), or with ``None`` when the gateway
        cannot tell (then the results name the jobs)."""
        from ..client.records import Placement

        ray = _ray()
        try:
            ref = self._actor().created.remote(rid)
        except Exception:  # noqa: BLE001 - submit() reports the gateway's own error
            _resolve(created, None)
            return

        def done(inner: concurrent.futures.Future) -> None:
            if created.done():
                return
            try:
                answer = inner.result()
            except (ray.exceptions.RayActorError, ray.exceptions.TaskCancelledError,
                    concurrent.futures.CancelledError):
                _resolve(created, None)  # the gateway died or the call ended: the results tell
                return
            except BaseException as exc:  # noqa: BLE001 - the request's own error
                _fail(created, _cause(exc))
                return
            if answer.get("cancelled"):
                try:
                    created.cancel()
                    created.set_running_or_notify_cancel()  # wake waiters
                except (concurrent.futures.InvalidStateError, RuntimeError):
                    pass
                return
            placements = answer.get("placements")
            _resolve(created, None if placements is None else [Placement(*p) for p in placements])

        ref.future().add_done_callback(done)

    def _add_round_trip(self, seconds: float) -> None:
        with self._lock:
            self._round_trip += seconds

    def _on_cancel(self, fut: concurrent.futures.Future) -> None:
        ref = getattr(fut, "_qstore_ref", None)
        if fut.cancelled() and ref is not None:
            try:
                _ray().cancel(ref)
            except Exception:  # noqa: BLE001 - best effort: the call may have finished
                pass

    def cancel(self, future: concurrent.futures.Future) -> bool:
        """Cancel a submission: the gateway drops its circuits not yet sent."""
        return future.cancel()

    def stats(self) -> dict[str, Any]:
        """The gateway's statistics (all workers) plus this client's ``"client"`` counters."""
        stats = dict(_ray().get(self._actor().stats.remote(), timeout=30))
        stats["client"] = {
            "requests": self._requests,
            "circuits": self._circuits,
            "round_trip_seconds": self._round_trip,
        }
        return stats

    def recover(self, journal_path: Any = None, timeout: float | None = None) -> dict[str, dict]:
        """Not on workers: the gateway recovers its own journal when it restarts."""
        raise ValueError(
            "with gateway='ray' the gateway journals and recovers jobs itself (after a restart, "
            "retried calls get their results); there is no worker-side journal"
        )

    def close(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop using the gateway from here. The gateway itself keeps serving the others."""
        self._closed = True
        with self._lock:
            pool, self._retry_pool = self._retry_pool, None
            self._handle = None
        if pool is not None:
            pool.shutdown(wait=False)


def _resolve(created: concurrent.futures.Future, value: Any) -> None:
    try:
        created.set_result(value)
    except (concurrent.futures.InvalidStateError, RuntimeError):  # settled meanwhile
        pass


def _fail(created: concurrent.futures.Future, exc: BaseException) -> None:
    try:
        created.set_exception(exc)
    except (concurrent.futures.InvalidStateError, RuntimeError):  # settled meanwhile
        pass


def _settle_created(created: concurrent.futures.Future):
    """Done-callback of a request's results future: a request that failed or was
    cancelled before its placements arrived fails or cancels ``created`` the same way
    (callers blocked on job ids are never left waiting). Results arriving first leave it
    to the gateway's answer, which is on its way (the gateway settles placements first)."""

    def callback(fut: concurrent.futures.Future) -> None:
        if created.done():
            return
        if fut.cancelled():
            try:
                created.cancel()
                created.set_running_or_notify_cancel()
            except (concurrent.futures.InvalidStateError, RuntimeError):
                pass
        else:
            exc = fut.exception()
            if exc is not None:
                _fail(created, exc)

    return callback


def _cause(exc: BaseException) -> BaseException:
    """The gateway-side exception inside a ``RayTaskError`` (e.g. ``IonQJobFailedError``)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


__all__ = ["GatewayClient", "get_gateway", "start_gateway"]
