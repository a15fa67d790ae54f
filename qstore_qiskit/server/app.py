"""The aiohttp application: IonQ REST routes, auth, rate limit, latency and faults.

Routes are served under both ``/v0.4`` (what qiskit-ionq 1.x uses) and ``/v0.3``
(legacy record shape, ``/jobs/{id}/results``). Requests go through one middleware
that, in order: adds the network delay, checks the API key, applies the rate limit,
draws a fault for ``/jobs`` routes, runs the handler, and turns every error into
IonQ-style JSON (the server never answers with an HTML error or a traceback).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any, Awaitable, Callable

import numpy as np
from aiohttp import web

from . import simulator as sim
from .config import ServerConfig
from .errors import ApiError, bad_request, error_response
from .faults import FaultInjector
from .jobs import (
    BACKEND_ALIASES,
    MULTI_TYPE,
    Job,
    JobStore,
    backends_for,
    matches_filters,
    parse_job_request,
    render_job,
)
from .runner import JobRunner

LOG = logging.getLogger(__name__)

API_VERSIONS = ("v0.4", "v0.3")

# Handlers under /jobs: faults may be injected there.
_JOB_ROUTES = frozenset({
    "create_job", "list_jobs", "get_job", "delete_job", "cancel_job", "cancel_jobs",
    "delete_jobs", "get_results", "get_probabilities", "get_histogram", "get_shots",
    "get_artifact", "estimate_job",
})
# Handlers that need no API key (qiskit-ionq's ``get_n_qubits`` sends none).
_PUBLIC_ROUTES = frozenset({"get_backend", "root"})


class RateLimiter:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` stored."""

    def __init__(self, rate: float | None, burst: int):
        self.rate = rate
        self.burst = max(1, int(burst))
        self._tokens = float(self.burst)
        self._last = time.monotonic()

    def acquire(self) -> float:
        """Take a token. Returns 0 on success, else the seconds until one is available."""
        if self.rate is None:
            return 0.0
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class Stats:
    """Request counters (thread-safe snapshot for the test thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.by_route: Counter = Counter()
        self.by_status: Counter = Counter()
        self.by_route_status: Counter = Counter()
        self.rate_limited = 0
        self.unauthorized = 0
        self.jobs_created = 0
        self.circuits_created = 0

    def record(self, route: str, status: int) -> None:
        """Count one answered request."""
        with self._lock:
            self.requests += 1
            self.by_route[route] += 1
            self.by_status[status] += 1
            self.by_route_status[f"{route} {status}"] += 1
            if status == 429:
                self.rate_limited += 1
            elif status == 401:
                self.unauthorized += 1

    def job_created(self, circuits: int) -> None:
        """Count a stored job."""
        with self._lock:
            self.jobs_created += 1
            self.circuits_created += circuits

    def snapshot(self) -> dict[str, Any]:
        """A copy of the counters."""
        with self._lock:
            return {
                "requests": self.requests,
                "by_route": dict(self.by_route),
                "by_status": dict(self.by_status),
                "by_route_status": dict(self.by_route_status),
                "rate_limited": self.rate_limited,
                "unauthorized": self.unauthorized,
                "jobs_created": self.jobs_created,
                "circuits_created": self.circuits_created,
            }


class ServerState:
    """Everything the handlers share.

    Args:
        config: The configuration in force.
    """

    def __init__(self, config: ServerConfig):
        self.config = config
        self.store = JobStore()
        self.faults = FaultInjector(config.fault_rate, config.fault_weights, config.seed)
        self.runner = JobRunner(config)
        self.limiter = RateLimiter(config.rate_limit, config.rate_limit_burst)
        self.stats = Stats()
        self.backends = backends_for(config)
        self.started_at = time.time()
        # Jitter has its own RNG so the fault schedule does not depend on it.
        self._delay_rng = random.Random(None if config.seed is None else config.seed + 1)

    def network_delay(self) -> float:
        """The delay for the next request."""
        cfg = self.config
        if cfg.network_jitter > 0:
            return cfg.network_delay + self._delay_rng.random() * cfg.network_jitter
        return cfg.network_delay


STATE: web.AppKey[ServerState] = web.AppKey("qstore_state", ServerState)
# The job-level fault drawn for a create request (applied by ``create_job``).
FAULT: web.RequestKey[str] = web.RequestKey("qstore_fault", str)


class _ConnectionDropped(Exception):
    """Raised after the transport was closed on purpose."""


def _state(request: web.Request) -> ServerState:
    return request.app[STATE]


def _version(request: web.Request) -> str:
    part = request.path.split("/", 2)[1] if request.path.count("/") >= 1 else ""
    return part if part in API_VERSIONS else "v0.4"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


def _drop_connection(request: web.Request) -> None:
    """Close the connection without answering (the client sees a reset/EOF)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise _ConnectionDropped()


def _check_auth(request: web.Request, api_key: str | None) -> None:
    if api_key is None:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    # Constant-time comparison; neither the expected nor the sent key is ever echoed.
    if scheme.lower() != "apikey" or not hmac.compare_digest(
        token.strip().encode(), api_key.encode()
    ):
        raise ApiError(401, "Invalid or missing API key. Use 'Authorization: apiKey <key>'.")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Latency, auth, rate limit, faults and error mapping around every handler."""
    state = _state(request)
    route = getattr(request.match_info.route.handler, "__name__", "unmatched")
    if request.match_info.http_exception is not None:
        route = "unmatched"
    if route == "server_stats":  # reading the counters must not change them
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.message, exc.error_type, exc.headers)
    try:
        response = await _handle(request, handler, state, route)
    except _ConnectionDropped:
        state.stats.record(route, 0)
        # The transport is gone; this response is never written.
        return web.Response(status=499)
    except ApiError as exc:
        response = error_response(exc.status, exc.message, exc.error_type, exc.headers)
    except web.HTTPException as exc:  # routing errors, body too large, ...
        message = exc.reason
        if exc.status == 404:
            message = f"no route for {request.method} {request.path}"
        elif exc.status == 413:
            message = f"request body exceeds {state.config.max_body_bytes} bytes"
        response = error_response(exc.status, message)
    except asyncio.CancelledError:
        raise
    except ConnectionResetError:
        # The client went away mid-request (crashed, killed, gave up): nothing to answer
        # and nothing wrong with the server.
        LOG.debug("client disconnected during %s", route)
        state.stats.record(route, 0)
        return web.Response(status=499)
    except Exception:  # pylint: disable=broad-except
        LOG.exception("unhandled error in %s", route)
        response = error_response(500, "internal server error")
    state.stats.record(route, response.status)
    return response


async def _handle(request: web.Request, handler: Handler, state: ServerState, route: str
                  ) -> web.StreamResponse:
    delay = state.network_delay()
    if delay > 0:
        await asyncio.sleep(delay)
    if request.match_info.http_exception is not None:
        raise request.match_info.http_exception
    if route not in _PUBLIC_ROUTES:
        _check_auth(request, state.config.api_key)
        wait = state.limiter.acquire()
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"Rate limit exceeded; retry after {retry_after} s.",
                           headers={"Retry-After": str(retry_after)})
    if route in _JOB_ROUTES:
        is_create = route == "create_job"
        kind = state.faults.draw(is_create)
        if kind is not None:
            if kind.startswith("http_"):
                state.faults.record(kind)
                code = int(kind[5:])
                return error_response(code, f"Injected fault: HTTP {code}")
            if kind == "drop_connection":
                state.faults.record(kind)
                _drop_connection(request)
            if kind == "slow_response":
                state.faults.record(kind)
                await asyncio.sleep(state.config.slow_response_delay)
                if is_create:
                    # Never store a job after a stall the client probably gave up on:
                    # that would be an unaccounted duplicate.
                    return error_response(504, "Injected fault: gateway timeout")
            else:
                request[FAULT] = kind  # job-level kinds, applied by create_job
    return await handler(request)


# -- handlers --------------------------------------------------------------------------


async def root(request: web.Request) -> web.Response:
    """Health check."""
    return _json({"status": "ok", "versions": list(API_VERSIONS)})


async def server_stats(request: web.Request) -> web.Response:
    """``GET /_qstore/stats``: this server's request counters (not part of IonQ's API).

    The same numbers as :meth:`LocalServer.stats`, for a server running in another
    process (``python -m qstore_qiskit.server``). Served without the latency model and
    left out of the counters it reports; the API key is checked when one is set.
    """
    state = _state(request)
    _check_auth(request, state.config.api_key)
    snap = state.stats.snapshot()
    snap["faults"] = state.faults.counts()
    return _json(snap)


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()  # raises 413 beyond client_max_size
    if not raw:
        raise bad_request("request body is empty; expected JSON")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"malformed JSON body: {exc}") from None
    except RecursionError:
        raise bad_request("malformed JSON body: nested too deeply") from None


async def create_job(request: web.Request) -> web.StreamResponse:
    """``POST /jobs``."""
    state = _state(request)
    body = await _read_json(request)
    # Validation is CPU work proportional to the gate count: keep it off the loop.
    spec = await asyncio.get_running_loop().run_in_executor(
        state.runner.executor, parse_job_request, body, state.config
    )
    job_id, seq = state.store.new_id()
    job = Job(id=job_id, spec=spec, seq=seq)
    if spec.type == MULTI_TYPE:
        for index in range(len(spec.circuits)):
            child_id, child_seq = state.store.new_id()
            job.children.append(Job(id=child_id, spec=spec, seq=child_seq, parent_id=job_id,
                                    circuit_index=index, created=job.created))
    fault = request.get(FAULT)
    job.fault = fault
    if fault in ("job_failed", "late_result"):
        state.faults.record(fault)
    state.store.add(job)
    state.stats.job_created(spec.num_circuits)
    task = state.runner.submit(job)
    if state.config.inline_execution and job.fault != "late_result":
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # the request itself was cancelled; the job keeps running
    if fault == "create_response_lost":
        # The job is stored and runs; only the answer is lost.
        state.faults.record(fault)
        _drop_connection(request)
    return _json({"id": job.id, "status": job.status, "request": int(job.created)})


def _query_ids(request: web.Request) -> list[str] | None:
    values = request.query.getall("ids", []) + request.query.getall("ids[]", [])
    if not values:
        return None
    return [v for value in values for v in value.split(",") if v]


async def list_jobs(request: web.Request) -> web.Response:
    """``GET /jobs`` with filters (see :func:`~.jobs.matches_filters`), newest first."""
    state = _state(request)
    query = {k: v for k, v in request.query.items() if k not in ("ids", "ids[]", "limit",
                                                                 "next", "include_children")}
    ids = _query_ids(request)
    default_limit = min(1000, max(100, len(ids))) if ids else 100
    try:
        limit = int(request.query.get("limit", str(default_limit)))
    except ValueError:
        raise bad_request("'limit' must be an integer") from None
    if not 1 <= limit <= 1000:
        raise bad_request("'limit' must be between 1 and 1000")
    with_children = (
        "parent_job_id" in query or ids is not None
        or request.query.get("include_children", "").lower() == "true"
    )
    if ids is not None:
        # Direct lookups: clients poll in-flight jobs with ``?ids=`` often.
        wanted = []
        for job_id in dict.fromkeys(ids):
            try:
                wanted.append(state.store.get(job_id))
            except ApiError:
                continue
        jobs = sorted(wanted, key=lambda j: j.seq, reverse=True)
        jobs = [j for j in jobs if matches_filters(j, query, None)]
    else:
        jobs = state.store.all() if with_children else state.store.top_level()
        jobs = [j for j in reversed(jobs) if matches_filters(j, query, None)]
    cursor = request.query.get("next")
    if cursor:
        position = next((i for i, j in enumerate(jobs) if j.id == cursor), None)
        if position is None:
            raise bad_request("unknown 'next' cursor")
        jobs = jobs[position + 1:]
    page = jobs[:limit]
    version = _version(request)
    return _json({
        "jobs": [render_job(j, version) for j in page],
        "next": page[-1].id if len(jobs) > limit else None,
    })


async def get_job(request: web.Request) -> web.Response:
    """``GET /jobs/{job_id}``."""
    job = _state(request).store.get(request.match_info["job_id"])
    return _json(render_job(job, _version(request)))


def _top(state: ServerState, job: Job) -> Job:
    return state.store.get(job.parent_id) if job.parent_id else job


async def cancel_job(request: web.Request) -> web.Response:
    """``PUT /jobs/{job_id}/status/cancel`` (no-op on a finished job)."""
    state = _state(request)
    job = state.store.get(request.match_info["job_id"])
    state.runner.cancel(_top(state, job))
    return _json({"id": job.id, "status": job.status})


async def delete_job(request: web.Request) -> web.Response:
    """``DELETE /jobs/{job_id}`` (cancels it first if still active)."""
    state = _state(request)
    job = state.store.get(request.match_info["job_id"])
    if job.parent_id:
        raise bad_request("delete the parent job instead of one of its children")
    state.runner.cancel(job)
    state.store.delete(job.id)
    return _json({"id": job.id, "status": "deleted"})


async def _body_ids(request: web.Request) -> list[str]:
    ids = _query_ids(request)
    if ids is None and request.can_read_body:
        body = await _read_json(request)
        ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad_request("expected 'ids', a list of job ids")
    return ids


async def cancel_jobs(request: web.Request) -> web.Response:
    """``PUT /jobs/status/cancel`` with ``{"ids": [...]}``."""
    state = _state(request)
    out = []
    for job_id in await _body_ids(request):
        job = state.store.get(job_id)
        state.runner.cancel(_top(state, job))
        out.append({"id": job.id, "status": job.status})
    return _json({"jobs": out})


async def delete_jobs(request: web.Request) -> web.Response:
    """``DELETE /jobs`` with ``{"ids": [...]}``."""
    state = _state(request)
    ids = await _body_ids(request)
    jobs = [state.store.get(i) for i in ids]  # 404 before deleting anything
    for job in jobs:
        state.runner.cancel(job)
        state.store.delete(job.id)
    return _json({"ids": [j.id for j in jobs], "status": "deleted"})


def _completed(request: web.Request) -> Job:
    job = _state(request).store.get(request.match_info["job_id"])
    if job.status != "completed":
        # 409 is what a client should read as "not yet": qiskit-ionq retries it on GETs.
        raise ApiError(409, f"job '{job.id}' is {job.status}; results are not available")
    if job.spec.dry_run:
        raise bad_request(f"job '{job.id}' was a dry run and has no results")
    return job


async def get_probabilities(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/results/probabilities``: ``{state: p}``, or for a multicircuit
    parent ``{child_id: {state: p}}`` in submission order."""
    job = _completed(request)
    if job.children:
        text = "{" + ",".join(f'"{c.id}":{c.probabilities_json}' for c in job.children) + "}"
    else:
        text = job.probabilities_json or "{}"
    return web.Response(text=text, content_type="application/json")


get_results = get_probabilities  # v0.3 ``/jobs/{id}/results`` has the same shape


async def get_histogram(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/results/histogram``: sampled shot counts (seeded)."""
    job = _completed(request)
    targets = job.children or [job]
    if any(t.histogram is None for t in targets):
        raise ApiError(404, f"job '{job.id}' has no histogram")
    hists = {t.id: {str(k): v for k, v in sorted(t.histogram.items())} for t in targets}
    return _json(hists if job.children else hists[job.id])


def _expand_shots(job: Job) -> list[int]:
    rng = np.random.default_rng(job.sample_seed)
    outcomes = np.repeat(
        np.fromiter(job.histogram.keys(), dtype=np.int64, count=len(job.histogram)),
        np.fromiter(job.histogram.values(), dtype=np.int64, count=len(job.histogram)),
    )
    return [int(x) for x in rng.permutation(outcomes)]


async def get_shots(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/results/shots``: ordered per-shot outcomes (decimal ints)."""
    job = _completed(request)
    targets = job.children or [job]
    if any(t.histogram is None for t in targets):
        raise ApiError(404, f"job '{job.id}' has no per-shot data")
    if job.children:
        return _json({t.id: _expand_shots(t) for t in targets})
    return _json(_expand_shots(job))


async def get_artifact(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/artifacts/{artifact_id}``."""
    job = _completed(request)
    payload = job.artifact_payloads.get(request.match_info["artifact_id"])
    if payload is None:
        raise ApiError(404, f"artifact '{request.match_info['artifact_id']}' not found")
    return _json(payload)


async def estimate_job(request: web.Request) -> web.Response:
    """``GET /jobs/estimate``: the latency model's prediction (cost is always zero)."""
    state = _state(request)
    q = request.query
    try:
        n1 = int(q.get("1q_gates", "0"))
        n2 = int(q.get("2q_gates", "0"))
        shots = int(q.get("shots", str(state.config.default_shots)))
        qubits = int(q.get("qubits", "1"))
    except ValueError:
        raise bad_request("gate counts, qubits and shots must be integers") from None
    exec_s = state.config.job_execution_seconds([n1 + n2], shots)
    return _json({
        "input_values": {"backend": q.get("backend", "simulator"), "1q_gates": n1,
                         "2q_gates": n2, "qubits": qubits, "shots": shots,
                         "error_mitigation": q.get("error_mitigation") == "true",
                         "session": q.get("session") == "true"},
        "estimated_cost": 0.0,
        "cost_unit": "usd",
        "estimated_execution_time": exec_s,
        "current_predicted_queue_time": state.config.queue_wait,
        "estimated_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
        "rate_information": {},
    })


def _backend_record(state: ServerState, name: str) -> dict[str, Any]:
    info = state.backends[name]
    return {
        "backend": name,
        "status": "available",
        "qubits": info.qubits,
        "average_queue_time": int(state.config.queue_wait * 1000),
        "last_updated": int(state.started_at),
        "has_access": True,
        "degraded": False,
        "native_2q_gate": info.native_2q,
        "max_circuits_per_job": state.config.max_circuits_per_job,
        "max_shots": state.config.max_shots,
        "noise_models": sorted(sim.NOISE_MODELS) if info.simulator else [info.noise_model],
        "characterization_id": None if info.simulator else _characterization_id(name),
    }


def _lookup_backend(state: ServerState, name: str) -> str:
    name = BACKEND_ALIASES.get(name, name)
    if name not in state.backends:
        raise ApiError(404, f"backend '{name}' not found")
    return name


async def list_backends(request: web.Request) -> web.Response:
    """``GET /backends``."""
    state = _state(request)
    return _json([_backend_record(state, n) for n in state.backends])


async def get_backend(request: web.Request) -> web.Response:
    """``GET /backends/{name}`` (unauthenticated; qiskit-ionq reads ``qubits``)."""
    state = _state(request)
    return _json(_backend_record(state, _lookup_backend(state, request.match_info["name"])))


def _characterization_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"qstore-local/{name}"))


def _characterization(state: ServerState, name: str) -> dict[str, Any]:
    info = state.backends[name]
    model = sim.NOISE_MODELS[info.noise_model]
    n = info.qubits
    return {
        "id": _characterization_id(name),
        "backend": name,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.started_at)),
        "qubits": n,
        "connectivity": [[a, b] for a in range(n) for b in range(a + 1, n)],
        "fidelity": {
            "spam": {"median": 1 - model.readout},
            "1q": {"median": 1 - model.error_1q},
            "2q": {"median": 1 - model.error_2q},
        },
        "timing": {"readout": 0.0003, "reset": 0.00002, "1q": 0.000135, "2q": 0.0006,
                   "t1": 100.0, "t2": 1.0},
    }


async def list_characterizations(request: web.Request) -> web.Response:
    """``GET /backends/{name}/characterizations`` (empty for the simulator)."""
    state = _state(request)
    name = _lookup_backend(state, request.match_info["name"])
    chars = [] if state.backends[name].simulator else [_characterization(state, name)]
    return _json({"characterizations": chars})


async def get_characterization(request: web.Request) -> web.Response:
    """``GET /backends/{name}/characterizations/{cid}``."""
    state = _state(request)
    name = _lookup_backend(state, request.match_info["name"])
    if state.backends[name].simulator or request.match_info["cid"] != _characterization_id(
        name
    ):
        raise ApiError(404, f"characterization '{request.match_info['cid']}' not found")
    return _json(_characterization(state, name))


# -- application -----------------------------------------------------------------------


def _add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/", root)
    router.add_get("/_qstore/stats", server_stats)
    for v in API_VERSIONS:
        p = f"/{v}"
        router.add_get(f"{p}", root)
        router.add_post(f"{p}/jobs", create_job)
        router.add_get(f"{p}/jobs", list_jobs)
        router.add_delete(f"{p}/jobs", delete_jobs)
        router.add_put(f"{p}/jobs/status/cancel", cancel_jobs)
        router.add_get(f"{p}/jobs/estimate", estimate_job)
        router.add_get(f"{p}/jobs/{{job_id}}", get_job)
        router.add_delete(f"{p}/jobs/{{job_id}}", delete_job)
        router.add_put(f"{p}/jobs/{{job_id}}/status/cancel", cancel_job)
        router.add_get(f"{p}/jobs/{{job_id}}/results", get_results)
        router.add_get(f"{p}/jobs/{{job_id}}/results/probabilities", get_probabilities)
        router.add_get(f"{p}/jobs/{{job_id}}/results/probabilities/aggregated",
                       get_probabilities)
        router.add_get(f"{p}/jobs/{{job_id}}/results/histogram", get_histogram)
        router.add_get(f"{p}/jobs/{{job_id}}/results/shots", get_shots)
        router.add_get(f"{p}/jobs/{{job_id}}/artifacts/{{artifact_id}}", get_artifact)
        router.add_get(f"{p}/backends", list_backends)
        router.add_get(f"{p}/backends/{{name}}", get_backend)
        router.add_get(f"{p}/backends/{{name}}/characterizations", list_characterizations)
        router.add_get(f"{p}/backends/{{name}}/characterizations/{{cid}}",
                       get_characterization)


def create_app(config: ServerConfig | None = None, **overrides: Any) -> web.Application:
    """Build the aiohttp application.

    Args:
        config: Configuration (default: the ``instant`` profile).
        **overrides: :class:`ServerConfig` fields to override.

    Returns:
        The application; its shared state is ``app[STATE]``.
    """
    from .config import PROFILES  # pylint: disable=import-outside-toplevel

    config = (config or PROFILES["instant"]).with_overrides(**overrides)
    app = web.Application(middlewares=[api_middleware], client_max_size=config.max_body_bytes)
    app[STATE] = ServerState(config)

    async def _shutdown(app_: web.Application) -> None:
        await app_[STATE].runner.shutdown()

    app.on_cleanup.append(_shutdown)
    _add_routes(app)
    return app


__all__ = ["create_app", "ServerState", "STATE", "RateLimiter", "Stats", "API_VERSIONS"]
