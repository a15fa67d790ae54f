"""Exceptions raised by :mod:`qstore_qiskit.client`.

Every message is built by this package from status codes, job ids and the server's
error text; none of them ever contains the API key (the request headers are never
formatted into a message, and the authentication error is raised ``from None`` so
that no low-level exception carrying the request is chained to it).
"""

from __future__ import annotations

from collections.abc import Iterable


def _rebuild(cls: type, args: tuple, state: dict) -> "IonQClientError":
    """Unpickle an :class:`IonQClientError` without calling its ``__init__``."""
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class IonQClientError(Exception):
    """Base class of every error raised by the batching client.

    Every subclass pickles (to a Ray task, a process pool) with its message and
    attributes intact: ``Exception``'s default pickling calls ``cls(*args)``, which the
    subclasses' own ``__init__`` signatures do not accept.
    """

    def __reduce__(self):
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class IonQAuthenticationError(IonQClientError):
    """The API rejected the credentials (HTTP 401 or 403)."""

    def __init__(self, status: int, message: str = "") -> None:
        self.status = status
        detail = f": {message}" if message else ""
        super().__init__(
            f"IonQ API rejected the credentials (HTTP {status}){detail}. "
            "Check the API key passed as `token` or set in IONQ_API_KEY."
        )


class IonQRequestError(IonQClientError):
    """The API rejected a request (HTTP 4xx other than 401/403/429)."""

    def __init__(self, status: int, message: str, method: str = "", path: str = "") -> None:
        self.status = status
        self.server_message = message
        where = f" {method} {path}" if method else ""
        super().__init__(f"IonQ API error {status}{where}: {message}")


class IonQServerError(IonQClientError):
    """The API kept failing with 5xx responses (after all retries)."""

    def __init__(self, status: int, message: str = "", method: str = "", path: str = "") -> None:
        self.status = status
        self.server_message = message
        where = f" {method} {path}" if method else ""
        super().__init__(f"IonQ API server error {status}{where}: {message or 'no detail'}")


class IonQRateLimitError(IonQServerError):
    """HTTP 429 after all retries.  ``retry_after`` is the server's hint in seconds."""

    def __init__(self, retry_after: float | None, method: str = "", path: str = "") -> None:
        super().__init__(429, "rate limited", method, path)
        self.retry_after = retry_after


class IonQConnectionError(IonQClientError):
    """The API could not be reached (connection refused/reset, timeouts) after all retries."""


class IonQResponseError(IonQClientError):
    """A response was malformed: bad or truncated JSON, missing fields, wrong number of
    child jobs or results, or results inconsistent with the submitted qubit count."""


class IonQJobFailedError(IonQClientError):
    """A job finished with status ``failed`` or ``canceled``."""

    def __init__(self, job_id: str, status: str, code: str = "", error: str = "") -> None:
        self.job_id = job_id
        self.status = status
        self.code = code
        self.error = error
        detail = f" ({code}: {error})" if (code or error) else ""
        super().__init__(f"IonQ job {job_id} {status}{detail}")


class QueueTimeoutError(IonQClientError):
    """Jobs did not finish within ``max_queue_wait_time``.

    The jobs are *not* cancelled or forgotten: pass :attr:`job_ids` to
    :meth:`BatchSubmitter.retrieve` later to collect their results.
    """

    def __init__(self, job_ids: Iterable[str], waited: float) -> None:
        self.job_ids = list(job_ids)
        self.waited = waited
        super().__init__(
            f"{len(self.job_ids)} IonQ job(s) still queued after {waited:.1f} s: "
            f"{', '.join(self.job_ids)}; retrieve them later with BatchSubmitter.retrieve()"
        )


class SubmitterClosedError(IonQClientError):
    """Work was handed to a :class:`BatchSubmitter` that is closed."""



def redact_exception(exc: BaseException, redact) -> BaseException:
    """Remove the API key from an exception's text before a caller or a log sees it.

    Messages quote server text (error bodies, failure messages, ids, names); a server
    that echoes the request headers would otherwise put the key there.

    Args:
        exc: the exception, changed in place and returned.
        redact: ``str -> str`` that replaces the key
            (:meth:`IonQHttpClient.redact <qstore_qiskit.client.rest.IonQHttpClient.redact>`).
    """
    if any(isinstance(a, str) and redact(a) != a for a in exc.args):
        exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
    for attr in ("server_message", "error", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, str):
            setattr(exc, attr, redact(value))
    if exc.__cause__ is not None or exc.__context__ is not None:
        # Chained low-level errors may carry request details: keep only their type.
        exc.__suppress_context__ = True
        if exc.__cause__ is not None and redact(str(exc.__cause__)) != str(exc.__cause__):
            exc.__cause__ = None
    return exc


__all__ = [
    "IonQClientError",
    "IonQAuthenticationError",
    "IonQRequestError",
    "IonQServerError",
    "IonQRateLimitError",
    "IonQConnectionError",
    "IonQResponseError",
    "IonQJobFailedError",
    "QueueTimeoutError",
    "SubmitterClosedError",
    "redact_exception",
]
