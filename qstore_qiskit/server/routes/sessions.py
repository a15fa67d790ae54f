"""``/sessions``: create, list, get and end sessions (IonQ v0.4 ``Session`` records)."""

from __future__ import annotations

from aiohttp import web

from ..errors import bad_request
from ..jobs import BACKEND_ALIASES
from ..sessions_store import ORGANIZATION_ID, parse_session_request
from ..state import json_response, read_json, state_of


async def create_session(request: web.Request) -> web.Response:
    """``POST /sessions`` with ``{backend, settings?}`` -> 201 and the session record."""
    state = state_of(request)
    fields = parse_session_request(await read_json(request), state.backends, BACKEND_ALIASES)
    return json_response(state.sessions.create(fields).render(), status=201)


async def list_sessions(request: web.Request) -> web.Response:
    """``GET /sessions[?active=true|false]`` -> ``{organization_id, sessions}``."""
    state = state_of(request)
    active = request.query.get("active")
    if active is not None and active.lower() not in ("true", "false"):
        raise bad_request("'active' must be true or false", keys=["active"], source="query")
    sessions = [s.render() for s in state.sessions.all()]
    if active is not None:
        wanted = active.lower() == "true"
        sessions = [s for s in sessions if s["active"] is wanted]
    return json_response({"organization_id": ORGANIZATION_ID, "sessions": sessions})


async def get_session(request: web.Request) -> web.Response:
    """``GET /sessions/{session_id}``."""
    state = state_of(request)
    return json_response(state.sessions.get(request.match_info["session_id"]).render())


async def end_session(request: web.Request) -> web.Response:
    """``POST /sessions/{session_id}/end`` (idempotent) -> the ended session."""
    state = state_of(request)
    return json_response(state.sessions.end(request.match_info["session_id"]).render())


__all__ = ["create_session", "list_sessions", "get_session", "end_session"]
