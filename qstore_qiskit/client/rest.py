"""Async IonQ REST client on one pooled :class:`aiohttp.ClientSession`.

Wire format follows qiskit-ionq's ``IonQClient`` (API v0.4): ``Authorization: apiKey
<token>`` header, JSON bodies, ``POST /jobs``, ``GET /jobs/{id}``, ``GET /jobs?ids=...``,
``PUT /jobs/{id}/status/cancel`` and results fetched from the job's
``results.probabilities.url``.

Retries use :mod:`tenacity` (``AsyncRetrying`` works natively with asyncio) with
exponential backoff and full jitter on connection errors, timeouts and 5xx; on 429 the
wait is the server's ``Retry-After``.  A client-side :class:`aiolimiter.AsyncLimiter`
caps the request rate.  A 429 does not count against ``max_retries`` (nothing was done);
waiting through 429s is bounded by ``rate_limit_deadline`` instead.

The API key goes to the configured origin only: absolute URLs read from responses and
redirect targets are followed only when their scheme, host and port equal the base
URL's (redirects are followed by hand, never by ``aiohttp``), and server-provided text
is redacted (:meth:`IonQHttpClient.redact`) before it enters an exception.

Requests that are *not* idempotent (job creation) are never
retried here: :class:`~qstore_qiskit.client.submitter.BatchSubmitter` resolves an
ambiguous create by looking the job up by its submission id first.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import random
import re
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from ..gc_pause import cyclic_gc_paused
from .exceptions import (
    IonQAuthenticationError,
    IonQConnectionError,
    IonQRateLimitError,
    IonQRequestError,
    IonQResponseError,
    IonQServerError,
)

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://api.ionq.co/v0.4"
_MAX_ERROR_TEXT = 500
_MAX_REDIRECTS = 3


@functools.lru_cache(maxsize=1)
def _user_agent() -> str:
    # Cached: qiskit-ionq reads its version through importlib metadata (0.8 ms, once
    # per submitter before).
    try:  # same shape as qiskit-ionq's, so the service sees a familiar client
        from qiskit_ionq.helpers import get_user_agent

        base = get_user_agent()
    except Exception:  # pragma: no cover - qiskit-ionq is a dependency
        base = "qiskit-ionq"
    from ..version import __version__

    return f"qstore-qiskit/{__version__} {base}"


def _origin_key(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of a URL, the port made explicit (443/80 by default)."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    try:
        port = parts.port
    except ValueError:  # a malformed port never matches
        return (scheme, "", -1)
    if port is None:
        port = {"https": 443, "http": 80}.get(scheme)
    return (scheme, (parts.hostname or "").lower(), port)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_credentials(token: str | None, url: str | None) -> tuple[str | None, str]:
    """Token and base URL, falling back to ``IONQ_API_KEY`` etc. like qiskit-ionq."""
    try:
        from qiskit_ionq.helpers import resolve_credentials as _resolve

        creds = _resolve(token, url)
        return creds["token"], creds["url"]
    except Exception:  # pragma: no cover
        import os

        return token or os.getenv("IONQ_API_KEY"), url or DEFAULT_URL


class RetriableError(Exception):
    """Internal: a failure worth retrying.  ``cause`` names it for the statistics."""

    def __init__(self, cause: str, final: Exception, retry_after: float | None = None):
        super().__init__(str(final))
        self.cause = cause
        # Callers that retry on their own (job creation) need the cause to tell a
        # failure before the request was sent ("connect") from an ambiguous one.
        final.cause = cause  # type: ignore[attr-defined]
        self.final = final
        self.retry_after = retry_after


class IonQHttpClient:
    """Minimal async IonQ API client.

    Must be used from a single event loop (the session is created lazily in it).

    Args:
        token: API key; ``None`` reads ``IONQ_API_KEY`` like qiskit-ionq.
        url: API base URL (default ``https://api.ionq.co/v0.4``).
        connection_pool_size: max simultaneous TCP connections (``TCPConnector(limit=)``).
        request_timeout: total timeout of one HTTP request, seconds.
        max_retries: retries of a retriable failure (not counting the first attempt).
        rate_limit: ``(requests, per_seconds)`` client-side limit, or ``None``.
        allow_insecure_http: allow ``http://`` to non-loopback hosts.
        rate_limit_deadline: seconds a request may keep waiting out HTTP 429 answers
            (``Retry-After`` or backoff) before :class:`IonQRateLimitError` is raised.
            A 429 means nothing was done, so it does not count against ``max_retries``.
        backoff_base: first backoff step, seconds (doubles per retry, full jitter).
        backoff_max: largest backoff step, seconds.
    """

    def __init__(
        self,
        token: str | None = None,
        url: str | None = None,
        *,
        connection_pool_size: int = 16,
        request_timeout: float = 30.0,
        max_retries: int = 6,
        rate_limit: tuple[float, float] | None = None,
        allow_insecure_http: bool = False,
        rate_limit_deadline: float = 300.0,
        backoff_base: float = 0.05,
        backoff_max: float = 5.0,
    ) -> None:
        token, url = resolve_credentials(token, url)
        url = url.rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme in {url!r}")
        if parts.scheme == "http" and not _is_loopback(parts.hostname) and not allow_insecure_http:
            raise ValueError(
                f"refusing plain http:// to non-loopback host {parts.hostname!r}: the API key "
                "would travel unencrypted; use https:// or pass allow_insecure_http=True"
            )
        self._token = token
        self.url = url
        # "/v0.4" prefix, stripped from server-relative result URLs like qiskit-ionq does.
        self._origin = f"{parts.scheme}://{parts.netloc}"
        # The only (scheme, host, port) the API key is ever sent to (see _full_url).
        self._origin_key = _origin_key(url)
        self.rate_limit_deadline = rate_limit_deadline
        self.connection_pool_size = connection_pool_size
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.rate_limit = rate_limit
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._session: aiohttp.ClientSession | None = None
        self._limiter: AsyncLimiter | None = None
        self._user_agent = _user_agent()
        # Statistics (read by BatchSubmitter.stats()).
        self.requests: Counter[str] = Counter()  # "GET /jobs/{id}" style keys -> attempts
        self.retries: Counter[str] = Counter()  # cause -> retries
        self.responses: Counter[int] = Counter()  # status code -> count
        self.rtt = 0.0  # EWMA of successful GET latencies, seconds (poll scheduling)

    def __repr__(self) -> str:  # never shows the token
        return f"{type(self).__name__}(url={self.url!r}, pool={self.connection_pool_size})"

    @property
    def has_token(self) -> bool:
        """Whether a token is configured."""
        return bool(self._token)

    async def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.connection_pool_size, ssl=True)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                # The token lives only in this per-session default header set.
                headers={
                    **({"Authorization": f"apiKey {self._token}"} if self._token else {}),
                    "Content-Type": "application/json",
                    "User-Agent": self._user_agent,
                },
                raise_for_status=False,
            )
            if self.rate_limit:
                self._limiter = AsyncLimiter(*self.rate_limit)
        return self._session

    async def close(self) -> None:
        """Close the session and its connection pool."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # ------------------------------------------------------------------ requests
    def redact(self, text: str) -> str:
        """``text`` with the API key replaced by ``***`` (for text the client did not write).

        Keys shorter than 8 characters (test keys like ``"k"``; IonQ keys are far
        longer) are not redacted: replacing them would mangle ordinary words."""
        if self._token and len(self._token) >= 8 and isinstance(text, str) and self._token in text:
            return text.replace(self._token, "***")
        return text

    def _full_url(self, path: str) -> str:
        """Absolute URL of ``path``; an absolute URL must be on the configured origin.

        URLs read from responses (``results.probabilities.url``, redirects) are followed
        only when their scheme, host and port equal the base URL's: the session sends
        the API key with every request, so any other origin would receive it.

        Raises:
            IonQResponseError: ``path`` points to another origin (nothing is sent).
        """
        if "://" in path or path.startswith("//"):
            if _origin_key(path) != self._origin_key:
                shown = self.redact(urlsplit(path)._replace(query="", fragment="").geturl())[:200]
                raise IonQResponseError(
                    f"refusing to follow {shown!r}: it is not on the configured API origin "
                    f"{self._origin!r} (the API key is only sent there)"
                )
            return path
        if re.match(r"^/v\d+\.\d+/", path):  # server-relative, already versioned
            return self._origin + path
        return f"{self.url}/{path.lstrip('/')}"

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetriableError) and exc.retry_after is not None:
            # Drawn once per failure (the stop check and the sleep see the same value).
            if getattr(exc, "_wait", None) is None:
                exc._wait = retry_after_wait(exc.retry_after)  # type: ignore[attr-defined]
            return exc._wait  # type: ignore[attr-defined]
        # Full jitter (AWS architecture blog): uniform(0, min(cap, base * 2^n)).
        step = min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))
        return random.uniform(step / 2, step)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Any = None,
        retry: bool = True,
        label: str | None = None,
        decode: bool = True,
    ) -> Any:
        """One API call with retries; returns the decoded JSON body.

        Args:
            method: HTTP verb.
            path: path under the base URL (``"jobs/abc"``) or server-relative ``/v0.4/...``.
            json_body: JSON request body.
            params: query parameters.
            retry: retry retriable failures (disable for non-idempotent calls).
            label: key for the request statistics (defaults to ``method path``).
            decode: ``False`` returns the successful response's body as bytes, for the
                caller to decode with :func:`decode_json` only if it needs it (a
                speculative fetch whose job turned out unfinished never does).

        Raises:
            IonQAuthenticationError: 401/403.
            IonQRequestError: other 4xx.
            IonQServerError: 5xx after all retries (``IonQRateLimitError`` for 429).
            IonQConnectionError: network failures/timeouts after all retries.
            IonQResponseError: body is not valid JSON.
        """
        label = label or f"{method} {path}"
        started = time.monotonic()
        failures: Counter[str] = Counter()  # per call: 429s and other retriable failures

        def _stop(state: RetryCallState) -> bool:
            # A 429 created nothing: it is bounded by the rate-limit deadline, not by
            # max_retries (issue #12 item 15); every other failure counts as a retry.
            exc = state.outcome.exception() if state.outcome else None
            if not retry:
                return True
            if isinstance(exc, RetriableError) and exc.cause == "429":
                failures["429"] += 1
                return time.monotonic() - started + self._wait(state) > self.rate_limit_deadline
            failures["other"] += 1
            return failures["other"] > self.max_retries

        def _before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            cause = exc.cause if isinstance(exc, RetriableError) else type(exc).__name__
            self.retries[cause] += 1
            logger.debug("retrying %s after %s (attempt %d)", label, cause, state.attempt_number)

        # The first attempt runs outside tenacity: nearly every request succeeds at once,
        # and setting up AsyncRetrying costs ~40 us of the loop thread per request (it
        # competes with the caller for the GIL). A retriable failure is replayed as
        # tenacity's first attempt, so stop, wait and before_sleep see exactly what they
        # saw when tenacity made that attempt itself.
        try:
            return await self._once(method, path, json_body, params, label, decode)
        except RetriableError as exc:
            replay = [exc]
        try:
            async for attempt in AsyncRetrying(
                stop=_stop,
                wait=self._wait,
                retry=retry_if_exception(lambda e: isinstance(e, RetriableError)),
                before_sleep=_before_sleep,
                reraise=True,
            ):
                with attempt:
                    if replay:
                        raise replay.pop()
                    return await self._once(method, path, json_body, params, label, decode)
        except RetriableError as exc:
            raise exc.final from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, method: str, path: str, json_body: Any, params: Any, label: str, decode: bool = True) -> Any:
        session = await self._ensure_session()
        if self._limiter is not None:
            await self._limiter.acquire()
        self.requests[label] += 1
        url = self._full_url(path)
        shown = self.redact(path)  # a path read from a response is server text
        data = None if json_body is None else _dumps(json_body)
        started = time.monotonic()
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                # Redirects are followed by hand, only within the configured origin:
                # aiohttp would send the Authorization header to wherever they point.
                async with session.request(method, url, data=data, params=params, allow_redirects=False) as resp:
                    status = resp.status
                    self.responses[status] += 1
                    raw = await resp.read()
                    retry_after = resp.headers.get("Retry-After")
                    location = resp.headers.get("Location")
                if status not in (301, 302, 303, 307, 308) or not location:
                    break
                url = self._full_url(str(resp.url.join(URL(location))))
                params = None  # the Location carries its own query
                if status == 303:
                    method, data = "GET", None
            else:
                raise IonQResponseError(f"{method} {shown}: more than {_MAX_REDIRECTS} redirects")
            if method == "GET" and status < 300:
                took = time.monotonic() - started
                self.rtt = took if not self.rtt else 0.8 * self.rtt + 0.2 * took
        except asyncio.TimeoutError as exc:
            raise RetriableError(
                "timeout", IonQConnectionError(f"{method} {shown} timed out after {self.request_timeout} s")
            ) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise RetriableError(
                "disconnect", IonQConnectionError(f"{method} {shown}: connection dropped ({type(exc).__name__})")
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise RetriableError(
                "connect", IonQConnectionError(f"{method} {shown}: cannot connect ({exc.os_error})")
            ) from exc
        except aiohttp.ClientError as exc:
            raise RetriableError(
                "client_error", IonQConnectionError(f"{method} {shown}: {type(exc).__name__}")
            ) from exc
        if 200 <= status < 300:
            return decode_json(raw, f"{method} {shown}", status) if decode else raw
        text = raw.decode("utf-8", errors="replace")
        if status in (401, 403):
            # Name the problem, never the key; raise from None (nothing chained).
            raise IonQAuthenticationError(status, self.redact(_error_message(text))) from None
        if status == 429:
            hint = _parse_retry_after(retry_after)
            raise RetriableError(
                "429", IonQRateLimitError(hint, method, shown), retry_after=hint if hint is not None else None
            )
        if status >= 500:
            raise RetriableError(
                f"{status}", IonQServerError(status, self.redact(_error_message(text)), method, shown)
            )
        if status >= 400:
            raise IonQRequestError(status, self.redact(_error_message(text)), method, shown)
        if 300 <= status < 400:
            raise IonQResponseError(f"{method} {shown}: HTTP {status} without a usable Location")
        return decode_json(raw, f"{method} {shown}", status) if decode else raw  # 1xx

    # -------------------------------------------------------------- API calls
    async def create_job(self, body: dict) -> dict:
        """``POST /jobs`` once (no retry; see the module docstring)."""
        return await self.request("POST", "jobs", json_body=body, retry=False, label="POST /jobs")

    async def get_job(self, job_id: str) -> dict:
        """``GET /jobs/{id}``."""
        return await self.request("GET", f"jobs/{job_id}", label="GET /jobs/{id}")

    async def list_jobs(self, params: dict | list | None = None, *, decode: bool = True) -> Any:
        """``GET /jobs`` with filters (``ids``, ``status``, ``limit``, ``next``, ...);
        ``decode=False``: the body's bytes (see :meth:`request`)."""
        return await self.request("GET", "jobs", params=params, label="GET /jobs", decode=decode)

    async def get_results(self, url: str, *, decode: bool = True) -> Any:
        """Fetch a results URL (as advertised in the job's ``results`` map); ``decode=False``:
        the body's bytes (see :meth:`request`)."""
        return await self.request("GET", url, label="GET results", decode=decode)

    async def cancel_job(self, job_id: str) -> dict:
        """``PUT /jobs/{id}/status/cancel``."""
        return await self.request("PUT", f"jobs/{job_id}/status/cancel", label="PUT cancel")

    async def get_backend(self, backend: str) -> dict:
        """``GET /backends/{backend}``."""
        return await self.request("GET", f"backends/{backend}", label="GET /backends/{b}")


try:  # orjson (when installed) encodes job bodies and decodes results ~3x faster
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None


def _dumps(body: Any) -> str | bytes:
    """Compact JSON of a request body (bytes from orjson; anything it cannot encode,
    e.g. non-string keys, through the standard library)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(body)
        except TypeError:
            pass
    return json.dumps(body, separators=(",", ":"))


def _loads(data: bytes | str) -> Any:
    """Decode a response; ``json.JSONDecodeError`` (orjson's error subclasses it) on bad JSON."""
    return _orjson.loads(data) if _orjson is not None else json.loads(data)


#: Response bodies at least this long are decoded with the cyclic garbage collector paused.
LARGE_BODY = 1 << 16


def decode_json(raw: bytes, what: str, status: int = 200) -> Any:
    """A successful response's JSON (``None`` for an empty body), decoded from the bytes
    as they came (no text copy of a multi-megabyte body first).

    A large body (a multicircuit job's results: 7 MB for 1,000 circuits of 8 qubits, its
    child list: 1.2 MB) becomes thousands of new containers at once. CPython counts each
    towards its collection thresholds: decoding one set off dozens of young collections,
    every tenth of them older ones that moved everything alive (the job's payloads)
    towards the oldest generation, and so full collections of the whole heap, all for
    objects that hold no reference cycle. So such bodies are decoded with the automatic
    collector paused (:func:`~qstore_qiskit.gc_pause.cyclic_gc_paused`, the
    compiler's and template binder's pause; the next automatic collection sees the new
    objects once).

    Raises:
        IonQResponseError: the body is not JSON (or not UTF-8).
    """
    try:
        if not raw.strip():
            return None
        if len(raw) < LARGE_BODY:
            return _loads(raw)
        with cyclic_gc_paused():
            return _loads(raw)
    except json.JSONDecodeError as exc:
        raise IonQResponseError(
            f"{what}: malformed JSON in HTTP {status} response ({exc.msg} at char {exc.pos})"
        ) from None


def retry_after_wait(retry_after: float) -> float:
    """Seconds to wait after a 429: the server's ``Retry-After`` plus up to 50% jitter
    (at most 1 s), so that requests throttled together do not all return together."""
    base = min(max(retry_after, 0.0), 60.0)
    return base + random.uniform(0.0, min(0.5 * base, 1.0) if base else 0.05)


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _error_message(text: str) -> str:
    """The server's error message from an IonQ error body (``{"error": ..., "message": ...}``)."""
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text.strip()[:_MAX_ERROR_TEXT]
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "message", "detail") if body.get(k)]
        if isinstance(body.get("error"), dict):
            parts = [str(body["error"].get("message") or body["error"])]
        return ": ".join(parts)[:_MAX_ERROR_TEXT] or text[:_MAX_ERROR_TEXT]
    return text[:_MAX_ERROR_TEXT]


__all__ = ["IonQHttpClient", "DEFAULT_URL", "decode_json", "resolve_credentials"]
