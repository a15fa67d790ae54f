"""Sessions (``/sessions``): records, limits and the store.

A session reserves a backend for a series of jobs. Its record follows IonQ's v0.4
``Session`` schema; its status goes ``created`` -> ``started`` (first job) ->
``ended`` (``POST /sessions/{id}/end``, or a limit reached). The limits a session can
carry (``settings.job_count_limit``, ``duration_limit_min``, ``cost_limit``) are
enforced when a job is bound to it: a job beyond a limit is refused with a 400 and
nothing is stored.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, bad_request

ORGANIZATION_ID = "local-organization"
PROJECT_ID = "local-project"
CREATOR_ID = "local-user"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _limit_int(value: Any, key: str, low: int = 1, high: int = 1_000_000) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)  # qiskit-ionq passes max_time through as given
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise bad_request(f"'settings.{key}' must be an integer in [{low}, {high}]",
                          keys=[f"settings.{key}"])
    return value


@dataclass
class Session:
    """One session and its accounting."""

    id: str
    backend: str
    created: float
    job_count_limit: int | None = None
    duration_limit_min: int | None = None
    cost_limit: dict[str, Any] | None = None
    started: float | None = None
    ended: float | None = None
    jobs: int = 0
    cost: float = 0.0

    @property
    def expires_at(self) -> float | None:
        """When the duration limit ends the session (``None``: no limit)."""
        if self.duration_limit_min is None:
            return None
        return self.created + 60.0 * self.duration_limit_min

    def refresh(self, now: float | None = None) -> None:
        """End the session if its duration limit has passed."""
        now = time.time() if now is None else now
        expires = self.expires_at
        if self.ended is None and expires is not None and now >= expires:
            self.ended = expires

    @property
    def status(self) -> str:
        """``created``, ``started`` or ``ended``."""
        if self.ended is not None:
            return "ended"
        return "started" if self.started is not None else "created"

    def render(self) -> dict[str, Any]:
        """The v0.4 ``Session`` record."""
        self.refresh()
        settings: dict[str, Any] = {}
        if self.job_count_limit is not None:
            settings["job_count_limit"] = self.job_count_limit
        if self.duration_limit_min is not None:
            settings["duration_limit_min"] = self.duration_limit_min
            settings["expires_at"] = _iso(self.expires_at)
        if self.cost_limit is not None:
            settings["cost_limit"] = dict(self.cost_limit)
        return {
            "id": self.id,
            "created_at": _iso(self.created),
            "organization_id": ORGANIZATION_ID,
            "backend": self.backend,
            "project_id": PROJECT_ID,
            "creator_id": CREATOR_ID,
            "ended_at": _iso(self.ended),
            "ender_id": CREATOR_ID if self.ended is not None else None,
            "settings": settings,
            "active": self.ended is None,
            "status": self.status,
            "started_at": _iso(self.started),
        }


def parse_session_request(body: Any, backends: dict[str, Any],
                          aliases: dict[str, str]) -> dict[str, Any]:
    """Validate a ``POST /sessions`` body.

    Accepts IonQ's documented ``settings`` keys; ``duration_limit`` (minutes) is taken
    as an alias of ``duration_limit_min``.

    Raises:
        ApiError: 400 naming the bad key.
    """
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    unknown = sorted(set(body) - {"backend", "settings"})
    if unknown:
        raise bad_request(f"unknown field(s) {unknown}", keys=unknown)
    backend = body.get("backend")
    if not isinstance(backend, str):
        raise bad_request("'backend' is required and must be a string", keys=["backend"])
    backend = aliases.get(backend, backend)
    if backend not in backends:
        raise bad_request(f"unknown backend '{backend}'; available: {sorted(backends)}",
                          keys=["backend"])
    settings = body.get("settings") or {}
    if not isinstance(settings, dict):
        raise bad_request("'settings' must be an object", keys=["settings"])
    known = {"job_count_limit", "duration_limit_min", "duration_limit", "cost_limit"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise bad_request(f"unknown session setting(s) {unknown}",
                          keys=[f"settings.{k}" for k in unknown])
    out: dict[str, Any] = {"backend": backend}
    if settings.get("job_count_limit") is not None:
        out["job_count_limit"] = _limit_int(settings["job_count_limit"], "job_count_limit")
    duration = settings.get("duration_limit_min", settings.get("duration_limit"))
    if duration is not None:
        out["duration_limit_min"] = _limit_int(duration, "duration_limit_min", 1, 60 * 24 * 7)
    cost = settings.get("cost_limit")
    if cost is not None:
        if not isinstance(cost, dict):
            raise bad_request("'settings.cost_limit' must be {unit, value}",
                              keys=["settings.cost_limit"])
        unit = cost.get("unit", "usd")
        value = cost.get("value")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if (unit != "usd" or isinstance(value, bool) or not isinstance(value, (int, float))
                or not 0 <= value <= 1e9):
            raise bad_request("'settings.cost_limit' must be {\"unit\": \"usd\", \"value\": "
                              "a number in [0, 1e9]}", keys=["settings.cost_limit"])
        out["cost_limit"] = {"unit": "usd", "value": float(value)}
    return out


class SessionStore:
    """Sessions by id (thread-safe).

    Args:
        max_sessions: Most sessions kept; creating one more first forgets the oldest
            ended one, and is refused (429) when all are still active.
    """

    def __init__(self, max_sessions: int = 1000):
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, fields: dict[str, Any]) -> Session:
        """Store a new session from :func:`parse_session_request` output."""
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                for sid, sess in list(self._sessions.items()):
                    sess.refresh()
                    if sess.ended is not None:
                        del self._sessions[sid]
                        break
                else:
                    raise ApiError(429, f"{self.max_sessions} sessions are active; end one "
                                        "first")
            session = Session(id=str(uuid.uuid4()), created=time.time(), **fields)
            self._sessions[session.id] = session
            return session

    def get(self, session_id: str) -> Session:
        """The session with ``session_id`` (404 if none)."""
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise ApiError(404, f"session '{session_id}' not found")
        session.refresh()
        return session

    def all(self) -> list[Session]:
        """Every session, oldest first."""
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            session.refresh()
        return sessions

    def end(self, session_id: str) -> Session:
        """End a session (idempotent)."""
        session = self.get(session_id)
        with self._lock:
            if session.ended is None:
                session.ended = time.time()
        return session

    def admit(self, session_id: Any, backend: str, cost: float) -> Session:
        """Check that a job for ``backend`` costing ``cost`` may join the session, and
        count it. Nothing is counted when it may not.

        Raises:
            ApiError: 400 for an unknown, ended or other-backend session or a limit.
        """
        if not isinstance(session_id, str):
            raise bad_request("'session_id' must be a string", keys=["session_id"])
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise bad_request(f"session '{session_id}' not found", keys=["session_id"])
        with self._lock:
            session.refresh()
            if session.ended is not None:
                raise bad_request(f"session '{session_id}' has ended", keys=["session_id"])
            if session.backend != backend:
                raise bad_request(
                    f"session '{session_id}' is for backend '{session.backend}', not "
                    f"'{backend}'", keys=["backend", "session_id"])
            if session.job_count_limit is not None and session.jobs >= session.job_count_limit:
                raise bad_request(
                    f"session '{session_id}' reached its job_count_limit of "
                    f"{session.job_count_limit}", keys=["session_id"])
            if session.cost_limit is not None and (
                session.cost + cost > session.cost_limit["value"]
            ):
                raise bad_request(
                    f"this job (estimated {cost:.2f} usd) would exceed session "
                    f"'{session_id}''s cost_limit of {session.cost_limit['value']} usd",
                    keys=["session_id"])
            session.jobs += 1
            session.cost += cost
            if session.started is None:
                session.started = time.time()
            return session


__all__ = ["Session", "SessionStore", "parse_session_request", "ORGANIZATION_ID"]
