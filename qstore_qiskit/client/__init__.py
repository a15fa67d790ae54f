"""Pooled, coalescing, retrying async submitter for the IonQ API.

* :class:`BatchSubmitter` - hand circuits in from any thread or event loop, get futures.
* :class:`CircuitResult` - per-circuit probabilities and counts.
* :class:`IonQHttpClient` - the async REST client underneath.
* exceptions: :class:`IonQAuthenticationError`, :class:`IonQRequestError`,
  :class:`IonQServerError`, :class:`IonQResponseError`, :class:`IonQJobFailedError`,
  :class:`QueueTimeoutError`, ...

See ``docs/client.rst``.
"""

from .counts import build_counts
from .exceptions import (
    IonQAuthenticationError,
    IonQClientError,
    IonQConnectionError,
    IonQJobFailedError,
    IonQRateLimitError,
    IonQRequestError,
    IonQResponseError,
    IonQServerError,
    QueueTimeoutError,
    SubmitterClosedError,
)
from .rest import IonQHttpClient
from .results import CircuitResult
from .submitter import BatchSubmitter

__all__ = [
    "BatchSubmitter",
    "CircuitResult",
    "IonQHttpClient",
    "build_counts",
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
]
