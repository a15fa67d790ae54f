"""``/backends`` and characterizations (public), and cirq-ionq's ``/calibrations``."""

from __future__ import annotations

import datetime as _dt
import math
import uuid
from typing import Any

from aiohttp import web

from .. import simulator as sim
from ..errors import ApiError, bad_request
from ..jobs import DOCUMENTED_NOISE_MODELS, iso
from ..state import ServerState, json_response, state_of

# Characterizations kept per QPU: one a day, the newest at server start.
CHARACTERIZATION_DAYS = 30
DAY = 86400.0


def backend_record(state: ServerState, name: str) -> dict[str, Any]:
    """The ``Backend`` record of ``name`` (IonQ's schema plus the local extras)."""
    info = state.backends[name]
    return {
        "backend": name,
        "status": "available",
        "qubits": info.qubits,
        "average_queue_time": int(state.config.queue_wait * 1000),
        "last_updated": iso(state.started_at),
        "degraded": False,
        "characterization_id": None if info.simulator else _characterization_id(
            name, _dates(state)[0]),
        # Not in IonQ's schema; read by this project's client.
        "has_access": True,
        "native_2q_gate": info.native_2q,
        "max_circuits_per_job": state.config.max_circuits_per_job,
        "max_shots": state.config.max_shots,
        "noise_models": list(DOCUMENTED_NOISE_MODELS) if info.simulator else [
            info.noise_model],
    }


async def list_backends(request: web.Request) -> web.Response:
    """``GET /backends`` (public, as documented)."""
    state = state_of(request)
    return json_response([backend_record(state, n) for n in state.backends])


async def get_backend(request: web.Request) -> web.Response:
    """``GET /backends/{name}`` (public; qiskit-ionq reads ``qubits``)."""
    state = state_of(request)
    return json_response(backend_record(state, state.lookup_backend(request.match_info["name"])))


def _dates(state: ServerState) -> list[float]:
    """Characterization times, newest first."""
    return [state.started_at - i * DAY for i in range(CHARACTERIZATION_DAYS)]


def _characterization_id(name: str, when: float) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"qstore-local/{name}/{int(when)}"))


def _characterization(state: ServerState, name: str, when: float) -> dict[str, Any]:
    info = state.backends[name]
    model = sim.NOISE_MODELS.get(info.noise_model)
    e1 = getattr(model, "error_1q", 0.0)
    e2 = getattr(model, "error_2q", 0.0)
    readout = getattr(model, "readout", 0.0)
    n = info.qubits
    return {
        "id": _characterization_id(name, when),
        "backend": name,
        "date": iso(when),
        "qubits": n,
        "connectivity": [[a, b] for a in range(n) for b in range(a + 1, n)],
        "fidelity": {
            "spam": {"median": 1 - readout},
            "1q": {"median": 1 - e1},
            "2q": {"median": 1 - e2},
        },
        "timing": {"readout": 0.0003, "reset": 0.00002, "1q": 0.000135, "2q": 0.0006,
                   "t1": 100.0, "t2": 1.0},
    }


def _qpu(state: ServerState, request: web.Request) -> str:
    name = state.lookup_backend(request.match_info["name"])
    if state.backends[name].simulator:
        raise ApiError(404, f"backend '{name}' has no characterizations (it is a simulator)")
    return name


def _time_bound(raw: str | None, key: str) -> float | None:
    """A ``start``/``end`` bound: an ISO date/time, or epoch milliseconds (cirq-ionq)."""
    if raw is None or raw == "":
        return None
    try:
        if raw.isdigit():
            return int(raw) / 1000.0
        value = _dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise bad_request(f"'{key}' must be a date (e.g. 2025-12-31) or epoch milliseconds",
                          keys=[key], source="query") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.timestamp()


def _int_param(request: web.Request, key: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"'{key}' must be an integer", keys=[key], source="query") from None
    if not low <= value <= high:
        raise bad_request(f"'{key}' must be between {low} and {high}", keys=[key],
                          source="query")
    return value


def _filtered_dates(state: ServerState, request: web.Request) -> list[float]:
    start = _time_bound(request.query.get("start"), "start")
    end = _time_bound(request.query.get("end"), "end")
    return [d for d in _dates(state)
            if (start is None or d >= start) and (end is None or d < end)]


async def list_characterizations(request: web.Request) -> web.Response:
    """``GET /backends/{name}/characterizations[?start&end&limit&page]``.

    Newest first; ``limit`` within [1, 10] (default 10), ``page`` from 1; ``pages`` is
    the total number of pages for the filter. Empty for the simulator.
    """
    state = state_of(request)
    name = state.lookup_backend(request.match_info["name"])
    limit = _int_param(request, "limit", 10, 1, 10)
    page = _int_param(request, "page", 1, 1, 10**6)
    # The simulator is never characterized: an empty list (qiskit-ionq asks for it).
    dates = [] if state.backends[name].simulator else _filtered_dates(state, request)
    chunk = dates[(page - 1) * limit: page * limit]
    return json_response({
        "characterizations": [_characterization(state, name, d) for d in chunk],
        "pages": max(1, math.ceil(len(dates) / limit)),
    })


async def get_characterization(request: web.Request) -> web.Response:
    """``GET /backends/{name}/characterizations/{cid}``."""
    state = state_of(request)
    name = _qpu(state, request)
    for when in _dates(state):
        if _characterization_id(name, when) == request.match_info["cid"]:
            return json_response(_characterization(state, name, when))
    raise ApiError(404, f"characterization '{request.match_info['cid']}' not found")


# cirq-ionq 1.x calls the pre-v0.4 ``/calibrations`` routes for its single ``qpu``
# target. They are answered with the characterization of ``qpu.aria-1`` (the backend
# the alias ``qpu`` means), plus the ``target`` field cirq-ionq reads.
CALIBRATION_BACKEND = "qpu.aria-1"


def _calibration(state: ServerState, when: float) -> dict[str, Any]:
    record = _characterization(state, CALIBRATION_BACKEND, when)
    record["target"] = "qpu"
    return record


async def current_calibration(request: web.Request) -> web.Response:
    """``GET /calibrations/current`` (cirq-ionq): the newest calibration."""
    state = state_of(request)
    return json_response(_calibration(state, _dates(state)[0]))


async def list_calibrations(request: web.Request) -> web.Response:
    """``GET /calibrations[?start&end&limit&next]`` (cirq-ionq), newest first.

    ``next`` (the id to continue after) is left out of the last page.
    """
    state = state_of(request)
    limit = _int_param(request, "limit", 100, 1, 1000)
    dates = _filtered_dates(state, request)
    cursor = request.query.get("next")
    if cursor:
        ids = [_characterization_id(CALIBRATION_BACKEND, d) for d in dates]
        if cursor not in ids:
            raise bad_request("unknown 'next' cursor", keys=["next"], source="query")
        dates = dates[ids.index(cursor) + 1:]
    page = dates[:limit]
    out: dict[str, Any] = {"calibrations": [_calibration(state, d) for d in page]}
    if len(dates) > limit:
        out["next"] = _characterization_id(CALIBRATION_BACKEND, page[-1])
    return json_response(out)


__all__ = ["list_backends", "get_backend", "list_characterizations", "get_characterization",
           "current_calibration", "list_calibrations", "backend_record"]
