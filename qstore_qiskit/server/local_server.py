"""Run the server in a background thread: :class:`LocalServer`."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from aiohttp import web

from . import accept
from .app import STATE, ServerState, create_app
from .config import PROFILES, ServerConfig
from .connections import LIMITER
from .jobs import render_job


# Connections asyncio accepts per loop iteration (its own default is 100), on the
# fallback path without an accept front (event loops without ``add_reader``).
ACCEPT_BATCH = 64


def _listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for ``host:port`` (not yet listening)."""
    family, kind, proto, _, addr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    return sock


class LocalServer:
    """The local IonQ-API server on a loopback port, in its own thread and event loop.

    Example::

        with LocalServer(profile="cloud", fault_rate=0.05, seed=1) as srv:
            provider = IonQProvider("any-key", url=srv.url)

    Args:
        profile: Name of a profile in :data:`~.config.PROFILES` (``instant``, ``cloud``, ``qpu``).
        api_key: Required key (``None``: accept any).
        host: Interface to bind (loopback by default).
        port: Port (0: pick a free one).
        seed: Seed for faults, noise and sampling.
        fault_rate: Probability of a fault per ``/jobs`` request.
        **config_overrides: Any other :class:`~.config.ServerConfig` field.
    """

    def __init__(
        self,
        profile: str = "instant",
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        fault_rate: float = 0.0,
        **config_overrides: Any,
    ):
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
        self.config: ServerConfig = PROFILES[profile].with_overrides(
            api_key=api_key, seed=seed, fault_rate=fault_rate, **config_overrides
        )
        self.profile = profile
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._state: ServerState | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._front: accept.AcceptFront | None = None  # None on the fallback path

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> "LocalServer":
        """Start serving; returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._ready.clear()
        self._thread = threading.Thread(target=self._thread_main, name="qstore-local-ionq",
                                        daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"local server failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving, cancel running jobs and join the thread."""
        if self._thread is None:
            return
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopped.set)
            except RuntimeError:  # loop already closed
                pass
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # pylint: disable=broad-except
            self._error = exc
            self._ready.set()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        app = create_app(self.config)
        self._state = app[STATE]
        # The default access log format has no headers, so the API key never reaches it.
        extra: dict[str, Any] = {} if self.config.access_log else {"access_log": None}
        # aiohttp arms its keep-alive timer when a connection opens, so this also closes
        # connections that never send (or never finish) their request headers.
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0,
                               keepalive_timeout=self.config.header_timeout, **extra)
        await runner.setup()
        app[LIMITER].attach(runner.server)
        sock = _listening_socket(self.host, self._requested_port)
        loop = asyncio.get_running_loop()
        front: accept.AcceptFront | None = None
        if accept.supported(loop):
            # Our own accept loop: a connection costs aiohttp a handler only once it
            # sends bytes, so silent connections cannot queue ahead of a health check.
            sock.listen(self.config.listen_backlog)
            front = accept.AcceptFront(
                loop, sock, runner.server, self.config.max_pending_connections,
                min(self.config.first_byte_timeout, self.config.header_timeout),
                header_timeout=self.config.header_timeout)
            await accept.FrontSite(runner, front).start()
            self._front = front
            app[LIMITER].front = front
        else:
            # asyncio accepts up to ``backlog`` connections per loop iteration: a small
            # batch keeps a burst of connects from holding the loop. The kernel's accept
            # queue is deepened afterwards, so that a burst does not overflow it either
            # (a dropped SYN is retried after a second).
            site = web.SockSite(runner, sock,
                                backlog=min(ACCEPT_BATCH, self.config.listen_backlog))
            await site.start()
            sock.listen(self.config.listen_backlog)
        self._runner = runner
        self.port = sock.getsockname()[1]
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            if front is not None:
                await front.close()
            await runner.cleanup()

    # -- accessors ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port`` without the API version."""
        if self.port is None:
            raise RuntimeError("server not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL including the version (what ``IonQProvider(url=...)`` takes)."""
        return f"{self.base_url}/v0.4"

    @property
    def api_key(self) -> str | None:
        """The configured key (``None``: any key is accepted)."""
        return self.config.api_key

    def _require_state(self) -> ServerState:
        if self._state is None:
            raise RuntimeError("server not started")
        return self._state

    def fault_counts(self) -> dict[str, int]:
        """Injected faults so far, by kind (all kinds present)."""
        return self._require_state().faults.counts()

    def jobs(self) -> list[dict[str, Any]]:
        """The latest ``history_entries`` (10,000) top-level jobs created, oldest first,
        deleted and evicted ones included (so a duplicate cannot hide): ``id``,
        ``status``, ``metadata``, ``circuits``, ``created`` (epoch s), ``backend``,
        ``type``, ``shots``, ``fault``, ``child_job_ids``, ``deleted``. A job that has
        left the store has a compact entry: ``child_job_ids`` is ``None`` and metadata
        values over 128 characters are left out."""
        return self._require_state().store.history()

    def job_record(self, job_id: str) -> dict[str, Any]:
        """The API record of one job (as ``GET /jobs/{id}`` would return it)."""
        return render_job(self._require_state().store.get(job_id))

    def stats(self) -> dict[str, Any]:
        """Request counters: total, by route, by status, by ``"route status"``,
        rate-limited and unauthorized counts, jobs and circuits created, faults, and
        (``queue_model="fair_share"``) per backend machine: jobs executed, most running
        at once, and the order in which organizations were served."""
        state = self._require_state()
        snap = state.stats.snapshot()
        snap["faults"] = state.faults.counts()
        snap["machines"] = state.runner.machines.counts()
        return snap

    def lower_bound_seconds(self, gate_counts: list[int], shots: int) -> float:
        """Minimum wall time of running circuits with ``gate_counts`` native gates as one
        batch job (one round trip + queue wait + execution), per the latency model."""
        return self.config.lower_bound_seconds(gate_counts, shots)

    def __repr__(self) -> str:
        where = self.url if self.port is not None else "not started"
        return f"LocalServer(profile={self.profile!r}, {where})"


__all__ = ["LocalServer"]
