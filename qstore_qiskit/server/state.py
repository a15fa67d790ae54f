"""What every handler shares: the server state, the request counters and JSON helpers.

Kept apart from :mod:`.app` so that the route modules (:mod:`.results`,
:mod:`.sessions`, ...) can use them without importing the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections import Counter
from typing import Any, Iterator

from aiohttp import web

from .config import ServerConfig
from .decode import BodyDecoder, decode_json
from .errors import ApiError, bad_request
from .faults import FaultInjector
from .jobs import BACKEND_ALIASES, JobStore, backends_for
from .machine import Organizations
from .runner import JobRunner
from .sessions_store import SessionStore

API_VERSIONS = ("v0.4", "v0.3")

# Bodies at most this large are decoded on the event loop (cheaper than a thread hop);
# larger ones in the parse thread pool, and job bodies beyond
# ServerConfig.process_decode_bytes in a worker process (decode.BodyDecoder).
INLINE_DECODE_BYTES = 64 * 1024


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
        # The server's native-gate estimate summed over created circuits: not part of
        # IonQ's job record, so the demo and benchmarks read it here.
        self.native_gates_created = 0

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

    def job_created(self, circuits: int, native_gates: int = 0) -> None:
        """Count a stored job of ``circuits`` circuits, ``native_gates`` (estimated) in all."""
        with self._lock:
            self.jobs_created += 1
            self.circuits_created += circuits
            self.native_gates_created += native_gates

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
                "native_gates_created": self.native_gates_created,
            }


class ServerState:
    """Everything the handlers share.

    Args:
        config: The configuration in force.
    """

    def __init__(self, config: ServerConfig):
        self.config = config
        self.store = JobStore(config.job_store_bytes, config.max_stored_jobs,
                              history=config.history_entries, gone_ids=config.evicted_ids,
                              min_age=config.job_store_min_age)
        self.sessions = SessionStore(config.max_sessions)
        self.faults = FaultInjector(config.fault_rate, config.fault_weights, config.seed)
        self.runner = JobRunner(config, on_settled=self.store.settle)
        self.decoder = BodyDecoder(config, self.runner.executor)
        self.body_budget = ByteBudget(config.max_body_bytes_in_flight)
        self.limiter = RateLimiter(config.rate_limit, config.rate_limit_burst)
        self.stats = Stats()
        self.backends = backends_for(config)
        self.started_at = time.time()
        # Who submitted a job (a label per API key, never the key): the fair-share queue
        # model takes turns between them.
        self.organizations = Organizations()
        # Jitter has its own RNG so the fault schedule does not depend on it.
        self._delay_rng = random.Random(None if config.seed is None else config.seed + 1)

    def lookup_backend(self, name: str, status: int = 404) -> str:
        """The canonical name of backend ``name`` (aliases resolved).

        Raises:
            ApiError: ``status`` (404 for a path, 400 for a parameter) if unknown.
        """
        name = BACKEND_ALIASES.get(name, name)
        if name not in self.backends:
            if status == 400:
                raise bad_request(f"unknown backend '{name}'; available: "
                                  f"{sorted(self.backends)}", keys=["backend"],
                                  source="query")
            raise ApiError(status, f"backend '{name}' not found")
        return name

    def network_delay(self) -> float:
        """The delay for the next request."""
        cfg = self.config
        if cfg.network_jitter > 0:
            return cfg.network_delay + self._delay_rng.random() * cfg.network_jitter
        return cfg.network_delay


STATE: web.AppKey[ServerState] = web.AppKey("qstore_state", ServerState)


def organization_of(request: web.Request) -> str:
    """The organization label of the key ``request`` sent (``org-0``: none)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "apikey" else ""
    return state_of(request).organizations.label(token or None)


def state_of(request: web.Request) -> ServerState:
    """The :class:`ServerState` of ``request``'s application."""
    return request.app[STATE]


def version_of(request: web.Request) -> str:
    """The API version of ``request``'s path (``v0.4`` if none)."""
    part = request.path.split("/", 2)[1] if request.path.count("/") >= 1 else ""
    return part if part in API_VERSIONS else "v0.4"


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response."""
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


class ByteBudget:
    """Bytes of request bodies being received and decoded at once (loop-confined).

    Args:
        limit: Most bytes held at once (``ServerConfig.max_body_bytes_in_flight``).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.refused = 0

    @contextlib.contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` for the ``with`` block.

        Raises:
            ApiError: 503 with ``Retry-After`` when the budget has no room now.
        """
        if self.held + nbytes > self.limit:
            self.refused += 1
            raise ApiError(503, f"the server is receiving {self.held} bytes of request "
                                f"bodies (at most {self.limit} at once); retry shortly",
                           headers={"Retry-After": "1"})
        self.held += nbytes
        try:
            yield
        finally:
            self.held -= nbytes


async def read_body(request: web.Request, cap: int) -> bytes:
    """Read ``request``'s body, at most ``cap`` bytes, without decoding it.

    The cap is applied twice: to the declared ``Content-Length`` (413 without reading a
    byte) and to the bytes as they stream in (aiohttp's ``client_max_size`` stops a
    chunked body at ``ServerConfig.max_body_bytes``; a smaller ``cap`` is checked once
    read).

    Raises:
        ApiError: 413 beyond the cap, 408 for a body that trickles in too slowly.
    """
    state = state_of(request)
    declared = request.content_length
    if declared is not None and declared > cap:
        raise ApiError(413, f"request body exceeds {cap} bytes (Content-Length: {declared})")
    try:
        raw = await asyncio.wait_for(request.read(), state.config.body_timeout)
    except asyncio.TimeoutError:
        raise ApiError(408, f"request body not received within "
                            f"{state.config.body_timeout} s") from None
    if len(raw) > cap:
        raise ApiError(413, f"request body exceeds {cap} bytes")
    return raw


def body_reservation(request: web.Request, cap: int) -> int:
    """Bytes to reserve in :class:`ByteBudget` for ``request``'s body."""
    declared = request.content_length
    return min(cap, declared) if declared is not None else cap


async def read_json(request: web.Request, required: bool = True) -> Any:
    """Read and decode a small JSON body (any route but ``POST /jobs``).

    These routes take small documents (session settings, lists of ids), so their bodies
    are capped at ``ServerConfig.process_decode_bytes`` and decoded in this process:
    on the loop up to :data:`INLINE_DECODE_BYTES`, else in the parse thread pool.

    Args:
        request: The request.
        required: Whether an empty body is an error (else ``None`` is returned).

    Raises:
        ApiError: 400 for an empty or malformed body, 413 beyond the cap, 503 when the
            server is already receiving ``max_body_bytes_in_flight`` bytes of bodies.
    """
    state = state_of(request)
    cap = min(state.config.max_body_bytes, state.config.process_decode_bytes)
    with state.body_budget.reserve(body_reservation(request, cap)):
        raw = await read_body(request, cap)
        if not raw:
            if required:
                raise bad_request("request body is empty; expected JSON")
            return None
        if len(raw) <= INLINE_DECODE_BYTES:
            return decode_json(raw)
        return await asyncio.get_running_loop().run_in_executor(
            state.runner.executor, decode_json, raw)


__all__ = ["ServerState", "STATE", "RateLimiter", "Stats", "API_VERSIONS", "state_of",
           "version_of", "json_response", "read_json", "read_body", "ByteBudget",
           "body_reservation"]
