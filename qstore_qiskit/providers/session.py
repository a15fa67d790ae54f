"""IonQ sessions: QPU jobs of one experiment share a reservation.

Modelled on ``qiskit_ibm_runtime.Session`` and ``qiskit_ionq.Session``::

    with backend.session(max_cost=25.0) as session:   # or Session(backend, ...)
        job = backend.run(circuits)           # carries session_id=session.session_id
        job2 = session.run(more_circuits)     # the same

Opening ``POST /sessions``; closing ``POST /sessions/{id}/end``, also when the block
raises (then, as in qiskit-ionq, the session's unfinished jobs are cancelled first). Unlike qiskit-ionq's, entering the block does not replace ``backend.run`` on the
object (which other threads may be using): the session is attached to the calling
thread only, so a ``run`` in another thread is not silently billed to this session.

``max_cost`` is checked by the client before every submission in the session: the
service's estimate of everything the session has run plus what is about to be sent must
not exceed it (see :meth:`QStoreBackend.estimate_cost`); it is also sent as the
session's ``cost_limit`` so the service enforces it too.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .service import ServiceClient

_ACTIVE = threading.local()


def active_session() -> "Session | None":
    """The session entered (``with``) in this thread, if any."""
    stack = getattr(_ACTIVE, "stack", None)
    return stack[-1] if stack else None


class Session:
    """One IonQ session on one backend (qiskit-ionq's ``Session`` signature).

    Args:
        backend: the :class:`~qstore_qiskit.QStoreBackend` to run on.
        max_time: session duration limit, minutes.
        max_cost: cost limit in the service's unit (USD); checked before every submission.
        max_jobs: job count limit.
        create_new: create a session (``True``), or attach to ``session_id``.
        session_id: attach to an existing session instead of creating one.

    Raises:
        ValueError: neither ``create_new`` nor a ``session_id``.
        qstore_qiskit.client.IonQClientError: the service refused (e.g. unknown id).
    """

    def __init__(
        self,
        backend: Any,
        *,
        max_time: int | None = None,
        max_cost: float | None = None,
        max_jobs: int | None = None,
        create_new: bool = True,
        session_id: str | None = None,
    ) -> None:
        self._backend = backend
        self.owner = backend
        self._service: "ServiceClient" = backend._provider._service(backend)
        self._backend_name: str = backend._api_backend
        self.max_cost = None if max_cost is None else float(max_cost)
        self._spent_lock = threading.Lock()
        self._estimated_spend = 0.0
        self._closed = False
        if session_id is not None:
            if not isinstance(session_id, str) or not session_id:
                raise ValueError(f"session_id must be a non-empty string, got {session_id!r}")
            self._session_id = session_id
            self.details()  # raises if the service does not know it
            return
        if not create_new:
            raise ValueError("Either create_new must be True or a session_id supplied.")
        settings: dict[str, Any] = {}
        if max_jobs is not None:
            settings["job_count_limit"] = int(max_jobs)
        if max_time is not None:
            settings["duration_limit_min"] = int(max_time)
        if max_cost is not None:
            settings["cost_limit"] = {"unit": "usd", "value": float(max_cost)}
        resp = self._service.create_session({"backend": self._backend_name, "settings": settings})
        if not isinstance(resp, dict) or not isinstance(resp.get("id"), str):
            from ..client import IonQResponseError

            raise IonQResponseError("POST /sessions: response has no session id")
        self._session_id = resp["id"]

    @classmethod
    def from_id(cls, session_id: str, *, backend: Any) -> "Session":
        """Attach to an existing session (qiskit-ionq's ``Session.from_id``)."""
        return cls(backend, session_id=session_id, create_new=False)

    def __repr__(self) -> str:
        return f"<Session({self._session_id!r}, backend={self._backend_name!r})>"

    @property
    def session_id(self) -> str:
        """The IonQ session id."""
        return self._session_id

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def details(self) -> dict:
        """``GET /sessions/{id}``: the service's record of this session."""
        return self._service.get_session(self._session_id)

    def status(self) -> str | None:
        """The session's state as the service reports it (e.g. ``"active"``, ``"ended"``)."""
        doc = self.details()
        return doc.get("status") or doc.get("state")

    def usage(self) -> float | None:
        """Seconds of QPU time used so far, as the service reports it (``usage_time``)."""
        return self.details().get("usage_time")

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """``backend.run`` inside this session."""
        kwargs["session_id"] = self._session_id
        return self._backend.run(*args, **kwargs)

    def reserve(self, cost: float) -> None:
        """Account ``cost`` (an estimate) against ``max_cost``, or refuse.

        Raises:
            CostLimitError: the session's estimated spend would exceed ``max_cost``.
        """
        from .cost import CostLimitError

        with self._spent_lock:
            if self.max_cost is not None and self._estimated_spend + cost > self.max_cost:
                raise CostLimitError(
                    f"session {self._session_id}: estimated cost {cost:g} on top of {self._estimated_spend:g} "
                    f"already run exceeds the session's max_cost {self.max_cost:g}; nothing was sent"
                )
            self._estimated_spend += cost

    @property
    def estimated_spend(self) -> float:
        """Sum of the estimates of everything submitted in this session from this client."""
        with self._spent_lock:
            return self._estimated_spend

    def cancel(self) -> None:
        """Cancel this session's queued and running jobs (``GET /jobs?session_id=``)."""
        page = self._service.request("GET", "jobs", params={"session_id": self._session_id})
        for job in (page or {}).get("jobs", []) if isinstance(page, dict) else []:
            if isinstance(job, dict) and job.get("status") in ("submitted", "ready", "started"):
                self._service.cancel_job(job["id"])

    def close(self) -> None:
        """End the session (``POST /sessions/{id}/end``); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._service.end_session(self._session_id)

    def __enter__(self) -> "Session":
        stack = getattr(_ACTIVE, "stack", None)
        if stack is None:
            stack = _ACTIVE.stack = []
        stack.append(self)
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        stack = getattr(_ACTIVE, "stack", [])
        if stack and stack[-1] is self:
            stack.pop()
        try:
            if exc_type is not None:
                # As qiskit-ionq: the block failed, so its queued jobs are not wanted.
                self.cancel()
        finally:
            self.close()
