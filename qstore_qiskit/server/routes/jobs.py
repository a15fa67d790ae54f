"""``/jobs``: create, list, get, cancel, delete; ``/jobs/estimate`` and ``/jobs/{id}/cost``."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from typing import Any

from aiohttp import web

from .. import pricing
from ..errors import ApiError, bad_request
from ..sim_process import simulation_work
from ..jobs import (
    FINAL_STATUSES,
    MULTI_TYPE,
    Job,
    JobSpec,
    matches_filters,
    render_job,
)
from ..state import (
    body_reservation,
    json_response,
    organization_of,
    read_body,
    read_json,
    state_of,
    version_of,
)

# The job-level fault drawn for a create request (applied by ``create_job``).
FAULT: web.RequestKey[str] = web.RequestKey("qstore_fault", str)

# Largest gate count / qubit count an estimate takes (beyond: 400, never an overflow).
MAX_ESTIMATE_GATES = 10**9
MAX_ESTIMATE_QUBITS = 1024


class ConnectionDropped(Exception):
    """Raised after the transport was closed on purpose."""


def drop_connection(request: web.Request) -> None:
    """Close the connection without answering (the client sees a reset/EOF)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise ConnectionDropped()


def _error_mitigation(spec: JobSpec) -> bool:
    settings = spec.settings if isinstance(spec.settings, dict) else {}
    mitigation = settings.get("error_mitigation")
    return bool(isinstance(mitigation, dict) and mitigation.get("debiasing"))


def job_cost(spec: JobSpec) -> float:
    """The price of a job (the estimate's model applied to the job's own numbers)."""
    if spec.program is not None:
        n1, n2 = spec.program.gates_1q, spec.program.gates_2q
    else:
        n1 = sum(c.gates_1q for c in spec.circuits)
        n2 = sum(c.gates_2q for c in spec.circuits)
    return pricing.cost_of(spec.backend, n1, n2, spec.shots, _error_mitigation(spec))


def _seeded(spec: JobSpec, server_seed: int | None, seq: int) -> JobSpec:
    """``spec`` with a concrete ``noise.seed``, so the record states the seed used (a
    seeded server derives it from its seed and the job's sequence number)."""
    if spec.noise_seed is not None:
        return spec
    rng = random.Random(None if server_seed is None else f"{server_seed}/{seq}")
    return dataclasses.replace(spec, noise_seed=rng.randrange(2**31))


async def create_job(request: web.Request) -> web.StreamResponse:
    """``POST /jobs`` -> 201 ``{id, status, session_id}``."""
    state = state_of(request)
    cap = state.config.max_body_bytes
    with state.body_budget.reserve(body_reservation(request, cap)):
        raw = await read_body(request, cap)
        if not raw:
            raise bad_request("request body is empty; expected JSON")
        # Decoding and validation are CPU work proportional to the body: off the loop,
        # large bodies in a worker process (they would hold the GIL for a long time).
        spec = await state.decoder.parse_job(raw, version_of(request))
        del raw
    transport = request.transport
    if transport is None or transport.is_closing():
        # The client gave up (timed out, disconnected) while the body was parsed: it can
        # never learn this job's id, so storing it would only make a duplicate when it
        # creates the job again.
        raise ConnectionDropped()
    if spec.session_id is not None:
        state.sessions.admit(spec.session_id, spec.backend, job_cost(spec))
    job_id, seq = state.store.new_id()
    spec = _seeded(spec, state.config.seed, seq)
    job = Job(id=job_id, spec=spec, seq=seq,
              request_bytes=request.content_length or 0, org=organization_of(request))
    if spec.type == MULTI_TYPE:
        for index in range(len(spec.circuits)):
            child_id, child_seq = state.store.new_id()
            job.children.append(Job(id=child_id, spec=spec, seq=child_seq, parent_id=job_id,
                                    circuit_index=index, created=job.created))
    fault = request.get(FAULT)
    job.fault = fault
    if fault in ("job_failed", "late_result"):
        state.faults.record(fault)
    state.store.add(job)
    state.stats.job_created(spec.num_circuits, sum(spec.native_gate_counts))
    task = state.runner.submit(job)
    inline_max = state.config.inline_max_work
    if (state.config.inline_execution and job.fault != "late_result"
            and (inline_max is None or simulation_work(job) <= inline_max)):
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # the request itself was cancelled; the job keeps running
    if fault == "create_response_lost":
        # The job is stored and runs; only the answer is lost.
        state.faults.record(fault)
        drop_connection(request)
    if version_of(request) == "v0.3":
        return json_response({"id": job.id, "status": job.status,
                              "request": int(job.created)})
    return json_response({"id": job.id, "status": job.status, "session_id": spec.session_id},
                         status=201)


def _query_ids(request: web.Request) -> list[str] | None:
    values = request.query.getall("ids", []) + request.query.getall("ids[]", [])
    if not values:
        return None
    return [v for value in values for v in value.split(",") if v]


_LIST_CONTROL = ("ids", "ids[]", "limit", "next", "include_children")


async def _body_limit(request: web.Request) -> Any:
    """``limit`` from a GET body: cirq-ionq sends ``{"limit": n}`` as JSON on list calls."""
    if not request.can_read_body:
        return None
    try:
        body = await read_json(request, required=False)
    except ApiError as exc:
        if exc.status == 400:
            return None  # a GET body is advisory; a malformed one is ignored
        raise
    return body.get("limit") if isinstance(body, dict) else None


async def list_jobs(request: web.Request) -> web.Response:
    """``GET /jobs`` (and ``GET /sessions/{id}/jobs``) with filters, newest first.

    ``next`` is left out of the last page (cirq-ionq pages until it is absent).
    """
    state = state_of(request)
    query = {k: v for k, v in request.query.items() if k not in _LIST_CONTROL}
    if "session_id" in request.match_info:
        state.sessions.get(request.match_info["session_id"])  # 404 for an unknown session
        query["session_id"] = request.match_info["session_id"]
    ids = _query_ids(request)
    default_limit = min(1000, max(100, len(ids))) if ids else 100
    raw_limit: Any = request.query.get("limit")
    if raw_limit is None:
        raw_limit = await _body_limit(request)
    if raw_limit is None:
        raw_limit = default_limit
    try:
        limit = int(raw_limit)
    except (TypeError, ValueError):
        raise bad_request("'limit' must be an integer", keys=["limit"],
                          source="query") from None
    if isinstance(raw_limit, bool) or not 1 <= limit <= 1000:
        raise bad_request("'limit' must be between 1 and 1000", keys=["limit"],
                          source="query")
    with_children = (
        "parent_job_id" in query or ids is not None
        or request.query.get("include_children", "").lower() == "true"
    )
    if ids is not None:
        # Direct lookups: clients poll in-flight jobs with ``?ids=`` often.
        wanted = []
        for job_id in dict.fromkeys(ids):
            try:
                wanted.append(state.store.get(job_id))
            except ApiError:
                continue
        jobs = sorted(wanted, key=lambda j: j.seq, reverse=True)
        jobs = [j for j in jobs if matches_filters(j, query, None)]
    elif "parent_job_id" in query:
        # A client checks a multicircuit job's children after each one: look them up
        # through the parent rather than scanning the whole store (O(children), not
        # O(stored jobs)).
        try:
            parent = state.store.get(query["parent_job_id"])
        except ApiError:
            parent = None
        children = parent.children if parent is not None and not parent.deleted else []
        jobs = [j for j in reversed(children) if matches_filters(j, query, None)]
    else:
        jobs = state.store.all() if with_children else state.store.top_level()
        jobs = [j for j in reversed(jobs) if matches_filters(j, query, None)]
    cursor = request.query.get("next")
    if cursor:
        position = next((i for i, j in enumerate(jobs) if j.id == cursor), None)
        if position is None:
            raise bad_request("unknown 'next' cursor", keys=["next"], source="query")
        jobs = jobs[position + 1:]
    page = jobs[:limit]
    version = version_of(request)
    out: dict[str, Any] = {"jobs": [render_job(j, version) for j in page]}
    if len(jobs) > limit:
        out["next"] = page[-1].id
    return json_response(out)


async def get_job(request: web.Request) -> web.Response:
    """``GET /jobs/{job_id}``."""
    job = state_of(request).store.get(request.match_info["job_id"])
    return json_response(render_job(job, version_of(request)))


def _top(request: web.Request, job: Job) -> Job:
    return state_of(request).store.get(job.parent_id) if job.parent_id else job


def _cancel(request: web.Request, job: Job) -> None:
    """Cancel ``job`` (its parent for a child), also when it already completed (as
    IonQ v0.4 does: the job becomes ``canceled`` and its results are dropped). A failed
    job cannot be canceled (400)."""
    top = _top(request, job)
    if top.status == "failed":
        raise bad_request(f"job '{top.id}' has failed; there is nothing to cancel",
                          keys=["UUID"], source="params")
    state = state_of(request)
    state.runner.cancel(top)
    state.store.settle(top)


async def cancel_job(request: web.Request) -> web.Response:
    """``PUT /jobs/{job_id}/status/cancel`` -> ``{id, status: "canceled"}``."""
    job = state_of(request).store.get(request.match_info["job_id"])
    _cancel(request, job)
    return json_response({"id": job.id, "status": job.status})


async def delete_job(request: web.Request) -> web.Response:
    """``DELETE /jobs/{job_id}`` (cancels it first if still active)."""
    state = state_of(request)
    job = state.store.get(request.match_info["job_id"])
    if job.parent_id:
        raise bad_request("delete the parent job instead of one of its children",
                          keys=["UUID"], source="params")
    if job.status not in FINAL_STATUSES:
        state.runner.cancel(job)
    state.store.delete(job.id)
    return json_response({"id": job.id, "status": "deleted"})


async def _body_ids(request: web.Request) -> list[str]:
    ids = _query_ids(request)
    if ids is None and request.can_read_body:
        body = await read_json(request)
        if isinstance(body, dict) and set(body) - {"ids"}:
            raise bad_request(f"unknown field(s) {sorted(set(body) - {'ids'})}",
                              keys=sorted(set(body) - {"ids"}))
        ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad_request("expected 'ids', a list of job ids", keys=["ids"])
    if len(ids) > 1000:
        raise bad_request("at most 1000 'ids' per request", keys=["ids"])
    return ids


async def cancel_jobs(request: web.Request) -> web.Response:
    """``PUT /jobs/status/cancel`` with ``{"ids": [...]}`` -> ``{ids, status}``."""
    state = state_of(request)
    jobs = [state.store.get(i) for i in await _body_ids(request)]  # 404 before any change
    for job in jobs:
        if _top(request, job).status == "failed":
            raise bad_request(f"job '{job.id}' has failed; there is nothing to cancel",
                              keys=["ids"])
    for job in jobs:
        _cancel(request, job)
    return json_response({"ids": [j.id for j in jobs], "status": "canceled"})


async def delete_jobs(request: web.Request) -> web.Response:
    """``DELETE /jobs`` with ``{"ids": [...]}`` -> ``{ids, status: "deleted"}``."""
    state = state_of(request)
    ids = await _body_ids(request)
    jobs = [state.store.get(i) for i in ids]  # 404 before deleting anything
    for job in jobs:
        if job.parent_id:
            raise bad_request("delete the parent job instead of one of its children",
                              keys=["ids"])
    for job in jobs:
        if job.status not in FINAL_STATUSES:
            state.runner.cancel(job)
        state.store.delete(job.id)
    return json_response({"ids": [j.id for j in jobs], "status": "deleted"})


def _query_int(query: Any, key: str, default: int, high: int) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"'{key}' must be an integer", keys=[key], source="query") from None
    if not 0 <= value <= high:
        raise bad_request(f"'{key}' must be between 0 and {high}", keys=[key], source="query")
    return value


def _query_bool(query: Any, key: str) -> bool:
    raw = query.get(key, "false").lower()
    if raw not in ("true", "false"):
        raise bad_request(f"'{key}' must be true or false", keys=[key], source="query")
    return raw == "true"


async def estimate_job(request: web.Request) -> web.Response:
    """``GET /jobs/estimate``: cost (see :mod:`..pricing`) and time of a hypothetical job.

    Defaults as documented: ``type=ionq.circuit.v1``, ``qubits=25``, ``shots=1000``, no
    gates, no error mitigation. ``backend`` is required. Every number is range-checked
    (400), so no input can overflow.
    """
    state = state_of(request)
    q = request.query
    backend = q.get("backend")
    if not backend:
        raise bad_request("'backend' is required", keys=["backend"], source="query")
    backend = state.lookup_backend(backend, status=400)
    job_type = q.get("type", "ionq.circuit.v1")
    n1 = _query_int(q, "1q_gates", 0, MAX_ESTIMATE_GATES)
    n2 = _query_int(q, "2q_gates", 0, MAX_ESTIMATE_GATES)
    shots = _query_int(q, "shots", 1000, state.config.max_shots)
    qubits = _query_int(q, "qubits", 25, MAX_ESTIMATE_QUBITS)
    mitigation = _query_bool(q, "error_mitigation")
    session = _query_bool(q, "session")
    exec_s = state.config.job_execution_seconds([n1 + 3 * n2], shots)
    cost = pricing.cost_of(backend, n1, n2, shots, mitigation)
    if not math.isfinite(exec_s):
        raise bad_request("the estimate is out of range", keys=["shots"], source="query")
    return json_response({
        "input_values": {"backend": backend, "type": job_type, "1q_gates": n1,
                         "2q_gates": n2, "qubits": qubits, "shots": shots,
                         "error_mitigation": mitigation, "session": session},
        "estimated_cost": cost,
        "cost_unit": pricing.COST_UNIT,
        "estimated_execution_time": exec_s,
        "current_predicted_queue_time": state.config.queue_wait,
        "estimated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rate_information": pricing.rates_for(backend).as_rate_information(mitigation),
    })


async def get_job_cost(request: web.Request) -> web.Response:
    """``GET /jobs/{job_id}/cost`` -> ``{dry_run, estimated_cost, cost?}``.

    ``estimated_cost`` is what ``/jobs/estimate`` gives for the job's backend, gate
    counts, shots and error mitigation; ``cost`` (the billed amount, the same model)
    appears once the job completed. Dry runs and canceled or failed jobs bill nothing.
    """
    job = _top(request, state_of(request).store.get(request.match_info["job_id"]))
    estimated = job_cost(job.spec)
    out: dict[str, Any] = {
        "dry_run": job.spec.dry_run,
        "estimated_cost": {"value": estimated, "unit": pricing.COST_UNIT},
    }
    if job.status in FINAL_STATUSES:
        billed = estimated if job.status == "completed" and not job.spec.dry_run else 0.0
        out["cost"] = {"value": billed, "unit": pricing.COST_UNIT}
    return json_response(out)


__all__ = ["create_job", "list_jobs", "get_job", "cancel_job", "delete_job", "cancel_jobs",
           "delete_jobs", "estimate_job", "get_job_cost", "FAULT", "ConnectionDropped",
           "drop_connection", "job_cost"]
