"""The aiohttp application: IonQ REST routes, auth, rate limit, latency and faults.

Routes are served under both ``/v0.4`` (what qiskit-ionq 1.x and cirq-ionq 1.x use)
and ``/v0.3`` (legacy record shape, ``/jobs/{id}/results``); the handlers live in
:mod:`.routes`. Requests go through one middleware that, in order: adds the network
delay, checks the API key, applies the rate limit, draws a fault for ``/jobs`` routes,
runs the handler, and turns every error into IonQ-style JSON (the server never
answers with an HTML error or a traceback).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
from typing import Any, Awaitable, Callable

from aiohttp import web

from . import connections
from .config import ServerConfig
from .errors import ApiError, api_error_response, error_response
from .openapi import get_openapi
from .routes import account, backends, jobs, results, sessions
from .routes.jobs import FAULT, ConnectionDropped, drop_connection
from .state import API_VERSIONS, STATE, RateLimiter, ServerState, Stats, json_response

LOG = logging.getLogger(__name__)

# Handlers under /jobs: faults may be injected there.
_JOB_ROUTES = frozenset({
    "create_job", "list_jobs", "get_job", "delete_job", "cancel_job", "cancel_jobs",
    "delete_jobs", "get_results", "get_probabilities", "get_histogram", "get_shots",
    "get_artifact", "estimate_job", "get_job_cost", "get_variant_probabilities",
    "get_variant_histogram", "get_variant_shots",
})
# Handlers that need no API key: the documented public routes (backends and
# characterizations) and the health check / API document.
_PUBLIC_ROUTES = frozenset({"get_backend", "list_backends", "list_characterizations",
                            "root", "get_openapi"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Latency, auth, rate limit, faults and error mapping around every handler."""
    state = request.app[STATE]
    route = getattr(request.match_info.route.handler, "__name__", "unmatched")
    if request.match_info.http_exception is not None:
        route = "unmatched"
    if route == "server_stats":  # reading the counters must not change them
        try:
            return await handler(request)
        except ApiError as exc:
            return api_error_response(exc)
    try:
        response = await _handle(request, handler, state, route)
    except ConnectionDropped:
        state.stats.record(route, 0)
        # The transport is gone; this response is never written.
        return web.Response(status=499)
    except ApiError as exc:
        response = api_error_response(exc)
    except web.HTTPException as exc:  # routing errors, body too large, ...
        message = exc.reason
        if exc.status == 404:
            message = f"no route for {request.method} {request.path}"
        elif exc.status == 405:
            message = f"method {request.method} is not allowed on {request.path}"
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
                drop_connection(request)
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


async def root(request: web.Request) -> web.Response:
    """Health check."""
    del request
    return json_response({"status": "ok", "versions": list(API_VERSIONS)})


async def server_stats(request: web.Request) -> web.Response:
    """``GET /_qstore/stats``: this server's request counters (not part of IonQ's API).

    The same numbers as :meth:`LocalServer.stats`, for a server running in another
    process (``python -m qstore_qiskit.server``). Served without the latency model and
    left out of the counters it reports; the API key is checked when one is set.
    """
    state = request.app[STATE]
    _check_auth(request, state.config.api_key)
    snap = state.stats.snapshot()
    snap["faults"] = state.faults.counts()
    snap["connections"] = request.app[connections.LIMITER].counts()
    snap["bodies"] = {"decoded_in_process": state.decoder.decoded_in_process,
                      "in_worker": state.decoder.in_worker,
                      "bytes_in_flight": state.body_budget.held,
                      "refused_in_flight": state.body_budget.refused}
    pool = state.runner.processes
    snap["simulation"] = {"jobs_in_process": pool.jobs_in_process,
                          "in_worker": pool.in_worker,
                          "workers": pool.workers,
                          "restarted": pool.restarted}
    snap["machines"] = state.runner.machines.counts()
    store = state.store
    snap["store"] = {"bytes": store.bytes_held, "budget_bytes": store.budget_bytes,
                     "jobs": len(store.top_level()), "evicted_jobs": store.evicted,
                     "history_entries": store.history_len, "history_dropped":
                     store.history_dropped, "memory_budget": state.config.memory_budget()}
    return json_response(snap)


def _add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/", root)
    router.add_get("/_qstore/stats", server_stats)
    for v in API_VERSIONS:
        p = f"/{v}"
        router.add_get(f"{p}", root)
        router.add_get(f"{p}/openapi.json", get_openapi)
        router.add_get(f"{p}/whoami", account.whoami)
        router.add_post(f"{p}/jobs", jobs.create_job)
        router.add_get(f"{p}/jobs", jobs.list_jobs)
        router.add_delete(f"{p}/jobs", jobs.delete_jobs)
        router.add_put(f"{p}/jobs/status/cancel", jobs.cancel_jobs)
        router.add_get(f"{p}/jobs/estimate", jobs.estimate_job)
        router.add_get(f"{p}/jobs/{{job_id}}", jobs.get_job)
        router.add_delete(f"{p}/jobs/{{job_id}}", jobs.delete_job)
        router.add_put(f"{p}/jobs/{{job_id}}/status/cancel", jobs.cancel_job)
        router.add_get(f"{p}/jobs/{{job_id}}/cost", jobs.get_job_cost)
        router.add_get(f"{p}/jobs/{{job_id}}/results", results.get_results)
        router.add_get(f"{p}/jobs/{{job_id}}/results/probabilities",
                       results.get_probabilities)
        router.add_get(f"{p}/jobs/{{job_id}}/results/probabilities/aggregated",
                       results.get_probabilities)
        router.add_get(f"{p}/jobs/{{job_id}}/results/histogram", results.get_histogram)
        router.add_get(f"{p}/jobs/{{job_id}}/results/shots", results.get_shots)
        router.add_get(f"{p}/jobs/{{job_id}}/artifacts/{{artifact_id}}", results.get_artifact)
        variant = f"{p}/jobs/{{job_id}}/variants/{{variant_id}}/results"
        router.add_get(f"{variant}/probabilities", results.get_variant_probabilities)
        router.add_get(f"{variant}/histogram", results.get_variant_histogram)
        router.add_get(f"{variant}/shots", results.get_variant_shots)
        router.add_post(f"{p}/sessions", sessions.create_session)
        router.add_get(f"{p}/sessions", sessions.list_sessions)
        router.add_get(f"{p}/sessions/{{session_id}}", sessions.get_session)
        router.add_post(f"{p}/sessions/{{session_id}}/end", sessions.end_session)
        router.add_get(f"{p}/sessions/{{session_id}}/jobs", jobs.list_jobs)
        router.add_get(f"{p}/backends", backends.list_backends)
        router.add_get(f"{p}/backends/{{name}}", backends.get_backend)
        router.add_get(f"{p}/backends/{{name}}/characterizations",
                       backends.list_characterizations)
        router.add_get(f"{p}/backends/{{name}}/characterizations/{{cid}}",
                       backends.get_characterization)
        router.add_get(f"{p}/calibrations", backends.list_calibrations)
        router.add_get(f"{p}/calibrations/current", backends.current_calibration)


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
    # The connection limit (applied by connections.LimitedTCPSite) never closes a busy one.
    connections.install(app, config.max_connections)

    async def _shutdown(app_: web.Application) -> None:
        await app_[STATE].runner.shutdown()
        await asyncio.get_running_loop().run_in_executor(None, app_[STATE].decoder.shutdown)

    async def _start_workers(app_: web.Application) -> None:
        # The first large body (job) then finds a worker that has finished importing;
        # without prestart the pools start one when the first large body (job) comes.
        if config.prestarts_workers():
            app_[STATE].decoder.prestart()
            app_[STATE].runner.processes.prestart()

    app.on_startup.append(_start_workers)
    app.on_cleanup.append(_shutdown)
    _add_routes(app)
    return app


__all__ = ["create_app", "ServerState", "STATE", "RateLimiter", "Stats", "API_VERSIONS"]
