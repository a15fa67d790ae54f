"""Synchronous control-plane calls of a provider: backends, jobs, sessions, estimates.

The data plane (creating jobs and fetching their results) goes through
:class:`~qstore_qiskit.client.BatchSubmitter`. The few other calls a Qiskit user makes
(``GET /backends`` when a backend is created, ``GET /jobs/{id}`` for a retrieved job's
status, ``POST /sessions``, ``GET /jobs/estimate``...) are made here, on one private event
loop thread shared by all of a provider's backends, with the same
:class:`~qstore_qiskit.client.IonQHttpClient` (so the same redaction, retry and origin
rules apply). A private thread, not ``asyncio.run``, so that they work inside a running
event loop too (Jupyter).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from typing import Any, Coroutine, TypeVar

from ..client import IonQHttpClient

T = TypeVar("T")

#: Seconds one control call may take in total (they are small).
CONTROL_TIMEOUT = 15.0


class ServiceClient:
    """Blocking IonQ REST calls for the provider and its backends.

    Args:
        token: API key (never printed).
        url: API base URL.
        max_retries: retries per call (the connectivity probe at ``get_backend`` uses 0).
        request_timeout: seconds per HTTP request.
    """

    def __init__(self, token: str | None, url: str, *, max_retries: int = 3, request_timeout: float = 10.0) -> None:
        self._http = IonQHttpClient(
            token, url, connection_pool_size=4, request_timeout=request_timeout, max_retries=max_retries
        )
        self.url = self._http.url
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never shows the token
        return f"ServiceClient(url={self.url!r})"

    def _start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="qstore-control", daemon=True)
        self._thread.start()
        # A client never closed still closes its HTTP session at interpreter exit (no
        # "Unclosed client session" noise); the finalizer must not reference self.
        self._finalizer = weakref.finalize(self, _stop, self._loop, self._thread, self._http)

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = CONTROL_TIMEOUT) -> T:
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def submit(self, coro: Coroutine[Any, Any, T]) -> "concurrent.futures.Future[T]":
        """Run ``coro`` on the control loop; returns its future (does not wait)."""
        with self._lock:
            if self._loop is None:
                self._start()
            loop = self._loop
        assert loop is not None
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def request(self, method: str, path: str, *, json_body: Any = None, params: Any = None, retry: bool = True) -> Any:
        """One call; raises the client's exceptions (authentication, 4xx, 5xx...)."""
        return self._run(self._http.request(method, path, json_body=json_body, params=params, retry=retry))

    # ------------------------------------------------------------------ API calls
    def whoami(self, retry: bool = False) -> dict:
        """``GET /whoami``: the identity of the key (authenticated: a wrong key fails here).

        Not retried by default: it is the probe made when a backend is created, and an
        offline machine should fall back to the device table at once.
        """
        out = self.request("GET", "whoami", retry=retry)
        return out if isinstance(out, dict) else {}

    def backends(self, retry: bool = True) -> list[dict]:
        """``GET /backends`` (public on IonQ's v0.4 API)."""
        out = self.request("GET", "backends", retry=retry)
        return out if isinstance(out, list) else []

    def characterizations(self, backend: str, limit: int = 1) -> list[dict]:
        """``GET /backends/{backend}/characterizations``, newest first."""
        out = self.request("GET", f"backends/{backend}/characterizations", params={"limit": str(limit)})
        chars = out.get("characterizations") if isinstance(out, dict) else None
        return [c for c in chars or [] if isinstance(c, dict)]

    def get_job(self, job_id: str) -> dict:
        """``GET /jobs/{id}``."""
        return self.request("GET", f"jobs/{job_id}")

    def cancel_job(self, job_id: str) -> dict:
        """``PUT /jobs/{id}/status/cancel``."""
        return self.request("PUT", f"jobs/{job_id}/status/cancel")

    def estimate(self, params: dict[str, str]) -> dict:
        """``GET /jobs/estimate``."""
        return self.request("GET", "jobs/estimate", params=params)

    def create_session(self, body: dict) -> dict:
        """``POST /sessions`` (not retried: a retry could open a second session)."""
        return self.request("POST", "sessions", json_body=body, retry=False)

    def get_session(self, session_id: str) -> dict:
        """``GET /sessions/{id}``."""
        return self.request("GET", f"sessions/{session_id}")

    def end_session(self, session_id: str) -> dict:
        """``POST /sessions/{id}/end`` (idempotent on the service)."""
        return self.request("POST", f"sessions/{session_id}/end")

    def close(self) -> None:
        """Close the HTTP session and stop the loop thread."""
        with self._lock:
            loop, self._loop, self._thread = self._loop, None, None
            finalizer = getattr(self, "_finalizer", None)
        if loop is not None and finalizer is not None:
            finalizer()  # runs _stop once


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread, http: IonQHttpClient) -> None:
    """Close ``http`` on ``loop``, then stop the loop and its thread."""
    if loop.is_closed():
        return
    try:
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(http.close(), loop).result(5)
    except Exception:  # noqa: BLE001 - best effort at shutdown
        pass
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()
